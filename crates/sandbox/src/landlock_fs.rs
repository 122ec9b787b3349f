//! The confined view of a build, enforced by Landlock: the whole process tree started from a
//! confined child may read only the listed paths, write only the writable ones, and connect or
//! bind no TCP port where the kernel can refuse it. Landlock needs no privilege, so the view is
//! the same for root and for any user; a kernel without it gets no build at all.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, path_beneath_rules,
};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// The newest access rights this code knows of; older kernels enforce what they have.
const NEWEST_ABI: ABI = ABI::V5;

/// What a confined process tree may reach.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    pub(crate) readable: Vec<PathBuf>,
    pub(crate) writable: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewError {
    #[error(
        "this kernel does not enforce Landlock (Linux 5.13 or later with Landlock enabled is needed to confine candidate builds)"
    )]
    Unsupported,
    #[error("preparing the Landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
}

/// A ruleset built before the fork, applied by the child to itself.
#[derive(Debug)]
pub(crate) struct Confinement {
    ruleset: OwnedFd,
}

impl View {
    /// Builds the ruleset in the parent, where allocation is allowed.
    pub(crate) fn prepare(&self) -> Result<Confinement, ViewError> {
        let every_fs_right = AccessFs::from_all(NEWEST_ABI);
        // Reading a file, listing a directory and executing the toolchain; nothing else.
        let read = AccessFs::from_read(NEWEST_ABI);
        let ruleset = Ruleset::default()
            // Filesystem rights must be enforced; network rights where the kernel knows them.
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(every_fs_right)?
            .handle_access(AccessNet::from_all(NEWEST_ABI))?
            .create()?
            .add_rules(path_beneath_rules(&self.readable, read))?
            .add_rules(path_beneath_rules(&self.writable, every_fs_right))?;
        let ruleset: Option<OwnedFd> = ruleset.into();
        Ok(Confinement {
            ruleset: ruleset.ok_or(ViewError::Unsupported)?,
        })
    }
}

impl Confinement {
    /// In the child, after the fork: no new privileges, then the ruleset on itself and every
    /// process it starts. Only system calls, no allocation.
    pub(crate) fn apply(&self) -> io::Result<()> {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes only integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: landlock_restrict_self takes the ruleset's descriptor, owned by `self` and open,
        // and flags 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_restrict_self,
                self.ruleset.as_raw_fd(),
                0u32,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}
