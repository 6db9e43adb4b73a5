/* nbd-conformance: the rule engine (see rules.h).  Every check names the
 * requirement it enforces; the IDs are those of specs/requirements.tsv and
 * are gathered in the table below so that a renumbering touches one place.
 * Nothing here does I/O; the only allocation is the in-flight table and
 * the per-request range lists.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-proto.h"
#include "codec.h"
#include "rules.h"

/* Requirement IDs (specs/requirements.tsv).  Where the catalogue has no
 * row for a rule (message formats stated without a key word), the closest
 * row is used and marked "gap".
 */
#define R_GREETING_MAGIC     "COMPAT-BASE-1"    /* gap: greeting magics */
#define R_GFLAGS_RESERVED    "FLAG-HS-3"
#define R_OPT_REPLY_MAGIC    "COMPAT-BASE-1"    /* gap: option reply magic */
#define R_OPT_REPLY_OPTION   "COMPAT-BASE-1"    /* gap: option echoed */
#define R_OPT_REPLY_UNASKED  "COMPAT-BASE-1"    /* gap: unsolicited reply */
#define R_OPT_REPLY_TYPE     "COMPAT-BASE-1"    /* gap: reply type per option */
#define R_ACK_LENGTH         "HS-FIX-3"         /* gap: NBD_REP_ACK has no data */
#define R_REP_SERVER_LEN     "REP-SERVER-1"
#define R_STRING_CHARS       "GEN-STR-1"
#define R_STRING_SHORT       "GEN-STR-2"
#define R_STRING_LEN         "GEN-STR-3"
#define R_INFO_LEN           "INFO-NAME-2"      /* gap: any NBD_REP_INFO >= 2 */
#define R_INFO_EXPORT_LEN    "INFO-EXPORT-1"
#define R_INFO_NAME_LEN      "INFO-NAME-2"
#define R_INFO_DESC_LEN      "INFO-DESC-1"
#define R_INFO_BSIZE_LEN     "INFO-BSIZE-2"
#define R_INFO_EXPORT_REQ    "REP-INFO-1"
#define R_INFO_ONCE          "REP-INFO-2"
#define R_UNKNOWN_NO_INFO    "OPT-GO-13"
#define R_BLOCK_SIZE_REQD    "OPT-GO-16"
#define R_GO_UNSUP_EH        "EH-OPT-2"
#define R_ABORT_ACK          "OPT-ABORT-1"
#define R_META_REPLY         "OPT-LMC-16"
#define R_META_UTF8          "REP-META-1"
#define R_META_ID_UNIQUE     "OPT-SMC-7"
#define R_META_LIST_ID_ZERO  "OPT-LMC-17"
#define R_FLAG_HAS_FLAGS     "FLAG-TX-4"
#define R_FLAG_DF            "FLAG-TX-9"
#define R_FLAG_FAST_ZERO     "FLAG-TX-11"
#define R_FLAG_BS_PAYLOAD    "EH-FLAG-1"
#define R_SZ_MIN_POW2        "SIZE-13"
#define R_SZ_MIN_64K         "SIZE-14"
#define R_SZ_PREF            "SIZE-17"
#define R_SZ_MAX             "SIZE-21"
#define R_SZ_MAX_1M          "SIZE-22"
#define R_SZ_SIZE_MULTIPLE   "SIZE-16"
#define R_REPLY_MAGIC        "TX-GEN-1"         /* gap: reply magics */
#define R_COOKIE             "TX-GEN-4"
#define R_AFTER_DONE         "SR-MSG-8"
#define R_SR_NOT_NEGOTIATED  "SR-MSG-1"
#define R_EH_NO_SIMPLE       "EH-SIMPLE-1"
#define R_EH_REPLY           "EH-REP-1"
#define R_EH_NOT_NEGOTIATED  "TX-GEN-1"         /* gap: extended without EH */
#define R_SIMPLE_READ_SR     "SR-MSG-3"
#define R_EXT_OFFSET         "EH-REP-3"
#define R_REPLY_FLAGS        "FLAG-REPLY-3"
#define R_NONE_DONE          "FLAG-REPLY-2"
#define R_NONE_LEN           "SR-NONE-1"
#define R_CHUNK_TYPE         "SR-TYPE-5"        /* gap: server sends unknown type */
#define R_CHUNK_CMD          "SR-TYPE-5"        /* gap: "valid as a reply to" */
#define R_DATA_LEN           "SR-DATA-1"
#define R_DATA_RANGE         "SR-DATA-2"
#define R_DATA_OVERLAP       "SR-DATA-3"
#define R_HOLE_LEN           "SR-HOLE-1"
#define R_HOLE_RANGE         "SR-HOLE-2"
#define R_HOLE_OVERLAP       "SR-HOLE-3"
#define R_HOLE_ZERO          "SR-HOLE-5"
#define R_CONTENT_AFTER_ERR  "CMD-READ-31"
#define R_DF_ONE             "CMD-READ-36"
#define R_READ_COVER         "CMD-READ-19"
#define R_PAYLOAD_MAX        "SR-TYPE-2"
#define R_BS_EXT_NO_EH       "EH-BS-2"
#define R_BS_COMPACT_EH      "EH-BS-6"
#define R_BS_LEN             "BS-CHUNK-1"
#define R_BS_EXT_LEN         "EH-BS-1"
#define R_BS_COUNT           "EH-BS-3"
#define R_BS_EXTENT_ZERO     "BS-CHUNK-3"
#define R_BS_EXT_EXTENT_ZERO "EH-BS-5"
#define R_BS_REQ_ONE_COUNT   "BS-CHUNK-4"
#define R_BS_REQ_ONE_LEN     "BS-CHUNK-5"
#define R_BS_SUM             "BS-CHUNK-6"
#define R_BS_CONTEXT         "BS-CHUNK-2"
#define R_BS_ONE_PER_CTX     "BS-CHUNK-2"
#define R_BS_MIN_BLOCK       "EH-BS-11"
#define R_BS_MIN_BLOCK_SR    "CMD-BS-14"
#define R_BS_STATUS_HIGH     "EH-BS-7"
#define R_BS_MAX_EXTENTS     "BS-CHUNK-8"
#define R_ERR_LEN            "SR-ERR-1"
#define R_ERROFF_LEN         "SR-ERROFF-1"
#define R_ERR_MSG_LEN        "SR-ERR-4"
#define R_ERR_NONZERO        "SR-ERR-5"
#define R_ERROFF_NONZERO     "SR-ERROFF-6"
#define R_ERR_OFFSET_RANGE   "SR-ERROFF-2"
#define R_ERR_ONCE           "SR-ERR-3"
#define R_ERR_MIX            "CMD-READ-32"
#define R_ERR_OFFSET_REPEAT  "SR-ERROFF-4"
#define R_ERR_VALUE          "ERR-11"           /* gap: defined error values */
#define R_C_COOKIE_UNIQUE    "TX-GEN-2"
#define R_C_FEATURE          "FLAG-TX-3"
#define R_C_BOUNDS           "SIZE-33"
#define R_C_ALIGN            "SIZE-31"
#define R_C_MAX_PAYLOAD      "SIZE-25"
#define R_C_MAGIC            "EH-OPT-17"
#define R_C_PAYLOAD_LEN_EH   "EH-REQ-1"
#define R_C_WRITE_PAYLOAD    "EH-REQ-2"
#define R_C_DISC_ZERO        "CMD-DISC-3"
#define R_C_FLUSH_ZERO       "CMD-FLUSH-3"
#define R_C_BS_CONTEXT       "CMD-BS-3"

/* ---- violation lists ------------------------------------------------ */

void
nbdp_violations_clear (struct nbdp_violations *vs)
{
  vs->n = 0;
  vs->dropped = 0;
}

void
nbdp_violation_add (struct nbdp_violations *vs, const char *id,
                    enum nbdp_level level, const char *fmt, ...)
{
  struct nbdp_violation *v;
  va_list ap;

