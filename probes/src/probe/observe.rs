//! The observations: each one looks at one thing from inside and reports the raw evidence as a
//! [`Fact`]. An observation that cannot be made becomes [`Fact::Unobservable`] with its key, so the
//! harness reports an error for that check instead of guessing.
//!
//! Observations that create something (a domainname, a mount, IPC objects, a file) remove it again
//! before the next one starts, and ask the host to look while it exists. Those that change a
//! namespace's state (the domainname, a mount) first ask the [`Interlock`]: in a namespace that
//! is the harness's they make the same call in a form the kernel refuses after its permission
//! check and before any change, which tells whether the step would have been permitted.
//!
//! "Not there" is only ever the errno that means it (ENOENT, ESRCH, ECONNREFUSED): any other
//! error is reported as it is, and the harness judges it an error, never isolation.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{AtFlags, OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, UnixAddr, connect, socket};
use nix::sys::stat::{Mode as FileMode, fstatat};
use nix::sys::utsname::uname;
use nix::unistd::{Pid, chdir, chroot, fchdir, getpid, getppid, sethostname};

use crate::ns::NsKind;
use crate::sys::{self, SysvKind};
use crate::sysctl;
use crate::text;
use crate::wire::{
    Attempt, ClockKind, ClockSource, Fact, HostAnswer, HostQuestion, IdKind, IpcNames, IpcSeen, NsId, ProbeCase,
    SysResult, fact_key,
};

use super::channel::{Ahead, Channel};
use super::error::{Context, ProbeError};
use super::init::Dirs;
use super::interlock::Interlock;
use super::mounts;
use super::sysctls;

/// One byte more than a hostname or domainname may have (__NEW_UTS_LEN is 64): sethostname(2)
/// and setdomainname(2) refuse it with EINVAL, after their CAP_SYS_ADMIN check (EPERM).
const UTS_NAME_TOO_LONG: &str = "isoprobe-interlock-probe-a-name-one-byte-longer-than-the-kernel-takes";

/// Two propagation types at once: mount(2) refuses that with EINVAL in its propagation change
/// (`do_change_type`: the target is not a mount root, and no single type is named), after its own
/// permission check (`may_mount`: EPERM), and before anything changes. Unlike an invalid
/// filesystem option (tmpfs's "Bad value for 'size'") it writes no kernel log line: the probe ran
/// once per case, and each such line went to the console (printk at KERN_ERR), costing the host
/// its log and the case milliseconds on a serial console.
pub(super) const INVALID_PROPAGATION: MsFlags = MsFlags::MS_SHARED.union(MsFlags::MS_PRIVATE);

pub struct Observer<'a> {
    ch: &'a mut Channel,
    case: &'a ProbeCase,
    dirs: &'a Dirs,
    interlock: &'a Interlock,
    /// The probe's own namespaces, as its identity observations found them.
    own: BTreeMap<NsKind, NsId>,
    /// The task id of the chroot escape's thread and ns_last_pid read right after it started
    /// (the probe's one new task of every case serves both).
    new_task: Option<(i32, Result<Option<i32>, ProbeError>)>,
}

impl<'a> Observer<'a> {
    pub fn new(ch: &'a mut Channel, case: &'a ProbeCase, dirs: &'a Dirs, interlock: &'a Interlock) -> Self {
        Observer { ch, case, dirs, interlock, own: BTreeMap::new(), new_task: None }
    }

