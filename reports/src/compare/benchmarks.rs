//! Benchmark statistics: how each benchmark of BASE moved in NEW, judged by its confidence
//! interval against the threshold, in nanoseconds on the same machine or as ratios to the
//! calibrations both sides measured.
//!
//! The interval of NEW/BASE is taken conservatively as `[new.ci_low / base.ci_high, new.ci_high /
//! base.ci_low]`; a change counts only when the whole of it lies beyond the threshold. What this
//! module must never do: judge a case whose interval proves nothing (one sample, or contended on
//! one side only): it is inconclusive.
//!
//! The harness's overhead ([`HarnessOverhead`]: one whole case over the bare spawn of the same
//! namespace set, both medians of one run) is judged the same way, per set: its change is NEW's
//! ratio over BASE's, with the interval `[new.ci_low / base.ci_high, new.ci_high / base.ci_low]`
//! of the two ratios' own intervals (each already bounded conservatively from its two medians'
//! intervals, see [`HarnessOverhead`]), against the same threshold. The ratio is of two times
//! of one machine and one run, so it is compared as it is on every basis, never divided by a
//! calibration. A set whose ratio only one side carries (a summary from before the ratio was
//! kept, or a run without that set) is not judged, and the comparison says so.

use super::compatibility::same_machine;
use super::options::{Basis, CompareOptions};
use crate::bench::{BenchCase, BenchSummary, HARNESS_CASE, HarnessOverhead};

/// How a benchmark moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Judgement {
    /// The whole interval is slower than 1 + threshold.
    Regression,
    /// The whole interval is faster than 1 − threshold.
    Improvement,
    /// The whole interval lies within ±threshold.
    Unchanged,
    /// The interval straddles a threshold: not enough evidence either way.
    Inconclusive,
}

/// One benchmark of both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchDelta {
    pub name: String,
    pub base_ns: f64,
    pub new_ns: f64,
    /// NEW / BASE (of times, or of ratios to `calibration`).
    pub ratio: f64,
    pub lo: f64,
    pub hi: f64,
    pub judgement: Judgement,
    /// The calibration the shown ratio is relative to, when comparing across machines.
    pub calibration: Option<String>,
    /// The interval lies wholly below no change (against every calibration), on samples that
    /// count: faster, though perhaps by less than the threshold can tell from unchanged.
    pub faster: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchComparison {
    /// `None`: nanoseconds; otherwise the calibrations used.
    pub calibrations: Option<Vec<String>>,
    pub deltas: Vec<BenchDelta>,
    pub missing: Vec<String>,
    pub added: Vec<String>,
    /// The harness's overhead of each namespace set both sides carry.
    pub overhead: Vec<OverheadDelta>,
    /// Why the overhead of a set (or of every set) was not judged.
    pub overhead_not_judged: Vec<String>,
}

/// The harness's overhead on one namespace set in both runs (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct OverheadDelta {
    pub set: String,
    /// BASE's and NEW's harness case over native spawn.
    pub base: f64,
    pub new: f64,
    /// NEW's ratio over BASE's, and its interval.
    pub change: f64,
    pub lo: f64,
    pub hi: f64,
    pub judgement: Judgement,
    /// The ratio rose only because the bare spawn got faster: the harness case itself is judged
    /// no slower (an improvement, or unchanged), so the harness is not slower (the judgement is
    /// then not a regression; see `explain_by_faster_cases`).
    pub spawn_faster: bool,
}

/// The benchmarks of NEW judged against BASE, with the threshold they were judged by and what the
/// reports must say about how.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Judged {
    pub comparison: BenchComparison,
    /// The threshold of the options, or in the kernel gate the noise measured between the runs
    /// when that is wider.
    pub threshold: f64,
    /// The measured threshold and the contended cases, in that order.
    pub notes: Vec<String>,
}

