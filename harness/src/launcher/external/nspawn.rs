//! systemd-nspawn as a launcher.
//!
//! | spec setting | systemd-nspawn |
//! |---|---|
//! | namespaces | pid, mnt, uts, ipc and cgroup always (documented defaults); `--private-network`; `--private-users=UID:COUNT`; no time namespace |
//! | uid/gid maps | `--private-users=UID:COUNT` (one range from 0, the same for uids and gids) with `--private-users-ownership=off` (the harness prepares the rootfs) |
//! | hostname | `--hostname` (in its always-new uts namespace it sets one anyway: the machine name, unless given) |
//! | rootfs | `-D` the case rootfs, which needs /usr; nspawn refuses the host's root |
//! | /proc, /sys | its own (always) |
//! | propagation (a mount case) | `--bind=` of the propagation mount point, no propagation option: slave of the host's peer group (see `launcher::propagation`) |
//!
//! Always: `--register=no --keep-unit` (no systemd-machined and no transient unit: this harness
//! does not assume systemd is pid 1), `--console=pipe` (stdio passes through), `--quiet`,
//! `--resolv-conf=off --timezone=off --link-journal=no` (the minimal rootfs has no /etc).
//!
//! What it leaves on the host, and this launcher removes: `payload` and `supervisor` cgroups
//! created below the cgroup it starts in (so it starts in an isoprobe cgroup of its own, in the
//! cgroup2 and the named v1 hierarchies), and `/run/systemd/nspawn/propagate/<machine>`, which it
//! refuses to remove itself when /run is not a tmpfs ("Attempted to remove disk file system").
//! Killed (a case timeout), it also leaves the container running in `payload` and its lock file
//! in /run/systemd/nspawn/locks: the teardown empties the cgroup (cgroup.kill) and removes both.
//!
//! Host state it depends on: with `--private-users` it mounts, inside the container, every v1
//! controller /proc/cgroups shows attached to a hierarchy. A controller attached only in another
//! process's private mount namespace (the cgroup-limit suite mounts net_cls that way while its
//! case runs) cannot be mounted from the container's user namespace, and nspawn then fails ("Failed
//! to mount cgroup ... net_cls: Operation not permitted; Child died too early"). Seen once in 20
//! runs while that suite ran beside this one; the suites of one `cargo test` run one at a time.

use std::path::PathBuf;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::wire::InitPlan;

use super::tool::{SharedHostDirs, ToolCell, ToolCgroup, ToolLeftovers, start_tool_in, tool_env, wait_for_probe};
use crate::error::{Context, HarnessError};
use crate::launcher::{
    Capabilities, Effective, IdMapSupport, Launcher, OffsetSupport, Performer, StartContext, Started, ToolInfo,
};
use crate::requirement::Requirement;
use crate::spec::{CaseSpec, LauncherKind, Resolved, RootfsMode, Runner};
use crate::verdict::Skip;

/// The hostname nspawn gets in its always-new uts namespace when the spec names none: it always
/// sets one (the machine name by default); this fixed one keeps the oracle's expectation exact.
pub const DEFAULT_HOSTNAME: &str = "isoprobe-nspawn";

#[derive(Debug)]
pub struct Nspawn {
    nspawn: ToolCell,
}

impl Nspawn {
    pub fn new() -> Nspawn {
        Nspawn { nspawn: ToolCell::new(LauncherKind::Nspawn, "systemd-nspawn", "systemd-container", &["--version"]) }
    }

    fn skip(&self, what: &str, reason: String) -> Skip {
        Requirement::LauncherFeature { launcher: LauncherKind::Nspawn.name(), what: what.into() }.skip(reason)
    }
}

impl Default for Nspawn {
    fn default() -> Self {
        Nspawn::new()
    }
}

const SOURCE_ALWAYS: &str = "systemd-nspawn(1), DESCRIPTION: \"fully virtualizes the file system hierarchy, as well as \
                             the process tree, the various IPC subsystems and the host and domain name\"";

static RUN_DIRS: SharedHostDirs = SharedHostDirs::new("/run/systemd/nspawn", 0o755, "isoprobe-nspawn-run-dirs-lock");

impl Launcher for Nspawn {
    fn kind(&self) -> LauncherKind {
        LauncherKind::Nspawn
    }

