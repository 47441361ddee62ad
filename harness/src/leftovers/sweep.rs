//! The sweep: what dead runs left, found and removed (or, in a dry run, listed), event by event.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use isoprobe_probes::sys::{SysvKind, mq_remove, sysv_remove, sysv_remove_key};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::ipc::{isoprobe_mqueues, isoprobe_sysv_objects};
use super::ledger::{LEDGER, LedgerEntry};
use super::owners::{OwnedDir, Owner, cgroup_owner, owned_dirs, pid_alive_since, process_start_epoch};
use crate::cgroup::remove::{isoprobe_cgroups, remove_tree, thaw};
use crate::domainname::{RecordedDomainname, restore_recorded_domainname};
use crate::error::HarnessError;
use crate::mounts::{mounts, unmount_all_under};
use crate::names::{PREFIX, is_isoprobe_key};
use crate::sysctl::{RecordedSysctl, restore_recorded_sysctls};

/// A cgroup no visible run owns is left alone this long after its creation: a run this sweep
/// cannot see may be about to start a case's processes in it.
const UNKNOWN_CGROUP_GRACE_SECS: i64 = 5;

/// How long the removal of a dead run's cgroup waits for the kernel to let go of its tasks.
const CGROUP_DRAIN: Duration = Duration::from_secs(2);

/// What a sweep may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only what a dead run provably owns (by its directory, token, pid or ledger).
    DeadRuns,
    /// Also what no visible run owns (`isoprobe cleanup`).
    All,
}

/// Settings of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub scope: Scope,
    /// Only say what would be removed.
    pub dry_run: bool,
}

/// The kinds of leftovers, for counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    RunDir,
    Mount,
    LoopDevice,
    Cgroup,
    Sysv,
    Mqueue,
    Domainname,
    Sysctl,
}

impl Kind {
    fn noun(self, n: usize) -> &'static str {
        let one = n == 1;
        match self {
            Kind::RunDir if one => "run directory",
            Kind::RunDir => "run directories",
            Kind::Mount if one => "mount",
            Kind::Mount => "mounts",
            Kind::LoopDevice if one => "loop device",
            Kind::LoopDevice => "loop devices",
            Kind::Cgroup if one => "cgroup",
            Kind::Cgroup => "cgroups",
            Kind::Sysv if one => "SysV IPC object",
            Kind::Sysv => "SysV IPC objects",
            Kind::Mqueue if one => "message queue",
            Kind::Mqueue => "message queues",
            Kind::Domainname => "NIS domainname",
            Kind::Sysctl if one => "sysctl",
            Kind::Sysctl => "sysctls",
        }
    }
}

/// What happened to one leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Removed,
    WouldRemove,
    Kept { why: String },
    Failed { error: String },
}

/// One leftover and what the sweep did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub what: String,
    pub outcome: Outcome,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Removed => write!(f, "removed {}", self.what),
            Outcome::WouldRemove => write!(f, "would remove {}", self.what),
            Outcome::Kept { why } => write!(f, "kept {}: {why}", self.what),
            Outcome::Failed { error } => write!(f, "failed to remove {}: {error}", self.what),
        }
    }
}

/// The counts of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Removed (or, in a dry run, to be removed), by kind.
    pub removed: BTreeMap<Kind, usize>,
    pub kept: usize,
    pub failed: usize,
    /// Dead runs (and benches) whose leftovers were found.
    pub dead_runs: usize,
}

impl Summary {
    pub fn removed_total(&self) -> usize {
        self.removed.values().sum()
    }

    /// "2 run directories, 5 mounts, 12 cgroups", or "nothing".
    pub fn removed_text(&self) -> String {
        if self.removed.is_empty() {
            return "nothing".into();
        }
        let parts: Vec<String> = self.removed.iter().map(|(k, n)| format!("{n} {}", k.noun(*n))).collect();
        parts.join(", ")
    }
}

/// Events as they happen, and the summary.
struct Tally<'a> {
    dry_run: bool,
    sink: &'a mut dyn FnMut(&Event),
    summary: Summary,
}

