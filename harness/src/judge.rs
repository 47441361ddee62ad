//! From facts to verdicts: what a check observed (classified against the host's view), compared
//! with what the oracle expects.
//!
//! The probe sends raw evidence; this module turns it into a [`Seen`] value of the same shape as
//! an [`Expect`], keeping the evidence for the report. It never decides what *should* be seen.

use std::collections::BTreeMap;
use std::fmt;

mod mounts;

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::wire::{
    Attempt, CapabilityTest, Fact, IdKind, Link, NotWritten, Refusal, SysResult, SysctlObservation, SysctlTest,
    SysctlWrite, fact_key,
};

use crate::check::{CheckId, IpcObject};
use crate::oracle::{Expect, fmt_ns, id_map_text};
use crate::requirement::Requirement;
use crate::spec::CaseSpec;
use crate::verdict::Verdict;

/// What the harness knows of the host, to tell "shared" from "isolated", and the host-side
/// controls that give a "not there" its meaning: an observation that found nothing counts as
/// isolation only if the host's own object was alive and reachable from the host in the same
/// case.
#[derive(Debug, Clone, Default)]
pub struct HostView {
    /// The host's hostname, read again after the probe finished (a probe that renamed the host
    /// would otherwise compare with a stale name).
    pub hostname: String,
    /// st_dev/st_ino of the harness's own `/proc/self/ns/<kind>`.
    pub ns: BTreeMap<NsKind, (u64, u64)>,
    pub links: Vec<Link>,
    /// Entries of the host's /sys/class/net, sorted.
    pub sys_class_net: Vec<String>,
    /// `/proc/<probe>/cgroup` as the host reads it.
    pub probe_cgroup: Vec<String>,
    /// The host-side controls, checked after the probe finished (`Err` says what failed).
    pub controls: Controls,
    /// What the host saw of the sysctls the probe wrote in its own namespaces.
    pub sysctls: crate::sysctl::SysctlView,
    /// The harness's /proc/sys/kernel/ns_last_pid before the hello and after the probe finished:
    /// every pid the host's pid namespace gave out meanwhile lies in `(before, after]` (pids are
    /// given out in cyclic order, alloc_pid), the host-level id of the probe's new task among them.
    pub ns_last_pid: Option<(i32, i32)>,
}

/// Whether each host sentinel was alive and reachable from the host when the probe had looked.
#[derive(Debug, Clone)]
pub struct Controls {
    /// The pid sentinel is still the process it was (pid and start time).
    pub pid_sentinel: Result<(), String>,
    /// connect(2) from the host to the abstract socket.
    pub abstract_socket: Result<(), String>,
    /// connect(2) from the host to the TCP listener.
    pub tcp_listener: Result<(), String>,
    /// The host's SysV objects and queue still exist, by key and name: [shm, sem, msg, mq].
    pub ipc: [Result<(), String>; 4],
    /// The host marker file holds its token.
    pub host_marker: Result<(), String>,
    /// The harness may open the host's `user/max_*` for writing: set_permissions (kernel/ucount.c)
    /// wants CAP_SYS_RESOURCE in the initial user namespace, which a root with a reduced bounding
    /// set lacks, and then a probe in the host's user namespace is refused as a user namespace's
    /// root would be.
    pub user_limits: Result<(), String>,
}

impl Default for Controls {
    /// Every control met (for unit tests of the classification).
    fn default() -> Self {
        Controls {
            pid_sentinel: Ok(()),
            abstract_socket: Ok(()),
            tcp_listener: Ok(()),
            ipc: [Ok(()), Ok(()), Ok(()), Ok(())],
            host_marker: Ok(()),
            user_limits: Ok(()),
        }
    }
}

/// "Not there" (`seen` is isolation) counts only when the host-side `control` held: the object
/// was alive and reachable from the host in the same case. Otherwise the check is an error.
fn proven(seen: Seen, control: &Result<(), String>, what: &str) -> Result<Seen, Verdict> {
    match (seen, control) {
        (Seen::Isolated, Err(e)) => Err(Verdict::Error {
            cause: format!(
                "the probe did not find {what}, but the host's control failed too, so that proves nothing: {e}"
            ),
        }),
        (seen, _) => Ok(seen),
    }
}

/// The facts of one probe run, by key.
#[derive(Debug, Clone, Default)]
pub struct Facts(BTreeMap<String, Fact>);

impl Facts {
    /// Adds a fact; a second fact with the same key is a protocol error.
    pub fn insert(&mut self, fact: Fact) -> Result<(), String> {
        let key = fact.key();
        if self.0.contains_key(&key) {
            return Err(format!("the probe reported `{key}` twice"));
        }
        self.0.insert(key, fact);
        Ok(())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&Fact> {
        self.0.get(key)
    }
}

/// An observation, in the shape of [`Expect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Shared,
    Isolated,
    Flag(bool),
    Value(String),
    /// The true offset lies in `[lo, hi]` nanoseconds.
    OffsetRange(i64, i64),
    /// Neither shared nor isolated: something else (the evidence says what).
    Other(String),
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Shared => f.write_str("shared"),
            Seen::Isolated => f.write_str("isolated"),
            Seen::Flag(b) => f.write_str(if *b { "yes" } else { "no" }),
            Seen::Value(v) => write!(f, "{v:?}"),
            Seen::OffsetRange(lo, hi) => write!(f, "offset in [{}, {}]", fmt_ns(*lo), fmt_ns(*hi)),
            Seen::Other(s) => write!(f, "neither ({s})"),
        }
    }
}

/// An observation with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub seen: Seen,
    pub evidence: String,
}

fn obs(seen: Seen, evidence: impl Into<String>) -> Result<Observed, Verdict> {
    Ok(Observed { seen, evidence: evidence.into() })
}

fn shared_if(b: bool) -> Seen {
    if b { Seen::Shared } else { Seen::Isolated }
}

/// Compares an observation with the expectation.
pub fn judge(expected: &Expect, observed: &Observed) -> Verdict {
    let ok = match (expected, &observed.seen) {
        (Expect::Shared, Seen::Shared) | (Expect::Isolated, Seen::Isolated) => true,
        (Expect::Flag(a), Seen::Flag(b)) => a == b,
        (Expect::Value(a), Seen::Value(b)) => a == b,
        (Expect::OffsetNs(want), Seen::OffsetRange(lo, hi)) => lo <= want && want <= hi,
        _ => false,
    };
    let (expected, observed_text, evidence) =
        (expected.to_string(), observed.seen.to_string(), observed.evidence.clone());
    if ok {
        Verdict::Pass { expected, observed: observed_text, evidence }
    } else {
        Verdict::Fail { expected, observed: observed_text, evidence }
    }
}

/// Judges one check: the oracle's expectation against the facts.
pub fn verdict(check: CheckId, expected: &Expect, facts: &Facts, host: &HostView, spec: &CaseSpec) -> Verdict {
    match observe(check, facts, host, spec) {
        Ok(o) => judge(expected, &o),
        Err(v) => v,
    }
}

