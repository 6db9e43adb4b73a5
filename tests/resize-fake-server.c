/* nbd-conformance: a scripted fake NBD server that speaks just enough of
 * the protocol and of the draft RESIZE extension (specs/resize.md) to
 * play one scenario, most of them a deliberate violation, so that
 * tests/resize-client-faults.sh can show that nbd-refclient notices each
 * one and names the right requirement ID.  It is not a server to judge:
 * the real one is nbd-refserver.
 *
 *   resize-fake-server SOCKET SCENARIO
 *
 * Listens on the Unix socket SOCKET, serves connections one after the
 * other (a 1 MiB export reading as zeros), and exits when its parent
 * does.  Scenarios: see the table below.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec.h"
#include "io.h"
#include "nbd-draft.h"
#include "rules-resize.h"

struct scenario {
  const char *name;
  uint32_t caps;
  uint32_t granularity;
  bool legacy;                  /* refuse NBD_OPT_RESIZE, set SEND_RESIZE */
  const char *what;             /* for the listing */
};

#define ALLF NBD_RESIZE_MASK_FEATURES
static const struct scenario scenarios[] = {
  { "good", ALLF, 0, false, "conforming: set size, query, subscribe" },
  { "good-granular", ALLF, 4096, false, "conforming, granularity 4096" },
  { "legacy-good", 0, 0, true, "conforming legacy (2017) server" },
  { "chunk-bad-length", ALLF, 0, false, "size chunk of 20 bytes" },
  { "unnegotiated-chunk", ALLF, 0, false, "size chunk without SIZE_REPLY" },
  { "legacy-chunk", 0, 0, true, "size chunk in legacy mode" },
  { "chunk-foreign-cookie", ALLF, 0, false, "size chunk, cookie not in "
    "flight" },
  { "chunk-on-read", ALLF, 0, false, "size chunk in a READ reply" },
  { "query-no-done", ALLF, 0, false, "query answered without DONE" },
  { "set-no-done", ALLF, 0, false, "set size answered without DONE" },
  { "size-unaligned", ALLF, 4096, false, "size not a multiple of G" },
  { "events-reserved", ALLF, 0, false, "reserved event bit set" },
  { "set-wrong-events", ALLF, 0, false, "growth without GREW" },
  { "set-not-rounded", ALLF, 0, false, "set size rounded too far" },
  { "query-events", ALLF, 0, false, "query with events beyond INITIAL" },
  { "notify-duplicate", ALLF, 0, false, "notification of the same size" },
  { "sequence-reverse", ALLF, 0, false, "notification sequence goes back" },
  { "notify-flood", ALLF, 0, false, "1500 notifications at once" },
  { "notify-not-remote", ALLF, 0, false, "notification without REMOTE" },
  { "sub-done", ALLF, 0, false, "subscription snapshot with DONE" },
  { "unsub-early", ALLF, 0, false, "unsubscribe answered before the end" },
  { "info-bad-length", ALLF, 0, false, "NBD_INFO_RESIZE of 20 bytes" },
  { "info-active-not-subset", 0x13, 0, false, "active not within caps" },
  { "info-query-without-size-reply", 0x63, 0, false, "QUERY without "
    "SIZE_REPLY" },
  { "flag-missing", ALLF, 0, false, "GROW active, no NBD_FLAG_SEND_RESIZE" },
  { "neg-active-unacked", ALLF, 0, true, "active set without an acked "
    "NBD_OPT_RESIZE" },
  { "write-chunk-no-grow", ALLF, 0, false, "size chunk for a write that did "
    "not grow" },
  { "write-no-chunk", ALLF, 0, false, "growing write without size chunk" },
};

static const struct scenario *sc;

static bool
is (const char *name)
{
  return strcmp (sc->name, name) == 0;
}

struct conn {
  int fd;
  bool sr, eh;
  bool opt_acked;
  uint32_t requested;
  uint32_t active;
  uint64_t size;
  uint32_t seq;
  bool sub;
  uint64_t sub_cookie;
  uint16_t eflags;
};

