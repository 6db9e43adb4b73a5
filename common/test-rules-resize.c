/* nbd-conformance: unit tests of common/rules-resize.c, the pure checks
 * of the draft RESIZE extension (specs/resize.md).  Each test builds a
 * connection state by hand, feeds one reply summary or chunk, and checks
 * that exactly the expected requirement IDs fire (and nothing fires for
 * conforming input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rules-resize.h"

#define F_ALL NBD_RESIZE_MASK_FEATURES

static struct nbdp_rz_violations vs;

/* A negotiated connection with everything active, G = gran. */
static void
negotiated (struct nbdp_rz_state *st, uint32_t gran, uint64_t size)
{
  struct nbdp_rz_export ex = {
    .have_export = true, .size = size,
    .eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_RESIZE | NBD_FLAG_SEND_FUA,
    .have_block_size = true, .min_block = 1, .n_info_resize = 1,
    .info_len_ok = true,
    .info = { .present = true, .capabilities = F_ALL, .active = F_ALL,
              .granularity = gran },
  };

  nbdp_rz_state_init (st, NBDP_RZ_ENC_NEGOTIATED);
  st->structured = true;
  st->opt_sent = st->opt_acked = true;
  st->requested = F_ALL;
  st->info_listed = true;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_export (st, true, &ex, &vs);
  nbdp_rz_enter_transmission (st, &ex, &vs);
  assert_int_equal (vs.n, 0);
  assert_int_equal (st->mode, NBDP_RZ_MODE_NEGOTIATED);
}

static void
assert_only (const char *id)
{
  size_t i;

  if (vs.n != 1 || strcmp (vs.v[0].id, id) != 0) {
    for (i = 0; i < vs.n; i++)
      fprintf (stderr, "  got %s: %s\n", vs.v[i].id, vs.v[i].msg);
    fail_msg ("expected exactly %s, got %zu violations", id, vs.n);
  }
}

static void
assert_has (const char *id)
{
  size_t i;

  if (!nbdp_rz_violations_has (&vs, id)) {
    for (i = 0; i < vs.n; i++)
      fprintf (stderr, "  got %s: %s\n", vs.v[i].id, vs.v[i].msg);
    fail_msg ("expected %s among %zu violations", id, vs.n);
  }
}

static void
assert_none (void)
{
  size_t i;

  for (i = 0; i < vs.n; i++)
    fprintf (stderr, "  unexpected %s: %s\n", vs.v[i].id, vs.v[i].msg);
  assert_int_equal (vs.n, 0);
}

/* ---- helpers ------------------------------------------------------- */

static void
test_seq_after (void **state)
{
  assert_true (nbdp_rz_seq_after (1, 2));
  assert_false (nbdp_rz_seq_after (2, 2));
  assert_false (nbdp_rz_seq_after (2, 1));
  assert_true (nbdp_rz_seq_after (0xfffffff0, 3));          /* wrap */
  assert_true (nbdp_rz_seq_after (0, 0x7fffffff));
  assert_false (nbdp_rz_seq_after (0, 0x80000000));         /* window */
}

static void
test_roundup_and_grant (void **state)
{
  uint64_t r;

  assert_true (nbdp_rz_roundup (4097, 4096, &r));
  assert_true (r == 8192);
  assert_true (nbdp_rz_roundup (8192, 4096, &r) && r == 8192);
  assert_true (nbdp_rz_roundup (5, 1, &r) && r == 5);
  assert_false (nbdp_rz_roundup (UINT64_MAX, 4096, &r));
  /* SIZE_REPLY needs chunks; QUERY and NOTIFY need SIZE_REPLY. */
  assert_int_equal (nbdp_rz_grant (F_ALL, F_ALL, false),
                    F_ALL & ~(NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY
                              | NBD_RESIZE_F_NOTIFY));
  assert_int_equal (nbdp_rz_grant (NBD_RESIZE_F_GROW | 0x100, F_ALL, true),
                    NBD_RESIZE_F_GROW);
}

