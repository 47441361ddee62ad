//! The machine-readable summary of a `cargo bench` run: `target/isoprobe/bench-summary.json`.
//!
//! Where the numbers come from: `median_ns`, `ci_low_ns` and `ci_high_ns` are criterion's own
//! estimate of the median and its 95% bootstrap confidence interval, read from
//! `target/criterion/<group>/<op>/<param>/new/estimates.json`; `samples` is the number of samples
//! in criterion's `sample.json` next to it. `cpu_ns` is this crate's own: the median over the same
//! samples of the CPU time per iteration that the primitives measured next to the wall time (see
//! [`crate::run`]). `slow_samples` counts the samples taken while the CPU ran slow, which
//! criterion was not given unless the case is `contended` (see [`crate::speed`]). `ratios`
//! divide a case's median by each calibration median. `harness_overhead` divides each
//! `container/harness_case/<set>` median by the `container/native_spawn/<set>` median of the same
//! run (see [`isoprobe_reports::bench::harness_overhead`]); the merge computes it, so it is there
//! once the container binary's part is.
//!
//! `cargo bench` runs the bench binaries one after the other. Each writes its part to
//! `target/isoprobe/bench-parts/<topic>.json`, tagged with the run (cargo's pid and start time),
//! then merges every part of the same run into the summary, so the last binary leaves the
//! complete file whatever the order. The types are `isoprobe_reports::bench`'s, which `isoprobe
//! report` and `isoprobe compare` read.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use isoprobe_reports::bench::{BenchCase, BenchSummary};
use isoprobe_reports::record::Fingerprint;

/// One bench binary's share of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub run_id: String,
    pub topic: String,
    pub quick: bool,
    pub calibration: BTreeMap<String, f64>,
    pub cases: Vec<BenchCase>,
}

/// Identifies one `cargo bench` invocation: the parent's pid and start time (all bench binaries
/// of a run are children of the same cargo process).
pub fn run_id() -> String {
    let ppid = std::os::unix::process::parent_id();
    let start = fs::read_to_string(format!("/proc/{ppid}/stat"))
        .ok()
        .and_then(|s| isoprobe_probes::sys::stat_start_time(&s))
        .unwrap_or(0);
    format!("{ppid}-{start}")
}

/// The cargo target directory, found the way criterion finds it (CARGO_TARGET_DIR, else
/// `cargo metadata`), falling back to the ancestor of this executable's `deps` directory.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    let from_cargo = std::env::var_os("CARGO").and_then(|cargo| {
        let out =
            std::process::Command::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]).output().ok()?;
        serde_json::from_slice::<Metadata>(&out.stdout).ok().map(|m| m.target_directory)
    });
    from_cargo.unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        // <target>/<triple>/release/deps/<bench> or <target>/release/deps/<bench>
        let profile = exe.ancestors().find(|a| a.file_name().is_some_and(|n| n == "deps")).and_then(Path::parent);
        let up = profile.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
        if up.file_name().is_some_and(|n| n.to_string_lossy().contains("-linux-")) {
            up.parent().map(Path::to_path_buf).unwrap_or(up)
        } else {
            up
        }
    })
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}
#[derive(Deserialize)]
struct Estimate {
    confidence_interval: Interval,
    point_estimate: f64,
}
#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}
#[derive(Deserialize)]
struct Sample {
    iters: Vec<f64>,
}

/// Criterion's median, its interval, and the sample count of one benchmark.
pub fn read_criterion(dir: &Path) -> io::Result<(f64, f64, f64, u64)> {
    let bad = |e: serde_json::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let est: Estimates = serde_json::from_slice(&fs::read(dir.join("new/estimates.json"))?).map_err(bad)?;
    let sample: Sample = serde_json::from_slice(&fs::read(dir.join("new/sample.json"))?).map_err(bad)?;
    let m = est.median;
    Ok((
        m.point_estimate,
        m.confidence_interval.lower_bound,
        m.confidence_interval.upper_bound,
        sample.iters.len() as u64,
    ))
}

/// Criterion's directory for a benchmark (`param` empty for a plain function name), named as
/// criterion names it (report.rs, `make_filename_safe`: these characters become `_`).
pub fn criterion_dir(target: &Path, group: &str, op: &str, param: &str) -> PathBuf {
    let safe = |s: &str| s.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let mut d = target.join("criterion").join(safe(group)).join(safe(op));
    if !param.is_empty() {
        d.push(safe(param));
    }
    d
}

/// Adds every calibration ratio to every case.
pub fn fill_ratios(cases: &mut [BenchCase], calibration: &BTreeMap<String, f64>) {
    for c in cases {
        c.ratios =
            calibration.iter().filter(|(_, m)| **m > 0.0).map(|(name, m)| (name.clone(), c.median_ns / m)).collect();
    }
}

/// Merges the parts of `run_id` found in `parts_dir` (other runs' parts are stale and ignored).
pub fn merge(parts: &[Part], run_id: &str, quick: bool, fingerprint: Fingerprint) -> BenchSummary {
    let mut calibration = BTreeMap::new();
    let mut cases = Vec::new();
    let mut mine: Vec<&Part> = parts.iter().filter(|p| p.run_id == run_id).collect();
    mine.sort_by(|a, b| a.topic.cmp(&b.topic));
    for p in mine {
        calibration.extend(p.calibration.clone());
        cases.extend(p.cases.iter().cloned());
    }
    fill_ratios(&mut cases, &calibration);
    let harness_overhead = isoprobe_reports::bench::harness_overhead(&cases);
    BenchSummary { calibration, cases, harness_overhead, ..BenchSummary::new(quick, fingerprint) }
}

