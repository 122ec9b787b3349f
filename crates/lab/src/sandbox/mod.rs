//! The fixed runner for untrusted programs (candidate codec builds). Not evolvable.
//!
//! A program runs in its own process group with an empty environment, under resource limits
//! (address space, CPU time, file size, open files, processes), a seccomp allowlist that allows no
//! sockets, no process creation and no file opening, and a wall-clock limit after which the whole
//! process group is killed. Its stdout and stderr are captured up to a cap; going over the cap kills
//! it. Every way a run can end is a typed [`Outcome`] with a readable reason.

mod process;
mod seccomp;

pub(crate) use process::{Ending, kill_group, set_limit, wait_until};
pub use seccomp::SeccompError;

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Resource limits of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Real time after which the whole process group is killed.
    pub wall_clock: Duration,
    /// `RLIMIT_CPU`: CPU seconds before the kernel stops the program.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS`: bytes of virtual address space.
    pub address_space_bytes: u64,
    /// `RLIMIT_FSIZE`: the largest file the program may write (pipes are not files).
    pub file_size_bytes: u64,
    /// `RLIMIT_NOFILE`: open descriptors.
    pub open_files: u64,
    /// `RLIMIT_NPROC`: processes of the user (the seccomp filter already forbids creating any).
    pub processes: u64,
    /// Bytes of stdout kept; one more kills the run.
    pub stdout_cap_bytes: usize,
    /// Bytes of stderr kept; one more kills the run.
    pub stderr_cap_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_clock: Duration::from_secs(120),
            cpu_seconds: 120,
            address_space_bytes: 4 << 30,
            file_size_bytes: 0,
            open_files: 32,
            processes: 1,
            stdout_cap_bytes: 256 << 20,
            stderr_cap_bytes: 1 << 20,
        }
    }
}

/// One program to run: an absolute path, its arguments, its stdin and its limits.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub stdin: Vec<u8>,
    pub limits: Limits,
}

/// Which captured stream went over its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// How a sandboxed run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    #[error("exited successfully")]
    Ok,
    #[error("exited with status {code}")]
    Failed { code: i32 },
    #[error("killed after the wall-clock limit of {limit_ms} ms")]
    Timeout { limit_ms: u64 },
    #[error("stopped by the CPU-time limit of {limit_seconds} s")]
    CpuLimit { limit_seconds: u64 },
    #[error("ran out of memory under the address-space limit of {limit_bytes} bytes")]
    OutOfMemory { limit_bytes: u64 },
    #[error("killed for a system call outside the sandbox allowlist (network, processes, …)")]
    ForbiddenSyscall,
    #[error("killed for writing more than {cap_bytes} bytes to {stream}")]
    OutputCap { stream: Stream, cap_bytes: usize },
    #[error("stopped by the file-size limit of {limit_bytes} bytes")]
    FileSizeLimit { limit_bytes: u64 },
    #[error("killed by signal {signal}")]
    Signal { signal: i32 },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

/// What a run produced, whatever its outcome.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub outcome: Outcome,
    /// Stdout up to the cap.
    pub stdout: Vec<u8>,
    /// Stderr up to the cap.
    pub stderr: Vec<u8>,
    pub wall_time: Duration,
    /// User plus system CPU time of the program, from the kernel.
    pub cpu_time: Duration,
    /// Peak resident memory of the program, from the kernel.
    pub peak_memory_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the program path must be absolute: {0}")]
    RelativeProgram(PathBuf),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("starting {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for the sandboxed program: {0}")]
    Wait(std::io::Error),
}

/// Marker the Rust runtime prints before aborting on a failed allocation.
const ALLOCATION_FAILURE: &[u8] = b"memory allocation of ";

