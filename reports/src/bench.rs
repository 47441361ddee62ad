//! The benchmark part of the result model: the summary `cargo bench` writes to
//! [`BENCH_SUMMARY_PATH`], which `isoprobe report` renders and `isoprobe compare` compares.
//!
//! The JSON shape is a contract with the bench crate:
//!
//! ```json
//! {"schema_version": 1, "kind": "isoprobe-bench-summary", "quick": false,
//!  "fingerprint": { ... },
//!  "calibration": {"<name>": <median ns>, ...},
//!  "cases": [{"group": "clone3", "id": "pid", "median_ns": 41000.0, "ci_low_ns": 40100.0,
//!             "ci_high_ns": 42300.0, "cpu_ns": 39000.0, "samples": 100,
//!             "ratios": {"<calibration name>": 2.9}}]}
//! ```
//!
//! `ci_low_ns`/`ci_high_ns` bound the median's confidence interval; `cpu_ns` is the CPU time
//! per iteration where it was measured (`null` otherwise); `ratios[name]` is `median_ns /
//! calibration[name]`, the number that compares across machines.
//!
//! `harness_overhead` (absent in summaries from before it was kept, and when the run measured no
//! pair) is the harness's own cost per namespace set: one whole case over the bare spawn of the
//! same set, both medians of this run (see [`HarnessOverhead`]):
//!
//! ```json
//! "harness_overhead": [{"set": "none", "ratio": 35.1, "ci_low": 33.0, "ci_high": 37.4,
//!                       "samples": 100, "contended": false}]
//! ```

use std::collections::BTreeMap;

use crate::record::Fingerprint;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the benchmark-summary format this build writes and reads (the report's is
/// [`crate::SCHEMA_VERSION`]).
pub const BENCH_SCHEMA_VERSION: u32 = 1;

/// What the reports say under a table where samples were left out.
pub const SLOW_SAMPLES_NOTE: &str = "Slow samples: taken while the benchmark CPU ran slow (its null system call \
     more than 1.2× its best: the virtual CPU shared its core), left out of the estimate. ⚠ contended: too few \
     full-speed samples, all kept; that median reads slow.";

/// Where the bench crate writes its summary, relative to the workspace root.
pub const BENCH_SUMMARY_PATH: &str = "target/isoprobe/bench-summary.json";

/// The `kind` of a benchmark summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BenchKind {
    #[serde(rename = "isoprobe-bench-summary")]
    BenchSummary,
}

/// The results of one `cargo bench` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BenchSummary {
    pub schema_version: u32,
    pub kind: BenchKind,
    /// Whether the run used the quick settings (fewer samples, wider intervals).
    pub quick: bool,
    pub fingerprint: Fingerprint,
    /// Median time of each calibration case, in nanoseconds.
    pub calibration: BTreeMap<String, f64>,
    pub cases: Vec<BenchCase>,
    /// The harness's overhead per namespace set, from this run's cases ([`harness_overhead`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub harness_overhead: Vec<HarnessOverhead>,
}

/// The group and op of one whole harness case (`container/harness_case/<set>`).
pub const HARNESS_CASE: (&str, &str) = ("container", "harness_case");
/// The group and op of the bare spawn of the same payload (`container/native_spawn/<set>`).
pub const NATIVE_SPAWN: (&str, &str) = ("container", "native_spawn");
/// The group and op of the same spawn running the probe itself, which exits at once
/// (`container/probe_start/<set>`): the floor under every harness case of the set.
pub const PROBE_START: (&str, &str) = ("container", "probe_start");

/// What a whole harness case costs beyond its namespaces, for one namespace set: the median of
/// `container/harness_case/<set>` (one `Harness::run_case`: host objects, the probe's init, every
/// observation, the verdicts, the removal) over that of `container/native_spawn/<set>` (clone3
/// with the same namespaces, exec of a static payload that exits at once, the reap), both from
/// the same run. The ratio of two times of one machine and one run needs no calibration to be
/// compared with another run's: a slower harness shows as a higher ratio whatever the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HarnessOverhead {
    /// The namespace set (`none`, `pid+uts+mnt+ipc+net`, `all`).
    pub set: String,
    /// The harness case's median over the spawn's.
    pub ratio: f64,
    /// The ratio's interval, bounded conservatively by the two medians' 95% intervals:
    /// `[case.ci_low / spawn.ci_high, case.ci_high / spawn.ci_low]`. It holds the true ratio
    /// whenever both intervals hold their medians: at least 90% of the time (two 95% intervals,
    /// the union bound).
    pub ci_low: f64,
    pub ci_high: f64,
    /// The fewer samples of the two cases (under 2, the interval is a point and proves nothing).
    pub samples: u64,
    /// Either case was measured on a contended CPU (see [`BenchCase::contended`]).
    pub contended: bool,
}

