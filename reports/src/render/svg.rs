//! SVG charts of benchmark results, drawn as plain markup (no scripts, no fonts to fetch):
//! horizontal bar charts with confidence-interval whiskers, a grouped chart of latency per
//! namespace kind, and line charts of scaling curves.
//!
//! Which chart a benchmark lands in follows from its name: an id whose last `/`-separated part is
//! a number (`threads/4`, `16`) is a point of a scaling curve named by the rest; an id that is a
//! namespace kind (`pid`, `net`) also goes into the per-kind chart; every other case is a bar of
//! its group's chart.

use std::fmt::Write;

use super::escape::xml;
use super::units;
use crate::bench::{BenchCase, BenchSummary};
use crate::record::NsKind;

const WIDTH: f64 = 760.0;
const LABEL_W: f64 = 170.0;
const RIGHT: f64 = 90.0;
const BAR_H: f64 = 14.0;
const PALETTE: [&str; 8] = ["#3b6fb6", "#d9822b", "#3a9a5b", "#b3404a", "#7a5aa6", "#8c6d31", "#2b9aa0", "#c2519b"];

/// One bar: a median and its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    /// Index into the palette (the series the bar belongs to).
    pub colour: usize,
}

/// A named curve: (x, median, lo, hi) points sorted by x.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// A chart ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Rows of bars; a row with several bars is a group (one colour per legend entry).
    Bars {
        title: String,
        rows: Vec<(String, Vec<Bar>)>,
        legend: Vec<String>,
    },
    Lines {
        title: String,
        x_label: String,
        series: Vec<Series>,
    },
}

impl Chart {
    pub fn title(&self) -> &str {
        match self {
            Chart::Bars { title, .. } | Chart::Lines { title, .. } => title,
        }
    }
}

/// The scaling parameter of an id, if its last part is a number, with the rest of the id.
fn scaling_point(id: &str) -> Option<(&str, f64)> {
    let (prefix, last) = id.rsplit_once('/').unwrap_or(("", id));
    let x: f64 = last.parse().ok()?;
    x.is_finite().then_some((prefix, x))
}

fn bar(c: &BenchCase, label: String, colour: usize) -> Bar {
    Bar { label, median: c.median_ns, lo: c.ci_low_ns, hi: c.ci_high_ns, colour }
}

/// Every chart of a summary, in the order the groups first appear.
pub fn charts(b: &BenchSummary) -> Vec<Chart> {
    let mut out = Vec::new();
    // Latency per namespace kind: one row per kind, one bar per group that measured it.
    let kind_groups: Vec<&str> = unique(b.cases.iter().filter(|c| is_kind(&c.id)).map(|c| c.group.as_str()));
    if !kind_groups.is_empty() {
        let mut rows = Vec::new();
        for k in kind_names() {
            let bars: Vec<Bar> = kind_groups
                .iter()
                .enumerate()
                .filter_map(|(i, g)| b.case(g, k).map(|c| bar(c, (*g).to_owned(), i)))
                .collect();
            if !bars.is_empty() {
                rows.push((k.to_owned(), bars));
            }
        }
        out.push(Chart::Bars {
            title: "Latency per namespace kind".into(),
            rows,
            legend: kind_groups.iter().map(|g| (*g).to_owned()).collect(),
        });
    }
    for group in unique(b.cases.iter().map(|c| c.group.as_str())) {
        let cases: Vec<&BenchCase> = b.cases.iter().filter(|c| c.group == group).collect();
        let mut series: Vec<Series> = Vec::new();
        let mut bars: Vec<(String, Vec<Bar>)> = Vec::new();
        for c in &cases {
            match scaling_point(&c.id) {
                Some((prefix, x)) => {
                    let name = if prefix.is_empty() { group.to_owned() } else { prefix.to_owned() };
                    let p = (x, c.median_ns, c.ci_low_ns, c.ci_high_ns);
                    match series.iter_mut().find(|s| s.name == name) {
                        Some(s) => s.points.push(p),
                        None => series.push(Series { name, points: vec![p] }),
                    }
                }
                // Already a bar of the per-kind chart.
                None if is_kind(&c.id) => {}
                None => bars.push((c.id.clone(), vec![bar(c, c.id.clone(), 0)])),
            }
        }
        // A "curve" of one point is a bar.
        for s in series.iter().filter(|s| s.points.len() == 1) {
            let (_, m, lo, hi) = s.points[0];
            let label = cases.iter().find(|c| c.median_ns == m).map(|c| c.id.clone()).unwrap_or_default();
            bars.push((label.clone(), vec![Bar { label, median: m, lo, hi, colour: 0 }]));
        }
        series.retain(|s| s.points.len() > 1);
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        if !bars.is_empty() {
            out.push(Chart::Bars { title: group.to_owned(), rows: bars, legend: Vec::new() });
        }
        if !series.is_empty() {
            out.push(Chart::Lines { title: format!("{group}: scaling"), x_label: "parameter".into(), series });
        }
    }
    out
}

