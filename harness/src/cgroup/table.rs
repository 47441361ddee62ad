//! The one table from isoprobe's cgroup vocabulary (cgroup v2 file names and values) to cgroup v1
//! files, and the conversions between their value formats.
//!
//! A setting is a v2 file name and the text a v2 kernel takes in it (`memory.max` = `67108864`,
//! `cpu.max` = `20000 100000`). Knobs cgroup2 does not have keep their v1 names (`net_cls.classid`)
//! or, for the device list, a name of their own (`devices`). Pure: no I/O.

use std::fmt;

/// One setting in v2 vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Setting {
        Setting { key: key.into(), value: value.into() }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// How a v2 value becomes v1 file contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The same text in the named v1 file, except `max`, written as `-1`.
    MaxAsMinusOne(&'static str),
    /// The same text in the named v1 file.
    Same(&'static str),
    /// `QUOTA PERIOD` → cpu.cfs_period_us, then cpu.cfs_quota_us (`max` → -1).
    CpuMax,
    /// cpu.weight → cpu.shares = weight × 1024 / 100, the kernel's own conversion
    /// (kernel/sched/core.c, sched_weight_from_cgroup: 100 ↔ 1024, the nice-0 weight).
    CpuWeight,
    /// memory.swap.max → memory.memsw.limit_in_bytes = memory.max + swap.max (v1 limits memory
    /// plus swap together; needs memory.max).
    MemSwap,
    /// `MAJ:MIN rbps=N wbps=N riops=N wiops=N` → one line in each
    /// blkio.throttle.{read,write}_{bps,iops}_device.
    IoMax,
    /// `hugetlb.<size>.max` → `hugetlb.<size>.limit_in_bytes` (the size is named alike, e.g. 2MB).
    Hugetlb,
    /// cgroup.freeze `1`/`0` → freezer.state `FROZEN`/`THAWED`.
    Freeze,
    /// A cgroup2 file v1 has no counterpart for (memory.high, memory.oom.group): the v1 hierarchy
    /// of the controller cannot take it.
    V2Only,
    /// A device allow list, one rule a line (`c 1:3 rwm`): devices.deny `a`, then each rule to
    /// devices.allow. cgroup2 has no file for it (a BPF program is its way).
    Devices,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// The setting's name; `hugetlb.*.max` stands for every page size.
    pub key: &'static str,
    /// The v1 controller that implements it.
    pub v1_controller: &'static str,
    /// The v2 controller, or `None` where cgroup2 has no file for it.
    pub v2_controller: Option<&'static str>,
    pub v1: Conversion,
}

/// The table.
pub const TABLE: &[Mapping] = &[
    Mapping {
        key: "memory.max",
        v1_controller: "memory",
        v2_controller: Some("memory"),
        v1: Conversion::MaxAsMinusOne("memory.limit_in_bytes"),
    },
    Mapping { key: "memory.swap.max", v1_controller: "memory", v2_controller: Some("memory"), v1: Conversion::MemSwap },
    // v1 memory has no throttling limit (memory.soft_limit_in_bytes only orders reclaim under
    // global pressure) and no group kill.
    Mapping { key: "memory.high", v1_controller: "memory", v2_controller: Some("memory"), v1: Conversion::V2Only },
    Mapping { key: "memory.oom.group", v1_controller: "memory", v2_controller: Some("memory"), v1: Conversion::V2Only },
    Mapping { key: "pids.max", v1_controller: "pids", v2_controller: Some("pids"), v1: Conversion::Same("pids.max") },
    Mapping { key: "cpu.max", v1_controller: "cpu", v2_controller: Some("cpu"), v1: Conversion::CpuMax },
    Mapping { key: "cpu.weight", v1_controller: "cpu", v2_controller: Some("cpu"), v1: Conversion::CpuWeight },
    Mapping {
        key: "cpu.max.burst",
        v1_controller: "cpu",
        v2_controller: Some("cpu"),
        v1: Conversion::Same("cpu.cfs_burst_us"),
    },
    Mapping { key: "cpu.idle", v1_controller: "cpu", v2_controller: Some("cpu"), v1: Conversion::Same("cpu.idle") },
    // v1 takes a weight as cpu.shares only.
    Mapping { key: "cpu.weight.nice", v1_controller: "cpu", v2_controller: Some("cpu"), v1: Conversion::V2Only },
    Mapping {
        key: "cpuset.cpus",
        v1_controller: "cpuset",
        v2_controller: Some("cpuset"),
        v1: Conversion::Same("cpuset.cpus"),
    },
    Mapping {
        key: "cpuset.mems",
        v1_controller: "cpuset",
        v2_controller: Some("cpuset"),
        v1: Conversion::Same("cpuset.mems"),
    },
    Mapping { key: "io.max", v1_controller: "blkio", v2_controller: Some("io"), v1: Conversion::IoMax },
    // iocost's weight; v1's blkio.weight is CFQ's and BFQ's (blkio.bfq.weight), another scheduler.
    Mapping { key: "io.weight", v1_controller: "blkio", v2_controller: Some("io"), v1: Conversion::V2Only },
    Mapping { key: "hugetlb.*.max", v1_controller: "hugetlb", v2_controller: Some("hugetlb"), v1: Conversion::Hugetlb },
    Mapping { key: "cgroup.freeze", v1_controller: "freezer", v2_controller: None, v1: Conversion::Freeze },
    Mapping { key: "devices", v1_controller: "devices", v2_controller: None, v1: Conversion::Devices },
    Mapping {
        key: "net_cls.classid",
        v1_controller: "net_cls",
        v2_controller: None,
        v1: Conversion::Same("net_cls.classid"),
    },
    Mapping {
        key: "net_prio.ifpriomap",
        v1_controller: "net_prio",
        v2_controller: None,
        v1: Conversion::Same("net_prio.ifpriomap"),
    },
];

/// A setting the table cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("no cgroup file is known for the setting `{0}`")]
    Unknown(String),
    #[error("bad value for {key}: {why}")]
    BadValue { key: String, why: String },
}