  if (vs == NULL)
    return;
  if (vs->n >= NBDP_MAX_VIOLATIONS) {
    vs->dropped++;
    return;
  }
  v = &vs->v[vs->n++];
  v->id = id;
  v->level = level;
  va_start (ap, fmt);
  vsnprintf (v->msg, sizeof v->msg, fmt, ap);
  va_end (ap);
}

size_t
nbdp_violations_count (const struct nbdp_violations *vs,
                       enum nbdp_level level)
{
  size_t i, n = 0;

  for (i = 0; i < vs->n; i++)
    if (vs->v[i].level == level)
      n++;
  return n;
}

bool
nbdp_violations_has (const struct nbdp_violations *vs, const char *id)
{
  size_t i;

  for (i = 0; i < vs->n; i++)
    if (strcmp (vs->v[i].id, id) == 0)
      return true;
  return false;
}

const char *
nbdp_level_name (enum nbdp_level level)
{
  return level == NBDP_MUST ? "MUST" : "SHOULD";
}

#define MUST(out, id, ...) nbdp_violation_add ((out), (id), NBDP_MUST, __VA_ARGS__)
#define SHOULD(out, id, ...) nbdp_violation_add ((out), (id), NBDP_SHOULD, __VA_ARGS__)

bool
nbdp_is_power_of_2 (uint64_t v)
{
  return v != 0 && (v & (v - 1)) == 0;
}

/* Names for messages, with a numeric fallback in a caller buffer. */
struct namebuf {
  char b[40];
};
static const char *
opt_name (struct namebuf *nb, uint32_t v)
{
  return nbdp_opt_str (nb->b, sizeof nb->b, v);
}
static const char *
rep_name (struct namebuf *nb, uint32_t v)
{
  return nbdp_rep_str (nb->b, sizeof nb->b, v);
}
static const char *
cmd_name (struct namebuf *nb, uint16_t v)
{
  return nbdp_cmd_str (nb->b, sizeof nb->b, v);
}
static const char *
type_name (struct namebuf *nb, uint16_t v)
{
  return nbdp_reply_type_str (nb->b, sizeof nb->b, v);
}

/* ---- session -------------------------------------------------------- */

void
nbdp_session_init (struct nbdp_session *s)
{
  memset (s, 0, sizeof *s);
}

static void
inflight_free (struct nbdp_rules_req *r)
{
  free (r->ranges);
  r->ranges = NULL;
  r->nr_ranges = r->cap_ranges = 0;
  free (r->errs);
  r->errs = NULL;
  r->nr_errs = r->cap_errs = 0;
}

void
nbdp_session_free (struct nbdp_session *s)
{
  size_t i;

  for (i = 0; i < s->nr_inflight; i++)
    inflight_free (&s->inflight[i]);
  free (s->inflight);
  s->inflight = NULL;
  s->nr_inflight = s->cap_inflight = 0;
}

uint32_t
nbdp_session_max_payload (const struct nbdp_session *s)
{
  if (s->have_block_size && s->max_payload)
    return s->max_payload;
  return NBD_DEFAULT_MAX_PAYLOAD;
}

struct nbdp_rules_req *
nbdp_session_find (struct nbdp_session *s, uint64_t cookie)
{
  size_t i;

  for (i = 0; i < s->nr_inflight; i++)
    if (s->inflight[i].cookie == cookie)
      return &s->inflight[i];
  return NULL;
}

static void
session_retire (struct nbdp_session *s, struct nbdp_rules_req *r)
{
  size_t i = r - s->inflight;

  if (s->nr_recent < NBDP_RECENT_DONE)
    s->recent_done[s->nr_recent++] = r->cookie;
  else {
    memmove (&s->recent_done[0], &s->recent_done[1],
             (NBDP_RECENT_DONE - 1) * sizeof s->recent_done[0]);
    s->recent_done[NBDP_RECENT_DONE - 1] = r->cookie;
  }
  inflight_free (r);
  s->inflight[i] = s->inflight[--s->nr_inflight];
}

static bool
recently_done (const struct nbdp_session *s, uint64_t cookie)
{
  size_t i;

  for (i = 0; i < s->nr_recent; i++)
    if (s->recent_done[i] == cookie)
      return true;
  return false;
}

