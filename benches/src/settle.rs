//! Waiting for a quiet machine before measuring.
//!
//! A benchmark measures the machine as a whole: anything else running, or work the kernel still
//! does for an earlier workload (RCU callbacks, dying cgroups, deferred frees in kworkers), makes
//! it read slow. So a benchmark binary first waits until the machine is idle: the busy share of
//! all CPUs in /proc/stat (everything but idle and iowait) below [`QUIET`] over [`WINDOW`], twice
//! in a row (about a second on an idle machine, whose busy share here is 0.3%). This process
//! sleeps meanwhile, so what it sees is everybody else.
//!
//! Seen on the 2-CPU development VM: once, a calibration run started right after a full
//! `isoprobe run` read fork + exit + wait at 142.8 µs against 93.1 µs half a minute later (three
//! later tries did not repeat it); and between whole benchmark runs, one group at a time moved as
//! a block by up to 2× while the others stayed put. The wait removes the first cause where it is
//! visible as CPU time; the second is the VM's own speed, which no guest can wait out.

use std::fs;
use std::time::{Duration, Instant};

/// The busy share of all CPUs below which the machine counts as quiet.
pub const QUIET: f64 = 0.05;
/// One observation window.
pub const WINDOW: Duration = Duration::from_millis(500);
/// How long to wait at most before measuring anyway (and saying so).
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// (busy, total) jiffies of the `cpu` line of /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

/// The aggregate line: user nice system idle iowait irq softirq steal (guest time is already in
/// user and nice).
pub fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.take(8).map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v.try_into().ok()?;
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// How the wait ended.
#[derive(Debug, Clone, Copy)]
pub enum Settled {
    /// Quiet after this long.
    Quiet(Duration),
    /// Still this busy after [`MAX_WAIT`].
    Busy(f64),
    /// /proc/stat could not be read.
    Unknown,
}

/// Waits until the machine is quiet (see the module docs).
pub fn wait_quiet() -> Settled {
    let start = Instant::now();
    let Some(mut last) = cpu_jiffies() else { return Settled::Unknown };
    let mut quiet_windows = 0;
    let mut share = 1.0;
    while quiet_windows < 2 {
        if start.elapsed() > MAX_WAIT {
            return Settled::Busy(share);
        }
        std::thread::sleep(WINDOW);
        let Some(now) = cpu_jiffies() else { return Settled::Unknown };
        let (busy, total) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
        share = if total == 0 { 0.0 } else { busy as f64 / total as f64 };
        quiet_windows = if share < QUIET { quiet_windows + 1 } else { 0 };
        last = now;
    }
    Settled::Quiet(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_line;

    #[test]
    fn the_aggregate_line_splits_into_busy_and_total() {
        let line = "cpu  973554 349 300483 740052 60121 0 8812 3917 0 0";
        let busy = 973554 + 349 + 300483 + 8812 + 3917;
        assert_eq!(parse_cpu_line(line), Some((busy, busy + 740052 + 60121)));
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8 0 0"), None, "a per-CPU line is not the aggregate");
        assert_eq!(parse_cpu_line("cpu 1 2 x"), None);
    }
}
