//! The wire format between the harness and the probe: JSON lines on the probe's stdin and stdout.
//!
//! stdio is the one channel every launcher passes through (a native clone, `unshare`, bubblewrap,
//! LXC, runc, ...), so it is the only channel the probe relies on. stderr carries diagnostics only
//! and is never parsed.
//!
//! The conversation:
//! 1. harness → probe: [`ToProbe::Hello`] with the init plan and the sentinel descriptions;
//! 2. probe → harness: [`FromProbe::Fact`] lines, and [`FromProbe::Ask`] when the probe needs the
//!    host to look at something *now* (the harness replies with [`ToProbe::Answer`]);
//! 3. probe → harness: [`FromProbe::Done`]; a holder (a container that another probe will join)
//!    then waits for [`ToProbe::Release`].
//!
//! The probe reports facts, never verdicts: "kill(4242, 0) failed with ESRCH", not "pid isolated".
//!
//! Every message carries its variant in a `msg`/`fact`/`question`/`answer` tag (no untagged enums,
//! no flatten); the hello carries [`WIRE_VERSION`]. These modules must stay free of I/O and of
//! anything Linux-specific beyond plain data.
//!
//! The types live by concern, all re-exported here: `init.rs` (the init plan and the interlock's
//! refusals), `sentinels.rs`, `facts.rs`, `limits.rs` (the limit cases' exercises, questions and
//! reports). This file holds the messages themselves and their encoding.

mod facts;
mod init;
mod limits;
mod sentinels;

pub use facts::*;
pub use init::*;
pub use limits::*;
pub use sentinels::*;

use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change of the types below.
pub const WIRE_VERSION: u32 = 3;

/// A message from the harness to the probe (one JSON document per line on the probe's stdin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum ToProbe {
    Hello {
        version: u32,
        case: Box<ProbeCase>,
    },
    Answer {
        id: u32,
        answer: HostAnswer,
    },
    /// A holder may exit now.
    Release,
}

/// What the probe needs to know: how to finish setting up its container, and where the sentinels are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ProbeCase {
    /// The case name, for diagnostics on stderr.
    pub name: String,
    pub init: InitPlan,
    pub sentinels: Sentinels,
    /// Stay alive after [`FromProbe::Done`] until [`ToProbe::Release`] (a container to be joined).
    pub hold: bool,
    /// A cgroup-limit case: run this exercise instead of the namespace observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(value = "None"))]
    pub exercise: Option<Exercise>,
    /// The harness's own namespaces, for the interlock: the probe changes no state of a namespace
    /// that is one of these (see [`Refusal`]). A kind missing here is never changed.
    #[serde(default)]
    pub harness_ns: Vec<NsId>,
}

/// A message from the probe to the harness (one JSON document per line on the probe's stdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum FromProbe {
    /// "Host, check now": the probe waits for the [`ToProbe::Answer`] with the same id.
    Ask {
        id: u32,
        question: HostQuestion,
    },
    Fact {
        fact: Fact,
    },
    /// All facts are out; `facts` is how many, so a lost line is noticed.
    Done {
        facts: u32,
    },
    /// Init failed; no facts follow.
    Fatal {
        stage: String,
        error: String,
    },
}

/// What the probe asks the host to do or look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "question", rename_all = "kebab-case")]
pub enum HostQuestion {
    /// Take the host-wide domainname lock (several probes may share the host's uts namespace).
    LockDomainname,
    /// Does the host see this domainname? The host then restores its own and releases the lock.
    CheckDomainname { token: String },
    /// Mount the sentinel tmpfs now (after the probe's namespaces exist).
    MountSentinel,
    /// Unmount it again.
    UnmountSentinel,
    /// Does the host's mount table hold the probe's own tmpfs?
    OwnMountVisible,
    /// Which of the probe's own IPC objects does the host see?
    OwnIpcVisible,
    /// Owner of a file the probe created in the scratch directory, as the host stats it.
    ScratchFileOwner { name: String },
    /// The host's reading of a clock.
    Clock { clock: ClockKind },
    /// A question about the case's cgroups (limit cases only).
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Limit { ask: LimitQuestion },
}

/// The host's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum HostAnswer {
    Ack,
    Seen {
        seen: bool,
    },
    Ipc {
        seen: IpcSeen,
    },
    Owner {
        uid: u32,
        gid: u32,
    },
    ClockNs {
        ns: i64,
    },
    /// The answer to a [`HostQuestion::Limit`].
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Limit {
        reply: LimitAnswer,
    },
    /// The host cannot do this here (e.g. mounting needs root); the reason says why.
    Unavailable {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// Which of four IPC objects were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct IpcSeen {
    pub shm: bool,
    pub sem: bool,
    pub msg: bool,
    pub mq: bool,
}

