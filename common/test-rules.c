/* Unit tests for the rule engine (common/rules.c): each case feeds one
 * well-formed and one broken message and checks which requirement IDs
 * come back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "nbd-proto.h"
#include "codec.h"
#include "rules.h"

/* ---- helpers -------------------------------------------------------- */

static void
dump (const struct nbdp_violations *v)
{
  for (size_t i = 0; i < v->n; i++)
    print_message ("  %s %s: %s\n", nbdp_level_name (v->v[i].level),
                   v->v[i].id, v->v[i].msg);
}

#define assert_clean(v) do {                    \
    if ((v)->n) dump (v);                       \
    assert_int_equal ((v)->n, 0);               \
  } while (0)
#define assert_has(v, id) do {                  \
    if (!nbdp_violations_has ((v), (id))) dump (v); \
    assert_true (nbdp_violations_has ((v), (id))); \
  } while (0)

/* A session in transmission: export of 1 MiB, given reply style. */
static void
tx_session (struct nbdp_session *s, bool sr, bool eh)
{
  nbdp_session_init (s);
  s->transmission = true;
  s->structured = sr;
  s->extended = eh;
  s->export_size = 1024 * 1024;
  s->eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH;
}

static void
send_req (struct nbdp_session *s, uint64_t cookie, uint16_t type,
          uint16_t flags, uint64_t off, uint64_t count)
{
  struct nbdp_request r = {
    .magic = s->extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC,
    .flags = flags, .type = type, .cookie = cookie,
    .offset = off, .count = count,
  };
  assert_int_equal (nbdp_rules_request_sent (s, &r), 0);
}

static enum nbdp_rules_progress
simple (struct nbdp_session *s, uint64_t cookie, uint32_t error,
        struct nbdp_violations *v)
{
  struct nbdp_reply h = {
    .kind = NBDP_REPLY_SIMPLE, .magic = NBD_SIMPLE_REPLY_MAGIC,
    .error = error, .cookie = cookie,
  };
  return nbdp_rules_check_reply (s, &h, NULL, v);
}

static enum nbdp_rules_progress
chunk (struct nbdp_session *s, uint64_t cookie, uint16_t flags,
       uint16_t type, const void *payload, uint64_t len,
       struct nbdp_violations *v)
{
  struct nbdp_rules_req *r = nbdp_session_find (s, cookie);
  struct nbdp_reply h = {
    .kind = s->extended ? NBDP_REPLY_EXTENDED : NBDP_REPLY_STRUCTURED,
    .magic = s->extended ? NBD_EXTENDED_REPLY_MAGIC
                         : NBD_STRUCTURED_REPLY_MAGIC,
    .flags = flags, .type = type, .cookie = cookie,
    .offset = r ? r->offset : 0, .length = len,
  };
  return nbdp_rules_check_reply (s, &h, payload, v);
}

static enum nbdp_rules_progress
data_chunk (struct nbdp_session *s, uint64_t cookie, uint16_t flags,
            uint64_t off, uint32_t len, struct nbdp_violations *v)
{
  static unsigned char buf[8 + 4096];
  assert_true (len <= 4096);
  nbdp_put64 (buf, off);
  memset (buf + 8, 0xab, len);
  return chunk (s, cookie, flags, NBD_REPLY_TYPE_OFFSET_DATA, buf, 8 + len, v);
}

static enum nbdp_rules_progress
hole_chunk (struct nbdp_session *s, uint64_t cookie, uint16_t flags,
            uint64_t off, uint32_t len, struct nbdp_violations *v)
{
  unsigned char buf[12];
  nbdp_put64 (buf, off);
  nbdp_put32 (buf + 8, len);
  return chunk (s, cookie, flags, NBD_REPLY_TYPE_OFFSET_HOLE, buf, 12, v);
}

static enum nbdp_rules_progress
none_chunk (struct nbdp_session *s, uint64_t cookie, uint16_t flags,
            struct nbdp_violations *v)
{
  return chunk (s, cookie, flags, NBD_REPLY_TYPE_NONE, NULL, 0, v);
}

static enum nbdp_rules_progress
error_chunk (struct nbdp_session *s, uint64_t cookie, uint16_t flags,
             uint32_t err, const char *msg, uint16_t claimed_len,
             bool with_offset, uint64_t off, struct nbdp_violations *v)
{
  unsigned char buf[128];
  size_t ml = strlen (msg), len = 6 + ml;
  nbdp_put32 (buf, err);
  nbdp_put16 (buf + 4, claimed_len);
  memcpy (buf + 6, msg, ml);
  if (with_offset) {
    nbdp_put64 (buf + len, off);
    len += 8;
  }
  return chunk (s, cookie, flags, with_offset ? NBD_REPLY_TYPE_ERROR_OFFSET
                : NBD_REPLY_TYPE_ERROR, buf, len, v);
}