fn kind_names() -> impl Iterator<Item = &'static str> {
    ["none"].into_iter().chain(NsKind::ALL.iter().map(|k| k.name())).chain(["all"])
}

fn is_kind(id: &str) -> bool {
    kind_names().any(|k| k == id)
}

fn unique<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

/// Tick values from 0 to at least `max`: 4 to 8 steps of 1, 2 or 5 × 10^n.
pub fn ticks(max: f64) -> Vec<f64> {
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| max / s <= 8.0).unwrap_or(10.0 * mag);
    let n = (max / step).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

fn svg_open(out: &mut String, height: f64, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, "<title>{}</title>", xml(title));
    let _ =
        writeln!(out, r##"<text x="0" y="14" font-size="13" font-weight="bold" fill="#222">{}</text>"##, xml(title));
}

/// Draws a chart as an `<svg>` element.
pub fn draw(chart: &Chart) -> String {
    match chart {
        Chart::Bars { title, rows, legend } => draw_bars(title, rows, legend),
        Chart::Lines { title, x_label, series } => draw_lines(title, x_label, series),
    }
}

fn finite_max(values: impl Iterator<Item = f64>) -> f64 {
    values.filter(|v| v.is_finite()).fold(0.0, f64::max)
}

fn draw_bars(title: &str, rows: &[(String, Vec<Bar>)], legend: &[String]) -> String {
    let top = if legend.is_empty() { 24.0 } else { 42.0 };
    let rows_h: f64 = rows.iter().map(|(_, b)| b.len() as f64 * BAR_H + 8.0).sum();
    let height = top + rows_h + 30.0;
    let max = finite_max(rows.iter().flat_map(|(_, b)| b.iter().flat_map(|b| [b.hi, b.median])));
    let t = ticks(max);
    let scale_max = *t.last().unwrap_or(&1.0);
    let plot_w = WIDTH - LABEL_W - RIGHT;
    let x = |v: f64| LABEL_W + (v.max(0.0) / scale_max).min(1.0) * plot_w;
    let mut out = String::new();
    svg_open(&mut out, height, title);
    for (i, name) in legend.iter().enumerate() {
        let lx = LABEL_W + i as f64 * 110.0;
        let _ = writeln!(
            out,
            r#"<rect x="{lx}" y="24" width="10" height="10" fill="{}"/><text x="{}" y="33">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            lx + 14.0,
            xml(name)
        );
    }
    let axis_y = height - 26.0;
    for v in &t {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{axis_y}" stroke="#ddd"/><text x="{0:.1}" y="{1}" text-anchor="middle" fill="#555">{2}</text>"##,
            x(*v),
            axis_y + 14.0,
            xml(&units::ns(*v))
        );
    }
    let mut y = top;
    for (label, bars) in rows {
        let row_h = bars.len() as f64 * BAR_H;
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#222">{}</text>"##,
            LABEL_W - 6.0,
            y + row_h / 2.0 + 4.0,
            xml(label)
        );
        for b in bars {
            let colour = PALETTE[b.colour % PALETTE.len()];
            let w = x(b.median) - LABEL_W;
            let _ = writeln!(
                out,
                r#"<rect x="{LABEL_W}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"><title>{}: {} (CI {} – {})</title></rect>"#,
                BAR_H - 2.0,
                xml(&b.label),
                xml(&units::ns(b.median)),
                xml(&units::ns(b.lo)),
                xml(&units::ns(b.hi))
            );
            let wy = y + (BAR_H - 2.0) / 2.0;
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{wy:.1}" x2="{:.1}" y2="{wy:.1}" stroke="#222"/><text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
                x(b.lo),
                x(b.hi),
                x(b.hi.max(b.median)) + 4.0,
                wy + 4.0,
                xml(&units::ns(b.median))
            );
            y += BAR_H;
        }
        y += 8.0;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LABEL_W}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#888"/>"##,
        LABEL_W + plot_w
    );
    out.push_str("</svg>\n");
    out
}

