#!/usr/bin/env bash
# Runs the whole conformance suite against the other NBD servers installed
# here -- nbdkit (memory plugin), qemu-nbd (raw file) and nbd-server -- each
# with its list of known deviations, results/expectations/IMPL.tsv:
#
#   - nbd-conform exits 0 (no FAIL, XPASS, TIMEOUT or ERROR);
#   - every entry of the list matches at least one test that is XFAIL (an
#     entry that matches nothing, or only tests that did not run, is stale);
#   - no test is NONSTRICT: a SHOULD-level deviation must be listed too;
#   - nothing is left behind in TMPDIR.
#
# It prints the result classes per implementation, and measures (prints,
# does not assert) the time of the whole suite against nbd-refserver with
# -j 2.  A peer that is not installed is left out; the test then ends in
# SKIP naming it (after checking the others).
source "$(dirname "$0")/../tests/functions.sh"

conform=$NBDP_TOP/suites/nbd-conform
expdir=$NBDP_TOP/results/expectations
requires test -x "$conform"
requires test -x "$NBD_REFSERVER"
export TMPDIR=$NBDP_TEST_DIR/tmp
mkdir -p "$TMPDIR"

summaries=()
missing=()

# check_run NAME JSON TAP EXPECT-FILE RC: the assertions above on one run.
check_run ()
{
  local name=$1 json=$2 tap=$3 expect=$4 rc=$5 problems
  if [ "$rc" -ne 0 ]; then
    grep -E '^not ok' "$tap" | grep -v '# TODO' | head -n 40
    fail "$name: nbd-conform exited with $rc (the lines above are the tests that failed)"
  fi
  problems=$(/usr/bin/python3 - "$json" "$expect" <<'EOF'
import fnmatch, json, sys
run = json.load(open(sys.argv[1]))
tests = run['tests']
out = []
if sys.argv[2]:
    for n, line in enumerate(open(sys.argv[2]), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        pat = line.split(None, 1)[0]
        hits = [t for t in tests
                if fnmatch.fnmatchcase(t['name'], pat)
                or fnmatch.fnmatchcase(t['test'], pat)
                or any(fnmatch.fnmatchcase(i, pat) for i in t['requirements'])]
        if not any(t['result'] == 'XFAIL' for t in hits):
            out.append('%s:%d: entry %s matches no XFAIL test (%s)'
                       % (sys.argv[2], n, pat,
                          ', '.join('%s %s' % (t['name'], t['result'])
                                    for t in hits) or 'no test at all'))
for t in tests:
    if t['result'] == 'NONSTRICT':
        out.append('%s is NONSTRICT but not listed: %s'
                   % (t['name'], '; '.join(f.get('id', '') + ' ' + f['message']
                                           for f in t['findings'])[:300]))
print('\n'.join(out))
EOF
  ) || fail "$name: cannot read $json"
  if [ -n "$problems" ]; then
    echo "$problems"
    fail "$name: the expectation list does not match the run (above)"
  fi
  summaries+=("$(printf '%-14s %s' "$name" "$(grep -E '^# summary:' "$tap" | sed 's/^# summary: //')")")
  echo "ok: $name: $(grep -E '^# summary:' "$tap")"
}

# run_peer NAME EXPECT-FILE NBD-CONFORM-ARGS...
run_peer ()
{
  local name=$1 expect=$2 rc
  shift 2
  echo "=== $name: nbd-conform --expect ${expect#$NBDP_TOP/} $*"
  "$conform" --expect "$expect" --json "$NBDP_TEST_DIR/$name.json" "$@" \
    > "$NBDP_TEST_DIR/$name.tap" 2>&1
  rc=$?
  check_run "$name" "$NBDP_TEST_DIR/$name.json" "$NBDP_TEST_DIR/$name.tap" \
    "$expect" "$rc"
}

# ---- nbd-refserver: the time of the whole suite with -j 2 ----------------
start=$(date +%s%N)
"$conform" -j 2 --ro-export ro --json "$NBDP_TEST_DIR/refserver.json" \
  --server "$NBD_REFSERVER -f --exit-with-parent -U {socket} \
            --export name=ro,memory=1M,ro memory 64M" \
  > "$NBDP_TEST_DIR/refserver.tap" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_run nbd-refserver "$NBDP_TEST_DIR/refserver.json" \
  "$NBDP_TEST_DIR/refserver.tap" "" "$rc"
ntests=$(json_get "$NBDP_TEST_DIR/refserver.json" 'len(j["tests"])')
runtime=$(printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)))
echo "runtime: the whole suite ($ntests tests) against nbd-refserver with -j 2" \
     "took ${runtime} s on this machine (goal: under 10 s; reported, not asserted)"