/// Classifies the facts for `check`. `Err` carries a Skip or Error verdict.
pub fn observe(check: CheckId, facts: &Facts, host: &HostView, spec: &CaseSpec) -> Result<Observed, Verdict> {
    use CheckId::*;
    let key = fact_key_for(check);
    let fact = match facts.get(&key) {
        Some(Fact::Unobservable { error, .. }) => return Err(Verdict::Error { cause: error.clone() }),
        Some(f) => f,
        None => return Err(Verdict::Error { cause: format!("the probe sent no `{key}` fact") }),
    };
    let wrong = || Verdict::Error { cause: format!("fact `{key}` has an unexpected shape: {fact:?}") };
    match (check, fact) {
        (NsInode(kind), Fact::NsIdentity { dev, ino, .. }) => {
            let Some(&(hd, hi)) = host.ns.get(&kind) else {
                return Err(skip_verdict(
                    Requirement::HostNamespace(kind),
                    format!("the host has no /proc/self/ns/{kind}"),
                ));
            };
            obs(shared_if((*dev, *ino) == (hd, hi)), format!("probe {dev}:{ino}, host {hd}:{hi}"))
        }
        (PidParentOutside, Fact::Pids { ppid, .. }) => obs(shared_if(*ppid != 0), format!("getppid() = {ppid}")),
        (PidSelfIsInit, Fact::Pids { pid, .. }) => obs(Seen::Flag(*pid == 1), format!("getpid() = {pid}")),
        (PidSignalHostProcess, Fact::SignalSentinel { result }) => {
            let seen = match result.errno() {
                None | Some(libc::EPERM) => Seen::Shared,
                Some(libc::ESRCH) => Seen::Isolated,
                Some(_) => Seen::Other(result.to_string()),
            };
            let seen = proven(seen, &host.controls.pid_sentinel, "the host's sleeping process")?;
            obs(seen, format!("kill(host process, 0) = {result}"))
        }
        (PidProcListsHostProcess, Fact::ProcSentinel { listed, tagged, foreign }) => {
            let seen = host_pid_seen(*listed, *tagged, *foreign, "the pid is listed but is another process");
            let seen = proven(seen, &host.controls.pid_sentinel, "the host's sleeping process")?;
            obs(seen, format!("/proc/<host pid> listed: {listed}, with the sentinel's tag: {tagged}"))
        }
        (PidNsLastPid, Fact::NsLastPid { child, last_pid }) => ns_last_pid_seen(*child, *last_pid, host),
        (PidProcHostNet, Fact::HostPidNet { listed, lists_socket, foreign }) => {
            let other = "/proc/<host pid>/net/unix exists but does not list the host's socket";
            let seen = host_pid_seen(*listed, *lists_socket, *foreign, other);
            let seen = proven(seen, &host.controls.pid_sentinel, "the host's sleeping process")?;
            let seen = proven(seen, &host.controls.abstract_socket, "the host's listener")?;
            obs(seen, format!("/proc/<host pid>/net/unix exists: {listed}, lists the host's socket: {lists_socket}"))
        }
        (UtsHostname, Fact::Hostname { hostname }) => {
            let seen = if spec.hostname.as_deref() == Some(hostname.as_str()) && *hostname != host.hostname {
                Seen::Isolated
            } else if *hostname == host.hostname {
                Seen::Shared
            } else {
                Seen::Other(format!("hostname {hostname:?}"))
            };
            obs(seen, format!("uname: {hostname:?}, host: {:?}", host.hostname))
        }
        (UtsDomainnameReachesHost, Fact::Domainname { attempt, host_saw_token }) => match attempt {
            // The probe is in the harness's uts namespace: the token was never written, and the
            // capability test says whether it would have reached the host.
            Attempt::Refused { shared, probe } => obs(
                capability_seen(probe),
                format!(
                    "the probe's uts namespace is the harness's ({shared}): setdomainname of the token refused by the \
                     interlock; setdomainname of a name too long = {probe} ({})",
                    capability_text(probe)
                ),
            ),
            Attempt::Made { result } if result.is_ok() => {
                obs(shared_if(*host_saw_token), format!("setdomainname: ok; host saw the token: {host_saw_token}"))
            }
            Attempt::Made { result } => obs(
                Seen::Other(format!("setdomainname failed in the probe's own uts namespace: {result}")),
                "nothing was set, so the host's view proves nothing",
            ),
        },
        (UserCapsReachUts, Fact::SethostnameProbe { result }) => obs(
            capability_seen(result),
            format!("sethostname of a name too long = {result} ({})", capability_text(result)),
        ),
        (MntHostMountVisible, Fact::SentinelMount { visible, detail }) => match visible {
            Some(v) => obs(shared_if(*v), detail.clone()),
            None => Err(skip_verdict(Requirement::Root, detail.clone())),
        },
        (MntOwnMountReachesHost, Fact::OwnMount { attempt, host_saw }) => match attempt {
            Attempt::Refused { shared, probe } => obs(
                capability_seen(probe),
                format!(
                    "the probe's mount namespace is the harness's ({shared}): mounting its tmpfs refused by the \
                     interlock; mount with an invalid option = {probe} ({}); host saw a mount: {host_saw}",
                    capability_text(probe)
                ),
            ),
            Attempt::Made { result } if result.is_ok() => {
                obs(shared_if(*host_saw), format!("mount tmpfs: ok; host saw it: {host_saw}"))
            }
            Attempt::Made { result } => obs(
                Seen::Other(format!("mounting a tmpfs failed in the probe's own mount namespace: {result}")),
                format!("nothing was mounted, so the host's table proves nothing (host saw a mount: {host_saw})"),
            ),
        },
        (MntHostRootReachable, Fact::HostMarker { reachable, detail }) => {
            let seen = match reachable {
                Some(r) => shared_if(*r),
                None => Seen::Other(format!("reading the marker failed with an error other than ENOENT: {detail}")),
            };
            let seen = proven(seen, &host.controls.host_marker, "the host's marker file")?;
            obs(seen, detail.clone())
        }
        (MntChrootEscape, Fact::ChrootEscape { reached_host, detail, old_root_mount }) => match reached_host {
            Some(true) => obs(Seen::Shared, detail.clone()),
            // Not reached by climbing, and the host's root must be gone from the mount table too.
            Some(false) => match old_root_mount {
                Some(at) => obs(
                    Seen::Other(format!("the host's root is still mounted at {at} in the probe's mount table")),
                    detail.clone(),
                ),
                None => {
                    let seen = proven(Seen::Isolated, &host.controls.host_marker, "the host's marker file")?;
                    obs(seen, format!("{detail}; the host's root is in no mount of the probe's table"))
                }
            },
            None if detail.starts_with("not attempted") => Err(skip_verdict(
                Requirement::Root,
                format!("the chroot escape takes CAP_SYS_CHROOT in the probe's user namespace: {detail}"),
            )),
            None => obs(Seen::Other(detail.clone()), detail.clone()),
        },
        (IpcHostObject(o), Fact::HostIpc { shm, sem, msg, mq }) => {
            let l = match o {
                IpcObject::Shm => shm,
                IpcObject::Sem => sem,
                IpcObject::Msg => msg,
                IpcObject::Mqueue => mq,
            };
            let seen = match l.visible() {
                Some(v) => shared_if(v),
                None => Seen::Other(l.to_string()),
            };
            let i = match o {
                IpcObject::Shm => 0,
                IpcObject::Sem => 1,
                IpcObject::Msg => 2,
                IpcObject::Mqueue => 3,
            };
            let seen = proven(seen, &host.controls.ipc[i], "the host's IPC object")?;
            obs(seen, format!("lookup by key/name: {l}"))
        }
        (IpcOwnObjectsReachHost, Fact::OwnIpc { created, host_saw, failed }) => {
            // Only what the probe did create can prove anything; the host seeing an object the
            // probe failed to create is neither sharing nor isolation.
            let pairs = [
                (created.shm, host_saw.shm),
                (created.sem, host_saw.sem),
                (created.msg, host_saw.msg),
                (created.mq, host_saw.mq),
            ];
            let made: Vec<bool> = pairs.iter().filter(|(c, _)| *c).map(|(_, s)| *s).collect();
            let seen = if pairs.iter().any(|(c, s)| *s && !*c) {
                Seen::Other(format!("the host saw an object the probe failed to create: {host_saw:?}"))
            } else if made.is_empty() {
                Seen::Other(format!("the probe could create none of its objects: {}", failed.join(", ")))
            } else if made.iter().all(|s| *s) {
                Seen::Shared
            } else if made.iter().all(|s| !*s) {
                Seen::Isolated
            } else {
                Seen::Other(format!("host saw only some: {host_saw:?}"))
            };
            let refused =
                if failed.is_empty() { String::new() } else { format!("; not created: {}", failed.join(", ")) };
            obs(seen, format!("created {created:?}; host saw {host_saw:?}{refused}"))
        }
        // An abstract name that is not bound refuses (ECONNREFUSED); a loopback port nobody
        // listens on refuses too, and a network namespace whose lo is down has no route to it.
        (NetHostAbstractSocket, Fact::AbstractSocket { connect }) => {
            let seen = proven(
                connect_seen(connect, &[libc::ECONNREFUSED]),
                &host.controls.abstract_socket,
                "the host's listener",
            )?;
            obs(seen, format!("connect: {connect}"))
        }
        (NetHostTcpLoopback, Fact::TcpLoopback { connect }) => {
            let seen = connect_seen(connect, &[libc::ECONNREFUSED, libc::ENETUNREACH]);
            let seen = proven(seen, &host.controls.tcp_listener, "the host's listener")?;
            obs(seen, format!("connect: {connect}"))
        }
        (NetLinks, Fact::Links { links }) => {
            let is_fresh = |l: &[Link]| l.len() == 1 && l[0].name == "lo" && !l[0].up;
            if is_fresh(&host.links) {
                return Err(indistinguishable_net("the host's only link is lo, down, as in a fresh network namespace"));
            }
            let fresh = is_fresh(links);
            let seen = if *links == host.links {
                Seen::Shared
            } else if fresh {
                Seen::Isolated
            } else {
                Seen::Other("neither the host's links nor a fresh namespace's".into())
            };
            obs(seen, format!("netlink: {}; host: {}", fmt_links(links), fmt_links(&host.links)))
        }
        (NetSysfsClassNet, Fact::SysfsNet { entries }) => {
            if host.sys_class_net == ["lo"] {
                return Err(indistinguishable_net(
                    "the host's /sys/class/net holds only lo, as a fresh network namespace's does",
                ));
            }
            let seen = if *entries == host.sys_class_net {
                Seen::Shared
            } else if entries == &["lo"] {
                Seen::Isolated
            } else {
                Seen::Other("neither the host's nor only lo".into())
            };
            obs(seen, format!("/sys/class/net: {entries:?}; host: {:?}", host.sys_class_net))
        }
        (NetProcNetUnix, Fact::ProcNet { unix_lists_socket, .. }) => {
            let seen = proven(shared_if(*unix_lists_socket), &host.controls.abstract_socket, "the host's listener")?;
            obs(seen, format!("/proc/net/unix lists the host's abstract socket: {unix_lists_socket}"))
        }
        (NetProcNetDev, Fact::ProcNet { dev, .. }) => {
            let mut names: Vec<String> = host.links.iter().map(|l| l.name.clone()).collect();
            names.sort();
            if names == ["lo"] {
                return Err(indistinguishable_net("the host's only link is lo, as a fresh network namespace's is"));
            }
            let seen = if *dev == names {
                Seen::Shared
            } else if dev == &["lo"] {
                Seen::Isolated
            } else {
                Seen::Other("neither the host's links nor only lo".into())
            };
            obs(seen, format!("/proc/net/dev: {dev:?}; host: {names:?}"))
        }
        (UserUidMap | UserGidMap, Fact::IdMap { lines, ids }) => {
            let what = if *ids == IdKind::Uid { "uid_map" } else { "gid_map" };
            obs(Seen::Value(id_map_text(lines)), format!("/proc/self/{what}"))
        }
        (UserFileOwnerOnHost, Fact::FileOwner { uid, gid }) => {
            obs(Seen::Value(format!("{uid}:{gid}")), "stat(2) by the host of a file the probe created")
        }
        (CgroupProcSelfCgroup, Fact::Cgroup { lines }) => {
            // Lines are compared by hierarchy id, over the hierarchies both views list: a v1
            // hierarchy mounted or torn down elsewhere on the machine in between adds or blanks a
            // line in one view only, and says nothing about this probe.
            let (probe, hostv) = (cgroup_paths(lines), cgroup_paths(&host.probe_cgroup));
            let common: Vec<&str> = probe.keys().filter(|id| hostv.contains_key(*id)).map(|id| id.as_str()).collect();
            if !common.iter().any(|id| hostv[*id] != "/") {
                return Err(skip_verdict(
                    Requirement::Distinguishable("cgroup:distinct-path"),
                    "the probe's cgroups are all `/` as the host sees them, so a cgroup namespace cannot be told \
                     from the host's (a per-case cgroup needs root and cgroup2)",
                ));
            }
            let seen = if common.iter().all(|id| probe[*id] == "/") {
                Seen::Isolated
            } else if common.iter().all(|id| probe[*id] == hostv[*id]) {
                Seen::Shared
            } else {
                Seen::Other("paths relative to some other root".into())
            };
            obs(seen, format!("probe: {lines:?}; host's view of the probe: {:?}", host.probe_cgroup))
        }
        (Sysctls(kind), Fact::Sysctls { observed, .. }) => match observed {
            SysctlObservation::Harness { shared, tests } => {
                let (seen, evidence) = capability_tests_seen(tests, spec)?;
                if let (NsKind::User, Seen::Isolated, Err(e)) = (kind, &seen, &host.controls.user_limits) {
                    return Err(skip_verdict(
                        Requirement::Capability("sys_resource"),
                        format!(
                            "the probe is in the harness's user namespace and refused its user.max_* entries, as the \
                             harness itself is ({e}): a user namespace's root is refused alike, so the two cannot be \
                             told apart"
                        ),
                    ));
                }
                obs(
                    seen,
                    format!(
                        "the probe's {kind} namespace is the harness's ({shared}): nothing written (the interlock); {evidence}"
                    ),
                )
            }
            SysctlObservation::Own { written, skipped } => {
                own_sysctls_seen(kind, written, skipped, &host.sysctls, spec)
            }
        },
        (UserGlobalSysctlsWritable, Fact::GlobalSysctls { tests }) => {
            // The known global entries under a kind's tree are named apart: a leak the table
            // documents, not counted (see `isoprobe_probes::sysctl::KNOWN_GLOBAL`).
            let (known, tests): (Vec<SysctlTest>, Vec<SysctlTest>) =
                tests.iter().cloned().partition(|t| isoprobe_probes::sysctl::known_global(&t.path).is_some());
            let (seen, evidence) = capability_tests_seen(&tests, spec)?;
            let known: Vec<String> = known.iter().map(|t| format!("{}: {}", t.path, t.result)).collect();
            let known = if known.is_empty() {
                String::new()
            } else {
                format!(
                    "; known global entries behind a namespaced name, not counted (sysctl::KNOWN_GLOBAL): {}",
                    known.join(", ")
                )
            };
            let scope = spec.sysctl_stripe.map(|s| format!(", {s}")).unwrap_or_default();
            obs(seen, format!("global entries (no namespace kind owns them{scope}): {evidence}{known}"))
        }
        (TimeOffset(..), Fact::ClockOffset { lo_ns, hi_ns, .. }) => obs(
            Seen::OffsetRange(*lo_ns, *hi_ns),
            format!("probe clock minus host clock, bracketed by two probe readings ({} wide)", fmt_ns(hi_ns - lo_ns)),
        ),
        (MntPropagationIn, Fact::PropagationIn { visible, detail }) => obs(shared_if(*visible), detail.clone()),
        (MntPropagationOut, Fact::PropagationOut { attempt, host_saw }) => mounts::propagation_out(attempt, *host_saw),
        (MntBindRefused, Fact::BindPropagation { attempt }) => mounts::bind_refused(attempt),
        (UserInheritedMountUndone, Fact::InheritedMount { remount, unmount, covered_seen }) => {
            mounts::inherited_mount_undone(remount, unmount, *covered_seen)
        }
        _ => Err(wrong()),
    }
}

