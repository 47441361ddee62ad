//! v1 hugetlb: `hugetlb.<size>.limit_in_bytes` (the table) caps the huge pages the cgroup faults
//! in; a fault past it is answered with SIGBUS. The peak is max_usage_in_bytes of the 2 MB size.

use isoprobe_probes::wire::CgroupReading;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, number};

pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    fn read(dir: &CgroupDir, reading: &mut CgroupReading) {
        reading.hugetlb_peak = dir.read("hugetlb.2MB.max_usage_in_bytes").ok().and_then(|t| number(&t));
    }
}
