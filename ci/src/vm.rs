//! The host side of a kernel-test VM: builds the initramfs (the init, the plan, the programs),
//! boots the kernel under qemu with TCG, follows the data channel as the VM writes it, enforces the
//! overall timeout, and writes what came out: `console.log`, `data.txt` (the raw channel), the
//! files the VM sent under `files/`, and `result.json` (a [`VmResult`]).
//!
//! It must never leave qemu running: every exit path kills and reaps the process it started.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::frame::{LineSplitter, Record, StepStatus, Transcript};
use crate::guest::channel::PARAM;
use crate::guest::setup::GuestFacts;
use crate::libtest;
use crate::newc::Archive;
use crate::plan::{PLAN_PATH, Plan};

/// The version of `result.json`.
pub const RESULT_SCHEMA: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid plan: {0}")]
    Plan(String),
    #[error("failed to build the initramfs: {0}")]
    Initramfs(String),
}

fn io_ctx<T>(r: std::io::Result<T>, what: impl FnOnce() -> String) -> Result<T, VmError> {
    r.map_err(|source| VmError::Io { what: what(), source })
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct BootRequest {
    pub kernel: PathBuf,
    /// The static init binary (isoprobe-vm-init).
    pub init: PathBuf,
    pub plan: Plan,
    /// Host files copied into the VM: (host path, absolute guest path).
    pub files: Vec<(PathBuf, String)>,
    pub out_dir: PathBuf,
    pub cpus: u32,
    pub memory_mib: u32,
    /// For the whole VM, boot to power-off.
    pub timeout: Duration,
    /// Extra kernel command-line parameters.
    pub append: String,
    /// Copy the console to stderr as it comes.
    pub echo_console: bool,
    pub qemu: String,
}

/// A step as the host saw it end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    pub status: StepStatus,
    /// The step's duration as the VM measured it.
    pub elapsed_ms: u64,
    /// The libtest counts in the step's output, when it is a libtest run.
    pub libtest: Option<libtest::Counts>,
}

/// Everything one boot produced: `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmResult {
    pub schema: u32,
    pub kernel: String,
    /// The release the VM reported (uname -r).
    pub release: Option<String>,
    /// The init reported that every step ran and every file was sent.
    pub complete: bool,
    /// The host killed qemu at the overall timeout.
    pub timed_out: bool,
    pub qemu_exit: Option<i32>,
    /// From starting qemu to the init's hello: firmware, kernel boot, initramfs unpacking.
    pub boot_ms: Option<u64>,
    /// From starting qemu to its exit.
    pub total_ms: u64,
    pub steps: Vec<StepResult>,
    /// Files the VM sent, under files/.
    pub files: Vec<String>,
    /// Errors the init reported.
    pub init_errors: Vec<String>,
    /// Framing problems: files that did not arrive whole, malformed records.
    pub problems: Vec<String>,
    pub guest: Option<GuestFacts>,
    /// Boots before this one whose kernel died before the init's hello, or of an int3 under TCG
    /// (see [`boot_retrying`]): none of them judged anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_boots: Vec<EarlierBoot>,
}

/// A boot that was booted again (see [`boot_retrying`]), kept as evidence beside the boot that
/// followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlierBoot {
    /// Where its console and result are.
    pub dir: String,
    /// The console lines that tell how the kernel died (an Oops, a panic, a BUG), or its last
    /// lines when none does.
    pub console: Vec<String>,
    pub timed_out: bool,
    pub total_ms: u64,
    /// It reached the init's hello and died of an int3 afterwards ([`EMULATED_INT3`]).
    #[serde(default)]
    pub after_hello: bool,
}

impl VmResult {
    /// The kernel died while booting: qemu ended before the init's hello, before any step of the
    /// plan (and anything of isoprobe's) ran. Not a boot that hung until the overall timeout:
    /// booting that again could double the wait.
    pub fn died_before_hello(&self) -> bool {
        !self.timed_out && self.boot_ms.is_none() && self.steps.is_empty() && self.release.is_none()
    }

    /// The kernel died of an int3 (its console says [`EMULATED_INT3`]) before the run was clean:
    /// under TCG, the emulator's doing (see [`BOOT_ATTEMPTS`]), whenever it came.
    pub fn died_of_emulated_int3(&self, console: &str) -> bool {
        !self.passed() && console.lines().any(|l| l.contains(EMULATED_INT3))
    }

