//! clone3(2) and clone(2), and the child's side of the spawn pipeline up to execve(2).
//!
//! The harness is multi-threaded (libtest-mimic and criterion run work on many threads), and a
//! clone3 child shares its memory until the exec (see [`spawn`]), so the child between clone and
//! exec makes only raw system calls on data prepared before the clone: no allocation, no locks,
//! no Rust std I/O, not even errno. [`ExecImage`] holds everything the child touches, built in the
//! parent; `child_main` is the whole child side.

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
/// CLONE_CLEAR_SIGHAND (Linux 5.5, clone3 only): every caught signal starts at its default in
/// the child; ignored ones stay ignored, as across an exec.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

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
    /// What a child sharing the harness's memory still uses: keep it until the child has exec'd
    /// or ended (a failed exec reports on the sync socket, a successful one closes it), then drop
    /// it. `None` when the child has its own copy of everything.
    pub pre_exec: Option<PreExec>,
    /// The child shares the harness's descriptor table until it sends [`FILES_OWN`] on the
    /// sync socket: until then the caller keeps the child's descriptors open (closing one would
    /// close it for the child too).
    pub shares_fds: bool,
}

/// clone3 child → harness, on the sync socket: the child has a descriptor table of its own now
/// (see [`spawn`]), so the harness may close its copies of the child's descriptors.
pub const FILES_OWN: u8 = b'F';

/// CLOSE_RANGE_UNSHARE (linux/close_range.h, Linux 5.9).
const CLOSE_RANGE_UNSHARE: usize = 1 << 1;

/// Whether a CLONE_FILES child can take a table of its own with close_range(2)'s
/// CLOSE_RANGE_UNSHARE (Linux 5.9).
pub(crate) fn close_range_unshares() -> bool {
    kernel_at_least((5, 9))
}

/// Whether clone3 takes CLONE_CLEAR_SIGHAND (Linux 5.5).
fn clears_handlers() -> bool {
    kernel_at_least((5, 5))
}

/// Whether the running kernel is `min` or later (read once; an unparsable release is not: the
/// flags it guards are then left out, which every kernel takes).
fn kernel_at_least(min: (u32, u32)) -> bool {
    static VERSION: std::sync::OnceLock<Option<(u32, u32)>> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| crate::requirement::KernelRelease::running().version).is_some_and(|v| v >= min)
}

