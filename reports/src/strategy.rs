//! proptest strategies for every type a report or a benchmark summary serialises: the round-trip
//! properties beside each type use them, and so can dependants (feature `arbitrary`).
//!
//! Written by hand rather than derived: most records hold the harness's vocabulary types (check
//! ids, namespace sets, launcher kinds), which have no `Arbitrary` outside the harness's own
//! tests, and collections must stay small (a report of a few suites of a few cases; derived
//! strategies nest vectors of up to 100 at every level). Each strategy builds its value with a
//! struct literal, so a field added to a record is a compile error here until it is generated.
//!
//! Values are those the JSON carries exactly: finite floats (NaN and infinities are written as
//! `null`), and durations of whole nanoseconds under 10⁶ s (a duration is written as a float of
//! milliseconds, exact to the nanosecond up to about 4.2 × 10⁶ s; a case takes seconds).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use crate::bench::{BenchCase, BenchKind, BenchSummary, HarnessOverhead};
use crate::model::{Report, ReportKind, Suite};
use crate::record::{
    CaseAssessment, CaseOutcome, CaseSpec, CgroupInfo, CgroupLayout, CgroupRules, CgroupV1Hierarchy, CheckId,
    CheckResult, CpuInfo, CpuMax, DefectHit, Exercise, ExplainedDifference, Fingerprint, HugetlbMax, Hypervisor,
    IdMapLine, IdMaps, KernelConfig, KernelInfo, LatencyResult, LatencyRow, LauncherCapabilities, LauncherHeader,
    LauncherKind, LimitCheck, LimitResult, LimitSpec, Limits, NsSet, PHASE_ORDER, Phases, ProbeRun, Role, RootfsMode,
    Skip, StartLatency, SysctlStripe, TimeOffsets, Tool, ToolDefaultNote, ToolVersion, UserInfo, UsernsPolicy, Verdict,
};

/// How many elements a generated collection holds at most.
const FEW: usize = 3;

/// Any text, short: escapes, quotes, newlines, NUL and non-ASCII included.
pub fn text() -> impl Strategy<Value = String> {
    "(?s).{0,12}"
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..=FEW)
}

fn text_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..=FEW)
}

/// Any finite float.
pub fn number() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
}

/// Whole nanoseconds under 10⁶ s.
pub fn duration() -> impl Strategy<Value = Duration> {
    (0u64..1_000_000, 0u32..1_000_000_000).prop_map(|(s, ns)| Duration::new(s, ns))
}

pub fn ns_set() -> impl Strategy<Value = NsSet> {
    any::<u8>().prop_map(NsSet::from_bits)
}

pub fn rootfs() -> impl Strategy<Value = RootfsMode> {
    select(RootfsMode::ALL.to_vec())
}

pub fn launcher_kind() -> impl Strategy<Value = LauncherKind> {
    select([LauncherKind::ALL.as_slice(), LauncherKind::EXTERNAL.as_slice()].concat())
}

pub fn check_id() -> impl Strategy<Value = CheckId> {
    select(CheckId::all())
}

pub fn limit_check() -> impl Strategy<Value = LimitCheck> {
    select(LimitCheck::ALL.to_vec())
}

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Container), Just(Role::Joiner)]
}

pub fn skip() -> impl Strategy<Value = Skip> {
    (text(), text()).prop_map(|(requirement, reason)| Skip { requirement, reason })
}

pub fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        (text(), text(), text()).prop_map(|(expected, observed, evidence)| Verdict::Pass {
            expected,
            observed,
            evidence
        }),
        (text(), text(), text()).prop_map(|(expected, observed, evidence)| Verdict::Fail {
            expected,
            observed,
            evidence
        }),
        (text(), text()).prop_map(|(requirement, reason)| Verdict::Skip { requirement, reason }),
        text().prop_map(|cause| Verdict::Error { cause }),
    ]
}