/* Block status chunk with n extents (lengths given), context id. */
static enum nbdp_rules_progress
bs_chunk (struct nbdp_session *s, uint64_t cookie, uint16_t flags,
          uint32_t id, const uint64_t *lens, size_t n,
          struct nbdp_violations *v)
{
  unsigned char buf[8 + 16 * 8];
  size_t len;
  assert_true (n <= 8);
  nbdp_put32 (buf, id);
  if (s->extended) {
    nbdp_put32 (buf + 4, n);
    for (size_t i = 0; i < n; i++) {
      nbdp_put64 (buf + 8 + 16 * i, lens[i]);
      nbdp_put64 (buf + 8 + 16 * i + 8, 0);
    }
    len = 8 + 16 * n;
  }
  else {
    for (size_t i = 0; i < n; i++) {
      nbdp_put32 (buf + 4 + 8 * i, lens[i]);
      nbdp_put32 (buf + 4 + 8 * i + 4, 0);
    }
    len = 4 + 8 * n;
  }
  return chunk (s, cookie, flags, s->extended ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT
                : NBD_REPLY_TYPE_BLOCK_STATUS, buf, len, v);
}

static void
bs_session (struct nbdp_session *s, bool eh)
{
  tx_session (s, !eh, eh);
  s->nr_contexts = 1;
  s->context_ids[0] = 7;
  strcpy (s->context_names[0], "base:allocation");
}

static enum nbdp_rules_progress
opt_reply (struct nbdp_session *s, uint32_t option, uint32_t rep,
           const void *payload, uint32_t len, struct nbdp_violations *v)
{
  struct nbdp_option_reply h = {
    .magic = NBD_REP_MAGIC, .option = option, .reply = rep, .length = len,
  };
  return nbdp_rules_check_option_reply (s, &h, payload, v);
}

static void
info_export (unsigned char buf[12], uint64_t size, uint16_t eflags)
{
  nbdp_put16 (buf, NBD_INFO_EXPORT);
  nbdp_put64 (buf + 2, size);
  nbdp_put16 (buf + 10, eflags);
}

/* ---- greeting ------------------------------------------------------- */

