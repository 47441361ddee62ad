//! The init step's plan and the interlock's records: what the probe does in its new namespaces
//! before it observes, and the state changes it refused because a namespace was the harness's.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::tagged::tagged;
use super::{ClockKind, SysResult};
use crate::ns::NsKind;

/// A namespace, as stat(2) of `/proc/<pid>/ns/<kind>` identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct NsId {
    pub kind: NsKind,
    pub dev: u64,
    pub ino: u64,
}

impl fmt::Display for NsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:[{}]", self.kind, self.ino)
    }
}

/// A state-changing step the probe did not take because the namespace it would change is the
/// harness's (the interlock): `the probe's uts namespace is the harness's (uts:[4026531838]):
/// sethostname refused`. The checks of `kind` fail with this as their evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Refusal {
    pub kind: NsKind,
    /// What was not done (`sethostname`, `mount proc on /proc`, `pivot_root`).
    pub step: String,
    /// Why: the shared namespace's identity, or why it could not be read.
    pub because: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {} refused", self.kind, self.because, self.step)
    }
}

/// A state-changing observation (a domainname, a mount), made or refused by the interlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum Attempt {
    /// The probe's namespace is not the harness's: the step was taken, with this result.
    Made { result: SysResult },
    /// The probe's namespace is the harness's: the step was not taken. `probe` is the result of
    /// the same call made so that the kernel refuses it after its permission check and before
    /// any change (a name one byte too long, an invalid mount option): EINVAL means the step
    /// would have been permitted, EPERM that it would not.
    Refused { shared: NsId, probe: SysResult },
}
tagged!(Attempt, "attempt");

/// The steps that need a fresh process inside the namespaces, run by the probe before it observes.
///
/// The launcher decides them (a launcher that already did a step leaves it out); the probe records
/// what it did in [`Fact::Init`](super::Fact::Init).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct InitPlan {
    /// sethostname(2) (only ever asked for in a new uts namespace).
    pub hostname: Option<String>,
    /// unshare(CLONE_NEWTIME), write /proc/self/timens_offsets, re-exec into the new namespace. A
    /// launcher that made the namespace and wrote the offsets before the probe's exec leaves it out
    /// and says so in the probe's environment (see the probe's `init::LAUNCHER_TIME_ENV`).
    pub time_offsets: Option<TimeOffsets>,
    /// Make every mount private (`mount --make-rprivate /`) so nothing propagates either way; only
    /// ever asked for in a new mount namespace.
    pub private_mounts: bool,
    /// Mount a new procfs here (falling back to a recursive bind of the old /proc when the kernel
    /// refuses a new instance, e.g. a user namespace that does not own the pid namespace).
    pub mount_proc: Option<String>,
    /// Mount a new sysfs here (same fallback as `mount_proc`).
    pub mount_sys: Option<String>,
    pub root: RootPlan,
    /// unshare(CLONE_NEWCGROUP) in init, after the harness attached the probe to its cgroups (a
    /// cgroup namespace made by the clone would be rooted where the probe was *before* a v1
    /// attach through cgroup.procs; runtimes unshare it last for the same reason).
    #[serde(default)]
    pub unshare_cgroup: bool,
    /// A mount case's container side (with `private_mounts`): every mount private but the
    /// propagation mount point, which gets the plan's mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<super::PropagationPlan>,
}

/// How the probe changes its root before observing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
pub enum RootPlan {
    /// Keep the root it was started with.
    #[default]
    Keep,
    /// pivot_root(2) into `new_root` (a bind mount of itself), old root put under `put_old`
    /// (relative to the new root) and detached.
    PivotRoot { new_root: String, put_old: String },
    /// chroot(2) into `new_root`, nothing else.
    Chroot { new_root: String },
}
tagged!(RootPlan, "mode");

/// Time namespace clock offsets in nanoseconds (see time_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct TimeOffsets {
    pub monotonic_ns: i64,
    pub boottime_ns: i64,
}

impl TimeOffsets {
    pub fn is_zero(&self) -> bool {
        self.monotonic_ns == 0 && self.boottime_ns == 0
    }
    pub fn get(&self, clock: ClockKind) -> i64 {
        match clock {
            ClockKind::Monotonic => self.monotonic_ns,
            ClockKind::Boottime => self.boottime_ns,
        }
    }
    /// The text `timens_offsets` takes (time_namespaces(7)): `<clock> <secs> <nanosecs>` per line,
    /// nanoseconds in 0..1e9 even for a negative offset.
    pub fn to_proc_text(&self) -> String {
        let line =
            |name: &str, ns: i64| format!("{name} {} {}\n", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
        line("monotonic", self.monotonic_ns) + &line("boottime", self.boottime_ns)
    }
}
