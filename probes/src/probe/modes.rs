//! The three probe modes and their entry point.

use std::ffi::{CString, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode as FileMode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Gid, Uid, chdir, chroot, fchdir, fexecve, read, setgroups, setresgid, setresuid, write};

use crate::fault;
use crate::ns::{NsKind, NsSet};
use crate::sys;
use crate::wire::{self, Fact, FromProbe, NsId, Refusal, TimeOffsets, ToProbe, WIRE_VERSION};

use super::args::{JoinVia, Mode, PROBE_NAME};
use super::channel::{Channel, read_line_unbuffered, send};
use super::error::{Context, ProbeError};
use super::init::{self, HELLO_ENV, SELF_PROC_FD_ENV};
use super::interlock::Interlock;
use super::observe::Observer;

/// Set by the unsharer in its observe child's environment: the steps its interlock refused, as
/// JSON, for the child's init report.
const UNSHARER_REFUSED_ENV: &str = "ISOPROBE_UNSHARER_REFUSED";

/// Runs the probe with `args` (without `argv[0]`); returns the exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    crate::sys::one_malloc_arena();
    let mode = match Mode::parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{PROBE_NAME}: {e}");
            return 2;
        }
    };
    let r = match mode {
        Mode::Observe => observe_main(),
        Mode::Unshare { kinds, sync_fd, time_offsets } => unshare_main(kinds, sync_fd, time_offsets),
        Mode::Join { target, via, kinds } => join_main(target, via, kinds),
        Mode::Hold { .. } => hold_main(),
        Mode::Exit => Ok(0),
    };
    r.unwrap_or_else(|e| {
        eprintln!("{PROBE_NAME}: {e}");
        1
    })
}

