#!/usr/bin/env bash
# Runs the client suites (nbd-conform --client) against every NBD client
# found here: nbdinfo, qemu-img, qemu-io, nbdcopy and this tree's
# nbd-refclient.  Each client's known deviations are listed in
# results/expectations/clients/CLIENT.tsv (XFAIL there; XPASS fails, so the
# lists stay true).  A client that is not installed is skipped; the test
# skips when none is.
source "$(dirname "$0")/../tests/functions.sh"

conform=$NBDP_TOP/suites/nbd-conform
refclient=$NBDP_TOP/reference-client/nbd-refclient
expdir=$NBDP_TOP/results/expectations/clients
requires test -x "$conform"
export TMPDIR=$NBDP_TEST_DIR/tmp
mkdir -p "$TMPDIR"

# An input for the writing commands: 512K zeroes (clients may zero or trim
# them) then 512K of data.
mkin='head -c 512K /dev/zero > in && head -c 512K /dev/urandom >> in'

ran=0
failed=()

# run NAME PROGRAM CLIENT-CMD READ-CMD WRITE-CMD (READ/WRITE may be "")
run ()
{
  local name=$1 prog=$2 cmd=$3 rcmd=$4 wcmd=$5 rc out args=()
  if ! command -v "$prog" >/dev/null 2>&1; then
    echo "# $name: $prog not installed, skipped"
    return
  fi
  args=(--client "$cmd")
  [ -n "$rcmd" ] && args+=(--client-read "$rcmd")
  [ -n "$wcmd" ] && args+=(--client-write "$wcmd")
  [ -f "$expdir/$name.tsv" ] && args+=(--expect "$expdir/$name.tsv")
  out=$NBDP_TEST_DIR/$name.tap
  "$conform" -j 4 --timeout 10 --json "$NBDP_TEST_DIR/$name.json" \
    "${args[@]}" > "$out" 2>&1
  rc=$?
  ran=$((ran + 1))
  echo "# ---- $name: nbd-conform ${args[*]} (exit $rc)"
  grep -E '^(not ok|ok .*# (SKIP|TODO))|^# (summary|FAIL|XPASS|TIMEOUT|ERROR)' \
    "$out" | sed 's/^/#   /'
  if [ "$rc" -ne 0 ]; then
    cat "$out"
    failed+=("$name (exit $rc)")
  fi
}

run nbdinfo nbdinfo 'nbdinfo {uri}' 'nbdinfo --map {uri}' ''
run qemu-img qemu-img 'qemu-img info {uri}' \
  'qemu-img convert -O raw {uri} {dir}/out' \
  "$mkin && qemu-img convert -n -f raw -O raw in {uri}"
run qemu-io qemu-io "qemu-io -f raw -c 'read 0 64k' {uri}" \
  "qemu-io -f raw -c 'read 0 64k' {uri}" \
  "qemu-io -f raw -c 'write -f -P 0xcd 0 64k' -c 'write -z 64k 64k' -c 'discard 128k 64k' -c flush {uri}"
run nbdcopy nbdcopy 'nbdcopy {uri} {dir}/out' 'nbdcopy {uri} {dir}/out' \
  "$mkin && nbdcopy in {uri}"
if [ -x "$refclient" ]; then
  run nbd-refclient "$refclient" "$refclient info {uri}" \
    "$refclient read {uri} 0 65536" \
    "$refclient write {uri} 0 65536 --pattern 0xcd"
fi

[ "$ran" -gt 0 ] || { echo "SKIP: no NBD client installed"; exit 77; }
expect_eq "leftovers in TMPDIR" "all client runs" "$(ls -A "$TMPDIR")" ""
[ "${#failed[@]}" -eq 0 ] || fail "client suites failed: ${failed[*]}"
exit 0
