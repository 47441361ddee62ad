//! The cgroups of one limit case, across every hierarchy: created before the container starts,
//! attached before the probe runs, read and frozen on the host's behalf, removed in every outcome.
//!
//! A case joins cgroup2 and every v1 hierarchy with controllers (as a container runtime does), so
//! its counters are there to read in the control run too; controllers mounted nowhere join only
//! when a setting needs them, through a [`PrivateHierarchy`]. A case may ask for a *sibling*
//! cgroup beside its own (the competitor of a weight test).
//!
//! Removal drains first (see [`super::remove`]: on v2 through cgroup.kill; on v1 by killing only
//! the processes listed in this case's own cgroup.procs, through a pidfd, after checking
//! `/proc/<pid>/cgroup` still names this cgroup). It never touches, moves into or removes a cgroup it did not create, with one
//! exception: a case whose container tool creates and limits the case's cgroup itself (LXC's
//! `lxc.cgroup.*` keys) *adopts* that cgroup, which isoprobe named, to read and freeze it; the
//! tool's teardown removes it.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isoprobe_probes::wire::CgroupReading;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::dir::CgroupDir;
use super::layout::{CgroupLayout, Placement, Version};
use super::private::PrivateHierarchy;
use super::remove::Doomed;
use super::table::{Setting, controllers};
use super::{v1, v2};
use crate::error::{Context, HarnessError};

/// How long removal waits for exited tasks to leave before it kills what is left, and then for
/// the killed ones to go.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// How long adoption waits for a tool's own processes in its cgroup to exit or sleep.
const TOOL_REST_WAIT: Duration = Duration::from_millis(500);

/// One hierarchy's share of a case.
#[derive(Debug)]
struct Member {
    version: Version,
    /// v1: the controllers bound to the hierarchy; v2: those enabled for isoprobe's cgroups.
    controllers: Vec<String>,
    /// The v1 hierarchy id (0 for v2 and for private hierarchies, which /proc/<pid>/cgroup does
    /// show, but under an id isoprobe does not track).
    id: u32,
    main: CgroupDir,
    sibling: Option<CgroupDir>,
    /// `main` is a container tool's cgroup that isoprobe only reads (see [`CaseCgroups::adopt`]):
    /// the tool removes it, never isoprobe.
    adopted: bool,
}

/// What a case asks for.
#[derive(Debug, Clone, Default)]
pub struct CgroupRequest {
    /// `isoprobe-<run token>-<case>`.
    pub name: String,
    pub settings: Vec<Setting>,
    /// Settings of a sibling cgroup, created when present.
    pub sibling: Option<Vec<Setting>>,
    /// Controllers (by /proc/cgroups name) the case needs even without a setting (perf_event).
    pub extra: Vec<String>,
}

/// The cgroups of one case.
#[derive(Debug)]
pub struct CaseCgroups {
    name: String,
    members: Vec<Member>,
    /// Dropped after the members: their cgroups must be gone before a private unmount.
    private: Vec<PrivateHierarchy>,
    /// The probe's own CPU time read right after its attach through cgroup.procs: an upper bound
    /// of what it spent before, which the cgroups it joined then did not see.
    attached_after_ns: std::sync::Mutex<Option<u64>>,
    /// An adopted set's probe (host pid) and what the tool's own processes had cost the cgroup
    /// when it was adopted (see [`ToolShare`]).
    probe: Option<(Pid, ToolShare)>,
}

/// The CPU time a container tool's own processes were charged in the cgroup it made, taken when
/// the set is adopted (the probe then waits for its hello, and the tool's init waits for it):
/// `charged_ns` = the cgroup's usage less the probe's runtime (the probe was forked inside, so
/// all of its runtime is charged there) — the tool's setup processes that already exited (runc's
/// init stages) and its init so far; `runtimes` = each other live process's runtime then, so that
/// a read adds only what they ran since.
#[derive(Debug, Default)]
struct ToolShare {
    charged_ns: u64,
    runtimes: Vec<(i32, u64)>,
}

