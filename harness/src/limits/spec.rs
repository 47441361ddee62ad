//! What a limit case is: the cgroup settings (in cgroup v2 vocabulary), the settings of an
//! optional sibling cgroup, and the exercise the probe runs into them.
//!
//! A *control* is the same spec without the setting under test ([`LimitSpec::control`]); a
//! sensitivity run launches a spec whose limits are scaled ([`LimitSpec::scaled`]) while the oracle
//! keeps the original. Plain data: serde, no I/O.

use std::fmt;

use isoprobe_probes::wire::Exercise;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cgroup::Setting;
use crate::cgroup::table::hugetlb_size_name;

/// cpu.max: `quota_us` of CPU time per `period_us` of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CpuMax {
    pub quota_us: u64,
    pub period_us: u64,
}

/// `hugetlb.<size>.max`, in pages of `page_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HugetlbMax {
    pub page_size: u64,
    pub pages: u64,
}

/// Cgroup settings. Field names are the cgroup v2 file names; knobs cgroup2 lacks keep their v1
/// names (`net_cls.classid`) or a name of their own (`devices`: an allow list, all else denied).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(rename = "memory.max", default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    #[serde(rename = "memory.swap.max", default, skip_serializing_if = "Option::is_none")]
    pub memory_swap_max: Option<u64>,
    /// memory.high (cgroup2 only): the throttle and reclaim threshold.
    #[serde(rename = "memory.high", default, skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<u64>,
    /// memory.oom.group 1 (cgroup2 only): an OOM kill takes every process of the cgroup.
    #[serde(rename = "memory.oom.group", default, skip_serializing_if = "std::ops::Not::not")]
    pub memory_oom_group: bool,
    #[serde(rename = "pids.max", default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    #[serde(rename = "cpu.max", default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<CpuMax>,
    #[serde(rename = "cpu.weight", default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// cpu.max.burst (v1 cpu.cfs_burst_us), µs: quota a group saves while idle, on top of cpu.max.
    #[serde(rename = "cpu.max.burst", default, skip_serializing_if = "Option::is_none")]
    pub cpu_max_burst: Option<u64>,
    /// cpu.idle 1: the group's entity is SCHED_IDLE to its siblings.
    #[serde(rename = "cpu.idle", default, skip_serializing_if = "std::ops::Not::not")]
    pub cpu_idle: bool,
    /// cpu.weight.nice (cgroup2 only): the weight given as a nice value.
    #[serde(rename = "cpu.weight.nice", default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight_nice: Option<i32>,
    #[serde(rename = "cpuset.cpus", default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<Vec<u32>>,
    #[serde(rename = "cpuset.mems", default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<Vec<u32>>,
    /// io.weight (cgroup2 only, iocost) on the case's own loop device, which an io.weight case
    /// puts under iocost.
    #[serde(rename = "io.weight", default, skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u32>,
    /// io.max `rbps` on the case's own loop device.
    #[serde(rename = "io.max.rbps", default, skip_serializing_if = "Option::is_none")]
    pub io_rbps: Option<u64>,
    #[serde(rename = "hugetlb.max", default, skip_serializing_if = "Option::is_none")]
    pub hugetlb_max: Option<HugetlbMax>,
    /// cgroup.freeze: the host freezes the cgroup when the probe asks it to hold.
    #[serde(rename = "cgroup.freeze", default, skip_serializing_if = "std::ops::Not::not")]
    pub freeze: bool,
    /// cgroup.kill: the host kills the case's sibling cgroup (where the probe's forking group
    /// runs) when the probe asks.
    #[serde(rename = "cgroup.kill", default, skip_serializing_if = "std::ops::Not::not")]
    pub kill: bool,
    /// Device rules allowed (`c 1:3 rwm`); every other device is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    #[serde(rename = "net_cls.classid", default, skip_serializing_if = "Option::is_none")]
    pub net_cls_classid: Option<u32>,
    /// net_prio.ifpriomap lines (`lo 5`).
    #[serde(rename = "net_prio.ifpriomap", default, skip_serializing_if = "Option::is_none")]
    pub net_prio_ifpriomap: Option<String>,
    /// Count the case's own cgroup with perf_event (the control counts its empty sibling).
    #[serde(rename = "perf_event", default, skip_serializing_if = "std::ops::Not::not")]
    pub perf_event: bool,
    /// Delegate the case's cgroup2 cgroup to the probe's user (cgroup-v2.rst, "Delegation"): the
    /// host chowns its directory, cgroup.procs, cgroup.threads and cgroup.subtree_control to the
    /// id the probe's user namespace maps its root to.
    #[serde(rename = "delegate", default, skip_serializing_if = "std::ops::Not::not")]
    pub delegate: bool,
    /// memory.low and memory.min (cgroup2 only) of the protected child of the sibling in a
    /// memory protection case (not of the case's own cgroup: see `protect`).
    #[serde(rename = "memory.low", default, skip_serializing_if = "Option::is_none")]
    pub memory_low: Option<u64>,
    #[serde(rename = "memory.min", default, skip_serializing_if = "Option::is_none")]
    pub memory_min: Option<u64>,
}

