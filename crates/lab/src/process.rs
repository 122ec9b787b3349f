//! Running an external program the way the runner needs it: in a given working directory, with
//! nothing on stdin, its output kept in log files, under the sandbox crate's supervision (a
//! wall-clock limit that kills its whole process group, its own CPU time and peak memory read
//! from the kernel when it is reaped).

use codeclab_sandbox::{Ending, Input, Io, Output, supervise};
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    #[error("{program} was killed: its run was abandoned")]
    Stopped { program: String },
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
    command.current_dir(workdir);
    let io = Io {
        stdin: Input::Null,
        stdout: Output::File(log_file.try_clone()?),
        stderr: Output::File(log_file),
    };
    let finished = supervise(&mut command, io, limit).map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    if finished.ending == Ending::Stopped {
        return Err(ProcessError::Stopped { program });
    }
    if finished.ending == Ending::DeadlinePassed {
        return Err(ProcessError::TimedOut {
            program,
            seconds: limit.as_secs(),
        });
    }
    if !finished.status.success() {
        let status = match (finished.status.code(), finished.status.signal()) {
            (Some(code), _) => format!("status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => finished.status.to_string(),
        };
        return Err(ProcessError::Failed {
            program,
            status,
            tail: log_tail(log),
        });
    }
    Ok(StepCost {
        wall_seconds: finished.wall_time.as_secs_f64(),
        cpu_seconds: Some(finished.cpu_time.as_secs_f64()),
        peak_memory_bytes: Some(finished.peak_memory_bytes),
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
