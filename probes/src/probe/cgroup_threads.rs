//! The cgroup2 core rules of the kernel's test_core about threads that [`super::cgroup_rules`]
//! does not take: a process migration takes every thread of the process
//! (test_cgcore_proc_migration), beside a thread migration that takes one
//! (test_cgcore_thread_migration); and a cgroup becomes a thread root ("domain threaded") once a
//! child of it is threaded (test_cgcore_parent_becomes_threaded). Each step is one system call
//! whose result (and, for a read, the value read) is reported as it came.
//!
//! What this module must never do: judge, write outside the directories the harness named (every
//! cgroup it makes carries isoprobe's prefix, and the host removes whatever it leaves), or return
//! with a helper thread still running.

use std::sync::mpsc;
use std::thread::JoinHandle;

use super::cgroup_core::{first_error, read_file};
use super::cgroup_rules::{Steps, io_result, make_dir, make_threaded, remove_children, write_file};
use crate::wire::{PROC_MIGRATION_THREADS, SysResult, rule_step as step};

/// The probe's helper threads, each waiting until told to end.
struct Helpers {
    tids: Vec<i32>,
    ends: Vec<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Helpers {
    fn start(n: usize) -> Helpers {
        let mut h = Helpers { tids: Vec::new(), ends: Vec::new(), threads: Vec::new() };
        for _ in 0..n {
            let (tid_tx, tid_rx) = mpsc::channel();
            let (end_tx, end_rx) = mpsc::channel::<()>();
            h.threads.push(std::thread::spawn(move || {
                let _ = tid_tx.send(nix::unistd::gettid().as_raw());
                let _ = end_rx.recv();
            }));
            h.ends.push(end_tx);
            if let Ok(tid) = tid_rx.recv() {
                h.tids.push(tid);
            }
        }
        h
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.ends.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How many of the probe's threads are in a cgroup whose path ends in `/name`, as
/// `/proc/self/task/<tid>/cgroup` gives it (the cgroup2 line, `0::<path>`): `"<in> of <all>"`.
fn threads_in(name: &str) -> (SysResult, Option<String>) {
    let tasks = match std::fs::read_dir("/proc/self/task") {
        Ok(d) => d,
        Err(e) => return (io_result::<()>(Err(e)), None),
    };
    let suffix = format!("/{name}");
    let (mut inside, mut all) = (0, 0);
    for task in tasks {
        let text = match task.and_then(|t| std::fs::read_to_string(t.path().join("cgroup"))) {
            Ok(t) => t,
            Err(e) => return (io_result::<()>(Err(e)), None),
        };
        all += 1;
        if text.lines().filter_map(|l| l.strip_prefix("0::")).any(|p| p.ends_with(&suffix)) {
            inside += 1;
        }
    }
    (SysResult::Ok, Some(format!("{inside} of {all}")))
}

/// Process migration: the probe with its helper threads into a domain child of the sibling and
/// back, then one helper thread into a threaded child of the case's cgroup and back.
pub(super) fn proc_migration(s: &mut Steps, case: &str, sibling: &str) {
    let helpers = Helpers::start(PROC_MIGRATION_THREADS);
    let child = format!("{sibling}/{}", step::CHILD);
    let made = s.put(step::MKDIR_CHILD, Some(make_dir(&child)));
    let moved = s.put_if(step::MOVE_PROCESS, made, || write_file(&format!("{child}/cgroup.procs"), "0"));
    s.put_value(step::THREADS_MOVED, moved.then(|| threads_in(step::CHILD)));
    // Back in every outcome: a write the kernel should have refused may have moved the probe.
    s.put(step::RETURN, Some(write_file(&format!("{case}/cgroup.procs"), "0")));
    let names = [step::THREADED_A];
    let threaded = s.put(step::MAKE_THREADED, Some(make_threaded(case, &names)));
    let tid = helpers.tids.first().map(|t| t.to_string()).unwrap_or_default();
    let one_in =
        s.put_if(step::THREAD_IN, threaded, || write_file(&format!("{case}/{}/cgroup.threads", names[0]), &tid));
    s.put_value(step::THREAD_MOVED_ALONE, one_in.then(|| threads_in(names[0])));
    s.put_if(step::THREAD_BACK, one_in, || write_file(&format!("{case}/cgroup.threads"), &tid));
    drop(helpers);
    remove_children(case, &names);
    remove_children(sibling, &[step::CHILD]);
}

/// Parent becomes threaded: a child of the sibling whose own child is made threaded, then removed.
pub(super) fn parent_threaded(s: &mut Steps, sibling: &str) {
    let parent = format!("{sibling}/{}", step::CHILD);
    let child = format!("{parent}/{}", step::GRANDCHILD);
    let type_of = |dir: &str| read_file(&format!("{dir}/cgroup.type"));
    let made = s.put(step::MKDIR_CHILD, Some(first_error([make_dir(&parent), make_dir(&child)])));
    s.put_value(step::PARENT_TYPE_BEFORE, made.then(|| type_of(&parent)));
    let threaded =
        s.put_if(step::MAKE_GRANDCHILD_THREADED, made, || write_file(&format!("{child}/cgroup.type"), "threaded"));
    s.put_value(step::PARENT_TYPE_THREADED, threaded.then(|| type_of(&parent)));
    s.put_value(step::GRANDCHILD_TYPE, threaded.then(|| type_of(&child)));
    let removed = s.put_if(step::RMDIR_GRANDCHILD, made, || io_result(std::fs::remove_dir(&child)));
    s.put_value(step::PARENT_TYPE_AFTER, removed.then(|| type_of(&parent)));
    remove_children(&parent, &[step::GRANDCHILD]);
    remove_children(sibling, &[step::CHILD]);
}
