//! The run report: one JSON document per `isoprobe run`, with a schema version, the environment
//! fingerprint, and every case's outcome as the harness produced it, in the report's own records
//! ([`crate::record`]).
//!
//! Cases are grouped in suites (`namespaces` and `limits` by default; a `--launcher` run has
//! `launchers` and `launcher-limits`, whose cases carry an assessment against the tool's expected
//! differences, and the report then carries a header per launcher and the start latencies, see
//! [`crate::record::launcher`] and [`crate::conformance`]). Counts and statuses are derived here, never stored, so a report
//! cannot contradict itself.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use isoprobe_harness::launcher::defect::DefectTally;
use isoprobe_harness::launcher::defect::tally;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bench::BenchSummary;
use crate::record::{
    CaseAssessment, CaseOutcome, CheckId, CheckResult, ExplainedDifference, Fingerprint, LauncherHeader, Role,
    StartLatency, Verdict,
};

/// The version of the report format this build writes and reads. Version 2 added the launcher
/// conformance part (`launchers`, `start_latency`, each suite's `assessments`); all of it is
/// optional, so version 1 reports are still read ([`OLDEST_READ_SCHEMA_VERSION`]).
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest report format this build reads.
pub const OLDEST_READ_SCHEMA_VERSION: u32 = 1;

/// The `kind` of a run report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReportKind {
    #[serde(rename = "isoprobe-report")]
    Report,
}

/// Everything one `isoprobe run` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub kind: ReportKind,
    /// The isoprobe version that wrote the report.
    pub isoprobe_version: String,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// Wall time of the whole run, in milliseconds.
    pub duration_ms: f64,
    /// The command line of the run.
    pub command: Vec<String>,
    /// Requirements the machine was declared to meet (`ISOPROBE_EXPECT`): a case skipped for one
    /// of them counts as failed.
    #[serde(default)]
    pub expect: Vec<String>,
    pub fingerprint: Fingerprint,
    pub suites: Vec<Suite>,
    /// The launchers of a `--launcher` run, in the order of the run: tool, version or why it is
    /// unavailable, and capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launchers: Vec<LauncherHeader>,
    /// Start latency per launcher, measured once after the cases of a `--launcher` run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_latency: Option<StartLatency>,
    /// Benchmark results, when a summary was attached to the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<BenchSummary>,
}

/// A named list of cases (the namespace matrix, a limit suite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<CaseOutcome>,
    /// For cases run through a launcher of the conformance table, by case name: the case judged
    /// against the launcher's documented defaults and expected differences.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assessments: BTreeMap<String, CaseAssessment>,
}

impl Suite {
    /// A suite of cases without assessments.
    pub fn new(name: impl Into<String>, cases: Vec<CaseOutcome>) -> Suite {
        Suite { name: name.into(), cases, assessments: BTreeMap::new() }
    }
}

/// How a case ended, all its checks taken together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaseStatus {
    Pass,
    /// A check failed or could not be observed, the joiner disagreed with the container, or the
    /// case was skipped for a requirement the machine was declared to meet.
    Fail,
    /// Skipped before launch: a requirement was not met.
    Skip,
    /// The case could not be carried out (launch failed, protocol broken, timeout).
    Error,
    /// Checks failed, and every failure is a documented property of the launcher's tool (a row
    /// of the expected-differences table): counted apart, never as a pass.
    Explained,
}

impl CaseStatus {
    pub fn label(self) -> &'static str {
        match self {
            CaseStatus::Pass => "pass",
            CaseStatus::Fail => "fail",
            CaseStatus::Skip => "skip",
            CaseStatus::Error => "error",
            CaseStatus::Explained => "explained",
        }
    }
}

/// Cases by status and check verdicts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub cases: usize,
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    /// Cases whose failures are all explained differences.
    pub explained: usize,
    pub checks: CheckCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    pub pass: usize,
    /// Failed checks that no expected difference explains.
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    /// Failed checks that an expected difference explains.
    pub explained: usize,
}

