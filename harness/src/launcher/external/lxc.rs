//! LXC as a launcher: `lxc-execute` with a generated config, and `lxc-attach` into it.
//!
//! | spec setting | LXC key |
//! |---|---|
//! | namespaces | `lxc.namespace.clone` (exactly the requested set) |
//! | uid/gid maps | `lxc.idmap` (any map, as root) |
//! | hostname | `lxc.uts.name` |
//! | rootfs | none (the host's) or `lxc.rootfs.path = dir:...` (pivot_root); no plain chroot |
//! | /proc, /sys | `lxc.mount.auto = proc:rw sys:rw` |
//! | time offsets | `lxc.time.offset.monotonic`, `lxc.time.offset.boot` in nanoseconds |
//! | network | `lxc.net.0.type = empty` in a new network namespace |
//! | cgroups | `lxc.cgroup.dir.{container,monitor,monitor.pivot}` named after the case; the cgroup limits (`lxc.cgroup.*` / `lxc.cgroup2.*`) are the seam for the cgroup work |
//!
//! Always: `lxc.apparmor.profile = unconfined`, `lxc.console.path = none` (stdio passes through),
//! `lxc.tty.max = 0`. The container's directory (`-P`) lives in the run directory.
//!
//! What LXC leaves on the host, and this launcher removes: the cgroup parents it creates for
//! `lxc.cgroup.dir.*` and the pivot cgroup (LXC removes only the leaves), and its lock directory
//! /run/lxc/lock/<lxcpath> with the parents it created (/run/lxc itself when it was not there).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::InitPlan;

use super::tool::{SharedHostDirs, ToolCell, ToolLeftovers, WorkDir, start_tool, tool_env, wait_for_probe, which};
use crate::error::{Context, HarnessError};
use crate::launcher::{
    Capabilities, IdMapSupport, Launcher, OffsetSupport, Performer, StartContext, Started, ToolInfo,
};
use crate::spec::{CaseSpec, LauncherKind, RootfsMode, Runner};
use crate::verdict::Skip;

#[derive(Debug)]
pub struct Lxc {
    joiner: bool,
    execute: ToolCell,
    attach: ToolCell,
}

impl Lxc {
    pub fn new() -> Lxc {
        Lxc {
            joiner: false,
            execute: ToolCell::new(LauncherKind::Lxc, "lxc-execute", "lxc", &["--version"]),
            attach: ToolCell::new(LauncherKind::LxcAttach, "lxc-attach", "lxc", &["--version"]),
        }
    }

    /// Containers started by `lxc-execute`, joined by `lxc-attach`.
    pub fn with_attach() -> Lxc {
        Lxc { joiner: true, ..Lxc::new() }
    }
}

impl Default for Lxc {
    fn default() -> Self {
        Lxc::new()
    }
}

/// The container name and directory of a case (`-n`, `-P`).
fn names(ctx: &StartContext<'_>) -> (String, String) {
    (
        format!("isoprobe-{}-{}", ctx.run.run_token, ctx.case.id),
        format!("isoprobe-{}-{}-lxc", ctx.run.run_token, ctx.case.id),
    )
}

impl Launcher for Lxc {
    fn kind(&self) -> LauncherKind {
        if self.joiner { LauncherKind::LxcAttach } else { LauncherKind::Lxc }
    }

