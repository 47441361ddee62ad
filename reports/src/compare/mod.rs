//! `isoprobe compare BASE NEW`: the regression gate.
//!
//! The gate fails closed: what BASE showed and NEW no longer shows is a regression unless the
//! user says it is deliberate, so that a run that skipped, lost or never ran its cases cannot pass
//! as "no regression".
//!
//! - Verdicts. A slot is a check of a case's container or joiner (` (joiner)`), or a limit's
//!   enforcement (`limit/<check>`). The comparison fails on each of these, listed by category:
//!   - regressions: a slot that passed in BASE and fails or errors in NEW, a case that ran in
//!     BASE and errors in NEW, a joiner that starts to disagree with its container;
//!   - new failures: a slot skipped or absent in BASE that fails or errors in NEW, a case skipped
//!     in BASE that errors in NEW, and a case only NEW has that fails, errors or has a failing
//!     check (a case only NEW has that passes is just added);
//!   - new skips: a slot judged in BASE (passed, or failed: a skip would hide whether it still
//!     fails) or a case that ran or errored in BASE, skipped in NEW. `allow_new_skips`
//!     (`--allow-new-skips`) reports them without failing;
//!   - missing: what BASE holds and NEW does not hold at all: a suite (reported once, with its
//!     case count), a case, or a slot of a case both ran. `allow_missing` (`--allow-missing`)
//!     reports them without failing. A missing slot counts as missing, not as a skip: a skip in
//!     NEW carries the requirement the machine lacks, which is what `--allow-new-skips` accepts,
//!     while a vanished slot says nothing (a check renamed or dropped between isoprobe versions,
//!     a joiner that did not run), like a case a narrower run left out;
//!   - an empty NEW (no case, while BASE has some), even with `allow_missing`: a run that
//!     produced nothing is never the deliberate subset that option is for.
//!
//!   Fixes, slots still failing and cases added in NEW are reported and never fail it. The
//!   kernel gate judges verdicts with the same defaults.
//! - Benchmarks: a change counts only when its whole confidence interval lies beyond the
//!   threshold (default 10%). The interval of the ratio NEW/BASE is taken conservatively as
//!   `[new.ci_low / base.ci_high, new.ci_high / base.ci_low]`. When the machines differ (CPU
//!   model or count, hypervisor), times are first divided by a calibration case measured on the
//!   same machine, and a change must hold against every calibration both sides have. The
//!   harness's overhead (a whole harness case over the bare spawn of the same namespace set, in
//!   each run) is judged per set the same way, as it is on every basis; a side without it is not
//!   judged, and the comparison says so.
//! - Fingerprints: runs whose privilege, capabilities, namespace kinds, cgroup layout or user
//!   namespace policy differ expect different verdicts; comparing them is refused unless forced.
//!   A different kernel is what the gate exists for, and is only noted. In the kernel gate
//!   (`kernel_gate`), the cgroup layout is part of the platform under test too (a kernel in a VM
//!   with cgroup2 alone against a hybrid host): it is noted, and every verdict compared. Its
//!   latency threshold is measured between the two runs (how far their calibrations moved
//!   apart), and under QEMU's TCG emulator latencies are shown but never fail it.
//!
//! Exit status: 0 no regression, 1 regression, 2 could not compare.
//!
//! One file per part, this one only wires them: `options.rs`, `gate.rs` (the comparison's outcome,
//! the order of the parts and what fails it), `compatibility.rs` (fingerprints), `verdicts.rs`
//! (the verdict diff), `benchmarks.rs` (benchmark statistics) and `render.rs` (text and
//! Markdown).

mod benchmarks;
mod compatibility;
mod gate;
mod options;
mod render;
#[cfg(test)]
mod testing;
mod verdicts;

pub use benchmarks::{BenchComparison, BenchDelta, Judgement, OverheadDelta};
pub use compatibility::verdict_incompatibilities;
pub use gate::{Comparison, EXIT_INCOMPARABLE, EXIT_OK, EXIT_REGRESSION, KindMismatch, compare};
pub use options::{Basis, CompareOptions};
pub use verdicts::{Change, VerdictDiff};