pub fn check_result() -> impl Strategy<Value = CheckResult> {
    (check_id(), verdict()).prop_map(|(check, verdict)| CheckResult { check, verdict })
}

pub fn limit_result() -> impl Strategy<Value = LimitResult> {
    (limit_check(), verdict()).prop_map(|(check, verdict)| LimitResult { check, verdict })
}

pub fn probe_run() -> impl Strategy<Value = ProbeRun> {
    // A run holds one kind of verdicts, as the harness writes them: a namespace case's checks or
    // a limit case's.
    let verdicts = prop_oneof![
        vec(check_result(), 0..=FEW).prop_map(|checks| (checks, Vec::new())),
        vec(limit_result(), 1..=FEW).prop_map(|limits| (Vec::new(), limits)),
    ];
    (role(), texts(), verdicts, text(), text()).prop_map(|(role, init, (checks, limits), exit, stderr)| ProbeRun {
        role,
        init,
        checks,
        exit,
        stderr,
        limits,
    })
}

pub fn case_outcome() -> impl Strategy<Value = CaseOutcome> {
    (
        text(),
        case_spec(),
        option::of(skip()),
        option::of(text()),
        vec(probe_run(), 0..=2),
        texts(),
        duration(),
        phases(),
        vec(defect_hit(), 0..=2),
    )
        .prop_map(|(name, spec, skipped, error, runs, join_mismatches, duration, phases, defects)| CaseOutcome {
            name,
            spec,
            skipped,
            error,
            runs,
            join_mismatches,
            duration,
            phases,
            defects,
        })
}

fn defect_hit() -> impl Strategy<Value = DefectHit> {
    (text(), 1..=3u32, text()).prop_map(|(defect, attempt, error)| DefectHit { defect, attempt, error })
}

pub fn phases() -> impl Strategy<Value = Phases> {
    // Known names only: the harness's type, which the same JSON must convert to, knows no other.
    btree_map(select(PHASE_ORDER.to_vec()).prop_map(String::from), duration(), 0..=FEW).prop_map(Phases)
}

fn id_map_lines() -> impl Strategy<Value = Vec<IdMapLine>> {
    vec(any::<(u32, u32, u32)>().prop_map(|(inside, outside, count)| IdMapLine { inside, outside, count }), 0..=FEW)
}

pub fn id_maps() -> impl Strategy<Value = IdMaps> {
    (id_map_lines(), id_map_lines()).prop_map(|(uid, gid)| IdMaps { uid, gid })
}

pub fn time_offsets() -> impl Strategy<Value = TimeOffsets> {
    any::<(i64, i64)>().prop_map(|(monotonic_ns, boottime_ns)| TimeOffsets { monotonic_ns, boottime_ns })
}

/// Any spec, runnable or not: a report records what a case ran with, and reading it back must not
/// depend on today's rules for a valid spec.
pub fn case_spec() -> BoxedStrategy<CaseSpec> {
    // Two boxed halves: one flat tuple of every field's strategy, limits and all, overflows a test
    // thread's stack in a debug build.
    let ids = (ns_set(), rootfs(), launcher_kind(), option::of(id_maps()), option::of(text())).boxed();
    let rest = (
        option::of(time_offsets()),
        option::of(limit_spec()).boxed(),
        option::of((0..16u32, 0..16u32).prop_map(|(index, of)| SysctlStripe { index, of })),
        option::of(propagation()),
    )
        .boxed();
    (ids, rest)
        .prop_map(
            |(
                (namespaces, rootfs, launcher, id_maps, hostname),
                (time_offsets, limits, sysctl_stripe, propagation),
            )| {
                CaseSpec {
                    namespaces,
                    rootfs,
                    launcher,
                    id_maps,
                    hostname,
                    time_offsets,
                    limits,
                    sysctl_stripe,
                    propagation,
                }
            },
        )
        .boxed()
}

