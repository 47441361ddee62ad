//! The comparison as text (a terminal, a CI log) and as Markdown (a pull-request comment).
//!
//! What this module must never do: decide. What fails the gate, and the verdict line that says so,
//! come from [`super::gate`]; this only lays the comparison out.

use std::fmt::Write;

use super::benchmarks::{BenchDelta, Judgement, OverheadDelta};
use super::gate::{Comparison, EXIT_OK, EXIT_REGRESSION};
use super::verdicts::Change;
use crate::render::escape::{markdown_cell as cell, markdown_code as code};
use crate::render::units;

impl Comparison {
    /// ` (allowed)` after the label of a category an option keeps from failing the comparison.
    fn allowed_mark(allowed: bool) -> &'static str {
        if allowed { " (allowed)" } else { "" }
    }

    /// The comparison for a terminal or a CI log.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "isoprobe compare\n  BASE {}\n  NEW  {}", self.base, self.new);
        if !self.refused.is_empty() {
            let head = if self.forced { "incomparable, compared anyway (--force):" } else { "cannot compare:" };
            let _ = writeln!(o, "{head}");
            for r in &self.refused {
                let _ = writeln!(o, "  - {r}");
            }
            if !self.forced {
                o.push_str("  (--force compares anyway)\n");
            }
        }
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        if !self.incomparable() {
            if self.verdicts.new_empty {
                let _ = writeln!(
                    o,
                    "REGRESSION NEW holds no cases: BASE has {} in {} suites",
                    self.verdicts.missing_suite_cases(),
                    self.verdicts.missing_suites.len()
                );
            }
            for ch in &self.verdicts.regressions {
                let _ = writeln!(o, "REGRESSION {}/{}: {}: {} → {}", ch.suite, ch.case, ch.check, ch.before, ch.after);
            }
            let skips = format!("new skip{}", Self::allowed_mark(self.allow_new_skips));
            let missing = format!("check missing from NEW{}", Self::allowed_mark(self.allow_missing));
            for (label, list) in [
                ("new failure", &self.verdicts.new_failures),
                (skips.as_str(), &self.verdicts.new_skips),
                (missing.as_str(), &self.verdicts.missing_checks),
                ("fixed", &self.verdicts.fixes),
            ] {
                for ch in list {
                    let _ = writeln!(o, "{label} {}/{}: {}: {} → {}", ch.suite, ch.case, ch.check, ch.before, ch.after);
                }
            }
            // An empty NEW fails the comparison with or without --allow-missing.
            let allowed = Self::allowed_mark(self.allow_missing && !self.verdicts.new_empty);
            for (suite, n) in &self.verdicts.missing_suites {
                let _ = writeln!(o, "suite missing from NEW{allowed}: {suite} ({n} cases)");
            }
            for m in &self.verdicts.missing_cases {
                let _ = writeln!(o, "case missing from NEW{allowed}: {m}");
            }
            if !self.verdicts.added.is_empty() {
                let _ = writeln!(o, "new in NEW: {} cases", self.verdicts.added.len());
            }
            let _ = writeln!(o, "verdicts: {}", self.verdict_counts());
            if let Some(b) = &self.bench {
                let basis = match &b.calibrations {
                    None => "nanoseconds".to_owned(),
                    Some(c) => format!("ratios to calibration ({})", c.join(", ")),
                };
                let _ = writeln!(o, "benchmarks by {basis}, threshold ±{:.0}%:", self.threshold * 100.0);
                let mut shown: Vec<&BenchDelta> =
                    b.deltas.iter().filter(|d| d.judgement != Judgement::Unchanged).collect();
                shown.sort_by_key(|d| d.judgement);
                for d in shown {
                    let _ = writeln!(o, "  {}", delta_text(d));
                }
                let _ = writeln!(
                    o,
                    "  {} regressions, {} improvements, {} unchanged, {} inconclusive; {} missing from NEW, {} new",
                    b.count(Judgement::Regression),
                    b.count(Judgement::Improvement),
                    b.count(Judgement::Unchanged),
                    b.count(Judgement::Inconclusive),
                    b.missing.len(),
                    b.added.len()
                );
                let _ = writeln!(o, "harness overhead ({OVERHEAD_WHAT}), threshold ±{:.0}%:", self.threshold * 100.0);
                for d in &b.overhead {
                    let _ = writeln!(o, "  {}", overhead_text(d));
                }
                for why in &b.overhead_not_judged {
                    let _ = writeln!(o, "  not judged: {why}");
                }
            }
        }
        let _ = writeln!(o, "result: {}", self.verdict_line());
        o
    }

    /// Every verdict category with its count, for the summary lines.
    fn verdict_counts(&self) -> String {
        let suites = match self.verdicts.missing_suites.len() {
            0 => "0 suites".to_owned(),
            k => format!("{k} suites ({} cases)", self.verdicts.missing_suite_cases()),
        };
        format!(
            "{} regressions, {} new failures, {} new skips, {} checks missing, {} fixed, {} still failing, \
             {} unchanged; {} cases and {suites} missing from NEW, {} new",
            self.verdicts.regressions.len(),
            self.verdicts.new_failures.len(),
            self.verdicts.new_skips.len(),
            self.verdicts.missing_checks.len(),
            self.verdicts.fixes.len(),
            self.verdicts.still_failing,
            self.verdicts.unchanged,
            self.verdicts.missing_cases.len(),
            self.verdicts.added.len()
        )
    }

    /// The comparison as a pull-request comment.
    pub fn to_markdown(&self) -> String {
        let mut o = String::new();
        let icon = match self.exit_code() {
            EXIT_OK => "✅",
            EXIT_REGRESSION => "❌",
            _ => "⚠️",
        };
        let _ = writeln!(o, "## isoprobe compare {icon} {}\n", self.verdict_line());
        let _ = writeln!(o, "BASE `{}` → NEW `{}`\n", code(&self.base), code(&self.new));
        if !self.refused.is_empty() {
            let _ =
                writeln!(o, "**{}**\n", if self.forced { "Incomparable, compared anyway:" } else { "Cannot compare:" });
            for r in &self.refused {
                let _ = writeln!(o, "- {}", cell(r));
            }
            o.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(o, "- note: {}", cell(n));
        }
        if self.incomparable() {
            return o;
        }
        if self.verdicts.new_empty {
            let _ = writeln!(
                o,
                "\n**NEW holds no cases**: BASE has {} in {} suites.",
                self.verdicts.missing_suite_cases(),
                self.verdicts.missing_suites.len()
            );
        }
        let table = |o: &mut String, title: &str, list: &[Change], allowed: bool| {
            if list.is_empty() {
                return;
            }
            let _ = writeln!(
                o,
                "\n### {title} ({}{})\n\n| case | check | BASE | NEW |\n|---|---|---|---|",
                list.len(),
                if allowed { ", allowed" } else { "" }
            );
            for ch in list {
                let _ = writeln!(
                    o,
                    "| `{}/{}` | `{}` | {} | {} |",
                    code(&ch.suite),
                    code(&ch.case),
                    code(&ch.check),
                    cell(&ch.before),
                    cell(&ch.after)
                );
            }
        };
        table(&mut o, "Regressions", &self.verdicts.regressions, false);
        table(&mut o, "New failures", &self.verdicts.new_failures, false);
        table(&mut o, "New skips", &self.verdicts.new_skips, self.allow_new_skips);
        table(&mut o, "Checks missing from NEW", &self.verdicts.missing_checks, self.allow_missing);
        table(&mut o, "Fixed", &self.verdicts.fixes, false);
        if !self.verdicts.missing_suites.is_empty() || !self.verdicts.missing_cases.is_empty() {
            let _ = writeln!(
                o,
                "\n### Missing from NEW ({} suites, {} cases{})\n",
                self.verdicts.missing_suites.len(),
                self.verdicts.missing_cases.len(),
                if self.allow_missing && !self.verdicts.new_empty { ", allowed" } else { "" }
            );
            for (suite, n) in &self.verdicts.missing_suites {
                let _ = writeln!(o, "- suite `{}` ({n} cases)", code(suite));
            }
            for m in &self.verdicts.missing_cases {
                let _ = writeln!(o, "- `{}`", code(m));
            }
        }
        let _ = writeln!(o, "\nVerdicts: {}.", self.verdict_counts());
        if let Some(b) = &self.bench {
            let _ = writeln!(
                o,
                "\n### Benchmarks (±{:.0}% threshold{})\n\n| benchmark | BASE | NEW | change | interval | judgement |\n|---|--:|--:|--:|--:|---|",
                self.threshold * 100.0,
                match &b.calibrations {
                    None => String::new(),
                    Some(c) => format!(", ratios to {}", c.join(", ")),
                }
            );
            let mut rows: Vec<&BenchDelta> = b.deltas.iter().collect();
            rows.sort_by_key(|d| d.judgement);
            for d in rows {
                let _ = writeln!(
                    o,
                    "| `{}` | {} | {} | {} | {} … {} | {} |",
                    code(&d.name),
                    units::ns(d.base_ns),
                    units::ns(d.new_ns),
                    units::percent(d.ratio),
                    units::percent(d.lo),
                    units::percent(d.hi),
                    judgement_name(d.judgement)
                );
            }
            let _ = writeln!(o, "\n#### Harness overhead ({OVERHEAD_WHAT})\n");
            if !b.overhead.is_empty() {
                o.push_str("| set | BASE | NEW | change | interval | judgement |\n|---|--:|--:|--:|--:|---|\n");
                for d in &b.overhead {
                    let _ = writeln!(
                        o,
                        "| `{}` | {} | {} | {} | {} … {} | {}{} |",
                        code(&d.set),
                        times(d.base),
                        times(d.new),
                        units::percent(d.change),
                        units::percent(d.lo),
                        units::percent(d.hi),
                        judgement_name(d.judgement),
                        if d.spawn_faster { SPAWN_FASTER } else { "" }
                    );
                }
            }
            for why in &b.overhead_not_judged {
                let _ = writeln!(o, "- not judged: {}", cell(why));
            }
        }
        o
    }
}

