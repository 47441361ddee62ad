//! `isoprobe run` and `isoprobe list`: pick the cases, run them on worker threads, show progress,
//! print the summary and write the report.
//!
//! The [`Harness`] is created on the main thread, which outlives every case: the probes it starts
//! are tied to the creating thread (PR_SET_PDEATHSIG), so a worker must never create it.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use isoprobe_harness::fingerprint::{Fingerprint, LAUNCHER_TOOLS};
use isoprobe_harness::launcher::differences::run_case_on;
use isoprobe_harness::launcher::registry::{
    describe, launcher_limit_matrix, launcher_matrix, start_latency_namespaces, start_latency_spec,
};
use isoprobe_harness::limits::matrix::limit_matrix;
use isoprobe_harness::matrix::namespace_matrix;
use isoprobe_harness::requirement::expected_from_env;
use isoprobe_harness::{CaseSpec, Harness, HarnessOptions, LauncherKind, Runner};
use isoprobe_reports::load::{Document, write_compact_json};
use isoprobe_reports::model::{Report, Suite};
use isoprobe_reports::record::{
    self, CaseAssessment, CaseOutcome, LatencyResult, LatencyRow, LauncherHeader, StartLatency,
};
use isoprobe_reports::render::text::{defect_lines, launcher_table, summary_table};

use crate::{RunArgs, Selection};

/// Where `run` writes its report unless told otherwise (relative to the working directory; under
/// `cargo run` that is the workspace root, next to the benchmark summary).
pub const DEFAULT_REPORT: &str = "target/isoprobe/report.json";

/// Failures printed without `--verbose`.
const SHOWN_FAILURES: usize = 20;

/// Starts per launcher for the start latency of a `--launcher` run.
const LATENCY_STARTS: u32 = 15;

/// A `--launcher` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LauncherArg {
    /// clone3 (the reference) and every real tool, join paths included.
    All,
    One(LauncherKind),
}

impl Selection {
    /// The launchers named, `all` expanded, each once, in the registry's order (native paths,
    /// then the real tools).
    pub fn launcher_kinds(&self) -> Vec<LauncherKind> {
        let named = |k: &LauncherKind| {
            self.launchers.iter().any(|a| match a {
                LauncherArg::All => *k == LauncherKind::Clone3 || LauncherKind::EXTERNAL.contains(k),
                LauncherArg::One(one) => one == k,
            })
        };
        LauncherKind::ALL.into_iter().chain(LauncherKind::EXTERNAL).filter(named).collect()
    }

    /// Whether this is a launcher conformance run: `all` or a real tool among the launchers.
    pub fn conformance(&self) -> bool {
        self.launcher_kinds().iter().any(|k| LauncherKind::EXTERNAL.contains(k))
    }
}

/// A named list of cases to run.
#[derive(Debug)]
pub struct PlannedSuite {
    pub name: String,
    pub cases: Vec<CaseSpec>,
    /// Each case runs through its launcher with an assessment (the conformance suites).
    pub assess: bool,
}

/// The suites `run` runs by default (no real tool among `--launcher`); a new built-in suite is
/// added here, and selection, progress and the report take it as it is. The launcher conformance
/// run has its own ([`conformance_suites`]).
fn builtin_suites() -> Vec<PlannedSuite> {
    vec![
        PlannedSuite { name: "namespaces".into(), cases: namespace_matrix(), assess: false },
        PlannedSuite { name: "limits".into(), cases: limit_cases(), assess: false },
    ]
}

/// The suites of a conformance run: every launcher's matrix (`registry::launcher_matrix`), then
/// every launcher's limit cases (`registry::launcher_limit_matrix`, each spec once).
fn conformance_suites(kinds: &[LauncherKind], runner: Runner) -> Vec<PlannedSuite> {
    let cases = kinds.iter().flat_map(|k| launcher_matrix(*k, runner)).collect();
    let mut seen = BTreeSet::new();
    let limits = kinds
        .iter()
        .flat_map(|k| launcher_limit_matrix(*k))
        .map(|(_, spec)| spec)
        .filter(|s| seen.insert(s.name()))
        .collect();
    vec![
        PlannedSuite { name: "launchers".into(), cases, assess: true },
        PlannedSuite { name: "launcher-limits".into(), cases: limits, assess: true },
    ]
}

