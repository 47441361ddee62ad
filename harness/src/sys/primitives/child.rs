//! The benchmark child: what it does between clone and `_exit` ([`Action`], only
//! async-signal-safe system calls on data prepared before the clone) and how it is created and
//! reaped ([`spawn`], [`spawn_and_wait`]: fork(2), vfork through clone(2), clone(2), clone3(2);
//! wait4(2)), with the timed operations the benchmarks build on (unshare(2), setns(2), mount(2)
//! in a fresh child).

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::page::{SLOT_ERRNO, SLOT_STATUS, SLOT_STEP, STATUS_FAILED, STATUS_OK, SharedPage};
use super::{Timed, monotonic_ns, thread_cpu_ns};
use crate::sys::clone::{CLONE_INTO_CGROUP, CloneArgs};

// ---------------------------------------------------------------------------------------------
// What the child does.

/// Everything an exec needs, prepared before the clone.
#[derive(Debug)]
pub struct ExecArgs {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into CStrings owned by the same struct and never mutated.
unsafe impl Send for ExecArgs {}
// SAFETY: as above.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    /// `path` with `argv` and an empty environment.
    pub fn new(path: CString, argv: Vec<CString>) -> ExecArgs {
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        ExecArgs { path, _argv: argv, argv_ptrs, envp_ptrs: vec![std::ptr::null()] }
    }
}

/// The mounts a [`Action::MountTree`] child makes in its new mount namespace: a tmpfs on `base`,
/// then one bind mount of `base` on each of `dirs` (subdirectories it creates first).
#[derive(Debug)]
pub struct MountPlan {
    base: CString,
    dirs: Vec<CString>,
}

impl MountPlan {
    /// `base` must be an existing, empty directory; `count` bind mounts are made under it.
    pub fn new(base: &std::path::Path, count: usize) -> io::Result<MountPlan> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &std::path::Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other(format!("NUL in {}", p.display())))
        };
        let dirs = (0..count).map(|i| c(&base.join(format!("m{i}")))).collect::<io::Result<_>>()?;
        Ok(MountPlan { base: c(base)?, dirs })
    }
}

