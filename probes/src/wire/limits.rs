//! The cgroup-limit part of the protocol (wire version 2): the exercises a probe runs into its
//! cgroup's limits, the questions it asks the host about the case's cgroups, and its reports.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SysResult;
use super::tagged::tagged;

/// What the probe does in a limit case to run into its cgroup's limits. Every exercise is the
/// same with and without the limit (the control); only what the kernel lets it do differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum Exercise {
    /// A child maps and touches `step` bytes at a time up to `target`, reporting each step.
    Memory { target: u64, step: u64 },
    /// Fork children that wait, until fork fails or `target` children exist.
    Pids { target: u32 },
    /// Burn CPU on `cpu` for `window_ms` of wall-clock time.
    CpuBurn { cpu: u32, window_ms: u32 },
    /// Burn CPU on `cpu` for `window_ms` together with a forked competitor that the host moves
    /// into the case's sibling cgroup.
    CpuShare { cpu: u32, window_ms: u32 },
    /// sched_getaffinity(2), then sched_setaffinity(2) to each of `cpus` alone.
    Affinity { cpus: Vec<u32> },
    /// open(2) each path for reading and writing.
    Devices { paths: Vec<String> },
    /// A child writes a heartbeat every `beat_ms`; meanwhile the host holds the cgroup (frozen,
    /// or not in the control) for `hold_ms`.
    Freezer { beat_ms: u32, hold_ms: u32 },
    /// O_DIRECT reads of `block` bytes from the block device `device` for `window_ms`.
    IoRead { device: String, block: u32, window_ms: u32 },
    /// /proc/self/cgroup, and with a mount namespace a cgroup2 mount of its own at `mount_at`.
    CgroupView { mount_at: Option<String> },
    /// The class id of a TCP socket of its own, as sock_diag reports it.
    NetClassid,
    /// Burn `burn_ms` of CPU while the host counts cpu-clock for a cgroup with perf_event.
    PerfCount { burn_ms: u32 },
    /// A child maps `pages` huge pages of `page_size` bytes and touches them one by one.
    Hugetlb { page_size: u64, pages: u32 },
    /// `loopers` children, moved by the host into the case's sibling cgroup, fork short-lived
    /// children without pause; the host kills the sibling (cgroup.kill, or nothing in the
    /// control) and waits up to `wait_ms` for it to empty.
    KillGroup { loopers: u32, wait_ms: u32 },
    /// The same forking group in the sibling; the host freezes it (cgroup.freeze, or nothing in
    /// the control) for `hold_ms`, moves one looper out to the case's own cgroup and back, then
    /// thaws.
    FreezeGroup { loopers: u32, hold_ms: u32 },
    /// Buffered reads of `bytes` from the block device `device` (the case's own loop device) in
    /// reads of `block` bytes: page cache charged to the probe's cgroup, all of it reclaimable.
    CacheRead { device: String, bytes: u64, block: u32 },
    /// `members` children that wait, and one that maps and touches `target` bytes `step` at a
    /// time, all moved by the host into the case's sibling cgroup (where the memory limit is)
    /// before the allocation starts.
    OomGroup { members: u32, target: u64, step: u64 },
    /// The same group one level down (the kernel's test_memcg_oom_group_parent_events): the case's
    /// sibling is the parent, with the memory limit (and memory.oom.group), and has two children
    /// the harness makes and fills in: `child_dir`, where the allocator and every member but the
    /// first go, and `other_dir`, where the first member goes (the selftest's process in the
    /// parent itself; a parent that enables memory for its children may hold no process). The
    /// probe writes each pid into its cgroup.procs before the allocation starts.
    OomGroupParent { members: u32, target: u64, step: u64, child_dir: String, other_dir: String },
    /// cgroup2's structural rules (cgroup-v2.rst): the probe writes cgroup core files of the
    /// case's cgroup (`case_dir`, where it runs) and of its empty sibling (`sibling_dir`), both
    /// paths as the probe sees them (the harness fills them in), and reports what each write gave.
    CgroupRules { rules: CgroupRules, case_dir: String, sibling_dir: String },
    /// cpu.max.burst: pinned to `cpu`, find the group's cpu.max period boundaries (a throttle
    /// ends at one; the period is `period_us`, the quota `quota_us`: no throttle lasts much longer
    /// than their difference), sleep `idle_periods` periods (the group saves its unused quota, up
    /// to the burst), then burn from just after a boundary to just before the next one, and redo
    /// all of it when the throttle that ends the burn does not end on the planned boundary.
    CpuBurst { cpu: u32, quota_us: u64, period_us: u64, idle_periods: u32 },
    /// io.weight: `IO_READERS` O_DIRECT readers of `block` bytes in the case's cgroup and as many
    /// moved by the host into its sibling, all reading the block device `device` (the case's own
    /// loop device, which the host puts under iocost) for `window_ms`.
    IoShare { device: String, block: u32, window_ms: u32 },
    /// memory.low / memory.min (cgroup-v2.rst, "Memory Interface Files"): a keeper child moves
    /// itself into `protected_dir` and reads `kept` bytes of the block device `device` (page cache,
    /// the device held open), then, where `cache` is not 0, a cache reader in `cache_dir` reads
    /// `cache` bytes further on twice (its pages then are recently used, the keeper's not); then a
    /// presser moves into `pressure_dir` and maps and touches `anon` bytes of anonymous memory.
    /// The directories are children of the case's sibling, whose memory.max is below the sum and
    /// which has no swap: only page cache can be reclaimed. The harness makes them (and protects
    /// the first) and fills in the paths and the device.
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
tagged!(Exercise, "exercise");

