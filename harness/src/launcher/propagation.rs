//! What each launcher gives the container's copy of a host mount (issue 15, part 5): the table of
//! the tools' documented defaults for the mount cases, and what follows from it for a case.
//!
//! A mount case asks for a host side and a container side mode of the isoprobe-owned propagation
//! mount point (`spec::Propagation`). The native launcher's probe makes its copy exactly the
//! requested mode; a real tool first gives its whole mount tree a propagation of its own, then
//! brings the mount point in with a bind (or with the recursive bind of its root), and takes a
//! propagation option for that bind or none. [`TABLE`] says, per tool, what it does to the
//! container's root and to a bind, with the source of each row; [`gives`] turns a requested
//! container mode into the mode the container really has (the oracle judges that one, and the
//! report names the default), or into the reason the tool cannot give it (a skip).
//!
//! The relation the oracle reasons about is the copy's towards the host's peer group: a copy that
//! is a slave of it and also shared in a peer group of the container's own (a tool that makes its
//! root rslave, then its bind `shared`) receives the host's mounts and sends none back, exactly
//! like a plain slave; it is judged as one, and the default says so.
//!
//! What this module must never do: turn a case the tool cannot express into a pass. A tool's
//! default stands in for the requested mode only where the table names it, with its source.

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::wire::PropMode;

use super::{Effective, ToolDefault};
use crate::requirement::Requirement;
use crate::spec::{CaseSpec, LauncherKind};
use crate::verdict::Skip;

/// One row of [`TABLE`]: what a tool does to the container's mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolPropagation {
    pub launcher: LauncherKind,
    /// What the tool makes the container's root (its whole mount tree) before its own mounts.
    pub root: &'static str,
    /// What a bind of a host mount gets, and how the harness asks for the case's mode.
    pub bind: &'static str,
    /// Where the tool documents it, or does it in its source.
    pub source: &'static str,
}

/// The tools' defaults, one row per launcher that starts containers (joiners only look through
/// them). The native launcher is the reference: its probe gives the copy the requested mode.
pub const TABLE: &[ToolPropagation] = &[
    ToolPropagation {
        launcher: LauncherKind::Clone3,
        root: "every mount private but the propagation mount point (the probe, one mount at a time)",
        bind: "none: the probe makes the copy the requested mode (make-shared, -slave, -private, -unbindable)",
        source: "probes/src/probe/mounts.rs, private_but",
    },
    ToolPropagation {
        launcher: LauncherKind::UtilUnshare,
        root: "--propagation MODE, recursive (default private); the copy has the case's mode",
        bind: "none; no unbindable (skip)",
        source: "unshare(1), --propagation: \"slave|shared|private|unchanged ... Set mount propagation flag in the \
                 new mount namespace. The default is to set the propagation to private.\"",
    },
    ToolPropagation {
        launcher: LauncherKind::Bwrap,
        root: "rslave, always",
        bind: "--bind is recursive and takes no propagation: every requested container mode is run as slave",
        source: "bubblewrap.c, main: \"Mark everything as slave, so that we still receive mounts from the real \
                 root, but don't propagate mounts to the real root.\"",
    },
    ToolPropagation {
        launcher: LauncherKind::Lxc,
        root: "rslave: lxc-execute makes the host's own mount tree rslave in the host's mount namespace before it \
               clones the container (a shared host mount with no peers, as the case's host side is, turns private), \
               and the container's rslave again",
        bind: "lxc.mount.entry `bind,<mode>`, the mode applied after the bind; the bind of a slave copy is a slave, \
               so `shared` gives a slave that is also shared in the container (judged as slave); a shared host \
               side cannot be kept (skip)",
        source: "strace of lxc-execute 5.0.2 here: mount(\"\", \"/\", NULL, MS_REC|MS_SLAVE, NULL) by lxc-execute itself, \
                 then clone3(CLONE_NEWNS), then the same in the child; lxc.container.conf(5), lxc.mount.entry \
                 (fstab(5) options, with propagation options)",
    },
    ToolPropagation {
        launcher: LauncherKind::Runc,
        root: "rslave unless linux.rootfsPropagation says otherwise",
        bind: "mounts[] `bind` with the mode as an option, applied after the bind; the bind of a slave copy is a \
               slave, so `shared` gives a slave that is also shared in the container (judged as slave)",
        source: "runc libcontainer/rootfs_linux.go, prepareRoot: flag := unix.MS_SLAVE | unix.MS_REC unless \
                 config.RootPropagation; mountPropagate applies m.PropagationFlags after the mount; \
                 runtime-spec config-linux.md, rootfsPropagation",
    },
    ToolPropagation {
        launcher: LauncherKind::Crun,
        root: "rprivate unless linux.rootfsPropagation says otherwise, applied to the container's root after its \
               mounts",
        bind: "mounts[] `bind` with the mode as an option, which the root's rprivate then overrides: every mode \
               gives a private copy (judged as private)",
        source: "crun src/libcrun/linux.c, libcrun_set_mounts: rootfs_propagation = MS_REC | MS_PRIVATE when \
                 linux.rootfsPropagation is unset; seen with crun 1.8.1 here: a bind given `unbindable` can be \
                 bound in the container, and one given `shared` or `slave` receives none of the host's mounts",
    },
    ToolPropagation {
        launcher: LauncherKind::Nspawn,
        root: "rslave, then the container's tree rshared",
        bind: "--bind=SRC:DST takes no propagation option: a bind of a shared host mount is its slave, shared in \
               the container (judged as slave); other container modes cannot be asked for (skip)",
        source: "systemd-nspawn(1), --bind= (options: rbind, norbind, idmap, noidmap, rootidmap); nspawn.c, \
                 outer_child: MS_SLAVE|MS_REC on / after unsharing the mount namespace, then \"Mark everything as \
                 shared so our mounts get propagated down\" (MS_SHARED|MS_REC on the container's directory)",
    },
];

