//! Setting up the VM as a small but ordinary Linux host, from pid 1: a tmpfs root (the initramfs's
//! own root cannot be pivot_root'ed away from, and the suites pivot), the usual pseudo-filesystems
//! with shared propagation as systemd leaves them, cgroup2 alone at /sys/fs/cgroup with every
//! controller the kernel has enabled for the root's children, the plan's kernel modules, every
//! network link up, a hostname, and the plan's sysctls.
//!
//! What it must never do: run anywhere but as pid 1 inside the VM (the init binary checks).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};
use nix::mount::{MsFlags, mount};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, socket,
};
use nix::unistd::{chdir, chroot, execv};
use serde::{Deserialize, Serialize};

use super::GuestError;
use crate::plan::{MODULE_DIR, sysctl_path};

/// The argument the init re-executes itself with once the root is a tmpfs.
pub const SWITCHED_ARG: &str = "--switched";

const NEW_ROOT: &str = "/isoprobe-root";

/// What the init found and did, brought out of the VM as `guest.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestFacts {
    /// `uname -r` and `uname -v`.
    pub release: String,
    pub version: String,
    /// CLOCK_BOOTTIME when the init started: the kernel's own boot time.
    pub boottime_at_init_ms: u64,
    pub cpus: usize,
    pub mem_total_kib: u64,
    /// The options cgroup2 was mounted with.
    pub cgroup2_options: String,
    /// cgroup.controllers of the root.
    pub controllers: Vec<String>,
    /// cgroup.subtree_control of the root after enabling each controller.
    pub controllers_enabled: Vec<String>,
    /// Controllers the kernel refused to enable, with the error.
    pub controllers_refused: BTreeMap<String, String>,
    /// The kernel modules loaded.
    pub modules: Vec<String>,
    /// The network links, all brought up.
    pub links: Vec<String>,
    /// The plan's sysctls, as read back after setting them.
    pub sysctls: BTreeMap<String, String>,
    /// /proc/swaps once the plan's swap is on (empty: no swap).
    #[serde(default)]
    pub swaps: String,
    /// Time the init spent setting up.
    pub setup_ms: u64,
}

fn ctx<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> Result<T, GuestError> {
    r.map_err(|source| GuestError::Sys { what: what(), source })
}

fn io_ctx<T>(r: std::io::Result<T>, what: impl FnOnce() -> String) -> Result<T, GuestError> {
    r.map_err(|source| GuestError::Io { what: what(), source })
}

/// Moves the initramfs into a tmpfs, makes that the root, and re-executes `/init` from it.
///
/// pivot_root(2) refuses to move away from the initial rootfs (EINVAL), and the suites pivot_root
/// their containers out of the VM's root; so the VM's root must be an ordinary mount, as it is on
/// any installed system. This is what switch_root(8) does: copy, delete the originals, move the
/// new mount onto /, chroot into it.
pub fn switch_root_and_reexec() -> Result<Infallible, GuestError> {
    io_ctx(fs::create_dir_all(NEW_ROOT), || format!("create {NEW_ROOT}"))?;
    ctx(mount(Some("isoprobe-root"), NEW_ROOT, Some("tmpfs"), MsFlags::empty(), Some("mode=0755")), || {
        format!("mount a tmpfs on {NEW_ROOT}")
    })?;
    for entry in io_ctx(fs::read_dir("/"), || "list /".into())? {
        let entry = io_ctx(entry, || "list /".into())?;
        let from = entry.path();
        if from == Path::new(NEW_ROOT) {
            continue;
        }
        move_tree(&from, &Path::new(NEW_ROOT).join(entry.file_name()))?;
    }
    ctx(chdir(NEW_ROOT), || format!("chdir {NEW_ROOT}"))?;
    ctx(mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>), || "move the new root onto /".into())?;
    ctx(chroot("."), || "chroot into the new root".into())?;
    ctx(chdir("/"), || "chdir / in the new root".into())?;
    let init = CString::new("/init").expect("no NUL");
    let arg = CString::new(SWITCHED_ARG).expect("no NUL");
    let err = execv(&init, &[init.clone(), arg]).unwrap_err();
    Err(GuestError::Sys { what: "re-execute /init in the new root".into(), source: err })
}

