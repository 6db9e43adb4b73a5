# nbd-conformance: assertion helpers for the nbdsh tests (tests/nbdsh-*.sh).
# Loaded with: nbdsh -u URI -c "exec(open('tests/nbdsh-lib.py').read())" -c ...
# Every failure says what was sent, what came back and what was expected,
# then exits 1 (nbdsh turns an uncaught SystemExit into that status).
import errno
import os
import sys

import nbd


def short(v):
    """A printable form of v, long byte strings summarised."""
    if isinstance(v, (bytes, bytearray)) and len(v) > 16:
        distinct = sorted(set(v))
        if len(distinct) == 1:
            return "%d bytes of 0x%02x" % (len(v), distinct[0])
        return "%d bytes starting %s" % (len(v), bytes(v[:16]).hex())
    r = v if isinstance(v, str) else repr(v)
    return r if len(r) <= 300 else r[:300] + "..."


def fail(what, sent, got, expected):
    print("FAIL: %s: sent: %s; got: %s; expected: %s"
          % (what, sent, short(got), short(expected)), flush=True)
    os._exit(1)


def check(what, sent, got, expected):
    if got != expected:
        fail(what, sent, got, expected)
    print("ok: %s = %s" % (what, short(got)), flush=True)


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "success"


def outcome(fn):
    """Run fn(); return (0, result) on success, (errnum, message) on
    nbd.Error."""
    try:
        return 0, fn()
    except nbd.Error as ex:
        return ex.errnum or -1, ex.string


def expect_error(what, sent, fn, allowed):
    """fn() must fail with one of the errno values in allowed (the first
    being the one the spec recommends); print which one came back."""
    err, msg = outcome(fn)
    if err not in allowed:
        fail(what, sent, "%s (%s)" % (errname(err), msg),
             " or ".join(errname(a) for a in allowed))
    print("ok: %s: %s%s" % (what, errname(err),
                             "" if err == allowed[0] else
                             " (allowed; the spec suggests %s)"
                             % errname(allowed[0])), flush=True)


def expect_alive(hh, what):
    """After an error the connection must still serve a read."""
    err, msg = outcome(lambda: hh.pread(512, 0))
    if err:
        fail("connection alive after " + what, "NBD_CMD_READ 512 at 0",
             "%s (%s)" % (errname(err), msg), "success")


def block_status_map(hh, length, offset, flags=0):
    """All base:allocation extents the server reports for one request, as
    a list of (offset, length, flags)."""
    out = []

    def cb(metacontext, off, entries, err):
        if metacontext != nbd.CONTEXT_BASE_ALLOCATION:
            return 0
        pos = off
        for i in range(0, len(entries), 2):
            out.append((pos, entries[i], entries[i + 1]))
            pos += entries[i]
        return 0

    hh.block_status(length, offset, cb, flags)
    return out


def flags_at(extents, off):
    for (o, ln, fl) in extents:
        if o <= off < o + ln:
            return fl
    return None