/// Compares the benchmarks of BASE and NEW: on which basis (nanoseconds, or ratios to
/// calibrations), in the kernel gate with the threshold widened to the noise measured between the
/// runs, with a note on contended cases. An error says why no basis relates them.
pub(super) fn judge_all(b: &BenchSummary, n: &BenchSummary, opts: &CompareOptions) -> Result<Judged, String> {
    let cals = bench_basis(b, n, opts)?;
    let mut notes = Vec::new();
    let mut opts = opts.clone();
    if opts.kernel_gate
        && let Some(noise) = cals.as_deref().and_then(|cals| calibration_noise(b, n, cals))
        && noise.factor - 1.0 > opts.threshold
    {
        notes.push(format!(
            "latency threshold measured in this job: ±{:.0}% (calibrations {} and {} moved {:.2}× apart \
             between the runs; --threshold {:.0}%)",
            (noise.factor - 1.0) * 100.0,
            noise.fast,
            noise.slow,
            noise.factor,
            opts.threshold * 100.0
        ));
        opts.threshold = noise.factor - 1.0;
    }
    let contended: Vec<String> = [("BASE", b), ("NEW", n)]
        .iter()
        .filter_map(|(side, s)| {
            let k = s.cases.iter().filter(|c| c.contended).count();
            (k > 0).then(|| format!("{side} {k}"))
        })
        .collect();
    if !contended.is_empty() {
        notes.push(format!(
            "benchmark cases measured on a contended CPU (too few full-speed samples; they read slow): \
             {}; where only one side is contended the case is inconclusive",
            contended.join(", ")
        ));
    }
    Ok(Judged { comparison: compare_bench(b, n, cals, &opts), threshold: opts.threshold, notes })
}

/// The calibrations to judge against, or `None` for nanoseconds; an error when the machines
/// differ and no calibration can bridge them.
pub(super) fn bench_basis(
    b: &BenchSummary,
    n: &BenchSummary,
    opts: &CompareOptions,
) -> Result<Option<Vec<String>>, String> {
    let use_cal = match opts.basis {
        Basis::Absolute => false,
        Basis::Calibration => true,
        Basis::Auto => !same_machine(&b.fingerprint, &n.fingerprint),
    };
    if !use_cal {
        return Ok(None);
    }
    let common: Vec<String> = b.calibration.keys().filter(|k| n.calibration.contains_key(*k)).cloned().collect();
    match &opts.calibration {
        Some(want) if common.contains(want) => Ok(Some(vec![want.clone()])),
        Some(want) => Err(format!("calibration `{want}` is not in both summaries (both have: {})", list(&common))),
        None if common.is_empty() => Err(format!(
            "benchmarks ran on different machines and share no calibration case to compare ratios by \
             (BASE has {}, NEW has {}); pass --absolute to compare nanoseconds anyway",
            list(&b.calibration.keys().cloned().collect::<Vec<_>>()),
            list(&n.calibration.keys().cloned().collect::<Vec<_>>())
        )),
        None => Ok(Some(common)),
    }
}

/// How far apart two calibration cases moved between BASE and NEW.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CalibrationNoise {
    /// NEW/BASE of the one divided by NEW/BASE of the other (≥ 1).
    pub factor: f64,
    pub fast: String,
    pub slow: String,
}

