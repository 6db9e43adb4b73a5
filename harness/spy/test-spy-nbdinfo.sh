#!/usr/bin/env bash
# nbd-spy between nbdinfo (libnbd) and nbd-refserver: the handshake is
# decoded line by line (greeting, client flags, options, INFO items, the
# switch to transmission, requests and replies), nothing is reported, and
# nbdinfo's answer through the spy is the same as without it.  Also
# --run: the spy runs the client with $uri and exits with its status;
# socket activation.
source "$(dirname "$0")/spy-functions.sh"
requires nbdinfo --version

start_refserver memory 1M --export name=second,memory=64K,desc=the-second
srv=$sock
direct=$(nbdinfo --json "$uri") || fail "nbdinfo $uri (without the spy) failed"

start_spy "$srv"
through=$(nbdinfo --json "$spy_uri") || fail "nbdinfo $spy_uri (through the spy) failed"
nbdinfo --list "$spy_uri" >/dev/null || fail "nbdinfo --list through the spy failed"
nbdinfo "nbd+unix:///second?socket=$spy_sock" >/dev/null ||
  fail "nbdinfo of export 'second' through the spy failed"
stop_spy
expect_eq "nbd-spy exit status" "SIGTERM" "$spy_status" 0
# The URI differs; everything else is the same.
expect_eq "nbdinfo --json through the spy" "nbdinfo --json" \
  "$(sed 's/socket=[^"]*//' <<<"$through")" "$(sed 's/socket=[^"]*//' <<<"$direct")"

expect_line '#1 S->C greeting newstyle: handshake flags FIXED_NEWSTYLE\|NO_ZEROES$' "the greeting"
expect_line '#1 C->S client flags FIXED_NEWSTYLE\|NO_ZEROES$' "the client flags"
expect_line '#1 C->S option NBD_OPT_GO length [0-9]+: name "" info requests \[.*NBD_INFO_BLOCK_SIZE' "NBD_OPT_GO with its info requests"
expect_line '#1 S->C option reply NBD_REP_INFO to NBD_OPT_GO length 12: NBD_INFO_EXPORT export size 1048576 flags HAS_FLAGS' "NBD_INFO_EXPORT"
expect_line '#1 S->C option reply NBD_REP_INFO to NBD_OPT_GO length 14: NBD_INFO_BLOCK_SIZE minimum 1 preferred 4096' "NBD_INFO_BLOCK_SIZE"
expect_line '#1 ---- transmission: export size 1048576, flags HAS_FLAGS' "the switch to transmission"
expect_line '#1 C->S request NBD_CMD_DISC' "NBD_CMD_DISC"
expect_line '#2 S->C option reply NBD_REP_SERVER to NBD_OPT_LIST length [0-9]+: name "second" description "the-second"' "NBD_REP_SERVER of --list"
expect_line '#3 S->C option reply NBD_REP_INFO to NBD_OPT_GO length [0-9]+: NBD_INFO_DESCRIPTION "the-second"' "NBD_INFO_DESCRIPTION"
expect_eq "connections in the JSON summary" "3 runs of nbdinfo" \
  "$(json_get "$spy_json" 'j["summary"]["connections"]')" 3
expect_no_violations "nbdinfo, nbdinfo --list, nbdinfo of a named export"

# --run: the client runs under the spy, which exits with its status.
json=$NBDP_TEST_DIR/run.json
"$NBD_SPY" --listen "$NBDP_TEST_DIR/run.sock" --upstream "nbd+unix:///second?socket=$srv" \
  --json "$json" --strict --run 'nbdinfo --size "$uri" > "$NBDP_TEST_DIR/size"' ||
  fail "nbd-spy --run 'nbdinfo --size \$uri' exited with status $?"
expect_eq "size of export 'second' via --run and \$uri" "nbdinfo --size" \
  "$(cat "$NBDP_TEST_DIR/size")" 65536

"$NBD_SPY" --listen "$NBDP_TEST_DIR/run.sock" --upstream-unix "$srv" --run 'exit 3'
rc=$?

expect_eq "nbd-spy --run 'exit 3' exit status" "--run 'exit 3'" "$rc" 3
[ ! -e "$NBDP_TEST_DIR/run.sock" ] || fail "nbd-spy left its socket behind"

# Socket activation (how nbd-matrix starts it): the caller made the
# listening socket, fd 3; no --listen; $uri names the inherited socket,
# which the spy leaves in place.
act=$NBDP_TEST_DIR/act.sock
out=$(/usr/bin/python3 - "$NBD_SPY" "$srv" "$act" <<'PY'
import os, socket, sys
spy, srv, path = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
pid = os.fork()
if pid == 0:
    if s.fileno() != 3:
        os.dup2(s.fileno(), 3)
    os.set_inheritable(3, True)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDS"] = "1"
    os.execv(spy, [spy, "--upstream-unix", srv, "--strict",
                   "--run", 'nbdinfo --size "$uri"; echo "$unixsocket"'])
s.close()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
PY
) || fail "nbd-spy by socket activation exited with status $?"
expect_eq "nbdinfo --size through an activated spy" "socket activation" \
  "$out" "$(printf '1048576\n%s' "$act")"
[ -S "$act" ] || fail "the spy removed the socket it was given"

# A TCP upstream: the server picks a port and runs the spy, which runs
# nbdinfo; every status comes back out.
out=$("$NBD_REFSERVER" -p 0 --run "'$NBD_SPY' --listen '$NBDP_TEST_DIR/tcp.sock' --upstream \"\$uri\" --strict --transcript '$NBDP_TEST_DIR/tcp.transcript' --run 'nbdinfo --size \"\$uri\"'" memory 4M) ||
  fail "nbd-refserver -p 0 --run 'nbd-spy --upstream \$uri --run nbdinfo' failed"
expect_eq "export size through a TCP upstream" "nbdinfo --size" "$out" 4194304
grep -q 'upstream nbd://127.0.0.1:[0-9]*/ connected' "$NBDP_TEST_DIR/tcp.transcript" ||
  fail "the transcript does not show the TCP upstream"
echo "ok: TCP upstream"
