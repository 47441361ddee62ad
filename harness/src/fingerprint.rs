//! The environment fingerprint: what about this machine and user decides what a run can observe
//! and what it costs. Every report and benchmark summary carries one, and `isoprobe compare` reads
//! two of them to decide whether two runs can be compared at all.
//!
//! Collecting never fails: a value that cannot be read is recorded as unknown, with the reason
//! where there is one. This module only reads (files under /proc and /sys, `--version` of tools);
//! it must never change the host.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isoprobe_probes::ns::NsSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mounts::parse_mountinfo;
use crate::requirement::unprivileged_userns_blocked;
use crate::run_env::host_namespaces;

/// Everything a run's results depend on besides isoprobe itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    pub kernel: KernelInfo,
    pub kernel_config: KernelConfig,
    /// The namespace kinds this kernel has (a /proc/self/ns entry each).
    #[schemars(schema_with = "crate::spec::schema::ns_set")]
    pub namespaces: NsSet,
    pub cgroup: CgroupInfo,
    pub user: UserInfo,
    pub userns: UsernsPolicy,
    pub cpu: CpuInfo,
    pub hypervisor: Hypervisor,
    /// Mounts in the caller's mount namespace (unshare(CLONE_NEWNS) copies them all).
    pub mount_count: usize,
    /// Versions of the container tools asked about (the launchers a run used).
    pub tools: Vec<ToolVersion>,
}

/// uname(2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KernelInfo {
    pub release: String,
    pub version: String,
    pub machine: String,
}

/// The kernel configuration options isoprobe's results depend on, where the configuration is
/// readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KernelConfig {
    /// Where the configuration was read (/proc/config.gz, `/boot/config-<release>`), if anywhere.
    pub source: Option<String>,
    /// `CONFIG_X` → `y`, `m`, `n` (is not set) or its value; options this kernel does not know are
    /// left out.
    pub options: BTreeMap<String, String>,
    /// Why nothing was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// The options recorded: namespaces, cgroup controllers, IPC, and what changes the cost of a
/// system call or a context switch.
pub const CONFIG_OPTIONS: &[&str] = &[
    "CONFIG_NAMESPACES",
    "CONFIG_UTS_NS",
    "CONFIG_IPC_NS",
    "CONFIG_USER_NS",
    "CONFIG_PID_NS",
    "CONFIG_NET_NS",
    "CONFIG_TIME_NS",
    "CONFIG_CGROUPS",
    "CONFIG_MEMCG",
    "CONFIG_CGROUP_PIDS",
    "CONFIG_CGROUP_SCHED",
    "CONFIG_CFS_BANDWIDTH",
    "CONFIG_CPUSETS",
    "CONFIG_BLK_CGROUP",
    "CONFIG_CGROUP_FREEZER",
    "CONFIG_CGROUP_DEVICE",
    "CONFIG_SYSVIPC",
    "CONFIG_POSIX_MQUEUE",
    "CONFIG_CHECKPOINT_RESTORE",
    "CONFIG_SECURITY_APPARMOR",
    "CONFIG_SECURITY_SELINUX",
    "CONFIG_HZ",
    "CONFIG_PREEMPT",
    "CONFIG_PREEMPT_DYNAMIC",
    "CONFIG_PREEMPT_RT",
    "CONFIG_NO_HZ_FULL",
    "CONFIG_MITIGATION_PAGE_TABLE_ISOLATION",
    "CONFIG_PAGE_TABLE_ISOLATION",
    "CONFIG_MITIGATION_RETPOLINE",
    "CONFIG_RETPOLINE",
];

