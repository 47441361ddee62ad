//! The cgroup limit suite: every limit × the namespace sets none, all and user-only, each with its
//! control (the same exercise without the limit), the sensitivity tests (the launcher gets limits
//! twice as large as the oracle expects: the memory, pids and cpu checks must fail), and a check
//! that the host is left as found: no cgroup, mount, loop device or process of this run, and
//! /proc/cgroups unchanged.
//!
//! Limits the machine cannot exercise are ignored with the reason the harness gives (a skip is
//! data, see `requirement`), never passed.

use std::fs;
use std::process::ExitCode;
use std::sync::Arc;

use isoprobe_harness::limits::{CpuMax, HugetlbMax, LimitCheck, LimitSpec, Limits};
use isoprobe_harness::matrix::spec_for;
use isoprobe_harness::verdict::Verdict;
use isoprobe_harness::{CaseOutcome, CaseSpec, Harness, HarnessOptions, LauncherKind, NsKind, NsSet, RootfsMode};
use isoprobe_probes::wire::Exercise;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

const MIB: u64 = 1 << 20;

/// The limit cases, limited versions; `cpu` is the CPU the timing cases pin to, `cpus` all online.
fn limit_cases(cpu: u32, cpus: &[u32]) -> Vec<(&'static str, LimitSpec)> {
    let l = |settings: Limits, exercise: Exercise| LimitSpec { settings, sibling: None, exercise };
    vec![
        (
            // memory.swap.max 0: on a host with swap, the limit must not be met by swapping out.
            "memory",
            l(
                Limits { memory_max: Some(64 * MIB), memory_swap_max: Some(0), ..Default::default() },
                Exercise::Memory { target: 192 * MIB, step: MIB },
            ),
        ),
        (
            "memory-swap",
            l(
                Limits { memory_max: Some(64 * MIB), memory_swap_max: Some(32 * MIB), ..Default::default() },
                Exercise::Memory { target: 192 * MIB, step: MIB },
            ),
        ),
        ("pids", l(Limits { pids_max: Some(16), ..Default::default() }, Exercise::Pids { target: 64 })),
        (
            // cpu.weight 10000 keeps other tasks on the pinned CPU from starving the control (see
            // CPU_CONTROL_MIN_FRACTION); the control keeps it and drops only cpu.max.
            "cpu-max",
            l(
                Limits {
                    cpu_max: Some(CpuMax { quota_us: 20_000, period_us: 100_000 }),
                    cpu_weight: Some(10_000),
                    ..Default::default()
                },
                Exercise::CpuBurn { cpu, window_ms: 1500 },
            ),
        ),
        (
            "cpu-weight",
            LimitSpec {
                settings: Limits { cpu_weight: Some(1000), ..Default::default() },
                sibling: Some(Limits { cpu_weight: Some(3000), ..Default::default() }),
                exercise: Exercise::CpuShare { cpu, window_ms: 1500 },
            },
        ),
        (
            "cpuset-cpus",
            l(
                Limits { cpuset_cpus: Some(vec![cpu]), ..Default::default() },
                Exercise::Affinity { cpus: cpus.to_vec() },
            ),
        ),
        (
            "cpuset-mems",
            l(Limits { cpuset_mems: Some(vec![0]), ..Default::default() }, Exercise::Affinity { cpus: cpus.to_vec() }),
        ),
        (
            "devices",
            l(
                Limits { devices: Some(vec!["c 1:3 rwm".into()]), ..Default::default() },
                Exercise::Devices { paths: vec!["/dev/null".into(), "/dev/zero".into()] },
            ),
        ),
        ("freezer", l(Limits { freeze: true, ..Default::default() }, Exercise::Freezer { beat_ms: 5, hold_ms: 400 })),
        (
            "io-max",
            l(
                Limits { io_rbps: Some(4 * MIB), ..Default::default() },
                Exercise::IoRead { device: String::new(), block: 64 << 10, window_ms: 1500 },
            ),
        ),
        (
            "hugetlb",
            l(
                Limits { hugetlb_max: Some(HugetlbMax { page_size: 2 * MIB, pages: 2 }), ..Default::default() },
                Exercise::Hugetlb { page_size: 2 * MIB, pages: 4 },
            ),
        ),
        ("net-cls", l(Limits { net_cls_classid: Some(0x0010_0001), ..Default::default() }, Exercise::NetClassid)),
        ("net-prio", l(Limits { net_prio_ifpriomap: Some("lo 5".into()), ..Default::default() }, Exercise::NetClassid)),
        (
            // cpu.weight 10000 keeps the burn's wall time close to its CPU time (a tighter bracket,
            // see PERF_TOL_NS).
            "perf-event",
            l(
                Limits { perf_event: true, cpu_weight: Some(10_000), ..Default::default() },
                Exercise::PerfCount { burn_ms: 200 },
            ),
        ),
    ]
}

