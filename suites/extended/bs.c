/* Extended headers suite: block status with extended headers (only
 * NBD_REPLY_TYPE_BLOCK_STATUS_EXT, 64-bit fields, effect lengths past
 * the export) and the payload form of NBD_CMD_BLOCK_STATUS with
 * NBD_FLAG_BLOCK_STAT_PAYLOAD.  The flag's advertisement rules are
 * checked with and without extended headers.
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
open_ehbs (struct nc_ctx *t, bool block_size, uint32_t *cid)
{
  struct nc_open_opts o = {
    .extended = true, .meta = alloc_q, .n_meta = 1, .block_size = true,
  };
  struct nc_conn *c = nc_open (t, &o);
  int64_t id = ncx_context_id (c, "base:allocation");

  if (id < 0)
    nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT did not select "
                    "base:allocation");
  if (block_size && !c->s.have_block_size)
    nc_unsupported (t, "the server sent no NBD_INFO_BLOCK_SIZE");
  if (cid)
    *cid = (uint32_t) id;
  return c;
}

static void
fragment (struct nc_ctx *t, struct nc_conn *c, uint64_t base, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    free (ncx_write_pattern (t, c, base + i * 8 * K, 4 * K, i));
}

/* Every message of r is an extended chunk echoing the offset. */
static bool
echoes (struct nc_ctx *t, const struct ncx_reply *r)
{
  char d[512];

  for (size_t i = 0; i < r->n_c; i++)
    if (r->c[i].kind != NBDP_REPLY_EXTENDED ||
        r->c[i].hdr_offset != r->offset) {
      nc_fail (t, r->c[i].kind == NBDP_REPLY_SIMPLE ? "EH-SIMPLE-1"
               : r->c[i].kind == NBDP_REPLY_STRUCTURED ? "EH-REP-1"
               : "EH-REP-6", "BLOCK_STATUS offset %" PRIu64 " with extended "
               "headers: got [%s]; expected extended chunks carrying offset %"
               PRIu64, r->offset, ncx_describe (r, d, sizeof d), r->offset);
      return false;
    }
  return true;
}

static void
test_bs_ext (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_ehbs (t, false, &cid);
  struct ncx_reply *r;

  ncx_need_writable (t, c, 2048 * K + 4096);  /* the second request */
  fragment (t, c, 4096, 32);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 4096, 512 * K, NULL);
  if (echoes (t, r) && ncx_check_bs (t, r, NULL))
    ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4");
  /* A small hint still gets the extended type. */
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 2048 * K, 4096, NULL);
  if (echoes (t, r))
    ncx_check_bs (t, r, NULL);
}

static void
test_bs_ext_req_one (struct nc_ctx *t)
{
  struct nc_conn *c = open_ehbs (t, false, NULL);
  struct ncx_reply *r;

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 8);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 512 * K,
               NULL);
  if (echoes (t, r))
    ncx_check_bs (t, r, NULL);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 700 * K,
               4096, NULL);
  if (echoes (t, r))
    ncx_check_bs (t, r, NULL);
}

/* MUST with extended headers: multiples of the minimum block size. */
static void
test_bs_ext_min_block (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_ehbs (t, true, &cid);
  const struct nbdp_bs_extent *e;
  struct ncx_reply *r;
  uint32_t min = c->s.min_block;
  size_t n;

  if (!c->s.have_block_size || min <= 1)
    nc_unsupported (t, "the server advertised no minimum block size above 1");
  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 16);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 512 * K, NULL);
  if (!ncx_check_bs (t, r, "CMD-BS-4"))
    return;
  n = ncx_extents_of (r, cid, &e);
  for (size_t i = 0; i < n; i++)
    if (e[i].length % min && e[i].offset + e[i].length != c->s.export_size)
      nc_expect (t, false, "BLOCK_STATUS_EXT descriptor %" PRIu64 "+%" PRIu64
                 " is not a multiple of the minimum block size %" PRIu32,
                 e[i].offset, e[i].length, min);
}

/* SHOULD: an effect length beyond the export size (here past 2^32)
 * fails with NBD_EINVAL.
 */
static void
test_bs_over_size (struct nc_ctx *t)
{
  struct nc_conn *c = open_ehbs (t, false, NULL);
  uint64_t len = c->s.export_size + (UINT64_C (1) << 32);
  struct ncx_reply *r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, len,
                                 NULL);
  char d[512];

  if (r->io_error) {
    nc_expect (t, false, "BLOCK_STATUS 0+%" PRIu64 ": the server dropped "
               "the connection (%s), expected NBD_EINVAL", len, r->io_error);
    return;
  }
  echoes (t, r);
  nc_expect (t, r->error == NBD_EINVAL, "BLOCK_STATUS offset 0 effect "
             "length %" PRIu64 " (export size %" PRIu64 "): got %s [%s], "
             "expected NBD_EINVAL", len, c->s.export_size, ncx_errstr (r),
             ncx_describe (r, d, sizeof d));
}

