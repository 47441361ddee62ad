//! The oracle: a pure function from a spec to what every check must observe.
//!
//! No I/O and no privilege: it runs anywhere and is property-tested on its own. Each rule that
//! involves more than one namespace names the kernel behaviour behind it.

use std::fmt;

use isoprobe_probes::ns::NsKind;
use serde::{Deserialize, Serialize};

use crate::check::CheckId;
use crate::spec::{IdMaps, Resolved, RootfsMode, Runner};

/// What a check must observe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "expect", content = "value", rename_all = "kebab-case")]
pub enum Expect {
    /// The container sees (or reaches, or is) the host's object.
    Shared,
    /// The container has its own; the host's is out of reach.
    Isolated,
    /// A yes/no property whose meaning the check names (e.g. "is pid 1").
    Flag(bool),
    /// An exact value (an id map, a file owner).
    Value(String),
    /// A clock offset in nanoseconds.
    OffsetNs(i64),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Shared => f.write_str("shared"),
            Expect::Isolated => f.write_str("isolated"),
            Expect::Flag(b) => write!(f, "{}", if *b { "yes" } else { "no" }),
            Expect::Value(v) => write!(f, "{v:?}"),
            Expect::OffsetNs(ns) => write!(f, "offset {}", fmt_ns(*ns)),
        }
    }
}

/// Nanoseconds as seconds with 9 decimals.
pub fn fmt_ns(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09} s", a / 1_000_000_000, a % 1_000_000_000)
}

fn isolated_if(new: bool) -> Expect {
    if new { Expect::Isolated } else { Expect::Shared }
}

/// The id map a process sees in /proc/self/{uid,gid}_map, as the judge prints it.
pub fn id_map_text(lines: &[isoprobe_probes::wire::IdMapLine]) -> String {
    lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("; ")
}

