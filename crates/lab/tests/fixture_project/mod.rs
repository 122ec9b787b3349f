//! Candidate fixture projects (`tests/fixtures/candidates/<name>`), built through the confined
//! builder into one target folder per workspace. Each build gets a project folder of its own, so
//! that sources written right after another build are never mistaken for already built.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use codeclab_lab::candidate::SourceTree;
use codeclab_sandbox::{BuildConfig, BuildFailure, build};

/// One fixture project and the binary it builds.
pub struct FixtureProject {
    /// The folder under `tests/fixtures/candidates`.
    pub name: &'static str,
    pub binary: &'static str,
}

impl FixtureProject {
    fn folder(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/candidates")
            .join(self.name)
    }

    /// The project's shipped sources.
    pub fn original(&self) -> SourceTree {
        SourceTree::load(&self.folder()).unwrap()
    }

    /// Builds `sources` in the workspace `workspace` within `time_limit`; a private copy of the
    /// binary (the workspace's next build replaces its own).
    pub fn build(
        &self,
        workspace: &str,
        sources: &SourceTree,
        time_limit: Duration,
    ) -> Result<PathBuf, BuildFailure> {
        static BUILT: AtomicU64 = AtomicU64::new(0);
        let root =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{workspace}", self.name));
        let number = BUILT.fetch_add(1, Ordering::Relaxed);
        let project = root.join(format!("project-{}-{number}", std::process::id()));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::copy(self.folder().join("Cargo.toml"), project.join("Cargo.toml")).unwrap();
        sources.write(&project).unwrap();
        let config = BuildConfig {
            time_limit,
            ..BuildConfig::new(root.join("target"))
        };
        let copy = root.join(format!("{}-{}-{number}", self.binary, std::process::id()));
        build(&project, self.binary, &config, &copy)?;
        Ok(copy)
    }
}
