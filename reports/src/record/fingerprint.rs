//! The environment fingerprint as a report or benchmark summary records it: kernel, its
//! configuration, cgroup layout, user and capabilities, user-namespace policy, CPU, hypervisor,
//! mount count, tool versions. `isoprobe compare` reads two of them to decide whether two runs
//! can be compared at all.
//!
//! Converted from the harness's `fingerprint::Fingerprint`, which collects it; every name of the
//! report's JSON is spelled here, and so is the flat `key = value` form the renderers print
//! ([`Fingerprint::properties`]). What this module must never do: read the machine. A fingerprint
//! in a report describes the machine the report came from, not the one reading it.

use std::collections::BTreeMap;

use isoprobe_harness::NsSet;
use isoprobe_harness::fingerprint as harness;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything a run's results depend on besides isoprobe itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    pub kernel: KernelInfo,
    pub kernel_config: KernelConfig,
    /// The namespace kinds this kernel has (a /proc/self/ns entry each).
    #[schemars(schema_with = "super::schema::ns_set")]
    pub namespaces: NsSet,
    pub cgroup: CgroupInfo,
    pub user: UserInfo,
    pub userns: UsernsPolicy,
    pub cpu: CpuInfo,
    pub hypervisor: Hypervisor,
    /// Mounts in the caller's mount namespace (unshare(CLONE_NEWNS) copies them all).
    pub mount_count: usize,
    /// Versions of the container tools asked about (the launchers a run used).
    pub tools: Vec<ToolVersion>,
}

/// uname(2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KernelInfo {
    pub release: String,
    pub version: String,
    pub machine: String,
}

/// The kernel configuration options isoprobe's results depend on, where the configuration is
/// readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KernelConfig {
    /// Where the configuration was read (/proc/config.gz, `/boot/config-<release>`), if anywhere.
    pub source: Option<String>,
    /// `CONFIG_X` → `y`, `m`, `n` (is not set) or its value; options this kernel does not know are
    /// left out.
    pub options: BTreeMap<String, String>,
    /// Why nothing was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// How cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupLayout {
    /// Only v1 hierarchies.
    V1,
    /// Only cgroup2 (the unified hierarchy).
    V2,
    /// v1 controllers and a cgroup2 mount side by side.
    Hybrid,
    /// No cgroup filesystem is mounted.
    None,
}

impl CgroupLayout {
    pub const ALL: [CgroupLayout; 4] = [CgroupLayout::V1, CgroupLayout::V2, CgroupLayout::Hybrid, CgroupLayout::None];

