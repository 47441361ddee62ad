//! v1 cpuset: a new cpuset starts with empty cpuset.cpus and cpuset.mems (unless the parent sets
//! cgroup.clone_children), and attaching a task to it fails with ENOSPC. So every new cgroup gets
//! its parent's values first; a case's own cpuset.cpus/mems (the table) then narrows them.

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::Controller;
use crate::cgroup::dir::{CgroupDir, read_at};
use crate::error::{Context, HarnessError};

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    fn prepare(dir: &CgroupDir) -> Result<(), HarnessError> {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if !dir.read(file)?.trim().is_empty() {
                continue;
            }
            // The parent is reached through the fd the cgroup was created in.
            let parent =
                openat(dir.parent_fd(), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                    .ctx(|| format!("open the parent of {}", dir.shown().display()))?;
            let value = read_at(std::os::fd::AsFd::as_fd(&parent), file)
                .ctx(|| format!("read {file} of the parent of {}", dir.shown().display()))?;
            dir.write(file, value.trim())?;
        }
        Ok(())
    }
}