impl Counts {
    /// Counts `case`, whose status is `status`; `assessment` tells which failed checks are
    /// explained differences.
    pub fn add(&mut self, status: CaseStatus, case: &CaseOutcome, assessment: Option<&CaseAssessment>) {
        self.cases += 1;
        match status {
            CaseStatus::Pass => self.pass += 1,
            CaseStatus::Fail => self.fail += 1,
            CaseStatus::Skip => self.skip += 1,
            CaseStatus::Error => self.error += 1,
            CaseStatus::Explained => self.explained += 1,
        }
        for run in &case.runs {
            for c in &run.checks {
                let explained = assessment.is_some_and(|a| a.explanation(run.role, c.check).is_some());
                match c.verdict {
                    Verdict::Pass { .. } => self.checks.pass += 1,
                    Verdict::Fail { .. } | Verdict::Error { .. } if explained => self.checks.explained += 1,
                    Verdict::Fail { .. } => self.checks.fail += 1,
                    Verdict::Skip { .. } => self.checks.skip += 1,
                    Verdict::Error { .. } => self.checks.error += 1,
                }
            }
        }
    }

    /// `680 passed, 2 failed, 2 skipped` (explained differences and errors only when there are
    /// some).
    pub fn sentence(&self) -> String {
        let mut s = format!("{} passed, {} failed, {} skipped", self.pass, self.fail, self.skip);
        if self.explained > 0 {
            s.push_str(&format!(", {} with explained differences", self.explained));
        }
        if self.error > 0 {
            s.push_str(&format!(", {} errors", self.error));
        }
        s
    }
}

/// The cases of one suite that share a launcher and a rootfs mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub suite: String,
    pub launcher: String,
    pub rootfs: String,
    pub counts: Counts,
    /// Sum of the cases' durations.
    pub duration: Duration,
}

