#!/usr/bin/env bash
# Runs a suite as an unprivileged user: the cases with a user namespace run rootless and must pass;
# the others are skipped with the reason (needs root). Creates the user if missing.
#
#   ci/rootless.sh [SUITE] [USER]   (as root; suites: namespaces (default), launchers;
#                                    default user: isoprobe-rootless)
#
# namespaces: every case with a user namespace. launchers: util-linux unshare -r, bwrap and
# runc --rootless must pass; LXC, crun on this hybrid host and systemd-nspawn skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${1:-namespaces}
user=${2:-isoprobe-rootless}
case "$suite" in
  namespaces|launchers) ;;
  *) echo "ci/rootless.sh: unknown suite '$suite' (namespaces or launchers)" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "ci/rootless.sh: run as root (it creates a user and switches to it)" >&2
  exit 2
fi
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$user"

# Build the suite and find its executable.
bin=$(cargo test -p isoprobe-suites --test "$suite" --no-run --message-format=json 2>/dev/null \
  | sed -n "s/.*\"executable\":\"\([^\"]*\/$suite-[^\"]*\)\".*/\1/p" | tail -n 1)
[ -x "$bin" ] || { echo "ci/rootless.sh: could not find the built $suite suite" >&2; exit 1; }

# The unprivileged user gets its own copy: the checkout may not be readable to it.
dir=$(mktemp -d "/tmp/rootless-$suite.XXXXXX")
trap 'rm -rf "$dir"' EXIT
install -m 0755 "$bin" "$dir/$suite"
chmod 0755 "$dir"

# userns: the rootless cases must really run here (a skip for lack of user namespaces fails).
runuser -u "$user" -- env ISOPROBE_EXPECT=userns "$dir/$suite" 2>&1 | tee "$dir/log" | grep -v ' \.\.\. ok$' || true
grep -q '^test result: ok\.' "$dir/log"
grep -q '^host snapshot unchanged' "$dir/log"
