//! runc and crun as launchers, from a generated OCI bundle (see [`super::oci_spec`]).
//!
//! | spec setting | OCI config |
//! |---|---|
//! | namespaces | `linux.namespaces` (runc: the kinds `runc features` lists; crun: all eight) |
//! | uid/gid maps | `linux.uidMappings`, `linux.gidMappings` (any map as root; rootless: the caller's own ids) |
//! | hostname | `hostname` |
//! | rootfs | `root.path` = the case rootfs; the runtime pivot_roots into it (no host root, no plain chroot) |
//! | /proc, /sys | `mounts`: a new proc and sysfs where the user namespace owns the pid and network namespaces, else recursive binds of the host's (as `runc spec --rootless` does) |
//! | time offsets | `linux.timeOffsets` (crun) |
//! | propagation (a mount case) | a `mounts[]` bind of the propagation mount point with the mode as its option; the runtime's default root propagation (see `launcher::propagation`) |
//! | cgroups | `linux.cgroupsPath` = `/isoprobe-<run>-<case>-oci` as root; the runtime removes it on delete, the teardown checks |
//! | cgroup limits | `linux.resources` (`resources_for`): on v1 hierarchies the typed fields, filled from the v1 writes of the one v2→v1 table; on a cgroup2-only host `unified` with the v2 files themselves (and the typed `cpu.idle`/`cpu.burst` where the runtime's release writes them); crun on a hybrid host uses the v1 hierarchies only |
//!
//! The container runs with every capability (as the native launcher's probe does) and `terminal:
//! false`, so the runtime passes stdio through. State lives in `--root <run dir>/<runtime>-state`;
//! `run` deletes the container when it exits, and the teardown runs `delete --force` if it did not.
//!
//! crun 1.8 refuses a hybrid cgroup layout (cgroup2 mounted at /sys/fs/cgroup/unified beside v1
//! hierarchies); on such a host it runs inside util-linux unshare(1) in a mount namespace of its
//! own with /sys/fs/cgroup/unified unmounted, where it sees a plain v1 layout (DESIGN.md,
//! "Launchers"). The wrapper's namespace is a *slave* of the host's (`--propagation slave`): the
//! unmount stays in it, and mounts the host makes still propagate in, so whether they reach the
//! container is crun's own doing, not borrowed from a private wrapper (the launcher header of the
//! report names the wrapper). The unmount is `umount -n`: without it util-linux's libmount
//! creates /run/mount (for its utab) on the host.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::{Exercise, InitPlan};

use super::oci_spec::{
    self, BlockIo, DeviceRule, IdMapping, Linux, Mount, Namespace, Process, Resources, Root, Spec, ThrottleDevice,
    TimeOffset, User,
};
use super::tool::{
    SharedHostDirs, TeardownStep, ToolCell, ToolLeftovers, WorkDir, run_helper, start_tool, tool_env, version_triple,
    wait_for_probe, which,
};
use crate::cgroup::table::{Setting, to_v1};
use crate::cgroup::{CgroupLayout, LayoutMode, Placement, Version};
use crate::error::{Context, HarnessError};
use crate::launcher::{
    Capabilities, IdMapSupport, Launcher, LimitCgroup, OffsetSupport, Performer, StartContext, Started, ToolInfo,
};
use crate::limits::LimitSpec;
use crate::requirement::Requirement;
use crate::spec::{CaseSpec, IdMaps, LauncherKind, RootfsMode, Runner};
use crate::verdict::Skip;

/// crun's default state root, which it creates on every invocation (even `crun --version`, and
/// with `--root` elsewhere), as root with mode 0700.
static CRUN_RUN_DIR: SharedHostDirs = SharedHostDirs::new("/run/crun", 0o700, "isoprobe-crun-run-dir-lock");

/// Which OCI runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Crun,
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
        })
    }
}

#[derive(Debug)]
pub struct Oci {
    runtime: Runtime,
    tool: ToolCell,
    namespaces: OnceLock<NsSet>,
}

impl Oci {
    pub fn new(runtime: Runtime) -> Oci {
        let tool = match runtime {
            Runtime::Runc => ToolCell::new(LauncherKind::Runc, "runc", "runc", &["--version"]),
            Runtime::Crun => {
                ToolCell::new(LauncherKind::Crun, "crun", "crun", &["--version"]).with_host_dirs(&CRUN_RUN_DIR)
            }
        };
        Oci { runtime, tool, namespaces: OnceLock::new() }
    }

