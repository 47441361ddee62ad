//! The compare tests' shorthand: compare two run reports built from suites (see
//! [`crate::testing`]) and hold the gate to its exit status and its words.

use super::{CompareOptions, Comparison, EXIT_REGRESSION, compare};
use crate::model::Suite;
use crate::testing::report;

pub fn run(base: Vec<Suite>, new: Vec<Suite>, opts: &CompareOptions) -> Comparison {
    compare(&report(base), "base.json", &report(new), "new.json", opts).unwrap()
}

/// The default gate: fails `new` against `base`, and its text says `needle`.
pub fn fails(base: Vec<Suite>, new: Vec<Suite>, needle: &str) -> Comparison {
    let c = run(base, new, &CompareOptions::default());
    let text = c.to_text();
    assert_eq!(c.exit_code(), EXIT_REGRESSION, "{text}");
    assert!(text.contains(needle), "no {needle:?} in\n{text}");
    assert!(c.to_markdown().starts_with("## isoprobe compare ❌ REGRESSION: "), "{}", c.to_markdown());
    c
}

pub fn allow_new_skips() -> CompareOptions {
    CompareOptions { allow_new_skips: true, ..Default::default() }
}

pub fn allow_missing() -> CompareOptions {
    CompareOptions { allow_missing: true, ..Default::default() }
}
