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
use std::io;
use std::os::unix::fs::PermissionsExt;
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
    with_private_fd_table(|| {
        fs::copy(from, to)?;
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))
    })
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
