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
use isoprobe_harness::verdict::Verdict;
use isoprobe_harness::{CaseOutcome, CaseSpec, Harness, HarnessOptions, NsSet};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn report(o: &CaseOutcome) -> String {
    let mut lines = o.failure_lines();
    for r in &o.runs {
        for c in &r.limits {
            if let Verdict::Pass { expected, observed, evidence } = &c.verdict {
                lines.push(format!(
                    "{}: {}: pass: expected {expected}, observed {observed} ({evidence})",
                    o.name, c.check
                ));
            }
        }
        if !r.stderr.is_empty() && !o.passed() {
            lines.push(format!("probe stderr: {}", r.stderr));
        }
    }
    lines.join("\n")
}

/// Runs one case; passes when every limit check passed. `ISOPROBE_LIMITS_VERBOSE=1` prints the
/// observed numbers of passing checks too.
fn run_trial(h: &Arc<Harness>, name: String, spec: CaseSpec) -> Trial {
    let h = Arc::clone(h);
    Trial::ignorable_test(name, move || {
        let o = h.run_case(&spec);
        if let Some(skip) = &o.skipped {
            return Ok(Completion::ignored_with(format!("{}: {}", skip.requirement, skip.reason)));
        }
        if std::env::var_os("ISOPROBE_LIMITS_VERBOSE").is_some() {
            eprintln!("{}", report(&o));
        }
        let judged = o.runs.iter().map(|r| r.limits.len()).sum::<usize>();
        if o.passed() && judged > 0 {
            Ok(Completion::Completed)
        } else {
            Err(Failed::from(format!("{}\n{}", o.name, report(&o))))
        }
    })
}

/// The launcher gets limits twice as large as the oracle expects: `checks` must fail (and be
/// judged: an error is not the failure this test wants).
fn sensitivity_trial(h: &Arc<Harness>, what: &str, spec: CaseSpec, checks: &'static [LimitCheck]) -> Trial {
    let h = Arc::clone(h);
    Trial::ignorable_test(format!("sensitivity/{what}/limit-doubled"), move || {
        let limits = spec.limits.clone().expect("a limit case");
        let launched = CaseSpec { limits: Some(limits.scaled(2)), ..spec.clone() };
        let o = h.run_case_against(&launched, &spec);
        if let Some(skip) = &o.skipped {
            return Ok(Completion::ignored_with(format!("{}: {}", skip.requirement, skip.reason)));
        }
        if let Some(e) = &o.error {
            return Err(format!("{}: {e}", o.name).into());
        }
        if std::env::var_os("ISOPROBE_LIMITS_VERBOSE").is_some() {
            eprintln!("sensitivity, launched {}:\n{}", launched.name(), report(&o));
        }
        for check in checks {
            let v = o.runs.iter().flat_map(|r| &r.limits).find(|c| c.check == *check).map(|c| &c.verdict);
            match v {
                Some(Verdict::Fail { .. }) => {}
                other => {
                    return Err(
                        format!("{check} should fail with the limit doubled, got {other:?}\n{}", report(&o)).into()
                    );
                }
            }
        }
        Ok(Completion::Completed)
    })
}

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
        limit_matrix_on(cpu, &cpus).into_iter().map(|(name, spec)| run_trial(&harness, name, spec)).collect();
    let cases = limit_cases(cpu, &cpus);
    let find = |w: &str| cases.iter().find(|(n, _)| *n == w).expect("a listed case").1.clone();
    trials.push(sensitivity_trial(&harness, "memory", case(NsSet::ALL, find("memory")), &[LimitCheck::Memory]));
    trials.push(sensitivity_trial(&harness, "pids", case(NsSet::ALL, find("pids")), &[LimitCheck::Pids]));
    trials.push(sensitivity_trial(&harness, "cpu-max", case(NsSet::ALL, find("cpu-max")), &[LimitCheck::CpuMax]));

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
