//! The launcher suite: every launcher (the six real tools, their join paths, and native clone3 as
//! the reference) runs its matrix (`registry::launcher_matrix`), and every verdict must be
//! explained: a pass, a skip with the precise reason, or a failure that is a real property of the
//! tool recorded in `launcher::differences` with its source. Each launcher is also killed mid-case
//! once (what a case timeout does), and must leave nothing behind, its probe included.
//!
//! After the suite, nothing the tools create may be left: the host snapshot every suite takes covers
//! the tools' own bookkeeping under /run (LXC's lock directories, systemd-nspawn's) and the cgroups
//! tools name themselves (`lxc.pivot`, nspawn's `payload` and `supervisor`) besides isoprobe's own. At the end a
//! per-launcher summary is printed (tool and version, cases passed, explained differences, skips).
//!
//! The external launchers that express cgroup limits (LXC: `lxc.cgroup.*`; runc and crun:
//! `linux.resources`) also run the limit matrix (`registry::launcher_limit_matrix`, trials
//! `limits/<launcher>/<case>`): the tool creates
//! the case's cgroup and writes the limits, and the limit oracle judges each case and its control
//! exactly as the native limit suite does; plus the sensitivity tests (the tool is given limits
//! twice as large as the oracle expects: the memory, pids and cpu checks must fail).
//!
//! `ISOPROBE_LAUNCHERS=lxc,bwrap` restricts the run to some launchers.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use isoprobe_harness::launcher::differences::assess;
use isoprobe_harness::launcher::registry::{describe, launcher_limit_matrix, launcher_matrix};
use isoprobe_harness::limits::LimitCheck;
use isoprobe_harness::limits::requirement::check as limit_requirement;
use isoprobe_harness::{CaseSpec, Harness, LauncherKind};
use isoprobe_suites::{limit_sensitivity_trial, limit_trial, skip_outcome, suite_main};
use libtest_mimic::{Completion, Trial};

/// Per launcher: cases passed, cases passed with explained differences (and the checks), skipped.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    explained_cases: usize,
    explained_checks: BTreeSet<String>,
    skipped: usize,
    failed: usize,
}

static TALLY: Mutex<BTreeMap<&'static str, Tally>> = Mutex::new(BTreeMap::new());

fn tally(kind: LauncherKind, f: impl FnOnce(&mut Tally)) {
    f(TALLY.lock().unwrap_or_else(|e| e.into_inner()).entry(kind.name()).or_default());
}

fn main() -> ExitCode {
    let code = run_suite();
    if !std::env::args().any(|a| a == "--list") {
        print_summary();
    }
    code
}

fn print_summary() {
    let t = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_empty() {
        return;
    }
    eprintln!("\nconformance per launcher (cases passed / passed with explained differences / skipped / failed):");
    for kind in std::iter::once(LauncherKind::Clone3).chain(LauncherKind::EXTERNAL) {
        let Some(c) = t.get(kind.name()) else { continue };
        let info = describe(kind);
        let tool =
            info.tool.map(|t| t.version).or(info.unavailable.map(|s| s.reason)).unwrap_or_else(|| "native".into());
        let checks: Vec<&str> = c.explained_checks.iter().map(String::as_str).collect();
        eprintln!(
            "  {:<13} {:>3} / {:>3} / {:>3} / {:>3}  [{tool}]{}",
            kind.name(),
            c.passed,
            c.explained_cases,
            c.skipped,
            c.failed,
            if checks.is_empty() { String::new() } else { format!(" differences: {}", checks.join(", ")) }
        );
    }
}

fn run_suite() -> ExitCode {
    suite_main(|h| {
        let only: Option<Vec<String>> =
            std::env::var("ISOPROBE_LAUNCHERS").ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let kinds = std::iter::once(LauncherKind::Clone3).chain(LauncherKind::EXTERNAL);
        let kinds: Vec<LauncherKind> =
            kinds.filter(|k| only.as_ref().is_none_or(|o| o.iter().any(|n| n == k.name()))).collect();
        let mut trials: Vec<Trial> =
            kinds.iter().flat_map(|k| launcher_matrix(*k, h.runner())).map(|s| launcher_trial(h, s)).collect();
        trials.extend(kinds.iter().filter(|k| !k.joins()).map(|k| kill_trial(h, *k)));
        // The native limit cases are the limit suite's; here those of the tools.
        for kind in kinds.iter().filter(|k| !k.is_native()) {
            trials.extend(limit_trials(h, *kind));
        }
        trials
    })
}