/// Which of cgroup2's structural rules a [`Exercise::CgroupRules`] case runs into; the step names
/// of each are in [`rule_step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum CgroupRules {
    /// "Delegation" and "Delegation Containment": make a child and move in and back, write the
    /// delegation root's own resource file, leave for the sibling (and come back if let).
    /// `nsdelegate`: whether the hierarchy is expected to be mounted with it (absent: the case
    /// does not depend on it).
    Delegation { nsdelegate: Option<bool> },
    /// "No Internal Process Constraint", with the domain controller `controller` (the harness
    /// picks one cgroup2 delegates to isoprobe's cgroups).
    InternalProcess { controller: String },
    /// "Threads": a threaded subtree under the case's cgroup, one thread of the probe moved
    /// between its threaded cgroups and refused by a domain.
    Threaded,
    /// Threaded (`threaded`: pids) and domain-only (`domain`: memory) controllers in a threaded
    /// domain with processes.
    ThreadedControllers { threaded: String, domain: String },
    /// The top-down constraint (cgroup-v2.rst, "Top-down Constraint"), with `controller` (the
    /// harness picks one cgroup2 enables for isoprobe's cgroups): enabled in a child's
    /// subtree_control only where its parent enables it, disabled in a parent only where no child
    /// enables it.
    TopDown { controller: String },
    /// A domain child of a cgroup made threaded is "domain invalid" and refuses processes until it
    /// is made threaded too (test_core's test_cgcore_invalid_domain).
    InvalidDomain,
    /// cgroup.events `populated` of a cgroup and of its parent while a process is in it, and after
    /// it exited (with the poll(2) notification of the change), and rmdir of the populated and of
    /// the emptied cgroup (test_cgcore_populated, test_cgcore_destroy).
    Populated,
    /// "open-time credentials" (cgroup-v2.rst, "Delegation Containment"): a cgroup.procs write is
    /// checked with the credentials of the file's opener, not the writer's (test_core's
    /// test_cgcore_lesser_euid_open), both ways.
    OpenCredentials,
    /// "Threads": a multi-threaded process written to cgroup.procs moves with all its threads
    /// (test_core's test_cgcore_proc_migration); its control, one thread written to
    /// cgroup.threads in a threaded subtree, moves that thread alone (test_cgcore_thread_migration).
    ProcMigration,
    /// A cgroup whose child is made threaded becomes a thread root: its cgroup.type reads "domain
    /// threaded" (test_core's test_cgcore_parent_becomes_threaded); "domain" before, its control,
    /// and again once the threaded child is gone.
    ParentThreaded,
}
tagged!(CgroupRules, "rules");

impl CgroupRules {
    pub fn name(&self) -> &'static str {
        match self {
            CgroupRules::Delegation { nsdelegate: None } => "delegation",
            CgroupRules::Delegation { nsdelegate: Some(true) } => "delegation-nsdelegate",
            CgroupRules::Delegation { nsdelegate: Some(false) } => "delegation-no-nsdelegate",
            CgroupRules::InternalProcess { .. } => "internal-process",
            CgroupRules::Threaded => "threaded",
            CgroupRules::ThreadedControllers { .. } => "threaded-controllers",
            CgroupRules::TopDown { .. } => "top-down",
            CgroupRules::InvalidDomain => "invalid-domain",
            CgroupRules::Populated => "populated",
            CgroupRules::OpenCredentials => "open-credentials",
            CgroupRules::ProcMigration => "proc-migration",
            CgroupRules::ParentThreaded => "parent-threaded",
        }
    }
}

