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

/// What criterion was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: measure and write the summary.
    Bench,
    /// `cargo test --benches` or `cargo bench -- --test`: run every case once, no summary.
    Test,
    /// `--list`, `--profile-time`: no summary.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mode: Mode,
    /// `cargo bench -- --quick` or `ISOPROBE_BENCH_QUICK=1`: smaller sample counts and parameter
    /// ranges (about a minute for all binaries).
    pub quick: bool,
    /// `--quick` was passed: criterion then uses its own quick sampling (doubling the iteration
    /// count until two consecutive batches agree), which ignores the fixed sample counts.
    pub criterion_quick: bool,
}

impl Settings {
    pub fn from_env() -> Settings {
        let args: Vec<String> = std::env::args().collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        let mode = if has("--list") || has("--profile-time") {
            Mode::Other
        } else if has("--test") || !has("--bench") {
            Mode::Test
        } else {
            Mode::Bench
        };
        let env_quick = std::env::var("ISOPROBE_BENCH_QUICK").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        Settings { mode, quick: has("--quick") || env_quick, criterion_quick: has("--quick") }
    }

    /// Test mode runs each case once: parameter ranges shrink as in quick mode.
    pub fn small(&self) -> bool {
        self.quick || self.mode != Mode::Bench
    }

    /// `full` in a full run, `quick` otherwise.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.small() { quick } else { full }
    }
}

/// How a case is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Criterion's time-based sampling, for in-process operations far below a microsecond.
    Batched,
    /// A fixed number of single-iteration samples (full run, quick run).
    PerOp { full: usize, quick: usize },
    /// Like `PerOp`, for cases that create or release a network namespace per iteration: smaller
    /// counts, and an idle netns cleanup before every iteration (see [`Group::bench`]).
    Netns { full: usize, quick: usize },
}

/// Sample counts used by most cases.
pub const PER_OP: Profile = Profile::PerOp { full: 1000, quick: 20 };
/// Sample counts of cases that create a network namespace per iteration.
pub const NETNS: Profile = Profile::Netns { full: 150, quick: 10 };

/// How long a case waits, untimed, for the CPU to run at full speed before its first sample
/// (see [`crate::speed`]).
const FAST_WAIT: Duration = Duration::from_secs(3);

/// Untimed calls of a case right before each of its samples, so that a sample measures the case
/// after itself rather than after whichever case preceded it in the round. In rounds the
/// neighbour's aftermath (its child's teardown, the RCU and workqueue work it queued) lands on
/// the next sample, and for the short cases it dominates: in the namespaces group setns(2) into
/// a mount namespace took 9.7 µs after `unshare_repeat/mnt` and 4.3–4.7 µs after
/// `setns_pidfd/mnt`, unshare(CLONE_NEWPID) 12.7–12.9 µs after `setns_nsfd/pid` and 6.0–6.1 µs
/// after `clone3_exit_wait/pid` (medians of 500 samples each, two runs). Forwards and backwards
/// rounds made each case half of one and half of the other, and the median of such a mixture
/// falls anywhere between the two: those cases moved by 10–40% between two runs. Not for netns
/// cases: every one of their samples follows a wait for the cleanup alike (see below).
const WARM_UP_CALLS: u32 = 1;

/// Untimed calls of the next case after the bench waited for the netns cleanup. A sample right
/// after that wait runs on a CPU that idled for tens of milliseconds while the cleanup's work ran:
/// in the reference group the first clone3(CLONE_NEWUTS) + exit + wait after a netns sample and
/// its wait (about 60 ms) took 320–328 µs, the second 136 µs and later ones 116–121 µs (medians of
/// 151, 151 and 850 samples, each of two full runs). Worse, the speed probe read the CPU fast
/// right after the idle time, so the speed filter kept those samples first: the harness's clone3 +
/// exit + wait read 12% above the bare-libc loop's in one run and 5% in the next.
const WARM_AFTER_NETNS_WAIT: u32 = 2;

/// How long a group may go on sampling, after its planned rounds, the cases that have fewer
/// fast samples than [`speed::min_fast`] (see [`Group::sample`]).
const TOP_UP_BUDGET: Duration = Duration::from_secs(30);

