/* Block status suite: NBD_CMD_BLOCK_STATUS replies with base:allocation
 * selected: one status chunk per context, descriptor rules (nonzero,
 * consecutive, REQ_ONE, only the last past the request), alignment,
 * errors, and a client walking the whole export.  UNSUPPORTED without
 * structured replies or base:allocation.
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
open_bs (struct nc_ctx *t, bool block_size, uint32_t *cid)
{
  /* NBD_INFO_BLOCK_SIZE is always requested (tests honour what comes
   * back); block_size says the test needs the answer.
   */
  struct nc_open_opts o = {
    .structured = true, .meta = alloc_q, .n_meta = 1,
    .block_size = true,
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

/* 64 alternating 4 KiB data and hole blocks from base (512 KiB). */
static void
fragment (struct nc_ctx *t, struct nc_conn *c, uint64_t base, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    free (ncx_write_pattern (t, c, base + i * 8 * K, 4 * K, i));
}

static void
info_extents (struct nc_ctx *t, const struct ncx_reply *r, uint32_t cid)
{
  const struct nbdp_bs_extent *e;
  size_t n = ncx_extents_of (r, cid, &e);
  char b[600];
  size_t used = 0;

  b[0] = '\0';
  for (size_t i = 0; i < n && used < sizeof b - 40; i++) {
    if (i == 8 && n > 10) {
      used += snprintf (b + used, sizeof b - used, ", ...");
      break;
    }
    used += snprintf (b + used, sizeof b - used, "%s%" PRIu64 "+%" PRIu64
                      ":%s%s%s", i ? ", " : "", e[i].offset, e[i].length,
                      e[i].flags & NBD_STATE_HOLE ? "H" : "",
                      e[i].flags & NBD_STATE_ZERO ? "Z" : "",
                      e[i].flags & 3 ? "" : "0");
  }
  nc_info (t, "BLOCK_STATUS %" PRIu64 "+%" PRIu64 "%s: %zu extents "
           "covering %" PRIu64 " bytes: %s", r->offset, r->count,
           r->flags & NBD_CMD_FLAG_REQ_ONE ? " REQ_ONE" : "", n,
           n ? e[n - 1].offset + e[n - 1].length - r->offset : 0, b);
}

static void
test_bs_basic (struct nc_ctx *t)
{
  struct nc_conn *c = open_bs (t, false, NULL);
  struct ncx_reply *r;

  ncx_need_size (t, c, 1024 * K);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 1024 * K, NULL);
  ncx_check_bs (t, r, NULL);
}

static void
test_bs_whole (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  uint64_t size = c->s.export_size;
  uint64_t len = size > UINT32_MAX ? UINT32_MAX & ~UINT64_C (4095) : size;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 1024 * K + 64 * K);
  free (ncx_write_pattern (t, c, 1024 * K, 64 * K, 1));
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, len, NULL);
  if (ncx_check_bs (t, r, NULL))
    info_extents (t, r, cid);
}

/* A client walking the export: every reply makes progress, starts where
 * asked, and never calls written data zero.
 */
static void
test_bs_walk (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  uint64_t size = c->s.export_size, pos = 0;
  unsigned n = 0;

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 256 * K, 16);
  while (pos < size) {
    uint64_t len = size - pos > 0x80000000u ? 0x80000000u : size - pos;
    struct ncx_reply *r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, pos, len,
                                   NULL);
    const struct nbdp_bs_extent *e;
    size_t ne;
    uint64_t got = 0;
    if (!ncx_check_bs (t, r, NULL))
      return;
    ne = ncx_extents_of (r, cid, &e);
    for (size_t i = 0; i < ne; i++)
      got += e[i].length;
    for (size_t i = 0; i < ne; i++)
      for (unsigned k = 0; k < 16; k++) {
        uint64_t d = 256 * K + k * 8 * K;
        if ((e[i].flags & NBD_STATE_ZERO) && e[i].offset < d + 4 * K &&
            e[i].offset + e[i].length > d) {
          nc_fail (t, "BS-ALLOC-4", "BLOCK_STATUS from %" PRIu64 ": extent %"
                   PRIu64 "+%" PRIu64 " reported NBD_STATE_ZERO, but %"
                   PRIu64 "+4096 holds data written before", pos,
                   e[i].offset, e[i].length, d);
          return;
        }
      }
    pos += got;
    ncx_free (r);
    if (++n > 100000) {
      nc_fail (t, NULL, "more than 100000 BLOCK_STATUS requests to walk "
               "the export");
      return;
    }
  }
  nc_info (t, "%u BLOCK_STATUS requests to walk %" PRIu64 " bytes", n,
           size);
}

