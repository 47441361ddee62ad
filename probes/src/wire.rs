//! The wire format between the harness and the probe: JSON lines on the probe's stdin and stdout.
//!
//! stdio is the one channel every launcher passes through (a native clone, `unshare`, bubblewrap,
//! LXC, runc, ...), so it is the only channel the probe relies on. stderr carries diagnostics only
//! and is never parsed.
//!
//! The conversation:
//! 1. harness → probe: [`ToProbe::Hello`] with the init plan and the sentinel descriptions;
//! 2. probe → harness: [`FromProbe::Fact`] lines, and [`FromProbe::Ask`] when the probe needs the
//!    host to look at something *now* (the harness replies with [`ToProbe::Answer`]);
//! 3. probe → harness: [`FromProbe::Done`]; a holder (a container that another probe will join)
//!    then waits for [`ToProbe::Release`].
//!
//! The probe reports facts, never verdicts: "kill(4242, 0) failed with ESRCH", not "pid isolated".
//!
//! Every message carries its variant in a `msg`/`fact`/`question`/`answer` tag (no untagged enums,
//! no flatten); the hello carries [`WIRE_VERSION`]. This module must stay free of I/O and of
//! anything Linux-specific beyond plain data.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ns::NsKind;

/// Bumped on every incompatible change of the types below.
pub const WIRE_VERSION: u32 = 3;

/// A message from the harness to the probe (one JSON document per line on the probe's stdin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum ToProbe {
    Hello {
        version: u32,
        case: Box<ProbeCase>,
    },
    Answer {
        id: u32,
        answer: HostAnswer,
    },
    /// A holder may exit now.
    Release,
}

/// What the probe needs to know: how to finish setting up its container, and where the sentinels are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ProbeCase {
    /// The case name, for diagnostics on stderr.
    pub name: String,
    pub init: InitPlan,
    pub sentinels: Sentinels,
    /// Stay alive after [`FromProbe::Done`] until [`ToProbe::Release`] (a container to be joined).
    pub hold: bool,
    /// A cgroup-limit case: run this exercise instead of the namespace observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(value = "None"))]
    pub exercise: Option<Exercise>,
    /// The harness's own namespaces, for the interlock: the probe changes no state of a namespace
    /// that is one of these (see [`Refusal`]). A kind missing here is never changed.
    #[serde(default)]
    pub harness_ns: Vec<NsId>,
}

/// A namespace, as stat(2) of /proc/<pid>/ns/<kind> identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct NsId {
    pub kind: NsKind,
    pub dev: u64,
    pub ino: u64,
}

impl fmt::Display for NsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:[{}]", self.kind, self.ino)
    }
}

/// A state-changing step the probe did not take because the namespace it would change is the
/// harness's (the interlock): `the probe's uts namespace is the harness's (uts:[4026531838]):
/// sethostname refused`. The checks of `kind` fail with this as their evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Refusal {
    pub kind: NsKind,
    /// What was not done (`sethostname`, `mount proc on /proc`, `pivot_root`).
    pub step: String,
    /// Why: the shared namespace's identity, or why it could not be read.
    pub because: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {} refused", self.kind, self.because, self.step)
    }
}

/// A state-changing observation (a domainname, a mount), made or refused by the interlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "attempt", rename_all = "kebab-case")]
pub enum Attempt {
    /// The probe's namespace is not the harness's: the step was taken, with this result.
    Made { result: SysResult },
    /// The probe's namespace is the harness's: the step was not taken. `probe` is the result of
    /// the same call made so that the kernel refuses it after its permission check and before
    /// any change (a name one byte too long, an invalid mount option): EINVAL means the step
    /// would have been permitted, EPERM that it would not.
    Refused { shared: NsId, probe: SysResult },
}

