#!/usr/bin/env bash
# qemu-img and qemu-io (qemu's NBD client) against nbd-refserver over
# nbd+unix URIs and --image-opts:
#  - qemu-img convert of a local image into the export, qemu-img compare
#    says identical; after one changed byte it must say different;
#  - qemu-io pattern writes and reads (write -P, read -P; a wrong pattern
#    must fail), write zeroes, discard, FUA write, flush;
#  - qemu-img map sees data where it was written and zeroes elsewhere
#    (base:allocation);
#  - what qemu-io wrote is read back by a different client (nbdcopy).
# proto.md: "NBD_CMD_READ", "NBD_CMD_WRITE", "NBD_CMD_WRITE_ZEROES",
# "NBD_CMD_TRIM", "NBD_CMD_FLUSH", "Command flags" (FUA),
# "base:allocation metadata context".
source "$(dirname "$0")/functions.sh"
requires qemu-img --version
requires qemu-io --version
requires nbdcopy --version

start_refserver memory 32M
opts="driver=nbd,path=$sock"
d=$NBDP_TEST_DIR

# A local raw image: random data in two places, zeroes elsewhere.
local_img=$d/local.img
truncate -s 32M "$local_img"
head -c 1M /dev/urandom | dd of="$local_img" bs=1M seek=3 conv=notrunc status=none
head -c 300000 /dev/urandom | dd of="$local_img" bs=1 seek=20000001 conv=notrunc status=none

qemu-img convert -n -f raw -O raw "$local_img" "$uri" ||
  fail "qemu-img convert -n $local_img $uri failed"
if ! out=$(qemu-img compare -f raw -F raw "$local_img" "$uri" 2>&1); then
  fail "qemu-img compare after convert: sent $local_img; got: $out; expected identical"
fi
echo "ok: convert + compare: $out"

# The check above must be able to fail: change one byte on the server.
qemu-io --image-opts "$opts" -c "write -P 0x5a 4194816 1" >/dev/null ||
  fail "qemu-io write of one byte failed"
if out=$(qemu-img compare -f raw -F raw "$local_img" "$uri" 2>&1); then
  fail "qemu-img compare after changing byte 4194816: got: $out; expected a mismatch"
fi
expect_eq "compare after a one-byte change" "write -P 0x5a 4194816 1" \
  "$out" "Content mismatch at offset 4194816!"

# qemu-io pattern writes and reads, unaligned ones too.
io () {
  qemu-io --image-opts "$opts" "$@"
}
io -c "write -P 0xab 1M 64k" -c "write -P 0xcd 1114112 4096" \
   -c "write -P 0xef 5000 3000" >/dev/null || fail "qemu-io writes failed"
io -c "read -P 0xab 1M 64k" -c "read -P 0xcd 1114112 4096" \
   -c "read -P 0xef 5000 3000" -c "read -P 0 0 5000" ||
  fail "qemu-io read -P of what was just written failed"
if out=$(io -c "read -P 0xac 1M 64k" 2>&1); then
  fail "qemu-io read -P 0xac over 0xab data: got success ($out); expected a pattern mismatch"
fi
echo "ok: wrong pattern detected: $(echo "$out" | head -n 1)"

# Write zeroes, discard, FUA write, flush.
io -c "write -z 1M 4k" -c "read -P 0 1M 4k" -c "read -P 0xab 1052672 61440" ||
  fail "qemu-io write -z 1M 4k then read: zeroes (or the rest) not as expected"
io -c "write -z -u 1089536 8192" -c "read -P 0 1089536 8192" ||
  fail "qemu-io write -z -u (zero, may unmap): did not read back as zeroes"
io -c "write -f -P 0x77 2M 4k" -c "flush" -c "read -P 0x77 2M 4k" ||
  fail "qemu-io FUA write + flush + read failed"
io -c "discard 8M 1M" -c "flush" || fail "qemu-io discard 8M 1M failed"

# qemu-img map: data at 2M (written above), zeroes at 24M (never written).
map=$d/map.json
qemu-img map --output=json --image-opts "$opts" >"$map" || fail "qemu-img map failed"
cat "$map"
at () {
  json_get "$map" "[e for e in j if e['start'] <= $1 < e['start'] + e['length']][0]['$2']"
}
expect_eq "map data at 2M" "write -f -P 0x77 2M 4k" "$(at $((2 << 20)) data)" true
expect_eq "map zero at 24M" "nothing written there" "$(at $((24 << 20)) zero)" true
expect_eq "map covers the export" "qemu-img map" \
  "$(json_get "$map" "sum(e['length'] for e in j)")" $((32 << 20))

# Another client sees what qemu wrote: build the expected image locally
# with the same qemu-io commands on a file, copy the export out, compare.
expect=$d/expect.img
cp "$local_img" "$expect"
qemu-io -f raw "$expect" -c "write -P 0x5a 4194816 1" \
  -c "write -P 0xab 1M 64k" -c "write -P 0xcd 1114112 4096" \
  -c "write -P 0xef 5000 3000" -c "write -z 1M 4k" -c "write -z 1089536 8192" \
  -c "write -P 0x77 2M 4k" -c "write -z 8M 1M" >/dev/null ||
  fail "qemu-io on the local image failed"
nbdcopy "$uri" "$d/out.img" || fail "nbdcopy $uri out failed"
# The discarded range [8M, 9M) is unspecified after a trim (proto.md
# "NBD_CMD_TRIM"): overwrite it with zeroes on both sides before comparing.
dd if=/dev/zero of="$d/out.img" bs=1M seek=8 count=1 conv=notrunc status=none
cmp "$expect" "$d/out.img" ||
  fail "export read back by nbdcopy differs from the same qemu-io commands applied to a local file"
echo "ok: nbdcopy reads what qemu-io wrote"
