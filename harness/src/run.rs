//! The run loop: one [`Harness`] per run, [`Harness::run_case`] per case.
//!
//! A case goes: validate → requirements (or skip) → resolve → create the case's host objects →
//! launch → converse (facts, host checks) → reap → judge every check against the oracle → remove
//! everything. Cases may run on many threads at once; each owns its objects, and the only shared
//! host state they touch (the domainname) is locked.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use isoprobe_probes::wire::{Fact, InitPlan, ProbeCase, ToProbe, WIRE_VERSION};
use isoprobe_probes::{sys, text};

use crate::case_env::CaseEnv;
use crate::check::CheckId;
use crate::company::{Companies, Company};
use crate::conversation::{Streams, Transcript, ask_holder, converse, send_hello};
use crate::error::{Context, HarnessError};
use crate::host::{HostSide, PeerRead};
use crate::judge::{self, HostView, Seen};
use crate::launcher::defect::{DEFECT_ATTEMPTS, DefectHit};
use crate::launcher::process::describe;
use crate::launcher::{Launcher, StartContext, Started, can_run, registry};
use crate::oracle::expect;
use crate::phases::{Phase, Phases};
use crate::requirement;
use crate::run_env::RunEnv;
use crate::spec::{CaseSpec, Resolved, Runner};
use crate::verdict::{CaseOutcome, CheckResult, Judged, ProbeRun, Role, Skip};
use isoprobe_probes::ns::{NsKind, NsSet};

/// A host user limit the harness opens for writing (and closes) as the control of the user
/// namespace's sysctl check.
const USER_LIMIT: &str = "/proc/sys/user/max_user_namespaces";

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// Per case, from launch to the last probe reaped.
    pub case_timeout: Duration,
    /// The probe executable; `None` takes `ISOPROBE_PROBE`, else the running executable.
    pub probe: Option<PathBuf>,
}

impl Default for HarnessOptions {
    /// 30 s per case, or `ISOPROBE_CASE_TIMEOUT_SECS`. A case takes tens of milliseconds; the
    /// timeout only bounds a hung probe.
    fn default() -> Self {
        let secs = std::env::var("ISOPROBE_CASE_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
        HarnessOptions { case_timeout: Duration::from_secs(secs), probe: None }
    }
}

/// One run: its host objects and its cases.
#[derive(Debug)]
pub struct Harness {
    run: RunEnv,
    opts: HarnessOptions,
    next_case: AtomicU64,
    cgroup_root: Option<PathBuf>,
    kernel: requirement::KernelRelease,
    /// A mount case keeps apart from the other cases, the native ones beside each other (see
    /// [`crate::company`]).
    companies: Companies,
}

/// One probe process's raw results before judging.
struct RawRun {
    role: Role,
    transcript: Transcript,
    host: HostView,
    exit: String,
    stderr: String,
}

impl Harness {
    /// Sets up a run. Create it on a thread that outlives every case (see [`RunEnv::new`]).
    pub fn new(opts: HarnessOptions) -> Result<Harness, HarnessError> {
        let probe = match &opts.probe {
            Some(p) => p.clone(),
            None => crate::run_env::probe_source()?,
        };
        let run = RunEnv::new(Runner::current(), &probe)?;
        Ok(Harness {
            cgroup_root: run.layout.writable_v2_root(),
            run,
            opts,
            next_case: AtomicU64::new(0),
            kernel: requirement::KernelRelease::running(),
            companies: Companies::new(),
        })
    }

    pub fn runner(&self) -> Runner {
        self.run.runner
    }

    pub fn run_env(&self) -> &RunEnv {
        &self.run
    }

    /// Whether this machine and user can run `spec`, and its launcher can express it; the skip
    /// names what is missing.
    ///
    /// The generic requirements apply to the container the launcher really builds: bwrap run by an
    /// unprivileged user adds a user namespace of its own, so it needs no root for the others.
    pub fn requirement(&self, spec: &CaseSpec) -> Result<(), Skip> {
        let spec = spec.resolve(self.run.runner);
        self.requirement_of(&spec, &registry::effective(spec.launcher, &spec, self.run.runner).spec)
    }

