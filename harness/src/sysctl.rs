//! The host's namespaced sysctls (the entries `isoprobe_probes::sysctl::TABLE` gives a namespace
//! kind) while probes write them in namespaces of their own: the host's values read once per run
//! and recorded in the run directory (the baseline), the values each probe may write appended to
//! the record before it writes, the comparison after it wrote, and the restore (under the host
//! lock) of every value that changed to one a probe wrote: a leak, the kernel letting a write in a
//! namespace land on the host. Also what `isoprobe cleanup` puts back of a dead run, and the
//! host's values for the snapshot.
//!
//! A probe never writes the host's entries: it writes its own namespace's, and a leak is the only
//! way the host's change. So the comparison needs no lock (cases compare with the baseline at
//! once), but for the uts entries, whose host values the domainname check changes on purpose: a
//! probe writing those holds the domainname lock, and they are compared with what the host read
//! under it. The harness writes an entry only to put the recorded value back.
//!
//! What this module must never do: write an entry the table does not give a namespace kind, a
//! value other than the recorded original, or restore over a value someone else set since
//! (anything but one of the values a probe said it might write).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use isoprobe_probes::ns::NsKind;
use isoprobe_probes::sysctl::{self, SysDirs, normalize};
use isoprobe_probes::wire::{SysctlPlan, SysctlStripe};

use crate::domainname::{self, DomainGuard};
use crate::hostlock::{HostLock, LocalLock, take_both};
use crate::requirement::KernelRelease;

const PROC_SYS: &str = "/proc/sys";
/// Serialises the restores of this process.
static SYSCTL_LOCK: LocalLock = LocalLock::new();
/// Serialises the restores of isoprobe processes (see [`HostLock`]).
const SYSCTL_LOCK_NAME: &str = "isoprobe-sysctl-lock";

/// The file in a run directory that holds the host's values of the namespaced sysctls when the
/// run first needed them (JSON, path to value): what `isoprobe cleanup` puts back.
pub const SYSCTL_RECORD: &str = "sysctl.orig";
/// The file in a run directory to which each probe's candidate values are appended, one
/// `path<TAB>value` line each, before it writes: what tells a dead run's value from anyone else's.
pub const SYSCTL_CANDIDATES: &str = "sysctl.candidates";
/// The file in a run directory that holds the host's uts entries (hostname, domainname) while a
/// probe writes its own under the domainname lock (JSON, path to value): those are left out of
/// the baseline, as the domainname check changes the host's on purpose.
pub const SYSCTL_UTS_RECORD: &str = "sysctl-uts.orig";

/// What the harness saw of the entries a probe wrote in its own namespaces: the host's values
/// before and after, and (for a joiner) what the container it joined read. What the judge
/// compares the probe's writes with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysctlView {
    /// By path under /proc/sys.
    pub entries: BTreeMap<String, SeenOutside>,
    /// `path: error` of the host's entries that changed and could not be put back.
    pub unrestored: Vec<String>,
    /// The container a joiner joined was asked what it reads.
    pub joined: bool,
}

/// One entry of a [`SysctlView`], whitespace-normalised; `None`: no such entry (or unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenOutside {
    pub host_before: Option<String>,
    pub host_after: Option<String>,
    /// What the container a joiner joined read after the write.
    pub peer: Option<String>,
}

