//! What a limit case needs from this machine, checked before launch; an unmet need is a skip
//! whose reason names what is missing.

use std::fs;
use std::path::Path;

use isoprobe_probes::wire::Exercise;

use super::spec::LimitSpec;
use crate::cgroup::table::controllers;
use crate::cgroup::{CgroupLayout, Placement};
use crate::requirement::Requirement;
use crate::spec::{CaseSpec, LauncherKind, Runner};
use crate::verdict::Skip;

/// Whether `runner` can run the limit case `spec` (whose `limits` is `limits`) on a host with
/// `layout`.
pub fn check(spec: &CaseSpec, limits: &LimitSpec, runner: Runner, layout: &CgroupLayout) -> Result<(), Skip> {
    if !runner.is_root() {
        return Err(Requirement::Root.skip("needs root: creating cgroups outside a delegated subtree"));
    }
    let launcher = crate::launcher::registry::launcher(spec.launcher);
    if !launcher.capabilities().cgroup_limits {
        return Err(Requirement::LimitLauncher.skip(match spec.launcher {
            LauncherKind::Unshare | LauncherKind::SetnsNsFiles | LauncherKind::SetnsPidfd => {
                format!("limits are attached by the clone3 and clone paths; {} is not one", spec.launcher.name())
            }
            LauncherKind::LxcAttach => "lxc-attach does enter the payload cgroup of the container it joins \
                                            (its `.lxc` child on cgroup2; the container's limits hold it too), but \
                                            a limit exercise measures one probe in its cgroup, and the container's \
                                            holding probe shares it (as with the native setns paths)"
                .into(),
            LauncherKind::Runc | LauncherKind::Crun => format!(
                "{} writes linux.resources only as root here (rootless, isoprobe gives it no cgroupsPath: \
                     no delegated cgroup to limit)",
                spec.launcher.name()
            ),
            k => format!("{} does not express cgroup limits", k.name()),
        }));
    }
    if let Exercise::KillGroup { .. } | Exercise::FreezeGroup { .. } = limits.exercise {
        group_requirements(spec, limits, layout)?;
    }
    super::rules::check(spec, limits, layout)?;
    super::iocost::check(spec, limits, layout)?;
    launcher.supports_limits(spec, limits, layout)?;
    let mut needed: Vec<String> = Vec::new();
    for side in std::iter::once(&limits.settings).chain(limits.sibling.iter()) {
        for s in side.settings(Some((0, 0))) {
            let (v1, _) = controllers(&s.key).map_err(|e| Requirement::Setting.skip(e.to_string()))?;
            if crate::cgroup::table::lookup(&s.key).is_ok_and(|m| m.v1 == crate::cgroup::table::Conversion::V2Only)
                && !matches!(layout.placement(v1), Placement::V2 { .. })
            {
                return Err(Requirement::Controller(v1.to_owned()).skip(format!(
                    "{} is a cgroup2 file with no cgroup v1 counterpart, and {v1} is not a cgroup2 controller here \
                     ({})",
                    s.key,
                    layout.describe()
                )));
            }
            if let Some((_, (major, minor))) = SINCE.iter().find(|(k, _)| *k == s.key) {
                let kernel = crate::requirement::KernelRelease::running();
                if !kernel.at_least(*major, *minor) {
                    return Err(Requirement::KernelAtLeast(*major, *minor).skip(format!(
                        "{} appeared in Linux {major}.{minor}; this kernel is {}",
                        s.key, kernel.release
                    )));
                }
            }
            needed.push(v1.to_owned());
        }
    }
    if matches!(
        limits.exercise,
        Exercise::CacheRead { .. }
            | Exercise::OomGroup { .. }
            | Exercise::OomGroupParent { .. }
            | Exercise::MemoryProtect { .. }
    ) {
        // memory.high is the tool's to write (OCI unified, lxc.cgroup2.*) on its own cgroup;
        // memory.oom.group and memory.low/min are set on the sibling or below it, cgroups of
        // isoprobe's own.
        if !matches!(limits.exercise, Exercise::CacheRead { .. }) && !spec.launcher.is_native() {
            return Err(Requirement::LauncherFeature { launcher: spec.launcher.name(), what: "cgroup2-memory".into() }
                .skip(
                    "memory.oom.group, memory.low and memory.min are set on the case's sibling or below it, cgroups \
                     isoprobe makes beside the tool's (the group must die, or press, apart from the probe): through \
                     a tool the case would measure isoprobe, not the tool",
                ));
        }
        // The control too: its evidence is the same cgroup2 counters.
        if !matches!(layout.placement("memory"), Placement::V2 { .. }) {
            let what = match limits.exercise {
                Exercise::MemoryProtect { .. } => {
                    "memory.low and memory.min (cgroup2 files with no cgroup v1 counterpart) are set on a child of \
                     the sibling and judged by its memory.current"
                }
                Exercise::OomGroupParent { .. } => {
                    "memory.oom.group is set on a parent whose two children get memory from its \
                     cgroup.subtree_control, and the kill is judged by the parent's memory.events and \
                     memory.events.local (cgroup2 files with no cgroup v1 counterpart)"
                }
                _ => "the exercise is judged by cgroup2's memory.peak, memory.events and memory.events.local",
            };
            return Err(Requirement::Controller("memory".into())
                .skip(format!("{what}, and memory is not a cgroup2 controller here ({})", layout.describe())));
        }
    }
    match &limits.exercise {
        Exercise::PerfCount { .. } => needed.push("perf_event".into()),
        Exercise::Freezer { .. } if limits.settings.freeze => needed.push("freezer".into()),
        _ => {}
    }
    for c in &needed {
        match layout.placement(c) {
            Placement::V1 { .. } | Placement::V2 { .. } | Placement::Unmounted => {}
            // cgroup2 freezes with its core cgroup.freeze file.
            Placement::Unusable(_) if c == "freezer" && layout.v2().is_some_and(|(_, h)| h.parent.is_ok()) => {}
            Placement::Unusable(why) if c == "devices" && layout.v2().is_some() => {
                return Err(Requirement::Controller("devices".into()).skip(format!(
                    "{why}; on cgroup2 a device list needs a BPF_CGROUP_DEVICE program, which isoprobe does not load"
                )));
            }
            Placement::Unusable(why) => return Err(Requirement::Controller(c.clone()).skip(why)),
        }
    }
    // A swap limit of 0 only forbids swapping; a larger one has something to limit only with swap.
    if limits.settings.memory_swap_max.is_some_and(|s| s > 0) {
        let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
        if swaps.lines().skip(1).all(|l| l.trim().is_empty()) {
            return Err(Requirement::Host("swap")
                .skip("no swap device is active (/proc/swaps lists none): a swap limit has nothing to limit"));
        }
    }
    if limits.settings.cpuset_mems.is_some() {
        let nodes = fs::read_dir("/sys/devices/system/node")
            .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("node")).count())
            .unwrap_or(0);
        if nodes < 2 {
            return Err(Requirement::Host("numa").skip(format!(
                "{nodes} NUMA node(s) in /sys/devices/system/node: cpuset.mems cannot exclude any memory"
            )));
        }
    }
    if limits.settings.net_prio_ifpriomap.is_some() {
        return Err(Requirement::Host("net_prio-observer").skip(
            "net_prio.ifpriomap maps a device named in the writer's network namespace: for the probe's own lo \
             it would have to be written from inside the probe's network namespace, and for the host's lo it \
             changes a host device (its priomap outlives the cgroup); isoprobe does neither, so no packet of \
             the probe gets a priority to observe",
        ));
    }
    match &limits.exercise {
        Exercise::PerfCount { .. } if crate::fingerprint::cpuid_hypervisor().as_deref() == Some("qemu-tcg") => {
            return Err(Requirement::Host("not-tcg").skip(
                "the CPU is QEMU's TCG emulator (CPUID hypervisor signature TCGTCGTCGTCG): the first cgroup perf \
                 event switches the kernel's perf_sched_events static key by live text patching (int3, \
                 text_poke_bp), and under TCG with 2 vCPUs the other vCPU then hit the int3 in __schedule \
                 (\"Oops: int3\", kernel panic; Debian 6.12.117 in ci/kernels)",
            ));
        }
        Exercise::IoRead { .. } | Exercise::CacheRead { .. } | Exercise::MemoryProtect { .. }
            if !tool_in_path("losetup") =>
        {
            return Err(Requirement::Tool("losetup".into())
                .skip("losetup (util-linux) is not in PATH: the io case needs a loop device"));
        }
        Exercise::Hugetlb { page_size, pages } => {
            let kb = page_size / 1024;
            let p = format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB/free_hugepages");
            let free: u64 = fs::read_to_string(&p).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
            if free < u64::from(*pages) {
                return Err(Requirement::Host("hugepages").skip(format!(
                    "{free} free {kb} kB huge pages ({p}), the exercise needs {pages}: the pool is sized with \
                         vm.nr_hugepages, a host-wide setting isoprobe does not change"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Settings younger than the oldest kernels isoprobe runs on, with the release that added them
/// (cgroup2 and v1 alike: cpu.max.burst is v1's cpu.cfs_burst_us, cpu.idle the same name).
const SINCE: &[(&str, (u32, u32))] = &[("cpu.max.burst", (5, 14)), ("cpu.idle", (5, 15))];

/// What the forking-group cases need: a native launcher (no tool expresses these writes: cgroup.kill
/// and cgroup.freeze of a sibling are isoprobe's own actions, not resources of OCI's
/// `linux.resources.unified` or LXC's `lxc.cgroup2.*`), a writable cgroup2 hierarchy (both files
/// are cgroup2 core files, on any cgroup2 cgroup whatever its controllers), and the kernel that
/// added the file.
fn group_requirements(spec: &CaseSpec, limits: &LimitSpec, layout: &CgroupLayout) -> Result<(), Skip> {
    let (file, since) = match limits.exercise {
        Exercise::KillGroup { .. } => ("cgroup.kill", (5, 14)),
        _ => ("cgroup.freeze", (5, 2)),
    };
    if !spec.launcher.is_native() {
        return Err(Requirement::LauncherFeature { launcher: spec.launcher.name(), what: "cgroup-group".into() }.skip(
            format!(
                "{file} is written by isoprobe on a sibling cgroup of its own, beside the tool's; {} has no \
                 setting for it (an action, not a resource), so the case would measure isoprobe, not the tool",
                spec.launcher.name()
            ),
        ));
    }
    if layout.v2().is_none_or(|(_, h)| h.parent.is_err()) {
        return Err(Requirement::Host("cgroup2")
            .skip(format!("no writable cgroup2 hierarchy ({}): {file} is a cgroup2 core file", layout.describe())));
    }
    let kernel = crate::requirement::KernelRelease::running();
    if !kernel.at_least(since.0, since.1) {
        return Err(Requirement::KernelAtLeast(since.0, since.1)
            .skip(format!("{file} appeared in Linux {}.{}; this kernel is {}", since.0, since.1, kernel.release)));
    }
    Ok(())
}

/// Whether `name` is an executable in PATH (or in /usr/sbin, /sbin, where root's tools are).
pub(super) fn tool_in_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain([Path::new("/usr/sbin").to_path_buf(), Path::new("/sbin").to_path_buf()])
        .any(|d| d.join(name).is_file())
}
