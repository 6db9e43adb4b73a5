#!/usr/bin/env bash
# nbd-conformance: nbd-refserver's draft RESIZE command line (specs/resize.md
# section 15), its control socket and nbd-refserver-ctl, and end-to-end
# runs of nbd-refclient (the draft client) against each encoding.
source "$(dirname "$0")/functions.sh"

d=$NBDP_TEST_DIR
ctl=$NBDP_TOP/reference-server/nbd-refserver-ctl
refclient=$NBDP_TOP/reference-client/nbd-refclient
[ -x "$ctl" ] || fail "$ctl is not built"

# --help shows every switch with its default (section 15.1).
help=$("$NBD_REFSERVER" --help)
for sw in "--resize=" "--resize-encoding=" "--legacy-fallback" "--resize-grow" \
          "--resize-shrink" "--auto-grow" "--require-optin" "--size-reply" \
          "--granularity=N" "--max-size=N" "--query" "--notify" \
          "--unsubscribe" "--second-notify=" "--notify-rate=N" "--coalesce" \
          "--zero-fill=" "--fill-pattern=" "--visibility=" \
          "--sequence-start=N" "--fault NAME" "--profile NAME" \
          "--list-profiles" "--list-faults" "--control PATH"; do
  grep -qF -- "$sw" <<<"$help" || fail "--help does not mention $sw"
done
for def in "(default off)" "(default negotiated)" "(default 10)" \
            "(default 0xa5)" "(default export)" "(default 4294967280)" \
            "(default guaranteed)" "(default reject)"; do
  grep -qF -- "$def" <<<"$help" || fail "--help does not show $def"
done
echo "ok: --help lists every switch of section 15.1 with its default"

# Profiles and faults of sections 15.2 and 15.3, one line each.
list=$("$NBD_REFSERVER" --list-profiles)
for p in off legacy explicit-simple explicit-structured quota auto-grow \
         notify everything unzeroed refuse flag-only info-optin boolean \
         per-connection no-optin no-coalesce replace-subscription \
         no-unsubscribe; do
  grep -qE "^$p +(yes|variant|negative) +[^ ]" <<<"$list" ||
    fail "--list-profiles: no line with a description for $p"
done
expect_eq "--list-profiles lines" "--list-profiles" "$(wc -l <<<"$list")" 18
faults=$("$NBD_REFSERVER" --list-faults)
for f in notify-flood notify-duplicate chunk-foreign-cookie chunk-bad-length \
         size-unaligned query-no-done private-shrink unnegotiated-chunk \
         sequence-reverse dirty-grow; do
  grep -qE "^$f +[^ ]" <<<"$faults" || fail "--list-faults: no line for $f"
done
echo "ok: --list-profiles (18) and --list-faults (10), one line each"

# Bad values and invalid combinations are refused at start.
bad ()
{
  local want=$1; shift
  "$NBD_REFSERVER" -f --exit-with-parent -U "$d/bad.sock" "$@" 2>"$d/bad.err"
  local rc=$?
  [ "$rc" = "$want" ] ||
    fail "nbd-refserver $*: exit status $rc; expected $want ($(cat "$d/bad.err"))"
  echo "ok: refused ($rc): $* -- $(head -1 "$d/bad.err")"
}
bad 2 --auto-grow=maybe memory 1M
bad 2 --granularity=3000 memory 1M
bad 2 --fault nosuch memory 1M
bad 2 --profile nosuch memory 1M
bad 2 --resize-encoding=other memory 1M
bad 2 --fill-pattern=256 memory 1M
bad 1 --resize=negotiated --visibility=refuse --export name=,memory=1M,multi-conn=on
bad 1 --resize=negotiated --granularity=64K memory 100K
bad 1 --resize=negotiated --granularity=64K --max-size=100K memory 1M
bad 1 --resize=negotiated --granularity=1K --export name=,memory=1M,min-block=4096

# The control socket through nbd-refserver-ctl.
start_refserver --profile=everything --control="$d/ctl" memory 1M
expect_eq "ctl size" "size -" "$("$ctl" "$d/ctl" size -)" 1048576
expect_eq "ctl resize" "resize - 2M" "$("$ctl" "$d/ctl" resize - 2M)" 2097152
expect_eq "nbdinfo after ctl resize" "$uri" "$(nbdinfo --size "$uri")" 2097152
"$ctl" "$d/ctl" resize - 1001 2>"$d/ctl.err" &&
  fail "ctl resize to 1001 (G 4K) succeeded; expected an error"
grep -q "granularity" "$d/ctl.err" || fail "ctl error: $(cat "$d/ctl.err")"
"$ctl" "$d/ctl" help | grep -q "resize EXPORT SIZE" || fail "ctl help"
printf 'resize - 4M\nsize -\n' | "$ctl" "$d/ctl" - >"$d/ctl.out" ||
  fail "ctl - (stdin)"
