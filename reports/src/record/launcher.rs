//! The launcher conformance records of a report: who each launcher was on the machine (tool,
//! package, version, or why it could not run; what it can express), how each case run through a
//! launcher was assessed against the tool's documented defaults and expected differences, and the
//! start latency measured in the run.
//!
//! Converted from the harness's `launcher::registry::LauncherInfo` and
//! `launcher::differences::Assessment`, which are not a wire format. The views drawn from these
//! (the conformance table, the limit table) are [`crate::conformance`]'s.
//!
//! What this module must never do: turn an explained difference into a pass
//! ([`CaseAssessment::explains_all_of`] only says whether every failure has a row).

use isoprobe_harness::launcher::differences::Assessment;
use isoprobe_harness::launcher::registry::LauncherInfo;
use isoprobe_harness::launcher::{Capabilities, IdMapSupport, OffsetSupport, Performer};
use isoprobe_harness::{CheckId, NsSet, RootfsMode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::outcome::CaseOutcome;
use super::verdict::{Role, Skip, Verdict};

/// One launcher of the run: the header of its column in the conformance table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LauncherHeader {
    /// `clone3`, `lxc`, `util-unshare`, ...
    pub name: String,
    /// The real tool it drives, as found on the machine; absent for the native launcher and for
    /// a tool that is not installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Tool>,
    /// Why the launcher cannot run here at all (`lxc-execute not installed (Debian package lxc)`);
    /// its cases are skips with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Skip>,
    pub capabilities: LauncherCapabilities,
    /// What the harness runs the tool under on this machine (a workaround), and what of the
    /// container's isolation that wrapper could lend it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<String>,
}

/// An external tool as found on the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    /// The command (`lxc-execute`, `bwrap`).
    pub command: String,
    /// The Debian package that ships it.
    pub package: String,
    pub path: String,
    /// The first line of its version output.
    pub version: String,
}

/// What of a case spec a launcher can express.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LauncherCapabilities {
    /// The namespaces it creates on request.
    #[schemars(with = "Vec<String>")]
    pub namespaces: NsSet,
    pub rootfs: Vec<RootfsMode>,
    /// `any`, `own-ids-only` (root inside onto the caller's ids) or `none`.
    pub id_maps: String,
    /// Who sets the hostname: `launcher`, `payload` (the tool has no option; the probe's init
    /// does it) or `no`.
    pub hostname: String,
    /// Who mounts a procfs of a new pid namespace (same words as `hostname`).
    pub proc: String,
    /// Who mounts a sysfs of a new network namespace (same words as `hostname`).
    pub sysfs: String,
    /// `nanoseconds`, `whole-seconds` or `none`.
    pub time_offsets: String,
    /// Whether it applies cgroup limits (memory.max, pids.max, ...).
    pub cgroup_limits: bool,
    /// Whether it runs as an unprivileged user.
    pub rootless: bool,
}

/// A case run through a launcher, judged against the tool's documented defaults and the table of
/// expected differences (harness `launcher::differences`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CaseAssessment {
    /// Isolation the tool added on its own, which the oracle judged with.
    pub defaults: Vec<ToolDefaultNote>,
    /// Failed checks that are a documented property of the tool.
    pub explained: Vec<ExplainedDifference>,
    /// Failures no row of the table explains, and errors of the case itself.
    pub unexplained: Vec<String>,
    /// Rows of the table that predicted a difference on a check that passed.
    pub stale: Vec<String>,
}

/// A tool default that adds isolation the spec did not ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolDefaultNote {
    pub what: String,
    /// Where the tool documents it.
    pub source: String,
}

/// A failed check explained by a row of the differences table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExplainedDifference {
    pub role: Role,
    pub check: CheckId,
    /// The verdict as judged (a failure: the expectation is never bent).
    pub verdict: Verdict,
    /// What the tool gives instead.
    pub observed: String,
    /// Where the tool documents it, or the source line that does it.
    pub source: String,
}

/// Start latency of the launchers, measured once in the run (a recorded measurement, not a test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StartLatency {
    /// The namespace set every launcher started (the payload is the probe, in the minimal
    /// rootfs).
    #[schemars(with = "Vec<String>")]
    pub namespaces: NsSet,
    /// Starts per launcher, interleaved round-robin across the launchers.
    pub starts: u32,
    pub launchers: Vec<LatencyRow>,
}

/// One launcher's start latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyRow {
    pub launcher: String,
    /// The case started (its spec's name).
    pub case: String,
    pub result: LatencyResult,
}

