//! The `isoprobe` command line.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use isoprobe_harness::matrix::namespace_matrix;
use isoprobe_harness::{CaseOutcome, Harness, HarnessOptions};

#[derive(Parser, Debug)]
#[command(name = "isoprobe", version, about = "Does Linux isolation really isolate, and what does it cost?")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the namespace matrix and print a summary.
    Run {
        /// Only cases whose name contains this text (e.g. `setns`, `pivot/all`).
        #[arg(long)]
        filter: Option<String>,
        /// Print every failure in full.
        #[arg(long, short)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    isoprobe_probes::multicall();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isoprobe: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { filter, verbose } => {
            let harness = Harness::new(HarnessOptions::default()).context("failed to set up the run")?;
            let cases: Vec<_> = namespace_matrix()
                .into_iter()
                .filter(|s| filter.as_deref().is_none_or(|f| s.name().contains(f)))
                .collect();
            let started = std::time::Instant::now();
            let outcomes: Vec<CaseOutcome> = cases.iter().map(|s| harness.run_case(s)).collect();
            let failed: Vec<&CaseOutcome> = outcomes.iter().filter(|o| !o.passed()).collect();
            for o in &failed {
                for line in o.failure_lines().iter().take(if verbose { usize::MAX } else { 3 }) {
                    println!("FAIL {line}");
                }
            }
            let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).count();
            println!(
                "{} cases: {} passed, {} failed, {} skipped in {:.1?}",
                outcomes.len(),
                outcomes.len() - failed.len() - skipped,
                failed.len(),
                skipped,
                started.elapsed()
            );
            Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
