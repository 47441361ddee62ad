//! isoprobe's bottom crate: the wire schema the harness and the probe speak, the namespace
//! vocabulary, the table of namespaced sysctls, a few system-call wrappers both sides need, and the
//! probe program itself.
//!
//! The probe is a library so that every isoprobe binary can *be* the probe: the dedicated static
//! `isoprobe-probe`, and also the CLI and the test suites, which call [`multicall`] first thing in
//! `main` and become the probe when started under the name `isoprobe-probe` (as busybox does). The
//! harness copies its own executable into each container's rootfs under that name, so a suite never
//! depends on another binary having been built.
//!
//! What this crate must never do: decide a verdict. The probe reports facts; the harness judges.

#![deny(unsafe_code)]

pub mod fault;
pub mod mountinfo;
pub mod ns;
pub mod probe;
pub mod sys;
pub mod sysctl;
pub mod text;
pub mod wire;

pub use probe::{PROBE_NAME, multicall};
