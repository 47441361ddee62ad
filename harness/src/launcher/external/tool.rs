//! What every external launcher shares: finding its tool and version, starting it with the probe's
//! stdio, finding the probe among the tool's descendants, running the tool's helper commands, and
//! the owner of a tool's working directory and the cgroups it leaves.
//!
//! This module must never remove a cgroup, directory or process it was not told is isoprobe's:
//! every path it removes was named by a launcher with the isoprobe prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::cgroup::remove::remove_tree;
use crate::cgroup::{Hierarchy, Version};
use crate::error::{Context, HarnessError};
use crate::hostlock::HostLock;
use crate::launcher::process::{ProbeProcess, ToolRequest, spawn_tool};
use crate::launcher::{StartContext, Teardown, ToolInfo};
use crate::requirement::Requirement;
use crate::spec::LauncherKind;
use crate::verdict::Skip;

/// The directories searched for tools, whatever the caller's PATH (root's sbin directories are not
/// on every user's PATH, and CI's environment is minimal).
const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `command` and reads its version with `version_args`; the skip says which Debian package
/// provides it.
pub fn find_tool(
    kind: LauncherKind,
    command: &'static str,
    package: &'static str,
    version_args: &[&str],
) -> Result<ToolInfo, Skip> {
    let missing = |why: String| Requirement::Tool(command.into()).skip(why);
    let Some(path) = which(command) else {
        return Err(missing(format!("{command} not installed (Debian package {package}), needed by {}", kind.name())));
    };
    let out = Command::new(&path)
        .args(version_args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(format!("failed to run `{} {}`: {e}", path.display(), version_args.join(" "))))?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).into_owned();
    let version = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
    if version.is_empty() {
        return Err(missing(format!("`{} {}` printed no version", path.display(), version_args.join(" "))));
    }
    Ok(ToolInfo { command, package, path, version })
}

/// A tool looked up once, on first use.
#[derive(Debug)]
pub struct ToolCell {
    kind: LauncherKind,
    command: &'static str,
    package: &'static str,
    version_args: &'static [&'static str],
    /// Bookkeeping the tool creates on every invocation, its version query included (crun makes
    /// /run/crun even for `--version`).
    host_dirs: Option<&'static SharedHostDirs>,
    found: OnceLock<Result<ToolInfo, Skip>>,
}

impl ToolCell {
    pub const fn new(
        kind: LauncherKind,
        command: &'static str,
        package: &'static str,
        version_args: &'static [&'static str],
    ) -> ToolCell {
        ToolCell { kind, command, package, version_args, host_dirs: None, found: OnceLock::new() }
    }

    /// As [`ToolCell::new`], for a tool that creates `dirs` whenever it runs.
    pub fn with_host_dirs(self, dirs: &'static SharedHostDirs) -> ToolCell {
        ToolCell { host_dirs: Some(dirs), ..self }
    }

    /// The tool, or the skip saying it is not installed.
    pub fn get(&self) -> Result<&ToolInfo, Skip> {
        self.found
            .get_or_init(|| {
                let guard = self.host_dirs.and_then(|d| {
                    d.enter(Vec::new(), Vec::new(), Vec::new(), Instant::now() + crate::launcher::process::GRACE).ok()
                });
                let found = find_tool(self.kind, self.command, self.package, self.version_args);
                if let Some(mut g) = guard {
                    for p in g.release() {
                        eprintln!("isoprobe: {p}");
                    }
                }
                found
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The tool, for a start: not finding it now is an error (the skip was checked before).
    pub fn for_start(&self) -> Result<&ToolInfo, HarnessError> {
        self.get().map_err(|s| HarnessError::Launch(s.reason))
    }
}

/// The first executable `command` in `SEARCH_PATH`.
pub fn which(command: &str) -> Option<PathBuf> {
    SEARCH_PATH
        .split(':')
        .map(|d| Path::new(d).join(command))
        .find(|p| nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file())
}

/// The numeric `major.minor.patch` found first in a version line (`crun version 1.8.1` → 1.8.1).
pub fn version_triple(line: &str) -> Option<(u32, u32, u32)> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.')).find_map(|w| {
        let mut it = w.split('.').filter(|p| !p.is_empty()).map(|p| p.parse::<u32>().ok());
        let a = it.next()??;
        let b = it.next()??;
        let c = it.next().flatten().unwrap_or(0);
        Some((a, b, c))
    })
}

/// The environment every tool runs with: a fixed PATH and nothing of the harness's own.
pub fn tool_env() -> Vec<(String, String)> {
    vec![("PATH".into(), SEARCH_PATH.into())]
}

