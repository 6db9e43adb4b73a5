#!/usr/bin/env bash
# nbd-spy between qemu-img and nbd-refserver: qemu-img convert writes a
# random image through the spy (with zero detection, so WRITE_ZEROES and
# BLOCK_STATUS pass too), qemu-img compare reads it back through the spy,
# and nothing is reported.
source "$(dirname "$0")/spy-functions.sh"
requires qemu-img --version

size=$((8 * 1024 * 1024))
in=$NBDP_TEST_DIR/in.img
# Random data with a zero hole in the middle.
head -c $((3 * 1024 * 1024)) /dev/urandom >"$in"
head -c $((2 * 1024 * 1024)) /dev/zero >>"$in"
head -c $((3 * 1024 * 1024)) /dev/urandom >>"$in"

start_refserver memory 8M
start_spy "$sock"
qemu-img convert -n -f raw -O raw "$in" "$spy_uri" ||
  fail "qemu-img convert into $spy_uri failed"
qemu-img compare -f raw -F raw "$in" "$spy_uri" ||
  fail "qemu-img compare $in with the export through the spy: images differ"
echo "ok: qemu-img convert and compare through the spy"
stop_spy
expect_eq "nbd-spy exit status" "SIGTERM" "$spy_status" 0
expect_line 'C->S option NBD_OPT_SET_META_CONTEXT length [0-9]+: name "" queries \[.*"base:allocation"' "qemu's SET_META_CONTEXT"
expect_line 'S->C option reply NBD_REP_META_CONTEXT to NBD_OPT_SET_META_CONTEXT length [0-9]+: context ID [0-9]+ name "base:allocation"' "the context ID"
expect_line 'C->S request NBD_CMD_WRITE' "the writes"
expect_line 'C->S request NBD_CMD_READ' "the reads"
expect_no_violations "qemu-img convert and compare"