/// What a child does between clone and `_exit`. Everything it refers to was prepared before the
/// clone; the child reports through the [`SharedPage`] given to [`spawn`].
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// `_exit(0)` at once.
    Exit,
    /// Store CLOCK_MONOTONIC in raw result slot 0, then `_exit(0)`: the start of "exit to reap".
    StampExit,
    /// Close every other fd, then block until `fd` reads end of file (the parent dropped its
    /// end), then `_exit(0)`: a process that holds its namespaces for others to join.
    Hold { fd: BorrowedFd<'a> },
    /// unshare(`flags`) `untimed + timed` times in a row, timing only the last `timed` calls.
    Unshare { flags: u64, untimed: u32, timed: u32 },
    /// setns(fd, nstype) for every entry in order, all timed as one call.
    Setns { fds: &'a [(BorrowedFd<'a>, c_int)] },
    /// setns(fd, nstype) (untimed), then unshare(`flags`) timed.
    SetnsThenUnshare { fd: BorrowedFd<'a>, nstype: c_int, flags: u64 },
    /// execve (no report on success; the parent learns the outcome from the exit status).
    Exec(&'a ExecArgs),
    /// In a new mount namespace (the clone's CLONE_NEWNS): make every mount private, make the
    /// mounts of the plan, report, then hold like [`Action::Hold`].
    MountTree { plan: &'a MountPlan, hold_fd: BorrowedFd<'a> },
}

/// The child's side: only async-signal-safe system calls on prepared data. Never returns.
fn run_child(action: &Action<'_>, page: &SharedPage) -> ! {
    // SAFETY: raw system calls (unshare, setns, mount, mkdir, read, close_range, prctl, execve,
    // _exit) with integer arguments or pointers into data prepared before the clone, which this
    // child's copy of the address space (or, after vfork, the shared one) still holds; the errno
    // read is of this thread's own errno. Nothing allocates or takes a lock.
    unsafe {
        let fail = |step: u8| -> ! {
            page.store(SLOT_ERRNO, *libc::__errno_location() as u64);
            page.store(SLOT_STEP, u64::from(step));
            page.store(SLOT_STATUS, STATUS_FAILED);
            libc::_exit(1)
        };
        let ok = || -> ! {
            page.store(SLOT_STATUS, STATUS_OK);
            libc::_exit(0)
        };
        let hold = |fd: RawFd| -> ! {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // Close every other fd: a holder must not keep another holder's pipe open.
            if fd > 3 && libc::syscall(libc::SYS_close_range, 3u32, (fd - 1) as u32, 0u32) != 0 {
                fail(b'c');
            }
            if libc::syscall(libc::SYS_close_range, (fd + 1) as u32, u32::MAX, 0u32) != 0 {
                fail(b'c');
            }
            let mut b = 0u8;
            loop {
                match libc::read(fd, (&mut b as *mut u8).cast(), 1) {
                    0 => ok(),
                    n if n < 0 && *libc::__errno_location() == libc::EINTR => continue,
                    n if n < 0 => fail(b'h'),
                    _ => continue,
                }
            }
        };
        // Faults in, untimed, what a timed unshare or setns touches first. After fork the child's
        // first call of a function takes a fault on its text page (fork does not copy the
        // page-table entries of file mappings): measured, that put 300 ns (+14%) on a timed
        // unshare(CLONE_NEWUTS) of 2.1 µs against the bare-libc loop, which warms up the same way.
        // unshare(0) does nothing; setns(-1, 0) fails with EBADF.
        let warm_up = || {
            libc::syscall(libc::SYS_unshare, 0);
            libc::syscall(libc::SYS_setns, -1, 0);
            let _ = (thread_cpu_ns(), monotonic_ns());
        };
        // Generic, so that the timed call is inlined between the two clock reads.
        fn timed_call(f: impl FnOnce() -> i64) -> (i64, Timed) {
            let c0 = thread_cpu_ns();
            let t0 = monotonic_ns();
            let r = f();
            let t1 = monotonic_ns();
            let c1 = thread_cpu_ns();
            (r, Timed { wall_ns: t1 - t0, cpu_ns: c1 - c0 })
        }
        match *action {
            Action::Exit => libc::_exit(0),
            Action::StampExit => {
                page.put_raw(0, monotonic_ns());
                libc::_exit(0)
            }
            Action::Hold { fd } => hold(fd.as_raw_fd()),
            Action::Unshare { flags, untimed, timed } => {
                warm_up();
                for _ in 0..untimed {
                    if libc::syscall(libc::SYS_unshare, flags) != 0 {
                        fail(b'u');
                    }
                }
                for i in 0..timed as usize {
                    let (r, t) = timed_call(|| libc::syscall(libc::SYS_unshare, flags));
                    if r != 0 {
                        fail(b'u');
                    }
                    page.put(i, t);
                }
                ok()
            }
            Action::Setns { fds } => {
                warm_up();
                let (r, t) = timed_call(|| {
                    for &(fd, nstype) in fds {
                        if libc::syscall(libc::SYS_setns, fd.as_raw_fd(), nstype) != 0 {
                            return -1;
                        }
                    }
                    0
                });
                if r != 0 {
                    fail(b's');
                }
                page.put(0, t);
                ok()
            }
            Action::SetnsThenUnshare { fd, nstype, flags } => {
                warm_up();
                if libc::syscall(libc::SYS_setns, fd.as_raw_fd(), nstype) != 0 {
                    fail(b's');
                }
                let (r, t) = timed_call(|| libc::syscall(libc::SYS_unshare, flags));
                if r != 0 {
                    fail(b'u');
                }
                page.put(0, t);
                ok()
            }
            Action::Exec(exec) => {
                libc::execve(exec.path.as_ptr(), exec.argv_ptrs.as_ptr(), exec.envp_ptrs.as_ptr());
                fail(b'x')
            }
            Action::MountTree { plan, hold_fd } => {
                let null = std::ptr::null::<c_char>();
                if libc::mount(null, c"/".as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                    fail(b'p');
                }
                let base = plan.base.as_ptr();
                if libc::mount(c"isoprobe-bench".as_ptr(), base, c"tmpfs".as_ptr(), 0, std::ptr::null()) != 0 {
                    fail(b'm');
                }
                for d in &plan.dirs {
                    if libc::mkdir(d.as_ptr(), 0o700) != 0 {
                        fail(b'd');
                    }
                    if libc::mount(base, d.as_ptr(), null, libc::MS_BIND, std::ptr::null()) != 0 {
                        fail(b'm');
                    }
                }
                page.store(SLOT_STATUS, STATUS_OK);
                hold(hold_fd.as_raw_fd())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Creating the child.

/// Which system call creates the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// glibc fork(3) (atfork handlers included): what most programs call.
    Fork,
    /// clone(CLONE_VM | CLONE_VFORK) on a separate stack (posix_spawn's way): the parent sleeps
    /// until the child exits or execs.
    Vfork,
    /// clone(2), fork semantics (a copy of the address space).
    Clone,
    /// clone3(2), fork semantics.
    Clone3,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Fork => "fork",
            Call::Vfork => "vfork",
            Call::Clone => "clone",
            Call::Clone3 => "clone3",
        }
    }
}

/// A child process: killed (if still running) and reaped when dropped.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

/// How a child ended, and the CPU time it used (from wait4's rusage).
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// The raw wait status.
    pub status: c_int,
    pub cpu_ns: u64,
}

impl Exit {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    /// `Ok` for exit status 0, otherwise an error naming the status.
    pub fn check(&self, what: &str) -> io::Result<()> {
        if self.success() {
            return Ok(());
        }
        let how = if libc::WIFEXITED(self.status) {
            format!("exit {}", libc::WEXITSTATUS(self.status))
        } else if libc::WIFSIGNALED(self.status) {
            format!("signal {}", libc::WTERMSIG(self.status))
        } else {
            format!("status {:#x}", self.status)
        };
        Err(io::Error::other(format!("{what}: the child ended with {how}")))
    }
}

impl Child {
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Blocks until the child exits and reaps it (wait4(2)).
    pub fn wait(mut self) -> io::Result<Exit> {
        self.wait_mut()
    }

    fn wait_mut(&mut self) -> io::Result<Exit> {
        let mut status: c_int = 0;
        // SAFETY: rusage is plain data; wait4 fills it. All-zero is a valid rusage.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: our own unreaped child; both out-pointers are to the locals above.
        unsafe { wait4_child(self.pid, &mut status, &mut ru) }?;
        self.reaped = true;
        Ok(Exit { status, cpu_ns: rusage_cpu_ns(&ru) })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: the pid is our own child, not yet reaped, so it cannot have been recycled.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.wait_mut();
        }
    }
}

