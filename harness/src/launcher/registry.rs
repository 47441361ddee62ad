//! Every launcher, by kind: what `isoprobe run --launcher all` iterates, and what the run loop
//! dispatches through.
//!
//! For the CLI: [`all`] (or [`by_name`]) lists the launchers, [`describe`] gives a launcher's tool,
//! version and capabilities, [`launcher_matrix`] its cases. Running and judging one case on a
//! launcher (the outcome plus the assessment against the expected differences) sits above this
//! table, in [`super::differences::run_case_on`].
//!
//! Launchers are created once per process (their tool look-ups are cached) and live for its whole
//! life, so the registry hands out `&'static` references.

use std::sync::OnceLock;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::TimeOffsets;

use super::external::{Bwrap, Lxc, Nspawn, Oci, Runtime, UtilUnshare};
use super::native::NativeLauncher;
use serde::Serialize;

use super::{Capabilities, Effective, IdMapSupport, Launcher, OffsetSupport, ToolInfo};
use crate::matrix::{singles_and_all, spec_for};
use crate::spec::{CaseSpec, IdMaps, LauncherKind, Resolved, RootfsMode, Runner};
use crate::verdict::Skip;

struct Registry {
    native: Vec<NativeLauncher>,
    util_unshare: UtilUnshare,
    util_nsenter: UtilUnshare,
    bwrap: Bwrap,
    lxc: Lxc,
    lxc_attach: Lxc,
    runc: Oci,
    crun: Oci,
    nspawn: Nspawn,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        native: LauncherKind::ALL.into_iter().map(NativeLauncher).collect(),
        util_unshare: UtilUnshare::new(),
        util_nsenter: UtilUnshare::with_nsenter(),
        bwrap: Bwrap::new(),
        lxc: Lxc::new(),
        lxc_attach: Lxc::with_attach(),
        runc: Oci::new(Runtime::Runc),
        crun: Oci::new(Runtime::Crun),
        nspawn: Nspawn::new(),
    })
}

/// The container `spec` really gives when `kind` starts it (its tool's documented defaults added).
pub fn effective(kind: LauncherKind, spec: &Resolved, runner: Runner) -> Effective {
    let mut e = launcher(kind).effective(&spec.launched_by(kind), runner);
    super::propagation::apply(kind, &mut e);
    e
}

/// The launcher for `kind`.
pub fn launcher(kind: LauncherKind) -> &'static dyn Launcher {
    let r = registry();
    match kind {
        LauncherKind::UtilUnshare => &r.util_unshare,
        LauncherKind::UtilNsenter => &r.util_nsenter,
        LauncherKind::Bwrap => &r.bwrap,
        LauncherKind::Lxc => &r.lxc,
        LauncherKind::LxcAttach => &r.lxc_attach,
        LauncherKind::Runc => &r.runc,
        LauncherKind::Crun => &r.crun,
        LauncherKind::Nspawn => &r.nspawn,
        native => r.native.iter().find(|n| n.0 == native).expect("every native kind is registered"),
    }
}

/// Every launcher: the native paths first, then the external tools.
pub fn all() -> Vec<&'static dyn Launcher> {
    LauncherKind::ALL.into_iter().chain(LauncherKind::EXTERNAL).map(launcher).collect()
}

/// The launcher named `name` (`clone3`, `lxc`, `util-unshare`, ...).
pub fn by_name(name: &str) -> Option<&'static dyn Launcher> {
    all().into_iter().find(|l| l.kind().name() == name)
}

/// Time offsets for launchers that take whole seconds: a week and two weeks apart plus a few
/// seconds, so a swapped pair is still caught.
pub const WHOLE_SECOND_OFFSETS: TimeOffsets =
    TimeOffsets { monotonic_ns: (7 * 86_400 + 3) * 1_000_000_000, boottime_ns: (14 * 86_400 + 5) * 1_000_000_000 };

