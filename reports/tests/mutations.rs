//! Mutated reports: whatever is done to a report's bytes (cut short, bytes flipped, spliced,
//! numbers and strings replaced), loading either fails with an error naming the file, or yields
//! a document that every renderer and compare handle, without a panic.

use std::path::Path;

use isoprobe_reports::compare::{CompareOptions, compare};
use isoprobe_reports::load::{Document, parse};
use isoprobe_reports::render::{Format, render};
use proptest::prelude::*;

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

/// Loads `text`; a document that loads must render in every format it supports and compare with
/// the fixture it came from.
fn exercise(name: &str, text: &str, original: &Document) {
    match parse(name, text) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("read {name}")), "the error does not name the file: {msg}");
        }
        Ok(doc) => {
            for f in Format::ALL {
                let _ = render(&doc, f);
            }
            for force in [false, true] {
                let opts = CompareOptions { force, ..Default::default() };
                if let Ok(c) = compare(original, "base", &doc, name, &opts) {
                    let _ = (c.to_text(), c.to_markdown(), c.exit_code());
                }
            }
        }
    }
}

/// A mutation of a document's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep the first `at` (a fraction of the length) of the text.
    Truncate(f64),
    /// Overwrite one byte.
    Flip(f64, u8),
    /// Delete a range.
    Delete(f64, usize),
    /// Insert text.
    Insert(f64, String),
    /// Replace the n-th number with another number.
    Number(usize, String),
    /// Replace the n-th string literal's content.
    Str(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let number = prop_oneof![
        Just("-1".to_owned()),
        Just("1e309".to_owned()),
        Just("-0.0".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("2".to_owned()),
        Just("0".to_owned()),
        Just("null".to_owned()),
        Just("\"7\"".to_owned()),
        any::<f64>().prop_map(|f| if f.is_finite() { f.to_string() } else { "1".into() }),
    ];
    let text = prop_oneof![
        Just(String::new()),
        Just("fail".to_owned()),
        Just("skip".to_owned()),
        Just("error".to_owned()),
        Just("isoprobe-bench-summary".to_owned()),
        Just("\\u0000<&>\\\"".to_owned()),
        Just("clone3/host/none".to_owned()),
        Just("bwrap/host/net".to_owned()),
        Just("explained".to_owned()),
        Just("measured".to_owned()),
        Just("net/links".to_owned()),
        "[a-z/+-]{0,12}",
    ];
    prop_oneof![
        (0.0..1.0f64).prop_map(Mutation::Truncate),
        (0.0..1.0f64, any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (0.0..1.0f64, 1usize..200).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (0.0..1.0f64, prop_oneof![Just("{".to_owned()), Just("]".to_owned()), Just(",".to_owned()), "[ -~]{1,8}"])
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        (0usize..400, number).prop_map(|(n, s)| Mutation::Number(n, s)),
        (0usize..2000, text).prop_map(|(n, s)| Mutation::Str(n, s)),
    ]
}

fn at(bytes: &[u8], frac: f64) -> usize {
    ((bytes.len() as f64 * frac) as usize).min(bytes.len())
}

/// Applies `m`; the result may be invalid UTF-8, which is then read lossily as a file loader
/// would refuse it anyway (`load` reports non-UTF-8 by position).
fn apply(text: &str, m: &Mutation) -> String {
    let mut b = text.as_bytes().to_vec();
    match m {
        Mutation::Truncate(f) => b.truncate(at(&b, *f)),
        Mutation::Flip(f, v) => {
            let i = at(&b, *f).min(b.len().saturating_sub(1));
            if let Some(x) = b.get_mut(i) {
                *x = *v;
            }
        }
        Mutation::Delete(f, n) => {
            let i = at(&b, *f);
            let j = (i + n).min(b.len());
            b.drain(i..j);
        }
        Mutation::Insert(f, s) => {
            let i = at(&b, *f);
            b.splice(i..i, s.bytes());
        }
        Mutation::Number(n, s) => return replace_nth(text, *n, s, is_number_start, number_end),
        Mutation::Str(n, s) => return replace_nth(text, *n, s, |c| c == b'"', string_end),
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn is_number_start(c: u8) -> bool {
    c.is_ascii_digit() || c == b'-'
}

fn number_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b'e' | b'E' | b'+' | b'-')) {
        j += 1;
    }
    j
}

/// From an opening quote to after its closing quote; the replacement goes between the quotes.
fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && b[j] != b'"' {
        j += if b[j] == b'\\' { 2 } else { 1 };
    }
    (j + 1).min(b.len())
}

/// Replaces the n-th token (counted outside strings for numbers) found by `start`/`end`.
fn replace_nth(text: &str, n: usize, with: &str, start: fn(u8) -> bool, end: fn(&[u8], usize) -> usize) -> String {
    let b = text.as_bytes();
    let (mut i, mut seen, mut in_str) = (0, 0, false);
    let quotes = start(b'"');
    while i < b.len() {
        let c = b[i];
        if !quotes && c == b'"' {
            // Skip strings when looking for numbers.
            i = string_end(b, i);
            in_str = false;
            continue;
        }
        if !in_str && start(c) {
            let j = end(b, i);
            if seen == n {
                return if quotes {
                    format!("{}\"{with}\"{}", &text[..i], &text[j..])
                } else {
                    format!("{}{with}{}", &text[..i], &text[j..])
                };
            }
            seen += 1;
            i = j;
            continue;
        }
        i += 1;
    }
    text.to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_report_never_panics(ms in prop::collection::vec(mutation(), 1..4)) {
        let text = fixture_text("report.json");
        let original = parse("report.json", &text).unwrap();
        let mutated = ms.iter().fold(text, |t, m| apply(&t, m));
        exercise("mutated.json", &mutated, &original);
    }

    /// The launcher conformance part: headers, assessments (whose keys must name cases), the
    /// explained status and the start latencies.
    #[test]
    fn a_mutated_launcher_report_never_panics(ms in prop::collection::vec(mutation(), 1..4)) {
        let text = fixture_text("report-launchers.json");
        let original = parse("report-launchers.json", &text).unwrap();
        let mutated = ms.iter().fold(text, |t, m| apply(&t, m));
        exercise("mutated.json", &mutated, &original);
    }

    #[test]
    fn a_mutated_bench_summary_never_panics(ms in prop::collection::vec(mutation(), 1..4)) {
        let text = fixture_text("bench-base.json");
        let original = parse("bench-base.json", &text).unwrap();
        let mutated = ms.iter().fold(text, |t, m| apply(&t, m));
        exercise("mutated.json", &mutated, &original);
    }
}

#[test]
fn every_truncation_of_the_report_is_refused_with_a_position() {
    let text = fixture_text("bench-base.json");
    // Every cut of the (smaller) bench fixture; the parse is cheap.
    for cut in (0..text.len() - 2).step_by(7) {
        let e = parse("cut.json", &text[..cut]).expect_err("a cut document must not load");
        let msg = e.to_string();
        assert!(msg.starts_with("read cut.json"), "{msg}");
    }
}

#[test]
fn mutation_helpers_hit_what_they_aim_at() {
    let t = r#"{"a": "x1", "b": 12, "c": [3.5e2, -4]}"#;
    assert_eq!(replace_nth(t, 1, "9", is_number_start, number_end), r#"{"a": "x1", "b": 12, "c": [9, -4]}"#);
    assert_eq!(replace_nth(t, 2, "q", |c| c == b'"', string_end), r#"{"a": "x1", "q": 12, "c": [3.5e2, -4]}"#);
}
