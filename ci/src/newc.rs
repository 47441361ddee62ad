//! A writer of cpio archives in the "newc" format, the one the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII header
//! (`070701` and 13 eight-digit hex fields), the NUL-terminated name padded to 4 bytes, the data
//! padded to 4 bytes; a `TRAILER!!!` entry ends the archive.
//!
//! Entries are built in memory and written in path order, so a directory always precedes what it
//! holds and the same inputs give the same bytes. Device nodes are written as entries, so building
//! an initramfs needs no privileges. This module must never read or write outside the archive.

use std::collections::BTreeMap;
use std::io::{self, Write};

const FILE: u32 = 0o100000;
const DIR: u32 = 0o040000;
const CHAR_DEV: u32 = 0o020000;
const SYMLINK: u32 = 0o120000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir { perm: u32 },
    File { perm: u32, data: Vec<u8> },
    CharDev { perm: u32, major: u32, minor: u32 },
    Symlink { target: String },
}

/// An archive being built; paths are relative to the archive's root, without a leading slash.
#[derive(Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum NewcError {
    #[error("invalid archive path {0:?}")]
    Path(String),
    #[error("{0} is already in the archive as something else")]
    Conflict(String),
}

fn normalise(path: &str) -> Result<String, NewcError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") || path.contains('\0') {
        return Err(NewcError::Path(path.to_owned()));
    }
    Ok(parts.join("/"))
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<(), NewcError> {
        let path = normalise(path)?;
        // Parents first, as directories (0755) unless already present as such.
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let parent = parts[..i].join("/");
            match self.entries.get(&parent) {
                None => {
                    self.entries.insert(parent, Entry::Dir { perm: 0o755 });
                }
                Some(Entry::Dir { .. }) => {}
                Some(_) => return Err(NewcError::Conflict(parent)),
            }
        }
        match (self.entries.get(&path), &entry) {
            (Some(Entry::Dir { .. }), Entry::Dir { .. }) | (None, _) => {
                self.entries.insert(path, entry);
                Ok(())
            }
            _ => Err(NewcError::Conflict(path)),
        }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), NewcError> {
        self.insert(path, Entry::Dir { perm })
    }

    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) -> Result<(), NewcError> {
        self.insert(path, Entry::File { perm, data })
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<(), NewcError> {
        self.insert(path, Entry::CharDev { perm, major, minor })
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), NewcError> {
        self.insert(path, Entry::Symlink { target: target.to_owned() })
    }

    /// Writes the archive, owned by root, with mtime 0.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        for (ino, (path, entry)) in (1u32..).zip(&self.entries) {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
                Entry::Dir { perm } => (DIR | perm, &[], (0, 0)),
                Entry::File { perm, data } => (FILE | perm, data, (0, 0)),
                Entry::CharDev { perm, major, minor } => (CHAR_DEV | perm, &[], (*major, *minor)),
                Entry::Symlink { target } => (SYMLINK | 0o777, target.as_bytes(), (0, 0)),
            };
            let nlink = if matches!(entry, Entry::Dir { .. }) { 2 } else { 1 };
            write_entry(w, ino, mode, nlink, path, data, rdev)?;
        }
        write_entry(w, 0, 0, 1, "TRAILER!!!", &[], (0, 0))
    }
}

fn pad(w: &mut impl Write, written: usize) -> io::Result<()> {
    w.write_all(&[0u8; 3][..(4 - written % 4) % 4])
}