/// The namespace sets every launcher is run with: none, each kind alone, all eight, and the pairs
/// whose checks depend on two kinds at once (see `CheckId::kinds`).
pub fn launcher_sets() -> Vec<NsSet> {
    let mut v = vec![NsSet::EMPTY];
    v.extend(singles_and_all());
    for (a, b) in [
        (NsKind::Pid, NsKind::Mnt),
        (NsKind::Net, NsKind::Mnt),
        (NsKind::User, NsKind::Uts),
        (NsKind::User, NsKind::Mnt),
    ] {
        v.push(NsSet::EMPTY.with(a).with(b));
    }
    v
}

/// The cases `kind` runs in the launcher suite and in `isoprobe run --launcher`: [`launcher_sets`]
/// in every rootfs mode it supports (with a mount namespace added after pivot_root, which needs one), with
/// settings the launcher can express where a choice exists (id maps, whole-second offsets).
/// Cases the launcher cannot express stay in the list and skip with the reason.
pub fn launcher_matrix(kind: LauncherKind, runner: Runner) -> Vec<CaseSpec> {
    let caps = launcher(kind).capabilities();
    let mut sets = launcher_sets();
    // Everything the launcher can create, when that is not all eight.
    sets.push(caps.namespaces);
    let mut seen = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    // Rootfs modes the launcher cannot use would only repeat one skip for every set.
    for rootfs in RootfsMode::ALL.into_iter().filter(|m| caps.rootfs.contains(m)) {
        for ns in sets.iter().copied() {
            let ns = if rootfs == RootfsMode::PivotRoot { ns.with(NsKind::Mnt) } else { ns };
            let mut s = spec_for(ns, rootfs, kind);
            if s.has(NsKind::User) && caps.id_maps == IdMapSupport::OwnIdsOnly {
                s.id_maps = Some(IdMaps::range(runner.uid, runner.gid, 1));
            }
            if s.time_offsets.is_some() && caps.time_offsets == OffsetSupport::WholeSeconds {
                s.time_offsets = Some(WHOLE_SECOND_OFFSETS);
            }
            if s.validate().is_ok() && seen.insert(s.name()) {
                v.push(s);
            }
        }
    }
    // The mount cases, on the host's root (where their mount points are), for the launchers
    // that can run them; a tool that only pivot_roots runs them in the case directory, which
    // holds the mount points, and skips those without a mount namespace (it cannot run on the
    // host's root).
    if kind.runs_mount_cases() {
        for mut s in crate::matrix::mount_cases() {
            s.launcher = kind;
            if !caps.rootfs.contains(&RootfsMode::Host) && s.has(NsKind::Mnt) && kind.mount_cases_after_pivot() {
                s.rootfs = RootfsMode::PivotRoot;
            }
            if s.has(NsKind::User) && caps.id_maps == IdMapSupport::OwnIdsOnly {
                s.id_maps = Some(IdMaps::range(runner.uid, runner.gid, 1));
            }
            if s.validate().is_ok() && seen.insert(s.name()) {
                v.push(s);
            }
        }
    }
    v
}

