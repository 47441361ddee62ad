//! Calibration: the null system call, process creation and exec, so that every other result can
//! also be read as a ratio that compares across machines (see the summary's `ratios`).

#![deny(unsafe_code)]

use isoprobe_benches::payload::{TempDir, write_payload};
use isoprobe_benches::primitives::{self, Call, ExecArgs, SharedPage, Timed};
use isoprobe_benches::run::PER_OP;
use isoprobe_benches::{BenchRun, Profile};

/// getppid calls per sample of the null system call.
const NULL_CALLS: u64 = 1000;

fn main() {
    isoprobe_probes::multicall();
    let mut run = BenchRun::new("calibration");
    let dir = TempDir::new().expect("failed to create the benchmark's temp dir");
    let payload = write_payload(dir.path()).expect("failed to write the static payload");
    let exec = ExecArgs::new(
        std::ffi::CString::new(payload.as_os_str().as_encoded_bytes()).expect("no NUL in a temp path"),
        vec![c"isoprobe-payload".to_owned()],
    );
    let page = SharedPage::new(1).expect("failed to map the shared page");

    let (page, exec) = (&page, &exec);
    let mut g = run.group("calibration");
    // Every case is sampled in rounds (see `run::Group::bench_interleaved`). A getppid sample is
    // the mean of NULL_CALLS calls in a row: one call is far below the clock's resolution.
    g.bench_interleaved("getppid", "", Profile::PerOp { full: 300, quick: 20 }, || {
        let ((), t) = primitives::timed(|| {
            for _ in 0..NULL_CALLS {
                std::hint::black_box(primitives::getppid_syscall());
            }
        });
        let per_call = |ns: u64| (ns + NULL_CALLS / 2) / NULL_CALLS;
        Ok(Timed { wall_ns: per_call(t.wall_ns), cpu_ns: per_call(t.cpu_ns) })
    });
    for (name, call) in
        [("fork_exit_wait", Call::Fork), ("vfork_exit_wait", Call::Vfork), ("clone3_exit_wait", Call::Clone3)]
    {
        g.bench_interleaved(name, "", PER_OP, move || primitives::create_exit_wait(call, 0, page));
    }
    g.bench_interleaved("fork_exec_static", "", PER_OP, move || -> std::io::Result<Timed> {
        primitives::fork_exec_wait(exec, page)
    });
    g.finish();
    run.finish();
    drop(dir);
}
