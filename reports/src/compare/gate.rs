//! The gate itself: the outcome of a comparison ([`Comparison`]), the order in which its parts are
//! compared (fingerprints, benchmarks, verdicts), and what fails it.
//!
//! What this module must never do: let the exit status and the verdict line disagree. Both come
//! from [`Comparison::gate_failures`].

use super::benchmarks::{self, BenchComparison, Judgement};
use super::compatibility::{TCG, emulated_side, fingerprint_notes, is_platform_difference, verdict_incompatibilities};
use super::options::CompareOptions;
use super::verdicts::{self, VerdictDiff};
use crate::load::Document;

/// Exit status: no regression.
pub const EXIT_OK: u8 = 0;
/// Exit status: a regression.
pub const EXIT_REGRESSION: u8 = 1;
/// Exit status: the inputs could not be compared.
pub const EXIT_INCOMPARABLE: u8 = 2;

/// The outcome of comparing two documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub base: String,
    pub new: String,
    /// Why the runs cannot be compared; with `forced` false nothing else was compared.
    pub refused: Vec<String>,
    pub forced: bool,
    /// Differences that do not prevent comparing (the kernel, tool versions, the machine).
    pub notes: Vec<String>,
    /// The verdict categories (empty when the comparison was refused, or of benchmark summaries).
    pub verdicts: VerdictDiff,
    pub bench: Option<BenchComparison>,
    pub allow_new_skips: bool,
    pub allow_missing: bool,
    pub threshold: f64,
    /// Why benchmark regressions are reported but do not fail the comparison (the kernel gate
    /// on an emulated CPU); `None`: they fail it.
    pub bench_not_gated: Option<String>,
}

/// The inputs are of different kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compare {base} ({base_kind}) with {new} ({new_kind}): both must be run reports or both benchmark summaries")]
pub struct KindMismatch {
    pub base: String,
    pub base_kind: &'static str,
    pub new: String,
    pub new_kind: &'static str,
}

/// Compares NEW with BASE: two run reports (verdicts, and benchmarks when both carry a summary) or
/// two benchmark summaries.
pub fn compare(
    base: &Document,
    base_name: &str,
    new: &Document,
    new_name: &str,
    opts: &CompareOptions,
) -> Result<Comparison, KindMismatch> {
    let mut c = Comparison {
        base: base_name.to_owned(),
        new: new_name.to_owned(),
        refused: Vec::new(),
        forced: opts.force,
        notes: Vec::new(),
        verdicts: VerdictDiff::default(),
        bench: None,
        allow_new_skips: opts.allow_new_skips,
        allow_missing: opts.allow_missing,
        threshold: opts.threshold,
        bench_not_gated: None,
    };
    let (bf, nf) = (base.fingerprint(), new.fingerprint());
    let (base_bench, new_bench) = match (base, new) {
        (Document::Run(b), Document::Run(n)) => {
            c.refused = verdict_incompatibilities(bf, nf);
            if opts.kernel_gate {
                let (platform, refused): (Vec<String>, Vec<String>) =
                    c.refused.drain(..).partition(|r| is_platform_difference(r));
                c.refused = refused;
                c.notes.extend(
                    platform.into_iter().map(|r| format!("{r}: part of the platform under test (kernel gate)")),
                );
            }
            (b.bench.as_ref(), n.bench.as_ref())
        }
        (Document::Bench(b), Document::Bench(n)) => (Some(&**b), Some(&**n)),
        _ => {
            return Err(KindMismatch {
                base: base_name.into(),
                base_kind: base.kind(),
                new: new_name.into(),
                new_kind: new.kind(),
            });
        }
    };
    c.notes.extend(fingerprint_notes(bf, nf));
    if let (Some(b), Some(n)) = (base_bench, new_bench) {
        if opts.kernel_gate
            && let Some(side) = emulated_side(bf, nf)
        {
            c.bench_not_gated = Some(format!(
                "{side} ran under QEMU's TCG emulator (hypervisor {TCG}): between two runs of the same kernel \
                 there, clone3 with a time namespace went from 0.94 to 3.48 ms, +173% relative to calibrations \
                 that moved only 1.85× apart, so latencies are compared and shown but do not fail the kernel gate"
            ));
            c.notes.extend(c.bench_not_gated.iter().map(|why| format!("latency not gated: {why}")));
        }
        match benchmarks::judge_all(b, n, opts) {
            Ok(j) => {
                c.notes.extend(j.notes);
                c.threshold = j.threshold;
                c.bench = Some(j.comparison);
            }
            Err(why) => c.refused.push(why),
        }
    } else if base_bench.is_some() != new_bench.is_some() {
        c.notes.push("only one of the reports carries benchmark results: benchmarks not compared".into());
    }
    if !c.refused.is_empty() && !opts.force {
        c.bench = None;
        return Ok(c);
    }
    if let (Document::Run(b), Document::Run(n)) = (base, new) {
        c.verdicts = verdicts::diff(b, n);
    }
    Ok(c)
}

impl Comparison {
    /// Whether the comparison was refused (fingerprints, or no way to relate the benchmarks).
    pub fn incomparable(&self) -> bool {
        !self.refused.is_empty() && !self.forced
    }

