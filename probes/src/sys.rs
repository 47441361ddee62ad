//! Thin wrappers over the system calls that nix does not cover, or covers only unsafely (SysV IPC,
//! pidfd_open, raw clock_gettime, setdomainname, swapon, fork in the single-threaded probe, anonymous
//! mappings, aligned buffers for O_DIRECT, inherited descriptors), and small parsers of kernel text
//! and netlink data.
//!
//! The only module of this crate that holds `unsafe` (the crate is `deny(unsafe_code)`), each block
//! with its SAFETY note. Shared by the probe (inside the container) and the harness (on the host),
//! which is why they live in the bottom crate. Each wrapper names the call it wraps and links its
//! man page. Nothing here allocates between fork and exec or keeps state.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

use crate::wire::{ClockKind, IdMapLine, Link, Lookup, SysResult};

/// Keeps glibc's malloc to its main arena ([mallopt(3)](https://man7.org/linux/man-pages/man3/mallopt.3.html)
/// M_ARENA_MAX = 1). The probe's threads are few and short (the chroot escape's, a limit
/// exercise's), and the first allocation of each would make an arena of its own: a 128 MiB
/// reservation trimmed to its alignment, and its first pages faulted in, for a thread that
/// allocates a few strings. Call it before the first thread.
pub fn one_malloc_arena() {
    // SAFETY: mallopt only sets a parameter of the allocator; with no other thread running yet,
    // nothing allocates meanwhile. A refusal (0) leaves the default, which is correct too.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

impl<T> From<nix::Result<T>> for SysResult {
    fn from(r: nix::Result<T>) -> Self {
        match r {
            Ok(_) => SysResult::Ok,
            Err(e) => SysResult::Err { errno: e as i32, name: format!("{e:?}") },
        }
    }
}

/// Classifies the result of a lookup by name or key.
pub fn lookup<T>(r: nix::Result<T>) -> Lookup {
    match r {
        Ok(_) => Lookup::Found,
        Err(Errno::EACCES | Errno::EPERM) => Lookup::Denied,
        Err(Errno::ENOENT) => Lookup::Absent,
        Err(e) => Lookup::Failed { error: format!("{e:?}: {}", e.desc()) },
    }
}

/// The three SysV IPC object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysvKind {
    Shm,
    Sem,
    Msg,
}

/// shmget(2)/semget(2)/msgget(2) of an existing object by key: the id, or the errno.
/// See [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html),
/// [semget(2)](https://man7.org/linux/man-pages/man2/semget.2.html),
/// [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html).
pub fn sysv_get(kind: SysvKind, key: i32) -> nix::Result<i32> {
    sysv_call(kind, key, 0)
}

/// Creates a new object with `key` (IPC_CREAT | IPC_EXCL) and the given permission bits.
pub fn sysv_create(kind: SysvKind, key: i32, mode: i32) -> nix::Result<i32> {
    sysv_call(kind, key, libc::IPC_CREAT | libc::IPC_EXCL | mode)
}

fn sysv_call(kind: SysvKind, key: i32, flags: i32) -> nix::Result<i32> {
    // SAFETY: plain system calls on integer arguments; no memory is passed.
    let id = unsafe {
        match kind {
            // A lookup of an existing segment passes size 0; a new one gets one page.
            SysvKind::Shm => libc::shmget(key, if flags & libc::IPC_CREAT != 0 { 4096 } else { 0 }, flags),
            SysvKind::Sem => libc::semget(key, if flags & libc::IPC_CREAT != 0 { 1 } else { 0 }, flags),
            SysvKind::Msg => libc::msgget(key, flags),
        }
    };
    Errno::result(id)
}

