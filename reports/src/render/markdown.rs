//! Markdown for a pull-request comment: the verdict in the heading, counts per launcher and rootfs,
//! the failures (capped, so a broken kernel does not produce a comment nobody can post), skips
//! by reason, the environment, and the benchmark table. Long parts fold into `<details>`.
//!
//! A `--launcher` run adds the launchers: a header per launcher (tool, version, capabilities), the
//! launchers side by side (namespace set × launcher, explained differences and skips as
//! footnotes naming the check and the source), the limits each launcher enforces, and the start
//! latencies measured in the run.
//!
//! A run whose cases recorded their phases adds where a case's time goes (the median of each
//! phase per launcher, see [`crate::breakdown`]).

use std::fmt::Write;

use super::escape::{markdown_cell as cell, markdown_code as code};
use super::units;
use crate::bench::{BenchCase, BenchSummary, HarnessOverhead};
use crate::breakdown::phase_meaning;
use crate::conformance::{LauncherLimits, Notes, cell_text};
use crate::model::Report;
use crate::record::LatencyResult;

/// At most this many failures are listed; the rest are counted.
pub const MAX_FAILURES: usize = 50;

pub fn render(report: Option<&Report>, bench: Option<&BenchSummary>) -> String {
    let mut out = String::new();
    if let Some(r) = report {
        run_section(&mut out, r);
    }
    if let Some(b) = bench {
        bench_section(&mut out, b, report.is_none());
    }
    out
}

fn run_section(out: &mut String, r: &Report) {
    let c = r.counts();
    let verdict = if r.passed() { "✅ passed" } else { "❌ failed" };
    let _ = writeln!(
        out,
        "## isoprobe {verdict}: {} ({} cases, {})\n",
        c.sentence(),
        c.cases,
        units::duration_ms(r.duration_ms)
    );
    let fp = &r.fingerprint;
    let _ = writeln!(
        out,
        "Kernel `{}` · {} cgroups · euid {} · {} × {} · hypervisor: {} · started {}\n",
        code(&fp.kernel.release),
        fp.cgroup.layout.name(),
        fp.user.euid,
        fp.cpu.online,
        cell(&fp.cpu.model),
        cell(fp.hypervisor.vendor.as_deref().unwrap_or(if fp.hypervisor.detected { "unknown" } else { "none" })),
        r.started_at
    );
    out.push_str("| suite | launcher | rootfs | cases | pass | explained | fail | skip | error | time |\n");
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for g in r.groups() {
        let k = g.counts;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&g.suite),
            cell(&g.launcher),
            cell(&g.rootfs),
            k.cases,
            k.pass,
            k.explained,
            k.fail,
            k.skip,
            k.error,
            units::duration(g.duration)
        );
    }
    let failures = r.failures();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n### Failures ({})\n", failures.len());
        out.push_str("| case | check | verdict | detail |\n|---|---|---|---|\n");
        for f in failures.iter().take(MAX_FAILURES) {
            let role = f.role_suffix();
            let _ = writeln!(
                out,
                "| `{}` | `{}`{role} | {} | {} |",
                code(&f.case),
                code(&f.check),
                f.label,
                cell(&f.detail)
            );
        }
        if failures.len() > MAX_FAILURES {
            let _ = writeln!(
                out,
                "\n… and {} more; `isoprobe report --format html` shows them all.",
                failures.len() - MAX_FAILURES
            );
        }
    }
    let defects = r.defect_hits();
    if !defects.is_empty() {
        out.push_str("\n### Known tool defects hit (each failed start was made again)\n\n");
        for d in &defects {
            let _ = writeln!(out, "- {}", cell(&d.line()));
        }
    }
    launchers_section(out, r);
    phases_section(out, r);
    let skips = r.skip_reasons();
    if !skips.is_empty() {
        let total: usize = skips.values().sum();
        let _ = writeln!(out, "\n<details><summary>Skipped cases ({total})</summary>\n");
        out.push_str("| requirement | reason | cases |\n|---|---|--:|\n");
        for ((req, reason), n) in &skips {
            let _ = writeln!(out, "| `{}` | {} | {n} |", code(req), cell(reason));
        }
        out.push_str("\n</details>\n");
    }
    out.push_str("\n<details><summary>Environment</summary>\n\n| property | value |\n|---|---|\n");
    for (k, v) in fp.properties() {
        let _ = writeln!(out, "| `{}` | {} |", code(&k), cell(&v));
    }
    out.push_str("\n</details>\n");
}

