//! The parent's side of the spawn pipeline, and the handle of a running probe.
//!
//! In order: prepare pipes and the sync socket, clone (see [`crate::sys::clone`]), close the child's
//! ends, write the id maps when the child is ready for them, signal the child to go on, and learn
//! whether its exec succeeded. A [`ProbeProcess`] owns the child from the moment it exists: if
//! anything fails, or the caller panics, dropping it kills and reaps the child.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use isoprobe_probes::probe::{Mode, PROBE_NAME, sync_bytes};
use isoprobe_probes::sys::pidfd_send_signal;
use isoprobe_probes::wire::TimeOffsets;

use crate::error::{Context, HarnessError};
use crate::spec::{IdMaps, Runner};
use crate::sys::clone::{self, ChildFds, ChildHandshake, CloneCall, ExecImage};
use isoprobe_probes::ns::NsSet;

/// What to start.
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    pub call: CloneCall,
    /// CLONE_NEW* flags for the clone itself.
    pub ns_flags: u64,
    /// A cgroup2 directory to start the child in (CLONE_INTO_CGROUP).
    pub cgroup: Option<BorrowedFd<'a>>,
    /// The probe executable on the host.
    pub exe: &'a Path,
    pub mode: Mode,
    /// Written to `/proc/<child>/{uid,gid}_map` when the child has a new user namespace (from the
    /// clone, or from its own unshare in [`Mode::Unshare`]).
    pub id_maps: Option<&'a IdMaps>,
    /// Written to `/proc/<child>/timens_offsets` for the time namespace the clone made (with
    /// CLONE_NEWTIME in `ns_flags`): the child then shares the harness's memory and enters the
    /// namespace only at its exec (see `native::time_offsets_before_exec`).
    pub time_offsets: Option<TimeOffsets>,
    pub runner: Runner,
    pub deadline: Instant,
    /// The fault plant's kinds (empty unless a sensitivity test armed it): the probe drops them
    /// at its own unshare and setns calls (see `isoprobe_probes::fault`).
    pub plant: NsSet,
}

/// A running (or exited but not yet reaped) probe process and its stdio.
#[derive(Debug)]
pub struct ProbeProcess {
    pub pid: Pid,
    pidfd: OwnedFd,
    pub stdin: Option<File>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    status: Option<WaitStatus>,
    /// The call that created it (clone3 may have fallen back to clone).
    pub call: CloneCall,
    /// The stack and exec image of a child that shares the harness's memory, until its exec is
    /// seen ([`wait_for_exec`]). A field, so that it is dropped after `Drop::drop` has killed and
    /// reaped the child.
    pre_exec: Option<clone::PreExec>,
    /// The child's ends of its pipes and sync socket, while it shares the harness's descriptor
    /// table ([`clone::Cloned::shares_fds`]): closed once it has a table of its own.
    child_fds: Vec<OwnedFd>,
}

/// Attaches a freshly cloned child (its pid) to cgroups, before it is told to go on.
pub type AttachHook<'a> = &'a dyn Fn(Pid) -> Result<(), HarnessError>;

/// Starts a probe process as `req` says.
pub fn spawn_probe(req: SpawnRequest<'_>) -> Result<ProbeProcess, HarnessError> {
    spawn_probe_attached(req, None)
}

