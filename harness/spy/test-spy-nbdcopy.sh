#!/usr/bin/env bash
# nbd-spy between nbdcopy (libnbd, several connections at once) and
# nbd-refserver: 32 MiB of random data copied in and back out through the
# spy is identical byte for byte, the transcript shows the writes and
# reads with their payloads, and nothing is reported.
source "$(dirname "$0")/spy-functions.sh"
requires nbdcopy --version
requires cmp --version

size=$((32 * 1024 * 1024))
in=$NBDP_TEST_DIR/in.img
out=$NBDP_TEST_DIR/out.img
head -c "$size" /dev/urandom >"$in"

start_refserver memory 32M
start_spy "$sock" --strict
nbdcopy -C 4 --flush "$in" "$spy_uri" || fail "nbdcopy -C 4 into the export through the spy failed"
nbdcopy -C 4 "$spy_uri" "$out" || fail "nbdcopy -C 4 out of the export through the spy failed"
cmp "$in" "$out" ||
  fail "nbdcopy through nbd-spy: sent $size random bytes; read back different bytes; expected identical"
echo "ok: round trip through the spy identical"
# And directly from the server, so the spy did not just echo.
nbdcopy "$uri" "$out" || fail "nbdcopy out of the export without the spy failed"
cmp "$in" "$out" || fail "the data the server holds differs from what was written through the spy"
echo "ok: the server holds the data written through the spy"
stop_spy
expect_eq "nbd-spy --strict exit status" "SIGTERM" "$spy_status" 0

expect_line '#[0-9]+ C->S request NBD_CMD_WRITE flags [A-Z_0|]+ cookie [0-9]+ offset [0-9]+ length [0-9]+ \(compact\) payload [0-9]+ bytes: [0-9a-f ]+ \.\.\.$' "a write with its payload summary"
expect_line 'S->C structured chunk NBD_REPLY_TYPE_OFFSET_DATA flags DONE cookie [0-9]+ length [0-9]+ to NBD_CMD_READ: offset [0-9]+ data [0-9]+ bytes: ' "a read's data chunk"
expect_line 'C->S request NBD_CMD_FLUSH' "the flush"
conns=$(json_get "$spy_json" 'j["summary"]["connections"]')
[ "$conns" -ge 3 ] || fail "JSON summary: $conns connections, expected at least 3 (two runs of nbdcopy -C 4 on a multi-conn export)"
echo "ok: $conns connections proxied"
writes=$(grep -c 'C->S request NBD_CMD_WRITE' "$spy_transcript")
[ "$writes" -ge 1 ] || fail "no NBD_CMD_WRITE in the transcript"
expect_no_violations "nbdcopy -C 4 in and out"
