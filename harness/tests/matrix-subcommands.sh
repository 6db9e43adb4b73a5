#!/usr/bin/env bash
# --shard, merge, diff, report, --baseline and --expect: two shards merge
# into the same cells as a full run; diff fails on any changed verdict,
# --baseline only on regressions;
# report rewrites every output from results.json; an expectation turns a
# PASS into XPASS (a failing run) and a FAIL into XFAIL.
source "$(dirname "$0")/lib.sh"
requires nbdkit memory --version
requires nbdinfo --version
requires jq --version

m=$top/harness/nbd-matrix
sel=(--servers nbdkit-memory --clients libnbd,nbdinfo
     --scenarios handshake-info,list-exports,resize-grow --timeout 20)

out=$scratch/full; matrix "${sel[@]}" -j 2 --out "$out"
[ $rc -eq 0 ] || fail "full run exit status $rc"
out=$scratch/s1; matrix "${sel[@]}" --shard 1/2 --out "$out"
[ $rc -eq 0 ] || fail "shard 1/2 exit status $rc"
out=$scratch/s2; matrix "${sel[@]}" --shard 2/2 --out "$out"
[ $rc -eq 0 ] || fail "shard 2/2 exit status $rc"
n1=$(jq '.cells | length' "$scratch/s1/results.json")
n2=$(jq '.cells | length' "$scratch/s2/results.json")
[ "$n1" = 3 ] && [ "$n2" = 3 ] || fail "shards have $n1 and $n2 cells, expected 3 and 3"
[ "$(jq -r .shard "$scratch/s1/results.json")" = 1/2 ] || fail "shard not recorded"

"$m" merge --out "$scratch/merged" "$scratch/s1" "$scratch/s2/results.json" ||
  fail "merge failed"
[ "$(jq '.cells | length' "$scratch/merged/results.json")" = 6 ] ||
  fail "merged run does not have 6 cells"
for f in results.json results.tap junit.xml matrix.md index.html; do
  [ -s "$scratch/merged/$f" ] || fail "merge did not write $f"
done
"$m" diff "$scratch/full" "$scratch/merged" > "$scratch/diff.out" ||
  fail "diff of the full run and the merged shards: $(cat "$scratch/diff.out")"
grep -q '^diff: 0 changed, 0 added, 0 removed$' "$scratch/diff.out" || fail "diff summary"

# A changed verdict makes diff fail and names the cell.
jq '(.cells[] | select(.id == "libnbd/nbdkit-memory/handshake-info") | .verdict) = "FAIL"' \
  "$scratch/full/results.json" > "$scratch/changed.json"
if "$m" diff "$scratch/full/results.json" "$scratch/changed.json" > "$scratch/diff.out"; then
  fail "diff passed despite a changed verdict"
fi
grep -q '^changed libnbd/nbdkit-memory/handshake-info: PASS -> FAIL' "$scratch/diff.out" ||
  fail "diff did not name the changed cell: $(cat "$scratch/diff.out")"

# report rewrites the outputs from results.json alone.
rm "$scratch/full/index.html" "$scratch/full/results.tap"
"$m" report "$scratch/full" || fail "report failed"
[ -s "$scratch/full/index.html" ] && [ -s "$scratch/full/results.tap" ] ||
  fail "report did not rewrite the outputs"

# --baseline: same verdicts pass; an improvement (FAIL in the baseline,
# PASS now) is reported but passes; a regression (PASS in the baseline,
# UNSUPPORTED now) fails the run and is named.
out=$scratch/b1; matrix "${sel[@]}" --out "$out" --baseline "$scratch/full/results.json"
[ $rc -eq 0 ] || fail "run against its own baseline: exit status $rc"
grep -q '^baseline: 0 regressed, 0 improved, 0 changed, 0 added, 0 not run (no verdict changed)$' \
  "$out.log" || fail "baseline summary of an unchanged run"
out=$scratch/b2; matrix "${sel[@]}" --out "$out" --baseline "$scratch/changed.json"
[ $rc -eq 0 ] || fail "run against a baseline it improves on: exit status $rc, expected 0"
grep -q '^improved  libnbd/nbdkit-memory/handshake-info: FAIL -> PASS$' "$out.log" ||
  fail "baseline did not name the improved cell"
jq '(.cells[] | select(.id == "libnbd/nbdkit-memory/resize-grow") | .verdict) = "PASS"' \
  "$scratch/full/results.json" > "$scratch/lost.json"
out=$scratch/b3; matrix "${sel[@]}" --out "$out" --baseline "$scratch/lost.json"
[ $rc -eq 1 ] || fail "run against a baseline with a lost PASS: exit status $rc, expected 1"
grep -q '^regressed libnbd/nbdkit-memory/resize-grow: PASS -> UNSUPPORTED: server: no NBD_FLAG_SEND_RESIZE$' \
  "$out.log" || fail "baseline did not name the regressed cell"
# The summary and the report path come last.
tail -n 2 "$out.log" | head -n 1 | grep -q '^summary: ' || fail "summary is not the last but one line"
tail -n 1 "$out.log" | grep -q "^results: .*/b3/index.html$" || fail "index.html path is not the last line"

# --expect: PASS -> XPASS fails the run.
printf '# test\nlibnbd nbdkit-* handshake-info  pretend this is broken\n' > "$scratch/exp"
out=$scratch/e1; matrix "${sel[@]}" --out "$out" --expect "$scratch/exp"
[ $rc -eq 1 ] || fail "XPASS run exit status $rc, expected 1"
jq -e '[.cells[] | select(.verdict == "XPASS")] | length == 1 and
       (.[0].id == "libnbd/nbdkit-memory/handshake-info") and
       (.[0].expectation | test("pretend this is broken"))' "$out/results.json" >/dev/null ||
  fail "no XPASS cell"
check_clean
exit 0
