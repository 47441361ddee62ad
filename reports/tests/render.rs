//! Every renderer on fixed documents (fixtures, not live runs), held by insta snapshots; the KTAP
//! output read back by a parser written from the KTAP spec; the committed JSON Schemas; and the
//! loader's errors on bad input.
//!
//! The fixtures under `tests/fixtures/` are described in `tests/fixtures/README.md`.

use std::path::{Path, PathBuf};

use isoprobe_reports::compare::{CompareOptions, compare};
use isoprobe_reports::load::{Document, load, parse, to_json, write_compact_json};
use isoprobe_reports::record::{Skip, Verdict};
use isoprobe_reports::render::ktap::{self, Directive};
use isoprobe_reports::render::text::summary_table;
use isoprobe_reports::render::{Format, render};
use isoprobe_reports::{LoadError, schema};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture(name: &str) -> Document {
    load(&fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn report() -> Document {
    fixture("report.json")
}

/// The fixture report with the benchmark summary attached, as `run` would attach it.
fn report_with_bench() -> Document {
    let (Document::Run(mut r), Document::Bench(b)) = (report(), fixture("bench-base.json")) else {
        panic!("fixture kinds")
    };
    r.bench = Some(*b);
    Document::Run(r)
}

#[test]
fn json_round_trips_the_fixture_byte_for_byte() {
    let launchers = std::fs::read_to_string(fixture_path("report-launchers.json")).unwrap();
    assert_eq!(to_json(&fixture("report-launchers.json")), launchers);
    let text = std::fs::read_to_string(fixture_path("report.json")).unwrap();
    let doc = report();
    assert_eq!(to_json(&doc), text, "pretty JSON of the loaded fixture must be the fixture");
    assert_eq!(parse("again", &to_json(&doc)).unwrap(), doc);
    // The form `run` saves: one line, read back the same.
    let mut compact = Vec::new();
    write_compact_json(&doc, &mut compact).unwrap();
    let compact = String::from_utf8(compact).unwrap();
    assert_eq!(compact.lines().count(), 1, "{compact}");
    assert!(compact.len() < text.len() * 2 / 3, "{} of {} bytes", compact.len(), text.len());
    assert_eq!(parse("compact", &compact).unwrap(), doc);
    let bench = fixture("bench-base.json");
    assert_eq!(parse("again", &render(&bench, Format::Json).unwrap()).unwrap(), bench);
}

/// A `--launcher` run: clone3's limit cases, bwrap and lxc with explained differences, a stale
/// row, an unexplained failure, and runc missing (see `tests/fixtures/README.md`).
fn launchers_report() -> Document {
    fixture("report-launchers.json")
}

#[test]
fn launcher_report_snapshots() {
    let doc = launchers_report();
    insta::assert_snapshot!("launchers_markdown", render(&doc, Format::Markdown).unwrap());
    insta::assert_snapshot!("launchers_html", render(&doc, Format::Html).unwrap());
    insta::assert_snapshot!("launchers_junit", render(&doc, Format::Junit).unwrap());
    insta::assert_snapshot!("launchers_ktap", render(&doc, Format::Ktap).unwrap());
    let Document::Run(r) = doc else { unreachable!() };
    insta::assert_snapshot!("launchers_text", isoprobe_reports::render::text::launcher_table(&r));
}

/// Explained differences are counted apart, are no failures, and never make a case pass; a stale
/// row and an unexplained failure fail their cases; a missing tool's cases are skips.
#[test]
fn explained_differences_have_their_own_status() {
    use isoprobe_reports::CaseStatus;
    let Document::Run(r) = launchers_report() else { unreachable!() };
    let suite = &r.suites[0];
    let status = |name: &str| r.status(suite, suite.cases.iter().find(|c| c.name == name).unwrap());
    assert_eq!(status("bwrap/host/net"), CaseStatus::Explained);
    assert_eq!(status("bwrap/host/none"), CaseStatus::Pass);
    assert_eq!(status("bwrap/host/mnt"), CaseStatus::Fail, "a stale row fails the case");
    assert_eq!(status("lxc/pivot/mnt"), CaseStatus::Fail, "an unexplained failure fails the case");
    assert_eq!(status("runc/pivot/mnt"), CaseStatus::Skip);
    let c = r.counts();
    assert_eq!((c.pass, c.explained, c.fail, c.skip, c.error), (11, 3, 2, 4, 0));
    assert_eq!(c.checks.explained, 3);
    assert!(!r.passed());
    let failures = r.failures();
    assert!(failures.iter().all(|f| f.check != "net/links"), "{failures:?}");
    assert!(failures.iter().any(|f| f.check == "differences-table" && f.label == "stale"));
    // Without the two broken cases the report passes with its explained differences.
    let mut fixed = r.clone();
    fixed.suites[0].cases.retain(|c| c.name != "bwrap/host/mnt" && c.name != "lxc/pivot/mnt");
    fixed.suites[0].assessments.retain(|n, _| n != "bwrap/host/mnt" && n != "lxc/pivot/mnt");
    assert!(fixed.passed() && fixed.counts().explained == 3);

    let table = r.conformance_table();
    assert_eq!(table.launchers, ["clone3", "bwrap", "lxc", "runc"]);
    let net = table.rows.iter().find(|row| row.namespaces.to_string() == "net").unwrap();
    let bwrap = net.cells[1].as_ref().unwrap();
    assert_eq!(bwrap.status, CaseStatus::Explained);
    assert!(bwrap.notes[0].starts_with("net/links: lo is up") && bwrap.notes[0].contains("bubblewrap source"));
    let limits = r.launcher_limits();
    assert!(matches!(&limits[0].1, isoprobe_reports::conformance::LauncherLimits::Cases(c) if c.len() == 6));
    assert!(matches!(limits[1].1, isoprobe_reports::conformance::LauncherLimits::CannotExpress));

    // KTAP: an explained check is `ok … # XFAIL`, the source on a diagnostic line; kselftest's
    // totals count the explained cases as xfail.
    let text = render(&launchers_report(), Format::Ktap).unwrap();
    let doc = ktap::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(doc.bubbling_violations().is_empty(), "{:?}", doc.bubbling_violations());
    let xfail: Vec<_> = doc.leaves().into_iter().filter(|(_, t)| t.directive == Some(Directive::Xfail)).collect();
    assert_eq!(xfail.len(), 3);
    assert!(
        xfail
            .iter()
            .all(|(p, t)| t.ok && p.ends_with("net/links") && t.diagnostics.iter().any(|d| d.starts_with("source: ")))
    );
    assert!(text.contains("# Totals: pass:11 fail:2 xfail:3 skip:4 error:0"), "{text}");
    // JUnit: a passing testcase with the note on system-out.
    let xml = render(&launchers_report(), Format::Junit).unwrap();
    assert_eq!(xml.matches("<system-out>explained difference: lo is up").count(), 3);
    assert!(xml.contains("name=\"differences-table\""));
    assert!(xml.contains("launcher.runc.tool\" value=\"unavailable: runc not installed (Debian package runc)\""));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!(render(&report(), Format::Junit).unwrap());
}

#[test]
fn ktap_snapshot() {
    insta::assert_snapshot!(render(&report(), Format::Ktap).unwrap());
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(render(&report_with_bench(), Format::Markdown).unwrap());
}

#[test]
fn html_snapshot() {
    insta::assert_snapshot!(render(&report_with_bench(), Format::Html).unwrap());
}

#[test]
fn bench_markdown_and_html_snapshots() {
    let b = fixture("bench-base.json");
    insta::assert_snapshot!("bench_markdown", render(&b, Format::Markdown).unwrap());
    insta::assert_snapshot!("bench_html", render(&b, Format::Html).unwrap());
}

#[test]
fn summary_table_snapshot() {
    let Document::Run(r) = report() else { panic!("a run report") };
    insta::assert_snapshot!(summary_table(&r));
}

#[test]
fn junit_and_ktap_refuse_a_benchmark_summary() {
    let b = fixture("bench-base.json");
    for f in [Format::Junit, Format::Ktap] {
        let e = render(&b, f).unwrap_err().to_string();
        assert!(e.contains("benchmark summary"), "{e}");
    }
}

#[test]
fn junit_has_one_testsuite_per_combination_with_skips_and_properties() {
    let xml = render(&report(), Format::Junit).unwrap();
    let Document::Run(r) = report() else { unreachable!() };
    let combos: std::collections::BTreeSet<String> =
        r.suites[0].cases.iter().map(|c| c.spec.namespaces.to_string()).collect();
    assert_eq!(xml.matches("<testsuite ").count(), combos.len(), "one testsuite per namespace combination");
    assert!(xml.contains("<skipped message=\"userns: kernel.unprivileged_userns_clone is 0 &amp; &lt;off&gt;\""));
    assert!(xml.contains("<property name=\"kernel.release\""));
    assert!(xml.contains("<failure"), "the flipped check is a failure");
}

/// The example of Documentation/dev-tools/ktap.rst (nested subtests, SKIP directives, a failure
/// bubbling up), and malformed variants of it.
#[test]
fn ktap_parser_follows_the_spec_example() {
    let spec_example = "\
KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
";
    let doc = ktap::parse(spec_example).unwrap();
    assert_eq!(doc.version, "KTAP version 1");
    assert_eq!(doc.plan, Some(1));
    let main = &doc.tests[0];
    assert!(!main.ok);
    assert_eq!(main.description, "main_test");
    let sub = main.subtests.as_ref().unwrap();
    assert_eq!(sub.tests.len(), 3);
    let ex2 = sub.tests[1].subtests.as_ref().unwrap();
    assert_eq!(ex2.tests[0].directive, Some(Directive::Skip));
    assert_eq!(ex2.tests[0].diagnostic, "test_1 skipped");
    let ex3 = sub.tests[2].subtests.as_ref().unwrap();
    assert!(!ex3.tests[1].ok);
    assert_eq!(ex3.tests[1].diagnostics, vec!["test_2: FAIL".to_owned()]);
    assert!(doc.bubbling_violations().is_empty());
    assert_eq!(doc.leaves().len(), 6);

    let broken = [
        ("no version line", spec_example.replacen("KTAP version 1\n", "", 1)),
        ("plan mismatch", spec_example.replacen("1..1\n", "1..2\n", 1)),
        ("numbering", spec_example.replace("    ok 2 test_2\n", "    ok 3 test_2\n")),
        ("bad indentation", spec_example.replace("    ok 1 test_1\n  ok 1 example", "   ok 1 test_1\n  ok 1 example")),
        ("trailing result", format!("{spec_example}ok 2 extra\n")),
    ];
    for (what, text) in broken {
        assert!(ktap::parse(&text).is_err(), "{what} must be refused");
    }
    let lying_parent = spec_example.replace("  not ok 3 example_test_3", "  ok 3 example_test_3");
    assert_eq!(ktap::parse(&lying_parent).unwrap().bubbling_violations().len(), 1);
}

#[test]
fn our_ktap_parses_and_carries_every_verdict() {
    let text = render(&report(), Format::Ktap).unwrap();
    let doc = ktap::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(doc.plan, Some(1));
    assert!(doc.bubbling_violations().is_empty(), "{:?}", doc.bubbling_violations());
    let leaves = doc.leaves();
    let Document::Run(r) = report() else { unreachable!() };
    let counts = r.counts();
    // One leaf per check of every probe run, plus one per skipped or errored case and one
    // join-consistency test per joining case.
    let joins = r.suites[0].cases.iter().filter(|c| c.spec.launcher.joins() && !c.runs.is_empty()).count();
    let checks = counts.checks.pass + counts.checks.fail + counts.checks.skip + counts.checks.error;
    assert_eq!(leaves.len(), checks + counts.skip + counts.error + joins);
    let failed: Vec<&str> = leaves.iter().filter(|(_, t)| !t.ok).map(|(p, _)| p.as_str()).collect();
    assert!(failed.iter().any(|p| p.ends_with("pid/signal-host-process")), "{failed:?}");
    assert!(failed.iter().any(|p| p.ends_with("join-consistency")), "{failed:?}");
    let skips = leaves.iter().filter(|(_, t)| t.directive == Some(Directive::Skip)).count();
    assert_eq!(skips, counts.checks.skip + counts.skip);
    assert!(leaves.iter().any(|(_, t)| t.directive == Some(Directive::Error)));
}

#[test]
fn html_has_every_section_and_no_external_reference() {
    let html = render(&report_with_bench(), Format::Html).unwrap();
    for needle in ["<svg", "Latency per namespace kind", "scaling", "Environment", "id=\"matrix\"", "id=\"failures\""] {
        assert!(html.contains(needle), "the page lacks {needle}");
    }
    for banned in ["<script", "src=\"http", "href=\"http", "url(", "<link", "@import", "<img"] {
        assert!(!html.contains(banned), "the page contains {banned}");
    }
}

#[test]
fn compare_snapshots() {
    let opts = CompareOptions::default();
    let run = |a: &str, b: &Document| compare(&fixture(a), a, b, "new", &opts).unwrap();
    // A check flipped from pass to fail in NEW.
    let Document::Run(mut flipped) = report() else { unreachable!() };
    let case = flipped.suites[0].cases.iter_mut().find(|c| c.name == "clone3/host/none").unwrap();
    let check = case.runs[0].checks.iter_mut().find(|c| c.check.name() == "uts/hostname").unwrap();
    check.verdict = Verdict::Fail {
        expected: "isolated".into(),
        observed: "the host's hostname".into(),
        evidence: "uname -n".into(),
    };
    let c = run("report.json", &Document::Run(flipped));
    assert_eq!(c.exit_code(), 1);
    assert!(c.to_text().contains("clone3/host/none") && c.to_text().contains("uts/hostname"));
    insta::assert_snapshot!("compare_flipped_text", c.to_text());
    insta::assert_snapshot!("compare_flipped_markdown", c.to_markdown());

    let same = run("report.json", &report());
    assert_eq!(same.exit_code(), 0, "{}", same.to_text());

    let bench = run("bench-base.json", &fixture("bench-new.json"));
    assert_eq!(bench.exit_code(), 1);
    insta::assert_snapshot!("compare_bench_text", bench.to_text());
    insta::assert_snapshot!("compare_bench_markdown", bench.to_markdown());

    let other = run("bench-base.json", &fixture("bench-other-machine.json"));
    assert_eq!(other.exit_code(), 0, "ratios to calibration absorb a uniformly slower machine");
    insta::assert_snapshot!("compare_other_machine_text", other.to_text());
}

#[test]
fn compare_refuses_mismatched_fingerprints_unless_forced() {
    let Document::Run(mut other) = report() else { unreachable!() };
    other.fingerprint.user.euid = 1000;
    let other = Document::Run(other);
    let c = compare(&report(), "base", &other, "new", &CompareOptions::default()).unwrap();
    assert_eq!(c.exit_code(), 2);
    assert!(c.to_text().contains("euid"), "{}", c.to_text());
    let forced = compare(&report(), "base", &other, "new", &CompareOptions { force: true, ..Default::default() });
    assert_eq!(forced.unwrap().exit_code(), 0);
    assert!(compare(&report(), "base", &fixture("bench-base.json"), "new", &CompareOptions::default()).is_err());
}

#[test]
fn committed_schemas_match_the_types() {
    for (file, schema) in
        [("report.schema.json", schema::report()), ("bench-summary.schema.json", schema::bench_summary())]
    {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema").join(file);
        let generated = schema::to_committed_text(&schema);
        if std::env::var_os("ISOPROBE_UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date: regenerate it with ISOPROBE_UPDATE_SCHEMA=1 cargo test -p isoprobe-reports",
            path.display()
        );
    }
}

#[test]
fn bad_input_names_the_file_and_the_position() {
    let text = std::fs::read_to_string(fixture_path("report.json")).unwrap();
    let cut = &text[..text.len() / 2];
    let e = parse("cut.json", cut).unwrap_err();
    assert!(matches!(e, LoadError::Parse { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("read cut.json: line ") && msg.contains("cut short"), "{msg}");

    let corrupt = text.replacen("\"runs\": [", "\"runs\": [}", 1);
    let msg = parse("corrupt.json", &corrupt).unwrap_err().to_string();
    assert!(msg.contains("corrupt.json: line ") && msg.contains("column"), "{msg}");

    let newer = text.replacen("\"schema_version\": 2", "\"schema_version\": 3", 1);
    let msg = parse("newer.json", &newer).unwrap_err().to_string();
    assert!(msg.contains("newer.json") && msg.contains("schema version 3, newer"), "{msg}");
    // Version 2 only added optional fields: a version 1 report is still read.
    let v1 = text.replacen("\"schema_version\": 2", "\"schema_version\": 1", 1);
    assert!(parse("v1.json", &v1).is_ok());
    let v0 = text.replacen("\"schema_version\": 2", "\"schema_version\": 0", 1);
    let msg = parse("v0.json", &v0).unwrap_err().to_string();
    assert!(msg.contains("schema version 0"), "{msg}");

    let wrong_shape = text.replacen("\"duration_ms\": 412.5", "\"duration_ms\": \"x\"", 1);
    let msg = parse("shape.json", &wrong_shape).unwrap_err().to_string();
    assert!(msg.contains("shape.json: line "), "{msg}");

    for (name, t) in [("array.json", "[1, 2]"), ("other.json", "{\"kind\": \"cargo-metadata\", \"schema_version\": 1}")]
    {
        let msg = parse(name, t).unwrap_err().to_string();
        assert!(msg.contains(name) && msg.contains("kind"), "{msg}");
    }
    let missing = load(Path::new("/nonexistent/isoprobe-report.json")).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/isoprobe-report.json"), "{missing}");
}

#[test]
fn new_skips_are_fatal_unless_allowed() {
    let Document::Run(mut skipped) = report() else { unreachable!() };
    let case = skipped.suites[0].cases.iter_mut().find(|c| c.name == "clone3/chroot/pid").unwrap();
    case.runs.clear();
    case.skipped = Some(Skip {
        requirement: "root".into(),
        reason: "chroot(2) takes CAP_SYS_CHROOT (running unprivileged)".into(),
    });
    let new = Document::Run(skipped);
    let strict = compare(&report(), "base", &new, "new", &CompareOptions::default()).unwrap();
    assert_eq!(strict.exit_code(), 1, "{}", strict.to_text());
    assert!(strict.to_text().contains("new skip namespaces/clone3/chroot/pid: case: ran → skipped: root"));
    let lenient = CompareOptions { allow_new_skips: true, ..Default::default() };
    let lenient = compare(&report(), "base", &new, "new", &lenient).unwrap();
    assert_eq!(lenient.exit_code(), 0, "{}", lenient.to_text());
    assert!(lenient.to_text().contains("allowed: 1 new skips (--allow-new-skips)"), "{}", lenient.to_text());
}

#[test]
fn the_kernel_gate_compares_across_cgroup_layouts_and_still_catches_regressions() {
    use isoprobe_reports::record::CgroupLayout;
    let Document::Run(mut vm) = report() else { unreachable!() };
    assert_eq!(vm.fingerprint.cgroup.layout, CgroupLayout::Hybrid, "the fixture is a hybrid host");
    vm.fingerprint.cgroup.layout = CgroupLayout::V2;
    vm.fingerprint.kernel.release = "6.12.117+deb12-cloud-amd64".into();
    let plain = compare(&report(), "host", &Document::Run(vm.clone()), "vm", &CompareOptions::default()).unwrap();
    assert_eq!(plain.exit_code(), 2, "{}", plain.to_text());
    let gate = CompareOptions { kernel_gate: true, ..Default::default() };
    let same = compare(&report(), "host", &Document::Run(vm.clone()), "vm", &gate).unwrap();
    assert_eq!(same.exit_code(), 0, "{}", same.to_text());
    let text = same.to_text();
    assert!(text.contains("note: cgroup layouts differ") && text.contains("kernel gate"), "{text}");
    assert!(text.contains("kernel ") && text.contains("6.12.117+deb12-cloud-amd64"), "{text}");
    // Other incompatibilities still refuse the comparison.
    let mut unprivileged = vm.clone();
    unprivileged.fingerprint.user.euid = 1000;
    let refused = compare(&report(), "host", &Document::Run(unprivileged), "vm", &gate).unwrap();
    assert_eq!(refused.exit_code(), 2, "{}", refused.to_text());
    // A check that passed on BASE and fails on NEW is a regression across layouts too.
    let case = vm.suites[0].cases.iter_mut().find(|c| c.name == "clone3/host/none").unwrap();
    case.runs.clear();
    case.error = Some("launch: clone3: ENOSPC (user.max_net_namespaces)".into());
    let regressed = compare(&report(), "host", &Document::Run(vm), "vm", &gate).unwrap();
    assert_eq!(regressed.exit_code(), 1, "{}", regressed.to_text());
    assert!(
        regressed.to_text().contains("REGRESSION namespaces/clone3/host/none: case: ran → error"),
        "{}",
        regressed.to_text()
    );
}

/// The fixture report with `bench` attached after `edit`.
fn report_with(edit: impl FnOnce(&mut isoprobe_reports::BenchSummary)) -> Document {
    let (Document::Run(mut r), Document::Bench(mut b)) = (report(), fixture("bench-base.json")) else {
        panic!("fixture kinds")
    };
    edit(&mut b);
    r.bench = Some(*b);
    Document::Run(r)
}

fn scale_case(b: &mut isoprobe_reports::BenchSummary, group: &str, id: &str, by: f64) {
    let c = b.cases.iter_mut().find(|c| c.group == group && c.id == id).unwrap();
    c.median_ns *= by;
    c.ci_low_ns *= by;
    c.ci_high_ns *= by;
}

#[test]
fn the_kernel_gate_measures_its_latency_threshold_from_how_far_calibrations_move_apart() {
    use isoprobe_reports::compare::Basis;
    let base = report_with(|_| {});
    // Between the runs, fork-exec became 3× slower while getpid stayed: timing noise of 3× in
    // this pair of runs (or a kernel change to fork, which the gate then cannot tell from noise).
    let noisy = |clone3_net: f64| {
        report_with(|b| {
            *b.calibration.get_mut("fork-exec").unwrap() *= 3.0;
            scale_case(b, "clone3", "net", clone3_net);
        })
    };
    let gate = CompareOptions { kernel_gate: true, basis: Basis::Calibration, ..Default::default() };
    let plain = CompareOptions { basis: Basis::Calibration, ..Default::default() };
    // 2× slower than before: a regression at ±10%, not beyond the 3× measured in the job.
    let c = compare(&base, "base", &noisy(2.0 * 3.0), "new", &plain).unwrap();
    assert_eq!(c.exit_code(), 1, "{}", c.to_text());
    let c = compare(&base, "base", &noisy(2.0 * 3.0), "new", &gate).unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.to_text());
    let text = c.to_text();
    assert!(text.contains("latency threshold measured in this job: ±200%"), "{text}");
    assert!(text.contains("fork-exec") && text.contains("getpid"), "{text}");
    // 10× slower against every calibration: beyond the measured noise, a regression.
    let c = compare(&base, "base", &noisy(10.0 * 3.0), "new", &gate).unwrap();
    assert_eq!(c.exit_code(), 1, "{}", c.to_text());
    assert!(c.to_text().contains("REGRESSION clone3/net"), "{}", c.to_text());
    // Under QEMU's TCG emulator the same regression is shown, and does not fail the gate.
    let Document::Run(mut tcg) = noisy(10.0 * 3.0) else { unreachable!() };
    tcg.fingerprint.hypervisor.vendor = Some("qemu-tcg".into());
    let c = compare(&base, "base", &Document::Run(tcg), "new", &gate).unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.to_text());
    assert_eq!((c.bench_regressions(), c.gated_bench_regressions()), (1, 0));
    assert!(c.to_text().contains("latency not gated: NEW ran under QEMU's TCG emulator"), "{}", c.to_text());
    // Calibrations that agree leave the threshold as given.
    let quiet = report_with(|b| scale_case(b, "clone3", "net", 2.0));
    let c = compare(&base, "base", &quiet, "new", &gate).unwrap();
    assert_eq!(c.exit_code(), 1, "{}", c.to_text());
    assert!(!c.to_text().contains("measured in this job"), "{}", c.to_text());
}

#[test]
fn a_benchmark_of_one_sample_is_never_judged() {
    let one = |by: f64| {
        report_with(|b| {
            let c = b.cases.iter_mut().find(|c| c.group == "setns" && c.id == "net").unwrap();
            c.samples = 1;
            (c.ci_low_ns, c.ci_high_ns) = (c.median_ns, c.median_ns);
            scale_case(b, "setns", "net", by);
        })
    };
    let c = compare(&one(1.0), "base", &one(5.0), "new", &CompareOptions::default()).unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.to_text());
    assert!(c.to_text().contains("inconclusive setns/net"), "{}", c.to_text());
}

#[test]
fn a_limit_that_stops_being_enforced_is_a_regression() {
    use isoprobe_reports::record::{LimitCheck, LimitResult};
    let with_memory = |verdict: Verdict| {
        let Document::Run(mut r) = report() else { unreachable!() };
        let case = r.suites[0].cases.iter_mut().find(|c| c.name == "clone3/host/none").unwrap();
        case.runs[0].limits.push(LimitResult { check: LimitCheck::Memory, verdict });
        Document::Run(r)
    };
    let enforced = with_memory(Verdict::Pass {
        expected: "OOM kill at 64 MiB".into(),
        observed: "killed by SIGKILL after touching 63.00 MiB".into(),
        evidence: "peak 64.00 MiB".into(),
    });
    let ignored = with_memory(Verdict::Fail {
        expected: "OOM kill at 64 MiB".into(),
        observed: "exit 0 after touching 192.00 MiB".into(),
        evidence: "OOM kills 0".into(),
    });
    let c = compare(&enforced, "base", &ignored, "new", &CompareOptions::default()).unwrap();
    assert_eq!(c.exit_code(), 1, "{}", c.to_text());
    assert!(
        c.to_text().contains("REGRESSION namespaces/clone3/host/none: limit/memory/oom-at-max: pass"),
        "{}",
        c.to_text()
    );
    let same = compare(&enforced, "base", &enforced, "new", &CompareOptions::default()).unwrap();
    assert_eq!(same.exit_code(), 0, "{}", same.to_text());
}

#[test]
fn a_case_contended_on_one_side_only_is_never_judged_and_the_reports_say_why() {
    let mark = |b: &mut isoprobe_reports::BenchSummary, contended: bool| {
        let c = b.cases.iter_mut().find(|c| c.group == "clone3" && c.id == "pid").unwrap();
        (c.slow_samples, c.contended) = (40, contended);
    };
    let clean = report_with(|b| mark(b, false));
    // Twice as slow, as a contended CPU reads.
    let contended = report_with(|b| {
        mark(b, true);
        scale_case(b, "clone3", "pid", 2.0);
    });
    let c = compare(&clean, "base", &contended, "new", &CompareOptions::default()).unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.to_text());
    let text = c.to_text();
    assert!(text.contains("inconclusive clone3/pid"), "{text}");
    assert!(text.contains("contended CPU") && text.contains("NEW 1"), "{text}");
    // The same slowdown with both sides clean is a regression: the mark is what made it inconclusive.
    let slow = report_with(|b| {
        mark(b, false);
        scale_case(b, "clone3", "pid", 2.0);
    });
    assert_eq!(compare(&clean, "base", &slow, "new", &CompareOptions::default()).unwrap().exit_code(), 1);

    let Document::Run(r) = contended else { unreachable!() };
    let bench = Document::Bench(Box::new(r.bench.unwrap()));
    let md = render(&bench, Format::Markdown).unwrap();
    assert!(md.contains("⚠ contended"), "{md}");
    assert!(md.contains("Slow samples: taken while the benchmark CPU ran slow"), "{md}");
    let Document::Run(r) = clean else { unreachable!() };
    let html = render(&Document::Bench(Box::new(r.bench.unwrap())), Format::Html).unwrap();
    assert!(html.contains("(+40 slow left out)"), "{html}");
}

