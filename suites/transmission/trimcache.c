/* Transmission suite: TRIM, CACHE and FLUSH beyond the basic cases in
 * commands.c: what they may and may not change, large effect lengths,
 * FLUSH with writes in flight.
 */
#include "txlib.h"

/* TRIM at odd offsets: the bytes outside the range stay; inside, the
 * server may discard all, part or nothing (recorded).
 */
static void
test_trim_neighbours (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, NBD_FLAG_SEND_TRIM, "SEND_TRIM",
                               true, 65536);
  enum { LEN = 65536, OFF = 1000, TL = 37000 };
  unsigned char *w = tx_alloc (t, LEN), *b = tx_alloc (t, LEN);
  struct nc_result r;
  uint64_t zeroes = 0, kept = 0;
  const char *what = "WRITE 0+65536 (pattern), then TRIM 1000+37000";

  tx_pattern (w, LEN, 0, 40);
  tx_write (t, c, 0, LEN, w, 0);
  nc_cmd (t, c, NBD_CMD_TRIM, 0, OFF, TL, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, what);
  if (r.error)
    tx_unaligned_refused (t, c, &r, OFF, TL, what);
  tx_read (t, c, 0, LEN, b, NULL);
  for (int i = 0; i < LEN; i++) {
    if (i >= OFF && i < OFF + TL) {
      zeroes += b[i] == 0 && w[i] != 0;
      kept += b[i] == w[i];
      continue;
    }
    if (b[i] != w[i]) {
      nc_fail (t, "CMD-TRIM-1", "after %s: byte %d, outside the trimmed "
               "range, reads 0x%02x, written 0x%02x", what, i, b[i], w[i]);
      break;
    }
  }
  nc_info (t, "after %s: of the %d trimmed bytes %" PRIu64 " read as "
           "written, %" PRIu64 " read as zero instead", what, TL, kept,
           zeroes);
  free (w);
  free (b);
}

/* After TRIM, a WRITE makes the range defined again. */
static void
test_trim_then_write (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, NBD_FLAG_SEND_TRIM, "SEND_TRIM",
                               true, 65536);
  struct nc_result r;

  tx_write_pattern (t, c, 0, 65536, 41);
  nc_cmd (t, c, NBD_CMD_TRIM, 0, 0, 65536, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-TRIM-1", TX_VALID, "TRIM 0+65536");
  tx_write_pattern (t, c, 4096, 8192, 42);
  tx_check_pattern (t, c, 4096, 8192, 42, NBDP_MUST, "CMD-WRITE-4",
                    "TRIM 0+65536, then WRITE 4096+8192");
}

/* A payload-free request over the whole export (more than the maximum
 * payload): no disconnect; success or EOVERFLOW/EINVAL.
 */
static void
large (struct nc_ctx *t, uint16_t type, uint16_t need, const char *names,
       bool rw)
{
  struct nc_conn *c = tx_open (t, NULL, need, names, rw, 65536);
  uint64_t size = c->s.export_size, max = nbdp_session_max_payload (&c->s);
  struct nc_result r;
  char what[160];

  if (size <= max)
    nc_skip (t, "the export (%" PRIu64 " bytes) is not larger than the "
             "maximum payload (%" PRIu64 ")", size, max);
  snprintf (what, sizeof what, "%s 0+%" PRIu64 " (the whole export, more "
            "than the maximum payload %" PRIu64 ")", tx_cmd_name (type),
            size, max);
  nc_cmd (t, c, type, 0, 0, size, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_BAD_SHOULD, what);
  if (r.error == NBD_EOVERFLOW || r.error == NBD_EINVAL)
    nc_info (t, "%s: refused with %s (allowed)", what, nc_errstr (&r));
  else if (r.error)
    nc_should (t, "SIZE-30", "%s: got %s, expected success, NBD_EOVERFLOW "
               "or NBD_EINVAL", what, nc_errstr (&r));
  tx_alive (t, c, TX_BAD_SHOULD, what);
}

static void
test_trim_large (struct nc_ctx *t)
{
  large (t, NBD_CMD_TRIM, NBD_FLAG_SEND_TRIM, "SEND_TRIM", true);
}

static void
test_cache_large (struct nc_ctx *t)
{
  large (t, NBD_CMD_CACHE, NBD_FLAG_SEND_CACHE, "SEND_CACHE", false);
}

/* CACHE changes nothing a later command sees. */
static void
test_cache_semantics (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, NBD_FLAG_SEND_CACHE, "SEND_CACHE",
                               true, 65536);
  struct nc_result r;

  tx_write_pattern (t, c, 0, 65536, 43);
  nc_cmd (t, c, NBD_CMD_CACHE, 0, 0, 65536, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, "CACHE 0+65536");
  if (r.error)
    nc_info (t, "CACHE 0+65536 failed with %s (allowed)", nc_errstr (&r));
  tx_check_pattern (t, c, 0, 65536, 43, NBDP_MUST, "CMD-CACHE-3",
                    "WRITE 0+65536, then CACHE 0+65536");
  tx_write_pattern (t, c, 8192, 4096, 44);
  tx_check_pattern (t, c, 8192, 4096, 44, NBDP_MUST, "CMD-CACHE-3",
                    "CACHE 0+65536, then WRITE 8192+4096");
}

