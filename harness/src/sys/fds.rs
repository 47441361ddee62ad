//! The descriptor table, and a child that holds it.

use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::Pid;

/// close_range(2) of every descriptor from `first` up, in the calling thread's descriptor table.
/// Call it only where no descriptor of that range is in use (a thread that unshared its table,
/// a child before exec). See [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html).
pub fn close_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range takes integers; closing descriptors nothing on this thread uses cannot
    // break memory safety (an OwnedFd still naming one would later close a reused number, which
    // is why callers must own the whole range).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    Errno::result(r).map(drop)
}

/// fork(2) of a child that holds every descriptor it inherited for `hold`, then exits 0: what a
/// child of a multi-threaded program does between its fork and its exec, for tests of descriptor
/// leaks. The child makes only async-signal-safe calls (nanosleep(2), _exit(2)), so this is
/// sound from any thread of a multi-threaded process. The caller reaps it. See
/// [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html).
pub fn fork_holding_fds(hold: Duration) -> nix::Result<Pid> {
    let t = libc::timespec { tv_sec: hold.as_secs() as libc::time_t, tv_nsec: hold.subsec_nanos() as libc::c_long };
    // SAFETY: the child calls only async-signal-safe functions (nanosleep, _exit) on data
    // prepared before the fork (`t` on this stack), and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the forked child; `t` lives on this stack, and _exit never returns.
        unsafe {
            libc::nanosleep(&t, std::ptr::null_mut());
            libc::_exit(0)
        }
    }
    Errno::result(pid).map(Pid::from_raw)
}
