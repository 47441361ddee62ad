//! Markdown for a pull-request comment: the verdict in the heading, counts per launcher and rootfs,
//! the failures (capped, so a broken kernel does not produce a comment nobody can post), skips
//! by reason, the environment, and the benchmark table. Long parts fold into `<details>`.

use std::fmt::Write;

use super::escape::{markdown_cell as cell, markdown_code as code};
use super::units;
use crate::bench::BenchSummary;
use crate::model::Report;

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
        units::duration(std::time::Duration::from_secs_f64(r.duration_ms / 1e3))
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
    out.push_str("| suite | launcher | rootfs | cases | pass | fail | skip | error | time |\n");
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|\n");
    for g in r.groups() {
        let k = g.counts;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&g.suite),
            cell(&g.launcher),
            cell(&g.rootfs),
            k.cases,
            k.pass,
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
            c.samples
        );
        for cal in &cals {
            let _ = write!(out, " {} |", c.ratios.get(*cal).map(|r| units::sig3(*r)).unwrap_or_else(|| "–".into()));
        }
        out.push('\n');
    }
}