fn bench_section(out: &mut String, b: &BenchSummary, standalone: bool) {
    if standalone {
        let fp = &b.fingerprint;
        let _ = writeln!(
            out,
            "## isoprobe benchmarks{}: {} cases\n\nKernel `{}` · {} × {} · hypervisor: {}\n",
            if b.quick { " (quick)" } else { "" },
            b.cases.len(),
            code(&fp.kernel.release),
            fp.cpu.online,
            cell(&fp.cpu.model),
            cell(fp.hypervisor.vendor.as_deref().unwrap_or("none"))
        );
    } else {
        let _ = writeln!(out, "\n### Benchmarks{}\n", if b.quick { " (quick)" } else { "" });
    }
    if !b.calibration.is_empty() {
        out.push_str("Calibration: ");
        let parts: Vec<String> =
            b.calibration.iter().map(|(k, v)| format!("`{}` {}", code(k), units::ns(*v))).collect();
        out.push_str(&parts.join(" · "));
        out.push_str("\n\n");
    }
    let cals: Vec<&String> = b.calibration.keys().collect();
    out.push_str("| group | id | median | CI | CPU | samples |");
    for c in &cals {
        let _ = write!(out, " × `{}` |", code(c));
    }
    out.push_str("\n|---|---|--:|--:|--:|--:|");
    out.push_str(&"--:|".repeat(cals.len()));
    out.push('\n');
    for c in &b.cases {
        let _ = write!(
            out,
            "| {} | {} | {} | {} – {} | {} | {} |",
            cell(&c.group),
            cell(&c.id),
            units::ns(c.median_ns),
            units::ns(c.ci_low_ns),
            units::ns(c.ci_high_ns),
            c.cpu_ns.map(units::ns).unwrap_or_else(|| "–".into()),
            samples_cell(c)
        );
        for cal in &cals {
            let _ = write!(out, " {} |", c.ratios.get(*cal).map(|r| units::sig3(*r)).unwrap_or_else(|| "–".into()));
        }
        out.push('\n');
    }
    if !b.harness_overhead.is_empty() {
        let sets: Vec<String> = b
            .harness_overhead
            .iter()
            .map(|o| format!("`{}` {}", code(&o.set), cell(&overhead_with_start(b, o))))
            .collect();
        let _ = writeln!(out, "\n{}: {}", OVERHEAD_INTRO, sets.join(" · "));
    }
    if b.cases.iter().any(|c| c.slow_samples > 0) {
        let _ = writeln!(out, "\n{}", crate::bench::SLOW_SAMPLES_NOTE);
    }
}

/// What the harness-overhead line of a summary is.
pub(crate) const OVERHEAD_INTRO: &str =
    "Harness overhead (one whole harness case over the bare native spawn of the same namespace set, this run)";

/// `35.0× (33.0× – 37.4×)`, and `⚠ contended` when either median read a contended CPU.
pub(crate) fn overhead_text(o: &HarnessOverhead) -> String {
    format!(
        "{}× ({}× – {}×){}",
        units::sig3(o.ratio),
        units::sig3(o.ci_low),
        units::sig3(o.ci_high),
        if o.contended { " ⚠ contended" } else { "" }
    )
}

/// [`overhead_text`], and the share of the case that is the probe's own start where the
/// summary measured it (`container/probe_start/<set>`): how much of the overhead no harness
/// work could take away.
pub(crate) fn overhead_with_start(b: &BenchSummary, o: &HarnessOverhead) -> String {
    match b.probe_start_share(&o.set) {
        Some(share) => {
            format!("{}, of which the probe's own start {:.0}% of the case", overhead_text(o), share * 100.0)
        }
        None => overhead_text(o),
    }
}

