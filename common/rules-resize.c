/* nbd-conformance: pure checks of the draft RESIZE extension as a client
 * sees it (see rules-resize.h).  No I/O, no allocation.  Every rule cites
 * its requirement ID of specs/resize.md; every message says what was
 * sent, what came back and what was expected.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "rules-resize.h"

/* ---- violations ---------------------------------------------------- */

void
nbdp_rz_violations_clear (struct nbdp_rz_violations *vs)
{
  vs->n = 0;
  vs->dropped = 0;
}

static bool
same_str (const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp (a, b) == 0;
}

static struct nbdp_rz_violation *
find_same (struct nbdp_rz_violations *vs, const char *id, const char *cli_id)
{
  size_t i;

  for (i = 0; i < vs->n; i++)
    if (same_str (vs->v[i].id, id) && same_str (vs->v[i].cli_id, cli_id))
      return &vs->v[i];
  return NULL;
}

void
nbdp_rz_violation_add (struct nbdp_rz_violations *vs, const char *id,
                       const char *cli_id, enum nbdp_rz_level level,
                       bool disconnect, const char *fmt, ...)
{
  struct nbdp_rz_violation *v;
  va_list ap;

  if (vs == NULL)
    return;
  v = find_same (vs, id, cli_id);
  if (v) {
    v->repeats++;
    v->disconnect |= disconnect;
    return;
  }
  if (vs->n >= NBDP_RZ_MAX_VIOLATIONS) {
    vs->dropped++;
    return;
  }
  v = &vs->v[vs->n++];
  v->id = id;
  v->cli_id = cli_id;
  v->level = level;
  v->disconnect = disconnect;
  v->repeats = 0;
  va_start (ap, fmt);
  vsnprintf (v->msg, sizeof v->msg, fmt, ap);
  va_end (ap);
}

bool
nbdp_rz_violations_has (const struct nbdp_rz_violations *vs, const char *id)
{
  size_t i;

  for (i = 0; i < vs->n; i++)
    if (strcmp (vs->v[i].id, id) == 0 ||
        (vs->v[i].cli_id && strcmp (vs->v[i].cli_id, id) == 0))
      return true;
  return false;
}

const struct nbdp_rz_violation *
nbdp_rz_violations_disconnect (const struct nbdp_rz_violations *vs)
{
  size_t i;

  for (i = 0; i < vs->n; i++)
    if (vs->v[i].disconnect)
      return &vs->v[i];
  return NULL;
}

void
nbdp_rz_violations_merge (struct nbdp_rz_violations *dst,
                          const struct nbdp_rz_violations *src)
{
  size_t i;

  for (i = 0; i < src->n; i++) {
    struct nbdp_rz_violation *v = find_same (dst, src->v[i].id,
                                             src->v[i].cli_id);
    if (v) {
      v->repeats += 1 + src->v[i].repeats;
      v->disconnect |= src->v[i].disconnect;
      continue;
    }
    if (dst->n >= NBDP_RZ_MAX_VIOLATIONS) {
      dst->dropped++;
      continue;
    }
    dst->v[dst->n++] = src->v[i];
  }
  dst->dropped += src->dropped;
}

const char *
nbdp_rz_level_name (enum nbdp_rz_level level)
{
  return level == NBDP_RZ_MUST ? "MUST" : "SHOULD";
}

#define MUST NBDP_RZ_MUST
#define SHOULD NBDP_RZ_SHOULD
#define add nbdp_rz_violation_add

/* ---- values and helpers -------------------------------------------- */

static const char *const encoding_names[] = {
  [NBDP_RZ_ENC_NEGOTIATED] = "negotiated",
  [NBDP_RZ_ENC_FLAG_ONLY] = "flag-only",
  [NBDP_RZ_ENC_INFO_OPTIN] = "info-optin",
  [NBDP_RZ_ENC_BOOLEAN] = "boolean",
  [NBDP_RZ_ENC_LEGACY] = "legacy",
};

const char *
nbdp_rz_encoding_name (enum nbdp_rz_encoding e)
{
  if ((unsigned) e < sizeof encoding_names / sizeof encoding_names[0])
    return encoding_names[e];
  return "?";
}

int
nbdp_rz_encoding_parse (const char *s, enum nbdp_rz_encoding *e)
{
  size_t i;

  for (i = 0; i < sizeof encoding_names / sizeof encoding_names[0]; i++)
    if (strcmp (s, encoding_names[i]) == 0) {
      *e = (enum nbdp_rz_encoding) i;
      return 0;
    }
  return -1;
}

const char *
nbdp_rz_mode_name (enum nbdp_rz_mode m)
{
  switch (m) {
  case NBDP_RZ_MODE_NONE: return "none";
  case NBDP_RZ_MODE_LEGACY: return "legacy";
  case NBDP_RZ_MODE_NEGOTIATED: return "negotiated";
  case NBDP_RZ_MODE_FLAG_ONLY: return "flag-only";
  }
  return "?";
}

static const char *const feature_names[8] = {
  "GROW", "SHRINK", "AUTO_GROW", "ZERO_FILL", "SIZE_REPLY", "QUERY",
  "NOTIFY", "EXPORT_WIDE",
};
static const char *const feature_words[8] = {
  "grow", "shrink", "auto-grow", "zero-fill", "size-reply", "query",
  "notify", "export-wide",
};
static const char *const event_names[7] = {
  "GREW", "SHRANK", "ZEROED", "REMOTE", "INITIAL", "CAPPED", "ROUNDED",
};

static const char *
bits_str (char *buf, size_t size, uint32_t v, const char *const *names,
          unsigned n)
{
  size_t len = 0;
  unsigned i;
  uint32_t rest = v;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (v == 0) {
    snprintf (buf, size, "0");
    return buf;
  }
  for (i = 0; i < n; i++) {
    if ((v & (UINT32_C (1) << i)) == 0)
      continue;
    rest &= ~(UINT32_C (1) << i);
    len += snprintf (buf + len, len < size ? size - len : 0, "%s%s",
                     len ? "|" : "", names[i]);
    if (len >= size)
      return buf;
  }
  if (rest)
    snprintf (buf + len, len < size ? size - len : 0, "%s0x%" PRIx32,
              len ? "|" : "", rest);
  return buf;
}

const char *
nbdp_rz_features_str (char *buf, size_t size, uint32_t f)
{
  return bits_str (buf, size, f, feature_names, 8);
}

const char *
nbdp_rz_events_str (char *buf, size_t size, uint32_t ev)
{
  return bits_str (buf, size, ev, event_names, 7);
}

int
nbdp_rz_features_parse (const char *s, uint32_t *f)
{
  char word[32];
  uint32_t v = 0;

  *f = 0;
  while (*s) {
    size_t n = strcspn (s, ",");
    unsigned i;
    bool found = false;

    if (n == 0 || n >= sizeof word)
      return -1;
    memcpy (word, s, n);
    word[n] = '\0';
    s += n;
    if (*s == ',')
      s++;
    if (strcmp (word, "all") == 0) {
      v |= NBD_RESIZE_MASK_FEATURES;
      continue;
    }
    if (strcmp (word, "none") == 0)
      continue;
    for (i = 0; i < 8; i++)
      if (strcmp (word, feature_words[i]) == 0) {
        v |= UINT32_C (1) << i;
        found = true;
      }
    if (!found) {
      char *end;
      unsigned long long x = strtoull (word, &end, 0);
      if (*end != '\0' || x > UINT32_MAX)
        return -1;
      v |= (uint32_t) x;
    }
  }
  *f = v;
  return 0;
}

bool
nbdp_rz_seq_after (uint32_t a, uint32_t b)
{
  uint32_t d = b - a;

  return d >= 1 && d < NBD_RESIZE_SEQ_WINDOW;
}

bool
nbdp_rz_roundup (uint64_t x, uint64_t g, uint64_t *out)
{
  uint64_t r;

  if (g <= 1) {
    *out = x;
    return true;
  }
  r = x % g;
  if (r == 0) {
    *out = x;
    return true;
  }
  if (x > UINT64_MAX - (g - r))
    return false;
  *out = x + (g - r);
  return true;
}

/* ---- decoded wire items -------------------------------------------- */

bool
nbdp_rz_decode_info (const void *payload, uint64_t len,
                     struct nbdp_rz_info *info)
{
  const unsigned char *p = payload;

  memset (info, 0, sizeof *info);
  if (len != NBD_RESIZE_INFO_LEN)
    return false;
  info->present = true;
  info->capabilities = nbdp_get32 (p + 2);
  info->active = nbdp_get32 (p + 6);
  info->granularity = nbdp_get32 (p + 10);
  info->max_size = nbdp_get64 (p + 14);
  return true;
}

void
nbdp_rz_encode_info (void *buf22, const struct nbdp_rz_info *info)
{
  unsigned char *p = buf22;

  nbdp_put16 (p, NBD_INFO_RESIZE);
  nbdp_put32 (p + 2, info->capabilities);
  nbdp_put32 (p + 6, info->active);
  nbdp_put32 (p + 10, info->granularity);
  nbdp_put64 (p + 14, info->max_size);
}

bool
nbdp_rz_decode_chunk (const void *payload, uint64_t len,
                      struct nbdp_rz_chunk *ch)
{
  const unsigned char *p = payload;

  memset (ch, 0, sizeof *ch);
  if (len != NBD_RESIZE_CHUNK_LEN || payload == NULL)
    return false;
  ch->size = nbdp_get64 (p);
  ch->events = nbdp_get32 (p + 8);
  ch->sequence = nbdp_get32 (p + 12);
  return true;
}

