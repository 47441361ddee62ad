//! util-linux unshare(1) as a launcher, and nsenter(1) as the way into its containers.
//!
//! | spec setting | unshare(1) |
//! |---|---|
//! | namespaces | `--pid --uts --mount --ipc --net --user --cgroup --time`, always with `--fork` (a new pid or time namespace only takes effect for children) and `--kill-child` (the probe dies with unshare) |
//! | uid/gid maps | `--map-root-user`: root inside onto the caller's own ids, one each; other maps need newuidmap(1) and /etc/subuid ranges, which this harness does not configure |
//! | hostname | none: the payload sets it (a user would run hostname(1) in the new uts namespace) |
//! | rootfs | the host's, or `--root` (chroot(2)); no pivot_root |
//! | /proc, /sys | `--mount-proc`; no sysfs option, so the payload mounts a new sysfs in a new mount + net namespace |
//! | time offsets | `--monotonic`, `--boottime`: whole seconds |
//! | propagation (a mount case) | `--propagation shared\|slave\|private` on the whole root (the default: private); no unbindable |
//!
//! nsenter(1) joins the running container by `--target PID` with one flag per namespace kind,
//! `--root --wd` to enter its root, and `--preserve-credentials` off (it becomes root inside).

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::{InitPlan, PropMode};

use super::tool::{ToolCell, start_tool, tool_env, wait_for_probe};
use crate::error::HarnessError;
use crate::launcher::{
    Capabilities, IdMapSupport, Launcher, OffsetSupport, Performer, StartContext, Started, ToolInfo,
};
use crate::requirement::Requirement;
use crate::spec::{CaseSpec, LauncherKind, RootfsMode, Runner};
use crate::verdict::Skip;

/// The long option of each namespace kind, shared by unshare(1) and nsenter(1).
fn ns_option(kind: NsKind) -> &'static str {
    match kind {
        NsKind::Pid => "--pid",
        NsKind::Uts => "--uts",
        NsKind::Mnt => "--mount",
        NsKind::Ipc => "--ipc",
        NsKind::Net => "--net",
        NsKind::User => "--user",
        NsKind::Cgroup => "--cgroup",
        NsKind::Time => "--time",
    }
}

/// util-linux unshare(1), and with `joiner` nsenter(1) joining its containers.
#[derive(Debug)]
pub struct UtilUnshare {
    joiner: bool,
    unshare: ToolCell,
    nsenter: ToolCell,
}

impl UtilUnshare {
    pub fn new() -> UtilUnshare {
        let kind = LauncherKind::UtilUnshare;
        UtilUnshare {
            joiner: false,
            unshare: ToolCell::new(kind, "unshare", "util-linux", &["--version"]),
            nsenter: ToolCell::new(kind, "nsenter", "util-linux", &["--version"]),
        }
    }

    /// The nsenter(1) path: containers started by unshare(1), joined by nsenter(1).
    pub fn with_nsenter() -> UtilUnshare {
        UtilUnshare { joiner: true, ..UtilUnshare::new() }
    }

    fn skip(&self, what: &str, reason: &str) -> Skip {
        Requirement::LauncherFeature { launcher: self.kind().name(), what: what.into() }.skip(reason)
    }
}

impl Default for UtilUnshare {
    fn default() -> Self {
        UtilUnshare::new()
    }
}

impl Launcher for UtilUnshare {
    fn kind(&self) -> LauncherKind {
        if self.joiner { LauncherKind::UtilNsenter } else { LauncherKind::UtilUnshare }
    }