/* ---- strings -------------------------------------------------------- */

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static bool
valid_utf8 (const unsigned char *p, size_t len)
{
  size_t i = 0;

  while (i < len) {
    unsigned char c = p[i];
    size_t n;
    uint32_t cp;

    if (c < 0x80) { i++; continue; }
    else if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
    else return false;
    if (n > len - i - 1)
      return false;
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
        (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

/* Judge a protocol string (names, descriptions, messages). */
static void
check_string (const char *what, const void *p, size_t len,
              struct nbdp_violations *out)
{
  if (len > NBD_MAX_STRING) {
    MUST (out, R_STRING_LEN, "%s: got a string of %zu bytes, expected at "
          "most %d",
          what, len, NBD_MAX_STRING);
    return;
  }
  if (memchr (p, 0, len) != NULL)
    MUST (out, R_STRING_CHARS, "%s: string of %zu bytes contains a NUL "
          "byte, "
          "expected none", what, len);
  else if (!valid_utf8 (p, len))
    MUST (out, R_STRING_CHARS, "%s: string of %zu bytes is not valid UTF-8",
          what, len);
  if (len > 256)
    SHOULD (out, R_STRING_SHORT, "%s: got a string of %zu bytes, "
            "expected at most 256", what, len);
}

/* ---- handshake ------------------------------------------------------ */

void
nbdp_rules_check_greeting (struct nbdp_session *s, const void *buf18,
                           bool *oldstyle, struct nbdp_violations *out)
{
  const unsigned char *b = buf18;
  uint64_t magic = nbdp_get64 (b), version = nbdp_get64 (b + 8);
  uint16_t gflags = nbdp_get16 (b + 16);

  *oldstyle = false;
  if (magic != NBD_MAGIC)
    MUST (out, R_GREETING_MAGIC, "greeting: got magic 0x%016" PRIx64
          ", expected NBDMAGIC 0x%016" PRIx64, magic, NBD_MAGIC);
  if (version == NBD_OLD_VERSION) {
    *oldstyle = true;
    return;
  }
  if (version != NBD_NEW_VERSION) {
    MUST (out, R_GREETING_MAGIC, "greeting: got second magic 0x%016" PRIx64
          ", expected IHAVEOPT 0x%016" PRIx64 " or oldstyle 0x%016" PRIx64,
          version, NBD_NEW_VERSION, NBD_OLD_VERSION);
    return;
  }
  s->fixed_newstyle = gflags & NBD_FLAG_FIXED_NEWSTYLE;
  if (gflags & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES))
    MUST (out, R_GFLAGS_RESERVED, "greeting: got handshake flags 0x%04x, "
          "expected only FIXED_NEWSTYLE|NO_ZEROES (0x0003) to be defined",
          gflags);
}

void
nbdp_rules_option_sent (struct nbdp_session *s, uint32_t option,
                        const void *data, uint32_t len)
{
  const unsigned char *d = data;

  memset (&s->opt, 0, sizeof s->opt);
  s->opt.pending = true;
  s->opt.option = option;
  if ((option == NBD_OPT_INFO || option == NBD_OPT_GO) && data && len >= 6) {
    uint32_t namelen = nbdp_get32 (d);
    if (namelen <= len - 6) {
      uint32_t off = 4 + namelen;
      uint16_t n = nbdp_get16 (d + off);
      off += 2;
      for (uint16_t i = 0; i < n && off <= len - 2; i++, off += 2)
        if (nbdp_get16 (d + off) == NBD_INFO_BLOCK_SIZE)
          s->opt.info_block_size_requested = true;
    }
  }
}

void
nbdp_rules_check_eflags (const struct nbdp_session *s, uint16_t eflags,
                         struct nbdp_violations *out)
{
  char fb[160];

  nbdp_flags_str (fb, sizeof fb, eflags);
  if (!(eflags & NBD_FLAG_HAS_FLAGS))
    MUST (out, R_FLAG_HAS_FLAGS, "transmission flags: got 0x%04x (%s), "
          "expected HAS_FLAGS (bit 0) always set", eflags, fb);
  if ((eflags & NBD_FLAG_SEND_DF) && !s->structured && !s->extended)
    MUST (out, R_FLAG_DF, "transmission flags: got 0x%04x (%s) with SEND_DF "
          "although neither structured replies nor extended headers were "
          "negotiated; expected SEND_DF clear", eflags, fb);
  if ((eflags & NBD_FLAG_SEND_FAST_ZERO) &&
      !(eflags & NBD_FLAG_SEND_WRITE_ZEROES))
    MUST (out, R_FLAG_FAST_ZERO, "transmission flags: got 0x%04x (%s): "
          "SEND_FAST_ZERO without SEND_WRITE_ZEROES; expected it clear",
          eflags, fb);
  if ((eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD) && !s->extended)
    MUST (out, R_FLAG_BS_PAYLOAD, "transmission flags: got 0x%04x (%s): "
          "BLOCK_STAT_PAYLOAD without extended headers negotiated; "
          "expected it clear", eflags, fb);
}

void
nbdp_rules_check_block_size (uint32_t min, uint32_t pref, uint32_t max,
                             uint64_t export_size,
                             struct nbdp_violations *out)
{
  uint32_t floor_pref = min > 512 ? min : 512;

  if (!nbdp_is_power_of_2 (min))
    MUST (out, R_SZ_MIN_POW2, "NBD_INFO_BLOCK_SIZE: got minimum block size %"
          PRIu32 ", expected a power of 2", min);
  if (min > 65536)
    MUST (out, R_SZ_MIN_64K, "NBD_INFO_BLOCK_SIZE: got minimum block size %"
          PRIu32 ", expected no more than 65536", min);
  if (!nbdp_is_power_of_2 (pref) || pref < floor_pref)
    MUST (out, R_SZ_PREF, "NBD_INFO_BLOCK_SIZE: got preferred block size %"
          PRIu32 " (minimum %" PRIu32 "), expected a power of 2 >= %" PRIu32,
          pref, min, floor_pref);
  if (max < pref)
    MUST (out, R_SZ_MAX, "NBD_INFO_BLOCK_SIZE: got maximum payload %" PRIu32
          ", expected at least the preferred block size %" PRIu32, max, pref);
  if (max < (1u << 20) && export_size >= (1u << 20))
    SHOULD (out, R_SZ_MAX_1M, "NBD_INFO_BLOCK_SIZE: got maximum payload %"
            PRIu32 " for an export of %" PRIu64 " bytes, expected at least "
            "1048576", max, export_size);
  if (nbdp_is_power_of_2 (min) && export_size % min != 0)
    SHOULD (out, R_SZ_SIZE_MULTIPLE, "export size %" PRIu64 " is not a "
            "multiple of the minimum block size %" PRIu32, export_size, min);
}

/* Which reply types may answer which option (errors answer anything). */
static bool
rep_allowed (uint32_t option, uint32_t rep)
{
  if (rep & NBD_REP_ERR (0))
    return true;
  switch (rep) {
  case NBD_REP_ACK:
    return true;
  case NBD_REP_SERVER:
    return option == NBD_OPT_LIST;
  case NBD_REP_INFO:
    return option == NBD_OPT_INFO || option == NBD_OPT_GO;
  case NBD_REP_META_CONTEXT:
    return option == NBD_OPT_LIST_META_CONTEXT ||
      option == NBD_OPT_SET_META_CONTEXT;
  default:
    return false;
  }
}

static void
check_rep_info (struct nbdp_session *s, const unsigned char *p, uint32_t len,
                struct nbdp_violations *out)
{
  struct nbdp_opt_state *o = &s->opt;
  uint16_t info;

  if (len < 2) {
    MUST (out, R_INFO_LEN, "NBD_REP_INFO: got length %" PRIu32 ", expected "
          "at least 2 (the information type)", len);
    return;
  }
  info = nbdp_get16 (p);
  if (info < 32) {
    if (o->info_seen & (UINT32_C (1) << info))
      SHOULD (out, R_INFO_ONCE, "NBD_REP_INFO: information type %s (%u) "
              "sent more than once in one reply",
              nbdp_name_of_info (info) ? nbdp_name_of_info (info) : "?",
              info);
    o->info_seen |= UINT32_C (1) << info;
  }
  switch (info) {
  case NBD_INFO_EXPORT:
    if (len != 12) {
      MUST (out, R_INFO_EXPORT_LEN, "NBD_INFO_EXPORT: got length %" PRIu32
            ", expected 12", len);
      return;
    }
    o->info_export_seen = true;
    o->size = nbdp_get64 (p + 2);
    o->eflags = nbdp_get16 (p + 10);
    nbdp_rules_check_eflags (s, o->eflags, out);
    break;
  case NBD_INFO_NAME:
    check_string ("NBD_INFO_NAME", p + 2, len - 2, out);
    break;
  case NBD_INFO_DESCRIPTION:
    check_string ("NBD_INFO_DESCRIPTION", p + 2, len - 2, out);
    break;
  case NBD_INFO_BLOCK_SIZE:
    if (len != 14) {
      MUST (out, R_INFO_BSIZE_LEN, "NBD_INFO_BLOCK_SIZE: got length %" PRIu32
            ", expected 14", len);
      return;
    }
    o->have_block_size = true;
    o->min_block = nbdp_get32 (p + 2);
    o->pref_block = nbdp_get32 (p + 6);
    o->max_payload = nbdp_get32 (p + 10);
    /* The export size may come later in the same reply: judged at ACK. */
    break;
  default:
    break;                      /* unknown info: the client ignores it */
  }
}

static void
check_rep_meta_context (struct nbdp_session *s, const unsigned char *p,
                        uint32_t len, struct nbdp_violations *out)
{
  struct nbdp_opt_state *o = &s->opt;
  uint32_t id;
  const unsigned char *colon;

  if (len < 4 + 2) {
    MUST (out, R_META_REPLY, "NBD_REP_META_CONTEXT: got length %" PRIu32
          ", expected at least 6 (context ID and a name \"ns:\")", len);
    return;
  }
  id = nbdp_get32 (p);
  if (!valid_utf8 (p + 4, len - 4))
    MUST (out, R_META_UTF8, "NBD_REP_META_CONTEXT: the name of %" PRIu32
          " bytes is not valid UTF-8", len - 4);
  else
    check_string ("NBD_REP_META_CONTEXT name", p + 4, len - 4, out);
  colon = memchr (p + 4, ':', len - 4);
  if (colon == NULL || colon == p + 4)
    MUST (out, R_META_REPLY, "NBD_REP_META_CONTEXT: got name \"%.*s\", "
          "expected a namespace and a colon first",
          (int) (len - 4 > 64 ? 64 : len - 4), (const char *) p + 4);
  if (o->option == NBD_OPT_LIST_META_CONTEXT && id != 0)
    SHOULD (out, R_META_LIST_ID_ZERO, "NBD_OPT_LIST_META_CONTEXT: got "
            "context ID %" PRIu32 ", expected 0 (reserved)", id);
  if (o->option == NBD_OPT_SET_META_CONTEXT) {
    for (size_t i = 0; i < o->nr_contexts; i++)
      if (o->context_ids[i] == id)
        MUST (out, R_META_ID_UNIQUE, "NBD_OPT_SET_META_CONTEXT: context ID %"
              PRIu32 " given to both \"%s\" and \"%.*s\", expected unique IDs",
              id, o->context_names[i],
              (int) (len - 4 > 63 ? 63 : len - 4), (const char *) p + 4);
  }
  if (o->nr_contexts < NBDP_MAX_CONTEXTS) {
    size_t n = len - 4 < 63 ? len - 4 : 63;
    o->context_ids[o->nr_contexts] = id;
    memcpy (o->context_names[o->nr_contexts], p + 4, n);
    o->context_names[o->nr_contexts][n] = '\0';
    o->nr_contexts++;
  }
}

/* The option's final reply arrived: judge the whole and update state. */
static void
option_final (struct nbdp_session *s, uint32_t rep,
              struct nbdp_violations *out)
{
  struct nbdp_opt_state *o = &s->opt;
  struct namebuf nb;

  switch (o->option) {
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
    if (rep == NBD_REP_ACK) {
      if (!o->info_export_seen)
        MUST (out, R_INFO_EXPORT_REQ, "%s: got NBD_REP_ACK without an "
              "NBD_INFO_EXPORT reply before it, expected NBD_INFO_EXPORT",
              opt_name (&nb, o->option));
      if (o->have_block_size)
        nbdp_rules_check_block_size (o->min_block, o->pref_block,
                                     o->max_payload, o->size, out);
      if (o->option == NBD_OPT_GO) {
        s->transmission = true;
        s->export_size = o->size;
        s->eflags = o->eflags;
        s->have_block_size = o->have_block_size;
        s->min_block = o->min_block;
        s->pref_block = o->pref_block;
        s->max_payload = o->max_payload;
      }
    }
    else if (rep == NBD_REP_ERR_UNKNOWN && o->replies > 1)
      SHOULD (out, R_UNKNOWN_NO_INFO, "%s: got %" PRIu32 " NBD_REP_INFO "
              "before NBD_REP_ERR_UNKNOWN, expected none",
              opt_name (&nb, o->option), o->replies - 1);
    else if (rep == NBD_REP_ERR_BLOCK_SIZE_REQD &&
             o->info_block_size_requested)
      MUST (out, R_BLOCK_SIZE_REQD, "%s: got NBD_REP_ERR_BLOCK_SIZE_REQD "
            "although NBD_INFO_BLOCK_SIZE was requested; expected no such "
            "error", opt_name (&nb, o->option));
    else if (rep == NBD_REP_ERR_UNSUP && s->extended)
      MUST (out, R_GO_UNSUP_EH, "%s: got NBD_REP_ERR_UNSUP after "
            "NBD_OPT_EXTENDED_HEADERS was acknowledged; expected support",
            opt_name (&nb, o->option));
    break;
  case NBD_OPT_ABORT:
    if (rep != NBD_REP_ACK)
      MUST (out, R_ABORT_ACK, "NBD_OPT_ABORT: got %s, expected NBD_REP_ACK",
            rep_name (&nb, rep));
    break;
  case NBD_OPT_STRUCTURED_REPLY:
    if (rep == NBD_REP_ACK)
      s->structured = true;
    break;
  case NBD_OPT_EXTENDED_HEADERS:
    if (rep == NBD_REP_ACK)
      s->extended = true;
    break;
  case NBD_OPT_SET_META_CONTEXT:
    /* Success or failure, the selection is replaced. */
    if (rep == NBD_REP_ACK) {
      s->nr_contexts = o->nr_contexts;
      memcpy (s->context_ids, o->context_ids, sizeof s->context_ids);
      memcpy (s->context_names, o->context_names, sizeof s->context_names);
    }
    else
      s->nr_contexts = 0;
    break;
  case NBD_OPT_STARTTLS:
    if (rep == NBD_REP_ACK) {
      s->structured = s->extended = false;
      s->nr_contexts = 0;
    }
    break;
  default:
    break;
  }
}

enum nbdp_rules_progress
nbdp_rules_check_option_reply (struct nbdp_session *s,
                               const struct nbdp_option_reply *hdr,
                               const void *payload,
                               struct nbdp_violations *out)
{
  struct nbdp_opt_state *o = &s->opt;
  const unsigned char *p = payload;
  struct namebuf nb1, nb2;
  bool final;

  if (hdr->magic != NBD_REP_MAGIC)
    MUST (out, R_OPT_REPLY_MAGIC, "option reply: got magic 0x%016" PRIx64
          ", expected 0x%016" PRIx64, hdr->magic, NBD_REP_MAGIC);
  if (!o->pending) {
    MUST (out, R_OPT_REPLY_UNASKED, "got an option reply %s for %s while "
          "no option was awaiting a reply", rep_name (&nb1, hdr->reply),
          opt_name (&nb2, hdr->option));
    return NBDP_RULES_FINAL;
  }
  o->replies++;
  if (hdr->option != o->option)
    MUST (out, R_OPT_REPLY_OPTION, "option reply: got option field %s, "
          "expected the option sent, %s", opt_name (&nb1, hdr->option),
          opt_name (&nb2, o->option));
  final = hdr->reply == NBD_REP_ACK || (hdr->reply & NBD_REP_ERR (0));
  if (!rep_allowed (o->option, hdr->reply))
    MUST (out, R_OPT_REPLY_TYPE, "%s: got reply type %s, which is not a "
          "valid reply to this option", opt_name (&nb1, o->option),
          rep_name (&nb2, hdr->reply));

  if (hdr->reply == NBD_REP_ACK && hdr->length != 0)
    MUST (out, R_ACK_LENGTH, "%s: got NBD_REP_ACK with %" PRIu32 " bytes of "
          "data, expected none", opt_name (&nb1, o->option), hdr->length);
  if (p != NULL && rep_allowed (o->option, hdr->reply)) {
    switch (hdr->reply) {
    case NBD_REP_SERVER:
      if (hdr->length < 4 || nbdp_get32 (p) > hdr->length - 4)
        MUST (out, R_REP_SERVER_LEN, "NBD_REP_SERVER: reply length %" PRIu32
              ", name length %" PRIu32 "; expected name length <= reply "
              "length - 4", hdr->length,
              hdr->length >= 4 ? nbdp_get32 (p) : 0);
      else {
        uint32_t nl = nbdp_get32 (p);
        check_string ("NBD_REP_SERVER name", p + 4, nl, out);
        check_string ("NBD_REP_SERVER description", p + 4 + nl,
                      hdr->length - 4 - nl, out);
      }
      break;
    case NBD_REP_INFO:
      check_rep_info (s, p, hdr->length, out);
      break;
    case NBD_REP_META_CONTEXT:
      check_rep_meta_context (s, p, hdr->length, out);
      break;
    default:
      if (hdr->reply & NBD_REP_ERR (0))
        check_string ("option error message", p, hdr->length, out);
      break;
    }
  }
  if (!final)
    return NBDP_RULES_MORE;
  option_final (s, hdr->reply, out);
  o->pending = false;
  return NBDP_RULES_FINAL;
}

/* ---- transmission: requests ----------------------------------------- */

int
nbdp_rules_request_sent (struct nbdp_session *s,
                         const struct nbdp_request *req)
{
  struct nbdp_rules_req *r;

  if (req->type == NBD_CMD_DISC)
    return 0;
  r = nbdp_session_find (s, req->cookie);
  if (r != NULL)
    inflight_free (r);
  else {
    if (s->nr_inflight == s->cap_inflight) {
      size_t cap = s->cap_inflight ? s->cap_inflight * 2 : 16;
      struct nbdp_rules_req *p = realloc (s->inflight, cap * sizeof *p);
      if (p == NULL)
        return -1;
      s->inflight = p;
      s->cap_inflight = cap;
    }
    r = &s->inflight[s->nr_inflight++];
  }
  memset (r, 0, sizeof *r);
  r->cookie = req->cookie;
  r->type = req->type;
  r->flags = req->flags;
  r->offset = req->offset;
  r->count = req->count;
  return 0;
}

struct cmd_need {
  uint16_t cmd;               /* command, or command flag */
  uint16_t eflag;             /* transmission flag it needs */
  const char *id;
};
static const struct cmd_need cmd_needs[] = {
  { NBD_CMD_FLUSH, NBD_FLAG_SEND_FLUSH, "CMD-FLUSH-2" },
  { NBD_CMD_TRIM, NBD_FLAG_SEND_TRIM, "CMD-TRIM-5" },
  { NBD_CMD_WRITE_ZEROES, NBD_FLAG_SEND_WRITE_ZEROES, "CMD-WZ-5" },
  { NBD_CMD_RESIZE, NBD_FLAG_SEND_RESIZE, R_C_FEATURE },
};
static const struct cmd_need flag_needs[] = {
  { NBD_CMD_FLAG_FUA, NBD_FLAG_SEND_FUA, R_C_FEATURE },
  { NBD_CMD_FLAG_DF, NBD_FLAG_SEND_DF, "FLAG-CMD-11" },
  { NBD_CMD_FLAG_FAST_ZERO, NBD_FLAG_SEND_FAST_ZERO, "FLAG-CMD-15" },
  { NBD_CMD_FLAG_NO_HOLE, NBD_FLAG_SEND_WRITE_ZEROES, R_C_FEATURE },
};

void
nbdp_rules_check_request (const struct nbdp_session *s,
                          const struct nbdp_request *req,
                          struct nbdp_violations *out)
{
  struct namebuf nb;
  const char *cmd = cmd_name (&nb, req->type);
  uint32_t magic = s->extended ? NBD_EXTENDED_REQUEST_MAGIC
                               : NBD_REQUEST_MAGIC;
  size_t i;

  if (req->magic != magic)
    MUST (out, R_C_MAGIC, "%s: sent magic 0x%08" PRIx32 ", expected 0x%08"
          PRIx32 " (%s headers)", cmd, req->magic, magic,
          s->extended ? "extended" : "compact");
  for (i = 0; i < s->nr_inflight; i++)
    if (s->inflight[i].cookie == req->cookie)
      SHOULD (out, R_C_COOKIE_UNIQUE, "%s: cookie 0x%" PRIx64 " is already "
              "in flight, expected a distinct cookie", cmd, req->cookie);
  for (i = 0; i < sizeof cmd_needs / sizeof cmd_needs[0]; i++)
    if (req->type == cmd_needs[i].cmd && !(s->eflags & cmd_needs[i].eflag))
      MUST (out, cmd_needs[i].id, "%s sent although the server did not "
            "advertise the transmission flag 0x%04x", cmd,
            cmd_needs[i].eflag);
  for (i = 0; i < sizeof flag_needs / sizeof flag_needs[0]; i++)
    if ((req->flags & flag_needs[i].cmd) &&
        !(s->eflags & flag_needs[i].eflag))
      MUST (out, flag_needs[i].id, "%s: command flag 0x%04x sent although "
            "the server did not advertise transmission flag 0x%04x", cmd,
            flag_needs[i].cmd, flag_needs[i].eflag);
  if ((req->flags & NBD_CMD_FLAG_PAYLOAD_LEN) && !s->extended)
    MUST (out, R_C_PAYLOAD_LEN_EH, "%s: NBD_CMD_FLAG_PAYLOAD_LEN used with "
          "compact requests", cmd);
  if (req->type == NBD_CMD_WRITE && s->extended &&
      !(req->flags & NBD_CMD_FLAG_PAYLOAD_LEN))
    MUST (out, R_C_WRITE_PAYLOAD, "NBD_CMD_WRITE with extended headers "
          "without NBD_CMD_FLAG_PAYLOAD_LEN");
  if (req->type == NBD_CMD_BLOCK_STATUS && s->nr_contexts == 0)
    MUST (out, R_C_BS_CONTEXT, "NBD_CMD_BLOCK_STATUS sent although no "
          "metadata context was selected");
  switch (req->type) {
  case NBD_CMD_DISC:
    if (req->offset != 0 || req->count != 0)
      MUST (out, R_C_DISC_ZERO, "NBD_CMD_DISC: offset %" PRIu64 " length %"
            PRIu64 ", expected both 0", req->offset, req->count);
    break;
  case NBD_CMD_FLUSH:
    if (req->offset != 0 || req->count != 0)
      MUST (out, R_C_FLUSH_ZERO, "NBD_CMD_FLUSH: offset %" PRIu64 " length %"
            PRIu64 ", expected both 0", req->offset, req->count);
    break;
  case NBD_CMD_READ:
  case NBD_CMD_WRITE:
  case NBD_CMD_TRIM:
  case NBD_CMD_WRITE_ZEROES:
  case NBD_CMD_CACHE:
    if (req->offset > s->export_size ||
        req->count > s->export_size - req->offset)
      MUST (out, R_C_BOUNDS, "%s: offset %" PRIu64 " length %" PRIu64
            " goes past the export size %" PRIu64, cmd, req->offset,
            req->count, s->export_size);
    if (s->have_block_size && s->min_block > 1 &&
        (req->offset % s->min_block || req->count % s->min_block))
      MUST (out, R_C_ALIGN, "%s: offset %" PRIu64 " length %" PRIu64
            " not multiples of the minimum block size %" PRIu32, cmd,
            req->offset, req->count, s->min_block);
    if ((req->type == NBD_CMD_WRITE ||
         (req->type == NBD_CMD_READ && !s->structured && !s->extended)) &&
        req->count > nbdp_session_max_payload (s))
      MUST (out, R_C_MAX_PAYLOAD, "%s: length %" PRIu64 " exceeds the "
            "maximum payload %" PRIu32, cmd, req->count,
            nbdp_session_max_payload (s));
    break;
  default:
    break;
  }
}

/* ---- transmission: replies ------------------------------------------ */

static bool
valid_error_value (uint32_t e)
{
  switch (e) {
  case NBD_EPERM: case NBD_EIO: case NBD_ENOMEM: case NBD_EINVAL:
  case NBD_ENOSPC: case NBD_EOVERFLOW: case NBD_ENOTSUP: case NBD_ESHUTDOWN:
    return true;
  default:
    return false;
  }
}

/* [off, off+len) lies within the request's [offset, offset+count). */
static bool
in_request (const struct nbdp_rules_req *r, uint64_t off, uint64_t len)
{
  return off >= r->offset && len <= r->count &&
    off - r->offset <= r->count - len;
}

static bool
ranges_overlap (uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
  if (a >= b)
    return a - b < blen;
  return b - a < alen;
}

/* In v[0..n), sorted by offset and disjoint (so sorted by end too): the
 * index of the first range that ends after off (n if none).
 */
static size_t
first_ending_after (const struct nbdp_range *v, size_t n, uint64_t off)
{
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].off <= off && off - v[mid].off >= v[mid].len)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Make room for one more range at index i of a list (*v, *n, *cap).
 * -1 when out of memory or at NBDP_MAX_RANGES.
 */
static int
open_slot (struct nbdp_range **v, size_t *n, size_t *cap, size_t i)
{
  if (*n >= NBDP_MAX_RANGES)
    return -1;
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    struct nbdp_range *p;

    if (ncap > NBDP_MAX_RANGES)
      ncap = NBDP_MAX_RANGES;
    p = realloc (*v, ncap * sizeof *p);
    if (p == NULL)
      return -1;
    *v = p;
    *cap = ncap;
  }
  memmove (&(*v)[i + 1], &(*v)[i], (*n - i) * sizeof **v);
  (*n)++;
  return 0;
}