void
nbdp_rz_encode_chunk (void *buf16, const struct nbdp_rz_chunk *ch)
{
  unsigned char *p = buf16;

  nbdp_put64 (p, ch->size);
  nbdp_put32 (p + 8, ch->events);
  nbdp_put32 (p + 12, ch->sequence);
}

/* ---- state --------------------------------------------------------- */

void
nbdp_rz_state_init (struct nbdp_rz_state *st, enum nbdp_rz_encoding encoding)
{
  memset (st, 0, sizeof *st);
  st->encoding = encoding;
}

uint64_t
nbdp_rz_granularity (const struct nbdp_rz_state *st)
{
  if (st->info.present && st->info.granularity)
    return st->info.granularity;
  if (st->have_block_size && st->min_block)
    return st->min_block;
  return 1;
}

uint32_t
nbdp_rz_grant (uint32_t want, uint32_t caps, bool chunks)
{
  uint32_t g = want & caps & NBD_RESIZE_MASK_FEATURES;

  if (!chunks)
    g &= ~(uint32_t) NBD_RESIZE_F_SIZE_REPLY;
  if ((g & NBD_RESIZE_F_SIZE_REPLY) == 0)
    g &= ~(uint32_t) NBD_RESIZE_MASK_NEED_SIZE_REPLY;
  return g;
}

bool
nbdp_rz_size_reply (const struct nbdp_rz_state *st)
{
  return st->mode == NBDP_RZ_MODE_NEGOTIATED &&
    (st->active & NBD_RESIZE_F_SIZE_REPLY) != 0;
}

static bool
auto_grow (const struct nbdp_rz_state *st)
{
  if (st->mode == NBDP_RZ_MODE_FLAG_ONLY)
    return true;
  return st->mode == NBDP_RZ_MODE_NEGOTIATED &&
    (st->active & NBD_RESIZE_F_AUTO_GROW) != 0;
}

static bool
is_pow2 (uint64_t v)
{
  return v && (v & (v - 1)) == 0;
}

/* The events field restricted to the defined bits. */
static uint32_t
defined_events (uint32_t ev)
{
  return ev & NBD_RESIZE_MASK_EVENTS;
}

/* ---- handshake ----------------------------------------------------- */

void
nbdp_rz_check_opt_reply (const struct nbdp_rz_state *st, uint32_t rep,
                         uint32_t length, struct nbdp_rz_violations *out)
{
  const char *rn = nbdp_name_of_rep (rep);
  char rb[32];

  if (rn == NULL) {
    snprintf (rb, sizeof rb, "reply type 0x%" PRIx32, rep);
    rn = rb;
  }
  if (rep == NBD_REP_ACK) {
    if (length != 0)
      add (out, "RZ-NEG-1", NULL, MUST, false,
           "sent NBD_OPT_RESIZE (4 bytes of features); received NBD_REP_ACK "
           "with %" PRIu32 " bytes of data; expected NBD_REP_ACK with no "
           "data", length);
    return;
  }
  if (rep == NBD_REP_ERR_INVALID)
    add (out, "RZ-NEG-1", NULL, MUST, false,
         "sent a well formed NBD_OPT_RESIZE (4 bytes, reserved bits clear); "
         "received NBD_REP_ERR_INVALID; expected NBD_REP_ACK, or "
         "NBD_REP_ERR_UNSUP (extension not implemented, RZ-NEG-3) or "
         "NBD_REP_ERR_POLICY (RZ-NEG-4)");
  else if ((rep & NBD_REP_ERR (0)) == 0)
    add (out, "RZ-NEG-1", NULL, MUST, false,
         "sent NBD_OPT_RESIZE; received %s; expected NBD_REP_ACK with no "
         "data or an error reply", rn);
}

void
nbdp_rz_learn_opt_reply (struct nbdp_rz_state *st, uint32_t rep,
                         uint32_t requested)
{
  st->opt_sent = true;
  if (rep == NBD_REP_ACK) {
    st->opt_acked = true;
    st->requested = requested;
  }
  /* A refused repeat leaves an earlier acknowledged request in force
   * (RZ-NEG-7 says repeats are acknowledged; a refusal of a well formed
   * one is reported by nbdp_rz_check_opt_reply).
   */
}

void
nbdp_rz_check_export (const struct nbdp_rz_state *st, bool go,
                      const struct nbdp_rz_export *ex,
                      struct nbdp_rz_violations *out)
{
  const char *opt = go ? "NBD_OPT_GO" : "NBD_OPT_INFO";
  const struct nbdp_rz_info *in = &ex->info;
  bool chunks = st->structured || st->extended;
  char b1[96], b2[96], b3[96];
  uint64_t g;

  if (ex->n_info_resize > 1)
    add (out, "RZ-INFO-4", NULL, MUST, false,
         "sent %s; received %u NBD_INFO_RESIZE items in one reply; expected "
         "at most one", opt, ex->n_info_resize);
  if (ex->n_info_resize > 0 && !ex->info_len_ok)
    add (out, "RZ-INFO-3", NULL, MUST, false,
         "sent %s; received an NBD_INFO_RESIZE item whose length is not %d; "
         "expected length %d (type, capabilities, active, granularity, "
         "maximum size)", opt, NBD_RESIZE_INFO_LEN, NBD_RESIZE_INFO_LEN);
  if (ex->n_info_resize == 0 && st->opt_acked &&
      (st->encoding == NBDP_RZ_ENC_NEGOTIATED ||
       st->encoding == NBDP_RZ_ENC_BOOLEAN))
    add (out, "RZ-INFO-2", NULL, MUST, false,
         "sent NBD_OPT_RESIZE (acknowledged) then %s%s; the successful "
         "reply carried no NBD_INFO_RESIZE; expected one in every "
         "successful INFO/GO reply after the acknowledgement", opt,
         st->info_listed ? " listing NBD_INFO_RESIZE" : "");
  if (!in->present)
    return;

  if (st->encoding == NBDP_RZ_ENC_FLAG_ONLY &&
      ex->have_export && (ex->eflags & NBD_FLAG_AUTO_RESIZE))
    add (out, "RZ-B1-3", NULL, MUST, false,
         "sent %s without NBD_OPT_RESIZE; the server set "
         "NBD_FLAG_AUTO_RESIZE (variant B1) and also sent NBD_INFO_RESIZE; "
         "expected no NBD_INFO_RESIZE under variant B1", opt);

  if ((in->capabilities | in->active) & ~NBD_RESIZE_MASK_FEATURES)
    add (out, "RZ-VAL-1", NULL, MUST, false,
         "sent %s; NBD_INFO_RESIZE has capabilities 0x%08" PRIx32
         " active 0x%08" PRIx32 "; expected no bit outside 0x%02" PRIx32
         " (reserved bits set)", opt, in->capabilities, in->active,
         NBD_RESIZE_MASK_FEATURES);
  if (in->active & ~in->capabilities)
    add (out, "RZ-INFO-5", NULL, MUST, false,
         "sent %s; NBD_INFO_RESIZE active %s is not a subset of "
         "capabilities %s", opt,
         nbdp_rz_features_str (b1, sizeof b1, in->active),
         nbdp_rz_features_str (b2, sizeof b2, in->capabilities));
  if ((in->capabilities & NBD_RESIZE_MASK_NEED_SIZE_REPLY) &&
      !(in->capabilities & NBD_RESIZE_F_SIZE_REPLY))
    add (out, "RZ-INFO-6", NULL, MUST, false,
         "sent %s; NBD_INFO_RESIZE capabilities %s offer QUERY or NOTIFY "
         "without SIZE_REPLY; expected SIZE_REPLY whenever QUERY or NOTIFY "
         "is offered", opt,
         nbdp_rz_features_str (b1, sizeof b1, in->capabilities));
  if (in->granularity != 0 &&
      (!is_pow2 (in->granularity) ||
       (ex->have_block_size && in->granularity < ex->min_block)))
    add (out, "RZ-INFO-7", NULL, MUST, false,
         "sent %s; NBD_INFO_RESIZE granularity %" PRIu32 " (minimum block "
         "size %s%" PRIu32 "); expected 0 or a power of 2 not below the "
         "minimum block size", opt, in->granularity,
         ex->have_block_size ? "" : "not advertised, ",
         ex->have_block_size ? ex->min_block : 1);
  g = in->granularity ? in->granularity
    : ex->have_block_size && ex->min_block ? ex->min_block : 1;
  if (in->max_size > NBD_RESIZE_SIZE_MAX)
    add (out, "RZ-VAL-3", NULL, MUST, false,
         "sent %s; NBD_INFO_RESIZE maximum size %" PRIu64 "; expected at "
         "most NBD_RESIZE_SIZE_MAX (2^63-1)", opt, in->max_size);
  else if (in->max_size != 0 && in->max_size % g != 0)
    add (out, "RZ-INFO-9", NULL, MUST, false,
         "sent %s; NBD_INFO_RESIZE maximum size %" PRIu64 " is not a "
         "multiple of the granularity G = %" PRIu64 "; expected 0 or a "
         "multiple of G", opt, in->max_size, g);
  if (in->granularity != 0 && ex->have_export &&
      ex->size % in->granularity != 0)
    add (out, "RZ-INFO-8", "RZ-CLI-33", MUST, true,
         "sent %s; NBD_INFO_EXPORT size %" PRIu64 " is not a multiple of "
         "the NBD_INFO_RESIZE granularity %" PRIu32 "; expected the export "
         "size to be a multiple of it", opt, ex->size, in->granularity);
  if (ex->have_export && (ex->eflags & NBD_FLAG_READ_ONLY) &&
      (in->capabilities & (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK |
                           NBD_RESIZE_F_AUTO_GROW)))
    add (out, "RZ-RO-1", NULL, MUST, false,
         "sent %s; the export is read-only (NBD_FLAG_READ_ONLY) but "
         "NBD_INFO_RESIZE capabilities %s offer GROW, SHRINK or AUTO_GROW; "
         "expected none of them", opt,
         nbdp_rz_features_str (b1, sizeof b1, in->capabilities));
  if (st->extended && st->encoding == NBDP_RZ_ENC_NEGOTIATED &&
      !(in->capabilities & NBD_RESIZE_F_SIZE_REPLY))
    add (out, "RZ-EH-1", NULL, SHOULD, false,
         "negotiated extended headers, sent %s; NBD_INFO_RESIZE "
         "capabilities %s lack SIZE_REPLY; expected SIZE_REPLY offered by "
         "a server that implements extended headers", opt,
         nbdp_rz_features_str (b1, sizeof b1, in->capabilities));