static void
test_bs_req_one (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;

  ncx_need_writable (t, c, 1024 * K);
  free (ncx_write_pattern (t, c, 256 * K, 64 * K, 2));
  /* Data then hole: one descriptor only. */
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 256 * K,
               256 * K, NULL);
  if (!ncx_check_bs (t, r, NULL))
    return;
  info_extents (t, r, cid);
  /* Inside a larger extent: no longer than the request. */
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 512 * K,
               4096, NULL);
  if (ncx_check_bs (t, r, NULL))
    info_extents (t, r, cid);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 260 * K,
               4096, NULL);
  ncx_check_bs (t, r, NULL);
}

static void
test_bs_fragmented (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 64);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 512 * K, NULL);
  if (ncx_check_bs (t, r, NULL)) {
    ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4");
    info_extents (t, r, cid);
  }
}

static void
test_bs_unaligned (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;

  ncx_need_writable (t, c, 1024 * K);
  ncx_need_align (t, c, 1);
  fragment (t, c, 0, 16);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 1000, 100000, NULL);
  if (ncx_check_bs (t, r, NULL)) {
    ncx_check_zero_extents (t, r, cid, "BS-ALLOC-4");
    info_extents (t, r, cid);
  }
}

/* SHOULD: descriptors are multiples of 512 for an aligned query. */
static void
test_bs_512 (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;
  const struct nbdp_bs_extent *e;
  size_t n;

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 16);
  if (!(c->s.have_block_size && c->s.min_block > 1))
    free (ncx_write_pattern (t, c, 200 * K + 100, 1000, 3));
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 512 * K, NULL);
  if (!ncx_check_bs (t, r, "CMD-BS-4"))
    return;
  n = ncx_extents_of (r, cid, &e);
  for (size_t i = 0; i < n; i++)
    if (e[i].length % 512 && e[i].offset + e[i].length !=
        c->s.export_size) {
      nc_expect (t, false, "BLOCK_STATUS 0+524288: descriptor %zu (%" PRIu64
                 "+%" PRIu64 ") is not a multiple of 512", i, e[i].offset,
                 e[i].length);
      break;
    }
}

/* SHOULD: multiples of the advertised minimum block size. */
static void
test_bs_min_block (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, true, &cid);
  struct ncx_reply *r;
  const struct nbdp_bs_extent *e;
  size_t n;
  uint32_t min = c->s.min_block;

  if (!c->s.have_block_size || min <= 1)
    nc_unsupported (t, "the server advertised no minimum block size above 1");
  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 16);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 512 * K, NULL);
  if (!ncx_check_bs (t, r, "CMD-BS-4"))
    return;
  n = ncx_extents_of (r, cid, &e);
  for (size_t i = 0; i < n; i++)
    if (e[i].length % min && e[i].offset + e[i].length != c->s.export_size) {
      nc_expect (t, false, "BLOCK_STATUS 0+524288: descriptor %zu (%" PRIu64
                 "+%" PRIu64 ") is not a multiple of the minimum block size "
                 "%" PRIu32, i, e[i].offset, e[i].length, min);
      break;
    }
}

