//! Which cgroup hierarchies this host has, which controller lives where, and where isoprobe may
//! create cgroups: read from /proc/self/mountinfo, /proc/cgroups and /proc/self/cgroup.
//!
//! [`CgroupLayout::from_texts`] is pure over those texts plus two small lookups (a file read and a
//! writability test), so the logic runs against a fake cgroupfs in a temp dir; [`CgroupLayout::detect`]
//! feeds it the real files. This module only reads: it never creates, writes or removes anything.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Context, HarnessError};
use crate::mounts::unescape_mountinfo;

/// cgroup v1 (one hierarchy per mount, controllers bound to it) or v2 (the unified hierarchy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
}

/// The host's overall arrangement (as the fingerprint records it: `v1`, `v2`, `hybrid`, `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutMode {
    /// Only v1 hierarchies with controllers.
    V1,
    /// Only cgroup2.
    V2,
    /// v1 hierarchies with controllers and a cgroup2 mount (systemd's "hybrid").
    Hybrid,
    /// No cgroup filesystem mounted.
    None,
}

impl LayoutMode {
    pub fn name(self) -> &'static str {
        match self {
            LayoutMode::V1 => "v1",
            LayoutMode::V2 => "v2",
            LayoutMode::Hybrid => "hybrid",
            LayoutMode::None => "none",
        }
    }
}

impl fmt::Display for LayoutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of /proc/cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerLine {
    pub name: String,
    /// The v1 hierarchy id; 0 when bound to cgroup2 or to nothing.
    pub hierarchy: u32,
    pub num_cgroups: u64,
    pub enabled: bool,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// v1: the controllers bound to it (`name=…` of a named hierarchy is left out); v2: the
    /// controllers of its root (`cgroup.controllers`).
    pub controllers: Vec<String>,
    /// v1 hierarchy id (from /proc/self/cgroup); 0 for v2.
    pub id: u32,
    /// The name of a named v1 hierarchy (`name=systemd` mounts `systemd`), which binds no
    /// controller.
    pub name: Option<String>,
    pub mount_point: PathBuf,
    /// The mount's root inside the hierarchy (mountinfo field 4).
    pub mount_root: String,
    /// This process's cgroup in the hierarchy (/proc/self/cgroup).
    pub own_path: String,
    /// Where per-case cgroups are created, or why none can be.
    pub parent: Result<PathBuf, String>,
    /// v2: the controllers `parent` enables for its children (its cgroup.subtree_control).
    pub delegated: Vec<String>,
}

/// Where a controller can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On the v1 hierarchy `hierarchies[index]`.
    V1 { index: usize },
    /// On cgroup2 `hierarchies[index]`, enabled for isoprobe's cgroups.
    V2 { index: usize },
    /// Known to the kernel and mounted nowhere in this mount namespace: a v1 hierarchy can be
    /// mounted for it privately.
    Unmounted,
    /// Not usable here; the reason names what is missing.
    Unusable(String),
}

/// The cgroup layout of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    pub hierarchies: Vec<Hierarchy>,
    pub controllers: Vec<ControllerLine>,
}

/// v1 controllers that cgroup2 has no counterpart for.
const V1_ONLY: [&str; 3] = ["net_cls", "net_prio", "devices"];
/// Controllers cgroup2 enables on every cgroup without listing them (`implicit_on_dfl`).
const V2_IMPLICIT: [&str; 1] = ["perf_event"];

/// The v2 name of a controller known by its /proc/cgroups (v1) name.
pub fn v2_name(v1: &str) -> &str {
    match v1 {
        "blkio" => "io",
        "cpuacct" => "cpu",
        other => other,
    }
}

/// Parses /proc/cgroups.
pub fn parse_proc_cgroups(text: &str) -> Vec<ControllerLine> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, h, n, e] => Some(ControllerLine {
                    name: (*name).to_owned(),
                    hierarchy: h.parse().ok()?,
                    num_cgroups: n.parse().ok()?,
                    enabled: *e == "1",
                }),
                _ => None,
            }
        })
        .collect()
}

