#!/usr/bin/env bash
# A small real matrix: nbdkit-memory and qemu-nbd-raw x qemu-io and libnbd
# x rw-patterns, handshake-info and resize-grow.  Checks the verdicts, that
# results.json has the documented shape (results/schema-matrix.md), that
# the TAP, JUnit, Markdown and HTML outputs agree with it, and that
# nothing is left behind.
source "$(dirname "$0")/lib.sh"
requires nbdkit --version
requires nbdkit memory --version
requires qemu-nbd --version
requires qemu-io --version
requires jq --version
requires /usr/bin/python3 -c 'import xml.etree.ElementTree'

out=$scratch/run
matrix --servers nbdkit-memory,qemu-nbd-raw --clients qemu-io,libnbd \
  --scenarios rw-patterns,handshake-info,resize-grow --timeout 30 -j 3 \
  --out "$out"
[ $rc -eq 0 ] || fail "nbd-matrix exit status $rc, expected 0"
check_clean

j=$out/results.json
[ -s "$j" ] || fail "no results.json"
jq -e '.schema == "nbd-matrix-results/1"' "$j" >/dev/null || fail "schema"
[ "$(jq '.cells | length' "$j")" = 12 ] || fail "expected 12 cells"
# Every cell has the required fields, with a known verdict.
jq -e '[.cells[] | (.id == "\(.client)/\(.server)/\(.scenario)") and
        (.verdict | IN("PASS","FAIL","XFAIL","XPASS","UNSUPPORTED","SKIP",
                       "TIMEOUT","ERROR")) and (.reason | type == "string") and
        (.seconds | type == "number") and (.reproducer | type == "string") and
        (.logs | has("server") and has("client") and has("harness"))]
       | all' "$j" >/dev/null || fail "a cell lacks a field"
# counts agree with the cells.
jq -e '(.counts | add) == (.cells | length) and
       .counts.PASS == ([.cells[] | select(.verdict == "PASS")] | length)' \
  "$j" >/dev/null || fail "counts disagree with cells"
# Versions of every implementation are recorded.
jq -e '[.implementations[] | select(.available) | .version | length > 0]
       | all and length == 4' "$j" >/dev/null ||
  fail "implementation versions missing"
jq -e '[.implementations[] | select(.kind == "server") | .probe_flags | type == "number"] | all' \
  "$j" >/dev/null || fail "servers were not probed"

# The verdicts themselves.
for s in rw-patterns handshake-info; do
  for c in qemu-io libnbd; do
    for v in nbdkit-memory qemu-nbd-raw; do
      got=$(jq -r --arg id "$c/$v/$s" '.cells[] | select(.id == $id) | .verdict' "$j")
      [ "$got" = PASS ] || fail "$c/$v/$s is $got, expected PASS"
    done
  done
done
got=$(jq -r '[.cells[] | select(.scenario == "resize-grow") | .reason] | unique | .[]' "$j")
[ "$got" = "server: no NBD_FLAG_SEND_RESIZE" ] ||
  fail "resize-grow reasons: '$got', expected the missing flag"
# The harness verified the content on its own connection.
grep -q "verify: content matches" \
  "$out/cells/rw-patterns/qemu-io--nbdkit-memory/harness.log" ||
  fail "rw-patterns was not verified by the harness"

# nbd-spy sat between each driver and its server: every cell that ran has
# its decoded transcript, with the client's messages and the server's
# replies, and no violation; cells decided without running have none.
cell=$out/cells/rw-patterns/libnbd--nbdkit-memory
t=$cell/spy.transcript
[ -s "$t" ] || fail "no spy transcript $t"
for re in ' #1 S->C greeting newstyle' ' #1 C->S option NBD_OPT_GO .*"matrix"' \
          ' S->C option reply NBD_REP_ACK to NBD_OPT_GO' \
          ' C->S request NBD_CMD_WRITE .* payload ' \
          ' S->C .* to NBD_CMD_WRITE' ' C->S request NBD_CMD_READ ' \
          ' ---- connection closed: .* 0 MUST and 0 SHOULD violations'; do
  grep -q -- "$re" "$t" || fail "spy transcript lacks /$re/"
done
! grep -q -F '!!!!' "$t" || fail "violations in $t: $(grep -F '!!!!' "$t")"
jq -e --arg id libnbd/nbdkit-memory/rw-patterns '.cells[] | select(.id == $id)
  | .spy.transcript == "cells/rw-patterns/libnbd--nbdkit-memory/spy.transcript"
    and .spy.violation_count == 0 and .spy.violations == [] and
    .spy.error == null and .spy.connections >= 1 and
    (.spy.excerpt | test("C->S request NBD_CMD_WRITE")) and
    (.phases.spy | type == "number")' "$j" >/dev/null ||
  fail "results.json: the spy evidence of libnbd/nbdkit-memory/rw-patterns"
jq -e '[.cells[] | select(.phases != null) | .spy != null and
        .spy.violation_count == 0] | all and length == 8' "$j" >/dev/null ||
  fail "a cell that ran has no spy evidence, or a violation"
jq -e '[.cells[] | select(.phases == null) | .spy == null] | all' "$j" \
  >/dev/null || fail "a cell decided without running has spy evidence"
# The harness's own connections (probe, content check) bypassed the spy:
# the driver's connections are all it saw.
grep -q "verify: connected to nbd+unix:///matrix?socket=.*/s," \
  "$cell/harness.log" || fail "the content check did not go to the server"
grep -q -F 'nbd-spy: ' "$out/index.html" &&
  grep -q -F 'href="cells/rw-patterns/libnbd--nbdkit-memory/spy.transcript"' \
    "$out/index.html" || fail "index.html: no spy evidence or transcript link"

# TAP 14: plan and one line per cell.
head -n 2 "$out/results.tap" | diff - <(printf 'TAP version 14\n1..12\n') ||
  fail "TAP header"
[ "$(grep -c '^ok ' "$out/results.tap")" = 12 ] || fail "TAP ok lines"
grep -q '^ok [0-9]* - libnbd/nbdkit-memory/resize-grow # SKIP UNSUPPORTED: ' \
  "$out/results.tap" || fail "TAP UNSUPPORTED directive"
# JUnit: well-formed, one testcase per cell named client/server/scenario.
/usr/bin/python3 - "$out/junit.xml" <<'PY' || fail "junit.xml"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall("./testsuite/testcase")
assert root.tag == "testsuites" and len(cases) == 12, len(cases)
assert all(c.get("name").count("/") == 2 for c in cases)
assert len(root.findall("./testsuite/testcase/skipped")) == 4
PY
grep -q '^| nbdkit-memory | PASS | PASS |$' "$out/matrix.md" || fail "matrix.md grid"
grep -q 'id="c11"' "$out/index.html" || fail "index.html evidence"
grep -q '<td class="v PASS"' "$out/index.html" || fail "index.html grid"
exit 0