/// The limit cases `kind` runs: empty unless it expresses cgroup limits
/// ([`Capabilities::cgroup_limits`]); else the limit matrix (`limits::matrix::limit_matrix`) with
/// the launcher set to `kind`, on the namespace sets it can create: a case it cannot express is
/// moved to the closest it can (the kinds it creates; its own rootfs mode when it cannot run on the
/// host's root; a mount namespace where it needs one: LXC's `none` becomes `mnt`, `user` becomes
/// `mnt+user`) and renamed after its set; specs that end up alike are listed once (the matrix's
/// clone(2) cases are clone3's under any other launcher). Limits a launcher cannot express on this
/// host stay in the list and skip with the reason (`Launcher::supports_limits`).
pub fn launcher_limit_matrix(kind: LauncherKind) -> Vec<(String, CaseSpec)> {
    let l = launcher(kind);
    let caps = l.capabilities();
    if !caps.cgroup_limits {
        return Vec::new();
    }
    let runner = Runner::current();
    let expressible = |s: &CaseSpec| {
        s.namespaces.iter().all(|k| caps.namespaces.contains(k))
            && caps.rootfs.contains(&s.rootfs)
            && l.supports(s, runner).is_ok()
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    for (name, spec) in crate::limits::matrix::limit_matrix() {
        let (mut name, mut spec) = (name, CaseSpec { launcher: kind, ..spec });
        if !expressible(&spec) {
            // The closest the launcher can express: the kinds it can create, in its first rootfs
            // mode if it cannot use the host's root, with a mount namespace where it needs one.
            let mut ns =
                spec.namespaces.iter().filter(|k| caps.namespaces.contains(*k)).fold(NsSet::EMPTY, NsSet::with);
            let rootfs = if caps.rootfs.contains(&spec.rootfs) { spec.rootfs } else { caps.rootfs[0] };
            if rootfs == RootfsMode::PivotRoot {
                ns = ns.with(NsKind::Mnt);
            }
            spec = CaseSpec { limits: spec.limits.clone(), ..spec_for(ns, rootfs, kind) };
            if !expressible(&spec) {
                ns = ns.with(NsKind::Mnt);
                spec = CaseSpec { limits: spec.limits, ..spec_for(ns, rootfs, kind) };
            }
            if !expressible(&spec) {
                continue;
            }
            let mut parts: Vec<String> = name.split('/').map(str::to_owned).collect();
            if let Some(set) = parts.get_mut(1) {
                *set = ns.to_string();
            }
            name = parts.join("/");
        }
        // Settings the launcher can express where a choice exists, as in `launcher_matrix`.
        if spec.has(NsKind::User) && caps.id_maps == IdMapSupport::OwnIdsOnly {
            spec.id_maps = Some(IdMaps::range(runner.uid, runner.gid, 1));
        }
        if spec.time_offsets.is_some() && caps.time_offsets == OffsetSupport::WholeSeconds {
            spec.time_offsets = Some(WHOLE_SECOND_OFFSETS);
        }
        if seen.insert(serde_json::to_string(&spec).unwrap_or_else(|_| name.clone())) {
            v.push((name, spec));
        }
    }
    v
}

/// The namespaces every launcher starts for its start latency (in the benches' `launcher-start`
/// group and in `isoprobe run --launcher`): pid+uts+mnt+ipc+net+cgroup, what every tool can
/// create and what systemd-nspawn creates anyway. No user namespace, so it needs root.
pub fn start_latency_namespaces() -> NsSet {
    [NsKind::Pid, NsKind::Uts, NsKind::Mnt, NsKind::Ipc, NsKind::Net, NsKind::Cgroup].into_iter().collect()
}

/// The case `kind` starts for its start latency: [`start_latency_namespaces`] with the probe in
/// the minimal rootfs, after pivot_root where the launcher can, else chrooted (util-linux
/// unshare(1)), else on the host's filesystem.
pub fn start_latency_spec(kind: LauncherKind) -> CaseSpec {
    let caps = launcher(kind).capabilities();
    let rootfs = [RootfsMode::PivotRoot, RootfsMode::Chroot, RootfsMode::Host]
        .into_iter()
        .find(|m| caps.rootfs.contains(m))
        .unwrap_or(RootfsMode::Host);
    spec_for(start_latency_namespaces(), rootfs, kind)
}

/// What a launcher is on this machine: its tool and version (or why it cannot run) and what it
/// can express. The header of a launcher's column in a conformance report.
#[derive(Debug, Clone, Serialize)]
pub struct LauncherInfo {
    pub kind: LauncherKind,
    pub name: &'static str,
    pub tool: Option<ToolInfo>,
    /// Why the launcher cannot run at all here (`lxc-execute not installed ...`).
    pub unavailable: Option<Skip>,
    pub capabilities: Capabilities,
    /// What the harness runs the tool under here, if anything (see `Launcher::wrapper`).
    pub wrapper: Option<String>,
}

/// [`LauncherInfo`] of `kind`.
pub fn describe(kind: LauncherKind) -> LauncherInfo {
    let l = launcher(kind);
    let (tool, unavailable) = match l.tool() {
        Ok(t) => (t.cloned(), None),
        Err(s) => (None, Some(s)),
    };
    LauncherInfo { kind, name: kind.name(), tool, unavailable, capabilities: l.capabilities(), wrapper: l.wrapper() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every container launcher lists the mount cases; a tool that only pivot_roots runs those
    /// with a mount namespace in the case directory, and keeps the others listed on the host's
    /// root (where they skip for the rootfs mode); joiners list none.
    #[test]
    fn the_mount_cases_of_a_launcher_are_where_it_can_run_them() {
        let root = Runner { uid: 0, gid: 0 };
        for kind in LauncherKind::EXTERNAL {
            let m: Vec<CaseSpec> =
                launcher_matrix(kind, root).into_iter().filter(|s| s.propagation.is_some()).collect();
            if kind.joins() {
                assert!(m.is_empty(), "{}", kind.name());
                continue;
            }
            assert_eq!(m.len(), crate::matrix::mount_cases().len(), "{}", kind.name());
            let pivot_only = !launcher(kind).capabilities().rootfs.contains(&RootfsMode::Host);
            for s in &m {
                let want = if pivot_only && s.has(NsKind::Mnt) { RootfsMode::PivotRoot } else { RootfsMode::Host };
                assert_eq!(s.rootfs, want, "{s}");
                assert_eq!(s.validate(), Ok(()), "{s}");
            }
        }
    }

    #[test]
    fn the_limit_matrix_of_a_launcher_is_what_it_can_express() {
        assert!(launcher_limit_matrix(LauncherKind::Bwrap).is_empty());
        assert!(launcher_limit_matrix(LauncherKind::LxcAttach).is_empty());
        assert!(launcher_limit_matrix(LauncherKind::Unshare).is_empty());
        let lxc = launcher_limit_matrix(LauncherKind::Lxc);
        let names: std::collections::BTreeSet<&str> = lxc.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), lxc.len(), "names are unique");
        for (name, spec) in &lxc {
            assert_eq!(spec.launcher, LauncherKind::Lxc, "{name}");
            assert!(spec.has(NsKind::Mnt), "{name}: LXC needs a mount namespace");
            assert!(spec.limits.is_some(), "{name}");
            assert_eq!(spec.validate(), Ok(()), "{name}");
            assert!(name.contains(&format!("/{}", spec.namespaces)), "{name} is named after {}", spec.namespaces);
        }
        // none and user-only gain a mount namespace; the clone(2) cases are clone3's here.
        for n in ["memory/mnt/limited", "memory/all/control", "pids/mnt+user/limited", "cgroup-ns-view/mnt"] {
            assert!(names.contains(n), "{n} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("clone") || n.contains("/none/")), "{names:?}");
        // The native clone3 path runs every spec of the limit matrix, each once.
        let clone3: std::collections::BTreeSet<String> = launcher_limit_matrix(LauncherKind::Clone3)
            .iter()
            .map(|(_, s)| serde_json::to_string(s).unwrap())
            .collect();
        let native: std::collections::BTreeSet<String> = crate::limits::matrix::limit_matrix()
            .into_iter()
            .map(|(_, s)| serde_json::to_string(&CaseSpec { launcher: LauncherKind::Clone3, ..s }).unwrap())
            .collect();
        assert_eq!(clone3.len(), launcher_limit_matrix(LauncherKind::Clone3).len());
        assert_eq!(clone3, native);
    }
}