    /// The probe's `kind` namespace if it is the harness's (or could not be read, which the
    /// interlock treats alike): state-changing steps in it are refused.
    fn shared_ns(&self, kind: NsKind) -> Option<NsId> {
        match self.own.get(&kind) {
            Some(own) => self.interlock.shared(own).then_some(*own),
            None => Some(self.interlock.harness(kind).unwrap_or(NsId { kind, dev: 0, ino: 0 })),
        }
    }
    /// Runs every observation in a fixed order and reports each.
    pub fn run_all(&mut self) -> Result<(), ProbeError> {
        // The host's sentinel mount needs nothing the probe does before it looks (its init is
        // done): asked first, ahead, while the probe makes the observations that ask nothing,
        // and its answer read before the next question.
        let sentinel = self.ch.ask_ahead(vec![HostQuestion::MountSentinel])?;
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
        let r = self.host_pid_net();
        self.report(fact_key::HOST_PID_NET.into(), r)?;
        let r = self.hostname();
        self.report("hostname".into(), r)?;
        let mounted = next_answer(&mut self.ch.answers(sentinel)?.into_iter(), "mount the sentinel")?;
        let r = self.domainname();
        self.report("domainname".into(), r)?;
        let r = self.sethostname_probe();
        self.report("sethostname-probe".into(), r)?;
        let look = self.ask_sentinel_and_own_mount(mounted)?;
        // The host's unmount and look are answered while the probe goes on with the steps up to
        // its next question, which need neither; a mount case asks at once.
        let case = self.case;
        let look = match &case.sentinels.mnt.mounts {
            Some(m) => {
                self.report_mount_look(look)?;
                let shared = self.shared_ns(NsKind::Mnt);
                for (key, r) in mounts::observe(self.ch, m, &case.sentinels.mnt.marker_token, shared) {
                    self.report(key, r)?;
                }
                None
            }
            None => Some(look),
        };
        let r = self.host_marker();
        self.report("host-marker".into(), r)?;
        let r = self.chroot_escape();
        self.report("chroot-escape".into(), r)?;
        let r = self.ns_last_pid();
        self.report(fact_key::NS_LAST_PID.into(), r)?;
        let r = self.host_ipc();
        self.report("host-ipc".into(), r)?;
        if let Some(look) = look {
            self.report_mount_look(look)?;
        }
        // The host's clocks are read with its look at the probe's IPC objects and file: one
        // round trip less (issue 17); the clocks' windows stay the reads around the answers.
        let monotonic = [ClockSource::Vdso, ClockSource::Syscall];
        let boottime = [ClockSource::Vdso, ClockSource::Syscall, ClockSource::ProcUptime];
        let clocks = [(ClockKind::Monotonic, &monotonic[..]), (ClockKind::Boottime, &boottime[..])];
        let (owned, clock_offsets) = self.own_ipc_file_and_clocks(&clocks)?;
        for (key, r) in owned {
            self.report(key, r)?;
        }
        let r = self.abstract_socket();
        self.report("abstract-socket".into(), r)?;
        let r = self.tcp_loopback();
        self.report("tcp-loopback".into(), r)?;
        let r = sys::netlink_links().ctx(|| "dump links over netlink".into()).map(|links| Fact::Links { links });
        self.report("links".into(), r)?;
        let r = self.sysfs_net();
        self.report("sysfs-net".into(), r)?;
        let r = self.proc_net();
        self.report(fact_key::PROC_NET.into(), r)?;
        for ids in [IdKind::Uid, IdKind::Gid] {
            let r = self.id_map(ids);
            self.report(fact_key::id_map(ids), r)?;
        }
        let r = self.cgroup();
        self.report("cgroup".into(), r)?;
        for (clock, source, r) in clock_offsets {
            self.report(fact_key::clock(clock, source), r)?;
        }
        // Last: a holder puts its values back, but the others leave theirs in their namespaces.
        let setup = sysctls::Setup {
            proc: &self.dirs.proc,
            kinds: sysctl::KINDS.into_iter().map(|k| (k, self.shared_ns(k))).collect(),
            token: &self.case.sentinels.uts.domainname_token,
            restore: self.case.hold,
            stripe: self.case.sysctl_stripe,
            globals: &self.case.global_sysctls,
            net_entries: self.case.net_sysctls.as_deref(),
        };
        for fact in sysctls::observe(self.ch, &setup)? {
            self.ch.fact(fact)?;
        }
        Ok(())
    }

    /// Reads the host's answers of [`Observer::ask_sentinel_and_own_mount`] and reports both facts.
    fn report_mount_look(&mut self, look: MountLook) -> Result<(), ProbeError> {
        for (key, r) in self.sentinel_and_own_mount(look)? {
            self.report(key, r)?;
        }
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

    /// Reads the probe's own /proc/self/<path>.
    fn read_self(&self, path: &str) -> Result<String, ProbeError> {
        read_at(&self.dirs.self_proc, &format!("self/{path}")).ctx(|| format!("read /proc/self/{path}"))
    }

    // ---- identity and pid ----

    fn ns_identity(&mut self, kind: NsKind) -> Result<Fact, ProbeError> {
        let path = format!("self/ns/{kind}");
        let st = fstatat(&self.dirs.self_proc, path.as_str(), AtFlags::empty()).ctx(|| format!("stat /proc/{path}"))?;
        self.own.insert(kind, NsId { kind, dev: st.st_dev, ino: st.st_ino });
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
        let foreign = self.dirs.proc_foreign;
        match read_at(&self.dirs.proc, &format!("{}/cmdline", s.pid)) {
            Ok(cmdline) => {
                Ok(Fact::ProcSentinel { listed: true, tagged: cmdline.split('\0').any(|a| a == s.tag), foreign })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Fact::ProcSentinel { listed: false, tagged: false, foreign })
            }
            Err(e) => Err(ProbeError::Io { what: format!("read /proc/{}/cmdline", s.pid), source: e }),
        }
    }