fn ns_sets() -> [(&'static str, NsSet); 3] {
    [("none", NsSet::EMPTY), ("all", NsSet::ALL), ("user", NsSet::EMPTY.with(NsKind::User))]
}

fn case(ns: NsSet, limits: LimitSpec) -> CaseSpec {
    CaseSpec { limits: Some(limits), ..spec_for(ns, RootfsMode::Host, LauncherKind::Clone3) }
}

fn report(o: &CaseOutcome) -> String {
    let mut lines = o.failure_lines();
    for r in &o.runs {
        for c in &r.limits {
            if let Verdict::Pass { expected, observed, evidence } = &c.verdict {
                lines.push(format!(
                    "{}: {}: pass: expected {expected}, observed {observed} ({evidence})",
                    o.name, c.check
                ));
            }
        }
        if !r.stderr.is_empty() && !o.passed() {
            lines.push(format!("probe stderr: {}", r.stderr));
        }
    }
    lines.join("\n")
}

/// Runs one case; passes when every limit check passed. `ISOPROBE_LIMITS_VERBOSE=1` prints the
/// observed numbers of passing checks too.
fn run_trial(h: &Arc<Harness>, name: String, spec: CaseSpec) -> Trial {
    let h = Arc::clone(h);
    Trial::ignorable_test(name, move || {
        let o = h.run_case(&spec);
        if let Some(skip) = &o.skipped {
            return Ok(Completion::ignored_with(format!("{}: {}", skip.requirement, skip.reason)));
        }
        if std::env::var_os("ISOPROBE_LIMITS_VERBOSE").is_some() {
            eprintln!("{}", report(&o));
        }
        let judged = o.runs.iter().map(|r| r.limits.len()).sum::<usize>();
        if o.passed() && judged > 0 {
            Ok(Completion::Completed)
        } else {
            Err(Failed::from(format!("{}\n{}", o.name, report(&o))))
        }
    })
}

/// The launcher gets limits twice as large as the oracle expects: `checks` must fail (and be
/// judged: an error is not the failure this test wants).
fn sensitivity_trial(h: &Arc<Harness>, what: &str, spec: CaseSpec, checks: &'static [LimitCheck]) -> Trial {
    let h = Arc::clone(h);
    Trial::ignorable_test(format!("sensitivity/{what}/limit-doubled"), move || {
        let limits = spec.limits.clone().expect("a limit case");
        let launched = CaseSpec { limits: Some(limits.scaled(2)), ..spec.clone() };
        let o = h.run_case_against(&launched, &spec);
        if let Some(skip) = &o.skipped {
            return Ok(Completion::ignored_with(format!("{}: {}", skip.requirement, skip.reason)));
        }
        if let Some(e) = &o.error {
            return Err(format!("{}: {e}", o.name).into());
        }
        if std::env::var_os("ISOPROBE_LIMITS_VERBOSE").is_some() {
            eprintln!("sensitivity, launched {}:\n{}", launched.name(), report(&o));
        }
        for check in checks {
            let v = o.runs.iter().flat_map(|r| &r.limits).find(|c| c.check == *check).map(|c| &c.verdict);
            match v {
                Some(Verdict::Fail { .. }) => {}
                other => {
                    return Err(
                        format!("{check} should fail with the limit doubled, got {other:?}\n{}", report(&o)).into()
                    );
                }
            }
        }
        Ok(Completion::Completed)
    })
}

/// What the host must look like again after the run: /proc/cgroups' hierarchy and enabled
/// columns (cgroup counts change with everyone's work), and this run's cgroups, mounts and loop
/// devices (none).
fn host_state(token: &str) -> (Vec<String>, Vec<String>) {
    let proc_cgroups = fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f.first().unwrap_or(&""), f.get(1).unwrap_or(&""), f.get(3).unwrap_or(&""))
        })
        .collect();
    let mut leftovers = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(token) {
                    leftovers.push(e.path().display().to_string());
                }
                stack.push(e.path());
            }
        }
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    leftovers.extend(mounts.lines().filter(|l| l.contains(token)).map(|l| format!("mount: {l}")));
    if let Ok(rd) = fs::read_dir("/sys/block") {
        for e in rd.flatten() {
            let backing = e.path().join("loop/backing_file");
            if let Ok(b) = fs::read_to_string(&backing)
                && b.contains(token)
            {
                leftovers.push(format!("loop device {}: {}", e.file_name().to_string_lossy(), b.trim()));
            }
        }
    }
    (proc_cgroups, leftovers)
}

