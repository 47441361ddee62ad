//! Whose a leftover is: the owner a run or bench directory's name, or a cgroup's, gives, and
//! whether that owner still runs.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, HarnessError};
use crate::names::PREFIX;

/// Whose a directory or cgroup is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    /// `isoprobe-<pid>-<token>`: a harness run.
    Run { pid: i32, token: String },
    /// `isoprobe-bench-<pid>-<token>`: a bench's own directory or cgroup.
    Bench { pid: i32 },
}

/// A run or bench directory under the temporary directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OwnedDir {
    pub(super) path: PathBuf,
    pub(super) owner: Owner,
    /// When it was made (seconds since the epoch).
    pub(super) ctime: i64,
    pub(super) uid: u32,
}

impl OwnedDir {
    pub(super) fn pid(&self) -> i32 {
        match self.owner {
            Owner::Run { pid, .. } | Owner::Bench { pid } => pid,
        }
    }
    pub(super) fn token(&self) -> Option<&str> {
        match &self.owner {
            Owner::Run { token, .. } => Some(token),
            Owner::Bench { .. } => None,
        }
    }
}

/// `isoprobe-<pid>-<token>` and `isoprobe-bench-<pid>-<token>` directories directly under `tmp`.
pub(super) fn owned_dirs(tmp: &Path) -> Result<Vec<OwnedDir>, HarnessError> {
    let mut out = Vec::new();
    for e in fs::read_dir(tmp).ctx(|| format!("list {}", tmp.display()))? {
        let e = e.ctx(|| format!("list {}", tmp.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(owner) = dir_owner(&name) else { continue };
        let Ok(md) = fs::symlink_metadata(e.path()) else { continue };
        if md.is_dir() {
            out.push(OwnedDir { path: e.path(), owner, ctime: md.ctime(), uid: md.uid() });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The owner a directory name gives: `isoprobe-<pid>-<token>` or `isoprobe-bench-<pid>-<token>`;
/// anything else (another program's, or another shape) is `None`.
pub(super) fn dir_owner(name: &str) -> Option<Owner> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (bench, rest) = match rest.strip_prefix("bench-") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (pid, token) = rest.split_once('-')?;
    let pid: i32 = pid.parse().ok().filter(|p| *p > 0)?;
    if !is_token(token) {
        return None;
    }
    Some(if bench { Owner::Bench { pid } } else { Owner::Run { pid, token: token.to_owned() } })
}

/// The owner a cgroup name gives: a run's `isoprobe-<token>-<case>[-<suffix>]`, or a bench's
/// `isoprobe-bench-<pid>-<token>`.
pub(super) fn cgroup_owner(name: &str) -> Option<Owner> {
    if let Some(o @ Owner::Bench { .. }) = dir_owner(name) {
        return Some(o);
    }
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (token, case) = rest.split_once('-')?;
    (is_token(token) && !case.is_empty()).then(|| Owner::Run { pid: 0, token: token.to_owned() })
}

/// Run tokens are 12 lowercase hex digits (`names::token`).
pub(super) fn is_token(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `pid` runs a process that started no later than `since` (+1 s: whole seconds): the
/// process that made something at `since`, not a later one with a recycled pid.
pub(super) fn pid_alive_since(pid: i32, since: i64) -> bool {
    match process_start_epoch(pid) {
        Some(start) => start <= since + 1,
        // Running but unreadable: count it as alive (nothing of a live run may go).
        None => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// When `pid` started, in seconds since the epoch (rounded down).
pub(super) fn process_start_epoch(pid: i32) -> Option<i64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = isoprobe_probes::sys::stat_start_time(&stat)? as i64;
    let boot: i64 =
        fs::read_to_string("/proc/stat").ok()?.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(boot + ticks / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_need_the_prefix_a_pid_and_a_token() {
        assert_eq!(
            dir_owner("isoprobe-1234-0123456789ab"),
            Some(Owner::Run { pid: 1234, token: "0123456789ab".into() })
        );
        assert_eq!(dir_owner("isoprobe-bench-77-0123456789ab"), Some(Owner::Bench { pid: 77 }));
        for other in [
            "isoprobe-1234",
            "isoprobe-x-0123456789ab",
            "isoprobe-0-0123456789ab",
            "isoprobe-12-0123456789aZ",
            "isoprobe-12-0123456789abc",
            "isoprobes-12-0123456789ab",
            "isoprobe-bench-0123456789ab",
            "isoprobe-newc-test-12",
            "systemd-private-12-0123456789ab",
        ] {
            assert_eq!(dir_owner(other), None, "{other}");
        }
    }
    #[test]
    fn cgroup_owners() {
        let run = |t: &str| Some(Owner::Run { pid: 0, token: t.into() });
        assert_eq!(cgroup_owner("isoprobe-0123456789ab-17"), run("0123456789ab"));
        assert_eq!(cgroup_owner("isoprobe-0123456789ab-17-lxc"), run("0123456789ab"));
        assert_eq!(cgroup_owner("isoprobe-bench-42-0123456789ab"), Some(Owner::Bench { pid: 42 }));
        assert_eq!(cgroup_owner("isoprobe-0123456789ab-"), None);
        assert_eq!(cgroup_owner("isoprobe-limit-memory"), None);
    }
    #[test]
    fn a_recycled_pid_is_not_its_old_run() {
        let me = std::process::id() as i32;
        let start = process_start_epoch(me).expect("our own start time");
        assert!(pid_alive_since(me, start));
        assert!(!pid_alive_since(me, start - 10), "a directory made before this process cannot be its");
    }
}
