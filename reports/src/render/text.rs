//! Plain-text tables for the terminal: the summary `isoprobe run` prints at the end, and the
//! launchers side by side after a `--launcher` run.

use std::fmt::Write;

use super::units;
use crate::model::Report;

/// One row per suite, launcher and rootfs mode, and a total.
pub fn summary_table(r: &Report) -> String {
    let groups = r.groups();
    let header = ["suite", "launcher", "rootfs", "cases", "pass", "explained", "fail", "skip", "error", "time"];
    let mut rows: Vec<[String; 10]> = groups
        .iter()
        .map(|g| {
            let k = g.counts;
            [
                g.suite.clone(),
                g.launcher.clone(),
                g.rootfs.clone(),
                k.cases.to_string(),
                k.pass.to_string(),
                k.explained.to_string(),
                k.fail.to_string(),
                k.skip.to_string(),
                k.error.to_string(),
                units::duration(g.duration),
            ]
        })
        .collect();
    let t = r.counts();
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        t.cases.to_string(),
        t.pass.to_string(),
        t.explained.to_string(),
        t.fail.to_string(),
        t.skip.to_string(),
        t.error.to_string(),
        units::duration_ms(r.duration_ms),
    ]);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            // Names left-aligned, numbers right-aligned.
            if i < 3 {
                let _ = write!(out, "{c:<w$}  ");
            } else {
                let _ = write!(out, "{c:>w$}  ");
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

/// The known tool defects the run's starts hit (empty when none): one line each.
pub fn defect_lines(r: &Report) -> String {
    r.defect_hits().iter().map(|d| format!("known tool defect {}\n", d.line())).collect()
}

/// Per launcher of a `--launcher` run: its tool and version (or why it is unavailable) and its
/// cases by status; then the start latencies, when measured.
pub fn launcher_table(r: &Report) -> String {
    use crate::model::CaseStatus;
    let mut out = String::new();
    if r.launchers.is_empty() {
        return out;
    }
    let mut by: std::collections::BTreeMap<&str, [usize; 5]> = std::collections::BTreeMap::new();
    for (suite, case) in r.cases() {
        if r.assessment(suite, case).is_none() {
            continue;
        }
        let i = match r.status(suite, case) {
            CaseStatus::Pass => 0,
            CaseStatus::Explained => 1,
            CaseStatus::Skip => 2,
            CaseStatus::Fail => 3,
            CaseStatus::Error => 4,
        };
        by.entry(case.spec.launcher.name()).or_default()[i] += 1;
    }
    let w = r.launchers.iter().map(|h| h.name.len()).max().unwrap_or(0).max(8);
    let _ = writeln!(
        out,
        "{:<w$}  {:>4}  {:>9}  {:>4}  {:>4}  {:>5}  tool",
        "launcher", "pass", "explained", "skip", "fail", "error"
    );
    for h in &r.launchers {
        let [pass, explained, skip, fail, error] = by.get(h.name.as_str()).copied().unwrap_or_default();
        let tool = match (&h.tool, &h.unavailable) {
            (Some(t), _) => t.version.clone(),
            (None, Some(u)) => format!("unavailable: {}", u.reason),
            (None, None) => "native".to_owned(),
        };
        let _ = writeln!(out, "{:<w$}  {pass:>4}  {explained:>9}  {skip:>4}  {fail:>4}  {error:>5}  {tool}", h.name);
    }
    if let Some(l) = &r.start_latency {
        let base = l.launchers.iter().find(|x| x.launcher == "clone3").and_then(|x| x.result.median_ns());
        let _ = writeln!(
            out,
            "\nstart latency (measured in this run, not a test: {} starts each, interleaved; {}):",
            l.starts, l.namespaces
        );
        for row in &l.launchers {
            let text = match &row.result {
                crate::record::LatencyResult::Measured { median_ns, min_ns, max_ns, .. } => {
                    let ratio = base.map(|b| format!("  × {} clone3", units::sig3(median_ns / b))).unwrap_or_default();
                    format!(
                        "median {} (min {}, max {}){ratio}",
                        units::ns(*median_ns),
                        units::ns(*min_ns),
                        units::ns(*max_ns)
                    )
                }
                crate::record::LatencyResult::Skipped { reason } => format!("skipped: {reason}"),
                crate::record::LatencyResult::Error { cause } => format!("error: {cause}"),
            };
            let _ = writeln!(out, "  {:<w$}  {text}", row.launcher);
        }
    }
    out
}
