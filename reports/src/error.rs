//! Why a document could not be read. Every message names the file and, for a parse error, the
//! line and column; messages are lowercase fragments that read after "failed to".

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Not JSON, cut short, or JSON of the wrong shape.
    #[error("read {path}: line {line}, column {column}: {what}")]
    Parse { path: String, line: usize, column: usize, what: String },
    /// Valid JSON, but not an isoprobe document.
    #[error("read {path}: {what}")]
    NotIsoprobe { path: String, what: String },
    #[error(
        "read {path}: it has schema version {found}, newer than version {supported} that isoprobe {ours} reads \
         (use the isoprobe that wrote it, or a newer one)"
    )]
    NewerSchema { path: String, found: u64, supported: u32, ours: &'static str },
    #[error("read {path}: it has schema version {found}, which isoprobe {ours} does not read (it reads {supported})")]
    OlderSchema { path: String, found: u64, supported: u32, ours: &'static str },
    /// Well-formed, but its numbers or names cannot be used.
    #[error("read {path}: {what}")]
    Invalid { path: String, what: String },
}