/// What `check` must observe in a container built from `spec` (resolved for `runner`, and as the
/// launcher really builds it: see `launcher::Effective`), run by `runner`.
pub fn expect(spec: &Resolved, runner: Runner, check: CheckId) -> Expect {
    use CheckId::*;
    let has = |k: NsKind| spec.has(k);
    // CAP_SYS_ADMIN in the initial user namespace: what a probe without a user namespace of its own
    // holds over the host's namespaces.
    let privileged = runner.is_root();
    let maps = spec.id_maps.clone().unwrap_or_else(IdMaps::identity);
    match check {
        NsInode(k) => isolated_if(has(k)),

        // In a new pid namespace the parent (harness, unsharer or joiner) is outside it, and
        // getppid() reports 0 for a parent the namespace cannot name.
        PidParentOutside => isolated_if(has(NsKind::Pid)),
        // The first process of a new pid namespace is its init; a joiner's child comes later.
        PidSelfIsInit => Expect::Flag(has(NsKind::Pid) && !spec.launcher.joins()),
        PidSignalHostProcess => isolated_if(has(NsKind::Pid)),
        // /proc shows the pid namespace of whoever mounted it. The probe mounts a new one only in
        // a new mount namespace; with the host's mount namespace it keeps the host's /proc, which
        // lists host pids even from inside a new pid namespace.
        PidProcListsHostProcess => isolated_if(has(NsKind::Pid) && has(NsKind::Mnt)),

        UtsHostname => isolated_if(has(NsKind::Uts) && spec.hostname.is_some()),
        // setdomainname needs CAP_SYS_ADMIN in the user namespace that owns the uts namespace.
        // A new uts namespace keeps the token inside; a shared one with a new user namespace (or
        // an unprivileged runner) refuses it (EPERM); only a privileged probe in the host's uts
        // and user namespaces reaches the host.
        UtsDomainnameReachesHost => isolated_if(has(NsKind::Uts) || has(NsKind::User) || !privileged),

        // The probe makes its mounts private in a new mount namespace (as every runtime does), so
        // a mount the host makes later does not propagate in.
        MntHostMountVisible => isolated_if(has(NsKind::Mnt)),
        // Mounting in the host's mount namespace needs CAP_SYS_ADMIN in the host's user
        // namespace: a new user namespace (or an unprivileged runner) gets EPERM.
        MntOwnMountReachesHost => isolated_if(has(NsKind::Mnt) || has(NsKind::User) || !privileged),
        // Only the host-filesystem mode leaves the host's root on the lookup path.
        MntHostRootReachable => isolated_if(spec.rootfs != RootfsMode::Host),
        // chroot changes where lookups stop, not the mount tree: the escape climbs out of a
        // chroot whether or not the mount namespace is new. pivot_root + detaching the old root
        // removes the host's root from the namespace, so nothing is left to climb to.
        MntChrootEscape => isolated_if(spec.rootfs == RootfsMode::PivotRoot),

        // SysV objects and POSIX queues (mq_open uses the ipc namespace's own mqueue mount) both
        // belong to the ipc namespace.
        IpcHostObject(_) | IpcOwnObjectsReachHost => isolated_if(has(NsKind::Ipc)),

        NetHostAbstractSocket | NetHostTcpLoopback | NetLinks => isolated_if(has(NsKind::Net)),
        // sysfs shows the network namespace of whoever mounted it; the probe mounts a new one
        // only in a new mount namespace, and a new one shows its own links only when the network
        // namespace is new too.
        NetSysfsClassNet => isolated_if(has(NsKind::Net) && has(NsKind::Mnt)),

        UserUidMap => Expect::Value(id_map_text(&maps.uid)),
        UserGidMap => Expect::Value(id_map_text(&maps.gid)),
        // The probe creates the file as root of its user namespace; the host sees the outside id
        // that inside id 0 maps to (without a user namespace: the runner itself).
        UserFileOwnerOnHost => Expect::Value(if has(NsKind::User) {
            let uid = IdMaps::outside(&maps.uid, 0).unwrap_or(u32::MAX);
            let gid = IdMaps::outside(&maps.gid, 0).unwrap_or(u32::MAX);
            format!("{uid}:{gid}")
        } else {
            format!("{}:{}", runner.uid, runner.gid)
        }),
        // Capabilities in a user namespace reach only namespaces it owns: a uts namespace created
        // with it, not the host's. Without a user namespace, only a privileged runner has them.
        UserCapsReachUts => isolated_if(if has(NsKind::User) { !has(NsKind::Uts) } else { !privileged }),

        // A new cgroup namespace is rooted at the cgroup the probe was in when it was created.
        CgroupProcSelfCgroup => isolated_if(has(NsKind::Cgroup)),

        TimeOffset(clock, _) => Expect::OffsetNs(match spec.time_offsets {
            Some(t) if has(NsKind::Time) => t.get(clock),
            _ => 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CaseSpec, LauncherKind};
    use isoprobe_probes::ns::NsSet;
    use proptest::prelude::*;

    const ROOT: Runner = Runner { uid: 0, gid: 0 };

    use crate::spec::strategies::valid_spec;

    proptest! {
        /// The oracle looks only at the namespaces a check declares: flipping any other namespace
        /// never changes an expectation. This is what lets the sensitivity tests predict exactly
        /// which checks a dropped namespace must break.
        #[test]
        fn expectations_depend_only_on_declared_kinds(s in valid_spec(), k in any::<NsKind>(), root in any::<bool>()) {
            let runner = if root { ROOT } else { Runner { uid: 1000, gid: 1000 } };
            let flipped = if s.has(k) { s.without(k) } else {
                CaseSpec { namespaces: s.namespaces.with(k), ..s.clone() }
            };
            prop_assume!(flipped.rootfs == s.rootfs && flipped.validate().is_ok());
            for check in CheckId::all() {
                if !check.kinds().contains(&k) {
                    prop_assert_eq!(expect(&s.resolve(runner), runner, check), expect(&flipped.resolve(runner), runner, check), "{} changed with {}", check, k);
                }
            }
        }

        #[test]
        fn identity_follows_the_set(bits in any::<u8>()) {
            let s = CaseSpec::new(NsSet::from_bits(bits));
            for k in NsKind::ALL {
                prop_assert_eq!(expect(&s.resolve(ROOT), ROOT, CheckId::NsInode(k)) == Expect::Isolated, s.has(k));
            }
        }
    }

    /// Every check can come out both ways across the 256 combinations and three root modes: a
    /// check whose expectation never changes proves nothing.
    #[test]
    fn every_check_is_expected_both_ways_somewhere() {
        for check in CheckId::all() {
            let mut seen = std::collections::BTreeSet::new();
            for ns in NsSet::every() {
                for rootfs in RootfsMode::ALL {
                    let s = CaseSpec {
                        rootfs,
                        hostname: ns.contains(NsKind::Uts).then(|| "isoprobe-test".into()),
                        time_offsets: ns.contains(NsKind::Time).then_some(isoprobe_probes::wire::TimeOffsets {
                            monotonic_ns: 5_000_000_000,
                            boottime_ns: 7_000_000_000,
                        }),
                        ..CaseSpec::new(ns)
                    };
                    if s.validate().is_ok() {
                        seen.insert(format!("{:?}", expect(&s.resolve(ROOT), ROOT, check)));
                    }
                }
            }
            assert!(seen.len() >= 2, "{check} is always {seen:?}");
        }
    }

    #[test]
    fn a_joiner_is_not_init() {
        let s = CaseSpec { launcher: LauncherKind::SetnsPidfd, ..CaseSpec::new("pid".parse().unwrap()) };
        assert_eq!(expect(&s.resolve(ROOT), ROOT, CheckId::PidSelfIsInit), Expect::Flag(false));
    }
}