/// Observe mode: hello, init, facts, done (and hold if asked).
fn observe_main() -> Result<i32, ProbeError> {
    let hello_line = match std::env::var(HELLO_ENV) {
        Ok(line) => line,
        Err(_) => read_line_unbuffered()
            .ctx(|| "read the hello".into())?
            .ok_or_else(|| ProbeError::Protocol("stdin closed before the hello".into()))?,
    };
    let case = match wire::decode::<ToProbe>("harness message", 1, &hello_line) {
        Ok(ToProbe::Hello { version, case }) if version == WIRE_VERSION => *case,
        Ok(ToProbe::Hello { version, .. }) => {
            return fatal("hello", format!("wire version {version}, this probe speaks {WIRE_VERSION}"));
        }
        Ok(other) => return fatal("hello", format!("expected a hello, got {other:?}")),
        Err(e) => return fatal("hello", e.to_string()),
    };

    let interlock = Interlock::new(&case.harness_ns);
    let mut steps = Vec::new();
    // Refusals of the unsharer that made this probe's namespaces (see `unshare_main`).
    let mut refused: Vec<Refusal> =
        std::env::var(UNSHARER_REFUSED_ENV).ok().and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
    for r in &refused {
        steps.push(format!("refused by the interlock (in the unsharer): {r}"));
    }
    let dirs = match init::enter_time_namespace(&case.init, &hello_line, &interlock).and_then(|r| {
        if let Some(r) = r {
            steps.push(format!("refused by the interlock: {r}"));
            refused.push(r);
        }
        init::run(&case.init, &interlock, &mut steps, &mut refused)
    }) {
        Ok(d) => d,
        Err(e) => {
            let done = if steps.is_empty() { String::new() } else { format!(" (after: {})", steps.join("; ")) };
            return fatal("init", format!("{e}{done}"));
        }
    };

    let mut ch = Channel::new(1);
    ch.fact(Fact::Init { steps, refused })?;
    // The init report at once: the harness times the init phase by it, and an exercise may end
    // the probe (an OOM kill) with the report still queued.
    ch.flush()?;
    match &case.exercise {
        Some(exercise) => super::limits::run(&mut ch, &dirs, exercise, &interlock)?,
        None => Observer::new(&mut ch, &case, &dirs, &interlock).run_all()?,
    }
    ch.done()?;

    if case.hold {
        // A holder keeps its namespaces alive for a joiner until the harness releases it; the
        // harness closing stdin (e.g. on a panic) releases it as well.
        loop {
            match ch.receive() {
                Ok(ToProbe::Release) | Err(ProbeError::Protocol(_)) => break,
                // A joiner wrote these in the container's namespaces: what does the container see?
                Ok(ToProbe::ReadSysctls { paths }) => {
                    send(&FromProbe::SysctlValues { values: super::sysctls::read_for_peer(&dirs.proc, &paths) })?
                }
                Ok(other) => eprintln!("{PROBE_NAME}: holder ignores {other:?}"),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(0)
}

/// Hold mode: sleep in read(2) until the harness closes stdin.
fn hold_main() -> Result<i32, ProbeError> {
    let mut buf = [0u8; 64];
    loop {
        match std::io::Read::read(&mut std::io::stdin().lock(), &mut buf) {
            Ok(0) => return Ok(0),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProbeError::Io { what: "read stdin".into(), source: e }),
        }
    }
}

fn fatal(stage: &str, error: String) -> Result<i32, ProbeError> {
    send(&FromProbe::Fatal { stage: stage.into(), error })?;
    Ok(1)
}

/// Bytes on the native launcher's sync socket (see the harness's `launcher::native`).
pub mod sync_bytes {
    /// unshare mode → harness: the namespaces exist, write the id maps now.
    pub const UNSHARED: u8 = b'U';
    /// harness → child: go on (maps written).
    pub const GO: u8 = b'G';
}

/// Unshare mode: the "unshare then fork" path of util-linux unshare(1) and of LXC's
/// `lxc-unshare`.
fn unshare_main(kinds: NsSet, sync_fd: i32, time_offsets: Option<TimeOffsets>) -> Result<i32, ProbeError> {
    // The harness dup2()ed its end of the sync socket to this number for us alone.
    let sync = sys::inherited_fd(sync_fd).ctx(|| format!("take the sync socket (fd {sync_fd})"))?;
    let exe = open("/proc/self/exe", OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty())
        .ctx(|| "open /proc/self/exe".into())?;
    // The unsharer starts in the harness's namespaces: its own, read before the unshare, are
    // what the interlock compares with.
    let before: Vec<NsId> = NsKind::ALL.into_iter().filter_map(|k| Interlock::own(k, None).ok()).collect();
    let interlock = Interlock::new(&before);
    let flags = fault::plant(kinds.clone_flags());
    unshare(CloneFlags::from_bits_retain(flags as i32)).ctx(|| format!("unshare({kinds})"))?;
    write(&sync, &[sync_bytes::UNSHARED]).ctx(|| "report the unshare to the harness".into())?;
    let mut go = [0u8; 1];
    match read(&sync, &mut go).ctx(|| "wait for the id maps".into())? {
        1 if go[0] == sync_bytes::GO => {}
        _ => return Err(ProbeError::Protocol("the harness closed the sync socket before GO".into())),
    }
    let mut refused = Vec::new();
    if kinds.contains(NsKind::Time)
        && let Some(offsets) = time_offsets
    {
        // Writable until the first process enters the namespace: the child forked below. Written
        // before become_root: changing uids makes the process non-dumpable, and its /proc files
        // then belong to the host's root, out of reach from inside.
        match interlock.permit(NsKind::Time, "writing /proc/self/timens_offsets", None) {
            Ok(()) => init::write_time_offsets(offsets)?,
            Err(r) => refused.push(r),
        }
    }
    if kinds.contains(NsKind::User) {
        become_root()?;
    }
    let mut env = Vec::new();
    if !refused.is_empty() {
        let text = serde_json::to_string(&refused).map_err(|e| ProbeError::Protocol(e.to_string()))?;
        env.push((UNSHARER_REFUSED_ENV.to_owned(), text));
    }
    fork_exec_observe(&exe, Some(sync), &env)
}

/// Join mode: enter a running container the way nsenter(1) and lxc-attach do.
fn join_main(target: i32, via: JoinVia, kinds: NsSet) -> Result<i32, ProbeError> {
    let exe = open("/proc/self/exe", OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty())
        .ctx(|| "open /proc/self/exe".into())?;
    // Opened before any setns: once in the container's mount namespace, /proc/<target> may not
    // resolve any more.
    let root = open(
        format!("/proc/{target}/root").as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .ctx(|| format!("open /proc/{target}/root"))?;
    // The harness-side /proc, inherited by the observe child (no O_CLOEXEC): where its own
    // /proc/self/* can be read should the container's /proc not know it (see `init::self_proc`).
    let host_proc =
        open("/proc", OFlag::O_RDONLY | OFlag::O_DIRECTORY, FileMode::empty()).ctx(|| "open /proc".into())?;
    let planted = fault::dropped();
    match via {
        JoinVia::Pidfd => {
            let pidfd = sys::pidfd_open(target).ctx(|| format!("pidfd_open({target})"))?;
            // setns(2) takes no empty set of kinds with a pidfd: with every kind planted away
            // the joiner joins nothing, as a tool that dropped them all would.
            let flags = fault::plant(kinds.clone_flags());
            if flags != 0 {
                setns(&pidfd, CloneFlags::from_bits_retain(flags as i32))
                    .ctx(|| format!("setns(pidfd of {target}, {kinds})"))?;
            }
        }
        JoinVia::NsFiles => {
            // The user namespace first: the caps it grants are what the other setns calls need when
            // the joiner is not root on the host.
            let order = kinds.iter().filter(|k| *k == NsKind::User).chain(kinds.iter().filter(|k| *k != NsKind::User));
            let mut fds = Vec::new();
            for kind in order {
                let path = format!("/proc/{target}/ns/{kind}");
                let fd = open(path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty())
                    .ctx(|| format!("open {path}"))?;
                fds.push((kind, fd));
            }
            for (kind, fd) in fds {
                if planted.contains(kind) {
                    continue;
                }
                setns(&fd, CloneFlags::from_bits_retain(kind.clone_flag() as i32))
                    .ctx(|| format!("setns(/proc/{target}/ns/{kind})"))?;
            }
        }
    }
    if kinds.contains(NsKind::User) {
        // Become the container's root, as nsenter and lxc-attach do.
        become_root()?;
    }
    fchdir(&root).ctx(|| "fchdir to the container's root".into())?;
    chroot(".").ctx(|| "chroot into the container's root".into())?;
    chdir("/").ctx(|| "chdir /".into())?;
    let env = [(SELF_PROC_FD_ENV.to_owned(), std::os::fd::AsRawFd::as_raw_fd(&host_proc).to_string())];
    fork_exec_observe(&exe, None, &env)
}

/// Switches to uid/gid 0 of the user namespace just entered, so that the exec that follows keeps
/// the capabilities (the kernel grants them on exec only to the namespace's root). setgroups
/// fails where the map's writer denied it (an unprivileged map), which leaves nothing to drop.
fn become_root() -> Result<(), ProbeError> {
    let _ = setgroups(&[]);
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .ctx(|| "setresgid(0) in the user namespace".into())?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx(|| "setresuid(0) in the user namespace".into())
}

/// Forks; the child executes the probe in observe mode (a new pid or time namespace only takes
/// effect for children) with `extra` added to its environment; the parent waits and exits with
/// the child's status.
fn fork_exec_observe(exe: &OwnedFd, sync: Option<OwnedFd>, extra: &[(String, String)]) -> Result<i32, ProbeError> {
    let args = [CString::new(PROBE_NAME).expect("no NUL")];
    let entry = |k: &[u8], v: &[u8]| {
        let mut kv = k.to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v);
        CString::new(kv).map_err(|_| ProbeError::Protocol("NUL in the environment".into()))
    };
    let mut env: Vec<CString> =
        std::env::vars_os().map(|(k, v)| entry(k.as_bytes(), v.as_bytes())).collect::<Result<_, _>>()?;
    for (k, v) in extra {
        env.push(entry(k.as_bytes(), v.as_bytes())?);
    }
    let child = sys::fork_child(|| {
        // The child's copy of the sync socket closes on the exec (close-on-exec).
        // If this parent dies (killed by the harness on a timeout), so does the probe. In a new
        // pid namespace getppid() is 0, so the usual re-check cannot tell a lost parent; the
        // probe then ends anyway when the harness closes its stdin.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        let err = fexecve(exe, &args, &env).unwrap_err();
        eprintln!("{PROBE_NAME}: failed to exec the probe: {err}");
        127
    })
    .ctx(|| "fork".into())?;
    drop(sync);
    loop {
        match waitpid(child, None).ctx(|| "wait for the probe".into())? {
            WaitStatus::Exited(_, code) => return Ok(code),
            WaitStatus::Signaled(_, sig, _) => return Ok(128 + sig as i32),
            _ => continue,
        }
    }
}