/* CACHE with a write in flight: the write still lands. */
static void
test_cache_inflight (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, NBD_FLAG_SEND_CACHE, "SEND_CACHE",
                               true, 65536);
  unsigned char w[16384];
  uint64_t wc, cc;
  struct nc_result r;

  tx_pattern (w, sizeof w, 0, 45);
  wc = nc_send (t, c, NBD_CMD_WRITE, 0, 0, sizeof w, w, sizeof w);
  cc = nc_send (t, c, NBD_CMD_CACHE, 0, 0, sizeof w, NULL, 0);
  nc_wait (t, c, cc, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, "CACHE 0+16384 with a WRITE in flight");
  nc_wait (t, c, wc, NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-WRITE-4", TX_VALID, "WRITE 0+16384 "
              "with a CACHE of the same range in flight"))
    return;
  tx_check (t, c, 0, sizeof w, w, NBDP_MUST, "CMD-CACHE-3", "WRITE and "
            "CACHE of 0+16384 in flight together");
}

/* FLUSH sent while writes are in flight; everything succeeds, and the
 * data is there.
 */
static void
test_flush_inflight (struct nc_ctx *t)
{
  enum { N = 8, SZ = 16384 };
  struct nc_conn *c = tx_open (t, NULL, NBD_FLAG_SEND_FLUSH, "SEND_FLUSH",
                               true, N * SZ);
  unsigned char *w = tx_alloc (t, N * SZ);
  uint64_t wc[N], fc;
  struct nc_result r;

  tx_pattern (w, N * SZ, 0, 46);
  for (int i = 0; i < N; i++)
    wc[i] = nc_send (t, c, NBD_CMD_WRITE, 0, (uint64_t) i * SZ, SZ,
                     w + i * SZ, SZ);
  fc = nc_send (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, 0);
  for (int i = 0; i < N; i++) {
    nc_wait (t, c, wc[i], NULL, &r);
    tx_ok (t, &r, NBDP_MUST, "CMD-WRITE-4", TX_VALID, "WRITE in flight "
           "with a FLUSH");
  }
  nc_wait (t, c, fc, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH sent behind 8 "
         "WRITEs in flight");
  /* A second FLUSH now covers every write (all answered). */
  nc_cmd (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH after 8 "
         "WRITEs were answered");
  tx_check (t, c, 0, N * SZ, w, NBDP_MUST, "CMD-WRITE-4", "8 WRITEs and "
            "FLUSHes");
  free (w);
}

/* FLUSH with structured replies and with extended headers. */
static void
flush_with (struct nc_ctx *t, const struct nc_open_opts *o)
{
  struct nc_conn *c = tx_open (t, o, NBD_FLAG_SEND_FLUSH, "SEND_FLUSH",
                               true, 65536);
  struct nc_result r;

  tx_write_pattern (t, c, 0, 4096, 47);
  nc_cmd (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, o->extended
         ? "FLUSH (extended headers)" : "FLUSH (structured replies)");
}

static void
test_flush_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  flush_with (t, &o);
}

static void
test_flush_extended (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true };
  flush_with (t, &o);
}

static const struct nc_test tests[] = {
  { "trim-neighbours", "CMD-TRIM-1", NBDP_MUST, test_trim_neighbours,
    "TRIM at odd offsets leaves the bytes outside its range alone" },
  { "trim-then-write", "CMD-TRIM-1 CMD-WRITE-4", NBDP_MUST,
    test_trim_then_write, "a WRITE after TRIM reads back" },
  { "trim-large", "SIZE-29 SIZE-30 SIZE-28", NBDP_SHOULD, test_trim_large,
    "TRIM beyond the maximum payload: no disconnect" },
  { "cache-large", "SIZE-29 SIZE-30 SIZE-28", NBDP_SHOULD, test_cache_large,
    "CACHE beyond the maximum payload: no disconnect" },
  { "cache-semantics", "CMD-CACHE-3 CMD-CACHE-1 CMD-CACHE-4 CMD-CACHE-5",
    NBDP_MUST, test_cache_semantics,
    "CACHE changes nothing that later READs and WRITEs see" },
  { "cache-inflight", "CMD-CACHE-3", NBDP_MUST, test_cache_inflight,
    "CACHE with a WRITE of the same range in flight" },
  { "flush-inflight", "CMD-FLUSH-1 TX-ORD-2 TX-ORD-1", NBDP_MUST,
    test_flush_inflight, "FLUSH behind writes in flight succeeds" },
  { "flush-structured", "CMD-FLUSH-1 TX-SIMPLE-2", NBDP_MUST,
    test_flush_structured, "FLUSH with structured replies" },
  { "flush-extended", "CMD-FLUSH-1", NBDP_MUST, test_flush_extended,
    "FLUSH with extended headers" },
};
NC_SUITE ("transmission", tests);