static void
test_decode (void **state)
{
  unsigned char b[22];
  struct nbdp_rz_info in = { .present = true, .capabilities = 0x13,
                             .active = 0x11, .granularity = 4096,
                             .max_size = 1 << 20 }, out;
  struct nbdp_rz_chunk ch = { .size = 12345, .events = 0x11,
                              .sequence = 7 }, ch2;

  nbdp_rz_encode_info (b, &in);
  assert_true (nbdp_rz_decode_info (b, 22, &out));
  assert_int_equal (out.capabilities, 0x13);
  assert_int_equal (out.active, 0x11);
  assert_int_equal (out.granularity, 4096);
  assert_true (out.max_size == 1 << 20);
  assert_false (nbdp_rz_decode_info (b, 20, &out));
  nbdp_rz_encode_chunk (b, &ch);
  assert_true (nbdp_rz_decode_chunk (b, 16, &ch2));
  assert_true (ch2.size == 12345 && ch2.events == 0x11 && ch2.sequence == 7);
  assert_false (nbdp_rz_decode_chunk (b, 20, &ch2));
}

static void
test_names (void **state)
{
  char b[128];
  uint32_t f;
  enum nbdp_rz_encoding e;

  assert_string_equal (nbdp_rz_features_str (b, sizeof b, 0x111),
                       "GROW|SIZE_REPLY|0x100");
  assert_string_equal (nbdp_rz_events_str (b, sizeof b, 0x41),
                       "GREW|ROUNDED");
  assert_int_equal (nbdp_rz_features_parse ("grow,size-reply", &f), 0);
  assert_int_equal (f, 0x11);
  assert_int_equal (nbdp_rz_features_parse ("bogus", &f), -1);
  assert_int_equal (nbdp_rz_encoding_parse ("info-optin", &e), 0);
  assert_int_equal (e, NBDP_RZ_ENC_INFO_OPTIN);
}

/* ---- handshake ----------------------------------------------------- */

static void
test_opt_reply (void **state)
{
  struct nbdp_rz_state st;

  nbdp_rz_state_init (&st, NBDP_RZ_ENC_NEGOTIATED);
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_opt_reply (&st, NBD_REP_ACK, 0, &vs);
  nbdp_rz_check_opt_reply (&st, NBD_REP_ERR_UNSUP, 0, &vs);
  nbdp_rz_check_opt_reply (&st, NBD_REP_ERR_POLICY, 0, &vs);
  assert_none ();
  nbdp_rz_check_opt_reply (&st, NBD_REP_ACK, 4, &vs);
  assert_only ("RZ-NEG-1");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_opt_reply (&st, NBD_REP_ERR_INVALID, 0, &vs);
  assert_only ("RZ-NEG-1");
}

static void
check_info (uint32_t caps, uint32_t active, uint32_t gran, uint64_t max,
            uint64_t size, uint16_t eflags, bool acked)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_export ex = {
    .have_export = true, .size = size, .eflags = NBD_FLAG_HAS_FLAGS | eflags,
    .have_block_size = true, .min_block = 512, .n_info_resize = 1,
    .info_len_ok = true,
    .info = { .present = true, .capabilities = caps, .active = active,
              .granularity = gran, .max_size = max },
  };

  nbdp_rz_state_init (&st, NBDP_RZ_ENC_NEGOTIATED);
  st.structured = true;
  st.opt_sent = st.opt_acked = acked;
  st.requested = acked ? F_ALL : 0;
  st.info_listed = true;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_export (&st, true, &ex, &vs);
}

static void
test_info_item (void **state)
{
  check_info (F_ALL, F_ALL, 4096, 1 << 30, 1 << 20, 0, true);
  assert_none ();
  check_info (F_ALL | 0x100, F_ALL, 0, 0, 1 << 20, 0, true);
  assert_has ("RZ-VAL-1");
  check_info (0x13, 0x17, 0, 0, 1 << 20, 0, true);
  assert_has ("RZ-INFO-5");
  check_info (0x63, 0x03, 0, 0, 1 << 20, 0, true);
  assert_has ("RZ-INFO-6");
  check_info (F_ALL, F_ALL, 3000, 0, 1 << 20, 0, true);
  assert_has ("RZ-INFO-7");
  check_info (F_ALL, F_ALL, 256, 0, 1 << 20, 0, true);   /* < min block */
  assert_only ("RZ-INFO-7");
  check_info (F_ALL, F_ALL, 4096, 0, (1 << 20) + 512, 0, true);
  assert_only ("RZ-INFO-8");
  assert_true (vs.v[0].disconnect);
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-33");
  check_info (F_ALL, F_ALL, 4096, 5000, 1 << 20, 0, true);
  assert_only ("RZ-INFO-9");
  check_info (F_ALL, F_ALL, 0, UINT64_MAX, 1 << 20, 0, true);
  assert_only ("RZ-VAL-3");
  check_info (F_ALL, 0x03, 0, 0, 1 << 20, 0, true);
  assert_only ("RZ-NEG-9");
  check_info (F_ALL, 0x03, 0, 0, 1 << 20, 0, false);
  assert_only ("RZ-NEG-10");
  check_info (F_ALL, 0, 0, 0, 1 << 20, NBD_FLAG_READ_ONLY, false);
  assert_only ("RZ-RO-1");
}

