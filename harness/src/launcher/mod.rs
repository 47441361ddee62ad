//! Launchers: what turns a case spec into a running probe inside a container.
//!
//! The [`Launcher`] trait is the one interface: the native launcher (clone3, clone, unshare and
//! setns paths; the reference, it expresses every spec) is one implementation, and each real
//! container tool in [`external`] is another. A launcher declares what of a [`CaseSpec`] it can
//! express ([`Capabilities`]) and which tool and version it found; what it cannot express is a
//! skip with that precise reason. Where a tool isolates more than it was asked to, its
//! [`Launcher::effective`] spec tells the oracle so, naming the documented default.
//!
//! Every launcher hands back a [`Started`] container whose stdio carries the probe's JSON lines,
//! and an owner ([`Teardown`]) for whatever the tool created on the host.
//!
//! What this module must never do: bend an expectation to make a tool pass. A tool's real
//! deviations are failures, explained in [`differences`].

pub mod defect;
pub mod differences;
pub mod external;
pub mod native;
pub mod process;
pub mod propagation;
pub mod registry;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::InitPlan;
use nix::unistd::Pid;
use serde::Serialize;

use crate::case_env::CaseEnv;
use crate::error::HarnessError;
use crate::requirement::Requirement;
use crate::run_env::RunEnv;
use crate::spec::{CaseSpec, LauncherKind, Resolved, RootfsMode, Runner};
use crate::verdict::Skip;

pub use process::ProbeProcess;

/// Who performs one setting of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Performer {
    /// The launcher (or tool) itself, from its own option or configuration key.
    Launcher,
    /// The tool has no option for it; the payload does it, as a user's entry point would (the
    /// probe's init step). Only ever a setting that creates no isolation of its own.
    Payload,
    /// Not expressible: specs that ask for it are skipped.
    No,
}

/// Which uid/gid maps a launcher can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdMapSupport {
    /// Any map the kernel accepts from the runner.
    Any,
    /// Only root inside mapped onto the runner's own uid and gid (`unshare -r`, `bwrap --uid 0`).
    OwnIdsOnly,
    /// No user namespaces at all.
    None,
}

/// Which time-namespace offsets a launcher can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetSupport {
    /// Nanosecond offsets.
    Nanoseconds,
    /// Whole seconds only.
    WholeSeconds,
    /// No time namespace at all.
    None,
}

/// What of a [`CaseSpec`] a launcher can express, for skips and for the conformance report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The namespaces it creates on request.
    pub namespaces: NsSet,
    pub rootfs: Vec<RootfsMode>,
    pub id_maps: IdMapSupport,
    pub hostname: Performer,
    /// Who mounts a procfs of the new pid namespace (in a new mount namespace).
    pub proc: Performer,
    /// Who mounts a sysfs of the new network namespace (in a new mount namespace).
    pub sysfs: Performer,
    pub time_offsets: OffsetSupport,
    /// Cgroup limits (memory.max, pids.max, ...): the native clone paths write them to the case's
    /// cgroups; an external launcher with this set has its tool create the case's cgroup and write
    /// them (see [`Launcher::limit_cgroup`], [`Launcher::supports_limits`]).
    pub cgroup_limits: bool,
    /// Whether it runs as an unprivileged user.
    pub rootless: bool,
}

/// The cgroup a container tool creates for a case's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCgroup {
    /// Its name, the same on every hierarchy the tool uses (isoprobe-prefixed).
    pub name: String,
    /// Whether the tool uses cgroup2 too (on a hybrid host); crun here does not (it runs with
    /// cgroup2 unmounted from its view), and the probe stays in the harness's cgroup2 cgroup.
    pub cgroup2: bool,
}

/// An external tool as found on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolInfo {
    /// The command (`lxc-execute`, `bwrap`).
    pub command: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
    pub path: PathBuf,
    /// The first line of its version output, e.g. `bubblewrap 0.8.0`.
    pub version: String,
}

/// A tool default that adds isolation the spec did not ask for, with the documentation saying so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolDefault {
    pub what: String,
    /// Where the tool documents it (a man page section, a source file).
    pub source: &'static str,
}

/// The spec a container really has under a launcher: the requested one plus the tool's documented
/// defaults. The oracle judges against `spec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub spec: Resolved,
    pub defaults: Vec<ToolDefault>,
}

impl Effective {
    /// No defaults: the spec as requested.
    pub fn exact(spec: &Resolved) -> Effective {
        Effective { spec: spec.clone(), defaults: Vec::new() }
    }

    /// Adds namespace `kind` unless requested, recording why.
    pub fn force(&mut self, kind: NsKind, what: &str, source: &'static str) {
        if !self.spec.has(kind) {
            self.spec.0.namespaces = self.spec.namespaces.with(kind);
            self.defaults.push(ToolDefault { what: format!("{kind}: {what}"), source });
        }
    }
}

