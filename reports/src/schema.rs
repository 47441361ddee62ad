//! The JSON Schemas of the two documents, generated from the types. The committed copies under
//! `reports/schema/` are checked against these by a test, so they cannot drift.

use schemars::Schema;

use crate::bench::BenchSummary;
use crate::model::Report;

/// The schema of a run report.
pub fn report() -> Schema {
    schemars::schema_for!(Report)
}

/// The schema of a benchmark summary.
pub fn bench_summary() -> Schema {
    schemars::schema_for!(BenchSummary)
}

/// A schema as committed: pretty JSON with a final newline.
pub fn to_committed_text(s: &Schema) -> String {
    let mut t = serde_json::to_string_pretty(s).expect("a schema serialises");
    t.push('\n');
    t
}
