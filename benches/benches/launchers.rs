//! Start latency per launcher: the six real tools and the native launcher start the same payload
//! (the static probe, in the minimal rootfs) with the same namespace set, and the time from launch
//! to the probe's first message is measured (`Harness::start_latency`). Teardown happens outside
//! the timed region (`iter_custom`).
//!
//! The namespace set is pid+uts+mnt+ipc+net+cgroup (no user namespace, so it runs as root only):
//! what every tool can create, and what systemd-nspawn creates anyway. The rootfs is the minimal
//! one after pivot_root, except for util-linux unshare(1), which can only chroot into it.
//!
//! Launchers whose tool is missing, or which cannot run as the current user, are left out with a
//! line saying why.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use isoprobe_harness::launcher::registry::describe;
use isoprobe_harness::matrix::spec_for;
use isoprobe_harness::{Harness, HarnessOptions, LauncherKind, NsKind, NsSet, RootfsMode};

fn namespaces() -> NsSet {
    [NsKind::Pid, NsKind::Uts, NsKind::Mnt, NsKind::Ipc, NsKind::Net, NsKind::Cgroup].into_iter().collect()
}

fn bench_launchers(c: &mut Criterion, h: &Harness) {
    let mut group = c.benchmark_group("launcher-start");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8));
    let kinds = [
        LauncherKind::Clone3,
        LauncherKind::UtilUnshare,
        LauncherKind::Bwrap,
        LauncherKind::Lxc,
        LauncherKind::Runc,
        LauncherKind::Crun,
        LauncherKind::Nspawn,
    ];
    for kind in kinds {
        let rootfs = if kind == LauncherKind::UtilUnshare { RootfsMode::Chroot } else { RootfsMode::PivotRoot };
        let spec = spec_for(namespaces(), rootfs, kind);
        // The requirement includes the launcher's own (`launcher::can_run`).
        if let Err(skip) = h.requirement(&spec) {
            eprintln!("launcher-start/{}: skipped: {}", kind.name(), skip.reason);
            continue;
        }
        let version = describe(kind).tool.map(|t| t.version).unwrap_or_else(|| "native".into());
        eprintln!("launcher-start/{}: {} ({version})", kind.name(), spec.name());
        group.bench_function(BenchmarkId::new("start", kind.name()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += h.start_latency(&spec).unwrap_or_else(|e| panic!("{}: {e}", spec.name()));
                }
                total
            })
        });
    }
    group.finish();
}

fn main() {
    isoprobe_harness::multicall();
    let harness = Harness::new(HarnessOptions::default()).expect("failed to set up the harness");
    let mut c = Criterion::default().configure_from_args();
    bench_launchers(&mut c, &harness);
    c.final_summary();
}
