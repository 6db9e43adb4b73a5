/* nbd-conformance: nbd-refserver's draft RESIZE extension (specs/resize.md)
 * on the wire, with the raw client of common/client.h only, so that the
 * test judges the bytes independently of the draft client library.  One
 * case per binary (tests/bin/resize-server-CASE); every check names the
 * RZ-* requirement it tests.  Cases:
 *   negotiate      NBD_OPT_RESIZE, NBD_INFO_RESIZE, the active set, flags
 *   set-simple     set size without SIZE_REPLY (explicit-simple profile)
 *   set-structured size chunks, rounding, events, sequence numbers,
 *                  extended headers (explicit-structured profile)
 *   quota          capping at --max-size (quota profile)
 *   query          the query form
 *   subscribe      subscribe, own and remote changes, unsubscribe
 *   sub-disc       NBD_CMD_DISC while subscribed
 *   sub-shutdown   server shutdown while subscribed
 *   external       control-socket resize heard on two connections
 *   coalesce       1000 external resizes: coalescing and the rate limit
 *   no-coalesce    the negative profile: one notification per change
 *   auto-grow      automatic growth with and without opt-in, no-optin
 *   zero-fill      new bytes: zero (read, block status), pattern
 *   bounds         requests past the end after a shrink
 *   readonly       read-only exports
 *   legacy         --resize=legacy (2017 semantics)
 *   variants       encodings B1 (flag-only), B2 (info-optin), B3 (boolean)
 *   refuse         --visibility=refuse
 *   per-connection the negative per-connection visibility
 *   switches       replace-subscription, no-unsubscribe, legacy-fallback,
 *                  capability switches, size-reply off, fill pattern
 *   faults, faults-2  every --fault shows on the wire
 *   concurrency    4 connections of I/O while a 5th resizes 1000 times
 *   fua-restart    FUA set size on the file backend survives a restart
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "codec.h"
#include "nbd-draft.h"
#include "nbd-proto.h"
#include "testlib.h"

#define EXPECT(cond, ...) \
  do { if (!(cond)) tl_fail (__VA_ARGS__); } while (0)

#define START(s, ...) \
  do { \
    const char *const a_[] = { __VA_ARGS__, NULL }; \
    tl_start_server ((s), a_); \
  } while (0)

#define MAXCH 16

/* One reply chunk (or simple reply) as received. */
struct chunk {
  uint16_t flags, type;
  uint64_t cookie, hoffset, plen;
  bool simple;
  uint32_t error;           /* simple reply error / error chunk */
  uint64_t size;            /* NBD_REPLY_TYPE_RESIZE payload */
  uint32_t events, seq;
};

/* The reply to one request. */
struct res {
  uint32_t error;           /* first NBD error, 0 if none */
  size_t nch;
  struct chunk ch[MAXCH];
  int nresize;              /* NBD_REPLY_TYPE_RESIZE chunks */
  struct chunk rs;          /* the last of them */
};

/* One connection. */
struct rz {
  struct nbdp_client *c;
  uint64_t size;
  uint16_t eflags;
  uint32_t opt_rep;         /* reply to NBD_OPT_RESIZE, 0 if not sent */
  int n_info;               /* NBD_INFO_RESIZE items in the GO reply */
  uint32_t info_len;
  uint32_t caps, active, gran;
  uint64_t maxsz;
  uint64_t sub_cookie;      /* active subscription, 0 if none */
  struct chunk *q;          /* chunks for other cookies, in order */
  size_t qhead, qlen, qcap;
};

struct rzo {
  bool sr, eh;              /* structured replies, extended headers */
  bool opt;                 /* send NBD_OPT_RESIZE with feat */
  uint32_t feat;
  bool list;                /* list NBD_INFO_RESIZE */
  bool export_name;         /* end with NBD_OPT_EXPORT_NAME */
  bool info_first;          /* NBD_OPT_INFO before NBD_OPT_GO */
  bool expect_refused;      /* GO may fail: return NULL */
};

static const uint32_t ALL = NBD_RESIZE_MASK_FEATURES;

static const char *
ename (uint32_t e)
{
  return e ? tl_errname (e) : "success";
}

static void
push (struct rz *r, const struct chunk *ch)
{
  if (r->qlen == r->qcap) {
    size_t ncap = r->qcap ? 2 * r->qcap : 256;
    struct chunk *q = malloc (ncap * sizeof *q);
    EXPECT (q, "out of memory");
    for (size_t i = 0; i < r->qlen; i++)
      q[i] = r->q[(r->qhead + i) % r->qcap];
    free (r->q);
    r->q = q;
    r->qcap = ncap;
    r->qhead = 0;
  }
  r->q[(r->qhead + r->qlen) % r->qcap] = *ch;
  r->qlen++;
}

/* Read one reply or chunk into ch; data of READ goes to rbuf (request
 * offset roff) if non-NULL.
 */
static void
recv_one (struct rz *r, struct chunk *ch, void *rbuf, uint64_t roff,
          const char *what)
{
  struct nbdp_client_reply rep;

  if (nbdp_client_recv_reply (r->c, &rep, 64 * TL_MIB, -1) == -1)
    tl_fail ("%s: reading a reply: %s", what, nbdp_client_error (r->c));
  memset (ch, 0, sizeof *ch);
  ch->cookie = rep.hdr.cookie;
  ch->simple = rep.hdr.kind == NBDP_REPLY_SIMPLE;
  ch->flags = ch->simple ? NBD_REPLY_FLAG_DONE : rep.hdr.flags;
  ch->type = rep.hdr.type;
  ch->hoffset = rep.hdr.offset;
  ch->plen = rep.payload_len;
  if (ch->simple) {
    ch->error = rep.hdr.error;
    if (rbuf && rep.payload_len)
      memcpy (rbuf, rep.payload, rep.payload_len);
    return;
  }
  if (ch->type & (1 << 15)) {
    ch->error = rep.payload_len >= 4 ? nbdp_get32 (rep.payload) : NBD_EIO;
    return;
  }
  if (ch->type == NBD_REPLY_TYPE_RESIZE && rep.payload_len >= 16) {
    ch->size = nbdp_get64 (rep.payload);
    ch->events = nbdp_get32 (rep.payload + 8);
    ch->seq = nbdp_get32 (rep.payload + 12);
  }
  if (rbuf && ch->type == NBD_REPLY_TYPE_OFFSET_DATA &&
      rep.payload_len >= 8) {
    uint64_t off = nbdp_get64 (rep.payload);
    memcpy ((char *) rbuf + (off - roff), rep.payload + 8,
            rep.payload_len - 8);
  }
  if (rbuf && ch->type == NBD_REPLY_TYPE_OFFSET_HOLE &&
      rep.payload_len == 12) {
    uint64_t off = nbdp_get64 (rep.payload);
    memset ((char *) rbuf + (off - roff), 0, nbdp_get32 (rep.payload + 8));
  }
}

/* Send a request, collect its reply; other cookies are queued. */
static void
cmd (struct rz *r, uint16_t type, uint16_t flags, uint64_t offset,
     uint64_t count, const void *payload, void *rbuf, struct res *res,
     const char *what)
{
  struct nbdp_request req = {
    .type = type, .flags = flags, .offset = offset, .count = count,
  };
  size_t plen = 0;

  memset (res, 0, sizeof *res);
  if (type == NBD_CMD_WRITE) {
    plen = count;
    if (r->c->extended)
      req.flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  }
  req.cookie = nbdp_client_next_cookie (r->c);
  if (nbdp_client_send_request (r->c, &req, NBDP_LAYOUT_AUTO, payload,
                                plen) == -1)
    tl_fail ("%s: sending: %s", what, nbdp_client_error (r->c));
  for (;;) {
    struct chunk ch;
    recv_one (r, &ch, rbuf, offset, what);
    if (ch.cookie != req.cookie) {
      push (r, &ch);
      continue;
    }
    if (res->nch < MAXCH)
      res->ch[res->nch++] = ch;
    if (ch.error && !res->error)
      res->error = ch.error;
    if (!ch.simple && ch.type == NBD_REPLY_TYPE_RESIZE) {
      res->nresize++;
      res->rs = ch;
    }
    if (ch.flags & NBD_REPLY_FLAG_DONE)
      break;
  }
}

/* Set size; returns the NBD error. */
static uint32_t
set_size (struct rz *r, uint64_t size, uint16_t flags, struct res *res)
{
  char what[96];

  snprintf (what, sizeof what, "NBD_CMD_RESIZE set size %" PRIu64, size);
  cmd (r, NBD_CMD_RESIZE, flags, size, 0, NULL, NULL, res, what);
  return res->error;
}

static void
query (struct rz *r, struct res *res)
{
  cmd (r, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, NULL, NULL, res,
       "NBD_CMD_RESIZE query");
}

/* Subscribe: sends the request and reads its first chunk. */
static struct chunk
subscribe (struct rz *r)
{
  struct nbdp_request req = {
    .type = NBD_CMD_RESIZE, .flags = NBD_CMD_FLAG_RESIZE_NOTIFY,
  };
  struct chunk ch;

  req.cookie = nbdp_client_next_cookie (r->c);
  if (nbdp_client_send_request (r->c, &req, NBDP_LAYOUT_AUTO, NULL, 0) == -1)
    tl_fail ("subscribe: sending: %s", nbdp_client_error (r->c));
  recv_one (r, &ch, NULL, 0, "subscribe");
  EXPECT (ch.cookie == req.cookie, "subscribe: first chunk has cookie %"
          PRIu64 "; expected %" PRIu64 " (RZ-SUB-2)", ch.cookie, req.cookie);
  if (!ch.error)
    r->sub_cookie = req.cookie;
  return ch;
}

/* The next chunk of another cookie (a notification), waiting at most ms.
 * false if none came.
 */
static bool
next_note (struct rz *r, int ms, struct chunk *ch)
{
  if (r->qlen) {
    *ch = r->q[r->qhead];
    r->qhead = (r->qhead + 1) % r->qcap;
    r->qlen--;
    return true;
  }
  if (tl_peer_state (r->c, ms) != TL_PEER_DATA)
    return false;
  recv_one (r, ch, NULL, 0, "waiting for a notification");
  return true;
}

static void
send_option_data (struct rz *r, uint32_t opt, const void *data, uint32_t len)
{
  if (nbdp_client_send_option (r->c, opt, data, len) == -1)
    tl_fail ("sending option %" PRIu32 ": %s", opt, nbdp_client_error (r->c));
}

/* NBD_OPT_INFO or NBD_OPT_GO for "" listing NBD_INFO_BLOCK_SIZE and, if
 * list, NBD_INFO_RESIZE.  Returns the final reply type.
 */
static uint32_t
info_go (struct rz *r, bool go, bool list)
{
  unsigned char d[4 + 2 + 4];
  uint16_t n = list ? 2 : 1;
  const uint32_t opt = go ? NBD_OPT_GO : NBD_OPT_INFO;

  nbdp_put32 (d, 0);
  nbdp_put16 (d + 4, n);
  nbdp_put16 (d + 6, NBD_INFO_BLOCK_SIZE);
  nbdp_put16 (d + 8, NBD_INFO_RESIZE);
  send_option_data (r, opt, d, 6 + 2 * n);
  r->n_info = 0;
  for (;;) {
    struct nbdp_opt_reply rep;
    if (nbdp_client_recv_option_reply (r->c, &rep, 65536) == -1)
      tl_fail ("%s: %s", go ? "NBD_OPT_GO" : "NBD_OPT_INFO",
               nbdp_client_error (r->c));
    if (rep.reply == NBD_REP_INFO && rep.length >= 2) {
      uint16_t t = nbdp_get16 (rep.payload);
      if (t == NBD_INFO_EXPORT && rep.length == 12) {
        r->size = nbdp_get64 (rep.payload + 2);
        r->eflags = nbdp_get16 (rep.payload + 10);
      }
      else if (t == NBD_INFO_RESIZE) {
        r->n_info++;
        r->info_len = rep.length;
        if (rep.length == NBD_RESIZE_INFO_LEN) {
          r->caps = nbdp_get32 (rep.payload + 2);
          r->active = nbdp_get32 (rep.payload + 6);
          r->gran = nbdp_get32 (rep.payload + 10);
          r->maxsz = nbdp_get64 (rep.payload + 14);
        }
      }
      continue;
    }
    if (rep.reply == NBD_REP_ACK && go) {
      r->c->transmission = true;
      r->c->size = r->size;
      r->c->eflags = r->eflags;
    }
    return rep.reply;
  }
}