impl Tally<'_> {
    fn event(&mut self, kind: Kind, what: String, outcome: Outcome) {
        match &outcome {
            Outcome::Removed | Outcome::WouldRemove => *self.summary.removed.entry(kind).or_default() += 1,
            Outcome::Kept { .. } => self.summary.kept += 1,
            Outcome::Failed { .. } => self.summary.failed += 1,
        }
        (self.sink)(&Event { kind, what, outcome });
    }
    fn removed(&mut self, kind: Kind, what: String) {
        let o = if self.dry_run { Outcome::WouldRemove } else { Outcome::Removed };
        self.event(kind, what, o);
    }
    fn kept(&mut self, kind: Kind, what: String, why: impl Into<String>) {
        self.event(kind, what, Outcome::Kept { why: why.into() });
    }
    fn failed(&mut self, kind: Kind, what: String, e: impl fmt::Display) {
        self.event(kind, what, Outcome::Failed { error: e.to_string() });
    }
    /// Removes with `f` unless this is a dry run.
    fn remove(&mut self, kind: Kind, what: String, f: impl FnOnce() -> Result<(), String>) {
        if self.dry_run {
            return self.removed(kind, what);
        }
        match f() {
            Ok(()) => self.removed(kind, what),
            Err(e) => self.failed(kind, what, e),
        }
    }
}

/// Removes what dead isoprobe runs and benches left, before this process creates anything, and
/// says so in one line (on stderr) when there was anything. `who` names the caller in that line.
/// Never fails the caller: what cannot be removed is counted in the line.
pub fn recover_at_start(who: &str) {
    let mut failures = Vec::new();
    let sweep = Sweep { scope: Scope::DeadRuns, dry_run: false };
    // A bug in the sweep (a broken promise it asserts) must not take the run down with it.
    let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sweep_with(sweep, &mut |e: &Event| {
            if let Outcome::Failed { .. } = e.outcome {
                failures.push(e.to_string());
            }
        })
    }));
    let swept = swept.unwrap_or_else(|_| Err(HarnessError::Internal("the recovery sweep panicked".into())));
    match swept {
        Ok(s) if s.removed_total() == 0 && s.failed == 0 => {}
        Ok(s) => {
            let failed = if s.failed == 0 { String::new() } else { format!("; {} could not be removed", s.failed) };
            eprintln!(
                "{who}: removed what {} dead isoprobe run{} left: {}{failed}",
                s.dead_runs,
                if s.dead_runs == 1 { "" } else { "s" },
                s.removed_text()
            );
            for f in failures.iter().take(5) {
                eprintln!("{who}:   {f}");
            }
        }
        Err(e) => eprintln!("{who}: could not look for what dead isoprobe runs left: {e}"),
    }
}

/// Finds leftovers and removes them (or, in a dry run, says what it would remove); `sink` sees
/// every event as it happens.
pub fn sweep_with(sweep: Sweep, sink: &mut dyn FnMut(&Event)) -> Result<Summary, HarnessError> {
    sweep_in(&std::env::temp_dir(), sweep, sink)
}

