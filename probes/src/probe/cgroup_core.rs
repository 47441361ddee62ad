//! The cgroup2 core rules of the kernel's own test_core selftest that the structural rules of
//! [`super::cgroup_rules`] do not cover: the top-down constraint, the invalid domain, cgroup.events
//! `populated` and its notification with rmdir of a populated cgroup, and the open-time
//! credentials of a cgroup.procs write. Each step is one system call whose result (and, for a
//! read, the value read) is reported as it came.
//!
//! What this module must never do: judge, write outside the directories the harness named (every
//! cgroup it makes carries isoprobe's prefix, and the host removes whatever it leaves), or leave a
//! child process behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid, pipe};

use super::cgroup_rules::{Steps, io_result, make_dir, remove_children, write_file};
use crate::sys;
use crate::wire::{SysResult, rule_step as step};

/// The unprivileged user of the open-credentials steps: `nobody` (65534, the overflow id), which
/// owns nothing of the hierarchy unless the probe chowns it; the kernel's test uses the same id.
const NOBODY: u32 = 65534;

/// How long the probe waits for poll(2) to report the change of cgroup.events. The kernel notifies
/// at once, or, within 10 ms of the previous notification of the same file, when that interval
/// (CGROUP_FILE_NOTIFY_MIN_INTV) ends; the bound only ends a wait for a kernel that never does.
const NOTIFY_WAIT_MS: u16 = 2000;

fn ctl(dir: &str) -> String {
    format!("{dir}/cgroup.subtree_control")
}

fn errno_result(e: Errno) -> SysResult {
    Err::<(), _>(e).into()
}

/// The top-down constraint, on a child of the empty sibling.
pub(super) fn top_down(s: &mut Steps, sibling: &str, controller: &str) {
    let child = format!("{sibling}/{}", step::CHILD);
    let (on, off) = (format!("+{controller}"), format!("-{controller}"));
    let made = s.put(step::MKDIR_CHILD, Some(make_dir(&child)));
    s.put_if(step::ENABLE_UNDER_DISABLED, made, || write_file(&ctl(&child), &on));
    let parent_on = s.put_if(step::ENABLE_IN_PARENT, made, || write_file(&ctl(sibling), &on));
    let child_on = s.put_if(step::ENABLE_UNDER_ENABLED, parent_on, || write_file(&ctl(&child), &on));
    s.put_if(step::DISABLE_OVER_ENABLED, child_on, || write_file(&ctl(sibling), &off));
    s.put_if(step::DISABLE_IN_CHILD, child_on, || write_file(&ctl(&child), &off));
    s.put_if(step::DISABLE_IN_PARENT, parent_on, || write_file(&ctl(sibling), &off));
    remove_children(sibling, &[step::CHILD]);
}

/// Reads a cgroup file whole.
pub(super) fn read_file(path: &str) -> (SysResult, Option<String>) {
    match std::fs::read_to_string(path) {
        Ok(t) => (SysResult::Ok, Some(t.trim().to_owned())),
        Err(e) => (io_result::<()>(Err(e)), None),
    }
}

/// The invalid domain: the sibling's child made threaded over a domain grandchild.
pub(super) fn invalid_domain(s: &mut Steps, case: &str, sibling: &str) {
    let parent = format!("{sibling}/{}", step::CHILD);
    let child = format!("{parent}/{}", step::GRANDCHILD);
    let made = s.put(step::MKDIR_CHILD, Some(first_error([make_dir(&parent), make_dir(&child)])));
    let threaded =
        s.put_if(step::MAKE_PARENT_THREADED, made, || write_file(&format!("{parent}/cgroup.type"), "threaded"));
    let type_of = || read_file(&format!("{child}/cgroup.type"));
    s.put_value(step::INVALID_TYPE, threaded.then(type_of));
    s.put_if(step::JOIN_INVALID, threaded, || write_file(&format!("{child}/cgroup.procs"), "0"));
    let child_threaded =
        s.put_if(step::MAKE_CHILD_THREADED, threaded, || write_file(&format!("{child}/cgroup.type"), "threaded"));
    s.put_value(step::THREADED_TYPE, child_threaded.then(type_of));
    s.put_if(step::JOIN_THREADED, child_threaded, || write_file(&format!("{child}/cgroup.procs"), "0"));
    // Back in every outcome: a join the kernel should have refused may have moved the probe.
    s.put(step::RETURN, Some(write_file(&format!("{case}/cgroup.procs"), "0")));
    remove_children(&parent, &[step::GRANDCHILD]);
    remove_children(sibling, &[step::CHILD]);
}

