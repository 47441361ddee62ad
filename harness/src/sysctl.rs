//! The host's namespaced sysctls (the entries `isoprobe_probes::sysctl::TABLE` gives a namespace
//! kind): the lock every isoprobe process takes while a probe writes them in namespaces of its
//! own, the record of the host's values in the run directory (what `isoprobe cleanup` puts back
//! after a run killed in between), the restore of every value that changed meanwhile (a leak: the
//! kernel let a write in a namespace land on the host), and the host's values for the snapshot.
//!
//! A probe never writes the host's entries: it writes its own namespace's, and a leak is the only
//! way the host's change. The harness writes one only to put its recorded value back.
//!
//! What this module must never do: write an entry the table does not give a namespace kind, a
//! value other than the recorded original, or restore over a value someone else set since
//! (anything but one of the values the probe said it might write).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::sysctl::{self, normalize};
use isoprobe_probes::wire::SysctlPlan;
use serde::{Deserialize, Serialize};

use crate::domainname::{self, DomainGuard};
use crate::hostlock::{HostLock, take_both};
use crate::requirement::KernelRelease;

const PROC_SYS: &str = "/proc/sys";
/// Serialises the cases of this process.
static SYSCTL_LOCK: Mutex<()> = Mutex::new(());
/// Serialises isoprobe processes (see [`HostLock`]).
const SYSCTL_LOCK_NAME: &str = "isoprobe-sysctl-lock";

/// The file in a run directory that holds the host's values of the entries a probe is writing in
/// its own namespaces, with the values it may write: what `isoprobe cleanup` puts back.
pub const SYSCTL_RECORD: &str = "sysctl.orig";

/// One entry of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recorded {
    path: String,
    /// As read, without the trailing newline.
    original: String,
    /// What the probe may write: a value other than these and the original is someone else's.
    candidates: Vec<String>,
}

/// An entry under the lock.
#[derive(Debug)]
struct Locked {
    path: String,
    /// The host's value as read at the lock, without the trailing newline; `None`: no such entry
    /// on the host (or unreadable), nothing to restore.
    original: Option<String>,
    volatile: bool,
}

/// The held sysctl lock (and, when uts entries are among them, the domainname lock) and the
/// host's values to restore. Dropping it restores every changed entry and unlocks.
#[derive(Debug)]
pub struct SysctlGuard {
    entries: Vec<Locked>,
    record: PathBuf,
    root: PathBuf,
    _host_lock: HostLock,
    _lock: MutexGuard<'static, ()>,
    /// Dropped last: the domainname lock is taken first.
    _domain: Option<DomainGuard>,
}

impl SysctlGuard {
    /// Checks that every entry is one a namespace kind owns on this kernel, takes the locks,
    /// reads the host's values and records them in `run_dir` with the candidates (before the
    /// probe may write anything). Returns the guard and the host's values, normalised.
    pub fn lock(
        run_dir: &Path,
        plan: &[SysctlPlan],
        deadline: Instant,
    ) -> Result<(SysctlGuard, Vec<Option<String>>), String> {
        let kernel = KernelRelease::running().version;
        let mut uts = false;
        let mut entries = Vec::new();
        for p in plan {
            let owner = sysctl::owner(&p.path, kernel).filter(|_| sysctl::plain_path(&p.path)).ok_or_else(|| {
                format!("refusing /proc/sys/{:?}: not an entry a namespace kind owns on this kernel", p.path)
            })?;
            uts |= owner.kind == NsKind::Uts;
            entries.push(Locked { path: p.path.clone(), original: None, volatile: owner.volatile });
        }
        // The domainname lock first (what the domainname check takes alone), then this one.
        let domain = if uts { Some(domainname::lock(run_dir, deadline)?) } else { None };
        let (lock, host_lock) = take_both(&SYSCTL_LOCK, SYSCTL_LOCK_NAME, deadline, "sysctl")?;
        let root = PathBuf::from(PROC_SYS);
        for e in &mut entries {
            e.original = read_raw(&root, &e.path).ok();
        }
        let recorded: Vec<Recorded> = entries
            .iter()
            .zip(plan)
            .filter(|(e, _)| !e.volatile)
            .filter_map(|(e, p)| {
                let original = e.original.clone()?;
                Some(Recorded { path: e.path.clone(), original, candidates: p.candidates.clone() })
            })
            .collect();
        let record = run_dir.join(SYSCTL_RECORD);
        let text = serde_json::to_string(&recorded).map_err(|e| format!("failed to encode the sysctl record: {e}"))?;
        fs::write(&record, text).map_err(|e| format!("failed to record the sysctls in {}: {e}", record.display()))?;
        let values = entries.iter().map(|e| e.original.as_deref().map(normalize)).collect();
        let guard = SysctlGuard { entries, record, root, _host_lock: host_lock, _lock: lock, _domain: domain };
        Ok((guard, values))
    }