/// One line of /proc/self/cgroup: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLine {
    pub id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_self_cgroup(text: &str) -> Vec<OwnLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let id = f.next()?.parse().ok()?;
            let controllers = f.next()?.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
            Some(OwnLine { id, controllers, path: f.next()?.to_owned() })
        })
        .collect()
}

/// A cgroup mount from mountinfo: mount point, root, fs type, super options.
fn cgroup_mounts(mountinfo: &str) -> Vec<(PathBuf, String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let mut r = right.split(' ');
            let fs_type = r.next()?;
            if fs_type != "cgroup" && fs_type != "cgroup2" {
                return None;
            }
            let _source = r.next()?;
            let opts = r.next().unwrap_or("");
            Some((
                PathBuf::from(unescape_mountinfo(l.get(4)?)),
                unescape_mountinfo(l.get(3)?),
                fs_type.into(),
                opts.into(),
            ))
        })
        .collect()
}

/// The directory of cgroup `own` under a mount of `mount_root` at `mount_point`, if the mount
/// reaches it.
fn dir_under(mount_point: &Path, mount_root: &str, own: &str) -> Option<PathBuf> {
    let rel = if mount_root == "/" {
        own.trim_start_matches('/')
    } else {
        let rest = own.strip_prefix(mount_root)?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest.trim_start_matches('/')
    };
    Some(if rel.is_empty() { mount_point.to_path_buf() } else { mount_point.join(rel) })
}

/// The host's layout as this process sees it, detected once (on first use) for the life of the
/// process: every case, launcher, teardown, fingerprint and recovery reads its hierarchies from
/// here. (Hierarchies isoprobe mounts privately are in namespaces of their own and never show.)
pub fn host_layout() -> Result<&'static CgroupLayout, HarnessError> {
    static LAYOUT: std::sync::OnceLock<Result<CgroupLayout, String>> = std::sync::OnceLock::new();
    LAYOUT
        .get_or_init(|| CgroupLayout::detect().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| HarnessError::Host(format!("failed to detect the cgroup layout: {e}")))
}

impl CgroupLayout {
    /// The cgroup2 mount's root, if this process may create cgroups right there (the namespace
    /// matrix's per-case cgroups go there, for CLONE_INTO_CGROUP).
    pub fn writable_v2_root(&self) -> Option<PathBuf> {
        let v2 = self.hierarchies.iter().find(|h| h.version == Version::V2)?;
        (v2.parent.as_ref().ok()? == &v2.mount_point).then(|| v2.mount_point.clone())
    }

    /// Reads this process's layout.
    pub fn detect() -> Result<CgroupLayout, HarnessError> {
        let read = |p: &str| fs::read_to_string(p).ctx(|| format!("read {p}"));
        Ok(CgroupLayout::from_texts(
            &read("/proc/self/mountinfo")?,
            &read("/proc/cgroups")?,
            &read("/proc/self/cgroup")?,
            |p| fs::read_to_string(p).ok(),
            |p| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok(),
        ))
    }