  /* The active set. */
  switch (st->encoding) {
  case NBDP_RZ_ENC_NEGOTIATED:
  case NBDP_RZ_ENC_BOOLEAN:
  case NBDP_RZ_ENC_FLAG_ONLY:
  case NBDP_RZ_ENC_LEGACY:
    if (!st->opt_acked) {
      if (in->active != 0)
        add (out, "RZ-NEG-10", NULL, MUST, false,
             "sent %s with no acknowledged NBD_OPT_RESIZE; NBD_INFO_RESIZE "
             "active is %s; expected 0", opt,
             nbdp_rz_features_str (b1, sizeof b1, in->active));
    }
    else {
      uint32_t want = nbdp_rz_grant (st->requested, in->capabilities,
                                     chunks);
      if (in->active & ~NBD_RESIZE_MASK_FEATURES)
        add (out, "RZ-NEG-6", NULL, MUST, false,
             "sent NBD_OPT_RESIZE requesting %s, then %s; active %s "
             "grants reserved bits; expected them never granted", 
             nbdp_rz_features_str (b1, sizeof b1, st->requested), opt,
             nbdp_rz_features_str (b2, sizeof b2, in->active));
      else if (in->active != want)
        add (out, "RZ-NEG-9", NULL, MUST, false,
             "sent NBD_OPT_RESIZE requesting %s (structured replies %s, "
             "extended headers %s), then %s; capabilities %s, active %s; "
             "expected active %s (requested & capabilities, with the "
             "prerequisites of section 3.2)",
             nbdp_rz_features_str (b1, sizeof b1, st->requested),
             st->structured ? "on" : "off", st->extended ? "on" : "off",
             opt, nbdp_rz_features_str (b2, sizeof b2, in->capabilities),
             nbdp_rz_features_str (b3, sizeof b3, in->active),
             nbdp_rz_features_str ((char[96]) { 0 }, 96, want));
    }
    break;
  case NBDP_RZ_ENC_INFO_OPTIN:
    if (st->info_listed) {
      uint32_t want = nbdp_rz_grant (in->capabilities, in->capabilities,
                                     chunks);
      if (in->active != want)
        add (out, go ? "RZ-B2-1" : "RZ-B2-2", NULL, MUST, false,
             "variant B2: sent %s listing NBD_INFO_RESIZE (structured "
             "replies %s, extended headers %s); capabilities %s, active %s; "
             "expected active %s (all capabilities whose prerequisites "
             "hold)", opt, st->structured ? "on" : "off",
             st->extended ? "on" : "off",
             nbdp_rz_features_str (b1, sizeof b1, in->capabilities),
             nbdp_rz_features_str (b2, sizeof b2, in->active),
             nbdp_rz_features_str (b3, sizeof b3, want));
    }
    break;
  }
}

void
nbdp_rz_check_info_then_go (const struct nbdp_rz_state *st,
                            const struct nbdp_rz_export *info,
                            const struct nbdp_rz_export *go,
                            struct nbdp_rz_violations *out)
{
  const char *id = st->encoding == NBDP_RZ_ENC_INFO_OPTIN
    ? "RZ-B2-2" : "RZ-INFO-10";
  char b1[96], b2[96];

  if (info->info.present != go->info.present) {
    add (out, id, NULL, MUST, false,
         "sent NBD_OPT_INFO then NBD_OPT_GO with the same parameters; "
         "NBD_INFO_RESIZE was %s the INFO reply and %s the GO reply; "
         "expected the same information", info->info.present ? "in" : "absent from",
         go->info.present ? "in" : "absent from");
    return;
  }
  if (!info->info.present)
    return;
  if (info->info.active != go->info.active)
    add (out, id, NULL, MUST, false,
         "sent NBD_OPT_INFO then NBD_OPT_GO with the same parameters; "
         "active was %s in the INFO reply and %s in the GO reply; expected "
         "the INFO reply to report the active set of the GO",
         nbdp_rz_features_str (b1, sizeof b1, info->info.active),
         nbdp_rz_features_str (b2, sizeof b2, go->info.active));
  if (info->info.capabilities != go->info.capabilities)
    add (out, "RZ-NEG-12", NULL, MUST, false,
         "sent NBD_OPT_INFO then NBD_OPT_GO for the same export; "
         "capabilities were %s then %s; expected the same capabilities "
         "whatever was negotiated",
         nbdp_rz_features_str (b1, sizeof b1, info->info.capabilities),
         nbdp_rz_features_str (b2, sizeof b2, go->info.capabilities));
}

void
nbdp_rz_enter_transmission (struct nbdp_rz_state *st,
                            const struct nbdp_rz_export *ex,
                            struct nbdp_rz_violations *out)
{
  bool send_resize = (ex->eflags & NBD_FLAG_SEND_RESIZE) != 0;
  bool ro = (ex->eflags & NBD_FLAG_READ_ONLY) != 0;
  char b1[96];

  st->eflags = ex->eflags;
  st->size = ex->size;
  st->have_block_size = ex->have_block_size;
  st->min_block = ex->min_block;
  st->info = ex->info;
  st->active = 0;
  st->mode = NBDP_RZ_MODE_NONE;

  switch (st->encoding) {
  case NBDP_RZ_ENC_NEGOTIATED:
  case NBDP_RZ_ENC_BOOLEAN:
    if (st->opt_acked && !st->used_export_name) {
      st->mode = NBDP_RZ_MODE_NEGOTIATED;
      st->active = ex->info.present
        ? ex->info.active & NBD_RESIZE_MASK_FEATURES : 0;
    }
    break;
  case NBDP_RZ_ENC_INFO_OPTIN:
    if (st->info_listed && ex->info.present && !st->used_export_name) {
      st->mode = NBDP_RZ_MODE_NEGOTIATED;
      st->active = ex->info.active & NBD_RESIZE_MASK_FEATURES;
    }
    break;
  case NBDP_RZ_ENC_FLAG_ONLY:
    if (ex->eflags & NBD_FLAG_AUTO_RESIZE) {
      st->mode = NBDP_RZ_MODE_FLAG_ONLY;
      st->active = NBD_RESIZE_F_AUTO_GROW;
      if (ro)
        add (out, "RZ-B1-5", NULL, MUST, false,
             "variant B1: the export is read-only (NBD_FLAG_READ_ONLY) but "
             "the server set NBD_FLAG_AUTO_RESIZE; expected it clear on "
             "read-only exports");
    }
    break;
  case NBDP_RZ_ENC_LEGACY:
    break;
  }
  if (st->mode == NBDP_RZ_MODE_NONE && send_resize)
    st->mode = NBDP_RZ_MODE_LEGACY;

  if (st->mode == NBDP_RZ_MODE_NEGOTIATED) {
    bool need = (st->active & NBD_RESIZE_MASK_SEND_RESIZE) != 0;
    if (need && !send_resize)
      add (out, "RZ-FLAG-1", NULL, MUST, false,
           "negotiated mode with active %s; transmission flags lack "
           "NBD_FLAG_SEND_RESIZE; expected it set when GROW, SHRINK, QUERY "
           "or NOTIFY is active",
           nbdp_rz_features_str (b1, sizeof b1, st->active));
    else if (!need && send_resize)
      add (out, "RZ-FLAG-2", NULL, MUST, false,
           "negotiated mode with active %s; transmission flags have "
           "NBD_FLAG_SEND_RESIZE; expected it clear when none of GROW, "
           "SHRINK, QUERY and NOTIFY is active",
           nbdp_rz_features_str (b1, sizeof b1, st->active));
  }
  if (st->mode == NBDP_RZ_MODE_LEGACY && ro)
    add (out, "RZ-RO-4", NULL, SHOULD, false,
         "legacy mode on a read-only export: the server set "
         "NBD_FLAG_SEND_RESIZE; expected it clear, since only set size "
         "exists in legacy mode and a read-only export cannot be resized");
}

/* ---- requests ------------------------------------------------------ */

