//! The init's step runner, run for real outside a VM: exit statuses, captured output, the timeout,
//! a step that cannot start, and a step that leaves a process behind holding its output open.
//!
//! One test in its own binary: the runner reaps any child (waitpid(-1), as pid 1 must), which would
//! steal the children of tests running beside it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isoprobe_ci::frame::StepStatus;
use isoprobe_ci::guest::steps::run_step;
use isoprobe_ci::plan::Step;

fn step(argv: &[&str], timeout_secs: u64) -> Step {
    Step {
        name: "t".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::from([("ISOPROBE_X".into(), "from-the-plan".into())]),
        timeout_secs,
        collect: vec![],
        echo: false,
    }
}

#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn steps_end_as_they_should_and_their_output_is_kept() {
    // Exit status, stdout and stderr together, the plan's environment on a clean one, the echo.
    let console = Console::default();
    let mut s = step(&["/bin/sh", "-c", "echo out $ISOPROBE_X ${HOME}; echo err >&2; exit 3"], 10);
    s.echo = true;
    let o = run_step(&s, console.clone());
    assert_eq!(o.status, StepStatus::Exited { code: 3 });
    assert_eq!(String::from_utf8_lossy(&o.output), "out from-the-plan /root\nerr\n");
    assert_eq!(*console.0.lock().unwrap(), o.output);
    assert!(o.notes.is_empty(), "{:?}", o.notes);

    // A signal.
    let o = run_step(&step(&["/bin/sh", "-c", "kill -TERM $$"], 10), std::io::sink());
    assert_eq!(o.status, StepStatus::Signaled { signal: libc_sigterm() });

    // The timeout kills the step's whole process group.
    let o = run_step(&step(&["/bin/sh", "-c", "sleep 30 & sleep 30"], 1), std::io::sink());
    assert_eq!(o.status, StepStatus::TimedOut);
    assert!(o.elapsed < Duration::from_secs(10), "{:?}", o.elapsed);

    // A step that leaves a process in its group holding the output pipe: it ends with the step.
    let o = run_step(&step(&["/bin/sh", "-c", "sleep 30 & echo started"], 20), std::io::sink());
    assert_eq!(o.status, StepStatus::Exited { code: 0 });
    assert_eq!(String::from_utf8_lossy(&o.output), "started\n");
    assert!(o.elapsed < Duration::from_secs(10), "{:?}", o.elapsed);
    assert!(o.notes.is_empty(), "{:?}", o.notes);

    // A program that is not there.
    let o = run_step(&step(&["/nonexistent/isoprobe-step"], 10), std::io::sink());
    assert_eq!(o.status, StepStatus::NotStarted);
    assert!(o.notes[0].contains("/nonexistent/isoprobe-step"), "{:?}", o.notes);
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}
