//! What a container should be: the [`CaseSpec`].
//!
//! A spec is plain data (serde), validated by [`CaseSpec::validate`] before anything is launched,
//! and *resolved* by [`CaseSpec::resolve`] (defaults that depend on who runs the harness, such as
//! the id maps, are filled in) so that the oracle sees every value it reasons about.

use std::fmt;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::{ClockKind, IdMapLine, PropMode, SysctlStripe, TimeOffsets};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::LimitSpec;

/// Where the probe's root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum RootfsMode {
    /// The host's filesystem.
    #[default]
    Host,
    /// pivot_root(2) into a minimal rootfs that holds only the probe (needs a mount namespace).
    PivotRoot,
    /// chroot(2) into the same minimal rootfs, nothing else.
    Chroot,
}

impl RootfsMode {
    pub const ALL: [RootfsMode; 3] = [RootfsMode::Host, RootfsMode::PivotRoot, RootfsMode::Chroot];
    pub fn name(self) -> &'static str {
        match self {
            RootfsMode::Host => "host",
            RootfsMode::PivotRoot => "pivot",
            RootfsMode::Chroot => "chroot",
        }
    }
}

/// What creates the container: one of the native launcher's paths, or a real container tool (see
/// `launcher::external`; each declares what of a spec it can express).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum LauncherKind {
    /// clone3(2) with the namespace flags (falling back to clone(2) on ENOSYS).
    #[default]
    Clone3,
    /// clone(2) with the namespace flags (the fallback path, forced).
    Clone,
    /// A child unshare(2)s the namespaces, then forks the probe.
    Unshare,
    /// A container is started with clone3; the probe then joins it with one setns(2) per
    /// `/proc/<pid>/ns` file.
    SetnsNsFiles,
    /// As `SetnsNsFiles`, with one setns(2) on a pidfd.
    SetnsPidfd,
    /// util-linux unshare(1).
    UtilUnshare,
    /// A container started by util-linux unshare(1), joined by nsenter(1).
    UtilNsenter,
    /// bubblewrap: `bwrap --unshare-*`.
    Bwrap,
    /// LXC: `lxc-execute` with a generated config.
    Lxc,
    /// A container started by `lxc-execute`, joined by `lxc-attach`.
    LxcAttach,
    /// runc, from a generated OCI bundle.
    Runc,
    /// crun, from a generated OCI bundle.
    Crun,
    /// systemd-nspawn.
    Nspawn,
}