/// The steps of the [`CgroupRules`] exercises, in the order the probe takes them.
pub mod rule_step {
    /// Delegation: mkdir a child of the case's cgroup, write 0 to its cgroup.procs, 0 to the
    /// case's cgroup.procs (back), rmdir it.
    pub const MKDIR_CHILD: &str = "mkdir-child";
    pub const ENTER_CHILD: &str = "enter-child";
    pub const BACK_TO_ROOT: &str = "back-to-root";
    pub const RMDIR_CHILD: &str = "rmdir-child";
    /// Delegation: write `max` to the case's own cgroup.max.depth (a file of the parent's).
    pub const ROOT_RESOURCE: &str = "write-root-max-depth";
    /// Delegation: 0 to the sibling's cgroup.procs (out of the subtree), and back if that moved.
    pub const LEAVE_SUBTREE: &str = "leave-subtree";
    pub const RETURN: &str = "return";
    /// Internal process: `+controller` in the case's (populated) subtree_control, then in the
    /// sibling's (empty); 0 into the sibling's cgroup.procs with it enabled; `-controller`; 0 into
    /// it again; back to the case's cgroup.
    pub const ENABLE_POPULATED: &str = "enable-in-populated";
    pub const ENABLE_EMPTY: &str = "enable-in-empty";
    pub const JOIN_ENABLED: &str = "join-enabled";
    pub const DISABLE_EMPTY: &str = "disable-in-empty";
    pub const JOIN_PLAIN: &str = "join-plain";
    /// Threaded: two children of the case's cgroup made `threaded`, a thread moved into one, to
    /// the other, refused by the sibling (a domain), back to the case's cgroup; `domain` written
    /// back to a threaded cgroup's cgroup.type.
    pub const MAKE_THREADED: &str = "make-threaded";
    pub const THREAD_IN: &str = "thread-into-threaded";
    pub const THREAD_ACROSS: &str = "thread-to-sibling-threaded";
    pub const THREAD_TO_DOMAIN: &str = "thread-to-domain";
    pub const THREAD_BACK: &str = "thread-back";
    pub const UNTHREAD: &str = "type-back-to-domain";
    /// Threaded controllers: the threaded one in the populated domain (before any threaded
    /// child: it becomes a thread root), then once it has a threaded child; the domain one
    /// there, and in the empty sibling.
    pub const THREADED_IN_DOMAIN: &str = "threaded-ctrl-in-populated-domain";
    pub const THREADED_IN_THREADED: &str = "threaded-ctrl-in-threaded-domain";
    pub const DOMAIN_IN_THREADED: &str = "domain-ctrl-in-threaded-domain";
    pub const DOMAIN_IN_EMPTY: &str = "domain-ctrl-in-empty-domain";
    /// Top-down: `+controller` in a child of the empty sibling while the sibling does not enable
    /// it; then in the sibling and in the child; `-controller` in the sibling while the child
    /// enables it; then in the child and in the sibling.
    pub const ENABLE_UNDER_DISABLED: &str = "enable-under-disabled-parent";
    pub const ENABLE_IN_PARENT: &str = "enable-in-parent";
    pub const ENABLE_UNDER_ENABLED: &str = "enable-under-enabled-parent";
    pub const DISABLE_OVER_ENABLED: &str = "disable-over-enabled-child";
    pub const DISABLE_IN_CHILD: &str = "disable-in-child";
    pub const DISABLE_IN_PARENT: &str = "disable-in-parent";
    /// Invalid domain: a child of the sibling with a domain child of its own, made threaded; the
    /// grandchild's cgroup.type; the probe's 0 into its cgroup.procs; the grandchild made
    /// threaded, its cgroup.type and the same write; back to the case's cgroup.
    pub const MAKE_PARENT_THREADED: &str = "make-parent-threaded";
    pub const INVALID_TYPE: &str = "type-of-domain-under-threaded";
    pub const JOIN_INVALID: &str = "join-invalid-domain";
    pub const MAKE_CHILD_THREADED: &str = "make-child-threaded";
    pub const THREADED_TYPE: &str = "type-of-threaded-child";
    pub const JOIN_THREADED: &str = "join-threaded-child";
    /// Populated: a child of the sibling made; a waiting child process of the probe moved in;
    /// `populated` of the cgroup and of the sibling; rmdir (refused); the process released and
    /// reaped; the poll(2) notification on the cgroup's cgroup.events; `populated` of both
    /// again; rmdir.
    pub const MKDIR_POPULATED: &str = "mkdir";
    pub const MOVE_IN: &str = "move-process-in";
    pub const POPULATED_WHILE_IN: &str = "populated-while-in";
    pub const PARENT_WHILE_IN: &str = "parent-populated-while-in";
    pub const RMDIR_POPULATED: &str = "rmdir-populated";
    pub const EVENTS_NOTIFIED: &str = "events-notified-on-exit";
    pub const POPULATED_AFTER_EXIT: &str = "populated-after-exit";
    pub const PARENT_AFTER_EXIT: &str = "parent-populated-after-exit";
    pub const RMDIR_EMPTIED: &str = "rmdir-emptied";
    /// Open credentials: the sibling's cgroup.procs chowned to `nobody`; a child of the probe
    /// opens it as `nobody` and writes 0 to it as root, then opens it as root and writes 0 to it
    /// as `nobody`.
    pub const CHOWN_PROCS: &str = "chown-procs-to-nobody";
    pub const OPEN_AS_NOBODY: &str = "open-as-nobody";
    pub const OPENED_LESSER: &str = "opened-as-nobody-written-as-root";
    pub const OPENED_ROOT: &str = "opened-as-root-written-as-nobody";
    /// Process migration: a child of the sibling; the probe with its helper threads written to
    /// its cgroup.procs (by the pid 0: the writer's process); how many of the probe's threads
    /// `/proc/self/task/<tid>/cgroup` places there (`"<in> of <all>"`); back to the case's cgroup.
    /// The control: a threaded child of the case's cgroup; one helper thread written to its
    /// cgroup.threads; how many threads are there then; the thread back.
    pub const MOVE_PROCESS: &str = "move-process-to-domain";
    pub const THREADS_MOVED: &str = "threads-in-domain-after-procs";
    pub const THREAD_MOVED_ALONE: &str = "threads-in-threaded-after-threads";
    /// Parent becomes threaded: a child of the sibling with a child of its own; the child's
    /// cgroup.type; the grandchild made threaded; the child's and the grandchild's cgroup.type;
    /// the grandchild removed; the child's cgroup.type again.
    pub const PARENT_TYPE_BEFORE: &str = "type-of-parent-before";
    pub const MAKE_GRANDCHILD_THREADED: &str = "make-grandchild-threaded";
    pub const PARENT_TYPE_THREADED: &str = "type-of-parent-with-threaded-child";
    pub const GRANDCHILD_TYPE: &str = "type-of-threaded-grandchild";
    pub const RMDIR_GRANDCHILD: &str = "rmdir-threaded-grandchild";
    pub const PARENT_TYPE_AFTER: &str = "type-of-parent-after";
    /// The child cgroups the probe makes (isoprobe-named: the host removes what is left).
    pub const CHILD: &str = "isoprobe-rules-child";
    pub const GRANDCHILD: &str = "isoprobe-rules-grandchild";
    pub const THREADED_A: &str = "isoprobe-rules-ta";
    pub const THREADED_B: &str = "isoprobe-rules-tb";
}

