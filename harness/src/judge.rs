//! From facts to verdicts: what a check observed (classified against the host's view), compared
//! with what the oracle expects.
//!
//! The probe sends raw evidence; this module turns it into a [`Seen`] value of the same shape as
//! an [`Expect`], keeping the evidence for the report. It never decides what *should* be seen.

use std::collections::BTreeMap;
use std::fmt;

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::wire::{Fact, IdKind, Link, SysResult, fact_key};

use crate::check::{CheckId, IpcObject};
use crate::oracle::{Expect, fmt_ns, id_map_text};
use crate::spec::CaseSpec;
use crate::verdict::Verdict;

/// What the harness knows of the host, to tell "shared" from "isolated".
#[derive(Debug, Clone, Default)]
pub struct HostView {
    pub hostname: String,
    /// st_dev/st_ino of the harness's own /proc/self/ns/<kind>.
    pub ns: BTreeMap<NsKind, (u64, u64)>,
    pub links: Vec<Link>,
    /// Entries of the host's /sys/class/net, sorted.
    pub sys_class_net: Vec<String>,
    /// /proc/<probe>/cgroup as the host reads it.
    pub probe_cgroup: Vec<String>,
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
                return Err(Verdict::Skip {
                    requirement: format!("kernel:{kind}-namespace"),
                    reason: format!("the host has no /proc/self/ns/{kind}"),
                });
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
            obs(seen, format!("kill(host process, 0) = {result}"))
        }
        (PidProcListsHostProcess, Fact::ProcSentinel { listed, tagged }) => {
            let seen = match (listed, tagged) {
                (true, true) => Seen::Shared,
                (false, _) => Seen::Isolated,
                (true, false) => Seen::Other("the pid is listed but is another process".into()),
            };
            obs(seen, format!("/proc/<host pid> listed: {listed}, with the sentinel's tag: {tagged}"))
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
        (UtsDomainnameReachesHost, Fact::Domainname { set, host_saw_token }) => {
            obs(shared_if(*host_saw_token), format!("setdomainname: {set}; host saw the token: {host_saw_token}"))
        }
        (UserCapsReachUts, Fact::SethostnameSame { result }) => {
            let seen = match result.errno() {
                None => Seen::Shared,
                Some(libc::EPERM) => Seen::Isolated,
                Some(_) => Seen::Other(result.to_string()),
            };
            obs(seen, format!("sethostname(current name) = {result}"))
        }
        (MntHostMountVisible, Fact::SentinelMount { visible, detail }) => match visible {
            Some(v) => obs(shared_if(*v), detail.clone()),
            None => Err(Verdict::Skip { requirement: "root".into(), reason: detail.clone() }),
        },
        (MntOwnMountReachesHost, Fact::OwnMount { mount, host_saw }) => {
            obs(shared_if(*host_saw), format!("mount tmpfs: {mount}; host saw it: {host_saw}"))
        }
        (MntHostRootReachable, Fact::HostMarker { reachable, detail }) => obs(shared_if(*reachable), detail.clone()),
        (MntChrootEscape, Fact::ChrootEscape { reached_host, detail }) => match reached_host {
            Some(r) => obs(shared_if(*r), detail.clone()),
            None => Err(Verdict::Skip {
                requirement: "root".into(),
                reason: format!("the chroot escape takes CAP_SYS_CHROOT in the probe's user namespace: {detail}"),
            }),
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
            obs(seen, format!("lookup by key/name: {l}"))
        }
        (IpcOwnObjectsReachHost, Fact::OwnIpc { created, host_saw }) => {
            let seen = if host_saw.all() {
                Seen::Shared
            } else if host_saw.none() {
                Seen::Isolated
            } else {
                Seen::Other(format!("host saw only some: {host_saw:?}"))
            };
            obs(seen, format!("created {created:?}; host saw {host_saw:?}"))
        }
        (NetHostAbstractSocket, Fact::AbstractSocket { connect }) => {
            obs(connect_seen(connect), format!("connect: {connect}"))
        }
        (NetHostTcpLoopback, Fact::TcpLoopback { connect }) => {
            obs(connect_seen(connect), format!("connect: {connect}"))
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
                return Err(Verdict::Skip {
                    requirement: "cgroup:distinct-path".into(),
                    reason: "the probe's cgroups are all `/` as the host sees them, so a cgroup namespace \
                             cannot be told from the host's (a per-case cgroup needs root and cgroup2)"
                        .into(),
                });
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
        (TimeOffset(..), Fact::ClockOffset { lo_ns, hi_ns, .. }) => obs(
            Seen::OffsetRange(*lo_ns, *hi_ns),
            format!("probe clock minus host clock, bracketed by two probe readings ({} wide)", fmt_ns(hi_ns - lo_ns)),
        ),
        _ => Err(wrong()),
    }
}

/// The skip of a net check on a host that looks like a fresh network namespace (a minimal VM with
/// only loopback): sharing and isolation would be the same observation.
fn indistinguishable_net(why: &str) -> Verdict {
    Verdict::Skip {
        requirement: "net:host-link".into(),
        reason: format!("{why}, so the two cannot be told apart (a host with any other link can)"),
    }
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

fn connect_seen(r: &SysResult) -> Seen {
    match r.errno() {
        None => Seen::Shared,
        Some(libc::ECONNREFUSED | libc::ENOENT | libc::ENETUNREACH) => Seen::Isolated,
        Some(_) => Seen::Other(r.to_string()),
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
        UtsHostname => "hostname".into(),
        UtsDomainnameReachesHost => "domainname".into(),
        UserCapsReachUts => "sethostname-same".into(),
        MntHostMountVisible => "sentinel-mount".into(),
        MntOwnMountReachesHost => "own-mount".into(),
        MntHostRootReachable => "host-marker".into(),
        MntChrootEscape => "chroot-escape".into(),
        IpcHostObject(_) => "host-ipc".into(),
        IpcOwnObjectsReachHost => "own-ipc".into(),
        NetHostAbstractSocket => "abstract-socket".into(),
        NetHostTcpLoopback => "tcp-loopback".into(),
        NetLinks => "links".into(),
        NetSysfsClassNet => "sysfs-net".into(),
        UserUidMap => fact_key::id_map(IdKind::Uid),
        UserGidMap => fact_key::id_map(IdKind::Gid),
        UserFileOwnerOnHost => "file-owner".into(),
        CgroupProcSelfCgroup => "cgroup".into(),
        TimeOffset(c, s) => fact_key::clock(c, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isoprobe_probes::wire::Link;

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
}
