//! The observations: each one looks at one thing from inside and reports the raw evidence as a
//! [`Fact`]. An observation that cannot be made becomes [`Fact::Unobservable`] with its key, so the
//! harness reports an error for that check instead of guessing.
//!
//! Observations that create something (a domainname, a mount, IPC objects, a file) remove it again
//! before the next one starts, and ask the host to look while it exists.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, UnixAddr, connect, socket};
use nix::sys::stat::{Mode as FileMode, fstatat};
use nix::sys::utsname::uname;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, chdir, chroot, fchdir, fork, getpid, getppid, sethostname};

use crate::ns::NsKind;
use crate::sys::{self, SysvKind};
use crate::wire::{
    ClockKind, ClockSource, Fact, HostAnswer, HostQuestion, IdKind, IpcNames, IpcSeen, ProbeCase, SysResult, fact_key,
};

use super::channel::Channel;
use super::error::{Context, ProbeError};
use super::init::Dirs;

pub struct Observer<'a> {
    pub ch: &'a mut Channel,
    pub case: &'a ProbeCase,
    pub dirs: &'a Dirs,
}

impl Observer<'_> {
    /// Runs every observation in a fixed order and reports each.
    pub fn run_all(&mut self) -> Result<(), ProbeError> {
        for kind in NsKind::ALL {
            let r = self.ns_identity(kind);
            self.report(fact_key::ns_identity(kind), r)?;
        }
        let r = self.pids();
        self.report("pids".into(), r)?;
        let r = self.signal_sentinel();
        self.report("signal-sentinel".into(), r)?;
        let r = self.proc_sentinel();
        self.report("proc-sentinel".into(), r)?;
        let r = self.hostname();
        self.report("hostname".into(), r)?;
        let r = self.domainname();
        self.report("domainname".into(), r)?;
        let r = self.sethostname_same();
        self.report("sethostname-same".into(), r)?;
        let r = self.sentinel_mount();
        self.report("sentinel-mount".into(), r)?;
        let r = self.own_mount();
        self.report("own-mount".into(), r)?;
        let r = self.host_marker();
        self.report("host-marker".into(), r)?;
        let r = self.chroot_escape();
        self.report("chroot-escape".into(), r)?;
        let r = self.host_ipc();
        self.report("host-ipc".into(), r)?;
        let r = self.own_ipc();
        self.report("own-ipc".into(), r)?;
        let r = self.abstract_socket();
        self.report("abstract-socket".into(), r)?;
        let r = self.tcp_loopback();
        self.report("tcp-loopback".into(), r)?;
        let r = sys::netlink_links().ctx(|| "dump links over netlink".into()).map(|links| Fact::Links { links });
        self.report("links".into(), r)?;
        let r = self.sysfs_net();
        self.report("sysfs-net".into(), r)?;
        for ids in [IdKind::Uid, IdKind::Gid] {
            let r = self.id_map(ids);
            self.report(fact_key::id_map(ids), r)?;
        }
        let r = self.file_owner();
        self.report("file-owner".into(), r)?;
        let r = self.cgroup();
        self.report("cgroup".into(), r)?;
        for clock in [ClockKind::Monotonic, ClockKind::Boottime] {
            for source in [ClockSource::Vdso, ClockSource::Syscall] {
                let r = self.clock_offset(clock, source);
                self.report(fact_key::clock(clock, source), r)?;
            }
        }
        let r = self.clock_offset(ClockKind::Boottime, ClockSource::ProcUptime);
        self.report(fact_key::clock(ClockKind::Boottime, ClockSource::ProcUptime), r)?;
        Ok(())
    }

    /// Sends the fact, or an `Unobservable` under `key`. Protocol errors end the run.
    fn report(&mut self, key: String, r: Result<Fact, ProbeError>) -> Result<(), ProbeError> {
        match r {
            Ok(fact) => self.ch.fact(fact),
            Err(e @ ProbeError::Protocol(_)) => Err(e),
            Err(e) => self.ch.fact(Fact::Unobservable { about: key, error: e.to_string() }),
        }
    }

    fn read_proc(&self, path: &str) -> Result<String, ProbeError> {
        read_at(&self.dirs.proc, path).ctx(|| format!("read /proc/{path}"))
    }

    // ---- identity and pid ----

    fn ns_identity(&mut self, kind: NsKind) -> Result<Fact, ProbeError> {
        let path = format!("self/ns/{kind}");
        let st = fstatat(&self.dirs.proc, path.as_str(), AtFlags::empty()).ctx(|| format!("stat /proc/{path}"))?;
        Ok(Fact::NsIdentity { kind, dev: st.st_dev, ino: st.st_ino })
    }

    fn pids(&mut self) -> Result<Fact, ProbeError> {
        Ok(Fact::Pids { pid: getpid().as_raw(), ppid: getppid().as_raw() })
    }

    fn signal_sentinel(&mut self) -> Result<Fact, ProbeError> {
        let pid = Pid::from_raw(self.case.sentinels.pid.pid);
        Ok(Fact::SignalSentinel { result: kill(pid, None::<Signal>).into() })
    }

    fn proc_sentinel(&mut self) -> Result<Fact, ProbeError> {
        let s = &self.case.sentinels.pid;
        match read_at(&self.dirs.proc, &format!("{}/cmdline", s.pid)) {
            Ok(cmdline) => Ok(Fact::ProcSentinel { listed: true, tagged: cmdline.split('\0').any(|a| a == s.tag) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Fact::ProcSentinel { listed: false, tagged: false })
            }
            Err(e) => Err(ProbeError::Io { what: format!("read /proc/{}/cmdline", s.pid), source: e }),
        }
    }

    // ---- uts ----

    fn hostname(&mut self) -> Result<Fact, ProbeError> {
        let u = uname().ctx(|| "uname".into())?;
        Ok(Fact::Hostname { hostname: u.nodename().to_string_lossy().into_owned() })
    }

    fn domainname(&mut self) -> Result<Fact, ProbeError> {
        let token = self.case.sentinels.uts.domainname_token.clone();
        expect_ack(self.ch.ask(HostQuestion::LockDomainname)?, "lock the host domainname")?;
        let set: SysResult = sys::setdomainname(&token).into();
        // Always ask: the host restores its domainname and releases the lock on this answer.
        let seen = expect_seen(self.ch.ask(HostQuestion::CheckDomainname { token })?, "check the domainname")?;
        Ok(Fact::Domainname { set, host_saw_token: seen })
    }

    fn sethostname_same(&mut self) -> Result<Fact, ProbeError> {
        let current = uname().ctx(|| "uname".into())?.nodename().to_owned();
        Ok(Fact::SethostnameSame { result: sethostname(&current).into() })
    }

    // ---- mnt ----

    fn sentinel_mount(&mut self) -> Result<Fact, ProbeError> {
        let m = &self.case.sentinels.mnt;
        match self.ch.ask(HostQuestion::MountSentinel)? {
            HostAnswer::Ack => {}
            HostAnswer::Unavailable { reason } => return Ok(Fact::SentinelMount { visible: None, detail: reason }),
            other => return Err(unexpected(other, "mount the sentinel")),
        }
        let path = format!("{}/marker", m.sentinel_mount);
        let seen = fs::read_to_string(&path);
        let (visible, detail) = match &seen {
            Ok(text) if text.trim() == m.marker_token => (true, format!("{path} holds the host's token")),
            Ok(text) => (false, format!("{path} holds {:?}, not the host's token", text.trim())),
            Err(e) => (false, format!("{path}: {e}")),
        };
        expect_ack(self.ch.ask(HostQuestion::UnmountSentinel)?, "unmount the sentinel")?;
        Ok(Fact::SentinelMount { visible: Some(visible), detail })
    }

    fn own_mount(&mut self) -> Result<Fact, ProbeError> {
        let target = self.case.sentinels.mnt.own_mount.clone();
        let r = mount(Some("isoprobe"), target.as_str(), Some("tmpfs"), MsFlags::empty(), Some("size=64k"));
        let mounted = r.is_ok();
        let asked = self.ch.ask(HostQuestion::OwnMountVisible);
        if mounted {
            umount2(target.as_str(), MntFlags::MNT_DETACH).ctx(|| format!("unmount {target}"))?;
        }
        let seen = expect_seen(asked?, "check the probe's mount")?;
        Ok(Fact::OwnMount { mount: r.into(), host_saw: seen })
    }

    fn host_marker(&mut self) -> Result<Fact, ProbeError> {
        let m = &self.case.sentinels.mnt;
        Ok(match fs::read_to_string(&m.host_marker) {
            Ok(t) if t.trim() == m.marker_token => {
                Fact::HostMarker { reachable: true, detail: format!("{} holds the host's token", m.host_marker) }
            }
            Ok(t) => Fact::HostMarker { reachable: false, detail: format!("{} holds {:?}", m.host_marker, t.trim()) },
            Err(e) => Fact::HostMarker { reachable: false, detail: format!("{}: {e}", m.host_marker) },
        })
    }

    /// The classic escape from a chroot: keep a directory fd of the current root, chroot into a
    /// subdirectory, fchdir back out through the fd (now above the root), climb with chdir(".."),
    /// and chroot(".") at the top. It works because a chroot only changes the root path lookups
    /// stop at; it does not change the mount tree. Run in a child so the probe keeps its own root.
    fn chroot_escape(&mut self) -> Result<Fact, ProbeError> {
        const CLIMB: usize = 256;
        let m = &self.case.sentinels.mnt;
        let root = open("/", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty())
            .ctx(|| "open /".into())?;
        // Exit codes of the child: 0 reached the host marker, 1 did not, 2+ a step failed.
        // SAFETY: the probe is single-threaded, so the child may do anything; it only makes system
        // calls and exits with `_exit`, never returning into the probe's main loop.
        match unsafe { fork() }.ctx(|| "fork for the chroot escape".into())? {
            ForkResult::Child => {
                let code = (|| {
                    if chroot(m.escape_dir.as_str()).is_err() {
                        return 2;
                    }
                    if fchdir(&root).is_err() {
                        return 3;
                    }
                    for _ in 0..CLIMB {
                        if chdir("..").is_err() {
                            return 4;
                        }
                    }
                    if chroot(".").is_err() {
                        return 5;
                    }
                    match fs::read_to_string(&m.host_marker) {
                        Ok(t) if t.trim() == m.marker_token => 0,
                        _ => 1,
                    }
                })();
                // SAFETY: _exit is async-signal-safe and skips the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).ctx(|| "wait for the chroot-escape child".into())?;
                let steps =
                    format!("chroot({}), fchdir(old root), chdir(\"..\") x{CLIMB}, chroot(\".\")", m.escape_dir);
                match status {
                    WaitStatus::Exited(_, 0) => Ok(Fact::ChrootEscape {
                        reached_host: Some(true),
                        detail: format!("{steps}: {} readable with the host's token", m.host_marker),
                    }),
                    WaitStatus::Exited(_, 1) => Ok(Fact::ChrootEscape {
                        reached_host: Some(false),
                        detail: format!("{steps}: {} not reachable", m.host_marker),
                    }),
                    WaitStatus::Exited(_, n) => {
                        let step = ["chroot into the escape dir", "fchdir", "chdir(\"..\")", "chroot(\".\")"]
                            [(n as usize).saturating_sub(2).min(3)];
                        Ok(Fact::ChrootEscape { reached_host: None, detail: format!("not attempted: {step} failed") })
                    }
                    other => Err(ProbeError::Protocol(format!("chroot-escape child ended with {other:?}"))),
                }
            }
        }
    }

    // ---- ipc ----

    fn host_ipc(&mut self) -> Result<Fact, ProbeError> {
        let n = &self.case.sentinels.ipc.host;
        Ok(Fact::HostIpc {
            shm: sys::lookup(sys::sysv_get(SysvKind::Shm, n.shm_key)),
            sem: sys::lookup(sys::sysv_get(SysvKind::Sem, n.sem_key)),
            msg: sys::lookup(sys::sysv_get(SysvKind::Msg, n.msg_key)),
            mq: sys::lookup(sys::mq_lookup(&n.mq_name)),
        })
    }

    fn own_ipc(&mut self) -> Result<Fact, ProbeError> {
        let n: IpcNames = self.case.sentinels.ipc.own.clone();
        let shm = sys::sysv_create(SysvKind::Shm, n.shm_key, 0o600);
        let sem = sys::sysv_create(SysvKind::Sem, n.sem_key, 0o600);
        let msg = sys::sysv_create(SysvKind::Msg, n.msg_key, 0o600);
        let mq = sys::mq_create(&n.mq_name, 0o600);
        let created = IpcSeen { shm: shm.is_ok(), sem: sem.is_ok(), msg: msg.is_ok(), mq: mq.is_ok() };
        let asked = self.ch.ask(HostQuestion::OwnIpcVisible);
        // Remove before looking at the answer, so a protocol error leaves nothing behind.
        let mut cleanup = Vec::new();
        for (kind, id) in [(SysvKind::Shm, shm), (SysvKind::Sem, sem), (SysvKind::Msg, msg)] {
            if let Ok(id) = id {
                cleanup.push(sys::sysv_remove(kind, id));
            }
        }
        if mq.is_ok() {
            cleanup.push(sys::mq_remove(&n.mq_name).map(drop));
        }
        let host_saw = match asked? {
            HostAnswer::Ipc { seen } => seen,
            other => return Err(unexpected(other, "check the probe's IPC objects")),
        };
        if let Some(Err(e)) = cleanup.into_iter().find(Result::is_err) {
            return Err(ProbeError::Sys { what: "remove the probe's IPC objects".into(), source: e });
        }
        let failures: Vec<String> = [("shm", shm.err()), ("sem", sem.err()), ("msg", msg.err()), ("mq", mq.err())]
            .into_iter()
            .filter_map(|(what, e)| e.map(|e| format!("{what}: {e}")))
            .collect();
        if !failures.is_empty() {
            return Err(ProbeError::Protocol(format!("could not create IPC objects: {}", failures.join(", "))));
        }
        Ok(Fact::OwnIpc { created, host_saw })
    }

    // ---- net ----

    fn abstract_socket(&mut self) -> Result<Fact, ProbeError> {
        let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .ctx(|| "create a unix socket".into())?;
        let addr = UnixAddr::new_abstract(self.case.sentinels.net.abstract_name.as_bytes())
            .ctx(|| "build the abstract address".into())?;
        Ok(Fact::AbstractSocket { connect: connect(sock.as_raw_fd(), &addr).into() })
    }

    fn tcp_loopback(&mut self) -> Result<Fact, ProbeError> {
        let sock = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .ctx(|| "create a TCP socket".into())?;
        let addr = SockaddrIn::new(127, 0, 0, 1, self.case.sentinels.net.tcp_port);
        Ok(Fact::TcpLoopback { connect: connect(sock.as_raw_fd(), &addr).into() })
    }

    fn sysfs_net(&mut self) -> Result<Fact, ProbeError> {
        let fd = self
            .dirs
            .sys_net
            .as_ref()
            .ok_or_else(|| ProbeError::Protocol("no /sys/class/net in this root (see the init steps)".into()))?;
        let mut entries = list_dir(fd).ctx(|| "list /sys/class/net".into())?;
        entries.sort();
        Ok(Fact::SysfsNet { entries })
    }

    // ---- user ----

    fn id_map(&mut self, ids: IdKind) -> Result<Fact, ProbeError> {
        let file = match ids {
            IdKind::Uid => "self/uid_map",
            IdKind::Gid => "self/gid_map",
        };
        let text = self.read_proc(file)?;
        let lines = sys::parse_id_map(&text)
            .ok_or_else(|| ProbeError::Protocol(format!("unparsable /proc/{file}: {text:?}")))?;
        Ok(Fact::IdMap { ids, lines })
    }

    fn file_owner(&mut self) -> Result<Fact, ProbeError> {
        let name = format!("owner-{}-{}", getpid(), sys::clock_gettime_vdso(libc::CLOCK_MONOTONIC).unwrap_or(0));
        let path = format!("{}/{name}", self.case.sentinels.user.scratch_dir);
        File::create(&path).ctx(|| format!("create {path}"))?;
        let asked = self.ch.ask(HostQuestion::ScratchFileOwner { name });
        fs::remove_file(&path).ctx(|| format!("remove {path}"))?;
        match asked? {
            HostAnswer::Owner { uid, gid } => Ok(Fact::FileOwner { uid, gid }),
            other => Err(unexpected(other, "stat the probe's file")),
        }
    }

    // ---- cgroup ----

    fn cgroup(&mut self) -> Result<Fact, ProbeError> {
        let text = self.read_proc("self/cgroup")?;
        Ok(Fact::Cgroup { lines: text.lines().map(str::to_owned).collect() })
    }

    // ---- time ----

    /// Brackets the host's reading between two of the probe's own, so the offset is known to lie
    /// in `[before - host, after - host]` with no tolerance to choose.
    fn clock_offset(&mut self, clock: ClockKind, source: ClockSource) -> Result<Fact, ProbeError> {
        let id = match clock {
            ClockKind::Monotonic => libc::CLOCK_MONOTONIC,
            ClockKind::Boottime => libc::CLOCK_BOOTTIME,
        };
        // /proc/uptime prints centiseconds, truncated: the true value is up to 10 ms above it.
        let (read, resolution): (&dyn Fn() -> Result<i64, ProbeError>, i64) = match source {
            ClockSource::Vdso => (&|| sys::clock_gettime_vdso(id).ctx(|| "clock_gettime".into()), 0),
            ClockSource::Syscall => (&|| sys::clock_gettime_syscall(id).ctx(|| "clock_gettime syscall".into()), 0),
            ClockSource::ProcUptime => (&|| proc_uptime_ns(&self.dirs.proc), 10_000_000),
        };
        let before = read()?;
        let answer = self.ch.ask(HostQuestion::Clock { clock })?;
        let after = read()?;
        let host = match answer {
            HostAnswer::ClockNs { ns } => ns,
            other => return Err(unexpected(other, "read the host clock")),
        };
        Ok(Fact::ClockOffset { clock, source, lo_ns: before - host, hi_ns: after + resolution - host })
    }
}

