//! blk-iocost on one block device: the cgroup2 root's io.cost.model and io.cost.qos lines of the
//! case's own loop device, set for an io.weight case ([`IoCost::enable`]) and put back as they
//! were in every outcome (on drop), and the state of every device's lines that the host snapshot
//! compares ([`state`]).
//!
//! These two files exist only in the root cgroup and are host state: this module writes only the
//! line of the device it was given (isoprobe's own loop device), and never another file.
//! cgroup-v2.rst, "IO Interface Files"; block/blk-iocost.c (ioc_qos_write, ioc_cost_model_write).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Context, HarnessError};

/// The cost model's sequential and random read (and write) bandwidth, bytes per second: the whole
/// device's capacity as iocost sees it, which the two readers' groups share by weight. A loop
/// device over page cache serves far more (the io-max control reads 32 MiB/s or more even in a
/// TCG VM), so the model, not the device, is what runs out.
pub const MODEL_BPS: u64 = 8 << 20;

/// The model's sequential and random IOs per second: so high that an IO's base cost
/// (VTIME_PER_SEC / iops) is below one page's size cost (VTIME_PER_SEC / (bps / 4096)), which the
/// kernel then leaves out (calc_lcoefs): an IO costs its size at [`MODEL_BPS`] and nothing else.
pub const MODEL_IOPS: u64 = 1_000_000;

/// The latency target iocost derives its period from (QoS `rlat`/`wlat`, µs): with no percentile
/// (`rpct=0`) the period is twice the target (ioc_refresh_period_us): 50 ms.
pub const QOS_LAT_US: u64 = 25_000;

/// The control period that follows from [`QOS_LAT_US`], in ns.
pub const PERIOD_NS: u64 = 2 * QOS_LAT_US * 1000;

/// `min=100 max=100`: the vrate (device time per wall time) is held at 100%, so the model's
/// capacity is the capacity, whatever iocost's busy signal says.
const QOS_VRATE: &str = "min=100 max=100";

/// The lines of `dev` in the root's io.cost.qos and io.cost.model as found, written back on drop.
#[derive(Debug)]
pub struct IoCost {
    root: PathBuf,
    dev: (u64, u64),
    qos_before: Option<String>,
    model_before: Option<String>,
}

/// The text after `MAJ:MIN ` of `dev`'s line in an io.cost file.
fn device_line(text: &str, dev: (u64, u64)) -> Option<String> {
    let key = format!("{}:{} ", dev.0, dev.1);
    text.lines().find_map(|l| l.strip_prefix(&key)).map(|r| r.trim().to_owned())
}

/// Whether a printed io.cost line has `key=value`.
fn has(line: &str, key: &str, value: &str) -> bool {
    line.split_whitespace().any(|kv| kv.split_once('=') == Some((key, value)))
}

/// The root's io.cost.qos, or `None` where the kernel has no iocost (CONFIG_BLK_CGROUP_IOCOST) or
/// `root` is not the hierarchy's root.
pub fn qos_file(root: &Path) -> Option<PathBuf> {
    let p = root.join("io.cost.qos");
    p.exists().then_some(p)
}

impl IoCost {
    /// Puts `dev` under iocost with the linear model of [`MODEL_BPS`] and a fixed vrate. The
    /// returned guard restores both lines when dropped (also when this fails half-way).
    pub fn enable(root: &Path, dev: (u64, u64)) -> Result<IoCost, HarnessError> {
        let read = |f: &str| fs::read_to_string(root.join(f)).ctx(|| format!("read {}/{f}", root.display()));
        let guard = IoCost {
            root: root.to_path_buf(),
            dev,
            qos_before: device_line(&read("io.cost.qos")?, dev),
            model_before: device_line(&read("io.cost.model")?, dev),
        };
        let (b, i) = (MODEL_BPS, MODEL_IOPS);
        guard.write(
            "io.cost.model",
            &format!("ctrl=user model=linear rbps={b} rseqiops={i} rrandiops={i} wbps={b} wseqiops={i} wrandiops={i}"),
        )?;
        guard.write(
            "io.cost.qos",
            &format!("enable=1 ctrl=user rpct=0 rlat={QOS_LAT_US} wpct=0 wlat={QOS_LAT_US} {QOS_VRATE}"),
        )?;
        Ok(guard)
    }

