//! `isoprobe cleanup`: find and remove what a killed run left behind.
//!
//! Only objects isoprobe names are ever looked at: run directories `/tmp/isoprobe-<pid>-<token>`,
//! mounts under them, cgroups named `isoprobe-*`, SysV IPC objects whose key has isoprobe's top
//! byte (0x15), and POSIX message queues `/isoprobe-*`; and the NIS domainname, put back to what a
//! dead run recorded if it still shows that run's token. A run is alive while its pid runs; what a
//! live run may own is kept:
//! - a run directory whose pid runs;
//! - a cgroup carrying a live run's token (`isoprobe-<token>-<case>`); one carrying no known
//!   run's token is kept while processes run in it or within seconds of its creation (a run in
//!   another temporary directory may own it);
//! - a SysV object or message queue created since the oldest live run started, or in the second
//!   before the cleanup started (they carry no run token; their ctime is when they were
//!   created), except shared memory whose creator was a dead run.
//!
//! It must never remove anything without the isoprobe name, and never follow a run directory's
//! contents across a mount point (every mount under it is detached first, and removal is refused
//! if one remains).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use isoprobe_harness::mounts::{mounts, unmount_all_under};
use isoprobe_harness::names::{PREFIX, is_isoprobe_key};
use isoprobe_probes::sys::{SysvKind, mq_remove, sysv_remove};

/// A cgroup no visible run owns is left alone this long after its creation: a run this cleanup
/// cannot see may be about to start a case's processes in it.
const UNKNOWN_CGROUP_GRACE_SECS: i64 = 5;

/// A run directory found under the temporary directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunDir {
    path: PathBuf,
    pid: i32,
    token: String,
}

/// What one cleanup found and did.
#[derive(Debug, Default)]
struct Tally {
    removed: usize,
    kept: usize,
    failed: usize,
}

impl Tally {
    fn removed(&mut self, dry_run: bool, what: &str) {
        self.removed += 1;
        println!("{} {what}", if dry_run { "would remove" } else { "removed" });
    }
    fn kept(&mut self, what: &str, why: &str) {
        self.kept += 1;
        println!("kept {what}: {why}");
    }
    fn failed(&mut self, what: &str, e: impl std::fmt::Display) {
        self.failed += 1;
        println!("failed to remove {what}: {e}");
    }
}

