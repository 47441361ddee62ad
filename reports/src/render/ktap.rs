//! KTAP version 1 (Documentation/dev-tools/ktap.rst), what kernel CI systems parse.
//!
//! The tree is suite → case → check; a case whose probe joined a container with setns has one
//! more level, `container` and `joiner`, plus a `join-consistency` test. Skipped cases and checks
//! are `ok … # SKIP <reason>`; a case that could not run is `not ok … # ERROR <cause>`; a failed
//! check is `not ok`, preceded by diagnostic lines with what was expected and observed. Following
//! kselftest and KUnit, each nested block starts with a `# Subtest: <name>` diagnostic, and each
//! suite ends with a `# Totals:` line (kselftest's counters, of cases: `xfail` counts the cases
//! whose failures are all explained differences).
//!
//! A check of a launcher's case that failed as an expected difference explains (a documented
//! property of the tool) is `ok … # XFAIL explained difference: <what the tool gives>`, as
//! kselftest writes an expected failure, after a diagnostic line naming the source; a stale row of
//! the differences table is a `not ok` test `differences-table`.
//!
//! [`parse`] reads KTAP back (any producer's, not only ours) and enforces the spec's structural
//! rules; the tests use it on every rendering.

use std::fmt::Write;

use super::escape::ktap_line;
use crate::model::{CaseStatus, Report, Suite, role_name, verdict_detail};
use crate::record::{CaseAssessment, CaseOutcome, ProbeRun, Verdict};

const INDENT: &str = "  ";

/// A test as it is about to be written: its result line, the diagnostics before it, and its
/// subtests.
struct Node {
    name: String,
    /// `None`: ok or not ok from the subtests (not ok if any failed).
    result: Option<bool>,
    directive: Option<String>,
    diagnostics: Vec<String>,
    subtests: Vec<Node>,
    /// Written after the subtests' plan results, before this node's own result line.
    trailer: Vec<String>,
}