/// The harness's overhead for every namespace set that has both a harness case and a native
/// spawn among `cases`, in the order of the harness cases. A spawn median or bound of zero gives
/// no ratio (it would be infinite); the pair is left out.
pub fn harness_overhead(cases: &[BenchCase]) -> Vec<HarnessOverhead> {
    let of = |(group, op): (&str, &str), c: &BenchCase| {
        (c.group == group).then(|| c.id.strip_prefix(op)?.strip_prefix('/')).flatten().map(str::to_owned)
    };
    cases
        .iter()
        .filter_map(|case| {
            let set = of(HARNESS_CASE, case)?;
            let spawn = cases.iter().find(|c| of(NATIVE_SPAWN, c).as_deref() == Some(set.as_str()))?;
            (spawn.median_ns > 0.0 && spawn.ci_low_ns > 0.0).then(|| HarnessOverhead {
                ratio: case.median_ns / spawn.median_ns,
                ci_low: case.ci_low_ns / spawn.ci_high_ns,
                ci_high: case.ci_high_ns / spawn.ci_low_ns,
                samples: case.samples.min(spawn.samples),
                contended: case.contended || spawn.contended,
                set,
            })
        })
        .collect()
}

/// One benchmark: a criterion group and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BenchCase {
    pub group: String,
    pub id: String,
    pub median_ns: f64,
    pub ci_low_ns: f64,
    pub ci_high_ns: f64,
    /// CPU time per iteration, where measured.
    pub cpu_ns: Option<f64>,
    pub samples: u64,
    /// Samples taken while the benchmark CPU ran slow (its null system call more than 1.2× its
    /// best time: a virtual CPU sharing its core), left out of the estimate unless `contended`.
    #[serde(default)]
    pub slow_samples: u64,
    /// Too few samples were taken at full CPU speed: the estimate uses all of them, so it reads
    /// slow.
    #[serde(default)]
    pub contended: bool,
    /// `median_ns` divided by each calibration's median.
    #[serde(default)]
    pub ratios: BTreeMap<String, f64>,
}

impl BenchSummary {
    /// An empty summary of this build's schema.
    pub fn new(quick: bool, fingerprint: Fingerprint) -> BenchSummary {
        BenchSummary {
            schema_version: BENCH_SCHEMA_VERSION,
            kind: BenchKind::BenchSummary,
            quick,
            fingerprint,
            calibration: BTreeMap::new(),
            cases: Vec::new(),
            harness_overhead: Vec::new(),
        }
    }

    /// The case `group`/`id`.
    pub fn case(&self, group: &str, id: &str) -> Option<&BenchCase> {
        self.cases.iter().find(|c| c.group == group && c.id == id)
    }

    /// The share of `container/harness_case/<set>`'s median that `container/probe_start/<set>`'s
    /// median takes: the probe's exec and start-up, which every case pays before the harness
    /// does anything. None unless both ran (summaries from before the probe's start was
    /// measured, or runs without the harness).
    pub fn probe_start_share(&self, set: &str) -> Option<f64> {
        let of = |(group, op): (&str, &str)| self.case(group, &format!("{op}/{set}")).map(|c| c.median_ns);
        let (start, case) = (of(PROBE_START)?, of(HARNESS_CASE)?);
        (case > 0.0 && start.is_finite() && start >= 0.0).then(|| start / case)
    }