/* Export state survives connections. */
static uint64_t export_size = 1024 * 1024;
static uint32_t export_seq = 0xfffffff0;

static _Noreturn void
die (const char *what)
{
  fprintf (stderr, "resize-fake-server: %s: %s\n", what, strerror (errno));
  exit (1);
}

static int
rd (struct conn *c, void *buf, size_t len)
{
  return nbdp_read_full (c->fd, buf, len);
}

static void
wr (struct conn *c, const void *buf, size_t len)
{
  if (nbdp_write_full (c->fd, buf, len) == -1)
    fprintf (stderr, "resize-fake-server: write: %s\n", strerror (errno));
}

static void
opt_reply (struct conn *c, uint32_t opt, uint32_t rep, const void *data,
           uint32_t len)
{
  unsigned char b[NBDP_OPTION_REPLY_SIZE];
  struct nbdp_option_reply r = { .magic = NBD_REP_MAGIC, .option = opt,
                                 .reply = rep, .length = len };

  nbdp_encode_option_reply (b, &r);
  wr (c, b, sizeof b);
  if (len)
    wr (c, data, len);
}

static uint64_t
G (void)
{
  return sc->granularity ? sc->granularity : 1;
}

/* ---- transmission replies ----------------------------------------- */

static void
chunk (struct conn *c, uint16_t flags, uint16_t type, uint64_t cookie,
       uint64_t offset, const void *payload, uint64_t len)
{
  unsigned char b[NBDP_EXTENDED_REPLY_SIZE];
  struct nbdp_reply r = {
    .kind = c->eh ? NBDP_REPLY_EXTENDED : NBDP_REPLY_STRUCTURED,
    .magic = c->eh ? NBD_EXTENDED_REPLY_MAGIC : NBD_STRUCTURED_REPLY_MAGIC,
    .flags = flags, .type = type, .cookie = cookie, .offset = offset,
    .length = len,
  };
  size_t n = nbdp_encode_reply (b, &r);

  wr (c, b, n);
  if (len)
    wr (c, payload, len);
}

static void
simple (struct conn *c, uint64_t cookie, uint32_t error)
{
  unsigned char b[NBDP_SIMPLE_REPLY_SIZE];
  struct nbdp_reply r = { .kind = NBDP_REPLY_SIMPLE,
                          .magic = NBD_SIMPLE_REPLY_MAGIC, .error = error,
                          .cookie = cookie };

  nbdp_encode_reply (b, &r);
  wr (c, b, NBDP_SIMPLE_REPLY_SIZE);
}

static void
done_ok (struct conn *c, uint64_t cookie, uint64_t offset)
{
  if (c->eh || c->sr)
    chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookie, offset,
           NULL, 0);
  else
    simple (c, cookie, 0);
}

static void
done_err (struct conn *c, uint64_t cookie, uint64_t offset, uint32_t err)
{
  if (c->eh || c->sr) {
    unsigned char p[6];
    nbdp_put32 (p, err);
    nbdp_put16 (p + 4, 0);
    chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, offset, p,
           6);
  }
  else
    simple (c, cookie, err);
}

static void
size_chunk (struct conn *c, uint16_t flags, uint64_t cookie,
            uint64_t offset, uint64_t size, uint32_t events, uint32_t seq)
{
  unsigned char p[20];
  struct nbdp_rz_chunk ch = { .size = size, .events = events,
                              .sequence = seq };

  memset (p, 0, sizeof p);
  nbdp_rz_encode_chunk (p, &ch);
  /* A structured chunk even when only simple replies were negotiated
   * (unnegotiated-chunk, legacy-chunk): that is the fault.
   */
  chunk (c, flags, NBD_REPLY_TYPE_RESIZE, cookie, offset, p,
         is ("chunk-bad-length") ? 20 : 16);
}

