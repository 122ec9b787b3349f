//! Process-level mechanics shared by the sandbox and the candidate builder: confining a child
//! between fork and exec, waiting against a deadline without reaping, killing a process group.

use super::Limits;
use super::seccomp::CompiledFilters;
use std::io;
use std::time::{Duration, Instant};

/// How often a waiting runner looks at its child; short enough that a cap or deadline overrun
/// costs little, long enough to cost no measurable CPU.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The rlimits to set in the child, copied out of [`Limits`] before the fork.
#[derive(Clone, Copy)]
pub(crate) struct ResourceLimits {
    cpu_seconds: u64,
    address_space_bytes: u64,
    file_size_bytes: u64,
    open_files: u64,
    processes: u64,
}

impl From<&Limits> for ResourceLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            cpu_seconds: limits.cpu_seconds,
            address_space_bytes: limits.address_space_bytes,
            file_size_bytes: limits.file_size_bytes,
            open_files: limits.open_files,
            processes: limits.processes,
        }
    }
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

fn seccomp_error(error: seccompiler::Error) -> io::Error {
    // Only raw errno values here: this runs after fork, where allocating is not allowed.
    match error {
        seccompiler::Error::Prctl(inner) | seccompiler::Error::Seccomp(inner) => {
            io::Error::from_raw_os_error(inner.raw_os_error().unwrap_or(libc::EPERM))
        }
        _ => io::Error::from_raw_os_error(libc::EINVAL),
    }
}

/// Runs in the child between fork and exec: dies with the parent, takes its rlimits, then
/// installs the seccomp filters (the allowlist last, since it forbids installing filters).
pub(crate) fn confine_child(limits: &ResourceLimits, filters: &CompiledFilters) -> io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes only integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    set_limit(
        libc::RLIMIT_CPU,
        limits.cpu_seconds,
        limits.cpu_seconds.saturating_add(1),
    )?;
    set_limit(
        libc::RLIMIT_AS,
        limits.address_space_bytes,
        limits.address_space_bytes,
    )?;
    set_limit(
        libc::RLIMIT_FSIZE,
        limits.file_size_bytes,
        limits.file_size_bytes,
    )?;
    set_limit(libc::RLIMIT_NOFILE, limits.open_files, limits.open_files)?;
    set_limit(libc::RLIMIT_NPROC, limits.processes, limits.processes)?;
    set_limit(libc::RLIMIT_CORE, 0, 0)?;
    seccompiler::apply_filter(&filters.refuse_opens).map_err(seccomp_error)?;
    seccompiler::apply_filter(&filters.allowlist).map_err(seccomp_error)?;
    Ok(())
}

/// Why [`wait_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The child ended (it is left unreaped so its group id stays reserved).
    Exited,
    DeadlinePassed,
    /// The caller's stop condition became true.
    Stopped,
}

/// Waits for child `pid` to end, the deadline to pass or `stop` to turn true, without reaping the
/// child, so that the caller can still kill its process group safely.
pub(crate) fn wait_until(
    pid: u32,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<Ending> {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value (plain integers and unions of them).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`, which lives across the call. WNOWAIT leaves
        // the child waitable, so std's own wait() reaps it later.
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
            return Ok(Ending::Exited);
        }
        if stop() {
            return Ok(Ending::Stopped);
        }
        if Instant::now() >= deadline {
            return Ok(Ending::DeadlinePassed);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Sends SIGKILL to every process in the group led by `leader`. The leader must not have been
/// reaped yet, so that the group id still belongs to it.
pub(crate) fn kill_group(leader: u32) {
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
pub(crate) struct Reaped {
    pub(crate) status: std::process::ExitStatus,
    pub(crate) cpu_time: Duration,
    pub(crate) peak_memory_bytes: u64,
}

fn timeval(value: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(value.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(value.tv_usec).unwrap_or(0))
}

/// Waits for child `pid` and collects its exit status with its CPU time and peak memory.
pub(crate) fn reap(pid: u32) -> io::Result<Reaped> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value (integers and timevals only).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes only into `status` and `usage`, both alive across the call.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return Ok(Reaped {
                status: std::process::ExitStatus::from_raw(status),
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
