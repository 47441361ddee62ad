//! The limit matrix: which limit cases a full run covers, shared by the limit suite and the CLI.
//!
//! Every limit × the namespace sets none, all and user-only, each limited and with its control (the
//! same exercise without the limit), the cgroup namespace's view of cgroupfs per set, and the
//! clone(2) path (no CLONE_INTO_CGROUP: cgroup2 attached through cgroup.procs too).

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::Exercise;

use super::{CpuMax, HugetlbMax, LimitSpec, Limits};
use crate::matrix::spec_for;
use crate::spec::{CaseSpec, LauncherKind, RootfsMode};

pub const MIB: u64 = 1 << 20;

/// The limit cases, limited versions; `cpu` is the CPU the timing cases pin to, `cpus` all online.
/// The limit cases, named, for CPU `cpu` of the online `cpus`.
pub fn limit_cases(cpu: u32, cpus: &[u32]) -> Vec<(&'static str, LimitSpec)> {
    let l = |settings: Limits, exercise: Exercise| LimitSpec { settings, sibling: None, exercise };
    vec![
        (
            // memory.swap.max 0: on a host with swap, the limit must not be met by swapping out.
            "memory",
            l(
                Limits { memory_max: Some(64 * MIB), memory_swap_max: Some(0), ..Default::default() },
                Exercise::Memory { target: 192 * MIB, step: MIB },
            ),
        ),
        (
            "memory-swap",
            l(
                Limits { memory_max: Some(64 * MIB), memory_swap_max: Some(32 * MIB), ..Default::default() },
                Exercise::Memory { target: 192 * MIB, step: MIB },
            ),
        ),
        (
            // Page cache (reclaimable) four times memory.high: reclaimed down to it, never OOM.
            "memory-high",
            l(
                Limits { memory_high: Some(32 * MIB), ..Default::default() },
                Exercise::CacheRead { device: String::new(), bytes: 128 * MIB, block: MIB as u32 },
            ),
        ),
        (
            // The group (3 waiting members and an allocator) runs in the sibling, under its
            // memory.max; the control keeps the limit and drops memory.oom.group.
            "memory-oom-group",
            oom_group(Exercise::OomGroup { members: 3, target: 64 * MIB, step: MIB }),
        ),
        ("pids", l(Limits { pids_max: Some(16), ..Default::default() }, Exercise::Pids { target: 64 })),
        (
            // cpu.weight 10000 keeps other tasks on the pinned CPU from starving the control (see
            // CPU_CONTROL_MIN_FRACTION); the control keeps it and drops only cpu.max.
            "cpu-max",
            l(
                Limits {
                    cpu_max: Some(CpuMax { quota_us: 20_000, period_us: 100_000 }),
                    cpu_weight: Some(10_000),
                    ..Default::default()
                },
                Exercise::CpuBurn { cpu, window_ms: 1500 },
            ),
        ),
        (
            "cpu-weight",
            LimitSpec {
                settings: Limits { cpu_weight: Some(1000), ..Default::default() },
                sibling: Some(Limits { cpu_weight: Some(3000), ..Default::default() }),
                exercise: Exercise::CpuShare { cpu, window_ms: 1500 },
            },
        ),
        // cpu.max.burst, cpu.idle and cpu.weight.nice, each judged by what the group gets of the CPU.
        (
            // Quota 30 ms and burst 30 ms per 100 ms: one period after an idle spell gives 60 ms,
            // the control's 30 (see CPU_BURST_OVER_NS); cpu.weight 10000 as in cpu-max.
            "cpu-max-burst",
            l(
                Limits {
                    cpu_max: Some(CpuMax { quota_us: 30_000, period_us: 100_000 }),
                    cpu_max_burst: Some(30_000),
                    cpu_weight: Some(10_000),
                    ..Default::default()
                },
                Exercise::CpuBurst { cpu, quota_us: 30_000, period_us: 100_000, idle_periods: 3 },
            ),
        ),
        (
            // SCHED_IDLE's weight 3 against cpu.weight 10000 (102400); the control gives both
            // 10000 (cpu.weight is written first: the kernel refuses it on an idle group).
            "cpu-idle",
            LimitSpec {
                settings: Limits { cpu_idle: true, cpu_weight: Some(10_000), ..Default::default() },
                sibling: Some(Limits { cpu_weight: Some(10_000), ..Default::default() }),
                exercise: Exercise::CpuShare { cpu, window_ms: 1500 },
            },
        ),
        (
            // Nice -20 (88761) against -15 (29154): a share of 0.753; heavy weights, so that the
            // pair dominates other tasks on the CPU (see CPU_SHARE_MIN_PAIR).
            "cpu-weight-nice",
            LimitSpec {
                settings: Limits { cpu_weight_nice: Some(-20), ..Default::default() },
                sibling: Some(Limits { cpu_weight_nice: Some(-15), ..Default::default() }),
                exercise: Exercise::CpuShare { cpu, window_ms: 1500 },
            },
        ),
        (
            "cpuset-cpus",
            l(
                Limits { cpuset_cpus: Some(vec![cpu]), ..Default::default() },
                Exercise::Affinity { cpus: cpus.to_vec() },
            ),
        ),
        (
            "cpuset-mems",
            l(Limits { cpuset_mems: Some(vec![0]), ..Default::default() }, Exercise::Affinity { cpus: cpus.to_vec() }),
        ),
        (
            "devices",
            l(
                Limits { devices: Some(vec!["c 1:3 rwm".into()]), ..Default::default() },
                Exercise::Devices { paths: vec!["/dev/null".into(), "/dev/zero".into()] },
            ),
        ),
        ("freezer", l(Limits { freeze: true, ..Default::default() }, Exercise::Freezer { beat_ms: 5, hold_ms: 400 })),
        (
            "io-max",
            l(
                Limits { io_rbps: Some(4 * MIB), ..Default::default() },
                Exercise::IoRead { device: String::new(), block: 64 << 10, window_ms: 1500 },
            ),
        ),
        (
            // io.weight 100 against the sibling's 400 on the case's loop device under iocost: a
            // share of 0.2; the control gives both 400 (see iocost::edge_ns for the tolerance).
            "io-weight",
            LimitSpec {
                settings: Limits { io_weight: Some(100), ..Default::default() },
                sibling: Some(Limits { io_weight: Some(400), ..Default::default() }),
                exercise: Exercise::IoShare { device: String::new(), block: 64 << 10, window_ms: 2500 },
            },
        ),
        (
            "hugetlb",
            l(
                Limits { hugetlb_max: Some(HugetlbMax { page_size: 2 * MIB, pages: 2 }), ..Default::default() },
                Exercise::Hugetlb { page_size: 2 * MIB, pages: 4 },
            ),
        ),
        // cgroup2 process control on a forking group in the sibling (Linux 5.14 / 5.2).
        (
            "cgroup-kill",
            l(Limits { kill: true, ..Default::default() }, Exercise::KillGroup { loopers: 3, wait_ms: 1000 }),
        ),
        (
            "cgroup-freeze-group",
            l(Limits { freeze: true, ..Default::default() }, Exercise::FreezeGroup { loopers: 3, hold_ms: 300 }),
        ),
        ("net-cls", l(Limits { net_cls_classid: Some(0x0010_0001), ..Default::default() }, Exercise::NetClassid)),
        ("net-prio", l(Limits { net_prio_ifpriomap: Some("lo 5".into()), ..Default::default() }, Exercise::NetClassid)),
        (
            // cpu.weight 10000 keeps the burn's wall time close to its CPU time (a tighter bracket,
            // see PERF_TOL_NS).
            "perf-event",
            l(
                Limits { perf_event: true, cpu_weight: Some(10_000), ..Default::default() },
                Exercise::PerfCount { burn_ms: 200 },
            ),
        ),
    ]
}

