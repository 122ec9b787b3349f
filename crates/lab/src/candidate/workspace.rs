//! The cached workspace a patched codec is built in: the codec crate with a candidate's sources
//! and the crates it depends on, copied from the lab's repository.

use super::tree::{SourceTree, TreeError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the workspace manifest {path} is not valid: {message}")]
    Manifest { path: PathBuf, message: String },
}

/// What candidates are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Project {
    /// `crates/codec` of a codeclab source tree (its workspace root), built with the crates it
    /// depends on into the `codeclab-codec` binary.
    LabCodec { repository: PathBuf },
    /// A stand-alone crate: a `Cargo.toml` of its own (a workspace root), sources under `src/`.
    Crate { dir: PathBuf, binary: String },
}

impl Project {
    /// The folder of the crate whose sources candidates edit.
    pub fn evolved_crate(&self) -> PathBuf {
        match self {
            Project::LabCodec { repository } => repository.join(CODEC_CRATE),
            Project::Crate { dir, .. } => dir.clone(),
        }
    }

    /// The binary a candidate build produces.
    pub fn binary(&self) -> &str {
        match self {
            Project::LabCodec { .. } => super::CODEC_BINARY,
            Project::Crate { binary, .. } => binary,
        }
    }

    /// Writes the project, with `sources` as the evolved crate's, into `dir`; returns the folder
    /// to build. Files are rewritten only when their content changes, so that cargo's cache in
    /// the shared target folder stays valid between candidates; a rewritten file is dated after
    /// `last_build` (when the previous build in `dir` ended), since cargo takes a source no newer
    /// than its last output for unchanged, and two candidates can follow each other within one
    /// tick of the filesystem's clock.
    pub fn materialize(
        &self,
        dir: &Path,
        sources: &SourceTree,
        last_build: SystemTime,
    ) -> Result<PathBuf, WorkspaceError> {
        let writer = Writer {
            newer_than: last_build,
        };
        match self {
            Project::LabCodec { repository } => {
                materialize_codec_workspace(&writer, repository, dir, sources)
            }
            Project::Crate { dir: from, .. } => {
                writer.write(&dir.join("Cargo.toml"), &read(&from.join("Cargo.toml"))?)?;
                let lock = from.join("Cargo.lock");
                if lock.is_file() {
                    writer.write(&dir.join("Cargo.lock"), &read(&lock)?)?;
                }
                for (relative, text) in &sources.files {
                    writer.write(&dir.join(relative), text)?;
                }
                Ok(dir.to_path_buf())
            }
        }
    }
}

/// The crates a patched codec is built from, besides its own sources.
const CODEC_CRATE: &str = "crates/codec";
const SUPPORT_CRATES: &[&str] = &["crates/video"];
/// The package names those paths carry in `[workspace.dependencies]`.
const WORKSPACE_PATH_DEPENDENCIES: &[&str] = &["codeclab-codec", "codeclab-video"];

/// A stand-alone workspace, in `dir`, holding the codec crate (with a candidate's sources) and the
/// crates it depends on, copied from the lab's repository; returns `dir`.
fn materialize_codec_workspace(
    writer: &Writer,
    repository: &Path,
    dir: &Path,
    codec_sources: &SourceTree,
) -> Result<PathBuf, WorkspaceError> {
    let manifest_path = repository.join("Cargo.toml");
    let manifest_text = read(&manifest_path)?;
    writer.write(
        &dir.join("Cargo.toml"),
        &workspace_manifest(&manifest_text).map_err(|message| WorkspaceError::Manifest {
            path: manifest_path.clone(),
            message,
        })?,
    )?;
    let lock = repository.join("Cargo.lock");
    if lock.is_file() {
        writer.write(&dir.join("Cargo.lock"), &read(&lock)?)?;
    }
    for member in SUPPORT_CRATES.iter().chain([&CODEC_CRATE]) {
        let from = repository.join(member);
        let to = dir.join(member);
        writer.write(&to.join("Cargo.toml"), &read(&from.join("Cargo.toml"))?)?;
        let sources = if *member == CODEC_CRATE {
            codec_sources.clone()
        } else {
            SourceTree::load(&from)?
        };
        for (relative, text) in &sources.files {
            writer.write(&to.join(relative), text)?;
        }
    }
    Ok(dir.to_path_buf())
}

/// The repository's workspace manifest cut down to the codec and its support crates.
fn workspace_manifest(text: &str) -> Result<String, String> {
    let mut manifest: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let workspace = manifest
        .get_mut("workspace")
        .and_then(toml::Value::as_table_mut)
        .ok_or("no [workspace] table")?;
    let members = SUPPORT_CRATES
        .iter()
        .chain([&CODEC_CRATE])
        .map(|m| toml::Value::String((*m).to_owned()))
        .collect();
    workspace.insert("members".into(), toml::Value::Array(members));
    workspace.remove("default-members");
    workspace.remove("exclude");
    if let Some(dependencies) = workspace
        .get_mut("dependencies")
        .and_then(toml::Value::as_table_mut)
    {
        dependencies.retain(|name, spec| {
            let is_path = spec.as_table().is_some_and(|t| t.contains_key("path"));
            !is_path || WORKSPACE_PATH_DEPENDENCIES.contains(&name)
        });
    }
    toml::to_string(&manifest).map_err(|e| e.to_string())
}

fn read(path: &Path) -> Result<String, WorkspaceError> {
    std::fs::read_to_string(path).map_err(|source| WorkspaceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes files whose content changed, dated after a given time.
struct Writer {
    newer_than: SystemTime,
}

impl Writer {
    fn write(&self, path: &Path, text: &str) -> Result<(), WorkspaceError> {
        if std::fs::read_to_string(path).is_ok_and(|existing| existing == text) {
            return Ok(());
        }
        let write_error = |source| WorkspaceError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        std::fs::write(path, text).map_err(write_error)?;
        let dated = SystemTime::now().max(self.newer_than + Duration::from_millis(1));
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(dated))
            .map_err(write_error)
    }
}
