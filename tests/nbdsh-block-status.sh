#!/usr/bin/env bash
# NBD_CMD_BLOCK_STATUS (base:allocation) from nbd-refserver's sparse memory
# export after writes, trims and write-zeroes (nbdsh):
#   written           -> 0 (data)
#   trimmed           -> HOLE|ZERO
#   zeroed            -> ZERO (HOLE allowed: no NO_HOLE flag)
#   zeroed, NO_HOLE   -> HOLE clear (the area must stay provisioned)
#   never written     -> HOLE|ZERO
# and, for every extent reported with NBD_STATE_ZERO, the bytes read back
# are zeroes; descriptors are consecutive from the requested offset and only
# the last may pass its end; REQ_ONE gives one descriptor within the length.
# proto.md: "NBD_CMD_BLOCK_STATUS", "NBD_REPLY_TYPE_BLOCK_STATUS",
# "base:allocation metadata context", "NBD_CMD_TRIM", "NBD_CMD_WRITE_ZEROES",
# "Command flags" (NO_HOLE, REQ_ONE).
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

start_refserver memory 16M
nbdsh --base-allocation -u "$uri" \
  -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
M = 1024 * 1024
HOLE, ZERO = nbd.STATE_HOLE, nbd.STATE_ZERO
check("base:allocation negotiated", "NBD_OPT_SET_META_CONTEXT base:allocation",
      h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), True)

h.pwrite(b"\x55" * (8 * M), 0)
h.trim(M, M)
h.zero(M, 3 * M)
h.zero(M, 5 * M, nbd.CMD_FLAG_NO_HOLE)
h.flush()
done = ("write 0x55 [0,8M); trim [1M,2M); zero [3M,4M); "
        "zero NO_HOLE [5M,6M); never written [8M,16M)")

ext = block_status_map(h, 16 * M, 0)
print("extents:", ext)
# Consecutive from offset 0, only the last may end past 16M.
pos = 0
for i, (o, ln, fl) in enumerate(ext):
    if o != pos or ln == 0:
        fail("descriptor layout", "NBD_CMD_BLOCK_STATUS 0+16M", ext,
             "consecutive non-empty descriptors from 0")
    if i < len(ext) - 1 and o + ln >= 16 * M:
        fail("descriptor layout", "NBD_CMD_BLOCK_STATUS 0+16M", ext,
             "only the last descriptor reaching 16M")
    pos = o + ln
# A short reply is allowed: ask again from where it stopped.
while pos < 16 * M:
    more = block_status_map(h, 16 * M - pos, pos)
    print("more extents:", more)
    ext += more
    pos = more[-1][0] + more[-1][1]

def st(off):
    return flags_at(ext, off)

sent = "NBD_CMD_BLOCK_STATUS 0+16M after " + done
for (what, off, expected) in [("written", 0, 0), ("written", 7 * M, 0),
                              ("trimmed", M, HOLE | ZERO),
                              ("trimmed, end", 2 * M - 1, HOLE | ZERO),
                              ("never written", 8 * M, HOLE | ZERO),
                              ("never written, end", 16 * M - 1, HOLE | ZERO)]:
    check("status of %s byte %d" % (what, off), sent, st(off), expected)
check("ZERO bit of zeroed [3M,4M)", sent, st(3 * M) & ZERO, ZERO)
print("info: zeroed without NO_HOLE reported as", st(3 * M))
check("HOLE bit of NO_HOLE-zeroed [5M,6M)", sent, st(5 * M) & HOLE, 0)
print("info: zeroed with NO_HOLE reported as", st(5 * M))

# Whatever is reported as ZERO reads as zeroes.
for (o, ln, fl) in ext:
    if fl & ZERO:
        end = min(o + ln, 16 * M)
        for a in range(o, end, 4 * M):
            n = min(4 * M, end - a)
            if h.pread(n, a) != bytes(n):
                fail("content of an extent reported ZERO", sent,
                     "non-zero bytes in [%d,%d)" % (a, a + n), "zeroes")
print("ok: all ZERO extents read as zeroes")
check("data at 7M", sent, h.pread(4096, 7 * M), b"\x55" * 4096)

# Unaligned request in the middle of data.
part = block_status_map(h, 1000, 7 * M + 123)
check("first descriptor offset", "NBD_CMD_BLOCK_STATUS 7M+123, 1000 bytes",
      part[0][0], 7 * M + 123)
check("status", "NBD_CMD_BLOCK_STATUS 7M+123, 1000 bytes", part[0][2], 0)

# REQ_ONE: exactly one descriptor, not longer than the request.
sent = "NBD_CMD_BLOCK_STATUS|REQ_ONE 0+4M"
one = block_status_map(h, 4 * M, 0, nbd.CMD_FLAG_REQ_ONE)
check("descriptor count with REQ_ONE", sent, len(one), 1)
if one[0][1] > 4 * M:
    fail("descriptor length with REQ_ONE", sent, one[0][1], "<= 4194304")
check("status with REQ_ONE", sent, one[0][2], 0)
one = block_status_map(h, 64 * 1024, 8 * M, nbd.CMD_FLAG_REQ_ONE)
sent = "NBD_CMD_BLOCK_STATUS|REQ_ONE 8M+64K"
check("descriptor count with REQ_ONE", sent, len(one), 1)
if not 0 < one[0][1] <= 64 * 1024:
    fail("descriptor length with REQ_ONE", sent, one[0][1], "1..65536")
check("status with REQ_ONE over a hole", sent, one[0][2], HOLE | ZERO)
print("info: REQ_ONE descriptor length over the hole:", one[0][1])
' || fail "nbdsh script failed (its output is above)"
