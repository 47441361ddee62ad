//! The VM side: what the init (pid 1 of the VM) does. Setting the machine up, the data channel to
//! the host, and running the plan's steps.

pub mod channel;
pub mod setup;
pub mod steps;
pub mod swap;

/// What can go wrong inside the VM. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
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
        source: std::io::Error,
    },
    #[error("failed to set up the VM: {0}")]
    Setup(String),
}