/// Creates the child with `flags` (CLONE_NEW* and CLONE_INTO_CGROUP) and runs `child_main` in
/// it. Returns in the parent only.
///
/// clone3 creates the child with CLONE_VM on a stack of its own ([`PreExec`]), as posix_spawn does:
/// a fork would copy the harness's page tables (a multi-threaded process with every finished
/// case's results, so hundreds of microseconds per case) and then make every page the harness
/// writes until the child's exec a copy-on-write fault; `perf` of the namespace matrix put clone3
/// at 9% of its CPU time. The child shares the harness's memory until its exec, so it must not
/// write any of it: `child_main` uses raw system calls (glibc's wrappers would set the errno of
/// the harness thread whose thread pointer it shares), reads only the `ChildCtx`, and keeps all
/// signals blocked until it has reset every caught signal to its default (a handler of the
/// harness's would otherwise run in the child, on the harness's memory). What the child needs
/// lives in the returned [`Cloned::pre_exec`] until the caller knows the child has exec'd or
/// ended. With [`ChildHandshake::ExecWithSyncFd3`] the child execs at once, so CLONE_VFORK keeps
/// the parent waiting until then and nothing needs to be kept.
///
/// Such a child also shares the harness's descriptor table (CLONE_FILES), and its first step takes
/// a table of its own with only the numbers up to its own descriptors in it (close_range(2) with
/// CLOSE_RANGE_UNSHARE from the number after its highest one): the descriptors the harness keeps
/// for the whole run sit above them ([`crate::sys::fds::long_lived_floor`]), so they are neither
/// duplicated at the clone nor closed again at the exec. Until the child says so ([`FILES_OWN`],
/// [`Cloned::shares_fds`]) the caller keeps the child's descriptors open.
///
/// clone(2), and clone3 with CLONE_NEWTIME, keep fork semantics: the first is the call a
/// `clone` case exercises as it is, and a new time namespace is entered at the fork only
/// without CLONE_VM (with it, at the exec: `copy_namespaces`, kernel/nsproxy.c). With
/// `time_at_exec` the caller wants exactly that: the child shares the harness's memory, and its
/// new time namespace takes offsets until the exec moves the child in (Linux 6.2 and later).
pub fn spawn(
    call: CloneCall,
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    image: ExecImage,
    fds: &ChildFds<'_>,
    handshake: ChildHandshake,
    time_at_exec: bool,
) -> nix::Result<Cloned> {
    let mut flags = flags | CLONE_PIDFD;
    if cgroup.is_some() {
        flags |= CLONE_INTO_CGROUP;
    }
    let blocked = BlockedSignals::block_all()?;
    let mut ctx = Box::new(ChildCtx::new(&image, fds, handshake, blocked.old));
    if call == CloneCall::Clone3 {
        let shared_vm = time_at_exec || flags & isoprobe_probes::ns::CLONE_NEWTIME as u64 == 0;
        let stack = if shared_vm { Some(ChildStack::new()?) } else { None };
        let mut pidfd: RawFd = -1;
        let mut args = CloneArgs {
            flags,
            pidfd: &mut pidfd as *mut RawFd as u64,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup.map(|c| c.as_raw_fd() as u64).unwrap_or(0),
            ..Default::default()
        };
        let vfork = matches!(handshake, ChildHandshake::ExecWithSyncFd3);
        let share_files = stack.is_some() && close_range_unshares();
        if let Some(stack) = &stack {
            args.flags |= libc::CLONE_VM as u64 | if vfork { libc::CLONE_VFORK as u64 } else { 0 };
            args.stack = stack.base as u64;
            args.stack_size = stack.len as u64;
        }
        if clears_handlers() {
            // The kernel resets the caught signals at the clone: the child's loop of some 64
            // rt_sigaction calls per spawn is left out ([`ChildCtx::handlers_cleared`]).
            args.flags |= CLONE_CLEAR_SIGHAND;
            ctx.handlers_cleared = true;
        }
        if share_files {
            args.flags |= libc::CLONE_FILES as u64;
            ctx.files_below = ctx.stdio.iter().chain([&ctx.sync]).map(|&fd| fd as usize + 1).max().unwrap_or(0);
        }
        // SAFETY: `args` is a valid clone_args of the size passed. With CLONE_VM the child starts
        // on `stack` (the kernel sets its stack pointer to the top) and `clone_then_call` calls
        // `child_entry` there at once; without it the child runs on its copy of this stack. Either
        // way the child never returns, and `ctx` outlives its use: it is kept in `pre_exec` until
        // the caller has seen the exec (or, with CLONE_VFORK, the parent resumes only after it).
        let ret = unsafe {
            clone_then_call(
                libc::SYS_clone3,
                [&args as *const CloneArgs as usize, std::mem::size_of::<CloneArgs>(), 0, 0, 0],
                &ctx,
            )
        };
        drop(blocked);
        match Errno::result(ret) {
            Ok(pid) => {
                // SAFETY: the kernel stored a new pidfd that nothing else owns.
                let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
                let pre_exec =
                    stack.filter(|_| !vfork).map(|stack| PreExec { _stack: stack, _ctx: ctx, _image: image });
                // A vfork child has exec'd (or ended) by now.
                let shares_fds = share_files && !vfork;
                return Ok(Cloned { pid: Pid::from_raw(pid as i32), pidfd, call, pre_exec, shares_fds });
            }
            Err(Errno::ENOSYS) => {
                // Before Linux 5.3: fall through to clone(2), whose child resets its handlers.
                ctx.files_below = 0;
                ctx.handlers_cleared = false;
            }
            Err(e) => return Err(e),
        }
        return clone_forked(flags, &ctx, BlockedSignals::block_all()?);
    }
    clone_forked(flags, &ctx, blocked)
}

/// clone(2) with fork semantics (the child runs `child_main` on its copy of this stack).
fn clone_forked(flags: u64, ctx: &ChildCtx, blocked: BlockedSignals) -> nix::Result<Cloned> {
    if flags & (CLONE_INTO_CGROUP | isoprobe_probes::ns::CLONE_NEWTIME as u64) != 0 {
        // clone(2) has no cgroup argument, and CLONE_NEWTIME shares its bit with the exit signal.
        return Err(Errno::EINVAL);
    }
    let mut pidfd: RawFd = -1;
    // SAFETY: x86_64 clone(flags, stack, parent_tid, child_tid, tls); stack 0 means fork
    // semantics (a copy of the current stack); with CLONE_PIDFD the pidfd is written through
    // parent_tid, which points at a live RawFd. The child calls `child_entry` and never returns.
    let ret = unsafe {
        clone_then_call(
            libc::SYS_clone,
            [(flags | libc::SIGCHLD as u64) as usize, 0, &mut pidfd as *mut RawFd as usize, 0, 0],
            ctx,
        )
    };
    drop(blocked);
    let pid = Errno::result(ret)?;
    // SAFETY: the kernel stored a new pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Cloned { pid: Pid::from_raw(pid as i32), pidfd, call: CloneCall::Clone, pre_exec: None, shares_fds: false })
}