/// What the probe's /proc shows under the host sentinel's pid: `listed` (the entry exists) and
/// `is_it` (it is the sentinel's: its tag, its socket) is shared, not listed is isolated; listed as
/// something else is `other`; a /proc of a pid namespace the probe is not in proves nothing.
fn host_pid_seen(listed: bool, is_it: bool, foreign: bool, other: &str) -> Seen {
    match (listed, is_it) {
        _ if foreign => Seen::Other(
            "the probe's /proc belongs to a pid namespace the probe is not in (it has no `self` for it)".into(),
        ),
        (true, true) => Seen::Shared,
        (false, _) => Seen::Isolated,
        (true, false) => Seen::Other(other.into()),
    }
}

/// ns_last_pid after the probe's new task (a thread): the host's last pid (shared) lies in the
/// window of pids the host gave out during the case; the probe's own namespace's is its task's
/// id, which only a pid namespace of its own keeps out of that window. The window is the control:
/// the probe's task took a host pid in it, so an empty one means the host's reading proves nothing.
fn ns_last_pid_seen(child: i32, last_pid: Option<i32>, host: &HostView) -> Result<Observed, Verdict> {
    let Some(last) = last_pid else {
        return Err(skip_verdict(
            Requirement::Host("ns_last_pid"),
            "the kernel has no /proc/sys/kernel/ns_last_pid (CONFIG_CHECKPOINT_RESTORE)",
        ));
    };
    let Some((before, after)) = host.ns_last_pid.filter(|(b, a)| b != a) else {
        return Err(Verdict::Error {
            cause: format!(
                "the host's ns_last_pid window {:?} is unread or empty, though the probe's task took a host pid in it",
                host.ns_last_pid
            ),
        });
    };
    // (before, after], cyclically: alloc_pid (kernel/pid.c) wraps from pid_max back to
    // RESERVED_PIDS (include/linux/threads.h), never below it once past it.
    const RESERVED_PIDS: i32 = 300;
    let host_gave = |p: i32| {
        if before < after { before < p && p <= after } else { p > before || (RESERVED_PIDS..=after).contains(&p) }
    };
    let seen = if host_gave(last) {
        Seen::Shared
    } else if last == child {
        Seen::Isolated
    } else {
        Seen::Other("neither a pid the host gave out during the case nor the probe's task's".into())
    };
    obs(seen, format!("ns_last_pid {last} after a task with id {child}; the host gave out ({before}, {after}]"))
}

