/* nbd-conformance: the draft RESIZE extension on top of the raw client
 * (see client-resize.h).  The handshake is done here step by step with the
 * raw option calls, because the generic NBD_OPT_INFO/GO helper ignores
 * information types it does not know; transmission goes through the
 * checked command layer of client.c, whose reply and chunk hooks hand
 * NBD_REPLY_TYPE_RESIZE chunks (and every reply, for -v) to this file.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client-resize.h"
#include "codec.h"

#define OPT_REPLY_MAX (64 * 1024)

enum form {
  FORM_OTHER = 0,
  FORM_SET,
  FORM_QUERY,
  FORM_SUB,
  FORM_UNSUB,
  FORM_WRITE,
};

struct nbdp_rz_cmd {
  struct nbdp_cmd cmd;
  enum form form;
  uint64_t old_size;
  struct nbdp_rz_reply rep;
  bool sub_active_at_final;   /* unsubscribe: subscription still there */
  struct nbdp_rz_cmd *next;
};

/* ---- small helpers ------------------------------------------------- */

static int rz_fail (struct nbdp_rz_client *rc, enum nbdp_rz_status s,
                    const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static int
rz_fail (struct nbdp_rz_client *rc, enum nbdp_rz_status s,
         const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (rc->err, sizeof rc->err, fmt, ap);
  va_end (ap);
  rc->status = s;
  return -1;
}

/* Turn a failure of the raw client into ours. */
static int
from_client (struct nbdp_rz_client *rc)
{
  enum nbdp_rz_status s = NBDP_RZ_IO;

  if (rc->c->failure == NBDP_FAIL_REFUSED)
    s = NBDP_RZ_REFUSED;
  else if (rc->c->failure == NBDP_FAIL_PROTOCOL)
    s = NBDP_RZ_VIOLATION;
  return rz_fail (rc, s, "%s", nbdp_client_error (rc->c));
}

static void trace (struct nbdp_rz_client *rc, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
trace (struct nbdp_rz_client *rc, const char *fmt, ...)
{
  char line[1024];
  va_list ap;

  if (rc->trace == NULL)
    return;
  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  rc->trace (rc->trace_opaque, line);
}

static const char *
name_or (const char *n, char *buf, size_t size, uint64_t v)
{
  return nbdp_name_or (n, buf, size, v);
}

static uint64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Record violations; close the socket when one asks for a hard
 * disconnect.  Returns true if the connection was dropped.
 */
static bool
record (struct nbdp_rz_client *rc, const struct nbdp_rz_violations *vs)
{
  size_t i;
  bool disc = false;

  for (i = 0; i < vs->n; i++) {
    const struct nbdp_rz_violation *v = &vs->v[i];
    trace (rc, "!! %s%s%s (%s): %s", v->id, v->cli_id ? " / " : "",
           v->cli_id ? v->cli_id : "", nbdp_rz_level_name (v->level),
           v->msg);
    if (v->disconnect)
      disc = true;
  }
  nbdp_rz_violations_merge (&rc->vs, vs);
  if (disc && rc->c->fd >= 0) {
    trace (rc, "-- hard disconnect");
    nbdp_client_close (rc->c);
    rc->c->dead = true;
  }
  return disc;
}

const struct nbdp_rz_violation *
nbdp_rz_worst (const struct nbdp_rz_client *rc)
{
  const struct nbdp_rz_violation *v;
  size_t i;

  v = nbdp_rz_violations_disconnect (&rc->vs);
  if (v)
    return v;
  for (i = 0; i < rc->vs.n; i++)
    if (rc->vs.v[i].level == NBDP_RZ_MUST)
      return &rc->vs.v[i];
  return rc->vs.n ? &rc->vs.v[0] : NULL;
}

static int
fail_violation (struct nbdp_rz_client *rc)
{
  const struct nbdp_rz_violation *v = nbdp_rz_worst (rc);

  if (v)
    return rz_fail (rc, NBDP_RZ_VIOLATION, "%s: %s", v->id, v->msg);
  return rz_fail (rc, NBDP_RZ_VIOLATION, "protocol violation");
}

static bool
must_stop (const struct nbdp_rz_client *rc)
{
  return nbdp_rz_violations_disconnect (&rc->vs) != NULL;
}

/* The last option reply was NBD_REP_ERR_SHUTDOWN: the client must end
 * the handshake (with a soft disconnect, HS-TERM-14) rather than go on
 * with the next option.
 */
static bool
shutting_down (const struct nbdp_rz_client *rc)
{
  return rc->c->failure == NBDP_FAIL_REFUSED &&
    rc->c->last_rep == NBD_REP_ERR_SHUTDOWN;
}

/* ---- life cycle ---------------------------------------------------- */

static int reply_hook (void *opaque, struct nbdp_client *c,
                       struct nbdp_cmd *cmd,
                       const struct nbdp_client_reply *r, char *msg,
                       size_t msgsize);
static int chunk_hook (void *opaque, struct nbdp_client *c,
                       struct nbdp_cmd *cmd,
                       const struct nbdp_client_reply *r, char *msg,
                       size_t msgsize);

struct nbdp_rz_client *
nbdp_rz_client_new (void)
{
  struct nbdp_rz_client *rc = calloc (1, sizeof *rc);

  if (rc == NULL)
    return NULL;
  rc->c = nbdp_client_new ();
  if (rc->c == NULL) {
    free (rc);
    return NULL;
  }
  rc->c->reply_hook = reply_hook;
  rc->c->chunk_hook = chunk_hook;
  rc->c->hook_opaque = rc;
  nbdp_rz_state_init (&rc->st, NBDP_RZ_ENC_NEGOTIATED);
  return rc;
}

void
nbdp_rz_client_free (struct nbdp_rz_client *rc)
{
  if (rc == NULL)
    return;
  if (rc->sub) {
    nbdp_client_cmd_cleanup (rc->c, &rc->sub->cmd);
    free (rc->sub);
  }
  nbdp_client_free (rc->c);
  free (rc);
}

void
nbdp_rz_set_trace (struct nbdp_rz_client *rc, nbdp_rz_trace_fn fn,
                   void *opaque)
{
  rc->trace = fn;
  rc->trace_opaque = opaque;
}

const char *
nbdp_rz_error (const struct nbdp_rz_client *rc)
{
  return rc->err;
}

int
nbdp_rz_connect_uri (struct nbdp_rz_client *rc, const char *uri)
{
  if (nbdp_client_connect_uri (rc->c, uri) == -1)
    return from_client (rc);
  trace (rc, "-- connected to %s", uri);
  return 0;
}

int
nbdp_rz_set_fd (struct nbdp_rz_client *rc, int fd)
{
  return nbdp_client_set_fd (rc->c, fd);
}

/* ---- handshake ----------------------------------------------------- */

int
nbdp_rz_opt_resize (struct nbdp_rz_client *rc, uint32_t features)
{
  struct nbdp_rz_violations vs;
  struct nbdp_opt_reply r;
  unsigned char data[NBD_RESIZE_OPT_LEN];
  char fb[128], rb[32];

  nbdp_put32 (data, features);
  trace (rc, "C: NBD_OPT_RESIZE features %s",
         nbdp_rz_features_str (fb, sizeof fb, features));
  if (nbdp_client_send_option (rc->c, NBD_OPT_RESIZE, data,
                               sizeof data) == -1)
    return from_client (rc);
  if (nbdp_client_recv_option_reply (rc->c, &r, OPT_REPLY_MAX) == -1)
    return from_client (rc);
  trace (rc, "S: %s to NBD_OPT_RESIZE, %" PRIu32 " bytes%s%.*s",
         name_or (nbdp_name_of_rep (r.reply), rb, sizeof rb, r.reply),
         r.length, r.length ? ": " : "",
         (int) (r.length > 200 ? 200 : r.length), (const char *) r.payload);
  if (r.option != NBD_OPT_RESIZE)
    return rz_fail (rc, NBDP_RZ_VIOLATION,
                    "sent NBD_OPT_RESIZE; the reply names option %" PRIu32
                    "; expected %d", r.option, NBD_OPT_RESIZE);
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_opt_reply (&rc->st, r.reply, r.length, &vs);
  record (rc, &vs);
  nbdp_rz_learn_opt_reply (&rc->st, r.reply, features);
  rc->opt_refused = r.reply != NBD_REP_ACK;
  rc->opt_rep = r.reply;
  return 0;
}

static int
put_string (unsigned char **buf, size_t *len, const char *s)
{
  size_t n = strlen (s);
  unsigned char *p;

  if (n > NBD_MAX_STRING || *len > SIZE_MAX - 4 - n)
    return -1;
  p = realloc (*buf, *len + 4 + n);
  if (p == NULL)
    return -1;
  nbdp_put32 (p + *len, (uint32_t) n);
  memcpy (p + *len + 4, s, n);
  *buf = p;
  *len += 4 + n;
  return 0;
}

/* One NBD_REP_INFO payload. */
static int
take_info (struct nbdp_rz_client *rc, const char *opt,
           const struct nbdp_opt_reply *r, struct nbdp_export *exp,
           struct nbdp_rz_export *ex)
{
  uint16_t info;
  char fb[256], fb2[96];

  if (r->length < 2)
    return rz_fail (rc, NBDP_RZ_VIOLATION,
                    "sent %s; NBD_REP_INFO with %" PRIu32 " bytes, expected "
                    "at least 2", opt, r->length);
  info = nbdp_get16 (r->payload);
  switch (info) {
  case NBD_INFO_EXPORT:
    if (r->length != 12)
      return rz_fail (rc, NBDP_RZ_VIOLATION,
                      "sent %s; NBD_INFO_EXPORT of %" PRIu32 " bytes, "
                      "expected 12", opt, r->length);
    exp->have_export = ex->have_export = true;
    exp->size = ex->size = nbdp_get64 (r->payload + 2);
    exp->eflags = ex->eflags = nbdp_get16 (r->payload + 10);
    trace (rc, "S: NBD_REP_INFO NBD_INFO_EXPORT size %" PRIu64 " flags %s",
           exp->size, nbdp_flags_str (fb, sizeof fb, exp->eflags));
    break;
  case NBD_INFO_BLOCK_SIZE:
    if (r->length != 14)
      return rz_fail (rc, NBDP_RZ_VIOLATION,
                      "sent %s; NBD_INFO_BLOCK_SIZE of %" PRIu32 " bytes, "
                      "expected 14", opt, r->length);
    exp->have_block_size = ex->have_block_size = true;
    exp->min_block = ex->min_block = nbdp_get32 (r->payload + 2);
    exp->pref_block = nbdp_get32 (r->payload + 6);
    exp->max_block = nbdp_get32 (r->payload + 10);
    trace (rc, "S: NBD_REP_INFO NBD_INFO_BLOCK_SIZE min %" PRIu32
           " preferred %" PRIu32 " max %" PRIu32, exp->min_block,
           exp->pref_block, exp->max_block);
    break;
  case NBD_INFO_NAME:
  case NBD_INFO_DESCRIPTION: {
    size_t n = r->length - 2 > NBD_MAX_STRING ? NBD_MAX_STRING
      : r->length - 2;
    char *dst = info == NBD_INFO_NAME ? exp->name : exp->description;
    memcpy (dst, r->payload + 2, n);
    dst[n] = '\0';
    if (info == NBD_INFO_NAME)
      exp->have_name = true;
    else
      exp->have_description = true;
    trace (rc, "S: NBD_REP_INFO %s '%.200s'", nbdp_name_of_info (info), dst);
    break;
  }
  case NBD_INFO_RESIZE: {
    struct nbdp_rz_info in;
    ex->n_info_resize++;
    if (!nbdp_rz_decode_info (r->payload, r->length, &in)) {
      ex->info_len_ok = false;
      trace (rc, "S: NBD_REP_INFO NBD_INFO_RESIZE of %" PRIu32 " bytes "
             "(expected %d)", r->length, NBD_RESIZE_INFO_LEN);
      break;
    }
    if (!ex->info.present)
      ex->info = in;
    trace (rc, "S: NBD_REP_INFO NBD_INFO_RESIZE capabilities %s active %s "
           "granularity %" PRIu32 " max size %" PRIu64,
           nbdp_rz_features_str (fb, sizeof fb, in.capabilities),
           nbdp_rz_features_str (fb2, sizeof fb2, in.active),
           in.granularity, in.max_size);
    break;
  }
  default:
    trace (rc, "S: NBD_REP_INFO type %u, %" PRIu32 " bytes (ignored)",
           info, r->length);
    break;
  }
  return 0;
}

int
nbdp_rz_opt_info (struct nbdp_rz_client *rc, bool go, const char *name,
                  const uint16_t *infos, size_t n_infos,
                  struct nbdp_export *exp, struct nbdp_rz_export *ex)
{
  uint32_t opt = go ? NBD_OPT_GO : NBD_OPT_INFO;
  const char *on = go ? "NBD_OPT_GO" : "NBD_OPT_INFO";
  unsigned char *data = NULL;
  size_t len = 0, i;
  struct nbdp_opt_reply r;
  char list[256], rb[32];
  const char *rn;
  size_t ll = 0;
  int ret;

  memset (exp, 0, sizeof *exp);
  memset (ex, 0, sizeof *ex);
  ex->info_len_ok = true;
  if (n_infos > 64 || put_string (&data, &len, name) == -1) {
    free (data);
    return rz_fail (rc, NBDP_RZ_IO, "export name or info list too long");
  }
  {
    unsigned char *p = realloc (data, len + 2 + 2 * n_infos);
    if (p == NULL) {
      free (data);
      return rz_fail (rc, NBDP_RZ_IO, "%s", strerror (ENOMEM));
    }
    data = p;
  }
  nbdp_put16 (data + len, (uint16_t) n_infos);
  list[0] = '\0';
  for (i = 0; i < n_infos; i++) {
    const char *in = nbdp_name_of_info (infos[i]);
    nbdp_put16 (data + len + 2 + 2 * i, infos[i]);
    if (ll < sizeof list)
      ll += snprintf (list + ll, sizeof list - ll, "%s%s", i ? ", " : "",
                      in ? in : "?");
  }
  len += 2 + 2 * n_infos;
  trace (rc, "C: %s export '%.100s' requesting [%s]", on, name, list);
  ret = nbdp_client_send_option (rc->c, opt, data, (uint32_t) len);
  free (data);
  if (ret == -1)
    return from_client (rc);
  for (;;) {
    if (nbdp_client_recv_option_reply (rc->c, &r, OPT_REPLY_MAX) == -1)
      return from_client (rc);
    if (r.option != opt)
      return rz_fail (rc, NBDP_RZ_VIOLATION,
                      "sent %s; a reply names option %" PRIu32
                      " instead", on, r.option);
    if (r.reply == NBD_REP_INFO) {
      if (take_info (rc, on, &r, exp, ex) == -1)
        return -1;
      continue;
    }
    rn = name_or (nbdp_name_of_rep (r.reply), rb, sizeof rb, r.reply);
    trace (rc, "S: %s to %s, %" PRIu32 " bytes%s%.*s", rn, on,
           r.length, r.length ? ": " : "",
           (int) (r.length > 200 ? 200 : r.length),
           (const char *) r.payload);
    if (r.reply & NBD_REP_ERR (0)) {
      size_t ml = r.length > NBD_MAX_STRING ? NBD_MAX_STRING : r.length;
      exp->rep_error = r.reply;
      memcpy (exp->rep_message, r.payload, ml);
      exp->rep_message[ml] = '\0';
      return rz_fail (rc, NBDP_RZ_REFUSED, "sent %s for export '%.100s'; "
                      "the server refused it with %s%s%s", on, name, rn,
                      ml ? ": " : "", exp->rep_message);
    }
    if (r.reply != NBD_REP_ACK || r.length != 0)
      return rz_fail (rc, NBDP_RZ_VIOLATION,
                      "sent %s; received %s with %" PRIu32 " bytes; "
                      "expected NBD_REP_INFO or NBD_REP_ACK with no data",
                      on, rn, r.length);
    break;
  }
  if (!exp->have_export)
    return rz_fail (rc, NBDP_RZ_VIOLATION,
                    "sent %s; the server acked without NBD_INFO_EXPORT", on);
  return 0;
}

int
nbdp_rz_handshake (struct nbdp_rz_client *rc, const struct nbdp_rz_opts *o)
{
  struct nbdp_greeting g;
  struct nbdp_rz_violations vs;
  struct nbdp_rz_export ex;
  const char *name;
  uint16_t infos[2];
  size_t n_infos = 0;
  uint32_t cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  char fb[256];
  bool list_resize;

  nbdp_rz_state_init (&rc->st, o->encoding);
  nbdp_rz_violations_clear (&vs);
  name = o->export_name ? o->export_name
    : rc->c->uri_export ? rc->c->uri_export : "";

  if (nbdp_client_recv_greeting (rc->c, &g) == -1)
    return from_client (rc);
  if (g.oldstyle) {
    trace (rc, "S: oldstyle greeting size %" PRIu64 " flags %s", g.size,
           nbdp_flags_str (fb, sizeof fb, g.eflags));
    rc->oldstyle = true;
    memset (&ex, 0, sizeof ex);
    ex.have_export = true;
    ex.size = g.size;
    ex.eflags = g.eflags;
    rc->st.used_export_name = true;
    rc->go_ex = ex;
    rc->exp.have_export = true;
    rc->exp.size = g.size;
    rc->exp.eflags = g.eflags;
    nbdp_rz_enter_transmission (&rc->st, &ex, &vs);
    record (rc, &vs);
    return 0;
  }
  trace (rc, "S: newstyle greeting, handshake flags %s",
         nbdp_gflags_str (fb, sizeof fb, g.gflags));
  if (!(g.gflags & NBD_FLAG_FIXED_NEWSTYLE))
    return rz_fail (rc, NBDP_RZ_UNSUPPORTED, "the server does not offer "
                    "fixed newstyle negotiation; options are not possible");
  if (g.gflags & NBD_FLAG_NO_ZEROES)
    cflags |= NBD_FLAG_C_NO_ZEROES;
  trace (rc, "C: client flags %s", nbdp_cflags_str (fb, sizeof fb, cflags));
  if (nbdp_client_send_cflags (rc->c, cflags) == -1)
    return from_client (rc);

  if (o->extended) {
    trace (rc, "C: NBD_OPT_EXTENDED_HEADERS");
    if (nbdp_client_opt_extended_headers (rc->c) == -1) {
      if (rc->c->failure != NBDP_FAIL_REFUSED || shutting_down (rc))
        return from_client (rc);
      trace (rc, "S: refused: %s", nbdp_client_error (rc->c));
    }
    else
      trace (rc, "S: NBD_REP_ACK to NBD_OPT_EXTENDED_HEADERS");
  }
  if (o->structured && !rc->c->extended) {
    trace (rc, "C: NBD_OPT_STRUCTURED_REPLY");
    if (nbdp_client_opt_structured_reply (rc->c) == -1) {
      if (rc->c->failure != NBDP_FAIL_REFUSED || shutting_down (rc))
        return from_client (rc);
      trace (rc, "S: refused: %s", nbdp_client_error (rc->c));
    }
    else
      trace (rc, "S: NBD_REP_ACK to NBD_OPT_STRUCTURED_REPLY");
  }
  rc->st.structured = rc->c->structured;
  rc->st.extended = rc->c->extended;

  if (!o->use_export_name &&
      (o->encoding == NBDP_RZ_ENC_NEGOTIATED ||
       o->encoding == NBDP_RZ_ENC_BOOLEAN)) {
    uint32_t f = o->features;
    if (o->encoding == NBDP_RZ_ENC_BOOLEAN)
      f &= ~(uint32_t) (NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY |
                        NBD_RESIZE_F_NOTIFY);
    if (nbdp_rz_opt_resize (rc, f) == -1)
      return -1;
    if (rc->opt_rep == NBD_REP_ERR_SHUTDOWN)
      return rz_fail (rc, NBDP_RZ_REFUSED, "sent NBD_OPT_RESIZE; the server "
                      "replied NBD_REP_ERR_SHUTDOWN (it is shutting down)");
  }

  if (!o->no_block_size)
    infos[n_infos++] = NBD_INFO_BLOCK_SIZE;
  list_resize = o->encoding == NBDP_RZ_ENC_NEGOTIATED ||
    o->encoding == NBDP_RZ_ENC_BOOLEAN ||
    o->encoding == NBDP_RZ_ENC_INFO_OPTIN;
  if (list_resize)
    infos[n_infos++] = NBD_INFO_RESIZE;
  rc->st.info_listed = list_resize;

  if (o->use_export_name)
    goto export_name;

  if (o->probe_info) {
    struct nbdp_export e2;
    if (nbdp_rz_opt_info (rc, false, name, infos, n_infos, &e2,
                          &rc->info_ex) == -1) {
      if (rc->status != NBDP_RZ_REFUSED ||
          e2.rep_error == NBD_REP_ERR_SHUTDOWN)
        return -1;
      trace (rc, "-- NBD_OPT_INFO refused: %s", rc->err);
    }
    else {
      rc->have_info_ex = true;
      nbdp_rz_check_export (&rc->st, false, &rc->info_ex, &vs);
    }
  }
  if (nbdp_rz_opt_info (rc, true, name, infos, n_infos, &rc->exp,
                        &rc->go_ex) == -1) {
    if (rc->status != NBDP_RZ_REFUSED ||
        rc->exp.rep_error != NBD_REP_ERR_UNSUP)
      return -1;
    rc->go_refused_unsup = true;
    goto export_name;
  }
  nbdp_rz_check_export (&rc->st, true, &rc->go_ex, &vs);
  if (rc->have_info_ex)
    nbdp_rz_check_info_then_go (&rc->st, &rc->info_ex, &rc->go_ex, &vs);
  rc->c->size = rc->exp.size;
  rc->c->eflags = rc->exp.eflags;
  rc->c->have_block_size = rc->exp.have_block_size;
  rc->c->min_block = rc->exp.min_block;
  rc->c->pref_block = rc->exp.pref_block;
  rc->c->max_block = rc->exp.max_block;
  rc->c->transmission = true;
  nbdp_rz_enter_transmission (&rc->st, &rc->go_ex, &vs);
  goto done;

 export_name:
  trace (rc, "C: NBD_OPT_EXPORT_NAME '%.100s'", name);
  if (nbdp_client_opt_export_name (rc->c, name, &rc->exp) == -1)
    return from_client (rc);
  trace (rc, "S: export size %" PRIu64 " flags %s", rc->exp.size,
         nbdp_flags_str (fb, sizeof fb, rc->exp.eflags));
  rc->st.used_export_name = true;
  memset (&rc->go_ex, 0, sizeof rc->go_ex);
  rc->go_ex.have_export = true;
  rc->go_ex.size = rc->exp.size;
  rc->go_ex.eflags = rc->exp.eflags;
  rc->go_ex.info_len_ok = true;
  nbdp_rz_enter_transmission (&rc->st, &rc->go_ex, &vs);

 done:
  trace (rc, "-- transmission: size %" PRIu64 ", flags %s, resize mode %s, "
         "active %s, G = %" PRIu64, rc->st.size,
         nbdp_flags_str (fb, sizeof fb, rc->st.eflags),
         nbdp_rz_mode_name (rc->st.mode),
         nbdp_rz_features_str ((char[96]) { 0 }, 96, rc->st.active),
         nbdp_rz_granularity (&rc->st));
  if (record (rc, &vs))
    return fail_violation (rc);
  return 0;
}

/* ---- hooks --------------------------------------------------------- */

static struct nbdp_rz_cmd *
find_cmd (struct nbdp_rz_client *rc, struct nbdp_cmd *cmd)
{
  struct nbdp_rz_cmd *p;

  if (cmd == NULL)
    return NULL;
  for (p = rc->cmds; p; p = p->next)
    if (&p->cmd == cmd)
      return p;
  return NULL;
}

static void
trace_reply (struct nbdp_rz_client *rc, const struct nbdp_client_reply *r)
{
  char tbuf[48], fb[64], eb[48];
  const char *tb;

  if (rc->trace == NULL)
    return;
  if (r->hdr.kind == NBDP_REPLY_SIMPLE) {
    trace (rc, "S: simple reply cookie %" PRIu64 " error %s%s", r->hdr.cookie,
           name_or (nbdp_name_of_error (r->hdr.error), eb, sizeof eb,
                    r->hdr.error),
           r->payload_len ? " (with data)" : "");
    return;
  }
  tb = name_or (nbdp_name_of_reply_type (r->hdr.type), tbuf, sizeof tbuf,
                r->hdr.type);
  nbdp_reply_flags_str (fb, sizeof fb, r->hdr.flags);
  if (r->hdr.type == NBD_REPLY_TYPE_RESIZE && r->payload_len == 16) {
    struct nbdp_rz_chunk ch;
    char evb[96];
    nbdp_rz_decode_chunk (r->payload, r->payload_len, &ch);
    trace (rc, "S: %s chunk %s flags %s cookie %" PRIu64 ": size %" PRIu64
           " events %s sequence %" PRIu32,
           r->hdr.kind == NBDP_REPLY_EXTENDED ? "extended" : "structured",
           tb, fb, r->hdr.cookie, ch.size, nbdp_rz_events_str (evb, sizeof evb, ch.events),
           ch.sequence);
    return;
  }
  if ((r->hdr.type & NBD_REPLY_TYPE_ERR (0)) && r->payload_len >= 6) {
    uint32_t e = nbdp_get32 (r->payload);
    trace (rc, "S: %s chunk %s flags %s cookie %" PRIu64 ": %s",
           r->hdr.kind == NBDP_REPLY_EXTENDED ? "extended" : "structured",
           tb, fb, r->hdr.cookie,
           name_or (nbdp_name_of_error (e), eb, sizeof eb, e));
    return;
  }
  if (r->hdr.kind == NBDP_REPLY_EXTENDED)
    trace (rc, "S: extended chunk %s flags %s cookie %" PRIu64 " offset %"
           PRIu64 " length %" PRIu64, tb, fb, r->hdr.cookie, r->hdr.offset,
           r->payload_len);
  else
    trace (rc, "S: structured chunk %s flags %s cookie %" PRIu64
           " length %" PRIu64, tb, fb, r->hdr.cookie, r->payload_len);
}

static void
fill_msg (const struct nbdp_rz_violations *vs, char *msg, size_t size)
{
  const struct nbdp_rz_violation *v = nbdp_rz_violations_disconnect (vs);

  if (v == NULL && vs->n)
    v = &vs->v[0];
  if (v)
    snprintf (msg, size, "%s%s%s: %s", v->id, v->cli_id ? " / " : "",
              v->cli_id ? v->cli_id : "", v->msg);
}

static int
reply_hook (void *opaque, struct nbdp_client *c, struct nbdp_cmd *cmd,
            const struct nbdp_client_reply *r, char *msg, size_t msgsize)
{
  struct nbdp_rz_client *rc = opaque;
  struct nbdp_rz_violations vs;
  struct nbdp_rz_cmd *rz;
  bool chunk = r->hdr.kind != NBDP_REPLY_SIMPLE;

  trace_reply (rc, r);
  nbdp_rz_violations_clear (&vs);
  rz = find_cmd (rc, cmd);
  if (!r->known_cookie || (cmd != NULL && rz == NULL)) {
    if (chunk && r->hdr.type == NBD_REPLY_TYPE_RESIZE) {
      struct nbdp_rz_where w = { .known = false, .cookie = r->hdr.cookie };
      struct nbdp_rz_chunk ch;
      nbdp_rz_check_chunk (&rc->st, &w, r->payload, r->payload_len, &ch,
                           &vs);
    }
    else if (!r->known_cookie)
      nbdp_rz_check_after_end (&rc->st, r->hdr.cookie,
                               chunk ? r->hdr.type : 0, &vs);
    if (vs.n) {
      fill_msg (&vs, msg, msgsize);
      record (rc, &vs);
      return -1;
    }
    return 0;
  }
  if (rz == NULL)
    return 0;

  /* Tally the reply for the form checks done when the command ends. */
  if (!chunk) {
    rz->rep.simple = true;
    if (r->hdr.error && rz->rep.error == 0)
      rz->rep.error = r->hdr.error;
  }
  else if (r->hdr.type == NBD_REPLY_TYPE_NONE)
    rz->rep.n_none++;
  else if (r->hdr.type == NBD_REPLY_TYPE_ERROR_OFFSET)
    rz->rep.error_offset = true;
  else if (r->hdr.type & NBD_REPLY_TYPE_ERR (0)) {
    if (rz->rep.error == 0 && r->payload_len >= 4)
      rz->rep.error = nbdp_get32 (r->payload);
  }
  else if (r->hdr.type != NBD_REPLY_TYPE_RESIZE)
    rz->rep.n_other++;

  if (chunk && r->hdr.kind == NBDP_REPLY_EXTENDED &&
      rz->cmd.type == NBD_CMD_RESIZE && r->hdr.type != NBD_REPLY_TYPE_RESIZE &&
      r->hdr.offset != rz->cmd.offset)
    nbdp_rz_violation_add (&vs, "RZ-EH-3", NULL, NBDP_RZ_MUST, false,
                           "sent NBD_CMD_RESIZE offset %" PRIu64 " (cookie %"
                           PRIu64 "); an extended reply chunk carries offset %"
                           PRIu64 "; expected the request's offset",
                           rz->cmd.offset, rz->cmd.cookie, r->hdr.offset);

  /* The end of a subscription. */
  if (rz->form == FORM_SUB && r->final &&
      r->hdr.type != NBD_REPLY_TYPE_RESIZE) {
    uint32_t err = 0;
    if (!chunk)
      err = r->hdr.error;
    else if ((r->hdr.type & NBD_REPLY_TYPE_ERR (0)) && r->payload_len >= 4)
      err = nbdp_get32 (r->payload);
    if (rc->st.sub.started)
      nbdp_rz_check_sub_end (&rc->st, chunk ? r->hdr.type : (err ? 0x8001 : 0),
                             err, true, &vs);
    nbdp_rz_sub_end (&rc->st);
    rc->sub_ended = true;
  }
  if (rz->form == FORM_UNSUB && r->final)
    rz->sub_active_at_final = rc->st.sub.active;
  if (vs.n && record (rc, &vs)) {
    fill_msg (&vs, msg, msgsize);
    return -1;
  }
  return 0;
}

static int
chunk_hook (void *opaque, struct nbdp_client *c, struct nbdp_cmd *cmd,
            const struct nbdp_client_reply *r, char *msg, size_t msgsize)
{
  struct nbdp_rz_client *rc = opaque;
  struct nbdp_rz_cmd *rz = find_cmd (rc, cmd);
  struct nbdp_rz_violations vs;
  struct nbdp_rz_chunk ch;
  struct nbdp_rz_where w;
  char tb[32];

  if (r->hdr.type != NBD_REPLY_TYPE_RESIZE || rz == NULL) {
    snprintf (msg, msgsize, "%s (cookie %" PRIu64 "): unknown non-error "
              "chunk type %s", nbdp_name_of_cmd (cmd->type)
              ? nbdp_name_of_cmd (cmd->type) : "?", cmd->cookie,
              name_or (nbdp_name_of_reply_type (r->hdr.type), tb, sizeof tb,
                       r->hdr.type));
    return -1;
  }
  nbdp_rz_violations_clear (&vs);
  w = (struct nbdp_rz_where) {
    .known = true, .cmd = cmd->type, .cmd_flags = cmd->flags,
    .offset = cmd->offset, .count = cmd->count, .cookie = cmd->cookie,
    .extended_hdr = r->hdr.kind == NBDP_REPLY_EXTENDED,
    .hdr_offset = r->hdr.offset, .chunk_flags = r->hdr.flags,
  };
  if (nbdp_rz_check_chunk (&rc->st, &w, r->payload, r->payload_len, &ch,
                           &vs)) {
    rz->rep.n_resize++;
    if (rz->rep.n_resize == 1) {
      rz->rep.chunk = ch;
      rz->rep.resize_done = r->final;
      rz->rep.resize_before_final = !r->final;
    }
    else if (r->final)
      rz->rep.resize_done = true;
    if (rz->form == FORM_SUB && nbdp_rz_size_reply (&rc->st)) {
      uint64_t t = now_ms ();
      nbdp_rz_check_sub_chunk (&rc->st, &ch, r->final, t, &vs);
      rc->sub_initial = !rc->st.sub.started;
      nbdp_rz_sub_chunk (&rc->st, &ch, t);
      rc->sub_last = ch;
      rc->sub_new = true;
      if (r->final) {
        nbdp_rz_sub_end (&rc->st);
        rc->sub_ended = true;
      }
    }
  }
  if (vs.n && record (rc, &vs)) {
    fill_msg (&vs, msg, msgsize);
    return -1;
  }
  return 0;
}

/* ---- transmission -------------------------------------------------- */

static void
link_cmd (struct nbdp_rz_client *rc, struct nbdp_rz_cmd *rz)
{
  rz->next = rc->cmds;
  rc->cmds = rz;
}

static void
unlink_cmd (struct nbdp_rz_client *rc, struct nbdp_rz_cmd *rz)
{
  struct nbdp_rz_cmd **pp;

  for (pp = &rc->cmds; *pp; pp = &(*pp)->next)
    if (*pp == rz) {
      *pp = rz->next;
      return;
    }
}

static void
trace_request (struct nbdp_rz_client *rc, const struct nbdp_cmd *cmd)
{
  char fb[96], cb[32];

  nbdp_cmd_flags_str (fb, sizeof fb, cmd->flags);
  trace (rc, "C: %s%s request %s flags %s cookie %" PRIu64 " offset %"
         PRIu64 " length %" PRIu64,
         (cmd->layout == NBDP_LAYOUT_AUTO ? rc->c->extended
          : cmd->layout == NBDP_LAYOUT_EXTENDED) ? "extended" : "compact",
         cmd->type == NBD_CMD_RESIZE
         ? ((cmd->flags & NBD_CMD_FLAG_RESIZE_NOTIFY) &&
            (cmd->flags & NBD_CMD_FLAG_RESIZE_QUERY) ? " (unsubscribe)"
            : (cmd->flags & NBD_CMD_FLAG_RESIZE_NOTIFY) ? " (subscribe)"
            : (cmd->flags & NBD_CMD_FLAG_RESIZE_QUERY) ? " (query)"
            : " (set size)") : "",
         name_or (nbdp_name_of_cmd (cmd->type), cb, sizeof cb, cmd->type),
         fb, cmd->cookie, cmd->offset, cmd->count);
}

/* Client rules before sending.  -1 if the request must not go out. */
static int
precheck (struct nbdp_rz_client *rc, const struct nbdp_cmd *cmd)
{
  struct nbdp_rz_violations vs;
  const struct nbdp_rz_violation *v;
  bool unsupported = false;
  size_t i;

  if (rc->c->fd < 0 || rc->c->dead)
    return rz_fail (rc, NBDP_RZ_IO, "not connected (after an earlier "
                    "failure or a hard disconnect)");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&rc->st, cmd->type, cmd->flags, cmd->offset,
                         cmd->count, cmd->cookie, &vs);
  if (vs.n == 0 || rc->force)
    return 0;
  for (i = 0; i < vs.n; i++) {
    const char *id = vs.v[i].id;
    if (strcmp (id, "RZ-CLI-1") == 0 || strcmp (id, "RZ-CLI-10") == 0 ||
        strcmp (id, "RZ-CLI-13") == 0 || strcmp (id, "RZ-CLI-16") == 0)
      unsupported = true;
  }
  v = &vs.v[0];
  return rz_fail (rc, unsupported ? NBDP_RZ_UNSUPPORTED : NBDP_RZ_IO,
                  "not sent (%s): %s", v->id, v->msg);
}

/* Start a command (already filled in rz->cmd). */
static int
start (struct nbdp_rz_client *rc, struct nbdp_rz_cmd *rz)
{
  bool automatic = rz->cmd.cookie == 0;

  /* Peek at the next cookie for the checks; take it only if the request
   * really goes out.
   */
  if (automatic)
    rz->cmd.cookie = rc->c->next_cookie;
  if (precheck (rc, &rz->cmd) == -1) {
    if (automatic)
      rz->cmd.cookie = 0;
    return -1;
  }
  if (automatic)
    nbdp_client_next_cookie (rc->c);
  rz->old_size = rc->st.size;
  memset (&rz->rep, 0, sizeof rz->rep);
  trace_request (rc, &rz->cmd);
  link_cmd (rc, rz);
  if (nbdp_client_cmd_start (rc->c, &rz->cmd) == -1) {
    unlink_cmd (rc, rz);
    return from_client (rc);
  }
  return 0;
}

/* Wait for the command to finish.  0: finished (check cmd.error and
 * cmd.violation); -1: the connection failed.
 */
static int
finish (struct nbdp_rz_client *rc, struct nbdp_rz_cmd *rz)
{
  int r = nbdp_client_cmd_wait (rc->c, &rz->cmd);
  int ret = 0;

  if (r == -1 && rc->c->failure != NBDP_FAIL_REFUSED &&
      !(rc->c->failure == NBDP_FAIL_PROTOCOL && rz->cmd.done)) {
    if (must_stop (rc))
      ret = fail_violation (rc);
    else
      ret = from_client (rc);
  }
  unlink_cmd (rc, rz);
  nbdp_client_cmd_cleanup (rc->c, &rz->cmd);
  if (rz->rep.error == 0 && rz->cmd.error)
    rz->rep.error = rz->cmd.error;
  return ret;
}

/* After the form checks: the overall result of a command. */
static int
conclude (struct nbdp_rz_client *rc, struct nbdp_rz_cmd *rz,
          const struct nbdp_rz_violations *vs)
{
  char eb[32];

  record (rc, vs);
  if (must_stop (rc))
    return fail_violation (rc);
  if (rz->cmd.violation)
    return rz_fail (rc, NBDP_RZ_VIOLATION, "%s", rz->cmd.violation_message);
  if (rz->rep.error)
    return rz_fail (rc, NBDP_RZ_REFUSED, "%s offset %" PRIu64 " flags 0x%x: "
                    "the server replied %s%s%s",
                    nbdp_name_of_cmd (rz->cmd.type), rz->cmd.offset,
                    rz->cmd.flags,
                    name_or (nbdp_name_of_error (rz->rep.error), eb,
                             sizeof eb, rz->rep.error),
                    rz->cmd.error_message[0] ? ": " : "",
                    rz->cmd.error_message);
  return 0;
}

static void
fill_result (struct nbdp_rz_client *rc, const struct nbdp_rz_cmd *rz,
             struct nbdp_rz_result *res)
{
  if (res == NULL)
    return;
  memset (res, 0, sizeof *res);
  res->error = rz->rep.error;
  res->have_chunk = rz->rep.n_resize > 0;
  res->chunk = rz->rep.chunk;
  res->old_size = rz->old_size;
  res->size = rc->st.size;
}

static enum form
form_of (uint16_t flags)
{
  bool q = flags & NBD_CMD_FLAG_RESIZE_QUERY;
  bool n = flags & NBD_CMD_FLAG_RESIZE_NOTIFY;

  return q && n ? FORM_UNSUB : q ? FORM_QUERY : n ? FORM_SUB : FORM_SET;
}

int
nbdp_rz_resize_raw (struct nbdp_rz_client *rc, uint16_t flags,
                    uint64_t offset, uint64_t count,
                    struct nbdp_rz_result *res)
{
  struct nbdp_rz_cmd rz = { .cmd = { .type = NBD_CMD_RESIZE, .flags = flags,
                                     .offset = offset, .count = count } };
  struct nbdp_rz_violations vs;
  struct nbdp_rz_state before;

  rz.form = form_of (flags);
  if (rz.form == FORM_SUB)
    return rz_fail (rc, NBDP_RZ_IO, "use nbdp_rz_subscribe for subscribe");
  if (start (rc, &rz) == -1)
    return -1;
  before = rc->st;
  if (finish (rc, &rz) == -1)
    return -1;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&before, flags, offset, count, rz.rep.error,
                                &vs);
  switch (rz.form) {
  case FORM_SET:
    nbdp_rz_check_set_reply (&before, offset, rz.old_size, &rz.rep, &vs);
    nbdp_rz_learn_set_reply (&rc->st, offset, &rz.rep);
    break;
  case FORM_QUERY:
    nbdp_rz_check_query_reply (&before, &rz.rep, &vs);
    if (rz.rep.error == 0 && rz.rep.n_resize)
      nbdp_rz_learn_chunk (&rc->st, &rz.rep.chunk);
    break;
  case FORM_UNSUB:
    nbdp_rz_check_unsub_reply (&before, &rz.rep, rz.sub_active_at_final,
                               &vs);
    if (rz.rep.error == 0 && rz.rep.n_resize)
      nbdp_rz_learn_chunk (&rc->st, &rz.rep.chunk);
    break;
  default:
    break;
  }
  fill_result (rc, &rz, res);
  return conclude (rc, &rz, &vs);
}