/// The host's namespaced sysctls for one run: the baseline, read and recorded on first use.
#[derive(Debug)]
pub struct HostSysctls {
    run_dir: PathBuf,
    root: PathBuf,
    /// Open directory trees of `root`, one per case reading at a time (see [`SysDirs`]).
    pool: Mutex<Vec<SysDirs>>,
    baseline: OnceLock<Result<BTreeMap<String, String>, String>>,
    /// The global entries whose mode lets someone write them, listed once.
    globals: OnceLock<Result<Vec<String>, String>>,
    /// The network entries of a fresh network namespace, listed once; `None` when the harness
    /// cannot make one (unprivileged).
    fresh_net: OnceLock<Option<Vec<String>>>,
    /// Each stripe's share of `globals` and of `fresh_net`, filtered once (every case takes one of
    /// the matrix's 16 or 4 stripes; filtering the 800-odd entries for each was the harness's
    /// busiest function of its own after malloc, 0.5% of a matrix run's CPU).
    global_shares: Mutex<HashMap<Option<SysctlStripe>, Vec<String>>>,
    net_shares: Mutex<HashMap<SysctlStripe, Option<Vec<String>>>>,
    /// Appends to [`SYSCTL_CANDIDATES`] one probe at a time.
    candidates: Mutex<()>,
}

/// The entries one probe is about to write: what it may write to each, and for the uts entries
/// the domainname lock and the host's values read under it. Dropped unchecked (the probe died or
/// broke the protocol), it restores what changed all the same.
#[derive(Debug)]
pub struct Writing {
    root: PathBuf,
    entries: Vec<Entry>,
    /// [`SYSCTL_UTS_RECORD`], removed once the uts entries are as recorded.
    uts_record: Option<PathBuf>,
    /// Held while a probe writes uts entries (the domainname check changes the host's).
    _domain: Option<DomainGuard>,
    checked: bool,
}

#[derive(Debug)]
struct Entry {
    path: String,
    /// The host's value (baseline, or read under the domainname lock), without its newline;
    /// `None`: no such entry on the host, nothing to compare or restore.
    original: Option<String>,
    candidates: Vec<String>,
    volatile: bool,
}

impl HostSysctls {
    pub fn new(run_dir: &Path) -> HostSysctls {
        // The host's entries a probe writes stay open for the comparison of every case (some
        // 600 per case reading at a time): as many descriptors as the hard limit allows, kept
        // out of the range a clone child takes with it.
        crate::sys::fds::long_lived_floor();
        HostSysctls::at(run_dir, Path::new(PROC_SYS))
    }

    fn at(run_dir: &Path, root: &Path) -> HostSysctls {
        HostSysctls {
            run_dir: run_dir.to_owned(),
            root: root.to_owned(),
            pool: Mutex::new(Vec::new()),
            baseline: OnceLock::new(),
            globals: OnceLock::new(),
            fresh_net: OnceLock::new(),
            global_shares: Mutex::default(),
            net_shares: Mutex::default(),
            candidates: Mutex::new(()),
        }
    }

    /// Runs `f` with an open tree of the host's /proc/sys, taken from the pool (or opened).
    fn with_dirs<T>(&self, f: impl FnOnce(&mut SysDirs) -> T) -> Result<T, String> {
        let taken = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut dirs = match taken {
            Some(d) => d,
            None => open_tree(&self.root)?,
        };
        let out = f(&mut dirs);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(dirs);
        Ok(out)
    }