static void
test_greeting (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  unsigned char g[18];
  bool old;

  nbdp_session_init (&s);
  nbdp_put64 (g, NBD_MAGIC);
  nbdp_put64 (g + 8, NBD_NEW_VERSION);
  nbdp_put16 (g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  nbdp_violations_clear (&v);
  nbdp_rules_check_greeting (&s, g, &old, &v);
  assert_clean (&v);
  assert_false (old);
  assert_true (s.fixed_newstyle);

  nbdp_put16 (g + 16, 0x0105);
  nbdp_violations_clear (&v);
  nbdp_rules_check_greeting (&s, g, &old, &v);
  assert_has (&v, "FLAG-HS-3");

  nbdp_put64 (g, 0x1122334455667788);
  nbdp_violations_clear (&v);
  nbdp_rules_check_greeting (&s, g, &old, &v);
  assert_has (&v, "COMPAT-BASE-1");

  nbdp_put64 (g, NBD_MAGIC);
  nbdp_put64 (g + 8, NBD_OLD_VERSION);
  nbdp_violations_clear (&v);
  nbdp_rules_check_greeting (&s, g, &old, &v);
  assert_clean (&v);
  assert_true (old);
}

/* ---- option replies ------------------------------------------------- */

static void
test_opt_go_ok (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  unsigned char ie[12], bs[14];
  unsigned char req[4 + 0 + 2 + 2];

  nbdp_session_init (&s);
  nbdp_put32 (req, 0);
  nbdp_put16 (req + 4, 1);
  nbdp_put16 (req + 6, NBD_INFO_BLOCK_SIZE);
  nbdp_rules_option_sent (&s, NBD_OPT_GO, req, sizeof req);
  nbdp_violations_clear (&v);
  info_export (ie, 65536, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
  assert_int_equal (opt_reply (&s, NBD_OPT_GO, NBD_REP_INFO, ie, 12, &v),
                    NBDP_RULES_MORE);
  nbdp_put16 (bs, NBD_INFO_BLOCK_SIZE);
  nbdp_put32 (bs + 2, 512);
  nbdp_put32 (bs + 6, 4096);
  nbdp_put32 (bs + 10, 1 << 25);
  assert_int_equal (opt_reply (&s, NBD_OPT_GO, NBD_REP_INFO, bs, 14, &v),
                    NBDP_RULES_MORE);
  assert_int_equal (opt_reply (&s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0, &v),
                    NBDP_RULES_FINAL);
  assert_clean (&v);
  assert_true (s.transmission);
  assert_int_equal (s.export_size, 65536);
  assert_int_equal (s.min_block, 512);
  assert_int_equal (s.max_payload, 1 << 25);
  assert_true (s.have_block_size);
}

static void
test_opt_go_no_info_export (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  nbdp_session_init (&s);
  nbdp_rules_option_sent (&s, NBD_OPT_INFO, NULL, 0);
  nbdp_violations_clear (&v);
  opt_reply (&s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0, &v);
  assert_has (&v, "REP-INFO-1");
  assert_false (s.transmission);
}

static void
test_opt_info_bad (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  unsigned char ie[16], bs[14];

  nbdp_session_init (&s);
  nbdp_rules_option_sent (&s, NBD_OPT_INFO, NULL, 0);
  nbdp_violations_clear (&v);
  /* Wrong length. */
  info_export (ie, 4096, NBD_FLAG_HAS_FLAGS);
  opt_reply (&s, NBD_OPT_INFO, NBD_REP_INFO, ie, 13, &v);
  assert_has (&v, "INFO-EXPORT-1");
  /* HAS_FLAGS missing, DF without SR, FAST_ZERO without WRITE_ZEROES. */
  nbdp_violations_clear (&v);
  info_export (ie, 4096, NBD_FLAG_SEND_DF | NBD_FLAG_SEND_FAST_ZERO);
  opt_reply (&s, NBD_OPT_INFO, NBD_REP_INFO, ie, 12, &v);
  assert_has (&v, "FLAG-TX-4");
  assert_has (&v, "FLAG-TX-9");
  assert_has (&v, "FLAG-TX-11");
  /* Bad block sizes, judged at ACK. */
  nbdp_put16 (bs, NBD_INFO_BLOCK_SIZE);
  nbdp_put32 (bs + 2, 3);
  nbdp_put32 (bs + 6, 256);
  nbdp_put32 (bs + 10, 128);
  nbdp_violations_clear (&v);
  opt_reply (&s, NBD_OPT_INFO, NBD_REP_INFO, bs, 14, &v);
  opt_reply (&s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0, &v);
  assert_has (&v, "SIZE-13");
  assert_has (&v, "SIZE-17");
  assert_has (&v, "SIZE-21");
}

static void
test_opt_reply_framing (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  struct nbdp_option_reply h = {
    .magic = 0x1234, .option = NBD_OPT_LIST, .reply = NBD_REP_ACK,
  };
  unsigned char srv[8];

  nbdp_session_init (&s);
  nbdp_violations_clear (&v);
  /* Reply with no option pending. */
  opt_reply (&s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0, &v);
  assert_has (&v, "COMPAT-BASE-1");

  nbdp_rules_option_sent (&s, NBD_OPT_LIST, NULL, 0);
  nbdp_violations_clear (&v);
  /* SERVER whose name length exceeds the reply. */
  nbdp_put32 (srv, 5);
  memcpy (srv + 4, "abcd", 4);
  assert_int_equal (opt_reply (&s, NBD_OPT_LIST, NBD_REP_SERVER, srv, 8, &v),
                    NBDP_RULES_MORE);
  assert_has (&v, "REP-SERVER-1");
  /* Echo of another option, wrong magic, ACK with data. */
  nbdp_violations_clear (&v);
  h.length = 3;
  nbdp_rules_check_option_reply (&s, &h, "abc", &v);
  assert_has (&v, "COMPAT-BASE-1");
  assert_has (&v, "HS-FIX-3");

  nbdp_rules_option_sent (&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  nbdp_violations_clear (&v);
  opt_reply (&s, NBD_OPT_GO, NBD_REP_SERVER, srv, 8, &v);
  assert_has (&v, "COMPAT-BASE-1");
  assert_has (&v, "COMPAT-BASE-1");
  nbdp_violations_clear (&v);
  opt_reply (&s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0, &v);
  assert_clean (&v);
  assert_true (s.structured);
}

static void
test_opt_errors (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  unsigned char ie[12], req[8];

  nbdp_session_init (&s);
  /* INFO before ERR_UNKNOWN: SHOULD NOT. */
  nbdp_rules_option_sent (&s, NBD_OPT_GO, NULL, 0);
  nbdp_violations_clear (&v);
  info_export (ie, 4096, NBD_FLAG_HAS_FLAGS);
  opt_reply (&s, NBD_OPT_GO, NBD_REP_INFO, ie, 12, &v);
  opt_reply (&s, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "no", 2, &v);
  assert_has (&v, "OPT-GO-13");
  assert_int_equal (nbdp_violations_count (&v, NBDP_MUST), 0);
  assert_false (s.transmission);
  /* BLOCK_SIZE_REQD after requesting it. */
  nbdp_put32 (req, 0);
  nbdp_put16 (req + 4, 1);
  nbdp_put16 (req + 6, NBD_INFO_BLOCK_SIZE);
  nbdp_rules_option_sent (&s, NBD_OPT_GO, req, 8);
  nbdp_violations_clear (&v);
  opt_reply (&s, NBD_OPT_GO, NBD_REP_ERR_BLOCK_SIZE_REQD, NULL, 0, &v);
  assert_has (&v, "OPT-GO-16");
  /* Error message with a NUL. */
  nbdp_rules_option_sent (&s, 99, NULL, 0);
  nbdp_violations_clear (&v);
  opt_reply (&s, 99, NBD_REP_ERR_UNSUP, "a\0b", 3, &v);
  assert_has (&v, "GEN-STR-1");
  /* ABORT must be acked. */
  nbdp_rules_option_sent (&s, NBD_OPT_ABORT, NULL, 0);
  nbdp_violations_clear (&v);
  opt_reply (&s, NBD_OPT_ABORT, NBD_REP_ERR_INVALID, NULL, 0, &v);
  assert_has (&v, "OPT-ABORT-1");
}

static void
test_opt_meta_context (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  unsigned char m1[4 + 15], m2[4 + 9];

  nbdp_session_init (&s);
  s.structured = true;
  nbdp_rules_option_sent (&s, NBD_OPT_SET_META_CONTEXT, NULL, 0);
  nbdp_violations_clear (&v);
  nbdp_put32 (m1, 3);
  memcpy (m1 + 4, "base:allocation", 15);
  opt_reply (&s, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT, m1,
             sizeof m1, &v);
  assert_clean (&v);
  nbdp_put32 (m2, 3);
  memcpy (m2 + 4, "nocolon!!", 9);
  opt_reply (&s, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT, m2,
             sizeof m2, &v);
  assert_has (&v, "OPT-SMC-7");
  assert_has (&v, "OPT-LMC-16");
  opt_reply (&s, NBD_OPT_SET_META_CONTEXT, NBD_REP_ACK, NULL, 0, &v);
  assert_int_equal (s.nr_contexts, 2);
  assert_int_equal (s.context_ids[0], 3);
  assert_string_equal (s.context_names[0], "base:allocation");
}

/* ---- transmission: framing ------------------------------------------ */

static void
test_cookie (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, false, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_FLUSH, 0, 0, 0);
  assert_int_equal (simple (&s, 1, 0, &v), NBDP_RULES_FINAL);
  assert_clean (&v);
  assert_int_equal (s.nr_inflight, 0);
  simple (&s, 1, 0, &v);
  assert_has (&v, "SR-MSG-8");
  nbdp_violations_clear (&v);
  simple (&s, 42, 0, &v);
  assert_has (&v, "TX-GEN-4");
  nbdp_session_free (&s);
}

static void
test_reply_kind (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  /* Structured without SR. */
  tx_session (&s, false, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_FLUSH, 0, 0, 0);
  none_chunk (&s, 1, NBD_REPLY_FLAG_DONE, &v);
  assert_has (&v, "SR-MSG-1");
  nbdp_session_free (&s);

  /* Simple reply after EH. */
  tx_session (&s, false, true);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_FLUSH, 0, 0, 0);
  simple (&s, 1, 0, &v);
  assert_has (&v, "EH-SIMPLE-1");
  nbdp_session_free (&s);

  /* Simple reply to READ with SR; simple to FLUSH with SR is fine. */
  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_FLUSH, 0, 0, 0);
  simple (&s, 1, 0, &v);
  assert_clean (&v);
  send_req (&s, 2, NBD_CMD_READ, 0, 0, 512);
  simple (&s, 2, NBD_EINVAL, &v);
  assert_has (&v, "SR-MSG-3");
  nbdp_session_free (&s);
}