static void
test_info_count_and_go (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_export ex = { .have_export = true, .size = 4096,
                               .eflags = NBD_FLAG_HAS_FLAGS,
                               .info_len_ok = true };
  struct nbdp_rz_export a = ex, b = ex;

  nbdp_rz_state_init (&st, NBDP_RZ_ENC_NEGOTIATED);
  st.opt_sent = st.opt_acked = true;
  st.requested = F_ALL;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_export (&st, true, &ex, &vs);
  assert_only ("RZ-INFO-2");

  ex.n_info_resize = 2;
  ex.info.present = true;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_export (&st, true, &ex, &vs);
  assert_has ("RZ-INFO-4");

  ex.n_info_resize = 1;
  ex.info_len_ok = false;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_export (&st, true, &ex, &vs);
  assert_has ("RZ-INFO-3");

  a.info = (struct nbdp_rz_info) { .present = true, .capabilities = F_ALL,
                                   .active = 0x03 };
  b.info = a.info;
  b.info.active = 0x01;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_info_then_go (&st, &a, &b, &vs);
  assert_only ("RZ-INFO-10");
  st.encoding = NBDP_RZ_ENC_INFO_OPTIN;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_info_then_go (&st, &a, &b, &vs);
  assert_only ("RZ-B2-2");
}

static void
test_flag (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_export ex = {
    .have_export = true, .size = 4096, .eflags = NBD_FLAG_HAS_FLAGS,
    .info_len_ok = true, .n_info_resize = 1,
    .info = { .present = true, .capabilities = F_ALL,
              .active = NBD_RESIZE_F_GROW },
  };

  nbdp_rz_state_init (&st, NBDP_RZ_ENC_NEGOTIATED);
  st.opt_sent = st.opt_acked = true;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_enter_transmission (&st, &ex, &vs);
  assert_only ("RZ-FLAG-1");

  ex.info.active = NBD_RESIZE_F_AUTO_GROW;       /* no command needed */
  ex.eflags |= NBD_FLAG_SEND_RESIZE;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_enter_transmission (&st, &ex, &vs);
  assert_only ("RZ-FLAG-2");

  /* Legacy on a read-only export: SHOULD NOT. */
  nbdp_rz_state_init (&st, NBDP_RZ_ENC_LEGACY);
  ex.eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_RESIZE | NBD_FLAG_READ_ONLY;
  ex.info.present = false;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_enter_transmission (&st, &ex, &vs);
  assert_only ("RZ-RO-4");
  assert_int_equal (vs.v[0].level, NBDP_RZ_SHOULD);
  assert_int_equal (st.mode, NBDP_RZ_MODE_LEGACY);

  /* B1: the flag on a read-only export. */
  nbdp_rz_state_init (&st, NBDP_RZ_ENC_FLAG_ONLY);
  ex.eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_AUTO_RESIZE | NBD_FLAG_READ_ONLY;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_enter_transmission (&st, &ex, &vs);
  assert_only ("RZ-B1-5");
  assert_int_equal (st.mode, NBDP_RZ_MODE_FLAG_ONLY);
}

/* ---- client rules -------------------------------------------------- */

