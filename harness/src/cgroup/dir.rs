//! One cgroup directory isoprobe created, reached through directory fds only: the same code then
//! serves hierarchies mounted on the host and those mounted privately (which have no path in the
//! harness's mount namespace).
//!
//! A [`CgroupDir`] is removed only by its owner (see `manager`), and only after it is drained.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::{Context, HarnessError};

/// A created cgroup directory.
#[derive(Debug)]
pub struct CgroupDir {
    parent: Arc<OwnedFd>,
    name: String,
    fd: OwnedFd,
    /// Where it is, for messages (a private hierarchy shows as `<controller>:(private)/<name>`).
    shown: PathBuf,
}

impl CgroupDir {
    /// mkdirat(2) `name` in `parent` and opens it. `name` must carry isoprobe's prefix.
    pub fn create(parent: Arc<OwnedFd>, parent_shown: &Path, name: &str) -> Result<CgroupDir, HarnessError> {
        assert!(name.starts_with(crate::names::PREFIX), "cgroup {name} lacks the isoprobe prefix");
        assert!(!name.contains('/'), "cgroup name {name} is not a single path component");
        let shown = parent_shown.join(name);
        mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755))
            .ctx(|| format!("create cgroup {}", shown.display()))?;
        match openat(parent.as_fd(), name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => Ok(CgroupDir { parent, name: name.to_owned(), fd, shown }),
            Err(e) => {
                let _ = unlinkat(parent.as_fd(), name, UnlinkatFlags::RemoveDir);
                Err(HarnessError::Sys { what: format!("open cgroup {}", shown.display()), source: e })
            }
        }
    }

    /// Opens the existing cgroup `name` in `parent`: one a container tool created for a case
    /// (under a name isoprobe gave it). Its owner is the tool; see `manager` for who removes it.
    pub fn open(parent: Arc<OwnedFd>, parent_shown: &Path, name: &str) -> Result<CgroupDir, HarnessError> {
        assert!(name.starts_with(crate::names::PREFIX), "cgroup {name} lacks the isoprobe prefix");
        let shown = parent_shown.join(name);
        let fd = openat(parent.as_fd(), name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("open cgroup {}", shown.display()))?;
        Ok(CgroupDir { parent, name: name.to_owned(), fd, shown })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn shown(&self) -> &Path {
        &self.shown
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory this cgroup was created in.
    pub fn parent_fd(&self) -> BorrowedFd<'_> {
        self.parent.as_fd()
    }

    /// Writes `value` to one control file in a single write(2), as the kernel wants.
    pub fn write(&self, file: &str, value: &str) -> Result<(), HarnessError> {
        let what = || format!("write {value:?} to {}", self.shown.join(file).display());
        let fd = openat(self.fd.as_fd(), file, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx(what)?;
        File::from(fd).write_all(value.as_bytes()).ctx(what)
    }

    pub fn read(&self, file: &str) -> Result<String, HarnessError> {
        read_at(self.fd.as_fd(), file).ctx(|| format!("read {}", self.shown.join(file).display()))
    }

    /// Whether the control file exists.
    pub fn has(&self, file: &str) -> bool {
        nix::sys::stat::fstatat(self.fd.as_fd(), file, nix::fcntl::AtFlags::empty()).is_ok()
    }

    /// The pids in cgroup.procs (in the harness's pid namespace).
    pub fn procs(&self) -> Result<Vec<i32>, HarnessError> {
        Ok(self.read("cgroup.procs")?.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// rmdir(2); fails with EBUSY while tasks are inside.
    pub fn rmdir(&self) -> nix::Result<()> {
        match unlinkat(self.parent.as_fd(), self.name.as_str(), UnlinkatFlags::RemoveDir) {
            Err(nix::errno::Errno::ENOENT) => Ok(()),
            r => r,
        }
    }
}

/// Reads a file relative to a directory fd.
pub fn read_at(dir: BorrowedFd<'_>, file: &str) -> std::io::Result<String> {
    isoprobe_probes::text::read_at(dir, file)
}

/// The number after `key` in a flat-keyed file (`key value` per line: memory.events, cpu.stat).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == key).then(|| w.next()?.parse().ok()).flatten()
    })
}

/// A single number (memory.peak, pids.current); `max` reads as None.
/// The `total=` of the `some` or `full` line of a PSI file
/// (`some avg10=0.00 avg60=0.00 avg300=0.00 total=1234`), microseconds.
pub fn psi_total(text: &str, line: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(line))?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("total="))?
        .parse()
        .ok()
}

pub fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_parse() {
        let t = "usage_usec 120\nnr_periods 7\nnr_throttled 5\n";
        assert_eq!(keyed(t, "nr_throttled"), Some(5));
        assert_eq!(keyed(t, "missing"), None);
        assert_eq!(number("max\n"), None);
        assert_eq!(number("42\n"), Some(42));
    }
}