impl LauncherKind {
    /// The native launcher's paths (what the namespace matrix covers); [`LauncherKind::EXTERNAL`]
    /// lists the real tools.
    pub const ALL: [LauncherKind; 5] = [
        LauncherKind::Clone3,
        LauncherKind::Clone,
        LauncherKind::Unshare,
        LauncherKind::SetnsNsFiles,
        LauncherKind::SetnsPidfd,
    ];
    /// The real container tools, in the order reports show them.
    pub const EXTERNAL: [LauncherKind; 8] = [
        LauncherKind::UtilUnshare,
        LauncherKind::UtilNsenter,
        LauncherKind::Bwrap,
        LauncherKind::Lxc,
        LauncherKind::LxcAttach,
        LauncherKind::Runc,
        LauncherKind::Crun,
        LauncherKind::Nspawn,
    ];
    pub fn name(self) -> &'static str {
        match self {
            LauncherKind::Clone3 => "clone3",
            LauncherKind::Clone => "clone",
            LauncherKind::Unshare => "unshare",
            LauncherKind::SetnsNsFiles => "setns-nsfs",
            LauncherKind::SetnsPidfd => "setns-pidfd",
            LauncherKind::UtilUnshare => "util-unshare",
            LauncherKind::UtilNsenter => "util-nsenter",
            LauncherKind::Bwrap => "bwrap",
            LauncherKind::Lxc => "lxc",
            LauncherKind::LxcAttach => "lxc-attach",
            LauncherKind::Runc => "runc",
            LauncherKind::Crun => "crun",
            LauncherKind::Nspawn => "nspawn",
        }
    }
    /// Whether the probe joins an existing container rather than being its first process.
    pub fn joins(self) -> bool {
        matches!(
            self,
            LauncherKind::SetnsNsFiles | LauncherKind::SetnsPidfd | LauncherKind::UtilNsenter | LauncherKind::LxcAttach
        )
    }
    /// What starts the container a joining launcher joins (itself for the others).
    pub fn container_launcher(self) -> LauncherKind {
        match self {
            LauncherKind::SetnsNsFiles | LauncherKind::SetnsPidfd => LauncherKind::Clone3,
            LauncherKind::UtilNsenter => LauncherKind::UtilUnshare,
            LauncherKind::LxcAttach => LauncherKind::Lxc,
            other => other,
        }
    }
    /// Whether this is one of the native launcher's paths.
    pub fn is_native(self) -> bool {
        LauncherKind::ALL.contains(&self)
    }
    /// Whether it runs the mount cases ([`Propagation`]): the container's copy of the host's
    /// propagation mount point must keep a relation to the host's that the oracle can name. The
    /// native launcher's probe spares it when it makes its mounts private; unshare(1) and bwrap
    /// give the whole root a propagation of their own; runc, crun, LXC and systemd-nspawn bind it
    /// into their root with the propagation they give a bind (the table in
    /// `launcher::propagation`; a mode a tool cannot give is a skip with the reason there). A
    /// joiner would only look through the container it joins.
    pub fn runs_mount_cases(self) -> bool {
        !self.joins()
    }

    /// Whether a mount case of this launcher may run after pivot_root into the case directory (its
    /// mount points are in it): the external tools that only pivot_root (runc, crun, LXC,
    /// systemd-nspawn) bring the propagation mount point in with their root. The native
    /// launcher's probe plans its propagation step on the host's paths, before its pivot_root.
    pub fn mount_cases_after_pivot(self) -> bool {
        !self.is_native() && !self.joins()
    }
}

/// uid_map and gid_map of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct IdMaps {
    #[schemars(schema_with = "schema::id_map")]
    pub uid: Vec<IdMapLine>,
    #[schemars(schema_with = "schema::id_map")]
    pub gid: Vec<IdMapLine>,
}

impl IdMaps {
    /// Maps inside id 0.. onto `outside`.. for `count` ids, for both uids and gids.
    pub fn range(outside_uid: u32, outside_gid: u32, count: u32) -> IdMaps {
        IdMaps {
            uid: vec![IdMapLine { inside: 0, outside: outside_uid, count }],
            gid: vec![IdMapLine { inside: 0, outside: outside_gid, count }],
        }
    }

    /// The map of a process outside any new user namespace (/proc/self/uid_map of init).
    pub fn identity() -> IdMaps {
        IdMaps::range(0, 0, u32::MAX)
    }

    /// The id outside that `inside` maps to, if any.
    pub fn outside(lines: &[IdMapLine], inside: u32) -> Option<u32> {
        lines
            .iter()
            .find(|l| inside >= l.inside && u64::from(inside) < u64::from(l.inside) + u64::from(l.count))
            .map(|l| l.outside + (inside - l.inside))
    }

    /// The id inside that `outside` maps from, if any: whether the map maps that id at all.
    pub fn inside(lines: &[IdMapLine], outside: u32) -> Option<u32> {
        lines
            .iter()
            .find(|l| outside >= l.outside && u64::from(outside) < u64::from(l.outside) + u64::from(l.count))
            .map(|l| l.inside + (outside - l.outside))
    }

    /// The text the kernel takes in (and prints back from) `/proc/<pid>/uid_map`.
    pub fn to_proc_text(lines: &[IdMapLine]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// A mount case (issue 15): the propagation type the host gives its side of an isoprobe-owned
/// mount point before the container starts, and the one the container gives its copy of it
/// (mount_namespaces(7)). Without a mount namespace the container's side is the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Propagation {
    #[schemars(schema_with = "schema::prop_mode")]
    pub host: PropMode,
    #[schemars(schema_with = "schema::prop_mode")]
    pub container: PropMode,
}

impl Propagation {
    /// `prop:<host>-<container>`, e.g. `prop:shared-slave`.
    pub fn name(self) -> String {
        format!("prop:{}-{}", self.host, self.container)
    }
}

/// Who runs the harness; decides the default id maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub uid: u32,
    pub gid: u32,
}

