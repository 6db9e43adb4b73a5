/* nbd-conform: connections for tests.  Every message the server sends is
 * read with the raw client (common/client.c) and judged by the rule engine
 * (common/rules.c); violations become findings of the running test.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "uri.h"

#define MAX_OPTION_REPLY (64 * 1024)
#define MAX_REPLY_PAYLOAD (UINT64_C (64) * 1024 * 1024 + 64)
#define MAX_EXTENTS 65536

static void add_pending (struct nc_ctx *t, struct nc_conn *c,
                         uint64_t cookie, uint16_t type, uint64_t off,
                         uint64_t count);

/* Every connection of the test, closed before the server is stopped (a
 * server that serves one client at a time waits for us otherwise).
 */
static struct nc_conn *conns[64];
static size_t nr_conns;

void
nc_conns_close (void)
{
  for (size_t i = 0; i < nr_conns; i++)
    nbdp_client_close (conns[i]->c);
}

struct nc_conn *
nc_connect (struct nc_ctx *t)
{
  struct nc_conn *c = calloc (1, sizeof *c);

  if (c == NULL || (c->c = nbdp_client_new ()) == NULL)
    nc_error (t, "out of memory");
  if (nr_conns == sizeof conns / sizeof conns[0])
    nc_error (t, "more than %zu connections in one test", nr_conns);
  conns[nr_conns++] = c;
  nbdp_session_init (&c->s);
  if (t->cfg->client_timeout_ms > 0)
    nbdp_client_set_timeout (c->c, t->cfg->client_timeout_ms);
  if (nbdp_client_connect_uri (c->c, t->uri) == -1)
    nc_error (t, "cannot connect to %s: %s", t->uri,
              nbdp_client_error (c->c));
  nc_log (t, "connected to %s", t->uri);
  return c;
}

/* A failure of the raw client while reading what the server sent. */
static _Noreturn void
read_failed (struct nc_ctx *t, struct nc_conn *c, const char *id,
             const char *what)
{
  if (c->c->failure == NBDP_FAIL_PROTOCOL)
    nc_fail (t, id, "%s: %s", what, nbdp_client_error (c->c));
  else
    nc_fail (t, NULL, "%s: %s", what, nbdp_client_error (c->c));
  nc_done (t);
}

void
nc_greeting (struct nc_ctx *t, struct nc_conn *c, uint16_t *gflags)
{
  unsigned char b[18];
  struct nbdp_violations v;
  bool oldstyle;

  if (nbdp_client_recv_raw (c->c, b, sizeof b) == -1)
    read_failed (t, c, "COMPAT-BASE-1", "reading the greeting");
  nbdp_violations_clear (&v);
  nbdp_rules_check_greeting (&c->s, b, &oldstyle, &v);
  nc_violations (t, &v);
  if (v.n)
    nc_done (t);
  if (oldstyle)
    nc_unsupported (t, "the server uses the oldstyle handshake");
  c->c->gflags = nbdp_get16 (b + 16);
  if (gflags)
    *gflags = c->c->gflags;
}

void
nc_send_cflags (struct nc_ctx *t, struct nc_conn *c, uint32_t cflags)
{
  if (nbdp_client_send_cflags (c->c, cflags) == -1)
    nc_fail (t, NULL, "sending client flags 0x%08" PRIx32 ": %s", cflags,
             nbdp_client_error (c->c)), nc_done (t);
  c->s.no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;
}

void
nc_send_option (struct nc_ctx *t, struct nc_conn *c, uint32_t option,
                const void *data, uint32_t len)
{
  char nb[40];

  nbdp_rules_option_sent (&c->s, option, data, len);
  if (nbdp_client_send_option (c->c, option, data, len) == -1)
    nc_fail (t, NULL, "sending %s: %s",
             nbdp_opt_str (nb, sizeof nb, option),
             nbdp_client_error (c->c)), nc_done (t);
}

enum nbdp_rules_progress
nc_option_reply (struct nc_ctx *t, struct nc_conn *c,
                 struct nbdp_opt_reply *r)
{
  struct nbdp_violations v;
  struct nbdp_option_reply h;
  enum nbdp_rules_progress p;
  char nb[40], rb[40], what[96];