/// "Where a case's time goes": per suite, launcher and rootfs mode, the median of
/// each phase in milliseconds with its share of the median case (see [`crate::breakdown`]).
fn phases_section(out: &mut String, r: &Report) {
    let Some(b) = r.phase_breakdown() else { return };
    let _ = writeln!(out, "\n### Where a case's time goes\n\n{}\n", crate::breakdown::EXPLANATION);
    out.push_str("| suite | launcher | rootfs | cases | case |");
    for p in &b.phases {
        let _ = write!(out, " {} |", cell(p));
    }
    out.push_str("\n|---|---|---|--:|--:|");
    out.push_str(&"--:|".repeat(b.phases.len()));
    out.push('\n');
    for row in &b.rows {
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&row.suite),
            cell(&row.launcher),
            cell(&row.rootfs),
            row.cases,
            units::ms(row.case)
        );
        for (i, m) in row.medians.iter().enumerate() {
            let _ = write!(out, " {} ({:.0}%) |", units::ms(*m), row.share(i) * 100.0);
        }
        out.push('\n');
    }
    out.push_str("\n<details><summary>What each phase covers</summary>\n\n");
    for p in &b.phases {
        let _ = writeln!(out, "- `{}`: {}", code(p), phase_meaning(p).unwrap_or("recorded by a newer harness"));
    }
    out.push_str("\n</details>\n");
}

/// The samples an estimate rests on, and the slow-CPU ones left out (or kept: contended).
pub(crate) fn samples_cell(c: &BenchCase) -> String {
    match (c.slow_samples, c.contended) {
        (0, _) => c.samples.to_string(),
        (k, false) => format!("{} (+{k} slow left out)", c.samples),
        (k, true) => format!("{} ({k} slow) ⚠ contended", c.samples),
    }
}

