//! v1 memory: limit through memory.limit_in_bytes (the table); the peak is the page counter's
//! watermark (memory.max_usage_in_bytes) and OOM kills are counted in memory.oom_control.

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, keyed, number};

pub(crate) struct Memory;

impl Controller for Memory {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        reading.memory_peak = dir.read("memory.max_usage_in_bytes").ok().and_then(|t| number(&t));
        reading.memory_oom_kills = dir.read("memory.oom_control").ok().and_then(|t| keyed(&t, "oom_kill"));
    }
}