static bool
size_reply (const struct conn *c)
{
  return (c->active & NBD_RESIZE_F_SIZE_REPLY) != 0;
}

static uint32_t
zeroed (void)
{
  return (sc->caps & NBD_RESIZE_F_ZERO_FILL) ? NBD_RESIZE_EV_ZEROED : 0;
}

static void
do_set (struct conn *c, uint64_t cookie, uint64_t req)
{
  uint64_t old = c->size, ru = req, now;
  uint32_t ev = 0;

  nbdp_rz_roundup (req, G (), &ru);
  if (req > old)
    now = ru;
  else if (req < old)
    now = ru < old ? ru : old;
  else
    now = old;
  if (is ("size-unaligned") && now != old)
    now++;
  if (is ("set-not-rounded") && now > old)
    now += 4096;
  if (now > old)
    ev |= NBD_RESIZE_EV_GREW | zeroed ();
  if (now < old)
    ev |= NBD_RESIZE_EV_SHRANK;
  if (now > req)
    ev |= NBD_RESIZE_EV_ROUNDED;
  if (is ("events-reserved"))
    ev |= 0x100;
  if (is ("set-wrong-events"))
    ev &= ~(uint32_t) NBD_RESIZE_EV_GREW;
  if (now != old)
    export_seq++;
  c->size = export_size = now;
  if (size_reply (c) || is ("unnegotiated-chunk") || is ("legacy-chunk")) {
    size_chunk (c, is ("set-no-done") ? 0 : NBD_REPLY_FLAG_DONE, cookie, req,
                now, ev, export_seq);
    if (is ("set-no-done"))
      return;                   /* and nothing more */
    if (is ("chunk-foreign-cookie"))
      size_chunk (c, 0, cookie, req, now, NBD_RESIZE_EV_INITIAL, export_seq);
    return;
  }
  done_ok (c, cookie, req);
}

static void
notify (struct conn *c, uint64_t size, uint32_t ev, uint32_t seq)
{
  size_chunk (c, 0, c->sub_cookie, 0, size, ev, seq);
}

static void
do_subscribe (struct conn *c, uint64_t cookie)
{
  uint64_t s = c->size, g = G () > 4096 ? G () : 4096;
  int i;

  c->sub = true;
  c->sub_cookie = cookie;
  size_chunk (c, is ("sub-done") ? NBD_REPLY_FLAG_DONE : 0, cookie, 0, s,
              NBD_RESIZE_EV_INITIAL, export_seq);
  if (is ("sub-done")) {
    c->sub = false;
    return;
  }
  if (is ("notify-duplicate")) {
    notify (c, s, NBD_RESIZE_EV_REMOTE, export_seq + 1);
    return;
  }
  if (is ("sequence-reverse")) {
    notify (c, s + g, NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_REMOTE | zeroed (),
            export_seq - 1);
    return;
  }
  if (is ("notify-flood")) {
    for (i = 1; i <= 1500; i++)
      notify (c, i % 2 ? s + g : s,
              (i % 2 ? NBD_RESIZE_EV_GREW | zeroed ()
               : NBD_RESIZE_EV_SHRANK) | NBD_RESIZE_EV_REMOTE,
              export_seq + i);
    export_seq += 1500;
    return;
  }
  /* Two conforming notifications of changes by "the administrator". */
  notify (c, s + g, NBD_RESIZE_EV_GREW | zeroed () |
          (is ("notify-not-remote") ? 0 : NBD_RESIZE_EV_REMOTE),
          export_seq + 1);
  notify (c, s, NBD_RESIZE_EV_SHRANK | NBD_RESIZE_EV_REMOTE,
          export_seq + 2);
  export_seq += 2;
}

