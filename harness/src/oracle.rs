//! The oracle: a pure function from a spec to what every check must observe.
//!
//! No I/O and no privilege: it runs anywhere and is property-tested on its own. Each rule that
//! involves more than one namespace names the kernel behaviour behind it.

use std::fmt;

use isoprobe_probes::ns::NsKind;
use serde::{Deserialize, Serialize};

use crate::check::CheckId;
use crate::spec::{IdMaps, Propagation, Resolved, RootfsMode, Runner};
use isoprobe_probes::wire::PropMode;

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
        // /proc/sys is one tree in every proc mount, and ns_last_pid's handler
        // (pid_ns_ctl_handler, kernel/pid_namespace.c) reads task_active_pid_ns(current): the
        // reader's own pid namespace, not the one of the /proc it is read through. A new pid
        // namespace without a new mount namespace reads its own last pid through the host's /proc
        // (unlike the /proc listing above); checked on 6.18 with unshare(1) -p -f and no -m.
        PidNsLastPid => isolated_if(has(NsKind::Pid)),
        // /proc/<pid>/net shows the network namespace of the process <pid> names
        // (get_proc_task_net, fs/proc/proc_net.c), with no ptrace check: wherever the probe's
        // /proc lists the host's process (the rule above), its sockets are there to read, even
        // from a network namespace of the probe's own.
        PidProcHostNet => isolated_if(has(NsKind::Pid) && has(NsKind::Mnt)),

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

        // Mount cases (mount_namespaces(7), Documentation/filesystems/sharedsubtree.rst). The copy
        // a new mount namespace gets of a shared mount joins its peer group, or becomes a slave of
        // it when the new namespace is owned by a new user namespace (less privileged: "shared
        // mounts are reduced to slave mounts"); a copy of a slave mount is a slave of the same
        // master, a copy of a private or unbindable one is the same. The container then sets its
        // copy's mode: make-shared keeps a slave a slave (and adds a peer group of its own),
        // make-slave of a shared mount makes it a slave of its old peers (private if it had none)
        // and leaves a private or unbindable one as it was.
        //
        // The host's mount reaches the copy when the copy is a peer or a slave of the host's peer
        // group: the host side shared, the copy shared or slave. A host side that is a slave has
        // no peers: its copy is a co-slave of the same master and sees nothing of the host's own
        // mounts. Without a mount namespace the probe sees the host's mount itself.
        MntPropagationIn => {
            let p = propagation(spec);
            isolated_if(
                has(NsKind::Mnt)
                    && !(p.host == PropMode::Shared && matches!(p.container, PropMode::Shared | PropMode::Slave)),
            )
        }
        // The copy's mount reaches the host only as its peer: both sides shared, and no user
        // namespace (which made the copy a slave). In the host's mount namespace, mounting needs
        // CAP_SYS_ADMIN in the host's user namespace (the capability test).
        MntPropagationOut => {
            let p = propagation(spec);
            isolated_if(if has(NsKind::Mnt) {
                !(p.host == PropMode::Shared && p.container == PropMode::Shared && !has(NsKind::User))
            } else {
                !privileged || has(NsKind::User)
            })
        }
        // A bind of an unbindable mount is refused (EINVAL, __do_loopback). The copy is unbindable
        // when the container made it so, or when the host's was and the container's make-slave
        // left it as it was; make-shared and make-private clear it. In the host's mount namespace
        // it is the host's mode, and without CAP_SYS_ADMIN there every bind is refused (EPERM).
        // (Linux 6.18 gives the copy no `unbindable`: the matrix leaves that pair out, see
        // `matrix::mount_cases`.)
        MntBindRefused => {
            let p = propagation(spec);
            Expect::Flag(if has(NsKind::Mnt) {
                p.container == PropMode::Unbindable
                    || (p.container == PropMode::Slave && p.host == PropMode::Unbindable)
            } else {
                p.host == PropMode::Unbindable || !privileged || has(NsKind::User)
            })
        }
        // A mount namespace owned by a new user namespace locks the mounts it copies (MNT_LOCKED,
        // and the MNT_LOCK_* of their flags: lock_mnt_tree): umount gives EINVAL, a remount that
        // drops ro/nosuid/nodev/noexec EPERM. Without a user namespace the copy is root's to
        // undo; in the host's mount namespace it takes CAP_SYS_ADMIN there.
        UserInheritedMountUndone => Expect::Flag(!has(NsKind::User) && (has(NsKind::Mnt) || privileged)),

        // SysV objects and POSIX queues (mq_open uses the ipc namespace's own mqueue mount) both
        // belong to the ipc namespace.
        IpcHostObject(_) | IpcOwnObjectsReachHost => isolated_if(has(NsKind::Ipc)),

        NetHostAbstractSocket | NetHostTcpLoopback | NetLinks => isolated_if(has(NsKind::Net)),
        // /proc/net is the symlink `self/net` (proc_net_init, fs/proc/proc_net.c): the network
        // namespace of the task `self` names, which is the reader, whoever mounted the /proc (a
        // new pid or mount namespace changes nothing; unlike sysfs below, whose superblock keeps
        // its mounter's network namespace).
        NetProcNetUnix | NetProcNetDev => isolated_if(has(NsKind::Net)),
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

        // /proc/sys shows the reader's namespaces (each owning kind looks its set up through
        // `current`). In a namespace of its own the probe writes, and what it writes stays there;
        // a joiner writes in the namespace of the container it joined, which then reads its
        // values. In the harness's namespace the probe writes nothing (the interlock) and asks
        // whether it could: permitted is shared, refused is isolated.
        Sysctls(kind) if has(kind) => {
            let writable = match kind {
                // No permission hook: the default check (test_perm in fs/proc/proc_sysctl.c) gives
                // write access (mode 0644) to the global root uid alone, even in the probe's own
                // uts namespace, so every write is refused there to a user namespace's root.
                NsKind::Uts => global_root(spec, runner),
                // net_ctl_permissions (net/sysctl_net.c), ipc_permissions and mq_permissions
                // (ipc/), set_permissions (kernel/ucount.c) and pid_ns_ctl_handler
                // (kernel/pid_namespace.c) give the owning user namespace's root (or the
                // namespace's capable admin) write access: the probe made the namespace, or
                // joined it with its user namespace.
                _ => true,
            };
            isolated_if(!writable || !spec.launcher.joins())
        }
        Sysctls(kind) => isolated_if(!match kind {
            // ns_last_pid's handler checks CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the pid
            // namespace's user namespace (checkpoint_restore_ns_capable): the host's needs the
            // runner's own capabilities, a capability, not a uid.
            NsKind::Pid => privileged && !has(NsKind::User),
            // set_permissions (kernel/ucount.c): CAP_SYS_RESOURCE in the user namespace whose
            // limits they are, here the host's, where the probe is the runner.
            NsKind::User => privileged,
            // The host's namespaces belong to the initial user namespace: their permission hooks
            // (and the default check) give write access to the global root uid alone.
            _ => global_root(spec, runner),
        }),
        // Global entries have no permission hook: the default check gives the global root uid
        // write access (mode 0644 and the like), and no one else.
        UserGlobalSysctlsWritable => isolated_if(!global_root(spec, runner)),
    }
}