/// A mount case's propagation pair.
pub fn propagation() -> impl Strategy<Value = isoprobe_harness::spec::Propagation> {
    let mode = || proptest::sample::select(isoprobe_probes::wire::PropMode::ALL.to_vec());
    (mode(), mode()).prop_map(|(host, container)| isoprobe_harness::spec::Propagation { host, container })
}

pub fn limit_spec() -> impl Strategy<Value = LimitSpec> {
    (limits(), option::of(limits()), exercise()).prop_map(|(settings, sibling, exercise)| LimitSpec {
        settings,
        sibling,
        exercise,
    })
}

pub fn limits() -> impl Strategy<Value = Limits> {
    let cpu_max = any::<(u64, u64)>().prop_map(|(quota_us, period_us)| CpuMax { quota_us, period_us });
    let hugetlb_max = any::<(u64, u64)>().prop_map(|(page_size, pages)| HugetlbMax { page_size, pages });
    let memory = (
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        any::<bool>(),
    );
    let cpu = (
        option::of(cpu_max),
        option::of(any::<u32>()),
        option::of(vec(any::<u32>(), 0..=FEW)),
        option::of(vec(any::<u32>(), 0..=FEW)),
        (option::of(any::<u64>()), any::<bool>(), option::of(any::<i32>())),
    );
    let rest = (
        (option::of(any::<u32>()), option::of(any::<u64>())),
        option::of(hugetlb_max),
        (any::<(bool, bool, bool)>(), option::of(any::<u64>()), option::of(any::<u64>())),
        option::of(texts()),
        option::of(any::<u32>()),
        option::of(text()),
        any::<bool>(),
    );
    // Boxed: unboxed, the nested tuples' strategy and value types make frames that overflow a
    // debug test thread's 2 MiB stack.
    (memory.boxed(), cpu.boxed(), rest.boxed()).prop_map(
        |(
            (memory_max, memory_swap_max, pids_max, memory_high, memory_oom_group),
            (cpu_max, cpu_weight, cpuset_cpus, cpuset_mems, (cpu_max_burst, cpu_idle, cpu_weight_nice)),
            (
                (io_weight, io_rbps),
                hugetlb_max,
                ((freeze, kill, delegate), memory_low, memory_min),
                devices,
                net_cls_classid,
                net_prio_ifpriomap,
                perf_event,
            ),
        )| Limits {
            memory_max,
            memory_swap_max,
            memory_high,
            memory_oom_group,
            pids_max,
            cpu_max,
            cpu_weight,
            cpu_max_burst,
            cpu_idle,
            cpu_weight_nice,
            cpuset_cpus,
            cpuset_mems,
            io_weight,
            io_rbps,
            hugetlb_max,
            freeze,
            kill,
            devices,
            net_cls_classid,
            net_prio_ifpriomap,
            perf_event,
            delegate,
            memory_low,
            memory_min,
        },
    )
}

