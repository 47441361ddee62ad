//! Removing isoprobe's cgroups: the one place that thaws, kills and drains a cgroup before its
//! rmdir(2). Every owner uses it: a limit case's set ([`super::CaseCgroups`]), the namespace
//! matrix's per-case cgroup2 directory ([`super::CaseCgroup`]), a container tool's cgroups after
//! its teardown (`launcher::external::tool`), and the recovery of a dead run's (`leftovers`).
//!
//! The drain: rmdir until the kernel lets go of the tasks that exited (they linger until reaped);
//! past `wait`, thaw the cgroup (a frozen task does not die of SIGKILL on v1) and kill what is
//! still in it — cgroup.kill on cgroup2; on v1 each pid its cgroup.procs lists, pinned by a pidfd
//! and killed only if `/proc/<pid>/cgroup` still places it there, so a recycled pid is never
//! signalled — then wait once more.
//!
//! What this module must never do: remove or kill in a cgroup that is not in a subtree whose top
//! carries isoprobe's prefix.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use isoprobe_probes::sys::{pidfd_open, pidfd_send_signal};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::dir::read_at;
use super::layout::{Hierarchy, Version};
use crate::error::HarnessError;
use crate::names::PREFIX;

/// One cgroup to remove: its parent directory, its name, and the hierarchy it is on.
#[derive(Debug, Clone, Copy)]
pub struct Doomed<'a> {
    pub parent: BorrowedFd<'a>,
    pub name: &'a str,
    /// Where it is, for messages.
    pub shown: &'a Path,
    pub version: Version,
    /// The v1 hierarchy id, for the membership check of a pid to kill; 0 for v2, and for a
    /// private hierarchy whose id isoprobe does not track (the listing is then the proof).
    pub v1_id: u32,
}

