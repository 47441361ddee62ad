//! The records a VM's init writes on its data channel (a serial port) and the host decodes: files
//! brought out of the VM, the exit status of each step, and the markers of boot and completion.
//!
//! One record per line, each starting with [`MARKER`], so that the channel may be shared with other
//! output (a kernel console): text before the marker and lines without it are ignored. A file's
//! content travels as base64 chunks between a begin record (with its length) and an end record
//! (with its FNV-1a checksum); a file whose length or checksum does not match is reported as a
//! problem, never handed on.
//!
//! This module must never interpret what a file holds: that is for whoever reads the file.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// What every record line starts with.
pub const MARKER: &str = "@isoprobe-vm";

/// Raw bytes per data record (1024 base64 characters).
const CHUNK: usize = 768;

/// One line on the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The init is running: the kernel booted. Its first record.
    Hello {
        release: String,
    },
    FileBegin {
        name: String,
        len: u64,
    },
    FileData {
        name: String,
        chunk: String,
    },
    FileEnd {
        name: String,
        checksum: u64,
    },
    /// A step of the plan ended.
    Step {
        name: String,
        status: StepStatus,
        elapsed_ms: u64,
    },
    /// Something went wrong in the init itself (the message is free text).
    Error {
        message: String,
    },
    /// Every step ran and every file was sent: the init powers off next.
    Done,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepStatus {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// Killed by the init when the step's timeout passed.
    TimedOut,
    /// The program could not be started (an error record says why).
    NotStarted,
}

impl StepStatus {
    pub fn success(self) -> bool {
        self == StepStatus::Exited { code: 0 }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepStatus::Exited { code } => write!(f, "exit={code}"),
            StepStatus::Signaled { signal } => write!(f, "signal={signal}"),
            StepStatus::TimedOut => f.write_str("timeout"),
            StepStatus::NotStarted => f.write_str("not-started"),
        }
    }
}

impl std::str::FromStr for StepStatus {
    type Err = FrameError;

