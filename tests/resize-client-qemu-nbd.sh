#!/usr/bin/env bash
# nbd-refclient against qemu-nbd serving a raw file, which does not
# implement the draft RESIZE extension: info, read and write work (also
# with extended headers, which qemu-nbd offers); every resize operation
# says "not supported" (exit 3); a forced NBD_CMD_RESIZE is refused.
# specs/resize.md 4.1 (RZ-NEG-3), 4.4 (RZ-FLAG-4), 14 (RZ-CLI-1, RZ-CLI-16).
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/resize-client-functions.sh"
requires qemu-nbd --version

img=$NBDP_TEST_DIR/disk.img
sock=$NBDP_TEST_DIR/qemu.sock
pidfile=$NBDP_TEST_DIR/qemu.pid
truncate -s 16M "$img"
qemu-nbd -k "$sock" -f raw -t --pid-file "$pidfile" "$img" \
  2>"$NBDP_TEST_DIR/qemu.log" &
qpid=$!
cleanup_fn kill "$qpid"
_nbdp_logs+=("$NBDP_TEST_DIR/qemu.log")
wait_for "qemu-nbd listening on $sock" 10 unix_listening "$sock"
uri="nbd+unix:///?socket=$sock"

check_server_without_resize "$uri"
check_server_without_resize "$uri" --extended
check_server_without_resize "$uri" --no-structured