/// shmctl(2)/semctl(2)/msgctl(2) with IPC_RMID. See
/// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html),
/// [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html),
/// [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
pub fn sysv_remove(kind: SysvKind, id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID takes no buffer (NULL is documented as allowed for shmctl and msgctl; semctl
    // takes no fourth argument for IPC_RMID).
    let r = unsafe {
        match kind {
            SysvKind::Shm => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            SysvKind::Sem => libc::semctl(id, 0, libc::IPC_RMID),
            SysvKind::Msg => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
        }
    };
    Errno::result(r).map(drop)
}

/// Removes the object with `key` if it exists; `Ok(true)` if one was removed.
pub fn sysv_remove_key(kind: SysvKind, key: i32) -> nix::Result<bool> {
    match sysv_get(kind, key) {
        Ok(id) => sysv_remove(kind, id).map(|()| true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// mq_open(3) of an existing queue, read-only (the fd is closed again). See
/// [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html).
pub fn mq_lookup(name: &str) -> nix::Result<()> {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
    use nix::sys::stat::Mode;
    let mq = mq_open(name, MQ_OFlag::O_RDONLY | MQ_OFlag::O_CLOEXEC, Mode::empty(), None)?;
    mq_close(mq)
}

/// Creates a new POSIX message queue (O_CREAT | O_EXCL). See
/// [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html).
pub fn mq_create(name: &str, mode: u32) -> nix::Result<()> {
    use nix::mqueue::{MQ_OFlag, MqAttr, mq_close, mq_open};
    use nix::sys::stat::Mode;
    let flags = MQ_OFlag::O_RDONLY | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_CLOEXEC;
    // Always pass attributes with O_CREAT: nix's mq_open leaves the variadic attr argument out
    // when given None, and the kernel then reads garbage (EINVAL).
    let attr = MqAttr::new(0, 1, 64, 0);
    let mq = mq_open(name, flags, Mode::from_bits_truncate(mode), Some(&attr))?;
    mq_close(mq)
}

/// mq_unlink(3); `Ok(false)` if there was no such queue. See
/// [mq_unlink(3)](https://man7.org/linux/man-pages/man3/mq_unlink.3.html).
pub fn mq_remove(name: &str) -> nix::Result<bool> {
    match nix::mqueue::mq_unlink(name) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// pidfd_open(2). See [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2). See
/// [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> nix::Result<()> {
    // SAFETY: integer arguments and a NULL siginfo, which the man page allows.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0) };
    Errno::result(r).map(drop)
}

/// The clock id of a clock the wire names.
pub fn clock_id(clock: ClockKind) -> libc::clockid_t {
    match clock {
        ClockKind::Monotonic => libc::CLOCK_MONOTONIC,
        ClockKind::Boottime => libc::CLOCK_BOOTTIME,
    }
}

/// The raw clock_gettime(2) system call, bypassing the vDSO. See
/// [clock_gettime(2)](https://man7.org/linux/man-pages/man2/clock_gettime.2.html).
pub fn clock_gettime_syscall(clock: libc::clockid_t) -> nix::Result<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_clock_gettime, clock, &mut ts as *mut libc::timespec) };
    Errno::result(r)?;
    Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

/// clock_gettime(3) through libc, which goes through the vDSO where the kernel provides one. See
/// [vdso(7)](https://man7.org/linux/man-pages/man7/vdso.7.html).
pub fn clock_gettime_vdso(clock: libc::clockid_t) -> nix::Result<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    Errno::result(r)?;
    Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

/// setdomainname(2). See [setdomainname(2)](https://man7.org/linux/man-pages/man2/setdomainname.2.html).
pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which live across the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(r).map(drop)
}

/// swapon(2) with `flags` (0: the default priority): swapping to the block device or file at
/// `path`, which must hold a swap header. Neither nix nor std wraps it; the kernel-test VM's init
/// (`isoprobe-ci`) turns its zram swap on with it. See [swapon(2)](https://man7.org/linux/man-pages/man2/swapon.2.html).
pub fn swapon(path: &str, flags: i32) -> nix::Result<()> {
    let path = CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `path` is a NUL-terminated string that lives across the call, which only reads it.
    let r = unsafe { libc::swapon(path.as_ptr(), flags) };
    Errno::result(r).map(drop)
}

// ---- processes, memory and descriptors of the probe ----

/// fork(2) from the probe; the child runs `child` and ends with `_exit(2)` of its return value,
/// never returning into the caller (no unwinding, none of the parent's atexit handlers). Only the
/// probe calls it, and the probe is single-threaded (every mode runs on its main thread), so the
/// child may run any code the parent could. See [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html).
pub fn fork_child(child: impl FnOnce() -> i32) -> nix::Result<Pid> {
    // SAFETY: the calling process is single-threaded (see above), so no lock or allocator state
    // of another thread is copied half-held into the child; the child never returns from here.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            let code = child();
            exit_now(code)
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// _exit(2): ends the process at once, without unwinding or atexit handlers. See
/// [_exit(2)](https://man7.org/linux/man-pages/man2/_exit.2.html).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return; it touches no memory of the caller.
    unsafe { libc::_exit(code) }
}

/// An anonymous private read-write mapping that is never unmapped: the limit exercises keep what
/// they touched until their child exits. See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
#[derive(Debug)]
pub struct Mapped {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapped {
    /// Maps `len` bytes; `hugetlb_page`: of huge pages of this size (MAP_HUGETLB).
    pub fn anonymous(len: usize, hugetlb_page: Option<u64>) -> nix::Result<Mapped> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        if let Some(page) = hugetlb_page {
            flags |= libc::MAP_HUGETLB | ((page.trailing_zeros() as i32) << libc::MAP_HUGE_SHIFT);
        }
        // SAFETY: a new anonymous mapping at an address the kernel chooses, aliasing nothing.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(Mapped { ptr: NonNull::new(p.cast()).ok_or(Errno::EFAULT)?, len })
    }

    /// Writes one byte at `offset`, volatile, so that its page is really faulted in and charged.
    pub fn touch(&self, offset: usize) {
        assert!(offset < self.len, "offset {offset} past a mapping of {} bytes", self.len);
        // SAFETY: `offset` lies inside the mapping, which is readable and writable and never
        // unmapped; nothing else holds a reference into it.
        unsafe { self.ptr.as_ptr().add(offset).write_volatile(1) }
    }
}

/// Counters in an anonymous shared mapping (MAP_SHARED): a process and every child it forks
/// afterwards add to and read the same counters, without a pipe between them. Never unmapped (a
/// few bytes for the probe's lifetime). See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
#[derive(Debug)]
pub struct SharedCounters {
    ptr: NonNull<std::sync::atomic::AtomicU64>,
    len: usize,
}

impl SharedCounters {
    /// `len` counters, all zero.
    pub fn new(len: usize) -> nix::Result<SharedCounters> {
        let bytes = (len.max(1) * size_of::<u64>()).next_multiple_of(4096);
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
        // SAFETY: a new anonymous mapping at an address the kernel chooses, aliasing nothing.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(SharedCounters { ptr: NonNull::new(p.cast()).ok_or(Errno::EFAULT)?, len })
    }

    fn all(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the mapping holds `len` zero-initialised, 8-byte aligned (page-aligned start)
        // u64s, is never unmapped, and is only accessed through atomics, also across processes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn add(&self, i: usize) {
        self.all()[i].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn get(&self, i: usize) -> u64 {
        self.all()[i].load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A zeroed buffer aligned to `align` bytes (O_DIRECT reads need the page size), freed on drop.
#[derive(Debug)]
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    pub fn zeroed(len: usize, align: usize) -> Option<AlignedBuf> {
        let layout = std::alloc::Layout::from_size_align(len.max(1), align).ok()?;
        // SAFETY: a non-zero size and a valid alignment; freed in Drop with the same layout.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(AlignedBuf { ptr, layout })
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the allocation holds `layout.size()` initialised (zeroed) bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Fills `buf` from the kernel's random pool without blocking once it is initialised (flags 0):
/// the number of bytes written. See [getrandom(2)](https://man7.org/linux/man-pages/man2/getrandom.2.html).
pub fn getrandom(buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which is valid for writes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    Errno::result(n).map(|n| n as usize)
}

/// Takes ownership of descriptor `fd`, which this process inherited for its use alone (its number
/// came in an argument or an environment entry its starter set for it). Fails with EBADF when no
/// such descriptor is open. See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn inherited_fd(fd: RawFd) -> nix::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open, and by this function's contract nothing else in this
    // process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A close-on-exec duplicate of `fd` at the lowest free number not below `floor`
/// (`F_DUPFD_CLOEXEC`). See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn dup_at_or_above(fd: BorrowedFd<'_>, floor: RawFd) -> nix::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC reads `fd` (borrowed, so open) and makes a new descriptor.
    let new = Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) })?;
    // SAFETY: the descriptor was just made, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Field 22 (starttime, in clock ticks since boot) of a `/proc/<pid>/stat` line.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and parentheses, so
/// fields are counted after the *last* `)`.
pub fn stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")" come field 3 (state) onwards; starttime is field 22, the 20th of these.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Parses `/proc/<pid>/uid_map` or gid_map.
pub fn parse_id_map(text: &str) -> Option<Vec<IdMapLine>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_ascii_whitespace().map(str::parse::<u32>);
            let line = IdMapLine { inside: it.next()?.ok()?, outside: it.next()?.ok()?, count: it.next()?.ok()? };
            it.next().is_none().then_some(line)
        })
        .collect()
}

