#!/usr/bin/env bash
# Runs isoprobe on Debian kernels, each booted in its own qemu VM (TCG, 2 vCPUs) with isoprobe's
# init: cgroup2 alone with every controller enabled, `isoprobe run` (the namespace matrix and the
# limit suite) as root, its JSON report brought out over a serial data channel and rendered as
# KTAP. One VM at a time. `host` runs the same CLI natively on this machine instead of in a VM.
# See ci/kernels/README.md.
#
#   ci/kernels/run.sh [--plan NAME|FILE] [--out DIR] [--cpus N] [--verbose] [KERNEL...]
#
# KERNEL: a Debian kernel image package or pattern (see fetch.sh), `6.1` or `6.12` (the newest
# bookworm 6.1 / bookworm-backports 6.12 cloud kernel), or `host`; by default 6.1 and 6.12.
# NAME: a plan in ci/kernels/plans/ (default: suites). Each kernel's results go to
# DIR/<release>/ (report.json, report.ktap, result.json, console.log, files/). Exits 1 when any
# kernel's run did not pass.
set -euo pipefail
cd "$(dirname "$0")/../.."

plan=suites
out=""
cpus=2
verbose=()
while [ $# -gt 0 ]; do
  case $1 in
    --plan) plan=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    -v | --verbose) verbose=(--verbose); shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
case $plan in
  */* | *.json) plan_file=$plan ;;
  *) plan_file=ci/kernels/plans/$plan.json ;;
esac
[ -f "$plan_file" ] || { echo "run.sh: no plan $plan_file" >&2; exit 2; }
# Cargo's target directory, as cargo itself picks it (CARGO_TARGET_DIR, else ./target).
target=${CARGO_TARGET_DIR:-target}
out=${out:-$target/kernels/runs/$(date -u +%Y%m%dT%H%M%SZ)}

packages=()
host=false
for k in "${kernels[@]}"; do
  case $k in
    host) host=true ;;
    6.1) packages+=('linux-image-6\.1\.0-[0-9]+-cloud-amd64') ;;
    6.12) packages+=('linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64') ;;
    *) packages+=("$k") ;;
  esac
done
if [ ${#packages[@]} -gt 0 ] && ! command -v qemu-system-x86_64 >/dev/null; then
  echo "run.sh: qemu-system-x86_64 is missing: install it with apt-get install qemu-system-x86" >&2
  exit 2
fi

# Release builds: under TCG every instruction is emulated, and debug code would cost minutes.
# The CLI is static and also the probe (multicall), so it is all the VM needs of isoprobe.
cargo build --release -q -p isoprobe -p isoprobe-ci --bins
bin=$target/x86_64-unknown-linux-gnu/release
vm=$bin/isoprobe-vm
files=(--file "$bin/isoprobe=/bin/isoprobe")
if grep -q '"/bin/namespaces"' "$plan_file"; then
  suite=$(cargo test --release -q -p isoprobe-suites --test namespaces --no-run --message-format=json \
    | sed -n 's/.*"executable":"\([^"]*namespaces[^"]*\)".*/\1/p' | tail -n 1)
  [ -x "$suite" ] || { echo "run.sh: could not find the built namespace suite" >&2; exit 1; }
  files+=(--file "$suite=/bin/namespaces")
fi
# The latency measurement: criterion benchmarks in quick mode (fixed sample counts), the
# calibration cases and clone3+exit+wait per namespace kind, their summary attached to the report
# so that `isoprobe compare` judges latencies relative to calibrations measured in the same VM.
benches=()
if grep -q '"/bin/bench-' "$plan_file"; then
  for b in calibration namespaces; do
    exe=$(cargo bench -q -p isoprobe-benches --bench "$b" --no-run --message-format=json 2>/dev/null \
      | sed -n "s/.*\"executable\":\"\([^\"]*\/$b-[^\"]*\)\".*/\1/p" | tail -n 1)
    [ -x "$exe" ] || { echo "run.sh: could not find the built $b benchmark" >&2; exit 1; }
    benches+=("$exe")
    files+=(--file "$exe=/bin/bench-$b")
  done
