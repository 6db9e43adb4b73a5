/* Structured replies suite: NBD_CMD_READ answered in chunks.  Every
 * chunk is judged by the rule engine (lengths, ranges, overlap, DONE,
 * coverage); the tests add explicit checks of the reassembled data
 * against what was written, of chunk boundaries and of the reply form,
 * and record the server's choices (holes or data, how many chunks).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"
#include "ncx.h"

#define K 1024

static const struct nc_open_opts sr = { .structured = true,
                                         .block_size = true };

struct span { uint64_t off, len; };

/* Write data at each span (relative to base) of a region that starts
 * out zero (a fresh export), and return the expected content of
 * [base, base + len).
 */
static unsigned char *
layout (struct nc_ctx *t, struct nc_conn *c, uint64_t base, uint64_t len,
        const struct span *s, size_t n)
{
  unsigned char *exp = calloc (1, len);

  if (exp == NULL)
    nc_error (t, "out of memory");
  ncx_zero (t, c, base, len);
  for (size_t i = 0; i < n; i++) {
    unsigned char *w = ncx_write_pattern (t, c, base + s[i].off, s[i].len,
                                          (unsigned) i + 3);
    memcpy (exp + s[i].off, w, s[i].len);
    free (w);
  }
  return exp;
}

static const struct span mixed[] = {
  { 64 * K, 64 * K }, { 192 * K, 4 * K }, { 304 * K, 8 * K },
};
#define MIXED_LEN (512 * K)

static void
info_chunks (struct nc_ctx *t, const struct ncx_reply *r)
{
  char d[512];

  nc_info (t, "READ %" PRIu64 "+%" PRIu64 " answered with %zu data and %zu "
           "hole chunks: %s", r->offset, r->count,
           ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_DATA),
           ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_HOLE),
           ncx_describe (r, d, sizeof d));
}

/* Data written reads back in chunks, DONE on the last only. */
static void
test_read_chunks (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *w;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 128 * K);
  w = ncx_write_pattern (t, c, 0, 64 * K, 1);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 64 * K, NULL);
  if (!ncx_check_read (t, r, w, NULL))
    return;
  ncx_check_done_last (t, r, "FLAG-REPLY-1");
  nc_expect (t, r->simple == 0 && r->chunks > 0, "READ 0+65536 after "
             "NBD_OPT_STRUCTURED_REPLY: got %u simple replies and %u chunks, "
             "expected chunks only", r->simple, r->chunks);
}

/* Unaligned data: reassembled by offset it equals what was written. */
static void
test_read_data (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *w;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 256 * K);
  ncx_need_align (t, c, 1);
  w = ncx_write_pattern (t, c, 4096 + 333, 100 * K + 17, 2);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 4096 + 333, 100 * K + 17, NULL);
  ncx_check_read (t, r, w, NULL);
}

/* Never written: reads as zero, holes or data as the server likes. */
static void
test_read_hole (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *z;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 2048 * K);
  ncx_need_payload (t, c, 1024 * K);
  z = calloc (1, 1024 * K);
  if (z == NULL)
    nc_error (t, "out of memory");
  ncx_zero (t, c, 1024 * K, 1024 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 1024 * K, 1024 * K, NULL);
  if (ncx_check_read (t, r, z, NULL))
    info_chunks (t, r);
}

/* Data and holes mixed, read as one request. */
static void
test_read_mixed (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *exp;
  struct ncx_reply *r;

  ncx_need_writable (t, c, MIXED_LEN);
  ncx_need_payload (t, c, MIXED_LEN);
  exp = layout (t, c, 0, MIXED_LEN, mixed, 3);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, MIXED_LEN, NULL);
  if (ncx_check_read (t, r, exp, NULL) &&
      ncx_check_done_last (t, r, "FLAG-REPLY-1")) {
    info_chunks (t, r);
    if (r->n_c)
      nc_info (t, "the final chunk is %s",
               ncx_type_name (r->c[r->n_c - 1].type));
  }
}

