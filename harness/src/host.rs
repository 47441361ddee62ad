//! The host's half of "host, check now": answers to the probe's questions, made while the probe
//! waits, and the undoing of whatever the host did for them.
//!
//! The domainname is host-wide state that several concurrent cases may touch (every case with a
//! shared uts namespace and no user namespace really sets the host's domainname), so it is guarded
//! by the domainname lock (see [`crate::domainname`]), held from [`HostQuestion::LockDomainname`]
//! until the host has looked and restored its own value. The namespaced sysctls a probe writes are
//! compared with the host's from [`HostQuestion::SysctlBegin`] until [`HostQuestion::SysctlCheck`]
//! (see [`crate::sysctl`]).
//! Dropping a [`HostSide`] restores and unlocks in every outcome.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use isoprobe_probes::sys::{self, SysvKind};
use isoprobe_probes::wire::{ClockKind, HostAnswer, HostQuestion, IpcSeen, SysctlPlan};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::case_env::{CaseEnv, ProbeNames, dirs};
use crate::domainname::{self, DomainGuard};
use crate::mounts::is_mount_point;
use crate::run_env::RunEnv;
use crate::sysctl::{SeenOutside, SysctlView, Writing};

/// How a joiner's host side has the container it joined read sysctls (paths under /proc/sys):
/// the values a process of the container sees, whitespace-normalised, in order.
pub type PeerRead<'a> = Box<dyn FnMut(&[String]) -> Result<Vec<Option<String>>, String> + 'a>;

/// Answers one probe's questions.
pub struct HostSide<'a> {
    run: &'a RunEnv,
    case: &'a CaseEnv,
    names: &'a ProbeNames,
    deadline: Instant,
    domain: Option<DomainGuard>,
    /// A probe's announced sysctl writes: the paths, and the host's values then.
    sysctls: Option<(Writing, Vec<String>, Vec<Option<String>>)>,
    /// What the host saw of them.
    sysctl_view: SysctlView,
    /// A joiner's: the container it joined.
    peer: Option<PeerRead<'a>>,
    sentinel_mounted: bool,
    /// A mount case: the host's tmpfs on its propagation mount point is up.
    propagation_mounted: bool,
}

impl std::fmt::Debug for HostSide<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSide")
            .field("domain", &self.domain)
            .field("sysctls", &self.sysctls)
            .field("sysctl_view", &self.sysctl_view)
            .field("peer", &self.peer.is_some())
            .field("sentinel_mounted", &self.sentinel_mounted)
            .finish_non_exhaustive()
    }
}

impl<'a> HostSide<'a> {
    /// `peer`: a joiner's, to ask the container it joined.
    pub fn new(
        run: &'a RunEnv,
        case: &'a CaseEnv,
        names: &'a ProbeNames,
        deadline: Instant,
        peer: Option<PeerRead<'a>>,
    ) -> Self {
        HostSide {
            run,
            case,
            names,
            deadline,
            domain: None,
            sysctls: None,
            sysctl_view: SysctlView::default(),
            peer,
            sentinel_mounted: false,
            propagation_mounted: false,
        }
    }

    pub fn answer(&mut self, q: &HostQuestion) -> HostAnswer {
        let r = match q {
            HostQuestion::LockDomainname => self.lock_domainname(),
            HostQuestion::CheckDomainname { token } => self.check_domainname(token),
            HostQuestion::MountSentinel => self.mount_sentinel(),
            HostQuestion::UnmountSentinel => self.unmount_sentinel(),
            HostQuestion::OwnMountVisible => is_mount_point(&self.case.host_path(dirs::OWN_MOUNT))
                .map(|seen| HostAnswer::Seen { seen })
                .map_err(|e| e.to_string()),
            HostQuestion::PropagationMount => self.propagation_mount(),
            HostQuestion::PropagationUnmount => self.propagation_unmount(),
            HostQuestion::PropagationOwnVisible => {
                crate::mount_case::probe_mount_seen(&self.case.dir).map(|seen| HostAnswer::Seen { seen })
            }
            HostQuestion::OwnIpcVisible => Ok(self.own_ipc_visible()),
            HostQuestion::ScratchFileOwner { name } => self.scratch_owner(name),
            HostQuestion::Clocks { clocks } => self.clocks(clocks),
            HostQuestion::SysctlBegin { entries } => self.lock_sysctls(entries),
            HostQuestion::SysctlCheck { written } => self.check_sysctls(written),
            HostQuestion::Limit { ask } => crate::limits::host::answer(self.case.limits.as_ref(), ask),
        };
        r.unwrap_or_else(|error| HostAnswer::Failed { error })
    }