    fn tool(&self) -> Result<Option<&ToolInfo>, Skip> {
        if self.joiner {
            self.attach.get()?;
        }
        self.execute.get().map(Some)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            namespaces: NsSet::ALL,
            rootfs: vec![RootfsMode::Host, RootfsMode::PivotRoot],
            id_maps: lxc_id_maps(),
            hostname: Performer::Launcher,
            proc: Performer::Launcher,
            sysfs: Performer::Launcher,
            // `lxc.time.offset.boot = 1209600987654321ns` fails with "Invalid argument - Failed to
            // write CLONE_BOOTTIME offset": liblxc writes a value given in ns as the nanosecond
            // field of timens_offsets without carrying whole seconds, and the kernel takes 0..1e9
            // there. Whole seconds (`...s`) work.
            time_offsets: OffsetSupport::WholeSeconds,
            cgroup_limits: false,
            rootless: false,
        }
    }

    /// LXC needs a mount namespace: without one it sets up the container's /proc and /dev in the
    /// host's mount namespace (seen here: liblxc's lxc_transient_proc() unmounted the host's /proc,
    /// and lxc.autodev mounted a tmpfs over the host's /dev), so such specs are refused.
    fn supports(&self, spec: &CaseSpec, _runner: Runner) -> Result<(), Skip> {
        if !spec.has(NsKind::Mnt) {
            return Err(Skip {
                requirement: format!("launcher:{}:mnt", self.kind().name()),
                reason: "LXC without a mount namespace mounts the container's /proc and /dev over the host's \
                         (lxc_transient_proc, lxc.autodev): not run, to protect the host"
                    .into(),
            });
        }
        Ok(())
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let tool = self.execute.for_start()?;
        if !ctx.spec.has(NsKind::Mnt) {
            return Err(HarnessError::Probe("refusing to start LXC without a mount namespace".into()));
        }
        let spec = ctx.spec;
        let work = WorkDir::create(ctx, "lxc")?;
        let (name, cgroup) = names(ctx);
        let lxcpath = work.path.join("containers");
        fs::create_dir(&lxcpath).ctx(|| format!("create {}", lxcpath.display()))?;
        let config = work.path.join("config");
        fs::write(&config, config_text(spec, &ctx.case.dir, &cgroup)).ctx(|| format!("write {}", config.display()))?;
        let leftovers = lxc_leftovers(ctx, work, &cgroup)?;
        let probe = match spec.rootfs {
            RootfsMode::Host => ctx.run.probe_exe.to_string_lossy().into_owned(),
            _ => format!("/{}", isoprobe_probes::PROBE_NAME),
        };
        let args: Vec<String> = vec![
            "-P".into(),
            lxcpath.to_string_lossy().into_owned(),
            "-n".into(),
            name,
            "-f".into(),
            config.to_string_lossy().into_owned(),
            "--".into(),
            probe,
        ];
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        Ok(Started { process, probe_pid, init: InitPlan::default(), teardown: Some(Box::new(leftovers)) })
    }

    fn start_joiner(&self, ctx: &StartContext<'_>, _container: &Started) -> Result<Started, HarnessError> {
        let tool = self.attach.for_start()?;
        let (name, _) = names(ctx);
        let lxcpath = ctx.run.dir.join(format!("lxc-{}", ctx.case.id)).join("containers");
        let probe = match ctx.spec.rootfs {
            RootfsMode::Host => ctx.run.probe_exe.to_string_lossy().into_owned(),
            _ => format!("/{}", isoprobe_probes::PROBE_NAME),
        };
        let args: Vec<String> =
            vec!["-P".into(), lxcpath.to_string_lossy().into_owned(), "-n".into(), name, "--".into(), probe];
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        Ok(Started { process, probe_pid, init: InitPlan::default(), teardown: None })
    }
}

/// Which maps LXC can write here. As root it writes any map itself, except that when shadow's
/// newuidmap and newgidmap are installed, liblxc insists on using them even for root (conf.c,
/// lxc_map_ids: "insist that root also reserve ranges in subuid"); newuidmap then allows only the
/// caller's own id unless /etc/subuid and /etc/subgid grant root a range (which the harness leaves
/// as it finds them).
fn lxc_id_maps() -> IdMapSupport {
    let shadow = which("newuidmap").is_some() && which("newgidmap").is_some();
    let granted = |file: &str| {
        fs::read_to_string(file).is_ok_and(|t| t.lines().any(|l| l.starts_with("root:") || l.starts_with("0:")))
    };
    if shadow && !(granted("/etc/subuid") && granted("/etc/subgid")) {
        IdMapSupport::OwnIdsOnly
    } else {
        IdMapSupport::Any
    }
}