/// The fixture report with phases recorded in some cases (milliseconds): three clone3 cases on
/// the host's root, one in a chroot, and a skipped and an errored case whose phases must not
/// count.
fn report_with_phases() -> Document {
    use isoprobe_reports::record::Phases;
    use std::time::Duration;
    let Document::Run(mut r) = report() else { unreachable!() };
    let us = |ms: f64| Duration::from_micros((ms * 1e3) as u64);
    let timed = |spawn: f64, init: f64, teardown: f64| {
        Phases::from_iter(
            [("spawn", spawn), ("init", init), ("teardown", teardown)].map(|(p, v)| (p.to_owned(), us(v))),
        )
    };
    for c in &mut r.suites[0].cases {
        let (phases, duration) = match c.name.as_str() {
            "clone3/host/none" => (timed(1.0, 2.0, 0.5), 4.0),
            "clone3/host/pid" => (timed(3.0, 6.0, 0.5), 12.0),
            "clone3/host/pid+user" => (timed(2.0, 4.0, 1.5), 8.0),
            "clone3/chroot/pid" => (timed(10.0, 1.0, 1.0), 20.0),
            // Skipped and errored: left out of the medians.
            "clone3/host/user" => (timed(100.0, 100.0, 100.0), 300.0),
            "setns-pidfd/host/user" => (timed(100.0, 100.0, 100.0), 300.0),
            _ => continue,
        };
        (c.phases, c.duration) = (phases, us(duration));
    }
    Document::Run(r)
}