/// Room in a case's sample store, as a multiple of its planned samples (for the top-up rounds).
const TOP_UP_ROOM: usize = 4;

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

/// One iteration of a case, or `iters` of them: the timed region's wall and CPU time.
type Routine<'a> = Box<dyn FnMut(u64) -> io::Result<Timed> + 'a>;

/// A case of an interleaving group, queued until [`Group::finish`] samples it.
struct Queued<'a> {
    op: String,
    param: String,
    /// Samples to take: criterion's one warm-up call plus its sample count.
    calls: usize,
    /// Whether it creates or releases a network namespace per sample (then the cleanup is
    /// waited for after each of its samples, so the next case's sample does not compete with it).
    netns: bool,
    cpu: bool,
    f: Routine<'a>,
    /// The samples taken, kept out of the process's anonymous memory while sampling (see
    /// [`primitives::SampleStore`]).
    taken: primitives::SampleStore,
}

impl Queued<'_> {
    /// The samples taken so far, the first (criterion's warm-up call) included.
    fn taken(&self) -> Vec<Taken> {
        (0..self.taken.len()).filter_map(|i| self.taken.get(i)).map(Taken::from_words).collect()
    }

    /// Whether [`speed::select`] would find this case contended with the samples taken so far
    /// (the same judgement the estimate gets after the group).
    fn short_of_fast(&self, best: f64) -> bool {
        let readings: Vec<f64> = self.taken().iter().skip(1).map(|t| t.speed_ns).collect();
        speed::select(&readings, best, true).contended
    }
}

/// One sample of a case, with the CPU speed read right before it (see [`crate::speed`]).
#[derive(Debug, Clone, Copy, Serialize)]
struct Taken {
    wall_ns: u64,
    cpu_ns: u64,
    /// Nanoseconds per null system call, read right before the sample.
    speed_ns: f64,
    /// When the sample was taken: microseconds since the Unix epoch.
    at_us: u64,
}

impl Taken {
    fn to_words(self) -> [u64; 4] {
        [self.wall_ns, self.cpu_ns, self.speed_ns.to_bits(), self.at_us]
    }

    fn from_words([wall_ns, cpu_ns, speed, at_us]: [u64; 4]) -> Taken {
        Taken { wall_ns, cpu_ns, speed_ns: f64::from_bits(speed), at_us }
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

    /// The case, ready to be sampled here (see [`Group::interleaving`]), or `f` back when
    /// criterion samples it itself.
    fn queued<'f, F>(&self, op: &str, param: &str, profile: Profile, f: F) -> Result<Queued<'f>, F>
    where
        F: FnMut(u64) -> io::Result<Timed> + 'f,
    {
        let (Profile::PerOp { full, quick } | Profile::Netns { full, quick }) = profile else { return Err(f) };
        if !self.interleaving(profile) {
            return Err(f);
        }
        let calls = self.settings.pick(full, quick).max(10) + 1;
        let taken = match primitives::SampleStore::new(calls * TOP_UP_ROOM) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("isoprobe-bench {}: no sample store ({e}); criterion samples {op}/{param} itself", self.name);
                return Err(f);
            }
        };
        Ok(Queued {
            op: op.to_owned(),
            param: param.to_owned(),
            calls,
            netns: self.netns_wait(profile),
            cpu: self.cpu,
            f: Box::new(f),
            taken,
        })
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

    /// One sample of `q`: its untimed calls first (none for a netns case), then the speed
    /// reading, then the timed call; a netns case then waits for the cleanup. A failure is
    /// recorded in `failure`.
    fn take_sample(&mut self, q: &mut Queued<'_>, failure: &mut Option<String>, after_wait: &mut bool) {
        if !q.netns {
            let owed = if std::mem::take(after_wait) { WARM_AFTER_NETNS_WAIT } else { WARM_UP_CALLS };
            if let Some(e) = (0..owed).find_map(|_| (q.f)(1).err()) {
                *failure = Some(format!("failed in an untimed call before a sample: {e}"));
                return;
            }
        }
        let at_us =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let speed_ns = self.speed.read();
        match (q.f)(1) {
            Ok(t) => {
                let taken = Taken { wall_ns: t.wall_ns, cpu_ns: t.cpu_ns, speed_ns, at_us };
                if !q.taken.push(taken.to_words()) {
                    *failure = Some("more samples than the store holds (a bug of the sampling)".into());
                }
            }
            Err(e) => *failure = Some(format!("failed while sampling: {e}")),
        }
        if q.netns {
            if let Err(e) = self.netns.wait_idle(Duration::from_secs(120)) {
                eprintln!("isoprobe-bench: {e}; measuring anyway");
            }
            *after_wait = true;
        }
    }