/// [`sweep_with`] for the run directories under `tmp`.
fn sweep_in(tmp: &Path, sweep: Sweep, sink: &mut dyn FnMut(&Event)) -> Result<Summary, HarnessError> {
    let euid = nix::unistd::geteuid();
    let mut dirs = owned_dirs(tmp)?;
    // An unprivileged user recovers their own runs only: another user's are not theirs to judge.
    if sweep.scope == Scope::DeadRuns && !euid.is_root() {
        dirs.retain(|d| d.uid == euid.as_raw());
    }
    let (live, dead): (Vec<&OwnedDir>, Vec<&OwnedDir>) = dirs.iter().partition(|d| pid_alive_since(d.pid(), d.ctime));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    // What no live run may own: made before the oldest live run started, and before this sweep
    // started (a run may start while it looks); one second of slack, ctimes are whole seconds.
    let bound = live.iter().filter_map(|r| process_start_epoch(r.pid())).chain([now]).min().unwrap_or(now) - 1;
    let live_tokens: Vec<&str> = live.iter().filter_map(|r| r.token()).collect();
    let mut t = Tally { dry_run: sweep.dry_run, sink, summary: Summary::default() };
    t.summary.dead_runs = dead.len();
    if sweep.scope == Scope::All {
        for r in &live {
            t.kept(
                Kind::RunDir,
                r.path.display().to_string(),
                format!("its process (pid {}) is still running", r.pid()),
            );
        }
    }

    let loops = isoprobe_loop_devices();
    for r in &dead {
        if r.token().is_some() {
            restore_domainname(r, &mut t);
            restore_sysctls(r, &mut t);
            remove_ledgered_ipc(r, &mut t);
        }
        for (dev, backing) in
            loops.iter().filter(|(_, b)| Path::new(b.trim_end_matches(" (deleted)")).starts_with(&r.path))
        {
            t.remove(Kind::LoopDevice, format!("loop device {dev} (backing file {backing})"), || detach_loop(dev));
        }
    }
    // Cgroups before directories: a limit case's loop device has its backing file in the case
    // directory, and the cgroups hold the processes.
    let layout = crate::cgroup::host_layout()?;
    let cgroups = isoprobe_cgroups(&layout.hierarchies, 4);
    let owner_of =
        |rel: &Path| cgroup_owner(&rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let ctime_of = |path: &Path| fs::metadata(path).map(|m| m.ctime()).unwrap_or(i64::MAX);
    let of_dead = |path: &Path, rel: &Path| match owner_of(rel) {
        Some(Owner::Run { token, .. }) => dead.iter().any(|d| d.token() == Some(&token)),
        Some(Owner::Bench { pid }) => !pid_alive_since(pid, ctime_of(path)),
        None => false,
    };
    // A run killed mid freezer case leaves its cgroup frozen, and frozen tasks (v1) do not die of
    // the SIGKILL their parent's death sent them: thaw every cgroup of a dead run first, on every
    // hierarchy, so that its processes can end before the removal below waits for them.
    if !t.dry_run {
        for (h, rel) in &cgroups {
            let path = h.mount_point.join(rel);
            if of_dead(&path, rel)
                && let Ok(fd) =
                    nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            {
                thaw(fd.as_fd());
            }
        }
    }
    // Tokens of dead runs a cgroup of which could not be removed: their directories stay, so the
    // next recovery still knows whose the cgroups are.
    let mut unfinished: Vec<String> = Vec::new();
    for (h, rel) in &cgroups {
        let path = h.mount_point.join(rel);
        let what = format!("cgroup {}", path.display());
        let keep = match owner_of(rel) {
            Some(Owner::Run { token, .. }) if live_tokens.contains(&token.as_str()) => Some("its run is still running"),
            _ if of_dead(&path, rel) => None,
            Some(Owner::Bench { .. }) => Some("its bench is still running"),
            _ if sweep.scope == Scope::DeadRuns => continue,
            _ if populated(&path) => Some("processes run in it and no dead run owns it"),
            _ if ctime_of(&path) >= bound - UNKNOWN_CGROUP_GRACE_SECS => {
                Some("created moments ago and no dead run owns it: a run may be setting it up")
            }
            _ => None,
        };
        match keep {
            Some(why) if sweep.scope == Scope::All => t.kept(Kind::Cgroup, what, why),
            Some(_) => {}
            None => {
                let failed_before = t.summary.failed;
                t.remove(Kind::Cgroup, what, || {
                    let problems = remove_tree(h, rel, CGROUP_DRAIN);
                    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
                });
                if t.summary.failed > failed_before
                    && let Some(Owner::Run { token, .. }) = owner_of(rel)
                {
                    unfinished.push(token);
                }
            }
        }
    }
    for r in &dead {
        if r.token().is_some_and(|tk| unfinished.iter().any(|u| u == tk)) {
            t.kept(
                Kind::RunDir,
                r.path.display().to_string(),
                "some of its cgroups could not be removed: kept as their owner's record, the next recovery tries again",
            );
            continue;
        }
        remove_dir(r, &mut t);
    }
    if sweep.scope == Scope::All {
        remove_unowned_ipc(bound, &dead, &mut t)?;
    }
    Ok(t.summary)
}

/// Puts back the NIS domainname a dead run recorded when it was killed between setting it (a
/// case with the host's uts namespace) and restoring it.
fn restore_domainname(r: &OwnedDir, t: &mut Tally<'_>) {
    let what = "the NIS domainname";
    match restore_recorded_domainname(&r.path, t.dry_run) {
        Ok(RecordedDomainname::NoRecord | RecordedDomainname::Unchanged) => {}
        Ok(RecordedDomainname::Restored { from, to }) => {
            t.removed(Kind::Domainname, format!("{what} {from:?} (set by run pid {}; back to {to:?})", r.pid()))
        }
        Ok(RecordedDomainname::NotOurs { now, original }) => t.kept(
            Kind::Domainname,
            format!("{what} {now:?}"),
            format!(
                "run pid {} recorded {original:?}, but the name is not an isoprobe token: set by someone else since",
                r.pid()
            ),
        ),
        Err(e) => t.failed(Kind::Domainname, what.into(), e),
    }
}

/// Puts back the host sysctls a dead run recorded when it was killed while a probe wrote the
/// entries in namespaces of its own, where one shows a value that probe may have written (a leak
/// not restored).
fn restore_sysctls(r: &OwnedDir, t: &mut Tally<'_>) {
    match restore_recorded_sysctls(&r.path, t.dry_run) {
        Ok(found) => {
            for f in found {
                match f {
                    RecordedSysctl::Restored { path, from, to } => t.removed(
                        Kind::Sysctl,
                        format!("sysctl {path} = {from:?} (written by run pid {}; back to {to:?})", r.pid()),
                    ),
                    RecordedSysctl::NotOurs { path, now, original } => t.kept(
                        Kind::Sysctl,
                        format!("sysctl {path} = {now:?}"),
                        format!(
                            "run pid {} recorded {original:?}, but the value is none its probe would write: set by \
                             someone else since",
                            r.pid()
                        ),
                    ),
                }
            }
        }
        Err(e) => t.failed(Kind::Sysctl, "the recorded sysctls".into(), e),
    }
}

/// Removes the IPC objects a dead run's ledger names (each entry was written before the object
/// was made, so an entry may name an object that never existed).
fn remove_ledgered_ipc(r: &OwnedDir, t: &mut Tally<'_>) {
    let path = r.path.join(LEDGER);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => return t.failed(Kind::Sysv, format!("the IPC objects listed in {}", path.display()), e),
    };
    for entry in text.lines().filter_map(LedgerEntry::parse) {
        match entry {
            LedgerEntry::Sysv(kind, key) => {
                if !is_isoprobe_key(key) {
                    continue;
                }
                let what = format!("SysV {kind:?} key {key:#x} (run pid {})", r.pid());
                if t.dry_run {
                    if isoprobe_probes::sys::sysv_get(kind, key).is_ok() {
                        t.removed(Kind::Sysv, what);
                    }
                    continue;
                }
                match sysv_remove_key(kind, key) {
                    Ok(true) => t.removed(Kind::Sysv, what),
                    Ok(false) => {}
                    Err(e) => t.failed(Kind::Sysv, what, e),
                }
            }
            LedgerEntry::Mqueue(name) => {
                if !name.starts_with(&format!("/{PREFIX}-")) {
                    continue;
                }
                let what = format!("message queue {name} (run pid {})", r.pid());
                if t.dry_run {
                    if isoprobe_probes::sys::mq_lookup(&name).is_ok() {
                        t.removed(Kind::Mqueue, what);
                    }
                    continue;
                }
                match mq_remove(&name) {
                    Ok(true) => t.removed(Kind::Mqueue, what),
                    Ok(false) => {}
                    Err(e) => t.failed(Kind::Mqueue, what, e),
                }
            }
        }
    }
}

