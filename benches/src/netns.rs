//! When is the kernel's network-namespace cleanup idle?
//!
//! A network namespace is not freed when its last reference goes: `__put_net` queues it on the
//! `netns` workqueue, and `cleanup_net` (net/core/net_namespace.c) later runs the pernet exit
//! handlers, waits for RCU and frees it, in batches. Creating namespaces faster than they are
//! cleaned up piles up dying ones, and every later measurement then competes with the cleanup.
//!
//! The signal used here is the kernel's own: a kworker's comm (`/proc/<pid>/comm`) ends with
//! `+<workqueue>` while it executes an item of that workqueue and `-<workqueue>` after (see
//! `wq_worker_comm` in kernel/workqueue.c). So "cleanup busy" is "some kworker's comm ends with
//! `+netns`", and "idle" is [`CONFIRM_POLLS`] polls in a row, [`POLL_GAP`] apart, without one (the
//! gap bridges the moment between queueing and a worker picking the item up). The `R-netns`
//! rescuer never shows `+`.

use std::fs;
use std::time::{Duration, Instant};

/// Polls in a row that must find no `+netns` worker before the cleanup counts as idle.
pub const CONFIRM_POLLS: u32 = 5;
/// The gap between confirmation polls.
pub const POLL_GAP: Duration = Duration::from_millis(2);
/// How long the list of kworkers is trusted before /proc is scanned again (workers come and go).
const RESCAN: Duration = Duration::from_millis(20);

/// Watches the kworkers for the `netns` workqueue.
#[derive(Debug)]
pub struct NetnsWatch {
    comm_paths: Vec<String>,
    scanned: Option<Instant>,
}

impl Default for NetnsWatch {
    fn default() -> Self {
        NetnsWatch::new()
    }
}

/// Whether a kworker comm says it is executing the `netns` workqueue right now.
pub fn comm_busy_with_netns(comm: &str) -> bool {
    comm.trim_end().ends_with("+netns")
}

impl NetnsWatch {
    pub fn new() -> NetnsWatch {
        NetnsWatch { comm_paths: Vec::new(), scanned: None }
    }

    fn rescan(&mut self) {
        self.comm_paths.clear();
        if let Ok(dir) = fs::read_dir("/proc") {
            for e in dir.flatten() {
                let name = e.file_name();
                let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else { continue };
                let path = format!("/proc/{pid}/comm");
                if fs::read_to_string(&path).is_ok_and(|c| c.starts_with("kworker/")) {
                    self.comm_paths.push(path);
                }
            }
        }
        self.scanned = Some(Instant::now());
    }

    /// Whether a kworker is executing netns cleanup right now.
    pub fn busy(&mut self) -> bool {
        if self.scanned.is_none_or(|t| t.elapsed() > RESCAN) {
            self.rescan();
        }
        self.comm_paths.iter().any(|p| fs::read_to_string(p).is_ok_and(|c| comm_busy_with_netns(&c)))
    }

    /// Waits until the cleanup is idle (see the module docs); returns how long that took, or an
    /// error after `timeout`.
    pub fn wait_idle(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let mut quiet = 0;
        while quiet < CONFIRM_POLLS {
            if start.elapsed() > timeout {
                return Err(format!("the netns cleanup was still busy after {timeout:?}"));
            }
            quiet = if self.busy() { 0 } else { quiet + 1 };
            std::thread::sleep(POLL_GAP);
        }
        Ok(start.elapsed())
    }

    /// Runs `release` (which drops the last references of one or more network namespaces) and
    /// returns the time from its start until the cleanup it started has finished: the first poll
    /// that finds no `+netns` worker after one was seen. Polls back to back (tens of microseconds
    /// apart), so the result has that resolution. Call it with the cleanup idle.
    pub fn time_release(&mut self, release: impl FnOnce()) -> Result<Duration, String> {
        self.rescan();
        let t0 = Instant::now();
        release();
        let mut seen_busy = false;
        loop {
            let busy = self.busy();
            if busy {
                seen_busy = true;
            } else if seen_busy {
                return Ok(t0.elapsed());
            }
            if !seen_busy && t0.elapsed() > Duration::from_secs(2) {
                return Err("no kworker ran netns cleanup within 2 s of the release".into());
            }
            if t0.elapsed() > Duration::from_secs(120) {
                return Err("netns cleanup still busy 120 s after the release".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_worker_executing_netns_counts_as_busy() {
        assert!(comm_busy_with_netns("kworker/u8:2+netns\n"));
        assert!(!comm_busy_with_netns("kworker/u8:2-netns\n"));
        assert!(!comm_busy_with_netns("kworker/R-netns\n"));
        assert!(!comm_busy_with_netns("kworker/0:1+events\n"));
    }
}
