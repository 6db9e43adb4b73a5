/* Resize suite: helpers shared by the files of suites/resize (the draft
 * RESIZE extension, specs/resize.md).  Everything is static: each file
 * that includes this gets its own copy; nothing here is part of
 * suites/lib.
 *
 * The suite speaks the draft through the client layer of
 * common/client-resize.h, whose rule checks (common/rules-resize.h) judge
 * every handshake item, size chunk and reply form; their violations
 * become findings of the running test with the requirement ID the server
 * broke.  On top of that the tests check what needs more than one
 * message: sizes seen on other connections, contents of new bytes,
 * timing of notifications, outcomes of requests sent on purpose.
 *
 * What the server supports is decided from the wire: a probe connection
 * (rz_probe) sends NBD_OPT_RESIZE and an NBD_OPT_INFO listing
 * NBD_INFO_RESIZE and looks at the answers and the transmission flags.
 * The only thing the wire cannot tell is variant B3 from P without
 * SIZE_REPLY; nbd-conform --profile says which (rz_declared).
 */
#ifndef RZLIB_H
#define RZLIB_H

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conform.h"
#include "nbd-draft.h"
#include "client-resize.h"
#include "rules-resize.h"

#define RZ_UNUSED __attribute__ ((unused))

/* Feature sets used throughout. */
#define RZ_F_ALL      NBD_RESIZE_MASK_FEATURES
#define RZ_F_SETSIZE  (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK)
#define RZ_F_CHUNKS   (NBD_RESIZE_F_SIZE_REPLY)
#define RZ_F_DEFAULT  (RZ_F_ALL & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW)
#define RZ_TRACE_MAX  400       /* trace lines logged per connection */
#define RZ_QUIET_MS   250       /* "nothing more arrives" window */
#define RZ_NOTIFY_MS  3000      /* wait for an expected notification */

/* ---- small helpers ------------------------------------------------- */

static RZ_UNUSED uint64_t
rz_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static RZ_UNUSED void *
rz_alloc (struct nc_ctx *t, size_t n)
{
  void *p = calloc (1, n ? n : 1);

  if (p == NULL)
    nc_error (t, "out of memory (%zu bytes)", n);
  return p;
}

static RZ_UNUSED const char *
rz_errname (uint32_t e)
{
  static char buf[4][32];
  static int i;
  const char *n;

  if (e == 0)
    return "success";
  n = nbdp_name_of_error (e);
  if (n)
    return n;
  i = (i + 1) % 4;
  snprintf (buf[i], sizeof buf[i], "error %" PRIu32, e);
  return buf[i];
}

static RZ_UNUSED const char *
rz_feat (uint32_t f)
{
  static char buf[4][160];
  static int i;

  i = (i + 1) % 4;
  return nbdp_rz_features_str (buf[i], sizeof buf[i], f);
}

static RZ_UNUSED const char *
rz_ev (uint32_t ev)
{
  static char buf[4][128];
  static int i;

  i = (i + 1) % 4;
  return nbdp_rz_events_str (buf[i], sizeof buf[i], ev);
}

/* Round x up to a multiple of g (g >= 1), saturating. */
static RZ_UNUSED uint64_t
rz_roundup (uint64_t x, uint64_t g)
{
  uint64_t r;

  if (g <= 1)
    return x;
  if (!nbdp_rz_roundup (x, g, &r))
    return UINT64_MAX;
  return r;
}

/* ---- what nbd-conform --profile declares --------------------------- */

enum rz_decl {
  RZ_DECL_NONE = 0,           /* nothing declared */
  RZ_DECL_OFF,                /* no extension */
  RZ_DECL_LEGACY,
  RZ_DECL_B1,
  RZ_DECL_B2,
  RZ_DECL_B3,
  RZ_DECL_P,
};

static RZ_UNUSED const char *
rz_decl_name (enum rz_decl d)
{
  switch (d) {
  case RZ_DECL_OFF: return "off";
  case RZ_DECL_LEGACY: return "legacy (2017)";
  case RZ_DECL_B1: return "flag-only (B1)";
  case RZ_DECL_B2: return "info-optin (B2)";
  case RZ_DECL_B3: return "boolean (B3)";
  case RZ_DECL_P: return "negotiated (P)";
  default: return "nothing";
  }
}

/* The encoding --profile declares: an encoding name or an nbd-refserver
 * profile name (specs/resize.md section 15.2).  Unknown names end the
 * test with ERROR.
 */
static RZ_UNUSED enum rz_decl
rz_declared (struct nc_ctx *t)
{
  static const struct { const char *name; enum rz_decl d; } map[] = {
    { "off", RZ_DECL_OFF }, { "none", RZ_DECL_OFF },
    { "legacy", RZ_DECL_LEGACY }, { "2017", RZ_DECL_LEGACY },
    { "flag-only", RZ_DECL_B1 }, { "B1", RZ_DECL_B1 },
    { "info-optin", RZ_DECL_B2 }, { "B2", RZ_DECL_B2 },
    { "boolean", RZ_DECL_B3 }, { "B3", RZ_DECL_B3 },
    { "negotiated", RZ_DECL_P }, { "P", RZ_DECL_P },
    /* nbd-refserver profiles of encoding P. */
    { "explicit-simple", RZ_DECL_P }, { "explicit-structured", RZ_DECL_P },
    { "quota", RZ_DECL_P }, { "auto-grow", RZ_DECL_P },
    { "notify", RZ_DECL_P }, { "everything", RZ_DECL_P },
    { "unzeroed", RZ_DECL_P }, { "refuse", RZ_DECL_P },
    { "per-connection", RZ_DECL_P }, { "no-optin", RZ_DECL_P },
    { "no-coalesce", RZ_DECL_P }, { "replace-subscription", RZ_DECL_P },
    { "no-unsubscribe", RZ_DECL_P },
  };
  const char *p = t->cfg->profile;

  if (p == NULL || *p == '\0')
    return RZ_DECL_NONE;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcasecmp (p, map[i].name) == 0)
      return map[i].d;
  nc_error (t, "--profile \"%s\": not an encoding (negotiated, flag-only, "
            "info-optin, boolean, legacy, off) nor an nbd-refserver "
            "profile name", p);
}

/* ---- one connection ------------------------------------------------ */

#define RZ_MAX_RAW 16

/* A request sent around the client layer (rz_raw_send), and what came
 * back for it.
 */
