//! The harness's error type. Messages are lowercase fragments that read after "failed to".

use std::io;
use std::time::Duration;

use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    #[error("failed to {what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The probe broke the protocol or ended before `done`; the message carries its stderr when
    /// useful.
    #[error("probe: {0}")]
    Protocol(String),
    /// The container could not be started as the spec asks: the child's setup before the probe
    /// ran, or the launcher or its tool.
    #[error("launch: {0}")]
    Launch(String),
    /// A cgroup could not be created, written, read, adopted or removed as the case needs.
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// Something a case created was still there after its teardown.
    #[error("left behind: {0}")]
    Leftover(String),
    /// A host file isoprobe reads had a form it cannot read (mountinfo, `/proc/<pid>/stat`, ...).
    #[error("host: {0}")]
    Host(String),
    /// An internal promise of isoprobe was broken: a bug, never the subject's doing.
    #[error("internal error (a bug in isoprobe): {0}")]
    Internal(String),
    /// The tool failed to start on a known defect of its own (see [`crate::launcher::defect`]):
    /// the start may be made again.
    #[error("launch: {error} (a known defect of the tool, {}: {}; fixed by {})", defect.id, defect.summary, defect.fixed)]
    KnownDefect { defect: &'static crate::launcher::defect::KnownDefect, error: String },
    #[error("timed out after {after:.1?} {during}")]
    Timeout { after: Duration, during: String },
    #[error(transparent)]
    HostLock(#[from] crate::hostlock::HostLockError),
}

/// Attaches what the harness was doing to a failed call.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, HarnessError>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, HarnessError> {
        self.map_err(|source| HarnessError::Sys { what: what(), source })
    }
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, HarnessError> {
        self.map_err(|source| HarnessError::Io { what: what(), source })
    }
}