/// How cgroups are mounted: the cgroup module's own vocabulary.
pub use crate::cgroup::LayoutMode as CgroupLayout;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CgroupInfo {
    pub layout: CgroupLayout,
    /// v1 hierarchies: mount point and controllers (a named hierarchy shows as `name=<name>`).
    pub v1: Vec<CgroupV1Hierarchy>,
    /// Where cgroup2 is mounted.
    pub v2_mount: Option<String>,
    /// cgroup.controllers of the cgroup2 root.
    pub v2_controllers: Vec<String>,
    /// Controllers the kernel has (/proc/cgroups, enabled) that no hierarchy holds.
    pub unmounted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CgroupV1Hierarchy {
    pub mount_point: String,
    pub controllers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    pub euid: u32,
    pub egid: u32,
    /// CapEff of /proc/self/status, in hex.
    pub cap_eff: String,
    /// The names of the effective capabilities (`cap_sys_admin`), or `all` when every capability
    /// the kernel knows is held.
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UsernsPolicy {
    /// Whether an unprivileged process may create a user namespace.
    pub unprivileged: bool,
    /// Why not, when it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// The sysctls that decide it, where present.
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CpuInfo {
    pub model: String,
    /// Online CPUs (/sys/devices/system/cpu/online).
    pub online: usize,
    /// CPUs this process may run on (sched_getaffinity).
    pub available: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Hypervisor {
    /// The CPU reports running under a hypervisor (the `hypervisor` cpuinfo flag).
    pub detected: bool,
    /// The hypervisor's name, from its CPUID signature or /sys/hypervisor/type.
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolVersion {
    pub name: String,
    /// Where it was found on PATH (or /usr/sbin, /sbin).
    pub path: Option<String>,
    /// The first line of `<tool> --version`.
    pub version: Option<String>,
}

/// The external tools the launchers use, for `isoprobe env`.
pub const LAUNCHER_TOOLS: &[&str] = &["unshare", "bwrap", "lxc-execute", "runc", "crun", "systemd-nspawn"];

impl Fingerprint {
    /// Reads the fingerprint of this machine and process, with the versions of `tools`.
    pub fn collect(tools: &[&str]) -> Fingerprint {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_else(|| "unknown".into())
        };
        let kernel = KernelInfo {
            release: field(|u| u.release()),
            version: field(|u| u.version()),
            machine: field(|u| u.machine()),
        };
        let kernel_config = read_kernel_config(&kernel.release);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = parse_mountinfo(&mountinfo);
        let cgroup = match crate::cgroup::host_layout() {
            Ok(layout) => cgroup_info(layout),
            Err(_) => cgroup_info(&crate::cgroup::CgroupLayout { hierarchies: Vec::new(), controllers: Vec::new() }),
        };
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let cap_eff = status_field(&status, "CapEff").unwrap_or("0").to_owned();
        let last_cap = read_trimmed("/proc/sys/kernel/cap_last_cap").and_then(|s| s.parse().ok());
        let user = UserInfo {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            capabilities: capability_names(u64::from_str_radix(&cap_eff, 16).unwrap_or(0), last_cap),
            cap_eff,
        };
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = CpuInfo {
            model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            online: read_trimmed("/sys/devices/system/cpu/online").map(|s| count_cpu_list(&s)).unwrap_or(0),
            available: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        };
        let hypervisor = Hypervisor {
            detected: cpu_flags(&cpuinfo).any(|f| f == "hypervisor"),
            vendor: cpuid_hypervisor().or_else(|| read_trimmed("/sys/hypervisor/type")),
        };
        Fingerprint {
            kernel,
            kernel_config,
            namespaces: host_namespaces().keys().copied().collect(),
            cgroup,
            user,
            userns: userns_policy(),
            cpu,
            hypervisor,
            mount_count: mounts.len(),
            tools: tools.iter().map(|t| tool_version(t)).collect(),
        }
    }

    /// Flat `key = value` pairs, in a fixed order, for JUnit properties and `isoprobe env`.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            ("kernel.release".into(), self.kernel.release.clone()),
            ("kernel.version".into(), self.kernel.version.clone()),
            ("kernel.machine".into(), self.kernel.machine.clone()),
        ];
        match (&self.kernel_config.source, &self.kernel_config.unavailable) {
            (Some(src), _) => p.push(("kernel.config.source".into(), src.clone())),
            (None, Some(why)) => p.push(("kernel.config.source".into(), format!("unavailable: {why}"))),
            (None, None) => {}
        }
        for (k, v) in &self.kernel_config.options {
            p.push((format!("kernel.config.{k}"), v.clone()));
        }
        p.push(("namespaces".into(), self.namespaces.to_string()));
        p.push(("cgroup.layout".into(), self.cgroup.layout.name().into()));
        for h in &self.cgroup.v1 {
            p.push((format!("cgroup.v1.{}", h.mount_point), h.controllers.join(",")));
        }
        if let Some(m) = &self.cgroup.v2_mount {
            p.push(("cgroup.v2.mount".into(), m.clone()));
            p.push(("cgroup.v2.controllers".into(), self.cgroup.v2_controllers.join(",")));
        }
        if !self.cgroup.unmounted.is_empty() {
            p.push(("cgroup.unmounted".into(), self.cgroup.unmounted.join(",")));
        }
        p.push(("user.euid".into(), self.user.euid.to_string()));
        p.push(("user.egid".into(), self.user.egid.to_string()));
        p.push(("user.cap_eff".into(), self.user.cap_eff.clone()));
        p.push(("user.capabilities".into(), self.user.capabilities.join(",")));
        let userns = match &self.userns.blocked_by {
            None => "allowed".to_owned(),
            Some(why) => format!("blocked: {why}"),
        };
        p.push(("userns.unprivileged".into(), userns));
        for (k, v) in &self.userns.sysctls {
            p.push((format!("userns.sysctl.{k}"), v.clone()));
        }
        p.push(("cpu.model".into(), self.cpu.model.clone()));
        p.push(("cpu.online".into(), self.cpu.online.to_string()));
        p.push(("cpu.available".into(), self.cpu.available.to_string()));
        let hv = match (&self.hypervisor.vendor, self.hypervisor.detected) {
            (Some(v), _) => v.clone(),
            (None, true) => "yes (unknown vendor)".into(),
            (None, false) => "none".into(),
        };
        p.push(("hypervisor".into(), hv));
        p.push(("mount_count".into(), self.mount_count.to_string()));
        for t in &self.tools {
            let v = match (&t.path, &t.version) {
                (None, _) => "not found".to_owned(),
                (Some(path), Some(v)) => format!("{v} ({path})"),
                (Some(path), None) => format!("unknown version ({path})"),
            };
            p.push((format!("tool.{}", t.name), v));
        }
        p
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The configuration from /proc/config.gz (CONFIG_IKCONFIG_PROC), else /boot/config-<release>,
/// else /lib/modules/<release>/config.
fn read_kernel_config(release: &str) -> KernelConfig {
    let mut tried = Vec::new();
    let gz = Path::new("/proc/config.gz");
    match fs::File::open(gz) {
        Ok(f) => {
            let mut text = String::new();
            match flate2::read::GzDecoder::new(f).read_to_string(&mut text) {
                Ok(_) => return config_from(gz, &text),
                Err(e) => tried.push(format!("{}: {e}", gz.display())),
            }
        }
        Err(e) => tried.push(format!("{}: {e}", gz.display())),
    }
    for p in [PathBuf::from(format!("/boot/config-{release}")), PathBuf::from(format!("/lib/modules/{release}/config"))]
    {
        match fs::read_to_string(&p) {
            Ok(text) => return config_from(&p, &text),
            Err(e) => tried.push(format!("{}: {e}", p.display())),
        }
    }
    KernelConfig { source: None, options: BTreeMap::new(), unavailable: Some(tried.join("; ")) }
}

fn config_from(path: &Path, text: &str) -> KernelConfig {
    KernelConfig {
        source: Some(path.display().to_string()),
        options: parse_kernel_config(text, CONFIG_OPTIONS),
        unavailable: None,
    }
}

/// Picks `wanted` out of a kernel .config: `CONFIG_X=value` lines, and `# CONFIG_X is not set`
/// as `n`.
pub fn parse_kernel_config(text: &str, wanted: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let (name, value) = if let Some(rest) = line.strip_prefix("# ") {
            match rest.strip_suffix(" is not set") {
                Some(name) => (name, "n"),
                None => continue,
            }
        } else {
            match line.split_once('=') {
                Some((name, value)) => (name, value.trim_matches('"')),
                None => continue,
            }
        };
        if wanted.contains(&name) {
            out.insert(name.to_owned(), value.to_owned());
        }
    }
    out
}

/// The cgroup part of the fingerprint, from the host's layout (the cgroup module's one reading of
/// the mount table, /proc/cgroups and /proc/self/cgroup).
pub fn cgroup_info(layout: &crate::cgroup::CgroupLayout) -> CgroupInfo {
    use crate::cgroup::Version;
    let enabled: Vec<&str> = layout.controllers.iter().filter(|c| c.enabled).map(|c| c.name.as_str()).collect();
    let v1: Vec<CgroupV1Hierarchy> = layout
        .hierarchies
        .iter()
        .filter(|h| h.version == Version::V1)
        .map(|h| CgroupV1Hierarchy {
            mount_point: h.mount_point.display().to_string(),
            controllers: match &h.name {
                Some(name) => vec![format!("name={name}")],
                None => h.controllers.iter().filter(|c| enabled.contains(&c.as_str())).cloned().collect(),
            },
        })
        .collect();
    let v2 = layout.v2().map(|(_, h)| h);
    let v2_controllers = v2.map(|h| h.controllers.clone()).unwrap_or_default();
    let unmounted = enabled
        .iter()
        .filter(|c| {
            !v1.iter().any(|h| h.controllers.iter().any(|x| x == *c)) && !v2_controllers.iter().any(|x| x == *c)
        })
        .map(|c| (*c).to_owned())
        .collect();
    CgroupInfo {
        layout: layout.mode(),
        v1,
        v2_mount: v2.map(|h| h.mount_point.display().to_string()),
        v2_controllers,
        unmounted,
    }
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// capabilities(7), by bit number.
const CAP_NAMES: &[&str] = &[
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The names of the set bits; `all` when every capability up to `last_cap` is set.
pub fn capability_names(mask: u64, last_cap: Option<u32>) -> Vec<String> {
    if let Some(last) = last_cap {
        let full = if last >= 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 };
        if mask & full == full {
            return vec!["all".into()];
        }
    }
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| CAP_NAMES.get(b).map(|s| (*s).to_owned()).unwrap_or_else(|| format!("cap_{b}")))
        .collect()
}

fn userns_policy() -> UsernsPolicy {
    let mut sysctls = BTreeMap::new();
    for (name, path) in [
        ("kernel.unprivileged_userns_clone", "/proc/sys/kernel/unprivileged_userns_clone"),
        ("user.max_user_namespaces", "/proc/sys/user/max_user_namespaces"),
        ("kernel.apparmor_restrict_unprivileged_userns", "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
    ] {
        if let Some(v) = read_trimmed(path) {
            sysctls.insert(name.to_owned(), v);
        }
    }
    let blocked_by = unprivileged_userns_blocked();
    UsernsPolicy { unprivileged: blocked_by.is_none(), blocked_by, sysctls }
}

/// `model name` (x86), else `cpu model` or `Processor` (other architectures).
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "cpu model", "Processor", "cpu"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_owned())
        })
    })
}

