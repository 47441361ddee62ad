//! Builders of small documents for the unit tests: a fixed fingerprint, verdicts, cases, suites,
//! run reports and benchmark summaries, so that each test states only what it is about.
//!
//! Test builds only. What this module must never do: read a fixture or the machine (the
//! integration tests under `tests/` read the real documents).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::bench::{BenchCase, BenchSummary};
use crate::load::Document;
use crate::model::{Report, Suite};
use crate::record::{
    CaseOutcome, CaseSpec, CgroupInfo, CgroupLayout, CheckId, CheckResult, CpuInfo, Fingerprint, Hypervisor,
    KernelConfig, KernelInfo, NsSet, ProbeRun, Role, Skip, UserInfo, UsernsPolicy, Verdict,
};

pub const HOSTNAME: CheckId = CheckId::UtsHostname;
pub const SIGNAL: CheckId = CheckId::PidSignalHostProcess;

/// A root run on a two-CPU cgroup2 machine without a hypervisor.
pub fn fingerprint() -> Fingerprint {
    Fingerprint {
        kernel: KernelInfo { release: "6.12.0".into(), version: "#1 SMP".into(), machine: "x86_64".into() },
        kernel_config: KernelConfig { source: None, options: BTreeMap::new(), unavailable: Some("test".into()) },
        namespaces: NsSet::ALL,
        cgroup: CgroupInfo {
            layout: CgroupLayout::V2,
            v1: Vec::new(),
            v2_mount: Some("/sys/fs/cgroup".into()),
            v2_controllers: vec!["memory".into(), "pids".into()],
            unmounted: Vec::new(),
        },
        user: UserInfo { euid: 0, egid: 0, cap_eff: "000001ffffffffff".into(), capabilities: vec!["all".into()] },
        userns: UsernsPolicy { unprivileged: true, blocked_by: None, sysctls: BTreeMap::new() },
        cpu: CpuInfo { model: "test CPU".into(), online: 2, available: 2 },
        hypervisor: Hypervisor { detected: false, vendor: None },
        mount_count: 30,
        tools: Vec::new(),
    }
}

pub fn pass() -> Verdict {
    Verdict::Pass { expected: "isolated".into(), observed: "isolated".into(), evidence: String::new() }
}

pub fn fail() -> Verdict {
    Verdict::Fail { expected: "isolated".into(), observed: "shared".into(), evidence: "the host's".into() }
}

pub fn skip() -> Verdict {
    Verdict::Skip { requirement: "root".into(), reason: "needs root".into() }
}

/// A case that ran, its container's probe judging `checks`.
pub fn case(name: &str, checks: &[(CheckId, Verdict)]) -> CaseOutcome {
    CaseOutcome {
        name: name.into(),
        spec: CaseSpec::new(NsSet::ALL),
        skipped: None,
        error: None,
        runs: vec![ProbeRun {
            role: Role::Container,
            init: Vec::new(),
            checks: checks
                .iter()
                .map(|(check, verdict)| CheckResult { check: *check, verdict: verdict.clone() })
                .collect(),
            exit: "exit 0".into(),
            stderr: String::new(),
            limits: Vec::new(),
        }],
        join_mismatches: Vec::new(),
        duration: Duration::from_millis(5),
        phases: Default::default(),
        defects: Vec::new(),
    }
}

/// A case skipped as a whole before launch.
pub fn skipped(name: &str) -> CaseOutcome {
    CaseOutcome {
        skipped: Some(Skip { requirement: "root".into(), reason: "needs root".into() }),
        runs: Vec::new(),
        ..case(name, &[])
    }
}

/// A run report of `suites` on [`fingerprint`]'s machine, with nothing declared in
/// `ISOPROBE_EXPECT`.
pub fn run_report(suites: Vec<Suite>) -> Report {
    let mut r = Report::new(fingerprint(), SystemTime::UNIX_EPOCH, vec!["isoprobe".into(), "run".into()], Vec::new());
    r.suites = suites;
    r
}

pub fn report(suites: Vec<Suite>) -> Document {
    Document::Run(Box::new(run_report(suites)))
}

/// Two suites, four cases, every check passing.
pub fn base() -> Vec<Suite> {
    vec![
        Suite::new(
            "namespaces",
            vec![
                case("clone3/host/uts", &[(HOSTNAME, pass()), (SIGNAL, pass())]),
                case("clone3/host/pid", &[(HOSTNAME, pass()), (SIGNAL, pass())]),
            ],
        ),
        Suite::new("limits", vec![case("clone3/memory", &[(SIGNAL, pass())]), case("clone3/pids", &[])]),
    ]
}

/// `base()` with `edit` applied to the case `name` of the first suite.
pub fn edited(name: &str, edit: impl FnOnce(&mut CaseOutcome)) -> Vec<Suite> {
    let mut s = base();
    edit(s[0].cases.iter_mut().find(|c| c.name == name).unwrap());
    s
}

/// Sets the verdict of `check` of the container's probe.
pub fn set(c: &mut CaseOutcome, check: CheckId, v: Verdict) {
    c.runs[0].checks.iter_mut().find(|r| r.check == check).unwrap().verdict = v;
}

/// A benchmark case of 100 samples whose median is `median` ns and whose interval is ±`spread`
/// of it.
pub fn bench_case(group: &str, id: &str, median: f64, spread: f64) -> BenchCase {
    BenchCase {
        group: group.into(),
        id: id.into(),
        median_ns: median,
        ci_low_ns: median * (1.0 - spread),
        ci_high_ns: median * (1.0 + spread),
        cpu_ns: None,
        samples: 100,
        slow_samples: 0,
        contended: false,
        ratios: BTreeMap::new(),
    }
}

/// A benchmark summary on [`fingerprint`]'s machine.
pub fn bench(calibration: &[(&str, f64)], cases: Vec<BenchCase>) -> BenchSummary {
    BenchSummary {
        calibration: calibration.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        cases,
        ..BenchSummary::new(false, fingerprint())
    }
}
