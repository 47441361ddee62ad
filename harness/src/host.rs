//! The host's half of "host, check now": answers to the probe's questions, made while the probe
//! waits, and the undoing of whatever the host did for them.
//!
//! The domainname is host-wide state that several concurrent cases may touch (every case with a
//! shared uts namespace and no user namespace really sets the host's domainname), so it is guarded
//! by one process-wide lock, held from [`HostQuestion::LockDomainname`] until the host has looked
//! and restored its own value. Dropping a [`HostSide`] restores and unlocks in every outcome.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use isoprobe_probes::sys::{self, SysvKind};
use isoprobe_probes::wire::{ClockKind, HostAnswer, HostQuestion, IpcSeen};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::case_env::{CaseEnv, ProbeNames, dirs};
use crate::hostlock::{HostLock, HostLockError};
use crate::mounts::is_mount_point;
use crate::run_env::RunEnv;

const DOMAINNAME: &str = "/proc/sys/kernel/domainname";
/// Serialises the cases of this process.
static DOMAIN_LOCK: Mutex<()> = Mutex::new(());
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
struct DomainGuard {
    _lock: MutexGuard<'static, ()>,
    _host_lock: HostLock,
    original: String,
    /// [`DOMAINNAME_RECORD`] in the run directory, removed once the original is back.
    record: PathBuf,
}

impl DomainGuard {
    /// Puts the original domainname back if it changed; returns what the host saw before.
    fn restore(&self) -> Result<String, String> {
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

/// Answers one probe's questions.
#[derive(Debug)]
pub struct HostSide<'a> {
    run: &'a RunEnv,
    case: &'a CaseEnv,
    names: &'a ProbeNames,
    deadline: Instant,
    domain: Option<DomainGuard>,
    sentinel_mounted: bool,
}

impl<'a> HostSide<'a> {
    pub fn new(run: &'a RunEnv, case: &'a CaseEnv, names: &'a ProbeNames, deadline: Instant) -> Self {
        HostSide { run, case, names, deadline, domain: None, sentinel_mounted: false }
    }

    pub fn answer(&mut self, q: &HostQuestion) -> HostAnswer {
        let r = match q {
            HostQuestion::LockDomainname => self.lock_domainname(),
            HostQuestion::CheckDomainname { token } => self.check_domainname(token),
            HostQuestion::MountSentinel => self.mount_sentinel(),
            HostQuestion::UnmountSentinel => self.unmount_sentinel(),
            HostQuestion::OwnMountVisible => is_mount_point(&self.case.host_path(dirs::OWN_MOUNT))
                .map(|seen| HostAnswer::Seen { seen })
                .map_err(|e| e.to_string()),
            HostQuestion::OwnIpcVisible => Ok(self.own_ipc_visible()),
            HostQuestion::ScratchFileOwner { name } => self.scratch_owner(name),
            HostQuestion::Clock { clock } => self.clock(*clock),
            HostQuestion::Limit { ask } => crate::limits::host::answer(self.case.limits.as_ref(), ask),
        };
        r.unwrap_or_else(|error| HostAnswer::Failed { error })
    }

    fn lock_domainname(&mut self) -> Result<HostAnswer, String> {
        if self.domain.is_some() {
            return Err("the domainname lock is already held by this probe".into());
        }
        let timed_out = || "timed out waiting for the domainname lock".to_owned();
        let lock = loop {
            match DOMAIN_LOCK.try_lock() {
                Ok(g) => break g,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) if Instant::now() < self.deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(TryLockError::WouldBlock) => return Err(timed_out()),
            }
        };
        let host_lock = HostLock::take(DOMAIN_LOCK_NAME, self.deadline).map_err(|e| match e {
            HostLockError::TimedOut { .. } => timed_out(),
            e => e.to_string(),
        })?;
        let original = read_domainname()?;
        // Recorded before the probe may change it, for `isoprobe cleanup` should this run be
        // killed before it restores it.
        let record = self.run.dir.join(DOMAINNAME_RECORD);
        fs::write(&record, &original)
            .map_err(|e| format!("failed to record the domainname in {}: {e}", record.display()))?;
        self.domain = Some(DomainGuard { _lock: lock, _host_lock: host_lock, original, record });
        Ok(HostAnswer::Ack)
    }