    /// Whether the run is clean: complete, every step exited 0, nothing went wrong on the way.
    pub fn passed(&self) -> bool {
        self.complete
            && !self.timed_out
            && self.init_errors.is_empty()
            && self.problems.is_empty()
            && self.steps.iter().all(|s| s.status.success())
    }
}

/// The initramfs for a request: /init, /dev/console, the mount points, the plan, the files.
pub fn initramfs(req: &BootRequest) -> Result<Vec<u8>, VmError> {
    req.plan.validate().map_err(|e| VmError::Plan(e.to_string()))?;
    let bad = |e: crate::newc::NewcError| VmError::Initramfs(e.to_string());
    let mut a = Archive::new();
    let read = |p: &Path| io_ctx(fs::read(p), || format!("read {}", p.display()));
    a.file("init", 0o755, read(&req.init)?).map_err(bad)?;
    // The kernel opens /dev/console for the init's stdio before any devtmpfs is mounted.
    a.char_dev("dev/console", 0o600, 5, 1).map_err(bad)?;
    // var/tmp: a temporary directory on the root filesystem, which (unlike /tmp, mounted nodev as
    // systemd mounts it) allows device nodes; see ci/kernels/README.md, "Plans".
    for d in ["proc", "sys", "tmp", "var/tmp", "run", "root", "bin"] {
        a.dir(d, if d.ends_with("tmp") { 0o1777 } else { 0o755 }).map_err(bad)?;
    }
    let plan = serde_json::to_vec_pretty(&req.plan).map_err(|e| VmError::Plan(e.to_string()))?;
    a.file(PLAN_PATH, 0o644, plan).map_err(bad)?;
    for (host, guest) in &req.files {
        if !guest.starts_with('/') {
            return Err(VmError::Initramfs(format!("guest path {guest:?} is not absolute")));
        }
        let md = io_ctx(fs::metadata(host), || format!("stat {}", host.display()))?;
        let perm = if md.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
        a.file(guest, perm, read(host)?).map_err(bad)?;
    }
    let mut out = Vec::new();
    io_ctx(a.write(&mut out), || "write the initramfs".into())?;
    Ok(out)
}

