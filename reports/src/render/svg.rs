//! SVG charts of benchmark results, drawn as plain markup (no scripts, no fonts to fetch):
//! horizontal bar charts with confidence-interval whiskers, a grouped chart of latency per
//! namespace kind, line charts of scaling curves, and stacked bars (where a case's time goes).
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

/// Colours of the segments of a stacked bar, by the series' colour index (the phases of a case,
/// in their order, and one more for any other).
const STACK_PALETTE: [&str; 12] = [
    "#9e9e9e", "#3b6fb6", "#d9822b", "#8c6d31", "#3a9a5b", "#2b9aa0", "#a6cee3", "#7a5aa6", "#b3404a", "#c2519b",
    "#6b6b6b", "#e3c84b",
];

/// One bar of a stacked chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub label: String,
    /// One value per series of the chart's legend, in nanoseconds.
    pub segments: Vec<f64>,
    /// A value marked across the bar (the median case against the medians of its phases), in
    /// nanoseconds; each segment's tooltip gives its share of it.
    pub marker: f64,
}

/// Horizontal stacked bars, one per [`Stack`], their segments named and coloured by `series`
/// (name and colour index, the legend), each bar's `marker` drawn as a line across it and named
/// `marker_name`.
pub fn draw_stacked(title: &str, series: &[(String, usize)], stacks: &[Stack], marker_name: &str) -> String {
    const LABEL: f64 = 250.0;
    // The legend from the left edge, six entries a line: eleven phases in two lines.
    const LEGEND_X: f64 = 40.0;
    const PER_LINE: usize = 6;
    const ENTRY_W: f64 = 115.0;
    let legend_lines = series.len().div_ceil(PER_LINE).max(1) as f64;
    let top = 24.0 + legend_lines * 16.0 + 6.0;
    let row_h = BAR_H + 6.0;
    let height = top + stacks.len() as f64 * row_h + 30.0;
    let finite = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
    let max =
        finite_max(stacks.iter().flat_map(|s| [s.segments.iter().copied().map(finite).sum::<f64>(), finite(s.marker)]));
    let t = ticks(max);
    let scale_max = *t.last().unwrap_or(&1.0);
    let plot_w = WIDTH - LABEL - RIGHT;
    let x = |v: f64| LABEL + (finite(v) / scale_max).min(1.0) * plot_w;
    let mut out = String::new();
    svg_open(&mut out, height, title);
    let colour = |i: usize| STACK_PALETTE[series.get(i).map_or(i, |s| s.1) % STACK_PALETTE.len()];
    for (i, (name, _)) in series.iter().enumerate() {
        let (lx, ly) = (LEGEND_X + (i % PER_LINE) as f64 * ENTRY_W, 24.0 + (i / PER_LINE) as f64 * 16.0);
        legend_entry(&mut out, lx, ly, colour(i), name);
    }
    let axis_y = height - 26.0;
    time_grid(&mut out, &t, x, top, axis_y);
    for (row, s) in stacks.iter().enumerate() {
        let y = top + row as f64 * row_h;
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#222">{}</text>"##,
            LABEL - 6.0,
            y + BAR_H / 2.0 + 3.0,
            xml(&s.label)
        );
        let mut at = 0.0;
        for (i, v) in s.segments.iter().copied().map(finite).enumerate() {
            if v <= 0.0 {
                continue;
            }
            let share = if finite(s.marker) > 0.0 {
                format!(" ({:.0}% of the {marker_name})", v / s.marker * 100.0)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{}"><title>{}: {} {}{}</title></rect>"#,
                x(at),
                x(at + v) - x(at),
                colour(i),
                xml(&s.label),
                xml(series.get(i).map_or("?", |s| s.0.as_str())),
                xml(&units::ns(v)),
                xml(&share)
            );
            at += v;
        }
        let mx = x(s.marker);
        let _ = writeln!(
            out,
            r##"<line x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="#000" stroke-width="2"><title>{}: {} {}</title></line><text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
            y - 2.0,
            y + BAR_H + 2.0,
            xml(&s.label),
            xml(marker_name),
            xml(&units::ns(s.marker)),
            x(at).max(mx) + 4.0,
            y + BAR_H / 2.0 + 3.0,
            xml(&units::ns(s.marker))
        );
    }
    let _ =
        writeln!(out, r##"<line x1="{LABEL}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#888"/>"##, LABEL + plot_w);
    out.push_str("</svg>\n");
    out
}

/// A legend entry: a square of `colour` at (`lx`, `ly`) and `name` after it.
fn legend_entry(out: &mut String, lx: f64, ly: f64, colour: &str, name: &str) {
    let _ = writeln!(
        out,
        r#"<rect x="{lx}" y="{ly}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
        lx + 14.0,
        ly + 9.0,
        xml(name)
    );
}

/// The grid of a horizontal time axis: a vertical line from `top` to `axis_y` at each tick,
/// labelled under the axis.
fn time_grid(out: &mut String, ticks: &[f64], x: impl Fn(f64) -> f64, top: f64, axis_y: f64) {
    for v in ticks {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{axis_y}" stroke="#ddd"/><text x="{0:.1}" y="{1}" text-anchor="middle" fill="#555">{2}</text>"##,
            x(*v),
            axis_y + 14.0,
            xml(&units::ns(*v))
        );
    }
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
        legend_entry(&mut out, LABEL_W + i as f64 * 110.0, 24.0, PALETTE[i % PALETTE.len()], name);
    }
    let axis_y = height - 26.0;
    time_grid(&mut out, &t, x, top, axis_y);
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
        legend_entry(&mut out, left + i as f64 * 140.0, 24.0, PALETTE[i % PALETTE.len()], &s.name);
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
    fn stacked_segments_follow_each_other_and_the_marker_crosses_its_bar() {
        let series = [("a".to_owned(), 0), ("b".to_owned(), 5), ("c".to_owned(), 1)];
        let stacks = [
            Stack { label: "one".into(), segments: vec![1e6, 3e6, 0.0], marker: 5e6 },
            Stack { label: "two".into(), segments: vec![f64::NAN, 2e6, -1.0], marker: f64::INFINITY },
        ];
        let svg = draw_stacked("t", &series, &stacks, "median");
        // Ticks to 5 ms over 420 px: 84 px a millisecond, from x = 250.
        assert!(svg.contains(r##"<rect x="250.0" y="46.0" width="84.0" height="14" fill="#9e9e9e"><title>one: a 1.00 ms (20% of the median)</title>"##), "{svg}");
        assert!(svg.contains(r##"<rect x="334.0" y="46.0" width="252.0" height="14" fill="#2b9aa0"><title>one: b 3.00 ms (60% of the median)</title>"##), "{svg}");
        assert!(svg.contains(r#"<line x1="670.0" y1="44.0" x2="670.0" y2="62.0""#), "{svg}");
        assert!(!svg.contains("one: c "), "a segment of no time is not drawn: {svg}");
        // What is not a time is drawn as nothing, and says no share.
        assert!(svg.contains("<title>two: b 2.00 ms</title>") && !svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn scaling_ids() {
        assert_eq!(scaling_point("threads/4"), Some(("threads", 4.0)));
        assert_eq!(scaling_point("16"), Some(("", 16.0)));
        assert_eq!(scaling_point("pid"), None);
        assert_eq!(scaling_point("x/inf"), None);
    }
}
