//! Every launcher, by kind: what `isoprobe run --launcher all` iterates, and what the run loop
//! dispatches through.
//!
//! Launchers are created once per process (their tool look-ups are cached) and live for its whole
//! life, so the registry hands out `&'static` references.

use std::sync::OnceLock;

use super::Launcher;
use super::external::UtilUnshare;
use super::native::NativeLauncher;
use crate::spec::LauncherKind;

struct Registry {
    native: Vec<NativeLauncher>,
    util_unshare: UtilUnshare,
    util_nsenter: UtilUnshare,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        native: LauncherKind::ALL.into_iter().map(NativeLauncher).collect(),
        util_unshare: UtilUnshare::new(),
        util_nsenter: UtilUnshare::with_nsenter(),
    })
}

/// The launcher for `kind`.
pub fn launcher(kind: LauncherKind) -> &'static dyn Launcher {
    let r = registry();
    match kind {
        LauncherKind::UtilUnshare => &r.util_unshare,
        LauncherKind::UtilNsenter => &r.util_nsenter,
        native if native.is_native() => {
            r.native.iter().find(|n| n.0 == native).expect("every native kind is registered")
        }
        other => unimplemented!("launcher {} is not registered yet", other.name()),
    }
}

/// Every launcher: the native paths first, then the external tools.
pub fn all() -> Vec<&'static dyn Launcher> {
    LauncherKind::ALL.into_iter().chain(LauncherKind::EXTERNAL).map(launcher).collect()
}

/// The launcher named `name` (`clone3`, `lxc`, `util-unshare`, ...).
pub fn by_name(name: &str) -> Option<&'static dyn Launcher> {
    all().into_iter().find(|l| l.kind().name() == name)
}