static void
do_resize (struct conn *c, const struct nbdp_request *req)
{
  bool q = req->flags & NBD_CMD_FLAG_RESIZE_QUERY;
  bool n = req->flags & NBD_CMD_FLAG_RESIZE_NOTIFY;

  if (!(c->eflags & NBD_FLAG_SEND_RESIZE)) {
    done_err (c, req->cookie, req->offset, NBD_EINVAL);
    return;
  }
  if (!q && !n) {
    do_set (c, req->cookie, req->offset);
    return;
  }
  if (!size_reply (c)) {
    done_err (c, req->cookie, req->offset, NBD_EINVAL);
    return;
  }
  if (q && !n) {
    size_chunk (c, is ("query-no-done") ? 0 : NBD_REPLY_FLAG_DONE,
                req->cookie, 0, c->size,
                NBD_RESIZE_EV_INITIAL |
                (is ("query-events") ? NBD_RESIZE_EV_GREW : 0), export_seq);
    return;
  }
  if (n && !q) {
    if (c->sub)
      done_err (c, req->cookie, 0, NBD_EINVAL);
    else
      do_subscribe (c, req->cookie);
    return;
  }
  /* Unsubscribe. */
  if (!c->sub) {
    done_err (c, req->cookie, 0, NBD_EINVAL);
    return;
  }
  if (!is ("unsub-early"))
    chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, c->sub_cookie, 0,
           NULL, 0);
  size_chunk (c, NBD_REPLY_FLAG_DONE, req->cookie, 0, c->size,
              NBD_RESIZE_EV_INITIAL, export_seq);
  if (is ("unsub-early"))
    chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, c->sub_cookie, 0,
           NULL, 0);
  c->sub = false;
}

static void
do_read (struct conn *c, const struct nbdp_request *req)
{
  unsigned char *buf;

  if (req->offset > c->size || req->count > c->size - req->offset ||
      req->count > 32 * 1024 * 1024) {
    done_err (c, req->cookie, req->offset, NBD_EINVAL);
    return;
  }
  if (is ("chunk-on-read") && size_reply (c))
    size_chunk (c, 0, req->cookie, req->offset, c->size,
                NBD_RESIZE_EV_INITIAL, export_seq);
  buf = calloc (1, req->count + 8);
  if (buf == NULL)
    die ("calloc");
  if (c->eh || c->sr) {
    nbdp_put64 (buf, req->offset);
    if (req->count == 0)
      chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, req->cookie,
             req->offset, NULL, 0);
    else
      chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, req->cookie,
             req->offset, buf, req->count + 8);
  }
  else {
    simple (c, req->cookie, 0);
    wr (c, buf + 8, req->count);
  }
  free (buf);
}

static void
do_write (struct conn *c, const struct nbdp_request *req)
{
  uint64_t end = req->offset + req->count;
  bool auto_grow = c->active & NBD_RESIZE_F_AUTO_GROW;

  if (req->offset > UINT64_MAX - req->count) {
    done_err (c, req->cookie, req->offset, NBD_EINVAL);
    return;
  }
  if (end > c->size) {
    uint64_t now;
    uint32_t ev = NBD_RESIZE_EV_GREW | zeroed ();
    if (!auto_grow) {
      done_err (c, req->cookie, req->offset, NBD_ENOSPC);
      return;
    }
    nbdp_rz_roundup (end, G (), &now);
    if (now > end)
      ev |= NBD_RESIZE_EV_ROUNDED;
    export_seq++;
    c->size = export_size = now;
    if (size_reply (c) && !is ("write-no-chunk"))
      size_chunk (c, 0, req->cookie, req->offset, now, ev, export_seq);
  }
  else if (is ("write-chunk-no-grow") && size_reply (c))
    size_chunk (c, 0, req->cookie, req->offset, c->size,
                NBD_RESIZE_EV_GREW, export_seq);
  done_ok (c, req->cookie, req->offset);
}