  snprintf (what, sizeof what, "reading the reply to %s",
            nbdp_opt_str (nb, sizeof nb, c->s.opt.option));
  if (nbdp_client_recv_option_reply (c->c, r, MAX_OPTION_REPLY) == -1)
    read_failed (t, c, "COMPAT-BASE-1", what);
  h = (struct nbdp_option_reply) {
    .magic = r->magic, .option = r->option, .reply = r->reply,
    .length = r->length,
  };
  nc_log (t, "option reply %s to %s, %" PRIu32 " bytes",
          nbdp_rep_str (rb, sizeof rb, r->reply),
          nbdp_opt_str (nb, sizeof nb, r->option), r->length);
  nbdp_violations_clear (&v);
  p = nbdp_rules_check_option_reply (&c->s, &h, r->payload, &v);
  nc_violations (t, &v);
  return p;
}

uint32_t
nc_option_final (struct nc_ctx *t, struct nc_conn *c)
{
  struct nbdp_opt_reply r;

  for (unsigned i = 0; i < 100000; i++)
    if (nc_option_reply (t, c, &r) == NBDP_RULES_FINAL)
      return r.reply;
  nc_fail (t, NULL, "more than 100000 replies to one option");
  nc_done (t);
}

/* Build "len name count { len query }" for the meta context options. */
static unsigned char *
meta_payload (const char *export, const char *const *q, size_t n,
              uint32_t *lenp)
{
  size_t len = 4 + strlen (export) + 4, off;
  unsigned char *b;

  for (size_t i = 0; i < n; i++)
    len += 4 + strlen (q[i]);
  b = malloc (len);
  if (b == NULL)
    return NULL;
  nbdp_put32 (b, strlen (export));
  memcpy (b + 4, export, strlen (export));
  off = 4 + strlen (export);
  nbdp_put32 (b + off, n);
  off += 4;
  for (size_t i = 0; i < n; i++) {
    nbdp_put32 (b + off, strlen (q[i]));
    memcpy (b + off + 4, q[i], strlen (q[i]));
    off += 4 + strlen (q[i]);
  }
  *lenp = len;
  return b;
}

/* The payload of NBD_OPT_INFO / NBD_OPT_GO. */
static unsigned char *
go_payload (const char *export, const uint16_t *infos, size_t n,
            uint32_t *lenp)
{
  size_t nl = strlen (export), len = 4 + nl + 2 + 2 * n;
  unsigned char *b = malloc (len);

  if (b == NULL)
    return NULL;
  nbdp_put32 (b, nl);
  memcpy (b + 4, export, nl);
  nbdp_put16 (b + 4 + nl, n);
  for (size_t i = 0; i < n; i++)
    nbdp_put16 (b + 6 + nl + 2 * i, infos[i]);
  *lenp = len;
  return b;
}