fn write_entry(
    w: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    data: &[u8],
    (rdev_major, rdev_minor): (u32, u32),
) -> io::Result<()> {
    let size = u32::try_from(data.len()).map_err(|_| io::Error::other(format!("{name} is over 4 GiB")))?;
    let name_size = name.len() as u32 + 1;
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev_major, rdev_minor, name_size, 0];
    let mut header = String::from("070701");
    for f in fields {
        header.push_str(&format!("{f:08x}"));
    }
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w, header.len() + name_size as usize)?;
    w.write_all(data)?;
    pad(w, data.len())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::process::{Command, Stdio};

    use super::*;

    fn sample(with_device: bool) -> Archive {
        let mut a = Archive::new();
        a.file("/bin/init", 0o755, b"#!/bin/true\n".to_vec()).unwrap();
        a.file("isoprobe/plan.json", 0o644, b"{}".to_vec()).unwrap();
        a.dir("tmp", 0o1777).unwrap();
        if with_device {
            a.char_dev("dev/console", 0o600, 5, 1).unwrap();
        }
        a.symlink("sbin", "bin").unwrap();
        a
    }

    #[test]
    fn headers_and_padding_follow_the_format() {
        let mut out = Vec::new();
        sample(true).write(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        // The first entry is the implied parent `bin`, a directory.
        assert_eq!(&out[..6], b"070701");
        let mode = u32::from_str_radix(std::str::from_utf8(&out[14..22]).unwrap(), 16).unwrap();
        assert_eq!(mode, DIR | 0o755);
        assert_eq!(&out[110..114], b"bin\0");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("TRAILER!!!\0"));
        // Entries come in path order: a directory before what it holds.
        assert!(text.find("bin\0").unwrap() < text.find("bin/init\0").unwrap());
    }

    #[test]
    fn conflicting_and_escaping_paths_are_refused() {
        let mut a = sample(true);
        assert!(matches!(a.dir("bin/init", 0o755), Err(NewcError::Conflict(_))));
        assert!(matches!(a.file("bin/init/x", 0o644, vec![]), Err(NewcError::Conflict(_))));
        assert!(matches!(a.file("../etc/passwd", 0o644, vec![]), Err(NewcError::Path(_))));
        assert!(a.dir("bin", 0o755).is_ok(), "a directory may be declared twice");
    }

    /// GNU cpio from PATH. Without it the test is skipped with the reason (a newcomer's machine
    /// need not have it), unless `ISOPROBE_EXPECT` names `tool:cpio` (CI installs it and says so):
    /// then its absence fails the test.
    fn cpio_or_skip() -> Option<std::path::PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = std::env::split_paths(&path)
            .map(|d| d.join("cpio"))
            .find(|p| p.is_file() && nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok());
        let expected = std::env::var("ISOPROBE_EXPECT").unwrap_or_default();
        if found.is_none() {
            let reason = "needs tool:cpio: GNU cpio is not on PATH (Debian package cpio)";
            assert!(
                !expected.split(',').any(|r| r.trim() == "tool:cpio"),
                "ISOPROBE_EXPECT names tool:cpio, but {reason}"
            );
            eprintln!("skipped: {reason}");
        }
        found
    }

    /// GNU cpio, a real reader of the format, extracts what was written (the CI installs it).
    #[test]
    fn gnu_cpio_extracts_the_archive() {
        let Some(cpio) = cpio_or_skip() else { return };
        // Only root may create device nodes.
        let root = nix::unistd::geteuid().is_root();
        let mut out = Vec::new();
        sample(root).write(&mut out).unwrap();
        let dir = std::env::temp_dir().join(format!("newc-test-{}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        let _cleanup = RemoveOnDrop(dir.clone());
        let run = Command::new(&cpio)
            .args(["-i", "--make-directories", "--no-absolute-filenames", "--quiet"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = run.unwrap_or_else(|e| panic!("failed to run {}: {e}", cpio.display()));
        child.stdin.take().unwrap().write_all(&out).unwrap();
        let result = child.wait_with_output().unwrap();
        assert!(result.status.success(), "cpio: {}", String::from_utf8_lossy(&result.stderr));
        assert_eq!(fs::read(dir.join("bin/init")).unwrap(), b"#!/bin/true\n");
        assert_eq!(fs::metadata(dir.join("bin/init")).unwrap().permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read_link(dir.join("sbin")).unwrap().to_str(), Some("bin"));
        assert_eq!(fs::read(dir.join("isoprobe/plan.json")).unwrap(), b"{}");
        if root {
            let md = fs::metadata(dir.join("dev/console")).unwrap();
            assert!(md.file_type().is_char_device());
            assert_eq!((nix::sys::stat::major(md.rdev()), nix::sys::stat::minor(md.rdev())), (5, 1));
        }
    }

    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