struct rz_raw {
  uint64_t cookie;
  uint16_t type, flags;
  bool any;                   /* a reply or chunk arrived */
  bool final;                 /* ... and the final one */
  bool simple;
  uint32_t error;
  bool error_offset;
  unsigned n_resize, n_none, n_other, n_chunks;
  bool resize_len_bad;
  struct nbdp_rz_chunk chunk; /* the first size chunk */
  uint16_t chunk_flags;
  uint64_t chunk_hdr_offset;
};

struct rz {
  struct nc_ctx *t;
  struct nbdp_rz_client *rc;
  char label[16];
  size_t reported;            /* rc->vs entries already reported */
  unsigned trace_lines;
  nbdp_reply_hook inner_reply, inner_chunk;
  void *inner_opaque;
  struct rz_raw raw[RZ_MAX_RAW];
  size_t n_raw;
};

static RZ_UNUSED void
rz_trace (void *opaque, const char *line)
{
  struct rz *z = opaque;

  if (z->trace_lines < RZ_TRACE_MAX)
    nc_log (z->t, "%s %s", z->label, line);
  else if (z->trace_lines == RZ_TRACE_MAX)
    nc_log (z->t, "%s (further trace lines of this connection dropped)",
            z->label);
  z->trace_lines++;
}

static RZ_UNUSED struct rz_raw *
rz_raw_find (struct rz *z, uint64_t cookie)
{
  for (size_t i = 0; i < z->n_raw; i++)
    if (z->raw[i].cookie == cookie)
      return &z->raw[i];
  return NULL;
}

static RZ_UNUSED int
rz_reply_hook (void *opaque, struct nbdp_client *c, struct nbdp_cmd *cmd,
               const struct nbdp_client_reply *r, char *msg, size_t msgsize)
{
  struct rz *z = opaque;
  struct rz_raw *w;

  if (cmd == NULL && r->known_cookie &&
      (w = rz_raw_find (z, r->hdr.cookie)) != NULL) {
    w->any = true;
    if (r->final)
      w->final = true;
    if (r->hdr.kind == NBDP_REPLY_SIMPLE) {
      w->simple = true;
      if (w->error == 0)
        w->error = r->hdr.error;
    }
    else {
      w->n_chunks++;
      if (r->hdr.type == NBD_REPLY_TYPE_NONE)
        w->n_none++;
      else if (r->hdr.type == NBD_REPLY_TYPE_RESIZE) {
        struct nbdp_rz_chunk ch;
        if (!nbdp_rz_decode_chunk (r->payload, r->payload_len, &ch))
          w->resize_len_bad = true;
        else if (w->n_resize == 0) {
          w->chunk = ch;
          w->chunk_flags = r->hdr.flags;
          w->chunk_hdr_offset = r->hdr.offset;
        }
        w->n_resize++;
      }
      else if (r->hdr.type & NBD_REPLY_TYPE_ERR (0)) {
        if (r->hdr.type == NBD_REPLY_TYPE_ERROR_OFFSET)
          w->error_offset = true;
        if (w->error == 0 && r->payload_len >= 4)
          w->error = nbdp_get32 (r->payload);
      }
      else
        w->n_other++;
    }
  }
  return z->inner_reply (z->inner_opaque, c, cmd, r, msg, msgsize);
}

static RZ_UNUSED int
rz_chunk_hook (void *opaque, struct nbdp_client *c, struct nbdp_cmd *cmd,
               const struct nbdp_client_reply *r, char *msg, size_t msgsize)
{
  struct rz *z = opaque;

  return z->inner_chunk (z->inner_opaque, c, cmd, r, msg, msgsize);
}

/* Turn violations recorded since the last call into findings. */
static RZ_UNUSED void
rz_flush (struct nc_ctx *t, struct rz *z)
{
  const struct nbdp_rz_violations *vs = &z->rc->vs;

  for (; z->reported < vs->n; z->reported++) {
    const struct nbdp_rz_violation *v = &vs->v[z->reported];
    char extra[96] = "";
    if (v->cli_id)
      snprintf (extra, sizeof extra, " (a client reacts by %s)",
                v->cli_id);
    if (v->level == NBDP_RZ_MUST)
      nc_fail (t, v->id, "%s: %s%s", z->label, v->msg, extra);
    else
      nc_should (t, v->id, "%s: %s%s", z->label, v->msg, extra);
  }
}

/* Record a violation found by the suite itself (not by the client
 * layer) so that it is reported once, like the others.
 */
static RZ_UNUSED void
rz_merge (struct nc_ctx *t, struct rz *z,
          const struct nbdp_rz_violations *vs)
{
  nbdp_rz_violations_merge (&z->rc->vs, vs);
  rz_flush (t, z);
}

static RZ_UNUSED bool
rz_dead (const struct rz *z)
{
  return z->rc->c->fd < 0 || z->rc->c->dead;
}

/* The connection failed or the client layer dropped it after a
 * violation: report and end the test.
 */
static RZ_UNUSED _Noreturn void
rz_broken (struct nc_ctx *t, struct rz *z, const char *what)
{
  size_t before = z->reported;

  rz_flush (t, z);
  /* A hard disconnect by the client layer has its reason reported. */
  if (z->reported == before &&
      nbdp_rz_violations_disconnect (&z->rc->vs) == NULL) {
    const char *e = z->rc->err[0] ? nbdp_rz_error (z->rc)
      : nbdp_client_error (z->rc->c);
    nc_fail (t, NULL, "%s: %s: %s", z->label, what, e);
  }
  nc_done (t);
}

static RZ_UNUSED struct rz *
rz_new (struct nc_ctx *t, const char *label)
{
  struct rz *z = rz_alloc (t, sizeof *z);

  z->t = t;
  snprintf (z->label, sizeof z->label, "[%s]", label);
  z->rc = nbdp_rz_client_new ();
  if (z->rc == NULL)
    nc_error (t, "out of memory");
  z->rc->force = true;          /* the suite sends what it wants */
  nbdp_rz_set_trace (z->rc, rz_trace, z);
  z->inner_reply = z->rc->c->reply_hook;
  z->inner_chunk = z->rc->c->chunk_hook;
  z->inner_opaque = z->rc->c->hook_opaque;
  z->rc->c->reply_hook = rz_reply_hook;
  z->rc->c->chunk_hook = rz_chunk_hook;
  z->rc->c->hook_opaque = z;
  if (t->cfg->client_timeout_ms > 0)
    nbdp_client_set_timeout (z->rc->c, t->cfg->client_timeout_ms);
  if (nbdp_rz_connect_uri (z->rc, t->uri) == -1)
    nc_error (t, "cannot connect to %s: %s", t->uri, nbdp_rz_error (z->rc));
  return z;
}