static void
test_requests (void **state)
{
  struct nbdp_rz_state st;

  negotiated (&st, 4096, 1 << 20);
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, 0, 2 << 20, 0, 1, &vs);
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_QUERY, 0,
                         0, 1, &vs);
  assert_none ();
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, 0, 0, 512, 1, &vs);
  assert_only ("RZ-CLI-8");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_QUERY, 8,
                         0, 1, &vs);
  assert_only ("RZ-CLI-9");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, NBD_CMD_FLAG_DF, 4096, 0, 1,
                         &vs);
  assert_only ("RZ-CLI-10");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, 0, UINT64_MAX, 0, 1, &vs);
  assert_only ("RZ-CLI-11");
  nbdp_rz_violations_clear (&vs);
  st.active &= ~(uint32_t) NBD_RESIZE_F_SIZE_REPLY;
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, 0, 5000, 0, 1, &vs);
  assert_only ("RZ-CLI-12");
  nbdp_rz_violations_clear (&vs);
  st.active &= ~(uint32_t) NBD_RESIZE_F_GROW;
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, 0, 2 << 20, 0, 1, &vs);
  assert_only ("RZ-CLI-13");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&st, NBD_CMD_WRITE, 0, 1 << 20, 512, 1, &vs);
  assert_none ();                           /* AUTO_GROW is active */
  st.active &= ~(uint32_t) NBD_RESIZE_F_AUTO_GROW;
  nbdp_rz_check_request (&st, NBD_CMD_WRITE, 0, 1 << 20, 512, 1, &vs);
  assert_only ("RZ-CLI-16");
  nbdp_rz_violations_clear (&vs);
  st.eflags &= ~NBD_FLAG_SEND_RESIZE;
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, 0, 1 << 20, 0, 1, &vs);
  assert_only ("RZ-CLI-1");
  /* Subscriptions: one at a time, its cookie not reused. */
  negotiated (&st, 0, 1 << 20);
  nbdp_rz_sub_start (&st, 7, false);
  nbdp_rz_check_request (&st, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_NOTIFY, 0,
                         0, 8, &vs);
  assert_only ("RZ-CLI-24");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_request (&st, NBD_CMD_READ, 0, 0, 512, 7, &vs);
  assert_only ("RZ-CLI-23");
}

/* ---- chunks -------------------------------------------------------- */

static struct nbdp_rz_where
where (uint16_t cmd, uint16_t flags, uint16_t chunk_flags)
{
  return (struct nbdp_rz_where) { .known = true, .cmd = cmd,
                                  .cmd_flags = flags, .cookie = 1,
                                  .chunk_flags = chunk_flags };
}

static void
chunk_bytes (unsigned char *b, uint64_t size, uint32_t ev, uint32_t seq)
{
  struct nbdp_rz_chunk ch = { .size = size, .events = ev, .sequence = seq };
  nbdp_rz_encode_chunk (b, &ch);
}

static void
test_chunk_generic (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_where w;
  struct nbdp_rz_chunk ch;
  unsigned char b[20] = { 0 };

  negotiated (&st, 4096, 1 << 20);
  chunk_bytes (b, 2 << 20, NBD_RESIZE_EV_GREW, 1);
  w = where (NBD_CMD_RESIZE, 0, NBD_REPLY_FLAG_DONE);
  assert_true (nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs));
  assert_none ();

  assert_false (nbdp_rz_check_chunk (&st, &w, b, 20, &ch, &vs));
  assert_only ("RZ-CHUNK-1");
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-27");
  assert_true (vs.v[0].disconnect);

  nbdp_rz_violations_clear (&vs);
  w.known = false;
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-CHUNK-4");
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-29");

  nbdp_rz_violations_clear (&vs);
  w = where (NBD_CMD_READ, 0, 0);
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-CHUNK-3");

  nbdp_rz_violations_clear (&vs);
  w = where (NBD_CMD_RESIZE, 0, NBD_REPLY_FLAG_DONE);
  chunk_bytes (b, (2 << 20) + 1, NBD_RESIZE_EV_GREW | 0x80, 1);
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_has ("RZ-VAL-2");
  assert_has ("RZ-INFO-8");

  nbdp_rz_violations_clear (&vs);
  chunk_bytes (b, UINT64_MAX, 0, 1);
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-VAL-3");

  /* An answer without DONE is seen at once. */
  nbdp_rz_violations_clear (&vs);
  chunk_bytes (b, 2 << 20, NBD_RESIZE_EV_INITIAL, 1);
  w = where (NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_QUERY, 0);
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-QUERY-1");
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-34");

  /* Extended header offset. */
  nbdp_rz_violations_clear (&vs);
  w = where (NBD_CMD_RESIZE, 0, NBD_REPLY_FLAG_DONE);
  w.offset = 8192;
  w.extended_hdr = true;
  w.hdr_offset = 0;
  chunk_bytes (b, 8192, 0, 1);
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-EH-3");

  /* SIZE_REPLY not active; legacy mode. */
  nbdp_rz_violations_clear (&vs);
  st.active &= ~(uint32_t) NBD_RESIZE_F_SIZE_REPLY;
  w = where (NBD_CMD_RESIZE, 0, NBD_REPLY_FLAG_DONE);
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-CHUNK-2");
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-28");
  nbdp_rz_violations_clear (&vs);
  st.mode = NBDP_RZ_MODE_LEGACY;
  nbdp_rz_check_chunk (&st, &w, b, 16, &ch, &vs);
  assert_only ("RZ-LEG-3");
}