/// The kernel gate's latency noise, measured in the same job: calibrations are fixed operations
/// measured in the same VM as everything else, so how far two of them move apart between BASE and
/// NEW is timing noise of this pair of runs (TCG on a shared host: several-fold), and no latency
/// change smaller than that can be told from it. `None` with fewer than two calibrations.
pub(super) fn calibration_noise(b: &BenchSummary, n: &BenchSummary, cals: &[String]) -> Option<CalibrationNoise> {
    let moved: Vec<(&String, f64)> = cals
        .iter()
        .filter_map(|c| {
            let (x, y) = (b.calibration.get(c)?, n.calibration.get(c)?);
            (*x > 0.0 && *y > 0.0).then(|| (c, y / x))
        })
        .collect();
    let lo = moved.iter().min_by(|x, y| x.1.total_cmp(&y.1))?;
    let hi = moved.iter().max_by(|x, y| x.1.total_cmp(&y.1))?;
    (moved.len() >= 2).then(|| CalibrationNoise { factor: hi.1 / lo.1, fast: lo.0.clone(), slow: hi.0.clone() })
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn judge(lo: f64, hi: f64, t: f64) -> Judgement {
    if lo > 1.0 + t {
        Judgement::Regression
    } else if hi < 1.0 - t {
        Judgement::Improvement
    } else if lo >= 1.0 - t && hi <= 1.0 + t {
        Judgement::Unchanged
    } else {
        Judgement::Inconclusive
    }
}

/// (ratio, lo, hi) of NEW over BASE, each time scaled by `scale` (BASE cal / NEW cal).
fn interval(b: &BenchCase, n: &BenchCase, scale: f64) -> (f64, f64, f64) {
    let div = |x: f64, y: f64| if y > 0.0 { x / y * scale } else { f64::INFINITY };
    (div(n.median_ns, b.median_ns), div(n.ci_low_ns, b.ci_high_ns), div(n.ci_high_ns, b.ci_low_ns))
}

fn compare_bench(
    b: &BenchSummary,
    n: &BenchSummary,
    cals: Option<Vec<String>>,
    opts: &CompareOptions,
) -> BenchComparison {
    let t = opts.threshold;
    let mut deltas = Vec::new();
    let mut missing = Vec::new();
    for bc in &b.cases {
        let Some(nc) = n.case(&bc.group, &bc.id) else {
            missing.push(bc.name());
            continue;
        };
        let mut delta = match &cals {
            None => {
                let (ratio, lo, hi) = interval(bc, nc, 1.0);
                BenchDelta {
                    name: bc.name(),
                    base_ns: bc.median_ns,
                    new_ns: nc.median_ns,
                    ratio,
                    lo,
                    hi,
                    judgement: judge(lo, hi, t),
                    calibration: None,
                    faster: hi < 1.0,
                }
            }
            Some(cals) => {
                let per: Vec<(String, (f64, f64, f64), Judgement)> = cals
                    .iter()
                    .map(|cal| {
                        let scale = b.calibration[cal] / n.calibration[cal];
                        let (r, lo, hi) = interval(bc, nc, scale);
                        (cal.clone(), (r, lo, hi), judge(lo, hi, t))
                    })
                    .collect();
                // Every calibration must agree; show the one that moved least.
                let first = per[0].2;
                let faster = per.iter().all(|p| p.1.2 < 1.0);
                let judgement = if per.iter().all(|p| p.2 == first) { first } else { Judgement::Inconclusive };
                let (cal, (ratio, lo, hi), _) = per
                    .iter()
                    .min_by(|x, y| x.1.0.ln().abs().total_cmp(&y.1.0.ln().abs()))
                    .cloned()
                    .unwrap_or_else(|| per[0].clone());
                BenchDelta {
                    name: bc.name(),
                    base_ns: bc.median_ns,
                    new_ns: nc.median_ns,
                    ratio,
                    lo,
                    hi,
                    judgement,
                    calibration: Some(cal),
                    faster,
                }
            }
        };
        // One sample has no interval: its "interval" is a point, and proves nothing either way.
        // A contended case's median mixes full-speed and slow-CPU samples (see `BenchCase`):
        // against a clean one it shows the host's load, not a change.
        if bc.samples < 2 || nc.samples < 2 || bc.contended != nc.contended {
            delta.judgement = Judgement::Inconclusive;
            delta.faster = false;
        }
        deltas.push(delta);
    }
    let added = n.cases.iter().filter(|c| b.case(&c.group, &c.id).is_none()).map(BenchCase::name).collect();
    let (mut overhead, overhead_not_judged) = compare_overhead(&b.harness_overhead, &n.harness_overhead, t);
    explain_by_faster_cases(&mut overhead, &deltas);
    BenchComparison { calibrations: cals, deltas, missing, added, overhead, overhead_not_judged }
}

/// A set's overhead ratio that rose while its harness case itself is no slower (an improvement,
/// unchanged within the threshold, or faster by less than the threshold can tell: its whole
/// interval below no change) is the bare spawn getting faster, not a slower harness: no
/// regression; the harness case's own judgement gates its time. Seen when the spawn moved to
/// CLONE_VM (0.28 → 0.20 ms): the ratio of the empty set rose from 15 to 19.5 while its harness
/// case fell from 4.3 to 3.9 ms; and when the spawn stopped copying the harness's descriptor
/// table (native_spawn/none 92 → 69 µs, harness_case/none 2.00 → 1.81 ms, interval −12.8% …
/// −2.3%: ratio 21.7 → 26.5). A harness case judged slower, or whose interval reaches above no
/// change or proves nothing (one sample, contention on one side), leaves the regression
/// standing: the gate fails closed.
fn explain_by_faster_cases(overhead: &mut [OverheadDelta], deltas: &[BenchDelta]) {
    for o in overhead.iter_mut().filter(|o| o.judgement == Judgement::Regression) {
        let case = format!("{}/{}/{}", HARNESS_CASE.0, HARNESS_CASE.1, o.set);
        let no_slower =
            |d: &BenchDelta| d.faster || matches!(d.judgement, Judgement::Improvement | Judgement::Unchanged);
        if deltas.iter().any(|d| d.name == case && no_slower(d)) {
            o.judgement = Judgement::Unchanged;
            o.spawn_faster = true;
        }
    }
}

/// The harness's overhead of every set both sides carry, judged against the threshold `t`
/// (see the module docs), and why any other set was not.
fn compare_overhead(b: &[HarnessOverhead], n: &[HarnessOverhead], t: f64) -> (Vec<OverheadDelta>, Vec<String>) {
    let mut not_judged = Vec::new();
    match (b.is_empty(), n.is_empty()) {
        (true, true) => {
            not_judged.push("neither side carries the harness-overhead ratio (summaries from before it was kept, or runs without the container benchmarks)".into());
            return (Vec::new(), not_judged);
        }
        (true, false) => not_judged.push("BASE carries no harness-overhead ratio (a summary from before it was kept, or a run without the container benchmarks)".into()),
        (false, true) => not_judged.push("NEW carries no harness-overhead ratio (a summary from before it was kept, or a run without the container benchmarks)".into()),
        (false, false) => {}
    }
    let mut deltas = Vec::new();
    for bo in b {
        let Some(no) = n.iter().find(|o| o.set == bo.set) else {
            if !n.is_empty() {
                not_judged.push(format!("{}: only BASE has this set's ratio", bo.set));
            }
            continue;
        };
        let div = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::INFINITY };
        let (lo, hi) = (div(no.ci_low, bo.ci_high), div(no.ci_high, bo.ci_low));
        // As for a case: a point interval, or contention on one side only, proves nothing.
        let judgement = if bo.samples < 2 || no.samples < 2 || bo.contended != no.contended {
            Judgement::Inconclusive
        } else {
            judge(lo, hi, t)
        };
        deltas.push(OverheadDelta {
            set: bo.set.clone(),
            base: bo.ratio,
            new: no.ratio,
            change: div(no.ratio, bo.ratio),
            lo,
            hi,
            judgement,
            spawn_faster: false,
        });
    }
    if !b.is_empty() {
        for no in n.iter().filter(|no| !b.iter().any(|bo| bo.set == no.set)) {
            not_judged.push(format!("{}: only NEW has this set's ratio", no.set));
        }
    }
    (deltas, not_judged)
}

