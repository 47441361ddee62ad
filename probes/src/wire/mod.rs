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
//! reports), `mounts.rs` (the mount cases' propagation types and host mount points), `tagged.rs`
//! (how the tagged enums are encoded and decoded without serde's buffering). This file holds the
//! messages themselves and their encoding.

mod facts;
mod init;
mod limits;
mod mounts;
mod sentinels;
mod tagged;

pub use facts::*;
pub use init::*;
pub use limits::*;
pub use mounts::*;
pub use sentinels::*;

use serde::{Deserialize, Serialize};

use tagged::tagged;

/// Bumped on every incompatible change of the types below.
pub const WIRE_VERSION: u32 = 15;

/// A message from the harness to the probe (one JSON document per line on the probe's stdin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
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
    /// A holder reads these /proc/sys entries (paths under /proc/sys) in its own namespaces and
    /// replies with [`FromProbe::SysctlValues`]: what a process of the container sees after a
    /// joiner wrote them.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    ReadSysctls {
        paths: Vec<String>,
    },
}
tagged!(ToProbe, "msg");

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
    /// The probe's own namespaces were made for it alone and end when it does (a native
    /// launcher's container that nothing joins): a mount it makes there that the host did not
    /// see may be left to the end of its mount namespace instead of unmounted. Each unmount waits
    /// for an RCU grace period, and the namespace's end waits for one whatever it holds. Absent
    /// (an older harness): `false`, every mount is unmounted, so the field needs no new version.
    #[serde(default)]
    pub ends_with_probe: bool,
    /// A cgroup-limit case: run this exercise instead of the namespace observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(value = "None"))]
    pub exercise: Option<Exercise>,
    /// The harness's own namespaces, for the interlock: the probe changes no state of a namespace
    /// that is one of these (see [`Refusal`]). A kind missing here is never changed.
    #[serde(default)]
    pub harness_ns: Vec<NsId>,
    /// Which share of its sysctl sweep the probe makes (the network tree's entries and the global
    /// entries); `None`: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctl_stripe: Option<SysctlStripe>,
    /// The global sysctl entries (paths under /proc/sys) the probe tests, of its stripe: what the
    /// harness listed once for the run (a global entry is the same one in every namespace, and
    /// listing /proc/sys costs a probe more than testing its share of it).
    #[serde(default)]
    pub global_sysctls: Vec<String>,
    /// With a stripe, the network entries of it that a fresh network namespace has on this
    /// kernel, and the `available_*` entries that list candidates: the harness's listing, made
    /// once for the run in a network namespace of its own. A probe in a network namespace of its
    /// own opens these by name instead of listing its tree, which in a fresh namespace is some 600
    /// entries, each a new dentry and inode (1.1 to 1.4 ms a case, more than the writes of a
    /// stripe). `None`: the probe lists its tree (a launcher that may add devices, or a harness
    /// that could not make a network namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_sysctls: Option<Vec<String>>,
}

/// A share of a sweep over many sysctl entries: the entries whose path hashes to `index` modulo
/// `of` (FNV-1a of the path, so the share of an entry does not depend on what else a namespace
/// lists). A matrix spreads its cases over the stripes so that together they cover every entry
/// (see the harness's `matrix::SYSCTL_STRIPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SysctlStripe {
    pub index: u32,
    pub of: u32,
}

impl SysctlStripe {
    /// Whether `path` (under /proc/sys) is in this share. A stripe of nothing (`of` 0) holds all.
    pub fn holds(&self, path: &str) -> bool {
        self.of == 0 || fnv1a(path.as_bytes()) % self.of == self.index % self.of
    }
}

impl std::fmt::Display for SysctlStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stripe {} of {}", self.index, self.of)
    }
}

/// FNV-1a, 32 bits: a hash that is the same in every build and on every machine.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// A message from the probe to the harness (one JSON document per line on the probe's stdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
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
    /// A holder's reply to [`ToProbe::ReadSysctls`]: each value whitespace-normalised, `None`
    /// where it could not be read.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    SysctlValues {
        values: Vec<Option<String>>,
    },
}
tagged!(FromProbe, "msg");

