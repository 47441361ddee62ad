//! The checks: every property isoprobe judges, each named, described and tied to the namespaces it
//! depends on.
//!
//! A check's name reads `<kind>/<property>` (`pid/signal-host-process`). [`CheckId::kinds`] lists
//! every namespace whose presence changes the expected outcome: the oracle may only look at those
//! (a property test holds it to that), and the sensitivity tests use it to say which checks must
//! fail when one namespace is dropped.

use std::fmt;
use std::str::FromStr;

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::wire::{ClockKind, ClockSource};
use serde::{Deserialize, Serialize};

/// The three SysV object types and POSIX message queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpcObject {
    Shm,
    Sem,
    Msg,
    Mqueue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    /// `/proc/self/ns/<kind>` differs from the host's.
    NsInode(NsKind),
    /// getppid() is 0: the parent is outside the pid namespace.
    PidParentOutside,
    /// getpid() is 1 (the first process of a new pid namespace; a joiner is not).
    PidSelfIsInit,
    /// kill(host sentinel, 0) finds the host process.
    PidSignalHostProcess,
    /// /proc lists the host sentinel (with its start time).
    PidProcListsHostProcess,
    /// /proc/sys/kernel/ns_last_pid, read after the probe started a task, is the host's last pid.
    PidNsLastPid,
    /// `/proc/<host sentinel>/net/unix` lists the host's abstract socket.
    PidProcHostNet,
    /// The hostname is the spec's, not the host's.
    UtsHostname,
    /// A domainname set inside is seen by the host.
    UtsDomainnameReachesHost,
    /// A mount the host makes after the container started is visible inside.
    MntHostMountVisible,
    /// A tmpfs mounted inside appears in the host's mount table.
    MntOwnMountReachesHost,
    /// A file on the host's root filesystem is reachable by its host path.
    MntHostRootReachable,
    /// The classic chroot escape reaches the host's root.
    MntChrootEscape,
    /// A mount case: a mount the host makes on its side of the propagation mount point after the
    /// container started shows in the container's copy.
    MntPropagationIn,
    /// A mount case: a mount made on the container's copy shows on the host's side.
    MntPropagationOut,
    /// A mount case: a bind of the container's copy of the propagation mount point is refused.
    MntBindRefused,
    /// A host IPC object is visible by its key or name.
    IpcHostObject(IpcObject),
    /// IPC objects created inside are seen by the host.
    IpcOwnObjectsReachHost,
    /// The host's abstract unix socket accepts a connection.
    NetHostAbstractSocket,
    /// The host's TCP listener on 127.0.0.1 accepts a connection.
    NetHostTcpLoopback,
    /// The links netlink reports: only `lo`, down, in a new network namespace.
    NetLinks,
    /// /sys/class/net shows the host's links.
    NetSysfsClassNet,
    /// /proc/net/unix lists the host's abstract socket.
    NetProcNetUnix,
    /// /proc/net/dev lists the host's links.
    NetProcNetDev,
    /// /proc/self/uid_map.
    UserUidMap,
    /// /proc/self/gid_map.
    UserGidMap,
    /// The owner of a file created inside, as the host sees it.
    UserFileOwnerOnHost,
    /// sethostname on the uts namespace the probe is in is permitted.
    UserCapsReachUts,
    /// A mount case: the host's ro,nosuid,nodev,noexec mount can be unmounted and have its flags
    /// dropped in the container's view (not when a less privileged user namespace locked it).
    UserInheritedMountUndone,
    /// /proc/self/cgroup shows the namespace root.
    CgroupProcSelfCgroup,
    /// A clock's offset from the host's.
    TimeOffset(ClockKind, ClockSource),
    /// Values written to the sysctls the kind owns are seen outside the probe's namespace: by the
    /// host, or by the container a joiner joined (one of `isoprobe_probes::sysctl::KINDS`).
    Sysctls(NsKind),
    /// Global sysctls (no namespace kind owns them) may be opened for writing.
    UserGlobalSysctlsWritable,
}

