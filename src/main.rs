//! The `isoprobe` command line: run the matrix, list it, show the machine's fingerprint, render a
//! saved report, compare two reports, and clean up after a killed run.
//!
//! This is the edge where errors become exit codes (anyhow here, thiserror below). It must keep
//! calling `isoprobe_probes::multicall()` first: every isoprobe binary is also the probe.

mod cleanup;
mod run;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use isoprobe_harness::LauncherKind;
use isoprobe_harness::NsKind;
use isoprobe_harness::fingerprint::{Fingerprint, LAUNCHER_TOOLS};
use isoprobe_reports::compare::{Basis, CompareOptions, EXIT_INCOMPARABLE, compare};
use isoprobe_reports::load::{Document, load};
use isoprobe_reports::render::{Format, render};

const EXIT_CODES: &str = "\
Exit status:
  run      0 every case passed or was skipped (with --launcher: or failed only on checks an expected
           difference of the launcher's tool explains); 1 a case failed or errored, a row of the
           expected-differences table is stale, or a case was skipped for a
           requirement ISOPROBE_EXPECT declares; 2 the run could not be carried out or was
           interrupted (SIGINT/SIGTERM: running cases finish and clean up; a second signal exits
           at once with 130, and `isoprobe cleanup` removes what is left)
  list     0; 2 on bad options or an unreadable case file
  env      0
  report   0; 2 the report could not be read or rendered in that format
  compare  0 no regression; 1 a regression: a check that passed now fails or errors, a case that
           ran now errors, a check or case judged in BASE now skipped (unless --allow-new-skips),
           a check, case or suite of BASE missing from NEW (unless --allow-missing), a NEW that
           holds no cases, a check or case BASE did not judge (skipped there, or only in NEW)
           that fails or errors, a benchmark significantly slower, the harness's overhead ratio
           (harness_case over native_spawn) significantly higher; 2 could not compare (corrupt
           or newer-schema input, fingerprints that make the runs incomparable unless --force,
           benchmark summaries without a shared calibration across machines)
  snapshot 0
  cleanup  0 everything a dead run left behind was removed (what a live run may own is kept and
           listed); 1 something could not be removed; 2 cleanup could not look
Any command exits 2 on a usage error.";

#[derive(Parser, Debug)]
#[command(
    name = "isoprobe",
    version,
    about = "Does Linux isolation really isolate, and what does it cost?",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the cases (default: the whole namespace matrix on the native launchers and the limit
    /// suite; with `--launcher all` or an external launcher: the launcher conformance table), print
    /// a summary table and write the report.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// List the cases `run` would run with the same options, and why some would be skipped.
    List(Selection),
    /// Print this machine's environment fingerprint (what a report records about the machine).
    Env {
        /// Print it as JSON instead of `key = value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Render a saved report or benchmark summary.
    #[command(after_help = EXIT_CODES)]
    Report {
        /// A report (`isoprobe run`) or a benchmark summary (`cargo bench`).
        file: PathBuf,
        #[arg(long, short, value_enum, default_value = "markdown")]
        format: FormatArg,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Attach this benchmark summary (`cargo bench` writes target/isoprobe/bench-summary.json)
        /// to the run report, for its charts and tables.
        #[arg(long)]
        bench: Option<PathBuf>,
    },
    /// Compare two reports (or two benchmark summaries): the regression gate. It fails closed:
    /// what BASE showed and NEW no longer shows (a skip, a missing check, case or suite, an empty
    /// NEW) is a regression unless an --allow-* option says it is deliberate.
    #[command(after_help = EXIT_CODES)]
    Compare(CompareArgs),
    /// Print the host state isoprobe promises to leave as it found it (hostname, domainname,
    /// mounts, SysV IPC, links, isoprobe cgroups and temporary entries, /proc/cgroups, /dev
    /// nodes, probe processes, loop devices), one line per item, to compare with diff(1).
    Snapshot {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Find and remove what a killed run left behind: run directories of dead runs, mounts and
    /// loop devices under them, isoprobe cgroups, SysV IPC objects with isoprobe keys and
    /// /isoprobe-* message queues (`run`, the suites and the benches remove what dead runs
    /// provably own by themselves before they start).
    #[command(after_help = EXIT_CODES)]
    Cleanup {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Remove only what a dead run found in the temporary directory provably owns (its
        /// directory, cgroups by its token, IPC objects by its ledger), as a run does at its start.
        #[arg(long)]
        only_known_runs: bool,
    },
}

/// Which cases to run.
#[derive(Args, Debug, Clone)]
pub struct Selection {
    /// Only cases whose namespaces are all among these (comma-separated: cgroup,ipc,mnt,net,pid,
    /// time,user,uts); the host-only case (no namespace) is always among them.
    #[arg(long = "ns", value_delimiter = ',', value_parser = parse_ns)]
    pub namespaces: Vec<NsKind>,
    /// Only cases started by these launchers (comma-separated). Native launchers alone (clone3,
    /// clone, unshare, setns-nsfs, setns-pidfd) narrow the default suites. `all`, or any real tool
    /// (util-unshare, util-nsenter, bwrap, lxc, lxc-attach, runc, crun, nspawn), runs the launcher
    /// conformance table instead: each named launcher's matrix (`all`: clone3 as the reference and
    /// every tool), judged against the tool's documented defaults and expected differences, its
    /// limit cases, and the start latencies.
    #[arg(long = "launcher", value_delimiter = ',', value_parser = parse_launcher)]
    pub launchers: Vec<run::LauncherArg>,
    /// Only cases whose name contains this text (e.g. `setns`, `pivot/all`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Only these built-in suites (comma-separated: namespaces, limits; with --launcher all or a
    /// real tool: launchers, launcher-limits).
    #[arg(long = "suite", value_delimiter = ',')]
    pub suites: Vec<String>,
    /// Run the cases in this JSON file (a list of case specs, see the report schema's
    /// `CaseSpec`) instead of the built-in suites.
    #[arg(long = "cases")]
    pub case_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Cases run at once (default: the number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Where to write the JSON report.
    #[arg(long, short, default_value = run::DEFAULT_REPORT)]
    pub output: PathBuf,
    /// Do not write a report.
    #[arg(long, conflicts_with = "output")]
    pub no_report: bool,
    /// Print every failure in full (default: the first 20).
    #[arg(long, short)]
    pub verbose: bool,
    /// With --launcher all or a real tool: do not measure the launchers' start latency after the
    /// cases.
    #[arg(long)]
    pub no_latency: bool,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The baseline report or benchmark summary.
    base: PathBuf,
    /// The report or summary to judge against it.
    new: PathBuf,
    /// Relative change a benchmark's whole confidence interval must exceed, in percent.
    #[arg(long, default_value_t = 10.0)]
    threshold: f64,
    /// Compare even when the fingerprints make the runs incomparable.
    #[arg(long)]
    force: bool,
    /// Report new skips without failing: a check that passed or failed in BASE, or a case that
    /// ran or errored there, and is skipped in NEW (for a NEW machine that lacks a requirement
    /// on purpose; the skip names it).
    #[arg(long)]
    allow_new_skips: bool,
    /// Report what BASE holds and NEW does not hold at all without failing: suites, cases, and
    /// checks of a case both ran (for a narrower NEW run, or a check renamed or dropped between
    /// isoprobe versions). A NEW that holds no cases still fails.
    #[arg(long)]
    allow_missing: bool,
    /// The kernel gate: BASE and NEW ran on different kernels on purpose, and the cgroup layout a
    /// kernel was booted with (cgroup2 alone in a VM, hybrid on a host) is part of what is
    /// compared: a layout difference is noted instead of making the runs incomparable. Verdicts
    /// are judged as without it: new skips and missing cases fail it too.
    #[arg(long)]
    kernel_gate: bool,
    /// How benchmark times are compared: auto (nanoseconds on the same machine, ratios to the
    /// calibration otherwise), absolute, calibration.
    #[arg(long, value_enum, default_value = "auto")]
    basis: BasisArg,
    /// Judge ratios against this calibration only.
    #[arg(long)]
    calibration: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    format: CompareFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Json,
    Junit,
    Ktap,
    #[value(alias = "md")]
    Markdown,
    Html,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Json => Format::Json,
            FormatArg::Junit => Format::Junit,
            FormatArg::Ktap => Format::Ktap,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Html => Format::Html,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BasisArg {
    Auto,
    Absolute,
    Calibration,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompareFormat {
    Text,
    #[value(alias = "md")]
    Markdown,
}

fn parse_ns(s: &str) -> Result<NsKind, String> {
    s.parse::<NsKind>().map_err(|_| format!("unknown namespace `{s}`"))
}

fn parse_launcher(s: &str) -> Result<run::LauncherArg, String> {
    if s == "all" {
        return Ok(run::LauncherArg::All);
    }
    let kinds = || LauncherKind::ALL.into_iter().chain(LauncherKind::EXTERNAL);
    kinds().find(|l| l.name() == s).map(run::LauncherArg::One).ok_or_else(|| {
        let names: Vec<&str> = kinds().map(|l| l.name()).collect();
        format!("unknown launcher `{s}` (expected all, or one of {})", names.join(", "))
    })
}

fn main() -> ExitCode {
    isoprobe_probes::multicall();
    match real_main() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("isoprobe: failed to {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<u8> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::List(sel) => run::list(&sel),
        Command::Env { json } => {
            // As a report records it: `env --json` prints a report's `fingerprint` object.
            let fp = isoprobe_reports::record::Fingerprint::from(&Fingerprint::collect(LAUNCHER_TOOLS));
            if json {
                println!("{}", serde_json::to_string_pretty(&fp).context("serialise the fingerprint")?);
            } else {
                for (k, v) in fp.properties() {
                    println!("{k} = {v}");
                }
            }
            Ok(0)
        }
        Command::Report { file, format, output, bench } => {
            let mut doc = load(&file)?;
            if let Some(b) = bench {
                match (&mut doc, load(&b)?) {
                    (Document::Run(r), Document::Bench(s)) => r.bench = Some(*s),
                    _ => anyhow::bail!(
                        "attach {} to {}: --bench takes a benchmark summary, and FILE must be a run report",
                        b.display(),
                        file.display()
                    ),
                }
            }
            let text = render(&doc, format.into()).with_context(|| format!("render {}", file.display()))?;
            write_out(output.as_deref(), &text)?;
            Ok(0)
        }
        Command::Compare(a) => {
            if !(a.threshold.is_finite() && a.threshold > 0.0 && a.threshold < 100.0) {
                anyhow::bail!("use threshold {}: it must be a percentage above 0 and below 100", a.threshold);
            }
            let (base, new) = match (load(&a.base), load(&a.new)) {
                (Ok(b), Ok(n)) => (b, n),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("isoprobe compare: could not compare: failed to {e}");
                    return Ok(EXIT_INCOMPARABLE);
                }
            };
            let opts = CompareOptions {
                threshold: a.threshold / 100.0,
                force: a.force,
                allow_new_skips: a.allow_new_skips,
                allow_missing: a.allow_missing,
                basis: match a.basis {
                    BasisArg::Auto => Basis::Auto,
                    BasisArg::Absolute => Basis::Absolute,
                    BasisArg::Calibration => Basis::Calibration,
                },
                calibration: a.calibration,
                kernel_gate: a.kernel_gate,
            };
            let c = match compare(&base, &a.base.display().to_string(), &new, &a.new.display().to_string(), &opts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("isoprobe compare: could not compare: failed to {e}");
                    return Ok(EXIT_INCOMPARABLE);
                }
            };
            let text = match a.format {
                CompareFormat::Text => c.to_text(),
                CompareFormat::Markdown => c.to_markdown(),
            };
            write_out(None, &text)?;
            Ok(c.exit_code())
        }
        Command::Snapshot { output } => {
            let lines = isoprobe_harness::snapshot::HostSnapshot::take().lines();
            write_out(output.as_deref(), &(lines.join("\n") + "\n"))?;
            Ok(0)
        }
        Command::Cleanup { dry_run, only_known_runs } => cleanup::cleanup(dry_run, only_known_runs),
    }
}

/// Writes `text` to `path`, or to standard output.
fn write_out(path: Option<&std::path::Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => create_file(p)?.write_all(text.as_bytes()).with_context(|| format!("write {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("write to standard output")
        }
    }
}

/// Creates (or truncates) the file `p`, and its directory where missing.
fn create_file(p: &std::path::Path) -> Result<std::fs::File> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::File::create(p).with_context(|| format!("write {}", p.display()))
}