    /// Takes the cases' samples in rounds (one case alone takes them one after the other), each
    /// after an untimed call of its own ([`WARM_UP_CALLS`], [`WARM_AFTER_NETNS_WAIT`]), with
    /// the CPU's speed read right before it; then hands each case's samples to criterion in the order
    /// they were taken, leaving out those taken while the CPU ran slow if enough remain (see
    /// [`crate::speed`]). A case whose routine fails while sampling is recorded as failed and
    /// left out.
    fn sample(&mut self, mut queue: Vec<Queued<'_>>) {
        if queue.is_empty() {
            return;
        }
        let rounds = queue.iter().map(|q| q.calls).max().unwrap_or(0);
        let total: usize = queue.iter().map(|q| q.calls).sum();
        // What criterion's analysis of earlier cases freed goes back to the kernel: the process's
        // private memory, which every fork-type sample copies, is then the same for every case.
        primitives::trim_heap();
        let rss = primitives::anon_rss_kib().map_or_else(|| "unknown".into(), |k| format!("{k} KiB"));
        if queue.len() > 1 {
            eprintln!(
                "isoprobe-bench {}: sampling {} cases interleaved ({total} samples in {rounds} rounds; the bench \
                 process's anonymous memory: {rss})",
                self.name,
                queue.len()
            );
        } else if let Some(q) = queue.first() {
            eprintln!(
                "isoprobe-bench {}: sampling {} ({total} samples; the bench process's anonymous memory: {rss})",
                self.name,
                Self::full_id(&q.op, &q.param)
            );
        }
        // A short untimed wait for full speed, so that a short case does not fall entirely into a
        // slow phase.
        if self.speed.filter() && !self.speed.wait_fast(FAST_WAIT) {
            eprintln!("isoprobe-bench {}: the CPU still runs slow after {FAST_WAIT:?}; sampling anyway", self.name);
        }
        let mut failed: Vec<Option<String>> = vec![None; queue.len()];
        let mut reported = std::time::Instant::now();
        // Whether the last sample was followed by a netns cleanup wait (see WARM_AFTER_NETNS_WAIT).
        let mut after_wait = false;
        for round in 0..rounds {
            // Forwards in even rounds, backwards in odd ones: a case is not always preceded by the
            // same neighbour (whose aftermath, a teardown or a cold cache, it would then always
            // pay), and two neighbours take turns going first.
            let mut order: Vec<usize> = (0..queue.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                if failed[i].is_none() && takes_sample(round, queue[i].calls, rounds) {
                    self.take_sample(&mut queue[i], &mut failed[i], &mut after_wait);
                }
            }
            if reported.elapsed() > Duration::from_secs(15) {
                eprintln!("isoprobe-bench {}: round {}/{rounds}", self.name, round + 1);
                reported = std::time::Instant::now();
            }
        }
        // Top-up: a case that got fewer fast samples than its estimate needs (the CPU ran slow
        // through most of the group) is sampled on, in rounds with the others short of them,
        // until it has enough or the budget is spent. Without it such a case is `contended` and
        // its estimate mixes the two speeds in whatever proportion the run happened to get:
        // whole groups then read 20–25% apart between two runs.
        if self.speed.filter() {
            let start = std::time::Instant::now();
            let mut round = 0;
            loop {
                let best = self.speed.best();
                let short: Vec<usize> =
                    (0..queue.len()).filter(|&i| failed[i].is_none() && queue[i].short_of_fast(best)).collect();
                let mut short_with_room: Vec<usize> =
                    short.iter().copied().filter(|&i| !queue[i].taken.is_full()).collect();
                if short_with_room.is_empty() || start.elapsed() > TOP_UP_BUDGET {
                    if !short.is_empty() {
                        let why = if short_with_room.is_empty() {
                            format!("their sample stores ({TOP_UP_ROOM}× the planned samples) are full")
                        } else {
                            format!("the budget of {TOP_UP_BUDGET:?} is spent")
                        };
                        eprintln!(
                            "isoprobe-bench {}: {} case(s) still short of fast samples after {:.1?} of extra rounds: {why}",
                            self.name,
                            short.len(),
                            start.elapsed()
                        );
                    }
                    break;
                }
                if round == 0 {
                    eprintln!(
                        "isoprobe-bench {}: {} case(s) have too few fast samples: sampling them on (at most \
                         {TOP_UP_BUDGET:?})",
                        self.name,
                        short.len()
                    );
                }
                if round % 2 == 1 {
                    short_with_room.reverse();
                }
                for i in short_with_room {
                    self.take_sample(&mut queue[i], &mut failed[i], &mut after_wait);
                }
                round += 1;
            }
        }
        let best = self.speed.best();
        let (mut slow, mut total, mut contended) = (0, 0, Vec::new());
        for (q, failure) in queue.into_iter().zip(failed) {
            if let Some(reason) = failure {
                self.fail(&q.op, &q.param, reason);
                continue;
            }
            // The first sample is criterion's warm-up call; the selection is among the others.
            let taken = q.taken();
            let readings: Vec<f64> = taken[1..].iter().map(|t| t.speed_ns).collect();
            let sel = speed::select(&readings, best, self.speed.filter());
            if let Some(dir) = std::env::var_os("ISOPROBE_BENCH_SAMPLES")
                && let Err(e) =
                    dump_samples(Path::new(&dir), &self.name, &Self::full_id(&q.op, &q.param), best, &taken, &sel)
            {
                eprintln!(
                    "isoprobe-bench {}: failed to write the samples to {}: {e}",
                    self.name,
                    dir.to_string_lossy()
                );
            }
            total += readings.len();
            slow += sel.slow;
            if sel.contended {
                contended.push(Self::full_id(&q.op, &q.param));
            }
            self.replay(q, &taken, &sel);
        }
        if slow > 0 {
            let what = if self.speed.filter() { "left out" } else { "kept" };
            eprintln!(
                "isoprobe-bench {}: {slow} of {total} samples were taken while the CPU ran slow (null system call \
                 above {:.1} ns = {}× the best): {what}{}",
                self.name,
                best * speed::SLOW_FACTOR,
                speed::SLOW_FACTOR,
                if contended.is_empty() { "" } else { " where enough fast ones remained" }
            );
        }
        if !contended.is_empty() {
            eprintln!(
                "isoprobe-bench {}: WARNING: too few samples at full CPU speed, all kept (these read slow): {}",
                self.name,
                contended.join(", ")
            );
        }
    }