impl Runner {
    pub fn current() -> Runner {
        Runner { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() }
    }
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// What a container should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// The namespaces the container gets new instances of; the rest it shares with the host.
    #[schemars(schema_with = "schema::ns_set")]
    pub namespaces: NsSet,
    #[serde(default)]
    pub rootfs: RootfsMode,
    #[serde(default)]
    pub launcher: LauncherKind,
    /// uid_map/gid_map of the new user namespace; `None` takes the default for the runner (see
    /// [`CaseSpec::resolve`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_maps: Option<IdMaps>,
    /// The hostname set in the new uts namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Clock offsets of the new time namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::time_offsets")]
    pub time_offsets: Option<TimeOffsets>,
    /// Cgroup limits and the exercise that runs into them (a limit case; see [`crate::limits`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitSpec>,
    /// Which share of the long sysctl sweeps (the network tree's entries, the global entries'
    /// tests) the probe makes; `None`: all of it. The namespace matrix spreads its clone3 cases
    /// over the stripes (see [`crate::matrix::SYSCTL_STRIPES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::sysctl_stripe")]
    pub sysctl_stripe: Option<SysctlStripe>,
    /// A mount case: the propagation of the host's and the container's side of an isoprobe-owned
    /// mount point, and a locked mount (see [`Propagation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<Propagation>,
}

/// A spec that cannot be run, with the reason.
/// A spec with what depends on the runner filled in ([`CaseSpec::resolve`]): what launchers start
/// and what the oracle's expectations are computed from. The one way to make one is `resolve`, so
/// a function that takes a `Resolved` cannot be handed a spec whose id maps are still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved(pub(crate) CaseSpec);

impl Resolved {
    /// The same resolved spec started by `launcher` (the container of a joining case is
    /// started by the joiner's container launcher).
    pub fn launched_by(&self, launcher: LauncherKind) -> Resolved {
        Resolved(CaseSpec { launcher, ..self.0.clone() })
    }

    pub fn into_inner(self) -> CaseSpec {
        self.0
    }
}

impl std::ops::Deref for Resolved {
    type Target = CaseSpec;
    fn deref(&self) -> &CaseSpec {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("time offsets need a time namespace (add `time` to the namespaces)")]
    TimeOffsetsWithoutTimeNs,
    #[error("a hostname needs a uts namespace: without one it would rename the host")]
    HostnameWithoutUtsNs,
    #[error("id maps need a user namespace (add `user` to the namespaces)")]
    IdMapsWithoutUserNs,
    #[error("pivot_root needs a mount namespace: without one it would move the host's root")]
    PivotRootWithoutMntNs,
    #[error("joining a container with setns needs at least one namespace to join")]
    JoinWithoutNamespaces,
    #[error("invalid hostname {0:?}: 1 to 64 bytes, no NUL or `/`")]
    BadHostname(String),
    #[error("invalid {ids} map: {why}")]
    BadIdMap { ids: &'static str, why: String },
    #[error(
        "a mount case runs on the host's filesystem, or through an external tool after pivot_root into the case \
         directory (its mount points are in it)"
    )]
    PropagationNeedsHostRootfs,
    #[error("without a mount namespace the container's side of the propagation is the host's: give both the same mode")]
    PropagationContainerWithoutMntNs,
    #[error("a mount case is not a limit case: give one or the other")]
    PropagationWithLimits,
    #[error("time offset for {clock} is {secs} s, beyond the ±{max} s this harness accepts")]
    TimeOffsetTooLarge { clock: &'static str, secs: i64, max: i64 },
}

/// Offsets are limited so that clocks stay far from overflow; the kernel itself rejects offsets
/// that would make a clock negative or exceed KTIME_SEC_MAX / 2.
pub const MAX_TIME_OFFSET_SECS: i64 = 10 * 365 * 24 * 3600;

