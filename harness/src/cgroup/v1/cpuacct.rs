//! v1 cpuacct: cpuacct.usage, the CPU time of every task in the cgroup in nanoseconds (the sum of
//! their scheduler runtimes).

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, number};

pub(crate) struct Cpuacct;

impl Controller for Cpuacct {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        reading.cpu_usage_ns = dir.read("cpuacct.usage").ok().and_then(|t| number(&t));
    }
}