/// The steps that need a fresh process inside the namespaces, run by the probe before it observes.
///
/// The launcher decides them (a launcher that already did a step leaves it out); the probe records
/// what it did in [`Fact::Init`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct InitPlan {
    /// sethostname(2) (only ever asked for in a new uts namespace).
    pub hostname: Option<String>,
    /// unshare(CLONE_NEWTIME), write /proc/self/timens_offsets, re-exec into the new namespace.
    pub time_offsets: Option<TimeOffsets>,
    /// Make every mount private (`mount --make-rprivate /`) so nothing propagates either way; only
    /// ever asked for in a new mount namespace.
    pub private_mounts: bool,
    /// Mount a new procfs here (falling back to a recursive bind of the old /proc when the kernel
    /// refuses a new instance, e.g. a user namespace that does not own the pid namespace).
    pub mount_proc: Option<String>,
    /// Mount a new sysfs here (same fallback as `mount_proc`).
    pub mount_sys: Option<String>,
    pub root: RootPlan,
    /// unshare(CLONE_NEWCGROUP) in init, after the harness attached the probe to its cgroups (a
    /// cgroup namespace made by the clone would be rooted where the probe was *before* a v1
    /// attach through cgroup.procs; runtimes unshare it last for the same reason).
    #[serde(default)]
    pub unshare_cgroup: bool,
}

/// How the probe changes its root before observing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum RootPlan {
    /// Keep the root it was started with.
    #[default]
    Keep,
    /// pivot_root(2) into `new_root` (a bind mount of itself), old root put under `put_old`
    /// (relative to the new root) and detached.
    PivotRoot { new_root: String, put_old: String },
    /// chroot(2) into `new_root`, nothing else.
    Chroot { new_root: String },
}

/// Time namespace clock offsets in nanoseconds (see time_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct TimeOffsets {
    pub monotonic_ns: i64,
    pub boottime_ns: i64,
}

impl TimeOffsets {
    pub fn is_zero(&self) -> bool {
        self.monotonic_ns == 0 && self.boottime_ns == 0
    }
    pub fn get(&self, clock: ClockKind) -> i64 {
        match clock {
            ClockKind::Monotonic => self.monotonic_ns,
            ClockKind::Boottime => self.boottime_ns,
        }
    }
}

/// The host-side objects the probe looks for, and the names it uses for objects of its own.
///
/// Paths are as the probe sees them after its root change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Sentinels {
    pub pid: PidSentinel,
    pub uts: UtsSentinel,
    pub mnt: MntSentinel,
    pub ipc: IpcSentinel,
    pub net: NetSentinel,
    pub user: UserSentinel,
}