impl CheckId {
    /// Every check, in report order.
    pub fn all() -> Vec<CheckId> {
        use CheckId::*;
        let mut v: Vec<CheckId> = NsKind::ALL.into_iter().map(NsInode).collect();
        v.extend([PidParentOutside, PidSelfIsInit, PidSignalHostProcess, PidProcListsHostProcess]);
        v.extend([PidNsLastPid, PidProcHostNet]);
        v.push(Sysctls(NsKind::Pid));
        v.extend([UtsHostname, UtsDomainnameReachesHost, Sysctls(NsKind::Uts)]);
        v.extend([MntHostMountVisible, MntOwnMountReachesHost, MntHostRootReachable, MntChrootEscape]);
        v.extend([MntPropagationIn, MntPropagationOut, MntBindRefused]);
        v.extend([IpcObject::Shm, IpcObject::Sem, IpcObject::Msg, IpcObject::Mqueue].map(IpcHostObject));
        v.extend([IpcOwnObjectsReachHost, Sysctls(NsKind::Ipc)]);
        v.extend([NetHostAbstractSocket, NetHostTcpLoopback, NetLinks, NetSysfsClassNet]);
        v.extend([NetProcNetUnix, NetProcNetDev, Sysctls(NsKind::Net)]);
        v.extend([UserUidMap, UserGidMap, UserFileOwnerOnHost, UserCapsReachUts, UserInheritedMountUndone]);
        v.extend([Sysctls(NsKind::User), UserGlobalSysctlsWritable]);
        v.push(CgroupProcSelfCgroup);
        for clock in [ClockKind::Monotonic, ClockKind::Boottime] {
            for source in [ClockSource::Vdso, ClockSource::Syscall] {
                v.push(TimeOffset(clock, source));
            }
        }
        v.push(TimeOffset(ClockKind::Boottime, ClockSource::ProcUptime));
        v
    }

    /// Whether the check is judged in a case of `spec`: the mount case checks need the host's
    /// mount points of a mount case ([`crate::spec::Propagation`]); the rest apply to every
    /// namespace case.
    pub fn applies_to(self, spec: &crate::spec::CaseSpec) -> bool {
        use CheckId::*;
        match self {
            MntPropagationIn | MntPropagationOut | MntBindRefused | UserInheritedMountUndone => {
                spec.propagation.is_some()
            }
            _ => true,
        }
    }

    /// The checks judged in a case of `spec`, in report order.
    pub fn all_for(spec: &crate::spec::CaseSpec) -> Vec<CheckId> {
        CheckId::all().into_iter().filter(|c| c.applies_to(spec)).collect()
    }

    /// The namespace the check is filed under.
    pub fn kind(self) -> NsKind {
        self.kinds()[0]
    }

