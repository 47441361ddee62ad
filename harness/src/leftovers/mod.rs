//! Crash-only recovery: what dead isoprobe processes left on the host, found by isoprobe's names
//! and removed. `isoprobe run`, every suite and every bench call [`recover_at_start`] first, so a
//! run killed at any moment leaves nothing after the next one; `isoprobe cleanup` calls `sweep`
//! with [`Scope::All`].
//!
//! Only objects isoprobe names are ever looked at: run directories `<tmp>/isoprobe-<pid>-<token>`
//! and bench directories `<tmp>/isoprobe-bench-<pid>-<token>`, mounts under them, loop devices
//! whose backing file lies in them, cgroups named `isoprobe-<token>-<case>` (a run's) and
//! `isoprobe-bench-<pid>-<token>` (a bench's), SysV IPC objects and POSIX message queues a run
//! wrote into its ledger ([`IpcLedger`]) before creating them; the NIS domainname, put back to
//! what a dead run recorded if it still shows an isoprobe token; and the namespaced sysctls a dead
//! run recorded (see [`crate::sysctl`]), each put back if it shows a value its probe may have
//! written.
//!
//! A run is dead when its pid no longer runs, or runs a process that started after the run's
//! directory was made (a recycled pid). What a live run owns is never touched: its directory, its
//! cgroups (by token), its IPC objects (by its ledger). [`Scope::All`] also removes what no visible
//! run owns: cgroups with no known token that are empty and older than a grace period, and
//! isoprobe-keyed IPC objects created before the oldest live run started (a run in another
//! temporary directory, or code that keeps no ledger, may have made them).
//!
//! It must never remove anything without the isoprobe name, and never follow a run directory's
//! contents across a mount point (every mount under it is detached first, and removal is refused
//! if one remains).

mod ipc;
mod ledger;
mod owners;
mod sweep;

pub use ledger::{IpcLedger, LEDGER};
pub(crate) use sweep::isoprobe_loop_devices;
pub use sweep::{Event, Kind, Outcome, Scope, Summary, Sweep, recover_at_start, sweep_with};