/* SHOULD: neighbouring descriptors differ in status. */
static void
test_bs_adjacent (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;
  const struct nbdp_bs_extent *e;
  size_t n;

  ncx_need_writable (t, c, 1024 * K);
  free (ncx_write_pattern (t, c, 0, 64 * K, 4));
  free (ncx_write_pattern (t, c, 64 * K, 64 * K, 5));
  fragment (t, c, 256 * K, 8);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 512 * K, NULL);
  if (!ncx_check_bs (t, r, "CMD-BS-4"))
    return;
  n = ncx_extents_of (r, cid, &e);
  for (size_t i = 1; i < n; i++)
    if (e[i].flags == e[i - 1].flags) {
      nc_expect (t, false, "BLOCK_STATUS 0+524288: descriptors %zu (%" PRIu64
                 "+%" PRIu64 ") and %zu (%" PRIu64 "+%" PRIu64 ") have the "
                 "same status 0x%" PRIx64, i - 1, e[i - 1].offset,
                 e[i - 1].length, i, e[i].offset, e[i].length, e[i].flags);
      break;
    }
}

/* SHOULD: undefined base:allocation bits are zero. */
static void
test_bs_status_bits (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;
  const struct nbdp_bs_extent *e;
  size_t n;

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 16);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 1024 * K, NULL);
  if (!ncx_check_bs (t, r, "CMD-BS-4"))
    return;
  n = ncx_extents_of (r, cid, &e);
  for (size_t i = 0; i < n; i++)
    if (e[i].flags & ~(uint64_t) (NBD_STATE_HOLE | NBD_STATE_ZERO)) {
      nc_expect (t, false, "base:allocation descriptor %" PRIu64 "+%" PRIu64
                 " has status 0x%" PRIx64 ", expected undefined bits zero",
                 e[i].offset, e[i].length, e[i].flags);
      break;
    }
}

/* SHOULD NOT disconnect on a zero-length BLOCK_STATUS. */
static void
test_bs_zero_length (struct nc_ctx *t)
{
  struct nc_conn *c = open_bs (t, false, NULL);
  struct ncx_reply *r;
  char d[512];

  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 0, NULL);
  if (r->io_error) {
    nc_expect (t, false, "BLOCK_STATUS length 0: the server %s, expected a "
               "reply and the connection kept", r->disconnected
               ? "closed the connection" : "did not answer");
    return;
  }
  nc_info (t, "BLOCK_STATUS length 0 answered with %s: %s", ncx_errstr (r),
           ncx_describe (r, d, sizeof d));
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 4096, NULL);
  ncx_check_bs (t, r, "CMD-BS-4");
}

/* SHOULD: beyond the end of the export, NBD_EINVAL in an error chunk. */
static void
bs_bad_range (struct nc_ctx *t, bool beyond)
{
  struct nc_conn *c = open_bs (t, false, NULL);
  struct ncx_reply *r;
  uint64_t off = beyond ? c->s.export_size + 4096
    : c->s.export_size - 4096;
  uint64_t len = beyond ? 4096 : 8192;
  char d[512];

  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, off, len, NULL);
  if (r->io_error) {
    nc_expect (t, false, "BLOCK_STATUS past the end: the server dropped the "
               "connection (%s), expected NBD_EINVAL", r->io_error);
    return;
  }
  nc_expect (t, r->error == NBD_EINVAL, "BLOCK_STATUS offset %" PRIu64
             " length %" PRIu64 " (export size %" PRIu64 "): got %s [%s], "
             "expected NBD_EINVAL", off, len,
             c->s.export_size, ncx_errstr (r), ncx_describe (r, d, sizeof d));
  if (r->error && r->simple)
    nc_should (t, "CMD-BS-17", "BLOCK_STATUS past the end: the error came "
               "as a simple reply, expected an error chunk");
}

static void
test_bs_past_end (struct nc_ctx *t)
{
  bs_bad_range (t, false);
}

static void
test_bs_offset_beyond (struct nc_ctx *t)
{
  bs_bad_range (t, true);
}