/// The skip verdict of a check that lacks `r`.
fn skip_verdict(r: Requirement, reason: impl Into<String>) -> Verdict {
    let s = r.skip(reason);
    Verdict::Skip { requirement: s.requirement, reason: s.reason }
}

/// The skip of a net check on a host that looks like a fresh network namespace (a minimal VM with
/// only loopback): sharing and isolation would be the same observation.
fn indistinguishable_net(why: &str) -> Verdict {
    skip_verdict(
        Requirement::Distinguishable("net:host-link"),
        format!("{why}, so the two cannot be told apart (a host with any other link can)"),
    )
}

/// /proc/<pid>/cgroup lines (`id:controllers:path`) as hierarchy id → path.
fn cgroup_paths(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            Some((f.next()?.to_owned(), f.nth(1)?.to_owned()))
        })
        .collect()
}

/// A connect(2): made is shared, an errno of `absent` (what "nobody listens here" gives) is
/// isolated, anything else is neither.
fn connect_seen(r: &SysResult, absent: &[i32]) -> Seen {
    match r.errno() {
        None => Seen::Shared,
        Some(e) if absent.contains(&e) => Seen::Isolated,
        Some(_) => Seen::Other(r.to_string()),
    }
}

/// A capability test (a call the kernel refuses after its permission check, see the probe's
/// interlock): EINVAL means the permission check passed (the step would reach that namespace),
/// EPERM or EACCES that it did not.
fn capability_seen(r: &SysResult) -> Seen {
    match r.errno() {
        Some(libc::EINVAL) => Seen::Shared,
        Some(libc::EPERM | libc::EACCES) => Seen::Isolated,
        _ => Seen::Other(format!("a capability test gave {r}, neither EINVAL nor EPERM")),
    }
}

fn capability_text(r: &SysResult) -> &'static str {
    match r.errno() {
        Some(libc::EINVAL) => "past the capability check: permitted",
        Some(libc::EPERM | libc::EACCES) => "refused by the capability check",
        _ => "unexpected",
    }
}

/// Adds to a failed verdict of `check` what the interlock refused in its namespace kinds: the
/// evidence a user needs ("uts: the probe's uts namespace is the harness's (`uts:[4026531838]`):
/// sethostname refused").
pub fn with_refusals(check: CheckId, verdict: Verdict, refused: &[Refusal]) -> Verdict {
    let mine: Vec<String> = refused.iter().filter(|r| check.kind() == r.kind).map(|r| r.to_string()).collect();
    match verdict {
        Verdict::Fail { expected, observed, evidence } if !mine.is_empty() => {
            Verdict::Fail { expected, observed, evidence: format!("{}; {evidence}", mine.join("; ")) }
        }
        v => v,
    }
}

fn fmt_links(links: &[Link]) -> String {
    let v: Vec<String> = links.iter().map(|l| format!("{}({})", l.name, if l.up { "up" } else { "down" })).collect();
    v.join(",")
}

/// The fact a check reads.
pub fn fact_key_for(check: CheckId) -> String {
    use CheckId::*;
    match check {
        NsInode(k) => fact_key::ns_identity(k),
        PidParentOutside | PidSelfIsInit => "pids".into(),
        PidSignalHostProcess => "signal-sentinel".into(),
        PidProcListsHostProcess => "proc-sentinel".into(),
        PidNsLastPid => fact_key::NS_LAST_PID.into(),
        PidProcHostNet => fact_key::HOST_PID_NET.into(),
        UtsHostname => "hostname".into(),
        UtsDomainnameReachesHost => "domainname".into(),
        UserCapsReachUts => "sethostname-probe".into(),
        MntHostMountVisible => "sentinel-mount".into(),
        MntOwnMountReachesHost => "own-mount".into(),
        MntHostRootReachable => "host-marker".into(),
        MntChrootEscape => "chroot-escape".into(),
        MntPropagationIn => fact_key::PROPAGATION_IN.into(),
        MntPropagationOut => fact_key::PROPAGATION_OUT.into(),
        MntBindRefused => fact_key::BIND_PROPAGATION.into(),
        UserInheritedMountUndone => fact_key::INHERITED_MOUNT.into(),
        IpcHostObject(_) => "host-ipc".into(),
        IpcOwnObjectsReachHost => "own-ipc".into(),
        NetHostAbstractSocket => "abstract-socket".into(),
        NetHostTcpLoopback => "tcp-loopback".into(),
        NetLinks => "links".into(),
        NetSysfsClassNet => "sysfs-net".into(),
        NetProcNetUnix | NetProcNetDev => fact_key::PROC_NET.into(),
        UserUidMap => fact_key::id_map(IdKind::Uid),
        UserGidMap => fact_key::id_map(IdKind::Gid),
        UserFileOwnerOnHost => "file-owner".into(),
        CgroupProcSelfCgroup => "cgroup".into(),
        TimeOffset(c, s) => fact_key::clock(c, s),
        Sysctls(k) => fact_key::sysctls(k),
        UserGlobalSysctlsWritable => fact_key::GLOBAL_SYSCTLS.into(),
    }
}

/// How many of a list to name in evidence.
const SHOWN: usize = 5;

