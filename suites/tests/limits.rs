//! The cgroup limit suite: every limit × the namespace sets none, all and user-only, each with its
//! control (the same exercise without the limit), the sensitivity tests (the launcher gets limits
//! twice as large as the oracle expects: the memory, pids and cpu checks must fail), and a check
//! that the host is left as found: no cgroup, mount, loop device or process of this run, and
//! /proc/cgroups unchanged.
//!
//! Limits the machine cannot exercise are ignored with the reason the harness gives (a skip is
//! data, see `requirement`), never passed.

use std::fs;
use std::process::ExitCode;
use std::sync::Arc;

use isoprobe_harness::limits::LimitCheck;
use isoprobe_harness::limits::matrix::{case, limit_cases, limit_matrix_on};
use isoprobe_harness::{Harness, HarnessOptions, NsSet};
use isoprobe_suites::{limit_sensitivity_trial, limit_trial};
use libtest_mimic::{Arguments, Trial};

/// What the host must look like again after the run: /proc/cgroups' hierarchy and enabled
/// columns (cgroup counts change with everyone's work), and this run's cgroups, mounts and loop
/// devices (none).
fn host_state(token: &str) -> (Vec<String>, Vec<String>) {
    let proc_cgroups = fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f.first().unwrap_or(&""), f.get(1).unwrap_or(&""), f.get(3).unwrap_or(&""))
        })
        .collect();
    let mut leftovers = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(token) {
                    leftovers.push(e.path().display().to_string());
                }
                stack.push(e.path());
            }
        }
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    leftovers.extend(mounts.lines().filter(|l| l.contains(token)).map(|l| format!("mount: {l}")));
    if let Ok(rd) = fs::read_dir("/sys/block") {
        for e in rd.flatten() {
            let backing = e.path().join("loop/backing_file");
            if let Ok(b) = fs::read_to_string(&backing)
                && b.contains(token)
            {
                leftovers.push(format!("loop device {}: {}", e.file_name().to_string_lossy(), b.trim()));
            }
        }
    }
    (proc_cgroups, leftovers)
}

fn main() -> ExitCode {
    isoprobe_probes::multicall();
    let args = Arguments::from_args();
    let harness = match Harness::new(HarnessOptions::default()) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("failed to set up the run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = harness.run_env().run_token.clone();
    let (cgroups_before, _) = host_state(&token);
    let cpus = isoprobe_harness::limits::case::online_cpus().unwrap_or_else(|_| vec![0]);
    let cpu = *cpus.last().unwrap_or(&0);

    let mut trials: Vec<Trial> =
        limit_matrix_on(cpu, &cpus).into_iter().map(|(name, spec)| limit_trial(&harness, name, spec)).collect();
    let cases = limit_cases(cpu, &cpus);
    let find = |w: &str| cases.iter().find(|(n, _)| *n == w).expect("a listed case").1.clone();
    trials.push(limit_sensitivity_trial(
        &harness,
        "",
        "memory",
        case(NsSet::ALL, find("memory")),
        &[LimitCheck::Memory],
    ));
    trials.push(limit_sensitivity_trial(&harness, "", "pids", case(NsSet::ALL, find("pids")), &[LimitCheck::Pids]));
    trials.push(limit_sensitivity_trial(
        &harness,
        "",
        "cpu-max",
        case(NsSet::ALL, find("cpu-max")),
        &[LimitCheck::CpuMax],
    ));

    let conclusion = libtest_mimic::run(&args, trials);
    drop(Arc::try_unwrap(harness).ok());
    let (cgroups_after, leftovers) = host_state(&token);
    let mut changed = false;
    if cgroups_after != cgroups_before {
        eprintln!("/proc/cgroups changed:\nbefore: {cgroups_before:?}\nafter:  {cgroups_after:?}");
        changed = true;
    }
    if !leftovers.is_empty() {
        eprintln!("left behind by run {token}:\n{}", leftovers.join("\n"));
        changed = true;
    }
    if changed { ExitCode::FAILURE } else { conclusion.exit_code() }
}
