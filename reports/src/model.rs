//! The run report: one JSON document per `isoprobe run`, with a schema version, the environment
//! fingerprint, and every case's outcome as the harness produced it.
//!
//! Cases are grouped in suites (today `namespaces`; the limit suites and external launchers add
//! theirs). Counts and statuses are derived here, never stored, so a report cannot contradict
//! itself.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use isoprobe_harness::CheckId;
use isoprobe_harness::fingerprint::Fingerprint;
use isoprobe_harness::verdict::{CaseOutcome, CheckResult, Role, Verdict};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bench::BenchSummary;

/// The version of the report and benchmark-summary formats this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

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
    /// Benchmark results, when a summary was attached to the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<BenchSummary>,
}

/// A named list of cases (the namespace matrix, a limit suite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<CaseOutcome>,
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
}

impl CaseStatus {
    pub fn label(self) -> &'static str {
        match self {
            CaseStatus::Pass => "pass",
            CaseStatus::Fail => "fail",
            CaseStatus::Skip => "skip",
            CaseStatus::Error => "error",
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
    pub checks: CheckCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Counts {
    pub fn add(&mut self, status: CaseStatus, case: &CaseOutcome) {
        self.cases += 1;
        match status {
            CaseStatus::Pass => self.pass += 1,
            CaseStatus::Fail => self.fail += 1,
            CaseStatus::Skip => self.skip += 1,
            CaseStatus::Error => self.error += 1,
        }
        for c in case.verdicts() {
            match c.verdict {
                Verdict::Pass { .. } => self.checks.pass += 1,
                Verdict::Fail { .. } => self.checks.fail += 1,
                Verdict::Skip { .. } => self.checks.skip += 1,
                Verdict::Error { .. } => self.checks.error += 1,
            }
        }
    }

    /// `680 passed, 2 failed, 2 skipped` (errors only when there are some).
    pub fn sentence(&self) -> String {
        let mut s = format!("{} passed, {} failed, {} skipped", self.pass, self.fail, self.skip);
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
            bench: None,
        }
    }

    /// Every case with its suite.
    pub fn cases(&self) -> impl Iterator<Item = (&Suite, &CaseOutcome)> {
        self.suites.iter().flat_map(|s| s.cases.iter().map(move |c| (s, c)))
    }

    /// Whether a skipped case was skipped for a requirement the machine was declared to meet.
    pub fn skip_was_expected_to_run(&self, case: &CaseOutcome) -> bool {
        case.skipped.as_ref().is_some_and(|s| self.expect.contains(&s.requirement))
    }

    pub fn status(&self, case: &CaseOutcome) -> CaseStatus {
        if case.error.is_some() {
            CaseStatus::Error
        } else if case.skipped.is_some() {
            if self.skip_was_expected_to_run(case) { CaseStatus::Fail } else { CaseStatus::Skip }
        } else if case.passed() {
            CaseStatus::Pass
        } else {
            CaseStatus::Fail
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (_, case) in self.cases() {
            c.add(self.status(case), case);
        }
        c
    }

    /// True when no case failed or errored.
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
            out[i].counts.add(self.status(case), case);
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
    /// Every failure of every case, in report order.
    pub fn failures(&self) -> Vec<Failure> {
        let mut out = Vec::new();
        for (suite, case) in self.cases() {
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
            for run in &case.runs {
                for CheckResult { check, verdict } in &run.checks {
                    if verdict.is_failure() {
                        out.push(f(check.name(), Some(run.role), verdict.label(), verdict_detail(verdict)));
                    }
                }
            }
            for m in &case.join_mismatches {
                out.push(f("join-consistency".into(), Some(Role::Joiner), "fail", m.clone()));
            }
        }
        out
    }
}
