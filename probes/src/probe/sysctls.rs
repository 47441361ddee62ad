//! The sysctl observation. For every kind that owns sysctls ([`crate::sysctl::TABLE`]):
//!
//! - in a namespace of the probe's own, each entry it may write is written with a value unlike
//!   the probe's and the host's and read back; then the host reads its own (and, for a joiner,
//!   has the container it joined read its) while the probe tests the global entries;
//! - in the harness's namespace nothing is written: each entry gets a capability test that
//!   changes nothing ([`CapabilityTest`]).
//!
//! And every global entry (no kind owns it) gets the capability test as well.
//!
//! The writes go in two groups, the uts entries and the rest, each between
//! [`HostQuestion::SysctlBegin`] (the host records the candidates, for a run killed meanwhile, and
//! says its own values; for the uts group it takes the domainname lock) and
//! [`HostQuestion::SysctlCheck`] (the host reads its values again, restores whatever changed to
//! one of the probe's, and keeps what it saw for the judge). A holder (a container a joiner will enter) then puts its own values
//! back, so that the joiner finds the container as the spec made it. The uts group's check and the
//! rest's announcement are asked together (`write_groups`).
//!
//! What it must never do: write an entry of a namespace that is the harness's, or a global entry.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

use nix::fcntl::{OFlag, openat};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::stat::Mode as FileMode;

use crate::ns::NsKind;
use crate::sysctl::{self, Found, SysDirs, Values};
use crate::wire::{
    CapabilityTest, Fact, HostAnswer, HostQuestion, NotWritten, NsId, SysctlObservation, SysctlPlan, SysctlSkip,
    SysctlStripe, SysctlTest, SysctlWrite, fact_key,
};

use super::args::PROBE_NAME;
use super::channel::Channel;
use super::error::{Context, ProbeError};
use super::observe::{expect_ack, next_answer, unexpected};

/// What the run needs besides the channel.
pub struct Setup<'a> {
    /// The probe's procfs (any: /proc/sys shows the reader's namespaces).
    pub proc: &'a OwnedFd,
    /// Per kind that owns sysctls: `None` for a namespace of the probe's own, the harness's
    /// namespace otherwise.
    pub kinds: Vec<(NsKind, Option<NsId>)>,
    /// The probe's own isoprobe token (names written to the uts entries derive from it).
    pub token: &'a str,
    /// A holder: put the probe's own values back after the host has looked.
    pub restore: bool,
    /// The share of the network tree's entries (some 600) this probe writes; every other kind's
    /// entries are all written.
    pub stripe: Option<SysctlStripe>,
    /// The global entries to test (the harness's list, of this probe's stripe).
    pub globals: &'a [String],
    /// The network entries of the stripe a fresh network namespace has, with the `available_*`
    /// ones (the harness's list, [`crate::wire::ProbeCase::net_sysctls`]): opened by name in a
    /// network namespace of the probe's own instead of a listing of its tree.
    pub net_entries: Option<&'a [String]>,
}

/// One entry to write.
struct Target {
    kind: NsKind,
    path: String,
    /// Open for reading and writing from the plan to the last read: one lookup per entry.
    fd: OwnedFd,
    volatile: bool,
    /// As read, without its trailing newline: what a holder writes back.
    raw_before: String,
    before: String,
    candidates: Vec<String>,
}

/// The facts: one per kind, then the global one. `Err` only for what ends the conversation.
pub fn observe(ch: &mut Channel, setup: &Setup<'_>) -> Result<Vec<Fact>, ProbeError> {
    let keys: Vec<String> =
        setup.kinds.iter().map(|(k, _)| fact_key::sysctls(*k)).chain([fact_key::GLOBAL_SYSCTLS.to_owned()]).collect();
    match observe_all(ch, setup) {
        Ok(facts) => Ok(facts),
        Err(e @ ProbeError::Protocol(_)) => Err(e),
        Err(e) => Ok(keys.into_iter().map(|about| Fact::Unobservable { about, error: e.to_string() }).collect()),
    }
}

