#!/usr/bin/env python3
# nbd-conformance: writes the seed corpus of the fuzz targets into
# fuzz/corpus/TARGET/seed-*.  Client and server seeds are recorded from
# real sessions: the fuzz target's own client (fuzz/bin/replay-client and
# replay-client-resize in live mode, FUZZ_PEER_CONNECT) talks through a
# recording proxy to `nbd-refserver -s`; the server's bytes become client
# seeds (script + stream) and the client's bytes server-stdio seeds.  The
# codec and rules seeds are built here from the formats their targets
# read.  Run from the top of the tree after `make fuzz/bin/replay-client
# fuzz/bin/replay-client-resize reference-server/nbd-refserver`.
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(TOP, "fuzz", "corpus")
SERVER = os.path.join(TOP, "reference-server", "nbd-refserver")

NBD_MAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003e889045565a9
REQ = 0x25609513
EXT_REQ = 0x21e41c71
SIMPLE = 0x67446698
STRUCT = 0x668e33ef
EXT = 0x6e8a278c


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- recorded sessions ------------------------------------------------

def record(binary, script, server_args):
    """Run the fuzz target's client in live mode against nbd-refserver -s
    through a proxy; return (server->client bytes, client->server bytes)."""
    tmp = tempfile.mkdtemp(prefix="nbdp-corpus.")
    path = os.path.join(tmp, "proxy.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    sfile = os.path.join(tmp, "script")
    with open(sfile, "wb") as f:
        f.write(bytes([len(script)]) + script)
    env = dict(os.environ, FUZZ_PEER_CONNECT=path)
    client = subprocess.Popen([binary, sfile], env=env,
                              stdout=subprocess.DEVNULL)
    conn, _ = lsock.accept()
    a, b = socket.socketpair()
    server = subprocess.Popen([SERVER, "-s"] + server_args, stdin=b,
                              stdout=b)
    b.close()
    s2c, c2s = bytearray(), bytearray()

    def pump(src, dst, rec):
        while True:
            data = src.recv(65536)
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            rec += data
            try:
                dst.sendall(data)
            except OSError:
                return

    t1 = threading.Thread(target=pump, args=(conn, a, c2s))
    t2 = threading.Thread(target=pump, args=(a, conn, s2c))
    t1.start()
    t2.start()
    client.wait(timeout=60)
    t1.join(timeout=60)
    try:
        a.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    server.wait(timeout=60)
    t2.join(timeout=60)
    conn.close()
    a.close()
    lsock.close()
    os.unlink(path)
    os.unlink(sfile)
    os.rmdir(tmp)
    return bytes(s2c), bytes(c2s)


def client_seeds():
    binary = os.path.join(TOP, "fuzz", "bin", "replay-client")
    io_ops = bytes([0, 16, 1, 16, 2, 0, 3, 1, 4, 1, 5, 1, 6, 16, 7, 2,
                    8 | 0x40, 3])
    scripts = {
        "plain": bytes([0x00]) + bytes([0, 16, 1, 16, 2, 0, 0x83, 1, 10, 0]),
        "structured": bytes([0x44]) + io_ops + bytes([10, 0]),
        "extended": bytes([0x48]) + io_ops + bytes([10, 0]),
        "export-name": bytes([0x22]) + bytes([0, 8, 1, 8, 10, 0, 11, 0]),
        "steps": bytes([0x81, 0, 0, 1, 4, 3, 0, 5, 4, 5, 5, 6, 0, 9, 33,
                        2, 4, 0, 16, 6, 16, 10, 0]),
        "steps-extended": bytes([0x83, 4, 0, 5, 1, 2, 12, 6, 1, 7, 1, 0, 1,
                                 10, 0]),
        "abort": bytes([0x81, 0, 0, 7, 0, 10, 0]),
    }
    for name, script in scripts.items():
        s2c, c2s = record(binary, script, ["memory", "1M"])
        write("client", name, bytes([len(script)]) + script + s2c)
        write("server-stdio", "client-" + name, c2s)


def resize_seeds():
    binary = os.path.join(TOP, "fuzz", "bin", "replay-client-resize")
    ops = bytes([0, 0x20, 1, 0, 2, 0, 3, 0, 8, 1, 0, 0x80, 4, 0, 5, 0,
                 7, 16, 9, 0])
    runs = {
        # name: (script[0], script[1] features, profile)
        "negotiated": (0x08, 0x7f, "everything"),
        "negotiated-ext": (0x10, 0x7f, "everything"),
        "explicit-simple": (0x00, 0x03, "explicit-simple"),
        "legacy": (0x04, 0x00, "legacy"),
        "flag-only": (0x01, 0x00, "flag-only"),
        "info-optin": (0x0a, 0x00, "info-optin"),
        "boolean": (0x0b, 0x07, "boolean"),
        "probe-info": (0x28, 0x7f, "notify"),
    }
    for name, (s0, s1, profile) in runs.items():
        script = bytes([s0, s1]) + ops
        s2c, c2s = record(binary, script,
                          ["--profile", profile, "--notify-rate=0",
                           "memory", "1M"])
        write("client-resize", name, bytes([len(script)]) + script + s2c)
        write("server-stdio", "resize-" + name, c2s)


# ---- hand-built seeds --------------------------------------------------

def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def s32(s):
    return struct.pack(">I", len(s)) + s


def server_seeds():
    go = opt(7, s32(b"blk") + struct.pack(">HHH", 2, 1, 2))
    meta = opt(10, s32(b"blk") + struct.pack(">I", 1) + s32(b"base:allocation"))
    reqs = b"".join([
        struct.pack(">IHHQQI", REQ, 0, 0, 1, 0, 4096),
        struct.pack(">IHHQQI", REQ, 1, 1, 2, 4096, 512) + b"\xaa" * 512,
        struct.pack(">IHHQQI", REQ, 8, 7, 3, 0, 65536),
        struct.pack(">IHHQQI", REQ, 0, 7, 4, 512, 1000),
        struct.pack(">IHHQQI", REQ, 2, 6, 5, 0, 8192),
        struct.pack(">IHHQQI", REQ, 4, 0, 6, 0, 8192),
        struct.pack(">IHHQQI", REQ, 0, 0, 7, 1 << 40, 512),
        struct.pack(">IHHQQI", REQ, 0, 99, 8, 0, 0),
        struct.pack(">IHHQQI", REQ, 0, 2, 9, 0, 0),
    ])
    write("server-stdio", "blk-structured",
          struct.pack(">I", 3) + opt(8) + meta + go + reqs)
    ext = b"".join([
        struct.pack(">IHHQQQ", EXT_REQ, 0x20, 1, 1, 0, 16) + b"\x55" * 16,
        struct.pack(">IHHQQQ", EXT_REQ, 0x20, 7, 2, 0, 12) +
        struct.pack(">QI", 1 << 20, 1),
        struct.pack(">IHHQQQ", EXT_REQ, 0, 0, 3, 0, 1 << 33),
        struct.pack(">IHHQQQ", EXT_REQ, 0, 2, 4, 0, 0),
    ])
    write("server-stdio", "extended",
          struct.pack(">I", 1) + opt(11) +
          opt(10, s32(b"") + struct.pack(">I", 1) + s32(b"base:allocation")) +
          opt(7, s32(b"") + struct.pack(">H", 0)) + ext)
    write("server-stdio", "options",
          struct.pack(">I", 1) + opt(3) + opt(6, s32(b"ro") +
                                               struct.pack(">HHH", 2, 1, 2)) +
          opt(8) + opt(9, s32(b"") + struct.pack(">I", 0)) +
          opt(9, s32(b"") + struct.pack(">I", 1) + s32(b"base:")) +
          opt(5) + opt(12, b"\0\0\0\xff") + opt(99, b"junk") + opt(2))
    write("server-stdio", "export-name-ro",
          struct.pack(">I", 3) + opt(1, b"ro") +
          struct.pack(">IHHQQI", REQ, 0, 0, 1, 0, 512) +
          struct.pack(">IHHQQI", REQ, 0, 1, 2, 0, 1) + b"x" +
          struct.pack(">IHHQQI", REQ, 0, 3, 3, 0, 0) +
          struct.pack(">IHHQQI", REQ, 0, 2, 4, 0, 0))


def codec_seeds():
    write("codec", "request", bytes([0]) +
          struct.pack(">IHHQQI", REQ, 1, 1, 7, 4096, 512))
    write("codec", "request-ext", bytes([1]) +
          struct.pack(">IHHQQQ", EXT_REQ, 0x20, 1, 7, 4096, 512))
    write("codec", "reply-simple", bytes([2]) +
          struct.pack(">IIQ", SIMPLE, 22, 7))
    write("codec", "reply-structured", bytes([2]) +
          struct.pack(">IHHQI", STRUCT, 1, 1, 7, 520))
    write("codec", "reply-extended", bytes([2]) +
          struct.pack(">IHHQQQ", EXT, 1, 6, 7, 0, 24))
    write("codec", "option", bytes([3]) +
          struct.pack(">QIII", REP_MAGIC, 7, 3, 12))
    write("codec", "block-status", bytes([4 | 8]) +
          struct.pack(">III", 1, 4096, 3) + struct.pack(">II", 512, 0))
    write("codec", "block-status-ext", bytes([5 | 16]) +
          struct.pack(">II", 1, 2) + struct.pack(">QQ", 4096, 3) +
          struct.pack(">QQ", 1 << 40, 0))
    write("codec", "error", bytes([6]) + struct.pack(">HIH", 0x8001, 5, 3) +
          b"bad")
    write("codec", "error-offset", bytes([6]) +
          struct.pack(">HIH", 0x8002, 5, 2) + b"no" + struct.pack(">Q", 4096))
    write("codec", "names", bytes([7]) + struct.pack(">QB", 0x1ff, 40))


def rules_seeds():
    def session(f, size, eflags, bs=None, ctx=()):
        b = bytes([f]) + struct.pack(">QH", size, eflags)
        if f & 32:
            b += struct.pack(">III", *bs)
        b += bytes([len(ctx)])
        for cid, nidx in ctx:
            b += bytes([cid, nidx])
        return b

    def request(typ, cookie, off, count, flags=0):
        # how: 2 (u16 type), 4 (u64 offset), 8 (u64 count)
        return (bytes([3, 2 | 4 | 8]) + struct.pack(">H", flags) +
                struct.pack(">H", typ) + bytes([cookie]) +
                struct.pack(">QQ", off, count))

    def chunk(kind, cookie, typ_sel, flags, payload, off=0, extra=b""):
        # kind 1 structured, 2 extended; how 0x20: full-width length
        how = kind | 0x20 | (0x10 if kind == 2 else 0)
        b = bytes([4, how, cookie, (typ_sel << 1) | (flags & 1)]) + extra
        if kind == 2:
            b += struct.pack(">QQ", off, len(payload))
        else:
            b += struct.pack(">I", len(payload))
        return b + payload

    def simple(cookie, error=0):
        return bytes([4, 0, 0 if error == 0 else 200, cookie]) + (
            struct.pack(">I", error) if error else b"")

    sess = session(4 | 16 | 32, 1 << 20, 0x1ff, (1, 4096, 1 << 25), [(1, 0)])
    body = b"".join([
        request(0, 1, 0, 512),
        chunk(1, 1, 1, 0, struct.pack(">Q", 0) + b"\0" * 256),
        chunk(1, 1, 2, 0, struct.pack(">QI", 256, 256)),
        chunk(1, 1, 0, 1, b""),
        request(7, 2, 0, 4096),
        chunk(1, 2, 3, 1, struct.pack(">III", 1, 4096, 3)),
        request(1, 3, 0, 512),
        simple(3),
        request(4, 4, 0, 512),
        chunk(1, 4, 6, 1, struct.pack(">IH", 5, 3) + b"bad" +
              struct.pack(">Q", 100)),
        request(0, 5, 0, 512),
        chunk(1, 5, 5, 1, struct.pack(">IH", 22, 0)),
        simple(6, 22),
        bytes([7]) + struct.pack(">HIIIQ", 0x1ff, 512, 4096, 1 << 25, 64),
    ])
    write("rules", "structured", sess + body)
    sess = session(8 | 16, 1 << 40, 0x1ff, None, [(1, 0), (2, 1)])
    body = b"".join([
        request(7, 1, 0, 1 << 33),
        chunk(2, 1, 4, 0, struct.pack(">II", 1, 1) +
              struct.pack(">QQ", 1 << 32, 3)),
        chunk(2, 1, 4, 1, struct.pack(">II", 2, 1) +
              struct.pack(">QQ", 1 << 33, 0)),
        request(0, 2, 4096, 4096),
        chunk(2, 2, 1, 1, struct.pack(">Q", 4096) + b"\1" * 4096, off=4096),
    ])
    write("rules", "extended", sess + body)
    # Handshake: greeting, GO with its replies, meta context.
    greet = bytes([0]) + struct.pack(">QQH", NBD_MAGIC, IHAVEOPT, 3)
    go_data = s32(b"") + struct.pack(">HH", 1, 3)
    go = bytes([1, 0, 7]) + struct.pack(">H", len(go_data)) + go_data

    def orep(o, rep, payload):
        return (bytes([2, 0]) + struct.pack(">QIII", REP_MAGIC, o, rep,
                                            len(payload)) + payload)
    body = b"".join([
        greet, go,
        orep(7, 3, struct.pack(">HQH", 0, 1 << 20, 0x1ff)),
        orep(7, 3, struct.pack(">HIII", 3, 1, 4096, 1 << 25)),
        orep(7, 3, struct.pack(">H", 1) + b"name"),
        orep(7, 1, b""),
        bytes([1, 0, 10, 0, 0]),
        orep(10, 4, struct.pack(">I", 1) + b"base:allocation"),
        orep(10, 4, struct.pack(">I", 1) + b"qemu:x"),
        orep(10, 1, b""),
        bytes([1, 0, 3, 0, 0]),
        orep(3, 2, struct.pack(">I", 2) + b"abdesc"),
        orep(3, 0x80000001, b"unsupported"),
    ])
    write("rules", "handshake", session(0, 0, 0) + body)


def main():
    for d in ("codec", "rules", "client", "client-resize", "server-stdio"):
        os.makedirs(os.path.join(CORPUS, d), exist_ok=True)
    codec_seeds()
    rules_seeds()
    server_seeds()
    client_seeds()
    resize_seeds()


if __name__ == "__main__":
    sys.exit(main())
