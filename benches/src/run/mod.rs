//! A bench binary's run: its settings (bench, test or list; full or quick), CPU pinning, groups
//! with their sampling profiles, the per-sample CPU-time record, skips, and the summary at the end.
//!
//! Sampling. Sub-microsecond in-process operations ([`Profile::Batched`]) use criterion's own
//! time-based sampling. Everything that creates a process or a namespace ([`Profile::PerOp`],
//! [`Profile::Netns`]) runs a fixed number of iterations: criterion's flat sampling with one
//! iteration per sample (the warm-up and measurement targets are set to 1 ns, so criterion takes
//! one warm-up iteration and then `n` samples of one iteration; it prints a warning that it could
//! not reach the 1 ns target, which is expected). Criterion's automatic scaling would otherwise
//! run thousands of iterations and pile up dying namespaces. Every case waits, before it starts,
//! until the kernel's netns cleanup is idle (see [`crate::netns`]).
//!
//! Interleaving ([`Group::bench_interleaved`]): in a full run, the fixed-count cases of a group that
//! opts in are not sampled one case after the other but in rounds, one sample of every case per
//! round (a case with fewer samples takes its samples spread evenly over the rounds; odd rounds
//! go through the cases backwards), and
//! criterion then reads each case's samples back in the order they were taken. A slow drift of
//! the machine, or a burst of load from another process, then lands on every case of the group
//! alike instead of on whichever case happened to run at that moment: what makes two runs of the
//! same build agree case by case. Criterion's statistics are unchanged; only the time at which
//! each sample was taken differs. So that a sample does not pay for its neighbour in the round
//! (the teardown and deferred kernel work of the case before it), every sample of a case other
//! than a netns one is preceded by an untimed call of the same case (`WARM_UP_CALLS`).
//!
//! Every fixed-count case is sampled here, not by criterion: interleaved ones in rounds, the
//! others on their own when they are added. Around each sample this module reads the CPU's
//! speed ([`crate::speed`]); samples taken while the CPU ran slow are left out of what criterion
//! is given, if enough fast ones remain, and the summary records how many were left out.
//!
//! CPU time: every timed region returns wall and CPU time ([`Timed`]); the CPU time of each
//! criterion sample is recorded here and its median goes into the summary.
//!
//! Parts ([`Group::bench_parts`]): a routine whose one call measures several parts (the phases of
//! a whole harness case) gives each part a case of its own from the same calls (see `parts.rs`).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use serde::Serialize;

use crate::netns::NetnsWatch;
use crate::speed::{self, Speed};
use crate::summary::{self, BenchCase, Part};
use crate::{Timed, primitives};

mod parts;
mod rounds;
mod settings;

pub use parts::PartTimes;
use rounds::{Queued, cpu_median};
pub use settings::{Mode, NETNS, PER_OP, Profile, Settings};

/// The samples criterion took of one case: (iterations, wall and CPU time) per call.
#[derive(Debug, Default)]
struct Record {
    group: String,
    op: String,
    param: String,
    samples: Vec<(u64, Timed)>,
    /// Whether the CPU time means anything for this case (see [`Group::record_cpu`]).
    cpu: bool,
    /// Samples taken while the CPU ran slow, and whether they had to be kept (see
    /// [`crate::speed`]).
    slow: u64,
    contended: bool,
    /// The median CPU time per iteration, computed when the samples were handed to criterion
    /// (whose samples are then dropped, so that they do not add to the process's memory).
    cpu_median: Option<f64>,
}

/// A case that was not run, and why.
#[derive(Debug, Clone)]
pub struct Skip {
    pub case: String,
    pub reason: String,
    /// An unexpected failure rather than a missing privilege or feature: fails the run.
    pub error: bool,
}

#[derive(Debug, Default)]
struct Shared {
    records: Vec<Record>,
    skips: Vec<Skip>,
}

/// One bench binary's run.
pub struct BenchRun {
    pub criterion: Criterion,
    pub settings: Settings,
    topic: &'static str,
    shared: Rc<RefCell<Shared>>,
    pub netns: NetnsWatch,
    speed: Speed,
}

impl std::fmt::Debug for BenchRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchRun").field("topic", &self.topic).field("settings", &self.settings).finish()
    }
}