    /// Benchmark regressions that fail the comparison (none when they are not gated).
    pub fn gated_bench_regressions(&self) -> usize {
        if self.bench_not_gated.is_some() { 0 } else { self.bench_regressions() }
    }

    pub fn bench_regressions(&self) -> usize {
        self.bench.as_ref().map_or(0, |b| b.count(Judgement::Regression))
    }

    /// Sets whose harness overhead grew beyond the threshold and fail the comparison (none when
    /// latencies are not gated: the overhead is a ratio of two latencies).
    pub fn gated_overhead_regressions(&self) -> usize {
        if self.bench_not_gated.is_some() { 0 } else { self.overhead_regressions() }
    }

    pub fn overhead_regressions(&self) -> usize {
        self.bench.as_ref().map_or(0, |b| b.overhead_regressions())
    }

    /// 0 no regression, 1 regression, 2 could not compare.
    pub fn exit_code(&self) -> u8 {
        if self.incomparable() {
            EXIT_INCOMPARABLE
        } else if self.gate_failures().is_empty() {
            EXIT_OK
        } else {
            EXIT_REGRESSION
        }
    }

    /// What fails the comparison, a count per category; the exit status and the verdict line
    /// both come from here, so that they cannot disagree.
    pub(super) fn gate_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.verdicts.new_empty {
            out.push(format!(
                "NEW holds no cases (BASE has {} in {} suites)",
                self.verdicts.missing_suite_cases(),
                self.verdicts.missing_suites.len()
            ));
        }
        let mut count = |n: usize, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        count(self.verdicts.regressions.len(), "verdict regressions");
        count(self.verdicts.new_failures.len(), "new failures");
        if !self.allow_new_skips {
            count(self.verdicts.new_skips.len(), "new skips");
        }
        if !self.allow_missing {
            count(self.verdicts.missing_checks.len(), "checks missing from NEW");
            count(self.verdicts.missing_cases.len(), "cases missing from NEW");
            if !self.verdicts.new_empty {
                self.push_missing_suites(&mut out);
            }
        }
        let bench = self.gated_bench_regressions();
        if bench > 0 {
            out.push(format!("{bench} benchmark regressions"));
        }
        let overhead = self.gated_overhead_regressions();
        if overhead > 0 {
            out.push(format!("{overhead} harness overhead regressions"));
        }
        out
    }

    /// `REGRESSION: 2 new skips (exit 1)`, `no regression (exit 0); allowed: …`: the result line
    /// of both renderings, from the same counts as the exit status.
    pub(super) fn verdict_line(&self) -> String {
        let head = match self.exit_code() {
            EXIT_INCOMPARABLE => return "could not compare (exit 2)".into(),
            EXIT_REGRESSION => format!("REGRESSION: {} (exit 1)", self.gate_failures().join(", ")),
            _ => "no regression (exit 0)".into(),
        };
        match self.allowed() {
            allowed if allowed.is_empty() => head,
            allowed => format!("{head}; allowed: {}", allowed.join(", ")),
        }
    }

    /// What was reported but allowed by an option, a count per category.
    pub(super) fn allowed(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.allow_new_skips && !self.verdicts.new_skips.is_empty() {
            out.push(format!("{} new skips (--allow-new-skips)", self.verdicts.new_skips.len()));
        }
        if self.allow_missing && !self.verdicts.new_empty {
            let mut missing = Vec::new();
            for (n, what) in
                [(self.verdicts.missing_checks.len(), "checks"), (self.verdicts.missing_cases.len(), "cases")]
            {
                if n > 0 {
                    missing.push(format!("{n} {what} missing from NEW"));
                }
            }
            self.push_missing_suites(&mut missing);
            if !missing.is_empty() {
                out.push(format!("{} (--allow-missing)", missing.join(", ")));
            }
        }
        out
    }

    pub(super) fn push_missing_suites(&self, out: &mut Vec<String>) {
        if !self.verdicts.missing_suites.is_empty() {
            out.push(format!(
                "{} suites missing from NEW ({} cases)",
                self.verdicts.missing_suites.len(),
                self.verdicts.missing_suite_cases()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{allow_missing, allow_new_skips, fails, run};
    use super::*;
    use crate::model::Suite;
    use crate::testing::{HOSTNAME, SIGNAL, base, bench, edited, fail, report, run_report, set, skip, skipped};

    #[test]
    fn an_empty_new_is_a_regression_even_with_allow_missing() {
        let c = fails(base(), Vec::new(), "result: REGRESSION: NEW holds no cases (BASE has 4 in 2 suites) (exit 1)");
        assert!(c.to_text().contains("suite missing from NEW: limits (2 cases)"), "{}", c.to_text());
        // Suites without a case are no better than none.
        fails(base(), vec![Suite::new("namespaces", Vec::new())], "NEW holds no cases");
        let c = run(base(), Vec::new(), &allow_missing());
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{}", c.to_text());
        assert!(c.to_markdown().contains("**NEW holds no cases**: BASE has 4 in 2 suites."), "{}", c.to_markdown());
    }

    #[test]
    fn allow_new_skips_reports_skips_without_failing_and_nothing_else() {
        let skips = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        let c = run(base(), skips.clone(), &allow_new_skips());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        let text = c.to_text();
        assert!(text.contains("new skip (allowed) namespaces/clone3/host/uts: uts/hostname"), "{text}");
        assert!(text.contains("result: no regression (exit 0); allowed: 1 new skips (--allow-new-skips)"), "{text}");
        // A case skipped as a whole is a new skip too.
        let c = run(base(), edited("clone3/host/pid", |c| *c = skipped("clone3/host/pid")), &allow_new_skips());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        // A real pass → fail next to the skip still fails, and so does a missing case.
        let mut both = skips;
        set(&mut both[0].cases[1], SIGNAL, fail());
        let c = run(base(), both, &allow_new_skips());
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{}", c.to_text());
        assert!(c.to_text().contains("REGRESSION: 1 verdict regressions (exit 1)"), "{}", c.to_text());
        let mut fewer = base();
        fewer[0].cases.pop();
        assert_eq!(run(base(), fewer, &allow_new_skips()).exit_code(), EXIT_REGRESSION);
    }

    #[test]
    fn allow_missing_reports_missing_without_failing_and_nothing_else() {
        let mut fewer = base();
        fewer.pop();
        fewer[0].cases.pop();
        fewer[0].cases[0].runs[0].checks.pop();
        let c = run(base(), fewer.clone(), &allow_missing());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        let text = c.to_text();
        for needle in [
            "suite missing from NEW (allowed): limits (2 cases)",
            "case missing from NEW (allowed): namespaces/clone3/host/pid",
            "check missing from NEW (allowed) namespaces/clone3/host/uts: pid/signal-host-process",
            "allowed: 1 checks missing from NEW, 1 cases missing from NEW, 1 suites missing from NEW (2 cases) (--allow-missing)",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        // A real pass → fail in what is left still fails, and so does a new skip.
        let mut failing = fewer.clone();
        set(&mut failing[0].cases[0], HOSTNAME, fail());
        let c = run(base(), failing, &allow_missing());
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{}", c.to_text());
        assert!(c.to_text().contains("REGRESSION: 1 verdict regressions (exit 1)"), "{}", c.to_text());
        set(&mut fewer[0].cases[0], HOSTNAME, skip());
        assert_eq!(run(base(), fewer, &allow_missing()).exit_code(), EXIT_REGRESSION);
    }

    #[test]
    fn the_kernel_gate_fails_closed_too() {
        let gate = CompareOptions { kernel_gate: true, ..Default::default() };
        let new = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        assert_eq!(run(base(), new, &gate).exit_code(), EXIT_REGRESSION);
        assert_eq!(run(base(), Vec::new(), &gate).exit_code(), EXIT_REGRESSION);
        assert_eq!(run(base(), base(), &gate).exit_code(), EXIT_OK);
    }

    #[test]
    fn a_run_report_and_a_benchmark_summary_are_not_compared() {
        let summary = Document::Bench(Box::new(bench(&[], Vec::new())));
        let e = compare(&report(base()), "run.json", &summary, "bench.json", &CompareOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compare run.json (isoprobe-report) with bench.json (isoprobe-bench-summary): both must be run reports \
             or both benchmark summaries"
        );
    }

    /// Refused: nothing else is compared and the exit status is 2, whatever changed. Forced: the
    /// verdicts are compared as on one machine.
    #[test]
    fn a_refused_comparison_compares_nothing_unless_forced() {
        let mut new = run_report(edited("clone3/host/uts", |c| set(c, HOSTNAME, fail())));
        new.fingerprint.user.euid = 1000;
        let new = Document::Run(Box::new(new));
        let refused = compare(&report(base()), "base", &new, "new", &CompareOptions::default()).unwrap();
        assert_eq!(refused.exit_code(), EXIT_INCOMPARABLE, "{}", refused.to_text());
        assert!(refused.incomparable() && refused.verdicts.regressions.is_empty() && refused.verdicts.unchanged == 0);
        let forced = CompareOptions { force: true, ..Default::default() };
        let forced = compare(&report(base()), "base", &new, "new", &forced).unwrap();
        assert_eq!(
            (forced.exit_code(), forced.verdicts.regressions.len()),
            (EXIT_REGRESSION, 1),
            "{}",
            forced.to_text()
        );
        assert!(!forced.incomparable() && !forced.refused.is_empty());
    }

    /// Only one side carries benchmarks: noted, and the verdicts decide.
    #[test]
    fn benchmarks_on_one_side_only_are_noted_not_compared() {
        let mut with = run_report(base());
        with.bench = Some(bench(&[], Vec::new()));
        let c = compare(&Document::Run(Box::new(with)), "base", &report(base()), "new", &CompareOptions::default());
        let c = c.unwrap();
        assert_eq!((c.exit_code(), c.bench.is_none()), (EXIT_OK, true), "{}", c.to_text());
        assert!(c.notes.iter().any(|n| n.contains("only one of the reports carries benchmark results")), "{c:?}");
    }
}