/// Starts `exe args` with the probe's stdio, in the case's cgroup2 directory when there is one.
pub fn start_tool(
    ctx: &StartContext<'_>,
    exe: &Path,
    args: &[String],
    env: &[(String, String)],
) -> Result<ProbeProcess, HarnessError> {
    start_tool_in(ctx, None, exe, args, env)
}

/// [`start_tool`], in `cgroup` instead of the case's cgroup when given.
pub fn start_tool_in(
    ctx: &StartContext<'_>,
    cgroup: Option<&ToolCgroup>,
    exe: &Path,
    args: &[String],
    env: &[(String, String)],
) -> Result<ProbeProcess, HarnessError> {
    let (v2, attach_v1) = match cgroup {
        Some(c) => (c.v2.as_ref().map(|f| f.as_fd()), c.v1.as_slice()),
        None => (ctx.case.cgroup.as_ref().map(|c| c.fd()), &[][..]),
    };
    spawn_tool(ToolRequest { exe, args, env, cgroup: v2, attach_v1, deadline: ctx.deadline })
}

/// A cgroup of isoprobe's own for a tool that creates cgroups relative to the one it starts in
/// (systemd-nspawn's `payload` and `supervisor`): `<name>` in the cgroup2 hierarchy and in the
/// named v1 hierarchies. Controller hierarchies are left alone (a new cpuset cgroup takes no task
/// before its cpus and mems are set). Removed with everything below it by
/// [`remove_cgroup_everywhere`].
#[derive(Debug)]
pub struct ToolCgroup {
    pub name: String,
    pub v2: Option<OwnedFd>,
    pub v1: Vec<PathBuf>,
}

impl ToolCgroup {
    pub fn create(name: String) -> Result<ToolCgroup, HarnessError> {
        assert!(name.starts_with(crate::names::PREFIX), "cgroup {name} lacks the isoprobe prefix");
        let mut cg = ToolCgroup { name, v2: None, v1: Vec::new() };
        // cgroup2 and the named v1 hierarchies (no controllers bound).
        for h in host_hierarchies().into_iter().filter(|h| h.version == Version::V2 || h.controllers.is_empty()) {
            let dir = h.mount_point.join(&cg.name);
            fs::create_dir(&dir).ctx(|| format!("create cgroup {}", dir.display()))?;
            if h.version == Version::V2 {
                let fd = nix::fcntl::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                    .ctx(|| format!("open cgroup {}", dir.display()))?;
                cg.v2 = Some(fd);
            } else {
                cg.v1.push(dir);
            }
        }
        Ok(cg)
    }
}

/// The process name the probe runs under (/proc/<pid>/comm is the executable's file name).
const PROBE_COMM: &str = isoprobe_probes::PROBE_NAME;

/// Waits until a descendant of `tool` runs the probe (its comm is `isoprobe-probe`, so the tool's
/// setup, which happens before the exec, is done) and returns its pid. Fails at once if the tool
/// exits first, with its stderr. Polls /proc with a backoff from 0.2 to 2 ms: the probe waits for
/// its hello meanwhile, so a tool's measured start includes up to one poll interval.
pub fn wait_for_probe(tool: &mut ProbeProcess, deadline: Instant) -> Result<Pid, HarnessError> {
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(pid) = probe_descendant(tool.pid) {
            return Ok(pid);
        }
        if let Some(status) = tool.try_status()? {
            let stderr = tool.read_stderr_now();
            return Err(HarnessError::Launch(format!(
                "the launcher's process ended ({}) before starting the probe: {stderr}",
                crate::launcher::process::describe(status)
            )));
        }
        if Instant::now() >= deadline {
            let stderr = tool.read_stderr_now();
            return Err(HarnessError::Timeout {
                after: Duration::ZERO,
                during: format!("waiting for the probe to start under process {} ({stderr})", tool.pid),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// A process whose comm is the probe's and whose ancestry reaches `root`.
fn probe_descendant(root: Pid) -> Option<Pid> {
    let mut parent = std::collections::HashMap::new();
    let mut probes = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // comm is between the first '(' and the last ')'; ppid is the second field after it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let Some(ppid) = stat[close + 1..].split_whitespace().nth(1).and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        parent.insert(pid, ppid);
        if comm == PROBE_COMM {
            probes.push(pid);
        }
    }
    probes
        .into_iter()
        .find(|&p| {
            let mut cur = p;
            for _ in 0..64 {
                if cur == root.as_raw() {
                    return true;
                }
                match parent.get(&cur) {
                    Some(&pp) if pp > 0 => cur = pp,
                    _ => return false,
                }
            }
            false
        })
        .map(Pid::from_raw)
}

/// Runs a helper command of a tool (`runc delete`, `lxc-stop`) to completion with no stdin;
/// returns its exit success and its stderr.
pub fn run_helper(exe: &Path, args: &[&str]) -> Result<(bool, String), HarnessError> {
    let out = Command::new(exe)
        .args(args)
        .env_clear()
        .envs(tool_env())
        .stdin(Stdio::null())
        .output()
        .ctx(|| format!("run {} {}", exe.display(), args.join(" ")))?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).trim().to_owned()))
}

