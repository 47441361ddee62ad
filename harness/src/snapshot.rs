//! A snapshot of the host state isoprobe promises to leave as it found it, and the difference
//! between two snapshots.
//!
//! Covered: hostname, NIS domainname, the namespaced sysctls a probe may write (every entry the
//! sysctl table gives a namespace kind here, but `kernel/ns_last_pid`, which every fork moves), the mount table, SysV IPC objects, network links, cgroup
//! directories named isoprobe*, the hierarchy/enabled columns of /proc/cgroups, /tmp entries named
//! isoprobe*, the type, mode, owner and device number of the standard nodes in /dev (container
//! tools bind-mount, create or chmod those for their containers; a tool that reaches the host's
//! node instead changes it for every program on the machine), processes that are isoprobe
//! probes or children of this process, loop devices backed by isoprobe's files, and the
//! container tools' own bookkeeping (directories under /run, cgroups they name themselves). POSIX message
//! queues are not listable without mounting an mqueue filesystem; the cases remove theirs by name.
//!
//! What is compared in full and what only by isoprobe's names is a choice about noise: the mount
//! table, IPC objects and links change only when something is wrong on a test machine, while /tmp,
//! processes and the cgroup counts of /proc/cgroups change whenever anything runs.
//!
//! The comparison assumes no other isoprobe run works on the machine meanwhile (as in CI): another
//! run's cgroups, IPC objects and probes would show as differences, and SysV objects carry no run
//! token to tell them apart.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use isoprobe_probes::sys::netlink_links;

use crate::names::PREFIX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSnapshot {
    pub hostname: String,
    pub domainname: String,
    /// `path = value` of the namespaced sysctls (see [`crate::sysctl::host_values`]).
    pub sysctls: BTreeSet<String>,
    pub mounts: BTreeSet<String>,
    pub sysv: BTreeSet<String>,
    pub links: BTreeSet<String>,
    pub cgroups: BTreeSet<PathBuf>,
    pub proc_cgroups: BTreeSet<String>,
    pub tmp: BTreeSet<String>,
    pub dev_nodes: BTreeSet<String>,
    pub processes: BTreeSet<String>,
    /// Loop devices backed by a file in an isoprobe directory (a limit case's io.max device).
    pub loop_devices: BTreeSet<String>,
    /// iocost set up on any device in the cgroup2 root's io.cost.qos and io.cost.model (an
    /// io.weight case's loop device, which it must put back: see `cgroup::iocost::state`).
    pub iocost: BTreeSet<String>,
    /// The container tools' own bookkeeping outside isoprobe's names: directories under /run and
    /// the cgroups tools name themselves, in the top two levels of every hierarchy.
    pub tool_state: BTreeSet<String>,
}

/// The device nodes every container tool provides in a container's /dev (the OCI runtime spec's
/// default devices, LXC's autodev list, systemd-nspawn's), and /dev/ptmx.
const DEV_NODES: [&str; 7] =
    ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx"];

/// `path`'s file type and mode, owner and device number (or why it cannot be read).
fn node_state(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    match fs::symlink_metadata(path) {
        Ok(m) => format!(
            "{path} mode={:o} uid={} gid={} rdev={}:{}",
            m.mode(),
            m.uid(),
            m.gid(),
            nix::sys::stat::major(m.rdev()),
            nix::sys::stat::minor(m.rdev())
        ),
        Err(e) => format!("{path} <{e}>"),
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("<unreadable: {e}>"))
}