pub(super) fn first_error<const N: usize>(results: [SysResult; N]) -> SysResult {
    results.into_iter().find(|r| !r.is_ok()).unwrap_or(SysResult::Ok)
}

/// `populated` of an open cgroup.events, read from its start (a read also marks the open file's
/// notifications as seen, so that poll(2) reports only later changes).
fn populated_of(f: &mut File) -> (SysResult, Option<String>) {
    let mut text = String::new();
    match f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut text)) {
        Ok(_) => {
            let value = text.lines().find_map(|l| l.strip_prefix("populated ")).map(|v| v.trim().to_owned());
            (SysResult::Ok, value)
        }
        Err(e) => (io_result::<()>(Err(e)), None),
    }
}

fn open_events(dir: &str) -> Result<File, SysResult> {
    File::open(format!("{dir}/cgroup.events")).map_err(|e| io_result::<()>(Err(e)))
}

/// Waits for a child of the probe to end.
fn reap(child: Pid) {
    while let Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) = waitpid(child, None) {}
}

/// cgroup.events `populated` and rmdir, with a waiting child process of the probe in a child
/// cgroup of the sibling, then after it exited.
pub(super) fn populated(s: &mut Steps, sibling: &str) {
    let dir = format!("{sibling}/{}", step::CHILD);
    let made = s.put(step::MKDIR_POPULATED, Some(make_dir(&dir)));
    // The child waits for end of file on the release pipe.
    let forked = pipe().map_err(errno_result).and_then(|(release_r, release_w)| {
        let w_raw = release_w.as_raw_fd();
        let child = sys::fork_child(|| {
            let _ = nix::unistd::close(w_raw);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&release_r, &mut b);
            0
        });
        child.map(|c| (c, release_w)).map_err(errno_result)
    });
    let (child, release) = match forked {
        Ok((c, w)) => (Some(c), Some(w)),
        Err(e) => {
            s.put(step::MOVE_IN, Some(e));
            (None, None)
        }
    };
    let moved = match child {
        Some(c) => s.put_if(step::MOVE_IN, made, || write_file(&format!("{dir}/cgroup.procs"), &c.to_string())),
        None => false,
    };
    let mut events = None;
    if moved {
        match open_events(&dir) {
            Ok(mut f) => {
                s.put_value(step::POPULATED_WHILE_IN, Some(populated_of(&mut f)));
                events = Some(f);
            }
            Err(e) => {
                s.put(step::POPULATED_WHILE_IN, Some(e));
            }
        }
    } else {
        s.put(step::POPULATED_WHILE_IN, None);
    }
    let parent = || open_events(sibling).map_or_else(|e| (e, None), |mut f| populated_of(&mut f));
    s.put_value(step::PARENT_WHILE_IN, moved.then(parent));
    s.put_if(step::RMDIR_POPULATED, made, || io_result(std::fs::remove_dir(&dir)));
    drop(release);
    if let Some(c) = child {
        reap(c);
    }
    let notified = events.as_ref().map(|f| {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::from(NOTIFY_WAIT_MS)) {
            Ok(0) => errno_result(Errno::ETIMEDOUT),
            Ok(_) => SysResult::Ok,
            Err(e) => errno_result(e),
        }
    });
    s.put(step::EVENTS_NOTIFIED, notified);
    s.put_value(step::POPULATED_AFTER_EXIT, events.as_mut().map(populated_of));
    s.put_value(step::PARENT_AFTER_EXIT, moved.then(parent));
    s.put_if(step::RMDIR_EMPTIED, made, || io_result(std::fs::remove_dir(&dir)));
    remove_children(sibling, &[step::CHILD]);
}

