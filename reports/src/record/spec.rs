//! The spec of a case as a report records it: namespaces, rootfs mode, launcher, id maps,
//! hostname, time offsets, and for a limit case its cgroup settings and exercise.
//!
//! Converted from the harness's `spec::CaseSpec` and `limits::LimitSpec` (and the probe wire
//! types they hold: id map lines, time offsets, the exercise); every field name, rename and tag of
//! the report's JSON is spelled here. The namespace set, rootfs mode and launcher stay the
//! harness's types: they serialise as fixed names (`pid`, `pivot-root`, `clone3`) that are the
//! vocabulary of every spec file and command line too.
//!
//! What this module must never do: validate or resolve a spec. A report records the spec the case
//! ran with, and reading one back must not depend on today's rules for a runnable spec.

use isoprobe_harness::limits as harness_limits;
use isoprobe_harness::spec as harness;
use isoprobe_harness::{LauncherKind, NsSet, RootfsMode};
use isoprobe_probes::wire;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a container should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// The namespaces the container gets new instances of; the rest it shares with the host.
    #[schemars(schema_with = "super::schema::ns_set")]
    pub namespaces: NsSet,
    #[serde(default)]
    pub rootfs: RootfsMode,
    #[serde(default)]
    pub launcher: LauncherKind,
    /// uid_map/gid_map of the new user namespace; `None` takes the default for the runner (see
    /// the harness's `CaseSpec::resolve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_maps: Option<IdMaps>,
    /// The hostname set in the new uts namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Clock offsets of the new time namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::time_offsets")]
    pub time_offsets: Option<TimeOffsets>,
    /// Cgroup limits and the exercise that runs into them (a limit case; see the harness's
    /// `limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitSpec>,
    /// The share of the long sysctl sweeps the case made (the harness's `matrix::SYSCTL_STRIPES`);
    /// absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::sysctl_stripe")]
    pub sysctl_stripe: Option<SysctlStripe>,
    /// A mount case: the propagation of the host's and the container's side of its mount point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<harness::Propagation>,
}

impl CaseSpec {
    /// The spec of a case on the host's root through clone3, with nothing else set (a record built
    /// by hand, as tests do; runs build theirs from the harness's spec).
    pub fn new(namespaces: NsSet) -> CaseSpec {
        CaseSpec {
            namespaces,
            rootfs: RootfsMode::Host,
            launcher: LauncherKind::Clone3,
            id_maps: None,
            hostname: None,
            time_offsets: None,
            limits: None,
            sysctl_stripe: None,
            propagation: None,
        }
    }
}

/// uid_map and gid_map of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdMaps {
    #[schemars(schema_with = "super::schema::id_map")]
    pub uid: Vec<IdMapLine>,
    #[schemars(schema_with = "super::schema::id_map")]
    pub gid: Vec<IdMapLine>,
}

/// One line of `/proc/<pid>/uid_map` or `gid_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapLine {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Time namespace clock offsets in nanoseconds (see time_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeOffsets {
    pub monotonic_ns: i64,
    pub boottime_ns: i64,
}

/// A share of a sysctl sweep: the entries whose path's FNV-1a hash is `index` modulo `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlStripe {
    pub index: u32,
    pub of: u32,
}

/// A limit case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    pub settings: Limits,
    /// A sibling cgroup with these settings (a weight case's competitor runs there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling: Option<Limits>,
    /// What the probe does. The device of `io-read` and the mount point of `cgroup-view` are the
    /// case's own (the harness fills them in); the values here are ignored.
    #[schemars(schema_with = "super::schema::exercise")]
    pub exercise: Exercise,
}

