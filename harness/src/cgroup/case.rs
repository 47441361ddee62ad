//! The plain per-case cgroup2 directory of the namespace matrix: created before a container starts
//! (CLONE_INTO_CGROUP needs one) and removed after it ends, in every outcome. Limit cases use
//! [`super::CaseCgroups`] instead. This module must never touch a cgroup it did not create.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::error::{Context, HarnessError};
use crate::mounts::mounts;

/// Where cgroup2 is mounted, if it is and this process may create cgroups there.
pub fn writable_cgroup2_root() -> Option<PathBuf> {
    let root = mounts().ok()?.into_iter().find(|m| m.fs_type == "cgroup2")?.mount_point;
    nix::unistd::access(&root, nix::unistd::AccessFlags::W_OK).ok()?;
    Some(root)
}

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

    /// Removes the cgroup, draining it first: tasks that exited may linger for a moment, and any
    /// process still inside is one of this case's (it was started in this cgroup) and is killed
    /// through cgroup.kill.
    pub fn remove(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + DRAIN_WAIT;
        let mut killed = false;
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) => {
                    if Instant::now() >= deadline {
                        if killed {
                            return Err(HarnessError::Io {
                                what: format!("remove cgroup {} (still busy after cgroup.kill)", self.path.display()),
                                source: e,
                            });
                        }
                        fs::write(self.path.join("cgroup.kill"), "1")
                            .ctx(|| format!("kill the processes left in {}", self.path.display()))?;
                        killed = true;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    return Err(HarnessError::Io { what: format!("remove cgroup {}", self.path.display()), source: e });
                }
            }
        }
    }
}

impl Drop for CaseCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("isoprobe: {e}");
        }
    }
}
