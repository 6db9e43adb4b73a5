# nbd-conformance: helpers for the nbd-spy tests (harness/spy/test-*.sh),
# on top of tests/functions.sh.
#
#   start_spy UPSTREAM_SOCKET [SPY OPTIONS]
#                 start nbd-spy in front of the server on that socket;
#                 sets $spy_sock, $spy_uri, $spy_pid, $spy_transcript,
#                 $spy_json
#   stop_spy      SIGTERM and wait: the JSON summary is written at exit;
#                 sets $spy_status
#   spy_violations          number of violations in $spy_json
#   expect_no_violations    fail (showing them) unless there are none
#   expect_line REGEX WHAT  fail unless the transcript has a matching line

source "$(dirname "${BASH_SOURCE[0]}")/../../tests/functions.sh"

NBD_SPY=${NBD_SPY:-$NBDP_TOP/harness/spy/nbd-spy}
_nbdp_nspies=0

start_spy ()
{
  local up=$1 n pidfile i
  shift
  [ -x "$NBD_SPY" ] || fail "$NBD_SPY is not built (run: make harness/spy/nbd-spy)"
  n=$_nbdp_nspies
  _nbdp_nspies=$((n + 1))
  spy_sock=$NBDP_TEST_DIR/spy$n.sock
  pidfile=$NBDP_TEST_DIR/spy$n.pid
  spy_transcript=$NBDP_TEST_DIR/spy$n.transcript
  spy_json=$NBDP_TEST_DIR/spy$n.json
  spy_log=$NBDP_TEST_DIR/spy$n.log
  rm -f "$spy_sock" "$pidfile" "$spy_json"
  echo "start: nbd-spy --exit-with-parent --listen $spy_sock --upstream-unix $up" \
       "--transcript $spy_transcript --json $spy_json -P $pidfile $*"
  "$NBD_SPY" --exit-with-parent --listen "$spy_sock" --upstream-unix "$up" \
    --transcript "$spy_transcript" --json "$spy_json" -P "$pidfile" "$@" \
    2>"$spy_log" &
  spy_pid=$!
  _nbdp_pids+=("$spy_pid")
  _nbdp_logs+=("$spy_log" "$spy_transcript")
  for ((i = 0; i < 1000; i++)); do
    [ -s "$pidfile" ] && break
    kill -0 "$spy_pid" 2>/dev/null || fail "nbd-spy exited before listening"
    sleep 0.01
  done
  [ -s "$pidfile" ] || fail "nbd-spy wrote no pid file within 10s"
  spy_uri="nbd+unix:///?socket=$spy_sock"
}

stop_spy ()
{
  kill -TERM "$spy_pid" 2>/dev/null || :
  spy_status=0
  wait "$spy_pid" || spy_status=$?
  [ -s "$spy_json" ] || fail "nbd-spy wrote no JSON summary to $spy_json"
}

spy_violations ()
{
  json_get "$spy_json" 'len (j["violations"])'
}

expect_no_violations ()
{
  local n
  n=$(spy_violations)
  if [ "$n" != 0 ]; then
    grep -F '!!!!' "$spy_transcript" | head -n 20
    fail "$1: nbd-spy saw $n violations (listed above), expected none"
  fi
  echo "ok: $1: no violations"
}

expect_line ()
{
  if ! grep -Eq -- "$1" "$spy_transcript"; then
    echo "--- transcript:"
    head -n 40 "$spy_transcript"
    fail "transcript has no line matching /$1/ ($2)"
  fi
  echo "ok: transcript has $2"
}
