#!/usr/bin/python3
"""Open an nbd-matrix index.html in headless Chromium and check it.

  html-check.py CHROMIUM RUN_DIR SCRATCH

Drives Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on fd 3, replies and events on fd 4,
each message NUL-terminated), with a private profile in SCRATCH and no
network.  Checks, printing one line per check and "FAIL: ..." on the
first failure (exit 1):

- no console error: no uncaught exception, no console.error/assert, no
  Log entry of level error (a resource that failed to load, ...);
- the grid is there: for every cell of RUN_DIR/results.json, the table of
  its scenario has a <td class="v VERDICT"> in the row of its server and
  the column of its client; no grid cell is empty or unknown;
- the evidence of a cell opens: after navigating to #cN its overlay is
  displayed and names the cell;
- a screenshot (SCRATCH/screenshot.png, the first grid scrolled into
  view) is a real picture: a PNG of the window's size, several colours,
  among them the colour of the first cell's verdict.
Exit 2 when Chromium cannot be driven at all.
"""
import base64
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import time
import zlib

DEADLINE = 60.0

# Background colours of verdict cells (harness/report-html.c css).
VERDICT_RGB = {
    "PASS": (0x88, 0xdd, 0x88), "FAIL": (0xff, 0x66, 0x66),
    "XFAIL": (0xff, 0xbb, 0xdd), "XPASS": (0xcc, 0x88, 0xff),
    "UNSUPPORTED": (0xdd, 0xdd, 0xdd), "SKIP": (0xf6, 0xf6, 0xf6),
    "TIMEOUT": (0xff, 0xaa, 0x44), "ERROR": (0xaa, 0x22, 0x22),
}
WIDTH, HEIGHT = 1280, 900


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