/// A memory protection case (see `protect`) with the protected child's `settings`: the parent
/// (the sibling) at memory.max 64 MiB without swap, the keeper's 16 MiB of page cache, the
/// unprotected `cache` bytes (read twice) and the presser's `anon` bytes of anonymous memory.
fn protect(settings: Limits, cache: u64, anon: u64) -> LimitSpec {
    LimitSpec {
        settings,
        sibling: Some(Limits { memory_max: Some(64 * MIB), memory_swap_max: Some(0), ..Default::default() }),
        exercise: Exercise::MemoryProtect {
            device: String::new(),
            kept: 16 * MIB,
            cache,
            anon,
            block: 64 << 10,
            protected_dir: String::new(),
            cache_dir: String::new(),
            pressure_dir: String::new(),
        },
    }
}

/// The memory protection cases, each with its control, as root without namespaces (the keeper, the
/// cache reader and the presser move themselves into their cgroups). memory.min 32 MiB over the
/// keeper's 16 MiB and 56 MiB of anonymous memory: 72 MiB in 64, and nothing but the keeper's pages
/// reclaimable. memory.low 32 MiB beside 32 MiB of unprotected page cache and 32 MiB of anonymous
/// memory: 80 MiB in 64, the 16 MiB to reclaim all in the cache's pages.
pub fn protect_cases() -> Vec<(String, CaseSpec)> {
    let mut v = Vec::new();
    for (what, settings, cache, anon) in [
        ("memory-min", Limits { memory_min: Some(32 * MIB), ..Default::default() }, 0, 56 * MIB),
        ("memory-low", Limits { memory_low: Some(32 * MIB), ..Default::default() }, 32 * MIB, 32 * MIB),
    ] {
        let limited = protect(settings, cache, anon);
        v.push((format!("{what}/none/limited"), case(NsSet::EMPTY, limited.clone())));
        v.push((format!("{what}/none/control"), case(NsSet::EMPTY, limited.control())));
    }
    v
}

