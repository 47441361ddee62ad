//! cgroups: the host's layout (v1, v2 or hybrid), the cgroups of a case across every hierarchy,
//! and the v1 and v2 backends behind one vocabulary (cgroup v2 file names, mapped to v1 files by
//! [`table`]).
//!
//! ```text
//!  layout ──► manager (CaseCgroups) ──► v1/<controller>.rs  (through table)
//!                  │                └──► v2/<controller>.rs
//!                  └──► private (v1 hierarchies mounted detached, for unmounted controllers)
//!  remove: the one thaw, kill and drain before every rmdir of an isoprobe cgroup
//! ```
//!
//! What this module must never do: touch, move into, or remove a cgroup it did not create (the
//! one exception: it reads and freezes the cgroup a container tool created for a case under a
//! name isoprobe gave it, see `CaseCgroups::adopt`, and leaves its removal to the tool's
//! teardown), or kill a process that is not in one of its own cgroups.

mod case;
pub mod dir;
pub mod iocost;
pub mod layout;
mod manager;
pub mod private;
pub mod remove;
pub mod table;
pub mod v1;
pub mod v2;

pub use case::CaseCgroup;
pub use layout::{CgroupLayout, Hierarchy, LayoutMode, Placement, Version, host_layout};
pub use manager::{CaseCgroups, CgroupRequest};
pub use table::Setting;
