//! The host's answers to a limit probe's questions: read the counters, hold (freeze) the cgroup,
//! move the competitor into the sibling, count with perf_event.

use std::fs;
use std::time::{Duration, Instant};

use isoprobe_probes::wire::{HostAnswer, LimitAnswer, LimitQuestion};

use super::case::CaseLimits;

/// Answers `ask` for the case's cgroups.
pub fn answer(limits: Option<&CaseLimits>, ask: &LimitQuestion) -> Result<HostAnswer, String> {
    let l = limits.ok_or("a limit question in a case without limits")?;
    let reply = match ask {
        LimitQuestion::Read => LimitAnswer::Reading { reading: cgroups(l)?.read() },
        LimitQuestion::Hold { hold_ms } => hold(l, *hold_ms)?,
        LimitQuestion::MoveToSibling { pid } => {
            let host_pid = host_pid_of(l, *pid)?;
            cgroups(l)?.move_to_sibling(host_pid).map_err(|e| e.to_string())?;
            LimitAnswer::Moved
        }
        LimitQuestion::PerfStart => {
            l.perf_start().map_err(|e| e.to_string())?;
            LimitAnswer::Started
        }
        LimitQuestion::PerfStop => LimitAnswer::PerfCount { ns: l.perf_stop().map_err(|e| e.to_string())? },
    };
    Ok(HostAnswer::Limit { reply })
}

fn cgroups(l: &CaseLimits) -> Result<&crate::cgroup::CaseCgroups, String> {
    l.cgroups().map_err(|e| e.to_string())
}

/// Holds for `hold_ms`, frozen (confirmed by the kernel) when the case freezes, then thaws.
fn hold(l: &CaseLimits, hold_ms: u32) -> Result<LimitAnswer, String> {
    let hold = Duration::from_millis(u64::from(hold_ms));
    if !l.spec.settings.freeze {
        std::thread::sleep(hold);
        return Ok(LimitAnswer::Held { frozen: false, held_ns: hold.as_nanos() as u64 });
    }
    cgroups(l)?.set_frozen(true).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    std::thread::sleep(hold);
    let held = t0.elapsed();
    cgroups(l)?.set_frozen(false).map_err(|e| e.to_string())?;
    Ok(LimitAnswer::Held { frozen: true, held_ns: held.as_nanos() as u64 })
}

/// The host pid of the case's process that is `ns_pid` in the probe's pid namespace: the one in
/// the case's cgroup whose innermost NSpid (/proc/<pid>/status) is `ns_pid`.
fn host_pid_of(l: &CaseLimits, ns_pid: i32) -> Result<i32, String> {
    let candidates = cgroups(l)?.procs().map_err(|e| e.to_string())?;
    for pid in candidates {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last()?.parse::<i32>().ok());
        if inner == Some(ns_pid) {
            return Ok(pid);
        }
    }
    Err(format!("no process of the case is pid {ns_pid} in the probe's pid namespace"))
}