    fn from_str(s: &str) -> Result<StepStatus, FrameError> {
        let bad = || FrameError::Malformed(format!("step status {s:?}"));
        Ok(match s.split_once('=') {
            Some(("exit", n)) => StepStatus::Exited { code: n.parse().map_err(|_| bad())? },
            Some(("signal", n)) => StepStatus::Signaled { signal: n.parse().map_err(|_| bad())? },
            None if s == "timeout" => StepStatus::TimedOut,
            None if s == "not-started" => StepStatus::NotStarted,
            _ => return Err(bad()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("invalid name {0:?}: names are 1 to 200 characters of [A-Za-z0-9._+-], not starting with a dot")]
    Name(String),
}

/// Whether `name` may name a file or step on the channel (and so a file on the host).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

fn check_name(name: &str) -> Result<(), FrameError> {
    if valid_name(name) { Ok(()) } else { Err(FrameError::Name(name.to_owned())) }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MARKER} ")?;
        match self {
            Record::Hello { release } => write!(f, "hello {release}"),
            Record::FileBegin { name, len } => write!(f, "file-begin {name} {len}"),
            Record::FileData { name, chunk } => write!(f, "file-data {name} {chunk}"),
            Record::FileEnd { name, checksum } => write!(f, "file-end {name} {checksum:016x}"),
            Record::Step { name, status, elapsed_ms } => write!(f, "step {name} {status} {elapsed_ms}"),
            // One line: newlines in a message become spaces.
            Record::Error { message } => write!(f, "error {}", message.replace(['\n', '\r'], " ")),
            Record::Done => f.write_str("done"),
        }
    }
}

impl Record {
    /// The record in `line`, `None` when the line carries none (text before the marker is
    /// ignored), an error when it carries a malformed one.
    pub fn parse(line: &str) -> Result<Option<Record>, FrameError> {
        let Some(at) = line.find(MARKER) else { return Ok(None) };
        let rest = line[at + MARKER.len()..].trim_end_matches(['\r', '\n']);
        let Some(rest) = rest.strip_prefix(' ') else { return Ok(None) };
        let (kind, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let fields: Vec<&str> = args.split(' ').filter(|f| !f.is_empty()).collect();
        // A garbled data line is long: quote its start.
        let malformed = || FrameError::Malformed(rest.chars().take(80).collect());
        let name = |i: usize| -> Result<String, FrameError> {
            let n = fields.get(i).ok_or_else(malformed)?;
            check_name(n)?;
            Ok((*n).to_owned())
        };
        let arity = |n: usize| if fields.len() == n { Ok(()) } else { Err(malformed()) };
        let record = match kind {
            "hello" => {
                arity(1)?;
                Record::Hello { release: fields[0].to_owned() }
            }
            "file-begin" => {
                arity(2)?;
                Record::FileBegin { name: name(0)?, len: fields[1].parse().map_err(|_| malformed())? }
            }
            "file-data" => {
                arity(2)?;
                Record::FileData { name: name(0)?, chunk: fields[1].to_owned() }
            }
            "file-end" => {
                arity(2)?;
                Record::FileEnd {
                    name: name(0)?,
                    checksum: u64::from_str_radix(fields[1], 16).map_err(|_| malformed())?,
                }
            }
            "step" => {
                arity(3)?;
                Record::Step {
                    name: name(0)?,
                    status: fields[1].parse()?,
                    elapsed_ms: fields[2].parse().map_err(|_| malformed())?,
                }
            }
            "error" => Record::Error { message: args.to_owned() },
            "done" => {
                arity(0)?;
                Record::Done
            }
            _ => return Err(malformed()),
        };
        Ok(Some(record))
    }
}

/// FNV-1a, 64 bits: enough to catch a garbled or truncated transfer.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The records that carry one file.
pub fn file_records(name: &str, data: &[u8]) -> Result<Vec<Record>, FrameError> {
    check_name(name)?;
    let mut out = vec![Record::FileBegin { name: name.to_owned(), len: data.len() as u64 }];
    out.extend(data.chunks(CHUNK).map(|c| Record::FileData { name: name.to_owned(), chunk: BASE64.encode(c) }));
    out.push(Record::FileEnd { name: name.to_owned(), checksum: checksum(data) });
    Ok(out)
}

/// Writes records, one line each.
pub fn write_records(w: &mut impl Write, records: &[Record]) -> io::Result<()> {
    for r in records {
        writeln!(w, "{r}")?;
    }
    w.flush()
}

/// A step's end as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEnd {
    pub name: String,
    pub status: StepStatus,
    pub elapsed_ms: u64,
}

/// Everything decoded from a data channel so far.
#[derive(Debug, Default)]
pub struct Transcript {
    /// The kernel release the init reported.
    pub release: Option<String>,
    /// Files received whole (length and checksum matched).
    pub files: BTreeMap<String, Vec<u8>>,
    pub steps: Vec<StepEnd>,
    /// Errors the init reported.
    pub init_errors: Vec<String>,
    /// Malformed records and files that did not arrive whole.
    pub problems: Vec<String>,
    pub done: bool,
    open: Option<OpenFile>,
}

#[derive(Debug)]
struct OpenFile {
    name: String,
    len: u64,
    data: Vec<u8>,
    broken: Option<String>,
}

impl Transcript {
    /// Takes one line of the channel; returns the record it held, if any.
    pub fn feed_line(&mut self, line: &str) -> Option<Record> {
        let record = match Record::parse(line) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                // Inside a file, the file reports it; elsewhere it is a problem of its own.
                match &mut self.open {
                    Some(open) => {
                        open.broken.get_or_insert_with(|| format!("a malformed record inside it ({e})"));
                    }
                    None => self.problems.push(e.to_string()),
                }
                return None;
            }
        };
        match &record {
            Record::Hello { release } => self.release = Some(release.clone()),
            Record::FileBegin { name, len } => {
                if let Some(open) = self.open.take() {
                    self.problems.push(format!("file {} was cut off by the start of {name}", open.name));
                }
                self.open = Some(OpenFile { name: name.clone(), len: *len, data: Vec::new(), broken: None });
            }
            Record::FileData { name, chunk } => match &mut self.open {
                Some(open) if open.name == *name => match BASE64.decode(chunk) {
                    Ok(bytes) => open.data.extend_from_slice(&bytes),
                    Err(e) => {
                        open.broken.get_or_insert_with(|| format!("undecodable base64 ({e})"));
                    }
                },
                _ => self.problems.push(format!("data for {name}, which is not the file being sent")),
            },
            Record::FileEnd { name, checksum: sum } => match self.open.take() {
                Some(open) if open.name == *name => {
                    let problem = if let Some(why) = open.broken {
                        Some(why)
                    } else if open.data.len() as u64 != open.len {
                        Some(format!("{} bytes arrived of {}", open.data.len(), open.len))
                    } else if checksum(&open.data) != *sum {
                        Some("checksum mismatch".to_owned())
                    } else {
                        None
                    };
                    match problem {
                        Some(p) => self.problems.push(format!("file {name} did not arrive whole: {p}")),
                        None => {
                            self.files.insert(open.name, open.data);
                        }
                    }
                }
                other => {
                    self.problems.push(format!("end of {name}, which is not the file being sent"));
                    self.open = other;
                }
            },
            Record::Step { name, status, elapsed_ms } => {
                self.steps.push(StepEnd { name: name.clone(), status: *status, elapsed_ms: *elapsed_ms })
            }
            Record::Error { message } => self.init_errors.push(message.clone()),
            Record::Done => self.done = true,
        }
        Some(record)
    }

    /// Declares the channel closed: a file still open was cut off.
    pub fn finish(&mut self) {
        if let Some(open) = self.open.take() {
            self.problems.push(format!("file {} was cut off: the channel ended", open.name));
        }
    }

    /// Decodes a whole channel.
    pub fn decode(text: &str) -> Transcript {
        let mut t = Transcript::default();
        for line in text.lines() {
            t.feed_line(line);
        }
        t.finish();
        t
    }
}

