//! The cgroup2 rule exercises ([`CgroupRules`]): the probe writes cgroup core files of the case's
//! cgroup and of its empty sibling, one write(2) per step, and reports what the kernel gave each.
//!
//! What this module must never do: judge, or write anywhere but below the two directories the
//! harness named (the case's own cgroups: every child it makes carries isoprobe's prefix, and the
//! host removes whatever it leaves).

use std::io::Write;
use std::sync::mpsc;

use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::unistd::mkdir;

use crate::wire::{CgroupRules, ExerciseReport, RuleStep, SysResult, rule_step as step};

/// Runs the steps of `rules` against `case` (the probe's cgroup) and `sibling`.
pub fn run(rules: &CgroupRules, case: &str, sibling: &str) -> ExerciseReport {
    let mut steps = Steps(Vec::new());
    match rules {
        CgroupRules::Delegation { .. } => delegation(&mut steps, case, sibling),
        CgroupRules::InternalProcess { controller } => internal_process(&mut steps, case, sibling, controller),
        CgroupRules::Threaded => threaded(&mut steps, case, sibling),
        CgroupRules::ThreadedControllers { threaded, domain } => {
            threaded_controllers(&mut steps, case, sibling, threaded, domain)
        }
        CgroupRules::TopDown { controller } => super::cgroup_core::top_down(&mut steps, sibling, controller),
        CgroupRules::InvalidDomain => super::cgroup_core::invalid_domain(&mut steps, case, sibling),
        CgroupRules::Populated => super::cgroup_core::populated(&mut steps, sibling),
        CgroupRules::OpenCredentials => super::cgroup_core::open_credentials(&mut steps, sibling),
        CgroupRules::ProcMigration => super::cgroup_threads::proc_migration(&mut steps, case, sibling),
        CgroupRules::ParentThreaded => super::cgroup_threads::parent_threaded(&mut steps, sibling),
    }
    ExerciseReport::CgroupRules { steps: steps.0 }
}

/// The steps taken so far.
pub(super) struct Steps(Vec<RuleStep>);

impl Steps {
    /// Records `name` with `result`; returns whether it succeeded.
    pub(super) fn put(&mut self, name: &str, result: Option<SysResult>) -> bool {
        self.put_value(name, result.map(|r| (r, None)))
    }

    /// Records `name` with `result` and the value it read, if any; returns whether it succeeded.
    pub(super) fn put_value(&mut self, name: &str, taken: Option<(SysResult, Option<String>)>) -> bool {
        let ok = taken.as_ref().is_some_and(|(r, _)| r.is_ok());
        let (result, value) = match taken {
            Some((r, v)) => (Some(r), v),
            None => (None, None),
        };
        self.0.push(RuleStep { step: name.to_owned(), result, value });
        ok
    }

    /// Records `name` as taken only if `taken` (an earlier step it needs succeeded).
    pub(super) fn put_if(&mut self, name: &str, taken: bool, f: impl FnOnce() -> SysResult) -> bool {
        self.put(name, taken.then(f))
    }
}

/// Opens `path` for writing and writes `value` in one write(2), as cgroupfs wants.
pub(super) fn write_file(path: &str, value: &str) -> SysResult {
    io_result(std::fs::OpenOptions::new().write(true).open(path).and_then(|mut f| f.write(value.as_bytes())))
}

pub(super) fn io_result<T>(r: std::io::Result<T>) -> SysResult {
    match r {
        Ok(_) => SysResult::Ok,
        Err(e) => {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            SysResult::Err { errno: errno as i32, name: format!("{errno:?}") }
        }
    }
}

pub(super) fn make_dir(path: &str) -> SysResult {
    mkdir(path, Mode::from_bits_truncate(0o755)).into()
}

/// Delegation (cgroup-v2.rst, "Delegation" and "Delegation Containment"): inside the subtree,
/// then the delegation root's own resource file, then out of the subtree.
fn delegation(s: &mut Steps, case: &str, sibling: &str) {
    let child = format!("{case}/{}", step::CHILD);
    let made = s.put(step::MKDIR_CHILD, Some(make_dir(&child)));
    s.put_if(step::ENTER_CHILD, made, || write_file(&format!("{child}/cgroup.procs"), "0"));
    s.put(step::BACK_TO_ROOT, Some(write_file(&format!("{case}/cgroup.procs"), "0")));
    s.put_if(step::RMDIR_CHILD, made, || io_result(std::fs::remove_dir(&child)));
    // `max` is the default: where the write is let through it changes nothing.
    s.put(step::ROOT_RESOURCE, Some(write_file(&format!("{case}/cgroup.max.depth"), "max")));
    let left = s.put(step::LEAVE_SUBTREE, Some(write_file(&format!("{sibling}/cgroup.procs"), "0")));
    s.put_if(step::RETURN, left, || write_file(&format!("{case}/cgroup.procs"), "0"));
}