    /// The host sentinel's /proc/<pid>/net/unix: a process's `net` directory shows that
    /// process's network namespace (get_proc_task_net in fs/proc/proc_net.c), so a /proc that lists
    /// a host process shows the host's sockets, whatever the probe's own network namespace.
    fn host_pid_net(&mut self) -> Result<Fact, ProbeError> {
        let s = &self.case.sentinels.pid;
        let foreign = self.dirs.proc_foreign;
        let path = format!("{}/net/unix", s.pid);
        match read_at(&self.dirs.proc, &path) {
            Ok(text) => Ok(Fact::HostPidNet {
                listed: true,
                lists_socket: lists_abstract(&text, &self.case.sentinels.net.abstract_name),
                foreign,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Fact::HostPidNet { listed: false, lists_socket: false, foreign })
            }
            Err(e) => Err(ProbeError::Io { what: format!("read /proc/{path}"), source: e }),
        }
    }

    /// /proc/sys/kernel/ns_last_pid as the chroot escape's thread left it (see [`Self::new_task`]).
    fn ns_last_pid(&mut self) -> Result<Fact, ProbeError> {
        match self.new_task.take() {
            Some((child, last_pid)) => Ok(Fact::NsLastPid { child, last_pid: last_pid? }),
            None => Err(ProbeError::Io {
                what: "read ns_last_pid after a new task".into(),
                source: std::io::Error::other("the chroot escape started no thread"),
            }),
        }
    }

    /// /proc/sys/kernel/ns_last_pid in the probe's /proc; `None` when the kernel has none.
    fn read_ns_last_pid(&self) -> Result<Option<i32>, ProbeError> {
        let what = || "read /proc/sys/kernel/ns_last_pid".to_owned();
        match read_at(&self.dirs.proc, "sys/kernel/ns_last_pid") {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| ProbeError::Io {
                what: what(),
                source: std::io::Error::other(format!("not a pid: {text:?}")),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProbeError::Io { what: what(), source: e }),
        }
    }

    // ---- uts ----

    fn hostname(&mut self) -> Result<Fact, ProbeError> {
        let u = uname().ctx(|| "uname".into())?;
        Ok(Fact::Hostname { hostname: u.nodename().to_string_lossy().into_owned() })
    }

    fn domainname(&mut self) -> Result<Fact, ProbeError> {
        if let Some(shared) = self.shared_ns(NsKind::Uts) {
            // Never the harness's domainname: only whether setting it would be permitted.
            let probe = sys::setdomainname(UTS_NAME_TOO_LONG).into();
            return Ok(Fact::Domainname { attempt: Attempt::Refused { shared, probe }, host_saw_token: false });
        }
        let token = self.case.sentinels.uts.domainname_token.clone();
        expect_ack(self.ch.ask(HostQuestion::LockDomainname)?, "lock the host domainname")?;
        let result: SysResult = sys::setdomainname(&token).into();
        // Always ask: the host restores its domainname and releases the lock on this answer.
        let seen = expect_seen(self.ch.ask(HostQuestion::CheckDomainname { token })?, "check the domainname")?;
        Ok(Fact::Domainname { attempt: Attempt::Made { result }, host_saw_token: seen })
    }

    /// Whether the probe holds CAP_SYS_ADMIN over the uts namespace it is in, asked without
    /// changing anything (see [`UTS_NAME_TOO_LONG`]).
    fn sethostname_probe(&mut self) -> Result<Fact, ProbeError> {
        Ok(Fact::SethostnameProbe { result: sethostname(UTS_NAME_TOO_LONG).into() })
    }

    // ---- mnt ----