    /// Writes `MAJ:MIN rest` to the root's `file` in one write(2).
    fn write(&self, file: &str, rest: &str) -> Result<(), HarnessError> {
        let line = format!("{}:{} {rest}", self.dev.0, self.dev.1);
        fs::write(self.root.join(file), &line).ctx(|| format!("write `{line}` to {}/{file}", self.root.display()))
    }

    /// The lines as found: a user setting is written back whole; an automatic one (or none: the
    /// device had no iocost yet, which reads as disabled and automatic) as `ctrl=auto`, since any
    /// parameter written makes a line the user's.
    fn restore(&self) -> Result<(), HarnessError> {
        let qos = match &self.qos_before {
            Some(l) if has(l, "ctrl", "user") => l.clone(),
            Some(l) => format!("enable={} ctrl=auto", u8::from(has(l, "enable", "1"))),
            None => "enable=0 ctrl=auto".into(),
        };
        let model = match &self.model_before {
            Some(l) if has(l, "ctrl", "user") => l.clone(),
            _ => "ctrl=auto".into(),
        };
        let q = self.write("io.cost.qos", &qos);
        let m = self.write("io.cost.model", &model);
        q.and(m)
    }
}

impl Drop for IoCost {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("isoprobe: failed to restore iocost of {}:{}: {e}", self.dev.0, self.dev.1);
        }
    }
}

/// What of iocost the host snapshot compares: under the cgroup2 root `root`, every device's
/// io.cost.qos line that enables iocost or holds user parameters, and every io.cost.model line
/// with a user model (a device iocost never touched, or one put back as found, has neither; the
/// kernel keeps a disabled automatic line for every device iocost was once set up on).
pub fn state(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let text = |f: &str| fs::read_to_string(root.join(f)).unwrap_or_default();
    for l in text("io.cost.qos").lines() {
        if has(l, "enable", "1") || has(l, "ctrl", "user") {
            out.insert(format!("io.cost.qos {l}"));
        }
    }
    for l in text("io.cost.model").lines().filter(|l| has(l, "ctrl", "user")) {
        out.insert(format!("io.cost.model {l}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root: the lines written land in the files (a kernel would parse them; here the
    /// last write is what the file holds), so the restore's writes can be read back.
    #[test]
    fn a_device_untouched_before_is_put_back_to_automatic_and_disabled() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("io.cost.qos"), "8:0 enable=0 ctrl=auto rpct=0.00 rlat=250000\n").unwrap();
        fs::write(tmp.path().join("io.cost.model"), "8:0 ctrl=auto model=linear rbps=1\n").unwrap();
        let g = IoCost::enable(tmp.path(), (7, 3)).unwrap();
        assert!(fs::read_to_string(tmp.path().join("io.cost.qos")).unwrap().starts_with("7:3 enable=1 ctrl=user"));
        assert_eq!(state(tmp.path()).len(), 2);
        drop(g);
        assert_eq!(fs::read_to_string(tmp.path().join("io.cost.qos")).unwrap(), "7:3 enable=0 ctrl=auto");
        assert_eq!(fs::read_to_string(tmp.path().join("io.cost.model")).unwrap(), "7:3 ctrl=auto");
        assert!(state(tmp.path()).is_empty());
    }

    #[test]
    fn a_user_line_found_is_written_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let user = "enable=1 ctrl=user rpct=95.00 rlat=5000 wpct=95.00 wlat=5000 min=50.00 max=150.00";
        fs::write(tmp.path().join("io.cost.qos"), format!("7:3 {user}\n")).unwrap();
        fs::write(tmp.path().join("io.cost.model"), "7:3 ctrl=auto model=linear rbps=1\n").unwrap();
        drop(IoCost::enable(tmp.path(), (7, 3)).unwrap());
        assert_eq!(fs::read_to_string(tmp.path().join("io.cost.qos")).unwrap(), format!("7:3 {user}"));
        assert_eq!(device_line("7:30 x\n7:3 y\n", (7, 3)).as_deref(), Some("y"));
    }
}
