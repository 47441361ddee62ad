//! The mount cases' part of the wire (issue 15): the propagation types of mount_namespaces(7), the
//! container side's plan for them, the host-side mount points a probe looks at, and the names of
//! the directories in them.

use serde::{Deserialize, Serialize};

/// A propagation type of a mount (mount_namespaces(7), Documentation/filesystems/sharedsubtree.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum PropMode {
    /// Mount events propagate to and from its peer group.
    Shared,
    /// Events propagate in from its master's peer group, never out.
    Slave,
    /// Nothing propagates either way.
    #[default]
    Private,
    /// Private, and a bind mount of it is refused.
    Unbindable,
}

impl PropMode {
    pub const ALL: [PropMode; 4] = [PropMode::Shared, PropMode::Slave, PropMode::Private, PropMode::Unbindable];

    pub fn name(self) -> &'static str {
        match self {
            PropMode::Shared => "shared",
            PropMode::Slave => "slave",
            PropMode::Private => "private",
            PropMode::Unbindable => "unbindable",
        }
    }

    /// The mount(2) flag that sets it (`MS_SHARED`, ...).
    pub fn ms_flag(self) -> libc::c_ulong {
        match self {
            PropMode::Shared => libc::MS_SHARED,
            PropMode::Slave => libc::MS_SLAVE,
            PropMode::Private => libc::MS_PRIVATE,
            PropMode::Unbindable => libc::MS_UNBINDABLE,
        }
    }
}

impl std::fmt::Display for PropMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The container side of a propagation case, for the probe's init in its new mount namespace:
/// every mount is made private but `mount` (the container's copy of the host's propagation mount
/// point, whose relation to the host's is what the case looks at), which is set to `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct PropagationPlan {
    pub mount: String,
    pub mode: PropMode,
}

/// The host's mount points of a mount case, as the probe sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct MountSentinels {
    /// The propagation mount point: the host set its side's mode on it before the probe started.
    /// The host mounts a tmpfs holding the marker token on its [`FROM_HOST`] directory when asked;
    /// the probe mounts its own on [`FROM_PROBE`].
    pub propagation: String,
    /// An empty directory to bind the propagation mount point onto (in the probe's own mount
    /// namespace).
    pub bind_target: String,
    /// A regular file: a bind of a directory onto it is refused with EINVAL when the source is
    /// unbindable and with ENOTDIR otherwise, both after the capability check and before any change
    /// (the interlock's form of the bind in the harness's mount namespace).
    pub bind_file: String,
    /// A tmpfs the host mounted ro,nosuid,nodev,noexec over a directory holding [`COVERED`].
    pub locked: String,
}

/// The directory of the propagation mount point the host mounts on.
pub const FROM_HOST: &str = "from-host";
/// The directory of the propagation mount point the probe mounts on.
pub const FROM_PROBE: &str = "from-probe";
/// The file under the host's locked mount, seen only once the mount is gone.
pub const COVERED: &str = "covered";
