//! Raw process and namespace primitives for the benchmarks (issue 4): fork, vfork, clone, clone3
//! and fork+exec, and unshare(2), setns(2) and mount(2) inside a fresh child that times its own
//! system call.
//!
//! Criterion (like libtest-mimic) is multi-threaded, so nothing here ever unshares, joins a
//! namespace or mounts in the calling process. Every namespace operation runs in a fresh child,
//! which between clone and `_exit` (or exec) makes only async-signal-safe system calls on data
//! prepared before the clone: an [`Action`] (plain integers, borrowed fds and pointers into
//! [`ExecArgs`]/[`MountPlan`]) and a [`SharedPage`] (a `MAP_SHARED` mapping the child writes its
//! timings and any failure into, read by the parent after the reap). No allocation, no locks, no
//! glibc wrapper that signals threads. The clocks are `clock_gettime`, async-signal-safe by POSIX.
//!
//! What this module must never do: leave a child running or unreaped ([`Child`] kills and reaps
//! on drop), or touch the namespaces, mounts or credentials of the calling process.
//!
//! These are the system-call wrappers only; the benchmarks' plumbing on top of them (holders,
//! sample stores, the runner) lives in the benches crate.
//!
//! - [`page`]: shared slots and the page a child reports through;
//! - `child`: the child's actions, and creating and reaping it (re-exported here);
//! - [`reference`](mod@reference): the bare-libc loops the benchmarks check their own measurement against.

mod child;
pub mod page;
pub mod reference;

pub use child::*;
pub use page::{SharedPage, SharedSlots};

/// Wall-clock and CPU time of one timed region, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timed {
    pub wall_ns: u64,
    pub cpu_ns: u64,
}

impl std::ops::Add for Timed {
    type Output = Timed;
    fn add(self, o: Timed) -> Timed {
        Timed { wall_ns: self.wall_ns + o.wall_ns, cpu_ns: self.cpu_ns + o.cpu_ns }
    }
}

impl std::iter::Sum for Timed {
    fn sum<I: Iterator<Item = Timed>>(iter: I) -> Timed {
        iter.fold(Timed::default(), |a, b| a + b)
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime is async-signal-safe (POSIX), so
    // this may also run in a child between clone and _exit.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC (through the vDSO), in nanoseconds.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Runs `f` and times it on the calling thread: wall clock and the thread's CPU time.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Timed) {
    let c0 = thread_cpu_ns();
    let t0 = monotonic_ns();
    let out = f();
    let t1 = monotonic_ns();
    let c1 = thread_cpu_ns();
    (out, Timed { wall_ns: t1 - t0, cpu_ns: c1 - c0 })
}

/// getppid(2) as a raw system call (no libc caching): the null system call of the calibration.
pub fn getppid_syscall() -> i64 {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

// ---------------------------------------------------------------------------------------------
// The benchmark process's own memory.
//
// Every fork-type primitive copies the page tables of the benchmark process's private memory and
// the child's exit tears them down again, so their cost grows with that memory: measured on the
// development VM, exit to reap read 37.6 µs with 244 kB of anonymous memory in the process and
// 62–66 µs with 2.2 MB (freed memory of criterion's analysis of the previous case, which malloc
// kept). The two helpers below, with the benches' sample store (in [`SharedSlots`], which fork does
// not copy), keep that memory small and the same from case to case and run to run: freed heap
// goes back to the kernel before sampling.

/// Tunes malloc so that freed memory does not linger in the process: allocations from 128 KiB
/// up get their own mapping (unmapped when freed), and a free top of the heap above 128 KiB is
/// given back at once. Fixed thresholds, where glibc would otherwise raise them as the process
/// frees large blocks.
pub fn tune_malloc() {
    // SAFETY: mallopt only changes malloc's parameters; any value is accepted or rejected (0).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Gives every free page of the heap back to the kernel (malloc_trim(3)).
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases memory malloc holds free; no live allocation is touched.
    unsafe { libc::malloc_trim(0) };
}
