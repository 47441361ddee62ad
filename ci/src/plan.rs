//! What the VM's init does after setting the machine up: the plan the host puts into the initramfs
//! at [`PLAN_PATH`]. Kernel modules to load and sysctls to set first (a candidate kernel's
//! configuration, or a planted regression), then steps run one after the other, each with its
//! environment, a timeout, and the files to bring out when it ends.
//!
//! This module must never run anything: it is the document both sides agree on.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::frame::valid_name;

/// Where the plan lives inside the VM.
pub const PLAN_PATH: &str = "/isoprobe/plan.json";

/// The version of this document; the init refuses any other. Version 2 added `programs`; a
/// version 1 plan (without it) is still read as it was.
pub const PLAN_SCHEMA: u32 = 2;

/// The oldest version still accepted.
pub const PLAN_SCHEMA_MIN: u32 = 1;

/// Where the host puts the kernel modules the plan names: `<dir>/<name>.ko`, or `.ko.xz` or
/// `.ko.zst` as the kernel package ships them.
pub const MODULE_DIR: &str = "/lib/modules";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schema: u32,
    /// Kernel modules loaded in this order before anything else, by name (`dummy`), from
    /// [`MODULE_DIR`]. Their dependencies are not resolved: list them first.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Set before the first step, by name (`user.max_net_namespaces` is written to
    /// /proc/sys/user/max_net_namespaces); a sysctl that cannot be set fails the run.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// Kernel command-line parameters the VM boots with (`psi=1`), after isoprobe's own: a
    /// setting that only the boot can make.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
    /// Dynamically linked host programs the VM carries (schema 2): each at its own absolute path,
    /// with the shared libraries its ELF loader resolves on the host at the paths it resolves them
    /// to (the VM has no userland but what the initramfs brings). The host side reads the list;
    /// the init ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<String>,
    /// A zram swap device of this many MiB, turned on after the modules are loaded (they must
    /// include zram and what it depends on: see `guest::swap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zram_swap_mib: Option<u64>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Names the step in records and its output file (`<name>.log`).
    pub name: String,
    /// The program (an absolute path inside the VM) and its arguments.
    pub argv: Vec<String>,
    /// Added to a minimal environment (PATH=/bin, HOME=/root).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The step is killed (its whole process group) when it runs longer.
    pub timeout_secs: u64,
    /// Files inside the VM brought out after the step, named `<step>.<file name>`.
    #[serde(default)]
    pub collect: Vec<String>,
    /// Copy the step's output to the console as it comes (to watch a run; costs time under TCG).
    #[serde(default)]
    pub echo: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan schema {0} is not one of {PLAN_SCHEMA_MIN} to {PLAN_SCHEMA}")]
    Schema(u32),
    #[error("program {0:?} is not an absolute path, or the plan's schema is older than 2")]
    CarriedProgram(String),
    #[error("invalid step name {0:?} (letters, digits and ._+- only)")]
    StepName(String),
    #[error("step {0} appears twice")]
    Duplicate(String),
    #[error("step {0} has no program, or a relative one")]
    Program(String),
    #[error("step {0} collects {1:?}, which is not an absolute path with a valid file name")]
    Collect(String, String),
    #[error("invalid sysctl name {0:?}")]
    Sysctl(String),
    #[error("invalid module name {0:?}")]
    Module(String),
    #[error("invalid kernel parameter {0:?} (one word: letters, digits and ._=,-)")]
    KernelArg(String),
    #[error("a zram swap device of {0} MiB needs the module zram in the plan's modules, and at least 1 MiB")]
    ZramSwap(u64),
}