/// The seam for cgroup limits (the cgroup work, issue 3): when [`CaseSpec`] carries limits in the
/// canonical v2 vocabulary (memory.max, pids.max, cpu.max, ...), this maps each to LXC's key for
/// the host's layout — `lxc.cgroup2.<file>` on cgroup2, `lxc.cgroup.<v1 file>` on v1 (e.g.
/// memory.max → lxc.cgroup.memory.limit_in_bytes) — and [`Capabilities::cgroup_limits`] turns
/// true. Until then a spec has no limits and there is nothing to write.
fn cgroup_limit_lines(_spec: &CaseSpec) -> Vec<(String, String)> {
    Vec::new()
}

/// The namespace names `lxc.namespace.clone` takes (those of /proc/<pid>/ns).
fn lxc_ns(kind: NsKind) -> &'static str {
    kind.name()
}

/// The generated config of one container.
fn config_text(spec: &CaseSpec, rootfs: &Path, cgroup: &str) -> String {
    let mut c = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(c, "{k} = {v}");
    };
    line("lxc.apparmor.profile", "unconfined");
    line("lxc.console.path", "none");
    line("lxc.tty.max", "0");
    line("lxc.log.level", "WARN");
    let clone: Vec<&str> = spec.namespaces.iter().map(lxc_ns).collect();
    line("lxc.namespace.clone", &clone.join(" "));
    if spec.has(NsKind::Uts)
        && let Some(h) = &spec.hostname
    {
        line("lxc.uts.name", h);
    }
    if spec.has(NsKind::Net) {
        line("lxc.net.0.type", "empty");
    }
    if spec.has(NsKind::User)
        && let Some(maps) = &spec.id_maps
    {
        for (t, lines) in [("u", &maps.uid), ("g", &maps.gid)] {
            for l in lines {
                line("lxc.idmap", &format!("{t} {} {} {}", l.inside, l.outside, l.count));
            }
        }
    }
    if spec.rootfs == RootfsMode::PivotRoot {
        line("lxc.rootfs.path", &format!("dir:{}", rootfs.display()));
    }
    // A new procfs needs the pid namespace to be owned by the container's user namespace, a new
    // sysfs the network namespace; where they are not, the host's instance is bound in (on the
    // rootfs) or kept (on the host's root). On the host's root a sysfs of the host's own network
    // namespace is the very superblock mounted on /sys, and mounting it there again is EBUSY.
    let user = spec.has(NsKind::User);
    let pivot = spec.rootfs == RootfsMode::PivotRoot;
    let new_proc = !user || spec.has(NsKind::Pid);
    let new_sys = (spec.has(NsKind::Net) || pivot) && (!user || spec.has(NsKind::Net));
    let auto: Vec<&str> =
        [(new_proc, "proc:rw"), (new_sys, "sys:rw")].iter().filter(|(b, _)| *b).map(|(_, v)| *v).collect();
    if !auto.is_empty() {
        line("lxc.mount.auto", &auto.join(" "));
    }
    if pivot && !new_proc {
        line("lxc.mount.entry", "/proc proc none rbind 0 0");
    }
    if pivot && !new_sys {
        line("lxc.mount.entry", "/sys sys none rbind 0 0");
    }
    if spec.has(NsKind::Time)
        && let Some(t) = spec.time_offsets
    {
        line("lxc.time.offset.monotonic", &format!("{}s", t.monotonic_ns / 1_000_000_000));
        line("lxc.time.offset.boot", &format!("{}s", t.boottime_ns / 1_000_000_000));
    }
    for (key, value) in cgroup_limit_lines(spec) {
        line(&key, &value);
    }
    line("lxc.cgroup.dir.container", &format!("{cgroup}/payload"));
    line("lxc.cgroup.dir.monitor", &format!("{cgroup}/monitor"));
    line("lxc.cgroup.dir.monitor.pivot", &format!("{cgroup}-pivot"));
    c
}

/// LXC's lock directory root for root (liblxc: RUNTIME_PATH "/run" + "/lxc/lock"); LXC mirrors each
/// container's lxcpath below it.
const LOCK_ROOT: &str = "/run/lxc/lock";

