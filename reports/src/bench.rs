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
        }
    }

    /// The case `group`/`id`.
    pub fn case(&self, group: &str, id: &str) -> Option<&BenchCase> {
        self.cases.iter().find(|c| c.group == group && c.id == id)
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
}
