//! The cgroup limit suite: every limit × the namespace sets none, all and user-only, each with its
//! control (the same exercise without the limit), the sensitivity tests (the launcher gets limits
//! twice as large as the oracle expects: the memory, pids, cpu.max (its pressure too) and
//! cpu.max.burst checks must fail), with the host
//! snapshot every suite takes (cgroups, mounts, loop devices, processes, /proc/cgroups) compared
//! before and after.
//!
//! Limits the machine cannot exercise are ignored with the reason the harness gives (a skip is
//! data, see `requirement`), never passed.

use std::process::ExitCode;

use isoprobe_harness::NsSet;
use isoprobe_harness::limits::LimitCheck;
use isoprobe_harness::limits::matrix::{case, limit_cases, limit_matrix_on};
use isoprobe_suites::{limit_sensitivity_trial, limit_trial, suite_main};
use libtest_mimic::Trial;

fn main() -> ExitCode {
    suite_main(|harness| {
        let cpus = isoprobe_harness::limits::case::online_cpus().unwrap_or_else(|_| vec![0]);
        let cpu = *cpus.last().unwrap_or(&0);
        let mut trials: Vec<Trial> =
            limit_matrix_on(cpu, &cpus).into_iter().map(|(name, spec)| limit_trial(harness, name, spec)).collect();
        let cases = limit_cases(cpu, &cpus);
        let find = |w: &str| cases.iter().find(|(n, _)| *n == w).expect("a listed case").1.clone();
        trials.push(limit_sensitivity_trial(
            harness,
            "",
            "memory",
            case(NsSet::ALL, find("memory")),
            &[LimitCheck::Memory],
        ));
        trials.push(limit_sensitivity_trial(harness, "", "pids", case(NsSet::ALL, find("pids")), &[LimitCheck::Pids]));
        trials.push(limit_sensitivity_trial(
            harness,
            "",
            "cpu-max",
            case(NsSet::ALL, find("cpu-max")),
            &[LimitCheck::CpuMax, LimitCheck::CpuPressure],
        ));
        trials.push(limit_sensitivity_trial(
            harness,
            "",
            "cpu-max-burst",
            case(NsSet::ALL, find("cpu-max-burst")),
            &[LimitCheck::CpuBurst],
        ));
        trials
    })
}