/// [`spawn_probe`], with `attach` run between the clone and the child's GO (the cgroup v1 attach
/// through cgroup.procs; CLONE_INTO_CGROUP covers cgroup2).
pub fn spawn_probe_attached(
    req: SpawnRequest<'_>,
    attach: Option<AttachHook<'_>>,
) -> Result<ProbeProcess, HarnessError> {
    let new_user = req.ns_flags & libc::CLONE_NEWUSER as u64 != 0;
    let handshake = match req.mode {
        Mode::Unshare { .. } => ChildHandshake::ExecWithSyncFd3,
        _ => ChildHandshake::GoThenExec { become_root: new_user },
    };
    let mut argv = vec![CString::new(PROBE_NAME).expect("no NUL")];
    argv.extend(req.mode.to_args().into_iter().map(|a| CString::new(a).expect("mode args have no NUL")));
    // The probe's environment is built from scratch: nothing of the harness's reaches it.
    let mut envp = vec![CString::new("RUST_BACKTRACE=1").expect("no NUL")];
    if isoprobe_probes::fault::COMPILED && !req.plant.is_empty() {
        envp.push(CString::new(format!("{}={}", isoprobe_probes::fault::ENV, req.plant)).expect("no NUL"));
    }
    if req.time_offsets.is_some() {
        envp.push(CString::new(format!("{}=1", isoprobe_probes::probe::LAUNCHER_TIME_ENV)).expect("no NUL"));
    }
    let path = CString::new(req.exe.as_os_str().as_bytes())
        .map_err(|_| HarnessError::Launch(format!("probe path {} has a NUL byte", req.exe.display())))?;
    let image = ExecImage::new(path, argv, envp);
    let time_at_exec = req.time_offsets.is_some();
    let (mut child, sync) = spawn_image(req.call, req.ns_flags, req.cgroup, image, handshake, time_at_exec)?;
    // The child is blocked before exec (or, in unshare mode, before its fork): nothing of the
    // probe has run yet.
    if let Some(attach) = attach {
        attach(child.pid)?;
    }
    match handshake {
        ChildHandshake::GoThenExec { .. } => {
            if new_user {
                write_id_maps(child.pid, req.id_maps, req.runner)?;
            }
            if let Some(offsets) = req.time_offsets {
                write_time_offsets(child.pid, offsets)?;
            }
            signal_child_go(&sync)?;
            wait_for_exec(&sync, &mut child, req.deadline)?;
        }
        ChildHandshake::ExecWithSyncFd3 => {
            wait_for_unshared(&sync, &mut child, req.deadline)?;
            if let Mode::Unshare { kinds, .. } = req.mode
                && kinds.contains(isoprobe_probes::ns::NsKind::User)
            {
                write_id_maps(child.pid, req.id_maps, req.runner)?;
            }
            signal_child_go(&sync)?;
        }
    }
    Ok(child)
}

/// Clones a child that runs `image` with fresh stdio pipes; returns its handle and the parent's
/// end of the sync socket, before any handshake.
fn spawn_image(
    call: CloneCall,
    ns_flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    image: ExecImage,
    handshake: ChildHandshake,
    time_at_exec: bool,
) -> Result<(ProbeProcess, OwnedFd), HarnessError> {
    let (stdin_r, stdin_w) = pipe2(OFlag::O_CLOEXEC).ctx(|| "create the stdin pipe".into())?;
    let (stdout_r, stdout_w) = pipe2(OFlag::O_CLOEXEC).ctx(|| "create the stdout pipe".into())?;
    let (stderr_r, stderr_w) = pipe2(OFlag::O_CLOEXEC).ctx(|| "create the stderr pipe".into())?;
    let (sync, sync_child) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx(|| "create the sync socket".into())?;
    let fds = ChildFds {
        stdin: stdin_r.as_fd(),
        stdout: stdout_w.as_fd(),
        stderr: stderr_w.as_fd(),
        sync: sync_child.as_fd(),
    };
    let cloned = clone::spawn(call, ns_flags, cgroup, image, &fds, handshake, time_at_exec)
        .ctx(|| format!("{} with flags {ns_flags:#x}", call_name(call)))?;
    let child_fds = if cloned.shares_fds { vec![stdin_r, stdout_w, stderr_w, sync_child] } else { Vec::new() };
    let child = ProbeProcess {
        pid: cloned.pid,
        pidfd: cloned.pidfd,
        stdin: Some(File::from(stdin_w)),
        stdout: stdout_r,
        stderr: stderr_r,
        status: None,
        call: cloned.call,
        pre_exec: cloned.pre_exec,
        child_fds,
    };
    for fd in [&child.stdout, &child.stderr] {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).ctx(|| "make the child's output non-blocking".into())?;
    }
    Ok((child, sync))
}

/// What to start when the container is made by an external tool: its executable, arguments and
/// environment. The tool gets the probe's stdio; nothing else of the harness is inherited.
#[derive(Debug)]
pub struct ToolRequest<'a> {
    pub exe: &'a Path,
    /// The arguments after `argv[0]` (which is the executable's file name).
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// A cgroup2 directory to start the tool in (CLONE_INTO_CGROUP); where the tool then puts the
    /// container is the tool's business, and its launcher's to clean up.
    pub cgroup: Option<BorrowedFd<'a>>,
    /// cgroup v1 directories to move the tool into before it executes (cgroup.procs).
    pub attach_v1: &'a [std::path::PathBuf],
    pub deadline: Instant,
}

