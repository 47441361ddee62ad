//! The limit oracle: a pure function from a [`LimitSpec`] to what each of its checks must see.
//! No I/O, no privilege.

use std::fmt;

use isoprobe_probes::wire::Exercise;
use serde::{Deserialize, Serialize};

use super::spec::LimitSpec;

/// The limit checks, one per controller behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LimitCheck {
    /// memory.max: the allocating child is OOM-killed at the limit.
    Memory,
    /// pids.max: fork fails with EAGAIN when the cgroup holds pids.max tasks.
    Pids,
    /// cpu.max: CPU time over a window is the quota's share of it.
    CpuMax,
    /// cpu.weight (also given as cpu.weight.nice, or made SCHED_IDLE's by cpu.idle): two busy
    /// cgroups on one CPU split it in the ratio of their weights.
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
    /// memory.pressure (PSI) records the stalls of memory.high's reclaim and throttling, and
    /// none without it.
    MemoryPressure,
    /// memory.oom.group: an OOM kill in the cgroup takes every process in it.
    OomGroup,
    /// memory.events and memory.events.local count every OOM kill and the group kill.
    OomEvents,
    /// cgroup.freeze (v2): a forking group stops entirely, children forked while freezing too,
    /// and runs again after the thaw.
    FreezeForking,
    /// cgroup.freeze (v2): a process moved out of a frozen cgroup runs, moved back it stops, and
    /// the cgroup stays frozen throughout.
    FreezeMigrate,
    /// cgroup2 delegation: a delegated subtree is writable by its user, the rest is not, and
    /// (nsdelegate) a cgroup namespace contains even root.
    Delegation,
    /// cgroup2's no-internal-process constraint (EBUSY both ways).
    InternalProcess,
    /// cgroup2 threaded subtrees: threads move within one, a domain refuses them.
    Threaded,
    /// cgroup2 threaded and domain controllers in a threaded domain.
    ThreadedControllers,
    /// cpu.max.burst: an idle group saves quota up to the burst and spends it in one period on
    /// top of the quota; without it a period gives the quota alone.
    CpuBurst,
    /// cpu.pressure (PSI) records the time cpu.max throttles the group, and only the waits for
    /// other tasks without it.
    CpuPressure,
    /// io.pressure (PSI) records readers waiting at io.max's throttle for most of the time their
    /// bytes take at the limit; without it, far less per byte read.
    IoPressure,
    /// io.weight (iocost): two groups reading one device share it in the ratio of their weights.
    IoWeight,
    /// cgroup2's top-down constraint: ENOENT below a parent without the controller, EBUSY
    /// disabling it over a child that enables it.
    TopDown,
    /// A domain below a threaded cgroup is invalid and refuses processes (EOPNOTSUPP).
    InvalidDomain,
    /// cgroup.events `populated` follows the last process out (with its notification), and a
    /// populated cgroup cannot be removed (EBUSY).
    Populated,
    /// A cgroup.procs write is checked with its opener's credentials, not the writer's.
    OpenCredentials,
    /// memory.low / memory.min: a protected cgroup keeps its page cache while a sibling's
    /// anonymous memory pushes their parent past memory.max; an unprotected one loses it.
    MemoryProtect,
    /// A multi-threaded process written to cgroup.procs moves with all its threads; one thread
    /// written to cgroup.threads of a threaded cgroup moves alone.
    ProcMigration,
    /// A cgroup reads "domain threaded" once its child is threaded, "domain" before and after.
    ParentThreaded,
}