static struct rz *
rz_open (const struct tl_server *s, const struct rzo *o)
{
  struct rz *r = calloc (1, sizeof *r);
  uint32_t rep;

  EXPECT (r, "out of memory");
  r->c = tl_newstyle (s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  if (o->sr && nbdp_client_opt_structured_reply (r->c) == -1)
    tl_fail ("NBD_OPT_STRUCTURED_REPLY: %s", nbdp_client_error (r->c));
  if (o->eh && nbdp_client_opt_extended_headers (r->c) == -1)
    tl_fail ("NBD_OPT_EXTENDED_HEADERS: %s", nbdp_client_error (r->c));
  if (o->opt) {
    unsigned char f[4];
    nbdp_put32 (f, o->feat);
    send_option_data (r, NBD_OPT_RESIZE, f, 4);
    r->opt_rep = tl_opt_final (r->c, NBD_OPT_RESIZE, "NBD_OPT_RESIZE");
  }
  if (o->export_name) {
    struct nbdp_export e;
    if (nbdp_client_opt_export_name (r->c, "", &e) == -1)
      tl_fail ("NBD_OPT_EXPORT_NAME: %s", nbdp_client_error (r->c));
    r->size = r->c->size;
    r->eflags = r->c->eflags;
    return r;
  }
  if (o->info_first)
    EXPECT (info_go (r, false, o->list) == NBD_REP_ACK,
            "NBD_OPT_INFO: refused");
  rep = info_go (r, true, o->list);
  if (rep != NBD_REP_ACK) {
    if (o->expect_refused)
      return NULL;
    tl_fail ("NBD_OPT_GO: got %s; expected NBD_REP_ACK", tl_repname (rep));
  }
  return r;
}

static void
rz_close (struct rz *r)
{
  nbdp_client_free (r->c);
  free (r->q);
  free (r);
}

/* Negotiated connection asking for everything, with structured replies. */
static struct rz *
open_all (const struct tl_server *s)
{
  struct rzo o = { .sr = true, .opt = true, .feat = ALL, .list = true };
  return rz_open (s, &o);
}

static struct rz *
open_plain (const struct tl_server *s)
{
  struct rzo o = { .sr = true, .list = true };
  return rz_open (s, &o);
}

/* Current size as a new connection sees it. */
static uint64_t
fresh_size (const struct tl_server *s)
{
  struct rz *r = open_plain (s);
  uint64_t v = r->size;
  rz_close (r);
  return v;
}

static void
check_resize_chunk (const struct res *res, uint64_t size, uint32_t events,
                    const char *what)
{
  EXPECT (res->error == 0, "%s: got %s; expected success", what,
          ename (res->error));
  EXPECT (res->nch == 1 && res->nresize == 1 &&
          (res->rs.flags & NBD_REPLY_FLAG_DONE),
          "%s: got %zu chunks (%d size chunks, DONE %s); expected exactly "
          "one NBD_REPLY_TYPE_RESIZE with DONE (RZ-SET-12/RZ-QUERY-1)",
          what, res->nch, res->nresize,
          res->rs.flags & NBD_REPLY_FLAG_DONE ? "set" : "clear");
  EXPECT (res->rs.plen == 16, "%s: payload length %" PRIu64 "; expected 16 "
          "(RZ-CHUNK-1)", what, res->rs.plen);
  EXPECT (res->rs.size == size, "%s: size chunk reports %" PRIu64
          "; expected %" PRIu64 " (RZ-SET-13)", what, res->rs.size, size);
  EXPECT (res->rs.events == events, "%s: events 0x%" PRIx32 "; expected "
          "0x%" PRIx32 " (RZ-CHUNK-5..12)", what, res->rs.events, events);
}

/* ---- The control socket ---- */

static char ctl_path[256];

static const char *
ctl_start_arg (void)
{
  static char arg[300];
  const char *d = getenv ("NBDP_TEST_DIR");

  snprintf (ctl_path, sizeof ctl_path, "%s/ctl%d", d && *d ? d : "/tmp",
            (int) getpid ());
  snprintf (arg, sizeof arg, "--control=%s", ctl_path);
  return arg;
}

static int
ctl_connect (void)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (strlen (ctl_path) >= sizeof sa.sun_path)
    tl_fail ("control socket path %s is too long", ctl_path);
  memcpy (sa.sun_path, ctl_path, strlen (ctl_path) + 1);
  if (fd == -1 || connect (fd, (struct sockaddr *) &sa, sizeof sa) == -1)
    tl_fail ("connecting to the control socket %s: %m", ctl_path);
  return fd;
}

static void
ctl_read_line (int fd, char *out, size_t n)
{
  size_t k = 0;

  while (k + 1 < n) {
    char ch;
    ssize_t r = read (fd, &ch, 1);
    if (r <= 0)
      tl_fail ("control socket closed without an answer");
    if (ch == '\n')
      break;
    out[k++] = ch;
  }
  out[k] = '\0';
}

/* One control command; fails the test unless the answer is "ok ..."
 * (or an error when want_ok is false).  Returns the answer.
 */
static const char *
ctl (bool want_ok, const char *fmt, ...)
{
  static char ans[512];
  char line[256];
  va_list ap;
  int fd = ctl_connect ();
  size_t n;

  va_start (ap, fmt);
  vsnprintf (line, sizeof line - 1, fmt, ap);
  va_end (ap);
  n = strlen (line);
  line[n++] = '\n';
  if (write (fd, line, n) != (ssize_t) n)
    tl_fail ("control socket write: %m");
  ctl_read_line (fd, ans, sizeof ans);
  close (fd);
  line[n - 1] = '\0';
  if (want_ok)
    EXPECT (strncmp (ans, "ok", 2) == 0, "control \"%s\": got \"%s\"; "
            "expected ok", line, ans);
  else
    EXPECT (strncmp (ans, "error", 5) == 0, "control \"%s\": got \"%s\"; "
            "expected error", line, ans);
  return ans;
}

/* ---- Cases ---- */

static void
case_negotiate (void)
{
  struct tl_server s, off, leg;
  struct rz *r;
  struct rzo o = { .sr = true, .opt = true, .feat = 0xffffffff,
                   .list = true, .info_first = true };
  unsigned char bad[3] = { 0, 0, 0 };
  uint32_t rep, caps;

  START (&s, "--resize=negotiated", "--granularity=4K", "--max-size=1G",
         "memory", "64M");
  r = rz_open (&s, &o);
  caps = NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK | NBD_RESIZE_F_ZERO_FILL |
         NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY | NBD_RESIZE_F_NOTIFY |
         NBD_RESIZE_F_EXPORT_WIDE;
  EXPECT (r->opt_rep == NBD_REP_ACK, "NBD_OPT_RESIZE 0xffffffff: got %s; "
          "expected NBD_REP_ACK (RZ-NEG-1)", tl_repname (r->opt_rep));
  EXPECT (r->n_info == 1 && r->info_len == NBD_RESIZE_INFO_LEN,
          "GO: %d NBD_INFO_RESIZE items of length %" PRIu32 "; expected one "
          "of 22 (RZ-INFO-1, RZ-INFO-3, RZ-INFO-4)", r->n_info, r->info_len);
  EXPECT (r->caps == caps, "capabilities 0x%" PRIx32 "; expected 0x%" PRIx32
          " (defaults, no reserved bits: RZ-VAL-1)", r->caps, caps);
  EXPECT (r->active == (caps & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW),
          "active 0x%" PRIx32 " after requesting 0xffffffff; expected the "
          "capabilities 0x%" PRIx32 " (RZ-NEG-6, RZ-NEG-9, RZ-INFO-5)",
          r->active, caps);
  EXPECT (r->gran == 4096 && r->maxsz == TL_GIB, "granularity %" PRIu32
          " max %" PRIu64 "; expected 4096 and 1G (RZ-INFO-7, RZ-INFO-9)",
          r->gran, r->maxsz);
  EXPECT (r->eflags & NBD_FLAG_SEND_RESIZE, "NBD_FLAG_SEND_RESIZE missing "
          "with GROW active (RZ-FLAG-1)");
  tl_ok ("NBD_OPT_RESIZE acked, NBD_INFO_RESIZE caps 0x%" PRIx32 " active "
         "0x%" PRIx32 " G 4096 max 1G, SEND_RESIZE set", r->caps, r->active);
  rz_close (r);

  /* Without structured replies SIZE_REPLY, QUERY and NOTIFY drop out. */
  o.sr = false;
  o.info_first = false;
  r = rz_open (&s, &o);
  EXPECT (r->active == (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK |
                        NBD_RESIZE_F_ZERO_FILL | NBD_RESIZE_F_EXPORT_WIDE),
          "active without structured replies 0x%" PRIx32 "; expected "
          "GROW|SHRINK|ZERO_FILL|EXPORT_WIDE (RZ-NEG-9, section 3.2)",
          r->active);
  rz_close (r);
  tl_ok ("prerequisites: no SIZE_REPLY/QUERY/NOTIFY without structured "
         "replies (RZ-NEG-9)");

  /* AUTO_GROW only (not offered): nothing active, no flag. */
  o.sr = true;
  o.feat = NBD_RESIZE_F_AUTO_GROW;
  r = rz_open (&s, &o);
  EXPECT (r->active == 0 && !(r->eflags & NBD_FLAG_SEND_RESIZE),
          "requesting only AUTO_GROW (not offered): active 0x%" PRIx32
          " flags 0x%x; expected 0 and no SEND_RESIZE (RZ-FLAG-2)",
          r->active, r->eflags);
  rz_close (r);
  tl_ok ("nothing active: NBD_FLAG_SEND_RESIZE clear (RZ-FLAG-2)");

  /* Discovery without the option: capabilities, active 0; a client that
   * lists nothing gets legacy mode (SEND_RESIZE by --legacy-fallback).
   */
  {
    struct rzo p = { .sr = true, .list = true };
    r = rz_open (&s, &p);
    EXPECT (r->n_info == 1 && r->active == 0 && r->caps == caps,
            "INFO_RESIZE listed without NBD_OPT_RESIZE: %d items, active "
            "0x%" PRIx32 "; expected one, active 0 (RZ-NEG-10, RZ-NEG-12)",
            r->n_info, r->active);
    EXPECT (r->eflags & NBD_FLAG_SEND_RESIZE, "non-negotiating client: no "
            "NBD_FLAG_SEND_RESIZE; expected legacy mode (RZ-FLAG-3, "
            "--legacy-fallback=on)");
    rz_close (r);
  }
  tl_ok ("discovery: capabilities with active 0, legacy flag (RZ-NEG-10)");

  /* Bad length, repeat replaces. */
  r = calloc (1, sizeof *r);
  r->c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  send_option_data (r, NBD_OPT_RESIZE, bad, 3);
  rep = tl_opt_final (r->c, NBD_OPT_RESIZE, "NBD_OPT_RESIZE length 3");
  EXPECT (rep == NBD_REP_ERR_INVALID, "NBD_OPT_RESIZE with 3 bytes: got %s; "
          "expected NBD_REP_ERR_INVALID (RZ-NEG-2)", tl_repname (rep));
  {
    unsigned char f[4];
    nbdp_put32 (f, ALL);
    send_option_data (r, NBD_OPT_RESIZE, f, 4);
    tl_opt_final (r->c, NBD_OPT_RESIZE, "NBD_OPT_RESIZE");
    nbdp_put32 (f, NBD_RESIZE_F_SHRINK);
    send_option_data (r, NBD_OPT_RESIZE, f, 4);
    rep = tl_opt_final (r->c, NBD_OPT_RESIZE, "NBD_OPT_RESIZE again");
    EXPECT (rep == NBD_REP_ACK, "repeated NBD_OPT_RESIZE: %s; expected ACK "
            "(RZ-NEG-7)", tl_repname (rep));
    EXPECT (info_go (r, true, true) == NBD_REP_ACK, "GO refused");
    EXPECT (r->active == NBD_RESIZE_F_SHRINK, "active 0x%" PRIx32 " after "
            "requesting ALL then SHRINK; expected SHRINK only, the latest "
            "wins (RZ-NEG-7)", r->active);
  }
  rz_close (r);
  tl_ok ("bad length refused (RZ-NEG-2); the latest request wins "
         "(RZ-NEG-7)");

  /* EXPORT_NAME after an acked NBD_OPT_RESIZE: legacy mode. */
  {
    struct rzo p = { .sr = true, .opt = true, .feat = ALL,
                     .export_name = true };
    struct res res;
    r = rz_open (&s, &p);
    EXPECT (r->eflags & NBD_FLAG_SEND_RESIZE, "EXPORT_NAME: no "
            "SEND_RESIZE; expected legacy mode");
    query (r, &res);
    EXPECT (res.error == NBD_EINVAL, "query after EXPORT_NAME: got %s; "
            "expected NBD_EINVAL: legacy mode (RZ-NEG-13, RZ-LEG-1)",
            ename (res.error));
    rz_close (r);
  }
  tl_ok ("NBD_OPT_EXPORT_NAME means legacy mode (RZ-NEG-13)");

  /* --resize=off and legacy answer NBD_ERR_UNSUP and send no item. */
  START (&off, "memory", "1M");
  START (&leg, "--resize=legacy", "memory", "1M");
  for (int k = 0; k < 2; k++) {
    struct rzo p = { .sr = true, .opt = true, .feat = ALL, .list = true };
    r = rz_open (k ? &leg : &off, &p);
    EXPECT (r->opt_rep == NBD_REP_ERR_UNSUP && r->n_info == 0,
            "--resize=%s: NBD_OPT_RESIZE %s, %d info items; expected "
            "NBD_REP_ERR_UNSUP and none (RZ-NEG-3, section 13.5)",
            k ? "legacy" : "off", tl_repname (r->opt_rep), r->n_info);
    EXPECT (!!(r->eflags & NBD_FLAG_SEND_RESIZE) == (k == 1),
            "--resize=%s: SEND_RESIZE %s", k ? "legacy" : "off",
            r->eflags & NBD_FLAG_SEND_RESIZE ? "set" : "clear");
    rz_close (r);
  }
  tl_ok ("--resize=off/legacy: NBD_REP_ERR_UNSUP, no NBD_INFO_RESIZE "
         "(RZ-NEG-3)");
}