impl Exercise {
    pub fn name(&self) -> &'static str {
        match self {
            Exercise::Memory { .. } => "memory",
            Exercise::Pids { .. } => "pids",
            Exercise::CpuBurn { .. } => "cpu-burn",
            Exercise::CpuShare { .. } => "cpu-share",
            Exercise::Affinity { .. } => "affinity",
            Exercise::Devices { .. } => "devices",
            Exercise::Freezer { .. } => "freezer",
            Exercise::IoRead { .. } => "io-read",
            Exercise::CgroupView { .. } => "cgroup-view",
            Exercise::NetClassid => "net-classid",
            Exercise::PerfCount { .. } => "perf-count",
            Exercise::Hugetlb { .. } => "hugetlb",
            Exercise::KillGroup { .. } => "kill-group",
            Exercise::FreezeGroup { .. } => "freeze-group",
            Exercise::CacheRead { .. } => "cache-read",
            Exercise::OomGroup { .. } => "oom-group",
            Exercise::OomGroupParent { .. } => "oom-group-parent",
            Exercise::CgroupRules { rules, .. } => rules.name(),
            Exercise::CpuBurst { .. } => "cpu-burst",
            Exercise::IoShare { .. } => "io-share",
            // A report names cases by their spec: the memory.min and memory.low controls differ here.
            Exercise::MemoryProtect { cache: 0, .. } => "memory-protect",
            Exercise::MemoryProtect { .. } => "memory-protect-beside-cache",
        }
    }
}

/// How a child of the probe ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum ChildEnd {
    Exited { code: i32 },
    Killed { signal: i32, name: String },
}
tagged!(ChildEnd, "end");

impl fmt::Display for ChildEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildEnd::Exited { code } => write!(f, "exit {code}"),
            ChildEnd::Killed { name, .. } => write!(f, "killed by {name}"),
        }
    }
}

/// The counters of the case's cgroups as the host read them (absent: not kept by this layout).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct CgroupReading {
    /// memory.peak (v2) or memory.max_usage_in_bytes (v1), bytes.
    pub memory_peak: Option<u64>,
    /// memory.events oom_kill (v2) or memory.oom_control oom_kill (v1).
    pub memory_oom_kills: Option<u64>,
    /// pids.current.
    pub pids_current: Option<u64>,
    /// pids.events max: forks refused at pids.max.
    pub pids_refused: Option<u64>,
    /// cpuacct.usage (v1), or cpu.stat usage_usec on a v2-only host, nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// cgroup2's core cpu.stat usage_usec in nanoseconds (every cgroup2 cgroup has it).
    pub v2_usage_ns: Option<u64>,
    /// cpu.stat nr_periods, nr_throttled, throttled time (ns).
    pub cpu_periods: Option<u64>,
    pub cpu_throttled: Option<u64>,
    pub cpu_throttled_ns: Option<u64>,
    /// The hugetlb usage peak of the exercised page size, bytes (v1 max_usage_in_bytes).
    pub hugetlb_peak: Option<u64>,
    /// The probe's CPU time when the harness had attached it through cgroup.procs (read from
    /// `/proc/<pid>/schedstat` right after): cgroups joined that way did not see that much of it.
    /// In a cgroup a container tool made: the probe's runtime less the cgroup's usage when the
    /// host adopted it, where positive (the tool placed the probe after it had started).
    pub attached_after_ns: Option<u64>,
    /// In a cgroup a container tool made: the CPU time charged to it by processes that are
    /// neither the probe nor its descendants — the tool's setup processes that exited before the
    /// probe ran (runc's init stages) and its init (lxc-init) — which the cgroup's usage counts and
    /// the probe's rusage does not. The host takes it when it adopts the cgroup (usage less the
    /// probe's runtime, from `/proc/<pid>/schedstat`, both at rest) plus what the other live
    /// processes ran since.
    pub others_ns: Option<u64>,
    /// cgroup2's cpu.pressure and io.pressure `some` totals, microseconds (absent without PSI).
    pub cpu_pressure_some_us: Option<u64>,
    pub io_pressure_some_us: Option<u64>,
    /// cgroup2's memory.swap.peak (Linux 6.5) and memory.swap.events `max` (swap-outs refused
    /// at memory.swap.max), absent without them.
    pub memory_swap_peak: Option<u64>,
    pub memory_swap_max_events: Option<u64>,
    /// The hypervisor's steal time summed over every CPU (/proc/stat), nanoseconds: time a task
    /// sat on a virtual CPU the hypervisor was running something else on. PSI counts such a task
    /// as running, and with paravirt steal accounting cpu.max does not charge it. Absent where
    /// /proc/stat has no steal column.
    pub steal_ns: Option<u64>,
}

