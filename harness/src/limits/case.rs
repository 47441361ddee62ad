//! The host side of one limit case: its cgroups, the loop device of an io case, the perf counters
//! of a perf case, and the lock that keeps timing-sensitive cases from running at once. One owner
//! ([`CaseLimits`]) removes everything in every outcome.

use std::fs;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::wire::Exercise;
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::spec::LimitSpec;
use crate::cgroup::{CaseCgroups, CgroupLayout, CgroupRequest};
use crate::error::{Context, HarnessError};
use crate::hostlock::HostLock;
use crate::spec::CaseSpec;

/// Cases whose verdict depends on timing (CPU shares, throughput, a heartbeat), or on what other
/// cases mount (see [`CaseLimits::create`]), run one at a time
/// on the machine: within a harness process (this mutex) and between isoprobe processes (the host
/// lock [`TIMING_LOCK`]), since two such cases pinned to the same CPU, or reading the same disk,
/// would each measure the other. The others run alongside them.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// The host-wide lock of timing-sensitive limit cases (see [`EXCLUSIVE`]).
const TIMING_LOCK: &str = "isoprobe-limit-timing-lock";

/// How long a timing case waits for another isoprobe process's timing cases: each holds the
/// lock for a few seconds, and a whole limit suite's worth of them takes about a minute.
const TIMING_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Both locks of a timing-sensitive case, in the order taken.
#[derive(Debug)]
struct Exclusive {
    _in_process: MutexGuard<'static, ()>,
    _host: HostLock,
}

/// The loop device's backing file size: larger than any window reads at the limit, small enough
/// to stay in page cache; sparse, so it costs no disk.
const LOOP_BYTES: u64 = 64 << 20;

/// The name of the loop device node in the case directory (the probe opens it).
pub const LOOP_NODE: &str = "isoprobe-loopdev";

/// A loop device isoprobe attached, detached on drop.
#[derive(Debug)]
pub struct LoopDevice {
    pub path: PathBuf,
    pub rdev: (u64, u64),
}

