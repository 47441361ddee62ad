//! v2 memory: memory.max and memory.swap.max as named; memory.peak (Linux 5.19) is the page
//! counter's watermark and memory.events `oom_kill` counts OOM kills in the cgroup; the swap
//! counter's watermark memory.swap.peak (Linux 6.5) and memory.swap.events `max`, the swap-outs
//! refused at memory.swap.max.

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, keyed, number};

pub(crate) struct Memory;

impl Controller for Memory {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        reading.memory_peak = dir.read("memory.peak").ok().and_then(|t| number(&t));
        reading.memory_oom_kills = dir.read("memory.events").ok().and_then(|t| keyed(&t, "oom_kill"));
        reading.memory_swap_peak = dir.read("memory.swap.peak").ok().and_then(|t| number(&t));
        reading.memory_swap_max_events = dir.read("memory.swap.events").ok().and_then(|t| keyed(&t, "max"));
    }
}