/// A question about the case's cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum LimitQuestion {
    /// Read the case cgroups' counters now.
    Read,
    /// Hold the case cgroup for `hold_ms`: frozen when the case freezes it, running otherwise.
    Hold { hold_ms: u32 },
    /// Move the process that is `pid` in the probe's pid namespace into the sibling cgroup.
    MoveToSibling { pid: i32 },
    /// Start counting cpu-clock for the cgroup the case names (perf_event, cgroup mode).
    PerfStart,
    /// Stop counting and report.
    PerfStop,
    /// Kill the sibling cgroup through cgroup.kill when the case kills (nothing in the control),
    /// then wait up to `wait_ms` for cgroup.events to say `populated 0`.
    SiblingKill { wait_ms: u32 },
    /// Freeze (or thaw) the sibling through cgroup.freeze when the case freezes (nothing in the
    /// control), and wait for cgroup.events to confirm.
    SiblingFreeze { frozen: bool },
    /// Read the sibling's cgroup.events and cgroup.procs.
    SiblingState,
    /// Move the process that is `pid` in the probe's pid namespace from the sibling back into the
    /// case's own cgroup.
    MoveToCase { pid: i32 },
    /// Read the cgroup2 memory counters of the case's cgroup, or of its sibling.
    ReadMemory { sibling: bool },
}
tagged!(LimitQuestion, "ask");

/// One of cgroup2's memory.events files (absent: not read, or no such key on this kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct MemoryEvents {
    /// Times usage went over memory.high (and the cgroup was throttled and reclaimed).
    pub high: Option<u64>,
    /// Times usage was about to go over memory.max.
    pub max: Option<u64>,
    /// Times the cgroup hit its limit and the OOM killer was invoked or allocation failed.
    pub oom: Option<u64>,
    /// Processes killed by the OOM killer.
    pub oom_kill: Option<u64>,
    /// Times the whole group was killed (memory.oom.group).
    pub oom_group_kill: Option<u64>,
}

/// A cgroup2 memory reading: memory.current, memory.peak, memory.events (the cgroup and its
/// descendants) and memory.events.local (the cgroup alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct MemoryCounters {
    pub current: Option<u64>,
    pub peak: Option<u64>,
    pub events: MemoryEvents,
    pub local: MemoryEvents,
    /// memory.pressure `some` and `full` totals, microseconds (absent without PSI).
    pub pressure_some_us: Option<u64>,
    pub pressure_full_us: Option<u64>,
}

/// The sibling cgroup as the host read it (cgroup2: cgroup.events and cgroup.procs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct GroupState {
    /// cgroup.events `populated`.
    pub populated: Option<bool>,
    /// cgroup.events `frozen`.
    pub frozen: Option<bool>,
    /// Processes listed in cgroup.procs.
    pub procs: u32,
}

/// What the host did to the sibling and how long it waited for the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct GroupAction {
    /// Whether it wrote the control file (the limited case) or only waited (the control).
    pub acted: bool,
    /// Whether cgroup.events reached the state asked for (populated 0; frozen 1 or 0) in time.
    pub confirmed: bool,
    pub waited_ns: u64,
    /// The sibling right after the wait.
    pub state: GroupState,
}

/// How the probe's forking group ended, as the probe reaped it (it is their subreaper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct GroupEnds {
    /// The loopers: killed by SIGKILL, exited 0 (they exit 0 when released), any other end.
    pub killed: u32,
    pub exited: u32,
    pub other: u32,
    /// Their short-lived children reaped by the probe (orphaned when their looper ended first): by
    /// SIGKILL, or otherwise (one that had exited before its looper was killed or released keeps
    /// its exit status).
    pub strays_killed: u32,
    pub strays_other: u32,
}

/// The host's answer to a [`LimitQuestion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum LimitAnswer {
    Reading {
        reading: Box<CgroupReading>,
    },
    /// `frozen`: whether the cgroup was frozen (the kernel confirmed it) during the hold.
    Held {
        frozen: bool,
        held_ns: u64,
    },
    Moved,
    /// Counting started.
    Started,
    PerfCount {
        ns: u64,
    },
    Group {
        action: GroupAction,
    },
    State {
        state: GroupState,
    },
    Memory {
        counters: Box<MemoryCounters>,
    },
}
tagged!(LimitAnswer, "limit");

