//! memory.min and memory.low (cgroup-v2.rst, "Memory Interface Files"; the kernel's
//! tools/testing/selftests/cgroup/test_memcontrol.c, test_memcg_protection): the host's side of a
//! protection case and its judge.
//!
//! The case's sibling is the isoprobe-owned parent: memory.max [`ProtectPlan::limit`] and no swap
//! (memory.swap.max 0), so of what its children hold only page cache can be reclaimed. [`prepare`]
//! gives it the children the probe's processes move themselves into: the keeper's (with the case's
//! memory.min or memory.low; none in the control), for a memory.low case an unprotected one
//! holding page cache of its own (low is best effort: the kernel reclaims a cgroup under its
//! memory.low only when nothing else is reclaimable, so a low case needs something else), and the
//! presser's, whose anonymous memory pushes the parent past its memory.max. Every child goes with
//! the sibling in every outcome (`CaseCgroups::remove` drains and removes what is below it), and
//! nothing here touches a cgroup isoprobe did not make and name.

use std::fs;
use std::path::PathBuf;

use isoprobe_probes::wire::{ChildEnd, Exercise, ExerciseReport, ProtectCounters};
use serde::{Deserialize, Serialize};

use super::spec::LimitSpec;
use crate::cgroup::CaseCgroups;
use crate::error::{Context, HarnessError};
use crate::verdict::Verdict;

/// The protected child, the unprotected page cache's (memory.low cases) and the pressure's, under
/// the case's sibling.
pub const PROTECTED: &str = "isoprobe-protected";
pub const CACHE: &str = "isoprobe-cache";
pub const PRESSURE: &str = "isoprobe-pressure";

const MIB: u64 = 1 << 20;

/// How far the protected cgroup's memory.current may fall while it is within its protection, and
/// how far above what reclaim left it may read, is the per-CPU charge stocks' bound `stocks`
/// ([`super::judge::charge_stocks`], one batch per possible CPU, counted at run time): none of its
/// pages are reclaimed, but memory.current also counts the stock pre-charged to it, which a
/// reclaim elsewhere in the hierarchy drains back (drain_all_stock).
/// The memory.low control: how much of the reclaim the parent needs (`kept + cache + anon −
/// limit`) the unprotected keeper must give up at the least. Reclaim under a cgroup's memory.max
/// walks its children round-robin (a direct reclaimer's partial walk resumes where the last one
/// stopped) and scans each child's LRU lists in proportion to their size (get_scan_count; with
/// MGLRU each child's oldest generation), and the keeper's pages were read once, before the cache
/// reader's, which read its own twice (activated: the classic LRU reclaims them only after the
/// keeper's inactive ones; MGLRU's tiers protect them likewise): the keeper's share is half the
/// reclaim by size alone and more by age. A quarter leaves half of that proportional share for the
/// walk's granularity (it stops once SWAP_CLUSTER_MAX pages are reclaimed, wherever it stands).
pub const LOW_CONTROL_MIN_SHARE: f64 = 0.25;

/// What a protection case must show: its protections (none: the control), the parent's
/// memory.max and the exercise's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectPlan {
    pub min: Option<u64>,
    pub low: Option<u64>,
    pub limit: u64,
    pub kept: u64,
    pub cache: u64,
    pub anon: u64,
}

/// The plan of `spec` (a memory protection case: its sibling's memory.max is the parent's limit).
pub fn plan(spec: &LimitSpec) -> ProtectPlan {
    let (kept, cache, anon) = match spec.exercise {
        Exercise::MemoryProtect { kept, cache, anon, .. } => (kept, cache, anon),
        _ => (0, 0, 0),
    };
    ProtectPlan {
        min: spec.settings.memory_min,
        low: spec.settings.memory_low,
        limit: spec.sibling.as_ref().and_then(|s| s.memory_max).unwrap_or(0),
        kept,
        cache,
        anon,
    }
}

/// Where the cache reader's part of the loop device starts: after the keeper's, on a MiB boundary
/// (no page of the device is read by both).
pub fn cache_offset(kept: u64) -> u64 {
    kept.next_multiple_of(MIB)
}

