//! Swap for the kernel-test VM: a zram device (a compressed block device in RAM; the plan loads
//! its modules) with a swap header written here and turned on with swapon(2), so that
//! memory.swap.max has something to limit. The VM's root is a tmpfs, which cannot hold a swap
//! file, and a zram device needs no disk image on the host.
//!
//! What this module must never do: touch a block device other than the zram device it set up.

use std::fs;
use std::io::Write;

use super::GuestError;
use super::setup::GuestFacts;

/// The zram device the module makes first (its `num_devices` defaults to 1).
pub const ZRAM_DEVICE: &str = "/dev/zram0";
const ZRAM_DISKSIZE: &str = "/sys/block/zram0/disksize";

/// The page size swap headers are laid out in (x86-64, the VMs' architecture).
pub const PAGE_SIZE: usize = 4096;

/// The signature at the end of the header page (include/linux/swap.h, `union swap_header`:
/// `magic.magic`, the last 10 bytes of page 0), and the header version mkswap writes.
const SWAP_MAGIC: &[u8; 10] = b"SWAPSPACE2";
const SWAP_VERSION: u32 = 1;

/// Where `info.version` starts in the header page: after `info.bootbits[1024]`; `info.last_page`
/// and `info.nr_badpages` follow it (u32 each, native endian).
const INFO_OFFSET: usize = 1024;

/// Page 0 of a swap area of `bytes` bytes (`union swap_header`): version 1, `last_page` the
/// index of its last whole page, no bad pages, no UUID or label, and the magic.
/// `None` when the area is too small to hold a page beside the header, or too large to number.
pub fn swap_header(bytes: u64) -> Option<Vec<u8>> {
    let pages = bytes / PAGE_SIZE as u64;
    let last_page = u32::try_from(pages.checked_sub(1)?).ok().filter(|&p| p >= 1)?;
    let mut page = vec![0u8; PAGE_SIZE];
    page[INFO_OFFSET..INFO_OFFSET + 4].copy_from_slice(&SWAP_VERSION.to_ne_bytes());
    page[INFO_OFFSET + 4..INFO_OFFSET + 8].copy_from_slice(&last_page.to_ne_bytes());
    page[INFO_OFFSET + 8..INFO_OFFSET + 12].copy_from_slice(&0u32.to_ne_bytes());
    page[PAGE_SIZE - SWAP_MAGIC.len()..].copy_from_slice(SWAP_MAGIC);
    Some(page)
}

/// Sizes zram0 to `mib` MiB, writes a swap header on it and turns it on; /proc/swaps afterwards
/// goes into the facts.
pub fn zram_swap_on(mib: u64, facts: &mut GuestFacts) -> Result<(), GuestError> {
    let io = |what: String| move |source| GuestError::Io { what, source };
    fs::write(ZRAM_DISKSIZE, format!("{}", mib << 20)).map_err(io(format!("size {ZRAM_DEVICE} to {mib} MiB")))?;
    let header = swap_header(mib << 20)
        .ok_or_else(|| GuestError::Setup(format!("a swap area of {mib} MiB cannot be numbered")))?;
    let mut dev = fs::OpenOptions::new().write(true).open(ZRAM_DEVICE).map_err(io(format!("open {ZRAM_DEVICE}")))?;
    dev.write_all(&header).map_err(io(format!("write a swap header to {ZRAM_DEVICE}")))?;
    dev.sync_all().map_err(io(format!("flush {ZRAM_DEVICE}")))?;
    drop(dev);
    isoprobe_probes::sys::swapon(ZRAM_DEVICE, 0)
        .map_err(|source| GuestError::Sys { what: format!("swapon {ZRAM_DEVICE}"), source })?;
    facts.swaps = fs::read_to_string("/proc/swaps").map_err(io("read /proc/swaps".into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_mkswaps_layout() {
        let h = swap_header(256 << 20).expect("a 256 MiB area");
        assert_eq!(h.len(), PAGE_SIZE);
        assert_eq!(&h[PAGE_SIZE - 10..], b"SWAPSPACE2");
        let word = |at: usize| u32::from_ne_bytes(h[at..at + 4].try_into().expect("4 bytes"));
        assert_eq!((word(1024), word(1028), word(1032)), (1, 65535, 0));
        assert!(h[..1024].iter().all(|&b| b == 0));
    }

    #[test]
    fn an_area_needs_a_page_beside_its_header() {
        assert_eq!(swap_header(4096), None);
        assert!(swap_header(8192).is_some());
    }
}
