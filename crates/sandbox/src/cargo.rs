//! Confined, offline, time-limited cargo builds of candidate sources.
//!
//! Cargo and every compiler, linker and build script it starts run with an environment built
//! from nothing (no variable of the lab's reaches them, so no secret), a scratch `HOME`, and a
//! Landlock view in which they may read only the toolchain, the registry cache, the system's
//! programs and libraries and the workspace, and write only the workspace, the target folder and
//! the scratch: a compile-time read of any other file (`include_bytes!("/etc/…")`, a key file,
//! `/proc/<pid>/environ` of the lab) fails the build with "Permission denied". Sockets other than
//! Unix ones are refused, and the build is bounded in time, address space, file size and output.

use crate::landlock_fs::{Confinement, View};
use crate::seccomp::{build_filter, seccomp_error};
use crate::supervise::{Ending, Input, Io, Output, set_limit, supervise};
use seccompiler::BpfProgram;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How candidates are built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// Shared by every candidate, so unchanged dependencies compile once. The build's scratch
    /// home lives inside it.
    pub target_dir: PathBuf,
    pub time_limit: Duration,
    /// Address space of cargo and of each compiler it starts: a source that makes the compiler
    /// materialise a huge constant (`[0u8; 1 << 34]`) fails its build instead of exhausting the
    /// machine's memory.
    pub address_space_bytes: u64,
    /// The largest file any process of the build may write.
    pub file_size_bytes: u64,
    /// Bytes of compiler output kept; one more ends the build.
    pub output_cap_bytes: usize,
    /// How much of the compiler's error output is reported.
    pub max_diagnostic_bytes: usize,
}

impl BuildConfig {
    pub fn new(target_dir: PathBuf) -> Self {
        Self {
            target_dir,
            time_limit: Duration::from_secs(600),
            address_space_bytes: 8 << 30,
            file_size_bytes: 2 << 30,
            output_cap_bytes: 4 << 20,
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
    #[error("the build was killed for writing more than {cap_bytes} bytes of output")]
    OutputLimit { cap_bytes: usize },
    #[error("the build could not run: {message}")]
    Environment { message: String },
}

fn environment(message: impl Into<String>) -> BuildFailure {
    BuildFailure::Environment {
        message: message.into(),
    }
}

/// The toolchain builds use: the one `rustc` on the lab's `PATH` resolves to (through rustup
/// when that is a proxy), called by its real paths so that no proxy and no rustup home is
/// needed inside the confinement, and cargo's registry cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub sysroot: PathBuf,
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    /// `$CARGO_HOME/registry`, read-only inside the build, when it exists.
    pub registry: Option<PathBuf>,
}

impl Toolchain {
    /// The toolchain of this process's environment, looked up once.
    pub fn discover() -> Result<&'static Toolchain, BuildFailure> {
        static TOOLCHAIN: OnceLock<Result<Toolchain, BuildFailure>> = OnceLock::new();
        TOOLCHAIN
            .get_or_init(Self::look_up)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn look_up() -> Result<Toolchain, BuildFailure> {
        let finished = supervise(
            Command::new("rustc").args(["--print", "sysroot"]),
            Io {
                stdin: Input::Null,
                stdout: Output::Capture {
                    cap_bytes: 64 << 10,
                },
                stderr: Output::Capture {
                    cap_bytes: 64 << 10,
                },
            },
            Duration::from_secs(60),
        )
        .map_err(|error| environment(format!("running `rustc --print sysroot`: {error}")))?;
        if finished.ending != Ending::Exited || !finished.status.success() {
            return Err(environment(format!(
                "`rustc --print sysroot` failed: {}",
                String::from_utf8_lossy(&finished.stderr).trim()
            )));
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&finished.stdout).trim());
        let cargo = sysroot.join("bin/cargo");
        let rustc = sysroot.join("bin/rustc");
        for program in [&cargo, &rustc] {
            if !program.is_file() {
                return Err(environment(format!(
                    "the toolchain at {} has no {}",
                    sysroot.display(),
                    program.display()
                )));
            }
        }
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
        let registry = cargo_home
            .map(|home| home.join("registry"))
            .filter(|registry| registry.is_dir());
        Ok(Toolchain {
            sysroot,
            cargo,
            rustc,
            registry,
        })
    }
}

