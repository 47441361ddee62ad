//! Cgroup limits: the limit part of a case spec, the oracle and the judge of the limit checks, and
//! the host's side of a limit case (its cgroups, a loop device, perf counters).
//!
//! ```text
//!  LimitSpec ──► CaseLimits (cgroups, attach) ──► probe exercise ──► ExerciseReport
//!      │                                                                  │
//!      └──────────► oracle::expect ─────────────────► judge ◄─────────────┘
//! ```
//!
//! Limits are verified by enforcement seen from inside, each with a control run without the limit;
//! reading a value back from a control file is never a verification. This module must never
//! loosen a tolerance to make a run pass: each is a named constant in [`judge`] with its reasoning.

pub mod case;
pub mod core_rules;
pub mod host;
pub mod iocost;
pub mod judge;
pub mod matrix;
pub mod oom_parent;
pub mod oracle;
pub mod protect;
pub mod requirement;
pub mod rules;
pub mod spec;
pub mod swap;

pub use case::CaseLimits;
pub use oracle::{LimitCheck, LimitExpect};
pub use spec::{CpuMax, HugetlbMax, LimitSpec, Limits};