/// The propagation of a mount case (the mount checks are judged only there: see
/// [`CheckId::applies_to`]).
fn propagation(spec: &Resolved) -> Propagation {
    spec.propagation.unwrap_or(Propagation { host: PropMode::Private, container: PropMode::Private })
}

/// Whether the probe's effective uid is the global root uid (uid 0 of the initial user
/// namespace), which /proc/sys's default permission check (test_perm in fs/proc/proc_sysctl.c)
/// takes for the owner of every entry: the runner's uid without a user namespace, and what the
/// user namespace maps its root to with one.
fn global_root(spec: &Resolved, runner: Runner) -> bool {
    if spec.has(NsKind::User) {
        spec.id_maps.as_ref().and_then(|m| IdMaps::outside(&m.uid, 0)) == Some(0)
    } else {
        runner.uid == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CaseSpec, LauncherKind};
    use isoprobe_probes::ns::NsSet;
    use isoprobe_probes::wire::PropMode;
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
            // Every case of the matrix's shapes, and every mount case (the mount checks apply only there).
            let mut propagations = vec![None];
            for host in PropMode::ALL {
                propagations.extend(PropMode::ALL.map(|container| Some(Propagation { host, container })));
            }
            for ns in NsSet::every() {
                for rootfs in RootfsMode::ALL {
                    for &propagation in &propagations {
                        let s = CaseSpec {
                            rootfs,
                            hostname: ns.contains(NsKind::Uts).then(|| "isoprobe-test".into()),
                            time_offsets: ns.contains(NsKind::Time).then_some(isoprobe_probes::wire::TimeOffsets {
                                monotonic_ns: 5_000_000_000,
                                boottime_ns: 7_000_000_000,
                            }),
                            propagation,
                            ..CaseSpec::new(ns)
                        };
                        if s.validate().is_ok() && check.applies_to(&s) {
                            seen.insert(format!("{:?}", expect(&s.resolve(ROOT), ROOT, check)));
                        }
                    }
                }
            }
            assert!(seen.len() >= 2, "{check} is always {seen:?}");
        }
    }

    /// The sysctl rules: a namespace of the probe's own keeps its values in (a joiner's reach the
    /// container it joined); in the host's, only the global root uid (or, for the pid and user
    /// entries, the runner's capabilities) may write; uts entries only ever to the global root uid.
    #[test]
    fn sysctls_follow_the_namespace_the_join_and_the_uid() {
        let user = Runner { uid: 1000, gid: 1000 };
        let e = |ns: &str, launcher: LauncherKind, runner: Runner, check: CheckId| {
            let s = CaseSpec { launcher, ..CaseSpec::new(ns.parse().unwrap()) };
            expect(&s.resolve(runner), runner, check)
        };
        let (clone3, join) = (LauncherKind::Clone3, LauncherKind::SetnsPidfd);
        for k in isoprobe_probes::sysctl::KINDS {
            let c = CheckId::Sysctls(k);
            let own = k.name();
            assert_eq!(e(own, clone3, ROOT, c), Expect::Isolated, "{c} in a namespace of its own");
            assert_eq!(e("none", clone3, ROOT, c), Expect::Shared, "{c}: root in the host's may write it");
            assert_eq!(e("none", clone3, user, c), Expect::Isolated, "{c}: a user may not");
            assert_eq!(e(own, join, ROOT, c), Expect::Shared, "{c}: a joiner's values reach the container");
        }
        // A user namespace's root (mapped to 100000) is refused every uts entry, its own included.
        let uts = CheckId::Sysctls(NsKind::Uts);
        assert_eq!(e("uts+user", join, ROOT, uts), Expect::Isolated);
        assert_eq!(e("net+user", join, ROOT, CheckId::Sysctls(NsKind::Net)), Expect::Shared);
        // ... and the host's entries, but the ones its own user namespace owns.
        assert_eq!(e("user", clone3, ROOT, CheckId::Sysctls(NsKind::Net)), Expect::Isolated);
        assert_eq!(e("user", join, ROOT, CheckId::Sysctls(NsKind::User)), Expect::Shared);
        // A map of root to the global root uid makes the user namespace's root that uid.
        let mapped =
            CaseSpec { id_maps: Some(IdMaps::range(0, 0, 65_536)), ..CaseSpec::new("uts+user".parse().unwrap()) };
        assert_eq!(expect(&mapped.resolve(ROOT), ROOT, uts), Expect::Isolated);
        let mapped = CaseSpec { launcher: join, ..mapped };
        assert_eq!(expect(&mapped.resolve(ROOT), ROOT, uts), Expect::Shared);
        let g = CheckId::UserGlobalSysctlsWritable;
        assert_eq!(e("none", clone3, ROOT, g), Expect::Shared);
        assert_eq!(e("all", clone3, ROOT, g), Expect::Isolated);
        assert_eq!(e("none", clone3, user, g), Expect::Isolated);
    }

    /// The mount cases' rules, pair by pair (mount_namespaces(7), sharedsubtree.rst).
    #[test]
    fn mount_cases_follow_the_propagation_rules() {
        use CheckId::{MntBindRefused, MntPropagationIn, MntPropagationOut, UserInheritedMountUndone};
        use PropMode::{Private, Shared, Slave, Unbindable};
        let e = |ns: &str, host, container, check| {
            let s =
                CaseSpec { propagation: Some(Propagation { host, container }), ..CaseSpec::new(ns.parse().unwrap()) };
            assert_eq!(s.validate(), Ok(()), "{s}");
            expect(&s.resolve(ROOT), ROOT, check)
        };
        let both =
            |ns, host, container| (e(ns, host, container, MntPropagationIn), e(ns, host, container, MntPropagationOut));
        let (sh, is) = (Expect::Shared, Expect::Isolated);
        // Peers: both ways. A new user namespace makes the copy a slave: in only.
        assert_eq!(both("mnt", Shared, Shared), (sh.clone(), sh.clone()));
        assert_eq!(both("mnt+user", Shared, Shared), (sh.clone(), is.clone()));
        assert_eq!(both("mnt", Shared, Slave), (sh.clone(), is.clone()));
        // A host-side slave has no peers; private and unbindable copies nothing.
        assert_eq!(both("mnt", Slave, Shared), (is.clone(), is.clone()));
        assert_eq!(both("mnt", Shared, Private), (is.clone(), is.clone()));
        assert_eq!(both("mnt", Shared, Unbindable), (is.clone(), is.clone()));
        // Without a mount namespace: the host's own mount (root may mount there).
        assert_eq!(both("none", Private, Private), (sh.clone(), sh.clone()));
        assert_eq!(both("user", Private, Private), (sh.clone(), is.clone()));
        // Binds: refused only of an unbindable mount (or without the capability).
        assert_eq!(e("mnt", Private, Unbindable, MntBindRefused), Expect::Flag(true));
        assert_eq!(e("mnt", Unbindable, Shared, MntBindRefused), Expect::Flag(false));
        assert_eq!(e("none", Unbindable, Unbindable, MntBindRefused), Expect::Flag(true));
        assert_eq!(e("none", Shared, Shared, MntBindRefused), Expect::Flag(false));
        assert_eq!(e("user", Shared, Shared, MntBindRefused), Expect::Flag(true));
        // Locked in a mount namespace a new user namespace owns.
        assert_eq!(e("mnt+user", Private, Private, UserInheritedMountUndone), Expect::Flag(false));
        assert_eq!(e("mnt", Private, Private, UserInheritedMountUndone), Expect::Flag(true));
        assert_eq!(e("none", Private, Private, UserInheritedMountUndone), Expect::Flag(true));
        assert_eq!(e("user", Private, Private, UserInheritedMountUndone), Expect::Flag(false));
    }

    /// The procfs views: /proc/sys and /proc/net follow the reader's namespaces whichever /proc
    /// is mounted; a host process's /proc/<pid>/net follows that process, visible wherever the
    /// probe's /proc lists it.
    #[test]
    fn procfs_views_follow_the_reader_or_the_listed_process() {
        use CheckId::{NetProcNetDev, NetProcNetUnix, PidNsLastPid, PidProcHostNet};
        let e = |ns: &str, check| expect(&CaseSpec::new(ns.parse().unwrap()).resolve(ROOT), ROOT, check);
        let (sh, is) = (Expect::Shared, Expect::Isolated);
        for (ns, last_pid, host_net, proc_net) in [
            ("none", &sh, &sh, &sh),
            ("pid", &is, &sh, &sh),
            ("pid+mnt", &is, &is, &sh),
            ("net", &sh, &sh, &is),
            ("net+mnt", &sh, &sh, &is),
            ("pid+net", &is, &sh, &is),
            ("pid+net+mnt", &is, &is, &is),
        ] {
            assert_eq!(&e(ns, PidNsLastPid), last_pid, "{ns}");
            assert_eq!(&e(ns, PidProcHostNet), host_net, "{ns}");
            assert_eq!(&e(ns, NetProcNetUnix), proc_net, "{ns}");
            assert_eq!(&e(ns, NetProcNetDev), proc_net, "{ns}");
        }
    }

    #[test]
    fn a_joiner_is_not_init() {
        let s = CaseSpec { launcher: LauncherKind::SetnsPidfd, ..CaseSpec::new("pid".parse().unwrap()) };
        assert_eq!(expect(&s.resolve(ROOT), ROOT, CheckId::PidSelfIsInit), Expect::Flag(false));
    }
}
