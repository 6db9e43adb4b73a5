/* Transmission suite: requests at and beyond the bounds of the export
 * (past the end, offset + length wrapping past 2^64), zero-length
 * requests and alignment.  A request past the end breaks a client MUST
 * (SIZE-33), so the server may hard-disconnect (TX-TERM-3); if it
 * replies, the reply is an error (NBD_EINVAL for reads, trims and the
 * rest, NBD_ENOSPC for writes) and the session goes on.
 */
#include "txlib.h"

/* One out-of-bounds request and how it should be refused.  off_from_end
 * set: offset is size - off (else off as is).
 */
struct oob {
  uint16_t type;
  uint16_t need;              /* transmission flag needed, or 0 */
  const char *need_name;
  bool rw;                    /* needs a writable export */
  bool off_from_end;
  uint64_t off;
  uint64_t len;
  uint32_t want;              /* the error the text asks for */
  const char *want_id;
};

static void
oob (struct nc_ctx *t, const struct oob *q)
{
  struct nc_conn *c = tx_open (t, NULL, q->need, q->need_name, q->rw, 4096);
  uint64_t size = c->s.export_size;
  uint64_t off = q->off_from_end ? size - q->off : q->off;
  unsigned char *buf = NULL;
  struct nc_result r;
  char what[192];

  if (q->type == NBD_CMD_WRITE) {
    buf = tx_alloc (t, q->len);
    memset (buf, 0x77, q->len);
  }
  snprintf (what, sizeof what, "%s offset %" PRIu64 " length %" PRIu64
            " (export size %" PRIu64 "%s)", tx_cmd_name (q->type), off,
            q->len, size, off > UINT64_MAX - q->len ? "; offset + length "
            "wraps past 2^64" : "");
  nc_cmd (t, c, q->type, 0, off, q->len, buf, NULL, &r);
  tx_refused (t, &r, NBDP_SHOULD, q->want_id, q->want, 0, q->want_id,
              TX_BAD_MUST, what);
  tx_alive (t, c, TX_BAD_MUST, what);
  free (buf);
}

#define OOB_TEST(fn, ...)                                               \
  static void                                                           \
  fn (struct nc_ctx *t)                                                 \
  {                                                                     \
    static const struct oob q = { __VA_ARGS__ };                        \
    oob (t, &q);                                                        \
  }

#define W_END (UINT64_MAX - 511)  /* 2^64 - 512 */

OOB_TEST (test_read_beyond, .type = NBD_CMD_READ, .off_from_end = true,
          .off = -UINT64_C (4096), .len = 512, .want = NBD_EINVAL,
          .want_id = "ERR-3")
OOB_TEST (test_read_at_end, .type = NBD_CMD_READ, .off_from_end = true,
          .off = 0, .len = 1, .want = NBD_EINVAL, .want_id = "ERR-3")
OOB_TEST (test_read_wrap, .type = NBD_CMD_READ, .off = W_END, .len = 1024,
          .want = NBD_EINVAL, .want_id = "ERR-3")
OOB_TEST (test_read_max_offset, .type = NBD_CMD_READ, .off = UINT64_MAX,
          .len = 1, .want = NBD_EINVAL, .want_id = "ERR-3")
OOB_TEST (test_write_at_end, .type = NBD_CMD_WRITE, .rw = true,
          .off_from_end = true, .off = 0, .len = 512, .want = NBD_ENOSPC,
          .want_id = "ERR-1")
OOB_TEST (test_write_wrap, .type = NBD_CMD_WRITE, .rw = true, .off = W_END,
          .len = 1024, .want = NBD_ENOSPC, .want_id = "ERR-1")
OOB_TEST (test_trim_past, .type = NBD_CMD_TRIM, .need = NBD_FLAG_SEND_TRIM,
          .need_name = "SEND_TRIM", .rw = true, .off_from_end = true,
          .off = 512, .len = 1024, .want = NBD_EINVAL, .want_id = "ERR-3")
