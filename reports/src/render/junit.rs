//! JUnit XML for CI systems: one `<testsuite>` per namespace combination of each suite, one
//! `<testcase>` per check of each case (`classname` is the case), skips with their reason, and
//! the environment fingerprint as `<properties>` of every testsuite (the only place the JUnit
//! schema has for them).
//!
//! Cases run through a launcher of the conformance table: a failed check that an expected
//! difference explains is a passing `<testcase>` with a `<system-out>` note (`explained
//! difference: <what the tool gives> (source: <where it is documented>)`); a stale row of the
//! differences table is a failed `differences-table` testcase. Each such testsuite also carries
//! the launcher's tool and version as properties (`launcher.<name>.tool`).

use std::fmt::Write;
use std::time::Duration;

use super::escape::xml;
use crate::model::{CaseStatus, Report, Suite, verdict_detail};
use crate::record::{CaseOutcome, Role, Verdict};

/// One `<testcase>` before it is written.
struct Testcase {
    classname: String,
    name: String,
    outcome: Outcome,
    system_out: String,
    system_err: String,
}

enum Outcome {
    Pass,
    Failure { message: String, body: String },
    Error { message: String, body: String },
    Skipped { message: String },
}

pub fn render(report: &Report) -> String {
    let mut props = vec![
        ("isoprobe.version".to_owned(), report.isoprobe_version.clone()),
        ("isoprobe.started_at".to_owned(), report.started_at.clone()),
        ("isoprobe.command".to_owned(), report.command.join(" ")),
    ];
    if !report.expect.is_empty() {
        props.push(("isoprobe.expect".to_owned(), report.expect.join(",")));
    }
    props.extend(report.fingerprint.properties());

    // Group each suite's cases by namespace combination, in order of first appearance.
    let mut suites: Vec<(String, Vec<(&Suite, &CaseOutcome)>)> = Vec::new();
    for (suite, case) in report.cases() {
        let name = format!("{}/{}", suite.name, case.spec.namespaces);
        match suites.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push((suite, case)),
            None => suites.push((name, vec![(suite, case)])),
        }
    }
    for h in &report.launchers {
        let tool = match (&h.tool, &h.unavailable) {
            (Some(t), _) => format!("{} ({}, Debian package {})", t.version, t.command, t.package),
            (None, Some(u)) => format!("unavailable: {}", u.reason),
            (None, None) => "native".to_owned(),
        };
        props.push((format!("launcher.{}.tool", h.name), tool));
    }

    let mut body = String::new();
    let (mut all_tests, mut all_fail, mut all_err, mut all_skip) = (0, 0, 0, 0);
    let mut all_time = Duration::ZERO;
    for (name, cases) in &suites {
        let testcases: Vec<Testcase> = cases.iter().flat_map(|(s, c)| testcases(report, s, c)).collect();
        let count = |f: fn(&Outcome) -> bool| testcases.iter().filter(|t| f(&t.outcome)).count();
        let failures = count(|o| matches!(o, Outcome::Failure { .. }));
        let errors = count(|o| matches!(o, Outcome::Error { .. }));
        let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
        let time: Duration = cases.iter().map(|(_, c)| c.duration).sum();
        (all_tests, all_fail, all_err, all_skip) =
            (all_tests + testcases.len(), all_fail + failures, all_err + errors, all_skip + skipped);
        all_time += time;
        let _ = writeln!(
            body,
            r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{:.3}" timestamp="{}">"#,
            xml(name),
            testcases.len(),
            time.as_secs_f64(),
            xml(&report.started_at),
        );
        body.push_str("    <properties>\n");
        for (k, v) in &props {
            let _ = writeln!(body, r#"      <property name="{}" value="{}"/>"#, xml(k), xml(v));
        }
        body.push_str("    </properties>\n");
        for t in &testcases {
            write_testcase(&mut body, t);
        }
        body.push_str("  </testsuite>\n");
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="isoprobe" tests="{all_tests}" failures="{all_fail}" errors="{all_err}" skipped="{all_skip}" time="{:.3}">"#,
        all_time.as_secs_f64()
    );
    out.push_str(&body);
    out.push_str("</testsuites>\n");
    out
}

