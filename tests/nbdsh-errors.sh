#!/usr/bin/env bash
# Error replies of nbd-refserver to bad requests, sent by libnbd with its
# client-side checks off (set_strict_mode(0)), over structured and over
# simple replies.  After every error the same connection still serves a
# read.  (An unknown *command* cannot be sent through libnbd 1.14; the raw
# C client tests cover it: tests/raw-bad-input.c.)
#   read / trim / block status / cache past EOF      -> EINVAL
#   write / write zeroes past EOF                    -> ENOSPC
#   a write straddling EOF changes nothing before it
#   offset + length wrapping past 2^64               -> EINVAL
#   unknown command flag, flag not valid for the cmd -> EINVAL
#   write / trim / zero on a read-only export        -> EPERM
# proto.md: "Error values" (the SHOULDs quoted above), "Size constraints"
# (last paragraph), "NBD_CMD_WRITE_ZEROES" (ENOSPC, EPERM),
# "NBD_CMD_BLOCK_STATUS" (EINVAL beyond the size), "Command flags".
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

start_refserver --export name=ro,memory=1M,ro memory 1M
uri=$uri RO_URI="nbd+unix:///ro?socket=$sock" nbdsh -n \
  -c "exec(open('$NBDP_TOP/tests/nbdsh-lib.py').read())" -c '
uri, ro_uri = os.environ["uri"], os.environ["RO_URI"]
EINVAL, ENOSPC, EPERM = errno.EINVAL, errno.ENOSPC, errno.EPERM
SIZE = 1024 * 1024

for structured in (True, False):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    check("structured replies", "NBD_OPT_STRUCTURED_REPLY" if structured
          else "no NBD_OPT_STRUCTURED_REPLY",
          h.get_structured_replies_negotiated(), structured)
    h.set_strict_mode(0)
    mode = " (%s replies)" % ("structured" if structured else "simple")
    h.pwrite(b"\x11" * 4096, SIZE - 4096)
    cases = [
        ("read at EOF", "NBD_CMD_READ 512 at 1M",
         lambda: h.pread(512, SIZE), [EINVAL]),
        ("read straddling EOF", "NBD_CMD_READ 1024 at 1M-512",
         lambda: h.pread(1024, SIZE - 512), [EINVAL]),
        ("read far past EOF", "NBD_CMD_READ 512 at 2^63",
         lambda: h.pread(512, 1 << 63), [EINVAL]),
        ("read wrapping 2^64", "NBD_CMD_READ 1024 at 2^64-512",
         lambda: h.pread(1024, (1 << 64) - 512), [EINVAL]),
        ("write at EOF", "NBD_CMD_WRITE 512 at 1M",
         lambda: h.pwrite(b"\x22" * 512, SIZE), [ENOSPC]),
        ("write straddling EOF", "NBD_CMD_WRITE 1024 at 1M-512",
         lambda: h.pwrite(b"\x22" * 1024, SIZE - 512), [ENOSPC]),
        ("write wrapping 2^64", "NBD_CMD_WRITE 1024 at 2^64-512",
         lambda: h.pwrite(b"\x22" * 1024, (1 << 64) - 512), [ENOSPC, EINVAL]),
        ("write zeroes past EOF", "NBD_CMD_WRITE_ZEROES 4096 at 1M-512",
         lambda: h.zero(4096, SIZE - 512), [ENOSPC]),
        ("trim past EOF", "NBD_CMD_TRIM 4096 at 1M-512",
         lambda: h.trim(4096, SIZE - 512), [EINVAL]),
        ("cache past EOF", "NBD_CMD_CACHE 4096 at 1M",
         lambda: h.cache(4096, SIZE), [EINVAL]),
        ("unknown flag bit 7 on read", "NBD_CMD_READ flags=0x80",
         lambda: h.pread(512, 0, 1 << 7), [EINVAL]),
        ("unknown flag bit 15 on write", "NBD_CMD_WRITE flags=0x8000",
         lambda: h.pwrite(b"\x33" * 512, 0, 1 << 15), [EINVAL]),
        ("FAST_ZERO on read", "NBD_CMD_READ flags=FAST_ZERO",
         lambda: h.pread(512, 0, nbd.CMD_FLAG_FAST_ZERO), [EINVAL]),
        ("REQ_ONE on write", "NBD_CMD_WRITE flags=REQ_ONE",
         lambda: h.pwrite(b"\x33" * 512, 0, nbd.CMD_FLAG_REQ_ONE), [EINVAL]),
        ("NO_HOLE on trim", "NBD_CMD_TRIM flags=NO_HOLE",
         lambda: h.trim(512, 0, nbd.CMD_FLAG_NO_HOLE), [EINVAL]),
    ]
    if structured:
        cases.append(("block status past EOF", "NBD_CMD_BLOCK_STATUS 4096 at 1M",
                      lambda: block_status_map(h, 4096, SIZE), [EINVAL]))
        cases.append(("DF on write", "NBD_CMD_WRITE flags=DF",
                      lambda: h.pwrite(b"\x33" * 512, 0, nbd.CMD_FLAG_DF), [EINVAL]))
    else:
        # NBD_FLAG_SEND_DF is clear without structured replies, so DF is
        # not a valid flag for any command.
        cases.append(("DF without structured replies", "NBD_CMD_READ flags=DF",
                      lambda: h.pread(512, 0, nbd.CMD_FLAG_DF), [EINVAL]))
    for (what, sent, fn, allowed) in cases:
        expect_error(what + mode, sent, fn, allowed)
        expect_alive(h, what + mode)
    check("bytes before EOF after the refused writes" + mode,
          "NBD_CMD_WRITE 1024 at 1M-512 (refused)", h.pread(4096, SIZE - 4096),
          b"\x11" * 4096)
    check("bytes at 0 after refused writes with bad flags" + mode,
          "NBD_CMD_WRITE 512 at 0 with bad flags (refused)", h.pread(512, 0),
          bytes(512))
    h.shutdown()

# Read-only export: writes are refused with EPERM.
h = nbd.NBD()
h.connect_uri(ro_uri)
check("READ_ONLY", "NBD_OPT_GO ro", h.is_read_only(), True)
h.set_strict_mode(0)
for (what, sent, fn) in [
        ("write on read-only", "NBD_CMD_WRITE 512 at 0",
         lambda: h.pwrite(b"\x44" * 512, 0)),
        ("write zeroes on read-only", "NBD_CMD_WRITE_ZEROES 512 at 0",
         lambda: h.zero(512, 0)),
        ("trim on read-only", "NBD_CMD_TRIM 512 at 0",
         lambda: h.trim(512, 0))]:
    expect_error(what, sent, fn, [EPERM])
    expect_alive(h, what)
check("read-only export unchanged", "refused writes", h.pread(512, 0), bytes(512))
h.shutdown()
' || fail "nbdsh script failed (its output is above)"
