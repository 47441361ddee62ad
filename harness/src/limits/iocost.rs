//! The io.weight case: what it needs here ([`check`]), iocost on the case's loop device for its
//! lifetime ([`enable`]), and the verdict on the two groups' shares ([`judge`]), with its
//! tolerance derived from iocost's own constants.
//!
//! io.weight is blk-iocost's proportional control (cgroup-v2.rst, "IO", io.weight and
//! io.cost.*): it acts only on a device iocost is enabled on, and only when the device (as its
//! cost model sees it) is saturated. The case therefore puts its own loop device under a fixed
//! linear model far slower than the device ([`crate::cgroup::iocost`]), so that the model's
//! capacity is what the two groups share; the control gives both the same weight, and must see
//! an even split on the same device under the same model.

use std::path::PathBuf;

use isoprobe_probes::wire::{Exercise, ExerciseReport};

use super::spec::LimitSpec;
use crate::cgroup::iocost::{IoCost, MODEL_BPS, PERIOD_NS, qos_file};
use crate::cgroup::{CgroupLayout, Placement};
use crate::error::HarnessError;
use crate::requirement::Requirement;
use crate::spec::CaseSpec;
use crate::verdict::{Skip, Verdict};

/// The reads each group has in flight at once (the probe's IO_READERS), as for io.max.
const READS_IN_FLIGHT: u64 = super::judge::IO_IN_FLIGHT;

/// io.weight: the budget a group may use beyond its share at one edge of the span the groups
/// are compared over, in device time. iocost lets a group's vtime lag the device's by a margin
/// of credit (MARGIN_TARGET_PCT, half a period, before it is clamped at the period's end): one
/// whole period ([`PERIOD_NS`]) bounds it. On top, the reads in flight when the span starts or
/// ends were charged when issued and are counted when they complete: READS_IN_FLIGHT blocks at
/// the model's [`MODEL_BPS`]. With `e` that sum and `S` the device time both groups used in the
/// span (their bytes at MODEL_BPS), each group's use is its share of `S` within ±e, and its share
/// of the total (h·S ± e) / (S ± 2e) is off by at most e / (S − 2e): with 64 KiB reads, e = 50 ms
/// + 31 ms, and about 2 s of reading at the model's rate, 0.04.
pub fn edge_ns(block: u32) -> u64 {
    PERIOD_NS + READS_IN_FLIGHT * u64::from(block) * 1_000_000_000 / MODEL_BPS
}

/// What an io.weight case needs here.
pub fn check(spec: &CaseSpec, limits: &LimitSpec, layout: &CgroupLayout) -> Result<(), Skip> {
    let Exercise::IoShare { .. } = limits.exercise else { return Ok(()) };
    if !spec.launcher.is_native() {
        return Err(Requirement::LauncherFeature { launcher: spec.launcher.name(), what: "io-weight".into() }.skip(
            "isoprobe puts the case's loop device under iocost in the cgroup2 root and moves the competing \
             readers into a sibling cgroup of its own: a container tool has no setting for either",
        ));
    }
    if !matches!(layout.placement("blkio"), Placement::V2 { .. }) {
        return Err(Requirement::Controller("io".into()).skip(format!(
            "io.weight is blk-iocost's, a cgroup2 io controller file, and io is not a cgroup2 controller here ({})",
            layout.describe()
        )));
    }
    root(layout).map(drop)
}

/// The cgroup2 root the harness may write io.cost.* in, or why there is none.
fn root(layout: &CgroupLayout) -> Result<PathBuf, Skip> {
    let Some((_, h)) = layout.v2() else {
        return Err(Requirement::Host("cgroup2").skip("no cgroup2 hierarchy: io.cost.qos is a cgroup2 root file"));
    };
    if h.parent.as_ref().ok() != Some(&h.mount_point) || h.mount_root != "/" {
        return Err(Requirement::Host("iocost").skip(format!(
            "isoprobe's cgroups are not children of the cgroup2 root here ({} mounts {}): io.cost.qos and \
             io.cost.model exist only in the root, and a delegated subtree may not write them",
            h.mount_point.display(),
            h.mount_root
        )));
    }
    if qos_file(&h.mount_point).is_none() {
        return Err(Requirement::Host("iocost").skip(format!(
            "{} has no io.cost.qos: the kernel has no blk-iocost (CONFIG_BLK_CGROUP_IOCOST)",
            h.mount_point.display()
        )));
    }
    if !super::requirement::tool_in_path("losetup") {
        return Err(Requirement::Tool("losetup".into())
            .skip("losetup (util-linux) is not in PATH: the case reads a loop device"));
    }
    Ok(h.mount_point.clone())
}

