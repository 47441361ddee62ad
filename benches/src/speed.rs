//! The CPU's own speed, read next to every sample, so that samples taken while the (virtual) CPU
//! ran slow can be left out.
//!
//! Why. A virtual machine shares its physical cores with other guests. On the 2-CPU development
//! VM the benchmark CPU switches between two speeds, every few hundred milliseconds to tens of
//! seconds, with no steal time in /proc/stat and nothing else running in the guest: a null system
//! call takes 164.6 ns in the fast state and 205–240 ns in the slow one, and fork + exit + wait
//! 106 µs against 131–161 µs (`phase`-style probe, 10 minutes, 128 readings: 18% of the time
//! fast). Whole benchmark groups moved by 1.4× to 2× between two runs of the same build that way,
//! and no guest can wait such a phase out: it can only notice it.
//!
//! How. Right before each sample of a fixed-count case, [`probe`] times a few null system calls
//! (about 15 µs, untimed for the case). A sample counts as fast when that reading is within
//! [`SLOW_FACTOR`] of the fastest reading seen on this CPU since boot ([`Speed::best`],
//! kept in `target/isoprobe/bench-speed.json` so that every bench binary of a run, and later runs
//! on the same boot, share it). A case's estimate then uses its fast samples only, if it has
//! enough of them ([`select`]); a case short of them after its planned rounds is sampled on, in
//! extra rounds of at most 30 s per group (`run::TOP_UP_BUDGET`); if it is still short, its
//! estimate uses all of its samples and the summary marks the case `contended` (its numbers read
//! slow). The summary also records how many samples were left out.
//! On a machine whose CPU keeps one speed every sample is fast and nothing changes.
//!
//! Only the reading before a sample counts. One taken right after it is disturbed by the sample
//! itself: the child's teardown and the RCU work it queues run on this CPU next. Measured in a
//! full run: 558 of 1000 readings after `clone3_return/mnt` were slow against 480 before it, while
//! for cases without a namespace the two counts differ by a few. Two back-to-back full runs agreed
//! within 10% for 139 of 158 medians when only the reading before counted, 130 with both, and 94
//! with every sample kept (the same pair of runs, replayed from the recorded samples).
//!
//! What the reading is not for: costs that change with the benchmark process itself. Fork and
//! exit copy and tear down the page tables of the process's private memory, so a bench process
//! holding 2.2 MB of freed-but-kept heap read exit to reap 20 µs slower than one holding 244 kB,
//! at the same null-syscall speed. That is kept constant separately (see
//! `isoprobe_harness::sys::primitives::tune_malloc`).
//!
//! `ISOPROBE_BENCH_SPEED=all` keeps every sample (the readings are still taken and counted); quick
//! and test runs, with their 10 to 20 samples per case, always keep every sample.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::primitives;

/// A reading this much above the best one means the CPU ran slow. On the first development VM the
/// two states were 1.25× to 1.45× apart and readings within one state varied by less than 3%, so
/// 1.12 was first chosen. The next VM (same kind, later boot) reads 160–189 ns in its fast state
/// against a best of 153.7 ns, and 190–240 ns in the slow one; what the cases cost follows the
/// state, not the reading within it: clone3 + exit + wait of a uts namespace took 137, 135 and
/// 145 µs in the 160s, 170s and 180s bands and 183–192 µs from 190 ns up (medians per band of
/// one full run). At 1.12 the bench kept 9 188 of the 42 356 samples of a pair of runs that
/// read 1.2× the best or less (a fifth of its fast samples), and the two back-to-back runs
/// agreed within 10% for 46 of 158 medians; replayed from the recorded samples with the same
/// best reading, 47 at 1.12 and 125 at 1.2.
pub const SLOW_FACTOR: f64 = 1.2;

/// Null system calls per timed burst of a probe, and bursts per probe (the fastest counts, so an
/// interrupt in one burst does not mark the CPU slow).
const CALLS: u32 = 32;
const BURSTS: u32 = 3;

