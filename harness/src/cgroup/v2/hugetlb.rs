//! v2 hugetlb: `hugetlb.<size>.max` as named; cgroup2 keeps no peak, so the reading is the current
//! usage of the 2MB size (hugetlb.2MB.current), taken while the pages are still mapped.

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, number};

pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        reading.hugetlb_peak = dir.read("hugetlb.2MB.current").ok().and_then(|t| number(&t));
    }
}