impl Node {
    fn leaf(name: String, ok: bool) -> Node {
        Node { name, result: Some(ok), directive: None, diagnostics: Vec::new(), subtests: Vec::new(), trailer: vec![] }
    }
    fn parent(name: String, subtests: Vec<Node>) -> Node {
        Node { name, result: None, directive: None, diagnostics: Vec::new(), subtests, trailer: vec![] }
    }
    fn ok(&self) -> bool {
        self.result.unwrap_or_else(|| self.subtests.iter().all(Node::ok))
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::from("KTAP version 1\n");
    let fp = &report.fingerprint;
    let _ = writeln!(
        out,
        "# isoprobe {} started {}: kernel {}, {} cgroups, euid {}",
        report.isoprobe_version,
        report.started_at,
        ktap_line(&fp.kernel.release, false),
        fp.cgroup.layout.name(),
        fp.user.euid
    );
    let _ = writeln!(out, "1..{}", report.suites.len());
    let mut total = [0usize; 5];
    for (i, suite) in report.suites.iter().enumerate() {
        let cases: Vec<Node> = suite.cases.iter().map(|c| case_node(report, suite, c)).collect();
        let mut counts = [0usize; 5];
        for c in &suite.cases {
            counts[report.status(suite, c) as usize] += 1;
        }
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
        let mut node = Node::parent(suite.name.clone(), cases);
        node.trailer.push(totals(&counts));
        write_node(&mut out, &node, i + 1, 0);
    }
    out.push_str(&totals(&total));
    out.push('\n');
    out
}

/// `# Totals: pass:N fail:N xfail:N skip:N error:N`, kselftest's summary line (without xpass,
/// which has no meaning here), counting cases.
fn totals(c: &[usize; 5]) -> String {
    let [pass, fail, skip, error, xfail] = *c;
    format!("# Totals: pass:{pass} fail:{fail} xfail:{xfail} skip:{skip} error:{error}")
}

fn case_node(report: &Report, suite: &Suite, case: &CaseOutcome) -> Node {
    let assessment = report.assessment(suite, case);
    let name = case.name.clone();
    if let Some(e) = &case.error {
        let mut n = Node::leaf(name, false);
        n.diagnostics = e.lines().map(|l| format!("error: {l}")).collect();
        n.directive = Some(format!("ERROR {}", e.lines().next().unwrap_or("")));
        return n;
    }
    if let Some(s) = &case.skipped {
        if report.status(suite, case) == CaseStatus::Fail {
            let mut n = Node::leaf(name, false);
            n.diagnostics.push(format!("skipped, but ISOPROBE_EXPECT declares `{}`: {}", s.requirement, s.reason));
            return n;
        }
        let mut n = Node::leaf(name, true);
        n.directive = Some(format!("SKIP {}: {}", s.requirement, s.reason));
        return n;
    }
    let stale = assessment.filter(|a| !a.stale.is_empty()).map(|a| {
        let mut n = Node::leaf("differences-table".into(), false);
        n.diagnostics = a.stale.iter().map(|s| format!("stale row: {s}")).collect();
        n
    });
    match case.runs.as_slice() {
        [only] => {
            let mut subtests = check_nodes(only, assessment);
            subtests.extend(stale);
            Node::parent(name, subtests)
        }
        runs => {
            let mut subtests: Vec<Node> =
                runs.iter().map(|r| Node::parent(role_name(r.role).to_owned(), check_nodes(r, assessment))).collect();
            if case.spec.launcher.joins() {
                let explained = |m: &String| {
                    assessment.is_some_and(|a| a.explained.iter().any(|e| m.starts_with(&format!("{}:", e.check))))
                };
                let mut j = Node::leaf("join-consistency".into(), case.join_mismatches.iter().all(explained));
                j.diagnostics =
                    case.join_mismatches.iter().map(|m| format!("joiner and container disagree: {m}")).collect();
                subtests.push(j);
            }
            subtests.extend(stale);
            Node::parent(name, subtests)
        }
    }
}

fn check_nodes(run: &ProbeRun, assessment: Option<&CaseAssessment>) -> Vec<Node> {
    run.checks
        .iter()
        .map(|c| {
            let name = c.check.name().to_owned();
            if let Some(e) = assessment.and_then(|a| a.explanation(run.role, c.check)) {
                let mut n = Node::leaf(name, true);
                n.diagnostics.push(verdict_detail(&c.verdict));
                n.diagnostics.push(format!("source: {}", e.source));
                n.directive = Some(format!("XFAIL explained difference: {}", e.observed));
                return n;
            }
            match &c.verdict {
                Verdict::Pass { .. } => Node::leaf(name, true),
                Verdict::Fail { .. } => {
                    let mut n = Node::leaf(name, false);
                    n.diagnostics.push(verdict_detail(&c.verdict));
                    if !run.stderr.is_empty() {
                        n.diagnostics.extend(run.stderr.lines().map(|l| format!("probe stderr: {l}")));
                    }
                    n
                }
                Verdict::Skip { .. } => {
                    let mut n = Node::leaf(name, true);
                    n.directive = Some(format!("SKIP {}", verdict_detail(&c.verdict)));
                    n
                }
                Verdict::Error { cause } => {
                    let mut n = Node::leaf(name, false);
                    n.directive = Some(format!("ERROR {cause}"));
                    n
                }
            }
        })
        .collect()
}

fn write_node(out: &mut String, node: &Node, number: usize, depth: usize) {
    let pad = INDENT.repeat(depth);
    if !node.subtests.is_empty() {
        let inner = INDENT.repeat(depth + 1);
        let _ = writeln!(out, "{inner}KTAP version 1");
        let _ = writeln!(out, "{inner}# Subtest: {}", ktap_line(&node.name, false));
        let _ = writeln!(out, "{inner}1..{}", node.subtests.len());
        for (i, s) in node.subtests.iter().enumerate() {
            write_node(out, s, i + 1, depth + 1);
        }
    }
    for t in &node.trailer {
        let _ = writeln!(out, "{pad}{}", ktap_line(t, false));
    }
    for d in &node.diagnostics {
        let _ = writeln!(out, "{pad}# {}", ktap_line(d, false));
    }
    let result = if node.ok() { "ok" } else { "not ok" };
    let _ = write!(out, "{pad}{result} {number} {}", ktap_line(&node.name, true));
    if let Some(d) = &node.directive {
        let _ = write!(out, " # {}", ktap_line(d, false));
    }
    out.push('\n');
}

// ----- parsing --------------------------------------------------------------------------------

/// A directive of a result line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Skip,
    Todo,
    Xfail,
    Timeout,
    Error,
}