static void
case_set_simple (void)
{
  struct tl_server s, ng;
  struct rz *r;
  struct res res;
  struct rzo o = { .sr = false, .opt = true, .feat = ALL, .list = true };
  uint32_t e;

  /* The profile plus an explicit switch, which wins. */
  START (&s, "--profile", "explicit-simple", "--granularity=4K",
         "--max-size=128M", "memory", "64M");
  r = rz_open (&s, &o);
  EXPECT (!(r->caps & (NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY |
                       NBD_RESIZE_F_NOTIFY)) && r->gran == 4096,
          "explicit-simple + --granularity=4K: caps 0x%" PRIx32 " G %" PRIu32
          "; expected no SIZE_REPLY/QUERY/NOTIFY and G 4096 (explicit "
          "switches win over the profile)", r->caps, r->gran);
  e = set_size (r, 96 * TL_MIB, 0, &res);
  EXPECT (e == 0 && res.nch == 1 && res.ch[0].simple,
          "grow to 96M: %s, %zu replies; expected one simple success "
          "(RZ-SET-11)", ename (e), res.nch);
  EXPECT (fresh_size (&s) == 96 * TL_MIB, "size after growing to 96M is %"
          PRIu64 "; expected exactly 96M (RZ-SET-8)", fresh_size (&s));
  e = set_size (r, 32 * TL_MIB, NBD_CMD_FLAG_FUA, &res);
  EXPECT (e == 0 && fresh_size (&s) == 32 * TL_MIB, "shrink to 32M with "
          "FUA: %s, size %" PRIu64, ename (e), fresh_size (&s));
  tl_ok ("grow and shrink, exact sizes, simple replies (RZ-SET-8, "
         "RZ-SET-11)");
  e = set_size (r, 32 * TL_MIB + 512, 0, &res);
  EXPECT (e == NBD_EINVAL, "set size 32M+512 (G 4096, no SIZE_REPLY): %s; "
          "expected NBD_EINVAL (RZ-SET-9, RZ-REQ-8)", ename (e));
  e = set_size (r, 256 * TL_MIB, 0, &res);
  EXPECT (e == NBD_ENOSPC, "set size 256M over --max-size=128M: %s; "
          "expected NBD_ENOSPC (RZ-SET-10)", ename (e));
  e = set_size (r, UINT64_C (1) << 63, 0, &res);
  EXPECT (e == NBD_EINVAL, "set size 2^63: %s; expected NBD_EINVAL "
          "(RZ-SET-3)", ename (e));
  EXPECT (fresh_size (&s) == 32 * TL_MIB, "failures changed the size to %"
          PRIu64 " (RZ-REQ-6)", fresh_size (&s));
  e = set_size (r, 32 * TL_MIB, 0, &res);
  EXPECT (e == 0, "set size to the current size: %s; expected success "
          "(RZ-SET-4)", ename (e));
  cmd (r, NBD_CMD_RESIZE, 0, 64 * TL_MIB, 1, NULL, NULL, &res, "length 1");
  EXPECT (res.error == NBD_EINVAL, "set size with length 1: %s; expected "
          "NBD_EINVAL (RZ-REQ-4)", ename (res.error));
  cmd (r, NBD_CMD_RESIZE, NBD_CMD_FLAG_DF, 64 * TL_MIB, 0, NULL, NULL, &res,
       "flag DF");
  EXPECT (res.error == NBD_EINVAL, "set size with NBD_CMD_FLAG_DF: %s; "
          "expected NBD_EINVAL (RZ-REQ-1)", ename (res.error));
  query (r, &res);
  EXPECT (res.error == NBD_EINVAL, "query with QUERY inactive: %s; expected "
          "NBD_EINVAL (RZ-REQ-2)", ename (res.error));
  cmd (r, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_NOTIFY, 0, 0, NULL, NULL, &res,
       "subscribe");
  EXPECT (res.error == NBD_EINVAL, "subscribe with NOTIFY inactive: %s; "
          "expected NBD_EINVAL (RZ-REQ-3)", ename (res.error));
  EXPECT (fresh_size (&s) == 32 * TL_MIB, "rejected requests changed the "
          "size (RZ-REQ-6)");
  tl_ok ("EINVAL for unaligned, 2^63, length, flags, inactive forms; ENOSPC "
         "over the maximum; size unchanged (RZ-SET-3/9/10, RZ-REQ-1..6)");
  rz_close (r);

  /* Directions switched off. */
  START (&ng, "--resize=negotiated", "--resize-grow=off", "memory", "1M");
  o.sr = true;
  r = rz_open (&ng, &o);
  EXPECT (!(r->active & NBD_RESIZE_F_GROW), "--resize-grow=off: GROW "
          "active");
  e = set_size (r, 2 * TL_MIB, 0, &res);
  EXPECT (e == NBD_EPERM, "grow with GROW inactive: %s; expected NBD_EPERM "
          "(RZ-SET-1, RZ-REQ-8)", ename (e));
  e = set_size (r, TL_MIB / 2, 0, &res);
  EXPECT (e == 0, "shrink with SHRINK active: %s", ename (e));
  rz_close (r);
  o.feat = NBD_RESIZE_F_QUERY | NBD_RESIZE_F_SIZE_REPLY;
  r = rz_open (&ng, &o);
  e = set_size (r, TL_MIB / 2, 0, &res);
  EXPECT (e == NBD_EPERM, "set size with neither GROW nor SHRINK active: "
          "%s; expected NBD_EPERM (RZ-SET-18)", ename (e));
  rz_close (r);
  tl_ok ("directions: EPERM when not active (RZ-SET-1, RZ-SET-18)");
}

static void
case_set_structured (void)
{
  struct tl_server s;
  struct rz *r;
  struct res res;
  struct rzo o = { .sr = true, .opt = true, .feat = ALL, .list = true };
  const uint64_t K64 = 64 * TL_KIB;
  uint32_t seq0;

  START (&s, "--profile=explicit-structured", "memory", "1M");
  for (int eh = 0; eh < 2; eh++) {
    o.eh = eh;
    r = rz_open (&s, &o);
    EXPECT (r->active & NBD_RESIZE_F_SIZE_REPLY, "SIZE_REPLY not active");
    query (r, &res);
    seq0 = res.rs.seq;
    set_size (r, 2 * TL_MIB + 1, 0, &res);
    check_resize_chunk (&res, 2 * TL_MIB + K64, NBD_RESIZE_EV_GREW |
                        NBD_RESIZE_EV_ZEROED | NBD_RESIZE_EV_ROUNDED,
                        "grow to 2M+1 (G 64K)");
    EXPECT (res.rs.seq == seq0 + 1, "sequence %" PRIu32 " after one change "
            "from %" PRIu32 "; expected +1 (RZ-SEQ-1)", res.rs.seq, seq0);
    if (eh)
      EXPECT (res.rs.hoffset == 2 * TL_MIB + 1, "extended reply offset %"
              PRIu64 "; expected the request offset (RZ-EH-3)",
              res.rs.hoffset);
    set_size (r, TL_MIB + 5, 0, &res);
    check_resize_chunk (&res, TL_MIB + K64, NBD_RESIZE_EV_SHRANK |
                        NBD_RESIZE_EV_ROUNDED, "shrink to 1M+5 (G 64K)");
    set_size (r, TL_MIB + 7, 0, &res);
    check_resize_chunk (&res, TL_MIB + K64, NBD_RESIZE_EV_ROUNDED,
                        "shrink to 1M+7 rounding to the current size");
    EXPECT (res.rs.seq == seq0 + 2, "a set size without change moved the "
            "sequence to %" PRIu32 " (RZ-SEQ-1)", res.rs.seq);
    set_size (r, TL_MIB, 0, &res);
    check_resize_chunk (&res, TL_MIB, NBD_RESIZE_EV_SHRANK, "shrink to 1M");
    set_size (r, TL_MIB, 0, &res);
    check_resize_chunk (&res, TL_MIB, 0, "set size to the current size "
                        "(RZ-SET-4)");
    rz_close (r);
  }
  tl_ok ("size chunks with DONE, rounding up to G, events, sequence, "
         "compact and extended (RZ-SET-12..17, RZ-CHUNK-5..11, RZ-SEQ-1, "
         "RZ-EH-3)");

  /* Without structured replies: exact or fail (RZ-SET-8, RZ-SET-9). */
  o.sr = false;
  o.eh = false;
  r = rz_open (&s, &o);
  EXPECT (set_size (r, TL_MIB + 1, 0, &res) == NBD_EINVAL, "simple "
          "replies, set size 1M+1: %s; expected NBD_EINVAL (RZ-SET-9)",
          ename (res.error));
  EXPECT (set_size (r, 2 * TL_MIB, 0, &res) == 0 && res.ch[0].simple,
          "simple replies, set size 2M: %s", ename (res.error));
  rz_close (r);
  tl_ok ("no SIZE_REPLY: exact sizes only (RZ-SET-8, RZ-SET-9)");
}

