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
//! Every step is recorded as a line in [`crate::wire::Fact::Init`].

use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode as FileMode;
use nix::unistd::{chdir, chroot, execve, pivot_root, sethostname};

use crate::wire::{InitPlan, RootPlan, TimeOffsets};

use super::error::{Context, ProbeError};

/// Set in the environment of the re-executed probe: the hello it already read (stdin has moved on).
pub const HELLO_ENV: &str = "ISOPROBE_HELLO";

/// The directories observations read through, opened before the root change.
#[derive(Debug)]
pub struct Dirs {
    pub proc: OwnedFd,
    /// None when the probe's view has no /sys/class/net (the reason is in the init steps).
    pub sys_net: Option<OwnedFd>,
}

/// Step 1. If the plan asks for time offsets, unshares the time namespace, writes the offsets and
/// re-executes the probe, which then runs in the new namespace with `HELLO_ENV` set. Returns only
/// when there is nothing to do.
pub fn enter_time_namespace(plan: &InitPlan, hello_line: &str) -> Result<(), ProbeError> {
    let Some(offsets) = plan.time_offsets else { return Ok(()) };
    if std::env::var_os(HELLO_ENV).is_some() {
        return Ok(()); // this is the re-executed probe: already inside
    }
    unshare(CloneFlags::from_bits_retain(crate::ns::CLONE_NEWTIME)).ctx(|| "unshare(CLONE_NEWTIME)".into())?;
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

/// Writes /proc/self/timens_offsets (see time_namespaces(7)): `<clock> <secs> <nanosecs>` per
/// line, nanoseconds in 0..1e9 even for a negative offset.
pub fn write_time_offsets(offsets: TimeOffsets) -> Result<(), ProbeError> {
    let line =
        |name: &str, ns: i64| format!("{name} {} {}\n", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let text = line("monotonic", offsets.monotonic_ns) + &line("boottime", offsets.boottime_ns);
    fs::write("/proc/self/timens_offsets", text).ctx(|| "write /proc/self/timens_offsets".into())
}

/// Steps 2 to 5.
pub fn run(plan: &InitPlan, steps: &mut Vec<String>) -> Result<Dirs, ProbeError> {
    if plan.time_offsets.is_some() {
        steps.push("entered a new time namespace with offsets (unshare, timens_offsets, execve)".into());
    }
    if let Some(name) = &plan.hostname {
        sethostname(name).ctx(|| format!("sethostname({name:?})"))?;
        steps.push(format!("sethostname {name}"));
    }
    if plan.private_mounts {
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .ctx(|| "make / recursively private".into())?;
        steps.push("made / rprivate".into());
    }
    if let RootPlan::PivotRoot { new_root, .. } = &plan.root {
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
    if let Some(target) = &plan.mount_proc {
        mount_or_bind("proc", "/proc", target, steps)?;
    }
    if let Some(target) = &plan.mount_sys {
        mount_or_bind("sysfs", "/sys", target, steps)?;
    }

    let proc_path = plan.mount_proc.as_deref().unwrap_or("/proc");
    let proc = open(proc_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty())
        .ctx(|| format!("open {proc_path}"))?;
    let sys_net_path = format!("{}/class/net", plan.mount_sys.as_deref().unwrap_or("/sys"));
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
        RootPlan::PivotRoot { new_root, put_old } => {
            chdir(new_root.as_str()).ctx(|| format!("chdir {new_root}"))?;
            pivot_root(".", put_old.as_str()).ctx(|| format!("pivot_root(., {put_old})"))?;
            chdir("/").ctx(|| "chdir / after pivot_root".into())?;
            let old = format!("/{}", put_old.trim_start_matches('/'));
            umount2(old.as_str(), MntFlags::MNT_DETACH).ctx(|| format!("detach the old root at {old}"))?;
            let left = fs::read_dir(&old).map(|d| d.count()).ctx(|| format!("list {old}"))?;
            steps.push(format!("pivot_root into {new_root}, old root detached ({old} now has {left} entries)"));
        }
        RootPlan::Chroot { new_root } => {
            chdir(new_root.as_str()).ctx(|| format!("chdir {new_root}"))?;
            chroot(".").ctx(|| format!("chroot {new_root}"))?;
            chdir("/").ctx(|| "chdir / after chroot".into())?;
            steps.push(format!("chroot into {new_root}"));
        }
    }
    Ok(Dirs { proc, sys_net })
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
