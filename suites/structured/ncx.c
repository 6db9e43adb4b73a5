/* nbd-conform: commands with chunk-by-chunk reply records (ncx.h), used
 * by the structured, block-status and extended suites.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncx.h"
#include "uri.h"

#define MAX_REPLY_PAYLOAD (UINT64_C (64) * 1024 * 1024 + 64)
#define MAX_DATA (UINT64_C (64) * 1024 * 1024)
#define MAX_CHUNKS 65536
#define MAX_EXTENTS (1 << 20)
#define MAX_LIVE 256

/* Requests in flight (each test is its own process). */
static struct ncx_reply *live[MAX_LIVE];
static size_t n_live;
static unsigned seq;

static void
live_remove (struct ncx_reply *r)
{
  for (size_t i = 0; i < n_live; i++)
    if (live[i] == r) {
      live[i] = live[--n_live];
      return;
    }
}

static struct ncx_reply *
live_find (struct nc_conn *c, uint64_t cookie)
{
  for (size_t i = 0; i < n_live; i++)
    if (live[i]->conn == c && live[i]->cookie == cookie)
      return live[i];
  return NULL;
}

const char *
ncx_type_name (uint16_t type)
{
  static char bufs[4][40];
  static unsigned k;
  char *b = bufs[k++ % 4];
  const char *n = nbdp_name_of_reply_type (type);

  if (n && strncmp (n, "NBD_REPLY_TYPE_", 15) == 0)
    return n + 15;
  snprintf (b, 40, "type %u", type);
  return n ? n : b;
}

const char *
ncx_error_name (uint32_t err)
{
  static char bufs[4][40];
  static unsigned k;
  char *b = bufs[k++ % 4];
  const char *n = nbdp_name_of_error (err);

  if (err == 0)
    return "success";
  if (n)
    return n;
  snprintf (b, 40, "error %" PRIu32, err);
  return b;
}

struct ncx_reply *
ncx_send (struct nc_ctx *t, struct nc_conn *c, const struct ncx_req *q)
{
  struct ncx_reply *r = calloc (1, sizeof *r);
  struct nbdp_request req, rreq;
  const void *payload = q->payload;
  size_t plen = q->payload_len;
  uint16_t flags = q->flags;
  char nb[40];

  if (r == NULL)
    nc_error (t, "out of memory");
  if (n_live == MAX_LIVE)
    nc_error (t, "more than %d requests in flight (test bug)", MAX_LIVE);
  if (q->type == NBD_CMD_WRITE && c->s.extended && !q->raw_flags)
    flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  if (q->type == NBD_CMD_WRITE && payload && plen == 0)
    plen = q->count;
  req = (struct nbdp_request) {
    .magic = c->s.extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC,
    .flags = flags, .type = q->type,
    .cookie = q->cookie ? q->cookie : nbdp_client_next_cookie (c->c),
    .offset = q->offset, .count = q->count,
  };
  rreq = req;
  if (q->effect)
    rreq.count = q->effect;
  *r = (struct ncx_reply) {
    .conn = c, .type = q->type, .flags = flags, .offset = q->offset,
    .count = rreq.count, .cookie = req.cookie,
  };
  if (q->type == NBD_CMD_READ && q->count <= MAX_DATA &&
      (r->data = calloc (1, q->count ? q->count : 1)) == NULL)
    nc_error (t, "out of memory");
  if (q->type != NBD_CMD_DISC) {
    if (nbdp_rules_request_sent (&c->s, &rreq) == -1)
      nc_error (t, "out of memory");
    live[n_live++] = r;
  }
  nc_log (t, "send %s flags 0x%04x offset %" PRIu64 " length %" PRIu64
          " cookie 0x%" PRIx64 "%s", nbdp_cmd_str (nb, sizeof nb, q->type),
          flags, q->offset, q->count, req.cookie,
          plen ? " with payload" : "");
  if (nbdp_client_send_request (c->c, &req, NBDP_LAYOUT_AUTO, payload,
                                plen) == -1)
    nc_log (t, "sending failed: %s", nbdp_client_error (c->c));
  if (q->type == NBD_CMD_DISC)
    r->complete = true;
  return r;
}

static void
add_chunk (struct nc_ctx *t, struct ncx_reply *r, const struct ncx_chunk *ch)
{
  if (r->n_c >= MAX_CHUNKS)
    return;
  if ((r->n_c & (r->n_c - 1)) == 0) {
    size_t cap = r->n_c ? 2 * r->n_c : 1;
    struct ncx_chunk *p = realloc (r->c, cap * sizeof *p);
    if (p == NULL)
      nc_error (t, "out of memory");
    r->c = p;
  }
  r->c[r->n_c++] = *ch;
}

