//! A probe that misbehaves: every way a probe can break the protocol gives the case a clear error
//! (naming the line or the timeout), never a panic or a hang, and leaves nothing behind.
//!
//! The misbehaving probes are small shell scripts run on the host filesystem, so these cases use
//! the host rootfs mode and no namespaces: the point is the harness's side of the wire.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use isoprobe_harness::snapshot::HostSnapshot;
use isoprobe_harness::{CaseSpec, Harness, HarnessOptions, NsSet};
use libtest_mimic::{Arguments, Failed, Trial};

/// (name, script body after reading the hello, what the error must mention)
const CASES: &[(&str, &str, &str)] = &[
    ("garbage-line", "echo 'this is not json'", "line 1"),
    ("truncated-json", r#"printf '{"msg":"fact","fact":{"fact":"pids","pid":'"\n""#, "line 1"),
    ("unknown-message", r#"echo '{"msg":"verdict","pass":true}'"#, "unknown variant"),
    ("exits-early", "exit 3", "exit 3"),
    ("killed-by-signal", "kill -9 $$", "SIGKILL"),
    ("wrong-fact-count", r#"echo '{"msg":"done","facts":5}'"#, "says it sent 5 facts"),
    (
        "duplicate-fact",
        r#"echo '{"msg":"fact","fact":{"fact":"pids","pid":1,"ppid":0}}'; echo '{"msg":"fact","fact":{"fact":"pids","pid":1,"ppid":0}}'"#,
        "twice",
    ),
    ("not-utf8", r#"printf '\377\376\n'"#, "not UTF-8"),
    ("hangs", "sleep 600", "timed out"),
    // A child that outlives the probe: the per-case cgroup drains it (cgroup.kill).
    ("hangs-with-a-child", "sleep 600 & wait", "timed out"),
    ("fatal-init", r#"echo '{"msg":"fatal","stage":"init","error":"mount: EPERM"}'"#, "init failed: mount: EPERM"),
];

fn main() -> ExitCode {
    isoprobe_probes::multicall();
    let args = Arguments::from_args();
    if !args.list {
        isoprobe_harness::leftovers::recover_at_start("isoprobe suite");
    }
    let before = HostSnapshot::take();
    // Named like a run directory (`isoprobe-<pid>-<token>`), so that a killed suite's scripts go
    // with the next run's recovery.
    let dir = std::env::temp_dir().join(format!(
        "{}-{}-{}",
        isoprobe_harness::names::PREFIX,
        std::process::id(),
        isoprobe_harness::names::token()
    ));
    fs::create_dir_all(&dir).expect("create the scripts dir");
    let trials: Vec<Trial> = CASES
        .iter()
        .map(|&(name, body, want)| {
            let script = dir.join(name);
            Trial::test(format!("bad-probe/{name}"), move || bad_probe(script, body, want))
        })
        .collect();
    let mut trials: Vec<Trial> = trials;
    trials.push(Trial::test("panic-mid-case/leaves-nothing", panic_mid_case));
    let conclusion = libtest_mimic::run(&args, trials);
    let _ = fs::remove_dir_all(&dir);
    let diff = before.diff(&HostSnapshot::take());
    if !args.list && !diff.is_empty() {
        eprintln!("the host changed: {diff:#?}");
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}

fn bad_probe(script: PathBuf, body: &str, want: &str) -> Result<(), Failed> {
    // Read the hello line first, as a real probe does, then misbehave.
    // In hold mode (the harness's pid sentinel) the script only waits for the end of stdin.
    let text = format!("#!/bin/sh\nif [ \"$1\" = hold ]; then exec cat >/dev/null; fi\nread -r hello\n{body}\n");
    isoprobe_harness::exe::write_executable(&script, text.as_bytes()).map_err(|e| e.to_string())?;
    let h = Harness::new(HarnessOptions { case_timeout: Duration::from_secs(2), probe: Some(script) })
        .map_err(|e| e.to_string())?;
    let outcome = h.run_case(&CaseSpec::new(NsSet::EMPTY));
    let err = outcome.error.ok_or_else(|| format!("the case did not fail: {:?}", outcome.runs))?;
    if !err.contains(want) {
        return Err(format!("the error does not mention {want:?}: {err}").into());
    }
    Ok(())
}

/// A panic in the harness while a container is running: unwinding kills and reaps the probe and
/// removes the case directory (the rootfs) and the case's cgroup.
fn panic_mid_case() -> Result<(), Failed> {
    use isoprobe_harness::case_env::CaseEnv;
    use isoprobe_harness::launcher::native;
    use isoprobe_harness::matrix::spec_for;
    use isoprobe_harness::{LauncherKind, RootfsMode};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Mutex;

    let h = Harness::new(HarnessOptions::default()).map_err(|e| e.to_string())?;
    let spec = spec_for(NsSet::ALL, RootfsMode::PivotRoot, LauncherKind::Clone3).resolve(h.runner());
    let seen = Mutex::new(None);
    // Keep the injected panic out of the test output (the default hook prints it like a real one).
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let root = h.run_env().layout.writable_v2_root();
        let case = CaseEnv::create(h.run_env(), &spec, 9999, root.as_deref()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let p = native::start_container(&spec, &case, h.run_env(), deadline).unwrap();
        let cgroup = case.cgroup.as_ref().map(|c| c.path().to_owned());
        *seen.lock().unwrap() = Some((p.pid.as_raw(), case.dir.clone(), cgroup));
        panic!("injected panic while the container runs");
    }));
    std::panic::set_hook(quiet);
    if r.is_ok() {
        return Err("the injected panic did not happen".into());
    }
    let (pid, dir, cgroup) = seen.into_inner().unwrap().ok_or("the container never started")?;
    // Reaped: the pid no longer names our child (waitpid on it fails with ECHILD).
    match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        Err(nix::errno::Errno::ECHILD) => {}
        other => return Err(format!("probe {pid} was not reaped: {other:?}").into()),
    }
    if dir.exists() {
        return Err(format!("{} was left behind", dir.display()).into());
    }
    if let Some(cg) = cgroup.filter(|c| c.exists()) {
        return Err(format!("cgroup {} was left behind", cg.display()).into());
    }
    Ok(())
}