/// The controller of `key` a hierarchy of `version` implements it with; `None`: that version has
/// no file for it.
fn controller_for(key: &str, version: Version) -> Result<Option<&'static str>, HarnessError> {
    let (v1c, v2c) = controllers(key).map_err(|e| HarnessError::Cgroup(e.to_string()))?;
    Ok(match version {
        Version::V1 => Some(v1c),
        Version::V2 => v2c,
    })
}

/// Where a controller is used: a hierarchy the case joined already, or one to mount privately.
enum Target {
    Joined,
    Private(String),
}

impl CaseCgroups {
    /// A set with no member yet, named `name`.
    fn empty(name: &str) -> CaseCgroups {
        CaseCgroups {
            name: name.to_owned(),
            members: Vec::new(),
            private: Vec::new(),
            attached_after_ns: std::sync::Mutex::new(None),
            probe: None,
        }
    }

    /// Creates the case's cgroups and writes its settings. A partly built set is removed on error.
    pub fn create(layout: &CgroupLayout, req: &CgroupRequest) -> Result<CaseCgroups, HarnessError> {
        let mut set = CaseCgroups::empty(&req.name);
        // Which layout hierarchy each member came from.
        let mut from: Vec<usize> = Vec::new();
        for (index, h) in layout.joinable() {
            let parent_path = h.parent.as_ref().expect("joinable hierarchies have a parent").clone();
            let parent = open(&parent_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("open {}", parent_path.display()))?;
            let controllers = match h.version {
                Version::V1 => h.controllers.clone(),
                Version::V2 => h.delegated.clone(),
            };
            set.add_member(h.version, controllers, h.id, Arc::new(parent), &parent_path, req.sibling.is_some())?;
            from.push(index);
        }
        // Place every setting and extra controller.
        let mut needs: Vec<(String, Option<&Setting>)> = req.extra.iter().map(|c| (c.clone(), None)).collect();
        for s in &req.settings {
            let (v1c, _) = controllers(&s.key).map_err(|e| HarnessError::Cgroup(e.to_string()))?;
            needs.push((v1c.to_owned(), Some(s)));
        }
        for (controller, setting) in &needs {
            let target = match layout.placement(controller) {
                Placement::V1 { index } | Placement::V2 { index } if from.contains(&index) => Target::Joined,
                Placement::V1 { .. } | Placement::V2 { .. } => {
                    return Err(HarnessError::Cgroup(format!("the hierarchy of {controller} is not writable here")));
                }
                // cgroup2 freezes every cgroup with a core file, no controller needed.
                Placement::Unusable(_)
                    if controller == "freezer" && layout.v2().is_some_and(|(_, h)| h.parent.is_ok()) =>
                {
                    Target::Joined
                }
                Placement::Unmounted => Target::Private(controller.clone()),
                Placement::Unusable(why) => {
                    let what = setting.map(|s| s.key.clone()).unwrap_or_else(|| controller.clone());
                    return Err(HarnessError::Cgroup(format!("{what} cannot be set here: {why}")));
                }
            };
            if let Target::Private(c) = target
                && !set.private.iter().any(|p| p.controller == c)
            {
                let p = PrivateHierarchy::mount(&c)?;
                let root = p.root();
                set.private.push(p);
                let shown = PathBuf::from(format!("{c}:(private)"));
                set.add_member(Version::V1, vec![c.clone()], 0, root, &shown, req.sibling.is_some())?;
            }
        }
        for m in &set.members {
            let apply = |dir: &CgroupDir, settings: &[Setting]| match m.version {
                Version::V1 => v1::apply(&m.controllers, dir, settings),
                Version::V2 => v2::apply(&m.controllers, dir, settings),
            };
            apply(&m.main, &req.settings)?;
            if let (Some(sib), Some(settings)) = (&m.sibling, &req.sibling) {
                apply(sib, settings)?;
            }
        }
        // Every setting must have landed somewhere: a v2 hierarchy without the controller skips it.
        for s in &req.settings {
            let landed = set.members.iter().any(|m| {
                controller_for(&s.key, m.version).ok().flatten().is_some_and(|c| m.controllers.iter().any(|mc| mc == c))
            });
            if !landed {
                return Err(HarnessError::Cgroup(format!("no hierarchy here takes {} ({})", s.key, layout.describe())));
            }
        }
        Ok(set)
    }

