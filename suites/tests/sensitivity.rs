//! The sensitivity suite: each `CLONE_NEW*` flag is lost at the exact system call (the fault plant,
//! `isoprobe_probes::fault`: the clone3/clone flags, the unsharer's unshare(2), each setns(2) of a
//! joiner, the probe's own unshare of the time and cgroup namespaces) while the spec and the
//! oracle keep the full promise, as with a runtime that silently loses a namespace. For every
//! kind × every native launcher path × every rootfs mode, on the spec with all eight kinds, and on
//! the spec with that kind alone (with a mount namespace where pivot_root needs one) wherever the
//! namespace matrix runs single kinds (every rootfs mode through clone3, the host filesystem
//! through the other paths); and through util-linux unshare(1) on the host filesystem, whose
//! options the plant drops (one per kind, and those implying it), on the spec with all eight kinds
//! (a skip with the reason where the tool is not installed; see [`TOOLS`] for what is not
//! covered and why); and on every mount case with a mount namespace (`matrix::mount_cases`),
//! losing each kind it has:
//!
//! - the case must not pass, and must end in no error (neither the case nor any check);
//! - every behavioural check of the lost kind whose expectation differs between the spec and the
//!   spec without the kind must fail by itself (not only `<kind>/ns-inode`), unless it was skipped
//!   (its requirement unmet here, with the reason);
//! - no check may fail that does not depend on the lost kind;
//! - where the interlock refused a step in the lost kind's namespace, each of that kind's failures
//!   names the refusal (the evidence a user needs); losing the time namespace of a clone3 case with
//!   offsets must show the refusal of the launcher's step (it writes them before the exec);
//! - the host must be left exactly as found (the interlock refuses every state-changing step in
//!   a namespace that is the harness's: the suite's host snapshot covers it).
//!
//! At the end it prints the sensitivity table (kind × check: cases that caught the loss / cases
//! expected to) and writes it as JSON to `<target>/isoprobe/sensitivity.json`.
//!
//! A joiner (the setns paths) enters the container's root through /proc/<pid>/root and looks up
//! paths through the container's mount tree whichever mount namespace it is in: the checks that
//! look at files through its root ([`VIEW_CHECKS`]) cannot see a lost mount or network namespace
//! of the joiner's own; `mnt/own-mount` and the identity checks do. Those pairs are listed as not
//! expected, with that reason, in the table.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use isoprobe_harness::launcher::registry::launcher_matrix;
use isoprobe_harness::matrix::{mount_cases, spec_for};
use isoprobe_harness::oracle::expect;
use isoprobe_harness::{CaseSpec, CheckId, Harness, LauncherKind, NsKind, NsSet, RootfsMode, Verdict};
use isoprobe_suites::{skip_outcome, suite_main};
use libtest_mimic::{Completion, Failed, Trial};

/// The native launcher paths.
const PATHS: [LauncherKind; 5] = [
    LauncherKind::Clone3,
    LauncherKind::Clone,
    LauncherKind::Unshare,
    LauncherKind::SetnsNsFiles,
    LauncherKind::SetnsPidfd,
];

/// The external launchers whose flags the plant drops, and the rootfs modes in which a lost flag
/// still leaves the probe a view to observe from: util-linux unshare(1) on the host filesystem
/// takes one option per kind. Not here, with the reason: unshare(1) in a chroot (`--root`)
/// without its `--pid` still mounts a /proc there and refuses to start (EPERM), and without its
/// `--mount` leaves the new root with no /proc at all; nsenter(1) without `--pid` runs the probe
/// in a pid namespace whose /proc (the container's) does not show it; the other tools take a
/// configuration file, or always create some kinds.
const TOOLS: [(LauncherKind, RootfsMode); 1] = [(LauncherKind::UtilUnshare, RootfsMode::Host)];

/// Checks that look at files through the probe's root: for a joiner, whose root is the
/// container's, they follow the container's mount tree whatever mount namespace it is in.
const VIEW_CHECKS: [CheckId; 6] = [
    CheckId::MntHostMountVisible,
    CheckId::MntHostRootReachable,
    CheckId::MntChrootEscape,
    CheckId::NetSysfsClassNet,
    CheckId::PidProcListsHostProcess,
    CheckId::PidProcHostNet,
];