/// The row for `key`.
pub fn lookup(key: &str) -> Result<&'static Mapping, TableError> {
    let hugetlb = key.strip_prefix("hugetlb.").and_then(|r| r.strip_suffix(".max")).is_some_and(|s| !s.is_empty());
    TABLE
        .iter()
        .find(|m| m.key == key || (hugetlb && m.key == "hugetlb.*.max"))
        .ok_or_else(|| TableError::Unknown(key.to_owned()))
}

/// The v1 writes for one setting, in order. `all` is the whole setting list (memory.swap.max
/// needs memory.max).
pub fn to_v1(s: &Setting, all: &[Setting]) -> Result<Vec<(String, String)>, TableError> {
    let bad = |why: &str| TableError::BadValue { key: s.key.clone(), why: why.to_owned() };
    let minus_one = |v: &str| if v == "max" { "-1".to_owned() } else { v.to_owned() };
    let num = |v: &str| v.parse::<u64>().map_err(|_| bad(&format!("`{v}` is not a number")));
    Ok(match lookup(&s.key)?.v1 {
        Conversion::MaxAsMinusOne(file) => vec![(file.into(), minus_one(&s.value))],
        Conversion::Same(file) => vec![(file.into(), s.value.clone())],
        Conversion::CpuMax => {
            let (quota, period) = match s.value.split_once(' ') {
                Some((q, p)) => (q, p),
                None => (s.value.as_str(), "100000"),
            };
            num(period)?;
            if quota != "max" {
                num(quota)?;
            }
            vec![("cpu.cfs_period_us".into(), period.into()), ("cpu.cfs_quota_us".into(), minus_one(quota))]
        }
        Conversion::CpuWeight => {
            let w = num(&s.value)?;
            if !(1..=10_000).contains(&w) {
                return Err(bad("cpu.weight takes 1 to 10000"));
            }
            vec![("cpu.shares".into(), ((w * 1024 + 50) / 100).to_string())]
        }
        Conversion::MemSwap => {
            let mem = all
                .iter()
                .find(|o| o.key == "memory.max")
                .ok_or_else(|| bad("v1 limits memory and swap together: memory.max must be set too"))?;
            let total = match (mem.value.as_str(), s.value.as_str()) {
                ("max", _) | (_, "max") => "-1".to_owned(),
                (m, w) => num(m)?.checked_add(num(w)?).ok_or_else(|| bad("memory.max + swap overflows"))?.to_string(),
            };
            vec![("memory.memsw.limit_in_bytes".into(), total)]
        }
        Conversion::IoMax => {
            let mut parts = s.value.split_whitespace();
            let dev = parts.next().ok_or_else(|| bad("no MAJ:MIN"))?;
            let mut out = Vec::new();
            for kv in parts {
                let (k, v) = kv.split_once('=').ok_or_else(|| bad(&format!("`{kv}` is not key=value")))?;
                let file = match k {
                    "rbps" => "blkio.throttle.read_bps_device",
                    "wbps" => "blkio.throttle.write_bps_device",
                    "riops" => "blkio.throttle.read_iops_device",
                    "wiops" => "blkio.throttle.write_iops_device",
                    _ => return Err(bad(&format!("unknown io.max key `{k}`"))),
                };
                // v1 removes a rule with 0 where v2 says max.
                let v = if v == "max" { "0".to_owned() } else { num(v)?.to_string() };
                out.push((file.to_owned(), format!("{dev} {v}")));
            }
            out
        }
        Conversion::Hugetlb => {
            let size = s.key.trim_start_matches("hugetlb.").trim_end_matches(".max");
            vec![(format!("hugetlb.{size}.limit_in_bytes"), minus_one(&s.value))]
        }
        Conversion::V2Only => return Err(bad("a cgroup2 file with no cgroup v1 counterpart")),
        Conversion::Freeze => match s.value.as_str() {
            "1" => vec![("freezer.state".into(), "FROZEN".into())],
            "0" => vec![("freezer.state".into(), "THAWED".into())],
            _ => return Err(bad("cgroup.freeze takes 0 or 1")),
        },
        Conversion::Devices => {
            let mut out = vec![("devices.deny".to_owned(), "a".to_owned())];
            out.extend(
                s.value
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| ("devices.allow".to_owned(), l.trim().to_owned())),
            );
            out
        }
    })
}