static void
test_extended_offset (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  struct nbdp_reply h = {
    .kind = NBDP_REPLY_EXTENDED, .magic = NBD_EXTENDED_REPLY_MAGIC,
    .flags = NBD_REPLY_FLAG_DONE, .type = NBD_REPLY_TYPE_NONE,
    .cookie = 5, .offset = 4096,
  };

  tx_session (&s, false, true);
  nbdp_violations_clear (&v);
  send_req (&s, 5, NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 0, 512);
  nbdp_rules_check_reply (&s, &h, NULL, &v);
  assert_has (&v, "EH-REP-3");
  /* Structured magic after EH. */
  nbdp_violations_clear (&v);
  send_req (&s, 6, NBD_CMD_FLUSH, 0, 0, 0);
  h.kind = NBDP_REPLY_STRUCTURED;
  h.cookie = 6;
  nbdp_rules_check_reply (&s, &h, NULL, &v);
  assert_has (&v, "EH-REP-1");
  nbdp_session_free (&s);
}

static void
test_none_and_flags (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_FLUSH, 0, 0, 0);
  assert_int_equal (none_chunk (&s, 1, 0, &v), NBDP_RULES_MORE);
  assert_has (&v, "FLAG-REPLY-2");
  nbdp_violations_clear (&v);
  none_chunk (&s, 1, NBD_REPLY_FLAG_DONE | 0x40, &v);
  assert_has (&v, "FLAG-REPLY-3");
  /* Unknown non-error type, and a read-only type for FLUSH. */
  nbdp_violations_clear (&v);
  send_req (&s, 2, NBD_CMD_FLUSH, 0, 0, 0);
  chunk (&s, 2, 0, 77, NULL, 0, &v);
  assert_has (&v, "SR-TYPE-5");
  hole_chunk (&s, 2, NBD_REPLY_FLAG_DONE, 0, 512, &v);
  assert_has (&v, "SR-TYPE-5");
  nbdp_session_free (&s);
}