/* 64-bit effect lengths on a large export. */
static void
test_bs_64bit (struct nc_ctx *t)
{
  struct nc_conn *c = open_ehbs (t, false, NULL);
  uint64_t len = (UINT64_C (1) << 32) + 4096;
  struct ncx_reply *r;

  if (c->s.export_size < len)
    nc_skip (t, "the export (%" PRIu64 " bytes) is smaller than 4 GiB, so "
             "no valid request has a 64-bit effect length",
             c->s.export_size);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, len, NULL);
  if (echoes (t, r))
    ncx_check_bs (t, r, NULL);
  if (c->s.eflags & NBD_FLAG_SEND_CACHE) {
    r = ncx_cmd (t, c, NBD_CMD_CACHE, 0, 0, len, NULL);
    nc_expect (t, ncx_ok (r), "CACHE 0+%" PRIu64 " (64-bit effect length): "
               "got %s, expected success", len, ncx_errstr (r));
  }
}

/* NBD_FLAG_BLOCK_STAT_PAYLOAD: never without extended headers. */
static void
test_payload_flag_compact (struct nc_ctx *t)
{
  static const struct nc_open_opts o = {
    .structured = true, .meta = alloc_q, .n_meta = 1, .block_size = true,
  };
  struct nc_conn *c = nc_open (t, &o);

  nc_expect (t, !(c->s.eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD), "transmission "
             "flags 0x%04x with structured replies (no extended headers) "
             "include NBD_FLAG_BLOCK_STAT_PAYLOAD", c->s.eflags);
}

/* SHOULD NOT: advertised on GO without meta contexts. */
static void
test_payload_flag_no_meta (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true,
                                         .block_size = true };
  struct nc_conn *c = nc_open (t, &o);

  nc_expect (t, !(c->s.eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD), "transmission "
             "flags 0x%04x with extended headers but no meta context "
             "include NBD_FLAG_BLOCK_STAT_PAYLOAD", c->s.eflags);
}

static struct ncx_reply *
bs_payload (struct nc_ctx *t, struct nc_conn *c, uint64_t off,
            uint64_t effect, const uint32_t *ids, size_t n)
{
  unsigned char p[8 + 4 * 8];
  struct ncx_req q = {
    .type = NBD_CMD_BLOCK_STATUS, .flags = NBD_CMD_FLAG_PAYLOAD_LEN,
    .offset = off, .count = 8 + 4 * n, .payload = p,
    .payload_len = 8 + 4 * n, .effect = effect,
  };
  struct ncx_reply *r;

  nbdp_put64 (p, effect);
  for (size_t i = 0; i < n && i < 8; i++)
    nbdp_put32 (p + 8 + 4 * i, ids[i]);
  r = ncx_send (t, c, &q);
  ncx_wait (t, r);
  return r;
}

static struct nc_conn *
open_payload (struct nc_ctx *t, uint32_t *cid)
{
  struct nc_conn *c = open_ehbs (t, false, cid);

  if (!(c->s.eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD))
    nc_unsupported (t, "the server did not advertise "
                    "NBD_FLAG_BLOCK_STAT_PAYLOAD");
  return c;
}

/* The payload form: the effect length and context list in the payload. */
static void
test_payload (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_payload (t, &cid);
  struct ncx_reply *r;
  char d[512];

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 16);
  r = bs_payload (t, c, 4096, 256 * K, &cid, 1);
  if (!echoes (t, r) || !ncx_check_bs (t, r, NULL))
    return;
  nc_expect (t, ncx_count_type (r, NBD_REPLY_TYPE_BLOCK_STATUS_EXT) == 1 &&
             r->c[0].context_id == cid, "BLOCK_STATUS payload form for "
             "context %" PRIu32 ": got [%s], expected one chunk for it", cid,
             ncx_describe (r, d, sizeof d));
  ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4");
}

static void
payload_bad (struct nc_ctx *t, const uint32_t *ids, size_t n,
             const char *what)
{
  uint32_t cid;
  struct nc_conn *c = open_payload (t, &cid);
  uint32_t v[4];
  struct ncx_reply *r;
  char d[512];

  for (size_t i = 0; i < n; i++)
    v[i] = ids[i] == UINT32_MAX ? cid : ids[i] == UINT32_MAX - 1 ? cid + 1000
      : ids[i];
  r = bs_payload (t, c, 0, 64 * K, v, n);
  if (r->io_error) {
    nc_expect (t, false, "BLOCK_STATUS payload form with %s: the server "
               "dropped the connection (%s), expected NBD_EINVAL", what,
               r->io_error);
    return;
  }
  echoes (t, r);
  nc_expect (t, r->error == NBD_EINVAL, "BLOCK_STATUS payload form with %s: "
             "got %s [%s], expected NBD_EINVAL", what, ncx_errstr (r),
             ncx_describe (r, d, sizeof d));
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 64 * K, NULL);
  if (echoes (t, r))
    ncx_check_bs (t, r, NULL);
}