/// `kind`'s row (a joiner's is its container launcher's; every native path is clone3's).
pub fn row(kind: LauncherKind) -> &'static ToolPropagation {
    let kind = if kind.is_native() { LauncherKind::Clone3 } else { kind.container_launcher() };
    TABLE.iter().find(|r| r.launcher == kind).expect("every container launcher has a propagation row")
}

/// The container side `kind` really gives when a case asks for `requested` (with a mount
/// namespace), or why it cannot.
pub fn gives(kind: LauncherKind, host: PropMode, requested: PropMode) -> Result<PropMode, String> {
    use PropMode::{Private, Shared, Slave, Unbindable};
    let kind = if kind.is_native() { LauncherKind::Clone3 } else { kind.container_launcher() };
    let binds = matches!(
        kind,
        LauncherKind::Bwrap | LauncherKind::Lxc | LauncherKind::Runc | LauncherKind::Crun | LauncherKind::Nspawn
    );
    if host == Unbindable && binds {
        return Err(format!(
            "{} brings the propagation mount point in with a bind (of the host's, or in the recursive bind of its \
             root), and a bind of an unbindable mount is refused (EINVAL, __do_loopback) or leaves it out; whether \
             the container's own copy is still unbindable depends on the kernel (Linux 6.18 copies it without \
             `unbindable`)",
            kind.name()
        ));
    }
    Ok(match (kind, requested) {
        (LauncherKind::Bwrap, _) => Slave,
        (LauncherKind::Lxc, _) if host == Shared => {
            return Err(
                "lxc-execute makes the host's mount tree rslave from its own process, in the host's mount namespace, \
                 before it clones the container (strace: mount(\"\", \"/\", NULL, MS_REC|MS_SLAVE) ahead of \
                 clone3(CLONE_NEWNS)): the case's shared host side, with no peers, turns private, so a shared host \
                 side cannot be kept"
                    .into(),
            );
        }
        (LauncherKind::Lxc | LauncherKind::Runc, Shared) => Slave,
        (LauncherKind::Crun, _) => Private,
        (LauncherKind::Nspawn, Slave) => Slave,
        (LauncherKind::Nspawn, other) => {
            return Err(format!(
                "systemd-nspawn's --bind takes no propagation option: every bind is a slave of the host's peer group \
                 (shared in the container), so a container side `{other}` cannot be asked for"
            ));
        }
        (LauncherKind::UtilUnshare, Unbindable) => {
            return Err("unshare(1) --propagation takes slave, shared, private or unchanged: no unbindable".into());
        }
        (_, mode) => mode,
    })
}

