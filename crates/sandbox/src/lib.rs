//! The one runner for untrusted code, and the supervision every program the lab starts goes
//! through. Not evolvable: nothing here is ever shown to a planner.
//!
//! - [`supervise`]: a child in its own process group, its stdin fed, its stdout and stderr
//!   captured up to a cap (or sent to a file), a wall-clock limit that kills the whole group, and
//!   its CPU time and peak memory read from the kernel.
//! - [`run`]: an untrusted, statically linked program (a candidate codec build). Empty
//!   environment, resource limits (address space, CPU time, file size, open files, processes),
//!   and a seccomp allowlist: no file or path may be opened or probed, no socket, no process or
//!   thread created, no signal sent to any other process, no program executed after the start.
//! - [`build`]: `cargo build --offline` of a candidate workspace in a confined view: the
//!   environment cleared to an allowlist with a scratch `HOME`, Landlock letting the whole
//!   process tree read only the toolchain, the registry cache, the system's libraries and the
//!   workspace (and write only the workspace, the target folder and its scratch), no network
//!   sockets, and time, memory, file-size and output limits.

mod cargo;
mod landlock_fs;
mod run;
mod seccomp;
mod supervise;

pub use cargo::{BuildConfig, BuildFailure, Toolchain, build, trim_diagnostics};
pub use run::{Limits, Outcome, RunReport, RunRequest, SandboxError, run};
pub use seccomp::SeccompError;
pub use supervise::{Ending, Finished, Input, Io, Output, Stream, stop_children_when, supervise};
