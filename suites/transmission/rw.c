/* Transmission suite: READ and WRITE, with each reply style. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"
#include "txlib.h"

#define LEN 65536

static void
pattern (unsigned char *b, size_t n, uint64_t off, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char) ((off + i) * 31 + seed + ((off + i) >> 9));
}

static uint64_t
first_diff (const unsigned char *a, const unsigned char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i])
      return i;
  return n;
}

/* Write a pattern, read it back, compare. */
static void
roundtrip (struct nc_ctx *t, const struct nc_open_opts *o)
{
  struct nc_conn *c = nc_open (t, o);
  unsigned char *w = malloc (LEN), *r = malloc (LEN);
  uint64_t off = 4096, d;
  struct nc_result res;

  if (!w || !r)
    nc_error (t, "out of memory");
  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_skip (t, "the export is read-only (use a writable export)");
  if (c->s.export_size < off + LEN)
    nc_skip (t, "the export (%" PRIu64 " bytes) is smaller than %d",
             c->s.export_size, (int) (off + LEN));
  pattern (w, LEN, off, 7);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, off, LEN, w, NULL, &res);
  if (!nc_expect (t, res.complete && res.error == 0, "WRITE offset %" PRIu64
                  " length %d: got %s, expected success", off, LEN,
                  nc_errstr (&res)))
    return;
  memset (r, 0xee, LEN);
  nc_cmd (t, c, NBD_CMD_READ, 0, off, LEN, NULL, r, &res);
  if (!nc_expect (t, res.complete && res.error == 0, "READ offset %" PRIu64
                  " length %d: got %s, expected success", off, LEN,
                  nc_errstr (&res)))
    return;
  d = first_diff (w, r, LEN);
  nc_expect (t, d == LEN, "READ after WRITE at offset %" PRIu64 ": byte %"
             PRIu64 " reads 0x%02x, written 0x%02x", off, off + d,
             d < LEN ? r[d] : 0, d < LEN ? w[d] : 0);
}

static void
test_roundtrip (struct nc_ctx *t)
{
  roundtrip (t, NULL);
}

static void
test_roundtrip_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  roundtrip (t, &o);
}

static void
test_roundtrip_extended (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true };
  roundtrip (t, &o);
}

/* After SR, a READ is answered with chunks (the rule engine rejects a
 * simple reply: SR-MSG-3).
 */
static void
test_structured_read (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  struct nc_conn *c = nc_open (t, &o);
  unsigned char buf[4096];
  struct nc_result r;
  uint64_t len = c->s.export_size < sizeof buf ? c->s.export_size
    : sizeof buf;

  nc_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL, buf, &r);
  nc_expect (t, r.complete && r.simple == 0 && r.chunks > 0,
             "READ 0+%" PRIu64 " after NBD_OPT_STRUCTURED_REPLY: got %u "
             "simple replies and %u chunks, expected structured chunks only",
             len, r.simple, r.chunks);
  nc_expect (t, r.error == 0, "READ 0+%" PRIu64 ": got %s, expected "
             "success", len, nc_errstr (&r));
}

/* Several reads in flight with unusual cookies; each reply must carry
 * its request's cookie (rules: TX-GEN-4).
 */
static void
test_cookies (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  uint64_t cookies[4];
  struct nc_result r;

  if (c->s.export_size < 4 * 512)
    nc_skip (t, "export smaller than 2048 bytes");
  c->c->next_cookie = UINT64_C (0xfedcba9876543200);
  for (int i = 0; i < 4; i++)
    cookies[i] = nc_send (t, c, NBD_CMD_READ, 0, 512 * i, 512, NULL, 0);
  for (int i = 3; i >= 0; i--) {
    nc_wait (t, c, cookies[i], NULL, &r);
    nc_expect (t, r.complete, "READ with cookie 0x%" PRIx64 ": %s",
               cookies[i], nc_errstr (&r));
  }
}

/* Cookies at the edges of the 64-bit range, all in flight at once: each
 * reply must carry its request's cookie unchanged (rules: TX-GEN-4), and
 * each READ must get its own data.
 */