/// The limit matrix as a report lists it: one case per spec. Controls of limits that share an
/// exercise (memory and memory+swap, cpuset.cpus and cpuset.mems, net_cls and net_prio) are the
/// same spec, and the report names cases by their spec.
fn limit_cases() -> Vec<CaseSpec> {
    let mut seen = std::collections::BTreeSet::new();
    limit_matrix().into_iter().map(|(_, spec)| spec).filter(|s| seen.insert(s.name())).collect()
}

/// The suites and cases the selection picks.
pub fn plan(sel: &Selection) -> Result<Vec<PlannedSuite>> {
    let kinds = sel.launcher_kinds();
    let conformance = sel.conformance();
    let suites = match &sel.case_file {
        Some(path) => vec![PlannedSuite { name: "cases".into(), cases: read_case_file(path)?, assess: conformance }],
        None => {
            let all = if conformance { conformance_suites(&kinds, Runner::current()) } else { builtin_suites() };
            if let Some(unknown) = sel.suites.iter().find(|n| !all.iter().any(|s| s.name == **n)) {
                let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                bail!("select suites: unknown suite `{unknown}` (expected one of {})", names.join(", "));
            }
            all.into_iter().filter(|s| sel.suites.is_empty() || sel.suites.contains(&s.name)).collect()
        }
    };
    let keep = |s: &CaseSpec| {
        (sel.namespaces.is_empty() || s.namespaces.iter().all(|k| sel.namespaces.contains(&k)))
            && (kinds.is_empty() || kinds.contains(&s.launcher))
            && sel.filter.as_deref().is_none_or(|f| s.name().contains(f))
    };
    let out: Vec<PlannedSuite> = suites
        .into_iter()
        .map(|s| PlannedSuite { name: s.name, cases: s.cases.into_iter().filter(keep).collect(), assess: s.assess })
        .filter(|s| !s.cases.is_empty())
        .collect();
    if out.is_empty() {
        bail!("select cases: no case matches the given --ns, --launcher and --filter");
    }
    Ok(out)
}

/// A JSON list of case specs, each validated; errors name the file and the entry.
fn read_case_file(path: &Path) -> Result<Vec<CaseSpec>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let specs: Vec<CaseSpec> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "read {}: line {}, column {}: {e} (expected a JSON list of case specs)",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    for (i, s) in specs.iter().enumerate() {
        s.validate().map_err(|e| anyhow::anyhow!("read {}: case [{i}]: {e}", path.display()))?;
    }
    if specs.is_empty() {
        bail!("read {}: the list of cases is empty", path.display());
    }
    Ok(specs)
}

/// `isoprobe list`.
pub fn list(sel: &Selection) -> Result<u8> {
    let suites = plan(sel)?;
    let harness = Harness::new(HarnessOptions::default()).context("set up the run")?;
    if sel.conformance() {
        for kind in sel.launcher_kinds() {
            println!("launcher {}: {}", kind.name(), LauncherHeader::from(&describe(kind)).tool_text());
        }
    }
    let (mut runs, mut skips) = (0, 0);
    for suite in &suites {
        println!("{} ({} cases)", suite.name, suite.cases.len());
        for spec in &suite.cases {
            match harness.requirement(spec) {
                Ok(()) => {
                    runs += 1;
                    println!("  {}", spec.name());
                }
                Err(skip) => {
                    skips += 1;
                    println!("  {}  [skip: needs {}: {}]", spec.name(), skip.requirement, skip.reason);
                }
            }
        }
    }
    println!("{} cases: {runs} would run, {skips} would be skipped", runs + skips);
    Ok(0)
}

