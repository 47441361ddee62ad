//! The init step: what needs a fresh single-threaded process inside the new namespaces, in the
//! order a container runtime does it.
//!
//! 1. time offsets (before anything else: they can only be written before a process enters the
//!    new time namespace, so the probe unshares it, writes them and re-executes itself into it);
//! 2. hostname;
//! 3. mounts: make everything private, bind the new root onto itself, mount procfs and sysfs;
//! 4. open /proc and /sys/class/net (so that observations still reach them when the root change
//!    leaves neither behind, e.g. a chroot in the host's mount namespace);
//! 5. root change: pivot_root and detach the old root, or chroot.
//!
//! Every step that changes a namespace's state first asks the [`Interlock`]: in a namespace that
//! is the harness's it is refused and recorded (the hostname stays the host's, nothing is
//! mounted, and a pivot_root becomes a chroot into the same new root, which changes only the
//! probe's own root). Every step is recorded as a line in [`crate::wire::Fact::Init`].

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, readlinkat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode as FileMode;
use nix::unistd::{chdir, chroot, execve, pivot_root, sethostname};

use crate::fault;
use crate::ns::NsKind;
use crate::wire::{InitPlan, Refusal, RootPlan, TimeOffsets};

use super::error::{Context, ProbeError};
use super::interlock::Interlock;

/// Set in the environment of the re-executed probe: the hello it already read (stdin has moved on).
pub const HELLO_ENV: &str = "ISOPROBE_HELLO";

/// Set (to `1`) by a launcher that made the probe's time namespace with its clone and wrote the
/// offsets before the probe's exec, which moved the probe in (the harness's clone3 path): the
/// probe records that step instead of making it, and refuses it in the launcher's place where its
/// time namespace is the harness's (the launcher's own interlock then wrote nothing).
pub const LAUNCHER_TIME_ENV: &str = "ISOPROBE_TIME_BY_LAUNCHER";

/// The step a launcher took for the probe under [`LAUNCHER_TIME_ENV`], as a refusal names it.
const LAUNCHER_TIME_STEP: &str = "writing the time offsets before the exec (the launcher)";

/// Set by a joiner in its observe child's environment: a descriptor of the harness-side /proc,
/// opened before any setns, through which the child reads its own /proc/self/* when the /proc
/// in its view belongs to a pid namespace it is not in (a joiner that did not join the pid
/// namespace).
pub const SELF_PROC_FD_ENV: &str = "ISOPROBE_SELF_PROC_FD";

/// The directories observations read through, opened before the root change.
#[derive(Debug)]
pub struct Dirs {
    /// The probe's view of /proc (what a program in the container sees).
    pub proc: OwnedFd,
    /// Where /proc/self resolves to this probe: `proc` itself, or the harness-side /proc a
    /// joiner passed down (see [`SELF_PROC_FD_ENV`]); `proc_foreign` says which.
    pub self_proc: OwnedFd,
    /// `proc` has no `self` for this probe: it belongs to a pid namespace the probe is not in.
    pub proc_foreign: bool,
    /// None when the probe's view has no /sys/class/net (the reason is in the init steps).
    pub sys_net: Option<OwnedFd>,
}

/// Step 1. If the plan asks for time offsets, unshares the time namespace, writes the offsets and
/// re-executes the probe, which then runs in the new namespace with `HELLO_ENV` set. Returns only
/// when there is nothing to do, or when the interlock refused to write the offsets (the refusal).
/// Under [`LAUNCHER_TIME_ENV`] the launcher took the step: only the interlock's check is made.
pub fn enter_time_namespace(
    plan: &InitPlan,
    hello_line: &str,
    interlock: &Interlock,
) -> Result<Option<Refusal>, ProbeError> {
    if by_launcher() {
        return Ok(interlock.permit(NsKind::Time, LAUNCHER_TIME_STEP, None).err());
    }
    let Some(offsets) = plan.time_offsets else { return Ok(None) };
    if std::env::var_os(HELLO_ENV).is_some() {
        return Ok(None); // this is the re-executed probe: already inside
    }
    let flags = fault::plant(NsKind::Time.clone_flag());
    unshare(CloneFlags::from_bits_retain(flags as i32)).ctx(|| "unshare(CLONE_NEWTIME)".into())?;
    if let Err(refusal) = interlock.permit(NsKind::Time, "writing /proc/self/timens_offsets", None) {
        return Ok(Some(refusal));
    }
    write_time_offsets(offsets)?;
    // execve switches a process into its time_for_children namespace (Linux 6.2 and later), so the
    // probe stays the same process: pid 1 of a new pid namespace remains pid 1.
    let exe = CString::new("/proc/self/exe").expect("no NUL");
    let args: Vec<CString> =
        std::env::args_os().map(|a| CString::new(a.as_bytes()).expect("argv has no NUL")).collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != HELLO_ENV)
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("environment has no NUL")
        })
        .collect();
    env.push(
        CString::new(format!("{HELLO_ENV}={hello_line}")).map_err(|_| ProbeError::Protocol("NUL in hello".into()))?,
    );
    let err = execve(&exe, &args, &env).unwrap_err();
    Err(ProbeError::Sys { what: "re-execute into the new time namespace".into(), source: err })
}

