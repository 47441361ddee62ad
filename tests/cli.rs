//! The `isoprobe` binary end to end: a small real matrix run rendered into every format and
//! compared with itself, and `cleanup` after a run killed mid-way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use isoprobe_harness::names::is_isoprobe_key;
use isoprobe_reports::render::ktap;

fn isoprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isoprobe"))
}

/// The tests run at once, and a run's mount cases change the host's mount table while another
/// run's external tool may be copying it: bwrap's start then fails ("Unable to apply mount flags:
/// remount .../case-22/prop: No such file or directory"). One isoprobe process keeps its own cases
/// apart (`isoprobe_harness::mounts::copying_host_mounts`); the run with external tools here
/// takes this for writing, every other test that runs cases for reading.
static RUNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn running_cases() -> std::sync::RwLockReadGuard<'static, ()> {
    RUNS.read().unwrap_or_else(|e| e.into_inner())
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("start isoprobe")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch directory for this test's files (not an isoprobe-named one: cleanup must not see it),
/// removed when dropped, also when the test fails.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("cli-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

#[test]
fn a_small_real_run_renders_in_every_format_and_compares_with_itself() {
    let _running = running_cases();
    let dir = scratch("run");
    let report = dir.join("report.json");
    let out = output(
        isoprobe()
            .args(["run", "--suite", "namespaces", "--ns", "pid,uts", "--launcher", "clone3,setns-pidfd", "-j", "2"])
            .arg("-o")
            .arg(&report),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("suite") && stdout.contains("total"), "no summary table: {stdout}");
    // 10 namespace cases, and the 4 mount cases without a namespace (their sharing control).
    assert!(stdout.contains("14 cases:"), "{stdout}");

    for format in ["json", "junit", "ktap", "markdown", "html"] {
        let out = output(isoprobe().args(["report", "-f", format]).arg(&report));
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out.stderr));
        let body = text(&out.stdout);
        assert!(!body.trim().is_empty(), "{format} is empty");
        if format == "ktap" {
            let doc = ktap::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
            assert!(doc.tests.iter().all(|t| t.ok), "a case failed in a passing run");
            assert_eq!(doc.tests[0].subtests.as_ref().map(|s| s.tests.len()), Some(14));
        }
    }
    let same = output(isoprobe().arg("compare").arg(&report).arg(&report));
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));

    let broken = dir.join("broken.json");
    let full = std::fs::read_to_string(&report).unwrap();
    std::fs::write(&broken, &full[..full.len() / 3]).unwrap();
    let out = output(isoprobe().arg("compare").arg(&report).arg(&broken));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&broken.display().to_string()) && err.contains("line "), "{err}");
    let out = output(isoprobe().args(["report", "-f", "html"]).arg(&broken));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn list_names_the_cases_and_help_documents_exit_codes() {
    let out = output(isoprobe().args(["list", "--launcher", "setns-pidfd"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("setns-pidfd/host/pid") && stdout.contains("11 cases:"), "{stdout}");
    let out = output(isoprobe().args(["list", "--launcher", "lxc,clone3", "--ns", "pid,mnt"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("launcher lxc: ") && stdout.contains("launcher clone3: native"), "{stdout}");
    assert!(stdout.contains("launchers (") && stdout.contains("lxc/pivot/pid+mnt"), "{stdout}");
    let bad = output(isoprobe().args(["list", "--launcher", "nosuch"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("expected all, or one of"), "{}", text(&bad.stderr));
    let help = text(&output(isoprobe().arg("--help")).stdout);
    for needle in ["Exit status:", "compare  0 no regression; 1 a regression", "cleanup"] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
    let bad = output(isoprobe().args(["run", "--ns", "nosuch"]));
    assert_eq!(bad.status.code(), Some(2));
}

/// A user whose umask is 077 (private files) runs the matrix as well as anyone: the directories
/// and markers a probe under another id reads (a user namespace's root maps elsewhere) are made
/// with their modes whatever the umask. Before, 17 of these 44 cases failed with "Permission
/// denied" on the sentinel's marker and the mount cases' directories.
#[test]
fn a_private_umask_changes_no_verdict() {
    let _running = running_cases();
    let dir = scratch("umask");
    let report = dir.join("report.json");
    let out = output(
        Command::new("sh")
            .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_isoprobe"))
            .args(["run", "--suite", "namespaces", "--launcher", "clone3", "--ns", "user,mnt", "-j", "2", "-o"])
            .arg(&report),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

/// `--launcher` with real tools: the report carries a header per launcher, an assessment per case,
/// and bubblewrap's loopback set-up in a new network namespace as an explained difference (never a
/// pass, never a failure); a missing tool turns its cases into skips naming the package. As root
/// with the tools installed (as in CI) the run must pass.
#[test]
fn a_launcher_run_records_headers_assessments_and_explained_differences() {
    let _alone = RUNS.write().unwrap_or_else(|e| e.into_inner());
    use isoprobe_reports::CaseStatus;
    use isoprobe_reports::load::{Document, load};
    use isoprobe_reports::record::LatencyResult;
    use isoprobe_reports::render::{Format, render};

    let dir = scratch("launchers");
    let report = dir.join("report.json");
    let out = output(
        isoprobe()
            .args(["run", "--launcher", "bwrap,util-unshare", "--ns", "uts,net", "-j", "2"])
            .arg("-o")
            .arg(&report),
    );
    let stdout = text(&out.stdout);
    let Ok(Document::Run(r)) = load(&report) else { panic!("no run report: {stdout}\n{}", text(&out.stderr)) };
    assert_eq!(out.status.code(), Some(if r.passed() { 0 } else { 1 }), "{stdout}");
    let names: Vec<&str> = r.launchers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["util-unshare", "bwrap"]);
    assert!(stdout.contains("explained") && stdout.contains("start latency"), "{stdout}");

    let suite = r.suites.iter().find(|s| s.name == "launchers").expect("a launchers suite");
    assert!(suite.cases.iter().all(|c| suite.assessments.contains_key(&c.name)), "every case is assessed");
    let root = nix::unistd::geteuid().is_root();
    for h in &r.launchers {
        let cases: Vec<_> = suite.cases.iter().filter(|c| c.spec.launcher.name() == h.name).collect();
        assert!(!cases.is_empty(), "{} ran no case", h.name);
        match (&h.tool, &h.unavailable) {
            (None, Some(u)) => {
                let package = if h.name == "bwrap" { "bubblewrap" } else { "util-linux" };
                assert!(u.reason.contains(&format!("not installed (Debian package {package})")), "{}", u.reason);
                assert!(cases.iter().all(|c| c.skipped.as_ref().is_some_and(|s| s.reason == u.reason)));
                eprintln!("{}: skipped: {}", h.name, u.reason);
            }
            (Some(t), None) => assert!(!t.version.is_empty() && t.path.starts_with('/'), "{t:?}"),
            other => panic!("{}: a tool or why it is unavailable, not {other:?}", h.name),
        }
    }

    let bwrap = r.launchers.iter().find(|h| h.name == "bwrap").unwrap();
    assert!(!bwrap.capabilities.cgroup_limits);
    let net = suite.cases.iter().find(|c| c.name == "bwrap/host/net").expect("bwrap/host/net");
    if let Some(skip) = &net.skipped {
        // No bwrap, or (unprivileged) no user namespaces for it: the reason is in the report.
        assert!(bwrap.unavailable.is_some() || !root, "bwrap/host/net skipped as root: {}", skip.reason);
        eprintln!("bwrap/host/net skipped: {}", skip.reason);
    } else {
        let a = &suite.assessments["bwrap/host/net"];
        let e = a.explained.iter().find(|e| e.check.name() == "net/links").expect("net/links is explained");
        assert!(e.verdict.is_failure() && e.source.contains("bubblewrap"), "{e:?}");
        assert_eq!(r.status(suite, net), CaseStatus::Explained);
        assert!(r.counts().explained >= 1);
        assert!(!r.failures().iter().any(|f| f.case == "bwrap/host/net"), "an explained difference is not a failure");
        let doc = Document::Run(r.clone());
        let ktap = render(&doc, Format::Ktap).unwrap();
        assert!(ktap.contains("ok ") && ktap.contains("net/links # XFAIL explained difference: lo is up"), "{ktap}");
        let junit = render(&doc, Format::Junit).unwrap();
        assert!(junit.contains("<system-out>explained difference: lo is up"), "{junit}");
        let md = render(&doc, Format::Markdown).unwrap();
        assert!(md.contains("### Launchers side by side") && md.contains("⚠️ explained [^"), "{md}");
    }
    if root && r.launchers.iter().all(|h| h.unavailable.is_none()) {
        assert_eq!(out.status.code(), Some(0), "as root with both tools the run passes: {stdout}");
        let unshare_uts = suite.cases.iter().find(|c| c.name == "util-unshare/host/uts").unwrap();
        assert_eq!(r.status(suite, unshare_uts), CaseStatus::Pass);
    }
    let latency = r.start_latency.as_ref().expect("start latency is recorded");
    assert_eq!(
        latency.launchers.iter().map(|l| l.launcher.as_str()).collect::<Vec<_>>(),
        ["clone3", "util-unshare", "bwrap"]
    );
    for l in &latency.launchers {
        match &l.result {
            LatencyResult::Measured { median_ns, min_ns, max_ns, starts } => {
                assert!(min_ns <= median_ns && median_ns <= max_ns && *starts == latency.starts, "{l:?}");
            }
            LatencyResult::Skipped { reason } => {
                assert!(
                    !root || r.launchers.iter().any(|h| h.name == l.launcher && h.unavailable.is_some()),
                    "{reason}"
                );
            }
            LatencyResult::Error { cause } => panic!("{}: a start failed: {cause}", l.launcher),
        }
    }
}

/// Isoprobe-named host objects: SysV objects by id, message queues are not listable here.
fn isoprobe_sysv() -> BTreeSet<(String, i32)> {
    let mut out = BTreeSet::new();
    for kind in ["shm", "sem", "msg"] {
        let t = std::fs::read_to_string(format!("/proc/sysvipc/{kind}")).unwrap();
        for l in t.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let (Some(k), Some(id)) = (f.first().and_then(|k| k.parse().ok()), f.get(1).and_then(|i| i.parse().ok()))
                && is_isoprobe_key(k)
            {
                out.insert((kind.to_owned(), id));
            }
        }
    }
    out
}

/// Mounts at or below `dir` (a run's directory is a tmpfs of its own when the run is root).
fn mounts_under(dir: &Path) -> usize {
    mount_points().iter().filter(|m| m.starts_with(dir)).count()
}

/// Mounts strictly below `dir`: a case's, not the run directory's own tmpfs.
fn mounts_below(dir: &Path) -> usize {
    mount_points().iter().filter(|m| m.starts_with(dir) && m.as_path() != dir).count()
}

fn mount_points() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    mi.lines().filter_map(|l| l.split(' ').nth(4).map(PathBuf::from)).collect()
}

fn cgroups_of(token: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mi = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    for l in mi.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let fs_type = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1));
        if matches!(fs_type, Some(&"cgroup2") | Some(&"cgroup"))
            && let Ok(rd) = std::fs::read_dir(f[4])
        {
            out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains(token)));
        }
    }
    out
}