int
nbdp_rz_set_size (struct nbdp_rz_client *rc, uint64_t size, uint16_t flags,
                  struct nbdp_rz_result *res)
{
  return nbdp_rz_resize_raw (rc, flags & ~(uint16_t) (NBD_CMD_FLAG_RESIZE_QUERY
                                                      | NBD_CMD_FLAG_RESIZE_NOTIFY),
                             size, 0, res);
}

int
nbdp_rz_query (struct nbdp_rz_client *rc, struct nbdp_rz_result *res)
{
  return nbdp_rz_resize_raw (rc, NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, res);
}

int
nbdp_rz_subscribe (struct nbdp_rz_client *rc, bool own_changes,
                   struct nbdp_rz_result *res)
{
  struct nbdp_rz_cmd *rz;
  struct nbdp_rz_violations vs;
  struct nbdp_rz_state before;

  if (rc->sub)
    return rz_fail (rc, NBDP_RZ_IO, "a subscription is already active "
                    "(RZ-CLI-24)");
  rz = calloc (1, sizeof *rz);
  if (rz == NULL)
    return rz_fail (rc, NBDP_RZ_IO, "%s", strerror (ENOMEM));
  rz->form = FORM_SUB;
  rz->cmd.type = NBD_CMD_RESIZE;
  rz->cmd.flags = NBD_CMD_FLAG_RESIZE_NOTIFY;
  before = rc->st;
  if (start (rc, rz) == -1) {
    free (rz);
    return -1;
  }
  rc->sub = rz;
  rc->sub_new = false;
  rc->sub_ended = false;
  nbdp_rz_sub_start (&rc->st, rz->cmd.cookie, own_changes);
  /* Wait for the snapshot chunk (or the end). */
  while (!rc->sub_new && !rz->cmd.done) {
    if (nbdp_client_cmd_poll (rc->c, NULL) == -1) {
      if (must_stop (rc))
        return fail_violation (rc);
      return from_client (rc);
    }
  }
  if (must_stop (rc))
    return fail_violation (rc);
  if (rz->cmd.done && !rc->sub_new) {
    /* Refused (or ended at once). */
    uint32_t err = rz->rep.error ? rz->rep.error : rz->cmd.error;
    nbdp_rz_violations_clear (&vs);
    nbdp_rz_check_resize_outcome (&before, rz->cmd.flags, 0, 0, err, &vs);
    rz->rep.error = err;
    fill_result (rc, rz, res);
    unlink_cmd (rc, rz);
    nbdp_client_cmd_cleanup (rc->c, &rz->cmd);
    rc->sub = NULL;
    {
      struct nbdp_rz_cmd tmp = *rz;
      free (rz);
      return conclude (rc, &tmp, &vs);
    }
  }
  rc->sub_new = false;
  if (res) {
    memset (res, 0, sizeof *res);
    res->have_chunk = true;
    res->chunk = rc->sub_last;
    res->old_size = before.size;
    res->size = rc->st.size;
  }
  return 0;
}