static RZ_UNUSED const char *
rz_export_name (struct nc_ctx *t, struct rz *z)
{
  return z->rc->c->uri_export ? z->rc->c->uri_export : "";
}

/* ---- the probe: what the server advertises ------------------------- */

enum rz_wire {
  RZW_NONE = 0,               /* no trace of the extension */
  RZW_LEGACY,                 /* NBD_FLAG_SEND_RESIZE only */
  RZW_B1,                     /* NBD_FLAG_AUTO_RESIZE */
  RZW_B2,                     /* NBD_INFO_RESIZE without the option */
  RZW_P,                      /* NBD_OPT_RESIZE acknowledged (P or B3) */
};

struct rz_probe {
  enum rz_wire wire;
  bool oldstyle;
  bool opt_sent;
  uint32_t opt_rep;           /* reply to NBD_OPT_RESIZE */
  bool item;                  /* NBD_INFO_RESIZE in the NBD_OPT_INFO reply */
  struct nbdp_rz_info info;
  bool have_export;
  uint64_t size;
  uint16_t eflags;
  bool have_bs;
  uint32_t min_block;
  bool tls_required;
  char desc[768];
};

static RZ_UNUSED const char *
rz_rep_name (uint32_t rep)
{
  static char buf[4][32];
  static int i;

  i = (i + 1) % 4;
  return nbdp_name_or (nbdp_name_of_rep (rep), buf[i], sizeof buf[i], rep);
}

static RZ_UNUSED void
rz_probe_classify (struct rz_probe *p)
{
  char fb[256];
  size_t n = 0;

  if (p->opt_sent && p->opt_rep == NBD_REP_ACK)
    p->wire = RZW_P;
  else if (p->item)
    p->wire = RZW_B2;
  else if (p->eflags & NBD_FLAG_AUTO_RESIZE)
    p->wire = RZW_B1;
  else if (p->eflags & NBD_FLAG_SEND_RESIZE)
    p->wire = RZW_LEGACY;
  else
    p->wire = RZW_NONE;

  if (p->oldstyle)
    n += snprintf (p->desc + n, sizeof p->desc - n, "oldstyle handshake "
                   "(no options); ");
  else if (p->opt_sent)
    n += snprintf (p->desc + n, sizeof p->desc - n, "NBD_OPT_RESIZE "
                   "answered %s; ", rz_rep_name (p->opt_rep));
  if (!p->oldstyle && n < sizeof p->desc)
    n += snprintf (p->desc + n, sizeof p->desc - n, "%s; ",
                   p->item ? "NBD_INFO_RESIZE in the NBD_OPT_INFO reply"
                   : "no NBD_INFO_RESIZE in the reply to NBD_OPT_INFO "
                   "listing it");
  if (n < sizeof p->desc)
    snprintf (p->desc + n, sizeof p->desc - n, "transmission flags %s",
              p->have_export ? nbdp_flags_str (fb, sizeof fb, p->eflags)
              : "unknown");
}

/* Probe the server once per test (cached). */
static RZ_UNUSED const struct rz_probe *
rz_probe (struct nc_ctx *t)
{
  static struct rz_probe p;
  static bool done;
  struct rz *z;
  struct nbdp_greeting g;
  struct nbdp_client *c;
  uint32_t cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  unsigned char data[4];
  struct nbdp_opt_reply r;
  const uint16_t infos[2] = { NBD_INFO_BLOCK_SIZE, NBD_INFO_RESIZE };
  struct nbdp_export exp;
  struct nbdp_rz_export ex;
  const char *name;

  if (done)
    return &p;
  memset (&p, 0, sizeof p);
  z = rz_new (t, "probe");
  c = z->rc->c;
  name = rz_export_name (t, z);
  if (nbdp_client_recv_greeting (c, &g) == -1)
    nc_error (t, "probe: reading the greeting: %s", nbdp_client_error (c));
  if (g.oldstyle) {
    p.oldstyle = true;
    p.have_export = true;
    p.size = g.size;
    p.eflags = g.eflags;
    goto out;
  }
  if (!(g.gflags & NBD_FLAG_FIXED_NEWSTYLE))
    cflags = 0;
  if (g.gflags & NBD_FLAG_NO_ZEROES)
    cflags |= NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_send_cflags (c, cflags) == -1)
    nc_error (t, "probe: sending the client flags: %s",
              nbdp_client_error (c));
  if (cflags & NBD_FLAG_C_FIXED_NEWSTYLE) {
    nbdp_put32 (data, RZ_F_ALL);
    if (nbdp_client_send_option (c, NBD_OPT_RESIZE, data, 4) == -1 ||
        nbdp_client_recv_option_reply (c, &r, 64 * 1024) == -1)
      nc_error (t, "probe: NBD_OPT_RESIZE: %s", nbdp_client_error (c));
    p.opt_sent = true;
    p.opt_rep = r.reply;
    nc_log (t, "[probe] NBD_OPT_RESIZE answered %s", rz_rep_name (r.reply));
    if (nbdp_rz_opt_info (z->rc, false, name, infos, 2, &exp, &ex) == 0) {
      p.have_export = true;
      p.size = exp.size;
      p.eflags = exp.eflags;
      p.have_bs = exp.have_block_size;
      p.min_block = exp.min_block;
      p.item = ex.n_info_resize > 0;
      p.info = ex.info;
      nbdp_client_opt_abort (c);
      goto out;
    }
    if (z->rc->status != NBDP_RZ_REFUSED)
      nc_error (t, "probe: NBD_OPT_INFO: %s", nbdp_rz_error (z->rc));
    if (exp.rep_error == NBD_REP_ERR_TLS_REQD) {
      p.tls_required = true;
      goto out;
    }
    if (exp.rep_error != NBD_REP_ERR_UNSUP)
      nc_error (t, "probe: NBD_OPT_INFO for export \"%s\" refused: %s",
                name, nbdp_rz_error (z->rc));
  }
  /* No NBD_OPT_INFO: the flags of NBD_OPT_EXPORT_NAME. */
  if (nbdp_client_opt_export_name (c, name, &exp) == -1)
    nc_error (t, "probe: NBD_OPT_EXPORT_NAME \"%s\": %s", name,
              nbdp_client_error (c));
  p.have_export = true;
  p.size = exp.size;
  p.eflags = exp.eflags;
 out:
  nbdp_client_close (c);
  rz_probe_classify (&p);
  nc_log (t, "[probe] %s", p.desc);
  done = true;
  return &p;
}