    /// Every namespace whose presence can change the expected outcome; the first is the one the
    /// check is filed under.
    pub fn kinds(self) -> &'static [NsKind] {
        use CheckId::*;
        use NsKind as K;
        match self {
            NsInode(k) => match k {
                K::Pid => &[K::Pid],
                K::Uts => &[K::Uts],
                K::Mnt => &[K::Mnt],
                K::Ipc => &[K::Ipc],
                K::Net => &[K::Net],
                K::User => &[K::User],
                K::Cgroup => &[K::Cgroup],
                K::Time => &[K::Time],
            },
            PidParentOutside | PidSelfIsInit | PidSignalHostProcess => &[K::Pid],
            // A new pid namespace only hides host processes from /proc once /proc is remounted,
            // which needs a new mount namespace.
            PidProcListsHostProcess => &[K::Pid, K::Mnt],
            // The sysctl reads the reader's own pid namespace, whichever /proc it is read through.
            PidNsLastPid => &[K::Pid],
            // A host process's /proc entry shows its network namespace: the probe's own network
            // namespace changes nothing, only whether its /proc lists host processes.
            PidProcHostNet => &[K::Pid, K::Mnt],
            UtsHostname => &[K::Uts],
            // Without a new uts namespace, a new user namespace lacks CAP_SYS_ADMIN over the host's.
            UtsDomainnameReachesHost => &[K::Uts, K::User],
            MntHostMountVisible | MntHostRootReachable | MntChrootEscape => &[K::Mnt],
            MntOwnMountReachesHost => &[K::Mnt, K::User],
            // Only a copy in a new mount namespace can have a mode of its own; the host's mounts
            // reach it whoever owns it.
            MntPropagationIn => &[K::Mnt],
            // A mount namespace owned by a new user namespace gets slave copies of shared mounts
            // and locked ones; in the host's, mounting and binding need CAP_SYS_ADMIN there.
            MntPropagationOut | MntBindRefused => &[K::Mnt, K::User],
            // Mounts are locked by the user namespace that owns the mount namespace; without a
            // mount namespace of its own the probe needs CAP_SYS_ADMIN in the host's.
            UserInheritedMountUndone => &[K::User, K::Mnt],
            IpcHostObject(_) | IpcOwnObjectsReachHost => &[K::Ipc],
            // /proc/net is `self/net`: the reader's network namespace, whoever mounted the /proc.
            NetHostAbstractSocket | NetHostTcpLoopback | NetLinks | NetProcNetUnix | NetProcNetDev => &[K::Net],
            // sysfs shows the network namespace of whoever mounted it.
            NetSysfsClassNet => &[K::Net, K::Mnt],
            UserUidMap | UserGidMap | UserFileOwnerOnHost => &[K::User],
            UserCapsReachUts => &[K::User, K::Uts],
            CgroupProcSelfCgroup => &[K::Cgroup],
            TimeOffset(..) => &[K::Time],
            // Whether the probe may write an entry depends on its uid outside and its capabilities
            // in the owning user namespace (see the oracle).
            Sysctls(k) => match k {
                K::Pid => &[K::Pid, K::User],
                K::Uts => &[K::Uts, K::User],
                K::Ipc => &[K::Ipc, K::User],
                K::Net => &[K::Net, K::User],
                // The other kinds own no sysctls (`CheckId::all` lists only those that do).
                K::User | K::Mnt | K::Cgroup | K::Time => &[K::User],
            },
            UserGlobalSysctlsWritable => &[K::User],
        }
    }

    /// `<kind>/<property>`: what reports, `--filter` and `compare` know the check by. A literal per
    /// check, not a string made per call: reports name every check of every case several times
    /// (their counts, failures and JSON), some 30000 checks in a run of the namespace matrix.
    pub fn name(self) -> &'static str {
        use CheckId::*;
        use NsKind as K;
        match self {
            NsInode(K::Pid) => "pid/ns-inode",
            NsInode(K::Uts) => "uts/ns-inode",
            NsInode(K::Mnt) => "mnt/ns-inode",
            NsInode(K::Ipc) => "ipc/ns-inode",
            NsInode(K::Net) => "net/ns-inode",
            NsInode(K::User) => "user/ns-inode",
            NsInode(K::Cgroup) => "cgroup/ns-inode",
            NsInode(K::Time) => "time/ns-inode",
            PidParentOutside => "pid/parent-outside",
            PidSelfIsInit => "pid/self-is-init",
            PidSignalHostProcess => "pid/signal-host-process",
            PidProcListsHostProcess => "pid/proc-lists-host-process",
            PidNsLastPid => "pid/ns-last-pid",
            PidProcHostNet => "pid/proc-host-net",
            UtsHostname => "uts/hostname",
            UtsDomainnameReachesHost => "uts/domainname-reaches-host",
            MntHostMountVisible => "mnt/host-mount-visible",
            MntOwnMountReachesHost => "mnt/own-mount-reaches-host",
            MntHostRootReachable => "mnt/host-root-reachable",
            MntChrootEscape => "mnt/chroot-escape",
            MntPropagationIn => "mnt/propagation-in",
            MntPropagationOut => "mnt/propagation-out",
            MntBindRefused => "mnt/bind-refused",
            UserInheritedMountUndone => "user/inherited-mount-undone",
            IpcHostObject(IpcObject::Shm) => "ipc/host-shm",
            IpcHostObject(IpcObject::Sem) => "ipc/host-sem",
            IpcHostObject(IpcObject::Msg) => "ipc/host-msg",
            IpcHostObject(IpcObject::Mqueue) => "ipc/host-mqueue",
            IpcOwnObjectsReachHost => "ipc/own-objects-reach-host",
            NetHostAbstractSocket => "net/host-abstract-socket",
            NetHostTcpLoopback => "net/host-tcp-loopback",
            NetLinks => "net/links",
            NetSysfsClassNet => "net/sysfs-class-net",
            NetProcNetUnix => "net/proc-net-unix",
            NetProcNetDev => "net/proc-net-dev",
            UserUidMap => "user/uid-map",
            UserGidMap => "user/gid-map",
            UserFileOwnerOnHost => "user/file-owner-on-host",
            UserCapsReachUts => "user/caps-reach-uts",
            CgroupProcSelfCgroup => "cgroup/proc-self-cgroup",
            Sysctls(K::Pid) => "pid/sysctls-seen-outside",
            Sysctls(K::Uts) => "uts/sysctls-seen-outside",
            Sysctls(K::Mnt) => "mnt/sysctls-seen-outside",
            Sysctls(K::Ipc) => "ipc/sysctls-seen-outside",
            Sysctls(K::Net) => "net/sysctls-seen-outside",
            Sysctls(K::User) => "user/sysctls-seen-outside",
            Sysctls(K::Cgroup) => "cgroup/sysctls-seen-outside",
            Sysctls(K::Time) => "time/sysctls-seen-outside",
            UserGlobalSysctlsWritable => "user/global-sysctls-writable",
            TimeOffset(ClockKind::Monotonic, ClockSource::Vdso) => "time/monotonic-vdso",
            TimeOffset(ClockKind::Monotonic, ClockSource::Syscall) => "time/monotonic-syscall",
            TimeOffset(ClockKind::Boottime, ClockSource::Vdso) => "time/boottime-vdso",
            TimeOffset(ClockKind::Boottime, ClockSource::Syscall) => "time/boottime-syscall",
            // Read once, for both clocks' offsets (`CheckId::all` lists it under boottime).
            TimeOffset(_, ClockSource::ProcUptime) => "time/proc-uptime",
        }
    }

    /// One sentence on what the check shows, for reports and `isoprobe list`.
    pub fn description(self) -> &'static str {
        use CheckId::*;
        match self {
            NsInode(_) => "st_dev/st_ino of /proc/self/ns/<kind> differ from the host's",
            PidParentOutside => "getppid() returns 0: the parent lives outside the pid namespace",
            PidSelfIsInit => "getpid() returns 1 for the first process of a new pid namespace",
            PidSignalHostProcess => "kill(host process, 0) gives ESRCH when the pid namespace is new",
            PidProcListsHostProcess => "/proc lists a host process (same pid and start time)",
            PidNsLastPid => {
                "/proc/sys/kernel/ns_last_pid read after a new task is the host's last pid, not the task's id in the \
                 probe's own pid namespace"
            }
            PidProcHostNet => "/proc/<host process>/net/unix lists the host's abstract socket",
            UtsHostname => "the hostname is the one the spec set, not the host's",
            UtsDomainnameReachesHost => "a NIS domainname set inside shows on the host",
            MntHostMountVisible => "a mount the host makes after the start is visible inside",
            MntOwnMountReachesHost => "a tmpfs mounted inside appears in the host's mount table",
            MntHostRootReachable => "a file on the host's root is reachable by its host path",
            MntChrootEscape => "nested chroot + fchdir + chdir(\"..\") reaches the host's root",
            MntPropagationIn => "a mount the host makes on its propagation mount point after the start shows inside",
            MntPropagationOut => {
                "a mount made on the container's copy of the propagation mount point shows on the host"
            }
            MntBindRefused => "a bind of the container's copy of the propagation mount point is refused (unbindable)",
            UserInheritedMountUndone => {
                "a host mount (ro,nosuid,nodev,noexec) can be unmounted and have its flags dropped inside (not locked)"
            }
            IpcHostObject(_) => "a host IPC object is found by its key or name",
            IpcOwnObjectsReachHost => "SysV and POSIX IPC objects created inside are seen by the host",
            NetHostAbstractSocket => "connect() to the host's abstract unix socket succeeds",
            NetHostTcpLoopback => "connect() to the host's 127.0.0.1 TCP listener succeeds",
            NetLinks => "the links netlink reports are the host's (shared) or only lo, down (new)",
            NetSysfsClassNet => "/sys/class/net lists the host's links",
            NetProcNetUnix => "/proc/net/unix lists the host's abstract socket",
            NetProcNetDev => "/proc/net/dev lists the host's links",
            UserUidMap => "/proc/self/uid_map is the spec's map (identity when shared)",
            UserGidMap => "/proc/self/gid_map is the spec's map (identity when shared)",
            UserFileOwnerOnHost => "a file created as root inside is owned by the mapped id on the host",
            UserCapsReachUts => "sethostname on the probe's uts namespace is permitted",
            CgroupProcSelfCgroup => "/proc/self/cgroup shows `/` (the namespace root) for every hierarchy",
            TimeOffset(..) => "the clock reads the host's plus the requested offset",
            Sysctls(_) => {
                "values written to the kind's /proc/sys entries are seen outside: by the host, or by the container a \
                 joiner joined"
            }
            UserGlobalSysctlsWritable => "global /proc/sys entries (no namespace kind owns them) open for writing",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check `{0}` (`isoprobe list --checks` prints them all)")]
pub struct UnknownCheck(pub String);

impl FromStr for CheckId {
    type Err = UnknownCheck;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckId::all().into_iter().find(|c| c.name() == s).ok_or_else(|| UnknownCheck(s.into()))
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl schemars::JsonSchema for CheckId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CheckId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = CheckId::all().into_iter().map(CheckId::name).collect();
        schemars::json_schema!({ "description": "a check, `<kind>/<property>`", "type": "string", "enum": names })
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let all = CheckId::all();
        let names: std::collections::BTreeSet<&str> = all.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), all.len());
        for c in all {
            assert_eq!(c.name().parse::<CheckId>().unwrap(), c);
            let (kind, property) = c.name().split_once('/').unwrap_or_else(|| panic!("{c}: no `/`"));
            assert_eq!(kind, c.kind().name(), "{c} is filed under {}", c.kind());
            assert!(!property.is_empty() && !property.contains('/'), "{c}");
        }
    }

    #[test]
    fn every_kind_has_an_identity_check_and_a_behavioural_one() {
        for k in NsKind::ALL {
            let behavioural =
                CheckId::all().into_iter().filter(|c| c.kind() == k && !matches!(c, CheckId::NsInode(_))).count();
            assert!(behavioural >= 1, "{k} has no behavioural check");
        }
    }
}