/// An OOM group `exercise` under the sibling: memory.max 32 MiB without swap, memory.oom.group 1
/// (the control drops only that).
fn oom_group(exercise: Exercise) -> LimitSpec {
    LimitSpec {
        settings: Limits::default(),
        sibling: Some(Limits {
            memory_max: Some(32 * MIB),
            memory_swap_max: Some(0),
            memory_oom_group: true,
            ..Default::default()
        }),
        exercise,
    }
}

/// memory.oom.group on a parent (the kernel's test_memcg_oom_group_parent_events, see
/// `oom_parent`), with its control (memory.oom.group 0 at the parent: the allocator dies alone),
/// as root without namespaces (the probe writes its children's pids into the parent's children).
/// The parent (the sibling) at memory.max 32 MiB without swap, an allocator of 64 MiB in its
/// child, two members beside it and one in the other child.
pub fn oom_parent_cases() -> Vec<(String, CaseSpec)> {
    let limited = oom_group(Exercise::OomGroupParent {
        members: 3,
        target: 64 * MIB,
        step: MIB,
        child_dir: String::new(),
        other_dir: String::new(),
    });
    vec![
        ("memory-oom-group-parent/none/limited".into(), case(NsSet::EMPTY, limited.clone())),
        ("memory-oom-group-parent/none/control".into(), case(NsSet::EMPTY, limited.control())),
    ]
}