# ---- nbdkit, memory plugin --------------------------------------------
if command -v nbdkit >/dev/null 2>&1 && nbdkit memory --version >/dev/null 2>&1; then
  echo "nbdkit: $(nbdkit --version | head -n 1)"
  run_peer nbdkit "$expdir/nbdkit.tsv" -j 2 \
    --server 'exec nbdkit -f --exit-with-parent -U {socket} memory 64M'
  # The same in FORCEDTLS mode (--tls=require, a PSK): the tests of what a
  # server requiring TLS does before the TLS handshake.  The suite speaks
  # no TLS, so only those run (suites/handshake/tls-required.c).
  if nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes'; then
    printf 'nbdconform:%s\n' \
      "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$NBDP_TEST_DIR/psk"
    chmod 600 "$NBDP_TEST_DIR/psk"
    echo "=== nbdkit-tls: nbd-conform --only 'handshake/tls-*' (FORCEDTLS)"
    "$conform" --only 'handshake/tls-*' --json "$NBDP_TEST_DIR/nbdkit-tls.json" \
      --server "exec nbdkit -f --exit-with-parent -U {socket} --tls=require \
                --tls-psk=$NBDP_TEST_DIR/psk memory 64M" \
      > "$NBDP_TEST_DIR/nbdkit-tls.tap" 2>&1
    rc=$?
    check_run nbdkit-tls "$NBDP_TEST_DIR/nbdkit-tls.json" \
      "$NBDP_TEST_DIR/nbdkit-tls.tap" "" "$rc"
    passed=$(json_get "$NBDP_TEST_DIR/nbdkit-tls.json" \
               'sum(t["result"] == "PASS" for t in j["tests"])')
    [ "$passed" -ge 5 ] ||
      fail "nbdkit --tls=require: $passed of the handshake/tls-* tests passed, expected at least 5: $(cat "$NBDP_TEST_DIR/nbdkit-tls.tap")"
  else
    missing+=("nbdkit with TLS")
  fi
else
  missing+=("nbdkit (with the memory plugin)")
fi

# ---- qemu-nbd, raw file in the test's directory ---------------------------
# -e 16: by default qemu-nbd serves one client at a time, and a test that
# opens a second connection would wait for the first to time out.
if command -v qemu-nbd >/dev/null 2>&1; then
  echo "qemu-nbd: $(qemu-nbd --version | head -n 1)"
  run_peer qemu-nbd "$expdir/qemu-nbd.tsv" -j 2 \
    --server 'truncate -s 64M {dir}/disk &&
              exec qemu-nbd -t -e 16 --discard=unmap -k {socket} -f raw {dir}/disk'
else
  missing+=("qemu-nbd")
fi

# ---- nbd-server -------------------------------------------------------------
# nbd-server spends about 0.4 s starting up, so a daemon per test (--server)
# makes the run last minutes.  One daemon serves the whole run instead
# (nbd-conform given its URI); the tests then share one export, so they run
# one at a time (-j 1).  It daemonizes into its own session: stopped by its
# pid file when the test exits.
listening ()
{
  # A listening Unix socket has flag __SO_ACCEPTCON (0x10000).
  local _num _ref _proto flags _rest path
  while read -r _num _ref _proto flags _rest; do
    path=${_rest##* }
    [ "$path" = "$1" ] && [[ $flags =~ ^[0-9A-Fa-f]+$ ]] &&
      (( 16#$flags & 0x10000 )) && return 0
  done < /proc/net/unix
  return 1
}
stop_nbd_server ()
{
  local p i
  [ -s "$1" ] || return 0
  p=$(cat "$1")
  kill -TERM "$p" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$p" 2>/dev/null || :
}
if command -v nbd-server >/dev/null 2>&1; then
  echo "nbd-server: $(nbd-server -V 2>&1 | head -n 1)"
  nd=$NBDP_TEST_DIR/nbd-server
  mkdir -p "$nd"
  truncate -s 64M "$nd/disk"
  truncate -s 1M "$nd/ro"
  cat > "$nd/conf" <<CONF
[generic]
unixsock = $nd/sock
allowlist = true
[matrix]
exportname = $nd/disk
trim = true
flush = true
fua = true
[ro]
exportname = $nd/ro
readonly = true
CONF
  cleanup_fn stop_nbd_server "$nd/pid"
  nbd-server -C "$nd/conf" -p "$nd/pid" > "$nd/log" 2>&1 ||
    fail "nbd-server -C $nd/conf exited with $?: $(cat "$nd/log")"
  for ((i = 0; i < 1000; i++)); do
    [ -s "$nd/pid" ] && listening "$nd/sock" && break
    sleep 0.01
  done
  listening "$nd/sock" || fail "nbd-server is not listening on $nd/sock after 10 s"
  run_peer nbd-server "$expdir/nbd-server.tsv" -j 1 --ro-export ro \
    "nbd+unix:///matrix?socket=$nd/sock"
  stop_nbd_server "$nd/pid"
else
  missing+=("nbd-server")
fi

echo
echo "per implementation (whole suite; PASS/XFAIL/UNSUPPORTED/SKIP/INFO ...):"
printf '  %s\n' "${summaries[@]}"
echo "  nbd-refserver -j 2: ${runtime} s"

expect_eq "leftovers in TMPDIR" "all runs" "$(ls -A "$TMPDIR")" ""
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP: not installed: $(IFS=,; echo "${missing[*]}" | sed 's/,/, /g') (the others passed)"
  exit 77
fi
