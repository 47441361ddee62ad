//! Names of everything isoprobe creates on the host. Each carries the `isoprobe` prefix (or, for
//! SysV keys, the 0x15 top byte), so `isoprobe cleanup` and the leftover checks can tell isoprobe's
//! objects from everyone else's and never touch the latter.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::sync::Mutex;

/// The prefix of every named host object.
pub const PREFIX: &str = "isoprobe";

/// The top byte of every SysV IPC key isoprobe uses.
pub const SYSV_KEY_TOP: i32 = 0x15;

/// 64 random bits from the kernel: getrandom(2), one system call (a case takes some eight
/// names; opening /dev/urandom for each cost three), falling back to /dev/urandom where the call
/// is missing (before Linux 3.17) or refused (a seccomp filter).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if isoprobe_probes::sys::getrandom(&mut b).is_ok_and(|n| n == b.len()) {
        return u64::from_ne_bytes(b);
    }
    // /dev/urandom never blocks and never runs dry; failing to open it means /dev is broken.
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).expect("read /dev/urandom");
    u64::from_ne_bytes(b)
}

/// A random lowercase hex token of 12 characters.
pub fn token() -> String {
    format!("{:012x}", random_u64() & 0xffff_ffff_ffff)
}

/// Keys handed out by this process, so that two cases never get the same one.
static KEYS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// A fresh SysV key with isoprobe's top byte, not handed out before by this process. Whether it
/// is free on the host is for the caller to find out (IPC_CREAT | IPC_EXCL).
pub fn sysv_key() -> i32 {
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let keys = keys.get_or_insert_with(HashSet::new);
    loop {
        let key = (SYSV_KEY_TOP << 24) | (random_u64() & 0x00ff_ffff) as i32;
        if keys.insert(key) {
            return key;
        }
    }
}

/// Whether a SysV key has isoprobe's top byte.
pub fn is_isoprobe_key(key: i32) -> bool {
    (key >> 24) & 0xff == SYSV_KEY_TOP
}
