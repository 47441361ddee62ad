//! The benchmarks' own files: a temp directory under /tmp named with isoprobe's prefix, removed on
//! drop, and the tiny static payload (a 129-byte ELF that calls exit_group(0)) that fork+exec and
//! the container starts run, so that they measure the start and not the payload.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `/tmp/isoprobe-bench-<pid>-<token>`, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "{}-bench-{}-{}",
            isoprobe_harness::names::PREFIX,
            std::process::id(),
            isoprobe_harness::names::token()
        ));
        fs::create_dir(&path)?;
        // Readable and searchable by the ids of a user namespace's root (the payload runs there).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("isoprobe-bench: failed to remove {}: {e}", self.path.display());
        }
    }
}

/// Load address of the payload's only segment.
const BASE: u64 = 0x40_0000;
/// ELF header (64 bytes) + one program header (56 bytes).
const CODE_OFFSET: u64 = 64 + 56;
/// `xor edi, edi; mov eax, 231 (exit_group); syscall`.
const CODE: [u8; 9] = [0x31, 0xff, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05];

/// The bytes of a minimal static x86_64 ELF executable that exits with status 0 (see elf(5)).
pub fn exit0_elf() -> Vec<u8> {
    let len = CODE_OFFSET + CODE.len() as u64;
    let mut b = Vec::with_capacity(len as usize);
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV, padding.
    b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&2u16.to_le_bytes()); // e_type = ET_EXEC
    b.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine = EM_X86_64
    b.extend_from_slice(&1u32.to_le_bytes()); // e_version
    b.extend_from_slice(&(BASE + CODE_OFFSET).to_le_bytes()); // e_entry
    b.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    b.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    b.extend_from_slice(&1u32.to_le_bytes()); // p_type = PT_LOAD
    b.extend_from_slice(&5u32.to_le_bytes()); // p_flags = PF_R | PF_X
    b.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    b.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    b.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    b.extend_from_slice(&len.to_le_bytes()); // p_filesz
    b.extend_from_slice(&len.to_le_bytes()); // p_memsz
    b.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    b.extend_from_slice(&CODE);
    debug_assert_eq!(b.len() as u64, len);
    b
}

/// Writes the payload to `dir/isoprobe-payload` (mode 0755) and returns its path.
pub fn write_payload(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join("isoprobe-payload");
    isoprobe_harness::exe::write_executable(&path, &exit0_elf())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real thing: the kernel loads it and it exits 0.
    #[test]
    fn the_payload_runs_and_exits_zero() {
        let dir = TempDir::new().unwrap();
        let exe = write_payload(dir.path()).unwrap();
        let status = std::process::Command::new(&exe).status().unwrap();
        assert!(status.success(), "{status:?}");
        assert_eq!(fs::metadata(&exe).unwrap().len(), 129);
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }
}