/// From the launch to the probe's first message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum LatencyResult {
    Measured {
        median_ns: f64,
        min_ns: f64,
        max_ns: f64,
        starts: u32,
    },
    /// Not measured: the launcher cannot run this case here.
    Skipped {
        reason: String,
    },
    /// A start failed; no figure is recorded.
    Error {
        cause: String,
    },
}

// The words of the capabilities are spelled here, one match arm each, rather than taken from the
// harness's serialisation of its support levels: renaming a harness variant must not rename them.

impl From<&LauncherInfo> for LauncherHeader {
    fn from(i: &LauncherInfo) -> LauncherHeader {
        // The kind is the name's source; nothing else of the header depends on it.
        let LauncherInfo { kind: _, name, tool, unavailable, capabilities, wrapper } = i;
        let Capabilities { namespaces, rootfs, id_maps, hostname, proc, sysfs, time_offsets, cgroup_limits, rootless } =
            capabilities;
        LauncherHeader {
            name: (*name).to_owned(),
            tool: tool.as_ref().map(|t| Tool {
                command: t.command.to_owned(),
                package: t.package.to_owned(),
                path: t.path.display().to_string(),
                version: t.version.clone(),
            }),
            unavailable: unavailable.as_ref().map(Skip::from),
            wrapper: wrapper.clone(),
            capabilities: LauncherCapabilities {
                namespaces: *namespaces,
                rootfs: rootfs.clone(),
                id_maps: id_map_word(*id_maps).to_owned(),
                hostname: performer_word(*hostname).to_owned(),
                proc: performer_word(*proc).to_owned(),
                sysfs: performer_word(*sysfs).to_owned(),
                time_offsets: offset_word(*time_offsets).to_owned(),
                cgroup_limits: *cgroup_limits,
                rootless: *rootless,
            },
        }
    }
}

fn id_map_word(s: IdMapSupport) -> &'static str {
    match s {
        IdMapSupport::Any => "any",
        IdMapSupport::OwnIdsOnly => "own-ids-only",
        IdMapSupport::None => "none",
    }
}

fn performer_word(p: Performer) -> &'static str {
    match p {
        Performer::Launcher => "launcher",
        Performer::Payload => "payload",
        Performer::No => "no",
    }
}

fn offset_word(s: OffsetSupport) -> &'static str {
    match s {
        OffsetSupport::Nanoseconds => "nanoseconds",
        OffsetSupport::WholeSeconds => "whole-seconds",
        OffsetSupport::None => "none",
    }
}

impl From<&Assessment> for CaseAssessment {
    fn from(a: &Assessment) -> CaseAssessment {
        // The launcher and its tool are the header's (one per launcher, not per case).
        let Assessment { launcher: _, tool: _, defaults, explained, unexplained, stale } = a;
        CaseAssessment {
            defaults: defaults
                .iter()
                .map(|d| ToolDefaultNote { what: d.what.clone(), source: d.source.to_owned() })
                .collect(),
            explained: explained
                .iter()
                .map(|e| ExplainedDifference {
                    role: e.role.into(),
                    check: e.check,
                    verdict: (&e.verdict).into(),
                    observed: e.observed.to_owned(),
                    source: e.source.to_owned(),
                })
                .collect(),
            unexplained: unexplained.clone(),
            stale: stale.clone(),
        }
    }
}

impl CaseAssessment {
    /// No unexplained failure and no stale row.
    pub fn conforms(&self) -> bool {
        self.unexplained.is_empty() && self.stale.is_empty()
    }

    /// The row explaining `check` of the probe run `role`, if any.
    pub fn explanation(&self, role: Role, check: CheckId) -> Option<&ExplainedDifference> {
        self.explained.iter().find(|e| e.role == role && e.check == check)
    }

    /// Whether every failure of `case` is one of the explained ones: each failed check, each
    /// disagreement of a joiner (by the check it names), and no failed limit check (limit verdicts
    /// have no rows).
    pub fn explains_all_of(&self, case: &CaseOutcome) -> bool {
        let checks = case.runs.iter().all(|r| {
            r.checks.iter().all(|c| !c.verdict.is_failure() || self.explanation(r.role, c.check).is_some())
                && r.limits.iter().all(|l| !l.verdict.is_failure())
        });
        let joins =
            case.join_mismatches.iter().all(|m| self.explained.iter().any(|e| m.starts_with(&format!("{}:", e.check))));
        case.error.is_none() && checks && joins
    }
}