/// What a limit exercise met: raw evidence, no verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum ExerciseReport {
    Memory {
        /// Bytes touched when the child last reported a finished step.
        touched: u64,
        child: ChildEnd,
        before: CgroupReading,
        after: CgroupReading,
    },
    Pids {
        /// pids.current before the first fork.
        before: CgroupReading,
        forks: u32,
        /// The failed fork, if one failed.
        refused: Option<SysResult>,
        /// Read by the host while every child was alive.
        at_stop: CgroupReading,
    },
    CpuBurn {
        /// Pinning to the exercise's cpu.
        pinned: SysResult,
        wall_ns: u64,
        /// CLOCK_PROCESS_CPUTIME_ID over the window.
        cpu_ns: u64,
        /// getrusage(RUSAGE_SELF) user + system at the end, nanoseconds.
        rusage_ns: u64,
        /// The same, taken again once the host's `after` reading arrived: the host read the
        /// cgroup between the two.
        rusage_after_ns: u64,
        before: CgroupReading,
        after: CgroupReading,
    },
    CpuShare {
        pinned: SysResult,
        wall_ns: u64,
        /// CPU time of the probe and of the competitor over the common window.
        mine_ns: u64,
        competitor_ns: u64,
    },
    Affinity {
        /// sched_getaffinity(2) at the start.
        allowed: Vec<u32>,
        /// sched_setaffinity(2) to each cpu alone.
        set: Vec<CpuAttempt>,
    },
    Devices {
        opens: Vec<OpenAttempt>,
    },
    Freezer {
        beats: u32,
        /// The longest gap between two heartbeats, and how many came after it.
        max_gap_ns: u64,
        beats_after_gap: u32,
        /// The longest gap between two heartbeats less the time the beating child spent
        /// runnable but waiting for a CPU meanwhile (its run queue delay, the second field of
        /// /proc/thread-self/schedstat): how long it was stopped rather than starved. A frozen
        /// task is not runnable, so a freeze shows here whole, while a busy machine's wait for a
        /// CPU does not. `None` where the kernel keeps no schedstat (no CONFIG_SCHED_INFO).
        #[serde(default)]
        max_stopped_ns: Option<u64>,
        /// The host's account of the hold.
        frozen: bool,
        held_ns: u64,
    },
    IoRead {
        bytes: u64,
        /// From the start until the last reader's last read returned.
        wall_ns: u64,
        /// While every reader was reading: from the last reader's first read until the first
        /// reader's last read returned (a reader the scheduler kept off the CPU at either end
        /// queued nothing at the throttle then).
        all_reading_ns: u64,
        /// Over all readers: the slowest read, from its issue to its return (a read waits at the
        /// throttle for the others' turns, about IO_READERS blocks at the limit; much longer is a
        /// device or a dispatch that stalled), and the longest pause between a read's return and
        /// the reader's next issue (a reader kept off the CPU, with nothing queued).
        longest_read_ns: u64,
        longest_pause_ns: u64,
        /// The read that ended the window early, if one failed.
        error: Option<SysResult>,
        /// The case's cgroups before the readers started and after they all ended.
        before: CgroupReading,
        after: CgroupReading,
    },
    CgroupView {
        /// /proc/self/cgroup.
        lines: Vec<String>,
        /// With a mount of its own: whether the mount's root cgroup.procs lists the probe itself.
        mount_root_holds_self: Option<bool>,
        /// What mounting cgroup2 gave (`ok` or the errno), when it was tried.
        mount: Option<SysResult>,
    },
    NetClassid {
        classid: u32,
    },
    PerfCount {
        /// CLOCK_PROCESS_CPUTIME_ID and CLOCK_MONOTONIC from the host's start answer to the stop
        /// question.
        cpu_ns: u64,
        wall_ns: u64,
        counted_ns: u64,
    },
    Hugetlb {
        touched_pages: u32,
        child: ChildEnd,
        mapped: SysResult,
    },
    KillGroup {
        loopers: u32,
        /// The group's activity (its loopers' turns, each a fork or a wait, and its children's
        /// exits) before the probe asked for the kill, and by the host's answer.
        activity_before: u64,
        activity_at_answer: u64,
        kill: GroupAction,
        ends: GroupEnds,
    },
    FreezeGroup {
        loopers: u32,
        hold_ms: u32,
        hold: FrozenHold,
        migration: Migration,
        ends: GroupEnds,
    },
    CacheRead {
        read: u64,
        wall_ns: u64,
        /// The read that ended the exercise early, if one failed.
        error: Option<SysResult>,
        before: MemoryCounters,
        after: MemoryCounters,
    },
    OomGroup {
        members: u32,
        /// Bytes the allocator touched by its last finished step, and how it ended.
        touched: u64,
        allocator: ChildEnd,
        /// The waiting members, reaped after the allocator: killed by SIGKILL, exited 0 (when
        /// released), or otherwise.
        members_killed: u32,
        members_exited: u32,
        members_other: u32,
        /// The sibling's counters before the allocation and after the allocator ended.
        before: MemoryCounters,
        after: MemoryCounters,
    },
    CgroupRules {
        steps: Vec<RuleStep>,
    },
    CpuBurst {
        pinned: SysResult,
        /// The throttle the boundaries were found from: how long it held the probe off the CPU.
        aligned_gap_ns: u64,
        /// How much later than planned (just after a boundary) the burn started.
        late_ns: u64,
        /// The burn, from its start until the probe saw the window's end (a throttle that lasts
        /// past it ends at the next boundary), and the CPU time it got.
        window_ns: u64,
        cpu_ns: u64,
        /// The longest time off the CPU within the burn (the throttle, once the budget ran out).
        max_gap_ns: u64,
        /// Whether the window's last gap, the one across its end, was the closing throttle (at
        /// least [`CPU_BURST_END_THROTTLE_NS`] off the CPU): the budget ran out inside the window.
        /// Absent (an older probe): false, a burn the probe would have redone. (`no_params`:
        /// proptest-derive 0.6 types an eleventh parameter of a variant as a flat tuple but binds
        /// it nested, and a bool has none to give.)
        #[serde(default)]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(no_params))]
        ended_throttled: bool,
        /// Periods the kernel counted the group throttled in (cpu.stat `nr_throttled`, read by
        /// the host) from just before the idle periods until just after the window's closing
        /// throttle, when the window ended in one (absent: not read, or the host has no count).
        /// The closing throttle counts one; a steal as long as a throttle counts none.
        #[serde(default)]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(no_params))]
        window_throttles: Option<u64>,
        /// The throttle that ends the burn (the one across the window's end, else the next one
        /// within two periods; 0: none), and where it ended against the nearest planned boundary
        /// (negative: before it).
        end_gap_ns: u64,
        end_offset_ns: i64,
        /// Alignments tried (each up to its burn's end check), and the gaps the alignments refused
        /// for lasting longer than a throttle can (over all attempts).
        attempts: u32,
        refused_gaps: u32,
    },
    IoShare {
        /// Bytes each side's readers read in the span every reader of both sides was reading
        /// (whole buckets of `IO_SHARE_BUCKET_NS` inside it), and that span.
        mine_bytes: u64,
        sibling_bytes: u64,
        span_ns: u64,
        /// From the go until the last reader's last read returned, and everything each side read.
        wall_ns: u64,
        mine_total: u64,
        sibling_total: u64,
        /// The read that ended a reader early, if one failed.
        error: Option<SysResult>,
    },
    MemoryProtect {
        /// Bytes the keeper and the cache reader read (each pass of the cache reader counted), the
        /// first read that failed, and the bytes of anonymous memory the presser touched.
        kept_read: u64,
        cache_read: u64,
        error: Option<SysResult>,
        anon_touched: u64,
        /// How the presser ended (an OOM kill is SIGKILL).
        presser: ChildEnd,
        counters: ProtectCounters,
    },
}
tagged!(ExerciseReport, "exercise");

