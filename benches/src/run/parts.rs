//! Cases measured in parts: one call of a routine yields the wall time of each of its parts (the
//! phases of one whole harness case), and each part is a case of its own, `<group>/<part>/<param>`,
//! whose samples are that part's times in the same calls.
//!
//! Why not one case per part, each calling the routine: the parts would then come from different
//! calls, and the routine would run once per part and sample (eleven phases of a whole case, with
//! a netns cleanup wait each: minutes). Here every call is one sample of every part.
//!
//! Sampling, in a full or `ISOPROBE_BENCH_QUICK` run: criterion's warm-up call and then its sample
//! count, one call after the other (no rounds: the routine is its own neighbour), each after the
//! CPU's speed reading ([`crate::speed`]) and, for a [`Profile::Netns`] routine in a full run, an
//! idle netns cleanup. The fast samples are selected once per call, so every part keeps the same
//! calls; there is no top-up (a case short of fast samples is `contended`, as the summary says).
//! In test mode and under criterion's own `--quick` sampling criterion samples each part itself,
//! calling the routine once per iteration it asks for.
//!
//! A part's CPU time is not measured (only the routine's whole call could be): the summary has
//! none for these cases. A part that took no time in a kept call (a phase the routine passed
//! through without work) is skipped with that reason: criterion cannot estimate from a zero.

use super::*;

/// One call of a routine measured in parts: each part's name and wall time, in order.
pub type PartTimes = Vec<(String, Duration)>;

/// The time of `part` in `times`, an error when the call did not measure it.
fn part_time(times: &PartTimes, part: &str) -> io::Result<Duration> {
    times
        .iter()
        .find(|(name, _)| name == part)
        .map(|(_, d)| *d)
        .ok_or_else(|| io::Error::other(format!("the call measured no part `{part}`")))
}

impl Group<'_> {
    /// Benchmarks the parts of `f`: each call of `f` is one sample of every part it measures,
    /// each part a case `<part>/<param>` of this group (see the module docs). The parts are those
    /// of a first, trial call; a failure there becomes a skip (privileges, features) or a
    /// failure of `*/<param>`.
    pub fn bench_parts(&mut self, param: &str, profile: Profile, mut f: impl FnMut() -> io::Result<PartTimes>) {
        if self.idle_first {
            self.wait_netns_idle();
        }
        let parts: Vec<String> = match f() {
            Ok(times) if times.is_empty() => return self.fail("*", param, "the routine measured no part"),
            Ok(times) => times.into_iter().map(|(name, _)| name).collect(),
            Err(e) => {
                let (reason, error) = classify(&e);
                return if error { self.fail("*", param, reason) } else { self.skip("*", param, reason) };
            }
        };
        let f = RefCell::new(f);
        // One iteration of `part`: a call of the routine, that part's time.
        let one = |part: &str| -> io::Result<Timed> {
            let d = part_time(&(f.borrow_mut())()?, part)?;
            Ok(Timed { wall_ns: d.as_nanos() as u64, cpu_ns: 0 })
        };
        let iterations =
            |part: String| move |iters: u64| (0..iters).try_fold(Timed::default(), |total, _| Ok(total + one(&part)?));
        let (Profile::PerOp { full, quick } | Profile::Netns { full, quick }) = profile else {
            return self.fail("*", param, "parts are sampled one call per sample: PerOp or Netns, not Batched");
        };
        if !self.interleaving(profile) {
            for part in parts {
                self.run_now(&part, param, profile, iterations(part.clone()));
            }
            return;
        }

        // Criterion's warm-up call and its samples.
        let calls = self.settings.pick(full, quick).max(10) + 1;
        let netns = self.netns_wait(profile);
        eprintln!("isoprobe-bench {}: sampling */{param} ({calls} calls, {} parts each)", self.name, parts.len());
        if self.speed.filter() && !self.speed.wait_fast(rounds::FAST_WAIT) {
            eprintln!(
                "isoprobe-bench {}: the CPU still runs slow after {:?}; sampling anyway",
                self.name,
                rounds::FAST_WAIT
            );
        }
        let mut taken: Vec<(f64, PartTimes)> = Vec::with_capacity(calls);
        for _ in 0..calls {
            if netns && let Err(e) = self.netns.wait_idle(Duration::from_secs(120)) {
                eprintln!("isoprobe-bench: {e}; measuring anyway");
            }
            let speed_ns = self.speed.read();
            match (f.borrow_mut())() {
                Ok(times) => taken.push((speed_ns, times)),
                Err(e) => return self.fail("*", param, format!("failed while sampling: {e}")),
            }
        }
        let readings: Vec<f64> = taken[1..].iter().map(|(speed_ns, _)| *speed_ns).collect();
        let sel = speed::select(&readings, self.speed.best(), self.speed.filter());
        for part in parts {
            let used = std::iter::once(0).chain(sel.kept.iter().map(|i| i + 1));
            let times: io::Result<VecDeque<Timed>> = used
                .map(|i| part_time(&taken[i].1, &part).map(|d| Timed { wall_ns: d.as_nanos() as u64, cpu_ns: 0 }))
                .collect();
            match times {
                Err(e) => self.fail(&part, param, format!("failed while sampling: {e}")),
                Ok(times) if times.iter().skip(1).any(|t| t.wall_ns == 0) => {
                    let zero = times.iter().skip(1).filter(|t| t.wall_ns == 0).count();
                    self.skip(
                        &part,
                        param,
                        format!(
                            "took no time in {zero} of {} samples (criterion cannot estimate from a zero)",
                            sel.kept.len()
                        ),
                    )
                }
                Ok(times) => self.replay_samples(&part, param, false, times, &sel, iterations(part.clone())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_found_by_name_and_a_missing_one_is_an_error() {
        let times: PartTimes =
            vec![("plan".into(), Duration::from_micros(20)), ("spawn".into(), Duration::from_micros(900))];
        assert_eq!(part_time(&times, "spawn").unwrap(), Duration::from_micros(900));
        assert_eq!(part_time(&times, "judge").unwrap_err().to_string(), "the call measured no part `judge`");
    }
}
