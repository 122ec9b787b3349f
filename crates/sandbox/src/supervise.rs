//! The supervision every child of the lab runs under: its own process group, stdin fed from
//! memory, stdout and stderr captured up to a cap or sent to a file, a wall-clock limit after
//! which the whole group is killed, and its CPU time and peak memory read from the kernel when it
//! is reaped. Whatever happens, nothing of the group outlives the call. Work whose result may
//! be abandoned (a worker that lost its job's lease) runs under [`stop_children_when`], so that
//! its children are killed as soon as it is abandoned instead of running on.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a waiting supervisor looks at its child: short enough that a cap or deadline
/// overrun costs little, long enough to cost no measurable CPU.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

thread_local! {
    /// The flag set by [`stop_children_when`] for children supervised on this thread.
    static STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `work` on this thread so that every child it [`supervise`]s is killed, with its whole
/// group, as soon as `stop` turns true: that supervision then ends with [`Ending::Stopped`].
pub fn stop_children_when<R>(stop: Arc<AtomicBool>, work: impl FnOnce() -> R) -> R {
    /// Puts back the enclosing flag, also when `work` panics.
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let enclosing = self.0.take();
            STOP.with(|stop| *stop.borrow_mut() = enclosing);
        }
    }
    let _restore = Restore(STOP.with(|current| current.replace(Some(stop))));
    work()
}

/// What the child reads.
#[derive(Debug)]
pub enum Input {
    Null,
    Bytes(Vec<u8>),
}

/// Where one of the child's output streams goes.
#[derive(Debug)]
pub enum Output {
    Null,
    /// Kept in memory up to `cap_bytes`; one byte more kills the group.
    Capture {
        cap_bytes: usize,
    },
    /// Written to a file (a log) as it comes.
    File(File),
}

/// The child's three standard streams.
#[derive(Debug)]
pub struct Io {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

/// One of the captured output streams.
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

/// Why the supervision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The child ended by itself (its status says how).
    Exited,
    /// The wall-clock limit passed; the group was killed.
    DeadlinePassed,
    /// A captured stream went over its cap; the group was killed.
    OutputCap(Stream),
    /// The caller's [`stop_children_when`] flag turned true; the group was killed.
    Stopped,
}

/// A child that ended, and what it produced and used.
#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    pub status: ExitStatus,
    /// The captured stdout (empty unless captured).
    pub stdout: Vec<u8>,
    /// The captured stderr (empty unless captured).
    pub stderr: Vec<u8>,
    pub wall_time: Duration,
    /// User plus system CPU time of the child and the descendants it waited for.
    pub cpu_time: Duration,
    /// Peak resident memory of the child or its largest waited-for descendant.
    pub peak_memory_bytes: u64,
}

/// Starts `command` in a process group of its own with `io`, and waits for it to end, for a
/// captured stream to go over its cap or for `time_limit` to pass; then kills the whole group
/// and reaps the child. Errors are the caller's: the program cannot start or be waited for.
pub fn supervise(command: &mut Command, io: Io, time_limit: Duration) -> io::Result<Finished> {
    command.process_group(0);
    command.stdin(match io.stdin {
        Input::Null => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
    });
    let stdout_cap = output_stdio(command, &io.stdout, Stream::Stdout);
    let stderr_cap = output_stdio(command, &io.stderr, Stream::Stderr);
    if let Output::File(file) = io.stdout {
        command.stdout(file);
    }
    if let Output::File(file) = io.stderr {
        command.stderr(file);
    }

    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id();
    let feeder = match (io.stdin, child.stdin.take()) {
        (Input::Bytes(bytes), Some(mut pipe)) => Some(std::thread::spawn(move || {
            // The child may stop reading early or die; a broken pipe is its business.
            let _ = pipe.write_all(&bytes);
        })),
        _ => None,
    };
    let stdout_over = Arc::new(AtomicBool::new(false));
    let stderr_over = Arc::new(AtomicBool::new(false));
    let stdout_reader = stdout_cap
        .zip(child.stdout.take())
        .map(|(cap, pipe)| capture(pipe, cap, Arc::clone(&stdout_over)));
    let stderr_reader = stderr_cap
        .zip(child.stderr.take())
        .map(|(cap, pipe)| capture(pipe, cap, Arc::clone(&stderr_over)));

    let stop = STOP.with(|stop| stop.borrow().clone());
    let stopped = || {
        stop.as_ref()
            .is_some_and(|stop| stop.load(Ordering::Relaxed))
    };
    let waited = wait_until(pid, started + time_limit, &|| {
        stdout_over.load(Ordering::Relaxed) || stderr_over.load(Ordering::Relaxed) || stopped()
    });
    // Whatever happened, even a failure to wait, nothing of the group may outlive the call. The
    // leader is not reaped yet, so the group id cannot have been reused.
    kill_group(pid);
    let reaped = reap(pid)?;
    let waited = waited?;
    // Reaped by hand for its resource usage; std's handle has nothing left to wait for.
    drop(child);
    let wall_time = started.elapsed();
    let stdout = stdout_reader.map(join_capture).unwrap_or_default();
    let stderr = stderr_reader.map(join_capture).unwrap_or_default();
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let ending = if stdout_over.load(Ordering::Relaxed) {
        Ending::OutputCap(Stream::Stdout)
    } else if stderr_over.load(Ordering::Relaxed) {
        Ending::OutputCap(Stream::Stderr)
    } else if waited == Waited::Stopped {
        Ending::Stopped
    } else if waited == Waited::DeadlinePassed {
        Ending::DeadlinePassed
    } else {
        Ending::Exited
    };
    Ok(Finished {
        ending,
        status: reaped.status,
        stdout,
        stderr,
        wall_time,
        cpu_time: reaped.cpu_time,
        peak_memory_bytes: reaped.peak_memory_bytes,
    })
}

