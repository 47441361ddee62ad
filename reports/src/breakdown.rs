//! Where a case's time goes: the phases each case of a run recorded (see
//! [`crate::record::Phases`]), summarised per suite, launcher and rootfs mode (the groups of the
//! report's summary table), as the median of each phase, its share of the median case, and the
//! median case. Markdown and HTML render it ("Where a case's time goes").
//!
//! Why the rootfs mode splits a launcher's cases: of everything a case varies in, it moved the
//! median case the most. In `isoprobe run --suite namespaces --launcher clone3` on the 2-CPU
//! development VM (640 cases, `-j 1`), a case on the host's root took 4.07 ms, in a chroot
//! 4.49 ms and after pivot_root 4.57 ms: its setup (0.19 against 0.27–0.28 ms) and teardown (0.51
//! against 0.81–0.88 ms) are the rootfs tree the harness makes and removes, so the split also
//! shows what the harness's own work costs. A network namespace moved the case by 0.34 ms (4.27
//! against 4.61 ms, nearly all of it in spawn: 0.53 against 0.92 ms), a time namespace by
//! 0.39 ms (all in init: 0.32 against 0.82 ms), the mount namespace by 0.02 ms; at `-j 2` the
//! order was the same (rootfs 0.89, time 0.62, net 0.55 ms). Rows stay few: one per suite,
//! launcher and rootfs mode the run has (15 for the default namespace matrix, one or two more for
//! the limit suite; 20 for `--launcher all` with every tool installed).
//!
//! Only cases that ran to their verdicts count: a skipped case records its plan alone, and one
//! that ended in an error stopped part-way; either would pull every median towards zero. What
//! this module must never do: show a row for cases that recorded no phases (reports written
//! before phases were recorded render as before, with no breakdown at all).

use std::time::Duration;

use crate::model::Report;
use crate::record::{CaseOutcome, phase_rank};

/// What the section says under its title.
pub const EXPLANATION: &str = "The median wall time of each phase in milliseconds, and its share of the median case, \
     over the cases that ran to their verdicts (skipped and errored cases left out), per suite, launcher and rootfs \
     mode. The medians of the phases need not add up to the median case.";

/// What each phase the harness records covers (from the harness's `phases::Phase`).
pub fn phase_meaning(phase: &str) -> Option<&'static str> {
    Some(match phase {
        "plan" => "validating the spec and checking its requirements",
        "setup" => "the case's host objects: its directory and rootfs, sentinels, host IPC objects, cgroups",
        "spawn" => {
            "the launcher's start, up to the probe running in its container (the clone or the tool, the \
                    id maps, the cgroup attach, the exec)"
        }
        "host-view" => "the host's view taken while the probe runs, the probe's fresh names and the hello",
        "init" => "from the hello to the probe's init report: its start, time namespace, hostname, mounts and root",
        "observe" => "from the init report to the probe's done: the observations, less the host's answers",
        "host-answers" => "the host answering the probe's questions during the observations",
        "controls" => "the host-side controls read after the probe finished",
        "reap" => "closing the probe's stdin, its exit and reap, the launcher's teardown",
        "judge" => "every check judged against the oracle",
        "teardown" => "removing the case's host objects",
        _ => return None,
    })
}

/// The medians of every row of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// The phases shown, in the order a case goes through them: every known phase some case
    /// recorded, then any other (from a newer harness) by name.
    pub phases: Vec<String>,
    pub rows: Vec<BreakdownRow>,
}

/// The cases of one suite, launcher and rootfs mode.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakdownRow {
    pub suite: String,
    pub launcher: String,
    pub rootfs: String,
    pub cases: usize,
    /// The median of each phase of [`Breakdown::phases`] over the row's cases (a case that did
    /// not reach a phase counts as zero there).
    pub medians: Vec<Duration>,
    /// The median of the cases' durations.
    pub case: Duration,
}

impl BreakdownRow {
    /// `namespaces · clone3 · chroot`.
    pub fn label(&self) -> String {
        format!("{} · {} · {}", self.suite, self.launcher, self.rootfs)
    }

    /// The share of the median case that the median of phase `i` is (the medians of the phases
    /// need not add up to the median case: each is the middle of its own distribution).
    pub fn share(&self, i: usize) -> f64 {
        let case = self.case.as_secs_f64();
        if case > 0.0 { self.medians.get(i).map_or(0.0, Duration::as_secs_f64) / case } else { 0.0 }
    }
}

/// A row's suite, launcher and rootfs mode.
type Key<'a> = (&'a str, &'a str, &'a str);

/// Whether `case` ran to its verdicts with its phases recorded.
fn counts(case: &CaseOutcome) -> bool {
    case.skipped.is_none() && case.error.is_none() && !case.phases.is_empty()
}

/// The median of `v` (the mean of the two middle values for an even count; zero when empty).
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        Duration::ZERO
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