    /// [`Harness::requirement`] of a spec resolved, and of the container it really gives.
    fn requirement_of(&self, spec: &Resolved, effective: &Resolved) -> Result<(), Skip> {
        let runner = self.run.runner;
        requirement::check_case(effective, runner, self.run.supported_kinds(), &self.kernel)?;
        can_run(registry::launcher(spec.launcher), spec, runner)
    }

    pub fn run_case(&self, spec: &CaseSpec) -> CaseOutcome {
        self.run_case_against(spec, spec)
    }

    /// Launches `launched` but judges the observations against `oracle`: with `launched` lacking
    /// one of `oracle`'s namespaces, this is the sensitivity test of that namespace's checks.
    pub fn run_case_against(&self, launched: &CaseSpec, oracle: &CaseSpec) -> CaseOutcome {
        self.run_case_planted_inner(launched, oracle, NsSet::EMPTY)
    }

    /// Runs `spec` with the flags of `drop` lost at the system call (the fault plant, see
    /// `isoprobe_probes::fault`): the spec and the oracle keep the full promise, as with a
    /// runtime that silently loses a namespace. Test builds only.
    #[cfg(feature = "fault-plant")]
    pub fn run_case_planted(&self, spec: &CaseSpec, drop: NsSet) -> CaseOutcome {
        self.run_case_planted_inner(spec, spec, drop)
    }

    fn run_case_planted_inner(&self, launched: &CaseSpec, oracle: &CaseSpec, plant: NsSet) -> CaseOutcome {
        let started = Instant::now();
        let mut out = CaseOutcome {
            name: oracle.name(),
            spec: oracle.clone(),
            skipped: None,
            error: None,
            runs: Vec::new(),
            join_mismatches: Vec::new(),
            duration: Duration::ZERO,
            phases: Phases::default(),
            defects: Vec::new(),
        };
        let mut phases = Phases::default();
        if let Err(e) = launched.validate().and_then(|()| oracle.validate()) {
            out.error = Some(format!("invalid spec: {e}"));
            return out;
        }
        let _place = self.companies.enter(match launched.propagation {
            None => Company::Beside,
            Some(_) if launched.launcher.is_native() => Company::NativeMount,
            Some(_) => Company::Alone,
        });
        // Each state of the spec is computed once: resolved for this runner, then what the
        // launcher really builds from it.
        let runner = self.run.runner;
        let (launched, oracle) = (launched.resolve(runner), oracle.resolve(runner));
        let effective = registry::effective(launched.launcher, &launched, runner).spec;
        let skipped = self.requirement_of(&launched, &effective).err().or_else(|| {
            let l = launched.limits.as_ref()?;
            crate::limits::requirement::check(&launched, l, runner, self.run.layout).err()
        });
        phases.lap(Phase::Plan, started);
        if let Some(skip) = skipped {
            out.skipped = Some(skip);
            out.phases = phases;
            out.duration = started.elapsed();
            return out;
        }
        match self.execute(&launched, &effective, plant, &mut phases, &mut out.defects) {
            Ok(raw) => phases.time(Phase::Judge, || {
                out.runs = raw.iter().map(|r| judge_run(r, &oracle, runner)).collect();
                if let [container, joiner] = raw.as_slice() {
                    out.join_mismatches = join_mismatches(container, joiner, &oracle);
                }
            }),
            Err(e) => out.error = Some(e.to_string()),
        }
        out.phases = phases;
        out.duration = started.elapsed();
        out
    }

    /// Starts `spec` (resolved; `effective` is the container its launcher really builds) and
    /// talks to its probes; then removes the case's host objects.
    fn execute(
        &self,
        spec: &Resolved,
        effective: &Resolved,
        plant: NsSet,
        phases: &mut Phases,
        defects: &mut Vec<DefectHit>,
    ) -> Result<Vec<RawRun>, HarnessError> {
        let id = self.next_case.fetch_add(1, Ordering::Relaxed);
        let case = phases.time(Phase::Setup, || CaseEnv::create(&self.run, spec, id, self.cgroup_root.as_deref()))?;
        let raw = self.execute_in(spec, effective, plant, &case, phases, defects);
        phases.time(Phase::Teardown, || drop(case));
        raw
    }

