#!/usr/bin/env bash
# The kernel-regression gate: runs isoprobe on a baseline and a candidate kernel (each in its own
# qemu VM, or natively for `host`), brings both JSON reports out, and judges the candidate with
# `isoprobe compare --kernel-gate`. See ci/kernels/README.md, "The gate".
#
#   ci/kernels/gate.sh [--plan NAME] [--candidate-plan NAME] [--out DIR] [--threshold PCT] [--force]
#                      [--allow-new-skips] [--allow-missing] BASELINE CANDIDATE
#
# BASELINE, CANDIDATE: what run.sh takes (a Debian kernel package or pattern, 6.1, 6.12, or
# host). --plan: the plan both run (default: suites); --candidate-plan: the candidate's plan
# instead (a planted regression: regress-netns). --threshold: the relative latency change a
# benchmark's whole confidence interval must exceed at least (default 10; compare raises it to the
# noise measured between the two runs). --force: compare even when the fingerprints make the runs
# incomparable (this development host's root lacks cap_sys_resource, a VM's root has it all).
# --allow-new-skips, --allow-missing: passed to compare for a deliberate change (an older kernel
# that skips what the baseline ran); without them the gate fails closed.
# Exit status (compare's, with its fail-closed defaults): 0 no regression, 1 a regression (a
# verdict that passed on the baseline fails, errors or is skipped on the candidate, a case that
# ran now errors or is skipped, a suite, case or check missing from the candidate, a candidate
# report with no cases, a check the baseline did not judge that fails, or a latency
# significantly slower), 2 the gate could not compare (a run brought no report, incomparable
# fingerprints).
set -euo pipefail
cd "$(dirname "$0")/../.."

plan=suites
candidate_plan=""
out=""
threshold=10
force=()
allow=()
while [ $# -gt 0 ]; do
  case $1 in
    --plan) plan=$2; shift 2 ;;
    --candidate-plan) candidate_plan=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --threshold) threshold=$2; shift 2 ;;
    --force) force=(--force); shift ;;
    --allow-new-skips | --allow-missing) allow+=("$1"); shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "gate.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: ci/kernels/gate.sh [options] BASELINE CANDIDATE" >&2; exit 2; }
baseline=$1
candidate=$2
candidate_plan=${candidate_plan:-$plan}
out=${out:-target/kernels/gate/$(date -u +%Y%m%dT%H%M%SZ)}
started=$(date +%s)

# A run that fails its own suites still brings its report out: the comparison decides.
side() { # NAME KERNEL PLAN: run one side, print the path of its report
  local name=$1 kernel=$2 side_plan=$3
  ci/kernels/run.sh --plan "$side_plan" --out "$out/$name" "$kernel" >"$out/$name.log" 2>&1 || true
  local reports=("$out/$name"/*/report.json)
  if [ ! -f "${reports[0]}" ]; then
    echo "gate.sh: the $name run ($kernel, plan $side_plan) brought no report out; see $out/$name.log" >&2
    tail -n 20 "$out/$name.log" >&2
    return 1
  fi
  echo "${reports[0]}"
}

mkdir -p "$out"
echo "== baseline: $baseline (plan $plan)" >&2
base=$(side baseline "$baseline" "$plan") || exit 2
echo "== candidate: $candidate (plan $candidate_plan)" >&2
cand=$(side candidate "$candidate" "$candidate_plan") || exit 2
for log in "$out/baseline.log" "$out/candidate.log"; do
  sed -n '/^| kernel/,$p' "$log" >&2
done

isoprobe=target/x86_64-unknown-linux-gnu/release/isoprobe
args=(compare --kernel-gate --basis calibration --threshold "$threshold" "${force[@]}" "${allow[@]}" "$base" "$cand")
status=0
"$isoprobe" "${args[@]}" | tee "$out/compare.txt" || status=${PIPESTATUS[0]}
"$isoprobe" "${args[@]}" --format markdown >"$out/compare.md" || true
echo "gate: exit $status after $(($(date +%s) - started)) s; results in $out" >&2
exit "$status"