int
nbdp_rz_next_event (struct nbdp_rz_client *rc, int timeout_ms,
                    struct nbdp_rz_chunk *ch)
{
  uint64_t deadline = timeout_ms >= 0 ? now_ms () + timeout_ms : 0;

  if (rc->sub == NULL)
    return rz_fail (rc, NBDP_RZ_IO, "no subscription");
  while (!rc->sub_new) {
    if (rc->sub_ended || rc->sub->cmd.done) {
      rc->sub_ended = true;
      return rz_fail (rc, NBDP_RZ_IO, "the subscription ended");
    }
    if (rc->c->fd < 0)
      return fail_violation (rc);
    if (timeout_ms >= 0) {
      struct pollfd pfd = { .fd = rc->c->fd, .events = POLLIN };
      uint64_t now = now_ms ();
      int r;
      if (now >= deadline)
        return 0;
      r = poll (&pfd, 1, (int) (deadline - now));
      if (r == 0)
        return 0;
      if (r == -1 && errno != EINTR)
        return rz_fail (rc, NBDP_RZ_IO, "poll: %s", strerror (errno));
      if (r == -1)
        continue;
    }
    if (nbdp_client_cmd_poll (rc->c, NULL) == -1) {
      if (must_stop (rc))
        return fail_violation (rc);
      return from_client (rc);
    }
    if (must_stop (rc))
      return fail_violation (rc);
  }
  rc->sub_new = false;
  *ch = rc->sub_last;
  return 1;
}