/// Cgroup settings. Field names are the cgroup v2 file names; knobs cgroup2 lacks keep their v1
/// names (`net_cls.classid`) or a name of their own (`devices`: an allow list, all else denied).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(rename = "memory.max", default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    #[serde(rename = "memory.swap.max", default, skip_serializing_if = "Option::is_none")]
    pub memory_swap_max: Option<u64>,
    /// memory.high (cgroup2 only).
    #[serde(rename = "memory.high", default, skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<u64>,
    /// memory.oom.group 1 (cgroup2 only).
    #[serde(rename = "memory.oom.group", default, skip_serializing_if = "std::ops::Not::not")]
    pub memory_oom_group: bool,
    #[serde(rename = "pids.max", default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    #[serde(rename = "cpu.max", default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<CpuMax>,
    #[serde(rename = "cpu.weight", default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// cpu.max.burst (v1 cpu.cfs_burst_us), µs.
    #[serde(rename = "cpu.max.burst", default, skip_serializing_if = "Option::is_none")]
    pub cpu_max_burst: Option<u64>,
    /// cpu.idle 1: the group is SCHED_IDLE to its siblings.
    #[serde(rename = "cpu.idle", default, skip_serializing_if = "std::ops::Not::not")]
    pub cpu_idle: bool,
    /// cpu.weight.nice (cgroup2 only).
    #[serde(rename = "cpu.weight.nice", default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight_nice: Option<i32>,
    #[serde(rename = "cpuset.cpus", default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<Vec<u32>>,
    #[serde(rename = "cpuset.mems", default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<Vec<u32>>,
    /// io.weight (cgroup2, iocost) on the case's own loop device.
    #[serde(rename = "io.weight", default, skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u32>,
    /// io.max `rbps` on the case's own loop device.
    #[serde(rename = "io.max.rbps", default, skip_serializing_if = "Option::is_none")]
    pub io_rbps: Option<u64>,
    #[serde(rename = "hugetlb.max", default, skip_serializing_if = "Option::is_none")]
    pub hugetlb_max: Option<HugetlbMax>,
    /// cgroup.freeze: the host freezes the cgroup when the probe asks it to hold.
    #[serde(rename = "cgroup.freeze", default, skip_serializing_if = "std::ops::Not::not")]
    pub freeze: bool,
    /// cgroup.kill: the host kills the case's sibling cgroup (the probe's forking group).
    #[serde(rename = "cgroup.kill", default, skip_serializing_if = "std::ops::Not::not")]
    pub kill: bool,
    /// Device rules allowed (`c 1:3 rwm`); every other device is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    #[serde(rename = "net_cls.classid", default, skip_serializing_if = "Option::is_none")]
    pub net_cls_classid: Option<u32>,
    /// net_prio.ifpriomap lines (`lo 5`).
    #[serde(rename = "net_prio.ifpriomap", default, skip_serializing_if = "Option::is_none")]
    pub net_prio_ifpriomap: Option<String>,
    /// Count the case's own cgroup with perf_event (the control counts its empty sibling).
    #[serde(rename = "perf_event", default, skip_serializing_if = "std::ops::Not::not")]
    pub perf_event: bool,
    /// The case's cgroup2 cgroup delegated (chowned) to the probe's user.
    #[serde(rename = "delegate", default, skip_serializing_if = "std::ops::Not::not")]
    pub delegate: bool,
    /// memory.low and memory.min of the protected child of the sibling (cgroup2 only).
    #[serde(rename = "memory.low", default, skip_serializing_if = "Option::is_none")]
    pub memory_low: Option<u64>,
    #[serde(rename = "memory.min", default, skip_serializing_if = "Option::is_none")]
    pub memory_min: Option<u64>,
}

/// cpu.max: `quota_us` of CPU time per `period_us` of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CpuMax {
    pub quota_us: u64,
    pub period_us: u64,
}

/// `hugetlb.<size>.max`, in pages of `page_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HugetlbMax {
    pub page_size: u64,
    pub pages: u64,
}

