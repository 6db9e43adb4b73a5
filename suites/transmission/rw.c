/* Transmission suite: READ and WRITE, with each reply style. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

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
};
NC_SUITE ("transmission", tests);
