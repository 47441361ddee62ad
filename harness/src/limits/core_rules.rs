//! What the cgroup2 core rules of the kernel's test_core selftest must give, step by step (the
//! probe's side is `probe/cgroup_core.rs`): the top-down constraint, the invalid domain, the
//! `populated` events with the destroy rule, and the open-time credentials. Each rule's refusal
//! stands beside the same operation where the rule allows it (its control), in the same case.
//! Pure: the rules run as root in the host's namespaces, so nothing here depends on the case.

use isoprobe_probes::wire::{CgroupRules, PROC_MIGRATION_THREADS, rule_step as step};

use super::rules::Outcome;

/// The steps of `rules` (one of the core rules) and what each must give.
pub fn expect(rules: &CgroupRules) -> Vec<(&'static str, Outcome)> {
    use Outcome::Ok;
    let all = PROC_MIGRATION_THREADS + 1;
    let err = |errno: i32, name: &str| Outcome::Errno { errno, name: name.to_owned() };
    let reads = |v: &str| Outcome::Reads { value: v.to_owned() };
    match rules {
        // cgroup_subtree_control_write: enabling a controller the parent does not enable for its
        // children (cgroup_control) is ENOENT; disabling one a child still enables in its own
        // subtree_control is EBUSY. The same writes once the parent enables it, and once the child
        // no longer does, are the controls (test_cgcore_top_down_constraint_enable/_disable).
        CgroupRules::TopDown { .. } => vec![
            (step::MKDIR_CHILD, Ok),
            (step::ENABLE_UNDER_DISABLED, err(libc::ENOENT, "ENOENT")),
            (step::ENABLE_IN_PARENT, Ok),
            (step::ENABLE_UNDER_ENABLED, Ok),
            (step::DISABLE_OVER_ENABLED, err(libc::EBUSY, "EBUSY")),
            (step::DISABLE_IN_CHILD, Ok),
            (step::DISABLE_IN_PARENT, Ok),
        ],
        // A domain cgroup whose parent is threaded belongs to no valid domain: cgroup.type says
        // "domain invalid" (cgroup_type_show) and a migration into it is EOPNOTSUPP
        // (cgroup_migrate_vet_dst: !cgroup_is_valid_domain). Made threaded, it joins the threaded
        // domain and takes the whole process (cgroup.procs: a threadgroup may cross domains);
        // test_cgcore_invalid_domain.
        CgroupRules::InvalidDomain => vec![
            (step::MKDIR_CHILD, Ok),
            (step::MAKE_PARENT_THREADED, Ok),
            (step::INVALID_TYPE, reads("domain invalid")),
            (step::JOIN_INVALID, err(libc::EOPNOTSUPP, "EOPNOTSUPP")),
            (step::MAKE_CHILD_THREADED, Ok),
            (step::THREADED_TYPE, reads("threaded")),
            (step::JOIN_THREADED, Ok),
            (step::RETURN, Ok),
        ],
        // `populated` is 1 while the cgroup or a descendant holds a live process, so for the
        // parent too (cgroup_update_populated walks up), and 0 once the last one has exited
        // (cgroup_exit, before the parent can reap it); the change is notified to pollers of
        // cgroup.events (cgroup_file_notify: POLLPRI). rmdir of a populated cgroup is EBUSY
        // (cgroup_destroy_locked), of the emptied one allowed: test_cgcore_populated,
        // test_cgcore_destroy.
        CgroupRules::Populated => vec![
            (step::MKDIR_POPULATED, Ok),
            (step::MOVE_IN, Ok),
            (step::POPULATED_WHILE_IN, reads("1")),
            (step::PARENT_WHILE_IN, reads("1")),
            (step::RMDIR_POPULATED, err(libc::EBUSY, "EBUSY")),
            (step::EVENTS_NOTIFIED, Ok),
            (step::POPULATED_AFTER_EXIT, reads("0")),
            (step::PARENT_AFTER_EXIT, reads("0")),
            (step::RMDIR_EMPTIED, Ok),
        ],
        // __cgroup_procs_write checks the migration (write access to the common ancestor's
        // cgroup.procs, root's here) with the credentials the file was opened with
        // (of->file->f_cred), not the writer's: opened by nobody, root's write is EACCES
        // (test_cgcore_lesser_euid_open); opened by root, nobody's write moves the process.
        CgroupRules::OpenCredentials => vec![
            (step::CHOWN_PROCS, Ok),
            (step::OPEN_AS_NOBODY, Ok),
            (step::OPENED_LESSER, err(libc::EACCES, "EACCES")),
            (step::OPENED_ROOT, Ok),
        ],
        // cgroup_procs_write migrates the whole threadgroup (cgroup_procs_write_start with
        // threadgroup true: cgroup_migrate walks every thread of the leader), so every thread of the
        // probe is in the new cgroup (test_cgcore_proc_migration); cgroup_threads_write migrates the
        // one task named (threadgroup false), so in a threaded child of the case's cgroup only that
        // thread is (test_cgcore_thread_migration), the control.
        CgroupRules::ProcMigration => vec![
            (step::MKDIR_CHILD, Ok),
            (step::MOVE_PROCESS, Ok),
            (step::THREADS_MOVED, reads(&format!("{all} of {all}"))),
            (step::RETURN, Ok),
            (step::MAKE_THREADED, Ok),
            (step::THREAD_IN, Ok),
            (step::THREAD_MOVED_ALONE, reads(&format!("1 of {all}"))),
            (step::THREAD_BACK, Ok),
        ],
        // cgroup_enable_threaded makes the new threaded cgroup's parent its threaded domain
        // (dom_cgrp), and cgroup_type_show prints "domain threaded" for a thread root
        // (cgroup_is_thread_root: its own dom_cgrp with threaded children,
        // nr_threaded_children); before, and once the threaded child is removed, the parent is a
        // plain "domain" (test_cgcore_parent_becomes_threaded).
        CgroupRules::ParentThreaded => vec![
            (step::MKDIR_CHILD, Ok),
            (step::PARENT_TYPE_BEFORE, reads("domain")),
            (step::MAKE_GRANDCHILD_THREADED, Ok),
            (step::PARENT_TYPE_THREADED, reads("domain threaded")),
            (step::GRANDCHILD_TYPE, reads("threaded")),
            (step::RMDIR_GRANDCHILD, Ok),
            (step::PARENT_TYPE_AFTER, reads("domain")),
        ],
        CgroupRules::Delegation { .. }
        | CgroupRules::InternalProcess { .. }
        | CgroupRules::Threaded
        | CgroupRules::ThreadedControllers { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal has its control in the same case: an errno step and an allowed step that
    /// differs from it only in the layout (the rule's allowed side).
    #[test]
    fn every_refusal_has_an_allowed_twin() {
        for rules in [
            CgroupRules::TopDown { controller: "memory".into() },
            CgroupRules::InvalidDomain,
            CgroupRules::Populated,
            CgroupRules::OpenCredentials,
        ] {
            let steps = expect(&rules);
            let refused = steps.iter().filter(|(_, o)| matches!(o, Outcome::Errno { .. })).count();
            let allowed = steps.iter().filter(|(_, o)| !matches!(o, Outcome::Errno { .. })).count();
            assert!(refused >= 1 && allowed > refused, "{rules:?}");
        }
    }

    /// A value the rule's side reads stands beside the same read on the allowed side: every
    /// expected read differs from another read of the same case.
    #[test]
    fn every_read_has_a_contrasting_read() {
        for rules in [CgroupRules::ProcMigration, CgroupRules::ParentThreaded] {
            let reads: Vec<String> = expect(&rules)
                .into_iter()
                .filter_map(|(_, o)| match o {
                    Outcome::Reads { value } => Some(value),
                    _ => None,
                })
                .collect();
            assert!(reads.len() >= 2, "{rules:?}");
            for r in &reads {
                assert!(reads.iter().any(|o| o != r), "{rules:?}: {r}");
            }
        }
    }
}
