//! Expected differences: checks on which a real tool, as configured, does not give what the spec
//! asked for. Each row is a real property of the tool, with the evidence (its documentation or
//! source) in `source`; [`assess`] explains a case's failures by these rows.
//!
//! The rules: a row names the observation it explains (a pattern of the judge's evidence), so it
//! explains only that: a failure of its check that was observed differently is unexplained, and
//! the row stale. An error is never explained. A failure that matches no row is unexplained (the
//! case fails); a row whose check passed, was skipped or was observed differently is stale (the
//! case fails too: the table must describe the tool as it is). Rows never widen a tolerance or
//! change an expectation; the verdict stays a failure, explained.
//! Isolation a tool adds on its own is not a difference: it is a documented default, and the oracle
//! knows it through `Launcher::effective`.

use serde::Serialize;

use isoprobe_probes::ns::NsKind;

use super::registry;
use super::{ToolDefault, ToolInfo};
use crate::check::CheckId;
use crate::run::Harness;
use crate::spec::{CaseSpec, LauncherKind, Runner};
use crate::verdict::{CaseOutcome, Role, Verdict};

/// One expected difference.
#[derive(Debug)]
pub struct Difference {
    pub launcher: LauncherKind,
    pub check: CheckId,
    /// Whether the row applies to a case (the effective spec, as the oracle judges it).
    pub when: fn(&CaseSpec) -> bool,
    /// The observation it explains, as the judge's evidence reads.
    pub pattern: Pattern,
    /// What the tool gives instead, in a few words.
    pub observed: &'static str,
    /// Where the tool documents it, or the source line that does it.
    pub source: &'static str,
}