void
nbdp_rz_check_request (const struct nbdp_rz_state *st, uint16_t type,
                       uint16_t flags, uint64_t offset, uint64_t count,
                       uint64_t cookie, struct nbdp_rz_violations *out)
{
  char fb[96];

  if (st->sub.active && cookie == st->sub.cookie && type != NBD_CMD_DISC)
    add (out, "RZ-CLI-23", NULL, MUST, false,
         "about to send %s with cookie %" PRIu64 ", the cookie of the "
         "active subscription; a cookie is reused only after the chunk "
         "that ends the subscription",
         nbdp_name_of_cmd (type) ? nbdp_name_of_cmd (type) : "a request",
         cookie);

  if (type == NBD_CMD_WRITE || type == NBD_CMD_WRITE_ZEROES) {
    bool past = offset > st->size || count > st->size - offset;
    if (past && count > 0 && !auto_grow (st))
      add (out, "RZ-CLI-16", NULL, MUST, false,
           "about to send %s offset %" PRIu64 " length %" PRIu64 " past "
           "the end (size %" PRIu64 ") without AUTO_GROW active (mode %s)",
           nbdp_name_of_cmd (type), offset, count, st->size,
           nbdp_rz_mode_name (st->mode));
    return;
  }
  if (type != NBD_CMD_RESIZE)
    return;

  nbdp_cmd_flags_str (fb, sizeof fb, flags);
  if (!(st->eflags & NBD_FLAG_SEND_RESIZE))
    add (out, "RZ-CLI-1", NULL, MUST, false,
         "about to send NBD_CMD_RESIZE (flags %s) although the transmission "
         "flags lack NBD_FLAG_SEND_RESIZE", fb);
  if (count != 0 || (flags & NBD_CMD_FLAG_PAYLOAD_LEN))
    add (out, "RZ-CLI-8", NULL, MUST, false,
         "about to send NBD_CMD_RESIZE with length %" PRIu64 " flags %s; "
         "expected length 0 and NBD_CMD_FLAG_PAYLOAD_LEN clear", count, fb);
  {
    uint16_t bad = flags & ~(uint16_t) NBD_RESIZE_MASK_CMD_FLAGS;
    bool q = flags & NBD_CMD_FLAG_RESIZE_QUERY;
    bool n = flags & NBD_CMD_FLAG_RESIZE_NOTIFY;
    bool neg = st->mode == NBDP_RZ_MODE_NEGOTIATED;

    if (bad & ~(uint16_t) NBD_CMD_FLAG_PAYLOAD_LEN)
      add (out, "RZ-CLI-10", NULL, MUST, false,
           "about to send NBD_CMD_RESIZE with flags %s; only FUA, "
           "RESIZE_QUERY and RESIZE_NOTIFY are allowed", fb);
    if ((flags & NBD_CMD_FLAG_FUA) && !(st->eflags & NBD_FLAG_SEND_FUA))
      add (out, "RZ-CLI-10", NULL, MUST, false,
           "about to send NBD_CMD_RESIZE with FUA although "
           "NBD_FLAG_SEND_FUA is not set");
    if (q && !n && !(neg && (st->active & NBD_RESIZE_F_QUERY)))
      add (out, "RZ-CLI-10", "RZ-CLI-4", MUST, false,
           "about to send a query (RESIZE_QUERY) although QUERY is not "
           "active (mode %s)", nbdp_rz_mode_name (st->mode));
    if (n && !(neg && (st->active & NBD_RESIZE_F_NOTIFY)))
      add (out, "RZ-CLI-10", "RZ-CLI-4", MUST, false,
           "about to send a %s (RESIZE_NOTIFY%s) although NOTIFY is not "
           "active (mode %s)", q ? "unsubscribe" : "subscribe",
           q ? "|RESIZE_QUERY" : "", nbdp_rz_mode_name (st->mode));
    if ((q || n) && offset != 0)
      add (out, "RZ-CLI-9", NULL, MUST, false,
           "about to send a %s with offset %" PRIu64 "; expected 0",
           q && n ? "unsubscribe" : q ? "query" : "subscribe", offset);
    if (n && !q && st->sub.active)
      add (out, "RZ-CLI-24", NULL, MUST, false,
           "about to send a subscribe while the subscription on cookie %"
           PRIu64 " is active", st->sub.cookie);
    if (!q && !n) {
      uint64_t g = nbdp_rz_granularity (st);
      if (offset > NBD_RESIZE_SIZE_MAX)
        add (out, "RZ-CLI-11", NULL, MUST, false,
             "about to request size %" PRIu64 ", above NBD_RESIZE_SIZE_MAX",
             offset);
      if (!nbdp_rz_size_reply (st) && offset % g != 0 && offset != st->size)
        add (out, "RZ-CLI-12", NULL, MUST, false,
             "about to request size %" PRIu64 ", not a multiple of the "
             "granularity G = %" PRIu64 ", while SIZE_REPLY is not active",
             offset, g);
      if (neg && offset > st->size && !(st->active & NBD_RESIZE_F_GROW))
        add (out, "RZ-CLI-13", NULL, MUST, false,
             "about to grow the export from %" PRIu64 " to %" PRIu64
             " although GROW is not active", st->size, offset);
      if (neg && offset < st->size && !(st->active & NBD_RESIZE_F_SHRINK))
        add (out, "RZ-CLI-13", NULL, MUST, false,
             "about to shrink the export from %" PRIu64 " to %" PRIu64
             " although SHRINK is not active", st->size, offset);
    }
  }
}

/* ---- chunks -------------------------------------------------------- */

static const char *
cmdn (uint16_t t)
{
  const char *n = nbdp_name_of_cmd (t);
  return n ? n : "an unknown command";
}

bool
nbdp_rz_check_chunk (const struct nbdp_rz_state *st,
                     const struct nbdp_rz_where *w, const void *payload,
                     uint64_t len, struct nbdp_rz_chunk *ch,
                     struct nbdp_rz_violations *out)
{
  bool decoded;
  char eb[96];

  decoded = nbdp_rz_decode_chunk (payload, len, ch);
  if (len != NBD_RESIZE_CHUNK_LEN)
    add (out, "RZ-CHUNK-1", "RZ-CLI-27", MUST, true,
         "received an NBD_REPLY_TYPE_RESIZE chunk (cookie %" PRIu64 ") with "
         "a payload of %" PRIu64 " bytes; expected exactly %d",
         w->cookie, len, NBD_RESIZE_CHUNK_LEN);

  if (!w->known) {
    if (st->have_ended_cookie && w->cookie == st->ended_cookie)
      add (out, "RZ-SUB-16", NULL, MUST, false,
           "received an NBD_REPLY_TYPE_RESIZE chunk on cookie %" PRIu64
           " after the chunk that ended its subscription; expected nothing "
           "more on that cookie", w->cookie);
    add (out, "RZ-CHUNK-4", "RZ-CLI-29", MUST, true,
         "received an NBD_REPLY_TYPE_RESIZE chunk with cookie %" PRIu64
         ", which is not in flight; expected size chunks only on cookies "
         "of requests in flight", w->cookie);
  }
  else if (!nbdp_rz_size_reply (st)) {
    const char *id = st->mode == NBDP_RZ_MODE_LEGACY ? "RZ-LEG-3"
      : st->mode == NBDP_RZ_MODE_FLAG_ONLY ? "RZ-B1-3" : "RZ-CHUNK-2";
    add (out, id, "RZ-CLI-28", MUST, true,
         "sent %s (cookie %" PRIu64 ") in %s mode with SIZE_REPLY not "
         "active (active %s); received an NBD_REPLY_TYPE_RESIZE chunk; "
         "expected none", cmdn (w->cmd), w->cookie,
         nbdp_rz_mode_name (st->mode),
         nbdp_rz_features_str (eb, sizeof eb, st->active));
  }
  else if (w->cmd != NBD_CMD_RESIZE &&
           !((w->cmd == NBD_CMD_WRITE || w->cmd == NBD_CMD_WRITE_ZEROES) &&
             (st->active & NBD_RESIZE_F_AUTO_GROW)))
    add (out, "RZ-CHUNK-3", "RZ-CLI-29", MUST, true,
         "sent %s offset %" PRIu64 " length %" PRIu64 " (cookie %" PRIu64
         "); received an NBD_REPLY_TYPE_RESIZE chunk; expected size chunks "
         "only for NBD_CMD_RESIZE, or for writes when AUTO_GROW is active",
         cmdn (w->cmd), w->offset, w->count, w->cookie);

  /* The answer to set size, query and unsubscribe is the size chunk
   * itself, with DONE: a client sees a missing DONE at once (RZ-CLI-34).
   */
  if (w->known && w->cmd == NBD_CMD_RESIZE && nbdp_rz_size_reply (st) &&
      !(w->chunk_flags & NBD_REPLY_FLAG_DONE) &&
      (w->cmd_flags & (NBD_CMD_FLAG_RESIZE_QUERY |
                       NBD_CMD_FLAG_RESIZE_NOTIFY))
      != NBD_CMD_FLAG_RESIZE_NOTIFY) {
    uint16_t f = w->cmd_flags & (NBD_CMD_FLAG_RESIZE_QUERY |
                                 NBD_CMD_FLAG_RESIZE_NOTIFY);
    add (out, f == 0 ? "RZ-SET-12" : f == NBD_CMD_FLAG_RESIZE_QUERY
         ? "RZ-QUERY-1" : "RZ-SUB-11", "RZ-CLI-34", MUST, true,
         "sent %s (cookie %" PRIu64 "); its NBD_REPLY_TYPE_RESIZE chunk "
         "has flags 0x%x, without NBD_REPLY_FLAG_DONE; expected the size "
         "chunk to end the reply (DONE)", f == 0 ? "a set size"
         : f == NBD_CMD_FLAG_RESIZE_QUERY ? "a query" : "an unsubscribe",
         w->cookie, w->chunk_flags);
  }
  if (w->known && w->extended_hdr && w->hdr_offset != w->offset)
    add (out, "RZ-EH-3", NULL, MUST, false,
         "sent %s offset %" PRIu64 " (cookie %" PRIu64 "); the extended "
         "header of its NBD_REPLY_TYPE_RESIZE chunk carries offset %" PRIu64
         "; expected the request's offset", cmdn (w->cmd), w->offset,
         w->cookie, w->hdr_offset);