/* Record one reply message in r. */
static void
apply (struct nc_ctx *t, struct ncx_reply *r,
       const struct nbdp_client_reply *cr)
{
  const struct nbdp_reply *h = &cr->hdr;
  const unsigned char *p = cr->payload;
  uint64_t len = cr->payload_len;
  struct ncx_chunk ch = {
    .kind = h->kind, .flags = h->flags, .type = h->type,
    .hdr_offset = h->offset, .length = len, .seq = seq++,
  };

  if (h->kind == NBDP_REPLY_SIMPLE) {
    r->simple++;
    ch.error = h->error;
    if (r->error == 0)
      r->error = h->error;
    if (h->error == 0 && r->type == NBD_CMD_READ) {
      if (r->data && len <= r->count)
        memcpy (r->data, p, len);
      r->data_bytes += len;
    }
    add_chunk (t, r, &ch);
    return;
  }
  r->chunks++;
  switch (h->type) {
  case NBD_REPLY_TYPE_OFFSET_DATA:
    if (len >= 8) {
      ch.off = nbdp_get64 (p);
      ch.len = len - 8;
      ch.zero = ncx_all_zero (p + 8, len - 8);
      if (ch.off >= r->offset && ch.len <= r->count &&
          ch.off - r->offset <= r->count - ch.len && r->data)
        memcpy (r->data + (ch.off - r->offset), p + 8, ch.len);
      r->data_bytes += ch.len;
    }
    break;
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    if (len == 12) {
      ch.off = nbdp_get64 (p);
      ch.len = nbdp_get32 (p + 8);
      if (ch.off >= r->offset && ch.len <= r->count &&
          ch.off - r->offset <= r->count - ch.len && r->data)
        memset (r->data + (ch.off - r->offset), 0, ch.len);
      r->hole_bytes += ch.len;
    }
    break;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: {
    bool ext = h->type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
    uint64_t hl = ext ? 8 : 4, dl = ext ? 16 : 8, pos = r->offset;
    if (len >= hl && (len - hl) % dl == 0) {
      ch.context_id = nbdp_get32 (p);
      ch.n_desc = (len - hl) / dl;
      for (uint64_t i = 0; i < ch.n_desc && r->n_ext < MAX_EXTENTS; i++) {
        const unsigned char *d = p + hl + i * dl;
        struct nbdp_bs_extent e = {
          .context_id = ch.context_id, .offset = pos,
          .length = ext ? nbdp_get64 (d) : nbdp_get32 (d),
          .flags = ext ? nbdp_get64 (d + 8) : nbdp_get32 (d + 4),
        };
        if ((r->n_ext & (r->n_ext - 1)) == 0) {
          size_t cap = r->n_ext ? 2 * r->n_ext : 1;
          struct nbdp_bs_extent *ne = realloc (r->ext, cap * sizeof *ne);
          if (ne == NULL)
            nc_error (t, "out of memory");
          r->ext = ne;
        }
        r->ext[r->n_ext++] = e;
        pos += e.length;
      }
    }
    break;
  }
  default:
    if ((h->type & NBD_REPLY_TYPE_ERR (0)) && len >= 6) {
      uint16_t ml = nbdp_get16 (p + 4);
      ch.error = nbdp_get32 (p);
      if (r->error == 0)
        r->error = ch.error ? ch.error : NBD_EINVAL;
      if (ml <= len - 6 && r->message[0] == '\0')
        snprintf (r->message, sizeof r->message, "%.*s", (int) ml, p + 6);
      if (h->type == NBD_REPLY_TYPE_ERROR_OFFSET && ml <= len - 14)
        ch.off = nbdp_get64 (p + 6 + ml);
    }
    break;
  }
  add_chunk (t, r, &ch);
}