/// What a failure's evidence must be for a row to explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// The evidence is exactly this.
    Is(&'static str),
    /// The evidence starts with this.
    StartsWith(&'static str),
    /// The evidence holds this.
    Holds(&'static str),
}

impl Pattern {
    pub fn matches(self, evidence: &str) -> bool {
        match self {
            Pattern::Is(p) => evidence == p,
            Pattern::StartsWith(p) => evidence.starts_with(p),
            Pattern::Holds(p) => evidence.contains(p),
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Is(p) => write!(f, "evidence `{p}`"),
            Pattern::StartsWith(p) => write!(f, "evidence starting `{p}`"),
            Pattern::Holds(p) => write!(f, "evidence holding `{p}`"),
        }
    }
}

/// The probe's links are `lo` alone, up (the judge's evidence: `netlink: <probe's>; host: ...`).
const LO_UP_ALONE: Pattern = Pattern::StartsWith("netlink: lo(up); host: ");

fn new_net(s: &CaseSpec) -> bool {
    s.has(NsKind::Net)
}

fn new_pid(s: &CaseSpec) -> bool {
    s.has(NsKind::Pid)
}

fn new_cgroup(s: &CaseSpec) -> bool {
    s.has(NsKind::Cgroup)
}

/// The table. Rows are grouped by launcher; a comment on each says why it is a property of the
/// tool and not of the harness. util-linux unshare(1) and nsenter(1) have no row: they give exactly
/// what they are asked for.
pub static DIFFERENCES: &[Difference] = &[
    // bubblewrap configures the loopback device of every network namespace it creates: the probe
    // sees `lo` up where a fresh namespace has it down. Not documented in bwrap(1); the source does
    // it unconditionally.
    Difference {
        launcher: LauncherKind::Bwrap,
        check: CheckId::NetLinks,
        when: new_net,
        pattern: LO_UP_ALONE,
        observed: "lo is up: bwrap brings the loopback device up in its new network namespace",
        source: "bubblewrap source: network.c loopback_setup(), called for every --unshare-net",
    },
    // runc gives every new network namespace a loopback "network" and brings lo up.
    Difference {
        launcher: LauncherKind::Runc,
        check: CheckId::NetLinks,
        when: new_net,
        pattern: LO_UP_ALONE,
        observed: "lo is up: runc configures the loopback device of a new network namespace",
        source: "runc source: libcontainer/specconv/spec_linux.go adds a `loopback` network for a new network \
                 namespace; libcontainer/network_linux.go (loopback strategy) sets lo up",
    },
    // crun, like runc, brings up the loopback device of a new network namespace.
    Difference {
        launcher: LauncherKind::Crun,
        check: CheckId::NetLinks,
        when: new_net,
        pattern: LO_UP_ALONE,
        observed: "lo is up: crun configures the loopback device of a new network namespace",
        source: "crun source: src/libcrun/linux.c, libcrun_configure_network() sets lo up for a new network namespace",
    },
    // systemd-nspawn leaves the container only the loopback device and brings it up.
    Difference {
        launcher: LauncherKind::Nspawn,
        check: CheckId::NetLinks,
        when: new_net,
        pattern: LO_UP_ALONE,
        observed: "lo is up: systemd-nspawn configures the loopback device of its private network",
        source: "systemd-nspawn(1), --private-network: \"all network interfaces unavailable in the container, with the \
                 exception of the loopback device\"; systemd source: nspawn.c calls loopback_setup() in the container",
    },
    // lxc-execute runs its own init (lxc-init) as pid 1 of a new pid namespace and the command as
    // its child: the probe is pid 2, and its parent (lxc-init) is inside the namespace.
    Difference {
        launcher: LauncherKind::Lxc,
        check: CheckId::PidSelfIsInit,
        when: new_pid,
        pattern: Pattern::Is("getpid() = 2"),
        observed: "the probe is pid 2: lxc-execute runs lxc-init as pid 1",
        source: "lxc-execute(1): \"in the container, lxc-init has the pid 1 and the first process of the application \
                 has the pid 2\"",
    },
    Difference {
        launcher: LauncherKind::Lxc,
        check: CheckId::PidParentOutside,
        when: new_pid,
        pattern: Pattern::Is("getppid() = 1"),
        observed: "getppid() is 1: the probe's parent is lxc-init, inside the pid namespace",
        source: "lxc-execute(1): \"lxc-init has the pid 1 and the first process of the application has the pid 2\"",
    },
    // lxc-attach does not join the container's cgroup2 leaf itself but a `.lxc` child of it
    // (cgroup2 forbids processes in a cgroup whose controllers are delegated to children), so in
    // the container's cgroup namespace the joiner sees `0::/.lxc` rather than `0::/`.
    Difference {
        launcher: LauncherKind::LxcAttach,
        check: CheckId::CgroupProcSelfCgroup,
        when: new_cgroup,
        pattern: Pattern::Holds("\"0::/.lxc\""),
        observed: "the cgroup2 line reads `0::/.lxc`: lxc-attach attaches into a `.lxc` leaf of the container's cgroup",
        source: "liblxc source: cgroups/cgfsng.c, __cg_unified_attach() creates and enters the `.lxc` leaf",
    },
];

/// Which rows apply to `check` of a probe started by `launcher` under `spec`.
pub fn rows_for(launcher: LauncherKind, check: CheckId, spec: &CaseSpec) -> Vec<&'static Difference> {
    DIFFERENCES.iter().filter(|d| d.launcher == launcher && d.check == check && (d.when)(spec)).collect()
}

/// A failure explained by a row.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub role: Role,
    pub check: CheckId,
    pub verdict: Verdict,
    pub observed: &'static str,
    pub source: &'static str,
}

/// A case judged against the launcher's documented defaults and expected differences.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub launcher: LauncherKind,
    pub tool: Option<ToolInfo>,
    /// Isolation the tool added on its own (the oracle judged with it).
    pub defaults: Vec<ToolDefault>,
    pub explained: Vec<Explained>,
    /// Failures no row explains, and errors of the case itself.
    pub unexplained: Vec<String>,
    /// Rows that predicted a difference on a check that passed.
    pub stale: Vec<String>,
}

impl Assessment {
    /// Every verdict is a pass, a skip, or an explained failure, and no row is stale.
    pub fn conforms(&self) -> bool {
        self.unexplained.is_empty() && self.stale.is_empty()
    }
}

