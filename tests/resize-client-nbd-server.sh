#!/usr/bin/env bash
# nbd-refclient against nbd-server (config file with unixsock, see
# nbd-server(5)), which does not implement the draft RESIZE extension:
# info, read and write work; every resize operation says "not supported"
# (exit 3); a forced NBD_CMD_RESIZE is refused without a crash.
# nbd-server runs in the foreground (-d), where it serves one connection
# and exits, so each run of the client gets a fresh server.
# specs/resize.md 4.1 (RZ-NEG-3), 4.4 (RZ-FLAG-4), 14 (RZ-CLI-1, RZ-CLI-16).
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/resize-client-functions.sh"
requires nbd-server -V

img=$NBDP_TEST_DIR/disk.img
sock=$NBDP_TEST_DIR/nbd-server.sock
conf=$NBDP_TEST_DIR/nbd-server.conf
truncate -s 16M "$img"
cat > "$conf" <<CONF
[generic]
unixsock = $sock
[disk]
exportname = $img
CONF
uri="nbd+unix:///disk?socket=$sock"

# A fresh single-connection server before every client run.
nbds_pid=
start_nbd_server ()
{
  if [ -n "$nbds_pid" ]; then
    kill "$nbds_pid" 2>/dev/null
    wait "$nbds_pid" 2>/dev/null
  fi
  rm -f "$sock"
  nbd-server -C "$conf" -d 2>>"$NBDP_TEST_DIR/nbd-server.log" &
  nbds_pid=$!
  _nbdp_pids+=("$nbds_pid")
  wait_for "nbd-server listening on $sock" 10 unix_listening "$sock"
}
_nbdp_logs+=("$NBDP_TEST_DIR/nbd-server.log")
eval "_orig_$(declare -f refclient)"
refclient ()
{
  start_nbd_server
  _orig_refclient "$@"
}

check_server_without_resize "$uri" --no-structured
check_server_without_resize "$uri"
