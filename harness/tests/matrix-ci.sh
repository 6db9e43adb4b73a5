#!/usr/bin/env bash
# The CI templates' commands, tried locally on a small matrix: two shards
# (harness/ci-matrix.sh shard K 2) and their merge (harness/ci-matrix.sh
# merge, with the baseline comparison) give the same verdicts as an
# unsharded run, and the same stable baseline file byte for byte; a
# missing shard makes the merge fail; a regression against the baseline
# fails it with the cell named; the workflow files run these commands.
source "$(dirname "$0")/lib.sh"
requires nbdkit memory --version
requires nbdinfo --version
requires jq --version

ci=$top/harness/ci-matrix.sh
m=$top/harness/nbd-matrix
sel=(--servers nbdkit-memory,nbd-refserver:explicit-structured
     --clients libnbd,nbdinfo,nbd-refclient
     --scenarios handshake-info,list-exports,resize-grow --timeout 20)

out=$scratch/full; matrix "${sel[@]}" -j 2 --out "$out"
[ $rc -le 1 ] || fail "unsharded run broke: exit status $rc"
"$m" baseline --out "$scratch/base-full.json" "$scratch/full" >/dev/null ||
  fail "baseline of the unsharded run"

for k in 1 2; do
  "$ci" shard $k 2 "$scratch/shard-$k" "${sel[@]}" > "$scratch/shard-$k.log" 2>&1 ||
    fail "shard $k/2: $(tail -n 3 "$scratch/shard-$k.log")"
  grep -q "^ci-matrix: shard $k/2 done" "$scratch/shard-$k.log" || fail "shard $k/2 output"
done
n1=$(jq '.cells | length' "$scratch/shard-1/results.json")
n2=$(jq '.cells | length' "$scratch/shard-2/results.json")
nf=$(jq '.cells | length' "$scratch/full/results.json")
[ $((n1 + n2)) = "$nf" ] || fail "shards hold $n1 + $n2 cells, the full run $nf"

# Merge as CI does, against the unsharded run's baseline.
MATRIX_BASELINE=$scratch/base-full.json "$ci" merge "$scratch/merged" \
  "$scratch/shard-1" "$scratch/shard-2" > "$scratch/merge.log" 2>&1
rc=$?
sed 's/^/  merge| /' "$scratch/merge.log"
[ $rc -eq 0 ] || fail "merge exit status $rc"
grep -q '^baseline: 0 regressed, 0 improved, 0 changed, 0 added, 0 not run (no verdict changed)$' \
  "$scratch/merge.log" || fail "merge did not find the same verdicts as the unsharded run"
grep -q "^results: $scratch/merged/index.html$" "$scratch/merge.log" ||
  fail "merge did not print the path of index.html"
"$m" diff "$scratch/full" "$scratch/merged" > "$scratch/diff.out" ||
  fail "diff unsharded vs merged: $(cat "$scratch/diff.out")"
# The stable baseline of the merged shards is the unsharded one, byte for byte.
"$m" baseline --out "$scratch/base-merged.json" "$scratch/merged" >/dev/null ||
  fail "baseline of the merged run"
cmp "$scratch/base-full.json" "$scratch/base-merged.json" ||
  fail "the baselines of the merged and the unsharded run differ: $(diff "$scratch/base-full.json" "$scratch/base-merged.json" | head -5)"
# A shard cannot be made a baseline on its own.
if "$m" baseline --out "$scratch/x.json" "$scratch/shard-1" 2>/dev/null; then
  fail "a single shard was accepted as a baseline"
fi

# A missing shard breaks the merge (exit 2), naming it.
MATRIX_BASELINE=$scratch/base-full.json "$ci" merge "$scratch/m1" "$scratch/shard-1" \
  > "$scratch/m1.log" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "merge of one shard of two: exit status $rc, expected 2"
grep -q 'shard 2/2 is missing' "$scratch/m1.log" || fail "the missing shard is not named"

# A regression against the baseline fails the merge and names the cell.
jq -c '.cells[] | select(.verdict == "UNSUPPORTED") | .id' "$scratch/base-full.json" |
  head -n 1 > "$scratch/victim"
[ -s "$scratch/victim" ] || fail "no UNSUPPORTED cell to play with"
victim=$(jq -r . "$scratch/victim")
jq --arg id "$victim" '(.cells[] | select(.id == $id) | .verdict) = "PASS"' \
  "$scratch/base-full.json" > "$scratch/base-changed.json"
MATRIX_BASELINE=$scratch/base-changed.json "$ci" merge "$scratch/m2" \
  "$scratch/shard-1" "$scratch/shard-2" > "$scratch/m2.log" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "merge against a baseline with a lost PASS: exit status $rc, expected 1"
grep -q "^regressed $victim: PASS -> UNSUPPORTED: " "$scratch/m2.log" ||
  fail "the regression is not named: $(grep -v '^\[' "$scratch/m2.log" | tail -n 5)"

# The workflows run exactly these commands.
for f in .github/workflows/matrix.yml .gitlab-ci.yml; do
  grep -q 'harness/ci-matrix.sh shard ' "$top/$f" || fail "$f does not run the shards"
  grep -q 'harness/ci-matrix.sh merge ' "$top/$f" || fail "$f does not merge"
done
check_clean
exit 0
