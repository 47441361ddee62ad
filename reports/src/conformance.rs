//! The launcher conformance part of a report (`isoprobe run --launcher all`): who each launcher
//! is on the machine (tool, package, version, or why it cannot run; what it can express), how
//! each case run through a launcher was assessed against the tool's documented defaults and
//! expected differences, and the start latency measured in the run.
//!
//! The records a report stores for it are [`crate::record::launcher`]'s; this module holds the
//! views the renderers draw from them ([`Report::conformance_table`], [`Report::launcher_limits`]),
//! derived from the cases so that a report cannot contradict itself.
//!
//! What this module must never do: turn an explained difference into a pass. A case whose
//! failures are all explained has its own status ([`CaseStatus::Explained`]) and is counted
//! apart.

use std::collections::BTreeMap;

use crate::model::{CaseStatus, Report, Suite};
use crate::record::{CaseOutcome, LauncherCapabilities, LauncherHeader, NsSet, RootfsMode};

/// A cell of the conformance table: one case of one launcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub case: String,
    pub status: CaseStatus,
    /// For an explained case, `check: observed (source)` per explained difference; for a skip,
    /// the reason; for a failure, the unexplained failures and stale rows.
    pub notes: Vec<String>,
}

/// A row of the conformance table: the namespaces asked for, in one rootfs mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub namespaces: NsSet,
    pub rootfs: RootfsMode,
    /// One per launcher of [`ConformanceTable::launchers`]; `None` where the launcher has no such
    /// case (it cannot use the rootfs mode, or the set is not in its matrix).
    pub cells: Vec<Option<Cell>>,
}

/// Launchers side by side: rows are namespace sets (and rootfs modes), columns launchers.
#[derive(Debug, Clone, PartialEq)]
pub struct ConformanceTable {
    pub launchers: Vec<String>,
    pub rows: Vec<Row>,
}

/// What a launcher did with cgroup limits.
#[derive(Debug, Clone, PartialEq)]
pub enum LauncherLimits {
    /// Its capabilities say it cannot apply cgroup limits.
    CannotExpress,
    /// The limit cases it ran (maybe none, when the selection left them out).
    Cases(Vec<Cell>),
}

/// The limit cases side by side: rows are a limit case without its launcher (`host/all pids
/// [pids.max=16]`), columns the launchers that express cgroup limits.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitTable {
    pub launchers: Vec<String>,
    pub rows: Vec<(String, Vec<Option<Cell>>)>,
}

