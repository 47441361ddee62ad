//! What the libtest-mimic suites share: turning a case into a trial, skips with their reasons,
//! `ISOPROBE_EXPECT`, and the host snapshot around a whole suite.
//!
//! Every suite binary is also the probe: `main` calls [`suite_main`], which calls
//! `isoprobe_probes::multicall()` first, so the harness can copy the running test binary into its
//! containers.

#![deny(unsafe_code)]

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use isoprobe_harness::requirement::expected_from_env;
use isoprobe_harness::snapshot::HostSnapshot;
use isoprobe_harness::verdict::Skip;
use isoprobe_harness::{CaseOutcome, CaseSpec, Harness, HarnessOptions};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Runs a suite: builds the harness on the main thread, takes the host snapshot, runs the trials
/// `make` returns, drops the harness, and fails if the host changed.
pub fn suite_main(make: impl FnOnce(&Arc<Harness>) -> Vec<Trial>) -> ExitCode {
    isoprobe_probes::multicall();
    let args = Arguments::from_args();
    if !args.list {
        // Crash-only: what dead runs left goes before the snapshot, so that it neither counts as
        // this suite's change nor stays.
        isoprobe_harness::leftovers::recover_at_start("isoprobe suite");
    }
    let before = HostSnapshot::take();
    let harness = match Harness::new(HarnessOptions::default()) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("failed to set up the harness: {e}");
            return ExitCode::FAILURE;
        }
    };
    let trials = make(&harness);
    let listing = args.list;
    let conclusion = libtest_mimic::run(&args, trials);
    drop(harness);
    if listing {
        return ExitCode::SUCCESS;
    }
    let after = HostSnapshot::take();
    let diff = before.diff(&after);
    if !diff.is_empty() {
        eprintln!("\nthe host changed during the suite ({} differences):", diff.len());
        for line in &diff {
            eprintln!("  {line}");
        }
        return ExitCode::FAILURE;
    }
    print_defects();
    eprintln!(
        "host snapshot unchanged (hostname, domainname, namespaced sysctls, mounts, SysV IPC, links, cgroups, /tmp, /dev nodes, processes, loop devices, tool state)"
    );
    conclusion.exit_code()
}

/// Every start of the suite that failed on a known defect of its tool: (case, defect).
static DEFECT_HITS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Prints the starts of `outcome` that failed on a known defect of the tool and were made again,
/// each with the tool's error, and keeps them for the suite's summary. Every trial calls it on
/// its outcome: the case's verdicts are those of the start that ran the probe.
pub fn note_defects(outcome: &CaseOutcome) {
    for hit in &outcome.defects {
        eprintln!(
            "{}: start {} failed on a known defect of the tool, {}, and was made again: {}",
            outcome.name, hit.attempt, hit.defect, hit.error
        );
        DEFECT_HITS.lock().unwrap_or_else(|e| e.into_inner()).push((outcome.name.clone(), hit.defect.clone()));
    }
}

/// The suite's starts that failed on a known defect, per defect, with what it is.
fn print_defects() {
    let hits = DEFECT_HITS.lock().unwrap_or_else(|e| e.into_inner());
    for t in isoprobe_harness::launcher::defect::tally(hits.iter().map(|(c, d)| (c.as_str(), d.as_str()))) {
        eprintln!("\nknown tool defect {}", t.line());
    }
}

/// The outcome of a skip: a failure when `ISOPROBE_EXPECT` says the requirement is met here.
pub fn skip_outcome(skip: &Skip) -> Result<Completion, Failed> {
    if expected_from_env().contains(&skip.requirement) {
        return Err(format!(
            "ISOPROBE_EXPECT says `{}` is available, but the case was skipped: {}",
            skip.requirement, skip.reason
        )
        .into());
    }
    Ok(Completion::ignored_with(format!("needs {}: {}", skip.requirement, skip.reason)))
}

/// The skips of single checks (namespace checks and limit checks) for a requirement
/// `ISOPROBE_EXPECT` declares: each is a failure, as a skipped case is.
pub fn expected_check_skips(outcome: &CaseOutcome) -> Result<(), Failed> {
    let expected = expected_from_env();
    let mut lines = Vec::new();
    for run in &outcome.runs {
        let checks = run.checks().iter().map(|c| (c.check.to_string(), &c.verdict));
        let limits = run.limits().iter().map(|l| (l.check.to_string(), &l.verdict));
        for (check, v) in checks.chain(limits) {
            if let isoprobe_harness::Verdict::Skip { requirement, reason } = v
                && expected.contains(requirement)
            {
                lines.push(format!(
                    "{}: {check}: ISOPROBE_EXPECT declares `{requirement}`, but: {reason}",
                    outcome.name
                ));
            }
        }
    }
    if lines.is_empty() { Ok(()) } else { Err(lines.join("\n").into()) }
}

