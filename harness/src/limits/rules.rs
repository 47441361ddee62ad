//! cgroup2's structural rules, checked by what the kernel lets the probe write: delegation and
//! its containment, the no-internal-process constraint, threaded subtrees (cgroup-v2.rst:
//! "Delegation", "Delegation Containment", "No Internal Process Constraint", "Threads"). Not
//! limits, but checked the same way: the probe reports each write's result (facts), [`expect`]
//! says what each must give (a pure function of the case), [`judge`] compares them; every check
//! holds its own controls (the same write where the rule does not apply, see each step's
//! comment), and a rule the host's hierarchy cannot show is a skip saying why.
//!
//! The host's part ([`prepare`]): name the case's cgroup and its sibling to the probe, pick the
//! domain controller, and delegate (chown) the case's cgroup. What it must never do: change how
//! the host's cgroup2 is mounted (nsdelegate is a superblock flag that any cgroup2 mount from the
//! initial cgroup namespace resets: isoprobe only reads it), or write outside the case's cgroups.

use std::os::fd::AsFd;

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::wire::{CgroupRules, Exercise, RuleStep, rule_step as step};
use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};

use super::spec::LimitSpec;
use crate::cgroup::{CaseCgroups, CgroupLayout};
use crate::error::{Context, HarnessError};
use crate::requirement::{KernelRelease, Requirement};
use crate::spec::{CaseSpec, IdMaps, RootfsMode};
use crate::verdict::{Skip, Verdict};

/// Domain controllers (not `threaded` in the kernel: the no-internal-process constraint holds for
/// them), in the order [`prepare`] prefers them: hugetlb is the one this hybrid host's cgroup2 has.
const DOMAIN_CONTROLLERS: [&str; 4] = ["memory", "io", "hugetlb", "rdma"];

/// The files a delegatee gets besides the directory (cgroup-v2.rst, "Model of Delegation").
const DELEGATED_FILES: [&str; 3] = ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"];

/// What one step must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    Errno {
        errno: i32,
        name: String,
    },
    /// Not taken: a step it needs is refused (a control's mkdir).
    NotTaken,
    /// A read that succeeds with this value (trimmed).
    Reads {
        value: String,
    },
}

impl Outcome {
    fn err(errno: i32, name: &str) -> Outcome {
        Outcome::Errno { errno, name: name.to_owned() }
    }

    fn text(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Errno { name, .. } => name.clone(),
            Outcome::NotTaken => "not taken".into(),
            Outcome::Reads { value } => format!("reads {value:?}"),
        }
    }
}

/// The case's namespaces as far as the rules care.
#[derive(Debug, Clone, Copy)]
pub struct RuleNs {
    /// The probe's root is an unprivileged host user (a user namespace; the runner is root, so
    /// the default map sends it to 100000).
    pub user_ns: bool,
    pub cgroup_ns: bool,
}

impl RuleNs {
    pub fn of(spec: &CaseSpec) -> RuleNs {
        RuleNs { user_ns: spec.has(NsKind::User), cgroup_ns: spec.has(NsKind::Cgroup) }
    }
}

