/* nbd-spy: the decoder of one proxied connection (see spy.h).  Two byte
 * streams, one per direction, each cut into messages by a small state
 * machine; the handshake state is shared (the server's answer decides
 * what the client may send next).  Each message gives one transcript
 * line and goes to the rule engine: rules.h judges the server's messages
 * and, with nbdp_rules_check_request, the client's requests;
 * rules-resize.h judges the draft RESIZE extension on top, fed the same
 * way as common/client-resize.c feeds it.
 *
 * Bounds: a message is buffered whole only when its payload is at most
 * PAYLOAD_CAP bytes (data payloads never: READ and WRITE data are
 * summarized from their first bytes and passed over), so the memory of a
 * connection stays bounded whatever lengths the peers announce.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbd-proto.h"
#include "nbd-draft.h"
#include "codec.h"
#include "rules.h"
#include "rules-resize.h"
#include "spy.h"

#define PAYLOAD_CAP   (64 * 1024 * 1024) /* largest payload kept whole */
#define OPT_CAP       (1024 * 1024)      /* largest option data kept */
#define WAIT_LIMIT    (1024 * 1024)      /* undecodable bytes kept */
#define SUMMARY_BYTES 16                 /* bytes shown of a payload */
#define MAX_OPTQ      64                 /* options awaiting replies */
#define LINE_MAX_LEN  1536

enum cstate {
  C_GREETING_WAIT,            /* no greeting yet: the client must wait */
  C_CFLAGS,                   /* 4 bytes of client flags */
  C_OPTIONS,                  /* option requests */
  C_WAIT,                     /* after GO/EXPORT_NAME/STARTTLS: wait */
  C_TRANSMISSION,             /* requests */
  C_DONE,                     /* after NBD_CMD_DISC or NBD_OPT_ABORT */
};

enum sstate {
  S_GREETING,
  S_OPTIONS,                  /* option replies (or the EXPORT_NAME one) */
  S_TRANSMISSION,             /* replies */
  S_DONE,                     /* after the reply to NBD_OPT_ABORT */
};

struct stream {
  unsigned char *buf;
  size_t pos, len, cap;       /* unconsumed bytes are buf[pos..len) */
  uint64_t skip;              /* payload bytes still to pass over */
  uint64_t messages, bytes;
  bool eof;
};

struct pending_opt {
  uint32_t option;
  unsigned char *data;        /* NULL if not kept */
  uint32_t len;
};

enum form {
  FORM_NONE, FORM_SET, FORM_QUERY, FORM_SUB, FORM_UNSUB, FORM_WRITE,
};

/* A request the RESIZE rules follow until its reply is complete. */
struct rzreq {
  struct rzreq *next;
  uint64_t cookie;
  uint16_t type, flags;
  uint64_t offset, count;
  enum form form;
  uint64_t old_size;
  struct nbdp_rz_reply rep;
  struct nbdp_rz_state *before; /* the state when it was sent */
  bool sub_active_at_final;
};

struct spy_conn {
  unsigned id;
  struct spy_config cfg;
  struct spy_sink sink;
  struct stream st[2];
  enum cstate cs;
  enum sstate ss;
  bool raw;
  char raw_reason[160];

  /* Handshake. */
  bool oldstyle;
  uint16_t gflags;
  uint32_t cflags;
  bool no_zeroes;
  bool export_name_sent;
  struct pending_opt q[MAX_OPTQ];
  size_t nq;

  struct nbdp_session s;

  /* Draft RESIZE. */
  struct nbdp_rz_state rz;
  bool rz_encoding_set;
  uint32_t opt_resize_features;
  bool opt_resize_ok;         /* the NBD_OPT_RESIZE at the head was well formed */
  struct nbdp_rz_export ex_cur; /* gathered from the INFO/GO replies */
  struct nbdp_rz_export info_ex;
  bool have_info_ex;          /* an INFO ack, nothing sent since but GO */
  struct rzreq *rzreqs;

  uint64_t n_must, n_should;
};

/* ---- output -------------------------------------------------------- */

