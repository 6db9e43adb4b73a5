#!/usr/bin/env bash
# After a whole run nothing of ours remains: no process, no temporary
# file or directory.  A matrix over every kind of adapter (nbd-server
# daemonizes, qemu-storage-daemon has a QMP socket, nbd-refserver a
# control socket, nbd-refclient's driver a background subscriber) and
# every client, plus a client that hangs (TIMEOUT) and a server that dies
# (ERROR), is run with nbd-matrix's defaults for temporary files (TMPDIR
# unset: /tmp).
#
# Processes: every process the runs start carries a marker in its
# environment (NBDM_LEFTOVER_MARK=unique); before and after, /proc is
# searched for it, and the processes that appeared meanwhile are listed.
# Temporary files: when the test may make a mount namespace (root), /tmp,
# /var/tmp and /dev/shm are private empty tmpfs mounts for the runs, so
# any file any process of the runs left there is seen, whatever its name;
# otherwise the runs use a private TMPDIR, which must end empty.
set -u
if [ "${NBDM_LEFTOVER_NS-}" != 1 ] && [ "$(id -u)" = 0 ] &&
   unshare --mount --propagation private true 2>/dev/null; then
  own=
  if [ -z "${NBDP_TEST_DIR:-}" ]; then
    NBDP_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nbdm-test.XXXXXX")
    own=$NBDP_TEST_DIR
  fi
  NBDM_LEFTOVER_NS=1 NBDP_TEST_DIR=$NBDP_TEST_DIR \
    unshare --mount --propagation private "$0" "$@"
  rc=$?
  [ -z "$own" ] || rm -rf "$own"
  exit $rc
fi

private_tmp=0
if [ "${NBDM_LEFTOVER_NS-}" = 1 ]; then
  # Keep the scratch directory (it may be under /tmp) visible through a
  # descriptor, cover the temporary directories, and bind it back.
  # The source tree may live under /tmp too (a CI clone): keep it visible
  # the same way.
  src=$(cd "$(dirname "$0")/../.." && pwd)
  exec {keep}<"$NBDP_TEST_DIR" {keepsrc}<"$src"
  for d in /tmp /var/tmp /dev/shm; do
    mount -t tmpfs -o mode=1777,size=512m nbdm-leftovers "$d" ||
      { echo "FAIL: cannot mount a tmpfs on $d"; exit 1; }
  done
  mkdir -p "$NBDP_TEST_DIR"
  mount --no-canonicalize --bind "/proc/self/fd/$keep" "$NBDP_TEST_DIR" ||
    { echo "FAIL: cannot bind the scratch directory back"; exit 1; }
  if [ ! -d "$src/harness" ]; then
    mkdir -p "$src"
    mount --no-canonicalize --bind "/proc/self/fd/$keepsrc" "$src" ||
      { echo "FAIL: cannot bind the source tree $src back"; exit 1; }
  fi
  exec {keep}<&- {keepsrc}<&-
  private_tmp=1
fi

source "$(dirname "$0")/lib.sh"
requires nbdkit memory --version
requires jq --version

mark=nbdm-$$-$RANDOM$RANDOM
m=$top/harness/nbd-matrix
marked () {
  grep -l -z -F "NBDM_LEFTOVER_MARK=$mark" /proc/[0-9]*/environ 2>/dev/null |
    sed 's|^/proc/\([0-9]*\)/environ$|\1|'
}
temp_listing () {
  if [ $private_tmp = 1 ]; then
    find /tmp /var/tmp /dev/shm -mindepth 1 -maxdepth 1 | sort
  else
    find "$TMPDIR" -mindepth 1 | sort
  fi
}
# The runs use the defaults: TMPDIR unset (with private mounts), else the
# private TMPDIR of lib.sh.
run_env=(env)
[ $private_tmp = 0 ] || run_env+=(-u TMPDIR)
run_env+=(NBDM_LEFTOVER_MARK="$mark" NBD_MATRIX_TOP="$top")

ps -e -o pid= | sort -n > "$scratch/ps.before"
temp_listing > "$scratch/tmp.before"
[ -z "$(marked)" ] || fail "marked processes before the run"

# 1. Real implementations: every server kind and every client.
"${run_env[@]}" "$m" --servers 'nbd-server,nbdkit-file,qemu-nbd-qcow2,qemu-storage-daemon,nbd-refserver:everything' \
  --scenarios handshake-info,qsd-block-resize,notify-external-resize \
  --timeout 30 -j 2 --out "$scratch/real" > "$scratch/real.log" 2>&1
rc=$?
sed 's/^/  real| /' "$scratch/real.log" | grep -v '^  real| \[' || :
[ $rc -le 1 ] || fail "the run broke (exit status $rc)"
# 2. A client that hangs (and leaves a child) and a server that dies.
"${run_env[@]}" "$m" --servers nbdkit-memory \
  --clients-dir "$top/harness/tests/fake-clients" --clients hang \
  --scenarios handshake-info --timeout 2 --out "$scratch/hang" \
  > "$scratch/hang.log" 2>&1
sed 's/^/  hang| /' "$scratch/hang.log" | grep -- '\.\.\.'
[ "$(jq -r '.cells[0].verdict' "$scratch/hang/results.json")" = TIMEOUT ] ||
  fail "the hanging client did not end as TIMEOUT"
if nbdkit sh --version >/dev/null 2>&1; then
  "${run_env[@]}" "$m" --servers-dir "$top/harness/tests/fake-servers" \
    --servers crashy --clients libnbd --scenarios rw-patterns --timeout 20 \
    --out "$scratch/crash" > "$scratch/crash.log" 2>&1
  sed 's/^/  crash| /' "$scratch/crash.log" | grep -- '\.\.\.'
  [ "$(jq -r '.cells[0].verdict' "$scratch/crash/results.json")" = ERROR ] ||
    fail "the dying server did not give ERROR"
fi

# Every process of ours is gone.
ps -e -o pid= | sort -n > "$scratch/ps.after"
left=$(marked)
if [ -n "$left" ]; then
  for p in $left; do
    echo "left: $(ps -o pid=,ppid=,args= -p "$p" 2>/dev/null)"
  done
  fail "processes of the run are still alive: $(echo $left)"
fi
new=$(comm -13 "$scratch/ps.before" "$scratch/ps.after" | wc -l)
echo "processes: none of ours left ($new processes appeared meanwhile; none carries the run's marker)"

# Every temporary file of ours is gone.
temp_listing > "$scratch/tmp.after"
if ! diff -u "$scratch/tmp.before" "$scratch/tmp.after" > "$scratch/tmp.diff"; then
  cat "$scratch/tmp.diff"
  fail "temporary files left behind (above)"
fi
if [ $private_tmp = 1 ]; then
  echo "temporary files: /tmp, /var/tmp and /dev/shm (private) as before the run"
else
  echo "temporary files: $TMPDIR empty (no mount namespace here: /tmp itself not checked)"
fi
# Nor did the runs leave work files in their own directories.
for d in real hang crash; do
  [ ! -e "$scratch/$d/.work" ] || fail "$d/.work was left in the run directory"
done
# Every cell of the real run has a verdict and every SKIP or UNSUPPORTED
# a reason.
jq -e '[.cells[] | select(.verdict == "SKIP" or .verdict == "UNSUPPORTED")
        | .reason | length > 0] | all' "$scratch/real/results.json" >/dev/null ||
  fail "a SKIP or UNSUPPORTED cell has no reason"
exit 0
