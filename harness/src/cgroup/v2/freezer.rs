//! v2 freezer (core, Linux 5.2): cgroup.freeze takes 1 or 0; cgroup.events `frozen` turns 1 once
//! every task stopped.

use std::time::{Duration, Instant};

use crate::cgroup::dir::{CgroupDir, keyed};
use crate::error::HarnessError;

/// Tasks stop at their next return to user space; the bound guards against one stuck in the kernel.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

pub fn is_frozen(dir: &CgroupDir) -> bool {
    dir.read("cgroup.events").ok().and_then(|t| keyed(&t, "frozen")) == Some(1)
}

pub fn set_frozen(dir: &CgroupDir, frozen: bool) -> Result<(), HarnessError> {
    set_frozen_within(dir, frozen, FREEZE_WAIT)
}

pub fn set_frozen_within(dir: &CgroupDir, frozen: bool, wait: Duration) -> Result<(), HarnessError> {
    dir.write("cgroup.freeze", if frozen { "1" } else { "0" })?;
    let deadline = Instant::now() + wait;
    while is_frozen(dir) != frozen {
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                after: wait,
                during: format!(
                    "waiting for cgroup.events of {} to say frozen {}",
                    dir.shown().display(),
                    u8::from(frozen)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
