//! Where a case's wall time goes, phase by phase: what a case costs beyond its namespaces, and
//! what a runtime's start is made of.
//!
//! The run loop ([`crate::run`]) times each phase of a case with one [`Phases`] and records it in
//! the case's outcome; a joining case (two probes) adds both probes' time to the same phases.
//! The phases do not overlap and cover the case from its start to its end, so their sum is the
//! case's duration up to the few clock reads between them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One phase of a case, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Validating and resolving the spec, and checking its requirements.
    Plan,
    /// The case's host objects: its directory and rootfs, sentinels, host IPC objects, cgroups.
    Setup,
    /// The launcher's start: from the call to the probe running in its container (the clone or
    /// the tool, the id maps, the cgroup attach, the exec).
    Spawn,
    /// The probe's fresh names, the hello, and the host's view taken while the probe reads it
    /// and starts (its cgroup, the host's links).
    HostView,
    /// From the hello to the probe's init report: the probe's start, its time namespace,
    /// hostname, mounts and root.
    Init,
    /// From the init report to the probe's `done`: the observations, less the host's answers.
    Observe,
    /// The host answering the probe's questions during the observations.
    HostAnswers,
    /// The host-side controls read after the probe finished (sentinels alive and reachable),
    /// while it exits.
    Controls,
    /// Closing the probe's stdin, its exit and reap, the rest of its stderr, the launcher's
    /// teardown.
    Reap,
    /// The verdicts: every check judged against the oracle.
    Judge,
    /// Removing the case's host objects.
    Teardown,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 11] = [
        Phase::Plan,
        Phase::Setup,
        Phase::Spawn,
        Phase::HostView,
        Phase::Init,
        Phase::Observe,
        Phase::HostAnswers,
        Phase::Controls,
        Phase::Reap,
        Phase::Judge,
        Phase::Teardown,
    ];

    /// The name reports and benchmarks use.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Setup => "setup",
            Phase::Spawn => "spawn",
            Phase::HostView => "host-view",
            Phase::Init => "init",
            Phase::Observe => "observe",
            Phase::HostAnswers => "host-answers",
            Phase::Controls => "controls",
            Phase::Reap => "reap",
            Phase::Judge => "judge",
            Phase::Teardown => "teardown",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The wall time a case spent in each phase (phases it never reached are absent). In JSON a map
/// from the phase's name to milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(into = "BTreeMap<Phase, f64>", try_from = "BTreeMap<Phase, f64>")]
#[schemars(with = "BTreeMap<Phase, f64>")]
pub struct Phases(BTreeMap<Phase, Duration>);

impl Phases {
    /// Adds `d` to `phase`.
    pub fn add(&mut self, phase: Phase, d: Duration) {
        *self.0.entry(phase).or_default() += d;
    }

    /// Runs `f` and adds its wall time to `phase`.
    pub fn time<T>(&mut self, phase: Phase, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        let out = f();
        self.add(phase, t0.elapsed());
        out
    }

    /// Adds the time since `since` to `phase` and returns now (the start of the next phase).
    pub fn lap(&mut self, phase: Phase, since: Instant) -> Instant {
        let now = Instant::now();
        self.add(phase, now.saturating_duration_since(since));
        now
    }

    /// The phases reached, in order, with their time.
    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        self.0.iter().map(|(p, d)| (*p, *d))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Phases> for BTreeMap<Phase, f64> {
    fn from(p: Phases) -> Self {
        p.0.into_iter().map(|(k, d)| (k, d.as_secs_f64() * 1e3)).collect()
    }
}

impl TryFrom<BTreeMap<Phase, f64>> for Phases {
    type Error = String;
    fn try_from(m: BTreeMap<Phase, f64>) -> Result<Self, String> {
        m.into_iter()
            .map(|(k, ms)| {
                Duration::try_from_secs_f64(ms / 1e3)
                    .map(|d| (k, d))
                    .map_err(|_| format!("bad duration {ms} ms of {k}"))
            })
            .collect::<Result<_, _>>()
            .map(Phases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_and_round_trip_as_milliseconds() {
        let mut p = Phases::default();
        p.add(Phase::Spawn, Duration::from_micros(1500));
        p.add(Phase::Spawn, Duration::from_micros(500));
        p.add(Phase::Plan, Duration::from_micros(250));
        let times: Vec<(Phase, Duration)> = p.iter().collect();
        assert_eq!(
            times,
            [(Phase::Plan, Duration::from_micros(250)), (Phase::Spawn, Duration::from_millis(2))],
            "summed, in order"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"plan":0.25,"spawn":2.0}"#);
        assert_eq!(serde_json::from_str::<Phases>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Phases>(r#"{"plan":-1.0}"#).is_err(), "a negative time is refused");
        assert!(serde_json::from_str::<Phases>(r#"{"warp":1.0}"#).is_err(), "an unknown phase is refused");
    }

    #[test]
    fn every_phase_has_a_distinct_name_in_order() {
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        let mut sorted = Phase::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, Phase::ALL, "ALL is in the enum's order");
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for p in Phase::ALL {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.name()));
        }
    }
}