/* ---- transmission: read chunks -------------------------------------- */

static void
test_read_ok (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, 4096, 3072);
  /* Out of order, data + hole, then NONE. */
  data_chunk (&s, 1, 0, 6144, 1024, &v);
  hole_chunk (&s, 1, 0, 4096, 2048, &v);
  assert_int_equal (none_chunk (&s, 1, NBD_REPLY_FLAG_DONE, &v),
                    NBDP_RULES_FINAL);
  assert_clean (&v);
  /* Data chunk as the final chunk. */
  send_req (&s, 2, NBD_CMD_READ, 0, 0, 512);
  assert_int_equal (data_chunk (&s, 2, NBD_REPLY_FLAG_DONE, 0, 512, &v),
                    NBDP_RULES_FINAL);
  assert_clean (&v);
  nbdp_session_free (&s);
}

static void
test_read_range (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, 4096, 1024);
  data_chunk (&s, 1, 0, 4096 + 512, 1024, &v);
  assert_has (&v, "SR-DATA-2");
  nbdp_violations_clear (&v);
  hole_chunk (&s, 1, 0, 0, 512, &v);
  assert_has (&v, "SR-HOLE-2");
  nbdp_session_free (&s);

  /* No overflow on offsets near 2^64. */
  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, UINT64_MAX - 100, 50);
  hole_chunk (&s, 1, 0, UINT64_MAX - 60, 100, &v);
  assert_has (&v, "SR-HOLE-2");
  nbdp_session_free (&s);
}

static void
test_read_overlap (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, 0, 4096);
  data_chunk (&s, 1, 0, 0, 2048, &v);
  assert_clean (&v);
  hole_chunk (&s, 1, 0, 2047, 2049, &v);
  assert_has (&v, "SR-HOLE-3");
  /* Adjacent is fine. */
  nbdp_violations_clear (&v);
  hole_chunk (&s, 1, 0, 2048, 2048, &v);
  assert_clean (&v);
  none_chunk (&s, 1, NBD_REPLY_FLAG_DONE, &v);
  assert_clean (&v);
  nbdp_session_free (&s);
}

/* Many small chunks: adjacent ones (in order or reversed) merge into one
 * range; scattered ones are found by binary search; the verdicts are
 * those of a check against every earlier chunk.
 */
static void
test_read_many_chunks (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  struct nbdp_rules_req *r;
  uint64_t i, n = 20000;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  /* In order, 1 byte each: one range. */
  send_req (&s, 1, NBD_CMD_READ, 0, 0, n);
  for (i = 0; i < n - 1; i++)
    data_chunk (&s, 1, 0, i, 1, &v);
  r = nbdp_session_find (&s, 1);
  assert_non_null (r);
  assert_int_equal (r->nr_ranges, 1);
  data_chunk (&s, 1, NBD_REPLY_FLAG_DONE, n - 1, 1, &v);
  assert_clean (&v);
  /* Reversed: still one range. */
  send_req (&s, 2, NBD_CMD_READ, 0, 0, n);
  for (i = n; i-- > 1; )
    hole_chunk (&s, 2, 0, i, 1, &v);
  assert_int_equal (nbdp_session_find (&s, 2)->nr_ranges, 1);
  hole_chunk (&s, 2, NBD_REPLY_FLAG_DONE, 0, 1, &v);
  assert_clean (&v);
  /* Scattered (every other byte, from the end), then the gaps; a repeat
   * of any byte overlaps.
   */
  send_req (&s, 3, NBD_CMD_READ, 0, 0, 2 * n);
  for (i = n; i-- > 0; )
    data_chunk (&s, 3, 0, 2 * i, 1, &v);
  assert_int_equal (nbdp_session_find (&s, 3)->nr_ranges, n);
  data_chunk (&s, 3, 0, 2 * 7777, 1, &v);
  assert_has (&v, "SR-DATA-3");
  nbdp_violations_clear (&v);
  hole_chunk (&s, 3, 0, 2 * 5000 - 1, 3, &v);
  assert_has (&v, "SR-HOLE-3");
  nbdp_violations_clear (&v);
  for (i = 0; i < n - 1; i++)
    hole_chunk (&s, 3, 0, 2 * i + 1, 1, &v);
  assert_clean (&v);
  hole_chunk (&s, 3, NBD_REPLY_FLAG_DONE, 2 * n - 1, 1, &v);
  assert_clean (&v);
  nbdp_session_free (&s);
}