impl LoopDevice {
    /// Attaches a sparse file in `dir` with util-linux losetup(8), read-only.
    fn attach(dir: &Path, bytes: u64) -> Result<LoopDevice, HarnessError> {
        let file = dir.join("isoprobe-loop.img");
        let f = fs::File::create(&file).ctx(|| format!("create {}", file.display()))?;
        f.set_len(bytes).ctx(|| format!("size {}", file.display()))?;
        drop(f);
        let out = Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(&file)
            .output()
            .ctx(|| "run losetup --find --show".into())?;
        if !out.status.success() {
            return Err(HarnessError::Host(format!(
                "losetup --find --show {} failed: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // Owned from here: an error below detaches it.
        let mut dev = LoopDevice { path, rdev: (0, 0) };
        let md = fs::metadata(&dev.path).ctx(|| format!("stat {}", dev.path.display()))?;
        if !md.file_type().is_block_device() {
            return Err(HarnessError::Host(format!("{} is not a block device", dev.path.display())));
        }
        let rdev = md.rdev();
        dev.rdev = (libc::major(rdev) as u64, libc::minor(rdev) as u64);
        Ok(dev)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        match Command::new("losetup").arg("--detach").arg(&self.path).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "isoprobe: losetup --detach {}: {}",
                self.path.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("isoprobe: failed to run losetup --detach {}: {e}", self.path.display()),
        }
    }
}

/// Everything a limit case holds on the host.
#[derive(Debug)]
pub struct CaseLimits {
    pub spec: LimitSpec,
    /// Whether the case has a cgroup namespace (the probe then unshares it after the attach).
    pub cgroup_ns: bool,
    /// Made at [`CaseLimits::create`] for the native launchers; for a launcher whose tool creates
    /// and limits the case's cgroup (see [`CaseLimits::by_tool`]), adopted once the tool started
    /// the probe ([`CaseLimits::adopt`]).
    cgroups: OnceLock<CaseCgroups>,
    /// What [`CaseLimits::adopt`] needs: the layout and the request (its settings are the
    /// tool's to write; only the sibling's are isoprobe's).
    by_tool: Option<(CgroupLayout, CgroupRequest)>,
    /// iocost on the loop device of an io.weight case, put back as found once the cgroups are
    /// gone and before the device is detached (another user of the device must not inherit it).
    _iocost: Option<crate::cgroup::iocost::IoCost>,
    /// Declared after `cgroups`: detached only once the cgroups (and their I/O) are gone.
    pub loopdev: Option<LoopDevice>,
    /// Open perf counters between a probe's start and stop questions.
    pub perf: Mutex<Vec<OwnedFd>>,
    /// The exercise as the probe receives it.
    pub exercise: Exercise,
    _exclusive: Option<Exclusive>,
}

impl CaseLimits {
    /// Sets a limit case up: the loop device first (io.max names it), then the cgroups.
    /// `dir` is the case directory, `probe_path` maps a name in it to the probe's view.
    pub fn create(
        spec: &CaseSpec,
        limits: &LimitSpec,
        layout: &CgroupLayout,
        name: &str,
        dir: &Path,
        probe_path: impl Fn(&str) -> String,
    ) -> Result<CaseLimits, HarnessError> {
        // Also one at a time: the cgroup-namespace view, and the cases that may mount a v1
        // hierarchy of their own (net_cls, net_prio, devices, perf_event where no hierarchy has
        // them: see `cgroup::private`). A v1 hierarchy is kernel-global, so while one is mounted
        // every process's /proc/<pid>/cgroup has a line for it, and the view case, which compares
        // the probe's /proc/self/cgroup with the host's reading of it taken a moment apart, saw
        // `6:net_cls:/` on one side only (Debian 6.12 in ci/kernels, plan limits-v2).
        let timing = matches!(
            limits.exercise,
            Exercise::CpuBurn { .. }
                | Exercise::CpuBurst { .. }
                | Exercise::CpuShare { .. }
                | Exercise::Freezer { .. }
                | Exercise::IoRead { .. }
                | Exercise::IoShare { .. }
                | Exercise::PerfCount { .. }
                | Exercise::CgroupView { .. }
                | Exercise::NetClassid
                | Exercise::Devices { .. }
        );
        let exclusive = match timing {
            true => {
                let in_process = EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner());
                let host = HostLock::take(TIMING_LOCK, std::time::Instant::now() + TIMING_LOCK_WAIT)?;
                Some(Exclusive { _in_process: in_process, _host: host })
            }
            false => None,
        };
        let mut exercise = limits.exercise.clone();
        let loopdev = match &mut exercise {
            Exercise::IoRead { device, .. }
            | Exercise::CacheRead { device, .. }
            | Exercise::IoShare { device, .. }
            | Exercise::MemoryProtect { device, .. } => {
                // A cache read reads its whole length once; sparse, so the size costs nothing.
                let size = match limits.exercise {
                    Exercise::CacheRead { bytes, .. } => bytes.next_multiple_of(1 << 20).max(LOOP_BYTES),
                    Exercise::MemoryProtect { kept, cache, .. } => {
                        super::protect::cache_offset(kept) + cache.next_multiple_of(1 << 20).max(LOOP_BYTES)
                    }
                    _ => LOOP_BYTES,
                };
                let l = LoopDevice::attach(dir, size)?;
                let node = dir.join(LOOP_NODE);
                mknod(&node, SFlag::S_IFBLK, Mode::from_bits_truncate(0o666), makedev(l.rdev.0, l.rdev.1))
                    .ctx(|| format!("create the block device node {}", node.display()))?;
                // mknod applies the umask; the probe (any user) must be able to read it.
                fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o666))
                    .ctx(|| format!("chmod {}", node.display()))?;
                *device = probe_path(LOOP_NODE);
                Some(l)
            }
            _ => None,
        };
        // Before the cgroups: the kernel takes a per-device io.weight only for a device iocost is on.
        let iocost = match (&exercise, &loopdev) {
            (Exercise::IoShare { .. }, Some(l)) => Some(super::iocost::enable(layout, l.rdev)?),
            _ => None,
        };
        if let Exercise::CgroupView { mount_at } = &mut exercise {
            // A cgroup2 mount of the probe's own, only where it cannot reach the host's table.
            *mount_at = spec.has(NsKind::Mnt).then(|| probe_path(crate::case_env::dirs::OWN_MOUNT));
        }
        let req = CgroupRequest {
            name: name.to_owned(),
            settings: limits.settings.settings(loopdev.as_ref().map(|l| l.rdev)),
            sibling: limits.sibling.as_ref().map(|s| s.settings(loopdev.as_ref().map(|l| l.rdev))).or_else(|| {
                // A perf case counts its sibling in the control: it must exist in both.
                // So must a group case's: its forking group runs there.
                matches!(
                    limits.exercise,
                    Exercise::PerfCount { .. }
                        | Exercise::CpuShare { .. }
                        | Exercise::IoShare { .. }
                        | Exercise::KillGroup { .. }
                        | Exercise::FreezeGroup { .. }
                        | Exercise::OomGroup { .. }
                        | Exercise::OomGroupParent { .. }
                        | Exercise::CgroupRules { .. }
                )
                .then(Vec::new)
            }),
            extra: match limits.exercise {
                Exercise::PerfCount { .. } => vec!["perf_event".into()],
                _ => Vec::new(),
            },
        };
        let cgroups = OnceLock::new();
        let by_tool = if spec.launcher.is_native() {
            let set = CaseCgroups::create(layout, &req)?;
            if let Exercise::CgroupRules { .. } = exercise {
                super::rules::prepare(&set, spec, limits, layout, &mut exercise)?;
            }
            super::protect::prepare(&set, limits, &mut exercise)?;
            super::oom_parent::prepare(&set, &mut exercise)?;
            let _ = cgroups.set(set);
            None
        } else {
            Some((layout.clone(), req))
        };
        Ok(CaseLimits {
            spec: limits.clone(),
            cgroup_ns: spec.has(NsKind::Cgroup),
            cgroups,
            by_tool,
            _iocost: iocost,
            loopdev,
            perf: Mutex::new(Vec::new()),
            exercise,
            _exclusive: exclusive,
        })
    }

