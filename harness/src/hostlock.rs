//! Host-wide locks between isoprobe processes: an abstract unix socket that only one process can
//! bind at a time. The kernel releases it when its holder closes it or dies, so a crashed run
//! leaves nothing to clean up. Names carry isoprobe's prefix. Within one process, the cases of a
//! run wait for each other on a [`LocalLock`] first.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How soon a waiter for a host lock tries the bind again (a bind cannot be waited on): at first
/// soon, for a holder about to let go (within a run the host lock is taken right after the local
/// one, but a child another thread cloned while it was held keeps a copy of the socket until its
/// exec); then at most every millisecond, the pace for another process's case.
const RETRY_FIRST: Duration = Duration::from_micros(50);
const RETRY_MAX: Duration = Duration::from_millis(1);

/// A lock between the threads of this process that a waiter gives up on at a deadline (std's
/// `Mutex` has no timed lock). A waiter sleeps until the holder lets go and is woken then: the
/// two workers of `run -j 2` met on the domainname lock 14 and 21 times in two namespace matrices,
/// and trying again every millisecond, as this did before, kept each waiting a millisecond or
/// more where the holder let go within a few hundred microseconds (time in `take_both` in a
/// matrix: 13 to 23 ms before, 5 to 7 ms after; issue 17).
#[derive(Debug)]
pub struct LocalLock {
    state: Mutex<LocalState>,
    released: Condvar,
}

/// Whether a [`LocalLock`] is held, and how many wait for it (a release wakes one only then).
#[derive(Debug)]
struct LocalState {
    held: bool,
    waiting: usize,
}

/// A held [`LocalLock`]; released, and one waiter woken, on drop (also while unwinding).
#[derive(Debug)]
pub struct LocalGuard {
    lock: &'static LocalLock,
}

impl LocalLock {
    pub const fn new() -> LocalLock {
        LocalLock { state: Mutex::new(LocalState { held: false, waiting: 0 }), released: Condvar::new() }
    }

    /// Takes the lock, waiting for its holder until `deadline`; `None` if it was still held then.
    pub fn take(&'static self, deadline: Instant) -> Option<LocalGuard> {
        // The mutex guards only the state, which is changed whole: a poisoned one (a panic while
        // it was locked) still holds values to trust.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.waiting += 1;
        while state.held {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.waiting -= 1;
                return None;
            }
            state = self.released.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        state.waiting -= 1;
        state.held = true;
        Some(LocalGuard { lock: self })
    }
}

impl Default for LocalLock {
    fn default() -> LocalLock {
        LocalLock::new()
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let mut state = self.lock.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.held = false;
        // Most releases have no one to wake, and a wake is a system call.
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.lock.released.notify_one();
        }
    }
}

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
        let mut pause = RETRY_FIRST;
        loop {
            match UnixListener::bind_addr(&addr) {
                Ok(l) => return Ok(HostLock { _bound: l }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    if Instant::now() >= deadline {
                        return Err(HostLockError::TimedOut { name: name.to_owned() });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(RETRY_MAX);
                }
                Err(e) => return Err(io_err(e)),
            }
        }
    }
}

/// A [`LocalLock`] and a host lock of the same name, held together; released on drop, the host
/// lock first (fields drop in declaration order), so that the waiter this process wakes finds
/// it free.
#[derive(Debug)]
pub struct BothLocks {
    _host: HostLock,
    _local: LocalGuard,
}

/// Takes `local` (which serialises the cases of this process), then the host lock `name` (every
/// isoprobe process's), waiting for both until `deadline`. The error reads "timed out waiting for
/// the `what` lock" when a holder kept either past it.
pub fn take_both(local: &'static LocalLock, name: &str, deadline: Instant, what: &str) -> Result<BothLocks, String> {
    let timed_out = || format!("timed out waiting for the {what} lock");
    let local = local.take(deadline).ok_or_else(timed_out)?;
    let host = HostLock::take(name, deadline).map_err(|e| match e {
        HostLockError::TimedOut { .. } => timed_out(),
        e => e.to_string(),
    })?;
    Ok(BothLocks { _host: host, _local: local })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_held_local_lock_times_out_and_passes_to_a_waiter_on_release() {
        static LOCK: LocalLock = LocalLock::new();
        let held = LOCK.take(Instant::now()).expect("a free lock is taken at once");
        assert!(LOCK.take(Instant::now() + Duration::from_millis(20)).is_none(), "a held lock is not taken twice");
        let (taken_tx, taken_rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let guard = LOCK.take(Instant::now() + Duration::from_secs(60));
                taken_tx.send(guard.is_some()).expect("the test waits for the answer");
            });
            // The waiter cannot have it while it is held: it answers only after the release.
            assert!(taken_rx.recv_timeout(Duration::from_millis(50)).is_err(), "taken while held");
            drop(held);
            assert_eq!(taken_rx.recv(), Ok(true), "the waiter takes the released lock");
        });
        assert!(LOCK.take(Instant::now()).is_some(), "the waiter's guard released it in turn");
    }

    #[test]
    fn a_panic_while_holding_a_local_lock_releases_it() {
        static LOCK: LocalLock = LocalLock::new();
        let panicked = std::thread::spawn(|| {
            let _guard = LOCK.take(Instant::now()).expect("a free lock is taken at once");
            panic!("a case panics while it holds the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(LOCK.take(Instant::now()).is_some(), "the unwinding released the lock");
    }

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