/// Lists network interfaces with an RTM_GETLINK dump over NETLINK_ROUTE (see rtnetlink(7)),
/// sorted by name.
pub fn netlink_links() -> io::Result<Vec<Link>> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, socket,
    };
    let sock = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)?;
    bind(sock.as_raw_fd(), &NetlinkAddr::new(0, 0))?;

    // struct nlmsghdr (16 bytes) followed by struct ifinfomsg (16 bytes), all zero but the family.
    const HDR: usize = 16;
    const IFINFO: usize = 16;
    let mut req = [0u8; HDR + IFINFO];
    req[0..4].copy_from_slice(&((HDR + IFINFO) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    req[HDR] = libc::AF_UNSPEC as u8;
    send(sock.as_raw_fd(), &req, MsgFlags::empty())?;

    let mut links = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "netlink socket closed mid-dump"));
        }
        match parse_link_dump(&buf[..n], &mut links)? {
            DumpState::More => continue,
            DumpState::Done => break,
        }
    }
    links.sort();
    Ok(links)
}

/// Whether a netlink dump continues after this datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum DumpState {
    More,
    Done,
}

/// Parses one datagram of an RTM_GETLINK dump, appending the links it describes.
pub fn parse_link_dump(mut data: &[u8], out: &mut Vec<Link>) -> io::Result<DumpState> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"));
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let align = |n: usize| (n + 3) & !3;
    while data.len() >= 16 {
        let len = u32_at(data, 0) as usize;
        let ty = u16_at(data, 4);
        if len < 16 || len > data.len() {
            return Err(bad("message length out of bounds"));
        }
        let msg = &data[16..len];
        match i32::from(ty) {
            libc::NLMSG_DONE => return Ok(DumpState::Done),
            libc::NLMSG_ERROR => {
                let errno = if msg.len() >= 4 { -(u32_at(msg, 0) as i32) } else { 0 };
                return Err(io::Error::from_raw_os_error(errno));
            }
            t if t == i32::from(libc::RTM_NEWLINK) => {
                if msg.len() < 16 {
                    return Err(bad("short ifinfomsg"));
                }
                let flags = u32_at(msg, 8);
                let mut attrs = &msg[16..];
                let mut name = None;
                while attrs.len() >= 4 {
                    let alen = u16_at(attrs, 0) as usize;
                    let aty = u16_at(attrs, 2);
                    if alen < 4 || alen > attrs.len() {
                        return Err(bad("attribute length out of bounds"));
                    }
                    if aty == libc::IFLA_IFNAME {
                        let raw = &attrs[4..alen];
                        let raw = raw.split(|b| *b == 0).next().unwrap_or(raw);
                        name = Some(String::from_utf8_lossy(raw).into_owned());
                    }
                    attrs = &attrs[align(alen).min(attrs.len())..];
                }
                let name = name.ok_or_else(|| bad("link without IFLA_IFNAME"))?;
                out.push(Link { name, up: flags & libc::IFF_UP as u32 != 0 });
            }
            _ => {}
        }
        data = &data[align(len).min(data.len())..];
    }
    Ok(DumpState::More)
}

