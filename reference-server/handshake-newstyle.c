/* nbd-refserver: the fixed newstyle handshake.  The greeting, the client
 * flags, then a loop over options dispatched through a table.  Every
 * option length is bounded before anything is allocated: small payloads
 * are read and parsed in full, oversized ones are consumed and refused
 * with NBD_REP_ERR_TOO_BIG, absurd ones end the connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "internal.h"
#include "log.h"

/* What an option handler returns. */
enum opt_result {
  OPT_NEXT,            /* read the next option */
  OPT_TRANSMISSION,    /* c->exp is set: enter the transmission phase */
  OPT_CLOSE,           /* end the connection */
};

/* One option as received. */
struct option {
  uint32_t opt;
  uint32_t len;
  unsigned char *data; /* len bytes (plus a NUL the client did not send) */
};

struct option_handler {
  uint32_t opt;
  bool no_data;        /* the option carries no data: ERR_INVALID if any */
  enum opt_result (*fn) (struct conn *c, const struct option *o);
};

/* Send one option reply: header and payload in one write. */
static int
send_reply (struct conn *c, uint32_t opt, uint32_t rep,
            const void *data, uint32_t len)
{
  unsigned char hdr[NBDP_OPTION_REPLY_SIZE];
  struct nbdp_option_reply r = {
    .magic = NBD_REP_MAGIC, .option = opt, .reply = rep, .length = len
  };
  struct iovec iov[2] = {
    { .iov_base = hdr, .iov_len = sizeof hdr },
    { .iov_base = (void *) data, .iov_len = len },
  };

  nbdp_encode_option_reply (hdr, &r);
  if (nbdp_verbose) {
    char b1[32], b2[32];
    nbdp_debug ("conn %" PRIu64 ": option reply %s to %s, length %" PRIu32,
                c->id, nbdp_rep_str (b1, sizeof b1, rep),
                nbdp_opt_str (b2, sizeof b2, opt), len);
  }
  return conn_sendv (c, iov, len ? 2 : 1);
}

static enum opt_result
reply_ack (struct conn *c, uint32_t opt)
{
  return send_reply (c, opt, NBD_REP_ACK, NULL, 0) == -1 ? OPT_CLOSE
                                                        : OPT_NEXT;
}

/* Send an error reply carrying a human-readable message. */
static enum opt_result __attribute__ ((format (printf, 4, 5)))
reply_err (struct conn *c, uint32_t opt, uint32_t rep, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (n < 0)
    n = 0;
  if ((size_t) n >= sizeof msg)
    n = sizeof msg - 1;
  /* Strings SHOULD be at most 256 bytes; never cut a UTF-8 sequence
   * (names from the wire are echoed in the message).
   */
  if (n > 256) {
    n = 256;
    while (n > 0 && ((unsigned char) msg[n] & 0xc0) == 0x80)
      n--;
    msg[n] = '\0';
  }
  nbdp_debug ("conn %" PRIu64 ": option error: %s", c->id, msg);
  return send_reply (c, opt, rep, msg, n) == -1 ? OPT_CLOSE : OPT_NEXT;
}

/* Check that a string from the wire obeys the protocol's rules for
 * strings (no NUL, at most NBD_MAX_STRING bytes).
 */
static bool
valid_string (const unsigned char *s, uint32_t len)
{
  return len <= NBD_MAX_STRING && memchr (s, '\0', len) == NULL;
}

/* ---- NBD_OPT_EXPORT_NAME ---- */

