//! The native launcher: a [`CaseSpec`] turned into clone3/clone flags, an unshare-mode or a
//! join-mode probe, and the init plan for what is left to the probe.
//!
//! Who does what, per path:
//!
//! | step                  | clone3 / clone            | unshare                        | setns (join)             |
//! |-----------------------|---------------------------|--------------------------------|--------------------------|
//! | create namespaces     | the clone flags           | the unsharer's unshare(2)      | the container (clone3)   |
//! | uid/gid maps          | harness, before GO        | harness, after the unsharer's U | — (joins as root inside) |
//! | time offsets          | probe init (re-exec)      | the unsharer, before its fork  | the container            |
//! | hostname, mounts, root| probe init                | probe init                     | the container (the joiner enters its root) |
//! | cgroup                | CLONE_INTO_CGROUP (clone3)| CLONE_INTO_CGROUP of the unsharer | CLONE_INTO_CGROUP of the joiner |

use std::time::Instant;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::probe::{JoinVia, Mode};
use isoprobe_probes::wire::{InitPlan, PropagationPlan, RootPlan, TimeOffsets};

use super::process::{ProbeProcess, SpawnRequest, spawn_probe, spawn_probe_attached};
use super::{Capabilities, IdMapSupport, Launcher, OffsetSupport, Performer, StartContext, Started, ToolInfo};
use crate::case_env::{CaseEnv, dirs};
use crate::error::HarnessError;
use crate::run_env::RunEnv;
use crate::spec::{CaseSpec, LauncherKind, RootfsMode};
use crate::sys::clone::CloneCall;
use crate::verdict::Skip;

/// Whether the probe's init creates the time namespace and writes its offsets, then re-executes
/// itself into it: clone(2) cannot even express CLONE_NEWTIME.
pub(crate) fn time_in_probe(spec: &CaseSpec) -> bool {
    spec.has(NsKind::Time) && spec.launcher == LauncherKind::Clone
}

/// The offsets the launcher writes for the time namespace its clone3 makes, as a runtime does
/// before its container's exec: the child is cloned with CLONE_NEWTIME and CLONE_VM, so it enters
/// the namespace only at its exec (`copy_namespaces`, kernel/nsproxy.c), and until then the
/// namespace takes offsets through `/proc/<child>/timens_offsets`. Non-zero offsets only: a zero
/// one is the clone's own namespace as it comes, entered at the clone (fork semantics, any
/// kernel with time namespaces).
pub fn time_offsets_before_exec(spec: &CaseSpec) -> Option<TimeOffsets> {
    let clone3 = matches!(spec.launcher, LauncherKind::Clone3 | LauncherKind::SetnsNsFiles | LauncherKind::SetnsPidfd);
    spec.time_offsets.filter(|t| clone3 && spec.has(NsKind::Time) && !t.is_zero())
}

/// Whether the probe enters its time namespace at an execve (the probe's re-execution, or its
/// first exec after the launcher wrote the offsets).
pub(crate) fn time_entered_by_exec(spec: &CaseSpec) -> bool {
    time_in_probe(spec) || time_offsets_before_exec(spec).is_some()
}

/// Whether the probe unshares its cgroup namespace itself, after the harness attached it: a limit
/// case attaches through cgroup.procs after the clone, and a namespace made by the clone would be
/// rooted at the harness's cgroups instead of the case's.
fn cgroup_ns_in_probe(spec: &CaseSpec, case: &CaseEnv) -> bool {
    spec.has(NsKind::Cgroup) && case.limits.is_some()
}

/// The steps left to the probe of a container's first process.
pub fn init_plan(spec: &CaseSpec, case: &CaseEnv) -> InitPlan {
    let mnt = spec.has(NsKind::Mnt);
    let on_host = |sub: &str| case.host_path(sub).to_string_lossy().into_owned();
    let (mount_proc, mount_sys, root) = match spec.rootfs {
        // On the host's filesystem, remount only what a new namespace makes stale.
        RootfsMode::Host => (
            (mnt && spec.has(NsKind::Pid)).then(|| "/proc".to_owned()),
            (mnt && spec.has(NsKind::Net)).then(|| "/sys".to_owned()),
            RootPlan::Keep,
        ),
        RootfsMode::PivotRoot => (
            Some(on_host(dirs::PROC)),
            Some(on_host(dirs::SYS)),
            RootPlan::PivotRoot { new_root: case.dir.to_string_lossy().into_owned(), put_old: dirs::OLD_ROOT.into() },
        ),
        // Without a mount namespace a chroot must not mount anything: it would be the host's.
        RootfsMode::Chroot => (
            mnt.then(|| on_host(dirs::PROC)),
            mnt.then(|| on_host(dirs::SYS)),
            RootPlan::Chroot { new_root: case.dir.to_string_lossy().into_owned() },
        ),
    };
    InitPlan {
        hostname: spec.hostname.clone().filter(|_| spec.has(NsKind::Uts)),
        time_offsets: time_in_probe(spec).then(|| spec.time_offsets.unwrap_or_default()),
        private_mounts: mnt,
        mount_proc,
        mount_sys,
        root,
        unshare_cgroup: cgroup_ns_in_probe(spec, case),
        propagation: spec
            .propagation
            .filter(|_| mnt)
            .map(|p| PropagationPlan { mount: case.probe_path(crate::mount_case::PROP), mode: p.container }),
    }
}