/// A directory a launcher made for one case (a tool's config, an OCI bundle), removed on teardown.
#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
}

impl WorkDir {
    /// Creates `<run dir>/<tool>-<case id>`.
    pub fn create(ctx: &StartContext<'_>, tool: &str) -> Result<WorkDir, HarnessError> {
        let path = ctx.run.dir.join(format!("{tool}-{}", ctx.case.id));
        fs::create_dir(&path).ctx(|| format!("create {}", path.display()))?;
        Ok(WorkDir { path })
    }

    pub fn remove(&mut self) -> Vec<String> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Vec::new(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => vec![format!("failed to remove {}: {e}", self.path.display())],
        }
    }
}

/// Where the host's cgroup hierarchies are mounted; a cgroup filesystem mounted anywhere else (a
/// test's temporary cgroup2 mount under /tmp) is someone else's business.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Every cgroup hierarchy of the host's layout mounted under [`CGROUP_ROOT`] (v1 controllers,
/// named v1 hierarchies and cgroup2), cgroup2 first.
pub fn host_hierarchies() -> Vec<&'static Hierarchy> {
    let Ok(layout) = crate::cgroup::host_layout() else { return Vec::new() };
    let mut v: Vec<&Hierarchy> = layout.hierarchies.iter().filter(|h| h.mount_point.starts_with(CGROUP_ROOT)).collect();
    v.sort_by(|a, b| {
        (b.version == Version::V2).cmp(&(a.version == Version::V2)).then(a.mount_point.cmp(&b.mount_point))
    });
    v
}

/// How long removal waits on a cgroup that is still busy before it kills what is left, and again
/// after: an exited task lingers until its parent reaps it, and a case's container killed with
/// its tool can take more than a moment to go on a loaded host (seen: crun's, after `crun delete
/// --force`).
const CGROUP_DRAIN: Duration = Duration::from_secs(5);

/// Removes the cgroup subtree at `rel` (relative to each hierarchy's root) in every hierarchy,
/// deepest first, each directory drained (see `cgroup::remove`). `rel`'s last component must
/// carry the isoprobe prefix: it was named by a launcher for one case, so whatever still runs in
/// it is that case's container, which outlived its tool (systemd-nspawn's payload survives a
/// SIGKILL of nspawn). A process shows in every hierarchy, so cgroup2 goes first and the v1
/// directories mostly empty with it.
pub fn remove_cgroup_everywhere(rel: &str) -> Vec<String> {
    let rel = Path::new(rel.trim_start_matches('/'));
    let top = rel.file_name().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(top.starts_with(crate::names::PREFIX), "cgroup {} lacks the isoprobe prefix", rel.display());
    host_hierarchies().into_iter().flat_map(|h| remove_tree(h, rel, CGROUP_DRAIN)).collect()
}

/// The teardown most tools need: their work directory, and cgroups they name after the case.
#[derive(Debug)]
pub struct ToolLeftovers {
    pub work: Option<WorkDir>,
    /// Cgroup paths relative to each hierarchy's root, removed in every hierarchy.
    pub cgroups: Vec<String>,
    /// Tool-specific steps that run first (e.g. `runc delete --force`).
    pub before: Vec<TeardownStep>,
    /// The tool's bookkeeping directories outside the run directory.
    pub host_dirs: Option<HostDirsGuard>,
}

/// One tool-specific teardown step; it returns what it could not undo.
pub struct TeardownStep {
    pub name: &'static str,
    pub run: Box<dyn FnMut() -> Vec<String> + Send>,
}

impl std::fmt::Debug for TeardownStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeardownStep").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ToolLeftovers {
    pub fn new(work: Option<WorkDir>) -> ToolLeftovers {
        ToolLeftovers { work, cgroups: Vec::new(), before: Vec::new(), host_dirs: None }
    }
}

