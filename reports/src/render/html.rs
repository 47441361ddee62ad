//! A self-contained HTML page: inline CSS, inline SVG, no scripts and nothing fetched, so it
//! reads the same from a CI artifact, an email attachment or a file:// URL.
//!
//! Sections (each a `<section id=…>`, which the headless-Chromium check looks for): `summary`,
//! `failures`, `matrix` (the colour grid: namespace combination × check, one table per launcher
//! and rootfs mode), `phases` (where a case's time goes: stacked bars of the phases' medians and
//! their numbers; only when the cases recorded phases), `skips`, `environment`, and `benchmarks`
//! (SVG charts with a table of the numbers under each).
//!
//! A `--launcher` run adds `launchers` (a header per launcher: tool, version, capabilities),
//! `conformance` (the launchers side by side: namespace set and rootfs × launcher; an explained
//! cell carries a tooltip and a numbered note naming the check and the source, a skip its reason),
//! `launcher-limits` (the limits each launcher enforces) and `start-latency` (measured in the run,
//! with the ratio to native clone3).

use std::fmt::Write;

use super::escape::xml;
use super::svg;
use super::units;
use crate::bench::BenchSummary;
use crate::breakdown::phase_meaning;
use crate::conformance::{LauncherLimits, Notes, cell_text};
use crate::model::{CaseStatus, Report, worst_verdict};
use crate::record::{CaseOutcome, LatencyResult, Role, Verdict, phase_rank};

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; }
td, th { padding: 2px 8px; border: 1px solid #ddd; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: bold; }
.verdict.ok { background: #2e7d32; } .verdict.bad { background: #c62828; }
.muted { color: #666; }
code { font: 12px ui-monospace, monospace; }
table.grid { font-size: 11px; }
table.grid td, table.grid th { border: 1px solid #fff; padding: 0; }
table.grid td.c { width: 12px; height: 14px; }
table.grid th.k { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; padding: 4px 0; height: 11em; white-space: nowrap; }
table.grid th.row { text-align: right; padding-right: 6px; font-weight: normal; white-space: nowrap; }
td.pi { background: #1b7a3a; } td.ps { background: #8fd19e; } td.p { background: #49a861; }
td.x2 { background: #e0b800; } td.f { background: #d32f2f; } td.e { background: #f08c00; } td.s { background: #c8c8c8; } td.x { background: #f4f4f4; }
td.wide { padding: 0 6px !important; color: #333; height: 14px; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 4px; }
table.conf td.cs { text-align: center; white-space: nowrap; }
td.cs.pass { background: #c8e6c9; } td.cs.explained { background: #fff3c4; } td.cs.fail { background: #ffcdd2; }
td.cs.error { background: #ffe0b2; } td.cs.skip { background: #eeeeee; color: #555; } td.cs.none { color: #aaa; }
ol.notes { font-size: 12px; } ol.notes li { margin: 2px 0; }
svg.chart { display: block; margin: .6em 0; max-width: 100%; height: auto; }
"#;

pub fn render(report: Option<&Report>, bench: Option<&BenchSummary>) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let title = match (report, bench) {
        (Some(r), _) => format!("isoprobe report: {}", r.fingerprint.kernel.release),
        (None, Some(b)) => format!("isoprobe benchmarks: {}", b.fingerprint.kernel.release),
        (None, None) => "isoprobe report".to_owned(),
    };
    let _ = writeln!(out, "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>", xml(&title));
    let _ = writeln!(out, "<h1>{}</h1>", xml(&title));
    if let Some(r) = report {
        summary(&mut out, r);
        failures(&mut out, r);
        launchers(&mut out, r);
        matrix(&mut out, r);
        phases(&mut out, r);
        defects(&mut out, r);
        skips(&mut out, r);
    } else if let Some(b) = bench {
        let _ = writeln!(
            out,
            "<section id=\"summary\">\n<h2>Summary</h2>\n<p>{} benchmark cases{}, {} calibration cases.</p>\n</section>",
            b.cases.len(),
            if b.quick { " (quick settings)" } else { "" },
            b.calibration.len()
        );
    }
    let fp = report.map(|r| &r.fingerprint).or(bench.map(|b| &b.fingerprint));
    if let Some(fp) = fp {
        out.push_str("<section id=\"environment\">\n<h2>Environment</h2>\n<table>\n");
        for (k, v) in fp.properties() {
            let _ = writeln!(out, "<tr><th><code>{}</code></th><td>{}</td></tr>", xml(&k), xml(&v));
        }
        out.push_str("</table>\n</section>\n");
    }
    match bench {
        Some(b) => benchmarks(&mut out, b),
        None => out.push_str(
            "<section id=\"benchmarks\">\n<h2>Benchmarks</h2>\n<p>No benchmark summary is attached to this report \
             (<code>isoprobe report REPORT target/isoprobe/bench-summary.json</code> attaches one).</p>\n</section>\n",
        ),
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn summary(out: &mut String, r: &Report) {
    let c = r.counts();
    let (class, word) = if r.passed() { ("ok", "PASSED") } else { ("bad", "FAILED") };
    let _ = writeln!(
        out,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<p><span class=\"verdict {class}\">{word}</span> {} of {} cases, \
         {} checks judged ({} failed). Started {} by isoprobe {}, took {}.</p>",
        xml(&c.sentence()),
        c.cases,
        c.checks.pass + c.checks.fail + c.checks.error,
        c.checks.fail + c.checks.error,
        xml(&r.started_at),
        xml(&r.isoprobe_version),
        units::duration_ms(r.duration_ms)
    );
    let _ = writeln!(out, "<p class=\"muted\">Command: <code>{}</code></p>", xml(&r.command.join(" ")));
    out.push_str("<table>\n<tr><th>suite</th><th>launcher</th><th>rootfs</th><th>cases</th><th>pass</th><th>explained</th><th>fail</th><th>skip</th><th>error</th><th>time</th></tr>\n");
    for g in r.groups() {
        let k = g.counts;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            xml(&g.suite),
            xml(&g.launcher),
            xml(&g.rootfs),
            k.cases,
            k.pass,
            k.explained,
            k.fail,
            k.skip,
            k.error,
            units::duration(g.duration)
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn failures(out: &mut String, r: &Report) {
    let f = r.failures();
    let _ = writeln!(out, "<section id=\"failures\">\n<h2>Failures ({})</h2>", f.len());
    if f.is_empty() {
        out.push_str("<p>None: every judged check observed what its spec promised.</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>case</th><th>check</th><th>verdict</th><th>detail</th></tr>\n");
        for x in &f {
            let role = x.role_suffix();
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code>{role}</td><td>{}</td><td>{}</td></tr>",
                xml(&x.case),
                xml(&x.check),
                x.label,
                xml(&x.detail)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

/// The CSS class of a grid cell.
fn cell_class(v: Option<&Verdict>) -> &'static str {
    match v {
        None => "x",
        Some(Verdict::Pass { expected, .. }) => match expected.as_str() {
            "isolated" => "pi",
            "shared" => "ps",
            _ => "p",
        },
        Some(Verdict::Fail { .. }) => "f",
        Some(Verdict::Error { .. }) => "e",
        Some(Verdict::Skip { .. }) => "s",
    }
}

fn matrix(out: &mut String, r: &Report) {
    let checks = r.checks();
    out.push_str("<section id=\"matrix\">\n<h2>Isolation matrix</h2>\n");
    out.push_str(
        "<p class=\"legend\"><span><i style=\"background:#1b7a3a\"></i>isolated, as promised</span>\
         <span><i style=\"background:#8fd19e\"></i>shared, as promised (positive control)</span>\
         <span><i style=\"background:#49a861\"></i>value as promised</span>\
         <span><i style=\"background:#e0b800\"></i>failed as an explained difference of the launcher's tool</span>\
         <span><i style=\"background:#d32f2f\"></i>failed</span><span><i style=\"background:#f08c00\"></i>error</span>\
         <span><i style=\"background:#c8c8c8\"></i>skipped</span><span><i style=\"background:#f4f4f4\"></i>not run</span></p>\n\
         <p class=\"muted\">Rows: the namespaces a case creates; columns: checks. Hover a cell for what was expected \
         and observed.</p>\n",
    );
    for g in r.groups() {
        let _ = writeln!(
            out,
            "<h3>{} · {} · {}</h3>\n<table class=\"grid\">\n<tr><th></th>",
            xml(&g.suite),
            xml(&g.launcher),
            xml(&g.rootfs)
        );
        for c in &checks {
            let _ = write!(out, "<th class=\"k\" title=\"{}\">{}</th>", xml(c.description()), xml(c.name()));
        }
        out.push_str("</tr>\n");
        let cases: Vec<(&crate::model::Suite, &CaseOutcome)> = r
            .cases()
            .filter(|(s, c)| {
                s.name == g.suite && c.spec.launcher.name() == g.launcher && c.spec.rootfs.name() == g.rootfs
            })
            .collect();
        for (suite, case) in cases {
            let assessment = r.assessment(suite, case);
            let _ = write!(
                out,
                "<tr><th class=\"row\" title=\"{0}\">{1}</th>",
                xml(&case.name),
                xml(&case.spec.namespaces.to_string())
            );
            match (r.status(suite, case), &case.error, &case.skipped) {
                (CaseStatus::Error, Some(e), _) => {
                    let _ = write!(out, "<td class=\"e wide\" colspan=\"{}\">error: {}</td>", checks.len(), xml(e));
                }
                (status, _, Some(s)) => {
                    let class = if status == CaseStatus::Fail { "f" } else { "s" };
                    let _ = write!(
                        out,
                        "<td class=\"{class} wide\" colspan=\"{}\">skipped: {}: {}</td>",
                        checks.len(),
                        xml(&s.requirement),
                        xml(&s.reason)
                    );
                }
                _ => {
                    for c in &checks {
                        let worst = worst_verdict(case, *c);
                        let explained = worst.and_then(|(role, _)| assessment?.explanation(role, *c));
                        let class = if explained.is_some() { "x2" } else { cell_class(worst.map(|(_, v)| v)) };
                        match worst {
                            Some((_, v)) if explained.is_some() => {
                                let e = explained.expect("checked");
                                let _ = write!(
                                    out,
                                    "<td class=\"c {class}\" title=\"{} explained difference: {} (source: {}); {}\"></td>",
                                    xml(c.name()),
                                    xml(&e.observed),
                                    xml(&e.source),
                                    xml(&crate::model::verdict_detail(v))
                                );
                            }
                            Some((role, v)) if !v.is_pass() => {
                                let _ = write!(
                                    out,
                                    "<td class=\"c {class}\" title=\"{} {}{}: {}\"></td>",
                                    xml(c.name()),
                                    v.label(),
                                    if role == Role::Joiner { " (joiner)" } else { "" },
                                    xml(&crate::model::verdict_detail(v))
                                );
                            }
                            _ => {
                                let _ = write!(out, "<td class=\"c {class}\"></td>");
                            }
                        }
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

/// "Where a case's time goes" (see [`crate::breakdown`]): the medians as stacked bars, each
/// with the median case marked across it, then the numbers. Absent when no case recorded phases.
fn phases(out: &mut String, r: &Report) {
    let Some(b) = r.phase_breakdown() else { return };
    let _ = writeln!(
        out,
        "<section id=\"phases\">\n<h2>Where a case's time goes</h2>\n<p class=\"muted\">{} The black line \
         across each bar marks the median case.</p>",
        xml(crate::breakdown::EXPLANATION)
    );
    let stacks: Vec<svg::Stack> = b
        .rows
        .iter()
        .map(|row| svg::Stack {
            label: row.label(),
            segments: row.medians.iter().map(|d| d.as_nanos() as f64).collect(),
            marker: row.case.as_nanos() as f64,
        })
        .collect();
    out.push_str("<figure>\n");
    // A phase keeps its colour whichever phases a report has.
    let series: Vec<(String, usize)> = b.phases.iter().map(|p| (p.clone(), phase_rank(p))).collect();
    out.push_str(&svg::draw_stacked("Median of each phase", &series, &stacks, "median case"));
    out.push_str(
        "</figure>\n<table>\n<tr><th>suite</th><th>launcher</th><th>rootfs</th><th>cases</th><th>case (ms)</th>",
    );
    for p in &b.phases {
        let _ = write!(out, "<th title=\"{}\">{}</th>", xml(phase_meaning(p).unwrap_or("")), xml(p));
    }
    out.push_str("</tr>\n");
    for row in &b.rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            xml(&row.suite),
            xml(&row.launcher),
            xml(&row.rootfs),
            row.cases,
            units::ms(row.case)
        );
        for (i, m) in row.medians.iter().enumerate() {
            let _ = write!(out, "<td class=\"n\">{} ({:.0}%)</td>", units::ms(*m), row.share(i) * 100.0);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<ul class=\"muted\">\n");
    for p in &b.phases {
        let _ = writeln!(
            out,
            "<li><code>{}</code>: {}</li>",
            xml(p),
            xml(phase_meaning(p).unwrap_or("recorded by a newer harness"))
        );
    }
    out.push_str("</ul>\n</section>\n");
}

/// The known tool defects the run's starts hit; no section when none.
fn defects(out: &mut String, r: &Report) {
    let d = r.defect_hits();
    if d.is_empty() {
        return;
    }
    out.push_str(
        "<section id=\"defects\">\n<h2>Known tool defects hit (each failed start was made again)</h2>\n<ul>\n",
    );
    for t in &d {
        let _ = writeln!(out, "<li>{}</li>", xml(&t.line()));
    }
    out.push_str("</ul>\n</section>\n");
}

fn skips(out: &mut String, r: &Report) {
    let s = r.skip_reasons();
    let _ = writeln!(out, "<section id=\"skips\">\n<h2>Skipped cases ({})</h2>", s.values().sum::<usize>());
    if s.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>requirement</th><th>reason</th><th>cases</th></tr>\n");
        for ((req, reason), n) in &s {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{n}</td></tr>",
                xml(req),
                xml(reason)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn benchmarks(out: &mut String, b: &BenchSummary) {
    out.push_str("<section id=\"benchmarks\">\n<h2>Benchmarks</h2>\n");
    if !b.calibration.is_empty() {
        out.push_str("<p>Calibration: ");
        let parts: Vec<String> =
            b.calibration.iter().map(|(k, v)| format!("<code>{}</code> {}", xml(k), xml(&units::ns(*v)))).collect();
        out.push_str(&parts.join(" · "));
        out.push_str("</p>\n");
    }
    for chart in svg::charts(b) {
        out.push_str("<figure>\n");
        out.push_str(&svg::draw(&chart));
        out.push_str("</figure>\n");
    }
    out.push_str("<h3>All results</h3>\n<table>\n<tr><th>group</th><th>id</th><th>median</th><th>CI</th><th>CPU</th><th>samples</th>");
    for c in b.calibration.keys() {
        let _ = write!(out, "<th>× {}</th>", xml(c));
    }
    out.push_str("</tr>\n");
    for c in &b.cases {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} – {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            xml(&c.group),
            xml(&c.id),
            xml(&units::ns(c.median_ns)),
            xml(&units::ns(c.ci_low_ns)),
            xml(&units::ns(c.ci_high_ns)),
            xml(&c.cpu_ns.map(units::ns).unwrap_or_else(|| "–".into())),
            xml(&super::markdown::samples_cell(c))
        );
        for cal in b.calibration.keys() {
            let _ = write!(
                out,
                "<td class=\"n\">{}</td>",
                c.ratios.get(cal).map(|r| units::sig3(*r)).unwrap_or_else(|| "–".into())
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if !b.harness_overhead.is_empty() {
        let sets: Vec<String> = b
            .harness_overhead
            .iter()
            .map(|o| format!("<code>{}</code> {}", xml(&o.set), xml(&super::markdown::overhead_with_start(b, o))))
            .collect();
        let _ = writeln!(out, "<p>{}: {}</p>", xml(super::markdown::OVERHEAD_INTRO), sets.join(" · "));
    }
    if b.cases.iter().any(|c| c.slow_samples > 0) {
        let _ = writeln!(out, "<p>{}</p>", xml(crate::bench::SLOW_SAMPLES_NOTE));
    }
    out.push_str("</section>\n");
}

fn launchers(out: &mut String, r: &Report) {
    if r.launchers.is_empty() {
        return;
    }
    out.push_str("<section id=\"launchers\">\n<h2>Launchers</h2>\n<table>\n<tr><th>launcher</th><th>tool</th>");
    let labels: Vec<&str> = r.launchers[0].capabilities.rows().iter().map(|(l, _)| *l).collect();
    for l in &labels {
        let _ = write!(out, "<th>{}</th>", xml(l));
    }
    out.push_str("</tr>\n");
    for h in &r.launchers {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td>", xml(&h.name), xml(&h.tool_text()));
        for (_, v) in h.capabilities.rows() {
            let _ = write!(out, "<td>{}</td>", xml(&v));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    for h in &r.launchers {
        let defaults = r.launcher_defaults(&h.name);
        if !defaults.is_empty() {
            let _ = writeln!(out, "<h3>Documented defaults of {} the oracle judged with</h3>\n<ul>", xml(&h.name));
            for (what, source) in defaults {
                let _ = writeln!(out, "<li>{} <span class=\"muted\">(source: {})</span></li>", xml(what), xml(source));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("</section>\n");

    let table = r.conformance_table();
    let mut notes = Notes::default();
    out.push_str(
        "<section id=\"conformance\">\n<h2>Launchers side by side</h2>\n<p class=\"muted\">Rows: the namespaces a \
         case asks for, and its rootfs mode; columns: launchers. <b>explained</b>: every failure is a documented property \
         of the tool (hover, or see the numbered note, for the check and the source); <b>skip</b>: the launcher cannot \
         express the case (the note says why); –: not in the launcher's matrix.</p>\n<table class=\"conf\">\n\
         <tr><th>namespaces</th><th>rootfs</th>",
    );
    for l in &table.launchers {
        let _ = write!(out, "<th>{}</th>", xml(l));
    }
    out.push_str("</tr>\n");
    for row in &table.rows {
        let _ = write!(
            out,
            "<tr><th class=\"row\">{}</th><td>{}</td>",
            xml(&row.namespaces.to_string()),
            row.rootfs.name()
        );
        for c in &row.cells {
            match c {
                None => out.push_str("<td class=\"cs none\">–</td>"),
                Some(c) => {
                    let (word, note) = cell_text(c);
                    match note {
                        Some(n) => {
                            let i = notes.cite(n.clone());
                            let _ = write!(
                                out,
                                "<td class=\"cs {word}\" title=\"{}: {}\">{word} <sup>{i}</sup></td>",
                                xml(&c.case),
                                xml(&n)
                            );
                        }
                        None => {
                            let _ = write!(out, "<td class=\"cs {word}\" title=\"{}\">{word}</td>", xml(&c.case));
                        }
                    }
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if !notes.0.is_empty() {
        out.push_str("<ol class=\"notes\">\n");
        for n in &notes.0 {
            let _ = writeln!(out, "<li>{}</li>", xml(n));
        }
        out.push_str("</ol>\n");
    }
    out.push_str("</section>\n");

    out.push_str("<section id=\"launcher-limits\">\n<h2>Limits each launcher enforces</h2>\n<ul>\n");
    for (h, limits) in r.launcher_limits() {
        let text = match limits {
            LauncherLimits::CannotExpress => "cannot express cgroup limits".to_owned(),
            LauncherLimits::Cases(cases) if cases.is_empty() => {
                "no limit case run (left out by the selection)".to_owned()
            }
            LauncherLimits::Cases(cases) => limit_counts(&cases),
        };
        let _ = writeln!(out, "<li><b>{}</b>: {}</li>", xml(&h.name), xml(&text));
    }
    out.push_str("</ul>\n");
    let limits = r.limit_table();
    if !limits.rows.is_empty() {
        out.push_str("<table class=\"conf\">\n<tr><th>limit case</th>");
        for l in &limits.launchers {
            let _ = write!(out, "<th>{}</th>", xml(l));
        }
        out.push_str("</tr>\n");
        for (name, cells) in &limits.rows {
            let _ = write!(out, "<tr><th class=\"row\"><code>{}</code></th>", xml(name));
            for c in cells {
                match c {
                    None => out.push_str("<td class=\"cs none\">–</td>"),
                    Some(c) => {
                        let (word, note) = cell_text(c);
                        let _ = write!(
                            out,
                            "<td class=\"cs {word}\" title=\"{}\">{word}</td>",
                            xml(note.as_deref().unwrap_or(&c.case))
                        );
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");

    if let Some(l) = &r.start_latency {
        let _ = writeln!(
            out,
            "<section id=\"start-latency\">\n<h2>Start latency</h2>\n<p>A recorded measurement of this run, not a test: \
             from the launch to the probe's first message, namespaces <code>{}</code>, {} starts per launcher \
             interleaved round-robin across the launchers.</p>\n<table>\n<tr><th>launcher</th><th>case</th>\
             <th>median</th><th>min</th><th>max</th><th>× clone3</th></tr>",
            xml(&l.namespaces.to_string()),
            l.starts
        );
        let base = l.launchers.iter().find(|x| x.launcher == "clone3").and_then(|x| x.result.median_ns());
        for row in &l.launchers {
            let _ = write!(out, "<tr><th>{}</th><td><code>{}</code></td>", xml(&row.launcher), xml(&row.case));
            match &row.result {
                LatencyResult::Measured { median_ns, min_ns, max_ns, .. } => {
                    let ratio = base.map(|b| units::sig3(median_ns / b)).unwrap_or_else(|| "–".into());
                    let _ = write!(
                        out,
                        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{ratio}</td>",
                        xml(&units::ns(*median_ns)),
                        xml(&units::ns(*min_ns)),
                        xml(&units::ns(*max_ns))
                    );
                }
                LatencyResult::Skipped { reason } => {
                    let _ = write!(out, "<td colspan=\"4\">skipped: {}</td>", xml(reason));
                }
                LatencyResult::Error { cause } => {
                    let _ = write!(out, "<td colspan=\"4\">error: {}</td>", xml(cause));
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n</section>\n");
    }
}

/// `78 limit cases: 62 pass, 1 fail, 15 skip`.
fn limit_counts(cases: &[crate::conformance::Cell]) -> String {
    let mut by = std::collections::BTreeMap::<&str, usize>::new();
    for c in cases {
        *by.entry(cell_text(c).0).or_default() += 1;
    }
    let counts: Vec<String> = by.iter().map(|(w, n)| format!("{n} {w}")).collect();
    format!("{} limit cases: {}", cases.len(), counts.join(", "))
}
