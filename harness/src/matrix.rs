//! The case matrix: which specs a full run covers, with the defaults that make every check able to
//! tell isolation from sharing (a hostname unlike the host's, clock offsets unlike zero).

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::{PropMode, TimeOffsets};

use crate::spec::{CaseSpec, LauncherKind, Propagation, RootfsMode};

/// Offsets for a new time namespace: days apart and with distinct sub-second parts, so that a
/// swapped or truncated offset is caught.
pub const DEFAULT_TIME_OFFSETS: TimeOffsets = TimeOffsets {
    monotonic_ns: 7 * 86_400 * 1_000_000_000 + 123_456_789,
    boottime_ns: 14 * 86_400 * 1_000_000_000 + 987_654_321,
};

/// A spec with the matrix's defaults: a hostname in a new uts namespace, offsets in a new time
/// namespace.
pub fn spec_for(namespaces: NsSet, rootfs: RootfsMode, launcher: LauncherKind) -> CaseSpec {
    CaseSpec {
        namespaces,
        rootfs,
        launcher,
        id_maps: None,
        hostname: namespaces.contains(NsKind::Uts).then(|| format!("isoprobe-{:02x}", namespaces.bits())),
        time_offsets: namespaces.contains(NsKind::Time).then_some(DEFAULT_TIME_OFFSETS),
        limits: None,
        propagation: None,
    }
}

/// The mount cases (issue 15), a small set of their own rather than a dimension of every case:
/// clone3 on the host filesystem, every pair of host and container propagation with a mount
/// namespace, alone and with a user namespace (less privileged: slave copies and locked
/// mounts), and every host mode without a mount namespace (the sharing control).
///
/// Left out: a host side unbindable with the container's make-slave. sharedsubtree.rst has a
/// new namespace's copy of an unbindable mount stay unbindable and make-slave leave it so (a bind
/// of it refused, as the oracle says); Linux 6.18 copies it without `unbindable` (its mountinfo
/// shows none, and the bind is made). The outcome depends on the kernel, which the oracle does
/// not take.
pub fn mount_cases() -> Vec<CaseSpec> {
    let mnt = NsSet::EMPTY.with(NsKind::Mnt);
    let mut v = Vec::new();
    for ns in [NsSet::EMPTY, mnt, mnt.with(NsKind::User)] {
        for host in PropMode::ALL {
            let containers = if ns.contains(NsKind::Mnt) { PropMode::ALL.to_vec() } else { vec![host] };
            for container in containers {
                if (host, container) == (PropMode::Unbindable, PropMode::Slave) {
                    continue;
                }
                let propagation = Some(Propagation { host, container });
                v.push(CaseSpec { propagation, ..spec_for(ns, RootfsMode::Host, LauncherKind::Clone3) });
            }
        }
    }
    v
}

/// The namespace sets the non-clone3 paths cover: each kind alone, and all eight.
pub fn singles_and_all() -> Vec<NsSet> {
    let mut v: Vec<NsSet> = NsKind::ALL.into_iter().map(|k| NsSet::EMPTY.with(k)).collect();
    v.push(NsSet::ALL);
    v
}

/// The full namespace matrix:
/// - clone3: all 256 combinations on the host filesystem and in a chroot, and the 128 with a mount
///   namespace after pivot_root;
/// - clone (the fallback path), unshare, setns through ns files and through a pidfd: every single
///   kind and all eight on the host filesystem, and all eight after pivot_root and in a chroot;
/// - the mount cases ([`mount_cases`]).
pub fn namespace_matrix() -> Vec<CaseSpec> {
    let mut v = Vec::new();
    for rootfs in RootfsMode::ALL {
        for ns in NsSet::every() {
            let s = spec_for(ns, rootfs, LauncherKind::Clone3);
            if s.validate().is_ok() {
                v.push(s);
            }
        }
    }
    for launcher in [LauncherKind::Clone, LauncherKind::Unshare, LauncherKind::SetnsNsFiles, LauncherKind::SetnsPidfd] {
        for ns in singles_and_all() {
            v.push(spec_for(ns, RootfsMode::Host, launcher));
        }
        for rootfs in [RootfsMode::PivotRoot, RootfsMode::Chroot] {
            v.push(spec_for(NsSet::ALL, rootfs, launcher));
        }
    }
    v.extend(mount_cases());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_valid_and_has_unique_names() {
        let m = namespace_matrix();
        let names: std::collections::BTreeSet<String> = m.iter().map(CaseSpec::name).collect();
        assert_eq!(names.len(), m.len());
        assert!(m.iter().all(|s| s.validate().is_ok()));
        let clone3_host = m
            .iter()
            .filter(|s| s.launcher == LauncherKind::Clone3 && s.rootfs == RootfsMode::Host && s.propagation.is_none());
        assert_eq!(clone3_host.count(), 256);
        assert_eq!(mount_cases().len(), 4 + 15 + 15);
    }
}