/// Per (kind, check): cases that caught the loss, cases expected to, and the reasons of pairs
/// not expected where the oracle predicts a change.
#[derive(Debug, Default, Clone)]
struct Cell {
    caught: usize,
    expected: usize,
    exempt: usize,
}

static TABLE: Mutex<BTreeMap<(NsKind, String), Cell>> = Mutex::new(BTreeMap::new());

fn main() -> ExitCode {
    let code = suite_main(|h| {
        if !h.runner().is_root() {
            // One trial that says why: the plant drops flags from cases root alone can run
            // (CLONE_NEWUSER lost leaves the other kinds to be created without a user namespace).
            return vec![Trial::test("sensitivity/needs-root", || {
                skip_outcome(&isoprobe_harness::requirement::Requirement::Root.skip(
                    "the fault plant drops CLONE_NEWUSER too, which leaves the other kinds to be created without a \
                     user namespace",
                ))
                .map(drop)
            })];
        }
        let mut trials = Vec::new();
        for launcher in PATHS {
            for rootfs in RootfsMode::ALL {
                for kind in NsKind::ALL {
                    let mut single = NsSet::EMPTY.with(kind);
                    if rootfs == RootfsMode::PivotRoot {
                        single = single.with(NsKind::Mnt);
                    }
                    // The single kind where the matrix runs it: every rootfs mode through clone3,
                    // the host filesystem through the other paths.
                    let singles = (launcher == LauncherKind::Clone3 || rootfs == RootfsMode::Host).then_some(single);
                    for set in std::iter::once(NsSet::ALL).chain(singles) {
                        let spec = spec_for(set, rootfs, launcher);
                        if spec.validate().is_ok() {
                            trials.push(trial(h, spec, kind));
                        }
                    }
                }
            }
        }
        // The mount cases with a mount namespace, losing each kind they have (mnt: the copy and its
        // mode are gone; user: the copy is the host's peer, and not locked).
        for spec in mount_cases().into_iter().filter(|s| s.has(NsKind::Mnt)) {
            for kind in spec.namespaces.iter() {
                trials.push(trial(h, spec.clone(), kind));
            }
        }
        // The tools, on their matrix's spec with all eight kinds (the id maps they can express).
        for (launcher, rootfs) in TOOLS {
            let all = launcher_matrix(launcher, h.runner()).into_iter();
            for spec in all.filter(|s| s.namespaces == NsSet::ALL && s.rootfs == rootfs) {
                for kind in NsKind::ALL {
                    trials.push(trial(h, spec.clone(), kind));
                }
            }
        }
        trials
    });
    print_table();
    code
}