/// What every step of `rules` must give in a case with `settings.delegate` = `delegated`.
pub fn expect(rules: &CgroupRules, delegated: bool, cx: RuleNs) -> Vec<(&'static str, Outcome)> {
    use Outcome::{NotTaken, Ok};
    let taken = |b: bool| if b { Ok } else { NotTaken };
    match rules {
        CgroupRules::Delegation { nsdelegate } => {
            // Write access to the subtree: the directory and cgroup.procs (and the common
            // ancestor's cgroup.procs, the case's own here) are the probe's user's only when
            // delegated; root in the initial user namespace needs no delegation.
            let privileged = !cx.user_ns;
            let may = privileged || delegated;
            let refused = || Outcome::err(libc::EACCES, "EACCES");
            // nsdelegate (cgroup_file_write, cgroup_procs_write_permission): from inside a
            // cgroup namespace, a write to a non-delegatable file of the namespace's root is
            // EPERM, and a migration whose source or destination is outside it is ENOENT,
            // whatever the writer's privilege. Without nsdelegate, or outside a cgroup namespace,
            // only file permissions and the common ancestor rule stand: root passes both.
            let contained = cx.cgroup_ns && nsdelegate.unwrap_or(false);
            let outside = |errno, name| match (privileged, contained) {
                // An unprivileged writer is refused at open(2): the files are root's.
                (false, _) => refused(),
                (true, true) => Outcome::err(errno, name),
                (true, false) => Ok,
            };
            let left = outside(libc::ENOENT, "ENOENT");
            vec![
                (step::MKDIR_CHILD, if may { Ok } else { refused() }),
                (step::ENTER_CHILD, taken(may)),
                // The control's write to its own cgroup.procs (it is in that cgroup already).
                (step::BACK_TO_ROOT, if may { Ok } else { refused() }),
                (step::RMDIR_CHILD, taken(may)),
                // The delegation root's resource files are the parent's: never chowned.
                (step::ROOT_RESOURCE, outside(libc::EPERM, "EPERM")),
                (step::LEAVE_SUBTREE, left.clone()),
                (step::RETURN, taken(left == Ok)),
            ]
        }
        // cgroup_vet_subtree_control_enable: EBUSY for a domain controller in a cgroup with
        // tasks; cgroup_migrate_vet_dst: EBUSY for a migration into a cgroup with a domain
        // controller in subtree_control. The empty sibling, and the sibling without the
        // controller, are the controls.
        CgroupRules::InternalProcess { .. } => vec![
            (step::ENABLE_POPULATED, Outcome::err(libc::EBUSY, "EBUSY")),
            (step::ENABLE_EMPTY, Ok),
            (step::JOIN_ENABLED, Outcome::err(libc::EBUSY, "EBUSY")),
            (step::DISABLE_EMPTY, Ok),
            (step::JOIN_PLAIN, Ok),
            (step::RETURN, Ok),
        ],
        // A thread moves between the threaded cgroups of its threaded domain; a domain outside
        // it refuses it (cgroup_attach_permissions: EOPNOTSUPP when the two cgroups' domains
        // differ), the thread's own domain takes it back; `threaded` is one-way (cgroup_type_write
        // takes nothing else: EINVAL).
        CgroupRules::Threaded => vec![
            (step::MAKE_THREADED, Ok),
            (step::THREAD_IN, Ok),
            (step::THREAD_ACROSS, Ok),
            (step::THREAD_TO_DOMAIN, Outcome::err(libc::EOPNOTSUPP, "EOPNOTSUPP")),
            (step::THREAD_BACK, Ok),
            (step::UNTHREAD, Outcome::err(libc::EINVAL, "EINVAL")),
        ],
        // cgroup_vet_subtree_control_enable: threaded controllers handle internal competition, so
        // the no-internal-process constraint is not theirs: enabling one in a domain with tasks
        // is let through and makes it a thread root (cgroup_is_thread_root: a domain with tasks
        // and a threaded controller enabled; the kernel's own
        // test_cgcore_no_internal_process_constraint_on_threads); the internal-process case's
        // domain controller in the same place is EBUSY. A domain controller inside the threaded
        // subtree is EOPNOTSUPP, and allowed in the empty sibling (its control).
        CgroupRules::ThreadedControllers { .. } => vec![
            (step::THREADED_IN_DOMAIN, Ok),
            (step::MAKE_THREADED, Ok),
            (step::THREADED_IN_THREADED, Ok),
            (step::DOMAIN_IN_THREADED, Outcome::err(libc::EOPNOTSUPP, "EOPNOTSUPP")),
            (step::DOMAIN_IN_EMPTY, Ok),
        ],
        rules => super::core_rules::expect(rules),
    }
}

/// Judges the probe's steps against [`expect`]: every expected step present with its outcome.
pub fn judge(want: &[(String, Outcome)], steps: &[RuleStep]) -> Verdict {
    let observed: Vec<String> = steps
        .iter()
        .map(|s| {
            let result = s.result.as_ref().map_or("not taken".to_owned(), |r| r.to_string());
            match &s.value {
                Some(v) => format!("{}: {result}, {v:?}", s.step),
                None => format!("{}: {result}", s.step),
            }
        })
        .collect();
    let mut wrong = Vec::new();
    for (name, outcome) in want {
        let got = steps.iter().find(|s| &s.step == name);
        let ok = match (outcome, got.map(|s| (&s.result, &s.value))) {
            (Outcome::Ok, Some((Some(r), _))) => r.is_ok(),
            (Outcome::Errno { errno, .. }, Some((Some(r), _))) => r.errno() == Some(*errno),
            (Outcome::NotTaken, Some((None, _))) => true,
            (Outcome::Reads { value }, Some((Some(r), Some(v)))) => r.is_ok() && v == value,
            _ => false,
        };
        if !ok {
            wrong.push(name.clone());
        }
    }
    let expected = want.iter().map(|(n, o)| format!("{n}: {}", o.text())).collect::<Vec<_>>().join(", ");
    let evidence =
        if wrong.is_empty() { "every step as expected".into() } else { format!("differs: {}", wrong.join(", ")) };
    let (expected, observed) = (expected, observed.join(", "));
    if wrong.is_empty() {
        Verdict::Pass { expected, observed, evidence }
    } else {
        Verdict::Fail { expected, observed, evidence }
    }
}