/// Nanoseconds per null system call (getppid), the fastest of a few short bursts.
pub fn probe() -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..BURSTS {
        let t = Instant::now();
        for _ in 0..CALLS {
            std::hint::black_box(primitives::getppid_syscall());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(CALLS));
    }
    best
}

/// Whether a reading (ns per null system call) means full speed, given the best reading `best`.
pub fn fast(reading: f64, best: f64) -> bool {
    reading <= best * SLOW_FACTOR
}

/// Which samples of a case its estimate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Indices of the samples to use, in the order they were taken.
    pub kept: Vec<usize>,
    /// Samples taken while the CPU ran slow (left out unless `contended`).
    pub slow: usize,
    /// Too few fast samples: every sample is kept, and the estimate reads slow.
    pub contended: bool,
}

/// The fewest fast samples an estimate may rest on, out of `n`: criterion's minimum of 10, and
/// half the samples up to 20.
pub fn min_fast(n: usize) -> usize {
    (n / 2).clamp(10, 20)
}

/// The samples (by the readings taken before them) a case's estimate uses: the fast ones, if
/// there are at least [`min_fast`] of them; else all (`contended`). With `filter` off every sample
/// is kept and only the count of slow ones is reported.
pub fn select(readings: &[f64], best: f64, filter: bool) -> Selection {
    let fast: Vec<usize> = (0..readings.len()).filter(|&i| fast(readings[i], best)).collect();
    let slow = readings.len() - fast.len();
    let all = || (0..readings.len()).collect();
    if !filter || slow == 0 {
        Selection { kept: all(), slow, contended: false }
    } else if fast.len() >= min_fast(readings.len()) {
        Selection { kept: fast, slow, contended: false }
    } else {
        Selection { kept: all(), slow, contended: true }
    }
}

/// The best reading seen on one CPU during one boot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Stored {
    boot_id: String,
    cpu: Option<usize>,
    best_ns: f64,
}

/// The speed reference of this bench binary.
#[derive(Debug)]
pub struct Speed {
    best: f64,
    filter: bool,
    file: PathBuf,
    boot_id: String,
    cpu: Option<usize>,
}

impl Speed {
    /// The reference of `cpu` from `target/isoprobe/bench-speed.json` if it was recorded during
    /// this boot, else none yet. The filter is on when `filter` and not turned off by
    /// `ISOPROBE_BENCH_SPEED=all`.
    pub fn load(target: &Path, cpu: Option<usize>, filter: bool) -> Speed {
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_owned();
        let file = target.join("isoprobe").join("bench-speed.json");
        let best = stored_best(&file, &boot_id, cpu).unwrap_or(f64::INFINITY);
        let filter = filter && std::env::var("ISOPROBE_BENCH_SPEED").map_or(true, |v| v != "all");
        Speed { best, filter, file, boot_id, cpu }
    }

    /// The best reading so far (infinite before the first).
    pub fn best(&self) -> f64 {
        self.best
    }

    pub fn filter(&self) -> bool {
        self.filter
    }

    /// Takes a reading and counts it towards the best.
    pub fn read(&mut self) -> f64 {
        let p = probe();
        self.best = self.best.min(p);
        p
    }

    /// Whether the CPU runs at full speed now.
    pub fn fast_now(&mut self) -> bool {
        let p = self.read();
        fast(p, self.best)
    }