/// What the probe does in a limit case to run into its cgroup's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "exercise", rename_all = "kebab-case")]
pub enum Exercise {
    /// A child maps and touches `step` bytes at a time up to `target`, reporting each step.
    Memory { target: u64, step: u64 },
    /// Fork children that wait, until fork fails or `target` children exist.
    Pids { target: u32 },
    /// Burn CPU on `cpu` for `window_ms` of wall-clock time.
    CpuBurn { cpu: u32, window_ms: u32 },
    /// Burn CPU on `cpu` for `window_ms` together with a competitor in the case's sibling cgroup.
    CpuShare { cpu: u32, window_ms: u32 },
    /// sched_getaffinity(2), then sched_setaffinity(2) to each of `cpus` alone.
    Affinity { cpus: Vec<u32> },
    /// open(2) each path for reading and writing.
    Devices { paths: Vec<String> },
    /// A child writes a heartbeat every `beat_ms` while the host holds the cgroup for `hold_ms`.
    Freezer { beat_ms: u32, hold_ms: u32 },
    /// O_DIRECT reads of `block` bytes from the block device `device` for `window_ms`.
    IoRead { device: String, block: u32, window_ms: u32 },
    /// /proc/self/cgroup, and with a mount namespace a cgroup2 mount of its own at `mount_at`.
    CgroupView { mount_at: Option<String> },
    /// The class id of a TCP socket of its own, as sock_diag reports it. (A unit variant: the
    /// reports written so far hold `{"exercise": "net-classid"}` and nothing else.)
    NetClassid,
    /// Burn `burn_ms` of CPU while the host counts cpu-clock for a cgroup with perf_event.
    PerfCount { burn_ms: u32 },
    /// A child maps `pages` huge pages of `page_size` bytes and touches them one by one.
    Hugetlb { page_size: u64, pages: u32 },
    /// `loopers` forking children in the sibling cgroup, killed by the host (cgroup.kill).
    KillGroup { loopers: u32, wait_ms: u32 },
    /// The same group, frozen by the host (cgroup.freeze) for `hold_ms`, one looper migrated.
    FreezeGroup { loopers: u32, hold_ms: u32 },
    /// Buffered reads of `bytes` from the case's loop device `device`, `block` bytes at a time.
    CacheRead { device: String, bytes: u64, block: u32 },
    /// `members` waiting children and one allocating `target` bytes `step` at a time, all in the
    /// case's sibling cgroup.
    OomGroup { members: u32, target: u64, step: u64 },
    /// The same group one level down: the sibling is the parent (with the limit), the allocator
    /// and all members but the first in its child `child_dir`, the first member in its child
    /// `other_dir`.
    OomGroupParent { members: u32, target: u64, step: u64, child_dir: String, other_dir: String },
    /// cgroup2's structural rules (`rules`: delegation, internal-process, threaded,
    /// threaded-controllers), written by the probe into the case's cgroup `case_dir` and its
    /// sibling `sibling_dir`.
    CgroupRules { rules: CgroupRules, case_dir: String, sibling_dir: String },
    /// Pinned to `cpu`, aligned on the cpu.max period (`period_us`; a throttle lasts about
    /// `period_us` less the quota `quota_us`), idle `idle_periods` periods, then a burn of one
    /// period. `quota_us` is 0 in reports written before it was recorded.
    CpuBurst {
        cpu: u32,
        #[serde(default)]
        quota_us: u64,
        period_us: u64,
        idle_periods: u32,
    },
    /// O_DIRECT readers of `block` bytes of the case's loop device `device` in the case's cgroup
    /// and in its sibling at once, for `window_ms`.
    IoShare { device: String, block: u32, window_ms: u32 },
    /// memory.low / memory.min: a keeper reads `kept` bytes of `device` in the protected child of
    /// the sibling, a cache reader `cache` bytes twice in another, `block` at a time, then a
    /// presser touches `anon` bytes of anonymous memory in the third.
    MemoryProtect {
        device: String,
        kept: u64,
        cache: u64,
        anon: u64,
        block: u32,
        protected_dir: String,
        cache_dir: String,
        pressure_dir: String,
    },
}

/// Which cgroup2 rule a rule case runs into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rules", rename_all = "kebab-case")]
pub enum CgroupRules {
    /// Delegation and its containment; whether the hierarchy is expected to have nsdelegate.
    Delegation { nsdelegate: Option<bool> },
    /// The no-internal-process constraint with a domain controller.
    InternalProcess { controller: String },
    /// Threads moved within a threaded subtree.
    Threaded,
    /// A threaded and a domain controller in a threaded domain.
    ThreadedControllers { threaded: String, domain: String },
    /// The top-down constraint with `controller`.
    TopDown { controller: String },
    /// A domain below a threaded cgroup.
    InvalidDomain,
    /// cgroup.events `populated`, its notification, and rmdir of a populated cgroup.
    Populated,
    /// cgroup.procs writes checked with the opener's credentials.
    OpenCredentials,
    /// A multi-threaded process moved by cgroup.procs with all its threads; one thread by
    /// cgroup.threads alone.
    ProcMigration,
    /// A parent's cgroup.type once its child is threaded ("domain threaded").
    ParentThreaded,
}

// As in `verdict.rs`: harness values are taken apart field by field and every variant matched, so
// what the harness adds is a compile error here, not a gap in reports.

impl From<&harness::CaseSpec> for CaseSpec {
    fn from(s: &harness::CaseSpec) -> CaseSpec {
        let harness::CaseSpec {
            namespaces,
            rootfs,
            launcher,
            id_maps,
            hostname,
            time_offsets,
            limits,
            sysctl_stripe,
            propagation,
        } = s;
        CaseSpec {
            namespaces: *namespaces,
            rootfs: *rootfs,
            launcher: *launcher,
            id_maps: id_maps.as_ref().map(IdMaps::from),
            hostname: hostname.clone(),
            time_offsets: time_offsets.as_ref().map(TimeOffsets::from),
            limits: limits.as_ref().map(LimitSpec::from),
            sysctl_stripe: sysctl_stripe.as_ref().map(SysctlStripe::from),
            propagation: *propagation,
        }
    }
}