/* ---- set size ------------------------------------------------------ */

static void
set_reply (struct nbdp_rz_state *st, uint64_t req, uint64_t size,
           uint32_t ev)
{
  struct nbdp_rz_reply rep = {
    .n_resize = 1, .resize_done = true,
    .chunk = { .size = size, .events = ev, .sequence = st->seq + 1 },
  };

  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_reply (st, req, st->size, &rep, &vs);
}

static void
test_set_size (void **state)
{
  struct nbdp_rz_state st;
  const uint32_t Z = NBD_RESIZE_EV_ZEROED, GR = NBD_RESIZE_EV_GREW;

  negotiated (&st, 4096, 1 << 20);
  st.have_seq = true;
  st.seq = 100;
  set_reply (&st, 2 << 20, 2 << 20, GR | Z);
  assert_none ();
  set_reply (&st, 3000000, 3002368, GR | Z | NBD_RESIZE_EV_ROUNDED);
  assert_none ();
  set_reply (&st, 3000000, 3002368, GR | Z);
  assert_only ("RZ-CHUNK-11");
  set_reply (&st, 3000000, 3006464, GR | Z | NBD_RESIZE_EV_ROUNDED);
  assert_only ("RZ-SET-14");
  set_reply (&st, 4 << 20, 2 << 20, GR | Z | NBD_RESIZE_EV_CAPPED);
  assert_none ();                                   /* capped */
  set_reply (&st, 4 << 20, 2 << 20, GR | Z);
  assert_only ("RZ-CHUNK-10");
  set_reply (&st, 4 << 20, 1 << 20, NBD_RESIZE_EV_CAPPED);
  assert_has ("RZ-SET-15");
  set_reply (&st, 2 << 20, 2 << 20, Z);
  assert_has ("RZ-CHUNK-5");
  assert_has ("RZ-CHUNK-12");
  set_reply (&st, 2 << 20, 2 << 20, GR);
  assert_only ("RZ-CHUNK-7");
  set_reply (&st, 2 << 20, 2 << 20, GR | Z | NBD_RESIZE_EV_REMOTE);
  assert_only ("RZ-CHUNK-9");
  set_reply (&st, 2 << 20, 2 << 20, GR | Z | NBD_RESIZE_EV_INITIAL);
  assert_only ("RZ-CHUNK-6");
  /* Shrinks: roundup of the request, never below it. */
  set_reply (&st, 500000, 503808, NBD_RESIZE_EV_SHRANK |
             NBD_RESIZE_EV_ROUNDED);
  assert_none ();
  set_reply (&st, 500000, 499712, NBD_RESIZE_EV_SHRANK);
  assert_has ("RZ-SET-5");
  set_reply (&st, 1048000, 1048576, NBD_RESIZE_EV_ROUNDED);
  assert_none ();                                   /* rounds to old */
  set_reply (&st, 500000, 1048576, NBD_RESIZE_EV_ROUNDED);
  assert_only ("RZ-SET-16");
  set_reply (&st, 1 << 20, 2 << 20, GR | Z | NBD_RESIZE_EV_ROUNDED);
  assert_has ("RZ-SET-4");
  /* Sequence must move on a change. */
  {
    struct nbdp_rz_reply rep = {
      .n_resize = 1, .resize_done = true,
      .chunk = { .size = 2 << 20, .events = GR | Z, .sequence = 99 },
    };
    nbdp_rz_violations_clear (&vs);
    nbdp_rz_check_set_reply (&st, 2 << 20, st.size, &rep, &vs);
    assert_only ("RZ-SEQ-1");
  }
}