/// Starts an external tool with the stdio pipes a probe would get, through the same clone path
/// (and the same owner: dropping the handle kills and reaps the tool).
pub fn spawn_tool(req: ToolRequest<'_>) -> Result<ProbeProcess, HarnessError> {
    let cstr =
        |s: &str, what: &str| CString::new(s).map_err(|_| HarnessError::Launch(format!("{what} {s:?} has a NUL byte")));
    let exe_text = req.exe.to_string_lossy();
    let a0 = req.exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| exe_text.to_string());
    let mut argv = vec![cstr(&a0, "argument")?];
    for a in req.args {
        argv.push(cstr(a, "argument")?);
    }
    let envp = req.env.iter().map(|(k, v)| cstr(&format!("{k}={v}"), "environment entry")).collect::<Result<_, _>>()?;
    let image = ExecImage::new(cstr(&exe_text, "tool path")?, argv, envp);
    let (mut child, sync) =
        spawn_image(CloneCall::Clone3, 0, req.cgroup, image, ChildHandshake::GoThenExec { become_root: false }, false)?;
    // The child waits for GO: it is in its cgroups before the tool's first instruction.
    for dir in req.attach_v1 {
        let procs = dir.join("cgroup.procs");
        fs::write(&procs, child.pid.to_string()).ctx(|| format!("move the tool into {}", procs.display()))?;
    }
    signal_child_go(&sync)?;
    // The sync socket closes on the tool's exec; a failed exec reports its errno.
    wait_for_exec(&sync, &mut child, req.deadline)?;
    Ok(child)
}

fn call_name(call: CloneCall) -> &'static str {
    match call {
        CloneCall::Clone3 => "clone3",
        CloneCall::Clone => "clone",
    }
}

/// Writes /proc/<pid>/{setgroups,uid_map,gid_map} for a child in a new user namespace.
///
/// An unprivileged writer must deny setgroups before it may write gid_map (user_namespaces(7)).
///
/// The harness's interlock: a child whose user namespace is the harness's own (the clone or
/// unshare lost CLONE_NEWUSER) gets no maps written; the probe then reports the identity maps it
/// really has, and the user checks fail with that evidence.
fn write_id_maps(pid: Pid, maps: Option<&IdMaps>, runner: Runner) -> Result<(), HarnessError> {
    let maps =
        maps.ok_or_else(|| HarnessError::Launch("a user namespace without id maps (spec not resolved)".into()))?;
    let proc = format!("/proc/{pid}");
    if harness_ns(pid, "user", "user")? {
        return Ok(());
    }
    if !runner.is_root() {
        fs::write(format!("{proc}/setgroups"), "deny").ctx(|| format!("write {proc}/setgroups"))?;
    }
    let uid = IdMaps::to_proc_text(&maps.uid);
    fs::write(format!("{proc}/uid_map"), &uid).ctx(|| format!("write {uid:?} to {proc}/uid_map"))?;
    let gid = IdMaps::to_proc_text(&maps.gid);
    fs::write(format!("{proc}/gid_map"), &gid).ctx(|| format!("write {gid:?} to {proc}/gid_map"))?;
    Ok(())
}

/// Writes the offsets of the time namespace a child's clone made, through
/// /proc/<pid>/timens_offsets (which acts on the child's time_for_children namespace and takes
/// offsets until a task enters it: this child enters it at its exec).
///
/// The harness's interlock, as for the id maps: where the child's time_for_children namespace is
/// the harness's own (the clone lost CLONE_NEWTIME) nothing is written; the probe then finds
/// itself in the harness's time namespace and refuses the step in the launcher's place (see
/// `isoprobe_probes::probe::LAUNCHER_TIME_ENV`), and the time checks fail with that evidence.
fn write_time_offsets(pid: Pid, offsets: TimeOffsets) -> Result<(), HarnessError> {
    if harness_ns(pid, "time_for_children", "time")? {
        return Ok(());
    }
    let proc = format!("/proc/{pid}");
    let text = offsets.to_proc_text();
    fs::write(format!("{proc}/timens_offsets"), &text).ctx(|| format!("write {text:?} to {proc}/timens_offsets"))
}

/// Whether the child's namespace `/proc/<pid>/ns/<child>` is the harness's own `ns/<own>` (the
/// harness's interlock before it writes a child's namespace state).
fn harness_ns(pid: Pid, child: &str, own: &str) -> Result<bool, HarnessError> {
    let ns = |p: String| nix::sys::stat::stat(p.as_str()).map(|s| (s.st_dev, s.st_ino)).ctx(|| format!("stat {p}"));
    Ok(ns(format!("/proc/{pid}/ns/{child}"))? == ns(format!("/proc/self/ns/{own}"))?)
}