/* An unaligned read across data/hole edges. */
static void
test_read_unaligned (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *exp;
  struct ncx_reply *r;
  const uint64_t off = 60 * K + 1000, len = 150 * K + 1;

  ncx_need_writable (t, c, MIXED_LEN);
  ncx_need_align (t, c, 1);
  ncx_need_payload (t, c, len);
  exp = layout (t, c, 0, MIXED_LEN, mixed, 3);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, off, len, NULL);
  if (ncx_check_read (t, r, exp + off, NULL))
    info_chunks (t, r);
}

/* SHOULD: interior chunk boundaries are multiples of 512. */
static void
test_read_alignment (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *exp;
  struct ncx_reply *r;
  const uint64_t off = 100, len = MIXED_LEN - 200;
  char d[512];

  ncx_need_writable (t, c, MIXED_LEN);
  ncx_need_align (t, c, 1);
  ncx_need_payload (t, c, len);
  exp = layout (t, c, 0, MIXED_LEN, mixed, 3);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, off, len, NULL);
  if (!ncx_check_read (t, r, exp + off, "CMD-READ-19"))
    return;
  for (size_t i = 0; i < r->n_c; i++) {
    const struct ncx_chunk *ch = &r->c[i];
    if (ch->type != NBD_REPLY_TYPE_OFFSET_DATA &&
        ch->type != NBD_REPLY_TYPE_OFFSET_HOLE)
      continue;
    if ((ch->off != off && ch->off % 512) ||
        (ch->off + ch->len != off + len && (ch->off + ch->len) % 512)) {
      nc_expect (t, false, "READ %" PRIu64 "+%" PRIu64 ": content chunk %s %"
                 PRIu64 "+%" PRIu64 " has an interior boundary that is not a "
                 "multiple of 512 [%s]", off, len,
                 ncx_type_name (ch->type), ch->off, ch->len,
                 ncx_describe (r, d, sizeof d));
      return;
    }
  }
  info_chunks (t, r);
}

/* SHOULD: few chunks for contiguous data. */
static void
test_read_few_chunks (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *w;
  struct ncx_reply *r;
  char d[512];

  ncx_need_writable (t, c, 256 * K);
  ncx_need_payload (t, c, 256 * K);
  w = ncx_write_pattern (t, c, 0, 256 * K, 4);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 256 * K, NULL);
  if (!ncx_check_read (t, r, w, "CMD-READ-19"))
    return;
  nc_expect (t, ncx_content_chunks (r) <= 16, "READ 0+262144 of data "
             "written in one WRITE: %zu content chunks, expected few (at "
             "most 16) [%s]", ncx_content_chunks (r),
             ncx_describe (r, d, sizeof d));
}

/* SHOULD NOT disconnect on a zero-length read; never a simple reply. */
static void
test_read_zero_length (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  struct ncx_reply *r, *r2;
  char d[512];

  ncx_need_size (t, c, 4096);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 0, NULL);
  if (r->io_error) {
    nc_expect (t, false, "READ offset 0 length 0: the server %s, expected a "
               "reply and the connection kept", r->disconnected
               ? "closed the connection" : "did not answer");
    return;
  }
  if (r->simple)
    nc_fail (t, "SR-MSG-3", "READ length 0 with structured replies: got "
             "[%s], expected a structured reply", ncx_describe (r, d,
                                                               sizeof d));
  nc_info (t, "READ length 0 answered with %s: %s", ncx_errstr (r),
           ncx_describe (r, d, sizeof d));
  r2 = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  nc_expect (t, ncx_ok (r2), "READ 0+4096 after a zero-length READ: got %s, "
             "expected success", ncx_errstr (r2));
}

/* An early error to READ still comes as a structured reply. */
static void
test_read_past_end (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  uint64_t size = c->s.export_size;
  struct ncx_reply *r;
  char d[512];

  ncx_need_size (t, c, 4096);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, size - 4096, 8192, NULL);
  if (r->io_error) {
    nc_info (t, "READ past the end: the server dropped the connection (%s)",
             r->io_error);
    return;
  }
  if (!nc_expect (t, r->simple == 0, "READ offset %" PRIu64 " length 8192 "
                  "(past the end %" PRIu64 ") with structured replies: got "
                  "[%s], expected a structured reply", size - 4096, size,
                  ncx_describe (r, d, sizeof d)))
    return;
  if (r->error == 0)
    nc_should (t, "ERR-3", "READ past the end of the export succeeded [%s], "
               "expected NBD_EINVAL", ncx_describe (r, d, sizeof d));
  else if (r->message[0] == '\0')
    nc_info (t, "READ past the end: %s without a message", ncx_errstr (r));
  else
    nc_info (t, "READ past the end: %s", ncx_errstr (r));
}