/// Arguments for the vfork child's entry point (read through the shared address space).
struct VforkArgs<'a, 'b> {
    action: &'a Action<'b>,
    page: &'a SharedPage,
}

extern "C" fn vfork_entry(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points at the VforkArgs on the parent's stack, which stays valid: with
    // CLONE_VFORK the parent is suspended until this child exits or execs.
    let args = unsafe { &*(arg as *const VforkArgs<'_, '_>) };
    run_child(args.action, args.page)
}

/// Creates a child with `call` and namespace `flags` (CLONE_NEW*; clone3 also CLONE_INTO_CGROUP
/// through `cgroup`) that runs `action`. Returns the child and the time of the creating call as
/// seen by the parent (for [`Call::Vfork`] that includes the child's run up to its exit or exec).
pub fn spawn(
    call: Call,
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    action: &Action<'_>,
    page: &SharedPage,
) -> io::Result<(Child, Timed)> {
    spawn_inner(call, flags, cgroup, action, page, true)
}

/// The clone3 arguments for `call` with namespace `flags` and an optional cgroup, after checking
/// that `call` can express them.
fn clone_args(call: Call, flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<CloneArgs> {
    if call != Call::Clone3 && cgroup.is_some() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "only clone3 can start a child in a cgroup"));
    }
    if matches!(call, Call::Fork) && flags != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "fork takes no namespace flags"));
    }
    if call == Call::Clone && flags & isoprobe_probes::ns::CLONE_NEWTIME as u64 != 0 {
        // clone(2)'s flags word has CLONE_NEWTIME's bit in the exit-signal byte.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "clone(2) cannot express CLONE_NEWTIME"));
    }
    Ok(CloneArgs {
        flags: flags | cgroup.map(|_| CLONE_INTO_CGROUP).unwrap_or(0),
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map(|c| c.as_raw_fd() as u64).unwrap_or(0),
        ..Default::default()
    })
}

