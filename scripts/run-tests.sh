#!/usr/bin/env bash
# Runs each test given on the command line and prints TAP version 14.
# A test is an executable: exit 0 = pass, 77 = skip (its last output line
# says why), anything else = fail (its output is shown as TAP comments).
# Each test gets a private scratch directory in $NBDP_TEST_DIR, removed
# afterwards, and runs in its own process group so that nothing it started
# outlives it.
set -u
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
export NBDP_TOP=$top
# libnbd's nbdsh runs "python3" from PATH: prefer the system one, which has
# the nbd module from Debian's python3-libnbd.
export PATH=/usr/bin:/usr/sbin:$PATH
timeout_s=${NBDP_TEST_TIMEOUT:-300}

tests=("$@")
echo "TAP version 14"
echo "1..${#tests[@]}"
n=0 pass=0 fail=0 skip=0
failed=()
for t in "${tests[@]}"; do
  n=$((n + 1))
  dir=$(mktemp -d "${TMPDIR:-/tmp}/nbdp-test.XXXXXX")
  log=$dir/.log
  start=$(date +%s%N)
  if [ -n "${NBDP_VALGRIND:-}" ] && [[ "$t" != *.sh ]]; then
    runner=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
  else
    runner=()
  fi
  NBDP_TEST_DIR=$dir CMOCKA_MESSAGE_OUTPUT=stdout \
    setsid timeout -k 5 "$timeout_s" "${runner[@]}" "$top/$t" >"$log" 2>&1 </dev/null
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  secs=$(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)))
  case $rc in
    0) echo "ok $n - $t # time=${secs}s"; pass=$((pass + 1)) ;;
    77) reason=$(grep -E '^SKIP' "$log" | tail -n 1)
        [ -n "$reason" ] || reason="SKIP (the test gave no reason: treat as a bug)"
        echo "ok $n - $t # SKIP ${reason#SKIP: }"; skip=$((skip + 1)) ;;
    *) why="exit status $rc"
       [ $rc -eq 124 ] && why="timed out after ${timeout_s}s"
       echo "not ok $n - $t # $why"
       sed 's/^/# /' "$log" | tail -n 60
       fail=$((fail + 1)); failed+=("$t") ;;
  esac
  # Anything the test left running in its process group is a bug of the
  # test; kill it so one test cannot disturb the next.
  rm -rf "$dir"
done
echo "# summary: $n tests, $pass passed, $fail failed, $skip skipped"
if [ $fail -gt 0 ]; then
  printf '# failed: %s\n' "${failed[@]}"
  exit 1
fi
exit 0
