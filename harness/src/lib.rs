//! The harness: case specs, the oracle, the launchers (native, and real container tools as
//! subjects, see `launcher`), sentinels, and the run loop that turns a spec into verdicts.
//!
//! ```text
//!  CaseSpec ──► launcher ──► container ──► probe ──► facts
//!     │                                                │
//!     └────────► oracle: expect(spec, check) ──────────┴──► verdict per check
//! ```
//!
//! Unsafe code lives only in `sys` (clone3/clone and the child's side up to exec, the new mount
//! API, perf_event_open, close_range, and the benchmarks' raw primitives); everything else is safe
//! Rust over nix and the probe crate's wrappers, and the crate denies `unsafe_code` outside `sys`.

#![deny(unsafe_code)]

pub mod case_env;
pub mod cgroup;
pub mod check;
pub mod company;
pub mod conversation;
pub mod domainname;
pub mod error;
pub mod exe;
pub mod fingerprint;
pub mod host;
pub mod hostlock;
pub mod judge;
pub mod launcher;
pub mod leftovers;
pub mod limits;
pub mod matrix;
pub mod mount_case;
pub mod mounts;
pub mod names;
pub mod oracle;
pub mod phases;
pub mod requirement;
pub mod run;
pub mod run_env;
pub mod snapshot;
pub mod spec;
pub mod sys;
pub mod sysctl;
pub mod verdict;

pub use check::CheckId;
pub use error::HarnessError;
pub use isoprobe_probes::multicall;
pub use isoprobe_probes::ns::{NsKind, NsSet};
pub use run::{Harness, HarnessOptions};
pub use spec::{CaseSpec, LauncherKind, Resolved, RootfsMode, Runner};
pub use verdict::{CaseOutcome, Verdict};