static enum opt_result
opt_export_name (struct conn *c, const struct option *o)
{
  unsigned char buf[8 + 2 + NBD_NEWSTYLE_ZEROES];
  struct export *exp;
  size_t n = 10;
  uint64_t size;

  /* No error reply exists for this option: every refusal is a hard
   * disconnect.
   */
  if (c->extended) {
    nbdp_debug ("conn %" PRIu64 ": NBD_OPT_EXPORT_NAME after extended "
                "headers were negotiated: disconnecting", c->id);
    return OPT_CLOSE;
  }
  if (!valid_string (o->data, o->len)) {
    nbdp_debug ("conn %" PRIu64 ": NBD_OPT_EXPORT_NAME with an invalid name "
                "(%" PRIu32 " bytes, embedded NUL or over %d): disconnecting",
                c->id, o->len, NBD_MAX_STRING);
    return OPT_CLOSE;
  }
  exp = exports_find ((const char *) o->data, o->len);
  if (exp == NULL) {
    nbdp_debug ("conn %" PRIu64 ": NBD_OPT_EXPORT_NAME \"%s\": no such "
                "export: disconnecting", c->id, (const char *) o->data);
    return OPT_CLOSE;
  }
  c->exp = exp;
  c->meta_allocation = c->meta_selected && c->meta_exp == exp;
  c->eflags = export_eflags (exp, c->structured, c->extended,
                            c->meta_allocation);
  /* Draft RESIZE: never negotiated on this path (RZ-NEG-13). */
  c->eflags |= resize_eflags (exp, false, 0);
  resize_conn_setup (c, false, 0);
  size = export_size (exp);
  memset (buf, 0, sizeof buf);
  nbdp_put64 (buf, size);
  nbdp_put16 (buf + 8, c->eflags);
  if (!c->no_zeroes)
    n += NBD_NEWSTYLE_ZEROES;
  if (nbdp_verbose) {
    char fl[256];
    nbdp_debug ("conn %" PRIu64 ": export \"%s\" size %" PRIu64 " flags %s%s",
                c->id, exp->name, size,
                nbdp_flags_str (fl, sizeof fl, c->eflags),
                c->no_zeroes ? "" : " (+124 zeroes)");
  }
  resize_conn_start (c);
  if (conn_send (c, buf, n) == -1)
    return OPT_CLOSE;
  return OPT_TRANSMISSION;
}

/* ---- NBD_OPT_ABORT ---- */

static enum opt_result
opt_abort (struct conn *c, const struct option *o)
{
  /* Data, if any, is ignored.  The client may already have gone. */
  send_reply (c, o->opt, NBD_REP_ACK, NULL, 0);
  return OPT_CLOSE;
}

/* ---- NBD_OPT_LIST ---- */

static enum opt_result
opt_list (struct conn *c, const struct option *o)
{
  for (size_t i = 0; i < exports_count (); i++) {
    struct export *e = exports_get (i);
    size_t nl = strlen (e->name), dl = strlen (e->description);
    CLEANUP_FREE unsigned char *buf = malloc (4 + nl + dl);

    if (buf == NULL)
      return reply_err (c, o->opt, NBD_REP_ERR_SHUTDOWN, "out of memory");
    nbdp_put32 (buf, nl);
    memcpy (buf + 4, e->name, nl);
    memcpy (buf + 4 + nl, e->description, dl);
    if (send_reply (c, o->opt, NBD_REP_SERVER, buf, 4 + nl + dl) == -1)
      return OPT_CLOSE;
  }
  return reply_ack (c, o->opt);
}

/* ---- NBD_OPT_STARTTLS ---- */

static enum opt_result
opt_starttls (struct conn *c, const struct option *o)
{
  /* When TLS is added: a successful STARTTLS must call
   * resize_reset_negotiation (c) with the other state it forgets
   * (RZ-NEG-8).
   */
  return reply_err (c, o->opt, NBD_REP_ERR_POLICY,
                    "TLS is not enabled on this server");
}

/* ---- NBD_OPT_RESIZE (draft RESIZE extension, specs/resize.md 4.1) ---- */

static enum opt_result
opt_resize (struct conn *c, const struct option *o)
{
  if (rzc.mode != RZ_NEGOTIATED ||
      (rzc.encoding != RZ_ENC_P && rzc.encoding != RZ_ENC_B3))
    return reply_err (c, o->opt, NBD_REP_ERR_UNSUP,     /* RZ-NEG-3 */
                      "NBD_OPT_RESIZE is not supported (--resize=%s, "
                      "encoding %s)", rzc.mode == RZ_OFF ? "off"
                      : rzc.mode == RZ_LEGACY ? "legacy" : "negotiated",
                      rzc.encoding == RZ_ENC_B1 ? "flag-only"
                      : rzc.encoding == RZ_ENC_B2 ? "info-optin" : "legacy");
  if (o->len != NBD_RESIZE_OPT_LEN)                       /* RZ-NEG-2 */
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "NBD_OPT_RESIZE data length %" PRIu32 ", expected %d",
                      o->len, NBD_RESIZE_OPT_LEN);
  c->rz_acked = true;                                     /* RZ-NEG-7 */
  c->rz_requested = nbdp_get32 (o->data) & NBD_RESIZE_MASK_FEATURES;
  nbdp_debug ("conn %" PRIu64 ": NBD_OPT_RESIZE features 0x%" PRIx32
              " (0x%" PRIx32 " after dropping reserved bits)", c->id,
              nbdp_get32 (o->data), c->rz_requested);    /* RZ-NEG-6 */
  return reply_ack (c, o->opt);                           /* RZ-NEG-1 */
}