impl IpcSeen {
    pub fn all(&self) -> bool {
        self.shm && self.sem && self.msg && self.mq
    }
    pub fn none(&self) -> bool {
        !(self.shm || self.sem || self.msg || self.mq)
    }
}

/// A line that is not a valid message, with enough context to find it.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} at line {line}: {source} (line was: {excerpt:?})")]
pub struct DecodeError {
    pub what: &'static str,
    pub line: usize,
    pub excerpt: String,
    #[source]
    pub source: serde_json::Error,
}

/// Encodes one message as a single line, with its trailing newline.
pub fn encode<T: Serialize>(msg: &T) -> String {
    // Serialising these plain-data types cannot fail: no maps with non-string keys, no I/O.
    let mut line = serde_json::to_string(msg).expect("wire types always serialise");
    line.push('\n');
    line
}

/// Decodes one line (with or without its newline). `line_no` is 1-based, for the error.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    line_no: usize,
    line: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(line.trim_end_matches(['\n', '\r'])).map_err(|source| DecodeError {
        what,
        line: line_no,
        excerpt: line.chars().take(160).collect(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_single_lines_tagged_in_kebab_case() {
        let line = encode(&FromProbe::Fact {
            fact: Fact::SignalSentinel { result: SysResult::Err { errno: 3, name: "ESRCH".into() } },
        });
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains(r#""msg":"fact""#), "{line}");
        assert!(line.contains(r#""fact":"signal-sentinel""#), "{line}");
        assert!(line.contains(r#""result":"err""#), "{line}");
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let err = decode::<FromProbe>("probe message", 7, "{\"msg\":\"fact\",\"fact\":").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 7"), "{text}");
        assert!(text.contains("probe message"), "{text}");
    }

    #[test]
    fn unknown_variant_is_an_error_not_a_default() {
        assert!(decode::<FromProbe>("probe message", 1, r#"{"msg":"verdict","pass":true}"#).is_err());
    }

    // Arbitrary is derived for tests and for dependants that enable the `arbitrary` feature.
    mod round_trip {
        use super::super::*;
        use proptest::prelude::*;

        /// `any::<ExerciseReport>()`, a union of every exercise's nested report strategies,
        /// overflows the 2 MiB stack of a test thread in a debug build (since the cgroup2 group
        /// and memory reports): the round trip runs on a thread of its own with 64 MiB.
        #[test]
        fn exercise_report() {
            let run = || {
                proptest::test_runner::TestRunner::default()
                    .run(&any::<ExerciseReport>(), |r| {
                        let fact = FromProbe::Fact { fact: Fact::Exercise { report: Box::new(r) } };
                        let back: FromProbe = decode("probe message", 1, &encode(&fact)).unwrap();
                        prop_assert_eq!(back, fact);
                        Ok(())
                    })
                    .map_err(|e| e.to_string())
            };
            let thread = std::thread::Builder::new().stack_size(64 << 20).spawn(run).expect("spawn the test thread");
            if let Err(e) = thread.join().expect("the round trip ran") {
                panic!("{e}");
            }
        }

        proptest! {
            #[test]
            fn to_probe(msg in any::<ToProbe>()) {
                let back: ToProbe = decode("harness message", 1, &encode(&msg)).unwrap();
                prop_assert_eq!(back, msg);
            }

            #[test]
            fn from_probe(msg in any::<FromProbe>()) {
                let back: FromProbe = decode("probe message", 1, &encode(&msg)).unwrap();
                prop_assert_eq!(back, msg);
            }

            #[test]
            fn exercise(e in any::<Exercise>()) {
                let back: Exercise = decode("exercise", 1, &encode(&e)).unwrap();
                prop_assert_eq!(back, e);
            }

            #[test]
            fn limit_question_and_answer(q in any::<LimitQuestion>(), a in any::<LimitAnswer>()) {
                let ask = FromProbe::Ask { id: 1, question: HostQuestion::Limit { ask: q } };
                prop_assert_eq!(decode::<FromProbe>("probe message", 1, &encode(&ask)).unwrap(), ask);
                let answer = ToProbe::Answer { id: 1, answer: HostAnswer::Limit { reply: a } };
                prop_assert_eq!(decode::<ToProbe>("harness message", 1, &encode(&answer)).unwrap(), answer);
            }

            /// Arbitrary bytes never panic the decoder.
            #[test]
            fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let text = String::from_utf8_lossy(&bytes);
                let _ = decode::<FromProbe>("probe message", 1, &text);
            }

            /// A valid message cut short is an error, not a panic or a different message.
            #[test]
            fn truncated_is_an_error(msg in any::<FromProbe>(), cut in 0.0f64..1.0) {
                let line = encode(&msg);
                let body = line.trim_end();
                let at = ((body.len() as f64) * cut) as usize;
                if let Some(prefix) = body.get(..at) {
                    prop_assert!(decode::<FromProbe>("probe message", 1, prefix).is_err());
                }
            }
        }
    }
}