impl Report {
    /// The limit cases of the launchers that express cgroup limits, side by side (see
    /// [`Report::launcher_limits`] for the launchers that cannot).
    pub fn limit_table(&self) -> LimitTable {
        let launchers: Vec<String> =
            self.launchers.iter().filter(|h| h.capabilities.cgroup_limits).map(|h| h.name.clone()).collect();
        let mut rows: Vec<(String, Vec<Option<Cell>>)> = Vec::new();
        for (suite, case) in self.cases() {
            let Some(col) = launchers.iter().position(|l| l == launcher(case)) else { continue };
            if case.spec.limits.is_none() {
                continue;
            }
            let key = case.name.split_once('/').map_or(case.name.as_str(), |(_, rest)| rest).to_owned();
            let i = match rows.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    rows.push((key, vec![None; launchers.len()]));
                    rows.len() - 1
                }
            };
            rows[i].1[col] = Some(self.cell(suite, case));
        }
        LimitTable { launchers, rows }
    }

    /// The cell of an assessed case.
    fn cell(&self, suite: &Suite, case: &CaseOutcome) -> Cell {
        let status = self.status(suite, case);
        let a = self.assessment(suite, case);
        let notes = match status {
            CaseStatus::Skip | CaseStatus::Fail if case.skipped.is_some() => {
                case.skipped.iter().map(|s| s.reason.clone()).collect()
            }
            CaseStatus::Explained => a
                .map(|a| a.explained.iter().map(|e| format!("{}: {} ({})", e.check, e.observed, e.source)).collect())
                .unwrap_or_default(),
            // An assessment covers the checks; a limit case's failures are its own verdicts.
            CaseStatus::Fail | CaseStatus::Error => match a {
                Some(a) if !a.conforms() => a.unexplained.iter().chain(&a.stale).cloned().collect(),
                _ => case.failure_lines(),
            },
            _ => Vec::new(),
        };
        Cell { case: case.name.clone(), status, notes }
    }

    /// The side-by-side table of every assessed case that sets no cgroup limit, in the order of
    /// [`Report::launchers`] (then any other launcher that has cases); rows by rootfs mode, then
    /// by the size and order of the namespace set.
    pub fn conformance_table(&self) -> ConformanceTable {
        let mut launchers: Vec<String> = self.launchers.iter().map(|h| h.name.clone()).collect();
        let mut cells: BTreeMap<(usize, usize, NsSet), BTreeMap<String, Cell>> = BTreeMap::new();
        for (suite, case) in self.cases() {
            if case.spec.limits.is_some() || self.assessment(suite, case).is_none() {
                continue;
            }
            let name = launcher(case).to_owned();
            if !launchers.contains(&name) {
                launchers.push(name.clone());
            }
            let rootfs = RootfsMode::ALL.iter().position(|m| *m == case.spec.rootfs).unwrap_or(usize::MAX);
            let key = (rootfs, case.spec.namespaces.len(), case.spec.namespaces);
            cells.entry(key).or_default().entry(name).or_insert_with(|| self.cell(suite, case));
        }
        let rows = cells
            .into_iter()
            .map(|((rootfs, _, namespaces), mut by)| Row {
                namespaces,
                rootfs: RootfsMode::ALL.get(rootfs).copied().unwrap_or_default(),
                cells: launchers.iter().map(|l| by.remove(l)).collect(),
            })
            .collect();
        ConformanceTable { launchers, rows }
    }

    /// The documented defaults of launcher `name` that the oracle judged its cases with
    /// (isolation the tool adds unasked), each once: `(what, source)`.
    pub fn launcher_defaults(&self, name: &str) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for (suite, case) in self.cases().filter(|(_, c)| launcher(c) == name) {
            for d in self.assessment(suite, case).map(|a| a.defaults.as_slice()).unwrap_or_default() {
                if !out.contains(&(d.what.as_str(), d.source.as_str())) {
                    out.push((&d.what, &d.source));
                }
            }
        }
        out
    }

    /// Per launcher of the run: the limit cases it ran and their verdicts, or that it cannot
    /// express cgroup limits.
    pub fn launcher_limits(&self) -> Vec<(&LauncherHeader, LauncherLimits)> {
        self.launchers
            .iter()
            .map(|h| {
                if !h.capabilities.cgroup_limits {
                    return (h, LauncherLimits::CannotExpress);
                }
                let cases = self
                    .cases()
                    .filter(|(_, c)| c.spec.limits.is_some() && launcher(c) == h.name)
                    .map(|(s, c)| self.cell(s, c))
                    .collect();
                (h, LauncherLimits::Cases(cases))
            })
            .collect()
    }
}

fn launcher(case: &CaseOutcome) -> &'static str {
    case.spec.launcher.name()
}

impl LauncherHeader {
    /// `lxc 5.0.2 (lxc-execute, Debian package lxc)`, `native`, or `unavailable: <reason>`.
    pub fn tool_text(&self) -> String {
        match (&self.tool, &self.unavailable) {
            (Some(t), _) if self.wrapper.is_some() => format!(
                "{} ({}, Debian package {}; wrapped: {})",
                t.version,
                t.command,
                t.package,
                self.wrapper.as_deref().unwrap_or_default()
            ),
            (Some(t), _) => format!("{} ({}, Debian package {})", t.version, t.command, t.package),
            (None, Some(u)) => format!("unavailable: {}", u.reason),
            (None, None) => "native (the reference)".to_owned(),
        }
    }
}

impl LauncherCapabilities {
    /// The capabilities as `(label, value)` pairs, in the order the reports print them.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let ns = if self.namespaces == NsSet::ALL { "all 8".to_owned() } else { self.namespaces.to_string() };
        vec![
            ("namespaces", ns),
            ("rootfs", self.rootfs.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")),
            ("id maps", self.id_maps.clone()),
            ("hostname", self.hostname.clone()),
            ("time offsets", self.time_offsets.clone()),
            ("cgroup limits", yes(self.cgroup_limits)),
            ("rootless", yes(self.rootless)),
        ]
    }
}

/// Notes numbered in the order they are first cited, each text once (footnotes of a table).
#[derive(Debug, Default)]
pub struct Notes(pub Vec<String>);

impl Notes {
    /// The number (from 1) of `text`, adding it when new.
    pub fn cite(&mut self, text: String) -> usize {
        match self.0.iter().position(|t| *t == text) {
            Some(i) => i + 1,
            None => {
                self.0.push(text);
                self.0.len()
            }
        }
    }
}

/// A cell's words and the note it cites (explained differences, skip reasons, failures).
pub fn cell_text(cell: &Cell) -> (&'static str, Option<String>) {
    let note = (!cell.notes.is_empty()).then(|| cell.notes.join("; "));
    match cell.status {
        CaseStatus::Pass => ("pass", None),
        CaseStatus::Explained => ("explained", note),
        CaseStatus::Fail => ("fail", note),
        CaseStatus::Error => ("error", note),
        CaseStatus::Skip => ("skip", note),
    }
}