/// Starts the container's first probe (clone3, clone or unshare path). `spec` is resolved.
pub fn start_container(
    spec: &CaseSpec,
    case: &CaseEnv,
    run: &RunEnv,
    deadline: Instant,
) -> Result<ProbeProcess, HarnessError> {
    start_container_planted(spec, case, run, deadline, NsSet::EMPTY)
}

/// [`start_container`] with the fault plant's kinds dropped from the clone flags and, through the
/// probe's environment, from its own unshare calls.
fn start_container_planted(
    spec: &CaseSpec,
    case: &CaseEnv,
    run: &RunEnv,
    deadline: Instant,
    plant: NsSet,
) -> Result<ProbeProcess, HarnessError> {
    let exe = case.probe_exe(run);
    let mut flags = spec.namespaces.clone_flags() & !plant.clone_flags();
    if time_in_probe(spec) || spec.launcher == LauncherKind::Unshare {
        flags &= !NsKind::Time.clone_flag();
    }
    if cgroup_ns_in_probe(spec, case) {
        flags &= !NsKind::Cgroup.clone_flag();
    }
    let (call, ns_flags, mode) = match spec.launcher {
        LauncherKind::Clone3 | LauncherKind::SetnsNsFiles | LauncherKind::SetnsPidfd => {
            (CloneCall::Clone3, flags, Mode::Observe)
        }
        LauncherKind::Clone => (CloneCall::Clone, flags, Mode::Observe),
        LauncherKind::Unshare => (
            CloneCall::Clone3,
            0,
            Mode::Unshare { kinds: spec.namespaces, sync_fd: 3, time_offsets: spec.time_offsets },
        ),
        other => return Err(HarnessError::Launch(format!("the native launcher cannot start `{}`", other.name()))),
    };
    // clone(2) has no CLONE_INTO_CGROUP; the probe then stays in the harness's cgroup, or for a
    // limit case is attached through cgroup.procs like on v1.
    let cgroup = case.clone_into_cgroup().filter(|_| call == CloneCall::Clone3);
    let cloned_into_v2 = cgroup.is_some();
    let attach = |pid| case.attach_after_clone(pid, cloned_into_v2);
    spawn_probe_attached(
        SpawnRequest {
            call,
            ns_flags,
            cgroup,
            exe: &exe,
            mode,
            id_maps: spec.id_maps.as_ref(),
            time_offsets: time_offsets_before_exec(spec),
            runner: run.runner,
            deadline,
            plant,
        },
        case.limits.is_some().then_some(&attach as _),
    )
}

/// Starts a probe that joins the running container `target` (a pid in the harness's namespace).
pub fn start_joiner(
    spec: &CaseSpec,
    case: &CaseEnv,
    run: &RunEnv,
    target: i32,
    deadline: Instant,
    plant: NsSet,
) -> Result<ProbeProcess, HarnessError> {
    let via = match spec.launcher {
        LauncherKind::SetnsPidfd => JoinVia::Pidfd,
        _ => JoinVia::NsFiles,
    };
    // The joiner runs the host's copy of the probe: it execs before entering the container, and
    // re-executes itself through an fd after.
    spawn_probe(SpawnRequest {
        call: CloneCall::Clone3,
        ns_flags: 0,
        cgroup: case.cgroup.as_ref().map(|c| c.fd()),
        exe: &run.probe_exe,
        mode: Mode::Join { target, via, kinds: spec.namespaces },
        id_maps: None,
        time_offsets: None,
        runner: run.runner,
        deadline,
        plant,
    })
}

/// The native launcher as a [`Launcher`]: one instance per path.
#[derive(Debug, Clone, Copy)]
pub struct NativeLauncher(pub LauncherKind);

impl Launcher for NativeLauncher {
    fn kind(&self) -> LauncherKind {
        self.0
    }

    fn tool(&self) -> Result<Option<&ToolInfo>, Skip> {
        Ok(None)
    }

    /// Everything: the native launcher is the reference (the generic requirements still apply).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            namespaces: NsSet::ALL,
            rootfs: RootfsMode::ALL.to_vec(),
            id_maps: IdMapSupport::Any,
            hostname: Performer::Launcher,
            proc: Performer::Launcher,
            sysfs: Performer::Launcher,
            time_offsets: OffsetSupport::Nanoseconds,
            // The clone paths attach the probe to the case's cgroups between clone and exec; the
            // unshare and setns paths do not (a joiner would share the container's cgroup).
            cgroup_limits: matches!(self.0, LauncherKind::Clone3 | LauncherKind::Clone),
            rootless: true,
        }
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let spec = ctx.spec.launched_by(self.0.container_launcher());
        let process = start_container_planted(&spec, ctx.case, ctx.run, ctx.deadline, ctx.plant)?;
        Ok(Started { probe_pid: process.pid, process, init: init_plan(&spec, ctx.case), teardown: None })
    }

    fn start_joiner(&self, ctx: &StartContext<'_>, container: &Started) -> Result<Started, HarnessError> {
        let process =
            start_joiner(ctx.spec, ctx.case, ctx.run, container.process.pid.as_raw(), ctx.deadline, ctx.plant)?;
        Ok(Started { probe_pid: process.pid, process, init: InitPlan::default(), teardown: None })
    }
}