    /// The host's sentinel mount, made after the container's start, as the probe sees it; then
    /// the probe's own mount, as the host sees it. The host's check and unmount of its sentinel
    /// and its look for the probe's mount are asked together, ahead (`Channel::ask_ahead`):
    /// neither depends on the other, the probe's mount is made before either is asked, and the
    /// probe needs neither answer until [`Observer::sentinel_and_own_mount`], so one round trip
    /// serves both and the probe does not wait for the host's unmount (an RCU grace period).
    ///
    /// `mounted`: the host's answer to [`HostQuestion::MountSentinel`] (asked at the start).
    fn ask_sentinel_and_own_mount(&mut self, mounted: HostAnswer) -> Result<MountLook, ProbeError> {
        let m = &self.case.sentinels.mnt;
        let path = format!("{}/marker", m.sentinel_mount);
        // What the probe read there, or why the host could not mount it.
        let seen = match mounted {
            HostAnswer::Ack => Ok(text::read(&path)),
            HostAnswer::Unavailable { reason } => Err(reason),
            other => return Err(unexpected(other, "mount the sentinel")),
        };
        let target = self.case.sentinels.mnt.own_mount.clone();
        let attempt = match self.shared_ns(NsKind::Mnt) {
            // Never a mount in the harness's table: only whether it would be permitted.
            Some(shared) => {
                let probe = mount(None::<&str>, target.as_str(), None::<&str>, INVALID_PROPAGATION, None::<&str>);
                if probe.is_ok() {
                    // Not expected of any kernel; leave nothing behind all the same.
                    let _ = umount2(target.as_str(), MntFlags::MNT_DETACH);
                }
                Attempt::Refused { shared, probe: probe.into() }
            }
            None => {
                let r = mount(Some("isoprobe"), target.as_str(), Some("tmpfs"), MsFlags::empty(), Some("size=64k"));
                Attempt::Made { result: r.into() }
            }
        };
        // The host answers the first after checking that its mount was still there while the
        // probe looked.
        let questions = match seen {
            Ok(_) => vec![HostQuestion::UnmountSentinel, HostQuestion::OwnMountVisible],
            Err(_) => vec![HostQuestion::OwnMountVisible],
        };
        let ahead = self.ch.ask_ahead(questions);
        // A failed unmount is the own mount's error, as any failure of that observation. In a
        // mount namespace that ends with the probe, the mount is left to that end unless the host
        // saw it (see `sentinel_and_own_mount`): an unmount waits for an RCU grace period (an
        // expedited one: IPIs to every CPU), and the namespace's end waits for one however many
        // mounts it drops.
        let made = matches!(attempt, Attempt::Made { result: SysResult::Ok });
        let late = made && self.case.ends_with_probe;
        let unmounted = if made && !late { unmount(&target) } else { Ok(()) };
        let ahead = match ahead {
            Ok(ahead) => ahead,
            Err(e) => {
                // The host may never look: unmounted all the same.
                if late {
                    let _ = unmount(&target);
                }
                return Err(e);
            }
        };
        Ok(MountLook { ahead, path, seen, target, attempt, late, unmounted })
    }

