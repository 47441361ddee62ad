//! `isoprobe compare BASE NEW`: the regression gate.
//!
//! - Verdicts: a check (or a limit's enforcement, `limit/<check>`) that passed in BASE and fails
//!   (or cannot be observed) in NEW is a regression; so is a case that ran in BASE and errors in NEW, and a joiner that starts to
//!   disagree with its container. Fixes, checks still failing, new skips, and cases present on
//!   one side only are reported; new skips and missing cases are fatal on request.
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

use isoprobe_harness::fingerprint::Fingerprint;
use isoprobe_harness::verdict::{CaseOutcome, Role, Verdict};

use crate::bench::{BenchCase, BenchSummary};
use crate::load::Document;
use crate::model::{Report, verdict_detail};
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
    /// New skips and cases missing from NEW are regressions too.
    pub fail_on_skip: bool,
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
            fail_on_skip: false,
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
    /// The check, with ` (joiner)` for the joining probe, or `case`, or `join-consistency`.
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
    pub regressions: Vec<Change>,
    /// Failing in NEW, but not judged (skipped, absent) in BASE: failures, not regressions.
    pub new_failures: Vec<Change>,
    pub fixes: Vec<Change>,
    pub new_skips: Vec<Change>,
    pub still_failing: usize,
    pub unchanged: usize,
    /// `suite/case` in BASE only, and in NEW only.
    pub missing: Vec<String>,
    pub added: Vec<String>,
    pub bench: Option<BenchComparison>,
    pub fail_on_skip: bool,
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
        still_failing: 0,
        unchanged: 0,
        missing: Vec::new(),
        added: Vec::new(),
        bench: None,
        fail_on_skip: opts.fail_on_skip,
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

fn compare_verdicts(c: &mut Comparison, base: &Report, new: &Report) {
    let (base_index, new_index) = (index(base), index(new));
    for (suite, b) in base.cases() {
        let key = format!("{}/{}", suite.name, b.name);
        let Some(&n) = new_index.get(&(suite.name.clone(), b.name.clone())) else {
            c.missing.push(key);
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
        match (ran(b), ran(n)) {
            (true, false) => {
                if let Some(e) = &n.error {
                    c.regressions.push(change("case", "ran".into(), format!("error: {e}")));
                } else if let Some(s) = &n.skipped {
                    c.new_skips.push(change("case", "ran".into(), format!("skipped: {}: {}", s.requirement, s.reason)));
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
                if b.error.is_some() && n.error.is_some() {
                    c.still_failing += 1;
                } else if b.skipped.is_some() && n.error.is_some() {
                    let e = n.error.clone().unwrap_or_default();
                    c.new_failures.push(change("case", "skipped".into(), format!("error: {e}")));
                } else if b.error.is_some() && n.skipped.is_some() {
                    c.new_skips.push(change("case", "error".into(), "skipped".into()));
                } else {
                    c.unchanged += 1;
                }
                continue;
            }
            (true, true) => {}
        }
        let (bs, ns) = (slots(b), slots(n));
        for (slot, nv) in &ns {
            let name = slot_name(slot);
            match bs.get(slot) {
                None => {
                    if nv.is_failure() {
                        c.new_failures.push(change(&name, "not judged".into(), short(nv)));
                    }
                }
                Some(bv) => match (bv.is_pass(), bv.is_failure(), nv.is_pass(), nv.is_failure()) {
                    (true, _, _, true) => c.regressions.push(change(&name, short(bv), short(nv))),
                    (true, _, _, false) if nv.is_skip() => c.new_skips.push(change(&name, short(bv), short(nv))),
                    (_, true, true, _) => c.fixes.push(change(&name, short(bv), short(nv))),
                    (_, true, _, true) => c.still_failing += 1,
                    (false, false, _, true) => c.new_failures.push(change(&name, short(bv), short(nv))),
                    _ => c.unchanged += 1,
                },
            }
        }
        for slot in bs.keys().filter(|s| !ns.contains_key(*s)) {
            c.new_skips.push(change(&slot_name(slot), short(bs[slot]), "not judged in NEW".into()));
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
        if !base_index.contains_key(&(suite.name.clone(), n.name.clone())) {
            c.added.push(format!("{}/{}", suite.name, n.name));
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
            return EXIT_INCOMPARABLE;
        }
        let skips_fatal = self.fail_on_skip && (!self.new_skips.is_empty() || !self.missing.is_empty());
        if !self.regressions.is_empty() || self.gated_bench_regressions() > 0 || skips_fatal {
            EXIT_REGRESSION
        } else {
            EXIT_OK
        }
    }

    fn verdict_line(&self) -> String {
        match self.exit_code() {
            EXIT_INCOMPARABLE => "could not compare (exit 2)".into(),
            EXIT_REGRESSION => {
                let mut parts = Vec::new();
                if !self.regressions.is_empty() {
                    parts.push(format!("{} verdict regressions", self.regressions.len()));
                }
                if self.gated_bench_regressions() > 0 {
                    parts.push(format!("{} benchmark regressions", self.gated_bench_regressions()));
                }
                if self.fail_on_skip && (!self.new_skips.is_empty() || !self.missing.is_empty()) {
                    parts.push(format!(
                        "{} new skips and {} missing cases (--fail-on-skip)",
                        self.new_skips.len(),
                        self.missing.len()
                    ));
                }
                format!("REGRESSION: {} (exit 1)", parts.join(", "))
            }
            _ => "no regression (exit 0)".into(),
        }
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
            for ch in &self.regressions {
                let _ = writeln!(o, "REGRESSION {}/{}: {}: {} → {}", ch.suite, ch.case, ch.check, ch.before, ch.after);
            }
            for (label, list) in
                [("new failure", &self.new_failures), ("new skip", &self.new_skips), ("fixed", &self.fixes)]
            {
                for ch in list {
                    let _ = writeln!(o, "{label} {}/{}: {}: {} → {}", ch.suite, ch.case, ch.check, ch.before, ch.after);
                }
            }
            for m in &self.missing {
                let _ = writeln!(o, "missing from NEW: {m}");
            }
            if !self.added.is_empty() {
                let _ = writeln!(o, "new in NEW: {} cases", self.added.len());
            }
            let _ = writeln!(
                o,
                "verdicts: {} regressions, {} new failures, {} fixed, {} new skips, {} still failing, {} unchanged",
                self.regressions.len(),
                self.new_failures.len(),
                self.fixes.len(),
                self.new_skips.len(),
                self.still_failing,
                self.unchanged
            );
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
        let table = |o: &mut String, title: &str, list: &[Change]| {
            if list.is_empty() {
                return;
            }
            let _ = writeln!(o, "\n### {title} ({})\n\n| case | check | BASE | NEW |\n|---|---|---|---|", list.len());
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
        table(&mut o, "Regressions", &self.regressions);
        table(&mut o, "New failures", &self.new_failures);
        table(&mut o, "New skips", &self.new_skips);
        table(&mut o, "Fixed", &self.fixes);
        let _ = writeln!(
            o,
            "\nVerdicts: {} regressions, {} new failures, {} fixed, {} new skips, {} still failing, {} unchanged; \
             {} cases missing from NEW, {} new.",
            self.regressions.len(),
            self.new_failures.len(),
            self.fixes.len(),
            self.new_skips.len(),
            self.still_failing,
            self.unchanged,
            self.missing.len(),
            self.added.len()
        );
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
