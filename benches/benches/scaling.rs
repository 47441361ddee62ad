//! Scaling: where the kernel serialises namespace work.
//!
//! - `netns_threads/<n>`: unshare(CLONE_NEWNET) latency (timed in a fresh child, only the call)
//!   while `n` threads, each pinned to its own CPU, create network namespaces at the same moment
//!   (a barrier per round); 1..=ncpu. Network namespace creation takes `pernet_ops_rwsem` and
//!   `net_rwsem` and runs every pernet init, the global work the SOCK paper (Oakes et al., USENIX
//!   ATC '18) found serialising container starts;
//! - `unshare_mnt_mounts/<m>`: unshare(CLONE_NEWNS) in a fresh child that first joined a private
//!   mount namespace holding `m` extra mounts (bind mounts under a tmpfs, made by a holder child):
//!   copying the mount tree is linear in its size;
//! - `netns_churn/<k>`: unshare(CLONE_NEWNET) latency while `k` background threads create and drop
//!   network namespaces as fast as they can (k = 0 is the same measurement without churn).

#![deny(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use isoprobe_benches::payload::TempDir;
use isoprobe_benches::primitives::{self, Holder, MountPlan, SharedPage, Timed};
use isoprobe_benches::run::{NETNS, bench_cpu, pin_thread};
use isoprobe_benches::{BenchRun, Profile};
use isoprobe_probes::ns::NsKind;

fn ncpu() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN).ok().flatten().map(|n| n as usize).unwrap_or(1)
}

/// The CPU for helper thread `i`: away from the benchmark thread's CPU first.
fn helper_cpu(i: usize) -> usize {
    let n = ncpu();
    let main = bench_cpu().unwrap_or(n - 1);
    (main + 1 + i) % n
}

fn unshare_net(page: &SharedPage) -> std::io::Result<Timed> {
    Ok(primitives::unshare_in_child(NsKind::Net.clone_flag(), 0, 1, page)?[0])
}

fn main() {
    isoprobe_probes::multicall();
    let mut run = BenchRun::new("scaling");
    // What the interleaved cases use lives until the groups end: the shared page, and the temp
    // dirs and mount namespaces of `unshare_mnt_mounts`.
    let page = SharedPage::new(1).expect("failed to map the shared page");
    let mut mount_trees: Vec<(usize, TempDir, std::fs::File)> = Vec::new();
    let mut setup_errors: Vec<(usize, std::io::Error)> = Vec::new();
    let counts: Vec<usize> = run.settings.pick(vec![0, 100, 500, 1000, 2000], vec![0, 500]);
    for &m in &counts {
        let setup = TempDir::new().and_then(|dir| {
            let plan = MountPlan::new(dir.path(), m)?;
            let h = Holder::with_mounts(&plan)?;
            let nsfd = h.ns_file("mnt")?;
            h.release()?;
            Ok((m, dir, nsfd))
        });
        match setup {
            Ok(tree) => mount_trees.push(tree),
            Err(e) => setup_errors.push((m, e)),
        }
    }

    // Sampled in rounds (see `run::Group::bench_interleaved`): the thread counts and the mount
    // tree sizes side by side, so that each spans the same seconds of the machine's time.
    let mut g = run.group("scaling");
    for (m, e) in setup_errors {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            g.skip("unshare_mnt_mounts", &m.to_string(), format!("needs root: {e}"));
        } else {
            g.fail("unshare_mnt_mounts", &m.to_string(), format!("set up {m} mounts: {e}"));
        }
    }
    // Network namespace creation on 1..=ncpu threads at once.
    for n in 1..=ncpu() {
        g.bench_interleaved("netns_threads", &n.to_string(), NETNS, move || {
            let barrier = Barrier::new(n);
            let results: Vec<std::io::Result<Timed>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .map(|i| {
                        let barrier = &barrier;
                        s.spawn(move || {
                            // Thread 0 stays on the benchmark CPU; the others get their own.
                            if i > 0 {
                                let _ = pin_thread(helper_cpu(i - 1));
                            }
                            let page = SharedPage::new(1)?;
                            barrier.wait();
                            unshare_net(&page)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("a creator thread panicked")).collect()
            });
            // The mean latency of the round's calls.
            let mut total = Timed::default();
            for r in results {
                total = total + r?;
            }
            Ok(Timed { wall_ns: total.wall_ns / n as u64, cpu_ns: total.cpu_ns / n as u64 })
        });
    }

    // unshare(CLONE_NEWNS) versus the size of the mount tree.
    let mnt_profile = Profile::PerOp { full: 300, quick: 10 };
    let page = &page;
    for (m, _, nsfd) in &mount_trees {
        use std::os::fd::AsFd;
        let fd = nsfd.as_fd();
        let flag = NsKind::Mnt.clone_flag();
        g.bench_interleaved("unshare_mnt_mounts", &m.to_string(), mnt_profile, move || {
            primitives::setns_then_unshare_in_child(fd, flag as i32, flag, page)
        });
    }
    g.finish();

    // Network namespace creation under background churn.
    // The cleanup goes idle before each churn case starts; the case itself must not wait for an
    // idle cleanup (the churn keeps it busy), so it uses the plain per-operation profile.
    let churn_profile = Profile::PerOp { full: 200, quick: 10 };
    let mut g = run.group("scaling");
    g.wait_idle_before_cases(false);
    for k in [0usize, 1] {
        g.wait_netns_idle();
        let stop = Arc::new(AtomicBool::new(false));
        let churned = Arc::new(AtomicU64::new(0));
        let churners: Vec<_> = (0..k)
            .map(|i| {
                let (stop, churned) = (stop.clone(), churned.clone());
                std::thread::spawn(move || -> std::io::Result<()> {
                    let _ = pin_thread(helper_cpu(i));
                    let page = SharedPage::new(1)?;
                    // Bounded: a few thousand at most even if the measurement stalls.
                    while !stop.load(Ordering::Relaxed) && churned.load(Ordering::Relaxed) < 5_000 {
                        unshare_net(&page)?;
                        churned.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        if k > 0 {
            // Let the churn reach its steady state before measuring.
            std::thread::sleep(Duration::from_millis(200));
        }
        g.bench("netns_churn", &k.to_string(), churn_profile, || {
            let page = SharedPage::new(1)?;
            unshare_net(&page)
        });
        stop.store(true, Ordering::Relaxed);
        for c in churners {
            if let Err(e) = c.join().expect("a churn thread panicked") {
                g.fail("netns_churn", &k.to_string(), format!("background churn: {e}"));
            }
        }
        if k > 0 {
            eprintln!(
                "isoprobe-bench scaling: {} namespaces churned in the background",
                churned.load(Ordering::Relaxed)
            );
        }
    }
    g.finish();
    // Dropping the last reference of each mount namespace tears its mounts down.
    drop(mount_trees);
    run.finish();
}
