//! The limit exercisers: in a limit case the probe runs one [`Exercise`] in place of the
//! namespace observations, and reports what the kernel let it do as one [`Fact::Exercise`].
//!
//! Each exercise does the same thing with and without the limit (the control): allocate, fork,
//! burn CPU, read a device. Counters only the host can read (cgroup files) are asked for through
//! [`HostQuestion::Limit`] at the moments that matter (before, at the limit, after).
//!
//! What this module must never do: judge. It also never leaves a child behind: every child it
//! forks is killed or waited for before the report is sent.

use std::io::Read;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket};
use nix::sys::stat::Mode as FileMode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{Pid, getpid, pipe, write};

use crate::wire::{
    CgroupReading, ChildEnd, CpuAttempt, Exercise, ExerciseReport, Fact, FrozenHold, GroupAction, GroupEnds,
    GroupState, HostAnswer, HostQuestion, LimitAnswer, LimitQuestion, MemoryCounters, Migration, OpenAttempt,
    SysResult, fact_key,
};

use crate::sys;

use super::channel::Channel;
use super::error::{Context, ProbeError};
use super::init::Dirs;
use super::interlock::Interlock;

const PAGE: usize = 4096;

/// Runs `ex` and reports it (or why it could not be run).
pub fn run(ch: &mut Channel, dirs: &Dirs, ex: &Exercise, interlock: &Interlock) -> Result<(), ProbeError> {
    let r = match ex {
        Exercise::Memory { target, step } => memory(ch, *target, *step),
        Exercise::Pids { target } => pids(ch, *target),
        Exercise::CpuBurn { cpu, window_ms } => cpu_burn(ch, *cpu, *window_ms),
        Exercise::CpuShare { cpu, window_ms } => cpu_share(ch, *cpu, *window_ms),
        Exercise::Affinity { cpus } => affinity(cpus),
        Exercise::Devices { paths } => Ok(ExerciseReport::Devices {
            opens: paths
                .iter()
                .map(|p| OpenAttempt {
                    path: p.clone(),
                    result: open(p.as_str(), OFlag::O_RDWR | OFlag::O_CLOEXEC, FileMode::empty()).into(),
                })
                .collect(),
        }),
        Exercise::Freezer { beat_ms, hold_ms } => freezer(ch, *beat_ms, *hold_ms),
        Exercise::IoRead { device, block, window_ms } => io_read(ch, device, *block, *window_ms),
        Exercise::IoShare { device, block, window_ms } => super::io_share::io_share(ch, device, *block, *window_ms),
        Exercise::CgroupView { mount_at } => cgroup_view(dirs, mount_at.as_deref(), interlock),
        Exercise::NetClassid => net_classid(),
        Exercise::PerfCount { burn_ms } => perf_count(ch, *burn_ms),
        Exercise::Hugetlb { page_size, pages } => hugetlb(*page_size, *pages),
        Exercise::KillGroup { loopers, wait_ms } => kill_group(ch, *loopers, *wait_ms),
        Exercise::FreezeGroup { loopers, hold_ms } => freeze_group(ch, *loopers, *hold_ms),
        Exercise::CacheRead { device, bytes, block } => cache_read(ch, device, *bytes, *block),
        Exercise::OomGroup { members, target, step } => oom_group(ch, *members, *target, *step, None),
        Exercise::OomGroupParent { members, target, step, child_dir, other_dir } => {
            oom_group(ch, *members, *target, *step, Some((child_dir, other_dir)))
        }
        Exercise::CgroupRules { rules, case_dir, sibling_dir } => {
            Ok(super::cgroup_rules::run(rules, case_dir, sibling_dir))
        }
        Exercise::CpuBurst { cpu, quota_us, period_us, idle_periods } => {
            super::burst::cpu_burst(ch, *cpu, *quota_us, *period_us, *idle_periods)
        }
        Exercise::MemoryProtect { .. } => super::protect::run(ex),
    };
    match r {
        Ok(report) => ch.fact(Fact::Exercise { report: Box::new(report) }),
        Err(e @ ProbeError::Protocol(_)) => Err(e),
        Err(e) => ch.fact(Fact::Unobservable { about: fact_key::EXERCISE.into(), error: e.to_string() }),
    }
}

pub(super) fn ask(ch: &mut Channel, ask: LimitQuestion) -> Result<LimitAnswer, ProbeError> {
    let what = format!("{ask:?}");
    match ch.ask(HostQuestion::Limit { ask })? {
        HostAnswer::Limit { reply } => Ok(reply),
        HostAnswer::Failed { error } => Err(ProbeError::Protocol(format!("the host failed to answer {what}: {error}"))),
        other => Err(ProbeError::Protocol(format!("unexpected answer to {what}: {other:?}"))),
    }
}

pub(super) fn reading(ch: &mut Channel) -> Result<CgroupReading, ProbeError> {
    match ask(ch, LimitQuestion::Read)? {
        LimitAnswer::Reading { reading } => Ok(*reading),
        other => Err(ProbeError::Protocol(format!("expected a cgroup reading, got {other:?}"))),
    }
}