    fn add_member(
        &mut self,
        version: Version,
        controllers: Vec<String>,
        id: u32,
        parent: Arc<OwnedFd>,
        parent_shown: &Path,
        sibling: bool,
    ) -> Result<(), HarnessError> {
        let main = CgroupDir::create(Arc::clone(&parent), parent_shown, &self.name)?;
        if version == Version::V1 {
            // From here the member owns `main`; a failure below removes it with the rest.
            self.members.push(Member { version, controllers, id, main, sibling: None, adopted: false });
            let m = self.members.last_mut().expect("just pushed");
            v1::prepare(&m.controllers, &m.main)?;
            if sibling {
                m.sibling = Some(CgroupDir::create(parent, parent_shown, &format!("{}-sib", self.name))?);
                v1::prepare(&m.controllers, m.sibling.as_ref().expect("just set"))?;
            }
        } else {
            self.members.push(Member { version, controllers, id, main, sibling: None, adopted: false });
            if sibling {
                let sib = CgroupDir::create(parent, parent_shown, &format!("{}-sib", self.name))?;
                self.members.last_mut().expect("just pushed").sibling = Some(sib);
            }
        }
        Ok(())
    }

    /// The cgroups of a case whose launcher had a container tool create the case's cgroup and
    /// write its settings (`lxc.cgroup.*`): isoprobe writes none of `req.settings`. The tool's
    /// cgroup is found where the kernel says the probe `pid` is (`/proc/<pid>/cgroup`), on every
    /// hierarchy a native case joins (cgroup2 only if the tool uses it: `cgroup2`), and must be
    /// named `leaf` there (the name the tool was told);
    /// the case reads its counters, freezes it and counts it from there, and never removes it.
    /// A sibling (`req.sibling`) is isoprobe's own, made beside the tool's cgroup with its settings.
    pub fn adopt(
        layout: &CgroupLayout,
        req: &CgroupRequest,
        pid: Pid,
        leaf: &str,
        cgroup2: bool,
    ) -> Result<CaseCgroups, HarnessError> {
        let own =
            isoprobe_probes::text::read(format!("/proc/{pid}/cgroup")).ctx(|| format!("read /proc/{pid}/cgroup"))?;
        let lines = super::layout::parse_self_cgroup(&own);
        let mut set = CaseCgroups::empty(&req.name);
        for (_, h) in layout.joinable().filter(|(_, h)| cgroup2 || h.version == Version::V1) {
            let line = lines.iter().find(|l| match h.version {
                Version::V1 => l.id == h.id,
                Version::V2 => l.id == 0 && l.controllers.is_empty(),
            });
            let Some(line) = line else {
                return Err(HarnessError::Cgroup(format!(
                    "the probe (pid {pid}) has no cgroup on {} (/proc/{pid}/cgroup: {})",
                    h.mount_point.display(),
                    own.trim().replace('\n', "; ")
                )));
            };
            let rel = line.path.strip_prefix(h.mount_root.trim_end_matches('/')).unwrap_or(&line.path);
            let path = h.mount_point.join(rel.trim_start_matches('/'));
            if path.file_name().and_then(|n| n.to_str()) != Some(leaf) {
                return Err(HarnessError::Cgroup(format!(
                    "the probe runs in cgroup {}, not in the cgroup {leaf} its launcher was told to create",
                    path.display()
                )));
            }
            let parent_path = path.parent().expect("a cgroup below a mount point has a parent").to_path_buf();
            let parent = open(&parent_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("open {}", parent_path.display()))?;
            let parent = Arc::new(parent);
            let controllers = match h.version {
                Version::V1 => h.controllers.clone(),
                // The controllers the tool's cgroup has: those its parent enables.
                Version::V2 => super::dir::read_at(std::os::fd::AsFd::as_fd(&*parent), "cgroup.subtree_control")
                    .ctx(|| format!("read {}/cgroup.subtree_control", parent_path.display()))?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            };
            let main = CgroupDir::open(Arc::clone(&parent), &parent_path, leaf)?;
            set.members.push(Member { version: h.version, controllers, id: h.id, main, sibling: None, adopted: true });
            if let Some(settings) = &req.sibling {
                let m = set.members.last_mut().expect("just pushed");
                let sib = CgroupDir::create(parent, &parent_path, &format!("{}-sib", req.name))?;
                // Owned from here: an error below removes it with the rest.
                m.sibling = Some(sib);
                let sib = m.sibling.as_ref().expect("just set");
                match m.version {
                    Version::V1 => {
                        v1::prepare(&m.controllers, sib)?;
                        v1::apply(&m.controllers, sib, settings)?;
                    }
                    Version::V2 => v2::apply(&m.controllers, sib, settings)?,
                }
            }
        }
        set.wait_for_cgroup_at_rest();
        let base = set.read();
        let probe_ran = runtime_ns(pid.as_raw()).unwrap_or(0);
        let usage = [base.cpu_usage_ns, base.v2_usage_ns].into_iter().flatten().max().unwrap_or(0);
        let runtimes = set
            .procs()?
            .into_iter()
            .filter(|&p| !descends_from(p, pid))
            .filter_map(|p| Some((p, runtime_ns(p)?)))
            .collect();
        // The probe's runtime the cgroup did not see (a tool that places the process after it
        // started, as crun does) plays the part of a native attach's.
        *set.attached_after_ns.lock().unwrap_or_else(|e| e.into_inner()) = Some(probe_ran.saturating_sub(usage));
        set.probe = Some((pid, ToolShare { charged_ns: usage.saturating_sub(probe_ran), runtimes }));
        Ok(set)
    }

