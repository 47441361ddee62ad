//! `isoprobe compare BASE NEW`: the regression gate.
//!
//! The gate fails closed: what BASE showed and NEW no longer shows is a regression unless the
//! user says it is deliberate, so that a run that skipped, lost or never ran its cases cannot pass
//! as "no regression".
//!
//! - Verdicts. A slot is a check of a case's container or joiner (` (joiner)`), or a limit's
//!   enforcement (`limit/<check>`). The comparison fails on each of these, listed by category:
//!   - regressions: a slot that passed in BASE and fails or errors in NEW, a case that ran in
//!     BASE and errors in NEW, a joiner that starts to disagree with its container;
//!   - new failures: a slot skipped or absent in BASE that fails or errors in NEW, a case skipped
//!     in BASE that errors in NEW, and a case only NEW has that fails, errors or has a failing
//!     check (a case only NEW has that passes is just added);
//!   - new skips: a slot judged in BASE (passed, or failed: a skip would hide whether it still
//!     fails) or a case that ran or errored in BASE, skipped in NEW. `allow_new_skips`
//!     (`--allow-new-skips`) reports them without failing;
//!   - missing: what BASE holds and NEW does not hold at all: a suite (reported once, with its
//!     case count), a case, or a slot of a case both ran. `allow_missing` (`--allow-missing`)
//!     reports them without failing. A missing slot counts as missing, not as a skip: a skip in
//!     NEW carries the requirement the machine lacks, which is what `--allow-new-skips` accepts,
//!     while a vanished slot says nothing (a check renamed or dropped between isoprobe versions,
//!     a joiner that did not run), like a case a narrower run left out;
//!   - an empty NEW (no case, while BASE has some), even with `allow_missing`: a run that
//!     produced nothing is never the deliberate subset that option is for.
//!
//!   Fixes, slots still failing and cases added in NEW are reported and never fail it. The
//!   kernel gate judges verdicts with the same defaults.
//! - Benchmarks: a change counts only when its whole confidence interval lies beyond the
//!   threshold (default 10%). The interval of the ratio NEW/BASE is taken conservatively as
//!   `[new.ci_low / base.ci_high, new.ci_high / base.ci_low]`. When the machines differ (CPU
//!   model or count, hypervisor), times are first divided by a calibration case measured on the
//!   same machine, and a change must hold against every calibration both sides have.
//! - Fingerprints: runs whose privilege, capabilities, namespace kinds, cgroup layout or user
//!   namespace policy differ expect different verdicts; comparing them is refused unless forced.
//!   A different kernel is what the gate exists for, and is only noted. In the kernel gate
//!   (`kernel_gate`), the cgroup layout is part of the platform under test too (a kernel in a VM
//!   with cgroup2 alone against a hybrid host): it is noted, and every verdict compared. Its
//!   latency threshold is measured between the two runs (how far their calibrations moved
//!   apart), and under QEMU's TCG emulator latencies are shown but never fail it.
//!
//! Exit status: 0 no regression, 1 regression, 2 could not compare.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::bench::{BenchCase, BenchSummary};
use crate::load::Document;
use crate::model::{Report, verdict_detail};
use crate::record::{CaseOutcome, Fingerprint, Role, Verdict};
use crate::render::escape::{markdown_cell as cell, markdown_code as code};
use crate::render::units;

/// Exit status: no regression.
pub const EXIT_OK: u8 = 0;
/// Exit status: a regression.
pub const EXIT_REGRESSION: u8 = 1;
/// Exit status: the inputs could not be compared.
pub const EXIT_INCOMPARABLE: u8 = 2;

/// How benchmark times are put side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Basis {
    /// Nanoseconds when the machines match, ratios to calibration otherwise.
    #[default]
    Auto,
    /// Nanoseconds, even across machines.
    Absolute,
    /// Ratios to calibration, even on the same machine.
    Calibration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// A benchmark change counts when its interval lies entirely beyond ±threshold (0.10 = 10%).
    pub threshold: f64,
    /// Compare even when the fingerprints make the runs incomparable.
    pub force: bool,
    /// Report new skips (a slot judged in BASE, a case that ran or errored there, skipped in
    /// NEW) without failing the comparison.
    pub allow_new_skips: bool,
    /// Report suites, cases and slots missing from NEW without failing the comparison (an empty
    /// NEW still fails it).
    pub allow_missing: bool,
    pub basis: Basis,
    /// Judge ratios against this calibration only (default: every calibration both sides have).
    pub calibration: Option<String>,
    /// The kernel gate: BASE and NEW are different platforms on purpose (kernel, and with it the
    /// cgroup layout it was booted with); a layout difference is noted instead of refused.
    pub kernel_gate: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            threshold: 0.10,
            force: false,
            allow_new_skips: false,
            allow_missing: false,
            basis: Basis::Auto,
            calibration: None,
            kernel_gate: false,
        }
    }
}

/// One verdict that changed between the runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub suite: String,
    pub case: String,
    /// The check, with ` (joiner)` for the joining probe, or `case`, or `join-consistency`, or
    /// (for a case only NEW has) `differences-table`.
    pub check: String,
    pub before: String,
    pub after: String,
}

/// How a benchmark moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Judgement {
    /// The whole interval is slower than 1 + threshold.
    Regression,
    /// The whole interval is faster than 1 − threshold.
    Improvement,
    /// The whole interval lies within ±threshold.
    Unchanged,
    /// The interval straddles a threshold: not enough evidence either way.
    Inconclusive,
}

/// One benchmark of both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchDelta {
    pub name: String,
    pub base_ns: f64,
    pub new_ns: f64,
    /// NEW / BASE (of times, or of ratios to `calibration`).
    pub ratio: f64,
    pub lo: f64,
    pub hi: f64,
    pub judgement: Judgement,
    /// The calibration the shown ratio is relative to, when comparing across machines.
    pub calibration: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchComparison {
    /// `None`: nanoseconds; otherwise the calibrations used.
    pub calibrations: Option<Vec<String>>,
    pub deltas: Vec<BenchDelta>,
    pub missing: Vec<String>,
    pub added: Vec<String>,
}

/// The outcome of comparing two documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub base: String,
    pub new: String,
    /// Why the runs cannot be compared; with `forced` false nothing else was compared.
    pub refused: Vec<String>,
    pub forced: bool,
    /// Differences that do not prevent comparing (the kernel, tool versions, the machine).
    pub notes: Vec<String>,
    /// Passed in BASE, fails or errors in NEW; ran in BASE, errors in NEW; joiner agreement lost.
    pub regressions: Vec<Change>,
    /// Failing in NEW, but not judged in BASE (skipped there, absent, or the case only NEW has).
    pub new_failures: Vec<Change>,
    pub fixes: Vec<Change>,
    /// Judged in BASE, skipped in NEW.
    pub new_skips: Vec<Change>,
    /// Slots of a case both ran that BASE holds and NEW does not.
    pub missing_checks: Vec<Change>,
    pub still_failing: usize,
    pub unchanged: usize,
    /// `suite/case` in BASE only, except the cases of `missing_suites`.
    pub missing_cases: Vec<String>,
    /// Suites with cases in BASE and none in NEW, with their number of cases in BASE.
    pub missing_suites: Vec<(String, usize)>,
    /// BASE holds cases and NEW none (`missing_suites` then lists all of BASE).
    pub new_empty: bool,
    /// `suite/case` in NEW only that do not fail (those that do are `new_failures`).
    pub added: Vec<String>,
    pub bench: Option<BenchComparison>,
    pub allow_new_skips: bool,
    pub allow_missing: bool,
    pub threshold: f64,
    /// Why benchmark regressions are reported but do not fail the comparison (the kernel gate
    /// on an emulated CPU); `None`: they fail it.
    pub bench_not_gated: Option<String>,
}

