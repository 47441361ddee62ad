//! memory.swap.max with swap present (cgroup-v2.rst, "Memory Interface Files": memory.swap.max,
//! memory.swap.peak, memory.swap.events): the judge of a memory case whose cgroup may swap
//! `swap` bytes beside its memory.max.
//!
//! The memory exercise's child touches anonymous memory a step at a time past both limits. At
//! memory.max reclaim swaps its pages out (nothing else in the cgroup is reclaimable) until the
//! swap counter reaches memory.swap.max; then reclaim stops scanning anonymous pages at all (the
//! cgroup's swap room, mem_cgroup_get_nr_swap_pages, is 0: can_reclaim_anon_pages), makes no
//! progress, and the memcg OOM killer ends the child. So the child holds about memory.max in memory
//! and memory.swap.max in swap when it is killed, and never more. memory.swap.events `max` counts a
//! swap-out refused by the counter, which happens only when reclaim raced past that check: it is
//! evidence, not a condition (the 6.12 VM counts 0).

use isoprobe_probes::wire::{CgroupReading, ChildEnd};

use super::judge::{MEMORY_CHILD_OVERHEAD, delta, mib, reading_text, verdict};
use crate::verdict::Verdict;

/// How far below memory.swap.max the swap watermark may stay when the OOM kill comes. The swap
/// counter refuses every charge past the limit (mem_cgroup_try_charge_swap has no forced charge),
/// so the watermark never passes it; reclaim stops swapping only once the cgroup's swap room is
/// less than a page, so the counter ends within a page of the limit. The child's mappings are
/// 1 MiB (no transparent huge page fits in one), so a folio is a page; one MiB, the child's step,
/// leaves room for reclaim giving up a few retries early (MAX_RECLAIM_RETRIES) while zram's
/// compression is slow under TCG.
pub const SWAP_FILL_SLACK: u64 = 1 << 20;

/// Judges a memory case with memory.max `limit` and memory.swap.max `swap` (> 0).
pub fn judge(
    (limit, swap): (u64, u64),
    touched: u64,
    child: &ChildEnd,
    before: &CgroupReading,
    after: &CgroupReading,
) -> Verdict {
    let base = before.memory_peak.unwrap_or(0);
    let most = limit + swap;
    // As for memory.max alone (see MEMORY_CHILD_OVERHEAD), less what the cgroup held before the
    // child and the child's own overhead and page tables; the probe's own pages may have gone to
    // swap as well, which only leaves the child more.
    let least = most.saturating_sub(base + MEMORY_CHILD_OVERHEAD + touched / 512);
    let oom = delta(after.memory_oom_kills, before.memory_oom_kills);
    let refused = delta(after.memory_swap_max_events, before.memory_swap_max_events);
    // Without memory.swap.peak (before Linux 6.5) the touched bytes are the evidence alone.
    let killed = matches!(child, ChildEnd::Killed { signal, .. } if *signal == libc::SIGKILL);
    let swap_full = after.memory_swap_peak.is_none_or(|p| p <= swap && p + SWAP_FILL_SLACK >= swap);
    let ok = killed && oom.is_some_and(|n| n >= 1) && swap_full && touched <= most && touched >= least;
    verdict(
        ok,
        format!(
            "OOM kill with {} ≤ touched ≤ {} (memory.max + memory.swap.max), swap peak within {} below {}",
            mib(least),
            mib(most),
            mib(SWAP_FILL_SLACK),
            mib(swap)
        ),
        format!(
            "{child} after touching {}, swap peak {}, OOM kills {oom:?}, swap max events {refused:?}",
            mib(touched),
            after.memory_swap_peak.map(mib).unwrap_or("unknown".into())
        ),
        format!(
            "baseline before the fork {}; before: {}; after: {}",
            mib(base),
            reading_text(before),
            reading_text(after)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn reading(peak: u64, oom: u64, swap_peak: Option<u64>, refused: u64) -> CgroupReading {
        CgroupReading {
            memory_peak: Some(peak),
            memory_oom_kills: Some(oom),
            memory_swap_peak: swap_peak,
            memory_swap_max_events: Some(refused),
            ..Default::default()
        }
    }

    fn killed() -> ChildEnd {
        ChildEnd::Killed { signal: libc::SIGKILL, name: "SIGKILL".into() }
    }

    #[test]
    fn swap_full_then_oom_passes() {
        let before = reading(MIB, 0, Some(0), 0);
        let after = reading(64 * MIB, 1, Some(32 * MIB - 8192), 40);
        assert!(judge((64 * MIB, 32 * MIB), 93 * MIB, &killed(), &before, &after).is_pass());
    }

    #[test]
    fn stopping_at_memory_max_alone_or_swapping_past_the_limit_fails() {
        let before = reading(MIB, 0, Some(0), 0);
        let no_swap = reading(64 * MIB, 1, Some(0), 0);
        assert!(!judge((64 * MIB, 32 * MIB), 62 * MIB, &killed(), &before, &no_swap).is_pass());
        let past = reading(64 * MIB, 1, Some(40 * MIB), 3);
        assert!(!judge((64 * MIB, 32 * MIB), 93 * MIB, &killed(), &before, &past).is_pass());
        let short = reading(64 * MIB, 1, Some(20 * MIB), 0);
        assert!(!judge((64 * MIB, 32 * MIB), 93 * MIB, &killed(), &before, &short).is_pass());
    }
}
