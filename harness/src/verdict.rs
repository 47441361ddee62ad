//! Verdicts and case outcomes: what a run produces, and what reports render.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::CheckId;
use crate::phases::Phases;
use crate::spec::{CaseSpec, LauncherKind};

/// The judgement of one check in one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Verdict {
    Pass {
        expected: String,
        observed: String,
        evidence: String,
    },
    Fail {
        expected: String,
        observed: String,
        evidence: String,
    },
    /// Not judged, for a stated reason; `requirement` names what was missing.
    Skip {
        requirement: String,
        reason: String,
    },
    /// The observation could not be made; `cause` is the error chain.
    Error {
        cause: String,
    },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }
    pub fn is_skip(&self) -> bool {
        matches!(self, Verdict::Skip { .. })
    }
    /// Fail or error.
    pub fn is_failure(&self) -> bool {
        matches!(self, Verdict::Fail { .. } | Verdict::Error { .. })
    }
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass { .. } => "pass",
            Verdict::Fail { .. } => "fail",
            Verdict::Skip { .. } => "skip",
            Verdict::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    pub check: CheckId,
    pub verdict: Verdict,
}

/// Which process of a case the verdicts are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The container's own first process.
    Container,
    /// A probe that joined the running container with setns.
    Joiner,
}

impl Role {
    /// The launcher that started this process of a case run on `case`: a joining case's container
    /// was started by another launcher (see [`LauncherKind::container_launcher`]), and is judged as
    /// that launcher's container.
    pub fn launched_by(self, case: LauncherKind) -> LauncherKind {
        match self {
            Role::Container => case.container_launcher(),
            Role::Joiner => case,
        }
    }
}

/// What one probe process of a case observed and how it was judged.
///
/// Serialised with both verdict lists side by side (`checks`, and `limits` when there are any),
/// the shape reports were first written in; the report's own record of it is in
/// `isoprobe_reports::record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(into = "ProbeRunFields", try_from = "ProbeRunFields")]
pub struct ProbeRun {
    pub role: Role,
    /// What the probe's init step did.
    pub init: Vec<String>,
    /// The verdicts: a namespace case's checks, or a limit case's exercises.
    pub judged: Judged,
    /// How the probe process ended ("exit 0", "killed by SIGKILL after the 30 s timeout").
    pub exit: String,
    /// The probe's stderr, truncated.
    pub stderr: String,
}

/// What a probe's observations were judged as: one kind of case, one kind of verdicts.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
pub enum Judged {
    /// A namespace case: one verdict per check.
    Checks(Vec<CheckResult>),
    /// A limit case: one verdict per limit check of its exercise.
    Limits(Vec<LimitResult>),
}

impl ProbeRun {
    /// The namespace checks' verdicts (none for a limit case).
    pub fn checks(&self) -> &[CheckResult] {
        match &self.judged {
            Judged::Checks(c) => c,
            Judged::Limits(_) => &[],
        }
    }

    /// The limit checks' verdicts (none for a namespace case).
    pub fn limits(&self) -> &[LimitResult] {
        match &self.judged {
            Judged::Limits(l) => l,
            Judged::Checks(_) => &[],
        }
    }
}

/// [`ProbeRun`]'s serialised shape.
#[derive(Serialize, Deserialize, JsonSchema)]
struct ProbeRunFields {
    role: Role,
    init: Vec<String>,
    checks: Vec<CheckResult>,
    exit: String,
    stderr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    limits: Vec<LimitResult>,
}

impl From<ProbeRun> for ProbeRunFields {
    fn from(r: ProbeRun) -> ProbeRunFields {
        let (checks, limits) = match r.judged {
            Judged::Checks(c) => (c, Vec::new()),
            Judged::Limits(l) => (Vec::new(), l),
        };
        ProbeRunFields { role: r.role, init: r.init, checks, exit: r.exit, stderr: r.stderr, limits }
    }
}

impl TryFrom<ProbeRunFields> for ProbeRun {
    type Error = String;
    fn try_from(f: ProbeRunFields) -> Result<ProbeRun, String> {
        let judged = match (f.checks.is_empty(), f.limits.is_empty()) {
            (false, false) => return Err("a probe run holds either checks or limits, not both".into()),
            (true, false) => Judged::Limits(f.limits),
            _ => Judged::Checks(f.checks),
        };
        Ok(ProbeRun { role: f.role, init: f.init, judged, exit: f.exit, stderr: f.stderr })
    }
}

/// The judgement of one limit check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LimitResult {
    pub check: crate::limits::LimitCheck,
    pub verdict: Verdict,
}

