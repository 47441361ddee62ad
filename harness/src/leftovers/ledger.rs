//! A run's ledger of the IPC objects it may create: every SysV key and queue name is written
//! before the object can exist, so that the recovery of a dead run removes exactly those.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use isoprobe_probes::sys::SysvKind;

use crate::error::{Context, HarnessError};

/// The file in a run directory that lists every IPC object the run may have created.
pub const LEDGER: &str = "ipc-ledger";

/// One line of a run's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LedgerEntry {
    Sysv(SysvKind, i32),
    Mqueue(String),
}

impl LedgerEntry {
    fn line(&self) -> String {
        match self {
            LedgerEntry::Sysv(kind, key) => format!("{} {key:#x}\n", sysv_name(*kind)),
            LedgerEntry::Mqueue(name) => format!("mq {name}\n"),
        }
    }

    pub(super) fn parse(line: &str) -> Option<LedgerEntry> {
        let (what, arg) = line.split_once(' ')?;
        let key = || i32::from_str_radix(arg.strip_prefix("0x")?, 16).ok();
        Some(match what {
            "shm" => LedgerEntry::Sysv(SysvKind::Shm, key()?),
            "sem" => LedgerEntry::Sysv(SysvKind::Sem, key()?),
            "msg" => LedgerEntry::Sysv(SysvKind::Msg, key()?),
            "mq" => LedgerEntry::Mqueue(arg.to_owned()),
            _ => return None,
        })
    }
}

fn sysv_name(kind: SysvKind) -> &'static str {
    match kind {
        SysvKind::Shm => "shm",
        SysvKind::Sem => "sem",
        SysvKind::Msg => "msg",
    }
}

/// The list of IPC objects a run may create, in its run directory: every key and queue name is
/// written here *before* the object is made (a run killed in between leaves an entry for an
/// object that never existed, never an object without an entry), so the next run's
/// [`recover_at_start`](super::sweep::recover_at_start) removes exactly those. Appends are single write(2)s on an O_APPEND file.
#[derive(Debug)]
pub struct IpcLedger {
    file: Mutex<File>,
}

impl IpcLedger {
    /// Opens (creating) the ledger in `run_dir`.
    pub fn create(run_dir: &Path) -> Result<IpcLedger, HarnessError> {
        let path = run_dir.join(LEDGER);
        let file =
            OpenOptions::new().create(true).append(true).open(&path).ctx(|| format!("create {}", path.display()))?;
        Ok(IpcLedger { file: Mutex::new(file) })
    }

    /// Records a SysV key about to be used.
    pub fn sysv(&self, kind: SysvKind, key: i32) -> Result<(), HarnessError> {
        self.append(&LedgerEntry::Sysv(kind, key))
    }

    /// Records a message queue name about to be used.
    pub fn mqueue(&self, name: &str) -> Result<(), HarnessError> {
        self.append(&LedgerEntry::Mqueue(name.to_owned()))
    }

    fn append(&self, e: &LedgerEntry) -> Result<(), HarnessError> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(e.line().as_bytes()).ctx(|| "append to the run's IPC ledger".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_lines_parse_back() {
        for e in [
            LedgerEntry::Sysv(SysvKind::Shm, 0x1500_0001),
            LedgerEntry::Sysv(SysvKind::Sem, 0x15ff_ffff),
            LedgerEntry::Sysv(SysvKind::Msg, 0x1512_3456),
            LedgerEntry::Mqueue("/isoprobe-0123456789ab".into()),
        ] {
            assert_eq!(LedgerEntry::parse(e.line().trim_end()), Some(e));
        }
        assert_eq!(LedgerEntry::parse("shm 12"), None);
        assert_eq!(LedgerEntry::parse("garbage"), None);
    }
}
