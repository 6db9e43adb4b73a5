#!/usr/bin/env bash
# A 1 PiB memory export of nbd-refserver is sparse: writing 1 MiB in ten
# places (first and last MiB included) raises the server's resident memory
# by about 1 MiB per place (measured from /proc/PID/status VmRSS after a
# warm-up that gives every worker its request buffer), not in proportion
# to the export size; the data reads
# back; block status around the written places is exact; and block status
# requests over the unwritten space answer quickly (the time is printed;
# the bound, 2 s per request, only catches work in proportion to the size).
# The whole 1 PiB in one request needs extended headers:
# tests/raw-extended.c (case huge-block-status) does that.
# proto.md: "NBD_CMD_WRITE", "NBD_CMD_BLOCK_STATUS", "base:allocation
# metadata context"; DESIGN.md "Protocol coverage" (memory backend: sparse,
# any virtual size up to 2^63-1).
source "$(dirname "$0")/functions.sh"
requires nbdsh --version
requires_file /proc/self/status

start_refserver memory 1P
before=$(vmrss "$pid")
echo "server VmRSS before: ${before} KiB"
export pid
nbdsh --base-allocation -u "$uri" \
  -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
import time
M = 1024 * 1024
P = 1 << 50
pid = os.environ["pid"]
check("export size", "memory 1P", h.get_size(), P)

def rss():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

places = [0, P - M] + [(P // 9) * k + 12345 * k for k in range(1, 9)]
data = {}
def put(i, off):
    d = bytes([i + 1]) * 4096 + os.urandom(M - 8192) + bytes([i + 1]) * 4096
    data[off] = d
    h.pwrite(d, off)

# Warm up: 32 concurrent 1 MiB writes to the first place, so that every
# worker of the connection has its request buffer; then the baseline.
buf = nbd.Buffer(M)
for i in range(32):
    h.aio_pwrite(buf, 0)
while h.aio_in_flight() > 0:
    h.poll(-1)
put(0, 0)
base = rss()
print("server VmRSS after the first place (warm-up): %d KiB" % base)
for i, off in enumerate(places[1:], 1):
    put(i, off)
h.flush()
for off in places:
    check("read back 1M at %d" % off, "NBD_CMD_WRITE 1M at %d" % off,
          h.pread(M, off) == data[off], True)
after = rss()
grow = after - base
print("server VmRSS after the other 9 places: %d KiB (+%d KiB for 9 MiB)"
      % (after, grow))
open(os.environ["NBDP_TEST_DIR"] + "/rss-after", "w").write(str(after))
# 9 MiB of data: allow twice that plus 4 MiB of metadata.  A map of the
# whole 1 PiB, or a large allocation unit, would be far over.
if grow > 2 * 9 * 1024 + 4096:
    fail("memory per written MiB", "9 x NBD_CMD_WRITE 1M at places 1 PiB / 9 apart",
         "VmRSS +%d KiB" % grow, "at most %d KiB" % (2 * 9 * 1024 + 4096))
print("ok: memory for 9 MiB of data: %d KiB" % grow)

# Block status around each written place: data inside, hole after (the
# places are far apart).  Each call is timed.
worst = 0.0
for off in places:
    t = time.monotonic()
    ext = block_status_map(h, min(4 * M, P - off), off)
    worst = max(worst, time.monotonic() - t)
    check("status at the start of the write at %d" % off,
          "NBD_CMD_BLOCK_STATUS 4M at %d" % off,
          flags_at(ext, off) & nbd.STATE_HOLE, 0)
    if off + 3 * M < P:
        check("status 1M past the end of the write at %d" % off,
              "NBD_CMD_BLOCK_STATUS 4M at %d" % off,
              flags_at(ext, off + 2 * M + 4096), nbd.STATE_HOLE | nbd.STATE_ZERO)
# Large requests over unwritten space, in the middle of the export.
for off in (P // 18 * 3, P // 18 * 13 + 4096, P - 8 * (1 << 30)):
    n = (1 << 32) - 4096
    t = time.monotonic()
    ext = block_status_map(h, n, off)
    dt = time.monotonic() - t
    worst = max(worst, dt)
    print("block status of 4 GiB at %d: %d extent(s) in %.4f s" % (off, len(ext), dt))
    check("status of unwritten 4 GiB at %d" % off, "NBD_CMD_BLOCK_STATUS 4G at %d" % off,
          ext[0][2], nbd.STATE_HOLE | nbd.STATE_ZERO)
    if ext[0][0] != off or ext[0][1] < min(n, 1 << 30):
        fail("first extent of 4 GiB of unwritten space", "NBD_CMD_BLOCK_STATUS 4G at %d" % off,
             ext[:3], "one extent starting at %d covering at least 1 GiB" % off)
print("slowest block status request: %.4f s" % worst)
if worst > 2.0:
    fail("block status time", "NBD_CMD_BLOCK_STATUS on a 1 PiB export",
         "%.2f s" % worst, "< 2 s (work in proportion to the export size?)")
' || fail "nbdsh script failed (its output is above)"
after=$(cat "$NBDP_TEST_DIR/rss-after")
grow=$((after - before))
echo "server VmRSS grew by ${grow} KiB in all (request buffers included)"
# Everything, request buffers of the connection's workers included: a
# loose bound that still catches memory in proportion to the export size.
if [ "$grow" -gt $((64 * 1024)) ]; then
  fail "memory: sent 10 x 1 MiB writes to a 1 PiB export; server VmRSS grew by ${grow} KiB; expected at most 65536 KiB"
fi
echo "ok: total memory growth ${grow} KiB <= 65536 KiB"