    /// The host's values of every entry the table gives a kind here (but the volatile), read and
    /// recorded once, under the host lock (so that no other run's restore is half done).
    fn baseline(&self) -> Result<&BTreeMap<String, String>, String> {
        self.baseline
            .get_or_init(|| {
                let kernel = KernelRelease::running().version;
                let deadline = Instant::now() + Duration::from_secs(30);
                let _locks = take_both(&SYSCTL_LOCK, SYSCTL_LOCK_NAME, deadline, "sysctl")?;
                let values: BTreeMap<String, String> = self
                    .with_dirs(|d| owned_values(d, |f| !uts(&f.path, kernel)))??
                    .into_iter()
                    .filter_map(|(path, v)| Some((path, v.ok()?)))
                    .collect();
                write_record(&self.run_dir.join(SYSCTL_RECORD), &values)?;
                Ok(values)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The host's global entries (no namespace kind owns them here) whose mode has a write bit,
    /// of `stripe`: what a probe tests ([`ProbeCase::global_sysctls`]). Listed once per run.
    ///
    /// [`ProbeCase::global_sysctls`]: isoprobe_probes::wire::ProbeCase::global_sysctls
    pub fn global_entries(&self, stripe: Option<SysctlStripe>) -> Result<Vec<String>, String> {
        let all = self
            .globals
            .get_or_init(|| {
                let kernel = KernelRelease::running().version;
                let found = self
                    .with_dirs(|d| d.global(kernel, true))?
                    .map_err(|e| format!("failed to list the global sysctls of {}: {e}", self.root.display()))?;
                Ok(found.into_iter().filter(|f| f.writable_mode()).map(|f| f.path).collect())
            })
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(share(&self.global_shares, stripe, || {
            all.iter().filter(|p| stripe.is_none_or(|s| s.holds(p))).cloned().collect()
        }))
    }

    /// The network entries of `stripe` that a fresh network namespace has on this kernel, with
    /// the `available_*` entries that list candidates for others
    /// ([`ProbeCase::net_sysctls`]). Listed once per run, by a thread of the harness in a network
    /// namespace of its own (gone with the thread); `None` when the harness cannot make one.
    ///
    /// A probe of a native launcher's case in a fresh network namespace of its own finds the same
    /// tree; what a namespace owned by a user namespace hides is named here and passed over by
    /// the probe's open, as its listing would pass it over.
    ///
    /// [`ProbeCase::net_sysctls`]: isoprobe_probes::wire::ProbeCase::net_sysctls
    pub fn fresh_net_entries(&self, stripe: SysctlStripe) -> Option<Vec<String>> {
        let all = self.fresh_net.get_or_init(|| {
            let kernel = KernelRelease::running().version;
            let root = self.root.clone();
            std::thread::scope(|s| {
                s.spawn(move || {
                    // A thread's network namespace is its own: the process's other threads stay.
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
                    open_tree(&root).ok()?.owned_by(NsKind::Net, kernel, false).ok()
                })
                .join()
                .ok()
                .flatten()
            })
            .map(|found| found.into_iter().map(|f| f.path).collect())
        });
        let listing = |p: &String| p.rsplit('/').next().is_some_and(|n| n.contains("available_"));
        share(&self.net_shares, stripe, || {
            all.as_ref().map(|all| all.iter().filter(|p| stripe.holds(p) || listing(p)).cloned().collect())
        })
    }

    /// A probe is about to write `plan`: checks that every entry is one a namespace kind owns on
    /// this kernel, appends the candidates to the record, and (for uts entries) takes the
    /// domainname lock and reads the host's values under it. Returns the host's values (for the
    /// probe to write something else), normalised.
    pub fn begin(&self, plan: &[SysctlPlan], deadline: Instant) -> Result<(Writing, Vec<Option<String>>), String> {
        let kernel = KernelRelease::running().version;
        let baseline = self.baseline()?;
        let mut any_uts = false;
        let mut entries = Vec::new();
        for p in plan {
            let owner = sysctl::owner(&p.path, kernel).filter(|_| sysctl::plain_path(&p.path)).ok_or_else(|| {
                format!("refusing /proc/sys/{:?}: not an entry a namespace kind owns on this kernel", p.path)
            })?;
            any_uts |= owner.kind == NsKind::Uts;
            entries.push(Entry {
                path: p.path.clone(),
                original: baseline.get(&p.path).cloned(),
                candidates: p.candidates.clone(),
                volatile: owner.volatile,
            });
        }
        let domain = if any_uts { Some(domainname::lock(&self.run_dir, deadline)?) } else { None };
        let uts_record = if any_uts {
            // Read and recorded under the domainname lock, before the probe may write.
            let originals: BTreeMap<String, String> = self.with_dirs(|d| {
                let mut originals = BTreeMap::new();
                for e in entries.iter_mut().filter(|e| uts(&e.path, kernel)) {
                    e.original = read_raw(d, &e.path).ok();
                    if let Some(o) = &e.original {
                        originals.insert(e.path.clone(), o.clone());
                    }
                }
                originals
            })?;
            let record = self.run_dir.join(SYSCTL_UTS_RECORD);
            write_record(&record, &originals)?;
            Some(record)
        } else {
            None
        };
        self.append_candidates(&entries)?;
        let values = entries.iter().map(|e| e.original.as_deref().map(normalize)).collect();
        Ok((Writing { root: self.root.clone(), entries, uts_record, _domain: domain, checked: false }, values))
    }

    fn append_candidates(&self, entries: &[Entry]) -> Result<(), String> {
        let mut text = String::new();
        for e in entries.iter().filter(|e| !e.volatile && e.original.is_some()) {
            for c in &e.candidates {
                if !c.contains(['\t', '\n']) {
                    text.push_str(&format!("{}\t{c}\n", e.path));
                }
            }
        }
        let path = self.run_dir.join(SYSCTL_CANDIDATES);
        let _one = self.candidates.lock().unwrap_or_else(|e| e.into_inner());
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("failed to record the candidate sysctls in {}: {e}", path.display()))
    }

    /// The probe has written: the host's values of `paths` now (normalised, before anything is
    /// restored), and `path: error` of the changed entries that could not be put back. Every
    /// entry of `writing` that changed to one of the probe's values is put back (one written may
    /// change another).
    pub fn check(&self, mut writing: Writing, paths: &[String]) -> Result<(Vec<Option<String>>, Vec<String>), String> {
        if let Some(p) = paths.iter().find(|p| !writing.entries.iter().any(|e| e.path == **p)) {
            return Err(format!("the probe checks /proc/sys/{p}, which it did not announce"));
        }
        let (now, failed) = self.with_dirs(|d| {
            let now: Vec<Option<String>> = writing
                .entries
                .iter()
                .map(|e| d.read_kept(&e.path).ok().map(|v| v.trim_end_matches('\n').to_owned()))
                .collect();
            let failed = restore_changed(d, &writing.entries, &now);
            (now, failed)
        })?;
        writing.checked = true;
        if let Some(r) = writing.uts_record.as_ref().filter(|_| failed.is_empty()) {
            let _ = fs::remove_file(r);
        }
        for f in &failed {
            eprintln!("isoprobe: a sysctl leaked to the host and could not be put back: {f}");
        }
        let at = |p: &String| writing.entries.iter().position(|e| e.path == *p);
        let values = paths.iter().map(|p| at(p).and_then(|i| now[i].as_deref().map(normalize))).collect();
        Ok((values, failed))
    }
}

/// Puts back, under the host lock, each entry whose host value (`now`, in the entries'
/// order) differs from the original and is one of the probe's values; `path: error` of those
/// that could not be. A value that is none of them is someone else's: left alone.
fn restore_changed(dirs: &mut SysDirs, entries: &[Entry], now: &[Option<String>]) -> Vec<String> {
    let changed: Vec<&Entry> = entries
        .iter()
        .zip(now)
        .filter(|(e, now)| match (&e.original, now) {
            (Some(original), Some(now)) => !e.volatile && normalize(now) != normalize(original),
            _ => false,
        })
        .map(|(e, _)| e)
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let _locks = match take_both(&SYSCTL_LOCK, SYSCTL_LOCK_NAME, deadline, "sysctl") {
        Ok(l) => l,
        Err(e) => return changed.iter().map(|c| format!("{}: {e}", c.path)).collect(),
    };
    let mut failed = Vec::new();
    for e in changed {
        let Some(original) = &e.original else { continue };
        // Read again under the lock: another case may have put it back meanwhile.
        match read_raw(dirs, &e.path) {
            Ok(now) if e.candidates.iter().any(|c| normalize(c) == normalize(&now)) => {
                if let Err(err) = restore_one(dirs, &e.path, original) {
                    failed.push(format!("{}: {err}", e.path));
                }
            }
            _ => {}
        }
    }
    failed
}

impl Drop for Writing {
    /// A probe that never checked (it died, or broke the protocol) may have leaked all the same:
    /// what changed to one of its values is put back (the domainname lock is still held).
    fn drop(&mut self) {
        if self.checked {
            return;
        }
        let mut dirs = match open_tree(&self.root) {
            Ok(d) => d,
            Err(e) => return eprintln!("isoprobe: {e}"),
        };
        let now: Vec<Option<String>> = self.entries.iter().map(|e| read_raw(&mut dirs, &e.path).ok()).collect();
        let failed = restore_changed(&mut dirs, &self.entries, &now);
        if let Some(r) = self.uts_record.as_ref().filter(|_| failed.is_empty()) {
            let _ = fs::remove_file(r);
        }
        for e in failed {
            eprintln!("isoprobe: {e}");
        }
    }
}

/// Whether `path` is a uts entry on a kernel of version `kernel`.
fn uts(path: &str, kernel: Option<(u32, u32)>) -> bool {
    sysctl::owner(path, kernel).is_some_and(|o| o.kind == NsKind::Uts)
}

/// The /proc/sys tree at `root`, opened.
/// Writes a record of host values (entry → value) for the recovery of a run killed meanwhile.
fn write_record(record: &Path, values: &BTreeMap<String, String>) -> Result<(), String> {
    let text = serde_json::to_string(values).map_err(|e| format!("failed to encode {}: {e}", record.display()))?;
    fs::write(record, text).map_err(|e| format!("failed to write {}: {e}", record.display()))
}

/// The value `shares` holds for `key`, made by `make` the first time.
fn share<K: std::hash::Hash + Eq, V: Clone>(shares: &Mutex<HashMap<K, V>>, key: K, make: impl FnOnce() -> V) -> V {
    shares.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert_with(make).clone()
}

fn open_tree(root: &Path) -> Result<SysDirs, String> {
    nix::fcntl::open(
        root,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| {
        let dirs = SysDirs::new(fd);
        match crate::sys::fds::long_lived_floor() {
            Some(floor) => dirs.keep_fds_from(floor),
            None => dirs,
        }
    })
    .map_err(|e| format!("failed to open {}: {e}", root.display()))
}

/// Writes `original` back to `path` if the host's value differs from it, and checks that it took.
fn restore_one(dirs: &mut SysDirs, path: &str, original: &str) -> Result<(), String> {
    let now = read_raw(dirs, path).map_err(|e| format!("failed to read /proc/sys/{path}: {e}"))?;
    if normalize(&now) == normalize(original) {
        return Ok(());
    }
    dirs.write(path, original).map_err(|e| {
        format!("failed to restore /proc/sys/{path} to {original:?} (it is {:?}): {e}", normalize(&now))
    })?;
    match read_raw(dirs, path) {
        Ok(v) if normalize(&v) == normalize(original) => Ok(()),
        Ok(v) => Err(format!("restoring /proc/sys/{path} to {original:?} left it at {:?}", normalize(&v))),
        Err(e) => Err(format!("failed to read /proc/sys/{path} after restoring it: {e}")),
    }
}

/// The value of `path`, without its trailing newline.
fn read_raw(dirs: &mut SysDirs, path: &str) -> nix::Result<String> {
    dirs.read(path).map(|s| s.trim_end_matches('\n').to_owned())
}

/// What [`restore_recorded_sysctls`] did with one recorded entry that is not at its original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedSysctl {
    /// It held a value the dead run's probes might have written, and is the original again (or
    /// would be, in a dry run).
    Restored { path: String, from: String, to: String },
    /// It holds neither the original nor a value the probes might have written: someone else set
    /// it since; left alone.
    NotOurs { path: String, now: String, original: String },
}

/// Puts back the host's sysctls a dead run recorded in `run_dir` that show a value its probes may
/// have written (a leak the run did not live to restore). Holds the host-wide sysctl lock
/// meanwhile; the record is removed unless `dry_run`.
pub fn restore_recorded_sysctls(run_dir: &Path, dry_run: bool) -> Result<Vec<RecordedSysctl>, String> {
    restore_recorded_sysctls_in(run_dir, Path::new(PROC_SYS), dry_run)
}

fn restore_recorded_sysctls_in(run_dir: &Path, root: &Path, dry_run: bool) -> Result<Vec<RecordedSysctl>, String> {
    let records = [run_dir.join(SYSCTL_RECORD), run_dir.join(SYSCTL_UTS_RECORD)];
    let mut originals: BTreeMap<String, String> = BTreeMap::new();
    let mut any = false;
    for record in &records {
        let text = match fs::read_to_string(record) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("failed to read {}: {e}", record.display())),
        };
        let map: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| format!("failed to parse {}: {e}", record.display()))?;
        originals.extend(map);
        any = true;
    }
    if !any {
        return Ok(Vec::new());
    }
    let mut candidates: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let listed = fs::read_to_string(run_dir.join(SYSCTL_CANDIDATES)).unwrap_or_default();
    for (path, value) in listed.lines().filter_map(|l| l.split_once('\t')) {
        candidates.entry(path).or_default().insert(normalize(value));
    }
    let kernel = KernelRelease::running().version;
    let _lock =
        HostLock::take(SYSCTL_LOCK_NAME, Instant::now() + Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let mut dirs = open_tree(root)?;
    let mut out = Vec::new();
    for (path, original) in originals {
        // Only what the table gives a kind: a tampered record names nothing else.
        if !sysctl::plain_path(&path) || (root == Path::new(PROC_SYS) && sysctl::owner(&path, kernel).is_none()) {
            continue;
        }
        let Ok(now) = read_raw(&mut dirs, &path) else { continue };
        let (now, normal) = (normalize(&now), normalize(&original));
        if now == normal {
            continue;
        }
        if candidates.get(path.as_str()).is_some_and(|c| c.contains(&now)) {
            if !dry_run {
                restore_one(&mut dirs, &path, &original)?;
            }
            out.push(RecordedSysctl::Restored { path, from: now, to: normal });
        } else {
            out.push(RecordedSysctl::NotOurs { path, now, original: normal });
        }
    }
    if !dry_run {
        for record in &records {
            match fs::remove_file(record) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("failed to remove {}: {e}", record.display()));
                }
                _ => {}
            }
        }
        let _ = fs::remove_file(run_dir.join(SYSCTL_CANDIDATES));
    }
    Ok(out)
}

