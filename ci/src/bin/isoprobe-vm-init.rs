//! The init (pid 1) of isoprobe's kernel-test VMs: moves the initramfs into a tmpfs root, sets the
//! machine up (see `isoprobe_ci::guest::setup`), opens the data channel, runs the plan's steps,
//! sends their output and collected files to the host, and powers the machine off. Whatever
//! happens, it ends in a power-off (a panic of pid 1 would leave a kernel panic instead; the VM is
//! started with `panic=-1` and `-no-reboot`, so even that ends the VM).

use std::fs;
use std::io::Write;
use std::time::Instant;

use isoprobe_ci::frame::Record;
use isoprobe_ci::guest::GuestError;
use isoprobe_ci::guest::channel::{Channel, device_from_cmdline};
use isoprobe_ci::guest::setup::{
    GuestFacts, SWITCHED_ARG, apply_sysctls, boottime_ms, collect_facts, enable_controllers, links_up, load_modules,
    mount_filesystems, switch_root_and_reexec,
};
use isoprobe_ci::guest::steps::run_step;
use isoprobe_ci::guest::swap::zram_swap_on;
use isoprobe_ci::plan::{PLAN_PATH, Plan};
use nix::sys::reboot::{RebootMode, reboot};

fn console(msg: &str) {
    let _ = writeln!(std::io::stderr(), "isoprobe-vm-init: {msg}");
}

fn power_off() -> ! {
    nix::unistd::sync();
    let err = reboot(RebootMode::RB_POWER_OFF).unwrap_err();
    console(&format!("failed to power off: {err}"));
    // pid 1 exiting panics the kernel, which (panic=-1, -no-reboot) ends the VM too.
    std::process::exit(1)
}

fn main() {
    if std::process::id() != 1 {
        console("this is the init of a kernel-test VM (pid 1): it would power the machine off; refusing");
        std::process::exit(2);
    }
    let boot_ms = boottime_ms();
    if !std::env::args().any(|a| a == SWITCHED_ARG) {
        let Err(e) = switch_root_and_reexec();
        console(&e.to_string());
        power_off();
    }
    match std::panic::catch_unwind(|| run(boot_ms)) {
        Ok(Ok(())) => console("done, powering off"),
        Ok(Err(e)) => console(&e.to_string()),
        Err(_) => console("panicked"),
    }
    power_off();
}

fn run(boot_ms: u64) -> Result<(), GuestError> {
    let started = Instant::now();
    let mut facts = GuestFacts { boottime_at_init_ms: boot_ms, ..GuestFacts::default() };
    facts.cgroup2_options = mount_filesystems()?;
    let cmdline = fs::read_to_string("/proc/cmdline")
        .map_err(|source| GuestError::Io { what: "read /proc/cmdline".into(), source })?;
    let mut channel = Channel::open(&device_from_cmdline(&cmdline))?;
    // From here on, errors reach the host too.
    let result = run_plan(&mut channel, &mut facts, started);
    if let Err(e) = &result {
        let _ = channel.send(&Record::Error { message: e.to_string() });
    }
    channel.drain()?;
    result
}

fn run_plan(channel: &mut Channel, facts: &mut GuestFacts, started: Instant) -> Result<(), GuestError> {
    collect_facts(facts)?;
    channel.send(&Record::Hello { release: facts.release.clone() })?;
    console(&format!("{} up after {} ms; setting up", facts.release, facts.boottime_at_init_ms));
    enable_controllers(facts)?;
    let text =
        fs::read_to_string(PLAN_PATH).map_err(|source| GuestError::Io { what: format!("read {PLAN_PATH}"), source })?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| GuestError::Setup(format!("{PLAN_PATH}: {e}")))?;
    plan.validate().map_err(|e| GuestError::Setup(format!("{PLAN_PATH}: {e}")))?;
    load_modules(&plan.modules, facts)?;
    if let Some(mib) = plan.zram_swap_mib {
        zram_swap_on(mib, facts)?;
    }
    links_up(facts)?;
    apply_sysctls(&plan.sysctls, facts)?;
    facts.setup_ms = started.elapsed().as_millis() as u64;
    let json = serde_json::to_vec_pretty(&facts).map_err(|e| GuestError::Setup(format!("guest.json: {e}")))?;
    channel.send_file("guest.json", &json)?;

    for step in &plan.steps {
        console(&format!("step {}: {}", step.name, step.argv.join(" ")));
        let outcome = run_step(step, std::io::stdout());
        for note in &outcome.notes {
            channel.send(&Record::Error { message: format!("step {}: {note}", step.name) })?;
        }
        channel.send_file(&step.log_name(), &outcome.output)?;
        for path in &step.collect {
            let name = step.collected_name(path).expect("the plan was validated");
            match fs::read(path) {
                Ok(data) => channel.send_file(&name, &data)?,
                Err(e) => channel
                    .send(&Record::Error { message: format!("step {}: failed to read {path}: {e}", step.name) })?,
            }
        }
        let elapsed_ms = outcome.elapsed.as_millis() as u64;
        channel.send(&Record::Step { name: step.name.clone(), status: outcome.status, elapsed_ms })?;
        console(&format!("step {}: {} after {elapsed_ms} ms", step.name, outcome.status));
    }
    channel.send(&Record::Done)
}