/// [`spawn`]; `measure` false leaves out the parent's clock reads around the call (for callers
/// that time a larger region themselves: the CPU-time clock is a system call, not a vDSO read).
fn spawn_inner(
    call: Call,
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    action: &Action<'_>,
    page: &SharedPage,
    measure: bool,
) -> io::Result<(Child, Timed)> {
    let clone_args = clone_args(call, flags, cgroup)?;
    let mut vfork_stack = if call == Call::Vfork { vec![0u8; 64 * 1024] } else { Vec::new() };
    let vfork_args = VforkArgs { action, page };

    let clocks = || if measure { (thread_cpu_ns(), monotonic_ns()) } else { (0, 0) };
    let (c0, t0) = clocks();
    // SAFETY: per call:
    // - fork: glibc's fork; the child runs only `run_child` (async-signal-safe) and never returns.
    // - Vfork: glibc's clone with CLONE_VM|CLONE_VFORK runs `vfork_entry` on a separate stack that
    //   lives (in `vfork_stack`) until the call returns, which is after the child exited or
    //   exec'd; stacks grow down, so the top of the buffer (16-byte aligned) is passed.
    // - clone and clone3 without CLONE_VM and with stack 0 have fork semantics: the child returns
    //   from the system call on a copy of this stack and runs only `run_child`.
    let ret: i64 = unsafe {
        match call {
            Call::Fork => libc::fork() as i64,
            Call::Vfork => {
                let top = vfork_stack.as_mut_ptr().add(vfork_stack.len()) as usize & !15;
                libc::clone(
                    vfork_entry,
                    top as *mut c_void,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | flags as c_int,
                    &vfork_args as *const VforkArgs<'_, '_> as *mut c_void,
                ) as i64
            }
            Call::Clone => libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0usize, 0usize, 0usize, 0usize),
            Call::Clone3 => {
                libc::syscall(libc::SYS_clone3, &clone_args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
            }
        }
    };
    if ret == 0 && call != Call::Vfork {
        if matches!(action, Action::Exit) {
            // Right here, as a bare-libc loop's child does: run_child's code is on other text
            // pages, each a page fault in a fresh child (fork does not copy the page-table
            // entries of file mappings), which measured +8% on clone3 + exit + wait.
            // SAFETY: _exit in the child of a fork-like clone.
            unsafe { libc::_exit(0) }
        }
        run_child(action, page);
    }
    let t1 = if measure { monotonic_ns() } else { 0 };
    let c1 = if measure { thread_cpu_ns() } else { 0 };
    drop(vfork_stack);
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((Child { pid: ret as libc::pid_t, reaped: false }, Timed { wall_ns: t1 - t0, cpu_ns: c1 - c0 }))
}

/// Creates a child that runs `action`, waits for it, and checks what it reported. The parent
/// reads no clock around the call (callers time what they need themselves). A child that only
/// exits (not vfork's) is created and reaped by `create_and_reap`.
pub fn spawn_and_wait(
    call: Call,
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    action: &Action<'_>,
    page: &SharedPage,
) -> io::Result<Exit> {
    page.clear();
    if matches!(action, Action::Exit) && call != Call::Vfork {
        let exit = create_and_reap(call, &clone_args(call, flags, cgroup)?, page)?;
        exit.check(call.name())?;
        return Ok(exit);
    }
    let (child, _) = spawn_inner(call, flags, cgroup, action, page, false)?;
    let exit = child.wait()?;
    if !matches!(action, Action::Exit | Action::StampExit | Action::Exec(_)) {
        page.outcome()?;
    }
    exit.check(call.name())?;
    Ok(exit)
}