/// The cpu list text cgroup files take (`0-1,3` is also accepted; isoprobe writes `0,1,3`).
fn cpu_list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The settings to write, in v2 vocabulary. `loop_dev` is the case's loop device (MAJ, MIN).
    /// The freeze, kill, perf_event and delegate fields are actions, not settings; memory.low and
    /// memory.min belong to a child of the sibling (see `protect`).
    pub fn settings(&self, loop_dev: Option<(u64, u64)>) -> Vec<Setting> {
        let mut v = Vec::new();
        if let Some(m) = self.memory_max {
            v.push(Setting::new("memory.max", m.to_string()));
        }
        if let Some(s) = self.memory_swap_max {
            v.push(Setting::new("memory.swap.max", s.to_string()));
        }
        if let Some(h) = self.memory_high {
            v.push(Setting::new("memory.high", h.to_string()));
        }
        if self.memory_oom_group {
            v.push(Setting::new("memory.oom.group", "1"));
        }
        if let Some(p) = self.pids_max {
            v.push(Setting::new("pids.max", p.to_string()));
        }
        if let Some(c) = self.cpu_max {
            v.push(Setting::new("cpu.max", format!("{} {}", c.quota_us, c.period_us)));
        }
        if let Some(w) = self.cpu_weight {
            v.push(Setting::new("cpu.weight", w.to_string()));
        }
        if let Some(b) = self.cpu_max_burst {
            v.push(Setting::new("cpu.max.burst", b.to_string()));
        }
        if self.cpu_idle {
            v.push(Setting::new("cpu.idle", "1"));
        }
        if let Some(n) = self.cpu_weight_nice {
            v.push(Setting::new("cpu.weight.nice", n.to_string()));
        }
        if let Some(c) = &self.cpuset_cpus {
            v.push(Setting::new("cpuset.cpus", cpu_list(c)));
        }
        if let Some(m) = &self.cpuset_mems {
            v.push(Setting::new("cpuset.mems", cpu_list(m)));
        }
        if let (Some(bps), Some((maj, min))) = (self.io_rbps, loop_dev) {
            v.push(Setting::new("io.max", format!("{maj}:{min} rbps={bps}")));
        }
        if let (Some(w), Some((maj, min))) = (self.io_weight, loop_dev) {
            v.push(Setting::new("io.weight", format!("{maj}:{min} {w}")));
        }
        if let Some(h) = self.hugetlb_max {
            v.push(Setting::new(
                format!("hugetlb.{}.max", hugetlb_size_name(h.page_size)),
                (h.page_size * h.pages).to_string(),
            ));
        }
        if let Some(d) = &self.devices {
            v.push(Setting::new("devices", d.join("\n")));
        }
        if let Some(c) = self.net_cls_classid {
            v.push(Setting::new("net_cls.classid", c.to_string()));
        }
        if let Some(m) = &self.net_prio_ifpriomap {
            v.push(Setting::new("net_prio.ifpriomap", m.clone()));
        }
        v
    }

    /// The same limits with every quantity multiplied by `k` (weights and cpu lists are left).
    pub fn scaled(&self, k: u64) -> Limits {
        let mut l = self.clone();
        l.memory_max = l.memory_max.map(|m| m * k);
        l.memory_high = l.memory_high.map(|m| m * k);
        l.pids_max = l.pids_max.map(|p| p * k);
        l.cpu_max = l.cpu_max.map(|c| CpuMax { quota_us: c.quota_us * k, ..c });
        l.cpu_max_burst = l.cpu_max_burst.map(|b| b * k);
        l.io_rbps = l.io_rbps.map(|b| b * k);
        l.hugetlb_max = l.hugetlb_max.map(|h| HugetlbMax { pages: h.pages * k, ..h });
        l
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> =
            self.settings(Some((0, 0))).iter().map(|s| s.to_string().replace('\n', ";")).collect();
        if self.freeze {
            parts.push("cgroup.freeze".into());
        }
        if self.kill {
            parts.push("cgroup.kill".into());
        }
        if self.perf_event {
            parts.push("perf_event".into());
        }
        if self.delegate {
            parts.push("delegate".into());
        }
        if let Some(l) = self.memory_low {
            parts.push(format!("memory.low={l}"));
        }
        if let Some(m) = self.memory_min {
            parts.push(format!("memory.min={m}"));
        }
        if parts.is_empty() { f.write_str("no limits") } else { f.write_str(&parts.join(",")) }
    }
}

