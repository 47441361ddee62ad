fn main() {
    isoprobe_probes::multicall();
    let run = isoprobe_benches::BenchRun::new("scaling");
    run.finish();
}
