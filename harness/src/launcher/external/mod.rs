//! Real container tools as launchers: util-linux unshare(1) and nsenter(1), bubblewrap, LXC, runc
//! and crun (from a generated OCI bundle) and systemd-nspawn. Each turns a [`CaseSpec`] into the
//! tool's own configuration, runs the static probe in the minimal rootfs the harness built (or on
//! the host's filesystem where the tool allows), and talks to it over the tool's stdio.
//!
//! [`CaseSpec`]: crate::spec::CaseSpec

pub mod bwrap;
pub mod lxc;
pub mod nspawn;
pub mod oci;
pub mod oci_spec;
pub mod tool;
pub mod unshare_tool;

pub use bwrap::Bwrap;
pub use lxc::Lxc;
pub use nspawn::Nspawn;
pub use oci::{Oci, Runtime};
pub use unshare_tool::UtilUnshare;