/// Creates a child that `_exit`s at once and reaps it, storing to as few private pages of the
/// parent as it can while the child lives.
///
/// Why that matters: a fork-type clone makes every private page copy-on-write in both processes,
/// so each page the parent stores to before the child is gone costs a page fault and a 4 KiB
/// copy. Measured on the development VM (a C loop of clone3(CLONE_NEWUTS) + `_exit` + waitpid):
/// about 2 µs per page, 108.9 µs with none and 124.3 µs with 8 (p25 of 2000 rounds each). The
/// general path (a [`Child`] returned through two frames, wait4's status and rusage in a third)
/// read clone3 + exit + wait of a uts namespace 6–8% slower than the bare-libc loop of the
/// reference group. Here the call and the reap share one small frame (its stack page is the one
/// store no fork-type parent avoids: the return address of the next call), and wait4 writes its
/// status and rusage to the shared page.
#[inline(never)]
fn create_and_reap(call: Call, args: &CloneArgs, page: &SharedPage) -> io::Result<Exit> {
    let (status, ru) = page.reap_area();
    // SAFETY: fork (glibc's), clone with stack 0 and clone3 without CLONE_VM have fork semantics;
    // the child only calls _exit. Vfork never comes here (see `spawn_and_wait`).
    let pid: i64 = unsafe {
        match call {
            Call::Fork => libc::fork() as i64,
            Call::Clone => {
                libc::syscall(libc::SYS_clone, args.flags | args.exit_signal, 0usize, 0usize, 0usize, 0usize)
            }
            Call::Clone3 => libc::syscall(libc::SYS_clone3, args as *const CloneArgs, std::mem::size_of::<CloneArgs>()),
            Call::Vfork => return Err(io::Error::new(io::ErrorKind::InvalidInput, "vfork shares the parent's memory")),
        }
    };
    if pid == 0 {
        // SAFETY: _exit in the child of a fork-like call.
        unsafe { libc::_exit(0) }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: our own child; both out-pointers are into the shared page (see reap_area).
    unsafe { wait4_child(pid as libc::pid_t, status, ru) }?;
    // SAFETY: the kernel has written both (wait4 returned the pid); they are plain data.
    let (status, ru) = unsafe { (*status, *ru) };
    Ok(Exit { status, cpu_ns: rusage_cpu_ns(&ru) })
}

/// wait4(2) for `pid` (any kind of child: `__WALL`), again after EINTR.
///
/// # Safety
/// `pid` must be an unreaped child of this process, and `status` and `ru` valid for writes.
/// Inlined, so that [`create_and_reap`] stores to no further stack frame while its child lives.
#[inline(always)]
unsafe fn wait4_child(pid: libc::pid_t, status: *mut c_int, ru: *mut libc::rusage) -> io::Result<()> {
    loop {
        // SAFETY: as the caller promises.
        if unsafe { libc::wait4(pid, status, libc::__WALL, ru) } == pid {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// User plus system CPU time of a rusage, in nanoseconds.
fn rusage_cpu_ns(ru: &libc::rusage) -> u64 {
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The whole of create + the child's `_exit` + the reap, timed in the parent; the CPU time adds
/// the child's own (wait4 rusage) to the parent thread's.
pub fn create_exit_wait(call: Call, flags: u64, page: &SharedPage) -> io::Result<Timed> {
    let c0 = thread_cpu_ns();
    let t0 = monotonic_ns();
    let exit = spawn_and_wait(call, flags, None, &Action::Exit, page)?;
    let t1 = monotonic_ns();
    let c1 = thread_cpu_ns();
    Ok(Timed { wall_ns: t1 - t0, cpu_ns: c1 - c0 + exit.cpu_ns })
}

/// fork + execve of `exec` + the reap, timed in the parent (CPU time as in [`create_exit_wait`]).
pub fn fork_exec_wait(exec: &ExecArgs, page: &SharedPage) -> io::Result<Timed> {
    let c0 = thread_cpu_ns();
    let t0 = monotonic_ns();
    let exit = spawn_and_wait(Call::Fork, 0, None, &Action::Exec(exec), page)?;
    let t1 = monotonic_ns();
    let c1 = thread_cpu_ns();
    Ok(Timed { wall_ns: t1 - t0, cpu_ns: c1 - c0 + exit.cpu_ns })
}

/// From the child's last instruction before `_exit` to the parent's return from the reap: the
/// synchronous part of tearing down the child's namespaces (and the parent's wake-up).
pub fn exit_to_reap(call: Call, flags: u64, page: &SharedPage) -> io::Result<Timed> {
    page.clear();
    let (child, _) = spawn(call, flags, None, &Action::StampExit, page)?;
    let c0 = thread_cpu_ns();
    let exit = child.wait()?;
    let t1 = monotonic_ns();
    let c1 = thread_cpu_ns();
    exit.check(call.name())?;
    let stamp = page.raw(0);
    if stamp == 0 || stamp > t1 {
        return Err(io::Error::other("the child stored no exit time stamp"));
    }
    // The parent's CPU time while waiting; the child's exit work is in its rusage, but that also
    // holds its start, so it is not added here.
    Ok(Timed { wall_ns: t1 - stamp, cpu_ns: c1 - c0 })
}

/// unshare(`flags`) in a fresh child (created with clone3, no namespace flags): `untimed` calls
/// first, then `timed` calls each timed by the child. Returns the timed calls.
pub fn unshare_in_child(flags: u64, untimed: u32, timed: u32, page: &SharedPage) -> io::Result<Vec<Timed>> {
    if timed as usize > page.capacity() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "more timed calls than the page holds"));
    }
    spawn_and_wait(Call::Clone3, 0, None, &Action::Unshare { flags, untimed, timed }, page)?;
    Ok((0..timed as usize).map(|i| page.result(i)).collect())
}

/// setns(2) into every (fd, nstype) in order, in a fresh child, timed as one.
pub fn setns_in_child(fds: &[(BorrowedFd<'_>, c_int)], page: &SharedPage) -> io::Result<Timed> {
    spawn_and_wait(Call::Clone3, 0, None, &Action::Setns { fds }, page)?;
    Ok(page.result(0))
}

/// setns(fd, nstype), then a timed unshare(`flags`), in a fresh child.
pub fn setns_then_unshare_in_child(
    fd: BorrowedFd<'_>,
    nstype: c_int,
    flags: u64,
    page: &SharedPage,
) -> io::Result<Timed> {
    spawn_and_wait(Call::Clone3, 0, None, &Action::SetnsThenUnshare { fd, nstype, flags }, page)?;
    Ok(page.result(0))
}

#[cfg(test)]
mod tests {
    use super::super::page::SLOT_REAP_STATUS;
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn every_call_creates_a_child_that_exits() {
        let page = SharedPage::new(1).unwrap();
        for call in [Call::Fork, Call::Vfork, Call::Clone, Call::Clone3] {
            let t = create_exit_wait(call, 0, &page).unwrap();
            assert!(t.wall_ns > 0, "{call:?}");
        }
    }

    #[test]
    fn an_exit_only_child_is_reaped_through_the_shared_page() {
        let page = SharedPage::new(1).unwrap();
        for call in [Call::Fork, Call::Clone, Call::Clone3] {
            // All ones before: wait4 writes the status (0, an exit with 0) into the low four bytes
            // of the slot and leaves the high four (create_and_reap does not clear the page, as
            // spawn_and_wait does first).
            page.store(SLOT_REAP_STATUS, u64::MAX);
            let exit = create_and_reap(call, &clone_args(call, 0, None).unwrap(), &page).unwrap();
            assert!(exit.success(), "{call:?}: {:#x}", exit.status);
            assert_eq!(page.load(SLOT_REAP_STATUS), 0xffff_ffff_0000_0000, "{call:?}");
            assert!(spawn_and_wait(call, 0, None, &Action::Exit, &page).unwrap().success(), "{call:?}");
        }
        // What the calls cannot express fails before anything is created.
        let invalid = |r: io::Result<Exit>| r.unwrap_err().kind() == io::ErrorKind::InvalidInput;
        assert!(invalid(spawn_and_wait(Call::Fork, libc::CLONE_NEWUTS as u64, None, &Action::Exit, &page)));
        let newtime = isoprobe_probes::ns::CLONE_NEWTIME as u64;
        assert!(invalid(spawn_and_wait(Call::Clone, newtime, None, &Action::Exit, &page)));
        assert!(invalid(spawn_and_wait(Call::Clone, 0, Some(std::io::stdin().as_fd()), &Action::Exit, &page)));
    }

    #[test]
    fn a_failing_child_reports_its_step_and_errno() {
        let page = SharedPage::new(1).unwrap();
        // setns on an fd that is not a namespace fails with EINVAL (or EBADF when closed).
        let err = setns_in_child(&[(std::io::stdin().as_fd(), 0)], &page).unwrap_err();
        assert!(err.to_string().contains("setns in the child"), "{err}");
    }

    #[test]
    fn exit_to_reap_is_positive_and_plausible() {
        let page = SharedPage::new(1).unwrap();
        let t = exit_to_reap(Call::Clone3, 0, &page).unwrap();
        assert!(t.wall_ns > 0 && t.wall_ns < 10_000_000_000, "{t:?}");
    }
}