/// Target triple candidates are built for: naming it keeps `+crt-static` away from build scripts
/// and proc-macros, which must stay dynamic.
fn target_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// System paths a build reads: programs (the linker), libraries (the static C library), the
/// dynamic loader's cache. `/etc` as a whole, `/proc`, `/home`, `/root` and `/tmp` stay out.
const SYSTEM_READABLE: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/lib32",
    "/etc/ld.so.cache",
    "/dev/urandom",
];
/// Devices a build writes to.
const SYSTEM_WRITABLE: &[&str] = &["/dev/null"];

/// Builds binary `bin` of the cargo project at `project_dir`, offline, in release, statically
/// linked (a sandboxed program cannot open shared libraries), in the confined view, and copies
/// it to `destination`. Builds into one target folder take turns, across processes too: the
/// binary copied is always the one this build made.
pub fn build(
    project_dir: &Path,
    bin: &str,
    config: &BuildConfig,
    destination: &Path,
) -> Result<(), BuildFailure> {
    let toolchain = Toolchain::discover()?;
    // Cargo runs in the project folder: relative paths would point elsewhere from there.
    let absolute = |path: &Path| {
        std::path::absolute(path)
            .map_err(|error| environment(format!("{}: {error}", path.display())))
    };
    let project_dir = &absolute(project_dir)?;
    let config = &BuildConfig {
        target_dir: absolute(&config.target_dir)?,
        ..config.clone()
    };
    let scratch = config.target_dir.join("sandbox-home");
    let cargo_home = scratch.join("cargo");
    for dir in [&scratch.join("home"), &scratch.join("tmp"), &cargo_home] {
        std::fs::create_dir_all(dir)
            .map_err(|error| environment(format!("creating {}: {error}", dir.display())))?;
    }
    let lock_path = config.target_dir.join(".build-lock");
    let lock = std::fs::File::create(&lock_path)
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|error| environment(format!("locking {}: {error}", lock_path.display())))?;
    claim_target(&config.target_dir, project_dir)?;
    if let Some(registry) = &toolchain.registry {
        link_registry(&cargo_home.join("registry"), registry)?;
    }
    let mut view = View {
        readable: SYSTEM_READABLE.iter().map(PathBuf::from).collect(),
        writable: SYSTEM_WRITABLE.iter().map(PathBuf::from).collect(),
    };
    view.readable.push(toolchain.sysroot.clone());
    view.readable.extend(toolchain.registry.clone());
    view.writable.push(project_dir.to_path_buf());
    view.writable.push(config.target_dir.clone());
    let confinement = view
        .prepare()
        .map_err(|error| environment(error.to_string()))?;
    let network = build_filter().map_err(|error| environment(error.to_string()))?;

    let triple = target_triple();
    let mut command = Command::new(&toolchain.cargo);
    command
        .args(["build", "--offline", "--release", "--quiet"])
        .args(["--target", &triple, "--bin", bin])
        .arg("--manifest-path")
        .arg(project_dir.join("Cargo.toml"))
        .current_dir(project_dir)
        .env_clear()
        .envs(allowed_environment(toolchain, &scratch, config));
    let limits = (config.address_space_bytes, config.file_size_bytes);
    // SAFETY: the closure runs between fork and exec. It makes only system calls (setrlimit,
    // prctl, landlock_restrict_self, seccomp) on data built before the fork (the limits, the
    // ruleset's descriptor, the compiled filter); it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || confine_build(limits, &confinement, &network));
    }
    let finished = supervise(
        &mut command,
        Io {
            stdin: Input::Null,
            stdout: Output::Null,
            stderr: Output::Capture {
                cap_bytes: config.output_cap_bytes,
            },
        },
        config.time_limit,
    )
    .map_err(|error| environment(format!("running {}: {error}", toolchain.cargo.display())))?;
    match finished.ending {
        Ending::DeadlinePassed => {
            return Err(BuildFailure::TimedOut {
                limit_ms: u64::try_from(config.time_limit.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ending::OutputCap(_) => {
            return Err(BuildFailure::OutputLimit {
                cap_bytes: config.output_cap_bytes,
            });
        }
        Ending::Stopped => return Err(environment("the build was abandoned by its caller")),
        Ending::Exited => {}
    }
    if !finished.status.success() {
        return Err(BuildFailure::Compile {
            diagnostics: trim_diagnostics(
                &String::from_utf8_lossy(&finished.stderr),
                config.max_diagnostic_bytes,
            ),
        });
    }
    let binary = config.target_dir.join(&triple).join("release").join(bin);
    if !binary.is_file() {
        return Err(environment(format!(
            "cargo succeeded but {} is missing",
            binary.display()
        )));
    }
    if let Some(folder) = destination.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|error| environment(format!("creating {}: {error}", folder.display())))?;
    }
    std::fs::copy(&binary, destination).map_err(|error| {
        environment(format!(
            "copying {} to {}: {error}",
            binary.display(),
            destination.display()
        ))
    })?;
    drop(lock);
    Ok(())
}

/// Cargo judges freshness by modification times and names a path package's outputs without
/// its folder: after a build of another project with the same package name, sources written
/// before that build ended would pass for built. When the target folder last built another
/// project, every file of this one is dated now, so cargo rebuilds it from its own sources.
fn claim_target(target_dir: &Path, project_dir: &Path) -> Result<(), BuildFailure> {
    let record = target_dir.join(".last-project");
    let project = project_dir.as_os_str().as_encoded_bytes();
    if std::fs::read(&record).is_ok_and(|last| last == project) {
        return Ok(());
    }
    let now = std::time::SystemTime::now();
    let mut folders = vec![project_dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|error| environment(format!("reading {}: {error}", folder.display())))?;
        for entry in entries {
            let entry = entry.map_err(|error| environment(error.to_string()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|error| environment(error.to_string()))?;
            if kind.is_dir() && path != target_dir {
                folders.push(path);
            } else if kind.is_file() {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(now))
                    .map_err(|error| environment(format!("dating {}: {error}", path.display())))?;
            }
        }
    }
    std::fs::write(&record, project)
        .map_err(|error| environment(format!("writing {}: {error}", record.display())))
}