pub fn exercise() -> impl Strategy<Value = Exercise> {
    prop_oneof![
        any::<(u64, u64)>().prop_map(|(target, step)| Exercise::Memory { target, step }),
        any::<u32>().prop_map(|target| Exercise::Pids { target }),
        any::<(u32, u32)>().prop_map(|(cpu, window_ms)| Exercise::CpuBurn { cpu, window_ms }),
        any::<(u32, u32)>().prop_map(|(cpu, window_ms)| Exercise::CpuShare { cpu, window_ms }),
        vec(any::<u32>(), 0..=FEW).prop_map(|cpus| Exercise::Affinity { cpus }),
        texts().prop_map(|paths| Exercise::Devices { paths }),
        any::<(u32, u32)>().prop_map(|(beat_ms, hold_ms)| Exercise::Freezer { beat_ms, hold_ms }),
        (text(), any::<(u32, u32)>()).prop_map(|(device, (block, window_ms))| Exercise::IoRead {
            device,
            block,
            window_ms
        }),
        option::of(text()).prop_map(|mount_at| Exercise::CgroupView { mount_at }),
        Just(Exercise::NetClassid),
        any::<u32>().prop_map(|burn_ms| Exercise::PerfCount { burn_ms }),
        any::<(u64, u32)>().prop_map(|(page_size, pages)| Exercise::Hugetlb { page_size, pages }),
        any::<(u32, u32)>().prop_map(|(loopers, wait_ms)| Exercise::KillGroup { loopers, wait_ms }),
        any::<(u32, u32)>().prop_map(|(loopers, hold_ms)| Exercise::FreezeGroup { loopers, hold_ms }),
        (text(), any::<(u64, u32)>()).prop_map(|(device, (bytes, block))| Exercise::CacheRead { device, bytes, block }),
        any::<(u32, u64, u64)>().prop_map(|(members, target, step)| Exercise::OomGroup { members, target, step }),
        (any::<(u32, u64, u64)>(), text(), text()).prop_map(|((members, target, step), child_dir, other_dir)| {
            Exercise::OomGroupParent { members, target, step, child_dir, other_dir }
        }),
        (text(), any::<(u64, u64, u64, u32)>(), (text(), text(), text())).prop_map(
            |(device, (kept, cache, anon, block), (protected_dir, cache_dir, pressure_dir))| Exercise::MemoryProtect {
                device,
                kept,
                cache,
                anon,
                block,
                protected_dir,
                cache_dir,
                pressure_dir
            }
        ),
        (cgroup_rules(), text(), text()).prop_map(|(rules, case_dir, sibling_dir)| Exercise::CgroupRules {
            rules,
            case_dir,
            sibling_dir
        }),
        any::<(u32, u64, u64, u32)>().prop_map(|(cpu, quota_us, period_us, idle_periods)| Exercise::CpuBurst {
            cpu,
            quota_us,
            period_us,
            idle_periods
        }),
        (text(), any::<(u32, u32)>()).prop_map(|(device, (block, window_ms))| Exercise::IoShare {
            device,
            block,
            window_ms
        }),
    ]
}

fn cgroup_rules() -> impl Strategy<Value = CgroupRules> {
    prop_oneof![
        option::of(any::<bool>()).prop_map(|nsdelegate| CgroupRules::Delegation { nsdelegate }),
        text().prop_map(|controller| CgroupRules::InternalProcess { controller }),
        Just(CgroupRules::Threaded),
        (text(), text()).prop_map(|(threaded, domain)| CgroupRules::ThreadedControllers { threaded, domain }),
        text().prop_map(|controller| CgroupRules::TopDown { controller }),
        Just(CgroupRules::InvalidDomain),
        Just(CgroupRules::Populated),
        Just(CgroupRules::OpenCredentials),
        Just(CgroupRules::ProcMigration),
        Just(CgroupRules::ParentThreaded),
    ]
}

pub fn cgroup_layout() -> impl Strategy<Value = CgroupLayout> {
    select(CgroupLayout::ALL.to_vec())
}