    /// Waits (at most [`TOOL_REST_WAIT`]) until every process of the tool's cgroup sleeps: the
    /// tool's setup processes that run there (runc's init stages) are gone, so what they cost is
    /// all in the usage read next; its init (lxc-init) waits for the probe; and the probe waits
    /// for its hello, so that the usage and the probe's runtime read next are one snapshot.
    /// (Taken while the probe still ran after its exec, the runtime read second outgrew the usage
    /// read first: the tool's share then came out as 0 and the probe as "attached" late, and the
    /// probe's usage check failed by the share, 0.35–0.84 ms, in the launcher suite.)
    fn wait_for_cgroup_at_rest(&self) {
        let deadline = Instant::now() + TOOL_REST_WAIT;
        while Instant::now() < deadline {
            let Ok(procs) = self.procs() else { return };
            let busy = procs.into_iter().any(|p| {
                // The state is the first field after the comm, which ends at the last ')'.
                let stat = isoprobe_probes::text::read(format!("/proc/{p}/stat")).unwrap_or_default();
                stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) != Some("S")
            });
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cgroup2 directory to start the probe in with CLONE_INTO_CGROUP.
    pub fn v2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.members.iter().find(|m| m.version == Version::V2).map(|m| m.main.fd())
    }

    /// Writes `pid` to cgroup.procs of every member but those the clone already placed it in:
    /// the v1 attach, between clone and the child's GO.
    pub fn attach(&self, pid: Pid, cloned_into_v2: bool) -> Result<(), HarnessError> {
        for m in &self.members {
            if m.version == Version::V2 && cloned_into_v2 {
                continue;
            }
            m.main.write("cgroup.procs", &pid.to_string())?;
        }
        // The first field of /proc/<pid>/schedstat is the task's runtime in nanoseconds (absent
        // without CONFIG_SCHED_INFO: then the reading has no such bound).
        let ran = isoprobe_probes::text::read(format!("/proc/{pid}/schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()));
        *self.attached_after_ns.lock().unwrap_or_else(|e| e.into_inner()) = ran;
        Ok(())
    }

    /// The counters of every member's own cgroup.
    pub fn read(&self) -> CgroupReading {
        let mut r = CgroupReading::default();
        for m in &self.members {
            match m.version {
                Version::V1 => v1::read(&m.controllers, &m.main, &mut r),
                Version::V2 => v2::read(&m.controllers, &m.main, &mut r),
            }
        }
        r.attached_after_ns = *self.attached_after_ns.lock().unwrap_or_else(|e| e.into_inner());
        r.steal_ns = steal_ns();
        if let (Some((probe, share)), Ok(procs)) = (&self.probe, self.procs()) {
            let since: u64 = procs
                .into_iter()
                .filter(|&p| !descends_from(p, *probe))
                .filter_map(|p| {
                    let then = share.runtimes.iter().find(|(q, _)| *q == p).map_or(0, |(_, t)| *t);
                    Some(runtime_ns(p)?.saturating_sub(then))
                })
                .sum();
            r.others_ns = Some(share.charged_ns + since);
        }
        r
    }

    /// The member that freezes: the v1 freezer hierarchy, else cgroup2 (core).
    fn freezer(&self) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.version == Version::V1 && m.controllers.iter().any(|c| c == "freezer"))
            .or_else(|| self.members.iter().find(|m| m.version == Version::V2))
    }