OOB_TEST (test_trim_wrap, .type = NBD_CMD_TRIM, .need = NBD_FLAG_SEND_TRIM,
          .need_name = "SEND_TRIM", .rw = true, .off = W_END, .len = 1024,
          .want = NBD_EINVAL, .want_id = "ERR-3")
OOB_TEST (test_wz_past, .type = NBD_CMD_WRITE_ZEROES,
          .need = NBD_FLAG_SEND_WRITE_ZEROES,
          .need_name = "SEND_WRITE_ZEROES", .rw = true, .off_from_end = true,
          .off = 512, .len = 1024, .want = NBD_ENOSPC,
          .want_id = "CMD-WZ-20")
OOB_TEST (test_wz_wrap, .type = NBD_CMD_WRITE_ZEROES,
          .need = NBD_FLAG_SEND_WRITE_ZEROES,
          .need_name = "SEND_WRITE_ZEROES", .rw = true, .off = W_END,
          .len = 1024, .want = NBD_ENOSPC, .want_id = "CMD-WZ-20")
OOB_TEST (test_cache_past, .type = NBD_CMD_CACHE,
          .need = NBD_FLAG_SEND_CACHE, .need_name = "SEND_CACHE",
          .off_from_end = true, .off = 512, .len = 1024, .want = NBD_EINVAL,
          .want_id = "SIZE-34")
OOB_TEST (test_cache_wrap, .type = NBD_CMD_CACHE,
          .need = NBD_FLAG_SEND_CACHE, .need_name = "SEND_CACHE",
          .off = W_END, .len = 1024, .want = NBD_EINVAL,
          .want_id = "SIZE-34")

/* A WRITE past the end does not change the bytes before the end. */
static void
test_write_past_no_change (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 8192);
  uint64_t size = c->s.export_size;
  unsigned char w[4096], bad[8192];
  struct nc_result r;
  char what[128];

  tx_pattern (w, sizeof w, size - 4096, 15);
  tx_write (t, c, size - 4096, sizeof w, w, 0);
  memset (bad, 0x66, sizeof bad);
  snprintf (what, sizeof what, "WRITE %" PRIu64 "+8192 (past the end, "
            "export size %" PRIu64 ")", size - 4096, size);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, size - 4096, sizeof bad, bad, NULL, &r);
  if (!tx_refused (t, &r, NBDP_SHOULD, "ERR-1", NBD_ENOSPC, 0, "ERR-1",
                   TX_BAD_MUST, what) && r.error == 0)
    nc_done (t);
  tx_check (t, c, size - 4096, sizeof w, w, NBDP_SHOULD, "ERR-1", what);
}

/* ---- zero-length requests ---------------------------------------- */

/* A zero-length request: the behaviour is unspecified but the server
 * should not disconnect; the session goes on.
 */
static void
zero_len (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t type,
          uint16_t need, const char *need_name, bool rw)
{
  struct nc_conn *c = tx_open (t, o, need, need_name, rw, 8192);
  unsigned char w[4096], dummy[1] = { 0 };
  struct nc_result r;
  char what[128];

  if (rw) {
    tx_pattern (w, sizeof w, 4096, 16);
    tx_write (t, c, 4096, sizeof w, w, 0);
  }
  snprintf (what, sizeof what, "%s 4096+0 (zero length%s)",
            tx_cmd_name (type), o && o->structured ? ", structured replies"
            : "");
  nc_cmd (t, c, type, 0, 4096, 0, dummy, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_BAD_SHOULD, what);
  if (r.error)
    nc_info (t, "%s failed with %s", what, nc_errstr (&r));
  else
    nc_info (t, "%s succeeded (%s)", what, r.simple ? "simple reply"
             : "structured reply");
  if (r.error)
    tx_restricted_errors (t, &r, false, false, what);
  tx_alive (t, c, TX_BAD_SHOULD, what);
  if (rw)
    tx_check (t, c, 4096, sizeof w, w, NBDP_MUST, "CMD-WRITE-4", what);
}

static void
test_read_zero (struct nc_ctx *t)
{
  zero_len (t, NULL, NBD_CMD_READ, 0, NULL, false);
}