/// `isoprobe run`.
pub fn run(args: &RunArgs) -> Result<u8> {
    let suites = plan(&args.selection)?;
    let jobs = match args.jobs {
        Some(0) => bail!("use --jobs 0: at least one case must run at a time"),
        Some(n) => n,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let conformance = args.selection.conformance();
    let kinds = args.selection.launcher_kinds();
    // Crash-only: whatever dead runs left goes before this run creates anything.
    isoprobe_harness::leftovers::recover_at_start("isoprobe run");
    let started_at = SystemTime::now();
    let started = Instant::now();
    let fingerprint = Fingerprint::collect(if conformance { LAUNCHER_TOOLS } else { &[] });
    let harness = Harness::new(HarnessOptions::default()).context("set up the run")?;
    let mut report = Report::new(
        record::Fingerprint::from(&fingerprint),
        started_at,
        std::env::args().collect(),
        expected_from_env(),
    );
    if conformance {
        report.launchers = kinds.iter().map(|k| LauncherHeader::from(&describe(*k))).collect();
    }

    let stop = interrupt_flag()?;
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    let progress = Progress::new(total);
    for suite in &suites {
        let done = run_parallel(&harness, &suite.cases, suite.assess, jobs, &progress, &stop);
        let mut s = Suite::new(suite.name.clone(), Vec::new());
        for (outcome, assessment) in done {
            if let Some(a) = assessment {
                s.assessments.insert(outcome.name.clone(), a);
            }
            s.cases.push(outcome);
        }
        report.suites.push(s);
    }
    progress.finish();
    if conformance && !args.no_latency && !stop.load(Ordering::SeqCst) {
        report.start_latency = Some(measure_start_latency(&harness, &kinds, &stop));
    }
    // Every case's objects are gone with its outcome; the run's own go here.
    drop(harness);
    report.duration_ms = started.elapsed().as_secs_f64() * 1e3;
    if stop.load(Ordering::SeqCst) {
        let done = report.counts().cases;
        eprintln!(
            "isoprobe: interrupted after {done} of {total} cases; the cases that ran were cleaned up, no report written"
        );
        return Ok(2);
    }

    let failures = report.failures();
    let shown = if args.verbose { failures.len() } else { SHOWN_FAILURES.min(failures.len()) };
    for f in &failures[..shown] {
        println!("{} {}/{}{}: {}: {}", f.label.to_uppercase(), f.suite, f.case, f.role_suffix(), f.check, f.detail);
    }
    if shown < failures.len() {
        println!("... and {} more failures (--verbose shows all; the report has them)", failures.len() - shown);
    }
    for ((requirement, reason), n) in report.skip_reasons() {
        println!("SKIP {n} cases: needs {requirement}: {reason}");
    }
    print!("{}", summary_table(&report));
    print!("{}", defect_lines(&report));
    if conformance {
        print!("\n{}", launcher_table(&report));
    }
    println!("{} cases: {}", report.counts().cases, report.counts().sentence());
    let code = if report.passed() { 0 } else { 1 };
    let doc = Document::Run(Box::new(report));
    if !args.no_report {
        save(&doc, &args.output)?;
        println!("report: {}", args.output.display());
    }
    // The process exits next: freeing the report's hundred thousand strings one by one would take
    // some 9 ms of a matrix run's serial end (issue 17), and the exit frees them all at once.
    std::mem::forget(doc);
    Ok(code)
}

/// Writes the report to `path` (its directory made if missing) as compact JSON, streamed
/// through a buffer.
fn save(doc: &Document, path: &Path) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, crate::create_file(path)?);
    write_compact_json(doc, &mut out).and_then(|()| out.flush()).with_context(|| format!("write {}", path.display()))
}

/// The start latency of every container launcher among `kinds` and of native clone3 (the
/// reference of the ratios): [`LATENCY_STARTS`] starts each of `registry::start_latency_spec`,
/// interleaved round-robin (the order reversed every other round) so that drift on a shared
/// machine hits every launcher alike. Join paths start no container of their own and are left
/// out; a launcher that cannot run the case is recorded as skipped with the reason, one whose
/// start fails as an error (and is not started again).
fn measure_start_latency(harness: &Harness, kinds: &[LauncherKind], stop: &AtomicBool) -> StartLatency {
    let mut kinds: Vec<LauncherKind> = kinds.iter().copied().filter(|k| !k.joins()).collect();
    if !kinds.contains(&LauncherKind::Clone3) {
        kinds.insert(0, LauncherKind::Clone3);
    }
    let specs: Vec<CaseSpec> = kinds.iter().map(|k| start_latency_spec(*k)).collect();
    let mut results: Vec<Option<LatencyResult>> = specs
        .iter()
        .map(|s| harness.requirement(s).err().map(|skip| LatencyResult::Skipped { reason: skip.reason }))
        .collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    let running = results.iter().filter(|r| r.is_none()).count();
    eprintln!("isoprobe: measuring start latency: {LATENCY_STARTS} starts each of {running} launchers");
    for round in 0..LATENCY_STARTS {
        let mut order: Vec<usize> = (0..specs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            if results[i].is_some() || stop.load(Ordering::SeqCst) {
                continue;
            }
            match harness.start_latency(&specs[i]) {
                Ok(d) => samples[i].push(d.as_secs_f64() * 1e9),
                Err(e) => results[i] = Some(LatencyResult::Error { cause: e.to_string() }),
            }
        }
    }
    let launchers = kinds
        .iter()
        .zip(&specs)
        .zip(results.into_iter().zip(samples))
        .map(|((kind, spec), (result, mut s))| {
            let result = result.unwrap_or_else(|| {
                s.sort_by(f64::total_cmp);
                match s.as_slice() {
                    [] => LatencyResult::Error { cause: "interrupted before the first start".into() },
                    all => LatencyResult::Measured {
                        median_ns: median(all),
                        min_ns: all[0],
                        max_ns: all[all.len() - 1],
                        starts: all.len() as u32,
                    },
                }
            });
            LatencyRow { launcher: kind.name().to_owned(), case: spec.name(), result }
        })
        .collect();
    StartLatency { namespaces: start_latency_namespaces(), starts: LATENCY_STARTS, launchers }
}

