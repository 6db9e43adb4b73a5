#!/usr/bin/env bash
# Runs the draft RESIZE suite (suites/resize) against nbd-refserver with
# every conforming profile (nbd-refserver --list-profiles: "yes" and
# "variant"): every test must PASS, or be UNSUPPORTED / INFO / NONSTRICT
# / SKIP with its reason; none may FAIL.  --profile tells the suite the
# encoding (it only matters for variant B3), --control-cmd lets it resize
# from outside through the server's control socket, and a read-only
# export is given for the RZ-RO tests.
source "$(dirname "$0")/../tests/functions.sh"

conform=$NBDP_TOP/suites/nbd-conform
ctl=$(dirname "$NBD_REFSERVER")/nbd-refserver-ctl
requires test -x "$conform"
requires test -x "$NBD_REFSERVER"
requires test -x "$ctl"
export TMPDIR=$NBDP_TEST_DIR/tmp
mkdir -p "$TMPDIR"

profiles=$("$NBD_REFSERVER" --list-profiles | awk '$2 == "yes" || $2 == "variant" { print $1 }')
[ -n "$profiles" ] || fail "nbd-refserver --list-profiles lists no conforming profile"

run_profile ()
{
  local p=$1 out=$NBDP_TEST_DIR/$1
  "$conform" -j 2 --timeout 30 --only 'resize/*' --profile "$p" \
    --ro-export ro --json "$out.json" \
    --control-cmd "$ctl {dir}/ctl resize - {size}" \
    --server "$NBD_REFSERVER -f --exit-with-parent -U {socket} \
              --control {dir}/ctl --profile $p \
              --export name=ro,memory=1M,ro memory 1M" \
    > "$out.tap" 2>&1
  echo $? > "$out.rc"
}

# Four profiles at a time (each runs two tests at a time).
pids=()
for p in $profiles; do
  run_profile "$p" &
  pids+=($!)
  if [ ${#pids[@]} -ge 4 ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait

bad=0
for p in $profiles; do
  out=$NBDP_TEST_DIR/$p
  rc=$(cat "$out.rc")
  echo "# profile $p: exit $rc, $(grep '^# summary' "$out.tap")"
  if [ "$rc" != 0 ] || grep -q '^not ok' "$out.tap"; then
    echo "# profile $p FAILED:"
    sed 's/^/#   /' "$out.tap"
    bad=1
  fi
done
[ $bad = 0 ] || fail "the resize suite failed on some conforming profile"
expect_eq "leftovers in TMPDIR" "all profiles" "$(ls -A "$TMPDIR")" ""