fn observe_all(ch: &mut Channel, setup: &Setup<'_>) -> Result<Vec<Fact>, ProbeError> {
    let mut sys = SysDirs::new(
        openat(setup.proc, "sys", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty())
            .ctx(|| "open /proc/sys".into())?,
    );
    let kernel = nix::sys::utsname::uname().ok().and_then(|u| sysctl::kernel_version(&u.release().to_string_lossy()));
    // Every entry to write stays open from the plan to the last read (a fresh network namespace
    // has some 600): as many descriptors as the hard limit allows.
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let mut targets = Vec::new();
    let mut skipped: BTreeMap<NsKind, Vec<SysctlSkip>> = BTreeMap::new();
    let mut facts: BTreeMap<NsKind, Fact> = BTreeMap::new();
    // With the kind whose table names them.
    let mut later_globals: Vec<(NsKind, Found)> = Vec::new();
    for (kind, shared) in &setup.kinds {
        // The probe's own tree is listed in full (the network tree, when the harness gives it,
        // named from the harness's listing of a fresh one); in the harness's namespace a tree's
        // sample is enough (see `sysctl::Owned::sample`).
        let found = match (shared, setup.net_entries) {
            // An entry named and not there is passed over, as one a listing would not have found.
            (None, Some(named)) if *kind == NsKind::Net => Ok(named.iter().map(|p| Found::named(p)).collect()),
            (None, _) => sys.owned_by(*kind, kernel, false),
            (Some(_), _) => sys.sampled_by(*kind, kernel),
        }
        .ctx(|| format!("list the {kind} sysctls"))?;
        match shared {
            Some(shared) => {
                // An entry a kind owns from some kernel on is global before it; in the harness's
                // namespace it is tested with the global entries, so that the kind's test asks
                // the same on every kernel (see `sysctl::Owned::since`).
                let (later, always): (Vec<Found>, Vec<Found>) =
                    found.into_iter().partition(|f| sysctl::owner(&f.path, kernel).is_some_and(|o| o.since.is_some()));
                later_globals.extend(later.into_iter().map(|f| (*kind, f)));
                let tests = tests_of(&mut sys, *kind, &always, kernel)?;
                facts.insert(
                    *kind,
                    Fact::Sysctls { kind: *kind, observed: SysctlObservation::Harness { shared: *shared, tests } },
                );
            }
            None => {
                let skips = skipped.entry(*kind).or_default();
                // The network tree in its stripe; its siblings' lists are read from the whole.
                let stripe = setup.stripe.filter(|_| *kind == NsKind::Net);
                let mine: Vec<&Found> = found.iter().filter(|f| stripe.is_none_or(|s| s.holds(&f.path))).collect();
                plan(&mut sys, *kind, &mine, &found, kernel, setup.token, &mut targets, skips)
                    .ctx(|| format!("list the {kind} sysctls"))?;
            }
        }
    }
    // The uts entries apart: the host compares them under the domainname lock (the domainname
    // check changes the host's on purpose), the rest with its values of the run's start, unlocked.
    let (uts, rest): (Vec<Target>, Vec<Target>) = targets.into_iter().partition(|t| t.kind == NsKind::Uts);
    let groups: Vec<Vec<Target>> = [uts, rest].into_iter().filter(|g| !g.is_empty()).collect();
    let (written, last_check) = write_groups(&mut |q| ch.ask_all(q), &groups, &mut skipped)?;
    // The global entries' tests need nothing of the host: made while it checks the last group.
    let last_check = last_check.map(|check| ch.ask_ahead(vec![check])).transpose()?;
    let globals = global_tests(&mut sys, setup.globals, &later_globals, kernel);
    if let Some(check) = last_check {
        let answers = ch.answers(check)?;
        expect_ack(next_answer(&mut answers.into_iter(), "check the host's sysctls")?, "check the host's sysctls")?;
    }
    let targets: Vec<Target> = groups.into_iter().flatten().collect();
    if setup.restore {
        // Put back what this probe wrote, so that a joiner finds the container as it was made. Not
        // every value can be: the `*_next_id` entries read -1 until set, and take no -1 (the
        // kernel puts it back when the next object takes the id).
        for (i, _) in &written {
            let t: &Target = &targets[*i];
            if let Err(e) = sysctl::write_fd(&t.fd, &t.raw_before) {
                eprintln!("{PROBE_NAME}: could not put back /proc/sys/{} to {:?}: {e}", t.path, t.raw_before);
            }
        }
    }
    for (kind, shared) in &setup.kinds {
        if shared.is_none() {
            let mine = written.iter().filter(|(i, _)| targets[*i].kind == *kind).map(|(_, w)| w.clone()).collect();
            let skipped = skipped.remove(kind).unwrap_or_default();
            facts.insert(
                *kind,
                Fact::Sysctls { kind: *kind, observed: SysctlObservation::Own { written: mine, skipped } },
            );
        }
    }
    let mut out: Vec<Fact> = setup.kinds.iter().filter_map(|(k, _)| facts.remove(k)).collect();
    out.push(Fact::GlobalSysctls { tests: globals? });
    Ok(out)
}