/// What a launcher needs to start one probe.
#[derive(Debug, Clone, Copy)]
pub struct StartContext<'a> {
    /// The spec as requested, resolved (id maps filled in): what the launcher is asked to build.
    pub spec: &'a Resolved,
    /// The container that spec really gives under this launcher (its tool's documented
    /// defaults added, see [`Effective`]), computed once by the harness.
    pub effective: &'a Resolved,
    pub case: &'a CaseEnv,
    pub run: &'a RunEnv,
    pub deadline: Instant,
    /// The probe will hold its namespaces for a joiner after reporting.
    pub hold: bool,
    /// The fault plant (test builds only, see `isoprobe_probes::fault`): namespace kinds whose
    /// `CLONE_NEW*` flag is dropped at the system call while the spec keeps promising them.
    /// Always empty unless a sensitivity test armed it.
    pub plant: NsSet,
}

/// Whatever a tool created on the host for one container (a config directory, an OCI state entry,
/// cgroups, LXC lock directories). `teardown` runs after the tool's process is reaped, in every
/// outcome (on drop at the latest), and reports what it could not remove.
pub trait Teardown: fmt::Debug + Send {
    fn teardown(&mut self) -> Vec<String>;
}

/// A started container (or joiner): the process whose stdio is the probe's, the probe's own pid
/// as the host sees it, the init steps left to the probe, and the owner of the tool's leftovers.
#[derive(Debug)]
pub struct Started {
    /// The process the harness started (the probe itself, or the tool that runs it).
    pub process: ProbeProcess,
    /// The probe as the host sees it (the host view reads its cgroup).
    pub probe_pid: Pid,
    pub init: InitPlan,
    /// Dropped after `process`: fields drop in declaration order.
    pub teardown: Option<Box<dyn Teardown>>,
}

impl Started {
    /// Reaps the process (killing it if it still runs), then tears down the tool's objects;
    /// returns what could not be removed.
    pub fn release(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.process.kill_and_reap() {
            problems.push(format!("failed to reap the launcher's process: {e}"));
        }
        if let Some(mut t) = self.teardown.take() {
            problems.extend(t.teardown());
        }
        problems
    }
}

/// A way of starting containers.
pub trait Launcher: fmt::Debug + Send + Sync {
    fn kind(&self) -> LauncherKind;

    /// The tool this launcher drives, or why it cannot run here (`lxc-execute not installed`).
    /// `Ok(None)` for the native launcher.
    fn tool(&self) -> Result<Option<&ToolInfo>, Skip>;

    fn capabilities(&self) -> Capabilities;

    /// Whether `spec` (resolved for `runner`) can be expressed beyond what [`Capabilities`] says:
    /// tool-specific combinations. The generic checks are in [`check_capabilities`].
    fn supports(&self, _spec: &CaseSpec, _runner: Runner) -> Result<(), Skip> {
        Ok(())
    }

    /// What the harness runs the tool under, when it cannot run it bare here (a workaround), in
    /// words for the report's launcher header: part of the container's isolation may be the
    /// wrapper's, and the header says which.
    fn wrapper(&self) -> Option<String> {
        None
    }

    /// The container `spec` really gives under this launcher (see [`Effective`]).
    fn effective(&self, spec: &Resolved, _runner: Runner) -> Effective {
        Effective::exact(spec)
    }

    /// Starts the container's first process.
    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError>;

    /// For a launcher that expresses cgroup limits ([`Capabilities::cgroup_limits`]): the cgroup
    /// its tool creates for the case's payload and writes the limits to (the harness finds it
    /// through the probe's `/proc/<pid>/cgroup`, checks the name, and reads the limit counters
    /// there).
    fn limit_cgroup(&self, _ctx: &StartContext<'_>) -> Option<LimitCgroup> {
        None
    }

    /// Whether this launcher's tool can express the limits of `spec` on a host with `layout`
    /// (only asked of launchers with [`Capabilities::cgroup_limits`]); the skip names what it
    /// cannot.
    fn supports_limits(
        &self,
        _spec: &CaseSpec,
        _limits: &crate::limits::LimitSpec,
        _layout: &crate::cgroup::CgroupLayout,
    ) -> Result<(), Skip> {
        Ok(())
    }

    /// Starts a probe that joins `container` (joining kinds only).
    fn start_joiner(&self, ctx: &StartContext<'_>, _container: &Started) -> Result<Started, HarnessError> {
        Err(HarnessError::Launch(format!("{} does not join containers", ctx.spec.launcher.name())))
    }
}