/// The namespace sets every limit runs under.
pub fn ns_sets() -> [(&'static str, NsSet); 3] {
    [("none", NsSet::EMPTY), ("all", NsSet::ALL), ("user", NsSet::EMPTY.with(NsKind::User))]
}

/// A clone3 case on the host filesystem with `limits`.
pub fn case(ns: NsSet, limits: LimitSpec) -> CaseSpec {
    CaseSpec { limits: Some(limits), ..spec_for(ns, RootfsMode::Host, LauncherKind::Clone3) }
}

/// The exercise that looks at cgroupfs from inside (no limit set).
pub fn cgroup_view() -> LimitSpec {
    LimitSpec { settings: Limits::default(), sibling: None, exercise: Exercise::CgroupView { mount_at: None } }
}

/// A clone(2) case with every namespace and `limits`.
pub fn clone_case(limits: LimitSpec) -> CaseSpec {
    CaseSpec { limits: Some(limits), ..spec_for(NsSet::ALL, RootfsMode::Host, LauncherKind::Clone) }
}

/// Every case of the limit matrix with its name (`memory/none/limited`), for CPU `cpu` of `cpus`.
pub fn limit_matrix_on(cpu: u32, cpus: &[u32]) -> Vec<(String, CaseSpec)> {
    let mut v = Vec::new();
    let cases = limit_cases(cpu, cpus);
    for (ns_name, ns) in ns_sets() {
        for (what, limited) in &cases {
            v.push((format!("{what}/{ns_name}/limited"), case(ns, limited.clone())));
            v.push((format!("{what}/{ns_name}/control"), case(ns, limited.control())));
        }
        // With `all` the probe must see itself at the root, with the others the host's paths (each
        // set is the other's control).
        v.push((format!("cgroup-ns-view/{ns_name}"), case(ns, cgroup_view())));
    }
    if let Some((_, memory)) = cases.iter().find(|(n, _)| *n == "memory") {
        v.push(("memory/all-clone/limited".into(), clone_case(memory.clone())));
        v.push(("memory/all-clone/control".into(), clone_case(memory.control())));
    }
    v.push(("cgroup-ns-view/all-clone".into(), clone_case(cgroup_view())));
    v.extend(rule_cases());
    v.extend(protect_cases());
    v.extend(oom_parent_cases());
    v
}

/// The cgroup2 rule cases (see `rules`), each under the namespaces its rule is about: delegation
/// to the probe's user (a user and a cgroup namespace) and its control (not delegated); nsdelegate
/// seen by a root probe in a cgroup namespace (with and without it: one of the two skips on any
/// host) and its control outside one; the no-internal-process and threaded rules and test_core's
/// core rules (`core_rules`) as root.
pub fn rule_cases() -> Vec<(String, CaseSpec)> {
    use isoprobe_probes::wire::CgroupRules as R;
    let rules = |rules: R, delegate: bool| LimitSpec {
        settings: Limits { delegate, ..Default::default() },
        sibling: None,
        exercise: Exercise::CgroupRules { rules, case_dir: String::new(), sibling_dir: String::new() },
    };
    let cgroup = NsSet::EMPTY.with(NsKind::Cgroup);
    let user_cgroup = cgroup.with(NsKind::User);
    let delegation = |n| R::Delegation { nsdelegate: n };
    [
        ("cgroup-delegation/user-cgroup/delegated", user_cgroup, rules(delegation(None), true)),
        ("cgroup-delegation/user-cgroup/control", user_cgroup, rules(delegation(None), false)),
        ("cgroup-nsdelegate/cgroup/nsdelegate", cgroup, rules(delegation(Some(true)), false)),
        ("cgroup-nsdelegate/cgroup/no-nsdelegate", cgroup, rules(delegation(Some(false)), false)),
        ("cgroup-nsdelegate/none/control", NsSet::EMPTY, rules(delegation(None), false)),
        ("cgroup-internal-process/none", NsSet::EMPTY, rules(R::InternalProcess { controller: String::new() }, false)),
        ("cgroup-threaded/none", NsSet::EMPTY, rules(R::Threaded, false)),
        (
            "cgroup-threaded-controllers/none",
            NsSet::EMPTY,
            rules(R::ThreadedControllers { threaded: "pids".into(), domain: "memory".into() }, false),
        ),
        // The core rules of the kernel's test_core, each with its control inside the case.
        ("cgroup-top-down/none", NsSet::EMPTY, rules(R::TopDown { controller: String::new() }, false)),
        ("cgroup-invalid-domain/none", NsSet::EMPTY, rules(R::InvalidDomain, false)),
        ("cgroup-populated/none", NsSet::EMPTY, rules(R::Populated, false)),
        ("cgroup-open-credentials/none", NsSet::EMPTY, rules(R::OpenCredentials, false)),
        ("cgroup-proc-migration/none", NsSet::EMPTY, rules(R::ProcMigration, false)),
        ("cgroup-parent-threaded/none", NsSet::EMPTY, rules(R::ParentThreaded, false)),
    ]
    .into_iter()
    .map(|(name, ns, l)| (name.to_owned(), case(ns, l)))
    .collect()
}

/// [`limit_matrix_on`] for the last online CPU of this machine.
pub fn limit_matrix() -> Vec<(String, CaseSpec)> {
    let cpus = super::case::online_cpus().unwrap_or_else(|_| vec![0]);
    let cpu = *cpus.last().unwrap_or(&0);
    limit_matrix_on(cpu, &cpus)
}