/// The inputs are of different kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compare {base} ({base_kind}) with {new} ({new_kind}): both must be run reports or both benchmark summaries")]
pub struct KindMismatch {
    pub base: String,
    pub base_kind: &'static str,
    pub new: String,
    pub new_kind: &'static str,
}

pub fn compare(
    base: &Document,
    base_name: &str,
    new: &Document,
    new_name: &str,
    opts: &CompareOptions,
) -> Result<Comparison, KindMismatch> {
    let mut c = Comparison {
        base: base_name.to_owned(),
        new: new_name.to_owned(),
        refused: Vec::new(),
        forced: opts.force,
        notes: Vec::new(),
        regressions: Vec::new(),
        new_failures: Vec::new(),
        fixes: Vec::new(),
        new_skips: Vec::new(),
        missing_checks: Vec::new(),
        still_failing: 0,
        unchanged: 0,
        missing_cases: Vec::new(),
        missing_suites: Vec::new(),
        new_empty: false,
        added: Vec::new(),
        bench: None,
        allow_new_skips: opts.allow_new_skips,
        allow_missing: opts.allow_missing,
        threshold: opts.threshold,
        bench_not_gated: None,
    };
    let (bf, nf) = (base.fingerprint(), new.fingerprint());
    let (base_bench, new_bench) = match (base, new) {
        (Document::Run(b), Document::Run(n)) => {
            c.refused = verdict_incompatibilities(bf, nf);
            if opts.kernel_gate {
                let (platform, refused): (Vec<String>, Vec<String>) =
                    c.refused.drain(..).partition(|r| r.starts_with(LAYOUT_DIFFERS));
                c.refused = refused;
                c.notes.extend(
                    platform.into_iter().map(|r| format!("{r}: part of the platform under test (kernel gate)")),
                );
            }
            (b.bench.as_ref(), n.bench.as_ref())
        }
        (Document::Bench(b), Document::Bench(n)) => (Some(&**b), Some(&**n)),
        _ => {
            return Err(KindMismatch {
                base: base_name.into(),
                base_kind: base.kind(),
                new: new_name.into(),
                new_kind: new.kind(),
            });
        }
    };
    c.notes.extend(fingerprint_notes(bf, nf));
    if let (Some(b), Some(n)) = (base_bench, new_bench) {
        if opts.kernel_gate
            && let Some(side) = [("BASE", bf), ("NEW", nf)]
                .into_iter()
                .find(|(_, f)| f.hypervisor.vendor.as_deref() == Some(TCG))
                .map(|(side, _)| side)
        {
            c.bench_not_gated = Some(format!(
                "{side} ran under QEMU's TCG emulator (hypervisor {TCG}): between two runs of the same kernel \
                 there, clone3 with a time namespace went from 0.94 to 3.48 ms, +173% relative to calibrations \
                 that moved only 1.85× apart, so latencies are compared and shown but do not fail the kernel gate"
            ));
            c.notes.extend(c.bench_not_gated.iter().map(|why| format!("latency not gated: {why}")));
        }
        match bench_basis(b, n, opts) {
            Ok(cals) => {
                let mut opts = opts.clone();
                if opts.kernel_gate
                    && let Some(noise) = cals.as_deref().and_then(|cals| calibration_noise(b, n, cals))
                    && noise.factor - 1.0 > opts.threshold
                {
                    c.notes.push(format!(
                        "latency threshold measured in this job: ±{:.0}% (calibrations {} and {} moved {:.2}× apart \
                         between the runs; --threshold {:.0}%)",
                        (noise.factor - 1.0) * 100.0,
                        noise.fast,
                        noise.slow,
                        noise.factor,
                        opts.threshold * 100.0
                    ));
                    opts.threshold = noise.factor - 1.0;
                    c.threshold = opts.threshold;
                }
                let contended: Vec<String> = [("BASE", b), ("NEW", n)]
                    .iter()
                    .filter_map(|(side, s)| {
                        let k = s.cases.iter().filter(|c| c.contended).count();
                        (k > 0).then(|| format!("{side} {k}"))
                    })
                    .collect();
                if !contended.is_empty() {
                    c.notes.push(format!(
                        "benchmark cases measured on a contended CPU (too few full-speed samples; they read slow): \
                         {}; where only one side is contended the case is inconclusive",
                        contended.join(", ")
                    ));
                }
                c.bench = Some(compare_bench(b, n, cals, &opts))
            }
            Err(why) => c.refused.push(why),
        }
    } else if base_bench.is_some() != new_bench.is_some() {
        c.notes.push("only one of the reports carries benchmark results: benchmarks not compared".into());
    }
    if !c.refused.is_empty() && !opts.force {
        c.bench = None;
        return Ok(c);
    }
    if let (Document::Run(b), Document::Run(n)) = (base, new) {
        compare_verdicts(&mut c, b, n);
    }
    Ok(c)
}

/// The hypervisor name of QEMU's TCG emulator in a fingerprint.
const TCG: &str = "qemu-tcg";

/// How the cgroup-layout incompatibility begins (the kernel gate picks it out by this).
const LAYOUT_DIFFERS: &str = "cgroup layouts differ";

/// Differences that make the same spec expect different verdicts.
pub fn verdict_incompatibilities(b: &Fingerprint, n: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if b.user.euid != n.user.euid {
        out.push(format!(
            "BASE ran as euid {} and NEW as euid {}: what a case may do, and its default id maps, differ",
            b.user.euid, n.user.euid
        ));
    }
    if b.user.cap_eff != n.user.cap_eff {
        let only = |x: &Fingerprint, y: &Fingerprint| -> String {
            let names: Vec<&str> =
                x.user.capabilities.iter().filter(|c| !y.user.capabilities.contains(c)).map(String::as_str).collect();
            match names.len() {
                0 => "none".into(),
                n if n > 6 => format!("{} and {} more", names[..6].join(","), n - 6),
                _ => names.join(","),
            }
        };
        out.push(format!(
            "effective capabilities differ (CapEff BASE {}, NEW {}; only in BASE: {}; only in NEW: {})",
            b.user.cap_eff,
            n.user.cap_eff,
            only(b, n),
            only(n, b)
        ));
    }
    if b.namespaces != n.namespaces {
        out.push(format!("namespace kinds differ (BASE {}, NEW {})", b.namespaces, n.namespaces));
    }
    if b.cgroup.layout != n.cgroup.layout {
        out.push(format!("{LAYOUT_DIFFERS} (BASE {}, NEW {})", b.cgroup.layout.name(), n.cgroup.layout.name()));
    }
    if b.userns.unprivileged != n.userns.unprivileged {
        let side = |f: &Fingerprint| f.userns.blocked_by.clone().unwrap_or_else(|| "allowed".into());
        out.push(format!("unprivileged user namespaces: BASE {}, NEW {}", side(b), side(n)));
    }
    out
}