/* ---- NBD_OPT_INFO and NBD_OPT_GO ---- */

static int
send_info (struct conn *c, uint32_t opt, const void *data, uint32_t len)
{
  return send_reply (c, opt, NBD_REP_INFO, data, len);
}

static enum opt_result
opt_info_go (struct conn *c, const struct option *o)
{
  const unsigned char *d = o->data;
  uint32_t namelen;
  uint16_t nreqs;
  bool want_name = false, want_desc = false, want_resize = false;
  bool rz_negotiated;
  uint32_t rz_active;
  struct export *exp;
  unsigned char buf[2 + 8 + 2 + 4 + 4 + 4];
  uint64_t size;
  uint16_t eflags;
  bool meta;

  if (o->len < 6)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "option length %" PRIu32 " is below the minimum of 6",
                      o->len);
  namelen = nbdp_get32 (d);
  if (namelen > o->len - 6)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "name length %" PRIu32 " does not fit in option "
                      "length %" PRIu32, namelen, o->len);
  nreqs = nbdp_get16 (d + 4 + namelen);
  if (o->len - 6 - namelen != 2 * (uint32_t) nreqs)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "option length %" PRIu32 " does not match name length "
                      "%" PRIu32 " and %" PRIu16 " information requests",
                      o->len, namelen, nreqs);
  if (namelen > NBD_MAX_STRING)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "export name of %" PRIu32 " bytes is longer than %d",
                      namelen, NBD_MAX_STRING);
  if (memchr (d + 4, '\0', namelen))
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "export name contains a NUL byte");
  for (uint16_t i = 0; i < nreqs; i++) {
    uint16_t info = nbdp_get16 (d + 4 + namelen + 2 + 2 * i);
    if (nbdp_verbose) {
      char b[32];
      nbdp_debug ("conn %" PRIu64 ": information request %s", c->id,
                  nbdp_info_str (b, sizeof b, info));
    }
    if (info == NBD_INFO_NAME)
      want_name = true;
    else if (info == NBD_INFO_DESCRIPTION)
      want_desc = true;
    else if (info == NBD_INFO_RESIZE)
      want_resize = true;
    /* NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE are always sent; unknown
     * requests are ignored.
     */
  }

  exp = exports_find ((const char *) d + 4, namelen);
  if (exp == NULL)
    return reply_err (c, o->opt, NBD_REP_ERR_UNKNOWN,
                      "no export named \"%.*s\"", (int) namelen, d + 4);

  meta = c->meta_selected && c->meta_exp == exp;
  eflags = export_eflags (exp, c->structured, c->extended, meta);
  /* Draft RESIZE: what GO would grant (RZ-NEG-9, RZ-INFO-10). */
  rz_active = resize_active_for (c, exp, want_resize, &rz_negotiated);
  eflags |= resize_eflags (exp, rz_negotiated, rz_active);
  size = export_size (exp);

  nbdp_put16 (buf, NBD_INFO_EXPORT);
  nbdp_put64 (buf + 2, size);
  nbdp_put16 (buf + 10, eflags);
  if (nbdp_verbose) {
    char fl[256];
    nbdp_debug ("conn %" PRIu64 ": export \"%s\" size %" PRIu64 " flags %s",
                c->id, exp->name, size,
                nbdp_flags_str (fl, sizeof fl, eflags));
  }
  if (send_info (c, o->opt, buf, 12) == -1)
    return OPT_CLOSE;

  if (want_name) {
    size_t nl = strlen (exp->name);
    CLEANUP_FREE unsigned char *nb = malloc (2 + nl);
    if (nb == NULL)
      return reply_err (c, o->opt, NBD_REP_ERR_SHUTDOWN, "out of memory");
    nbdp_put16 (nb, NBD_INFO_NAME);
    memcpy (nb + 2, exp->name, nl);
    if (send_info (c, o->opt, nb, 2 + nl) == -1)
      return OPT_CLOSE;
  }
  if (want_desc && exp->description[0]) {
    size_t dl = strlen (exp->description);
    CLEANUP_FREE unsigned char *db = malloc (2 + dl);
    if (db == NULL)
      return reply_err (c, o->opt, NBD_REP_ERR_SHUTDOWN, "out of memory");
    nbdp_put16 (db, NBD_INFO_DESCRIPTION);
    memcpy (db + 2, exp->description, dl);
    if (send_info (c, o->opt, db, 2 + dl) == -1)
      return OPT_CLOSE;
  }

  /* Block sizes go out whether asked for or not: a client that does not
   * understand them ignores them, and with them a client that did not
   * ask still learns what we enforce.
   */
  nbdp_put16 (buf, NBD_INFO_BLOCK_SIZE);
  nbdp_put32 (buf + 2, exp->min_block);
  nbdp_put32 (buf + 6, exp->pref_block);
  nbdp_put32 (buf + 10, exp->max_block);
  nbdp_debug ("conn %" PRIu64 ": block sizes min %" PRIu32 " pref %" PRIu32
              " max %" PRIu32, c->id, exp->min_block, exp->pref_block,
              exp->max_block);
  if (send_info (c, o->opt, buf, 14) == -1)
    return OPT_CLOSE;

  if (resize_send_info (c, want_resize)) {      /* RZ-INFO-1..5 */
    unsigned char rb[NBD_RESIZE_INFO_LEN];
    resize_info_item (exp, rz_active, rb);
    nbdp_debug ("conn %" PRIu64 ": NBD_INFO_RESIZE capabilities 0x%" PRIx32
                " active 0x%" PRIx32, c->id, exp->rz_caps, rz_active);
    if (send_info (c, o->opt, rb, sizeof rb) == -1)
      return OPT_CLOSE;
  }

  if (o->opt == NBD_OPT_GO) {
    c->exp = exp;
    c->meta_allocation = meta;
    c->eflags = eflags;
    resize_conn_setup (c, rz_negotiated, rz_active);     /* RZ-NEG-11 */
    resize_conn_start (c);
  }
  if (reply_ack (c, o->opt) == OPT_CLOSE)
    return OPT_CLOSE;
  if (o->opt == NBD_OPT_INFO)
    return OPT_NEXT;
  return OPT_TRANSMISSION;
}