/// The whole environment of a build: nothing is inherited.
fn allowed_environment(
    toolchain: &Toolchain,
    scratch: &Path,
    config: &BuildConfig,
) -> Vec<(&'static str, OsString)> {
    let mut path = toolchain.sysroot.join("bin").into_os_string();
    path.push(":/usr/bin:/bin");
    vec![
        ("PATH", path),
        ("HOME", scratch.join("home").into_os_string()),
        ("TMPDIR", scratch.join("tmp").into_os_string()),
        ("CARGO_HOME", scratch.join("cargo").into_os_string()),
        (
            "CARGO_TARGET_DIR",
            config.target_dir.clone().into_os_string(),
        ),
        ("CARGO_NET_OFFLINE", "true".into()),
        ("CARGO_TERM_COLOR", "never".into()),
        ("RUSTC", toolchain.rustc.clone().into_os_string()),
        ("RUSTFLAGS", "-C target-feature=+crt-static".into()),
    ]
}

/// The scratch cargo home reaches the real registry cache through a link, so that cargo's own
/// home (its credentials, its configuration) stays out of the view. Builds sharing a target
/// folder may race here: the link is made aside and renamed into place, which is atomic.
fn link_registry(link: &Path, registry: &Path) -> Result<(), BuildFailure> {
    if std::fs::read_link(link).is_ok_and(|target| target == registry) {
        return Ok(());
    }
    static LINKS: AtomicU64 = AtomicU64::new(0);
    let aside = link.with_file_name(format!(
        "registry-{}-{}",
        std::process::id(),
        LINKS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&aside);
    std::os::unix::fs::symlink(registry, &aside)
        .and_then(|()| std::fs::rename(&aside, link))
        .map_err(|error| environment(format!("linking {}: {error}", link.display())))
}

/// Runs in the build's child between fork and exec: its limits, its view, its network filter.
fn confine_build(
    (address_space, file_size): (u64, u64),
    confinement: &Confinement,
    network: &BpfProgram,
) -> std::io::Result<()> {
    set_limit(libc::RLIMIT_AS, address_space, address_space)?;
    set_limit(libc::RLIMIT_FSIZE, file_size, file_size)?;
    set_limit(libc::RLIMIT_CORE, 0, 0)?;
    confinement.apply()?;
    seccompiler::apply_filter(network).map_err(seccomp_error)
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