/// The counters of a [`ExerciseReport::MemoryProtect`]: memory.current of the protected cgroup
/// and of the cache's once both had read (before the pressure) and after the presser ended, of
/// the pressure's cgroup then, and the protected cgroup's memory.events `low` then (reclaims of it
/// under its memory.low, which the kernel makes only when nothing else was reclaimable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ProtectCounters {
    pub protected_before: u64,
    pub protected_after: u64,
    pub cache_before: u64,
    pub cache_after: u64,
    pub pressure_after: u64,
    pub protected_low_events: u64,
}

/// The width of the time buckets an [`Exercise::IoShare`] reader counts its bytes in: the span
/// every reader was reading is cut to whole buckets, the same for both sides.
pub const IO_SHARE_BUCKET_NS: u64 = 10_000_000;

/// One step of a [`CgroupRules`] exercise: its name (see [`rule_step`]) and what the kernel gave
/// (absent: not taken, as an earlier step it needs failed); for a read, the value read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct RuleStep {
    pub step: String,
    pub result: Option<SysResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The freeze and thaw of a forking group, each phase observed over the exercise's `hold_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct FrozenHold {
    /// The group's activity (loopers' turns and children's exits) before the freeze (it runs).
    pub running: u64,
    pub freeze: GroupAction,
    /// Its activity once the host answered (the freeze confirmed, or the
    /// control's wait).
    pub while_frozen: u64,
    /// The sibling after that hold.
    pub frozen_state: GroupState,
    pub thaw: GroupAction,
    /// Its activity after the thaw.
    pub after_thaw: u64,
}

