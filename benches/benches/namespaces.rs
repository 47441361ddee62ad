//! Per namespace kind (the 8 kinds and "all"): what creating, entering and joining costs.
//!
//! - `clone3_return/<kind>`, `clone_return/<kind>`: the creating call as the parent sees it
//!   (the child `_exit`s at once and is reaped outside the timing);
//! - `clone3_exit_wait/<kind>`: create, the child's exit and the reap, as one;
//! - `unshare/<kind>`: unshare(2) timed inside a fresh child, only the call;
//! - `unshare_repeat/<kind>`: the 2nd to 9th unshare(2) in a row in one child, where the kernel
//!   allows a repeat;
//! - `setns_nsfd/<kind>` and `setns_pidfd/<kind>`: setns(2) into a holder's namespaces through
//!   /proc/<pid>/ns files (one call per kind, user first) or a pidfd (one call), in a fresh child.
//!
//! And the raw reference (group `reference`): bare-libc loops of unshare and clone3+exit+wait
//! measured in the same run, next to the harness's own measurement of the same operation.

#![deny(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use isoprobe_benches::primitives::{self, Action, Call, Holder, SharedPage, Timed, reference};
use isoprobe_benches::run::{NETNS, PER_OP};
use isoprobe_benches::summary;
use isoprobe_benches::{BenchRun, Profile};
use isoprobe_probes::ns::{NsKind, NsSet};

/// Unshares per child in `unshare_repeat` (after one untimed first call). The user namespace
/// nesting limit is 32, so 1 + 8 stays far below it.
const REPEAT: u32 = 8;

/// The kinds of the "all" case in the order setns through ns files joins them: user first, so
/// that the joiner holds capabilities over the others.
const JOIN_ORDER: [NsKind; 8] =
    [NsKind::User, NsKind::Pid, NsKind::Uts, NsKind::Mnt, NsKind::Ipc, NsKind::Net, NsKind::Cgroup, NsKind::Time];

fn profile(set: NsSet) -> Profile {
    if set.contains(NsKind::Net) { NETNS } else { PER_OP }
}

fn label(set: NsSet) -> String {
    set.to_string()
}

fn main() {
    isoprobe_probes::multicall();
    let mut run = BenchRun::new("namespaces");
    let page = SharedPage::new(REPEAT as usize).expect("failed to map the shared page");
    let sets: Vec<NsSet> =
        NsKind::ALL.iter().map(|k| NsSet::EMPTY.with(*k)).chain(std::iter::once(NsSet::ALL)).collect();

    reference_comparison(&mut run, &page);

    // Every case of the group is sampled in rounds (see `run::Group::bench_interleaved`), so the
    // holders the setns cases join must live until the group has finished.
    let page = &page;
    let mut holders = Vec::new();
    let mut g = run.group("namespaces");
    for &set in &sets {
        let (flags, name, prof) = (set.clone_flags(), label(set), profile(set));
        g.bench_interleaved("clone3_return", &name, prof, move || {
            let (child, t) = primitives::spawn(Call::Clone3, flags, None, &Action::Exit, page)?;
            child.wait()?.check("clone3")?;
            Ok(t)
        });
        // clone(2) cannot express CLONE_NEWTIME: its bit is in the exit-signal byte.
        let clone_set = set.without(NsKind::Time);
        let clone_name = if set == NsSet::ALL { "all-but-time".to_owned() } else { name.clone() };
        if clone_set.is_empty() {
            g.skip("clone_return", &name, "clone(2) cannot express CLONE_NEWTIME (the bit is in the exit-signal byte)");
        } else {
            let f = clone_set.clone_flags();
            g.bench_interleaved("clone_return", &clone_name, prof, move || {
                let (child, t) = primitives::spawn(Call::Clone, f, None, &Action::Exit, page)?;
                child.wait()?.check("clone")?;
                Ok(t)
            });
        }
        g.bench_interleaved("clone3_exit_wait", &name, prof, move || {
            primitives::create_exit_wait(Call::Clone3, flags, page)
        });
        g.bench_interleaved("unshare", &name, prof, move || Ok(primitives::unshare_in_child(flags, 0, 1, page)?[0]));
        if set.contains(NsKind::User) {
            g.skip(
                "unshare_repeat",
                &name,
                "a second unshare(CLONE_NEWUSER) fails with EPERM: the child's uid has no mapping in the first \
                 new user namespace (no parent writes one in between)",
            );
        } else if set.contains(NsKind::Pid) {
            g.skip(
                "unshare_repeat",
                &name,
                "a second unshare(CLONE_NEWPID) fails with EINVAL until the process forks (the pid namespace \
                 for children is already set)",
            );
        } else {
            g.bench_iters_interleaved("unshare_repeat", &name, prof, move |iters| {
                let mut total = Timed::default();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(u64::from(REPEAT)) as u32;
                    total = total + primitives::unshare_in_child(flags, 1, n, page)?.into_iter().sum::<Timed>();
                    left -= u64::from(n);
                }
                Ok(total)
            });
        }
        holders.extend(setns_cases(&mut g, set, page));
    }
    g.finish();
    let released: Vec<io::Error> = holders.into_iter().filter_map(|h| h.release().err()).collect();
    run.finish();
    if !released.is_empty() {
        eprintln!("isoprobe-bench namespaces: FAILED to release setns holders: {released:?}");
        std::process::exit(1);
    }
}