/// A sleeping host process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct PidSentinel {
    /// Its pid in the harness's pid namespace.
    pub pid: i32,
    /// An argument of the sentinel's command line, unique to the run, so that another process
    /// with the same pid number (in another pid namespace) is not taken for the sentinel. (Its
    /// start time would not do: /proc shifts start times by the reader's time namespace offset.)
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct UtsSentinel {
    /// The NIS domain name the probe sets; the host checks whether it sees it, then restores its own.
    pub domainname_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct MntSentinel {
    /// A file on the host filesystem, by its host path, holding `marker_token`.
    pub host_marker: String,
    pub marker_token: String,
    /// An empty directory on which the host mounts a tmpfs holding `marker_token` when asked.
    pub sentinel_mount: String,
    /// An empty directory on which the probe mounts a tmpfs of its own.
    pub own_mount: String,
    /// A directory to chroot into during the chroot-escape attempt.
    pub escape_dir: String,
    /// The harness's root mount as mountinfo shows it (`maj:min root`, e.g. `254:1 /`): a
    /// mount of it left in the probe's table after pivot_root means the old root is reachable.
    #[serde(default)]
    pub host_root: String,
}

/// SysV IPC keys and a POSIX message queue name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IpcNames {
    pub shm_key: i32,
    pub sem_key: i32,
    pub msg_key: i32,
    /// With its leading slash, as mq_open(3) takes it.
    pub mq_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IpcSentinel {
    /// Objects the host created before the probe started.
    pub host: IpcNames,
    /// Names for the objects the probe creates (and removes) itself.
    pub own: IpcNames,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct NetSentinel {
    /// An abstract unix socket the host listens on, without the leading NUL.
    pub abstract_name: String,
    /// A TCP port the host listens on at 127.0.0.1.
    pub tcp_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct UserSentinel {
    /// A directory the probe may create files in; the host stats them.
    pub scratch_dir: String,
}

/// A message from the probe to the harness (one JSON document per line on the probe's stdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum FromProbe {
    /// "Host, check now": the probe waits for the [`ToProbe::Answer`] with the same id.
    Ask {
        id: u32,
        question: HostQuestion,
    },
    Fact {
        fact: Fact,
    },
    /// All facts are out; `facts` is how many, so a lost line is noticed.
    Done {
        facts: u32,
    },
    /// Init failed; no facts follow.
    Fatal {
        stage: String,
        error: String,
    },
}

/// What the probe asks the host to do or look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "question", rename_all = "kebab-case")]
pub enum HostQuestion {
    /// Take the host-wide domainname lock (several probes may share the host's uts namespace).
    LockDomainname,
    /// Does the host see this domainname? The host then restores its own and releases the lock.
    CheckDomainname { token: String },
    /// Mount the sentinel tmpfs now (after the probe's namespaces exist).
    MountSentinel,
    /// Unmount it again.
    UnmountSentinel,
    /// Does the host's mount table hold the probe's own tmpfs?
    OwnMountVisible,
    /// Which of the probe's own IPC objects does the host see?
    OwnIpcVisible,
    /// Owner of a file the probe created in the scratch directory, as the host stats it.
    ScratchFileOwner { name: String },
    /// The host's reading of a clock.
    Clock { clock: ClockKind },
    /// A question about the case's cgroups (limit cases only).
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Limit { ask: LimitQuestion },
}

/// The host's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum HostAnswer {
    Ack,
    Seen {
        seen: bool,
    },
    Ipc {
        seen: IpcSeen,
    },
    Owner {
        uid: u32,
        gid: u32,
    },
    ClockNs {
        ns: i64,
    },
    /// The answer to a [`HostQuestion::Limit`].
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Limit {
        reply: LimitAnswer,
    },
    /// The host cannot do this here (e.g. mounting needs root); the reason says why.
    Unavailable {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// Which of four IPC objects were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IpcSeen {
    pub shm: bool,
    pub sem: bool,
    pub msg: bool,
    pub mq: bool,
}

impl IpcSeen {
    pub fn all(&self) -> bool {
        self.shm && self.sem && self.msg && self.mq
    }
    pub fn none(&self) -> bool {
        !(self.shm || self.sem || self.msg || self.mq)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum ClockKind {
    Monotonic,
    Boottime,
}

/// Where a clock reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum ClockSource {
    /// clock_gettime(3) through libc, which uses the vDSO.
    Vdso,
    /// The raw clock_gettime system call.
    Syscall,
    /// The first field of /proc/uptime (boottime only, centisecond resolution).
    ProcUptime,
}

/// The outcome of a system call, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum SysResult {
    Ok,
    Err { errno: i32, name: String },
}

impl SysResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, SysResult::Ok)
    }
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysResult::Ok => None,
            SysResult::Err { errno, .. } => Some(*errno),
        }
    }
}

impl fmt::Display for SysResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysResult::Ok => f.write_str("ok"),
            SysResult::Err { name, errno } => write!(f, "{name} ({errno})"),
        }
    }
}

/// The outcome of looking an object up by name or key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "lookup", rename_all = "kebab-case")]
pub enum Lookup {
    /// Opened.
    Found,
    /// It exists, but access was refused (EACCES/EPERM): it is visible all the same.
    Denied,
    /// ENOENT: not in this namespace.
    Absent,
    /// Any other error.
    Failed { error: String },
}

impl Lookup {
    /// Whether the lookup proves the object exists in the probe's view.
    pub fn visible(&self) -> Option<bool> {
        match self {
            Lookup::Found | Lookup::Denied => Some(true),
            Lookup::Absent => Some(false),
            Lookup::Failed { .. } => None,
        }
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Found => f.write_str("found"),
            Lookup::Denied => f.write_str("exists, access denied"),
            Lookup::Absent => f.write_str("absent"),
            Lookup::Failed { error } => write!(f, "lookup failed: {error}"),
        }
    }
}

/// A network interface as netlink (RTM_GETLINK) reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Link {
    pub name: String,
    /// IFF_UP.
    pub up: bool,
}

/// One line of /proc/<pid>/uid_map or gid_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IdMapLine {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl fmt::Display for IdMapLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum IdKind {
    Uid,
    Gid,
}