impl BenchComparison {
    pub fn count(&self, j: Judgement) -> usize {
        self.deltas.iter().filter(|d| d.judgement == j).count()
    }

    /// The sets whose harness overhead grew beyond the threshold.
    pub fn overhead_regressions(&self) -> usize {
        self.overhead.iter().filter(|d| d.judgement == Judgement::Regression).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bench, bench_case};

    #[test]
    fn a_change_counts_only_when_its_whole_interval_is_beyond_the_threshold() {
        let t = 0.10;
        assert_eq!(judge(1.11, 1.5, t), Judgement::Regression);
        assert_eq!(judge(0.5, 0.89, t), Judgement::Improvement);
        assert_eq!(judge(0.95, 1.05, t), Judgement::Unchanged);
        assert_eq!(judge(1.05, 1.2, t), Judgement::Inconclusive, "straddles +10%");
        assert_eq!(judge(0.8, 1.2, t), Judgement::Inconclusive, "straddles both");
        // On the threshold is not beyond it.
        assert_eq!(judge(1.1, 1.3, t), Judgement::Inconclusive);
        assert_eq!(judge(0.9, 1.1, t), Judgement::Unchanged);
    }

    #[test]
    fn the_interval_of_new_over_base_is_taken_conservatively() {
        let b = BenchCase { ci_low_ns: 90.0, ci_high_ns: 110.0, ..bench_case("clone3", "pid", 100.0, 0.0) };
        let n = BenchCase { ci_low_ns: 180.0, ci_high_ns: 220.0, ..bench_case("clone3", "pid", 200.0, 0.0) };
        let (ratio, lo, hi) = interval(&b, &n, 1.0);
        assert_eq!((ratio, lo, hi), (2.0, 180.0 / 110.0, 220.0 / 90.0), "NEW's low over BASE's high, and back");
        assert_eq!(interval(&b, &n, 0.5).0, 1.0, "scaled by BASE cal / NEW cal");
        let zero = BenchCase { ci_low_ns: 0.0, ..b };
        assert_eq!(interval(&zero, &n, 1.0).2, f64::INFINITY, "a zero bound is no bound, not a division by zero");
    }

