//! Reads the counts out of a libtest (or libtest-mimic) run's output: its closing line
//! `test result: ok. 700 passed; 0 failed; 16 ignored; 0 measured; 0 filtered out; finished in 5.2s`,
//! the names of the failed tests, and how many tests each requirement skipped (isoprobe's suites
//! say `ignored (needs <requirement>: <reason>)`).
//!
//! This module must never decide whether a run passed: the exit status does; the counts describe it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    pub filtered_out: u64,
    /// The run's own timing, seconds.
    pub finished_in_secs: f64,
    /// Names of the tests that failed.
    pub failures: Vec<String>,
    /// Ignored tests per requirement they lacked (`other` when the reason names none).
    #[serde(default)]
    pub skipped_by: BTreeMap<String, u64>,
}

/// The counts in `output`, if it holds a libtest closing line.
pub fn counts(output: &str) -> Option<Counts> {
    let line = output.lines().rev().find_map(|l| l.trim().strip_prefix("test result: "))?;
    let mut c = Counts::default();
    // "ok. 700 passed; 0 failed; ...": drop the verdict word, then `<n> <what>` items.
    let (_, items) = line.split_once(". ")?;
    for item in items.split(';').map(str::trim) {
        if let Some(t) = item.strip_prefix("finished in ") {
            c.finished_in_secs = t.trim_end_matches('s').parse().ok()?;
            continue;
        }
        let (n, what) = item.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        match what {
            "passed" => c.passed = n,
            "failed" => c.failed = n,
            "ignored" => c.ignored = n,
            "filtered out" => c.filtered_out = n,
            _ => {}
        }
    }
    c.failures = output
        .lines()
        // libtest-mimic pads names to a column: `test clone3/host/pid     ... FAILED`.
        .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .map(|name| name.trim_end().to_owned())
        .collect();
    for l in output.lines().filter(|l| l.starts_with("test ")) {
        if let Some((_, why)) = l.split_once(" ... ignored") {
            let requirement = why.strip_prefix(" (needs ").and_then(|r| r.split_once(':')).map(|(r, _)| r);
            *c.skipped_by.entry(requirement.unwrap_or("other").to_owned()).or_default() += 1;
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_line_and_failures_are_read() {
        let out = "running 3 tests\ntest a ... ok\ntest clone3/host/pid    ... FAILED\ntest c ... ignored (needs linux-6.2: too old)\ntest d ... ignored\n\
                   \nfailures:\n...\ntest result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 2 filtered out; \
                   finished in 5.25s\n";
        let c = counts(out).unwrap();
        assert_eq!((c.passed, c.failed, c.ignored, c.filtered_out), (1, 1, 1, 2));
        assert_eq!(c.finished_in_secs, 5.25);
        assert_eq!(c.failures, vec!["clone3/host/pid".to_owned()]);
        assert_eq!(c.skipped_by, BTreeMap::from([("linux-6.2".to_owned(), 1), ("other".to_owned(), 1)]));
        assert_eq!(counts("no tests here\n"), None);
    }
}