int
ncx_wait (struct nc_ctx *t, struct ncx_reply *r)
{
  struct nc_conn *c = r->conn;

  while (!r->complete && !r->io_error) {
    struct nbdp_client_reply cr;
    struct nbdp_violations v;
    enum nbdp_rules_progress p;
    struct ncx_reply *o;
    char nb[40];

    if (nbdp_client_recv_reply (c->c, &cr, MAX_REPLY_PAYLOAD, -1) == -1) {
      int e = errno;
      char *msg = strdup (nbdp_client_error (c->c));
      if (msg == NULL)
        nc_error (t, "out of memory");
      if (c->c->failure == NBDP_FAIL_PROTOCOL)
        nc_fail (t, "TX-GEN-1", "reading a reply: %s", msg);
      nc_log (t, "no reply: %s", msg);
      for (size_t i = 0; i < n_live; ) {
        o = live[i];
        if (o->conn == c) {
          o->io_error = msg;
          o->disconnected = e == EPIPE || e == ECONNRESET;
          o->timed_out = e == ETIMEDOUT;
          live_remove (o);
        }
        else
          i++;
      }
      break;
    }
    nc_log (t, "%s reply cookie 0x%" PRIx64 " %s%s flags 0x%x error %"
            PRIu32 " length %" PRIu64 "%s",
            cr.hdr.kind == NBDP_REPLY_SIMPLE ? "simple"
            : cr.hdr.kind == NBDP_REPLY_STRUCTURED ? "structured"
            : "extended", cr.hdr.cookie,
            cr.hdr.kind == NBDP_REPLY_SIMPLE ? "" : "type ",
            cr.hdr.kind == NBDP_REPLY_SIMPLE ? ""
            : nbdp_reply_type_str (nb, sizeof nb, cr.hdr.type),
            cr.hdr.flags, cr.hdr.error, cr.payload_len,
            cr.hdr.kind == NBDP_REPLY_EXTENDED ? " (header offset)" : "");
    nbdp_violations_clear (&v);
    p = nbdp_rules_check_reply (&c->s, &cr.hdr,
                                cr.hdr.kind == NBDP_REPLY_SIMPLE ? NULL
                                : cr.payload, &v);
    nc_violations (t, &v);
    o = live_find (c, cr.hdr.cookie);
    if (o == NULL)
      continue;                 /* judged by the rules: unknown cookie */
    apply (t, o, &cr);
    if (p == NBDP_RULES_FINAL) {
      o->complete = true;
      live_remove (o);
    }
  }
  return r->complete ? 0 : -1;
}

struct ncx_reply *
ncx_cmd (struct nc_ctx *t, struct nc_conn *c, uint16_t type, uint16_t flags,
         uint64_t offset, uint64_t count, const void *payload)
{
  struct ncx_req q = {
    .type = type, .flags = flags, .offset = offset, .count = count,
    .payload = payload,
  };
  struct ncx_reply *r = ncx_send (t, c, &q);

  ncx_wait (t, r);
  return r;
}

void
ncx_free (struct ncx_reply *r)
{
  if (r == NULL)
    return;
  live_remove (r);
  free (r->c);
  free (r->data);
  free (r->ext);
  free (r);
}

bool
ncx_ok (const struct ncx_reply *r)
{
  return r->complete && r->error == 0;
}

const char *
ncx_errstr (const struct ncx_reply *r)
{
  static char buf[NBDP_CLIENT_ERRMAX + 64];

  if (r->io_error) {
    snprintf (buf, sizeof buf, "no complete reply (%s)", r->io_error);
    return buf;
  }
  if (!r->complete)
    return "no complete reply";
  if (r->error == 0)
    return "success";
  if (r->message[0])
    snprintf (buf, sizeof buf, "%s (\"%.200s\")", ncx_error_name (r->error),
              r->message);
  else
    snprintf (buf, sizeof buf, "%s", ncx_error_name (r->error));
  return buf;
}

