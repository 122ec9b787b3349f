//! The one path every code candidate takes, whether a planner proposed it or an engineer runs
//! `codeclab candidate try`: edit check → static policy → confined offline build → sandboxed
//! smoke stage. Whatever a rejection quotes from the compiler or the candidate is scrubbed of the
//! lab's secrets before it leaves.

use super::{
    Edit, Policy, Project, Rejection, SmokeError, SmokeReport, SmokeSpec, SourceTree, TreeError,
    WorkspaceError, prepare, smoke_test,
};
use crate::secrets::Secrets;
use codeclab_sandbox::{BuildConfig, build};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The name of the codec's stand-alone binary.
pub const CODEC_BINARY: &str = "codeclab-codec";

/// The lab's own failures while taking a candidate through the pipeline: none is the
/// candidate's doing.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Smoke(#[from] SmokeError),
}

/// Turns edit proposals into built, smoke-tested binaries. Candidates share one workspace
/// folder and one target folder, so builds run one at a time, across processes too.
#[derive(Debug)]
pub struct Candidates {
    project: Project,
    workspace: PathBuf,
    original: SourceTree,
    policy: Policy,
    build: BuildConfig,
    secrets: Secrets,
    /// Held while a candidate is written and built; the time the last build ended.
    last_build: Mutex<SystemTime>,
}

impl Candidates {
    /// Reads the evolved crate's sources from `project`; candidates are built under `cache`
    /// (`cache/workspace`, `cache/target`).
    pub fn new(project: Project, cache: &Path, policy: Policy) -> Result<Self, TreeError> {
        let original = SourceTree::load(&project.evolved_crate())?;
        original.blocks()?;
        Ok(Self {
            project,
            workspace: cache.join("workspace"),
            original,
            policy,
            build: BuildConfig::new(cache.join("target")),
            secrets: Secrets::default(),
            last_build: Mutex::new(SystemTime::UNIX_EPOCH),
        })
    }

    /// Replaces the build settings (time limit, memory, diagnostics size).
    pub fn with_build_config(mut self, build: BuildConfig) -> Self {
        self.build = build;
        self
    }

    /// The secrets scrubbed from what a rejection quotes.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// The unmodified sources, whose blocks a planner is shown.
    pub fn original(&self) -> &SourceTree {
        &self.original
    }

    /// Takes one candidate through the whole pipeline and leaves its binary at `destination`
    /// (the shared target folder holds only the latest build). The outer error is the lab's own
    /// failure; the inner one is the candidate's rejection, for the planner, its quotes scrubbed.
    pub fn evaluate(
        &self,
        edits: &[Edit],
        destination: &Path,
        smoke: &SmokeSpec,
    ) -> Result<Result<SmokeReport, Rejection>, PipelineError> {
        let outcome = self.build_and_smoke(edits, destination, smoke)?;
        Ok(outcome.map_err(|rejection| rejection.scrubbed(&self.secrets)))
    }

    fn build_and_smoke(
        &self,
        edits: &[Edit],
        destination: &Path,
        smoke: &SmokeSpec,
    ) -> Result<Result<SmokeReport, Rejection>, PipelineError> {
        let patched = match prepare(&self.original, edits, &self.policy) {
            Ok(patched) => patched,
            Err(rejection) => return Ok(Err(rejection)),
        };
        {
            let mut last_build = self
                .last_build
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Another lab process may build in the same cache: it waits for this one.
            let _workspace_lock = lock_workspace(&self.workspace)?;
            let workspace = self
                .project
                .materialize(&self.workspace, &patched, *last_build)?;
            let built = build(&workspace, self.project.binary(), &self.build, destination);
            *last_build = SystemTime::now();
            if let Err(failure) = built {
                return Ok(Err(Rejection::Build(failure)));
            }
        }
        Ok(smoke_test(destination, smoke)?)
    }
}

/// An exclusive lock, across processes, on the candidate workspace at `workspace`.
fn lock_workspace(workspace: &Path) -> Result<std::fs::File, WorkspaceError> {
    let path = workspace.with_extension("lock");
    let write_error = |source| WorkspaceError::Write {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let file = std::fs::File::create(&path).map_err(write_error)?;
    file.lock().map_err(write_error)?;
    Ok(file)
}