/* Record the content range [off, off+len), which overlaps none recorded,
 * at index i (from first_ending_after).  While no error offset has been
 * seen it merges with adjacent ranges: the earliest chunk of a merged
 * range then still predates every error offset, which is all the
 * CMD-READ-31 / SR-DATA-3 choice in content_chunk needs.  -1 if it
 * could not be recorded (the bound, or out of memory).
 */
static int
add_content (struct nbdp_rules_req *r, size_t i, uint64_t off, uint64_t len,
             unsigned seq)
{
  struct nbdp_range *v = r->ranges;

  if (r->nr_errs == 0) {
    bool prev = i > 0 && off - v[i - 1].off == v[i - 1].len;
    bool next = i < r->nr_ranges && v[i].off - off == len;

    if (prev && next) {
      v[i - 1].len += len + v[i].len;
      if (v[i].seq < v[i - 1].seq)
        v[i - 1].seq = v[i].seq;
      memmove (&v[i], &v[i + 1], (r->nr_ranges - i - 1) * sizeof *v);
      r->nr_ranges--;
      return 0;
    }
    if (prev) {
      v[i - 1].len += len;
      return 0;
    }
    if (next) {
      v[i].off = off;
      v[i].len += len;
      return 0;
    }
  }
  if (open_slot (&r->ranges, &r->nr_ranges, &r->cap_ranges, i) == -1)
    return -1;
  r->ranges[i] = (struct nbdp_range) { off, len, seq, false };
  return 0;
}

