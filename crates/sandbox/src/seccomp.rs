//! System-call filters: the allowlist an untrusted program runs under, and the network filter a
//! confined build runs under.
//!
//! An untrusted program gets two stacked filters. The first kills it on any call outside the
//! allowlist. The second makes every call that resolves a path (open, stat, access, readlink)
//! fail with `EACCES`, whether the path exists or not, so that nothing can be read or probed,
//! yet the C runtime survives its start-up probes of `/proc/self`. The kernel applies the most
//! severe verdict of the stacked filters. Signals may only go to the program itself (the filter
//! compares the target with its own pid, written into the compiled filter in the child after the
//! fork), and the only exec allowed is `execveat` on the descriptor the runner opened, which
//! closes at that very exec; a path given instead resolves in the program's empty root, where
//! there is nothing to execute.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::io;

/// Calls a statically linked program needs to start, read stdin and arguments, compute, write
/// stdout/stderr, allocate memory, abort on failure and exit; those that take a pid or a command
/// are allowed only with harmless arguments, in [`conditional_calls`].
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_lseek,
    libc::SYS_ppoll,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_futex,
    libc::SYS_getrandom,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_sched_yield,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_set_tid_address,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_uname,
    libc::SYS_exit,
    libc::SYS_exit_group,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_arch_prctl,
];

/// Calls that resolve a path: refused with `EACCES`, the same answer for every path.
const REFUSED_PATHS: &[libc::c_long] = &[
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_creat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
];

/// The descriptor number the runner puts the program's binary at for `execveat`.
pub(crate) const EXEC_FD: libc::c_int = 200;

/// Stands for the program's pid in the compiled filter until the child knows it. A value no
/// syscall number, flag or descriptor of the filter takes.
const PID_PLACEHOLDER: u32 = 0x7e5a_9d31;
/// How many comparisons use the placeholder: `kill`'s, `tkill`'s and `tgkill`'s two.
const PID_COMPARISONS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("this architecture has no seccomp support in the sandbox: {0}")]
    Architecture(String),
    #[error("building the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("the compiled filter holds {found} pid comparisons, not {PID_COMPARISONS}")]
    Placeholder { found: usize },
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|_| SeccompError::Architecture(std::env::consts::ARCH.to_owned()))
}

fn equals(arg: u8, value: u64) -> Result<SeccompCondition, SeccompError> {
    Ok(SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        value,
    )?)
}

/// The calls allowed only with given arguments.
fn conditional_calls() -> Result<Vec<(libc::c_long, Vec<SeccompRule>)>, SeccompError> {
    let pid = u64::from(PID_PLACEHOLDER);
    Ok(vec![
        // Reading its own limits (the C runtime does at start-up): pid 0 and a null new-limit
        // pointer. A program running as root could otherwise raise its hard limits, and any
        // program could tell which pids exist.
        (
            libc::SYS_prlimit64,
            vec![SeccompRule::new(vec![
                equals(0, 0)?,
                SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0)?,
            ])?],
        ),
        // Its own CPUs (how many threads the runtime would use), not another process's.
        (
            libc::SYS_sched_getaffinity,
            vec![SeccompRule::new(vec![equals(0, 0)?])?],
        ),
        // Reading a descriptor's flags (the runtime checks its standard streams); setting an
        // owner, a signal or O_ASYNC would have the kernel signal another process.
        (
            libc::SYS_fcntl,
            vec![
                SeccompRule::new(vec![equals(1, libc::F_GETFD as u64)?])?,
                SeccompRule::new(vec![equals(1, libc::F_GETFL as u64)?])?,
            ],
        ),
        // `abort()` raises SIGABRT on itself; nothing else may be signalled.
        (
            libc::SYS_tgkill,
            vec![SeccompRule::new(vec![equals(0, pid)?, equals(1, pid)?])?],
        ),
        (
            libc::SYS_tkill,
            vec![SeccompRule::new(vec![equals(0, pid)?])?],
        ),
        (
            libc::SYS_kill,
            vec![SeccompRule::new(vec![equals(0, pid)?])?],
        ),
        // The one exec that starts the program: its binary's descriptor, no path.
        (
            libc::SYS_execveat,
            vec![SeccompRule::new(vec![
                equals(0, EXEC_FD as u64)?,
                equals(4, libc::AT_EMPTY_PATH as u64)?,
            ])?],
        ),
    ])
}