fn now(clock: ClockId) -> u64 {
    // These clocks cannot fail for the calling process.
    let t = clock_gettime(clock).expect("clock_gettime on a process clock");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

pub(super) fn mono() -> u64 {
    now(ClockId::CLOCK_MONOTONIC)
}

pub(super) fn process_cpu() -> u64 {
    now(ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

fn child_end(s: WaitStatus) -> ChildEnd {
    match s {
        WaitStatus::Signaled(_, sig, _) => ChildEnd::Killed { signal: sig as i32, name: sig.as_str().to_owned() },
        WaitStatus::Exited(_, code) => ChildEnd::Exited { code },
        other => ChildEnd::Exited { code: -1 - (format!("{other:?}").len() as i32) },
    }
}

pub(super) fn wait_end(child: Pid) -> Result<ChildEnd, ProbeError> {
    loop {
        match waitpid(child, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(child_end(s)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(ProbeError::Sys { what: format!("wait for child {child}"), source: e }),
        }
    }
}

/// Forks; the child runs `f` and exits with its return value without unwinding or flushing
/// anything of the parent's.
pub(super) fn fork_child(f: impl FnOnce() -> i32) -> Result<Pid, ProbeError> {
    sys::fork_child(f).ctx(|| "fork".into())
}

/// Reads u64 values (native endian) from `fd` until end of file.
pub(super) fn read_u64s(fd: OwnedFd) -> Vec<u64> {
    let mut f = std::fs::File::from(fd);
    let mut all = Vec::new();
    let _ = f.read_to_end(&mut all);
    all.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect()
}

pub(super) fn write_u64(fd: &OwnedFd, v: u64) -> bool {
    write(fd, &v.to_ne_bytes()) == Ok(8)
}

pub(super) fn pin(cpu: u32) -> SysResult {
    let mut set = CpuSet::new();
    match set.set(cpu as usize) {
        Ok(()) => sched_setaffinity(Pid::from_raw(0), &set).into(),
        Err(e) => Err::<(), _>(e).into(),
    }
}

// ---- memory ----

fn memory(ch: &mut Channel, target: u64, step: u64) -> Result<ExerciseReport, ProbeError> {
    let before = reading(ch)?;
    let (r, w) = pipe().ctx(|| "create the progress pipe".into())?;
    let child = fork_child(|| touch_memory(target, step.max(PAGE as u64), &w))?;
    drop(w);
    let touched = read_u64s(r).last().copied().unwrap_or(0);
    let child = wait_end(child)?;
    let after = reading(ch)?;
    Ok(ExerciseReport::Memory { touched, child, before, after })
}

/// Maps and touches memory a step at a time, writing the running total after each step.
pub(super) fn touch_memory(target: u64, step: u64, progress: &OwnedFd) -> i32 {
    let mut done = 0u64;
    while done < target {
        let len = step.min(target - done) as usize;
        let Ok(m) = sys::Mapped::anonymous(len, None) else { return 3 };
        for off in (0..len).step_by(PAGE) {
            m.touch(off);
        }
        done += len as u64;
        if !write_u64(progress, done) {
            return 4;
        }
    }
    0
}

// ---- pids ----

fn pids(ch: &mut Channel, target: u32) -> Result<ExerciseReport, ProbeError> {
    let before = reading(ch)?;
    // Children wait for end of file on this pipe; dropping the write end releases them all.
    let (r, w) = pipe().ctx(|| "create the release pipe".into())?;
    let w_raw = w.as_raw_fd();
    let mut kids = Vec::new();
    let mut refused = None;
    for _ in 0..target {
        // The child waits for end of file on the release pipe (it closes its copy of the write
        // end first), then exits.
        let child = sys::fork_child(|| {
            let _ = nix::unistd::close(w_raw);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&r, &mut b);
            0
        });
        match child {
            Ok(child) => kids.push(child),
            Err(e) => {
                refused = Some(SysResult::from(Err::<(), _>(e)));
                break;
            }
        }
    }
    let at_stop = reading(ch);
    drop(w);
    drop(r);
    for k in &kids {
        wait_end(*k)?;
    }
    Ok(ExerciseReport::Pids { before, forks: kids.len() as u32, refused, at_stop: at_stop? })
}

// ---- cpu ----

fn spin_until(deadline_mono: u64) {
    while mono() < deadline_mono {
        std::hint::spin_loop();
    }
}

fn cpu_burn(ch: &mut Channel, cpu: u32, window_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let pinned = pin(cpu);
    let before = reading(ch)?;
    let (t0, c0) = (mono(), process_cpu());
    spin_until(t0 + u64::from(window_ms) * 1_000_000);
    let (t1, c1) = (mono(), process_cpu());
    let rusage_ns = rusage_self_ns()?;
    let after = reading(ch)?;
    let rusage_after_ns = rusage_self_ns()?;
    Ok(ExerciseReport::CpuBurn { pinned, wall_ns: t1 - t0, cpu_ns: c1 - c0, rusage_ns, rusage_after_ns, before, after })
}

/// getrusage(RUSAGE_SELF) user + system time in nanoseconds (microsecond resolution).
fn rusage_self_ns() -> Result<u64, ProbeError> {
    let ru = getrusage(UsageWho::RUSAGE_SELF).ctx(|| "getrusage".into())?;
    let tv_ns = |tv: nix::sys::time::TimeVal| tv.tv_sec() as u64 * 1_000_000_000 + tv.tv_usec() as u64 * 1000;
    Ok(tv_ns(ru.user_time()) + tv_ns(ru.system_time()))
}

fn cpu_share(ch: &mut Channel, cpu: u32, window_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let pinned = pin(cpu);
    let (go_r, go_w) = pipe().ctx(|| "create the start pipe".into())?;
    let (res_r, res_w) = pipe().ctx(|| "create the result pipe".into())?;
    let child = fork_child(|| {
        let mut b = [0u8; 8];
        if nix::unistd::read(&go_r, &mut b) != Ok(8) {
            return 2;
        }
        // Pinned again now that the host has moved it: before Linux 6.2 ("cgroup/cpuset: Keep
        // user set cpus affinity"), attaching a task to a cgroup2 cpuset replaces its affinity
        // with the cpuset's CPUs, and the competitor would run beside the probe, not against it.
        if !pin(cpu).is_ok() {
            return 4;
        }
        let c0 = process_cpu();
        spin_until(u64::from_ne_bytes(b));
        if write_u64(&res_w, process_cpu() - c0) { 0 } else { 3 }
    })?;
    drop((go_r, res_w));
    let moved = ask(ch, LimitQuestion::MoveToSibling { pid: child.as_raw() });
    if let Err(e) = moved {
        let _ = kill(child, Signal::SIGKILL);
        let _ = wait_end(child);
        return Err(e);
    }
    let t0 = mono();
    let end = t0 + u64::from(window_ms) * 1_000_000;
    let started = write_u64(&go_w, end);
    let c0 = process_cpu();
    spin_until(end);
    let mine_ns = process_cpu() - c0;
    let wall_ns = mono() - t0;
    drop(go_w);
    let competitor = read_u64s(res_r);
    let end_state = wait_end(child)?;
    match (started, competitor.as_slice()) {
        (true, [competitor_ns]) => {
            Ok(ExerciseReport::CpuShare { pinned, wall_ns, mine_ns, competitor_ns: *competitor_ns })
        }
        _ => Err(ProbeError::Protocol(format!("the competitor reported nothing ({end_state})"))),
    }
}

fn affinity(cpus: &[u32]) -> Result<ExerciseReport, ProbeError> {
    let set = sched_getaffinity(Pid::from_raw(0)).ctx(|| "sched_getaffinity".into())?;
    let allowed = (0..CpuSet::count()).filter(|c| set.is_set(*c).unwrap_or(false)).map(|c| c as u32).collect();
    let set = cpus.iter().map(|&cpu| CpuAttempt { cpu, result: pin(cpu) }).collect();
    Ok(ExerciseReport::Affinity { allowed, set })
}

// ---- freezer ----

fn freezer(ch: &mut Channel, beat_ms: u32, hold_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let (r, w) = pipe().ctx(|| "create the heartbeat pipe".into())?;
    let child = fork_child(|| {
        // Each beat: the time, and the run queue delay so far (u64::MAX: none kept).
        let schedstat = std::fs::File::open("/proc/thread-self/schedstat").ok();
        loop {
            let delay = schedstat.as_ref().and_then(run_queue_delay).unwrap_or(u64::MAX);
            if !write_u64(&w, mono()) || !write_u64(&w, delay) {
                return 3;
            }
            std::thread::sleep(Duration::from_millis(u64::from(beat_ms)));
        }
    })?;
    drop(w);
    // Beats before and after the hold, so that a stop and a resumption can both be seen.
    let margin = Duration::from_millis(u64::from(hold_ms / 4).max(50));
    std::thread::sleep(margin);
    let held = ask(ch, LimitQuestion::Hold { hold_ms });
    std::thread::sleep(margin);
    let _ = kill(child, Signal::SIGKILL);
    wait_end(child)?;
    let beats: Vec<(u64, u64)> = read_u64s(r).chunks_exact(2).map(|b| (b[0], b[1])).collect();
    let (frozen, held_ns) = match held? {
        LimitAnswer::Held { frozen, held_ns } => (frozen, held_ns),
        other => return Err(ProbeError::Protocol(format!("expected a hold, got {other:?}"))),
    };
    let (mut max_gap_ns, mut at) = (0, 0);
    let mut max_stopped_ns = Some(0u64);
    for (i, pair) in beats.windows(2).enumerate() {
        let ((t0, d0), (t1, d1)) = (pair[0], pair[1]);
        if t1 - t0 > max_gap_ns {
            max_gap_ns = t1 - t0;
            at = i + 1;
        }
        max_stopped_ns = match (max_stopped_ns, d0, d1) {
            (Some(m), d0, d1) if d0 != u64::MAX && d1 != u64::MAX => Some(m.max((t1 - t0).saturating_sub(d1 - d0))),
            _ => None,
        };
    }
    let beats_after_gap = beats.len().saturating_sub(at) as u32;
    Ok(ExerciseReport::Freezer {
        beats: beats.len() as u32,
        max_gap_ns,
        beats_after_gap,
        max_stopped_ns,
        frozen,
        held_ns,
    })
}

/// The calling thread's run queue delay in ns (time runnable but not running), the second field
/// of its `schedstat`, read again from the start of the open file.
fn run_queue_delay(f: &std::fs::File) -> Option<u64> {
    let mut buf = [0u8; 96];
    let n = nix::sys::uio::pread(f, &mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.split_whitespace().nth(1)?.parse().ok()
}

// ---- io ----

/// Readers in flight at once: with one, every late dispatch of the throttle (a timer and a
/// workqueue, both delayed on a busy machine) is throughput lost for good; with several, bios are
/// always queued and the throttle catches up on its next dispatch, so the limit is what shows.
pub const IO_READERS: u32 = 4;

fn io_read(ch: &mut Channel, device: &str, block: u32, window_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let (r, w) = pipe().ctx(|| "create the reader pipe".into())?;
    let before = reading(ch)?;
    let t0 = mono();
    let end = t0 + u64::from(window_ms) * 1_000_000;
    let mut kids = Vec::new();
    for i in 0..IO_READERS {
        kids.push(fork_child(|| {
            let mut span = ReadSpan::default();
            let (bytes, errno) = match io_read_one(device, block, end, (i, IO_READERS), &mut span, &mut |_, _| {}) {
                Ok(b) => (b, 0),
                Err((b, e)) => (b, e as u64),
            };
            // One write of RECORD_WORDS words: atomic on a pipe (under PIPE_BUF), so the readers'
            // reports do not interleave.
            let words = [bytes, span.first, span.last, errno, span.longest_read, span.longest_pause];
            let rec: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
            if write(&w, &rec) == Ok(rec.len()) { 0 } else { 3 }
        })?);
    }
    drop(w);
    let vals = read_u64s(r);
    for k in kids {
        wait_end(k)?;
    }
    const RECORD_WORDS: usize = 6;
    if vals.len() != RECORD_WORDS * IO_READERS as usize {
        return Err(ProbeError::Protocol(format!("{} of {IO_READERS} readers reported", vals.len() / RECORD_WORDS)));
    }
    let after = reading(ch)?;
    let (mut bytes, mut last, mut error) = (0, t0, None);
    let (mut all_started, mut first_done) = (t0, u64::MAX);
    let (mut longest_read_ns, mut longest_pause_ns) = (0, 0);
    for c in vals.chunks_exact(RECORD_WORDS) {
        bytes += c[0];
        all_started = all_started.max(c[1]);
        first_done = first_done.min(c[2]);
        last = last.max(c[2]);
        if c[3] != 0 {
            error = Some(SysResult::from(Err::<(), _>(Errno::from_raw(c[3] as i32))));
        }
        longest_read_ns = longest_read_ns.max(c[4]);
        longest_pause_ns = longest_pause_ns.max(c[5]);
    }
    Ok(ExerciseReport::IoRead {
        bytes,
        wall_ns: last.saturating_sub(t0),
        all_reading_ns: first_done.saturating_sub(all_started),
        longest_read_ns,
        longest_pause_ns,
        error,
        before,
        after,
    })
}

/// When one reader read: its first read's issue, its last read's return, its slowest read (issue
/// to return) and its longest pause between a return and the next issue.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReadSpan {
    pub first: u64,
    pub last: u64,
    pub longest_read: u64,
    pub longest_pause: u64,
}

/// One reader: O_DIRECT reads of `block` bytes until `end`, from its own part (`index` of `of`) of
/// the device. Returns the bytes read, or those and the errno that stopped it; `span` gets when
/// it read, `on_read` each read's bytes and when it returned.
pub(super) fn io_read_one(
    device: &str,
    block: u32,
    end: u64,
    (index, of): (u32, u32),
    span: &mut ReadSpan,
    on_read: &mut dyn FnMut(u64, u64),
) -> Result<u64, (u64, Errno)> {
    let fd =
        open(device, OFlag::O_RDONLY | OFlag::O_DIRECT | OFlag::O_CLOEXEC, FileMode::empty()).map_err(|e| (0, e))?;
    let size = nix::unistd::lseek(&fd, 0, nix::unistd::Whence::SeekEnd).map_err(|e| (0, e))? as u64;
    let block = block.max(PAGE as u32) as u64;
    let region = (size / u64::from(of.max(1))) / block * block;
    if region < block {
        return Err((0, Errno::ENOSPC));
    }
    // Page-aligned, as O_DIRECT needs.
    let Some(mut buf) = sys::AlignedBuf::zeroed(block as usize, PAGE) else { return Err((0, Errno::ENOMEM)) };
    let (mut bytes, mut off, mut error) = (0u64, 0u64, None);
    let base = region * u64::from(index);
    span.first = mono();
    span.last = span.first;
    loop {
        let issued = mono();
        if issued >= end {
            break;
        }
        span.longest_pause = span.longest_pause.max(issued - span.last);
        let n = nix::sys::uio::pread(&fd, buf.as_mut_slice(), (base + off) as i64);
        span.last = mono();
        span.longest_read = span.longest_read.max(span.last - issued);
        match n {
            Ok(n) if n > 0 => {
                bytes += n as u64;
                on_read(n as u64, span.last);
                off = (off + n as u64) % region;
            }
            Ok(_) => off = 0,
            Err(Errno::EINTR) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    match error {
        Some(e) => Err((bytes, e)),
        None => Ok(bytes),
    }
}

// ---- cgroup namespace view ----

fn cgroup_view(dirs: &Dirs, mount_at: Option<&str>, interlock: &Interlock) -> Result<ExerciseReport, ProbeError> {
    let fd = nix::fcntl::openat(&dirs.self_proc, "self/cgroup", OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty())
        .ctx(|| "open /proc/self/cgroup".into())?;
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text).ctx(|| "read /proc/self/cgroup".into())?;
    let lines = text.lines().map(str::to_owned).collect();
    let (mut mount_result, mut holds_self) = (None, None);
    if let Some(dir) = mount_at {
        if let Err(r) = interlock.permit(crate::ns::NsKind::Mnt, "mount cgroup2", Some(dirs.self_proc.as_fd())) {
            // Reported as the mount's failure: the view below is the probe's /proc/self/cgroup only.
            eprintln!("{}: {r}", super::PROBE_NAME);
            let refused = SysResult::Err { errno: libc::EPERM, name: format!("not attempted: {r}") };
            return Ok(ExerciseReport::CgroupView { lines, mount_root_holds_self: None, mount: Some(refused) });
        }
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let r = mount(Some("cgroup2"), dir, Some("cgroup2"), flags, None::<&str>);
        if r.is_ok() {
            let procs = std::fs::read_to_string(format!("{dir}/cgroup.procs"));
            let _ = umount2(dir, MntFlags::MNT_DETACH);
            let me = getpid().as_raw().to_string();
            holds_self = Some(procs.ctx(|| format!("read {dir}/cgroup.procs"))?.lines().any(|l| l == me));
        }
        mount_result = Some(r.into());
    }
    Ok(ExerciseReport::CgroupView { lines, mount_root_holds_self: holds_self, mount: mount_result })
}

// ---- net_cls: the class id sock_diag reports for a socket of our own ----

/// linux/inet_diag.h. CLASS_ID (17) does not fit the request's 8-bit extension mask; the kernel
/// also sends it when TCLASS (6) is asked for (net/ipv4/inet_diag.c, inet_sk_diag_fill).
const INET_DIAG_CLASS_ID: u16 = 17;
const INET_DIAG_TCLASS: u8 = 6;
const SOCK_DIAG_BY_FAMILY: u16 = 20;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct InetDiagSockId {
    sport: u16,
    dport: u16,
    src: [u32; 4],
    dst: [u32; 4],
    if_: u32,
    cookie: [u32; 2],
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct InetDiagReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: InetDiagSockId,
}

fn net_classid() -> Result<ExerciseReport, ProbeError> {
    // The class id is stamped on a socket when it is created (sock_update_classid), from the
    // creator's net_cls cgroup; a wildcard bind works even where lo is down.
    let s = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .ctx(|| "create a TCP socket".into())?;
    bind(s.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, 0)).ctx(|| "bind the TCP socket".into())?;
    listen(&s, nix::sys::socket::Backlog::new(1).expect("1 is a valid backlog")).ctx(|| "listen".into())?;
    let port = getsockname::<SockaddrIn>(s.as_raw_fd()).ctx(|| "getsockname".into())?.port();

    let nl = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        nix::sys::socket::SockProtocol::NetlinkSockDiag,
    )
    .ctx(|| "open a sock_diag netlink socket".into())?;
    let req = InetDiagReqV2 {
        family: libc::AF_INET as u8,
        protocol: libc::IPPROTO_TCP as u8,
        ext: 1 << (INET_DIAG_TCLASS - 1),
        states: 1 << 10, // TCP_LISTEN
        ..Default::default()
    };
    let hdr = libc::nlmsghdr {
        nlmsg_len: (size_of::<libc::nlmsghdr>() + size_of::<InetDiagReqV2>()) as u32,
        nlmsg_type: SOCK_DIAG_BY_FAMILY,
        nlmsg_flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        nlmsg_seq: 1,
        nlmsg_pid: 0,
    };
    // The message as the kernel reads it: the header's fields, then the request's, native endian
    // (the ports and addresses of the socket id are zero: match any).
    let mut msg = Vec::with_capacity(hdr.nlmsg_len as usize);
    msg.extend_from_slice(&hdr.nlmsg_len.to_ne_bytes());
    msg.extend_from_slice(&hdr.nlmsg_type.to_ne_bytes());
    msg.extend_from_slice(&hdr.nlmsg_flags.to_ne_bytes());
    msg.extend_from_slice(&hdr.nlmsg_seq.to_ne_bytes());
    msg.extend_from_slice(&hdr.nlmsg_pid.to_ne_bytes());
    msg.extend_from_slice(&[req.family, req.protocol, req.ext, req.pad]);
    msg.extend_from_slice(&req.states.to_ne_bytes());
    msg.resize(hdr.nlmsg_len as usize, 0);
    write(&nl, &msg).ctx(|| "send the sock_diag request".into())?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = nix::unistd::read(&nl, &mut buf).ctx(|| "read the sock_diag dump".into())?;
        match find_classid(&buf[..n], port) {
            DiagScan::Found(classid) => return Ok(ExerciseReport::NetClassid { classid }),
            DiagScan::Done => {
                return Err(ProbeError::Protocol(format!("sock_diag did not list the socket on port {port}")));
            }
            DiagScan::More => continue,
        }
    }
}

enum DiagScan {
    Found(u32),
    Done,
    More,
}

/// Walks a sock_diag dump datagram for the listener on `port` and its INET_DIAG_CLASS_ID.
fn find_classid(mut data: &[u8], port: u16) -> DiagScan {
    const HDR: usize = size_of::<libc::nlmsghdr>();
    // struct inet_diag_msg: family, state, timer, retrans (4 bytes), id (48), expires, rqueue,
    // wqueue, uid, inode (20): 72 bytes.
    const MSG: usize = 72;
    while data.len() >= HDR {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
        if len < HDR || len > data.len() {
            return DiagScan::Done;
        }
        if kind == libc::NLMSG_DONE as u16 || kind == libc::NLMSG_ERROR as u16 {
            return DiagScan::Done;
        }
        let body = &data[HDR..len];
        if body.len() >= MSG && u16::from_be_bytes([body[4], body[5]]) == port {
            let mut attrs = &body[MSG..];
            while attrs.len() >= 4 {
                let alen = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
                let akind = u16::from_ne_bytes([attrs[2], attrs[3]]);
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if akind == INET_DIAG_CLASS_ID && alen >= 8 {
                    return DiagScan::Found(u32::from_ne_bytes(attrs[4..8].try_into().expect("4 bytes")));
                }
                attrs = &attrs[(alen + 3) & !3..];
            }
            return DiagScan::Done;
        }
        let next = (len + 3) & !3;
        data = &data[next.min(data.len())..];
    }
    DiagScan::More
}

// ---- perf_event ----

fn perf_count(ch: &mut Channel, burn_ms: u32) -> Result<ExerciseReport, ProbeError> {
    match ask(ch, LimitQuestion::PerfStart)? {
        LimitAnswer::Started => {}
        other => return Err(ProbeError::Protocol(format!("expected the count to start, got {other:?}"))),
    }
    let (t0, c0) = (mono(), process_cpu());
    while process_cpu() - c0 < u64::from(burn_ms) * 1_000_000 {
        std::hint::spin_loop();
    }
    let (cpu_ns, wall_ns) = (process_cpu() - c0, mono() - t0);
    match ask(ch, LimitQuestion::PerfStop)? {
        LimitAnswer::PerfCount { ns } => Ok(ExerciseReport::PerfCount { cpu_ns, wall_ns, counted_ns: ns }),
        other => Err(ProbeError::Protocol(format!("expected a perf count, got {other:?}"))),
    }
}

// ---- hugetlb ----

fn hugetlb(page_size: u64, pages: u32) -> Result<ExerciseReport, ProbeError> {
    let (r, w) = pipe().ctx(|| "create the progress pipe".into())?;
    let (mr, mw) = pipe().ctx(|| "create the mapping pipe".into())?;
    let child = fork_child(|| {
        let len = page_size as usize * pages as usize;
        let m = sys::Mapped::anonymous(len, Some(page_size));
        write_u64(&mw, m.as_ref().err().map_or(0, |e| *e as u64));
        let Ok(m) = m else { return 3 };
        for i in 0..pages as usize {
            // Each fault charges one huge page to the cgroup.
            m.touch(i * page_size as usize);
            write_u64(&w, i as u64 + 1);
        }
        0
    })?;
    drop((w, mw));
    let touched_pages = read_u64s(r).last().copied().unwrap_or(0) as u32;
    let mapped = match read_u64s(mr).first() {
        Some(0) => SysResult::Ok,
        Some(&e) => SysResult::from(Err::<(), _>(Errno::from_raw(e as i32))),
        None => SysResult::from(Err::<(), _>(Errno::EIO)),
    };
    let child = wait_end(child)?;
    Ok(ExerciseReport::Hugetlb { touched_pages, child, mapped })
}

// ---- cgroup2 process control: a forking group in the sibling, killed or frozen ----

/// How long the group runs, once every looper has made its first turn, before anything is
/// measured: each has forked children by then (a fork and a reap take well under a millisecond).
const GROUP_SETTLE: Duration = Duration::from_millis(100);

/// How long the probe waits for every released looper's first turn (a bound for a machine so busy
/// that the exercise cannot run: then it reports an error).
const GROUP_START_WAIT: Duration = Duration::from_secs(10);

/// How long the probe waits for its group's stragglers (short-lived children orphaned by a killed
/// looper) once every looper is reaped: they are dead or exiting by then.
const STRAY_WAIT: Duration = Duration::from_secs(2);

/// A group of loopers in the sibling cgroup. Counter 0 counts every turn of every looper (each
/// forks a child or waits for one to end) and every child's exit; counter `1 + i` the turns of
/// looper `i`.
struct Group {
    loopers: Vec<Pid>,
    counters: sys::SharedCounters,
    /// Closing it releases the loopers: they exit 0 at their next turn.
    stop: Option<OwnedFd>,
}

impl Group {
    fn turns_of(&self, i: usize) -> u64 {
        self.counters.get(1 + i)
    }

    fn all(&self) -> u64 {
        self.counters.get(0)
    }

    /// Kills what is left (after an error), then reaps.
    fn abort(mut self) {
        for l in &self.loopers {
            let _ = kill(*l, Signal::SIGKILL);
        }
        self.stop.take();
        let _ = self.end();
    }

    /// Releases the loopers and reaps them, then every stray (the probe is their subreaper).
    fn end(mut self) -> Result<GroupEnds, ProbeError> {
        self.stop.take();
        let mut ends = GroupEnds::default();
        for l in &self.loopers {
            match wait_end(*l)? {
                ChildEnd::Killed { signal, .. } if signal == libc::SIGKILL => ends.killed += 1,
                ChildEnd::Exited { code: 0 } => ends.exited += 1,
                _ => ends.other += 1,
            }
        }
        let deadline = mono() + STRAY_WAIT.as_nanos() as u64;
        loop {
            match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) => ends.strays_killed += 1,
                Ok(WaitStatus::StillAlive) if mono() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => ends.strays_other += 1,
                Err(Errno::EINTR) => {}
                Err(_) => break, // ECHILD: nothing left
            }
        }
        Ok(ends)
    }
}

