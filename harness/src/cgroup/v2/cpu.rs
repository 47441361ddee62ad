//! v2 cpu: cpu.max and cpu.weight as named. cpu.stat's usage_usec is core (every cgroup has it,
//! with or without the cpu controller); nr_periods, nr_throttled and throttled_usec come with
//! the controller. cpu.pressure and io.pressure are core files too (with PSI on): every cgroup2
//! cgroup has them, on a hybrid host as well, where PSI follows each task's cgroup2 cgroup.

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, keyed, psi_total};

pub(crate) struct Cpu;

impl Controller for Cpu {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        let some = |file: &str| dir.read(file).ok().and_then(|t| psi_total(&t, "some"));
        reading.cpu_pressure_some_us = some("cpu.pressure");
        reading.io_pressure_some_us = some("io.pressure");
        if let Ok(t) = dir.read("cpu.stat") {
            let us = |k: &str| keyed(&t, k).map(|v| v * 1000);
            reading.v2_usage_ns = us("usage_usec");
            // v1 cpuacct, where it is mounted, keeps nanoseconds: it wins.
            if reading.cpu_usage_ns.is_none() {
                reading.cpu_usage_ns = reading.v2_usage_ns;
            }
            if let Some(p) = keyed(&t, "nr_periods") {
                reading.cpu_periods = Some(p);
                reading.cpu_throttled = keyed(&t, "nr_throttled");
                reading.cpu_throttled_ns = us("throttled_usec");
            }
        }
    }
}