/// Writes `part` and rewrites the summary from every part of its run. Returns the summary path.
pub fn write(target: &Path, part: &Part, fingerprint: Fingerprint) -> io::Result<PathBuf> {
    let dir = target.join("isoprobe");
    let parts_dir = dir.join("bench-parts");
    fs::create_dir_all(&parts_dir)?;
    fs::write(parts_dir.join(format!("{}.json", part.topic)), to_json(part)?)?;
    let mut parts = Vec::new();
    for e in fs::read_dir(&parts_dir)?.flatten() {
        if let Ok(p) = serde_json::from_slice::<Part>(&fs::read(e.path())?) {
            parts.push(p);
        }
    }
    let summary = merge(&parts, &part.run_id, part.quick, fingerprint);
    let path = dir.join("bench-summary.json");
    fs::write(&path, to_json(&summary)?)?;
    Ok(path)
}

fn to_json<T: Serialize>(v: &T) -> io::Result<String> {
    serde_json::to_string_pretty(v).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(group: &str, id: &str, median: f64) -> BenchCase {
        BenchCase {
            group: group.into(),
            id: id.into(),
            median_ns: median,
            ci_low_ns: median,
            ci_high_ns: median,
            cpu_ns: None,
            samples: 10,
            slow_samples: 0,
            contended: false,
            ratios: BTreeMap::new(),
        }
    }

    fn part(run: &str, topic: &str, cal: &[(&str, f64)], cases: Vec<BenchCase>) -> Part {
        Part {
            run_id: run.into(),
            topic: topic.into(),
            quick: false,
            calibration: cal.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            cases,
        }
    }

    #[test]
    fn merge_keeps_only_this_run_and_computes_ratios() {
        let fp = crate::fingerprint();
        let parts = vec![
            part("run-b", "namespaces", &[], vec![case("namespaces", "unshare/net", 4000.0)]),
            part("run-b", "calibration", &[("getppid", 100.0)], vec![case("calibration", "getppid", 100.0)]),
            part("run-a", "namespaces", &[], vec![case("namespaces", "stale", 1.0)]),
        ];
        let s = merge(&parts, "run-b", false, fp);
        assert_eq!(s.schema_version, 1);
        assert_eq!(serde_json::to_value(&s).unwrap()["kind"], "isoprobe-bench-summary");
        assert_eq!(s.cases.len(), 2);
        let net = s.cases.iter().find(|c| c.id == "unshare/net").unwrap();
        assert_eq!(net.ratios["getppid"], 40.0);
        assert!(s.cases.iter().all(|c| c.id != "stale"));
    }

    #[test]
    fn merge_keeps_the_harness_overhead_of_each_set_of_the_run() {
        let container = vec![
            case("container", "native_spawn/none", 100_000.0),
            case("container", "native_spawn/all", 800_000.0),
            case("container", "harness_case/none", 4_000_000.0),
            case("container", "harness_case/all", 4_800_000.0),
        ];
        let stale = vec![case("container", "native_spawn/none", 1.0), case("container", "harness_case/none", 1e9)];
        let parts = vec![part("run-b", "container", &[], container), part("run-a", "container", &[], stale)];
        let s = merge(&parts, "run-b", false, crate::fingerprint());
        let got: Vec<(&str, f64)> = s.harness_overhead.iter().map(|o| (o.set.as_str(), o.ratio)).collect();
        assert_eq!(got, [("none", 40.0), ("all", 6.0)]);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["harness_overhead"][0]["set"], "none");
        assert_eq!(serde_json::from_value::<BenchSummary>(v).unwrap(), s);
    }

    #[test]
    fn summary_json_has_the_agreed_shape() {
        let s = merge(
            &[part("r", "calibration", &[("getppid", 50.0)], vec![case("calibration", "getppid", 50.0)])],
            "r",
            true,
            crate::fingerprint(),
        );
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["calibration", "cases", "fingerprint", "kind", "quick", "schema_version"]);
        let c = v["cases"][0].as_object().unwrap();
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ci_high_ns",
                "ci_low_ns",
                "contended",
                "cpu_ns",
                "group",
                "id",
                "median_ns",
                "ratios",
                "samples",
                "slow_samples"
            ]
        );
        assert!(c["cpu_ns"].is_null());
        let back: BenchSummary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn criterion_dirs_follow_criterion_naming() {
        let d = criterion_dir(Path::new("/t"), "namespaces", "unshare", "pid+mnt");
        assert_eq!(d, Path::new("/t/criterion/namespaces/unshare/pid+mnt"));
        let d = criterion_dir(Path::new("/t"), "reference", "harness", "unshare/net");
        assert_eq!(d, Path::new("/t/criterion/reference/harness/unshare_net"));
        assert_eq!(
            criterion_dir(Path::new("/t"), "calibration", "getppid", ""),
            Path::new("/t/criterion/calibration/getppid")
        );
    }
}
