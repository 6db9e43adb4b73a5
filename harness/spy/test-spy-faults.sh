#!/usr/bin/env bash
# nbd-spy in front of faulty servers: each fault breaks one requirement,
# and the spy reports that requirement ID (party "server", in the
# transcript and in the JSON summary), keeps forwarding, and exits 1
# under --strict.  Faults of the draft RESIZE extension come from
# nbd-refserver --fault; faults of the published protocol from
# harness/spy/fake-server.
source "$(dirname "$0")/spy-functions.sh"
refclient=$NBDP_TOP/reference-client/nbd-refclient
fake=$NBDP_TOP/harness/spy/fake-server
[ -x "$refclient" ] || fail "$refclient is not built"
[ -x "$fake" ] || fail "$fake is not built (make check builds it)"

# check_reported ID WHAT: the last spy run reported ID against the server.
check_reported ()
{
  local id=$1 what=$2 n
  n=$(json_get "$spy_json" "len ([v for v in j['violations'] if v['id'] == '$id' and v['party'] == 'server' and v['direction'] == 'S->C' and v['level'] in ('MUST', 'SHOULD')])")
  if [ "$n" -lt 1 ]; then
    echo "--- violations reported:"
    json_get "$spy_json" "[(v['id'], v['message']) for v in j['violations']]"
    echo "--- transcript:"
    tail -n 30 "$spy_transcript"
    fail "$what: expected nbd-spy to report $id against the server; it did not"
  fi
  grep -Eq "!!!! VIOLATION $id (MUST|SHOULD) by the server: " "$spy_transcript" ||
    fail "$what: $id is in the JSON summary but not in the transcript"
  echo "ok: $what: $id reported"
}

# Draft RESIZE faults of nbd-refserver (fault, ID, client command, args).
while read -r fault id cmd rest; do
  start_refserver --profile everything --fault "$fault" memory 1M
  start_spy "$sock" --strict -q
  # The client may well fail: it judges the server too.
  $refclient --no-verify $cmd "$spy_uri" $rest >/dev/null 2>&1 || :
  stop_spy
  check_reported "$id" "nbd-refserver --fault $fault, nbd-refclient $cmd"
  expect_eq "nbd-spy --strict exit status" "--fault $fault" "$spy_status" 1
done <<'EOF_FAULTS'
chunk-bad-length RZ-CHUNK-1 resize 2M
query-no-done RZ-QUERY-1 query
size-unaligned RZ-INFO-8 resize 2M
EOF_FAULTS

# Size chunks without SIZE_REPLY negotiated.
start_refserver --profile everything --fault unnegotiated-chunk memory 1M
start_spy "$sock" -q
$refclient --no-verify --features grow,shrink resize "$spy_uri" 2M >/dev/null 2>&1 || :
stop_spy
check_reported RZ-CHUNK-2 "nbd-refserver --fault unnegotiated-chunk"

# Published-protocol faults of the fake server (fault, ID).
while read -r fault id; do
  fsock=$NBDP_TEST_DIR/fake-$fault.sock
  "$fake" -U "$fsock" --fault "$fault" 2>"$NBDP_TEST_DIR/fake-$fault.log" &
  _nbdp_pids+=("$!")
  wait_for "fake-server --fault $fault listening" 10 test -S "$fsock"
  start_spy "$fsock" -q
  timeout 20 $refclient read "$spy_uri" 0 4096 >/dev/null 2>&1 || :
  stop_spy
  check_reported "$id" "fake-server --fault $fault"
done <<'EOF_FAULTS'
no-has-flags FLAG-TX-4
ack-with-data HS-FIX-3
block-size-bad SIZE-13
hole-zero SR-HOLE-5
data-out-of-range SR-DATA-2
simple-read-structured SR-MSG-3
unknown-cookie TX-GEN-4
error-zero SR-ERR-5
reply-flags FLAG-REPLY-3
EOF_FAULTS

# And the control: the same fake server without a fault is clean.
fsock=$NBDP_TEST_DIR/fake-none.sock
"$fake" -U "$fsock" 2>"$NBDP_TEST_DIR/fake-none.log" &
_nbdp_pids+=("$!")
wait_for "fake-server listening" 10 test -S "$fsock"
start_spy "$fsock" --strict
$refclient read "$spy_uri" 0 4096 --expect zero >/dev/null ||
  fail "nbd-refclient read through the spy from the fake server without a fault failed"
stop_spy
expect_eq "nbd-spy --strict exit status (no fault)" "fake-server" "$spy_status" 0
expect_no_violations "fake-server without a fault"
