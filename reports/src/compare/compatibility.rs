//! Fingerprint compatibility: which differences between the machines of BASE and NEW make the
//! same spec expect different verdicts (the comparison is refused unless forced), which are worth
//! a note, and whether the two ran on the same machine (else benchmarks compare by calibration).
//!
//! What this module must never do: refuse for a different kernel. A new kernel is what the gate
//! exists for; it is only noted.

use crate::record::Fingerprint;

/// The hypervisor name of QEMU's TCG emulator in a fingerprint.
pub(super) const TCG: &str = "qemu-tcg";

/// How the cgroup-layout incompatibility begins (the kernel gate picks it out by this).
const LAYOUT_DIFFERS: &str = "cgroup layouts differ";

/// Whether an incompatibility is part of the platform the kernel gate tests (the cgroup layout a
/// kernel was booted with) rather than a reason to refuse comparing.
pub(super) fn is_platform_difference(incompatibility: &str) -> bool {
    incompatibility.starts_with(LAYOUT_DIFFERS)
}

/// `BASE` or `NEW`, whichever ran under QEMU's TCG emulator (BASE when both did).
pub(super) fn emulated_side(b: &Fingerprint, n: &Fingerprint) -> Option<&'static str> {
    [("BASE", b), ("NEW", n)]
        .into_iter()
        .find(|(_, f)| f.hypervisor.vendor.as_deref() == Some(TCG))
        .map(|(side, _)| side)
}

/// Differences that make the same spec expect different verdicts.
pub fn verdict_incompatibilities(b: &Fingerprint, n: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if b.user.euid != n.user.euid {
        out.push(format!(
            "BASE ran as euid {} and NEW as euid {}: what a case may do, and its default id maps, differ",
            b.user.euid, n.user.euid
        ));
    }
    if b.user.cap_eff != n.user.cap_eff {
        let only = |x: &Fingerprint, y: &Fingerprint| -> String {
            let names: Vec<&str> =
                x.user.capabilities.iter().filter(|c| !y.user.capabilities.contains(c)).map(String::as_str).collect();
            match names.len() {
                0 => "none".into(),
                n if n > 6 => format!("{} and {} more", names[..6].join(","), n - 6),
                _ => names.join(","),
            }
        };
        out.push(format!(
            "effective capabilities differ (CapEff BASE {}, NEW {}; only in BASE: {}; only in NEW: {})",
            b.user.cap_eff,
            n.user.cap_eff,
            only(b, n),
            only(n, b)
        ));
    }
    if b.namespaces != n.namespaces {
        out.push(format!("namespace kinds differ (BASE {}, NEW {})", b.namespaces, n.namespaces));
    }
    if b.cgroup.layout != n.cgroup.layout {
        out.push(format!("{LAYOUT_DIFFERS} (BASE {}, NEW {})", b.cgroup.layout.name(), n.cgroup.layout.name()));
    }
    if b.userns.unprivileged != n.userns.unprivileged {
        let side = |f: &Fingerprint| f.userns.blocked_by.clone().unwrap_or_else(|| "allowed".into());
        out.push(format!("unprivileged user namespaces: BASE {}, NEW {}", side(b), side(n)));
    }
    out
}

/// Same CPU model and count under the same hypervisor: nanoseconds compare as they are.
pub(super) fn same_machine(b: &Fingerprint, n: &Fingerprint) -> bool {
    b.cpu.model == n.cpu.model && b.cpu.online == n.cpu.online && b.hypervisor == n.hypervisor
}