fn same_machine(b: &Fingerprint, n: &Fingerprint) -> bool {
    b.cpu.model == n.cpu.model && b.cpu.online == n.cpu.online && b.hypervisor == n.hypervisor
}

/// Differences worth knowing that do not prevent the comparison.
fn fingerprint_notes(b: &Fingerprint, n: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if b.kernel.release != n.kernel.release {
        out.push(format!("kernel {} → {}", b.kernel.release, n.kernel.release));
    }
    let keys: std::collections::BTreeSet<&String> =
        b.kernel_config.options.keys().chain(n.kernel_config.options.keys()).collect();
    let config: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (b.kernel_config.options.get(k), n.kernel_config.options.get(k));
            (x != y).then(|| format!("{k} {} → {}", x.map_or("?", |s| s), y.map_or("?", |s| s)))
        })
        .collect();
    if !config.is_empty() {
        out.push(format!("kernel config: {}", config.join(", ")));
    }
    if b.cgroup.v2_controllers != n.cgroup.v2_controllers
        || b.cgroup.v1.iter().map(|h| &h.controllers).ne(n.cgroup.v1.iter().map(|h| &h.controllers))
    {
        out.push("cgroup controllers differ".into());
    }
    if !same_machine(b, n) {
        out.push(format!(
            "machines differ: {} × {} ({}) → {} × {} ({})",
            b.cpu.online,
            b.cpu.model,
            b.hypervisor.vendor.as_deref().unwrap_or("no hypervisor"),
            n.cpu.online,
            n.cpu.model,
            n.hypervisor.vendor.as_deref().unwrap_or("no hypervisor")
        ));
    }
    if b.mount_count != n.mount_count {
        out.push(format!(
            "mount count {} → {} (unshare(CLONE_NEWNS) copies every mount)",
            b.mount_count, n.mount_count
        ));
    }
    for t in &n.tools {
        if let Some(o) = b.tools.iter().find(|o| o.name == t.name)
            && o.version != t.version
        {
            out.push(format!(
                "{} {} → {}",
                t.name,
                o.version.as_deref().unwrap_or("absent"),
                t.version.as_deref().unwrap_or("absent")
            ));
        }
    }
    out
}

/// A verdict slot of a case: (role, check name) → verdict.
fn slots(case: &CaseOutcome) -> BTreeMap<(u8, String), &Verdict> {
    let mut m = BTreeMap::new();
    for r in &case.runs {
        let role = match r.role {
            Role::Container => 0,
            Role::Joiner => 1,
        };
        for c in &r.checks {
            m.insert((role, c.check.name()), &c.verdict);
        }
        // A limit's enforcement is a verdict like any check's: `limit/memory/oom-at-max`.
        for l in &r.limits {
            m.insert((role, format!("limit/{}", l.check.name())), &l.verdict);
        }
    }
    m
}

fn slot_name((role, check): &(u8, String)) -> String {
    if *role == 1 { format!("{check} (joiner)") } else { check.clone() }
}

fn short(v: &Verdict) -> String {
    format!("{}: {}", v.label(), verdict_detail(v))
}

fn index(r: &Report) -> BTreeMap<(String, String), &CaseOutcome> {
    r.cases().map(|(s, c)| ((s.name.clone(), c.name.clone()), c)).collect()
}

/// Cases per suite name, in the order the suites first appear.
fn case_counts(r: &Report) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in &r.suites {
        match out.iter_mut().find(|(name, _)| *name == s.name) {
            Some((_, n)) => *n += s.cases.len(),
            None => out.push((s.name.clone(), s.cases.len())),
        }
    }
    out
}

fn compare_verdicts(c: &mut Comparison, base: &Report, new: &Report) {
    let (base_index, new_index) = (index(base), index(new));
    let new_counts = case_counts(new);
    let in_new = |suite: &str| new_counts.iter().any(|(name, n)| name == suite && *n > 0);
    // A suite NEW lacks is one entry with its size, not a list of every case it held.
    c.missing_suites = case_counts(base).into_iter().filter(|(name, n)| *n > 0 && !in_new(name)).collect();
    c.new_empty = new_index.is_empty() && !base_index.is_empty();
    for (suite, b) in base.cases() {
        let Some(&n) = new_index.get(&(suite.name.clone(), b.name.clone())) else {
            if in_new(&suite.name) {
                c.missing_cases.push(format!("{}/{}", suite.name, b.name));
            }
            continue;
        };
        let change = |check: &str, before: String, after: String| Change {
            suite: suite.name.clone(),
            case: b.name.clone(),
            check: check.to_owned(),
            before,
            after,
        };
        let ran = |x: &CaseOutcome| x.error.is_none() && x.skipped.is_none();
        let skip_text = |x: &CaseOutcome| {
            x.skipped.as_ref().map(|s| format!("skipped: {}: {}", s.requirement, s.reason)).unwrap_or_default()
        };
        match (ran(b), ran(n)) {
            (true, false) => {
                if let Some(e) = &n.error {
                    c.regressions.push(change("case", "ran".into(), format!("error: {e}")));
                } else {
                    c.new_skips.push(change("case", "ran".into(), skip_text(n)));
                }
                continue;
            }
            (false, true) => {
                if let Some(e) = &b.error {
                    c.fixes.push(change("case", format!("error: {e}"), "ran".into()));
                }
                // A case skipped in BASE: its checks are compared below as "not judged before".
            }
            (false, false) => {
                match (&b.error, &n.error) {
                    (Some(_), Some(_)) => c.still_failing += 1,
                    (None, Some(e)) => c.new_failures.push(change("case", skip_text(b), format!("error: {e}"))),
                    // An error in BASE at least showed the case could not be carried out; a skip
                    // in NEW no longer shows whether it still cannot.
                    (Some(e), None) => c.new_skips.push(change("case", format!("error: {e}"), skip_text(n))),
                    (None, None) => c.unchanged += 1,
                }
                continue;
            }
            (true, true) => {}
        }
        let (bs, ns) = (slots(b), slots(n));
        for (slot, nv) in &ns {
            let name = slot_name(slot);
            let Some(bv) = bs.get(slot) else {
                if nv.is_failure() {
                    c.new_failures.push(change(&name, "not judged".into(), short(nv)));
                }
                continue;
            };
            let list = match (bv.is_pass(), bv.is_failure(), nv.is_pass(), nv.is_failure(), nv.is_skip()) {
                (true, _, _, true, _) => &mut c.regressions,
                (false, false, _, true, _) => &mut c.new_failures,
                // A failure that becomes a skip is not fixed: NEW no longer shows whether it fails.
                (_, true, _, _, true) | (true, _, _, _, true) => &mut c.new_skips,
                (_, true, true, _, _) => &mut c.fixes,
                (_, true, _, true, _) => {
                    c.still_failing += 1;
                    continue;
                }
                _ => {
                    c.unchanged += 1;
                    continue;
                }
            };
            list.push(change(&name, short(bv), short(nv)));
        }
        for slot in bs.keys().filter(|s| !ns.contains_key(*s)) {
            c.missing_checks.push(change(&slot_name(slot), short(bs[slot]), "not in NEW".into()));
        }
        match (b.join_mismatches.is_empty(), n.join_mismatches.is_empty()) {
            (true, false) => {
                c.regressions.push(change("join-consistency", "agreed".into(), n.join_mismatches.join("; ")))
            }
            (false, true) => c.fixes.push(change("join-consistency", b.join_mismatches.join("; "), "agreed".into())),
            _ => {}
        }
    }
    for (suite, n) in new.cases() {
        if base_index.contains_key(&(suite.name.clone(), n.name.clone())) {
            continue;
        }
        // Nothing in BASE to judge it against, so what NEW judges about it stands on its own.
        let failures = new.case_failures(suite, n);
        if failures.is_empty() {
            c.added.push(format!("{}/{}", suite.name, n.name));
        }
        for f in failures {
            c.new_failures.push(Change {
                check: format!("{}{}", f.check, f.role_suffix()),
                before: "case not in BASE".into(),
                after: format!("{}: {}", f.label, f.detail),
                suite: f.suite,
                case: f.case,
            });
        }
    }
}

