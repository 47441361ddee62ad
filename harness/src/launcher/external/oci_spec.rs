//! A typed OCI runtime config (`config.json` of a bundle), reduced to the fields isoprobe sets.
//!
//! Field names and shapes follow the OCI runtime specification (config.md and config-linux.md,
//! version 1.0.2, with `linux.timeOffsets`, `cpu.burst` and `cpu.idle` from 1.1). Optional fields are left out when unset, so
//! a runtime sees exactly what isoprobe chose and its own defaults otherwise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The OCI runtime spec version isoprobe writes.
pub const OCI_VERSION: &str = "1.0.2";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    pub linux: Linux,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Process {
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    pub no_new_privileges: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The five capability sets (`CAP_SYS_ADMIN` style names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

impl Capabilities {
    /// The same list in every set.
    pub fn all_sets(caps: &[&str]) -> Capabilities {
        let v: Vec<String> = caps.iter().map(|c| (*c).to_owned()).collect();
        Capabilities {
            bounding: v.clone(),
            effective: v.clone(),
            inheritable: v.clone(),
            permitted: v.clone(),
            ambient: v,
        }
    }
}

/// Every capability of Linux 5.9 and later (capabilities(7)), in the order of their numbers.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities in this process's bounding set (/proc/self/status `CapBnd`), by name: what a
/// runtime started by the harness can grant.
pub fn bounding_caps() -> Vec<&'static str> {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bits = text
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    ALL_CAPS.iter().enumerate().filter(|(i, _)| bits & (1u64 << i) != 0).map(|(_, c)| *c).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub fs_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Linux {
    pub namespaces: Vec<Namespace>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// `monotonic` and `boottime` offsets of a new time namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub time_offsets: BTreeMap<String, TimeOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

/// `linux.resources` (config-linux.md, "Control groups"): the cgroup v1-shaped fields isoprobe
/// sets. Unset fields are left out, so the runtime keeps its defaults for them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(rename = "blockIO", default, skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    /// cgroup2 files and the values to write to them (config-linux.md, "Unified"): the runtime
    /// writes each to the container's cgroup, and must refuse a key whose controller it cannot
    /// enable. A map: the runtime chooses the order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unified: BTreeMap<String, String>,
}

/// One device cgroup rule; `type` is `a`, `c` or `b`, absent numbers match every number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// `memory`: `limit` and `swap` (memory plus swap, as v1's memsw) in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    /// runtime-spec 1.1: the CFS burst in µs (cpu.max.burst, v1 cpu.cfs_burst_us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// runtime-spec 1.1: 1 makes the group SCHED_IDLE (cpu.idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// One namespace; `type` is one of pid, network, mount, ipc, uts, user, cgroup, time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeOffset {
    pub secs: i64,
    pub nanosecs: u32,
}

impl TimeOffset {
    /// Splits a signed nanosecond offset the way timens_offsets takes it: nanoseconds in 0..1e9.
    pub fn from_ns(ns: i64) -> TimeOffset {
        TimeOffset { secs: ns.div_euclid(1_000_000_000), nanosecs: ns.rem_euclid(1_000_000_000) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Spec {
        Spec {
            oci_version: OCI_VERSION.into(),
            process: Process {
                terminal: false,
                user: User { uid: 0, gid: 0 },
                args: vec!["/isoprobe-probe".into()],
                env: vec!["PATH=/".into()],
                cwd: "/".into(),
                capabilities: Some(Capabilities::all_sets(&["CAP_SYS_ADMIN"])),
                no_new_privileges: false,
            },
            root: Root { path: "/tmp/x".into(), readonly: false },
            hostname: Some("isoprobe-1".into()),
            mounts: vec![Mount {
                destination: "/proc".into(),
                fs_type: "proc".into(),
                source: "proc".into(),
                options: vec![],
            }],
            linux: Linux {
                namespaces: vec![Namespace { kind: "pid".into() }, Namespace { kind: "mount".into() }],
                uid_mappings: vec![IdMapping { container_id: 0, host_id: 100_000, size: 65_536 }],
                gid_mappings: vec![IdMapping { container_id: 0, host_id: 100_000, size: 65_536 }],
                cgroups_path: Some("/isoprobe-x".into()),
                time_offsets: [("boottime".to_owned(), TimeOffset::from_ns(-1_500_000_000))].into_iter().collect(),
                resources: Some(Resources {
                    memory: Some(Memory { limit: Some(64 << 20), swap: Some(64 << 20) }),
                    block_io: Some(BlockIo {
                        throttle_read_bps_device: vec![ThrottleDevice { major: 7, minor: 3, rate: 4 << 20 }],
                        ..Default::default()
                    }),
                    cpu: Some(Cpu { idle: Some(1), burst: Some(30_000), ..Default::default() }),
                    unified: [("memory.high".to_owned(), "33554432".to_owned())].into_iter().collect(),
                    ..Default::default()
                }),
            },
            annotations: [("run.oci.timens_offset".to_owned(), "boottime -2 500000000".to_owned())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn the_config_uses_the_spec_field_names_and_round_trips() {
        let s = sample();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["ociVersion"], "1.0.2");
        assert_eq!(json["process"]["noNewPrivileges"], false);
        assert_eq!(json["linux"]["uidMappings"][0]["containerID"], 0);
        assert_eq!(json["linux"]["uidMappings"][0]["hostID"], 100_000);
        assert_eq!(json["linux"]["cgroupsPath"], "/isoprobe-x");
        assert_eq!(json["linux"]["namespaces"][1]["type"], "mount");
        assert_eq!(json["mounts"][0]["type"], "proc");
        assert_eq!(json["linux"]["timeOffsets"]["boottime"]["secs"], -2);
        assert_eq!(json["linux"]["timeOffsets"]["boottime"]["nanosecs"], 500_000_000);
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(json["linux"]["resources"]["blockIO"]["throttleReadBpsDevice"][0]["rate"], 4 << 20);
        assert_eq!(json["linux"]["resources"]["cpu"], serde_json::json!({"burst": 30_000, "idle": 1}));
        assert_eq!(json["linux"]["resources"]["unified"]["memory.high"], "33554432");
        let back: Spec = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