    fn name(&self) -> &'static str {
        match self.runtime {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
        }
    }

    /// The namespace kinds the runtime supports: `runc features` lists them (runc 1.1 and later);
    /// crun has no such command, and supports all eight (the time namespace since crun 0.19).
    fn supported_namespaces(&self) -> NsSet {
        *self.namespaces.get_or_init(|| match (self.runtime, self.tool.get()) {
            (Runtime::Runc, Ok(t)) => runc_features_namespaces(&t.path).unwrap_or(NsSet::ALL.without(NsKind::Time)),
            _ => NsSet::ALL,
        })
    }

    /// The installed release, `major.minor.patch`, from its `--version`.
    fn version(&self) -> Option<(u32, u32, u32)> {
        self.tool.get().ok().and_then(|t| version_triple(&t.version))
    }

    /// crun as root on a hybrid host: run with /sys/fs/cgroup/unified unmounted (see `command`).
    fn hides_cgroup2(&self) -> bool {
        self.runtime == Runtime::Crun && Runner::current().is_root() && hybrid_cgroups()
    }

    /// The executable and leading arguments: crun on a hybrid host runs under unshare(1) with the
    /// cgroup2 mount removed from its private mount namespace.
    fn command(&self, tool: &ToolInfo) -> Result<(PathBuf, Vec<String>), HarnessError> {
        let mut args = Vec::new();
        if self.hides_cgroup2() {
            let unshare = which("unshare").ok_or_else(|| {
                HarnessError::Launch("crun on a hybrid cgroup host needs unshare(1) (util-linux)".into())
            })?;
            args.extend(
                [
                    "--mount",
                    "--propagation",
                    "slave",
                    "--",
                    "/bin/sh",
                    "-c",
                    "umount -n /sys/fs/cgroup/unified && exec \"$0\" \"$@\"",
                ]
                .map(String::from),
            );
            args.push(tool.path.to_string_lossy().into_owned());
            return Ok((unshare, args));
        }
        if self.runtime == Runtime::Runc && !Runner::current().is_root() {
            args.extend(["--rootless", "true"].map(String::from));
        }
        Ok((tool.path.clone(), args))
    }
}

/// `linux.namespaces` of `runc features`, mapped to isoprobe's kinds.
fn runc_features_namespaces(runc: &Path) -> Option<NsSet> {
    let out = std::process::Command::new(runc).arg("features").output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let list = v.get("linux")?.get("namespaces")?.as_array()?;
    Some(list.iter().filter_map(|n| n.as_str()).filter_map(oci_kind).collect())
}

/// The OCI name of a namespace kind.
fn oci_name(kind: NsKind) -> &'static str {
    match kind {
        NsKind::Pid => "pid",
        NsKind::Uts => "uts",
        NsKind::Mnt => "mount",
        NsKind::Ipc => "ipc",
        NsKind::Net => "network",
        NsKind::User => "user",
        NsKind::Cgroup => "cgroup",
        NsKind::Time => "time",
    }
}

fn oci_kind(name: &str) -> Option<NsKind> {
    NsKind::ALL.into_iter().find(|k| oci_name(*k) == name)
}

/// cgroup2 mounted at /sys/fs/cgroup/unified beside v1 hierarchies.
fn hybrid_cgroups() -> bool {
    crate::cgroup::host_layout().is_ok_and(|l| {
        l.mode() == LayoutMode::Hybrid
            && l.hierarchies
                .iter()
                .any(|h| h.version == Version::V2 && h.mount_point == Path::new("/sys/fs/cgroup/unified"))
    })
}

impl Launcher for Oci {
    fn kind(&self) -> LauncherKind {
        match self.runtime {
            Runtime::Runc => LauncherKind::Runc,
            Runtime::Crun => LauncherKind::Crun,
        }
    }

    fn tool(&self) -> Result<Option<&ToolInfo>, Skip> {
        self.tool.get().map(Some)
    }

    fn wrapper(&self) -> Option<String> {
        self.hides_cgroup2().then(|| {
            "unshare --mount --propagation slave, with /sys/fs/cgroup/unified unmounted (crun refuses a hybrid \
             cgroup layout); the wrapper's mount namespace receives the host's mounts, so mount isolation is \
             crun's own"
                .into()
        })
    }

    fn capabilities(&self) -> Capabilities {
        let ns = self.supported_namespaces();
        Capabilities {
            namespaces: ns,
            rootfs: vec![RootfsMode::PivotRoot],
            id_maps: if Runner::current().is_root() { IdMapSupport::Any } else { IdMapSupport::OwnIdsOnly },
            hostname: Performer::Launcher,
            proc: Performer::Launcher,
            sysfs: Performer::Launcher,
            time_offsets: if ns.contains(NsKind::Time) { OffsetSupport::Nanoseconds } else { OffsetSupport::None },
            // As root the runtime creates the container's cgroup (`cgroupsPath`) and writes
            // `linux.resources`; rootless, isoprobe gives it no cgroup.
            cgroup_limits: Runner::current().is_root(),
            rootless: true,
        }
    }

