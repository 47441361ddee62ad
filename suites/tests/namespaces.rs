//! The namespace suite: the whole matrix (every one of the 256 combinations through clone3 on the
//! host filesystem and in a chroot, the 128 with a mount namespace after pivot_root, and the other
//! launcher paths for every single kind and all eight), then the sensitivity tests, with the host
//! snapshot compared before and after.
//!
//! Sensitivity: the launcher runs a spec with one namespace dropped while the oracle judges against
//! the full spec. The checks that must fail are exactly those whose expectation the oracle changes
//! between the two specs, and each of them must depend on the dropped namespace: a probe that
//! cannot see the difference, or a check that fails for the wrong reason, fails the test.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use isoprobe_harness::matrix::{namespace_matrix, spec_for};
use isoprobe_harness::oracle::expect;
use isoprobe_harness::{CaseSpec, CheckId, Harness, LauncherKind, NsKind, NsSet, RootfsMode};
use isoprobe_suites::{case_trial, failure, skip_outcome, suite_main};
use libtest_mimic::{Completion, Failed, Trial};

fn main() -> ExitCode {
    suite_main(|h| {
        let mut trials: Vec<Trial> = namespace_matrix().into_iter().map(|s| case_trial(h, s)).collect();
        for kind in NsKind::ALL {
            trials.push(sensitivity_trial(h, spec_for(NsSet::ALL, RootfsMode::Host, LauncherKind::Clone3), kind));
            // A single kind (with a user namespace when unprivileged, which cannot do without one).
            let mut single = NsSet::EMPTY.with(kind);
            if !h.runner().is_root() {
                single = single.with(NsKind::User);
            }
            trials.push(sensitivity_trial(h, spec_for(single, RootfsMode::Host, LauncherKind::Clone3), kind));
        }
        trials
    })
}

fn sensitivity_trial(h: &Arc<Harness>, full: CaseSpec, kind: NsKind) -> Trial {
    let h = Arc::clone(h);
    let name = format!("sensitivity/{}/drop-{kind}", full.name());
    Trial::ignorable_test(name, move || {
        let launched = full.without(kind);
        if let Err(skip) = h.requirement(&launched) {
            return skip_outcome(&skip);
        }
        let runner = h.runner();
        let (promised, launched_resolved) = (full.resolve(runner), launched.resolve(runner));
        let predicted: BTreeSet<CheckId> = CheckId::all_for(&full)
            .into_iter()
            .filter(|c| expect(&promised, runner, *c) != expect(&launched_resolved, runner, *c))
            .collect();
        // The oracle itself must predict a failure of this kind's identity check and blame only
        // checks that depend on the dropped kind.
        if !predicted.contains(&CheckId::NsInode(kind)) {
            return Err(format!("the oracle predicts no change of {kind}/ns-inode: {predicted:?}").into());
        }
        if let Some(c) = predicted.iter().find(|c| !c.kinds().contains(&kind)) {
            return Err(format!("the oracle blames {c}, which does not depend on {kind}").into());
        }
        let outcome = h.run_case_against(&launched, &full);
        if let Some(e) = &outcome.error {
            return Err(format!("{}: {e}", outcome.name).into());
        }
        let mut failed = BTreeSet::new();
        let mut skipped = BTreeSet::new();
        for r in outcome.verdicts() {
            match &r.verdict {
                isoprobe_harness::Verdict::Error { .. } => return Err(failure(&outcome)),
                v if v.is_failure() => {
                    failed.insert(r.check);
                }
                v if v.is_skip() => {
                    skipped.insert(r.check);
                }
                _ => {}
            }
        }
        let want: BTreeSet<CheckId> = predicted.difference(&skipped).copied().collect();
        if failed != want {
            let missed: Vec<String> = want.difference(&failed).map(|c| c.to_string()).collect();
            let extra: Vec<String> = failed.difference(&want).map(|c| c.to_string()).collect();
            return Err(Failed::from(format!(
                "dropping {kind}: checks that should have failed but passed: {missed:?}; failed without reason: \
                 {extra:?}\n{}",
                outcome.failure_lines().join("\n")
            )));
        }
        Ok(Completion::Completed)
    })
}