/// A limit case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    pub settings: Limits,
    /// A sibling cgroup with these settings (a weight case's competitor runs there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling: Option<Limits>,
    /// What the probe does. The device of `io-read` and the mount point of `cgroup-view` are the
    /// case's own (the harness fills them in); the values here are ignored.
    #[schemars(schema_with = "crate::spec::schema::exercise")]
    pub exercise: Exercise,
}

impl LimitSpec {
    /// The control: the same exercise without the setting under test (every setting but those
    /// that only set the stage: the pinning weight of a CPU case, the sibling's reference weight).
    pub fn control(&self) -> LimitSpec {
        let mut c = self.clone();
        let s = &mut c.settings;
        match self.exercise {
            Exercise::CpuBurn { .. } => s.cpu_max = None,
            Exercise::CpuBurst { .. } => s.cpu_max_burst = None,
            // Both groups alike: the sibling's weight, however it is given.
            Exercise::CpuShare { .. } => {
                let sib = c.sibling.clone().unwrap_or_default();
                (s.cpu_weight, s.cpu_weight_nice, s.cpu_idle) = (sib.cpu_weight, sib.cpu_weight_nice, sib.cpu_idle);
            }
            Exercise::IoShare { .. } => s.io_weight = c.sibling.as_ref().and_then(|sib| sib.io_weight),
            // The group's limit stays (its allocator is still OOM-killed); only the group kill goes.
            Exercise::OomGroup { .. } | Exercise::OomGroupParent { .. } => {
                *s = Limits::default();
                if let Some(sib) = &mut c.sibling {
                    sib.memory_oom_group = false;
                }
            }
            _ => *s = Limits::default(),
        }
        c
    }

    /// The same case with its limits scaled by `k` (the sensitivity tests launch this).
    pub fn scaled(&self, k: u64) -> LimitSpec {
        LimitSpec { settings: self.settings.scaled(k), ..self.clone() }
    }

    /// `<exercise> [<settings>]`, and the sibling's settings where the setting under test is
    /// the sibling's (an OOM group: its limited case and its control differ only there, and a
    /// report names cases by their spec).
    pub fn name(&self) -> String {
        match (&self.exercise, &self.sibling) {
            (
                Exercise::OomGroup { .. } | Exercise::OomGroupParent { .. } | Exercise::MemoryProtect { .. },
                Some(sib),
            ) => {
                format!("{} [{}] sibling [{}]", self.exercise.name(), self.settings, sib)
            }
            _ => format!("{} [{}]", self.exercise.name(), self.settings),
        }
    }
}
