//! The judgements a report records: a verdict per check, the role of the probe that saw it, the
//! limit checks by name, and the requirement behind a skip.
//!
//! Converted from the harness's `verdict` and `limits::oracle` types. The JSON is the report's:
//! every tag and name is spelled here, so renaming a harness variant cannot rename a report's.
//! What this module must never do: judge. A verdict is recorded as the harness gave it.

use std::fmt;

use isoprobe_harness::CheckId;
use isoprobe_harness::limits::LimitCheck as HarnessLimitCheck;
use isoprobe_harness::verdict as harness;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

/// The judgement of one limit check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LimitResult {
    pub check: LimitCheck,
    pub verdict: Verdict,
}

/// The limit checks, one per controller behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LimitCheck {
    /// memory.max: the allocating child is OOM-killed at the limit.
    Memory,
    /// pids.max: fork fails with EAGAIN when the cgroup holds pids.max tasks.
    Pids,
    /// cpu.max: CPU time over a window is the quota's share of it.
    CpuMax,
    /// cpu.weight: two busy cgroups on one CPU split it in the ratio of their weights.
    CpuWeight,
    /// cpuacct / cpu.stat usage equals the probe's own rusage.
    CpuUsage,
    /// cpuset.cpus: the affinity inside is the cpuset, and leaving it fails.
    Cpuset,
    /// devices: an allowed device opens, a denied one fails with EPERM.
    Devices,
    /// freezer: a heartbeat stops while frozen and resumes after thaw.
    Freezer,
    /// io.max: read throughput on the case's loop device is the limit.
    Io,
    /// The cgroup namespace's view of /proc/self/cgroup and of a cgroupfs mount.
    CgroupNsView,
    /// net_cls.classid: the class id the kernel stamps on the probe's sockets.
    NetCls,
    /// perf_event: counting cpu-clock per cgroup sees the probe's CPU time.
    PerfEvent,
    /// `hugetlb.<size>.max`: touching a huge page past the limit raises SIGBUS.
    Hugetlb,
    /// pids.events `max`: every fork refused at pids.max is counted.
    PidsEvents,
    /// cgroup.kill: every process of a forking group is gone, those forked during the kill too.
    Kill,
    /// memory.high: page cache read past it is reclaimed down to it; nothing is OOM-killed.
    MemoryHigh,
    /// memory.events and memory.events.local count each breach of memory.high.
    MemoryHighEvents,
    /// memory.pressure (PSI) records memory.high's stalls, and none without it.
    MemoryPressure,
    /// memory.oom.group: an OOM kill in the cgroup takes every process in it.
    OomGroup,
    /// memory.events and memory.events.local count every OOM kill and the group kill.
    OomEvents,
    /// cgroup.freeze (v2): a forking group stops entirely, children forked while freezing too.
    FreezeForking,
    /// cgroup.freeze (v2): a process moved out of a frozen cgroup runs, moved back it stops.
    FreezeMigrate,
    /// cgroup2 delegation: the delegated subtree is its user's, the rest is not; nsdelegate.
    Delegation,
    /// cgroup2's no-internal-process constraint.
    InternalProcess,
    /// cgroup2 threaded subtrees.
    Threaded,
    /// cgroup2 threaded and domain controllers in a threaded domain.
    ThreadedControllers,
    /// cpu.max.burst: an idle group spends its saved burst in one period on top of the quota.
    CpuBurst,
    /// cpu.pressure (PSI) records cpu.max's throttling, and only other tasks' turns without it.
    CpuPressure,
    /// io.pressure (PSI) records readers waiting at io.max's throttle; far less per byte without it.
    IoPressure,
    /// io.weight (iocost): two groups reading one device share it in the ratio of their weights.
    IoWeight,
    /// cgroup2's top-down constraint (ENOENT, EBUSY).
    TopDown,
    /// A domain below a threaded cgroup refuses processes (EOPNOTSUPP).
    InvalidDomain,
    /// cgroup.events `populated` and its notification; rmdir of a populated cgroup (EBUSY).
    Populated,
    /// cgroup.procs writes checked with the opener's credentials.
    OpenCredentials,
    /// memory.low / memory.min: a protected cgroup keeps its page cache under its parent's pressure.
    MemoryProtect,
    /// A process moves with all its threads (cgroup.procs); one thread alone (cgroup.threads).
    ProcMigration,
    /// A parent reads "domain threaded" once its child is threaded.
    ParentThreaded,
}

