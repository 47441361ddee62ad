//! What a report records of a case: its spec, whether it was skipped or could not be carried out,
//! and what each probe process of it observed and how that was judged.
//!
//! Converted from the harness's `verdict::CaseOutcome` and `verdict::ProbeRun`; the report's JSON
//! is spelled here. What this module must never do: recompute a verdict or a status (counts and
//! statuses are [`crate::model`]'s, derived from what is recorded).

use std::time::Duration;

use isoprobe_harness::verdict as harness;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::phases::Phases;
use super::spec::CaseSpec;
use super::verdict::{CheckResult, LimitResult, Role, Skip, Verdict};

/// What one probe process of a case observed and how it was judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeRun {
    pub role: Role,
    /// What the probe's init step did.
    pub init: Vec<String>,
    pub checks: Vec<CheckResult>,
    /// How the probe process ended ("exit 0", "killed by SIGKILL after the 30 s timeout").
    pub exit: String,
    /// The probe's stderr, truncated.
    pub stderr: String,
    /// The verdicts of a limit case's checks (its `checks` are then empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitResult>,
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
    /// Where that time went, phase by phase (absent in reports written before phases were
    /// recorded, and for a case that never started).
    #[serde(default, skip_serializing_if = "Phases::is_empty")]
    pub phases: Phases,
    /// Starts that failed on a known defect of the tool and were made again (the harness's
    /// `launcher::defect`); the case's verdicts are those of the start that ran the probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defects: Vec<DefectHit>,
}

/// A start that failed on a known defect of the tool (the harness's `launcher::defect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DefectHit {
    /// The defect's id: its upstream issue (`lxc/lxc#4670`).
    pub defect: String,
    /// Which start of the case it was (1 = the first).
    pub attempt: u32,
    /// The failed start's error, the tool's own output and log included.
    pub error: String,
}

impl CaseOutcome {
    /// True when nothing failed (skips are not failures).
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.join_mismatches.is_empty()
            && self.runs.iter().all(|r| r.checks.iter().all(|c| !c.verdict.is_failure()))
            && self.runs.iter().all(|r| r.limits.iter().all(|c| !c.verdict.is_failure()))
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
            let checks = run.checks.iter().map(|c| (c.check.to_string(), &c.verdict));
            let limits = run.limits.iter().map(|c| (c.check.to_string(), &c.verdict));
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
        self.runs.iter().flat_map(|r| r.checks.iter())
    }
}

impl From<&harness::ProbeRun> for ProbeRun {
    fn from(r: &harness::ProbeRun) -> ProbeRun {
        let harness::ProbeRun { role, init, judged, exit, stderr } = r;
        let (checks, limits) = match judged {
            harness::Judged::Checks(c) => (c.iter().map(CheckResult::from).collect(), Vec::new()),
            harness::Judged::Limits(l) => (Vec::new(), l.iter().map(LimitResult::from).collect()),
        };
        ProbeRun {
            role: (*role).into(),
            init: init.clone(),
            checks,
            exit: exit.clone(),
            stderr: stderr.clone(),
            limits,
        }
    }
}

impl From<&harness::CaseOutcome> for CaseOutcome {
    fn from(o: &harness::CaseOutcome) -> CaseOutcome {
        let harness::CaseOutcome { name, spec, skipped, error, runs, join_mismatches, duration, phases, defects } = o;
        CaseOutcome {
            name: name.clone(),
            spec: spec.into(),
            skipped: skipped.as_ref().map(Skip::from),
            error: error.clone(),
            runs: runs.iter().map(ProbeRun::from).collect(),
            join_mismatches: join_mismatches.clone(),
            duration: *duration,
            phases: phases.into(),
            defects: defects
                .iter()
                .map(|d| DefectHit { defect: d.defect.clone(), attempt: d.attempt, error: d.error.clone() })
                .collect(),
        }
    }
}

/// A duration as a JSON number of milliseconds.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        // try_: a finite number can still be too large for a Duration (found by the mutation
        // test: 6.8e140 ms panicked in from_secs_f64).
        Duration::try_from_secs_f64(ms / 1e3).map_err(|_| serde::de::Error::custom(format!("bad duration {ms} ms")))
    }
}

#[cfg(test)]
mod tests {
    use isoprobe_harness::NsSet;
    use proptest::prelude::*;

    use super::*;
    use crate::record::{CheckId, LimitCheck};
    use crate::strategy::{self, assert_converts_from, assert_round_trip};

    proptest! {
        #[test]
        fn outcomes_round_trip(run in strategy::probe_run(), case in strategy::case_outcome()) {
            assert_round_trip(&run)?;
            assert_round_trip(&case)?;
        }

        #[test]
        fn outcomes_convert_from_the_harness_with_the_same_json(
            run in strategy::probe_run(),
            case in strategy::case_outcome(),
        ) {
            assert_converts_from::<harness::ProbeRun, _>(&run)?;
            assert_converts_from::<harness::CaseOutcome, _>(&case)?;
        }
    }

    fn fail(observed: &str) -> Verdict {
        Verdict::Fail { expected: "isolated".into(), observed: observed.into(), evidence: "seen".into() }
    }

    #[test]
    fn failure_lines_name_the_check_the_role_and_the_limit() {
        let run = |role, checks, limits| ProbeRun {
            role,
            init: Vec::new(),
            checks,
            exit: "exit 0".into(),
            stderr: String::new(),
            limits,
        };
        let case = CaseOutcome {
            name: "clone3/host/pid".into(),
            spec: CaseSpec::new(NsSet::ALL),
            skipped: None,
            error: None,
            runs: vec![
                run(
                    Role::Container,
                    vec![CheckResult { check: CheckId::PidSignalHostProcess, verdict: fail("shared") }],
                    vec![LimitResult { check: LimitCheck::Memory, verdict: Verdict::Error { cause: "EIO".into() } }],
                ),
                run(Role::Joiner, vec![CheckResult { check: CheckId::UtsHostname, verdict: fail("host's") }], vec![]),
            ],
            join_mismatches: vec!["uts/hostname: differs".into()],
            duration: Duration::from_millis(3),
            phases: Phases::default(),
            defects: Vec::new(),
        };
        assert!(!case.passed());
        assert_eq!(
            case.failure_lines(),
            [
                "clone3/host/pid: pid/signal-host-process: expected isolated, observed shared (seen)",
                "clone3/host/pid: memory/oom-at-max: could not observe: EIO",
                "clone3/host/pid (joiner): uts/hostname: expected isolated, observed host's (seen)",
                "clone3/host/pid: joiner and container disagree: uts/hostname: differs",
            ]
        );
        assert_eq!(case.verdicts().count(), 2, "limit verdicts are not check verdicts");
    }

    #[test]
    fn a_duration_is_written_in_milliseconds_and_a_huge_one_is_refused() {
        let case = CaseOutcome {
            name: "c".into(),
            spec: CaseSpec::new(NsSet::EMPTY),
            skipped: None,
            error: None,
            runs: Vec::new(),
            join_mismatches: Vec::new(),
            duration: Duration::from_micros(1500),
            phases: Phases::default(),
            defects: Vec::new(),
        };
        let json = serde_json::to_value(&case).unwrap();
        assert_eq!(json["duration"], 1.5);
        for absent in ["skipped", "join_mismatches", "defects"] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
        let mut huge = json.clone();
        huge["duration"] = serde_json::json!(6.8e140);
        let e = serde_json::from_value::<CaseOutcome>(huge).unwrap_err().to_string();
        assert!(e.contains("bad duration"), "{e}");
    }
}