/// The calibrations to judge against, or `None` for nanoseconds; an error when the machines
/// differ and no calibration can bridge them.
fn bench_basis(b: &BenchSummary, n: &BenchSummary, opts: &CompareOptions) -> Result<Option<Vec<String>>, String> {
    let use_cal = match opts.basis {
        Basis::Absolute => false,
        Basis::Calibration => true,
        Basis::Auto => !same_machine(&b.fingerprint, &n.fingerprint),
    };
    if !use_cal {
        return Ok(None);
    }
    let common: Vec<String> = b.calibration.keys().filter(|k| n.calibration.contains_key(*k)).cloned().collect();
    match &opts.calibration {
        Some(want) if common.contains(want) => Ok(Some(vec![want.clone()])),
        Some(want) => Err(format!("calibration `{want}` is not in both summaries (both have: {})", list(&common))),
        None if common.is_empty() => Err(format!(
            "benchmarks ran on different machines and share no calibration case to compare ratios by \
             (BASE has {}, NEW has {}); pass --absolute to compare nanoseconds anyway",
            list(&b.calibration.keys().cloned().collect::<Vec<_>>()),
            list(&n.calibration.keys().cloned().collect::<Vec<_>>())
        )),
        None => Ok(Some(common)),
    }
}

/// How far apart two calibration cases moved between BASE and NEW.
#[derive(Debug, Clone, PartialEq)]
struct CalibrationNoise {
    /// NEW/BASE of the one divided by NEW/BASE of the other (≥ 1).
    factor: f64,
    fast: String,
    slow: String,
}

