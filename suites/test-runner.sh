#!/usr/bin/env bash
# Checks nbd-conform itself: exit codes, --list, --only, --expect
# (XFAIL and XPASS), --timeout (a silent server is a TIMEOUT and nothing
# is left behind), and that --junit / --json are well formed.  The
# misbehaving servers are a few lines of Python on the private socket.
source "$(dirname "$0")/../tests/functions.sh"

conform=$NBDP_TOP/suites/nbd-conform
requires test -x "$conform"
requires test -x "$NBD_REFSERVER"
requires python3 -c 'import json, xml.etree.ElementTree'

export TMPDIR=$NBDP_TEST_DIR/tmp
mkdir -p "$TMPDIR"
ref="$NBD_REFSERVER -f --exit-with-parent -U {socket} memory 1M"

cat > "$NBDP_TEST_DIR/fake.py" <<'PY'
# fake.py SOCKET MODE: badmagic sends a broken greeting; silent never talks.
import socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    if mode == 'badmagic':
        c.sendall(b'NOTMAGICIHAVEOPT\x00\x03')
PY
fake="exec python3 $NBDP_TEST_DIR/fake.py {socket}"

run ()
{
  "$conform" "$@" >"$NBDP_TEST_DIR/out" 2>"$NBDP_TEST_DIR/err"
  echo $?
}

# --list: every test, with IDs.
expect_eq "--list status" "--list" "$(run --list)" 0
n=$(wc -l < "$NBDP_TEST_DIR/out")
[ "$n" -ge 30 ] || fail "--list printed $n tests, expected at least 30"
grep -q '^handshake/greeting .*FLAG-HS-3' "$NBDP_TEST_DIR/out" ||
  fail "--list lacks handshake/greeting with its IDs"

# Bad arguments and a server that cannot start: exit 2.
expect_eq "no target" "(nothing)" "$(run)" 2
expect_eq "bad --timeout" "--timeout abc" "$(run --timeout abc --server "$ref")" 2
expect_eq "bad -j" "-j 0" "$(run -j 0 --server "$ref")" 2
expect_eq "no {socket}" "--server true" "$(run --server true)" 2
expect_eq "server fails" "--server 'false {socket}'" \
  "$(run --server 'false {socket}')" 2
grep -q 'could not start' "$NBDP_TEST_DIR/err" ||
  fail "no diagnostic for a server that cannot start: $(cat "$NBDP_TEST_DIR/err")"
expect_eq "--only matching nothing" "--only nothing-matches" \
  "$(run --only nothing-matches --server "$ref")" 2

# --only by requirement ID, against a good server: exit 0, TAP 14.
expect_eq "--only FLAG-HS-3" "refserver" \
  "$(run --only FLAG-HS-3 --server "$ref")" 0
head -1 "$NBDP_TEST_DIR/out" | grep -qx 'TAP version 14' || fail "no TAP header"
grep -qx '1\.\.1' "$NBDP_TEST_DIR/out" || fail "--only FLAG-HS-3 did not select one test"
grep -q '^ok 1 - handshake/greeting' "$NBDP_TEST_DIR/out" || fail "greeting did not pass"

# A broken greeting: FAIL, exit 1, the ID and a reproducer in the YAML.
expect_eq "bad magic" "fake badmagic" \
  "$(run --only handshake/greeting --server "$fake badmagic")" 1
grep -q '^not ok 1 - handshake/greeting' "$NBDP_TEST_DIR/out" || fail "no 'not ok'"
grep -q 'id: COMPAT-BASE-1' "$NBDP_TEST_DIR/out" || fail "no requirement ID"
grep -q "reproduce: 'nbd-conform --only handshake/greeting" "$NBDP_TEST_DIR/out" ||
  fail "no reproducer line"

# Listed in --expect and failing: XFAIL, exit 0.
printf '# known deviations\nhandshake/greeting  sends a broken magic on purpose\n' \
  > "$NBDP_TEST_DIR/expect"
expect_eq "XFAIL" "--expect (listed, fails)" \
  "$(run --only handshake/greeting --expect "$NBDP_TEST_DIR/expect" \
        --server "$fake badmagic")" 0
grep -q '^not ok 1 - handshake/greeting # TODO' "$NBDP_TEST_DIR/out" ||
  fail "XFAIL is not a TODO line: $(cat "$NBDP_TEST_DIR/out")"

# Listed by ID and passing: XPASS, exit 1.
printf 'FLAG-HS-3  listed although the server is fine\n' > "$NBDP_TEST_DIR/expect"
expect_eq "XPASS" "--expect (listed, passes)" \
  "$(run --only handshake/greeting --expect "$NBDP_TEST_DIR/expect" \
        --server "$ref")" 1
grep -q 'result: XPASS' "$NBDP_TEST_DIR/out" || fail "no XPASS"

# An entry without a reason is a usage error.
echo 'handshake/greeting' > "$NBDP_TEST_DIR/expect"
expect_eq "reasonless --expect" "entry without reason" \
  "$(run --expect "$NBDP_TEST_DIR/expect" --server "$ref")" 2

# A silent server: TIMEOUT (exit 1), and its process is gone afterwards.
expect_eq "TIMEOUT" "fake silent, --timeout 1" \
  "$(run --only handshake/greeting --timeout 1 --server "$fake silent")" 1
grep -q 'result: TIMEOUT' "$NBDP_TEST_DIR/out" || fail "no TIMEOUT"
if pgrep -f "$NBDP_TEST_DIR/fake.py" >/dev/null; then
  fail "the silent server outlived its test"
fi

# JUnit and JSON, in parallel, against the reference server.
expect_eq "full run" "refserver -j 4" \
  "$(run -j 4 --junit "$NBDP_TEST_DIR/r.xml" --json "$NBDP_TEST_DIR/r.json" \
        --server "$ref")" 0
python3 - "$NBDP_TEST_DIR/r.xml" "$NBDP_TEST_DIR/r.json" <<'PY' || fail "bad JUnit/JSON"
import json, sys, xml.etree.ElementTree as ET
x = ET.parse(sys.argv[1]).getroot()
assert x.tag == 'testsuites', x.tag
cases = x.findall('.//testcase')
assert len(cases) >= 30, len(cases)
j = json.load(open(sys.argv[2]))
assert j['schema'] == 'nbd-conform-results/1'
assert len(j['tests']) == len(cases)
for t in j['tests']:
    for k in ('name', 'requirements', 'result', 'findings', 'duration_ms'):
        assert k in t, k
    assert t['result'] in ('PASS', 'FAIL', 'XFAIL', 'XPASS', 'UNSUPPORTED',
                           'SKIP', 'INFO', 'NONSTRICT', 'TIMEOUT', 'ERROR')
assert j['exit_status'] == 0
print('ok: JUnit with %d testcases, JSON with %d tests' % (len(cases), len(j['tests'])))
PY

# Nothing of ours is left in TMPDIR.
left=$(ls -A "$TMPDIR")
expect_eq "leftovers in TMPDIR" "all runs" "$left" ""