fn proc_uptime_ns(proc: &OwnedFd) -> Result<i64, ProbeError> {
    let text = read_at(proc, "uptime").ctx(|| "read /proc/uptime".into())?;
    parse_uptime_ns(&text).ok_or_else(|| ProbeError::Protocol(format!("unparsable /proc/uptime: {text:?}")))
}

/// The first field of /proc/uptime ("12345.67 ...") in nanoseconds.
fn parse_uptime_ns(text: &str) -> Option<i64> {
    let first = text.split_ascii_whitespace().next()?;
    let (secs, frac) = first.split_once('.')?;
    let secs: i64 = secs.parse().ok()?;
    let frac_ns: i64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    Some(secs * 1_000_000_000 + frac_ns)
}

fn read_at(dir: &OwnedFd, path: &str) -> std::io::Result<String> {
    let fd = openat(dir, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, FileMode::empty())?;
    let mut s = String::new();
    File::from(fd).read_to_string(&mut s)?;
    Ok(s)
}

/// The entry names of an open directory, without `.` and `..`.
fn list_dir(fd: &OwnedFd) -> nix::Result<Vec<String>> {
    let mut dir = nix::dir::Dir::from_fd(nix::unistd::dup(fd)?)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn expect_ack(a: HostAnswer, what: &str) -> Result<(), ProbeError> {
    match a {
        HostAnswer::Ack => Ok(()),
        other => Err(unexpected(other, what)),
    }
}

fn expect_seen(a: HostAnswer, what: &str) -> Result<bool, ProbeError> {
    match a {
        HostAnswer::Seen { seen } => Ok(seen),
        other => Err(unexpected(other, what)),
    }
}

fn unexpected(a: HostAnswer, what: &str) -> ProbeError {
    match a {
        HostAnswer::Failed { error } => ProbeError::Protocol(format!("the host could not {what}: {error}")),
        HostAnswer::Unavailable { reason } => ProbeError::Protocol(format!("the host cannot {what}: {reason}")),
        other => ProbeError::Protocol(format!("unexpected answer when asking the host to {what}: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_parses_centiseconds() {
        assert_eq!(parse_uptime_ns("12345.67 2345.10\n"), Some(12_345_670_000_000));
        assert_eq!(parse_uptime_ns("garbage"), None);
    }
}