/// The qemu command line for a request.
pub fn qemu_args(req: &BootRequest, initrd: &Path, data: &Path) -> Vec<String> {
    let mut append = format!("console=ttyS0 panic=-1 {PARAM}=/dev/ttyS1");
    for a in &req.plan.kernel_args {
        append.push(' ');
        append.push_str(a);
    }
    if !req.append.is_empty() {
        append.push(' ');
        append.push_str(&req.append);
    }
    [
        // KVM is not an option everywhere (nested virtualisation); TCG boots any kernel anywhere.
        "-accel",
        "tcg",
        "-m",
        &req.memory_mib.to_string(),
        "-smp",
        &req.cpus.to_string(),
        "-nographic",
        "-monitor",
        "none",
        "-no-reboot",
        "-kernel",
        &req.kernel.display().to_string(),
        "-initrd",
        &initrd.display().to_string(),
        "-append",
        &append,
        // ttyS0: the console, on qemu's stdout. ttyS1: the data channel, into a file.
        "-serial",
        "stdio",
        "-serial",
        &format!("file:{}", data.display()),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Kills and reaps qemu when dropped, unless it was already reaped.
struct Qemu(Option<Child>);

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How often the host reads the data channel file while the VM runs.
const POLL: Duration = Duration::from_millis(50);

/// Boots the VM, waits for it to power off (or kills it at the timeout), and writes the results.
pub fn boot(req: &BootRequest) -> Result<VmResult, VmError> {
    let out = &req.out_dir;
    io_ctx(fs::create_dir_all(out.join("files")), || format!("create {}", out.display()))?;
    let initrd = out.join("initramfs.cpio");
    io_ctx(fs::write(&initrd, initramfs(req)?), || format!("write {}", initrd.display()))?;
    let data_path = out.join("data.txt");
    io_ctx(File::create(&data_path), || format!("create {}", data_path.display()))?;
    let console_path = out.join("console.log");
    let console = io_ctx(File::create(&console_path), || format!("create {}", console_path.display()))?;

    let started = Instant::now();
    let child = io_ctx(
        Command::new(&req.qemu)
            .args(qemu_args(req, &initrd, &data_path))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn(),
        || format!("start {}", req.qemu),
    )?;
    let mut qemu = Qemu(Some(child));
    let stdout = qemu.0.as_mut().and_then(|c| c.stdout.take()).expect("piped");
    let stderr = qemu.0.as_mut().and_then(|c| c.stderr.take()).expect("piped");
    let console_copier = copy_console(stdout, console, req.echo_console);
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = { stderr }.read_to_string(&mut s);
        s
    });

    let mut data = io_ctx(File::open(&data_path), || format!("open {}", data_path.display()))?;
    let mut split = LineSplitter::default();
    let mut transcript = Transcript::default();
    let mut boot_ms = None;
    let mut timed_out = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut follow = |transcript: &mut Transcript, split: &mut LineSplitter, boot_ms: &mut Option<u64>| {
        while let Ok(n) = data.read(&mut buf) {
            if n == 0 {
                break;
            }
            for line in split.push(&buf[..n]) {
                if let Some(Record::Hello { .. }) = transcript.feed_line(&line) {
                    boot_ms.get_or_insert(started.elapsed().as_millis() as u64);
                }
            }
        }
    };
    let status = loop {
        follow(&mut transcript, &mut split, &mut boot_ms);
        let child = qemu.0.as_mut().expect("not yet reaped");
        if let Some(status) = io_ctx(child.try_wait(), || "wait for qemu".into())? {
            break Some(status);
        }
        if started.elapsed() >= req.timeout {
            timed_out = true;
            let _ = child.kill();
            break io_ctx(child.wait(), || "reap qemu".into()).ok();
        }
        std::thread::sleep(POLL);
    };
    qemu.0 = None; // reaped
    let total_ms = started.elapsed().as_millis() as u64;
    follow(&mut transcript, &mut split, &mut boot_ms);
    if let Some(rest) = split.rest() {
        transcript.feed_line(&rest);
    }
    transcript.finish();
    let _ = console_copier.join();
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    if !qemu_stderr.trim().is_empty() {
        transcript.problems.push(format!("qemu: {}", qemu_stderr.trim()));
    }
    if timed_out {
        transcript.problems.push(format!("the VM did not power off within {:?}; killed", req.timeout));
    } else if !transcript.done {
        transcript.problems.push("the VM powered off before its init reported done (see console.log)".into());
    }

    for (name, bytes) in &transcript.files {
        let p = out.join("files").join(name);
        io_ctx(fs::write(&p, bytes), || format!("write {}", p.display()))?;
    }
    let guest = transcript.files.get("guest.json").and_then(|b| serde_json::from_slice(b).ok());
    let steps = transcript
        .steps
        .iter()
        .map(|s| StepResult {
            name: s.name.clone(),
            status: s.status,
            elapsed_ms: s.elapsed_ms,
            libtest: transcript
                .files
                .get(&format!("{}.log", s.name))
                .and_then(|b| libtest::counts(&String::from_utf8_lossy(b))),
        })
        .collect();
    let result = VmResult {
        schema: RESULT_SCHEMA,
        kernel: req.kernel.display().to_string(),
        release: transcript.release.clone(),
        complete: transcript.done,
        timed_out,
        qemu_exit: status.and_then(|s| s.code()),
        boot_ms,
        total_ms,
        steps,
        files: transcript.files.keys().cloned().collect(),
        init_errors: transcript.init_errors.clone(),
        problems: transcript.problems.clone(),
        guest,
        earlier_boots: Vec::new(),
    };
    let json = serde_json::to_vec_pretty(&result).expect("serialisable");
    io_ctx(fs::write(out.join("result.json"), json), || "write result.json".into())?;
    Ok(result)
}

/// Boots that may be booted again, after a death that judges nothing: one retry.
///
/// Under TCG the guest kernel sometimes dies while it boots, before userspace: "Oops: int3" in
/// `get_random_u32` or `sched_clock_cpu`, 2 of about 20 boots of 6.12 with 2 vCPUs in session 23
/// and 24 (the int3 of the kernel's own code patching, met where qemu's translated code still holds
/// it). Nothing of the plan has run then, so booting again judges the same thing. The same death
/// came after the hello in session 31, in the limits step: "Oops: int3" in `dequeue_entities` (the
/// scheduler's, in the RCU kthread) right after a memory limit's OOM kill, in a jump that a static
/// key patches (the CFS bandwidth key, which a cpu.max turns on and off, is read there). On real
/// CPUs an int3 the kernel plants is always handled; under TCG a vCPU still running a translation
/// from before the patch meets it after the kernel removed its handler. Every boot here is TCG's
/// (`-accel tcg`), so such a run is booted again too, its console kept. Any other death after the
/// hello (a panic, a BUG, a hang, a failed step) is the kernel's and is never booted again.
pub const BOOT_ATTEMPTS: u32 = 2;