/// Copies `from` (a file, directory or symlink of the initramfs) to `to`, then removes `from`.
/// Device nodes are left behind: devtmpfs provides them in the new root.
fn move_tree(from: &Path, to: &Path) -> Result<(), GuestError> {
    let md = io_ctx(fs::symlink_metadata(from), || format!("stat {}", from.display()))?;
    let ft = md.file_type();
    if ft.is_dir() {
        io_ctx(fs::create_dir(to), || format!("create {}", to.display()))?;
        io_ctx(fs::set_permissions(to, md.permissions()), || format!("chmod {}", to.display()))?;
        for entry in io_ctx(fs::read_dir(from), || format!("list {}", from.display()))? {
            let entry = io_ctx(entry, || format!("list {}", from.display()))?;
            move_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        io_ctx(fs::remove_dir(from), || format!("remove {}", from.display()))
    } else if ft.is_symlink() {
        let target = io_ctx(fs::read_link(from), || format!("read the link {}", from.display()))?;
        io_ctx(symlink(&target, to), || format!("create the link {}", to.display()))?;
        io_ctx(fs::remove_file(from), || format!("remove {}", from.display()))
    } else if ft.is_file() {
        io_ctx(fs::copy(from, to), || format!("copy {} to {}", from.display(), to.display()))?;
        io_ctx(fs::remove_file(from), || format!("remove {}", from.display()))
    } else {
        io_ctx(fs::remove_file(from), || format!("remove {}", from.display()))
    }
}

fn mount_fs(fstype: &str, target: &str, flags: MsFlags, data: Option<&str>) -> Result<(), GuestError> {
    io_ctx(fs::create_dir_all(target), || format!("create {target}"))?;
    ctx(mount(Some(fstype), target, Some(fstype), flags, data), || format!("mount {fstype} on {target}"))
}

/// Mounts the pseudo-filesystems and makes every mount shared, as systemd does on a host.
/// Returns the options cgroup2 took.
pub fn mount_filesystems() -> Result<String, GuestError> {
    let secure = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", "/proc", secure, None)?;
    mount_fs("sysfs", "/sys", secure, None)?;
    mount_fs("devtmpfs", "/dev", MsFlags::MS_NOSUID, Some("mode=0755"))?;
    mount_fs("devpts", "/dev/pts", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("mode=0620,ptmxmode=0666"))?;
    mount_fs("tmpfs", "/dev/shm", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    mount_fs("mqueue", "/dev/mqueue", secure, None)?;
    mount_fs("tmpfs", "/tmp", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    mount_fs("tmpfs", "/run", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))?;
    // cgroup2 alone (no v1 hierarchy anywhere), with systemd's options where the kernel has them
    // (memory_recursiveprot is Linux 5.7).
    let mut options = String::new();
    for opts in ["nsdelegate,memory_recursiveprot", "nsdelegate", ""] {
        let data = (!opts.is_empty()).then_some(opts);
        match mount_fs("cgroup2", "/sys/fs/cgroup", secure, data) {
            Ok(()) => {
                options = opts.to_owned();
                break;
            }
            Err(GuestError::Sys { source: Errno::EINVAL, .. }) if !opts.is_empty() => continue,
            Err(e) => return Err(e),
        }
    }
    ctx(mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SHARED, None::<&str>), || {
        "make / recursively shared".into()
    })?;
    io_ctx(fs::create_dir_all("/root"), || "create /root".into())?;
    io_ctx(fs::set_permissions("/tmp", fs::Permissions::from_mode(0o1777)), || "chmod /tmp".into())?;
    Ok(options)
}

/// Enables every available controller in the root's cgroup.subtree_control, one at a time so that
/// a refusal names its controller.
pub fn enable_controllers(facts: &mut GuestFacts) -> Result<(), GuestError> {
    let root = Path::new("/sys/fs/cgroup");
    let read = |f: &str| io_ctx(fs::read_to_string(root.join(f)), || format!("read /sys/fs/cgroup/{f}"));
    facts.controllers = read("cgroup.controllers")?.split_whitespace().map(str::to_owned).collect();
    for c in &facts.controllers {
        if let Err(e) = fs::write(root.join("cgroup.subtree_control"), format!("+{c}")) {
            facts.controllers_refused.insert(c.clone(), e.to_string());
        }
    }
    facts.controllers_enabled = read("cgroup.subtree_control")?.split_whitespace().map(str::to_owned).collect();
    // The init and the steps it starts leave the root cgroup for a leaf of their own, as systemd
    // puts itself in /init.scope: in the root, the probe's cgroup path is `/` as the host sees it,
    // and a cgroup namespace could not be told from the host's (the cases needing
    // `cgroup:distinct-path` would be skipped). The root keeps no process but kernel threads, so
    // it can still give every controller to isoprobe's cgroups beside this one.
    let scope = root.join("init.scope");
    io_ctx(fs::create_dir_all(&scope), || "create /sys/fs/cgroup/init.scope".into())?;
    io_ctx(fs::write(scope.join("cgroup.procs"), "0"), || "move the init into /sys/fs/cgroup/init.scope".into())?;
    Ok(())
}

/// Loads each module from [`MODULE_DIR`] with finit_module(2); a compressed one is handed to the
/// kernel to decompress (MODULE_INIT_COMPRESSED_FILE, Linux 6.4, as kernels that compress their
/// modules can).
pub fn load_modules(names: &[String], facts: &mut GuestFacts) -> Result<(), GuestError> {
    const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;
    for name in names {
        let (path, flags) =
            [("ko", 0), ("ko.xz", MODULE_INIT_COMPRESSED_FILE), ("ko.zst", MODULE_INIT_COMPRESSED_FILE)]
                .into_iter()
                .map(|(ext, flags)| (format!("{MODULE_DIR}/{name}.{ext}"), flags))
                .find(|(p, _)| Path::new(p).exists())
                .ok_or_else(|| GuestError::Setup(format!("module {name} is not in {MODULE_DIR}")))?;
        let file = io_ctx(fs::File::open(&path), || format!("open {path}"))?;
        let flags = ModuleInitFlags::from_bits_retain(flags);
        ctx(finit_module(&file, c"", flags), || format!("load the module {path}"))?;
        facts.modules.push(name.clone());
    }
    Ok(())
}

/// Brings every network link up, as a host's network configuration would: `lo` (which then gets
/// 127.0.0.1, where the suites' loopback sentinel listens) and the links the modules created.
pub fn links_up(facts: &mut GuestFacts) -> Result<(), GuestError> {
    let mut names: Vec<String> = io_ctx(fs::read_dir("/sys/class/net"), || "list /sys/class/net".into())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        link_up(name)?;
    }
    facts.links = names;
    Ok(())
}