    /// Reads the speed every 10 ms for `d`, to learn the best reading before the first sample.
    pub fn learn(&mut self, d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            self.read();
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (untimed, at most `max`) until the CPU runs at full speed; false if it did not.
    pub fn wait_fast(&mut self, max: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.fast_now() {
                return true;
            }
            if start.elapsed() >= max {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Records the best reading for the next binary of the run (keeping a better one another
    /// binary recorded meanwhile).
    pub fn save(&self) -> std::io::Result<()> {
        if !self.best.is_finite() {
            return Ok(());
        }
        let best = stored_best(&self.file, &self.boot_id, self.cpu).map_or(self.best, |b| b.min(self.best));
        let s = Stored { boot_id: self.boot_id.clone(), cpu: self.cpu, best_ns: best };
        if let Some(dir) = self.file.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&self.file, serde_json::to_string_pretty(&s).map_err(std::io::Error::other)?)
    }
}

fn stored_best(file: &Path, boot_id: &str, cpu: Option<usize>) -> Option<f64> {
    let s: Stored = serde_json::from_slice(&fs::read(file).ok()?).ok()?;
    (s.boot_id == boot_id && !boot_id.is_empty() && s.cpu == cpu && s.best_ns.is_finite() && s.best_ns > 0.0)
        .then_some(s.best_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_fast_within_the_factor_of_the_best() {
        assert!(fast(119.0, 100.0));
        assert!(!fast(121.0, 100.0));
        // This VM's states: 160–189 ns fast (176 ns was the commonest fast reading) and 190–240 ns
        // slow, with a best reading of 153.7 ns.
        assert!(fast(176.0, 153.7));
        assert!(!fast(205.0, 153.7));
        assert!(fast(100.0, f64::INFINITY), "everything is fast before the first reading");
    }

    #[test]
    fn slow_samples_are_left_out_when_enough_fast_ones_remain() {
        // 30 samples: 12 slow (140 ns), 18 fast; 18 >= min_fast(30) = 15.
        let readings: Vec<f64> = (0..30).map(|i| if i % 5 < 2 { 140.0 } else { 101.0 }).collect();
        let s = select(&readings, 100.0, true);
        assert_eq!(s.slow, 12);
        assert!(!s.contended);
        assert_eq!(s.kept.len(), 18);
        assert!(s.kept.iter().all(|&i| i % 5 >= 2), "only fast ones kept, in order: {:?}", s.kept);
        assert!(s.kept.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn too_few_fast_samples_keep_everything_and_say_so() {
        let readings: Vec<f64> = (0..100).map(|i| if i < 19 { 100.0 } else { 150.0 }).collect();
        assert_eq!(min_fast(100), 20);
        let s = select(&readings, 100.0, true);
        assert!(s.contended);
        assert_eq!((s.kept.len(), s.slow), (100, 81));
        // Twelve samples (a netns drain case) need ten fast ones: criterion's minimum.
        assert_eq!(min_fast(12), 10);
    }

    #[test]
    fn without_the_filter_every_sample_is_kept_and_the_slow_ones_counted() {
        let readings = [100.0, 150.0, 100.0];
        let s = select(&readings, 100.0, false);
        assert_eq!(s, Selection { kept: vec![0, 1, 2], slow: 1, contended: false });
        let s = select(&readings[..1], 100.0, true);
        assert_eq!(s, Selection { kept: vec![0], slow: 0, contended: false });
    }

    #[test]
    fn the_best_reading_is_kept_per_boot_and_cpu() {
        let dir = std::env::temp_dir().join(format!("isoprobe-speed-test-{}", std::process::id()));
        let mut s = Speed::load(&dir, Some(1), true);
        s.best = 150.0;
        s.save().unwrap();
        let file = dir.join("isoprobe/bench-speed.json");
        assert_eq!(stored_best(&file, &s.boot_id, Some(1)), Some(150.0));
        assert_eq!(stored_best(&file, &s.boot_id, Some(0)), None, "another CPU");
        assert_eq!(stored_best(&file, "another-boot", Some(1)), None, "another boot");
        // A worse reading does not replace a better one.
        s.best = 200.0;
        s.save().unwrap();
        assert_eq!(Speed::load(&dir, Some(1), true).best(), 150.0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_probe_reads_a_plausible_null_syscall_time() {
        let p = probe();
        assert!(p.is_finite() && p > 0.0 && p < 1_000_000.0, "{p} ns");
    }
}