/// What the harness-overhead lines and table compare.
const OVERHEAD_WHAT: &str = "container/harness_case over container/native_spawn of the same set, within each run";

/// A ratio: `35.2×`.
fn times(r: f64) -> String {
    format!("{}×", units::sig3(r))
}

/// `REGRESSION none: 35.0× → 42.0× (+20.0%, interval +15.3% … +24.9%)`.
fn overhead_text(d: &OverheadDelta) -> String {
    format!(
        "{} {}: {} → {} ({}, interval {} … {}){}",
        judgement_name(d.judgement),
        d.set,
        times(d.base),
        times(d.new),
        units::percent(d.change),
        units::percent(d.lo),
        units::percent(d.hi),
        if d.spawn_faster { SPAWN_FASTER } else { "" }
    )
}

/// Said of an overhead ratio that rose only because the bare spawn got faster.
const SPAWN_FASTER: &str =
    "; the ratio rose with a faster spawn while the harness case itself was no slower: no regression";

fn judgement_name(j: Judgement) -> &'static str {
    match j {
        Judgement::Regression => "REGRESSION",
        Judgement::Improvement => "improvement",
        Judgement::Unchanged => "unchanged",
        Judgement::Inconclusive => "inconclusive",
    }
}

fn delta_text(d: &BenchDelta) -> String {
    let by = d.calibration.as_ref().map(|c| format!(", relative to {c}")).unwrap_or_default();
    format!(
        "{} {}: {} → {} ({}, interval {} … {}{by})",
        judgement_name(d.judgement),
        d.name,
        units::ns(d.base_ns),
        units::ns(d.new_ns),
        units::percent(d.ratio),
        units::percent(d.lo),
        units::percent(d.hi)
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use super::super::{CompareOptions, compare};
    use super::*;
    use crate::load::Document;
    use crate::record::Verdict;
    use crate::testing::{HOSTNAME, base, edited, report, run_report, set};

    #[test]
    fn a_refused_comparison_says_why_and_how_to_force_it() {
        let mut new = run_report(base());
        new.fingerprint.user.euid = 1000;
        let c = compare(&report(base()), "base", &Document::Run(Box::new(new)), "new", &CompareOptions::default());
        let c = c.unwrap();
        let text = c.to_text();
        assert!(text.contains("cannot compare:\n  - BASE ran as euid 0 and NEW as euid 1000"), "{text}");
        assert!(text.contains("  (--force compares anyway)\n") && !text.contains("verdicts:"), "{text}");
        assert!(text.ends_with("result: could not compare (exit 2)\n"), "{text}");
        let md = c.to_markdown();
        assert!(md.starts_with("## isoprobe compare ⚠️ could not compare (exit 2)\n"), "{md}");
        assert!(md.contains("**Cannot compare:**") && !md.contains("Verdicts:"), "{md}");
    }

    /// Text from probes and kernels reaches the table: a pipe must not open a column.
    #[test]
    fn markdown_tables_escape_their_cells() {
        let failing = edited("clone3/host/uts", |c| {
            set(c, HOSTNAME, Verdict::Fail { expected: "a|b".into(), observed: "`x`".into(), evidence: String::new() })
        });
        let md = run(base(), failing, &CompareOptions::default()).to_markdown();
        let row =
            md.lines().find(|l| l.starts_with("| `namespaces/clone3/host/uts` |")).unwrap_or_else(|| panic!("{md}"));
        assert_eq!(row.matches(" | ").count(), 3, "four cells: {row}");
        assert!(row.contains("expected a\\|b, observed \\`x\\`"), "{row}");
        assert!(md.contains("### Regressions (1)\n"), "{md}");
    }

    #[test]
    fn a_benchmark_line_names_its_judgement_change_interval_and_calibration() {
        let d = BenchDelta {
            name: "clone3/net".into(),
            base_ns: 41_000.0,
            new_ns: 55_350.0,
            ratio: 1.35,
            lo: 1.3,
            hi: 1.4,
            judgement: Judgement::Regression,
            calibration: Some("getpid".into()),
            faster: false,
        };
        assert_eq!(
            delta_text(&d),
            "REGRESSION clone3/net: 41.0 µs → 55.4 µs (+35.0%, interval +30.0% … +40.0%, relative to getpid)"
        );
        let o = OverheadDelta {
            set: "none".into(),
            base: 35.0,
            new: 42.0,
            change: 1.2,
            lo: 1.153,
            hi: 1.249,
            judgement: Judgement::Regression,
            spawn_faster: false,
        };
        assert_eq!(overhead_text(&o), "REGRESSION none: 35.0× → 42.0× (+20.0%, interval +15.3% … +24.9%)");
        let o = OverheadDelta { judgement: Judgement::Unchanged, spawn_faster: true, ..o };
        assert_eq!(
            overhead_text(&o),
            "unchanged none: 35.0× → 42.0× (+20.0%, interval +15.3% … +24.9%); the ratio rose with a faster spawn \
             while the harness case itself was no slower: no regression"
        );
        let names = [Judgement::Regression, Judgement::Improvement, Judgement::Unchanged, Judgement::Inconclusive]
            .map(judgement_name);
        assert_eq!(names, ["REGRESSION", "improvement", "unchanged", "inconclusive"]);
    }
}