static void
test_payload_unknown_id (struct nc_ctx *t)
{
  static const uint32_t ids[] = { UINT32_MAX - 1 };

  payload_bad (t, ids, 1, "a context ID that was never selected");
}

static void
test_payload_dup_id (struct nc_ctx *t)
{
  static const uint32_t ids[] = { UINT32_MAX, UINT32_MAX };

  payload_bad (t, ids, 2, "the same context ID twice");
}

/* Without the flag the payload form is consumed and fails. */
static void
test_payload_unadvertised (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true,
                                         .block_size = true };
  struct nc_conn *c = nc_open (t, &o);
  uint32_t id = 1;
  struct ncx_reply *r;
  unsigned char *w;
  char d[512];

  if (c->s.eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD)
    nc_skip (t, "NBD_FLAG_BLOCK_STAT_PAYLOAD is advertised even without "
             "meta contexts");
  ncx_need_writable (t, c, 64 * K);
  w = ncx_write_pattern (t, c, 0, 4096, 40);
  r = bs_payload (t, c, 0, 4096, &id, 1);
  if (r->io_error) {
    nc_expect (t, false, "BLOCK_STATUS payload form (not advertised): the "
               "server dropped the connection (%s), expected NBD_EINVAL",
               r->io_error);
    return;
  }
  echoes (t, r);
  nc_expect (t, r->error == NBD_EINVAL, "BLOCK_STATUS payload form (not "
             "advertised): got %s [%s], expected NBD_EINVAL", ncx_errstr (r),
             ncx_describe (r, d, sizeof d));
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  nc_expect (t, ncx_ok (r), "READ 0+4096 after the payload-form request: "
             "got %s, expected success (the payload consumed)",
             ncx_errstr (r));
  if (ncx_ok (r))
    ncx_check_read (t, r, w, NULL);
}

static const struct nc_test tests[] = {
  { "eh-bs-ext", "EH-BS-6 EH-BS-1 EH-BS-3 EH-BS-4 EH-BS-5 EH-BS-7 "
    "EH-REP-6 CMD-BS-4", NBDP_MUST, test_bs_ext,
    "block status with extended headers uses BLOCK_STATUS_EXT only" },
  { "eh-bs-req-one", "BS-CHUNK-4 BS-CHUNK-5 EH-BS-6", NBDP_MUST,
    test_bs_ext_req_one, "REQ_ONE with extended headers" },
  { "eh-bs-min-block", "EH-BS-11", NBDP_MUST, test_bs_ext_min_block,
    "BLOCK_STATUS_EXT descriptors are multiples of the minimum block" },
  { "eh-bs-over-size", "EH-BS-12", NBDP_SHOULD, test_bs_over_size,
    "effect length past the export (beyond 2^32) fails with NBD_EINVAL" },
  { "eh-bs-64bit", "EH-BS-6 EH-REP-3", NBDP_MUST, test_bs_64bit,
    "64-bit effect lengths on an export over 4 GiB" },
  { "eh-payload-flag-compact", "EH-FLAG-1 EH-OPT-15", NBDP_MUST,
    test_payload_flag_compact,
    "BLOCK_STAT_PAYLOAD never advertised without extended headers" },
  { "eh-payload-flag-no-meta", "EH-FLAG-2", NBDP_SHOULD,
    test_payload_flag_no_meta,
    "BLOCK_STAT_PAYLOAD not advertised without meta contexts" },
  { "eh-bs-payload", "EH-BS-8 EH-BS-10 BS-CHUNK-2", NBDP_MUST, test_payload,
    "payload form of BLOCK_STATUS: one chunk for the listed context" },
  { "eh-bs-payload-unknown-id", "EH-BS-9", NBDP_MUST,
    test_payload_unknown_id, "payload form with an unknown ID: EINVAL" },
  { "eh-bs-payload-dup-id", "EH-BS-9", NBDP_MUST, test_payload_dup_id,
    "payload form with a repeated ID: EINVAL" },
  { "eh-bs-payload-unadvertised", "EH-BS-9 EH-REQ-4", NBDP_MUST,
    test_payload_unadvertised,
    "payload form without the flag: consumed, then EINVAL" },
};
NC_SUITE ("extended", tests);