/* The probe, ended with UNSUPPORTED/SKIP unless the server advertises the
 * extension in some encoding.
 */
static RZ_UNUSED const struct rz_probe *
rz_need_extension (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_probe (t);

  if (p->tls_required)
    nc_skip (t, "the server requires TLS (NBD_REP_ERR_TLS_REQD), which "
             "nbd-conform does not speak");
  if (p->wire == RZW_NONE)
    nc_unsupported (t, "the server does not advertise the RESIZE "
                    "extension: %s", p->desc);
  return p;
}

/* Negotiated mode (P, B3 or B2) and the capabilities need. */
static RZ_UNUSED const struct rz_probe *
rz_need_negotiated (struct nc_ctx *t, uint32_t need)
{
  const struct rz_probe *p = rz_need_extension (t);

  if (p->wire != RZW_P && p->wire != RZW_B2)
    nc_unsupported (t, "the server offers no negotiated mode (%s): %s",
                    p->wire == RZW_LEGACY ? "legacy mode only"
                    : "variant B1, NBD_FLAG_AUTO_RESIZE only", p->desc);
  if (!p->item)
    nc_unsupported (t, "NBD_OPT_RESIZE was acknowledged but the reply to "
                    "NBD_OPT_INFO had no NBD_INFO_RESIZE, so the "
                    "capabilities are unknown (see resize/info-listed)");
  if ((p->info.capabilities & need) != need)
    nc_unsupported (t, "the capabilities %s lack %s",
                    rz_feat (p->info.capabilities),
                    rz_feat (need & ~p->info.capabilities));
  return p;
}

/* The client encoding of negotiated mode for this server. */
static RZ_UNUSED enum nbdp_rz_encoding
rz_neg_encoding (struct nc_ctx *t, const struct rz_probe *p)
{
  if (p->wire == RZW_B2)
    return NBDP_RZ_ENC_INFO_OPTIN;
  if (rz_declared (t) == RZ_DECL_B3)
    return NBDP_RZ_ENC_BOOLEAN;
  return NBDP_RZ_ENC_NEGOTIATED;
}

/* ---- opening connections ------------------------------------------- */

struct rz_open {
  uint32_t want;              /* NBD_OPT_RESIZE request (P/B3) */
  bool simple;                /* no structured replies */
  bool extended;              /* extended headers */
  bool probe_info;            /* NBD_OPT_INFO before NBD_OPT_GO */
  bool export_name;           /* end with NBD_OPT_EXPORT_NAME */
  bool no_block_size;
  const char *export;         /* NULL: the configured export */
};

/* Handshake z in encoding enc; ends the test on failure. */
static RZ_UNUSED void
rz_handshake (struct nc_ctx *t, struct rz *z, enum nbdp_rz_encoding enc,
              const struct rz_open *o)
{
  struct nbdp_rz_opts ro = {
    .encoding = enc, .features = o->want, .structured = !o->simple,
    .extended = o->extended, .probe_info = o->probe_info,
    .use_export_name = o->export_name, .no_block_size = o->no_block_size,
    .export_name = o->export,
  };

  if (nbdp_rz_handshake (z->rc, &ro) == -1) {
    if (z->rc->status == NBDP_RZ_UNSUPPORTED)
      nc_unsupported (t, "%s", nbdp_rz_error (z->rc));
    if (z->rc->status == NBDP_RZ_REFUSED)
      nc_fail (t, NULL, "%s handshake (%s): refused: %s", z->label,
               nbdp_rz_encoding_name (enc), nbdp_rz_error (z->rc));
    rz_broken (t, z, "handshake");
  }
  rz_flush (t, z);
  if (o->extended && !z->rc->st.extended)
    nc_unsupported (t, "the server refused NBD_OPT_EXTENDED_HEADERS");
  if (!o->simple && !o->extended && !z->rc->st.structured &&
      !z->rc->oldstyle)
    nc_unsupported (t, "the server refused NBD_OPT_STRUCTURED_REPLY");
}

/* A connection in negotiated mode with o->want requested; need must be in
 * the capabilities (else UNSUPPORTED) and becomes active (else FAIL,
 * RZ-NEG-9, unless a prerequisite is missing on purpose).
 */
static RZ_UNUSED struct rz *
rz_open_neg (struct nc_ctx *t, const char *label, uint32_t need,
             const struct rz_open *o)
{
  const struct rz_probe *p = rz_need_negotiated (t, need);
  enum nbdp_rz_encoding enc = rz_neg_encoding (t, p);
  struct rz_open def = { .want = RZ_F_DEFAULT };
  struct rz *z;
  uint32_t act;

  if (o == NULL)
    o = &def;
  if (enc == NBDP_RZ_ENC_BOOLEAN &&
      (need & (NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_MASK_NEED_SIZE_REPLY)))
    nc_unsupported (t, "variant B3 (declared by --profile) has no size "
                    "chunks");
  z = rz_new (t, label);
  rz_handshake (t, z, enc, o);
  act = z->rc->st.active;
  if (z->rc->st.mode != NBDP_RZ_MODE_NEGOTIATED)
    nc_fail (t, "RZ-NEG-1", "%s the probe found %s, but this connection "
             "is in %s mode", z->label, p->desc,
             nbdp_rz_mode_name (z->rc->st.mode)), nc_done (t);
  if (enc != NBDP_RZ_ENC_INFO_OPTIN && (need & o->want & ~act)) {
    nc_fail (t, "RZ-NEG-9", "%s requested %s with capabilities %s; active "
             "%s lacks %s", z->label, rz_feat (o->want),
             rz_feat (z->rc->st.info.capabilities), rz_feat (act),
             rz_feat (need & o->want & ~act));
    nc_done (t);
  }
  return z;
}

/* A connection that negotiates nothing (legacy mode if the server sets
 * NBD_FLAG_SEND_RESIZE; under B1 the client knows NBD_FLAG_AUTO_RESIZE).
 */