    #[test]
    fn the_basis_is_nanoseconds_on_one_machine_and_calibrations_across_machines() {
        let b = bench(&[("getpid", 50.0), ("fork-exec", 1000.0)], Vec::new());
        let mut n = bench(&[("getpid", 100.0)], Vec::new());
        let auto = CompareOptions::default();
        assert_eq!(bench_basis(&b, &n, &auto), Ok(None));
        let by_cal = CompareOptions { basis: Basis::Calibration, ..Default::default() };
        assert_eq!(bench_basis(&b, &n, &by_cal), Ok(Some(vec!["getpid".to_owned()])));
        n.fingerprint.cpu.model = "other CPU".into();
        assert_eq!(bench_basis(&b, &n, &auto), Ok(Some(vec!["getpid".to_owned()])));
        let absolute = CompareOptions { basis: Basis::Absolute, ..Default::default() };
        assert_eq!(bench_basis(&b, &n, &absolute), Ok(None));
        let fork = CompareOptions { calibration: Some("fork-exec".into()), ..Default::default() };
        assert_eq!(
            bench_basis(&b, &n, &fork),
            Err("calibration `fork-exec` is not in both summaries (both have: getpid)".to_owned())
        );
        n.calibration.clear();
        let e = bench_basis(&b, &n, &auto).unwrap_err();
        assert!(e.contains("share no calibration") && e.contains("NEW has none") && e.contains("--absolute"), "{e}");
    }

    #[test]
    fn calibration_noise_is_how_far_two_calibrations_moved_apart() {
        let b = bench(&[("getpid", 50.0), ("fork-exec", 1000.0)], Vec::new());
        let n = bench(&[("getpid", 50.0), ("fork-exec", 3000.0)], Vec::new());
        let cals = ["getpid".to_owned(), "fork-exec".to_owned()];
        let noise = calibration_noise(&b, &n, &cals).unwrap();
        assert_eq!((noise.factor, noise.fast.as_str(), noise.slow.as_str()), (3.0, "getpid", "fork-exec"));
        assert_eq!(calibration_noise(&b, &n, &cals[..1]), None, "one calibration cannot move apart from itself");
    }

    #[test]
    fn each_case_is_judged_and_missing_and_added_ones_are_listed() {
        let b = bench(
            &[],
            vec![
                bench_case("clone3", "pid", 100.0, 0.02),
                bench_case("clone3", "net", 100.0, 0.02),
                bench_case("setns", "mnt", 100.0, 0.02),
            ],
        );
        let n = bench(
            &[],
            vec![
                bench_case("clone3", "pid", 150.0, 0.02),
                bench_case("clone3", "net", 101.0, 0.02),
                bench_case("cgroup", "mkdir", 10.0, 0.02),
            ],
        );
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!(
            (c.missing.as_slice(), c.added.as_slice()),
            (["setns/mnt".to_owned()].as_slice(), ["cgroup/mkdir".to_owned()].as_slice())
        );
        assert_eq!((c.count(Judgement::Regression), c.count(Judgement::Unchanged)), (1, 1));
        assert!(c.deltas.iter().all(|d| d.calibration.is_none()), "nanoseconds");
    }

    #[test]
    fn one_sample_or_contention_on_one_side_only_is_inconclusive() {
        let b = bench(&[], vec![BenchCase { samples: 1, ..bench_case("clone3", "pid", 100.0, 0.0) }]);
        let n = bench(&[], vec![bench_case("clone3", "pid", 300.0, 0.0)]);
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!(c.deltas[0].judgement, Judgement::Inconclusive);
        let b = bench(&[], vec![bench_case("clone3", "pid", 100.0, 0.0)]);
        let n = bench(&[], vec![BenchCase { contended: true, ..bench_case("clone3", "pid", 300.0, 0.0) }]);
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!(c.deltas[0].judgement, Judgement::Inconclusive);
        let n = bench(&[], vec![bench_case("clone3", "pid", 300.0, 0.0)]);
        assert_eq!(compare_bench(&b, &n, None, &CompareOptions::default()).deltas[0].judgement, Judgement::Regression);
    }

