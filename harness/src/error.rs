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
    /// The probe broke the protocol or ended early; the message carries its stderr when useful.
    #[error("probe: {0}")]
    Probe(String),
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