    /// Freezes or thaws the case's cgroup; returns whether the kernel confirmed it.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), HarnessError> {
        let m = self.freezer().ok_or_else(|| HarnessError::Cgroup("no hierarchy here can freeze".into()))?;
        match m.version {
            Version::V1 => v1::set_frozen(&m.main, frozen),
            Version::V2 => v2::set_frozen(&m.main, frozen),
        }
    }

    /// Whether the freezing hierarchy is v1 (for reports).
    pub fn freezer_version(&self) -> Option<Version> {
        self.freezer().map(|m| m.version)
    }

    /// The member whose cgroup.procs lists every process in it: cgroup2's, where a read walks the
    /// tasks as they are. A v1 read copies the tasks into an array sized by the count taken just
    /// before and drops what does not fit (kernel/cgroup/cgroup-v1.c, pidlist_array_load), so
    /// while the case's processes fork a v1 listing can miss one that is there (seen: a looper of
    /// the freeze-group control missing from its v1 cpuacct sibling's cgroup.procs).
    fn listing(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.version == Version::V2).or_else(|| self.members.first())
    }

    /// Moves `pid` (a host pid) into the sibling cgroup of every member that has one, after
    /// checking it is in this case's own cgroup: only the case's processes move, and only
    /// between the case's cgroups.
    pub fn move_to_sibling(&self, pid: i32) -> Result<(), HarnessError> {
        let Some(m) = self.listing().filter(|m| m.sibling.is_some()) else {
            return Err(HarnessError::Cgroup(format!("the case has no sibling to move {pid} to")));
        };
        if !m.main.procs()?.contains(&pid) {
            return Err(HarnessError::Cgroup(format!("process {pid} is not in {}", m.main.shown().display())));
        }
        for m in &self.members {
            if let Some(sib) = &m.sibling {
                sib.write("cgroup.procs", &pid.to_string())?;
            }
        }
        Ok(())
    }

    /// Moves `pid` (a host pid) from the sibling back into the case's own cgroup of every member
    /// that has a sibling, after checking it is in the sibling.
    pub fn move_to_case(&self, pid: i32) -> Result<(), HarnessError> {
        let Some(sib) = self.listing().and_then(|m| m.sibling.as_ref()) else {
            return Err(HarnessError::Cgroup(format!("the case has no sibling to move {pid} from")));
        };
        if !sib.procs()?.contains(&pid) {
            return Err(HarnessError::Cgroup(format!("process {pid} is not in {}", sib.shown().display())));
        }
        for m in self.members.iter().filter(|m| m.sibling.is_some()) {
            m.main.write("cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// The sibling's cgroup2 directory (cgroup.kill, cgroup.freeze and cgroup.events are core
    /// files there), when the case has a sibling and a cgroup2 member.
    pub fn v2_sibling(&self) -> Option<&CgroupDir> {
        self.members.iter().find(|m| m.version == Version::V2).and_then(|m| m.sibling.as_ref())
    }

    /// The cgroup2 member's own cgroup and its sibling (host paths).
    pub fn v2_paths(&self) -> Option<(&Path, Option<&Path>)> {
        let m = self.members.iter().find(|m| m.version == Version::V2)?;
        Some((m.main.shown(), m.sibling.as_ref().map(CgroupDir::shown)))
    }

    /// The case's cgroup (or its sibling) on cgroup2, if `controller` is enabled there.
    pub fn v2_controller_dir(&self, controller: &str, sibling: bool) -> Option<&CgroupDir> {
        let m =
            self.members.iter().find(|m| m.version == Version::V2 && m.controllers.iter().any(|c| c == controller))?;
        if sibling { m.sibling.as_ref() } else { Some(&m.main) }
    }

    /// The processes in the sibling cgroup (host pids), as [`CaseCgroups::procs`].
    pub fn sibling_procs(&self) -> Result<Vec<i32>, HarnessError> {
        match self.listing().and_then(|m| m.sibling.as_ref()) {
            Some(s) => s.procs(),
            None => Ok(Vec::new()),
        }
    }

    /// The processes in the case's own cgroup (host pids), read from its cgroup2 member, else
    /// its first (see `listing`).
    pub fn procs(&self) -> Result<Vec<i32>, HarnessError> {
        match self.listing() {
            Some(m) => m.main.procs(),
            None => Ok(Vec::new()),
        }
    }

    /// The directory fd of the case's cgroup (or its sibling) in the hierarchy of `controller`.
    pub fn dir_of(&self, controller: &str, sibling: bool) -> Option<BorrowedFd<'_>> {
        let m = self.members.iter().find(|m| m.controllers.iter().any(|c| c == controller)).or_else(|| {
            // Implicit cgroup2 controllers (perf_event) are on every cgroup2 cgroup.
            (controller == "perf_event").then(|| self.members.iter().find(|m| m.version == Version::V2)).flatten()
        })?;
        if sibling { m.sibling.as_ref().map(|s| s.fd()) } else { Some(m.main.fd()) }
    }

    /// Host paths of the members' own cgroups (private ones shown as such), for reports.
    pub fn shown(&self) -> Vec<PathBuf> {
        self.members.iter().map(|m| m.main.shown().to_path_buf()).collect()
    }

    /// Removes every cgroup, draining each first; returns what went wrong.
    pub fn remove(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // Thaw first: frozen tasks cannot die.
        if let Some(m) = self.freezer() {
            let frozen = match m.version {
                Version::V1 => v1::is_frozen(&m.main),
                Version::V2 => v2::is_frozen(&m.main),
            };
            if frozen && let Err(e) = self.set_frozen(false) {
                problems.push(e.to_string());
            }
        }
        for m in self.members.drain(..).rev() {
            // A cgroup2 case's processes may have made children in their own cgroup (the rule
            // cases do; the kernel lets a delegatee do it), and a memory protection case's
            // sibling has children.
            let own = (!m.adopted).then_some(&m.main);
            for dir in m.sibling.iter().chain(own).filter(|d| m.version == Version::V2 && d.shown().is_absolute()) {
                problems.extend(super::remove::remove_below(dir.shown(), m.version, m.id, DRAIN_WAIT));
            }
            let main = (!m.adopted).then_some(&m.main);
            for dir in m.sibling.iter().chain(main) {
                if let Err(e) = drain_and_remove(m.version, m.id, dir) {
                    problems.push(e.to_string());
                }
            }
        }
        // Private hierarchies unmount on drop, after waiting for their cgroups to be released.
        self.private.clear();
        problems
    }
}

impl Drop for CaseCgroups {
    fn drop(&mut self) {
        for p in self.remove() {
            eprintln!("isoprobe: {p}");
        }
    }
}

/// Whether `pid` is `ancestor` or one of its descendants (through the parent pids in
/// /proc/<pid>/stat; a process that is gone counts as not descending).
fn descends_from(pid: i32, ancestor: Pid) -> bool {
    let mut cur = pid;
    for _ in 0..64 {
        if cur == ancestor.as_raw() {
            return true;
        }
        let Ok(stat) = isoprobe_probes::text::read(format!("/proc/{cur}/stat")) else { return false };
        // The parent pid is the second field after the comm, which ends at the last ')'.
        let ppid = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<i32>().ok());
        match ppid {
            Some(p) if p > 0 => cur = p,
            _ => return false,
        }
    }
    false
}

