#!/usr/bin/env bash
# Runs the whole conformance suite against nbd-refserver (a subject under
# test like any other): every test must PASS or be SKIP/UNSUPPORTED with a
# reason; the reference server has no known deviations.
source "$(dirname "$0")/../tests/functions.sh"

conform=$NBDP_TOP/suites/nbd-conform
requires test -x "$conform"
requires test -x "$NBD_REFSERVER"
export TMPDIR=$NBDP_TEST_DIR/tmp
mkdir -p "$TMPDIR"

"$conform" -j 4 --ro-export ro --json "$NBDP_TEST_DIR/results.json" \
  --server "$NBD_REFSERVER -f --exit-with-parent -U {socket} \
            --export name=ro,memory=1M,ro memory 64M" \
  > "$NBDP_TEST_DIR/tap" 2>&1
rc=$?
cat "$NBDP_TEST_DIR/tap"
expect_eq "nbd-conform exit status" "refserver, all tests" "$rc" 0
if grep -q '^not ok' "$NBDP_TEST_DIR/tap"; then
  fail "some tests did not pass"
fi
expect_eq "leftovers in TMPDIR" "full run" "$(ls -A "$TMPDIR")" ""