  if (!decoded)
    return false;
  if (ch->events & ~NBD_RESIZE_MASK_EVENTS)
    add (out, "RZ-VAL-2", NULL, MUST, false,
         "NBD_REPLY_TYPE_RESIZE chunk (cookie %" PRIu64 ") has events %s; "
         "expected no reserved bit (outside 0x%02" PRIx32 ")", w->cookie,
         nbdp_rz_events_str (eb, sizeof eb, ch->events),
         NBD_RESIZE_MASK_EVENTS);
  if (ch->size > NBD_RESIZE_SIZE_MAX)
    add (out, "RZ-VAL-3", NULL, MUST, false,
         "NBD_REPLY_TYPE_RESIZE chunk (cookie %" PRIu64 ") reports size %"
         PRIu64 "; expected at most NBD_RESIZE_SIZE_MAX (2^63-1)",
         w->cookie, ch->size);
  else if (st->info.present && st->info.granularity != 0 &&
           ch->size % st->info.granularity != 0)
    add (out, "RZ-INFO-8", "RZ-CLI-33", MUST, true,
         "NBD_REPLY_TYPE_RESIZE chunk (cookie %" PRIu64 ", %s) reports "
         "size %" PRIu64 ", not a multiple of the granularity %" PRIu32
         " in NBD_INFO_RESIZE; expected every size a multiple of it",
         w->cookie, cmdn (w->cmd), ch->size, st->info.granularity);
  return true;
}

/* Event checks shared by answers to set size, growing writes and
 * notifications: GREW/SHRANK (RZ-CHUNK-5), INITIAL (RZ-CHUNK-6), ZEROED
 * (RZ-CHUNK-7, RZ-CHUNK-12).  what names the chunk for messages.
 */
static void
check_change_events (const struct nbdp_rz_state *st, const char *what,
                     uint64_t prev, const struct nbdp_rz_chunk *ch,
                     struct nbdp_rz_violations *out)
{
  uint32_t ev = defined_events (ch->events);
  uint32_t want = 0;
  char eb[96];

