//! Reading reports and benchmark summaries, with errors that say where a document went wrong.
//!
//! A document is read in two passes: a header pass (`kind`, `schema_version`) that also catches
//! every syntax error with its position, then the typed pass. A newer schema is refused before
//! the typed pass, so that its new fields are reported as "newer schema", not as corruption.

use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::bench::{BENCH_SCHEMA_VERSION, BenchSummary};
use crate::error::LoadError;
use crate::model::{OLDEST_READ_SCHEMA_VERSION, Report, SCHEMA_VERSION};

/// A document isoprobe reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Run(Box<Report>),
    Bench(Box<BenchSummary>),
}

impl Document {
    /// The `kind` the document carries.
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Run(_) => KIND_REPORT,
            Document::Bench(_) => KIND_BENCH,
        }
    }

    pub fn fingerprint(&self) -> &crate::record::Fingerprint {
        match self {
            Document::Run(r) => &r.fingerprint,
            Document::Bench(b) => &b.fingerprint,
        }
    }
}

pub const KIND_REPORT: &str = "isoprobe-report";
pub const KIND_BENCH: &str = "isoprobe-bench-summary";

/// Reads the document at `path`.
pub fn load(path: &Path) -> Result<Document, LoadError> {
    let name = path.display().to_string();
    let bytes = fs::read(path).map_err(|source| LoadError::Io { path: name.clone(), source })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let valid = &e.as_bytes()[..at];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let column = at - valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
            return Err(LoadError::Parse { path: name, line, column, what: "not UTF-8 text".into() });
        }
    };
    parse(&name, &text)
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(default)]
    schema_version: Option<serde_json::Value>,
}

/// Parses a document; `path` names it in errors.
pub fn parse(path: &str, text: &str) -> Result<Document, LoadError> {
    let header: Header = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => LoadError::NotIsoprobe {
            path: path.into(),
            what: "the document is not a JSON object, so not an isoprobe report or benchmark summary".into(),
        },
        _ => parse_error(path, &e),
    })?;
    let kind = match &header.kind {
        Some(serde_json::Value::String(k)) if k == KIND_REPORT || k == KIND_BENCH => k.clone(),
        Some(other) => {
            return Err(LoadError::NotIsoprobe {
                path: path.into(),
                what: format!("its `kind` is {other}, not \"{KIND_REPORT}\" or \"{KIND_BENCH}\""),
            });
        }
        None => {
            return Err(LoadError::NotIsoprobe {
                path: path.into(),
                what: format!("it has no `kind` (\"{KIND_REPORT}\" or \"{KIND_BENCH}\")"),
            });
        }
    };
    let ours = env!("CARGO_PKG_VERSION");
    // The versions this build reads: reports from the oldest whose fields are all still
    // understood (later versions only added optional ones), benchmark summaries of this version.
    let (oldest, newest) = if kind == KIND_REPORT {
        (OLDEST_READ_SCHEMA_VERSION, SCHEMA_VERSION)
    } else {
        (BENCH_SCHEMA_VERSION, BENCH_SCHEMA_VERSION)
    };
    match header.schema_version.as_ref().map(|v| v.as_u64()) {
        Some(Some(v)) if v > u64::from(newest) => {
            return Err(LoadError::NewerSchema { path: path.into(), found: v, supported: newest, ours });
        }
        Some(Some(v)) if v < u64::from(oldest) => {
            return Err(LoadError::OlderSchema { path: path.into(), found: v, supported: oldest, ours });
        }
        Some(Some(_)) => {}
        Some(None) => {
            return Err(LoadError::NotIsoprobe {
                path: path.into(),
                what: "its `schema_version` is not a whole number".into(),
            });
        }
        None => return Err(LoadError::NotIsoprobe { path: path.into(), what: "it has no `schema_version`".into() }),
    }
    let doc = if kind == KIND_REPORT {
        Document::Run(Box::new(serde_json::from_str(text).map_err(|e| parse_error(path, &e))?))
    } else {
        Document::Bench(Box::new(serde_json::from_str(text).map_err(|e| parse_error(path, &e))?))
    };
    let problems = match &doc {
        Document::Run(r) => report_problems(r),
        Document::Bench(b) => b.problems(),
    };
    if !problems.is_empty() {
        return Err(LoadError::Invalid { path: path.into(), what: problems.join("; ") });
    }
    Ok(doc)
}

fn parse_error(path: &str, e: &serde_json::Error) -> LoadError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    let what = match e.classify() {
        serde_json::error::Category::Eof => format!("the document ends early, it was cut short ({msg})"),
        serde_json::error::Category::Syntax => format!("not valid JSON: {msg}"),
        _ => format!("unexpected content: {msg}"),
    };
    LoadError::Parse { path: path.into(), line: e.line(), column: e.column(), what }
}

/// Names a case twice in a suite, or numbers a report cannot hold.
fn report_problems(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if !r.duration_ms.is_finite() || r.duration_ms < 0.0 {
        out.push(format!("duration_ms is {}; it must be a non-negative number", r.duration_ms));
    }
    for (si, s) in r.suites.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for (ci, c) in s.cases.iter().enumerate() {
            if !seen.insert(&c.name) {
                out.push(format!("suites[{si}] ({}).cases[{ci}]: case `{}` appears twice", s.name, c.name));
            }
        }
        for name in s.assessments.keys().filter(|n| !seen.contains(n)) {
            out.push(format!("suites[{si}] ({}).assessments: `{name}` names no case of the suite", s.name));
        }
    }
    if let Some(b) = &r.bench {
        out.extend(b.problems().into_iter().map(|p| format!("bench: {p}")));
    }
    out
}

/// Writes `doc` as pretty JSON, the form `isoprobe run` saves.
pub fn to_json(doc: &Document) -> String {
    let mut out = Vec::new();
    write_json(doc, &mut out).expect("reports serialise: every map key is a string");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Streams `doc` as [`to_json`] gives it to `out` (no copy of it is built first). Only `out`'s
/// errors can fail it.
pub fn write_json(doc: &Document, mut out: impl std::io::Write) -> std::io::Result<()> {
    serialize(doc, &mut serde_json::Serializer::pretty(&mut out))?;
    out.write_all(b"\n")
}

/// Streams `doc` to `out` as JSON without indentation, on one line: the form `isoprobe run`
/// saves. A report of the namespace matrix is some 8 MB this way and 15 MB pretty, and the run writes it
/// last, on one CPU, after every case is done: 21 ms instead of 41 (this machine, issue 17).
/// `isoprobe report -f json` prints the pretty form ([`to_json`]).
pub fn write_compact_json(doc: &Document, mut out: impl std::io::Write) -> std::io::Result<()> {
    serialize(doc, &mut serde_json::Serializer::new(&mut out))?;
    out.write_all(b"\n")
}

fn serialize<W: std::io::Write, F: serde_json::ser::Formatter>(
    doc: &Document,
    to: &mut serde_json::Serializer<W, F>,
) -> serde_json::Result<()> {
    match doc {
        Document::Run(r) => serde::Serialize::serialize(r, to),
        Document::Bench(b) => serde::Serialize::serialize(b, to),
    }
}
