//! The verdict diff: every slot of every case of BASE (a check of the container or the joiner,
//! or a limit's enforcement) against the same slot in NEW, sorted into regressions, new failures,
//! new skips, missing slots, cases and suites, fixes, and what stayed.
//!
//! What this module must never do: count a slot that vanished or became a skip as unchanged or
//! fixed. NEW no longer shows whether it still fails, so the gate fails closed on it.

use std::collections::BTreeMap;

use crate::model::{Report, verdict_detail};
use crate::record::{CaseOutcome, Role, Verdict};

/// One verdict that changed between the runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub suite: String,
    pub case: String,
    /// The check, with ` (joiner)` for the joining probe, or `case`, or `join-consistency`, or
    /// (for a case only NEW has) `differences-table`.
    pub check: String,
    pub before: String,
    pub after: String,
}

/// The verdicts of NEW against BASE, by category.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerdictDiff {
    /// Passed in BASE, fails or errors in NEW; ran in BASE, errors in NEW; joiner agreement lost.
    pub regressions: Vec<Change>,
    /// Failing in NEW, but not judged in BASE (skipped there, absent, or the case only NEW has).
    pub new_failures: Vec<Change>,
    pub fixes: Vec<Change>,
    /// Judged in BASE, skipped in NEW.
    pub new_skips: Vec<Change>,
    /// Slots of a case both ran that BASE holds and NEW does not.
    pub missing_checks: Vec<Change>,
    pub still_failing: usize,
    pub unchanged: usize,
    /// `suite/case` in BASE only, except the cases of `missing_suites`.
    pub missing_cases: Vec<String>,
    /// Suites with cases in BASE and none in NEW, with their number of cases in BASE.
    pub missing_suites: Vec<(String, usize)>,
    /// BASE holds cases and NEW none (`missing_suites` then lists all of BASE).
    pub new_empty: bool,
    /// `suite/case` in NEW only that do not fail (those that do are `new_failures`).
    pub added: Vec<String>,
}

impl VerdictDiff {
    /// Cases in the suites missing from NEW.
    pub fn missing_suite_cases(&self) -> usize {
        self.missing_suites.iter().map(|(_, n)| n).sum()
    }
}

/// A verdict slot of a case: (role, check name) → verdict.
fn slots(case: &CaseOutcome) -> BTreeMap<(u8, String), &Verdict> {
    let mut m = BTreeMap::new();
    for r in &case.runs {
        let role = match r.role {
            Role::Container => 0,
            Role::Joiner => 1,
        };
        for c in &r.checks {
            m.insert((role, c.check.name().to_owned()), &c.verdict);
        }
        // A limit's enforcement is a verdict like any check's: `limit/memory/oom-at-max`.
        for l in &r.limits {
            m.insert((role, format!("limit/{}", l.check.name())), &l.verdict);
        }
    }
    m
}

fn slot_name((role, check): &(u8, String)) -> String {
    if *role == 1 { format!("{check} (joiner)") } else { check.clone() }
}

fn short(v: &Verdict) -> String {
    format!("{}: {}", v.label(), verdict_detail(v))
}

fn index(r: &Report) -> BTreeMap<(String, String), &CaseOutcome> {
    r.cases().map(|(s, c)| ((s.name.clone(), c.name.clone()), c)).collect()
}

/// Cases per suite name, in the order the suites first appear.
fn case_counts(r: &Report) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in &r.suites {
        match out.iter_mut().find(|(name, _)| *name == s.name) {
            Some((_, n)) => *n += s.cases.len(),
            None => out.push((s.name.clone(), s.cases.len())),
        }
    }
    out
}