/// Open-time credentials: a child of the probe (so that its euid changes stay its own) opens the
/// sibling's cgroup.procs as `nobody` and writes as root, then opens it as root and writes as
/// `nobody`. The common ancestor of the case's cgroup and the sibling is root's: only a write
/// checked with root's credentials may move a process between them.
pub(super) fn open_credentials(s: &mut Steps, sibling: &str) {
    let procs = format!("{sibling}/cgroup.procs");
    let chowned = s.put(
        step::CHOWN_PROCS,
        Some(nix::unistd::chown(procs.as_str(), Some(Uid::from_raw(NOBODY)), Some(Gid::from_raw(NOBODY))).into()),
    );
    let names = [step::OPEN_AS_NOBODY, step::OPENED_LESSER, step::OPENED_ROOT];
    if !chowned {
        for n in names {
            s.put(n, None);
        }
        return;
    }
    let results = match run_in_child(|| open_credential_steps(&procs)) {
        Ok(r) => r,
        Err(e) => {
            for n in names {
                s.put(n, Some(e.clone()));
            }
            return;
        }
    };
    let opened = s.put(names[0], Some(results[0].clone()));
    s.put_if(names[1], opened, || results[1].clone());
    s.put(names[2], Some(results[2].clone()));
}

/// The three steps in the child: open as nobody; write that file as root; open as root and write
/// as nobody. An errno each (0: ok).
fn open_credential_steps(procs: &str) -> [i32; 3] {
    let code = |r: std::io::Result<()>| r.err().map_or(0, |e| e.raw_os_error().unwrap_or(libc::EIO));
    let open = || std::fs::OpenOptions::new().write(true).custom_flags(libc::O_CLOEXEC).open(procs);
    let as_euid = |uid: u32| nix::unistd::seteuid(Uid::from_raw(uid)).map_err(std::io::Error::from);
    let write = |f: &File| nix::unistd::write(f, b"0").map(drop).map_err(std::io::Error::from);
    let lesser = as_euid(NOBODY).and_then(|()| open());
    let back = as_euid(0);
    let (opened, written) = match (lesser, back) {
        (Ok(f), Ok(())) => (0, code(write(&f))),
        (Err(e), _) => (code(Err(e)), libc::ECANCELED),
        (Ok(_), Err(e)) => (0, code(Err(e))),
    };
    let by_root = open().and_then(|f| as_euid(NOBODY).and_then(|()| write(&f)));
    [opened, written, code(by_root)]
}

/// Runs `f` in a forked child and returns what it sent back (three errnos).
fn run_in_child(f: impl FnOnce() -> [i32; 3]) -> Result<[SysResult; 3], SysResult> {
    let (r, w): (OwnedFd, OwnedFd) = pipe().map_err(errno_result)?;
    let child = sys::fork_child(|| {
        let codes = f();
        let mut buf = [0u8; 12];
        for (i, c) in codes.iter().enumerate() {
            buf[i * 4..i * 4 + 4].copy_from_slice(&c.to_ne_bytes());
        }
        if nix::unistd::write(&w, &buf) == Ok(12) { 0 } else { 3 }
    })
    .map_err(errno_result)?;
    drop(w);
    let mut buf = Vec::new();
    let _ = File::from(r).read_to_end(&mut buf);
    reap(child);
    if buf.len() != 12 {
        return Err(errno_result(Errno::EPIPE));
    }
    let code = |i: usize| i32::from_ne_bytes(buf[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let result = |c: i32| if c == 0 { SysResult::Ok } else { errno_result(Errno::from_raw(c)) };
    Ok([result(code(0)), result(code(1)), result(code(2))])
}