/// The CPU the benchmark thread is pinned to: `ISOPROBE_BENCH_CPU` (a number, or `none`), else
/// the last CPU this process may run on (the first tends to take more interrupts).
pub fn bench_cpu() -> Option<usize> {
    match std::env::var("ISOPROBE_BENCH_CPU") {
        Ok(v) if v == "none" => None,
        Ok(v) => v.parse().ok(),
        Err(_) => {
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
            (0..nix::sched::CpuSet::count()).rev().find(|&c| set.is_set(c).unwrap_or(false))
        }
    }
}

/// Pins the calling thread to `cpu` (sched_setaffinity(2); children inherit it).
pub fn pin_thread(cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

impl BenchRun {
    /// Sets up the run of the bench binary `topic`; pins this thread (see [`bench_cpu`]).
    pub fn new(topic: &'static str) -> BenchRun {
        // Before anything is allocated: freed memory must not stay in the process, where every
        // fork-type sample would copy its page tables (see `primitives::tune_malloc`).
        primitives::tune_malloc();
        // Crash-only: what dead runs and benches left goes before this bench measures anything.
        isoprobe_harness::leftovers::recover_at_start(&format!("isoprobe-bench {topic}"));
        let settings = Settings::from_env();
        let cpu = bench_cpu();
        match cpu {
            Some(cpu) => match pin_thread(cpu) {
                Ok(()) => eprintln!("isoprobe-bench {topic}: pinned to CPU {cpu}"),
                Err(e) => eprintln!("isoprobe-bench {topic}: not pinned (failed to pin to CPU {cpu}: {e})"),
            },
            None => eprintln!("isoprobe-bench {topic}: not pinned (ISOPROBE_BENCH_CPU=none)"),
        }
        if settings.quick {
            eprintln!("isoprobe-bench {topic}: quick mode");
        }
        let settle = std::env::var("ISOPROBE_BENCH_SETTLE").map_or(true, |v| v != "0");
        if settings.mode == Mode::Bench && settle {
            match crate::settle::wait_quiet() {
                crate::settle::Settled::Quiet(d) if d > Duration::from_secs(2) => {
                    eprintln!("isoprobe-bench {topic}: waited {d:.1?} for a quiet machine")
                }
                crate::settle::Settled::Quiet(_) => {}
                crate::settle::Settled::Busy(share) => eprintln!(
                    "isoprobe-bench {topic}: WARNING: the machine is still {:.0}% busy after {:?}; measuring anyway \
                     (results will read slow)",
                    share * 100.0,
                    crate::settle::MAX_WAIT
                ),
                crate::settle::Settled::Unknown => {
                    eprintln!("isoprobe-bench {topic}: /proc/stat unreadable; not waiting for a quiet machine")
                }
            }
        }
        // Quick and test runs take too few samples per case to leave any out.
        let mut speed = Speed::load(&summary::target_dir(), cpu, !settings.small());
        if settings.mode == Mode::Bench {
            // Readings for a second, so that the first case already knows the CPU's best speed.
            speed.learn(Duration::from_secs(1));
            eprintln!(
                "isoprobe-bench {topic}: CPU speed reference: a null system call in {:.1} ns at best{}",
                speed.best(),
                if speed.filter() { "" } else { " (ISOPROBE_BENCH_SPEED=all: slow samples are kept)" }
            );
        }
        let criterion = Criterion::default().without_plots().nresamples(20_000).configure_from_args();
        BenchRun { criterion, settings, topic, shared: Rc::default(), netns: NetnsWatch::new(), speed }
    }

    pub fn group(&mut self, name: &str) -> Group<'_> {
        Group {
            g: self.criterion.benchmark_group(name),
            name: name.to_owned(),
            settings: self.settings,
            shared: self.shared.clone(),
            netns: &mut self.netns,
            speed: &mut self.speed,
            cpu: true,
            idle_first: true,
            queue: Vec::new(),
        }
    }

    pub fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Prints the skips, writes the summary (bench mode), and exits non-zero if a case failed.
    pub fn finish(self) {
        self.criterion.final_summary();
        let shared = self.shared.borrow();
        for s in &shared.skips {
            let what = if s.error { "FAILED" } else { "skipped" };
            eprintln!("isoprobe-bench {}: {what}: {}: {}", self.topic, s.case, s.reason);
        }
        if self.settings.mode == Mode::Bench {
            if let Err(e) = self.speed.save() {
                eprintln!("isoprobe-bench {}: failed to record the CPU speed reference: {e}", self.topic);
            }
            match self.write_summary(&shared) {
                Ok(path) => eprintln!("isoprobe-bench {}: summary in {}", self.topic, path.display()),
                Err(e) => {
                    eprintln!("isoprobe-bench {}: failed to write the summary: {e}", self.topic);
                    std::process::exit(1);
                }
            }
        }
        if shared.skips.iter().any(|s| s.error) {
            std::process::exit(1);
        }
    }

    fn write_summary(&self, shared: &Shared) -> io::Result<std::path::PathBuf> {
        let target = summary::target_dir();
        let mut cases = Vec::new();
        for r in &shared.records {
            let id = Group::full_id(&r.op, &r.param);
            let dir = summary::criterion_dir(&target, &r.group, &r.op, &r.param);
            let (median, lo, hi, n) = match summary::read_criterion(&dir) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("isoprobe-bench: no criterion estimates for {}/{id} ({e}); left out", r.group);
                    continue;
                }
            };
            // Criterion's samples are the last `n` calls (the warm-up calls come first).
            let cpu_median = r.cpu_median.or_else(|| cpu_median(&r.samples, n as usize));
            cases.push(BenchCase {
                group: r.group.clone(),
                id,
                median_ns: median,
                ci_low_ns: lo,
                ci_high_ns: hi,
                cpu_ns: if r.cpu { cpu_median } else { None },
                samples: n,
                slow_samples: r.slow,
                contended: r.contended,
                ratios: BTreeMap::new(),
            });
        }
        let calibration =
            cases.iter().filter(|c| c.group == "calibration").map(|c| (c.id.clone(), c.median_ns)).collect();
        let part = Part {
            run_id: summary::run_id(),
            topic: self.topic.into(),
            quick: self.settings.quick,
            calibration,
            cases,
        };
        summary::write(&target, &part, crate::fingerprint())
    }
}