    fn check_domainname(&mut self, token: &str) -> Result<HostAnswer, String> {
        if token != self.names.domainname_token {
            return Err(format!("the probe asked about {token:?}, not the token it was given"));
        }
        let guard = self.domain.take().ok_or("check without holding the domainname lock")?;
        let seen = guard.restore()? == token;
        drop(guard);
        Ok(HostAnswer::Seen { seen })
    }

    fn mount_sentinel(&mut self) -> Result<HostAnswer, String> {
        if !self.run.runner.is_root() {
            return Ok(HostAnswer::Unavailable {
                reason: "mounting the sentinel tmpfs on the host takes CAP_SYS_ADMIN there (running unprivileged)"
                    .into(),
            });
        }
        let target = self.case.host_path(dirs::SENTINEL_MOUNT);
        mount(Some("isoprobe-sentinel"), &target, Some("tmpfs"), MsFlags::empty(), Some("size=64k,mode=0755"))
            .map_err(|e| format!("failed to mount the sentinel tmpfs on {}: {e}", target.display()))?;
        self.sentinel_mounted = true;
        fs::write(target.join("marker"), &self.run.marker_token)
            .map_err(|e| format!("failed to write the sentinel marker: {e}"))?;
        Ok(HostAnswer::Ack)
    }

    fn unmount_sentinel(&mut self) -> Result<HostAnswer, String> {
        if self.sentinel_mounted {
            let target = self.case.host_path(dirs::SENTINEL_MOUNT);
            // The control: the mount was there all the while the probe looked (it asks this
            // after looking), so not seeing it means it did not propagate.
            if !is_mount_point(&target).map_err(|e| e.to_string())? {
                self.sentinel_mounted = false;
                return Err(format!("the sentinel mount on {} was gone when the probe had looked", target.display()));
            }
            umount2(&target, MntFlags::MNT_DETACH)
                .map_err(|e| format!("failed to unmount {}: {e}", target.display()))?;
            self.sentinel_mounted = false;
        }
        Ok(HostAnswer::Ack)
    }

    fn own_ipc_visible(&self) -> HostAnswer {
        let n = &self.names.own_ipc;
        let seen = |r: nix::Result<i32>| sys::lookup(r).visible() == Some(true);
        HostAnswer::Ipc {
            seen: IpcSeen {
                shm: seen(sys::sysv_get(SysvKind::Shm, n.shm_key)),
                sem: seen(sys::sysv_get(SysvKind::Sem, n.sem_key)),
                msg: seen(sys::sysv_get(SysvKind::Msg, n.msg_key)),
                mq: sys::lookup(sys::mq_lookup(&n.mq_name)).visible() == Some(true),
            },
        }
    }

    fn scratch_owner(&self, name: &str) -> Result<HostAnswer, String> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("refusing to stat {name:?}: not a plain file name"));
        }
        let path = self.case.host_path(dirs::SCRATCH).join(name);
        let md = fs::symlink_metadata(&path).map_err(|e| format!("failed to stat {}: {e}", path.display()))?;
        Ok(HostAnswer::Owner { uid: md.uid(), gid: md.gid() })
    }

    fn clock(&self, clock: ClockKind) -> Result<HostAnswer, String> {
        let id = match clock {
            ClockKind::Monotonic => libc::CLOCK_MONOTONIC,
            ClockKind::Boottime => libc::CLOCK_BOOTTIME,
        };
        sys::clock_gettime_vdso(id).map(|ns| HostAnswer::ClockNs { ns }).map_err(|e| format!("clock_gettime: {e}"))
    }
}

impl Drop for HostSide<'_> {
    fn drop(&mut self) {
        // The domain guard restores on its own drop.
        if self.sentinel_mounted {
            let _ = self.unmount_sentinel();
        }
    }
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