impl Report {
    /// An empty report of a run starting now on the machine `fingerprint` describes.
    pub fn new(fingerprint: Fingerprint, started: SystemTime, command: Vec<String>, expect: Vec<String>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            kind: ReportKind::Report,
            isoprobe_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: crate::time::rfc3339_utc(started),
            duration_ms: 0.0,
            command,
            expect,
            fingerprint,
            suites: Vec::new(),
            launchers: Vec::new(),
            start_latency: None,
            bench: None,
        }
    }

    /// The assessment of `case` of `suite`, when it was run through a launcher of the
    /// conformance table.
    pub fn assessment<'a>(&self, suite: &'a Suite, case: &CaseOutcome) -> Option<&'a CaseAssessment> {
        suite.assessments.get(&case.name)
    }

    /// Every case with its suite.
    pub fn cases(&self) -> impl Iterator<Item = (&Suite, &CaseOutcome)> {
        self.suites.iter().flat_map(|s| s.cases.iter().map(move |c| (s, c)))
    }

    /// Whether a skipped case was skipped for a requirement the machine was declared to meet.
    pub fn skip_was_expected_to_run(&self, case: &CaseOutcome) -> bool {
        case.skipped.as_ref().is_some_and(|s| self.expect.contains(&s.requirement))
    }

    /// The checks of `case` (namespace checks and limit checks) skipped for a requirement the
    /// machine was declared to meet: (role, check, requirement, reason).
    pub fn expected_check_skips<'a>(&self, case: &'a CaseOutcome) -> Vec<(Role, String, &'a str, &'a str)> {
        let mut out = Vec::new();
        // Named only when kept: a report's counts ask this of every case, and nearly every
        // verdict is no such skip.
        let expected = |v: &'a Verdict| match v {
            Verdict::Skip { requirement, reason } if self.expect.contains(requirement) => {
                Some((requirement.as_str(), reason.as_str()))
            }
            _ => None,
        };
        for run in &case.runs {
            for c in &run.checks {
                if let Some((requirement, reason)) = expected(&c.verdict) {
                    out.push((run.role, c.check.name().to_owned(), requirement, reason));
                }
            }
            for l in &run.limits {
                if let Some((requirement, reason)) = expected(&l.verdict) {
                    out.push((run.role, l.check.to_string(), requirement, reason));
                }
            }
        }
        out
    }

    /// How `case` of `suite` ended. A case with an assessment passes only when its checks passed
    /// and no row of the differences table is stale; it is [`CaseStatus::Explained`] when every
    /// failure is an explained difference, and fails otherwise.
    pub fn status(&self, suite: &Suite, case: &CaseOutcome) -> CaseStatus {
        if case.error.is_some() {
            CaseStatus::Error
        } else if case.skipped.is_some() {
            if self.skip_was_expected_to_run(case) { CaseStatus::Fail } else { CaseStatus::Skip }
        } else if !self.expected_check_skips(case).is_empty() {
            CaseStatus::Fail
        } else {
            match self.assessment(suite, case) {
                None if case.passed() => CaseStatus::Pass,
                None => CaseStatus::Fail,
                Some(a) if !a.conforms() => CaseStatus::Fail,
                Some(a) if case.passed() && a.explained.is_empty() => CaseStatus::Pass,
                Some(a) if !a.explained.is_empty() && a.explains_all_of(case) => CaseStatus::Explained,
                Some(_) => CaseStatus::Fail,
            }
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (suite, case) in self.cases() {
            c.add(self.status(suite, case), case, self.assessment(suite, case));
        }
        c
    }

    /// True when no case failed or errored (explained differences are not failures).
    pub fn passed(&self) -> bool {
        let c = self.counts();
        c.fail == 0 && c.error == 0
    }

    /// Counts per suite, launcher and rootfs mode, in the order the groups first appear.
    pub fn groups(&self) -> Vec<Group> {
        let mut out: Vec<Group> = Vec::new();
        for (suite, case) in self.cases() {
            let (launcher, rootfs) = (case.spec.launcher.name(), case.spec.rootfs.name());
            let i = match out.iter().position(|g| g.suite == suite.name && g.launcher == launcher && g.rootfs == rootfs)
            {
                Some(i) => i,
                None => {
                    out.push(Group {
                        suite: suite.name.clone(),
                        launcher: launcher.to_owned(),
                        rootfs: rootfs.to_owned(),
                        counts: Counts::default(),
                        duration: Duration::ZERO,
                    });
                    out.len() - 1
                }
            };
            out[i].counts.add(self.status(suite, case), case, self.assessment(suite, case));
            out[i].duration += case.duration;
        }
        out
    }

    /// Every check that appears in the report, in report order ([`CheckId::all`]).
    pub fn checks(&self) -> Vec<CheckId> {
        let seen: std::collections::BTreeSet<CheckId> =
            self.cases().flat_map(|(_, c)| c.verdicts().map(|r| r.check)).collect();
        CheckId::all().into_iter().filter(|c| seen.contains(c)).collect()
    }

    /// Every explained difference, with its suite and case, in report order.
    pub fn explained_differences(&self) -> Vec<(&Suite, &CaseOutcome, &ExplainedDifference)> {
        self.cases()
            .filter(|(s, c)| self.status(s, c) == CaseStatus::Explained)
            .flat_map(|(s, c)| {
                self.assessment(s, c).into_iter().flat_map(move |a| a.explained.iter().map(move |e| (s, c, e)))
            })
            .collect()
    }

    /// Skipped cases by requirement and reason, with how many cases each skip covers.
    pub fn skip_reasons(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for (_, case) in self.cases() {
            if let Some(s) = &case.skipped {
                *out.entry((s.requirement.clone(), s.reason.clone())).or_insert(0) += 1;
            }
        }
        out
    }

    /// The known tool defects this run's starts hit, by defect (see [`DefectTally`]).
    pub fn defect_hits(&self) -> Vec<DefectTally> {
        tally(self.cases().flat_map(|(_, c)| c.defects.iter().map(|h| (c.name.as_str(), h.defect.as_str()))))
    }
}

/// What a check of a case amounts to over all its probe runs: the worst verdict (fail, then
/// error, then skip, then pass), with the role that saw it.
pub fn worst_verdict(case: &CaseOutcome, check: CheckId) -> Option<(Role, &Verdict)> {
    let rank = |v: &Verdict| match v {
        Verdict::Fail { .. } => 0,
        Verdict::Error { .. } => 1,
        Verdict::Skip { .. } => 2,
        Verdict::Pass { .. } => 3,
    };
    case.runs
        .iter()
        .flat_map(|r| r.checks.iter().filter(|c| c.check == check).map(move |c| (r.role, &c.verdict)))
        .min_by_key(|(_, v)| rank(v))
}