/// LXC's lock directory for a path of ours.
fn lock_mirror(path: &Path) -> PathBuf {
    Path::new(LOCK_ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

static LOCK_DIRS: SharedHostDirs = SharedHostDirs::new("/run/lxc", 0o755, "isoprobe-lxc-run-dirs-lock");

/// The leftovers of one LXC container: its work directory and cgroups, and its lock directory
/// (LOCK_ROOT mirrors the work directory, which is named after the case; the run's mirror and the
/// parents up to /run/lxc are shared).
fn lxc_leftovers(ctx: &StartContext<'_>, work: WorkDir, cgroup: &str) -> Result<ToolLeftovers, HarnessError> {
    let run_lock = lock_mirror(&ctx.run.dir);
    let shared: Vec<PathBuf> =
        run_lock.ancestors().take_while(|p| p.starts_with(LOCK_ROOT)).map(Path::to_path_buf).collect();
    let case_lock = lock_mirror(&work.path);
    let mut tool = ToolLeftovers::new(Some(work));
    tool.cgroups = vec![cgroup.to_owned(), format!("{cgroup}-pivot")];
    tool.host_dirs = Some(LOCK_DIRS.enter(shared, vec![case_lock], Vec::new(), ctx.deadline)?);
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::spec_for;
    use crate::spec::Runner;

    fn config(ns: &str, rootfs: RootfsMode) -> String {
        let spec = spec_for(ns.parse().unwrap(), rootfs, LauncherKind::Lxc).resolve(Runner { uid: 0, gid: 0 });
        config_text(&spec, Path::new("/tmp/isoprobe-x/case-1"), "isoprobe-x-1-lxc")
    }

    #[test]
    fn the_config_clones_exactly_the_requested_namespaces() {
        let c = config("pid+mnt+net", RootfsMode::PivotRoot);
        assert!(c.contains("lxc.namespace.clone = pid mnt net\n"), "{c}");
        assert!(c.contains("lxc.net.0.type = empty\n"), "{c}");
        assert!(c.contains("lxc.rootfs.path = dir:/tmp/isoprobe-x/case-1\n"), "{c}");
        assert!(c.contains("lxc.mount.auto = proc:rw sys:rw\n"), "{c}");
        assert!(!c.contains("lxc.uts.name"), "{c}");
        assert!(c.contains("lxc.cgroup.dir.monitor.pivot = isoprobe-x-1-lxc-pivot\n"), "{c}");
    }

    #[test]
    fn hostname_maps_and_offsets_use_lxc_keys() {
        let c = config("all", RootfsMode::PivotRoot);
        assert!(c.contains("lxc.uts.name = isoprobe-ff\n"), "{c}");
        assert!(c.contains("lxc.idmap = u 0 100000 65536\n") && c.contains("lxc.idmap = g 0 100000 65536\n"), "{c}");
        // Whole seconds only (see `capabilities`).
        assert!(c.contains("lxc.time.offset.boot = 1209600s\n"), "{c}");
    }

    #[test]
    fn host_root_keeps_the_hosts_sysfs_without_a_new_network_namespace() {
        let c = config("pid+mnt", RootfsMode::Host);
        assert!(c.contains("lxc.mount.auto = proc:rw\n"), "{c}");
        assert!(!c.contains("lxc.rootfs.path"), "{c}");
        // A user namespace that owns neither the pid nor the network namespace: binds, not mounts.
        let c = config("mnt+user", RootfsMode::PivotRoot);
        assert!(c.contains("lxc.mount.entry = /proc proc none rbind 0 0\n"), "{c}");
        assert!(c.contains("lxc.mount.entry = /sys sys none rbind 0 0\n"), "{c}");
    }

    #[test]
    fn lxc_refuses_specs_without_a_mount_namespace() {
        let spec = spec_for("pid".parse().unwrap(), RootfsMode::Host, LauncherKind::Lxc);
        let skip = Lxc::new().supports(&spec, Runner { uid: 0, gid: 0 }).unwrap_err();
        assert!(skip.reason.contains("host's"), "{}", skip.reason);
    }
}