    /// crun writes the time offsets from inside the container's user namespace, after becoming its
    /// root; the process is then no longer dumpable, /proc/self/timens_offsets belongs to the
    /// host's root, and the write fails ("opening file `/proc/self/timens_offsets` for writing:
    /// Permission denied", seen with crun 1.8.1).
    fn supports(&self, spec: &CaseSpec, runner: Runner) -> Result<(), Skip> {
        if self.runtime == Runtime::Crun && !runner.is_root() && hybrid_cgroups() {
            let version = self.tool.get().map(|t| t.version.clone()).unwrap_or_default();
            return Err(Requirement::LauncherFeature { launcher: "crun", what: "rootless-hybrid-cgroups".into() }
                .skip(format!(
                    "{version} refuses a hybrid cgroup layout (\"cgroups in hybrid mode not supported, drop all \
                     controllers from cgroupv2\", also with --cgroup-manager=disabled), and an unprivileged user \
                     cannot hide /sys/fs/cgroup/unified from it without a user namespace of its own"
                )));
        }
        let offsets = spec.time_offsets.is_some_and(|t| !t.is_zero());
        if self.runtime == Runtime::Crun && offsets && spec.has(NsKind::Time) && spec.has(NsKind::User) {
            let version = self.tool.get().map(|t| t.version.clone()).unwrap_or_default();
            return Err(Requirement::LauncherFeature { launcher: "crun", what: "time-offsets-with-user-ns".into() }
                .skip(format!(
                    "{version} cannot set time offsets in a user namespace: it writes /proc/self/timens_offsets \
                     after becoming root there, when the file is no longer writable (EACCES)"
                )));
        }
        Ok(())
    }

    fn supports_limits(&self, _spec: &CaseSpec, limits: &LimitSpec, layout: &CgroupLayout) -> Result<(), Skip> {
        let skip = |reason: String| {
            Requirement::LauncherFeature { launcher: self.kind().name(), what: "cgroup-limit".into() }.skip(reason)
        };
        // crun here runs with /sys/fs/cgroup/unified unmounted (the hybrid workaround): the probe
        // stays in the harness's cgroup2 cgroup, the root.
        match limits.exercise {
            // perf_event is bound to no v1 hierarchy here: it counts per cgroup on cgroup2 only.
            Exercise::PerfCount { .. } if self.hides_cgroup2() => {
                return Err(skip(
                    "perf_event counts the case's cgroup on cgroup2, which crun does not use here (it runs with \
                     /sys/fs/cgroup/unified unmounted, the hybrid workaround)"
                        .into(),
                ));
            }
            Exercise::CgroupView { .. } if self.hides_cgroup2() => {
                return Err(skip(
                    "crun does not use cgroup2 here (it runs with /sys/fs/cgroup/unified unmounted, the hybrid \
                     workaround): the probe stays in the root cgroup2 cgroup, which a cgroup2 mount of its own \
                     shows at its root with or without a cgroup namespace, so the view cannot tell them apart"
                        .into(),
                ));
            }
            _ => {}
        }
        resources_for(self.runtime, self.version(), &limits.settings.settings(Some((0, 0))), layout, None)
            .map(drop)
            .map_err(skip)
    }