/// Detaches every mount under a dead run's directory, then removes it.
fn remove_dir(r: &OwnedDir, t: &mut Tally<'_>) {
    let what = format!("{} (its process, pid {}, is gone)", r.path.display(), r.pid());
    let mounted = |p: &Path| -> Result<Vec<PathBuf>, HarnessError> {
        Ok(mounts()?.into_iter().map(|m| m.mount_point).filter(|m| m.starts_with(p)).collect())
    };
    if t.dry_run {
        for m in mounted(&r.path).unwrap_or_default() {
            t.removed(Kind::Mount, format!("mount {}", m.display()));
        }
        return t.removed(Kind::RunDir, what);
    }
    match unmount_all_under(&r.path) {
        Ok(0) => {}
        Ok(n) => {
            for _ in 0..n {
                *t.summary.removed.entry(Kind::Mount).or_default() += 1;
            }
            (t.sink)(&Event {
                kind: Kind::Mount,
                what: format!("{n} mounts under {}", r.path.display()),
                outcome: Outcome::Removed,
            });
        }
        Err(e) => return t.failed(Kind::RunDir, what, e),
    }
    match mounted(&r.path) {
        Ok(left) if left.is_empty() => match fs::remove_dir_all(&r.path) {
            Ok(()) => t.removed(Kind::RunDir, what),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => t.failed(Kind::RunDir, what, e),
        },
        Ok(left) => t.failed(
            Kind::RunDir,
            what,
            format!("{} mounts remain under it, so its contents were left alone", left.len()),
        ),
        Err(e) => t.failed(Kind::RunDir, what, e),
    }
}

