/* Block status suite: what base:allocation says about data the test has
 * written, trimmed and zeroed.  NBD_STATE_ZERO means "reads as zeroes",
 * so it must never cover data written (the patterns have no zero byte);
 * whether HOLE and ZERO follow TRIM and WRITE_ZEROES is the server's
 * choice (BS-ALLOC-3, BS-ALLOC-4) and recorded as INFO.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"
#include "../structured/ncx.h"

#define K 1024

static const char *const alloc_q[] = { "base:allocation" };

static struct nc_conn *
open_bs (struct nc_ctx *t, uint32_t *cid)
{
  static const struct nc_open_opts o = {
    .structured = true, .meta = alloc_q, .n_meta = 1, .block_size = true,
  };
  struct nc_conn *c = nc_open (t, &o);
  int64_t id = ncx_context_id (c, "base:allocation");

  if (id < 0)
    nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT did not select "
                    "base:allocation");
  *cid = (uint32_t) id;
  ncx_need_writable (t, c, 1024 * K);
  return c;
}

/* The alignment writes must honour (the minimum block size). */
static uint64_t
unit (const struct nc_conn *c)
{
  return c->s.have_block_size && c->s.min_block > 1 ? c->s.min_block : 1;
}

static uint64_t
up (uint64_t v, uint64_t u)
{
  return (v + u - 1) / u * u;
}

static struct ncx_reply *
status (struct nc_ctx *t, struct nc_conn *c, uint64_t off, uint64_t len)
{
  struct ncx_reply *r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, off, len,
                                 NULL);

  if (!ncx_check_bs (t, r, "CMD-BS-4"))
    nc_done (t);
  return r;
}

static const char *
flag_str (uint64_t f)
{
  static char b[4][32];
  static unsigned k;
  char *s = b[k++ % 4];

  snprintf (s, 32, "%s%s%s", f & NBD_STATE_HOLE ? "HOLE" : "",
            (f & 3) == 3 ? "|" : "", f & NBD_STATE_ZERO ? "ZERO"
            : f & NBD_STATE_HOLE ? "" : "0 (allocated)");
  return s;
}

/* Written data is never reported as reading zero. */
static bool
check_written (struct nc_ctx *t, const struct ncx_reply *r, uint32_t cid,
               uint64_t off, uint64_t len, const char *when)
{
  uint64_t or_f, and_f;

  if (!ncx_flags_over (r, cid, off, len, &or_f, &and_f))
    return true;              /* not described (a shorter reply) */
  if (or_f & NBD_STATE_ZERO) {
    nc_fail (t, "BS-ALLOC-4", "BLOCK_STATUS %s reports NBD_STATE_ZERO over %" PRIu64
             "+%" PRIu64 ", which holds nonzero data written by the test",
             when, off, len);
    return false;
  }
  return true;
}

static void
test_written_not_zero (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, &cid);
  struct ncx_reply *r;
  uint64_t or_f, and_f;
  uint64_t u = unit (c);

  free (ncx_write_pattern (t, c, 64 * K, 64 * K, 1));
  free (ncx_write_pattern (t, c, up (200 * K + 7, u), up (100, u), 2));
  r = status (t, c, 0, 512 * K);
  if (check_written (t, r, cid, 64 * K, 64 * K, "after WRITE 65536+65536") &&
      check_written (t, r, cid, up (200 * K + 7, u), up (100, u),
                     "after a small WRITE") &&
      ncx_flags_over (r, cid, 64 * K, 64 * K, &or_f, &and_f))
    nc_info (t, "written data reported as %s", flag_str (or_f));
}

static void
test_zero_reads_zero (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, &cid);
  struct ncx_reply *r;
  uint64_t u = unit (c);

  for (unsigned i = 0; i < 8; i++)
    free (ncx_write_pattern (t, c, up (i * 48 * K + i * 512, u),
                             up (3 * K + 100, u), i));
  r = status (t, c, 0, 512 * K);
  ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4");
}

static void
test_fresh (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, &cid);
  struct ncx_reply *r = status (t, c, 512 * K, 256 * K);
  uint64_t or_f, and_f;

  if (ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4") &&
      ncx_flags_over (r, cid, 512 * K, 256 * K, &or_f, &and_f))
    nc_info (t, "never-written range reported as %s", flag_str (or_f));
}

static void
test_after_trim (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, &cid);
  struct ncx_reply *r;
  uint64_t or_f, and_f;

  if (!(c->s.eflags & NBD_FLAG_SEND_TRIM))
    nc_unsupported (t, "the server did not advertise SEND_TRIM");
  free (ncx_write_pattern (t, c, 0, 512 * K, 3));
  ncx_setup (t, c, NBD_CMD_TRIM, 0, 128 * K, 256 * K);
  r = status (t, c, 0, 512 * K);
  if (!ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4") ||
      !check_written (t, r, cid, 0, 128 * K, "after TRIM 131072+262144") ||
      !check_written (t, r, cid, 384 * K, 128 * K,
                      "after TRIM 131072+262144"))
    return;
  if (ncx_flags_over (r, cid, 128 * K, 256 * K, &or_f, &and_f))
    nc_info (t, "trimmed range reported as %s%s", flag_str (and_f),
             or_f != and_f ? " (in part more)" : "");
}

