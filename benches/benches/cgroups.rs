//! Cgroups: what creating, entering and removing a cgroup costs, on every mounted hierarchy
//! (v1 controllers and cgroup2).
//!
//! Per hierarchy `<h>` (`v1-<controllers>` or `v2`), under a directory of our own,
//! `<root>/isoprobe-bench-<pid>-<token>`, removed at the end with everything in it:
//! - `mkdir/<h>`, `rmdir/<h>`: one cgroup directory;
//! - `attach/<h>`: moving a running process (a holder we started) between two cgroups, one write
//!   to cgroup.procs;
//! - `clone_then_procs/<h>`: clone3 and then writing the child's pid to cgroup.procs;
//! - `clone_into_cgroup/v2`: clone3 with CLONE_INTO_CGROUP (cgroup2 only), to compare with the
//!   case above;
//! - `lifecycle_reuse/<h>` and `lifecycle_create/<h>`: a whole short-lived process placed in a
//!   cgroup that exists, versus in one made for it and removed after it (v2: CLONE_INTO_CGROUP
//!   and a child that exits at once; v1: a holder moved through cgroup.procs and released).
//!
//! The cases of every hierarchy are sampled in rounds (`Group::bench_interleaved`), side by side.
//!
//! Named v1 hierarchies without controllers (systemd's `name=systemd`) are left out: with nothing
//! to account, they measure the same cgroup core as the other cases. Needs write access to the
//! hierarchy roots (root); skips with the reason otherwise.

#![deny(unsafe_code)]

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use isoprobe_benches::primitives::{self, Action, Call, Holder, SharedPage};
use isoprobe_benches::{BenchRun, Group, Profile};

const PROFILE: Profile = Profile::PerOp { full: 400, quick: 10 };

/// One mounted hierarchy.
#[derive(Debug)]
struct Hierarchy {
    label: String,
    root: PathBuf,
    v2: bool,
    cpuset: bool,
    /// The harness's view of it (for the removal of our directory).
    layout: &'static isoprobe_harness::cgroup::Hierarchy,
}

/// The hierarchies of the host's cgroup layout (the harness's one detection of it), without the
/// named v1 hierarchies (see the module docs).
fn hierarchies() -> Result<Vec<Hierarchy>, String> {
    use isoprobe_harness::cgroup::Version;
    let layout = isoprobe_harness::cgroup::host_layout().map_err(|e| e.to_string())?;
    Ok(layout
        .hierarchies
        .iter()
        .filter(|h| h.version == Version::V2 || !h.controllers.is_empty())
        .map(|h| Hierarchy {
            label: match h.version {
                Version::V2 => "v2".into(),
                Version::V1 => format!("v1-{}", h.controllers.join("+")),
            },
            root: h.mount_point.clone(),
            v2: h.version == Version::V2,
            cpuset: h.controllers.iter().any(|c| c == "cpuset"),
            layout: h,
        })
        .collect())
}

/// rmdir right after the cgroup's last task exited, as a runtime removes a container's cgroup:
/// the kernel may count the exited task for a moment longer (EBUSY), and the retry is part of
/// what is measured.
fn rmdir(path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(path) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(100))
            }
            r => return r,
        }
    }
}

/// Our directory in one hierarchy; removed (children first, drained) on drop.
#[derive(Debug)]
struct Base {
    path: PathBuf,
    next: std::cell::Cell<u64>,
    hierarchy: &'static isoprobe_harness::cgroup::Hierarchy,
}

impl Base {
    fn create(h: &Hierarchy) -> io::Result<Base> {
        let path = h.root.join(format!(
            "{}-bench-{}-{}",
            isoprobe_harness::names::PREFIX,
            std::process::id(),
            isoprobe_harness::names::token()
        ));
        fs::create_dir(&path)?;
        let base = Base { path, next: std::cell::Cell::new(0), hierarchy: h.layout };
        if h.cpuset {
            // A v1 cpuset cgroup starts with no CPUs and no memory nodes and takes no task until
            // it has both: copy the root's, and let our children inherit them.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                fs::write(base.path.join(f), fs::read_to_string(h.root.join(f))?.trim())?;
            }
            fs::write(base.path.join("cgroup.clone_children"), "1")?;
        }
        Ok(base)
    }

    /// A fresh child path (not created).
    fn fresh(&self) -> PathBuf {
        self.next.set(self.next.get() + 1);
        self.path.join(format!("c{}", self.next.get()))
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        let Ok(rel) = self.path.strip_prefix(&self.hierarchy.mount_point) else { return };
        for e in isoprobe_harness::cgroup::remove::remove_tree(self.hierarchy, rel, Duration::from_secs(2)) {
            eprintln!("isoprobe-bench: {e}");
        }
    }
}

fn write_procs(cgroup: &Path, pid: i32) -> io::Result<()> {
    fs::write(cgroup.join("cgroup.procs"), pid.to_string())
}

/// What one hierarchy's cases use, made before the group and kept until it has finished (its
/// cases run then): our directory, two cgroups to move a holder between, one to start children
/// in (and its directory fd on cgroup2), and the holder.
struct Prepared {
    label: String,
    v2: bool,
    base: Base,
    a: PathBuf,
    b: PathBuf,
    p: PathBuf,
    p_dir: Option<File>,
    holder: Option<Holder>,
}