static void
drop_sub (struct nbdp_rz_client *rc)
{
  if (rc->sub == NULL)
    return;
  unlink_cmd (rc, rc->sub);
  nbdp_client_cmd_cleanup (rc->c, &rc->sub->cmd);
  free (rc->sub);
  rc->sub = NULL;
}

int
nbdp_rz_unsubscribe (struct nbdp_rz_client *rc, struct nbdp_rz_result *res)
{
  int r;

  rc->st.sub.unsubscribing = true;
  r = nbdp_rz_resize_raw (rc, NBD_CMD_FLAG_RESIZE_NOTIFY |
                          NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, res);
  if (rc->sub && rc->sub->cmd.done)
    drop_sub (rc);
  return r;
}

/* One NBD_CMD_READ, sent as it is. */
static int
read_one (struct nbdp_rz_client *rc, void *buf, uint64_t count,
          uint64_t offset, uint16_t flags)
{
  struct nbdp_rz_cmd rz = { .cmd = { .type = NBD_CMD_READ, .flags = flags,
                                     .offset = offset, .count = count,
                                     .buf = buf } };
  struct nbdp_rz_violations vs;

  if (start (rc, &rz) == -1)
    return -1;
  if (finish (rc, &rz) == -1)
    return -1;
  nbdp_rz_violations_clear (&vs);
  return conclude (rc, &rz, &vs);
}