fn signal_child_go(sync: &OwnedFd) -> Result<(), HarnessError> {
    send(sync.as_raw_fd(), &[sync_bytes::GO], MsgFlags::MSG_NOSIGNAL)
        .ctx(|| "signal the child to go on".into())
        .map(drop)
}

/// Reads one packet from the sync socket before `deadline`; empty means end of file.
fn recv_packet(sync: &OwnedFd, deadline: Instant, during: &str) -> Result<Vec<u8>, HarnessError> {
    wait_readable(sync.as_fd(), deadline, during)?;
    Ok(recv_ready(sync, during)?.unwrap_or_default())
}

/// A packet waiting on the sync socket, if there is one (empty: end of file).
fn recv_ready(sync: &OwnedFd, during: &str) -> Result<Option<Vec<u8>>, HarnessError> {
    let mut buf = [0u8; 16];
    match recv(sync.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(HarnessError::Sys { what: format!("read the sync socket {during}"), source: e }),
    }
}

/// Waits for the sync socket to close on the child's successful exec, or for its failure report.
/// A child that shared the harness's descriptor table says first that it has its own (the
/// harness then closes its copies of the child's descriptors, the sync socket's among them, so
/// that the exec closes the last); until then its end counts as the socket's close.
fn wait_for_exec(sync: &OwnedFd, child: &mut ProbeProcess, deadline: Instant) -> Result<(), HarnessError> {
    let during = "waiting for the probe's exec";
    let mut msg = if child.child_fds.is_empty() {
        recv_packet(sync, deadline, during)?
    } else {
        wait_readable_or_end(sync.as_fd(), child.pidfd.as_fd(), deadline, during)?;
        recv_ready(sync, during)?.unwrap_or_default()
    };
    // Its own table now, or it failed (and exits), or it ended: the copies go either way, so
    // that its pipes end with it.
    child.child_fds.clear();
    if msg == [clone::FILES_OWN] {
        msg = recv_packet(sync, deadline, during)?;
    }
    if msg.is_empty() {
        // Closed on the exec (or by the child's end): it no longer runs on what it shared.
        child.pre_exec = None;
        return Ok(());
    }
    Err(child_failed(&msg, child, deadline))
}

/// Waits for an unshare-mode probe to report its namespaces exist.
fn wait_for_unshared(sync: &OwnedFd, child: &mut ProbeProcess, deadline: Instant) -> Result<(), HarnessError> {
    let msg = recv_packet(sync, deadline, "waiting for the unshare")?;
    if msg == [sync_bytes::UNSHARED] {
        return Ok(());
    }
    if msg.is_empty() {
        let status = child.wait_until(deadline)?;
        let stderr = child.read_stderr_now();
        return Err(HarnessError::Launch(format!(
            "the unsharer ended ({}) before unsharing: {stderr}",
            describe(status)
        )));
    }
    Err(child_failed(&msg, child, deadline))
}

fn child_failed(msg: &[u8], child: &mut ProbeProcess, deadline: Instant) -> HarnessError {
    let _ = child.wait_until(deadline);
    match clone::decode_child_failure(msg) {
        Some((step, errno)) => HarnessError::Launch(format!("the child failed at {step}: {errno} ({})", errno.desc())),
        None => HarnessError::Launch(format!("unexpected bytes on the sync socket: {msg:?}")),
    }
}

/// Polls `fd` for input until `deadline`.
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant, during: &str) -> Result<(), HarnessError> {
    poll_until(&mut [PollFd::new(fd, PollFlags::POLLIN)], deadline, during)
}

/// Polls `fd` for input until `deadline`, or until the process of `pidfd` has ended.
fn wait_readable_or_end(
    fd: BorrowedFd<'_>,
    pidfd: BorrowedFd<'_>,
    deadline: Instant,
    during: &str,
) -> Result<(), HarnessError> {
    poll_until(&mut [PollFd::new(fd, PollFlags::POLLIN), PollFd::new(pidfd, PollFlags::POLLIN)], deadline, during)
}

/// Polls `fds` until one is ready or `deadline` has passed.
fn poll_until(fds: &mut [PollFd<'_>], deadline: Instant, during: &str) -> Result<(), HarnessError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        match poll(fds, timeout) {
            Ok(0) => return Err(HarnessError::Timeout { after: left, during: during.into() }),
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(HarnessError::Sys { what: format!("poll {during}"), source: e }),
        }
    }
}

