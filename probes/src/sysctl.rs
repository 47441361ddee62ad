//! The namespaced kernel settings: which `/proc/sys` entries each namespace kind owns ([`TABLE`],
//! data, with the kernel source line behind each entry), the pure helpers around them (which kind
//! owns a path, a value in comparable form, values unlike the present ones to write), the walk of
//! a `/proc/sys` tree through a directory descriptor, and [`SysDirs`], which opens, reads and
//! writes its entries by name.
//!
//! `/proc/sys` shows the namespaces of the process that reads or writes it, whoever mounted the
//! procfs: every owning kind looks its entries up through `current` (each source line says how).
//! So a probe sees its own namespaces' settings through any procfs, the harness sees the host's.
//!
//! The probe writes the entries of the kinds it has a namespace of in that namespace; the harness
//! reads the host's, restores any that changed (a leak), and covers them in its snapshot. An entry
//! not in the table is global: the probe only asks whether it may open it for writing.
//!
//! What this module must never do: choose what to write. It writes only the value its caller
//! gives, to the entry its caller names.

use std::collections::{HashMap, hash_map};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fstat, fstatat};

use crate::ns::NsKind;

/// The kinds that own sysctls, in report order.
pub const KINDS: [NsKind; 5] = [NsKind::Pid, NsKind::Uts, NsKind::Ipc, NsKind::Net, NsKind::User];