/// The median of sorted, non-empty `v`.
fn median(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Set on SIGINT or SIGTERM: no new case starts, the ones running finish and clean up after
/// themselves. A second signal ends the process at once (`isoprobe cleanup` then removes what it
/// left).
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&flag)))
            .context("install the interrupt handler")?;
    }
    Ok(flag)
}

/// A case's outcome, with its assessment when it ran through a launcher of the conformance table,
/// both as the report records them.
type Done = (CaseOutcome, Option<CaseAssessment>);

/// Runs one case: through its launcher with an assessment when `assess`.
fn run_one(harness: &Harness, spec: &CaseSpec, assess: bool) -> Done {
    if !assess {
        return (CaseOutcome::from(&harness.run_case(spec)), None);
    }
    let l = run_case_on(harness, spec.launcher, spec);
    (CaseOutcome::from(&l.outcome), Some(CaseAssessment::from(&l.assessment)))
}

/// Whether a case counts as a failure in the progress lines: any failure without an assessment,
/// an unexplained one or a stale row with one.
fn failed(done: &Done) -> bool {
    let (o, a) = done;
    match a {
        None => !o.passed(),
        Some(a) => !a.conforms() || !(o.passed() || a.explains_all_of(o)),
    }
}

/// Runs `cases` on `jobs` worker threads until `stop` is set; outcomes come back in the order of
/// `cases` (those not started are left out).
fn run_parallel(
    harness: &Harness,
    cases: &[CaseSpec],
    assess: bool,
    jobs: usize,
    progress: &Progress,
    stop: &AtomicBool,
) -> Vec<Done> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Done)>();
    let mut slots: Vec<Option<Done>> = vec![None; cases.len()];
    std::thread::scope(|s| {
        for _ in 0..jobs.min(cases.len()) {
            let (tx, next) = (tx.clone(), &next);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = cases.get(i) else { break };
                    if tx.send((i, run_one(harness, spec, assess))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, done) in rx {
            progress.case_done(&done.0.name, failed(&done));
            slots[i] = Some(done);
        }
    });
    // Every case handed to a worker came back; only an interruption leaves some out.
    slots.into_iter().flatten().collect()
}