/// The keeper's cgroup, the cache's (where the exercise has one) and the pressure's: made, the
/// protection written, paths filled in.
pub fn prepare(set: &CaseCgroups, limits: &LimitSpec, exercise: &mut Exercise) -> Result<(), HarnessError> {
    let Exercise::MemoryProtect { cache, protected_dir, cache_dir, pressure_dir, .. } = exercise else {
        return Ok(());
    };
    let sib = set
        .v2_paths()
        .and_then(|(_, s)| s)
        .ok_or_else(|| HarnessError::Cgroup("a memory protection case has no cgroup2 sibling".into()))?;
    let write =
        |path: PathBuf, value: &str| fs::write(&path, value).ctx(|| format!("write {value:?} to {}", path.display()));
    write(sib.join("cgroup.subtree_control"), "+memory")?;
    let names = if *cache > 0 { &[PROTECTED, CACHE, PRESSURE][..] } else { &[PROTECTED, PRESSURE][..] };
    for name in names {
        let dir = sib.join(name);
        fs::create_dir(&dir).ctx(|| format!("create cgroup {}", dir.display()))?;
    }
    let protected = sib.join(PROTECTED);
    if let Some(low) = limits.settings.memory_low {
        write(protected.join("memory.low"), &low.to_string())?;
    }
    if let Some(min) = limits.settings.memory_min {
        write(protected.join("memory.min"), &min.to_string())?;
    }
    *protected_dir = protected.display().to_string();
    if *cache > 0 {
        *cache_dir = sib.join(CACHE).display().to_string();
    }
    *pressure_dir = sib.join(PRESSURE).display().to_string();
    Ok(())
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / MIB as f64)
}

/// The report's fields a judgement reads.
struct Seen<'a> {
    /// The charge stocks' bound: the protected cgroup's slack.
    slack: u64,
    presser: &'a ChildEnd,
    anon_touched: u64,
    before: u64,
    after: u64,
}

impl Seen<'_> {
    fn kept_all(&self) -> bool {
        self.after + self.slack >= self.before
    }

    fn presser_done(&self, plan: &ProtectPlan) -> bool {
        matches!(self.presser, ChildEnd::Exited { code: 0 }) && self.anon_touched == plan.anon
    }

    fn presser_oom_killed(&self) -> bool {
        matches!(self.presser, ChildEnd::Killed { signal: libc::SIGKILL, .. })
    }
}

/// Judges a protection report against `plan`, on a machine whose per-CPU charge stocks hold
/// `stocks` at most.
pub fn judge(plan: &ProtectPlan, r: &ExerciseReport, stocks: u64) -> Verdict {
    let ExerciseReport::MemoryProtect {
        kept_read,
        cache_read,
        error,
        anon_touched,
        presser,
        counters:
            ProtectCounters {
                protected_before,
                protected_after,
                cache_before,
                cache_after,
                pressure_after,
                protected_low_events,
            },
    } = r
    else {
        return Verdict::Error { cause: format!("memory protection cannot be judged from a {r:?} report") };
    };
    if let Some(e) = error {
        return Verdict::Error { cause: format!("the keeper or the cache reader failed: {e}") };
    }
    // The cache reader reads its part twice.
    if *kept_read != plan.kept || *cache_read != 2 * plan.cache {
        return Verdict::Error {
            cause: format!("read {kept_read} of {} kept and {cache_read} of {} cache bytes", plan.kept, 2 * plan.cache),
        };
    }
    // The stage: the keeper's page cache is in the protected cgroup and within its protection
    // (a page read first elsewhere is charged there; a block device's cache goes with its last
    // close), and the cache's in its own.
    let protection = plan.min.or(plan.low);
    if let Some(e) = stage_error(plan, protection, *protected_before, *cache_before) {
        return Verdict::Error { cause: e };
    }
    let observed = format!(
        "protected cgroup {} before the pressure, {} after ({protected_low_events} low events); the cache's {} \
         before, {} after; the presser {presser} after touching {}, its cgroup {}",
        mib(*protected_before),
        mib(*protected_after),
        mib(*cache_before),
        mib(*cache_after),
        mib(*anon_touched),
        mib(*pressure_after)
    );
    let evidence = format!(
        "parent memory.max {}, no swap: {} of the keeper's page cache, {} of the cache's, {} of the presser's \
         anonymous memory",
        mib(plan.limit),
        mib(plan.kept),
        mib(plan.cache),
        mib(plan.anon)
    );
    let seen = Seen {
        slack: stocks,
        presser,
        anon_touched: *anon_touched,
        before: *protected_before,
        after: *protected_after,
    };
    let (ok, expected) = expectation(plan, &seen);
    if ok { Verdict::Pass { expected, observed, evidence } } else { Verdict::Fail { expected, observed, evidence } }
}