static RZ_UNUSED struct rz *
rz_open_plain (struct nc_ctx *t, const char *label, const struct rz_open *o)
{
  const struct rz_probe *p = rz_probe (t);
  struct rz_open def = { 0 };
  struct rz *z = rz_new (t, label);

  rz_handshake (t, z, p->wire == RZW_B1 ? NBDP_RZ_ENC_FLAG_ONLY
                : NBDP_RZ_ENC_LEGACY, o ? o : &def);
  return z;
}

/* Legacy mode on a plain connection, else UNSUPPORTED. */
static RZ_UNUSED struct rz *
rz_open_legacy (struct nc_ctx *t, const char *label, const struct rz_open *o)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z = rz_open_plain (t, label, o);
  char fb[256];

  if (!(z->rc->st.eflags & NBD_FLAG_SEND_RESIZE))
    nc_unsupported (t, "no legacy mode: a client that negotiates nothing "
                    "gets transmission flags %s without "
                    "NBD_FLAG_SEND_RESIZE (probe: %s)",
                    nbdp_flags_str (fb, sizeof fb, z->rc->st.eflags),
                    p->desc);
  return z;
}

/* NBD_CMD_DISC, then wait for the server to close, so that it no longer
 * counts the connection (servers that refuse resizes while others are
 * connected).
 */
static RZ_UNUSED void
rz_close (struct nc_ctx *t, struct rz *z)
{
  if (!rz_dead (z) && nbdp_rz_disc (z->rc) == 0 && !rz_dead (z))
    nbdp_client_expect_eof (z->rc->c);
  rz_flush (t, z);
  nbdp_client_close (z->rc->c);
}

/* ---- requests ------------------------------------------------------ */

static RZ_UNUSED uint64_t
rz_g (struct rz *z)
{
  return nbdp_rz_granularity (&z->rc->st);
}

/* A size step of at least 4096 bytes, a multiple of G. */
static RZ_UNUSED uint64_t
rz_step (struct rz *z)
{
  return rz_roundup (4096, nbdp_rz_granularity (&z->rc->st));
}

static RZ_UNUSED uint64_t
rz_size (struct rz *z)
{
  return z->rc->st.size;
}

static RZ_UNUSED bool
rz_active (struct rz *z, uint32_t f)
{
  return (z->rc->st.active & f) == f;
}

/* After a client layer call returned -1: the NBD error if the server
 * refused, otherwise the test ends.
 */
static RZ_UNUSED uint32_t
rz_outcome (struct nc_ctx *t, struct rz *z, int r, uint32_t error,
            const char *what)
{
  rz_flush (t, z);
  if (r == 0)
    return 0;
  if (z->rc->status == NBDP_RZ_REFUSED && !rz_dead (z))
    return error ? error : NBD_EIO;
  rz_broken (t, z, what);
}

/* Set size; returns the NBD error (0 on success). */
static RZ_UNUSED uint32_t
rz_set (struct nc_ctx *t, struct rz *z, uint64_t size, uint16_t flags,
        struct nbdp_rz_result *res)
{
  struct nbdp_rz_result tmp;
  char what[96];
  int r;

  if (res == NULL)
    res = &tmp;
  memset (res, 0, sizeof *res);
  snprintf (what, sizeof what, "set size %" PRIu64, size);
  r = nbdp_rz_set_size (z->rc, size, flags, res);
  return rz_outcome (t, z, r, res->error, what);
}

/* Any NBD_CMD_RESIZE but subscribe, judged as its form. */
static RZ_UNUSED uint32_t
rz_resize_raw (struct nc_ctx *t, struct rz *z, uint16_t flags,
               uint64_t offset, uint64_t count, struct nbdp_rz_result *res)
{
  struct nbdp_rz_result tmp;
  int r;

  if (res == NULL)
    res = &tmp;
  memset (res, 0, sizeof *res);
  r = nbdp_rz_resize_raw (z->rc, flags, offset, count, res);
  return rz_outcome (t, z, r, res->error, "NBD_CMD_RESIZE");
}

static RZ_UNUSED uint32_t
rz_query (struct nc_ctx *t, struct rz *z, struct nbdp_rz_result *res)
{
  struct nbdp_rz_result tmp;
  int r;

  if (res == NULL)
    res = &tmp;
  memset (res, 0, sizeof *res);
  r = nbdp_rz_query (z->rc, res);
  return rz_outcome (t, z, r, res->error, "query");
}

static RZ_UNUSED uint32_t
rz_sub (struct nc_ctx *t, struct rz *z, bool own, struct nbdp_rz_result *res)
{
  struct nbdp_rz_result tmp;
  int r;

  if (res == NULL)
    res = &tmp;
  memset (res, 0, sizeof *res);
  r = nbdp_rz_subscribe (z->rc, own, res);
  return rz_outcome (t, z, r, res->error, "subscribe");
}

static RZ_UNUSED uint32_t
rz_unsub (struct nc_ctx *t, struct rz *z, struct nbdp_rz_result *res)
{
  struct nbdp_rz_result tmp;
  int r;

  if (res == NULL)
    res = &tmp;
  memset (res, 0, sizeof *res);
  r = nbdp_rz_unsubscribe (z->rc, res);
  return rz_outcome (t, z, r, res->error, "unsubscribe");
}

/* The next notification within ms: 1 with *ch, 0 if none came.  A
 * subscription that ended, a violation or a broken connection ends the
 * test.
 */
static RZ_UNUSED int
rz_next (struct nc_ctx *t, struct rz *z, int ms, struct nbdp_rz_chunk *ch)
{
  int r = nbdp_rz_next_event (z->rc, ms, ch);

  rz_flush (t, z);
  if (r >= 0)
    return r;
  if (z->rc->sub_ended && z->reported == 0)
    nc_fail (t, "RZ-SUB-15", "%s the subscription ended while the test "
             "waited for a notification (no unsubscribe, no "
             "NBD_CMD_DISC): %s", z->label, nbdp_rz_error (z->rc));
  rz_broken (t, z, "waiting for a notification");
}

/* A write through the client layer (growing writes judged); returns the
 * NBD error.
 */