fn draw_lines(title: &str, x_label: &str, series: &[Series]) -> String {
    let height = 300.0;
    let (top, bottom, left) = (44.0, height - 40.0, 70.0);
    let plot_w = WIDTH - left - RIGHT;
    let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|v| v.is_finite()).collect();
    let (xmin, xmax) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let (xmin, xmax) = if xmin.is_finite() && xmax > xmin { (xmin, xmax) } else { (0.0, 1.0) };
    // Parameters spanning two decades or more (mount counts) read better on a log axis.
    let log = xmin > 0.0 && xmax / xmin >= 100.0;
    let fx = |v: f64| if log { v.ln() } else { v };
    let x = |v: f64| left + ((fx(v) - fx(xmin)) / (fx(xmax) - fx(xmin))).clamp(0.0, 1.0) * plot_w;
    let t = ticks(finite_max(series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.1, p.3]))));
    let ymax = *t.last().unwrap_or(&1.0);
    let y = |v: f64| bottom - (v.max(0.0) / ymax).min(1.0) * (bottom - top);
    let mut out = String::new();
    svg_open(&mut out, height, title);
    for (i, s) in series.iter().enumerate() {
        let lx = left + i as f64 * 140.0;
        let _ = writeln!(
            out,
            r#"<rect x="{lx}" y="24" width="10" height="10" fill="{}"/><text x="{}" y="33">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            lx + 14.0,
            xml(&s.name)
        );
    }
    for v in &t {
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end" fill="#555">{4}</text>"##,
            y(*v),
            left + plot_w,
            left - 6.0,
            y(*v) + 4.0,
            xml(&units::ns(*v))
        );
    }
    let mut xticks: Vec<f64> = xs.clone();
    xticks.sort_by(f64::total_cmp);
    xticks.dedup();
    for v in &xticks {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            x(*v),
            bottom + 14.0,
            xml(&units::sig3(*v))
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}{}</text>"##,
        left + plot_w / 2.0,
        bottom + 30.0,
        xml(x_label),
        if log { " (log scale)" } else { "" }
    );
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = s.points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
        let _ =
            writeln!(out, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for p in &s.points {
            let _ = writeln!(
                out,
                r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{colour}"/><circle cx="{0:.1}" cy="{3:.1}" r="3" fill="{colour}"><title>{4} at {5}: {6} (CI {7} – {8})</title></circle>"#,
                x(p.0),
                y(p.2),
                y(p.3),
                y(p.1),
                xml(&s.name),
                xml(&units::sig3(p.0)),
                xml(&units::ns(p.1)),
                xml(&units::ns(p.2)),
                xml(&units::ns(p.3))
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#888"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#888"/>"##,
        left + plot_w
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_maximum_in_round_steps() {
        assert_eq!(ticks(9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(41_000.0), vec![0.0, 10_000.0, 20_000.0, 30_000.0, 40_000.0, 50_000.0]);
        assert_eq!(ticks(0.0), vec![0.0, 1.0]);
        assert_eq!(ticks(f64::NAN), vec![0.0, 1.0]);
        for m in [1.0, 3.3, 77.0, 1234.5, 9.9e8] {
            let t = ticks(m);
            assert!(*t.last().unwrap() >= m && t.len() <= 10, "{m}: {t:?}");
        }
    }

    #[test]
    fn scaling_ids() {
        assert_eq!(scaling_point("threads/4"), Some(("threads", 4.0)));
        assert_eq!(scaling_point("16"), Some(("", 16.0)));
        assert_eq!(scaling_point("pid"), None);
        assert_eq!(scaling_point("x/inf"), None);
    }
}
