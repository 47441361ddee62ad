//! Everything one case creates on the host, with one owner that removes it in every outcome: the
//! case directory (the rootfs in pivot/chroot modes), the host's IPC sentinels, the listening
//! sockets, the per-case cgroup, and whatever a probe that died half-way left in the host's
//! namespaces (its own mount, its own IPC objects).

use std::fs;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use isoprobe_probes::sys::{self, SysvKind};
use isoprobe_probes::wire::{
    IpcNames, IpcSentinel, MntSentinel, NetSentinel, PidSentinel, Sentinels, UserSentinel, UtsSentinel,
};
use nix::errno::Errno;

use std::os::fd::BorrowedFd;

use crate::cgroup::CaseCgroup;
use crate::error::{Context, HarnessError};
use crate::leftovers::IpcLedger;
use crate::limits::CaseLimits;
use crate::mounts::unmount_all_under;
use crate::names::{PREFIX, sysv_key, token};
use crate::run_env::RunEnv;
use crate::spec::{CaseSpec, IdMaps, RootfsMode};

/// Sub-directories of a case directory, named as the probe sees them in pivot/chroot modes.
pub mod dirs {
    pub const SENTINEL_MOUNT: &str = "mnt-sentinel";
    pub const OWN_MOUNT: &str = "own-mnt";
    pub const ESCAPE: &str = "escape";
    pub const SCRATCH: &str = "scratch";
    pub const PROC: &str = "proc";
    pub const SYS: &str = "sys";
    pub const OLD_ROOT: &str = "oldroot";
    /// Where OCI runtimes create the container's device nodes (owned by the container's root).
    pub const DEV: &str = "dev";
    /// systemd-nspawn refuses a root without /usr ("doesn't look like it has an OS tree").
    pub const USR: &str = "usr";
    /// Every directory `CaseEnv::populate` may make, children before parents (all are direct
    /// children of the case directory): what the teardown removes one call each.
    pub const MADE: [&str; 9] = [SENTINEL_MOUNT, OWN_MOUNT, ESCAPE, SCRATCH, PROC, SYS, OLD_ROOT, DEV, USR];
}

/// The host side of one case.
#[derive(Debug)]
pub struct CaseEnv {
    pub id: u64,
    /// The case directory; in pivot/chroot modes it is the container's rootfs.
    pub dir: PathBuf,
    pub rootfs: RootfsMode,
    /// Host objects for the probe to look for (created here, removed on drop).
    pub host_ipc: IpcNames,
    host_ipc_ids: Vec<(SysvKind, i32)>,
    /// Names handed to probes for their own objects (removed on drop if a probe left them).
    own_ipc: Mutex<Vec<IpcNames>>,
    /// The run's record of IPC names, written before each object can exist.
    ledger: Arc<IpcLedger>,
    abstract_name: String,
    _abstract_listener: UnixListener,
    tcp_port: u16,
    _tcp_listener: TcpListener,
    pub cgroup: Option<CaseCgroup>,
    /// A limit case's cgroups and host objects (then `cgroup` is None).
    pub limits: Option<CaseLimits>,
    /// A mount case's host side (see [`crate::mount_case`]): it changes the host's mount table
    /// from its creation until the case's directory is gone (see
    /// [`crate::mounts::changing_host_mounts`]); dropped last.
    mount_case: Option<crate::mounts::Held>,
}

/// The per-probe names: each probe of a case (container, joiner) gets its own.
#[derive(Debug, Clone)]
pub struct ProbeNames {
    pub own_ipc: IpcNames,
    pub domainname_token: String,
}

