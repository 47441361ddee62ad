//! The mount cases (issue 15): the container side of a propagation case in init, and the
//! observations of propagation both ways, of a bind of the propagation mount point, and of
//! undoing a mount inherited from the host (locked in a mount namespace owned by a less privileged
//! user namespace: mount_namespaces(7)).
//!
//! Every mount and unmount here is in the probe's own mount namespace; in the harness's, each
//! step is replaced by the interlock's form of it, which the kernel refuses after its permission
//! check and before any change (see [`Attempt::Refused`]). It never touches a mount outside the
//! case's own mount points.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::wire::{
    Attempt, COVERED, FROM_HOST, FROM_PROBE, Fact, HostQuestion, MountSentinels, NsId, PropagationPlan, SysResult,
    fact_key,
};

use super::channel::Channel;
use super::error::{Context, ProbeError};
use super::observe::{INVALID_PROPAGATION, expect_ack, expect_seen};

/// umount2(2) flags the kernel refuses with EINVAL after its permission checks (`may_mount`,
/// `can_umount`: EPERM) and before anything changes: MNT_EXPIRE with MNT_DETACH (do_umount).
const INVALID_UMOUNT: MntFlags = MntFlags::MNT_EXPIRE.union(MntFlags::MNT_DETACH);

/// Init, in a new mount namespace: makes every mount private, one at a time, but the plan's
/// mount point (and what is under it), which then gets the plan's mode. `/` cannot be made
/// recursively private first: that would cut the copy of the propagation mount point from the
/// host's peer group too. Fails if any other mount is left shared (a shadowed one the loop could
/// not reach by its path): the probe's own mounts must never propagate to the host.
///
/// Until the loop reaches them, the copies of the host's shared mounts still receive what is
/// mounted in their peers: another mount case of the run, beside this one, mounts under its own
/// propagation mount point, and this namespace's copy of that point gains a shared mount the
/// first reading of the table did not list. So the table is read again until no mount but the
/// plan's is shared, making private what arrived meanwhile, up to [`PRIVATE_READINGS`] readings.
pub fn private_but(plan: &PropagationPlan, steps: &mut Vec<String>) -> Result<(), ProbeError> {
    let read = || crate::text::read("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into());
    let make_private = |point: &str| mount(None::<&str>, point, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>);
    let done = privatize_all_but(Path::new(&plan.mount), read, make_private)?;
    if !done.shared.is_empty() {
        return Err(ProbeError::Protocol(format!(
            "mounts still shared after making every one but {} private ({} readings of the table): {} (not made \
             private: {})",
            plan.mount,
            done.readings,
            done.shared.join(", "),
            done.left.join(", ")
        )));
    }
    let flags = MsFlags::from_bits_retain(plan.mode.ms_flag());
    mount(None::<&str>, plan.mount.as_str(), None::<&str>, flags, None::<&str>)
        .ctx(|| format!("make {} {}", plan.mount, plan.mode))?;
    steps.push(format!("made {} mounts private, all but {} (now {})", done.made, plan.mount, plan.mode));
    Ok(())
}

/// At most this many readings of the mount table in [`privatize_all_but`]: each after the second
/// is owed to a mount that propagated in meanwhile, and once every copy of a shared mount is
/// private nothing more arrives, so a few suffice.
const PRIVATE_READINGS: usize = 8;

/// What [`privatize_all_but`] came to.
#[derive(Debug, PartialEq, Eq)]
struct Privatized {
    /// Mounts made private.
    made: usize,
    /// Mounts that could not be, with the error.
    left: Vec<String>,
    /// Mounts (not under `keep`) still shared at the last reading: none, unless something failed
    /// or mounts kept arriving.
    shared: Vec<String>,
    /// Readings of the table.
    readings: usize,
}

/// Makes private, with `make_private`, every mount of the table `read` gives that is not under
/// `keep` (a slave too); then reads the table again and makes private the shared ones that
/// arrived meanwhile, until none is left, a mount could not be made private, or
/// [`PRIVATE_READINGS`] readings.
///
/// A mount can also leave meanwhile: another mount case's probe unmounts what it mounted under
/// its own propagation mount point, and the unmount propagates to this copy as the mount did. The
/// kernel then refuses the change with EINVAL (the path is no mount's root any more:
/// `do_change_type`), which for a mount still there means it cannot be changed. So an EINVAL
/// counts as a failure only when the next reading still lists the mount point; one it no longer
/// lists had gone (seen once in some 70 matrix runs at `-j 2`, session 32: the other case's
/// `from-host` and `from-probe` mounts came and went between two readings).
fn privatize_all_but(
    keep: &Path,
    mut read: impl FnMut() -> Result<String, ProbeError>,
    mut make_private: impl FnMut(&str) -> nix::Result<()>,
) -> Result<Privatized, ProbeError> {
    let others = |table: &str| -> Vec<(String, Vec<String>)> {
        mount_points(table).into_iter().filter(|(p, _)| !Path::new(p).starts_with(keep)).collect()
    };
    let mut done = Privatized { made: 0, left: Vec::new(), shared: Vec::new(), readings: 1 };
    let mut todo: Vec<String> = others(&read()?).into_iter().map(|(p, _)| p).collect();
    loop {
        // Refused with EINVAL: gone, or a failure if the next reading still lists it.
        let mut no_root = Vec::new();
        for point in todo {
            match make_private(&point) {
                Ok(()) => done.made += 1,
                Err(nix::errno::Errno::EINVAL) => no_root.push(point),
                Err(e) => done.left.push(format!("{point}: {e}")),
            }
        }
        done.readings += 1;
        let table = others(&read()?);
        done.left.extend(
            no_root
                .into_iter()
                .filter(|point| table.iter().any(|(p, _)| p == point))
                .map(|point| format!("{point}: {}", nix::errno::Errno::EINVAL)),
        );
        done.shared = table
            .into_iter()
            .filter(|(_, tags)| tags.iter().any(|t| t.starts_with("shared:")))
            .map(|(p, _)| p)
            .collect();
        if done.shared.is_empty() || !done.left.is_empty() || done.readings == PRIVATE_READINGS {
            return Ok(done);
        }
        todo = done.shared.clone();
    }
}

/// The mount points of a mountinfo table (proc(5)), unescaped, with their optional fields
/// (`shared:N`, `master:N`, `unbindable`).
fn mount_points(table: &str) -> Vec<(String, Vec<String>)> {
    table
        .lines()
        .filter_map(|line| {
            let (left, _) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let point = crate::mountinfo::unescape(fields.get(4)?);
            Some((point, fields.iter().skip(6).map(|s| (*s).to_owned()).collect()))
        })
        .collect()
}

/// One observation of [`observe`].
type Step<'a> = &'a dyn Fn(&mut Channel) -> Result<Fact, ProbeError>;

/// The mount case's observations, each under its fact key; stops after a protocol error (the
/// conversation is over then). `shared`: the probe's mount namespace when it is the harness's.
pub fn observe(
    ch: &mut Channel,
    m: &MountSentinels,
    token: &str,
    shared: Option<NsId>,
) -> Vec<(String, Result<Fact, ProbeError>)> {
    let mut out = Vec::new();
    let steps: [(&str, Step<'_>); 4] = [
        (fact_key::PROPAGATION_IN, &|ch| propagation_in(ch, m, token)),
        (fact_key::PROPAGATION_OUT, &|ch| propagation_out(ch, m, shared)),
        (fact_key::BIND_PROPAGATION, &|_| Ok(bind_propagation(m, shared))),
        (fact_key::INHERITED_MOUNT, &|_| Ok(inherited_mount(m, shared))),
    ];
    for (key, step) in steps {
        let r = step(ch);
        let stop = matches!(r, Err(ProbeError::Protocol(_)));
        out.push((key.to_owned(), r));
        if stop {
            break;
        }
    }
    out
}

/// The host mounts a tmpfs holding `token` on its propagation mount point's [`FROM_HOST`]; does
/// the probe's copy show it?
fn propagation_in(ch: &mut Channel, m: &MountSentinels, token: &str) -> Result<Fact, ProbeError> {
    expect_ack(ch.ask(HostQuestion::PropagationMount)?, "mount on the host's propagation mount point")?;
    let path = format!("{}/{FROM_HOST}/marker", m.propagation);
    let seen = crate::text::read(&path);
    // The host answers after checking that its mount was there all the while the probe looked.
    expect_ack(ch.ask(HostQuestion::PropagationUnmount)?, "unmount from the host's propagation mount point")?;
    let (visible, detail) = match seen {
        Ok(text) if text.trim() == token => (true, format!("{path} holds the host's token")),
        Ok(text) => (false, format!("{path} holds {:?}, not the host's token", text.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (false, format!("{path}: {e}")),
        Err(e) => return Err(ProbeError::Io { what: format!("read {path}"), source: e }),
    };
    Ok(Fact::PropagationIn { visible, detail })
}

/// The probe mounts a tmpfs on its copy's [`FROM_PROBE`]; does the host see a mount there?
fn propagation_out(ch: &mut Channel, m: &MountSentinels, shared: Option<NsId>) -> Result<Fact, ProbeError> {
    let target = format!("{}/{FROM_PROBE}", m.propagation);
    let attempt = match shared {
        Some(shared) => {
            let probe = mount(None::<&str>, target.as_str(), None::<&str>, INVALID_PROPAGATION, None::<&str>);
            Attempt::Refused { shared, probe: probe.into() }
        }
        None => {
            let r = mount(Some("isoprobe"), target.as_str(), Some("tmpfs"), MsFlags::empty(), Some("size=16k"));
            Attempt::Made { result: r.into() }
        }
    };
    let asked = ch.ask(HostQuestion::PropagationOwnVisible);
    if matches!(attempt, Attempt::Made { result: SysResult::Ok }) {
        // An unmount propagates as the mount did.
        umount2(target.as_str(), MntFlags::MNT_DETACH).ctx(|| format!("unmount {target}"))?;
    }
    let host_saw = expect_seen(asked?, "check the probe's propagation mount")?;
    Ok(Fact::PropagationOut { attempt, host_saw })
}

/// A bind of the probe's copy of the propagation mount point: refused with EINVAL when it is
/// unbindable. In the harness's mount namespace, the bind onto a file (EINVAL when unbindable,
/// ENOTDIR when not, EPERM without the capability; nothing is mounted either way).
fn bind_propagation(m: &MountSentinels, shared: Option<NsId>) -> Fact {
    let source = Some(m.propagation.as_str());
    let bind = |target: &str| mount(source, target, None::<&str>, MsFlags::MS_BIND, None::<&str>);
    let attempt = match shared {
        Some(shared) => {
            let probe = bind(&m.bind_file);
            if probe.is_ok() {
                // Not expected of any kernel; leave nothing behind all the same.
                let _ = umount2(m.bind_file.as_str(), MntFlags::MNT_DETACH);
            }
            Attempt::Refused { shared, probe: probe.into() }
        }
        None => {
            let r = bind(&m.bind_target);
            if r.is_ok() {
                let _ = umount2(m.bind_target.as_str(), MntFlags::MNT_DETACH);
            }
            Attempt::Made { result: r.into() }
        }
    };
    Fact::BindPropagation { attempt }
}

/// Undoes the host's ro,nosuid,nodev,noexec mount in the probe's view: a bind remount with none
/// of those flags (per mount: the host's superblock is untouched), then an unmount, and looks for
/// the file it covered. Locked mounts refuse both (EPERM, EINVAL).
fn inherited_mount(m: &MountSentinels, shared: Option<NsId>) -> Fact {
    let locked = m.locked.as_str();
    match shared {
        Some(shared) => {
            let remount = mount(None::<&str>, locked, None::<&str>, INVALID_PROPAGATION, None::<&str>);
            let unmount = umount2(locked, INVALID_UMOUNT);
            Fact::InheritedMount {
                remount: Attempt::Refused { shared, probe: remount.into() },
                unmount: Attempt::Refused { shared, probe: unmount.into() },
                covered_seen: false,
            }
        }
        None => {
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
            let remount: SysResult = mount(None::<&str>, locked, None::<&str>, flags, None::<&str>).into();
            let unmount: SysResult = umount2(locked, MntFlags::MNT_DETACH).into();
            let covered_seen = unmount.is_ok() && Path::new(locked).join(COVERED).exists();
            Fact::InheritedMount {
                remount: Attempt::Made { result: remount },
                unmount: Attempt::Made { result: unmount },
                covered_seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_come_with_their_optional_fields() {
        let t = "36 35 98:0 /mnt1 /mnt\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root rw\n\
                 41 31 0:38 / /sys rw - sysfs sysfs rw\n";
        let m = mount_points(t);
        assert_eq!(m[0], ("/mnt dir".to_owned(), vec!["master:1".to_owned(), "shared:2".to_owned()]));
        assert_eq!(m[1], ("/sys".to_owned(), vec![]));
    }

    /// A mountinfo table of `(point, optional fields)`, one tmpfs each.
    fn table(mounts: &[(&str, &str)]) -> String {
        mounts
            .iter()
            .enumerate()
            .map(|(id, (point, tags))| format!("{id} 1 0:{id} / {point} rw {tags} - tmpfs tmpfs rw\n"))
            .collect()
    }

    /// Runs [`privatize_all_but`] on the tables `readings` in turn (the last again if it reads
    /// more), with a kernel that keeps the mounts' tags (a scripted table stands for what
    /// arrived); returns its result and the mounts made private, in order.
    fn privatize(readings: &[String], refuse: &[&str]) -> (Privatized, Vec<String>) {
        let mut next = readings.iter();
        let mut last = None;
        let mut calls = Vec::new();
        let done = privatize_all_but(
            Path::new("/run/case/prop"),
            || {
                last = next.next().or(last);
                Ok(last.expect("a reading").clone())
            },
            |p| {
                calls.push(p.to_owned());
                if refuse.contains(&p) { Err(nix::errno::Errno::EINVAL) } else { Ok(()) }
            },
        )
        .expect("reads never fail here");
        (done, calls)
    }

    #[test]
    fn a_mount_that_propagates_in_meanwhile_is_made_private_at_the_next_reading() {
        let first = table(&[("/", "shared:1"), ("/run/case/prop", "shared:7"), ("/tmp", "master:1")]);
        // Another mount case's host side mounted under its own point, copied here as a peer.
        let arrived = table(&[
            ("/", ""),
            ("/run/case/prop", "shared:7"),
            ("/tmp", ""),
            ("/run/other/prop/from-host", "shared:9"),
        ]);
        let settled =
            table(&[("/", ""), ("/run/case/prop", "shared:7"), ("/tmp", ""), ("/run/other/prop/from-host", "")]);
        let (done, calls) = privatize(&[first, arrived, settled], &[]);
        assert_eq!(
            calls,
            ["/", "/tmp", "/run/other/prop/from-host"],
            "every mount but the kept one, then what arrived"
        );
        assert_eq!(done, Privatized { made: 3, left: vec![], shared: vec![], readings: 3 });
    }

    #[test]
    fn a_mount_that_stays_shared_is_reported_after_the_last_reading() {
        let shared = table(&[("/", "shared:1"), ("/run/other/prop", "shared:9")]);
        let (done, calls) = privatize(std::slice::from_ref(&shared), &[]);
        assert_eq!(done.readings, PRIVATE_READINGS, "read again until the bound");
        assert_eq!(done.shared, ["/", "/run/other/prop"]);
        assert_eq!(calls.len(), 2 + 2 * (PRIVATE_READINGS - 2), "each reading's shared mounts tried again");
    }

    #[test]
    fn a_mount_that_left_before_it_was_made_private_is_no_failure() {
        // Another mount case's probe mounted under its propagation point (copied here as a peer)
        // and unmounted again: the change of the first reading's copy finds no mount (EINVAL), and
        // the mount that arrived in the second reading is gone by the third.
        let first =
            table(&[("/", "shared:1"), ("/run/case/prop", "shared:7"), ("/run/other/prop/from-host", "shared:9")]);
        let second = table(&[("/", ""), ("/run/case/prop", "shared:7"), ("/run/other/prop/from-probe", "shared:9")]);
        let third = table(&[("/", ""), ("/run/case/prop", "shared:7")]);
        let (done, calls) =
            privatize(&[first, second, third], &["/run/other/prop/from-host", "/run/other/prop/from-probe"]);
        assert_eq!(calls, ["/", "/run/other/prop/from-host", "/run/other/prop/from-probe"]);
        assert_eq!(done, Privatized { made: 1, left: vec![], shared: vec![], readings: 3 });
    }

    #[test]
    fn a_mount_the_kernel_refuses_ends_the_readings() {
        let first = table(&[("/", "shared:1"), ("/shadowed", "shared:3")]);
        let after = table(&[("/", ""), ("/shadowed", "shared:3")]);
        let (done, _) = privatize(&[first, after], &["/shadowed"]);
        assert_eq!(done.readings, 2, "no point reading again what cannot change");
        assert_eq!(done.shared, ["/shadowed"]);
        assert_eq!(done.left, ["/shadowed: EINVAL: Invalid argument"]);
    }
}
