# nbd-conformance: helpers for the nbd-refclient tests (tests/resize-client-*.sh),
# sourced after tests/functions.sh.
#
#   refclient ARGS...          run nbd-refclient; sets $rc, $out, $err
#   expect_rc WHAT RC          fail unless the last run exited RC
#   expect_err_has WHAT TEXT   fail unless its stderr contains TEXT
#   check_server_without_resize URI [OPTIONS...]
#                              the checks every server that does not
#                              implement the draft must pass: info, read
#                              and write work, every resize operation is
#                              "not supported" (exit 3), in every encoding

NBD_REFCLIENT=${NBD_REFCLIENT:-$NBDP_TOP/reference-client/nbd-refclient}
[ -x "$NBD_REFCLIENT" ] ||
  fail "$NBD_REFCLIENT is not built (run: make reference-client/nbd-refclient)"

# quiet_kill PID: for cleanup_fn, when the process may have exited.
quiet_kill ()
{
  kill "$@" 2>/dev/null || :
}

refclient ()
{
  local o=$NBDP_TEST_DIR/refclient.out e=$NBDP_TEST_DIR/refclient.err
  _last_cmd="nbd-refclient $*"
  rc=0
  timeout 60 "$NBD_REFCLIENT" "$@" >"$o" 2>"$e" || rc=$?
  out=$(cat "$o")
  err=$(cat "$e")
}

expect_rc ()
{
  if [ "$rc" != "$2" ]; then
    echo "--- stdout:"; echo "$out"; echo "--- stderr:"; echo "$err"
    fail "$1: ran: $_last_cmd; exit status $rc; expected $2"
  fi
  echo "ok: $1 (exit $rc)"
}

expect_err_has ()
{
  if [[ "$err" != *"$2"* ]]; then
    echo "--- stderr:"; echo "$err"
    fail "$1: ran: $_last_cmd; stderr lacks '$2'"
  fi
}

expect_out_has ()
{
  if [[ "$out" != *"$2"* ]]; then
    echo "--- stdout:"; echo "$out"
    fail "$1: ran: $_last_cmd; stdout lacks '$2'"
  fi
}

# check_server_without_resize URI [OPTIONS...]: OPTIONS are given to
# every run (e.g. --no-structured for servers without structured replies).
# The export must be at least 1M and read as zero at 512K..516K.
check_server_without_resize ()
{
  local uri=$1 enc
  shift

  refclient "$@" info "$uri"
  expect_rc "info" 0
  expect_out_has "info" "resize mode: none"
  refclient "$@" --json info "$uri"
  expect_rc "info --json" 0
  echo "$out" > "$NBDP_TEST_DIR/info.json"
  expect_eq "info --json: mode" "info --json" \
    "$(json_get "$NBDP_TEST_DIR/info.json" 'j["mode"]')" none
  expect_eq "info --json: NBD_OPT_RESIZE" "info --json" \
    "$(json_get "$NBDP_TEST_DIR/info.json" 'j["opt_resize"]')" refused

  refclient "$@" write "$uri" 4096 8192 --pattern 0x5a
  expect_rc "write 8K at 4K" 0
  refclient "$@" read "$uri" 4096 8192 --expect 0x5a
  expect_rc "read back 8K at 4K" 0
  refclient "$@" read "$uri" 524288 4096 --expect zero
  expect_rc "read 4K of zeroes at 512K" 0
  # The content check must be able to fail.
  refclient "$@" read "$uri" 4096 8192 --expect 0x11
  expect_rc "read with a wrong --expect" 1
  expect_err_has "read with a wrong --expect" "content mismatch"

  for enc in negotiated flag-only info-optin boolean legacy; do
    refclient "$@" --encoding $enc resize "$uri" 2M
    expect_rc "resize --encoding $enc" 3
    expect_err_has "resize --encoding $enc" "not supported"
  done
  refclient "$@" --json resize "$uri" 2M
  expect_rc "resize --json" 3
  echo "$out" > "$NBDP_TEST_DIR/resize.json"
  expect_eq "resize --json: status" "resize --json" \
    "$(json_get "$NBDP_TEST_DIR/resize.json" 'j["status"]')" unsupported
  refclient "$@" query "$uri"
  expect_rc "query" 3
  refclient "$@" watch "$uri" --count 1 --timeout 2
  expect_rc "watch" 3
  refclient "$@" grow-write "$uri" 64M 4096
  expect_rc "grow-write past the end" 3
  expect_err_has "grow-write past the end" "not supported"
  refclient "$@" write "$uri" 64M 4096
  expect_rc "write past the end (RZ-CLI-16: not sent)" 3
  # Sent anyway: the server must refuse the unadvertised command, and the
  # client must not crash.
  refclient "$@" --force resize "$uri" 2M
  expect_rc "resize --force (NBD_CMD_RESIZE without NBD_FLAG_SEND_RESIZE)" 3
  expect_err_has "resize --force" "not supported"
  # The export still works afterwards.
  refclient "$@" read "$uri" 4096 8192 --expect 0x5a
  expect_rc "read after the forced resize" 0
}