/// Differences worth knowing that do not prevent the comparison.
pub(super) fn fingerprint_notes(b: &Fingerprint, n: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if b.kernel.release != n.kernel.release {
        out.push(format!("kernel {} → {}", b.kernel.release, n.kernel.release));
    }
    let keys: std::collections::BTreeSet<&String> =
        b.kernel_config.options.keys().chain(n.kernel_config.options.keys()).collect();
    let config: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (b.kernel_config.options.get(k), n.kernel_config.options.get(k));
            (x != y).then(|| format!("{k} {} → {}", x.map_or("?", |s| s), y.map_or("?", |s| s)))
        })
        .collect();
    if !config.is_empty() {
        out.push(format!("kernel config: {}", config.join(", ")));
    }
    if b.cgroup.v2_controllers != n.cgroup.v2_controllers
        || b.cgroup.v1.iter().map(|h| &h.controllers).ne(n.cgroup.v1.iter().map(|h| &h.controllers))
    {
        out.push("cgroup controllers differ".into());
    }
    if !same_machine(b, n) {
        out.push(format!(
            "machines differ: {} × {} ({}) → {} × {} ({})",
            b.cpu.online,
            b.cpu.model,
            b.hypervisor.vendor.as_deref().unwrap_or("no hypervisor"),
            n.cpu.online,
            n.cpu.model,
            n.hypervisor.vendor.as_deref().unwrap_or("no hypervisor")
        ));
    }
    if b.mount_count != n.mount_count {
        out.push(format!(
            "mount count {} → {} (unshare(CLONE_NEWNS) copies every mount)",
            b.mount_count, n.mount_count
        ));
    }
    for t in &n.tools {
        if let Some(o) = b.tools.iter().find(|o| o.name == t.name)
            && o.version != t.version
        {
            out.push(format!(
                "{} {} → {}",
                t.name,
                o.version.as_deref().unwrap_or("absent"),
                t.version.as_deref().unwrap_or("absent")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CgroupLayout, NsKind, NsSet, ToolVersion};
    use crate::testing::fingerprint;

    #[test]
    fn the_same_machine_is_compatible_and_says_nothing() {
        let f = fingerprint();
        assert!(verdict_incompatibilities(&f, &f).is_empty());
        assert!(fingerprint_notes(&f, &f).is_empty());
        assert!(same_machine(&f, &f));
    }

    #[test]
    fn privilege_namespaces_layout_and_userns_policy_make_runs_incomparable() {
        let b = fingerprint();
        let mut n = fingerprint();
        n.user.euid = 1000;
        (n.user.cap_eff, n.user.capabilities) = ("0000000000000000".into(), Vec::new());
        n.namespaces = NsSet::ALL.without(NsKind::Time);
        n.cgroup.layout = CgroupLayout::Hybrid;
        (n.userns.unprivileged, n.userns.blocked_by) = (false, Some("kernel.unprivileged_userns_clone is 0".into()));
        let r = verdict_incompatibilities(&b, &n);
        assert_eq!(
            r,
            [
                "BASE ran as euid 0 and NEW as euid 1000: what a case may do, and its default id maps, differ",
                "effective capabilities differ (CapEff BASE 000001ffffffffff, NEW 0000000000000000; only in BASE: all; \
                 only in NEW: none)",
                "namespace kinds differ (BASE all, NEW pid+uts+mnt+ipc+net+user+cgroup)",
                "cgroup layouts differ (BASE v2, NEW hybrid)",
                "unprivileged user namespaces: BASE allowed, NEW kernel.unprivileged_userns_clone is 0",
            ]
        );
        // Only the layout is the platform the kernel gate tests.
        let platform: Vec<&String> = r.iter().filter(|r| is_platform_difference(r)).collect();
        assert_eq!(platform, [&r[3]]);
        assert!(fingerprint_notes(&b, &n).is_empty(), "an incompatibility is not also a note");
    }

    #[test]
    fn a_long_capability_difference_names_six_and_counts_the_rest() {
        let mut b = fingerprint();
        (b.user.cap_eff, b.user.capabilities) = ("1ff".into(), (0..9).map(|i| format!("cap_{i}")).collect());
        let mut n = fingerprint();
        (n.user.cap_eff, n.user.capabilities) = ("1".into(), vec!["cap_0".into()]);
        let r = verdict_incompatibilities(&b, &n);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].ends_with("only in BASE: cap_1,cap_2,cap_3,cap_4,cap_5,cap_6 and 2 more; only in NEW: none)"),
            "{r:?}"
        );
    }

    /// What changes the numbers but not what a spec expects: noted, never refused.
    #[test]
    fn kernel_config_controllers_machine_mounts_and_tools_are_notes() {
        let tool = |name: &str, version: &str| ToolVersion {
            name: name.into(),
            path: Some(format!("/usr/bin/{name}")),
            version: Some(version.into()),
        };
        let mut b = fingerprint();
        b.kernel_config.options = [("CONFIG_HZ", "250"), ("CONFIG_X", "y")].map(|(k, v)| (k.into(), v.into())).into();
        b.tools = vec![tool("unshare", "2.38")];
        let mut n = fingerprint();
        n.kernel.release = "6.13.0".into();
        n.kernel_config.options = [("CONFIG_HZ".to_owned(), "1000".to_owned())].into();
        n.cgroup.v2_controllers = vec!["memory".into()];
        n.cpu.model = "other CPU".into();
        n.mount_count = 31;
        n.tools = vec![tool("unshare", "2.39"), tool("bwrap", "0.8.0")];
        assert_eq!(
            fingerprint_notes(&b, &n),
            [
                "kernel 6.12.0 → 6.13.0",
                "kernel config: CONFIG_HZ 250 → 1000, CONFIG_X y → ?",
                "cgroup controllers differ",
                "machines differ: 2 × test CPU (no hypervisor) → 2 × other CPU (no hypervisor)",
                "mount count 30 → 31 (unshare(CLONE_NEWNS) copies every mount)",
                "unshare 2.38 → 2.39",
            ]
        );
        assert!(verdict_incompatibilities(&b, &n).is_empty());
    }

    #[test]
    fn another_machine_is_another_cpu_model_count_or_hypervisor() {
        let b = fingerprint();
        let mut n = fingerprint();
        n.cpu.available = 1;
        assert!(same_machine(&b, &n), "the CPUs this process may use are not the machine");
        n.cpu.online = 4;
        assert!(!same_machine(&b, &n));
        let mut n = fingerprint();
        n.hypervisor.vendor = Some("kvm".into());
        assert!(!same_machine(&b, &n));
    }

    #[test]
    fn the_emulated_side_is_found_by_its_hypervisor() {
        let plain = fingerprint();
        let mut tcg = fingerprint();
        tcg.hypervisor = crate::record::Hypervisor { detected: true, vendor: Some(TCG.into()) };
        assert_eq!(emulated_side(&plain, &plain), None);
        assert_eq!(emulated_side(&plain, &tcg), Some("NEW"));
        assert_eq!(emulated_side(&tcg, &tcg), Some("BASE"));
    }
}