/// Children a looper has forked and not yet reaped, at most. It never blocks on one: a child
/// forked just before a freeze stays frozen in the sibling when its looper is moved out, and a
/// looper waiting for it would look frozen too.
const LOOPER_IN_FLIGHT: u32 = 4;

/// One looper: waits for the go (end of file on `go`), then forks short-lived children, up to
/// [`LOOPER_IN_FLIGHT`] at a time, until end of file on `stop`. Each child counts itself and
/// exits; the looper counts each turn and reaps without waiting.
fn looper(i: usize, counters: &sys::SharedCounters, go: &OwnedFd, stop: &OwnedFd) -> i32 {
    let mut b = [0u8; 1];
    let _ = nix::unistd::read(go, &mut b);
    let mut in_flight = 0u32;
    loop {
        let mut fds = [nix::poll::PollFd::new(stop.as_fd(), nix::poll::PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0 {
            return 0;
        }
        while in_flight > 0 {
            match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => in_flight -= 1,
            }
        }
        // A turn counts whether it forks or waits: a looper whose children are all frozen in
        // the sibling still shows that it runs.
        counters.add(1 + i);
        counters.add(0);
        if in_flight >= LOOPER_IN_FLIGHT {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        match sys::fork_child(|| {
            counters.add(0);
            0
        }) {
            Ok(_) => in_flight += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Forks `n` loopers, has the host move each into the sibling, and releases them.
fn start_group(ch: &mut Channel, n: u32) -> Result<Group, ProbeError> {
    // Orphans of a killed looper are reparented to the probe, which reaps them.
    nix::sys::prctl::set_child_subreaper(true).ctx(|| "prctl(PR_SET_CHILD_SUBREAPER)".into())?;
    let counters = sys::SharedCounters::new(1 + n as usize).ctx(|| "map the shared counters".into())?;
    let (go_r, go_w) = pipe().ctx(|| "create the go pipe".into())?;
    let (stop_r, stop_w) = pipe().ctx(|| "create the stop pipe".into())?;
    let (go_w_raw, stop_w_raw) = (go_w.as_raw_fd(), stop_w.as_raw_fd());
    let mut group = Group { loopers: Vec::new(), counters, stop: Some(stop_w) };
    for i in 0..n as usize {
        let counters = &group.counters;
        let forked = sys::fork_child(|| {
            // Only the probe holds the write ends: end of file means go, and stop.
            let _ = nix::unistd::close(go_w_raw);
            let _ = nix::unistd::close(stop_w_raw);
            looper(i, counters, &go_r, &stop_r)
        });
        match forked {
            Ok(pid) => group.loopers.push(pid),
            Err(e) => {
                group.abort();
                return Err(ProbeError::Sys { what: "fork a looper".into(), source: e });
            }
        }
    }
    drop((go_r, stop_r));
    for pid in group.loopers.clone() {
        if let Err(e) = ask(ch, LimitQuestion::MoveToSibling { pid: pid.as_raw() }) {
            group.abort();
            return Err(e);
        }
    }
    drop(go_w);
    // Measured only once every looper has turned: on a busy machine a released process may wait
    // a while for a CPU.
    let deadline = mono() + GROUP_START_WAIT.as_nanos() as u64;
    while (0..group.loopers.len()).any(|i| group.turns_of(i) == 0) {
        if mono() > deadline {
            let turned = (0..group.loopers.len()).filter(|&i| group.turns_of(i) > 0).count();
            group.abort();
            return Err(ProbeError::Protocol(format!(
                "{turned} of {n} loopers ran within {GROUP_START_WAIT:?} of their release"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(GROUP_SETTLE);
    Ok(group)
}

fn group_action(ch: &mut Channel, q: LimitQuestion) -> Result<GroupAction, ProbeError> {
    match ask(ch, q)? {
        LimitAnswer::Group { action } => Ok(action),
        other => Err(ProbeError::Protocol(format!("expected a group action, got {other:?}"))),
    }
}

fn group_state(ch: &mut Channel) -> Result<GroupState, ProbeError> {
    match ask(ch, LimitQuestion::SiblingState)? {
        LimitAnswer::State { state } => Ok(state),
        other => Err(ProbeError::Protocol(format!("expected the sibling's state, got {other:?}"))),
    }
}

/// Runs `f` on a started group; on an error the group is killed and reaped before returning.
fn with_group<T>(
    ch: &mut Channel,
    n: u32,
    f: impl FnOnce(&mut Channel, &Group) -> Result<T, ProbeError>,
) -> Result<(T, GroupEnds), ProbeError> {
    let group = start_group(ch, n)?;
    match f(ch, &group) {
        Ok(t) => Ok((t, group.end()?)),
        Err(e) => {
            group.abort();
            Err(e)
        }
    }
}

fn kill_group(ch: &mut Channel, loopers: u32, wait_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let ((activity_before, activity_at_answer, kill), ends) = with_group(ch, loopers, |ch, g| {
        let before = g.all();
        let kill = group_action(ch, LimitQuestion::SiblingKill { wait_ms })?;
        Ok((before, g.all(), kill))
    })?;
    Ok(ExerciseReport::KillGroup { loopers, activity_before, activity_at_answer, kill, ends })
}

/// How long a phase in which the group should run may be extended until it shows a turn: on a
/// busy machine a runnable looper can wait for a CPU longer than the hold (seen at a load of 20 on
/// 2 CPUs: a migrant moved out of the frozen cgroup made no turn in 300 ms). A phase in which it
/// should be stopped keeps the plain hold, so the extension can only show a run, never hide one.
const RUN_SHOWS_WITHIN: Duration = Duration::from_secs(5);

fn freeze_group(ch: &mut Channel, loopers: u32, hold_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let hold = Duration::from_millis(u64::from(hold_ms));
    // The turns `count` grows by over the hold; where `should_run`, until the first turn if the
    // hold saw none (up to RUN_SHOWS_WITHIN).
    let show_run = |count: &dyn Fn() -> u64, from: u64| {
        let until = Instant::now() + RUN_SHOWS_WITHIN;
        while count() == from && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let over_hold = |count: &dyn Fn() -> u64, should_run: bool| {
        let c0 = count();
        std::thread::sleep(hold);
        if should_run {
            show_run(count, c0);
        }
        count() - c0
    };
    let (mut report, group_ends) = with_group(ch, loopers, |ch, g| {
        let migrant = *g.loopers.first().ok_or_else(|| ProbeError::Protocol("a group without loopers".into()))?;
        let others = || (1..g.loopers.len()).map(|i| g.turns_of(i)).sum::<u64>();
        let running = over_hold(&|| g.all(), true);
        let freeze = group_action(ch, LimitQuestion::SiblingFreeze { frozen: true })?;
        let while_frozen = over_hold(&|| g.all(), !freeze.acted);
        let frozen_state = group_state(ch)?;
        ask(ch, LimitQuestion::MoveToCase { pid: migrant.as_raw() })?;
        // The others over the migrant's whole time out (which may be extended).
        let o0 = others();
        let migrant_out = over_hold(&|| g.turns_of(0), true);
        if !freeze.acted {
            show_run(&others, o0);
        }
        let others_while_out = others() - o0;
        let out_state = group_state(ch)?;
        ask(ch, LimitQuestion::MoveToSibling { pid: migrant.as_raw() })?;
        let back = group_action(ch, LimitQuestion::SiblingFreeze { frozen: true })?;
        let migrant_back = over_hold(&|| g.turns_of(0), !back.acted);
        let thaw = group_action(ch, LimitQuestion::SiblingFreeze { frozen: false })?;
        let after_thaw = over_hold(&|| g.all(), true);
        Ok(ExerciseReport::FreezeGroup {
            loopers,
            hold_ms,
            hold: FrozenHold { running, freeze, while_frozen, frozen_state, thaw, after_thaw },
            migration: Migration { migrant_out, others_while_out, out_state, back, migrant_back },
            ends: GroupEnds::default(),
        })
    })?;
    if let ExerciseReport::FreezeGroup { ends, .. } = &mut report {
        *ends = group_ends;
    }
    Ok(report)
}

// ---- cgroup2 memory: memory.high on page cache, memory.oom.group ----

fn memory_counters(ch: &mut Channel, sibling: bool) -> Result<MemoryCounters, ProbeError> {
    match ask(ch, LimitQuestion::ReadMemory { sibling })? {
        LimitAnswer::Memory { counters } => Ok(*counters),
        other => Err(ProbeError::Protocol(format!("expected memory counters, got {other:?}"))),
    }
}

fn cache_read(ch: &mut Channel, device: &str, bytes: u64, block: u32) -> Result<ExerciseReport, ProbeError> {
    let fd = open(device, OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty()).ctx(|| format!("open {device}"))?;
    let mut buf = vec![0u8; block.max(PAGE as u32) as usize];
    let before = memory_counters(ch, false)?;
    let t0 = mono();
    let (mut read, mut error) = (0u64, None);
    while read < bytes {
        let want = buf.len().min((bytes - read) as usize);
        match nix::sys::uio::pread(&fd, &mut buf[..want], read as i64) {
            Ok(0) => {
                error = Some(SysResult::from(Err::<(), _>(Errno::ENOSPC)));
                break;
            }
            Ok(n) => read += n as u64,
            Err(Errno::EINTR) => {}
            Err(e) => {
                error = Some(SysResult::from(Err::<(), _>(e)));
                break;
            }
        }
    }
    let wall_ns = mono() - t0;
    let after = memory_counters(ch, false)?;
    Ok(ExerciseReport::CacheRead { read, wall_ns, error, before, after })
}

/// The OOM group: `members` waiting children and an allocator, all moved before the allocation
/// starts, by the host into the case's sibling, or with `subtree` (`child_dir`, `other_dir`: two
/// children of the sibling) by the probe itself: the first member into `other_dir`, the others
/// and the allocator into `child_dir`.
fn oom_group(
    ch: &mut Channel,
    members: u32,
    target: u64,
    step: u64,
    subtree: Option<(&str, &str)>,
) -> Result<ExerciseReport, ProbeError> {
    // The members wait for end of file on `release`; the allocator for end of file on `go`.
    let (release_r, release_w) = pipe().ctx(|| "create the release pipe".into())?;
    let (go_r, go_w) = pipe().ctx(|| "create the go pipe".into())?;
    let (progress_r, progress_w) = pipe().ctx(|| "create the progress pipe".into())?;
    // Each child closes the write ends it must not hold: end of file comes only when the probe
    // (release, go) or the allocator (progress) closes its own.
    let (release_raw, go_raw, progress_raw) = (release_w.as_raw_fd(), go_w.as_raw_fd(), progress_w.as_raw_fd());
    let mut kids: Vec<Pid> = Vec::new();
    let kill_all = |kids: &[Pid]| {
        for k in kids {
            let _ = kill(*k, Signal::SIGKILL);
            let _ = wait_end(*k);
        }
    };
    for _ in 0..members {
        let forked = sys::fork_child(|| {
            let _ = nix::unistd::close(release_raw);
            let _ = nix::unistd::close(go_raw);
            let _ = nix::unistd::close(progress_raw);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&release_r, &mut b);
            0
        });
        match forked {
            Ok(k) => kids.push(k),
            Err(e) => {
                kill_all(&kids);
                return Err(ProbeError::Sys { what: "fork a member".into(), source: e });
            }
        }
    }
    let allocator = sys::fork_child(|| {
        let _ = nix::unistd::close(release_raw);
        let _ = nix::unistd::close(go_raw);
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(&go_r, &mut b);
        touch_memory(target, step.max(PAGE as u64), &progress_w)
    });
    let allocator = match allocator {
        Ok(a) => a,
        Err(e) => {
            kill_all(&kids);
            return Err(ProbeError::Sys { what: "fork the allocator".into(), source: e });
        }
    };
    drop((release_r, go_r, progress_w));
    let mut moved = Ok(());
    for (i, k) in kids.iter().chain([&allocator]).enumerate() {
        moved = match subtree {
            None => ask(ch, LimitQuestion::MoveToSibling { pid: k.as_raw() }).map(drop),
            Some((child, other)) => {
                let dir = if i == 0 && !kids.is_empty() { other } else { child };
                let procs = format!("{dir}/cgroup.procs");
                std::fs::write(&procs, k.as_raw().to_string()).ctx(|| format!("write {k} to {procs}"))
            }
        };
        if moved.is_err() {
            break;
        }
    }
    let before = moved.and_then(|()| memory_counters(ch, true));
    let before = match before {
        Ok(b) => b,
        Err(e) => {
            kill_all(&kids);
            kill_all(&[allocator]);
            return Err(e);
        }
    };
    drop(go_w);
    let touched = read_u64s(progress_r).last().copied().unwrap_or(0);
    let allocator_end = wait_end(allocator)?;
    // A group kill signals every member before the victim's death can be seen here: reading the
    // counters and releasing the members only now cannot save one.
    let after = memory_counters(ch, true);
    drop(release_w);
    let (mut members_killed, mut members_exited, mut members_other) = (0, 0, 0);
    for k in &kids {
        match wait_end(*k)? {
            ChildEnd::Killed { signal, .. } if signal == libc::SIGKILL => members_killed += 1,
            ChildEnd::Exited { code: 0 } => members_exited += 1,
            _ => members_other += 1,
        }
    }
    Ok(ExerciseReport::OomGroup {
        members,
        touched,
        allocator: allocator_end,
        members_killed,
        members_exited,
        members_other,
        before,
        after: after?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_diag_dump_ends_the_scan() {
        let mut data = vec![0u8; 16];
        data[0..4].copy_from_slice(&400u32.to_ne_bytes());
        assert!(matches!(find_classid(&data, 80), DiagScan::Done));
        assert!(matches!(find_classid(&[], 80), DiagScan::More));
    }

    /// Runs against this machine's kernel: any process may list its own sockets.
    #[test]
    fn sock_diag_finds_a_socket_of_our_own() {
        match net_classid().unwrap() {
            ExerciseReport::NetClassid { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}