    /// The host's values of `paths` now (normalised), before anything is restored; then every
    /// locked entry that changed is restored (one written may change another) and the locks are
    /// released. Also the entries that could not be put back (`path: error`; they stay recorded
    /// for the recovery, and the snapshot shows them).
    pub fn check(mut self, paths: &[String]) -> Result<(Vec<Option<String>>, Vec<String>), String> {
        if let Some(p) = paths.iter().find(|p| !self.entries.iter().any(|e| e.path == **p)) {
            return Err(format!("the probe checks /proc/sys/{p}, which it did not lock"));
        }
        let now: Vec<Option<String>> = self.entries.iter().map(|e| read_raw(&self.root, &e.path).ok()).collect();
        let failed = self.restore_changed(&now);
        for f in &failed {
            eprintln!("isoprobe: a sysctl leaked to the host and could not be put back: {f}");
        }
        let at = |p: &String| self.entries.iter().position(|e| e.path == *p);
        let values = paths.iter().map(|p| at(p).and_then(|i| now[i].as_deref().map(normalize))).collect();
        Ok((values, failed))
    }

    /// Puts back every entry whose host value (`now`, in the entries' order) differs from the
    /// recorded one; `path: error` of those that could not be. The record is removed once nothing
    /// is left to put back.
    fn restore_changed(&mut self, now: &[Option<String>]) -> Vec<String> {
        let mut failed = Vec::new();
        for (e, now) in self.entries.iter().zip(now) {
            let (Some(original), Some(now)) = (&e.original, now) else { continue };
            if e.volatile || normalize(now) == normalize(original) {
                continue;
            }
            if let Err(err) = restore_one(&self.root, &e.path, original) {
                failed.push(format!("{}: {err}", e.path));
            }
        }
        if failed.is_empty() {
            let _ = fs::remove_file(&self.record);
        }
        failed
    }
}

impl Drop for SysctlGuard {
    /// Restores whatever changed (a probe that never checked: it died, or broke the protocol).
    fn drop(&mut self) {
        if !self.record.exists() {
            return; // checked, and nothing was left to put back
        }
        let now: Vec<Option<String>> = self.entries.iter().map(|e| read_raw(&self.root, &e.path).ok()).collect();
        for e in self.restore_changed(&now) {
            eprintln!("isoprobe: {e}");
        }
    }
}

/// Writes `original` back to `path` if the host's value differs from it, and checks that it took.
fn restore_one(root: &Path, path: &str, original: &str) -> Result<(), String> {
    let now = read_raw(root, path).map_err(|e| format!("failed to read /proc/sys/{path}: {e}"))?;
    if normalize(&now) == normalize(original) {
        return Ok(());
    }
    let file = root.join(path);
    fs::write(&file, format!("{original}\n")).map_err(|e| {
        format!("failed to restore /proc/sys/{path} to {original:?} (it is {:?}): {e}", normalize(&now))
    })?;
    match read_raw(root, path) {
        Ok(v) if normalize(&v) == normalize(original) => Ok(()),
        Ok(v) => Err(format!("restoring /proc/sys/{path} to {original:?} left it at {:?}", normalize(&v))),
        Err(e) => Err(format!("failed to read /proc/sys/{path} after restoring it: {e}")),
    }
}

/// The value of `path` under `root`, without the trailing newline: one open and one read (a
/// sysctl gives its whole value in one read that fits), as a probe writes many.
fn read_raw(root: &Path, path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = fs::File::open(root.join(path))?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        match f.read(&mut buf[len..])? {
            0 => break,
            n if len + n < buf.len() => {
                len += n;
                break;
            }
            n => {
                len += n;
                buf.resize(buf.len() * 2, 0);
            }
        }
    }
    buf.truncate(len);
    Ok(String::from_utf8_lossy(&buf).trim_end_matches('\n').to_owned())
}

/// What [`restore_recorded_sysctls`] did with one recorded entry that is not at its original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedSysctl {
    /// It held a value the dead run's probe might have written, and is the original again (or
    /// would be, in a dry run).
    Restored { path: String, from: String, to: String },
    /// It holds neither the original nor a value the probe might have written: someone else set
    /// it since; left alone.
    NotOurs { path: String, now: String, original: String },
}

