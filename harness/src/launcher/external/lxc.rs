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
//! | propagation (a mount case) | `lxc.mount.entry` binding the propagation mount point onto itself with `bind,<mode>`; the root is rslave (see `launcher::propagation`) |
//! | cgroups | `lxc.cgroup.dir.{container,monitor,monitor.pivot}` named after the case, each a top-level cgroup (see `names`) |
//! | cgroup limits | per setting, the key of the hierarchy its controller is on here: `lxc.cgroup2.<v2 file>` on cgroup2, `lxc.cgroup.<v1 file>` (the one v2→v1 table) on v1; see [`cgroup_limit_lines`] |
//!
//! Always: `lxc.apparmor.profile = unconfined`, `lxc.console.path = none` (stdio passes through),
//! `lxc.tty.max = 0`. The container's directory (`-P`) lives in the run directory.
//!
//! A limit case runs with LXC creating the case's cgroup and writing its limits; isoprobe writes
//! none of them, and reads the counters it answers the probe with (peak, OOM kills, throttling,
//! usage) from the cgroup LXC made (see `CaseLimits::adopt`). Freezing and perf counting are host
//! actions on that cgroup (LXC has no configuration key for them; lxc-freeze is a command); the
//! sibling cgroup of a weight or perf case is isoprobe's, made beside LXC's.
//!
//! What LXC leaves on the host, and this launcher removes: the pivot cgroup with its `lxc.pivot`
//! child (LXC removes the container and monitor cgroups itself, except after a kill), and its lock
//! directory `/run/lxc/lock/<lxcpath>` with the parents it created (/run/lxc itself when it was not
//! there).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::InitPlan;

use crate::cgroup::table::{Setting, to_v1};
use crate::cgroup::{CgroupLayout, LayoutMode, Placement};
use crate::limits::LimitSpec;
use crate::requirement::Requirement;

use super::tool::{SharedHostDirs, ToolCell, ToolLeftovers, WorkDir, start_tool, tool_env, wait_for_probe, which};
use crate::error::{Context, HarnessError};
use crate::launcher::defect::KnownDefect;
use crate::launcher::{
    Capabilities, IdMapSupport, Launcher, LimitCgroup, OffsetSupport, Performer, StartContext, Started, ToolInfo,
};
use crate::spec::{CaseSpec, IdMaps, LauncherKind, RootfsMode, Runner};
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