/* Bad flags on READ: any answer, but not a simple reply. */
static void
test_read_bad_flags (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  struct ncx_reply *r;
  char d[512];

  ncx_need_size (t, c, 4096);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE |
               NBD_CMD_FLAG_FAST_ZERO, 0, 4096, NULL);
  if (r->io_error) {
    nc_info (t, "READ with flags REQ_ONE|FAST_ZERO: the server dropped the "
             "connection (%s)", r->io_error);
    return;
  }
  nc_expect (t, r->simple == 0, "READ 0+4096 with flags REQ_ONE|FAST_ZERO "
             "(not valid for READ) and structured replies: got [%s], "
             "expected a structured reply, even for an early NBD_EINVAL",
             ncx_describe (r, d, sizeof d));
  nc_info (t, "READ with invalid flags: %s", ncx_errstr (r));
}

/* Several reads in flight with unusual cookies; chunks carry them. */
static void
test_read_cookies (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  struct ncx_reply *r[8];
  unsigned char *exp;
  bool interleaved = false;
  unsigned last = 0;

  ncx_need_writable (t, c, MIXED_LEN);
  exp = layout (t, c, 0, MIXED_LEN, mixed, 3);
  for (int i = 0; i < 8; i++) {
    struct ncx_req q = {
      .type = NBD_CMD_READ, .offset = i * 64 * K, .count = 64 * K,
      .cookie = UINT64_C (0xfedcba9876543200) + (uint64_t) i * 0x10001,
    };
    r[i] = ncx_send (t, c, &q);
  }
  for (int i = 7; i >= 0; i--) {
    ncx_wait (t, r[i]);
    if (!ncx_check_read (t, r[i], exp + i * 64 * K, NULL))
      return;
  }
  /* Did chunks of different replies interleave? */
  for (int i = 0; i < 8; i++)
    for (size_t k = 1; k < r[i]->n_c; k++)
      if (r[i]->c[k].seq != r[i]->c[k - 1].seq + 1)
        interleaved = true;
  for (int i = 0; i < 8; i++)
    if (r[i]->n_c && r[i]->c[0].seq < last)
      last = UINT32_MAX;
    else if (r[i]->n_c)
      last = r[i]->c[0].seq;
  nc_info (t, "8 READs in flight: chunks of different replies %s; replies "
           "%s", interleaved ? "interleaved" : "did not interleave",
           last == UINT32_MAX ? "out of order" : "in request order");
}

/* Reads of the maximum payload: data chunks stay within it. */
static void
test_read_max_payload (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true,
                                         .block_size = true };
  struct nc_conn *c = nc_open (t, &o);
  uint32_t max = nbdp_session_max_payload (&c->s);
  uint64_t len = max > 16 * K * K ? 16 * K * K : max & ~UINT32_C (4095);
  struct ncx_reply *r;
  unsigned char *w;

  ncx_need_writable (t, c, len);
  w = ncx_write_pattern (t, c, 0, 64 * K, 5);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL);
  if (!ncx_check_read (t, r, NULL, "CMD-READ-19"))
    return;
  nc_expect (t, memcmp (r->data, w, len < 64 * K ? len : 64 * K) == 0,
             "READ 0+%" PRIu64 ": the first 64 KiB differ from what was "
             "written", len);
  for (size_t i = 0; i < r->n_c; i++)
    if (c->s.have_block_size && r->c[i].type == NBD_REPLY_TYPE_OFFSET_DATA &&
        r->c[i].len > max)
      nc_fail (t, "SR-TYPE-2", "READ 0+%" PRIu64 ": OFFSET_DATA chunk of %"
               PRIu64 " bytes, more than the advertised maximum payload %"
               PRIu32, len, r->c[i].len, max);
  nc_info (t, "READ of %" PRIu64 " bytes (maximum payload %" PRIu32 "%s): "
           "%zu chunks", len, max, c->s.have_block_size ? "" : ", default",
           r->n_c);
}

