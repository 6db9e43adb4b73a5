#!/usr/bin/env bash
# Structured reads (nbdsh, libnbd's chunk callback) from nbd-refserver:
#  - a read over data and never-written space tiles the request exactly with
#    content chunks, the data chunks carry what was written, and the
#    never-written space comes back as NBD_REPLY_TYPE_OFFSET_HOLE;
#  - with NBD_CMD_FLAG_DF a read of 64 KiB over data and a hole comes back
#    as exactly one NBD_REPLY_TYPE_OFFSET_DATA chunk with the zeroes
#    present (the server MUST support DF reads up to 65,536 bytes);
#  - a larger DF read: one data chunk or NBD_EOVERFLOW (both allowed).
# proto.md: "Structured reply chunk message", "NBD_CMD_READ" (structured
# replies, DF), "Structured reply types" (OFFSET_DATA, OFFSET_HOLE),
# "Command flags" (NBD_CMD_FLAG_DF).
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

start_refserver memory 8M
nbdsh -u "$uri" -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
M = 1024 * 1024
check("structured replies negotiated", "NBD_OPT_STRUCTURED_REPLY",
      h.get_structured_replies_negotiated(), True)
check("NBD_FLAG_SEND_DF", "NBD_OPT_GO", h.can_df(), True)
h.pwrite(b"\xaa" * 65536, M)

def chunks_of(count, offset, flags=0):
    got = []
    def cb(subbuf, off, status, err):
        got.append((off, len(subbuf), status, bytes(subbuf)))
        return 0
    buf = h.pread_structured(count, offset, cb, flags)
    return buf, sorted(got)

names = {nbd.READ_DATA: "DATA", nbd.READ_HOLE: "HOLE", nbd.READ_ERROR: "ERROR"}
def show(chunks):
    return ", ".join("%s %d+%d" % (names.get(s, s), o, n) for (o, n, s, b) in chunks)

# 1. Data and holes, no DF: chunks tile [0, 4M) exactly.
sent = "NBD_CMD_READ offset 0 length 4M after writing 64K of 0xaa at 1M"
buf, chunks = chunks_of(4 * M, 0)
print("chunks:", show(chunks))
pos = 0
for (o, n, s, b) in chunks:
    if o != pos:
        fail("chunk tiling", sent, show(chunks),
             "content chunks covering 0..4M without gap or overlap")
    pos = o + n
    if s == nbd.READ_HOLE and b != bytes(n):
        fail("hole chunk content", sent, "non-zero bytes in a hole", "zeroes")
check("end of last chunk", sent, pos, 4 * M)
check("data read back", sent,
      buf == bytes(M) + b"\xaa" * 65536 + bytes(3 * M - 65536), True)
holes = [c for c in chunks if c[2] == nbd.READ_HOLE]
if not holes:
    fail("OFFSET_HOLE chunks", sent, show(chunks),
         "at least one NBD_REPLY_TYPE_OFFSET_HOLE for never-written space")
print("ok: %d hole chunk(s), %d data chunk(s)" %
      (len(holes), len(chunks) - len(holes)))
for (o, n, s, b) in chunks:
    if s == nbd.READ_DATA and o <= M < o + n:
        check("bytes at 1M in the data chunk", sent, b[M - o], 0xaa)

# 2. Never-written range only: nothing but holes is expected from a sparse
#    memory export (a data chunk of zeroes would be allowed by the spec but
#    wastes the wire; report it as a failure of our reference server).
sent = "NBD_CMD_READ offset 4M length 1M (never written)"
buf, chunks = chunks_of(M, 4 * M)
print("chunks:", show(chunks))
check("chunk types over a never-written range", sent,
      set(c[2] for c in chunks), {nbd.READ_HOLE})
check("bytes", sent, buf, bytes(M))

# 3. DF over data + hole, 64 KiB: exactly one OFFSET_DATA chunk.
sent = "NBD_CMD_READ|DF offset 1M+32K length 64K (half data, half hole)"
buf, chunks = chunks_of(65536, M + 32768, nbd.CMD_FLAG_DF)
print("chunks:", show(chunks))
check("content chunks with DF", sent,
      [(o, n, s) for (o, n, s, b) in chunks], [(M + 32768, 65536, nbd.READ_DATA)])
check("bytes with DF", sent, buf, b"\xaa" * 32768 + bytes(32768))

# 4. DF over 4M: one data chunk, or NBD_EOVERFLOW and no content chunk.
sent = "NBD_CMD_READ|DF offset 0 length 4M"
got = []
def cb(subbuf, off, status, err):
    got.append((off, len(subbuf), status))
    return 0
err, res = outcome(lambda: h.pread_structured(4 * M, 0, cb, nbd.CMD_FLAG_DF))
if err == 0:
    check("content chunks with DF", sent,
          [c for c in got if c[2] != nbd.READ_ERROR], [(0, 4 * M, nbd.READ_DATA)])
    print("info: server sent the 4M DF read as one data chunk")
elif err == errno.EOVERFLOW:
    check("content chunks before EOVERFLOW", sent,
          [c for c in got if c[2] != nbd.READ_ERROR], [])
    print("info: server answered the 4M DF read with EOVERFLOW")
else:
    fail("large DF read", sent, errname(err), "success or EOVERFLOW")
expect_alive(h, "DF reads")
' || fail "nbdsh script failed (its output is above)"