/// Which entries a table row covers, by path under `/proc/sys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// This one file.
    Exact(&'static str),
    /// Every file below this directory.
    Under(&'static str),
    /// Every file directly in the directory of this prefix whose name starts with it
    /// (`user/max_`).
    Prefix(&'static str),
}

/// How the probe picks a value to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Numbers (one or a few, space separated) one up or down; a word from the value's own list
    /// or from a sibling `*available*` list.
    Generic,
    /// A name (hostname, domainname): an isoprobe token, so that a dead run's recovery knows it.
    Name,
    /// `ns_last_pid`: a pid well away from the present one, below the namespace's `pid_max`.
    LastPid,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Owned {
    pub kind: NsKind,
    pub entries: Entries,
    pub values: Values,
    /// The first kernel (major, minor) where the kind owns these entries; before, they are global.
    /// A probe in the harness's namespace of the kind tests them with the global entries (the
    /// oracle, which knows no kernel, then asks the same of the kind on every kernel).
    pub since: Option<(u32, u32)>,
    /// The value moves by itself (every fork moves `ns_last_pid`): the host's is not compared
    /// before and after, and the snapshot leaves it out; the probe's read-back shows where its
    /// write landed.
    pub volatile: bool,
    /// The kernel source or documentation that makes the entry the kind's.
    pub source: &'static str,
    /// Below a tree (`Entries::Under`), the entries a probe in the harness's namespace of the
    /// kind tests (whether it may open them for writing), one per mode the tree's entries have:
    /// the permission hook sees an entry only through its mode (net_ctl_permissions in
    /// net/sysctl_net.c, mq_permissions in ipc/mq_sysctl.c), and listing the host's whole tree
    /// in every case costs more than the rest of the case.
    pub sample: &'static [&'static str],
}

const fn row(kind: NsKind, entries: Entries, source: &'static str) -> Owned {
    Owned { kind, entries, values: Values::Generic, since: None, volatile: false, source, sample: &[] }
}

const IPC_TABLE: &str = "ipc/ipc_sysctl.c: ipc_sysctls[], one set per ipc namespace (setup_ipc_sysctls; set_lookup() \
                         returns current->nsproxy->ipc_ns->ipc_set); Documentation/admin-guide/sysctl/kernel.rst";

/// Which kind owns which entries. Every kind looks its set up through the calling process, so a
/// namespace's values are what a process in it reads.
pub const TABLE: &[Owned] = &[
    Owned {
        // Mode 0644 and 0200 (flush).
        sample: &["net/core/somaxconn", "net/ipv4/ip_forward", "net/ipv4/route/flush", "net/ipv6/route/flush"],
        ..row(
            NsKind::Net,
            Entries::Under("net"),
            "net/sysctl_net.c: net_ctl_header_lookup() returns &current->nsproxy->net_ns->sysctls; tables are \
             registered per network namespace with register_net_sysctl() (those registered for init_net alone \
             are seen in it alone)",
        )
    },
    row(NsKind::Ipc, Entries::Exact("kernel/shmmax"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/shmall"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/shmmni"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/shm_rmid_forced"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/msgmax"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/msgmnb"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/msgmni"), IPC_TABLE),
    // A dummy since Linux 3.19 ("writing to auto_msgmni has no effect"), but in the same set.
    row(NsKind::Ipc, Entries::Exact("kernel/auto_msgmni"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/sem"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/sem_next_id"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/msg_next_id"), IPC_TABLE),
    row(NsKind::Ipc, Entries::Exact("kernel/shm_next_id"), IPC_TABLE),
    Owned {
        sample: &["fs/mqueue/queues_max"],
        ..row(
            NsKind::Ipc,
            Entries::Under("fs/mqueue"),
            "ipc/mq_sysctl.c: mq_sysctls[], set_lookup() returns &current->nsproxy->ipc_ns->mq_set; \
             Documentation/admin-guide/sysctl/fs.rst (mqueue)",
        )
    },
    Owned {
        values: Values::Name,
        ..row(
            NsKind::Uts,
            Entries::Exact("kernel/hostname"),
            "kernel/utsname_sysctl.c: uts_kern_table[], get_uts() takes current->nsproxy->uts_ns",
        )
    },
    Owned {
        values: Values::Name,
        ..row(
            NsKind::Uts,
            Entries::Exact("kernel/domainname"),
            "kernel/utsname_sysctl.c: uts_kern_table[], get_uts() takes current->nsproxy->uts_ns",
        )
    },
    row(
        NsKind::User,
        Entries::Prefix("user/max_"),
        "kernel/ucount.c: user_table[], set_lookup() returns &current_user_ns()->set; \
         Documentation/admin-guide/sysctl/user.rst (per user per user namespace limits)",
    ),
    Owned {
        values: Values::LastPid,
        volatile: true,
        ..row(
            NsKind::Pid,
            Entries::Exact("kernel/ns_last_pid"),
            "kernel/pid_namespace.c: pid_ns_ctl_handler() acts on task_active_pid_ns(current); \
             Documentation/admin-guide/sysctl/kernel.rst (ns_last_pid)",
        )
    },
    Owned {
        since: Some((6, 14)),
        ..row(
            NsKind::Pid,
            Entries::Exact("kernel/pid_max"),
            "kernel/pid.c: pid_max is per pid namespace since Linux 6.14 (\"pid: allow pid_max to be set per \
             pid namespace\": pid_table_root, set_lookup() takes task_active_pid_ns(current))",
        )
    },
];

/// An entry under a kind's tree whose value is global: the kernel registers it in every
/// namespace of the kind, but it reads and sets one setting for the whole kernel. The probe never
/// writes it (it is global); the global check tests it, and names it apart.
#[derive(Debug, Clone, Copy)]
pub struct KnownGlobal {
    pub path: &'static str,
    /// The kernel source that makes it global, and what writing it does.
    pub source: &'static str,
}

/// The known global entries under a kind's tree. A leak by construction: whoever may write the
/// entry in a namespace of its own (a user namespace's root, in a network namespace it made)
/// sets the host's value.
pub const KNOWN_GLOBAL: &[KnownGlobal] = &[KnownGlobal {
    path: "net/netfilter/nf_hooks_lwtunnel",
    source: "net/netfilter/nf_hooks_lwtunnel.c (Linux 5.15): nf_hooks_lwtunnel_sysctl_handler() reads and sets the \
             nf_hooks_lwtunnel_enabled static key, one for the whole kernel, though the entry is registered in \
             every network namespace; setting it is one-way (writing 0 once it is 1 gives EBUSY), so a write \
             cannot be undone before a reboot",
}];

/// The known global entry at `path`, if it is one.
pub fn known_global(path: &str) -> Option<&'static KnownGlobal> {
    KNOWN_GLOBAL.iter().find(|k| k.path == path)
}

impl Owned {
    /// Whether this row covers `path` (under /proc/sys, no leading slash).
    pub fn covers(&self, path: &str) -> bool {
        match self.entries {
            Entries::Exact(p) => path == p,
            Entries::Under(dir) => path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')),
            Entries::Prefix(prefix) => path.strip_prefix(prefix).is_some_and(|rest| !rest.contains('/')),
        }
    }

    /// The directory to walk for this row's entries.
    pub fn dir(&self) -> &'static str {
        match self.entries {
            Entries::Exact(p) | Entries::Prefix(p) => p.rsplit_once('/').map_or("", |(d, _)| d),
            Entries::Under(dir) => dir,
        }
    }

    fn applies(&self, kernel: Option<(u32, u32)>) -> bool {
        match (self.since, kernel) {
            (Some(since), Some(running)) => running >= since,
            // An unreadable kernel version: take the entry as the kind's only when it always was,
            // so that an entry that may be global is never written.
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

/// The row that makes `path` a namespace kind's on a kernel of version `kernel`; `None` for a
/// global entry.
pub fn owner(path: &str, kernel: Option<(u32, u32)>) -> Option<&'static Owned> {
    if known_global(path).is_some() {
        return None;
    }
    TABLE.iter().find(|r| r.applies(kernel) && r.covers(path))
}

/// Whether `path`'s value moves by itself (see [`Owned::volatile`]), on any kernel.
pub fn volatile(path: &str) -> bool {
    TABLE.iter().any(|r| r.volatile && r.covers(path))
}

/// The (major, minor) a release string (`uname -r`, `6.1.0-28-cloud-amd64`) starts with.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut nums = release.split(|c: char| !c.is_ascii_digit()).map(str::parse::<u32>);
    match (nums.next(), nums.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Some((major, minor)),
        _ => None,
    }
}

/// Whether `path` is a plain relative path under /proc/sys: components of letters, digits and
/// `._-:@`, none of them `.` or `..`. What the harness accepts from a probe before it reads (or
/// restores) the host's entry of that name.
pub fn plain_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:@".contains(&b))
        })
}

