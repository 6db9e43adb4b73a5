#!/usr/bin/env bash
# A server that dies in the middle of a cell gives ERROR, with the
# server's own last words in the reason and its log kept; nothing is left
# behind.
source "$(dirname "$0")/lib.sh"
requires nbdkit sh --version

out=$scratch/run
matrix --servers-dir "$top/harness/tests/fake-servers" --servers crashy \
  --clients libnbd --scenarios rw-patterns --timeout 20 --out "$out"
[ $rc -eq 1 ] || fail "nbd-matrix exit status $rc, expected 1 (an ERROR cell)"
grep -q '^\[1/1\] libnbd x crashy rw-patterns \.\.\. ERROR (server exited during the cell (signal 9); its log ends: .*crashy: killing nbdkit' \
  "$out.log" || fail "no ERROR progress line with the server's log"
jq -e '.cells[0] | .verdict == "ERROR" and (.logs.server | test("crashy: killing"))' \
  "$out/results.json" >/dev/null || fail "results.json lacks the ERROR or the server log"
grep -q 'crashy: killing' "$out/cells/rw-patterns/libnbd--crashy/server.log" ||
  fail "server.log not kept"
check_clean
exit 0
