//! Shared code of isoprobe's `cargo bench`: the run settings (full, quick, test), the groups and
//! their sampling profiles, the netns-cleanup watch, the tiny static payload, and the JSON summary.
//!
//! One bench binary per area lives in `benches/benches/` (calibration, namespaces, teardown,
//! scaling, cgroups, container). Each measures through [`isoprobe_harness::primitives`], the only
//! place with the `unsafe` the benchmarks need; this crate has none. After a `cargo bench` run each
//! binary writes its part of the summary and merges every part of the same run into
//! `target/isoprobe/bench-summary.json` (see [`summary`]).
//!
//! What this crate must never do: unshare, join a namespace or mount in a benchmark thread (the
//! primitives do it in fresh children), leave a process, cgroup, mount or temp file behind, or use
//! real-time scheduling.

#![deny(unsafe_code)]

pub mod fingerprint;
pub mod netns;
pub mod payload;
pub mod run;
pub mod stats;
pub mod summary;

pub use isoprobe_harness::primitives::{self, Timed};
pub use run::{BenchRun, Group, Profile};