/// One observation. Each variant is an observation the probe made, with the raw evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "fact", rename_all = "kebab-case")]
pub enum Fact {
    /// What the init step did, in order ("mount proc on /proc", "pivot_root into ..."), and the
    /// steps the interlock refused.
    Init {
        steps: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refused: Vec<Refusal>,
    },
    /// stat(2) of /proc/self/ns/<kind>.
    NsIdentity { kind: NsKind, dev: u64, ino: u64 },
    /// getpid(2) and getppid(2).
    Pids { pid: i32, ppid: i32 },
    /// kill(sentinel, 0).
    SignalSentinel { result: SysResult },
    /// Whether /proc lists the sentinel's pid, and whether that process's command line carries the
    /// sentinel's tag. `foreign`: this /proc has no `self` for the probe (it belongs to a pid
    /// namespace the probe is not in), so its listing says nothing about the probe's own view.
    ProcSentinel {
        listed: bool,
        tagged: bool,
        #[serde(default)]
        foreign: bool,
    },
    /// uname(2) nodename.
    Hostname { hostname: String },
    /// setdomainname(2) of the token (or the interlock's probe of it), and whether the host then
    /// saw the token.
    Domainname { attempt: Attempt, host_saw_token: bool },
    /// sethostname(2) of a name one byte too long: the kernel checks CAP_SYS_ADMIN over the uts
    /// namespace first (EPERM) and the length second (EINVAL), and changes nothing either way.
    SethostnameProbe { result: SysResult },
    /// Whether the file the host mounted after the probe started is visible. `None` when the host
    /// could not mount (`detail` says why).
    SentinelMount { visible: Option<bool>, detail: String },
    /// mount(2) of a tmpfs by the probe (or the interlock's probe of it), and whether the host's
    /// mount table then held it.
    OwnMount { attempt: Attempt, host_saw: bool },
    /// Whether the host marker file is reachable by its host path: `None` when reading it failed
    /// with anything but ENOENT (which alone means "not there"; `detail` has the error).
    HostMarker { reachable: Option<bool>, detail: String },
    /// The classic chroot escape (nested chroot, fchdir to the old root, chdir("..") up,
    /// chroot(".")). `None` when it could not be attempted (chroot refused: no CAP_SYS_CHROOT),
    /// or when reading the marker at the top failed with anything but ENOENT. `old_root_mount`:
    /// where the probe's own mount table still holds the host's root (the sentinel's
    /// `host_root`), if anywhere.
    ChrootEscape {
        reached_host: Option<bool>,
        detail: String,
        #[serde(default)]
        old_root_mount: Option<String>,
    },
    /// Lookups of the host's SysV and POSIX IPC objects.
    HostIpc { shm: Lookup, sem: Lookup, msg: Lookup, mq: Lookup },
    /// Creation of the probe's own IPC objects, what the host saw of them, and why the kernel
    /// refused the ones it did not create.
    OwnIpc {
        created: IpcSeen,
        host_saw: IpcSeen,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed: Vec<String>,
    },
    /// connect(2) to the host's abstract unix socket.
    AbstractSocket { connect: SysResult },
    /// connect(2) to the host's TCP listener on 127.0.0.1.
    TcpLoopback { connect: SysResult },
    /// Links as a RTM_GETLINK dump reports them, sorted by name.
    Links { links: Vec<Link> },
    /// Entries of /sys/class/net, sorted.
    SysfsNet { entries: Vec<String> },
    /// /proc/self/uid_map or gid_map.
    IdMap { ids: IdKind, lines: Vec<IdMapLine> },
    /// Owner of a file the probe created, as the host stats it.
    FileOwner { uid: u32, gid: u32 },
    /// The lines of /proc/self/cgroup.
    Cgroup { lines: Vec<String> },
    /// The probe's clock minus the host's, bracketed: the true offset lies in `[lo_ns, hi_ns]`
    /// (the probe read its clock before and after asking the host).
    ClockOffset { clock: ClockKind, source: ClockSource, lo_ns: i64, hi_ns: i64 },
    /// What a limit exercise met (see [`Exercise`]). Left out of the generated messages (the
    /// strategy of the whole tree would overflow a test thread's stack); its own round trip is
    /// tested below.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Exercise { report: Box<ExerciseReport> },
    /// An observation could not be made; `about` is the [`Fact::key`] it would have had.
    Unobservable { about: String, error: String },
}