impl CaseSpec {
    pub fn new(namespaces: NsSet) -> CaseSpec {
        CaseSpec {
            namespaces,
            rootfs: RootfsMode::Host,
            launcher: LauncherKind::Clone3,
            id_maps: None,
            hostname: None,
            time_offsets: None,
            limits: None,
            sysctl_stripe: None,
            propagation: None,
        }
    }

    pub fn has(&self, kind: NsKind) -> bool {
        self.namespaces.contains(kind)
    }

    /// Checks every rule that makes a spec unrunnable or dangerous for the host.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.time_offsets.is_some() && !self.has(NsKind::Time) {
            return Err(SpecError::TimeOffsetsWithoutTimeNs);
        }
        if let Some(h) = &self.hostname {
            if !self.has(NsKind::Uts) {
                return Err(SpecError::HostnameWithoutUtsNs);
            }
            if h.is_empty() || h.len() > 64 || h.contains(['\0', '/']) {
                return Err(SpecError::BadHostname(h.clone()));
            }
        }
        if let Some(maps) = &self.id_maps {
            if !self.has(NsKind::User) {
                return Err(SpecError::IdMapsWithoutUserNs);
            }
            check_id_map("uid", &maps.uid)?;
            check_id_map("gid", &maps.gid)?;
        }
        if self.rootfs == RootfsMode::PivotRoot && !self.has(NsKind::Mnt) {
            return Err(SpecError::PivotRootWithoutMntNs);
        }
        if self.launcher.joins() && self.namespaces.is_empty() {
            return Err(SpecError::JoinWithoutNamespaces);
        }
        if let Some(p) = self.propagation {
            let pivot = self.rootfs == RootfsMode::PivotRoot && self.launcher.mount_cases_after_pivot();
            if self.rootfs != RootfsMode::Host && !pivot {
                return Err(SpecError::PropagationNeedsHostRootfs);
            }
            if !self.has(NsKind::Mnt) && p.container != p.host {
                return Err(SpecError::PropagationContainerWithoutMntNs);
            }
            if self.limits.is_some() {
                return Err(SpecError::PropagationWithLimits);
            }
        }
        if let Some(t) = self.time_offsets {
            for clock in [ClockKind::Monotonic, ClockKind::Boottime] {
                let secs = t.get(clock) / 1_000_000_000;
                if secs.abs() > MAX_TIME_OFFSET_SECS {
                    let clock = if clock == ClockKind::Monotonic { "monotonic" } else { "boottime" };
                    return Err(SpecError::TimeOffsetTooLarge { clock, secs, max: MAX_TIME_OFFSET_SECS });
                }
            }
        }
        Ok(())
    }

    /// Fills in what depends on the runner: with a user namespace and no maps given, root maps
    /// 65536 ids from 100000 (as /etc/subuid would give), anyone else maps root to themselves
    /// (the only map an unprivileged process may write).
    pub fn resolve(&self, runner: Runner) -> Resolved {
        let mut s = self.clone();
        if s.has(NsKind::User) && s.id_maps.is_none() {
            s.id_maps = Some(if runner.is_root() {
                IdMaps::range(100_000, 100_000, 65_536)
            } else {
                IdMaps::range(runner.uid, runner.gid, 1)
            });
        }
        Resolved(s)
    }

    /// The same spec without `kind`, and without the settings that only make sense with it.
    pub fn without(&self, kind: NsKind) -> CaseSpec {
        let mut s = self.clone();
        s.namespaces = s.namespaces.without(kind);
        match kind {
            NsKind::Uts => s.hostname = None,
            NsKind::Time => s.time_offsets = None,
            NsKind::User => s.id_maps = None,
            // A mount case after pivot_root (an external tool's) has its mount points in the root it
            // loses: a chroot is no mount case.
            NsKind::Mnt if s.rootfs == RootfsMode::PivotRoot => {
                s.rootfs = RootfsMode::Chroot;
                s.propagation = None;
            }
            // The container's copy is gone: its side is the host's.
            NsKind::Mnt => {
                if let Some(p) = &mut s.propagation {
                    p.container = p.host;
                }
            }
            _ => {}
        }
        s
    }

    /// `launcher/rootfs/namespaces`, e.g. `clone3/pivot/pid+mnt+user`, and for a limit case the
    /// exercise and its limits after a space.
    pub fn name(&self) -> String {
        let base = format!("{}/{}/{}", self.launcher.name(), self.rootfs.name(), self.namespaces);
        match (&self.limits, self.propagation) {
            (Some(l), _) => format!("{base} {}", l.name()),
            (None, Some(p)) => format!("{base} {}", p.name()),
            (None, None) => base,
        }
    }
}