/// "exit 0", "killed by SIGKILL".
pub fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit {code}"),
        WaitStatus::Signaled(_, sig, core) => {
            format!("killed by {sig}{}", if core { " (core dumped)" } else { "" })
        }
        other => format!("{other:?}"),
    }
}

impl ProbeProcess {
    /// Sends SIGKILL through the pidfd (never to a recycled pid).
    pub fn kill(&self) {
        if self.status.is_none() {
            let _ = pidfd_send_signal(&self.pidfd, Signal::SIGKILL as i32);
        }
    }

    /// Waits for the process to exit before `deadline`, then reaps it.
    pub fn wait_until(&mut self, deadline: Instant) -> Result<WaitStatus, HarnessError> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        // A pidfd becomes readable when the process exits.
        wait_readable(self.pidfd.as_fd(), deadline, &format!("waiting for process {} to exit", self.pid))?;
        self.reap_blocking()
    }

    /// Kills the process unless it already exited, and reaps it.
    pub fn kill_and_reap(&mut self) -> Result<WaitStatus, HarnessError> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        if let Ok(Some(s)) = self.try_reap() {
            return Ok(s);
        }
        self.kill();
        self.reap_blocking()
    }

    /// The exit status if the process has ended (it is then reaped), without waiting.
    pub fn try_status(&mut self) -> Result<Option<WaitStatus>, HarnessError> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        self.try_reap()
    }

    fn try_reap(&mut self) -> Result<Option<WaitStatus>, HarnessError> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).ctx(|| format!("waitpid({})", self.pid))? {
            WaitStatus::StillAlive => Ok(None),
            s => {
                self.status = Some(s);
                Ok(Some(s))
            }
        }
    }

    fn reap_blocking(&mut self) -> Result<WaitStatus, HarnessError> {
        loop {
            match waitpid(self.pid, None) {
                Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    self.status = Some(s);
                    return Ok(s);
                }
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(HarnessError::Sys { what: format!("waitpid({})", self.pid), source: e }),
            }
        }
    }

    /// Whatever stderr holds right now (non-blocking), lossily decoded.
    pub fn read_stderr_now(&self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = nix::unistd::read(&self.stderr, &mut buf) {
            if n == 0 || out.len() > 64 * 1024 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).trim().to_owned()
    }

    pub fn status(&self) -> Option<WaitStatus> {
        self.status
    }
}

impl Drop for ProbeProcess {
    /// The owner of last resort: a probe is never left running or unreaped.
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.kill_and_reap();
    }
}

/// A timeout used where a deadline is only a safety net.
pub const GRACE: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    /// What `/bin/ls /proc/self/fd` lists when started as a tool, with a descriptor the harness
    /// holds at `held` (without close-on-exec, so that only its absence from the child's table
    /// keeps it from the program).
    fn fds_of_a_child_with(held: i32) -> (Vec<i32>, i32) {
        let null = File::open("/dev/null").unwrap();
        let high = isoprobe_probes::sys::dup_at_or_above(null.as_fd(), held).unwrap();
        fcntl(&high, FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
        let deadline = Instant::now() + GRACE;
        let args = ["/proc/self/fd".to_owned()];
        let req =
            ToolRequest { exe: Path::new("/bin/ls"), args: &args, env: &[], cgroup: None, attach_v1: &[], deadline };
        let mut child = spawn_tool(req).unwrap();
        assert_eq!(child.wait_until(deadline).unwrap(), WaitStatus::Exited(child.pid, 0));
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = nix::unistd::read(&child.stdout, &mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        let listed = String::from_utf8_lossy(&out).split_whitespace().map(|w| w.parse().unwrap()).collect();
        (listed, high.as_raw_fd())
    }

    /// A clone3 child takes only the descriptors numbered below its own (CLONE_FILES, then
    /// close_range(2) with CLOSE_RANGE_UNSHARE): one the harness holds above them does not reach
    /// the program it executes, even without close-on-exec; on a kernel without
    /// CLOSE_RANGE_UNSHARE (before 5.9) the child has a copy of the whole table, and it does.
    /// The child's own pipes work either way (`ls` prints through its stdout).
    #[test]
    fn a_child_takes_no_descriptor_held_above_its_own() {
        let at = crate::sys::fds::long_lived_floor().unwrap_or(900);
        let (listed, high) = fds_of_a_child_with(at);
        assert!(high >= at, "{high} {at}");
        assert!([0, 1, 2].iter().all(|fd| listed.contains(fd)), "{listed:?}");
        assert_eq!(listed.contains(&high), !clone::close_range_unshares(), "fd {high} in {listed:?}");
    }
}