/// `isoprobe cleanup`; exit status 0 when nothing removable is left, 1 when something could not
/// be removed.
pub fn cleanup(dry_run: bool, only_known_runs: bool) -> Result<u8> {
    let runs = run_dirs(&std::env::temp_dir())?;
    let (live, dead): (Vec<&RunDir>, Vec<&RunDir>) = runs.iter().partition(|r| pid_runs(r.pid));
    // Objects are kept when they changed after the oldest live run started, or after this
    // cleanup started (a run may start while it looks); one second of slack: ctimes are whole
    // seconds.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let bound = live.iter().filter_map(|r| process_start_epoch(r.pid)).chain([now]).min().unwrap_or(now) - 1;
    let live_tokens: Vec<&str> = live.iter().map(|r| r.token.as_str()).collect();
    let dead_tokens: Vec<&str> = dead.iter().map(|r| r.token.as_str()).collect();
    let dead_pids: Vec<i32> = dead.iter().map(|r| r.pid).collect();
    let mut t = Tally::default();
    for r in &live {
        t.kept(&r.path.display().to_string(), &format!("its run (pid {}) is still running", r.pid));
    }
    let unowned = |ctime: i64| ctime < bound;

    for r in &dead {
        restore_domainname(r, dry_run, &mut t);
        remove_run_dir(r, dry_run, &mut t);
    }
    for cg in isoprobe_cgroups()? {
        let what = format!("cgroup {}", cg.display());
        let name = cg.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let token = run_token_of(&name);
        let ctime = fs::metadata(&cg).map(|m| m.ctime()).unwrap_or(i64::MAX);
        let keep = if token.is_some_and(|tk| live_tokens.contains(&tk)) {
            Some("its run is still running")
        } else if token.is_some_and(|tk| dead_tokens.contains(&tk)) {
            None
        } else if only_known_runs {
            Some("no dead run in the temporary directory owns it (--only-known-runs)")
        } else if populated(&cg) {
            // A run this cleanup cannot see (another temporary directory) may own it.
            Some("processes run in it and no dead run owns it")
        } else if ctime >= bound - UNKNOWN_CGROUP_GRACE_SECS {
            Some("created moments ago and no dead run owns it: a run may be setting it up")
        } else {
            None
        };
        if let Some(why) = keep {
            t.kept(&what, why);
        } else if dry_run {
            t.removed(true, &what);
        } else {
            match remove_cgroup(&cg) {
                Ok(()) => t.removed(false, &what),
                Err(e) => t.failed(&what, format!("{e:#}")),
            }
        }
    }
    for obj in isoprobe_sysv_objects()? {
        let what = format!("SysV {:?} id {} key {:#x}", obj.kind, obj.id, obj.key);
        // A run creates its host objects itself: a shared-memory segment whose creator was a
        // dead run is that run's, whenever it was made.
        let of_dead_run = obj.kind == SysvKind::Shm && obj.cpid.is_some_and(|p| dead_pids.contains(&p));
        if !of_dead_run && !unowned(obj.ctime) {
            t.kept(&what, "created after a live run started");
        } else if dry_run {
            t.removed(true, &what);
        } else {
            match sysv_remove(obj.kind, obj.id) {
                Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EIDRM) => t.removed(false, &what),
                Err(e) => t.failed(&what, e),
            }
        }
    }
    match isoprobe_mqueues() {
        Ok(queues) => {
            for (name, ctime) in queues {
                let what = format!("message queue {name}");
                if !unowned(ctime) {
                    t.kept(&what, "created after a live run started");
                } else if dry_run {
                    t.removed(true, &what);
                } else {
                    match mq_remove(&name) {
                        Ok(_) => t.removed(false, &what),
                        Err(e) => t.failed(&what, e),
                    }
                }
            }
        }
        Err(e) => {
            t.failed("leftover message queues", format!("{e:#}"));
        }
    }
    println!(
        "{} {}, kept {}, {} could not be removed",
        if dry_run { "would remove" } else { "removed" },
        t.removed,
        t.kept,
        t.failed
    );
    Ok(if t.failed == 0 { 0 } else { 1 })
}

