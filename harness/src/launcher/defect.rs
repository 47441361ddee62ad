//! Known defects of the tools isoprobe starts: a bug of the tool itself, diagnosed down to its
//! cause, that makes a start fail by chance before the probe runs.
//!
//! A start that fails so is started again, up to [`DEFECT_ATTEMPTS`] starts in all, and every
//! failed start is kept in the case's outcome ([`DefectHit`], with the tool's own error and log),
//! so a report shows how often the tool failed and why. Retrying cannot hide an isolation
//! property: the failed start ran no probe and observed nothing, the next start is a new
//! container with new host objects, and its verdicts are judged as any other's. A start that
//! fails in any other way, or hits the defect at every attempt, is the case's error as before.
//!
//! What this module must never do: match loosely. A defect is recognised by its own signature
//! and only in the configuration its cause needs (see each [`KnownDefect`]); anything else a tool
//! does wrong stays a failure.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Starts of one case's container, the first one included, while each fails on a known defect.
/// Three: a defect seen in one start in 50 (the worst rate measured of the one listed) then fails
/// a case once in 125 000.
pub const DEFECT_ATTEMPTS: u32 = 3;

/// One diagnosed defect of a tool.
#[derive(Debug, PartialEq, Eq)]
pub struct KnownDefect {
    /// Short and stable: the upstream issue (`lxc/lxc#4670`).
    pub id: &'static str,
    /// What goes wrong and when, in one sentence.
    pub summary: &'static str,
    /// Where it is fixed, if it is.
    pub fixed: &'static str,
}

/// A start that failed on a known defect and was started again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DefectHit {
    /// [`KnownDefect::id`].
    pub defect: String,
    /// Which start of the case it was (1 = the first).
    pub attempt: u32,
    /// The failed start's error, the tool's own output and log included.
    pub error: String,
}

impl DefectHit {
    pub fn new(defect: &KnownDefect, attempt: u32, error: String) -> DefectHit {
        DefectHit { defect: defect.id.to_owned(), attempt, error }
    }
}

/// A known defect by its id (a [`DefectTally`] says what it is).
pub fn known(id: &str) -> Option<&'static KnownDefect> {
    ALL.iter().copied().find(|d| d.id == id)
}

/// The starts of a run that failed on one known defect of a tool and were made again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefectTally {
    pub id: String,
    /// What this isoprobe knows of it (an older report may name a defect a newer isoprobe no
    /// longer lists).
    pub summary: String,
    pub fixed: String,
    /// Failed starts, and the cases they were of (a case may hit it more than once).
    pub starts: usize,
    pub cases: Vec<String>,
}

impl DefectTally {
    fn new(id: &str) -> DefectTally {
        let known = known(id);
        DefectTally {
            id: id.to_owned(),
            summary: known.map_or("not a defect this isoprobe knows", |d| d.summary).to_owned(),
            fixed: known.map_or("unknown", |d| d.fixed).to_owned(),
            starts: 0,
            cases: Vec::new(),
        }
    }

    /// One line: the defect, how often, where, what it is.
    pub fn line(&self) -> String {
        format!(
            "{}: {} failed start{} made again ({}): {}; fixed by {}",
            self.id,
            self.starts,
            if self.starts == 1 { "" } else { "s" },
            self.cases.join(", "),
            self.summary,
            self.fixed
        )
    }
}

/// The failed starts `hits` names, as (case, defect id) in the order they happened (a case's
/// together), tallied by defect: what a report and a suite's end show.
pub fn tally<'a>(hits: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<DefectTally> {
    let mut by_id: std::collections::BTreeMap<&str, DefectTally> = std::collections::BTreeMap::new();
    for (case, id) in hits {
        let t = by_id.entry(id).or_insert_with(|| DefectTally::new(id));
        t.starts += 1;
        if t.cases.last().map(String::as_str) != Some(case) {
            t.cases.push(case.to_owned());
        }
    }
    by_id.into_values().collect()
}

const ALL: &[&KnownDefect] = &[&crate::launcher::external::lxc::CAPS_TEXT_FREED];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defect_is_known_by_its_id() {
        for d in ALL {
            assert_eq!(known(d.id), Some(*d));
            assert!(!d.summary.is_empty() && !d.fixed.is_empty(), "{d:?}");
        }
        assert_eq!(known("lxc/lxc#0"), None);
    }
}