/* A small query in a large uniform region: the last extent may run on. */
static void
test_bs_small_hint (struct nc_ctx *t)
{
  uint32_t cid;
  struct nc_conn *c = open_bs (t, false, &cid);
  struct ncx_reply *r;

  ncx_need_size (t, c, 8192 * K);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 4096 * K, 4096, NULL);
  if (ncx_check_bs (t, r, NULL))
    info_extents (t, r, cid);
}

/* Every context the server lists, selected at once. */
static void
test_bs_all_contexts (struct nc_ctx *t)
{
  static char nm[16][NBD_MAX_STRING + 1];
  struct nc_conn *c = ncx_negotiate (t);
  const char *q[16];
  size_t n, nq = 0;
  uint32_t rep;
  struct ncx_reply *r;
  char order[256] = "";
  size_t used = 0;

  if (ncx_simple_option (t, c, NBD_OPT_STRUCTURED_REPLY) != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY was refused");
  rep = ncx_meta_option (t, c, NBD_OPT_LIST_META_CONTEXT, c->export_name,
                         NULL, 0, nm, NULL, 16, &n);
  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_LIST_META_CONTEXT was refused");
  for (size_t i = 0; i < n && i < 16; i++)
    q[nq++] = nm[i];
  if (nq == 0)
    nc_unsupported (t, "the server lists no meta contexts");
  rep = ncx_meta_option (t, c, NBD_OPT_SET_META_CONTEXT, c->export_name, q,
                         nq, NULL, NULL, 0, &n);
  if (rep != NBD_REP_ACK || n == 0)
    nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT of the %zu listed contexts "
                    "selected none", nq);
  if (ncx_go (t, c, false) != NBD_REP_ACK)
    nc_error (t, "NBD_OPT_GO failed");
  ncx_need_size (t, c, 1024 * K);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 1024 * K, NULL);
  if (!ncx_check_bs (t, r, NULL))
    return;
  for (size_t i = 0; i < r->n_c && used < sizeof order; i++)
    if (r->c[i].type == NBD_REPLY_TYPE_BLOCK_STATUS)
      for (size_t k = 0; k < c->s.nr_contexts; k++)
        if (c->s.context_ids[k] == r->c[i].context_id)
          used += snprintf (order + used, sizeof order - used, "%s%s",
                            used ? ", " : "", c->s.context_names[k]);
  nc_info (t, "%zu contexts selected; status chunks in the order: %s",
           c->s.nr_contexts, order);
}

/* Block status requests in flight with reads. */
static void
test_bs_inflight (struct nc_ctx *t)
{
  struct nc_conn *c = open_bs (t, false, NULL);
  struct ncx_reply *r[8];

  ncx_need_writable (t, c, 1024 * K);
  fragment (t, c, 0, 16);
  for (int i = 0; i < 8; i++) {
    struct ncx_req q = {
      .type = i % 2 ? NBD_CMD_READ : NBD_CMD_BLOCK_STATUS,
      .offset = (uint64_t) i * 32 * K, .count = 64 * K,
      .cookie = UINT64_C (0x8000000000000000) | (uint64_t) i,
    };
    r[i] = ncx_send (t, c, &q);
  }
  for (int i = 7; i >= 0; i--) {
    ncx_wait (t, r[i]);
    if (i % 2)
      ncx_check_read (t, r[i], NULL, "TX-GEN-4");
    else
      ncx_check_bs (t, r[i], NULL);
  }
}

/* The read-only export answers BLOCK_STATUS too. */
static void
test_bs_read_only (struct nc_ctx *t)
{
  struct nc_open_opts o = {
    .structured = true, .meta = alloc_q, .n_meta = 1,
    .export_name = t->cfg->ro_export, .block_size = true,
  };
  struct nc_conn *c;
  struct ncx_reply *r;

  if (t->cfg->ro_export == NULL)
    nc_skip (t, "no read-only export given (--ro-export)");
  c = nc_open (t, &o);
  if (ncx_context_id (c, "base:allocation") < 0)
    nc_unsupported (t, "base:allocation not selected on the read-only "
                    "export");
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0,
               c->s.export_size < 65536 ? c->s.export_size : 65536, NULL);
  ncx_check_bs (t, r, NULL);
}

