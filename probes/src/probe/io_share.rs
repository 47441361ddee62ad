//! The io.weight exercise ([`Exercise::IoShare`](crate::wire::Exercise::IoShare)): two groups of
//! O_DIRECT readers of one device, one in the case's cgroup and one the host moves into its
//! sibling, all reading at once; what each group read is counted in time buckets, so that the
//! two are compared over the span in which every reader of both was reading.
//!
//! What this module must never do: judge, or leave a reader behind (every one is reaped, killed
//! first on an error).

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, pipe, write};

use super::channel::Channel;
use super::error::{Context, ProbeError};
use super::limits::{IO_READERS, ReadSpan, ask, io_read_one, mono, read_u64s, wait_end};
use crate::sys;
use crate::wire::{ExerciseReport, IO_SHARE_BUCKET_NS, LimitQuestion, SysResult};

/// The words of a reader's record before its buckets: its side (0 the case's, 1 the sibling's),
/// when its first read was issued and its last returned, the errno that stopped it (0: none), the
/// bytes it read in all.
const HEADER_WORDS: usize = 5;

/// A reader's record is one write(2) to a pipe, atomic below PIPE_BUF (4096 bytes on Linux), so
/// that records do not interleave: the buckets it can hold.
const MAX_BUCKETS: usize = 4096 / 8 - HEADER_WORDS;

/// Runs the readers for `window_ms` and counts what each side read while all were reading.
pub fn io_share(ch: &mut Channel, device: &str, block: u32, window_ms: u32) -> Result<ExerciseReport, ProbeError> {
    let buckets = ((u64::from(window_ms) * 1_000_000 / IO_SHARE_BUCKET_NS) as usize + 2).min(MAX_BUCKETS);
    let readers = 2 * IO_READERS;
    let (go_r, go_w) = pipe().ctx(|| "create the start pipe".into())?;
    let (res_r, res_w) = pipe().ctx(|| "create the result pipe".into())?;
    let go_w_raw = go_w.as_raw_fd();
    let mut kids: Vec<Pid> = Vec::new();
    let abort = |kids: &[Pid]| {
        for k in kids {
            let _ = kill(*k, Signal::SIGKILL);
            let _ = wait_end(*k);
        }
    };
    for k in 0..readers {
        let forked = sys::fork_child(|| {
            // Only the probe holds the start pipe's write end: end of file means it gave up.
            let _ = nix::unistd::close(go_w_raw);
            let mut b = [0u8; 16];
            if nix::unistd::read(&go_r, &mut b) != Ok(16) {
                return 2;
            }
            let t0 = u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
            let end = u64::from_ne_bytes(b[8..].try_into().expect("8 bytes"));
            let mut counts = vec![0u64; buckets];
            let mut span = ReadSpan::default();
            let mut count = |bytes: u64, at: u64| {
                let i = ((at.saturating_sub(t0) / IO_SHARE_BUCKET_NS) as usize).min(buckets - 1);
                counts[i] += bytes;
            };
            let (total, errno) = match io_read_one(device, block, end, (k, readers), &mut span, &mut count) {
                Ok(b) => (b, 0),
                Err((b, e)) => (b, e as u64),
            };
            let mut rec = vec![u64::from(k >= IO_READERS), span.first, span.last, errno, total];
            rec.extend_from_slice(&counts);
            let bytes: Vec<u8> = rec.iter().flat_map(|v| v.to_ne_bytes()).collect();
            if write(&res_w, &bytes) == Ok(bytes.len()) { 0 } else { 3 }
        });
        match forked {
            Ok(pid) => kids.push(pid),
            Err(e) => {
                abort(&kids);
                return Err(ProbeError::Sys { what: "fork a reader".into(), source: e });
            }
        }
    }
    drop((go_r, res_w));
    for pid in &kids[IO_READERS as usize..] {
        if let Err(e) = ask(ch, LimitQuestion::MoveToSibling { pid: pid.as_raw() }) {
            abort(&kids);
            return Err(e);
        }
    }
    let t0 = mono();
    let end = t0 + u64::from(window_ms) * 1_000_000;
    let go: Vec<u8> = (0..readers).flat_map(|_| [t0.to_ne_bytes(), end.to_ne_bytes()].concat()).collect();
    if write(&go_w, &go) != Ok(go.len()) {
        abort(&kids);
        return Err(ProbeError::Protocol("the readers' start could not be written".into()));
    }
    drop(go_w);
    let words = read_u64s(res_r);
    for k in kids {
        wait_end(k)?;
    }
    let records: Vec<&[u64]> = words.chunks_exact(HEADER_WORDS + buckets).collect();
    if records.len() != readers as usize || words.len() % (HEADER_WORDS + buckets) != 0 {
        return Err(ProbeError::Protocol(format!("{} of {readers} readers reported", records.len())));
    }
    Ok(tally(&records, t0, buckets))
}

/// The report from the readers' records: each side's bytes in the whole buckets that lie within
/// the span every reader was reading (from the last first read to the first last one).
fn tally(records: &[&[u64]], t0: u64, buckets: usize) -> ExerciseReport {
    let all_started = records.iter().map(|r| r[1]).max().unwrap_or(t0);
    let first_done = records.iter().map(|r| r[2]).min().unwrap_or(t0);
    let last = records.iter().map(|r| r[2]).max().unwrap_or(t0);
    // The last bucket also holds whatever came after the window: never a whole one.
    let lo = all_started.saturating_sub(t0).div_ceil(IO_SHARE_BUCKET_NS) as usize;
    let hi = ((first_done.saturating_sub(t0) / IO_SHARE_BUCKET_NS) as usize).min(buckets - 1);
    let side = |s: u64, f: &dyn Fn(&[u64]) -> u64| records.iter().filter(|r| r[0] == s).map(|r| f(r)).sum::<u64>();
    let within = |r: &[u64]| if hi > lo { r[HEADER_WORDS + lo..HEADER_WORDS + hi].iter().sum() } else { 0 };
    let error = records.iter().find(|r| r[3] != 0).map(|r| SysResult::from(Err::<(), _>(Errno::from_raw(r[3] as i32))));
    ExerciseReport::IoShare {
        mine_bytes: side(0, &within),
        sibling_bytes: side(1, &within),
        span_ns: hi.saturating_sub(lo) as u64 * IO_SHARE_BUCKET_NS,
        wall_ns: last.saturating_sub(t0),
        mine_total: side(0, &|r| r[4]),
        sibling_total: side(1, &|r| r[4]),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the buckets wholly inside the span every reader read count, for both sides alike.
    #[test]
    fn only_whole_buckets_in_the_common_span_count() {
        const MS: u64 = 1_000_000;
        let t0 = 1000 * MS;
        // Side 0 started at 5 ms, side 1 at 12 ms; they ended at 48 and 55 ms: buckets 2 to 3.
        let mine = [0, t0 + 5 * MS, t0 + 48 * MS, 0, 60, 10, 10, 10, 10, 10, 10];
        let theirs = [1, t0 + 12 * MS, t0 + 55 * MS, 0, 12, 1, 2, 3, 3, 2, 1];
        let r = tally(&[&mine, &theirs], t0, 6);
        match r {
            ExerciseReport::IoShare { mine_bytes, sibling_bytes, span_ns, mine_total, .. } => {
                assert_eq!((mine_bytes, sibling_bytes, span_ns, mine_total), (20, 6, 20 * MS, 60));
            }
            other => panic!("{other:?}"),
        }
    }
}