static void
test_set_reply_shape (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_reply rep = { .simple = true };

  negotiated (&st, 0, 1 << 20);
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_reply (&st, 2 << 20, st.size, &rep, &vs);
  assert_only ("RZ-SET-12");
  rep = (struct nbdp_rz_reply) { .n_resize = 1, .resize_done = true,
                                 .n_none = 1,
                                 .chunk = { .size = 2 << 20,
                                            .events = 0x05 } };
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_reply (&st, 2 << 20, st.size, &rep, &vs);
  assert_only ("RZ-SET-12");
  rep.error_offset = true;
  rep.error = NBD_ENOSPC;
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_reply (&st, 2 << 20, st.size, &rep, &vs);
  assert_has ("RZ-REQ-7");
  /* Without SIZE_REPLY: simple, or one NONE with DONE. */
  st.active &= ~(uint32_t) NBD_RESIZE_F_SIZE_REPLY;
  rep = (struct nbdp_rz_reply) { .n_none = 1 };
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_reply (&st, 2 << 20, st.size, &rep, &vs);
  assert_none ();
  rep.n_other = 1;
  nbdp_rz_check_set_reply (&st, 2 << 20, st.size, &rep, &vs);
  assert_only ("RZ-SET-11");
  /* Learning: exactly the requested size (RZ-CLI-18). */
  rep = (struct nbdp_rz_reply) { .simple = true };
  nbdp_rz_learn_set_reply (&st, 2 << 20, &rep);
  assert_true (st.size == 2 << 20);
  /* Another connection sees something else. */
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_set_effect (&st, 2 << 20, 2 << 20, 1 << 20, &vs);
  assert_only ("RZ-SET-8");
}

static void
test_outcome (void **state)
{
  struct nbdp_rz_state st;

  negotiated (&st, 0, 1 << 20);
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 0, 0, &vs);
  assert_none ();
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 0, NBD_ENOSPC, &vs);
  assert_none ();                                   /* may fail */
  nbdp_rz_check_resize_outcome (&st, 0, 1 << 20, 0, NBD_EPERM, &vs);
  assert_only ("RZ-SET-4");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 512, 0, &vs);
  assert_only ("RZ-REQ-4");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, NBD_CMD_FLAG_RESIZE_QUERY, 4096, 0,
                                NBD_EPERM, &vs);
  assert_only ("RZ-REQ-5");                         /* wrong code */
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, NBD_CMD_FLAG_RESIZE_NOTIFY |
                                NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, 0, &vs);
  assert_only ("RZ-SUB-9");
  nbdp_rz_violations_clear (&vs);
  st.active &= ~(uint32_t) NBD_RESIZE_F_GROW;
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 0, 0, &vs);
  assert_only ("RZ-SET-1");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 0, NBD_EINVAL, &vs);
  assert_only ("RZ-REQ-8");
  assert_int_equal (vs.v[0].level, NBDP_RZ_SHOULD);
  nbdp_rz_violations_clear (&vs);
  st.eflags &= ~NBD_FLAG_SEND_RESIZE;
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 0, NBD_EPERM, &vs);
  assert_only ("RZ-FLAG-4");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, 0, 2 << 20, 0, NBD_EINVAL, &vs);
  assert_none ();
  /* Legacy mode: only set size. */
  nbdp_rz_state_init (&st, NBDP_RZ_ENC_LEGACY);
  st.mode = NBDP_RZ_MODE_LEGACY;
  st.eflags = NBD_FLAG_SEND_RESIZE;
  nbdp_rz_check_resize_outcome (&st, NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, 0,
                                &vs);
  assert_only ("RZ-LEG-1");
}

/* ---- query and subscriptions --------------------------------------- */

static void
test_query (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_reply rep = {
    .n_resize = 1, .resize_done = true,
    .chunk = { .size = 1 << 20, .events = NBD_RESIZE_EV_INITIAL,
               .sequence = 5 },
  };

  negotiated (&st, 0, 1 << 20);
  nbdp_rz_check_query_reply (&st, &rep, &vs);
  assert_none ();
  rep.chunk.events |= NBD_RESIZE_EV_GREW;
  nbdp_rz_check_query_reply (&st, &rep, &vs);
  assert_only ("RZ-QUERY-2");
  rep.chunk.events = NBD_RESIZE_EV_INITIAL | 0x1000;   /* reserved: ignored */
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_query_reply (&st, &rep, &vs);
  assert_none ();
  rep.n_resize = 0;
  rep.simple = true;
  nbdp_rz_check_query_reply (&st, &rep, &vs);
  assert_only ("RZ-QUERY-1");
  /* The same sequence with another size. */
  st.have_seq = true;
  st.seq = 5;
  st.size = 4096;
  rep = (struct nbdp_rz_reply) {
    .n_resize = 1, .resize_done = true,
    .chunk = { .size = 1 << 20, .events = NBD_RESIZE_EV_INITIAL,
               .sequence = 5 },
  };
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_query_reply (&st, &rep, &vs);
  assert_only ("RZ-SEQ-2");
}

static void
sub_feed (struct nbdp_rz_state *st, uint64_t size, uint32_t ev,
          uint32_t seq, bool done, uint64_t t)
{
  struct nbdp_rz_chunk ch = { .size = size, .events = ev, .sequence = seq };

  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_sub_chunk (st, &ch, done, t, &vs);
  nbdp_rz_sub_chunk (st, &ch, t);
}