/* How far content_chunk looks into the overlapped ranges to find the
 * earliest one; past it the choice of ID can differ (both IDs are
 * broken then), the verdict that the chunk overlaps cannot.
 */
#define OVERLAP_SCAN 64

/* A content chunk [off, off+len): range and overlap checks, then record.
 * O(log n) in the ranges recorded: both lists are sorted.
 */
static void
content_chunk (struct nbdp_rules_req *r, bool hole, uint64_t off,
               uint64_t len, struct nbdp_violations *out)
{
  const char *what = hole ? "NBD_REPLY_TYPE_OFFSET_HOLE"
                          : "NBD_REPLY_TYPE_OFFSET_DATA";
  const struct nbdp_range *c = NULL, *e = NULL;
  size_t i, j, k;

  r->content_chunks++;
  if ((r->flags & NBD_CMD_FLAG_DF) && r->content_chunks == 2)
    MUST (out, R_DF_ONE, "NBD_CMD_READ with NBD_CMD_FLAG_DF (offset %"
          PRIu64 " length %" PRIu64 "): got a second content chunk (%s "
          "at %" PRIu64 "), expected at most one", r->offset, r->count,
          what, off);
  if (!in_request (r, off, len)) {
    MUST (out, hole ? R_HOLE_RANGE : R_DATA_RANGE, "NBD_CMD_READ offset %" PRIu64 " length %"
          PRIu64 ": got %s for offset %" PRIu64 " length %" PRIu64
          ", expected it within the request", r->offset, r->count, what,
          off, len);
    return;
  }

  /* The earliest overlapped content range and error offset, if any: the
   * one reported first decides the requirement (as if every earlier
   * range were checked in the order received).
   */
  i = first_ending_after (r->ranges, r->nr_ranges, off);
  for (k = i; k < r->nr_ranges && k - i < OVERLAP_SCAN &&
         ranges_overlap (off, len, r->ranges[k].off, r->ranges[k].len); k++)
    if (c == NULL || r->ranges[k].seq < c->seq)
      c = &r->ranges[k];
  j = first_ending_after (r->errs, r->nr_errs, off);
  for (k = j; k < r->nr_errs && k - j < OVERLAP_SCAN &&
         r->errs[k].off - off < len; k++)
    if (e == NULL || r->errs[k].seq < e->seq)
      e = &r->errs[k];
  if (e && (c == NULL || e->seq < c->seq))
    c = e;
  if (c) {
    MUST (out, c->error ? R_CONTENT_AFTER_ERR
          : hole ? R_HOLE_OVERLAP : R_DATA_OVERLAP, "NBD_CMD_READ offset %" PRIu64
          " length %" PRIu64 ": %s for offset %" PRIu64 " length %" PRIu64
          " overlaps an earlier %s at offset %" PRIu64 " length %" PRIu64,
          r->offset, r->count, what, off, len,
          c->error ? "error chunk" : "content chunk", c->off, c->len);
    return;
  }
  r->covered += len;
  /* Past the bound the range is not kept (see NBDP_MAX_RANGES). */
  if (add_content (r, i, off, len, r->chunks) == -1 &&
      r->nr_ranges < NBDP_MAX_RANGES)
    MUST (out, "INTERNAL", "out of memory recording a chunk range");
}

