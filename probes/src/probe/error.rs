//! The probe's one error type: what it was doing, and the errno or I/O error that stopped it.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
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
    /// The harness broke the protocol (bad line, unexpected answer, closed stdin).
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Attaches what the probe was doing to a failed call.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, ProbeError>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, ProbeError> {
        self.map_err(|source| ProbeError::Sys { what: what(), source })
    }
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, ProbeError> {
        self.map_err(|source| ProbeError::Io { what: what(), source })
    }
}
