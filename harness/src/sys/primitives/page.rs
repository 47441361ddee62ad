//! Memory a child and its parent share: [`SharedSlots`], a `MAP_SHARED` anonymous mapping of
//! `u64` slots (mmap(2)), and on it [`SharedPage`], the page a benchmark child reports through.

use std::ffi::c_int;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Timed;

/// A zero-filled, page-aligned, `MAP_SHARED` anonymous mapping of `u64` slots, unmapped on drop.
/// Every child forked (or vforked) after it was made shares its pages: what a child stores there
/// the parent reads after the reap. A fork copies none of it (a shared mapping's pages stay
/// shared), and none of it counts as the process's anonymous memory.
#[derive(Debug)]
pub struct SharedSlots {
    base: NonNull<AtomicU64>,
    slots: usize,
}

// SAFETY: the mapping is only accessed through atomics, and it lives until drop.
unsafe impl Send for SharedSlots {}
// SAFETY: as above.
unsafe impl Sync for SharedSlots {}

impl SharedSlots {
    /// `slots` zeroed slots (at least one).
    pub fn new(slots: usize) -> io::Result<SharedSlots> {
        let slots = slots.max(1);
        // SAFETY: an anonymous shared mapping at a kernel-chosen address (mmap(2)); no existing
        // memory is affected. The result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                slots * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<AtomicU64>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(SharedSlots { base, slots })
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots
    }

    /// Never: a mapping has at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Slot `i`, if in bounds.
    pub fn slot(&self, i: usize) -> Option<&AtomicU64> {
        // SAFETY: `i` is in bounds of the mapping, which is zero-initialised, 8-byte aligned (page
        // aligned) and lives as long as `self`; AtomicU64 has the layout of u64.
        (i < self.slots).then(|| unsafe { &*self.base.as_ptr().add(i) })
    }

    /// Stores `v` in slot `i` (ignored out of bounds: this runs in children and must not panic).
    pub fn store(&self, i: usize, v: u64) {
        if let Some(s) = self.slot(i) {
            s.store(v, Ordering::Release);
        }
    }

    /// The value of slot `i` (0 out of bounds).
    pub fn load(&self, i: usize) -> u64 {
        self.slot(i).map(|s| s.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// The mapping's address (to find it in /proc/self/maps).
    pub fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// A raw pointer to slot `i` for the kernel to write through (i must be in bounds).
    fn raw(&self, i: usize) -> *mut u64 {
        assert!(i < self.slots, "slot {i} of {}", self.slots);
        // SAFETY: in bounds (checked above).
        unsafe { self.base.as_ptr().add(i).cast() }
    }
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        // SAFETY: the mapping was created with this address and length in `new` and is unmapped
        // once; children have their own mappings of the same pages.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.slots * 8) };
    }
}

/// The page a benchmark child reports through: it stores its timings and any failure there, the
/// parent reads them after the reap.
///
/// Layout: slot 0 = [`STATUS_OK`]/[`STATUS_FAILED`] (0 until the child reports), slot 1 = errno,
/// slot 2 = the failed step (a byte), slot 3 and the next [`RUSAGE_SLOTS`] = the wait status and
/// rusage of a reap (see [`super::spawn_and_wait`]), then the results, two per timed call (wall,
/// cpu).
#[derive(Debug)]
pub struct SharedPage {
    slots: SharedSlots,
}

pub(super) const SLOT_STATUS: usize = 0;
pub(super) const SLOT_ERRNO: usize = 1;
pub(super) const SLOT_STEP: usize = 2;
pub(super) const SLOT_REAP_STATUS: usize = 3;
const SLOT_RUSAGE: usize = 4;
/// How many slots a reap's rusage takes.
pub const RUSAGE_SLOTS: usize = std::mem::size_of::<libc::rusage>().div_ceil(8);
pub(super) const SLOT_RESULTS: usize = SLOT_RUSAGE + RUSAGE_SLOTS;
pub const STATUS_OK: u64 = 1;
pub const STATUS_FAILED: u64 = 2;

impl SharedPage {
    /// A page with room for `results` timed calls.
    pub fn new(results: usize) -> io::Result<SharedPage> {
        Ok(SharedPage { slots: SharedSlots::new(SLOT_RESULTS + 2 * results)? })
    }