static void
check_offset_data (const struct nbdp_session *s, struct nbdp_rules_req *r,
                   const struct nbdp_reply *h, const unsigned char *p,
                   struct nbdp_violations *out)
{
  if (h->length < 9) {
    MUST (out, R_DATA_LEN, "NBD_REPLY_TYPE_OFFSET_DATA: got length %" PRIu64
          ", expected at least 9", h->length);
    return;
  }
  if (s->have_block_size && s->max_payload &&
      h->length - 8 > s->max_payload)
    MUST (out, R_PAYLOAD_MAX, "NBD_REPLY_TYPE_OFFSET_DATA: %" PRIu64
          " bytes of data, more than the advertised maximum payload %"
          PRIu32, h->length - 8, s->max_payload);
  if (p != NULL)
    content_chunk (r, false, nbdp_get64 (p),
                   h->length - 8, out);
  else
    r->content_chunks++;
}

static void
check_offset_hole (struct nbdp_rules_req *r, const struct nbdp_reply *h,
                   const unsigned char *p, struct nbdp_violations *out)
{
  uint32_t hole;

  if (h->length != 12) {
    MUST (out, R_HOLE_LEN, "NBD_REPLY_TYPE_OFFSET_HOLE: got length %" PRIu64
          ", expected 12", h->length);
    return;
  }
  if (p == NULL) {
    r->content_chunks++;
    return;
  }
  hole = nbdp_get32 (p + 8);
  if (hole == 0) {
    MUST (out, R_HOLE_ZERO, "NBD_REPLY_TYPE_OFFSET_HOLE at offset %" PRIu64
          ": got hole size 0, expected nonzero", nbdp_get64 (p));
    return;
  }
  content_chunk (r, true, nbdp_get64 (p), hole, out);
}

static int
context_index (const struct nbdp_session *s, uint32_t id)
{
  for (size_t i = 0; i < s->nr_contexts; i++)
    if (s->context_ids[i] == id)
      return (int) i;
  return -1;
}

static bool
base_context (const struct nbdp_session *s, int ci)
{
  return ci >= 0 && strncmp (s->context_names[ci], "base:", 5) == 0;
}

static void
check_block_status (const struct nbdp_session *s, struct nbdp_rules_req *r,
                    const struct nbdp_reply *h, const unsigned char *p,
                    struct nbdp_violations *out)
{
  bool ext = h->type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
  uint64_t hdrlen = ext ? 8 : 4, desclen = ext ? 16 : 8;
  uint64_t n, i, sum = 0, end = r->offset;
  uint32_t id;
  int ci;

