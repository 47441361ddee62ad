//! Result model, renderers and comparison of isoprobe runs.
//!
//! ```text
//!  run ──► Report (JSON, schema-versioned) ──► render: json | junit | ktap | markdown | html
//!  cargo bench ──► BenchSummary (JSON) ───────┘
//!  compare(BASE, NEW) ──► verdict changes, significant benchmark changes ──► exit 0 | 1 | 2
//! ```
//!
//! The documents are written in the report's own record types ([`record`]), converted from the
//! harness's where a run or a benchmark produces them (the CLI, the bench crate): the harness may
//! change its types, the schema changes only here.
//!
//! Everything here is pure: it reads documents and produces text. It must never run a case,
//! touch the host, or panic on a document it was handed (bad input is a [`LoadError`]).
#![deny(unsafe_code)]

pub mod bench;
pub mod breakdown;
pub mod compare;
pub mod conformance;
pub mod error;
pub mod load;
pub mod model;
pub mod record;
pub mod render;
pub mod schema;
#[cfg(any(test, feature = "arbitrary"))]
pub mod strategy;
#[cfg(test)]
mod testing;
pub mod time;

pub use bench::{BenchCase, BenchSummary};
pub use compare::{CompareOptions, Comparison};
pub use error::LoadError;
pub use load::Document;
pub use model::{CaseStatus, Report, SCHEMA_VERSION, Suite};
pub use record::{CaseAssessment, LauncherHeader, StartLatency};
pub use render::Format;