/// A task's time on a CPU in nanoseconds: the first field of /proc/<pid>/schedstat (the
/// scheduler's sum_exec_runtime, the clock cgroup CPU usage is charged from).
fn runtime_ns(pid: i32) -> Option<u64> {
    isoprobe_probes::text::read(format!("/proc/{pid}/schedstat")).ok()?.split_whitespace().next()?.parse().ok()
}

/// The hypervisor's steal time over every CPU in nanoseconds: the eighth value of /proc/stat's
/// `cpu` line, in clock ticks (USER_HZ). None where the line has no such column.
fn steal_ns() -> Option<u64> {
    let stat = isoprobe_probes::text::read("/proc/stat").ok()?;
    parse_steal_ns(&stat, nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??)
}

fn parse_steal_ns(stat: &str, ticks_per_sec: i64) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(ticks * 1_000_000_000 / u64::try_from(ticks_per_sec).ok().filter(|&t| t > 0)?)
}

/// rmdir with the drain (see [`super::remove`]).
fn drain_and_remove(version: Version, id: u32, dir: &CgroupDir) -> Result<(), HarnessError> {
    let d = Doomed { parent: dir.parent_fd(), name: dir.name(), shown: dir.shown(), version, v1_id: id };
    super::remove::drain_and_remove(d, DRAIN_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn steal_is_the_eighth_value_of_the_cpu_line_in_ticks() {
        let stat = "cpu  983628 80778 100613 308116 16713 0 7105 4767 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_steal_ns(stat, 100), Some(47_670_000_000));
        assert_eq!(parse_steal_ns("cpu  1 2 3 4 5 6 7\n", 100), None, "no steal column");
        assert_eq!(parse_steal_ns(stat, 0), None);
        // This host's own /proc/stat has the column (Linux 2.6.11 and later).
        assert!(steal_ns().is_some());
    }

    /// A cgroup2-only host whose cgroupfs is a temp dir: the case's cgroup and its sibling are
    /// made under the mount root, a v1-only knob is refused with the reason, and dropping the set
    /// removes every directory it made.
    #[test]
    fn a_v2_case_is_created_and_removed_on_a_fake_cgroupfs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        let mountinfo = format!("41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let layout = CgroupLayout::from_texts(
            &mountinfo,
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t1\nnet_prio\t0\t1\t1\n",
            "0::/\n",
            |p| fs::read_to_string(p).ok(),
            |_| true,
        );
        assert_eq!(layout.mode(), crate::cgroup::LayoutMode::V2);
        let req = CgroupRequest { name: "isoprobe-test-1".into(), sibling: Some(Vec::new()), ..Default::default() };
        let set = CaseCgroups::create(&layout, &req).unwrap();
        assert!(root.join("isoprobe-test-1").is_dir());
        assert!(root.join("isoprobe-test-1-sib").is_dir());
        assert!(set.v2_dir().is_some());
        drop(set);
        assert!(!root.join("isoprobe-test-1").exists());
        assert!(!root.join("isoprobe-test-1-sib").exists());

        // cpu is on cgroup2 but not delegated: the setting is refused before anything is made.
        let req = CgroupRequest {
            name: "isoprobe-test-2".into(),
            settings: vec![Setting::new("cpu.max", "20000 100000")],
            ..Default::default()
        };
        let e = CaseCgroups::create(&layout, &req).unwrap_err().to_string();
        assert!(e.contains("cpu.max"), "{e}");
        assert!(!root.join("isoprobe-test-2").exists());
    }
}