/// The container name and its cgroup (`-n`; `lxc.cgroup.dir.container`). The container's
/// cgroup is top-level on every hierarchy, as a native case's is: cpu weights are relative to
/// siblings, so under a parent of its own the payload's weight would compete with nothing (and
/// the parent's default weight with the host's other cgroups), and a weight case's competitor
/// cgroup (isoprobe's `<case>-sib`) must be its sibling. The monitor's cgroup and the pivot are
/// `<cgroup>-monitor` and `<cgroup>-pivot`.
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
            // lxc-execute creates the container's cgroup and writes the limits (lxc.cgroup.*).
            // lxc-attach: the joiner does enter the payload cgroup of the container it joins (seen
            // here: on every v1 hierarchy, and its `.lxc` child on cgroup2), so the container's
            // limits hold it too; but a limit exercise measures one probe in its cgroup, and there
            // the holding probe shares it (as with the native setns paths).
            cgroup_limits: !self.joiner,
            rootless: false,
        }
    }

    /// LXC needs a mount namespace: without one it sets up the container's /proc and /dev in the
    /// host's mount namespace (seen here: liblxc's lxc_transient_proc() unmounted the host's /proc,
    /// and lxc.autodev mounted a tmpfs over the host's /dev), so such specs are refused.
    fn supports(&self, spec: &CaseSpec, _runner: Runner) -> Result<(), Skip> {
        if !spec.has(NsKind::Mnt) {
            return Err(Requirement::LauncherFeature { launcher: self.kind().name(), what: "mnt".into() }.skip(
                "LXC without a mount namespace mounts the container's /proc and /dev over the host's \
                 (lxc_transient_proc, lxc.autodev): not run, to protect the host",
            ));
        }
        Ok(())
    }

    fn supports_limits(&self, _spec: &CaseSpec, limits: &LimitSpec, layout: &CgroupLayout) -> Result<(), Skip> {
        // The loop device is not attached yet: any MAJ:MIN shows where the io limit goes.
        let settings = limits.settings.settings(Some((0, 0)));
        cgroup_limit_lines(&settings, layout).map(drop).map_err(|reason| {
            Requirement::LauncherFeature { launcher: self.kind().name(), what: "cgroup-limit".into() }.skip(reason)
        })
    }

    fn limit_cgroup(&self, ctx: &StartContext<'_>) -> Option<LimitCgroup> {
        (!self.joiner).then(|| LimitCgroup { name: names(ctx).1, cgroup2: true })
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let tool = self.execute.for_start()?;
        if !ctx.spec.has(NsKind::Mnt) {
            return Err(HarnessError::Launch("refusing to start LXC without a mount namespace".into()));
        }
        let spec = ctx.spec;
        let work = WorkDir::create(ctx, "lxc")?;
        let (name, cgroup) = names(ctx);
        let lxcpath = work.path.join("containers");
        fs::create_dir(&lxcpath).ctx(|| format!("create {}", lxcpath.display()))?;
        let config = work.path.join("config");
        let limits = match &spec.limits {
            Some(l) => {
                let loop_dev = ctx.case.limits.as_ref().and_then(|c| c.loopdev.as_ref()).map(|d| d.rdev);
                cgroup_limit_lines(&l.settings.settings(loop_dev), ctx.run.layout).map_err(HarnessError::Launch)?
            }
            None => Vec::new(),
        };
        fs::write(&config, config_text(spec, &ctx.case.dir, &cgroup, &limits))
            .ctx(|| format!("write {}", config.display()))?;
        let leftovers = lxc_leftovers(ctx, work, &cgroup)?;
        let probe = match spec.rootfs {
            RootfsMode::Host => ctx.run.probe_exe.to_string_lossy().into_owned(),
            _ => format!("/{}", isoprobe_probes::PROBE_NAME),
        };
        let log = lxcpath.with_file_name(EXECUTE_LOG);
        let mut args: Vec<String> = vec![
            "-P".into(),
            lxcpath.to_string_lossy().into_owned(),
            "-n".into(),
            name,
            "-f".into(),
            config.to_string_lossy().into_owned(),
        ];
        args.extend(log_args(&log));
        args.extend(["--".into(), probe]);
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)
            .map_err(|e| caps_text_freed(with_log_tail(e, &log), spec, ctx.run.runner))?;
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
        let log = lxcpath.with_file_name(ATTACH_LOG);
        let mut args: Vec<String> = vec!["-P".into(), lxcpath.to_string_lossy().into_owned(), "-n".into(), name];
        args.extend(log_args(&log));
        args.extend(["--".into(), probe]);
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline).map_err(|e| with_log_tail(e, &log))?;
        Ok(Started { process, probe_pid, init: InitPlan::default(), teardown: None })
    }
}