/// The controller a setting needs on v1 and on v2 (None: v2 has no file for it).
pub fn controllers(key: &str) -> Result<(&'static str, Option<&'static str>), TableError> {
    lookup(key).map(|m| (m.v1_controller, m.v2_controller))
}

/// The kernel's name for a huge page size in cgroup files (`2MB`, `1GB`, `64KB`).
pub fn hugetlb_size_name(bytes: u64) -> String {
    const KB: u64 = 1024;
    if bytes >= KB * KB * KB && bytes % (KB * KB * KB) == 0 {
        format!("{}GB", bytes / (KB * KB * KB))
    } else if bytes >= KB * KB && bytes % (KB * KB) == 0 {
        format!("{}MB", bytes / (KB * KB))
    } else {
        format!("{}KB", bytes / KB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn v1(key: &str, value: &str) -> Vec<(String, String)> {
        let s = Setting::new(key, value);
        to_v1(&s, &[Setting::new("memory.max", "1000"), s.clone()]).unwrap()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[rstest]
    #[case("memory.max", "67108864", &[("memory.limit_in_bytes", "67108864")])]
    #[case("memory.max", "max", &[("memory.limit_in_bytes", "-1")])]
    #[case("memory.swap.max", "24", &[("memory.memsw.limit_in_bytes", "1024")])]
    #[case("pids.max", "16", &[("pids.max", "16")])]
    #[case("cpu.max", "20000 100000", &[("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "20000")])]
    #[case("cpu.max", "max 100000", &[("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "-1")])]
    #[case("cpu.weight", "100", &[("cpu.shares", "1024")])]
    #[case("cpu.weight", "300", &[("cpu.shares", "3072")])]
    #[case("cpu.weight", "1", &[("cpu.shares", "10")])]
    #[case("cpu.max.burst", "30000", &[("cpu.cfs_burst_us", "30000")])]
    #[case("cpu.idle", "1", &[("cpu.idle", "1")])]
    #[case("cpuset.cpus", "1", &[("cpuset.cpus", "1")])]
    #[case("io.max", "7:0 rbps=4194304 wiops=max", &[("blkio.throttle.read_bps_device", "7:0 4194304"), ("blkio.throttle.write_iops_device", "7:0 0")])]
    #[case("hugetlb.2MB.max", "4194304", &[("hugetlb.2MB.limit_in_bytes", "4194304")])]
    #[case("cgroup.freeze", "1", &[("freezer.state", "FROZEN")])]
    #[case("devices", "c 1:3 rwm\nc 1:9 r", &[("devices.deny", "a"), ("devices.allow", "c 1:3 rwm"), ("devices.allow", "c 1:9 r")])]
    #[case("net_cls.classid", "1048577", &[("net_cls.classid", "1048577")])]
    fn v2_settings_map_to_v1_files(#[case] key: &str, #[case] value: &str, #[case] want: &[(&str, &str)]) {
        assert_eq!(v1(key, value), pairs(want));
    }

    #[rstest]
    #[case("cpu.weight", "0")]
    #[case("cpu.weight", "10001")]
    #[case("cpu.max", "x 100000")]
    #[case("io.max", "7:0 bps=1")]
    #[case("cgroup.freeze", "yes")]
    fn bad_values_are_refused(#[case] key: &str, #[case] value: &str) {
        assert!(matches!(to_v1(&Setting::new(key, value), &[]), Err(TableError::BadValue { .. })));
    }

    #[test]
    fn swap_without_memory_max_is_refused_and_unknown_keys_are_named() {
        let e = to_v1(&Setting::new("memory.swap.max", "1"), &[]).unwrap_err();
        assert!(e.to_string().contains("memory.max must be set"), "{e}");
        assert_eq!(lookup("memory.low").unwrap_err(), TableError::Unknown("memory.low".into()));
        // Known, but only to cgroup2.
        let e = to_v1(&Setting::new("memory.high", "1"), &[]).unwrap_err();
        assert!(e.to_string().contains("no cgroup v1 counterpart"), "{e}");
        assert!(lookup("hugetlb..max").is_err());
    }

    #[test]
    fn huge_page_sizes_are_named_as_the_kernel_does() {
        assert_eq!(hugetlb_size_name(2 << 20), "2MB");
        assert_eq!(hugetlb_size_name(1 << 30), "1GB");
        assert_eq!(hugetlb_size_name(64 << 10), "64KB");
    }
}