    /// What makes the numbers unusable: non-finite or negative times, an interval that does not
    /// hold its median, a case named twice. Each problem names the case by index.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, ns) in &self.calibration {
            if !ns.is_finite() || *ns <= 0.0 {
                out.push(format!("calibration `{name}` is {ns} ns; it must be a positive number"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.cases.iter().enumerate() {
            let at = format!("cases[{i}] ({}/{})", c.group, c.id);
            if !seen.insert((&c.group, &c.id)) {
                out.push(format!("{at} appears twice"));
            }
            for (what, v) in [("median_ns", c.median_ns), ("ci_low_ns", c.ci_low_ns), ("ci_high_ns", c.ci_high_ns)] {
                if !v.is_finite() || v < 0.0 {
                    out.push(format!("{at}: {what} is {v}; it must be a non-negative number"));
                }
            }
            if let Some(cpu) = c.cpu_ns
                && (!cpu.is_finite() || cpu < 0.0)
            {
                out.push(format!("{at}: cpu_ns is {cpu}; it must be a non-negative number or null"));
            }
            if c.ci_low_ns > c.ci_high_ns {
                out.push(format!("{at}: ci_low_ns {} is above ci_high_ns {}", c.ci_low_ns, c.ci_high_ns));
            }
        }
        for (i, o) in self.harness_overhead.iter().enumerate() {
            let at = format!("harness_overhead[{i}] ({})", o.set);
            for (what, v) in [("ratio", o.ratio), ("ci_low", o.ci_low), ("ci_high", o.ci_high)] {
                if !v.is_finite() || v < 0.0 {
                    out.push(format!("{at}: {what} is {v}; it must be a non-negative number"));
                }
            }
            if o.ci_low > o.ci_high {
                out.push(format!("{at}: ci_low {} is above ci_high {}", o.ci_low, o.ci_high));
            }
        }
        out
    }
}

impl BenchCase {
    /// `group/id`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::strategy::{self, assert_round_trip};

    proptest! {
        #[test]
        fn a_bench_summary_round_trips(s in strategy::bench_summary(), c in strategy::bench_case()) {
            assert_round_trip(&s)?;
            assert_round_trip(&c)?;
        }
    }

    /// `slow_samples`, `contended` and `ratios` came after the first summaries: absent, they read
    /// as none.
    #[test]
    fn a_case_without_the_later_fields_reads() {
        let c: BenchCase = serde_json::from_str(
            r#"{"group":"clone3","id":"pid","median_ns":2.0,"ci_low_ns":1.0,"ci_high_ns":3.0,"cpu_ns":null,"samples":10}"#,
        )
        .unwrap();
        assert_eq!((c.slow_samples, c.contended, c.ratios.len(), c.name()), (0, false, 0, "clone3/pid".to_owned()));
    }

    /// A summary from before the overhead was kept reads with none, and one without any writes
    /// none.
    #[test]
    fn a_summary_without_the_overhead_reads_and_writes_without_it() {
        let s = BenchSummary::new(false, crate::testing::fingerprint());
        let mut v = serde_json::to_value(&s).unwrap();
        assert!(v.get("harness_overhead").is_none(), "{v}");
        v.as_object_mut().unwrap().remove("harness_overhead");
        assert_eq!(serde_json::from_value::<BenchSummary>(v).unwrap(), s);
    }

    #[test]
    fn the_overhead_pairs_each_harness_case_with_the_spawn_of_its_set() {
        use crate::testing::bench_case;
        let case = |op: &str, set: &str, median: f64, spread: f64| {
            bench_case("container", &format!("{op}/{set}"), median, spread)
        };
        let cases = vec![
            case("native_spawn", "none", 120_000.0, 0.1),
            case("native_spawn", "all", 880_000.0, 0.0),
            BenchCase { samples: 20, contended: true, ..case("harness_case", "all", 4_400_000.0, 0.0) },
            case("harness_case", "none", 4_200_000.0, 0.05),
            // No spawn of this set, and a spawn of another group: no pair.
            case("harness_case", "pid+mnt", 4_000_000.0, 0.0),
            bench_case("namespaces", "native_spawn/pid+mnt", 100_000.0, 0.0),
            // Not a harness case: `harness_cases/none` only shares a prefix.
            case("harness_cases", "none", 1.0, 0.0),
        ];
        let o = harness_overhead(&cases);
        assert_eq!(o.iter().map(|o| o.set.as_str()).collect::<Vec<_>>(), ["all", "none"], "{o:?}");
        assert_eq!((o[0].ratio, o[0].ci_low, o[0].ci_high), (5.0, 5.0, 5.0));
        assert_eq!((o[0].samples, o[0].contended), (20, true), "the fewer samples; contended if either is");
        let none = &o[1];
        assert_eq!(none.ratio, 35.0);
        // The case's low bound over the spawn's high one, and back.
        assert_eq!((none.ci_low, none.ci_high), (4_200_000.0 * 0.95 / 132_000.0, 4_200_000.0 * 1.05 / 108_000.0));
        assert!(!none.contended && none.samples == 100);
        let zero = vec![case("native_spawn", "none", 0.0, 0.0), case("harness_case", "none", 1.0, 0.0)];
        assert!(harness_overhead(&zero).is_empty(), "a spawn of zero time gives no ratio");
    }

    #[test]
    fn the_probe_start_share_needs_both_cases_of_the_set() {
        use crate::testing::bench_case;
        let mut s = BenchSummary::new(false, crate::testing::fingerprint());
        s.cases = vec![
            bench_case("container", "harness_case/none", 2_000_000.0, 0.0),
            bench_case("container", "probe_start/none", 500_000.0, 0.0),
            bench_case("container", "harness_case/all", 5_000_000.0, 0.0),
            // Another group's probe_start is not the container's.
            bench_case("other", "probe_start/all", 1.0, 0.0),
            bench_case("container", "probe_start/pid", 1.0, 0.0),
        ];
        assert_eq!(s.probe_start_share("none"), Some(0.25));
        assert_eq!(s.probe_start_share("all"), None, "no probe start of the set");
        assert_eq!(s.probe_start_share("pid"), None, "no harness case of the set");
        s.cases[0].median_ns = 0.0;
        assert_eq!(s.probe_start_share("none"), None, "a case of zero time gives no share");
    }

    #[test]
    fn a_bad_overhead_is_a_problem() {
        let mut s = BenchSummary::new(false, crate::testing::fingerprint());
        s.harness_overhead.push(HarnessOverhead {
            set: "none".into(),
            ratio: -1.0,
            ci_low: 3.0,
            ci_high: 2.0,
            samples: 10,
            contended: false,
        });
        assert_eq!(
            s.problems(),
            [
                "harness_overhead[0] (none): ratio is -1; it must be a non-negative number",
                "harness_overhead[0] (none): ci_low 3 is above ci_high 2"
            ]
        );
    }
}
