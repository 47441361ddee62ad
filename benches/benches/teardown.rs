//! Teardown: what ending a container costs.
//!
//! - `exit_to_reap/<kind>`: the synchronous part, from the child's last instruction before
//!   `_exit` to the parent's return from the reap (the kernel tears down the namespaces the child
//!   was the last user of, except the asynchronous part of a network namespace);
//! - `netns_release`: the asynchronous part of one network namespace, from dropping its last
//!   reference (closing the last nsfd) to the end of the `netns` workqueue's cleanup;
//! - `netns_drain/<n>`: the same for `n` namespaces released at once (the cleanup batches them).
//!
//! The release cases poll the kworkers back to back (see `isoprobe_benches::netns`); their
//! resolution is one poll, tens of microseconds. Their tails depend on RCU grace periods and on
//! what else the machine runs, so they vary more between runs than the synchronous cases.

#![deny(unsafe_code)]

use std::fs::File;
use std::io;
use std::time::Duration;

use isoprobe_benches::netns::NetnsWatch;
use isoprobe_benches::primitives::{self, Call, Holder, SharedPage, Timed};
use isoprobe_benches::run::{NETNS, PER_OP};
use isoprobe_benches::{BenchRun, Profile};
use isoprobe_probes::ns::{NsKind, NsSet};

/// `n` network namespaces kept alive by nsfds only (their holders have exited and been reaped).
fn netns_fds(n: usize) -> io::Result<Vec<File>> {
    let mut fds = Vec::with_capacity(n);
    for _ in 0..n {
        let (holder, _) = Holder::spawn(Call::Clone3, NsKind::Net.clone_flag(), None)?;
        fds.push(holder.ns_file("net")?);
        holder.release()?;
    }
    Ok(fds)
}

fn main() {
    isoprobe_probes::multicall();
    let mut run = BenchRun::new("teardown");
    let page = SharedPage::new(1).expect("failed to map the shared page");
    let sets: Vec<NsSet> = std::iter::once(NsSet::EMPTY)
        .chain(NsKind::ALL.iter().map(|k| NsSet::EMPTY.with(*k)))
        .chain(std::iter::once(NsSet::ALL))
        .collect();

    let page = &page;
    let mut g = run.group("teardown");
    // The namespace sets side by side, sampled in rounds when the group finishes (see
    // `run::Group::bench_interleaved`); the release cases below run at once, one after the other.
    for set in sets {
        let prof = if set.contains(NsKind::Net) { NETNS } else { PER_OP };
        let flags = set.clone_flags();
        g.bench_interleaved("exit_to_reap", &set.to_string(), prof, move || {
            primitives::exit_to_reap(Call::Clone3, flags, page)
        });
    }

    // The benchmark thread's CPU time in these cases is its polling, not a cost of the release.
    g.record_cpu(false);
    let one = Profile::Netns { full: 50, quick: 10 };
    bench_release(&mut g, "netns_release", "", one, 1);
    for n in g.settings().pick(vec![8usize, 32, 128], vec![8, 32]) {
        bench_release(&mut g, "netns_drain", &n.to_string(), Profile::Netns { full: 12, quick: 10 }, n);
    }
    g.finish();
    run.finish();
}

/// Each iteration: `n` namespaces held by nsfds, the cleanup idle, then the timed release.
fn bench_release(g: &mut isoprobe_benches::Group<'_>, op: &str, param: &str, prof: Profile, n: usize) {
    let mut watch = NetnsWatch::new();
    g.bench(op, param, prof, move || {
        let fds = netns_fds(n)?;
        watch.wait_idle(Duration::from_secs(120)).map_err(io::Error::other)?;
        let d = watch.time_release(move || drop(fds)).map_err(io::Error::other)?;
        Ok(Timed { wall_ns: d.as_nanos() as u64, cpu_ns: 0 })
    });
}
