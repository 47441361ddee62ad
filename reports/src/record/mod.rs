//! The report's own record types: what a report and a benchmark summary store, converted from the
//! harness's types with `From<&harness::X>` (never the other way round: probes <- harness <-
//! reports <- CLI).
//!
//! These types are the wire format, in the nextest manner: the harness's types are free to change
//! shape, and a change here is a change of the report schema (`reports/schema/*.schema.json`,
//! checked by a test) that must keep every report already written readable, or raise
//! [`crate::SCHEMA_VERSION`]. Kept from the harness, as fixed-name vocabulary: [`CheckId`] (its
//! `<kind>/<property>` name), [`NsSet`] and [`NsKind`] (kind names),
//! [`RootfsMode`] and [`LauncherKind`] (their kebab-case names, also those of spec files and the
//! command line).
//!
//! What this module must never do: hold logic beyond reading what is recorded (statuses, counts
//! and comparisons are [`crate::model`]'s and [`crate::compare`]'s).

pub mod fingerprint;
pub mod launcher;
pub mod outcome;
pub mod phases;
pub mod schema;
pub mod spec;
pub mod verdict;

pub use fingerprint::{
    CgroupInfo, CgroupLayout, CgroupV1Hierarchy, CpuInfo, Fingerprint, Hypervisor, KernelConfig, KernelInfo,
    ToolVersion, UserInfo, UsernsPolicy,
};
pub use isoprobe_harness::{CheckId, LauncherKind, NsKind, NsSet, RootfsMode};
pub use launcher::{
    CaseAssessment, ExplainedDifference, LatencyResult, LatencyRow, LauncherCapabilities, LauncherHeader, StartLatency,
    Tool, ToolDefaultNote,
};
pub use outcome::{CaseOutcome, DefectHit, ProbeRun};
pub use phases::{PHASE_ORDER, Phases, phase_rank};
pub use spec::{
    CaseSpec, CgroupRules, CpuMax, Exercise, HugetlbMax, IdMapLine, IdMaps, LimitSpec, Limits, SysctlStripe,
    TimeOffsets,
};
pub use verdict::{CheckResult, LimitCheck, LimitResult, Role, Skip, Verdict};