/// Why the case did not set its stage, if it did not.
fn stage_error(plan: &ProtectPlan, protection: Option<u64>, before: u64, cache_before: u64) -> Option<String> {
    if before < plan.kept {
        return Some(format!(
            "the protected cgroup held {} once the keeper had read {}: its page cache is not charged there",
            mib(before),
            mib(plan.kept)
        ));
    }
    if cache_before < plan.cache {
        return Some(format!(
            "the cache's cgroup held {} once its reader had read {}: its page cache is not charged there",
            mib(cache_before),
            mib(plan.cache)
        ));
    }
    match protection {
        Some(p) if before > p => Some(format!(
            "the protected cgroup held {} before the pressure, more than its protection {}: the case does not set the \
             stage",
            mib(before),
            mib(p)
        )),
        _ => None,
    }
}

/// Whether `seen` is what `plan` promises, and what that is.
fn expectation(plan: &ProtectPlan, seen: &Seen<'_>) -> (bool, String) {
    let slack = mib(seen.slack);
    match (plan.min, plan.low) {
        // Nothing in the parent can be reclaimed (the keeper is under memory.min, anonymous memory
        // has no swap to go to), so the presser's charge ends in the memcg OOM killer, which takes
        // the largest task: the presser.
        (Some(min), _) => (
            seen.kept_all() && seen.presser_oom_killed(),
            format!(
                "the keeper kept its pages within {slack} (under memory.min {}) and the presser was OOM-killed",
                mib(min)
            ),
        ),
        // The cache's pages are reclaimable: reclaim takes them and leaves the keeper alone.
        (None, Some(low)) => (
            seen.kept_all() && seen.presser_done(plan),
            format!(
                "the keeper kept its pages within {slack} (under memory.low {}) and the presser touched all of its {} \
                 (the cache's pages reclaimed instead)",
                mib(low),
                mib(plan.anon)
            ),
        ),
        // The min control: the keeper's page cache is all the parent can give up.
        (None, None) if plan.cache == 0 => {
            let most = plan.limit.saturating_sub(plan.anon) + seen.slack;
            (
                seen.presser_done(plan) && seen.after <= most,
                format!(
                    "the presser touched all of its {} and the unprotected keeper was reclaimed to memory.max − that + \
                     {slack} = {} or less",
                    mib(plan.anon),
                    mib(most)
                ),
            )
        }
        // The low control: the keeper gives up its share of the reclaim.
        (None, None) => {
            let needed = (plan.kept + plan.cache + plan.anon).saturating_sub(plan.limit);
            let least = (needed as f64 * LOW_CONTROL_MIN_SHARE) as u64;
            (
                seen.presser_done(plan) && seen.before.saturating_sub(seen.after) >= least,
                format!(
                    "the presser touched all of its {} and the unprotected keeper gave up {} or more ({} of the {} \
                     reclaimed)",
                    mib(plan.anon),
                    mib(least),
                    LOW_CONTROL_MIN_SHARE,
                    mib(needed)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(min: Option<u64>, low: Option<u64>, cache: u64, anon: u64) -> ProtectPlan {
        ProtectPlan { min, low, limit: 64 * MIB, kept: 16 * MIB, cache, anon }
    }

    fn report(p: &ProtectPlan, presser: ChildEnd, anon_touched: u64, before: u64, after: u64) -> ExerciseReport {
        let cache = p.cache;
        ExerciseReport::MemoryProtect {
            kept_read: 16 * MIB,
            cache_read: 2 * cache,
            error: None,
            anon_touched,
            presser,
            counters: ProtectCounters {
                protected_before: before,
                protected_after: after,
                cache_before: cache + MIB,
                cache_after: MIB,
                pressure_after: anon_touched,
                protected_low_events: 0,
            },
        }
    }

    /// Four CPUs' charge stocks: 1 MiB.
    const STOCKS: u64 = 4 * super::super::judge::CHARGE_BATCH;

    const DONE: ChildEnd = ChildEnd::Exited { code: 0 };

    fn killed() -> ChildEnd {
        ChildEnd::Killed { signal: libc::SIGKILL, name: "SIGKILL".into() }
    }

    #[test]
    fn min_passes_only_when_kept_and_the_presser_is_killed() {
        let p = plan(Some(32 * MIB), None, 0, 56 * MIB);
        assert!(judge(&p, &report(&p, killed(), 40 * MIB, 17 * MIB, 17 * MIB), STOCKS).is_pass());
        assert!(matches!(judge(&p, &report(&p, DONE, 56 * MIB, 17 * MIB, 5 * MIB), STOCKS), Verdict::Fail { .. }));
        assert!(matches!(judge(&p, &report(&p, DONE, 56 * MIB, 17 * MIB, 17 * MIB), STOCKS), Verdict::Fail { .. }));
    }

    #[test]
    fn min_control_needs_the_keeper_reclaimed_to_the_rest() {
        let p = plan(None, None, 0, 56 * MIB);
        assert!(judge(&p, &report(&p, DONE, 56 * MIB, 17 * MIB, 7 * MIB), STOCKS).is_pass());
        assert!(matches!(judge(&p, &report(&p, DONE, 56 * MIB, 17 * MIB, 12 * MIB), STOCKS), Verdict::Fail { .. }));
        assert!(matches!(judge(&p, &report(&p, killed(), 40 * MIB, 17 * MIB, 7 * MIB), STOCKS), Verdict::Fail { .. }));
    }

    #[test]
    fn low_and_its_control() {
        let (limited, control) = (plan(None, Some(32 * MIB), 32 * MIB, 32 * MIB), plan(None, None, 32 * MIB, 32 * MIB));
        assert!(judge(&limited, &report(&limited, DONE, 32 * MIB, 17 * MIB, 17 * MIB), STOCKS).is_pass());
        assert!(matches!(
            judge(&limited, &report(&limited, DONE, 32 * MIB, 17 * MIB, 10 * MIB), STOCKS),
            Verdict::Fail { .. }
        ));
        // 16 MiB reclaimed: a quarter is 4 MiB.
        assert!(judge(&control, &report(&control, DONE, 32 * MIB, 17 * MIB, 12 * MIB), STOCKS).is_pass());
        assert!(matches!(
            judge(&control, &report(&control, DONE, 32 * MIB, 17 * MIB, 15 * MIB), STOCKS),
            Verdict::Fail { .. }
        ));
    }

    #[test]
    fn a_stage_not_set_is_an_error() {
        let p = plan(Some(32 * MIB), None, 0, 56 * MIB);
        assert!(matches!(judge(&p, &report(&p, killed(), 40 * MIB, MIB, MIB), STOCKS), Verdict::Error { .. }));
        assert!(matches!(
            judge(&p, &report(&p, killed(), 40 * MIB, 40 * MIB, 40 * MIB), STOCKS),
            Verdict::Error { .. }
        ));
    }

    #[test]
    fn the_slack_is_the_machines_charge_stocks() {
        let p = plan(Some(32 * MIB), None, 0, 56 * MIB);
        let r = report(&p, killed(), 40 * MIB, 17 * MIB, 16 * MIB - 1);
        // A MiB and a byte gone: more than two CPUs' stocks (512 KiB), less than eight CPUs' (2 MiB).
        assert!(matches!(judge(&p, &r, super::super::judge::charge_stocks(2)), Verdict::Fail { .. }));
        assert!(judge(&p, &r, super::super::judge::charge_stocks(8)).is_pass());
    }
}
