#!/usr/bin/env bash
# nbd-client -l (the reference nbd project's client) lists nbd-refserver's
# exports over TCP: the server listens on a port it picks (-p 0) and runs
# the client through --run with $port set, so no port is fixed.  The names
# printed must be exactly the exports configured.
# proto.md: "NBD_OPT_LIST", "NBD_REP_SERVER".
source "$(dirname "$0")/functions.sh"
requires nbd-client -V
requires /usr/bin/timeout --version
if [ ! -x "$NBD_REFSERVER" ]; then
  fail "$NBD_REFSERVER is not built"
fi

out=$NBDP_TEST_DIR/list.out
# --run: serve until the command exits, then exit with its status.
timeout 60 "$NBD_REFSERVER" -p 0 \
  --export name=alpha,memory=1M --export name=beta,memory=2M,desc=second \
  -e gamma \
  --run 'echo "port=$port uri=$uri" >&2; nbd-client -l 127.0.0.1 "$port"' \
  memory 1M >"$out" 2>"$NBDP_TEST_DIR/server.log"
rc=$?
cat "$out"
cat "$NBDP_TEST_DIR/server.log"
expect_eq "nbd-client -l exit status (through --run)" "NBD_OPT_LIST" "$rc" 0
grep -q '^port=[1-9][0-9]* ' "$NBDP_TEST_DIR/server.log" ||
  fail "--run did not set \$port to the listening port: $(cat "$NBDP_TEST_DIR/server.log")"
# nbd-client prints a header line, then one export a line ("name: desc"
# or "name").
names=$(grep -v -e '^Negotiation' -e '^$' "$out" | sed 's/:.*//' | sort | tr '\n' ' ')
expect_eq "exports listed by nbd-client -l" "NBD_OPT_LIST" "$names" "alpha beta gamma "
