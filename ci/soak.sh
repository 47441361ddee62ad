#!/usr/bin/env bash
# Crash-only soak: N rounds of isoprobe processes SIGKILLed at random moments, then one clean run;
# the host must then match its snapshot from before, with nothing left for `isoprobe cleanup`.
#
#   ci/soak.sh [N]     (as root; default 10 rounds; about 25 s a round on 2 CPUs)
#
# Each round kills, each at a random moment of its own run:
#   - a full `isoprobe run` (the namespace matrix, then the limit suite: mostly mid-limit-case);
#   - the protocol suite (a hung probe, a probe SIGKILLed, a probe with a child that outlives it,
#     a harness panic mid-case);
#   - the memory limit cases (probes OOM-killed at memory.max);
#   - the pids limit cases (a fork bomb under pids.max).
# Every next process removes what the killed ones left (crash-only recovery, see
# harness/src/leftovers/); the round prints what was left when it ended. The clean run at the
# end must report the recovery and finish; then the snapshot (`isoprobe snapshot`) must equal
# the one taken before the first round, and `isoprobe cleanup --dry-run` must find nothing.
# Not part of .ci/run (its time); run it on a quiet machine (another isoprobe run would show in
# the snapshots).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-10}
if [ "$(id -u)" -ne 0 ]; then
  echo "ci/soak.sh: run as root" >&2
  exit 2
fi
started=$(date +%s)
cargo build -q --release --bin isoprobe
isoprobe=target/x86_64-unknown-linux-gnu/release/isoprobe
suite_bin() {
  cargo test -q -p isoprobe-suites --test "$1" --no-run --message-format=json 2>/dev/null \
    | sed -n "s/.*\"executable\":\"\([^\"]*\/$1-[^\"]*\)\".*/\1/p" | tail -n 1
}
protocol=$(suite_bin protocol)
limits=$(suite_bin limits)
[ -x "$protocol" ] && [ -x "$limits" ] || { echo "ci/soak.sh: could not build the suites" >&2; exit 1; }

work=$(mktemp -d /tmp/soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Copies: a rebuild of the checkout during the soak must not change what it runs.
mkdir "$work/bin"
cp "$isoprobe" "$protocol" "$limits" "$work/bin/"
isoprobe=$work/bin/isoprobe
protocol=$work/bin/$(basename "$protocol")
limits=$work/bin/$(basename "$limits")

leftovers() { # what `isoprobe cleanup` would remove or keep now: with no run live, both are leaks
  "$isoprobe" cleanup --dry-run | sed -n 's/^would remove \([0-9]*\), kept \([0-9]*\),.*/\1 \2/p' \
    | awk '{ print $1 + $2 }'
}
if [ "$(leftovers)" != 0 ]; then
  echo "ci/soak.sh: isoprobe leftovers are already on the host; run isoprobe cleanup first:" >&2
  "$isoprobe" cleanup --dry-run >&2
  exit 2
fi
"$isoprobe" snapshot -o "$work/before"

# A random moment in [LO, HI) seconds, to 1 ms, from 30 bits of bash's $RANDOM (awk's srand with a
# seed of more digits than it keeps repeated the same few moments).
moment() {
  awk -v r="$((RANDOM * 32768 + RANDOM))" -v lo="$1" -v hi="$2" 'BEGIN { printf "%.3f", lo + (hi - lo) * r / 1073741824 }'
}

# Runs CMD... and SIGKILLs it after SECONDS if it still runs (by its pid: the shell's own child,
# not reaped before the kill, so the pid cannot have been recycled); prints how it ended.
kill_after() {
  local secs=$1
  shift
  "$@" >"$work/out" 2>&1 &
  local pid=$!
  sleep "$secs"
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)
  if [ -n "$state" ] && [ "$state" != Z ]; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    echo "killed at ${secs} s"
  else
    local code=0
    wait "$pid" 2>/dev/null || code=$?
    echo "ended by itself (exit $code)"
  fi
}

total_left=0
for i in $(seq 1 "$rounds"); do
  t_run=$(moment 0.3 36)
  # Each up to about the time its run takes here (a full run 36 s, the protocol suite 4.1 s, the
  # memory cases 0.44 s, the pids cases 0.09 s).
  t_protocol=$(moment 0.2 4.2)
  t_memory=$(moment 0.05 0.5)
  t_pids=$(moment 0.02 0.12)
  r_run=$(kill_after "$t_run" "$isoprobe" run --no-report -j 2)
  r_protocol=$(kill_after "$t_protocol" "$protocol" --test-threads 2)
  r_memory=$(kill_after "$t_memory" "$limits" memory/)
  r_pids=$(kill_after "$t_pids" "$limits" pids/)
  left=$(leftovers)
  total_left=$((total_left + left))
  echo "round $i/$rounds: run $r_run; protocol $r_protocol; memory $r_memory; pids $r_pids; $left objects left for the next"
done

echo "clean run:"
status=0
"$isoprobe" run --no-report -j 2 >"$work/clean.out" 2>"$work/clean.err" || status=$?
grep -E "dead isoprobe run" "$work/clean.err" || echo "  (nothing to recover)"
tail -n 3 "$work/clean.out"
"$isoprobe" snapshot -o "$work/after"
left=$(leftovers)
echo "soak: $rounds rounds in $(($(date +%s) - started)) s; the killed processes left $total_left objects in all, each removed by the next process; after the clean run (exit $status): $left left"
fail=0
if ! diff -u "$work/before" "$work/after" >"$work/diff"; then
  echo "soak: the host changed:" >&2
  grep -E '^[-+][^-+]' "$work/diff" >&2
  fail=1
fi
if [ "$left" != 0 ]; then
  echo "soak: isoprobe cleanup would still remove:" >&2
  "$isoprobe" cleanup --dry-run >&2
  fail=1
fi
if [ "$status" -ge 2 ]; then
  echo "soak: the clean run could not run (exit $status):" >&2
  tail -n 20 "$work/clean.err" >&2
  fail=1
fi
[ "$fail" -eq 0 ] && echo "soak: host snapshot unchanged, 0 leftovers"
exit "$fail"