    fn overhead(set: &str, ratio: f64, spread: f64) -> HarnessOverhead {
        HarnessOverhead {
            set: set.into(),
            ratio,
            ci_low: ratio * (1.0 - spread),
            ci_high: ratio * (1.0 + spread),
            samples: 100,
            contended: false,
        }
    }

    #[test]
    fn the_overhead_is_judged_per_set_by_its_interval() {
        let b = [overhead("none", 35.0, 0.02), overhead("all", 5.0, 0.02), overhead("pid+mnt", 10.0, 0.02)];
        let n = [overhead("none", 42.0, 0.02), overhead("all", 5.1, 0.02), overhead("pid+mnt", 11.0, 0.02)];
        let (d, not_judged) = compare_overhead(&b, &n, 0.10);
        assert!(not_judged.is_empty(), "{not_judged:?}");
        let got: Vec<(&str, Judgement)> = d.iter().map(|d| (d.set.as_str(), d.judgement)).collect();
        // 42/35 = 1.2, interval [41.16/35.7, 42.84/34.3] = [1.153, 1.249]: all of it above 1.1.
        // 11/10 = 1.1, interval [1.057, 1.145]: straddles 1.1.
        assert_eq!(
            got,
            [("none", Judgement::Regression), ("all", Judgement::Unchanged), ("pid+mnt", Judgement::Inconclusive)]
        );
        assert_eq!((d[0].base, d[0].new), (35.0, 42.0));
        assert!((d[0].change - 1.2).abs() < 1e-12, "{}", d[0].change);
        assert_eq!((d[0].lo, d[0].hi), (42.0 * 0.98 / (35.0 * 1.02), 42.0 * 1.02 / (35.0 * 0.98)));
        // A threshold widened to 30% (the kernel gate's measured noise) holds the same change.
        assert_eq!(compare_overhead(&b, &n, 0.30).0[0].judgement, Judgement::Unchanged);
        // A lower overhead is an improvement.
        let (d, _) = compare_overhead(&n, &b, 0.10);
        assert_eq!(d[0].judgement, Judgement::Improvement);
    }

    /// The bare spawn got faster and the harness case too, though less: the ratio rises, but the
    /// harness is not slower, so the gate does not fail. With the case slower, or its change
    /// unproven, the same rise is a regression.
    #[test]
    fn a_ratio_raised_by_a_faster_spawn_is_no_regression_when_the_case_got_faster_too() {
        let cases = |spawn: f64, case: f64| {
            let mut s = bench_case("clone3", "pid", 100.0, 0.01);
            s.group = "container".into();
            s.id = "native_spawn/none".into();
            s.median_ns = spawn;
            (s.ci_low_ns, s.ci_high_ns) = (spawn * 0.99, spawn * 1.01);
            let mut c = s.clone();
            c.id = "harness_case/none".into();
            c.median_ns = case;
            (c.ci_low_ns, c.ci_high_ns) = (case * 0.99, case * 1.01);
            vec![s, c]
        };
        let summary = |spawn: f64, case: f64| {
            let cases = cases(spawn, case);
            BenchSummary { harness_overhead: crate::bench::harness_overhead(&cases), ..bench(&[], cases) }
        };
        let b = summary(280_000.0, 4_300_000.0);
        // Spawn 0.28 -> 0.20 ms, case 4.3 -> 3.7 ms (an improvement): ratio 15.4 -> 18.5.
        // Case 4.3 -> 4.3 ms (unchanged): ratio 15.4 -> 21.5.
        for case in [3_700_000.0, 4_300_000.0] {
            let c = compare_bench(&b, &summary(200_000.0, case), None, &CompareOptions::default());
            assert_eq!(c.overhead[0].judgement, Judgement::Unchanged, "{:?}", c.overhead);
            assert!(c.overhead[0].spawn_faster);
            assert_eq!(c.overhead_regressions(), 0);
        }
        // Case 4.3 -> 3.95 ms (8% faster, within the 10% threshold, its whole interval below no
        // change: inconclusive on its own, but no slower): ratio 15.4 -> 19.8, no regression.
        let mut n = summary(200_000.0, 3_950_000.0);
        (n.cases[1].ci_low_ns, n.cases[1].ci_high_ns) = (3_750_000.0, 4_200_000.0);
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!(c.deltas[1].judgement, Judgement::Inconclusive, "{:?}", c.deltas);
        assert_eq!((c.overhead[0].judgement, c.overhead[0].spawn_faster), (Judgement::Unchanged, true));
        // The same, but its interval reaching above no change: the regression stands.
        n.cases[1].ci_high_ns = 4_400_000.0;
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!((c.overhead[0].judgement, c.overhead_regressions()), (Judgement::Regression, 1));
        // The same faster spawn with the case 14% slower: the harness is slower; a regression.
        let c = compare_bench(&b, &summary(200_000.0, 4_900_000.0), None, &CompareOptions::default());
        assert_eq!(c.overhead[0].judgement, Judgement::Regression);
        assert!(!c.overhead[0].spawn_faster);
        assert_eq!(c.overhead_regressions(), 1);
        // A case whose interval proves nothing (one sample) does not explain anything.
        let mut n = summary(200_000.0, 3_700_000.0);
        n.cases[1].samples = 1;
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!(c.overhead_regressions(), 1, "{:?}", c.overhead);
    }

