#!/usr/bin/env bash
# NBD_CMD_WRITE_ZEROES on nbd-refserver (nbdsh), with and without
# NBD_CMD_FLAG_FAST_ZERO and NO_HOLE, aligned and unaligned:
#  - without FAST_ZERO it succeeds (MUST NOT fail with ENOTSUP once
#    NBD_FLAG_SEND_FAST_ZERO is advertised) and the range reads as zeroes,
#    neighbouring bytes untouched;
#  - with FAST_ZERO it either succeeds (range reads as zeroes) or fails with
#    ENOTSUP leaving the contents unchanged; the test prints which;
#  - FAST_ZERO on an export without a fast path is not tested here (the
#    memory backend zeroes by dropping pages).
# proto.md: "NBD_CMD_WRITE_ZEROES", "Command flags" (FAST_ZERO, NO_HOLE),
# "Transmission flags" (NBD_FLAG_SEND_WRITE_ZEROES, NBD_FLAG_SEND_FAST_ZERO).
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

start_refserver memory 16M
nbdsh -u "$uri" -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
M = 1024 * 1024
check("NBD_FLAG_SEND_WRITE_ZEROES", "NBD_OPT_GO", h.can_zero(), True)
check("NBD_FLAG_SEND_FAST_ZERO", "NBD_OPT_GO", h.can_fast_zero(), True)

def fill():
    h.pwrite(b"\x33" * (8 * M), 0)

cases = [
    ("aligned", 0, M, 0),
    ("unaligned", 12345, 100000, 0),
    ("NO_HOLE", 2 * M, M, nbd.CMD_FLAG_NO_HOLE),
    ("unaligned NO_HOLE", 3 * M + 7, 5000, nbd.CMD_FLAG_NO_HOLE),
    ("FUA", 4 * M, 65536, nbd.CMD_FLAG_FUA),
]
for (name, off, ln, flags) in cases:
    for fast in (False, True):
        fill()
        fl = flags | (nbd.CMD_FLAG_FAST_ZERO if fast else 0)
        sent = "NBD_CMD_WRITE_ZEROES %s%s offset %d length %d" % (
            name, "|FAST_ZERO" if fast else "", off, ln)
        err, msg = outcome(lambda: h.zero(ln, off, fl))
        before = h.pread(4096, off - 4096) if off >= 4096 else b""
        inside = h.pread(ln, off)
        after = h.pread(4096, off + ln)
        check("bytes before the range", sent, before, b"\x33" * len(before))
        check("bytes after the range", sent, after, b"\x33" * 4096)
        if err == 0:
            check("range reads as zeroes", sent, inside == bytes(ln), True)
            print("info: %s: success" % sent)
        elif fast and err == errno.ENOTSUP:
            check("range unchanged after ENOTSUP", sent,
                  inside == b"\x33" * ln, True)
            print("info: %s: ENOTSUP (allowed for FAST_ZERO)" % sent)
        else:
            fail("write zeroes", sent, "%s (%s)" % (errname(err), msg),
                 "success" + (" or ENOTSUP" if fast else ""))

# Zeroing the whole export quickly is the use the spec has in mind.
sent = "NBD_CMD_WRITE_ZEROES|FAST_ZERO 0+16M"
fill()
err, msg = outcome(lambda: h.zero(16 * M, 0, nbd.CMD_FLAG_FAST_ZERO))
if err not in (0, errno.ENOTSUP):
    fail("fast zero of the whole export", sent, errname(err), "success or ENOTSUP")
print("info: %s: %s" % (sent, errname(err)))
if err == 0:
    check("export reads as zeroes", sent, h.pread(16 * M, 0) == bytes(16 * M), True)
expect_alive(h, "write zeroes")
' || fail "nbdsh script failed (its output is above)"