    /// The layout the three texts describe; `read` and `writable` look at cgroupfs files.
    pub fn from_texts(
        mountinfo: &str,
        proc_cgroups: &str,
        self_cgroup: &str,
        read: impl Fn(&Path) -> Option<String>,
        writable: impl Fn(&Path) -> bool,
    ) -> CgroupLayout {
        let controllers = parse_proc_cgroups(proc_cgroups);
        let own = parse_self_cgroup(self_cgroup);
        let known: Vec<&str> = controllers.iter().map(|c| c.name.as_str()).collect();
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for (mount_point, mount_root, fs_type, opts) in cgroup_mounts(mountinfo) {
            let h = if fs_type == "cgroup2" {
                let Some(line) = own.iter().find(|l| l.id == 0) else { continue };
                if hierarchies.iter().any(|h| h.version == Version::V2) {
                    continue; // a second mount of the one unified hierarchy
                }
                let Some(own_dir) = dir_under(&mount_point, &mount_root, &line.path) else { continue };
                let words = |p: &Path| {
                    read(p).map(|t| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>()).unwrap_or_default()
                };
                let root_controllers = words(&mount_point.join("cgroup.controllers"));
                // A cgroup with processes cannot pass controllers to children (the "no internal
                // processes" rule), so isoprobe's cgroups go under the mount's root when it may write
                // there (root on the host), else under its own cgroup (a delegated subtree).
                let parent = if writable(&mount_point) {
                    Ok(mount_point.clone())
                } else if writable(&own_dir) {
                    Ok(own_dir.clone())
                } else {
                    Err(format!("neither {} nor {} is writable", mount_point.display(), own_dir.display()))
                };
                let delegated = parent.as_ref().map(|p| words(&p.join("cgroup.subtree_control"))).unwrap_or_default();
                Hierarchy {
                    version: Version::V2,
                    controllers: root_controllers,
                    id: 0,
                    name: None,
                    mount_point,
                    mount_root,
                    own_path: line.path.clone(),
                    parent,
                    delegated,
                }
            } else {
                let bound: Vec<String> = opts.split(',').filter(|o| known.contains(o)).map(str::to_owned).collect();
                let name = opts.split(',').find_map(|o| o.strip_prefix("name="));
                let Some(line) = own.iter().find(|l| {
                    l.id != 0
                        && match name {
                            Some(n) => l.controllers.iter().any(|c| c == &format!("name={n}")),
                            None => !bound.is_empty() && bound.iter().all(|b| l.controllers.contains(b)),
                        }
                }) else {
                    continue;
                };
                if hierarchies.iter().any(|h| h.version == Version::V1 && h.id == line.id) {
                    continue; // a second mount of a hierarchy already seen
                }
                let parent = match dir_under(&mount_point, &mount_root, &line.path) {
                    Some(d) if writable(&d) => Ok(d),
                    Some(d) => Err(format!("{} is not writable", d.display())),
                    None => Err(format!(
                        "the mount at {} (root {mount_root}) does not reach this process's cgroup {}",
                        mount_point.display(),
                        line.path
                    )),
                };
                Hierarchy {
                    version: Version::V1,
                    controllers: bound,
                    id: line.id,
                    name: name.map(str::to_owned),
                    mount_point,
                    mount_root,
                    own_path: line.path.clone(),
                    parent,
                    delegated: Vec::new(),
                }
            };
            hierarchies.push(h);
        }
        CgroupLayout { hierarchies, controllers }
    }

    pub fn mode(&self) -> LayoutMode {
        let v1 = self.hierarchies.iter().any(|h| h.version == Version::V1 && !h.controllers.is_empty());
        let v2 = self.hierarchies.iter().any(|h| h.version == Version::V2);
        match (v1, v2) {
            (true, true) => LayoutMode::Hybrid,
            (true, false) => LayoutMode::V1,
            (false, true) => LayoutMode::V2,
            (false, false) => LayoutMode::None,
        }
    }

    /// The unified hierarchy, if mounted.
    pub fn v2(&self) -> Option<(usize, &Hierarchy)> {
        self.hierarchies.iter().enumerate().find(|(_, h)| h.version == Version::V2)
    }

    /// Where `controller` (its /proc/cgroups name) can be used by isoprobe's cgroups.
    pub fn placement(&self, controller: &str) -> Placement {
        let Some(line) = self.controllers.iter().find(|c| c.name == controller) else {
            return Placement::Unusable(format!("the kernel has no {controller} controller (not in /proc/cgroups)"));
        };
        if !line.enabled {
            return Placement::Unusable(format!("the {controller} controller is disabled (/proc/cgroups says 0)"));
        }
        if let Some((index, h)) = self
            .hierarchies
            .iter()
            .enumerate()
            .find(|(_, h)| h.version == Version::V1 && h.controllers.iter().any(|c| c == controller))
        {
            return match &h.parent {
                Ok(_) => Placement::V1 { index },
                Err(why) => Placement::Unusable(format!("{controller} is on {}, but {why}", h.mount_point.display())),
            };
        }
        if line.hierarchy != 0 {
            // Bound to a v1 hierarchy that is mounted in some other mount namespace.
            return Placement::Unmounted;
        }
        let v2 = v2_name(controller);
        if let Some((index, h)) = self.v2() {
            if V2_IMPLICIT.contains(&controller) {
                return match &h.parent {
                    Ok(_) => Placement::V2 { index },
                    Err(why) => Placement::Unusable(format!("{controller} is implicit on cgroup2, but {why}")),
                };
            }
            if h.controllers.iter().any(|c| c == v2) {
                return match &h.parent {
                    Ok(p) if h.delegated.iter().any(|c| c == v2) => {
                        let _ = p;
                        Placement::V2 { index }
                    }
                    Ok(p) => Placement::Unusable(format!(
                        "{v2} is on cgroup2 but not enabled in {}/cgroup.subtree_control (isoprobe never writes \
                         a cgroup it did not create)",
                        p.display()
                    )),
                    Err(why) => Placement::Unusable(format!("{v2} is on cgroup2, but {why}")),
                };
            }
        }
        if V1_ONLY.contains(&controller) || self.v2().is_none() {
            return Placement::Unmounted;
        }
        Placement::Unusable(format!("{controller} is bound to cgroup2 but missing from its cgroup.controllers"))
    }