static void
test_cookies_extreme (struct nc_ctx *t)
{
  static const uint64_t cookies[] = {
    0, UINT64_MAX, UINT64_C (0x8000000000000000), UINT64_C (0xffffffff),
    UINT64_C (0xffffffff00000000), UINT64_C (0x0102030405060708),
  };
  const size_t n = sizeof cookies / sizeof cookies[0];
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 65536);
  struct nc_result r;
  unsigned char buf[512];

  tx_write_pattern (t, c, 0, n * 512, 3);
  for (size_t i = 0; i < n; i++) {
    c->c->next_cookie = cookies[i];
    nc_send (t, c, NBD_CMD_READ, 0, 512 * i, 512, NULL, 0);
  }
  for (size_t i = n; i-- > 0; ) {
    unsigned char want[512];
    nc_wait (t, c, cookies[i], buf, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "TX-GEN-4", TX_VALID, "READ with an "
                "extreme cookie"))
      continue;
    tx_pattern (want, sizeof want, 512 * i, 3);
    nc_expect (t, memcmp (buf, want, sizeof buf) == 0, "READ %zu+512 with "
               "cookie 0x%016" PRIx64 ": the data is not that of offset %zu "
               "(replies mixed up?)", 512 * i, cookies[i], 512 * i);
  }
}

/* Overlapping writes: the later one wins where they overlap. */
static void
test_write_overlap (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 65536);
  unsigned char w[16384];

  tx_write_pattern (t, c, 0, 16384, 1);
  tx_write_pattern (t, c, 4096, 8192, 2);
  tx_pattern (w, 16384, 0, 1);
  tx_pattern (w + 4096, 8192, 4096, 2);
  tx_check (t, c, 0, 16384, w, NBDP_MUST, "CMD-WRITE-4", "WRITE 0+16384 "
            "(pattern 1), then WRITE 4096+8192 (pattern 2)");
}

/* Without advertised size constraints a server should accept 1-byte
 * granularity (SIZE-7); whatever it does, the neighbouring bytes must
 * not change (SIZE-11).
 */
static void
test_write_unaligned (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 65536);
  unsigned char w[8192], one[3] = { 0x11, 0x22, 0x33 };
  struct nc_result r;

  if (c->s.have_block_size && c->s.min_block > 1)
    nc_info (t, "the server advertised a minimum block size of %" PRIu32
             " without being asked", c->s.min_block);
  tx_write_pattern (t, c, 0, sizeof w, 4);
  tx_pattern (w, sizeof w, 0, 4);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 4097, 3, one, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, "WRITE 4097+3");
  if (r.error)
    tx_unaligned_refused (t, c, &r, 4097, 3, "WRITE 4097+3");
  else
    memcpy (w + 4097, one, 3);
  tx_check (t, c, 0, sizeof w, w, NBDP_MUST, "SIZE-11", "WRITE 0+8192 "
            "(pattern), then WRITE 4097+3");
}

/* The last byte of the export can be written and read back. */
static void
test_write_last_byte (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 4096);
  uint64_t end = c->s.export_size;
  unsigned char w[512];

  tx_write_pattern (t, c, end - 512, 512, 5);
  tx_pattern (w, 512, end - 512, 5);
  tx_check (t, c, end - 512, 512, w, NBDP_MUST, "CMD-WRITE-4",
            "WRITE of the last 512 bytes of the export");
  if (!tx_misaligned (c, end - 1, 1))
    tx_check (t, c, end - 1, 1, w + 511, NBDP_SHOULD, "SIZE-7",
            "WRITE of the last 512 bytes of the export (READ of the last "
            "byte alone)");
}

/* Many writes in flight at once (not overlapping), then many reads in
 * flight: every request is answered and every byte is where it belongs.
 * Replies may come in any order (TX-ORD-1).
 */
