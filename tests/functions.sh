# nbd-conformance: helpers sourced by the integration tests (tests/*.sh).
#
#   requires CMD ARGS...   run CMD; if it fails, print "SKIP: ..." and exit 77
#   start_refserver ARGS   start nbd-refserver on a private Unix socket and
#                          wait until it is listening; sets $sock, $uri, $pid
#   cleanup_fn CMD ARGS    run CMD ARGS when the test exits (any way)
#   fail MSG...            print FAIL and the server logs, exit 1
#   expect_eq WHAT SENT GOT EXPECTED
#                          fail unless GOT = EXPECTED, saying what was sent
#   vmrss PID              resident set size of PID in KiB
#
# Tests run under scripts/run-tests.sh, which gives each a private scratch
# directory $NBDP_TEST_DIR; run by hand, a temporary one is made here.
# $NBD_REFSERVER may name another build of the server (default: this tree's).

set -u
set -o pipefail
export LC_ALL=C

NBDP_TOP=${NBDP_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
NBD_REFSERVER=${NBD_REFSERVER:-$NBDP_TOP/reference-server/nbd-refserver}
# nbdsh runs python3 from PATH: Debian's has the nbd module, pyenv's not.
case ":$PATH:" in
  /usr/bin:*) ;;
  *) PATH=/usr/bin:/usr/sbin:$PATH ;;
esac
export PATH

_nbdp_cleanups=()
_nbdp_pids=()
_nbdp_logs=()

_nbdp_run_cleanups ()
{
  local rc=$? i p
  trap - EXIT INT TERM
  for ((i = ${#_nbdp_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_nbdp_cleanups[i]}" || :
  done
  for p in "${_nbdp_pids[@]}"; do
    kill "$p" 2>/dev/null || :
  done
  # Bounded wait for them to go, then force.
  for p in "${_nbdp_pids[@]}"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$p" 2>/dev/null || :
  done
  [ -n "${_nbdp_own_dir:-}" ] && rm -rf "$_nbdp_own_dir"
  exit "$rc"
}
trap _nbdp_run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${NBDP_TEST_DIR:-}" ]; then
  NBDP_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nbdp-test.XXXXXX")
  _nbdp_own_dir=$NBDP_TEST_DIR
fi
export NBDP_TEST_DIR

cleanup_fn ()
{
  local q
  printf -v q '%q ' "$@"
  _nbdp_cleanups+=("$q")
}

# requires CMD ARGS...: skip the test unless CMD runs successfully.
requires ()
{
  if ! "$@" >/dev/null 2>&1; then
    echo "SKIP: '$*' failed: this test needs $1"
    exit 77
  fi
}

# requires_file PATH: skip unless PATH exists (e.g. /proc/self/status).
requires_file ()
{
  if [ ! -e "$1" ]; then
    echo "SKIP: $1 does not exist"
    exit 77
  fi
}

fail ()
{
  local l
  echo "FAIL: $*"
  for l in "${_nbdp_logs[@]}"; do
    if [ -s "$l" ]; then
      echo "--- last lines of $l"
      tail -n 20 "$l"
    fi
  done
  exit 1
}

# expect_eq WHAT SENT GOT EXPECTED
expect_eq ()
{
  if [ "$3" != "$4" ]; then
    fail "$1: sent: $2; got: $3; expected: $4"
  fi
  echo "ok: $1 = $3"
}

# Wait (bounded) for a condition given as a command; fail with MSG if it
# never becomes true.  Polls every 10 ms for at most $2 seconds.
wait_for ()
{
  local msg=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 100; i++)); do
    "$@" && return 0
    sleep 0.01
  done
  fail "$msg (waited ${secs}s)"
}

# start_refserver [SERVER OPTIONS] [BACKEND ARG]
# Starts the server in the background on a fresh private socket and waits
# until it has written its pid file (it does so once listening).  Sets:
#   sock  the Unix socket      uri  nbd+unix:///?socket=$sock
#   pid   the server's pid     log  its stderr
# Each call uses new names, so a test can run several servers.
_nbdp_nservers=0
start_refserver ()
{
  local n pidfile bgpid i
  if [ ! -x "$NBD_REFSERVER" ]; then
    fail "$NBD_REFSERVER is not built (run: make reference-server/nbd-refserver)"
  fi
  n=$_nbdp_nservers
  _nbdp_nservers=$((n + 1))
  sock=$NBDP_TEST_DIR/sock$n
  pidfile=$NBDP_TEST_DIR/refserver$n.pid
  log=$NBDP_TEST_DIR/refserver$n.log
  rm -f "$sock" "$pidfile"
  echo "start: nbd-refserver -f --exit-with-parent -U $sock -P $pidfile $*"
  "$NBD_REFSERVER" -f --exit-with-parent -U "$sock" -P "$pidfile" "$@" \
    2>"$log" &
  bgpid=$!
  _nbdp_pids+=("$bgpid")
  _nbdp_logs+=("$log")
  # The pid file appears once the server listens; stop early if it died.
  for ((i = 0; i < 1000; i++)); do
    [ -s "$pidfile" ] && break
    if ! kill -0 "$bgpid" 2>/dev/null; then
      wait "$bgpid"
      fail "nbd-refserver $* exited with status $? before listening"
    fi
    sleep 0.01
  done
  [ -s "$pidfile" ] || fail "nbd-refserver $* wrote no pid file within 10s"
  pid=$(cat "$pidfile")
  expect_eq "pid in $pidfile" "-P $pidfile" "$pid" "$bgpid" >/dev/null
  [ -S "$sock" ] || fail "pid file written but $sock is not a socket"
  uri="nbd+unix:///?socket=$sock"
}

# start_nbdkit PLUGIN ARGS...: the same for nbdkit (comparisons, bench).
start_nbdkit ()
{
  local n pidfile bgpid i
  n=$_nbdp_nservers
  _nbdp_nservers=$((n + 1))
  sock=$NBDP_TEST_DIR/sock$n
  pidfile=$NBDP_TEST_DIR/nbdkit$n.pid
  log=$NBDP_TEST_DIR/nbdkit$n.log
  nbdkit -f --exit-with-parent -U "$sock" -P "$pidfile" "$@" 2>"$log" &
  bgpid=$!
  _nbdp_pids+=("$bgpid")
  _nbdp_logs+=("$log")
  for ((i = 0; i < 1000; i++)); do
    [ -s "$pidfile" ] && break
    kill -0 "$bgpid" 2>/dev/null || fail "nbdkit $* exited before listening"
    sleep 0.01
  done
  [ -s "$pidfile" ] || fail "nbdkit $* wrote no pid file within 10s"
  pid=$(cat "$pidfile")
  uri="nbd+unix:///?socket=$sock"
}

# vmrss PID: resident set size in KiB, from /proc/PID/status.
vmrss ()
{
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# json_get FILE EXPR: evaluate a Python expression over the JSON document
# j read from FILE and print the result (True/False print as true/false).
json_get ()
{
  /usr/bin/python3 -c '
import json, sys
j = json.load (open (sys.argv[1]))
v = eval (sys.argv[2], {"j": j})
print (str (v).lower () if isinstance (v, bool) else v)' "$1" "$2"
}

# unix_listening PATH: true once a socket bound to PATH is listening.  The
# socket file appears at bind(), before listen(), so "test -S" is not
# enough; this asks the kernel (flag __SO_ACCEPTCON in /proc/net/unix)
# without connecting, which would use up a one-connection server.
unix_listening ()
{
  awk -v p="$1" '$8 == p && $4 == "00010000" { found = 1 }
                 END { exit !found }' /proc/net/unix
}