/// The name of a role as reports print it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Container => "container",
        Role::Joiner => "joiner",
    }
}

/// One line on a verdict: `expected X, observed Y (evidence)`, the skip's reason, or the error.
pub fn verdict_detail(v: &Verdict) -> String {
    match v {
        Verdict::Pass { expected, observed, evidence } | Verdict::Fail { expected, observed, evidence } => {
            if evidence.is_empty() {
                format!("expected {expected}, observed {observed}")
            } else {
                format!("expected {expected}, observed {observed} ({evidence})")
            }
        }
        Verdict::Skip { requirement, reason } => format!("{requirement}: {reason}"),
        Verdict::Error { cause } => cause.clone(),
    }
}

/// A failing part of a case, for failure lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub suite: String,
    pub case: String,
    /// The check (`pid/ns-inode`), `case` for a case-level error or an expected skip, or
    /// `join-consistency`.
    pub check: String,
    pub role: Option<Role>,
    pub label: &'static str,
    pub detail: String,
}

impl Failure {
    /// ` (joiner)` when the joining probe saw it, else nothing.
    pub fn role_suffix(&self) -> &'static str {
        match self.role {
            Some(Role::Joiner) => " (joiner)",
            _ => "",
        }
    }
}

impl Report {
    /// Every failure of every case, in report order. Failed checks that an expected difference
    /// explains are not failures (see [`Report::explained_differences`]); a stale row of the
    /// differences table is one (check `differences-table`).
    pub fn failures(&self) -> Vec<Failure> {
        self.cases().flat_map(|(suite, case)| self.case_failures(suite, case)).collect()
    }