    /// How many timed calls fit.
    pub fn capacity(&self) -> usize {
        (self.slots.len() - SLOT_RESULTS) / 2
    }

    pub(super) fn store(&self, i: usize, v: u64) {
        self.slots.store(i, v);
    }

    pub(super) fn load(&self, i: usize) -> u64 {
        self.slots.load(i)
    }

    /// Where a reap stores the wait status and the rusage: in this shared mapping, which a fork
    /// leaves writable in the parent (see `create_and_reap`). Both ranges are inside the mapping
    /// (`new` allocates past them) and 8-byte aligned, as rusage needs; the kernel writes them
    /// while no reference to them is held (AtomicU64 is an UnsafeCell).
    pub(super) fn reap_area(&self) -> (*mut c_int, *mut libc::rusage) {
        (self.slots.raw(SLOT_REAP_STATUS).cast(), self.slots.raw(SLOT_RUSAGE).cast())
    }

    /// Zeroes every slot (before the next child).
    pub fn clear(&self) {
        for i in 0..self.slots.len() {
            self.store(i, 0);
        }
    }

    /// Stores the timing of the `i`-th timed call (the child's side).
    pub(super) fn put(&self, i: usize, t: Timed) {
        self.store(SLOT_RESULTS + 2 * i, t.wall_ns);
        self.store(SLOT_RESULTS + 2 * i + 1, t.cpu_ns);
    }

    /// Stores a raw value in result slot `i` (the child's side; see [`Self::raw`]).
    pub(super) fn put_raw(&self, i: usize, v: u64) {
        self.store(SLOT_RESULTS + i, v);
    }

    /// The timing of the child's `i`-th timed call.
    pub fn result(&self, i: usize) -> Timed {
        Timed { wall_ns: self.load(SLOT_RESULTS + 2 * i), cpu_ns: self.load(SLOT_RESULTS + 2 * i + 1) }
    }

    /// A raw value stored by the child in result slot `i` (see [`super::Action::StampExit`]).
    pub fn raw(&self, i: usize) -> u64 {
        self.load(SLOT_RESULTS + i)
    }

    /// `Ok` when the child reported success; its failure (step and errno) otherwise.
    pub fn outcome(&self) -> io::Result<()> {
        match self.load(SLOT_STATUS) {
            STATUS_OK => Ok(()),
            STATUS_FAILED => {
                let errno = io::Error::from_raw_os_error(self.load(SLOT_ERRNO) as i32);
                Err(io::Error::new(errno.kind(), format!("{} in the child: {errno}", step_name(self.load(SLOT_STEP)))))
            }
            _ => Err(io::Error::other("the child ended without reporting")),
        }
    }

    /// Whether the child has reported (success or failure) yet.
    pub fn reported(&self) -> bool {
        self.load(SLOT_STATUS) != 0
    }
}

/// The name of a step a child failed in (the byte it stored in slot 2).
fn step_name(step: u64) -> &'static str {
    match step as u8 {
        b'u' => "unshare",
        b's' => "setns",
        b'x' => "execve",
        b'p' => "mount --make-rprivate /",
        b'm' => "mount",
        b'd' => "mkdir",
        b'h' => "read of the hold pipe",
        b'c' => "close_range",
        _ => "an unknown step",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_page_round_trips() {
        let page = SharedPage::new(2).unwrap();
        assert_eq!(page.capacity(), 2);
        page.store(SLOT_RESULTS + 2, 7);
        assert_eq!(page.result(1).wall_ns, 7);
        page.clear();
        assert_eq!(page.result(1).wall_ns, 0);
        assert!(page.outcome().is_err());
        page.store(SLOT_ERRNO, libc::EBADF as u64);
        page.store(SLOT_STEP, u64::from(b's'));
        page.store(SLOT_STATUS, STATUS_FAILED);
        let err = page.outcome().unwrap_err().to_string();
        assert!(err.starts_with("setns in the child: Bad file descriptor"), "{err}");
    }

    #[test]
    fn slots_out_of_bounds_are_ignored_not_written() {
        let slots = SharedSlots::new(2).unwrap();
        slots.store(2, 9);
        assert_eq!((slots.len(), slots.load(2), slots.slot(2).is_none()), (2, 0, true));
        slots.store(1, 9);
        assert_eq!(slots.load(1), 9);
    }
}
