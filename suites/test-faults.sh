#!/usr/bin/env bash
# Deliberate breakage: for every --fault of nbd-refserver and every
# negative profile (--list-faults, --list-profiles "negative"), the draft
# RESIZE suite must FAIL, and at least one FAIL must name a requirement
# the fault breaks (the "breaks RZ-..." of its description, which follows
# specs/resize.md section 15.3).  Runs with --strict, because some faults
# only break SHOULD-level rules (RZ-FLOOD-3).  Faults run on the
# "everything" profile, which offers every feature they need.
source "$(dirname "$0")/../tests/functions.sh"

conform=$NBDP_TOP/suites/nbd-conform
ctl=$(dirname "$NBD_REFSERVER")/nbd-refserver-ctl
requires test -x "$conform"
requires test -x "$NBD_REFSERVER"
requires test -x "$ctl"
requires jq --version
export TMPDIR=$NBDP_TEST_DIR/tmp
mkdir -p "$TMPDIR"

# "NAME args|IDS" lines: the server arguments and the IDs it breaks.
cases=()
while read -r name rest; do
  ids=$(grep -oE 'RZ-[[:upper:][:digit:]]+-[0-9]+' <<< "$rest" | tr '\n' ' ')
  cases+=("fault-$name|--profile everything --fault $name|$ids")
done < <("$NBD_REFSERVER" --list-faults)
while read -r name conf rest; do
  [ "$conf" = negative ] || continue
  ids=$(grep -oE 'RZ-[[:upper:][:digit:]]+-[0-9]+' <<< "$rest" | tr '\n' ' ')
  cases+=("profile-$name|--profile $name|$ids")
done < <("$NBD_REFSERVER" --list-profiles)
[ ${#cases[@]} -gt 0 ] || fail "no faults or negative profiles listed"

run_case ()
{
  local tag=$1 args=$2 out=$NBDP_TEST_DIR/$1
  "$conform" -j 2 --strict --timeout 30 --only 'resize/*' \
    --ro-export ro --json "$out.json" \
    --control-cmd "$ctl {dir}/ctl resize - {size}" \
    --server "$NBD_REFSERVER -f --exit-with-parent -U {socket} \
              --control {dir}/ctl $args \
              --export name=ro,memory=1M,ro memory 1M" \
    > "$out.tap" 2>&1
  echo $? > "$out.rc"
}

pids=()
for c in "${cases[@]}"; do
  IFS='|' read -r tag args ids <<< "$c"
  run_case "$tag" "$args" &
  pids+=($!)
  if [ ${#pids[@]} -ge 4 ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait

bad=0
printf '# %-34s %-28s %s\n' "case" "breaks" "failed with (tests)"
for c in "${cases[@]}"; do
  IFS='|' read -r tag args ids <<< "$c"
  out=$NBDP_TEST_DIR/$tag
  rc=$(cat "$out.rc")
  # IDs of the violations in FAIL results, with how many tests saw each.
  seen=$(jq -r '.tests[] | select(.result == "FAIL") |
                [.findings[]? | select(.kind == "violation") | .id] | unique[]' \
         "$out.json" 2>/dev/null | sort | uniq -c |
         awk '{ printf "%s(%s) ", $2, $1 }')
  hit=
  for id in $ids; do
    grep -q "\b$id(" <<< "$seen" && hit="$hit $id"
  done
  printf '# %-34s %-28s %s\n' "$tag" "$ids" "${seen:-nothing}"
  if [ -z "$ids" ]; then
    echo "# $tag: its description names no requirement it breaks"
    bad=1
  elif [ "$rc" != 1 ]; then
    echo "# $tag: nbd-conform exited $rc; expected 1 (some FAIL)"
    sed 's/^/#   /' "$out.tap" | head -50
    bad=1
  elif [ -z "$hit" ]; then
    echo "# $tag: no FAIL names any of: $ids"
    bad=1
  fi
done
[ $bad = 0 ] || fail "some faults were not caught with the right requirement ID"
expect_eq "leftovers in TMPDIR" "all faults" "$(ls -A "$TMPDIR")" ""
