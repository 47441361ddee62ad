//! What one harness run sets up once and shares among all its cases: a run directory under /tmp
//! (a tmpfs of its own where the runner may mount one, see `mount_run_tmpfs`), the probe
//! executable copied into it, the host marker file, the host's pid sentinel, and the host facts
//! that do not change during a run.
//!
//! Everything here is removed when the [`RunEnv`] is dropped.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use isoprobe_probes::ns::{NsKind, NsSet};
use isoprobe_probes::probe::Mode;
use isoprobe_probes::sys::stat_start_time;
use isoprobe_probes::wire::NsId;

use crate::cgroup::CgroupLayout;
use crate::error::{Context, HarnessError};
use crate::launcher::process::{GRACE, ProbeProcess, SpawnRequest, spawn_probe};
use crate::leftovers::IpcLedger;
use crate::mounts::unmount_all_under;
use crate::names::{PREFIX, token};
use crate::spec::Runner;
use crate::sys::clone::CloneCall;
use crate::sysctl::HostSysctls;

/// The run directory and what lives in it.
#[derive(Debug)]
pub struct RunEnv {
    pub dir: PathBuf,
    /// The probe executable, copied into the run directory so every user namespace can run it.
    pub probe_exe: PathBuf,
    /// A file on the host's root filesystem whose content only the host knows.
    pub marker_path: PathBuf,
    pub marker_token: String,
    pub pid_sentinel: PidSentinel,
    pub runner: Runner,
    /// A token naming this run in every host object it creates.
    pub run_token: String,
    /// The host's hostname when the run started.
    pub hostname: String,
    /// st_dev/st_ino of the harness's own namespaces, for the kinds this kernel has.
    pub host_ns: BTreeMap<NsKind, (u64, u64)>,
    /// The harness's root mount, `maj:min root` as mountinfo shows it (see
    /// `isoprobe_probes::wire::MntSentinel::host_root`).
    pub host_root: String,
    /// Every IPC key and queue name the run's cases may create, recorded before they exist (see
    /// `leftovers`).
    pub ledger: Arc<IpcLedger>,
    /// The host's cgroup layout, detected once (see `cgroup::host_layout`).
    pub layout: &'static CgroupLayout,
    /// The host's namespaced sysctls while probes write theirs (see `sysctl`).
    pub sysctls: HostSysctls,
}

/// A sleeping host process, a copy of the probe in hold mode.
#[derive(Debug)]
pub struct PidSentinel {
    pub pid: i32,
    /// Its start time (field 22 of `/proc/<pid>/stat`), to tell it from a recycled pid.
    pub start_time: u64,
    /// The argument that marks its command line.
    pub tag: String,
    process: ProbeProcess,
}

/// Where the probe binary comes from: `ISOPROBE_PROBE` if set, else the running executable
/// (every isoprobe binary is also the probe, see `isoprobe_probes::multicall`).
pub fn probe_source() -> Result<PathBuf, HarnessError> {
    match std::env::var_os("ISOPROBE_PROBE") {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe().ctx(|| "find the running executable".into()),
    }
}

