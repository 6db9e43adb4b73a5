#!/usr/bin/env bash
# A client driver that hangs (and leaves a child) must end as TIMEOUT
# within the deadline, with no process and no temporary file left.
source "$(dirname "$0")/lib.sh"
requires nbdkit memory --version

out=$scratch/run
start=$(date +%s)
matrix --servers nbdkit-memory --clients-dir "$top/harness/tests/fake-clients" \
  --clients hang --scenarios handshake-info --timeout 2 --out "$out"
elapsed=$(( $(date +%s) - start ))
[ $rc -eq 1 ] || fail "nbd-matrix exit status $rc, expected 1 (a TIMEOUT cell)"
grep -q '^\[1/1\] hang x nbdkit-memory handshake-info \.\.\. TIMEOUT (client driver did not finish within 2 s)$' \
  "$out.log" || fail "no TIMEOUT progress line"
[ $elapsed -lt 30 ] || fail "the run took ${elapsed}s for a 2 s timeout"
[ "$(jq -r '.cells[0].verdict' "$out/results.json")" = TIMEOUT ] ||
  fail "results.json verdict"
grep -q 'never coming back' "$out/cells/handshake-info/hang--nbdkit-memory/client.log" ||
  fail "the client log was not kept"
grep -q '^not ok 1 - hang/nbdkit-memory/handshake-info' "$out/results.tap" ||
  fail "TAP line"
check_clean
exit 0