pub fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    let kernel =
        (text(), text(), text()).prop_map(|(release, version, machine)| KernelInfo { release, version, machine });
    let kernel_config = (option::of(text()), text_map(), option::of(text()))
        .prop_map(|(source, options, unavailable)| KernelConfig { source, options, unavailable });
    let hierarchy =
        (text(), texts()).prop_map(|(mount_point, controllers)| CgroupV1Hierarchy { mount_point, controllers });
    let cgroup = (cgroup_layout(), vec(hierarchy, 0..=FEW), option::of(text()), texts(), texts()).prop_map(
        |(layout, v1, v2_mount, v2_controllers, unmounted)| CgroupInfo {
            layout,
            v1,
            v2_mount,
            v2_controllers,
            unmounted,
        },
    );
    let user = (any::<u32>(), any::<u32>(), text(), texts()).prop_map(|(euid, egid, cap_eff, capabilities)| UserInfo {
        euid,
        egid,
        cap_eff,
        capabilities,
    });
    let userns = (any::<bool>(), option::of(text()), text_map())
        .prop_map(|(unprivileged, blocked_by, sysctls)| UsernsPolicy { unprivileged, blocked_by, sysctls });
    let cpu = (text(), any::<usize>(), any::<usize>()).prop_map(|(model, online, available)| CpuInfo {
        model,
        online,
        available,
    });
    let hypervisor = (any::<bool>(), option::of(text())).prop_map(|(detected, vendor)| Hypervisor { detected, vendor });
    let tool = (text(), option::of(text()), option::of(text())).prop_map(|(name, path, version)| ToolVersion {
        name,
        path,
        version,
    });
    (kernel, kernel_config, ns_set(), cgroup, user, userns, cpu, hypervisor, any::<usize>(), vec(tool, 0..=FEW))
        .prop_map(|(kernel, kernel_config, namespaces, cgroup, user, userns, cpu, hypervisor, mount_count, tools)| {
            Fingerprint { kernel, kernel_config, namespaces, cgroup, user, userns, cpu, hypervisor, mount_count, tools }
        })
}

pub fn launcher_header() -> impl Strategy<Value = LauncherHeader> {
    let tool = (text(), text(), text(), text()).prop_map(|(command, package, path, version)| Tool {
        command,
        package,
        path,
        version,
    });
    let capabilities =
        (ns_set(), vec(rootfs(), 0..=FEW), (text(), text(), text(), text(), text()), any::<bool>(), any::<bool>())
            .prop_map(
                |(namespaces, rootfs, (id_maps, hostname, proc, sysfs, time_offsets), cgroup_limits, rootless)| {
                    LauncherCapabilities {
                        namespaces,
                        rootfs,
                        id_maps,
                        hostname,
                        proc,
                        sysfs,
                        time_offsets,
                        cgroup_limits,
                        rootless,
                    }
                },
            );
    (text(), option::of(tool), option::of(skip()), capabilities, option::of(text())).prop_map(
        |(name, tool, unavailable, capabilities, wrapper)| LauncherHeader {
            name,
            tool,
            unavailable,
            capabilities,
            wrapper,
        },
    )
}

pub fn case_assessment() -> impl Strategy<Value = CaseAssessment> {
    let default = (text(), text()).prop_map(|(what, source)| ToolDefaultNote { what, source });
    let explained =
        (role(), check_id(), verdict(), text(), text()).prop_map(|(role, check, verdict, observed, source)| {
            ExplainedDifference { role, check, verdict, observed, source }
        });
    (vec(default, 0..=FEW), vec(explained, 0..=FEW), texts(), texts()).prop_map(
        |(defaults, explained, unexplained, stale)| CaseAssessment { defaults, explained, unexplained, stale },
    )
}

pub fn latency_result() -> impl Strategy<Value = LatencyResult> {
    prop_oneof![
        (number(), number(), number(), any::<u32>()).prop_map(|(median_ns, min_ns, max_ns, starts)| {
            LatencyResult::Measured { median_ns, min_ns, max_ns, starts }
        }),
        text().prop_map(|reason| LatencyResult::Skipped { reason }),
        text().prop_map(|cause| LatencyResult::Error { cause }),
    ]
}

pub fn start_latency() -> impl Strategy<Value = StartLatency> {
    let row =
        (text(), text(), latency_result()).prop_map(|(launcher, case, result)| LatencyRow { launcher, case, result });
    (ns_set(), any::<u32>(), vec(row, 0..=FEW)).prop_map(|(namespaces, starts, launchers)| StartLatency {
        namespaces,
        starts,
        launchers,
    })
}