struct nc_conn *
nc_open (struct nc_ctx *t, const struct nc_open_opts *o)
{
  static const struct nc_open_opts none;
  struct nc_conn *c;
  uint16_t gflags;
  uint32_t rep, len, cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  unsigned char *b;
  const char *export;
  uint16_t infos[1] = { NBD_INFO_BLOCK_SIZE };
  char rb[40];

  if (o == NULL)
    o = &none;
  export = o->export_name ? o->export_name
    : t->cfg->export_name ? t->cfg->export_name : "";
  if (o->export_name == NULL && t->cfg->uri) {
    /* The URI names the export. */
    struct nbdp_uri u;
    char err[256];
    if (nbdp_uri_parse (t->cfg->uri, &u, err, sizeof err) == 0) {
      export = strdup (u.export_name ? u.export_name : "");
      nbdp_uri_free (&u);
    }
  }
  c = nc_connect (t);
  c->export_name = strdup (export);
  nc_greeting (t, c, &gflags);
  if (!(gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_unsupported (t, "the server does not offer fixed newstyle "
                    "(handshake flags 0x%04x)", gflags);
  if (o->no_zeroes && (gflags & NBD_FLAG_NO_ZEROES))
    cflags |= NBD_FLAG_C_NO_ZEROES;
  nc_send_cflags (t, c, cflags);

  if (o->extended) {
    nc_send_option (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);
    rep = nc_option_final (t, c);
    if (rep != NBD_REP_ACK)
      nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                      nbdp_rep_str (rb, sizeof rb, rep));
    c->c->extended = true;
  }
  if (o->structured) {
    nc_send_option (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    rep = nc_option_final (t, c);
    if (rep != NBD_REP_ACK)
      nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                      nbdp_rep_str (rb, sizeof rb, rep));
    c->c->structured = true;
  }
  if (o->n_meta) {
    b = meta_payload (export, o->meta, o->n_meta, &len);
    if (b == NULL)
      nc_error (t, "out of memory");
    nc_send_option (t, c, NBD_OPT_SET_META_CONTEXT, b, len);
    free (b);
    rep = nc_option_final (t, c);
    if (rep != NBD_REP_ACK)
      nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT answered with %s",
                      nbdp_rep_str (rb, sizeof rb, rep));
    if (c->s.nr_contexts == 0)
      nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT selected no context "
                      "for %s%s", o->meta[0], o->n_meta > 1 ? ", ..." : "");
  }

  b = go_payload (export, infos, o->block_size ? 1 : 0, &len);
  if (b == NULL)
    nc_error (t, "out of memory");
  nc_send_option (t, c, NBD_OPT_GO, b, len);
  free (b);
  rep = nc_option_final (t, c);
  if (rep == NBD_REP_ERR_UNSUP && !o->extended) {
    /* An old server: EXPORT_NAME is the fallback the spec allows. */
    struct nbdp_export exp;
    if (nbdp_client_opt_export_name (c->c, export, &exp) == -1)
      nc_error (t, "NBD_OPT_GO unsupported and NBD_OPT_EXPORT_NAME \"%s\" "
                "failed: %s", export, nbdp_client_error (c->c));
    c->s.transmission = true;
    c->s.export_size = exp.size;
    c->s.eflags = exp.eflags;
    {
      struct nbdp_violations v;
      nbdp_violations_clear (&v);
      nbdp_rules_check_eflags (&c->s, exp.eflags, &v);
      nc_violations (t, &v);
    }
  }
  else if (rep != NBD_REP_ACK)
    nc_error (t, "NBD_OPT_GO for export \"%s\" answered with %s", export,
              nbdp_rep_str (rb, sizeof rb, rep));
  if (!c->s.transmission)
    nc_error (t, "handshake did not reach transmission");
  /* Tell the raw client what was agreed (it did not see the options). */
  c->c->structured = c->s.structured;
  c->c->extended = c->s.extended;
  c->c->transmission = true;
  c->c->size = c->s.export_size;
  c->c->eflags = c->s.eflags;
  nc_log (t, "transmission: size %" PRIu64 ", flags 0x%04x%s%s",
          c->s.export_size, c->s.eflags,
          c->s.structured ? ", structured replies" : "",
          c->s.extended ? ", extended headers" : "");
  return c;
}

uint64_t
nc_send (struct nc_ctx *t, struct nc_conn *c, uint16_t type, uint16_t flags,
         uint64_t offset, uint64_t count, const void *payload,
         size_t payload_len)
{
  struct nbdp_request req;
  char nb[40];

  if (type == NBD_CMD_WRITE && c->s.extended)
    flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  req = (struct nbdp_request) {
    .magic = c->s.extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC,
    .flags = flags, .type = type, .cookie = nbdp_client_next_cookie (c->c),
    .offset = offset, .count = count,
  };
  if (nbdp_rules_request_sent (&c->s, &req) == -1)
    nc_error (t, "out of memory");
  nc_log (t, "send %s flags 0x%04x offset %" PRIu64 " count %" PRIu64
          " cookie %" PRIu64,
          nbdp_cmd_str (nb, sizeof nb, type),
          flags, offset, count, req.cookie);
  if (type != NBD_CMD_DISC)
    add_pending (t, c, req.cookie, type, offset, count);
  if (nbdp_client_send_request (c->c, &req, NBDP_LAYOUT_AUTO, payload,
                                payload_len) == -1)
    nc_log (t, "sending failed: %s", nbdp_client_error (c->c));
  return req.cookie;
}