fn cpu_flags(cpuinfo: &str) -> impl Iterator<Item = &str> {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "flags").then_some(v)
        })
        .unwrap_or("")
        .split_whitespace()
}

/// Counts a kernel CPU list such as `0-3,8,10-11`.
pub fn count_cpu_list(list: &str) -> usize {
    list.trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|r| match r.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => usize::from(r.parse::<usize>().is_ok()),
        })
        .sum()
}

/// The hypervisor's CPUID signature (leaf 0x40000000), named.
#[cfg(target_arch = "x86_64")]
pub(crate) fn cpuid_hypervisor() -> Option<String> {
    use std::arch::x86_64::__cpuid;
    // Leaf 1, ECX bit 31: "hypervisor present"; without it leaf 0x40000000 is undefined.
    if __cpuid(1).ecx & (1 << 31) == 0 {
        return None;
    }
    let r = __cpuid(0x4000_0000);
    let mut sig = Vec::with_capacity(12);
    for reg in [r.ebx, r.ecx, r.edx] {
        sig.extend_from_slice(&reg.to_le_bytes());
    }
    let sig = String::from_utf8_lossy(&sig).trim_end_matches('\0').to_owned();
    let name = match sig.as_str() {
        "KVMKVMKVM" => "kvm",
        "Microsoft Hv" => "hyper-v",
        "VMwareVMware" => "vmware",
        "XenVMMXenVMM" => "xen",
        "TCGTCGTCGTCG" => "qemu-tcg",
        "bhyve bhyve " => "bhyve",
        "ACRNACRNACRN" => "acrn",
        " lrpepyh  vr" => "parallels",
        "VBoxVBoxVBox" => "virtualbox",
        _ if sig.trim().is_empty() => return None,
        other => return Some(format!("unknown ({other:?})")),
    };
    Some(name.to_owned())
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn cpuid_hypervisor() -> Option<String> {
    None
}

/// Where `name` is: PATH, then the sbin directories that a non-root PATH often lacks.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How long a tool's `--version` may take before it is given up on (and killed).
const TOOL_TIMEOUT: Duration = Duration::from_secs(5);

fn tool_version(name: &str) -> ToolVersion {
    // A launcher's tool is asked through its launcher: the look-up is cached, and done under the
    // launcher's guard (crun creates its state root /run/crun on every invocation, `--version`
    // included; the crun launcher creates and removes it under the host lock).
    let known = crate::spec::LauncherKind::EXTERNAL
        .into_iter()
        .filter_map(|k| crate::launcher::registry::launcher(k).tool().ok().flatten())
        .find(|t| t.command == name);
    if let Some(t) = known {
        return ToolVersion {
            name: name.to_owned(),
            path: Some(t.path.display().to_string()),
            version: Some(t.version.clone()),
        };
    }
    let Some(path) = find_tool(name) else {
        return ToolVersion { name: name.to_owned(), path: None, version: None };
    };
    let version = (|| {
        let mut child = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + TOOL_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
        let mut out = String::new();
        child.stdout.take()?.read_to_string(&mut out).ok()?;
        out.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
    })();
    ToolVersion { name: name.to_owned(), path: Some(path.display().to_string()), version }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_config_keeps_wanted_options_and_not_set_lines() {
        let text = "CONFIG_USER_NS=y\n# CONFIG_TIME_NS is not set\nCONFIG_HZ=250\nCONFIG_OTHER=y\n\
                    CONFIG_DEFAULT_HOSTNAME=\"(none)\"\n# comment\n";
        let got = parse_kernel_config(text, &["CONFIG_USER_NS", "CONFIG_TIME_NS", "CONFIG_HZ", "CONFIG_PID_NS"]);
        let want: BTreeMap<String, String> = [("CONFIG_USER_NS", "y"), ("CONFIG_TIME_NS", "n"), ("CONFIG_HZ", "250")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(got, want);
    }

    const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpuset\t3\t1\t1\ncpu\t1\t1\t1\nmemory\t4\t27\t1\nnet_cls\t0\t1\t1\nhugetlb\t0\t1\t1\nrdma\t0\t1\t0\n";

    /// The layout a mount table, /proc/cgroups and /proc/self/cgroup describe (see
    /// `cgroup::CgroupLayout::from_texts`), cgroup2's root listing `v2_controllers`.
    fn layout(mountinfo: &str, self_cgroup: &str, v2_controllers: &'static str) -> crate::cgroup::CgroupLayout {
        crate::cgroup::CgroupLayout::from_texts(
            mountinfo,
            PROC_CGROUPS,
            self_cgroup,
            |p| p.ends_with("cgroup.controllers").then(|| v2_controllers.to_owned()),
            |_| true,
        )
    }

    #[test]
    fn hybrid_layout_from_a_mount_table() {
        let mountinfo = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
            34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let own = "5:name=systemd:/\n4:memory:/\n3:cpuset:/\n1:cpu:/\n0::/\n";
        let info = cgroup_info(&layout(mountinfo, own, "hugetlb\n"));
        assert_eq!(info.layout, CgroupLayout::Hybrid);
        assert_eq!(info.v1.len(), 4);
        assert_eq!(info.v1[3].controllers, ["name=systemd"]);
        assert_eq!(info.v2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(info.v2_controllers, ["hugetlb"]);
        // rdma is disabled (enabled = 0): not "unmounted", simply off.
        assert_eq!(info.unmounted, ["net_cls"]);
    }

    #[test]
    fn pure_v2_and_none() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let info = cgroup_info(&layout(v2, "0::/\n", "cpuset cpu memory hugetlb net_cls"));
        assert_eq!(info.layout, CgroupLayout::V2);
        assert!(info.unmounted.is_empty(), "{:?}", info.unmounted);
        // A named v1 hierarchy alone holds no controller: still not v1.
        let named = "40 31 0:37 / /x rw - cgroup cgroup rw,name=systemd\n";
        assert_eq!(cgroup_info(&layout(named, "1:name=systemd:/\n", "")).layout, CgroupLayout::None);
    }

    #[test]
    fn capabilities_by_name_or_all() {
        assert_eq!(capability_names(0x1ff_ffff_ffff, Some(40)), ["all"]);
        assert_eq!(capability_names((1 << 21) | 1, Some(40)), ["cap_chown", "cap_sys_admin"]);
        assert_eq!(capability_names(1 << 45, None), ["cap_45"]);
        assert!(capability_names(0, Some(40)).is_empty());
    }

    #[test]
    fn cpu_lists_and_models() {
        assert_eq!(count_cpu_list("0-1\n"), 2);
        assert_eq!(count_cpu_list("0-3,8,10-11"), 7);
        assert_eq!(count_cpu_list("garbage"), 0);
        assert_eq!(cpu_model("processor\t: 0\nmodel name\t: AMD EPYC\n").as_deref(), Some("AMD EPYC"));
        assert_eq!(cpu_model("Processor\t: ARMv7 rev 4 (v7l)\n").as_deref(), Some("ARMv7 rev 4 (v7l)"));
    }

    /// The real thing: this machine's fingerprint is complete and consistent with what the
    /// harness itself sees.
    #[test]
    fn this_machine() {
        let f = Fingerprint::collect(&["sh", "isoprobe-no-such-tool"]);
        assert!(!f.kernel.release.is_empty() && f.kernel.release != "unknown");
        assert_eq!(f.namespaces, host_namespaces().keys().copied().collect::<NsSet>());
        assert!(f.cpu.online >= 1 && f.cpu.available >= 1);
        assert!(f.mount_count >= 1);
        assert_eq!(f.user.euid, nix::unistd::geteuid().as_raw());
        assert!(f.tools[0].path.is_some(), "sh is on PATH");
        assert_eq!(f.tools[1], ToolVersion { name: "isoprobe-no-such-tool".into(), path: None, version: None });
        let back: Fingerprint = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        let props = f.properties();
        assert!(props.iter().any(|(k, v)| k == "kernel.release" && *v == f.kernel.release));
    }
}
