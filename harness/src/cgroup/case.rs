//! The plain per-case cgroup2 directory of the namespace matrix: created before a container starts
//! (CLONE_INTO_CGROUP needs one) and removed after it ends, in every outcome. Limit cases use
//! [`super::CaseCgroups`] instead. This module must never touch a cgroup it did not create.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::layout::Version;
use super::remove::Doomed;
use crate::error::{Context, HarnessError};

/// A cgroup2 directory isoprobe created for one case.
#[derive(Debug)]
pub struct CaseCgroup {
    path: PathBuf,
    dir: OwnedFd,
}

/// How long removal waits for the kernel to let go of exited tasks before it kills stragglers.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

impl CaseCgroup {
    /// Creates `<root>/<name>`; `name` must start with isoprobe's prefix.
    pub fn create(root: &Path, name: &str) -> Result<CaseCgroup, HarnessError> {
        assert!(name.starts_with(crate::names::PREFIX), "cgroup {name} lacks the isoprobe prefix");
        let path = root.join(name);
        fs::create_dir(&path).ctx(|| format!("create cgroup {}", path.display()))?;
        match open(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(dir) => Ok(CaseCgroup { path, dir }),
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(HarnessError::Sys { what: format!("open cgroup {}", path.display()), source: e })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory fd CLONE_INTO_CGROUP takes.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Removes the cgroup, draining it first (see [`super::remove`]): any process still inside
    /// is one of this case's (it was started in this cgroup).
    pub fn remove(&self) -> Result<(), HarnessError> {
        let (Some(parent), Some(name)) = (self.path.parent(), self.path.file_name().and_then(|n| n.to_str())) else {
            return Err(HarnessError::Cgroup(format!("cgroup path {} has no parent", self.path.display())));
        };
        let parent = open(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("open {}", parent.display()))?;
        let d = Doomed { parent: parent.as_fd(), name, shown: &self.path, version: Version::V2, v1_id: 0 };
        super::remove::drain_and_remove(d, DRAIN_WAIT)
    }
}

impl Drop for CaseCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("isoprobe: {e}");
        }
    }
}