/* Overlapping both an earlier content chunk and an earlier error offset:
 * the one received first names the requirement.
 */
static void
test_read_overlap_order (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, 0, 1024);
  data_chunk (&s, 1, 0, 0, 512, &v);
  error_chunk (&s, 1, 0, NBD_EIO, "", 0, true, 600, &v);
  assert_clean (&v);
  data_chunk (&s, 1, 0, 500, 200, &v);
  assert_has (&v, "SR-DATA-3");
  assert_false (nbdp_violations_has (&v, "CMD-READ-31"));
  nbdp_violations_clear (&v);
  send_req (&s, 2, NBD_CMD_READ, 0, 0, 1024);
  error_chunk (&s, 2, 0, NBD_EIO, "", 0, true, 100, &v);
  data_chunk (&s, 2, 0, 200, 100, &v);
  assert_clean (&v);
  hole_chunk (&s, 2, 0, 50, 200, &v);
  assert_has (&v, "CMD-READ-31");
  assert_false (nbdp_violations_has (&v, "SR-HOLE-3"));
  /* After an error offset adjacent chunks stay apart. */
  nbdp_violations_clear (&v);
  data_chunk (&s, 2, 0, 300, 100, &v);
  assert_clean (&v);
  assert_int_equal (nbdp_session_find (&s, 2)->nr_ranges, 2);
  nbdp_session_free (&s);
}

static void
test_read_coverage_and_df (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  s.eflags |= NBD_FLAG_SEND_DF;
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, 0, 4096);
  data_chunk (&s, 1, 0, 0, 1024, &v);
  none_chunk (&s, 1, NBD_REPLY_FLAG_DONE, &v);
  assert_has (&v, "CMD-READ-19");
  /* Short but with an error chunk: fine. */
  nbdp_violations_clear (&v);
  send_req (&s, 2, NBD_CMD_READ, 0, 0, 4096);
  data_chunk (&s, 2, 0, 0, 1024, &v);
  error_chunk (&s, 2, NBD_REPLY_FLAG_DONE, NBD_EIO, "bad", 3, true, 1024,
               &v);
  assert_clean (&v);
  /* DF: two content chunks. */
  send_req (&s, 3, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 2048);
  data_chunk (&s, 3, 0, 0, 1024, &v);
  hole_chunk (&s, 3, NBD_REPLY_FLAG_DONE, 1024, 1024, &v);
  assert_has (&v, "CMD-READ-36");
  /* Short reads via simple replies are not judged here. */
  nbdp_session_free (&s);
}

static void
test_read_payload_limits (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  unsigned char h[12] = { 0 };

  tx_session (&s, true, false);
  s.have_block_size = true;
  s.min_block = 1;
  s.pref_block = 512;
  s.max_payload = 1024;
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_READ, 0, 0, 4096);
  data_chunk (&s, 1, 0, 0, 2048, &v);
  assert_has (&v, "SR-TYPE-2");
  nbdp_violations_clear (&v);
  chunk (&s, 1, 0, NBD_REPLY_TYPE_OFFSET_DATA, h, 8, &v);
  assert_has (&v, "SR-DATA-1");
  nbdp_violations_clear (&v);
  chunk (&s, 1, 0, NBD_REPLY_TYPE_OFFSET_HOLE, h, 12, &v);
  assert_has (&v, "SR-HOLE-5");
  nbdp_violations_clear (&v);
  chunk (&s, 1, 0, NBD_REPLY_TYPE_OFFSET_HOLE, h, 8, &v);
  assert_has (&v, "SR-HOLE-1");
  nbdp_session_free (&s);
}

/* ---- transmission: error chunks ------------------------------------- */

