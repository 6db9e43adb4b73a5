#!/usr/bin/env bash
# nbd-spy between nbd-refclient and nbd-refserver --profile everything
# (the draft RESIZE extension, specs/resize.md): NBD_OPT_RESIZE, the
# NBD_INFO_RESIZE item, every form of NBD_CMD_RESIZE (set size, query,
# subscribe, unsubscribe) and growing writes, with structured replies and
# with extended headers, and the legacy 2017 form with simple replies.
# The size chunks (NBD_REPLY_TYPE_RESIZE) are decoded, the spy follows
# the export size, and nothing is reported.
source "$(dirname "$0")/spy-functions.sh"
refclient=$NBDP_TOP/reference-client/nbd-refclient
ctl=$NBDP_TOP/reference-server/nbd-refserver-ctl
[ -x "$refclient" ] || fail "$refclient is not built"
[ -x "$ctl" ] || fail "$ctl is not built"

control=$NBDP_TEST_DIR/control.sock
start_refserver --profile everything --control "$control" memory 1M
start_spy "$sock" --strict

$refclient resize "$spy_uri" 2M || fail "nbd-refclient resize 2M through the spy failed"
$refclient query "$spy_uri" || fail "nbd-refclient query through the spy failed"
$refclient --extended resize "$spy_uri" 4M ||
  fail "nbd-refclient --extended resize 4M through the spy failed"
$refclient grow-write "$spy_uri" 4M 64K ||
  fail "nbd-refclient grow-write at 4M through the spy failed"
$refclient --extended grow-write "$spy_uri" 8M 4K ||
  fail "nbd-refclient --extended grow-write at 8M through the spy failed"

# A subscription through the spy; the size changes from outside.
$refclient watch --count 1 --timeout 20 "$spy_uri" >"$NBDP_TEST_DIR/watch.out" &
watch_pid=$!
"$ctl" "$control" wait-subs - 1 >/dev/null || fail "the subscription never started"
"$ctl" "$control" resize - 16M >/dev/null || fail "external resize to 16M failed"
wait "$watch_pid" || fail "nbd-refclient watch through the spy failed: $(cat "$NBDP_TEST_DIR/watch.out")"
grep -q 'notification: size 16777216' "$NBDP_TEST_DIR/watch.out" ||
  fail "watch saw no notification of 16M: $(cat "$NBDP_TEST_DIR/watch.out")"

# Legacy 2017 form: NBD_FLAG_SEND_RESIZE, simple reply.
# With its checks after the change (the read past a shrunk end, which the
# spy would rightly report as SIZE-33, needs --force).
$refclient --encoding legacy --no-structured resize "$spy_uri" 8M ||
  fail "nbd-refclient --encoding legacy --no-structured resize 8M failed"

stop_spy
expect_eq "nbd-spy --strict exit status" "SIGTERM" "$spy_status" 0

expect_line 'C->S option NBD_OPT_RESIZE length 4: features GROW\|SHRINK' "NBD_OPT_RESIZE with its features"
expect_line 'C->S option NBD_OPT_GO length [0-9]+: name "" info requests \[NBD_INFO_BLOCK_SIZE NBD_INFO_RESIZE\]' "NBD_INFO_RESIZE requested"
expect_line 'S->C option reply NBD_REP_INFO to NBD_OPT_GO length 22: NBD_INFO_RESIZE capabilities GROW\|SHRINK\|AUTO_GROW.* active GROW\|SHRINK' "the NBD_INFO_RESIZE item"
expect_line '#1 ---- transmission: .*SEND_RESIZE.*resize mode negotiated' "negotiated mode"
expect_line '#1 C->S request NBD_CMD_RESIZE \(set size\) flags 0 cookie 1 offset 2097152 length 0 \(compact\)$' "the set size request"
expect_line '#1 S->C structured chunk NBD_REPLY_TYPE_RESIZE flags DONE cookie 1 length 16 to NBD_CMD_RESIZE: size 2097152 events GREW\|ZEROED sequence [0-9]+$' "the size chunk of set size"
expect_line '#1 ---- export size now 2097152 \(was 1048576\)' "the new size followed"
expect_line 'C->S request NBD_CMD_RESIZE \(query\) flags RESIZE_QUERY' "the query"
expect_line 'S->C structured chunk NBD_REPLY_TYPE_RESIZE flags DONE cookie 1 length 16 to NBD_CMD_RESIZE: size 2097152 events INITIAL' "the query's answer"
expect_line 'C->S request NBD_CMD_RESIZE \(set size\) flags 0 cookie 1 offset 4194304 length 0 \(extended\)' "an extended set size"
expect_line 'S->C extended chunk NBD_REPLY_TYPE_RESIZE flags DONE cookie 1 offset 4194304 length 16 to NBD_CMD_RESIZE: size 4194304 events GREW\|ZEROED' "an extended size chunk"
expect_line 'S->C structured chunk NBD_REPLY_TYPE_RESIZE flags 0 cookie 1 length 16 to NBD_CMD_WRITE: size 4259840 events GREW\|ZEROED' "the size chunk of a growing write"
expect_line 'C->S request NBD_CMD_WRITE flags PAYLOAD_LEN cookie 1 offset 8388608 length 4096 \(extended\) payload 4096 bytes: ab ab' "an extended growing write"
expect_line 'C->S request NBD_CMD_RESIZE \(subscribe\) flags RESIZE_NOTIFY' "the subscribe"
expect_line 'S->C structured chunk NBD_REPLY_TYPE_RESIZE flags 0 cookie 1 length 16 to NBD_CMD_RESIZE: size 16777216 events GREW\|ZEROED\|REMOTE' "the notification"
expect_line 'C->S request NBD_CMD_RESIZE \(unsubscribe\) flags RESIZE_NOTIFY\|RESIZE_QUERY' "the unsubscribe"
expect_line 'S->C structured chunk NBD_REPLY_TYPE_NONE flags DONE cookie 1 length 0 to NBD_CMD_RESIZE$' "the end of the subscription"
expect_line 'resize mode legacy' "legacy mode"
expect_line 'S->C simple reply cookie 1 error NBD_SUCCESS to NBD_CMD_RESIZE$' "the legacy simple reply"
expect_no_violations "every form of NBD_CMD_RESIZE"
