//! Full container start with the native launcher, under several namespace sets.
//!
//! - `native_spawn/<set>`: the native launcher's spawn pipeline (`launcher::process::spawn_probe`:
//!   stdio pipes and the sync socket, clone3 with the set's flags, the uid/gid maps written by the
//!   parent, the go signal, execve) running the tiny static payload, which exits at once; timed
//!   until the reap. This is the number to compare with external launchers starting the same
//!   payload. It spawns the set's `harness_case` spec, so that the two start the same way: with a
//!   time namespace, the matrix's offsets written before the exec, by a child that shares the
//!   harness's memory (until issue 17's session 33 the spec had no offsets, and its child was a
//!   fork of this process, whose page tables it copied: `all` read 1.48-1.54 ms instead of
//!   1.28 ms, which made `harness_case/all`'s overhead ratio look 3.7 instead of 4.6);
//! - `probe_start/<set>`: the same pipeline running the probe itself (the very copy the harness's
//!   cases run) in its `exit` mode: the exec of a real, C-library program, its start-up and its
//!   exit, before it reads anything. The floor under every `harness_case` of the set: what
//!   separates it from `native_spawn` is the probe's start, not the harness's work (on the
//!   2-CPU development VM, glibc's start-up alone, whose cache-size queries are one `cpuid` VM
//!   exit each, cost some 0.29 ms a process in issue 17's session 33);
//! - `harness_case/<set>`: one whole isoprobe case (`Harness::run_case`): the case's host objects,
//!   the probe's init (mounts, hostname, root), every observation, the verdicts, and the removal;
//!   a case of the namespace matrix, which makes one share of the sysctl sweeps (see
//!   [`MatrixCases`]; until issue 17's session 24 these cases made the whole sweep);
//! - `harness_phases/<phase>/<set>`: where the time of such a case goes, phase by phase (the
//!   `CaseOutcome::phases` each `run_case` returns, see `isoprobe_harness::phases`): each call is
//!   one case, one sample of every phase; wall time only (see [`harness_phases`]).
//!
//! External launchers (bubblewrap, LXC, runc, ...) get their own bench binary when their issue has
//! landed.

#![deny(unsafe_code)]

use std::path::Path;
use std::time::Instant;

use isoprobe_benches::payload::{TempDir, write_payload};
use isoprobe_benches::primitives;
use isoprobe_benches::run::{NETNS, PER_OP};
use isoprobe_benches::{BenchRun, Group, Profile};
use isoprobe_harness::launcher::native::time_offsets_before_exec;
use isoprobe_harness::launcher::process::{GRACE, SpawnRequest, describe, spawn_probe};
use isoprobe_harness::requirement::KernelRelease;
use isoprobe_harness::spec::Runner;
use isoprobe_harness::sys::clone::CloneCall;
use isoprobe_harness::{CaseSpec, Harness, HarnessOptions, Resolved};
use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::probe::Mode;
use isoprobe_probes::wire::SysctlStripe;

fn sets(names: &[&str]) -> Vec<NsSet> {
    names.iter().map(|n| n.parse().expect("valid namespace set")).collect()
}

fn main() {
    isoprobe_probes::multicall();
    let mut run = BenchRun::new("container");
    let dir = TempDir::new().expect("failed to create the benchmark's temp dir");
    let payload = write_payload(dir.path()).expect("failed to write the static payload");
    let runner = Runner::current();

    let payload = payload.as_path();
    // Before the group: its interleaved cases run when it finishes.
    let harness = Harness::new(HarnessOptions::default());
    let mut g = run.group("container");
    // Sampled in rounds (see `run::Group::bench_interleaved`): the namespace sets side by side.
    let all_sets = ["none", "pid+mnt", "pid+uts+mnt+ipc", "pid+uts+mnt+ipc+net", "all"];
    bench_spawns(&mut g, "native_spawn", &all_sets, payload, Mode::Observe, runner);

    match &harness {
        Ok(harness) => {
            bench_spawns(&mut g, "probe_start", &["none", "all"], &harness.run_env().probe_exe, Mode::Exit, runner);
            for set in sets(&["none", "pid+uts+mnt+ipc+net", "all"]) {
                // 100 samples: a whole case varies by ±12% from sample to sample (its many steps
                // each meet the kernel in another state); with 50 the median moved by 20% between
                // two runs.
                let prof = if set.contains(NsKind::Net) {
                    Profile::Netns { full: 100, quick: 10 }
                } else {
                    Profile::PerOp { full: 100, quick: 10 }
                };
                let spec = matrix_case(set);
                if let Err(skip) = harness.requirement(&spec) {
                    g.skip("harness_case", &set.to_string(), skip.reason);
                    continue;
                }
                let mut cases = MatrixCases::new(spec);
                g.bench_interleaved("harness_case", &set.to_string(), prof, move || {
                    let spec = cases.next_case();
                    let (outcome, t) = primitives::timed(|| harness.run_case(&spec));
                    if !outcome.passed() {
                        return Err(std::io::Error::other(outcome.failure_lines().join("; ")));
                    }
                    Ok(t)
                });
            }
        }
        Err(e) => g.fail("harness_case", "", format!("set up the harness: {e}")),
    }
    g.finish();
    if let Ok(harness) = &harness {
        harness_phases(&mut run, harness);
    }
    run.finish();
    drop(dir);
}