    fn lock_domainname(&mut self) -> Result<HostAnswer, String> {
        if self.domain.is_some() {
            return Err("the domainname lock is already held by this probe".into());
        }
        self.domain = Some(domainname::lock(&self.run.dir, self.deadline)?);
        Ok(HostAnswer::Ack)
    }

    fn check_domainname(&mut self, token: &str) -> Result<HostAnswer, String> {
        if token != self.names.domainname_token {
            return Err(format!("the probe asked about {token:?}, not the token it was given"));
        }
        let guard = self.domain.take().ok_or("check without holding the domainname lock")?;
        let seen = guard.restore()? == token;
        drop(guard);
        Ok(HostAnswer::Seen { seen })
    }

    fn lock_sysctls(&mut self, entries: &[SysctlPlan]) -> Result<HostAnswer, String> {
        if self.sysctls.is_some() {
            return Err("the probe announced sysctl writes twice without checking".into());
        }
        let (writing, values) = self.run.sysctls.begin(entries, self.deadline)?;
        let paths = entries.iter().map(|e| e.path.clone()).collect();
        self.sysctls = Some((writing, paths, values.clone()));
        Ok(HostAnswer::SysctlValues { values })
    }

    /// Reads the host's values of the entries written (the announced ones at `written`),
    /// restoring any that changed and unlocking, then, for a joiner, the joined container's; keeps
    /// what it saw for the judge.
    fn check_sysctls(&mut self, written: &[u32]) -> Result<HostAnswer, String> {
        let (writing, announced, before) = self.sysctls.take().ok_or("a sysctl check without the writes announced")?;
        let at = |i: &u32| announced.get(*i as usize).cloned().ok_or(format!("no announced sysctl {i}"));
        let paths = written.iter().map(at).collect::<Result<Vec<String>, String>>()?;
        let (after, unrestored) = self.run.sysctls.check(writing, &paths)?;
        let peer = match self.peer.as_mut() {
            Some(read) => Some(read(&paths).map_err(|e| format!("failed to ask the joined container: {e}"))?),
            None => None,
        };
        let view = &mut self.sysctl_view;
        view.joined |= peer.is_some();
        view.unrestored.extend(unrestored);
        for (j, (i, path)) in written.iter().zip(paths).enumerate() {
            view.entries.insert(
                path,
                SeenOutside {
                    host_before: before[*i as usize].clone(),
                    host_after: after[j].clone(),
                    peer: peer.as_ref().and_then(|p| p[j].clone()),
                },
            );
        }
        Ok(HostAnswer::Ack)
    }

    /// What the host saw of the probe's sysctl writes (taken).
    pub fn take_sysctl_view(&mut self) -> SysctlView {
        std::mem::take(&mut self.sysctl_view)
    }

    fn mount_sentinel(&mut self) -> Result<HostAnswer, String> {
        if !self.run.runner.is_root() {
            return Ok(HostAnswer::Unavailable {
                reason: "mounting the sentinel tmpfs on the host takes CAP_SYS_ADMIN there (running unprivileged)"
                    .into(),
            });
        }
        if self.sentinel_mounted {
            // A second mount would stack on the first, and the one unmount leave that behind.
            return Err("the sentinel tmpfs is already mounted for this probe".into());
        }
        let target = self.case.host_path(dirs::SENTINEL_MOUNT);
        let changing = crate::mounts::changing_host_mounts();
        mount(Some("isoprobe-sentinel"), &target, Some("tmpfs"), MsFlags::empty(), Some("size=64k,mode=0755"))
            .map_err(|e| format!("failed to mount the sentinel tmpfs on {}: {e}", target.display()))?;
        drop(changing);
        self.sentinel_mounted = true;
        crate::case_env::write_readable(&target.join("marker"), &self.run.marker_token)
            .map_err(|e| format!("failed to write the sentinel marker: {e}"))?;
        Ok(HostAnswer::Ack)
    }