/// LXC's container process frees libcap's text of its capabilities with `free()` (caps.c,
/// `lxc_ambient_caps_up`: `cap_to_text()` returns a pointer 8 bytes into libcap's own allocation,
/// which needs `cap_free()`), and glibc aborts it: "free(): invalid pointer", then the monitor's
/// "sync_wake: Broken pipe". That code runs only when the process's uid reads non-zero and its
/// euid zero (LXC's test for a setuid start), and right then, in a new user namespace, the
/// monitor is writing its uid map. When the map maps the caller's own uid (as root, here: inside
/// 0 onto host 0), a `getuid()` just before the write and a `geteuid()` just after it read 65534
/// (unmapped) and 0. So a start aborts by chance; mapping ids other than the caller's never
/// meets it. Seen: 1 start in 50 to 300 with `lxc-execute` 5.0.2 and libcap 2.66 on this
/// 2-CPU VM, with no isoprobe involved (a shell loop of lxc-execute with such a map); the core
/// dump's stack is `free` ← `do_start` ← the raw clone's child, on the libcap string "=eip".
pub const CAPS_TEXT_FREED: KnownDefect = KnownDefect {
    id: "lxc/lxc#4670",
    summary: "LXC's container process frees libcap's text with free() and aborts (\"free(): invalid pointer\") \
              when its uid map, mapping the caller's own uid, is written between its getuid() and geteuid()",
    fixed: "lxc/lxc#4685 (merged 2026-05-19; not in LXC 5.0.2)",
};

/// What glibc prints when it aborts on a pointer malloc never gave out.
const INVALID_FREE: &str = "free(): invalid pointer";

/// `e` as a hit of [`CAPS_TEXT_FREED`] when it is one: the tool ended before the probe with
/// glibc's abort message, in a case whose user namespace maps the runner's own uid (the race
/// needs it). Any other error is returned as it is.
fn caps_text_freed(e: HarnessError, spec: &CaseSpec, runner: Runner) -> HarnessError {
    let maps_caller =
        spec.has(NsKind::User) && spec.id_maps.as_ref().is_some_and(|m| IdMaps::inside(&m.uid, runner.uid).is_some());
    match e {
        HarnessError::Launch(msg) if maps_caller && msg.contains(INVALID_FREE) => {
            HarnessError::KnownDefect { defect: &CAPS_TEXT_FREED, error: msg }
        }
        other => other,
    }
}

/// liblxc's logs of a case's start, beside its lxcpath in the case's work directory (gone with it).
const EXECUTE_LOG: &str = "lxc-execute.log";
const ATTACH_LOG: &str = "lxc-attach.log";
/// The lines of liblxc's log a failed start quotes.
const LOG_TAIL_LINES: usize = 12;

/// liblxc logs each step of a start at DEBUG: when a start fails, its log says which step (it
/// placed [`CAPS_TEXT_FREED`] right after the uid map's write).
fn log_args(log: &Path) -> [String; 4] {
    ["-o".into(), log.to_string_lossy().into_owned(), "-l".into(), "DEBUG".into()]
}

