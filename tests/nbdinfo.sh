#!/usr/bin/env bash
# nbdinfo (libnbd) against nbd-refserver: the transmission flags of a
# writable memory export, NBD_INFO_BLOCK_SIZE from --export min-block/
# pref-block/max-block, the base:allocation context, read-only and
# multi-conn switches, descriptions and the export list.
# proto.md: "Transmission flags", "NBD_OPT_INFO and NBD_OPT_GO",
# "NBD_INFO_BLOCK_SIZE", "Size constraints", "base:allocation metadata
# context", "NBD_OPT_LIST".
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version
requires /usr/bin/python3 -c 'import json'

start_refserver \
  --export name=blk,memory=64M,min-block=512,pref-block=8192,max-block=1048576 \
  --export name=ro,memory=1M,ro \
  --export name=mc-on,memory=1M,multi-conn=on \
  --export name=mc-off,memory=1M,multi-conn=off \
  --export name=described,memory=2M,desc=reference-export \
  memory 16M

j=$NBDP_TEST_DIR/info.json
nbdinfo --json "$uri" >"$j" || fail "nbdinfo --json $uri failed"
cat "$j"

get () { json_get "$j" "$1"; }
e='j["exports"][0]'
expect_eq "protocol" "NBD_OPT_GO" "$(get 'j["protocol"]')" newstyle-fixed
expect_eq "structured replies" "NBD_OPT_STRUCTURED_REPLY" \
  "$(get 'j["structured"]')" true
expect_eq "export size" "memory 16M" "$(get "$e[\"export-size\"]")" \
  $((16 * 1024 * 1024))
expect_eq "base:allocation context" \
  "NBD_OPT_SET_META_CONTEXT base:allocation" \
  "$(get "\"base:allocation\" in $e[\"contexts\"]")" true
expect_eq "READ_ONLY" "writable memory export" "$(get "$e[\"is_read_only\"]")" false
expect_eq "ROTATIONAL" "memory export" "$(get "$e[\"is_rotational\"]")" false
# DESIGN.md: the server implements all of these for a writable export.
for f in can_flush can_fua can_trim can_zero can_cache can_fast_zero can_df; do
  expect_eq "$f" "writable memory export, structured replies" \
    "$(get "$e[\"$f\"]")" true
done
echo "info: default multi-conn of the positional export: $(get "$e[\"can_multi_conn\"]")"

# Block size constraints: NBD_INFO_BLOCK_SIZE, asked for by nbdinfo.
nbdinfo --json "nbd+unix:///blk?socket=$sock" >"$j" ||
  fail "nbdinfo --json (export blk) failed"
cat "$j"
sent="--export min-block=512,pref-block=8192,max-block=1048576"
expect_eq "minimum block size" "$sent" "$(get "$e.get(\"block_size_minimum\")")" 512
expect_eq "preferred block size" "$sent" "$(get "$e.get(\"block_size_preferred\")")" 8192
expect_eq "maximum payload" "$sent" "$(get "$e.get(\"block_size_maximum\")")" 1048576
expect_eq "export size of blk" "memory=64M" "$(get "$e[\"export-size\"]")" \
  $((64 * 1024 * 1024))

# Read-only export: NBD_FLAG_READ_ONLY.
nbdinfo --json "nbd+unix:///ro?socket=$sock" >"$j" ||
  fail "nbdinfo --json (export ro) failed"
expect_eq "READ_ONLY of export ro" "--export ...,ro" \
  "$(get "$e[\"is_read_only\"]")" true

# multi-conn switch: NBD_FLAG_CAN_MULTI_CONN.
nbdinfo --json "nbd+unix:///mc-on?socket=$sock" >"$j" || fail "nbdinfo mc-on"
expect_eq "CAN_MULTI_CONN" "multi-conn=on" "$(get "$e[\"can_multi_conn\"]")" true
nbdinfo --json "nbd+unix:///mc-off?socket=$sock" >"$j" || fail "nbdinfo mc-off"
expect_eq "CAN_MULTI_CONN" "multi-conn=off" "$(get "$e[\"can_multi_conn\"]")" false

# NBD_INFO_DESCRIPTION.
nbdinfo --json "nbd+unix:///described?socket=$sock" >"$j" || fail "nbdinfo described"
expect_eq "description" "desc=reference-export" \
  "$(get "$e.get(\"description\")")" reference-export

# NBD_OPT_LIST: every export, by name.
nbdinfo --list --json "$uri" >"$j" || fail "nbdinfo --list failed"
cat "$j"
expect_eq "exports listed" "NBD_OPT_LIST" \
  "$(get 'sorted(x["export-name"] for x in j["exports"])')" \
  "['', 'blk', 'described', 'mc-off', 'mc-on', 'ro']"

# Unknown export: nbdinfo must fail (NBD_REP_ERR_UNKNOWN to NBD_OPT_GO).
if nbdinfo "nbd+unix:///no-such-export?socket=$sock" >"$NBDP_TEST_DIR/out" 2>&1; then
  fail "nbdinfo of export no-such-export: sent NBD_OPT_GO; got success; expected an error (NBD_REP_ERR_UNKNOWN)"
fi
echo "ok: unknown export refused: $(tail -n 1 "$NBDP_TEST_DIR/out")"
