//! The launcher suite: every launcher (the six real tools, their join paths, and native clone3 as
//! the reference) runs its matrix (`registry::launcher_matrix`), and every verdict must be
//! explained: a pass, a skip with the precise reason, or a failure that is a real property of the
//! tool recorded in `launcher::differences` with its source. After the suite, nothing the tools
//! create may be left: LXC's lock directories and pivot cgroups, OCI state, cgroups, mounts
//! (checked here, on top of the host snapshot every suite takes).
//!
//! `ISOPROBE_LAUNCHERS=lxc,bwrap` restricts the run to some launchers.

use std::process::ExitCode;
use std::sync::Arc;

use isoprobe_harness::launcher::differences::assess;
use isoprobe_harness::launcher::registry::launcher_matrix;
use isoprobe_harness::{CaseSpec, Harness, LauncherKind};
use isoprobe_suites::{skip_outcome, suite_main};
use libtest_mimic::{Completion, Trial};

fn main() -> ExitCode {
    suite_main(|h| {
        let only: Option<Vec<String>> =
            std::env::var("ISOPROBE_LAUNCHERS").ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let kinds = std::iter::once(LauncherKind::Clone3).chain(LauncherKind::EXTERNAL);
        let kinds: Vec<LauncherKind> =
            kinds.filter(|k| only.as_ref().is_none_or(|o| o.iter().any(|n| n == k.name()))).collect();
        let mut trials: Vec<Trial> =
            kinds.iter().flat_map(|k| launcher_matrix(*k, h.runner())).map(|s| launcher_trial(h, s)).collect();
        trials.extend(kinds.iter().filter(|k| !k.joins()).map(|k| kill_trial(h, *k)));
        trials
    })
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
        if let Err(skip) = h.requirement(&spec) {
            return skip_outcome(&skip);
        }
        let outcome = h.run_case(&spec);
        if let Some(skip) = &outcome.skipped {
            return skip_outcome(skip);
        }
        let a = assess(&outcome, h.runner());
        if a.conforms() {
            return Ok(Completion::Completed);
        }
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