impl Fact {
    /// A key naming the observation: the fact tag, plus the kind, id or clock it is about.
    pub fn key(&self) -> String {
        match self {
            Fact::Init { .. } => "init".into(),
            Fact::NsIdentity { kind, .. } => fact_key::ns_identity(*kind),
            Fact::Pids { .. } => "pids".into(),
            Fact::SignalSentinel { .. } => "signal-sentinel".into(),
            Fact::ProcSentinel { .. } => "proc-sentinel".into(),
            Fact::Hostname { .. } => "hostname".into(),
            Fact::Domainname { .. } => "domainname".into(),
            Fact::SethostnameProbe { .. } => "sethostname-probe".into(),
            Fact::SentinelMount { .. } => "sentinel-mount".into(),
            Fact::OwnMount { .. } => "own-mount".into(),
            Fact::HostMarker { .. } => "host-marker".into(),
            Fact::ChrootEscape { .. } => "chroot-escape".into(),
            Fact::HostIpc { .. } => "host-ipc".into(),
            Fact::OwnIpc { .. } => "own-ipc".into(),
            Fact::AbstractSocket { .. } => "abstract-socket".into(),
            Fact::TcpLoopback { .. } => "tcp-loopback".into(),
            Fact::Links { .. } => "links".into(),
            Fact::SysfsNet { .. } => "sysfs-net".into(),
            Fact::IdMap { ids, .. } => fact_key::id_map(*ids),
            Fact::FileOwner { .. } => "file-owner".into(),
            Fact::Cgroup { .. } => "cgroup".into(),
            Fact::ClockOffset { clock, source, .. } => fact_key::clock(*clock, *source),
            Fact::Exercise { .. } => fact_key::EXERCISE.into(),
            Fact::Unobservable { about, .. } => about.clone(),
        }
    }
}

/// Keys of facts that carry a parameter, shared by the probe (when it reports an
/// [`Fact::Unobservable`]) and the harness (when it looks a fact up).
pub mod fact_key {
    use super::{ClockKind, ClockSource, IdKind};
    use crate::ns::NsKind;

    /// The one fact of a limit case.
    pub const EXERCISE: &str = "exercise";

    pub fn ns_identity(kind: NsKind) -> String {
        format!("ns-identity/{kind}")
    }
    pub fn id_map(ids: IdKind) -> String {
        match ids {
            IdKind::Uid => "id-map/uid".into(),
            IdKind::Gid => "id-map/gid".into(),
        }
    }
    pub fn clock(clock: ClockKind, source: ClockSource) -> String {
        let c = match clock {
            ClockKind::Monotonic => "monotonic",
            ClockKind::Boottime => "boottime",
        };
        let s = match source {
            ClockSource::Vdso => "vdso",
            ClockSource::Syscall => "syscall",
            ClockSource::ProcUptime => "proc-uptime",
        };
        format!("clock-offset/{c}/{s}")
    }
}

// ---- cgroup limits (wire version 2) ----

/// What the probe does in a limit case to run into its cgroup's limits. Every exercise is the
/// same with and without the limit (the control); only what the kernel lets it do differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "exercise", rename_all = "kebab-case")]
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
        }
    }
}

/// How a child of the probe ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "end", rename_all = "kebab-case")]
pub enum ChildEnd {
    Exited { code: i32 },
    Killed { signal: i32, name: String },
}

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
    /// /proc/<pid>/schedstat right after): cgroups joined that way did not see that much of it.
    /// In a cgroup a container tool made: the probe's runtime less the cgroup's usage when the
    /// host adopted it, where positive (the tool placed the probe after it had started).
    pub attached_after_ns: Option<u64>,
    /// In a cgroup a container tool made: the CPU time charged to it by processes that are
    /// neither the probe nor its descendants — the tool's setup processes that exited before the
    /// probe ran (runc's init stages) and its init (lxc-init) — which the cgroup's usage counts and
    /// the probe's rusage does not. The host takes it when it adopts the cgroup (usage less the
    /// probe's runtime, from /proc/<pid>/schedstat, both at rest) plus what the other live
    /// processes ran since.
    pub others_ns: Option<u64>,
}

/// A question about the case's cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "ask", rename_all = "kebab-case")]
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
}