    fn tool(&self) -> Result<Option<&ToolInfo>, Skip> {
        if self.joiner {
            self.nsenter.get()?;
        }
        self.unshare.get().map(Some)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            namespaces: NsSet::ALL,
            rootfs: vec![RootfsMode::Host, RootfsMode::Chroot],
            id_maps: IdMapSupport::OwnIdsOnly,
            hostname: Performer::Payload,
            proc: Performer::Launcher,
            sysfs: Performer::Payload,
            time_offsets: OffsetSupport::WholeSeconds,
            cgroup_limits: false,
            rootless: true,
        }
    }

    fn supports(&self, spec: &CaseSpec, _runner: Runner) -> Result<(), Skip> {
        if spec.propagation.is_some() && spec.has(NsKind::Mnt) && (spec.has(NsKind::Pid) || spec.has(NsKind::Net)) {
            return Err(self.skip(
                "mount-case-proc-sys",
                "a mount case through unshare(1) gives the whole root the case's propagation (--propagation is \
                 recursive): a /proc or /sys mounted over the host's through a shared root would reach the host",
            ));
        }
        if spec.rootfs == RootfsMode::Chroot {
            if !spec.has(NsKind::Mnt) {
                return Err(self.skip(
                    "chroot-without-mnt",
                    "unshare(1) --root without a mount namespace leaves the payload no /proc in the new root \
                     (--mount-proc implies --mount)",
                ));
            }
            if spec.has(NsKind::User) && !(spec.has(NsKind::Pid) && spec.has(NsKind::Net)) {
                return Err(self.skip(
                    "chroot-user-ns",
                    "in a chroot with a user namespace, procfs and sysfs can only be mounted for pid and network \
                     namespaces that user namespace owns, and unshare(1) binds neither from the host",
                ));
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let tool = self.unshare.for_start()?;
        let spec = ctx.spec;
        // The options unshare(1) gets: the fault plant (test builds) drops a kind's option and
        // every option that implies it (--map-root-user implies --user, --mount-proc --mount,
        // --monotonic and --boottime --time), as a wrapper that lost the flag would.
        let has = |k: NsKind| spec.has(k) && !ctx.plant.contains(k);
        let mut args: Vec<String> = vec!["--fork".into(), "--kill-child".into()];
        for kind in spec.namespaces.iter().filter(|k| has(*k)) {
            args.push(ns_option(kind).into());
        }
        if has(NsKind::User) {
            args.push("--map-root-user".into());
        }
        if has(NsKind::Mnt) {
            // A mount case's container side is the root's propagation, as unshare(1) sets it
            // (recursively); every other case's is private.
            let mode = spec.propagation.map_or(PropMode::Private, |p| p.container);
            args.extend(["--propagation".into(), mode.name().into()]);
        }
        let chroot = spec.rootfs == RootfsMode::Chroot;
        if has(NsKind::Mnt) && (has(NsKind::Pid) || chroot) {
            args.push("--mount-proc".into());
        }
        if let Some(t) = spec.time_offsets.filter(|_| has(NsKind::Time)) {
            args.extend(["--monotonic".into(), (t.monotonic_ns / 1_000_000_000).to_string()]);
            args.extend(["--boottime".into(), (t.boottime_ns / 1_000_000_000).to_string()]);
        }
        let probe = if chroot {
            args.extend(["--root".into(), ctx.case.dir.to_string_lossy().into_owned()]);
            format!("/{}", isoprobe_probes::PROBE_NAME)
        } else {
            ctx.run.probe_exe.to_string_lossy().into_owned()
        };
        args.extend(["--".into(), probe]);
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        Ok(Started { process, probe_pid, init: payload_plan(spec), teardown: None })
    }

    fn start_joiner(&self, ctx: &StartContext<'_>, container: &Started) -> Result<Started, HarnessError> {
        let tool = self.nsenter.for_start()?;
        let mut args = vec!["--target".into(), container.probe_pid.to_string()];
        // The fault plant (test builds) drops the option of a kind, as a wrapper that lost it.
        for kind in ctx.spec.namespaces.iter().filter(|k| !ctx.plant.contains(*k)) {
            args.push(ns_option(kind).into());
        }
        // An unprivileged joiner keeps its credentials: its uid already maps to root inside, and
        // nsenter's default setgroups(0) fails where the map's writer denied setgroups
        // (user_namespaces(7)), as `unshare --map-root-user` does.
        if ctx.spec.has(NsKind::User) && !ctx.plant.contains(NsKind::User) && !ctx.run.runner.is_root() {
            args.push("--preserve-credentials".into());
        }
        // Enter the container's root and working directory (nsenter forks by itself so that a new
        // pid namespace applies to the probe).
        args.extend(["--root".into(), "--wd".into(), "--".into()]);
        args.push(match ctx.spec.rootfs {
            RootfsMode::Host => ctx.run.probe_exe.to_string_lossy().into_owned(),
            _ => format!("/{}", isoprobe_probes::PROBE_NAME),
        });
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        Ok(Started { process, probe_pid, init: InitPlan::default(), teardown: None })
    }
}

/// What unshare(1) leaves to the payload: the hostname, and a new sysfs where the mount and
/// network namespaces are new (there is no sysfs option).
fn payload_plan(spec: &CaseSpec) -> InitPlan {
    let sys = spec.has(NsKind::Mnt) && (spec.has(NsKind::Net) || spec.rootfs == RootfsMode::Chroot);
    InitPlan {
        hostname: spec.hostname.clone().filter(|_| spec.has(NsKind::Uts)),
        mount_sys: sys.then(|| "/sys".to_owned()),
        ..InitPlan::default()
    }
}