impl LimitCheck {
    pub const ALL: [LimitCheck; 37] = [
        LimitCheck::Memory,
        LimitCheck::Pids,
        LimitCheck::CpuMax,
        LimitCheck::CpuWeight,
        LimitCheck::CpuUsage,
        LimitCheck::Cpuset,
        LimitCheck::Devices,
        LimitCheck::Freezer,
        LimitCheck::Io,
        LimitCheck::CgroupNsView,
        LimitCheck::NetCls,
        LimitCheck::PerfEvent,
        LimitCheck::Hugetlb,
        LimitCheck::PidsEvents,
        LimitCheck::Kill,
        LimitCheck::MemoryHigh,
        LimitCheck::MemoryHighEvents,
        LimitCheck::MemoryPressure,
        LimitCheck::OomGroup,
        LimitCheck::OomEvents,
        LimitCheck::FreezeForking,
        LimitCheck::FreezeMigrate,
        LimitCheck::Delegation,
        LimitCheck::InternalProcess,
        LimitCheck::Threaded,
        LimitCheck::ThreadedControllers,
        LimitCheck::CpuBurst,
        LimitCheck::CpuPressure,
        LimitCheck::IoPressure,
        LimitCheck::IoWeight,
        LimitCheck::TopDown,
        LimitCheck::InvalidDomain,
        LimitCheck::Populated,
        LimitCheck::OpenCredentials,
        LimitCheck::MemoryProtect,
        LimitCheck::ProcMigration,
        LimitCheck::ParentThreaded,
    ];

    /// The name reports print (`memory/oom-at-max`), as `<controller>/<behaviour>` like a
    /// namespace check's.
    pub fn name(self) -> &'static str {
        match self {
            LimitCheck::Memory => "memory/oom-at-max",
            LimitCheck::Pids => "pids/fork-eagain-at-max",
            LimitCheck::CpuMax => "cpu/quota",
            LimitCheck::CpuWeight => "cpu/weight-split",
            LimitCheck::CpuUsage => "cpuacct/usage-matches-rusage",
            LimitCheck::Cpuset => "cpuset/affinity",
            LimitCheck::Devices => "devices/open",
            LimitCheck::Freezer => "freezer/heartbeat",
            LimitCheck::Io => "io/read-throughput",
            LimitCheck::CgroupNsView => "cgroup-ns/view",
            LimitCheck::NetCls => "net_cls/classid",
            LimitCheck::PerfEvent => "perf_event/cgroup-count",
            LimitCheck::Hugetlb => "hugetlb/sigbus-at-max",
            LimitCheck::PidsEvents => "pids/events-max",
            LimitCheck::Kill => "cgroup/kill-forking-group",
            LimitCheck::MemoryHigh => "memory/high-reclaims",
            LimitCheck::MemoryHighEvents => "memory/events-high",
            LimitCheck::MemoryPressure => "pressure/memory-stall",
            LimitCheck::OomGroup => "memory/oom-group-kills-all",
            LimitCheck::OomEvents => "memory/events-oom-kill",
            LimitCheck::FreezeForking => "cgroup/freeze-forking-group",
            LimitCheck::FreezeMigrate => "cgroup/freeze-migrate",
            LimitCheck::Delegation => "cgroup/delegation",
            LimitCheck::InternalProcess => "cgroup/no-internal-process",
            LimitCheck::Threaded => "cgroup/threaded-subtree",
            LimitCheck::ThreadedControllers => "cgroup/threaded-controllers",
            LimitCheck::CpuBurst => "cpu/burst",
            LimitCheck::CpuPressure => "pressure/cpu-stall",
            LimitCheck::IoPressure => "pressure/io-stall",
            LimitCheck::IoWeight => "io/weight-split",
            LimitCheck::TopDown => "cgroup/top-down",
            LimitCheck::InvalidDomain => "cgroup/invalid-domain",
            LimitCheck::Populated => "cgroup/populated-events",
            LimitCheck::OpenCredentials => "cgroup/open-time-credentials",
            LimitCheck::MemoryProtect => "memory/low-min-protects",
            LimitCheck::ProcMigration => "cgroup/proc-migration",
            LimitCheck::ParentThreaded => "cgroup/parent-becomes-threaded",
        }
    }
}