/// Loop devices whose backing file is isoprobe's (`/dev/loopN`, backing file).
pub(crate) fn isoprobe_loop_devices() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(b) = fs::read_to_string(e.path().join("loop/backing_file"))
            && b.contains(&format!("/{PREFIX}-"))
        {
            out.push((format!("/dev/{name}"), b.trim_end().to_owned()));
        }
    }
    out
}

/// `losetup --detach`, as a limit case's own teardown does.
fn detach_loop(dev: &str) -> Result<(), String> {
    let out = Command::new("losetup").arg("--detach").arg(dev).output().map_err(|e| format!("run losetup: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("losetup --detach {dev}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether a process runs in `cg` or any cgroup below it (unreadable counts as populated).
fn populated(cg: &Path) -> bool {
    match fs::read_to_string(cg.join("cgroup.procs")) {
        Ok(p) if !p.trim().is_empty() => return true,
        Ok(_) => {}
        Err(_) => return true,
    }
    let Ok(entries) = fs::read_dir(cg) else { return true };
    entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).any(|e| populated(&e.path()))
}

/// [`Scope::All`]: isoprobe-keyed SysV objects and `/isoprobe-*` queues no live run can own.
fn remove_unowned_ipc(bound: i64, dead: &[&OwnedDir], t: &mut Tally<'_>) -> Result<(), HarnessError> {
    let dead_pids: Vec<i32> = dead.iter().map(|r| r.pid()).collect();
    for obj in isoprobe_sysv_objects()? {
        let what = format!("SysV {:?} id {} key {:#x}", obj.kind, obj.id, obj.key);
        // A run creates its host objects itself: a shared-memory segment whose creator was a
        // dead run is that run's, whenever it was made.
        let of_dead_run = obj.kind == SysvKind::Shm && obj.cpid.is_some_and(|p| dead_pids.contains(&p));
        if !of_dead_run && obj.ctime >= bound {
            t.kept(Kind::Sysv, what, "created after a live run started");
            continue;
        }
        t.remove(Kind::Sysv, what, || match sysv_remove(obj.kind, obj.id) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EIDRM) => Ok(()),
            Err(e) => Err(e.to_string()),
        });
    }
    match isoprobe_mqueues() {
        Ok(queues) => {
            for (name, ctime) in queues {
                let what = format!("message queue {name}");
                if ctime >= bound {
                    t.kept(Kind::Mqueue, what, "created after a live run started");
                    continue;
                }
                t.remove(Kind::Mqueue, what, || mq_remove(&name).map(drop).map_err(|e| e.to_string()));
            }
        }
        Err(e) => t.failed(Kind::Mqueue, "leftover message queues".into(), e),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::ledger::IpcLedger;
    use super::*;

    /// A run killed mid freezer case leaves a frozen cgroup whose tasks cannot die of their
    /// SIGKILL: recovery thaws it, kills them, and removes it. Real cgroups (the freezer
    /// hierarchy, v1 `freezer.state` or v2 `cgroup.freeze`), a cgroup named after a dead run of
    /// a private temporary directory, holding a `sleep` this test started.
    #[test]
    fn a_dead_runs_frozen_cgroup_is_thawed_and_removed() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (cgroups)");
            return;
        }
        let Ok(table) = mounts() else { return };
        // The v1 freezer where there is one (its frozen tasks ignore SIGKILL), else cgroup2.
        let v1 = table.iter().find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "freezer"));
        let v2 = table.iter().find(|m| m.fs_type == "cgroup2");
        let freezer = v1.map(|m| (m.mount_point.clone(), true)).or_else(|| v2.map(|m| (m.mount_point.clone(), false)));
        let Some((hierarchy, v1)) = freezer else {
            eprintln!("skipped: needs a freezer (no v1 freezer or cgroup2 hierarchy mounted)");
            return;
        };
        let token = crate::names::token();
        let tmp = std::env::temp_dir().join(format!("leftovers-freezer-test-{}", std::process::id()));
        let dead = tmp.join(format!("isoprobe-2147483647-{token}"));
        fs::create_dir_all(&dead).unwrap();
        let cg = hierarchy.join(format!("isoprobe-{token}-1"));
        fs::create_dir(&cg).unwrap();
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        let r = (|| -> Result<(), String> {
            fs::write(cg.join("cgroup.procs"), child.id().to_string()).map_err(|e| e.to_string())?;
            if v1 {
                fs::write(cg.join("freezer.state"), "FROZEN").map_err(|e| e.to_string())?;
            } else {
                fs::write(cg.join("cgroup.freeze"), "1").map_err(|e| e.to_string())?;
            }
            // As a killed run's probes are: sent SIGKILL while frozen.
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| e.to_string())?;
            let s = sweep_in(&tmp, Sweep { scope: Scope::DeadRuns, dry_run: false }, &mut |_| {})
                .map_err(|e| e.to_string())?;
            if cg.exists() || dead.exists() || s.failed != 0 {
                return Err(format!(
                    "after the sweep: cgroup there: {}, run dir there: {}, {s:?}",
                    cg.exists(),
                    dead.exists()
                ));
            }
            Ok(())
        })();
        // A frozen child would never be reaped: thaw first.
        if let Ok(fd) = nix::fcntl::open(&cg, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()) {
            thaw(fd.as_fd());
        }
        let _ = child.kill();
        let _ = child.wait();
        if cg.exists() {
            let _ = fs::remove_dir(&cg);
        }
        let _ = fs::remove_dir_all(&tmp);
        r.unwrap();
    }
    /// A real dead run's leftovers, in a private temporary directory and IPC namespace of a
    /// thread of its own: its ledgered SysV object and queue and its directory are removed, the
    /// live run's are kept, and a dry run touches nothing.
    #[test]
    fn a_dead_runs_ledgered_objects_go_and_a_live_runs_stay() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (a private mount and IPC namespace)");
            return;
        }
        let outcome = std::thread::spawn(|| -> Result<(), String> {
            use nix::mount::{MsFlags, mount};
            use nix::sched::{CloneFlags, unshare};
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC).map_err(|e| e.to_string())?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .map_err(|e| e.to_string())?;
            let tmp = std::env::temp_dir().join(format!("leftovers-test-{}", std::process::id()));
            fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
            mount(Some("tmpfs"), &tmp, Some("tmpfs"), MsFlags::empty(), None::<&str>).map_err(|e| e.to_string())?;
            let r = (|| -> Result<(), String> {
                // A pid that cannot run (above pid_max) owns the dead run; this process the live one.
                let dead = tmp.join("isoprobe-2147483647-0123456789ab");
                let live = tmp.join(format!("isoprobe-{}-abcdefabcdef", std::process::id()));
                let mut objs = Vec::new();
                for (dir, key) in [(&dead, 0x15ab_cd01), (&live, 0x15ab_cd02)] {
                    fs::create_dir(dir).map_err(|e| e.to_string())?;
                    let ledger = IpcLedger::create(dir).map_err(|e| e.to_string())?;
                    ledger.sysv(SysvKind::Msg, key).map_err(|e| e.to_string())?;
                    objs.push(isoprobe_probes::sys::sysv_create(SysvKind::Msg, key, 0o600).map_err(|e| e.to_string())?);
                    // Ledgered but never made: not an error.
                    ledger.sysv(SysvKind::Shm, key).map_err(|e| e.to_string())?;
                }
                let sweep = |dry_run| sweep_in(&tmp, Sweep { scope: Scope::DeadRuns, dry_run }, &mut |_| {});
                let dry = sweep(true).map_err(|e| e.to_string())?;
                if !dead.exists() || isoprobe_probes::sys::sysv_get(SysvKind::Msg, 0x15ab_cd01).is_err() {
                    return Err("the dry run removed something".into());
                }
                if dry.removed.get(&Kind::Sysv) != Some(&1) || dry.removed.get(&Kind::RunDir) != Some(&1) {
                    return Err(format!("the dry run would remove {}", dry.removed_text()));
                }
                let s = sweep(false).map_err(|e| e.to_string())?;
                if dead.exists() || isoprobe_probes::sys::sysv_get(SysvKind::Msg, 0x15ab_cd01).is_ok() {
                    return Err(format!(
                        "the dead run's leftovers are still there after removing {}",
                        s.removed_text()
                    ));
                }
                if !live.exists() || isoprobe_probes::sys::sysv_get(SysvKind::Msg, 0x15ab_cd02).is_err() {
                    return Err("the live run's directory or object went".into());
                }
                if s.dead_runs != 1 || s.removed_text() != "1 run directory, 1 SysV IPC object" {
                    return Err(format!("{} dead runs, removed {}", s.dead_runs, s.removed_text()));
                }
                Ok(())
            })();
            let _ = nix::mount::umount2(&tmp, nix::mount::MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(&tmp);
            r
        })
        .join()
        .expect("the test thread panicked");
        outcome.unwrap();
    }
}
