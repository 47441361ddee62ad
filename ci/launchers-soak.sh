#!/usr/bin/env bash
# Runs the launcher suite N times in a row (as root) and checks after each run that nothing of that
# run is left: its run directory, cgroups named after its run token (the launchers' own `-lxc`,
# `-oci` and `-nspawn` cgroups and the per-case ones), LXC's and systemd-nspawn's bookkeeping
# under /run, mounts under its run directory, and processes running its probe copy. Other isoprobe
# runs on the same host (their cgroups, their run directories) are told apart by their run token.
#
#   ci/launchers-soak.sh [N]      (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
bin=$(cargo test -p isoprobe-suites --test launchers --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*launchers[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "ci/launchers-soak.sh: could not find the built suite" >&2; exit 1; }

log=$(mktemp /tmp/launchers-soak.XXXXXX)
trap 'rm -f "$log"' EXIT
failed=0
for i in $(seq 1 "$runs"); do
  "$bin" >"$log" 2>&1 &
  pid=$!
  # The run directory is /tmp/isoprobe-<pid>-<token>: learn the token while it exists.
  token=""
  for _ in $(seq 1 200); do
    d=$(ls -d /tmp/isoprobe-"$pid"-* 2>/dev/null | head -n 1 || true)
    if [ -n "$d" ]; then token=${d##*-}; break; fi
    sleep 0.05
  done
  status=0
  wait "$pid" || status=$?
  result=$(grep '^test result:' "$log" || echo "no test result")
  left=()
  [ -z "$token" ] && left+=("could not learn the run token")
  compgen -G "/tmp/isoprobe-$pid-*" >/dev/null && left+=("run dir /tmp/isoprobe-$pid-*")
  if [ -n "$token" ]; then
    while IFS= read -r c; do left+=("cgroup $c"); done < <(find /sys/fs/cgroup -maxdepth 3 -type d -name "isoprobe-$token-*")
    grep -q "isoprobe-$pid-$token" /proc/self/mountinfo && left+=("mounts under the run dir")
  fi
  [ -e /run/lxc ] && left+=("/run/lxc")
  [ -e /run/systemd/nspawn ] && left+=("/run/systemd/nspawn")
  while IFS= read -r c; do left+=("cgroup $c"); done < <(find /sys/fs/cgroup -maxdepth 2 -type d \( -name lxc.pivot -o -name payload -o -name supervisor \))
  for p in $(pgrep -x isoprobe-probe || true); do
    exe=$(readlink "/proc/$p/exe" 2>/dev/null || true)
    case "$exe" in "/tmp/isoprobe-$pid-"*) left+=("process $p ($exe)") ;; esac
  done
  echo "run $i/$runs: exit $status; $result; left behind: ${#left[@]}"
  for l in "${left[@]}"; do echo "  left: $l"; done
  if [ "$status" -ne 0 ]; then
    # The failing trials in full, and the first lines of any host difference.
    sed -n '/^---- /,/^$/p' "$log" | head -n 60 | sed 's/^/  /'
    grep -E '^  (cgroup|/tmp|process|mount|sysv|\+|-) ' "$log" | head -n 20 | sed 's/^/  /'
  fi
  [ "${#left[@]}" -eq 0 ] || failed=1
  grep -q '^test result: ok\.' "$log" || failed=1
done
exit "$failed"