impl Teardown for ToolLeftovers {
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for mut step in self.before.drain(..) {
            problems.extend((step.run)());
        }
        for rel in self.cgroups.drain(..) {
            problems.extend(remove_cgroup_everywhere(&rel));
        }
        if let Some(mut w) = self.work.take() {
            problems.extend(w.remove());
        }
        if let Some(h) = self.host_dirs.as_mut() {
            problems.extend(h.release());
        }
        problems
    }
}

impl Drop for ToolLeftovers {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("isoprobe: {p}");
        }
    }
}

/// Host directories a tool creates outside the run directory for its own bookkeeping (LXC's lock
/// directories under /run/lxc, systemd-nspawn's under /run/systemd/nspawn), shared by every
/// container of that tool, in this process and in any other isoprobe process on the host.
///
/// The rule: the top directory (`/run/lxc`) is removed only if isoprobe created it, and so are the
/// shared directories between it and a container's, except those named after an isoprobe run
/// (the run directory's mirror), which are isoprobe's wherever they are. When an isoprobe
/// process finds it missing, it creates it and leaves a marker file in it; whoever tears down the
/// last container of its own later removes the shared directories while they are empty (another
/// process's containers keep them busy, and that process removes them after its own), then the
/// marker, then the top. Each container's directories are created before its tool starts, so a
/// shared directory is never empty while a container is about to use it. All of this runs under a
/// host-wide lock: an abstract unix socket bound by one process at a time, which the kernel
/// releases if its holder dies (nothing to clean up after a crash).
#[derive(Debug)]
pub struct SharedHostDirs {
    top: &'static str,
    mode: u32,
    lock_name: &'static str,
    active: Mutex<usize>,
}

/// The marker isoprobe leaves in a top directory it created.
const CREATED_MARKER: &str = ".isoprobe-created";

impl SharedHostDirs {
    /// `top` is the directory the tool would create (e.g. /run/lxc) with the tool's `mode`;
    /// `lock_name` the abstract socket name of the host-wide lock (isoprobe-prefixed).
    pub const fn new(top: &'static str, mode: u32, lock_name: &'static str) -> SharedHostDirs {
        SharedHostDirs { top, mode, lock_name, active: Mutex::new(0) }
    }

    /// Counts a container in and creates its directories (`dirs`, removed whole on release; each
    /// is named after the case), and the parents of the files the tool will create for it
    /// (`files`, removed on release). `shared` lists the directories between them and the top,
    /// deepest first, removed when empty.
    pub fn enter(
        &'static self,
        shared: Vec<PathBuf>,
        dirs: Vec<PathBuf>,
        files: Vec<PathBuf>,
        deadline: Instant,
    ) -> Result<HostDirsGuard, HarnessError> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let _host = HostLock::take(self.lock_name, deadline)?;
        let top = Path::new(self.top);
        if !top.exists() {
            fs::create_dir_all(top).ctx(|| format!("create {}", top.display()))?;
            fs::set_permissions(top, std::os::unix::fs::PermissionsExt::from_mode(self.mode))
                .ctx(|| format!("chmod {}", top.display()))?;
            let marker = top.join(CREATED_MARKER);
            fs::write(&marker, "created by isoprobe; removed with this directory\n")
                .ctx(|| format!("write {}", marker.display()))?;
        }
        debug_assert!(shared.iter().all(|d| d.starts_with(top) && d != top), "shared dirs lie strictly below the top");
        let mut guard = HostDirsGuard { dirs: self, per_case: Vec::new(), shared, counted: true };
        *active += 1;
        for d in dirs {
            guard.per_case.push(d.clone());
            fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
        }
        for f in files {
            if let Some(parent) = f.parent() {
                fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
            }
            guard.per_case.push(f);
        }
        Ok(guard)
    }
}

/// One container's share of [`SharedHostDirs`]: its own directories and files and its count.
/// Held by a [`ToolLeftovers`], which releases it.
#[derive(Debug)]
pub struct HostDirsGuard {
    dirs: &'static SharedHostDirs,
    per_case: Vec<PathBuf>,
    shared: Vec<PathBuf>,
    counted: bool,
}