/// Whether the launcher took the time namespace step ([`LAUNCHER_TIME_ENV`]).
fn by_launcher() -> bool {
    std::env::var_os(LAUNCHER_TIME_ENV).is_some()
}

/// Writes /proc/self/timens_offsets (see time_namespaces(7)).
pub fn write_time_offsets(offsets: TimeOffsets) -> Result<(), ProbeError> {
    fs::write("/proc/self/timens_offsets", offsets.to_proc_text()).ctx(|| "write /proc/self/timens_offsets".into())
}

/// Steps 2 to 5. Refused steps go to `refused` (and a line to `steps`).
pub fn run(
    plan: &InitPlan,
    interlock: &Interlock,
    steps: &mut Vec<String>,
    refused: &mut Vec<Refusal>,
) -> Result<Dirs, ProbeError> {
    if plan.time_offsets.is_some() && std::env::var_os(HELLO_ENV).is_some() {
        steps.push("entered a new time namespace with offsets (unshare, timens_offsets, execve)".into());
    } else if by_launcher() && !refused.iter().any(|r| r.kind == NsKind::Time) {
        steps.push(
            "entered a new time namespace with offsets (the launcher's clone3 and timens_offsets, execve)".into(),
        );
    }
    let mut refuse = |r: Refusal, steps: &mut Vec<String>| {
        steps.push(format!("refused by the interlock: {r}"));
        refused.push(r);
    };
    if let Some(name) = &plan.hostname {
        match interlock.permit(NsKind::Uts, &format!("sethostname({name:?})"), None) {
            Ok(()) => {
                sethostname(name).ctx(|| format!("sethostname({name:?})"))?;
                steps.push(format!("sethostname {name}"));
            }
            Err(r) => refuse(r, steps),
        }
    }
    if plan.unshare_cgroup {
        // After the harness attached the probe: the new namespace is rooted at its cgroups.
        let flags = fault::plant(NsKind::Cgroup.clone_flag());
        unshare(CloneFlags::from_bits_retain(flags as i32)).ctx(|| "unshare(CLONE_NEWCGROUP)".into())?;
        steps.push("unshared the cgroup namespace after the cgroup attach".into());
    }
    // Every mount below, and pivot_root, changes the mount namespace: one check for all of them.
    let wants_mounts = plan.private_mounts
        || matches!(plan.root, RootPlan::PivotRoot { .. })
        || plan.mount_proc.is_some()
        || plan.mount_sys.is_some();
    let may_mount = !wants_mounts
        || match interlock.permit(NsKind::Mnt, "mount and pivot_root steps", None) {
            Ok(()) => true,
            Err(r) => {
                refuse(r, steps);
                false
            }
        };
    if may_mount && plan.private_mounts {
        match &plan.propagation {
            // A mount case: the copy of the host's propagation mount point keeps its relation.
            Some(p) => super::mounts::private_but(p, steps)?,
            None => {
                mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                    .ctx(|| "make / recursively private".into())?;
                steps.push("made / rprivate".into());
            }
        }
    }
    if may_mount && let RootPlan::PivotRoot { new_root, .. } = &plan.root {
        // pivot_root(2) needs the new root to be a mount point.
        mount(
            Some(new_root.as_str()),
            new_root.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {new_root} onto itself"))?;
        steps.push(format!("bound {new_root} onto itself"));
    }
    let mount_proc = plan.mount_proc.as_deref().filter(|_| may_mount);
    let mount_sys = plan.mount_sys.as_deref().filter(|_| may_mount);
    if let Some(target) = mount_proc {
        mount_or_bind("proc", "/proc", target, steps)?;
    }
    if let Some(target) = mount_sys {
        mount_or_bind("sysfs", "/sys", target, steps)?;
    }

    let proc_path = mount_proc.unwrap_or("/proc");
    let proc = open(proc_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty())
        .ctx(|| format!("open {proc_path}"))?;
    let (self_proc, proc_foreign) = self_proc(&proc, steps)?;
    let sys_net_path = format!("{}/class/net", mount_sys.unwrap_or("/sys"));
    let sys_net =
        match open(sys_net_path.as_str(), OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty()) {
            Ok(fd) => Some(fd),
            Err(e) => {
                steps.push(format!("no {sys_net_path}: {e}"));
                None
            }
        };

    match &plan.root {
        RootPlan::Keep => {}
        RootPlan::PivotRoot { new_root, put_old } if may_mount => {
            chdir(new_root.as_str()).ctx(|| format!("chdir {new_root}"))?;
            pivot_root(".", put_old.as_str()).ctx(|| format!("pivot_root(., {put_old})"))?;
            chdir("/").ctx(|| "chdir / after pivot_root".into())?;
            let old = format!("/{}", put_old.trim_start_matches('/'));
            umount2(old.as_str(), MntFlags::MNT_DETACH).ctx(|| format!("detach the old root at {old}"))?;
            let left = fs::read_dir(&old).map(|d| d.count()).ctx(|| format!("list {old}"))?;
            steps.push(format!("pivot_root into {new_root}, old root detached ({old} now has {left} entries)"));
        }
        // The pivot was refused: the probe still enters the new root, so that every path the
        // hello gives means what it should, but by a chroot, which leaves the mount tree alone.
        RootPlan::PivotRoot { new_root, .. } | RootPlan::Chroot { new_root } => {
            chdir(new_root.as_str()).ctx(|| format!("chdir {new_root}"))?;
            chroot(".").ctx(|| format!("chroot {new_root}"))?;
            chdir("/").ctx(|| "chdir / after chroot".into())?;
            match &plan.root {
                RootPlan::PivotRoot { .. } => steps.push(format!("chroot into {new_root} instead of pivot_root")),
                _ => steps.push(format!("chroot into {new_root}")),
            }
        }
    }
    Ok(Dirs { proc, self_proc, proc_foreign, sys_net })
}

/// Where this probe's /proc/self is: `proc` when its `self` resolves, else the harness-side /proc
/// a joiner passed down (the step line says so); `true` when `proc` is foreign.
fn self_proc(proc: &OwnedFd, steps: &mut Vec<String>) -> Result<(OwnedFd, bool), ProbeError> {
    // The joiner put this descriptor number in our environment for us alone.
    let passed = std::env::var(SELF_PROC_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok());
    let passed = passed.and_then(|fd| crate::sys::inherited_fd(fd).ok());
    match readlinkat(proc.as_fd(), "self") {
        Ok(_) => Ok((proc.try_clone().ctx(|| "duplicate the /proc descriptor".into())?, false)),
        Err(Errno::ENOENT) => match passed {
            Some(fd) => {
                steps.push(
                    "the /proc in view has no `self` for this probe (it belongs to a pid namespace the probe is \
                     not in): the probe's own /proc/self/* is read through the /proc its joiner opened before setns"
                        .into(),
                );
                Ok((fd, true))
            }
            None => Err(ProbeError::Protocol(
                "the /proc in view has no `self` for this probe (it belongs to a pid namespace the probe is not in)"
                    .into(),
            )),
        },
        Err(e) => Err(ProbeError::Sys { what: "readlink /proc/self".into(), source: e }),
    }
}

/// Mounts a new instance of `fstype` on `target`; when the kernel refuses one (EPERM: a user
/// namespace that does not own the pid or network namespace), binds the existing `fallback`
/// instead, as rootless runtimes do. The step line says which happened.
fn mount_or_bind(fstype: &str, fallback: &str, target: &str, steps: &mut Vec<String>) -> Result<(), ProbeError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some(fstype), target, Some(fstype), flags, None::<&str>) {
        Ok(()) => {
            steps.push(format!("mounted a new {fstype} on {target}"));
            Ok(())
        }
        Err(e @ (Errno::EPERM | Errno::EACCES)) => {
            mount(Some(fallback), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .ctx(|| format!("bind {fallback} on {target} after a new {fstype} was refused ({e})"))?;
            steps.push(format!("bound the existing {fallback} on {target} (a new {fstype} was refused: {e})"));
            Ok(())
        }
        Err(e) => Err(ProbeError::Sys { what: format!("mount {fstype} on {target}"), source: e }),
    }
}
