#!/usr/bin/env bash
# Runs the README's test command (`cargo test`) the way a newcomer's fresh machine would: a copy of
# the checkout under /tmp, in a directory whose name has a space, made read-only, built into a
# CARGO_TARGET_DIR elsewhere, with none of the optional tools (container runtimes, cpio,
# chromium, qemu, newuidmap) on PATH or at the fixed places isoprobe looks for them, and without
# ISOPROBE_EXPECT. It must pass, and every skip must name its reason; the summary lists them.
#
#   ci/fresh-machine.sh        (as root; CI runs it before installing the optional packages)
#
# The tools are hidden in a private mount namespace (each binary found is covered by /dev/null,
# which is not an executable file), so the script also tells the truth on a machine that has them.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "ci/fresh-machine.sh: run as root (it hides tools and makes the copy read-only with mounts)" >&2
  exit 2
fi

# Commands of the optional Debian packages (.ci/run installs them for the rest of CI).
optional=(cpio chromium chromium-browser qemu-system-x86_64 lxc-execute lxc-attach lxc-start lxc-info
  bwrap runc crun systemd-nspawn newuidmap newgidmap)

work=$(mktemp -d "/tmp/fresh machine.XXXXXX")
trap 'rm -rf "$work"' EXIT
checkout="$work/isoprobe checkout"
mkdir "$checkout"
# The tracked and untracked (not ignored) files: what a clone of this tree would hold.
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null \
  | tar -xf - -C "$checkout"

# A PATH with the toolchain and the base system, without the optional commands.
bin="$work/bin"
mkdir "$bin"
cargo_bin=$(dirname "$(command -v cargo)")
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin "$cargo_bin"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    name=$(basename "$f")
    [ -e "$bin/$name" ] && continue
    [[ " ${optional[*]} " == *" $name "* ]] && continue
    ln -s "$f" "$bin/$name"
  done
done

log="$work/test.log"
status=0
unshare --mount --propagation private -- env -i \
  HOME="$HOME" PATH="$bin" TERM=dumb CARGO_TERM_COLOR=never CARGO_TARGET_DIR="$work/target" \
  CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
  CHECKOUT="$checkout" OPTIONAL="${optional[*]}" \
  bash -euo pipefail -c '
    for name in $OPTIONAL; do
      for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        if [ -f "$d/$name" ]; then mount --bind /dev/null "$d/$name"; fi
      done
    done
    mount --bind "$CHECKOUT" "$CHECKOUT"
    mount -o remount,bind,ro "$CHECKOUT"
    cd "$CHECKOUT"
    if touch .write-test 2>/dev/null; then echo "the checkout is not read-only" >&2; exit 1; fi
    cargo test --no-fail-fast 2>&1
    # The skips of plain #[test] functions show only in their output.
    cargo test -q -p isoprobe-ci --lib newc -- --nocapture 2>&1 | grep "^skipped:" || true
  ' >"$log" 2>&1 || status=$?

grep -E "^test result:|FAILED|panicked" "$log" || true
sum() { awk '{ n += $1 } END { print n + 0 }'; }
passed=$(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed.*/\1/p' "$log" | sum)
ignored=$(sed -nE 's/^test result: .* ([0-9]+) ignored.*/\1/p' "$log" | sum)
echo "fresh machine: $passed passed, $ignored ignored; the skips by requirement:"
sed -nE 's/.*\.\.\. ignored \(needs ([^ ]+): .*/\1/p' "$log" | sort | uniq -c | sort -rn
grep "^skipped:" "$log" | sort | uniq -c || true
if grep -qE "\.\.\. ignored$" "$log"; then
  echo "fresh machine: a test was ignored without a reason:" >&2
  grep -E "\.\.\. ignored$" "$log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "fresh machine: cargo test failed (exit $status); the log:" >&2
  grep -vE " \.\.\. ok$" "$log" | tail -n 200 >&2
  exit 1
fi
echo "fresh machine: cargo test passed"