static void
test_read_zero_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  zero_len (t, &o, NBD_CMD_READ, 0, NULL, false);
}

static void
test_write_zero (struct nc_ctx *t)
{
  zero_len (t, NULL, NBD_CMD_WRITE, 0, NULL, true);
}

static void
test_trim_zero (struct nc_ctx *t)
{
  zero_len (t, NULL, NBD_CMD_TRIM, NBD_FLAG_SEND_TRIM, "SEND_TRIM", true);
}

static void
test_wz_zero (struct nc_ctx *t)
{
  zero_len (t, NULL, NBD_CMD_WRITE_ZEROES, NBD_FLAG_SEND_WRITE_ZEROES,
            "SEND_WRITE_ZEROES", true);
}

static void
test_cache_zero (struct nc_ctx *t)
{
  zero_len (t, NULL, NBD_CMD_CACHE, NBD_FLAG_SEND_CACHE, "SEND_CACHE",
            false);
}

/* ---- alignment ---------------------------------------------------- */

/* Without size constraints negotiated, 1-byte granularity (SIZE-7). */
static void
test_read_unaligned (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 8192);
  unsigned char w[8192];
  struct nc_result r;
  unsigned char b[3];

  tx_pattern (w, sizeof w, 0, 17);
  tx_write (t, c, 0, sizeof w, w, 0);
  nc_cmd (t, c, NBD_CMD_READ, 0, 4097, 3, NULL, b, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, "READ 4097+3");
  if (r.error) {
    tx_unaligned_refused (t, c, &r, 4097, 3, "READ 4097+3");
    tx_alive (t, c, TX_VALID, "READ 4097+3");
    return;
  }
  nc_expect (t, memcmp (b, w + 4097, 3) == 0, "READ 4097+3: got %02x %02x "
             "%02x, written %02x %02x %02x", b[0], b[1], b[2], w[4097],
             w[4098], w[4099]);
}

/* With size constraints negotiated (NBD_INFO_BLOCK_SIZE requested), a
 * request not aligned to the minimum block size breaks a client MUST
 * (SIZE-31): NBD_EINVAL if the server replies, and no data changes.
 */
static void
misaligned (struct nc_ctx *t, uint16_t type)
{
  static const struct nc_open_opts o = { .block_size = true };
  struct nc_conn *c = tx_open (t, &o, 0, NULL, type == NBD_CMD_WRITE,
                               131072);
  uint32_t mb = c->s.min_block;
  unsigned char *w, *bad;
  struct nc_result r;
  char what[160];

  if (!c->s.have_block_size)
    nc_unsupported (t, "the server sent no NBD_INFO_BLOCK_SIZE");
  if (mb <= 1)
    nc_unsupported (t, "the server's minimum block size is %" PRIu32
                    ": every request is aligned", mb);
  w = tx_alloc (t, 2 * mb);
  bad = tx_alloc (t, mb);
  memset (bad, 0x55, mb);
  if (type == NBD_CMD_WRITE) {
    tx_pattern (w, 2 * mb, 0, 18);
    tx_write (t, c, 0, 2 * mb, w, 0);
  }
  snprintf (what, sizeof what, "%s offset %" PRIu32 " length %" PRIu32
            " (minimum block size %" PRIu32 ")", tx_cmd_name (type), mb / 2,
            mb, mb);
  nc_cmd (t, c, type, 0, mb / 2, mb, bad, NULL, &r);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-3", NBD_EINVAL, 0, "ERR-3",
              TX_BAD_MUST, what);
  tx_alive (t, c, TX_BAD_MUST, what);
  if (type == NBD_CMD_WRITE && r.error)
    tx_check (t, c, 0, 2 * mb, w, NBDP_MUST, "SIZE-11", what);
  free (w);
  free (bad);
}

static void
test_read_misaligned (struct nc_ctx *t)
{
  misaligned (t, NBD_CMD_READ);
}

static void
test_write_misaligned (struct nc_ctx *t)
{
  misaligned (t, NBD_CMD_WRITE);
}