#[test]
fn the_report_shows_where_a_case_s_time_goes() {
    let md = render(&report_with_phases(), Format::Markdown).unwrap();
    let section = md.split("### Where a case's time goes").nth(1).unwrap_or_else(|| panic!("{md}"));
    // On the host's root: spawn 1, 3, 2; init 2, 6, 4; teardown 0.5, 0.5, 1.5; cases 4, 12, 8 ms.
    // Medians 2, 4, 0.5 of a median case of 8: 25%, 50%, 6%.
    for line in [
        "| suite | launcher | rootfs | cases | case | spawn | init | teardown |",
        "| namespaces | clone3 | host | 3 | 8.00 | 2.00 (25%) | 4.00 (50%) | 0.500 (6%) |",
        "| namespaces | clone3 | chroot | 1 | 20.0 | 10.0 (50%) | 1.00 (5%) | 1.00 (5%) |",
        "- `spawn`: the launcher's start, up to the probe running in its container",
    ] {
        assert!(section.lines().any(|l| l.starts_with(line)), "no line {line:?} in\n{section}");
    }
    assert!(!section.contains("setns-pidfd"), "the errored case is left out:\n{section}");
    assert!(!section.contains("| plan"), "so is the skipped one:\n{section}");

    let html = render(&report_with_phases(), Format::Html).unwrap();
    let section = html.split("<section id=\"phases\">").nth(1).unwrap_or_else(|| panic!("{html}"));
    let section = section.split("</section>").next().unwrap();
    assert!(section.contains("<title>Median of each phase</title>"), "{section}");
    // The axis runs to 20 ms (the chroot case) over 420 px: the 2 ms median of spawn is 42 px.
    assert!(
        section.contains(
            r##"width="42.0" height="14" fill="#d9822b"><title>namespaces · clone3 · host: spawn 2.00 ms (25% of the median case)</title>"##
        ),
        "{section}"
    );
    assert!(section.contains("<title>namespaces · clone3 · chroot: median case 20.0 ms</title>"), "{section}");
    assert!(section.contains("<td class=\"n\">0.500 (6%)</td>"), "{section}");
    // Reports without phases render as before: no section at all.
    assert!(!render(&report(), Format::Markdown).unwrap().contains("Where a case's time goes"));
    assert!(!render(&report(), Format::Html).unwrap().contains("id=\"phases\""));
}