impl CaseEnv {
    /// Creates the case directory and the sentinels. `spec` must be resolved (id maps filled in).
    pub fn create(run: &RunEnv, spec: &CaseSpec, id: u64, cgroup_root: Option<&Path>) -> Result<CaseEnv, HarnessError> {
        let dir = run.dir.join(format!("case-{id}"));
        let abstract_name = format!("{PREFIX}-{}-{id}", run.run_token);
        let abstract_listener = bind_abstract(&abstract_name)?;
        let tcp_listener = TcpListener::bind("127.0.0.1:0").ctx(|| "listen on 127.0.0.1".into())?;
        let tcp_port = tcp_listener.local_addr().ctx(|| "read the TCP listener's port".into())?.port();
        make_dir(&dir, 0o755)?;
        // From here on, a partly built case is torn down by Drop.
        let mut env = CaseEnv {
            id,
            dir,
            rootfs: spec.rootfs,
            host_ipc: IpcNames { shm_key: 0, sem_key: 0, msg_key: 0, mq_name: String::new() },
            host_ipc_ids: Vec::new(),
            own_ipc: Mutex::new(Vec::new()),
            ledger: Arc::clone(&run.ledger),
            abstract_name,
            _abstract_listener: abstract_listener,
            tcp_port,
            _tcp_listener: tcp_listener,
            cgroup: None,
            limits: None,
            mount_case: None,
        };
        env.populate(run, spec)?;
        if let Some(p) = spec.propagation {
            // Held until the case is gone: its probe's mounts reach the host's table too.
            env.mount_case = Some(crate::mounts::changing_host_mounts());
            crate::mount_case::create(&env.dir, p, &run.marker_token)?;
        }
        env.create_host_ipc()?;
        let cgroup_name = format!("{PREFIX}-{}-{id}", run.run_token);
        if let Some(l) = &spec.limits {
            let limits = CaseLimits::create(spec, l, run.layout, &cgroup_name, &env.dir, |sub| env.probe_path(sub))?;
            env.limits = Some(limits);
        } else if let Some(root) = cgroup_root {
            env.cgroup = Some(CaseCgroup::create(root, &cgroup_name)?);
        }
        Ok(env)
    }