/* The size constraints that bind a read (proto.md "Size constraints"):
 * the minimum block size (offsets and lengths are multiples of it) and
 * the largest length of one request: the advertised maximum payload, or
 * without NBD_INFO_BLOCK_SIZE the 32 MiB a client desiring
 * interoperability keeps to; a multiple of the minimum block size.
 */
static void
read_limits (const struct nbdp_rz_client *rc, uint64_t *min, uint64_t *max)
{
  const struct nbdp_client *c = rc->c;

  *min = 1;
  *max = NBDP_RZ_DEFAULT_MAX_PAYLOAD;
  if (c->have_block_size) {
    /* A minimum above 64 KiB is itself a server violation; the bounce
     * buffer below never exceeds that.
     */
    if (c->min_block > 1 && c->min_block <= 65536)
      *min = c->min_block;
    if (c->max_block > 0)
      *max = c->max_block;
  }
  *max -= *max % *min;
  if (*max == 0)
    *max = *min;
}

int
nbdp_rz_pread (struct nbdp_rz_client *rc, void *buf, uint64_t count,
               uint64_t offset, uint16_t flags)
{
  uint64_t min, max, pos = offset, end, size = rc->st.size;
  unsigned char *bounce = NULL;
  int ret = 0;

  read_limits (rc, &min, &max);
  if (count > UINT64_MAX - offset)
    return rz_fail (rc, NBDP_RZ_IO, "not sent: READ offset %" PRIu64
                    " length %" PRIu64 " wraps around", offset, count);
  end = offset + count;
  if (count == 0 ||
      (count <= max && offset % min == 0 && count % min == 0))
    return read_one (rc, buf, count, offset, flags);

  /* Split by the maximum payload (SIZE-25); a partial block at either
   * end is read whole (SIZE-31) into a bounce buffer, or as far as the
   * export goes if the size is not a multiple of the minimum block size
   * (the only way to reach those bytes).  Every piece is checked as it
   * comes back; the first failure ends the read.
   */
  while (pos < end && ret == 0) {
    uint64_t blk = pos - pos % min;

    if (blk != pos || end - pos < min) {
      uint64_t n = min, take;

      if (end <= size && blk < size && n > size - blk)
        n = size - blk;
      if (bounce == NULL && (bounce = malloc (min)) == NULL) {
        ret = rz_fail (rc, NBDP_RZ_IO, "%s", strerror (ENOMEM));
        break;
      }
      ret = read_one (rc, bounce, n, blk, flags);
      take = (blk + n < end ? blk + n : end) - pos;
      if (ret == 0)
        memcpy ((unsigned char *) buf + (pos - offset), bounce + (pos - blk),
                take);
      pos += take;
    }
    else {
      uint64_t n = end - pos < max ? end - pos : max;

      n -= n % min;
      ret = read_one (rc, (unsigned char *) buf + (pos - offset), n, pos,
                      flags);
      pos += n;
    }
  }
  free (bounce);
  return ret;
}

