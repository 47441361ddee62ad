//! clone3(2) and clone(2), and the child's side of the spawn pipeline up to execve(2).
//!
//! The harness is multi-threaded (libtest-mimic and criterion run work on many threads), so the
//! child between clone and exec may only make async-signal-safe system calls on data prepared
//! before the clone: no allocation, no locks, no Rust std I/O. [`ExecImage`] holds everything the
//! child touches, built in the parent; `child_after_clone` is the whole child side.

use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use isoprobe_probes::probe::sync_bytes;

/// `struct clone_args` of linux/sched.h, CLONE_ARGS_SIZE_VER2 (88 bytes, Linux 5.7).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct CloneArgs {
    pub(crate) flags: u64,
    pub(crate) pidfd: u64,
    pub(crate) child_tid: u64,
    pub(crate) parent_tid: u64,
    pub(crate) exit_signal: u64,
    pub(crate) stack: u64,
    pub(crate) stack_size: u64,
    pub(crate) tls: u64,
    pub(crate) set_tid: u64,
    pub(crate) set_tid_size: u64,
    pub(crate) cgroup: u64,
}

/// CLONE_PIDFD (Linux 5.2).
const CLONE_PIDFD: u64 = 0x1000;
/// CLONE_INTO_CGROUP (Linux 5.7, clone3 only).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Which system call creates the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneCall {
    /// clone3(2); falls back to clone(2) when the kernel answers ENOSYS (before Linux 5.3).
    Clone3,
    /// clone(2) (its flags word cannot carry CLONE_NEWTIME or CLONE_INTO_CGROUP).
    Clone,
}

/// What the child does between clone and exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildHandshake {
    /// Wait for [`sync_bytes::GO`] on the sync socket (the parent writes the id maps first), then
    /// exec. The sync socket is close-on-exec, so EOF tells the parent the exec succeeded.
    /// `become_root`: in a new user namespace, switch to uid/gid 0 of it before the exec, so the
    /// probe keeps its capabilities across execve (the kernel grants them on exec only to the
    /// namespace's root).
    GoThenExec { become_root: bool },
    /// Exec at once with the sync socket as fd 3 (the exec'd probe speaks on it).
    ExecWithSyncFd3,
}

/// Everything the child needs, prepared in the parent so the child never allocates.
#[derive(Debug)]
pub struct ExecImage {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
}

// SAFETY: the raw pointers point into the CStrings owned by the same struct, which are never
// mutated after construction; sharing them across threads is as safe as sharing the CStrings.
unsafe impl Send for ExecImage {}
// SAFETY: as above; nothing is mutated through a shared reference.
unsafe impl Sync for ExecImage {}

impl ExecImage {
    pub fn new(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> ExecImage {
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        ExecImage { path, _argv: argv, argv_ptrs, _envp: envp, envp_ptrs }
    }
}

/// The child's ends of its stdio pipes and of the sync socket.
#[derive(Debug)]
pub struct ChildFds<'a> {
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    pub sync: BorrowedFd<'a>,
}

/// A created child: its pid and a pidfd for it.
#[derive(Debug)]
pub struct Cloned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// Which call created it (clone3 may have fallen back to clone).
    pub call: CloneCall,
}