static void emit (struct spy_conn *c, enum spy_dir d, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
static void
emit (struct spy_conn *c, enum spy_dir d, const char *fmt, ...)
{
  char line[LINE_MAX_LEN];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  if (c->sink.line)
    c->sink.line (c->sink.opaque, c->id, d, line);
}

static void violation (struct spy_conn *c, enum spy_dir d, const char *id,
                       bool must, const char *fmt, ...)
  __attribute__ ((format (printf, 5, 6)));
static void
violation (struct spy_conn *c, enum spy_dir d, const char *id, bool must,
           const char *fmt, ...)
{
  char msg[LINE_MAX_LEN];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (must)
    c->n_must++;
  else
    c->n_should++;
  if (c->sink.violation)
    c->sink.violation (c->sink.opaque, c->id, d, id, must, msg);
}

static void
report (struct spy_conn *c, enum spy_dir d, const struct nbdp_violations *vs)
{
  for (size_t i = 0; i < vs->n; i++)
    violation (c, d, vs->v[i].id, vs->v[i].level == NBDP_MUST, "%s",
               vs->v[i].msg);
  if (vs->dropped)
    emit (c, SPY_NOTE, "%zu more violations of this message not listed",
          vs->dropped);
}

static void
report_rz (struct spy_conn *c, enum spy_dir d,
           const struct nbdp_rz_violations *vs)
{
  for (size_t i = 0; i < vs->n; i++) {
    const struct nbdp_rz_violation *v = &vs->v[i];
    violation (c, d, v->id, v->level == NBDP_RZ_MUST, "%s%s%s%s%s", v->msg,
               v->cli_id ? " (client rule " : "", v->cli_id ? v->cli_id : "",
               v->cli_id ? (v->disconnect ? ": a conforming client "
                            "disconnects)" : ")") : "",
               v->repeats ? " (repeated)" : "");
  }
  if (vs->dropped)
    emit (c, SPY_NOTE, "%zu more RESIZE violations not listed", vs->dropped);
}

static void
go_raw (struct spy_conn *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static void
go_raw (struct spy_conn *c, const char *fmt, ...)
{
  va_list ap;

  if (c->raw)
    return;
  va_start (ap, fmt);
  vsnprintf (c->raw_reason, sizeof c->raw_reason, fmt, ap);
  va_end (ap);
  c->raw = true;
  for (int d = 0; d < 2; d++) {
    free (c->st[d].buf);
    c->st[d].buf = NULL;
    c->st[d].pos = c->st[d].len = c->st[d].cap = 0;
    c->st[d].skip = 0;
  }
  emit (c, SPY_NOTE, "raw pass-through from here on: %s", c->raw_reason);
}

/* ---- formatting helpers -------------------------------------------- */

struct nb {
  char b[48];
};

static const char *
opt_name (struct nb *nb, uint32_t v)
{
  return nbdp_opt_str (nb->b, sizeof nb->b, v);
}

static const char *
rep_name (struct nb *nb, uint32_t v)
{
  return nbdp_rep_str (nb->b, sizeof nb->b, v);
}

static const char *
info_name (struct nb *nb, uint16_t v)
{
  return nbdp_info_str (nb->b, sizeof nb->b, v);
}

static const char *
cmd_name (struct nb *nb, uint16_t v)
{
  return nbdp_cmd_str (nb->b, sizeof nb->b, v);
}

static const char *
type_name (struct nb *nb, uint16_t v)
{
  return nbdp_reply_type_str (nb->b, sizeof nb->b, v);
}

static const char *
err_name (struct nb *nb, uint32_t v)
{
  return nbdp_error_str (nb->b, sizeof nb->b, v);
}

/* A protocol string, quoted, at most 80 bytes shown, other than
 * printable ASCII escaped.
 */
static const char *
quote (char *buf, size_t size, const unsigned char *p, size_t len)
{
  size_t o = 0, i, shown = len > 80 ? 80 : len;

  if (size < 8)
    return "";
  buf[o++] = '"';
  for (i = 0; i < shown && o + 8 < size; i++) {
    unsigned char ch = p[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
      buf[o++] = ch;
    else
      o += snprintf (buf + o, size - o, "\\x%02x", ch);
  }
  buf[o++] = '"';
  if (shown < len)
    o += snprintf (buf + o, size - o, "...(%zu bytes)", len);
  buf[o < size ? o : size - 1] = '\0';
  return buf;
}

/* "N bytes: aa bb cc ..." from the first bytes we have. */
static const char *
summary (char *buf, size_t size, const unsigned char *p, size_t have,
         uint64_t total, size_t maxshow)
{
  size_t o, i, shown = have < maxshow ? have : maxshow;

  o = snprintf (buf, size, "%" PRIu64 " bytes", total);
  if (shown && o < size)
    o += snprintf (buf + o, size - o, ":");
  for (i = 0; i < shown && o < size; i++)
    o += snprintf (buf + o, size - o, " %02x", p[i]);
  if (shown < total && o < size)
    snprintf (buf + o, size - o, " ...");
  return buf;
}

static uint64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- streams ------------------------------------------------------- */

static size_t
avail (const struct stream *st)
{
  return st->len - st->pos;
}

static const unsigned char *
data (const struct stream *st)
{
  return st->buf + st->pos;
}

static void
consume (struct stream *st, size_t n)
{
  if (st->buf == NULL)          /* dropped by go_raw */
    return;
  st->pos += n;
  if (st->pos == st->len)
    st->pos = st->len = 0;
}

static int
append (struct stream *st, const unsigned char *p, size_t n)
{
  if (st->pos > 0 && st->cap - st->len < n) {
    memmove (st->buf, st->buf + st->pos, st->len - st->pos);
    st->len -= st->pos;
    st->pos = 0;
  }
  if (st->cap - st->len < n) {
    size_t cap = st->cap ? st->cap : 65536;
    unsigned char *b;
    while (cap - st->len < n) {
      if (cap > SIZE_MAX / 2)
        return -1;
      cap *= 2;
    }
    b = realloc (st->buf, cap);
    if (b == NULL)
      return -1;
    st->buf = b;
    st->cap = cap;
  }
  memcpy (st->buf + st->len, p, n);
  st->len += n;
  return 0;
}

/* ---- option queue -------------------------------------------------- */

static void
optq_push (struct spy_conn *c, uint32_t option, const unsigned char *p,
           uint32_t len, bool have)
{
  struct pending_opt *o;

  if (c->nq == MAX_OPTQ) {
    go_raw (c, "more than %d options sent without replies", MAX_OPTQ);
    return;
  }
  o = &c->q[c->nq++];
  o->option = option;
  o->len = len;
  o->data = NULL;
  if (have && len) {
    o->data = malloc (len);
    if (o->data)
      memcpy (o->data, p, len);
  }
  if (c->nq == 1)
    nbdp_rules_option_sent (&c->s, option, o->data, o->data ? len : 0);
}

static void
optq_pop (struct spy_conn *c)
{
  if (c->nq == 0)
    return;
  free (c->q[0].data);
  memmove (&c->q[0], &c->q[1], (c->nq - 1) * sizeof c->q[0]);
  c->nq--;
  if (c->nq)
    nbdp_rules_option_sent (&c->s, c->q[0].option, c->q[0].data,
                            c->q[0].data ? c->q[0].len : 0);
}

/* ---- RESIZE bookkeeping -------------------------------------------- */

static enum form
form_of (uint16_t flags)
{
  bool q = flags & NBD_CMD_FLAG_RESIZE_QUERY;
  bool n = flags & NBD_CMD_FLAG_RESIZE_NOTIFY;

  return q && n ? FORM_UNSUB : q ? FORM_QUERY : n ? FORM_SUB : FORM_SET;
}

static const char *
form_str (uint16_t flags)
{
  switch (form_of (flags)) {
  case FORM_UNSUB: return "unsubscribe";
  case FORM_QUERY: return "query";
  case FORM_SUB: return "subscribe";
  default: return "set size";
  }
}

static bool
rz_auto_grow (const struct nbdp_rz_state *st)
{
  return st->mode == NBDP_RZ_MODE_FLAG_ONLY ||
    (st->mode == NBDP_RZ_MODE_NEGOTIATED &&
     (st->active & NBD_RESIZE_F_AUTO_GROW));
}

/* The encoding to judge by: given, or guessed from what the client did
 * (an NBD_OPT_RESIZE: negotiated; NBD_INFO_RESIZE listed without it:
 * info-optin; neither: flag-only, which falls back to legacy when only
 * NBD_FLAG_SEND_RESIZE is set and to nothing on servers without it).
 */
static void
rz_choose_encoding (struct spy_conn *c, bool info_listed)
{
  if (c->cfg.have_encoding)
    c->rz.encoding = c->cfg.encoding;
  else if (c->rz.opt_sent)
    c->rz.encoding = NBDP_RZ_ENC_NEGOTIATED;
  else if (info_listed)
    c->rz.encoding = NBDP_RZ_ENC_INFO_OPTIN;
  else
    c->rz.encoding = NBDP_RZ_ENC_FLAG_ONLY;
}

static struct rzreq *
rzreq_find (struct spy_conn *c, uint64_t cookie)
{
  for (struct rzreq *r = c->rzreqs; r; r = r->next)
    if (r->cookie == cookie)
      return r;
  return NULL;
}

static void
rzreq_unlink (struct spy_conn *c, struct rzreq *rq)
{
  for (struct rzreq **pp = &c->rzreqs; *pp; pp = &(*pp)->next)
    if (*pp == rq) {
      *pp = rq->next;
      break;
    }
  free (rq->before);
  free (rq);
}

/* A request the RESIZE rules follow: checks, then remember it. */
static void
rz_request (struct spy_conn *c, const struct nbdp_request *req)
{
  struct nbdp_rz_violations vs;
  struct rzreq *rq;
  bool write = req->type == NBD_CMD_WRITE ||
    req->type == NBD_CMD_WRITE_ZEROES;

  if (req->type == NBD_CMD_DISC) {
    if (c->rz.sub.active)
      c->rz.sub.disc_sent = true;
    return;
  }
  if (req->type != NBD_CMD_RESIZE &&
      !(write && c->rz.mode != NBDP_RZ_MODE_NONE))
    return;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&c->rz, req->type, req->flags, req->offset,
                         req->count, req->cookie, &vs);
  report_rz (c, SPY_CLIENT, &vs);
  if (!write && form_of (req->flags) == FORM_UNSUB && c->rz.sub.active)
    c->rz.sub.unsubscribing = true;

  rq = calloc (1, sizeof *rq);
  if (rq == NULL)
    return;
  rq->before = malloc (sizeof *rq->before);
  if (rq->before == NULL) {
    free (rq);
    return;
  }
  *rq->before = c->rz;
  rq->cookie = req->cookie;
  rq->type = req->type;
  rq->flags = req->flags;
  rq->offset = req->offset;
  rq->count = req->count;
  rq->form = write ? FORM_WRITE : form_of (req->flags);
  rq->old_size = c->rz.size;
  rq->next = c->rzreqs;
  c->rzreqs = rq;
  if (rq->form == FORM_SUB)
    /* Whether this client also changes the size is unknown here: assume
     * it may, so that notifications without REMOTE are not blamed.
     */
    nbdp_rz_sub_start (&c->rz, req->cookie, true);
}

/* One reply message of a request the RESIZE rules follow (before the
 * generic rules retire it).  final: the reply is complete with it.
 */
static void
rz_reply (struct spy_conn *c, const struct nbdp_reply *h,
          const unsigned char *payload, uint64_t len, bool known,
          const struct nbdp_rules_req *r, bool final)
{
  struct nbdp_rz_violations vs;
  struct rzreq *rq = known ? rzreq_find (c, h->cookie) : NULL;
  bool chunk = h->kind != NBDP_REPLY_SIMPLE;
  bool resize = chunk && h->type == NBD_REPLY_TYPE_RESIZE;

  nbdp_rz_violations_clear (&vs);
  if (!known) {
    if (resize) {
      struct nbdp_rz_where w = { .known = false, .cookie = h->cookie };
      struct nbdp_rz_chunk ch;
      nbdp_rz_check_chunk (&c->rz, &w, payload, len, &ch, &vs);
    }
    else if (c->rz.have_ended_cookie)
      nbdp_rz_check_after_end (&c->rz, h->cookie, chunk ? h->type : 0, &vs);
    report_rz (c, SPY_SERVER, &vs);
    return;
  }
  if (resize) {
    struct nbdp_rz_where w = {
      .known = true, .cmd = r->type, .cmd_flags = r->flags,
      .offset = r->offset, .count = r->count, .cookie = h->cookie,
      .extended_hdr = h->kind == NBDP_REPLY_EXTENDED,
      .hdr_offset = h->offset, .chunk_flags = h->flags,
    };
    struct nbdp_rz_chunk ch;
    if (nbdp_rz_check_chunk (&c->rz, &w, payload, len, &ch, &vs) && rq) {
      rq->rep.n_resize++;
      if (rq->rep.n_resize == 1) {
        rq->rep.chunk = ch;
        rq->rep.resize_done = final;
        rq->rep.resize_before_final = !final;
      }
      else if (final)
        rq->rep.resize_done = true;
      if (rq->form == FORM_SUB && nbdp_rz_size_reply (&c->rz)) {
        uint64_t t = now_ms ();
        nbdp_rz_check_sub_chunk (&c->rz, &ch, final, t, &vs);
        nbdp_rz_sub_chunk (&c->rz, &ch, t);
        if (final)
          nbdp_rz_sub_end (&c->rz);
      }
    }
  }
  if (rq == NULL) {
    report_rz (c, SPY_SERVER, &vs);
    return;
  }

  /* Tally, as common/client-resize.c does. */
  if (!chunk) {
    rq->rep.simple = true;
    if (h->error && rq->rep.error == 0)
      rq->rep.error = h->error;
  }
  else if (h->type == NBD_REPLY_TYPE_NONE)
    rq->rep.n_none++;
  else if (h->type == NBD_REPLY_TYPE_ERROR_OFFSET) {
    rq->rep.error_offset = true;
    if (rq->rep.error == 0 && payload && len >= 4)
      rq->rep.error = nbdp_get32 (payload);
  }
  else if (h->type & NBD_REPLY_TYPE_ERR (0)) {
    if (rq->rep.error == 0 && payload && len >= 4)
      rq->rep.error = nbdp_get32 (payload);
    else if (rq->rep.error == 0)
      rq->rep.error = NBD_EIO;
  }
  else if (!resize)
    rq->rep.n_other++;

  if (chunk && h->kind == NBDP_REPLY_EXTENDED && rq->type == NBD_CMD_RESIZE &&
      !resize && h->offset != rq->offset)
    nbdp_rz_violation_add (&vs, "RZ-EH-3", NULL, NBDP_RZ_MUST, false,
                           "sent NBD_CMD_RESIZE offset %" PRIu64 " (cookie %"
                           PRIu64 "); an extended reply chunk carries offset %"
                           PRIu64 "; expected the request's offset",
                           rq->offset, rq->cookie, h->offset);

  if (rq->form == FORM_SUB && final && !resize) {
    uint32_t err = 0;
    if (!chunk)
      err = h->error;
    else if ((h->type & NBD_REPLY_TYPE_ERR (0)) && payload && len >= 4)
      err = nbdp_get32 (payload);
    if (c->rz.sub.started)
      nbdp_rz_check_sub_end (&c->rz, chunk ? h->type : (err ? 0x8001 : 0),
                             err, true, &vs);
    nbdp_rz_sub_end (&c->rz);
  }
  if (rq->form == FORM_UNSUB && final)
    rq->sub_active_at_final = c->rz.sub.active;

  if (final) {
    struct nbdp_rz_state *b = rq->before;
    switch (rq->form) {
    case FORM_SET:
      nbdp_rz_check_resize_outcome (b, rq->flags, rq->offset, rq->count,
                                    rq->rep.error, &vs);
      nbdp_rz_check_set_reply (b, rq->offset, rq->old_size, &rq->rep, &vs);
      nbdp_rz_learn_set_reply (&c->rz, rq->offset, &rq->rep);
      break;
    case FORM_QUERY:
      nbdp_rz_check_resize_outcome (b, rq->flags, rq->offset, rq->count,
                                    rq->rep.error, &vs);
      nbdp_rz_check_query_reply (b, &rq->rep, &vs);
      if (rq->rep.error == 0 && rq->rep.n_resize)
        nbdp_rz_learn_chunk (&c->rz, &rq->rep.chunk);
      break;
    case FORM_UNSUB:
      nbdp_rz_check_resize_outcome (b, rq->flags, rq->offset, rq->count,
                                    rq->rep.error, &vs);
      nbdp_rz_check_unsub_reply (b, &rq->rep, rq->sub_active_at_final, &vs);
      if (rq->rep.error == 0 && rq->rep.n_resize)
        nbdp_rz_learn_chunk (&c->rz, &rq->rep.chunk);
      break;
    case FORM_SUB:
      if (rq->rep.n_resize == 0)  /* refused, or ended at once */
        nbdp_rz_check_resize_outcome (b, rq->flags, rq->offset, rq->count,
                                      rq->rep.error, &vs);
      break;
    case FORM_WRITE:
      nbdp_rz_check_write_reply (b, rq->offset, rq->count, rq->old_size,
                                 &rq->rep, &vs);
      nbdp_rz_learn_write_reply (&c->rz, rq->offset, rq->count, &rq->rep);
      break;
    default:
      break;
    }
    rzreq_unlink (c, rq);
  }
  report_rz (c, SPY_SERVER, &vs);
  if (c->rz.mode != NBDP_RZ_MODE_NONE && c->rz.size != c->s.export_size) {
    emit (c, SPY_NOTE, "export size now %" PRIu64 " (was %" PRIu64 ")",
          c->rz.size, c->s.export_size);
    c->s.export_size = c->rz.size;
  }
}

/* ---- handshake: server --------------------------------------------- */

static void
enter_transmission (struct spy_conn *c)
{
  char fb[200], ab[96];

  c->ss = S_TRANSMISSION;
  c->cs = C_TRANSMISSION;
  c->s.transmission = true;
  c->s.ext_chunk_type = NBD_REPLY_TYPE_RESIZE;
  emit (c, SPY_NOTE, "transmission: export size %" PRIu64 ", flags %s, "
        "%s replies%s, resize mode %s (active %s)",
        c->s.export_size, nbdp_flags_str (fb, sizeof fb, c->s.eflags),
        c->s.extended ? "extended" : c->s.structured ? "structured"
        : "simple",
        c->s.have_block_size ? "" : ", no block size constraints",
        nbdp_rz_mode_name (c->rz.mode),
        nbdp_rz_features_str (ab, sizeof ab, c->rz.active));
}

static int
server_greeting (struct spy_conn *c, struct stream *st)
{
  struct nbdp_violations vs;
  const unsigned char *p = data (st);
  char fb[160];
  bool oldstyle;

  if (avail (st) < 18)
    return 0;
  /* Oldstyle needs the whole 152 bytes before it can be judged. */
  if (nbdp_get64 (p + 8) == NBD_OLD_VERSION && avail (st) < 152)
    return 0;
  nbdp_violations_clear (&vs);
  nbdp_rules_check_greeting (&c->s, p, &oldstyle, &vs);
  st->messages++;
  if (nbdp_get64 (p) != NBD_MAGIC ||
      (!oldstyle && nbdp_get64 (p + 8) != NBD_NEW_VERSION)) {
    emit (c, SPY_SERVER, "greeting: magic 0x%016" PRIx64 " 0x%016" PRIx64
          " (not NBDMAGIC + IHAVEOPT or oldstyle)", nbdp_get64 (p),
          nbdp_get64 (p + 8));
    report (c, SPY_SERVER, &vs);
    go_raw (c, "the server's greeting is not an NBD greeting");
    return -1;
  }
  if (oldstyle) {
    uint64_t size = nbdp_get64 (p + 16);
    uint16_t eflags = nbdp_get16 (p + 26);
    c->oldstyle = true;
    emit (c, SPY_SERVER, "greeting oldstyle: export size %" PRIu64
          " flags %s", size, nbdp_flags_str (fb, sizeof fb, eflags));
    c->s.export_size = size;
    c->s.eflags = eflags;
    nbdp_rules_check_eflags (&c->s, eflags, &vs);
    report (c, SPY_SERVER, &vs);
    consume (st, 152);
    {
      struct nbdp_rz_export ex = { .have_export = true, .size = size,
                                   .eflags = eflags, .info_len_ok = true };
      struct nbdp_rz_violations rvs;
      rz_choose_encoding (c, false);
      c->rz.used_export_name = true;
      nbdp_rz_violations_clear (&rvs);
      nbdp_rz_enter_transmission (&c->rz, &ex, &rvs);
      report_rz (c, SPY_SERVER, &rvs);
    }
    enter_transmission (c);
    return 1;
  }
  c->gflags = nbdp_get16 (p + 16);
  emit (c, SPY_SERVER, "greeting newstyle: handshake flags %s",
        nbdp_gflags_str (fb, sizeof fb, c->gflags));
  report (c, SPY_SERVER, &vs);
  consume (st, 18);
  c->ss = S_OPTIONS;
  if (c->cs == C_GREETING_WAIT)
    c->cs = C_CFLAGS;
  return 1;
}

static int
server_export_name_reply (struct spy_conn *c, struct stream *st)
{
  size_t need = c->no_zeroes ? 10 : 10 + NBD_NEWSTYLE_ZEROES;
  const unsigned char *p = data (st);
  struct nbdp_violations vs;
  struct nbdp_rz_violations rvs;
  struct nbdp_rz_export ex;
  uint64_t size;
  uint16_t eflags;
  char fb[160];

  if (avail (st) < need)
    return 0;
  size = nbdp_get64 (p);
  eflags = nbdp_get16 (p + 8);
  st->messages++;
  emit (c, SPY_SERVER, "export-name reply: export size %" PRIu64
        " flags %s%s", size, nbdp_flags_str (fb, sizeof fb, eflags),
        c->no_zeroes ? "" : " + 124 zero bytes");
  nbdp_violations_clear (&vs);
  c->s.export_size = size;
  c->s.eflags = eflags;
  nbdp_rules_check_eflags (&c->s, eflags, &vs);
  if (!c->no_zeroes) {
    for (size_t i = 10; i < need; i++)
      if (p[i] != 0) {
        nbdp_violation_add (&vs, "FLAG-HS-2", NBDP_MUST, "NBD_OPT_EXPORT_NAME "
                            "reply: byte %zu of the 124 padding bytes is "
                            "0x%02x, expected zero", i - 10, p[i]);
        break;
      }
  }
  report (c, SPY_SERVER, &vs);
  consume (st, need);
  memset (&ex, 0, sizeof ex);
  ex.have_export = true;
  ex.size = size;
  ex.eflags = eflags;
  ex.info_len_ok = true;
  c->rz.used_export_name = true;
  c->rz.structured = c->s.structured;
  c->rz.extended = c->s.extended;
  nbdp_rz_violations_clear (&rvs);
  nbdp_rz_enter_transmission (&c->rz, &ex, &rvs);
  report_rz (c, SPY_SERVER, &rvs);
  enter_transmission (c);
  return 1;
}

/* Describe one NBD_REP_INFO item and gather it for the RESIZE rules. */
static void
info_item (struct spy_conn *c, const unsigned char *p, uint32_t len,
           char *out, size_t size)
{
  struct nb nb;
  char fb[200], qb[400];
  uint16_t info;

  if (len < 2) {
    snprintf (out, size, " (too short for an information type)");
    return;
  }
  info = nbdp_get16 (p);
  switch (info) {
  case NBD_INFO_EXPORT:
    if (len == 12) {
      c->ex_cur.have_export = true;
      c->ex_cur.size = nbdp_get64 (p + 2);
      c->ex_cur.eflags = nbdp_get16 (p + 10);
      snprintf (out, size, ": %s export size %" PRIu64 " flags %s",
                info_name (&nb, info), nbdp_get64 (p + 2),
                nbdp_flags_str (fb, sizeof fb, nbdp_get16 (p + 10)));
      return;
    }
    break;
  case NBD_INFO_NAME:
  case NBD_INFO_DESCRIPTION:
    snprintf (out, size, ": %s %s", info_name (&nb, info),
              quote (qb, sizeof qb, p + 2, len - 2));
    return;
  case NBD_INFO_BLOCK_SIZE:
    if (len == 14) {
      c->ex_cur.have_block_size = true;
      c->ex_cur.min_block = nbdp_get32 (p + 2);
      snprintf (out, size, ": %s minimum %" PRIu32 " preferred %" PRIu32
                " maximum %" PRIu32, info_name (&nb, info), nbdp_get32 (p + 2),
                nbdp_get32 (p + 6), nbdp_get32 (p + 10));
      return;
    }
    break;
  case NBD_INFO_RESIZE:
    c->ex_cur.n_info_resize++;
    if (len != NBD_RESIZE_INFO_LEN)
      c->ex_cur.info_len_ok = false;
    else {
      struct nbdp_rz_info in;
      char ab[96];
      nbdp_rz_decode_info (p, len, &in);
      if (!c->ex_cur.info.present)
        c->ex_cur.info = in;
      snprintf (out, size, ": %s capabilities %s active %s granularity %"
                PRIu32 " maximum size %" PRIu64, info_name (&nb, info),
                nbdp_rz_features_str (fb, sizeof fb, in.capabilities),
                nbdp_rz_features_str (ab, sizeof ab, in.active),
                in.granularity, in.max_size);
      return;
    }
    break;
  default:
    break;
  }
  snprintf (out, size, ": %s (%" PRIu32 " bytes)", info_name (&nb, info),
            len);
}

static void
option_final (struct spy_conn *c, const struct pending_opt *o, uint32_t rep,
              uint32_t length)
{
  struct nbdp_rz_violations rvs;

  nbdp_rz_violations_clear (&rvs);
  switch (o->option) {
  case NBD_OPT_RESIZE:
    if (c->opt_resize_ok)
      nbdp_rz_check_opt_reply (&c->rz, rep, length, &rvs);
    nbdp_rz_learn_opt_reply (&c->rz, rep, c->opt_resize_features);
    break;
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
    if (rep == NBD_REP_ACK) {
      bool go = o->option == NBD_OPT_GO;
      c->rz.structured = c->s.structured;
      c->rz.extended = c->s.extended;
      nbdp_rz_check_export (&c->rz, go, &c->ex_cur, &rvs);
      if (!go) {
        c->info_ex = c->ex_cur;
        c->have_info_ex = true;
      }
      else {
        if (c->have_info_ex)
          nbdp_rz_check_info_then_go (&c->rz, &c->info_ex, &c->ex_cur, &rvs);
        nbdp_rz_enter_transmission (&c->rz, &c->ex_cur, &rvs);
        report_rz (c, SPY_SERVER, &rvs);
        enter_transmission (c);
        return;
      }
    }
    else if (o->option == NBD_OPT_GO && c->cs == C_WAIT)
      c->cs = C_OPTIONS;
    break;
  case NBD_OPT_STARTTLS:
    if (rep == NBD_REP_ACK) {
      go_raw (c, "NBD_OPT_STARTTLS acknowledged: TLS follows");
      return;
    }
    if (c->cs == C_WAIT)
      c->cs = C_OPTIONS;
    break;
  case NBD_OPT_ABORT:
    c->ss = S_DONE;
    c->cs = C_DONE;
    break;
  default:
    break;
  }
  report_rz (c, SPY_SERVER, &rvs);
}

static int
server_option_reply (struct spy_conn *c, struct stream *st)
{
  struct nbdp_option_reply r;
  struct nbdp_violations vs;
  const unsigned char *p;
  struct nb nb1, nb2;
  char detail[800], qb[400];
  enum nbdp_rules_progress prog;
  size_t keep;
  bool whole;

  if (avail (st) < NBDP_OPTION_REPLY_SIZE)
    return 0;
  nbdp_decode_option_reply (data (st), &r);
  if (r.magic != NBD_REP_MAGIC) {
    st->messages++;
    emit (c, SPY_SERVER, "option reply? magic 0x%016" PRIx64 " (expected "
          "0x%016" PRIx64 ")", r.magic, NBD_REP_MAGIC);
    violation (c, SPY_SERVER, "COMPAT-BASE-1", true, "option reply: got "
               "magic 0x%016" PRIx64 ", expected 0x%016" PRIx64
               " (NBD_REP_MAGIC)", r.magic, NBD_REP_MAGIC);
    go_raw (c, "bad option reply magic");
    return -1;
  }
  whole = r.length <= OPT_CAP;
  keep = whole ? r.length : SUMMARY_BYTES;
  if (avail (st) < NBDP_OPTION_REPLY_SIZE + keep)
    return 0;
  p = data (st) + NBDP_OPTION_REPLY_SIZE;
  st->messages++;

  detail[0] = '\0';
  if (!whole)
    snprintf (detail, sizeof detail, ": %" PRIu32 " bytes, not decoded",
              r.length);
  else if (r.reply == NBD_REP_INFO &&
           (c->nq == 0 || c->q[0].option == NBD_OPT_INFO ||
            c->q[0].option == NBD_OPT_GO))
    info_item (c, p, r.length, detail, sizeof detail);
  else if (r.reply == NBD_REP_SERVER && r.length >= 4 &&
           nbdp_get32 (p) <= r.length - 4) {
    uint32_t nl = nbdp_get32 (p);
    char qd[400];
    snprintf (detail, sizeof detail, ": name %s description %s",
              quote (qb, sizeof qb, p + 4, nl),
              quote (qd, sizeof qd, p + 4 + nl, r.length - 4 - nl));
  }
  else if (r.reply == NBD_REP_META_CONTEXT && r.length >= 4)
    snprintf (detail, sizeof detail, ": context ID %" PRIu32 " name %s",
              nbdp_get32 (p), quote (qb, sizeof qb, p + 4, r.length - 4));
  else if ((r.reply & NBD_REP_ERR (0)) && r.length)
    snprintf (detail, sizeof detail, ": message %s",
              quote (qb, sizeof qb, p, r.length));
  else if (r.length)
    snprintf (detail, sizeof detail, ": %s",
              summary (qb, sizeof qb, p, r.length, r.length, SUMMARY_BYTES));
  emit (c, SPY_SERVER, "option reply %s to %s length %" PRIu32 "%s",
        rep_name (&nb1, r.reply), opt_name (&nb2, r.option), r.length,
        detail);

  nbdp_violations_clear (&vs);
  prog = nbdp_rules_check_option_reply (&c->s, &r, whole ? p : NULL, &vs);
  report (c, SPY_SERVER, &vs);
  consume (st, NBDP_OPTION_REPLY_SIZE + keep);
  st->skip = r.length - keep;
  if (c->nq > 0 && prog == NBDP_RULES_FINAL) {
    struct pending_opt o = c->q[0];
    c->q[0].data = NULL;      /* o owns it now */
    optq_pop (c);
    option_final (c, &o, r.reply, r.length);
    free (o.data);
  }
  return c->raw ? -1 : 1;
}

/* ---- handshake: client --------------------------------------------- */

static int
client_flags (struct spy_conn *c, struct stream *st)
{
  char fb[160];
  uint32_t f;

  if (avail (st) < 4)
    return 0;
  f = nbdp_get32 (data (st));
  st->messages++;
  c->cflags = f;
  emit (c, SPY_CLIENT, "client flags %s",
        nbdp_cflags_str (fb, sizeof fb, f));
  if (f & ~(uint32_t) (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
    violation (c, SPY_CLIENT, "FLAG-CLI-5", true, "client flags 0x%08" PRIx32
               ": bits outside FIXED_NEWSTYLE|NO_ZEROES set, expected none",
               f);
  if ((f & NBD_FLAG_C_NO_ZEROES) && !(c->gflags & NBD_FLAG_NO_ZEROES))
    violation (c, SPY_CLIENT, "FLAG-CLI-3", true, "client flags 0x%08" PRIx32
               " set NO_ZEROES although the server's handshake flags 0x%04x "
               "lack NBD_FLAG_NO_ZEROES", f, c->gflags);
  if ((c->gflags & NBD_FLAG_FIXED_NEWSTYLE) &&
      !(f & NBD_FLAG_C_FIXED_NEWSTYLE))
    violation (c, SPY_CLIENT, "HS-FIX-1", false, "client flags 0x%08" PRIx32
               " lack FIXED_NEWSTYLE although the server offered it", f);
  c->no_zeroes = (f & NBD_FLAG_C_NO_ZEROES) &&
    (c->gflags & NBD_FLAG_NO_ZEROES);
  c->s.no_zeroes = c->no_zeroes;
  consume (st, 4);
  c->cs = C_OPTIONS;
  return 1;
}

/* Describe an option's data; for INFO/GO also say whether
 * NBD_INFO_RESIZE was listed.
 */
static void
option_detail (uint32_t option, const unsigned char *p, uint32_t len,
               char *out, size_t size, bool *lists_resize)
{
  char qb[400];
  size_t o = 0;
  struct nb nb;

  *lists_resize = false;
  out[0] = '\0';
  switch (option) {
  case NBD_OPT_EXPORT_NAME:
    snprintf (out, size, ": name %s", quote (qb, sizeof qb, p, len));
    return;
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT: {
    uint32_t nl, off;
    bool meta = option == NBD_OPT_LIST_META_CONTEXT ||
      option == NBD_OPT_SET_META_CONTEXT;
    if (len < 4 || (nl = nbdp_get32 (p)) > len - 4)
      break;
    off = 4 + nl;
    o = snprintf (out, size, ": name %s", quote (qb, sizeof qb, p + 4, nl));
    if (!meta) {
      uint16_t n;
      if (len - off < 2)
        break;
      n = nbdp_get16 (p + off);
      off += 2;
      if (o < size)
        o += snprintf (out + o, size - o, " info requests [");
      for (uint16_t i = 0; i < n && len - off >= 2; i++, off += 2) {
        uint16_t t = nbdp_get16 (p + off);
        if (t == NBD_INFO_RESIZE)
          *lists_resize = true;
        if (o < size)
          o += snprintf (out + o, size - o, "%s%s", i ? " " : "",
                         info_name (&nb, t));
      }
      if (o < size)
        snprintf (out + o, size - o, "]");
    }
    else {
      uint32_t n;
      if (len - off < 4)
        break;
      n = nbdp_get32 (p + off);
      off += 4;
      if (o < size)
        o += snprintf (out + o, size - o, " queries [");
      for (uint32_t i = 0; i < n && len - off >= 4; i++) {
        uint32_t ql = nbdp_get32 (p + off);
        off += 4;
        if (ql > len - off)
          break;
        if (o < size)
          o += snprintf (out + o, size - o, "%s%s", i ? " " : "",
                         quote (qb, sizeof qb, p + off, ql));
        off += ql;
      }
      if (o < size)
        snprintf (out + o, size - o, "]");
    }
    return;
  }
  case NBD_OPT_RESIZE:
    if (len == NBD_RESIZE_OPT_LEN) {
      char fb[120];
      snprintf (out, size, ": features %s",
                nbdp_rz_features_str (fb, sizeof fb, nbdp_get32 (p)));
      return;
    }
    break;
  default:
    break;
  }
  if (len)
    snprintf (out, size, ": %s",
              summary (qb, sizeof qb, p, len, len, SUMMARY_BYTES));
}

static int
client_option (struct spy_conn *c, struct stream *st)
{
  struct nbdp_option o;
  const unsigned char *p;
  struct nb nb, nb2;
  char detail[1000];
  bool whole, lists_resize = false;
  size_t keep;

  if (avail (st) < NBDP_OPTION_SIZE)
    return 0;
  nbdp_decode_option (data (st), &o);
  if (o.magic != NBD_NEW_VERSION) {
    st->messages++;
    emit (c, SPY_CLIENT, "option? magic 0x%016" PRIx64, o.magic);
    violation (c, SPY_CLIENT, "COMPAT-BASE-1", true, "option request: sent "
               "magic 0x%016" PRIx64 ", expected IHAVEOPT 0x%016" PRIx64,
               o.magic, NBD_NEW_VERSION);
    go_raw (c, "bad option magic from the client");
    return -1;
  }
  whole = o.length <= OPT_CAP;
  keep = whole ? o.length : SUMMARY_BYTES;
  if (avail (st) < NBDP_OPTION_SIZE + keep)
    return 0;
  p = data (st) + NBDP_OPTION_SIZE;
  st->messages++;
  if (whole)
    option_detail (o.option, p, o.length, detail, sizeof detail,
                   &lists_resize);
  else
    snprintf (detail, sizeof detail, ": %" PRIu32 " bytes, not decoded",
              o.length);
  emit (c, SPY_CLIENT, "option %s length %" PRIu32 "%s",
        opt_name (&nb, o.option), o.length, detail);

  if (c->nq > 0)
    violation (c, SPY_CLIENT, "HS-FIX-4", true, "sent %s while %s still "
               "awaited its final reply", opt_name (&nb, o.option),
               opt_name (&nb2, c->q[0].option));
  if (o.option == NBD_OPT_ABORT && o.length)
    violation (c, SPY_CLIENT, "OPT-ABORT-2", false, "NBD_OPT_ABORT with %"
               PRIu32 " bytes of data, expected none", o.length);

  if (o.option != NBD_OPT_GO && o.option != NBD_OPT_INFO)
    c->have_info_ex = false;
  if (o.option == NBD_OPT_INFO || o.option == NBD_OPT_GO) {
    if (o.option == NBD_OPT_INFO)
      c->have_info_ex = false;
    c->rz.info_listed = lists_resize;
    rz_choose_encoding (c, lists_resize);
    memset (&c->ex_cur, 0, sizeof c->ex_cur);
    c->ex_cur.info_len_ok = true;
  }
  if (o.option == NBD_OPT_RESIZE) {
    c->opt_resize_ok = whole && o.length == NBD_RESIZE_OPT_LEN &&
      !(nbdp_get32 (p) & ~NBD_RESIZE_MASK_FEATURES);
    c->opt_resize_features = c->opt_resize_ok ? nbdp_get32 (p) : 0;
  }

  if (o.option == NBD_OPT_EXPORT_NAME) {
    c->export_name_sent = true;
    c->cs = C_WAIT;
    rz_choose_encoding (c, false);
  }
  else {
    optq_push (c, o.option, p, o.length, whole);
    if (o.option == NBD_OPT_GO || o.option == NBD_OPT_STARTTLS)
      c->cs = C_WAIT;
    else if (o.option == NBD_OPT_ABORT)
      c->cs = C_DONE;
  }
  consume (st, NBDP_OPTION_SIZE + keep);
  st->skip = o.length - keep;
  return c->raw ? -1 : 1;
}

/* ---- transmission -------------------------------------------------- */

static int
client_request (struct spy_conn *c, struct stream *st)
{
  struct nbdp_request req;
  struct nbdp_violations vs, keepvs;
  uint32_t magic;
  size_t hs, keep;
  uint64_t plen = 0;
  const unsigned char *p;
  struct nb nb;
  char fb[120], sb[200], extra[64];

  if (avail (st) < 4)
    return 0;
  magic = nbdp_get32 (data (st));
  hs = magic == NBD_REQUEST_MAGIC ? NBDP_REQUEST_SIZE
    : magic == NBD_EXTENDED_REQUEST_MAGIC ? NBDP_REQUEST_EXT_SIZE : 0;
  if (hs == 0) {
    st->messages++;
    emit (c, SPY_CLIENT, "request? magic 0x%08" PRIx32, magic);
    violation (c, SPY_CLIENT, c->s.extended ? "EH-OPT-17" : "COMPAT-BASE-1",
               true, "request: sent magic 0x%08" PRIx32 ", expected 0x%08"
               PRIx32, magic, c->s.extended ? NBD_EXTENDED_REQUEST_MAGIC
               : NBD_REQUEST_MAGIC);
    go_raw (c, "bad request magic from the client");
    return -1;
  }
  if (avail (st) < hs)
    return 0;
  nbdp_decode_request (data (st), hs == NBDP_REQUEST_EXT_SIZE, &req);
  if (req.type == NBD_CMD_WRITE ||
      (hs == NBDP_REQUEST_EXT_SIZE && (req.flags & NBD_CMD_FLAG_PAYLOAD_LEN)))
    plen = req.count;
  keep = req.type == NBD_CMD_WRITE || plen > PAYLOAD_CAP
    ? (plen < SUMMARY_BYTES ? plen : SUMMARY_BYTES) : plen;
  if (avail (st) < hs + keep)
    return 0;
  p = data (st) + hs;
  st->messages++;

  extra[0] = '\0';
  if (req.type == NBD_CMD_RESIZE)
    snprintf (extra, sizeof extra, " (%s)", form_str (req.flags));
  sb[0] = '\0';
  if (plen)
    summary (sb, sizeof sb, p, keep, plen, SUMMARY_BYTES);
  emit (c, SPY_CLIENT, "request %s%s flags %s cookie %" PRIu64 " offset %"
        PRIu64 " length %" PRIu64 " (%s)%s%s",
        cmd_name (&nb, req.type), extra,
        nbdp_cmd_flags_str (fb, sizeof fb, req.flags), req.cookie,
        req.offset, req.count, hs == NBDP_REQUEST_EXT_SIZE ? "extended"
        : "compact", plen ? " payload " : "", sb);

  /* Client rules, then remember the request. */
  nbdp_violations_clear (&vs);
  nbdp_rules_check_request (&c->s, &req, &vs);
  /* A growing write is in bounds when automatic growth is active. */
  nbdp_violations_clear (&keepvs);
  for (size_t i = 0; i < vs.n; i++) {
    if (strcmp (vs.v[i].id, "SIZE-33") == 0 &&
        (req.type == NBD_CMD_WRITE || req.type == NBD_CMD_WRITE_ZEROES) &&
        rz_auto_grow (&c->rz))
      continue;
    keepvs.v[keepvs.n++] = vs.v[i];
  }
  keepvs.dropped = vs.dropped;
  if (req.type == NBD_CMD_DISC) {
    size_t n = c->s.nr_inflight;
    if (c->rz.sub.active && nbdp_session_find (&c->s, c->rz.sub.cookie))
      n--;
    if (n)
      nbdp_violation_add (&keepvs, "TX-TERM-9", NBDP_SHOULD, "NBD_CMD_DISC "
                          "sent with %zu requests still in flight, expected "
                          "none", n);
  }
  report (c, SPY_CLIENT, &keepvs);
  rz_request (c, &req);
  if (nbdp_rules_request_sent (&c->s, &req) == -1)
    emit (c, SPY_NOTE, "out of memory recording a request");
  if (req.type == NBD_CMD_DISC)
    c->cs = C_DONE;
  consume (st, hs + keep);
  st->skip = plen - keep;
  return 1;
}

static void
chunk_detail (const struct nbdp_reply *h, const unsigned char *p,
              size_t have, uint64_t len, bool whole, char *out, size_t size)
{
  struct nb nb;
  char qb[400], sb[200];
  size_t o = 0;

  out[0] = '\0';
  switch (h->type) {
  case NBD_REPLY_TYPE_NONE:
    return;
  case NBD_REPLY_TYPE_OFFSET_DATA:
    if (have >= 8)
      snprintf (out, size, ": offset %" PRIu64 " data %s", nbdp_get64 (p),
                summary (sb, sizeof sb, p + 8, have - 8, len - 8,
                         SUMMARY_BYTES));
    return;
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    if (whole && len == 12)
      snprintf (out, size, ": offset %" PRIu64 " hole length %" PRIu32,
                nbdp_get64 (p), nbdp_get32 (p + 8));
    return;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: {
    bool ext = h->type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
    uint64_t hl = ext ? 8 : 4, dl = ext ? 16 : 8, n, i;
    if (!whole || len < hl)
      return;
    n = (len - hl) / dl;
    o = snprintf (out, size, ": context ID %" PRIu32 " %" PRIu64
                  " extents", nbdp_get32 (p), n);
    for (i = 0; i < n && i < 4 && o < size; i++) {
      const unsigned char *d = p + hl + i * dl;
      uint64_t el = ext ? nbdp_get64 (d) : nbdp_get32 (d);
      uint64_t fl = ext ? nbdp_get64 (d + 8) : nbdp_get32 (d + 4);
      o += snprintf (out + o, size - o, "%s%" PRIu64 ":%s", i ? " " : " [",
                     el, nbdp_state_str (qb, sizeof qb, fl));
    }
    if (n && o < size)
      snprintf (out + o, size - o, "%s]", n > 4 ? " ..." : "");
    return;
  }
  case NBD_REPLY_TYPE_RESIZE:
    if (whole && len == NBD_RESIZE_CHUNK_LEN) {
      struct nbdp_rz_chunk ch;
      nbdp_rz_decode_chunk (p, len, &ch);
      snprintf (out, size, ": size %" PRIu64 " events %s sequence %" PRIu32,
                ch.size, nbdp_rz_events_str (qb, sizeof qb, ch.events),
                ch.sequence);
      return;
    }
    break;
  default:
    if ((h->type & NBD_REPLY_TYPE_ERR (0)) && whole && len >= 6) {
      uint32_t e = nbdp_get32 (p);
      uint16_t ml = nbdp_get16 (p + 4);
      o = snprintf (out, size, ": error %s", err_name (&nb, e));
      if (ml <= len - 6 && o < size) {
        o += snprintf (out + o, size - o, " message %s",
                       quote (qb, sizeof qb, p + 6, ml));
        if (h->type == NBD_REPLY_TYPE_ERROR_OFFSET && len - 6 - ml >= 8 &&
            o < size)
          snprintf (out + o, size - o, " offset %" PRIu64,
                    nbdp_get64 (p + 6 + ml));
      }
      return;
    }
    break;
  }
  if (len)
    snprintf (out, size, ": %s", summary (sb, sizeof sb, p, have, len,
                                         SUMMARY_BYTES));
}

static int
server_reply (struct spy_conn *c, struct stream *st)
{
  struct nbdp_reply h;
  struct nbdp_violations vs;
  struct nbdp_rules_req rcopy, *r;
  enum nbdp_rules_progress prog;
  uint32_t magic;
  size_t hs, keep;
  uint64_t len;
  bool simple, is_data, whole, known, final;
  const unsigned char *p;
  struct nb nb1, nb2;
  char fb[64], detail[1000], sb[200];

  if (avail (st) < 4)
    return 0;
  magic = nbdp_get32 (data (st));
  hs = nbdp_reply_header_size (magic);
  if (hs == 0) {
    st->messages++;
    emit (c, SPY_SERVER, "reply? magic 0x%08" PRIx32, magic);
    violation (c, SPY_SERVER, "TX-GEN-1", true, "got reply magic 0x%08"
               PRIx32 ", expected a simple (0x%08" PRIx32 "), structured "
               "(0x%08" PRIx32 ") or extended (0x%08" PRIx32 ") reply magic",
               magic, NBD_SIMPLE_REPLY_MAGIC, NBD_STRUCTURED_REPLY_MAGIC,
               NBD_EXTENDED_REPLY_MAGIC);
    go_raw (c, "bad reply magic from the server");
    return -1;
  }
  if (avail (st) < hs)
    return 0;
  nbdp_decode_reply (data (st), &h);
  simple = h.kind == NBDP_REPLY_SIMPLE;
  r = nbdp_session_find (&c->s, h.cookie);
  known = r != NULL;
  if (known)
    rcopy = *r;
  if (simple)
    len = known && r->type == NBD_CMD_READ && h.error == 0 ? r->count : 0;
  else
    len = h.length;
  is_data = simple ? len > 0 : h.type == NBD_REPLY_TYPE_OFFSET_DATA;
  whole = !is_data && len <= PAYLOAD_CAP;
  if (whole)
    keep = len;
  else {
    uint64_t k = is_data && !simple ? 8 + SUMMARY_BYTES : SUMMARY_BYTES;
    keep = len < k ? len : k;
  }
  if (avail (st) < hs + keep)
    return 0;
  p = data (st) + hs;
  st->messages++;

  if (simple) {
    sb[0] = '\0';
    if (len)
      summary (sb, sizeof sb, p, keep, len, SUMMARY_BYTES);
    emit (c, SPY_SERVER, "simple reply cookie %" PRIu64 " error %s%s%s%s%s",
          h.cookie, err_name (&nb1, h.error), known ? " to " : "",
          known ? cmd_name (&nb2, rcopy.type) : "", len ? " data " : "", sb);
  }
  else {
    chunk_detail (&h, p, keep, len, whole || (is_data && keep == len),
                  detail, sizeof detail);
    if (h.kind == NBDP_REPLY_EXTENDED)
      emit (c, SPY_SERVER, "extended chunk %s flags %s cookie %" PRIu64
            " offset %" PRIu64 " length %" PRIu64 "%s%s%s",
            type_name (&nb1, h.type),
            nbdp_reply_flags_str (fb, sizeof fb, h.flags), h.cookie,
            h.offset, len, known ? " to " : "",
            known ? cmd_name (&nb2, rcopy.type) : "", detail);
    else
      emit (c, SPY_SERVER, "structured chunk %s flags %s cookie %" PRIu64
            " length %" PRIu64 "%s%s%s", type_name (&nb1, h.type),
            nbdp_reply_flags_str (fb, sizeof fb, h.flags), h.cookie, len,
            known ? " to " : "", known ? cmd_name (&nb2, rcopy.type) : "",
            detail);
  }

  final = simple || (h.flags & NBD_REPLY_FLAG_DONE);
  /* The RESIZE rules see the message before the generic rules retire
   * its request.
   */
  rz_reply (c, &h, whole ? p : NULL, len, known, known ? &rcopy : NULL,
            final);
  nbdp_violations_clear (&vs);
  prog = nbdp_rules_check_reply (&c->s, &h, whole || is_data ? p : NULL,
                                 &vs);
  (void) prog;
  report (c, SPY_SERVER, &vs);
  consume (st, hs + keep);
  st->skip = len - keep;
  return 1;
}

/* ---- the two streams ----------------------------------------------- */

static int
client_step (struct spy_conn *c)
{
  struct stream *st = &c->st[SPY_CLIENT];

  switch (c->cs) {
  case C_GREETING_WAIT:
  case C_WAIT:
    if (avail (st) > WAIT_LIMIT) {
      go_raw (c, "the client sent %zu bytes without waiting for the server",
              avail (st));
      return -1;
    }
    return 0;
  case C_DONE:
    if (avail (st) == 0)
      return 0;
    emit (c, SPY_NOTE, "the client sent %zu bytes after ending the session",
          avail (st));
    go_raw (c, "bytes after NBD_CMD_DISC or NBD_OPT_ABORT");
    return -1;
  case C_CFLAGS:
    return client_flags (c, st);
  case C_OPTIONS:
    return client_option (c, st);
  case C_TRANSMISSION:
    return client_request (c, st);
  }
  return 0;
}

static int
server_step (struct spy_conn *c)
{
  struct stream *st = &c->st[SPY_SERVER];

  switch (c->ss) {
  case S_GREETING:
    return server_greeting (c, st);
  case S_OPTIONS:
    if (c->nq == 0 && c->export_name_sent)
      return server_export_name_reply (c, st);
    return server_option_reply (c, st);
  case S_TRANSMISSION:
    return server_reply (c, st);
  case S_DONE:
    if (avail (st) == 0)
      return 0;
    emit (c, SPY_NOTE, "the server sent %zu bytes after the session ended",
          avail (st));
    go_raw (c, "bytes after the reply to NBD_OPT_ABORT");
    return -1;
  }
  return 0;
}

static void
process (struct spy_conn *c, enum spy_dir d)
{
  for (;;) {
    struct stream *st = &c->st[d];
    int r;

    if (c->raw)
      return;
    if (st->skip) {
      size_t n = avail (st) < st->skip ? avail (st) : st->skip;
      consume (st, n);
      st->skip -= n;
      if (st->skip)
        return;
    }
    if (avail (st) == 0)
      return;
    r = d == SPY_CLIENT ? client_step (c) : server_step (c);
    if (r <= 0)
      return;
  }
}

/* ---- API ----------------------------------------------------------- */

struct spy_conn *
spy_conn_new (unsigned id, const struct spy_config *cfg,
              const struct spy_sink *sink)
{
  struct spy_conn *c = calloc (1, sizeof *c);

  if (c == NULL)
    return NULL;
  c->id = id;
  c->cfg = *cfg;
  c->sink = *sink;
  c->cs = C_GREETING_WAIT;
  c->ss = S_GREETING;
  nbdp_session_init (&c->s);
  nbdp_rz_state_init (&c->rz, cfg->have_encoding ? cfg->encoding
                      : NBDP_RZ_ENC_NEGOTIATED);
  return c;
}

void
spy_conn_free (struct spy_conn *c)
{
  if (c == NULL)
    return;
  while (c->rzreqs)
    rzreq_unlink (c, c->rzreqs);
  while (c->nq)
    optq_pop (c);
  nbdp_session_free (&c->s);
  for (int d = 0; d < 2; d++)
    free (c->st[d].buf);
  free (c);
}

void
spy_conn_feed (struct spy_conn *c, enum spy_dir from, const void *buf,
               size_t len)
{
  struct stream *st = &c->st[from];
  const unsigned char *p = buf;

  st->bytes += len;
  if (c->raw)
    return;
  /* Payload to pass over straight from the new bytes: no copy. */
  if (avail (st) == 0 && st->skip) {
    size_t n = len < st->skip ? len : st->skip;
    st->skip -= n;
    p += n;
    len -= n;
  }
  if (len && append (st, p, len) == -1) {
    go_raw (c, "out of memory buffering %zu bytes", len);
    return;
  }
  process (c, from);
  /* The other side may have been waiting for this one. */
  process (c, from == SPY_CLIENT ? SPY_SERVER : SPY_CLIENT);
}

void
spy_conn_eof (struct spy_conn *c, enum spy_dir from)
{
  struct stream *st = &c->st[from];

  if (st->eof)
    return;
  st->eof = true;
  if (!c->raw && (avail (st) || st->skip))
    emit (c, SPY_NOTE, "%s closed part way through a message (%zu bytes "
          "buffered, %" PRIu64 " bytes of payload missing)",
          from == SPY_CLIENT ? "the client" : "the server", avail (st),
          st->skip);
  else
    emit (c, SPY_NOTE, "%s closed its side", from == SPY_CLIENT
          ? "the client" : "the server");
  if (from == SPY_SERVER && !c->raw && c->rz.sub.active &&
      c->rz.sub.disc_sent && c->rz.sub.started)
    violation (c, SPY_SERVER, "RZ-SUB-13", true, "sent NBD_CMD_DISC with "
               "the subscription on cookie %" PRIu64 " active; the server "
               "closed without ending it (NBD_REPLY_TYPE_NONE with DONE)",
               c->rz.sub.cookie);
}

void
spy_conn_stats (const struct spy_conn *c, struct spy_stats *s)
{
  memset (s, 0, sizeof *s);
  for (int d = 0; d < 2; d++) {
    s->messages[d] = c->st[d].messages;
    s->bytes[d] = c->st[d].bytes;
  }
  s->violations_must = c->n_must;
  s->violations_should = c->n_should;
  s->raw = c->raw;
  snprintf (s->raw_reason, sizeof s->raw_reason, "%s", c->raw_reason);
  s->transmission = c->s.transmission;
  s->structured = c->s.structured;
  s->extended = c->s.extended;
  s->export_size = c->s.export_size;
  s->eflags = c->s.eflags;
  s->resize_mode = nbdp_rz_mode_name (c->rz.mode);
}