impl From<&wire::SysctlStripe> for SysctlStripe {
    fn from(s: &wire::SysctlStripe) -> SysctlStripe {
        let wire::SysctlStripe { index, of } = *s;
        SysctlStripe { index, of }
    }
}

impl From<&harness::IdMaps> for IdMaps {
    fn from(m: &harness::IdMaps) -> IdMaps {
        let harness::IdMaps { uid, gid } = m;
        IdMaps { uid: uid.iter().map(IdMapLine::from).collect(), gid: gid.iter().map(IdMapLine::from).collect() }
    }
}

impl From<&wire::IdMapLine> for IdMapLine {
    fn from(l: &wire::IdMapLine) -> IdMapLine {
        let wire::IdMapLine { inside, outside, count } = *l;
        IdMapLine { inside, outside, count }
    }
}

impl From<&wire::TimeOffsets> for TimeOffsets {
    fn from(t: &wire::TimeOffsets) -> TimeOffsets {
        let wire::TimeOffsets { monotonic_ns, boottime_ns } = *t;
        TimeOffsets { monotonic_ns, boottime_ns }
    }
}

impl From<&harness_limits::LimitSpec> for LimitSpec {
    fn from(l: &harness_limits::LimitSpec) -> LimitSpec {
        let harness_limits::LimitSpec { settings, sibling, exercise } = l;
        LimitSpec { settings: settings.into(), sibling: sibling.as_ref().map(Limits::from), exercise: exercise.into() }
    }
}

impl From<&harness_limits::Limits> for Limits {
    fn from(l: &harness_limits::Limits) -> Limits {
        let harness_limits::Limits {
            memory_max,
            memory_swap_max,
            memory_high,
            memory_oom_group,
            pids_max,
            cpu_max,
            cpu_weight,
            cpu_max_burst,
            cpu_idle,
            cpu_weight_nice,
            cpuset_cpus,
            cpuset_mems,
            io_weight,
            io_rbps,
            hugetlb_max,
            freeze,
            kill,
            devices,
            net_cls_classid,
            net_prio_ifpriomap,
            perf_event,
            delegate,
            memory_low,
            memory_min,
        } = l;
        Limits {
            memory_max: *memory_max,
            memory_swap_max: *memory_swap_max,
            memory_high: *memory_high,
            memory_oom_group: *memory_oom_group,
            pids_max: *pids_max,
            cpu_max: cpu_max.map(|harness_limits::CpuMax { quota_us, period_us }| CpuMax { quota_us, period_us }),
            cpu_weight: *cpu_weight,
            cpu_max_burst: *cpu_max_burst,
            cpu_idle: *cpu_idle,
            cpu_weight_nice: *cpu_weight_nice,
            cpuset_cpus: cpuset_cpus.clone(),
            cpuset_mems: cpuset_mems.clone(),
            io_weight: *io_weight,
            io_rbps: *io_rbps,
            hugetlb_max: hugetlb_max
                .map(|harness_limits::HugetlbMax { page_size, pages }| HugetlbMax { page_size, pages }),
            freeze: *freeze,
            kill: *kill,
            devices: devices.clone(),
            net_cls_classid: *net_cls_classid,
            net_prio_ifpriomap: net_prio_ifpriomap.clone(),
            perf_event: *perf_event,
            delegate: *delegate,
            memory_low: *memory_low,
            memory_min: *memory_min,
        }
    }
}

