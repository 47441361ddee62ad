//! bubblewrap as a launcher: `bwrap --unshare-*`.
//!
//! | spec setting | bwrap |
//! |---|---|
//! | namespaces | `--unshare-pid --unshare-uts --unshare-ipc --unshare-net --unshare-user --unshare-cgroup`; a mount namespace always; no time namespace |
//! | uid/gid maps | `--uid 0 --gid 0`: root inside onto the caller's own ids, one each |
//! | hostname | `--hostname` |
//! | rootfs | the host's (`--bind / /`) or the case rootfs (`--bind DIR /`); bwrap always pivot_roots, so there is no plain chroot |
//! | /proc | `--proc /proc` in a new pid namespace, else the host's bound in |
//! | /sys | the host's bound in (bwrap has no sysfs option); the payload mounts a new one in a new network namespace |
//! | pid 1 | `--as-pid-1`: the probe is the namespace's init, as in every other launcher |
//! | capabilities | `--cap-add ALL` (bwrap drops all capabilities by default) |
//! | propagation (a mount case) | always slave: bwrap makes its root rslave (a documented default); an unbindable host side is a skip (see `launcher::propagation`) |
//!
//! `--die-with-parent` ties the sandbox to the harness thread that started it.

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::InitPlan;

use super::tool::{ToolCell, start_tool, tool_env, wait_for_probe};
use crate::error::HarnessError;
use crate::launcher::{
    Capabilities, Effective, IdMapSupport, Launcher, OffsetSupport, Performer, StartContext, Started, ToolInfo,
};
use crate::spec::{LauncherKind, Resolved, RootfsMode, Runner};
use crate::verdict::Skip;

#[derive(Debug)]
pub struct Bwrap {
    bwrap: ToolCell,
}

impl Bwrap {
    pub fn new() -> Bwrap {
        Bwrap { bwrap: ToolCell::new(LauncherKind::Bwrap, "bwrap", "bubblewrap", &["--version"]) }
    }
}

impl Default for Bwrap {
    fn default() -> Self {
        Bwrap::new()
    }
}

impl Launcher for Bwrap {
    fn kind(&self) -> LauncherKind {
        LauncherKind::Bwrap
    }

    fn tool(&self) -> Result<Option<&ToolInfo>, Skip> {
        self.bwrap.get().map(Some)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            namespaces: NsSet::ALL.without(NsKind::Time),
            rootfs: vec![RootfsMode::Host, RootfsMode::PivotRoot],
            id_maps: IdMapSupport::OwnIdsOnly,
            hostname: Performer::Launcher,
            proc: Performer::Launcher,
            sysfs: Performer::Payload,
            time_offsets: OffsetSupport::None,
            cgroup_limits: false,
            rootless: true,
        }
    }

    fn effective(&self, spec: &Resolved, runner: Runner) -> Effective {
        let mut e = Effective::exact(spec);
        e.force(
            NsKind::Mnt,
            "bwrap always creates a new mount namespace",
            "bwrap(1), DESCRIPTION: \"bubblewrap works by creating a new, completely empty, mount namespace\"",
        );
        if !runner.is_root() {
            e.force(
                NsKind::User,
                "bwrap creates a user namespace whenever it is not setuid root (Debian's is not)",
                "bwrap(1), DESCRIPTION: \"the user namespace is required if bwrap is not installed setuid root\"",
            );
            if e.spec.id_maps.is_none() {
                e.spec.0.id_maps = Some(crate::spec::IdMaps::range(runner.uid, runner.gid, 1));
            }
        }
        e
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let tool = self.bwrap.for_start()?;
        let spec = ctx.effective;
        let mut args: Vec<String> = ["--die-with-parent", "--cap-add", "ALL"].map(String::from).to_vec();
        let flag = |k: NsKind| match k {
            NsKind::Pid => Some("--unshare-pid"),
            NsKind::Uts => Some("--unshare-uts"),
            NsKind::Ipc => Some("--unshare-ipc"),
            NsKind::Net => Some("--unshare-net"),
            NsKind::User => Some("--unshare-user"),
            NsKind::Cgroup => Some("--unshare-cgroup"),
            NsKind::Mnt | NsKind::Time => None,
        };
        args.extend(spec.namespaces.iter().filter_map(flag).map(String::from));
        if spec.has(NsKind::User) {
            args.extend(["--uid", "0", "--gid", "0"].map(String::from));
        }
        if spec.has(NsKind::Pid) {
            args.push("--as-pid-1".into());
        }
        if let Some(h) = spec.hostname.as_ref().filter(|_| spec.has(NsKind::Uts)) {
            args.extend(["--hostname".into(), h.clone()]);
        }
        let (root, probe) = match spec.rootfs {
            RootfsMode::PivotRoot => {
                (ctx.case.dir.to_string_lossy().into_owned(), format!("/{}", isoprobe_probes::PROBE_NAME))
            }
            _ => ("/".to_owned(), ctx.run.probe_exe.to_string_lossy().into_owned()),
        };
        args.extend(["--bind".into(), root, "/".into()]);
        if spec.has(NsKind::Pid) {
            args.extend(["--proc", "/proc"].map(String::from));
        } else if spec.rootfs == RootfsMode::PivotRoot {
            args.extend(["--bind", "/proc", "/proc"].map(String::from));
        }
        if spec.rootfs == RootfsMode::PivotRoot {
            args.extend(["--bind", "/sys", "/sys"].map(String::from));
        }
        args.extend(["--".into(), probe]);
        let mut process = start_tool(ctx, &tool.path, &args, &tool_env())?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        let init = InitPlan { mount_sys: spec.has(NsKind::Net).then(|| "/sys".to_owned()), ..InitPlan::default() };
        Ok(Started { process, probe_pid, init, teardown: None })
    }
}
