//! memory.oom.group on a parent (the kernel's tools/testing/selftests/cgroup/test_memcontrol.c,
//! test_memcg_oom_group_parent_events): the host's side of the case.
//!
//! The case's sibling is the isoprobe-owned parent: memory.max, no swap and memory.oom.group 1
//! (0 in the control). [`prepare`] enables memory for its children and makes two: [`CHILD`],
//! where the allocator and all members but one go, so the OOM is met by a task of the child
//! while the limit is the parent's, and [`OTHER`], where the remaining member waits (the
//! selftest keeps that process in the parent itself; here the parent enables memory for its
//! children, so by the no-internal-process rule it may hold none). The group kill must take the
//! parent's whole subtree, both children; the control loses the allocator alone. Every child goes
//! with the sibling in every outcome (`CaseCgroups::remove` drains and removes what is below
//! it), and nothing here touches a cgroup isoprobe did not make and name.

use std::fs;

use isoprobe_probes::wire::Exercise;

use crate::cgroup::CaseCgroups;
use crate::error::{Context, HarnessError};

/// The parent's child where the OOM is met (the allocator's).
pub const CHILD: &str = "isoprobe-oom-child";
/// The parent's other child, with one waiting member.
pub const OTHER: &str = "isoprobe-oom-other";

/// Makes the sibling's two children and fills their paths into `exercise`; anything but an
/// `oom-group-parent` exercise is left as it is.
pub fn prepare(set: &CaseCgroups, exercise: &mut Exercise) -> Result<(), HarnessError> {
    let Exercise::OomGroupParent { child_dir, other_dir, .. } = exercise else {
        return Ok(());
    };
    let sib = set
        .v2_paths()
        .and_then(|(_, s)| s)
        .ok_or_else(|| HarnessError::Cgroup("an oom-group-parent case has no cgroup2 sibling".into()))?;
    let control = sib.join("cgroup.subtree_control");
    fs::write(&control, "+memory").ctx(|| format!("write \"+memory\" to {}", control.display()))?;
    for (name, dir) in [(CHILD, child_dir), (OTHER, other_dir)] {
        let path = sib.join(name);
        fs::create_dir(&path).ctx(|| format!("create cgroup {}", path.display()))?;
        *dir = path.display().to_string();
    }
    Ok(())
}
