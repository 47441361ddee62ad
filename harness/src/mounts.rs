//! Reading the mount table, and removing mounts isoprobe made under its own directories.

use std::cell::Cell;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use nix::mount::{MntFlags, umount2};

use crate::error::{Context, HarnessError};

/// The host's mount table against the external tools that copy it and walk the copy: bwrap binds
/// the host's root recursively, then remounts each submount it listed, so a mount of another case
/// that goes away meanwhile fails the start ("Can't bind mount /oldroot/ on /newroot/: Unable to
/// apply mount flags: remount \"/newroot/tmp/isoprobe-…/case-20\": No such file or directory",
/// or "Invalid argument"): a slave copy receives the unmount, and a removed directory takes what is
/// mounted on it in every namespace along. Reproduced outside isoprobe: a loop that binds a
/// directory onto itself, unmounts and removes it failed 55 of 150 `bwrap --bind / / true` run
/// beside it.
///
/// Two kinds of holder exclude each other, while holders of one kind share: the changes
/// ([`changing_host_mounts`]: what isoprobe mounts or unmounts in the host's mount namespace, the
/// removal of a case's directory, and a mount case from its host side's creation to its removal,
/// since its probe's mounts reach the host through the propagation it tests) and the copies
/// ([`copying_host_mounts`]: an external tool's start, until its probe runs). Cases that only
/// change (the namespace matrix) never wait for each other, nor do two tools' starts. A waiting
/// copy holds off new changes, so that a stream of changes cannot starve a start. One per
/// process (every harness in it changes the one table); isoprobe processes run at once on one
/// host are not kept apart, and one's mount cases can still fail another's external start (an
/// error of that case, never a pass).
static HOST_MOUNT_TABLE: HostMountTable = HostMountTable { state: Mutex::new(Holders::NONE), turn: Condvar::new() };

struct HostMountTable {
    state: Mutex<Holders>,
    turn: Condvar,
}

/// Who holds the table and who waits for it, by class.
#[derive(Debug)]
struct Holders {
    copying: usize,
    copies_waiting: usize,
    changing: usize,
    changes_waiting: usize,
}

impl Holders {
    const NONE: Holders = Holders { copying: 0, copies_waiting: 0, changing: 0, changes_waiting: 0 };
}

/// The two classes of holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Change,
    Copy,
}

thread_local! {
    /// This thread holds the table as a change: a nested change or copy is part of it (a mount
    /// case's sentinel mount, an external tool's start of a mount case).
    static CHANGING_HERE: Cell<bool> = const { Cell::new(false) };
}

/// The host's mount table held as a change or a copy (see `HOST_MOUNT_TABLE`) until dropped; tied
/// to its thread. A hold nested in a change of the same thread counts for nothing.
#[derive(Debug)]
pub struct Held {
    counted: Option<Class>,
    _thread: PhantomData<*const ()>,
}

/// Waits until no external tool copies the host's mount table, and holds copies off until the
/// result is dropped (see `HOST_MOUNT_TABLE`).
pub fn changing_host_mounts() -> Held {
    hold(Class::Change)
}

/// Waits until isoprobe changes nothing in the host's mount table, and holds changes off until
/// the result is dropped (see `HOST_MOUNT_TABLE`). In a thread that holds a change, the change
/// covers it.
pub fn copying_host_mounts() -> Held {
    hold(Class::Copy)
}

fn hold(class: Class) -> Held {
    if CHANGING_HERE.get() {
        return Held { counted: None, _thread: PhantomData };
    }
    let t = &HOST_MOUNT_TABLE;
    let mut g = t.state.lock().unwrap_or_else(|e| e.into_inner());
    // A waiting copy holds off new changes: a stream of changes cannot starve a start.
    let blocked = |h: &Holders| match class {
        Class::Change => h.copying > 0 || h.copies_waiting > 0,
        Class::Copy => h.changing > 0,
    };
    fn waiting(h: &mut Holders, class: Class) -> &mut usize {
        match class {
            Class::Change => &mut h.changes_waiting,
            Class::Copy => &mut h.copies_waiting,
        }
    }
    if blocked(&g) {
        *waiting(&mut g, class) += 1;
        while blocked(&g) {
            g = t.turn.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        *waiting(&mut g, class) -= 1;
    }
    match class {
        Class::Change => {
            g.changing += 1;
            CHANGING_HERE.set(true);
        }
        Class::Copy => g.copying += 1,
    }
    Held { counted: Some(class), _thread: PhantomData }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(class) = self.counted else { return };
        let t = &HOST_MOUNT_TABLE;
        let mut g = t.state.lock().unwrap_or_else(|e| e.into_inner());
        // Wakes the other class only when it waits and this was the last holder: every case
        // takes a change a few times, and most have no one to wake.
        let wake = match class {
            Class::Change => {
                CHANGING_HERE.set(false);
                g.changing -= 1;
                g.changing == 0 && g.copies_waiting > 0
            }
            Class::Copy => {
                g.copying -= 1;
                g.copying == 0 && g.changes_waiting > 0
            }
        };
        drop(g);
        if wake {
            t.turn.notify_all();
        }
    }
}

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
    let _changing = (!points.is_empty()).then(changing_host_mounts);
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
    fn a_copy_waits_for_the_changes_and_a_thread_nests_in_its_own_change() {
        use std::sync::mpsc;
        use std::time::Duration;
        let change = changing_host_mounts();
        // The same thread: covered by its change, so neither waits for it.
        drop((copying_host_mounts(), changing_host_mounts()));
        let (tx, rx) = mpsc::channel();
        let copier = std::thread::spawn(move || {
            let _copy = copying_host_mounts();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "a copy began during a change");
        drop(change);
        rx.recv_timeout(Duration::from_secs(10)).expect("the copy begins once the change is over");
        copier.join().unwrap();
    }

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
