//! The codec's candidates end to end: edits and policy on its sources, then the offline build in
//! one cached workspace.

use super::{
    BuildConfig, Edit, Policy, Rejection, SourceTree, TreeError, WorkspaceError, build,
    materialize_codec_workspace, prepare,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The name of the codec's stand-alone binary.
pub const CODEC_BINARY: &str = "codeclab-codec";

/// Turns edit proposals into built codec binaries. Candidates share one workspace directory and
/// one target directory, so builds run one at a time.
#[derive(Debug)]
pub struct CodecCandidates {
    repository: PathBuf,
    workspace: PathBuf,
    original: SourceTree,
    policy: Policy,
    build: BuildConfig,
    building: Mutex<()>,
}

impl CodecCandidates {
    /// Reads the codec's sources from `repository` (the lab's workspace root); candidates are
    /// built under `cache` (`cache/workspace`, `cache/target`).
    pub fn new(repository: &Path, cache: &Path, policy: Policy) -> Result<Self, TreeError> {
        let original = SourceTree::load(&repository.join("crates/codec"))?;
        original.blocks()?;
        Ok(Self {
            repository: repository.to_path_buf(),
            workspace: cache.join("workspace"),
            original,
            policy,
            build: BuildConfig::new(cache.join("target")),
            building: Mutex::new(()),
        })
    }

    /// Replaces the build settings (time limit, cargo, diagnostics size).
    pub fn with_build_config(mut self, build: BuildConfig) -> Self {
        self.build = build;
        self
    }

    /// The unmodified sources, whose blocks a planner is shown.
    pub fn original(&self) -> &SourceTree {
        &self.original
    }

    /// Applies, checks and builds one candidate, and copies its binary to `destination` (the
    /// shared target dir holds only the latest build). The outer error is the lab's own failure
    /// (the workspace or the binary cannot be written); the inner one is the candidate's
    /// rejection, for the planner.
    pub fn build(
        &self,
        edits: &[Edit],
        destination: &Path,
    ) -> Result<Result<(), Rejection>, WorkspaceError> {
        let patched = match prepare(&self.original, edits, &self.policy) {
            Ok(patched) => patched,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let _one_at_a_time = self
            .building
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let workspace = materialize_codec_workspace(&self.repository, &self.workspace, &patched)?;
        let binary = match build(&workspace, CODEC_BINARY, &self.build) {
            Ok(binary) => binary,
            Err(failure) => return Ok(Err(Rejection::Build(failure))),
        };
        std::fs::copy(&binary, destination).map_err(|source| WorkspaceError::Write {
            path: destination.to_path_buf(),
            source,
        })?;
        Ok(Ok(()))
    }
}