/* Beyond the maximum payload: split (MAY) or refused. */
static void
test_read_over_max (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true,
                                         .block_size = true };
  struct nc_conn *c = nc_open (t, &o);
  uint32_t max = nbdp_session_max_payload (&c->s);
  uint64_t len = (uint64_t) max + 4096;
  struct ncx_reply *r;
  char d[512];

  if (len > 40 * K * K)
    nc_skip (t, "the maximum payload (%" PRIu32 ") is too large to exceed "
             "quickly", max);
  ncx_need_size (t, c, len);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL);
  if (r->io_error) {
    nc_info (t, "READ of %" PRIu64 " bytes (over the maximum payload %"
             PRIu32 "): the server dropped the connection", len, max);
    return;
  }
  if (r->error == 0) {
    if (!ncx_check_read (t, r, NULL, "CMD-READ-19"))
      return;
    for (size_t i = 0; i < r->n_c; i++)
      if (c->s.have_block_size &&
          r->c[i].type == NBD_REPLY_TYPE_OFFSET_DATA && r->c[i].len > max) {
        nc_fail (t, "SR-TYPE-2", "READ 0+%" PRIu64 ": OFFSET_DATA chunk of %"
                 PRIu64 " bytes, more than the advertised maximum payload %"
                 PRIu32, len, r->c[i].len, max);
        return;
      }
    nc_info (t, "READ of %" PRIu64 " bytes (maximum payload %" PRIu32 "%s) "
             "served in %zu chunks", len, max, c->s.have_block_size ? ""
             : ", the default: none advertised", r->n_c);
  }
  else
    nc_info (t, "READ of %" PRIu64 " bytes (maximum payload %" PRIu32 ") "
             "refused: %s [%s]", len, max, ncx_errstr (r),
             ncx_describe (r, d, sizeof d));
}

/* The last bytes of the export. */
static void
test_read_at_end (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  uint64_t size = c->s.export_size;
  unsigned char *w;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 64 * K);
  w = ncx_write_pattern (t, c, size - 4096, 4096, 6);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, size - 12288, 12288, NULL);
  if (r->complete && r->error == 0 && r->data)
    nc_expect (t, memcmp (r->data + 8192, w, 4096) == 0, "READ of the last "
               "12288 bytes: the last 4096 differ from what was written");
  ncx_check_read (t, r, NULL, NULL);
}

/* One byte, in data and in a hole. */
static void
test_read_one_byte (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *exp;
  struct ncx_reply *r;

  ncx_need_writable (t, c, MIXED_LEN);
  ncx_need_align (t, c, 1);
  exp = layout (t, c, 0, MIXED_LEN, mixed, 3);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 64 * K + 77, 1, NULL);
  ncx_check_read (t, r, exp + 64 * K + 77, NULL);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 400 * K + 3, 1, NULL);
  ncx_check_read (t, r, exp + 400 * K + 3, NULL);
}

/* After WRITE_ZEROES the range reads as zero in chunks. */
static void
test_read_after_zero (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *w;
  struct ncx_reply *r;

  if (!(c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES))
    nc_unsupported (t, "the server did not advertise SEND_WRITE_ZEROES");
  ncx_need_writable (t, c, 256 * K);
  ncx_need_payload (t, c, 256 * K);
  w = ncx_write_pattern (t, c, 0, 256 * K, 7);
  ncx_setup (t, c, NBD_CMD_WRITE_ZEROES, 0, 64 * K, 128 * K);
  memset (w + 64 * K, 0, 128 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 256 * K, NULL);
  if (ncx_check_read (t, r, w, NULL))
    info_chunks (t, r);
}

/* After TRIM: content unspecified, but the reply still covers it all. */
static void
test_read_after_trim (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char *w;
  struct ncx_reply *r;

  if (!(c->s.eflags & NBD_FLAG_SEND_TRIM))
    nc_unsupported (t, "the server did not advertise SEND_TRIM");
  ncx_need_writable (t, c, 256 * K);
  ncx_need_payload (t, c, 256 * K);
  w = ncx_write_pattern (t, c, 0, 256 * K, 8);
  ncx_setup (t, c, NBD_CMD_TRIM, 0, 64 * K, 128 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 256 * K, NULL);
  if (!ncx_check_read (t, r, NULL, NULL))
    return;
  nc_expect (t, memcmp (r->data, w, 64 * K) == 0 &&
             memcmp (r->data + 192 * K, w + 192 * K, 64 * K) == 0,
             "READ 0+262144 after TRIM 65536+131072: bytes outside the "
             "trimmed range differ from what was written");
  info_chunks (t, r);
}