/// A tmpfs on a fresh directory in the temporary directory, mounted in the calling thread's private
/// mount namespace; unmounted and removed when dropped, also when the test fails.
struct PrivateTmp(PathBuf);

impl PrivateTmp {
    fn mount(name: &str) -> PrivateTmp {
        use nix::mount::{MsFlags, mount};
        let dir = std::env::temp_dir().join(format!("cli-test-{name}-tmp-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let guard = PrivateTmp(dir);
        mount(Some("tmpfs"), &guard.0, Some("tmpfs"), MsFlags::empty(), Some("mode=1777"))
            .expect("mount a private tmpfs");
        guard
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A run killed mid-case, in a private temporary directory (a tmpfs, TMPDIR) and private IPC and
/// uts namespaces of the calling test's thread (they go away with it), so that other isoprobe
/// runs on the host neither confuse the check nor get touched; cgroups are shared, and told apart
/// by the run's token.
struct KilledRun {
    tmp: PrivateTmp,
    run_dir: PathBuf,
    token: String,
}

impl KilledRun {
    /// `isoprobe` with this test's temporary directory.
    fn isoprobe(&self) -> Command {
        let mut c = isoprobe();
        c.env("TMPDIR", &self.tmp.0);
        c
    }

    /// Starts `isoprobe run` and SIGKILLs it once a case has a mount on the host; `None` (with
    /// the reason printed) when not root.
    fn new(name: &str) -> Option<KilledRun> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (a private tmpfs, IPC and uts namespace for the killed run)");
            return None;
        }
        use nix::mount::{MsFlags, mount};
        use nix::sched::{CloneFlags, unshare};
        // This test's thread only: the test harness runs each test on its own thread.
        // A uts namespace too: a case killed between setting the NIS domainname and the host's
        // restore leaves it changed, and that must not be the host's.
        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)
            .expect("unshare mount, IPC and uts namespaces");
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
        // The runs' temporary directory is a tmpfs of this test's own (TMPDIR), mounted on a
        // fresh directory rather than over /tmp: the checkout, and with it the isoprobe binary,
        // may live under /tmp, and a tmpfs there would hide it.
        let tmp = PrivateTmp::mount(name);
        assert!(isoprobe_sysv().is_empty(), "a fresh IPC namespace has no objects");
        let child = isoprobe()
            .env("TMPDIR", &tmp.0)
            .args(["run", "--no-report", "-j", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start isoprobe run");
        let pid = child.id();
        let run = RunGuard(Some(child));
        // Wait until the run has a case going with a mount on the host, then kill it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let run_dir = loop {
            assert!(Instant::now() < deadline, "the run never mounted anything");
            let found = std::fs::read_dir(&tmp.0)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("isoprobe-{pid}-")));
            if let Some(d) = found
                && mounts_below(&d) > 0
            {
                break d;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        run.wait();
        let token = run_dir.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_owned();
        Some(KilledRun { tmp, run_dir, token })
    }
}

#[test]
fn cleanup_removes_what_a_killed_run_left_behind() {
    let _running = running_cases();
    let Some(k) = KilledRun::new("cleanup") else { return };
    let isoprobe = || k.isoprobe();
    let (run_dir, token) = (k.run_dir.clone(), k.token.clone());
    // The killed run's probes die with it (PR_SET_PDEATHSIG); what the run held stays.
    assert!(run_dir.exists(), "a killed run leaves its directory behind");
    let left_sysv = isoprobe_sysv();
    eprintln!(
        "left behind: {} mounts, {} cgroups, {} SysV objects",
        mounts_under(&run_dir),
        cgroups_of(&token).len(),
        left_sysv.len()
    );
    assert!(!left_sysv.is_empty(), "a case was running: its host IPC objects must be left");
    // Whatever the kill interrupted, make it the moment between a case setting the NIS domainname
    // (in this test's uts namespace) and the run restoring it: the case's token is the
    // domainname, and the run's record holds the original.
    let domainname = "/proc/sys/kernel/domainname";
    // Not the moment inside a case's uts sysctl writes, which the kill may have caught as well:
    // their record holds kernel/domainname as it was then, and cleanup would rightly keep the
    // value this test sets, which is neither that nor one a probe writes.
    let _ = std::fs::remove_file(run_dir.join(isoprobe_harness::sysctl::SYSCTL_UTS_RECORD));
    std::fs::write(run_dir.join("domainname.orig"), "cleanup-test.example").unwrap();
    std::fs::write(domainname, format!("isoprobe-{token}")).unwrap();
    let domainname_now = || std::fs::read_to_string(domainname).unwrap().trim_end().to_owned();

    // Cleanup keeps IPC objects made in the second before it starts (a run may be starting).
    std::thread::sleep(Duration::from_secs(2));
    // --only-known-runs: the test removes no cgroup but its own run's (cgroups are shared with
    // the host, where other runs may have left theirs).
    let dry = output(isoprobe().args(["cleanup", "--dry-run", "--only-known-runs"]));
    assert_eq!(dry.status.code(), Some(0));
    assert!(run_dir.exists() && isoprobe_sysv() == left_sysv, "--dry-run removed something");
    assert_eq!(domainname_now(), format!("isoprobe-{token}"), "--dry-run changed the domainname");
    let out = output(isoprobe().args(["cleanup", "--only-known-runs"]));
    let report = text(&out.stdout);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(0), "{report}\n{}", text(&out.stderr));
    assert!(report.contains(&format!("removed {}", run_dir.display())), "{report}");
    assert!(report.contains("the NIS domainname"), "{report}");
    assert_eq!(domainname_now(), "cleanup-test.example", "cleanup puts back the recorded domainname");
    // Only cgroups of runs outside this test's /tmp may be kept (another run on the host).
    let kept: Vec<&str> = report.lines().filter(|l| l.starts_with("kept")).collect();
    assert!(kept.iter().all(|l| l.starts_with("kept cgroup ") && !l.contains(&token)), "{kept:?}");
    assert!(!run_dir.exists(), "the run directory is still there");
    assert_eq!(mounts_under(&run_dir), 0);
    assert!(cgroups_of(&token).is_empty(), "{:?}", cgroups_of(&token));
    assert!(isoprobe_sysv().is_empty(), "SysV objects left: {:?}", isoprobe_sysv());
    let again = output(isoprobe().args(["cleanup", "--only-known-runs"]));
    assert!(text(&again.stdout).contains("removed 0, kept"), "{}", text(&again.stdout));
    // Message queues are checked by cleanup itself (it lists them in a private mount of the
    // mqueue filesystem); the second cleanup found none.
}

/// A run of a few namespace cases (about a tenth of a second).
const SMALL_RUN: [&str; 8] = ["run", "--no-report", "--suite", "namespaces", "--ns", "uts", "--launcher", "clone3"];

/// Crash-only: the next `isoprobe run` removes what a killed one left (its directory, mounts,
/// cgroups, IPC objects), says so in one line, and leaves nothing of either behind.
#[test]
fn the_next_run_removes_what_a_killed_run_left() {
    let _running = running_cases();
    let Some(k) = KilledRun::new("next-run") else { return };
    let left_sysv = isoprobe_sysv();
    assert!(k.run_dir.exists() && !left_sysv.is_empty(), "a killed run leaves its directory and IPC objects");
    let out = output(k.isoprobe().args(SMALL_RUN));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}\n{err}", text(&out.stdout));
    let line = err.lines().find(|l| l.starts_with("isoprobe run: removed what 1 dead isoprobe run left: "));
    let line = line.unwrap_or_else(|| panic!("no recovery line: {err}"));
    assert!(line.contains("1 run directory") && line.contains("SysV IPC objects"), "{line}");
    assert!(!line.contains("could not be removed"), "{line}");
    assert!(!k.run_dir.exists(), "the killed run's directory is still there");
    assert_eq!(mounts_under(&k.run_dir), 0);
    assert!(cgroups_of(&k.token).is_empty(), "{:?}", cgroups_of(&k.token));
    assert!(isoprobe_sysv().is_empty(), "SysV objects left: {:?}", isoprobe_sysv());
    assert_eq!(std::fs::read_dir(&k.tmp.0).unwrap().count(), 0, "the runs left files in their temporary directory");
    // A second run finds nothing to say.
    let out = output(k.isoprobe().args(SMALL_RUN));
    assert!(!text(&out.stderr).contains("dead isoprobe run"), "{}", text(&out.stderr));
}