/// The limit cases of `kind` and the sensitivity tests of memory, pids and cpu.max (on the
/// largest namespace set it runs them with).
fn limit_trials(h: &Arc<Harness>, kind: LauncherKind) -> Vec<Trial> {
    let matrix = launcher_limit_matrix(kind);
    let prefix = format!("limits/{}/", kind.name());
    let mut trials: Vec<Trial> =
        matrix.iter().map(|(name, spec)| limit_trial(h, format!("{prefix}{name}"), spec.clone())).collect();
    for (what, check) in
        [("memory", &[LimitCheck::Memory]), ("pids", &[LimitCheck::Pids]), ("cpu-max", &[LimitCheck::CpuMax])]
    {
        let limited = matrix
            .iter()
            .filter(|(name, _)| name.starts_with(&format!("{what}/")) && name.ends_with("/limited"))
            .max_by_key(|(_, s)| s.namespaces.len());
        if let Some((_, spec)) = limited {
            trials.push(limit_sensitivity_trial(h, &prefix, what, spec.clone(), check));
        }
    }
    // Killed mid-case with its limits in place: the cgroups LXC made and limited go too.
    if let Some((name, spec)) = matrix
        .iter()
        .filter(|(n, _)| n.starts_with("memory/") && n.ends_with("/limited"))
        .max_by_key(|(_, s)| s.namespaces.len())
    {
        let (h, spec) = (Arc::clone(h), spec.clone());
        trials.push(Trial::ignorable_test(format!("{prefix}kill-mid-case/{name}"), move || {
            let limits = spec.limits.as_ref().expect("a limit case");
            let layout = isoprobe_harness::cgroup::host_layout().map_err(|e| e.to_string())?;
            let limits_met = limit_requirement(&spec, limits, h.runner(), layout);
            if let Err(skip) = h.requirement(&spec).and(limits_met) {
                return skip_outcome(&skip);
            }
            h.start_and_kill(&spec).map(|()| Completion::Completed).map_err(|e| e.to_string().into())
        }));
    }
    trials
}

/// A launcher killed mid-case (what a case timeout does) leaves nothing behind, its probe included:
/// the largest set each launcher can run, in its first rootfs mode.
fn kill_trial(h: &Arc<Harness>, kind: LauncherKind) -> Trial {
    let h = Arc::clone(h);
    let spec = launcher_matrix(kind, h.runner())
        .into_iter()
        .filter(|s| h.requirement(s).is_ok())
        .max_by_key(|s| s.namespaces.len())
        .unwrap_or_else(|| launcher_matrix(kind, h.runner()).remove(0));
    Trial::ignorable_test(format!("kill-mid-case/{}", spec.name()), move || {
        if let Err(skip) = h.requirement(&spec) {
            return skip_outcome(&skip);
        }
        h.start_and_kill(&spec).map(|()| Completion::Completed).map_err(|e| e.to_string().into())
    })
}

fn launcher_trial(h: &Arc<Harness>, spec: CaseSpec) -> Trial {
    let h = Arc::clone(h);
    Trial::ignorable_test(spec.name(), move || {
        let kind = spec.launcher;
        if let Err(skip) = h.requirement(&spec) {
            tally(kind, |t| t.skipped += 1);
            return skip_outcome(&skip);
        }
        let outcome = h.run_case(&spec);
        isoprobe_suites::note_defects(&outcome);
        if let Some(skip) = &outcome.skipped {
            tally(kind, |t| t.skipped += 1);
            return skip_outcome(skip);
        }
        let a = assess(&outcome, h.runner());
        if let Err(e) = isoprobe_suites::expected_check_skips(&outcome) {
            tally(kind, |t| t.failed += 1);
            return Err(e);
        }
        if a.conforms() {
            tally(kind, |t| {
                if a.explained.is_empty() {
                    t.passed += 1;
                } else {
                    t.explained_cases += 1;
                    t.explained_checks.extend(a.explained.iter().map(|e| e.check.to_string()));
                }
            });
            return Ok(Completion::Completed);
        }
        tally(kind, |t| t.failed += 1);
        let mut msg: Vec<String> = a.unexplained.clone();
        msg.extend(a.stale.iter().map(|s| format!("stale row: {s}")));
        for run in &outcome.runs {
            if !run.stderr.is_empty() {
                msg.push(format!("probe stderr ({:?}): {}", run.role, run.stderr));
            }
            msg.push(format!("init ({:?}): {}", run.role, run.init.join("; ")));
        }
        Err(msg.join("\n").into())
    })
}
