//! The facts: what a probe observed, one raw observation each (never a verdict), and the small
//! value types they are made of.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::tagged::tagged;
use super::{Attempt, ExerciseReport, IpcSeen, NsId, Refusal};
use crate::ns::NsKind;

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
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum SysResult {
    Ok,
    Err { errno: i32, name: String },
}
tagged!(SysResult, "result");

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
#[serde(remote = "Self", rename_all = "kebab-case")]
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
tagged!(Lookup, "lookup");

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

/// One line of `/proc/<pid>/uid_map` or gid_map.
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

/// One /proc/sys entry the probe wrote in a namespace of its own. Values are
/// whitespace-normalised (`sysctl::normalize`). What the host (and the container a joiner joined)
/// read of it is the harness's own knowledge, not the probe's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SysctlWrite {
    /// Under /proc/sys, no leading slash (`net/core/somaxconn`).
    pub path: String,
    /// The probe's value before it wrote.
    pub before: String,
    /// The probe's value read back once every write was made: unlike `before`, or the entry is
    /// not listed as written.
    pub after: String,
    /// The value the kernel accepted, when it reads back otherwise (`after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
}

impl SysctlWrite {
    /// The value the kernel accepted.
    pub fn written(&self) -> &str {
        self.written.as_deref().unwrap_or(&self.after)
    }
}

/// Why an entry of a kind the probe has a namespace of was not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum NotWritten {
    /// open(2) for writing failed: the kernel's permission check (EACCES, EPERM), or a read-only
    /// mount (EROFS).
    Refused { error: SysResult },
    /// Reading the value failed (a write-only entry such as `net/ipv4/route/flush`, an unset one).
    Unreadable { error: SysResult },
    /// The probe knows no legal value unlike the present one (not numbers, no list to pick from).
    NoCandidate,
    /// The kernel rejected every candidate value (`value: error` each).
    Rejected { errors: Vec<String> },
    /// The kernel took the value, but reading it back shows no change.
    NoEffect,
}
tagged!(NotWritten, "not-written");

/// An entry not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SysctlSkip {
    pub path: String,
    pub why: NotWritten,
}

/// How the probe asked whether a write would be permitted, without writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum CapabilityTest {
    /// open(2) with O_WRONLY, then close: the permission check of /proc/sys is made at open.
    /// `ok` is permitted.
    OpenForWriting,
    /// A write of a value out of range (`-1` to `ns_last_pid`): the handler checks the capability
    /// first (EPERM) and the range second (EINVAL), and changes nothing either way. EINVAL is
    /// permitted.
    InvalidWrite,
}

/// Whether a write to one entry would be permitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SysctlTest {
    pub path: String,
    pub test: CapabilityTest,
    pub result: SysResult,
}

/// What the probe did with the sysctls of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum SysctlObservation {
    /// A namespace of the probe's own: each entry written with a value unlike the probe's and the
    /// host's (the host then reads its own, and a joiner's container its).
    Own { written: Vec<SysctlWrite>, skipped: Vec<SysctlSkip> },
    /// The harness's namespace (`shared`): nothing written, only whether writing would be permitted.
    Harness { shared: NsId, tests: Vec<SysctlTest> },
}
tagged!(SysctlObservation, "namespace");

