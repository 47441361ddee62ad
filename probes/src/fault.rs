//! The fault plant: drops `CLONE_NEW*` flags at the exact system call, while the spec and the
//! oracle keep the full promise, so that the sensitivity suite can prove every check catches the
//! loss of its own namespace kind the way a broken runtime would lose it.
//!
//! Compiled only with the `fault-plant` feature, which the test suites enable (as a
//! dev-dependency feature: `cargo build` and `cargo run --release` never build it). Without it,
//! [`dropped`] is always empty and [`plant`] the identity. With it, the probe reads the kinds to
//! drop from [`ENV`], which only the harness's planted spawn sets (a probe's environment is
//! built from scratch, see the harness's `launcher::process`).
//!
//! Where the probe drops them: the unsharer's unshare(2), each setns(2) of a joiner, and the
//! probe's own unshare of the time and cgroup namespaces in its init step. The harness drops them
//! from the clone3/clone flags.

use crate::ns::NsSet;

/// The environment variable naming the kinds to drop (`uts,net`), set by the harness only.
pub const ENV: &str = "ISOPROBE_FAULT_DROP";

/// Whether this build has the plant (test builds only).
pub const COMPILED: bool = cfg!(feature = "fault-plant");

/// The kinds whose flags the probe must drop at its own calls.
pub fn dropped() -> NsSet {
    if !COMPILED {
        return NsSet::EMPTY;
    }
    std::env::var(ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(NsSet::EMPTY)
}

/// `flags` (a `CLONE_NEW*` mask) without the bits of the dropped kinds.
pub fn plant(flags: u64) -> u64 {
    flags & !dropped().clone_flags()
}