    #[test]
    fn an_overhead_of_one_sample_or_contended_on_one_side_is_not_judged() {
        let b = [HarnessOverhead { samples: 1, ..overhead("none", 35.0, 0.0) }, overhead("all", 5.0, 0.0)];
        let n = [overhead("none", 70.0, 0.0), HarnessOverhead { contended: true, ..overhead("all", 10.0, 0.0) }];
        let (d, _) = compare_overhead(&b, &n, 0.10);
        assert!(d.iter().all(|d| d.judgement == Judgement::Inconclusive), "{d:?}");
        let both = [HarnessOverhead { contended: true, ..overhead("all", 5.0, 0.0) }];
        assert_eq!(compare_overhead(&both, &n[1..], 0.10).0[0].judgement, Judgement::Regression, "contended on both");
    }

    /// A summary from before the ratio was kept still compares: its overhead is not judged, and
    /// the comparison says why.
    #[test]
    fn a_side_without_the_overhead_is_not_judged_and_says_so() {
        let with = [overhead("none", 35.0, 0.02), overhead("all", 5.0, 0.02)];
        let (d, why) = compare_overhead(&[], &with, 0.10);
        assert!(d.is_empty());
        assert_eq!(why.len(), 1);
        assert!(why[0].starts_with("BASE carries no harness-overhead ratio"), "{why:?}");
        let (_, why) = compare_overhead(&with, &[], 0.10);
        assert!(why[0].starts_with("NEW carries no harness-overhead ratio"), "{why:?}");
        let (_, why) = compare_overhead(&[], &[], 0.10);
        assert!(why[0].starts_with("neither side carries"), "{why:?}");
        // A set on one side only.
        let (d, why) = compare_overhead(&with[..1], &with[1..], 0.10);
        assert!(d.is_empty());
        assert_eq!(why, ["none: only BASE has this set's ratio", "all: only NEW has this set's ratio"]);
        // Through the whole comparison of two summaries.
        let mut b = bench(&[], vec![bench_case("clone3", "pid", 100.0, 0.02)]);
        let n = BenchSummary { harness_overhead: with.to_vec(), ..b.clone() };
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert!(c.overhead.is_empty() && c.overhead_not_judged[0].starts_with("BASE carries no"), "{c:?}");
        b.harness_overhead = vec![overhead("none", 20.0, 0.02)];
        let c = compare_bench(&b, &n, None, &CompareOptions::default());
        assert_eq!((c.overhead.len(), c.overhead_regressions()), (1, 1), "{c:?}");
    }

    /// Across machines a change must hold against every calibration; the one shown is the
    /// calibration the case moved least against.
    #[test]
    fn across_machines_every_calibration_must_agree() {
        let b = bench(&[("getpid", 10.0), ("fork-exec", 10.0)], vec![bench_case("clone3", "pid", 100.0, 0.01)]);
        let n = bench(&[("getpid", 20.0), ("fork-exec", 10.0)], vec![bench_case("clone3", "pid", 200.0, 0.01)]);
        let both = Some(vec!["getpid".to_owned(), "fork-exec".to_owned()]);
        let d = &compare_bench(&b, &n, both, &CompareOptions::default()).deltas[0];
        assert_eq!((d.judgement, d.calibration.as_deref(), d.ratio), (Judgement::Inconclusive, Some("getpid"), 1.0));
        let one = Some(vec!["getpid".to_owned()]);
        assert_eq!(compare_bench(&b, &n, one, &CompareOptions::default()).deltas[0].judgement, Judgement::Unchanged);
    }
}