/// Whether the host's cgroup2 is mounted with nsdelegate (the super options in mountinfo; the
/// flag belongs to the one superblock, so every mount of it shows the same).
pub fn host_nsdelegate(mountinfo: &str) -> Option<bool> {
    mountinfo.lines().find_map(|l| {
        let (_, tail) = l.split_once(" - ")?;
        let mut f = tail.split_whitespace();
        (f.next()? == "cgroup2").then(|| f.nth(1).is_some_and(|opts| opts.split(',').any(|o| o == "nsdelegate")))
    })
}

/// A domain controller cgroup2 enables for isoprobe's cgroups here, if any.
pub fn domain_controller(layout: &CgroupLayout) -> Option<&'static str> {
    let (_, h) = layout.v2()?;
    DOMAIN_CONTROLLERS.into_iter().find(|c| h.delegated.iter().any(|d| d == c))
}

/// What a rule case needs here.
pub fn check(spec: &CaseSpec, limits: &LimitSpec, layout: &CgroupLayout) -> Result<(), Skip> {
    let Exercise::CgroupRules { rules, .. } = &limits.exercise else { return Ok(()) };
    if !spec.launcher.is_native() || spec.rootfs != RootfsMode::Host {
        return Err(Requirement::LauncherFeature { launcher: spec.launcher.name(), what: "cgroup-rules".into() }.skip(
            "the probe writes the case's cgroupfs files by their host paths: a native launcher on the host \
             filesystem; a tool makes its own cgroups, with no sibling of isoprobe's beside them",
        ));
    }
    let Some((_, v2)) = layout.v2().filter(|(_, h)| h.parent.is_ok()) else {
        return Err(Requirement::Host("cgroup2").skip(format!(
            "no writable cgroup2 hierarchy ({}): the rules are cgroup2's (cgroup.type, cgroup.threads, \
             cgroup.subtree_control, nsdelegate)",
            layout.describe()
        )));
    };
    let kernel = KernelRelease::running();
    if !kernel.at_least(4, 14) {
        return Err(Requirement::KernelAtLeast(4, 14).skip(format!(
            "threaded cgroups and nsdelegate appeared in Linux 4.14; this kernel is {}",
            kernel.release
        )));
    }
    let missing = |c: &str| !v2.delegated.iter().any(|d| d == c);
    match rules {
        CgroupRules::Delegation { nsdelegate } => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let host = host_nsdelegate(&mountinfo).unwrap_or(false);
            let cx = RuleNs::of(spec);
            match nsdelegate {
                Some(want) if *want != host => {
                    let (name, reason) = if *want {
                        ("nsdelegate", "without nsdelegate")
                    } else {
                        ("no-nsdelegate", "with nsdelegate: the behaviour without it cannot be seen here")
                    };
                    return Err(Requirement::Host(name).skip(format!(
                        "cgroup2 at {} is mounted {reason} (a superblock-wide option only a mount from the initial \
                         cgroup namespace changes, which isoprobe never does to the host's hierarchy)",
                        v2.mount_point.display()
                    )));
                }
                None if cx.cgroup_ns && !cx.user_ns => {
                    return Err(Requirement::Setting
                        .skip("a privileged case in a cgroup namespace must say whether it expects nsdelegate"));
                }
                _ => {}
            }
            if limits.settings.delegate && !cx.user_ns {
                return Err(Requirement::Setting.skip(
                    "delegation needs a user namespace: without one the probe is root, and owns nothing more for it",
                ));
            }
        }
        CgroupRules::InternalProcess { .. } if domain_controller(layout).is_none() => {
            return Err(Requirement::Controller("memory".into()).skip(format!(
                "no domain controller ({}) is enabled for isoprobe's cgroups on cgroup2 ({})",
                DOMAIN_CONTROLLERS.join(", "),
                layout.describe()
            )));
        }
        CgroupRules::TopDown { .. } if domain_controller(layout).is_none() => {
            return Err(Requirement::Controller("memory".into()).skip(format!(
                "no controller ({}) is enabled for isoprobe's cgroups on cgroup2 ({}): the top-down constraint is \
                 about enabling one",
                DOMAIN_CONTROLLERS.join(", "),
                layout.describe()
            )));
        }
        CgroupRules::OpenCredentials if !kernel.at_least(5, 16) => {
            return Err(Requirement::KernelAtLeast(5, 16).skip(format!(
                "a cgroup.procs write is checked with its opener's credentials since Linux 5.16 (\"cgroup: Use \
                 open-time credentials for process migration perm checks\", CVE-2021-4197; older stable kernels \
                 have it backported, which isoprobe cannot tell); this kernel is {}",
                kernel.release
            )));
        }
        CgroupRules::ThreadedControllers { threaded, domain } => {
            if let Some(c) = [threaded, domain].into_iter().find(|c| missing(c)) {
                return Err(Requirement::Controller(c.clone()).skip(format!(
                    "{c} is not a cgroup2 controller enabled for isoprobe's cgroups here ({}): the case needs the \
                     threaded {threaded} and the domain {domain} on cgroup2",
                    layout.describe()
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The host's part before the probe starts: the case's cgroup2 paths (the probe shares the host
/// filesystem: the same paths), the domain controller of an internal-process case, and the
/// delegation: the directory and `DELEGATED_FILES` of the case's cgroup chowned to the ids the
/// probe's user namespace maps its root to.
pub fn prepare(
    set: &CaseCgroups,
    spec: &CaseSpec,
    limits: &LimitSpec,
    layout: &CgroupLayout,
    exercise: &mut Exercise,
) -> Result<(), HarnessError> {
    let Exercise::CgroupRules { rules, case_dir, sibling_dir } = exercise else { return Ok(()) };
    let (main, sib) = set.v2_paths().ok_or_else(|| HarnessError::Cgroup("the case has no cgroup2 cgroup".into()))?;
    let sib = sib.ok_or_else(|| HarnessError::Cgroup("the case has no cgroup2 sibling".into()))?;
    *case_dir = main.display().to_string();
    *sibling_dir = sib.display().to_string();
    if let CgroupRules::InternalProcess { controller } | CgroupRules::TopDown { controller } = rules
        && controller.is_empty()
    {
        *controller = domain_controller(layout)
            .ok_or_else(|| HarnessError::Cgroup("no cgroup2 domain controller for isoprobe's cgroups".into()))?
            .into();
    }
    if limits.settings.delegate {
        let maps = spec.id_maps.as_ref().ok_or_else(|| {
            HarnessError::Internal("a delegated case has no user namespace map to delegate to".into())
        })?;
        let (Some(uid), Some(gid)) = (IdMaps::outside(&maps.uid, 0), IdMaps::outside(&maps.gid, 0)) else {
            return Err(HarnessError::Cgroup("the probe's root maps to no host id to delegate to".into()));
        };
        let dir = set.v2_dir().ok_or_else(|| HarnessError::Cgroup("the case has no cgroup2 cgroup".into()))?;
        let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        nix::unistd::fchown(dir.as_fd(), owner.0, owner.1).ctx(|| format!("chown {} to {uid}", main.display()))?;
        for f in DELEGATED_FILES {
            nix::unistd::fchownat(dir, f, owner.0, owner.1, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .ctx(|| format!("chown {}/{f} to {uid}", main.display()))?;
        }
    }
    Ok(())
}

/// The probe's steps of a report, for the judge.
pub fn want(rules: &CgroupRules, delegated: bool, cx: RuleNs) -> Vec<(String, Outcome)> {
    expect(rules, delegated, cx).into_iter().map(|(n, o)| (n.to_owned(), o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsdelegate_is_read_from_the_super_options() {
        let with = "35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let without = "35 24 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(host_nsdelegate(with), Some(true));
        assert_eq!(host_nsdelegate(without), Some(false));
        assert_eq!(host_nsdelegate("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    /// The delegation case's control (not delegated) is refused where the delegated case is let
    /// in, and nsdelegate changes only a privileged writer's outcome inside a cgroup namespace.
    #[test]
    fn delegation_and_its_controls_differ() {
        let rules = |ns| CgroupRules::Delegation { nsdelegate: Some(ns) };
        let user = RuleNs { user_ns: true, cgroup_ns: true };
        let get = |v: &[(&str, Outcome)], s: &str| v.iter().find(|(n, _)| *n == s).unwrap().1.clone();
        let delegated = expect(&rules(true), true, user);
        let control = expect(&rules(true), false, user);
        assert_eq!(get(&delegated, step::MKDIR_CHILD), Outcome::Ok);
        assert_eq!(get(&control, step::MKDIR_CHILD), Outcome::err(libc::EACCES, "EACCES"));
        assert_eq!(get(&control, step::ENTER_CHILD), Outcome::NotTaken);
        let root_ns = RuleNs { user_ns: false, cgroup_ns: true };
        let root = RuleNs { user_ns: false, cgroup_ns: false };
        assert_eq!(
            get(&expect(&rules(true), false, root_ns), step::LEAVE_SUBTREE),
            Outcome::err(libc::ENOENT, "ENOENT")
        );
        assert_eq!(get(&expect(&rules(false), false, root_ns), step::LEAVE_SUBTREE), Outcome::Ok);
        assert_eq!(get(&expect(&rules(true), false, root), step::ROOT_RESOURCE), Outcome::Ok);
        assert_eq!(get(&expect(&rules(true), false, root_ns), step::ROOT_RESOURCE), Outcome::err(libc::EPERM, "EPERM"));
    }
}
