//! v1 pids: pids.max (the table); pids.current, and pids.events `max` counting refused forks.

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, keyed, number};

pub(crate) struct Pids;

impl Controller for Pids {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        reading.pids_current = dir.read("pids.current").ok().and_then(|t| number(&t));
        reading.pids_refused = dir.read("pids.events").ok().and_then(|t| keyed(&t, "max"));
    }
}