  if (ext != s->extended)
    MUST (out, ext ? R_BS_EXT_NO_EH : R_BS_COMPACT_EH, "NBD_CMD_BLOCK_STATUS: got %s chunk with extended "
          "headers %s; expected %s", ext ? "NBD_REPLY_TYPE_BLOCK_STATUS_EXT"
          : "NBD_REPLY_TYPE_BLOCK_STATUS",
          s->extended ? "negotiated" : "not negotiated",
          s->extended ? "NBD_REPLY_TYPE_BLOCK_STATUS_EXT"
          : "NBD_REPLY_TYPE_BLOCK_STATUS");
  if (h->length < hdrlen + desclen || (h->length - hdrlen) % desclen) {
    MUST (out, ext ? R_BS_EXT_LEN : R_BS_LEN, "%s: got length %" PRIu64
          ", expected %" PRIu64
          " + a positive multiple of %" PRIu64,
          ext ? "NBD_REPLY_TYPE_BLOCK_STATUS_EXT"
          : "NBD_REPLY_TYPE_BLOCK_STATUS", h->length, hdrlen, desclen);
    return;
  }
  n = (h->length - hdrlen) / desclen;
  if (n > (UINT64_C (1) << 20))
    SHOULD (out, R_BS_MAX_EXTENTS, "block status chunk with %" PRIu64
            " descriptors, expected at most 2^20", n);
  if (p == NULL)
    return;
  id = nbdp_get32 (p);
  if (ext && nbdp_get32 (p + 4) != n)
    MUST (out, R_BS_COUNT, "NBD_REPLY_TYPE_BLOCK_STATUS_EXT: descriptor "
          "count %" PRIu32 " but the length %" PRIu64 " holds %" PRIu64,
          nbdp_get32 (p + 4), h->length, n);
  ci = context_index (s, id);
  if (ci < 0) {
    MUST (out, R_BS_CONTEXT, "block status chunk for context ID %" PRIu32
          ", which was not selected by NBD_OPT_SET_META_CONTEXT", id);
    r->status_unknown++;
  }
  else if (++r->status_chunks[ci] == 2)
    MUST (out, R_BS_ONE_PER_CTX, "block status: a second chunk for context "
          "%" PRIu32 " (%s), expected exactly one per context", id,
          s->context_names[ci]);
  if ((r->flags & NBD_CMD_FLAG_REQ_ONE) && n != 1)
    MUST (out, R_BS_REQ_ONE_COUNT, "NBD_CMD_BLOCK_STATUS with REQ_ONE: got %"
          PRIu64 " descriptors, expected exactly 1", n);
  for (i = 0; i < n; i++) {
    const unsigned char *d = p + hdrlen + i * desclen;
    uint64_t len = ext ? nbdp_get64 (d) : nbdp_get32 (d);
    uint64_t status = ext ? nbdp_get64 (d + 8) : nbdp_get32 (d + 4);

    if (len == 0) {
      MUST (out, ext ? R_BS_EXT_EXTENT_ZERO : R_BS_EXTENT_ZERO,
            "block status offset %" PRIu64 " length %"
            PRIu64 ": descriptor %" PRIu64 " of %" PRIu64 " has length 0, "
            "expected nonzero", r->offset, r->count, i, n);
      continue;
    }
    /* A MUST with extended headers (EH-BS-11), a SHOULD without
     * (CMD-BS-14); a descriptor ending at an unaligned export end is
     * exempt.
     */
    if (s->have_block_size && s->min_block > 1 && len % s->min_block &&
        !(i + 1 == n && end <= s->export_size &&
          len == s->export_size - end))
      nbdp_violation_add (out, ext ? R_BS_MIN_BLOCK : R_BS_MIN_BLOCK_SR,
                          ext ? NBDP_MUST : NBDP_SHOULD,
                          "block status: descriptor %" PRIu64 " length %"
                          PRIu64 " is not a multiple of the minimum block "
                          "size %" PRIu32, i, len, s->min_block);
    end = len > UINT64_MAX - end ? UINT64_MAX : end + len;
    if (ext && base_context (s, ci) && (status >> 32) != 0)
      MUST (out, R_BS_STATUS_HIGH, "block status for %s: descriptor %"
            PRIu64 " status 0x%" PRIx64 " has high 32 bits set",
            s->context_names[ci], i, status);
    if ((r->flags & NBD_CMD_FLAG_REQ_ONE) && i == 0 && len > r->count)
      MUST (out, R_BS_REQ_ONE_LEN, "NBD_CMD_BLOCK_STATUS with REQ_ONE, length %"
            PRIu64 ": got a descriptor of %" PRIu64 ", expected at most the "
            "request length", r->count, len);
    if (i + 1 < n) {
      sum = len > UINT64_MAX - sum ? UINT64_MAX : sum + len;
      if (sum >= r->count) {
        MUST (out, R_BS_SUM, "NBD_CMD_BLOCK_STATUS offset %" PRIu64
              " length %" PRIu64 ": the first %" PRIu64 " of %" PRIu64
              " descriptors already cover %" PRIu64 " bytes; only the last "
              "may reach or pass the request length", r->offset, r->count,
              i + 1, n, sum);
        return;
      }
    }
  }
}

static void
check_error_chunk (const struct nbdp_session *s, struct nbdp_rules_req *r,
                   const struct nbdp_reply *h, const unsigned char *p,
                   struct nbdp_violations *out)
{
  struct namebuf nb, nbc;
  const char *tn = type_name (&nb, h->type);
  bool with_offset = h->type == NBD_REPLY_TYPE_ERROR_OFFSET;
  uint64_t fixed = with_offset ? 14 : 6;
  uint32_t err;
  uint16_t msglen;

  r->error_chunks++;
  if (h->type == NBD_REPLY_TYPE_ERROR) {
    if (r->generic_error)
      SHOULD (out, R_ERR_ONCE, "%s: NBD_REPLY_TYPE_ERROR used more than once "
              "in one reply", cmd_name (&nbc, r->type));
    r->generic_error = true;
  }
  else if (with_offset)
    r->offset_error = true;
  if (r->generic_error && r->offset_error &&
      (h->type == NBD_REPLY_TYPE_ERROR || h->type ==
       NBD_REPLY_TYPE_ERROR_OFFSET))
    SHOULD (out, R_ERR_MIX, "reply mixes NBD_REPLY_TYPE_ERROR and "
            "NBD_REPLY_TYPE_ERROR_OFFSET chunks");

  if (h->length < fixed) {
    MUST (out, with_offset ? R_ERROFF_LEN : R_ERR_LEN, "%s: got length %" PRIu64 ", expected at least %"
          PRIu64, tn, h->length, fixed);
    return;
  }
  if (p == NULL)
    return;
  err = nbdp_get32 (p);
  msglen = nbdp_get16 (p + 4);
  if (err == 0)
    MUST (out, with_offset ? R_ERROFF_NONZERO : R_ERR_NONZERO,
          "%s: got error 0, expected nonzero", tn);
  else if (!valid_error_value (err))
    MUST (out, R_ERR_VALUE, "%s: got error value %" PRIu32 ", expected one "
          "of the values defined by the protocol", tn, err);
  if (msglen > h->length - 6 ||
      (h->type == NBD_REPLY_TYPE_ERROR && msglen != h->length - 6) ||
      (with_offset && msglen != h->length - 14)) {
    MUST (out, with_offset ? R_ERROFF_LEN : R_ERR_LEN,
          "%s: chunk length %" PRIu64 " and message length %"
          "u disagree, expected length = %" PRIu64 " + message length",
          tn, h->length, msglen, fixed);
    return;
  }
  if (msglen > NBD_MAX_STRING)
    MUST (out, R_ERR_MSG_LEN, "%s: message of %u bytes, expected at most %d",
          tn, msglen, NBD_MAX_STRING);
  else
    check_string ("error chunk message", p + 6, msglen, out);
  if (with_offset) {
    uint64_t off = nbdp_get64 (p + 6 + msglen);
    size_t i;

    if (!in_request (r, off, 1)) {
      MUST (out, R_ERR_OFFSET_RANGE, "%s: got offset %" PRIu64 " for a "
            "request at offset %" PRIu64 " length %" PRIu64 ", expected it "
            "within the request", tn, off, r->offset, r->count);
      return;
    }
    i = first_ending_after (r->errs, r->nr_errs, off);
    if (i < r->nr_errs && r->errs[i].off == off)
      SHOULD (out, R_ERR_OFFSET_REPEAT, "%s: offset %" PRIu64 " reported "
              "twice in one reply", tn, off);
    else if (open_slot (&r->errs, &r->nr_errs, &r->cap_errs, i) == 0)
      r->errs[i] = (struct nbdp_range) { off, 1, r->chunks, true };
    else if (r->nr_errs < NBDP_MAX_RANGES)
      MUST (out, "INTERNAL", "out of memory recording a chunk range");
  }
}

/* Which chunk types may answer which command. */
static bool
type_allowed (uint16_t cmd, uint16_t type)
{
  switch (type) {
  case NBD_REPLY_TYPE_NONE:
  case NBD_REPLY_TYPE_ERROR:
    return true;
  case NBD_REPLY_TYPE_OFFSET_DATA:
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    return cmd == NBD_CMD_READ;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    return cmd == NBD_CMD_BLOCK_STATUS;
  case NBD_REPLY_TYPE_ERROR_OFFSET:
    return cmd == NBD_CMD_READ || cmd == NBD_CMD_WRITE ||
      cmd == NBD_CMD_TRIM || cmd == NBD_CMD_CACHE ||
      cmd == NBD_CMD_WRITE_ZEROES || cmd == NBD_CMD_BLOCK_STATUS;
  default:
    return false;
  }
}