/// Looper 0 moved out of the (frozen) sibling into the case's own cgroup and back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Migration {
    /// Out: the migrant's turns and the other loopers' turns, and the sibling then.
    pub migrant_out: u64,
    pub others_while_out: u64,
    pub out_state: GroupState,
    /// Back: the host's wait for `frozen 1` (a freeze request repeated, which the kernel ignores
    /// when the cgroup is frozen already), then the migrant's turns.
    pub back: GroupAction,
    pub migrant_back: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct CpuAttempt {
    pub cpu: u32,
    pub result: SysResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct OpenAttempt {
    pub path: String,
    pub result: SysResult,
}

/// [`CgroupRules::ProcMigration`]: the helper threads the probe starts beside its main thread, so
/// that the process it moves has `PROC_MIGRATION_THREADS + 1` threads.
pub const PROC_MIGRATION_THREADS: usize = 3;

/// [`Exercise::CpuBurst`]: the burn starts this long after a period boundary and ends this long
/// before the next one. The throttle's end (the boundary's refill) is seen a little late: the
/// unthrottled probe must be picked again, within a tick (10 ms at HZ=100) of other tasks' turns
/// on a busy CPU. The same bound holds the burn's closing throttle to the planned boundary: it
/// ends there, up to this much later (seen late) or earlier (the boundary was found late).
pub const CPU_BURST_MARGIN_NS: u64 = 10_000_000;

/// [`Exercise::CpuBurst`]: a time off the CPU after the burn's start counts as a throttle only
/// when longer than another task's turn: at cpu.weight 10000 a competing nice-0 task's turn is one
/// slice (3 ms base), well within a tick (10 ms at HZ=100).
pub const CPU_BURST_END_THROTTLE_NS: u64 = 10_000_000;

/// Whether a cpu.max.burst burn lay within one period: the throttle after it (`end_gap_ns` off the
/// CPU) ended `end_offset_ns` from a planned boundary, within [`CPU_BURST_MARGIN_NS`] (throttles
/// end on the period's boundaries). A burn that did not may span two periods' budgets.
pub fn cpu_burst_on_boundary(end_gap_ns: u64, end_offset_ns: i64) -> bool {
    end_gap_ns >= CPU_BURST_END_THROTTLE_NS && end_offset_ns.unsigned_abs() <= CPU_BURST_MARGIN_NS
}

/// Whether the probe keeps a cpu.max.burst burn (else it is redone; when no attempt is kept, the
/// least disturbed is reported as it is): its window ended in a throttle (`ended_throttled`: the
/// gap across the window's end was at least [`CPU_BURST_END_THROTTLE_NS`]), the kernel counted the
/// group throttled over it (`window_throttles`, cpu.stat `nr_throttled`, where the host could read
/// it), and that throttle ended on a planned boundary ([`cpu_burst_on_boundary`]).
///
/// The budget of a burn that measures it (at most the window: 60 ms of 80 here) runs out inside
/// the window, and the throttle then holds the probe off the CPU from there across the window's
/// end until the next boundary's refill. A window whose last gap was short did not spend its
/// budget in it: the hypervisor took the CPU from the probe (steal: the guest's clock runs on
/// while the task clock cpu.max charges stands still), or real-time tasks or interrupts did, and
/// the throttle the probe then finds came after the window. CI saw both kinds of steal: 50.6 ms of
/// CPU in an 81.3 ms window in gaps of 2.9 ms at most, and 26.8 ms in 77.0 ms with one gap of
/// 11.4 ms (as long as a throttle), each time the budget (60 ms) spent only after the window.
///
/// A broken limit is never hidden by a redo: no cpu.max at all leaves the probe nothing to align
/// to (the exercise errs); a burst not honoured (the quota alone, 30 ms) runs out early in the
/// window, the burn is kept and the host fails it; a budget larger than the window never runs out
/// inside it, so every attempt is redone and the least disturbed is reported with the whole
/// window's CPU, above the budget's tolerance.
///
/// Timing alone does not tell the throttle from a steal of 10 ms or more that spans the window's
/// end and ends within the margin of the boundary (a real-time task's 11.4 ms slices on the
/// probe's CPU did so in 4 of 18 cases). The kernel's own count does: the period timer adds one to
/// `nr_throttled` for each period that ends with the group throttled (__do_sched_cfs_period_timer),
/// and that timer's refill is what ends the closing throttle, so by the time the probe runs again
/// the count has grown by one; a steal adds nothing. Where the count cannot be read (no cpu.stat
/// for the group's hierarchy), timing is all there is, with that blind spot: such a burn is kept
/// though its budget was not spent, short of it by what was stolen, which the host mostly errs on
/// (the budget never spent) or fails.
pub fn cpu_burst_kept(
    ended_throttled: bool,
    window_throttles: Option<u64>,
    end_gap_ns: u64,
    end_offset_ns: i64,
) -> bool {
    ended_throttled && window_throttles != Some(0) && cpu_burst_on_boundary(end_gap_ns, end_offset_ns)
}

#[cfg(test)]
mod burst_tests {
    use super::*;

    /// A gap across the window's end that the kernel did not count as a throttle is a steal.
    #[test]
    fn a_closing_gap_the_kernel_did_not_count_as_a_throttle_is_not_kept() {
        let ms = 1_000_000;
        assert!(cpu_burst_kept(true, Some(1), 30 * ms, 400_000));
        // An RT task's 11.4 ms slice across the window's end, ending 2 ms before the boundary.
        assert!(cpu_burst_kept(true, None, 11_400_000, -2_000_000));
        assert!(!cpu_burst_kept(true, Some(0), 11_400_000, -2_000_000));
        // Counted, but not across the window's end: still redone.
        assert!(!cpu_burst_kept(false, Some(1), 46_800_000, 0));
    }

    #[test]
    fn a_burn_is_kept_only_when_its_window_ended_in_a_throttle_on_a_boundary() {
        let ms = 1_000_000;
        // The limited case (budget 60 ms) spent at 60 ms into the window, the control (30 ms) at
        // 30: a throttle of 30 or 60 ms across the window's end, ending on the boundary.
        assert!(cpu_burst_kept(true, None, 30 * ms, 400_000));
        assert!(cpu_burst_kept(true, None, 60 * ms, -2_000_000));
        // CI: 26.8 ms of CPU in 77.0 ms, its longest gap (11.4 ms) inside the window, the budget
        // spent only after it, and 50.6 ms in 81.3 ms in gaps of 2.9 ms at most: the throttle
        // found after the window ends on the boundary (as the probe's model of them has it).
        assert!(!cpu_burst_kept(false, None, 46_800_000, 0));
        assert!(!cpu_burst_kept(false, None, 69_300_000, 0));
        // A budget larger than the window: spent after it, a 10 ms throttle on the next boundary.
        assert!(!cpu_burst_kept(false, None, 10 * ms, 0));
        // A throttle across the window's end that ended off the planned boundary (found 25 ms late).
        assert!(!cpu_burst_kept(true, None, 30 * ms, -25_000_000));
    }

    #[test]
    fn a_burn_counts_only_when_a_throttle_ends_on_a_planned_boundary() {
        let ms = 1_000_000;
        assert!(cpu_burst_on_boundary(30 * ms, 2_000_000));
        assert!(cpu_burst_on_boundary(30 * ms, -9_000_000));
        // The boundary was found 25 ms late: the real one came 25 ms before the planned one.
        assert!(!cpu_burst_on_boundary(30 * ms, -25_000_000));
        // A short preemption, not a throttle; no throttle at all.
        assert!(!cpu_burst_on_boundary(3 * ms, 0));
        assert!(!cpu_burst_on_boundary(0, 0));
    }
}