/// rmdir(2) of `d` with the drain (see the module docs); gone already is success.
pub fn drain_and_remove(d: Doomed<'_>, wait: Duration) -> Result<(), HarnessError> {
    let mut killed = false;
    let mut deadline = Instant::now() + wait;
    loop {
        match unlinkat(d.parent, d.name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => {}
            Err(e) => {
                return Err(HarnessError::Sys { what: format!("remove cgroup {}", d.shown.display()), source: e });
            }
        }
        if Instant::now() >= deadline {
            if killed {
                return Err(HarnessError::Cgroup(format!(
                    "cgroup {} is still busy after its processes were killed",
                    d.shown.display()
                )));
            }
            let dir = openat(d.parent, d.name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(|e| HarnessError::Sys { what: format!("open cgroup {}", d.shown.display()), source: e })?;
            thaw(dir.as_fd());
            kill_members(d, dir.as_fd())?;
            killed = true;
            deadline = Instant::now() + wait;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Thaws a cgroup (v1 `freezer.state`, v2 `cgroup.freeze`); a file it lacks is skipped.
pub fn thaw(dir: BorrowedFd<'_>) {
    for (file, value) in [("freezer.state", "THAWED"), ("cgroup.freeze", "0")] {
        if let Ok(fd) = openat(dir, file, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            let _ = File::from(fd).write_all(value.as_bytes());
        }
    }
}

/// Kills every process in `d` (see the module docs).
fn kill_members(d: Doomed<'_>, dir: BorrowedFd<'_>) -> Result<(), HarnessError> {
    let write_all = |file: &str, value: &str| -> std::io::Result<()> {
        let fd = openat(dir, file, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        File::from(fd).write_all(value.as_bytes())
    };
    if d.version == Version::V2 {
        return write_all("cgroup.kill", "1")
            .map_err(|e| HarnessError::Io { what: format!("kill the processes in {}", d.shown.display()), source: e });
    }
    let procs = read_at(dir, "cgroup.procs")
        .map_err(|e| HarnessError::Io { what: format!("read {}/cgroup.procs", d.shown.display()), source: e })?;
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let Ok(pidfd) = pidfd_open(pid) else { continue };
        if d.v1_id == 0 || member_of(pid, d.v1_id, d.name) {
            let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        }
    }
    Ok(())
}

/// Whether /proc/<pid>/cgroup places `pid` in a cgroup named `name` on v1 hierarchy `id`.
fn member_of(pid: i32, id: u32, name: &str) -> bool {
    isoprobe_probes::text::read(format!("/proc/{pid}/cgroup")).is_ok_and(|t| {
        t.lines().any(|l| {
            let mut f = l.splitn(3, ':');
            f.next().and_then(|i| i.parse::<u32>().ok()) == Some(id)
                && f.nth(1).is_some_and(|p| p.rsplit('/').next() == Some(name))
        })
    })
}

/// Removes the subtree at `rel` (relative to `h`'s mount point; the subtree's top, its last
/// component, named with isoprobe's prefix) deepest first, each directory drained; returns what
/// could not be removed.
pub fn remove_tree(h: &Hierarchy, rel: &Path, wait: Duration) -> Vec<String> {
    let Some(top) = rel.file_name().map(|c| c.to_string_lossy().into_owned()) else {
        return vec![format!("refusing to remove the root of {}", h.mount_point.display())];
    };
    assert!(top.starts_with(PREFIX), "cgroup {} lacks the isoprobe prefix", rel.display());
    let root = h.mount_point.join(rel);
    if !root.exists() {
        return Vec::new();
    }
    let mut dirs = Vec::new();
    collect_dirs(&root, &mut dirs);
    remove_dirs(dirs, h.version, h.id, wait)
}

/// Removes every cgroup below `top` (one of isoprobe's, which stays: its owner removes it), deepest
/// first, each drained: the children a case's processes made in their own cgroup.
pub fn remove_below(top: &Path, version: Version, v1_id: u32, wait: Duration) -> Vec<String> {
    let named = top.file_name().is_some_and(|n| n.to_string_lossy().starts_with(PREFIX));
    assert!(named, "cgroup {} lacks the isoprobe prefix", top.display());
    let mut dirs = Vec::new();
    collect_dirs(top, &mut dirs);
    dirs.retain(|d| d != top);
    remove_dirs(dirs, version, v1_id, wait)
}

/// rmdir with the drain of every directory in `dirs`, deepest first.
fn remove_dirs(mut dirs: Vec<PathBuf>, version: Version, v1_id: u32, wait: Duration) -> Vec<String> {
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut problems = Vec::new();
    for dir in dirs {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        else {
            continue;
        };
        let parent_fd: OwnedFd =
            match open(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(e) => {
                    problems.push(format!("failed to open {}: {e}", parent.display()));
                    continue;
                }
            };
        let d = Doomed { parent: parent_fd.as_fd(), name: &name, shown: &dir, version, v1_id };
        if let Err(e) = drain_and_remove(d, wait) {
            problems.push(e.to_string());
        }
    }
    problems
}

/// `dir` and every directory below it.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

/// Directories named `isoprobe-*` under every hierarchy of `hierarchies`, down to `depth` levels
/// and not into them (their children go with them), as (hierarchy, path relative to its mount
/// point), deepest first.
pub fn isoprobe_cgroups(hierarchies: &[Hierarchy], depth: usize) -> Vec<(&Hierarchy, PathBuf)> {
    let mut out = Vec::new();
    for h in hierarchies {
        let mut found = Vec::new();
        find_named(&h.mount_point, depth, &mut found);
        out.extend(found.into_iter().filter_map(|p| Some((h, p.strip_prefix(&h.mount_point).ok()?.to_path_buf()))));
    }
    out.sort_by_key(|(_, p)| std::cmp::Reverse(p.components().count()));
    out
}

fn find_named(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name().to_string_lossy().starts_with(&format!("{PREFIX}-")) {
            out.push(e.path());
        } else if depth > 1 {
            find_named(&e.path(), depth - 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a fake cgroupfs (a temp dir: rmdir of an empty directory succeeds at once), a tree is
    /// removed deepest first and a name without the prefix is refused.
    #[test]
    fn a_tree_goes_deepest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("isoprobe-0123456789ab-1");
        std::fs::create_dir_all(top.join("payload/inner")).unwrap();
        std::fs::create_dir_all(tmp.path().join("other")).unwrap();
        let h = Hierarchy {
            version: Version::V2,
            controllers: Vec::new(),
            id: 0,
            name: None,
            mount_point: tmp.path().to_path_buf(),
            mount_root: "/".into(),
            own_path: "/".into(),
            parent: Ok(tmp.path().to_path_buf()),
            delegated: Vec::new(),
        };
        let found = isoprobe_cgroups(std::slice::from_ref(&h), 3);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, Path::new("isoprobe-0123456789ab-1"));
        assert_eq!(remove_tree(&h, &found[0].1, Duration::from_millis(10)), Vec::<String>::new());
        assert!(!top.exists() && tmp.path().join("other").exists());
        for foreign in ["other", "isoprobe-0123456789ab-1/payload"] {
            let refused = std::panic::catch_unwind(|| remove_tree(&h, Path::new(foreign), Duration::ZERO));
            assert!(refused.is_err(), "{foreign}: a subtree whose top lacks the prefix must never be removed");
        }
        // A nested isoprobe cgroup (under a host cgroup of another name) is found and removed.
        std::fs::create_dir_all(tmp.path().join("host.slice/isoprobe-0123456789ab-2")).unwrap();
        let found = isoprobe_cgroups(std::slice::from_ref(&h), 3);
        assert_eq!(
            found.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
            vec![Path::new("host.slice/isoprobe-0123456789ab-2")]
        );
        assert!(remove_tree(&h, &found[0].1, Duration::from_millis(10)).is_empty());
        assert!(
            tmp.path().join("host.slice").exists() && !tmp.path().join("host.slice/isoprobe-0123456789ab-2").exists()
        );
    }
}
