#!/usr/bin/env bash
# nbd-refclient against tests/bin/resize-fake-server, a scripted server
# that breaks one rule of the draft RESIZE extension per scenario: the
# client must exit 1 and name the requirement it saw broken (and, for the
# rules of specs/resize.md section 14 that ask for it, hard-disconnect).
# The conforming scenarios must pass with exit 0, in compact and extended
# headers, so that the failures are not the client's own.
# specs/resize.md sections 3.5, 4.3, 4.4, 5.4-5.7, 6, 7, 8, 14.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/resize-client-functions.sh"
FAKE=$NBDP_TOP/tests/bin/resize-fake-server
[ -x "$FAKE" ] || fail "$FAKE is not built (make tests/bin/resize-fake-server)"

n=0
fake ()
{
  n=$((n + 1))
  sock=$NBDP_TEST_DIR/fake$n.sock
  "$FAKE" "$sock" "$1" 2>"$NBDP_TEST_DIR/fake$n.log" &
  _nbdp_pids+=("$!")
  wait_for "fake server ($1) listening" 10 unix_listening "$sock"
  uri="nbd+unix:///?socket=$sock"
}

# case SCENARIO EXIT ID COMMAND [ARGS...]: the client exits EXIT and, if
# ID is not -, names ID as a VIOLATION.
case_ ()
{
  local scenario=$1 want=$2 id=$3 cmd=$4
  shift 4
  fake "$scenario"
  refclient --no-verify "$cmd" "$uri" "$@"
  expect_rc "$scenario: $cmd $*" "$want"
  if [ "$id" != - ]; then
    expect_err_has "$scenario: $cmd $*" "VIOLATION $id "
  fi
  if [ "$want" = 0 ] && [[ "$err" == *VIOLATION* ]]; then
    fail "$scenario: $cmd: exit 0 but a violation was printed: $err"
  fi
}

# Conforming behaviour first.
for hdr in "" --extended; do
  case_ good 0 - info $hdr
  case_ good 0 - resize 2M $hdr
  case_ good 0 - resize 512K $hdr
  case_ good 0 - query $hdr
  case_ good 0 - watch --count 2 --timeout 10 $hdr
  case_ good 0 - grow-write 2M 4096 $hdr
  case_ good-granular 0 - resize 3000000 $hdr
  case_ good-granular 0 - grow-write 1048577 10 $hdr
done
case_ legacy-good 0 - resize 2M --no-structured
case_ legacy-good 0 - resize 2M --encoding legacy

# The JSON of a conforming resize carries the chunk.
fake good-granular
refclient --no-verify --json resize "$uri" 3000000
expect_rc "resize --json" 0
echo "$out" > "$NBDP_TEST_DIR/r.json"
expect_eq "rounded size" "set size 3000000, G 4096" \
  "$(json_get "$NBDP_TEST_DIR/r.json" 'j["chunk"]["size"]')" 3002368
expect_eq "events" "set size 3000000, G 4096" \
  "$(json_get "$NBDP_TEST_DIR/r.json" '",".join(j["chunk"]["events"])')" \
  GREW,ZEROED,ROUNDED

# Watch prints each event as it arrives (JSON Lines with --json).
fake good
refclient --json watch "$uri" --count 2 --timeout 10
expect_rc "watch --json" 0
expect_eq "watch --json lines" "watch --count 2" \
  "$(echo "$out" | grep -c '"event"')" 4

# Size chunks (RZ-CHUNK-*, client rules RZ-CLI-27 to RZ-CLI-29).
case_ chunk-bad-length 1 RZ-CHUNK-1 resize 2M
expect_err_has "chunk-bad-length" "RZ-CLI-27: hard disconnect"
case_ unnegotiated-chunk 1 RZ-CHUNK-2 resize 2M --features grow,shrink
expect_err_has "unnegotiated-chunk" "RZ-CLI-28"
case_ legacy-chunk 1 RZ-LEG-3 resize 2M
case_ chunk-on-read 1 RZ-CHUNK-3 read 0 4096
expect_err_has "chunk-on-read" "RZ-CLI-29"
fake chunk-foreign-cookie
refclient resize "$uri" 2M    # the verification read meets the chunk
expect_rc "chunk-foreign-cookie: resize" 1
expect_err_has "chunk-foreign-cookie" "VIOLATION RZ-CHUNK-4 "
expect_err_has "chunk-foreign-cookie" "RZ-CLI-29: hard disconnect"
case_ events-reserved 1 RZ-VAL-2 resize 2M

# Answers to set size and query (RZ-SET-*, RZ-QUERY-*, RZ-CLI-33/34).
case_ set-no-done 1 RZ-SET-12 resize 2M
expect_err_has "set-no-done" "RZ-CLI-34"
case_ query-no-done 1 RZ-QUERY-1 query
expect_err_has "query-no-done" "RZ-CLI-34"
case_ query-events 1 RZ-QUERY-2 query
case_ size-unaligned 1 RZ-INFO-8 resize 2M
expect_err_has "size-unaligned" "RZ-CLI-33"
case_ set-wrong-events 1 RZ-CHUNK-5 resize 2M
case_ set-not-rounded 1 RZ-SET-14 resize 2M

# Subscriptions (RZ-SUB-*, RZ-FLOOD-*, RZ-SEQ-3, RZ-CLI-30 to RZ-CLI-32).
case_ notify-duplicate 1 RZ-FLOOD-1 watch --count 3 --timeout 10
expect_err_has "notify-duplicate" "RZ-CLI-30"
case_ sequence-reverse 1 RZ-SEQ-3 watch --count 3 --timeout 10
expect_err_has "sequence-reverse" "RZ-CLI-31"
case_ notify-flood 1 RZ-FLOOD-3 watch --count 5000 --timeout 20
expect_err_has "notify-flood" "RZ-CLI-32"
case_ notify-not-remote 1 RZ-CHUNK-9 watch --count 2 --timeout 10
case_ sub-done 1 RZ-SUB-2 watch --count 2 --timeout 10
case_ unsub-early 1 RZ-SUB-12 watch --count 2 --timeout 10

# The information item and the flag (RZ-INFO-*, RZ-FLAG-*, RZ-NEG-*).
case_ info-bad-length 1 RZ-INFO-3 info
case_ info-active-not-subset 1 RZ-INFO-5 info
case_ info-query-without-size-reply 1 RZ-INFO-6 info
case_ flag-missing 1 RZ-FLAG-1 info
case_ neg-active-unacked 1 RZ-NEG-10 info

# Automatic growth (RZ-AUTO-*).
case_ write-chunk-no-grow 1 RZ-AUTO-12 grow-write 0 4096
case_ write-no-chunk 1 RZ-AUTO-9 grow-write 1048576 4096