/* A request in flight and what its reply has shown so far. */
struct nc_pending {
  uint64_t cookie;
  uint16_t type;
  uint64_t off, count;
  unsigned char *data;        /* READ: count bytes */
  struct nc_result r;
};

static struct nc_pending *
find_pending (struct nc_conn *c, uint64_t cookie)
{
  for (size_t i = 0; i < c->n_pending; i++)
    if (c->pending[i].cookie == cookie)
      return &c->pending[i];
  return NULL;
}

static void
add_pending (struct nc_ctx *t, struct nc_conn *c, uint64_t cookie,
             uint16_t type, uint64_t off, uint64_t count)
{
  struct nc_pending *p = find_pending (c, cookie);

  if (p == NULL) {
    if (c->n_pending == c->cap_pending) {
      size_t cap = c->cap_pending ? 2 * c->cap_pending : 8;
      p = realloc (c->pending, cap * sizeof *p);
      if (p == NULL)
        nc_error (t, "out of memory");
      c->pending = p;
      c->cap_pending = cap;
    }
    p = &c->pending[c->n_pending++];
  }
  else
    free (p->data);
  *p = (struct nc_pending) {
    .cookie = cookie, .type = type, .off = off, .count = count,
  };
  if (type == NBD_CMD_READ && count <= MAX_REPLY_PAYLOAD &&
      (p->data = calloc (1, count ? count : 1)) == NULL)
    nc_error (t, "out of memory");
}

/* Apply one chunk (or simple reply) to its request's result. */
static void
collect (const struct nbdp_client_reply *cr, struct nc_pending *pe)
{
  const struct nbdp_reply *h = &cr->hdr;
  const unsigned char *p = cr->payload;
  uint64_t len = cr->payload_len, req_off = pe->off, req_count = pe->count;
  struct nc_result *r = &pe->r;
  unsigned char *rbuf = pe->data;

  if (h->kind == NBDP_REPLY_SIMPLE) {
    r->simple++;
    if (r->error == 0)
      r->error = h->error;
    if (h->error == 0 && pe->type == NBD_CMD_READ) {
      if (rbuf && len <= req_count)
        memcpy (rbuf, p, len);
      r->data_bytes += len;
    }
    return;
  }
  r->chunks++;
  r->last_type = h->type;
  switch (h->type) {
  case NBD_REPLY_TYPE_OFFSET_DATA:
    if (len >= 8) {
      uint64_t off = nbdp_get64 (p), dl = len - 8;
      if (off >= req_off && dl <= req_count &&
          off - req_off <= req_count - dl && rbuf)
        memcpy (rbuf + (off - req_off), p + 8, dl);
      r->data_bytes += dl;
    }
    break;
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    if (len == 12) {
      uint64_t off = nbdp_get64 (p), hl = nbdp_get32 (p + 8);
      if (off >= req_off && hl <= req_count &&
          off - req_off <= req_count - hl && rbuf)
        memset (rbuf + (off - req_off), 0, hl);
      r->hole_bytes += hl;
    }
    break;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: {
    struct nbdp_extent ex[256];
    uint32_t id;
    size_t n;
    bool ext = h->type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
    if (nbdp_decode_block_status (p, len, ext, &id, ex, 256, &n)) {
      uint64_t pos = req_off;
      for (size_t i = 0; i < n && i < 256 && r->n_extents < MAX_EXTENTS;
           i++) {
        struct nbdp_bs_extent *ne =
          realloc (r->extents, (r->n_extents + 1) * sizeof *ne);
        if (ne == NULL)
          break;
        r->extents = ne;
        ne[r->n_extents++] = (struct nbdp_bs_extent) {
          .context_id = id, .offset = pos, .length = ex[i].length,
          .flags = ex[i].flags,
        };
        pos += ex[i].length;
      }
    }
    break;
  }
  default:
    if ((h->type & NBD_REPLY_TYPE_ERR (0)) && len >= 6) {
      uint32_t err = nbdp_get32 (p);
      uint16_t ml = nbdp_get16 (p + 4);
      if (r->error == 0)
        r->error = err ? err : NBD_EINVAL;
      if (ml <= len - 6 && r->message[0] == '\0')
        snprintf (r->message, sizeof r->message, "%.*s", (int) ml, p + 6);
    }
    break;
  }
}

