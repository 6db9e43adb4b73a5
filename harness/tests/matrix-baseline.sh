#!/usr/bin/env bash
# results/baseline.json, the committed full run that `make matrix`
# compares with (results/schema-matrix.md "Baseline"): nbd-matrix reads
# it; the grid is complete (every server x client x scenario has exactly
# one cell with a verdict); every cell that is not a plain PASS says why
# (SKIP and UNSUPPORTED included), every XFAIL cites its expectation;
# it is a clean run (no FAIL, XPASS, TIMEOUT, ERROR); it holds nothing
# machine-specific (no time, host, log or absolute path); every entry of
# results/expectations/matrix.txt is used by some cell.  Cells of today's
# inventory (`nbd-matrix --list`) that the baseline lacks are listed as a
# note: `make matrix` shows them as added.
source "$(dirname "$0")/lib.sh"
requires jq --version
b=$top/results/baseline.json
[ -s "$b" ] || fail "results/baseline.json is missing: run make matrix && make matrix-baseline"

"$top/harness/nbd-matrix" diff "$b" "$b" > "$scratch/diff.out" ||
  fail "nbd-matrix cannot read the baseline: $(cat "$scratch/diff.out")"
jq -e '.schema == "nbd-matrix-results/1" and .baseline == true' "$b" >/dev/null ||
  fail "schema or baseline marker"

# The grid is complete: servers x clients x scenarios, each once.
jq -e '
  ([.implementations[] | select(.kind == "server") | .name]) as $s |
  ([.implementations[] | select(.kind == "client") | .name]) as $c |
  ([.scenarios[].name]) as $x |
  ([$x[] as $x1 | $s[] as $s1 | $c[] as $c1 | "\($c1)/\($s1)/\($x1)"] | sort) as $want |
  ([.cells[].id] | sort) as $got |
  ($got == $want) and ($got | length) == ($got | unique | length)' "$b" >/dev/null ||
  fail "the baseline grid is not complete (servers x clients x scenarios)"
jq -e '[.cells[] | .id == "\(.client)/\(.server)/\(.scenario)"] | all' "$b" >/dev/null ||
  fail "a cell id does not match its axes"
jq -e '.cells as $cells | (.counts | add) == ($cells | length) and
       ([.counts | to_entries[] | .key as $k | .value ==
         ([$cells[] | select(.verdict == $k)] | length)] | all)' "$b" >/dev/null ||
  fail "counts disagree with the cells"

# Every verdict is known and every non-PASS cell says why.
bad=$(jq -r '.cells[] | select(.verdict | IN("PASS","FAIL","XFAIL","XPASS",
        "UNSUPPORTED","SKIP","TIMEOUT","ERROR") | not) | .id' "$b")
[ -z "$bad" ] || fail "unknown verdicts: $bad"
bad=$(jq -r '.cells[] | select(.verdict != "PASS" and (.reason // "" | length) == 0) | "\(.verdict) \(.id)"' "$b")
[ -z "$bad" ] || fail "cells without a reason: $(head -n 5 <<< "$bad")"
bad=$(jq -r '.cells[] | select((.verdict == "XFAIL" or .verdict == "XPASS") and
        ((.expectation // "") | test("matrix.txt:[0-9]+\\)$") | not)) | .id' "$b")
[ -z "$bad" ] || fail "XFAIL cells that do not cite their expectation: $(head -n 3 <<< "$bad")"
bad=$(jq -r '.implementations[] | select(.available | not) | select((.skip_reason // "") == "") | .name' "$b")
[ -z "$bad" ] || fail "unavailable implementations without a reason: $bad"
echo "reasons: every one of $(jq '[.cells[] | select(.verdict != "PASS")] | length' "$b") non-PASS cells has one"

# A clean run.
bad=$(jq -r '.cells[] | select(.verdict | IN("FAIL","XPASS","TIMEOUT","ERROR")) | "\(.verdict) \(.id): \(.reason)"' "$b")
[ -z "$bad" ] || fail "the baseline is not a clean run: $(head -n 5 <<< "$bad")"

# Nothing machine-specific.
jq -e 'has("started") or has("finished") or has("host") or has("command") or
       ([.cells[] | has("seconds") or has("logs") or has("reproducer") or
         has("evidence_dir") or has("phases")] | any) or
       ([.implementations[] | has("probe_log")] | any) or
       ([.scenarios[] | has("text")] | any)' "$b" >/dev/null &&
  fail "the baseline has run-specific keys (times, host, logs)"
if grep -n -E '"/|/tmp/|/home/|/root/|'"$top" "$b" | head -n 3 | grep .; then
  fail "the baseline has absolute paths (above)"
fi

# Every expectation is used.
n=0
while IFS= read -r lineno; do
  n=$((n + 1))
  jq -e --arg at "matrix.txt:$lineno)" \
    '[.cells[] | .expectation // "" | endswith($at)] | any' "$b" >/dev/null ||
    fail "results/expectations/matrix.txt:$lineno matches no cell of the baseline: $(sed -n "${lineno}p" "$top/results/expectations/matrix.txt")"
done < <(grep -n -v -E '^[[:space:]]*(#|$)' "$top/results/expectations/matrix.txt" | cut -d: -f1)
echo "expectations: all $n entries are used"

# Today's plan against the baseline (a note, not a failure).
if "$top/harness/nbd-matrix" --list > "$scratch/list" 2>/dev/null; then
  awk '$1 == "cell" {print $2 "/" $4 "/" $5}' "$scratch/list" | sort > "$scratch/plan"
  jq -r '.cells[].id' "$b" | sort > "$scratch/base"
  new=$(comm -23 "$scratch/plan" "$scratch/base" | wc -l)
  gone=$(comm -13 "$scratch/plan" "$scratch/base" | wc -l)
  echo "note: today's plan has $(wc -l < "$scratch/plan") cells; $new not in the baseline, $gone of the baseline not planned"
fi
exit 0