/// One observation. Each variant is an observation the probe made, with the raw evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum Fact {
    /// What the init step did, in order ("mount proc on /proc", "pivot_root into ..."), and the
    /// steps the interlock refused.
    Init {
        steps: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refused: Vec<Refusal>,
    },
    /// stat(2) of `/proc/self/ns/<kind>`.
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
    /// /proc/sys/kernel/ns_last_pid read right after the probe started a task (a thread: its id
    /// comes from the same allocator as a process's pid): `child` is the task's id in the probe's
    /// pid namespace, `last_pid` what the file held (`None`: it does not exist,
    /// a kernel without CONFIG_CHECKPOINT_RESTORE).
    NsLastPid { child: i32, last_pid: Option<i32> },
    /// `/proc/<sentinel's pid>/net/unix` in the probe's /proc: `listed` whether it exists (ENOENT
    /// alone is not), `lists_socket` whether it lists the host's abstract socket; `foreign` as in
    /// [`Fact::ProcSentinel`].
    HostPidNet {
        listed: bool,
        lists_socket: bool,
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
    /// A mount case: whether the tmpfs the host mounted on the propagation mount point after the
    /// probe started is visible in the probe's copy of it (its marker read there).
    PropagationIn { visible: bool, detail: String },
    /// A mount case: mount(2) of a tmpfs on the probe's copy of the propagation mount point (or
    /// the interlock's probe of it), and whether the host then saw a mount there.
    PropagationOut { attempt: Attempt, host_saw: bool },
    /// A mount case: a bind of the propagation mount point (or, in the harness's mount namespace,
    /// the bind onto a file that the kernel refuses either way; see
    /// [`MountSentinels::bind_file`](super::MountSentinels::bind_file)).
    BindPropagation { attempt: Attempt },
    /// A mount case: undoing the host's ro,nosuid,nodev,noexec mount in the probe's view: a bind
    /// remount that drops those flags, then umount(2) (or the interlock's probes of both), and
    /// whether the file it covers was then seen.
    InheritedMount { remount: Attempt, unmount: Attempt, covered_seen: bool },
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
    /// /proc/net (the symlink `self/net`): whether its `unix` lists the host's abstract socket
    /// (`@name`), and the interface names its `dev` lists, sorted.
    ProcNet { unix_lists_socket: bool, dev: Vec<String> },
    /// /proc/self/uid_map or gid_map.
    IdMap { ids: IdKind, lines: Vec<IdMapLine> },
    /// Owner of a file the probe created, as the host stats it.
    FileOwner { uid: u32, gid: u32 },
    /// The lines of /proc/self/cgroup.
    Cgroup { lines: Vec<String> },
    /// The sysctls `kind` owns (`sysctl::TABLE`), written in a namespace of the probe's own or
    /// tested in the harness's. Left out of the generated messages, as `Exercise` is (the strategy
    /// of the whole tree would overflow a test thread's stack); its own round trip is tested in
    /// the wire module.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Sysctls { kind: NsKind, observed: SysctlObservation },
    /// Whether each global sysctl (one no namespace kind owns) may be opened for writing.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    GlobalSysctls { tests: Vec<SysctlTest> },
    /// The probe's clock minus the host's, bracketed: the true offset lies in `[lo_ns, hi_ns]`
    /// (the probe read its clock before and after asking the host).
    ClockOffset { clock: ClockKind, source: ClockSource, lo_ns: i64, hi_ns: i64 },
    /// What a limit exercise met (see [`Exercise`](super::Exercise)). Left out of the generated messages (the
    /// strategy of the whole tree would overflow a test thread's stack); its own round trip is
    /// tested below.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Exercise { report: Box<ExerciseReport> },
    /// An observation could not be made; `about` is the [`Fact::key`] it would have had.
    Unobservable { about: String, error: String },
}
tagged!(Fact, "fact");

impl Fact {
    /// A key naming the observation: the fact tag, plus the kind, id or clock it is about.
    pub fn key(&self) -> String {
        match self {
            Fact::Init { .. } => "init".into(),
            Fact::NsIdentity { kind, .. } => fact_key::ns_identity(*kind),
            Fact::Pids { .. } => "pids".into(),
            Fact::SignalSentinel { .. } => "signal-sentinel".into(),
            Fact::ProcSentinel { .. } => "proc-sentinel".into(),
            Fact::NsLastPid { .. } => fact_key::NS_LAST_PID.into(),
            Fact::HostPidNet { .. } => fact_key::HOST_PID_NET.into(),
            Fact::Hostname { .. } => "hostname".into(),
            Fact::Domainname { .. } => "domainname".into(),
            Fact::SethostnameProbe { .. } => "sethostname-probe".into(),
            Fact::SentinelMount { .. } => "sentinel-mount".into(),
            Fact::OwnMount { .. } => "own-mount".into(),
            Fact::PropagationIn { .. } => fact_key::PROPAGATION_IN.into(),
            Fact::PropagationOut { .. } => fact_key::PROPAGATION_OUT.into(),
            Fact::BindPropagation { .. } => fact_key::BIND_PROPAGATION.into(),
            Fact::InheritedMount { .. } => fact_key::INHERITED_MOUNT.into(),
            Fact::HostMarker { .. } => "host-marker".into(),
            Fact::ChrootEscape { .. } => "chroot-escape".into(),
            Fact::HostIpc { .. } => "host-ipc".into(),
            Fact::OwnIpc { .. } => "own-ipc".into(),
            Fact::AbstractSocket { .. } => "abstract-socket".into(),
            Fact::TcpLoopback { .. } => "tcp-loopback".into(),
            Fact::Links { .. } => "links".into(),
            Fact::SysfsNet { .. } => "sysfs-net".into(),
            Fact::ProcNet { .. } => fact_key::PROC_NET.into(),
            Fact::IdMap { ids, .. } => fact_key::id_map(*ids),
            Fact::FileOwner { .. } => "file-owner".into(),
            Fact::Cgroup { .. } => "cgroup".into(),
            Fact::ClockOffset { clock, source, .. } => fact_key::clock(*clock, *source),
            Fact::Sysctls { kind, .. } => fact_key::sysctls(*kind),
            Fact::GlobalSysctls { .. } => fact_key::GLOBAL_SYSCTLS.into(),
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
    pub const GLOBAL_SYSCTLS: &str = "global-sysctls";
    /// The mount cases' facts.
    pub const PROPAGATION_IN: &str = "propagation-in";
    pub const PROPAGATION_OUT: &str = "propagation-out";
    pub const BIND_PROPAGATION: &str = "bind-propagation";
    pub const INHERITED_MOUNT: &str = "inherited-mount";
    /// The procfs views' facts.
    pub const NS_LAST_PID: &str = "ns-last-pid";
    pub const HOST_PID_NET: &str = "host-pid-net";
    pub const PROC_NET: &str = "proc-net";

    pub fn sysctls(kind: NsKind) -> String {
        format!("sysctls/{kind}")
    }

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