fn with_overhead(ratios: &[(&str, f64)]) -> Document {
    report_with(|b| {
        b.harness_overhead = ratios
            .iter()
            .map(|(set, r)| isoprobe_reports::bench::HarnessOverhead {
                set: (*set).into(),
                ratio: *r,
                ci_low: r * 0.98,
                ci_high: r * 1.02,
                samples: 100,
                contended: false,
            })
            .collect()
    })
}

#[test]
fn a_higher_harness_overhead_is_a_regression_and_an_old_summary_is_not_judged() {
    let base = with_overhead(&[("none", 35.0), ("all", 5.0)]);
    let c = compare(&base, "base", &with_overhead(&[("none", 42.0), ("all", 5.1)]), "new", &CompareOptions::default())
        .unwrap();
    assert_eq!(c.exit_code(), 1, "{}", c.to_text());
    let text = c.to_text();
    for needle in [
        "harness overhead (container/harness_case over container/native_spawn of the same set, within each run), threshold ±10%:",
        "  REGRESSION none: 35.0× → 42.0× (+20.0%, interval +15.3% … +24.9%)",
        "  unchanged all: 5.00× → 5.10× (+2.0%, interval -2.0% … +6.2%)",
        "result: REGRESSION: 1 harness overhead regressions (exit 1)",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    let md = c.to_markdown();
    assert!(md.contains("| `none` | 35.0× | 42.0× | +20.0% | +15.3% … +24.9% | REGRESSION |"), "{md}");
    // A summary from before the ratio was kept: compared, the overhead not judged, and said so.
    let c = compare(&report_with(|_| {}), "base", &with_overhead(&[("none", 99.0)]), "new", &CompareOptions::default())
        .unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.to_text());
    assert!(c.to_text().contains("  not judged: BASE carries no harness-overhead ratio"), "{}", c.to_text());
    assert!(c.to_markdown().contains("- not judged: BASE carries no harness-overhead ratio"), "{}", c.to_markdown());
    // Under TCG in the kernel gate it is shown and does not fail.
    let Document::Run(mut tcg) = with_overhead(&[("none", 70.0), ("all", 5.0)]) else { unreachable!() };
    tcg.fingerprint.hypervisor.vendor = Some("qemu-tcg".into());
    let gate = CompareOptions { kernel_gate: true, ..Default::default() };
    let c = compare(&base, "base", &Document::Run(tcg), "new", &gate).unwrap();
    assert_eq!((c.exit_code(), c.overhead_regressions(), c.gated_overhead_regressions()), (0, 1, 0), "{}", c.to_text());
    // The summary's own rendering names the ratios.
    let Document::Run(r) = base else { unreachable!() };
    let md = render(&Document::Bench(Box::new(r.bench.unwrap())), Format::Markdown).unwrap();
    assert!(md.contains("`none` 35.0× (34.3× – 35.7×) · `all` 5.00× (4.90× – 5.10×)"), "{md}");
}

#[test]
fn the_overhead_line_gives_the_probe_start_share_where_it_was_measured() {
    let case = |id: &str, median: f64| isoprobe_reports::bench::BenchCase {
        group: "container".into(),
        id: id.into(),
        median_ns: median,
        ci_low_ns: median,
        ci_high_ns: median,
        cpu_ns: None,
        samples: 100,
        slow_samples: 0,
        contended: false,
        ratios: Default::default(),
    };
    let Document::Run(mut r) = with_overhead(&[("none", 20.0), ("all", 4.5)]) else { unreachable!() };
    let mut b = r.bench.take().unwrap();
    b.cases.extend([case("harness_case/none", 2_400_000.0), case("probe_start/none", 552_000.0)]);
    let doc = Document::Bench(Box::new(b));
    let md = render(&doc, Format::Markdown).unwrap();
    assert!(
        md.contains(
            "`none` 20.0× (19.6× – 20.4×), of which the probe's own start 23% of the case · `all` 4.50× (4.41× – 4.59×)"
        ),
        "{md}"
    );
    let html = render(&doc, Format::Html).unwrap();
    assert!(html.contains("<code>none</code> 20.0× (19.6× – 20.4×), of which the probe&#39;s own start 23%"), "{html}");
}
