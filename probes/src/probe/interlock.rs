//! The safety interlock: before every step that changes the state of a namespace (the hostname
//! and domainname of a uts namespace, the mount table of a mount namespace, its root, the offsets
//! of a time namespace), the probe proves that the namespace it is about to change is not the
//! harness's, whose identities the hello carries. If it is, the step is refused and recorded as a
//! [`Refusal`]: a launcher that lost a namespace then shows as the failed checks of that kind,
//! with this as the evidence, and the host stays exactly as it was.
//!
//! A namespace whose identity cannot be read, or a kind the hello gives no identity for, is
//! treated as the harness's: the interlock fails safe.
//!
//! chroot(2) is not interlocked: it changes only the calling process's root, never a namespace.

use std::os::fd::BorrowedFd;

use nix::fcntl::AtFlags;
use nix::sys::stat::fstatat;

use crate::ns::NsKind;
use crate::wire::{NsId, Refusal};

/// The harness's namespaces, from the hello.
#[derive(Debug, Clone)]
pub struct Interlock {
    harness: Vec<NsId>,
}

impl Interlock {
    pub fn new(harness: &[NsId]) -> Interlock {
        Interlock { harness: harness.to_vec() }
    }

    /// The probe's own namespace of `kind` as `proc` (a procfs directory, or `/proc` when
    /// `None`) shows it. For the time namespace, the one its children and its next execve get
    /// (`time_for_children`): that is the one offsets are written for.
    pub fn own(kind: NsKind, proc: Option<BorrowedFd<'_>>) -> nix::Result<NsId> {
        let entry = match kind {
            NsKind::Time => "self/ns/time_for_children".to_owned(),
            k => format!("self/ns/{k}"),
        };
        let st = match proc {
            Some(fd) => fstatat(fd, entry.as_str(), AtFlags::empty())?,
            None => nix::sys::stat::stat(format!("/proc/{entry}").as_str())?,
        };
        Ok(NsId { kind, dev: st.st_dev, ino: st.st_ino })
    }

    /// The harness's namespace of `kind`, if the hello named it.
    pub fn harness(&self, kind: NsKind) -> Option<NsId> {
        self.harness.iter().find(|n| n.kind == kind).copied()
    }

    /// Whether `own` is the harness's namespace (or cannot be told apart from it).
    pub fn shared(&self, own: &NsId) -> bool {
        self.harness(own.kind).is_none_or(|h| (h.dev, h.ino) == (own.dev, own.ino))
    }

    /// `Ok` when `step` may change the probe's `kind` namespace; the refusal otherwise.
    pub fn permit(&self, kind: NsKind, step: &str, proc: Option<BorrowedFd<'_>>) -> Result<(), Refusal> {
        let refuse = |because: String| Refusal { kind, step: step.to_owned(), because };
        let Some(harness) = self.harness(kind) else {
            return Err(refuse(format!("the hello names no {kind} namespace of the harness's to compare with")));
        };
        match Self::own(kind, proc) {
            Ok(own) if self.shared(&own) => {
                Err(refuse(format!("the probe's {kind} namespace is the harness's ({harness})")))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(refuse(format!(
                "the probe's {kind} namespace cannot be told from the harness's (stat of its /proc/self/ns entry: {e})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probes_own_namespaces_are_the_harnesss_without_an_unshare() {
        let mine: Vec<NsId> = NsKind::ALL.into_iter().filter_map(|k| Interlock::own(k, None).ok()).collect();
        let lock = Interlock::new(&mine);
        let uts = Interlock::own(NsKind::Uts, None).unwrap();
        assert!(lock.shared(&uts));
        let refusal = lock.permit(NsKind::Uts, "sethostname", None).unwrap_err();
        assert_eq!(refusal.kind, NsKind::Uts);
        assert!(refusal.to_string().starts_with("uts: the probe's uts namespace is the harness's (uts:["), "{refusal}");
        assert!(refusal.to_string().ends_with("]): sethostname refused"), "{refusal}");
        // Another identity: permitted.
        let other = Interlock::new(&[NsId { ino: uts.ino + 1, ..uts }]);
        assert!(other.permit(NsKind::Uts, "sethostname", None).is_ok());
    }

    #[test]
    fn an_unknown_harness_namespace_is_refused() {
        let r = Interlock::new(&[]).permit(NsKind::Mnt, "pivot_root", None).unwrap_err();
        assert!(r.because.contains("names no mnt namespace"), "{r}");
    }
}