/// Puts back the host's sysctls a dead run recorded in `run_dir` that show a value its probe may
/// have written (a leak the run did not live to restore). Holds the host-wide sysctl lock
/// meanwhile; the record is removed unless `dry_run`.
pub fn restore_recorded_sysctls(run_dir: &Path, dry_run: bool) -> Result<Vec<RecordedSysctl>, String> {
    restore_recorded_sysctls_in(run_dir, Path::new(PROC_SYS), dry_run)
}

fn restore_recorded_sysctls_in(run_dir: &Path, root: &Path, dry_run: bool) -> Result<Vec<RecordedSysctl>, String> {
    let record = run_dir.join(SYSCTL_RECORD);
    let text = match fs::read_to_string(&record) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("failed to read {}: {e}", record.display())),
    };
    let entries: Vec<Recorded> =
        serde_json::from_str(&text).map_err(|e| format!("failed to parse {}: {e}", record.display()))?;
    let kernel = KernelRelease::running().version;
    let _lock =
        HostLock::take(SYSCTL_LOCK_NAME, Instant::now() + Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for e in entries {
        // Only what the table gives a kind: a tampered record names nothing else.
        if !sysctl::plain_path(&e.path) || (root == Path::new(PROC_SYS) && sysctl::owner(&e.path, kernel).is_none()) {
            continue;
        }
        let Ok(now) = read_raw(root, &e.path) else { continue };
        let (now, original) = (normalize(&now), normalize(&e.original));
        if now == original {
            continue;
        }
        if e.candidates.iter().any(|c| normalize(c) == now) {
            if !dry_run {
                restore_one(root, &e.path, &e.original)?;
            }
            out.push(RecordedSysctl::Restored { path: e.path, from: now, to: original });
        } else {
            out.push(RecordedSysctl::NotOurs { path: e.path, now, original });
        }
    }
    if !dry_run {
        fs::remove_file(&record).map_err(|e| format!("failed to remove {}: {e}", record.display()))?;
    }
    Ok(out)
}