/// Everything a case produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseOutcome {
    pub name: String,
    pub spec: CaseSpec,
    /// The whole case was skipped before launch (a requirement was not met).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skip>,
    /// The case could not be carried out (launch failed, protocol broken, timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub runs: Vec<ProbeRun>,
    /// A joiner must observe what the container's own probe observes: every check whose observed
    /// value differed between the two (a joiner is not pid 1, so that check is left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join_mismatches: Vec<String>,
    /// Milliseconds.
    #[serde(with = "duration_ms")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    /// Where that time went, phase by phase (see [`crate::phases`]).
    #[serde(default, skip_serializing_if = "Phases::is_empty")]
    pub phases: Phases,
    /// Starts that failed on a known defect of the tool and were made again (see
    /// [`crate::launcher::defect`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defects: Vec<crate::launcher::defect::DefectHit>,
}

/// A requirement that was not met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skip {
    pub requirement: String,
    pub reason: String,
}

impl CaseOutcome {
    /// True when nothing failed (skips are not failures).
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.join_mismatches.is_empty()
            && self.runs.iter().all(|r| r.checks().iter().all(|c| !c.verdict.is_failure()))
            && self.runs.iter().all(|r| r.limits().iter().all(|c| !c.verdict.is_failure()))
    }

    /// One line per failure: the case, the check, expected and observed, and the evidence.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("{}: {e}", self.name));
        }
        for run in &self.runs {
            let who = match run.role {
                Role::Container => String::new(),
                Role::Joiner => " (joiner)".into(),
            };
            let checks = run.checks().iter().map(|c| (c.check.to_string(), &c.verdict));
            let limits = run.limits().iter().map(|c| (c.check.to_string(), &c.verdict));
            for (check, verdict) in checks.chain(limits) {
                match verdict {
                    Verdict::Fail { expected, observed, evidence } => out.push(format!(
                        "{}{who}: {check}: expected {expected}, observed {observed} ({evidence})",
                        self.name
                    )),
                    Verdict::Error { cause } => {
                        out.push(format!("{}{who}: {check}: could not observe: {cause}", self.name))
                    }
                    _ => {}
                }
            }
        }
        for m in &self.join_mismatches {
            out.push(format!("{}: joiner and container disagree: {m}", self.name));
        }
        out
    }

    /// Every verdict of every run.
    pub fn verdicts(&self) -> impl Iterator<Item = &CheckResult> {
        self.runs.iter().flat_map(|r| r.checks().iter())
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        // try_: a finite number can still be too large for a Duration (found by the reports'
        // mutation test: 6.8e140 ms panicked in from_secs_f64).
        Duration::try_from_secs_f64(ms / 1e3).map_err(|_| serde::de::Error::custom(format!("bad duration {ms} ms")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::LimitCheck;

    fn pass() -> Verdict {
        Verdict::Pass { expected: "e".into(), observed: "o".into(), evidence: "v".into() }
    }

    fn run(judged: Judged) -> ProbeRun {
        ProbeRun {
            role: Role::Container,
            init: vec!["init".into()],
            judged,
            exit: "exit 0".into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_probe_run_keeps_its_serialised_shape_and_round_trips() -> Result<(), serde_json::Error> {
        let ns = run(Judged::Checks(vec![CheckResult { check: CheckId::UtsHostname, verdict: pass() }]));
        let json = serde_json::to_value(&ns)?;
        assert_eq!(json["checks"][0]["check"], serde_json::to_value(CheckId::UtsHostname)?);
        assert!(json.get("limits").is_none(), "a namespace run writes no limits: {json}");
        assert_eq!(serde_json::from_value::<ProbeRun>(json)?, ns);

        let limit = run(Judged::Limits(vec![LimitResult { check: LimitCheck::Pids, verdict: pass() }]));
        let json = serde_json::to_value(&limit)?;
        assert_eq!(json["checks"], serde_json::json!([]));
        assert_eq!(json["limits"][0]["check"], serde_json::to_value(LimitCheck::Pids)?);
        assert_eq!(serde_json::from_value::<ProbeRun>(json)?, limit);
        Ok(())
    }

    #[test]
    fn a_probe_run_with_both_kinds_of_verdicts_is_refused() -> Result<(), serde_json::Error> {
        let mut json = serde_json::to_value(run(Judged::Checks(vec![CheckResult {
            check: CheckId::UtsHostname,
            verdict: pass(),
        }])))?;
        json["limits"] = serde_json::to_value(vec![LimitResult { check: LimitCheck::Pids, verdict: pass() }])?;
        let err = serde_json::from_value::<ProbeRun>(json).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("either checks or limits"), "{err}");
        Ok(())
    }

    #[test]
    fn the_schema_describes_the_serialised_shape() -> Result<(), serde_json::Error> {
        let schema = serde_json::to_value(schemars::schema_for!(ProbeRun))?;
        let text = schema.to_string();
        assert!(text.contains("\"checks\"") && text.contains("\"limits\""), "{text}");
        assert!(!text.contains("\"judged\""), "the schema names the in-memory field: {text}");
        Ok(())
    }
}