static RZ_UNUSED uint32_t
rz_write (struct nc_ctx *t, struct rz *z, const void *buf, uint64_t count,
          uint64_t offset, uint16_t flags, struct nbdp_rz_result *res)
{
  struct nbdp_rz_result tmp;
  char what[96];
  int r;

  if (res == NULL)
    res = &tmp;
  memset (res, 0, sizeof *res);
  snprintf (what, sizeof what, "write %" PRIu64 "+%" PRIu64, offset, count);
  r = nbdp_rz_pwrite (z->rc, buf, count, offset, flags, res);
  return rz_outcome (t, z, r, res->error, what);
}

/* Any other command through the checked command layer (READ into rbuf,
 * WRITE from wbuf); returns the NBD error.  A chunk that breaks the
 * published protocol ends the test.
 */
static RZ_UNUSED uint32_t
rz_cmd (struct nc_ctx *t, struct rz *z, uint16_t type, uint16_t flags,
        uint64_t offset, uint64_t count, const void *wbuf, void *rbuf)
{
  struct nbdp_cmd cmd = {
    .type = type, .flags = flags, .offset = offset, .count = count,
    .buf = rbuf, .payload = wbuf,
  };
  const char *n = nbdp_name_of_cmd (type);
  uint32_t err;
  int r;

  if (rz_dead (z))
    rz_broken (t, z, "connection closed");
  nc_log (t, "%s C: %s flags 0x%x offset %" PRIu64 " length %" PRIu64,
          z->label, n ? n : "?", flags, offset, count);
  if (nbdp_client_cmd_start (z->rc->c, &cmd) == -1) {
    nbdp_client_cmd_cleanup (z->rc->c, &cmd);
    rz_broken (t, z, "sending a request");
  }
  r = nbdp_client_cmd_wait (z->rc->c, &cmd);
  err = cmd.error;
  rz_flush (t, z);
  if (cmd.violation) {
    nc_fail (t, NULL, "%s %s offset %" PRIu64 " length %" PRIu64 ": %s",
             z->label, n ? n : "?", offset, count, cmd.violation_message);
    nbdp_client_cmd_cleanup (z->rc->c, &cmd);
    nc_done (t);
  }
  nbdp_client_cmd_cleanup (z->rc->c, &cmd);
  if (r == -1 && z->rc->c->failure != NBDP_FAIL_REFUSED)
    rz_broken (t, z, n ? n : "request");
  nc_log (t, "%s S: %s", z->label, rz_errname (err));
  return err;
}

static RZ_UNUSED uint32_t
rz_read (struct nc_ctx *t, struct rz *z, uint64_t off, uint64_t len,
         void *buf)
{
  return rz_cmd (t, z, NBD_CMD_READ, 0, off, len, NULL, buf);
}

/* Read [off, off+len) and expect every byte to be b; returns the number
 * of the first differing byte's offset or UINT64_MAX if all matched; a
 * failed read ends the test with a finding under id.
 */
static RZ_UNUSED uint64_t
rz_read_check (struct nc_ctx *t, struct rz *z, uint64_t off, uint64_t len,
               int b, const char *id, const char *what)
{
  unsigned char *buf = rz_alloc (t, len);
  uint32_t e = rz_read (t, z, off, len, buf);
  uint64_t bad = UINT64_MAX;

  if (e) {
    nc_fail (t, id, "%s reading %" PRIu64 "+%" PRIu64 " (%s) failed with "
             "%s; the size is %" PRIu64 "; expected success", z->label, off,
             len, what, rz_errname (e), rz_size (z));
    free (buf);
    nc_done (t);
  }
  for (uint64_t i = 0; i < len; i++)
    if (buf[i] != (unsigned char) b) {
      bad = off + i;
      nc_log (t, "%s byte at %" PRIu64 " is 0x%02x, expected 0x%02x",
              z->label, bad, buf[i], b & 0xff);
      break;
    }
  free (buf);
  return bad;
}

/* Send a request around the client layer; its replies are recorded in
 * z->raw (rz_raw_wait).  Returns the record.
 */
static RZ_UNUSED struct rz_raw *
rz_raw_send (struct nc_ctx *t, struct rz *z, uint16_t type, uint16_t flags,
             uint64_t offset, uint64_t count, const void *payload,
             size_t payload_len)
{
  struct nbdp_request req = {
    .type = type, .flags = flags, .offset = offset, .count = count,
  };
  struct rz_raw *w;
  const char *n = nbdp_name_of_cmd (type);

  if (z->n_raw == RZ_MAX_RAW)
    nc_error (t, "too many raw requests in one test");
  if (rz_dead (z))
    rz_broken (t, z, "connection closed");
  req.cookie = nbdp_client_next_cookie (z->rc->c);
  w = &z->raw[z->n_raw++];
  memset (w, 0, sizeof *w);
  w->cookie = req.cookie;
  w->type = type;
  w->flags = flags;
  nc_log (t, "%s C: raw %s flags 0x%x cookie %" PRIu64 " offset %" PRIu64
          " length %" PRIu64 "%s", z->label, n ? n : "?", flags, req.cookie,
          offset, count, payload_len ? " (with payload)" : "");
  if (nbdp_client_send_request (z->rc->c, &req, NBDP_LAYOUT_AUTO, payload,
                                payload_len) == -1)
    rz_broken (t, z, "sending a request");
  return w;
}

/* Receive replies until w has its final reply (or, if !final, any reply)
 * or ms pass (ms < 0: the client timeout).  Returns true if it came.
 */
static RZ_UNUSED bool
rz_raw_wait (struct nc_ctx *t, struct rz *z, struct rz_raw *w, bool final,
             int ms)
{
  uint64_t deadline = ms >= 0 ? rz_now_ms () + (uint64_t) ms : 0;

  while (!(final ? w->final : w->any)) {
    if (rz_dead (z))
      rz_broken (t, z, "waiting for a reply");
    if (ms >= 0) {
      struct pollfd pfd = { .fd = z->rc->c->fd, .events = POLLIN };
      uint64_t now = rz_now_ms ();
      int r;
      if (now >= deadline)
        return false;
      r = poll (&pfd, 1, (int) (deadline - now));
      if (r == 0)
        return false;
      if (r == -1 && errno == EINTR)
        continue;
    }
    if (nbdp_client_cmd_poll (z->rc->c, NULL) == -1)
      rz_broken (t, z, "waiting for a reply");
    rz_flush (t, z);
  }
  return true;
}