static void
test_error_chunks (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;

  tx_session (&s, true, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_WRITE, 0, 0, 512);
  error_chunk (&s, 1, NBD_REPLY_FLAG_DONE, NBD_EPERM, "read-only", 9, false,
               0, &v);
  assert_clean (&v);
  /* Message length larger than the chunk. */
  send_req (&s, 2, NBD_CMD_WRITE, 0, 0, 512);
  error_chunk (&s, 2, NBD_REPLY_FLAG_DONE, NBD_EPERM, "ro", 30, false, 0, &v);
  assert_has (&v, "SR-ERR-1");
  /* Zero error, unknown error value. */
  nbdp_violations_clear (&v);
  send_req (&s, 3, NBD_CMD_WRITE, 0, 0, 512);
  error_chunk (&s, 3, NBD_REPLY_FLAG_DONE, 0, "", 0, false, 0, &v);
  assert_has (&v, "SR-ERR-5");
  nbdp_violations_clear (&v);
  send_req (&s, 4, NBD_CMD_WRITE, 0, 0, 512);
  error_chunk (&s, 4, NBD_REPLY_FLAG_DONE, 2, "", 0, false, 0, &v);
  assert_has (&v, "ERR-11");
  /* Offset outside the request; repeated offset; mixing. */
  nbdp_violations_clear (&v);
  send_req (&s, 5, NBD_CMD_READ, 0, 1024, 512);
  error_chunk (&s, 5, 0, NBD_EIO, "", 0, true, 1536, &v);
  assert_has (&v, "SR-ERROFF-2");
  nbdp_violations_clear (&v);
  error_chunk (&s, 5, 0, NBD_EIO, "", 0, true, 1100, &v);
  error_chunk (&s, 5, 0, NBD_EIO, "", 0, true, 1100, &v);
  assert_has (&v, "SR-ERROFF-4");
  error_chunk (&s, 5, NBD_REPLY_FLAG_DONE, NBD_EIO, "", 0, false, 0, &v);
  assert_has (&v, "CMD-READ-32");
  /* Content after an error offset it covers. */
  nbdp_violations_clear (&v);
  send_req (&s, 6, NBD_CMD_READ, 0, 0, 1024);
  error_chunk (&s, 6, 0, NBD_EIO, "", 0, true, 100, &v);
  data_chunk (&s, 6, NBD_REPLY_FLAG_DONE, 0, 512, &v);
  assert_has (&v, "CMD-READ-31");
  /* Error offset for FLUSH is not allowed. */
  nbdp_violations_clear (&v);
  send_req (&s, 7, NBD_CMD_FLUSH, 0, 0, 0);
  error_chunk (&s, 7, NBD_REPLY_FLAG_DONE, NBD_EIO, "", 0, true, 0, &v);
  assert_has (&v, "SR-TYPE-5");
  /* Simple reply with a bad error value. */
  nbdp_violations_clear (&v);
  send_req (&s, 8, NBD_CMD_FLUSH, 0, 0, 0);
  simple (&s, 8, 9999, &v);
  assert_has (&v, "ERR-11");
  nbdp_session_free (&s);
}

/* ---- transmission: block status ------------------------------------- */