/* The reply to r is complete: judge it as a whole. */
static void
reply_final (const struct nbdp_session *s, struct nbdp_rules_req *r,
             bool simple, uint32_t simple_error,
             struct nbdp_violations *out)
{
  bool ok = simple ? simple_error == 0 : r->error_chunks == 0;

  if (!ok || simple)
    goto out_ok_simple;
  if (r->type == NBD_CMD_READ && r->covered != r->count)
    MUST (out, R_READ_COVER, "NBD_CMD_READ offset %" PRIu64 " length %"
          PRIu64 ": reply ended with success after content chunks "
          "covering %" PRIu64 " bytes, expected all %" PRIu64,
          r->offset, r->count, r->covered, r->count);
  if (r->type == NBD_CMD_BLOCK_STATUS)
    for (size_t i = 0; i < s->nr_contexts; i++)
      if (r->status_chunks[i] == 0)
        MUST (out, R_BS_ONE_PER_CTX, "NBD_CMD_BLOCK_STATUS offset %" PRIu64
              " length %" PRIu64 ": successful reply without a status chunk "
              "for context %" PRIu32 " (%s)", r->offset, r->count,
              s->context_ids[i], s->context_names[i]);
  return;

 out_ok_simple:
  if (simple && ok && r->type == NBD_CMD_BLOCK_STATUS)
    MUST (out, R_BS_ONE_PER_CTX, "NBD_CMD_BLOCK_STATUS: got a successful "
          "simple reply, expected one status chunk per selected context");
}

enum nbdp_rules_progress
nbdp_rules_check_reply (struct nbdp_session *s, const struct nbdp_reply *h,
                        const void *payload, struct nbdp_violations *out)
{
  const unsigned char *p = payload;
  struct nbdp_rules_req *r;
  struct namebuf nb1, nb2;
  bool done;

  switch (h->kind) {
  case NBDP_REPLY_SIMPLE:
    if (s->extended)
      MUST (out, R_EH_NO_SIMPLE, "got a simple reply (cookie 0x%" PRIx64
            ") although extended headers were negotiated; expected an "
            "extended reply", h->cookie);
    break;
  case NBDP_REPLY_STRUCTURED:
    if (s->extended)
      MUST (out, R_EH_REPLY, "got a structured reply chunk (cookie 0x%"
            PRIx64 ") although extended headers were negotiated; expected "
            "an extended reply", h->cookie);
    else if (!s->structured)
      MUST (out, R_SR_NOT_NEGOTIATED, "got a structured reply chunk (cookie "
            "0x%" PRIx64 ") although structured replies were not "
            "negotiated; expected a simple reply", h->cookie);
    break;
  case NBDP_REPLY_EXTENDED:
    if (!s->extended)
      MUST (out, R_EH_NOT_NEGOTIATED, "got an extended reply chunk (cookie "
            "0x%" PRIx64 ") although extended headers were not negotiated",
            h->cookie);
    break;
  default:
    MUST (out, R_REPLY_MAGIC, "got reply magic 0x%08" PRIx32 ", expected a "
          "simple, structured or extended reply magic", h->magic);
    return NBDP_RULES_FINAL;
  }

  r = nbdp_session_find (s, h->cookie);
  if (r == NULL) {
    if (recently_done (s, h->cookie))
      MUST (out, R_AFTER_DONE, "got a reply for cookie 0x%" PRIx64 " whose "
            "reply was already complete (final chunk or simple reply seen)",
            h->cookie);
    else
      MUST (out, R_COOKIE, "got a reply with cookie 0x%" PRIx64 ", which "
            "matches no request in flight", h->cookie);
    return NBDP_RULES_FINAL;
  }

  if (h->kind == NBDP_REPLY_SIMPLE) {
    if (!s->extended && (s->structured) && r->type == NBD_CMD_READ)
      MUST (out, R_SIMPLE_READ_SR, "NBD_CMD_READ offset %" PRIu64 " length %"
            PRIu64 ": got a simple reply (error %" PRIu32 ") although "
            "structured replies were negotiated; expected a structured "
            "reply", r->offset, r->count, h->error);
    if (r->chunks > 0)
      MUST (out, R_AFTER_DONE, "%s: got a simple reply after %u structured "
            "chunks for the same cookie 0x%" PRIx64,
            cmd_name (&nb1, r->type), r->chunks, h->cookie);
    if (h->error != 0 && !valid_error_value (h->error))
      MUST (out, R_ERR_VALUE, "%s: got error value %" PRIu32 " in a simple "
            "reply, expected one of the values defined by the protocol",
            cmd_name (&nb1, r->type), h->error);
    reply_final (s, r, true, h->error, out);
    session_retire (s, r);
    return NBDP_RULES_FINAL;
  }

  /* A structured or extended chunk. */
  r->chunks++;
  done = h->flags & NBD_REPLY_FLAG_DONE;
  if (h->kind == NBDP_REPLY_EXTENDED && h->offset != r->offset)
    MUST (out, R_EXT_OFFSET, "%s offset %" PRIu64 ": extended reply chunk %s "
          "carries offset %" PRIu64 ", expected the request's offset",
          cmd_name (&nb1, r->type), r->offset, type_name (&nb2, h->type),
          h->offset);
  if (h->flags & ~NBD_REPLY_FLAG_DONE)
    MUST (out, R_REPLY_FLAGS, "%s: chunk %s has reply flags 0x%04x, "
          "expected only DONE (0x0001) to be set",
          cmd_name (&nb1, r->type), type_name (&nb2, h->type), h->flags);

  if (s->ext_chunk_type != 0 && h->type == s->ext_chunk_type)
    ;                           /* judged by the caller (rules.h) */
  else if (!type_allowed (r->type, h->type)) {
    bool known = nbdp_name_of_reply_type (h->type) != NULL;

    if (known)
      MUST (out, R_CHUNK_CMD, "%s: got chunk type %s, which is not a valid "
            "reply to this command", cmd_name (&nb1, r->type),
            type_name (&nb2, h->type));
    if (h->type & NBD_REPLY_TYPE_ERR (0)) {
      /* An unknown error type: the reply counts as errored.  Its message
       * length must still fit.
       */
      r->error_chunks++;
      if (h->length < 6 || (p && nbdp_get16 (p + 4) > h->length - 6))
        MUST (out, R_ERR_LEN, "%s: error chunk type %s with length %" PRIu64
              " cannot hold its message", cmd_name (&nb1, r->type),
              type_name (&nb2, h->type), h->length);
    }
    else if (!known)
      MUST (out, R_CHUNK_TYPE, "%s: got unknown chunk type %s (not an "
            "error type), expected a type defined for this command",
            cmd_name (&nb1, r->type), type_name (&nb2, h->type));
  }
  else {
    switch (h->type) {
    case NBD_REPLY_TYPE_NONE:
      if (!done)
        MUST (out, R_NONE_DONE, "%s: NBD_REPLY_TYPE_NONE chunk without "
              "NBD_REPLY_FLAG_DONE, expected DONE set",
              cmd_name (&nb1, r->type));
      if (h->length != 0)
        MUST (out, R_NONE_LEN, "%s: NBD_REPLY_TYPE_NONE with length %" PRIu64
              ", expected 0", cmd_name (&nb1, r->type), h->length);
      break;
    case NBD_REPLY_TYPE_OFFSET_DATA:
      check_offset_data (s, r, h, p, out);
      break;
    case NBD_REPLY_TYPE_OFFSET_HOLE:
      check_offset_hole (r, h, p, out);
      break;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
    case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
      check_block_status (s, r, h, p, out);
      break;
    case NBD_REPLY_TYPE_ERROR:
    case NBD_REPLY_TYPE_ERROR_OFFSET:
      check_error_chunk (s, r, h, p, out);
      break;
    }
  }
  if (!done)
    return NBDP_RULES_MORE;
  reply_final (s, r, false, 0, out);
  session_retire (s, r);
  return NBDP_RULES_FINAL;
}
