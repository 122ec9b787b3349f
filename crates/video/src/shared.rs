//! Locating the shared data folder (real clips, VMAF models and fixtures, BD-rate vectors).

use std::path::PathBuf;

/// `$CODECLAB_SHARED` when set, else the first `shared` folder found beside the current directory
/// or one of its ancestors (a checkout keeps it at `../shared`).
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CODECLAB_SHARED") {
        return Some(PathBuf::from(dir));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|a| a.join("shared"))
        .find(|p| p.join("corpus").is_dir())
}

/// The folder holding the real corpus clips: `$CODECLAB_CORPUS`, else `shared/corpus`.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CODECLAB_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    shared_dir().map(|s| s.join("corpus"))
}
