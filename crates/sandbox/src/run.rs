//! The fixed runner for untrusted programs (candidate codec builds).
//!
//! A program runs in its own process group with an empty environment, holding no descriptor but
//! its stdin, stdout and stderr, in a user namespace of its own (no capability on the machine,
//! whoever runs the lab), with an empty folder as its root (every path it could name resolves
//! inside it: nothing to execute or to probe), under resource limits (address space,
//! CPU time, file size, open files, processes), the seccomp filters of [`crate::seccomp`] (no
//! path opened or probed, no socket, no process or thread, no signal to another process, no exec
//! after the start), and a wall-clock limit after which the whole process group is killed. Its
//! stdout and stderr are captured up to a cap; going over the cap kills it. Every way a run can
//! end is a typed [`Outcome`] with a readable reason.

use crate::seccomp::{EXEC_FD, RunFilters, SeccompError};
use crate::supervise::{Ending, Input, Io, Output, Stream, set_limit, supervise};
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

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
    #[error("killed: its caller abandoned the run")]
    Stopped,
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
    #[error(
        "{0} cannot start in the sandbox: it is dynamically linked, and its loader and libraries are out of its reach (candidates are built statically)"
    )]
    NotStatic(PathBuf),
}

/// Marker the Rust runtime prints before aborting on a failed allocation.
const ALLOCATION_FAILURE: &[u8] = b"memory allocation of ";

/// Runs a program under the sandbox and reports how it ended. Errors are the lab's own failures
/// (cannot start it); everything the program does is an [`Outcome`].
pub fn run(request: &RunRequest) -> Result<RunReport, SandboxError> {
    if !request.program.is_absolute() {
        return Err(SandboxError::RelativeProgram(request.program.clone()));
    }
    let spawn_error = |source| SandboxError::Spawn {
        program: request.program.clone(),
        source,
    };
    // Empty, and gone once the run ends; the program never learns where it was.
    let root = tempfile::Builder::new()
        .prefix("codeclab-run-root-")
        .tempdir()
        .map_err(spawn_error)?;
    let limits = request.limits.clone();
    let mut start = Start {
        binary: File::open(&request.program).map_err(spawn_error)?,
        arguments: Arguments::new(&request.program, &request.args).map_err(spawn_error)?,
        root: CString::new(root.path().as_os_str().as_bytes())
            .map_err(|_| spawn_error(io::Error::from_raw_os_error(libc::EINVAL)))?,
        limits: ResourceLimits::from(&limits),
        filters: RunFilters::compile()?,
    };

    let mut command = Command::new(&request.program);
    command.env_clear().current_dir("/");
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // work is allowed. It makes only raw system calls (prctl, dup3, close_range, setrlimit,
    // unshare, chroot, chdir, getpid, seccomp, execveat) on data fully built before the fork (the
    // limits, the compiled filters, the argument vector, the root's path, the binary's
    // descriptor), and writes only into the filters' own memory; it allocates nothing and takes
    // no lock.
    unsafe {
        command.pre_exec(move || start.confine_and_execute());
    }
    let finished = supervise(
        &mut command,
        Io {
            stdin: Input::Bytes(request.stdin.clone()),
            stdout: Output::Capture {
                cap_bytes: limits.stdout_cap_bytes,
            },
            stderr: Output::Capture {
                cap_bytes: limits.stderr_cap_bytes,
            },
        },
        limits.wall_clock,
    )
    .map_err(|error| match error.kind() {
        // The binary's descriptor is open: only the loader it names can be missing.
        io::ErrorKind::NotFound => SandboxError::NotStatic(request.program.clone()),
        _ => spawn_error(error),
    })?;

    let outcome = match finished.ending {
        Ending::OutputCap(stream) => Outcome::OutputCap {
            stream,
            cap_bytes: match stream {
                Stream::Stdout => limits.stdout_cap_bytes,
                Stream::Stderr => limits.stderr_cap_bytes,
            },
        },
        Ending::Stopped => Outcome::Stopped,
        Ending::DeadlinePassed => Outcome::Timeout {
            limit_ms: u64::try_from(limits.wall_clock.as_millis()).unwrap_or(u64::MAX),
        },
        Ending::Exited => match finished.status.code() {
            Some(0) => Outcome::Ok,
            Some(code) => Outcome::Failed { code },
            None => classify_signal(
                finished.status.signal().unwrap_or(0),
                &finished.stderr,
                &limits,
            ),
        },
    };
    Ok(RunReport {
        outcome,
        stdout: finished.stdout,
        stderr: finished.stderr,
        wall_time: finished.wall_time,
        cpu_time: finished.cpu_time,
        peak_memory_bytes: finished.peak_memory_bytes,
    })
}