static void
case_quota (void)
{
  struct tl_server s;
  struct rz *r;
  struct res res;

  START (&s, "--profile=quota", "memory", "1M");
  r = open_all (&s);
  EXPECT (r->maxsz == TL_GIB, "quota: max size %" PRIu64 "; expected 1G",
          r->maxsz);
  set_size (r, 2 * TL_GIB, 0, &res);
  check_resize_chunk (&res, TL_GIB, NBD_RESIZE_EV_GREW |
                      NBD_RESIZE_EV_ZEROED | NBD_RESIZE_EV_CAPPED,
                      "grow to 2G with a 1G quota");
  tl_ok ("capped to the quota with CAPPED (RZ-SET-15, RZ-CHUNK-10)");
  EXPECT (set_size (r, 3 * TL_GIB, 0, &res) == NBD_ENOSPC, "grow to 3G "
          "at the quota already: %s; expected NBD_ENOSPC (RZ-SET-15)",
          ename (res.error));
  EXPECT (fresh_size (&s) == TL_GIB, "size %" PRIu64 " after the failed "
          "growth (RZ-REQ-6)", fresh_size (&s));
  tl_ok ("a cap that does not grow fails with NBD_ENOSPC (RZ-SET-15)");
  rz_close (r);
}

static void
case_query (void)
{
  struct tl_server s;
  struct rz *r;
  struct res res, res2;

  START (&s, "--profile=notify", "--sequence-start=7", "memory", "4M");
  r = open_all (&s);
  query (r, &res);
  check_resize_chunk (&res, 4 * TL_MIB, NBD_RESIZE_EV_INITIAL, "query");
  EXPECT (res.rs.seq == 7, "query sequence %" PRIu32 "; expected the "
          "--sequence-start 7 (RZ-QUERY-2)", res.rs.seq);
  query (r, &res2);
  EXPECT (res2.rs.seq == 7 && res2.rs.size == 4 * TL_MIB, "a second query "
          "saw sequence %" PRIu32 " size %" PRIu64 " (RZ-QUERY-3)",
          res2.rs.seq, res2.rs.size);
  cmd (r, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_QUERY, 4096, 0, NULL, NULL,
       &res, "query offset 4096");
  EXPECT (res.error == NBD_EINVAL, "query with offset 4096: %s; expected "
          "NBD_EINVAL (RZ-REQ-5)", ename (res.error));
  tl_ok ("query: one snapshot chunk with DONE, INITIAL, sequence; offset "
         "checked (RZ-QUERY-1..3, RZ-REQ-5)");
  rz_close (r);
}

static void
case_subscribe (void)
{
  struct tl_server s;
  struct rz *a, *b;
  struct res res;
  struct chunk ch, first;
  uint64_t cookie;

  START (&s, "--profile=notify", "--notify-rate=0", "memory", "1M");
  a = open_all (&s);
  b = open_all (&s);
  first = subscribe (a);
  cookie = a->sub_cookie;
  EXPECT (first.type == NBD_REPLY_TYPE_RESIZE && first.flags == 0 &&
          first.events == NBD_RESIZE_EV_INITIAL && first.size == TL_MIB,
          "first chunk: type %u flags 0x%x events 0x%" PRIx32 " size %"
          PRIu64 "; expected a snapshot, flags 0, INITIAL, 1M (RZ-SUB-2, "
          "RZ-SUB-4)", first.type, first.flags, first.events, first.size);
  tl_ok ("subscribe: snapshot chunk without DONE (RZ-SUB-2, RZ-SUB-3)");
  cmd (a, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_NOTIFY, 0, 0, NULL, NULL, &res,
       "second subscribe");
  EXPECT (res.error == NBD_EINVAL, "second subscribe: %s; expected "
          "NBD_EINVAL (RZ-SUB-1)", ename (res.error));
  tl_ok ("second subscribe refused (RZ-SUB-1)");

  /* Own change: the notification comes before the reply (RZ-SUB-7). */
  set_size (a, 2 * TL_MIB, 0, &res);
  EXPECT (res.error == 0, "set size 2M: %s", ename (res.error));
  EXPECT (next_note (a, 0, &ch), "own set size: no notification before "
          "the reply (RZ-SUB-5, RZ-SUB-7)");
  EXPECT (ch.cookie == cookie && ch.flags == 0 && ch.size == 2 * TL_MIB &&
          ch.events == (NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED) &&
          ch.seq == first.seq + 1,
          "own change notification: cookie %" PRIu64 " flags 0x%x size %"
          PRIu64 " events 0x%" PRIx32 " seq %" PRIu32 "; expected GREW|ZEROED"
          " without REMOTE, seq %" PRIu32 " (RZ-CHUNK-5, RZ-CHUNK-9, "
          "RZ-SEQ-2)", ch.cookie, ch.flags, ch.size, ch.events, ch.seq,
          first.seq + 1);
  tl_ok ("own change notified before the reply, no REMOTE (RZ-SUB-7)");

  /* Another connection's change: REMOTE. */
  set_size (b, TL_MIB / 2, 0, &res);
  EXPECT (res.error == 0, "set size on b: %s", ename (res.error));
  EXPECT (next_note (a, 5000, &ch), "remote change: no notification within "
          "5 s (RZ-SUB-5, RZ-FLOOD-4)");
  EXPECT (ch.size == TL_MIB / 2 && ch.events == (NBD_RESIZE_EV_SHRANK |
                                                 NBD_RESIZE_EV_REMOTE),
          "remote change: size %" PRIu64 " events 0x%" PRIx32 "; expected "
          "512K SHRANK|REMOTE (RZ-CHUNK-9, RZ-MC-2)", ch.size, ch.events);
  tl_ok ("another connection's change: REMOTE (RZ-CHUNK-9)");

  /* Other requests keep working (RZ-SUB-8). */
  {
    char buf[4096] = { 1 };
    cmd (a, NBD_CMD_WRITE, 0, 0, sizeof buf, buf, NULL, &res, "write");
    EXPECT (res.error == 0, "write while subscribed: %s (RZ-SUB-8)",
            ename (res.error));
    cmd (a, NBD_CMD_READ, 0, 0, sizeof buf, NULL, buf, &res, "read");
    EXPECT (res.error == 0 && buf[0] == 1, "read while subscribed: %s",
            ename (res.error));
  }
  tl_ok ("I/O while subscribed (RZ-SUB-8)");

  /* Unsubscribe: NONE+DONE on the subscription cookie, then the answer. */
  {
    struct nbdp_request req = {
      .type = NBD_CMD_RESIZE,
      .flags = NBD_CMD_FLAG_RESIZE_NOTIFY | NBD_CMD_FLAG_RESIZE_QUERY,
    };
    struct chunk c1, c2;
    req.cookie = nbdp_client_next_cookie (a->c);
    nbdp_client_send_request (a->c, &req, NBDP_LAYOUT_AUTO, NULL, 0);
    recv_one (a, &c1, NULL, 0, "unsubscribe");
    recv_one (a, &c2, NULL, 0, "unsubscribe");
    EXPECT (c1.cookie == cookie && c1.type == NBD_REPLY_TYPE_NONE &&
            c1.flags == NBD_REPLY_FLAG_DONE,
            "unsubscribe: first chunk cookie %" PRIu64 " type %u flags 0x%x;"
            " expected NONE+DONE on the subscription %" PRIu64
            " (RZ-SUB-12)", c1.cookie, c1.type, c1.flags, cookie);
    EXPECT (c2.cookie == req.cookie && c2.type == NBD_REPLY_TYPE_RESIZE &&
            c2.flags == NBD_REPLY_FLAG_DONE &&
            c2.events == NBD_RESIZE_EV_INITIAL && c2.size == TL_MIB / 2,
            "unsubscribe answer: type %u flags 0x%x events 0x%" PRIx32
            " size %" PRIu64 "; expected a snapshot with DONE (RZ-SUB-11)",
            c2.type, c2.flags, c2.events, c2.size);
  }
  cmd (a, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_NOTIFY |
       NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, NULL, NULL, &res, "unsubscribe 2");
  EXPECT (res.error == NBD_EINVAL, "unsubscribe without subscription: %s; "
          "expected NBD_EINVAL (RZ-SUB-9)", ename (res.error));
  set_size (b, TL_MIB, 0, &res);
  EXPECT (!next_note (a, 300, &ch), "a notification (cookie %" PRIu64 ") "
          "after the subscription ended (RZ-SUB-16)", ch.cookie);
  tl_ok ("unsubscribe: NONE+DONE then snapshot+DONE; nothing after "
         "(RZ-SUB-9, RZ-SUB-11, RZ-SUB-12, RZ-SUB-16)");
  /* A new subscription may reuse the cookie space. */
  first = subscribe (a);
  EXPECT (first.size == TL_MIB, "resubscribe: size %" PRIu64, first.size);
  rz_close (a);
  rz_close (b);
}

static void
case_sub_disc (void)
{
  struct tl_server s;
  struct rz *a;
  struct chunk ch;

  START (&s, "--profile=notify", "memory", "1M");
  a = open_all (&s);
  subscribe (a);
  if (nbdp_client_disc (a->c) == -1)
    tl_fail ("NBD_CMD_DISC: %s", nbdp_client_error (a->c));
  EXPECT (next_note (a, 5000, &ch), "NBD_CMD_DISC while subscribed: the "
          "server sent nothing; expected NONE+DONE (RZ-SUB-13)");
  EXPECT (ch.cookie == a->sub_cookie && ch.type == NBD_REPLY_TYPE_NONE &&
          ch.flags == NBD_REPLY_FLAG_DONE, "after NBD_CMD_DISC: type %u "
          "flags 0x%x cookie %" PRIu64 "; expected NONE+DONE on the "
          "subscription (RZ-SUB-13)", ch.type, ch.flags, ch.cookie);
  EXPECT (tl_server_closed (a->c), "the server did not close after "
          "NBD_CMD_DISC");
  tl_ok ("NBD_CMD_DISC ends the subscription with NONE+DONE, then closes "
         "(RZ-SUB-13)");
  rz_close (a);
  tl_check_alive (&s, "after DISC while subscribed");
}

static void
case_sub_shutdown (void)
{
  struct tl_server s;
  struct rz *a;
  struct chunk ch;

  START (&s, "--profile=notify", "memory", "1M");
  a = open_all (&s);
  subscribe (a);
  kill (s.pid, SIGTERM);
  EXPECT (next_note (a, 5000, &ch), "server shutdown while subscribed: "
          "nothing on the subscription (RZ-SUB-14)");
  EXPECT (ch.cookie == a->sub_cookie && ch.error == NBD_ESHUTDOWN &&
          (ch.flags & NBD_REPLY_FLAG_DONE), "shutdown: cookie %" PRIu64
          " type 0x%x error %s flags 0x%x; expected NBD_REPLY_TYPE_ERROR "
          "NBD_ESHUTDOWN with DONE (RZ-SUB-14)", ch.cookie, ch.type,
          ename (ch.error), ch.flags);
  tl_ok ("shutdown ends the subscription with NBD_ESHUTDOWN (RZ-SUB-14)");
  rz_close (a);
}

