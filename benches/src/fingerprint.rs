//! A minimal environment fingerprint for the summary (kernel release, CPU model and count,
//! hypervisor). The harness's full fingerprint (issue of the reports) replaces it at merge.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub kernel_release: String,
    pub cpu_model: String,
    pub cpu_count: usize,
    /// `none` on bare metal, else the hypervisor's name as far as the guest can tell.
    pub hypervisor: String,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The `key : value` of the first /proc/cpuinfo line with `key`.
fn cpuinfo_field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo.lines().filter_map(|l| l.split_once(':')).find(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_owned())
}

pub fn fingerprint() -> Fingerprint {
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let in_vm = cpuinfo_field(&cpuinfo, "flags").is_some_and(|f| f.split_whitespace().any(|x| x == "hypervisor"));
    let hypervisor = if !in_vm {
        "none".to_owned()
    } else {
        read("/sys/hypervisor/type")
            .or_else(|| read("/sys/class/dmi/id/sys_vendor"))
            .unwrap_or_else(|| "unknown (cpuid hypervisor bit set)".to_owned())
    };
    Fingerprint {
        kernel_release: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        cpu_model: cpuinfo_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        // Online CPUs, not this thread's affinity (the benchmarks pin themselves to one).
        cpu_count: nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .map(|n| n as usize)
            .unwrap_or(1),
        hypervisor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_fields_are_found_by_exact_key() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nmodel\t\t: 1\nflags\t\t: fpu hypervisor\n";
        assert_eq!(cpuinfo_field(text, "model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(cpuinfo_field(text, "model").as_deref(), Some("1"));
        assert_eq!(cpuinfo_field(text, "bogus"), None);
    }

    #[test]
    fn this_machine_has_a_kernel_and_a_cpu() {
        let f = fingerprint();
        assert!(f.kernel_release.chars().next().is_some_and(|c| c.is_ascii_digit()), "{f:?}");
        assert!(f.cpu_count >= 1);
    }
}