/// A value as read from /proc/sys, in comparable form: whitespace runs (the tabs of vectors, the
/// trailing newline) collapsed to single spaces, and trimmed.
pub fn normalize(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Values to write to an entry whose value is `value` (normalised), most preferred first, all
/// different from it. `sibling` reads another entry of the same directory by name (for a word
/// from an `*available*` list); `token` is the probe's own isoprobe token; `pid_max` bounds a
/// `ns_last_pid`. Empty when the probe knows no legal value unlike the present one.
pub fn candidates(
    values: Values,
    value: &str,
    sibling_words: &[String],
    token: &str,
    suffix: &str,
    pid_max: Option<i64>,
) -> Vec<String> {
    let mut out: Vec<String> = match values {
        Values::Name => vec![format!("{token}-{suffix}")],
        Values::LastPid => {
            let (Ok(now), Some(max)) = (value.parse::<i64>(), pid_max) else { return Vec::new() };
            // Far from the present value (so that nothing else in the namespace gets there by
            // forking meanwhile), and a legal pid of the namespace.
            [now + 1000, now + 100, now / 2]
                .into_iter()
                .filter(|c| (0..max).contains(c))
                .map(|c| c.to_string())
                .collect()
        }
        Values::Generic => {
            let words: Vec<&str> = value.split(' ').filter(|w| !w.is_empty()).collect();
            let numbers: Option<Vec<i128>> = words.iter().map(|w| w.parse::<i128>().ok()).collect();
            match numbers {
                Some(n) if !n.is_empty() => {
                    let mut v = Vec::new();
                    let mut positions = vec![0];
                    if n.len() > 1 {
                        positions.push(n.len() - 1);
                    }
                    for i in positions {
                        for delta in [1, -1] {
                            let mut m = n.clone();
                            m[i] += delta;
                            v.push(m.iter().map(i128::to_string).collect::<Vec<_>>().join(" "));
                        }
                    }
                    v
                }
                // A list of words: each alone (a subset of an allowed list).
                _ if words.len() > 1 => words.iter().map(|w| w.to_string()).collect(),
                // One word: another from a sibling list of what is available.
                _ if words.len() == 1 => sibling_words.iter().filter(|w| w.as_str() != words[0]).cloned().collect(),
                _ => Vec::new(),
            }
        }
    };
    out.retain(|c| c != value);
    out.dedup();
    out
}

/// The entry next to `path` that lists what is available for it, by name: `tcp_available_congestion_control`
/// for `tcp_congestion_control`, `available_schedulers` for `scheduler`. Its words are the
/// candidates for a one-word value.
pub fn available_siblings<'a>(path: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let (dir, own) = path.rsplit_once('/').unwrap_or(("", path));
    names
        .into_iter()
        .filter(|n| {
            let rest = n.replacen("available_", "", 1);
            *n != own && n.contains("available_") && (rest == own || rest.strip_suffix('s') == Some(own))
        })
        .map(|n| if dir.is_empty() { n.to_owned() } else { format!("{dir}/{n}") })
        .collect()
}

/// One file found by a listing ([`SysDirs::walk`]), or named by the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Under /proc/sys, no leading slash.
    pub path: String,
    /// Its permission bits (the table entry's mode), when the listing asked for them.
    pub mode: Option<u32>,
    /// Named by the table ([`Entries::Exact`], [`Owned::sample`]) and not looked up: it may not
    /// exist. The open that uses it is its lookup too ([`SysDirs::open_named`]): a lookup in
    /// /proc/sys leaves RCU path walk (proc_sys_revalidate refuses it), about 2 µs a name on the
    /// development VM against 0.2 to 0.7 µs for a call on a descriptor.
    pub named: bool,
}

