//! perf_event_open(2): a cpu-clock counter of one cgroup on one CPU.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes): the fields a counting event needs.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
const PERF_FLAG_PID_CGROUP: libc::c_ulong = 1 << 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// perf_event_open(2) counting cpu-clock (nanoseconds) for the cgroup `cgroup` (a perf_event
/// cgroup's directory) on `cpu`. See
/// [perf_event_open(2)](https://man7.org/linux/man-pages/man2/perf_event_open.2.html).
pub fn cgroup_cpu_clock(cgroup: BorrowedFd<'_>, cpu: u32) -> nix::Result<OwnedFd> {
    let attr = PerfEventAttr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: PERF_COUNT_SW_CPU_CLOCK,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid PERF_ATTR_SIZE_VER0 attribute for the duration of the call; the
    // other arguments are integers. The kernel returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            cgroup.as_raw_fd(),
            cpu as i32,
            -1,
            PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
