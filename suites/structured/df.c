/* Structured replies suite: NBD_CMD_FLAG_DF ("don't fragment") reads.
 * UNSUPPORTED unless the server advertised NBD_FLAG_SEND_DF after
 * structured replies were negotiated.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"
#include "ncx.h"

#define K 1024

static struct nc_conn *
open_df (struct nc_ctx *t)
{
  static const struct nc_open_opts sr = { .structured = true,
                                          .block_size = true };
  struct nc_conn *c = nc_open (t, &sr);

  if (!(c->s.eflags & NBD_FLAG_SEND_DF))
    nc_unsupported (t, "the server did not advertise NBD_FLAG_SEND_DF "
                    "(transmission flags 0x%04x)", c->s.eflags);
  return c;
}

/* Data, a hole, data: 64 KiB in all, starting at base. */
static unsigned char *
mixed64 (struct nc_ctx *t, struct nc_conn *c, uint64_t base)
{
  unsigned char *exp = calloc (1, 64 * K), *w;

  if (exp == NULL)
    nc_error (t, "out of memory");
  ncx_zero (t, c, base, 64 * K);
  w = ncx_write_pattern (t, c, base, 8 * K, 11);
  memcpy (exp, w, 8 * K);
  free (w);
  w = ncx_write_pattern (t, c, base + 56 * K, 8 * K, 12);
  memcpy (exp + 56 * K, w, 8 * K);
  free (w);
  return exp;
}

/* One content chunk at most; returns how many there were. */
static size_t
check_one (struct nc_ctx *t, const struct ncx_reply *r, const char *id)
{
  size_t n = ncx_content_chunks (r);
  char d[512];

  if (n > 1)
    nc_fail (t, id, "READ %" PRIu64 "+%" PRIu64 " with NBD_CMD_FLAG_DF: %zu "
             "content chunks [%s], expected at most one", r->offset,
             r->count, n, ncx_describe (r, d, sizeof d));
  return n;
}

static void
test_df_flag (struct nc_ctx *t)
{
  static const struct nc_open_opts sr = { .structured = true };
  struct nc_conn *c = nc_open (t, &sr);

  nc_info (t, "with structured replies SEND_DF is %s (flags 0x%04x)",
           c->s.eflags & NBD_FLAG_SEND_DF ? "advertised" : "not advertised",
           c->s.eflags);
}

/* Data and a hole: one OFFSET_DATA chunk with the zeroes in it. */
static void
test_df_mixed (struct nc_ctx *t)
{
  struct nc_conn *c = open_df (t);
  unsigned char *exp;
  struct ncx_reply *r;
  char d[512];

  ncx_need_writable (t, c, 256 * K);
  exp = mixed64 (t, c, 128 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 128 * K, 64 * K, NULL);
  if (!ncx_check_read (t, r, exp, "CMD-READ-41"))
    return;
  if (check_one (t, r, "CMD-READ-36") == 1)
    nc_expect (t, ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_DATA) == 1,
               "READ 131072+65536 (data, hole, data) with DF: got [%s], "
               "expected one OFFSET_DATA chunk with the zeroes present",
               ncx_describe (r, d, sizeof d));
}

/* 64 KiB at an unaligned offset is always served. */
static void
test_df_64k (struct nc_ctx *t)
{
  struct nc_conn *c = open_df (t);
  unsigned char *w;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 256 * K);
  ncx_need_align (t, c, 1);
  w = ncx_write_pattern (t, c, 1000, 64 * K, 13);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 1000, 64 * K, NULL);
  if (ncx_check_read (t, r, w, NULL))
    check_one (t, r, "CMD-READ-36");
}

/* A hole alone: one content chunk (a hole chunk is allowed). */
static void
test_df_hole (struct nc_ctx *t)
{
  struct nc_conn *c = open_df (t);
  unsigned char *z = calloc (1, 64 * K);
  struct ncx_reply *r;
  char d[512];

  if (z == NULL)
    nc_error (t, "out of memory");
  ncx_need_writable (t, c, 1024 * K);
  ncx_zero (t, c, 512 * K, 64 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 512 * K, 64 * K, NULL);
  if (!ncx_check_read (t, r, z, "CMD-READ-41"))
    return;
  if (check_one (t, r, NULL) == 1)
    nc_info (t, "DF read of a hole: %s", ncx_describe (r, d, sizeof d));
}

/* Unaligned, across data and hole edges. */
static void
test_df_unaligned (struct nc_ctx *t)
{
  struct nc_conn *c = open_df (t);
  unsigned char *exp;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 256 * K);
  ncx_need_align (t, c, 1);
  exp = mixed64 (t, c, 128 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 128 * K + 7000, 50001,
               NULL);
  char d[512];

  if (ncx_check_read (t, r, exp + 7000, "CMD-READ-41") &&
      check_one (t, r, NULL) == 1)
    nc_expect (t, ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_DATA) == 1,
               "READ %d+50001 (data, hole, data) with DF: got [%s], "
               "expected one OFFSET_DATA chunk with the zeroes present",
               128 * K + 7000, ncx_describe (r, d, sizeof d));
}

