//! Skips are data: a [`Requirement`] a case needs, checked against this machine and user, with a
//! precise reason when it is not met. `ISOPROBE_EXPECT` lists requirements the machine is known to
//! meet, turning their skips into failures so that CI cannot quietly skip everything.

use std::fmt;
use std::fs;

use isoprobe_probes::ns::{NsKind, NsSet};

use crate::spec::{CaseSpec, IdMaps, RootfsMode, Runner};
use crate::verdict::Skip;

/// Something a case or a check needs from the machine, the user running it, or its launcher. The
/// one vocabulary of skips: every skip is made from one of these ([`Requirement::skip`]), and its
/// name (what reports show and `ISOPROBE_EXPECT` lists) is rendered in [`Requirement::name`] alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Requirement {
    /// euid 0 (CAP_SYS_ADMIN and friends in the initial user namespace): `root`.
    Root,
    /// Unprivileged processes may create user namespaces: `userns`.
    UnprivilegedUserNs,
    /// A capability the harness itself holds in the initial user namespace (root may run with a
    /// reduced bounding set): `cap:<name>`, e.g. `cap:sys_resource`.
    Capability(&'static str),
    /// The kernel has this namespace type: `ns-<kind>`.
    Namespace(NsKind),
    /// The host has a /proc/self/ns entry of this kind to compare with: `kernel:<kind>-namespace`.
    HostNamespace(NsKind),
    /// The running kernel is at least this version (major, minor): `linux-<major>.<minor>`.
    KernelAtLeast(u32, u32),
    /// A command outside the Rust toolchain: `tool:<command>`.
    Tool(String),
    /// Something a launcher cannot express or do here: `launcher:<launcher>:<what>`.
    LauncherFeature { launcher: &'static str, what: String },
    /// The launcher applies cgroup limits at all: `launcher`.
    LimitLauncher,
    /// A cgroup controller usable here: `cgroup:<controller>`.
    Controller(String),
    /// A limit setting the v2→v1 table knows: `setting`.
    Setting,
    /// A host resource or property a case needs (`swap`, `numa`, `hugepages`, `not-tcg`,
    /// `net_prio-observer`): its own name.
    Host(&'static str),
    /// A property of the host without which a check's two outcomes look the same
    /// (`cgroup:distinct-path`, `net:host-link`): its own name.
    Distinguishable(&'static str),
}

impl Requirement {
    /// The name used in skips, reports and `ISOPROBE_EXPECT`.
    pub fn name(&self) -> String {
        match self {
            Requirement::Root => "root".into(),
            Requirement::UnprivilegedUserNs => "userns".into(),
            Requirement::Capability(name) => format!("cap:{name}"),
            Requirement::Namespace(k) => format!("ns-{k}"),
            Requirement::HostNamespace(k) => format!("kernel:{k}-namespace"),
            Requirement::KernelAtLeast(major, minor) => format!("linux-{major}.{minor}"),
            Requirement::Tool(command) => format!("tool:{command}"),
            Requirement::LauncherFeature { launcher, what } => format!("launcher:{launcher}:{what}"),
            Requirement::LimitLauncher => "launcher".into(),
            Requirement::Controller(c) => format!("cgroup:{c}"),
            Requirement::Setting => "setting".into(),
            Requirement::Host(name) | Requirement::Distinguishable(name) => (*name).into(),
        }
    }

    /// The skip of a case or check that lacks this requirement, for `reason`.
    pub fn skip(&self, reason: impl Into<String>) -> Skip {
        Skip { requirement: self.name(), reason: reason.into() }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The first kernel whose execve switches a process into its time_for_children namespace
/// (commit 2b5f9dad32ed, "fs/exec: switch timens when a task gets a new mm"). Before, a process
/// enters a new time namespace only at the fork that makes it.
pub const EXEC_ENTERS_TIME_NS: (u32, u32) = (6, 2);

/// The running kernel's release (`uname -r`) and the version it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRelease {
    pub release: String,
    /// major.minor, `None` when the release does not start with one.
    pub version: Option<(u32, u32)>,
}

impl KernelRelease {
    pub fn running() -> KernelRelease {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("<uname failed: {e}>"));
        KernelRelease::parse(&release)
    }

    /// `6.1.0-28-cloud-amd64` → 6.1.
    pub fn parse(release: &str) -> KernelRelease {
        KernelRelease { release: release.to_owned(), version: isoprobe_probes::sysctl::kernel_version(release) }
    }

    /// Whether an execve moves a process into the time namespace made for its children
    /// ([`EXEC_ENTERS_TIME_NS`]): a probe given time offsets before its exec runs with them.
    pub fn exec_enters_time_namespace(&self) -> bool {
        self.at_least(EXEC_ENTERS_TIME_NS.0, EXEC_ENTERS_TIME_NS.1)
    }

    /// Whether this kernel is at least `major.minor`; an unreadable version is taken to be new
    /// enough (a failure then shows what is missing, where a skip would hide it).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version.is_none_or(|v| v >= (major, minor))
    }
}

/// Whether `runner` can run `spec` on a kernel with namespace kinds `supported`.
pub fn check_case(spec: &CaseSpec, runner: Runner, supported: NsSet, kernel: &KernelRelease) -> Result<(), Skip> {
    for k in spec.namespaces.iter() {
        if !supported.contains(k) {
            return Err(Requirement::Namespace(k)
                .skip(format!("this kernel has no {k} namespaces (/proc/self/ns/{k} is missing)")));
        }
    }
    // A time namespace with offsets is entered at an execve (the probe's re-execution, or its first
    // exec after the launcher wrote them). Before that kernel, the probe stays in the host's time
    // namespace.
    if crate::launcher::native::time_entered_by_exec(spec) && !kernel.exec_enters_time_namespace() {
        let (major, minor) = EXEC_ENTERS_TIME_NS;
        return Err(Requirement::KernelAtLeast(major, minor).skip(format!(
            "the probe enters its time namespace at an execve, which switches to time_for_children only since \
             Linux {major}.{minor} (\"fs/exec: switch timens when a task gets a new mm\"); this kernel is {}",
            kernel.release
        )));
    }
    if runner.is_root() {
        return Ok(());
    }
    if spec.propagation.is_some() {
        return Err(Requirement::Root.skip(
            "a mount case makes its host side (the case directory, the propagation and locked mount points) in the \
             host's mount namespace, which takes CAP_SYS_ADMIN there",
        ));
    }
    let others = spec.namespaces.without(NsKind::User);
    if !spec.has(NsKind::User) {
        if !others.is_empty() {
            return Err(Requirement::Root.skip(format!(
                "creating {others} namespaces without a user namespace needs CAP_SYS_ADMIN in the initial user namespace"
            )));
        }
        if spec.rootfs == RootfsMode::Chroot {
            return Err(Requirement::Root
                .skip("chroot without a user namespace needs CAP_SYS_CHROOT in the initial user namespace"));
        }
        return Ok(());
    }
    if let Some(reason) = unprivileged_userns_blocked() {
        return Err(Requirement::UnprivilegedUserNs.skip(reason));
    }
    if let Some(maps) = &spec.id_maps {
        let own = IdMaps::range(runner.uid, runner.gid, 1);
        if *maps != own {
            return Err(Requirement::Root.skip("an unprivileged process may only map its own uid and gid, one id each"));
        }
    }
    Ok(())
}

/// Why unprivileged user namespaces are unavailable, if they are.
pub fn unprivileged_userns_blocked() -> Option<String> {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("kernel.unprivileged_userns_clone is 0 (Debian's switch for unprivileged user namespaces)".into());
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user.max_user_namespaces is 0".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some(
            "kernel.apparmor_restrict_unprivileged_userns is 1 (AppArmor confines unprivileged user namespaces)".into(),
        );
    }
    None
}