/* Process whatever arrives for ms milliseconds (notifications, strays). */
static RZ_UNUSED void
rz_pump (struct nc_ctx *t, struct rz *z, int ms)
{
  uint64_t deadline = rz_now_ms () + (uint64_t) ms;

  for (;;) {
    struct pollfd pfd;
    uint64_t now = rz_now_ms ();
    int r;
    if (rz_dead (z) || now >= deadline)
      break;
    pfd = (struct pollfd) { .fd = z->rc->c->fd, .events = POLLIN };
    r = poll (&pfd, 1, (int) (deadline - now));
    if (r <= 0)
      continue;
    if (nbdp_client_cmd_poll (z->rc->c, NULL) == -1)
      rz_broken (t, z, "receiving");
  }
  rz_flush (t, z);
}

/* ---- sizes seen from outside --------------------------------------- */

/* The export size as a new connection sees it (NBD_OPT_INFO, so that no
 * connection enters transmission; NBD_OPT_GO if INFO is not supported).
 */
static RZ_UNUSED uint64_t
rz_size_fresh_of (struct nc_ctx *t, const char *export)
{
  struct nbdp_client *c = nbdp_client_new ();
  struct nbdp_export exp;
  struct nbdp_greeting g;
  const char *name;
  uint64_t size;
  uint32_t cflags = NBD_FLAG_C_FIXED_NEWSTYLE;

  if (c == NULL)
    nc_error (t, "out of memory");
  if (t->cfg->client_timeout_ms > 0)
    nbdp_client_set_timeout (c, t->cfg->client_timeout_ms);
  if (nbdp_client_connect_uri (c, t->uri) == -1 ||
      nbdp_client_recv_greeting (c, &g) == -1)
    nc_error (t, "size check connection: %s", nbdp_client_error (c));
  name = export ? export : c->uri_export ? c->uri_export : "";
  if (g.oldstyle) {
    size = g.size;
    goto out;
  }
  if (g.gflags & NBD_FLAG_NO_ZEROES)
    cflags |= NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_send_cflags (c, cflags) == -1)
    nc_error (t, "size check connection: %s", nbdp_client_error (c));
  if (nbdp_client_opt_info (c, false, name, NULL, 0, &exp) == 0) {
    size = exp.size;
    nbdp_client_opt_abort (c);
    goto out;
  }
  if (nbdp_client_opt_info (c, true, name, NULL, 0, &exp) == -1)
    nc_error (t, "size check connection: %s", nbdp_client_error (c));
  size = exp.size;
  nbdp_client_disc (c);
  nbdp_client_expect_eof (c);
 out:
  nbdp_client_free (c);
  nc_log (t, "[size] a new connection sees size %" PRIu64, size);
  return size;
}

static RZ_UNUSED uint64_t
rz_size_fresh (struct nc_ctx *t)
{
  return rz_size_fresh_of (t, NULL);
}

/* Run --control-cmd to set the size from outside.  Returns the command's
 * exit status (0: done); UNSUPPORTED is the caller's business when
 * t->cfg->control_cmd is NULL.
 */
static RZ_UNUSED int
rz_admin_resize (struct nc_ctx *t, uint64_t size)
{
  const char *tmpl = t->cfg->control_cmd;
  char *cmd = NULL, sz[32], line[512];
  size_t len = 0;
  FILE *f, *out;
  int st;

  snprintf (sz, sizeof sz, "%" PRIu64, size);
  out = open_memstream (&cmd, &len);
  if (out == NULL)
    nc_error (t, "open_memstream: %s", strerror (errno));
  for (const char *p = tmpl; *p; p++) {
    if (strncmp (p, "{size}", 6) == 0)
      fputs (sz, out), p += 5;
    else if (strncmp (p, "{socket}", 8) == 0)
      fputs (t->socket ? t->socket : "", out), p += 7;
    else if (strncmp (p, "{dir}", 5) == 0)
      fputs (t->dir ? t->dir : "", out), p += 4;
    else if (strncmp (p, "{uri}", 5) == 0)
      fputs (t->uri, out), p += 4;
    else
      fputc (*p, out);
  }
  fputs (" 2>&1", out);
  fclose (out);
  nc_log (t, "[admin] %s", cmd);
  f = popen (cmd, "r");
  free (cmd);
  if (f == NULL)
    nc_error (t, "--control-cmd: popen: %s", strerror (errno));
  while (fgets (line, sizeof line, f)) {
    line[strcspn (line, "\n")] = '\0';
    nc_log (t, "[admin] %s", line);
  }
  st = pclose (f);
  return st == -1 ? -1 : WIFEXITED (st) ? WEXITSTATUS (st) : -1;
}

/* A second, negotiated connection with GROW and SHRINK. */
static RZ_UNUSED struct rz *
rz_open_other (struct nc_ctx *t, const char *label)
{
  struct rz_open o = { .want = RZ_F_DEFAULT };

  return rz_open_neg (t, label, 0, &o);
}

/* The probe's capabilities include f. */
static RZ_UNUSED bool
rz_caps (struct nc_ctx *t, uint32_t f)
{
  const struct rz_probe *p = rz_probe (t);

  return p->item && (p->info.capabilities & f) == f;
}

/* Change the size as someone else than connection z: the administrator
 * (--control-cmd) if configured, else another connection when the export
 * promises EXPORT_WIDE.  *size is the wish in, the result out (the other
 * connection may round).  Ends the test with UNSUPPORTED if neither is
 * possible.
 */
static RZ_UNUSED void
rz_remote_resize (struct nc_ctx *t, uint64_t *size, const char **how)
{
  if (t->cfg->control_cmd) {
    int st = rz_admin_resize (t, *size);
    if (st != 0)
      nc_error (t, "--control-cmd to set size %" PRIu64 " exited with %d",
                *size, st);
    *how = "the administrator (--control-cmd)";
    return;
  }
  if (!rz_caps (t, NBD_RESIZE_F_EXPORT_WIDE | NBD_RESIZE_F_GROW |
                NBD_RESIZE_F_SHRINK))
    nc_unsupported (t, "a change by someone else needs --control-cmd, or "
                    "another connection's set size, which a server without "
                    "EXPORT_WIDE, GROW and SHRINK refuses or cannot do");
  {
    struct rz *o = rz_open_other (t, "other");
    struct nbdp_rz_result res;
    uint32_t e = rz_set (t, o, *size, 0, &res);
    if (e)
      nc_fail (t, NULL, "%s set size %" PRIu64 " from %" PRIu64 " failed "
               "with %s; expected success (GROW and SHRINK are active)",
               o->label, *size, res.old_size, rz_errname (e)), nc_done (t);
    *size = rz_size (o);
    rz_close (t, o);
    *how = "another connection";
  }
}

