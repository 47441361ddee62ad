//! memory.min / memory.low: the probe's side of a protection case (see the harness's
//! `limits::protect`). A keeper's page cache in the protected cgroup, an unprotected reader's in
//! another (memory.low cases), then a presser's anonymous memory in a third, all under one parent
//! whose memory.max is below their sum and which has no swap; memory.current of each read before
//! and after the pressure.
//!
//! What this module must never do: judge, or leave a child behind (each is waited for before the
//! report is sent; a reader that holds the device ends when the hold pipe closes).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode as FileMode;
use nix::unistd::{Pid, pipe};

use super::error::{Context, ProbeError};
use super::limits::{fork_child, read_u64s, touch_memory, wait_end, write_u64};
use crate::wire::{ChildEnd, Exercise, ExerciseReport, ProtectCounters, SysResult};

const PAGE: u64 = 4096;

/// Where a reader reads: its cgroup, the device, the offset and length, the read size, and how
/// many times it reads the range.
struct Read<'a> {
    dir: &'a str,
    device: &'a str,
    offset: u64,
    bytes: u64,
    block: u32,
    passes: u32,
}

/// Moves the calling process into the cgroup `dir` (writing 0 to its cgroup.procs), so that what
/// it charges from now on is charged there.
fn enter_cgroup(dir: &str) -> Result<(), i32> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("{dir}/cgroup.procs"))
        .and_then(|mut f| std::io::Write::write(&mut f, b"0"))
        .map(drop)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

/// In a forked child: moves into its cgroup, reads its range `passes` times into page cache and
/// writes how many bytes it read in all to `progress`; then keeps the device open until end of
/// file on `hold`: the last close of a block device drops its page cache (blkdev_flush_mapping),
/// so an opener must stay while the pages are measured. Returns 0, or the errno that ended it.
fn read_and_hold(r: &Read<'_>, progress: OwnedFd, hold: BorrowedFd<'_>) -> i32 {
    if let Err(code) = enter_cgroup(r.dir) {
        let _ = write_u64(&progress, 0);
        return code;
    }
    let fd = match open(r.device, OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = write_u64(&progress, 0);
            return e as i32;
        }
    };
    let mut buf = vec![0u8; u64::from(r.block).max(PAGE) as usize];
    let (mut total, mut code) = (0u64, 0);
    'passes: for _ in 0..r.passes {
        let mut read = 0u64;
        while read < r.bytes {
            let want = buf.len().min((r.bytes - read) as usize);
            match nix::sys::uio::pread(&fd, &mut buf[..want], (r.offset + read) as i64) {
                Ok(0) => {
                    code = libc::ENOSPC;
                    break 'passes;
                }
                Ok(n) => read += n as u64,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    code = e as i32;
                    break 'passes;
                }
            }
        }
        total += read;
    }
    drop(buf);
    let _ = write_u64(&progress, total);
    drop(progress);
    let mut b = [0u8; 1];
    let _ = nix::unistd::read(hold, &mut b);
    drop(fd);
    code
}

/// memory.current of the cgroup `dir`.
fn memory_current(dir: &str) -> Result<u64, ProbeError> {
    let path = format!("{dir}/memory.current");
    let text = std::fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
    text.trim().parse().map_err(|_| ProbeError::Protocol(format!("unparsable {path}: {text:?}")))
}

/// The `low` count of the cgroup `dir`'s memory.events.
fn low_events(dir: &str) -> Result<u64, ProbeError> {
    let path = format!("{dir}/memory.events");
    let text = std::fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("low ").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| ProbeError::Protocol(format!("no low count in {path}: {text:?}")))
}

/// The hold pipe: readers wait for end of file on `read`, which comes when the probe closes
/// `write` (each child closes its own copy first).
struct Hold<'a> {
    read: BorrowedFd<'a>,
    write: RawFd,
}

/// A reader started, and the bytes it reported.
fn start_reader(r: &Read<'_>, hold: &Hold<'_>) -> Result<(Pid, u64), ProbeError> {
    let (progress_r, progress_w) = pipe().ctx(|| "create a reader's progress pipe".into())?;
    let child = fork_child(|| {
        let _ = nix::unistd::close(hold.write);
        read_and_hold(r, progress_w, hold.read)
    })?;
    Ok((child, read_u64s(progress_r).last().copied().unwrap_or(0)))
}