static void
case_external (void)
{
  struct tl_server s;
  struct rz *a, *b;
  struct chunk fa, fb, ca, cb;

  START (&s, "--profile=notify", ctl_start_arg (), "memory", "1M");
  a = open_all (&s);
  b = open_all (&s);
  fa = subscribe (a);
  fb = subscribe (b);
  EXPECT (strcmp (ctl (true, "subs -"), "ok 2") == 0, "control subs");
  EXPECT (strcmp (ctl (true, "resize - 8M"), "ok 8388608") == 0, "resize");
  EXPECT (strcmp (ctl (true, "size -"), "ok 8388608") == 0, "size");
  EXPECT (next_note (a, 5000, &ca) && next_note (b, 5000, &cb),
          "external resize: a watcher heard nothing within 5 s (RZ-MC-6)");
  EXPECT (ca.size == 8 * TL_MIB && cb.size == 8 * TL_MIB &&
          ca.events == (NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED |
                        NBD_RESIZE_EV_REMOTE) && ca.events == cb.events &&
          ca.seq == fa.seq + 1 && cb.seq == fb.seq + 1,
          "external resize: a got size %" PRIu64 " events 0x%" PRIx32 " seq %"
          PRIu32 ", b size %" PRIu64 " events 0x%" PRIx32 " seq %" PRIu32
          "; expected 8M GREW|ZEROED|REMOTE, seq +1 on both (RZ-MC-6, "
          "RZ-CHUNK-9)", ca.size, ca.events, ca.seq, cb.size, cb.events,
          cb.seq);
  tl_ok ("external resize heard by watchers on two connections, REMOTE "
         "(RZ-MC-6)");
  ctl (false, "resize - 9223372036854775808");
  ctl (false, "resize nosuch 1M");
  ctl (false, "bogus");
  tl_ok ("control socket: errors for a size over 2^63-1, an unknown export"
         " and an unknown command");
  rz_close (a);
  rz_close (b);
}

/* Pipelined burst of n resizes over one control connection. */
static void
ctl_burst (unsigned n, uint64_t base, uint64_t step)
{
  int fd = ctl_connect ();
  size_t cap = (size_t) n * 40, len = 0;
  char *buf = malloc (cap), line[128];

  for (unsigned i = 0; i < n; i++)
    len += snprintf (buf + len, cap - len, "resize - %" PRIu64 "\n",
                     base + (i + 1) * step);
  if (write (fd, buf, len) != (ssize_t) len)
    tl_fail ("control write: %m");
  for (unsigned i = 0; i < n; i++) {
    ctl_read_line (fd, line, sizeof line);
    EXPECT (strncmp (line, "ok ", 3) == 0, "burst resize %u: %s", i, line);
  }
  free (buf);
  close (fd);
}

