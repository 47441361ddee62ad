//! The static `isoprobe-probe` binary: everything lives in the library so that the harness and the
//! suites can run the same code as a multicall binary (see `isoprobe_probes::multicall`).

fn main() {
    std::process::exit(isoprobe_probes::probe::main_with_args(std::env::args_os().skip(1).collect()));
}
