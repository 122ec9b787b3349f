//! Offline, time-limited cargo builds of candidate sources, and the cached workspace a patched
//! codec is built in.

use super::tree::{SourceTree, TreeError};
use crate::sandbox::{Ending, kill_group, set_limit, wait_until};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How candidates are built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildConfig {
    pub cargo: PathBuf,
    /// Shared by every candidate, so unchanged dependencies compile once.
    pub target_dir: PathBuf,
    pub time_limit: Duration,
    /// Address space of cargo and of each compiler it starts: a source that makes the compiler
    /// materialise a huge constant (`[0u8; 1 << 34]`) fails its build instead of exhausting the
    /// machine's memory.
    pub address_space_bytes: u64,
    /// How much of the compiler's error output goes back to the planner.
    pub max_diagnostic_bytes: usize,
}

impl BuildConfig {
    pub fn new(target_dir: PathBuf) -> Self {
        Self {
            cargo: PathBuf::from("cargo"),
            target_dir,
            time_limit: Duration::from_secs(600),
            address_space_bytes: 8 << 30,
            max_diagnostic_bytes: 6 * 1024,
        }
    }
}

/// Why a build produced no binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BuildFailure {
    #[error("the build failed:\n{diagnostics}")]
    Compile { diagnostics: String },
    #[error("the build was killed after the time limit of {limit_ms} ms")]
    TimedOut { limit_ms: u64 },
    #[error("the build could not run: {message}")]
    Environment { message: String },
}

/// Target triple candidates are built for: naming it keeps `+crt-static` away from build scripts
/// and proc-macros, which must stay dynamic.
fn target_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Builds binary `bin` of the cargo project at `project_dir` offline, in release, statically
/// linked (a sandboxed program cannot open shared libraries), and returns the binary's path.
pub fn build(project_dir: &Path, bin: &str, config: &BuildConfig) -> Result<PathBuf, BuildFailure> {
    let environment = |message: String| BuildFailure::Environment { message };
    let triple = target_triple();
    let mut command = Command::new(&config.cargo);
    command
        .arg("build")
        .arg("--offline")
        .arg("--release")
        .arg("--quiet")
        .args(["--target", &triple, "--bin", bin])
        .arg("--manifest-path")
        .arg(project_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &config.target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // Inherited from a surrounding cargo, it would override RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TERM_COLOR", "never")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let address_space = config.address_space_bytes;
    // SAFETY: the closure runs between fork and exec and only makes the setrlimit system call on
    // a value copied in beforehand: no allocation, no lock.
    unsafe {
        command.pre_exec(move || set_limit(libc::RLIMIT_AS, address_space, address_space));
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| environment(format!("starting {}: {error}", config.cargo.display())))?;
    let pid = child.id();
    let mut stderr_pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_end(&mut text);
        }
        text
    });
    let ending = wait_until(pid, started + config.time_limit, &|| false);
    // Cargo and every compiler it started go, even if waiting failed.
    kill_group(pid);
    let status = child
        .wait()
        .map_err(|error| environment(format!("waiting for cargo: {error}")))?;
    let ending = ending.map_err(|error| environment(format!("waiting for cargo: {error}")))?;
    let stderr = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if ending != Ending::Exited {
        return Err(BuildFailure::TimedOut {
            limit_ms: u64::try_from(config.time_limit.as_millis()).unwrap_or(u64::MAX),
        });
    }
    if !status.success() {
        return Err(BuildFailure::Compile {
            diagnostics: trim_diagnostics(&stderr, config.max_diagnostic_bytes),
        });
    }
    let binary = config.target_dir.join(&triple).join("release").join(bin);
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(environment(format!(
            "cargo succeeded but {} is missing",
            binary.display()
        )))
    }
}