    /// [`Harness::execute`] in the case's host objects.
    fn execute_in(
        &self,
        spec: &Resolved,
        effective: &Resolved,
        plant: NsSet,
        case: &CaseEnv,
        phases: &mut Phases,
        defects: &mut Vec<DefectHit>,
    ) -> Result<Vec<RawRun>, HarnessError> {
        // The timeout is the probe's: it starts once the case is set up, which for a timing
        // case includes waiting for other timing cases (see `limits::case`).
        let begun = Instant::now();
        let deadline = begun + self.opts.case_timeout;
        let launcher = registry::launcher(spec.launcher);
        let ctx = |spec, effective, hold| StartContext { spec, effective, case, run: &self.run, deadline, hold, plant };
        if !spec.launcher.joins() {
            let mut p =
                phases.time(Phase::Spawn, || start_anew(defects, || start(launcher, &ctx(spec, effective, false))))?;
            if let Some(l) = case.limits.as_ref().filter(|l| l.by_tool()) {
                // The tool created the case's cgroup and wrote its limits: the host's answers
                // (peak, OOM kills, throttling, usage) come from there.
                let tool_cgroup = launcher.limit_cgroup(&ctx(spec, effective, false)).ok_or_else(|| {
                    HarnessError::Launch(format!("{} names no cgroup for the case's limits", spec.launcher.name()))
                })?;
                l.adopt(p.probe_pid, &tool_cgroup)?;
            }
            let plan = p.init.clone();
            let (transcript, host, streams) =
                self.talk(spec, case, &mut p, plan, false, deadline, begun, phases, None)?;
            let run = phases.time(Phase::Reap, || finish(Role::Container, p, transcript, host, streams, deadline))?;
            return Ok(vec![run]);
        }
        // setns: a container that holds its namespaces, then a probe that joins it. The fault
        // plant is the joiner's (its setns calls): the container is clone3's, planted there.
        let container_spec = spec.launched_by(spec.launcher.container_launcher());
        let container_effective = registry::effective(container_spec.launcher, &container_spec, self.run.runner).spec;
        let mut holder = phases.time(Phase::Spawn, || {
            start_anew(defects, || {
                launcher
                    .start(&StartContext { plant: NsSet::EMPTY, ..ctx(&container_spec, &container_effective, true) })
            })
        })?;
        let plan = holder.init.clone();
        let (ht, hhost, mut hstreams) =
            self.talk(&container_spec, case, &mut holder, plan, true, deadline, begun, phases, None)?;
        let joined = (|| {
            let mut j = phases.time(Phase::Spawn, || launcher.start_joiner(&ctx(spec, effective, false), &holder))?;
            let plan = j.init.clone();
            // The joiner's sysctl writes are read back by the container it joined.
            let read_peer: PeerRead<'_> = Box::new(|paths: &[String]| {
                ask_holder(&mut holder.process, &mut hstreams, paths, deadline).map_err(|e| e.to_string())
            });
            let (t, host, streams) =
                self.talk(spec, case, &mut j, plan, false, deadline, begun, phases, Some(read_peer))?;
            phases.time(Phase::Reap, || finish(Role::Joiner, j, t, host, streams, deadline))
        })();
        // Release the holder in every outcome (closing stdin releases it too).
        if let Some(stdin) = holder.process.stdin.as_mut() {
            let _ = std::io::Write::write_all(stdin, isoprobe_probes::wire::encode(&ToProbe::Release).as_bytes());
        }
        let container = phases.time(Phase::Reap, || {
            finish(Role::Container, holder, ht, hhost, std::mem::take(&mut hstreams), deadline)
        })?;
        Ok(vec![container, joined?])
    }

    /// Start latency of `spec`'s launcher: from the launch to the probe's first message (its init
    /// report, sent once the container is set up and the probe runs in it). The rest of the case is
    /// not run: the probe's stdin is closed, and the container ends and is torn down outside the
    /// measured time. For the benches.
    pub fn start_latency(&self, spec: &CaseSpec) -> Result<Duration, HarnessError> {
        self.start_and_stop(spec, false)
    }

    /// Starts `spec`'s container, waits for the probe's first message, then SIGKILLs the process
    /// the harness started (the tool), as a case timeout does, and tears down. Fails if the tool
    /// leaves anything behind, the probe itself included.
    pub fn start_and_kill(&self, spec: &CaseSpec) -> Result<(), HarnessError> {
        self.start_and_stop(spec, true).map(drop)
    }

    fn start_and_stop(&self, spec: &CaseSpec, kill: bool) -> Result<Duration, HarnessError> {
        spec.validate()?;
        let spec = spec.resolve(self.run.runner);
        let begun = Instant::now();
        let deadline = begun + self.opts.case_timeout;
        let id = self.next_case.fetch_add(1, Ordering::Relaxed);
        let case = CaseEnv::create(&self.run, &spec, id, self.cgroup_root.as_deref())?;
        let names = case.new_probe_names()?;
        let effective = registry::effective(spec.launcher, &spec, self.run.runner).spec;
        let ctx = StartContext {
            spec: &spec,
            effective: &effective,
            case: &case,
            run: &self.run,
            deadline,
            hold: false,
            plant: NsSet::EMPTY,
        };
        let started = Instant::now();
        let mut p = start(registry::launcher(spec.launcher), &ctx)?;
        let hello = ToProbe::Hello {
            version: WIRE_VERSION,
            case: Box::new(ProbeCase {
                name: spec.name(),
                init: p.init.clone(),
                sentinels: case.sentinels(&self.run, &names),
                hold: false,
                ends_with_probe: false,
                exercise: None,
                harness_ns: self.run.harness_ns(),
                sysctl_stripe: spec.sysctl_stripe,
                // Stopped before it observes anything.
                global_sysctls: Vec::new(),
                net_sysctls: None,
            }),
        };
        let stdin = p.process.stdin.as_mut().ok_or_else(|| HarnessError::Internal("no stdin".into()))?;
        std::io::Write::write_all(stdin, isoprobe_probes::wire::encode(&hello).as_bytes())
            .ctx(|| "send the hello".into())?;
        crate::launcher::process::wait_readable(
            std::os::fd::AsFd::as_fd(&p.process.stdout),
            deadline,
            "waiting for the probe's first message",
        )?;
        let elapsed = started.elapsed();
        // Held for the check below: a pidfd names this very process, never a recycled pid.
        let probe = sys::pidfd_open(p.probe_pid.as_raw()).ctx(|| format!("pidfd_open({})", p.probe_pid))?;
        if kill {
            p.process.kill();
        } else {
            // The probe stops at its next read of stdin; a host question it asked meanwhile is
            // left unanswered, and the host side (names, sentinels) is removed with the case.
            p.process.stdin = None;
            let _ = p.process.wait_until(deadline);
        }
        let mut left = p.release();
        // The probe must be gone once its launcher is torn down.
        if crate::launcher::process::wait_readable(
            std::os::fd::AsFd::as_fd(&probe),
            Instant::now() + crate::launcher::process::GRACE,
            "waiting for the probe to end",
        )
        .is_err()
        {
            let _ = sys::pidfd_send_signal(&probe, libc::SIGKILL);
            left.push(format!("the probe (pid {}) outlived its launcher and was killed", p.probe_pid));
        }
        if !left.is_empty() {
            return Err(HarnessError::Leftover(format!("the launcher left things behind: {}", left.join("; "))));
        }
        Ok(elapsed)
    }

    /// Sends the hello and runs the conversation of one probe.
    #[allow(clippy::too_many_arguments)]
    fn talk(
        &self,
        spec: &CaseSpec,
        case: &CaseEnv,
        p: &mut Started,
        init: InitPlan,
        hold: bool,
        deadline: Instant,
        started: Instant,
        phases: &mut Phases,
        peer: Option<PeerRead<'_>>,
    ) -> Result<(Transcript, HostView, Streams), HarnessError> {
        let at = Instant::now();
        let names = case.new_probe_names()?;
        let hello = ToProbe::Hello {
            version: WIRE_VERSION,
            case: Box::new(ProbeCase {
                name: spec.name(),
                init,
                sentinels: case.sentinels(&self.run, &names),
                hold,
                // A native launcher made the container's namespaces for this probe alone (the
                // unshare path: for it and the parent it forks from); nothing joins them unless
                // it holds them.
                ends_with_probe: spec.launcher.is_native() && !spec.launcher.joins() && !hold,
                exercise: case.limits.as_ref().map(|l| l.exercise.clone()),
                harness_ns: self.run.harness_ns(),
                sysctl_stripe: spec.sysctl_stripe,
                global_sysctls: self.run.sysctls.global_entries(spec.sysctl_stripe).map_err(HarnessError::Host)?,
                // A native launcher adds no device: the probe's namespace is a fresh one.
                net_sysctls: spec
                    .sysctl_stripe
                    .filter(|_| spec.launcher.is_native() && spec.has(NsKind::Net))
                    .and_then(|s| self.run.sysctls.fresh_net_entries(s)),
            }),
        };
        let mut streams = Streams::default();
        // What must be read before the probe can act: its cgroup (a quick probe, a limit case's
        // control, may be done and gone soon after the hello) and the start of the host's
        // ns_last_pid window (the probe's new task must fall after it). Then the hello, and the
        // rest of the host's view while the probe reads it and starts.
        let probe_cgroup = self.probe_cgroup(p)?;
        let last_pid_before = host_last_pid();
        send_hello(&mut p.process, &streams, &hello)?;
        let mut host_view = self.host_view(probe_cgroup, last_pid_before)?;
        let mut host = HostSide::new(&self.run, case, &names, deadline, peer);
        phases.lap(Phase::HostView, at);
        let t = converse(&mut p.process, &mut streams, &mut host, deadline, started, phases)?;
        host_view.sysctls = host.take_sysctl_view();
        if !hold {
            // Done: the probe exits while the host reads its controls (a holder waits for its
            // joiner instead).
            p.process.stdin = None;
        }
        phases.time(Phase::Controls, || self.after_probe(&mut host_view, case))?;
        Ok((t, host_view, streams))
    }

    /// What the host reads once the probe has finished observing: its hostname again (what the
    /// probe's is compared with), and the controls (see [`judge::Controls`]).
    fn after_probe(&self, view: &mut HostView, case: &CaseEnv) -> Result<(), HarnessError> {
        view.hostname = nix::unistd::gethostname().ctx(|| "read the hostname".into())?.to_string_lossy().into_owned();
        view.ns_last_pid = view.ns_last_pid.zip(host_last_pid()).map(|((before, _), after)| (before, after));
        let sentinel = &self.run.pid_sentinel;
        view.controls = judge::Controls {
            pid_sentinel: if sentinel.alive() {
                Ok(())
            } else {
                Err(format!("the pid sentinel (pid {}) is no longer the process it was", sentinel.pid))
            },
            abstract_socket: case.connect_abstract(),
            tcp_listener: case.connect_tcp(),
            ipc: case.host_ipc_present(),
            host_marker: match text::read(&self.run.marker_path) {
                Ok(t) if t == self.run.marker_token => Ok(()),
                Ok(t) => Err(format!("{} holds {t:?}, not its token", self.run.marker_path.display())),
                Err(e) => Err(format!("failed to read {}: {e}", self.run.marker_path.display())),
            },
            // Opening for writing is the whole permission check of /proc/sys; nothing is written.
            user_limits: fs::OpenOptions::new()
                .write(true)
                .open(USER_LIMIT)
                .map(drop)
                .map_err(|e| format!("opening {USER_LIMIT} for writing: {e}")),
        };
        Ok(())
    }

    /// The probe's cgroup as the host sees it.
    fn probe_cgroup(&self, p: &Started) -> Result<Vec<String>, HarnessError> {
        let cgroup = format!("/proc/{}/cgroup", p.probe_pid);
        let text = text::read(&cgroup).ctx(|| format!("read {cgroup}"))?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// The host's side of the comparison, taken while the probe runs; `probe_cgroup` and
    /// `last_pid_before` were read before the hello.
    fn host_view(&self, probe_cgroup: Vec<String>, last_pid_before: Option<i32>) -> Result<HostView, HarnessError> {
        let mut sys_class_net: Vec<String> = fs::read_dir("/sys/class/net")
            .ctx(|| "list /sys/class/net".into())?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        sys_class_net.sort();
        Ok(HostView {
            hostname: self.run.hostname.clone(),
            ns: self.run.host_ns.clone(),
            links: sys::netlink_links().ctx(|| "list the host's links".into())?,
            sys_class_net,
            probe_cgroup,
            controls: judge::Controls::default(),
            sysctls: Default::default(),
            // The window's end is read in `after_probe`.
            ns_last_pid: last_pid_before.map(|p| (p, p)),
        })
    }
}

