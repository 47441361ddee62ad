//! The host's NIS domainname, the one piece of host-wide state a probe changes on purpose (in the
//! cases that share the host's uts namespace without a user namespace): the lock every isoprobe
//! process takes around such a change, the record of the original value in the run directory (so
//! that a run killed in between can be put right), and putting a dead run's record back.
//!
//! What this module must never do: write a domainname that is neither the recorded original nor
//! left alone, or restore over a name someone else set since (anything but an isoprobe token).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::hostlock::{BothLocks, HostLock, LocalLock, take_both};

const DOMAINNAME: &str = "/proc/sys/kernel/domainname";
/// Serialises the cases of this process.
static DOMAIN_LOCK: LocalLock = LocalLock::new();
/// Serialises isoprobe processes: an abstract unix socket can be bound by one socket at a time,
/// and the kernel releases it when its holder dies, so a killed run never leaves the lock held
/// (and no file is left behind). Abstract names belong to the network namespace, which every
/// harness on a host shares.
const DOMAIN_LOCK_NAME: &str = "isoprobe-domainname-lock";

/// The file in a run directory that holds the host's NIS domainname while a case of the run may
/// have changed it: what `isoprobe cleanup` puts back after the run was killed in between.
pub const DOMAINNAME_RECORD: &str = "domainname.orig";

/// The held domainname lock and the value to restore.
#[derive(Debug)]
pub struct DomainGuard {
    _locks: BothLocks,
    original: String,
    /// [`DOMAINNAME_RECORD`] in the run directory, removed once the original is back.
    record: PathBuf,
}

impl DomainGuard {
    /// Puts the original domainname back if it changed; returns what the host saw before.
    pub fn restore(&self) -> Result<String, String> {
        let now = read_domainname()?;
        if now != self.original {
            fs::write(DOMAINNAME, &self.original)
                .map_err(|e| format!("failed to restore the domainname {:?} (it is {now:?}): {e}", self.original))?;
        }
        let _ = fs::remove_file(&self.record);
        Ok(now)
    }
}

/// What [`restore_recorded_domainname`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedDomainname {
    /// The run recorded nothing: it was not between setting and restoring the domainname.
    NoRecord,
    /// The domainname is the recorded original.
    Unchanged,
    /// It was an isoprobe token and is the original again (or would be, in a dry run).
    Restored { from: String, to: String },
    /// It is neither the original nor an isoprobe token: someone else set it since; left alone.
    NotOurs { now: String, original: String },
}

/// Puts back the domainname a dead run recorded in `run_dir`, if the host still shows an isoprobe
/// token (`isoprobe-…`, what a case sets). Holds the host-wide domainname lock meanwhile, so a
/// live run's case is never changed under it; the record is removed unless `dry_run`.
pub fn restore_recorded_domainname(run_dir: &Path, dry_run: bool) -> Result<RecordedDomainname, String> {
    restore_recorded_domainname_in(run_dir, Path::new(DOMAINNAME), dry_run)
}

fn restore_recorded_domainname_in(run_dir: &Path, file: &Path, dry_run: bool) -> Result<RecordedDomainname, String> {
    let record = run_dir.join(DOMAINNAME_RECORD);
    let original = match fs::read_to_string(&record) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RecordedDomainname::NoRecord),
        Err(e) => return Err(format!("failed to read {}: {e}", record.display())),
    };
    let _lock =
        HostLock::take(DOMAIN_LOCK_NAME, Instant::now() + Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let read = |f: &Path| {
        fs::read_to_string(f)
            .map(|s| s.trim_end_matches('\n').to_owned())
            .map_err(|e| format!("failed to read {}: {e}", f.display()))
    };
    let now = read(file)?;
    let found = if now == original {
        RecordedDomainname::Unchanged
    } else if now.starts_with(&format!("{}-", crate::names::PREFIX)) {
        if !dry_run {
            fs::write(file, &original).map_err(|e| format!("failed to write {}: {e}", file.display()))?;
        }
        RecordedDomainname::Restored { from: now, to: original }
    } else {
        RecordedDomainname::NotOurs { now, original }
    };
    if !dry_run {
        fs::remove_file(&record).map_err(|e| format!("failed to remove {}: {e}", record.display()))?;
    }
    Ok(found)
}