impl fmt::Display for LimitCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A requirement that was not met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skip {
    pub requirement: String,
    pub reason: String,
}

// The conversions take the harness's values apart field by field and match every variant, so a
// field or variant the harness adds is a compile error here rather than a silent gap in reports.

impl From<&harness::Verdict> for Verdict {
    fn from(v: &harness::Verdict) -> Verdict {
        match v {
            harness::Verdict::Pass { expected, observed, evidence } => {
                Verdict::Pass { expected: expected.clone(), observed: observed.clone(), evidence: evidence.clone() }
            }
            harness::Verdict::Fail { expected, observed, evidence } => {
                Verdict::Fail { expected: expected.clone(), observed: observed.clone(), evidence: evidence.clone() }
            }
            harness::Verdict::Skip { requirement, reason } => {
                Verdict::Skip { requirement: requirement.clone(), reason: reason.clone() }
            }
            harness::Verdict::Error { cause } => Verdict::Error { cause: cause.clone() },
        }
    }
}

impl From<&harness::CheckResult> for CheckResult {
    fn from(r: &harness::CheckResult) -> CheckResult {
        let harness::CheckResult { check, verdict } = r;
        CheckResult { check: *check, verdict: verdict.into() }
    }
}

impl From<harness::Role> for Role {
    fn from(r: harness::Role) -> Role {
        match r {
            harness::Role::Container => Role::Container,
            harness::Role::Joiner => Role::Joiner,
        }
    }
}

impl From<&harness::LimitResult> for LimitResult {
    fn from(r: &harness::LimitResult) -> LimitResult {
        let harness::LimitResult { check, verdict } = r;
        LimitResult { check: (*check).into(), verdict: verdict.into() }
    }
}

impl From<HarnessLimitCheck> for LimitCheck {
    fn from(c: HarnessLimitCheck) -> LimitCheck {
        match c {
            HarnessLimitCheck::Memory => LimitCheck::Memory,
            HarnessLimitCheck::Pids => LimitCheck::Pids,
            HarnessLimitCheck::CpuMax => LimitCheck::CpuMax,
            HarnessLimitCheck::CpuWeight => LimitCheck::CpuWeight,
            HarnessLimitCheck::CpuUsage => LimitCheck::CpuUsage,
            HarnessLimitCheck::Cpuset => LimitCheck::Cpuset,
            HarnessLimitCheck::Devices => LimitCheck::Devices,
            HarnessLimitCheck::Freezer => LimitCheck::Freezer,
            HarnessLimitCheck::Io => LimitCheck::Io,
            HarnessLimitCheck::CgroupNsView => LimitCheck::CgroupNsView,
            HarnessLimitCheck::NetCls => LimitCheck::NetCls,
            HarnessLimitCheck::PerfEvent => LimitCheck::PerfEvent,
            HarnessLimitCheck::Hugetlb => LimitCheck::Hugetlb,
            HarnessLimitCheck::PidsEvents => LimitCheck::PidsEvents,
            HarnessLimitCheck::Kill => LimitCheck::Kill,
            HarnessLimitCheck::MemoryHigh => LimitCheck::MemoryHigh,
            HarnessLimitCheck::MemoryHighEvents => LimitCheck::MemoryHighEvents,
            HarnessLimitCheck::MemoryPressure => LimitCheck::MemoryPressure,
            HarnessLimitCheck::OomGroup => LimitCheck::OomGroup,
            HarnessLimitCheck::OomEvents => LimitCheck::OomEvents,
            HarnessLimitCheck::FreezeForking => LimitCheck::FreezeForking,
            HarnessLimitCheck::FreezeMigrate => LimitCheck::FreezeMigrate,
            HarnessLimitCheck::Delegation => LimitCheck::Delegation,
            HarnessLimitCheck::InternalProcess => LimitCheck::InternalProcess,
            HarnessLimitCheck::Threaded => LimitCheck::Threaded,
            HarnessLimitCheck::ThreadedControllers => LimitCheck::ThreadedControllers,
            HarnessLimitCheck::CpuBurst => LimitCheck::CpuBurst,
            HarnessLimitCheck::CpuPressure => LimitCheck::CpuPressure,
            HarnessLimitCheck::IoPressure => LimitCheck::IoPressure,
            HarnessLimitCheck::IoWeight => LimitCheck::IoWeight,
            HarnessLimitCheck::TopDown => LimitCheck::TopDown,
            HarnessLimitCheck::InvalidDomain => LimitCheck::InvalidDomain,
            HarnessLimitCheck::Populated => LimitCheck::Populated,
            HarnessLimitCheck::OpenCredentials => LimitCheck::OpenCredentials,
            HarnessLimitCheck::MemoryProtect => LimitCheck::MemoryProtect,
            HarnessLimitCheck::ProcMigration => LimitCheck::ProcMigration,
            HarnessLimitCheck::ParentThreaded => LimitCheck::ParentThreaded,
        }
    }
}

