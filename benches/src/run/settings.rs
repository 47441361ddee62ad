//! What a bench binary was asked to do (bench, test or list; full or quick) and how each case is
//! sampled.

/// What criterion was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: measure and write the summary.
    Bench,
    /// `cargo test --benches` or `cargo bench -- --test`: run every case once, no summary.
    Test,
    /// `--list`, `--profile-time`: no summary.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mode: Mode,
    /// `cargo bench -- --quick` or `ISOPROBE_BENCH_QUICK=1`: smaller sample counts and parameter
    /// ranges (about a minute for all binaries).
    pub quick: bool,
    /// `--quick` was passed: criterion then uses its own quick sampling (doubling the iteration
    /// count until two consecutive batches agree), which ignores the fixed sample counts.
    pub criterion_quick: bool,
}

impl Settings {
    pub fn from_env() -> Settings {
        let args: Vec<String> = std::env::args().collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        let mode = if has("--list") || has("--profile-time") {
            Mode::Other
        } else if has("--test") || !has("--bench") {
            Mode::Test
        } else {
            Mode::Bench
        };
        let env_quick = std::env::var("ISOPROBE_BENCH_QUICK").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        Settings { mode, quick: has("--quick") || env_quick, criterion_quick: has("--quick") }
    }

    /// Test mode runs each case once: parameter ranges shrink as in quick mode.
    pub fn small(&self) -> bool {
        self.quick || self.mode != Mode::Bench
    }

    /// `full` in a full run, `quick` otherwise.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.small() { quick } else { full }
    }
}

/// How a case is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Criterion's time-based sampling, for in-process operations far below a microsecond.
    Batched,
    /// A fixed number of single-iteration samples (full run, quick run).
    PerOp { full: usize, quick: usize },
    /// Like `PerOp`, for cases that create or release a network namespace per iteration: smaller
    /// counts, and an idle netns cleanup before every iteration (see [`Group::bench`](super::Group::bench)).
    Netns { full: usize, quick: usize },
}

/// Sample counts used by most cases.
pub const PER_OP: Profile = Profile::PerOp { full: 1000, quick: 20 };
/// Sample counts of cases that create a network namespace per iteration.
pub const NETNS: Profile = Profile::Netns { full: 150, quick: 10 };
