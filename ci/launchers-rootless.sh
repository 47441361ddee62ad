#!/usr/bin/env bash
# Runs the launcher suite as an unprivileged user: util-linux unshare -r, bwrap and runc/crun
# --rootless (with a user namespace) must pass; LXC and systemd-nspawn, and every case without a
# user namespace, skip with the reason. Creates the user if missing.
#
#   ci/launchers-rootless.sh [USER]      (as root; default user: isoprobe-rootless, as ci/rootless.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

user=${1:-isoprobe-rootless}
if [ "$(id -u)" -ne 0 ]; then
  echo "ci/launchers-rootless.sh: run as root (it creates a user and switches to it)" >&2
  exit 2
fi
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$user"

bin=$(cargo test -p isoprobe-suites --test launchers --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*launchers[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "ci/launchers-rootless.sh: could not find the built suite" >&2; exit 1; }

# The unprivileged user gets its own copy: the checkout may not be readable to it.
dir=$(mktemp -d /tmp/launchers-rootless.XXXXXX)
trap 'rm -rf "$dir"' EXIT
install -m 0755 "$bin" "$dir/launchers"
chmod 0755 "$dir"

# userns: the rootless cases must really run here (a skip for lack of user namespaces fails).
runuser -u "$user" -- env ISOPROBE_EXPECT=userns "$dir/launchers" 2>&1 | tee "$dir/log" | grep -v ' \.\.\. ok$' || true
grep -q '^test result: ok\.' "$dir/log"
grep -q '^host snapshot unchanged' "$dir/log"