impl Report {
    /// Where the time of this run's cases went, or `None` when no case that ran recorded its
    /// phases. Rows in the order their suite, launcher and rootfs mode first appear (as the
    /// summary table's groups).
    pub fn phase_breakdown(&self) -> Option<Breakdown> {
        let mut groups: Vec<(Key<'_>, Vec<&CaseOutcome>)> = Vec::new();
        for (suite, case) in self.cases().filter(|(_, c)| counts(c)) {
            let key = (suite.name.as_str(), case.spec.launcher.name(), case.spec.rootfs.name());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, cases)) => cases.push(case),
                None => groups.push((key, vec![case])),
            }
        }
        if groups.is_empty() {
            return None;
        }
        let mut phases: Vec<String> = Vec::new();
        for (_, cases) in &groups {
            for c in cases {
                for (name, _) in c.phases.ordered() {
                    if !phases.iter().any(|p| p == name) {
                        phases.push(name.to_owned());
                    }
                }
            }
        }
        phases.sort_by(|a, b| phase_rank(a).cmp(&phase_rank(b)).then_with(|| a.cmp(b)));

        let rows = groups
            .into_iter()
            .map(|((suite, launcher, rootfs), cases)| BreakdownRow {
                suite: suite.to_owned(),
                launcher: launcher.to_owned(),
                rootfs: rootfs.to_owned(),
                cases: cases.len(),
                medians: phases.iter().map(|p| median(cases.iter().map(|c| c.phases.get(p)).collect())).collect(),
                case: median(cases.iter().map(|c| c.duration).collect()),
            })
            .collect();
        Some(Breakdown { phases, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Suite;
    use crate::record::{LauncherKind, PHASE_ORDER, Phases, RootfsMode};
    use crate::testing::{case, run_report, skipped};

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1e3)
    }

    /// A case of `launcher` in `rootfs` whose phases took these milliseconds.
    fn timed(launcher: LauncherKind, rootfs: RootfsMode, phases: &[(&str, f64)], total: f64) -> CaseOutcome {
        let mut c = case(&format!("{}/{}/pid", launcher.name(), rootfs.name()), &[]);
        (c.spec.launcher, c.spec.rootfs) = (launcher, rootfs);
        c.phases = Phases::from_iter(phases.iter().map(|(p, v)| (p.to_string(), ms(*v))));
        c.duration = ms(total);
        c
    }

    #[test]
    fn medians_per_suite_launcher_and_rootfs_from_the_cases_that_ran() {
        use {LauncherKind::*, RootfsMode::*};
        let mut errored = timed(Clone3, Host, &[("plan", 50.0), ("setup", 50.0)], 100.0);
        errored.error = Some("the probe hung".into());
        let mut skip = skipped("clone3/host/user");
        skip.phases = Phases::from_iter([("plan".to_owned(), ms(9.0))]);
        let namespaces = vec![
            timed(Clone3, Host, &[("spawn", 1.0), ("init", 2.0), ("plan", 0.1)], 4.0),
            timed(Clone3, Chroot, &[("spawn", 10.0), ("init", 3.0), ("warp", 1.0)], 20.0),
            timed(Clone3, Host, &[("spawn", 3.0), ("init", 4.0), ("plan", 0.1)], 8.0),
            timed(Clone, PivotRoot, &[("spawn", 0.5)], 1.0),
            timed(Clone3, Host, &[("spawn", 2.0), ("init", 9.0), ("plan", 0.3)], 12.0),
            // Left out: ran part-way, or not at all, or recorded nothing.
            errored,
            skip,
            case("clone3/host/uts", &[]),
        ];
        let limits = vec![timed(Clone3, Host, &[("spawn", 7.0), ("observe", 100.0)], 110.0)];
        let r = run_report(vec![Suite::new("namespaces", namespaces), Suite::new("limits", limits)]);
        let b = r.phase_breakdown().unwrap();
        assert_eq!(b.phases, ["plan", "spawn", "init", "observe", "warp"], "the known phases in order, then others");
        let rows: Vec<(String, usize)> = b.rows.iter().map(|r| (r.label(), r.cases)).collect();
        assert_eq!(
            rows,
            [
                ("namespaces · clone3 · host".to_owned(), 3),
                ("namespaces · clone3 · chroot".to_owned(), 1),
                ("namespaces · clone · pivot".to_owned(), 1),
                ("limits · clone3 · host".to_owned(), 1),
            ]
        );
        let host = &b.rows[0];
        // plan 0.1, 0.1, 0.3; spawn 1, 3, 2; init 2, 4, 9; never observed; cases 4, 8, 12.
        assert_eq!(host.medians, [ms(0.1), ms(2.0), ms(4.0), Duration::ZERO, Duration::ZERO]);
        assert_eq!(host.case, ms(8.0));
        assert!((host.share(1) - 0.25).abs() < 1e-12 && (host.share(2) - 0.5).abs() < 1e-12, "{host:?}");
        assert_eq!(b.rows[1].medians, [Duration::ZERO, ms(10.0), ms(3.0), Duration::ZERO, ms(1.0)]);
        assert_eq!((b.rows[3].medians[3], b.rows[3].case), (ms(100.0), ms(110.0)), "a suite of its own");
    }

    #[test]
    fn every_known_phase_says_what_it_covers() {
        assert!(PHASE_ORDER.iter().all(|p| phase_meaning(p).is_some()));
        assert_eq!(phase_meaning("warp"), None);
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![ms(4.0), ms(1.0), ms(2.0), ms(3.0)]), ms(2.5));
        assert_eq!(median(Vec::new()), Duration::ZERO);
    }

    #[test]
    fn no_breakdown_without_phases() {
        let r = run_report(vec![Suite::new("namespaces", vec![case("clone3/host/pid", &[])])]);
        assert_eq!(r.phase_breakdown(), None);
        let zero = BreakdownRow {
            suite: "s".into(),
            launcher: "clone3".into(),
            rootfs: "host".into(),
            cases: 1,
            medians: vec![ms(1.0)],
            case: Duration::ZERO,
        };
        assert_eq!(zero.share(0), 0.0, "a case of no time has no shares");
    }
}