/// Creates the child with `flags` (CLONE_NEW* and CLONE_INTO_CGROUP) and runs
/// `child_after_clone` in it. Returns in the parent only.
pub fn spawn(
    call: CloneCall,
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    image: &ExecImage,
    fds: &ChildFds<'_>,
    handshake: ChildHandshake,
) -> nix::Result<Cloned> {
    let mut flags = flags | CLONE_PIDFD;
    if cgroup.is_some() {
        flags |= CLONE_INTO_CGROUP;
    }
    if call == CloneCall::Clone3 {
        let mut pidfd: RawFd = -1;
        let args = CloneArgs {
            flags,
            pidfd: &mut pidfd as *mut RawFd as u64,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup.map(|c| c.as_raw_fd() as u64).unwrap_or(0),
            ..Default::default()
        };
        // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM the child
        // gets a copy of this address space (fork semantics), so the stack pointer 0 means "the
        // same stack, copied". The child never returns from `child_after_clone`.
        let ret =
            unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
        match Errno::result(ret) {
            Ok(0) => child_after_clone(image, fds, handshake),
            Ok(pid) => {
                // SAFETY: the kernel stored a new pidfd that nothing else owns.
                let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
                return Ok(Cloned { pid: Pid::from_raw(pid as i32), pidfd, call });
            }
            Err(Errno::ENOSYS) => {} // before Linux 5.3: fall through to clone(2)
            Err(e) => return Err(e),
        }
    }
    if flags & (CLONE_INTO_CGROUP | isoprobe_probes::ns::CLONE_NEWTIME as u64) != 0 {
        // clone(2) has no cgroup argument, and CLONE_NEWTIME shares its bit with the exit signal.
        return Err(Errno::EINVAL);
    }
    let mut pidfd: RawFd = -1;
    // SAFETY: x86_64 clone(flags, stack, parent_tid, child_tid, tls); stack 0 means fork
    // semantics (a copy of the current stack); with CLONE_PIDFD the pidfd is written through
    // parent_tid, which points at a live RawFd. The child never returns from
    // `child_after_clone`.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0usize, &mut pidfd as *mut RawFd, 0usize, 0usize)
    };
    match Errno::result(ret)? {
        0 => child_after_clone(image, fds, handshake),
        pid => {
            // SAFETY: the kernel stored a new pidfd that nothing else owns.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Cloned { pid: Pid::from_raw(pid as i32), pidfd, call: CloneCall::Clone })
        }
    }
}

/// The child between clone and exec: only async-signal-safe system calls on prepared data.
///
/// On failure it writes `b'E'` and the errno (native endian) on the sync socket and exits 127.
fn child_after_clone(image: &ExecImage, fds: &ChildFds<'_>, handshake: ChildHandshake) -> ! {
    let sync = fds.sync.as_raw_fd();
    let fail = |step: u8| -> ! {
        let errno = Errno::last_raw();
        let e = errno.to_ne_bytes();
        let msg = [b'E', step, e[0], e[1], e[2], e[3]];
        // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` lives on this stack.
        unsafe {
            libc::write(sync, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    // SAFETY: prctl, dup2, fcntl, read and execve are async-signal-safe system calls; every
    // pointer passed points into `image` or onto this stack, both valid in this copy of the
    // parent's address space.
    unsafe {
        // Die with the thread that created us: a harness that panics or is killed takes its
        // containers with it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(b'p');
        }
        for (from, to) in [(fds.stdin.as_raw_fd(), 0), (fds.stdout.as_raw_fd(), 1), (fds.stderr.as_raw_fd(), 2)] {
            if libc::dup2(from, to) < 0 {
                fail(b'd');
            }
        }
        match handshake {
            ChildHandshake::GoThenExec { become_root } => {
                let mut b = 0u8;
                let n = libc::read(sync, (&mut b as *mut u8).cast(), 1);
                if n != 1 || b != sync_bytes::GO {
                    libc::_exit(126);
                }
                if become_root {
                    // Raw system calls: glibc's setresuid would try to signal threads that only
                    // exist in the parent. setgroups fails where setgroups is denied (an
                    // unprivileged map), which leaves no supplementary groups to drop anyway.
                    libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>());
                    if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0 {
                        fail(b'g');
                    }
                    if libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0 {
                        fail(b'u');
                    }
                }
            }
            ChildHandshake::ExecWithSyncFd3 => {
                // dup2 onto itself would keep FD_CLOEXEC set; clear it explicitly then.
                let ok = if sync == 3 { libc::fcntl(3, libc::F_SETFD, 0) >= 0 } else { libc::dup2(sync, 3) >= 0 };
                if !ok {
                    fail(b'3');
                }
            }
        }
        libc::execve(image.path.as_ptr(), image.argv_ptrs.as_ptr(), image.envp_ptrs.as_ptr());
        fail(b'x')
    }
}

/// Decodes the failure report of `child_after_clone`: which step failed and the errno.
pub fn decode_child_failure(msg: &[u8]) -> Option<(&'static str, Errno)> {
    if msg.len() != 6 || msg[0] != b'E' {
        return None;
    }
    let step = match msg[1] {
        b'p' => "prctl(PR_SET_PDEATHSIG)",
        b'd' => "dup2 of stdio",
        b'3' => "moving the sync socket to fd 3",
        b'g' => "setresgid(0) in the new user namespace",
        b'u' => "setresuid(0) in the new user namespace",
        b'x' => "execve of the probe",
        _ => "an unknown step",
    };
    Some((step, Errno::from_raw(i32::from_ne_bytes([msg[2], msg[3], msg[4], msg[5]]))))
}
