//! Reading the mount table, and removing mounts isoprobe made under its own directories.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};

use crate::error::{Context, HarnessError};

/// One mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

/// Parses `/proc/<pid>/mountinfo` (proc(5)): `id parent maj:min root mount-point options
/// [optional...] - fstype source super-options`, with spaces and backslashes octal-escaped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            Some(MountEntry {
                mount_point: PathBuf::from(unescape_mountinfo(mount_point)),
                fs_type: r.next()?.to_owned(),
                source: r.next()?.to_owned(),
                super_options: r.next().unwrap_or("").to_owned(),
            })
        })
        .collect()
}

/// Undoes the kernel's `\ooo` escaping of mountinfo paths.
pub use isoprobe_probes::mountinfo::unescape as unescape_mountinfo;

/// The mounts of the calling process's mount namespace.
pub fn mounts() -> Result<Vec<MountEntry>, HarnessError> {
    let text = isoprobe_probes::text::read("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    Ok(parse_mountinfo(&text))
}

/// Detaches every mount at or below `dir`, deepest first. Only ever called on isoprobe's own
/// run and case directories, so every mount found there is isoprobe's.
pub fn unmount_all_under(dir: &Path) -> Result<usize, HarnessError> {
    let mut points: Vec<PathBuf> =
        mounts()?.into_iter().map(|m| m.mount_point).filter(|p| p.starts_with(dir)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in &points {
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(HarnessError::Sys { what: format!("unmount {}", p.display()), source: e }),
        }
    }
    Ok(points.len())
}

/// Whether something is mounted exactly at `path` in the harness's mount namespace.
pub fn is_mount_point(path: &Path) -> Result<bool, HarnessError> {
    // A mount point is on another mount than its parent directory: two statx(2) calls instead of
    // the whole table (read under the lock every mount and unmount of the machine takes).
    if let Some(parent) = path.parent() {
        let id = |p: &Path| crate::sys::statx::mount_id(p).ctx(|| format!("statx {}", p.display()));
        match (id(path), id(parent)) {
            (Ok(Some(here)), Ok(Some(up))) => return Ok(here != up),
            (Err(HarnessError::Io { source, .. }), _) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(false);
            }
            _ => {} // no mount ids (before Linux 5.8), or an error: the table decides
        }
    }
    Ok(mounts()?.iter().any(|m| m.mount_point == path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parses_optional_fields_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt dir"));
        assert_eq!(m[0].fs_type, "ext3");
        assert_eq!(m[1].fs_type, "cgroup2");
        assert_eq!(m[1].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn mount_points_are_told_by_their_mount_id_as_the_table_tells_them() {
        for (path, expected) in [("/proc", true), ("/proc/sys", is_in_table("/proc/sys")), ("/proc/self", false)] {
            assert_eq!(is_mount_point(Path::new(path)).unwrap(), expected, "{path}");
            assert_eq!(is_in_table(path), expected, "{path}: the table agrees");
        }
        assert!(!is_mount_point(Path::new("/nonexistent-isoprobe-dir")).unwrap());
    }

    fn is_in_table(path: &str) -> bool {
        mounts().unwrap().iter().any(|m| m.mount_point == Path::new(path))
    }

    #[test]
    fn a_truncated_escape_is_kept_literally() {
        assert_eq!(unescape_mountinfo("a\\04"), "a\\04");
        assert_eq!(unescape_mountinfo("a\\134b"), "a\\b");
    }
}