impl HostSnapshot {
    pub fn take() -> HostSnapshot {
        HostSnapshot {
            hostname: read("/proc/sys/kernel/hostname").trim().to_owned(),
            domainname: read("/proc/sys/kernel/domainname").trim().to_owned(),
            sysctls: crate::sysctl::host_values(),
            // Mount ids stay the same for a mount that is still there; a remount shows as a change.
            mounts: read("/proc/self/mountinfo").lines().map(str::to_owned).collect(),
            sysv: ["shm", "sem", "msg"]
                .into_iter()
                .flat_map(|kind| {
                    // Columns: key and id first; later columns (attach counts, times) move on their own.
                    read(&format!("/proc/sysvipc/{kind}"))
                        .lines()
                        .skip(1)
                        .map(move |l| {
                            let f: Vec<&str> = l.split_whitespace().take(2).collect();
                            format!("{kind} key={} id={}", f.first().unwrap_or(&""), f.get(1).unwrap_or(&""))
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
            links: match netlink_links() {
                Ok(links) => links.into_iter().map(|l| format!("{} up={}", l.name, l.up)).collect(),
                Err(e) => BTreeSet::from([format!("<netlink failed: {e}>")]),
            },
            cgroups: isoprobe_dirs(Path::new("/sys/fs/cgroup"), 5),
            proc_cgroups: read("/proc/cgroups")
                .lines()
                .map(|l| {
                    // subsys_name hierarchy num_cgroups enabled: the count changes with any workload.
                    let f: Vec<&str> = l.split_whitespace().collect();
                    match f.as_slice() {
                        [name, hier, _count, enabled] => format!("{name} {hier} {enabled}"),
                        _ => l.to_owned(),
                    }
                })
                .collect(),
            tmp: fs::read_dir(std::env::temp_dir())
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.starts_with(PREFIX) || n.starts_with(&format!(".{PREFIX}")))
                        .collect()
                })
                .unwrap_or_default(),
            dev_nodes: DEV_NODES.iter().map(|p| node_state(p)).collect(),
            processes: isoprobe_processes(),
            loop_devices: crate::leftovers::isoprobe_loop_devices()
                .into_iter()
                .map(|(dev, backing)| format!("{dev} backed by {backing}"))
                .collect(),
            iocost: crate::cgroup::host_layout()
                .ok()
                .and_then(|l| l.v2().map(|(_, h)| crate::cgroup::iocost::state(&h.mount_point)))
                .unwrap_or_default(),
            tool_state: tool_state(),
        }
    }

    /// The snapshot as sorted lines, `<what> <item>`, for diff(1) (`isoprobe snapshot`).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("hostname {}", self.hostname), format!("domainname {}", self.domainname)];
        let mut add = |what: &str, items: &mut dyn Iterator<Item = String>| {
            out.extend(items.map(|x| format!("{what} {x}")));
        };
        add("sysctl", &mut self.sysctls.iter().cloned());
        add("mount", &mut self.mounts.iter().cloned());
        add("sysv", &mut self.sysv.iter().cloned());
        add("link", &mut self.links.iter().cloned());
        add("cgroup", &mut self.cgroups.iter().map(|p| p.display().to_string()));
        add("/proc/cgroups", &mut self.proc_cgroups.iter().cloned());
        add("tmp", &mut self.tmp.iter().cloned());
        add("device-node", &mut self.dev_nodes.iter().cloned());
        add("process", &mut self.processes.iter().cloned());
        add("loop-device", &mut self.loop_devices.iter().cloned());
        add("iocost", &mut self.iocost.iter().cloned());
        add("tool-state", &mut self.tool_state.iter().cloned());
        out
    }

    /// One line per difference, `-` for what went away and `+` for what appeared.
    pub fn diff(&self, after: &HostSnapshot) -> Vec<String> {
        let mut out = Vec::new();
        if self.hostname != after.hostname {
            out.push(format!("hostname: {:?} -> {:?}", self.hostname, after.hostname));
        }
        if self.domainname != after.domainname {
            out.push(format!("domainname: {:?} -> {:?}", self.domainname, after.domainname));
        }
        set_diff("sysctl", &self.sysctls, &after.sysctls, &mut out);
        set_diff("mount", &self.mounts, &after.mounts, &mut out);
        set_diff("sysv", &self.sysv, &after.sysv, &mut out);
        set_diff("link", &self.links, &after.links, &mut out);
        let show = |s: &BTreeSet<PathBuf>| s.iter().map(|p| p.display().to_string()).collect::<BTreeSet<_>>();
        set_diff("cgroup", &show(&self.cgroups), &show(&after.cgroups), &mut out);
        set_diff("/proc/cgroups", &self.proc_cgroups, &after.proc_cgroups, &mut out);
        set_diff("/tmp", &self.tmp, &after.tmp, &mut out);
        set_diff("device node", &self.dev_nodes, &after.dev_nodes, &mut out);
        set_diff("process", &self.processes, &after.processes, &mut out);
        set_diff("loop device", &self.loop_devices, &after.loop_devices, &mut out);
        set_diff("iocost", &self.iocost, &after.iocost, &mut out);
        set_diff("tool state", &self.tool_state, &after.tool_state, &mut out);
        out
    }
}

