//! Small kernel text files (procfs, sysfs, cgroupfs, a marker a few bytes long) read in as few
//! system calls as the kernel allows: open, one read into a buffer sized for such files, the read
//! that finds the end, close.
//!
//! `std::fs::read_to_string` is made for regular files: it asks for the size first (statx, then
//! lseek) and, as procfs and sysfs report a size of 0, starts with 32-byte reads and doubles from
//! there. A 2 KiB /proc/self/mountinfo took 11 system calls that way, 4 here; each side of a case
//! reads a dozen such files, and every read of a seq_file walks its records again from the start.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;

/// What one read asks for first: a page, which holds every file this is for but a long
/// mountinfo or a big cgroup.procs (the buffer then doubles).
const FIRST_READ: usize = 4096;

/// Reads `path` (relative to the working directory, or absolute) whole.
pub fn read(path: impl AsRef<Path>) -> io::Result<String> {
    read_fd(&open(path.as_ref(), OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY, Mode::empty())?)
}

/// Reads `path` relative to the directory `dir` whole.
pub fn read_at(dir: impl AsFd, path: impl AsRef<Path>) -> io::Result<String> {
    read_fd(&openat(dir, path.as_ref(), OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY, Mode::empty())?)
}

/// Reads an open file from its current offset to its end.
pub fn read_fd(fd: &OwnedFd) -> io::Result<String> {
    let mut buf = vec![0u8; FIRST_READ];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match nix::unistd::read(fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_procfs_files_whole_and_matches_std() {
        // All report a size of 0. mountinfo is a seq_file that other tests' mounts may change
        // between two reads, so only the others are compared with std's reading.
        for path in ["/proc/self/mountinfo", "/proc/self/limits", "/proc/version"] {
            let ours = read(path).unwrap();
            assert!(!ours.is_empty(), "{path} read empty");
            if path != "/proc/self/mountinfo" {
                assert_eq!(ours, std::fs::read_to_string(path).unwrap(), "{path}");
            }
        }
    }

    #[test]
    fn grows_past_the_first_read_and_refuses_what_is_not_utf8() {
        // Not an isoprobe-named directory: a concurrent run's leftover sweep must not see it.
        let dir = std::env::temp_dir().join(format!("text-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long: String = (0..3 * FIRST_READ + 17).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        std::fs::write(dir.join("long"), &long).unwrap();
        std::fs::write(dir.join("binary"), [0xff, 0xfe, 0x00]).unwrap();
        let d = open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let got = read_at(&d, "long");
        let bad = read_at(&d, "binary").map_err(|e| e.kind());
        let missing = read_at(&d, "missing").map_err(|e| e.kind());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.unwrap(), long);
        assert_eq!(bad, Err(io::ErrorKind::InvalidData));
        assert_eq!(missing, Err(io::ErrorKind::NotFound));
    }
}
