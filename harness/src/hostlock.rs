//! Host-wide locks between isoprobe processes: an abstract unix socket that only one process can
//! bind at a time. The kernel releases it when its holder closes it or dies, so a crashed run
//! leaves nothing to clean up. Names carry isoprobe's prefix.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// How often a waiter tries again.
const RETRY: Duration = Duration::from_millis(1);

/// A held host-wide lock; released on drop.
#[derive(Debug)]
pub struct HostLock {
    _bound: UnixListener,
}

/// Why a host lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HostLockError {
    /// Another process still held it at the deadline.
    #[error("timed out waiting for the host lock @{name}")]
    TimedOut { name: String },
    #[error("failed to take the host lock @{name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

impl HostLock {
    /// Takes the lock `name`, waiting for another holder until `deadline`.
    pub fn take(name: &str, deadline: Instant) -> Result<HostLock, HostLockError> {
        let io_err = |source| HostLockError::Io { name: name.to_owned(), source };
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(io_err)?;
        loop {
            match UnixListener::bind_addr(&addr) {
                Ok(l) => return Ok(HostLock { _bound: l }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    if Instant::now() >= deadline {
                        return Err(HostLockError::TimedOut { name: name.to_owned() });
                    }
                    std::thread::sleep(RETRY);
                }
                Err(e) => return Err(io_err(e)),
            }
        }
    }
}

/// Takes `mutex` (which serialises the cases of this process), then the host lock `name` (every
/// isoprobe process's), waiting for both until `deadline`. The error reads "timed out waiting for
/// the `what` lock" when a holder kept either past it.
pub fn take_both(
    mutex: &'static Mutex<()>,
    name: &str,
    deadline: Instant,
    what: &str,
) -> Result<(MutexGuard<'static, ()>, HostLock), String> {
    let timed_out = || format!("timed out waiting for the {what} lock");
    let guard = loop {
        match mutex.try_lock() {
            Ok(g) => break g,
            Err(TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(RETRY),
            Err(TryLockError::WouldBlock) => return Err(timed_out()),
        }
    };
    let host = HostLock::take(name, deadline).map_err(|e| match e {
        HostLockError::TimedOut { .. } => timed_out(),
        e => e.to_string(),
    })?;
    Ok((guard, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_excludes_others_until_dropped() {
        let name = format!("isoprobe-test-hostlock-{}", std::process::id());
        let held = HostLock::take(&name, Instant::now()).expect("a free lock is taken at once");
        let err = HostLock::take(&name, Instant::now() + Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, HostLockError::TimedOut { .. }), "{err}");
        drop(held);
        // Not at once: a child another test thread forked while the lock was held shares its
        // socket until that child execs or exits (a few milliseconds; seen under load as a
        // TimedOut here), and the name is free only when the last copy is closed.
        HostLock::take(&name, Instant::now() + Duration::from_secs(10)).expect("a released lock is free again");
    }
}