/// Compares the verdicts of every case of BASE with NEW (see the module docs of
/// [`crate::compare`] for which categories fail the gate).
pub(super) fn diff(base: &Report, new: &Report) -> VerdictDiff {
    let mut c = VerdictDiff::default();
    let (base_index, new_index) = (index(base), index(new));
    let new_counts = case_counts(new);
    let in_new = |suite: &str| new_counts.iter().any(|(name, n)| name == suite && *n > 0);
    // A suite NEW lacks is one entry with its size, not a list of every case it held.
    c.missing_suites = case_counts(base).into_iter().filter(|(name, n)| *n > 0 && !in_new(name)).collect();
    c.new_empty = new_index.is_empty() && !base_index.is_empty();
    for (suite, b) in base.cases() {
        let Some(&n) = new_index.get(&(suite.name.clone(), b.name.clone())) else {
            if in_new(&suite.name) {
                c.missing_cases.push(format!("{}/{}", suite.name, b.name));
            }
            continue;
        };
        let change = |check: &str, before: String, after: String| Change {
            suite: suite.name.clone(),
            case: b.name.clone(),
            check: check.to_owned(),
            before,
            after,
        };
        let ran = |x: &CaseOutcome| x.error.is_none() && x.skipped.is_none();
        let skip_text = |x: &CaseOutcome| {
            x.skipped.as_ref().map(|s| format!("skipped: {}: {}", s.requirement, s.reason)).unwrap_or_default()
        };
        match (ran(b), ran(n)) {
            (true, false) => {
                if let Some(e) = &n.error {
                    c.regressions.push(change("case", "ran".into(), format!("error: {e}")));
                } else {
                    c.new_skips.push(change("case", "ran".into(), skip_text(n)));
                }
                continue;
            }
            (false, true) => {
                if let Some(e) = &b.error {
                    c.fixes.push(change("case", format!("error: {e}"), "ran".into()));
                }
                // A case skipped in BASE: its checks are compared below as "not judged before".
            }
            (false, false) => {
                match (&b.error, &n.error) {
                    (Some(_), Some(_)) => c.still_failing += 1,
                    (None, Some(e)) => c.new_failures.push(change("case", skip_text(b), format!("error: {e}"))),
                    // An error in BASE at least showed the case could not be carried out; a skip
                    // in NEW no longer shows whether it still cannot.
                    (Some(e), None) => c.new_skips.push(change("case", format!("error: {e}"), skip_text(n))),
                    (None, None) => c.unchanged += 1,
                }
                continue;
            }
            (true, true) => {}
        }
        let (bs, ns) = (slots(b), slots(n));
        for (slot, nv) in &ns {
            let name = slot_name(slot);
            let Some(bv) = bs.get(slot) else {
                if nv.is_failure() {
                    c.new_failures.push(change(&name, "not judged".into(), short(nv)));
                }
                continue;
            };
            let list = match (bv.is_pass(), bv.is_failure(), nv.is_pass(), nv.is_failure(), nv.is_skip()) {
                (true, _, _, true, _) => &mut c.regressions,
                (false, false, _, true, _) => &mut c.new_failures,
                // A failure that becomes a skip is not fixed: NEW no longer shows whether it fails.
                (_, true, _, _, true) | (true, _, _, _, true) => &mut c.new_skips,
                (_, true, true, _, _) => &mut c.fixes,
                (_, true, _, true, _) => {
                    c.still_failing += 1;
                    continue;
                }
                _ => {
                    c.unchanged += 1;
                    continue;
                }
            };
            list.push(change(&name, short(bv), short(nv)));
        }
        for slot in bs.keys().filter(|s| !ns.contains_key(*s)) {
            c.missing_checks.push(change(&slot_name(slot), short(bs[slot]), "not in NEW".into()));
        }
        match (b.join_mismatches.is_empty(), n.join_mismatches.is_empty()) {
            (true, false) => {
                c.regressions.push(change("join-consistency", "agreed".into(), n.join_mismatches.join("; ")))
            }
            (false, true) => c.fixes.push(change("join-consistency", b.join_mismatches.join("; "), "agreed".into())),
            _ => {}
        }
    }
    for (suite, n) in new.cases() {
        if base_index.contains_key(&(suite.name.clone(), n.name.clone())) {
            continue;
        }
        // Nothing in BASE to judge it against, so what NEW judges about it stands on its own.
        let failures = new.case_failures(suite, n);
        if failures.is_empty() {
            c.added.push(format!("{}/{}", suite.name, n.name));
        }
        for f in failures {
            c.new_failures.push(Change {
                check: format!("{}{}", f.check, f.role_suffix()),
                before: "case not in BASE".into(),
                after: format!("{}: {}", f.label, f.detail),
                suite: f.suite,
                case: f.case,
            });
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::testing::{allow_new_skips, fails, run};
    use super::super::{CompareOptions, EXIT_OK};
    use crate::record::{CaseOutcome, LimitCheck, LimitResult, ProbeRun, Role};
    use crate::testing::{HOSTNAME, SIGNAL, base, case, edited, fail, pass, set, skip, skipped};

    #[test]
    fn identical_reports_exit_0() {
        // A failing check, an error and a skip, the same on both sides: nothing changed.
        let mut suites = edited("clone3/host/pid", |c| set(c, SIGNAL, fail()));
        suites[1].cases.push(skipped("clone3/hugetlb"));
        suites[1].cases.push(CaseOutcome { error: Some("timeout".into()), ..case("clone3/freezer", &[]) });
        let c = run(suites.clone(), suites, &CompareOptions::default());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        assert_eq!((c.verdicts.still_failing, c.verdicts.unchanged), (2, 5), "{}", c.to_text());
        assert!(c.to_text().ends_with("result: no regression (exit 0)\n"), "{}", c.to_text());
    }

    #[test]
    fn pass_to_skip_is_a_regression() {
        let new = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        let c = fails(base(), new, "new skip namespaces/clone3/host/uts: uts/hostname: pass: ");
        assert!(c.to_text().contains("result: REGRESSION: 1 new skips (exit 1)"), "{}", c.to_text());
        // A case that ran and is skipped as a whole in NEW.
        let new = edited("clone3/host/pid", |c| *c = skipped("clone3/host/pid"));
        fails(base(), new, "new skip namespaces/clone3/host/pid: case: ran → skipped: root: needs root");
    }

    #[test]
    fn a_missing_case_is_a_regression() {
        let mut new = base();
        new[0].cases.retain(|c| c.name != "clone3/host/pid");
        let c = fails(base(), new, "case missing from NEW: namespaces/clone3/host/pid");
        assert!(c.to_text().contains("REGRESSION: 1 cases missing from NEW (exit 1)"), "{}", c.to_text());
        assert!(c.to_markdown().contains("- `namespaces/clone3/host/pid`"), "{}", c.to_markdown());
    }

    #[test]
    fn a_missing_suite_is_reported_once_with_its_case_count() {
        let mut new = base();
        new.retain(|s| s.name != "limits");
        let c = fails(base(), new, "suite missing from NEW: limits (2 cases)");
        assert!(
            c.verdicts.missing_cases.is_empty(),
            "its cases are not listed one by one: {:?}",
            c.verdicts.missing_cases
        );
        assert!(c.to_text().contains("REGRESSION: 1 suites missing from NEW (2 cases) (exit 1)"), "{}", c.to_text());
        assert!(c.to_markdown().contains("- suite `limits` (2 cases)"), "{}", c.to_markdown());
    }

    #[test]
    fn skip_to_fail_is_a_regression() {
        let skipping = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        let failing = edited("clone3/host/uts", |c| set(c, HOSTNAME, fail()));
        fails(
            skipping,
            failing.clone(),
            "new failure namespaces/clone3/host/uts: uts/hostname: skip: root: needs root → fail: ",
        );
        // A check BASE did not judge at all, failing in NEW.
        let absent = edited("clone3/host/uts", |c| c.runs[0].checks.retain(|r| r.check != HOSTNAME));
        fails(absent, failing, "new failure namespaces/clone3/host/uts: uts/hostname: not judged → fail: ");
        // A case skipped in BASE that errors in NEW.
        let new = edited("clone3/host/pid", |c| c.error = Some("clone3: ENOSPC".into()));
        let old = edited("clone3/host/pid", |c| *c = skipped("clone3/host/pid"));
        let c = fails(
            old,
            new,
            "new failure namespaces/clone3/host/pid: case: skipped: root: needs root → error: clone3: ENOSPC",
        );
        assert!(c.to_text().contains("REGRESSION: 1 new failures (exit 1)"), "{}", c.to_text());
    }

    #[test]
    fn a_failing_case_only_in_new_is_a_regression_and_a_passing_one_is_added() {
        let mut new = base();
        new[1].cases.push(case("clone3/cpu", &[(SIGNAL, fail())]));
        new[1].cases.push(CaseOutcome { error: Some("probe killed after 30 s".into()), ..case("clone3/io", &[]) });
        new[1].cases.push(case("clone3/cpuset", &[(SIGNAL, pass())]));
        let c = fails(base(), new, "new failure limits/clone3/cpu: pid/signal-host-process: case not in BASE → fail: ");
        assert!(c.to_text().contains("new failure limits/clone3/io: case: case not in BASE → error: probe killed"));
        assert_eq!(c.verdicts.added, ["limits/clone3/cpuset"]);
        let mut new = base();
        new[1].cases.push(case("clone3/cpuset", &[(SIGNAL, pass())]));
        let c = run(base(), new, &CompareOptions::default());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        assert!(c.to_text().contains("new in NEW: 1 cases"), "{}", c.to_text());
    }

    #[test]
    fn a_check_missing_from_new_is_a_regression() {
        let new = edited("clone3/host/uts", |c| c.runs[0].checks.retain(|r| r.check != SIGNAL));
        let c =
            fails(base(), new, "check missing from NEW namespaces/clone3/host/uts: pid/signal-host-process: pass: ");
        assert!(c.to_text().contains("REGRESSION: 1 checks missing from NEW (exit 1)"), "{}", c.to_text());
        // A limit's enforcement and a joiner's checks are slots like any other.
        let with = |limit: bool, joiner: bool| {
            edited("clone3/host/uts", |c| {
                if limit {
                    c.runs[0].limits.push(LimitResult { check: LimitCheck::Memory, verdict: pass() });
                }
                if joiner {
                    c.runs.push(ProbeRun { role: Role::Joiner, ..c.runs[0].clone() });
                }
            })
        };
        fails(
            with(true, false),
            with(false, false),
            "check missing from NEW namespaces/clone3/host/uts: limit/memory/oom-at-max",
        );
        fails(
            with(false, true),
            with(false, false),
            "check missing from NEW namespaces/clone3/host/uts: uts/hostname (joiner)",
        );
    }

    #[test]
    fn a_failure_that_becomes_a_skip_is_a_new_skip_not_unchanged() {
        let failing = edited("clone3/host/uts", |c| set(c, HOSTNAME, fail()));
        let skipping = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        fails(failing.clone(), skipping.clone(), "new skip namespaces/clone3/host/uts: uts/hostname: fail: ");
        assert_eq!(run(failing, skipping, &allow_new_skips()).exit_code(), EXIT_OK);
    }

    /// A joiner that starts to disagree with its container is a regression, and one that agrees
    /// again a fix; so is a case that errored in BASE and runs in NEW.
    #[test]
    fn joiner_agreement_and_case_errors_move_both_ways() {
        let disagreeing = edited("clone3/host/uts", |c| c.join_mismatches.push("uts/hostname: differs".into()));
        let c =
            fails(base(), disagreeing.clone(), "REGRESSION namespaces/clone3/host/uts: join-consistency: agreed → ");
        assert_eq!(c.verdicts.regressions.len(), 1, "{}", c.to_text());
        let c = run(disagreeing, base(), &CompareOptions::default());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        assert!(c.to_text().contains("fixed namespaces/clone3/host/uts: join-consistency: "), "{}", c.to_text());

        let erroring = edited("clone3/host/pid", |c| c.error = Some("timeout".into()));
        let c = run(erroring.clone(), base(), &CompareOptions::default());
        assert_eq!((c.exit_code(), c.verdicts.fixes.len()), (EXIT_OK, 1), "{}", c.to_text());
        fails(base(), erroring, "REGRESSION namespaces/clone3/host/pid: case: ran → error: timeout");
    }
}
