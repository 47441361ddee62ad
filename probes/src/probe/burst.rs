//! The cpu.max.burst exercise ([`Exercise::CpuBurst`](crate::wire::Exercise::CpuBurst)): find the
//! group's cpu.max period boundaries from a throttle's end, idle a few periods, then burn for one
//! period from just after a boundary to just before the next, and check that the burn ended in a
//! throttle that ended on the planned boundary; an attempt that did not is redone.
//!
//! A spinning probe is off the CPU for long only when throttled (the case's cpu.weight 10000
//! keeps other tasks' turns short), and a throttle ends at a period boundary, where the refill
//! lets the group run again. Both can be mistaken under load: a throttle's end seen late (the
//! probe waited for a CPU after the refill) puts the boundary late, and the burn's window then
//! spans two periods' budgets. So an alignment is refused when its gap is longer than a throttle
//! can last, and a burn is kept only when its closing throttle ends on the planned boundary. And
//! on a virtual machine the hypervisor may take the CPU from the probe within the window without
//! any throttle (steal): a burn that lost time so is redone too ([`cpu_burst_disturbed`]).
//!
//! What this module must never do: judge (the report carries the end check's figures; the host
//! judges them).

use std::time::Duration;

use super::error::ProbeError;
use super::limits::{mono, pin, process_cpu};
use crate::wire::{
    CPU_BURST_END_THROTTLE_NS, CPU_BURST_MARGIN_NS, ExerciseReport, SysResult, cpu_burst_disturbed,
    cpu_burst_on_boundary,
};

/// How much longer than `period − quota` a throttle may hold the probe off the CPU. A throttle
/// starts once the group's runtime is spent, seen at the next tick (update_curr runs from the tick
/// for a task that never sleeps): the overrun, up to a tick (10 ms at HZ=100, the coarsest), is
/// repaid from the next period's quota (distribute_cfs_runtime gives a throttled runqueue its
/// deficit first), so that period's throttle starts up to a tick early. And its end is seen up to
/// [`CPU_BURST_MARGIN_NS`] late: the unthrottled probe must be picked again.
const THROTTLE_OVERRUN_NS: u64 = 10_000_000;

/// Alignments tried before the last one is reported as it is (the host refuses to judge it): one
/// takes some 0.6 s (a few periods to align, 3 idle, the burn and its closing throttle), so six
/// ride out a few seconds of a hypervisor's steal.
const ATTEMPTS: u32 = 6;

/// Periods within which an alignment must find a throttle.
const ALIGN_PERIODS: u64 = 20;

/// Runs the exercise: up to [`ATTEMPTS`] alignments, each with its burn.
pub fn cpu_burst(cpu: u32, quota_us: u64, period_us: u64, idle_periods: u32) -> Result<ExerciseReport, ProbeError> {
    let pinned = pin(cpu);
    let period = period_us.max(1) * 1000;
    let longest = (period.saturating_sub(quota_us * 1000) + THROTTLE_OVERRUN_NS + CPU_BURST_MARGIN_NS).min(period);
    let mut refused_gaps = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (boundary, aligned_gap_ns) = align(period, longest, &mut refused_gaps)?;
        // Idle: each period's refill adds the quota to the group's budget, up to quota + burst.
        let start_boundary = boundary + (u64::from(idle_periods) + 1) * period;
        let mut report = burn(start_boundary, period);
        let ExerciseReport::CpuBurst {
            pinned: p,
            aligned_gap_ns: a,
            window_ns,
            cpu_ns,
            max_gap_ns,
            end_gap_ns,
            end_offset_ns,
            attempts: n,
            refused_gaps: r,
            ..
        } = &mut report
        else {
            return Ok(report);
        };
        (*p, *a, *n, *r) = (pinned.clone(), aligned_gap_ns, attempts, refused_gaps);
        let kept = cpu_burst_on_boundary(*end_gap_ns, *end_offset_ns)
            && !cpu_burst_disturbed(*window_ns, *cpu_ns, *max_gap_ns);
        if kept || attempts == ATTEMPTS {
            return Ok(report);
        }
    }
}

/// Spins until a gap of a quarter period up to `longest` ends: a throttle's end, a boundary.
/// Longer gaps are counted in `refused` and passed over.
fn align(period: u64, longest: u64, refused: &mut u32) -> Result<(u64, u64), ProbeError> {
    let throttle_min = period / 4;
    let give_up = mono() + ALIGN_PERIODS * period;
    let mut last = mono();
    loop {
        let t = mono();
        let gap = t - last;
        if gap >= throttle_min {
            if gap <= longest {
                return Ok((t, gap));
            }
            *refused += 1;
        }
        if t > give_up {
            return Err(ProbeError::Protocol(format!(
                "no throttle of {} to {} ms in {ALIGN_PERIODS} periods of {} ms ({} longer ones refused): the group \
                 has no cpu.max to align to",
                throttle_min / 1_000_000,
                longest / 1_000_000,
                period / 1_000_000,
                refused
            )));
        }
        last = t;
    }
}

/// Sleeps until just after `start_boundary`, burns until just before the next boundary, then
/// follows the group to its next throttle's end (the one that holds the window's end when the
/// budget was spent in it) and places that end against the planned boundaries. The report's
/// alignment and attempt fields are left for the caller.
fn burn(start_boundary: u64, period: u64) -> ExerciseReport {
    let (start, end) = (start_boundary + CPU_BURST_MARGIN_NS, start_boundary + period - CPU_BURST_MARGIN_NS);
    std::thread::sleep(Duration::from_nanos(start.saturating_sub(mono())));
    let (t0, c0) = (mono(), process_cpu());
    let (mut last, mut max_gap_ns, mut gap) = (t0, 0, 0);
    while last < end {
        let t = mono();
        gap = t - last;
        max_gap_ns = max_gap_ns.max(gap);
        last = t;
    }
    let (cpu_ns, window_ns) = (process_cpu() - c0, last - t0);
    // No throttle across the window's end: the next one, within two periods.
    let give_up = last + 2 * period;
    while gap < CPU_BURST_END_THROTTLE_NS && last < give_up {
        let t = mono();
        gap = t - last;
        last = t;
    }
    ExerciseReport::CpuBurst {
        pinned: SysResult::Ok,
        aligned_gap_ns: 0,
        late_ns: t0.saturating_sub(start),
        window_ns,
        cpu_ns,
        max_gap_ns,
        end_gap_ns: gap,
        end_offset_ns: grid_offset(last - start_boundary, period),
        attempts: 0,
        refused_gaps: 0,
    }
}

/// How far `since` (nanoseconds after a planned boundary) lies from the nearest planned boundary
/// (negative: before it).
fn grid_offset(since: u64, period: u64) -> i64 {
    let off = since % period;
    if off > period / 2 { off as i64 - period as i64 } else { off as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_taken_from_the_nearest_boundary() {
        let (ms, period) = (1_000_000u64, 100_000_000);
        assert_eq!(grid_offset(102 * ms, period), 2_000_000);
        assert_eq!(grid_offset(75 * ms, period), -25_000_000);
        assert_eq!(grid_offset(291 * ms, period), -9_000_000);
    }
}
