#!/usr/bin/env bash
# nbd-spy never breaks the stream: bytes it cannot decode (garbage from
# the client, TLS after NBD_OPT_STARTTLS is acknowledged, garbage from
# the server) switch the connection to raw pass-through, noted in the
# transcript, and are still forwarded byte for byte in both directions
# (the fake server echoes them, the probe compares).
source "$(dirname "$0")/spy-functions.sh"
fake=$NBDP_TOP/harness/spy/fake-server
refclient=$NBDP_TOP/reference-client/nbd-refclient
[ -x "$fake" ] || fail "$fake is not built (make check builds it)"

start_fake ()
{
  fsock=$NBDP_TEST_DIR/fake-$1.sock
  "$fake" -U "$fsock" --fault "$1" 2>"$NBDP_TEST_DIR/fake-$1.log" &
  _nbdp_pids+=("$!")
  wait_for "fake-server --fault $1 listening" 10 test -S "$fsock"
}

# TLS: after the STARTTLS ack, 300000 bytes of noise each way.
start_fake starttls
start_spy "$fsock"
"$fake" --client "$spy_sock" starttls ||
  fail "after NBD_OPT_STARTTLS: bytes sent through the spy did not come back unchanged"
stop_spy
expect_line '#1 S->C option reply NBD_REP_ACK to NBD_OPT_STARTTLS length 0$' "the STARTTLS ack"
expect_line '#1 ---- raw pass-through from here on: NBD_OPT_STARTTLS acknowledged: TLS follows' "the switch to pass-through"
expect_eq "bytes counted from the client" "STARTTLS then 300000 bytes" \
  "$(json_get "$spy_json" 'j["connections"][0]["bytes"]["client"]')" $((4 + 16 + 300000))
expect_eq "raw flag in the JSON summary" "STARTTLS" \
  "$(json_get "$spy_json" 'j["connections"][0]["raw"]')" true
expect_no_violations "STARTTLS then TLS-like noise"

# Garbage from the client instead of client flags and options.
start_fake echo
start_spy "$fsock"
"$fake" --client "$spy_sock" garbage ||
  fail "garbage from the client: bytes sent through the spy did not come back unchanged"
stop_spy
expect_line '#1 ---- raw pass-through from here on: bad option magic from the client' "the switch to pass-through"
n=$(json_get "$spy_json" "len ([v for v in j['violations'] if v['party'] == 'client'])")
[ "$n" -ge 1 ] || fail "garbage from the client: no violation reported against the client"
echo "ok: $n violations against the client"

# Garbage from the server instead of a reply.
start_fake bad-reply-magic
start_spy "$fsock"
timeout 20 "$refclient" read "$spy_uri" 0 4096 >/dev/null 2>&1 || :
stop_spy
expect_line '!!!! VIOLATION TX-GEN-1 MUST by the server: got reply magic 0x5a5a5a5a' "the bad reply magic"
expect_line '#1 ---- raw pass-through from here on: bad reply magic from the server' "the switch to pass-through"