const char *
ncx_describe (const struct ncx_reply *r, char *buf, size_t n)
{
  size_t used = 0;

#define OUT(...)                                                        \
  do {                                                                  \
    if (used < n) {                                                     \
      int k_ = snprintf (buf + used, n - used, __VA_ARGS__);            \
      if (k_ > 0)                                                       \
        used += (size_t) k_;                                            \
    }                                                                   \
  } while (0)

  if (n == 0)
    return buf;
  buf[0] = '\0';
  if (r->n_c == 0)
    OUT ("nothing%s%s", r->io_error ? ": " : "",
         r->io_error ? r->io_error : "");
  for (size_t i = 0; i < r->n_c && used + 40 < n; i++) {
    const struct ncx_chunk *c = &r->c[i];
    if (i > 0)
      OUT (", ");
    if (i >= 12 && r->n_c > 14) {
      OUT ("... (%zu chunks in all)", r->n_c);
      break;
    }
    if (c->kind == NBDP_REPLY_SIMPLE) {
      OUT ("simple reply %s", ncx_error_name (c->error));
      continue;
    }
    OUT ("%s%s", c->kind == NBDP_REPLY_EXTENDED ? "ext " : "",
         ncx_type_name (c->type));
    switch (c->type) {
    case NBD_REPLY_TYPE_OFFSET_DATA:
    case NBD_REPLY_TYPE_OFFSET_HOLE:
      OUT (" %" PRIu64 "+%" PRIu64, c->off, c->len);
      break;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
    case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
      OUT (" ctx %" PRIu32 " x%" PRIu64, c->context_id, c->n_desc);
      break;
    case NBD_REPLY_TYPE_ERROR:
      OUT (" %s", ncx_error_name (c->error));
      break;
    case NBD_REPLY_TYPE_ERROR_OFFSET:
      OUT (" %s at %" PRIu64, ncx_error_name (c->error), c->off);
      break;
    default:
      break;
    }
    if (c->flags & NBD_REPLY_FLAG_DONE)
      OUT ("(done)");
  }
  if (r->io_error && r->n_c)
    OUT ("; then %s", r->io_error);
#undef OUT
  return buf;
}

size_t
ncx_count_type (const struct ncx_reply *r, uint16_t type)
{
  size_t n = 0;

  for (size_t i = 0; i < r->n_c; i++)
    if (r->c[i].kind != NBDP_REPLY_SIMPLE && r->c[i].type == type)
      n++;
  return n;
}

size_t
ncx_content_chunks (const struct ncx_reply *r)
{
  return ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_DATA) +
    ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_HOLE);
}

void
ncx_pattern (unsigned char *b, size_t n, uint64_t off, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    uint64_t x = off + i;
    b[i] = (unsigned char) (x * 31 + seed + (x >> 9) * 7);
    if (b[i] == 0)
      b[i] = 0x5a;            /* never zero: data is told from holes */
  }
}

bool
ncx_all_zero (const unsigned char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return false;
  return true;
}

size_t
ncx_first_diff (const unsigned char *a, const unsigned char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i])
      return i;
  return n;
}

unsigned char *
ncx_write_pattern (struct nc_ctx *t, struct nc_conn *c, uint64_t off,
                   uint64_t count, unsigned seed)
{
  unsigned char *b = malloc (count ? count : 1);
  struct ncx_reply *r;

  if (b == NULL)
    nc_error (t, "out of memory");
  ncx_pattern (b, count, off, seed);
  for (uint64_t done = 0; done < count; ) {
    uint64_t n = count - done > ncx_max_io (c) ? ncx_max_io (c)
      : count - done;
    r = ncx_cmd (t, c, NBD_CMD_WRITE, 0, off + done, n, b + done);
    if (!ncx_ok (r))
      nc_error (t, "setup: WRITE offset %" PRIu64 " length %" PRIu64
                " failed: %s", off + done, n, ncx_errstr (r));
    ncx_free (r);
    done += n;
  }
  return b;
}

void
ncx_setup (struct nc_ctx *t, struct nc_conn *c, uint16_t type,
           uint16_t flags, uint64_t off, uint64_t count)
{
  struct ncx_reply *r = ncx_cmd (t, c, type, flags, off, count, NULL);
  char nb[40];

  if (!ncx_ok (r))
    nc_error (t, "setup: %s offset %" PRIu64 " length %" PRIu64
              " failed: %s", nbdp_cmd_str (nb, sizeof nb, type),
              off, count, ncx_errstr (r));
  ncx_free (r);
}

void
ncx_need_align (struct nc_ctx *t, struct nc_conn *c, uint32_t unit)
{
  if (c->s.have_block_size && c->s.min_block > unit)
    nc_skip (t, "the server's minimum block size %" PRIu32 " is larger "
             "than the alignment (%" PRIu32 ") of the requests this test "
             "sends", c->s.min_block, unit);
}

void
ncx_need_payload (struct nc_ctx *t, struct nc_conn *c, uint64_t len)
{
  if (c->s.have_block_size && len > c->s.max_payload)
    nc_skip (t, "this test reads %" PRIu64 " bytes at once, more than the "
             "server's maximum payload %" PRIu32, len, c->s.max_payload);
}

uint64_t
ncx_max_io (const struct nc_conn *c)
{
  uint64_t m = nbdp_session_max_payload (&c->s);

  return m > 4 * 1024 * 1024 ? 4 * 1024 * 1024 : m ? m : 1;
}