    /// The cgroup2 directory a clone3 starts the probe in (CLONE_INTO_CGROUP).
    pub fn clone_into_cgroup(&self) -> Option<BorrowedFd<'_>> {
        match &self.limits {
            Some(l) => l.cgroups().ok().and_then(|c| c.v2_dir()),
            None => self.cgroup.as_ref().map(|c| c.fd()),
        }
    }

    /// A limit case's attach between clone and the child's GO: cgroup.procs of every hierarchy
    /// the clone did not already place the child in.
    pub fn attach_after_clone(&self, pid: nix::unistd::Pid, cloned_into_v2: bool) -> Result<(), HarnessError> {
        match &self.limits {
            Some(l) => l.cgroups()?.attach(pid, cloned_into_v2),
            None => Ok(()),
        }
    }

    fn populate(&self, run: &RunEnv, spec: &CaseSpec) -> Result<(), HarnessError> {
        let mk = |name: &str, mode: u32| -> Result<PathBuf, HarnessError> {
            let p = self.dir.join(name);
            make_dir(&p, mode)?;
            Ok(p)
        };
        for d in [dirs::SENTINEL_MOUNT, dirs::OWN_MOUNT, dirs::ESCAPE] {
            mk(d, 0o755)?;
        }
        let mut owned_by_root_inside = vec![mk(dirs::SCRATCH, 0o755)?];
        if self.rootfs != RootfsMode::Host {
            for d in [dirs::PROC, dirs::SYS, dirs::OLD_ROOT] {
                mk(d, 0o555)?;
            }
            // What container tools expect in a rootfs (see `launcher::external`).
            owned_by_root_inside.push(mk(dirs::DEV, 0o755)?);
            mk(dirs::USR, 0o755)?;
            let probe = self.dir.join(isoprobe_probes::PROBE_NAME);
            // A hard link costs nothing; a copy is the fallback across filesystems.
            if fs::hard_link(&run.probe_exe, &probe).is_err() {
                crate::exe::copy_executable(&run.probe_exe, &probe)
                    .ctx(|| format!("copy the probe to {}", probe.display()))?;
            }
        }
        // The probe runs as root of its user namespace: these dirs belong to the id that maps to
        // (only root may chown; anyone else maps root to themselves anyway).
        if run.runner.is_root()
            && let Some(maps) = &spec.id_maps
            && spec.has(isoprobe_probes::ns::NsKind::User)
        {
            let uid = IdMaps::outside(&maps.uid, 0).map(nix::unistd::Uid::from_raw);
            let gid = IdMaps::outside(&maps.gid, 0).map(nix::unistd::Gid::from_raw);
            for d in &owned_by_root_inside {
                nix::unistd::chown(d, uid, gid).ctx(|| format!("chown {}", d.display()))?;
            }
        }
        Ok(())
    }

    fn create_host_ipc(&mut self) -> Result<(), HarnessError> {
        // Mode 0666 so that a probe in a user namespace finds them, and is not merely refused.
        for kind in [SysvKind::Shm, SysvKind::Sem, SysvKind::Msg] {
            let (key, id) = loop {
                let key = sysv_key();
                self.ledger.sysv(kind, key)?;
                match sys::sysv_create(kind, key, 0o666) {
                    Ok(id) => break (key, id),
                    Err(Errno::EEXIST) => continue,
                    Err(e) => {
                        return Err(HarnessError::Sys { what: format!("create a host SysV {kind:?}"), source: e });
                    }
                }
            };
            self.host_ipc_ids.push((kind, id));
            match kind {
                SysvKind::Shm => self.host_ipc.shm_key = key,
                SysvKind::Sem => self.host_ipc.sem_key = key,
                SysvKind::Msg => self.host_ipc.msg_key = key,
            }
        }
        let mq = format!("/{PREFIX}-{}", token());
        self.ledger.mqueue(&mq)?;
        sys::mq_create(&mq, 0o666).ctx(|| format!("create the host message queue {mq}"))?;
        self.host_ipc.mq_name = mq;
        Ok(())
    }

    /// Fresh names for one probe of this case, recorded in the run's ledger (a probe in the
    /// host's IPC namespace creates them there). Keys already in use on the host are skipped so
    /// that cleanup can never remove someone else's object.
    pub fn new_probe_names(&self) -> Result<ProbeNames, HarnessError> {
        let free_key = |kind| loop {
            let k = sysv_key();
            if sys::sysv_get(kind, k) == Err(Errno::ENOENT) {
                return k;
            }
        };
        let own_ipc = IpcNames {
            shm_key: free_key(SysvKind::Shm),
            sem_key: free_key(SysvKind::Sem),
            msg_key: free_key(SysvKind::Msg),
            mq_name: format!("/{PREFIX}-{}", token()),
        };
        for (kind, key) in
            [(SysvKind::Shm, own_ipc.shm_key), (SysvKind::Sem, own_ipc.sem_key), (SysvKind::Msg, own_ipc.msg_key)]
        {
            self.ledger.sysv(kind, key)?;
        }
        self.ledger.mqueue(&own_ipc.mq_name)?;
        self.own_ipc.lock().unwrap_or_else(|e| e.into_inner()).push(own_ipc.clone());
        Ok(ProbeNames { own_ipc, domainname_token: format!("{PREFIX}-{}", token()) })
    }

    /// The host-side control of the abstract socket: a connect from the harness's own network
    /// namespace.
    pub fn connect_abstract(&self) -> Result<(), String> {
        let addr = SocketAddr::from_abstract_name(self.abstract_name.as_bytes()).map_err(|e| e.to_string())?;
        std::os::unix::net::UnixStream::connect_addr(&addr)
            .map(drop)
            .map_err(|e| format!("connect to @{} from the host: {e}", self.abstract_name))
    }

    /// The host-side control of the TCP listener on 127.0.0.1.
    pub fn connect_tcp(&self) -> Result<(), String> {
        std::net::TcpStream::connect(("127.0.0.1", self.tcp_port))
            .map(drop)
            .map_err(|e| format!("connect to 127.0.0.1:{} from the host: {e}", self.tcp_port))
    }

    /// The host-side controls of the IPC sentinels: each still found by its key or name
    /// (shm, sem, msg, mq).
    pub fn host_ipc_present(&self) -> [Result<(), String>; 4] {
        let n = &self.host_ipc;
        let found = |what: &str, r: nix::Result<()>| r.map_err(|e| format!("the host's {what} is not found: {e}"));
        [
            found("shm", sys::sysv_get(SysvKind::Shm, n.shm_key).map(drop)),
            found("sem", sys::sysv_get(SysvKind::Sem, n.sem_key).map(drop)),
            found("msg", sys::sysv_get(SysvKind::Msg, n.msg_key).map(drop)),
            found("message queue", sys::mq_lookup(&n.mq_name)),
        ]
    }

    /// A host path inside the case directory.
    pub fn host_path(&self, sub: &str) -> PathBuf {
        self.dir.join(sub)
    }

    /// The same place as the probe sees it after its root change.
    pub fn probe_path(&self, sub: &str) -> String {
        match self.rootfs {
            RootfsMode::Host => self.dir.join(sub).to_string_lossy().into_owned(),
            RootfsMode::PivotRoot | RootfsMode::Chroot => format!("/{sub}"),
        }
    }

    /// The probe executable as the launcher starts it (on the host, before any root change).
    pub fn probe_exe(&self, run: &RunEnv) -> PathBuf {
        match self.rootfs {
            RootfsMode::Host => run.probe_exe.clone(),
            RootfsMode::PivotRoot | RootfsMode::Chroot => self.dir.join(isoprobe_probes::PROBE_NAME),
        }
    }

    /// The sentinel descriptions for one probe.
    pub fn sentinels(&self, run: &RunEnv, names: &ProbeNames) -> Sentinels {
        Sentinels {
            pid: PidSentinel { pid: run.pid_sentinel.pid, tag: run.pid_sentinel.tag.clone() },
            uts: UtsSentinel { domainname_token: names.domainname_token.clone() },
            mnt: MntSentinel {
                host_marker: run.marker_path.to_string_lossy().into_owned(),
                marker_token: run.marker_token.clone(),
                sentinel_mount: self.probe_path(dirs::SENTINEL_MOUNT),
                own_mount: self.probe_path(dirs::OWN_MOUNT),
                escape_dir: self.probe_path(dirs::ESCAPE),
                host_root: run.host_root.clone(),
                mounts: self.mount_case.is_some().then(|| crate::mount_case::sentinels(|sub| self.probe_path(sub))),
            },
            ipc: IpcSentinel { host: self.host_ipc.clone(), own: names.own_ipc.clone() },
            net: NetSentinel { abstract_name: self.abstract_name.clone(), tcp_port: self.tcp_port },
            user: UserSentinel { scratch_dir: self.probe_path(dirs::SCRATCH) },
        }
    }

    /// Removes what a probe may have left in the host's namespaces: only objects under names this
    /// case handed out.
    fn remove_leftovers(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = unmount_all_under(&self.dir) {
            problems.push(e.to_string());
        }
        for names in self.own_ipc.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for (kind, key) in
                [(SysvKind::Shm, names.shm_key), (SysvKind::Sem, names.sem_key), (SysvKind::Msg, names.msg_key)]
            {
                if let Err(e) = sys::sysv_remove_key(kind, key) {
                    problems.push(format!("failed to remove {kind:?} {key:#x}: {e}"));
                }
            }
            if let Err(e) = sys::mq_remove(&names.mq_name) {
                problems.push(format!("failed to remove {}: {e}", names.mq_name));
            }
        }
        for (kind, id) in &self.host_ipc_ids {
            if let Err(e) = sys::sysv_remove(*kind, *id) {
                problems.push(format!("failed to remove host {kind:?} id {id}: {e}"));
            }
        }
        if !self.host_ipc.mq_name.is_empty()
            && let Err(e) = sys::mq_remove(&self.host_ipc.mq_name)
        {
            problems.push(format!("failed to remove {}: {e}", self.host_ipc.mq_name));
        }
        problems
    }
}