    fn limit_cgroup(&self, ctx: &StartContext<'_>) -> Option<LimitCgroup> {
        Some(LimitCgroup {
            name: format!("isoprobe-{}-{}-oci", ctx.run.run_token, ctx.case.id),
            cgroup2: !self.hides_cgroup2(),
        })
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let tool = self.tool.for_start()?;
        let work = WorkDir::create(ctx, self.name())?;
        let id = format!("isoprobe-{}-{}", ctx.run.run_token, ctx.case.id);
        let cgroup = Runner::current().is_root().then(|| format!("{id}-oci"));
        let mut config = bundle_config(ctx.spec, &ctx.case.dir, cgroup.as_deref());
        if let Some(l) = &ctx.spec.limits {
            let loop_dev = ctx.case.limits.as_ref().and_then(|c| c.loopdev.as_ref()).map(|d| d.rdev);
            let settings = l.settings.settings(loop_dev);
            config.linux.resources = Some(
                resources_for(self.runtime, self.version(), &settings, ctx.run.layout, loop_dev)
                    .map_err(HarnessError::Launch)?,
            );
        }
        if self.runtime == Runtime::Crun {
            crun_time_annotation(&mut config);
        }
        let json = serde_json::to_string_pretty(&config).expect("an OCI config serialises");
        let path = work.path.join("config.json");
        fs::write(&path, json).ctx(|| format!("write {}", path.display()))?;
        let state = ctx.run.dir.join(format!("{}-state", self.name()));
        let (exe, mut args) = self.command(tool)?;
        let global = ["--root".to_owned(), state.to_string_lossy().into_owned()];
        args.extend(global.iter().cloned());
        args.extend(["run".into(), "--bundle".into(), work.path.to_string_lossy().into_owned(), id.clone()]);

        let mut leftovers = ToolLeftovers::new(Some(work));
        leftovers.cgroups.extend(cgroup);
        if self.runtime == Runtime::Crun && Runner::current().is_root() {
            leftovers.host_dirs = Some(CRUN_RUN_DIR.enter(Vec::new(), Vec::new(), Vec::new(), ctx.deadline)?);
        }
        let (helper_exe, mut helper_args) = self.command(tool)?;
        helper_args.extend(global);
        let state_entry = state.join(&id);
        leftovers.before.push(TeardownStep {
            name: "delete the container if the runtime left it",
            run: Box::new(move || delete_if_left(&helper_exe, &helper_args, &id, &state_entry)),
        });
        let mut process = start_tool(ctx, &exe, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        Ok(Started { process, probe_pid, init: InitPlan::default(), teardown: Some(Box::new(leftovers)) })
    }
}

/// crun 1.8 creates the time namespace but ignores `linux.timeOffsets` (runtime-spec 1.1); it
/// writes the offsets given in its own annotation instead (crun(1), "run.oci.timens_offset=ID SEC
/// NSEC: the offset to be written to /proc/self/timens_offsets"). The file takes one line per
/// clock, so both clocks go into the one annotation, one per line.
fn crun_time_annotation(config: &mut Spec) {
    if config.linux.time_offsets.is_empty() {
        return;
    }
    let lines: Vec<String> =
        config.linux.time_offsets.iter().map(|(clock, o)| format!("{clock} {} {}", o.secs, o.nanosecs)).collect();
    config.annotations.insert("run.oci.timens_offset".into(), lines.join("\n"));
}

/// `<runtime> delete --force <id>` when the state entry is still there after `run` returned.
fn delete_if_left(exe: &Path, global: &[String], id: &str, state_entry: &Path) -> Vec<String> {
    if !state_entry.exists() {
        return Vec::new();
    }
    let mut args: Vec<&str> = global.iter().map(String::as_str).collect();
    args.extend(["delete", "--force", id]);
    match run_helper(exe, &args) {
        Ok((true, _)) if !state_entry.exists() => Vec::new(),
        Ok((_, stderr)) => {
            vec![format!("the OCI runtime left container {id} behind ({}): {stderr}", state_entry.display())]
        }
        Err(e) => vec![e.to_string()],
    }
}

/// `linux.resources` for a case's settings (canonical v2 vocabulary) on a host with `layout`, for
/// `runtime` at `version` (`major.minor.patch` of its `--version`).
///
/// A setting whose controller is on a v1 hierarchy goes into OCI's typed fields, which are cgroup
/// v1's files: through the one v2→v1 table, each v1 write into its field (memory.memsw.limit_in_bytes
/// is OCI's `memory.swap`: memory plus swap). On a cgroup2-only host a setting goes into
/// `linux.resources.unified` as the v2 file and value themselves (config-linux.md, "Unified"), so
/// the runtime's own v1→v2 conversions (runc turns `cpu.shares` into a cpu.weight of its own
/// formula) stay out of the case; the typed `cpu.burst` and `cpu.idle` of runtime-spec 1.1 are used
/// instead where the runtime's release writes them (see `TYPED_CPU_SINCE`). On a hybrid host a
/// controller on cgroup2 cannot be set: runc refuses `unified` there and crun does not see cgroup2
/// (the workaround above). A device list cannot be expressed (both runtimes allow their default
/// devices besides it). The error is the skip's reason. `loop_dev`, the io case's own loop device,
/// is allowed to be read: both runtimes deny every device but their default list, and the io
/// exercise reads that one.
pub fn resources_for(
    runtime: Runtime,
    version: Option<(u32, u32, u32)>,
    settings: &[Setting],
    layout: &CgroupLayout,
    loop_dev: Option<(u64, u64)>,
) -> Result<Resources, String> {
    let mut r = Resources::default();
    let idle = settings.iter().any(|s| s.key == "cpu.idle" && s.value == "1");
    for s in settings {
        if s.key == "devices" {
            return Err(devices_refusal(runtime).into());
        }
        // The kernel refuses cpu.weight on an idle group (EINVAL: kernel/sched/core.c,
        // sched_group_set_shares, tg_is_idle) and gives an idle group the SCHED_IDLE weight
        // whatever its cpu.weight was (kernel/sched/fair.c, sched_group_set_idle): a case writes
        // the weight first, which a map (`unified`) cannot order, and which changes nothing the
        // group then gets, so with cpu.idle 1 the weight is left out.
        if idle && s.key == "cpu.weight" {
            continue;
        }
        let (v1, _) = crate::cgroup::table::controllers(&s.key).map_err(|e| e.to_string())?;
        let typed = typed_cpu(runtime, version, &s.key);
        match layout.placement(v1) {
            Placement::V1 { .. } => {}
            Placement::V2 { .. } if layout.mode() == LayoutMode::V2 => {
                match typed {
                    Some(Ok(())) => set_typed_cpu(&mut r, s)?,
                    _ => drop(r.unified.insert(s.key.clone(), s.value.clone())),
                }
                continue;
            }
            Placement::V2 { .. } => return Err(hybrid_refusal(runtime, &s.key, v1)),
            Placement::Unusable(_) if v1 == "hugetlb" => return Err(hybrid_refusal(runtime, &s.key, v1)),
            Placement::Unmounted => {
                return Err(format!(
                    "`{}` needs the {v1} controller, which is mounted on no hierarchy here: {runtime} creates the \
                     container's cgroups only on mounted hierarchies",
                    s.key
                ));
            }
            Placement::Unusable(why) => return Err(format!("`{}` cannot be set by {runtime} here: {why}", s.key)),
        }
        if crate::cgroup::table::lookup(&s.key).is_ok_and(|m| m.v1 == crate::cgroup::table::Conversion::V2Only) {
            return Err(format!(
                "`{}` is a cgroup2 file with no cgroup v1 counterpart, and {v1} is on a v1 hierarchy here: OCI's \
                 typed fields are v1's files, and linux.resources.unified is cgroup2's only",
                s.key
            ));
        }
        if let Some(supported) = typed {
            supported?;
            set_typed_cpu(&mut r, s)?;
            continue;
        }
        for (file, value) in to_v1(s, settings).map_err(|e| e.to_string())? {
            set_v1_field(&mut r, &file, value).map_err(|e| format!("`{}` ({file}) {e}", s.key))?;
        }
    }
    if let Some((major, minor)) = loop_dev {
        r.devices.push(DeviceRule {
            allow: true,
            kind: Some("b".into()),
            major: Some(major as i64),
            minor: Some(minor as i64),
            access: Some("r".into()),
        });
    }
    Ok(r)
}

/// Why a device list cannot be expressed, seen with the installed releases.
fn devices_refusal(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Runc => {
            "runc appends its default device rules (null, zero, full, random, urandom, tty, ...: \
             libcontainer/specconv AllowedDevices) after the spec's own, so /dev/zero cannot be denied (seen with \
             runc 1.1.5: deny `a`, allow `c 1:3 rwm`, and /dev/zero still opens)"
        }
        Runtime::Crun => {
            "crun allows its default devices (null, zero, full, random, urandom, tty) besides the spec's rules, so \
             /dev/zero cannot be denied (seen with crun 1.8.1: deny `a`, allow `c 1:3 rwm`, and /dev/zero still \
             opens)"
        }
    }
}

