#!/usr/bin/env bash
# Multi-conn consistency of nbd-refserver (nbdsh, two handles on the same
# export): with NBD_FLAG_CAN_MULTI_CONN advertised, data written on one
# connection and flushed there is read back on another connection, for
# writes, write zeroes and trims, in both directions; the same for the file
# backend.
# proto.md: "Transmission flags" (NBD_FLAG_CAN_MULTI_CONN: a flush on one
# connection covers writes completed on any), "Ordering of messages and
# writes", "NBD_CMD_FLUSH".
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

img=$NBDP_TEST_DIR/disk.img
truncate -s 8M "$img"
start_refserver --export "name=file,file=$img,multi-conn=on" \
  --export name=mem,memory=8M,multi-conn=on memory 8M
export sock
nbdsh -n -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
M = 1024 * 1024
sock = os.environ["sock"]
for name in ("mem", "file"):
    uri = "nbd+unix:///%s?socket=%s" % (name, sock)
    a, b = nbd.NBD(), nbd.NBD()
    a.connect_uri(uri)
    b.connect_uri(uri)
    for (hname, hh) in (("first", a), ("second", b)):
        check("CAN_MULTI_CONN (%s, %s connection)" % (name, hname),
              "--export name=%s,...,multi-conn=on" % name, hh.can_multi_conn(), True)
    # Let b cache what it sees first, so that stale data would show.
    check("initial content seen by b", "NBD_CMD_READ on b",
          b.pread(M, 2 * M), bytes(M))
    for i, (w, r, wn, rn) in enumerate(((a, b, "a", "b"), (b, a, "b", "a"))):
        pat = bytes([0x40 + i]) * M
        off = (2 + 2 * i) * M
        w.pwrite(pat, off)
        w.flush()
        check("%s export: read on %s after write+flush on %s" % (name, rn, wn),
              "NBD_CMD_WRITE 1M at %d + NBD_CMD_FLUSH on %s" % (off, wn),
              r.pread(M, off), pat)
        w.zero(65536, off + 4096)
        w.flush()
        check("%s export: read on %s after zero+flush on %s" % (name, rn, wn),
              "NBD_CMD_WRITE_ZEROES 64K at %d + FLUSH on %s" % (off + 4096, wn),
              r.pread(65536 + 8192, off),
              pat[:4096] + bytes(65536) + pat[:4096])
        # FUA alone also makes the write visible once replied (a FUA write
        # is persisted before the reply, so any connection sees it).
        w.pwrite(b"\x99" * 4096, off + M - 4096, nbd.CMD_FLAG_FUA)
        check("%s export: read on %s after FUA write on %s" % (name, rn, wn),
              "NBD_CMD_WRITE|FUA 4K at %d on %s" % (off + M - 4096, wn),
              r.pread(4096, off + M - 4096), b"\x99" * 4096)
    a.shutdown()
    b.shutdown()
' || fail "nbdsh script failed (its output is above)"