/// A progress bar on a terminal; plain lines (every failure, and a count every tenth) otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} {msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress { bar, total, done: AtomicUsize::new(0), failed: AtomicUsize::new(0) }
    }

    fn case_done(&self, name: &str, case_failed: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failed = if case_failed {
            self.failed.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.failed.load(Ordering::Relaxed)
        };
        match &self.bar {
            Some(bar) => {
                if case_failed {
                    bar.println(format!("FAIL {name}"));
                }
                bar.set_message(if failed > 0 { format!("{failed} failed") } else { String::new() });
                bar.inc(1);
            }
            None => {
                if case_failed {
                    eprintln!("isoprobe: FAIL {name}");
                }
                let step = self.total.div_ceil(10).max(1);
                if done % step == 0 || done == self.total {
                    eprintln!("isoprobe: {done}/{} cases done, {failed} failed", self.total);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isoprobe_harness::{LauncherKind, NsKind};

    fn selection() -> Selection {
        Selection { namespaces: Vec::new(), launchers: Vec::new(), filter: None, suites: Vec::new(), case_file: None }
    }

    #[test]
    fn the_default_plan_is_the_namespace_matrix_and_the_limit_suite() {
        let plan = plan(&selection()).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].cases, namespace_matrix());
        assert_eq!(plan[1].cases, limit_cases());
        let names: std::collections::BTreeSet<String> = plan[1].cases.iter().map(CaseSpec::name).collect();
        assert_eq!(names.len(), plan[1].cases.len(), "case names are unique");
    }

    #[test]
    fn namespaces_launchers_and_filter_narrow_the_plan() {
        let sel = Selection {
            namespaces: vec![NsKind::Pid, NsKind::Net],
            launchers: vec![LauncherArg::One(LauncherKind::Clone3), LauncherArg::One(LauncherKind::SetnsPidfd)],
            ..selection()
        };
        assert!(!sel.conformance(), "native launchers alone narrow the default suites");
        let cases = &plan(&sel).unwrap()[0].cases;
        assert!(!cases.is_empty());
        for c in cases {
            assert!(c.namespaces.iter().all(|k| k == NsKind::Pid || k == NsKind::Net), "{}", c.name());
            assert!(matches!(c.launcher, LauncherKind::Clone3 | LauncherKind::SetnsPidfd), "{}", c.name());
        }
        assert!(cases.iter().any(|c| c.namespaces.is_empty()), "the host-only case stays");
        let sel = Selection { suites: vec!["limits".into()], ..selection() };
        let p = plan(&sel).unwrap();
        assert_eq!(p.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["limits"]);
        let sel = Selection { suites: vec!["bogus".into()], ..selection() };
        assert!(plan(&sel).unwrap_err().to_string().contains("unknown suite `bogus`"));
        let sel = Selection { filter: Some("nothing-is-named-so".into()), ..selection() };
        assert!(plan(&sel).unwrap_err().to_string().contains("no case matches"));
    }

    #[test]
    fn all_or_a_real_tool_plans_the_conformance_suites() {
        let all = Selection { launchers: vec![LauncherArg::All], ..selection() };
        assert!(all.conformance());
        let kinds = all.launcher_kinds();
        assert_eq!(kinds[0], LauncherKind::Clone3);
        assert_eq!(&kinds[1..], &LauncherKind::EXTERNAL[..]);
        let p = plan(&all).unwrap();
        assert_eq!(p[0].name, "launchers");
        assert!(p.iter().all(|s| s.assess));
        let runner = Runner::current();
        let expected: usize = kinds.iter().map(|k| launcher_matrix(*k, runner).len()).sum();
        assert_eq!(p[0].cases.len(), expected);
        // The limit cases of the launchers that express cgroup limits (clone3; LXC, runc, crun).
        if let Some(limits) = p.iter().find(|s| s.name == "launcher-limits") {
            let expresses =
                |k: LauncherKind| isoprobe_harness::launcher::registry::launcher(k).capabilities().cgroup_limits;
            assert!(limits.cases.iter().all(|c| c.limits.is_some() && expresses(c.launcher)));
            assert!(limits.cases.iter().any(|c| c.launcher == LauncherKind::Lxc));
        }
        let names: BTreeSet<String> = p.iter().flat_map(|s| s.cases.iter().map(CaseSpec::name)).collect();
        assert_eq!(names.len(), p.iter().map(|s| s.cases.len()).sum::<usize>(), "case names are unique");

        let some = Selection {
            launchers: vec![LauncherArg::One(LauncherKind::Bwrap), LauncherArg::One(LauncherKind::UtilUnshare)],
            namespaces: vec![NsKind::Uts],
            ..selection()
        };
        let p = plan(&some).unwrap();
        assert_eq!(p.len(), 1, "neither tool expresses cgroup limits");
        assert!(!p[0].cases.is_empty());
        for c in &p[0].cases {
            assert!(matches!(c.launcher, LauncherKind::Bwrap | LauncherKind::UtilUnshare), "{}", c.name());
            assert!(c.namespaces.iter().all(|k| k == NsKind::Uts), "{}", c.name());
        }
    }

    #[test]
    fn a_case_file_is_read_and_each_entry_validated() {
        let dir = std::env::temp_dir().join(format!("run-plan-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            Selection { case_file: Some(p), ..selection() }
        };
        let ok = write("ok.json", r#"[{"namespaces": ["pid", "mnt"], "rootfs": "pivot-root", "launcher": "clone"}]"#);
        let cases = &plan(&ok).unwrap()[0].cases;
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].launcher, LauncherKind::Clone);
        let bad = write("bad.json", "[{\"namespaces\": [\"pid\"],\n \"rootfs\": 7}]");
        let e = plan(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.json: line 2, column"), "{e}");
        let invalid = write("invalid.json", r#"[{"namespaces": []}, {"namespaces": ["pid"], "rootfs": "pivot-root"}]"#);
        let e = plan(&invalid).unwrap_err().to_string();
        assert!(e.contains("invalid.json: case [1]"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