/* ---- NBD_OPT_STRUCTURED_REPLY and NBD_OPT_EXTENDED_HEADERS ---- */

static enum opt_result
opt_structured_reply (struct conn *c, const struct option *o)
{
  if (c->extended)
    return reply_err (c, o->opt, NBD_REP_ERR_EXT_HEADER_REQD,
                      "extended headers are already in use");
  c->structured = true;
  return reply_ack (c, o->opt);
}

static enum opt_result
opt_extended_headers (struct conn *c, const struct option *o)
{
  c->extended = true;
  c->structured = true;
  return reply_ack (c, o->opt);
}

/* ---- NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT ---- */

/* How a query relates to base:allocation. */
enum query_match { Q_NONE, Q_ALLOCATION, Q_INVALID };

static enum query_match
match_query (const unsigned char *q, uint32_t len, bool listing)
{
  const unsigned char *colon = memchr (q, ':', len);
  size_t nslen, leaflen;

  if (colon == NULL || colon == q)
    return Q_INVALID;           /* no namespace */
  nslen = colon - q;
  leaflen = len - nslen - 1;
  if (nslen != 4 || memcmp (q, "base", 4) != 0)
    return Q_NONE;              /* other namespaces are ignored */
  if (leaflen == 0)             /* "base:" lists, but never selects */
    return listing ? Q_ALLOCATION : Q_NONE;
  if (leaflen == 10 && memcmp (colon + 1, "allocation", 10) == 0)
    return Q_ALLOCATION;
  return Q_NONE;                /* unknown base: leaf names are ignored */
}

