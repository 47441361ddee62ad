//! Writing an executable that is run while other threads of this process fork.
//!
//! execve(2) fails with ETXTBSY while any open file description has the file open for writing.
//! `O_CLOEXEC` does not protect against that: a child forked by another thread while the write
//! descriptor is open holds its copy until it execs or exits, and a harness child may run for
//! milliseconds (namespace and rootfs set-up) or for the whole case (one that never execs). CI saw
//! exactly that: a protocol test's probe failed at execve with ETXTBSY after its copy.
//!
//! So the file is written by a short-lived thread with a private descriptor table
//! (`unshare(CLONE_FILES)`): the write descriptor never enters the table that fork copies, and is
//! closed before the function returns.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to a new or truncated file `to` with mode 0755.
pub fn write_executable(to: &Path, bytes: &[u8]) -> io::Result<()> {
    with_private_fd_table(|| {
        fs::write(to, bytes)?;
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))
    })
}

/// Copies the file `from` to `to` and gives the copy mode 0755.
pub fn copy_executable(from: &Path, to: &Path) -> io::Result<()> {
    with_private_fd_table(|| copy_whole(from, to))
}

/// [`copy_executable`] on the calling thread.
fn copy_whole(from: &Path, to: &Path) -> io::Result<()> {
    fs::copy(from, to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))
}

/// Copies the part of the executable `from` the kernel loads to `to`, mode 0755: an ELF file's
/// bytes up to the end of the last of its segments, and its header without the section header
/// table (which lies past them). Anything else (a script, a 32-bit or big-endian ELF, an ELF whose
/// program headers are not what the format says) is copied whole.
///
/// The probe is the isoprobe executable itself, and what makes that some 40 MB (a test binary's
/// 120 to 160 MB) is debug information the kernel never maps: the loaded part is 8 MB (13 MB). Every
/// run copies the probe once and removes it at its end: 20 ms of the run's serial start for the
/// release build here, and the memory of the run's tmpfs meanwhile (issue 17). The probe's panics
/// still name their source line (the panic location is compiled in); a backtrace the probe prints
/// shows addresses without symbols.
pub fn copy_loaded_image(from: &Path, to: &Path) -> io::Result<()> {
    with_private_fd_table(|| {
        let mut src = fs::File::open(from)?;
        let Some(len) = elf::loaded_len(&mut src)? else {
            drop(src);
            return copy_whole(from, to);
        };
        let dst = fs::File::create(to)?;
        src.seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut (&mut src).take(len), &mut &dst)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ended after {copied} of the {len} bytes its segments span", from.display()),
            ));
        }
        elf::drop_section_headers(&dst)?;
        drop(dst);
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))
    })
}

/// The few fields of a 64-bit little-endian ELF file that say where its segments end (see
/// elf(5)).
mod elf {
    use super::*;