/// `isoprobe-<pid>-<token>` directories directly under `tmp`.
fn run_dirs(tmp: &Path) -> Result<Vec<RunDir>> {
    let mut out = Vec::new();
    for e in fs::read_dir(tmp).with_context(|| format!("list {}", tmp.display()))? {
        let e = e.with_context(|| format!("list {}", tmp.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((pid, token)) = parse_run_dir_name(&name)
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            out.push(RunDir { path: e.path(), pid, token: token.to_owned() });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `isoprobe-<pid>-<token>` → (pid, token); anything else (another program's, or another shape)
/// → `None`.
fn parse_run_dir_name(name: &str) -> Option<(i32, &str)> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (pid, token) = rest.split_once('-')?;
    let pid: i32 = pid.parse().ok().filter(|p| *p > 0)?;
    is_token(token).then_some((pid, token))
}

/// The run token of a cgroup named `isoprobe-<token>-<rest>` (`<rest>` is the case number, and
/// whatever a launcher appends).
fn run_token_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (token, case) = rest.split_once('-')?;
    (is_token(token) && !case.is_empty()).then_some(token)
}

/// Run tokens are 12 lowercase hex digits (`names::token`).
fn is_token(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn pid_runs(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// When `pid` started, in seconds since the epoch (rounded down).
fn process_start_epoch(pid: i32) -> Option<i64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 counts from after the command, which is in parentheses and may contain spaces.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let ticks: i64 = after_comm.split(' ').nth(19)?.parse().ok()?;
    let boot: i64 =
        fs::read_to_string("/proc/stat").ok()?.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(boot + ticks / hz)
}

/// Puts back the NIS domainname a dead run recorded when it was killed between setting it (a
/// case with the host's uts namespace) and restoring it.
fn restore_domainname(r: &RunDir, dry_run: bool, t: &mut Tally) {
    use isoprobe_harness::host::RecordedDomainname as Found;
    let what = "the NIS domainname";
    match isoprobe_harness::host::restore_recorded_domainname(&r.path, dry_run) {
        Ok(Found::NoRecord | Found::Unchanged) => {}
        Ok(Found::Restored { from, to }) => {
            t.removed(dry_run, &format!("{what} {from:?} (set by run pid {}; back to {to:?})", r.pid))
        }
        Ok(Found::NotOurs { now, original }) => t.kept(
            &format!("{what} {now:?}"),
            &format!(
                "run pid {} recorded {original:?}, but the name is not an isoprobe token: set by someone else since",
                r.pid
            ),
        ),
        Err(e) => t.failed(what, e),
    }
}

/// Detaches every mount under a dead run's directory, then removes it.
fn remove_run_dir(r: &RunDir, dry_run: bool, t: &mut Tally) {
    let what = format!("{} (run pid {} is gone)", r.path.display(), r.pid);
    let mounted = |p: &Path| -> Result<Vec<PathBuf>> {
        Ok(mounts()?.into_iter().map(|m| m.mount_point).filter(|m| m.starts_with(p)).collect())
    };
    if dry_run {
        for m in mounted(&r.path).unwrap_or_default() {
            t.removed(true, &format!("mount {}", m.display()));
        }
        t.removed(true, &what);
        return;
    }
    match unmount_all_under(&r.path) {
        Ok(0) => {}
        Ok(n) => t.removed(false, &format!("{n} mounts under {}", r.path.display())),
        Err(e) => return t.failed(&what, e),
    }
    match mounted(&r.path) {
        Ok(left) if left.is_empty() => match fs::remove_dir_all(&r.path) {
            Ok(()) => t.removed(false, &what),
            Err(e) => t.failed(&what, e),
        },
        Ok(left) => t.failed(&what, format!("{} mounts remain under it, so its contents were left alone", left.len())),
        Err(e) => t.failed(&what, format!("{e:#}")),
    }
}

/// Directories named `isoprobe-*` in every mounted cgroup hierarchy, deepest first.
fn isoprobe_cgroups() -> Result<Vec<PathBuf>> {
    let mut roots: Vec<PathBuf> = mounts()?
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
        .collect();
    roots.sort();
    roots.dedup();
    let mut out = Vec::new();
    for root in roots {
        find_named(&root, 4, &mut out);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    Ok(out)
}

/// Collects `isoprobe-*` directories under `dir`, down to `depth` levels, without descending
/// into them (their children go with them).
fn find_named(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
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

/// Removes a leftover cgroup: its isoprobe children first, then itself; processes still in it
/// were started there by the dead run and are killed through `cgroup.kill` (cgroup2) first.
fn remove_cgroup(cg: &Path) -> Result<()> {
    let mut children = Vec::new();
    find_named(cg, 8, &mut children);
    children.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for c in children {
        remove_cgroup(&c)?;
    }
    for attempt in 0..200 {
        match fs::remove_dir(cg) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc_ebusy()) && attempt < 199 => {
                if attempt == 0 && cg.join("cgroup.kill").exists() {
                    fs::write(cg.join("cgroup.kill"), "1")
                        .with_context(|| format!("kill the processes in {}", cg.display()))?;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("remove {}", cg.display())),
        }
    }
    unreachable!("the last attempt returns")
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

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

/// A SysV IPC object with an isoprobe key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SysvObject {
    kind: SysvKind,
    key: i32,
    id: i32,
    ctime: i64,
    /// The creator's pid (shared memory only).
    cpid: Option<i32>,
}

fn isoprobe_sysv_objects() -> Result<Vec<SysvObject>> {
    let mut out = Vec::new();
    for (kind, file, id_col) in
        [(SysvKind::Shm, "shm", "shmid"), (SysvKind::Sem, "sem", "semid"), (SysvKind::Msg, "msg", "msqid")]
    {
        let path = format!("/proc/sysvipc/{file}");
        let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        out.extend(parse_sysvipc(kind, &text, id_col).into_iter().filter(|o| is_isoprobe_key(o.key)));
    }
    Ok(out)
}

/// The rows of a /proc/sysvipc table (columns named by its header line).
fn parse_sysvipc(kind: SysvKind, text: &str, id_col: &str) -> Vec<SysvObject> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let cols: BTreeMap<&str, usize> = header.split_whitespace().enumerate().map(|(i, c)| (c, i)).collect();
    let (Some(&k), Some(&i), Some(&c)) = (cols.get("key"), cols.get(id_col), cols.get("ctime")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(SysvObject {
                kind,
                key: f.get(k)?.parse().ok()?,
                id: f.get(i)?.parse().ok()?,
                ctime: f.get(c)?.parse().ok()?,
                cpid: cols.get("cpid").and_then(|&p| f.get(p)?.parse().ok()),
            })
        })
        .collect()
}

/// `/isoprobe-*` message queues with their ctimes. Listing needs the mqueue filesystem: where it
/// is not mounted, it is mounted in a private mount namespace of a short-lived thread.
fn isoprobe_mqueues() -> Result<Vec<(String, i64)>> {
    let list = |dir: &Path| -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{PREFIX}-")) {
                let ctime = e.metadata().map(|m| m.ctime()).unwrap_or(i64::MAX);
                out.push((format!("/{name}"), ctime));
            }
        }
        Ok(out)
    };
    if let Some(m) = mounts()?.into_iter().find(|m| m.fs_type == "mqueue") {
        return list(&m.mount_point);
    }
    std::thread::scope(|s| {
        s.spawn(|| -> Result<Vec<(String, i64)>> {
            use nix::mount::{MsFlags, mount};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .context("enter a private mount namespace to list message queues (needs CAP_SYS_ADMIN)")?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .context("make the private mount namespace private")?;
            // /tmp of this thread's own mount namespace: nobody else sees this mount.
            let at = Path::new("/tmp");
            mount(Some("mqueue"), at, Some("mqueue"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, None::<&str>)
                .context("mount the mqueue filesystem")?;
            list(at)
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("list message queues: the listing thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_names_need_the_prefix_a_pid_and_a_token() {
        assert_eq!(parse_run_dir_name("isoprobe-1234-0123456789ab"), Some((1234, "0123456789ab")));
        for other in [
            "isoprobe-1234",
            "isoprobe-x-0123456789ab",
            "isoprobe-0-0123456789ab",
            "isoprobe-12-0123456789aZ",
            "isoprobe-12-0123456789abc",
            "isoprobes-12-0123456789ab",
            "systemd-private-12-0123456789ab",
        ] {
            assert_eq!(parse_run_dir_name(other), None, "{other}");
        }
    }

    #[test]
    fn cgroup_tokens() {
        assert_eq!(run_token_of("isoprobe-0123456789ab-17"), Some("0123456789ab"));
        assert_eq!(run_token_of("isoprobe-0123456789ab-17-lxc"), Some("0123456789ab"));
        assert_eq!(run_token_of("isoprobe-0123456789ab-"), None);
        assert_eq!(run_token_of("isoprobe-limit-memory"), None);
    }

    #[test]
    fn sysvipc_tables_are_read_by_column_name() {
        let shm = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                   352321537          5   666                     1  4242     0      0     0     0     0     0          0          0 1764390000                     0                     0\n";
        let objs = parse_sysvipc(SysvKind::Shm, shm, "shmid");
        assert_eq!(
            objs,
            vec![SysvObject { kind: SysvKind::Shm, key: 0x1500_0001, id: 5, ctime: 1_764_390_000, cpid: Some(4242) }]
        );
        assert!(is_isoprobe_key(objs[0].key));
        assert!(parse_sysvipc(SysvKind::Shm, "", "shmid").is_empty());
    }
}