static void
test_pipelined (struct nc_ctx *t)
{
  enum { N = 32, SZ = 8192 };
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, N * SZ);
  unsigned char *w = tx_alloc (t, N * SZ), *rd = tx_alloc (t, N * SZ);
  uint64_t cookies[N];
  struct nc_result r;

  tx_pattern (w, N * SZ, 0, 6);
  for (int i = 0; i < N; i++)
    cookies[i] = nc_send (t, c, NBD_CMD_WRITE, 0, (uint64_t) i * SZ, SZ,
                          w + i * SZ, SZ);
  for (int i = 0; i < N; i++) {
    nc_wait (t, c, cookies[i], NULL, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "CMD-WRITE-4", TX_VALID, "one of 32 "
                "WRITEs of 8192 bytes in flight at once"))
      nc_done (t);
  }
  for (int i = 0; i < N; i++)
    cookies[i] = nc_send (t, c, NBD_CMD_READ, 0, (uint64_t) i * SZ, SZ,
                          NULL, 0);
  for (int i = N; i-- > 0; ) {
    nc_wait (t, c, cookies[i], rd + i * SZ, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "CMD-READ-4", TX_VALID, "one of 32 "
                "READs of 8192 bytes in flight at once"))
      nc_done (t);
  }
  for (int i = 0; i < N * SZ; i++)
    if (w[i] != rd[i]) {
      nc_fail (t, "CMD-WRITE-4", "32 WRITEs of 8192 bytes in flight, then "
               "32 READs in flight: byte %d reads 0x%02x, written 0x%02x",
               i, rd[i], w[i]);
      break;
    }
  free (w);
  free (rd);
}

/* Reads of many sizes with simple replies: each reply carries exactly
 * the requested number of bytes (a wrong count desynchronises the
 * stream, which the next reply shows).
 */
static void
test_read_sizes (struct nc_ctx *t)
{
  static const uint32_t sizes[] = { 1, 2, 511, 512, 513, 4095, 4096, 4097,
                                    65535, 65536, 65537, 131072 };
  const size_t n = sizeof sizes / sizeof sizes[0];
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 262144);
  unsigned char *w = tx_alloc (t, 262144), *b = tx_alloc (t, 262144);
  uint64_t cookies[sizeof sizes / sizeof sizes[0]];
  struct nc_result r;

  tx_write_pattern (t, c, 0, 262144, 8);
  tx_pattern (w, 262144, 0, 8);
  for (size_t i = 0; i < n; i++)
    cookies[i] = nc_send (t, c, NBD_CMD_READ, 0, 7 * i, sizes[i], NULL, 0);
  for (size_t i = 0; i < n; i++) {
    char what[96];
    if (tx_misaligned (c, 7 * i, sizes[i])) {
      nc_wait (t, c, cookies[i], b, &r);
      if (!r.complete)
        tx_gone (t, &r, TX_VALID, "READ not aligned to the advertised "
                 "minimum block size");
      continue;
    }
    snprintf (what, sizeof what, "READ %zu+%" PRIu32 " (one of %zu in "
              "flight)", 7 * i, sizes[i], n);
    nc_wait (t, c, cookies[i], b, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "CMD-READ-4", TX_VALID, what))
      nc_done (t);
    if (memcmp (b, w + 7 * i, sizes[i]) != 0)
      nc_fail (t, "CMD-READ-4", "%s: the data differs from what was "
               "written", what);
  }
  free (w);
  free (b);
}

/* 32 MiB: the default maximum payload a server should take (SIZE-7) and
 * that no side should treat as a denial of service (SIZE-24).
 */