static void
transmission (struct conn *c)
{
  for (;;) {
    unsigned char h[NBDP_REQUEST_EXT_SIZE];
    size_t hl = c->eh ? NBDP_REQUEST_EXT_SIZE : NBDP_REQUEST_SIZE;
    struct nbdp_request req;

    if (rd (c, h, hl) == -1)
      return;
    nbdp_decode_request (h, c->eh, &req);
    switch (req.type) {
    case NBD_CMD_DISC:
      if (c->sub)
        chunk (c, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, c->sub_cookie, 0,
               NULL, 0);
      return;
    case NBD_CMD_READ:
      do_read (c, &req);
      break;
    case NBD_CMD_WRITE: {
      unsigned char *buf;
      if (req.count > 32 * 1024 * 1024)
        return;
      buf = malloc (req.count + 1);
      if (buf == NULL || rd (c, buf, req.count) == -1) {
        free (buf);
        return;
      }
      free (buf);
      do_write (c, &req);
      break;
    }
    case NBD_CMD_WRITE_ZEROES:
      do_write (c, &req);
      break;
    case NBD_CMD_FLUSH:
      done_ok (c, req.cookie, req.offset);
      break;
    case NBD_CMD_RESIZE:
      do_resize (c, &req);
      break;
    default:
      done_err (c, req.cookie, req.offset, NBD_EINVAL);
    }
  }
}

/* ---- handshake ---------------------------------------------------- */

static void
info_reply (struct conn *c, uint32_t opt, const unsigned char *data,
            uint32_t len, bool go)
{
  uint32_t namelen, i;
  uint16_t n;
  bool want_bs = false, want_rz = false;
  unsigned char b[32];
  struct nbdp_rz_info in;
  uint16_t eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES;
  uint32_t active;

  if (len < 6 || (namelen = nbdp_get32 (data)) > len - 6) {
    opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    return;
  }
  n = nbdp_get16 (data + 4 + namelen);
  if (6 + namelen + 2 * (uint32_t) n != len) {
    opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    return;
  }
  for (i = 0; i < n; i++) {
    uint16_t t = nbdp_get16 (data + 6 + namelen + 2 * i);
    if (t == NBD_INFO_BLOCK_SIZE)
      want_bs = true;
    if (t == NBD_INFO_RESIZE)
      want_rz = true;
  }
  active = c->opt_acked ? nbdp_rz_grant (c->requested, sc->caps,
                                         c->sr || c->eh) : 0;
  if (is ("info-active-not-subset"))
    active |= NBD_RESIZE_F_NOTIFY;
  if (is ("neg-active-unacked"))
    active = NBD_RESIZE_F_GROW;
  if (active & NBD_RESIZE_MASK_SEND_RESIZE)
    eflags |= NBD_FLAG_SEND_RESIZE;
  if (sc->legacy)
    eflags |= NBD_FLAG_SEND_RESIZE;
  if (is ("flag-missing"))
    eflags &= ~(uint16_t) NBD_FLAG_SEND_RESIZE;

  nbdp_put16 (b, NBD_INFO_EXPORT);
  nbdp_put64 (b + 2, export_size);
  nbdp_put16 (b + 10, eflags);
  opt_reply (c, opt, NBD_REP_INFO, b, 12);
  if (want_bs) {
    nbdp_put16 (b, NBD_INFO_BLOCK_SIZE);
    nbdp_put32 (b + 2, 1);
    nbdp_put32 (b + 6, 4096);
    nbdp_put32 (b + 10, 32 * 1024 * 1024);
    opt_reply (c, opt, NBD_REP_INFO, b, 14);
  }
  if ((want_rz || c->opt_acked) &&
      (!sc->legacy || is ("neg-active-unacked"))) {
    in = (struct nbdp_rz_info) { .present = true, .capabilities = sc->caps,
                                 .active = active,
                                 .granularity = sc->granularity };
    nbdp_rz_encode_info (b, &in);
    opt_reply (c, opt, NBD_REP_INFO, b,
               is ("info-bad-length") ? 20 : NBD_RESIZE_INFO_LEN);
  }
  opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
  if (go) {
    c->active = active;
    c->eflags = eflags;
    c->size = export_size;
    transmission (c);
  }
}

