//! `isoprobe-vm`: boots a kernel under qemu with isoprobe's init and a plan, and summarises results.
//!
//! ```text
//! isoprobe-vm boot --kernel vmlinuz --plan plan.json --file target/.../namespaces=/bin/namespaces --out DIR
//! isoprobe-vm summary DIR...
//! isoprobe-vm modules plan.json
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use isoprobe_ci::plan::{MODULE_DIR, Plan};
use isoprobe_ci::vm::{BootRequest, VmResult, boot_retrying, summary_table};

#[derive(Parser, Debug)]
#[command(name = "isoprobe-vm", version, about = "Run isoprobe's suites on a kernel in a qemu VM")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Boot a kernel with the init and a plan; write DIR/result.json, DIR/console.log, DIR/files/.
    Boot {
        /// The kernel image (bzImage/vmlinuz).
        #[arg(long)]
        kernel: PathBuf,
        /// The plan the init runs (JSON; see ci/kernels/plans/).
        #[arg(long)]
        plan: PathBuf,
        /// A host file to put into the VM, as HOST=GUEST (GUEST absolute). Repeatable.
        #[arg(long = "file", value_name = "HOST=GUEST")]
        files: Vec<String>,
        /// Where the results go (created).
        #[arg(long)]
        out: PathBuf,
        /// Where the plan's kernel modules are (`<name>.ko`, `.ko.xz`, `.ko.zst`); default: `modules/`
        /// next to the kernel image (where ci/kernels/fetch.sh puts them).
        #[arg(long)]
        modules_dir: Option<PathBuf>,
        /// The init binary; default: isoprobe-vm-init next to this executable.
        #[arg(long)]
        init: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        #[arg(long, default_value_t = 2048)]
        memory_mib: u32,
        /// Seconds for the whole VM, boot to power-off.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Extra kernel command-line parameters.
        #[arg(long, default_value = "")]
        append: String,
        /// Show the VM console as it runs.
        #[arg(long, short)]
        verbose: bool,
        #[arg(long, default_value = "qemu-system-x86_64")]
        qemu: String,
    },
    /// Print a Markdown table of the results in each DIR.
    Summary { dirs: Vec<PathBuf> },
    /// Print the kernel modules a plan loads, comma-separated (for ci/kernels/fetch.sh --modules).
    Modules { plan: PathBuf },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isoprobe-vm: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    match Cli::parse().command {
        Cmd::Boot { kernel, plan, files, out, modules_dir, init, cpus, memory_mib, timeout, append, verbose, qemu } => {
            let plan = read_plan(&plan)?;
            let mut files = files
                .iter()
                .map(|f| match f.split_once('=') {
                    Some((host, guest)) => Ok((PathBuf::from(host), guest.to_owned())),
                    None => bail!("--file {f}: expected HOST=GUEST"),
                })
                .collect::<Result<Vec<_>>>()?;
            let modules_dir = modules_dir.unwrap_or_else(|| kernel.with_file_name("modules"));
            for name in &plan.modules {
                let found = module_file(&modules_dir, name).with_context(|| {
                    format!(
                        "failed to find the module {name} in {} (ci/kernels/fetch.sh --modules)",
                        modules_dir.display()
                    )
                })?;
                let guest = format!("{MODULE_DIR}/{}", found.file_name().unwrap_or_default().to_string_lossy());
                files.push((found, guest));
            }
            // Dynamic host programs the plan carries, with their libraries (one copy of each path).
            let carried = isoprobe_ci::carry::programs_files(&plan.programs, &files)
                .context("failed to collect the plan's programs")?;
            files.extend(carried);
            let init = match init {
                Some(p) => p,
                None => std::env::current_exe()
                    .context("failed to find this executable")?
                    .with_file_name("isoprobe-vm-init"),
            };
            let req = BootRequest {
                kernel,
                init,
                plan,
                files,
                out_dir: out.clone(),
                cpus,
                memory_mib,
                timeout: Duration::from_secs(timeout),
                append,
                echo_console: verbose,
                qemu,
            };
            let result = boot_retrying(&req).context("failed to run the VM")?;
            print!("{}", summary_table(std::slice::from_ref(&result)));
            for b in &result.earlier_boots {
                println!("booted again: the kernel died before the init's hello in {}:", b.dir);
                for l in &b.console {
                    println!("  {l}");
                }
            }
            for p in result.init_errors.iter().chain(&result.problems) {
                println!("problem: {p}");
            }
            // The full list is in the step's log; a screenful here.
            const SHOWN: usize = 20;
            for s in &result.steps {
                let failures = s.libtest.as_ref().map(|c| c.failures.as_slice()).unwrap_or_default();
                for f in failures.iter().take(SHOWN) {
                    println!("failed in {}: {f}", s.name);
                }
                if failures.len() > SHOWN {
                    println!("... and {} more failed in {} (see files/{}.log)", failures.len() - SHOWN, s.name, s.name);
                }
            }
            println!("details: {}", out.display());
            Ok(if result.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Summary { dirs } => {
            let mut results = Vec::new();
            for d in &dirs {
                let p = d.join("result.json");
                let text = std::fs::read_to_string(&p).with_context(|| format!("failed to read {}", p.display()))?;
                let r: VmResult =
                    serde_json::from_str(&text).with_context(|| format!("failed to parse {}", p.display()))?;
                results.push(r);
            }
            print!("{}", summary_table(&results));
            Ok(if results.iter().all(VmResult::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Modules { plan } => {
            println!("{}", read_plan(&plan)?.modules.join(","));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text).with_context(|| format!("failed to parse {}", path.display()))?;
    plan.validate().with_context(|| format!("invalid plan {}", path.display()))?;
    Ok(plan)
}

/// `<dir>/<name>.ko`, `.ko.xz` or `.ko.zst`, whichever exists.
fn module_file(dir: &Path, name: &str) -> Option<PathBuf> {
    ["ko", "ko.xz", "ko.zst"].iter().map(|ext| dir.join(format!("{name}.{ext}"))).find(|p| p.is_file())
}