impl From<&harness::Skip> for Skip {
    fn from(s: &harness::Skip) -> Skip {
        let harness::Skip { requirement, reason } = s;
        Skip { requirement: requirement.clone(), reason: reason.clone() }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::strategy::{self, assert_converts_from, assert_round_trip};

    proptest! {
        #[test]
        fn judgements_round_trip(
            v in strategy::verdict(),
            c in strategy::check_result(),
            l in strategy::limit_result(),
            s in strategy::skip(),
            r in strategy::role(),
        ) {
            assert_round_trip(&v)?;
            assert_round_trip(&c)?;
            assert_round_trip(&l)?;
            assert_round_trip(&s)?;
            assert_round_trip(&r)?;
        }

        #[test]
        fn judgements_convert_from_the_harness_with_the_same_json(
            v in strategy::verdict(),
            c in strategy::check_result(),
            l in strategy::limit_result(),
            s in strategy::skip(),
        ) {
            assert_converts_from::<harness::Verdict, _>(&v)?;
            assert_converts_from::<harness::CheckResult, _>(&c)?;
            assert_converts_from::<harness::LimitResult, _>(&l)?;
            assert_converts_from::<harness::Skip, _>(&s)?;
        }
    }

    /// The limit checks and roles by value (their conversions take no reference): each is written
    /// as the harness wrote it and named as the harness names it, and the names are unique.
    #[test]
    fn limit_checks_and_roles_are_the_harness_s_names() {
        let mut names = std::collections::BTreeSet::new();
        for c in LimitCheck::ALL {
            let json = serde_json::to_value(c).unwrap();
            let h: HarnessLimitCheck = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(h).unwrap(), json);
            assert_eq!((LimitCheck::from(h), c.name()), (c, h.name()));
            assert_eq!(c.to_string(), c.name());
            assert!(names.insert(c.name()), "{c} named twice");
        }
        for r in [Role::Container, Role::Joiner] {
            let json = serde_json::to_value(r).unwrap();
            let h: harness::Role = serde_json::from_value(json.clone()).unwrap();
            assert_eq!((serde_json::to_value(h).unwrap(), Role::from(h)), (json, r));
        }
    }

    #[test]
    fn a_verdict_is_written_with_its_status_tag() {
        let v = Verdict::Skip { requirement: "root".into(), reason: "needs root".into() };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"status":"skip","requirement":"root","reason":"needs root"}"#);
        assert!(v.is_skip() && !v.is_failure() && !v.is_pass() && v.label() == "skip");
        assert!(Verdict::Error { cause: "x".into() }.is_failure());
    }
}