/// A namespace holder and the descriptors the setns cases join it through, kept until the
/// group's interleaved cases have run.
/// setns through ns files and through a pidfd into a holder created with `set`; returns the
/// holder, which the cases join until the group finishes (each case owns its descriptors).
fn setns_cases<'a>(g: &mut isoprobe_benches::Group<'a>, set: NsSet, page: &'a SharedPage) -> Option<Holder> {
    let name = label(set);
    let holder = match Holder::spawn(Call::Clone3, set.clone_flags(), None) {
        Ok((h, _)) => h,
        Err(e) => {
            for op in ["setns_nsfd", "setns_pidfd"] {
                g.skip(op, &name, format!("no holder with {name} namespaces: {e}"));
            }
            return None;
        }
    };
    // Setns cases create no namespace: no netns wait needed.
    let files: io::Result<Vec<_>> = JOIN_ORDER
        .iter()
        .filter(|k| set.contains(**k))
        .map(|k| holder.ns_file(k.name()).map(|f| (std::os::fd::OwnedFd::from(f), k.clone_flag() as i32)))
        .collect();
    match files {
        Ok(files) => g.bench_interleaved("setns_nsfd", &name, PER_OP, move || {
            // Borrowed for the call (the child's setns is what is timed, not this).
            let fds: Vec<_> = files.iter().map(|(f, t)| (f.as_fd(), *t)).collect();
            primitives::setns_in_child(&fds, page)
        }),
        Err(e) => g.fail("setns_nsfd", &name, format!("open the holder's ns files: {e}")),
    }
    match holder.pidfd() {
        Ok(pidfd) => {
            let nstype = set.clone_flags() as i32;
            g.bench_interleaved("setns_pidfd", &name, PER_OP, move || {
                primitives::setns_in_child(&[(pidfd.as_fd(), nstype)], page)
            });
        }
        Err(e) => g.skip("setns_pidfd", &name, format!("pidfd_open: {e}")),
    }
    Some(holder)
}

/// The bare-libc loops next to the harness's measurement of the same operation (group
/// `reference`: op `bare-libc` and op `harness`, param `<operation>/<kind>`). Both are cases of
/// one interleaved group, so their samples alternate and span the same seconds (and as odd
/// rounds run backwards, each of the two goes first in every other round):
/// neither a drift of the machine nor a slow phase of the CPU can favour either side, and the
/// same speed filter applies to both (see `isoprobe_benches::speed`).
fn reference_comparison(run: &mut BenchRun, page: &SharedPage) {
    let mut params = Vec::new();
    let mut g = run.group("reference");
    for set in [NsSet::EMPTY.with(NsKind::Uts), NsSet::EMPTY.with(NsKind::Net)] {
        let (flags, name, prof) = (set.clone_flags(), label(set), profile(set));
        for op in ["unshare", "clone3_exit_wait"] {
            let param = format!("{op}/{name}");
            g.record_cpu(true);
            g.bench_interleaved("harness", &param, prof, move || match op {
                "unshare" => Ok(primitives::unshare_in_child(flags, 0, 1, page)?[0]),
                _ => primitives::create_exit_wait(Call::Clone3, flags, page),
            });
            // The bare loops time inside the child (unshare) or around the calls only; they
            // measure no CPU time.
            g.record_cpu(false);
            g.bench_interleaved("bare-libc", &param, prof, move || {
                let ns = match op {
                    "unshare" => reference::unshare_loop(flags as i32, 1, || Ok(()))?,
                    _ => reference::clone3_exit_wait_loop(flags, 1, || Ok(()))?,
                };
                Ok(Timed { wall_ns: ns[0], cpu_ns: 0 })
            });
            params.push(param);
        }
    }
    g.finish();
    if g_mode_bench(run) {
        let target = summary::target_dir();
        let median = |op: &str, param: &str| {
            summary::read_criterion(&summary::criterion_dir(&target, "reference", op, param)).ok().map(|e| e.0)
        };
        eprintln!("isoprobe-bench reference: bare-libc loop vs the harness's measurement (medians)");
        for param in params {
            match (median("bare-libc", &param), median("harness", &param)) {
                (Some(m), Some(h)) => eprintln!(
                    "  {param:28} bare-libc {m:>10.0} ns  harness {h:>10.0} ns  difference {:+.1}%",
                    (h - m) / m * 100.0
                ),
                _ => eprintln!("  {param:28} no estimate (skipped or failed; see above)"),
            }
        }
    }
}

fn g_mode_bench(run: &BenchRun) -> bool {
    run.settings.mode == isoprobe_benches::run::Mode::Bench
}