  if (ch->size > prev)
    want = NBD_RESIZE_EV_GREW;
  else if (ch->size < prev)
    want = NBD_RESIZE_EV_SHRANK;
  if ((ev & (NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_SHRANK)) != want)
    add (out, "RZ-CHUNK-5", NULL, MUST, false,
         "%s: previous size %" PRIu64 ", reported size %" PRIu64 ", events "
         "%s; expected %s", what, prev, ch->size,
         nbdp_rz_events_str (eb, sizeof eb, ch->events),
         want == NBD_RESIZE_EV_GREW ? "GREW and not SHRANK"
         : want ? "SHRANK and not GREW" : "neither GREW nor SHRANK");
  if (ev & NBD_RESIZE_EV_INITIAL)
    add (out, "RZ-CHUNK-6", NULL, MUST, false,
         "%s: events %s include INITIAL; expected INITIAL only in snapshot "
         "chunks", what, nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if ((ev & NBD_RESIZE_EV_ZEROED) && !(ev & NBD_RESIZE_EV_GREW))
    add (out, "RZ-CHUNK-12", NULL, MUST, false,
         "%s: events %s have ZEROED without GREW", what,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if ((ev & NBD_RESIZE_EV_GREW) && !(ev & NBD_RESIZE_EV_ZEROED) &&
      st->info.present && (st->info.capabilities & NBD_RESIZE_F_ZERO_FILL))
    add (out, "RZ-CHUNK-7", NULL, MUST, false,
         "%s: events %s report a growth without ZEROED although ZERO_FILL "
         "is in the capabilities; expected ZEROED", what,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
}

/* The sequence of a chunk reporting a change must come after the last one
 * seen on this connection (RZ-SEQ-1); one reporting no change must not go
 * back; the same sequence must mean the same size (RZ-SEQ-2).
 */
static void
check_sequence (const struct nbdp_rz_state *st, const char *what,
                const struct nbdp_rz_chunk *ch, bool changed,
                struct nbdp_rz_violations *out)
{
  if (!st->have_seq)
    return;
  if (ch->sequence == st->seq && ch->size != st->size)
    add (out, "RZ-SEQ-2", NULL, MUST, false,
         "%s: sequence %" PRIu32 " with size %" PRIu64 "; the same sequence "
         "number came earlier with size %" PRIu64 "; expected a sequence "
         "number that belongs to the size", what, ch->sequence, ch->size,
         st->size);
  else if (changed && !nbdp_rz_seq_after (st->seq, ch->sequence))
    add (out, "RZ-SEQ-1", NULL, MUST, false,
         "%s: the size changed (%" PRIu64 " -> %" PRIu64 ") but sequence %"
         PRIu32 " is not after the last one seen, %" PRIu32 "; expected "
         "the sequence to advance at every size change", what, st->size,
         ch->size, ch->sequence, st->seq);
  else if (!changed && nbdp_rz_seq_after (ch->sequence, st->seq))
    add (out, "RZ-SEQ-1", NULL, MUST, false,
         "%s: sequence %" PRIu32 " is before the last one seen, %" PRIu32
         "; expected sequence numbers never to go back", what, ch->sequence,
         st->seq);
}

void
nbdp_rz_check_set_reply (const struct nbdp_rz_state *st, uint64_t requested,
                         uint64_t old, const struct nbdp_rz_reply *rep,
                         struct nbdp_rz_violations *out)
{
  bool sr = nbdp_rz_size_reply (st);
  const struct nbdp_rz_chunk *ch = &rep->chunk;
  uint64_t g = nbdp_rz_granularity (st), ru = 0;
  bool ru_ok;
  uint32_t ev = defined_events (ch->events);
  char what[160], eb[96];

  snprintf (what, sizeof what, "sent set size %" PRIu64 " (old size %"
            PRIu64 ", G = %" PRIu64 ")", requested, old, g);
  if (rep->error_offset)
    add (out, "RZ-REQ-7", NULL, MUST, false,
         "%s; received NBD_REPLY_TYPE_ERROR_OFFSET; expected no such chunk "
         "for NBD_CMD_RESIZE", what);
  if (rep->error) {
    if (sr && rep->n_resize > 0)
      add (out, "RZ-SET-12", NULL, MUST, false,
           "%s; received a size chunk and then error %s; expected either "
           "a single size chunk with DONE or an error", what,
           nbdp_name_of_error (rep->error) ? nbdp_name_of_error (rep->error)
           : "?");
    return;
  }
  if (!sr) {
    if (!rep->simple && rep->n_resize == 0 &&
        (rep->n_none != 1 || rep->n_other != 0))
      add (out, "RZ-SET-11", NULL, MUST, false,
           "%s with SIZE_REPLY not active; the successful reply had %u "
           "NONE and %u other chunks; expected a simple reply or a single "
           "NBD_REPLY_TYPE_NONE with DONE", what, rep->n_none, rep->n_other);
    return;
  }
  if (rep->n_resize == 0) {
    add (out, "RZ-SET-12", NULL, MUST, false,
         "%s with SIZE_REPLY active; the reply succeeded (%s) without an "
         "NBD_REPLY_TYPE_RESIZE chunk; expected exactly one size chunk with "
         "DONE", what, rep->simple ? "simple reply" : "NONE chunk");
    return;
  }
  if (!rep->resize_done)
    add (out, "RZ-SET-12", "RZ-CLI-34", MUST, true,
         "%s; the NBD_REPLY_TYPE_RESIZE chunk lacks NBD_REPLY_FLAG_DONE; "
         "expected the size chunk itself to end the reply", what);
  else if (rep->n_resize > 1 || rep->n_none > 0 || rep->n_other > 0)
    add (out, "RZ-SET-12", NULL, MUST, false,
         "%s; the reply had %u size chunks, %u NONE and %u other chunks; "
         "expected exactly one size chunk with DONE and nothing else", what,
         rep->n_resize, rep->n_none, rep->n_other);

  ru_ok = nbdp_rz_roundup (requested, g, &ru);
  if (requested > old) {
    if (ru_ok && ch->size > ru)
      add (out, "RZ-SET-14", NULL, MUST, false,
           "%s; reported size %" PRIu64 "; expected roundup(%" PRIu64
           ") = %" PRIu64 ", or less if capped", what, ch->size, requested,
           ru);
    else if (ch->size <= old)
      add (out, "RZ-SET-15", NULL, MUST, false,
           "%s; the growth succeeded with size %" PRIu64 ", not larger "
           "than the old size; expected a failure when the cap does not "
           "allow any growth", what, ch->size);
    else if (ch->size % g != 0)
      add (out, "RZ-SET-15", NULL, MUST, false,
           "%s; capped size %" PRIu64 " is not a multiple of G; expected "
           "the largest multiple of G within the limits", what, ch->size);
  }
  else if (requested < old) {
    uint64_t expect = ru_ok && ru < old ? ru : old;
    if (ch->size < requested)
      add (out, "RZ-SET-5", NULL, MUST, false,
           "%s; reported size %" PRIu64 " is smaller than requested; "
           "expected %" PRIu64, what, ch->size, expect);
    else if (ch->size != expect)
      add (out, "RZ-SET-16", NULL, MUST, false,
           "%s; reported size %" PRIu64 "; expected %" PRIu64 " (roundup "
           "of the request, or the old size when that is not smaller)",
           what, ch->size, expect);
  }
  else if (ch->size != old)
    add (out, "RZ-SET-4", NULL, MUST, false,
         "%s, the current size; reported size %" PRIu64 "; expected success "
         "without a change", what, ch->size);

  check_change_events (st, what, old, ch, out);
  if (ev & NBD_RESIZE_EV_REMOTE)
    add (out, "RZ-CHUNK-9", NULL, MUST, false,
         "%s; the answer has events %s including REMOTE; expected REMOTE "
         "only in notifications", what,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if (((ev & NBD_RESIZE_EV_CAPPED) != 0) !=
      (requested > old && ch->size < requested))
    add (out, "RZ-CHUNK-10", NULL, MUST, false,
         "%s; reported size %" PRIu64 " with events %s; expected CAPPED "
         "exactly when a growth is reported below the requested size", what,
         ch->size, nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if (((ev & NBD_RESIZE_EV_ROUNDED) != 0) != (ch->size > requested))
    add (out, "RZ-CHUNK-11", NULL, MUST, false,
         "%s; reported size %" PRIu64 " with events %s; expected ROUNDED "
         "exactly when the reported size is above the requested one", what,
         ch->size, nbdp_rz_events_str (eb, sizeof eb, ch->events));
  check_sequence (st, what, ch, ch->size != st->size, out);
}

void
nbdp_rz_learn_set_reply (struct nbdp_rz_state *st, uint64_t requested,
                         const struct nbdp_rz_reply *rep)
{
  if (rep->error)
    return;
  if (rep->n_resize > 0) {
    nbdp_rz_learn_chunk (st, &rep->chunk);
    return;
  }
  st->size = requested;               /* RZ-CLI-18 */
}

void
nbdp_rz_check_set_effect (const struct nbdp_rz_state *st,
                          uint64_t requested, uint64_t learned,
                          uint64_t observed, struct nbdp_rz_violations *out)
{
  const char *id;

  if (observed == learned)
    return;
  if (st->mode != NBDP_RZ_MODE_NEGOTIATED)
    id = (st->eflags & NBD_FLAG_CAN_MULTI_CONN) ? "RZ-MC-7" : "RZ-LEG-2";
  else if (!nbdp_rz_size_reply (st))
    id = "RZ-SET-8";
  else
    id = "RZ-MC-2";
  add (out, id, NULL, MUST, false,
       "sent set size %" PRIu64 ", which succeeded (%s mode, size %s); "
       "another connection then saw size %" PRIu64 "; expected %" PRIu64,
       requested, nbdp_rz_mode_name (st->mode),
       nbdp_rz_size_reply (st) ? "reported by the size chunk"
       : "exactly the requested one", observed, learned);
}

void
nbdp_rz_check_query_reply (const struct nbdp_rz_state *st,
                           const struct nbdp_rz_reply *rep,
                           struct nbdp_rz_violations *out)
{
  const struct nbdp_rz_chunk *ch = &rep->chunk;
  char eb[96];

  if (rep->error_offset)
    add (out, "RZ-REQ-7", NULL, MUST, false,
         "sent a query; received NBD_REPLY_TYPE_ERROR_OFFSET; expected no "
         "such chunk for NBD_CMD_RESIZE");
  if (rep->error)
    return;
  if (rep->n_resize == 0) {
    add (out, "RZ-QUERY-1", NULL, MUST, false,
         "sent a query (RESIZE_QUERY); the reply succeeded with %s and no "
         "size chunk; expected exactly one NBD_REPLY_TYPE_RESIZE with DONE",
         rep->simple ? "a simple reply" : "chunks");
    return;
  }
  if (!rep->resize_done)
    add (out, "RZ-QUERY-1", "RZ-CLI-34", MUST, true,
         "sent a query (RESIZE_QUERY); the NBD_REPLY_TYPE_RESIZE chunk "
         "lacks NBD_REPLY_FLAG_DONE; expected exactly one size chunk with "
         "DONE");
  else if (rep->n_resize > 1 || rep->n_none || rep->n_other)
    add (out, "RZ-QUERY-1", NULL, MUST, false,
         "sent a query; the reply had %u size chunks, %u NONE and %u other "
         "chunks; expected exactly one size chunk with DONE",
         rep->n_resize, rep->n_none, rep->n_other);
  if (defined_events (ch->events) != NBD_RESIZE_EV_INITIAL)
    add (out, "RZ-QUERY-2", NULL, MUST, false,
         "sent a query; the answer has events %s; expected INITIAL and "
         "nothing else", nbdp_rz_events_str (eb, sizeof eb, ch->events));
  check_sequence (st, "sent a query", ch, false, out);
}

void
nbdp_rz_learn_chunk (struct nbdp_rz_state *st,
                     const struct nbdp_rz_chunk *ch)
{
  st->size = ch->size;
  st->have_seq = true;
  st->seq = ch->sequence;
}

/* ---- subscriptions ------------------------------------------------- */

void
nbdp_rz_sub_start (struct nbdp_rz_state *st, uint64_t cookie,
                   bool own_changes)
{
  memset (&st->sub, 0, sizeof st->sub);
  st->sub.active = true;
  st->sub.cookie = cookie;
  st->sub.own_changes = own_changes;
}

/* Notifications within the last second, judged at now_ms before this
 * one is counted: flood (more than the client limit) and rate (more
 * than the server's recommended rate, with one of slack for timing).
 */
static void
flood_state (const struct nbdp_rz_sub *sub, uint64_t now_ms, bool *flood,
             bool *rate)
{
  uint64_t n = sub->notifications;

  *flood = *rate = false;
  if (n >= NBD_RESIZE_CLIENT_FLOOD_LIMIT) {
    uint64_t t = sub->ring[(n - NBD_RESIZE_CLIENT_FLOOD_LIMIT) %
                           NBDP_RZ_FLOOD_RING];
    *flood = now_ms - t < 1000;
  }
  if (n >= NBD_RESIZE_NOTIFY_RATE_DEFAULT + 1) {
    uint64_t t = sub->ring[(n - NBD_RESIZE_NOTIFY_RATE_DEFAULT - 1) %
                           NBDP_RZ_FLOOD_RING];
    *rate = now_ms - t < 1000;
  }
}

void
nbdp_rz_check_sub_chunk (const struct nbdp_rz_state *st,
                         const struct nbdp_rz_chunk *ch, bool done,
                         uint64_t now_ms, struct nbdp_rz_violations *out)
{
  const struct nbdp_rz_sub *sub = &st->sub;
  uint32_t ev = defined_events (ch->events);
  char what[128], eb[96];
  bool flood, rate;

  if (!sub->started) {
    snprintf (what, sizeof what, "sent a subscribe (cookie %" PRIu64 "); "
              "its first chunk", sub->cookie);
    if (done || ev != NBD_RESIZE_EV_INITIAL)
      add (out, "RZ-SUB-2", NULL, MUST, false,
           "%s has flags %s and events %s; expected a snapshot with flags "
           "0 and events INITIAL only", what, done ? "DONE" : "0",
           nbdp_rz_events_str (eb, sizeof eb, ch->events));
    check_sequence (st, what, ch, false, out);
    return;
  }
  snprintf (what, sizeof what, "subscription on cookie %" PRIu64 ": "
            "notification %" PRIu64, sub->cookie, sub->notifications + 1);
  if (done)
    add (out, "RZ-SUB-4", NULL, MUST, false,
         "%s (size %" PRIu64 ") has NBD_REPLY_FLAG_DONE; expected DONE only "
         "on the chunk that ends the subscription (NONE or ERROR)", what,
         ch->size);
  if (ch->size == sub->size)
    add (out, "RZ-FLOOD-1", "RZ-CLI-30", MUST, true,
         "%s reports size %" PRIu64 ", the same as the previous chunk "
         "(sequence %" PRIu32 " after %" PRIu32 "); expected notifications "
         "only of a different size", what, ch->size, ch->sequence,
         sub->sequence);
  if (!nbdp_rz_seq_after (sub->sequence, ch->sequence))
    add (out, "RZ-SEQ-3", "RZ-CLI-31", MUST, true,
         "%s has sequence %" PRIu32 " (size %" PRIu64 "); the previous "
         "chunk had %" PRIu32 "; expected a sequence after it (serial "
         "arithmetic, window 2^31)", what, ch->sequence, ch->size,
         sub->sequence);
  check_change_events (st, what, sub->size, ch, out);
  if (ev & (NBD_RESIZE_EV_CAPPED | NBD_RESIZE_EV_ROUNDED))
    add (out, (ev & NBD_RESIZE_EV_CAPPED) ? "RZ-CHUNK-10" : "RZ-CHUNK-11",
         NULL, MUST, false,
         "%s has events %s; expected CAPPED and ROUNDED only in answers to "
         "set size (and ROUNDED in size chunks of growing writes)", what,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if (!sub->own_changes && ch->size != sub->size &&
      !(ev & NBD_RESIZE_EV_REMOTE))
    add (out, "RZ-CHUNK-9", NULL, MUST, false,
         "%s (size %" PRIu64 ", events %s) reports a change although this "
         "connection made none; expected REMOTE", what, ch->size,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
  flood_state (sub, now_ms, &flood, &rate);
  if (flood && !sub->flood_reported)
    add (out, "RZ-FLOOD-3", "RZ-CLI-32", SHOULD, true,
         "%s: more than %d notifications within one second on one "
         "subscription; expected at most %d per second",
         what, NBD_RESIZE_CLIENT_FLOOD_LIMIT,
         NBD_RESIZE_NOTIFY_RATE_DEFAULT);
  else if (rate && !sub->rate_reported)
    add (out, "RZ-FLOOD-3", NULL, SHOULD, false,
         "%s: %d notifications arrived within one second; expected at most "
         "%d per second", what, NBD_RESIZE_NOTIFY_RATE_DEFAULT + 2,
         NBD_RESIZE_NOTIFY_RATE_DEFAULT);
}

void
nbdp_rz_sub_chunk (struct nbdp_rz_state *st, const struct nbdp_rz_chunk *ch,
                   uint64_t now_ms)
{
  struct nbdp_rz_sub *sub = &st->sub;

  if (!sub->started)
    sub->started = true;
  else {
    bool flood, rate;

    flood_state (sub, now_ms, &flood, &rate);
    if (flood)
      sub->flood_reported = true;
    if (rate)
      sub->rate_reported = true;
    sub->ring[sub->notifications % NBDP_RZ_FLOOD_RING] = now_ms;
    sub->notifications++;
  }
  sub->size = ch->size;
  sub->sequence = ch->sequence;
  nbdp_rz_learn_chunk (st, ch);
}

void
nbdp_rz_check_sub_end (const struct nbdp_rz_state *st, uint16_t type,
                       uint32_t error, bool done,
                       struct nbdp_rz_violations *out)
{
  const struct nbdp_rz_sub *sub = &st->sub;
  const char *en = nbdp_name_of_error (error);

  if (!done)
    return;
  if (!sub->started) {
    if (type == NBD_REPLY_TYPE_NONE)
      add (out, "RZ-SUB-2", NULL, MUST, false,
           "sent a subscribe (cookie %" PRIu64 "); it was answered by "
           "NBD_REPLY_TYPE_NONE with DONE before any snapshot chunk; "
           "expected a snapshot chunk (or an error)", sub->cookie);
    return;
  }
  if (sub->disc_sent) {
    if (type != NBD_REPLY_TYPE_NONE)
      add (out, "RZ-SUB-13", NULL, MUST, false,
           "sent NBD_CMD_DISC with the subscription on cookie %" PRIu64
           " active; it ended with an error chunk (%s); expected "
           "NBD_REPLY_TYPE_NONE with DONE", sub->cookie, en ? en : "?");
    return;
  }
  if (sub->unsubscribing) {
    if (type != NBD_REPLY_TYPE_NONE)
      add (out, "RZ-SUB-12", NULL, MUST, false,
           "sent an unsubscribe; the subscription on cookie %" PRIu64
           " ended with an error chunk (%s); expected NBD_REPLY_TYPE_NONE "
           "with DONE", sub->cookie, en ? en : "?");
    return;
  }
  if (type != NBD_REPLY_TYPE_NONE && error == NBD_ESHUTDOWN)
    return;                             /* RZ-SUB-14: shutdown */
  add (out, "RZ-SUB-15", NULL, MUST, false,
       "the subscription on cookie %" PRIu64 " ended (%s) although the "
       "client sent neither an unsubscribe nor NBD_CMD_DISC; expected it "
       "to stay until then (or NBD_ESHUTDOWN on shutdown)", sub->cookie,
       type == NBD_REPLY_TYPE_NONE ? "NBD_REPLY_TYPE_NONE"
       : en ? en : "an error");
}

void
nbdp_rz_sub_end (struct nbdp_rz_state *st)
{
  st->have_ended_cookie = true;
  st->ended_cookie = st->sub.cookie;
  st->sub.active = false;
}

void
nbdp_rz_check_unsub_reply (const struct nbdp_rz_state *st,
                           const struct nbdp_rz_reply *rep,
                           bool sub_still_active,
                           struct nbdp_rz_violations *out)
{
  char eb[96];

  if (rep->error_offset)
    add (out, "RZ-REQ-7", NULL, MUST, false,
         "sent an unsubscribe; received NBD_REPLY_TYPE_ERROR_OFFSET; "
         "expected no such chunk for NBD_CMD_RESIZE");
  if (rep->error)
    return;                     /* see nbdp_rz_check_resize_outcome */
  if (sub_still_active)
    add (out, "RZ-SUB-12", NULL, MUST, false,
         "sent an unsubscribe; its answer came while the subscription on "
         "cookie %" PRIu64 " had not ended; expected NONE with DONE on the "
         "subscription cookie first", st->sub.cookie);
  if (rep->n_resize == 0) {
    add (out, "RZ-SUB-11", NULL, MUST, false,
         "sent an unsubscribe; it succeeded with %s and no size chunk; "
         "expected exactly one snapshot chunk with DONE",
         rep->simple ? "a simple reply" : "chunks");
    return;
  }
  if (!rep->resize_done)
    add (out, "RZ-SUB-11", "RZ-CLI-34", MUST, true,
         "sent an unsubscribe; its NBD_REPLY_TYPE_RESIZE chunk lacks "
         "NBD_REPLY_FLAG_DONE; expected exactly one snapshot chunk with "
         "DONE");
  else if (rep->n_resize > 1 || rep->n_none || rep->n_other)
    add (out, "RZ-SUB-11", NULL, MUST, false,
         "sent an unsubscribe; the reply had %u size chunks, %u NONE and "
         "%u other chunks; expected exactly one snapshot chunk with DONE",
         rep->n_resize, rep->n_none, rep->n_other);
  if (defined_events (rep->chunk.events) != NBD_RESIZE_EV_INITIAL)
    add (out, "RZ-SUB-11", NULL, MUST, false,
         "sent an unsubscribe; the answer has events %s; expected INITIAL "
         "and nothing else",
         nbdp_rz_events_str (eb, sizeof eb, rep->chunk.events));
  check_sequence (st, "sent an unsubscribe", &rep->chunk, false, out);
}

void
nbdp_rz_check_after_end (const struct nbdp_rz_state *st, uint64_t cookie,
                         uint16_t type, struct nbdp_rz_violations *out)
{
  const char *tn = nbdp_name_of_reply_type (type);

  if (st->have_ended_cookie && cookie == st->ended_cookie)
    add (out, "RZ-SUB-16", NULL, MUST, false,
         "received %s on cookie %" PRIu64 " after the chunk that ended its "
         "subscription; expected nothing more on that cookie",
         tn ? tn : "a chunk", cookie);
}

/* ---- writes -------------------------------------------------------- */

void
nbdp_rz_check_write_reply (const struct nbdp_rz_state *st, uint64_t off,
                           uint64_t len, uint64_t old,
                           const struct nbdp_rz_reply *rep,
                           struct nbdp_rz_violations *out)
{
  bool grows, sr = nbdp_rz_size_reply (st);
  uint64_t end, ru = 0;
  const struct nbdp_rz_chunk *ch = &rep->chunk;
  uint32_t ev = defined_events (ch->events);
  char what[160], eb[96];

  if (off > UINT64_MAX - len)
    return;                     /* the core rules handle the wrap */
  end = off + len;
  grows = end > old;
  snprintf (what, sizeof what, "sent a write at offset %" PRIu64 " length %"
            PRIu64 " (end %" PRIu64 ", old size %" PRIu64 ")", off, len,
            end, old);

  if (rep->error == 0 && grows && !auto_grow (st)) {
    const char *id = st->mode == NBDP_RZ_MODE_LEGACY ? "RZ-LEG-4"
      : st->encoding == NBDP_RZ_ENC_FLAG_ONLY ? "RZ-B1-1" : "RZ-AUTO-1";
    add (out, id, NULL, MUST, false,
         "%s with AUTO_GROW not active (mode %s); the write past the end "
         "succeeded; expected it to fail without growing the export", what,
         nbdp_rz_mode_name (st->mode));
  }
  if (grows && auto_grow (st) && rep->error_offset && rep->n_resize == 0)
    add (out, "RZ-AUTO-8", NULL, MUST, false,
         "%s with AUTO_GROW active; the failure came as "
         "NBD_REPLY_TYPE_ERROR_OFFSET; expected a simple error or "
         "NBD_REPLY_TYPE_ERROR for a failed growth", what);
  if (!sr)
    return;
  if (rep->n_resize > 0 && !grows) {
    add (out, "RZ-AUTO-12", NULL, MUST, false,
         "%s, not past the end; received an NBD_REPLY_TYPE_RESIZE chunk "
         "(size %" PRIu64 "); expected none for a write that did not grow "
         "the export", what, ch->size);
    return;
  }
  if (!grows || !auto_grow (st))
    return;
  if (rep->n_resize == 0) {
    if (rep->error == 0)
      add (out, "RZ-AUTO-9", NULL, MUST, false,
           "%s with AUTO_GROW and SIZE_REPLY active; the write succeeded "
           "without an NBD_REPLY_TYPE_RESIZE chunk; expected exactly one "
           "before the final chunk", what);
    return;
  }
  if (rep->n_resize > 1 || rep->resize_done || !rep->resize_before_final)
    add (out, "RZ-AUTO-9", NULL, MUST, false,
         "%s; received %u size chunks%s; expected exactly one, with flags "
         "0, before the final chunk", what, rep->n_resize,
         rep->resize_done ? ", one with DONE" : "");
  if (!nbdp_rz_roundup (end, nbdp_rz_granularity (st), &ru))
    ru = end;
  if (ch->size != ru)
    add (out, "RZ-AUTO-2", NULL, MUST, false,
         "%s; the size chunk reports %" PRIu64 "; expected roundup(%" PRIu64
         ") = %" PRIu64 " (G = %" PRIu64 ")", what, ch->size, end, ru,
         nbdp_rz_granularity (st));
  check_change_events (st, what, old, ch, out);
  if (ev & NBD_RESIZE_EV_CAPPED)
    add (out, "RZ-CHUNK-10", NULL, MUST, false,
         "%s; the size chunk has events %s; expected no CAPPED for a "
         "growing write (a capped growth fails)", what,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if (((ev & NBD_RESIZE_EV_ROUNDED) != 0) != (ch->size > end))
    add (out, "RZ-CHUNK-11", NULL, MUST, false,
         "%s; the size chunk reports %" PRIu64 " with events %s; expected "
         "ROUNDED exactly when the size is above the end of the write",
         what, ch->size, nbdp_rz_events_str (eb, sizeof eb, ch->events));
  if (ev & NBD_RESIZE_EV_REMOTE)
    add (out, "RZ-CHUNK-9", NULL, MUST, false,
         "%s; the size chunk has events %s including REMOTE; expected "
         "REMOTE only in notifications", what,
         nbdp_rz_events_str (eb, sizeof eb, ch->events));
  check_sequence (st, what, ch, ch->size != st->size, out);
}

void
nbdp_rz_learn_write_reply (struct nbdp_rz_state *st, uint64_t off,
                           uint64_t len, const struct nbdp_rz_reply *rep)
{
  if (rep->n_resize > 0 && nbdp_rz_size_reply (st)) {
    nbdp_rz_learn_chunk (st, &rep->chunk);
    return;
  }
  /* Without a size chunk a client knows only that the size is now at
   * least the end of the write (section 8).
   */
  if (rep->error == 0 && off <= UINT64_MAX - len && off + len > st->size &&
      auto_grow (st))
    st->size = off + len;
}

void
nbdp_rz_check_new_bytes (const struct nbdp_rz_state *st, bool zeroed_event,
                         uint64_t off, const void *buf, size_t len,
                         struct nbdp_rz_violations *out)
{
  const unsigned char *p = buf;
  size_t i;
  bool zero_fill = st->info.present &&
    (st->info.capabilities & NBD_RESIZE_F_ZERO_FILL);

  if (!zero_fill && !zeroed_event)
    return;
  for (i = 0; i < len; i++)
    if (p[i] != 0)
      break;
  if (i == len)
    return;
  add (out, zero_fill ? "RZ-ZERO-1" : "RZ-CHUNK-8", NULL, MUST, false,
       "read %zu newly exposed bytes at offset %" PRIu64 " after a growth "
       "(%s); byte at offset %" PRIu64 " is 0x%02x; expected zero",
       len, off, zero_fill ? "ZERO_FILL in the capabilities"
       : "the size chunk said ZEROED", off + i, p[i]);
}

/* ---- outcome of NBD_CMD_RESIZE -------------------------------------- */

void
nbdp_rz_check_resize_outcome (const struct nbdp_rz_state *st,
                              uint16_t flags, uint64_t offset,
                              uint64_t count, uint32_t error,
                              struct nbdp_rz_violations *out)
{
  bool q = flags & NBD_CMD_FLAG_RESIZE_QUERY;
  bool n = flags & NBD_CMD_FLAG_RESIZE_NOTIFY;
  bool set = !q && !n;
  bool neg = st->mode == NBDP_RZ_MODE_NEGOTIATED;
  bool ro = st->eflags & NBD_FLAG_READ_ONLY;
  uint64_t g = nbdp_rz_granularity (st);
  const char *must_id = NULL;     /* a MUST-fail condition */
  bool einval = false;            /* ... whose code must be NBD_EINVAL */
  uint32_t should_code = 0;       /* recommended code (RZ-REQ-8/LEG-6) */
  const char *should_id = NULL;
  const char *why = "";
  const char *en = nbdp_name_of_error (error);
  char fb[96], form[320];

  nbdp_cmd_flags_str (fb, sizeof fb, flags);
  snprintf (form, sizeof form, "sent NBD_CMD_RESIZE flags %s offset %"
            PRIu64 " length %" PRIu64 " (%s mode, size %" PRIu64 ")", fb,
            offset, count, nbdp_rz_mode_name (st->mode), st->size);

#define MUSTFAIL(id, inval, text) \
  do { if (!must_id) { must_id = (id); einval = (inval); why = (text); } } \
  while (0)
#define SHOULDCODE(id, code) \
  do { if (!should_id) { should_id = (id); should_code = (code); } } \
  while (0)

  if (!(st->eflags & NBD_FLAG_SEND_RESIZE))
    MUSTFAIL ("RZ-FLAG-4", true, "NBD_FLAG_SEND_RESIZE is not set");
  else if (neg) {
    if (flags & ~(uint16_t) NBD_RESIZE_MASK_CMD_FLAGS)
      MUSTFAIL ("RZ-REQ-1", true, "a command flag other than FUA, "
                "RESIZE_QUERY and RESIZE_NOTIFY");
    else if (q && !n && !(st->active & NBD_RESIZE_F_QUERY))
      MUSTFAIL ("RZ-REQ-2", true, "a query while QUERY is not active");
    else if (n && !(st->active & NBD_RESIZE_F_NOTIFY))
      MUSTFAIL ("RZ-REQ-3", true, "RESIZE_NOTIFY while NOTIFY is not "
                "active");
    else if (count != 0)
      MUSTFAIL ("RZ-REQ-4", true, "length is not 0");
    else if (!set && offset != 0)
      MUSTFAIL ("RZ-REQ-5", true, "offset is not 0 in a query, subscribe "
                "or unsubscribe");
    else if (n && !q && st->sub.active)
      MUSTFAIL ("RZ-SUB-1", true, "a subscription is already active");
    else if (n && q && !st->sub.active)
      MUSTFAIL ("RZ-SUB-9", true, "no subscription is active");
    else if (set) {
      bool grow = offset > st->size, shrink = offset < st->size;
      if (ro) {
        MUSTFAIL ("RZ-RO-2", false, "the export is read-only");
        SHOULDCODE ("RZ-REQ-8", NBD_EPERM);
      }
      else if (!(st->active & (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK))) {
        MUSTFAIL ("RZ-SET-18", false, "neither GROW nor SHRINK is active");
        SHOULDCODE ("RZ-REQ-8", NBD_EPERM);
      }
      else if (grow && !(st->active & NBD_RESIZE_F_GROW)) {
        MUSTFAIL ("RZ-SET-1", false, "a growth while GROW is not active");
        SHOULDCODE ("RZ-REQ-8", NBD_EPERM);
      }
      else if (shrink && !(st->active & NBD_RESIZE_F_SHRINK)) {
        MUSTFAIL ("RZ-SET-2", false, "a shrink while SHRINK is not "
                  "active");
        SHOULDCODE ("RZ-REQ-8", NBD_EPERM);
      }
      else if (offset > NBD_RESIZE_SIZE_MAX) {
        MUSTFAIL ("RZ-SET-3", false, "the size is above "
                  "NBD_RESIZE_SIZE_MAX");
        SHOULDCODE ("RZ-REQ-8", NBD_EINVAL);
      }
      else if (!nbdp_rz_size_reply (st) && offset != st->size &&
               offset % g != 0) {
        MUSTFAIL ("RZ-SET-9", false, "the size is not a multiple of G "
                  "while SIZE_REPLY is not active");
        SHOULDCODE ("RZ-REQ-8", NBD_EINVAL);
      }
    }
  }
  else {
    /* Legacy mode (also B1 with NBD_FLAG_SEND_RESIZE). */
    if (flags & ~(uint16_t) NBD_CMD_FLAG_FUA)
      MUSTFAIL ("RZ-LEG-1", true, "a command flag other than FUA in legacy "
                "mode");
    else if (ro)
      MUSTFAIL ("RZ-RO-2", false, "the export is read-only");
    else if (offset > NBD_RESIZE_SIZE_MAX) {
      MUSTFAIL ("RZ-SET-3", false, "the size is above NBD_RESIZE_SIZE_MAX");
      SHOULDCODE ("RZ-LEG-6", NBD_EINVAL);
    }
    else if (offset != st->size && offset % g != 0) {
      MUSTFAIL ("RZ-SET-9", false, "the size is not a multiple of G");
      SHOULDCODE ("RZ-LEG-6", NBD_EINVAL);
    }
  }
#undef MUSTFAIL
#undef SHOULDCODE

  if (must_id) {
    if (error == 0)
      add (out, must_id, NULL, MUST, false,
           "%s: %s; the request succeeded; expected it to fail%s", form,
           why, einval ? " with NBD_EINVAL" : "");
    else if (einval && error != NBD_EINVAL)
      add (out, must_id, NULL, MUST, false,
           "%s: %s; it failed with %s; expected NBD_EINVAL", form, why,
           en ? en : "an unknown error");
    else if (should_id && error != should_code)
      add (out, should_id, NULL, SHOULD, false,
           "%s: %s; it failed with %s; expected %s", form, why,
           en ? en : "an unknown error",
           nbdp_name_of_error (should_code));
    return;
  }
  if (error == 0)
    return;
  if (neg && set && offset == st->size && !ro &&
      (st->active & (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK)))
    add (out, "RZ-SET-4", NULL, MUST, false,
         "%s, the current size; it failed with %s; expected success "
         "without a change", form, en ? en : "an unknown error");
  if (neg && n && q && st->sub.active)
    add (out, "RZ-SUB-10", NULL, MUST, false,
         "%s, an unsubscribe with NOTIFY active and the subscription on "
         "cookie %" PRIu64 " active; it failed with %s; expected the "
         "unsubscribe form accepted", form, st->sub.cookie,
         en ? en : "an unknown error");
}
