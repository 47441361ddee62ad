//! The sentinels: the host-side objects a probe looks for, one kind per namespace, and the names
//! it uses for objects of its own.

use serde::{Deserialize, Serialize};

/// The host-side objects the probe looks for, and the names it uses for objects of its own.
///
/// Paths are as the probe sees them after its root change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Sentinels {
    pub pid: PidSentinel,
    pub uts: UtsSentinel,
    pub mnt: MntSentinel,
    pub ipc: IpcSentinel,
    pub net: NetSentinel,
    pub user: UserSentinel,
}

/// A sleeping host process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct PidSentinel {
    /// Its pid in the harness's pid namespace.
    pub pid: i32,
    /// An argument of the sentinel's command line, unique to the run, so that another process
    /// with the same pid number (in another pid namespace) is not taken for the sentinel. (Its
    /// start time would not do: /proc shifts start times by the reader's time namespace offset.)
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct UtsSentinel {
    /// The NIS domain name the probe sets; the host checks whether it sees it, then restores its own.
    pub domainname_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct MntSentinel {
    /// A file on the host filesystem, by its host path, holding `marker_token`.
    pub host_marker: String,
    pub marker_token: String,
    /// An empty directory on which the host mounts a tmpfs holding `marker_token` when asked.
    pub sentinel_mount: String,
    /// An empty directory on which the probe mounts a tmpfs of its own.
    pub own_mount: String,
    /// A directory to chroot into during the chroot-escape attempt.
    pub escape_dir: String,
    /// The harness's root mount as mountinfo shows it (`maj:min root`, e.g. `254:1 /`): a
    /// mount of it left in the probe's table after pivot_root means the old root is reachable.
    #[serde(default)]
    pub host_root: String,
    /// A mount case's host mount points (propagation, locked mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<super::MountSentinels>,
}

/// SysV IPC keys and a POSIX message queue name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IpcNames {
    pub shm_key: i32,
    pub sem_key: i32,
    pub msg_key: i32,
    /// With its leading slash, as mq_open(3) takes it.
    pub mq_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IpcSentinel {
    /// Objects the host created before the probe started.
    pub host: IpcNames,
    /// Names for the objects the probe creates (and removes) itself.
    pub own: IpcNames,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct NetSentinel {
    /// An abstract unix socket the host listens on, without the leading NUL.
    pub abstract_name: String,
    /// A TCP port the host listens on at 127.0.0.1.
    pub tcp_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct UserSentinel {
    /// A directory the probe may create files in; the host stats them.
    pub scratch_dir: String,
}