/// What the probe asks the host to do or look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
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
    /// Mount a tmpfs holding the marker token on the propagation mount point's
    /// [`FROM_HOST`] directory now (a mount case, after the probe's namespaces exist).
    PropagationMount,
    /// Unmount it again, after checking it was there all the while.
    PropagationUnmount,
    /// Does the host see a mount on the propagation mount point's [`FROM_PROBE`] directory?
    PropagationOwnVisible,
    /// Which of the probe's own IPC objects does the host see?
    OwnIpcVisible,
    /// Owner of a file the probe created in the scratch directory, as the host stats it.
    ScratchFileOwner { name: String },
    /// The host's reading of each of these clocks, in order ([`HostAnswer::ClocksNs`]).
    Clocks { clocks: Vec<ClockKind> },
    /// The probe is about to write these entries (paths under /proc/sys that a namespace kind
    /// owns) in its own namespaces: the host records the values it may write (for the recovery of
    /// a run killed meanwhile) and says what its own values are ([`HostAnswer::SysctlValues`]);
    /// for uts entries it takes the domainname lock until the check.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    SysctlBegin { entries: Vec<SysctlPlan> },
    /// The probe has written the entries of its [`HostQuestion::SysctlBegin`] at these indices:
    /// the host reads its own values again, restores any that changed to one the probe may have
    /// written, releases the domainname lock if it took it, and (for a joiner) asks the container
    /// it joined what it reads. It answers [`HostAnswer::Ack`] and keeps what it saw.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    SysctlCheck { written: Vec<u32> },
    /// A question about the case's cgroups (limit cases only).
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    Limit { ask: LimitQuestion },
}
tagged!(HostQuestion, "question");

/// The host's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(remote = "Self", rename_all = "kebab-case")]
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
    /// The host's reading of each clock of a [`HostQuestion::Clocks`], in order, in nanoseconds.
    ClocksNs {
        ns: Vec<i64>,
    },
    /// The host's value of each entry of a [`HostQuestion::SysctlBegin`], in order (`None`: no
    /// such entry on the host, or unreadable), whitespace-normalised.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(skip))]
    SysctlValues {
        values: Vec<Option<String>>,
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
tagged!(HostAnswer, "answer");

/// An entry the probe is about to write, and the values it may write to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SysctlPlan {
    pub path: String,
    pub candidates: Vec<String>,
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

    /// The stripes of one size partition the entries: each path is in exactly one, and the
    /// hash is FNV-1a's (its published test vector), so every build puts it in the same one.
    #[test]
    fn stripes_partition_paths() {
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        let paths = ["net/core/somaxconn", "net/ipv4/ip_forward", "kernel/shmmax", "vm/swappiness", ""];
        for of in [1, 2, 8, 16] {
            for p in paths {
                let holders = (0..of).filter(|&index| SysctlStripe { index, of }.holds(p)).count();
                assert_eq!(holders, 1, "{p} in {of} stripes");
            }
        }
        assert!(paths.iter().all(|p| SysctlStripe { index: 3, of: 0 }.holds(p)), "a stripe of nothing holds all");
    }

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

            /// The sysctl messages, left out of the generated trees (their strategies would overflow a
            /// test thread's stack).
            #[test]
            fn sysctl_messages(
                paths in proptest::collection::vec(".{0,40}", 0..8),
                values in proptest::collection::vec(proptest::option::of(".{0,40}"), 0..8),
                plan in proptest::collection::vec((".{0,40}", proptest::collection::vec(".{0,20}", 0..4)), 0..8),
            ) {
                let plan: Vec<SysctlPlan> = plan.into_iter().map(|(path, candidates)| SysctlPlan { path, candidates }).collect();
                let to = [ToProbe::ReadSysctls { paths: paths.clone() }, ToProbe::Answer { id: 1, answer: HostAnswer::SysctlValues { values: values.clone() } }];
                for msg in to {
                    prop_assert_eq!(decode::<ToProbe>("harness message", 1, &encode(&msg)).unwrap(), msg);
                }
                let from = [FromProbe::SysctlValues { values }, FromProbe::Ask { id: 1, question: HostQuestion::SysctlBegin { entries: plan } },
                    FromProbe::Ask { id: 2, question: HostQuestion::SysctlCheck { written: (0..paths.len() as u32).collect() } }];
                for msg in from {
                    prop_assert_eq!(decode::<FromProbe>("probe message", 1, &encode(&msg)).unwrap(), msg);
                }
            }

            #[test]
            fn sysctl_facts(
                kind in any::<crate::ns::NsKind>(),
                written in proptest::collection::vec(any::<SysctlWrite>(), 0..4),
                skipped in proptest::collection::vec(any::<SysctlSkip>(), 0..4),
                shared in any::<NsId>(),
                tests in proptest::collection::vec(any::<SysctlTest>(), 0..4),
            ) {
                let facts = [
                    Fact::Sysctls { kind, observed: SysctlObservation::Own { written, skipped } },
                    Fact::Sysctls { kind, observed: SysctlObservation::Harness { shared, tests: tests.clone() } },
                    Fact::GlobalSysctls { tests },
                ];
                for fact in facts {
                    let msg = FromProbe::Fact { fact };
                    prop_assert_eq!(decode::<FromProbe>("probe message", 1, &encode(&msg)).unwrap(), msg);
                }
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