/// Sets up a stream that is not a file; the cap when it is captured.
fn output_stdio(command: &mut Command, output: &Output, stream: Stream) -> Option<usize> {
    let (stdio, cap) = match output {
        Output::Null => (Stdio::null(), None),
        Output::Capture { cap_bytes } => (Stdio::piped(), Some(*cap_bytes)),
        Output::File(_) => return None,
    };
    match stream {
        Stream::Stdout => command.stdout(stdio),
        Stream::Stderr => command.stderr(stdio),
    };
    cap
}

pub(crate) fn set_limit(
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we pass by reference and touches no other memory.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Why [`wait_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// The child ended (it is left unreaped so its group id stays reserved).
    Exited,
    DeadlinePassed,
    /// The caller's stop condition became true.
    Stopped,
}

/// Waits for child `pid` to end, the deadline to pass or `stop` to turn true, without reaping the
/// child, so that the caller can still kill its process group safely.
fn wait_until(pid: u32, deadline: Instant, stop: &dyn Fn() -> bool) -> io::Result<Waited> {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value (plain integers and unions of them).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`, which lives across the call. WNOWAIT leaves
        // the child waitable, so that it is reaped later, once its group is dealt with.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        // SAFETY: si_pid is set by waitid (zero when no child has changed state yet).
        if unsafe { info.si_pid() } != 0 {
            return Ok(Waited::Exited);
        }
        if stop() {
            return Ok(Waited::Stopped);
        }
        if Instant::now() >= deadline {
            return Ok(Waited::DeadlinePassed);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Sends SIGKILL to every process in the group led by `leader`. The leader must not have been
/// reaped yet, so that the group id still belongs to it.
fn kill_group(leader: u32) {
    let Ok(group) = libc::pid_t::try_from(leader) else {
        return;
    };
    // SAFETY: kill takes only integers. A negative pid addresses the process group; ESRCH (the
    // group already gone) is the expected result when everything exited on its own.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// A reaped child: how it ended and what it used.
struct Reaped {
    status: ExitStatus,
    cpu_time: Duration,
    peak_memory_bytes: u64,
}

fn timeval(value: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(value.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(value.tv_usec).unwrap_or(0))
}

/// Waits for child `pid` and collects its exit status with its CPU time and peak memory.
fn reap(pid: u32) -> io::Result<Reaped> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value (integers and timevals only).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes only into `status` and `usage`, both alive across the call. The
        // child is ours and std's handle never waited on it.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return Ok(Reaped {
                status: ExitStatus::from_raw(status),
                cpu_time: timeval(usage.ru_utime) + timeval(usage.ru_stime),
                // ru_maxrss is in kibibytes on Linux.
                peak_memory_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
            });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

type Capture = std::thread::JoinHandle<Vec<u8>>;

/// Reads a pipe to its end, keeping at most `cap` bytes; one byte more raises `over` and stops
/// reading (the supervisor then kills the group).
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
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept
    })
}

fn join_capture(handle: Capture) -> Vec<u8> {
    handle.join().unwrap_or_default()
}