static void
test_subscription (void **state)
{
  struct nbdp_rz_state st;
  const uint32_t R = NBD_RESIZE_EV_REMOTE;

  negotiated (&st, 0, 1 << 20);
  nbdp_rz_sub_start (&st, 9, false);
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_INITIAL, 0xfffffffe, false, 0);
  assert_none ();
  sub_feed (&st, 2 << 20, NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED | R,
            0xffffffff, false, 100);
  assert_none ();
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_SHRANK | R, 3, false, 200);
  assert_none ();                                   /* wrapped, coalesced */
  sub_feed (&st, 1 << 20, R, 4, false, 300);
  assert_only ("RZ-FLOOD-1");
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-30");
  sub_feed (&st, 2 << 20, NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED | R, 4,
            false, 400);
  assert_only ("RZ-SEQ-3");
  assert_string_equal (vs.v[0].cli_id, "RZ-CLI-31");
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_SHRANK, 6, false, 500);
  assert_only ("RZ-CHUNK-9");
  sub_feed (&st, 2 << 20, NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED | R, 7,
            true, 600);
  assert_only ("RZ-SUB-4");
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_SHRANK | R | NBD_RESIZE_EV_ROUNDED,
            8, false, 700);
  assert_only ("RZ-CHUNK-11");

  /* First chunk must be a snapshot. */
  nbdp_rz_sub_end (&st);
  nbdp_rz_sub_start (&st, 10, false);
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_INITIAL, 20, true, 0);
  assert_only ("RZ-SUB-2");

  /* Ends. */
  nbdp_rz_sub_start (&st, 11, false);
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_INITIAL, 20, false, 0);
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_sub_end (&st, NBD_REPLY_TYPE_NONE, 0, true, &vs);
  assert_only ("RZ-SUB-15");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_sub_end (&st, NBD_REPLY_TYPE_ERROR, NBD_ESHUTDOWN, true,
                         &vs);
  assert_none ();
  st.sub.unsubscribing = true;
  nbdp_rz_check_sub_end (&st, NBD_REPLY_TYPE_NONE, 0, true, &vs);
  assert_none ();
  nbdp_rz_sub_end (&st);
  nbdp_rz_check_after_end (&st, 11, NBD_REPLY_TYPE_NONE, &vs);
  assert_only ("RZ-SUB-16");
}

static void
test_flood (void **state)
{
  struct nbdp_rz_state st;
  uint64_t i;
  bool flood = false, rate = false;

  negotiated (&st, 0, 1 << 20);
  nbdp_rz_sub_start (&st, 9, false);
  sub_feed (&st, 1 << 20, NBD_RESIZE_EV_INITIAL, 0, false, 0);
  /* 10 per second: fine for ever. */
  for (i = 1; i <= 30; i++) {
    sub_feed (&st, i % 2 ? 2 << 20 : 1 << 20,
              (i % 2 ? NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED
               : NBD_RESIZE_EV_SHRANK) | NBD_RESIZE_EV_REMOTE,
              (uint32_t) i, false, 1000 + i * 100);
    assert_none ();
  }
  /* Then 1001 within a second. */
  for (i = 31; i < 31 + 1001; i++) {
    sub_feed (&st, i % 2 ? 2 << 20 : 1 << 20,
              (i % 2 ? NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED
               : NBD_RESIZE_EV_SHRANK) | NBD_RESIZE_EV_REMOTE,
              (uint32_t) i, false, 10000 + (i - 31) / 2);
    if (nbdp_rz_violations_has (&vs, "RZ-CLI-32")) {
      assert_true (nbdp_rz_violations_disconnect (&vs) != NULL);
      flood = true;
    }
    else if (nbdp_rz_violations_has (&vs, "RZ-FLOOD-3"))
      rate = true;
  }
  assert_true (rate);
  assert_true (flood);
  /* Bounded state, however many come (RZ-CLI-25). */
  assert_true (sizeof st.sub < 16 * 1024);
}

