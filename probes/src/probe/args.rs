//! The probe's command line: which mode, and the few parameters a mode needs before it can read
//! stdin. The harness builds these arguments with [`Mode::to_args`], so both sides share one parser.

use std::ffi::OsString;
use std::path::Path;

use crate::ns::NsSet;
use crate::wire::TimeOffsets;

/// The name the probe runs under, inside every container and as `argv[0]` of a multicall binary.
pub const PROBE_NAME: &str = "isoprobe-probe";

/// How the joiner enters a container's namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinVia {
    /// One setns(2) per `/proc/<pid>/ns/<kind>` file, user namespace first (nsenter's way).
    NsFiles,
    /// One setns(2) on a pidfd with all the flags at once (Linux 5.8).
    Pidfd,
}

/// What the probe process should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Read the hello, run init, observe.
    Observe,
    /// unshare(2) `kinds`, report on `sync_fd`, wait for the id maps, set time offsets, fork, exec
    /// `observe`.
    Unshare { kinds: NsSet, sync_fd: i32, time_offsets: Option<TimeOffsets> },
    /// setns(2) into `kinds` of `target`, enter its root, fork, exec `observe`.
    Join { target: i32, via: JoinVia, kinds: NsSet },
    /// Do nothing until stdin reaches end of file: the harness's host-side sentinel process. The
    /// tag only marks its command line.
    Hold { tag: String },
    /// Exit 0 at once: what every probe pays before it reads its hello (the exec of this
    /// executable, the C library's and Rust's start-up, the exit), for the benches'
    /// `container/probe_start`.
    Exit,
}

impl Mode {
    /// The arguments (after `argv[0]`) that [`Mode::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        match self {
            Mode::Observe => vec![],
            Mode::Hold { tag } => vec!["hold".into(), tag.clone()],
            Mode::Exit => vec!["exit".into()],
            Mode::Unshare { kinds, sync_fd, time_offsets } => {
                let mut a = vec!["unshare".into(), kinds.to_string(), sync_fd.to_string()];
                if let Some(t) = time_offsets {
                    a.push(format!("{},{}", t.monotonic_ns, t.boottime_ns));
                }
                a
            }
            Mode::Join { target, via, kinds } => vec![
                "join".into(),
                target.to_string(),
                match via {
                    JoinVia::NsFiles => "ns-files".into(),
                    JoinVia::Pidfd => "pidfd".into(),
                },
                kinds.to_string(),
            ],
        }
    }

    pub fn parse(args: &[OsString]) -> Result<Mode, String> {
        let args: Vec<&str> = args
            .iter()
            .map(|a| a.to_str().ok_or_else(|| format!("argument {a:?} is not UTF-8")))
            .collect::<Result<_, _>>()?;
        let num = |s: &str, what: &str| s.parse::<i64>().map_err(|_| format!("bad {what} `{s}`"));
        let kinds = |s: &str| s.parse::<NsSet>().map_err(|e| e.to_string());
        match args.as_slice() {
            [] | ["observe"] => Ok(Mode::Observe),
            ["hold", tag] => Ok(Mode::Hold { tag: (*tag).to_owned() }),
            ["exit"] => Ok(Mode::Exit),
            ["unshare", k, fd, rest @ ..] if rest.len() <= 1 => {
                let time_offsets = match rest {
                    [t] => {
                        let (m, b) = t.split_once(',').ok_or_else(|| format!("bad time offsets `{t}`"))?;
                        Some(TimeOffsets {
                            monotonic_ns: num(m, "monotonic offset")?,
                            boottime_ns: num(b, "boottime offset")?,
                        })
                    }
                    _ => None,
                };
                Ok(Mode::Unshare { kinds: kinds(k)?, sync_fd: num(fd, "fd")? as i32, time_offsets })
            }
            ["join", pid, via, k] => Ok(Mode::Join {
                target: num(pid, "pid")? as i32,
                via: match *via {
                    "ns-files" => JoinVia::NsFiles,
                    "pidfd" => JoinVia::Pidfd,
                    other => return Err(format!("bad join method `{other}` (ns-files or pidfd)")),
                },
                kinds: kinds(k)?,
            }),
            other => Err(format!(
                "usage: {PROBE_NAME} [observe | hold TAG | exit | unshare KINDS SYNC_FD [MONO_NS,BOOT_NS] | join PID ns-files|pidfd KINDS], got {other:?}"
            )),
        }
    }
}

/// Becomes the probe (and never returns) when this process was started as `isoprobe-probe`.
///
/// Call it first thing in `main` of any isoprobe binary that the harness may use as the probe.
pub fn multicall() {
    let mut args = std::env::args_os();
    let is_probe = args.next().map(|a0| Path::new(&a0).file_name().is_some_and(|n| n == PROBE_NAME)).unwrap_or(false);
    if is_probe {
        std::process::exit(super::main_with_args(args.collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(v: Vec<String>) -> Vec<OsString> {
        v.into_iter().map(OsString::from).collect()
    }

    proptest! {
        #[test]
        fn unshare_args_round_trip(bits in any::<u8>(), fd in 0i32..1024, t in any::<Option<(i64, i64)>>()) {
            let mode = Mode::Unshare {
                kinds: NsSet::from_bits(bits),
                sync_fd: fd,
                time_offsets: t.map(|(m, b)| TimeOffsets { monotonic_ns: m, boottime_ns: b }),
            };
            prop_assert_eq!(Mode::parse(&os(mode.to_args())).unwrap(), mode);
        }

        #[test]
        fn join_args_round_trip(bits in any::<u8>(), pid in 1i32..i32::MAX, pidfd in any::<bool>()) {
            let via = if pidfd { JoinVia::Pidfd } else { JoinVia::NsFiles };
            let mode = Mode::Join { target: pid, via, kinds: NsSet::from_bits(bits) };
            prop_assert_eq!(Mode::parse(&os(mode.to_args())).unwrap(), mode);
        }
    }

    #[test]
    fn the_modes_without_numbers_round_trip_and_take_no_extra_argument() {
        for mode in [Mode::Observe, Mode::Hold { tag: "run-1".into() }, Mode::Exit] {
            assert_eq!(Mode::parse(&os(mode.to_args())).unwrap(), mode);
        }
        let err = Mode::parse(&os(vec!["exit".into(), "0".into()])).unwrap_err();
        assert!(err.starts_with("usage:"), "{err}");
    }

    #[test]
    fn bad_arguments_are_explained() {
        let err = Mode::parse(&os(vec!["join".into(), "x".into(), "pidfd".into(), "pid".into()])).unwrap_err();
        assert!(err.contains("bad pid `x`"), "{err}");
        let err = Mode::parse(&os(vec!["bogus".into()])).unwrap_err();
        assert!(err.starts_with("usage:"), "{err}");
    }
}
