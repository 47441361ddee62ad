//! memory.low and memory.min (cgroup-v2.rst, "Memory Interface Files"): the host's side of a
//! protection case and its judge. The case's sibling is the isoprobe-owned parent whose
//! memory.max makes the pressure; [`prepare`] gives it two children, the protected one (with the
//! case's memory.low or memory.min; none in the control) and the one the pressure comes from, and
//! the probe's keeper and presser move themselves into them (see the probe's `memory_protect`).
//! Both children go with the sibling in every outcome (`CaseCgroups::remove` drains and removes
//! what is below its cgroups).

use std::fs;

use isoprobe_probes::wire::{Exercise, ExerciseReport};

use super::spec::LimitSpec;
use crate::cgroup::CaseCgroups;
use crate::error::{Context, HarnessError};
use crate::verdict::Verdict;

/// The protected child and the pressure's, under the case's sibling.
pub const PROTECTED: &str = "isoprobe-protected";
pub const PRESSURE: &str = "isoprobe-pressure";

const MIB: u64 = 1 << 20;

/// How much of the protected cgroup's usage may go while it is within its protection: none of its
/// pages are reclaimed (reclaim skips a cgroup below memory.min always, below memory.low as long
/// as others have reclaimable memory: the presser's clean page cache is), but memory.current also
/// counts the per-CPU charge stock pre-charged to it (MEMCG_CHARGE_BATCH, 64 pages = 256 KiB per
/// CPU, 4 CPUs at most here), which a reclaim elsewhere in the hierarchy drains back
/// (drain_all_stock).
pub const PROTECTED_SLACK: u64 = 4 * (256 << 10);

/// Unprotected, the keeper's pages are reclaimed like the presser's: reclaim scans each cgroup's
/// LRU lists in proportion to their size (get_scan_count), so while the keeper holds a share s of
/// the parent it gives up about s of every page reclaimed. The presser reads three times the
/// parent's memory.max past it, so the parent reclaims more than twice its limit; the keeper, at
/// most half the limit at the start, cannot keep half of its usage through that (to keep half it
/// would have to give up less than 1/4 of its pages while holding at least 1/4 of the parent).
/// Its usage must fall to half or less.
pub const UNPROTECTED_MAX_FRACTION: f64 = 0.5;

/// The protected cgroup and the pressure's: made, the protection written, paths filled in.
pub fn prepare(set: &CaseCgroups, limits: &LimitSpec, exercise: &mut Exercise) -> Result<(), HarnessError> {
    let Exercise::MemoryProtect { protected_dir, pressure_dir, .. } = exercise else { return Ok(()) };
    let sib = set
        .v2_paths()
        .and_then(|(_, s)| s)
        .ok_or_else(|| HarnessError::Cgroup("a memory protection case has no cgroup2 sibling".into()))?;
    let write = |path: std::path::PathBuf, value: &str| {
        fs::write(&path, value).ctx(|| format!("write {value:?} to {}", path.display()))
    };
    write(sib.join("cgroup.subtree_control"), "+memory")?;
    for name in [PROTECTED, PRESSURE] {
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
    *pressure_dir = sib.join(PRESSURE).display().to_string();
    Ok(())
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / MIB as f64)
}

/// Judges a protection report: `protection` is the memory.low or memory.min written (absent: the
/// control), `kept` and `pressure` what the exercise asked to read.
pub fn judge(protection: Option<u64>, kept: u64, pressure: u64, r: &ExerciseReport) -> Verdict {
    let ExerciseReport::MemoryProtect {
        kept_read,
        pressure_read,
        error,
        protected_before,
        protected_after,
        pressure_after,
    } = r
    else {
        return Verdict::Error { cause: format!("memory protection cannot be judged from a {r:?} report") };
    };
    if let Some(e) = error {
        return Verdict::Error { cause: format!("the keeper or the presser failed: {e}") };
    }
    if *kept_read != kept || *pressure_read != pressure {
        return Verdict::Error {
            cause: format!("read {kept_read} of {kept} kept and {pressure_read} of {pressure} pressure bytes"),
        };
    }
    // The stage: the keeper's page cache is in the protected cgroup (a block device's cache goes
    // with its last close, and a page read first elsewhere is charged there).
    if *protected_before < kept {
        return Verdict::Error {
            cause: format!(
                "the protected cgroup held {} once the keeper had read {}: its page cache is not charged there",
                mib(*protected_before),
                mib(kept)
            ),
        };
    }
    let observed = format!(
        "protected cgroup {} before the pressure, {} after; the pressure's cgroup {}",
        mib(*protected_before),
        mib(*protected_after),
        mib(*pressure_after)
    );
    let evidence = format!("{} of page cache read in the pressure's cgroup", mib(*pressure_read));
    let (ok, expected) = match protection {
        Some(p) if *protected_before <= p => (
            protected_after + PROTECTED_SLACK >= *protected_before,
            format!(
                "kept within {} (the charge stock) of its usage, being under its protection {}",
                mib(PROTECTED_SLACK),
                mib(p)
            ),
        ),
        Some(p) => {
            return Verdict::Error {
                cause: format!(
                    "the protected cgroup held {} before the pressure, more than its protection {}: the case does not set the stage",
                    mib(*protected_before),
                    mib(p)
                ),
            };
        }
        None => (
            (*protected_after as f64) <= *protected_before as f64 * UNPROTECTED_MAX_FRACTION,
            format!("reclaimed to at most {UNPROTECTED_MAX_FRACTION} of its usage (no protection)"),
        ),
    };
    if ok { Verdict::Pass { expected, observed, evidence } } else { Verdict::Fail { expected, observed, evidence } }
}