impl RunEnv {
    /// Sets up a run. Call it from a thread that outlives the run: the pid sentinel is tied to the
    /// creating thread (PR_SET_PDEATHSIG), as every spawned child is.
    pub fn new(runner: Runner, probe_source: &Path) -> Result<RunEnv, HarnessError> {
        let run_token = token();
        let dir = std::env::temp_dir().join(format!("{PREFIX}-{}-{run_token}", std::process::id()));
        fs::create_dir(&dir).ctx(|| format!("create {}", dir.display()))?;
        let env = (|| {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).ctx(|| format!("chmod {}", dir.display()))?;
            mount_run_tmpfs(&dir, &run_token)?;
            let ledger = Arc::new(IpcLedger::create(&dir)?);
            let probe_exe = dir.join(isoprobe_probes::PROBE_NAME);
            crate::exe::copy_loaded_image(probe_source, &probe_exe)
                .ctx(|| format!("copy the probe {} into {}", probe_source.display(), dir.display()))?;
            let marker_token = format!("{PREFIX}-marker-{}", token());
            let marker_path = dir.join("host-marker");
            fs::write(&marker_path, &marker_token).ctx(|| format!("write {}", marker_path.display()))?;
            fs::set_permissions(&marker_path, fs::Permissions::from_mode(0o644)).ctx(|| "chmod the marker".into())?;
            let pid_sentinel = PidSentinel::spawn(&probe_exe, runner, format!("{PREFIX}-sentinel-{run_token}"))?;
            let hostname =
                nix::unistd::gethostname().ctx(|| "read the hostname".into())?.to_string_lossy().into_owned();
            Ok(RunEnv {
                dir: dir.clone(),
                probe_exe,
                marker_path,
                marker_token,
                pid_sentinel,
                runner,
                run_token: run_token.clone(),
                hostname,
                host_ns: host_namespaces(),
                host_root: host_root_mount()?,
                ledger,
                layout: crate::cgroup::host_layout()?,
                sysctls: HostSysctls::new(&dir),
            })
        })();
        if env.is_err() {
            let _ = unmount_all_under(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
        env
    }

    /// The namespace kinds this kernel supports (those with a /proc/self/ns entry).
    pub fn supported_kinds(&self) -> NsSet {
        self.host_ns.keys().copied().collect()
    }

    /// The harness's namespaces as the hello carries them, for the probe's interlock.
    pub fn harness_ns(&self) -> Vec<NsId> {
        self.host_ns.iter().map(|(&kind, &(dev, ino))| NsId { kind, dev, ino }).collect()
    }
}

/// Mounts a tmpfs of the run's own on its directory, named `isoprobe-<run token>` (its source in
/// the mount table), where the runner may (root in the host's mount namespace); elsewhere the run
/// keeps the plain directory.
///
/// Every case makes and removes a directory tree there: on ext4 (the usual /tmp) each mkdir of a
/// run that churns through thousands of them scans the inode table for recently deleted inodes
/// (`find_inode_bit`/`recently_deleted` in ext4's inode allocator were 30% of the harness's CPU
/// time in a run of identical empty cases), and removing them waits behind any other writer of
/// the disk. A tmpfs dies with the kernel as the namespaces and objects its records describe do;
/// [`Drop`] and the recovery of a dead run unmount it with everything under the directory
/// ([`unmount_all_under`]). Not `nodev` (the io case makes its loop device's node here) nor
/// `noexec` (the probe runs from here).
fn mount_run_tmpfs(dir: &Path, run_token: &str) -> Result<(), HarnessError> {
    use nix::mount::{MsFlags, mount};
    let source = format!("{PREFIX}-{run_token}");
    let _changing = crate::mounts::changing_host_mounts();
    match mount(Some(source.as_str()), dir, Some("tmpfs"), MsFlags::empty(), Some("mode=0755")) {
        Ok(()) => Ok(()),
        // Not root in the host's mount namespace (a rootless run): the plain directory.
        Err(nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => Err(HarnessError::Sys { what: format!("mount a tmpfs on {}", dir.display()), source: e }),
    }
}

/// The mount at `/` of the harness's mount namespace, as `maj:min root` (fields 3 and 4 of its
/// mountinfo line).
fn host_root_mount() -> Result<String, HarnessError> {
    let table = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    // The last mount on `/` is the one lookups see.
    table
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 4 && f[4] == "/").then(|| format!("{} {}", f[2], f[3]))
        })
        .ok_or_else(|| HarnessError::Host("no mount on / in /proc/self/mountinfo".into()))
}

/// st_dev/st_ino of `/proc/self/ns/<kind>` for every kind this kernel has.
pub fn host_namespaces() -> BTreeMap<NsKind, (u64, u64)> {
    NsKind::ALL
        .into_iter()
        .filter_map(|k| {
            let st = nix::sys::stat::stat(format!("/proc/self/ns/{k}").as_str()).ok()?;
            Some((k, (st.st_dev, st.st_ino)))
        })
        .collect()
}

impl PidSentinel {
    fn spawn(probe: &Path, runner: Runner, tag: String) -> Result<PidSentinel, HarnessError> {
        let process = spawn_probe(SpawnRequest {
            call: CloneCall::Clone3,
            ns_flags: 0,
            cgroup: None,
            exe: probe,
            mode: Mode::Hold { tag: tag.clone() },
            id_maps: None,
            time_offsets: None,
            runner,
            deadline: Instant::now() + GRACE,
            plant: NsSet::EMPTY,
        })?;
        let pid = process.pid.as_raw();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ctx(|| format!("read /proc/{pid}/stat"))?;
        let start_time = stat_start_time(&stat)
            .ok_or_else(|| HarnessError::Host(format!("unparsable /proc/{pid}/stat: {stat:?}")))?;
        Ok(PidSentinel { pid, start_time, tag, process })
    }

    /// Whether the sentinel is still the process it was (same pid, same start time).
    pub fn alive(&self) -> bool {
        isoprobe_probes::text::read(format!("/proc/{}/stat", self.pid).as_str()).ok().and_then(|s| stat_start_time(&s))
            == Some(self.start_time)
    }
}

impl Drop for RunEnv {
    fn drop(&mut self) {
        // The pid sentinel ends when its stdin closes; the process handle reaps it.
        self.pid_sentinel.process.stdin = None;
        let _ = self.pid_sentinel.process.wait_until(Instant::now() + GRACE);
        if let Err(e) = unmount_all_under(&self.dir) {
            eprintln!("isoprobe: {e}");
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("isoprobe: failed to remove {}: {e}", self.dir.display());
        }
    }
}