    /// The facts of [`Observer::ask_sentinel_and_own_mount`], once the host's answers are in.
    fn sentinel_and_own_mount(&mut self, look: MountLook) -> Result<[Keyed; 2], ProbeError> {
        let MountLook { ahead, path, seen, target, attempt, late, mut unmounted } = look;
        let asked = self.ch.answers(ahead);
        let mut answers = match asked {
            Ok(answers) => answers.into_iter(),
            Err(e) => {
                // Whether the host saw it is unknown: unmounted all the same.
                if late {
                    let _ = unmount(&target);
                }
                return Err(e);
            }
        };
        let token = &self.case.sentinels.mnt.marker_token;
        let sentinel = match seen {
            Err(reason) => Ok(Fact::SentinelMount { visible: None, detail: reason }),
            Ok(seen) => next_answer(&mut answers, "unmount the sentinel")
                .and_then(|a| expect_ack(a, "unmount the sentinel"))
                .and_then(|()| match seen {
                    Ok(text) if text.trim() == token => Ok(Fact::SentinelMount {
                        visible: Some(true),
                        detail: format!("{path} holds the host's token"),
                    }),
                    Ok(text) => Ok(Fact::SentinelMount {
                        visible: Some(false),
                        detail: format!("{path} holds {:?}, not the host's token", text.trim()),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(Fact::SentinelMount { visible: Some(false), detail: format!("{path}: {e}") })
                    }
                    Err(e) => Err(ProbeError::Io { what: format!("read {path}"), source: e }),
                }),
        };
        let seen = next_answer(&mut answers, "check the probe's mount")
            .and_then(|a| expect_seen(a, "check the probe's mount"));
        if unmount_after_look(late, &seen) {
            unmounted = unmount(&target);
        }
        let own = seen.and_then(|seen| unmounted.map(|()| Fact::OwnMount { attempt, host_saw: seen }));
        Ok([("sentinel-mount".into(), sentinel), ("own-mount".into(), own)])
    }

    fn host_marker(&mut self) -> Result<Fact, ProbeError> {
        let m = &self.case.sentinels.mnt;
        Ok(match text::read(&m.host_marker) {
            Ok(t) if t.trim() == m.marker_token => {
                Fact::HostMarker { reachable: Some(true), detail: format!("{} holds the host's token", m.host_marker) }
            }
            Ok(t) => {
                Fact::HostMarker { reachable: Some(false), detail: format!("{} holds {:?}", m.host_marker, t.trim()) }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Fact::HostMarker { reachable: Some(false), detail: format!("{}: {e}", m.host_marker) }
            }
            Err(e) => Fact::HostMarker { reachable: None, detail: format!("{}: {e}", m.host_marker) },
        })
    }

    /// Where the probe's mount table still holds the host's root (`maj:min root` of the hello),
    /// if anywhere: after pivot_root and the detach of the old root, nowhere.
    fn old_root_mount(&self) -> Result<Option<String>, ProbeError> {
        let want = self.case.sentinels.mnt.host_root.as_str();
        if want.is_empty() {
            return Ok(None);
        }
        let table = self.read_self("mountinfo")?;
        Ok(table.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 4 && format!("{} {}", f[2], f[3]) == want).then(|| f[4].to_owned())
        }))
    }

    /// The classic escape from a chroot: keep a directory fd of the current root, chroot into a
    /// subdirectory, fchdir back out through the fd (now above the root), climb with chdir("..")
    /// until `..` is `.` (the top of the mount tree), and chroot(".") there. It works because a
    /// chroot only changes the root path lookups stop at; it does not change the mount tree. Run
    /// on a thread with a root of its own, so the probe keeps its root.
    fn chroot_escape(&mut self) -> Result<Fact, ProbeError> {
        /// A bound on the climb (a path has far fewer levels); reaching it is a failed step.
        const CLIMB_MAX: usize = 4096;
        /// The climbing thread's stack: its calls need a few KiB (paths are read into the heap).
        const CLIMB_STACK: usize = 256 * 1024;
        let m = &self.case.sentinels.mnt;
        let root = open("/", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty())
            .ctx(|| "open /".into())?;
        // The climb runs on a thread of its own with a private copy of the probe's root and
        // working directory (unshare(CLONE_FS)): a chroot there moves no other thread's root,
        // and the thread costs a fraction of the fork it replaces (whose page-table copy and
        // copy-on-write faults of the probe's static image made this the slowest observation).
        // Its codes: 0 reached the host marker, 1 did not, 2+ a step failed.
        let climb = || {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).is_err() {
                return 7;
            }
            if chroot(m.escape_dir.as_str()).is_err() {
                return 2;
            }
            if fchdir(&root).is_err() {
                return 3;
            }
            let id = |p: &str| nix::sys::stat::stat(p).map(|s| (s.st_dev, s.st_ino));
            let mut climbed = 0;
            loop {
                match (id("."), id("..")) {
                    (Ok(here), Ok(up)) if here == up => break,
                    (Ok(_), Ok(_)) if climbed < CLIMB_MAX && chdir("..").is_ok() => climbed += 1,
                    _ => return 4,
                }
            }
            if chroot(".").is_err() {
                return 5;
            }
            match text::read(&m.host_marker) {
                Ok(t) if t.trim() == m.marker_token => 0,
                Ok(_) => 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
                Err(_) => 6,
            }
        };
        // A stack of CLIMB_STACK instead of the default 2 MiB: with it and one malloc arena
        // (`sys::one_malloc_arena`) the observation took 173 µs instead of 201 (medians over the
        // namespace matrix, `-j 1`, four runs of each alternated, this machine; issue 17).
        let thread = std::thread::Builder::new().name("chroot-escape".into()).stack_size(CLIMB_STACK);
        let (code, task, last_pid) = std::thread::scope(|s| {
            let climber = thread.spawn_scoped(s, || {
                // The thread is the probe's one new task of the case: its id came from the
                // probe's pid namespace, and nothing else there can take one before this read.
                let task = nix::unistd::gettid().as_raw();
                let last_pid = self.read_ns_last_pid();
                (climb(), task, last_pid)
            });
            climber.map(|t| t.join())
        })
        .ctx(|| "start the chroot-escape thread".into())?
        .map_err(|_| ProbeError::Protocol("the chroot-escape thread panicked".into()))?;
        self.new_task = Some((task, last_pid));
        let old_root_mount = self.old_root_mount()?;
        let steps = format!("chroot({}), fchdir(old root), chdir(\"..\") to the top, chroot(\".\")", m.escape_dir);
        let (reached_host, detail) = match code {
            0 => (Some(true), format!("{steps}: {} readable with the host's token", m.host_marker)),
            1 => (Some(false), format!("{steps}: {} not reachable", m.host_marker)),
            6 => (None, format!("{steps}: reading {} failed with an error other than ENOENT", m.host_marker)),
            7 => (None, "not attempted: unshare(CLONE_FS) for a root of the climb's own failed".into()),
            n => {
                let step = ["chroot into the escape dir", "fchdir", "chdir(\"..\")", "chroot(\".\")"]
                    [(n as usize).saturating_sub(2).min(3)];
                (None, format!("not attempted: {step} failed"))
            }
        };
        Ok(Fact::ChrootEscape { reached_host, detail, old_root_mount })
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

    /// The probe's own IPC objects, and the owner of a file it creates in the scratch directory,
    /// each as the host sees it, and the clocks' offsets from the host's ([`ClockReads`]). The
    /// host's two looks and its clock reads are asked together (`Channel::ask_all`): none depends
    /// on another, and both objects are made before either is asked, so one round trip serves all
    /// three.
    fn own_ipc_file_and_clocks(
        &mut self,
        clocks: &[(ClockKind, &[ClockSource])],
    ) -> Result<([Keyed; 2], Vec<ClockFact>), ProbeError> {
        let n: IpcNames = self.case.sentinels.ipc.own.clone();
        let shm = sys::sysv_create(SysvKind::Shm, n.shm_key, 0o600);
        let sem = sys::sysv_create(SysvKind::Sem, n.sem_key, 0o600);
        let msg = sys::sysv_create(SysvKind::Msg, n.msg_key, 0o600);
        let mq = sys::mq_create(&n.mq_name, 0o600);
        let created = IpcSeen { shm: shm.is_ok(), sem: sem.is_ok(), msg: msg.is_ok(), mq: mq.is_ok() };
        let name = format!("owner-{}-{}", getpid(), sys::clock_gettime_vdso(libc::CLOCK_MONOTONIC).unwrap_or(0));
        let path = format!("{}/{name}", self.case.sentinels.user.scratch_dir);
        let file = File::create(&path).map(drop).ctx(|| format!("create {path}"));
        let mut questions = vec![HostQuestion::OwnIpcVisible];
        if file.is_ok() {
            questions.push(HostQuestion::ScratchFileOwner { name });
        }
        let reads = ClockReads::before(&self.dirs.proc, clocks);
        questions.push(reads.question());
        let asked = self.ch.ask_all(questions);
        let reads = reads.after(&self.dirs.proc);
        // Remove before looking at the answers, so a protocol error leaves nothing behind.
        let mut cleanup = Vec::new();
        for (kind, id) in [(SysvKind::Shm, shm), (SysvKind::Sem, sem), (SysvKind::Msg, msg)] {
            if let Ok(id) = id {
                cleanup.push(sys::sysv_remove(kind, id));
            }
        }
        if mq.is_ok() {
            cleanup.push(sys::mq_remove(&n.mq_name).map(drop));
        }
        let file = file.and_then(|()| fs::remove_file(&path).ctx(|| format!("remove {path}")));
        let mut answers = asked?.into_iter();
        let ipc = match next_answer(&mut answers, "check the probe's IPC objects")? {
            HostAnswer::Ipc { seen } => seen,
            other => return Err(unexpected(other, "check the probe's IPC objects")),
        };
        let ipc = match cleanup.into_iter().find(Result::is_err) {
            Some(Err(e)) => Err(ProbeError::Sys { what: "remove the probe's IPC objects".into(), source: e }),
            _ => {
                // An object the kernel refused to create is reported as such (e.g. EOVERFLOW: a
                // creator whose uid the IPC namespace's user namespace does not map), not as a
                // broken protocol.
                let failed: Vec<String> =
                    [("shm", shm.err()), ("sem", sem.err()), ("msg", msg.err()), ("mq", mq.err())]
                        .into_iter()
                        .filter_map(|(what, e)| e.map(|e| format!("{what}: {e}")))
                        .collect();
                Ok(Fact::OwnIpc { created, host_saw: ipc, failed })
            }
        };
        let owner = file.and_then(|()| match next_answer(&mut answers, "stat the probe's file")? {
            HostAnswer::Owner { uid, gid } => Ok(Fact::FileOwner { uid, gid }),
            other => Err(unexpected(other, "stat the probe's file")),
        });
        let clocks = reads.facts(next_answer(&mut answers, "read the host clocks"))?;
        Ok(([("own-ipc".into(), ipc), ("file-owner".into(), owner)], clocks))
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
        let fd = self.dirs.sys_net.as_ref().ok_or_else(|| ProbeError::Io {
            what: "list /sys/class/net".into(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no /sys/class/net in this root (see the init steps)",
            ),
        })?;
        let mut entries = list_dir(fd).ctx(|| "list /sys/class/net".into())?;
        entries.sort();
        Ok(Fact::SysfsNet { entries })
    }

    /// /proc/net, the symlink `self/net` (proc_net_init in fs/proc/proc_net.c): the network
    /// namespace of the task `self` names, the reader, whoever mounted the /proc. Read through the
    /// /proc where `self` is this probe (a joiner's own, see [`Dirs::self_proc`]).
    fn proc_net(&mut self) -> Result<Fact, ProbeError> {
        let unix = read_at(&self.dirs.self_proc, "net/unix").ctx(|| "read /proc/net/unix".into())?;
        let dev = read_at(&self.dirs.self_proc, "net/dev").ctx(|| "read /proc/net/dev".into())?;
        let mut dev: Vec<String> =
            dev.lines().skip(2).filter_map(|l| Some(l.split_once(':')?.0.trim().to_owned())).collect();
        dev.sort();
        Ok(Fact::ProcNet { unix_lists_socket: lists_abstract(&unix, &self.case.sentinels.net.abstract_name), dev })
    }

    // ---- user ----

    fn id_map(&mut self, ids: IdKind) -> Result<Fact, ProbeError> {
        let file = match ids {
            IdKind::Uid => "self/uid_map",
            IdKind::Gid => "self/gid_map",
        };
        let text = self.read_self(file.trim_start_matches("self/"))?;
        let lines = sys::parse_id_map(&text)
            .ok_or_else(|| ProbeError::Protocol(format!("unparsable /proc/{file}: {text:?}")))?;
        Ok(Fact::IdMap { ids, lines })
    }

    // ---- cgroup ----

    fn cgroup(&mut self) -> Result<Fact, ProbeError> {
        let text = self.read_self("cgroup")?;
        Ok(Fact::Cgroup { lines: text.lines().map(str::to_owned).collect() })
    }
}