    /// Every hierarchy a case joins: cgroup2 and each v1 hierarchy with controllers, where isoprobe
    /// may create cgroups.
    pub fn joinable(&self) -> impl Iterator<Item = (usize, &Hierarchy)> {
        self.hierarchies
            .iter()
            .enumerate()
            .filter(|(_, h)| h.parent.is_ok() && (h.version == Version::V2 || !h.controllers.is_empty()))
    }

    /// Human summary: `hybrid: v1 cpu@/sys/fs/cgroup/cpu …; v2 hugetlb@/sys/fs/cgroup/unified`.
    pub fn describe(&self) -> String {
        let hs: Vec<String> = self
            .hierarchies
            .iter()
            .map(|h| {
                let v = if h.version == Version::V1 { "v1" } else { "v2" };
                format!("{v} {}@{}", h.controllers.join(","), h.mount_point.display())
            })
            .collect();
        format!("{}: {}", self.mode(), hs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This development machine, as its files read.
    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PROC_CGROUPS: &str = "\
#subsys_name\thierarchy\tnum_cgroups\tenabled
cpu\t1\t1\t1
cpuacct\t2\t1\t1
memory\t4\t29\t1
net_cls\t0\t1\t1
perf_event\t0\t1\t1
hugetlb\t0\t1\t1
pids\t8\t1\t1
rdma\t0\t1\t0
";
    const SELF_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    fn hybrid() -> CgroupLayout {
        CgroupLayout::from_texts(
            MOUNTINFO,
            PROC_CGROUPS,
            SELF_CGROUP,
            |p| (p == Path::new("/sys/fs/cgroup/unified/cgroup.controllers")).then(|| "hugetlb\n".into()),
            |_| true,
        )
    }

    #[test]
    fn this_machine_reads_as_hybrid() {
        let l = hybrid();
        assert_eq!(l.mode(), LayoutMode::Hybrid);
        assert_eq!(l.placement("cpu"), Placement::V1 { index: 0 });
        let mem = &l.hierarchies[2];
        assert_eq!(mem.parent, Ok(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")));
        assert_eq!(l.placement("net_cls"), Placement::Unmounted);
        assert_eq!(l.placement("perf_event"), Placement::V2 { index: 5 });
        assert!(
            matches!(l.placement("hugetlb"), Placement::Unusable(r) if r.contains("subtree_control")),
            "{:?}",
            l.placement("hugetlb")
        );
        assert!(matches!(l.placement("rdma"), Placement::Unusable(r) if r.contains("disabled")));
        assert!(matches!(l.placement("misc"), Placement::Unusable(r) if r.contains("no misc")));
        // The named systemd hierarchy has no controllers: cases do not join it.
        assert_eq!(l.joinable().count(), 5);
    }

    #[test]
    fn a_bind_mount_of_a_subtree_resolves_or_is_refused() {
        assert_eq!(dir_under(Path::new("/m"), "/docker/x", "/docker/x/y"), Some(PathBuf::from("/m/y")));
        assert_eq!(dir_under(Path::new("/m"), "/docker/x", "/docker/x"), Some(PathBuf::from("/m")));
        assert_eq!(dir_under(Path::new("/m"), "/docker/x", "/docker/xy"), None);
        assert_eq!(dir_under(Path::new("/m"), "/docker/x", "/other"), None);
    }
}
