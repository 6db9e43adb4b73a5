#!/usr/bin/env bash
# nbd-conformance: what real peers (nbdinfo, nbdcopy, qemu-img, qemu-io)
# do against nbd-refserver under every draft RESIZE profile
# (specs/resize.md section 15.2).  None of these peers knows the draft,
# so every profile must keep serving them: they see legacy mode
# (NBD_FLAG_SEND_RESIZE, RZ-FLAG-3) or, under flag-only, the B1 flag
# NBD_FLAG_AUTO_RESIZE, and must still read, write and copy.
# Then the motivating case: qemu-img create -f qcow2 on a growable export
# and qemu-io writing beyond the initial container size (RZ-AUTO-1).
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version
requires nbdcopy --version
requires qemu-img --version
requires qemu-io --version

d=$NBDP_TEST_DIR
profiles=$("$NBD_REFSERVER" --list-profiles | awk '{ print $1 }')
[ -n "$profiles" ] || fail "--list-profiles printed nothing"
head -c $((1024 * 1024)) /dev/urandom > "$d/in.img"

for p in $profiles; do
  start_refserver --profile="$p" memory 8M
  size=$(nbdinfo --size "$uri") || fail "profile $p: nbdinfo failed"
  expect_eq "profile $p: nbdinfo --size" "$uri" "$size" 8388608
  nbdcopy "$d/in.img" "$uri" || fail "profile $p: nbdcopy to the server failed"
  nbdcopy "$uri" "$d/out.img" || fail "profile $p: nbdcopy from the server failed"
  cmp -n $((1024 * 1024)) "$d/in.img" "$d/out.img" ||
    fail "profile $p: nbdcopy round trip differs"
  echo "ok: profile $p: nbdcopy round trip"
  vs=$(qemu-img info --output=json "$uri" |
       /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])') ||
    fail "profile $p: qemu-img info failed"
  expect_eq "profile $p: qemu-img virtual-size" "$uri" "$vs" 8388608
  qemu-io -f raw -c 'write -P 0x33 4M 64k' -c 'read -P 0x33 4M 64k' "$uri" \
    >"$d/qio.out" 2>&1 || { cat "$d/qio.out"; fail "profile $p: qemu-io write/read failed"; }
  echo "ok: profile $p: qemu-io write and read back"
  kill "$pid"; wait "$pid" 2>/dev/null || :
done

# The motivating case, on the auto-grow profile (RZ-AUTO-1, RZ-AUTO-2).
start_refserver -v --profile=auto-grow memory 1M
qemu-img create -f qcow2 "$uri" 64M || fail "qemu-img create -f qcow2 on $uri failed"
echo "ok: qemu-img create -f qcow2 on a 1M growable export"
if qemu-io -f qcow2 -c 'write -P 0x55 32M 1M' "$uri" >"$d/qio.out" 2>&1 &&
   ! grep -q "failed" "$d/qio.out"; then
  cat "$d/qio.out"
  fail "qemu-io wrote past the 1M container without opting in: the server" \
       "grew the export (RZ-AUTO-1 broken)"
fi
cat "$d/qio.out"
grep -q "No space left on device" "$d/qio.out" ||
  fail "qemu-io writing past the container: expected ENOSPC, got the above"
grep -q "is beyond the export size" "$log" ||
  fail "the server log does not show the refused write past the end"
size=$(nbdinfo --size "$uri")
expect_eq "size after qemu-io's write past the end" "$uri" "$size" 1048576
echo "INFO: qemu 7.2 does not send NBD_OPT_RESIZE, so AUTO_GROW is not"
echo "INFO: active for it: its qcow2 cluster allocation past the 1M container"
echo "INFO: reached the server as a write past the end and failed with"
echo "INFO: NBD_ENOSPC (the published rule); the export did not grow."
kill "$pid"; wait "$pid" 2>/dev/null || :

# The same on the negative no-optin profile: the export grows under
# qemu, which does not expect it.
start_refserver --profile=no-optin memory 1M
qemu-img create -f qcow2 "$uri" 64M >/dev/null || fail "qemu-img create (no-optin)"
qemu-io -f qcow2 -c 'write -P 0x55 32M 1M' -c 'read -P 0x55 32M 1M' "$uri" \
  >"$d/qio.out" 2>&1
rc=$?
size=$(nbdinfo --size "$uri")
[ "$size" -gt 1048576 ] ||
  fail "no-optin: the export did not grow under qemu-io's write (size $size)"
echo "ok: no-optin: qemu-io's write past the end grew the export to $size"
echo "INFO: qemu-io exit status $rc on no-optin; its output:"
sed 's/^/INFO:   /' "$d/qio.out"
echo "INFO: (qemu 7.2 aborts on an assertion in block/nbd.c when it reads the"
echo "INFO: grown region with its stale size: the reason growth needs opt-in)"
kill "$pid"; wait "$pid" 2>/dev/null || :
