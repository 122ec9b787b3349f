//! The system-call allowlist every sandboxed program runs under.
//!
//! Two stacked filters: the first kills the process on any call outside the allowlist; the second
//! makes every attempt to open a path fail with `EACCES` instead of killing, because the C runtime
//! probes `/proc/self/maps` at start-up and a program must survive that probe. The kernel applies
//! the most severe verdict of the stacked filters, so an open is refused and anything unlisted kills.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Calls a statically linked program needs to start, read stdin and arguments, compute, write
/// stdout/stderr, allocate memory, abort on failure and exit. No sockets, no process creation, no
/// file creation, no signals to other processes.
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_fcntl,
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
    libc::SYS_sched_getaffinity,
    libc::SYS_getpid,
    libc::SYS_gettid,
    // `abort()` raises SIGABRT on the calling thread; refusing it would hide out-of-memory aborts.
    libc::SYS_tgkill,
    libc::SYS_set_tid_address,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_uname,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // The filter is installed before the program is executed, so the exec itself must pass.
    libc::SYS_execve,
    libc::SYS_openat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_arch_prctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
];

/// Calls that name a path to open or create: refused with `EACCES`.
const REFUSED_OPENS: &[libc::c_long] = &[
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_creat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
];

/// Both compiled filters, ready to install in the child between fork and exec.
pub(crate) struct CompiledFilters {
    pub(crate) allowlist: BpfProgram,
    pub(crate) refuse_opens: BpfProgram,
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("this architecture has no seccomp support in the sandbox: {0}")]
    Architecture(String),
    #[error("building the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|_| SeccompError::Architecture(std::env::consts::ARCH.to_owned()))
}

/// `prlimit64` only to read limits (the C runtime does at start-up): a null new-limit pointer.
/// A program running as root could otherwise raise its own hard limits.
fn read_only_prlimit() -> Result<Vec<SeccompRule>, SeccompError> {
    let null_new_limit = SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0)?;
    Ok(vec![SeccompRule::new(vec![null_new_limit])?])
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

pub(crate) fn compile_filters() -> Result<CompiledFilters, SeccompError> {
    Ok(CompiledFilters {
        allowlist: compile(
            ALLOWED,
            vec![(libc::SYS_prlimit64, read_only_prlimit()?)],
            SeccompAction::Allow,
            SeccompAction::KillProcess,
        )?,
        refuse_opens: compile(
            REFUSED_OPENS,
            Vec::new(),
            SeccompAction::Errno(libc::EACCES as u32),
            SeccompAction::Allow,
        )?,
    })
}