/// A criterion benchmark group with isoprobe's profiles and records.
pub struct Group<'a> {
    g: BenchmarkGroup<'a, WallTime>,
    name: String,
    settings: Settings,
    shared: Rc<RefCell<Shared>>,
    netns: &'a mut NetnsWatch,
    speed: &'a mut Speed,
    cpu: bool,
    idle_first: bool,
    queue: Vec<Queued<'a>>,
}

impl std::fmt::Debug for Group<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("name", &self.name).finish()
    }
}

/// Why an operation that failed on its trial run is skipped: missing privileges and missing
/// kernel features are skips; anything else is a failure of the benchmark.
fn classify(e: &io::Error) -> (String, bool) {
    match e.kind() {
        io::ErrorKind::PermissionDenied => (format!("needs root (or CAP_SYS_ADMIN): {e}"), false),
        io::ErrorKind::Unsupported => (format!("not supported by this kernel: {e}"), false),
        _ => (format!("{e}"), true),
    }
}

impl<'a> Group<'a> {
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Whether a case is sampled here (in rounds with the group's other interleaved cases, or
    /// alone) and replayed to criterion: a fixed-count case in a full or `ISOPROBE_BENCH_QUICK`
    /// run. Test mode and criterion's own `--quick` sampling (which asks for more than one
    /// iteration per sample) leave it to criterion.
    fn interleaving(&self, profile: Profile) -> bool {
        profile != Profile::Batched && self.settings.mode == Mode::Bench && !self.settings.criterion_quick
    }

    fn full_id(op: &str, param: &str) -> String {
        if param.is_empty() { op.to_owned() } else { format!("{op}/{param}") }
    }

    /// Whether the following cases' CPU time goes into the summary (off where the timing thread
    /// only waits or polls, so that its CPU time says nothing about the operation).
    pub fn record_cpu(&mut self, on: bool) {
        self.cpu = on;
    }

    /// Whether the following cases wait for an idle netns cleanup first (on by default; off only
    /// where the case itself keeps the cleanup busy on purpose, as background churn does).
    pub fn wait_idle_before_cases(&mut self, on: bool) {
        self.idle_first = on;
    }

    /// Records that `op/param` was not run, and why.
    pub fn skip(&mut self, op: &str, param: &str, reason: impl Into<String>) {
        self.shared.borrow_mut().skips.push(Skip {
            case: format!("{}/{}", self.name, Self::full_id(op, param)),
            reason: reason.into(),
            error: false,
        });
    }

    /// Records a failure of `op/param` (the run exits non-zero at the end).
    pub fn fail(&mut self, op: &str, param: &str, reason: impl Into<String>) {
        self.shared.borrow_mut().skips.push(Skip {
            case: format!("{}/{}", self.name, Self::full_id(op, param)),
            reason: reason.into(),
            error: true,
        });
    }

    /// Waits for the netns cleanup to go idle (outside any timing).
    pub fn wait_netns_idle(&mut self) {
        match self.netns.wait_idle(Duration::from_secs(120)) {
            Ok(d) if d > Duration::from_millis(100) => eprintln!("isoprobe-bench: waited {d:.1?} for netns cleanup"),
            Ok(_) => {}
            Err(e) => eprintln!("isoprobe-bench: {e}; measuring anyway"),
        }
    }

    pub fn netns(&mut self) -> &mut NetnsWatch {
        self.netns
    }

    /// Benchmarks one operation: `op` runs one iteration and returns its timed region. It is
    /// tried once first; a failure there becomes a skip (privileges, features) or a failure.
    ///
    /// With [`Profile::Netns`] every iteration first waits (untimed) for the netns cleanup to go
    /// idle, so that each sample measures the operation on a kernel that is not tearing down the
    /// previous sample's namespace: creation and cleanup contend (both take `rtnl_lock`), and how
    /// often they overlap would otherwise depend on the loop's pace.
    pub fn bench(&mut self, op: &str, param: &str, profile: Profile, f: impl FnMut() -> io::Result<Timed>) {
        let f = per_iteration(self.netns_wait(profile), f);
        self.bench_iters(op, param, profile, f);
    }

    /// Like [`Group::bench`], but the case is sampled in rounds with the group's other
    /// interleaved cases when the group finishes (see the module docs): `f` runs after this call
    /// returns, so whatever it uses must live until [`Group::finish`].
    pub fn bench_interleaved(
        &mut self,
        op: &str,
        param: &str,
        profile: Profile,
        f: impl FnMut() -> io::Result<Timed> + 'a,
    ) {
        let f = per_iteration(self.netns_wait(profile), f);
        self.bench_iters_interleaved(op, param, profile, f);
    }

    /// Like [`Group::bench`], with `f` running `iters` iterations itself (for batched loops).
    pub fn bench_iters(
        &mut self,
        op: &str,
        param: &str,
        profile: Profile,
        mut f: impl FnMut(u64) -> io::Result<Timed>,
    ) {
        if !self.try_once(op, param, &mut f) {
            return;
        }
        match self.queued(op, param, profile, f) {
            Ok(q) => self.sample(vec![q]),
            Err(f) => self.run_now(op, param, profile, f),
        }
    }

    /// [`Group::bench_iters`] sampled in rounds, like [`Group::bench_interleaved`].
    pub fn bench_iters_interleaved(
        &mut self,
        op: &str,
        param: &str,
        profile: Profile,
        mut f: impl FnMut(u64) -> io::Result<Timed> + 'a,
    ) {
        if !self.try_once(op, param, &mut f) {
            return;
        }
        match self.queued(op, param, profile, f) {
            Ok(q) => self.queue.push(q),
            Err(f) => self.run_now(op, param, profile, f),
        }
    }

    /// Whether each sample of a `profile` case waits for an idle netns cleanup. Quick runs skip
    /// the per-iteration wait (it costs a cleanup, tens of milliseconds, per sample); their netns
    /// numbers then include the contention with earlier samples' cleanup.
    fn netns_wait(&self, profile: Profile) -> bool {
        matches!(profile, Profile::Netns { .. }) && !self.settings.small()
    }

    /// Waits for an idle netns cleanup (see [`Group::wait_idle_before_cases`]) and runs one
    /// iteration as a trial: false, with the skip or failure recorded, when it failed.
    fn try_once(&mut self, op: &str, param: &str, f: &mut impl FnMut(u64) -> io::Result<Timed>) -> bool {
        // Every case, not only the netns ones: a cleanup still running from an earlier case
        // would otherwise compete with this one. When idle this costs one confirmation window.
        if self.idle_first {
            self.wait_netns_idle();
        }
        match f(1) {
            Ok(_) => true,
            Err(e) => {
                let (reason, error) = classify(&e);
                if error {
                    self.fail(op, param, reason);
                } else {
                    self.skip(op, param, reason);
                }
                false
            }
        }
    }

    /// Runs a case through criterion now.
    fn run_now(&mut self, op: &str, param: &str, profile: Profile, mut f: impl FnMut(u64) -> io::Result<Timed>) {
        let id = Self::full_id(op, param);
        self.configure(profile);
        let shared = self.shared.clone();
        let cpu = self.cpu;
        let (group, op_name, param_name) = (self.name.clone(), op.to_owned(), param.to_owned());
        let mut run = move |iters: u64| -> Duration {
            let t = f(iters).unwrap_or_else(|e| panic!("failed to run {group}/{id}: {e}"));
            record(&shared, &group, &op_name, &param_name, cpu, iters, t);
            Duration::from_nanos(t.wall_ns)
        };
        if param.is_empty() {
            self.g.bench_function(op, |b| b.iter_custom(&mut run));
        } else {
            self.g.bench_function(BenchmarkId::new(op, param), |b| b.iter_custom(&mut run));
        }
    }

    /// Criterion's sampling settings for a case of `profile`.
    fn configure(&mut self, profile: Profile) {
        match profile {
            Profile::Batched => {
                self.g.sampling_mode(SamplingMode::Auto);
                self.g.sample_size(self.settings.pick(50, 10));
                self.g.warm_up_time(self.settings.pick(Duration::from_secs(1), Duration::from_millis(200)));
                self.g.measurement_time(self.settings.pick(Duration::from_secs(3), Duration::from_millis(500)));
            }
            Profile::PerOp { full, quick } | Profile::Netns { full, quick } => {
                self.g.sampling_mode(SamplingMode::Flat);
                self.g.sample_size(self.settings.pick(full, quick).max(10));
                self.g.warm_up_time(Duration::from_nanos(1));
                // Criterion's own quick mode stops at this time: give it 100 ms (its minimum)
                // rather than one iteration.
                let target =
                    if self.settings.criterion_quick { Duration::from_millis(100) } else { Duration::from_nanos(1) };
                self.g.measurement_time(target);
            }
        }
    }

    /// Samples the queued cases (see [`Group::bench_interleaved`]) and ends the group.
    pub fn finish(mut self) {
        let queue = std::mem::take(&mut self.queue);
        self.sample(queue);
        self.g.finish();
    }
}

/// `f`, one iteration, as a routine of `iters` iterations, each first waiting for an idle netns
/// cleanup when `netns_wait`.
fn per_iteration(netns_wait: bool, mut f: impl FnMut() -> io::Result<Timed>) -> impl FnMut(u64) -> io::Result<Timed> {
    let mut watch = netns_wait.then(NetnsWatch::new);
    move |iters| {
        let mut total = Timed::default();
        for _ in 0..iters {
            if let Some(w) = watch.as_mut() {
                w.wait_idle(Duration::from_secs(120)).map_err(io::Error::other)?;
            }
            total = total + f()?;
        }
        Ok(total)
    }
}

/// Records one criterion call's sample of `group/op/param`.
fn record(shared: &RefCell<Shared>, group: &str, op: &str, param: &str, cpu: bool, iters: u64, t: Timed) {
    let mut s = shared.borrow_mut();
    match s.records.iter_mut().find(|r| r.group == group && r.op == op && r.param == param) {
        Some(r) => r.samples.push((iters, t)),
        None => s.records.push(Record {
            group: group.to_owned(),
            op: op.to_owned(),
            param: param.to_owned(),
            samples: vec![(iters, t)],
            cpu,
            ..Record::default()
        }),
    }
}