impl From<&wire::Exercise> for Exercise {
    fn from(e: &wire::Exercise) -> Exercise {
        use wire::Exercise as W;
        match e.clone() {
            W::Memory { target, step } => Exercise::Memory { target, step },
            W::Pids { target } => Exercise::Pids { target },
            W::CpuBurn { cpu, window_ms } => Exercise::CpuBurn { cpu, window_ms },
            W::CpuShare { cpu, window_ms } => Exercise::CpuShare { cpu, window_ms },
            W::Affinity { cpus } => Exercise::Affinity { cpus },
            W::Devices { paths } => Exercise::Devices { paths },
            W::Freezer { beat_ms, hold_ms } => Exercise::Freezer { beat_ms, hold_ms },
            W::IoRead { device, block, window_ms } => Exercise::IoRead { device, block, window_ms },
            W::CgroupView { mount_at } => Exercise::CgroupView { mount_at },
            W::NetClassid => Exercise::NetClassid,
            W::PerfCount { burn_ms } => Exercise::PerfCount { burn_ms },
            W::Hugetlb { page_size, pages } => Exercise::Hugetlb { page_size, pages },
            W::KillGroup { loopers, wait_ms } => Exercise::KillGroup { loopers, wait_ms },
            W::FreezeGroup { loopers, hold_ms } => Exercise::FreezeGroup { loopers, hold_ms },
            W::CacheRead { device, bytes, block } => Exercise::CacheRead { device, bytes, block },
            W::OomGroup { members, target, step } => Exercise::OomGroup { members, target, step },
            W::OomGroupParent { members, target, step, child_dir, other_dir } => {
                Exercise::OomGroupParent { members, target, step, child_dir, other_dir }
            }
            W::MemoryProtect { device, kept, cache, anon, block, protected_dir, cache_dir, pressure_dir } => {
                Exercise::MemoryProtect { device, kept, cache, anon, block, protected_dir, cache_dir, pressure_dir }
            }
            W::CgroupRules { rules, case_dir, sibling_dir } => {
                Exercise::CgroupRules { rules: (&rules).into(), case_dir, sibling_dir }
            }
            W::CpuBurst { cpu, quota_us, period_us, idle_periods } => {
                Exercise::CpuBurst { cpu, quota_us, period_us, idle_periods }
            }
            W::IoShare { device, block, window_ms } => Exercise::IoShare { device, block, window_ms },
        }
    }
}

impl From<&wire::CgroupRules> for CgroupRules {
    fn from(r: &wire::CgroupRules) -> CgroupRules {
        use wire::CgroupRules as W;
        match r.clone() {
            W::Delegation { nsdelegate } => CgroupRules::Delegation { nsdelegate },
            W::InternalProcess { controller } => CgroupRules::InternalProcess { controller },
            W::Threaded => CgroupRules::Threaded,
            W::ThreadedControllers { threaded, domain } => CgroupRules::ThreadedControllers { threaded, domain },
            W::TopDown { controller } => CgroupRules::TopDown { controller },
            W::InvalidDomain => CgroupRules::InvalidDomain,
            W::Populated => CgroupRules::Populated,
            W::OpenCredentials => CgroupRules::OpenCredentials,
            W::ProcMigration => CgroupRules::ProcMigration,
            W::ParentThreaded => CgroupRules::ParentThreaded,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::strategy::{self, assert_converts_from, assert_round_trip};

    proptest! {
        #[test]
        fn specs_round_trip(
            spec in strategy::case_spec(),
            limits in strategy::limit_spec(),
            exercise in strategy::exercise(),
            maps in strategy::id_maps(),
        ) {
            assert_round_trip(&spec)?;
            assert_round_trip(&limits)?;
            assert_round_trip(&limits.settings)?;
            assert_round_trip(&exercise)?;
            assert_round_trip(&maps)?;
        }

        #[test]
        fn specs_convert_from_the_harness_with_the_same_json(
            spec in strategy::case_spec(),
            limits in strategy::limit_spec(),
            exercise in strategy::exercise(),
            maps in strategy::id_maps(),
            offsets in strategy::time_offsets(),
        ) {
            assert_converts_from::<harness::CaseSpec, _>(&spec)?;
            assert_converts_from::<harness_limits::LimitSpec, _>(&limits)?;
            assert_converts_from::<harness_limits::Limits, _>(&limits.settings)?;
            assert_converts_from::<wire::Exercise, _>(&exercise)?;
            assert_converts_from::<harness::IdMaps, _>(&maps)?;
            assert_converts_from::<wire::TimeOffsets, _>(&offsets)?;
        }
    }

    /// What reports written so far hold: unset settings left out, the v2 file names as keys, the
    /// exercise tagged by `exercise`, and unknown fields refused (a misspelt setting must not read
    /// as no setting).
    #[test]
    fn a_limit_spec_is_written_with_cgroup_file_names() {
        let spec = LimitSpec {
            settings: Limits { pids_max: Some(16), freeze: true, ..Limits::default() },
            sibling: None,
            exercise: Exercise::NetClassid,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, r#"{"settings":{"pids.max":16,"cgroup.freeze":true},"exercise":{"exercise":"net-classid"}}"#);
        let misspelt = json.replace("pids.max", "pid.max");
        assert!(serde_json::from_str::<LimitSpec>(&misspelt).unwrap_err().to_string().contains("pid.max"));
        let spec: CaseSpec = serde_json::from_str(r#"{"namespaces":["pid","mnt"]}"#).unwrap();
        assert_eq!(spec, CaseSpec::new("pid+mnt".parse().unwrap()), "rootfs and launcher have defaults");
    }
}