/// The values under `root` of every entry the table gives a kind on this kernel that `keep`
/// keeps, but the volatile (each read, or the kind of error reading it gave).
#[allow(clippy::type_complexity)]
fn owned_values(
    dirs: &mut SysDirs,
    keep: impl Fn(&sysctl::Found) -> bool,
) -> Result<BTreeMap<String, nix::Result<String>>, String> {
    let kernel = KernelRelease::running().version;
    let mut values = BTreeMap::new();
    for kind in sysctl::KINDS {
        let found = dirs.owned_by(kind, kernel, true).map_err(|e| format!("failed to list the {kind} sysctls: {e}"))?;
        for f in found.into_iter().filter(|f| !sysctl::volatile(&f.path) && keep(f)) {
            let v = read_raw(dirs, &f.path);
            values.insert(f.path, v);
        }
    }
    Ok(values)
}

/// `path = value` for every entry a namespace kind owns on the host (on this kernel) that a probe
/// may write: with a write bit in its mode, not volatile, and not a uts entry (the snapshot has
/// the hostname and domainname of its own). An unreadable one shows its error.
pub fn host_values() -> BTreeSet<String> {
    let kernel = KernelRelease::running().version;
    let uts = |p: &str| sysctl::owner(p, kernel).is_some_and(|o| o.kind == NsKind::Uts);
    match open_tree(Path::new(PROC_SYS)).and_then(|mut d| owned_values(&mut d, |f| f.writable_mode() && !uts(&f.path)))
    {
        Ok(values) => values
            .into_iter()
            .map(|(path, v)| match v {
                Ok(v) => format!("{path} = {}", normalize(&v)),
                Err(e) => format!("{path} <unreadable: {e}>"),
            })
            .collect(),
        Err(e) => BTreeSet::from([format!("<{e}>")]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("isoprobe-test-sysctl-{tag}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// A fake /proc/sys in a directory.
    fn fake_sys(dir: &Path) -> PathBuf {
        let root = dir.join("sys");
        fs::create_dir_all(root.join("net/core")).unwrap();
        fs::write(root.join("net/core/somaxconn"), "4096\n").unwrap();
        fs::write(root.join("net/core/other"), "1\n").unwrap();
        root
    }

    fn plan(entries: &[(&str, &[&str])]) -> Vec<SysctlPlan> {
        entries
            .iter()
            .map(|(p, c)| SysctlPlan { path: p.to_string(), candidates: c.iter().map(|s| s.to_string()).collect() })
            .collect()
    }

    /// A leak: the host's value changed to one the probe wrote. The check reports it and puts the
    /// original back at once; a change to a value the probe would not write is someone else's and
    /// is left alone. The run's record (baseline and candidates) is what a dead run's recovery
    /// puts back from, and only what a probe may have written.
    #[test]
    fn a_leaked_value_is_put_back_at_once_and_a_dead_runs_record_only_its_own() {
        let dir = temp_dir("leak");
        let root = fake_sys(&dir);
        let set = |p: &str, v: &str| fs::write(root.join(p), format!("{v}\n")).unwrap();
        let get = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        let host = HostSysctls::at(&dir, &root);
        let deadline = Instant::now() + Duration::from_secs(5);
        let p = plan(&[("net/core/somaxconn", &["4097", "4095"]), ("net/core/other", &["2"])]);
        let (writing, values) = host.begin(&p, deadline).unwrap();
        assert_eq!(values, vec![Some("4096".to_owned()), Some("1".to_owned())]);
        assert!(dir.join(SYSCTL_RECORD).exists() && dir.join(SYSCTL_CANDIDATES).exists());
        set("net/core/somaxconn", "4097"); // the probe's value, on the host: a leak
        set("net/core/other", "7"); // someone else's
        let (now, unrestored) = host.check(writing, &["net/core/somaxconn".to_owned()]).unwrap();
        assert_eq!(now, vec![Some("4097".to_owned())], "the host's value as the leak left it");
        assert!(unrestored.is_empty(), "{unrestored:?}");
        assert_eq!(get("net/core/somaxconn"), "4096\n", "put back");
        assert_eq!(get("net/core/other"), "7\n", "not a value the probe would write: left alone");
        // A probe that never checks (it died): its leak is put back when its writing is dropped.
        let (writing, _) = host.begin(&p, deadline).unwrap();
        set("net/core/somaxconn", "4095");
        drop(writing);
        assert_eq!(get("net/core/somaxconn"), "4096\n");
        // A dead run's record: only a value one of its probes may have written is put back.
        set("net/core/somaxconn", "4097");
        let found = restore_recorded_sysctls_in(&dir, &root, true).unwrap();
        assert_eq!(found.len(), 2, "a dry run says what it would do: {found:?}");
        assert_eq!(get("net/core/somaxconn"), "4097\n", "and changes nothing");
        let found = restore_recorded_sysctls_in(&dir, &root, false).unwrap();
        assert_eq!(
            found,
            vec![
                RecordedSysctl::NotOurs { path: "net/core/other".into(), now: "7".into(), original: "1".into() },
                RecordedSysctl::Restored { path: "net/core/somaxconn".into(), from: "4097".into(), to: "4096".into() },
            ]
        );
        assert_eq!(get("net/core/somaxconn"), "4096\n");
        assert!(!dir.join(SYSCTL_RECORD).exists(), "the record is removed once used");
        assert_eq!(restore_recorded_sysctls_in(&dir, &root, false).unwrap(), vec![]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_table_entries_are_written() {
        let dir = temp_dir("refuse");
        let host = HostSysctls::at(&dir, &fake_sys(&dir));
        let deadline = Instant::now() + Duration::from_secs(5);
        for bad in ["kernel/threads-max", "net/../kernel/threads-max", "/etc/passwd"] {
            let err = host.begin(&plan(&[(bad, &["1"])]), deadline).unwrap_err();
            assert!(err.contains("refusing"), "{bad}: {err}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The network entries handed to a probe are those of a fresh network namespace, listed in
    /// one of the harness's own: of the stripe, with the `available_*` lists, the loopback's
    /// entries there and none of a host device backed by hardware (never in a new namespace; a
    /// virtual one, such as a fallback tunnel, may be in every namespace). The namespace goes with
    /// its thread.
    #[test]
    fn the_network_entries_are_a_fresh_namespaces() {
        if !nix::unistd::geteuid().is_root() {
            assert!(!crate::requirement::expected_from_env().iter().any(|e| e == "root"), "ISOPROBE_EXPECT has root");
            eprintln!("skipped: needs root (a network namespace of the harness's own)");
            return;
        }
        // The listing writes nothing to the run directory: none is made (an isoprobe-named one
        // would show in a concurrent suite's host snapshot).
        let sysctls = HostSysctls::new(&std::env::temp_dir());
        let own = |p: &str| nix::sys::stat::stat(p).map(|s| s.st_ino);
        let before = own("/proc/self/ns/net").unwrap();
        let Some(all) = sysctls.fresh_net_entries(SysctlStripe { index: 0, of: 0 }) else {
            assert!(!crate::requirement::expected_from_env().iter().any(|e| e == "root"), "ISOPROBE_EXPECT has root");
            eprintln!("skipped: a network namespace of the harness's own could not be made or listed here");
            return;
        };
        assert_eq!(own("/proc/self/ns/net").unwrap(), before, "the calling thread's namespace is unchanged");
        assert!(all.iter().any(|p| p == "net/ipv4/conf/lo/forwarding"), "{all:?}");
        assert!(all.iter().all(|p| p.starts_with("net/")), "{all:?}");
        let devices = |name: &str| all.iter().any(|p| p.starts_with(&format!("net/ipv4/conf/{name}/")));
        assert!(["all", "default", "lo"].into_iter().all(devices), "{all:?}");
        for dev in fs::read_dir("/sys/class/net").unwrap().flatten() {
            let name = dev.file_name().to_string_lossy().into_owned();
            if dev.path().join("device").exists() {
                assert!(!devices(&name), "the host's {name} in a fresh namespace: {all:?}");
            }
        }
        let stripe = SysctlStripe { index: 3, of: 16 };
        let mine = sysctls.fresh_net_entries(stripe).unwrap();
        assert!(!mine.is_empty() && mine.len() < all.len() / 4, "{} of {}", mine.len(), all.len());
        for p in &mine {
            assert!(all.contains(p) && (stripe.holds(p) || p.contains("available_")), "{p}");
        }
        let held = all.iter().filter(|p| stripe.holds(p)).count();
        assert_eq!(mine.iter().filter(|p| stripe.holds(p)).count(), held);
    }

    /// The host's values for the snapshot: the table's entries that a probe may write, read twice
    /// the same.
    #[test]
    fn the_host_values_are_stable_and_leave_out_the_volatile() {
        let a = host_values();
        assert!(a.iter().all(|l| !l.starts_with("kernel/ns_last_pid")), "{a:?}");
        assert!(a.iter().any(|l| l.starts_with("kernel/shmmax = ")), "{a:?}");
        assert_eq!(a, host_values());
    }
}