fn set_diff(what: &str, before: &BTreeSet<String>, after: &BTreeSet<String>, out: &mut Vec<String>) {
    out.extend(before.difference(after).map(|x| format!("{what} - {x}")));
    out.extend(after.difference(before).map(|x| format!("{what} + {x}")));
}

/// Where container tools keep bookkeeping of their own, and the cgroup names they choose
/// themselves (LXC's `lxc.pivot`, `lxc.monitor`, `lxc.payload`; systemd-nspawn's `payload` and
/// `supervisor`). /run/mount is util-linux's libmount state, which an unshare wrapper's umount
/// would create; /run/crun is crun's default state root, which it creates whatever --root says.
const TOOL_DIRS: [&str; 4] = ["/run/lxc", "/run/systemd/nspawn", "/run/mount", "/run/crun"];
const TOOL_CGROUPS: [&str; 5] = ["lxc.pivot", "lxc.monitor", "lxc.payload", "payload", "supervisor"];

fn tool_state() -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    for root in TOOL_DIRS {
        walk(Path::new(root), &mut v, 6);
    }
    if let Ok(layout) = crate::cgroup::host_layout() {
        for h in &layout.hierarchies {
            for d in fs::read_dir(&h.mount_point).into_iter().flatten().flatten() {
                let n = d.file_name().to_string_lossy().into_owned();
                if TOOL_CGROUPS.iter().any(|p| n.starts_with(p)) {
                    v.insert(d.path().display().to_string());
                }
            }
        }
    }
    v
}

fn walk(p: &Path, out: &mut BTreeSet<String>, depth: usize) {
    if !p.exists() {
        return;
    }
    out.insert(p.display().to_string());
    if depth > 0 && p.is_dir() {
        for e in fs::read_dir(p).into_iter().flatten().flatten() {
            walk(&e.path(), out, depth - 1);
        }
    }
}

/// Directories named isoprobe* under `root`, at most `depth` levels down.
fn isoprobe_dirs(root: &Path, depth: usize) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(entries) = fs::read_dir(root) else { return out };
    for e in entries.filter_map(|e| e.ok()) {
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with(PREFIX) {
            out.insert(path.clone());
        }
        if depth > 1 {
            out.extend(isoprobe_dirs(&path, depth - 1));
        }
    }
    out
}

/// Processes whose command is an isoprobe probe, and children of this process.
fn isoprobe_processes() -> BTreeSet<String> {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else { return BTreeSet::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
                return None;
            }
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or(&[]);
            let argv0 = String::from_utf8_lossy(argv0);
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.to_owned();
            let probe = Path::new(argv0.as_ref()).file_name().is_some_and(|n| n == isoprobe_probes::PROBE_NAME);
            (probe || ppid == me).then(|| format!("pid {pid} ({argv0})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_equals_itself_and_a_change_is_reported() {
        let a = HostSnapshot::take();
        assert_eq!(a.diff(&a), Vec::<String>::new());
        let mut b = a.clone();
        b.domainname = "isoprobe-leak".into();
        b.mounts.insert("999 1 0:1 / /tmp/isoprobe-x rw - tmpfs tmpfs rw".into());
        let d = a.diff(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.iter().any(|l| l.starts_with("mount + ")), "{d:?}");
    }

    #[test]
    fn the_standard_device_nodes_are_recorded_with_their_mode() {
        let a = HostSnapshot::take();
        let null = a.dev_nodes.iter().find(|l| l.starts_with("/dev/null ")).expect("/dev/null is recorded");
        // A character device (S_IFCHR = 0o020000), 1:3 on every Linux.
        assert!(null.contains(" mode=20") && null.ends_with(" rdev=1:3"), "{null}");
        // A node chmodded by a tool shows as a difference.
        let mut b = a.clone();
        b.dev_nodes.remove(null);
        let chmodded = match null.contains(" mode=20666 ") {
            true => null.replace(" mode=20666 ", " mode=20700 "),
            false => null.replacen(" mode=", " mode=0", 1),
        };
        b.dev_nodes.insert(chmodded);
        assert_eq!(a.diff(&b).iter().filter(|l| l.starts_with("device node ")).count(), 2, "{:?}", a.diff(&b));
    }
}
