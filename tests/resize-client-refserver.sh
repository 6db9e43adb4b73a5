#!/usr/bin/env bash
# nbd-refclient against nbd-refserver.  With the extension off (the
# default) every resize operation is "not supported" (exit 3) while
# info, read and write work.  Once nbd-refserver has its RESIZE switches
# (specs/resize.md section 15: --resize, --profile), the draft is tried
# end to end: set size with and without size replies, query, watch with
# changes made by a second client, automatic growth, legacy mode, each
# encoding of section 13, and the deliberate faults of section 15.3 that
# a client can see, each of which must be reported with its ID.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/resize-client-functions.sh"

start_refserver memory 16M
check_server_without_resize "$uri"
check_server_without_resize "$uri" --extended
check_server_without_resize "$uri" --no-structured

if ! "$NBD_REFSERVER" --help 2>&1 | grep -q -- '--resize'; then
  echo "SKIP: nbd-refserver has no --resize switch yet (specs/resize.md" \
       "section 15): only the extension-off half ran"
  exit 77
fi

# --- the extension on ---------------------------------------------------
start_refserver --profile everything memory 16M
refclient info "$uri"
expect_rc "everything: info" 0
expect_out_has "everything: info" "resize mode: negotiated"
refclient resize "$uri" 32M
expect_rc "everything: grow to 32M" 0
refclient resize "$uri" 8M
expect_rc "everything: shrink to 8M" 0
refclient query "$uri"
expect_rc "everything: query" 0
expect_out_has "everything: query" "size 8388608"
refclient --extended resize "$uri" 12M
expect_rc "everything: resize with extended headers" 0
refclient grow-write "$uri" 20M 4096 --pattern 0x42
expect_rc "everything: grow-write" 0
refclient read "$uri" 20M 4096 --expect 0x42
expect_rc "everything: read back the growing write" 0
refclient --no-structured resize "$uri" 24M
expect_rc "everything: resize without structured replies (no SIZE_REPLY)" 0

# watch sees changes made by another client.
wfile=$NBDP_TEST_DIR/watch.out
"$NBD_REFCLIENT" watch "$uri" --count 2 --timeout 20 >"$wfile" 2>&1 &
wpid=$!
cleanup_fn quiet_kill "$wpid"
wait_for "watch printed its snapshot" 10 grep -q '^initial' "$wfile"
# Wait for each notification before the next change: changes within one
# rate-limit interval may be coalesced (RZ-FLOOD-2), and a change and its
# undo coalesce into no notification at all (RZ-FLOOD-1).
refclient resize "$uri" 28M
expect_rc "resize while another client watches" 0
wait_for "watch printed the first notification" 10 \
  grep -q '^notification: size 29360128 ' "$wfile"
refclient resize "$uri" 20M
expect_rc "second resize while another client watches" 0
wait "$wpid"
wrc=$?
[ $wrc = 0 ] || { cat "$wfile"; fail "watch exited $wrc, expected 0"; }
grep -q '^notification' "$wfile" || fail "watch printed no notification"
echo "ok: watch saw the changes"

# Profiles and encodings that must all conform.
for p in explicit-simple explicit-structured quota auto-grow notify; do
  start_refserver --profile $p memory 16M
  refclient info "$uri"
  expect_rc "profile $p: info" 0
  refclient resize "$uri" 20M
  case $rc in
    0|3|4) echo "ok: profile $p: resize exit $rc" ;;
    *) fail "profile $p: resize exit $rc: $err" ;;
  esac
done
start_refserver --resize=legacy memory 16M
refclient --encoding legacy --no-structured resize "$uri" 20M
expect_rc "legacy: resize" 0
start_refserver --profile flag-only memory 16M
refclient --encoding flag-only grow-write "$uri" 16M 4096
expect_rc "flag-only: grow-write" 0
start_refserver --profile info-optin memory 16M
refclient --encoding info-optin resize "$uri" 20M
expect_rc "info-optin: resize" 0
start_refserver --profile boolean memory 16M
refclient --encoding boolean resize "$uri" 20M
expect_rc "boolean: resize" 0

# Deliberate faults the client must see (section 15.3).
fault ()
{
  local f=$1 id=$2
  shift 2
  start_refserver --profile everything --fault "$f" memory 16M
  refclient "$@" "$uri" ${args:-}
  expect_rc "fault $f" 1
  expect_err_has "fault $f" "$id"
}
args="32M" fault chunk-bad-length RZ-CHUNK-1 resize
args="" fault query-no-done RZ-QUERY-1 query
args="32M" fault size-unaligned RZ-INFO-8 resize
args="32M" fault chunk-foreign-cookie RZ-CHUNK-4 resize
args="8M" fault private-shrink RZ-MC-2 resize
args="32M" fault dirty-grow RZ-ZERO-1 resize
args="32M" fault unnegotiated-chunk RZ-CHUNK-2 resize --features grow,shrink
args="32M" fault unnegotiated-chunk RZ-CHUNK-2 resize --no-structured

# Subscription faults need changes: a second client makes them while
# the first one watches.
watch_fault ()
{
  local f=$1 id=$2 count=$3 wrc
  start_refserver --profile notify --fault "$f" memory 16M
  wfile=$NBDP_TEST_DIR/watch-$f.out
  "$NBD_REFCLIENT" watch "$uri" --count "$count" --timeout 20 \
    >"$wfile" 2>"$wfile.err" &
  wpid=$!
  cleanup_fn quiet_kill "$wpid"
  wait_for "watch ($f) printed its snapshot" 10 grep -q '^initial' "$wfile"
  refclient resize "$uri" 20M
  # The watcher may already have hung up on the server (that is the
  # point), so the outcome of this second client does not matter.
  wait "$wpid"
  wrc=$?
  if [ $wrc != 1 ] || ! grep -q "VIOLATION $id " "$wfile.err"; then
    cat "$wfile.err"
    fail "fault $f: watch exited $wrc; expected 1 naming $id"
  fi
  echo "ok: fault $f: watch reports $id"
}
watch_fault notify-duplicate RZ-FLOOD-1 3
watch_fault sequence-reverse RZ-SEQ-3 3
watch_fault notify-flood RZ-FLOOD-3 5000
grep -q 'RZ-CLI-32: hard disconnect' "$NBDP_TEST_DIR/watch-notify-flood.out.err" ||
  fail "notify-flood: the client did not hard-disconnect (RZ-CLI-32)"
echo "ok: notify-flood: hard disconnect (RZ-CLI-32)"