fi
# The io.max case attaches a loop device with util-linux losetup: the host's, with the shared
# libraries it links (the VM has no other userland).
if losetup=$(command -v losetup); then
  files+=(--file "$losetup=/bin/losetup")
  for lib in $(ldd "$losetup" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
    files+=(--file "$(realpath "$lib")=$lib")
  done
else
  echo "run.sh: losetup (util-linux) is not on this host: the io.max case will be skipped in the VMs" >&2
fi

status=0
attach_bench() { # DIR SUMMARY: attach the benchmark summary to DIR/report.json, when both exist
  [ -f "$1/report.json" ] && [ -f "$2" ] || return 0
  "$bin/isoprobe" report "$1/report.json" --bench "$2" -f json -o "$1/report.json"
}
# Whether the plan brings a report out (a step collects a `*report.json`). The namespaces plan runs
# the cargo test suite alone: its verdict is the step's exit status (result.json, judged by
# isoprobe-vm boot), and it writes no report, which is then not missing.
plan_reports=false
grep -q 'report\.json"' "$plan_file" && plan_reports=true
report_of() { # DIR: render the report the VM (or the host run) wrote as KTAP, print its counts
  local dir=$1
  if [ ! -f "$dir/report.json" ] && ! $plan_reports && [[ $dir != */host ]]; then
    return 0
  fi
  [ -f "$dir/report.json" ] || { echo "run.sh: $dir has no report.json" >&2; return 1; }
  "$bin/isoprobe" report "$dir/report.json" -f ktap -o "$dir/report.ktap"
}

if [ ${#packages[@]} -gt 0 ]; then
  modules=$("$vm" modules "$plan_file")
  fetched=$(ci/kernels/fetch.sh --cache "$target/kernels" --modules "$modules" "${packages[@]}")
  while read -r package release vmlinuz; do
    echo "== $release ($package): plan $plan_file" >&2
    "$vm" boot --kernel "$vmlinuz" --plan "$plan_file" --cpus "$cpus" --out "$out/$release" "${verbose[@]}" \
      "${files[@]}" || status=1
    for r in "$out/$release"/files/*.report.json; do
      [ -f "$r" ] || continue
      step=$(basename "$r" .report.json)
      case $step in
        isoprobe) cp "$r" "$out/$release/report.json" ;;
        *) # Another step's report (limits-v2: the OCI runtimes' limit cases), rendered beside it.
          cp "$r" "$out/$release/$step.report.json"
          "$bin/isoprobe" report "$r" -f ktap -o "$out/$release/$step.report.ktap" || status=1 ;;
      esac
    done
    attach_bench "$out/$release" "$out/$release"/files/*.bench-summary.json
    report_of "$out/$release" || status=1
  done <<<"$fetched"
fi

if $host; then
  # The host kernel: the same CLI and the same run, natively (as root, on this machine's cgroup
  # layout); the plan's modules and sysctls are not applied here.
  echo "== host ($(uname -r)): isoprobe run natively" >&2
  mkdir -p "$out/host"
  start=$(date +%s%N)
  rc=0
  "$bin/isoprobe" run --output "$out/host/report.json" >"$out/host/isoprobe.log" 2>&1 || rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  printf '{"release": "%s", "exit": %d, "total_ms": %d}\n' "$(uname -r)" "$rc" "$ms" >"$out/host/result.json"
  tail -n 20 "$out/host/isoprobe.log" >&2
  [ "$rc" -eq 0 ] || status=1
  if [ ${#benches[@]} -gt 0 ]; then
    # Both from this shell: one bench run id (the parent's pid), so their parts merge.
    for exe in "${benches[@]}"; do
      filter=()
      [[ $exe == */namespaces-* ]] && filter=(namespaces/clone3_exit_wait)
      ISOPROBE_BENCH_QUICK=1 CARGO_TARGET_DIR=$out/host/bench "$exe" --bench "${filter[@]}" \
        >>"$out/host/bench.log" 2>&1 || status=1
    done
    attach_bench "$out/host" "$out/host/bench/isoprobe/bench-summary.json"
  fi
  report_of "$out/host" || status=1
fi

echo
dirs=()
for d in "$out"/*/; do [ -f "$d/console.log" ] && dirs+=("$d"); done
[ ${#dirs[@]} -eq 0 ] || "$vm" summary "${dirs[@]}" || true
for d in "$out"/*/; do
  for r in "$d"report.json "$d"*.report.json; do
    [ -f "$r" ] && "$bin/isoprobe" report "$r" -f markdown | sed -n '/^| suite/,/^$/p' | sed "s#^#$(basename "$d") #" || true
  done
done
echo "results: $out"
exit $status