    pub fn name(self) -> &'static str {
        match self {
            CgroupLayout::V1 => "v1",
            CgroupLayout::V2 => "v2",
            CgroupLayout::Hybrid => "hybrid",
            CgroupLayout::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CgroupInfo {
    pub layout: CgroupLayout,
    /// v1 hierarchies: mount point and controllers (a named hierarchy shows as `name=<name>`).
    pub v1: Vec<CgroupV1Hierarchy>,
    /// Where cgroup2 is mounted.
    pub v2_mount: Option<String>,
    /// cgroup.controllers of the cgroup2 root.
    pub v2_controllers: Vec<String>,
    /// Controllers the kernel has (/proc/cgroups, enabled) that no hierarchy holds.
    pub unmounted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CgroupV1Hierarchy {
    pub mount_point: String,
    pub controllers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    pub euid: u32,
    pub egid: u32,
    /// CapEff of /proc/self/status, in hex.
    pub cap_eff: String,
    /// The names of the effective capabilities (`cap_sys_admin`), or `all` when every capability
    /// the kernel knows is held.
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UsernsPolicy {
    /// Whether an unprivileged process may create a user namespace.
    pub unprivileged: bool,
    /// Why not, when it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// The sysctls that decide it, where present.
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CpuInfo {
    pub model: String,
    /// Online CPUs (/sys/devices/system/cpu/online).
    pub online: usize,
    /// CPUs this process may run on (sched_getaffinity).
    pub available: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Hypervisor {
    /// The CPU reports running under a hypervisor (the `hypervisor` cpuinfo flag).
    pub detected: bool,
    /// The hypervisor's name, from its CPUID signature or /sys/hypervisor/type.
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolVersion {
    pub name: String,
    /// Where it was found on PATH (or /usr/sbin, /sbin).
    pub path: Option<String>,
    /// The first line of `<tool> --version`.
    pub version: Option<String>,
}

impl Fingerprint {
    /// Flat `key = value` pairs, in a fixed order, for JUnit properties, the environment tables
    /// of the Markdown and HTML reports, and `isoprobe env`.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            ("kernel.release".into(), self.kernel.release.clone()),
            ("kernel.version".into(), self.kernel.version.clone()),
            ("kernel.machine".into(), self.kernel.machine.clone()),
        ];
        match (&self.kernel_config.source, &self.kernel_config.unavailable) {
            (Some(src), _) => p.push(("kernel.config.source".into(), src.clone())),
            (None, Some(why)) => p.push(("kernel.config.source".into(), format!("unavailable: {why}"))),
            (None, None) => {}
        }
        for (k, v) in &self.kernel_config.options {
            p.push((format!("kernel.config.{k}"), v.clone()));
        }
        p.push(("namespaces".into(), self.namespaces.to_string()));
        p.push(("cgroup.layout".into(), self.cgroup.layout.name().into()));
        for h in &self.cgroup.v1 {
            p.push((format!("cgroup.v1.{}", h.mount_point), h.controllers.join(",")));
        }
        if let Some(m) = &self.cgroup.v2_mount {
            p.push(("cgroup.v2.mount".into(), m.clone()));
            p.push(("cgroup.v2.controllers".into(), self.cgroup.v2_controllers.join(",")));
        }
        if !self.cgroup.unmounted.is_empty() {
            p.push(("cgroup.unmounted".into(), self.cgroup.unmounted.join(",")));
        }
        p.push(("user.euid".into(), self.user.euid.to_string()));
        p.push(("user.egid".into(), self.user.egid.to_string()));
        p.push(("user.cap_eff".into(), self.user.cap_eff.clone()));
        p.push(("user.capabilities".into(), self.user.capabilities.join(",")));
        let userns = match &self.userns.blocked_by {
            None => "allowed".to_owned(),
            Some(why) => format!("blocked: {why}"),
        };
        p.push(("userns.unprivileged".into(), userns));
        for (k, v) in &self.userns.sysctls {
            p.push((format!("userns.sysctl.{k}"), v.clone()));
        }
        p.push(("cpu.model".into(), self.cpu.model.clone()));
        p.push(("cpu.online".into(), self.cpu.online.to_string()));
        p.push(("cpu.available".into(), self.cpu.available.to_string()));
        let hv = match (&self.hypervisor.vendor, self.hypervisor.detected) {
            (Some(v), _) => v.clone(),
            (None, true) => "yes (unknown vendor)".into(),
            (None, false) => "none".into(),
        };
        p.push(("hypervisor".into(), hv));
        p.push(("mount_count".into(), self.mount_count.to_string()));
        for t in &self.tools {
            let v = match (&t.path, &t.version) {
                (None, _) => "not found".to_owned(),
                (Some(path), Some(v)) => format!("{v} ({path})"),
                (Some(path), None) => format!("unknown version ({path})"),
            };
            p.push((format!("tool.{}", t.name), v));
        }
        p
    }
}

// Harness values are taken apart field by field and every variant matched: what the harness adds
// to its fingerprint is a compile error here, not a field reports silently leave out.

impl From<&harness::Fingerprint> for Fingerprint {
    fn from(f: &harness::Fingerprint) -> Fingerprint {
        let harness::Fingerprint {
            kernel,
            kernel_config,
            namespaces,
            cgroup,
            user,
            userns,
            cpu,
            hypervisor,
            mount_count,
            tools,
        } = f;
        let harness::KernelInfo { release, version, machine } = kernel;
        let harness::KernelConfig { source, options, unavailable } = kernel_config;
        let harness::CgroupInfo { layout, v1, v2_mount, v2_controllers, unmounted } = cgroup;
        let harness::UserInfo { euid, egid, cap_eff, capabilities } = user;
        let harness::UsernsPolicy { unprivileged, blocked_by, sysctls } = userns;
        let harness::CpuInfo { model, online, available } = cpu;
        let harness::Hypervisor { detected, vendor } = hypervisor;
        Fingerprint {
            kernel: KernelInfo { release: release.clone(), version: version.clone(), machine: machine.clone() },
            kernel_config: KernelConfig {
                source: source.clone(),
                options: options.clone(),
                unavailable: unavailable.clone(),
            },
            namespaces: *namespaces,
            cgroup: CgroupInfo {
                layout: (*layout).into(),
                v1: v1
                    .iter()
                    .map(|harness::CgroupV1Hierarchy { mount_point, controllers }| CgroupV1Hierarchy {
                        mount_point: mount_point.clone(),
                        controllers: controllers.clone(),
                    })
                    .collect(),
                v2_mount: v2_mount.clone(),
                v2_controllers: v2_controllers.clone(),
                unmounted: unmounted.clone(),
            },
            user: UserInfo { euid: *euid, egid: *egid, cap_eff: cap_eff.clone(), capabilities: capabilities.clone() },
            userns: UsernsPolicy {
                unprivileged: *unprivileged,
                blocked_by: blocked_by.clone(),
                sysctls: sysctls.clone(),
            },
            cpu: CpuInfo { model: model.clone(), online: *online, available: *available },
            hypervisor: Hypervisor { detected: *detected, vendor: vendor.clone() },
            mount_count: *mount_count,
            tools: tools
                .iter()
                .map(|harness::ToolVersion { name, path, version }| ToolVersion {
                    name: name.clone(),
                    path: path.clone(),
                    version: version.clone(),
                })
                .collect(),
        }
    }
}

impl From<harness::CgroupLayout> for CgroupLayout {
    fn from(l: harness::CgroupLayout) -> CgroupLayout {
        match l {
            harness::CgroupLayout::V1 => CgroupLayout::V1,
            harness::CgroupLayout::V2 => CgroupLayout::V2,
            harness::CgroupLayout::Hybrid => CgroupLayout::Hybrid,
            harness::CgroupLayout::None => CgroupLayout::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::strategy::{self, assert_converts_from, assert_round_trip};

    proptest! {
        #[test]
        fn a_fingerprint_round_trips(f in strategy::fingerprint()) {
            assert_round_trip(&f)?;
        }

        #[test]
        fn a_fingerprint_converts_from_the_harness_with_the_same_json(f in strategy::fingerprint()) {
            assert_converts_from::<harness::Fingerprint, _>(&f)?;
        }

        /// The properties were the harness's rendering until the split (and what `isoprobe env`
        /// printed): the report's own copy prints the same lines.
        #[test]
        fn properties_are_the_lines_the_harness_printed(f in strategy::fingerprint()) {
            let h: harness::Fingerprint = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
            prop_assert_eq!(f.properties(), h.properties());
        }

        /// An unknown field of a fingerprint is refused, not dropped, as the harness's type refused
        /// it: compare decides from the fingerprints whether two runs can be compared at all.
        #[test]
        fn an_unknown_fingerprint_field_is_refused(f in strategy::fingerprint()) {
            let mut json = serde_json::to_value(&f).unwrap();
            json["secure_boot"] = serde_json::json!(true);
            let e = serde_json::from_value::<Fingerprint>(json).unwrap_err().to_string();
            prop_assert!(e.contains("secure_boot"), "{}", e);
        }
    }

    #[test]
    fn cgroup_layouts_are_the_harness_s_names() {
        for l in CgroupLayout::ALL {
            let json = serde_json::to_value(l).unwrap();
            let h: harness::CgroupLayout = serde_json::from_value(json.clone()).unwrap();
            assert_eq!((serde_json::to_value(h).unwrap(), CgroupLayout::from(h)), (json.clone(), l));
            assert_eq!((l.name(), json.as_str()), (h.name(), Some(l.name())));
        }
    }
}
