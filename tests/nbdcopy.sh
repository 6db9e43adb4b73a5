#!/usr/bin/env bash
# nbdcopy (libnbd) against nbd-refserver: 64 MiB of random data copied into
# a memory export and back out is identical byte for byte, with one
# connection and with four (multi-conn), each into a fresh export.
# proto.md: "NBD_CMD_WRITE", "NBD_CMD_READ", "Ordering of messages and
# writes" (flush), "Transmission flags" (NBD_FLAG_CAN_MULTI_CONN).
source "$(dirname "$0")/functions.sh"
requires nbdcopy --version
requires cmp --version

size=$((64 * 1024 * 1024))
in=$NBDP_TEST_DIR/in.img
head -c "$size" /dev/urandom >"$in"
[ "$(stat -c %s "$in")" -eq "$size" ] || fail "could not make $size bytes of random data"

for conns in 1 4; do
  start_refserver memory 64M
  out=$NBDP_TEST_DIR/out$conns.img
  echo "nbdcopy -C $conns $in -> $uri"
  nbdcopy -C "$conns" --flush "$in" "$uri" ||
    fail "nbdcopy -C $conns into the export failed"
  echo "nbdcopy -C $conns $uri -> $out"
  nbdcopy -C "$conns" "$uri" "$out" ||
    fail "nbdcopy -C $conns out of the export failed"
  got=$(stat -c %s "$out")
  expect_eq "size copied back (-C $conns)" "$size random bytes" "$got" "$size"
  if ! cmp "$in" "$out"; then
    fail "nbdcopy -C $conns: sent $size random bytes; read back different bytes (first difference above); expected identical"
  fi
  echo "ok: -C $conns round trip identical"
  rm -f "$out"
done
