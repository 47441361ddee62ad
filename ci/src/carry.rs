//! The host programs a plan carries into the VM (`Plan::programs`): each dynamically linked
//! program with the shared libraries the host's ELF loader resolves for it, so that a Debian
//! binary (runc, crun) runs in a VM whose only userland is the initramfs.
//!
//! The loader's own list is the authority: `ldd` (the loader in trace mode) prints every library
//! it maps, the transitive ones included, at the path it found it, and the loader itself. Each file
//! goes into the VM at that path (the program at its own), with the content of the file a symlink
//! there names. This module must never write anything: it only lists host files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::vm::VmError;

/// The files a program needs in the VM: (host file to read, absolute guest path), the program
/// first. A static program needs only itself.
pub fn program_files(program: &str) -> Result<Vec<(PathBuf, String)>, VmError> {
    let host = Path::new(program);
    let real = std::fs::canonicalize(host)
        .map_err(|source| VmError::Io { what: format!("find the program {program} on this host"), source })?;
    let out = Command::new("ldd")
        .arg(host)
        .output()
        .map_err(|source| VmError::Io { what: format!("run ldd {program}"), source })?;
    let text = String::from_utf8_lossy(&out.stdout);
    // ldd exits 1 for a static program ("not a dynamic executable"); any other failure is one.
    let is_static =
        text.contains("statically linked") || String::from_utf8_lossy(&out.stderr).contains("not a dynamic");
    if !out.status.success() && !is_static {
        return Err(VmError::Initramfs(format!(
            "ldd {program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut files = vec![(real, program.to_owned())];
    for lib in loaded_libraries(&text)? {
        let real = std::fs::canonicalize(&lib)
            .map_err(|source| VmError::Io { what: format!("find {lib} (a library of {program})"), source })?;
        files.push((real, lib));
    }
    Ok(files)
}

/// The files of every program, without a second copy of a guest path another program (or
/// `taken`, the files the request already has) puts there.
pub fn programs_files(programs: &[String], taken: &[(PathBuf, String)]) -> Result<Vec<(PathBuf, String)>, VmError> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for p in programs {
        for (host, guest) in program_files(p)? {
            if !taken.iter().chain(&out).any(|(_, g)| *g == guest) {
                out.push((host, guest));
            }
        }
    }
    Ok(out)
}

/// The absolute paths in `ldd` output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`
/// and the loader's own `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO (no file) is not one. A
/// library the loader did not find (`=> not found`) is an error: the program would not start.
pub fn loaded_libraries(ldd: &str) -> Result<Vec<String>, VmError> {
    let mut libs = Vec::new();
    for line in ldd.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(VmError::Initramfs(format!("the library {} is not found on this host", name.trim())));
                }
                rest.split_whitespace().next().unwrap_or_default()
            }
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libs.push(path.to_owned());
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_list_gives_every_mapped_file_and_the_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x00007f8c)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8b)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f8d)\n";
        assert_eq!(
            loaded_libraries(out).unwrap(),
            ["/lib/x86_64-linux-gnu/libseccomp.so.2", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
        );
        assert!(loaded_libraries("\tlibyajl.so.2 => not found\n").unwrap_err().to_string().contains("libyajl.so.2"));
        assert!(loaded_libraries("\tstatically linked\n").unwrap().is_empty());
    }

    /// The host's own ldd on a program every Debian host has: the program at its path, then its
    /// libraries, the C library among them; a second program adds no second copy of a path.
    #[test]
    fn a_host_program_comes_with_its_libraries_once() {
        let files = program_files("/bin/sh").unwrap();
        assert_eq!(files[0].1, "/bin/sh");
        assert!(files.iter().any(|(_, g)| g.ends_with("/libc.so.6")), "{files:?}");
        assert!(files.iter().all(|(h, _)| h.is_file()), "{files:?}");
        let both = programs_files(&["/bin/sh".into(), "/bin/true".into()], &[]).unwrap();
        let libc: Vec<_> = both.iter().filter(|(_, g)| g.ends_with("/libc.so.6")).collect();
        assert_eq!(libc.len(), 1, "{both:?}");
        assert!(programs_files(&["/nonexistent/runc".into()], &[]).is_err());
    }
}