static const struct nc_test tests[] = {
  { "bs-basic", "CMD-BS-4 BS-META-2 BS-CHUNK-2 CMD-BS-10 BS-CHUNK-1 "
    "BS-CHUNK-3 BS-CHUNK-6 EH-BS-2", NBDP_MUST, test_bs_basic,
    "one status chunk for base:allocation, valid descriptors" },
  { "bs-whole-export", "CMD-BS-4 BS-CHUNK-6 BS-CHUNK-7 BS-CHUNK-9 "
    "CMD-BS-8", NBDP_MUST, test_bs_whole,
    "BLOCK_STATUS over the whole export" },
  { "bs-walk", "CMD-BS-10 CMD-BS-8 BS-CHUNK-9 BS-ALLOC-4", NBDP_MUST,
    test_bs_walk, "walking the export by BLOCK_STATUS always progresses" },
  { "bs-req-one", "BS-CHUNK-4 BS-CHUNK-5 CMD-BS-6 FLAG-CMD-13", NBDP_MUST,
    test_bs_req_one, "REQ_ONE: one descriptor, no longer than the request" },
  { "bs-fragmented", "BS-CHUNK-6 BS-CHUNK-3 CMD-BS-7 BS-CHUNK-8 CMD-BS-9 "
    "BS-ALLOC-4", NBDP_MUST, test_bs_fragmented,
    "many extents: consecutive, nonzero, ZERO extents read as zero" },
  { "bs-unaligned", "BS-CHUNK-6 CMD-BS-4 BS-ALLOC-4", NBDP_MUST,
    test_bs_unaligned, "unaligned query over data and holes" },
  { "bs-512-multiple", "CMD-BS-13", NBDP_SHOULD, test_bs_512,
    "descriptors are multiples of 512 for an aligned query" },
  { "bs-min-block", "CMD-BS-14", NBDP_SHOULD, test_bs_min_block,
    "descriptors are multiples of the minimum block size" },
  { "bs-adjacent-differ", "CMD-BS-11", NBDP_SHOULD, test_bs_adjacent,
    "neighbouring descriptors differ in status" },
  { "bs-status-bits", "BS-ALLOC-5 BS-META-10", NBDP_SHOULD,
    test_bs_status_bits, "undefined base:allocation bits are zero" },
  { "bs-zero-length", "CMD-BS-2", NBDP_SHOULD, test_bs_zero_length,
    "zero-length BLOCK_STATUS does not drop the connection" },
  { "bs-past-end", "CMD-BS-20 CMD-BS-17", NBDP_SHOULD, test_bs_past_end,
    "BLOCK_STATUS reaching past the end fails with NBD_EINVAL" },
  { "bs-offset-beyond", "CMD-BS-20", NBDP_SHOULD, test_bs_offset_beyond,
    "BLOCK_STATUS starting past the end fails with NBD_EINVAL" },
  { "bs-small-hint", "BS-CHUNK-7 CMD-BS-7 BS-CHUNK-6", NBDP_MUST,
    test_bs_small_hint, "a 4 KiB query in a large hole" },
  { "bs-all-contexts", "CMD-BS-4 CMD-BS-5 BS-CHUNK-2 BS-META-2", NBDP_MUST,
    test_bs_all_contexts, "every listed context selected: a chunk each" },
  { "bs-inflight", "TX-GEN-4 CMD-BS-4", NBDP_MUST, test_bs_inflight,
    "BLOCK_STATUS and READ in flight together" },
  { "bs-read-only", "CMD-BS-4 BS-META-2", NBDP_MUST, test_bs_read_only,
    "BLOCK_STATUS on a read-only export" },
};
NC_SUITE ("block-status", tests);