/// Runs a program under the sandbox and reports how it ended. Errors are the lab's own failures
/// (cannot start it); everything the program does is an [`Outcome`].
pub fn run(request: &RunRequest) -> Result<RunReport, SandboxError> {
    if !request.program.is_absolute() {
        return Err(SandboxError::RelativeProgram(request.program.clone()));
    }
    let filters = seccomp::compile_filters()?;
    let limits = request.limits.clone();
    let rlimits = process::ResourceLimits::from(&limits);

    let mut command = Command::new(&request.program);
    command
        .args(&request.args)
        .env_clear()
        .current_dir("/")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // work is allowed. It makes only raw system calls (prctl, setrlimit, seccomp) on data that
    // was fully built before the fork (the limits and the compiled BPF programs); it allocates
    // nothing and takes no lock.
    unsafe {
        command.pre_exec(move || process::confine_child(&rlimits, &filters));
    }

    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        program: request.program.clone(),
        source,
    })?;
    let pid = child.id();

    let stdin_pipe = child.stdin.take();
    let stdin_bytes = request.stdin.clone();
    let feeder = std::thread::spawn(move || {
        if let Some(mut pipe) = stdin_pipe {
            // The program may stop reading early or die; a broken pipe is its business.
            let _ = pipe.write_all(&stdin_bytes);
        }
    });
    let stdout_over = Arc::new(AtomicBool::new(false));
    let stderr_over = Arc::new(AtomicBool::new(false));
    let stdout_reader = child
        .stdout
        .take()
        .map(|pipe| capture(pipe, limits.stdout_cap_bytes, Arc::clone(&stdout_over)));
    let stderr_reader = child
        .stderr
        .take()
        .map(|pipe| capture(pipe, limits.stderr_cap_bytes, Arc::clone(&stderr_over)));

    let deadline = started + limits.wall_clock;
    let ending = wait_until(pid, deadline, &|| {
        stdout_over.load(Ordering::Relaxed) || stderr_over.load(Ordering::Relaxed)
    });
    // Whatever happened, even a failure to wait, nothing of the group may outlive the run. The
    // leader is not reaped yet, so the group id cannot have been reused.
    kill_group(pid);
    let reaped = process::reap(pid).map_err(SandboxError::Wait)?;
    let ending = ending.map_err(SandboxError::Wait)?;
    // Reaped by hand for its resource usage; std's handle has nothing left to wait for.
    drop(child);
    let status = reaped.status;
    let wall_time = started.elapsed();
    let stdout = stdout_reader.map(join_capture).unwrap_or_default();
    let stderr = stderr_reader.map(join_capture).unwrap_or_default();
    let _ = feeder.join();

    let outcome = if stdout_over.load(Ordering::Relaxed) {
        Outcome::OutputCap {
            stream: Stream::Stdout,
            cap_bytes: limits.stdout_cap_bytes,
        }
    } else if stderr_over.load(Ordering::Relaxed) {
        Outcome::OutputCap {
            stream: Stream::Stderr,
            cap_bytes: limits.stderr_cap_bytes,
        }
    } else if ending == process::Ending::DeadlinePassed {
        Outcome::Timeout {
            limit_ms: u64::try_from(limits.wall_clock.as_millis()).unwrap_or(u64::MAX),
        }
    } else if let Some(code) = status.code() {
        if code == 0 {
            Outcome::Ok
        } else {
            Outcome::Failed { code }
        }
    } else {
        classify_signal(status.signal().unwrap_or(0), &stderr, &limits)
    };
    Ok(RunReport {
        outcome,
        stdout,
        stderr,
        wall_time,
        cpu_time: reaped.cpu_time,
        peak_memory_bytes: reaped.peak_memory_bytes,
    })
}

fn classify_signal(signal: i32, stderr: &[u8], limits: &Limits) -> Outcome {
    match signal {
        libc::SIGSYS => Outcome::ForbiddenSyscall,
        // The soft CPU limit sends SIGXCPU, the hard one (a second later) SIGKILL.
        libc::SIGXCPU => Outcome::CpuLimit {
            limit_seconds: limits.cpu_seconds,
        },
        libc::SIGXFSZ => Outcome::FileSizeLimit {
            limit_bytes: limits.file_size_bytes,
        },
        libc::SIGABRT
            if stderr
                .windows(ALLOCATION_FAILURE.len())
                .any(|window| window == ALLOCATION_FAILURE) =>
        {
            Outcome::OutOfMemory {
                limit_bytes: limits.address_space_bytes,
            }
        }
        signal => Outcome::Signal { signal },
    }
}

type Capture = std::thread::JoinHandle<Vec<u8>>;

/// Reads a pipe to its end, keeping at most `cap` bytes; one byte more raises `over` and stops
/// reading (the runner then kills the group).
fn capture(mut pipe: impl Read + Send + 'static, cap: usize, over: Arc<AtomicBool>) -> Capture {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => {
                    let room = cap - kept.len();
                    if read > room {
                        kept.extend_from_slice(&chunk[..room]);
                        over.store(true, Ordering::Relaxed);
                        break;
                    }
                    kept.extend_from_slice(&chunk[..read]);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept
    })
}

fn join_capture(handle: Capture) -> Vec<u8> {
    handle.join().unwrap_or_default()
}