/// A run this test started, ended (SIGTERM, then waited for) if the test fails before it does:
/// a failed assertion must not leave a whole default run going on the machine.
struct RunGuard(Option<std::process::Child>);

impl RunGuard {
    fn wait(mut self) -> Output {
        self.0.take().expect("waited for once").wait_with_output().expect("wait for isoprobe run")
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// The number N of a `case-N` directory.
fn case_number(entry: &Path) -> Option<u64> {
    entry.file_name()?.to_str()?.strip_prefix("case-")?.parse().ok()
}

#[test]
fn an_interrupted_run_finishes_its_cases_and_leaves_nothing() {
    let _running = running_cases();
    let child = isoprobe()
        .args(["run", "--no-report", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start isoprobe run");
    let pid = child.id();
    let run = RunGuard(Some(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    // Interrupted in mid-run: once a case numbered 3 or later is in progress. Any such case, not
    // case-3 itself: a case's directory lives a few milliseconds, and a poll that a loaded machine
    // delays past them would otherwise wait for a case-3 that is gone (it waited out the whole
    // deadline once, under load).
    let run_dir = loop {
        assert!(Instant::now() < deadline, "the run never started a fourth case");
        let found = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("isoprobe-{pid}-")));
        if let Some(d) = found
            && let Ok(cases) = std::fs::read_dir(&d)
            && cases.flatten().any(|e| case_number(&e.path()).is_some_and(|n| n >= 3))
        {
            break d;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = run.wait();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("interrupted after") && err.contains(" cases; "), "{err}");
    assert!(!run_dir.exists(), "the interrupted run left {}", run_dir.display());
    let token = run_dir.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_owned();
    assert!(cgroups_of(&token).is_empty(), "{:?}", cgroups_of(&token));
}