/// A path as a C string, with a clear error for an interior NUL.
pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL byte in {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_skips_a_comm_with_spaces_and_parens() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(stat_start_time(stat), Some(98765));
    }

    #[test]
    fn id_map_parses_and_rejects_garbage() {
        let lines = parse_id_map("         0     100000      65536\n").unwrap();
        assert_eq!(lines, vec![IdMapLine { inside: 0, outside: 100000, count: 65536 }]);
        assert_eq!(parse_id_map("0 1\n"), None);
        assert_eq!(parse_id_map("0 1 2 3\n"), None);
        assert_eq!(parse_id_map("a b c\n"), None);
    }

    #[test]
    fn link_dump_parser_rejects_truncated_messages() {
        let mut out = Vec::new();
        // A header that claims 64 bytes in a 20-byte datagram.
        let mut data = vec![0u8; 20];
        data[0..4].copy_from_slice(&64u32.to_ne_bytes());
        data[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        assert!(parse_link_dump(&data, &mut out).is_err());
    }

    /// The real dump on this machine includes loopback (every network namespace has `lo`).
    #[test]
    fn netlink_dump_lists_loopback() {
        let links = netlink_links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
    }

    #[test]
    fn raw_and_vdso_clocks_agree_in_order() {
        let a = clock_gettime_vdso(libc::CLOCK_MONOTONIC).unwrap();
        let b = clock_gettime_syscall(libc::CLOCK_MONOTONIC).unwrap();
        let c = clock_gettime_vdso(libc::CLOCK_MONOTONIC).unwrap();
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }
}