    /// The case's cgroups; an error before a tool that creates them has started the probe.
    pub fn cgroups(&self) -> Result<&CaseCgroups, HarnessError> {
        self.cgroups.get().ok_or_else(|| {
            HarnessError::Internal(
                "the case's cgroups are not known yet: its launcher has not started the probe".into(),
            )
        })
    }

    /// Whether the launcher's tool creates the case's cgroup and writes its limits (isoprobe then
    /// writes none of them; it adopts the tool's cgroup to read it).
    pub fn by_tool(&self) -> bool {
        self.by_tool.is_some()
    }

    /// Adopts the cgroups the launcher's tool created for the probe `pid` (see
    /// [`CaseCgroups::adopt`]). Called once, after the launch, before the probe is spoken to.
    pub fn adopt(&self, pid: nix::unistd::Pid, tool: &crate::launcher::LimitCgroup) -> Result<(), HarnessError> {
        let (layout, req) = self
            .by_tool
            .as_ref()
            .ok_or_else(|| HarnessError::Internal("a native limit case has no tool cgroup to adopt".into()))?;
        let set = CaseCgroups::adopt(layout, req, pid, &tool.name, tool.cgroup2)?;
        self.cgroups.set(set).map_err(|_| HarnessError::Internal("the case's cgroups were adopted twice".into()))
    }

    /// Starts cpu-clock counters for the case's cgroup (or, in the control, its empty sibling) on
    /// every online CPU: perf_event_open(2) in cgroup mode.
    pub fn perf_start(&self) -> Result<(), HarnessError> {
        let own = self.spec.settings.perf_event;
        let dir = self
            .cgroups()?
            .dir_of("perf_event", !own)
            .ok_or_else(|| HarnessError::Cgroup("the case has no perf_event cgroup".into()))?;
        let mut fds = self.perf.lock().unwrap_or_else(|e| e.into_inner());
        fds.clear();
        for cpu in online_cpus()? {
            fds.push(perf_event_open_cgroup(dir, cpu)?);
        }
        Ok(())
    }

    /// Stops and sums the counters, in nanoseconds.
    pub fn perf_stop(&self) -> Result<u64, HarnessError> {
        let mut fds = self.perf.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0u64;
        for fd in fds.iter() {
            let mut buf = [0u8; 8];
            let n = nix::unistd::read(fd, &mut buf).ctx(|| "read a perf counter".into())?;
            if n != 8 {
                return Err(HarnessError::Cgroup(format!("a perf counter read gave {n} bytes")));
            }
            total += u64::from_ne_bytes(buf);
        }
        fds.clear();
        Ok(total)
    }
}

/// The online CPUs (/sys/devices/system/cpu/online, e.g. `0-1`).
pub fn online_cpus() -> Result<Vec<u32>, HarnessError> {
    read_cpu_list("/sys/devices/system/cpu/online")
}

/// The possible CPUs (/sys/devices/system/cpu/possible): every CPU the kernel gave per-CPU data,
/// online or not.
pub fn possible_cpus() -> Result<Vec<u32>, HarnessError> {
    read_cpu_list("/sys/devices/system/cpu/possible")
}

fn read_cpu_list(p: &str) -> Result<Vec<u32>, HarnessError> {
    let text = fs::read_to_string(p).ctx(|| format!("read {p}"))?;
    parse_cpu_list(&text).ok_or_else(|| HarnessError::Host(format!("unparsable {p}: {text:?}")))
}

/// Parses a kernel cpu list (`0-3,5`).
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut v = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => v.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => v.push(part.parse().ok()?),
        }
    }
    Some(v)
}

/// perf_event_open(2) counting cpu-clock for the cgroup `cgroup_fd` on `cpu`.
fn perf_event_open_cgroup(cgroup: BorrowedFd<'_>, cpu: u32) -> Result<OwnedFd, HarnessError> {
    crate::sys::perf::cgroup_cpu_clock(cgroup, cpu)
        .ctx(|| format!("perf_event_open a cgroup cpu-clock counter on cpu {cpu}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4"), Some(vec![0, 2, 3, 4]));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