static enum opt_result
opt_meta_context (struct conn *c, const struct option *o)
{
  const bool listing = o->opt == NBD_OPT_LIST_META_CONTEXT;
  const unsigned char *d = o->data;
  uint32_t namelen, nqueries, pos;
  struct export *exp;
  bool match = false;
  unsigned char buf[4 + sizeof NBD_BLOCK_ALLOCATION_CTX];

  /* Setting replaces the previous selection even when it fails. */
  if (!listing) {
    c->meta_selected = false;
    c->meta_exp = NULL;
  }
  if (!c->structured)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "negotiate structured replies or extended headers "
                      "first");
  if (o->len < 8)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "option length %" PRIu32 " is below the minimum of 8",
                      o->len);
  namelen = nbdp_get32 (d);
  if (namelen > o->len - 8)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "name length %" PRIu32 " does not fit in option "
                      "length %" PRIu32, namelen, o->len);
  if (!valid_string (d + 4, namelen))
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "export name (%" PRIu32 " bytes) is over %d bytes or "
                      "contains NUL", namelen, NBD_MAX_STRING);
  nqueries = nbdp_get32 (d + 4 + namelen);
  pos = 8 + namelen;
  /* First check the syntax of the whole option, then answer. */
  for (uint32_t i = 0; i < nqueries; i++) {
    uint32_t qlen;
    enum query_match m;

    if (o->len - pos < 4)
      return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                        "query %" PRIu32 " of %" PRIu32 " lies beyond the "
                        "option length %" PRIu32, i, nqueries, o->len);
    qlen = nbdp_get32 (d + pos);
    pos += 4;
    if (qlen > o->len - pos)
      return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                        "query %" PRIu32 " length %" PRIu32 " goes beyond "
                        "the option length %" PRIu32, i, qlen, o->len);
    if (!valid_string (d + pos, qlen))
      return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                        "query %" PRIu32 " (%" PRIu32 " bytes) is over %d "
                        "bytes or contains NUL", i, qlen, NBD_MAX_STRING);
    m = match_query (d + pos, qlen, listing);
    nbdp_debug ("conn %" PRIu64 ": query \"%.*s\"%s", c->id, (int) qlen,
                d + pos, m == Q_ALLOCATION ? ": matches base:allocation"
                : m == Q_INVALID ? ": invalid" : ": ignored");
    if (m == Q_INVALID)
      return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                        "query \"%.*s\" has no namespace", (int) qlen,
                        d + pos);
    if (m == Q_ALLOCATION)
      match = true;
    pos += qlen;
  }
  if (pos != o->len)
    return reply_err (c, o->opt, NBD_REP_ERR_INVALID,
                      "%" PRIu32 " bytes left over after %" PRIu32
                      " queries", o->len - pos, nqueries);

  exp = exports_find ((const char *) d + 4, namelen);
  if (exp == NULL)
    return reply_err (c, o->opt, NBD_REP_ERR_UNKNOWN,
                      "no export named \"%.*s\"", (int) namelen, d + 4);
  if (listing && nqueries == 0)
    match = true;

  if (match) {
    size_t n = strlen (NBD_BLOCK_ALLOCATION_CTX);
    nbdp_put32 (buf, listing ? 0 : META_ALLOCATION_ID);
    memcpy (buf + 4, NBD_BLOCK_ALLOCATION_CTX, n);
    if (send_reply (c, o->opt, NBD_REP_META_CONTEXT, buf, 4 + n) == -1)
      return OPT_CLOSE;
  }
  if (!listing) {
    c->meta_selected = match;
    c->meta_exp = exp;
  }
  return reply_ack (c, o->opt);
}

/* The option table. */
static const struct option_handler handlers[] = {
  { NBD_OPT_EXPORT_NAME,       false, opt_export_name },
  { NBD_OPT_ABORT,             false, opt_abort },
  { NBD_OPT_LIST,              true,  opt_list },
  { NBD_OPT_STARTTLS,          true,  opt_starttls },
  { NBD_OPT_INFO,              false, opt_info_go },
  { NBD_OPT_GO,                false, opt_info_go },
  { NBD_OPT_STRUCTURED_REPLY,  true,  opt_structured_reply },
  { NBD_OPT_LIST_META_CONTEXT, false, opt_meta_context },
  { NBD_OPT_SET_META_CONTEXT,  false, opt_meta_context },
  { NBD_OPT_EXTENDED_HEADERS,  true,  opt_extended_headers },
  { NBD_OPT_RESIZE,            false, opt_resize },
};

static const struct option_handler *
find_handler (uint32_t opt)
{
  for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
    if (handlers[i].opt == opt)
      return &handlers[i];
  return NULL;
}