static double
now_s (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void
case_coalesce (void)
{
  struct tl_server s;
  struct rz *a;
  struct chunk first, ch;
  const unsigned N = 1000;
  const uint64_t final = TL_MIB + N * 4096;
  unsigned count = 0;
  uint64_t last = TL_MIB;
  uint32_t lastseq;
  double t0, tprev = 0, mingap = 1e9;

  START (&s, "--profile=notify", ctl_start_arg (), "memory", "1M");
  a = open_all (&s);
  first = subscribe (a);
  lastseq = first.seq;
  t0 = now_s ();
  ctl_burst (N, TL_MIB, 4096);
  while (last != final) {
    EXPECT (next_note (a, 3000, &ch), "after %u notifications (last size %"
            PRIu64 "): nothing within 3 s; expected the final size %" PRIu64
            " within one rate interval (RZ-FLOOD-4)", count, last, final);
    double t = now_s ();
    if (count)
      mingap = t - tprev < mingap ? t - tprev : mingap;
    tprev = t;
    count++;
    EXPECT (ch.size != last, "notification %u repeats size %" PRIu64
            " (RZ-FLOOD-1)", count, ch.size);
    EXPECT ((uint32_t) (ch.seq - lastseq) >= 1 &&
            (uint32_t) (ch.seq - lastseq) < NBD_RESIZE_SEQ_WINDOW,
            "notification %u: sequence %" PRIu32 " not after %" PRIu32
            " (RZ-SEQ-3)", count, ch.seq, lastseq);
    last = ch.size;
    lastseq = ch.seq;
  }
  EXPECT ((uint32_t) (lastseq - first.seq) == N, "last sequence %" PRIu32
          " - first %" PRIu32 " = %" PRIu32 "; expected %u changes "
          "(RZ-SEQ-1, RZ-SEQ-2)", lastseq, first.seq, lastseq - first.seq, N);
  /* 10 per second at most: the burst took t seconds. */
  {
    double el = now_s () - t0;
    EXPECT (count <= el * 10 + 2, "%u notifications in %.2f s; expected at "
            "most %.0f at 10/s (RZ-FLOOD-2, RZ-FLOOD-3)", count, el,
            el * 10 + 2);
    EXPECT (count < 2 || mingap >= 0.09, "two notifications %.3f s apart; "
            "expected at least 0.1 s at --notify-rate=10 (RZ-FLOOD-3)",
            mingap);
    tl_ok ("1000 external resizes: %u coalesced notifications in %.2f s, "
           "min gap %.3f s, final size and sequence right (RZ-FLOOD-1..4, "
           "RZ-SEQ-1..3)", count, el, count > 1 ? mingap : 0.0);
  }
  EXPECT (!next_note (a, 300, &ch), "an extra notification (size %" PRIu64
          ") after the final size (RZ-FLOOD-1)", ch.size);
  rz_close (a);
}

static void
case_no_coalesce (void)
{
  struct tl_server s;
  struct rz *a;
  struct chunk ch;
  const unsigned N = 1000;
  unsigned count = 0;

  START (&s, "--profile=no-coalesce", ctl_start_arg (), "memory", "1M");
  a = open_all (&s);
  subscribe (a);
  ctl_burst (N, TL_MIB, 4096);
  while (count < N) {
    EXPECT (next_note (a, 3000, &ch), "no-coalesce: %u of %u notifications",
            count, N);
    count++;
    EXPECT (ch.size == TL_MIB + count * 4096, "no-coalesce notification %u"
            " size %" PRIu64, count, ch.size);
  }
  tl_ok ("negative no-coalesce profile: one notification per change, %u "
         "(breaks RZ-FLOOD-2/3 on purpose)", count);
  rz_close (a);
}

static void
fill (unsigned char *b, size_t n, unsigned char v)
{
  memset (b, v, n);
}

static bool
all_eq (const unsigned char *b, size_t n, unsigned char v)
{
  for (size_t i = 0; i < n; i++)
    if (b[i] != v)
      return false;
  return true;
}

static void
block_status (struct rz *r, uint64_t off, uint64_t len, uint32_t *flags,
              uint64_t *elen)
{
  struct nbdp_request req = {
    .type = NBD_CMD_BLOCK_STATUS, .flags = NBD_CMD_FLAG_REQ_ONE,
    .offset = off, .count = len,
  };
  struct nbdp_client_reply rep;

  req.cookie = nbdp_client_next_cookie (r->c);
  nbdp_client_send_request (r->c, &req, NBDP_LAYOUT_AUTO, NULL, 0);
  for (;;) {
    if (nbdp_client_recv_reply (r->c, &rep, TL_MIB, -1) == -1)
      tl_fail ("block status: %s", nbdp_client_error (r->c));
    if (rep.hdr.cookie != req.cookie)
      continue;
    EXPECT (rep.hdr.type == NBD_REPLY_TYPE_BLOCK_STATUS &&
            rep.payload_len >= 12, "block status reply type %u",
            rep.hdr.type);
    *elen = nbdp_get32 (rep.payload + 4);
    *flags = nbdp_get32 (rep.payload + 8);
    if (rep.hdr.flags & NBD_REPLY_FLAG_DONE)
      return;
  }
}

static struct rz *
open_meta (const struct tl_server *s, uint32_t feat)
{
  struct rz *r = calloc (1, sizeof *r);
  static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };

  r->c = tl_newstyle (s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  if (nbdp_client_opt_structured_reply (r->c) == -1 ||
      nbdp_client_opt_meta_context (r->c, true, "", q, 1, NULL, 0, NULL) ==
      -1)
    tl_fail ("handshake: %s", nbdp_client_error (r->c));
  {
    unsigned char f[4];
    nbdp_put32 (f, feat);
    send_option_data (r, NBD_OPT_RESIZE, f, 4);
    r->opt_rep = tl_opt_final (r->c, NBD_OPT_RESIZE, "NBD_OPT_RESIZE");
  }
  EXPECT (info_go (r, true, true) == NBD_REP_ACK, "GO refused");
  return r;
}

static void
case_auto_grow (void)
{
  struct tl_server s, q, no;
  struct rz *r;
  struct res res;
  static unsigned char buf[8192], rb[8192];
  uint64_t el;
  uint32_t fl;

  START (&s, "--profile=auto-grow", "memory", "64K");
  /* Without opt-in: the published rule (ENOSPC), no growth. */
  r = open_plain (&s);
  EXPECT (r->caps & NBD_RESIZE_F_AUTO_GROW, "auto-grow profile: no "
          "AUTO_GROW capability");
  fill (buf, 4096, 0x11);
  cmd (r, NBD_CMD_WRITE, 0, 128 * TL_KIB, 4096, buf, NULL, &res,
       "write past the end");
  EXPECT (res.error == NBD_ENOSPC && res.nresize == 0, "write past the end "
          "without opt-in: %s, %d size chunks; expected NBD_ENOSPC, no "
          "growth (RZ-AUTO-1)", ename (res.error), res.nresize);
  EXPECT (fresh_size (&s) == 64 * TL_KIB, "size %" PRIu64 " after a write "
          "without opt-in (RZ-AUTO-1)", fresh_size (&s));
  rz_close (r);
  tl_ok ("no growth without opt-in (RZ-AUTO-1)");

  /* With opt-in. */
  r = open_meta (&s, NBD_RESIZE_F_AUTO_GROW | NBD_RESIZE_F_SIZE_REPLY);
  EXPECT ((r->active & NBD_RESIZE_F_AUTO_GROW) &&
          !(r->eflags & NBD_FLAG_SEND_RESIZE), "AUTO_GROW alone: active "
          "0x%" PRIx32 " flags 0x%x; expected AUTO_GROW and no SEND_RESIZE "
          "(section 4.4)", r->active, r->eflags);
  cmd (r, NBD_CMD_WRITE, 0, 128 * TL_KIB, 1000, buf, NULL, &res,
       "growing write");
  EXPECT (res.error == 0 && res.nch == 2 && res.nresize == 1 &&
          res.ch[0].type == NBD_REPLY_TYPE_RESIZE && res.ch[0].flags == 0 &&
          res.ch[1].type == NBD_REPLY_TYPE_NONE,
          "growing write: %s, %zu chunks; expected a size chunk (flags 0) "
          "then NONE+DONE (RZ-AUTO-9)", ename (res.error), res.nch);
  EXPECT (res.rs.size == 132 * TL_KIB &&
          res.rs.events == (NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED |
                            NBD_RESIZE_EV_ROUNDED),
          "growing write to 128K+1000: size %" PRIu64 " events 0x%" PRIx32
          "; expected 132K (G 4K) GREW|ZEROED|ROUNDED (RZ-AUTO-2, "
          "RZ-AUTO-10, RZ-CHUNK-11)", res.rs.size, res.rs.events);
  tl_ok ("growing write: size chunk then NONE; rounded to G (RZ-AUTO-2, "
         "RZ-AUTO-9, RZ-AUTO-10)");
  /* The gap reads as zero, by read and by block status. */
  cmd (r, NBD_CMD_READ, 0, 64 * TL_KIB, 8192, NULL, (fill (rb, 8192, 0xff),
                                                     rb), &res, "read gap");
  EXPECT (res.error == 0 && all_eq (rb, 8192, 0), "the gap before a "
          "growing write does not read as zero (RZ-ZERO-1)");
  block_status (r, 64 * TL_KIB, 64 * TL_KIB, &fl, &el);
  EXPECT (fl & NBD_STATE_ZERO, "block status of the gap: flags 0x%" PRIx32
          "; expected NBD_STATE_ZERO (RZ-BS-2)", fl);
  cmd (r, NBD_CMD_READ, 0, 128 * TL_KIB, 1000, NULL, rb, &res, "read");
  EXPECT (res.error == 0 && all_eq (rb, 1000, 0x11), "the grown write's "
          "data did not read back");
  cmd (r, NBD_CMD_READ, 0, 128 * TL_KIB + 1000, 3096, NULL, rb, &res,
       "read slack");
  EXPECT (res.error == 0 && all_eq (rb, 3096, 0), "rounding slack does not "
          "read as zero (RZ-ZERO-1)");
  tl_ok ("new bytes read as zero and block status says ZERO (RZ-ZERO-1, "
         "RZ-BS-2)");
  cmd (r, NBD_CMD_WRITE, 0, 0, 4096, buf, NULL, &res, "plain write");
  EXPECT (res.error == 0 && res.nresize == 0, "a write that does not grow "
          "got %d size chunks (RZ-AUTO-12)", res.nresize);
  cmd (r, NBD_CMD_READ, 0, 256 * TL_KIB, 4096, NULL, rb, &res, "read past");
  EXPECT (res.error == NBD_EINVAL && fresh_size (&s) == 132 * TL_KIB,
          "read past the end: %s, size %" PRIu64 "; expected NBD_EINVAL "
          "and no growth (RZ-AUTO-3)", ename (res.error), fresh_size (&s));
  cmd (r, NBD_CMD_WRITE_ZEROES, 0, 512 * TL_KIB, 4096, NULL, NULL, &res,
       "growing write zeroes");
  EXPECT (res.error == 0 && res.nresize == 1 &&
          res.rs.size == 516 * TL_KIB, "growing write zeroes: %s size %"
          PRIu64, ename (res.error), res.rs.size);
  cmd (r, NBD_CMD_WRITE, 0, UINT64_MAX - 1000, 4096, buf, NULL, &res,
       "write wrapping 2^64");
  EXPECT (res.error == NBD_EINVAL && res.nresize == 0, "write whose end "
          "wraps: %s; expected NBD_EINVAL without growth (RZ-AUTO-7)",
          ename (res.error));
  rz_close (r);
  tl_ok ("no growth by reads; write zeroes grows; 64-bit overflow refused "
         "(RZ-AUTO-3, RZ-AUTO-7)");

  /* The limit. */
  START (&q, "--profile=auto-grow", "--max-size=1M", "memory", "64K");
  r = open_meta (&q, ALL);
  cmd (r, NBD_CMD_WRITE, 0, 2 * TL_MIB, 4096, buf, NULL, &res,
       "write past the max");
  EXPECT (res.error == NBD_ENOSPC && res.nresize == 0 &&
          fresh_size (&q) == 64 * TL_KIB, "growing write past --max-size: "
          "%s, size %" PRIu64 "; expected NBD_ENOSPC, size unchanged "
          "(RZ-AUTO-6, RZ-AUTO-13)", ename (res.error), fresh_size (&q));
  rz_close (r);
  tl_ok ("growth beyond the maximum fails (RZ-AUTO-6)");

  /* The negative no-optin profile grows without opt-in. */
  START (&no, "--profile=no-optin", "memory", "64K");
  r = open_plain (&no);
  cmd (r, NBD_CMD_WRITE, 0, 128 * TL_KIB, 4096, buf, NULL, &res,
       "write past the end");
  EXPECT (res.error == 0 && res.nresize == 0 &&
          fresh_size (&no) == 132 * TL_KIB, "no-optin: %s size %" PRIu64
          "; expected growth without a chunk (negative, breaks RZ-AUTO-1)",
          ename (res.error), fresh_size (&no));
  rz_close (r);
  tl_ok ("negative no-optin profile grows without opt-in, silently");
}

static void
case_zero_fill (void)
{
  struct tl_server s, u;
  struct rz *r;
  struct res res;
  static unsigned char buf[65536], rb[65536];
  uint64_t el;
  uint32_t fl;

  START (&s, "--profile=everything", "memory", "1M");
  r = open_meta (&s, ALL);
  fill (buf, sizeof buf, 0x5a);
  cmd (r, NBD_CMD_WRITE, 0, TL_MIB - 65536, 65536, buf, NULL, &res, "write");
  set_size (r, TL_MIB / 2, 0, &res);
  set_size (r, TL_MIB, 0, &res);
  EXPECT (res.rs.events & NBD_RESIZE_EV_ZEROED, "regrow: no ZEROED");
  cmd (r, NBD_CMD_READ, 0, TL_MIB - 65536, 65536, NULL, rb, &res, "read");
  EXPECT (res.error == 0 && all_eq (rb, 65536, 0), "bytes back after shrink"
          " and grow hold their old contents; expected zero (RZ-ZERO-2)");
  block_status (r, TL_MIB / 2, TL_MIB / 2, &fl, &el);
  EXPECT ((fl & NBD_STATE_ZERO) && el == TL_MIB / 2, "block status after "
          "regrow: flags 0x%" PRIx32 " length %" PRIu64 "; expected ZERO over"
          " 512K (RZ-BS-2)", fl, el);
  rz_close (r);
  tl_ok ("guaranteed: old data does not come back; read and block status "
         "say zero (RZ-ZERO-1, RZ-ZERO-2, RZ-BS-2)");

  START (&u, "--profile=unzeroed", "memory", "1M");
  r = open_meta (&u, ALL);
  EXPECT (!(r->caps & NBD_RESIZE_F_ZERO_FILL), "unzeroed: ZERO_FILL "
          "offered");
  set_size (r, 2 * TL_MIB, 0, &res);
  EXPECT (res.rs.events == NBD_RESIZE_EV_GREW, "unzeroed growth events 0x%"
          PRIx32 "; expected GREW without ZEROED (RZ-CHUNK-7/8)",
          res.rs.events);
  cmd (r, NBD_CMD_READ, 0, TL_MIB, 65536, NULL, rb, &res, "read");
  EXPECT (res.error == 0 && all_eq (rb, 65536, 0xa5), "unzeroed: new bytes"
          " do not hold the fill pattern 0xa5");
  block_status (r, TL_MIB, TL_MIB, &fl, &el);
  EXPECT (!(fl & NBD_STATE_ZERO), "block status reports ZERO for pattern "
          "bytes (RZ-BS-3)");
  rz_close (r);
  tl_ok ("unspecified: new bytes hold 0xa5, no ZEROED, no STATE_ZERO "
         "(RZ-CHUNK-8, RZ-BS-3)");
}

static void
case_bounds (void)
{
  struct tl_server s;
  struct rz *a, *b;
  struct res res;
  static unsigned char buf[4096], rb[4096];

  START (&s, "--profile=everything", "memory", "1M");
  a = open_all (&s);
  b = open_meta (&s, 0);
  set_size (a, TL_MIB / 2, 0, &res);
  cmd (b, NBD_CMD_READ, 0, TL_MIB / 2, 4096, NULL, rb, &res, "read");
  EXPECT (res.error == NBD_EINVAL, "read past the new end on another "
          "connection: %s; expected NBD_EINVAL (RZ-BOUND-2, RZ-BOUND-5, "
          "RZ-MC-2)", ename (res.error));
  cmd (b, NBD_CMD_WRITE, 0, TL_MIB / 2, 4096, buf, NULL, &res, "write");
  EXPECT (res.error == NBD_ENOSPC, "write past the new end: %s; expected "
          "NBD_ENOSPC (RZ-BOUND-3, RZ-BOUND-5)", ename (res.error));
  cmd (b, NBD_CMD_TRIM, 0, TL_MIB / 2 - 4096, 8192, NULL, NULL, &res, "trim");
  EXPECT (res.error == NBD_EINVAL, "trim across the end: %s",
          ename (res.error));
  set_size (a, TL_MIB, 0, &res);
  cmd (b, NBD_CMD_READ, 0, TL_MIB - 4096, 4096, NULL, rb, &res, "read");
  EXPECT (res.error == 0, "read below the grown end: %s (RZ-BOUND-4)",
          ename (res.error));
  tl_ok ("after a shrink: EINVAL/ENOSPC past the end on every connection; "
         "after a growth: allowed (RZ-BOUND-1..5)");
  rz_close (a);
  rz_close (b);
}

static void
case_readonly (void)
{
  struct tl_server s, l;
  struct rz *r;
  struct res res;

  START (&s, "--profile=everything", "-r", "memory", "1M");
  r = open_all (&s);
  EXPECT (!(r->caps & (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK |
                       NBD_RESIZE_F_AUTO_GROW)),
          "read-only caps 0x%" PRIx32 " (RZ-RO-1)", r->caps);
  EXPECT (r->eflags & NBD_FLAG_SEND_RESIZE, "read-only with QUERY: no "
          "SEND_RESIZE (RZ-RO-3 allows it; nbd-refserver sets it)");
  EXPECT (set_size (r, 2 * TL_MIB, 0, &res) == NBD_EPERM, "set size on a "
          "read-only export: %s; expected NBD_EPERM (RZ-RO-2)",
          ename (res.error));
  query (r, &res);
  EXPECT (res.error == 0 && res.rs.size == TL_MIB, "query on read-only: %s",
          ename (res.error));
  rz_close (r);
  START (&l, "--resize=legacy", "-r", "memory", "1M");
  r = open_plain (&l);
  EXPECT (!(r->eflags & NBD_FLAG_SEND_RESIZE), "legacy read-only: "
          "SEND_RESIZE set (RZ-RO-4)");
  rz_close (r);
  tl_ok ("read-only: no GROW/SHRINK/AUTO_GROW, EPERM, query works, no "
         "legacy flag (RZ-RO-1..4)");
}

static void
case_legacy (void)
{
  struct tl_server s;
  struct rz *r;
  struct res res;

  START (&s, "--resize=legacy", "--granularity=4K", "memory", "1M");
  for (int sr = 0; sr < 2; sr++) {
    struct rzo o = { .sr = sr };
    r = rz_open (&s, &o);
    EXPECT (r->eflags & NBD_FLAG_SEND_RESIZE, "legacy: no SEND_RESIZE");
    set_size (r, 2 * TL_MIB, 0, &res);
    EXPECT (res.error == 0 && res.nresize == 0, "legacy set size: %s, %d "
            "size chunks; expected success without chunks (RZ-LEG-2, "
            "RZ-LEG-3)", ename (res.error), res.nresize);
    cmd (r, NBD_CMD_RESIZE, 0, 3 * TL_MIB, 77, NULL, NULL, &res, "len 77");
    EXPECT (res.error == 0 && fresh_size (&s) == 3 * TL_MIB, "legacy set "
            "size with length 77: %s; expected success (RZ-LEG-5)",
            ename (res.error));
    EXPECT (set_size (r, 3 * TL_MIB + 1, 0, &res) == NBD_EINVAL, "legacy "
            "unaligned: %s; expected NBD_EINVAL, never rounded (RZ-LEG-2, "
            "RZ-LEG-6)", ename (res.error));
    query (r, &res);
    EXPECT (res.error == NBD_EINVAL, "legacy query: %s; expected "
            "NBD_EINVAL (RZ-LEG-1)", ename (res.error));
    set_size (r, TL_MIB, 0, &res);
    rz_close (r);
  }
  tl_ok ("legacy mode: exact set size, any length, no chunks, no query "
         "(RZ-LEG-1..6)");
}

static void
case_variants (void)
{
  struct tl_server b1, b2, b3;
  struct rz *r;
  struct res res;
  static unsigned char buf[4096];

  /* B1: flag-only, also for EXPORT_NAME clients. */
  START (&b1, "--profile=flag-only", "memory", "64K");
  {
    struct rzo o = { .opt = true, .feat = ALL, .export_name = true };
    r = rz_open (&b1, &o);
    EXPECT (r->opt_rep == NBD_REP_ERR_UNSUP, "B1: NBD_OPT_RESIZE %s; "
            "expected NBD_REP_ERR_UNSUP (RZ-NEG-3)", tl_repname (r->opt_rep));
    EXPECT (r->eflags & NBD_FLAG_AUTO_RESIZE, "B1: no NBD_FLAG_AUTO_RESIZE "
            "(RZ-B1-1)");
    cmd (r, NBD_CMD_WRITE, 0, 128 * TL_KIB, 4096, buf, NULL, &res, "grow");
    EXPECT (res.error == 0 && res.nch == 1 && res.ch[0].simple &&
            fresh_size (&b1) == 132 * TL_KIB, "B1 growing write: %s, size %"
            PRIu64 "; expected success, simple reply, 132K (RZ-B1-2)",
            ename (res.error), fresh_size (&b1));
    rz_close (r);
    r = open_plain (&b1);
    EXPECT (r->n_info == 0, "B1 sent NBD_INFO_RESIZE (RZ-B1-3)");
    rz_close (r);
  }
  tl_ok ("B1: NBD_FLAG_AUTO_RESIZE, growth, no item (RZ-B1-1..3)");

  START (&b2, "--profile=info-optin", "memory", "1M");
  {
    struct rzo o = { .sr = true, .opt = true, .feat = ALL, .list = true };
    r = rz_open (&b2, &o);
    EXPECT (r->opt_rep == NBD_REP_ERR_UNSUP && r->n_info == 1 &&
            r->active == r->caps, "B2: option %s, active 0x%" PRIx32 " caps "
            "0x%" PRIx32 "; expected UNSUP and active = caps (RZ-B2-1)",
            tl_repname (r->opt_rep), r->active, r->caps);
    query (r, &res);
    EXPECT (res.error == 0 && res.nresize == 1, "B2 query: %s",
            ename (res.error));
    rz_close (r);
    o.list = false;
    o.opt = false;
    r = rz_open (&b2, &o);
    query (r, &res);
    EXPECT (res.error == NBD_EINVAL, "B2 GO without the item: query %s; "
            "expected legacy mode, NBD_EINVAL (RZ-B2-3)", ename (res.error));
    rz_close (r);
  }
  tl_ok ("B2: listing NBD_INFO_RESIZE is the opt-in (RZ-B2-1, RZ-B2-3)");

  START (&b3, "--profile=boolean", "memory", "1M");
  {
    struct rzo o = { .sr = true, .opt = true, .feat = ALL, .list = true };
    r = rz_open (&b3, &o);
    EXPECT (r->opt_rep == NBD_REP_ACK && !(r->caps &
            (NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY |
             NBD_RESIZE_F_NOTIFY)), "B3: caps 0x%" PRIx32 " (RZ-B3-1)",
            r->caps);
    set_size (r, 2 * TL_MIB + 3, 0, &res);
    EXPECT (res.error == 0 && res.nresize == 0 &&
            fresh_size (&b3) == 2 * TL_MIB + 3, "B3 set size: %s, %d chunks"
            ", size %" PRIu64 "; expected exact (RZ-B3-2)",
            ename (res.error), res.nresize, fresh_size (&b3));
    rz_close (r);
  }
  tl_ok ("B3: no size chunks, exact sizes (RZ-B3-1, RZ-B3-2)");
}

static void
case_refuse (void)
{
  struct tl_server s;
  struct rz *a, *b;
  struct res res;
  static unsigned char buf[4096];

  START (&s, "--profile=refuse", ctl_start_arg (), "memory", "64K");
  a = open_all (&s);
  EXPECT (!(a->caps & NBD_RESIZE_F_EXPORT_WIDE) &&
          !(a->eflags & NBD_FLAG_CAN_MULTI_CONN), "refuse: caps 0x%" PRIx32
          " flags 0x%x; expected no EXPORT_WIDE and no multi-conn (RZ-MC-1)",
          a->caps, a->eflags);
  b = open_all (&s);
  EXPECT (set_size (a, 128 * TL_KIB, 0, &res) == NBD_EPERM, "refuse with "
          "two connections: %s; expected NBD_EPERM (RZ-MC-3)",
          ename (res.error));
  cmd (a, NBD_CMD_WRITE, 0, 64 * TL_KIB, 4096, buf, NULL, &res, "grow");
  EXPECT (res.error == NBD_ENOSPC, "refuse: growing write with two "
          "connections: %s; expected NBD_ENOSPC (RZ-MC-4, RZ-AUTO-13)",
          ename (res.error));
  EXPECT (set_size (a, 64 * TL_KIB, 0, &res) == 0, "refuse: set size "
          "without change: %s (RZ-SET-4)", ename (res.error));
  rz_close (b);
  ctl (true, "wait-conns - 1");
  EXPECT (set_size (a, 128 * TL_KIB, 0, &res) == 0, "refuse alone: %s",
          ename (res.error));
  rz_close (a);
  tl_ok ("refuse: EPERM/ENOSPC while others are connected, success alone "
         "(RZ-MC-3, RZ-MC-4)");
}

static void
case_per_connection (void)
{
  struct tl_server s;
  struct rz *a, *b;
  struct res res;
  static unsigned char rb[4096];

  START (&s, "--profile=per-connection", "memory", "1M");
  a = open_all (&s);
  b = open_all (&s);
  EXPECT (!(a->caps & NBD_RESIZE_F_EXPORT_WIDE), "per-connection offers "
          "EXPORT_WIDE");
  set_size (a, TL_MIB / 2, 0, &res);
  EXPECT (res.error == 0, "per-connection shrink: %s", ename (res.error));
  cmd (a, NBD_CMD_READ, 0, TL_MIB - 4096, 4096, NULL, rb, &res, "read a");
  EXPECT (res.error == NBD_EINVAL, "per-connection: the shrinking "
          "connection reads past its end: %s", ename (res.error));
  cmd (b, NBD_CMD_READ, 0, TL_MIB - 4096, 4096, NULL, rb, &res, "read b");
  EXPECT (res.error == 0, "per-connection: the other connection lost its "
          "size: %s; expected the old size (negative mode)",
          ename (res.error));
  tl_ok ("negative per-connection: only the asking connection shrank "
         "(breaks RZ-MC-5 on purpose)");
  rz_close (a);
  rz_close (b);
}

static void
case_faults (void)
{
  struct rz *r;
  struct res res;
  struct chunk ch, first;

  {
    struct tl_server s;
    START (&s, "--profile=notify", "--fault", "chunk-bad-length", "memory",
           "1M");
    r = open_all (&s);
    query (r, &res);
    EXPECT (res.rs.plen == 20, "chunk-bad-length: payload %" PRIu64,
            res.rs.plen);
    rz_close (r);
    tl_ok ("fault chunk-bad-length: payload length 20");
  }
  {
    struct tl_server s;
    START (&s, "--profile=notify", "--fault=query-no-done", "memory", "1M");
    r = open_all (&s);
    struct nbdp_request req = { .type = NBD_CMD_RESIZE,
                                .flags = NBD_CMD_FLAG_RESIZE_QUERY };
    req.cookie = 99;
    nbdp_client_send_request (r->c, &req, NBDP_LAYOUT_AUTO, NULL, 0);
    recv_one (r, &ch, NULL, 0, "query");
    EXPECT (ch.type == NBD_REPLY_TYPE_RESIZE && ch.flags == 0,
            "query-no-done: flags 0x%x", ch.flags);
    EXPECT (tl_peer_state (r->c, 300) == TL_PEER_TIMEOUT, "query-no-done: "
            "more came");
    rz_close (r);
    tl_ok ("fault query-no-done: size chunk without DONE, nothing more");
  }
  {
    struct tl_server s;
    START (&s, "--profile=notify", "--notify-rate=0", "--fault",
           "notify-duplicate", "--fault", "sequence-reverse", "memory", "1M");
    r = open_all (&s);
    first = subscribe (r);
    EXPECT (next_note (r, 2000, &ch) && ch.size == first.size &&
            ch.seq == first.seq + 1, "notify-duplicate: no duplicate after "
            "the first chunk");
    set_size (r, 2 * TL_MIB, 0, &res);
    EXPECT (next_note (r, 2000, &ch) && ch.size == 2 * TL_MIB &&
            ch.seq == first.seq, "sequence-reverse: seq %" PRIu32
            "; expected previous - 1 = %" PRIu32, ch.seq, first.seq);
    EXPECT (next_note (r, 2000, &ch) && ch.size == 2 * TL_MIB,
            "notify-duplicate: no duplicate of the notification");
    rz_close (r);
    tl_ok ("faults notify-duplicate and sequence-reverse");
  }
  {
    struct tl_server s;
    unsigned n = 0;
    START (&s, "--profile=notify", "--fault=notify-flood", "memory", "1M");
    r = open_all (&s);
    first = subscribe (r);
    while (next_note (r, 500, &ch))
      n++;
    EXPECT (n == 5000 && ch.size == first.size, "notify-flood: %u "
            "notifications ending on %" PRIu64, n, ch.size);
    rz_close (r);
    tl_ok ("fault notify-flood: 5000 notifications ending on the size");
  }
  {
    struct tl_server s;
    START (&s, "--profile=explicit-structured",
           "--fault=chunk-foreign-cookie", "memory", "1M");
    r = open_all (&s);
    set_size (r, 2 * TL_MIB, 0, &res);
    EXPECT (next_note (r, 2000, &ch) && ch.type == NBD_REPLY_TYPE_RESIZE &&
            ch.flags == 0, "chunk-foreign-cookie: no late chunk");
    rz_close (r);
    tl_ok ("fault chunk-foreign-cookie: a chunk after the final one");
  }
}

static void
case_faults_2 (void)
{
  struct rz *r, *b;
  struct res res;

  {
    struct tl_server s;
    START (&s, "--profile=everything", "--fault=size-unaligned", "memory",
           "1M");
    r = open_all (&s);
    set_size (r, 2 * TL_MIB, 0, &res);
    EXPECT (res.rs.size == 2 * TL_MIB + 1 && fresh_size (&s) ==
            2 * TL_MIB + 1, "size-unaligned: %" PRIu64, res.rs.size);
    rz_close (r);
    tl_ok ("fault size-unaligned: size one past a multiple of G");
  }
  {
    struct tl_server s;
    START (&s, "--profile=notify", "--fault=private-shrink", "memory", "1M");
    r = open_all (&s);
    b = open_all (&s);
    subscribe (b);
    set_size (r, TL_MIB / 2, 0, &res);
    query (b, &res);
    EXPECT (res.rs.size == TL_MIB && b->qlen == 0 &&
            (b->caps & NBD_RESIZE_F_EXPORT_WIDE), "private-shrink: the "
            "other connection sees %" PRIu64, res.rs.size);
    rz_close (r);
    rz_close (b);
    tl_ok ("fault private-shrink: others keep the old size, no "
           "notification");
  }
  {
    struct tl_server s;
    struct rzo o = { .opt = true, .feat = ALL };
    START (&s, "--profile=explicit-simple", "--fault=unnegotiated-chunk",
           "memory", "1M");
    r = rz_open (&s, &o);
    set_size (r, 2 * TL_MIB, 0, &res);
    EXPECT (res.nresize == 1 && !(r->active & NBD_RESIZE_F_SIZE_REPLY),
            "unnegotiated-chunk: %d size chunks", res.nresize);
    rz_close (r);
    tl_ok ("fault unnegotiated-chunk: a size chunk on a simple-reply "
           "connection");
  }
  {
    struct tl_server s;
    static unsigned char rb[4096];
    START (&s, "--profile=everything", "--fault=dirty-grow", "memory", "1M");
    r = open_all (&s);
    set_size (r, 2 * TL_MIB, 0, &res);
    cmd (r, NBD_CMD_READ, 0, TL_MIB, 4096, NULL, rb, &res, "read");
    EXPECT ((r->caps & NBD_RESIZE_F_ZERO_FILL) && all_eq (rb, 4096, 0xa5),
            "dirty-grow: new bytes not 0xa5 or ZERO_FILL not offered");
    rz_close (r);
    tl_ok ("fault dirty-grow: ZERO_FILL offered, new bytes 0xa5");
  }
}

static void
case_switches (void)
{
  struct tl_server rp, nu, lf, cap, fp;
  struct rz *r;
  struct res res;
  struct chunk f1, ch;
  static unsigned char rb[4096];

  /* --second-notify=replace (negative): the old subscription ends with
   * NONE+DONE, then the new one starts.
   */
  START (&rp, "--profile=replace-subscription", "memory", "1M");
  r = open_all (&rp);
  f1 = subscribe (r);
  {
    uint64_t old = r->sub_cookie;
    struct nbdp_request req = { .type = NBD_CMD_RESIZE,
                                .flags = NBD_CMD_FLAG_RESIZE_NOTIFY };
    struct chunk c1, c2;
    req.cookie = nbdp_client_next_cookie (r->c);
    nbdp_client_send_request (r->c, &req, NBDP_LAYOUT_AUTO, NULL, 0);
    recv_one (r, &c1, NULL, 0, "second subscribe");
    recv_one (r, &c2, NULL, 0, "second subscribe");
    EXPECT (c1.cookie == old && c1.type == NBD_REPLY_TYPE_NONE &&
            c1.flags == NBD_REPLY_FLAG_DONE && c2.cookie == req.cookie &&
            c2.events == NBD_RESIZE_EV_INITIAL && c2.flags == 0,
            "replace-subscription: got cookie %" PRIu64 " type %u, then "
            "cookie %" PRIu64 " events 0x%" PRIx32 "; expected the old one "
            "ended, the new one started", c1.cookie, c1.type, c2.cookie,
            c2.events);
    (void) f1;
  }
  rz_close (r);
  tl_ok ("negative --second-notify=replace: old ends, new starts (breaks "
         "RZ-SUB-1 on purpose)");

  START (&nu, "--profile=no-unsubscribe", "memory", "1M");
  r = open_all (&nu);
  subscribe (r);
  cmd (r, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_NOTIFY |
       NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, NULL, NULL, &res, "unsubscribe");
  EXPECT (res.error == NBD_EINVAL, "--unsubscribe=off: %s; expected "
          "NBD_EINVAL (negative, breaks RZ-SUB-10)", ename (res.error));
  set_size (r, 2 * TL_MIB, 0, &res);
  EXPECT (next_note (r, 3000, &ch) && ch.size == 2 * TL_MIB,
          "the subscription did not survive the refused unsubscribe "
          "(RZ-SUB-15)");
  rz_close (r);
  tl_ok ("negative --unsubscribe=off: NBD_EINVAL, subscription kept");

  START (&lf, "--profile=everything", "--legacy-fallback=off", "memory",
         "1M");
  r = open_plain (&lf);
  EXPECT (!(r->eflags & NBD_FLAG_SEND_RESIZE), "--legacy-fallback=off: a "
          "non-negotiating client got NBD_FLAG_SEND_RESIZE");
  cmd (r, NBD_CMD_RESIZE, 0, 2 * TL_MIB, 0, NULL, NULL, &res, "resize");
  EXPECT (res.error == NBD_EINVAL && fresh_size (&lf) == TL_MIB,
          "NBD_CMD_RESIZE without SEND_RESIZE: %s; expected NBD_EINVAL "
          "(RZ-FLAG-4)", ename (res.error));
  rz_close (r);
  tl_ok ("--legacy-fallback=off: no flag, NBD_CMD_RESIZE fails (RZ-FLAG-4)");

  START (&cap, "--resize=negotiated", "--query=off", "--notify=off",
         "--resize-shrink=off", "--visibility=connection", "memory", "1M");
  r = open_all (&cap);
  EXPECT (r->caps == (NBD_RESIZE_F_GROW | NBD_RESIZE_F_ZERO_FILL |
                      NBD_RESIZE_F_SIZE_REPLY), "caps 0x%" PRIx32 " with "
          "query, notify, shrink off and per-connection visibility",
          r->caps);
  rz_close (r);
  tl_ok ("capabilities follow --query, --notify, --resize-shrink, "
         "--visibility (section 15.1)");

  START (&fp, "--profile=everything", "--zero-fill=unspecified",
         "--fill-pattern=0x3c", "--size-reply=off", "memory", "1M");
  {
    struct rzo o = { .sr = true, .opt = true, .feat = ALL, .list = true };
    r = rz_open (&fp, &o);
  }
  EXPECT (!(r->caps & (NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY |
                       NBD_RESIZE_F_ZERO_FILL)), "caps 0x%" PRIx32
          " with --size-reply=off --zero-fill=unspecified", r->caps);
  set_size (r, 2 * TL_MIB, 0, &res);
  EXPECT (res.error == 0 && res.nresize == 0 && res.ch[0].type ==
          NBD_REPLY_TYPE_NONE, "set size without SIZE_REPLY under structured"
          " replies: %s, %d size chunks; expected NONE+DONE (RZ-SET-11)",
          ename (res.error), res.nresize);
  cmd (r, NBD_CMD_READ, 0, TL_MIB, 4096, NULL, rb, &res, "read");
  EXPECT (res.error == 0 && all_eq (rb, 4096, 0x3c), "--fill-pattern=0x3c:"
          " new bytes are not 0x3c");
  rz_close (r);
  tl_ok ("--size-reply=off: NONE+DONE; --fill-pattern=0x3c fills new bytes");
}

/* ---- Concurrency ---- */

#define CONC_IO 4
#define CONC_MIN (1 * TL_MIB)
#define CONC_MAX (8 * TL_MIB)
#define CONC_SLICE (CONC_MIN / CONC_IO)

static struct tl_server conc_srv;
static volatile bool conc_stop;

struct conc_arg {
  int id;
  unsigned ops, beyond_ok, beyond_err;
  char failure[512];
};

static void *
conc_io (void *p)
{
  struct conc_arg *a = p;
  struct rz *r = open_meta (&conc_srv, 0);
  unsigned char *buf = malloc (65536), *rb = malloc (65536);
  uint64_t base = a->id * CONC_SLICE;
  struct res res;
  unsigned k = 0;

  while (!__atomic_load_n (&conc_stop, __ATOMIC_ACQUIRE)) {
    uint64_t off = base + (k % (CONC_SLICE / 65536)) * 65536;
    unsigned char v = (unsigned char) (a->id * 64 + k % 64);
    fill (buf, 65536, v);
    cmd (r, NBD_CMD_WRITE, 0, off, 65536, buf, NULL, &res, "io write");
    if (res.error) {
      snprintf (a->failure, sizeof a->failure, "write below the smallest "
                "size at %" PRIu64 ": %s", off, ename (res.error));
      break;
    }
    cmd (r, NBD_CMD_READ, 0, off, 65536, NULL, rb, &res, "io read");
    if (res.error || !all_eq (rb, 65536, v)) {
      snprintf (a->failure, sizeof a->failure, "read back at %" PRIu64
                ": %s, data %s; expected what was written (data below the "
                "smallest size lost)", off, ename (res.error),
                res.error ? "-" : "differs");
      break;
    }
    /* Beyond the smallest size: success or the past-the-end error,
     * nothing else (RZ-SET-7, RZ-BOUND-1).
     */
    uint64_t hi = CONC_MIN + (k * 65536) % (CONC_MAX - CONC_MIN);
    cmd (r, NBD_CMD_READ, 0, hi, 65536, NULL, rb, &res, "io read high");
    if (res.error == 0)
      a->beyond_ok++;
    else if (res.error == NBD_EINVAL)
      a->beyond_err++;
    else {
      snprintf (a->failure, sizeof a->failure, "read at %" PRIu64 " while "
                "resizing: %s; expected success or NBD_EINVAL", hi,
                ename (res.error));
      break;
    }
    {
      uint64_t el;
      uint32_t fl;
      block_status (r, 0, CONC_MIN, &fl, &el);
      if (el > CONC_MIN) {
        snprintf (a->failure, sizeof a->failure, "block status extent %"
                  PRIu64 " beyond the request (RZ-BS-1)", el);
        break;
      }
    }
    k++;
    a->ops++;
  }
  free (buf);
  free (rb);
  rz_close (r);
  return NULL;
}

static void
case_concurrency (void)
{
  pthread_t t[CONC_IO];
  struct conc_arg args[CONC_IO];
  struct rz *rs;
  struct res res;
  unsigned ops = 0, ok = 0, err = 0;

  START (&conc_srv, "--profile=everything", "--threads=4", "memory", "8M");
  rs = open_all (&conc_srv);
  memset (args, 0, sizeof args);
  for (int i = 0; i < CONC_IO; i++) {
    args[i].id = i;
    pthread_create (&t[i], NULL, conc_io, &args[i]);
  }
  for (unsigned i = 0; i < 1000; i++) {
    uint64_t want = i % 2 ? CONC_MAX : CONC_MIN;
    set_size (rs, want, 0, &res);
    EXPECT (res.error == 0 && res.rs.size == want, "resize %u to %" PRIu64
            ": %s, size %" PRIu64, i, want, ename (res.error), res.rs.size);
  }
  __atomic_store_n (&conc_stop, true, __ATOMIC_RELEASE);
  for (int i = 0; i < CONC_IO; i++) {
    pthread_join (t[i], NULL);
    EXPECT (args[i].failure[0] == '\0', "I/O connection %d: %s", i,
            args[i].failure);
    ops += args[i].ops;
    ok += args[i].beyond_ok;
    err += args[i].beyond_err;
  }
  EXPECT (ops > 0, "no I/O happened");
  rz_close (rs);
  tl_check_alive (&conc_srv, "after 1000 resizes under I/O");
  tl_ok ("1000 resizes between 1M and 8M under %d connections of I/O: %u "
         "rounds, data below 1M intact, reads above it %u ok / %u EINVAL, "
         "nothing else (RZ-SET-7, RZ-AUTO-4, RZ-BOUND-1, RZ-MC-2)",
         CONC_IO, ops, ok, err);
}

/* ---- Durability ---- */

static void
case_fua_restart (void)
{
  struct tl_server s, s2;
  struct rz *r;
  struct res res;
  char path[300], arg[320];
  const char *d = getenv ("NBDP_TEST_DIR");
  struct stat st;

  snprintf (path, sizeof path, "%s/fua-%d.img", d && *d ? d : "/tmp",
            (int) getpid ());
  unlink (path);
  snprintf (arg, sizeof arg, "name=,file=%s,size=1M", path);
  {
    const char *a[] = { "--profile=everything", "--export", arg, NULL };
    tl_start_server (&s, a);
  }
  r = open_all (&s);
  set_size (r, 3 * TL_MIB, NBD_CMD_FLAG_FUA, &res);
  EXPECT (res.error == 0 && res.rs.size == 3 * TL_MIB, "FUA set size: %s",
          ename (res.error));
  /* Hard kill: no clean shutdown. */
  kill (s.pid, SIGKILL);
  waitpid (s.pid, NULL, 0);
  rz_close (r);
  EXPECT (stat (path, &st) == 0 && st.st_size == (off_t) (3 * TL_MIB),
          "file size after FUA set size and SIGKILL: %lld; expected 3M "
          "(RZ-DUR-1)", (long long) st.st_size);
  {
    const char *a[] = { "--profile=everything", "--export", arg, NULL };
    tl_start_server (&s2, a);
  }
  EXPECT (fresh_size (&s2) == 3 * TL_MIB, "size after restart %" PRIu64
          "; expected 3M (RZ-DUR-1)", fresh_size (&s2));
  unlink (path);
  tl_ok ("FUA set size on the file backend survives SIGKILL and restart "
         "(RZ-DUR-1)");
}

static const struct tl_case cases[] = {
  { "negotiate", case_negotiate },
  { "set-simple", case_set_simple },
  { "set-structured", case_set_structured },
  { "quota", case_quota },
  { "query", case_query },
  { "subscribe", case_subscribe },
  { "sub-disc", case_sub_disc },
  { "sub-shutdown", case_sub_shutdown },
  { "external", case_external },
  { "coalesce", case_coalesce },
  { "no-coalesce", case_no_coalesce },
  { "auto-grow", case_auto_grow },
  { "zero-fill", case_zero_fill },
  { "bounds", case_bounds },
  { "readonly", case_readonly },
  { "legacy", case_legacy },
  { "variants", case_variants },
  { "refuse", case_refuse },
  { "per-connection", case_per_connection },
  { "switches", case_switches },
  { "faults", case_faults },
  { "faults-2", case_faults_2 },
  { "concurrency", case_concurrency },
  { "fua-restart", case_fua_restart },
};

TL_MAIN (cases)