impl Found {
    fn new(path: String, mode: Option<u32>) -> Found {
        Found { path, mode: mode.map(|m| m & 0o7777), named: false }
    }

    /// An entry named by the table, not looked up.
    pub fn named(path: &str) -> Found {
        Found { path: path.to_owned(), mode: None, named: true }
    }

    /// An entry someone listed (the harness, for the global entries), mode unknown.
    pub fn listed(path: &str) -> Found {
        Found::new(path.to_owned(), None)
    }

    /// Some write bit is set in its mode (what the table entry allows at most); unknown counts
    /// as writable.
    pub fn writable_mode(&self) -> bool {
        self.mode.is_none_or(|m| m & 0o222 != 0)
    }
}

/// A /proc/sys tree and the descriptors of its directories, each opened once (by a listing, or by
/// the first open of an entry in it), so that an entry is opened by its name in its directory:
/// one component to look up, as /proc/sys lookups are what a sweep of hundreds of entries spends
/// its time on.
#[derive(Debug)]
pub struct SysDirs {
    root: OwnedFd,
    /// The device of `root`: a directory on another is another filesystem (binfmt_misc).
    dev: Option<libc::dev_t>,
    /// By path under /proc/sys; `""`, if there, is `root` again, for listing it.
    dirs: HashMap<String, DirFd>,
    /// Entries kept open for reading again (see [`SysDirs::read_kept`]).
    kept: HashMap<String, OwnedFd>,
    /// Where the descriptors it keeps go: at or above this number (see
    /// [`SysDirs::keep_fds_from`]).
    floor: Option<RawFd>,
}

impl SysDirs {
    /// `root`: a descriptor of a /proc/sys directory.
    pub fn new(root: OwnedFd) -> SysDirs {
        SysDirs { root, dev: None, dirs: HashMap::new(), kept: HashMap::new(), floor: None }
    }