/// A failure message naming the case, each failing check, expected and observed.
pub fn failure(outcome: &CaseOutcome) -> Failed {
    let mut msg = outcome.failure_lines().join("\n");
    for run in &outcome.runs {
        if !run.stderr.is_empty() {
            msg.push_str(&format!("\nprobe stderr ({:?}): {}", run.role, run.stderr));
        }
    }
    msg.into()
}

/// One trial per case: pass, fail with every failing check, or skip with its reason.
pub fn case_trial(harness: &Arc<Harness>, spec: CaseSpec) -> Trial {
    let h = Arc::clone(harness);
    Trial::ignorable_test(spec.name(), move || {
        let outcome = h.run_case(&spec);
        note_defects(&outcome);
        if let Some(skip) = &outcome.skipped {
            return skip_outcome(skip);
        }
        // Skips of single checks are reported, and fail when expected to be possible here.
        expected_check_skips(&outcome)?;
        if outcome.passed() { Ok(Completion::Completed) } else { Err(failure(&outcome)) }
    })
}

/// A limit case's verdicts, one line each: failures as [`CaseOutcome::failure_lines`] gives them,
/// and passes with what was expected and observed (the measured figures), plus the probe's stderr
/// of a case that did not pass.
pub fn limit_report(o: &CaseOutcome) -> String {
    let mut lines = o.failure_lines();
    for r in &o.runs {
        for c in r.limits() {
            if let isoprobe_harness::Verdict::Pass { expected, observed, evidence } = &c.verdict {
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

/// One limit case: passes when every limit check was judged and passed; a skip is ignored with
/// its reason. `ISOPROBE_LIMITS_VERBOSE=1` prints the observed figures of passing checks too.
pub fn limit_trial(harness: &Arc<Harness>, name: String, spec: CaseSpec) -> Trial {
    let h = Arc::clone(harness);
    Trial::ignorable_test(name, move || {
        let o = h.run_case(&spec);
        note_defects(&o);
        if let Some(skip) = &o.skipped {
            return skip_outcome(skip);
        }
        if std::env::var_os("ISOPROBE_LIMITS_VERBOSE").is_some() {
            eprintln!("{}", limit_report(&o));
        }
        expected_check_skips(&o)?;
        let judged = o.runs.iter().map(|r| r.limits().len()).sum::<usize>();
        if o.passed() && judged > 0 {
            Ok(Completion::Completed)
        } else {
            Err(Failed::from(format!("{}\n{}", o.name, limit_report(&o))))
        }
    })
}

/// The sensitivity test of a limit case: the launcher is given limits twice as large as the
/// oracle expects, and every one of `checks` must fail (be judged and fail: an error is not the
/// failure this test wants). Named `<prefix>sensitivity/<what>/limit-doubled`.
pub fn limit_sensitivity_trial(
    harness: &Arc<Harness>,
    prefix: &str,
    what: &str,
    spec: CaseSpec,
    checks: &'static [isoprobe_harness::limits::LimitCheck],
) -> Trial {
    let h = Arc::clone(harness);
    Trial::ignorable_test(format!("{prefix}sensitivity/{what}/limit-doubled"), move || {
        let limits = spec.limits.clone().expect("a limit case");
        let launched = CaseSpec { limits: Some(limits.scaled(2)), ..spec.clone() };
        let o = h.run_case_against(&launched, &spec);
        note_defects(&o);
        if let Some(skip) = &o.skipped {
            return skip_outcome(skip);
        }
        if let Some(e) = &o.error {
            return Err(format!("{}: {e}", o.name).into());
        }
        if std::env::var_os("ISOPROBE_LIMITS_VERBOSE").is_some() {
            eprintln!("sensitivity, launched {}:\n{}", launched.name(), limit_report(&o));
        }
        for check in checks {
            let v = o.runs.iter().flat_map(|r| r.limits()).find(|c| c.check == *check).map(|c| &c.verdict);
            match v {
                Some(isoprobe_harness::Verdict::Fail { .. }) => {}
                other => {
                    return Err(format!(
                        "{check} should fail with the limit doubled, got {other:?}\n{}",
                        limit_report(&o)
                    )
                    .into());
                }
            }
        }
        Ok(Completion::Completed)
    })
}
