#!/usr/bin/env bash
# nbd-spy in the matrix, against faulty servers: harness/spy/fake-server
# breaking FLAG-REPLY-3 (chunk flags 0x0003), which libnbd tolerates, and
# nbd-refserver --fault chunk-bad-length (RZ-CHUNK-1), which
# nbd-refclient catches.  Checks that each violation is recorded in
# results.json with its ID, level and direction, that the server's MUST
# violation turns the cell libnbd passed into FAIL (and an expectation
# into XFAIL), that TAP, Markdown, JUnit and HTML mention it, that
# `report` and `merge` keep the evidence, and that --no-spy leaves the
# verdict to the client alone and records no spy evidence.
source "$(dirname "$0")/lib.sh"
requires "$top/harness/spy/fake-server" --list-faults
requires "$top/reference-server/nbd-refserver" --version
requires "$top/reference-client/nbd-refclient" --version
requires "$top/harness/clients/libnbd-driver" --version
requires jq --version
requires /usr/bin/python3 -c 'import xml.etree.ElementTree'

scn=$scratch/scn
mkdir -p "$scn"
cp "$top/harness/scenarios/resize-grow.scn" "$scn/"
cat > "$scn/read-1m.scn" <<'EOF'
# scenario: read-1m
# summary: Read the start of a 1 MiB export of zeroes (fake-server's).
# requirements: CMD-READ-1
# size: 1M
connect
expect-size 1M
read 0 64K expect=zero
disconnect
EOF
fs=$top/harness/tests/fake-servers
args=(--servers-dir "$fs" --scenarios-dir "$scn" --timeout 30 -j 2)
cell () { jq -c --arg id "$2" '.cells[] | select(.id == $id)' "$1/results.json"; }

# 1. With the spy (the default).
out=$scratch/run
matrix "${args[@]}" --clients libnbd,nbd-refclient \
  --servers 'fake-server:none,fake-server:reply-flags,refserver-fault:chunk-bad-length' \
  --scenarios read-1m,resize-grow --out "$out"
[ $rc -eq 1 ] || fail "nbd-matrix exit status $rc, expected 1 (FAIL cells)"
check_clean
j=$out/results.json

c=$(cell "$out" libnbd/fake-server:none/read-1m)
jq -e '.verdict == "PASS" and .spy.violation_count == 0 and
       .spy.connections >= 1' <<<"$c" >/dev/null ||
  fail "libnbd x fake-server:none: $c"

# A server MUST violation the client tolerated: FAIL, with the ID.
id=libnbd/fake-server:reply-flags/read-1m
c=$(cell "$out" $id)
jq -e '.verdict == "FAIL" and
       (.reason | startswith("server: broke FLAG-REPLY-3 (MUST), seen by nbd-spy: ")) and
       .spy.server_must >= 1 and .spy.must >= 1 and
       .spy.violation_count == .spy.must + .spy.should and
       ([.spy.violations[] | select(.id == "FLAG-REPLY-3" and
          .level == "MUST" and .direction == "S->C" and
          .party == "server" and (.message | length > 0))] | length >= 1)' \
  <<<"$c" >/dev/null || fail "$id: $c"
t=$out/$(jq -r .spy.transcript <<<"$c")
grep -q ' !!!! VIOLATION FLAG-REPLY-3 MUST by the server: ' "$t" ||
  fail "$t has no FLAG-REPLY-3 line"
grep -q ' S->C structured chunk NBD_REPLY_TYPE_OFFSET_DATA flags ' "$t" ||
  fail "$t has no decoded data chunk"
[ -s "$out/$(jq -r .evidence_dir <<<"$c")/spy.json" ] || fail "no spy.json"

# A violation the client caught itself: the client's FAIL stays, the spy
# recorded the same requirement.
id=nbd-refclient/refserver-fault:chunk-bad-length/resize-grow
c=$(cell "$out" $id)
jq -e '.verdict == "FAIL" and (.reason | startswith("client: ")) and
       ([.spy.violations[] | select(.id == "RZ-CHUNK-1" and
          .level == "MUST" and .direction == "S->C")] | length >= 1)' \
  <<<"$c" >/dev/null || fail "$id: $c"
