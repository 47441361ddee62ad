//! The descriptor table, and a child that holds it.

use std::os::fd::{AsFd, RawFd};
use std::sync::OnceLock;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
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

/// Where the harness keeps the descriptors it holds for the whole run (the host's sysctl entries
/// and their directories, some 600 per case reading at a time): at or above this number, apart
/// from the low numbers that a case's pipes and sockets take. A clone3 child takes only the
/// numbers below its own descriptors with it ([`crate::sys::clone`]: CLONE_FILES, then
/// close_range(2) with CLOSE_RANGE_UNSHARE), where a child with a copy of the whole table would
/// have every one of them duplicated at the clone and closed again at the exec: 70 µs more a spawn
/// with 1250 of them open than with 10 (posix_spawn of an empty static program, 2000 each, this
/// machine; issue 17).
///
/// Half the descriptor limit, at most 16384, after raising the soft limit to the hard one; `None`
/// (keep them where they open) when that leaves fewer than 1024 below it. Not higher: a child
/// that does copy the whole table (a fork, glibc's posix_spawn, a clone(2) case) walks every
/// slot up to the highest open descriptor.
///
/// The first call also grows the table to hold as many numbers again above the floor (one
/// descriptor duplicated at the top, closed at once; a table never shrinks): the kernel grows a
/// table that a child shares (a clone3 child before its close_range) only after an RCU grace
/// period (expand_files, fs/file.c), and the harness's first move of its sysctl descriptors up
/// here, in a run's first cases, waited 15 to 25 ms for one (issue 17). Call it before the first
/// child, as `HostSysctls::new` does.
pub fn long_lived_floor() -> Option<RawFd> {
    static FLOOR: OnceLock<Option<RawFd>> = OnceLock::new();
    *FLOOR.get_or_init(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        let floor = (soft / 2).min(1 << 14);
        if floor < 1024 {
            return None;
        }
        let top = (2 * floor).min(soft) - 1;
        let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty());
        // Only the table's size is wanted: a failure leaves the growth to the first descriptor
        // kept up here.
        let _ = root.and_then(|root| isoprobe_probes::sys::dup_at_or_above(root.as_fd(), top as RawFd));
        Some(floor as RawFd)
    })
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