static const struct nc_test tests[] = {
  { "read-chunks", "CMD-READ-10 OPT-SR-3 CMD-READ-1 SR-MSG-2 SR-MSG-8 "
    "FLAG-REPLY-1", NBDP_MUST, test_read_chunks,
    "READ after STRUCTURED_REPLY: chunks, DONE on the last, data intact" },
  { "read-data", "CMD-READ-19 CMD-READ-14 SR-DATA-1 SR-DATA-2 SR-DATA-3 "
    "CMD-READ-12", NBDP_MUST, test_read_data,
    "unaligned data reassembles by offset to what was written" },
  { "read-hole", "CMD-READ-19 SR-HOLE-1 SR-HOLE-2 SR-HOLE-5 CMD-READ-11",
    NBDP_MUST, test_read_hole,
    "never-written range reads as zero (holes or data)" },
  { "read-mixed", "CMD-READ-14 SR-DATA-3 SR-HOLE-3 CMD-READ-11 CMD-READ-15 "
    "SR-MSG-6 SR-MSG-7 FLAG-REPLY-1 SR-DATA-4 SR-HOLE-4 CMD-READ-20", NBDP_MUST, test_read_mixed,
    "data and holes in one read: no overlap, full coverage, right bytes" },
  { "read-unaligned", "CMD-READ-19 SR-DATA-2 SR-HOLE-2 CMD-READ-12",
    NBDP_MUST, test_read_unaligned,
    "unaligned read across data/hole edges" },
  { "read-chunk-alignment", "CMD-READ-13", NBDP_SHOULD, test_read_alignment,
    "interior content chunk boundaries are multiples of 512" },
  { "read-few-chunks", "SR-MSG-9", NBDP_SHOULD, test_read_few_chunks,
    "contiguous data is sent in few chunks" },
  { "read-zero-length", "CMD-READ-3 SR-MSG-3", NBDP_SHOULD,
    test_read_zero_length,
    "zero-length READ: no disconnect, no simple reply" },
  { "read-past-end", "SR-MSG-3 SR-MSG-5 SR-ERR-1 SR-ERR-5", NBDP_MUST,
    test_read_past_end, "early READ error still uses a structured reply" },
  { "read-bad-flags", "SR-MSG-3", NBDP_MUST, test_read_bad_flags,
    "READ with flags invalid for it: no simple reply" },
  { "read-cookies", "EH-SR-1 TX-GEN-4 SR-MSG-7 CMD-READ-19", NBDP_MUST,
    test_read_cookies,
    "reads in flight: each chunk carries its request's cookie" },
  { "read-max-payload", "CMD-READ-19 SR-TYPE-2", NBDP_MUST,
    test_read_max_payload,
    "READ of the maximum payload: chunks within the maximum" },
  { "read-over-max-payload", "CMD-READ-17 SR-TYPE-2", NBDP_MUST,
    test_read_over_max,
    "READ over the maximum payload: split (chunks within it) or refused" },
  { "read-at-end", "CMD-READ-19 CMD-READ-14", NBDP_MUST, test_read_at_end,
    "READ up to the end of the export" },
  { "read-one-byte", "SR-DATA-1 SR-HOLE-5 CMD-READ-12 CMD-READ-19",
    NBDP_MUST, test_read_one_byte, "one-byte reads in data and in a hole" },
  { "read-after-write-zeroes", "CMD-READ-19 SR-HOLE-1 SR-HOLE-2",
    NBDP_MUST, test_read_after_zero,
    "zeroed range reads as zero in chunks" },
  { "read-after-trim", "CMD-READ-19 SR-HOLE-1", NBDP_MUST,
    test_read_after_trim, "trimmed range: reply still covers the request" },
};
NC_SUITE ("structured", tests);