static void
zero_test (struct nc_ctx *t, uint16_t flags)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, &cid);
  struct ncx_reply *r;
  uint64_t or_f, and_f;

  if (!(c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES))
    nc_unsupported (t, "the server did not advertise SEND_WRITE_ZEROES");
  free (ncx_write_pattern (t, c, 0, 512 * K, 4));
  ncx_setup (t, c, NBD_CMD_WRITE_ZEROES, flags, 128 * K, 256 * K);
  r = status (t, c, 0, 512 * K);
  if (!ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4") ||
      !check_written (t, r, cid, 0, 128 * K, "after WRITE_ZEROES") ||
      !check_written (t, r, cid, 384 * K, 128 * K, "after WRITE_ZEROES"))
    return;
  if (ncx_flags_over (r, cid, 128 * K, 256 * K, &or_f, &and_f))
    nc_info (t, "range zeroed%s reported as %s%s",
             flags & NBD_CMD_FLAG_NO_HOLE ? " with NO_HOLE" : "",
             flag_str (and_f), or_f != and_f ? " (in part more)" : "");
}

static void
test_after_zero (struct nc_ctx *t)
{
  zero_test (t, 0);
}

static void
test_after_zero_no_hole (struct nc_ctx *t)
{
  zero_test (t, NBD_CMD_FLAG_NO_HOLE);
}

/* Writing where status says "not a hole" does not fail with ENOSPC. */
static void
test_no_enospc (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, &cid);
  const struct nbdp_bs_extent *e;
  struct ncx_reply *r, *w;
  unsigned char *buf;
  size_t n;
  unsigned tried = 0;

  free (ncx_write_pattern (t, c, 0, 256 * K, 5));
  r = status (t, c, 0, 256 * K);
  n = ncx_extents_of (r, cid, &e);
  buf = malloc (4096);
  if (buf == NULL)
    nc_error (t, "out of memory");
  ncx_pattern (buf, 4096, 0, 99);
  for (size_t i = 0; i < n; i++) {
    if (e[i].flags & NBD_STATE_HOLE || e[i].length < 4096 ||
        e[i].offset + 4096 > 256 * K)
      continue;
    w = ncx_cmd (t, c, NBD_CMD_WRITE, 0, e[i].offset, 4096, buf);
    tried++;
    nc_expect (t, w->error != NBD_ENOSPC, "WRITE %" PRIu64 "+4096 into an "
               "extent reported without NBD_STATE_HOLE failed with "
               "NBD_ENOSPC", e[i].offset);
    if (!ncx_ok (w) && w->error != NBD_ENOSPC)
      nc_fail (t, "CMD-WRITE-4", "WRITE %" PRIu64 "+4096 into an allocated "
               "extent: got %s, expected success", e[i].offset,
               ncx_errstr (w));
  }
  if (tried == 0)
    nc_info (t, "no allocated extent was reported after writing 256 KiB "
             "(status 0 for everything is allowed)");
}

static const struct nc_test tests[] = {
  { "alloc-written-not-zero", "BS-ALLOC-4 CMD-BS-15", NBDP_MUST,
    test_written_not_zero, "data written is never reported ZERO" },
  { "alloc-zero-reads-zero", "BS-ALLOC-4 CMD-BS-15", NBDP_MUST,
    test_zero_reads_zero, "every extent reported ZERO reads as zeroes" },
  { "alloc-fresh", "BS-ALLOC-4 CMD-BS-16", NBDP_MUST, test_fresh,
    "never-written range: status recorded, ZERO only if it reads zero" },
  { "alloc-after-trim", "BS-ALLOC-3 BS-ALLOC-4", NBDP_MUST, test_after_trim,
    "after TRIM: HOLE is the server's choice, ZERO must be true" },
  { "alloc-after-write-zeroes", "BS-ALLOC-4 CMD-WZ-7", NBDP_MUST,
    test_after_zero, "after WRITE_ZEROES: status recorded and consistent" },
  { "alloc-after-zero-no-hole", "BS-ALLOC-3 BS-ALLOC-4 CMD-WZ-10",
    NBDP_MUST, test_after_zero_no_hole,
    "after WRITE_ZEROES with NO_HOLE: status recorded and consistent" },
  { "alloc-no-enospc", "BS-ALLOC-2 BS-ALLOC-1", NBDP_MUST, test_no_enospc,
    "writing to an extent not reported HOLE does not fail with ENOSPC" },
};
NC_SUITE ("block-status", tests);