fn testcases(report: &Report, suite: &Suite, case: &CaseOutcome) -> Vec<Testcase> {
    let tc = |name: &str, outcome| Testcase {
        classname: case.name.clone(),
        name: name.to_owned(),
        outcome,
        system_out: String::new(),
        system_err: String::new(),
    };
    let assessment = report.assessment(suite, case);
    if let Some(e) = &case.error {
        return vec![tc("case", Outcome::Error { message: first_line(e), body: e.clone() })];
    }
    if let Some(s) = &case.skipped {
        let message = format!("{}: {}", s.requirement, s.reason);
        return vec![if report.status(suite, case) == CaseStatus::Fail {
            let body = format!("ISOPROBE_EXPECT declares `{}`, so this skip is a failure", s.requirement);
            tc("case", Outcome::Failure { message, body })
        } else {
            tc("case", Outcome::Skipped { message })
        }];
    }
    let mut out = Vec::new();
    for run in &case.runs {
        let suffix = if run.role == Role::Joiner { " (joiner)" } else { "" };
        for c in &run.checks {
            let detail = verdict_detail(&c.verdict);
            let outcome = match &c.verdict {
                Verdict::Pass { .. } => Outcome::Pass,
                Verdict::Fail { expected, observed, .. } => {
                    Outcome::Failure { message: format!("expected {expected}, observed {observed}"), body: detail }
                }
                Verdict::Skip { .. } => Outcome::Skipped { message: detail },
                Verdict::Error { cause } => Outcome::Error { message: first_line(cause), body: detail },
            };
            let mut t = tc(&format!("{}{suffix}", c.check), outcome);
            if let Some(e) = assessment.and_then(|a| a.explanation(run.role, c.check)) {
                t.outcome = Outcome::Pass;
                t.system_out = format!(
                    "explained difference: {} (source: {})\n{detail_of}",
                    e.observed,
                    e.source,
                    detail_of = verdict_detail(&c.verdict)
                );
            }
            if matches!(t.outcome, Outcome::Failure { .. } | Outcome::Error { .. }) {
                t.system_err = format!("init: {}\nexit: {}\n{}", run.init.join("; "), run.exit, run.stderr);
            }
            out.push(t);
        }
    }
    if let Some(a) = assessment.filter(|a| !a.stale.is_empty()) {
        out.push(tc(
            "differences-table",
            Outcome::Failure {
                message: "a row of the expected-differences table is stale: the check passed".into(),
                body: a.stale.join("\n"),
            },
        ));
    }
    if case.spec.launcher.joins() {
        let explained = |m: &String| {
            assessment.is_some_and(|a| a.explained.iter().any(|e| m.starts_with(&format!("{}:", e.check))))
        };
        let outcome = if case.join_mismatches.iter().all(explained) {
            Outcome::Pass
        } else {
            Outcome::Failure {
                message: "the joiner observed something other than the container's own probe".into(),
                body: case.join_mismatches.join("\n"),
            }
        };
        out.push(tc("join-consistency", outcome));
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

fn write_testcase(out: &mut String, t: &Testcase) {
    let open = format!(r#"    <testcase classname="{}" name="{}""#, xml(&t.classname), xml(&t.name));
    let inner = match &t.outcome {
        Outcome::Pass => None,
        Outcome::Failure { message, body } => {
            Some(format!(r#"      <failure message="{}" type="fail">{}</failure>"#, xml(message), xml(body)))
        }
        Outcome::Error { message, body } => {
            Some(format!(r#"      <error message="{}" type="error">{}</error>"#, xml(message), xml(body)))
        }
        Outcome::Skipped { message } => Some(format!(r#"      <skipped message="{}"/>"#, xml(message))),
    };
    match inner {
        None if !t.system_out.is_empty() => {
            let _ = writeln!(out, "{open}>\n      <system-out>{}</system-out>\n    </testcase>", xml(&t.system_out));
        }
        None => {
            let _ = writeln!(out, "{open}/>");
        }
        Some(inner) => {
            let _ = writeln!(out, "{open}>\n{inner}");
            if !t.system_err.is_empty() {
                let _ = writeln!(out, "      <system-err>{}</system-err>", xml(&t.system_err));
            }
            out.push_str("    </testcase>\n");
        }
    }
}