impl LatencyResult {
    pub fn median_ns(&self) -> Option<f64> {
        match self {
            LatencyResult::Measured { median_ns, .. } => Some(*median_ns),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use isoprobe_harness::launcher::differences::Explained;
    use isoprobe_harness::launcher::{ToolDefault, ToolInfo};
    use isoprobe_harness::{LauncherKind, verdict as harness};
    use proptest::prelude::*;

    use super::*;
    use crate::strategy::{self, assert_round_trip};

    proptest! {
        #[test]
        fn launcher_records_round_trip(
            h in strategy::launcher_header(),
            a in strategy::case_assessment(),
            l in strategy::start_latency(),
        ) {
            assert_round_trip(&h)?;
            assert_round_trip(&a)?;
            assert_round_trip(&l)?;
        }
    }

    /// The words are those the harness's support levels serialised as, which reports written
    /// before the conversion spelled them out hold.
    #[test]
    fn capability_words_are_the_harness_s_names() {
        let json = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for s in [IdMapSupport::Any, IdMapSupport::OwnIdsOnly, IdMapSupport::None] {
            assert_eq!(id_map_word(s), json(serde_json::json!(s)));
        }
        for p in [Performer::Launcher, Performer::Payload, Performer::No] {
            assert_eq!(performer_word(p), json(serde_json::json!(p)));
        }
        for o in [OffsetSupport::Nanoseconds, OffsetSupport::WholeSeconds, OffsetSupport::None] {
            assert_eq!(offset_word(o), json(serde_json::json!(o)));
        }
    }

    #[test]
    fn a_header_records_the_tool_or_why_it_is_unavailable() {
        let capabilities = Capabilities {
            namespaces: NsSet::ALL,
            rootfs: vec![RootfsMode::Host, RootfsMode::PivotRoot],
            id_maps: IdMapSupport::OwnIdsOnly,
            hostname: Performer::Launcher,
            proc: Performer::Payload,
            sysfs: Performer::No,
            time_offsets: OffsetSupport::WholeSeconds,
            cgroup_limits: false,
            rootless: true,
        };
        let tool = ToolInfo {
            command: "bwrap",
            package: "bubblewrap",
            path: PathBuf::from("/usr/bin/bwrap"),
            version: "bubblewrap 0.8.0".into(),
        };
        let info = LauncherInfo {
            kind: LauncherKind::Bwrap,
            name: "bwrap",
            tool: Some(tool),
            unavailable: None,
            capabilities,
            wrapper: None,
        };
        let h = LauncherHeader::from(&info);
        assert_eq!(
            h.tool.as_ref().map(|t| (t.path.as_str(), t.version.as_str())),
            Some(("/usr/bin/bwrap", "bubblewrap 0.8.0"))
        );
        let c = &h.capabilities;
        let words = [&c.id_maps, &c.hostname, &c.proc, &c.sysfs, &c.time_offsets];
        assert_eq!(words, ["own-ids-only", "launcher", "payload", "no", "whole-seconds"]);
        assert_eq!((c.namespaces, c.cgroup_limits, c.rootless), (NsSet::ALL, false, true));

        let missing = harness::Skip { requirement: "tool:runc".into(), reason: "runc not installed".into() };
        let info =
            LauncherInfo { tool: None, unavailable: Some(missing), name: "runc", kind: LauncherKind::Runc, ..info };
        let h = LauncherHeader::from(&info);
        assert_eq!((h.tool, h.unavailable.map(|u| u.reason)), (None, Some("runc not installed".to_owned())));
    }

    #[test]
    fn an_assessment_keeps_its_rows_and_leaves_the_tool_to_the_header() {
        let verdict =
            harness::Verdict::Fail { expected: "down".into(), observed: "up".into(), evidence: String::new() };
        let a = Assessment {
            launcher: LauncherKind::Bwrap,
            tool: None,
            defaults: vec![ToolDefault { what: "a new ipc namespace".into(), source: "bwrap(1)" }],
            explained: vec![Explained {
                role: harness::Role::Joiner,
                check: CheckId::NetLinks,
                verdict,
                observed: "lo is up",
                source: "bubblewrap source",
            }],
            unexplained: vec!["mnt/ns-inode: shared".into()],
            stale: Vec::new(),
        };
        let r = CaseAssessment::from(&a);
        assert_eq!(r.defaults, [ToolDefaultNote { what: "a new ipc namespace".into(), source: "bwrap(1)".into() }]);
        let e = r.explanation(Role::Joiner, CheckId::NetLinks).expect("the row");
        assert_eq!((e.observed.as_str(), e.verdict.label()), ("lo is up", "fail"));
        assert!(r.explanation(Role::Container, CheckId::NetLinks).is_none(), "a row is for its role only");
        assert!(!r.conforms(), "an unexplained failure");
    }
}