    fn tool(&self) -> Result<Option<&ToolInfo>, Skip> {
        self.nspawn.get().map(Some)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            namespaces: NsSet::ALL.without(NsKind::Time),
            rootfs: vec![RootfsMode::PivotRoot],
            id_maps: IdMapSupport::Any,
            hostname: Performer::Launcher,
            proc: Performer::Launcher,
            sysfs: Performer::Launcher,
            time_offsets: OffsetSupport::None,
            cgroup_limits: false,
            rootless: false,
        }
    }

    /// `--private-users` takes one range starting at container uid 0, the same for gids.
    fn supports(&self, spec: &CaseSpec, _runner: Runner) -> Result<(), Skip> {
        if let Some(m) = spec.id_maps.as_ref().filter(|_| spec.has(NsKind::User)) {
            let one = |l: &[isoprobe_probes::wire::IdMapLine]| match l {
                [only] if only.inside == 0 => Some((only.outside, only.count)),
                _ => None,
            };
            if one(&m.uid).is_none() || one(&m.uid) != one(&m.gid) {
                return Err(self.skip(
                    "id-map",
                    "systemd-nspawn --private-users=UID:COUNT maps one range from container id 0, the same for uids \
                     and gids"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    fn effective(&self, spec: &Resolved, _runner: Runner) -> Effective {
        let mut e = Effective::exact(spec);
        e.force(NsKind::Pid, "systemd-nspawn always creates a pid namespace", SOURCE_ALWAYS);
        e.force(NsKind::Mnt, "systemd-nspawn always creates a mount namespace", SOURCE_ALWAYS);
        e.force(NsKind::Ipc, "systemd-nspawn always creates an ipc namespace", SOURCE_ALWAYS);
        // Switching it off (SYSTEMD_NSPAWN_USE_CGNS=0) makes nspawn mount the v1 hierarchies itself,
        // which fails on a host whose /proc/cgroups lists unmounted controllers ("Failed to read
        // link /sys/fs/cgroup/net_cls: No such file or directory" here).
        e.force(
            NsKind::Cgroup,
            "systemd-nspawn creates a cgroup namespace whenever the kernel supports one",
            "systemd docs/ENVIRONMENT.md: \"$SYSTEMD_NSPAWN_USE_CGNS=0 — if set, do not use cgroup namespacing, even \
             if it is available\"",
        );
        if !spec.has(NsKind::Uts) {
            e.force(
                NsKind::Uts,
                &format!("systemd-nspawn always creates a uts namespace and sets a hostname (here {DEFAULT_HOSTNAME})"),
                "systemd-nspawn(1), --hostname=: \"...If this option is not used, the container's hostname is set to \
                 the machine name\"",
            );
            e.spec.0.hostname = Some(DEFAULT_HOSTNAME.into());
        }
        e
    }

    fn start(&self, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
        let tool = self.nspawn.for_start()?;
        let spec = ctx.effective;
        let machine = format!("isoprobe-{}-{}", ctx.run.run_token, ctx.case.id);
        let mut args: Vec<String> = [
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--console=pipe",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--machine={machine}"));
        args.push(format!("--directory={}", ctx.case.dir.display()));
        if spec.has(NsKind::Net) {
            args.push("--private-network".into());
        }
        if spec.has(NsKind::User)
            && let Some(m) = &spec.id_maps
            && let [only] = m.uid.as_slice()
        {
            args.push(format!("--private-users={}:{}", only.outside, only.count));
            args.push("--private-users-ownership=off".into());
        }
        if let Some(h) = &spec.hostname {
            args.push(format!("--hostname={h}"));
        }
        // A mount case: the propagation mount point bound over the copy the container's root
        // brought in; --bind takes no propagation option (see `launcher::propagation`).
        if spec.propagation.is_some() {
            let prop = crate::mount_case::PROP;
            args.push(format!("--bind={}:/{prop}", ctx.case.dir.join(prop).display()));
        }
        args.extend(["--".into(), format!("/{}", isoprobe_probes::PROBE_NAME)]);
        let env = tool_env();
        let propagate = PathBuf::from("/run/systemd/nspawn/propagate").join(&machine);
        // nspawn's lock on the container directory, which it leaves when it is killed while the
        // container runs (systemd: lock_image() takes /run/systemd/nspawn/locks/inode-DEV:INO).
        let st = nix::sys::stat::stat(&ctx.case.dir).ctx(|| format!("stat {}", ctx.case.dir.display()))?;
        let lock = PathBuf::from(format!("/run/systemd/nspawn/locks/inode-{}:{}", st.st_dev, st.st_ino));
        let shared: Vec<PathBuf> =
            ["/run/systemd/nspawn/propagate", "/run/systemd/nspawn/locks"].iter().map(PathBuf::from).collect();
        let cgroup_name = format!("{machine}-nspawn");
        let mut tool_leftovers = ToolLeftovers::new(None);
        tool_leftovers.cgroups.push(cgroup_name.clone());
        tool_leftovers.host_dirs = Some(RUN_DIRS.enter(shared, vec![propagate], vec![lock], ctx.deadline)?);
        let leftovers = tool_leftovers;
        let cgroup = ToolCgroup::create(cgroup_name)?;
        let mut process = start_tool_in(ctx, Some(&cgroup), &tool.path, &args, &env)?;
        let probe_pid = wait_for_probe(&mut process, ctx.deadline)?;
        Ok(Started { process, probe_pid, init: InitPlan::default(), teardown: Some(Box::new(leftovers)) })
    }
}