/// `e` with the end of liblxc's log of the start appended, when the start failed or hung.
fn with_log_tail(e: HarnessError, log: &Path) -> HarnessError {
    let tail = || {
        let tail = match fs::read_to_string(log) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            }
            Err(err) => format!("(unreadable: {err})"),
        };
        format!("\nthe last lines of liblxc's log ({}):\n{tail}", log.display())
    };
    match e {
        HarnessError::Launch(msg) => HarnessError::Launch(msg + &tail()),
        HarnessError::Timeout { after, during } => HarnessError::Timeout { after, during: during + &tail() },
        other => other,
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

/// The LXC keys for a case's cgroup settings (canonical v2 vocabulary, as `Limits::settings`
/// gives them) on a host with `layout`: each setting goes where its controller is here —
/// `lxc.cgroup2.<v2 file> = <v2 value>` on cgroup2, and on v1 one `lxc.cgroup.<v1 file> = <value>`
/// per write the one v2→v1 table gives (`cgroup::table::to_v1`), in its order (cpu.max: the
/// period before the quota; devices: deny `a` before the allow rules). LXC writes each key to
/// the container's cgroup on the hierarchy the file's controller prefix names. The device list
/// on a pure cgroup2 host is `lxc.cgroup2.devices.*` (LXC loads a BPF program for it: in the
/// cgroup2 VM of `.ci/run`, LXC 5.0.2 denied /dev/zero and allowed /dev/null; on this hybrid
/// machine devices is on v1). A setting whose controller is mounted nowhere, or cannot be used
/// here, is the error (the reason of a skip).
pub fn cgroup_limit_lines(settings: &[Setting], layout: &CgroupLayout) -> Result<Vec<(String, String)>, String> {
    let mut lines = Vec::new();
    for s in settings {
        let (v1, v2) = crate::cgroup::table::controllers(&s.key).map_err(|e| e.to_string())?;
        let placement = layout.placement(v1);
        // cgroup2 has no devices file; on a pure cgroup2 host LXC turns the same rules, given as
        // lxc.cgroup2.devices.{deny,allow}, into a BPF_CGROUP_DEVICE program (lxc/lxc a0e788ab).
        if s.key == "devices" && !matches!(placement, Placement::V1 { .. }) && layout.mode() == LayoutMode::V2 {
            for (file, value) in to_v1(s, settings).map_err(|e| e.to_string())? {
                lines.push((format!("lxc.cgroup2.{file}"), value));
            }
            continue;
        }
        match placement {
            Placement::V1 { .. } => {
                for (file, value) in to_v1(s, settings).map_err(|e| e.to_string())? {
                    lines.push((format!("lxc.cgroup.{file}"), value));
                }
            }
            Placement::V2 { .. } if v2.is_some() => lines.push((format!("lxc.cgroup2.{}", s.key), s.value.clone())),
            Placement::V2 { .. } => {
                return Err(format!("{v1} is on cgroup2 here, which has no file for `{}`", s.key));
            }
            Placement::Unmounted => {
                return Err(format!(
                    "`{}` needs the {v1} controller, which is mounted on no hierarchy here: LXC creates the \
                     container's cgroups only on mounted hierarchies (isoprobe's native cases mount {v1} \
                     privately, where LXC cannot see it)",
                    s.key
                ));
            }
            Placement::Unusable(why) => return Err(format!("`{}` cannot be set by LXC here: {why}", s.key)),
        }
    }
    Ok(lines)
}

/// The namespace names `lxc.namespace.clone` takes (those of /proc/<pid>/ns).
fn lxc_ns(kind: NsKind) -> &'static str {
    kind.name()
}

