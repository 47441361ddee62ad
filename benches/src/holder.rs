//! Holders: processes that keep namespaces (and cgroups) alive for the benchmarks to join, built
//! on the harness's primitives (a child blocked in read(2) on a pipe).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use isoprobe_harness::sys::primitives::{Action, Call, Child, MountPlan, SharedPage, Timed, spawn};

/// A child blocked in read(2) on a pipe: it holds whatever namespaces it was created with until
/// [`Holder::release`] (or drop) closes the pipe; then it exits and is reaped.
#[derive(Debug)]
pub struct Holder {
    child: Option<Child>,
    release: Option<OwnedFd>,
    _page: SharedPage,
}

/// A close-on-exec pipe (pipe2(2)): the holder's read end, and the parent's write end whose
/// close releases it.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

impl Holder {
    /// Starts a holder with `call` and `flags`, optionally in a cgroup (clone3 only). Returns it
    /// and the creating call's time.
    pub fn spawn(call: Call, flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<(Holder, Timed)> {
        let (r, w) = pipe()?;
        let page = SharedPage::new(0)?;
        let (child, t) = spawn(call, flags, cgroup, &Action::Hold { fd: r.as_fd() }, &page)?;
        drop(r);
        Ok((Holder { child: Some(child), release: Some(w), _page: page }, t))
    }

    /// Starts a holder in a new mount namespace with the mounts of `plan`, once they are made.
    pub fn with_mounts(plan: &MountPlan) -> io::Result<Holder> {
        let (r, w) = pipe()?;
        let page = SharedPage::new(0)?;
        let action = Action::MountTree { plan, hold_fd: r.as_fd() };
        let (child, _) = spawn(Call::Clone3, libc::CLONE_NEWNS as u64, None, &action, &page)?;
        drop(r);
        let holder = Holder { child: Some(child), release: Some(w), _page: page };
        // The mounts take a while (thousands of them): poll the page, bounded.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !holder._page.reported() {
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the mount holder did not report in 60 s"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        holder._page.outcome()?;
        Ok(holder)
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.as_ref().map(Child::pid).unwrap_or(0)
    }

    /// Opens `/proc/<pid>/ns/<name>`.
    pub fn ns_file(&self, name: &str) -> io::Result<File> {
        File::open(format!("/proc/{}/ns/{name}", self.pid()))
    }

    /// A pidfd for the holder (pidfd_open(2)).
    pub fn pidfd(&self) -> io::Result<OwnedFd> {
        isoprobe_probes::sys::pidfd_open(self.pid()).map_err(io::Error::from)
    }

    /// Lets the holder exit and reaps it.
    pub fn release(mut self) -> io::Result<()> {
        self.release_mut()
    }

    fn release_mut(&mut self) -> io::Result<()> {
        self.release = None;
        match self.child.take() {
            Some(c) => c.wait()?.check("hold"),
            None => Ok(()),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.release_mut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_exits_when_released() {
        let (h, _) = Holder::spawn(Call::Clone3, 0, None).unwrap();
        let pid = h.pid();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        let _pidfd = h.pidfd().unwrap();
        h.release().unwrap();
        // Reaped: the pid is gone (a recycled pid would be another process's, not our child's).
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(!status.contains(&format!("PPid:\t{}\n", std::process::id())), "{status}");
    }
}