static void
test_unsubscribe (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_reply rep = {
    .n_resize = 1, .resize_done = true,
    .chunk = { .size = 1 << 20, .events = NBD_RESIZE_EV_INITIAL },
  };

  negotiated (&st, 0, 1 << 20);
  nbdp_rz_check_unsub_reply (&st, &rep, false, &vs);
  assert_none ();
  nbdp_rz_check_unsub_reply (&st, &rep, true, &vs);
  assert_only ("RZ-SUB-12");
  nbdp_rz_violations_clear (&vs);
  rep.chunk.events = NBD_RESIZE_EV_GREW;
  nbdp_rz_check_unsub_reply (&st, &rep, false, &vs);
  assert_only ("RZ-SUB-11");
  /* Refused although NOTIFY is active and a subscription exists. */
  nbdp_rz_sub_start (&st, 3, false);
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, NBD_CMD_FLAG_RESIZE_NOTIFY |
                                NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, NBD_EINVAL,
                                &vs);
  assert_only ("RZ-SUB-10");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_resize_outcome (&st, NBD_CMD_FLAG_RESIZE_NOTIFY, 0, 0, 0,
                                &vs);
  assert_only ("RZ-SUB-1");
}

/* ---- writes -------------------------------------------------------- */

static void
test_writes (void **state)
{
  struct nbdp_rz_state st;
  struct nbdp_rz_reply rep = {
    .n_resize = 1, .resize_before_final = true, .n_none = 1,
    .chunk = { .size = 1 << 21,
               .events = NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED |
               NBD_RESIZE_EV_ROUNDED, .sequence = 1 },
  };

  negotiated (&st, 4096, 1 << 20);
  nbdp_rz_check_write_reply (&st, (1 << 21) - 4096, 100, 1 << 20, &rep,
                             &vs);
  assert_none ();
  rep.chunk.size += 4096;
  nbdp_rz_check_write_reply (&st, (1 << 21) - 4096, 100, 1 << 20, &rep,
                             &vs);
  assert_only ("RZ-AUTO-2");
  nbdp_rz_violations_clear (&vs);
  nbdp_rz_check_write_reply (&st, 0, 100, 1 << 20, &rep, &vs);
  assert_only ("RZ-AUTO-12");
  nbdp_rz_violations_clear (&vs);
  rep.n_resize = 0;
  nbdp_rz_check_write_reply (&st, 1 << 20, 4096, 1 << 20, &rep, &vs);
  assert_only ("RZ-AUTO-9");
  /* Without AUTO_GROW a write past the end must fail. */
  nbdp_rz_violations_clear (&vs);
  st.active &= ~(uint32_t) NBD_RESIZE_F_AUTO_GROW;
  nbdp_rz_check_write_reply (&st, 1 << 20, 4096, 1 << 20, &rep, &vs);
  assert_only ("RZ-AUTO-1");
  /* New bytes. */
  {
    unsigned char b[16] = { 0 };
    nbdp_rz_violations_clear (&vs);
    nbdp_rz_check_new_bytes (&st, false, 4096, b, sizeof b, &vs);
    assert_none ();
    b[3] = 0xa5;
    nbdp_rz_check_new_bytes (&st, false, 4096, b, sizeof b, &vs);
    assert_only ("RZ-ZERO-1");
  }
}

static void
test_repeats_fold (void **state)
{
  size_t i;

  nbdp_rz_violations_clear (&vs);
  for (i = 0; i < 100; i++)
    nbdp_rz_violation_add (&vs, "RZ-CHUNK-9", NULL, NBDP_RZ_MUST, false,
                           "x");
  nbdp_rz_violation_add (&vs, "RZ-FLOOD-3", "RZ-CLI-32", NBDP_RZ_SHOULD,
                         true, "y");
  assert_int_equal (vs.n, 2);
  assert_int_equal (vs.v[0].repeats, 99);
  assert_string_equal (nbdp_rz_violations_disconnect (&vs)->id,
                       "RZ-FLOOD-3");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_seq_after),
    cmocka_unit_test (test_roundup_and_grant),
    cmocka_unit_test (test_decode),
    cmocka_unit_test (test_names),
    cmocka_unit_test (test_opt_reply),
    cmocka_unit_test (test_info_item),
    cmocka_unit_test (test_info_count_and_go),
    cmocka_unit_test (test_flag),
    cmocka_unit_test (test_requests),
    cmocka_unit_test (test_chunk_generic),
    cmocka_unit_test (test_set_size),
    cmocka_unit_test (test_set_reply_shape),
    cmocka_unit_test (test_outcome),
    cmocka_unit_test (test_query),
    cmocka_unit_test (test_subscription),
    cmocka_unit_test (test_flood),
    cmocka_unit_test (test_unsubscribe),
    cmocka_unit_test (test_writes),
    cmocka_unit_test (test_repeats_fold),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
