//! The cgroup v2 backend: settings are written as they are named (the vocabulary is v2's), each
//! controller with counters to read or more to do has a file here. Core files every non-root
//! cgroup2 cgroup has, whatever its controllers: cgroup.procs, cgroup.freeze, cgroup.events,
//! cgroup.kill, and the usage lines of cpu.stat.
//!
//! Never writes anything but the cgroups isoprobe created (a [`CgroupDir`]).

mod cpu;
mod freezer;
mod hugetlb;
mod memory;
mod pids;

use isoprobe_probes::wire::CgroupReading;

use super::dir::CgroupDir;
use super::table::{Setting, controllers};
use crate::error::HarnessError;

/// What a v2 controller does beyond writing its files.
pub(crate) trait Controller {
    /// Adds the counters it keeps to `reading`.
    fn read(_dir: &CgroupDir, _reading: &mut CgroupReading) {}
}

/// Writes the settings whose v2 controller is in `enabled`. Settings cgroup2 has no file for (the
/// device list, which needs a BPF_CGROUP_DEVICE program; v1-only knobs) are left to a v1
/// hierarchy; the manager reports a setting no hierarchy took.
pub fn apply(enabled: &[String], dir: &CgroupDir, settings: &[Setting]) -> Result<(), HarnessError> {
    for s in settings {
        let (_, v2) = controllers(&s.key).map_err(|e| HarnessError::Cgroup(e.to_string()))?;
        if let Some(c) = v2
            && enabled.iter().any(|e| e == c)
        {
            dir.write(&s.key, &s.value)?;
        }
    }
    Ok(())
}

/// Adds the counters of the `enabled` controllers (and the core ones) to `reading`.
pub fn read(enabled: &[String], dir: &CgroupDir, reading: &mut CgroupReading) {
    cpu::Cpu::read(dir, reading);
    for c in enabled {
        match c.as_str() {
            "memory" => memory::Memory::read(dir, reading),
            "pids" => pids::Pids::read(dir, reading),
            "hugetlb" => hugetlb::Hugetlb::read(dir, reading),
            _ => {}
        }
    }
}

/// Freezes or thaws through cgroup.freeze and waits for cgroup.events to confirm.
pub fn set_frozen(dir: &CgroupDir, frozen: bool) -> Result<(), HarnessError> {
    freezer::set_frozen(dir, frozen)
}

pub fn is_frozen(dir: &CgroupDir) -> bool {
    freezer::is_frozen(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::table::Setting;
    use std::os::fd::OwnedFd;
    use std::sync::Arc;

    /// A fake cgroup2 directory in a temp dir: the files a kernel would offer, empty.
    fn fake(files: &[&str]) -> (tempfile::TempDir, CgroupDir) {
        let tmp = tempfile::tempdir().unwrap();
        let root: OwnedFd = std::fs::File::open(tmp.path()).unwrap().into();
        let dir = CgroupDir::create(Arc::new(root), tmp.path(), "isoprobe-fake").unwrap();
        for f in files {
            std::fs::write(tmp.path().join("isoprobe-fake").join(f), "").unwrap();
        }
        (tmp, dir)
    }

    #[test]
    fn settings_are_written_under_their_v2_names_for_enabled_controllers_only() {
        let (tmp, dir) = fake(&["memory.max", "pids.max", "cpu.max"]);
        let settings = [
            Setting::new("memory.max", "67108864"),
            Setting::new("pids.max", "16"),
            Setting::new("cpu.max", "20000 100000"),
        ];
        apply(&["memory".into(), "cpu".into()], &dir, &settings).unwrap();
        let read = |f: &str| std::fs::read_to_string(tmp.path().join("isoprobe-fake").join(f)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("cpu.max"), "20000 100000");
        assert_eq!(read("pids.max"), "", "pids is not enabled: nothing written");
        dir.rmdir().unwrap_err(); // not empty: a real cgroupfs has no files to delete
    }

    #[test]
    fn settings_without_a_v2_file_are_left_alone() {
        let (tmp, dir) = fake(&[]);
        apply(&["memory".into()], &dir, &[Setting::new("devices", "c 1:3 rwm"), Setting::new("net_cls.classid", "1")])
            .unwrap();
        assert!(!tmp.path().join("isoprobe-fake/devices").exists());
    }

    #[test]
    fn counters_are_read_from_v2_files() {
        let (tmp, dir) = fake(&[]);
        let put = |f: &str, t: &str| std::fs::write(tmp.path().join("isoprobe-fake").join(f), t).unwrap();
        put("memory.peak", "1048576\n");
        put("memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
        put("pids.current", "16\n");
        put("pids.events", "max 3\n");
        put(
            "cpu.stat",
            "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 10\nnr_throttled 9\nthrottled_usec 70\n",
        );
        let mut r = CgroupReading::default();
        read(&["memory".into(), "pids".into()], &dir, &mut r);
        assert_eq!(r.memory_peak, Some(1 << 20));
        assert_eq!(r.memory_oom_kills, Some(1));
        assert_eq!(r.pids_current, Some(16));
        assert_eq!(r.pids_refused, Some(3));
        assert_eq!(r.cpu_usage_ns, Some(2_000_000));
        assert_eq!(r.v2_usage_ns, Some(2_000_000));
        assert_eq!((r.cpu_periods, r.cpu_throttled, r.cpu_throttled_ns), (Some(10), Some(9), Some(70_000)));
    }

    #[test]
    fn freezing_waits_for_cgroup_events() {
        let (tmp, dir) = fake(&["cgroup.freeze"]);
        std::fs::write(tmp.path().join("isoprobe-fake/cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set_frozen(&dir, true).unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join("isoprobe-fake/cgroup.freeze")).unwrap(), "1");
        assert!(is_frozen(&dir));
        // The fake kernel never reports thawed: the wait must end in a timeout, not hang.
        assert!(matches!(
            freezer::set_frozen_within(&dir, false, std::time::Duration::from_millis(20)),
            Err(HarnessError::Timeout { .. })
        ));
    }
}
