//! Running one step of the plan from pid 1: the program in its own process group with stdout and
//! stderr captured together (and copied to the console if the step asks), every orphan the VM
//! hands to pid 1 reaped meanwhile, and the whole process group killed at the timeout and after the
//! step ends.
//!
//! It must never wait without a deadline: a hung step costs its timeout, not the run.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::frame::StepStatus;
use crate::plan::Step;

/// How often pid 1 looks for exited processes while a step runs.
const POLL: Duration = Duration::from_millis(10);
/// How long the output may keep flowing after the step's process group is gone (a process in
/// another group may still hold the pipe).
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct StepOutcome {
    pub status: StepStatus,
    pub elapsed: Duration,
    /// stdout and stderr, interleaved as written.
    pub output: Vec<u8>,
    /// What went wrong around the step (not starting, output cut off).
    pub notes: Vec<String>,
}

/// Runs `step`; `console` receives a copy of the output when the step echoes.
pub fn run_step(step: &Step, console: impl Write + Send + 'static) -> StepOutcome {
    let started = Instant::now();
    let not_started = |note: String| StepOutcome {
        status: StepStatus::NotStarted,
        elapsed: started.elapsed(),
        output: Vec::new(),
        notes: vec![note],
    };
    let (read_end, write_end) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return not_started(format!("failed to create the output pipe: {e}")),
    };
    let stderr_end = match write_end.try_clone() {
        Ok(fd) => fd,
        Err(e) => return not_started(format!("failed to duplicate the output pipe: {e}")),
    };
    let mut cmd = Command::new(&step.argv[0]);
    cmd.args(&step.argv[1..])
        .env_clear()
        .env("PATH", "/bin")
        .env("HOME", "/root")
        .envs(&step.env)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end))
        .process_group(0);
    let spawned = cmd.spawn();
    // The command holds the pipe's write ends: drop it so that the output ends with the step.
    drop(cmd);
    let child = match spawned {
        Ok(c) => c,
        Err(e) => return not_started(format!("failed to start {}: {e}", step.argv[0])),
    };
    let pid = Pid::from_raw(child.id() as i32);
    let output = Arc::new(Mutex::new(Vec::new()));
    let finished = copy_output(read_end, Arc::clone(&output), step.echo.then_some(console));

    let deadline = started + Duration::from_secs(step.timeout_secs);
    let mut timed_out = false;
    let mut notes = Vec::new();
    let status = loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => break StepStatus::Exited { code },
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => break StepStatus::Signaled { signal: sig as i32 },
            Ok(WaitStatus::StillAlive) => {
                if !timed_out && Instant::now() >= deadline {
                    timed_out = true;
                    let _ = killpg(pid, Signal::SIGKILL);
                }
                std::thread::sleep(POLL);
            }
            Ok(_) => {} // an orphan reaped, or a stop we do not care about
            Err(Errno::EINTR) => {}
            Err(e) => {
                notes.push(format!("failed to wait for the step: {e}"));
                break StepStatus::NotStarted;
            }
        }
    };
    let elapsed = started.elapsed();
    // Whatever the step left running in its process group goes with it.
    match killpg(pid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => notes.push(format!("failed to kill the step's process group: {e}")),
    }
    if finished.recv_timeout(OUTPUT_GRACE).is_err() {
        notes.push(format!("the output pipe was still open {OUTPUT_GRACE:?} after the step ended; output cut there"));
    }
    let output = std::mem::take(&mut *output.lock().unwrap_or_else(|p| p.into_inner()));
    StepOutcome { status: if timed_out { StepStatus::TimedOut } else { status }, elapsed, output, notes }
}

/// Reads the step's output until every writer is gone, keeping it (and copying it to `console`);
/// the returned channel gets a message at the end.
fn copy_output(
    read_end: OwnedFd,
    output: Arc<Mutex<Vec<u8>>>,
    mut console: Option<impl Write + Send + 'static>,
) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pipe = File::from(read_end);
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    output.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&buf[..n]);
                    if let Some(c) = &mut console {
                        // The console is best effort: the captured output is what counts.
                        let _ = c.write_all(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    rx
}