expect_eq "ctl - answers" "resize - 4M; size -" "$(tr '\n' ' ' <"$d/ctl.out")" \
  "4194304 4194304 "
echo "ok: control socket: resize, size, errors, help, stdin mode"
kill "$pid"; wait "$pid" 2>/dev/null || :
[ -e "$d/ctl" ] && fail "the control socket $d/ctl is left after exit"
echo "ok: the control socket is removed at exit"

# FUA on a set size reaches the disk (RZ-DUR-1): fdatasync after the
# ftruncate, before the reply (the client exits after the reply).
if [ -x "$refclient" ] && strace -o /dev/null true 2>/dev/null; then
  # LeakSanitizer cannot run under ptrace: off here when built with ASan.
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -o "$d/trace" -e trace=ftruncate,fdatasync,fsync \
    "$NBD_REFSERVER" -f -U - --profile=everything \
    --export "name=,file=$d/disk.img,size=1M" \
    --run "$refclient --fua --no-verify resize \"\$uri\" 3M" >"$d/run.out" 2>&1 ||
    { cat "$d/run.out"; fail "FUA resize under strace failed"; }
  grep -E "ftruncate\([0-9]+, 3145728\)" "$d/trace" >/dev/null ||
    fail "no ftruncate to 3M in the trace: $(cat "$d/trace")"
  awk '/ftruncate\([0-9]+, 3145728\)/ { t = 1 } t && /fdatasync|fsync/ { s = 1 }
       END { exit !s }' "$d/trace" ||
    fail "FUA set size: no fdatasync after the ftruncate (RZ-DUR-1): $(cat "$d/trace")"
  expect_eq "file size" "$d/disk.img" "$(stat -c %s "$d/disk.img")" 3145728
  echo "ok: FUA set size: ftruncate then fdatasync before the reply (RZ-DUR-1)"
else
  echo "info: nbd-refclient or strace missing: FUA syscall check skipped"
fi

# nbd-refclient end to end against each encoding's profile.
if [ ! -x "$refclient" ]; then
  echo "info: reference-client/nbd-refclient not built: end-to-end part skipped"
  exit 0
fi
rc_run ()
{
  local want=$1; shift
  "$refclient" "$@" >"$d/rc.out" 2>&1
  local rc=$?
  [ "$rc" = "$want" ] ||
    fail "nbd-refclient $*: exit $rc; expected $want: $(tail -5 "$d/rc.out")"
  echo "ok: nbd-refclient $* -> $rc"
}
for p in legacy explicit-simple explicit-structured everything unzeroed \
         info-optin boolean flag-only; do
  case $p in
    legacy) enc=legacy ;;
    flag-only) enc=flag-only ;;
    info-optin) enc=info-optin ;;
    boolean) enc=boolean ;;
    *) enc=negotiated ;;
  esac
  start_refserver --profile="$p" --control="$d/ctl.$p" memory 1M
  rc_run 0 --encoding "$enc" info "$uri"
  case $p in
    flag-only) rc_run 0 --encoding "$enc" grow-write "$uri" 1M 64K ;;
    *) rc_run 0 --encoding "$enc" resize "$uri" 2M ;;
  esac
  case $p in
    explicit-structured|everything|unzeroed|info-optin)
      rc_run 0 --encoding "$enc" query "$uri" ;;
  esac
  kill "$pid"; wait "$pid" 2>/dev/null || :
done

# A watcher hears an external resize (RZ-MC-6), synchronised through the
# control socket's wait-subs instead of sleeping.
start_refserver --profile=notify --control="$d/ctl.w" memory 1M
"$refclient" --json watch --count 1 --timeout 20 "$uri" >"$d/watch.out" 2>&1 &
wpid=$!
"$ctl" "$d/ctl.w" wait-subs - 1 >/dev/null || fail "the watcher never subscribed"
"$ctl" "$d/ctl.w" resize - 3M >/dev/null
wait "$wpid" || fail "nbd-refclient watch: exit $?: $(cat "$d/watch.out")"
grep -q 3145728 "$d/watch.out" || fail "watch did not report 3M: $(cat "$d/watch.out")"
echo "ok: nbd-refclient watch heard the external resize to 3M"
kill "$pid"; wait "$pid" 2>/dev/null || :

# A bad server is noticed: chunk-bad-length (RZ-CHUNK-1 / RZ-CLI-27).
start_refserver --profile=notify --fault chunk-bad-length memory 1M
rc_run 1 query "$uri"
grep -q "RZ-CLI-27\|RZ-CHUNK-1" "$d/rc.out" ||
  fail "nbd-refclient did not name RZ-CLI-27: $(cat "$d/rc.out")"
