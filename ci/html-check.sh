#!/usr/bin/env bash
# Renders the HTML report in headless Chromium (Debian's `chromium`) and fails on a blank page or
# a missing section. The page is a real run of a small matrix subset with the benchmark fixture
# attached, so that every section, the colour grid and the SVG charts are on it; a launcher
# conformance run (live and the fixture) must also show the launcher sections.
#
# Usage: ci/html-check.sh [path/to/isoprobe]   (default: build the debug binary)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-}
if [[ -z $bin ]]; then
  cargo build -q --bin isoprobe
  bin=target/x86_64-unknown-linux-gnu/debug/isoprobe
fi
chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
  echo "html-check: failed to find chromium (apt-get install chromium)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/html-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One report with a failure and a skip (the fixture), one from a live run: both must render.
# Its summary and failures go to a file, shown when the run fails: a failed case's evidence must
# not go with the work directory (once only the FAIL line on stderr was left to read).
"$bin" run --ns pid,uts --launcher clone3 -o "$work/live.json" >"$work/live.txt" || {
  cat "$work/live.txt" >&2
  exit 1
}
"$bin" report "$work/live.json" --bench reports/tests/fixtures/bench-base.json -f html -o "$work/live.html"
"$bin" report reports/tests/fixtures/report.json --bench reports/tests/fixtures/bench-base.json \
  -f html -o "$work/fixture.html"
# A launcher run with tools missing or present: it must render either way (exit 1 is a failed case).
"$bin" run --launcher bwrap,util-unshare --ns uts,net -o "$work/launchers-live.json" >/dev/null || (($? == 1))
"$bin" report "$work/launchers-live.json" --bench reports/tests/fixtures/bench-base.json -f html \
  -o "$work/launchers-live.html"
"$bin" report reports/tests/fixtures/report-launchers.json --bench reports/tests/fixtures/bench-base.json \
  -f html -o "$work/launchers-fixture.html"

# Without these flags Chromium waits on the network and on first-run tasks on a closed network.
headless() {
  local profile
  profile=$(mktemp -d "$work/profile.XXXXXX")
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1280,2400 --hide-scrollbars "$@" 2>>"$work/chromium.log"
}

# A white page of the same size, for the blank-page comparison.
printf '<!DOCTYPE html><html><body></body></html>' >"$work/blank.html"
headless --screenshot="$work/blank.png" "file://$work/blank.html" >/dev/null
blank_size=$(stat -c %s "$work/blank.png")

fail=0
for page in live fixture launchers-live launchers-fixture; do
  headless --dump-dom "file://$work/$page.html" >"$work/$page.dom"
  sections="summary failures matrix skips environment benchmarks"
  if [[ $page == launchers-* ]]; then
    sections+=" launchers conformance launcher-limits start-latency"
  fi
  for section in $sections; do
    if ! grep -q "<section id=\"$section\">" "$work/$page.dom"; then
      echo "html-check: $page: section '$section' is missing from the rendered page" >&2
      fail=1
    fi
  done
  charts=$(grep -o '<svg' "$work/$page.dom" | wc -l)
  cells=$(grep -o '<td class="c ' "$work/$page.dom" | wc -l || true)
  if ((charts < 3)); then
    echo "html-check: $page: $charts SVG charts rendered, expected at least 3" >&2
    fail=1
  fi
  headless --screenshot="$work/$page.png" "file://$work/$page.html" >/dev/null
  size=$(stat -c %s "$work/$page.png")
  # A blank page compresses to almost nothing; text, a colour grid and charts do not.
  if ((size < 4 * blank_size)); then
    echo "html-check: $page: the screenshot ($size bytes) is no bigger than a blank page's ($blank_size bytes) times 4" >&2
    fail=1
  fi
  echo "html-check: $page: sections ok, $charts charts, $cells grid cells, screenshot $size bytes (blank $blank_size)"
done
if ((fail)); then
  echo "html-check: chromium log:" >&2
  tail -20 "$work/chromium.log" >&2 || true
  exit 1
fi
echo "html-check: ok"