/// Whether a probe's own mount left up for its namespace's end (`late`) must come down now, the
/// host's look at it being `seen`: when the host saw it, or could not say. A mount the host saw
/// came through a propagation the host shares, and the unmount goes back the same way, so that
/// the host is left as it was.
fn unmount_after_look(late: bool, seen: &Result<bool, ProbeError>) -> bool {
    late && !matches!(seen, Ok(false))
}

/// The probe's own mount, unmounted (`MNT_DETACH`).
fn unmount(target: &str) -> Result<(), ProbeError> {
    umount2(target, MntFlags::MNT_DETACH).ctx(|| format!("unmount {target}"))
}

/// What [`Observer::ask_sentinel_and_own_mount`] keeps until the host's answers are read.
struct MountLook {
    ahead: Ahead,
    /// The sentinel's marker path.
    path: String,
    /// What the probe read at `path`, or why the host could not mount the sentinel.
    seen: Result<std::io::Result<String>, String>,
    /// The probe's own mount point.
    target: String,
    attempt: Attempt,
    /// The probe's mount is up, left to the end of its namespace unless the host saw it.
    late: bool,
    /// The unmount made at once (any but a late one).
    unmounted: Result<(), ProbeError>,
}

/// One clock offset fact, by clock and source.
type ClockFact = (ClockKind, ClockSource, Result<Fact, ProbeError>);