/// `path = value` for every entry a namespace kind owns on the host (on this kernel) that a probe
/// may write: with a write bit in its mode, not volatile, and not a uts entry (the snapshot has
/// the hostname and domainname of its own). An unreadable one shows its error.
pub fn host_values() -> BTreeSet<String> {
    let kernel = KernelRelease::running().version;
    let sys = match nix::fcntl::open(
        PROC_SYS,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return BTreeSet::from([format!("<{PROC_SYS} unreadable: {e}>")]),
    };
    let root = Path::new(PROC_SYS);
    let mut out = BTreeSet::new();
    for kind in sysctl::KINDS.into_iter().filter(|k| *k != NsKind::Uts) {
        match sysctl::owned_by(&sys, kind, kernel) {
            Ok(found) => {
                for f in found {
                    if !f.writable_mode || sysctl::owner(&f.path, kernel).is_none_or(|o| o.volatile) {
                        continue;
                    }
                    out.insert(match read_raw(root, &f.path) {
                        Ok(v) => format!("{} = {}", f.path, normalize(&v)),
                        Err(e) => format!("{} <unreadable: {}>", f.path, e.kind()),
                    });
                }
            }
            Err(e) => {
                out.insert(format!("<the {kind} sysctls could not be listed: {e}>"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("isoprobe-test-sysctl-{tag}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// A fake /proc/sys in a directory: a dead run's record puts back only values its probe may
    /// have written.
    #[test]
    fn a_dead_runs_record_puts_back_only_its_own_values() {
        let dir = temp_dir("record");
        let root = dir.join("sys");
        fs::create_dir_all(root.join("net/core")).unwrap();
        let record = |entries: &[(&str, &str, &[&str])]| {
            let r: Vec<Recorded> = entries
                .iter()
                .map(|(p, o, c)| Recorded {
                    path: p.to_string(),
                    original: o.to_string(),
                    candidates: c.iter().map(|s| s.to_string()).collect(),
                })
                .collect();
            fs::write(dir.join(SYSCTL_RECORD), serde_json::to_string(&r).unwrap()).unwrap();
        };
        let set = |p: &str, v: &str| fs::write(root.join(p), format!("{v}\n")).unwrap();
        let get = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        set("net/core/somaxconn", "4097");
        set("net/core/other", "7");
        set("net/core/same", "1\t2");
        record(&[
            ("net/core/somaxconn", "4096", &["4097", "4095"]),
            ("net/core/other", "5", &["6"]),
            ("net/core/same", "1 2", &["2 2"]),
        ]);
        // A dry run says what it would do and changes nothing.
        let found = restore_recorded_sysctls_in(&dir, &root, true).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(get("net/core/somaxconn"), "4097\n");
        let found = restore_recorded_sysctls_in(&dir, &root, false).unwrap();
        assert_eq!(
            found,
            vec![
                RecordedSysctl::Restored { path: "net/core/somaxconn".into(), from: "4097".into(), to: "4096".into() },
                RecordedSysctl::NotOurs { path: "net/core/other".into(), now: "7".into(), original: "5".into() },
            ]
        );
        assert_eq!(get("net/core/somaxconn"), "4096\n");
        assert_eq!(get("net/core/other"), "7\n", "not ours: left alone");
        assert!(!dir.join(SYSCTL_RECORD).exists(), "the record is removed once used");
        assert_eq!(restore_recorded_sysctls_in(&dir, &root, false).unwrap(), vec![]);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A leak: the host's value changed while the guard was held. The check reports the changed
    /// value, puts the original back at once, and removes the record; an entry that can no longer
    /// be read is not taken for a change (nothing is written over it).
    #[test]
    fn a_leaked_value_is_put_back_at_once() {
        static TEST_LOCK: Mutex<()> = Mutex::new(());
        let dir = temp_dir("leak");
        let root = dir.join("sys");
        fs::create_dir_all(root.join("net/core")).unwrap();
        let set = |p: &str, v: &str| fs::write(root.join(p), format!("{v}\n")).unwrap();
        set("net/core/somaxconn", "4096");
        set("net/core/other", "1");
        let guard = |name: &str| {
            let (lock, host_lock) =
                take_both(&TEST_LOCK, name, Instant::now() + Duration::from_secs(5), "test").unwrap();
            let record = dir.join(SYSCTL_RECORD);
            fs::write(&record, "[]").unwrap();
            let entry = |p: &str, v: &str| Locked { path: p.into(), original: Some(v.into()), volatile: false };
            SysctlGuard {
                entries: vec![entry("net/core/somaxconn", "4096"), entry("net/core/other", "1")],
                record,
                root: root.clone(),
                _host_lock: host_lock,
                _lock: lock,
                _domain: None,
            }
        };
        let name = format!("isoprobe-test-sysctl-{}", std::process::id());
        let g = guard(&name);
        set("net/core/somaxconn", "4097"); // the leak
        let (now, unrestored) = g.check(&["net/core/somaxconn".to_owned()]).unwrap();
        assert_eq!(now, vec![Some("4097".to_owned())], "the host's value as the leak left it");
        assert!(unrestored.is_empty(), "{unrestored:?}");
        assert_eq!(fs::read_to_string(root.join("net/core/somaxconn")).unwrap(), "4096\n", "put back");
        assert!(!dir.join(SYSCTL_RECORD).exists(), "nothing left to recover");
        // An entry that can no longer be read (a directory where it was): left alone.
        let g = guard(&name);
        fs::remove_file(root.join("net/core/other")).unwrap();
        fs::create_dir(root.join("net/core/other")).unwrap();
        let (_, unrestored) = g.check(&[]).unwrap();
        assert!(unrestored.is_empty(), "an unreadable entry is not a change: {unrestored:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_table_entries_are_locked() {
        let dir = temp_dir("lock");
        let plan = |path: &str| vec![SysctlPlan { path: path.into(), candidates: vec!["1".into()] }];
        let deadline = Instant::now() + Duration::from_secs(5);
        for bad in ["kernel/threads-max", "net/../kernel/threads-max", "/etc/passwd"] {
            let err = SysctlGuard::lock(&dir, &plan(bad), deadline).unwrap_err();
            assert!(err.contains("refusing"), "{bad}: {err}");
        }
        assert!(!dir.join(SYSCTL_RECORD).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The host's values for the snapshot: the table's entries that a probe may write, read twice
    /// the same.
    #[test]
    fn the_host_values_are_stable_and_leave_out_the_volatile() {
        let a = host_values();
        assert!(a.iter().all(|l| !l.starts_with("kernel/ns_last_pid")), "{a:?}");
        assert!(a.iter().any(|l| l.starts_with("kernel/shmmax = ")), "{a:?}");
        assert_eq!(a, host_values());
    }
}