fn launchers_section(out: &mut String, r: &Report) {
    if r.launchers.is_empty() {
        return;
    }
    out.push_str("\n### Launchers\n\n| launcher | tool |");
    let labels: Vec<&str> = r.launchers[0].capabilities.rows().iter().map(|(l, _)| *l).collect();
    for l in &labels {
        let _ = write!(out, " {l} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(labels.len()));
    out.push('\n');
    for h in &r.launchers {
        let _ = write!(out, "| {} | {} |", cell(&h.name), cell(&h.tool_text()));
        for (_, v) in h.capabilities.rows() {
            let _ = write!(out, " {} |", cell(&v));
        }
        out.push('\n');
    }
    for h in &r.launchers {
        let defaults = r.launcher_defaults(&h.name);
        if !defaults.is_empty() {
            let _ = writeln!(out, "\nDocumented defaults of **{}** the oracle judged with:\n", cell(&h.name));
            for (what, source) in defaults {
                let _ = writeln!(out, "- {} (source: {})", cell(what), cell(source));
            }
        }
    }

    let table = r.conformance_table();
    let mut notes = Notes::default();
    out.push_str(
        "\n### Launchers side by side\n\n✅ pass · ⚠️ explained: every failure is a documented property of the tool \
         (the note names the check and the source) · ❌ fail · 💥 error · ⏭ skip (the note says why) · – not in the \
         launcher's matrix\n\n| namespaces | rootfs |",
    );
    for l in &table.launchers {
        let _ = write!(out, " {} |", cell(l));
    }
    out.push_str("\n|---|---|");
    out.push_str(&":-:|".repeat(table.launchers.len()));
    out.push('\n');
    for row in &table.rows {
        let _ = write!(out, "| {} | {} |", row.namespaces, row.rootfs.name());
        for c in &row.cells {
            let text = match c {
                None => "–".to_owned(),
                Some(c) => {
                    let (word, note) = cell_text(c);
                    let icon = match word {
                        "pass" => "✅",
                        "explained" => "⚠️",
                        "fail" => "❌",
                        "error" => "💥",
                        _ => "⏭",
                    };
                    match note {
                        Some(n) => format!("{icon} {word} [^{}]", notes.cite(n)),
                        None => format!("{icon} {word}"),
                    }
                }
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }

    out.push_str("\n### Limits each launcher enforces\n\n| launcher | limit cases |\n|---|---|\n");
    for (h, limits) in r.launcher_limits() {
        let text = match limits {
            LauncherLimits::CannotExpress => "cannot express cgroup limits".to_owned(),
            LauncherLimits::Cases(cases) if cases.is_empty() => "none run (left out by the selection)".to_owned(),
            LauncherLimits::Cases(cases) => {
                let mut by = std::collections::BTreeMap::<&str, usize>::new();
                for c in &cases {
                    *by.entry(cell_text(c).0).or_default() += 1;
                }
                let counts: Vec<String> = by.iter().map(|(w, n)| format!("{n} {w}")).collect();
                let bad: Vec<String> = cases
                    .iter()
                    .filter(|c| !matches!(cell_text(c).0, "pass" | "skip"))
                    .map(|c| format!("`{}` {}", code(&c.case), cell_text(c).0))
                    .collect();
                let mut t = format!("{} cases: {}", cases.len(), counts.join(", "));
                if !bad.is_empty() {
                    t.push_str(&format!(" ({})", bad.join(", ")));
                }
                t
            }
        };
        let _ = writeln!(out, "| {} | {} |", cell(&h.name), cell(&text));
    }
    let limits = r.limit_table();
    if !limits.rows.is_empty() {
        out.push_str("\n<details><summary>Limit cases side by side</summary>\n\n| limit case |");
        for l in &limits.launchers {
            let _ = write!(out, " {} |", cell(l));
        }
        out.push_str("\n|---|");
        out.push_str(&":-:|".repeat(limits.launchers.len()));
        out.push('\n');
        for (name, cells) in &limits.rows {
            let _ = write!(out, "| `{}` |", code(name));
            for c in cells {
                let text = match c {
                    None => "–".to_owned(),
                    Some(c) => match cell_text(c) {
                        (word, Some(n)) => format!("{word} [^{}]", notes.cite(n)),
                        (word, None) => word.to_owned(),
                    },
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        out.push_str("\n</details>\n");
    }

    // The notes of both tables, after them (GitHub renders footnotes at the end of the comment).
    if !notes.0.is_empty() {
        out.push('\n');
        for (i, n) in notes.0.iter().enumerate() {
            let _ = writeln!(out, "[^{}]: {}", i + 1, cell(n));
        }
    }

    if let Some(l) = &r.start_latency {
        let _ = writeln!(
            out,
            "\n### Start latency (measured in this run, not a test)\n\nFrom the launch to the probe's first message, \
             namespaces `{}`; {} starts per launcher, interleaved round-robin across the launchers.\n",
            l.namespaces, l.starts
        );
        out.push_str("| launcher | case | median | min | max | × clone3 |\n|---|---|--:|--:|--:|--:|\n");
        let base = l.launchers.iter().find(|x| x.launcher == "clone3").and_then(|x| x.result.median_ns());
        for row in &l.launchers {
            match &row.result {
                LatencyResult::Measured { median_ns, min_ns, max_ns, .. } => {
                    let ratio = base.map(|b| units::sig3(median_ns / b)).unwrap_or_else(|| "–".into());
                    let _ = writeln!(
                        out,
                        "| {} | `{}` | {} | {} | {} | {ratio} |",
                        cell(&row.launcher),
                        code(&row.case),
                        units::ns(*median_ns),
                        units::ns(*min_ns),
                        units::ns(*max_ns)
                    );
                }
                LatencyResult::Skipped { reason } => {
                    let _ = writeln!(
                        out,
                        "| {} | `{}` | skipped: {} | | | |",
                        cell(&row.launcher),
                        code(&row.case),
                        cell(reason)
                    );
                }
                LatencyResult::Error { cause } => {
                    let _ = writeln!(
                        out,
                        "| {} | `{}` | error: {} | | | |",
                        cell(&row.launcher),
                        code(&row.case),
                        cell(cause)
                    );
                }
            }
        }
    }
}
