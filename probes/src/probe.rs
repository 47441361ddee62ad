//! The probe program: started inside a container, it finishes the container's setup (init), then
//! observes and reports. Three modes, all single-threaded fresh processes:
//!
//! - `observe` (default): read the hello on stdin, run the init plan, report facts, exit;
//! - `unshare`: unshare(2) the requested namespaces, let the harness write the id maps, fork, and
//!   exec the probe in `observe` mode in the new namespaces (the "unshare then fork" path);
//! - `join`: setns(2) into a running container's namespaces through `/proc/<pid>/ns` files or a
//!   pidfd, enter its root, fork, and exec the probe in `observe` mode (the lxc-attach path).

mod args;
mod burst;
mod cgroup_core;
mod cgroup_rules;
mod cgroup_threads;
mod channel;
mod error;
mod init;
mod interlock;
mod io_share;
mod limits;
mod modes;
mod mounts;
mod observe;
mod protect;
mod sysctls;

pub use args::{JoinVia, Mode, PROBE_NAME, multicall};
pub use init::LAUNCHER_TIME_ENV;
pub use modes::{main_with_args, sync_bytes};