void
ncx_need_size (struct nc_ctx *t, struct nc_conn *c, uint64_t min)
{
  ncx_need_align (t, c, 4096);
  if (c->s.export_size < min)
    nc_skip (t, "the export (%" PRIu64 " bytes) is smaller than the %"
             PRIu64 " this test needs", c->s.export_size, min);
}

void
ncx_need_writable (struct nc_ctx *t, struct nc_conn *c, uint64_t min)
{
  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_skip (t, "the export is read-only (this test writes)");
  ncx_need_size (t, c, min);
}

unsigned char *
ncx_meta_payload (const char *export, const char *const *q, size_t n,
                  uint32_t *lenp)
{
  size_t el = strlen (export), len = 4 + el + 4, off;
  unsigned char *b;

  for (size_t i = 0; i < n; i++)
    len += 4 + strlen (q[i]);
  b = malloc (len);
  if (b == NULL)
    return NULL;
  nbdp_put32 (b, el);
  memcpy (b + 4, export, el);
  off = 4 + el;
  nbdp_put32 (b + off, n);
  off += 4;
  for (size_t i = 0; i < n; i++) {
    size_t ql = strlen (q[i]);
    nbdp_put32 (b + off, ql);
    memcpy (b + off + 4, q[i], ql);
    off += 4 + ql;
  }
  *lenp = len;
  return b;
}

uint32_t
ncx_meta_option (struct nc_ctx *t, struct nc_conn *c, uint32_t option,
                 const char *export, const char *const *q, size_t n,
                 char (*names)[NBD_MAX_STRING + 1], uint32_t *ids,
                 size_t max, size_t *n_out)
{
  uint32_t len;
  unsigned char *b = ncx_meta_payload (export, q, n, &len);
  size_t k = 0;

  if (b == NULL)
    nc_error (t, "out of memory");
  nc_send_option (t, c, option, b, len);
  free (b);
  for (unsigned i = 0; i < 100000; i++) {
    struct nbdp_opt_reply r;
    if (nc_option_reply (t, c, &r) == NBDP_RULES_FINAL) {
      if (n_out)
        *n_out = k;
      return r.reply;
    }
    if (r.reply == NBD_REP_META_CONTEXT && r.length >= 4) {
      if (k < max) {
        if (ids)
          ids[k] = nbdp_get32 (r.payload);
        if (names)
          snprintf (names[k], NBD_MAX_STRING + 1, "%.*s",
                    (int) (r.length - 4 > NBD_MAX_STRING ? NBD_MAX_STRING
                           : r.length - 4), r.payload + 4);
      }
      k++;
    }
  }
  nc_fail (t, NULL, "more than 100000 replies to one option");
  nc_done (t);
}