fn trial(h: &Arc<Harness>, spec: CaseSpec, kind: NsKind) -> Trial {
    let h = Arc::clone(h);
    Trial::ignorable_test(format!("sensitivity/{}/lose-{kind}", spec.name()), move || {
        if let Err(skip) = h.requirement(&spec) {
            return skip_outcome(&skip);
        }
        let runner = h.runner();
        let spec = spec.resolve(runner);
        let without = spec.without(kind).resolve(runner);
        let joiner = spec.launcher.joins();
        // What must catch the loss, and what is exempt (with the reason).
        let mut must: Vec<CheckId> = Vec::new();
        let mut exempt: Vec<CheckId> = Vec::new();
        for c in CheckId::all_for(&spec) {
            if matches!(c, CheckId::NsInode(_)) || !c.kinds().contains(&kind) {
                continue;
            }
            if expect(&spec, runner, c) == expect(&without, runner, c) {
                continue;
            }
            if joiner && matches!(kind, NsKind::Mnt | NsKind::Net) && VIEW_CHECKS.contains(&c) {
                exempt.push(c);
            } else {
                must.push(c);
            }
        }
        let outcome = h.run_case_planted(&spec, NsSet::EMPTY.with(kind));
        if let Some(e) = &outcome.error {
            return Err(format!("{}: the case ended in an error: {e}", outcome.name).into());
        }
        // The judged probe: the joiner on the setns paths (its container is clone3's, unplanted).
        let run = outcome.runs.last().ok_or("the case has no probe run")?;
        let mut problems = Vec::new();
        let mut caught = Vec::new();
        for r in run.checks() {
            match &r.verdict {
                Verdict::Error { cause } => problems.push(format!("{}: error: {cause}", r.check)),
                Verdict::Fail { .. } if !r.check.kinds().contains(&kind) => {
                    problems.push(format!("{} failed, but does not depend on {kind}", r.check))
                }
                Verdict::Fail { .. } => caught.push(r.check),
                _ => {}
            }
        }
        if !caught.contains(&CheckId::NsInode(kind)) {
            problems.push(format!("{kind}/ns-inode did not fail"));
        }
        let refusals: Vec<&String> =
            run.init.iter().filter(|s| s.starts_with(&format!("refused by the interlock: {kind}: "))).collect();
        if !refusals.is_empty() {
            for r in run.checks().iter().filter(|r| r.check.kind() == kind) {
                if let Verdict::Fail { evidence, .. } = &r.verdict
                    && !evidence.contains("refused")
                {
                    problems.push(format!("{} failed without naming the interlock's refusal: {evidence}", r.check));
                }
            }
        }
        let launcher_wrote_offsets = kind == NsKind::Time
            && spec.launcher == LauncherKind::Clone3
            && spec.time_offsets.is_some_and(|t| !t.is_zero());
        if launcher_wrote_offsets && !refusals.iter().any(|s| s.contains("before the exec (the launcher) refused")) {
            problems.push(format!("no refusal of the launcher's time offsets among the init steps {:?}", run.init));
        }
        // A check skipped here (its requirement unmet, with the reason) cannot catch anything.
        let skipped: Vec<CheckId> = run.checks().iter().filter(|r| r.verdict.is_skip()).map(|r| r.check).collect();
        must.retain(|c| !skipped.contains(c));
        for c in &must {
            if !caught.contains(c) {
                let v = run.checks().iter().find(|r| r.check == *c).map(|r| format!("{:?}", r.verdict));
                problems.push(format!("{c} did not catch the loss: {}", v.unwrap_or_else(|| "not judged".into())));
            }
        }
        {
            let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
            for c in &must {
                let cell = t.entry((kind, c.to_string())).or_default();
                cell.expected += 1;
                cell.caught += usize::from(caught.contains(c));
            }
            for c in &exempt {
                t.entry((kind, c.to_string())).or_default().exempt += 1;
            }
            let id = t.entry((kind, CheckId::NsInode(kind).to_string())).or_default();
            id.expected += 1;
            id.caught += usize::from(caught.contains(&CheckId::NsInode(kind)));
        }
        if outcome.passed() {
            problems.push("the case passed".into());
        }
        if problems.is_empty() {
            Ok(Completion::Completed)
        } else {
            Err(Failed::from(format!(
                "losing {kind} in {}:\n  {}\n{}",
                outcome.name,
                problems.join("\n  "),
                outcome.failure_lines().join("\n")
            )))
        }
    })
}

/// The table, on stderr and as JSON next to the other isoprobe outputs.
fn print_table() {
    let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_empty() {
        return;
    }
    eprintln!("\nsensitivity (lost kind × check: cases that caught the loss / cases expected to):");
    let mut rows = Vec::new();
    for ((kind, check), cell) in t.iter() {
        let exempt = if cell.exempt > 0 {
            format!("  (+{} joiner cases not expected: the joiner looks through the container's root)", cell.exempt)
        } else {
            String::new()
        };
        eprintln!("  lose {kind:<6} {check:<32} {:>3} / {:<3}{exempt}", cell.caught, cell.expected);
        rows.push(serde_json::json!({
            "kind": kind.name(), "check": check, "caught": cell.caught, "expected": cell.expected,
            "exempt_joiner_view": cell.exempt,
        }));
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(|p| p.join("isoprobe"));
    if let Some(dir) = dir
        && std::fs::create_dir_all(&dir).is_ok()
    {
        let path = dir.join("sensitivity.json");
        let doc = serde_json::json!({ "schema_version": 1, "kind": "isoprobe-sensitivity", "rows": rows });
        match std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap_or_default()) {
            Ok(()) => eprintln!("sensitivity table written to {}", path.display()),
            Err(e) => eprintln!("failed to write {}: {e}", path.display()),
        }
    }
}