/// Why a setting whose controller is on cgroup2 cannot be set on a hybrid host.
fn hybrid_refusal(runtime: Runtime, key: &str, controller: &str) -> String {
    match runtime {
        Runtime::Runc => format!(
            "`{key}`: {controller} is on cgroup2 here, a hybrid host, where runc writes its typed fields to the v1 \
             hierarchies only and refuses linux.resources.unified (\"invalid configuration: cannot use unified on \
             cgroup v1\", seen with runc 1.1.5)"
        ),
        Runtime::Crun => format!(
            "`{key}`: {controller} is on cgroup2 here, which crun does not use on this hybrid host (it runs with \
             /sys/fs/cgroup/unified unmounted, the hybrid workaround), and writes its typed fields to the v1 \
             hierarchies only"
        ),
    }
}

/// The typed `linux.resources.cpu` fields of runtime-spec 1.1 and the first release of each
/// runtime that writes them: runc 1.2.0 (CHANGELOG, 1.2.0-rc.1: "libct/cg: support SCHED_IDLE for
/// runc cgroupfs", #3377; "Support CFS bandwidth burst for CPU", #3749) and crun 1.5 (NEWS: "cgroup:
/// add support for cpu.idle") and 1.11 ("cgroup: honor cpu burst"). An older release reads the
/// config without complaint and writes nothing for the field, so it is given only to a release that
/// honours it.
const TYPED_CPU_SINCE: &[TypedSince] = &[
    ("cpu.idle", Runtime::Runc, (1, 2, 0), "CHANGELOG 1.2.0-rc.1, #3377"),
    ("cpu.max.burst", Runtime::Runc, (1, 2, 0), "CHANGELOG 1.2.0-rc.1, #3749"),
    ("cpu.idle", Runtime::Crun, (1, 5, 0), "NEWS 1.5"),
    ("cpu.max.burst", Runtime::Crun, (1, 11, 0), "NEWS 1.11"),
];

/// A row of [`TYPED_CPU_SINCE`]: the setting, the runtime, its first release that writes the
/// typed field, and where that release says so.
type TypedSince = (&'static str, Runtime, (u32, u32, u32), &'static str);

/// For a setting with a typed runtime-spec 1.1 field: whether `runtime` at `version` writes it (the
/// error names the release that does). `None` for every other setting.
fn typed_cpu(runtime: Runtime, version: Option<(u32, u32, u32)>, key: &str) -> Option<Result<(), String>> {
    let (_, _, since, source) = TYPED_CPU_SINCE.iter().find(|(k, rt, _, _)| *k == key && *rt == runtime)?;
    let field = if key == "cpu.idle" { "cpu.idle" } else { "cpu.burst" };
    Some(match version {
        Some(v) if v >= *since => Ok(()),
        v => {
            let have = v.map_or_else(|| "of an unknown version".to_owned(), |(a, b, c)| format!("{a}.{b}.{c}"));
            Err(format!(
                "`{key}`: {runtime} {have} does not write linux.resources.{field} ({runtime} does since {}.{}.{}: \
                 {source}), and linux.resources.unified, which could carry {key}, is cgroup2's only",
                since.0, since.1, since.2
            ))
        }
    })
}

