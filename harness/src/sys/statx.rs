//! statx(2) for the one field std does not give: the id of the mount a path lies on
//! (`STATX_MNT_ID`, Linux 5.8), which tells whether a path is a mount point without reading and
//! parsing the whole mount table (and without taking the mount table's lock that every mount and
//! unmount on the machine holds).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The id of the mount `path` is on (symlinks not followed, no automount), or `None` when the
/// kernel does not report it (before Linux 5.8).
pub fn mount_id(path: &Path) -> io::Result<Option<u64>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: all-zero is a valid statx (plain integers), which statx(2) fills.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path that outlives the call, `buf` a valid, writable statx.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID,
            &mut buf,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((buf.stx_mask & libc::STATX_MNT_ID != 0).then_some(buf.stx_mnt_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_point_is_on_another_mount_than_its_parent() {
        // /proc is a mount point on every Linux system isoprobe runs on; /proc/self is not.
        let (proc, root) = (mount_id(Path::new("/proc")).unwrap(), mount_id(Path::new("/")).unwrap());
        let Some(proc) = proc else { return }; // a kernel before 5.8: nothing to compare
        assert_ne!(Some(proc), root);
        assert_eq!(mount_id(Path::new("/proc/self/status")).unwrap(), Some(proc));
        assert_eq!(mount_id(Path::new("/nonexistent-isoprobe")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