/// Puts the case's loop device `dev` under iocost for the case's lifetime.
pub fn enable(layout: &CgroupLayout, dev: (u64, u64)) -> Result<IoCost, HarnessError> {
    let root = root(layout).map_err(|s| HarnessError::Cgroup(format!("iocost: {}", s.reason)))?;
    IoCost::enable(&root, dev)
}

/// The case's share of both groups' bytes against `mine / (mine + other)`.
pub fn judge(mine: u32, other: u32, block: u32, r: &ExerciseReport) -> Verdict {
    let ExerciseReport::IoShare { mine_bytes, sibling_bytes, span_ns, wall_ns, mine_total, sibling_total, error } = r
    else {
        return Verdict::Error { cause: format!("io/weight-split cannot be judged from a {r:?} report") };
    };
    let total = mine_bytes + sibling_bytes;
    let used_ns = (total as u128 * 1_000_000_000 / u128::from(MODEL_BPS)) as u64;
    let e = edge_ns(block);
    let evidence = format!(
        "{} and {} read in a span of {:.0} ms all readers read ({} and {} in all, {:.0} ms); the model's \
         {} MiB/s for {:.0} ms of that span would be {:.2} MiB",
        mib(*mine_bytes),
        mib(*sibling_bytes),
        *span_ns as f64 / 1e6,
        mib(*mine_total),
        mib(*sibling_total),
        *wall_ns as f64 / 1e6,
        MODEL_BPS >> 20,
        *span_ns as f64 / 1e6,
        (u128::from(MODEL_BPS) * u128::from(*span_ns) / 1_000_000_000) as f64 / (1 << 20) as f64,
    );
    if let Some(err) = error {
        return Verdict::Fail {
            expected: "every reader reads for the whole window".into(),
            observed: format!("a read failed: {err}"),
            evidence,
        };
    }
    // At least four edges' worth of use, so that the tolerance stays below one half.
    if used_ns <= 4 * e {
        return Verdict::Error {
            cause: format!(
                "the groups used {:.0} ms of device time together in the span all readers read: too little to \
                 judge a share against an edge of {:.0} ms; {evidence}",
                used_ns as f64 / 1e6,
                e as f64 / 1e6
            ),
        };
    }
    let want = f64::from(mine) / f64::from(mine + other);
    let tol = e as f64 / (used_ns - 2 * e) as f64;
    let got = *mine_bytes as f64 / total as f64;
    let expected = format!("the case's share {want:.3} ± {tol:.3} (io.weight {mine} against {other})");
    let observed = format!("{got:.3}");
    if (got - want).abs() <= tol {
        Verdict::Pass { expected, observed, evidence }
    } else {
        Verdict::Fail { expected, observed, evidence }
    }
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(mine: u64, theirs: u64) -> ExerciseReport {
        ExerciseReport::IoShare {
            mine_bytes: mine,
            sibling_bytes: theirs,
            span_ns: 2_000_000_000,
            wall_ns: 2_100_000_000,
            mine_total: mine,
            sibling_total: theirs,
            error: None,
        }
    }

    /// 100 against 400 is a share of 0.2; an even split fails it, and passes the control's.
    #[test]
    fn a_split_is_judged_against_the_weights_within_the_edges() {
        const MIB: u64 = 1 << 20;
        let r = |m: f64| report((m * 16.0 * MIB as f64) as u64, ((1.0 - m) * 16.0 * MIB as f64) as u64);
        assert!(matches!(judge(100, 400, 64 << 10, &r(0.21)), Verdict::Pass { .. }));
        assert!(matches!(judge(100, 400, 64 << 10, &r(0.5)), Verdict::Fail { .. }));
        assert!(matches!(judge(400, 400, 64 << 10, &r(0.5)), Verdict::Pass { .. }));
        assert!(matches!(judge(400, 400, 64 << 10, &r(0.2)), Verdict::Fail { .. }));
        assert!(matches!(judge(100, 400, 64 << 10, &report(MIB / 4, MIB / 4)), Verdict::Error { .. }));
    }
}