/// The generated config of one container.
fn config_text(spec: &CaseSpec, rootfs: &Path, cgroup: &str, limits: &[(String, String)]) -> String {
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
    // A mount case: the propagation mount point bound onto its copy with the case's container
    // mode as a propagation option, which LXC applies after the bind (lxc.container.conf(5),
    // lxc.mount.entry; see `launcher::propagation`). The target is relative to the rootfs, or
    // absolute on the host's root.
    if let Some(p) = spec.propagation.filter(|_| spec.has(NsKind::Mnt)) {
        let source = rootfs.join(crate::mount_case::PROP);
        let target = if pivot { crate::mount_case::PROP.to_owned() } else { source.to_string_lossy().into_owned() };
        line("lxc.mount.entry", &format!("{} {target} none bind,{} 0 0", source.display(), p.container));
    }
    if spec.has(NsKind::Time)
        && let Some(t) = spec.time_offsets
    {
        line("lxc.time.offset.monotonic", &format!("{}s", t.monotonic_ns / 1_000_000_000));
        line("lxc.time.offset.boot", &format!("{}s", t.boottime_ns / 1_000_000_000));
    }
    if spec.limits.is_some() && spec.rootfs == RootfsMode::Host {
        // No /dev of LXC's own on the host's root: in a user namespace, where it cannot mknod,
        // lxc.autodev bind-mounts "host devices" from the rootfs, which on the host's root is
        // already its own tmpfs, so /dev/zero is an empty placeholder file (seen: mountinfo shows
        // the tmpfs's /zero on /dev/zero). The devices exercise opens the host's nodes.
        line("lxc.autodev", "0");
    }
    for (key, value) in limits {
        line(key, value);
    }
    line("lxc.cgroup.dir.container", cgroup);
    line("lxc.cgroup.dir.monitor", &format!("{cgroup}-monitor"));
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
    tool.cgroups = vec![cgroup.to_owned(), format!("{cgroup}-monitor"), format!("{cgroup}-pivot")];
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
        config_text(&spec, Path::new("/tmp/isoprobe-x/case-1"), "isoprobe-x-1-lxc", &[])
    }

    /// A failed or hung start quotes the end of liblxc's log (or why it could not be read); any
    /// other error is left as it is.
    #[test]
    fn a_failed_or_hung_start_quotes_the_end_of_the_log() {
        let dir = tempfile::Builder::new().prefix("isoprobe-lxc-log-test-").tempdir().unwrap();
        let log = dir.path().join(EXECUTE_LOG);
        let text: String = (1..=20).map(|i| format!("lxc-execute 1.{i} DEBUG start - step {i}\n")).collect();
        fs::write(&log, text).unwrap();
        let launch = || HarnessError::Launch("the launcher's process ended (exit 1)".into());
        let HarnessError::Launch(msg) = with_log_tail(launch(), &log) else { panic!("not a launch error") };
        let quoted: Vec<&str> = msg.lines().filter(|l| l.contains(" DEBUG ")).collect();
        assert_eq!(quoted.len(), LOG_TAIL_LINES, "{msg}");
        assert!(quoted[0].ends_with("step 9") && quoted[LOG_TAIL_LINES - 1].ends_with("step 20"), "{msg}");
        assert!(msg.starts_with("the launcher's process ended (exit 1)\nthe last lines of liblxc's log ("), "{msg}");
        let missing = with_log_tail(launch(), &dir.path().join("none.log")).to_string();
        assert!(missing.contains("(unreadable: ") && missing.contains("No such file"), "{missing}");
        let timeout = HarnessError::Timeout { after: std::time::Duration::ZERO, during: "waiting".into() };
        let HarnessError::Timeout { during, .. } = with_log_tail(timeout, &log) else { panic!("not a timeout") };
        assert!(during.starts_with("waiting\nthe last lines") && during.ends_with("step 20"), "{during}");
        let unchanged = HarnessError::Protocol("y".into());
        assert!(matches!(with_log_tail(unchanged, &log), HarnessError::Protocol(m) if m == "y"));
    }

    /// What lxc-execute 5.0.2 printed in CI when it met [`CAPS_TEXT_FREED`] (case
    /// `limits/lxc/io-max/mnt+user/limited`), as `wait_for_probe` and `with_log_tail` made it.
    const CI_ABORT: &str = "the launcher's process ended (exit 1) before starting the probe: free(): invalid pointer