/// Keeps the error diagnostics (each from its `error` line to the blank line that ends it),
/// drops warnings and progress lines, and cuts at `max_bytes` on a line boundary.
pub fn trim_diagnostics(stderr: &str, max_bytes: usize) -> String {
    let mut kept = String::new();
    let mut in_error = false;
    let mut omitted = 0usize;
    for line in stderr.lines() {
        if line.starts_with("error") {
            in_error = true;
        } else if line.starts_with("warning") {
            in_error = false;
        }
        if !in_error {
            continue;
        }
        // Past the budget, nothing more is kept, so the cut never leaves holes.
        if omitted > 0 || kept.len() + line.len() + 1 > max_bytes {
            omitted += 1;
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
        if line.trim().is_empty() {
            in_error = false;
        }
    }
    if kept.is_empty() {
        // No recognisable diagnostic: the tail of the output is the best evidence left.
        let start = stderr.len().saturating_sub(max_bytes);
        let start = (start..stderr.len())
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(stderr.len());
        return stderr[start..].to_owned();
    }
    if omitted > 0 {
        kept.push_str(&format!("… {omitted} more lines of errors omitted\n"));
    }
    kept
}

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

/// The crates a patched codec is built from, besides its own sources.
const CODEC_CRATE: &str = "crates/codec";
const SUPPORT_CRATES: &[&str] = &["crates/video"];
/// The package names those paths carry in `[workspace.dependencies]`.
const WORKSPACE_PATH_DEPENDENCIES: &[&str] = &["codeclab-codec", "codeclab-video"];

/// A stand-alone workspace, in `dir`, holding the codec crate (with a candidate's sources) and the
/// crates it depends on, copied from the lab's repository; returns `dir`, ready for [`build`].
/// Files are rewritten only when their content changes, so cargo's cache in the shared target dir
/// stays valid between candidates.
pub fn materialize_codec_workspace(
    repository: &Path,
    dir: &Path,
    codec_sources: &SourceTree,
) -> Result<PathBuf, WorkspaceError> {
    let manifest_path = repository.join("Cargo.toml");
    let manifest_text = read(&manifest_path)?;
    write_if_changed(
        &dir.join("Cargo.toml"),
        &workspace_manifest(&manifest_text).map_err(|message| WorkspaceError::Manifest {
            path: manifest_path.clone(),
            message,
        })?,
    )?;
    let lock = repository.join("Cargo.lock");
    if lock.is_file() {
        write_if_changed(&dir.join("Cargo.lock"), &read(&lock)?)?;
    }
    for member in SUPPORT_CRATES.iter().chain([&CODEC_CRATE]) {
        let from = repository.join(member);
        let to = dir.join(member);
        write_if_changed(&to.join("Cargo.toml"), &read(&from.join("Cargo.toml"))?)?;
        let sources = if *member == CODEC_CRATE {
            codec_sources.clone()
        } else {
            SourceTree::load(&from)?
        };
        for (relative, text) in &sources.files {
            write_if_changed(&to.join(relative), text)?;
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

fn write_if_changed(path: &Path, text: &str) -> Result<(), WorkspaceError> {
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
    std::fs::write(path, text).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO_OUTPUT: &str = "   Compiling codec-like v0.0.0 (/tmp/x)
warning: unused variable: `scale`
 --> src/lib.rs:3:9
  |
3 |     let scale = 2;
  |         ^^^^^

error[E0308]: mismatched types
 --> src/lib.rs:8:23
  |
8 |     byte.wrapping_add(1u64)
  |                       ^^^^ expected `u8`, found `u64`

error: could not compile `codec-like` (lib) due to 1 previous error
";

    #[test]
    fn diagnostics_keep_errors_and_drop_warnings_and_progress() {
        let trimmed = trim_diagnostics(CARGO_OUTPUT, 10_000);
        assert!(trimmed.starts_with("error[E0308]: mismatched types\n"));
        assert!(trimmed.contains("expected `u8`, found `u64`"));
        assert!(trimmed.contains("could not compile"));
        assert!(!trimmed.contains("unused variable"));
        assert!(!trimmed.contains("Compiling"));
    }

    #[test]
    fn diagnostics_are_cut_on_a_line_boundary_and_say_how_much_is_missing() {
        let trimmed = trim_diagnostics(CARGO_OUTPUT, 80);
        assert!(trimmed.starts_with("error[E0308]: mismatched types\n"));
        let kept: usize = trimmed
            .lines()
            .take_while(|l| !l.starts_with('…'))
            .map(|l| l.len() + 1)
            .sum();
        assert!(kept <= 80, "{trimmed}");
        assert!(
            trimmed.trim_end().ends_with("more lines of errors omitted"),
            "{trimmed}"
        );
    }

    #[test]
    fn output_without_diagnostics_keeps_its_tail() {
        let trimmed = trim_diagnostics("linker `cc` not found\n", 10);
        assert_eq!(trimmed, "not found\n");
    }
}