/// The program's argument vector and an empty environment, as the kernel takes them, built
/// before the fork.
struct Arguments {
    _storage: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: [*const libc::c_char; 1],
}

// SAFETY: the pointers point into `_storage`, owned by the same value and never changed; the
// value is only read.
unsafe impl Send for Arguments {}
// SAFETY: as above.
unsafe impl Sync for Arguments {}

impl Arguments {
    fn new(program: &std::path::Path, args: &[OsString]) -> io::Result<Self> {
        let to_c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        };
        let storage = std::iter::once(to_c(program.as_os_str().as_bytes()))
            .chain(args.iter().map(|arg| to_c(arg.as_bytes())))
            .collect::<io::Result<Vec<CString>>>()?;
        let argv = storage
            .iter()
            .map(|arg| arg.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(Self {
            _storage: storage,
            argv,
            envp: [std::ptr::null()],
        })
    }
}

/// The rlimits to set in the child, copied out of [`Limits`] before the fork.
#[derive(Clone, Copy)]
struct ResourceLimits {
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

/// Everything the child needs between fork and exec, prepared before the fork.
struct Start {
    binary: File,
    arguments: Arguments,
    /// An empty folder, the program's root.
    root: CString,
    limits: ResourceLimits,
    filters: RunFilters,
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Start {
    /// Runs in the child between fork and exec: dies with the parent, keeps only its standard
    /// streams and the binary's descriptor (which closes at the exec: once started, the program
    /// holds nothing it could execute), takes its rlimits, moves into the empty root, installs
    /// the filters bound to its own pid, and executes the binary through that descriptor.
    /// Returns only on failure.
    fn confine_and_execute(&mut self) -> io::Result<()> {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes only integers.
        check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) }.into())?;
        // SAFETY: dup3 takes two descriptor numbers and a flag; `self.binary` is open.
        check(unsafe { libc::dup3(self.binary.as_raw_fd(), EXEC_FD, libc::O_CLOEXEC) }.into())?;
        // Whatever the lab was started with (logs, sockets, terminals) closes at the exec.
        // SAFETY: close_range takes integers only.
        check(unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        })?;
        let limits = &self.limits;
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
        set_limit(libc::RLIMIT_MEMLOCK, 0, 0)?;
        // A user namespace of its own: the program holds no capability on the machine, even
        // when the lab runs as root (none to lock memory, poison pages, or pass a permission
        // check), and may change its root within the mount namespace that comes with it.
        // SAFETY: unshare takes flags only; the child has a single thread, as a new user
        // namespace requires.
        check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) }.into())?;
        // SAFETY: chroot and chdir read the C strings they are given, which outlive the calls.
        check(unsafe { libc::chroot(self.root.as_ptr()) }.into())?;
        // SAFETY: as above.
        check(unsafe { libc::chdir(c"/".as_ptr()) }.into())?;
        // SAFETY: getpid takes no argument and cannot fail.
        self.filters.install_for(unsafe { libc::getpid() })?;
        // SAFETY: the path is an empty C string, argv and envp are null-terminated vectors of
        // pointers to C strings that live in `self.arguments`, and AT_EMPTY_PATH makes the
        // kernel execute the file EXEC_FD refers to.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                EXEC_FD,
                c"".as_ptr(),
                self.arguments.argv.as_ptr(),
                self.arguments.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        Err(io::Error::last_os_error())
    }
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