    fn unmount_sentinel(&mut self) -> Result<HostAnswer, String> {
        if self.sentinel_mounted {
            let target = self.case.host_path(dirs::SENTINEL_MOUNT);
            // The control: the mount was there all the while the probe looked (it asks this
            // after looking), so not seeing it means it did not propagate.
            if !is_mount_point(&target).map_err(|e| e.to_string())? {
                self.sentinel_mounted = false;
                return Err(format!("the sentinel mount on {} was gone when the probe had looked", target.display()));
            }
            let _changing = crate::mounts::changing_host_mounts();
            umount2(&target, MntFlags::MNT_DETACH)
                .map_err(|e| format!("failed to unmount {}: {e}", target.display()))?;
            self.sentinel_mounted = false;
        }
        Ok(HostAnswer::Ack)
    }

    fn propagation_mount(&mut self) -> Result<HostAnswer, String> {
        if self.propagation_mounted {
            return Err("the host's propagation mount is already up".into());
        }
        // Marked first: a failure half-way (mounted, marker not written) is unmounted too.
        self.propagation_mounted = true;
        let _changing = crate::mounts::changing_host_mounts();
        crate::mount_case::mount_from_host(&self.case.dir, &self.run.marker_token)?;
        Ok(HostAnswer::Ack)
    }

    fn propagation_unmount(&mut self) -> Result<HostAnswer, String> {
        if !std::mem::take(&mut self.propagation_mounted) {
            return Err("the host's propagation mount is not up".into());
        }
        let _changing = crate::mounts::changing_host_mounts();
        crate::mount_case::unmount_from_host(&self.case.dir).map(|()| HostAnswer::Ack)
    }

    fn own_ipc_visible(&self) -> HostAnswer {
        let n = &self.names.own_ipc;
        let seen = |r: nix::Result<i32>| sys::lookup(r).visible() == Some(true);
        HostAnswer::Ipc {
            seen: IpcSeen {
                shm: seen(sys::sysv_get(SysvKind::Shm, n.shm_key)),
                sem: seen(sys::sysv_get(SysvKind::Sem, n.sem_key)),
                msg: seen(sys::sysv_get(SysvKind::Msg, n.msg_key)),
                mq: sys::lookup(sys::mq_lookup(&n.mq_name)).visible() == Some(true),
            },
        }
    }

    fn scratch_owner(&self, name: &str) -> Result<HostAnswer, String> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("refusing to stat {name:?}: not a plain file name"));
        }
        let path = self.case.host_path(dirs::SCRATCH).join(name);
        let md = fs::symlink_metadata(&path).map_err(|e| format!("failed to stat {}: {e}", path.display()))?;
        Ok(HostAnswer::Owner { uid: md.uid(), gid: md.gid() })
    }

    fn clocks(&self, clocks: &[ClockKind]) -> Result<HostAnswer, String> {
        let read = |clock: &ClockKind| {
            sys::clock_gettime_vdso(sys::clock_id(*clock))
                .map_err(|e| format!("clock_gettime of the {clock:?} clock: {e}"))
        };
        clocks.iter().map(read).collect::<Result<_, _>>().map(|ns| HostAnswer::ClocksNs { ns })
    }
}

impl Drop for HostSide<'_> {
    fn drop(&mut self) {
        // The domain and sysctl guards restore on their own drop.
        if self.sentinel_mounted {
            let _ = self.unmount_sentinel();
        }
        if self.propagation_mounted {
            let _ = self.propagation_unmount();
        }
    }
}
