//! v1 freezer: freezer.state takes FROZEN or THAWED and reads FREEZING until every task stopped.

use std::time::{Duration, Instant};

use crate::cgroup::dir::CgroupDir;
use crate::error::HarnessError;

/// How long freezing may take: tasks stop at their next return to user space or signal check,
/// which takes microseconds; the bound guards against a task stuck in the kernel.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

pub fn is_frozen(dir: &CgroupDir) -> bool {
    dir.read("freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
}

pub fn set_frozen(dir: &CgroupDir, frozen: bool) -> Result<(), HarnessError> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    dir.write("freezer.state", want)?;
    let deadline = Instant::now() + FREEZE_WAIT;
    loop {
        let state = dir.read("freezer.state")?;
        if state.trim() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                after: FREEZE_WAIT,
                during: format!("waiting for {} to be {want} (it is {})", dir.shown().display(), state.trim()),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
