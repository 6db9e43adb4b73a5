#!/usr/bin/env bash
# Test for `make check-valgrind`: runs the whole nbd-conform suite against
# nbd-refserver running under valgrind (memcheck), one server per test, and
# fails if valgrind reported any error or definite leak in any of them.
# Every server path the suites reach (handshake, transmission, structured
# and extended replies, block status, the RESIZE draft) is covered.
set -u
: "${NBDP_TOP:?run through scripts/run-tests.sh}" "${NBDP_TEST_DIR:?}"
command -v valgrind >/dev/null || { echo "SKIP: valgrind is not installed"; exit 77; }
server=$NBDP_TOP/reference-server/nbd-refserver
conform=$NBDP_TOP/suites/nbd-conform
for f in "$server" "$conform"; do
  [ -x "$f" ] || { echo "FAIL: $f is not built"; exit 1; }
done
logs=$NBDP_TEST_DIR/vg
mkdir -p "$logs"
vg="valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --log-file=$logs/vg.%p.log"
# The tests' own deadlines are for a native server; valgrind is ~20x slower.
"$conform" -j2 --timeout 120 \
  --server "exec $vg $server -f --exit-with-parent -U {socket} --export name=ro,memory=1M,ro memory 64M" \
  --ro-export ro > "$NBDP_TEST_DIR/tap" 2>&1
status=$?
tail -n 3 "$NBDP_TEST_DIR/tap"
bad=0
for l in "$logs"/vg.*.log; do
  [ -s "$l" ] || continue
  echo "valgrind reported errors for the server ($l):"
  cat "$l"
  bad=1
done
# A test that fails only because valgrind made the server slow would show
# as TIMEOUT: report it, but judge memory errors above all.
if [ $status -ne 0 ]; then
  echo "nbd-conform exited $status against the server under valgrind:"
  grep -E '^not ok' "$NBDP_TEST_DIR/tap" | head -20
  bad=1
fi
exit $bad