/// The probe's reads of its clocks around the host's ([`HostQuestion::Clocks`]): brackets the
/// host's reading of each clock between two of the probe's own, from each of its sources, so each
/// offset is known to lie in `[before - host, after - host]` with no tolerance to choose. One
/// question serves every clock and source: the reads nest around it (the first before is the last
/// after), so each bracket still holds the host's reading, a few microseconds wider than a bracket
/// of its own, for one round trip to the host instead of one per clock or per source. The question
/// goes with the host's look at the probe's IPC objects and file (asked before it in the same
/// write), which widens each bracket by that look (some 10 µs) and saves a round trip more.
///
/// A source whose read fails is that source's fact; a failed question, every source's.
/// `Err` only when the conversation itself broke.
struct ClockReads<'c> {
    clocks: &'c [(ClockKind, &'c [ClockSource])],
    /// (index into `clocks`, clock, source), in reading order.
    reads: Vec<(usize, ClockKind, ClockSource)>,
    before: Vec<Result<i64, ProbeError>>,
    after: Vec<Result<i64, ProbeError>>,
}

impl<'c> ClockReads<'c> {
    fn read(proc: &OwnedFd, clock: ClockKind, source: ClockSource) -> Result<i64, ProbeError> {
        let id = sys::clock_id(clock);
        match source {
            ClockSource::Vdso => sys::clock_gettime_vdso(id).ctx(|| "clock_gettime".into()),
            ClockSource::Syscall => sys::clock_gettime_syscall(id).ctx(|| "clock_gettime syscall".into()),
            ClockSource::ProcUptime => proc_uptime_ns(proc),
        }
    }