/// `op/<set>` for each of `names`: [`spawn_to_exit`] of `exe` in `mode`, the sets side by side.
fn bench_spawns<'a>(g: &mut Group<'a>, op: &str, names: &[&str], exe: &'a Path, mode: Mode, runner: Runner) {
    // Where an exec does not enter the time namespace made for it, the harness case with offsets
    // is skipped (`requirement::check_case`) and the spawn keeps the fork that enters it at the
    // clone.
    let offsets_at_exec = KernelRelease::running().exec_enters_time_namespace();
    for set in sets(names) {
        let prof = if set.contains(NsKind::Net) { NETNS } else { PER_OP };
        // The spec `harness_case/<set>` runs: the same spawn (a time namespace with the matrix's
        // offsets goes the CLONE_VM way, without them a fork of this process).
        let mut spec = matrix_case(set);
        if !offsets_at_exec {
            spec.time_offsets = None;
        }
        let spec = spec.resolve(runner);
        let mode = mode.clone();
        g.bench_interleaved(op, &set.to_string(), prof, move || {
            let (r, t) = primitives::timed(|| spawn_to_exit(exe, mode.clone(), &spec, runner));
            r?;
            Ok(t)
        });
    }
}

/// One start through the native launcher's spawn pipeline (`spawn_probe`: clone3 with `spec`'s
/// namespaces, its id maps and time offsets, the go signal, the exec of `exe` in `mode`), waited
/// for until it exits, which must be with status 0.
fn spawn_to_exit(exe: &Path, mode: Mode, spec: &Resolved, runner: Runner) -> std::io::Result<()> {
    let mut p = spawn_probe(SpawnRequest {
        call: CloneCall::Clone3,
        ns_flags: spec.namespaces.clone_flags(),
        cgroup: None,
        exe,
        mode,
        id_maps: spec.id_maps.as_ref(),
        time_offsets: time_offsets_before_exec(spec),
        runner,
        deadline: Instant::now() + GRACE,
        plant: isoprobe_harness::NsSet::EMPTY,
    })
    .map_err(std::io::Error::other)?;
    match p.wait_until(Instant::now() + GRACE).map_err(std::io::Error::other)? {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
        s => Err(std::io::Error::other(format!("{} ended with {}", exe.display(), describe(s)))),
    }
}

/// The `harness_phases` group: for each namespace set of `harness_case`, whole cases run one
/// after the other, each one sample of every phase it went through (`<phase>/<set>`), so the
/// phases' medians come from the same cases. 50 cases per set in a full run (7 s for the three
/// sets with their netns cleanup waits on the 2-CPU development VM), 10 in a quick one (under a
/// second); the phases' CPU time is not measured (see [`isoprobe_benches::Group::bench_parts`]).
fn harness_phases(run: &mut BenchRun, harness: &Harness) {
    let mut g = run.group("harness_phases");
    for set in sets(&["none", "pid+uts+mnt+ipc+net", "all"]) {
        let prof = if set.contains(NsKind::Net) {
            Profile::Netns { full: 50, quick: 10 }
        } else {
            Profile::PerOp { full: 50, quick: 10 }
        };
        let spec = matrix_case(set);
        if let Err(skip) = harness.requirement(&spec) {
            g.skip("*", &set.to_string(), skip.reason);
            continue;
        }
        let mut cases = MatrixCases::new(spec);
        g.bench_parts(&set.to_string(), prof, || {
            let outcome = harness.run_case(&cases.next_case());
            if !outcome.passed() {
                return Err(std::io::Error::other(outcome.failure_lines().join("; ")));
            }
            Ok(outcome.phases.iter().map(|(phase, d)| (phase.name().to_owned(), d)).collect())
        });
    }
    g.finish();
}

/// The namespace matrix's case of `set` through clone3 on the host's filesystem
/// (`matrix::spec_for`: a hostname in a new uts namespace, time offsets in a new time namespace).
/// Until issue 17's session 26 these were `CaseSpec::new(set)`, without either: `all` then never
/// wrote time offsets, and cost a matrix case's re-execution less.
fn matrix_case(set: NsSet) -> CaseSpec {
    isoprobe_harness::matrix::spec_for(set, isoprobe_harness::RootfsMode::Host, isoprobe_harness::LauncherKind::Clone3)
}

/// The cases of one namespace set as the namespace matrix runs them: each takes the next share of
/// the sysctl sweeps (see `isoprobe_harness::matrix::SYSCTL_STRIPES`), so that a benchmarked case
/// costs what a case of the matrix costs. A spec without a stripe makes the whole sweep, as many
/// matrix cases' worth as there are stripes (measured at -j 1 over 200 empty-set cases, with 8
/// stripes: 7.1 ms a case with the whole sweep, 3.4 ms with the stripes taken in turn).
struct MatrixCases {
    spec: CaseSpec,
    next: u32,
}

impl MatrixCases {
    fn new(spec: CaseSpec) -> MatrixCases {
        MatrixCases { spec, next: 0 }
    }

    fn next_case(&mut self) -> CaseSpec {
        let of = isoprobe_harness::matrix::SYSCTL_STRIPES;
        let stripe = SysctlStripe { index: self.next % of, of };
        self.next = self.next.wrapping_add(1);
        CaseSpec { sysctl_stripe: Some(stripe), ..self.spec.clone() }
    }
}