    const HEADER_LEN: usize = 64;
    const E_PHOFF: usize = 32;
    pub(super) const E_SHOFF: u64 = 40;
    const E_PHENTSIZE: usize = 54;
    const E_PHNUM: usize = 56;
    const E_SHNUM: u64 = 60;
    const E_SHSTRNDX: u64 = 62;
    /// Elf64_Phdr: p_offset at 8, p_filesz at 32.
    const PHDR_LEN: usize = 56;
    /// e_phnum's escape to a count in the first section header (not followed here).
    const PN_XNUM: u16 = 0xffff;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(v)
    }

    /// Where the last byte any program header (or the header table itself) covers ends, or
    /// `None` when `file` is not an ELF file of this shape or its tables are not inside it.
    pub(super) fn loaded_len(file: &mut fs::File) -> io::Result<Option<u64>> {
        let size = file.metadata()?.len();
        let mut header = [0u8; HEADER_LEN];
        if size < HEADER_LEN as u64 {
            return Ok(None);
        }
        file.read_exact_at(&mut header, 0)?;
        // ELFMAG, ELFCLASS64, ELFDATA2LSB.
        if header[..6] != [0x7f, b'E', b'L', b'F', 2, 1] {
            return Ok(None);
        }
        let (phoff, phentsize, phnum) =
            (u64_at(&header, E_PHOFF), u16_at(&header, E_PHENTSIZE) as usize, u16_at(&header, E_PHNUM));
        if phnum == 0 || phnum == PN_XNUM || phentsize < PHDR_LEN {
            return Ok(None);
        }
        let table_len = phentsize as u64 * u64::from(phnum);
        let Some(table_end) = phoff.checked_add(table_len).filter(|end| *end <= size) else { return Ok(None) };
        let mut table = vec![0u8; table_len as usize];
        file.read_exact_at(&mut table, phoff)?;
        let mut end = table_end.max(HEADER_LEN as u64);
        for ph in table.chunks_exact(phentsize) {
            match u64_at(ph, 8).checked_add(u64_at(ph, 32)) {
                Some(e) if e <= size => end = end.max(e),
                _ => return Ok(None),
            }
        }
        Ok(Some(end))
    }

    /// Zeroes e_shoff, e_shnum and e_shstrndx: the copy has no section header table.
    pub(super) fn drop_section_headers(file: &fs::File) -> io::Result<()> {
        file.write_all_at(&[0; 8], E_SHOFF)?;
        file.write_all_at(&[0; 2], E_SHNUM)?;
        file.write_all_at(&[0; 2], E_SHSTRNDX)
    }
}