/// The requirements `ISOPROBE_EXPECT` (comma-separated names, e.g. `root,userns`) says this
/// machine meets.
pub fn expected_from_env() -> Vec<String> {
    std::env::var("ISOPROBE_EXPECT")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Runner = Runner { uid: 1000, gid: 1000 };

    fn kernel(release: &str) -> KernelRelease {
        KernelRelease::parse(release)
    }

    #[test]
    fn rootless_skips_namespaces_without_a_user_namespace_with_the_reason() {
        let s = CaseSpec::new("pid+net".parse().unwrap());
        let skip = check_case(&s, USER, NsSet::ALL, &kernel("6.12.0")).unwrap_err();
        assert_eq!(skip.requirement, "root");
        assert!(skip.reason.contains("pid+net"), "{}", skip.reason);
    }

    #[test]
    fn rootless_runs_with_a_user_namespace() {
        let s = CaseSpec::new("pid+net+user".parse().unwrap());
        if unprivileged_userns_blocked().is_none() {
            assert_eq!(check_case(&s, USER, NsSet::ALL, &kernel("6.12.0")), Ok(()));
        }
    }

    #[test]
    fn a_missing_kind_is_named() {
        let s = CaseSpec::new("time".parse().unwrap());
        let skip =
            check_case(&s, Runner { uid: 0, gid: 0 }, NsSet::ALL.without(NsKind::Time), &kernel("6.12.0")).unwrap_err();
        assert_eq!(skip.requirement, "ns-time");
    }

    #[test]
    fn time_offsets_entered_by_execve_need_linux_6_2() {
        use crate::spec::LauncherKind;
        use isoprobe_probes::wire::TimeOffsets;
        let root = Runner { uid: 0, gid: 0 };
        let mut s = CaseSpec::new("pid+time".parse().unwrap());
        s.launcher = LauncherKind::Clone;
        s.time_offsets = Some(TimeOffsets { monotonic_ns: 1, boottime_ns: 1 });
        let skip = check_case(&s, root, NsSet::ALL, &kernel("6.1.0-28-cloud-amd64")).unwrap_err();
        assert_eq!(skip.requirement, "linux-6.2");
        assert!(skip.reason.contains("6.1.0-28-cloud-amd64"), "{}", skip.reason);
        assert_eq!(check_case(&s, root, NsSet::ALL, &kernel("6.2.0")), Ok(()));
        // clone3: the launcher writes the offsets, the probe's first exec enters the namespace.
        s.launcher = LauncherKind::Clone3;
        assert_eq!(check_case(&s, root, NsSet::ALL, &kernel("6.1.0")).unwrap_err().requirement, "linux-6.2");
        // Without offsets the clone3 child is in its namespace from the clone on.
        let zero = CaseSpec { time_offsets: Some(TimeOffsets::default()), ..s.clone() };
        assert_eq!(check_case(&zero, root, NsSet::ALL, &kernel("6.1.0")), Ok(()));
        // The unshare launcher writes the offsets and forks: no execve involved.
        s.launcher = LauncherKind::Unshare;
        assert_eq!(check_case(&s, root, NsSet::ALL, &kernel("6.1.0")), Ok(()));
        assert_eq!(kernel("6.12.117+deb12-cloud-amd64").version, Some((6, 12)));
        assert!(kernel("weird").at_least(99, 0));
    }
}