struct nc_conn *
ncx_negotiate (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  const char *export = t->cfg->export_name ? t->cfg->export_name : "";
  struct nbdp_uri u;
  char err[256];
  uint16_t gflags;

  if (t->cfg->uri && nbdp_uri_parse (t->cfg->uri, &u, err, sizeof err) == 0) {
    c->export_name = strdup (u.export_name ? u.export_name : "");
    nbdp_uri_free (&u);
  }
  else
    c->export_name = strdup (export);
  if (c->export_name == NULL)
    nc_error (t, "out of memory");
  nc_greeting (t, c, &gflags);
  if (!(gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_unsupported (t, "the server does not offer fixed newstyle "
                    "(handshake flags 0x%04x)", gflags);
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE);
  return c;
}

uint32_t
ncx_simple_option (struct nc_ctx *t, struct nc_conn *c, uint32_t option)
{
  nc_send_option (t, c, option, NULL, 0);
  return nc_option_final (t, c);
}

uint32_t
ncx_go (struct nc_ctx *t, struct nc_conn *c, bool block_size)
{
  size_t nl = strlen (c->export_name);
  unsigned char *b = malloc (4 + nl + 2 + 2);
  uint32_t rep;

  if (b == NULL)
    nc_error (t, "out of memory");
  nbdp_put32 (b, nl);
  memcpy (b + 4, c->export_name, nl);
  nbdp_put16 (b + 4 + nl, block_size ? 1 : 0);
  nbdp_put16 (b + 6 + nl, NBD_INFO_BLOCK_SIZE);
  nc_send_option (t, c, NBD_OPT_GO, b, 4 + nl + 2 + (block_size ? 2 : 0));
  free (b);
  rep = nc_option_final (t, c);
  if (rep == NBD_REP_ACK && c->s.transmission) {
    c->c->structured = c->s.structured;
    c->c->extended = c->s.extended;
    c->c->transmission = true;
    c->c->size = c->s.export_size;
    c->c->eflags = c->s.eflags;
  }
  return rep;
}

int64_t
ncx_context_id (const struct nc_conn *c, const char *name)
{
  for (size_t i = 0; i < c->s.nr_contexts; i++)
    if (strcmp (c->s.context_names[i], name) == 0)
      return c->s.context_ids[i];
  return -1;
}

size_t
ncx_extents_of (const struct ncx_reply *r, uint32_t id,
                const struct nbdp_bs_extent **first)
{
  size_t i = 0, n = 0;

  while (i < r->n_ext && r->ext[i].context_id != id)
    i++;
  *first = i < r->n_ext ? &r->ext[i] : NULL;
  while (i + n < r->n_ext && r->ext[i + n].context_id == id)
    n++;
  return n;
}

static int
cmp_range (const void *a, const void *b)
{
  const struct ncx_chunk *x = *(const struct ncx_chunk *const *) a;
  const struct ncx_chunk *y = *(const struct ncx_chunk *const *) b;

  return x->off < y->off ? -1 : x->off > y->off;
}

bool
ncx_check_read (struct nc_ctx *t, const struct ncx_reply *r,
                const unsigned char *expect, const char *id)
{
  const struct ncx_chunk **v;
  char d[512];
  size_t n = 0;
  uint64_t covered = 0, end = r->offset;
  bool ok = true;

  ncx_describe (r, d, sizeof d);
  if (!r->complete || r->error) {
    nc_fail (t, id, "READ offset %" PRIu64 " length %" PRIu64 ": got %s "
             "[%s], expected success", r->offset, r->count, ncx_errstr (r),
             d);
    return false;
  }
  if ((r->conn->s.structured || r->conn->s.extended) && r->simple) {
    nc_fail (t, id, "READ offset %" PRIu64 " length %" PRIu64 " with %s "
             "negotiated: got [%s], expected chunks only", r->offset,
             r->count, r->conn->s.extended ? "extended headers"
             : "structured replies", d);
    return false;
  }
  if (r->simple)
    goto compare;
  v = malloc ((r->n_c + 1) * sizeof *v);
  if (v == NULL)
    nc_error (t, "out of memory");
  for (size_t i = 0; i < r->n_c; i++)
    if (r->c[i].type == NBD_REPLY_TYPE_OFFSET_DATA ||
        r->c[i].type == NBD_REPLY_TYPE_OFFSET_HOLE)
      v[n++] = &r->c[i];
  qsort (v, n, sizeof *v, cmp_range);
  for (size_t i = 0; i < n && ok; i++) {
    const struct ncx_chunk *c = v[i];
    if (c->len == 0 || c->off < r->offset || c->len > r->count ||
        c->off - r->offset > r->count - c->len) {
      nc_fail (t, id, "READ offset %" PRIu64 " length %" PRIu64 ": content "
               "chunk %s %" PRIu64 "+%" PRIu64 " is empty or outside the "
               "request [%s]", r->offset, r->count, ncx_type_name (c->type),
               c->off, c->len, d);
      ok = false;
    }
    else if (c->off < end) {
      nc_fail (t, id, "READ offset %" PRIu64 " length %" PRIu64 ": content "
               "chunk %s %" PRIu64 "+%" PRIu64 " overlaps another chunk "
               "[%s]", r->offset, r->count, ncx_type_name (c->type), c->off,
               c->len, d);
      ok = false;
    }
    else {
      covered += c->len;
      end = c->off + c->len;
    }
  }
  free (v);
  if (ok && covered != r->count) {
    nc_fail (t, id, "READ offset %" PRIu64 " length %" PRIu64 ": successful "
             "reply whose content chunks cover %" PRIu64 " bytes, expected "
             "all %" PRIu64 " [%s]", r->offset, r->count, covered, r->count,
             d);
    ok = false;
  }
  if (!ok)
    return false;
 compare:
  if (expect && r->data) {
    size_t k = ncx_first_diff (r->data, expect, r->count);
    if (k != r->count) {
      nc_fail (t, id, "READ offset %" PRIu64 " length %" PRIu64 ": byte at "
               "offset %" PRIu64 " reads 0x%02x, expected 0x%02x (what was "
               "written, or zero where nothing was) [%s]", r->offset,
               r->count, r->offset + k, r->data[k], expect[k], d);
      return false;
    }
  }
  return true;
}

bool
ncx_check_done_last (struct nc_ctx *t, const struct ncx_reply *r,
                     const char *id)
{
  char d[512];

  if (!r->complete || r->simple)
    return true;
  for (size_t i = 0; i < r->n_c; i++) {
    bool done = r->c[i].flags & NBD_REPLY_FLAG_DONE;
    if (done != (i + 1 == r->n_c)) {
      nc_fail (t, id, "reply to cookie 0x%" PRIx64 ": chunk %zu of %zu "
               "(%s) has NBD_REPLY_FLAG_DONE %s, expected it set on the last "
               "chunk only [%s]", r->cookie, i + 1, r->n_c,
               ncx_type_name (r->c[i].type), done ? "set" : "clear",
               ncx_describe (r, d, sizeof d));
      return false;
    }
  }
  return true;
}

bool
ncx_check_bs (struct nc_ctx *t, const struct ncx_reply *r, const char *id)
{
  const struct nc_conn *c = r->conn;
  const bool ext = c->s.extended;
  const bool one = r->flags & NBD_CMD_FLAG_REQ_ONE;
  char d[512];
  bool ok = true;

  ncx_describe (r, d, sizeof d);
  if (!r->complete || r->error || r->simple) {
    nc_fail (t, id, "BLOCK_STATUS offset %" PRIu64 " length %" PRIu64
             "%s: got %s [%s], expected one status chunk per selected "
             "context", r->offset, r->count, one ? " REQ_ONE" : "",
             ncx_errstr (r), d);
    return false;
  }
  for (size_t i = 0; i < r->n_c; i++) {
    const struct ncx_chunk *ch = &r->c[i];
    bool known = false;
    if (ch->type != NBD_REPLY_TYPE_BLOCK_STATUS &&
        ch->type != NBD_REPLY_TYPE_BLOCK_STATUS_EXT)
      continue;
    if (ext != (ch->type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT)) {
      nc_fail (t, ext ? "EH-BS-6" : "EH-BS-2", "BLOCK_STATUS with %s: got "
               "a %s chunk [%s]", ext ? "extended headers"
               : "structured replies (no extended headers)",
               ncx_type_name (ch->type), d);
      ok = false;
    }
    for (size_t k = 0; k < c->s.nr_contexts; k++)
      known |= c->s.context_ids[k] == ch->context_id;
    if (!known) {
      nc_fail (t, "BS-CHUNK-2", "BLOCK_STATUS: status chunk for context "
               "%" PRIu32 ", which was not selected [%s]", ch->context_id, d);
      ok = false;
    }
    if (ch->n_desc == 0) {
      nc_fail (t, "CMD-BS-10", "BLOCK_STATUS: status chunk without "
               "descriptors [%s]", d);
      ok = false;
    }
  }
  for (size_t k = 0; k < c->s.nr_contexts; k++) {
    uint32_t cid = c->s.context_ids[k];
    size_t n = 0;
    const struct nbdp_bs_extent *e;
    uint64_t sum = 0;
    for (size_t i = 0; i < r->n_c; i++)
      if ((r->c[i].type == NBD_REPLY_TYPE_BLOCK_STATUS ||
           r->c[i].type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT) &&
          r->c[i].context_id == cid)
        n++;
    if (n != 1) {
      nc_fail (t, "BS-CHUNK-2", "BLOCK_STATUS offset %" PRIu64 " length %"
               PRIu64 ": %zu status chunks for context %" PRIu32 " (%s), "
               "expected exactly one [%s]", r->offset, r->count, n, cid,
               c->s.context_names[k], d);
      ok = false;
      continue;
    }
    n = ncx_extents_of (r, cid, &e);
    if (one && n != 1) {
      nc_fail (t, "BS-CHUNK-4", "BLOCK_STATUS with REQ_ONE: %zu descriptors "
               "for context %s, expected exactly one [%s]", n,
               c->s.context_names[k], d);
      ok = false;
    }
    for (size_t i = 0; i < n; i++) {
      if (e[i].length == 0) {
        nc_fail (t, ext ? "EH-BS-5" : "BS-CHUNK-3", "BLOCK_STATUS: "
                 "descriptor %zu for %s has length 0 [%s]", i,
                 c->s.context_names[k], d);
        ok = false;
      }
      if (ext && strncmp (c->s.context_names[k], "base:", 5) == 0 &&
          (e[i].flags >> 32)) {
        nc_fail (t, "EH-BS-7", "BLOCK_STATUS: descriptor %zu for %s has "
                 "status 0x%" PRIx64 " (upper 32 bits set)", i,
                 c->s.context_names[k], e[i].flags);
        ok = false;
      }
      if (one && e[i].length > r->count) {
        nc_fail (t, "BS-CHUNK-5", "BLOCK_STATUS REQ_ONE length %" PRIu64
                 ": descriptor of %" PRIu64 " for %s, longer than the "
                 "request", r->count, e[i].length, c->s.context_names[k]);
        ok = false;
      }
      if (i + 1 < n) {
        sum += e[i].length;
        if (sum >= r->count) {
          nc_fail (t, "BS-CHUNK-6", "BLOCK_STATUS offset %" PRIu64
                   " length %" PRIu64 ": the first %zu of %zu descriptors "
                   "for %s already cover %" PRIu64 " bytes; only the last "
                   "may reach the end of the request", r->offset, r->count,
                   i + 1, n, c->s.context_names[k], sum);
          ok = false;
          break;
        }
      }
    }
  }
  return ok;
}

/* Status of [off, off+len) per the extents of context cid: OR and AND of
 * the flags of every extent overlapping it; false if none overlaps.
 */
bool
ncx_flags_over (const struct ncx_reply *r, uint32_t cid, uint64_t off,
                uint64_t len, uint64_t *or_flags, uint64_t *and_flags)
{
  const struct nbdp_bs_extent *e;
  size_t n = ncx_extents_of (r, cid, &e);
  bool any = false;

  *or_flags = 0;
  *and_flags = ~UINT64_C (0);
  for (size_t i = 0; i < n; i++) {
    uint64_t s = e[i].offset, en = e[i].offset + e[i].length;
    if (en <= off || s >= off + len)
      continue;
    any = true;
    *or_flags |= e[i].flags;
    *and_flags &= e[i].flags;
  }
  return any;
}

bool
ncx_check_zero_extents (struct nc_ctx *t, const struct ncx_reply *r,
                        uint32_t cid, const char *id)
{
  const struct nbdp_bs_extent *e;
  size_t n = ncx_extents_of (r, cid, &e);
  uint64_t lo = r->offset, hi = r->offset + r->count;

  for (size_t i = 0; i < n; i++) {
    uint64_t s = e[i].offset, en = e[i].offset + e[i].length;
    if (!(e[i].flags & NBD_STATE_ZERO))
      continue;
    if (s < lo)
      s = lo;
    if (en > hi)
      en = hi;
    while (s < en) {
      uint64_t l = en - s > ncx_max_io (r->conn) ? ncx_max_io (r->conn)
        : en - s;
      struct ncx_reply *rd = ncx_cmd (t, r->conn, NBD_CMD_READ, 0, s, l,
                                      NULL);
      if (!ncx_ok (rd))
        nc_error (t, "READ %" PRIu64 "+%" PRIu64 " (to check an extent "
                  "reported NBD_STATE_ZERO) failed: %s", s, l,
                  ncx_errstr (rd));
      if (rd->data && !ncx_all_zero (rd->data, l)) {
        size_t k = 0;
        while (rd->data[k] == 0)
          k++;
        nc_fail (t, id, "BLOCK_STATUS reported extent %" PRIu64 "+%" PRIu64
                 " as NBD_STATE_ZERO (reads as zeroes), but offset %" PRIu64
                 " reads 0x%02x", e[i].offset, e[i].length, s + k,
                 rd->data[k]);
        ncx_free (rd);
        return false;
      }
      ncx_free (rd);
      s += l;
    }
  }
  return true;
}

void
ncx_zero (struct nc_ctx *t, struct nc_conn *c, uint64_t off, uint64_t len)
{
  unsigned char *z;

  if (c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES) {
    ncx_setup (t, c, NBD_CMD_WRITE_ZEROES, 0, off, len);
    return;
  }
  z = calloc (1, ncx_max_io (c));
  if (z == NULL)
    nc_error (t, "out of memory");
  for (uint64_t done = 0; done < len; ) {
    uint64_t n = len - done > ncx_max_io (c) ? ncx_max_io (c) : len - done;
    struct ncx_reply *r = ncx_cmd (t, c, NBD_CMD_WRITE, 0, off + done, n, z);
    if (!ncx_ok (r))
      nc_error (t, "setup: WRITE of zeroes offset %" PRIu64 " length %"
                PRIu64 " failed: %s", off + done, n, ncx_errstr (r));
    ncx_free (r);
    done += n;
  }
  free (z);
}
