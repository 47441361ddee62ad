//! The report's own record types: what a report and a benchmark summary store, converted from the
//! harness's types with `From<&harness::X>` (never the other way round: probes <- harness <-
//! reports <- CLI).
//!
//! These types are the wire format. The harness's types are free to change shape; a change here
//! is a change of the report schema (`reports/schema/*.schema.json`, checked by a test) and must
//! keep every report already written readable, or raise [`crate::SCHEMA_VERSION`].

pub mod launcher;

pub use launcher::{
    CaseAssessment, ExplainedDifference, LatencyResult, LatencyRow, LauncherCapabilities, LauncherHeader, StartLatency,
    Tool, ToolDefaultNote,
};