impl fmt::Display for CaseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The kernel's rules for a map (user_namespaces(7)): 1 to 340 lines, non-zero counts, no range
/// overflowing u32, no two ranges overlapping inside or outside. The harness also needs id 0
/// mapped: the probe runs as root in its user namespace.
fn check_id_map(ids: &'static str, lines: &[IdMapLine]) -> Result<(), SpecError> {
    let bad = |why: String| Err(SpecError::BadIdMap { ids, why });
    if lines.is_empty() || lines.len() > 340 {
        return bad(format!("{} lines, the kernel takes 1 to 340", lines.len()));
    }
    for l in lines {
        if l.count == 0 {
            return bad(format!("`{l}` has a count of 0"));
        }
        if l.inside.checked_add(l.count - 1).is_none() || l.outside.checked_add(l.count - 1).is_none() {
            return bad(format!("`{l}` runs past 4294967295"));
        }
    }
    for (i, a) in lines.iter().enumerate() {
        for b in &lines[i + 1..] {
            let overlap = |x: u32, y: u32| {
                u64::from(x) < u64::from(y) + u64::from(b.count) && u64::from(y) < u64::from(x) + u64::from(a.count)
            };
            if overlap(a.inside, b.inside) || overlap(a.outside, b.outside) {
                return bad(format!("`{a}` and `{b}` overlap"));
            }
        }
    }
    if IdMaps::outside(lines, 0).is_none() {
        return bad("id 0 is not mapped, and the probe runs as root in its user namespace".into());
    }
    Ok(())
}

/// JSON Schemas of the probe crate's types that a spec holds (the probe crate stays free of
/// schemars; `schemars(schema_with)` points here).
pub(crate) mod schema {
    use isoprobe_probes::ns::NsKind;
    use schemars::{Schema, SchemaGenerator, json_schema};

    pub fn ns_kind(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = NsKind::ALL.iter().map(|k| k.name()).collect();
        json_schema!({ "type": "string", "enum": names })
    }