/// `a, b, c and 12 more`.
fn some_of(items: &[String]) -> String {
    let shown = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The skip of a sysctl check whose entries no write can reach: a read-only /proc/sys (EROFS),
/// which the launcher made so.
fn read_only_proc_sys(spec: &CaseSpec, what: &str) -> Verdict {
    skip_verdict(
        Requirement::LauncherFeature { launcher: spec.launcher.name(), what: "writable-proc-sys".into() },
        format!(
            "{what}: the container's /proc/sys is mounted read-only (EROFS), so whether a write would reach \
             outside cannot be observed"
        ),
    )
}

/// Capability tests (writes that would be permitted or not, nothing written): any permitted is
/// shared (a write would reach the namespace it names), all refused by the permission check is
/// isolated.
fn capability_tests_seen(tests: &[SysctlTest], spec: &CaseSpec) -> Result<(Seen, String), Verdict> {
    let mut permitted = Vec::new();
    let mut refused = Vec::new();
    let mut other = Vec::new();
    let mut read_only = 0;
    for t in tests {
        let verdict = match (t.test, t.result.errno()) {
            (CapabilityTest::OpenForWriting, None) | (CapabilityTest::InvalidWrite, Some(libc::EINVAL)) => Some(true),
            (_, Some(libc::EACCES | libc::EPERM)) => Some(false),
            (_, Some(libc::EROFS)) => {
                read_only += 1;
                None
            }
            _ => None,
        };
        match verdict {
            Some(true) => permitted.push(t.path.clone()),
            Some(false) => refused.push(t.path.clone()),
            None => other.push(format!("{}: {}", t.path, t.result)),
        }
    }
    if tests.is_empty() {
        return Err(Verdict::Error { cause: "the probe found no entries to test".into() });
    }
    // A read-only mount refuses before the permission check is asked: with none permitted, what
    // the rest refused says nothing about the entries it hid.
    if read_only > 0 && permitted.is_empty() {
        return Err(read_only_proc_sys(spec, &format!("{read_only} of {} entries", tests.len())));
    }
    let text = format!(
        "{} entries tested without writing: {} would be permitted{}, {} refused by the permission check{}",
        tests.len(),
        permitted.len(),
        if permitted.is_empty() { String::new() } else { format!(" ({})", some_of(&permitted)) },
        refused.len(),
        if other.is_empty() { String::new() } else { format!("; neither: {}", some_of(&other)) },
    );
    let seen = if !permitted.is_empty() {
        Seen::Shared
    } else if other.is_empty() {
        Seen::Isolated
    } else {
        Seen::Other("some tests gave neither a permission nor a refusal".into())
    };
    Ok((seen, text))
}

/// The entries the probe wrote in a namespace of its own. A host value that changed is a leak
/// (shared, naming the entry and both values); for a joiner, the container it joined must read
/// every value the joiner wrote (shared) or none (isolated); otherwise the host's values all
/// unchanged is isolated. Nothing written: isolated only when the kernel refused every write.
fn own_sysctls_seen(
    kind: NsKind,
    written: &[SysctlWrite],
    skipped: &[isoprobe_probes::wire::SysctlSkip],
    view: &crate::sysctl::SysctlView,
    spec: &CaseSpec,
) -> Result<Observed, Verdict> {
    let volatile = isoprobe_probes::sysctl::volatile;
    let missing = written.iter().filter(|w| !view.entries.contains_key(&w.path)).count();
    if missing > 0 {
        return Err(Verdict::Error {
            cause: format!("the host saw nothing of {missing} of the {} {kind} entries the probe wrote", written.len()),
        });
    }
    let seen = |w: &SysctlWrite| view.entries[&w.path].clone();
    let unrestored = &view.unrestored;
    let leaks: Vec<String> = written
        .iter()
        .filter(|w| {
            let s = seen(w);
            !volatile(&w.path) && s.host_before.is_some() && s.host_before != s.host_after
        })
        .map(|w| {
            let s = seen(w);
            format!(
                "{}: host {:?} -> {:?} (the probe wrote {:?})",
                w.path,
                s.host_before.as_deref().unwrap_or(""),
                s.host_after.as_deref().unwrap_or("<unreadable>"),
                w.written()
            )
        })
        .collect();
    let mut why: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for s in skipped {
        let (reason, detail) = match &s.why {
            NotWritten::Refused { error } => ("refused", format!("{}: {error}", s.path)),
            NotWritten::Unreadable { error } => ("unreadable", format!("{}: {error}", s.path)),
            NotWritten::NoCandidate => ("no value to try", s.path.clone()),
            NotWritten::Rejected { errors } => ("every value rejected", format!("{}: {}", s.path, errors.join(", "))),
            NotWritten::NoEffect => ("no effect", s.path.clone()),
        };
        why.entry(reason).or_default().push(detail);
    }
    let not_written = why.iter().map(|(r, l)| format!("{r}: {}", some_of(l))).collect::<Vec<_>>().join("; ");
    let not_written = if not_written.is_empty() { String::new() } else { format!("; not written: {not_written}") };
    let total = written.len() + skipped.len();
    // The network tree is swept in the case's stripe (see `matrix::SYSCTL_STRIPES`).
    let scope = match spec.sysctl_stripe {
        Some(s) if kind == NsKind::Net => format!(" ({s} of the tree; the run's other cases write the rest)"),
        _ => String::new(),
    };
    if !leaks.is_empty() {
        return obs(
            Seen::Shared,
            format!(
                "the host's value changed (a leak; {}) for {} of {} written {kind} entries: {}{not_written}",
                if unrestored.is_empty() {
                    "restored at once".to_owned()
                } else {
                    format!("the host could not put back {}", some_of(unrestored))
                },
                leaks.len(),
                written.len(),
                some_of(&leaks)
            ),
        );
    }
    if written.is_empty() {
        let refused: Vec<&SysResult> = skipped
            .iter()
            .filter_map(|s| if let NotWritten::Refused { error } = &s.why { Some(error) } else { None })
            .collect();
        let read_only = refused.iter().filter(|e| e.errno() == Some(libc::EROFS)).count();
        if read_only > 0 {
            return Err(read_only_proc_sys(spec, &format!("{read_only} of the {total} {kind} entries")));
        }
        if !refused.is_empty()
            && refused.len() == skipped.len()
            && refused.iter().all(|e| matches!(e.errno(), Some(libc::EACCES | libc::EPERM)))
        {
            return obs(
                Seen::Isolated,
                format!(
                    "the kernel refused to open any of the {total} {kind} entries{scope} for writing in the probe's \
                     own namespace, so no value can leave it{not_written}"
                ),
            );
        }
        return obs(
            Seen::Other(format!("none of the {total} {kind} entries could be written")),
            format!("nothing was written, so the host's view proves nothing{not_written}"),
        );
    }
    let example = |w: &SysctlWrite| {
        let s = seen(w);
        format!("{} {:?} -> {:?} inside, host {:?}", w.path, w.before, w.after, s.host_after.as_deref().unwrap_or("-"))
    };
    let compared = written.iter().filter(|w| seen(w).host_before.is_some() && !volatile(&w.path)).count();
    let host_text = format!(
        "{} of {total} {kind} entries{scope} written in the probe's own namespace; the host's value unchanged for all \
         {compared} it has{}{not_written}",
        written.len(),
        if written.is_empty() { String::new() } else { format!(" (e.g. {})", example(&written[0])) }
    );
    if !view.joined {
        return obs(Seen::Isolated, host_text);
    }
    // A joiner: the container it joined must read each value it wrote (`None`: it could not read
    // it, which is neither).
    let peer_values: Vec<(&SysctlWrite, String)> =
        written.iter().map(|w| (w, seen(w).peer.unwrap_or_else(|| "<unreadable>".into()))).collect();
    let peers: Vec<(&SysctlWrite, &String)> = peer_values.iter().map(|(w, p)| (*w, p)).collect();
    let seen_by_peer: Vec<String> = peers.iter().filter(|(w, p)| **p == w.after).map(|(w, _)| w.path.clone()).collect();
    let unseen: Vec<String> =
        peers.iter().filter(|(w, p)| **p == w.before).map(|(w, p)| format!("{} {p:?}", w.path)).collect();
    let neither: Vec<String> = peers
        .iter()
        .filter(|(w, p)| **p != w.after && **p != w.before)
        .map(|(w, p)| format!("{}: joined container read {p:?}, the probe wrote {:?}", w.path, w.after))
        .collect();
    let seen = if seen_by_peer.len() == written.len() {
        Seen::Shared
    } else if unseen.len() == written.len() {
        Seen::Isolated
    } else {
        Seen::Other(format!(
            "the joined container read {} of {} written values{}{}",
            seen_by_peer.len(),
            written.len(),
            if unseen.is_empty() { String::new() } else { format!("; its own still: {}", some_of(&unseen)) },
            if neither.is_empty() { String::new() } else { format!("; neither: {}", some_of(&neither)) },
        ))
    };
    obs(seen, format!("{host_text}; the joined container read {} of the {} values", seen_by_peer.len(), written.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isoprobe_probes::wire::{IpcSeen, Link};

    fn facts(list: Vec<Fact>) -> Facts {
        let mut f = Facts::default();
        for x in list {
            f.insert(x).unwrap();
        }
        f
    }

    #[test]
    fn missing_and_unobservable_facts_are_errors_not_passes() {
        let spec = CaseSpec::new(Default::default());
        let v = verdict(CheckId::PidSelfIsInit, &Expect::Flag(false), &Facts::default(), &HostView::default(), &spec);
        assert!(matches!(v, Verdict::Error { .. }), "{v:?}");
        let f = facts(vec![Fact::Unobservable { about: "pids".into(), error: "boom".into() }]);
        let v = verdict(CheckId::PidSelfIsInit, &Expect::Flag(false), &f, &HostView::default(), &spec);
        assert_eq!(v, Verdict::Error { cause: "boom".into() });
    }

    #[test]
    fn duplicate_facts_are_rejected() {
        let mut f = Facts::default();
        f.insert(Fact::Pids { pid: 1, ppid: 0 }).unwrap();
        assert!(f.insert(Fact::Pids { pid: 2, ppid: 0 }).is_err());
    }

    #[test]
    fn offsets_pass_only_inside_the_bracket() {
        let o = Observed { seen: Seen::OffsetRange(100, 200), evidence: String::new() };
        assert!(judge(&Expect::OffsetNs(150), &o).is_pass());
        assert!(judge(&Expect::OffsetNs(100), &o).is_pass());
        assert!(!judge(&Expect::OffsetNs(201), &o).is_pass());
        assert!(!judge(&Expect::OffsetNs(0), &o).is_pass());
    }

    #[test]
    fn links_other_than_host_or_fresh_are_neither() {
        let host = HostView { links: vec![Link { name: "lo".into(), up: true }], ..Default::default() };
        let spec = CaseSpec::new(Default::default());
        let f = facts(vec![Fact::Links { links: vec![Link { name: "lo".into(), up: false }] }]);
        assert_eq!(observe(CheckId::NetLinks, &f, &host, &spec).unwrap().seen, Seen::Isolated);
        let f = facts(vec![Fact::Links { links: vec![Link { name: "veth0".into(), up: true }] }]);
        assert!(matches!(observe(CheckId::NetLinks, &f, &host, &spec).unwrap().seen, Seen::Other(_)));
    }

    #[test]
    fn a_host_with_only_loopback_cannot_tell_net_namespaces_apart() {
        let spec = CaseSpec::new(Default::default());
        let lo = |up| vec![Link { name: "lo".into(), up }];
        let host = HostView { sys_class_net: vec!["lo".into()], links: lo(false), ..Default::default() };
        let f = facts(vec![Fact::SysfsNet { entries: vec!["lo".into()] }, Fact::Links { links: lo(false) }]);
        for check in [CheckId::NetSysfsClassNet, CheckId::NetLinks] {
            let v = verdict(check, &Expect::Isolated, &f, &host, &spec);
            assert!(v.is_skip(), "{check}: {v:?}");
        }
        let host = HostView { sys_class_net: vec!["eth0".into(), "lo".into()], links: lo(true), ..Default::default() };
        for check in [CheckId::NetSysfsClassNet, CheckId::NetLinks] {
            assert!(verdict(check, &Expect::Isolated, &f, &host, &spec).is_pass(), "{check}");
        }
    }

    /// ns_last_pid: a pid the host gave out during the case is the host's (wrapping around
    /// pid_max); the probe's task id outside that window is its own namespace's; an empty
    /// window proves nothing.
    #[test]
    fn ns_last_pid_is_judged_by_the_hosts_window() {
        let spec = CaseSpec::new(Default::default());
        let seen = |child, last, window| {
            let host = HostView { ns_last_pid: window, ..Default::default() };
            let f = facts(vec![Fact::NsLastPid { child, last_pid: Some(last) }]);
            observe(CheckId::PidNsLastPid, &f, &host, &spec).map(|o| o.seen)
        };
        assert_eq!(seen(3, 3, Some((5000, 5010))), Ok(Seen::Isolated));
        assert_eq!(seen(5004, 5004, Some((5000, 5010))), Ok(Seen::Shared));
        assert_eq!(seen(5004, 5007, Some((5000, 5010))), Ok(Seen::Shared), "the host forked on meanwhile");
        assert_eq!(seen(3, 5007, Some((5000, 5010))), Ok(Seen::Shared), "the host's, read from a namespace of its own");
        assert_eq!(seen(310, 310, Some((32760, 320))), Ok(Seen::Shared), "wrapped");
        assert_eq!(seen(3, 3, Some((32760, 320))), Ok(Seen::Isolated));
        assert!(matches!(seen(3, 4, Some((5000, 5010))), Ok(Seen::Other(_))));
        assert!(matches!(seen(3, 3, Some((5000, 5000))), Err(Verdict::Error { .. })));
        assert!(matches!(seen(3, 3, None), Err(Verdict::Error { .. })));
        let f = facts(vec![Fact::NsLastPid { child: 3, last_pid: None }]);
        let host = HostView { ns_last_pid: Some((1, 9)), ..Default::default() };
        assert!(verdict(CheckId::PidNsLastPid, &Expect::Isolated, &f, &host, &spec).is_skip());
    }

    /// /proc/net and a host process's /proc/<pid>/net: "not listed" needs the host's listener
    /// (and, through /proc/<pid>, the sentinel) alive; /proc/net/dev compares link names.
    #[test]
    fn proc_net_views_need_their_controls() {
        let spec = CaseSpec::new(Default::default());
        let links = vec![Link { name: "eth0".into(), up: true }, Link { name: "lo".into(), up: true }];
        let ok = HostView { links: links.clone(), ..Default::default() };
        let mut dead = ok.clone();
        dead.controls.abstract_socket = Err("refused".into());
        let net = |unix, dev: &[&str]| {
            facts(vec![Fact::ProcNet { unix_lists_socket: unix, dev: dev.iter().map(|d| d.to_string()).collect() }])
        };
        let seen = |c, f: &Facts, h: &HostView| observe(c, f, h, &spec).map(|o| o.seen);
        assert_eq!(seen(CheckId::NetProcNetUnix, &net(true, &["lo"]), &ok), Ok(Seen::Shared));
        assert_eq!(seen(CheckId::NetProcNetUnix, &net(false, &["lo"]), &ok), Ok(Seen::Isolated));
        assert!(seen(CheckId::NetProcNetUnix, &net(false, &["lo"]), &dead).is_err());
        assert_eq!(seen(CheckId::NetProcNetDev, &net(false, &["eth0", "lo"]), &ok), Ok(Seen::Shared));
        assert_eq!(seen(CheckId::NetProcNetDev, &net(false, &["lo"]), &ok), Ok(Seen::Isolated));
        assert!(matches!(seen(CheckId::NetProcNetDev, &net(false, &["eth1", "lo"]), &ok), Ok(Seen::Other(_))));
        let lo_only = HostView { links: vec![Link { name: "lo".into(), up: true }], ..Default::default() };
        assert!(verdict(CheckId::NetProcNetDev, &Expect::Isolated, &net(false, &["lo"]), &lo_only, &spec).is_skip());
        let pid_net = |listed, lists_socket, foreign| facts(vec![Fact::HostPidNet { listed, lists_socket, foreign }]);
        let c = CheckId::PidProcHostNet;
        assert_eq!(seen(c, &pid_net(true, true, false), &ok), Ok(Seen::Shared));
        assert_eq!(seen(c, &pid_net(false, false, false), &ok), Ok(Seen::Isolated));
        assert!(seen(c, &pid_net(false, false, false), &dead).is_err());
        assert!(matches!(seen(c, &pid_net(true, false, false), &ok), Ok(Seen::Other(_))));
        assert!(matches!(seen(c, &pid_net(false, false, true), &ok), Ok(Seen::Other(_))));
    }

    fn sys_err(errno: i32) -> SysResult {
        SysResult::Err { errno, name: nix::errno::Errno::from_raw(errno).to_string() }
    }

    /// "Not there" is isolation only with the host's control met, and only for the errno that
    /// means it.
    #[test]
    fn not_there_needs_the_hosts_control_and_the_right_errno() {
        let spec = CaseSpec::new(Default::default());
        let f = facts(vec![
            Fact::SignalSentinel { result: sys_err(libc::ESRCH) },
            Fact::AbstractSocket { connect: sys_err(libc::ECONNREFUSED) },
            Fact::TcpLoopback { connect: sys_err(libc::ENETUNREACH) },
        ]);
        let ok = HostView::default();
        for c in [CheckId::PidSignalHostProcess, CheckId::NetHostAbstractSocket, CheckId::NetHostTcpLoopback] {
            assert_eq!(observe(c, &f, &ok, &spec).unwrap().seen, Seen::Isolated, "{c}");
        }
        // The sentinel died, the listener stopped accepting: the same observations prove nothing.
        let mut dead = HostView::default();
        dead.controls.pid_sentinel = Err("gone".into());
        dead.controls.abstract_socket = Err("refused".into());
        dead.controls.tcp_listener = Err("refused".into());
        for c in [CheckId::PidSignalHostProcess, CheckId::NetHostAbstractSocket, CheckId::NetHostTcpLoopback] {
            let v = verdict(c, &Expect::Isolated, &f, &dead, &spec);
            assert!(matches!(v, Verdict::Error { .. }), "{c}: {v:?}");
        }
        // ENOENT means nothing for an abstract socket, EACCES nothing for kill: neither is isolation.
        let f = facts(vec![
            Fact::SignalSentinel { result: sys_err(libc::EACCES) },
            Fact::AbstractSocket { connect: sys_err(libc::ENOENT) },
        ]);
        for c in [CheckId::PidSignalHostProcess, CheckId::NetHostAbstractSocket] {
            assert!(!verdict(c, &Expect::Isolated, &f, &ok, &spec).is_pass(), "{c}");
        }
    }

    /// The interlock's capability tests: EINVAL is past the permission check (shared), EPERM is
    /// refused by it (isolated); a state change that failed in the probe's own namespace proves
    /// nothing either way.
    #[test]
    fn refused_steps_are_judged_by_their_capability_test() {
        let spec = CaseSpec::new(Default::default());
        let shared = isoprobe_probes::wire::NsId { kind: NsKind::Uts, dev: 4, ino: 4026531838 };
        let domain = |attempt| facts(vec![Fact::Domainname { attempt, host_saw_token: false }]);
        let seen = |f: &Facts| observe(CheckId::UtsDomainnameReachesHost, f, &HostView::default(), &spec).unwrap();
        let o = seen(&domain(Attempt::Refused { shared, probe: sys_err(libc::EINVAL) }));
        assert_eq!(o.seen, Seen::Shared);
        assert!(
            o.evidence.starts_with("the probe's uts namespace is the harness's (uts:[4026531838])"),
            "{}",
            o.evidence
        );
        assert_eq!(seen(&domain(Attempt::Refused { shared, probe: sys_err(libc::EPERM) })).seen, Seen::Isolated);
        assert!(matches!(seen(&domain(Attempt::Refused { shared, probe: SysResult::Ok })).seen, Seen::Other(_)));
        assert_eq!(seen(&domain(Attempt::Made { result: SysResult::Ok })).seen, Seen::Isolated);
        assert!(matches!(seen(&domain(Attempt::Made { result: sys_err(libc::EPERM) })).seen, Seen::Other(_)));
        let mount = |attempt, host_saw| facts(vec![Fact::OwnMount { attempt, host_saw }]);
        let seen = |f: &Facts| observe(CheckId::MntOwnMountReachesHost, f, &HostView::default(), &spec).unwrap().seen;
        let mnt = isoprobe_probes::wire::NsId { kind: NsKind::Mnt, ..shared };
        assert_eq!(seen(&mount(Attempt::Refused { shared: mnt, probe: sys_err(libc::EINVAL) }, false)), Seen::Shared);
        assert_eq!(seen(&mount(Attempt::Made { result: SysResult::Ok }, false)), Seen::Isolated);
        assert_eq!(seen(&mount(Attempt::Made { result: SysResult::Ok }, true)), Seen::Shared);
        assert!(matches!(seen(&mount(Attempt::Made { result: sys_err(libc::EPERM) }, false)), Seen::Other(_)));
    }

    /// A pivot_root whose old root is still in the probe's mount table is not isolation, even
    /// when the climb did not get out; own IPC objects count only where they were made.
    #[test]
    fn isolation_needs_the_whole_of_its_evidence() {
        let spec = CaseSpec::new(Default::default());
        let escape = |old_root_mount| {
            facts(vec![Fact::ChrootEscape { reached_host: Some(false), detail: "climbed".into(), old_root_mount }])
        };
        let seen = |f: &Facts| observe(CheckId::MntChrootEscape, f, &HostView::default(), &spec).unwrap().seen;
        assert_eq!(seen(&escape(None)), Seen::Isolated);
        assert!(matches!(seen(&escape(Some("/oldroot".into()))), Seen::Other(_)));
        let all = IpcSeen { shm: true, sem: true, msg: true, mq: true };
        let none = IpcSeen::default();
        let own = |created, host_saw| facts(vec![Fact::OwnIpc { created, host_saw, failed: vec![] }]);
        let seen = |f: &Facts| observe(CheckId::IpcOwnObjectsReachHost, f, &HostView::default(), &spec).unwrap().seen;
        assert_eq!(seen(&own(all, all)), Seen::Shared);
        assert_eq!(seen(&own(all, none)), Seen::Isolated);
        let no_mq = IpcSeen { mq: false, ..all };
        assert_eq!(seen(&own(no_mq, no_mq)), Seen::Shared, "judged on what was made");
        assert!(matches!(seen(&own(none, none)), Seen::Other(_)), "nothing made proves nothing");
        assert!(matches!(seen(&own(no_mq, all)), Seen::Other(_)), "the host saw what was never made");
    }

    /// A failed check of a kind whose step the interlock refused carries the refusal as evidence.
    #[test]
    fn a_refusal_is_the_evidence_of_its_kinds_failures() {
        let r = Refusal {
            kind: NsKind::Uts,
            step: "sethostname(\"isoprobe-02\")".into(),
            because: "the probe's uts namespace is the harness's (uts:[4026531838])".into(),
        };
        let fail =
            Verdict::Fail { expected: "isolated".into(), observed: "shared".into(), evidence: "uname: \"vm\"".into() };
        let v = with_refusals(CheckId::UtsHostname, fail.clone(), std::slice::from_ref(&r));
        let Verdict::Fail { evidence, .. } = v else { panic!("{v:?}") };
        assert_eq!(
            evidence,
            "uts: the probe's uts namespace is the harness's (uts:[4026531838]): sethostname(\"isoprobe-02\") refused; uname: \"vm\""
        );
        // Another kind's failure, or a pass, is left as it is.
        assert_eq!(with_refusals(CheckId::PidSelfIsInit, fail.clone(), std::slice::from_ref(&r)), fail);
    }

    #[test]
    fn an_indistinguishable_cgroup_view_is_a_skip() {
        let host = HostView { probe_cgroup: vec!["0::/".into()], ..Default::default() };
        let f = facts(vec![Fact::Cgroup { lines: vec!["0::/".into()] }]);
        let v =
            verdict(CheckId::CgroupProcSelfCgroup, &Expect::Isolated, &f, &host, &CaseSpec::new(Default::default()));
        assert!(v.is_skip(), "{v:?}");
    }

    #[test]
    fn cgroup_views_compare_by_common_hierarchy() {
        let host = HostView {
            probe_cgroup: vec!["10:net_cls:/".into(), "4:memory:/a".into(), "0::/isoprobe-x-1".into()],
            ..Default::default()
        };
        let spec = CaseSpec::new(Default::default());
        let seen = |lines: &[&str]| {
            let f = facts(vec![Fact::Cgroup { lines: lines.iter().map(|l| l.to_string()).collect() }]);
            observe(CheckId::CgroupProcSelfCgroup, &f, &host, &spec).unwrap().seen
        };
        // A hierarchy that went away in between (no line 10) does not matter.
        assert_eq!(seen(&["4:memory:/a", "0::/isoprobe-x-1"]), Seen::Shared);
        assert_eq!(seen(&["10::/", "4:memory:/", "0::/"]), Seen::Isolated);
        assert!(matches!(seen(&["4:memory:/b", "0::/isoprobe-x-1"]), Seen::Other(_)));
    }

    /// A write of `path` from `before` to `after`, and what the host (and a joined container) saw.
    fn write(
        view: &mut HostView,
        path: &str,
        (before, after): (&str, &str),
        host: (&str, &str),
        peer: Option<&str>,
    ) -> SysctlWrite {
        view.sysctls.joined |= peer.is_some();
        view.sysctls.entries.insert(
            path.into(),
            crate::sysctl::SeenOutside {
                host_before: Some(host.0.into()),
                host_after: Some(host.1.into()),
                peer: peer.map(str::to_owned),
            },
        );
        SysctlWrite { path: path.into(), before: before.into(), after: after.into(), written: None }
    }

    fn own(written: Vec<SysctlWrite>, skipped: Vec<isoprobe_probes::wire::SysctlSkip>) -> Facts {
        facts(vec![Fact::Sysctls { kind: NsKind::Net, observed: SysctlObservation::Own { written, skipped } }])
    }

    /// A host value that changed is a leak: shared, naming the entry and both values; unchanged
    /// is isolated; a joiner's values must all be read by the container it joined.
    #[test]
    fn sysctls_are_judged_by_the_hosts_and_the_joined_containers_reading() {
        let spec = CaseSpec::new(Default::default());
        let check = CheckId::Sysctls(NsKind::Net);
        let seen = |f: &Facts, v: &HostView| observe(check, f, v, &spec).unwrap();
        let mut v = HostView::default();
        let kept = write(&mut v, "net/core/somaxconn", ("4096", "4097"), ("4096", "4096"), None);
        assert_eq!(seen(&own(vec![kept.clone()], vec![]), &v).seen, Seen::Isolated);
        let leak = write(&mut v, "net/netfilter/nf_conntrack_max", ("65536", "65537"), ("65536", "65537"), None);
        let o = seen(&own(vec![kept.clone(), leak], vec![]), &v);
        assert_eq!(o.seen, Seen::Shared);
        assert!(o.evidence.contains("net/netfilter/nf_conntrack_max: host \"65536\" -> \"65537\""), "{}", o.evidence);
        // What the host did not see is an error, not isolation.
        let unseen = SysctlWrite { path: "net/core/unseen".into(), ..kept.clone() };
        assert!(observe(check, &own(vec![unseen], vec![]), &v, &spec).is_err());
        // A joiner: every value read by the container it joined, or none.
        let joined = |p: &str| {
            let mut v = HostView::default();
            let w = write(&mut v, "net/core/somaxconn", ("4096", "4097"), ("4096", "4096"), Some(p));
            (v, w)
        };
        let (v, w) = joined("4097");
        assert_eq!(seen(&own(vec![w], vec![]), &v).seen, Seen::Shared);
        let (v, w) = joined("4096");
        assert_eq!(seen(&own(vec![w], vec![]), &v).seen, Seen::Isolated);
        let (mut v, w) = joined("4097");
        let other = write(&mut v, "net/core/x", ("1", "2"), ("1", "1"), Some("1"));
        assert!(matches!(seen(&own(vec![w, other], vec![]), &v).seen, Seen::Other(_)));
        // ns_last_pid moves on the host by itself: not a leak.
        let mut v = HostView::default();
        let pid = write(&mut v, "kernel/ns_last_pid", ("5", "1005"), ("300", "307"), None);
        let f = facts(vec![Fact::Sysctls {
            kind: NsKind::Pid,
            observed: SysctlObservation::Own { written: vec![pid], skipped: vec![] },
        }]);
        assert_eq!(observe(CheckId::Sysctls(NsKind::Pid), &f, &v, &spec).unwrap().seen, Seen::Isolated);
    }

    /// Nothing written proves isolation only when the kernel refused every write; a read-only
    /// /proc/sys is a skip; capability tests: any permitted is shared.
    #[test]
    fn sysctls_not_written_and_capability_tests() {
        let spec = CaseSpec::new(Default::default());
        let check = CheckId::Sysctls(NsKind::Net);
        let skip = |errno| isoprobe_probes::wire::SysctlSkip {
            path: "net/core/somaxconn".into(),
            why: NotWritten::Refused { error: sys_err(errno) },
        };
        let v = |f: &Facts| verdict(check, &Expect::Isolated, f, &HostView::default(), &spec);
        assert!(v(&own(vec![], vec![skip(libc::EACCES)])).is_pass());
        assert!(v(&own(vec![], vec![skip(libc::EROFS)])).is_skip());
        let no_value = isoprobe_probes::wire::SysctlSkip { path: "net/x".into(), why: NotWritten::NoCandidate };
        assert!(!v(&own(vec![], vec![no_value])).is_pass(), "nothing written and nothing refused proves nothing");
        let test = |path: &str, t: CapabilityTest, result: SysResult| SysctlTest { path: path.into(), test: t, result };
        let harness = |tests| {
            let shared = isoprobe_probes::wire::NsId { kind: NsKind::Net, dev: 4, ino: 1 };
            facts(vec![Fact::Sysctls { kind: NsKind::Net, observed: SysctlObservation::Harness { shared, tests } }])
        };
        let seen = |f: &Facts| observe(check, f, &HostView::default(), &spec).unwrap().seen;
        let open = CapabilityTest::OpenForWriting;
        assert_eq!(seen(&harness(vec![test("a", open, SysResult::Ok)])), Seen::Shared);
        assert_eq!(seen(&harness(vec![test("a", open, sys_err(libc::EACCES))])), Seen::Isolated);
        let invalid = CapabilityTest::InvalidWrite;
        assert_eq!(seen(&harness(vec![test("p", invalid, sys_err(libc::EINVAL))])), Seen::Shared);
        assert_eq!(seen(&harness(vec![test("p", invalid, sys_err(libc::EPERM))])), Seen::Isolated);
        assert_eq!(
            seen(&harness(vec![test("a", open, sys_err(libc::EACCES)), test("b", open, SysResult::Ok)])),
            Seen::Shared,
            "one writable entry is enough"
        );
        let g = facts(vec![Fact::GlobalSysctls { tests: vec![test("kernel/x", open, sys_err(libc::EROFS))] }]);
        assert!(
            verdict(CheckId::UserGlobalSysctlsWritable, &Expect::Isolated, &g, &HostView::default(), &spec).is_skip()
        );
    }
}