impl Plan {
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(PLAN_SCHEMA_MIN..=PLAN_SCHEMA).contains(&self.schema) {
            return Err(PlanError::Schema(self.schema));
        }
        if let Some(p) = self.programs.iter().find(|p| self.schema < 2 || !p.starts_with('/') || p.contains('\0')) {
            return Err(PlanError::CarriedProgram(p.clone()));
        }
        let mut seen = BTreeSet::new();
        for s in &self.steps {
            if !valid_name(&s.name) || s.name == "guest" {
                return Err(PlanError::StepName(s.name.clone()));
            }
            if !seen.insert(&s.name) {
                return Err(PlanError::Duplicate(s.name.clone()));
            }
            if !s.argv.first().is_some_and(|p| p.starts_with('/')) {
                return Err(PlanError::Program(s.name.clone()));
            }
            for c in &s.collect {
                if s.collected_name(c).is_none() {
                    return Err(PlanError::Collect(s.name.clone(), c.clone()));
                }
            }
        }
        if let Some(m) = self.modules.iter().find(|m| !valid_name(m)) {
            return Err(PlanError::Module(m.clone()));
        }
        let word = |a: &String| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"._=,-".contains(&b));
        if let Some(a) = self.kernel_args.iter().find(|a| !word(a)) {
            return Err(PlanError::KernelArg(a.clone()));
        }
        for name in self.sysctls.keys() {
            sysctl_path(name).ok_or_else(|| PlanError::Sysctl(name.clone()))?;
        }
        match self.zram_swap_mib {
            Some(mib) if mib == 0 || !self.modules.iter().any(|m| m == "zram") => Err(PlanError::ZramSwap(mib)),
            _ => Ok(()),
        }
    }
}

impl Step {
    /// The name a collected file travels under: `<step>.<file name>`.
    pub fn collected_name(&self, path: &str) -> Option<String> {
        let file = path.strip_prefix('/')?.rsplit('/').next()?;
        let name = format!("{}.{file}", self.name);
        valid_name(&name).then_some(name)
    }

    /// The name of the step's captured output.
    pub fn log_name(&self) -> String {
        format!("{}.log", self.name)
    }
}