    pub fn ns_set(g: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "a set of namespace kinds, sorted",
            "type": "array",
            "items": ns_kind(g),
            "uniqueItems": true,
        })
    }

    pub fn id_map(_: &mut SchemaGenerator) -> Schema {
        let u32 = json_schema!({ "type": "integer", "minimum": 0, "maximum": u32::MAX });
        json_schema!({
            "description": "lines of /proc/<pid>/uid_map or gid_map",
            "type": "array",
            "items": {
                "type": "object",
                "properties": { "inside": u32, "outside": u32, "count": u32 },
                "required": ["inside", "outside", "count"],
            },
        })
    }

    pub fn prop_mode(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = isoprobe_probes::wire::PropMode::ALL.iter().map(|m| m.name()).collect();
        json_schema!({ "description": "a propagation type (mount_namespaces(7))", "type": "string", "enum": names })
    }

    pub fn exercise(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "what the probe does to run into its cgroup's limits, tagged by `exercise` \
                            (probes/src/wire/limits.rs, Exercise)",
            "type": "object",
        })
    }

    pub fn sysctl_stripe(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "the share of the sysctl sweeps a case makes: the entries whose path's FNV-1a hash is \
                            `index` modulo `of` (probes/src/wire/mod.rs, SysctlStripe)",
            "type": ["object", "null"],
            "properties": { "index": { "type": "integer", "minimum": 0 }, "of": { "type": "integer", "minimum": 0 } },
            "required": ["index", "of"],
        })
    }

    pub fn time_offsets(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "clock offsets of a time namespace, in nanoseconds",
            "type": ["object", "null"],
            "properties": { "monotonic_ns": { "type": "integer" }, "boottime_ns": { "type": "integer" } },
            "required": ["monotonic_ns", "boottime_ns"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn spec(ns: &str) -> CaseSpec {
        CaseSpec::new(ns.parse().unwrap())
    }

    #[rstest]
    #[case::time_offsets(CaseSpec { time_offsets: Some(TimeOffsets { monotonic_ns: 1, boottime_ns: 0 }), ..spec("pid") }, SpecError::TimeOffsetsWithoutTimeNs)]
    #[case::hostname(CaseSpec { hostname: Some("x".into()), ..spec("pid") }, SpecError::HostnameWithoutUtsNs)]
    #[case::id_maps(CaseSpec { id_maps: Some(IdMaps::range(1000, 1000, 1)), ..spec("pid") }, SpecError::IdMapsWithoutUserNs)]
    #[case::pivot(CaseSpec { rootfs: RootfsMode::PivotRoot, ..spec("pid") }, SpecError::PivotRootWithoutMntNs)]
    #[case::join(CaseSpec { launcher: LauncherKind::SetnsPidfd, ..spec("none") }, SpecError::JoinWithoutNamespaces)]
    #[case::prop_rootfs(CaseSpec { rootfs: RootfsMode::Chroot, propagation: Some(Propagation { host: PropMode::Shared, container: PropMode::Shared }), ..spec("mnt") }, SpecError::PropagationNeedsHostRootfs)]
    #[case::prop_native_pivot(CaseSpec { rootfs: RootfsMode::PivotRoot, propagation: Some(Propagation { host: PropMode::Shared, container: PropMode::Slave }), ..spec("mnt") }, SpecError::PropagationNeedsHostRootfs)]
    #[case::prop_no_mnt(CaseSpec { propagation: Some(Propagation { host: PropMode::Shared, container: PropMode::Slave }), ..spec("user") }, SpecError::PropagationContainerWithoutMntNs)]
    fn invalid_combinations_are_rejected(#[case] s: CaseSpec, #[case] want: SpecError) {
        assert_eq!(s.validate(), Err(want));
    }

    #[rstest]
    #[case::overlap_inside("0 1000 10\n5 5000 10")]
    #[case::overlap_outside("0 1000 10\n100 1005 10")]
    #[case::zero_count("0 1000 0")]
    #[case::overflow("0 4294967290 10")]
    #[case::root_unmapped("1 1000 10")]
    fn bad_id_maps_are_rejected(#[case] text: &str) {
        let lines = isoprobe_probes::sys::parse_id_map(text).unwrap();
        let s = CaseSpec { id_maps: Some(IdMaps { uid: lines.clone(), gid: lines }), ..spec("user") };
        assert!(matches!(s.validate(), Err(SpecError::BadIdMap { .. })), "{text}");
    }

    /// A tool that only pivot_roots runs a mount case in the case directory; the native launcher
    /// plans its propagation step on the host's paths and does not.
    #[test]
    fn a_mount_case_after_pivot_root_is_an_external_tools() {
        let p = Some(Propagation { host: PropMode::Shared, container: PropMode::Slave });
        for launcher in [LauncherKind::Runc, LauncherKind::Crun, LauncherKind::Lxc, LauncherKind::Nspawn] {
            let s = CaseSpec { rootfs: RootfsMode::PivotRoot, launcher, propagation: p, ..spec("mnt+user") };
            assert_eq!(s.validate(), Ok(()), "{s}");
            assert_eq!(s.without(NsKind::Mnt).propagation, None, "a chroot is no mount case");
        }
        let joiner = CaseSpec {
            rootfs: RootfsMode::PivotRoot,
            launcher: LauncherKind::LxcAttach,
            propagation: p,
            ..spec("mnt")
        };
        assert_eq!(joiner.validate(), Err(SpecError::PropagationNeedsHostRootfs));
    }

    #[test]
    fn a_spec_parses_from_json_and_unknown_fields_are_errors() {
        let s: CaseSpec = serde_json::from_str(r#"{"namespaces":["pid","mnt"],"rootfs":"pivot-root"}"#).unwrap();
        assert_eq!(s.name(), "clone3/pivot/pid+mnt");
        let err = serde_json::from_str::<CaseSpec>(r#"{"namespaces":[],"hostnme":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("hostnme"), "{err}");
    }

    #[test]
    fn default_maps_depend_on_the_runner() {
        let s = spec("user");
        let root = s.resolve(Runner { uid: 0, gid: 0 }).into_inner().id_maps.unwrap();
        assert_eq!(IdMaps::outside(&root.uid, 0), Some(100_000));
        let user = s.resolve(Runner { uid: 1000, gid: 1001 }).into_inner().id_maps.unwrap();
        assert_eq!(IdMaps::to_proc_text(&user.gid), "0 1001 1\n");
    }

    proptest! {
        #[test]
        fn serde_round_trip(s in any::<CaseSpec>()) {
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<CaseSpec>(&json).unwrap(), s);
        }

        /// Dropping a namespace never turns a valid spec into an invalid one (what the sensitivity
        /// tests rely on), except joining with nothing left to join.
        #[test]
        fn generated_specs_are_valid(s in strategies::valid_spec()) {
            prop_assert_eq!(s.validate(), Ok(()));
        }

        #[test]
        fn without_keeps_a_spec_valid(s in strategies::valid_spec(), k in any::<NsKind>()) {
            let d = s.without(k);
            prop_assert!(!d.has(k));
            if !(d.launcher.joins() && d.namespaces.is_empty()) {
                prop_assert_eq!(d.validate(), Ok(()));
            }
        }
    }
}

/// proptest strategies for specs, shared by the crate's property tests.
#[cfg(test)]
pub(crate) mod strategies {
    use super::*;
    use proptest::prelude::*;

    /// Valid specs only: the settings a namespace allows are generated only with it.
    pub fn valid_spec() -> impl Strategy<Value = CaseSpec> {
        (
            any::<u8>(),
            any::<RootfsMode>(),
            any::<LauncherKind>(),
            proptest::option::of("[a-z][a-z0-9-]{0,20}"),
            proptest::option::of((1u32..1_000_000, 1u32..65_536)),
            proptest::option::of((-1_000_000_000i64..1_000_000_000_000_000, -1_000_000_000i64..1_000_000_000_000_000)),
            proptest::option::of(any::<Propagation>()),
        )
            .prop_map(|(bits, rootfs, launcher, hostname, maps, offsets, propagation)| {
                let mut ns = NsSet::from_bits(bits);
                if launcher.joins() && ns.is_empty() {
                    ns = ns.with(NsKind::Pid);
                }
                let rootfs = if rootfs == RootfsMode::PivotRoot && !ns.contains(NsKind::Mnt) {
                    RootfsMode::Chroot
                } else {
                    rootfs
                };
                CaseSpec {
                    namespaces: ns,
                    rootfs,
                    launcher,
                    hostname: hostname.filter(|_| ns.contains(NsKind::Uts)),
                    id_maps: maps.filter(|_| ns.contains(NsKind::User)).map(|(o, c)| IdMaps::range(o, o, c)),
                    time_offsets: offsets
                        .filter(|_| ns.contains(NsKind::Time))
                        .map(|(m, b)| TimeOffsets { monotonic_ns: m, boottime_ns: b }),
                    limits: None,
                    sysctl_stripe: None,
                    propagation: propagation
                        .filter(|_| {
                            rootfs == RootfsMode::Host
                                || (rootfs == RootfsMode::PivotRoot && launcher.mount_cases_after_pivot())
                        })
                        .map(|p| Propagation {
                            container: if ns.contains(NsKind::Mnt) { p.container } else { p.host },
                            ..p
                        }),
                }
            })
    }
}
