#!/usr/bin/env bash
# The interoperability matrix in CI, sharded: the commands that
# .github/workflows/matrix.yml and .gitlab-ci.yml run (and that
# harness/tests/matrix-ci.sh runs in `make check` on a small matrix).
#
#   harness/ci-matrix.sh shard K N OUT [NBD-MATRIX OPTIONS...]
#       run the K-th of N shares of the cells into OUT.  Exit 0 when OUT
#       holds results (whatever the verdicts: the merge judges), 2 when
#       the run broke.
#   harness/ci-matrix.sh merge OUT SHARD-DIR...
#       merge the shards into OUT (every shard K/N must be there), compare
#       the verdicts with $MATRIX_BASELINE (default results/baseline.json)
#       and print what changed and the summary.  Exit 0, 1 when a verdict
#       regressed (see `make matrix`), 2 when a shard is missing or broken.
#
# -j defaults to the runner's CPU count (nbd-matrix's default).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
m=$top/harness/nbd-matrix

case "${1-}" in
shard)
  [ $# -ge 4 ] || { echo "usage: $0 shard K N OUT [OPTIONS...]" >&2; exit 2; }
  k=$2 n=$3 out=$4
  shift 4
  "$m" --shard "$k/$n" --out "$out" "$@"
  rc=$?
  if [ $rc -gt 1 ] || [ ! -s "$out/results.json" ]; then
    echo "ci-matrix: shard $k/$n broke (exit status $rc)" >&2
    exit 2
  fi
  echo "ci-matrix: shard $k/$n done: $out/results.json"
  exit 0 ;;
merge)
  [ $# -ge 3 ] || { echo "usage: $0 merge OUT SHARD-DIR..." >&2; exit 2; }
  out=$2
  shift 2
  baseline=${MATRIX_BASELINE-$top/results/baseline.json}
  opts=()
  [ -z "$baseline" ] || [ ! -f "$baseline" ] || opts=(--baseline "$baseline")
  "$m" merge --out "$out" "${opts[@]}" "$@"
  rc=$?
  # In GitHub Actions, the summary also goes to the job's page.
  if [ -n "${GITHUB_STEP_SUMMARY-}" ] && [ -s "$out/results.json" ]; then
    {
      echo "### nbd-matrix"
      echo
      jq -r '.counts | to_entries | map("\(.key) \(.value)") | join(", ")' \
        "$out/results.json"
    } >> "$GITHUB_STEP_SUMMARY"
  fi
  exit $rc ;;
*)
  echo "usage: $0 shard K N OUT [OPTIONS...] | merge OUT SHARD-DIR..." >&2
  exit 2 ;;
esac