grep -q ' !!!! VIOLATION RZ-CHUNK-1 MUST by the server: ' \
  "$out/$(jq -r .spy.transcript <<<"$c")" || fail "$id: no RZ-CHUNK-1 line"

# The outputs mention the violations of failing cells.
grep -A8 '^not ok [0-9]* - libnbd/fake-server:reply-flags/read-1m$' \
  "$out/results.tap" | grep -q '^  spy_violations: ".*FLAG-REPLY-3 MUST by the server' ||
  fail "TAP: no spy_violations for the reply-flags cell"
grep -q '^- \*\*FAIL\*\* libnbd x fake-server:reply-flags read-1m: .*nbd-spy: 1 MUST, 0 SHOULD: FLAG-REPLY-3 MUST by the server' \
  "$out/matrix.md" || fail "matrix.md: the failing cell without its violation"
sed -n '/^## Protocol violations seen by nbd-spy/,$p' "$out/matrix.md" |
  grep -q 'RZ-CHUNK-1 MUST by the server' ||
  fail "matrix.md: no violations section with RZ-CHUNK-1"
grep -q 'nbd-spy: 1 MUST, 0 SHOULD: FLAG-REPLY-3' "$out/junit.xml" ||
  fail "junit.xml: the failure text lacks the violation"
grep -q '<tr><td>FLAG-REPLY-3</td><td>MUST</td><td>server (S-&gt;C)</td>' \
  "$out/index.html" && grep -q 'class="viol"' "$out/index.html" ||
  fail "index.html: no violation table or grid marker"

# `report` rewrites the same outputs from results.json alone; a merge
# from elsewhere makes the transcript path absolute, like evidence_dir.
cp -r "$out" "$scratch/copy"
"$top/harness/nbd-matrix" report "$scratch/copy" || fail "report failed"
for f in index.html matrix.md results.tap junit.xml; do
  cmp -s "$out/$f" "$scratch/copy/$f" || fail "report rewrote $f differently"
done
"$top/harness/nbd-matrix" merge --out "$scratch/merged" "$out" >/dev/null
jq -e --arg out "$out" '[.cells[] | select(.spy) | .spy.transcript |
        startswith($out + "/cells/")] | all and length > 0' \
  "$scratch/merged/results.json" >/dev/null ||
  fail "merge: transcript paths are not absolute"

# An expectation turns the spy's FAIL into XFAIL.
printf 'libnbd fake-server:reply-flags read-1m libnbd 1.14 ignores unknown chunk flags\n' \
  > "$scratch/expect.txt"
out=$scratch/xfail
matrix "${args[@]}" --clients libnbd --servers fake-server:reply-flags \
  --scenarios read-1m --expect "$scratch/expect.txt" --out "$out"
[ $rc -eq 0 ] || fail "XFAIL run: exit status $rc, expected 0"
[ "$(jq -r '.cells[0].verdict' "$out/results.json")" = XFAIL ] ||
  fail "the listed spy FAIL is not XFAIL"

# 2. --no-spy: the client alone decides (libnbd tolerates the flags), no
# spy evidence, and the reproducer says --no-spy.
out=$scratch/nospy
matrix "${args[@]}" --no-spy --clients libnbd --servers fake-server:reply-flags \
  --scenarios read-1m --out "$out"
[ $rc -eq 0 ] || fail "--no-spy: exit status $rc, expected 0"
check_clean
c=$(jq -c '.cells[0]' "$out/results.json")
jq -e '.verdict == "PASS" and .spy == null and .phases.spy == 0 and
       (.reproducer | contains(" --no-spy "))' <<<"$c" >/dev/null ||
  fail "--no-spy cell: $c"
[ ! -e "$out/$(jq -r .evidence_dir <<<"$c")/spy.transcript" ] ||
  fail "--no-spy left a transcript"
grep -q 'connected to the server directly (--no-spy)' "$out/index.html" ||
  fail "index.html does not say the cell ran without the spy"
exit 0