int
nbdp_rz_pwrite (struct nbdp_rz_client *rc, const void *buf, uint64_t count,
                uint64_t offset, uint16_t flags, struct nbdp_rz_result *res)
{
  struct nbdp_rz_cmd rz = { .cmd = { .type = NBD_CMD_WRITE, .flags = flags,
                                     .offset = offset, .count = count,
                                     .payload = buf } };
  struct nbdp_rz_violations vs;
  struct nbdp_rz_state before;

  rz.form = FORM_WRITE;
  if (start (rc, &rz) == -1)
    return -1;
  before = rc->st;
  if (finish (rc, &rz) == -1)
    return -1;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_write_reply (&before, offset, count, rz.old_size, &rz.rep,
                             &vs);
  nbdp_rz_learn_write_reply (&rc->st, offset, count, &rz.rep);
  fill_result (rc, &rz, res);
  return conclude (rc, &rz, &vs);
}

int
nbdp_rz_disc (struct nbdp_rz_client *rc)
{
  if (rc->c->fd < 0 || rc->c->dead)
    return 0;
  if (!rc->c->transmission) {
    /* The handshake ended early (e.g. NBD_OPT_GO refused): the soft
     * disconnect of option haggling is NBD_OPT_ABORT (HS-TERM-9,
     * HS-TERM-14).  Nothing to send before the client flags.
     */
    if (!rc->c->cflags_sent)
      return 0;
    trace (rc, "C: NBD_OPT_ABORT");
    if (nbdp_client_soft_disconnect (rc->c) == -1)
      return from_client (rc);
    trace (rc, "S: %s", rc->c->last_rep == NBD_REP_ACK
           ? "NBD_REP_ACK to NBD_OPT_ABORT" : "closed the connection");
    return 0;
  }
  trace (rc, "C: NBD_CMD_DISC");
  if (rc->sub && !rc->sub->cmd.done)
    rc->st.sub.disc_sent = true;
  if (nbdp_client_disc (rc->c) == -1)
    return from_client (rc);
  /* RZ-SUB-13: the subscription ends with NONE+DONE before the close. */
  while (rc->sub && !rc->sub->cmd.done) {
    if (nbdp_client_cmd_poll (rc->c, NULL) == -1) {
      struct nbdp_rz_violations vs;
      if (must_stop (rc))
        return fail_violation (rc);
      nbdp_rz_violations_clear (&vs);
      nbdp_rz_violation_add (&vs, "RZ-SUB-13", NULL, NBDP_RZ_MUST, false,
                             "sent NBD_CMD_DISC with the subscription on "
                             "cookie %" PRIu64 " active; expected "
                             "NBD_REPLY_TYPE_NONE with DONE on it before the "
                             "close; instead: %s", rc->sub->cmd.cookie,
                             nbdp_client_error (rc->c));
      record (rc, &vs);
      drop_sub (rc);
      return fail_violation (rc);
    }
  }
  drop_sub (rc);
  /* Whatever the server still sends before it closes answers no request
   * in flight (a stray size chunk, RZ-CHUNK-4): read to the close so that
   * the reply hook judges it rather than the close hiding it.  A server
   * that does not close within a short time is left alone.
   */
  nbdp_client_set_timeout (rc->c, 2000);
  while (!rc->c->dead && nbdp_client_cmd_poll (rc->c, NULL) == 0)
    ;
  if (must_stop (rc))
    return fail_violation (rc);
  return 0;
}