/// Whether `kind` can run the mount case `spec` (a skip naming what the tool cannot give);
/// `mnt`: whether its container has a mount namespace (bwrap makes one unasked).
pub fn supports(kind: LauncherKind, spec: &CaseSpec, mnt: bool) -> Result<(), Skip> {
    match spec.propagation.filter(|_| mnt) {
        Some(p) => gives(kind, p.host, p.container).map(drop).map_err(|reason| {
            Requirement::LauncherFeature {
                launcher: kind.name(),
                what: format!("propagation-{}-{}", p.host, p.container),
            }
            .skip(reason)
        }),
        None => Ok(()),
    }
}

/// Puts the container side `kind` really gives into `e` (see [`gives`]), naming the default.
pub fn apply(kind: LauncherKind, e: &mut Effective) {
    let has_mnt = e.spec.has(NsKind::Mnt);
    let Some(p) = e.spec.0.propagation.as_mut().filter(|_| has_mnt) else { return };
    if let Ok(mode) = gives(kind, p.host, p.container)
        && mode != p.container
    {
        let r = row(kind);
        e.defaults.push(ToolDefault {
            what: format!(
                "mnt: asked for a `{}` copy, {} gives `{mode}`: root {}; bind {}",
                p.container,
                kind.name(),
                r.root,
                r.bind
            ),
            source: r.source,
        });
        p.container = mode;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PropMode::{Private, Shared, Slave, Unbindable};

    #[test]
    fn every_container_launcher_has_a_row_and_the_native_gives_what_is_asked() {
        for kind in LauncherKind::ALL.into_iter().chain(LauncherKind::EXTERNAL) {
            let _ = row(kind);
        }
        for host in PropMode::ALL {
            for mode in PropMode::ALL {
                assert_eq!(gives(LauncherKind::Clone3, host, mode), Ok(mode));
            }
        }
    }

    #[test]
    fn the_tools_give_their_documented_modes() {
        assert_eq!(gives(LauncherKind::Runc, Shared, Shared), Ok(Slave));
        assert_eq!(gives(LauncherKind::Runc, Shared, Unbindable), Ok(Unbindable));
        assert_eq!(gives(LauncherKind::Crun, Shared, Slave), Ok(Private));
        assert_eq!(gives(LauncherKind::Crun, Private, Unbindable), Ok(Private));
        assert_eq!(gives(LauncherKind::Lxc, Private, Shared), Ok(Slave));
        assert!(gives(LauncherKind::Lxc, Shared, Private).unwrap_err().contains("MS_SLAVE"));
        assert_eq!(gives(LauncherKind::Bwrap, Shared, Private), Ok(Slave));
        assert!(gives(LauncherKind::Bwrap, Unbindable, Slave).is_err());
        assert_eq!(gives(LauncherKind::Nspawn, Shared, Slave), Ok(Slave));
        assert!(gives(LauncherKind::Nspawn, Shared, Private).unwrap_err().contains("--bind"));
        assert!(gives(LauncherKind::Runc, Unbindable, Private).unwrap_err().contains("EINVAL"));
        assert!(gives(LauncherKind::UtilUnshare, Shared, Unbindable).is_err());
        assert_eq!(gives(LauncherKind::UtilUnshare, Unbindable, Private), Ok(Private));
    }
}
