#!/usr/bin/env bash
# Runs isoprobe's suites on Debian kernels, each booted in its own qemu VM (TCG, 2 vCPUs) with
# isoprobe's init: cgroup2 alone with every controller enabled, the suite run as root, its output
# and files brought out over a serial data channel. One VM at a time. See ci/kernels/README.md.
#
#   ci/kernels/run.sh [--plan NAME] [--out DIR] [--cpus N] [--verbose] [PACKAGE...]
#
# PACKAGE: a Debian kernel image package or pattern (see fetch.sh); by default the newest
# bookworm 6.1 cloud kernel and the newest bookworm-backports 6.12 cloud kernel. NAME: a plan in
# ci/kernels/plans/ (default: namespaces). Exits 1 when any kernel's run did not pass.
set -euo pipefail
cd "$(dirname "$0")/../.."

plan=namespaces
out=""
cpus=2
verbose=()
while [ $# -gt 0 ]; do
  case $1 in
    --plan) plan=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    -v | --verbose) verbose=(--verbose); shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
  packages=('linux-image-6\.1\.0-[0-9]+-cloud-amd64' 'linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64')
fi
plan_file=ci/kernels/plans/$plan.json
[ -f "$plan_file" ] || { echo "run.sh: no plan $plan_file" >&2; exit 2; }
out=${out:-target/kernels/runs/$(date -u +%Y%m%dT%H%M%SZ)}
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 2; }

# Release builds: under TCG every instruction is emulated, and debug code would cost minutes.
cargo build --release -q -p isoprobe-ci --bins
suite=$(cargo test --release -q -p isoprobe-suites --test namespaces --no-run --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*namespaces[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$suite" ] || { echo "run.sh: could not find the built namespace suite" >&2; exit 1; }
vm=target/x86_64-unknown-linux-gnu/release/isoprobe-vm

modules=$("$vm" modules "$plan_file")
kernels=$(ci/kernels/fetch.sh --modules "$modules" "${packages[@]}")

status=0
while read -r package release vmlinuz; do
  echo "== $release ($package): plan $plan" >&2
  "$vm" boot --kernel "$vmlinuz" --plan "$plan_file" --cpus "$cpus" --out "$out/$release" "${verbose[@]}" \
    --file "$suite=/bin/namespaces" || status=1
done <<<"$kernels"

echo
"$vm" summary "$out"/*/ || true
echo "results: $out"
exit $status