/// Sets IFF_UP on a link with an RTM_NEWLINK request over NETLINK_ROUTE (rtnetlink(7)).
fn link_up(name: &str) -> Result<(), GuestError> {
    let index = ctx(nix::net::if_::if_nametoindex(name), || format!("find the index of {name}"))?;
    let sock =
        ctx(socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute), || {
            "open a netlink socket".into()
        })?;
    ctx(bind(sock.as_raw_fd(), &NetlinkAddr::new(0, 0)), || "bind the netlink socket".into())?;
    // struct nlmsghdr (16 bytes) then struct ifinfomsg (16 bytes: family, pad, type, index, flags, change).
    let mut req = [0u8; 32];
    req[0..4].copy_from_slice(&32u32.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    req[20..24].copy_from_slice(&(index as i32).to_ne_bytes());
    let up = libc::IFF_UP as u32;
    req[24..28].copy_from_slice(&up.to_ne_bytes());
    req[28..32].copy_from_slice(&up.to_ne_bytes());
    ctx(send(sock.as_raw_fd(), &req, MsgFlags::empty()), || format!("send RTM_NEWLINK for {name}"))?;
    let mut buf = [0u8; 1024];
    let n = ctx(recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()), || "read the netlink answer".into())?;
    // The answer is an NLMSG_ERROR message whose error field (after the header) is 0 for success.
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    if n < 20 || i32::from(ty) != libc::NLMSG_ERROR {
        return Err(GuestError::Setup(format!("unexpected netlink answer to RTM_NEWLINK (type {ty}, {n} bytes)")));
    }
    let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if errno != 0 {
        return Err(GuestError::Sys { what: format!("bring {name} up"), source: Errno::from_raw(-errno) });
    }
    Ok(())
}

/// Sets each sysctl and reads it back.
pub fn apply_sysctls(sysctls: &BTreeMap<String, String>, facts: &mut GuestFacts) -> Result<(), GuestError> {
    for (name, value) in sysctls {
        let path = sysctl_path(name).ok_or_else(|| GuestError::Setup(format!("invalid sysctl name {name:?}")))?;
        io_ctx(fs::write(&path, value), || format!("set {name} to {value:?}"))?;
        let now = io_ctx(fs::read_to_string(&path), || format!("read {name} back"))?;
        facts.sysctls.insert(name.clone(), now.trim().to_owned());
    }
    Ok(())
}

/// CLOCK_BOOTTIME in milliseconds: how long the kernel has been up.
pub fn boottime_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| (t.tv_sec() * 1000 + t.tv_nsec() / 1_000_000) as u64)
        .unwrap_or(0)
}

/// The kernel and machine facts, and the hostname a host would have.
pub fn collect_facts(facts: &mut GuestFacts) -> Result<(), GuestError> {
    let uts = nix::sys::utsname::uname().map_err(|source| GuestError::Sys { what: "uname".into(), source })?;
    facts.release = uts.release().to_string_lossy().into_owned();
    facts.version = uts.version().to_string_lossy().into_owned();
    ctx(nix::unistd::sethostname("isoprobe-vm"), || "set the hostname".into())?;
    facts.cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let meminfo = io_ctx(fs::read_to_string("/proc/meminfo"), || "read /proc/meminfo".into())?;
    facts.mem_total_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ok(())
}