/// The no-internal-process constraint: the populated case's cgroup, then the empty sibling.
fn internal_process(s: &mut Steps, case: &str, sibling: &str, controller: &str) {
    let control = |dir: &str| format!("{dir}/cgroup.subtree_control");
    s.put(step::ENABLE_POPULATED, Some(write_file(&control(case), &format!("+{controller}"))));
    s.put(step::ENABLE_EMPTY, Some(write_file(&control(sibling), &format!("+{controller}"))));
    s.put(step::JOIN_ENABLED, Some(write_file(&format!("{sibling}/cgroup.procs"), "0")));
    s.put(step::DISABLE_EMPTY, Some(write_file(&control(sibling), &format!("-{controller}"))));
    s.put(step::JOIN_PLAIN, Some(write_file(&format!("{sibling}/cgroup.procs"), "0")));
    s.put(step::RETURN, Some(write_file(&format!("{case}/cgroup.procs"), "0")));
}

/// Makes `names` children of `case` and writes `threaded` to their cgroup.type; the first failure.
pub(super) fn make_threaded(case: &str, names: &[&str]) -> SysResult {
    for n in names {
        let dir = format!("{case}/{n}");
        for r in [make_dir(&dir), write_file(&format!("{dir}/cgroup.type"), "threaded")] {
            if !r.is_ok() {
                return r;
            }
        }
    }
    SysResult::Ok
}

pub(super) fn remove_children(case: &str, names: &[&str]) {
    for n in names {
        let _ = std::fs::remove_dir(format!("{case}/{n}"));
    }
}

/// Threads: one thread of the probe (a helper that waits) moved through a threaded subtree.
fn threaded(s: &mut Steps, case: &str, sibling: &str) {
    let names = [step::THREADED_A, step::THREADED_B];
    let made = s.put(step::MAKE_THREADED, Some(make_threaded(case, &names)));
    let (tid_tx, tid_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = tid_tx.send(nix::unistd::gettid().as_raw());
        let _ = end_rx.recv();
    });
    let tid = tid_rx.recv().map(|t| t.to_string()).unwrap_or_default();
    let threads = |dir: &str| format!("{dir}/cgroup.threads");
    let moved_in = s.put_if(step::THREAD_IN, made, || write_file(&threads(&format!("{case}/{}", names[0])), &tid));
    s.put_if(step::THREAD_ACROSS, moved_in, || write_file(&threads(&format!("{case}/{}", names[1])), &tid));
    s.put_if(step::THREAD_TO_DOMAIN, moved_in, || write_file(&threads(sibling), &tid));
    s.put_if(step::THREAD_BACK, moved_in, || write_file(&threads(case), &tid));
    s.put_if(step::UNTHREAD, made, || write_file(&format!("{case}/{}/cgroup.type", names[0]), "domain"));
    let _ = end_tx.send(());
    let _ = helper.join();
    remove_children(case, &names);
}

/// Threaded and domain-only controllers in a threaded domain that holds processes.
fn threaded_controllers(s: &mut Steps, case: &str, sibling: &str, threaded: &str, domain: &str) {
    let control = |dir: &str| format!("{dir}/cgroup.subtree_control");
    s.put(step::THREADED_IN_DOMAIN, Some(write_file(&control(case), &format!("+{threaded}"))));
    let names = [step::THREADED_A];
    let made = s.put(step::MAKE_THREADED, Some(make_threaded(case, &names)));
    s.put_if(step::THREADED_IN_THREADED, made, || write_file(&control(case), &format!("+{threaded}")));
    s.put_if(step::DOMAIN_IN_THREADED, made, || write_file(&control(case), &format!("+{domain}")));
    s.put(step::DOMAIN_IN_EMPTY, Some(write_file(&control(sibling), &format!("+{domain}"))));
    remove_children(case, &names);
}