fn compile(
    syscalls: &[libc::c_long],
    conditional: Vec<(libc::c_long, Vec<SeccompRule>)>,
    on_listed: SeccompAction,
    otherwise: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> = syscalls
        .iter()
        .map(|&call| (call, Vec::new()))
        .chain(conditional)
        .collect();
    let filter = SeccompFilter::new(rules, otherwise, on_listed, target_arch()?)?;
    Ok(filter.try_into()?)
}

/// The filters of an untrusted program, compiled before the fork; the child binds them to its
/// pid and installs them just before it executes the program.
pub(crate) struct RunFilters {
    refuse_paths: BpfProgram,
    allowlist: BpfProgram,
    /// Where the allowlist compares with [`PID_PLACEHOLDER`].
    pid_slots: [usize; PID_COMPARISONS],
}

impl RunFilters {
    pub(crate) fn compile() -> Result<Self, SeccompError> {
        // The path calls pass the allowlist, so that the second filter's EACCES is the verdict.
        let listed: Vec<libc::c_long> = ALLOWED.iter().chain(REFUSED_PATHS).copied().collect();
        let allowlist = compile(
            &listed,
            conditional_calls()?,
            SeccompAction::Allow,
            SeccompAction::KillProcess,
        )?;
        let slots: Vec<usize> = allowlist
            .iter()
            .enumerate()
            .filter(|(_, instruction)| {
                instruction.code == (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16
                    && instruction.k == PID_PLACEHOLDER
            })
            .map(|(index, _)| index)
            .collect();
        let pid_slots = slots
            .as_slice()
            .try_into()
            .map_err(|_| SeccompError::Placeholder { found: slots.len() })?;
        Ok(Self {
            refuse_paths: compile(
                REFUSED_PATHS,
                Vec::new(),
                SeccompAction::Errno(libc::EACCES as u32),
                SeccompAction::Allow,
            )?,
            allowlist,
            pid_slots,
        })
    }

    /// In the child, after the fork: writes its pid into the signal rules and installs both
    /// filters (the allowlist last, since it forbids installing filters). Writes into memory
    /// allocated before the fork and makes only system calls.
    pub(crate) fn install_for(&mut self, pid: libc::pid_t) -> io::Result<()> {
        for &slot in &self.pid_slots {
            self.allowlist[slot].k = pid as u32;
        }
        seccompiler::apply_filter(&self.refuse_paths).map_err(seccomp_error)?;
        seccompiler::apply_filter(&self.allowlist).map_err(seccomp_error)
    }
}

/// The filter of a confined build: the toolchain's own programs, trusted, run unhindered but
/// for the network: a socket of any family but Unix, and io_uring (which can open sockets
/// without the `socket` call), fail with `EACCES`.
pub(crate) fn build_filter() -> Result<BpfProgram, SeccompError> {
    let not_unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        libc::AF_UNIX as u64,
    )?;
    compile(
        &[libc::SYS_io_uring_setup],
        vec![
            (
                libc::SYS_socket,
                vec![SeccompRule::new(vec![not_unix.clone()])?],
            ),
            (
                libc::SYS_socketpair,
                vec![SeccompRule::new(vec![not_unix])?],
            ),
        ],
        SeccompAction::Errno(libc::EACCES as u32),
        SeccompAction::Allow,
    )
}

pub(crate) fn seccomp_error(error: seccompiler::Error) -> io::Error {
    // Only raw errno values here: this runs after fork, where allocating is not allowed.
    match error {
        seccompiler::Error::Prctl(inner) | seccompiler::Error::Seccomp(inner) => {
            io::Error::from_raw_os_error(inner.raw_os_error().unwrap_or(libc::EPERM))
        }
        _ => io::Error::from_raw_os_error(libc::EINVAL),
    }
}