impl HostDirsGuard {
    pub fn release(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.counted {
            return problems;
        }
        self.counted = false;
        let mut active = self.dirs.active.lock().unwrap_or_else(|e| e.into_inner());
        let host = HostLock::take(self.dirs.lock_name, Instant::now() + crate::launcher::process::GRACE);
        for d in self.per_case.drain(..) {
            let removed = if d.is_dir() { fs::remove_dir_all(&d) } else { fs::remove_file(&d) };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                problems.push(format!("failed to remove {}: {e}", d.display()));
            }
        }
        *active -= 1;
        if *active > 0 {
            return problems;
        }
        if let Err(e) = host {
            problems.push(e.to_string());
            return problems;
        }
        let top = Path::new(self.dirs.top);
        let marker = top.join(CREATED_MARKER);
        // Without the marker the top was there before isoprobe (the tool, used by someone else,
        // made it): of the shared directories only those named after a run of isoprobe's (the run
        // directory's mirror) are ours, and they go whoever made the top.
        let ours_anyway = |d: &Path| {
            d.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{}-", crate::names::PREFIX)))
        };
        let top_ours = marker.exists();
        for d in &self.shared {
            if !top_ours && !ours_anyway(d) {
                return problems;
            }
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Another process's containers still use it; the last of them removes it.
                Err(e) if e.raw_os_error() == Some(Errno::ENOTEMPTY as i32) => return problems,
                Err(e) => {
                    problems.push(format!("failed to remove {}: {e}", d.display()));
                    return problems;
                }
            }
        }
        if !top_ours {
            return problems;
        }
        if let Err(e) = fs::remove_file(&marker) {
            problems.push(format!("failed to remove {}: {e}", marker.display()));
            return problems;
        }
        if let Err(e) = fs::remove_dir(top) {
            // Something else lives there now (the tool, used by someone else): keep it, marked.
            let _ = fs::write(&marker, "created by isoprobe; removed with this directory\n");
            if e.raw_os_error() != Some(Errno::ENOTEMPTY as i32) {
                problems.push(format!("failed to remove {}: {e}", top.display()));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_first_number() {
        assert_eq!(version_triple("crun version 1.8.1"), Some((1, 8, 1)));
        assert_eq!(version_triple("runc version 1.1.5+ds1"), Some((1, 1, 5)));
        assert_eq!(version_triple("systemd 252 (252.39-1~deb12u2)"), Some((252, 39, 0)));
        assert_eq!(version_triple("bubblewrap 0.8.0"), Some((0, 8, 0)));
        assert_eq!(version_triple("no digits"), None);
    }

    /// A [`SharedHostDirs`] whose top is `top` (leaked: the type lives for the program).
    fn shared_dirs(top: &Path) -> &'static SharedHostDirs {
        let top: &'static str = Box::leak(top.to_string_lossy().into_owned().into_boxed_str());
        let lock: &'static str =
            Box::leak(format!("isoprobe-test-shared-dirs-{}", crate::names::token()).into_boxed_str());
        Box::leak(Box::new(SharedHostDirs::new(top, 0o755, lock)))
    }

    #[test]
    fn a_run_mirror_is_removed_below_a_top_isoprobe_did_not_create() {
        // As found after another user ran LXC by hand: /run/lxc and lock/tmp exist, with a
        // container of theirs in it, and no isoprobe marker.
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("lxc");
        let foreign = top.join("lock/tmp/theirs");
        fs::create_dir_all(&foreign).unwrap();
        let run = top.join("lock/tmp/isoprobe-1-ab");
        let case = run.join("case-1");
        let shared = vec![run.clone(), top.join("lock/tmp"), top.join("lock")];
        let dirs = shared_dirs(&top);
        let mut guard =
            dirs.enter(shared, vec![case.clone()], Vec::new(), Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(case.is_dir() && !top.join(CREATED_MARKER).exists());
        assert_eq!(guard.release(), Vec::<String>::new());
        assert!(!run.exists(), "the run's mirror is isoprobe's wherever it is");
        assert!(foreign.is_dir() && top.join("lock/tmp").is_dir(), "what was there stays");
    }

    #[test]
    fn a_top_isoprobe_created_goes_with_its_last_container() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("lxc");
        let run = top.join("lock/tmp/isoprobe-1-ab");
        let shared = vec![run.clone(), top.join("lock/tmp"), top.join("lock")];
        let dirs = shared_dirs(&top);
        let mut guard =
            dirs.enter(shared, vec![run.join("case-1")], Vec::new(), Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(top.join(CREATED_MARKER).exists());
        assert_eq!(guard.release(), Vec::<String>::new());
        assert!(!top.exists(), "made by isoprobe, removed by it");
    }

    #[test]
    fn cgroup_removal_refuses_foreign_names() {
        let r = std::panic::catch_unwind(|| remove_cgroup_everywhere("lxc.pivot"));
        assert!(r.is_err());
    }
}