/* Read and handle one option. */
static enum opt_result
one_option (struct conn *c)
{
  unsigned char hdr[NBDP_OPTION_SIZE];
  struct nbdp_option h;
  struct option o;
  const struct option_handler *handler;
  CLEANUP_FREE unsigned char *data = NULL;
  char nb[32];

  if (conn_recv (c, hdr, sizeof hdr) == -1) {
    if (errno == 0)
      nbdp_debug ("conn %" PRIu64 ": client closed during the handshake",
                  c->id);
    else
      nbdp_debug ("conn %" PRIu64 ": reading an option: %s", c->id,
                  strerror (errno));
    return OPT_CLOSE;
  }
  nbdp_decode_option (hdr, &h);
  if (h.magic != NBD_NEW_VERSION) {
    nbdp_debug ("conn %" PRIu64 ": option magic 0x%" PRIx64 ", expected "
                "0x%" PRIx64 " (IHAVEOPT): disconnecting", c->id, h.magic,
                NBD_NEW_VERSION);
    return OPT_CLOSE;
  }
  o.opt = h.option;
  o.len = h.length;
  nbdp_debug ("conn %" PRIu64 ": option %s, length %" PRIu32, c->id,
              nbdp_opt_str (nb, sizeof nb, o.opt), o.len);
  handler = find_handler (o.opt);

  if (o.len > OPTION_MAX_LEN) {
    /* No option of ours needs this much.  Consume a bounded amount so
     * that the stream stays in step and refuse; beyond that, hang up.
     */
    if (o.len > OPTION_DISCARD_LIMIT || o.opt == NBD_OPT_EXPORT_NAME) {
      nbdp_debug ("conn %" PRIu64 ": option length %" PRIu32 " is beyond "
                  "our limit of %d: disconnecting", c->id, o.len,
                  o.opt == NBD_OPT_EXPORT_NAME ? OPTION_MAX_LEN
                                               : OPTION_DISCARD_LIMIT);
      return OPT_CLOSE;
    }
    if (conn_discard (c, o.len) == -1)
      return OPT_CLOSE;
    return reply_err (c, o.opt, NBD_REP_ERR_TOO_BIG,
                      "option length %" PRIu32 " is over this server's "
                      "limit of %d bytes", o.len, OPTION_MAX_LEN);
  }
  data = malloc ((size_t) o.len + 1);
  if (data == NULL) {
    nbdp_warn ("option buffer");
    return OPT_CLOSE;
  }
  if (o.len && conn_recv (c, data, o.len) == -1) {
    nbdp_debug ("conn %" PRIu64 ": client went away in the middle of an "
                "option payload", c->id);
    return OPT_CLOSE;
  }
  data[o.len] = '\0';
  o.data = data;

  if (handler == NULL)
    return reply_err (c, o.opt, NBD_REP_ERR_UNSUP,
                      "option %s is not supported by this server",
                      nbdp_opt_str (nb, sizeof nb, o.opt));
  if (handler->no_data && o.len != 0)
    return reply_err (c, o.opt, NBD_REP_ERR_INVALID,
                      "option %s takes no data, but %" PRIu32 " bytes "
                      "were sent", nbdp_opt_str (nb, sizeof nb, o.opt), o.len);
  return handler->fn (c, &o);
}

int
handshake_newstyle (struct conn *c)
{
  unsigned char greet[18], cf[4];
  const uint16_t gflags = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;
  uint32_t cflags;

  nbdp_put64 (greet, NBD_MAGIC);
  nbdp_put64 (greet + 8, NBD_NEW_VERSION);
  nbdp_put16 (greet + 16, gflags);
  if (conn_send (c, greet, sizeof greet) == -1)
    return -1;
  if (conn_recv (c, cf, sizeof cf) == -1) {
    nbdp_debug ("conn %" PRIu64 ": no client flags", c->id);
    return -1;
  }
  cflags = nbdp_get32 (cf);
  if (nbdp_verbose) {
    char b[128];
    nbdp_debug ("conn %" PRIu64 ": client flags %s", c->id,
                nbdp_cflags_str (b, sizeof b, cflags));
  }
  if (cflags & ~(uint32_t) (NBD_FLAG_C_FIXED_NEWSTYLE |
                            NBD_FLAG_C_NO_ZEROES)) {
    nbdp_debug ("conn %" PRIu64 ": unknown client flags 0x%" PRIx32
                ": disconnecting", c->id, cflags);
    return -1;
  }
  c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

  for (unsigned n = 0; n < MAX_OPTIONS; n++) {
    switch (one_option (c)) {
    case OPT_NEXT:
      break;
    case OPT_TRANSMISSION:
      return 0;
    case OPT_CLOSE:
      return -1;
    }
  }
  nbdp_debug ("conn %" PRIu64 ": more than %d options: disconnecting",
              c->id, MAX_OPTIONS);
  return -1;
}