fn prepare(g: &mut Group<'_>, h: &Hierarchy) -> Option<Prepared> {
    let label = h.label.clone();
    let base = match Base::create(h) {
        Ok(base) => base,
        Err(e) => {
            g.fail("mkdir", &label, format!("create our cgroup under {}: {e}", h.root.display()));
            return None;
        }
    };
    let (a, b, p) = (base.fresh(), base.fresh(), base.fresh());
    for d in [&a, &b, &p] {
        if let Err(e) = fs::create_dir(d) {
            g.fail("attach", &label, format!("create {}: {e}", d.display()));
            return None;
        }
    }
    let holder = match Holder::spawn(Call::Clone3, 0, None) {
        Ok((holder, _)) => Some(holder),
        Err(e) => {
            g.fail("attach", &label, format!("start a holder: {e}"));
            None
        }
    };
    let p_dir = match h.v2 {
        true => match File::open(&p) {
            Ok(f) => Some(f),
            Err(e) => {
                g.fail("clone_into_cgroup", &label, format!("open {}: {e}", p.display()));
                None
            }
        },
        false => None,
    };
    Some(Prepared { label, v2: h.v2, base, a, b, p, p_dir, holder })
}

fn main() {
    isoprobe_probes::multicall();
    let mut run = BenchRun::new("cgroups");
    let page = SharedPage::new(1).expect("failed to map the shared page");
    let hs = hierarchies();
    // Prepared before the group (its interleaved cases run when it finishes), in a first group
    // that only records failures.
    let mut setup = run.group("cgroups");
    let hs = match hs {
        Ok(hs) => hs,
        Err(e) => {
            setup.fail("hierarchies", "", e);
            Vec::new()
        }
    };
    if hs.is_empty() {
        setup.skip("mkdir", "", "no cgroup hierarchy is mounted");
    }
    let mut prepared = Vec::new();
    for h in &hs {
        if let Err(e) = nix::unistd::access(&h.root, nix::unistd::AccessFlags::W_OK) {
            for op in ["mkdir", "rmdir", "attach", "clone_then_procs", "lifecycle_reuse", "lifecycle_create"] {
                setup.skip(op, &h.label, format!("needs write access to {} (root): {e}", h.root.display()));
            }
            continue;
        }
        prepared.extend(prepare(&mut setup, h));
    }
    setup.finish();
    let mut g = run.group("cgroups");
    for h in &prepared {
        hierarchy_cases(&mut g, h, &page);
    }
    g.finish();
    let mut released = Vec::new();
    for h in prepared {
        if let Some(holder) = h.holder
            && let Err(e) = holder.release()
        {
            released.push(format!("{}: release the holder: {e}", h.label));
        }
        drop(h.p_dir);
        drop(h.base);
    }
    run.finish();
    if !released.is_empty() {
        eprintln!("isoprobe-bench cgroups: FAILED: {released:?}");
        std::process::exit(1);
    }
}

fn hierarchy_cases<'a>(g: &mut Group<'a>, h: &'a Prepared, page: &'a SharedPage) {
    let label = h.label.as_str();
    let base = &h.base;
    g.bench_interleaved("mkdir", label, PROFILE, move || {
        let p = base.fresh();
        let (r, t) = primitives::timed(|| fs::create_dir(&p));
        r?;
        rmdir(&p)?;
        Ok(t)
    });
    g.bench_interleaved("rmdir", label, PROFILE, move || {
        let p = base.fresh();
        fs::create_dir(&p)?;
        let (r, t) = primitives::timed(|| rmdir(&p));
        r?;
        Ok(t)
    });
    if let Some(holder) = &h.holder {
        let pid = holder.pid();
        let mut into_b = true;
        g.bench_interleaved("attach", label, PROFILE, move || {
            let target = if into_b { &h.b } else { &h.a };
            into_b = !into_b;
            let (r, t) = primitives::timed(|| write_procs(target, pid));
            r?;
            Ok(t)
        });
    }
    let p = &h.p;
    g.bench_interleaved("clone_then_procs", label, PROFILE, move || {
        let (holder, clone_t) = Holder::spawn(Call::Clone3, 0, None)?;
        let (r, t) = primitives::timed(|| write_procs(p, holder.pid()));
        r?;
        holder.release()?;
        Ok(clone_t + t)
    });
    if h.v2 {
        if let Some(dir) = &h.p_dir {
            let fd = dir.as_fd();
            g.bench_interleaved("clone_into_cgroup", label, PROFILE, move || {
                let (holder, t) = Holder::spawn(Call::Clone3, 0, Some(fd))?;
                holder.release()?;
                Ok(t)
            });
            g.bench_interleaved("lifecycle_reuse", label, PROFILE, move || {
                let (r, t) =
                    primitives::timed(|| primitives::spawn_and_wait(Call::Clone3, 0, Some(fd), &Action::Exit, page));
                r?;
                Ok(t)
            });
        }
        g.bench_interleaved("lifecycle_create", label, PROFILE, move || {
            let c = base.fresh();
            let (r, t) = primitives::timed(|| -> io::Result<()> {
                fs::create_dir(&c)?;
                let dir = File::open(&c)?;
                primitives::spawn_and_wait(Call::Clone3, 0, Some(dir.as_fd()), &Action::Exit, page)?;
                drop(dir);
                rmdir(&c)
            });
            r?;
            Ok(t)
        });
    } else {
        g.bench_interleaved("lifecycle_reuse", label, PROFILE, move || {
            let (r, t) = primitives::timed(|| -> io::Result<()> {
                let (holder, _) = Holder::spawn(Call::Clone3, 0, None)?;
                write_procs(p, holder.pid())?;
                holder.release()
            });
            r?;
            Ok(t)
        });
        g.bench_interleaved("lifecycle_create", label, PROFILE, move || {
            let c = base.fresh();
            let (r, t) = primitives::timed(|| -> io::Result<()> {
                fs::create_dir(&c)?;
                let (holder, _) = Holder::spawn(Call::Clone3, 0, None)?;
                write_procs(&c, holder.pid())?;
                holder.release()?;
                rmdir(&c)
            });
            r?;
            Ok(t)
        });
    }
}
