//! Experiment artifacts through `object_store`: a local folder by default, an S3-compatible
//! bucket with an `s3://BUCKET[/PREFIX]` URL (endpoint, region and keys from the usual `AWS_*`
//! variables, e.g. `AWS_ENDPOINT=http://127.0.0.1:9000` and `AWS_ALLOW_HTTP=true`).
//!
//! Layout: `experiments/<id>/<clip>/<rate index>/bitstream.<sha256>.<ext>` and its
//! `encode.<sha256>.log` / `decode.<sha256>.log`; `experiments/<id>/rd.json` and `rd.csv` once
//! the experiment is analysed. Reconstructed video is not stored: it is regenerated from the
//! bitstream and the decoder.
//!
//! A point's files are content-addressed ([`Artifacts::put_addressed`]): the key carries the
//! sha256 of the bytes, so two workers that measured the same job (one of them after losing its
//! lease) never write the same key with different bytes, and the point's recorded
//! `bitstream_sha256` names the object it was measured from. Points stored before this layout
//! have `bitstream.<ext>`, `encode.log` and `decode.log`; [`point_bitstream_key`] still finds
//! their bitstream.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{file} has sha256 {found}, not the measured {expected}: it changed after measuring")]
    ChangedFile {
        file: String,
        expected: String,
        found: String,
    },
}

/// Where artifacts go.
#[derive(Clone, Debug)]
pub struct Artifacts {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
}

impl Artifacts {
    /// `s3://bucket[/prefix]`, `file:///dir` or a plain directory path (created if needed).
    pub fn open(url: &str) -> Result<Artifacts, ArtifactError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ArtifactError::Url {
                    url: url.into(),
                    message: "no bucket name".into(),
                });
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if std::env::var("AWS_ENDPOINT")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .is_ok_and(|endpoint| endpoint.starts_with("http://"))
            {
                builder = builder.with_allow_http(true);
            }
            let store = builder.build()?;
            return Ok(Artifacts {
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix),
                url: url.to_string(),
            });
        }
        let dir = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir)?;
        Ok(Artifacts {
            store: Arc::new(store),
            prefix: ObjectPath::from(""),
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjectPath {
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.extend(key.split('/').filter(|p| !p.is_empty()).map(str::to_string));
        ObjectPath::from(parts.join("/"))
    }

    /// Stores bytes under `key`, overwriting: for files derived from immutable records (an
    /// analysis, a report), which are the same whoever writes them.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        self.store
            .put(&self.path(key), PutPayload::from(Bytes::from(bytes)))
            .await?;
        Ok(())
    }

    /// Stores `bytes` under `dir` as `name` with their sha256 inserted before the extension
    /// (`bitstream.bin` → `bitstream.<sha256>.bin`) and returns the key and the hash. The key
    /// names its content, so an existing object under it already holds these bytes and is
    /// left as it is: an upload never overwrites a different object.
    pub async fn put_addressed(
        &self,
        dir: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<Addressed, ArtifactError> {
        let sha256 = crate::spec::sha256_hex(&bytes);
        let key = format!("{dir}/{}", addressed_name(name, &sha256));
        match self.store.head(&self.path(&key)).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => self.put(&key, bytes).await?,
            Err(other) => return Err(other.into()),
        }
        Ok(Addressed { key, sha256 })
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ArtifactError> {
        let result = self.store.get(&self.path(key)).await?;
        Ok(result.bytes().await?.to_vec())
    }

    /// Keys under a prefix, relative to this store's own prefix, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ArtifactError> {
        let base = self.path(prefix);
        let own = self.prefix.parts().count();
        let mut keys: Vec<String> = self
            .store
            .list(Some(&base))
            .map_ok(|meta| {
                meta.location
                    .parts()
                    .skip(own)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }
}

/// Where [`Artifacts::put_addressed`] stored an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressed {
    pub key: String,
    pub sha256: String,
}

/// `name` with `sha256` inserted before its extension (after the first dot), or appended.
pub fn addressed_name(name: &str, sha256: &str) -> String {
    match name.split_once('.') {
        Some((stem, extension)) => format!("{stem}.{sha256}.{extension}"),
        None => format!("{name}.{sha256}"),
    }
}

/// Of the keys under a point's folder, the bitstream whose content has `sha256` (the hash its
/// point recorded); for points stored before keys named their content, the one
/// `bitstream.<ext>`.
pub fn point_bitstream_key<'a>(keys: &'a [String], sha256: &str) -> Option<&'a String> {
    let file_name = |key: &'a String| key.rsplit('/').next().unwrap_or(key);
    keys.iter()
        .find(|key| file_name(key).starts_with(&format!("bitstream.{sha256}.")))
        .or_else(|| {
            keys.iter().find(|key| {
                file_name(key)
                    .strip_prefix("bitstream.")
                    .is_some_and(|extension| !extension.contains('.'))
            })
        })
}

/// The key of the file `name` (say `frames.json`) directly in the folder `dir`, stored under
/// its content's hash ([`addressed_name`]) or, for points stored before that, as `name`.
/// Should a worker that lost its lease have uploaded its own copy before its hand-in was
/// refused, the first in key order is returned.
pub fn point_file_key<'a>(keys: &'a [String], dir: &str, name: &str) -> Option<&'a String> {
    let (stem, extension) = name.split_once('.').unwrap_or((name, ""));
    let names_content = |file: &str| {
        let hash = file
            .strip_prefix(stem)
            .and_then(|rest| rest.strip_prefix('.'));
        let hash = match extension {
            "" => hash,
            _ => hash.and_then(|h| h.strip_suffix(extension)?.strip_suffix('.')),
        };
        hash.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    keys.iter().find(|key| {
        key.strip_prefix(dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|file| file == name || names_content(file))
    })
}

/// The artifact folder of an experiment.
pub fn experiment_prefix(id: i64) -> String {
    format!("experiments/{id}")
}