static void
test_bs_ok (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  uint64_t lens[] = { 4096, 8192, 1 << 20 };

  for (int eh = 0; eh <= 1; eh++) {
    bs_session (&s, eh);
    nbdp_violations_clear (&v);
    send_req (&s, 1, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
    /* Last extent may overrun the request length. */
    assert_int_equal (bs_chunk (&s, 1, NBD_REPLY_FLAG_DONE, 7, lens, 3, &v),
                      NBDP_RULES_FINAL);
    assert_clean (&v);
    /* Fewer extents than the whole range is fine too. */
    send_req (&s, 2, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
    bs_chunk (&s, 2, 0, 7, lens, 1, &v);
    none_chunk (&s, 2, NBD_REPLY_FLAG_DONE, &v);
    assert_clean (&v);
    nbdp_session_free (&s);
  }
}

static void
test_bs_bad (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  uint64_t zero[] = { 4096, 0, 4096 };
  uint64_t sum[] = { 8192, 8192, 4096 };
  uint64_t two[] = { 512, 512 };
  uint64_t big[] = { 32768 };
  unsigned char buf[8 + 16];

  bs_session (&s, false);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  bs_chunk (&s, 1, NBD_REPLY_FLAG_DONE, 7, zero, 3, &v);
  assert_has (&v, "BS-CHUNK-3");

  nbdp_violations_clear (&v);
  send_req (&s, 2, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  bs_chunk (&s, 2, NBD_REPLY_FLAG_DONE, 7, sum, 3, &v);
  assert_has (&v, "BS-CHUNK-6");

  nbdp_violations_clear (&v);
  send_req (&s, 3, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 16384);
  bs_chunk (&s, 3, NBD_REPLY_FLAG_DONE, 7, two, 2, &v);
  assert_has (&v, "BS-CHUNK-4");
  nbdp_violations_clear (&v);
  send_req (&s, 4, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 16384);
  bs_chunk (&s, 4, NBD_REPLY_FLAG_DONE, 7, big, 1, &v);
  assert_has (&v, "BS-CHUNK-5");

  /* Unknown context; no chunk for the selected one. */
  nbdp_violations_clear (&v);
  send_req (&s, 5, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  bs_chunk (&s, 5, NBD_REPLY_FLAG_DONE, 8, big, 1, &v);
  assert_has (&v, "BS-CHUNK-2");
  assert_has (&v, "BS-CHUNK-2");
  /* Two chunks for one context. */
  nbdp_violations_clear (&v);
  send_req (&s, 6, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  bs_chunk (&s, 6, 0, 7, big, 1, &v);
  bs_chunk (&s, 6, NBD_REPLY_FLAG_DONE, 7, big, 1, &v);
  assert_has (&v, "BS-CHUNK-2");
  /* Bad length. */
  nbdp_violations_clear (&v);
  send_req (&s, 7, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  memset (buf, 0, sizeof buf);
  chunk (&s, 7, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, buf, 4, &v);
  assert_has (&v, "BS-CHUNK-1");
  /* Extended type without EH. */
  nbdp_violations_clear (&v);
  send_req (&s, 8, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  chunk (&s, 8, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS_EXT, buf,
         24, &v);
  assert_has (&v, "EH-BS-2");
  /* Successful simple reply to BLOCK_STATUS. */
  nbdp_violations_clear (&v);
  send_req (&s, 9, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  simple (&s, 9, 0, &v);
  assert_has (&v, "BS-CHUNK-2");
  /* Minimum block size. */
  s.have_block_size = true;
  s.min_block = 4096;
  s.pref_block = 4096;
  s.max_payload = 1 << 25;
  nbdp_violations_clear (&v);
  send_req (&s, 10, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  bs_chunk (&s, 10, NBD_REPLY_FLAG_DONE, 7, two, 1, &v);
  /* Compact replies: a SHOULD (CMD-BS-14); EH-BS-11 needs extended. */
  assert_has (&v, "CMD-BS-14");
  nbdp_session_free (&s);

  /* Extended: count field, high status bits. */
  bs_session (&s, true);
  nbdp_violations_clear (&v);
  send_req (&s, 1, NBD_CMD_BLOCK_STATUS, 0, 0, 16384);
  nbdp_put32 (buf, 7);
  nbdp_put32 (buf + 4, 2);
  nbdp_put64 (buf + 8, 4096);
  nbdp_put64 (buf + 16, UINT64_C (1) << 40);
  chunk (&s, 1, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS_EXT, buf,
         24, &v);
  assert_has (&v, "EH-BS-3");
  assert_has (&v, "EH-BS-7");
  nbdp_session_free (&s);
}

/* ---- client-side request checks ------------------------------------- */

static void
test_request_checks (void **state)
{
  struct nbdp_session s;
  struct nbdp_violations v;
  struct nbdp_request r = {
    .magic = NBD_REQUEST_MAGIC, .type = NBD_CMD_TRIM, .cookie = 1,
    .offset = 0, .count = 512,
  };

  tx_session (&s, false, false);
  nbdp_violations_clear (&v);
  nbdp_rules_check_request (&s, &r, &v);
  assert_has (&v, "CMD-TRIM-5");
  nbdp_violations_clear (&v);
  r.type = NBD_CMD_READ;
  r.offset = s.export_size - 256;
  r.flags = NBD_CMD_FLAG_FUA;
  nbdp_rules_check_request (&s, &r, &v);
  assert_has (&v, "SIZE-33");
  assert_has (&v, "FLAG-TX-3");
  nbdp_violations_clear (&v);
  r.offset = 0;
  r.flags = 0;
  send_req (&s, 1, NBD_CMD_READ, 0, 0, 512);
  nbdp_rules_check_request (&s, &r, &v);
  assert_has (&v, "TX-GEN-2");
  assert_int_equal (nbdp_violations_count (&v, NBDP_MUST), 0);
  nbdp_session_free (&s);
}

static void
test_violation_capacity (void **state)
{
  struct nbdp_violations v;

  nbdp_violations_clear (&v);
  for (int i = 0; i < NBDP_MAX_VIOLATIONS + 3; i++)
    nbdp_violation_add (&v, "X", NBDP_SHOULD, "n=%d", i);
  assert_int_equal (v.n, NBDP_MAX_VIOLATIONS);
  assert_int_equal (v.dropped, 3);
  assert_string_equal (v.v[2].msg, "n=2");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_greeting),
    cmocka_unit_test (test_opt_go_ok),
    cmocka_unit_test (test_opt_go_no_info_export),
    cmocka_unit_test (test_opt_info_bad),
    cmocka_unit_test (test_opt_reply_framing),
    cmocka_unit_test (test_opt_errors),
    cmocka_unit_test (test_opt_meta_context),
    cmocka_unit_test (test_cookie),
    cmocka_unit_test (test_reply_kind),
    cmocka_unit_test (test_extended_offset),
    cmocka_unit_test (test_none_and_flags),
    cmocka_unit_test (test_read_ok),
    cmocka_unit_test (test_read_range),
    cmocka_unit_test (test_read_overlap),
    cmocka_unit_test (test_read_many_chunks),
    cmocka_unit_test (test_read_overlap_order),
    cmocka_unit_test (test_read_coverage_and_df),
    cmocka_unit_test (test_read_payload_limits),
    cmocka_unit_test (test_error_chunks),
    cmocka_unit_test (test_bs_ok),
    cmocka_unit_test (test_bs_bad),
    cmocka_unit_test (test_request_checks),
    cmocka_unit_test (test_violation_capacity),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
