//! Which cases of a run may run at once.
//!
//! Most cases run beside each other. A mount case (one with a propagation, see
//! [`crate::mount_case`]) makes shared mounts on its host side, and what is mounted or unmounted
//! under them propagates into every mount namespace copied from the host's while they exist, so
//! it keeps apart from the other cases:
//! - its host side's mounts and unmounts reach the copies the other cases' starts make of the
//!   host's table: an external tool that walks its copy fails (bwrap's recursive bind of `/` met
//!   ENOENT remounting a mount that went away under it), and a recursive unmount in a copy (a
//!   pivot_root case detaching its old root) propagates back into the mount case's own mounts;
//! - native mount cases run beside each other: a clone3 copies the host's table at once, the
//!   cases' rootfs is the host's (no old root to detach), and each probe makes every mount but its
//!   own propagation mount point private in its init, taking in what another mount case's mounts
//!   propagated into its copy meanwhile (`isoprobe_probes::probe::mounts::private_but`);
//! - an external tool's mount case runs alone: its start may walk its copy of the table while
//!   another mount case changes it, which the host mount table's lock does not hold off (a mount
//!   case holds that lock as a change for its whole life, which covers its own start's copy; see
//!   [`crate::mounts`]).
//!
//! A class that waits holds off new entrants of the class inside, and gets the turn when that
//! class has left, so neither starves the other.

use std::sync::{Condvar, Mutex, PoisonError};

/// Whom a case may run beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Company {
    /// Any case but a mount case: beside every other such case.
    Beside,
    /// A native launcher's mount case: beside other native mount cases only.
    NativeMount,
    /// An external tool's mount case: alone.
    Alone,
}

impl Company {
    const ALL: [Company; 3] = [Company::Beside, Company::NativeMount, Company::Alone];

    fn index(self) -> usize {
        self as usize
    }
}

/// The run's cases by [`Company`]: one class inside at a time.
#[derive(Debug, Default)]
pub struct Companies {
    state: Mutex<Inside>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct Inside {
    class: Option<Company>,
    holders: usize,
    waiting: [usize; 3],
    /// The class that was inside last: when it and another wait for an empty place, the other
    /// goes first.
    last: Option<Company>,
}

/// A case's place among the running ones; it leaves on drop (also while unwinding).
#[derive(Debug)]
#[must_use = "the case keeps its place only while this lives"]
pub struct Entered<'a> {
    companies: &'a Companies,
}

impl Companies {
    pub fn new() -> Companies {
        Companies::default()
    }

    /// Waits until a case of `class` may run, and holds its place until the result is dropped.
    pub fn enter(&self, class: Company) -> Entered<'_> {
        let mut inside = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        inside.waiting[class.index()] += 1;
        loop {
            let other_waits = Company::ALL.iter().any(|&c| c != class && inside.waiting[c.index()] > 0);
            let may = if inside.holders == 0 {
                !(other_waits && inside.last == Some(class))
            } else {
                inside.class == Some(class) && class != Company::Alone && !other_waits
            };
            if may {
                break;
            }
            inside = self.turn.wait(inside).unwrap_or_else(PoisonError::into_inner);
        }
        inside.waiting[class.index()] -= 1;
        inside.class = Some(class);
        inside.holders += 1;
        Entered { companies: self }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut inside = self.companies.state.lock().unwrap_or_else(PoisonError::into_inner);
        inside.holders -= 1;
        if inside.holders == 0 {
            inside.last = inside.class.take();
            // Every case leaves, most with no one waiting: a wake is a system call, made only
            // when someone waits (as the host mount table's lock does, `crate::mounts`).
            let someone_waits = inside.waiting.iter().any(|&n| n > 0);
            drop(inside);
            if someone_waits {
                self.companies.turn.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Enters `class` on a thread of `s` and reports when it is in; it leaves when `leave` sends.
    fn enter_on<'s>(
        s: &'s std::thread::Scope<'s, '_>,
        companies: &'s Companies,
        class: Company,
        entered: mpsc::Sender<Company>,
    ) -> mpsc::Sender<()> {
        let (leave, left) = mpsc::channel::<()>();
        s.spawn(move || {
            let _in = companies.enter(class);
            entered.send(class).expect("the test listens");
            let _ = left.recv();
        });
        leave
    }

    /// Whether nothing entered within a while: the test cannot prove a wait is forever, but an
    /// entry that is not held back comes at once.
    fn none_entered(rx: &mpsc::Receiver<Company>) -> bool {
        rx.recv_timeout(Duration::from_millis(50)).is_err()
    }

    #[test]
    fn a_class_shares_with_itself_and_keeps_apart_from_the_others() {
        let companies = Companies::new();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let a = enter_on(s, &companies, Company::NativeMount, tx.clone());
            assert_eq!(rx.recv(), Ok(Company::NativeMount));
            let b = enter_on(s, &companies, Company::NativeMount, tx.clone());
            assert_eq!(rx.recv(), Ok(Company::NativeMount), "native mount cases run beside each other");
            let c = enter_on(s, &companies, Company::Beside, tx.clone());
            assert!(none_entered(&rx), "another case waits for the mount cases");
            drop(a);
            assert!(none_entered(&rx), "until the last of them left");
            drop(b);
            assert_eq!(rx.recv(), Ok(Company::Beside));
            drop(c);
        });
    }

    #[test]
    fn an_alone_case_runs_alone() {
        let companies = Companies::new();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let a = enter_on(s, &companies, Company::Alone, tx.clone());
            assert_eq!(rx.recv(), Ok(Company::Alone));
            let b = enter_on(s, &companies, Company::Alone, tx.clone());
            assert!(none_entered(&rx), "a second one waits");
            drop(a);
            assert_eq!(rx.recv(), Ok(Company::Alone));
            drop(b);
        });
    }

    #[test]
    fn a_waiting_class_holds_off_new_entrants_of_the_class_inside() {
        let companies = Companies::new();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let first = enter_on(s, &companies, Company::Beside, tx.clone());
            assert_eq!(rx.recv(), Ok(Company::Beside));
            let mount = enter_on(s, &companies, Company::NativeMount, tx.clone());
            assert!(none_entered(&rx), "the mount case waits for the case inside");
            // A new case of the class inside would join it, were a mount case not waiting.
            let late = enter_on(s, &companies, Company::Beside, tx.clone());
            assert!(none_entered(&rx), "a new case waits behind the waiting mount case");
            drop(first);
            assert_eq!(rx.recv(), Ok(Company::NativeMount), "the waiting class goes first");
            assert!(none_entered(&rx));
            drop(mount);
            assert_eq!(rx.recv(), Ok(Company::Beside));
            drop(late);
        });
    }
}