/// Judges `outcome` (from `Harness::run_case`) against the launcher's defaults and differences.
pub fn assess(outcome: &CaseOutcome, runner: Runner) -> Assessment {
    let kind = outcome.spec.launcher;
    let launcher = registry::launcher(kind);
    let resolved = outcome.spec.resolve(runner);
    let mut a = Assessment {
        launcher: kind,
        tool: launcher.tool().ok().flatten().cloned(),
        defaults: registry::effective(kind.container_launcher(), &resolved, runner).defaults,
        explained: Vec::new(),
        unexplained: Vec::new(),
        stale: Vec::new(),
    };
    if let Some(e) = &outcome.error {
        a.unexplained.push(format!("{}: {e}", outcome.name));
    }
    for run in &outcome.runs {
        let by = run.role.launched_by(kind);
        let spec = registry::effective(by, &resolved, runner).spec;
        for r in run.checks() {
            let rows = rows_for(by, r.check, &spec);
            let stale = |row: &Difference, what: String| {
                format!(
                    "{} ({:?}): {}: the table expects `{}` ({}; {}), but {what}",
                    outcome.name, run.role, r.check, row.observed, row.pattern, row.source
                )
            };
            match (&r.verdict, rows.first()) {
                (v @ Verdict::Fail { evidence, .. }, Some(row)) if row.pattern.matches(evidence) => {
                    a.explained.push(Explained {
                        role: run.role,
                        check: r.check,
                        verdict: v.clone(),
                        observed: row.observed,
                        source: row.source,
                    })
                }
                (v @ Verdict::Fail { evidence, .. }, Some(row)) => {
                    a.unexplained.extend(outcome_line(&outcome.name, run.role, &r.check, v));
                    a.stale.push(stale(row, format!("the check failed observing something else: {evidence}")));
                }
                (Verdict::Pass { observed, .. }, Some(row)) => {
                    a.stale.push(stale(row, format!("the check passed observing {observed}")))
                }
                (Verdict::Skip { reason, .. }, Some(row)) => {
                    a.stale.push(stale(row, format!("the check was skipped: {reason}")))
                }
                // An error is never explained: nothing was observed to compare with the row.
                (v, _) if v.is_failure() => a.unexplained.extend(outcome_line(&outcome.name, run.role, &r.check, v)),
                _ => {}
            }
        }
    }
    // Limit checks have no expected differences: a tool that expresses a limit must enforce it
    // as the oracle says (limit cases of launchers that cannot express them are skipped).
    for run in &outcome.runs {
        for r in run.limits() {
            a.unexplained.extend(outcome_line(&outcome.name, run.role, &r.check, &r.verdict));
        }
    }
    // A joiner that sees something else than the container is explained when one of the two
    // sides' observations is an explained difference of that check.
    for m in &outcome.join_mismatches {
        if !a.explained.iter().any(|e| m.starts_with(&format!("{}:", e.check))) {
            a.unexplained.push(format!("{}: joiner and container disagree: {m}", outcome.name));
        }
    }
    a
}

/// One case run through one launcher and judged with the launcher's documented defaults and
/// expected differences. `outcome.passed()` is the raw verdict; `assessment.conforms()` says
/// whether every failure is explained.
#[derive(Debug, Clone, Serialize)]
pub struct LauncherOutcome {
    pub outcome: CaseOutcome,
    pub assessment: Assessment,
}

/// Runs `spec` through launcher `kind` (the spec's own launcher field is replaced).
pub fn run_case_on(harness: &Harness, kind: LauncherKind, spec: &CaseSpec) -> LauncherOutcome {
    let spec = CaseSpec { launcher: kind, ..spec.clone() };
    let outcome = harness.run_case(&spec);
    let assessment = assess(&outcome, harness.runner());
    LauncherOutcome { outcome, assessment }
}

