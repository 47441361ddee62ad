//! Where a case's wall time went, phase by phase: converted from the harness's `phases::Phases`,
//! in JSON a map from the phase's name to milliseconds (`{"spawn": 0.41, "init": 0.9, ...}`).
//!
//! Phase names are kept as text, so a report from a newer harness with a phase this reader does
//! not know still reads; [`PHASE_ORDER`] is the order renderers show the known ones in.

use std::collections::BTreeMap;
use std::time::Duration;

use isoprobe_harness::phases as harness;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The phases a harness of this version records, in the order a case goes through them (see the
/// harness's `phases::Phase` for what each covers).
pub const PHASE_ORDER: [&str; 11] =
    ["plan", "setup", "spawn", "host-view", "init", "observe", "host-answers", "controls", "reap", "judge", "teardown"];

/// Where `phase` stands in [`PHASE_ORDER`]; any other phase after every known one.
pub fn phase_rank(phase: &str) -> usize {
    PHASE_ORDER.iter().position(|p| *p == phase).unwrap_or(PHASE_ORDER.len())
}

/// The wall time of each phase a case reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(into = "BTreeMap<String, f64>", try_from = "BTreeMap<String, f64>")]
#[schemars(with = "BTreeMap<String, f64>")]
pub struct Phases(pub(crate) BTreeMap<String, Duration>);

impl Phases {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The time of `phase` (zero if the case did not reach it).
    pub fn get(&self, phase: &str) -> Duration {
        self.0.get(phase).copied().unwrap_or_default()
    }

    /// Every phase recorded with its time: the known ones in [`PHASE_ORDER`], then any other by
    /// name.
    pub fn ordered(&self) -> Vec<(&str, Duration)> {
        let mut out: Vec<(&str, Duration)> = self.0.iter().map(|(k, d)| (k.as_str(), *d)).collect();
        out.sort_by_key(|(name, _)| phase_rank(name));
        out
    }

    /// The sum over every phase.
    pub fn total(&self) -> Duration {
        self.0.values().sum()
    }
}

/// Phases from their names and times (a name given twice keeps its last time).
impl FromIterator<(String, Duration)> for Phases {
    fn from_iter<I: IntoIterator<Item = (String, Duration)>>(iter: I) -> Phases {
        Phases(iter.into_iter().collect())
    }
}

impl From<&harness::Phases> for Phases {
    fn from(p: &harness::Phases) -> Phases {
        Phases(p.iter().map(|(phase, d)| (phase.name().to_owned(), d)).collect())
    }
}

impl From<Phases> for BTreeMap<String, f64> {
    fn from(p: Phases) -> Self {
        p.0.into_iter().map(|(k, d)| (k, d.as_secs_f64() * 1e3)).collect()
    }
}

impl TryFrom<BTreeMap<String, f64>> for Phases {
    type Error = String;
    fn try_from(m: BTreeMap<String, f64>) -> Result<Self, String> {
        m.into_iter()
            .map(|(k, ms)| match Duration::try_from_secs_f64(ms / 1e3) {
                Ok(d) => Ok((k, d)),
                Err(_) => Err(format!("bad duration {ms} ms of phase {k}")),
            })
            .collect::<Result<_, _>>()
            .map(Phases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_phases_are_the_harness_s_in_its_order() {
        let names: Vec<&str> = harness::Phase::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(names, PHASE_ORDER);
    }

    #[test]
    fn phases_read_in_order_and_an_unknown_one_last() {
        let p: Phases = serde_json::from_str(r#"{"warp": 1.0, "teardown": 0.5, "plan": 0.25}"#).unwrap();
        let names: Vec<&str> = p.ordered().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["plan", "teardown", "warp"]);
        assert_eq!(p.total(), Duration::from_micros(1750));
        assert_eq!(p.get("spawn"), Duration::ZERO);
        assert!(serde_json::from_str::<Phases>(r#"{"plan": -1.0}"#).is_err());
    }
}
