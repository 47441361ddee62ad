//! The options of a comparison: the benchmark threshold and basis, and what the user accepts as
//! deliberate (new skips, missing cases, a kernel gate across platforms, a forced comparison).
//!
//! What this module must never do: default to leniency. The defaults are the strict gate; each
//! option loosens it on purpose, and the comparison's text says so where it did.

/// How benchmark times are put side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Basis {
    /// Nanoseconds when the machines match, ratios to calibration otherwise.
    #[default]
    Auto,
    /// Nanoseconds, even across machines.
    Absolute,
    /// Ratios to calibration, even on the same machine.
    Calibration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// A benchmark change counts when its interval lies entirely beyond ±threshold (0.10 = 10%).
    pub threshold: f64,
    /// Compare even when the fingerprints make the runs incomparable.
    pub force: bool,
    /// Report new skips (a slot judged in BASE, a case that ran or errored there, skipped in
    /// NEW) without failing the comparison.
    pub allow_new_skips: bool,
    /// Report suites, cases and slots missing from NEW without failing the comparison (an empty
    /// NEW still fails it).
    pub allow_missing: bool,
    pub basis: Basis,
    /// Judge ratios against this calibration only (default: every calibration both sides have).
    pub calibration: Option<String>,
    /// The kernel gate: BASE and NEW are different platforms on purpose (kernel, and with it the
    /// cgroup layout it was booted with); a layout difference is noted instead of refused.
    pub kernel_gate: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            threshold: 0.10,
            force: false,
            allow_new_skips: false,
            allow_missing: false,
            basis: Basis::Auto,
            calibration: None,
            kernel_gate: false,
        }
    }
}