/// The harness's /proc/sys/kernel/ns_last_pid (`None` where the kernel has none).
fn host_last_pid() -> Option<i32> {
    text::read("/proc/sys/kernel/ns_last_pid").ok()?.trim().parse().ok()
}

/// Starts a container through `launcher`; an external tool's start holds the host's mount table
/// still until its probe runs (see [`crate::mounts::copying_host_mounts`]).
fn start(launcher: &dyn Launcher, ctx: &StartContext<'_>) -> Result<Started, HarnessError> {
    let _copying = (!ctx.spec.launcher.is_native()).then(crate::mounts::copying_host_mounts);
    launcher.start(ctx)
}

/// Runs `start` until it starts the container or fails other than on a known defect of the tool,
/// up to [`DEFECT_ATTEMPTS`] starts in all; each start that failed on one is kept in `defects`
/// (see [`crate::launcher::defect`]: it ran no probe, and its host objects went with it).
fn start_anew<T>(
    defects: &mut Vec<DefectHit>,
    mut start: impl FnMut() -> Result<T, HarnessError>,
) -> Result<T, HarnessError> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(HarnessError::KnownDefect { defect, error }) if attempt < DEFECT_ATTEMPTS => {
                defects.push(DefectHit::new(defect, attempt, error));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Closes the probe's stdin, waits for it to exit, collects the rest of its stderr, and removes
/// what the launcher created; anything left behind fails the case.
fn finish(
    role: Role,
    mut p: Started,
    transcript: Transcript,
    host: HostView,
    mut streams: Streams,
    deadline: Instant,
) -> Result<RawRun, HarnessError> {
    p.process.stdin = None;
    let status = p.process.wait_until(deadline)?;
    streams.finish(&p.process, deadline);
    let left = p.release();
    if !left.is_empty() {
        return Err(HarnessError::Leftover(format!("the launcher left things behind: {}", left.join("; "))));
    }
    Ok(RawRun { role, transcript, host, exit: describe(status), stderr: streams.stderr_text() })
}

fn judge_run(r: &RawRun, oracle: &Resolved, runner: Runner) -> ProbeRun {
    // The container of a joining case was started by another launcher: judge it as such, with the
    // namespaces that launcher documents adding (see `Launcher::effective`).
    let spec = registry::effective(r.role.launched_by(oracle.launcher), oracle, runner).spec;
    let judged = match &spec.limits {
        Some(l) => Judged::Limits(crate::limits::judge::judge_all(l, &spec, &r.transcript.facts, &r.host.probe_cgroup)),
        None => Judged::Checks(
            CheckId::all_for(&spec)
                .into_iter()
                .map(|check| {
                    let expected = expect(&spec, runner, check);
                    let verdict = judge::verdict(check, &expected, &r.transcript.facts, &r.host, &spec);
                    CheckResult { check, verdict: judge::with_refusals(check, verdict, &r.transcript.refused) }
                })
                .collect(),
        ),
    };
    ProbeRun { role: r.role, init: r.transcript.init.clone(), judged, exit: r.exit.clone(), stderr: r.stderr.clone() }
}

/// Every check on which the joiner saw something other than the container's own probe. Identity
/// is compared by inode (the joiner must be in the very same namespaces), clocks by overlapping
/// offset brackets, the rest by the classified observation.
fn join_mismatches(container: &RawRun, joiner: &RawRun, spec: &CaseSpec) -> Vec<String> {
    let mut out = Vec::new();
    for check in CheckId::all_for(spec) {
        if check == CheckId::PidSelfIsInit {
            continue; // a joiner is never the namespace's init
        }
        if matches!(check, CheckId::Sysctls(_)) {
            // The container wrote its sysctls alone in its namespaces; the joiner's are read by
            // the container: the two expectations differ by design.
            continue;
        }
        if let CheckId::NsInode(kind) = check {
            let key = isoprobe_probes::wire::fact_key::ns_identity(kind);
            let id = |r: &RawRun| match r.transcript.facts.get(&key) {
                Some(Fact::NsIdentity { dev, ino, .. }) => Some((*dev, *ino)),
                _ => None,
            };
            if id(container) != id(joiner) {
                out.push(format!("{check}: container {:?}, joiner {:?}", id(container), id(joiner)));
            }
            continue;
        }
        let c = judge::observe(check, &container.transcript.facts, &container.host, spec);
        let j = judge::observe(check, &joiner.transcript.facts, &joiner.host, spec);
        let same = match (&c, &j) {
            (Ok(a), Ok(b)) => match (&a.seen, &b.seen) {
                (Seen::OffsetRange(l1, h1), Seen::OffsetRange(l2, h2)) => l1 <= h2 && l2 <= h1,
                (x, y) => x == y,
            },
            (Err(a), Err(b)) => a.label() == b.label(),
            _ => false,
        };
        if !same {
            let show = |r: &Result<judge::Observed, crate::verdict::Verdict>| match r {
                Ok(o) => format!("{} ({})", o.seen, o.evidence),
                Err(v) => v.label().to_owned(),
            };
            out.push(format!("{check}: container {}, joiner {}", show(&c), show(&j)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::external::lxc::CAPS_TEXT_FREED;

    fn defect(n: u32) -> HarnessError {
        HarnessError::KnownDefect { defect: &CAPS_TEXT_FREED, error: format!("abort {n}") }
    }

    /// A start is made again only while it fails on a known defect, up to DEFECT_ATTEMPTS starts;
    /// every failed one is kept, and the last failure is the case's error.
    #[test]
    fn only_starts_that_fail_on_a_known_defect_are_made_again() {
        let mut hits = Vec::new();
        let mut n = 0;
        let started = start_anew(&mut hits, || {
            n += 1;
            if n < DEFECT_ATTEMPTS { Err(defect(n)) } else { Ok(n) }
        });
        assert_eq!(started.unwrap(), DEFECT_ATTEMPTS);
        let kept: Vec<(u32, &str)> = hits.iter().map(|h| (h.attempt, h.error.as_str())).collect();
        assert_eq!(kept, [(1, "abort 1"), (2, "abort 2")]);
        assert!(hits.iter().all(|h| h.defect == "lxc/lxc#4670"));

        let (mut hits, mut n) = (Vec::new(), 0);
        let e = start_anew(&mut hits, || -> Result<(), _> {
            n += 1;
            Err(defect(n))
        });
        assert!(
            matches!(e, Err(HarnessError::KnownDefect { error, .. }) if error == format!("abort {DEFECT_ATTEMPTS}"))
        );
        assert_eq!((n, hits.len() as u32), (DEFECT_ATTEMPTS, DEFECT_ATTEMPTS - 1));

        let (mut hits, mut n) = (Vec::new(), 0);
        let e = start_anew(&mut hits, || -> Result<(), _> {
            n += 1;
            Err(HarnessError::Launch("exit 1".into()))
        });
        assert!(matches!(e, Err(HarnessError::Launch(_))) && n == 1 && hits.is_empty());
    }
}