    /// Reads every source, right before the question is sent.
    fn before(proc: &OwnedFd, clocks: &'c [(ClockKind, &'c [ClockSource])]) -> Self {
        let reads: Vec<(usize, ClockKind, ClockSource)> = clocks
            .iter()
            .enumerate()
            .flat_map(|(i, (clock, sources))| sources.iter().map(move |s| (i, *clock, *s)))
            .collect();
        let before = reads.iter().map(|(_, c, s)| Self::read(proc, *c, *s)).collect();
        ClockReads { clocks, reads, before, after: Vec::new() }
    }

    /// The question for the host's reads.
    fn question(&self) -> HostQuestion {
        HostQuestion::Clocks { clocks: self.clocks.iter().map(|(c, _)| *c).collect() }
    }

    /// Reads every source again, right after the answers arrived.
    fn after(mut self, proc: &OwnedFd) -> Self {
        let mut after: Vec<Result<i64, ProbeError>> =
            self.reads.iter().rev().map(|(_, c, s)| Self::read(proc, *c, *s)).collect();
        after.reverse();
        self.after = after;
        self
    }

    /// The offset of each source from the host's clock: a broken conversation ends the probe
    /// (`Err`), anything else is each source's unobservable fact, as `Observer::report` does with
    /// the error of a question of its own.
    fn facts(self, answer: Result<HostAnswer, ProbeError>) -> Result<Vec<ClockFact>, ProbeError> {
        // /proc/uptime prints centiseconds, truncated: the true value is up to 10 ms above it.
        let resolution = |source: ClockSource| if source == ClockSource::ProcUptime { 10_000_000 } else { 0 };
        let host: Result<Vec<i64>, String> = match answer {
            Ok(HostAnswer::ClocksNs { ns }) if ns.len() == self.clocks.len() => Ok(ns),
            Ok(other) => return Err(unexpected(other, "read the host clocks")),
            Err(e @ ProbeError::Protocol(_)) => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        let mut out = Vec::new();
        for (((i, clock, source), before), after) in self.reads.into_iter().zip(self.before).zip(self.after) {
            let fact = match (&host, before, after) {
                (Ok(host), Ok(before), Ok(after)) => Ok(Fact::ClockOffset {
                    clock,
                    source,
                    lo_ns: before - host[i],
                    hi_ns: after + resolution(source) - host[i],
                }),
                (Err(e), _, _) => Err(ProbeError::Io {
                    what: "ask the host's clocks".into(),
                    source: std::io::Error::other(e.clone()),
                }),
                (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            };
            out.push((clock, source, fact));
        }
        Ok(out)
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

/// Whether a /proc/<pid>/net/unix listing holds a socket bound to the abstract `name`: its last
/// field (`Path`, the eighth) is `@name` (the kernel prints an abstract name's leading NUL as `@`).
fn lists_abstract(table: &str, name: &str) -> bool {
    let want = format!("@{name}");
    table.lines().skip(1).any(|l| l.split_ascii_whitespace().nth(7) == Some(want.as_str()))
}

fn read_at(dir: &OwnedFd, path: &str) -> std::io::Result<String> {
    text::read_at(dir, path)
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

/// An observation's fact or error under its key, as [`Observer::report`] takes them.
type Keyed = (String, Result<Fact, ProbeError>);

pub(super) fn expect_ack(a: HostAnswer, what: &str) -> Result<(), ProbeError> {
    match a {
        HostAnswer::Ack => Ok(()),
        other => Err(unexpected(other, what)),
    }
}

pub(super) fn expect_seen(a: HostAnswer, what: &str) -> Result<bool, ProbeError> {
    match a {
        HostAnswer::Seen { seen } => Ok(seen),
        other => Err(unexpected(other, what)),
    }
}

pub(super) fn unexpected(a: HostAnswer, what: &str) -> ProbeError {
    match a {
        HostAnswer::Failed { error } => ProbeError::Protocol(format!("the host could not {what}: {error}")),
        HostAnswer::Unavailable { reason } => ProbeError::Protocol(format!("the host cannot {what}: {reason}")),
        other => ProbeError::Protocol(format!("unexpected answer when asking the host to {what}: {other:?}")),
    }
}

/// The next of the answers to questions asked together (`Channel::ask_all`), the one to the
/// question asking the host to `what`.
pub(super) fn next_answer(
    answers: &mut impl Iterator<Item = HostAnswer>,
    what: &str,
) -> Result<HostAnswer, ProbeError> {
    answers.next().ok_or_else(|| ProbeError::Protocol(format!("no answer when asking the host to {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_own_mount_left_for_the_namespaces_end_comes_down_unless_the_host_saw_nothing() {
        assert!(!unmount_after_look(true, &Ok(false)), "the host saw nothing: left to the namespace's end");
        assert!(unmount_after_look(true, &Ok(true)), "the host saw it: unmounted, the unmount propagates back");
        let unknown = Err(ProbeError::Protocol("no answer".into()));
        assert!(unmount_after_look(true, &unknown), "the host could not say: unmounted all the same");
        for seen in [Ok(false), Ok(true), unknown] {
            assert!(!unmount_after_look(false, &seen), "unmounted already, before the look");
        }
    }

    #[test]
    fn abstract_sockets_are_found_by_their_path_field() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                     0000000000000000: 00000002 00000000 00010000 0001 01 4711 @isoprobe-7f3a\n\
                     0000000000000000: 00000003 00000000 00000000 0001 03 4712 /run/isoprobe-7f3a\n\
                     0000000000000000: 00000003 00000000 00000000 0001 03 4713\n";
        assert!(lists_abstract(table, "isoprobe-7f3a"));
        assert!(!lists_abstract(table, "isoprobe-7f"));
        assert!(!lists_abstract(table, "4713"));
    }

    #[test]
    fn uptime_parses_centiseconds() {
        assert_eq!(parse_uptime_ns("12345.67 2345.10\n"), Some(12_345_670_000_000));
        assert_eq!(parse_uptime_ns("garbage"), None);
    }
}
