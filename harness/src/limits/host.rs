//! The host's answers to a limit probe's questions: read the counters, hold (freeze) the cgroup,
//! move the competitor into the sibling, count with perf_event.

use std::fs;
use std::time::{Duration, Instant};

use isoprobe_probes::wire::{
    GroupAction, GroupState, HostAnswer, LimitAnswer, LimitQuestion, MemoryCounters, MemoryEvents,
};

use crate::cgroup::dir::{CgroupDir, keyed, psi_total};

use super::case::CaseLimits;

/// Answers `ask` for the case's cgroups.
pub fn answer(limits: Option<&CaseLimits>, ask: &LimitQuestion) -> Result<HostAnswer, String> {
    let l = limits.ok_or("a limit question in a case without limits")?;
    let reply = match ask {
        LimitQuestion::Read => LimitAnswer::Reading { reading: Box::new(cgroups(l)?.read()) },
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
        LimitQuestion::SiblingKill { wait_ms } => {
            let sib = v2_sibling(l)?;
            if l.spec.settings.kill {
                sib.write("cgroup.kill", "1").map_err(|e| e.to_string())?;
            }
            let wait = Duration::from_millis(u64::from(*wait_ms));
            LimitAnswer::Group { action: wait_for(sib, l.spec.settings.kill, wait, |s| s.populated == Some(false)) }
        }
        LimitQuestion::SiblingFreeze { frozen } => {
            let sib = v2_sibling(l)?;
            if l.spec.settings.freeze {
                sib.write("cgroup.freeze", if *frozen { "1" } else { "0" }).map_err(|e| e.to_string())?;
            }
            // The control waits as long as a freeze may take, and its group keeps running.
            let want = Some(*frozen);
            let wait = if l.spec.settings.freeze { FREEZE_WAIT } else { CONTROL_FREEZE_WAIT };
            LimitAnswer::Group { action: wait_for(sib, l.spec.settings.freeze, wait, |s| s.frozen == want) }
        }
        LimitQuestion::SiblingState => LimitAnswer::State { state: state_of(v2_sibling(l)?) },
        LimitQuestion::ReadMemory { sibling } => LimitAnswer::Memory {
            counters: Box::new(
                cgroups(l)?.v2_controller_dir("memory", *sibling).map(memory_counters).unwrap_or_default(),
            ),
        },
        LimitQuestion::MoveToCase { pid } => {
            let host_pid = host_pid_of(l, *pid)?;
            cgroups(l)?.move_to_case(host_pid).map_err(|e| e.to_string())?;
            LimitAnswer::Moved
        }
    };
    Ok(HostAnswer::Limit { reply })
}

fn cgroups(l: &CaseLimits) -> Result<&crate::cgroup::CaseCgroups, String> {
    l.cgroups().map_err(|e| e.to_string())
}

/// How long the host waits for cgroup.events to confirm a freeze or thaw of the group: tasks stop
/// at their next return to user space (a forking group of a few processes: milliseconds); the
/// bound only ends a wait for a kernel that never confirms.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

/// In a control the host freezes nothing and waits this long instead, as a freeze would take at
/// most a few milliseconds: the group's state is then read as it runs.
const CONTROL_FREEZE_WAIT: Duration = Duration::from_millis(20);

/// memory.current, memory.peak, memory.events, memory.events.local and memory.pressure of a
/// cgroup2 cgroup.
fn memory_counters(dir: &CgroupDir) -> MemoryCounters {
    let events = |file: &str| {
        let text = dir.read(file).ok();
        let key = |k: &str| text.as_deref().and_then(|t| keyed(t, k));
        MemoryEvents {
            high: key("high"),
            max: key("max"),
            oom: key("oom"),
            oom_kill: key("oom_kill"),
            oom_group_kill: key("oom_group_kill"),
        }
    };
    let number = |file: &str| dir.read(file).ok().and_then(|t| crate::cgroup::dir::number(&t));
    let pressure = dir.read("memory.pressure").ok();
    let total = |line: &str| pressure.as_deref().and_then(|t| psi_total(t, line));
    MemoryCounters {
        current: number("memory.current"),
        peak: number("memory.peak"),
        events: events("memory.events"),
        local: events("memory.events.local"),
        pressure_some_us: total("some"),
        pressure_full_us: total("full"),
    }
}

fn v2_sibling(l: &CaseLimits) -> Result<&CgroupDir, String> {
    cgroups(l)?.v2_sibling().ok_or_else(|| "the case has no cgroup2 sibling".to_owned())
}

/// cgroup.events and cgroup.procs of `dir`.
fn state_of(dir: &CgroupDir) -> GroupState {
    let events = dir.read("cgroup.events").ok();
    let flag = |k: &str| events.as_deref().and_then(|t| keyed(t, k)).map(|v| v == 1);
    GroupState {
        populated: flag("populated"),
        frozen: flag("frozen"),
        procs: dir.procs().map(|p| p.len() as u32).unwrap_or(0),
    }
}

/// Polls `dir` until `done` holds or `wait` passes (every 1 ms; the whole wait when `acted` is
/// false: a control observes its group for as long as the limited case may wait).
fn wait_for(dir: &CgroupDir, acted: bool, wait: Duration, done: impl Fn(&GroupState) -> bool) -> GroupAction {
    let t0 = Instant::now();
    loop {
        let state = state_of(dir);
        let ended = t0.elapsed() >= wait;
        if (acted && done(&state)) || ended {
            return GroupAction { acted, confirmed: done(&state), waited_ns: t0.elapsed().as_nanos() as u64, state };
        }
        std::thread::sleep(Duration::from_millis(1));
    }
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
/// the case's cgroup or its sibling whose innermost NSpid (/proc/<pid>/status) is `ns_pid`.
fn host_pid_of(l: &CaseLimits, ns_pid: i32) -> Result<i32, String> {
    let set = cgroups(l)?;
    let mut candidates = set.procs().map_err(|e| e.to_string())?;
    candidates.extend(set.sibling_procs().map_err(|e| e.to_string())?);
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