/// `/proc/sys/<a>/<b>` for the sysctl `a.b`, if the name is one.
pub fn sysctl_path(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let ok = parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    ok.then(|| format!("/proc/sys/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str) -> Step {
        Step {
            name: name.into(),
            argv: vec!["/bin/namespaces".into()],
            env: BTreeMap::new(),
            timeout_secs: 60,
            collect: vec!["/tmp/report.json".into()],
            echo: false,
        }
    }

    #[test]
    fn a_plan_round_trips_and_validates() {
        let plan = Plan {
            schema: PLAN_SCHEMA,
            modules: vec!["dummy".into()],
            sysctls: BTreeMap::from([("user.max_net_namespaces".into(), "0".into())]),
            kernel_args: vec!["psi=1".into()],
            programs: vec!["/usr/sbin/runc".into()],
            zram_swap_mib: None,
            steps: vec![step("namespaces"), step("run")],
        };
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), plan);
        assert_eq!(plan.validate(), Ok(()));
        assert_eq!(plan.steps[1].collected_name("/tmp/report.json").as_deref(), Some("run.report.json"));
        assert_eq!(sysctl_path("user.max_net_namespaces").as_deref(), Some("/proc/sys/user/max_net_namespaces"));
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let mut plan = Plan {
            schema: PLAN_SCHEMA,
            modules: vec![],
            sysctls: BTreeMap::new(),
            kernel_args: vec![],
            programs: vec![],
            zram_swap_mib: None,
            steps: vec![step("a"), step("a")],
        };
        assert_eq!(plan.validate(), Err(PlanError::Duplicate("a".into())));
        plan.steps[1].name = "b c".into();
        assert_eq!(plan.validate(), Err(PlanError::StepName("b c".into())));
        plan.steps[1] = Step { argv: vec!["namespaces".into()], ..step("b") };
        assert_eq!(plan.validate(), Err(PlanError::Program("b".into())));
        plan.steps[1] = step("b");
        plan.modules.push("../dummy".into());
        assert_eq!(plan.validate(), Err(PlanError::Module("../dummy".into())));
        plan.modules.clear();
        plan.sysctls.insert("../../etc".into(), "1".into());
        assert_eq!(plan.validate(), Err(PlanError::Sysctl("../../etc".into())));
        plan.sysctls.clear();
        plan.kernel_args.push("init=/bin/sh psi=1".into());
        assert_eq!(plan.validate(), Err(PlanError::KernelArg("init=/bin/sh psi=1".into())));
        plan.kernel_args.clear();
        plan.programs.push("runc".into());
        assert_eq!(plan.validate(), Err(PlanError::CarriedProgram("runc".into())));
        plan.programs.clear();
        plan.zram_swap_mib = Some(256);
        assert_eq!(plan.validate(), Err(PlanError::ZramSwap(256)));
        plan.modules.push("zram".into());
        assert_eq!(plan.validate(), Ok(()));
        plan.zram_swap_mib = Some(0);
        assert_eq!(plan.validate(), Err(PlanError::ZramSwap(0)));
        assert!(serde_json::from_str::<Plan>(r#"{"schema":1,"steps":[],"extra":1}"#).is_err());
    }

    /// Version 1 plans (no `programs`) stay valid; `programs` needs version 2; other versions
    /// are refused.
    #[test]
    fn old_plans_stay_valid_and_programs_need_schema_2() {
        let v1: Plan = serde_json::from_str(r#"{"schema":1,"steps":[]}"#).unwrap();
        assert_eq!(v1.validate(), Ok(()));
        let v1_programs: Plan =
            serde_json::from_str(r#"{"schema":1,"programs":["/usr/bin/crun"],"steps":[]}"#).unwrap();
        assert_eq!(v1_programs.validate(), Err(PlanError::CarriedProgram("/usr/bin/crun".into())));
        let v2: Plan = serde_json::from_str(r#"{"schema":2,"programs":["/usr/bin/crun"],"steps":[]}"#).unwrap();
        assert_eq!(v2.validate(), Ok(()));
        let v3: Plan = serde_json::from_str(r#"{"schema":3,"steps":[]}"#).unwrap();
        assert_eq!(v3.validate(), Err(PlanError::Schema(3)));
    }

    /// The cgroup2 VM runs the limit cases through each container tool it carries, and each such
    /// step names the tool in its `ISOPROBE_EXPECT`: a tool missing in the VM fails the step
    /// instead of skipping its cases.
    #[test]
    fn the_cgroup2_plan_carries_and_expects_every_tool_it_runs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/plans/limits-v2.json");
        let plan: Plan = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // (launcher, the command isoprobe looks for, where Debian installs it)
        let tools = [
            ("runc", "runc", "/usr/sbin/runc"),
            ("crun", "crun", "/usr/bin/crun"),
            ("lxc", "lxc-execute", "/usr/bin/lxc-execute"),
        ];
        let mut run = BTreeSet::new();
        for step in &plan.steps {
            let Some(i) = step.argv.iter().position(|a| a == "--launcher") else { continue };
            let expect: Vec<&str> = step.env.get("ISOPROBE_EXPECT").map(|e| e.split(',').collect()).unwrap_or_default();
            for launcher in step.argv[i + 1].split(',') {
                let (_, command, program) = tools
                    .iter()
                    .find(|t| t.0 == launcher)
                    .unwrap_or_else(|| panic!("step {}: launcher {launcher} is not in this test's table", step.name));
                assert!(expect.contains(&format!("tool:{command}").as_str()), "step {}: {expect:?}", step.name);
                assert!(plan.programs.iter().any(|p| p == program), "{program} not carried: {:?}", plan.programs);
                run.insert(launcher);
            }
        }
        assert_eq!(run, tools.iter().map(|t| t.0).collect(), "every tool of the table runs in the VM");
    }

    #[test]
    fn the_committed_plans_validate_and_the_planted_regression_differs_only_by_its_sysctl() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/plans");
        let read = |name: &str| -> Plan {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let plan: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            plan.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            plan
        };
        for e in std::fs::read_dir(&dir).unwrap() {
            read(&e.unwrap().file_name().to_string_lossy());
        }
        let (suites, mut planted) = (read("suites.json"), read("regress-netns.json"));
        assert_eq!(planted.sysctls.remove("user.max_net_namespaces").as_deref(), Some("0"));
        assert_eq!(planted, suites);
        assert_eq!(suites.steps[0].collected_name("/tmp/report.json").as_deref(), Some("isoprobe.report.json"));
    }
}