    /// Hands criterion the warm-up sample and the selected samples of `q`, in the order taken.
    fn replay(&mut self, q: Queued<'_>, taken: &[Taken], sel: &speed::Selection) {
        let Queued { op, param, cpu, mut f, .. } = q;
        let mut replayed: VecDeque<Timed> = std::iter::once(0)
            .chain(sel.kept.iter().map(|i| i + 1))
            .map(|i| Timed { wall_ns: taken[i].wall_ns, cpu_ns: taken[i].cpu_ns })
            .collect();
        let n = sel.kept.len();
        self.configure(Profile::PerOp { full: n, quick: n });
        let shared = self.shared.clone();
        let group = self.name.clone();
        let id = Self::full_id(&op, &param);
        let (op_id, param_id) = (op.clone(), param.clone());
        let mut run = |iters: u64| -> Duration {
            // Criterion asks for exactly the calls selected, one iteration each; should it ask
            // for another, that one is measured now, and said so.
            let t = match replayed.pop_front() {
                Some(t) if iters == 1 => t,
                pending => {
                    eprintln!(
                        "isoprobe-bench: {group}/{id}: criterion asked for {iters} iteration(s) beyond the \
                         samples taken; measured now"
                    );
                    if let Some(t) = pending {
                        replayed.push_front(t);
                    }
                    f(iters).unwrap_or_else(|e| panic!("failed to run {group}/{id}: {e}"))
                }
            };
            record(&shared, &group, &op, &param, cpu, iters, t);
            Duration::from_nanos(t.wall_ns)
        };
        if param_id.is_empty() {
            self.g.bench_function(op_id.as_str(), |b| b.iter_custom(&mut run));
        } else {
            self.g.bench_function(BenchmarkId::new(op_id.as_str(), param_id.as_str()), |b| b.iter_custom(&mut run));
        }
        let mut s = self.shared.borrow_mut();
        if let Some(r) = s.records.iter_mut().find(|r| r.group == self.name && r.op == op_id && r.param == param_id) {
            // Only what the filter acted on goes into the summary: slow samples it left out, or
            // had to keep (contended). With the filter off they were kept like any other.
            r.slow = if self.speed.filter() { sel.slow as u64 } else { 0 };
            r.contended = sel.contended;
            r.cpu_median = cpu_median(&r.samples, sel.kept.len());
            r.samples = Vec::new();
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

/// Appends one case's samples to `<dir>/samples.jsonl` (`ISOPROBE_BENCH_SAMPLES=<dir>`): a JSON
/// object per line with the group, the id, the best speed reading, and every sample taken (the
/// first is criterion's warm-up) with its speed reading and whether the estimate used it. For
/// studying a machine's noise after the fact.
fn dump_samples(
    dir: &Path,
    group: &str,
    id: &str,
    best: f64,
    taken: &[Taken],
    sel: &speed::Selection,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'t> {
        group: &'t str,
        id: &'t str,
        best_speed_ns: f64,
        contended: bool,
        samples: Vec<(Taken, bool)>,
    }
    let kept: std::collections::BTreeSet<usize> = sel.kept.iter().map(|i| i + 1).collect();
    let samples = taken.iter().enumerate().map(|(i, t)| (*t, kept.contains(&i))).collect();
    let line = Line { group, id, best_speed_ns: best, contended: sel.contended, samples };
    let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
    text.push('\n');
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("samples.jsonl"))?;
    io::Write::write_all(&mut f, text.as_bytes())
}

/// Whether a case with `calls` samples takes one in `round` of `rounds`: its samples spread
/// evenly over the rounds, the first in round 0.
fn takes_sample(round: usize, calls: usize, rounds: usize) -> bool {
    (round * calls).div_ceil(rounds) != ((round + 1) * calls).div_ceil(rounds)
}

/// The median CPU time per iteration of the last `n` calls (criterion's samples; the warm-up
/// calls come first).
fn cpu_median(samples: &[(u64, Timed)], n: usize) -> Option<f64> {
    let used = &samples[samples.len().saturating_sub(n)..];
    let cpu: Vec<f64> = used.iter().filter(|(i, _)| *i > 0).map(|(i, t)| t.cpu_ns as f64 / *i as f64).collect();
    crate::stats::median(&cpu)
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

#[cfg(test)]
mod tests {
    use super::takes_sample;

    #[test]
    fn a_case_takes_exactly_its_samples_spread_over_the_rounds() {
        for (calls, rounds) in [(1001, 1001), (151, 1001), (11, 1001), (51, 151), (1, 7), (7, 7)] {
            let taken: Vec<usize> = (0..rounds).filter(|&r| takes_sample(r, calls, rounds)).collect();
            assert_eq!(taken.len(), calls, "{calls} of {rounds}");
            assert_eq!(taken[0], 0, "{calls} of {rounds}: first in round 0");
            // Evenly: consecutive samples are ⌊rounds/calls⌋ or ⌈rounds/calls⌉ rounds apart.
            let (lo, hi) = (rounds / calls, rounds.div_ceil(calls));
            assert!(taken.windows(2).all(|w| (lo..=hi).contains(&(w[1] - w[0]))), "{calls} of {rounds}: {taken:?}");
        }
    }
}