/// The kernel gate's latency noise, measured in the same job: calibrations are fixed operations
/// measured in the same VM as everything else, so how far two of them move apart between BASE and
/// NEW is timing noise of this pair of runs (TCG on a shared host: several-fold), and no latency
/// change smaller than that can be told from it. `None` with fewer than two calibrations.
fn calibration_noise(b: &BenchSummary, n: &BenchSummary, cals: &[String]) -> Option<CalibrationNoise> {
    let moved: Vec<(&String, f64)> = cals
        .iter()
        .filter_map(|c| {
            let (x, y) = (b.calibration.get(c)?, n.calibration.get(c)?);
            (*x > 0.0 && *y > 0.0).then(|| (c, y / x))
        })
        .collect();
    let lo = moved.iter().min_by(|x, y| x.1.total_cmp(&y.1))?;
    let hi = moved.iter().max_by(|x, y| x.1.total_cmp(&y.1))?;
    (moved.len() >= 2).then(|| CalibrationNoise { factor: hi.1 / lo.1, fast: lo.0.clone(), slow: hi.0.clone() })
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn judge(lo: f64, hi: f64, t: f64) -> Judgement {
    if lo > 1.0 + t {
        Judgement::Regression
    } else if hi < 1.0 - t {
        Judgement::Improvement
    } else if lo >= 1.0 - t && hi <= 1.0 + t {
        Judgement::Unchanged
    } else {
        Judgement::Inconclusive
    }
}

/// (ratio, lo, hi) of NEW over BASE, each time scaled by `scale` (BASE cal / NEW cal).
fn interval(b: &BenchCase, n: &BenchCase, scale: f64) -> (f64, f64, f64) {
    let div = |x: f64, y: f64| if y > 0.0 { x / y * scale } else { f64::INFINITY };
    (div(n.median_ns, b.median_ns), div(n.ci_low_ns, b.ci_high_ns), div(n.ci_high_ns, b.ci_low_ns))
}

fn compare_bench(
    b: &BenchSummary,
    n: &BenchSummary,
    cals: Option<Vec<String>>,
    opts: &CompareOptions,
) -> BenchComparison {
    let t = opts.threshold;
    let mut deltas = Vec::new();
    let mut missing = Vec::new();
    for bc in &b.cases {
        let Some(nc) = n.case(&bc.group, &bc.id) else {
            missing.push(bc.name());
            continue;
        };
        let mut delta = match &cals {
            None => {
                let (ratio, lo, hi) = interval(bc, nc, 1.0);
                BenchDelta {
                    name: bc.name(),
                    base_ns: bc.median_ns,
                    new_ns: nc.median_ns,
                    ratio,
                    lo,
                    hi,
                    judgement: judge(lo, hi, t),
                    calibration: None,
                }
            }
            Some(cals) => {
                let per: Vec<(String, (f64, f64, f64), Judgement)> = cals
                    .iter()
                    .map(|cal| {
                        let scale = b.calibration[cal] / n.calibration[cal];
                        let (r, lo, hi) = interval(bc, nc, scale);
                        (cal.clone(), (r, lo, hi), judge(lo, hi, t))
                    })
                    .collect();
                // Every calibration must agree; show the one that moved least.
                let first = per[0].2;
                let judgement = if per.iter().all(|p| p.2 == first) { first } else { Judgement::Inconclusive };
                let (cal, (ratio, lo, hi), _) = per
                    .iter()
                    .min_by(|x, y| x.1.0.ln().abs().total_cmp(&y.1.0.ln().abs()))
                    .cloned()
                    .unwrap_or_else(|| per[0].clone());
                BenchDelta {
                    name: bc.name(),
                    base_ns: bc.median_ns,
                    new_ns: nc.median_ns,
                    ratio,
                    lo,
                    hi,
                    judgement,
                    calibration: Some(cal),
                }
            }
        };
        // One sample has no interval: its "interval" is a point, and proves nothing either way.
        // A contended case's median mixes full-speed and slow-CPU samples (see `BenchCase`):
        // against a clean one it shows the host's load, not a change.
        if bc.samples < 2 || nc.samples < 2 || bc.contended != nc.contended {
            delta.judgement = Judgement::Inconclusive;
        }
        deltas.push(delta);
    }
    let added = n.cases.iter().filter(|c| b.case(&c.group, &c.id).is_none()).map(BenchCase::name).collect();
    BenchComparison { calibrations: cals, deltas, missing, added }
}

impl BenchComparison {
    pub fn count(&self, j: Judgement) -> usize {
        self.deltas.iter().filter(|d| d.judgement == j).count()
    }
}

impl Comparison {
    /// Whether the comparison was refused (fingerprints, or no way to relate the benchmarks).
    pub fn incomparable(&self) -> bool {
        !self.refused.is_empty() && !self.forced
    }

    /// Benchmark regressions that fail the comparison (none when they are not gated).
    pub fn gated_bench_regressions(&self) -> usize {
        if self.bench_not_gated.is_some() { 0 } else { self.bench_regressions() }
    }

    pub fn bench_regressions(&self) -> usize {
        self.bench.as_ref().map_or(0, |b| b.count(Judgement::Regression))
    }

    /// 0 no regression, 1 regression, 2 could not compare.
    pub fn exit_code(&self) -> u8 {
        if self.incomparable() {
            EXIT_INCOMPARABLE
        } else if self.gate_failures().is_empty() {
            EXIT_OK
        } else {
            EXIT_REGRESSION
        }
    }

    /// Cases in the suites missing from NEW.
    pub fn missing_suite_cases(&self) -> usize {
        self.missing_suites.iter().map(|(_, n)| n).sum()
    }

    /// What fails the comparison, a count per category; the exit status and the verdict line
    /// both come from here, so that they cannot disagree.
    fn gate_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.new_empty {
            out.push(format!(
                "NEW holds no cases (BASE has {} in {} suites)",
                self.missing_suite_cases(),
                self.missing_suites.len()
            ));
        }
        let mut count = |n: usize, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        count(self.regressions.len(), "verdict regressions");
        count(self.new_failures.len(), "new failures");
        if !self.allow_new_skips {
            count(self.new_skips.len(), "new skips");
        }
        if !self.allow_missing {
            count(self.missing_checks.len(), "checks missing from NEW");
            count(self.missing_cases.len(), "cases missing from NEW");
            if !self.new_empty {
                self.push_missing_suites(&mut out);
            }
        }
        let bench = self.gated_bench_regressions();
        if bench > 0 {
            out.push(format!("{bench} benchmark regressions"));
        }
        out
    }

    /// What was reported but allowed by an option, a count per category.
    fn allowed(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.allow_new_skips && !self.new_skips.is_empty() {
            out.push(format!("{} new skips (--allow-new-skips)", self.new_skips.len()));
        }
        if self.allow_missing && !self.new_empty {
            let mut missing = Vec::new();
            for (n, what) in [(self.missing_checks.len(), "checks"), (self.missing_cases.len(), "cases")] {
                if n > 0 {
                    missing.push(format!("{n} {what} missing from NEW"));
                }
            }
            self.push_missing_suites(&mut missing);
            if !missing.is_empty() {
                out.push(format!("{} (--allow-missing)", missing.join(", ")));
            }
        }
        out
    }

    fn push_missing_suites(&self, out: &mut Vec<String>) {
        if !self.missing_suites.is_empty() {
            out.push(format!(
                "{} suites missing from NEW ({} cases)",
                self.missing_suites.len(),
                self.missing_suite_cases()
            ));
        }
    }

    fn verdict_line(&self) -> String {
        let head = match self.exit_code() {
            EXIT_INCOMPARABLE => return "could not compare (exit 2)".into(),
            EXIT_REGRESSION => format!("REGRESSION: {} (exit 1)", self.gate_failures().join(", ")),
            _ => "no regression (exit 0)".into(),
        };
        match self.allowed() {
            allowed if allowed.is_empty() => head,
            allowed => format!("{head}; allowed: {}", allowed.join(", ")),
        }
    }

    /// ` (allowed)` after the label of a category an option keeps from failing the comparison.
    fn allowed_mark(allowed: bool) -> &'static str {
        if allowed { " (allowed)" } else { "" }
    }

    /// The comparison for a terminal or a CI log.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "isoprobe compare\n  BASE {}\n  NEW  {}", self.base, self.new);
        if !self.refused.is_empty() {
            let head = if self.forced { "incomparable, compared anyway (--force):" } else { "cannot compare:" };
            let _ = writeln!(o, "{head}");
            for r in &self.refused {
                let _ = writeln!(o, "  - {r}");
            }
            if !self.forced {
                o.push_str("  (--force compares anyway)\n");
            }
        }
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        if !self.incomparable() {
            if self.new_empty {
                let _ = writeln!(
                    o,
                    "REGRESSION NEW holds no cases: BASE has {} in {} suites",
                    self.missing_suite_cases(),
                    self.missing_suites.len()
                );
            }
            for ch in &self.regressions {
                let _ = writeln!(o, "REGRESSION {}/{}: {}: {} → {}", ch.suite, ch.case, ch.check, ch.before, ch.after);
            }
            let skips = format!("new skip{}", Self::allowed_mark(self.allow_new_skips));
            let missing = format!("check missing from NEW{}", Self::allowed_mark(self.allow_missing));
            for (label, list) in [
                ("new failure", &self.new_failures),
                (skips.as_str(), &self.new_skips),
                (missing.as_str(), &self.missing_checks),
                ("fixed", &self.fixes),
            ] {
                for ch in list {
                    let _ = writeln!(o, "{label} {}/{}: {}: {} → {}", ch.suite, ch.case, ch.check, ch.before, ch.after);
                }
            }
            // An empty NEW fails the comparison with or without --allow-missing.
            let allowed = Self::allowed_mark(self.allow_missing && !self.new_empty);
            for (suite, n) in &self.missing_suites {
                let _ = writeln!(o, "suite missing from NEW{allowed}: {suite} ({n} cases)");
            }
            for m in &self.missing_cases {
                let _ = writeln!(o, "case missing from NEW{allowed}: {m}");
            }
            if !self.added.is_empty() {
                let _ = writeln!(o, "new in NEW: {} cases", self.added.len());
            }
            let _ = writeln!(o, "verdicts: {}", self.verdict_counts());
            if let Some(b) = &self.bench {
                let basis = match &b.calibrations {
                    None => "nanoseconds".to_owned(),
                    Some(c) => format!("ratios to calibration ({})", c.join(", ")),
                };
                let _ = writeln!(o, "benchmarks by {basis}, threshold ±{:.0}%:", self.threshold * 100.0);
                let mut shown: Vec<&BenchDelta> =
                    b.deltas.iter().filter(|d| d.judgement != Judgement::Unchanged).collect();
                shown.sort_by_key(|d| d.judgement);
                for d in shown {
                    let _ = writeln!(o, "  {}", delta_text(d));
                }
                let _ = writeln!(
                    o,
                    "  {} regressions, {} improvements, {} unchanged, {} inconclusive; {} missing from NEW, {} new",
                    b.count(Judgement::Regression),
                    b.count(Judgement::Improvement),
                    b.count(Judgement::Unchanged),
                    b.count(Judgement::Inconclusive),
                    b.missing.len(),
                    b.added.len()
                );
            }
        }
        let _ = writeln!(o, "result: {}", self.verdict_line());
        o
    }

    /// Every verdict category with its count, for the summary lines.
    fn verdict_counts(&self) -> String {
        let suites = match self.missing_suites.len() {
            0 => "0 suites".to_owned(),
            k => format!("{k} suites ({} cases)", self.missing_suite_cases()),
        };
        format!(
            "{} regressions, {} new failures, {} new skips, {} checks missing, {} fixed, {} still failing, \
             {} unchanged; {} cases and {suites} missing from NEW, {} new",
            self.regressions.len(),
            self.new_failures.len(),
            self.new_skips.len(),
            self.missing_checks.len(),
            self.fixes.len(),
            self.still_failing,
            self.unchanged,
            self.missing_cases.len(),
            self.added.len()
        )
    }

    /// The comparison as a pull-request comment.
    pub fn to_markdown(&self) -> String {
        let mut o = String::new();
        let icon = match self.exit_code() {
            EXIT_OK => "✅",
            EXIT_REGRESSION => "❌",
            _ => "⚠️",
        };
        let _ = writeln!(o, "## isoprobe compare {icon} {}\n", self.verdict_line());
        let _ = writeln!(o, "BASE `{}` → NEW `{}`\n", code(&self.base), code(&self.new));
        if !self.refused.is_empty() {
            let _ =
                writeln!(o, "**{}**\n", if self.forced { "Incomparable, compared anyway:" } else { "Cannot compare:" });
            for r in &self.refused {
                let _ = writeln!(o, "- {}", cell(r));
            }
            o.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(o, "- note: {}", cell(n));
        }
        if self.incomparable() {
            return o;
        }
        if self.new_empty {
            let _ = writeln!(
                o,
                "\n**NEW holds no cases**: BASE has {} in {} suites.",
                self.missing_suite_cases(),
                self.missing_suites.len()
            );
        }
        let table = |o: &mut String, title: &str, list: &[Change], allowed: bool| {
            if list.is_empty() {
                return;
            }
            let _ = writeln!(
                o,
                "\n### {title} ({}{})\n\n| case | check | BASE | NEW |\n|---|---|---|---|",
                list.len(),
                if allowed { ", allowed" } else { "" }
            );
            for ch in list {
                let _ = writeln!(
                    o,
                    "| `{}/{}` | `{}` | {} | {} |",
                    code(&ch.suite),
                    code(&ch.case),
                    code(&ch.check),
                    cell(&ch.before),
                    cell(&ch.after)
                );
            }
        };
        table(&mut o, "Regressions", &self.regressions, false);
        table(&mut o, "New failures", &self.new_failures, false);
        table(&mut o, "New skips", &self.new_skips, self.allow_new_skips);
        table(&mut o, "Checks missing from NEW", &self.missing_checks, self.allow_missing);
        table(&mut o, "Fixed", &self.fixes, false);
        if !self.missing_suites.is_empty() || !self.missing_cases.is_empty() {
            let _ = writeln!(
                o,
                "\n### Missing from NEW ({} suites, {} cases{})\n",
                self.missing_suites.len(),
                self.missing_cases.len(),
                if self.allow_missing && !self.new_empty { ", allowed" } else { "" }
            );
            for (suite, n) in &self.missing_suites {
                let _ = writeln!(o, "- suite `{}` ({n} cases)", code(suite));
            }
            for m in &self.missing_cases {
                let _ = writeln!(o, "- `{}`", code(m));
            }
        }
        let _ = writeln!(o, "\nVerdicts: {}.", self.verdict_counts());
        if let Some(b) = &self.bench {
            let _ = writeln!(
                o,
                "\n### Benchmarks (±{:.0}% threshold{})\n\n| benchmark | BASE | NEW | change | interval | judgement |\n|---|--:|--:|--:|--:|---|",
                self.threshold * 100.0,
                match &b.calibrations {
                    None => String::new(),
                    Some(c) => format!(", ratios to {}", c.join(", ")),
                }
            );
            let mut rows: Vec<&BenchDelta> = b.deltas.iter().collect();
            rows.sort_by_key(|d| d.judgement);
            for d in rows {
                let _ = writeln!(
                    o,
                    "| `{}` | {} | {} | {} | {} … {} | {} |",
                    code(&d.name),
                    units::ns(d.base_ns),
                    units::ns(d.new_ns),
                    units::percent(d.ratio),
                    units::percent(d.lo),
                    units::percent(d.hi),
                    judgement_name(d.judgement)
                );
            }
        }
        o
    }
}

