//! Listing isoprobe's SysV IPC objects (by the key's top byte, from /proc/sysvipc) and POSIX
//! message queues (by name, through the mqueue filesystem).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use isoprobe_probes::sys::SysvKind;

use crate::error::{Context, HarnessError};
use crate::mounts::mounts;
use crate::names::{PREFIX, is_isoprobe_key};

/// A SysV IPC object with an isoprobe key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SysvObject {
    pub(super) kind: SysvKind,
    pub(super) key: i32,
    pub(super) id: i32,
    pub(super) ctime: i64,
    /// The creator's pid (shared memory only).
    pub(super) cpid: Option<i32>,
}

pub(super) fn isoprobe_sysv_objects() -> Result<Vec<SysvObject>, HarnessError> {
    let mut out = Vec::new();
    for (kind, file, id_col) in
        [(SysvKind::Shm, "shm", "shmid"), (SysvKind::Sem, "sem", "semid"), (SysvKind::Msg, "msg", "msqid")]
    {
        let path = format!("/proc/sysvipc/{file}");
        let text = fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
        out.extend(parse_sysvipc(kind, &text, id_col).into_iter().filter(|o| is_isoprobe_key(o.key)));
    }
    Ok(out)
}

/// The rows of a /proc/sysvipc table (columns named by its header line).
fn parse_sysvipc(kind: SysvKind, text: &str, id_col: &str) -> Vec<SysvObject> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let cols: BTreeMap<&str, usize> = header.split_whitespace().enumerate().map(|(i, c)| (c, i)).collect();
    let (Some(&k), Some(&i), Some(&c)) = (cols.get("key"), cols.get(id_col), cols.get("ctime")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(SysvObject {
                kind,
                key: f.get(k)?.parse().ok()?,
                id: f.get(i)?.parse().ok()?,
                ctime: f.get(c)?.parse().ok()?,
                cpid: cols.get("cpid").and_then(|&p| f.get(p)?.parse().ok()),
            })
        })
        .collect()
}

/// `/isoprobe-*` message queues with their ctimes. Listing needs the mqueue filesystem: where it
/// is not mounted, it is mounted in a private mount namespace of a short-lived thread.
pub(super) fn isoprobe_mqueues() -> Result<Vec<(String, i64)>, HarnessError> {
    let list = |dir: &Path| -> Result<Vec<(String, i64)>, HarnessError> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{PREFIX}-")) {
                let ctime = e.metadata().map(|m| m.ctime()).unwrap_or(i64::MAX);
                out.push((format!("/{name}"), ctime));
            }
        }
        Ok(out)
    };
    if let Some(m) = mounts()?.into_iter().find(|m| m.fs_type == "mqueue") {
        return list(&m.mount_point);
    }
    std::thread::scope(|s| {
        s.spawn(|| -> Result<Vec<(String, i64)>, HarnessError> {
            use nix::mount::{MsFlags, mount};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .ctx(|| "enter a private mount namespace to list message queues (needs CAP_SYS_ADMIN)".into())?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .ctx(|| "make the private mount namespace private".into())?;
            // /tmp of this thread's own mount namespace: nobody else sees this mount.
            let at = Path::new("/tmp");
            mount(Some("mqueue"), at, Some("mqueue"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, None::<&str>)
                .ctx(|| "mount the mqueue filesystem".into())?;
            list(at)
        })
        .join()
        .unwrap_or_else(|_| Err(HarnessError::Internal("list message queues: the listing thread panicked".into())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysvipc_tables_are_read_by_column_name() {
        let shm = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                   352321537          5   666                     1  4242     0      0     0     0     0     0          0          0 1764390000                     0                     0\n";
        let objs = parse_sysvipc(SysvKind::Shm, shm, "shmid");
        assert_eq!(
            objs,
            vec![SysvObject { kind: SysvKind::Shm, key: 0x1500_0001, id: 5, ctime: 1_764_390_000, cpid: Some(4242) }]
        );
        assert!(is_isoprobe_key(objs[0].key));
        assert!(parse_sysvipc(SysvKind::Shm, "", "shmid").is_empty());
    }
}
