//! The cgroup v1 backend: settings go through the [`table`](super::table) to v1 files; each
//! controller with more to do than that (preparing a new cgroup, reading its counters, freezing)
//! has a file here.
//!
//! Never writes anything but the cgroups isoprobe created (a [`CgroupDir`]).

mod cpu;
mod cpuacct;
mod cpuset;
mod freezer;
mod hugetlb;
mod memory;
mod pids;

use isoprobe_probes::wire::CgroupReading;

use super::dir::CgroupDir;
use super::table::{Setting, controllers, to_v1};
use crate::error::HarnessError;

/// What a v1 controller does beyond the table.
pub(crate) trait Controller {
    /// Makes a new cgroup usable before anything is attached (cpuset starts empty).
    fn prepare(_dir: &CgroupDir) -> Result<(), HarnessError> {
        Ok(())
    }
    /// Adds the counters it keeps to `reading`.
    fn read(_dir: &CgroupDir, _reading: &mut CgroupReading) {}
}

fn dispatch_prepare(controller: &str, dir: &CgroupDir) -> Result<(), HarnessError> {
    match controller {
        "cpuset" => cpuset::Cpuset::prepare(dir),
        _ => Ok(()),
    }
}

/// Prepares a new cgroup of a hierarchy with `bound` controllers.
pub fn prepare(bound: &[String], dir: &CgroupDir) -> Result<(), HarnessError> {
    bound.iter().try_for_each(|c| dispatch_prepare(c, dir))
}

/// Writes the settings whose v1 controller is one of `bound`, in the table's order.
pub fn apply(bound: &[String], dir: &CgroupDir, settings: &[Setting]) -> Result<(), HarnessError> {
    for s in settings {
        let (v1, _) = controllers(&s.key).map_err(|e| HarnessError::Cgroup(e.to_string()))?;
        if !bound.iter().any(|b| b == v1) {
            continue;
        }
        for (file, value) in to_v1(s, settings).map_err(|e| HarnessError::Cgroup(e.to_string()))? {
            dir.write(&file, &value)?;
        }
    }
    Ok(())
}

/// Adds the counters of the `bound` controllers to `reading`.
pub fn read(bound: &[String], dir: &CgroupDir, reading: &mut CgroupReading) {
    for c in bound {
        match c.as_str() {
            "memory" => memory::Memory::read(dir, reading),
            "pids" => pids::Pids::read(dir, reading),
            "cpu" => cpu::Cpu::read(dir, reading),
            "cpuacct" => cpuacct::Cpuacct::read(dir, reading),
            "hugetlb" => hugetlb::Hugetlb::read(dir, reading),
            _ => {}
        }
    }
}

/// Freezes or thaws through freezer.state and waits until the kernel reports it done.
pub fn set_frozen(dir: &CgroupDir, frozen: bool) -> Result<(), HarnessError> {
    freezer::set_frozen(dir, frozen)
}

/// Whether the freezer reports the cgroup frozen.
pub fn is_frozen(dir: &CgroupDir) -> bool {
    freezer::is_frozen(dir)
}
