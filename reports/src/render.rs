//! Renderers: one module per output format, all from the same [`Document`].
//!
//! Renderers are pure functions of the document: the same report renders to the same bytes
//! (snapshot tests hold them to it), and nothing in a report can make one panic.

pub mod escape;
pub mod html;
pub mod junit;
pub mod ktap;
pub mod markdown;
pub mod svg;
pub mod text;
pub mod units;

use std::fmt;
use std::str::FromStr;

use crate::load::{Document, to_json};

/// An output format of `isoprobe report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The report itself, re-serialised (pretty JSON).
    Json,
    /// JUnit XML, for CI systems: one testsuite per namespace combination.
    Junit,
    /// KTAP version 1, what kernel CI systems parse.
    Ktap,
    /// Markdown for a pull-request comment.
    Markdown,
    /// A self-contained HTML page (no scripts, no network): colour grid and SVG charts.
    Html,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Json, Format::Junit, Format::Ktap, Format::Markdown, Format::Html];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Ktap => "ktap",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Junit => "xml",
            Format::Ktap => "ktap",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}` (expected json, junit, ktap, markdown or html)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s || (s == "md" && *f == Format::Markdown))
            .ok_or_else(|| UnknownFormat(s.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "render {0} from a benchmark summary: {0} carries test verdicts and a summary has none (use markdown, html or json)"
    )]
    NoVerdicts(Format),
}

/// Renders `doc` as `format`.
pub fn render(doc: &Document, format: Format) -> Result<String, RenderError> {
    match (format, doc) {
        (Format::Json, _) => Ok(to_json(doc)),
        (Format::Junit, Document::Run(r)) => Ok(junit::render(r)),
        (Format::Ktap, Document::Run(r)) => Ok(ktap::render(r)),
        (Format::Junit | Format::Ktap, Document::Bench(_)) => Err(RenderError::NoVerdicts(format)),
        (Format::Markdown, Document::Run(r)) => Ok(markdown::render(Some(r), r.bench.as_ref())),
        (Format::Markdown, Document::Bench(b)) => Ok(markdown::render(None, Some(b))),
        (Format::Html, Document::Run(r)) => Ok(html::render(Some(r), r.bench.as_ref())),
        (Format::Html, Document::Bench(b)) => Ok(html::render(None, Some(b))),
    }
}
