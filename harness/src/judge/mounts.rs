//! The mount cases' classifications (issue 15): propagation out of the container, a bind of the
//! propagation mount point, and undoing a mount inherited from the host.

use isoprobe_probes::wire::{Attempt, SysResult};

use super::{Observed, Seen, capability_seen, capability_text, obs, shared_if};
use crate::verdict::Verdict;

/// A tmpfs mounted on the container's copy of the propagation mount point: seen by the host is
/// shared. In the harness's mount namespace the capability test says whether it would have been.
pub(super) fn propagation_out(attempt: &Attempt, host_saw: bool) -> Result<Observed, Verdict> {
    match attempt {
        Attempt::Refused { shared, probe } => obs(
            capability_seen(probe),
            format!(
                "the probe's mount namespace is the harness's ({shared}): its mount on the propagation mount point \
                 refused by the interlock; a propagation change of two types = {probe} ({}); host saw a mount: \
                 {host_saw}",
                capability_text(probe)
            ),
        ),
        Attempt::Made { result } if result.is_ok() => {
            obs(shared_if(host_saw), format!("mount tmpfs on the copy: ok; host saw it: {host_saw}"))
        }
        Attempt::Made { result } => obs(
            Seen::Other(format!("mounting a tmpfs on the copy failed in the probe's own mount namespace: {result}")),
            format!("nothing was mounted, so the host's table proves nothing (host saw a mount: {host_saw})"),
        ),
    }
}

/// A bind of the propagation mount point: refused (EINVAL: unbindable) or made. In the harness's
/// mount namespace, the bind onto a file: EINVAL (unbindable) and EPERM (no capability) are
/// refusals, ENOTDIR says the bind itself was permitted.
pub(super) fn bind_refused(attempt: &Attempt) -> Result<Observed, Verdict> {
    let errno = |r: &SysResult| r.errno();
    match attempt {
        Attempt::Made { result } => {
            let seen = match errno(result) {
                None => Seen::Flag(false),
                Some(libc::EINVAL) => Seen::Flag(true),
                Some(_) => Seen::Other(format!("the bind failed with {result}, not EINVAL")),
            };
            obs(seen, format!("bind of the copy of the propagation mount point = {result}"))
        }
        Attempt::Refused { shared, probe } => {
            let seen = match errno(probe) {
                Some(libc::ENOTDIR) => Seen::Flag(false),
                Some(libc::EINVAL | libc::EPERM) => Seen::Flag(true),
                _ => Seen::Other(format!("the bind onto a file gave {probe}, neither ENOTDIR, EINVAL nor EPERM")),
            };
            obs(
                seen,
                format!(
                    "the probe's mount namespace is the harness's ({shared}): the bind onto a file = {probe} (EINVAL: \
                     unbindable, EPERM: no capability, ENOTDIR: the bind was permitted)"
                ),
            )
        }
    }
}

/// Undoing the host's ro,nosuid,nodev,noexec mount: a bind remount without the flags, then
/// umount(2). Both made (and the covered file seen) is "undone: yes"; the locked mount's refusals
/// (EPERM, EINVAL) "no"; anything else neither. In the harness's mount namespace, the two
/// capability tests.
pub(super) fn inherited_mount_undone(
    remount: &Attempt,
    unmount: &Attempt,
    covered_seen: bool,
) -> Result<Observed, Verdict> {
    match (remount, unmount) {
        (Attempt::Made { result: r }, Attempt::Made { result: u }) => {
            let seen = match (r.errno(), u.errno()) {
                (None, None) if covered_seen => Seen::Flag(true),
                (None, None) => Seen::Other("unmounted, but the file it covered is not there".into()),
                (Some(libc::EPERM), Some(libc::EINVAL)) => Seen::Flag(false),
                _ => Seen::Other(format!("remount {r}, umount {u}: not a locked mount's refusals")),
            };
            obs(
                seen,
                format!(
                    "bind remount dropping ro,nosuid,nodev,noexec = {r}; umount = {u}; covered file seen: {covered_seen}"
                ),
            )
        }
        (Attempt::Refused { shared, probe: r }, Attempt::Refused { probe: u, .. }) => {
            let seen = match (capability_seen(r), capability_seen(u)) {
                (Seen::Shared, Seen::Shared) => Seen::Flag(true),
                (Seen::Isolated, Seen::Isolated) => Seen::Flag(false),
                (a, b) => Seen::Other(format!("the capability tests disagree: mount {a}, umount {b}")),
            };
            obs(
                seen,
                format!(
                    "the probe's mount namespace is the harness's ({shared}): a propagation change of two types = {r} \
                     ({}); umount with MNT_EXPIRE|MNT_DETACH = {u} ({})",
                    capability_text(r),
                    capability_text(u)
                ),
            )
        }
        _ => Err(Verdict::Error { cause: "the remount and the umount were not both made or both refused".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isoprobe_probes::ns::NsKind;
    use isoprobe_probes::wire::NsId;

    fn err(errno: i32) -> SysResult {
        SysResult::Err { errno, name: format!("errno {errno}") }
    }

    const SHARED: NsId = NsId { kind: NsKind::Mnt, dev: 4, ino: 4026531841 };

    #[test]
    fn binds_are_refused_by_einval_or_the_capability_and_permitted_by_enotdir() {
        let seen = |a: Attempt| bind_refused(&a).unwrap().seen;
        assert_eq!(seen(Attempt::Made { result: SysResult::Ok }), Seen::Flag(false));
        assert_eq!(seen(Attempt::Made { result: err(libc::EINVAL) }), Seen::Flag(true));
        assert!(matches!(seen(Attempt::Made { result: err(libc::EPERM) }), Seen::Other(_)));
        assert_eq!(seen(Attempt::Refused { shared: SHARED, probe: err(libc::ENOTDIR) }), Seen::Flag(false));
        assert_eq!(seen(Attempt::Refused { shared: SHARED, probe: err(libc::EINVAL) }), Seen::Flag(true));
        assert_eq!(seen(Attempt::Refused { shared: SHARED, probe: err(libc::EPERM) }), Seen::Flag(true));
        assert!(matches!(seen(Attempt::Refused { shared: SHARED, probe: SysResult::Ok }), Seen::Other(_)));
    }

    #[test]
    fn an_inherited_mount_is_undone_only_with_its_covered_file_seen() {
        let made = |r| Attempt::Made { result: r };
        let seen = |r, u, c| inherited_mount_undone(&made(r), &made(u), c).unwrap().seen;
        assert_eq!(seen(SysResult::Ok, SysResult::Ok, true), Seen::Flag(true));
        assert!(matches!(seen(SysResult::Ok, SysResult::Ok, false), Seen::Other(_)));
        assert_eq!(seen(err(libc::EPERM), err(libc::EINVAL), false), Seen::Flag(false));
        assert!(matches!(seen(err(libc::EINVAL), err(libc::EINVAL), false), Seen::Other(_)));
        let refused = |r| Attempt::Refused { shared: SHARED, probe: r };
        let seen = |r, u| inherited_mount_undone(&refused(r), &refused(u), false).unwrap().seen;
        assert_eq!(seen(err(libc::EINVAL), err(libc::EINVAL)), Seen::Flag(true));
        assert_eq!(seen(err(libc::EPERM), err(libc::EPERM)), Seen::Flag(false));
        assert!(matches!(seen(err(libc::EINVAL), err(libc::EPERM)), Seen::Other(_)));
        assert!(inherited_mount_undone(&made(SysResult::Ok), &refused(SysResult::Ok), false).is_err());
    }
}