fn judgement_name(j: Judgement) -> &'static str {
    match j {
        Judgement::Regression => "REGRESSION",
        Judgement::Improvement => "improvement",
        Judgement::Unchanged => "unchanged",
        Judgement::Inconclusive => "inconclusive",
    }
}

fn delta_text(d: &BenchDelta) -> String {
    let by = d.calibration.as_ref().map(|c| format!(", relative to {c}")).unwrap_or_default();
    format!(
        "{} {}: {} → {} ({}, interval {} … {}{by})",
        judgement_name(d.judgement),
        d.name,
        units::ns(d.base_ns),
        units::ns(d.new_ns),
        units::percent(d.ratio),
        units::percent(d.lo),
        units::percent(d.hi)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use crate::record::{
        CaseOutcome, CaseSpec, CgroupInfo, CgroupLayout, CheckId, CheckResult, CpuInfo, Fingerprint, Hypervisor,
        KernelConfig, KernelInfo, LimitCheck, LimitResult, NsSet, ProbeRun, Role, Skip, UserInfo, UsernsPolicy,
        Verdict,
    };

    use super::{CompareOptions, Comparison, EXIT_OK, EXIT_REGRESSION, compare};
    use crate::load::Document;
    use crate::model::{Report, Suite};

    const HOSTNAME: CheckId = CheckId::UtsHostname;
    const SIGNAL: CheckId = CheckId::PidSignalHostProcess;

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            kernel: KernelInfo { release: "6.12.0".into(), version: "#1 SMP".into(), machine: "x86_64".into() },
            kernel_config: KernelConfig { source: None, options: BTreeMap::new(), unavailable: Some("test".into()) },
            namespaces: NsSet::ALL,
            cgroup: CgroupInfo {
                layout: CgroupLayout::V2,
                v1: Vec::new(),
                v2_mount: Some("/sys/fs/cgroup".into()),
                v2_controllers: vec!["memory".into(), "pids".into()],
                unmounted: Vec::new(),
            },
            user: UserInfo { euid: 0, egid: 0, cap_eff: "000001ffffffffff".into(), capabilities: vec!["all".into()] },
            userns: UsernsPolicy { unprivileged: true, blocked_by: None, sysctls: BTreeMap::new() },
            cpu: CpuInfo { model: "test CPU".into(), online: 2, available: 2 },
            hypervisor: Hypervisor { detected: false, vendor: None },
            mount_count: 30,
            tools: Vec::new(),
        }
    }

    fn pass() -> Verdict {
        Verdict::Pass { expected: "isolated".into(), observed: "isolated".into(), evidence: String::new() }
    }

    fn fail() -> Verdict {
        Verdict::Fail { expected: "isolated".into(), observed: "shared".into(), evidence: "the host's".into() }
    }

    fn skip() -> Verdict {
        Verdict::Skip { requirement: "root".into(), reason: "needs root".into() }
    }

    /// A case that ran, its container's probe judging `checks`.
    fn case(name: &str, checks: &[(CheckId, Verdict)]) -> CaseOutcome {
        CaseOutcome {
            name: name.into(),
            spec: CaseSpec::new(NsSet::ALL),
            skipped: None,
            error: None,
            runs: vec![ProbeRun {
                role: Role::Container,
                init: Vec::new(),
                checks: checks
                    .iter()
                    .map(|(check, verdict)| CheckResult { check: *check, verdict: verdict.clone() })
                    .collect(),
                exit: "exit 0".into(),
                stderr: String::new(),
                limits: Vec::new(),
            }],
            join_mismatches: Vec::new(),
            duration: Duration::from_millis(5),
        }
    }

    /// A case skipped as a whole before launch.
    fn skipped(name: &str) -> CaseOutcome {
        CaseOutcome {
            skipped: Some(Skip { requirement: "root".into(), reason: "needs root".into() }),
            runs: Vec::new(),
            ..case(name, &[])
        }
    }

    fn report(suites: Vec<Suite>) -> Document {
        let mut r =
            Report::new(fingerprint(), SystemTime::UNIX_EPOCH, vec!["isoprobe".into(), "run".into()], Vec::new());
        r.suites = suites;
        Document::Run(Box::new(r))
    }

    /// Two suites, four cases, every check passing.
    fn base() -> Vec<Suite> {
        vec![
            Suite::new(
                "namespaces",
                vec![
                    case("clone3/host/uts", &[(HOSTNAME, pass()), (SIGNAL, pass())]),
                    case("clone3/host/pid", &[(HOSTNAME, pass()), (SIGNAL, pass())]),
                ],
            ),
            Suite::new("limits", vec![case("clone3/memory", &[(SIGNAL, pass())]), case("clone3/pids", &[])]),
        ]
    }

    /// `base()` with `edit` applied to the case `name` of the first suite.
    fn edited(name: &str, edit: impl FnOnce(&mut CaseOutcome)) -> Vec<Suite> {
        let mut s = base();
        edit(s[0].cases.iter_mut().find(|c| c.name == name).unwrap());
        s
    }

    fn set(c: &mut CaseOutcome, check: CheckId, v: Verdict) {
        c.runs[0].checks.iter_mut().find(|r| r.check == check).unwrap().verdict = v;
    }

    /// Not compare's, but its builders are here: a check skipped for a requirement the run
    /// declared in ISOPROBE_EXPECT fails the run (`Report::status`, `failures`), as a skipped case
    /// does; a skip for another requirement does not.
    #[test]
    fn a_check_skipped_for_a_declared_requirement_fails_the_run() {
        let mut r = Report::new(fingerprint(), SystemTime::UNIX_EPOCH, vec!["isoprobe".into()], vec!["root".into()]);
        r.suites =
            vec![Suite::new("namespaces", vec![case("clone3/host/uts", &[(HOSTNAME, pass()), (SIGNAL, skip())])])];
        assert!(!r.passed());
        let f = r.failures();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].check == SIGNAL.name() && f[0].detail.contains("ISOPROBE_EXPECT declares `root`"), "{f:?}");
        r.expect = vec!["userns".into()];
        assert!(r.passed() && r.failures().is_empty());
    }

    fn run(base: Vec<Suite>, new: Vec<Suite>, opts: &CompareOptions) -> Comparison {
        compare(&report(base), "base.json", &report(new), "new.json", opts).unwrap()
    }

    /// The default gate: fails `new` against `base`, and its text says `needle`.
    fn fails(base: Vec<Suite>, new: Vec<Suite>, needle: &str) -> Comparison {
        let c = run(base, new, &CompareOptions::default());
        let text = c.to_text();
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{text}");
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
        assert!(c.to_markdown().starts_with("## isoprobe compare ❌ REGRESSION: "), "{}", c.to_markdown());
        c
    }

    fn allow_new_skips() -> CompareOptions {
        CompareOptions { allow_new_skips: true, ..Default::default() }
    }

    fn allow_missing() -> CompareOptions {
        CompareOptions { allow_missing: true, ..Default::default() }
    }

    #[test]
    fn identical_reports_exit_0() {
        // A failing check, an error and a skip, the same on both sides: nothing changed.
        let mut suites = edited("clone3/host/pid", |c| set(c, SIGNAL, fail()));
        suites[1].cases.push(skipped("clone3/hugetlb"));
        suites[1].cases.push(CaseOutcome { error: Some("timeout".into()), ..case("clone3/freezer", &[]) });
        let c = run(suites.clone(), suites, &CompareOptions::default());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        assert_eq!((c.still_failing, c.unchanged), (2, 5), "{}", c.to_text());
        assert!(c.to_text().ends_with("result: no regression (exit 0)\n"), "{}", c.to_text());
    }

    #[test]
    fn an_empty_new_is_a_regression_even_with_allow_missing() {
        let c = fails(base(), Vec::new(), "result: REGRESSION: NEW holds no cases (BASE has 4 in 2 suites) (exit 1)");
        assert!(c.to_text().contains("suite missing from NEW: limits (2 cases)"), "{}", c.to_text());
        // Suites without a case are no better than none.
        fails(base(), vec![Suite::new("namespaces", Vec::new())], "NEW holds no cases");
        let c = run(base(), Vec::new(), &allow_missing());
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{}", c.to_text());
        assert!(c.to_markdown().contains("**NEW holds no cases**: BASE has 4 in 2 suites."), "{}", c.to_markdown());
    }

    #[test]
    fn pass_to_skip_is_a_regression() {
        let new = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        let c = fails(base(), new, "new skip namespaces/clone3/host/uts: uts/hostname: pass: ");
        assert!(c.to_text().contains("result: REGRESSION: 1 new skips (exit 1)"), "{}", c.to_text());
        // A case that ran and is skipped as a whole in NEW.
        let new = edited("clone3/host/pid", |c| *c = skipped("clone3/host/pid"));
        fails(base(), new, "new skip namespaces/clone3/host/pid: case: ran → skipped: root: needs root");
    }

    #[test]
    fn a_missing_case_is_a_regression() {
        let mut new = base();
        new[0].cases.retain(|c| c.name != "clone3/host/pid");
        let c = fails(base(), new, "case missing from NEW: namespaces/clone3/host/pid");
        assert!(c.to_text().contains("REGRESSION: 1 cases missing from NEW (exit 1)"), "{}", c.to_text());
        assert!(c.to_markdown().contains("- `namespaces/clone3/host/pid`"), "{}", c.to_markdown());
    }

    #[test]
    fn a_missing_suite_is_reported_once_with_its_case_count() {
        let mut new = base();
        new.retain(|s| s.name != "limits");
        let c = fails(base(), new, "suite missing from NEW: limits (2 cases)");
        assert!(c.missing_cases.is_empty(), "its cases are not listed one by one: {:?}", c.missing_cases);
        assert!(c.to_text().contains("REGRESSION: 1 suites missing from NEW (2 cases) (exit 1)"), "{}", c.to_text());
        assert!(c.to_markdown().contains("- suite `limits` (2 cases)"), "{}", c.to_markdown());
    }

    #[test]
    fn skip_to_fail_is_a_regression() {
        let skipping = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        let failing = edited("clone3/host/uts", |c| set(c, HOSTNAME, fail()));
        fails(
            skipping,
            failing.clone(),
            "new failure namespaces/clone3/host/uts: uts/hostname: skip: root: needs root → fail: ",
        );
        // A check BASE did not judge at all, failing in NEW.
        let absent = edited("clone3/host/uts", |c| c.runs[0].checks.retain(|r| r.check != HOSTNAME));
        fails(absent, failing, "new failure namespaces/clone3/host/uts: uts/hostname: not judged → fail: ");
        // A case skipped in BASE that errors in NEW.
        let new = edited("clone3/host/pid", |c| c.error = Some("clone3: ENOSPC".into()));
        let old = edited("clone3/host/pid", |c| *c = skipped("clone3/host/pid"));
        let c = fails(
            old,
            new,
            "new failure namespaces/clone3/host/pid: case: skipped: root: needs root → error: clone3: ENOSPC",
        );
        assert!(c.to_text().contains("REGRESSION: 1 new failures (exit 1)"), "{}", c.to_text());
    }

    #[test]
    fn a_failing_case_only_in_new_is_a_regression_and_a_passing_one_is_added() {
        let mut new = base();
        new[1].cases.push(case("clone3/cpu", &[(SIGNAL, fail())]));
        new[1].cases.push(CaseOutcome { error: Some("probe killed after 30 s".into()), ..case("clone3/io", &[]) });
        new[1].cases.push(case("clone3/cpuset", &[(SIGNAL, pass())]));
        let c = fails(base(), new, "new failure limits/clone3/cpu: pid/signal-host-process: case not in BASE → fail: ");
        assert!(c.to_text().contains("new failure limits/clone3/io: case: case not in BASE → error: probe killed"));
        assert_eq!(c.added, ["limits/clone3/cpuset"]);
        let mut new = base();
        new[1].cases.push(case("clone3/cpuset", &[(SIGNAL, pass())]));
        let c = run(base(), new, &CompareOptions::default());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        assert!(c.to_text().contains("new in NEW: 1 cases"), "{}", c.to_text());
    }

    #[test]
    fn a_check_missing_from_new_is_a_regression() {
        let new = edited("clone3/host/uts", |c| c.runs[0].checks.retain(|r| r.check != SIGNAL));
        let c =
            fails(base(), new, "check missing from NEW namespaces/clone3/host/uts: pid/signal-host-process: pass: ");
        assert!(c.to_text().contains("REGRESSION: 1 checks missing from NEW (exit 1)"), "{}", c.to_text());
        // A limit's enforcement and a joiner's checks are slots like any other.
        let with = |limit: bool, joiner: bool| {
            edited("clone3/host/uts", |c| {
                if limit {
                    c.runs[0].limits.push(LimitResult { check: LimitCheck::Memory, verdict: pass() });
                }
                if joiner {
                    c.runs.push(ProbeRun { role: Role::Joiner, ..c.runs[0].clone() });
                }
            })
        };
        fails(
            with(true, false),
            with(false, false),
            "check missing from NEW namespaces/clone3/host/uts: limit/memory/oom-at-max",
        );
        fails(
            with(false, true),
            with(false, false),
            "check missing from NEW namespaces/clone3/host/uts: uts/hostname (joiner)",
        );
    }

    #[test]
    fn allow_new_skips_reports_skips_without_failing_and_nothing_else() {
        let skips = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        let c = run(base(), skips.clone(), &allow_new_skips());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        let text = c.to_text();
        assert!(text.contains("new skip (allowed) namespaces/clone3/host/uts: uts/hostname"), "{text}");
        assert!(text.contains("result: no regression (exit 0); allowed: 1 new skips (--allow-new-skips)"), "{text}");
        // A case skipped as a whole is a new skip too.
        let c = run(base(), edited("clone3/host/pid", |c| *c = skipped("clone3/host/pid")), &allow_new_skips());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        // A real pass → fail next to the skip still fails, and so does a missing case.
        let mut both = skips;
        set(&mut both[0].cases[1], SIGNAL, fail());
        let c = run(base(), both, &allow_new_skips());
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{}", c.to_text());
        assert!(c.to_text().contains("REGRESSION: 1 verdict regressions (exit 1)"), "{}", c.to_text());
        let mut fewer = base();
        fewer[0].cases.pop();
        assert_eq!(run(base(), fewer, &allow_new_skips()).exit_code(), EXIT_REGRESSION);
    }

    #[test]
    fn allow_missing_reports_missing_without_failing_and_nothing_else() {
        let mut fewer = base();
        fewer.pop();
        fewer[0].cases.pop();
        fewer[0].cases[0].runs[0].checks.pop();
        let c = run(base(), fewer.clone(), &allow_missing());
        assert_eq!(c.exit_code(), EXIT_OK, "{}", c.to_text());
        let text = c.to_text();
        for needle in [
            "suite missing from NEW (allowed): limits (2 cases)",
            "case missing from NEW (allowed): namespaces/clone3/host/pid",
            "check missing from NEW (allowed) namespaces/clone3/host/uts: pid/signal-host-process",
            "allowed: 1 checks missing from NEW, 1 cases missing from NEW, 1 suites missing from NEW (2 cases) (--allow-missing)",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        // A real pass → fail in what is left still fails, and so does a new skip.
        let mut failing = fewer.clone();
        set(&mut failing[0].cases[0], HOSTNAME, fail());
        let c = run(base(), failing, &allow_missing());
        assert_eq!(c.exit_code(), EXIT_REGRESSION, "{}", c.to_text());
        assert!(c.to_text().contains("REGRESSION: 1 verdict regressions (exit 1)"), "{}", c.to_text());
        set(&mut fewer[0].cases[0], HOSTNAME, skip());
        assert_eq!(run(base(), fewer, &allow_missing()).exit_code(), EXIT_REGRESSION);
    }

    #[test]
    fn a_failure_that_becomes_a_skip_is_a_new_skip_not_unchanged() {
        let failing = edited("clone3/host/uts", |c| set(c, HOSTNAME, fail()));
        let skipping = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        fails(failing.clone(), skipping.clone(), "new skip namespaces/clone3/host/uts: uts/hostname: fail: ");
        assert_eq!(run(failing, skipping, &allow_new_skips()).exit_code(), EXIT_OK);
    }

    #[test]
    fn the_kernel_gate_fails_closed_too() {
        let gate = CompareOptions { kernel_gate: true, ..Default::default() };
        let new = edited("clone3/host/uts", |c| set(c, HOSTNAME, skip()));
        assert_eq!(run(base(), new, &gate).exit_code(), EXIT_REGRESSION);
        assert_eq!(run(base(), Vec::new(), &gate).exit_code(), EXIT_REGRESSION);
        assert_eq!(run(base(), base(), &gate).exit_code(), EXIT_OK);
    }
}