class Chromium:
    def __init__(self, binary, scratch):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def setup():
            # The pipes may themselves be on 3..6: move them out of the
            # way first; dup2 to the same number would keep close-on-exec.
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.stderr = open(os.path.join(scratch, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run",
             "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--no-default-browser-check",
             "--disable-breakpad", "--disable-crash-reporter",
             "--user-data-dir=" + os.path.join(scratch, "profile"),
             "--window-size=%d,%d" % (WIDTH, HEIGHT),
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr,
            # close_fds would close 3 and 4 after setup(); Python's own
            # descriptors are close-on-exec anyway (PEP 446).
            preexec_fn=setup, close_fds=False, start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.deadline = time.monotonic() + DEADLINE

    def _read_message(self):
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium within %d s"
                                   % DEADLINE)
            r, _, _ = select.select([self.from_child], [], [], left)
            if r:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    raise EOFError("Chromium closed the DevTools pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read_message()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method):
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                del self.events[i]
                return m
        while True:
            m = self._read_message()
            if m.get("method") == method:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        # Helpers (zygote, renderers) share the session: none may stay.
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.stderr.close()


def console_errors(events):
    errs = []
    for m in events:
        p = m.get("params", {})
        if m.get("method") == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errs.append("exception: %s" % d.get("exception", {}).get(
                "description", d.get("text")))
        elif m.get("method") == "Runtime.consoleAPICalled" and \
                p.get("type") in ("error", "assert"):
            errs.append("console.%s: %s" % (p["type"], " ".join(
                str(a.get("value", a.get("description"))) for a in
                p.get("args", []))))
        elif m.get("method") == "Log.entryAdded" and \
                p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            errs.append("log (%s): %s %s" % (e.get("source"), e.get("text"),
                                              e.get("url", "")))
    return errs


def png_pixels(data):
    """Width, height and the set of RGB colours of an 8-bit RGB(A) PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("the screenshot is not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    if depth != 8 or ctype not in (2, 6):
        fail("unexpected PNG format (depth %d, colour type %d)"
             % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pr) & 255
        for x in range(0, stride, bpp * 4):    # every 4th pixel is plenty
            colours.add(bytes(line[x:x + 3]))
        prev = line
    return w, h, colours


GRID_JS = r"""
(() => {
  const grids = [];
  for (const h2 of document.querySelectorAll('h2[id^="s-"]')) {
    let t = h2.nextElementSibling;
    while (t && t.tagName !== 'TABLE') t = t.nextElementSibling;
    if (!t) continue;
    const rows = [...t.rows];
    const clients = [...rows[0].cells].slice(1).map(c => c.textContent);
    const cells = [];
    for (const r of rows.slice(1)) {
      const server = r.cells[0].textContent;
      [...r.cells].slice(1).forEach((td, i) => cells.push({
        server, client: clients[i], cls: td.className,
        href: td.querySelector('a') ? td.querySelector('a').getAttribute('href') : null,
        visible: td.getBoundingClientRect().width > 0}));
    }
    grids.push({scenario: h2.id.slice(2), cells});
  }
  return {grids, title: document.title,
          evidence: document.querySelectorAll('section.ev').length};
})()
"""


def main():
    if len(sys.argv) != 4:
        print("usage: html-check.py CHROMIUM RUN_DIR SCRATCH", file=sys.stderr)
        sys.exit(2)
    binary, run_dir, scratch = sys.argv[1:]
    run_dir = os.path.abspath(run_dir)
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    url = "file://" + os.path.join(run_dir, "index.html")

    try:
        chrome = Chromium(binary, scratch)
        target = chrome.send("Target.createTarget", {"url": "about:blank"})
        sess = chrome.send("Target.attachToTarget",
                           {"targetId": target["targetId"],
                            "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            chrome.send(domain + ".enable", session=sess)
        chrome.send("Emulation.setDeviceMetricsOverride",
                    {"width": WIDTH, "height": HEIGHT,
                     "deviceScaleFactor": 1, "mobile": False}, session=sess)
    except (OSError, EOFError, TimeoutError, RuntimeError) as e:
        print("chromium: cannot drive it over --remote-debugging-pipe: %s" % e)
        sys.exit(2)

    def evaluate(expr):
        r = chrome.send("Runtime.evaluate",
                        {"expression": expr, "returnByValue": True,
                         "awaitPromise": True}, session=sess)
        if "exceptionDetails" in r:
            fail("evaluating %r: %s" % (expr[:60], r["exceptionDetails"]))
        return r["result"].get("value")

    try:
        chrome.send("Page.navigate", {"url": url}, session=sess)
        chrome.wait_event("Page.loadEventFired")
        # Two animation frames: layout and paint are done.
        evaluate("new Promise(r => requestAnimationFrame(() => "
                 "requestAnimationFrame(() => r(true))))")
        page = evaluate(GRID_JS)

        # The grid against results.json.
        shown = {}
        for g in page["grids"]:
            for c in g["cells"]:
                shown[(g["scenario"], c["server"], c["client"])] = c
        want = results["cells"]
        print("page: %r, %d grids, %d grid cells, %d evidence overlays"
              % (page["title"], len(page["grids"]), len(shown),
                 page["evidence"]))
        if len(page["grids"]) != len({c["scenario"] for c in want}):
            fail("%d grids for %d scenarios" % (
                len(page["grids"]), len({c["scenario"] for c in want})))
        for c in want:
            key = (c["scenario"], c["server"], c["client"])
            td = shown.get(key)
            if not td:
                fail("cell %s is not in the grid" % c["id"])
            if td["cls"] != "v " + c["verdict"]:
                fail("cell %s shows class %r, expected 'v %s'"
                     % (c["id"], td["cls"], c["verdict"]))
            if not td["href"] or not td["visible"]:
                fail("cell %s has no visible link to its evidence" % c["id"])
        extra = [k for k, v in shown.items() if not v["cls"].startswith("v ")]
        if extra or len(shown) != len(want):
            fail("the grid has %d cells for %d results (empty: %s)"
                 % (len(shown), len(want), extra[:3]))
        if page["evidence"] != len(want):
            fail("%d evidence overlays for %d cells"
                 % (page["evidence"], len(want)))
        print("ok: every cell of results.json is in the grid with its verdict")

        # Screenshot of the first grid.
        evaluate("document.querySelector('h2[id^=\"s-\"]').scrollIntoView()")
        evaluate("new Promise(r => requestAnimationFrame(() => "
                 "requestAnimationFrame(() => r(true))))")
        shot = base64.b64decode(chrome.send(
            "Page.captureScreenshot", {"format": "png"}, session=sess)["data"])
        path = os.path.join(scratch, "screenshot.png")
        with open(path, "wb") as f:
            f.write(shot)
        w, h, colours = png_pixels(shot)
        first = page["grids"][0]["cells"][0]["cls"].split()[1]
        print("screenshot: %s, %dx%d, %d bytes, %d colours"
              % (path, w, h, len(shot), len(colours)))
        if (w, h) != (WIDTH, HEIGHT):
            fail("screenshot is %dx%d, expected %dx%d" % (w, h, WIDTH, HEIGHT))
        if len(colours) < 8:
            fail("screenshot has %d colours: a blank page?" % len(colours))
        if bytes(VERDICT_RGB[first]) not in colours:
            fail("screenshot lacks the colour of %s cells" % first)
        print("ok: the screenshot shows the grid (%s cells coloured)" % first)

        # The evidence overlay of the first cell opens.
        href = page["grids"][0]["cells"][0]["href"]
        chrome.send("Page.navigate", {"url": url + href}, session=sess)
        chrome.wait_event("Page.navigatedWithinDocument")
        ev = evaluate("(() => { const e = document.querySelector('%s');"
                      " return e ? [getComputedStyle(e).display,"
                      " e.querySelector('h3').textContent] : null; })()"
                      % href)
        if not ev or ev[0] != "block":
            fail("the evidence overlay %s does not open: %r" % (href, ev))
        print("ok: evidence %s opens: %s" % (href, ev[1]))

        errs = console_errors(chrome.events)
        if errs:
            fail("console errors: " + "; ".join(errs[:5]))
        print("ok: no console error, no exception, no failed load")
    except (EOFError, TimeoutError, RuntimeError) as e:
        fail("chromium: %s" % e)
    finally:
        chrome.close()


if __name__ == "__main__":
    main()