static void
test_payload_32m (struct nc_ctx *t)
{
  const uint64_t len = 32 * 1024 * 1024;
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, len);
  unsigned char *w = tx_alloc (t, len), *b = tx_alloc (t, len);
  struct nc_result r;

  tx_pattern (w, len, 0, 9);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 0, len, w, NULL, &r);
  if (!r.complete)
    nc_should (t, "SIZE-24", "WRITE 0+32 MiB: the server closed the "
               "connection (%s); a 32 MiB payload should not be taken for "
               "a denial of service", nc_errstr (&r)), nc_done (t);
  if (r.error) {
    if (c->s.have_block_size && c->s.max_payload < len)
      nc_info (t, "WRITE 0+32 MiB failed with %s; the server advertised "
               "a maximum payload of %" PRIu32, nc_errstr (&r),
               c->s.max_payload);
    else
      nc_should (t, "SIZE-7", "WRITE 0+32 MiB without advertised size "
                 "constraints: got %s, expected success", nc_errstr (&r));
    tx_alive (t, c, TX_BAD_SHOULD, "a refused 32 MiB WRITE");
    nc_done (t);
  }
  nc_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL, b, &r);
  if (!r.complete)
    nc_should (t, "SIZE-24", "READ 0+32 MiB: the server closed the "
               "connection (%s)", nc_errstr (&r)), nc_done (t);
  if (r.error)
    nc_should (t, "SIZE-7", "READ 0+32 MiB: got %s, expected success",
               nc_errstr (&r));
  else if (memcmp (w, b, len) != 0)
    nc_fail (t, "CMD-WRITE-4", "WRITE 0+32 MiB then READ 0+32 MiB: the "
             "data differs");
  free (w);
  free (b);
}

/* A WRITE with FUA then a READ on the same connection. */
static void
test_write_fua_read (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, NBD_FLAG_SEND_FUA, "SEND_FUA",
                               true, 65536);
  unsigned char w[4096];

  tx_pattern (w, sizeof w, 8192, 10);
  tx_write (t, c, 8192, sizeof w, w, NBD_CMD_FLAG_FUA);
  tx_check (t, c, 8192, sizeof w, w, NBDP_MUST, "CMD-WRITE-4",
            "WRITE 8192+4096 with NBD_CMD_FLAG_FUA");
}

static const struct nc_test tests[] = {
  { "write-read", "CMD-WRITE-4 CMD-READ-4 TX-SIMPLE-1", NBDP_MUST,
    test_roundtrip, "data written reads back (simple replies)" },
  { "write-read-structured", "CMD-WRITE-4 CMD-READ-10 SR-MSG-3",
    NBDP_MUST, test_roundtrip_structured,
    "data written reads back (structured replies)" },
  { "write-read-extended", "CMD-WRITE-4 EH-REP-1 EH-REP-3 "
    "EH-SIMPLE-1", NBDP_MUST, test_roundtrip_extended,
    "data written reads back (extended headers)" },
  { "structured-read", "OPT-SR-3 SR-MSG-3 CMD-READ-19", NBDP_MUST,
    test_structured_read, "after STRUCTURED_REPLY, READ uses chunks" },
  { "cookies", "TX-GEN-4", NBDP_MUST, test_cookies,
    "replies carry the cookie of their request" },
  { "cookies-extreme", "TX-GEN-4 TX-ORD-1", NBDP_MUST, test_cookies_extreme,
    "cookies 0, 2^64-1 and others in flight come back unchanged" },
  { "write-overlap", "CMD-WRITE-4", NBDP_MUST, test_write_overlap,
    "a later overlapping WRITE wins" },
  { "write-unaligned", "SIZE-11 SIZE-7 CMD-WRITE-4", NBDP_MUST,
    test_write_unaligned, "a 3-byte WRITE at an odd offset leaves its "
    "neighbours intact" },
  { "write-last-byte", "CMD-WRITE-4 SIZE-7", NBDP_MUST, test_write_last_byte,
    "the end of the export can be written and read" },
  { "pipelined", "CMD-WRITE-4 CMD-READ-4 TX-ORD-1 TX-GEN-4", NBDP_MUST,
    test_pipelined, "32 WRITEs then 32 READs in flight at once" },
  { "read-sizes", "CMD-READ-4 TX-SIMPLE-1", NBDP_MUST, test_read_sizes,
    "simple READ replies carry exactly the requested length" },
  { "payload-32m", "SIZE-7 SIZE-24 CMD-WRITE-4", NBDP_SHOULD,
    test_payload_32m, "WRITE and READ of 32 MiB succeed" },
  { "write-fua-read", "CMD-WRITE-4 TX-ORD-3", NBDP_MUST, test_write_fua_read,
    "a WRITE with FUA reads back" },
};
NC_SUITE ("transmission", tests);