static void
serve (int fd)
{
  struct conn c = { .fd = fd };
  unsigned char b[18];
  uint32_t cflags;

  memcpy (b, "NBDMAGIC", 8);
  nbdp_put64 (b + 8, NBD_NEW_VERSION);
  nbdp_put16 (b + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  wr (&c, b, 18);
  if (rd (&c, b, 4) == -1)
    return;
  cflags = nbdp_get32 (b);
  (void) cflags;
  for (;;) {
    unsigned char h[NBDP_OPTION_SIZE];
    struct nbdp_option o;
    unsigned char *data;

    if (rd (&c, h, sizeof h) == -1)
      return;
    nbdp_decode_option (h, &o);
    if (o.magic != NBD_NEW_VERSION || o.length > 65536)
      return;
    data = malloc (o.length + 1);
    if (data == NULL || rd (&c, data, o.length) == -1) {
      free (data);
      return;
    }
    switch (o.option) {
    case NBD_OPT_STRUCTURED_REPLY:
      c.sr = true;
      opt_reply (&c, o.option, NBD_REP_ACK, NULL, 0);
      break;
    case NBD_OPT_EXTENDED_HEADERS:
      c.eh = true;
      opt_reply (&c, o.option, NBD_REP_ACK, NULL, 0);
      break;
    case NBD_OPT_RESIZE:
      if (sc->legacy)
        opt_reply (&c, o.option, NBD_REP_ERR_UNSUP, NULL, 0);
      else if (o.length != NBD_RESIZE_OPT_LEN)
        opt_reply (&c, o.option, NBD_REP_ERR_INVALID, NULL, 0);
      else {
        c.opt_acked = true;
        c.requested = nbdp_get32 (data);
        opt_reply (&c, o.option, NBD_REP_ACK, NULL, 0);
      }
      break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
      info_reply (&c, o.option, data, o.length, o.option == NBD_OPT_GO);
      if (o.option == NBD_OPT_GO) {
        free (data);
        return;
      }
      break;
    case NBD_OPT_ABORT:
      opt_reply (&c, o.option, NBD_REP_ACK, NULL, 0);
      free (data);
      return;
    default:
      opt_reply (&c, o.option, NBD_REP_ERR_UNSUP, NULL, 0);
    }
    free (data);
  }
}

int
main (int argc, char **argv)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  size_t i;
  int lfd;

  if (argc == 2 && strcmp (argv[1], "--list") == 0) {
    for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
      printf ("%s\t%s\n", scenarios[i].name, scenarios[i].what);
    return 0;
  }
  if (argc != 3) {
    fprintf (stderr, "usage: resize-fake-server SOCKET SCENARIO | --list\n");
    return 2;
  }
  for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    if (strcmp (argv[2], scenarios[i].name) == 0)
      sc = &scenarios[i];
  if (sc == NULL) {
    fprintf (stderr, "resize-fake-server: unknown scenario %s\n", argv[2]);
    return 2;
  }
  prctl (PR_SET_PDEATHSIG, SIGTERM);
  signal (SIGPIPE, SIG_IGN);
  if (strlen (argv[1]) >= sizeof sun.sun_path) {
    fprintf (stderr, "resize-fake-server: socket path too long\n");
    return 2;
  }
  strcpy (sun.sun_path, argv[1]);
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd == -1)
    die ("socket");
  unlink (argv[1]);
  if (bind (lfd, (struct sockaddr *) &sun, sizeof sun) == -1)
    die ("bind");
  if (listen (lfd, 8) == -1)
    die ("listen");
  for (;;) {
    int fd = accept (lfd, NULL, NULL);
    if (fd == -1) {
      if (errno == EINTR)
        continue;
      die ("accept");
    }
    serve (fd);
    close (fd);
  }
}