/// Runs `f` on a thread whose descriptor table no other thread shares (and so no fork copies).
fn with_private_fd_table<T: Send>(f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FILES).map_err(io::Error::from)?;
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    /// Removed on drop, also when an assertion fails.
    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("isoprobe-exe-test-").tempdir().unwrap()
    }

    struct StopOnDrop<'a>(&'a AtomicBool);

    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    /// A thread forks children that hold every inherited descriptor for 20 ms and exit without
    /// exec, as a harness child that sets up a namespace does, while this thread writes fresh
    /// executables and runs each one at once. Without the private table most runs fail with
    /// ETXTBSY (checked: 9 to 17 of 20 in eight runs); with it none may.
    #[test]
    fn a_fresh_executable_runs_while_another_thread_forks() {
        let tmp = scratch();
        let dir = tmp.path();
        // The forks and runs happen on a thread whose descriptor table is its own and holds only
        // stdio: the children must not hold what the other tests of this process have open (a
        // host lock's socket that a child holds stays bound after its test released it).
        let (forks, result) = with_private_fd_table(|| {
            // Descriptors 3 and up of this thread's private table only (no other thread shares
            // it, and nothing on this thread holds one of them).
            crate::sys::fds::close_from(3).expect("close_range");
            Ok(fork_while_running_fresh_executables(dir))
        })
        .unwrap();
        assert!(forks > 0);
        assert!(result.is_empty(), "runs failed: {result:#?}");
    }

    /// Forks on one thread while this one writes and runs 20 executables; returns the number of
    /// forks and the runs that failed.
    fn fork_while_running_fresh_executables(dir: &Path) -> (usize, Vec<String>) {
        let stop = AtomicBool::new(false);
        let forks = AtomicUsize::new(0);
        let reap = |pid: nix::unistd::Pid| {
            // Reaps a child the forker forked, by its pid.
            assert!(nix::sys::wait::waitpid(pid, None).is_ok());
        };
        let failures = std::thread::scope(|s| {
            s.spawn(|| {
                // Should this thread fail, the writer stops waiting for it.
                let _stop = StopOnDrop(&stop);
                // Fork without pause; reap the oldest child by its pid once 50 are alive.
                let mut alive = std::collections::VecDeque::new();
                while !stop.load(Ordering::Relaxed) {
                    let pid = crate::sys::fds::fork_holding_fds(std::time::Duration::from_millis(20)).expect("fork");
                    forks.fetch_add(1, Ordering::Relaxed);
                    alive.push_back(pid);
                    if alive.len() > 50 {
                        reap(alive.pop_front().unwrap());
                    }
                }
                alive.into_iter().for_each(reap);
            });
            // Should this thread fail, the forker ends (and the scope with it).
            let stop_forking = StopOnDrop(&stop);
            // Let the forking start before the first write.
            while forks.load(Ordering::Relaxed) == 0 && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            // /bin/true with 4 MiB of zeros after it (the kernel loads only its segments): a write
            // that lasts milliseconds, so that forks do fall into it.
            let mut bytes = fs::read("/bin/true").unwrap();
            bytes.resize(bytes.len() + (4 << 20), 0);
            let source = dir.join("source");
            write_executable(&source, &bytes).unwrap();
            let mut failures = Vec::new();
            for i in 0..20 {
                let exe = dir.join(format!("true-{i}"));
                let r = if i % 2 == 0 { write_executable(&exe, &bytes) } else { copy_executable(&source, &exe) };
                r.unwrap();
                match std::process::Command::new(&exe).status() {
                    Ok(st) if st.success() => {}
                    other => failures.push(format!("{}: {other:?}", exe.display())),
                }
                fs::remove_file(&exe).unwrap();
            }
            drop(stop_forking);
            failures
        });
        (forks.load(Ordering::Relaxed), failures)
    }

    /// This test binary (debug information included) copied as the probe is: far smaller, and it
    /// still runs (libtest lists its tests, this one among them).
    #[test]
    fn the_loaded_image_of_an_executable_runs() {
        let tmp = scratch();
        let me = std::env::current_exe().unwrap();
        let copy = tmp.path().join("image");
        copy_loaded_image(&me, &copy).unwrap();
        let (full, loaded) = (fs::metadata(&me).unwrap().len(), fs::metadata(&copy).unwrap().len());
        let mode = fs::metadata(&copy).unwrap().permissions().mode() & 0o7777;
        let out = std::process::Command::new(&copy)
            .args(["--list", "--exact", "exe::tests::the_loaded_image_of_an_executable_runs"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(loaded < full, "{loaded} of {full} bytes");
        assert_eq!(mode, 0o755);
        assert!(out.status.success() && listed.contains("the_loaded_image_of_an_executable_runs"), "{out:?}");
        let header = fs::read(&copy).unwrap();
        assert_eq!(elf::u64_at(&header, elf::E_SHOFF as usize), 0, "a section header table past the end");
    }

    /// What is not a 64-bit little-endian ELF file with its tables inside it is copied whole.
    #[test]
    fn anything_else_is_copied_whole() {
        let tmp = scratch();
        let dir = tmp.path();
        let script = dir.join("script");
        fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        let mut truncated = fs::read("/bin/true").unwrap();
        truncated.truncate(80);
        let cut = dir.join("cut");
        fs::write(&cut, &truncated).unwrap();
        for source in [&script, &cut] {
            let copy = dir.join("copy");
            copy_loaded_image(source, &copy).unwrap();
            assert_eq!(fs::read(&copy).unwrap(), fs::read(source).unwrap(), "{}", source.display());
        }
        let runs = dir.join("runs");
        copy_loaded_image(&script, &runs).unwrap();
        assert!(std::process::Command::new(&runs).status().unwrap().success());
    }

    #[test]
    fn a_copy_is_executable_and_equal_to_its_source() {
        let tmp = scratch();
        let dir = tmp.path();
        let exe = dir.join("copy");
        copy_executable(Path::new("/bin/true"), &exe).unwrap();
        let same = fs::read(&exe).unwrap() == fs::read("/bin/true").unwrap();
        let mode = fs::metadata(&exe).unwrap().permissions().mode() & 0o7777;
        let st = std::process::Command::new(&exe).status().unwrap();
        let missing = copy_executable(&dir.join("no-such-file"), &dir.join("x")).unwrap_err();
        assert!(same);
        assert_eq!(mode, 0o755);
        assert!(st.success(), "{st:?} {:?}", st.signal());
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