/// The first of `ends` that is not a clean exit, as the report's error.
fn first_error(ends: &[ChildEnd]) -> Option<SysResult> {
    ends.iter().find_map(|e| match e {
        ChildEnd::Exited { code: 0 } => None,
        ChildEnd::Exited { code } => Some(SysResult::from(Err::<(), _>(Errno::from_raw(*code)))),
        ChildEnd::Killed { signal, name } => Some(SysResult::Err { errno: -signal, name: format!("killed by {name}") }),
    })
}

/// Runs a [`Exercise::MemoryProtect`].
pub fn run(ex: &Exercise) -> Result<ExerciseReport, ProbeError> {
    let Exercise::MemoryProtect { device, kept, cache, anon, block, protected_dir, cache_dir, pressure_dir } = ex
    else {
        return Err(ProbeError::Protocol(format!("not a memory protection exercise: {ex:?}")));
    };
    // The readers stay, the device open, until `hold_w` closes: their pages stay in the page
    // cache until measured. The presser's copy of `hold_w` goes when it ends, before that.
    let (hold_r, hold_w) = pipe().ctx(|| "create the hold pipe".into())?;
    let mut readers: Vec<Pid> = Vec::new();
    let result = stage_and_press(
        device,
        (*kept, *cache, *anon, *block),
        (protected_dir, cache_dir, pressure_dir),
        &Hold { read: hold_r.as_fd(), write: hold_w.as_raw_fd() },
        &mut readers,
    );
    // Closing the hold releases the readers; the presser already ended.
    drop(hold_w);
    drop(hold_r);
    let mut ends = Vec::new();
    for r in readers {
        ends.push(wait_end(r)?);
    }
    let mut report = result?;
    if let ExerciseReport::MemoryProtect { error, .. } = &mut report {
        *error = error.take().or_else(|| first_error(&ends));
    }
    Ok(report)
}

/// The keeper, the cache reader and the presser, and the counters before and after; the
/// readers' pids go to `readers` for the caller to wait for.
fn stage_and_press(
    device: &str,
    (kept, cache, anon, block): (u64, u64, u64, u32),
    (protected, cache_dir, pressing): (&str, &str, &str),
    hold: &Hold<'_>,
    readers: &mut Vec<Pid>,
) -> Result<ExerciseReport, ProbeError> {
    let keeper = Read { dir: protected, device, offset: 0, bytes: kept, block, passes: 1 };
    let (pid, kept_read) = start_reader(&keeper, hold)?;
    readers.push(pid);
    // Read twice, the cache's pages are recently used; the keeper's, read once before, are not.
    let mut cache_read = 0;
    if cache > 0 {
        let offset = kept.next_multiple_of(1 << 20);
        let reader = Read { dir: cache_dir, device, offset, bytes: cache, block, passes: 2 };
        let (pid, read) = start_reader(&reader, hold)?;
        readers.push(pid);
        cache_read = read;
    }
    let protected_before = memory_current(protected)?;
    let cache_before = if cache > 0 { memory_current(cache_dir)? } else { 0 };
    let (progress_r, progress_w) = pipe().ctx(|| "create the presser's progress pipe".into())?;
    let presser = fork_child(|| match enter_cgroup(pressing) {
        Ok(()) => touch_memory(anon, 1 << 20, &progress_w),
        Err(code) => code,
    })?;
    drop(progress_w);
    let anon_touched = read_u64s(progress_r).last().copied().unwrap_or(0);
    let presser = wait_end(presser)?;
    Ok(ExerciseReport::MemoryProtect {
        kept_read,
        cache_read,
        error: None,
        anon_touched,
        presser,
        counters: ProtectCounters {
            protected_before,
            protected_after: memory_current(protected)?,
            cache_before,
            cache_after: if cache > 0 { memory_current(cache_dir)? } else { 0 },
            pressure_after: memory_current(pressing)?,
            protected_low_events: low_events(protected)?,
        },
    })
}