/// `cpu.idle` or `cpu.max.burst` into its typed field.
fn set_typed_cpu(r: &mut Resources, s: &Setting) -> Result<(), String> {
    let cpu = r.cpu.get_or_insert_with(Default::default);
    let bad = || format!("`{}`: `{}` is not a number", s.key, s.value);
    match s.key.as_str() {
        "cpu.idle" => cpu.idle = Some(s.value.parse().map_err(|_| bad())?),
        _ => cpu.burst = Some(s.value.parse().map_err(|_| bad())?),
    }
    Ok(())
}

/// One v1 write of the table into OCI's typed field for that file; the error reads after the
/// setting's name.
fn set_v1_field(r: &mut Resources, file: &str, value: String) -> Result<(), String> {
    let num = |v: &str| v.parse::<i64>().map_err(|_| format!("`{v}` is not a number"));
    match file {
        "memory.limit_in_bytes" => r.memory.get_or_insert_with(Default::default).limit = Some(num(&value)?),
        "memory.memsw.limit_in_bytes" => r.memory.get_or_insert_with(Default::default).swap = Some(num(&value)?),
        "pids.max" => r.pids = Some(oci_spec::Pids { limit: num(&value)? }),
        "cpu.cfs_period_us" => r.cpu.get_or_insert_with(Default::default).period = Some(num(&value)? as u64),
        "cpu.cfs_quota_us" => r.cpu.get_or_insert_with(Default::default).quota = Some(num(&value)?),
        "cpu.shares" => r.cpu.get_or_insert_with(Default::default).shares = Some(num(&value)? as u64),
        "cpuset.cpus" => r.cpu.get_or_insert_with(Default::default).cpus = Some(value),
        "cpuset.mems" => r.cpu.get_or_insert_with(Default::default).mems = Some(value),
        f if f.starts_with("blkio.throttle.") => {
            let (dev, rate) = value.split_once(' ').ok_or_else(|| format!("`{value}`"))?;
            let (maj, min) = dev.split_once(':').ok_or_else(|| format!("`{value}`"))?;
            let d = ThrottleDevice { major: num(maj)?, minor: num(min)?, rate: num(rate)? as u64 };
            let io = r.block_io.get_or_insert_with(BlockIo::default);
            match f {
                "blkio.throttle.read_bps_device" => io.throttle_read_bps_device.push(d),
                "blkio.throttle.write_bps_device" => io.throttle_write_bps_device.push(d),
                "blkio.throttle.read_iops_device" => io.throttle_read_iops_device.push(d),
                _ => io.throttle_write_iops_device.push(d),
            }
        }
        _ => return Err("has no field in OCI's linux.resources".into()),
    }
    Ok(())
}