fn main() -> ExitCode {
    isoprobe_probes::multicall();
    let args = Arguments::from_args();
    let harness = match Harness::new(HarnessOptions::default()) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("failed to set up the run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = harness.run_env().run_token.clone();
    let (cgroups_before, _) = host_state(&token);
    let cpus = isoprobe_harness::limits::case::online_cpus().unwrap_or_else(|_| vec![0]);
    let cpu = *cpus.last().unwrap_or(&0);

    let mut trials = Vec::new();
    for (ns_name, ns) in ns_sets() {
        for (what, limited) in limit_cases(cpu, &cpus) {
            trials.push(run_trial(&harness, format!("{what}/{ns_name}/limited"), case(ns, limited.clone())));
            trials.push(run_trial(&harness, format!("{what}/{ns_name}/control"), case(ns, limited.control())));
        }
        // The cgroup namespace's view: with `all` the probe must see itself at the root, with the
        // others the host's paths (each set is the other's control).
        let view =
            LimitSpec { settings: Limits::default(), sibling: None, exercise: Exercise::CgroupView { mount_at: None } };
        trials.push(run_trial(&harness, format!("cgroup-ns-view/{ns_name}"), case(ns, view)));
    }
    // The clone(2) path has no CLONE_INTO_CGROUP: cgroup2 is attached through cgroup.procs too.
    let clone = |limits: LimitSpec| CaseSpec {
        limits: Some(limits),
        ..spec_for(NsSet::ALL, RootfsMode::Host, LauncherKind::Clone)
    };
    let cases = limit_cases(cpu, &cpus);
    let memory = cases.iter().find(|(n, _)| *n == "memory").expect("a listed case").1.clone();
    trials.push(run_trial(&harness, "memory/all-clone/limited".into(), clone(memory.clone())));
    trials.push(run_trial(&harness, "memory/all-clone/control".into(), clone(memory.control())));
    let view =
        LimitSpec { settings: Limits::default(), sibling: None, exercise: Exercise::CgroupView { mount_at: None } };
    trials.push(run_trial(&harness, "cgroup-ns-view/all-clone".into(), clone(view)));
    let find = |w: &str| cases.iter().find(|(n, _)| *n == w).expect("a listed case").1.clone();
    trials.push(sensitivity_trial(&harness, "memory", case(NsSet::ALL, find("memory")), &[LimitCheck::Memory]));
    trials.push(sensitivity_trial(&harness, "pids", case(NsSet::ALL, find("pids")), &[LimitCheck::Pids]));
    trials.push(sensitivity_trial(&harness, "cpu-max", case(NsSet::ALL, find("cpu-max")), &[LimitCheck::CpuMax]));

    let conclusion = libtest_mimic::run(&args, trials);
    drop(Arc::try_unwrap(harness).ok());
    let (cgroups_after, leftovers) = host_state(&token);
    let mut changed = false;
    if cgroups_after != cgroups_before {
        eprintln!("/proc/cgroups changed:\nbefore: {cgroups_before:?}\nafter:  {cgroups_after:?}");
        changed = true;
    }
    if !leftovers.is_empty() {
        eprintln!("left behind by run {token}:\n{}", leftovers.join("\n"));
        changed = true;
    }
    if changed { ExitCode::FAILURE } else { conclusion.exit_code() }
}