/// The capability tests of the global entries (`globals`, the harness's list of the probe's
/// stripe) and of the entries a kind owns only from a later kernel (`later`, with that kind).
fn global_tests(
    sys: &mut SysDirs,
    globals: &[String],
    later: &[(NsKind, Found)],
    kernel: Option<(u32, u32)>,
) -> Result<Vec<SysctlTest>, ProbeError> {
    let mut tests = Vec::new();
    for p in globals.iter().filter(|p| sysctl::plain_path(p)) {
        tests.extend(capability_test(sys, &Found::listed(p), kernel).ctx(|| format!("test /proc/sys/{p}"))?);
    }
    for (kind, f) in later {
        tests.extend(tests_of(sys, *kind, std::slice::from_ref(f), kernel)?);
    }
    Ok(tests)
}

/// The entries of an own kind to write (`mine`, of the kind's `found`), each with its candidates;
/// the others go to `skips`.
#[allow(clippy::too_many_arguments)]
fn plan(
    sys: &mut SysDirs,
    kind: NsKind,
    mine: &[&Found],
    found: &[Found],
    kernel: Option<(u32, u32)>,
    token: &str,
    targets: &mut Vec<Target>,
    skips: &mut Vec<SysctlSkip>,
) -> nix::Result<()> {
    // Read for a `ns_last_pid` only (the bound of its candidates).
    let mut pid_max: Option<Option<i64>> = None;
    for f in mine {
        let Some(row) = sysctl::owner(&f.path, kernel) else { continue };
        let skip = |why| SysctlSkip { path: f.path.clone(), why };
        // The permission check of /proc/sys is made at open (or a read-only mount refuses).
        let Some(opened) = sys.open_named(f, OFlag::O_RDWR)? else { continue };
        let (fd, raw) = match opened.and_then(|fd| Ok((sysctl::read_fd(&fd)?, fd))) {
            Ok((raw, fd)) => (fd, raw),
            Err(e) => {
                let why = match sys.read(&f.path) {
                    Ok(_) => NotWritten::Refused { error: nix::Result::<()>::Err(e).into() },
                    Err(r) => NotWritten::Unreadable { error: nix::Result::<()>::Err(r).into() },
                };
                skips.push(skip(why));
                continue;
            }
        };
        let before = sysctl::normalize(&raw);
        let words = if row.values == Values::Generic && !before.contains(' ') && before.parse::<i128>().is_err() {
            let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d);
            let names = found.iter().filter_map(|g| g.path.rsplit_once('/').filter(|(d, _)| *d == dir).map(|(_, n)| n));
            sysctl::available_siblings(&f.path, names)
                .iter()
                .filter_map(|p| sys.read(p).ok())
                .flat_map(|v| sysctl::normalize(&v).split(' ').map(str::to_owned).collect::<Vec<_>>())
                .filter(|w| !w.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        let name = f.path.rsplit_once('/').map_or(f.path.as_str(), |(_, n)| n);
        if row.values == Values::LastPid && pid_max.is_none() {
            pid_max = Some(sys.read("kernel/pid_max").ok().and_then(|v| sysctl::normalize(&v).parse::<i64>().ok()));
        }
        let candidates = sysctl::candidates(row.values, &before, &words, token, name, pid_max.flatten());
        if candidates.is_empty() {
            skips.push(skip(NotWritten::NoCandidate));
            continue;
        }
        targets.push(Target {
            kind,
            path: f.path.clone(),
            fd,
            volatile: row.volatile,
            raw_before: raw.trim_end_matches('\n').to_owned(),
            before,
            candidates,
        });
    }
    Ok(())
}

/// The entries written, by their index in the groups laid end to end.
type Written = Vec<(usize, SysctlWrite)>;

/// Announces, writes, reads back and has the host look at each group in turn, asking with `ask`
/// (questions asked together, their answers in order); returns the written entries by their
/// index in the groups laid end to end, and the last group's check, for the caller to ask (ahead
/// of what needs no host). The check of one
/// group and the announcement of the next are asked together (one round trip): the host checks
/// (and, for the uts group, unlocks) before it records the next group's candidates, and the probe
/// writes none of the next group before it has the answers.
///
/// Each group is read back before the host is asked to check it: the host puts back at once a
/// value of the probe's that reached it (a leak), and a read-back after that would find the
/// value the probe started from in a namespace that is the host's, as if the write had had no
/// effect, and hide the leak from the judge, which compares the host's values for the entries
/// the probe wrote.
fn write_groups(
    ask: &mut dyn FnMut(Vec<HostQuestion>) -> Result<Vec<HostAnswer>, ProbeError>,
    groups: &[Vec<Target>],
    skipped: &mut BTreeMap<NsKind, Vec<SysctlSkip>>,
) -> Result<(Written, Option<HostQuestion>), ProbeError> {
    let Some(first) = groups.first() else { return Ok((Vec::new(), None)) };
    let announced = ask(vec![announce(first)])?;
    let mut host_before =
        host_values(next_answer(&mut announced.into_iter(), "announce the sysctl writes")?, first.len())?;
    let mut written = Vec::new();
    let mut offset = 0;
    // Writes and reads back a group; its check (always asked: the host compares and restores,
    // and unlocks, on it, and keeps what it saw).
    let mut write = |group: &[Target], host_before: &[Option<String>], written: &mut Written| {
        let accepted = write_group(group, host_before, skipped);
        let check = HostQuestion::SysctlCheck { written: accepted.iter().map(|(i, _)| *i as u32).collect() };
        written.extend(read_back(group, accepted, skipped).into_iter().map(|(j, w)| (offset + j, w)));
        offset += group.len();
        check
    };
    for (group, next) in groups.iter().zip(&groups[1..]) {
        let check = write(group, &host_before, &mut written);
        let mut answers = ask(vec![check, announce(next)])?.into_iter();
        expect_ack(next_answer(&mut answers, "check the host's sysctls")?, "check the host's sysctls")?;
        host_before = host_values(next_answer(&mut answers, "announce the sysctl writes")?, next.len())?;
    }
    let last = write(&groups[groups.len() - 1], &host_before, &mut written);
    Ok((written, Some(last)))
}

/// The announcement of `targets`' writes, with the candidates of each.
fn announce(targets: &[Target]) -> HostQuestion {
    let entries =
        targets.iter().map(|t| SysctlPlan { path: t.path.clone(), candidates: t.candidates.clone() }).collect();
    HostQuestion::SysctlBegin { entries }
}

/// The host's values of `n` announced entries, from its answer to the announcement.
fn host_values(answer: HostAnswer, n: usize) -> Result<Vec<Option<String>>, ProbeError> {
    match answer {
        HostAnswer::SysctlValues { values } if values.len() == n => Ok(values),
        other => Err(unexpected(other, "announce the sysctl writes")),
    }
}

/// Writes each target with the first value the kernel takes, unlike the host's too, or a leak
/// would not show (ns_last_pid moves by itself). Nothing is read back meanwhile: a write may change
/// another entry of the group, which [`read_back`] reads once every write is made.
/// Returns the accepted writes by target index; the others go to `skipped`.
fn write_group(
    targets: &[Target],
    host_before: &[Option<String>],
    skipped: &mut BTreeMap<NsKind, Vec<SysctlSkip>>,
) -> Vec<(usize, String)> {
    let mut accepted: Vec<(usize, String)> = Vec::new();
    for (i, (t, host)) in targets.iter().zip(host_before).enumerate() {
        let mut errors = Vec::new();
        for c in t.candidates.iter().filter(|c| t.volatile || host.as_deref() != Some(c.as_str())) {
            match sysctl::write_fd(&t.fd, c) {
                Ok(()) => {
                    accepted.push((i, c.clone()));
                    break;
                }
                Err(e) => errors.push(format!("{c:?}: {e}")),
            }
        }
        let why = match () {
            _ if accepted.last().is_some_and(|(j, _)| *j == i) => continue,
            _ if !errors.is_empty() => NotWritten::Rejected { errors },
            _ => NotWritten::NoCandidate,
        };
        skipped.entry(t.kind).or_default().push(SysctlSkip { path: t.path.clone(), why });
    }
    accepted
}

/// What each accepted entry holds once every write of its group is made (a later write may have
/// changed an earlier entry: conf/all/forwarding and ip_forward are one setting, and a value may
/// be taken but changed, or ignored): what the host and the joined container are compared with.
fn read_back(
    targets: &[Target],
    accepted: Vec<(usize, String)>,
    skipped: &mut BTreeMap<NsKind, Vec<SysctlSkip>>,
) -> Vec<(usize, SysctlWrite)> {
    let mut written = Vec::new();
    for (i, value) in accepted {
        let t: &Target = &targets[i];
        let why = match sysctl::read_fd(&t.fd).map(|v| sysctl::normalize(&v)) {
            Ok(after) if after != t.before => {
                let written_value = (value != after).then_some(value);
                written.push((
                    i,
                    SysctlWrite { path: t.path.clone(), before: t.before.clone(), after, written: written_value },
                ));
                continue;
            }
            Ok(_) => NotWritten::NoEffect,
            Err(e) => NotWritten::Unreadable { error: nix::Result::<()>::Err(e).into() },
        };
        skipped.entry(t.kind).or_default().push(SysctlSkip { path: t.path.clone(), why });
    }
    written
}

/// The capability tests of `entries` (of `kind`'s table): those of the named entries that are
/// there.
fn tests_of(
    sys: &mut SysDirs,
    kind: NsKind,
    entries: &[Found],
    kernel: Option<(u32, u32)>,
) -> Result<Vec<SysctlTest>, ProbeError> {
    let mut tests = Vec::new();
    for f in entries {
        tests.extend(capability_test(sys, f, kernel).ctx(|| format!("list the {kind} sysctls"))?);
    }
    Ok(tests)
}

/// Whether a write to `f` would be permitted, asked without changing it; `None` for a named
/// entry that is not there (its open is its lookup, see [`Found::named`]).
fn capability_test(sys: &mut SysDirs, f: &Found, kernel: Option<(u32, u32)>) -> nix::Result<Option<SysctlTest>> {
    let last_pid = sysctl::owner(&f.path, kernel).is_some_and(|o| o.values == Values::LastPid);
    let Some(opened) = sys.open_named(f, OFlag::O_WRONLY)? else { return Ok(None) };
    let (test, result) = if last_pid {
        // Opening it for writing is always permitted (mode 0666): its handler checks.
        (CapabilityTest::InvalidWrite, opened.and_then(|fd| sysctl::write_fd(&fd, "-1")))
    } else {
        (CapabilityTest::OpenForWriting, opened.map(drop))
    };
    Ok(Some(SysctlTest { path: f.path.clone(), test, result: result.into() }))
}

/// A holder's reading for a joiner: each entry whitespace-normalised, `None` where unreadable.
pub fn read_for_peer(proc: &OwnedFd, paths: &[String]) -> Vec<Option<String>> {
    let Ok(sys) = openat(proc, "sys", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, FileMode::empty())
    else {
        return vec![None; paths.len()];
    };
    let mut sys = SysDirs::new(sys);
    paths
        .iter()
        .map(|p| {
            if !sysctl::plain_path(p) {
                return None;
            }
            sys.read(p).ok().map(|v| sysctl::normalize(&v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target on a file of `dir` holding `value`: a stand-in for an entry of a namespace that is
    /// really the host's (the probe's file and the host's are the same).
    fn target(dir: &std::path::Path, name: &str, value: &str, candidates: &[&str]) -> Target {
        let path = dir.join(name);
        std::fs::write(&path, format!("{value}\n")).expect("write the entry");
        let fd = nix::fcntl::open(&path, OFlag::O_RDWR | OFlag::O_CLOEXEC, FileMode::empty()).expect("open it");
        Target {
            kind: NsKind::Ipc,
            path: format!("kernel/{name}"),
            fd,
            volatile: false,
            raw_before: value.to_owned(),
            before: value.to_owned(),
            candidates: candidates.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn a_write_that_reached_the_host_is_reported_though_the_host_put_it_back() {
        /// The test's directory, removed however the test ends.
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        // Not an isoprobe-named directory: a host snapshot or leftover sweep running meanwhile
        // must not see it.
        let made = Dir(std::env::temp_dir().join(format!("sysctls-test-{}", std::process::id())));
        let dir = made.0.as_path();
        std::fs::create_dir_all(dir).expect("make the temp dir");
        // Two groups: the first checked with the second's announcement, the last by the caller.
        let groups =
            vec![vec![target(dir, "msgmax", "8192", &["8193"])], vec![target(dir, "msgmnb", "16384", &["16385"])]];
        let host_values = [("msgmax", "8192"), ("msgmnb", "16384")];
        let mut asked = Vec::new();
        // The host: says its value at the announcement, and at the check finds the probe's and
        // puts its own back, as the harness does with a leak.
        let mut host = |questions: Vec<HostQuestion>| -> Result<Vec<HostAnswer>, ProbeError> {
            asked.extend(questions.iter().map(|q| match q {
                HostQuestion::SysctlBegin { .. } => "begin",
                HostQuestion::SysctlCheck { .. } => "check",
                _ => "other",
            }));
            Ok(questions
                .into_iter()
                .map(|q| match q {
                    HostQuestion::SysctlBegin { entries } => HostAnswer::SysctlValues {
                        values: entries
                            .iter()
                            .map(|e| std::fs::read_to_string(dir.join(e.path.trim_start_matches("kernel/"))).ok())
                            .collect(),
                    },
                    HostQuestion::SysctlCheck { .. } => {
                        for (name, value) in host_values {
                            std::fs::write(dir.join(name), format!("{value}\n")).expect("put the host's value back");
                        }
                        HostAnswer::Ack
                    }
                    other => HostAnswer::Failed { error: format!("not a sysctl question: {other:?}") },
                })
                .collect())
        };
        let mut skipped = BTreeMap::new();
        let (written, last_check) = write_groups(&mut host, &groups, &mut skipped).expect("no protocol error");
        let last_check = last_check.expect("the check is the caller's to ask");
        host(vec![last_check]).expect("the host checks");
        assert_eq!(asked, ["begin", "check", "begin", "check"]);
        assert_eq!(skipped, BTreeMap::new(), "every write had an effect");
        let seen: Vec<(usize, &str, &str)> =
            written.iter().map(|(i, w)| (*i, w.before.as_str(), w.after.as_str())).collect();
        assert_eq!(seen, [(0, "8192", "8193"), (1, "16384", "16385")]);
        for (name, value) in host_values {
            let now = std::fs::read_to_string(dir.join(name)).expect("read the entry");
            assert_eq!(now.trim_end(), value, "the host put {name} back");
        }
        drop(made);
    }
}
