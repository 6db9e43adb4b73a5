#!/usr/bin/env bash
# The HTML report in a real browser: a small matrix (PASS, UNSUPPORTED
# and XFAIL cells) is run, and its index.html is opened in headless
# Chromium (Debian's chromium, installed by scripts/deps.sh), driven over
# the DevTools protocol by html-check.py: no console error or failed
# load, every cell of results.json in the grid with its verdict, a cell's
# evidence overlay opens, and a screenshot of the grid that is a real
# picture (kept as $NBDP_TEST_DIR/screenshot.png while the test runs).
# Then the browser and the run are checked to leave nothing behind.
source "$(dirname "$0")/lib.sh"
chromium=${NBDP_CHROMIUM:-$(command -v chromium || command -v chromium-browser || :)}
if [ -z "$chromium" ]; then
  echo "SKIP: chromium is not installed (scripts/deps.sh installs Debian's chromium)"
  exit 77
fi
requires nbdkit memory --version
requires qemu-io --version
requires jq --version
requires /usr/bin/python3 --version

out=$scratch/run
matrix --servers nbdkit-memory,qemu-nbd-raw --clients libnbd,qemu-io \
  --scenarios handshake-info,odd-size,resize-grow --timeout 30 -j 2 \
  --out "$out"
[ $rc -eq 0 ] || fail "nbd-matrix exit status $rc, expected 0"
check_clean
# The run shows several verdicts, so the colours mean something.
jq -e '[.cells[].verdict] | unique | length >= 3' "$out/results.json" \
  >/dev/null || fail "the small run has fewer than 3 different verdicts"

mkdir -p "$scratch/browser"
/usr/bin/python3 "$top/harness/tests/html-check.py" "$chromium" "$out" \
  "$scratch/browser"
r=$?
if [ $r -eq 2 ]; then
  sed 's/^/  chromium| /' "$scratch/browser/chromium.log" | tail -n 20
  fail "Chromium could not be driven (see its log above)"
fi
[ $r -eq 0 ] || fail "html-check.py found a problem (see above)"
[ -s "$scratch/browser/screenshot.png" ] || fail "no screenshot"
left=$(pgrep -a -f "$scratch/browser" || :)
[ -z "$left" ] || fail "Chromium processes left behind: $left"
exit 0