pub fn bench_case() -> impl Strategy<Value = BenchCase> {
    (
        text(),
        text(),
        (number(), number(), number()),
        option::of(number()),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        btree_map(text(), number(), 0..=FEW),
    )
        .prop_map(
            |(group, id, (median_ns, ci_low_ns, ci_high_ns), cpu_ns, samples, slow_samples, contended, ratios)| {
                BenchCase {
                    group,
                    id,
                    median_ns,
                    ci_low_ns,
                    ci_high_ns,
                    cpu_ns,
                    samples,
                    slow_samples,
                    contended,
                    ratios,
                }
            },
        )
}

/// Any benchmark summary, of any schema version (the properties are about the shape).
pub fn bench_summary() -> impl Strategy<Value = BenchSummary> {
    (
        any::<u32>(),
        any::<bool>(),
        fingerprint(),
        btree_map(text(), number(), 0..=FEW),
        vec(bench_case(), 0..=FEW),
        vec(harness_overhead(), 0..=FEW),
    )
        .prop_map(|(schema_version, quick, fingerprint, calibration, cases, harness_overhead)| BenchSummary {
            schema_version,
            kind: BenchKind::BenchSummary,
            quick,
            fingerprint,
            calibration,
            cases,
            harness_overhead,
        })
}

pub fn harness_overhead() -> impl Strategy<Value = HarnessOverhead> {
    (text(), (number(), number(), number()), any::<u64>(), any::<bool>()).prop_map(
        |(set, (ratio, ci_low, ci_high), samples, contended)| HarnessOverhead {
            set,
            ratio,
            ci_low,
            ci_high,
            samples,
            contended,
        },
    )
}

pub fn suite() -> impl Strategy<Value = Suite> {
    (text(), vec(case_outcome(), 0..=FEW), btree_map(text(), case_assessment(), 0..=2))
        .prop_map(|(name, cases, assessments)| Suite { name, cases, assessments })
}

/// Any report, of any schema version; its assessments need not name its cases (a property of
/// [`crate::load::parse`], not of the JSON).
pub fn report() -> impl Strategy<Value = Report> {
    (
        any::<u32>(),
        (text(), text(), number()),
        (texts(), texts()),
        fingerprint(),
        vec(suite(), 0..=2),
        vec(launcher_header(), 0..=2),
        option::of(start_latency()),
        option::of(bench_summary()),
    )
        .prop_map(
            |(
                schema_version,
                (isoprobe_version, started_at, duration_ms),
                (command, expect),
                fingerprint,
                suites,
                launchers,
                start_latency,
                bench,
            )| Report {
                schema_version,
                kind: ReportKind::Report,
                isoprobe_version,
                started_at,
                duration_ms,
                command,
                expect,
                fingerprint,
                suites,
                launchers,
                start_latency,
                bench,
            },
        )
}

/// The property every serialisable type must have: JSON text of `value` reads back as `value`.
pub fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).map_err(|e| TestCaseError::fail(format!("serialise: {e}")))?;
    let back: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("read back {text}: {e}")))?;
    prop_assert_eq!(&back, value, "read back from {}", text);
    Ok(())
}

/// The property of a conversion from the harness, for the records' tests: the harness's value
/// read from the record's JSON writes that same JSON back, and converts to the same record. Both
/// hold at the split of issue 14 (the records were written to the harness types' JSON); should
/// the harness's JSON change on purpose later, the first half no longer holds and the report's
/// JSON must not follow it: build the harness's values another way.
#[cfg(test)]
pub(crate) fn assert_converts_from<H, R>(record: &R) -> Result<(), TestCaseError>
where
    H: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + PartialEq + std::fmt::Debug + for<'a> From<&'a H>,
{
    let json = serde_json::to_value(record).map_err(|e| TestCaseError::fail(format!("serialise: {e}")))?;
    let harness: H = serde_json::from_value(json.clone())
        .map_err(|e| TestCaseError::fail(format!("the harness type does not read {json}: {e}")))?;
    prop_assert_eq!(serde_json::to_value(&harness).expect("the harness type serialises"), json);
    prop_assert_eq!(&R::from(&harness), record);
    Ok(())
}
