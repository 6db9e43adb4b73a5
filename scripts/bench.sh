#!/usr/bin/env bash
# Throughput of nbd-refserver's memory backend against nbdkit's memory
# plugin, measured with nbdcopy over a Unix socket in the same run:
#   write: nbdcopy FILE -> export     read: nbdcopy export -> null:
# Both servers run at once with the same export size; the repetitions
# alternate between them; the median of each is reported in GiB/s with the
# ratio refserver/nbdkit.  Not part of `make check` (timing depends on the
# machine): run `make bench`.
#
# Environment: BENCH_SIZE (default 1G, nbdkit/refserver size syntax),
# BENCH_REPS (default 5), BENCH_CONNS (nbdcopy -C, default 4).
source "$(dirname "$0")/../tests/functions.sh"
requires nbdcopy --version
requires nbdkit --version

size=${BENCH_SIZE:-1G}
reps=${BENCH_REPS:-5}
conns=${BENCH_CONNS:-4}
bytes=$(numfmt --from=iec "$size") || fail "bad BENCH_SIZE $size"

# Source data in memory if /dev/shm has room, so the file is not the limit.
srcdir=$NBDP_TEST_DIR
if [ -d /dev/shm ] &&
   [ "$(df --output=avail -B1 /dev/shm | tail -n 1)" -gt $((bytes * 2)) ]; then
  srcdir=$(mktemp -d /dev/shm/nbdp-bench.XXXXXX)
  cleanup_fn rm -rf "$srcdir"
fi
src=$srcdir/src.img
head -c "$bytes" /dev/urandom >"$src"

start_refserver memory "$size"
ref_uri=$uri
start_nbdkit memory "$size"
kit_uri=$uri

# elapsed CMD...: run CMD, print its wall time in seconds.
elapsed ()
{
  local t0 t1
  t0=$(date +%s%N)
  "$@" || fail "$* failed"
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 ))" # microseconds
}

declare -a ref_w ref_r kit_w kit_r
for ((i = 0; i < reps; i++)); do
  ref_w+=("$(elapsed nbdcopy -C "$conns" "$src" "$ref_uri")")
  kit_w+=("$(elapsed nbdcopy -C "$conns" "$src" "$kit_uri")")
  ref_r+=("$(elapsed nbdcopy -C "$conns" "$ref_uri" null:)")
  kit_r+=("$(elapsed nbdcopy -C "$conns" "$kit_uri" null:)")
done

# median of microsecond times -> GiB/s
gibs ()
{
  printf '%s\n' "$@" | sort -n | awk -v b="$bytes" '
    { t[NR] = $1 }
    END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
          printf "%.2f", b / (m / 1e6) / (1024 * 1024 * 1024) }'
}
rw=$(gibs "${ref_w[@]}") rr=$(gibs "${ref_r[@]}")
kw=$(gibs "${kit_w[@]}") kr=$(gibs "${kit_r[@]}")
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "nbdcopy -C $conns over a Unix socket, export size $size, median of $reps"
printf '%-24s %12s %12s\n' "" "write GiB/s" "read GiB/s"
printf '%-24s %12s %12s\n' "nbd-refserver memory" "$rw" "$rr"
printf '%-24s %12s %12s\n' "nbdkit memory" "$kw" "$kr"
printf '%-24s %12s %12s\n' "ratio refserver/nbdkit" "$(ratio "$rw" "$kw")" "$(ratio "$rr" "$kr")"