/// The console line of a kernel that met an int3 it did not expect (see [`BOOT_ATTEMPTS`]).
pub const EMULATED_INT3: &str = "Oops: int3";

/// [`boot`], booted again (up to [`BOOT_ATTEMPTS`] in all) while the kernel dies before the init's
/// hello or of an int3 under TCG. Each such boot's files move to `<out>/boot-<n>/` and are listed
/// in the final result's `earlier_boots`, so a kernel that fails to boot is seen, and still fails
/// when every attempt did.
pub fn boot_retrying(req: &BootRequest) -> Result<VmResult, VmError> {
    let mut earlier = Vec::new();
    for attempt in 1.. {
        let mut result = boot(req)?;
        let console = fs::read_to_string(req.out_dir.join("console.log")).unwrap_or_default();
        let again = result.died_before_hello() || result.died_of_emulated_int3(&console);
        if attempt >= BOOT_ATTEMPTS || !again {
            result.earlier_boots = earlier;
            let json = serde_json::to_vec_pretty(&result).expect("serialisable");
            io_ctx(fs::write(req.out_dir.join("result.json"), json), || "write result.json".into())?;
            return Ok(result);
        }
        let kept = req.out_dir.join(format!("boot-{attempt}"));
        io_ctx(fs::create_dir_all(&kept), || format!("create {}", kept.display()))?;
        for name in ["console.log", "data.txt", "result.json"] {
            let from = req.out_dir.join(name);
            if from.exists() {
                io_ctx(fs::rename(&from, kept.join(name)), || format!("keep {}", from.display()))?;
            }
        }
        earlier.push(EarlierBoot {
            dir: kept.display().to_string(),
            console: how_it_died(&console),
            timed_out: result.timed_out,
            total_ms: result.total_ms,
            after_hello: result.boot_ms.is_some(),
        });
    }
    unreachable!("the loop returns at the last attempt")
}

/// The console lines that say how a kernel died, or the last lines when none does.
fn how_it_died(console: &str) -> Vec<String> {
    const LAST: usize = 5;
    let telling: Vec<String> = console
        .lines()
        .filter(|l| ["Oops", "panic", "BUG", "RIP:"].iter().any(|w| l.contains(w)))
        .take(8)
        .map(|l| l.trim_end().to_owned())
        .collect();
    if !telling.is_empty() {
        return telling;
    }
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(LAST)..].iter().map(|l| l.trim_end().to_string()).collect()
}

/// Copies qemu's stdout (the VM console) into `console.log`, and to stderr when asked.
fn copy_console(mut from: impl Read + Send + 'static, mut to: File, echo: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = to.write_all(&buf[..n]);
            if echo {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
        }
    })
}

