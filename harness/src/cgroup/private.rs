//! v1 hierarchies for controllers that are mounted nowhere (net_cls and net_prio here), mounted
//! privately: fsopen(2)/fsconfig(2)/fsmount(2) give a *detached* mount, which lives in an anonymous
//! mount namespace of its own and appears in no process's mount table. isoprobe reaches it only
//! through the returned fd.
//!
//! A v1 hierarchy is kernel-global: it exists (and shows in /proc/cgroups with a non-zero id) for as
//! long as it is mounted *or* has child cgroups, including removed children the kernel has not
//! released yet. So the owner removes its cgroups first, waits until /proc/cgroups counts only the
//! root, then closes the mount, then waits for the hierarchy to go away. Dropping a
//! [`PrivateHierarchy`] does all of that.

use std::fs;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::layout::parse_proc_cgroups;
use crate::error::HarnessError;

/// How long to wait for the kernel to release a removed cgroup, and then the hierarchy. Both are
/// RCU-deferred work that takes milliseconds; the bound only guards against a hang.
const SETTLE: Duration = Duration::from_secs(3);

/// A privately mounted v1 hierarchy of one controller.
#[derive(Debug)]
pub struct PrivateHierarchy {
    pub controller: String,
    /// The root of the detached mount (shared with the cgroups made in it); None once unmounted.
    root: Option<Arc<OwnedFd>>,
    /// Whether the controller was bound to no v1 hierarchy before (so the hierarchy must go away).
    was_unbound: bool,
}

impl PrivateHierarchy {
    /// Mounts a v1 hierarchy of `controller`, detached.
    pub fn mount(controller: &str) -> Result<PrivateHierarchy, HarnessError> {
        let ctx = format!("mount a private v1 {controller} hierarchy");
        let was_unbound = proc_cgroups(controller).is_some_and(|(h, _)| h == 0);
        let root = crate::sys::mount_api::mount_cgroup_v1_detached(controller)
            .map_err(|e| HarnessError::Sys { what: ctx.clone(), source: e })?;
        Ok(PrivateHierarchy { controller: controller.to_owned(), root: Some(Arc::new(root)), was_unbound })
    }

    /// The root of the mount, for creating cgroups in it.
    pub fn root(&self) -> Arc<OwnedFd> {
        Arc::clone(self.root.as_ref().expect("mounted until dropped"))
    }
}

/// The /proc/cgroups line of `controller`: (hierarchy id, number of cgroups).
fn proc_cgroups(controller: &str) -> Option<(u32, u64)> {
    let text = fs::read_to_string("/proc/cgroups").ok()?;
    parse_proc_cgroups(&text).into_iter().find(|c| c.name == controller).map(|c| (c.hierarchy, c.num_cgroups))
}

fn wait_for(what: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + SETTLE;
    loop {
        if what() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for PrivateHierarchy {
    fn drop(&mut self) {
        // Removed children linger until released; unmounting before that leaves the hierarchy
        // alive with no mount (net/core: cgroup_kill_sb only kills a root without children).
        if !wait_for(|| proc_cgroups(&self.controller).is_some_and(|(_, n)| n <= 1)) {
            eprintln!(
                "isoprobe: the private {} hierarchy still counts child cgroups; unmounting anyway",
                self.controller
            );
        }
        if self.root.as_ref().is_some_and(|r| Arc::strong_count(r) > 1) {
            eprintln!("isoprobe: a cgroup in the private {} hierarchy outlives it", self.controller);
        }
        // Closing the last fd of a detached mount unmounts it.
        self.root = None;
        if self.was_unbound && !wait_for(|| proc_cgroups(&self.controller).is_some_and(|(h, _)| h == 0)) {
            eprintln!("isoprobe: the v1 {} hierarchy did not go away after its private unmount", self.controller);
        }
    }
}