/* Large DF read: served whole or refused with EOVERFLOW and no content. */
static void
test_df_large (struct nc_ctx *t)
{
  struct nc_conn *c = open_df (t);
  const uint64_t len = 4096 * K;
  unsigned char *exp = calloc (1, len), *w;
  struct ncx_reply *r;
  char d[512];

  if (exp == NULL)
    nc_error (t, "out of memory");
  ncx_need_writable (t, c, len + 64 * K);
  ncx_need_payload (t, c, len);
  ncx_zero (t, c, 0, len);
  w = ncx_write_pattern (t, c, 1024 * K, 64 * K, 14);
  memcpy (exp + 1024 * K, w, 64 * K);
  free (w);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, len, NULL);
  if (r->io_error) {
    nc_fail (t, NULL, "READ 0+%" PRIu64 " with DF: %s", len, r->io_error);
    return;
  }
  if (r->error == 0) {
    if (ncx_check_read (t, r, exp, "CMD-READ-19") &&
        check_one (t, r, "CMD-READ-36") == 1)
      nc_info (t, "DF read of 4 MiB served in one chunk");
    return;
  }
  nc_expect (t, ncx_content_chunks (r) == 0, "READ 0+%" PRIu64 " with DF "
             "failed with %s after content chunks [%s], expected no content "
             "chunk", len, ncx_errstr (r), ncx_describe (r, d, sizeof d));
  if (r->error == NBD_EOVERFLOW)
    nc_info (t, "DF read of 4 MiB refused with NBD_EOVERFLOW");
  else
    nc_should (t, "ERR-5", "DF read of 4 MiB (within the maximum payload) "
               "failed with %s, expected success or NBD_EOVERFLOW",
               ncx_errstr (r));
}

/* A DF read of the whole maximum payload (32 MiB at most).  Its one
 * OFFSET_DATA chunk then carries more than the maximum payload, which the
 * fixed overhead of the chunk header allows (SIZE-26), but the constraint
 * of DF still binds (SIZE-27): one content chunk covering the request, or
 * NBD_EOVERFLOW (allowed over 64 KiB) without any content chunk.
 */
static void
test_df_max_payload (struct nc_ctx *t)
{
  struct nc_conn *c = open_df (t);
  uint64_t len = nbdp_session_max_payload (&c->s);
  unsigned char *exp, *w;
  struct ncx_reply *r;
  char d[512];

  if (len > 32 * K * K)
    len = 32 * K * K;
  if (len < 128 * K)
    nc_skip (t, "maximum payload %" PRIu64 " is below 128 KiB", len);
  ncx_need_writable (t, c, len);
  ncx_need_payload (t, c, len);
  exp = calloc (1, len);
  if (exp == NULL)
    nc_error (t, "out of memory");
  ncx_zero (t, c, 0, len);
  w = ncx_write_pattern (t, c, len - 64 * K, 64 * K, 15);
  memcpy (exp + len - 64 * K, w, 64 * K);
  free (w);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, len, NULL);
  if (r->io_error) {
    free (exp);
    nc_fail (t, NULL, "READ 0+%" PRIu64 " with DF: %s", len, r->io_error);
    return;
  }
  if (r->error == 0) {
    if (ncx_check_read (t, r, exp, "CMD-READ-19") &&
        check_one (t, r, "SIZE-27") == 1)
      nc_info (t, "DF read of the maximum payload (%" PRIu64 " bytes) "
               "served in one chunk", len);
    free (exp);
    return;
  }
  free (exp);
  if (ncx_content_chunks (r) != 0)
    nc_fail (t, "SIZE-27", "READ 0+%" PRIu64 " (the maximum payload) with "
             "DF failed with %s after content chunks [%s], expected one "
             "content chunk or none", len, ncx_errstr (r),
             ncx_describe (r, d, sizeof d));
  if (r->error == NBD_EOVERFLOW)
    nc_info (t, "DF read of the maximum payload (%" PRIu64 " bytes) "
             "refused with NBD_EOVERFLOW", len);
  else
    nc_should (t, "ERR-5", "DF read of the maximum payload (%" PRIu64
               " bytes) failed with %s, expected success or NBD_EOVERFLOW",
               len, ncx_errstr (r));
}

static const struct nc_test tests[] = {
  { "df-flag", "FLAG-TX-9", NBDP_MUST, test_df_flag,
    "records whether SEND_DF is advertised with structured replies" },
  { "df-mixed", "CMD-READ-36 CMD-READ-38 CMD-READ-41 FLAG-CMD-10",
    NBDP_MUST, test_df_mixed,
    "DF read over data and hole: one OFFSET_DATA chunk with zeroes" },
  { "df-64k", "CMD-READ-41 CMD-READ-36", NBDP_MUST, test_df_64k,
    "DF read of 64 KiB is served in one chunk" },
  { "df-hole", "CMD-READ-36 CMD-READ-37 CMD-READ-41", NBDP_MUST,
    test_df_hole, "DF read of a hole: at most one content chunk" },
  { "df-unaligned", "CMD-READ-36 CMD-READ-38 CMD-READ-41", NBDP_MUST,
    test_df_unaligned, "unaligned DF read: one chunk, right bytes" },
  { "df-large", "CMD-READ-39 CMD-READ-40 FLAG-CMD-12 CMD-READ-36",
    NBDP_MUST, test_df_large,
    "large DF read: one chunk, or NBD_EOVERFLOW without content" },
  { "df-max-payload", "SIZE-27 SIZE-26 CMD-READ-36 CMD-READ-39", NBDP_MUST,
    test_df_max_payload, "DF read of the maximum payload: one chunk over "
    "the maximum by its header, or NBD_EOVERFLOW without content" },
};
NC_SUITE ("structured", tests);
