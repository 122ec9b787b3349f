//! Experiment artifacts through `object_store`: a local folder by default, an S3-compatible
//! bucket with an `s3://BUCKET[/PREFIX]` URL (endpoint, region and keys from the usual `AWS_*`
//! variables, e.g. `AWS_ENDPOINT=http://127.0.0.1:9000` and `AWS_ALLOW_HTTP=true`).
//!
//! Layout: `experiments/<id>/<clip>/<rate index>/bitstream.<ext>` and its `encode.log` /
//! `decode.log`; `experiments/<id>/rd.json` and `rd.csv` once the experiment is analysed.
//! Reconstructed video is not stored: it is regenerated from the bitstream and the decoder.

use std::path::Path;
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

    /// Stores bytes under `key` (overwriting: the same key always gets the same bytes).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        self.store
            .put(&self.path(key), PutPayload::from(Bytes::from(bytes)))
            .await?;
        Ok(())
    }

    /// Stores a local file under `key`.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<(), ArtifactError> {
        let bytes = tokio::fs::read(file).await?;
        self.put(key, bytes).await
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

/// The artifact folder of an experiment.
pub fn experiment_prefix(id: i64) -> String {
    format!("experiments/{id}")
}