/// Everything that decides whether `launcher` can run `spec` for `runner`: its tool, then its
/// capabilities, then its own combinations. The skip names exactly what is missing.
pub fn can_run(launcher: &dyn Launcher, spec: &Resolved, runner: Runner) -> Result<(), Skip> {
    let kind = launcher.kind();
    if spec.propagation.is_some() && !kind.runs_mount_cases() {
        return Err(skip(
            kind,
            "mount-case",
            format!(
                "{} cannot run a mount case: its container's copy of the host's propagation mount point must keep \
                 its relation to the host's (see LauncherKind::runs_mount_cases)",
                kind.name()
            ),
        ));
    }
    launcher.tool()?;
    check_capabilities(launcher.kind(), &launcher.capabilities(), spec, runner)?;
    if spec.propagation.is_some() {
        propagation::supports(kind, spec, launcher.effective(spec, runner).spec.has(NsKind::Mnt))?;
    }
    launcher.supports(spec, runner)
}

fn skip(kind: LauncherKind, requirement: &str, reason: String) -> Skip {
    Requirement::LauncherFeature { launcher: kind.name(), what: requirement.into() }.skip(reason)
}

/// The generic part of [`can_run`]: a spec against declared capabilities.
pub fn check_capabilities(
    kind: LauncherKind,
    caps: &Capabilities,
    spec: &CaseSpec,
    runner: Runner,
) -> Result<(), Skip> {
    let name = kind.name();
    if !runner.is_root() && !caps.rootless {
        return Err(skip(kind, "root", format!("{name} needs root (it does not run as an unprivileged user)")));
    }
    for k in spec.namespaces.iter() {
        if !caps.namespaces.contains(k) {
            return Err(skip(kind, &format!("ns-{k}"), format!("{name} cannot create a {k} namespace")));
        }
    }
    if !caps.rootfs.contains(&spec.rootfs) {
        let modes: Vec<&str> = caps.rootfs.iter().map(|m| m.name()).collect();
        return Err(skip(
            kind,
            &format!("rootfs-{}", spec.rootfs.name()),
            format!("{name} cannot run in rootfs mode `{}` (it supports: {})", spec.rootfs.name(), modes.join(", ")),
        ));
    }
    if spec.hostname.is_some() && caps.hostname == Performer::No {
        return Err(skip(kind, "hostname", format!("{name} cannot set a hostname")));
    }
    if let Some(maps) = &spec.id_maps {
        let own = crate::spec::IdMaps::range(runner.uid, runner.gid, 1);
        match caps.id_maps {
            IdMapSupport::Any => {}
            IdMapSupport::OwnIdsOnly if *maps == own => {}
            IdMapSupport::OwnIdsOnly => {
                return Err(skip(
                    kind,
                    "id-map",
                    format!(
                        "{name} maps only root inside onto the caller's own ids (`0 {} 1`), not `{}`",
                        runner.uid,
                        crate::oracle::id_map_text(&maps.uid)
                    ),
                ));
            }
            IdMapSupport::None => return Err(skip(kind, "id-map", format!("{name} cannot set up id maps"))),
        }
    }
    if let Some(t) = spec.time_offsets.filter(|t| !t.is_zero()) {
        let whole = t.monotonic_ns % 1_000_000_000 == 0 && t.boottime_ns % 1_000_000_000 == 0;
        match caps.time_offsets {
            OffsetSupport::Nanoseconds => {}
            OffsetSupport::WholeSeconds if whole => {}
            OffsetSupport::WholeSeconds => {
                return Err(skip(kind, "time-offset", format!("{name} takes time offsets in whole seconds only")));
            }
            OffsetSupport::None => return Err(skip(kind, "time-offset", format!("{name} cannot set time offsets"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::spec_for;
    use crate::spec::IdMaps;

    const ROOT: Runner = Runner { uid: 0, gid: 0 };

    #[test]
    fn what_a_launcher_cannot_express_is_a_precise_skip() {
        let bwrap = registry::launcher(LauncherKind::Bwrap);
        let spec = spec_for("time".parse().unwrap(), RootfsMode::Host, LauncherKind::Bwrap);
        let skip = check_capabilities(LauncherKind::Bwrap, &bwrap.capabilities(), &spec, ROOT).unwrap_err();
        assert_eq!(skip.reason, "bwrap cannot create a time namespace");
        let spec = spec_for("mnt".parse().unwrap(), RootfsMode::Chroot, LauncherKind::Bwrap);
        let skip = check_capabilities(LauncherKind::Bwrap, &bwrap.capabilities(), &spec, ROOT).unwrap_err();
        assert!(skip.reason.contains("rootfs mode `chroot`"), "{}", skip.reason);
        let unshare = registry::launcher(LauncherKind::UtilUnshare);
        let spec = CaseSpec {
            id_maps: Some(IdMaps::range(100_000, 100_000, 65_536)),
            ..spec_for("user".parse().unwrap(), RootfsMode::Host, LauncherKind::UtilUnshare)
        };
        let skip = check_capabilities(LauncherKind::UtilUnshare, &unshare.capabilities(), &spec, ROOT).unwrap_err();
        assert!(skip.reason.contains("`0 100000 65536`"), "{}", skip.reason);
        // Sub-second offsets where only whole seconds are taken.
        let spec = spec_for("time".parse().unwrap(), RootfsMode::Host, LauncherKind::UtilUnshare);
        let skip = check_capabilities(LauncherKind::UtilUnshare, &unshare.capabilities(), &spec, ROOT).unwrap_err();
        assert!(skip.reason.contains("whole seconds"), "{}", skip.reason);
    }

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        let skip =
            external::tool::find_tool(LauncherKind::Lxc, "isoprobe-no-such-tool", "lxc", &["--version"]).unwrap_err();
        assert_eq!(skip.requirement, "tool:isoprobe-no-such-tool");
        assert!(skip.reason.starts_with("isoprobe-no-such-tool not installed (Debian package lxc)"), "{}", skip.reason);
    }

    #[test]
    fn documented_defaults_reach_the_oracle() {
        let nspawn = registry::launcher(LauncherKind::Nspawn);
        let spec = spec_for("mnt+net".parse().unwrap(), RootfsMode::PivotRoot, LauncherKind::Nspawn);
        let e = nspawn.effective(&spec.resolve(ROOT), ROOT);
        for k in [NsKind::Pid, NsKind::Mnt, NsKind::Uts, NsKind::Ipc, NsKind::Cgroup, NsKind::Net] {
            assert!(e.spec.has(k), "{k} missing from {}", e.spec.namespaces);
        }
        assert!(!e.spec.has(NsKind::User));
        assert_eq!(e.spec.hostname.as_deref(), Some(external::nspawn::DEFAULT_HOSTNAME));
        assert!(e.defaults.iter().all(|d| !d.source.is_empty()));
        let bwrap = registry::launcher(LauncherKind::Bwrap);
        let user = Runner { uid: 1000, gid: 1000 };
        let e = bwrap
            .effective(&spec_for("pid".parse().unwrap(), RootfsMode::Host, LauncherKind::Bwrap).resolve(user), user);
        assert!(e.spec.has(NsKind::Mnt) && e.spec.has(NsKind::User));
        assert_eq!(e.spec.id_maps, Some(IdMaps::range(1000, 1000, 1)));
    }

    #[test]
    fn limit_cases_only_for_launchers_that_express_limits() {
        let all = crate::limits::matrix::limit_matrix();
        for l in registry::all() {
            let m = registry::launcher_limit_matrix(l.kind());
            if l.capabilities().cgroup_limits {
                // Every limit case once (specs alike are listed once), on sets the launcher has.
                assert!(!m.is_empty() && m.len() <= all.len(), "{}", l.kind().name());
                assert!(m.iter().all(|(_, s)| s.launcher == l.kind() && s.limits.is_some()));
                assert!(m.iter().all(|(_, s)| s.validate().is_ok()));
            } else {
                assert!(m.is_empty(), "{} cannot express cgroup limits", l.kind().name());
            }
        }
        assert!(registry::launcher(LauncherKind::Clone3).capabilities().cgroup_limits);
    }

    #[test]
    fn the_start_latency_case_is_the_same_set_in_the_best_rootfs_each_launcher_has() {
        for kind in std::iter::once(LauncherKind::Clone3).chain(LauncherKind::EXTERNAL) {
            let s = registry::start_latency_spec(kind);
            assert_eq!(s.namespaces, registry::start_latency_namespaces());
            assert_eq!(s.validate(), Ok(()), "{s}");
            let want = if kind == LauncherKind::UtilUnshare || kind == LauncherKind::UtilNsenter {
                RootfsMode::Chroot
            } else {
                RootfsMode::PivotRoot
            };
            assert_eq!(s.rootfs, want, "{}", kind.name());
        }
    }

    #[test]
    fn every_kind_is_registered_once_with_a_valid_matrix() {
        let all = registry::all();
        let names: std::collections::BTreeSet<&str> = all.iter().map(|l| l.kind().name()).collect();
        assert_eq!(names.len(), LauncherKind::ALL.len() + LauncherKind::EXTERNAL.len());
        for l in all {
            assert_eq!(registry::by_name(l.kind().name()).map(|b| b.kind()), Some(l.kind()));
            for s in registry::launcher_matrix(l.kind(), ROOT) {
                assert_eq!(s.validate(), Ok(()), "{s}");
                assert_eq!(s.launcher, l.kind());
            }
        }
    }
}
