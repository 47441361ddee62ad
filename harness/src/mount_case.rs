//! The host side of a mount case (issue 15): the mount points a probe looks at, made by isoprobe
//! in the case directory, and the host's answers about them.
//!
//! The case directory is first bound onto itself and made private, so that nothing mounted under
//! it propagates to the host's other mount namespaces, nor theirs into it (the host's `/` is
//! shared, as systemd makes it). In it:
//! - `prop`, bound onto itself and given the host side's mode (a slave is bound from `prop-master`,
//!   a shared mount of its own, then made its slave); the probe's copy of it is what the case
//!   looks at;
//! - `prop-bind`, an empty directory, and `prop-file`, a regular file, to bind `prop` onto;
//! - `locked`, a tmpfs mounted ro,nosuid,nodev,noexec over a directory holding [`COVERED`].
//!
//! It never changes the propagation of a mount it did not make; everything it mounts is under
//! the case directory and goes with it ([`crate::mounts::unmount_all_under`], in every outcome).

use crate::case_env::{make_dir, write_readable};
use std::path::Path;

use isoprobe_probes::wire::{COVERED, FROM_HOST, FROM_PROBE, MountSentinels, PropMode};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::error::{Context, HarnessError};
use crate::mounts::is_mount_point;
use crate::spec::Propagation;

/// The propagation mount point.
pub const PROP: &str = "prop";
/// The master of a slave host side.
const MASTER: &str = "prop-master";
const BIND_TARGET: &str = "prop-bind";
const BIND_FILE: &str = "prop-file";
const LOCKED: &str = "locked";
/// The marker file in the tmpfs the host mounts on `prop`'s [`FROM_HOST`].
const MARKER: &str = "marker";

/// Makes the host side of a mount case in the case directory `dir` (see the module's doc).
/// What it mounted before a failure is removed with the case directory.
pub fn create(dir: &Path, p: Propagation, token: &str) -> Result<(), HarnessError> {
    for d in [PROP, MASTER, BIND_TARGET, LOCKED] {
        make_dir(&dir.join(d), 0o755)?;
    }
    for d in [PROP, MASTER] {
        for sub in [FROM_HOST, FROM_PROBE] {
            let path = dir.join(d).join(sub);
            make_dir(&path, 0o755)?;
        }
    }
    let file = dir.join(BIND_FILE);
    write_readable(&file, "").ctx(|| format!("create {}", file.display()))?;
    let covered = dir.join(LOCKED).join(COVERED);
    write_readable(&covered, token).ctx(|| format!("write {}", covered.display()))?;
    bind(dir, dir)?;
    set(dir, PropMode::Private)?;
    let prop = dir.join(PROP);
    match p.host {
        PropMode::Slave => {
            let master = dir.join(MASTER);
            bind(&master, &master)?;
            set(&master, PropMode::Shared)?;
            bind(&master, &prop)?;
            set(&prop, PropMode::Slave)?;
        }
        mode => {
            bind(&prop, &prop)?;
            set(&prop, mode)?;
        }
    }
    let locked = dir.join(LOCKED);
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("isoprobe-locked"), &locked, Some("tmpfs"), flags, Some("size=16k,mode=0755"))
        .map_err(|source| HarnessError::Sys { what: format!("mount a tmpfs on {}", locked.display()), source })
}

fn bind(from: &Path, to: &Path) -> Result<(), HarnessError> {
    mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|source| HarnessError::Sys { what: format!("bind {} onto {}", from.display(), to.display()), source })
}

fn set(at: &Path, mode: PropMode) -> Result<(), HarnessError> {
    let flags = MsFlags::from_bits_retain(mode.ms_flag());
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>)
        .map_err(|source| HarnessError::Sys { what: format!("make {} {mode}", at.display()), source })
}

/// The mount points as the probe sees them (`probe_path` of a name in the case directory).
pub fn sentinels(probe_path: impl Fn(&str) -> String) -> MountSentinels {
    MountSentinels {
        propagation: probe_path(PROP),
        bind_target: probe_path(BIND_TARGET),
        bind_file: probe_path(BIND_FILE),
        locked: probe_path(LOCKED),
    }
}

/// Mounts a tmpfs holding `token` on the host's `prop/from-host`.
pub fn mount_from_host(dir: &Path, token: &str) -> Result<(), String> {
    let target = dir.join(PROP).join(FROM_HOST);
    mount(Some("isoprobe-propagation"), &target, Some("tmpfs"), MsFlags::empty(), Some("size=16k,mode=0755"))
        .map_err(|e| format!("failed to mount a tmpfs on {}: {e}", target.display()))?;
    write_readable(&target.join(MARKER), token).map_err(|e| format!("failed to write the propagation marker: {e}"))
}

/// Unmounts it again; an error if it was gone before (the probe's "not seen" would then prove
/// nothing).
pub fn unmount_from_host(dir: &Path) -> Result<(), String> {
    let target = dir.join(PROP).join(FROM_HOST);
    if !is_mount_point(&target).map_err(|e| e.to_string())? {
        return Err(format!("the host's mount on {} was gone when the probe had looked", target.display()));
    }
    umount2(&target, MntFlags::MNT_DETACH).map_err(|e| format!("failed to unmount {}: {e}", target.display()))
}

/// Whether the host sees a mount on `prop/from-probe`.
pub fn probe_mount_seen(dir: &Path) -> Result<bool, String> {
    is_mount_point(&dir.join(PROP).join(FROM_PROBE)).map_err(|e| e.to_string())
}