/* ---- the handshake step by step ------------------------------------ */

/* Greeting, client flags and (if structured) NBD_OPT_STRUCTURED_REPLY on
 * a new connection, with the client state set up for encoding enc.
 */
static RZ_UNUSED struct rz *
rz_manual_start (struct nc_ctx *t, const char *label,
                 enum nbdp_rz_encoding enc, bool structured)
{
  struct rz *z = rz_new (t, label);
  struct nbdp_client *c = z->rc->c;
  struct nbdp_greeting g;
  uint32_t cflags = NBD_FLAG_C_FIXED_NEWSTYLE;

  nbdp_rz_state_init (&z->rc->st, enc);
  if (nbdp_client_recv_greeting (c, &g) == -1)
    rz_broken (t, z, "reading the greeting");
  if (g.oldstyle)
    nc_unsupported (t, "the server uses the oldstyle handshake: no options");
  if (!(g.gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_unsupported (t, "the server does not offer fixed newstyle "
                    "negotiation");
  if (g.gflags & NBD_FLAG_NO_ZEROES)
    cflags |= NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_send_cflags (c, cflags) == -1)
    rz_broken (t, z, "sending the client flags");
  if (structured) {
    if (nbdp_client_opt_structured_reply (c) == -1) {
      if (c->failure != NBDP_FAIL_REFUSED)
        rz_broken (t, z, "NBD_OPT_STRUCTURED_REPLY");
      nc_unsupported (t, "the server refused NBD_OPT_STRUCTURED_REPLY");
    }
    z->rc->st.structured = true;
  }
  return z;
}

/* NBD_OPT_RESIZE through the client layer (judged); returns the reply. */
static RZ_UNUSED uint32_t
rz_manual_opt (struct nc_ctx *t, struct rz *z, uint32_t features)
{
  if (nbdp_rz_opt_resize (z->rc, features) == -1)
    rz_broken (t, z, "NBD_OPT_RESIZE");
  rz_flush (t, z);
  return z->rc->opt_rep;
}

/* NBD_OPT_INFO (go false) or NBD_OPT_GO listing infos, judged; GO enters
 * transmission.  Returns 0, or the NBD_REP_ERR_* if refused.
 */
static RZ_UNUSED uint32_t
rz_manual_info (struct nc_ctx *t, struct rz *z, bool go,
                const uint16_t *infos, size_t n,
                struct nbdp_rz_export *exout)
{
  struct nbdp_rz_client *rc = z->rc;
  struct nbdp_rz_violations vs;
  struct nbdp_export exp;
  struct nbdp_rz_export ex;

  nbdp_rz_violations_clear (&vs);
  rc->st.info_listed = false;
  for (size_t i = 0; i < n; i++)
    if (infos[i] == NBD_INFO_RESIZE)
      rc->st.info_listed = true;
  if (nbdp_rz_opt_info (rc, go, rz_export_name (t, z), infos, n, &exp,
                        &ex) == -1) {
    if (rc->status == NBDP_RZ_REFUSED)
      return exp.rep_error ? exp.rep_error : NBD_REP_ERR_UNSUP;
    rz_broken (t, z, go ? "NBD_OPT_GO" : "NBD_OPT_INFO");
  }
  nbdp_rz_check_export (&rc->st, go, &ex, &vs);
  if (go) {
    rc->exp = exp;
    rc->go_ex = ex;
    rc->c->size = exp.size;
    rc->c->eflags = exp.eflags;
    rc->c->have_block_size = exp.have_block_size;
    rc->c->min_block = exp.min_block;
    rc->c->pref_block = exp.pref_block;
    rc->c->max_block = exp.max_block;
    rc->c->transmission = true;
    nbdp_rz_enter_transmission (&rc->st, &ex, &vs);
  }
  if (exout)
    *exout = ex;
  rz_merge (t, z, &vs);
  return 0;
}

/* After z's successful set size to requested: a new connection must see
 * the size z learned (RZ-SET-8 exact without SIZE_REPLY, RZ-MC-2 with
 * EXPORT_WIDE, RZ-MC-5 in negotiated mode without it, RZ-MC-7 / RZ-LEG-2
 * in legacy mode).
 */
static RZ_UNUSED void
rz_check_seen (struct nc_ctx *t, struct rz *z, uint64_t requested)
{
  struct nbdp_rz_violations vs;
  uint64_t seen = rz_size_fresh (t);

  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_effect (&z->rc->st, requested, rz_size (z), seen, &vs);
  for (size_t i = 0; i < vs.n; i++)
    if (strcmp (vs.v[i].id, "RZ-MC-2") == 0 &&
        !(z->rc->st.info.capabilities & NBD_RESIZE_F_EXPORT_WIDE))
      vs.v[i].id = "RZ-MC-5";
  rz_merge (t, z, &vs);
}

/* Bytes [off, off+len) read back on z after a growth must be zero when
 * the export promises ZERO_FILL or the growth said ZEROED (the rules'
 * RZ-ZERO-1 / RZ-CHUNK-8).
 */
static RZ_UNUSED void
rz_check_new_bytes (struct nc_ctx *t, struct rz *z, bool zeroed_event,
                    uint64_t off, uint64_t len)
{
  struct nbdp_rz_violations vs;
  unsigned char *buf;
  uint32_t e;

  if (len == 0)
    return;
  if (len > 4 * 1024 * 1024)
    len = 4 * 1024 * 1024;
  buf = rz_alloc (t, len);
  e = rz_read (t, z, off, len, buf);
  if (e)
    nc_fail (t, "RZ-BOUND-4", "%s reading the new bytes %" PRIu64 "+%"
             PRIu64 " (size %" PRIu64 ") failed with %s; expected success",
             z->label, off, len, rz_size (z), rz_errname (e));
  else {
    nbdp_rz_violations_clear (&vs);
    nbdp_rz_check_new_bytes (&z->rc->st, zeroed_event, off, buf, len, &vs);
    rz_merge (t, z, &vs);
  }
  free (buf);
}

#endif /* RZLIB_H */