    /// The failures of one case of `suite`, as [`Report::failures`] lists them.
    pub fn case_failures(&self, suite: &Suite, case: &CaseOutcome) -> Vec<Failure> {
        let mut out = Vec::new();
        let f = |check: String, role, label, detail| Failure {
            suite: suite.name.clone(),
            case: case.name.clone(),
            check,
            role,
            label,
            detail,
        };
        if let Some(e) = &case.error {
            out.push(f("case".into(), None, "error", e.clone()));
        }
        if self.skip_was_expected_to_run(case)
            && let Some(s) = &case.skipped
        {
            let detail = format!("skipped, but ISOPROBE_EXPECT declares `{}`: {}", s.requirement, s.reason);
            out.push(f("case".into(), None, "fail", detail));
        }
        for (role, check, requirement, reason) in self.expected_check_skips(case) {
            let detail = format!("skipped, but ISOPROBE_EXPECT declares `{requirement}`: {reason}");
            out.push(f(check, Some(role), "fail", detail));
        }
        let assessment = self.assessment(suite, case);
        let explained = |role, check| assessment.is_some_and(|a| a.explanation(role, check).is_some());
        for run in &case.runs {
            for CheckResult { check, verdict } in &run.checks {
                if verdict.is_failure() && !explained(run.role, *check) {
                    out.push(f(check.name().to_owned(), Some(run.role), verdict.label(), verdict_detail(verdict)));
                }
            }
            for l in run.limits.iter().filter(|l| l.verdict.is_failure()) {
                out.push(f(l.check.to_string(), Some(run.role), l.verdict.label(), verdict_detail(&l.verdict)));
            }
        }
        for m in &case.join_mismatches {
            let by_explained =
                assessment.is_some_and(|a| a.explained.iter().any(|e| m.starts_with(&format!("{}:", e.check))));
            if !by_explained {
                out.push(f("join-consistency".into(), Some(Role::Joiner), "fail", m.clone()));
            }
        }
        for stale in assessment.map(|a| a.stale.as_slice()).unwrap_or_default() {
            out.push(f("differences-table".into(), None, "stale", stale.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::strategy::{self, assert_round_trip};
    use crate::testing::{HOSTNAME, SIGNAL, case, fingerprint, pass, skip};

    /// Starts that failed on a known defect are counted per defect, with what the harness knows
    /// of it, and shown by the Markdown, HTML and terminal summaries; a run without any shows none.
    #[test]
    fn known_defect_hits_are_counted_and_shown() {
        use crate::record::DefectHit;
        let hit =
            |attempt| DefectHit { defect: "lxc/lxc#4670".into(), attempt, error: "free(): invalid pointer".into() };
        let twice = CaseOutcome { defects: vec![hit(1), hit(2)], ..case("lxc/host/mnt+user", &[]) };
        let once = CaseOutcome { defects: vec![hit(1)], ..case("lxc/host/pid+mnt+user", &[]) };
        let r =
            crate::testing::run_report(vec![Suite::new("launchers", vec![twice, once, case("clone3/host/pid", &[])])]);
        let hits = r.defect_hits();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(
            (hits[0].starts, hits[0].cases.as_slice()),
            (3, &["lxc/host/mnt+user".to_owned(), "lxc/host/pid+mnt+user".to_owned()][..])
        );
        assert!(
            hits[0].summary.contains("free(): invalid pointer") && hits[0].fixed.contains("lxc/lxc#4685"),
            "{hits:?}"
        );
        let line = hits[0].line();
        assert!(
            line.starts_with("lxc/lxc#4670: 3 failed starts made again (lxc/host/mnt+user, lxc/host/pid+mnt+user): "),
            "{line}"
        );
        assert!(crate::render::markdown::render(Some(&r), None).contains("### Known tool defects hit"));
        assert!(crate::render::html::render(Some(&r), None).contains("<section id=\"defects\">"));
        assert_eq!(crate::render::text::defect_lines(&r), format!("known tool defect {line}\n"));
        let none = crate::testing::run_report(vec![Suite::new("launchers", vec![case("clone3/host/pid", &[])])]);
        assert!(none.defect_hits().is_empty() && crate::render::text::defect_lines(&none).is_empty());
        assert!(!crate::render::markdown::render(Some(&none), None).contains("Known tool defects"));
        let unknown = CaseOutcome { defects: vec![DefectHit { defect: "x#1".into(), ..hit(1) }], ..case("c", &[]) };
        let r = crate::testing::run_report(vec![Suite::new("s", vec![unknown])]);
        assert_eq!(r.defect_hits()[0].summary, "not a defect this isoprobe knows");
    }

    proptest! {
        // A report holds every other record; fewer, larger cases.
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn a_report_round_trips(r in strategy::report()) {
            assert_round_trip(&r)?;
        }

        #[test]
        fn a_suite_round_trips(s in strategy::suite()) {
            assert_round_trip(&s)?;
        }
    }

    /// A check skipped for a requirement the run declared in ISOPROBE_EXPECT fails the run
    /// (`Report::status`, `failures`), as a skipped case does; a skip for another requirement does
    /// not.
    #[test]
    fn a_check_skipped_for_a_declared_requirement_fails_the_run() {
        let mut r = Report::new(fingerprint(), SystemTime::UNIX_EPOCH, vec!["isoprobe".into()], vec!["root".into()]);
        r.suites =
            vec![Suite::new("namespaces", vec![case("clone3/host/uts", &[(HOSTNAME, pass()), (SIGNAL, skip())])])];
        assert!(!r.passed());
        let f = r.failures();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].check == SIGNAL.name() && f[0].detail.contains("ISOPROBE_EXPECT declares `root`"), "{f:?}");
        r.expect = vec!["userns".into()];
        assert!(r.passed() && r.failures().is_empty());
    }

    /// Version 1 reports have no launcher part: a report without one writes none of its keys,
    /// so that it reads as it did.
    #[test]
    fn a_report_without_launchers_writes_no_launcher_keys() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let fingerprint = strategy::fingerprint().new_tree(&mut runner).unwrap().current();
        let mut r = Report::new(fingerprint, SystemTime::UNIX_EPOCH, vec!["isoprobe".into()], Vec::new());
        r.suites.push(Suite::new("namespaces", Vec::new()));
        let json = serde_json::to_value(&r).unwrap();
        for key in ["launchers", "start_latency", "bench"] {
            assert!(json.get(key).is_none(), "{key} in {json}");
        }
        assert!(json["suites"][0].get("assessments").is_none(), "{json}");
        assert_eq!((json["kind"].as_str(), json["schema_version"].as_u64()), (Some("isoprobe-report"), Some(2)));
    }
}