impl LimitCheck {
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

/// What a limit check must see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "kebab-case")]
pub enum LimitExpect {
    /// OOM-killed with usage at `limit` bytes; with `no_swap` (memory.swap.max 0) nothing swapped.
    MemoryStopsAt {
        limit: u64,
        #[serde(default)]
        no_swap: bool,
    },
    /// With swap: memory.max plus memory.swap.max `swap` of it swapped out, then an OOM kill
    /// (see `swap::judge`).
    MemorySwapStopsAt { limit: u64, swap: u64 },
    /// All of `target` bytes touched, nothing killed.
    MemoryReaches { target: u64 },
    /// EAGAIN with `max` tasks in the cgroup.
    PidsStopAt { max: u64 },
    /// `target` children forked.
    PidsReach { target: u32 },
    /// CPU time = wall × quota / period.
    CpuQuota { quota_us: u64, period_us: u64 },
    /// Not throttled: close to a whole CPU.
    CpuUnthrottled,
    /// The probe's share of the pinned CPU is `mine / (mine + other)`, the two groups' load
    /// weights (the scheduler's units: cpu.shares, 1024 for cpu.weight 100; see [`load_weight`]).
    CpuSplit { mine: u32, other: u32 },
    /// From just after a period boundary to just before the next, the group runs for its budget:
    /// `quota_us + burst_us` (the burst saved while idle), then stays throttled.
    CpuBurstRun { quota_us: u64, burst_us: u64, period_us: u64 },
    /// cpu.pressure `some` rose by the time the probe waited for the CPU: throttled by `cpu_max`
    /// for most of the window, or (none) only waiting for other tasks' turns.
    CpuStall { cpu_max: Option<super::CpuMax> },
    /// io.pressure `some` rose for most of the time the bytes read take at io.max's `bps`, or
    /// (none) by less than they take at the control's rate floor.
    IoStall { bps: Option<u64> },
    /// The cgroup's usage equals the probe's rusage.
    UsageMatchesRusage,
    /// sched_getaffinity gives exactly `cpus`, and pinning to any other fails with EINVAL.
    Affinity { cpus: Vec<u32> },
    /// `allowed` paths open; `denied` ones fail with EPERM.
    Devices { allowed: Vec<String>, denied: Vec<String> },
    /// The heartbeat stops for at least `hold_ms` and resumes.
    Frozen { hold_ms: u32 },
    /// No gap as long as `hold_ms`.
    NotFrozen { hold_ms: u32 },
    /// Read throughput equals `bps` (reads of `block` bytes).
    IoRate { bps: u64, block: u32 },
    /// Read throughput at the device's own speed, far above any limit the suites set.
    IoUnthrottled,
    /// The case's readers' share of what both groups read from the device under iocost is
    /// `mine / (mine + other)`, the two io.weight values.
    /// (Reads of `block` bytes.)
    IoSplit { mine: u32, other: u32, block: u32 },
    /// Every /proc/self/cgroup path is `/`; a cgroup2 mount's root holds the probe.
    CgroupNsRoot,
    /// /proc/self/cgroup as the host sees the probe's; a cgroup2 mount's root does not hold it.
    CgroupHostView,
    /// The socket's class id.
    Classid { classid: u32 },
    /// cpu-clock counted for the probe's cgroup equals its CPU time.
    PerfCountsProbe,
    /// cpu-clock counted for the empty sibling is (close to) zero.
    PerfCountsNothing,
    /// SIGBUS on touching page `pages + 1`.
    HugetlbStopsAt { pages: u64 },
    /// Every page touched.
    HugetlbReaches { pages: u32 },
    /// pids.events `max` rose by exactly `refused` during the exercise.
    PidsRefusals { refused: u64 },
    /// Every looper killed by SIGKILL, the cgroup empty within the wait.
    GroupKilled { loopers: u32 },
    /// The group still forking after the wait; every looper exits when released.
    GroupSurvives { loopers: u32 },
    /// No fork or exit in the group while frozen; forks again after the thaw.
    GroupFrozen { loopers: u32 },
    /// The group keeps forking through the hold.
    GroupRuns { loopers: u32 },
    /// The migrant runs out of the frozen cgroup, stops when back; the others never run.
    MigrantFollowsFreezer,
    /// The migrant and the others run in every phase.
    MigrantRuns,
    /// All bytes read, usage never above `high` (plus the reclaim slack), no OOM.
    HighHolds { high: u64, bytes: u64 },
    /// All bytes read and all of them kept (the peak at least `bytes`: nothing reclaims without a
    /// limit or global pressure), no OOM.
    HighAbsent { bytes: u64 },
    /// memory.events and memory.events.local `high` rose (`counted`), or stayed (not).
    HighEventsCounted { counted: bool },
    /// memory.pressure `some` total rose (`stalled`), or stayed.
    MemoryStall { stalled: bool },
    /// The allocator and all `members` killed by SIGKILL.
    AllOomKilled { members: u32 },
    /// The allocator killed by SIGKILL, all `members` alive until released.
    OneOomKilled { members: u32 },
    /// oom_kill +`kills` in memory.events and +`local_kills` in memory.events.local (the same
    /// where the group's tasks are all in the sibling itself, none where they are all in its
    /// children), oom_group_kill +`group_kills` in both (counted where memory.oom.group is set). A
    /// group kill counts its victim twice.
    OomEventsCounted { kills: u64, local_kills: u64, group_kills: u64 },
    /// Each named write of a cgroup2 rule exercise gives its outcome (see `rules::expect`).
    Steps { steps: Vec<(String, super::rules::Outcome)> },
    /// memory.min or memory.low (or neither: the control) under pressure: see `protect::judge`.
    Protection { plan: super::protect::ProtectPlan },
}

/// The checks of `spec` and what each must see.
pub fn expect(spec: &LimitSpec) -> Vec<(LimitCheck, LimitExpect)> {
    let l = &spec.settings;
    match &spec.exercise {
        Exercise::Memory { target, .. } => vec![(
            LimitCheck::Memory,
            match (l.memory_max, l.memory_swap_max) {
                (Some(limit), Some(swap)) if swap > 0 => LimitExpect::MemorySwapStopsAt { limit, swap },
                (Some(limit), swap) => LimitExpect::MemoryStopsAt { limit, no_swap: swap == Some(0) },
                (None, _) => LimitExpect::MemoryReaches { target: *target },
            },
        )],
        Exercise::Pids { target } => vec![
            (
                LimitCheck::Pids,
                match l.pids_max {
                    Some(max) => LimitExpect::PidsStopAt { max },
                    None => LimitExpect::PidsReach { target: *target },
                },
            ),
            // The exercise stops at the first refused fork.
            (LimitCheck::PidsEvents, LimitExpect::PidsRefusals { refused: u64::from(l.pids_max.is_some()) }),
        ],
        Exercise::CpuBurn { .. } => vec![
            (
                LimitCheck::CpuMax,
                match l.cpu_max {
                    Some(c) => LimitExpect::CpuQuota { quota_us: c.quota_us, period_us: c.period_us },
                    None => LimitExpect::CpuUnthrottled,
                },
            ),
            (LimitCheck::CpuUsage, LimitExpect::UsageMatchesRusage),
            (LimitCheck::CpuPressure, LimitExpect::CpuStall { cpu_max: l.cpu_max }),
        ],
        Exercise::CpuShare { .. } => {
            let (mine, other) = (load_weight(l), load_weight(&spec.sibling.clone().unwrap_or_default()));
            vec![(LimitCheck::CpuWeight, LimitExpect::CpuSplit { mine, other })]
        }
        // Without cpu.max there is no period to align to: the exercise reports that as an error.
        Exercise::CpuBurst { .. } => vec![(
            LimitCheck::CpuBurst,
            match l.cpu_max {
                Some(c) => LimitExpect::CpuBurstRun {
                    quota_us: c.quota_us,
                    burst_us: l.cpu_max_burst.unwrap_or(0),
                    period_us: c.period_us,
                },
                None => LimitExpect::CpuUnthrottled,
            },
        )],
        Exercise::Affinity { cpus } => vec![(
            LimitCheck::Cpuset,
            LimitExpect::Affinity { cpus: l.cpuset_cpus.clone().unwrap_or_else(|| cpus.clone()) },
        )],
        Exercise::Devices { paths } => {
            // The exercise lists the allowed path first; with a device list everything not on it
            // is denied.
            let (allowed, denied) = match &l.devices {
                Some(_) => (paths.iter().take(1).cloned().collect(), paths.iter().skip(1).cloned().collect()),
                None => (paths.clone(), Vec::new()),
            };
            vec![(LimitCheck::Devices, LimitExpect::Devices { allowed, denied })]
        }
        Exercise::Freezer { hold_ms, .. } => vec![(
            LimitCheck::Freezer,
            if l.freeze {
                LimitExpect::Frozen { hold_ms: *hold_ms }
            } else {
                LimitExpect::NotFrozen { hold_ms: *hold_ms }
            },
        )],
        Exercise::IoRead { block, .. } => vec![
            (
                LimitCheck::Io,
                match l.io_rbps {
                    Some(bps) => LimitExpect::IoRate { bps, block: *block },
                    None => LimitExpect::IoUnthrottled,
                },
            ),
            (LimitCheck::IoPressure, LimitExpect::IoStall { bps: l.io_rbps }),
        ],
        // io.weight's default is 100 (cgroup-v2.rst, io.weight: "default 100").
        Exercise::IoShare { block, .. } => {
            let weight = |l: Option<&super::Limits>| l.and_then(|l| l.io_weight).unwrap_or(100);
            let split =
                LimitExpect::IoSplit { mine: weight(Some(l)), other: weight(spec.sibling.as_ref()), block: *block };
            vec![(LimitCheck::IoWeight, split)]
        }
        Exercise::CgroupView { .. } => vec![(LimitCheck::CgroupNsView, LimitExpect::CgroupHostView)],
        Exercise::NetClassid => {
            vec![(LimitCheck::NetCls, LimitExpect::Classid { classid: l.net_cls_classid.unwrap_or(0) })]
        }
        Exercise::PerfCount { .. } => vec![(
            LimitCheck::PerfEvent,
            if l.perf_event { LimitExpect::PerfCountsProbe } else { LimitExpect::PerfCountsNothing },
        )],
        Exercise::KillGroup { loopers, .. } => vec![(
            LimitCheck::Kill,
            if l.kill {
                LimitExpect::GroupKilled { loopers: *loopers }
            } else {
                LimitExpect::GroupSurvives { loopers: *loopers }
            },
        )],
        Exercise::FreezeGroup { loopers, .. } => vec![
            (
                LimitCheck::FreezeForking,
                if l.freeze {
                    LimitExpect::GroupFrozen { loopers: *loopers }
                } else {
                    LimitExpect::GroupRuns { loopers: *loopers }
                },
            ),
            (
                LimitCheck::FreezeMigrate,
                if l.freeze { LimitExpect::MigrantFollowsFreezer } else { LimitExpect::MigrantRuns },
            ),
        ],
        Exercise::CacheRead { bytes, .. } => {
            vec![
                (
                    LimitCheck::MemoryHigh,
                    match l.memory_high {
                        Some(high) => LimitExpect::HighHolds { high, bytes: *bytes },
                        None => LimitExpect::HighAbsent { bytes: *bytes },
                    },
                ),
                (LimitCheck::MemoryHighEvents, LimitExpect::HighEventsCounted { counted: l.memory_high.is_some() }),
                (LimitCheck::MemoryPressure, LimitExpect::MemoryStall { stalled: l.memory_high.is_some() }),
            ]
        }
        Exercise::OomGroup { members, .. } | Exercise::OomGroupParent { members, .. } => {
            let group = spec.sibling.as_ref().is_some_and(|s| s.memory_oom_group);
            // One level down every task is in a child of the sibling: the sibling's own
            // memory.events.local counts no oom_kill (mm/memcontrol.c, memcg_memory_event: the
            // local count is the task's own cgroup's, the hierarchical one every ancestor's),
            // while the group kill is counted where memory.oom.group is set, the sibling.
            let below = matches!(spec.exercise, Exercise::OomGroupParent { .. });
            let events = |kills: u64, group_kills| LimitExpect::OomEventsCounted {
                kills,
                local_kills: if below { 0 } else { kills },
                group_kills,
            };
            vec![
                (
                    LimitCheck::OomGroup,
                    if group {
                        LimitExpect::AllOomKilled { members: *members }
                    } else {
                        LimitExpect::OneOomKilled { members: *members }
                    },
                ),
                (
                    LimitCheck::OomEvents,
                    // The victim counts twice: once as the victim, once more as a member of the group
                    // the kill then sweeps (mm/oom_kill.c, oom_kill_process: __oom_kill_process for the
                    // victim, then mem_cgroup_scan_tasks over the group, victim included). The
                    // kernel's own test_memcg_oom_group_score_events expects the same (oom_kill 3 for
                    // two killed tasks).
                    if group { events(u64::from(*members) + 2, 1) } else { events(1, 0) },
                ),
            ]
        }
        // The outcomes depend on the case's namespaces too: `expect_rules` gives them.
        Exercise::CgroupRules { rules, .. } => {
            vec![(rule_check(rules), expect_rules(spec, super::rules::RuleNs { user_ns: false, cgroup_ns: false }))]
        }
        Exercise::MemoryProtect { .. } => {
            vec![(LimitCheck::MemoryProtect, LimitExpect::Protection { plan: super::protect::plan(spec) })]
        }
        Exercise::Hugetlb { pages, .. } => vec![(
            LimitCheck::Hugetlb,
            match l.hugetlb_max {
                Some(h) => LimitExpect::HugetlbStopsAt { pages: h.pages },
                None => LimitExpect::HugetlbReaches { pages: *pages },
            },
        )],
    }
}

/// The check of a rule exercise.
pub fn rule_check(rules: &isoprobe_probes::wire::CgroupRules) -> LimitCheck {
    use isoprobe_probes::wire::CgroupRules as R;
    match rules {
        R::Delegation { .. } => LimitCheck::Delegation,
        R::InternalProcess { .. } => LimitCheck::InternalProcess,
        R::Threaded => LimitCheck::Threaded,
        R::ThreadedControllers { .. } => LimitCheck::ThreadedControllers,
        R::TopDown { .. } => LimitCheck::TopDown,
        R::InvalidDomain => LimitCheck::InvalidDomain,
        R::Populated => LimitCheck::Populated,
        R::OpenCredentials => LimitCheck::OpenCredentials,
        R::ProcMigration => LimitCheck::ProcMigration,
        R::ParentThreaded => LimitCheck::ParentThreaded,
    }
}

/// A rule exercise's steps in a case with the namespaces `cx` (the limit spec does not hold them).
pub fn expect_rules(spec: &LimitSpec, cx: super::rules::RuleNs) -> LimitExpect {
    match &spec.exercise {
        Exercise::CgroupRules { rules, .. } => {
            LimitExpect::Steps { steps: super::rules::want(rules, spec.settings.delegate, cx) }
        }
        _ => LimitExpect::Steps { steps: Vec::new() },
    }
}

/// kernel/sched/core.c, sched_prio_to_weight: the load weight of nice -20 to 19 (nice 0 is 1024;
/// each step is about 1.25×). cpu.weight.nice sets the group's weight to the entry of its nice
/// value (cpu_weight_nice_write_s64).
pub const SCHED_PRIO_TO_WEIGHT: [u32; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904, 3906, 3121, 2501,
    1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
];

/// kernel/sched/sched.h, WEIGHT_IDLEPRIO: the load weight of a SCHED_IDLE entity, which a group
/// with cpu.idle 1 gets whatever its cpu.weight (sched_group_set_idle).
pub const WEIGHT_IDLEPRIO: u32 = 3;

/// A group's load weight on its parent's runqueue: SCHED_IDLE's with cpu.idle, the nice table's
/// with cpu.weight.nice, else cpu.weight (default 100) × 1024 / 100 rounded to the closest, the
/// kernel's own conversion (sched_weight_from_cgroup).
pub fn load_weight(l: &super::Limits) -> u32 {
    match (l.cpu_idle, l.cpu_weight_nice) {
        (true, _) => WEIGHT_IDLEPRIO,
        (false, Some(nice)) => SCHED_PRIO_TO_WEIGHT[(nice.clamp(-20, 19) + 20) as usize],
        (false, None) => (l.cpu_weight.unwrap_or(100) * 1024 + 50) / 100,
    }
}

/// The cgroup-namespace view depends on the case's namespaces, which the limit spec does not
/// hold: the caller passes whether the case has a cgroup namespace.
pub fn expect_view(cgroup_ns: bool) -> LimitExpect {
    if cgroup_ns { LimitExpect::CgroupNsRoot } else { LimitExpect::CgroupHostView }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::spec::{CpuMax, Limits};

    fn spec(settings: Limits, exercise: Exercise) -> LimitSpec {
        LimitSpec { settings, sibling: None, exercise }
    }

    #[test]
    fn a_control_expects_the_exercise_to_run_past_the_limit() {
        let s = spec(
            Limits { memory_max: Some(64 << 20), ..Default::default() },
            Exercise::Memory { target: 192 << 20, step: 1 << 20 },
        );
        assert_eq!(
            expect(&s),
            vec![(LimitCheck::Memory, LimitExpect::MemoryStopsAt { limit: 64 << 20, no_swap: false })]
        );
        assert_eq!(expect(&s.control()), vec![(LimitCheck::Memory, LimitExpect::MemoryReaches { target: 192 << 20 })]);
    }

    #[test]
    fn a_cpu_control_keeps_its_weight_and_drops_the_quota() {
        let s = spec(
            Limits {
                cpu_max: Some(CpuMax { quota_us: 20_000, period_us: 100_000 }),
                cpu_weight: Some(10_000),
                ..Default::default()
            },
            Exercise::CpuBurn { cpu: 1, window_ms: 1000 },
        );
        let c = s.control();
        assert_eq!(c.settings.cpu_max, None);
        assert_eq!(c.settings.cpu_weight, Some(10_000));
        assert_eq!(expect(&c)[0].1, LimitExpect::CpuUnthrottled);
    }

    #[test]
    fn a_weight_control_gives_both_the_reference_weight() {
        let s = LimitSpec {
            settings: Limits { cpu_weight: Some(1000), ..Default::default() },
            sibling: Some(Limits { cpu_weight: Some(3000), ..Default::default() }),
            exercise: Exercise::CpuShare { cpu: 1, window_ms: 1000 },
        };
        assert_eq!(expect(&s)[0].1, LimitExpect::CpuSplit { mine: 10240, other: 30720 });
        assert_eq!(expect(&s.control())[0].1, LimitExpect::CpuSplit { mine: 30720, other: 30720 });
    }

    /// cpu.idle and cpu.weight.nice are weights too: SCHED_IDLE's and the nice table's; their
    /// controls give the probe the sibling's weight.
    #[test]
    fn idle_and_nice_weights_come_from_the_kernel_tables() {
        let share = |settings: Limits, sibling: Limits| LimitSpec {
            settings,
            sibling: Some(sibling),
            exercise: Exercise::CpuShare { cpu: 1, window_ms: 1000 },
        };
        let heavy = Limits { cpu_weight: Some(10_000), ..Default::default() };
        let idle = share(Limits { cpu_idle: true, ..heavy.clone() }, heavy.clone());
        assert_eq!(expect(&idle)[0].1, LimitExpect::CpuSplit { mine: 3, other: 102_400 });
        assert_eq!(expect(&idle.control())[0].1, LimitExpect::CpuSplit { mine: 102_400, other: 102_400 });
        let nice = |n| Limits { cpu_weight_nice: Some(n), ..Default::default() };
        let s = share(nice(-20), nice(-15));
        assert_eq!(expect(&s)[0].1, LimitExpect::CpuSplit { mine: 88761, other: 29154 });
        assert_eq!(expect(&s.control())[0].1, LimitExpect::CpuSplit { mine: 29154, other: 29154 });
        assert_eq!(load_weight(&nice(0)), 1024);
    }

    #[test]
    fn scaling_doubles_quantities_only() {
        let l = Limits { memory_max: Some(10), pids_max: Some(3), cpu_weight: Some(7), ..Default::default() }.scaled(2);
        assert_eq!((l.memory_max, l.pids_max, l.cpu_weight), (Some(20), Some(6), Some(7)));
    }
}