/// Splits a byte stream that arrives in pieces into lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Appends `bytes` and returns the lines they completed (without their line ends).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned());
        }
        lines
    }

    /// The unterminated last line, if any.
    pub fn rest(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn channel(records: &[Record]) -> String {
        let mut out = Vec::new();
        write_records(&mut out, records).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_whole_session_decodes_around_console_noise() {
        let mut records = vec![Record::Hello { release: "6.1.0-28-cloud-amd64".into() }];
        records.extend(file_records("namespaces.log", b"test a ... ok\n").unwrap());
        records.push(Record::Step {
            name: "namespaces".into(),
            status: StepStatus::Exited { code: 101 },
            elapsed_ms: 4200,
        });
        records.push(Record::Done);
        let text = format!("[    0.000000] Linux version 6.1\r\n{}random: crng init done\n", channel(&records));
        let t = Transcript::decode(&text);
        assert_eq!(t.release.as_deref(), Some("6.1.0-28-cloud-amd64"));
        assert_eq!(t.files["namespaces.log"], b"test a ... ok\n");
        assert_eq!(t.steps[0].status, StepStatus::Exited { code: 101 });
        assert!(t.done && t.problems.is_empty(), "{:?}", t.problems);
    }

    #[test]
    fn a_garbled_or_truncated_file_is_a_problem_not_a_file() {
        let records = file_records("report.json", &[7u8; 2000]).unwrap();
        // A kernel message landing in the middle of a data line.
        let garbled = channel(&records).replacen("file-data report.json ", "file-data report.json [ 3.1] oops ", 1);
        let t = Transcript::decode(&garbled);
        assert!(t.files.is_empty());
        assert_eq!(t.problems.len(), 1, "{:?}", t.problems);

        // The VM died half-way through.
        let cut = channel(&records[..2]);
        let t = Transcript::decode(&cut);
        assert!(t.files.is_empty());
        assert!(t.problems[0].contains("cut off"), "{:?}", t.problems);
    }

    #[test]
    fn a_record_without_its_marker_is_ignored_and_a_bad_one_is_reported() {
        assert_eq!(Record::parse("step x exit=0 12"), Ok(None));
        assert_eq!(Record::parse("@isoprobe-vmstep"), Ok(None));
        assert!(Record::parse("@isoprobe-vm step x exit=zero 12").is_err());
        assert!(Record::parse("@isoprobe-vm file-begin ../../etc/passwd 3").is_err());
        assert!(file_records("a/b", b"").is_err());
    }

    fn record() -> impl Strategy<Value = Record> {
        let name = "[A-Za-z0-9][A-Za-z0-9._+-]{0,30}";
        let status = prop_oneof![
            any::<i32>().prop_map(|code| StepStatus::Exited { code }),
            any::<i32>().prop_map(|signal| StepStatus::Signaled { signal }),
            Just(StepStatus::TimedOut),
            Just(StepStatus::NotStarted),
        ];
        prop_oneof![
            "[!-~]{1,40}".prop_map(|release| Record::Hello { release }),
            (name, any::<u64>()).prop_map(|(name, len)| Record::FileBegin { name, len }),
            (name, any::<u64>()).prop_map(|(name, checksum)| Record::FileEnd { name, checksum }),
            (name, status, any::<u64>()).prop_map(|(name, status, elapsed_ms)| Record::Step {
                name,
                status,
                elapsed_ms
            }),
            "[ -~]{0,60}".prop_map(|message| Record::Error { message }),
            Just(Record::Done),
        ]
    }

    proptest! {
        #[test]
        fn every_record_round_trips(r in record()) {
            prop_assert_eq!(Record::parse(&r.to_string()), Ok(Some(r)));
        }

        #[test]
        fn any_file_round_trips_in_any_split(data in proptest::collection::vec(any::<u8>(), 0..5000), cut in 1usize..4096) {
            let text = channel(&file_records("f.bin", &data).unwrap());
            // The host reads the channel in arbitrary pieces.
            let mut split = LineSplitter::default();
            let mut t = Transcript::default();
            for piece in text.as_bytes().chunks(cut) {
                for line in split.push(piece) {
                    t.feed_line(&line);
                }
            }
            prop_assert_eq!(split.rest(), None);
            t.finish();
            prop_assert!(t.problems.is_empty(), "{:?}", t.problems);
            prop_assert_eq!(&t.files["f.bin"], &data);
        }
    }
}
