//! Where the runner keeps its samples: [`SampleStore`], records in shared slots that a fork does
//! not copy, and [`anon_rss_kib`], the process's anonymous memory it keeps small (see
//! `isoprobe_harness::sys::primitives::tune_malloc`).

use std::io;

use isoprobe_harness::sys::primitives::SharedSlots;

/// A fixed number of records of four u64 each, in shared slots: memory a fork does not copy (a
/// shared mapping's pages are not copied into the child's page tables) and that is not counted in
/// the process's anonymous memory, so storing samples in it does not make the next sample's fork
/// slower.
#[derive(Debug)]
pub struct SampleStore {
    slots: SharedSlots,
    len: usize,
}

const WORDS: usize = 4;

impl SampleStore {
    /// Room for `cap` records.
    pub fn new(cap: usize) -> io::Result<SampleStore> {
        Ok(SampleStore { slots: SharedSlots::new(cap.max(1) * WORDS)?, len: 0 })
    }

    fn cap(&self) -> usize {
        self.slots.len() / WORDS
    }

    /// Whether no record fits any more.
    pub fn is_full(&self) -> bool {
        self.len == self.cap()
    }

    /// Appends a record; false when full.
    pub fn push(&mut self, r: [u64; WORDS]) -> bool {
        if self.is_full() {
            return false;
        }
        for (k, v) in r.into_iter().enumerate() {
            self.slots.store(WORDS * self.len + k, v);
        }
        self.len += 1;
        true
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record `i`, if stored.
    pub fn get(&self, i: usize) -> Option<[u64; WORDS]> {
        (i < self.len).then(|| std::array::from_fn(|k| self.slots.load(WORDS * i + k)))
    }
}

/// The process's resident anonymous memory in KiB (`RssAnon` of /proc/self/status).
pub fn anon_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("RssAnon:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_store_keeps_its_records_out_of_the_anonymous_memory() {
        let mut store = SampleStore::new(3).unwrap();
        assert!(store.is_empty());
        for i in 0..3u64 {
            assert!(store.push([i, i + 1, i + 2, u64::MAX]));
        }
        assert!(!store.push([9; 4]), "full");
        assert_eq!((store.len(), store.get(1), store.get(3)), (3, Some([1, 2, 3, u64::MAX]), None));
        // 3.2 MB of records: in a shared mapping (`s` in /proc/self/smaps), none of it anonymous
        // memory, so fork copies none of it.
        let mut big = SampleStore::new(100_000).unwrap();
        for i in 0..100_000u64 {
            big.push([i; 4]);
        }
        let at = big.slots.address();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut blocks = smaps.split('\n').peekable();
        let mut found = None;
        while let Some(line) = blocks.next() {
            let mut head = line.split_whitespace();
            let (Some(range), Some(perms)) = (head.next(), head.next()) else { continue };
            let Some((lo, hi)) = range.split_once('-') else { continue };
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) else { continue };
            if (lo..hi).contains(&at) {
                let anon = blocks.find_map(|l| l.strip_prefix("Anonymous:")).map(|v| v.trim().to_owned());
                found = Some((perms.to_owned(), anon));
                break;
            }
        }
        let (perms, anon) = found.expect("the store's mapping is in /proc/self/smaps");
        assert!(perms.ends_with('s'), "shared mapping: {perms}");
        assert_eq!(anon.as_deref(), Some("0 kB"));
        assert_eq!(big.get(99_999), Some([99_999; 4]));
    }
}