/// What a child that shares the harness's memory uses until its exec: its stack, its context,
/// and the image its execve reads. Dropped (the stack unmapped) only once the child has exec'd
/// or ended: [`Cloned::pre_exec`].
#[derive(Debug)]
pub struct PreExec {
    _stack: ChildStack,
    _ctx: Box<ChildCtx>,
    _image: ExecImage,
}

/// The stack of a CLONE_VM child: anonymous memory with a guard page below it.
#[derive(Debug)]
struct ChildStack {
    /// The lowest usable address (above the guard page).
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; moving it to another thread moves that
// ownership (it is unmapped in Drop, once).
unsafe impl Send for ChildStack {}
// SAFETY: nothing is read or written through a shared reference.
unsafe impl Sync for ChildStack {}

/// The child's stack: `child_main` and the system calls it makes need a few hundred bytes; the
/// rest is margin.
const CHILD_STACK_LEN: usize = 64 * 1024;
const PAGE: usize = 4096;

impl ChildStack {
    fn new() -> nix::Result<ChildStack> {
        let total = CHILD_STACK_LEN + PAGE;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        // SAFETY: the first page of the mapping just made; an overflow then faults.
        if unsafe { libc::mprotect(p, PAGE, libc::PROT_NONE) } != 0 {
            let e = Errno::last();
            // SAFETY: the mapping made above, not shared.
            unsafe { libc::munmap(p, total) };
            return Err(e);
        }
        // SAFETY: PAGE is inside the mapping.
        Ok(ChildStack { base: unsafe { p.cast::<u8>().add(PAGE) }.cast(), len: CHILD_STACK_LEN })
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new` (base is PAGE above its start), unmapped once; its
        // child has exec'd or ended (see `PreExec`).
        unsafe { libc::munmap(self.base.cast::<u8>().sub(PAGE).cast(), self.len + PAGE) };
    }
}

/// The calling thread's signals blocked, the old mask restored on drop: the child starts with
/// every signal blocked and restores `old` itself just before its exec.
struct BlockedSignals {
    old: u64,
}

/// The kernel's sigset size on x86_64 (64 signals), as rt_sigprocmask(2) takes it.
const KERNEL_SIGSET: usize = 8;

impl BlockedSignals {
    fn block_all() -> nix::Result<BlockedSignals> {
        let all: u64 = !0;
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask with valid pointers to 8-byte sets; SIGKILL and SIGSTOP are
        // ignored by the kernel, and glibc's internal signals are blocked only for this thread,
        // only until drop.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &all as *const u64,
                &mut old as *mut u64,
                KERNEL_SIGSET,
            )
        };
        Errno::result(r).map(|_| BlockedSignals { old })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: as in `block_all`, restoring the mask it saved.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &self.old as *const u64,
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET,
            )
        };
    }
}

/// Everything the child reads, by value or as pointers into an [`ExecImage`] that outlives it.
#[derive(Debug, Clone, Copy)]
struct ChildCtx {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    stdio: [RawFd; 3],
    sync: RawFd,
    handshake: ChildHandshake,
    /// The parent thread's signal mask, restored just before the exec.
    sigmask: u64,
    /// Non-zero: the child shares the harness's descriptor table, and takes one of its own with
    /// the numbers below this one first (see [`spawn`]).
    files_below: usize,
    /// The kernel already reset the caught signals to their defaults (CLONE_CLEAR_SIGHAND).
    handlers_cleared: bool,
}

// SAFETY: the pointers point into an ExecImage kept alive with the context (see `PreExec`), never
// mutated; the context is only read.
unsafe impl Send for ChildCtx {}
// SAFETY: as above.
unsafe impl Sync for ChildCtx {}

impl ChildCtx {
    fn new(image: &ExecImage, fds: &ChildFds<'_>, handshake: ChildHandshake, sigmask: u64) -> ChildCtx {
        ChildCtx {
            path: image.path.as_ptr(),
            argv: image.argv_ptrs.as_ptr(),
            envp: image.envp_ptrs.as_ptr(),
            stdio: [fds.stdin.as_raw_fd(), fds.stdout.as_raw_fd(), fds.stderr.as_raw_fd()],
            sync: fds.sync.as_raw_fd(),
            handshake,
            sigmask,
            files_below: 0,
            handlers_cleared: false,
        }
    }
}

/// Makes the clone system call `nr` with the arguments `a` (rdi, rsi, rdx, r10, r8) and, in the
/// child, calls `child_entry(ctx)` on whatever stack the child starts on: its own (CLONE_VM with
/// a stack) or its copy of this one. Returns the system call's result in the parent (a pid, or
/// -errno). A function of inline assembly because a child on a new stack cannot return through
/// any Rust or libc frame.
///
/// # Safety
/// `a` must be valid arguments of `nr`; `ctx` must stay valid and unchanged until the child has
/// exec'd or ended.
unsafe fn clone_then_call(nr: libc::c_long, a: [usize; 5], ctx: &ChildCtx) -> isize {
    let ret: isize;
    // SAFETY: the caller's contract. The parent's path only makes the system call; r12 and r13
    // (callee-saved, so kept across it) carry the context and the entry into the child, which
    // aligns its stack as the ABI wants at a call and never comes back.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r12") ctx as *const ChildCtx,
            in("r13") child_entry as extern "C" fn(*const ChildCtx) -> !,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// A raw system call: the result, or -errno. Never touches errno (which lives in the memory of
/// the harness thread a CLONE_VM child shares).
#[inline(always)]
fn raw_syscall(nr: libc::c_long, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY: a system call instruction; the callers pass arguments valid for `nr` (pointers to
    // their own stack or to the context).
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

extern "C" fn child_entry(ctx: *const ChildCtx) -> ! {
    // SAFETY: `clone_then_call` passes the context its caller keeps alive until the exec.
    child_main(unsafe { &*ctx })
}

/// `struct sigaction` as rt_sigaction(2) takes it on x86_64.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The child between clone and exec: raw system calls on the context and its own stack only.
///
/// On failure it writes `b'E'`, the step and the errno (native endian) on the sync socket and
/// exits 127.
fn child_main(c: &ChildCtx) -> ! {
    let sync = c.sync as usize;
    let fail = |step: u8, ret: isize| -> ! {
        let e = (-ret as i32).to_ne_bytes();
        let msg = [b'E', step, e[0], e[1], e[2], e[3]];
        raw_syscall(libc::SYS_write, [sync, msg.as_ptr() as usize, msg.len(), 0]);
        raw_syscall(libc::SYS_exit_group, [127, 0, 0, 0]);
        unreachable_exit()
    };
    if c.files_below != 0 {
        // Before anything else touches a descriptor: the harness's table is shared until this.
        let r = raw_syscall(libc::SYS_close_range, [c.files_below, u32::MAX as usize, CLOSE_RANGE_UNSHARE, 0]);
        if r < 0 {
            fail(b'f', r);
        }
        if matches!(c.handshake, ChildHandshake::GoThenExec { .. }) {
            let r = raw_syscall(libc::SYS_write, [sync, &FILES_OWN as *const u8 as usize, 1, 0]);
            if r != 1 {
                fail(b'F', r.min(0));
            }
        }
    }
    // A signal caught by the harness must not run its handler here: back to the default, as the
    // exec would do anyway (ignored ones stay ignored, as across an exec). clone3 may have done it.
    if !c.handlers_cleared {
        for sig in 1..=64usize {
            if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
                continue;
            }
            let mut old = KernelSigaction::default();
            let r =
                raw_syscall(libc::SYS_rt_sigaction, [sig, 0, &mut old as *mut KernelSigaction as usize, KERNEL_SIGSET]);
            if r == 0 && old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN {
                let dfl = KernelSigaction::default();
                raw_syscall(libc::SYS_rt_sigaction, [sig, &dfl as *const KernelSigaction as usize, 0, KERNEL_SIGSET]);
            }
        }
    }
    // Die with the thread that created us: a harness that panics or is killed takes its
    // containers with it.
    let r = raw_syscall(libc::SYS_prctl, [libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize, 0, 0]);
    if r < 0 {
        fail(b'p', r);
    }
    for (to, from) in c.stdio.iter().enumerate() {
        let r = move_fd(*from as usize, to);
        if r < 0 {
            fail(b'd', r);
        }
    }
    match c.handshake {
        ChildHandshake::GoThenExec { become_root } => {
            let mut b = 0u8;
            let n = raw_syscall(libc::SYS_read, [sync, &mut b as *mut u8 as usize, 1, 0]);
            if n != 1 || b != sync_bytes::GO {
                raw_syscall(libc::SYS_exit_group, [126, 0, 0, 0]);
                unreachable_exit();
            }
            if become_root {
                // setgroups fails where setgroups is denied (an unprivileged map), which leaves no
                // supplementary groups to drop anyway.
                raw_syscall(libc::SYS_setgroups, [0, 0, 0, 0]);
                let r = raw_syscall(libc::SYS_setresgid, [0, 0, 0, 0]);
                if r < 0 {
                    fail(b'g', r);
                }
                let r = raw_syscall(libc::SYS_setresuid, [0, 0, 0, 0]);
                if r < 0 {
                    fail(b'u', r);
                }
            }
        }
        ChildHandshake::ExecWithSyncFd3 => {
            let r = move_fd(sync, 3);
            if r < 0 {
                fail(b'3', r);
            }
        }
    }
    raw_syscall(
        libc::SYS_rt_sigprocmask,
        [libc::SIG_SETMASK as usize, &c.sigmask as *const u64 as usize, 0, KERNEL_SIGSET],
    );
    let r = raw_syscall(libc::SYS_execve, [c.path as usize, c.argv as usize, c.envp as usize, 0]);
    fail(b'x', r)
}

/// Puts `from` at `to` without close-on-exec (the result, or -errno): dup2, or, where it already
/// is there, clearing FD_CLOEXEC (dup2 onto itself would keep it set).
fn move_fd(from: usize, to: usize) -> isize {
    if from == to {
        raw_syscall(libc::SYS_fcntl, [to, libc::F_SETFD as usize, 0, 0])
    } else {
        raw_syscall(libc::SYS_dup2, [from, to, 0, 0])
    }
}

/// After exit_group, which does not return.
fn unreachable_exit() -> ! {
    loop {
        std::hint::spin_loop();
    }
}

/// Decodes the failure report of `child_main`: which step failed and the errno.
pub fn decode_child_failure(msg: &[u8]) -> Option<(&'static str, Errno)> {
    if msg.len() != 6 || msg[0] != b'E' {
        return None;
    }
    let step = match msg[1] {
        b'f' => "close_range(CLOSE_RANGE_UNSHARE) for a descriptor table of its own",
        b'F' => "telling the harness it has a descriptor table of its own",
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
    use nix::sys::wait::{WaitStatus, waitpid};

    use super::*;

    static HANDLED: AtomicBool = AtomicBool::new(false);

    extern "C" fn note(_: libc::c_int) {
        HANDLED.store(true, Ordering::SeqCst);
    }

    /// A signal that reaches a child between its clone and its exec finds the default
    /// disposition, never the harness's handler (which would run on the harness's memory): the
    /// child dies of it when it unblocks its signals, and the handler's flag, in memory the
    /// child shares with its parent, stays unset. Both ways of the reset: clone3's
    /// CLONE_CLEAR_SIGHAND (Linux 5.5) and the child's own loop after clone(2).
    #[test]
    fn a_signal_before_the_exec_never_runs_a_handler_of_the_harness() {
        let handler = SigAction::new(SigHandler::Handler(note), SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler only stores to an atomic; SIGUSR2 is used by nothing else here.
        let old = unsafe { sigaction(Signal::SIGUSR2, &handler) }.unwrap();
        for call in [CloneCall::Clone3, CloneCall::Clone] {
            let null = std::fs::File::options().read(true).write(true).open("/dev/null").unwrap();
            let (sync, sync_child) =
                socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
            let fds =
                ChildFds { stdin: null.as_fd(), stdout: null.as_fd(), stderr: null.as_fd(), sync: sync_child.as_fd() };
            let image = ExecImage::new(c"/bin/true".to_owned(), vec![c"true".to_owned()], Vec::new());
            let child =
                spawn(call, 0, None, image, &fds, ChildHandshake::GoThenExec { become_root: false }, false).unwrap();
            if child.shares_fds {
                let mut b = [0u8; 1];
                assert_eq!(recv(sync.as_raw_fd(), &mut b, MsgFlags::empty()), Ok(1));
                assert_eq!(b[0], FILES_OWN);
            }
            kill(child.pid, Signal::SIGUSR2).unwrap();
            send(sync.as_raw_fd(), &[sync_bytes::GO], MsgFlags::MSG_NOSIGNAL).unwrap();
            let status = waitpid(child.pid, None).unwrap();
            drop(child);
            assert_eq!(status, WaitStatus::Signaled(status.pid().unwrap(), Signal::SIGUSR2, false), "{call:?}");
            assert!(!HANDLED.load(Ordering::SeqCst), "{call:?}: the harness's handler ran in the child");
        }
        // SAFETY: puts back the disposition found.
        unsafe { sigaction(Signal::SIGUSR2, &old) }.unwrap();
    }
}
