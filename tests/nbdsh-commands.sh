#!/usr/bin/env bash
# NBD_CMD_CACHE, NBD_CMD_FLUSH and NBD_CMD_FLAG_FUA on nbd-refserver
# (nbdsh), on a memory export and on a file export (where FUA and flush
# reach the file: the bytes are in the file once the reply came):
#  - CACHE succeeds and changes nothing (no difference in semantics);
#  - FLUSH succeeds; FUA writes, zeroes and trims succeed;
#  - after a FUA write to the file export the file holds the bytes.
# proto.md: "NBD_CMD_CACHE", "NBD_CMD_FLUSH", "Ordering of messages and
# writes", "Command flags" (NBD_CMD_FLAG_FUA).
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

img=$NBDP_TEST_DIR/disk.img
truncate -s 8M "$img"
start_refserver --export "name=file,file=$img" memory 8M
file_uri="nbd+unix:///file?socket=$sock"

IMG=$img FILE_URI=$file_uri nbdsh -u "$uri" -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
M = 1024 * 1024
img, file_uri = os.environ["IMG"], os.environ["FILE_URI"]
for (name, hh) in [("memory", h), ("file", None)]:
    if hh is None:
        hh = nbd.NBD()
        hh.connect_uri(file_uri)
    for (what, fn) in [("NBD_FLAG_SEND_FLUSH", hh.can_flush),
                       ("NBD_FLAG_SEND_FUA", hh.can_fua),
                       ("NBD_FLAG_SEND_CACHE", hh.can_cache)]:
        check("%s (%s export)" % (what, name), "NBD_OPT_GO", fn(), True)
    data = bytes(range(256)) * 4096        # 1 MiB
    hh.pwrite(data, M)
    sent = "NBD_CMD_CACHE 0+8M on the %s export" % name
    err, msg = outcome(lambda: hh.cache(8 * M, 0))
    check("cache", sent, errname(err), "success")
    check("data after cache", sent, hh.pread(M, M) == data, True)
    err, msg = outcome(lambda: hh.flush())
    check("flush", "NBD_CMD_FLUSH on the %s export" % name, errname(err), "success")
    sent = "NBD_CMD_WRITE|FUA 4096 bytes at 3M on the %s export" % name
    err, msg = outcome(lambda: hh.pwrite(b"\xf0" * 4096, 3 * M, nbd.CMD_FLAG_FUA))
    check("FUA write", sent, errname(err), "success")
    check("FUA write read back", sent, hh.pread(4096, 3 * M), b"\xf0" * 4096)
    if name == "file":
        with open(img, "rb") as f:
            f.seek(3 * M)
            check("file contents after FUA write", sent, f.read(4096),
                  b"\xf0" * 4096)
            f.seek(M)
            check("file contents after flush", "NBD_CMD_WRITE 1M at 1M; NBD_CMD_FLUSH",
                  f.read(M) == data, True)
    sent = "NBD_CMD_WRITE_ZEROES|FUA 4096 at 3M on the %s export" % name
    err, msg = outcome(lambda: hh.zero(4096, 3 * M, nbd.CMD_FLAG_FUA))
    check("FUA zero", sent, errname(err), "success")
    check("FUA zero read back", sent, hh.pread(4096, 3 * M), bytes(4096))
    sent = "NBD_CMD_TRIM|FUA 1M at 6M on the %s export" % name
    err, msg = outcome(lambda: hh.trim(M, 6 * M, nbd.CMD_FLAG_FUA))
    check("FUA trim", sent, errname(err), "success")
    # FUA on a read: the flag is valid for all commands once SEND_FUA is
    # negotiated; the server MUST accept it (proto.md "Command flags").
    strict = hh.get_strict_mode()
    hh.set_strict_mode(0)
    sent = "NBD_CMD_READ|FUA 4096 at 1M on the %s export" % name
    err, msg = outcome(lambda: hh.pread(4096, M, nbd.CMD_FLAG_FUA))
    check("read with FUA", sent, errname(err), "success")
    hh.set_strict_mode(strict)
    check("data still there", "NBD_CMD_READ 1M at 1M", hh.pread(M, M) == data, True)
    if name == "file":
        hh.shutdown()
' || fail "nbdsh script failed (its output is above)"