    /// Keeps every descriptor it holds (its root, its directories, the entries it keeps open) at
    /// or above `floor`, where a process that holds many and also clones children keeps them out
    /// of the range its children take with them (the harness: see its `sys::fds`). A descriptor
    /// that cannot be moved (the limit is below `floor`) stays where it was opened.
    pub fn keep_fds_from(self, floor: RawFd) -> SysDirs {
        SysDirs { root: moved_up(self.root, Some(floor)), floor: Some(floor), ..self }
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The directory `dir` (`""`: the root), opened on first use.
    fn dir(&mut self, dir: &str) -> nix::Result<BorrowedFd<'_>> {
        if dir.is_empty() {
            return Ok(self.root.as_fd());
        }
        if !self.dirs.contains_key(dir) {
            let fd = openat(&self.root, dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
            let fd = moved_up(fd, self.floor);
            self.dirs.insert(dir.to_owned(), DirFd::Opened(fd));
        }
        Ok(self.dirs[dir].as_fd())
    }

    /// Opens the entry `path` (under /proc/sys) with `flags` (and O_CLOEXEC).
    pub fn open(&mut self, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        openat(self.dir(dir)?, name, flags | OFlag::O_CLOEXEC, Mode::empty())
    }

    /// Opens the entry `f` with `flags` if it is a regular file: `None` when it is not one (or
    /// not there), else the open's outcome. A listed entry is simply opened; a named one is looked
    /// up by the open itself, and told apart as a lookup would (`fstatat` without following): an
    /// open that succeeds is checked to be of a regular file (not, say, /dev/null mounted over
    /// it), and a failed one is told from an absent entry by a stat. `Err` is the stat's error,
    /// as a listing's.
    pub fn open_named(&mut self, f: &Found, flags: OFlag) -> nix::Result<Option<nix::Result<OwnedFd>>> {
        if !f.named {
            return Ok(Some(self.open(&f.path, flags)));
        }
        match self.open(&f.path, flags | OFlag::O_NOFOLLOW) {
            Ok(fd) => Ok((fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(Ok(fd))),
            Err(open) => match fstatat(&self.root, f.path.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => Ok(Some(Err(open))),
                Ok(_) | Err(Errno::ENOENT) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// The value of `path` as read, trailing newline and all.
    pub fn read(&mut self, path: &str) -> nix::Result<String> {
        read_fd(&self.open(path, OFlag::O_RDONLY)?)
    }

    /// The value of `path`, through a descriptor kept open for the next read of it (an entry read
    /// in every case is looked up once).
    pub fn read_kept(&mut self, path: &str) -> nix::Result<String> {
        if !self.kept.contains_key(path) {
            let fd = self.open(path, OFlag::O_RDONLY)?;
            let fd = moved_up(fd, self.floor);
            self.kept.insert(path.to_owned(), fd);
        }
        read_fd(&self.kept[path])
    }

    /// Writes `value` to `path` in one write(2) with its newline, as sysctl(8) does.
    pub fn write(&mut self, path: &str, value: &str) -> nix::Result<()> {
        write_fd(&self.open(path, OFlag::O_WRONLY)?, value)
    }

    /// Every regular file below `dir` (`""` for all of /proc/sys), sorted, without crossing into
    /// another filesystem (binfmt_misc is mounted on `fs/binfmt_misc`), with their modes if
    /// `modes` (a stat each). A missing `dir` gives nothing. The directories stay open for the
    /// entries' opens.
    pub fn walk(&mut self, dir: &str, modes: bool) -> nix::Result<Vec<Found>> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for (f, is_dir) in self.entries(&d, modes)? {
                if is_dir { stack.push(f.path) } else { out.push(f) }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The regular files and directories directly in `dir` (`true`: a directory, opened and kept,
    /// on the filesystem of the root only), with the files' modes if `modes` (a stat each);
    /// nothing for a missing `dir`. The type comes from the listing: only a directory is looked up
    /// (by its open).
    fn entries(&mut self, dir: &str, modes: bool) -> nix::Result<Vec<(Found, bool)>> {
        let dev = match self.dev {
            Some(d) => d,
            None => *self.dev.insert(fstat(&self.root)?.st_dev),
        };
        let floor = self.floor;
        let handle = match self.dirs.entry(dir.to_owned()) {
            hash_map::Entry::Occupied(o) => o.into_mut().listing(floor)?,
            hash_map::Entry::Vacant(v) => {
                let at = if dir.is_empty() { "." } else { dir };
                match openat(&self.root, at, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
                    Ok(fd) => v.insert(DirFd::Listed(Dir::from_fd(moved_up(fd, floor))?)).listing(floor)?,
                    Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
        };
        let mut listed = Vec::new();
        for entry in handle.iter() {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                listed.push((name, entry.file_type()));
            }
        }
        let mut out = Vec::new();
        let mut opened = Vec::new();
        for (name, kind) in listed {
            let is_dir = match kind {
                Some(Type::Directory) => true,
                Some(Type::File) => false,
                Some(_) => continue,
                None => {
                    match fstatat(handle.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?.st_mode & libc::S_IFMT {
                        libc::S_IFDIR => true,
                        libc::S_IFREG => false,
                        _ => continue,
                    }
                }
            };
            let path = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            if is_dir {
                let sub = openat(
                    handle.as_fd(),
                    name.as_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let st = fstat(&sub)?;
                if st.st_dev != dev {
                    continue; // another filesystem mounted here (binfmt_misc)
                }
                opened.push((path.clone(), DirFd::Listed(Dir::from_fd(moved_up(sub, floor))?)));
                out.push((Found::new(path, Some(st.st_mode)), true));
            } else {
                let mode = if modes {
                    Some(fstatat(handle.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?.st_mode)
                } else {
                    None
                };
                out.push((Found::new(path, mode), false));
            }
        }
        self.dirs.extend(opened);
        Ok(out)
    }

    /// The regular files directly in `dir` (no recursion).
    fn list(&mut self, dir: &str, modes: bool) -> nix::Result<Vec<Found>> {
        Ok(self.entries(dir, modes)?.into_iter().filter_map(|(f, is_dir)| (!is_dir).then_some(f)).collect())
    }

    /// The entries `kind` owns in this /proc/sys on a kernel of version `kernel`, sorted. With
    /// `modes`, each is looked up for its mode (a stat each), the named ones too; without, the
    /// named ones are left to the open that uses them (see [`Found::named`]).
    pub fn owned_by(&mut self, kind: NsKind, kernel: Option<(u32, u32)>, modes: bool) -> nix::Result<Vec<Found>> {
        self.kind_entries(kind, kernel, modes, false)
    }

    /// What a probe in the harness's namespace of `kind` tests of it: its entries, but of a tree
    /// only the sample (see [`Owned::sample`]); the named ones not looked up.
    pub fn sampled_by(&mut self, kind: NsKind, kernel: Option<(u32, u32)>) -> nix::Result<Vec<Found>> {
        self.kind_entries(kind, kernel, false, true)
    }

    fn kind_entries(
        &mut self,
        kind: NsKind,
        kernel: Option<(u32, u32)>,
        modes: bool,
        sample: bool,
    ) -> nix::Result<Vec<Found>> {
        let root = self.root.as_fd();
        let exact = |path: &str| -> nix::Result<Option<Found>> {
            if !modes {
                return Ok(Some(Found::named(path)));
            }
            match fstatat(root, path, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                    Ok(Some(Found::new(path.to_owned(), Some(st.st_mode))))
                }
                Ok(_) | Err(Errno::ENOENT) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let mut named = Vec::new();
        let mut trees = Vec::new();
        for row in TABLE.iter().filter(|r| r.kind == kind && r.applies(kernel)) {
            match row.entries {
                Entries::Exact(path) => named.extend(exact(path)?),
                Entries::Under(_) if sample => {
                    for p in row.sample {
                        named.extend(exact(p)?);
                    }
                }
                Entries::Prefix(_) => trees.push((row.dir(), false)),
                Entries::Under(dir) => trees.push((dir, true)),
            }
        }
        let mut out = named;
        for (dir, recurse) in trees {
            out.extend(if recurse { self.walk(dir, modes)? } else { self.list(dir, modes)? });
        }
        out.retain(|f| owner(&f.path, kernel).is_some_and(|o| o.kind == kind));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup();
        Ok(out)
    }

    /// Every global entry (one no kind owns on a kernel of version `kernel`) of this /proc/sys,
    /// sorted: everything outside the kinds' trees, and the known global entries inside them.
    /// With their modes if `modes` (a stat each).
    pub fn global(&mut self, kernel: Option<(u32, u32)>, modes: bool) -> nix::Result<Vec<Found>> {
        let trees: Vec<&str> =
            TABLE.iter().filter_map(|r| if let Entries::Under(d) = r.entries { Some(d) } else { None }).collect();
        let mut out = Vec::new();
        for (top, is_dir) in self.entries("", modes)? {
            if !is_dir {
                out.push(top);
            } else if !trees.contains(&top.path.as_str()) {
                out.extend(self.walk(&top.path, modes)?.into_iter().filter(|f| owner(&f.path, kernel).is_none()));
            }
        }
        for k in KNOWN_GLOBAL {
            if let Ok(st) = fstatat(&self.root, k.path, AtFlags::AT_SYMLINK_NOFOLLOW) {
                out.push(Found::new(k.path.to_owned(), Some(st.st_mode)));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// `fd`, moved to `floor` or above if it is below (its duplicate there, the original closed), or
/// left where it is if it cannot be moved.
fn moved_up(fd: OwnedFd, floor: Option<RawFd>) -> OwnedFd {
    match floor {
        Some(floor) if fd.as_raw_fd() < floor => crate::sys::dup_at_or_above(fd.as_fd(), floor).unwrap_or(fd),
        _ => fd,
    }
}

/// An open directory of a [`SysDirs`]: one to list is a [`Dir`] (glibc's stream, set up with a
/// stat and two fcntl calls), one to open entries in only a descriptor.
#[derive(Debug)]
enum DirFd {
    Opened(OwnedFd),
    Listed(Dir),
}

impl DirFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Opened(fd) => fd.as_fd(),
            DirFd::Listed(d) => d.as_fd(),
        }
    }

    /// The directory as a stream to list (made one first if it is only a descriptor).
    /// Its descriptor goes at or above `floor` (see [`SysDirs::keep_fds_from`]).
    fn listing(&mut self, floor: Option<RawFd>) -> nix::Result<&mut Dir> {
        if let DirFd::Opened(fd) = self {
            // A directory opened for its entries, then listed: a stream of its own (rewound).
            let fd = openat(&*fd, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
            *self = DirFd::Listed(Dir::from_fd(moved_up(fd, floor))?);
        }
        match self {
            DirFd::Listed(d) => Ok(d),
            DirFd::Opened(_) => unreachable!("made a stream above"),
        }
    }
}

/// How much of a value the first read asks for: every value the tables hold but a few lists
/// fits, and the handler allocates a kernel buffer of the size asked for (proc_sys_call_handler
/// in fs/proc/proc_sysctl.c), zeroed. Measured on the development VM (6.18): 0.73 µs a read of
/// 256 bytes, 0.8 to 1.2 µs one of 4 KiB.
const FIRST_READ: usize = 256;

/// The whole value of an open entry, read from its start (the descriptor may be read again): a
/// sysctl gives it in one read that fits. A first read that fills `FIRST_READ` bytes may have cut
/// the value (a number handler gives nothing at a later offset), so it is read again whole.
pub fn read_fd(fd: &OwnedFd) -> nix::Result<String> {
    let mut small = [0u8; FIRST_READ];
    loop {
        match nix::sys::uio::pread(fd, &mut small, 0) {
            Ok(n) if n < small.len() => return Ok(String::from_utf8_lossy(&small[..n]).into_owned()),
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::sys::uio::pread(fd, &mut buf, out.len() as libc::off_t) {
            Ok(0) => break,
            Ok(n) if n < buf.len() => {
                out.extend_from_slice(&buf[..n]);
                break;
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One write of `value` and a newline at the start of an open entry, as sysctl(8) does.
pub fn write_fd(fd: &OwnedFd, value: &str) -> nix::Result<()> {
    let line = format!("{value}\n");
    match nix::sys::uio::pwrite(fd, line.as_bytes(), 0)? {
        n if n == line.len() => Ok(()),
        _ => Err(Errno::EIO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_the_kinds_entries_and_nothing_else() {
        let k = Some((6, 1));
        assert_eq!(owner("net/core/somaxconn", k).map(|o| o.kind), Some(NsKind::Net));
        assert_eq!(owner("kernel/shmmax", k).map(|o| o.kind), Some(NsKind::Ipc));
        assert_eq!(owner("fs/mqueue/queues_max", k).map(|o| o.kind), Some(NsKind::Ipc));
        assert_eq!(owner("kernel/hostname", k).map(|o| o.kind), Some(NsKind::Uts));
        assert_eq!(owner("user/max_user_namespaces", k).map(|o| o.kind), Some(NsKind::User));
        assert_eq!(owner("kernel/ns_last_pid", k).map(|o| o.kind), Some(NsKind::Pid));
        for global in ["kernel/threads-max", "netfilter", "network", "user/other", "user/max_x/y", "fs/mqueue"] {
            assert!(owner(global, k).is_none(), "{global}");
        }
        // pid_max became the pid namespace's in 6.14; before, and on an unreadable version, it is global.
        assert!(owner("kernel/pid_max", Some((6, 13))).is_none());
        assert!(owner("kernel/pid_max", None).is_none());
        assert_eq!(owner("kernel/pid_max", Some((6, 18))).map(|o| o.kind), Some(NsKind::Pid));
        // Under net/, but global: never the network namespace's.
        assert!(owner("net/netfilter/nf_hooks_lwtunnel", k).is_none());
        for row in TABLE {
            assert!(KINDS.contains(&row.kind), "{row:?}");
            assert!(!row.source.is_empty());
        }
    }

    #[test]
    fn only_plain_paths_are_accepted() {
        assert!(plain_path("net/ipv4/conf/lo/forwarding"));
        for bad in ["", "/etc/passwd", "net/../kernel/x", "net//x", "net/./x", "net/x y", "net/x\n"] {
            assert!(!plain_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn values_are_compared_without_their_whitespace() {
        assert_eq!(normalize("4096\t131072\t6291456\n"), "4096 131072 6291456");
        assert_eq!(normalize("(none)\n"), "(none)");
    }

    #[test]
    fn candidates_differ_from_the_value() {
        let g = |v: &str| candidates(Values::Generic, v, &[], "t", "s", None);
        assert_eq!(g("4096"), ["4097", "4095"]);
        assert_eq!(
            g("4096 131072 6291456"),
            ["4097 131072 6291456", "4095 131072 6291456", "4096 131072 6291457", "4096 131072 6291455"]
        );
        assert_eq!(g("18446744073709551615")[0], "18446744073709551616", "unsigned longs go past i64");
        assert_eq!(g("-1")[0], "0");
        assert_eq!(g("reno cubic"), ["reno", "cubic"]);
        assert!(g("").is_empty());
        assert!(g("NONE").is_empty(), "one word and no list to pick from");
        let words = vec!["reno".to_owned(), "cubic".to_owned()];
        assert_eq!(candidates(Values::Generic, "cubic", &words, "t", "s", None), ["reno"]);
        assert_eq!(candidates(Values::Name, "host", &[], "isoprobe-ab", "h", None), ["isoprobe-ab-h"]);
        assert_eq!(candidates(Values::LastPid, "12", &[], "t", "s", Some(32768)), ["1012", "112", "6"]);
        assert_eq!(candidates(Values::LastPid, "32000", &[], "t", "s", Some(32768)), ["32100", "16000"]);
        assert!(candidates(Values::LastPid, "12", &[], "t", "s", None).is_empty());
    }

    #[test]
    fn available_lists_are_found_next_to_the_entry() {
        let names = ["tcp_congestion_control", "tcp_available_congestion_control", "tcp_fastopen_key"];
        assert_eq!(
            available_siblings("net/ipv4/tcp_congestion_control", names),
            ["net/ipv4/tcp_available_congestion_control"]
        );
        assert!(available_siblings("net/ipv4/tcp_fastopen_key", names).is_empty(), "not a list for it");
        assert_eq!(
            available_siblings("net/mptcp/scheduler", ["scheduler", "available_schedulers"]),
            ["net/mptcp/available_schedulers"]
        );
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.1.0-28-cloud-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(kernel_version("garbage"), None);
    }

    /// A fake /proc/sys in a temporary directory: `net/core/{somaxconn,long}`, `net/link` (a
    /// symbolic link to `net/core`) and `kernel/pid_max`.
    fn fake_tree(tag: &str) -> (std::path::PathBuf, SysDirs) {
        let dir = std::env::temp_dir().join(format!("isoprobe-test-sysdirs-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/core")).unwrap();
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        std::fs::write(dir.join("net/core/somaxconn"), "4096\n").unwrap();
        std::fs::write(dir.join("net/core/long"), "7 ".repeat(FIRST_READ)).unwrap();
        std::fs::write(dir.join("kernel/pid_max"), "4194304\n").unwrap();
        std::os::unix::fs::symlink("core", dir.join("net/link")).unwrap();
        let root =
            nix::fcntl::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        (dir, SysDirs::new(root))
    }

    /// The walk lists regular files only, sorted, without following a link; a directory opened
    /// first for an entry in it is listed all the same; a missing one lists nothing.
    #[test]
    fn the_walk_lists_the_files_of_a_tree() {
        let (dir, mut sys) = fake_tree("walk");
        assert_eq!(sys.read("net/core/somaxconn").unwrap(), "4096\n", "opens net/core for an entry");
        let paths = |found: Vec<Found>| found.into_iter().map(|f| f.path).collect::<Vec<_>>();
        assert_eq!(paths(sys.walk("net", false).unwrap()), ["net/core/long", "net/core/somaxconn"]);
        assert_eq!(paths(sys.walk("", false).unwrap()), ["kernel/pid_max", "net/core/long", "net/core/somaxconn"]);
        let found = sys.walk("net/core", true).unwrap();
        assert!(found.iter().all(|f| f.mode == Some(0o644) && !f.named), "{found:?}");
        assert!(sys.walk("no-such-dir", false).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A named entry's open is its lookup: one that is not a regular file (a directory, a link,
    /// nothing) is not there, as a stat would have said; a listed one is simply opened.
    #[test]
    fn a_named_entry_is_found_by_its_open() {
        let (dir, mut sys) = fake_tree("named");
        let open = |sys: &mut SysDirs, f: &Found| sys.open_named(f, OFlag::O_RDWR).unwrap().map(|r| r.is_ok());
        assert_eq!(open(&mut sys, &Found::named("net/core/somaxconn")), Some(true));
        for absent in ["net/core", "net/link", "net/nothing", "nothing/at/all"] {
            assert_eq!(open(&mut sys, &Found::named(absent)), None, "{absent}");
        }
        assert_eq!(open(&mut sys, &Found::listed("net/nothing")), Some(false), "listed: the open's error");
        std::fs::remove_dir_all(&dir).unwrap();
        // An entry there whose open is refused: the refusal is the answer (read-only for root too).
        let sys = nix::fcntl::open("/proc/sys", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty());
        let mut sys = SysDirs::new(sys.unwrap());
        let refused = sys.open_named(&Found::named("kernel/cap_last_cap"), OFlag::O_WRONLY).unwrap();
        assert_eq!(refused.map(|r| r.err()), Some(Some(Errno::EACCES)));
    }

    /// A value longer than the first read is read whole.
    #[test]
    fn a_long_value_is_read_whole() {
        let (dir, mut sys) = fake_tree("long");
        assert_eq!(sys.read("net/core/long").unwrap(), "7 ".repeat(FIRST_READ));
        assert_eq!(sys.read("kernel/pid_max").unwrap(), "4194304\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The walk of this machine's /proc/sys finds the kinds' entries where the table says.
    #[test]
    fn the_walk_finds_the_tables_entries_here() {
        let sys = nix::fcntl::open("/proc/sys", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .unwrap();
        let kernel = nix::sys::utsname::uname().ok().and_then(|u| kernel_version(&u.release().to_string_lossy()));
        let mut sys = SysDirs::new(sys);
        let uts = sys.owned_by(NsKind::Uts, kernel, true).unwrap();
        let names: Vec<&str> = uts.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["kernel/domainname", "kernel/hostname"]);
        let net = sys.owned_by(NsKind::Net, kernel, false).unwrap();
        assert!(net.iter().all(|f| f.path.starts_with("net/")), "{net:?}");
        assert!(sys.walk("no-such-dir", false).unwrap().is_empty());
        // The net sample is the network namespace's, on this kernel too.
        for row in TABLE {
            for p in row.sample {
                assert!(row.covers(p), "{p}");
            }
        }
    }
}