/// One test of a parsed KTAP document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KtapTest {
    pub number: usize,
    pub ok: bool,
    pub description: String,
    pub directive: Option<Directive>,
    /// The text after `#` (and after the directive, if any).
    pub diagnostic: String,
    /// Diagnostic lines of this test's level seen since the previous result line.
    pub diagnostics: Vec<String>,
    /// The nested results, when the test had any.
    pub subtests: Option<KtapBlock>,
}

/// A version line, an optional plan, and the results that follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KtapBlock {
    pub version: String,
    pub plan: Option<usize>,
    pub tests: Vec<KtapTest>,
}

/// Where a KTAP document breaks the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse KTAP: line {line}: {what}")]
pub struct KtapError {
    pub line: usize,
    pub what: String,
}

/// Parses a KTAP document, checking: a version line first (KTAP version 1, or TAP version 13 or
/// 14), a plan of `1..N` that matches the results, results numbered from 1 up by 1 at each level,
/// subtests indented by two spaces more than their parent and closed by the parent's result line,
/// and descriptions without `#`. Unknown lines are allowed anywhere, as the spec says.
pub fn parse(text: &str) -> Result<KtapBlock, KtapError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pos = 0;
    let block = parse_block(&lines, &mut pos, 0)?;
    if let Some(rest) = lines[pos..].iter().position(|l| result_at(l).is_some()) {
        return Err(KtapError { line: pos + rest + 1, what: "a result line after the top-level results ended".into() });
    }
    Ok(block)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_version(s: &str) -> bool {
    matches!(s.trim_end(), "KTAP version 1" | "TAP version 13" | "TAP version 14")
}

/// The indentation and content of a result line.
fn result_at(line: &str) -> Option<(usize, &str)> {
    let body = line.trim_start_matches(' ');
    (body.starts_with("ok ") || body.starts_with("not ok ")).then(|| (indent_of(line), body))
}