fn outcome_line(name: &str, role: Role, check: &dyn std::fmt::Display, v: &Verdict) -> Option<String> {
    let who = if role == Role::Joiner { " (joiner)" } else { "" };
    match v {
        Verdict::Fail { expected, observed, evidence } => {
            Some(format!("{name}{who}: {check}: expected {expected}, observed {observed} ({evidence})"))
        }
        Verdict::Error { cause } => Some(format!("{name}{who}: {check}: could not observe: {cause}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failing limit check never conforms: no table row explains it.
    #[test]
    fn a_failing_limit_check_is_unexplained() {
        use crate::limits::LimitCheck;
        use crate::verdict::{CaseOutcome, LimitResult, ProbeRun};
        let (name, spec) = registry::launcher_limit_matrix(LauncherKind::Lxc).remove(0);
        let run = |verdict: Verdict| ProbeRun {
            role: Role::Container,
            init: Vec::new(),
            judged: crate::verdict::Judged::Limits(vec![LimitResult { check: LimitCheck::Memory, verdict }]),
            exit: "exit 0".into(),
            stderr: String::new(),
        };
        let outcome = |verdict| CaseOutcome {
            name: name.clone(),
            spec: spec.clone(),
            skipped: None,
            error: None,
            runs: vec![run(verdict)],
            join_mismatches: Vec::new(),
            duration: std::time::Duration::ZERO,
            phases: Default::default(),
            defects: Vec::new(),
        };
        let root = Runner { uid: 0, gid: 0 };
        let fail =
            Verdict::Fail { expected: "OOM at 64 MiB".into(), observed: "exit 0".into(), evidence: String::new() };
        let a = assess(&outcome(fail), root);
        assert!(!a.conforms() && a.unexplained[0].contains("memory/oom-at-max"), "{:?}", a.unexplained);
        let pass = Verdict::Pass { expected: String::new(), observed: String::new(), evidence: String::new() };
        assert!(assess(&outcome(pass), root).conforms());
    }

    /// A row explains only the observation it names: the same check failing on other evidence is
    /// unexplained and the row stale; an error is never explained; a pass or a skip under a row is
    /// stale.
    #[test]
    fn a_row_explains_only_its_own_observation() {
        use crate::verdict::{CaseOutcome, CheckResult, ProbeRun};
        let root = Runner { uid: 0, gid: 0 };
        let spec = CaseSpec {
            launcher: LauncherKind::Bwrap,
            ..crate::matrix::spec_for(
                "net+mnt".parse().unwrap(),
                crate::spec::RootfsMode::PivotRoot,
                LauncherKind::Bwrap,
            )
        };
        let outcome = |verdict: Verdict| CaseOutcome {
            name: spec.name(),
            spec: spec.clone(),
            skipped: None,
            error: None,
            runs: vec![ProbeRun {
                role: Role::Container,
                init: Vec::new(),
                judged: crate::verdict::Judged::Checks(vec![CheckResult { check: CheckId::NetLinks, verdict }]),
                exit: "exit 0".into(),
                stderr: String::new(),
            }],
            join_mismatches: Vec::new(),
            duration: std::time::Duration::ZERO,
            phases: Default::default(),
            defects: Vec::new(),
        };
        let fail = |evidence: &str| Verdict::Fail {
            expected: "isolated".into(),
            observed: "neither".into(),
            evidence: evidence.into(),
        };
        // What bwrap really gives: lo alone, up.
        let a = assess(&outcome(fail("netlink: lo(up); host: eth0(up),lo(up)")), root);
        assert!(a.conforms() && a.explained.len() == 1, "{a:?}");
        // The host's links leaking in, or an extra link: not bwrap's documented difference.
        for leaked in [
            "netlink: eth0(up),lo(up); host: eth0(up),lo(up)",
            "netlink: lo(up),veth0(up); host: eth0(up),lo(up)",
            "netlink: lo(down); host: eth0(up),lo(up)",
        ] {
            let a = assess(&outcome(fail(leaked)), root);
            assert!(!a.conforms() && a.explained.is_empty(), "{leaked}: {a:?}");
            assert_eq!((a.unexplained.len(), a.stale.len()), (1, 1), "{leaked}: {a:?}");
        }
        let a = assess(&outcome(Verdict::Error { cause: "netlink dump failed".into() }), root);
        assert!(a.explained.is_empty() && a.unexplained.len() == 1, "{a:?}");
        let a = assess(&outcome(Verdict::Skip { requirement: "x".into(), reason: "y".into() }), root);
        assert!(!a.conforms() && a.stale.len() == 1, "{a:?}");
        let pass = Verdict::Pass { expected: "isolated".into(), observed: "isolated".into(), evidence: String::new() };
        assert!(!assess(&outcome(pass), root).conforms());
    }

    /// Every row is reachable (some spec of the launcher's matrix matches it) and cites a source.
    #[test]
    fn every_row_has_a_source_and_applies_somewhere() {
        let root = Runner { uid: 0, gid: 0 };
        for d in DIFFERENCES {
            assert!(!d.source.trim().is_empty() && !d.observed.trim().is_empty(), "{d:?}");
            let any = registry::launcher_matrix(d.launcher.container_launcher(), root)
                .into_iter()
                .chain(registry::launcher_matrix(d.launcher, root))
                .any(|s| (d.when)(&registry::effective(d.launcher, &s.resolve(root), root).spec));
            assert!(any, "no case of {} matches the row on {}", d.launcher.name(), d.check);
        }
    }
}