fn bind_abstract(name: &str) -> Result<UnixListener, HarnessError> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).ctx(|| format!("build @{name}"))?;
    UnixListener::bind_addr(&addr).ctx(|| format!("listen on @{name}"))
}

impl Drop for CaseEnv {
    fn drop(&mut self) {
        for p in self.remove_leftovers() {
            eprintln!("isoprobe: case {}: {p}", self.id);
        }
        // The cgroups go before the directory (a limit case's loop device has its backing file
        // there): reverse order of creation.
        self.limits = None;
        self.cgroup = None;
        // Removing a directory detaches what is mounted on it in every other mount namespace: an
        // external tool's copy of the host's table taken while the case's mounts were up (its
        // mount case's bind of the directory, the sentinel) loses them too.
        let changing = crate::mounts::changing_host_mounts();
        if let Err(e) = remove_case_dir(&self.dir) {
            eprintln!("isoprobe: failed to remove {}: {e}", self.dir.display());
        }
        drop(changing);
        self.mount_case = None;
    }
}

/// Makes directory `p` with exactly `mode`: mkdir(2) gives it `mode` less the umask, so a chmod
/// follows only where the umask takes a bit of `mode` away.
pub(crate) fn make_dir(p: &Path, mode: u32) -> Result<(), HarnessError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(mode).create(p).ctx(|| format!("create {}", p.display()))?;
    if !umask_keeps(mode) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).ctx(|| format!("chmod {}", p.display()))?;
    }
    Ok(())
}