/// One Markdown table row per result, with a header: what a CI log or a note shows.
pub fn summary_table(results: &[VmResult]) -> String {
    let mut out = String::from(
        "| kernel | result | boot | step | step time | passed | failed | ignored | cgroup2 controllers | total |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    for r in results {
        let kernel = r.release.clone().unwrap_or_else(|| r.kernel.clone());
        let verdict = if r.passed() { "pass" } else { "FAIL" };
        let boot = r.boot_ms.map(secs).unwrap_or_else(|| "-".into());
        let int3 = r.earlier_boots.iter().filter(|b| b.after_hello).count();
        let boot = match (r.earlier_boots.len(), int3) {
            (0, _) => boot,
            (n, 0) => format!("{boot} (after {n} that died before the hello)"),
            (n, k) if k == n => format!("{boot} (after {n} that died of an int3 under TCG after the hello)"),
            (n, k) => format!("{boot} (after {n} that died: {} before the hello, {k} of an int3 after it)", n - k),
        };
        let controllers = r.guest.as_ref().map(|g| g.controllers_enabled.join(" ")).unwrap_or_else(|| "-".into());
        let total = secs(r.total_ms);
        if r.steps.is_empty() {
            out.push_str(&format!("| {kernel} | {verdict} | {boot} | - | - | - | - | - | {controllers} | {total} |\n"));
        }
        for s in &r.steps {
            let (p, f, i) = match &s.libtest {
                Some(c) if c.skipped_by.is_empty() => {
                    (c.passed.to_string(), c.failed.to_string(), c.ignored.to_string())
                }
                Some(c) => {
                    let by: Vec<String> = c.skipped_by.iter().map(|(r, n)| format!("{r}: {n}")).collect();
                    (c.passed.to_string(), c.failed.to_string(), format!("{} ({})", c.ignored, by.join(", ")))
                }
                None => ("-".into(), "-".into(), "-".into()),
            };
            out.push_str(&format!(
                "| {kernel} | {verdict} | {boot} | {} ({}) | {} | {p} | {f} | {i} | {controllers} | {total} |\n",
                s.name,
                s.status,
                secs(s.elapsed_ms)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{PLAN_SCHEMA, Step};

    fn request(dir: &Path) -> BootRequest {
        BootRequest {
            kernel: dir.join("vmlinuz"),
            init: dir.join("init"),
            plan: Plan {
                schema: PLAN_SCHEMA,
                modules: vec![],
                sysctls: BTreeMap::new(),
                kernel_args: vec!["psi=1".into()],
                programs: vec![],
                zram_swap_mib: None,
                steps: vec![Step {
                    name: "hello".into(),
                    argv: vec!["/bin/hello".into()],
                    env: BTreeMap::new(),
                    timeout_secs: 10,
                    collect: vec![],
                    echo: true,
                }],
            },
            files: vec![(dir.join("hello"), "/bin/hello".into())],
            out_dir: dir.join("out"),
            cpus: 2,
            memory_mib: 1024,
            timeout: Duration::from_secs(60),
            append: "quiet".into(),
            echo_console: false,
            qemu: "qemu-system-x86_64".into(),
        }
    }

    /// A fresh directory with the files [`request`] names: the init and an executable `hello`.
    /// Not an isoprobe-named one: a concurrent run's leftover sweep and host snapshot must not
    /// see it.
    fn fixture(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vm-test-{tag}-{}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("init"), b"INIT").unwrap();
        fs::write(dir.join("hello"), b"HELLO").unwrap();
        fs::set_permissions(dir.join("hello"), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// A boot that dies before the hello is booted once more, the first boot's console kept and
    /// its Oops line reported; when every boot died, the result still fails. The stand-in for
    /// qemu prints a kernel's death to the console and exits, as qemu does with -no-reboot and
    /// panic=-1 (the real boots run in CI's VM step).
    #[test]
    fn a_kernel_that_dies_before_the_hello_is_booted_once_more_and_still_fails() {
        let dir = fixture("retry");
        let qemu = dir.join("qemu");
        fs::write(&qemu, "#!/bin/sh\necho 'Booting'\necho 'Oops: int3: 0000 [#1] SMP NOPTI'\nexit 0\n").unwrap();
        fs::set_permissions(&qemu, fs::Permissions::from_mode(0o755)).unwrap();
        let req = BootRequest { qemu: qemu.display().to_string(), ..request(&dir) };
        let result = boot_retrying(&req);
        let kept = fs::read_to_string(req.out_dir.join("boot-1/console.log"));
        let written = fs::read_to_string(req.out_dir.join("result.json"));
        fs::remove_dir_all(&dir).unwrap();
        let result = result.unwrap();
        assert!(result.died_before_hello() && !result.passed(), "{result:?}");
        assert_eq!(result.earlier_boots.len() as u32, BOOT_ATTEMPTS - 1, "{result:?}");
        assert_eq!(result.earlier_boots[0].console, ["Oops: int3: 0000 [#1] SMP NOPTI"]);
        assert!(kept.unwrap().contains("Oops: int3"));
        let written: VmResult = serde_json::from_str(&written.unwrap()).unwrap();
        assert_eq!(written, result);
        assert!(summary_table(&[result]).contains("(after 1 that died before the hello)"));
    }

    /// A stand-in for qemu whose kernel says hello on the data channel (the `-serial file:` it is
    /// given), prints `death` on the console and exits, as a kernel that dies after its hello.
    fn dies_after_hello(dir: &Path, death: &str) -> String {
        let qemu = dir.join("qemu");
        let hello = Record::Hello { release: "6.12.118".into() };
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in file:*) echo '{hello}' > \"${{a#file:}}\";; esac; done\n\
             echo 'Booting'\necho '{death}'\nexit 0\n"
        );
        fs::write(&qemu, script).unwrap();
        fs::set_permissions(&qemu, fs::Permissions::from_mode(0o755)).unwrap();
        qemu.display().to_string()
    }

    /// [`boot_retrying`] with a kernel that says hello and dies with `death` on its console: the
    /// result, and the first boot's console if it was kept aside.
    fn boot_dying_after_hello(tag: &str, death: &str) -> (VmResult, Option<String>) {
        let dir = fixture(tag);
        let req = BootRequest { qemu: dies_after_hello(&dir, death), ..request(&dir) };
        let result = boot_retrying(&req);
        let kept = fs::read_to_string(req.out_dir.join("boot-1/console.log")).ok();
        fs::remove_dir_all(&dir).unwrap();
        (result.unwrap(), kept)
    }

    /// The int3 of the kernel's own code patching under TCG, after the hello (as in session 31's
    /// CI, in the limits step), is booted again like a death before the hello, and the table
    /// says which death it was.
    #[test]
    fn a_kernel_that_dies_of_an_int3_after_the_hello_is_booted_once_more_and_still_fails() {
        let (result, kept) = boot_dying_after_hello("int3", "[ 7.772494] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI");
        assert_eq!(result.release.as_deref(), Some("6.12.118"), "{result:?}");
        assert!(result.boot_ms.is_some() && !result.died_before_hello() && !result.passed(), "{result:?}");
        assert_eq!(result.earlier_boots.len() as u32, BOOT_ATTEMPTS - 1, "{result:?}");
        assert!(result.earlier_boots[0].after_hello);
        assert!(kept.is_some_and(|c| c.contains(EMULATED_INT3)));
        assert!(summary_table(&[result]).contains("(after 1 that died of an int3 under TCG after the hello)"));
    }

    #[test]
    fn a_kernel_that_dies_otherwise_after_the_hello_is_not_booted_again() {
        let (result, kept) = boot_dying_after_hello("panic", "[ 9.1] Kernel panic - not syncing: Fatal exception");
        assert!(result.boot_ms.is_some() && !result.passed() && result.earlier_boots.is_empty(), "{result:?}");
        assert!(kept.is_none(), "nothing moved aside");
    }

    #[test]
    fn a_kernel_that_said_hello_is_never_booted_again() {
        let r = VmResult {
            schema: RESULT_SCHEMA,
            kernel: "vmlinuz".into(),
            release: Some("6.12.0".into()),
            complete: false,
            timed_out: true,
            qemu_exit: None,
            boot_ms: Some(7000),
            total_ms: 900_000,
            steps: vec![],
            files: vec![],
            init_errors: vec![],
            problems: vec![],
            guest: None,
            earlier_boots: vec![],
        };
        assert!(!r.died_before_hello());
        let hung = VmResult { boot_ms: None, release: None, ..r };
        assert!(!hung.died_before_hello(), "a boot that hung until the timeout is not booted again");
        assert!(VmResult { timed_out: false, total_ms: 1900, ..hung }.died_before_hello());
    }

    #[test]
    fn the_initramfs_holds_init_console_plan_and_files() {
        let dir = fixture("initramfs");
        let req = request(&dir);
        let image = initramfs(&req);
        fs::remove_dir_all(&dir).unwrap();
        let text = String::from_utf8_lossy(&image.unwrap()).into_owned();
        for name in ["init\0", "INIT", "dev/console\0", "isoprobe/plan.json\0", "bin/hello\0", "\"/bin/hello\""] {
            assert!(text.contains(name), "{name:?} missing");
        }
        let args = qemu_args(&req, Path::new("/x/initrd"), Path::new("/x/data.txt")).join(" ");
        assert!(args.contains("-accel tcg"), "{args}");
        assert!(args.contains("isoprobe.data=/dev/ttyS1 psi=1 quiet"), "{args}");
        assert!(args.contains("-serial file:/x/data.txt"), "{args}");
    }

    #[test]
    fn an_invalid_plan_builds_no_initramfs() {
        let mut req = request(Path::new("/nonexistent"));
        req.plan.steps[0].argv = vec!["relative".into()];
        assert!(matches!(initramfs(&req), Err(VmError::Plan(_))));
    }
}
