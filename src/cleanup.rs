//! `isoprobe cleanup`: find and remove what a killed run left behind, one line per object.
//!
//! The rules live in `isoprobe_harness::leftovers`, which `isoprobe run`, the suites and the
//! benches also apply to dead runs at their start; this command adds what no visible run owns
//! (unless `--only-known-runs`) and lists what it keeps and why.

use anyhow::Result;
use isoprobe_harness::leftovers::{Scope, Sweep, sweep_with};

/// `isoprobe cleanup`; exit status 0 when nothing removable is left, 1 when something could not
/// be removed.
pub fn cleanup(dry_run: bool, only_known_runs: bool) -> Result<u8> {
    let scope = if only_known_runs { Scope::DeadRuns } else { Scope::All };
    let summary = sweep_with(Sweep { scope, dry_run }, &mut |e| println!("{e}"))?;
    println!(
        "{} {}, kept {}, {} could not be removed",
        if dry_run { "would remove" } else { "removed" },
        summary.removed_total(),
        summary.kept,
        summary.failed
    );
    Ok(if summary.failed == 0 { 0 } else { 1 })
}
