//! Sampling in rounds: the queued cases of a group, one sample of each per round with its
//! untimed calls and speed reading before it, then replayed to criterion in the order taken (see
//! the module docs of [`super`]).

use super::*;

/// How long a case waits, untimed, for the CPU to run at full speed before its first sample
/// (see [`crate::speed`]).
pub(super) const FAST_WAIT: Duration = Duration::from_secs(3);

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

/// One iteration of a case, or `iters` of them: the timed region's wall and CPU time.
type Routine<'a> = Box<dyn FnMut(u64) -> io::Result<Timed> + 'a>;

/// A case of an interleaving group, queued until [`Group::finish`] samples it.
pub(super) struct Queued<'a> {
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

impl Group<'_> {
    /// The case, ready to be sampled here (see [`Group::interleaving`]), or `f` back when
    /// criterion samples it itself.
    pub(super) fn queued<'f, F>(&self, op: &str, param: &str, profile: Profile, f: F) -> Result<Queued<'f>, F>
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
    pub(super) fn sample(&mut self, mut queue: Vec<Queued<'_>>) {
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
        let Queued { op, param, cpu, f, .. } = q;
        let replayed = std::iter::once(0)
            .chain(sel.kept.iter().map(|i| i + 1))
            .map(|i| Timed { wall_ns: taken[i].wall_ns, cpu_ns: taken[i].cpu_ns })
            .collect();
        self.replay_samples(&op, &param, cpu, replayed, sel, f);
    }

    /// Hands criterion `replayed` (the warm-up sample, then the samples `sel` kept, in the order
    /// taken) as the samples of `op/param`, and records what the speed filter did; should
    /// criterion ask for more, `f` measures it now.
    pub(super) fn replay_samples(
        &mut self,
        op: &str,
        param: &str,
        cpu: bool,
        mut replayed: VecDeque<Timed>,
        sel: &speed::Selection,
        mut f: impl FnMut(u64) -> io::Result<Timed>,
    ) {
        let (op, param) = (op.to_owned(), param.to_owned());
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
pub(super) fn cpu_median(samples: &[(u64, Timed)], n: usize) -> Option<f64> {
    let used = &samples[samples.len().saturating_sub(n)..];
    let cpu: Vec<f64> = used.iter().filter(|(i, _)| *i > 0).map(|(i, t)| t.cpu_ns as f64 / *i as f64).collect();
    crate::stats::median(&cpu)
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