/// Writes `contents` to a new file `p` readable by everyone (0644, whatever the umask): the
/// markers a probe under another id must read.
pub(crate) fn write_readable(p: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(p)?
        .write_all(contents.as_bytes())?;
    if !umask_keeps(0o644) {
        fs::set_permissions(p, fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Whether the process's umask leaves every bit of `mode` (read once from /proc/self/status,
/// Linux 4.7 and later: umask(2) can only be read by setting it, which races with other threads
/// creating files). Unknown: no, so the caller chmods.
fn umask_keeps(mode: u32) -> bool {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let umask = UMASK.get_or_init(|| {
        let status = isoprobe_probes::text::read("/proc/self/status").ok()?;
        let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(value.trim(), 8).ok()
    });
    umask.is_some_and(|u| u & mode == 0)
}

/// Removes a case directory. What `populate` made (a few empty directories and the probe's hard
/// link) goes with one call each; anything else in it (a limit case's files, what a probe that
/// broke left in its scratch directory) hands the rest to a walk of the whole tree. The walk
/// alone cost some 60 system calls per case (an open, two getdents and an fstat per directory).
fn remove_case_dir(dir: &Path) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let fd = match open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(_) => return fs::remove_dir_all(dir),
    };
    let gone = |r: nix::Result<()>| matches!(r, Ok(()) | Err(Errno::ENOENT));
    let mut emptied = gone(unlinkat(&fd, isoprobe_probes::PROBE_NAME, UnlinkatFlags::NoRemoveDir));
    for name in dirs::MADE {
        emptied &= gone(unlinkat(&fd, name, UnlinkatFlags::RemoveDir));
    }
    drop(fd);
    if !emptied {
        return fs::remove_dir_all(dir);
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => fs::remove_dir_all(dir),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not an isoprobe-named directory: a concurrent run's leftover sweep must not see it.
    fn case_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("case-dir-test-{}-{tag}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        for d in dirs::MADE {
            fs::create_dir(dir.join(d)).unwrap();
        }
        fs::write(dir.join(isoprobe_probes::PROBE_NAME), b"probe").unwrap();
        dir
    }

    #[test]
    fn a_case_dir_goes_whole_with_what_populate_made_or_more() {
        let made = case_dir("made");
        remove_case_dir(&made).unwrap();
        assert!(!made.exists(), "the directories populate makes and the probe's link");

        // Left by a broken probe or made by a limit case: the walk takes over.
        let more = case_dir("more");
        fs::write(more.join(dirs::SCRATCH).join("left-behind"), b"x").unwrap();
        fs::create_dir_all(more.join("loop/deeper")).unwrap();
        remove_case_dir(&more).unwrap();
        assert!(!more.exists(), "a case dir with files of its own");

        // Host rootfs: only some of the directories, no probe link.
        let host = std::env::temp_dir().join(format!("case-dir-test-{}-host", std::process::id()));
        fs::create_dir_all(host.join(dirs::ESCAPE)).unwrap();
        remove_case_dir(&host).unwrap();
        assert!(!host.exists());
        remove_case_dir(&host).unwrap();
    }
}