fn parse_block(lines: &[&str], pos: &mut usize, indent: usize) -> Result<KtapBlock, KtapError> {
    let err = |line: usize, what: String| KtapError { line: line + 1, what };
    let first = lines.get(*pos).ok_or_else(|| err(*pos, "expected a version line, found the end".into()))?;
    if indent_of(first) != indent || !is_version(&first[indent..]) {
        return Err(err(*pos, format!("expected a version line indented by {indent}, found {first:?}")));
    }
    let version = first[indent..].trim_end().to_owned();
    *pos += 1;
    let mut plan = None;
    let mut tests: Vec<KtapTest> = Vec::new();
    let mut diagnostics = Vec::new();
    let mut pending: Option<KtapBlock> = None;
    while let Some(line) = lines.get(*pos) {
        let here = indent_of(line);
        let body = line.trim_start_matches(' ');
        if let Some((at, result)) = result_at(line) {
            if at < indent {
                break; // the parent's result line
            }
            if at > indent {
                return Err(err(*pos, format!("a result line indented by {at} inside a block indented by {indent}")));
            }
            let mut t = parse_result(result).map_err(|w| err(*pos, w))?;
            if t.number != tests.len() + 1 {
                return Err(err(*pos, format!("test number {} where {} was due", t.number, tests.len() + 1)));
            }
            t.diagnostics = std::mem::take(&mut diagnostics);
            t.subtests = pending.take();
            tests.push(t);
            *pos += 1;
        } else if is_version(body) && here == indent + 2 {
            if pending.is_some() {
                return Err(err(*pos, "a second subtest block without a result line for the first".into()));
            }
            pending = Some(parse_block(lines, pos, indent + 2)?);
        } else if is_version(body) {
            return Err(err(
                *pos,
                format!("a version line indented by {here}; subtests must be indented by {}", indent + 2),
            ));
        } else if here == indent && body.starts_with("1..") && tests.is_empty() && plan.is_none() {
            let n = body[3..].trim().parse().map_err(|_| err(*pos, format!("bad plan line {body:?}")))?;
            plan = Some(n);
            *pos += 1;
        } else {
            if here == indent
                && let Some(d) = body.strip_prefix('#')
            {
                diagnostics.push(d.trim().to_owned());
            }
            *pos += 1; // a diagnostic line, or an unknown line (allowed anywhere)
        }
    }
    if pending.is_some() {
        return Err(err(*pos, "a subtest block with no result line after it".into()));
    }
    if let Some(n) = plan
        && n != tests.len()
    {
        return Err(err(*pos, format!("the plan says 1..{n} but {} results followed", tests.len())));
    }
    Ok(KtapBlock { version, plan, tests })
}

fn parse_result(body: &str) -> Result<KtapTest, String> {
    let (ok, rest) = match body.strip_prefix("not ok ") {
        Some(r) => (false, r),
        None => (true, body.strip_prefix("ok ").ok_or("not a result line")?),
    };
    let (head, tail) = match rest.split_once('#') {
        Some((h, t)) => (h, Some(t.trim())),
        None => (rest, None),
    };
    let mut words = head.splitn(2, ' ');
    let number = words.next().unwrap_or("").parse::<usize>().map_err(|_| format!("no test number in {body:?}"))?;
    let description = words.next().unwrap_or("").trim().to_owned();
    let (directive, diagnostic) = match tail {
        None => (None, String::new()),
        Some(t) => {
            let (word, after) = t.split_once(' ').unwrap_or((t, ""));
            let d = match word.to_ascii_uppercase().as_str() {
                "SKIP" => Some(Directive::Skip),
                "TODO" => Some(Directive::Todo),
                "XFAIL" => Some(Directive::Xfail),
                "TIMEOUT" => Some(Directive::Timeout),
                "ERROR" => Some(Directive::Error),
                _ => None,
            };
            match d {
                Some(d) => (Some(d), after.trim().to_owned()),
                None => (None, t.to_owned()),
            }
        }
    };
    Ok(KtapTest { number, ok, description, directive, diagnostic, diagnostics: Vec::new(), subtests: None })
}

impl KtapBlock {
    /// Every test whose result contradicts its subtests: `ok` with a failed (non-skipped)
    /// subtest. The spec: "If one of the subtests fail, … the parent test should also fail."
    pub fn bubbling_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.tests {
            if let Some(sub) = &t.subtests {
                if t.ok && sub.tests.iter().any(|s| !s.ok && s.directive != Some(Directive::Skip)) {
                    out.push(format!("{} is ok but a subtest failed", t.description));
                }
                out.extend(sub.bubbling_violations().into_iter().map(|v| format!("{}: {v}", t.description)));
            }
        }
        out
    }

    /// The leaves of the tree, with their path (`suite/case/check`).
    pub fn leaves(&self) -> Vec<(String, &KtapTest)> {
        let mut out = Vec::new();
        for t in &self.tests {
            match &t.subtests {
                None => out.push((t.description.clone(), t)),
                Some(sub) => {
                    out.extend(sub.leaves().into_iter().map(|(p, l)| (format!("{} :: {p}", t.description), l)))
                }
            }
        }
        out
    }
}
