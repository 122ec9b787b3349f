//! Running an external program the way the runner needs it: in a given working directory, with
//! nothing on stdin, its output kept in log files, a wall-clock limit that kills its whole
//! process group, and its own CPU time and peak memory read from the kernel when it is reaped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What running one step cost. `None` means not measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    pub wall_seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub peak_memory_bytes: Option<u64>,
}

/// Why a program run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} exited with {status}{tail}")]
    Failed {
        program: String,
        status: String,
        tail: String,
    },
    #[error("{program} ran past its {seconds} s limit and was killed")]
    TimedOut { program: String, seconds: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The last lines of a log, to explain a failure.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(6).collect();
    if lines.is_empty() {
        String::new()
    } else {
        let tail: Vec<&str> = lines.into_iter().rev().collect();
        format!(": {}", tail.join(" | "))
    }
}

/// Runs `command` in `workdir`, stdout and stderr to `log` (appended), killed with its process
/// group after `limit`. Returns its wall time, user+system CPU time and peak resident memory.
pub fn run_measured(
    mut command: Command,
    workdir: &Path,
    log: &Path,
    limit: Duration,
) -> Result<StepCost, ProcessError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let log_file = File::options().create(true).append(true).open(log)?;
    command
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0);
    let start = Instant::now();
    let child = command.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id() as libc::pid_t;
    let (status, usage) = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` never waited on it);
        // `status` and `usage` are valid for writes. wait4 is used instead of `Child::wait`
        // because it also returns the child's own resource usage.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break (status, usage);
        }
        if reaped < 0 {
            return Err(ProcessError::Io(std::io::Error::last_os_error()));
        }
        if start.elapsed() > limit {
            // SAFETY: signalling the process group we created for the child (`process_group(0)`).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let mut status: libc::c_int = 0;
            // SAFETY: as above; reaps the killed child so no zombie is left.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return Err(ProcessError::TimedOut {
                program,
                seconds: limit.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall_seconds = start.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let status = if libc::WIFSIGNALED(status) {
            format!("signal {}", libc::WTERMSIG(status))
        } else {
            format!("status {}", libc::WEXITSTATUS(status))
        };
        return Err(ProcessError::Failed {
            program,
            status,
            tail: log_tail(log),
        });
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(StepCost {
        wall_seconds,
        cpu_seconds: Some(seconds(usage.ru_utime) + seconds(usage.ru_stime)),
        // Linux reports ru_maxrss in kilobytes.
        peak_memory_bytes: Some(usage.ru_maxrss as u64 * 1024),
    })
}

/// CPU time (user + system) of the calling thread so far, in seconds.
pub fn thread_cpu_seconds() -> Option<f64> {
    // SAFETY: an all-zero `rusage` is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid pointer; the call has no other effect.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    (rc == 0).then(|| {
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        seconds(usage.ru_utime) + seconds(usage.ru_stime)
    })
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
