//! The new mount API: a filesystem configured and mounted detached, reachable only through the
//! descriptor it returns (nothing appears in any mount table).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// A cgroup v1 hierarchy of `controller`, mounted detached (nosuid, nodev, noexec): fsopen(2)
/// of `cgroup`, fsconfig(2) setting the controller's flag and creating the superblock,
/// fsmount(2). The mount's root directory comes back as a descriptor. See
/// [fsopen(2)](https://man7.org/linux/man-pages/man2/fsopen.2.html),
/// [fsconfig(2)](https://man7.org/linux/man-pages/man2/fsconfig.2.html),
/// [fsmount(2)](https://man7.org/linux/man-pages/man2/fsmount.2.html).
pub fn mount_cgroup_v1_detached(controller: &str) -> nix::Result<OwnedFd> {
    let key = CString::new(controller).map_err(|_| Errno::EINVAL)?;
    let fstype = c"cgroup";
    // SAFETY: fsopen takes a NUL-terminated string and flags; it returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    let fc = Errno::result(r)? as i32;
    // SAFETY: fsopen just returned this fd; nothing else owns it.
    let fc = unsafe { OwnedFd::from_raw_fd(fc) };
    let none = std::ptr::null::<u8>();
    // SAFETY: FSCONFIG_SET_FLAG with a NUL-terminated key and no value, on our fs context fd.
    let r =
        unsafe { libc::syscall(libc::SYS_fsconfig, fc.as_raw_fd(), libc::FSCONFIG_SET_FLAG, key.as_ptr(), none, 0) };
    Errno::result(r)?;
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fc.as_raw_fd(), libc::FSCONFIG_CMD_CREATE, none, none, 0) };
    Errno::result(r)?;
    let flags = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    // SAFETY: fsmount on our configured context; returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fc.as_raw_fd(), libc::FSMOUNT_CLOEXEC, flags) };
    let m = Errno::result(r)? as i32;
    // SAFETY: fsmount just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(m) })
}