/* Hand the finished result of pe to the caller and forget pe. */
static int
take (struct nc_conn *c, struct nc_pending *pe, void *rbuf,
      struct nc_result *r)
{
  *r = pe->r;
  if (rbuf && pe->data)
    memcpy (rbuf, pe->data, pe->count);
  free (pe->data);
  *pe = c->pending[--c->n_pending];
  return r->complete ? 0 : -1;
}

int
nc_wait (struct nc_ctx *t, struct nc_conn *c, uint64_t cookie, void *rbuf,
         struct nc_result *r)
{
  for (;;) {
    struct nbdp_client_reply cr;
    struct nbdp_violations v;
    struct nc_pending *pe = find_pending (c, cookie);
    enum nbdp_rules_progress p;
    char nb[40];

    if (pe == NULL) {
      memset (r, 0, sizeof *r);
      r->io_error = "no such request in flight (test bug)";
      return -1;
    }
    if (pe->r.complete || pe->r.io_error)
      return take (c, pe, rbuf, r);
    if (nbdp_client_recv_reply (c->c, &cr, MAX_REPLY_PAYLOAD, -1) == -1) {
      const char *msg = strdup (nbdp_client_error (c->c));
      if (c->c->failure == NBDP_FAIL_PROTOCOL)
        nc_fail (t, "TX-GEN-1", "reading a reply: %s", msg);
      nc_log (t, "no reply: %s", msg);
      /* Every request still in flight is lost with the connection. */
      for (size_t i = 0; i < c->n_pending; i++)
        if (!c->pending[i].r.complete)
          c->pending[i].r.io_error = msg;
      continue;
    }
    nc_log (t, "%s reply cookie %" PRIu64 " %s%s flags 0x%x error %" PRIu32
            " length %" PRIu64,
            cr.hdr.kind == NBDP_REPLY_SIMPLE ? "simple"
            : cr.hdr.kind == NBDP_REPLY_STRUCTURED ? "structured"
            : "extended", cr.hdr.cookie,
            cr.hdr.kind == NBDP_REPLY_SIMPLE ? "" : "type ",
            cr.hdr.kind == NBDP_REPLY_SIMPLE ? ""
            : nbdp_reply_type_str (nb, sizeof nb, cr.hdr.type),
            cr.hdr.flags, cr.hdr.error, cr.payload_len);
    nbdp_violations_clear (&v);
    p = nbdp_rules_check_reply (&c->s, &cr.hdr,
                                cr.hdr.kind == NBDP_REPLY_SIMPLE ? NULL
                                : cr.payload, &v);
    nc_violations (t, &v);
    pe = find_pending (c, cr.hdr.cookie);
    if (pe == NULL)
      continue;                 /* judged by the rules: unknown cookie */
    collect (&cr, pe);
    if (p == NBDP_RULES_FINAL)
      pe->r.complete = true;
  }
}

int
nc_cmd (struct nc_ctx *t, struct nc_conn *c, uint16_t type, uint16_t flags,
        uint64_t offset, uint64_t count, const void *wbuf, void *rbuf,
        struct nc_result *r)
{
  uint64_t cookie = nc_send (t, c, type, flags, offset, count, wbuf,
                             type == NBD_CMD_WRITE && wbuf ? count : 0);
  return nc_wait (t, c, cookie, rbuf, r);
}

const char *
nc_errstr (const struct nc_result *r)
{
  static char buf[64];
  const char *n;

  if (r->io_error)
    return r->io_error;
  if (r->error == 0)
    return "success";
  n = nbdp_name_of_error (r->error);
  if (n)
    return n;
  snprintf (buf, sizeof buf, "error %" PRIu32, r->error);
  return buf;
}

void
nc_disc (struct nc_ctx *t, struct nc_conn *c)
{
  nc_send (t, c, NBD_CMD_DISC, 0, 0, 0, NULL, 0);
}