lxc-execute: isoprobe-9571383163fb-382: ../src/lxc/sync.c: sync_wake: 47 Broken pipe - Sync wake failure
lxc-execute: isoprobe-9571383163fb-382: ../src/lxc/start.c: __lxc_start: 2107 Failed to spawn container \"isoprobe-9571383163fb-382\"
the last lines of liblxc's log (/tmp/isoprobe-26421-9571383163fb/lxc-382/lxc-execute.log):
lxc-execute isoprobe-9571383163fb-382 20261207013928.579 INFO     conf - ../src/lxc/conf.c:lxc_map_ids:3639 - Caller maps host root. Writing mapping directly";

    /// The abort is taken for the known defect only with its message, from a start whose user
    /// namespace maps the runner's own uid; anything else stays the error it was.
    #[test]
    fn only_the_abort_of_a_start_mapping_the_callers_uid_is_the_known_defect() {
        let root = Runner { uid: 0, gid: 0 };
        let spec = |ns: &str, maps: Option<IdMaps>| CaseSpec {
            id_maps: maps,
            ..spec_for(ns.parse().unwrap(), RootfsMode::Host, LauncherKind::Lxc)
        };
        let launch = || HarnessError::Launch(CI_ABORT.into());
        let own = spec("mnt+user", Some(IdMaps::range(0, 0, 1)));
        match caps_text_freed(launch(), &own, root) {
            HarnessError::KnownDefect { defect, error } => {
                assert_eq!((defect, error.as_str()), (&CAPS_TEXT_FREED, CI_ABORT));
            }
            other => panic!("not the known defect: {other}"),
        }
        let display = caps_text_freed(launch(), &own, root).to_string();
        assert!(
            display.starts_with("launch: the launcher's process ended") && display.contains("lxc/lxc#4670"),
            "{display}"
        );
        // A map of other ids (the race needs the caller's own uid mapped), no user namespace, or
        // another runner: the abort is LXC's failure like any other.
        for (s, runner) in [
            (spec("mnt+user", Some(IdMaps::range(100_000, 100_000, 65_536))), root),
            (spec("mnt", None), root),
            (own.clone(), Runner { uid: 1000, gid: 1000 }),
        ] {
            assert!(matches!(caps_text_freed(launch(), &s, runner), HarnessError::Launch(m) if m == CI_ABORT));
        }
        // Other failures of the same start are not it.
        let other =
            HarnessError::Launch("the launcher's process ended (exit 1) before starting the probe: boom".into());
        assert!(matches!(caps_text_freed(other, &own, root), HarnessError::Launch(_)));
        let hung = HarnessError::Timeout { after: std::time::Duration::ZERO, during: CI_ABORT.into() };
        assert!(matches!(caps_text_freed(hung, &own, root), HarnessError::Timeout { .. }));
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

    /// A hybrid host like this one (memory, pids, cpu, blkio, devices on v1; hugetlb on cgroup2,
    /// delegated here) and a cgroup2-only host, as their files read.
    fn layout(v2_only: bool) -> CgroupLayout {
        let (mountinfo, proc_cgroups, own) = if v2_only {
            (
                "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t1\npids\t0\t1\t1\ncpu\t0\t1\t1\n\
                 blkio\t0\t1\t1\ndevices\t0\t1\t1\nnet_cls\t0\t1\t1\n",
                "0::/\n",
            )
        } else {
            (
                "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 36 31 0:33 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n\
                 37 31 0:34 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n\
                 39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
                "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t4\t1\t1\nblkio\t7\t1\t1\n\
                 devices\t5\t1\t1\npids\t8\t1\t1\nnet_cls\t0\t1\t1\nhugetlb\t0\t1\t1\n",
                "8:pids:/\n7:blkio:/\n5:devices:/\n4:memory:/\n1:cpu:/\n0::/\n",
            )
        };
        CgroupLayout::from_texts(
            mountinfo,
            proc_cgroups,
            own,
            |p| {
                let name = p.file_name()?.to_str()?;
                match (v2_only, name) {
                    (true, "cgroup.controllers" | "cgroup.subtree_control") => Some("cpu io memory pids\n".into()),
                    (false, "cgroup.controllers" | "cgroup.subtree_control") => Some("hugetlb\n".into()),
                    _ => None,
                }
            },
            |_| true,
        )
    }

    fn lines(settings: &[(&str, &str)], v2_only: bool) -> Result<Vec<(String, String)>, String> {
        let settings: Vec<Setting> = settings.iter().map(|(k, v)| Setting::new(*k, *v)).collect();
        cgroup_limit_lines(&settings, &layout(v2_only))
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn limits_use_the_key_of_the_hierarchy_each_controller_is_on() {
        // Hybrid: v1 files through the one table, in its order; hugetlb on cgroup2.
        let got = lines(
            &[
                ("memory.max", "67108864"),
                ("memory.swap.max", "0"),
                ("pids.max", "16"),
                ("cpu.max", "20000 100000"),
                ("cpu.weight", "10000"),
                ("io.max", "7:3 rbps=4194304"),
                ("devices", "c 1:3 rwm"),
                ("hugetlb.2MB.max", "4194304"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("lxc.cgroup.memory.limit_in_bytes", "67108864"),
                ("lxc.cgroup.memory.memsw.limit_in_bytes", "67108864"),
                ("lxc.cgroup.pids.max", "16"),
                ("lxc.cgroup.cpu.cfs_period_us", "100000"),
                ("lxc.cgroup.cpu.cfs_quota_us", "20000"),
                ("lxc.cgroup.cpu.shares", "102400"),
                ("lxc.cgroup.blkio.throttle.read_bps_device", "7:3 4194304"),
                ("lxc.cgroup.devices.deny", "a"),
                ("lxc.cgroup.devices.allow", "c 1:3 rwm"),
                ("lxc.cgroup2.hugetlb.2MB.max", "4194304"),
            ])
        );
        // cgroup2 only: the v2 file and value as they are.
        let got = lines(&[("memory.max", "67108864"), ("cpu.max", "20000 100000"), ("io.max", "7:3 rbps=1")], true);
        assert_eq!(
            got.unwrap(),
            pairs(&[
                ("lxc.cgroup2.memory.max", "67108864"),
                ("lxc.cgroup2.cpu.max", "20000 100000"),
                ("lxc.cgroup2.io.max", "7:3 rbps=1"),
            ])
        );
        // The device list on a pure cgroup2 host: the same rules under lxc.cgroup2.
        assert_eq!(
            lines(&[("devices", "c 1:3 rwm")], true).unwrap(),
            pairs(&[("lxc.cgroup2.devices.deny", "a"), ("lxc.cgroup2.devices.allow", "c 1:3 rwm")])
        );
    }

    #[test]
    fn limits_lxc_cannot_express_here_are_refused_with_the_reason() {
        let e = lines(&[("net_cls.classid", "1048577")], false).unwrap_err();
        assert!(e.contains("mounted on no hierarchy"), "{e}");
        let e = lines(&[("net_cls.classid", "1048577")], true).unwrap_err();
        assert!(e.contains("mounted on no hierarchy"), "{e}");
        let e = lines(&[("memory.swap.max", "0")], false).unwrap_err();
        assert!(e.contains("memory.max must be set"), "{e}");
    }

    #[test]
    fn a_limit_case_gets_its_keys_a_top_level_cgroup_and_no_autodev() {
        let spec = CaseSpec {
            limits: Some(crate::limits::matrix::cgroup_view()),
            ..spec_for("mnt".parse().unwrap(), RootfsMode::Host, LauncherKind::Lxc)
        };
        let limits = pairs(&[("lxc.cgroup.pids.max", "16")]);
        let c = config_text(&spec, Path::new("/tmp/isoprobe-x/case-1"), "isoprobe-x-1-lxc", &limits);
        assert!(c.contains("lxc.cgroup.pids.max = 16\n"), "{c}");
        assert!(c.contains("lxc.autodev = 0\n"), "{c}");
        assert!(c.contains("lxc.cgroup.dir.container = isoprobe-x-1-lxc\n"), "{c}");
        assert!(c.contains("lxc.cgroup.dir.monitor = isoprobe-x-1-lxc-monitor\n"), "{c}");
        // Only lxc-execute expresses limits.
        assert!(Lxc::new().capabilities().cgroup_limits);
        assert!(!Lxc::with_attach().capabilities().cgroup_limits);
    }

    #[test]
    fn lxc_refuses_specs_without_a_mount_namespace() {
        let spec = spec_for("pid".parse().unwrap(), RootfsMode::Host, LauncherKind::Lxc);
        let skip = Lxc::new().supports(&spec, Runner { uid: 0, gid: 0 }).unwrap_err();
        assert!(skip.reason.contains("host's"), "{}", skip.reason);
    }
}