/// The OCI config of the case's container.
fn bundle_config(spec: &CaseSpec, rootfs: &Path, cgroup: Option<&str>) -> Spec {
    let has = |k| spec.has(k);
    let user = has(NsKind::User);
    let bind = |dest: &str| Mount {
        destination: dest.into(),
        fs_type: "bind".into(),
        source: dest.into(),
        options: vec!["rbind".into(), "nosuid".into(), "nodev".into(), "noexec".into()],
    };
    let fresh = |dest: &str, fs: &str| Mount {
        destination: dest.into(),
        fs_type: fs.into(),
        source: fs.into(),
        options: vec!["nosuid".into(), "nodev".into(), "noexec".into()],
    };
    // A new procfs needs the pid namespace owned by the container's user namespace, a new sysfs the
    // network namespace (as in `runc spec --rootless`, which binds the host's /sys).
    let mut mounts = vec![
        if !user || has(NsKind::Pid) { fresh("/proc", "proc") } else { bind("/proc") },
        if !user || has(NsKind::Net) { fresh("/sys", "sysfs") } else { bind("/sys") },
    ];
    // A mount case: the propagation mount point bound in from its host path with the case's
    // container mode as the bind's propagation option (config.md, "Mounts": options; the runtime
    // applies it to the bind after making it: runc's mountPropagate, crun's do_mount), over the
    // copy the recursive bind of the root brought in.
    if let Some(p) = spec.propagation.filter(|_| has(NsKind::Mnt)) {
        let point = format!("/{}", crate::mount_case::PROP);
        mounts.push(Mount {
            destination: point.clone(),
            fs_type: "bind".into(),
            source: rootfs.join(crate::mount_case::PROP).to_string_lossy().into_owned(),
            options: vec!["bind".into(), p.container.name().into()],
        });
    }
    let map = |lines: &[isoprobe_probes::wire::IdMapLine]| -> Vec<IdMapping> {
        lines.iter().map(|l| IdMapping { container_id: l.inside, host_id: l.outside, size: l.count }).collect()
    };
    let maps = spec.id_maps.clone().filter(|_| user).unwrap_or(IdMaps { uid: vec![], gid: vec![] });
    let time_offsets: BTreeMap<String, TimeOffset> = match spec.time_offsets.filter(|_| has(NsKind::Time)) {
        Some(t) => [("monotonic", t.monotonic_ns), ("boottime", t.boottime_ns)]
            .into_iter()
            .map(|(k, ns)| (k.to_owned(), TimeOffset::from_ns(ns)))
            .collect(),
        None => BTreeMap::new(),
    };
    Spec {
        oci_version: oci_spec::OCI_VERSION.into(),
        process: Process {
            terminal: false,
            user: User { uid: 0, gid: 0 },
            args: vec![format!("/{}", isoprobe_probes::PROBE_NAME)],
            env: vec!["PATH=/".into()],
            cwd: "/".into(),
            capabilities: Some(oci_spec::Capabilities::all_sets(&oci_spec::bounding_caps())),
            no_new_privileges: false,
        },
        root: Root { path: rootfs.to_string_lossy().into_owned(), readonly: false },
        hostname: spec.hostname.clone().filter(|_| has(NsKind::Uts)),
        mounts,
        linux: Linux {
            namespaces: spec.namespaces.iter().map(|k| Namespace { kind: oci_name(k).into() }).collect(),
            uid_mappings: map(&maps.uid),
            gid_mappings: map(&maps.gid),
            cgroups_path: cgroup.map(|c| format!("/{c}")),
            time_offsets,
            resources: None,
        },
        annotations: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::spec_for;

    fn config(ns: &str) -> Spec {
        let spec =
            spec_for(ns.parse().unwrap(), RootfsMode::PivotRoot, LauncherKind::Crun).resolve(Runner { uid: 0, gid: 0 });
        bundle_config(&spec, Path::new("/tmp/isoprobe-x/case-1"), Some("isoprobe-x-1-oci"))
    }

    /// This machine's layout: cpu, memory, blkio, devices and pids on v1; hugetlb on cgroup2.
    fn hybrid() -> CgroupLayout {
        CgroupLayout::from_texts(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             36 31 0:33 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n\
             37 31 0:34 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n\
             39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\ncpuset\t3\t1\t1\nmemory\t4\t1\t1\n\
             blkio\t7\t1\t1\ndevices\t5\t1\t1\npids\t8\t1\t1\nnet_cls\t0\t1\t1\nhugetlb\t0\t1\t1\n",
            "8:pids:/\n7:blkio:/\n5:devices:/\n4:memory:/\n3:cpuset:/\n1:cpu:/\n0::/\n",
            |p| p.ends_with("cgroup.controllers").then(|| "hugetlb\n".into()),
            |_| true,
        )
    }

    #[test]
    fn limits_become_linux_resources_through_the_one_table() {
        let settings = [
            Setting::new("memory.max", "67108864"),
            Setting::new("memory.swap.max", "0"),
            Setting::new("pids.max", "16"),
            Setting::new("cpu.max", "20000 100000"),
            Setting::new("cpu.weight", "1000"),
            Setting::new("cpuset.cpus", "1"),
            Setting::new("io.max", "7:3 rbps=4194304"),
        ];
        let r = resources_for(Runtime::Runc, RUNC, &settings, &hybrid(), Some((7, 3))).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["memory"], serde_json::json!({"limit": 67108864, "swap": 67108864}));
        assert_eq!(json["pids"]["limit"], 16);
        assert_eq!(json["cpu"], serde_json::json!({"shares": 10240, "quota": 20000, "period": 100000, "cpus": "1"}));
        assert_eq!(
            json["blockIO"]["throttleReadBpsDevice"],
            serde_json::json!([{"major": 7, "minor": 3, "rate": 4194304}])
        );
        // The io exercise's own device may be read (runc denies devices off its default list).
        assert_eq!(
            json["devices"],
            serde_json::json!([{"allow": true, "type": "b", "major": 7, "minor": 3, "access": "r"}])
        );
    }

    #[test]
    fn limits_runc_cannot_express_here_are_refused_with_the_reason() {
        let refused = |key: &str, value: &str| {
            resources_for(Runtime::Runc, RUNC, &[Setting::new(key, value)], &hybrid(), None).unwrap_err()
        };
        assert!(refused("devices", "c 1:3 rwm").contains("AllowedDevices"));
        assert!(refused("net_cls.classid", "1").contains("mounted on no hierarchy"));
        assert!(refused("hugetlb.2MB.max", "4194304").contains("cannot use unified on cgroup v1"));
        assert!(refused("memory.high", "1048576").contains("no cgroup v1 counterpart"));
        let crun = resources_for(Runtime::Crun, CRUN, &[Setting::new("devices", "c 1:3 rwm")], &hybrid(), None);
        assert!(crun.unwrap_err().contains("crun 1.8.1"));
    }

    /// The installed releases (Debian 12).
    const RUNC: Option<(u32, u32, u32)> = Some((1, 1, 5));
    const CRUN: Option<(u32, u32, u32)> = Some((1, 8, 1));

    /// A cgroup2-only host with every controller enabled for isoprobe's cgroups (the kernel VM).
    fn v2_only() -> CgroupLayout {
        CgroupLayout::from_texts(
            "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t1\t1\ncpuset\t0\t1\t1\nmemory\t0\t1\t1\n\
             blkio\t0\t1\t1\npids\t0\t1\t1\nhugetlb\t0\t1\t1\n",
            "0::/init.scope\n",
            |p| {
                (p.ends_with("cgroup.controllers") || p.ends_with("cgroup.subtree_control"))
                    .then(|| "cpuset cpu io memory hugetlb pids\n".into())
            },
            |_| true,
        )
    }

    /// On cgroup2 every setting is its own v2 file in `unified` (no conversion by the runtime),
    /// the io case's device still allowed by a typed rule.
    #[test]
    fn on_cgroup2_settings_go_into_unified_as_v2_files() {
        let layout = v2_only();
        assert_eq!(layout.mode(), LayoutMode::V2);
        let settings = [
            Setting::new("memory.high", "33554432"),
            Setting::new("memory.max", "67108864"),
            Setting::new("memory.swap.max", "0"),
            Setting::new("cpu.max", "30000 100000"),
            Setting::new("cpu.max.burst", "30000"),
            Setting::new("cpu.weight", "10000"),
            Setting::new("cpu.weight.nice", "-20"),
            Setting::new("io.max", "7:3 rbps=4194304"),
            Setting::new("hugetlb.2MB.max", "4194304"),
        ];
        for (runtime, version) in [(Runtime::Runc, RUNC), (Runtime::Crun, CRUN)] {
            let r = resources_for(runtime, version, &settings, &layout, Some((7, 3))).unwrap();
            let want: BTreeMap<String, String> = settings.iter().map(|s| (s.key.clone(), s.value.clone())).collect();
            assert_eq!(r.unified, want, "{runtime}");
            assert!(r.memory.is_none() && r.cpu.is_none() && r.pids.is_none() && r.block_io.is_none(), "{runtime}");
            assert_eq!(r.devices.len(), 1);
        }
    }

    /// cpu.idle: typed for a release that writes it (crun 1.8.1), `unified` for one that does not
    /// on cgroup2 (runc 1.1.5), a skip naming the release on v1; the weight written before it is
    /// left out (the kernel refuses it on an idle group, and the idle weight replaces it).
    #[test]
    fn typed_cpu_fields_follow_the_runtime_release() {
        let idle = [Setting::new("cpu.idle", "1"), Setting::new("cpu.weight", "10000")];
        let crun = resources_for(Runtime::Crun, CRUN, &idle, &v2_only(), None).unwrap();
        assert_eq!((crun.cpu.as_ref().and_then(|c| c.idle), crun.unified.len()), (Some(1), 0));
        let runc = resources_for(Runtime::Runc, RUNC, &idle, &v2_only(), None).unwrap();
        assert_eq!(runc.unified.into_iter().collect::<Vec<_>>(), [("cpu.idle".to_owned(), "1".to_owned())]);
        let crun_v1 = resources_for(Runtime::Crun, CRUN, &idle, &hybrid(), None).unwrap();
        assert_eq!(crun_v1.cpu.map(|c| (c.idle, c.shares)), Some((Some(1), None)));
        let e = resources_for(Runtime::Runc, RUNC, &idle, &hybrid(), None).unwrap_err();
        assert!(e.contains("runc 1.1.5 does not write linux.resources.cpu.idle") && e.contains("since 1.2.0"), "{e}");
        let burst = [Setting::new("cpu.max.burst", "30000")];
        let e = resources_for(Runtime::Crun, CRUN, &burst, &hybrid(), None).unwrap_err();
        assert!(e.contains("crun 1.8.1 does not write linux.resources.cpu.burst") && e.contains("1.11.0"), "{e}");
        let newer = resources_for(Runtime::Runc, Some((1, 2, 0)), &burst, &hybrid(), None).unwrap();
        assert_eq!(newer.cpu.and_then(|c| c.burst), Some(30_000));
    }

    #[test]
    fn the_bundle_carries_the_spec() {
        let c = config("all");
        let kinds: Vec<&str> = c.linux.namespaces.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["pid", "uts", "mount", "ipc", "network", "user", "cgroup", "time"]);
        assert_eq!(c.hostname.as_deref(), Some("isoprobe-ff"));
        assert_eq!(c.linux.uid_mappings[0].host_id, 100_000);
        assert_eq!(c.linux.cgroups_path.as_deref(), Some("/isoprobe-x-1-oci"));
        assert_eq!(c.linux.time_offsets["boottime"], TimeOffset { secs: 1_209_600, nanosecs: 987_654_321 });
        assert_eq!(c.mounts[0].fs_type, "proc");
        assert_eq!(c.mounts[1].fs_type, "sysfs");
        assert!(!c.process.terminal);
    }

    #[test]
    fn a_user_namespace_without_pid_and_net_binds_proc_and_sys() {
        let c = config("mnt+user");
        assert_eq!((c.mounts[0].fs_type.as_str(), c.mounts[1].fs_type.as_str()), ("bind", "bind"));
        assert!(c.hostname.is_none());
    }

    #[test]
    fn crun_gets_the_offsets_in_its_annotation_too() {
        let mut c = config("mnt+time");
        crun_time_annotation(&mut c);
        assert_eq!(c.annotations["run.oci.timens_offset"], "boottime 1209600 987654321\nmonotonic 604800 123456789");
    }
}