impl Drop for DomainGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("isoprobe: {e}");
        }
    }
}

fn read_domainname() -> Result<String, String> {
    fs::read_to_string(DOMAINNAME)
        .map(|s| s.trim_end_matches('\n').to_owned())
        .map_err(|e| format!("failed to read {DOMAINNAME}: {e}"))
}

/// Takes the domainname lock (this process's cases, then every isoprobe process's), reads the
/// original and records it in `run_dir` before anyone may change it; the guard restores it.
pub fn lock(run_dir: &Path, deadline: Instant) -> Result<DomainGuard, String> {
    let locks = take_both(&DOMAIN_LOCK, DOMAIN_LOCK_NAME, deadline, "domainname")?;
    let original = read_domainname()?;
    // Recorded before the probe may change it, for the recovery should this run be killed
    // before it restores it.
    let record = run_dir.join(DOMAINNAME_RECORD);
    fs::write(&record, &original)
        .map_err(|e| format!("failed to record the domainname in {}: {e}", record.display()))?;
    Ok(DomainGuard { _locks: locks, original, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("isoprobe-test-domainname-{tag}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_dead_runs_record_puts_back_only_an_isoprobe_token() {
        let dir = temp_dir("logic");
        let file = dir.join("domainname");
        let record = dir.join(DOMAINNAME_RECORD);
        let run = |now: &str, dry_run: bool| {
            fs::write(&file, format!("{now}\n")).unwrap();
            fs::write(&record, "corp.example").unwrap();
            restore_recorded_domainname_in(&dir, &file, dry_run).unwrap()
        };
        assert_eq!(
            run("isoprobe-0123456789ab", false),
            RecordedDomainname::Restored { from: "isoprobe-0123456789ab".into(), to: "corp.example".into() }
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "corp.example");
        assert!(!record.exists(), "the record is removed once used");
        assert_eq!(run("corp.example", false), RecordedDomainname::Unchanged);
        assert_eq!(
            run("someone.else", false),
            RecordedDomainname::NotOurs { now: "someone.else".into(), original: "corp.example".into() }
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "someone.else\n", "not ours: left alone");
        // A dry run says what it would do and changes nothing.
        assert!(matches!(run("isoprobe-0123456789ab", true), RecordedDomainname::Restored { .. }));
        assert_eq!(fs::read_to_string(&file).unwrap(), "isoprobe-0123456789ab\n");
        assert!(record.exists());
        fs::remove_file(&record).unwrap();
        assert_eq!(restore_recorded_domainname_in(&dir, &file, false).unwrap(), RecordedDomainname::NoRecord);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The real file, in a uts namespace of a thread of its own (the host's domainname is never
    /// touched): a token left by a killed run is replaced by the recorded original.
    #[test]
    fn the_recorded_domainname_comes_back_in_a_real_uts_namespace() {
        let dir = temp_dir("real");
        let d = dir.clone();
        let outcome = std::thread::spawn(move || -> Result<Option<(String, String)>, String> {
            match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) => return Ok(None),
                Err(e) => return Err(format!("unshare(CLONE_NEWUTS): {e}")),
            }
            let original = read_domainname()?;
            fs::write(d.join(DOMAINNAME_RECORD), &original).map_err(|e| e.to_string())?;
            fs::write(DOMAINNAME, "isoprobe-0123456789ab").map_err(|e| e.to_string())?;
            let found = restore_recorded_domainname(&d, false)?;
            assert!(matches!(found, RecordedDomainname::Restored { .. }), "{found:?}");
            Ok(Some((original, read_domainname()?)))
        })
        .join()
        .unwrap();
        fs::remove_dir_all(&dir).unwrap();
        match outcome.unwrap() {
            Some((original, now)) => assert_eq!(now, original),
            None => eprintln!("skipped: creating a uts namespace needs CAP_SYS_ADMIN (not root)"),
        }
    }
}
