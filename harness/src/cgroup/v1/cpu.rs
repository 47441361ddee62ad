//! v1 cpu: CFS bandwidth (cpu.cfs_quota_us, cpu.cfs_period_us) and cpu.shares through the table;
//! cpu.stat counts periods, throttled periods and throttled time (ns).

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, keyed};

pub(crate) struct Cpu;

impl Controller for Cpu {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        if let Ok(t) = dir.read("cpu.stat") {
            reading.cpu_periods = keyed(&t, "nr_periods");
            reading.cpu_throttled = keyed(&t, "nr_throttled");
            reading.cpu_throttled_ns = keyed(&t, "throttled_time");
        }
    }
}
