//! Shared code of isoprobe's `cargo bench`: the run settings (full, quick, test), the groups and
//! their sampling profiles, the netns-cleanup watch, the tiny static payload, and the JSON summary.
//!
//! One bench binary per area lives in `benches/benches/` (calibration, namespaces, teardown,
//! scaling, cgroups, container). Each measures through [`isoprobe_harness::sys::primitives`], the only
//! place with the `unsafe` the benchmarks need; this crate has none. After a `cargo bench` run each
//! binary writes its part of the summary and merges every part of the same run into
//! `target/isoprobe/bench-summary.json` (see [`summary`]).
//!
//! Running them (as root for every group; others skip with the reason):
//! - `cargo bench -p isoprobe-benches`: the full run (about 5 minutes on 2 CPUs), then
//!   `target/isoprobe/bench-summary.json`;
//! - `ISOPROBE_BENCH_QUICK=1 cargo bench`, or `cargo bench --bench '*' -- --quick` (the libtest
//!   targets of the other crates would reject criterion's `--quick`): small sample counts and
//!   parameter ranges, about a minute. `--quick` also switches criterion to its own quick
//!   sampling (iteration counts doubling for about 100 ms, two samples, no meaningful interval);
//!   the environment variable keeps the fixed counts, 10 to 20 samples per case;
//! - `cargo test -p isoprobe-benches --benches`: every case once, no summary (what CI runs);
//! - `ISOPROBE_BENCH_CPU=<n>|none`: the CPU the benchmark thread is pinned to (default: the last
//!   one it may use), or no pinning. Scheduling stays SCHED_OTHER: never real-time.
//! - Before measuring, each binary waits (at most two minutes, untimed) until the machine is
//!   quiet (see [`settle`]); `ISOPROBE_BENCH_SETTLE=0` skips the wait.
//! - Right before each sample the CPU's speed is read (a few null system calls); in a full run,
//!   samples taken while the (virtual) CPU ran slow are left out if enough fast ones remain (see
//!   [`speed`]); `ISOPROBE_BENCH_SPEED=all` keeps them.
//! - `ISOPROBE_BENCH_SAMPLES=<dir>`: every sample of every fixed-count case, with its speed
//!   reading and time, appended to `<dir>/samples.jsonl` (for studying the machine's noise).
//!
//! A failed case (other than a missing privilege or kernel feature, which is a skip) makes the
//! binary exit non-zero after the summary is written.
//!
//! What this crate must never do: unshare, join a namespace or mount in a benchmark thread (the
//! primitives do it in fresh children), leave a process, cgroup, mount or temp file behind, or use
//! real-time scheduling.

#![deny(unsafe_code)]

pub mod holder;
pub mod netns;
pub mod payload;
pub mod run;
pub mod samples;
pub mod settle;
pub mod speed;
pub mod stats;
pub mod summary;

/// The harness's primitives (system-call wrappers) with the benches' plumbing on top of them, in
/// one place for the benchmark targets.
pub mod primitives {
    pub use crate::holder::Holder;
    pub use crate::samples::{SampleStore, anon_rss_kib};
    pub use isoprobe_harness::sys::primitives::*;
}
pub use primitives::Timed;
pub use run::{BenchRun, Group, Profile};

/// The fingerprint a summary carries: the same one `isoprobe env` prints and run reports carry,
/// so `isoprobe compare` can tell whether two summaries come from comparable machines. Collected
/// by the harness, recorded in the summary's own format.
pub fn fingerprint() -> isoprobe_reports::record::Fingerprint {
    (&isoprobe_harness::fingerprint::Fingerprint::collect(&[])).into()
}