static const struct nc_test tests[] = {
  { "read-beyond-eof", "ERR-3 SIZE-34 TX-TERM-3", NBDP_SHOULD,
    test_read_beyond, "READ starting 4096 bytes past the end fails" },
  { "read-at-eof", "ERR-3 SIZE-34", NBDP_SHOULD, test_read_at_end,
    "READ of 1 byte at the end offset fails" },
  { "read-wrap", "ERR-3 SIZE-34", NBDP_SHOULD, test_read_wrap,
    "READ whose offset + length wraps past 2^64 fails" },
  { "read-max-offset", "ERR-3 SIZE-34", NBDP_SHOULD, test_read_max_offset,
    "READ at offset 2^64-1 fails" },
  { "write-at-eof", "ERR-1 SIZE-34", NBDP_SHOULD, test_write_at_end,
    "WRITE at the end offset fails with NBD_ENOSPC" },
  { "write-wrap", "ERR-1 SIZE-34", NBDP_SHOULD, test_write_wrap,
    "WRITE whose offset + length wraps past 2^64 fails with NBD_ENOSPC" },
  { "write-past-eof-unchanged", "ERR-1 CMD-WRITE-6", NBDP_SHOULD,
    test_write_past_no_change,
    "a refused WRITE past the end leaves the last bytes unchanged" },
  { "trim-past-eof", "ERR-3 SIZE-34", NBDP_SHOULD, test_trim_past,
    "TRIM past the end fails with NBD_EINVAL" },
  { "trim-wrap", "ERR-3 SIZE-34", NBDP_SHOULD, test_trim_wrap,
    "TRIM whose offset + length wraps past 2^64 fails" },
  { "write-zeroes-past-eof", "CMD-WZ-20 CMD-WZ-19", NBDP_SHOULD,
    test_wz_past, "WRITE_ZEROES past the end fails with NBD_ENOSPC" },
  { "write-zeroes-wrap", "CMD-WZ-20 CMD-WZ-19", NBDP_SHOULD, test_wz_wrap,
    "WRITE_ZEROES whose offset + length wraps fails with NBD_ENOSPC" },
  { "cache-past-eof", "SIZE-34 CMD-CACHE-2", NBDP_SHOULD, test_cache_past,
    "CACHE past the end fails with NBD_EINVAL" },
  { "cache-wrap", "SIZE-34 CMD-CACHE-2", NBDP_SHOULD, test_cache_wrap,
    "CACHE whose offset + length wraps past 2^64 fails" },
  { "read-zero-length", "CMD-READ-3", NBDP_SHOULD, test_read_zero,
    "a zero-length READ does not end the session" },
  { "read-zero-length-structured", "CMD-READ-3", NBDP_SHOULD,
    test_read_zero_structured,
    "a zero-length READ does not end the session (structured replies)" },
  { "write-zero-length", "CMD-WRITE-3", NBDP_SHOULD, test_write_zero,
    "a zero-length WRITE does not end the session" },
  { "trim-zero-length", "CMD-TRIM-3", NBDP_SHOULD, test_trim_zero,
    "a zero-length TRIM does not end the session" },
  { "write-zeroes-zero-length", "CMD-WZ-2", NBDP_SHOULD, test_wz_zero,
    "a zero-length WRITE_ZEROES does not end the session" },
  { "cache-zero-length", "CMD-CACHE-2 TX-TERM-10", NBDP_SHOULD,
    test_cache_zero, "a zero-length CACHE does not end the session" },
  { "read-unaligned", "SIZE-7", NBDP_SHOULD, test_read_unaligned,
    "a 3-byte READ at an odd offset works without size constraints" },
  { "read-misaligned", "ERR-3 SIZE-34 SIZE-11", NBDP_SHOULD,
    test_read_misaligned,
    "READ not aligned to the negotiated minimum block size fails" },
  { "write-misaligned", "ERR-3 SIZE-34 SIZE-11", NBDP_SHOULD,
    test_write_misaligned, "WRITE not aligned to the negotiated minimum "
    "block size fails and changes nothing" },
};
NC_SUITE ("transmission", tests);
