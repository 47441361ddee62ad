//! Plain-text tables for the terminal: the summary `isoprobe run` prints at the end.

use std::fmt::Write;

use super::units;
use crate::model::Report;

/// One row per suite, launcher and rootfs mode, and a total.
pub fn summary_table(r: &Report) -> String {
    let groups = r.groups();
    let header = ["suite", "launcher", "rootfs", "cases", "pass", "fail", "skip", "error", "time"];
    let mut rows: Vec<[String; 9]> = groups
        .iter()
        .map(|g| {
            let k = g.counts;
            [
                g.suite.clone(),
                g.launcher.clone(),
                g.rootfs.clone(),
                k.cases.to_string(),
                k.pass.to_string(),
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
        t.fail.to_string(),
        t.skip.to_string(),
        t.error.to_string(),
        units::duration(std::time::Duration::from_secs_f64(r.duration_ms / 1e3)),
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
