//! The raw references the benchmarks compare their own measurement with: the same operation as a
//! loop of plain libc calls (fork(2), unshare(2), clone3(2), waitpid(2)), with no harness code, no
//! page and no criterion around it.

use std::ffi::c_int;
use std::io;
use std::os::fd::AsRawFd;

use crate::sys::clone::CloneArgs;

/// `n` times: fork(3); in the child clock_gettime, unshare(2), clock_gettime, write(2) the
/// difference to a pipe, `_exit`; in the parent read(2) it and waitpid(2). Nanoseconds per call.
/// `between` runs before each round, untimed (the benchmarks wait there for an idle netns
/// cleanup, as their own measurement does).
pub fn unshare_loop(flags: c_int, n: usize, mut between: impl FnMut() -> io::Result<()>) -> io::Result<Vec<u64>> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        between()?;
        // SAFETY: the child makes only async-signal-safe calls (clock_gettime, unshare,
        // write, _exit) on its stack, then exits; the parent reads 8 bytes into a u64 and
        // reaps its own child.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                let mut a = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                let mut b = a;
                // Fault in what the timed region touches first: after fork the first store
                // to the stack takes a copy-on-write fault, and the first call of unshare's
                // wrapper a fault on its text page (fork does not copy the page-table
                // entries of file mappings); either costs microseconds. unshare(0) is a no-op.
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut b);
                libc::unshare(0);
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut a);
                let rc = libc::unshare(flags);
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut b);
                let ns: u64 = if rc == 0 {
                    (b.tv_sec - a.tv_sec) as u64 * 1_000_000_000 + (b.tv_nsec - a.tv_nsec) as u64
                } else {
                    u64::MAX
                };
                libc::write(w.as_raw_fd(), (&ns as *const u64).cast(), 8);
                libc::_exit(0);
            }
            if pid < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut ns = 0u64;
            let got = libc::read(r.as_raw_fd(), (&mut ns as *mut u64).cast(), 8);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            if got != 8 || ns == u64::MAX {
                return Err(io::Error::other("the reference child's unshare failed"));
            }
            out.push(ns);
        }
    }
    Ok(out)
}

/// `n` times: clock_gettime, clone3(2) with `flags` whose child `_exit`s, waitpid(2),
/// clock_gettime. Nanoseconds per round; `between` as in [`unshare_loop`].
pub fn clone3_exit_wait_loop(
    flags: u64,
    n: usize,
    mut between: impl FnMut() -> io::Result<()>,
) -> io::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        between()?;
        let args = CloneArgs { flags, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
        // SAFETY: clone3 with fork semantics; the child only calls _exit. The parent reaps
        // its own child.
        unsafe {
            let mut a = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            let mut b = a;
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut a);
            let pid = libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>());
            if pid == 0 {
                libc::_exit(0);
            }
            if pid < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut b);
            out.push((b.tv_sec - a.tv_sec) as u64 * 1_000_000_000 + (b.tv_nsec - a.tv_nsec) as u64);
        }
    }
    Ok(out)
}