/// The host's answer to a [`LimitQuestion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "limit", rename_all = "kebab-case")]
pub enum LimitAnswer {
    Reading {
        reading: CgroupReading,
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
}

/// What a limit exercise met: raw evidence, no verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "exercise", rename_all = "kebab-case")]
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
        /// The host's account of the hold.
        frozen: bool,
        held_ns: u64,
    },
    IoRead {
        bytes: u64,
        wall_ns: u64,
        /// The read that ended the window early, if one failed.
        error: Option<SysResult>,
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

/// A line that is not a valid message, with enough context to find it.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} at line {line}: {source} (line was: {excerpt:?})")]
pub struct DecodeError {
    pub what: &'static str,
    pub line: usize,
    pub excerpt: String,
    #[source]
    pub source: serde_json::Error,
}

/// Encodes one message as a single line, with its trailing newline.
pub fn encode<T: Serialize>(msg: &T) -> String {
    // Serialising these plain-data types cannot fail: no maps with non-string keys, no I/O.
    let mut line = serde_json::to_string(msg).expect("wire types always serialise");
    line.push('\n');
    line
}

/// Decodes one line (with or without its newline). `line_no` is 1-based, for the error.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    line_no: usize,
    line: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(line.trim_end_matches(['\n', '\r'])).map_err(|source| DecodeError {
        what,
        line: line_no,
        excerpt: line.chars().take(160).collect(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_single_lines_tagged_in_kebab_case() {
        let line = encode(&FromProbe::Fact {
            fact: Fact::SignalSentinel { result: SysResult::Err { errno: 3, name: "ESRCH".into() } },
        });
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains(r#""msg":"fact""#), "{line}");
        assert!(line.contains(r#""fact":"signal-sentinel""#), "{line}");
        assert!(line.contains(r#""result":"err""#), "{line}");
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let err = decode::<FromProbe>("probe message", 7, "{\"msg\":\"fact\",\"fact\":").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 7"), "{text}");
        assert!(text.contains("probe message"), "{text}");
    }

    #[test]
    fn unknown_variant_is_an_error_not_a_default() {
        assert!(decode::<FromProbe>("probe message", 1, r#"{"msg":"verdict","pass":true}"#).is_err());
    }

    // Arbitrary is derived for tests and for dependants that enable the `arbitrary` feature.
    mod round_trip {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn to_probe(msg in any::<ToProbe>()) {
                let back: ToProbe = decode("harness message", 1, &encode(&msg)).unwrap();
                prop_assert_eq!(back, msg);
            }

            #[test]
            fn from_probe(msg in any::<FromProbe>()) {
                let back: FromProbe = decode("probe message", 1, &encode(&msg)).unwrap();
                prop_assert_eq!(back, msg);
            }

            #[test]
            fn exercise(e in any::<Exercise>()) {
                let back: Exercise = decode("exercise", 1, &encode(&e)).unwrap();
                prop_assert_eq!(back, e);
            }

            #[test]
            fn exercise_report(r in any::<ExerciseReport>()) {
                let fact = FromProbe::Fact { fact: Fact::Exercise { report: Box::new(r) } };
                let back: FromProbe = decode("probe message", 1, &encode(&fact)).unwrap();
                prop_assert_eq!(back, fact);
            }

            #[test]
            fn limit_question_and_answer(q in any::<LimitQuestion>(), a in any::<LimitAnswer>()) {
                let ask = FromProbe::Ask { id: 1, question: HostQuestion::Limit { ask: q } };
                prop_assert_eq!(decode::<FromProbe>("probe message", 1, &encode(&ask)).unwrap(), ask);
                let answer = ToProbe::Answer { id: 1, answer: HostAnswer::Limit { reply: a } };
                prop_assert_eq!(decode::<ToProbe>("harness message", 1, &encode(&answer)).unwrap(), answer);
            }

            /// Arbitrary bytes never panic the decoder.
            #[test]
            fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let text = String::from_utf8_lossy(&bytes);
                let _ = decode::<FromProbe>("probe message", 1, &text);
            }

            /// A valid message cut short is an error, not a panic or a different message.
            #[test]
            fn truncated_is_an_error(msg in any::<FromProbe>(), cut in 0.0f64..1.0) {
                let line = encode(&msg);
                let body = line.trim_end();
                let at = ((body.len() as f64) * cut) as usize;
                if let Some(prefix) = body.get(..at) {
                    prop_assert!(decode::<FromProbe>("probe message", 1, prefix).is_err());
                }
            }
        }
    }
}
