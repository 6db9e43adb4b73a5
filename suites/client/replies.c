/* Client suite: how the client takes replies.  Structured reads split
 * into chunks in any order (the data the client writes to {dir}/out must
 * match), and deliberate server misbehaviour: unknown chunk types,
 * chunks for unknown cookies, data outside the request, NONE without
 * DONE, simple replies to READ after structured replies were negotiated
 * (the client must hard-disconnect and must not report success), error
 * chunks and error values (the client must report the failure), and
 * NBD_ESHUTDOWN (the client must soft-disconnect).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client-script.h"

static bool
sr (const struct ncs_conn *c)
{
  return c->sr || c->eh;
}

/* UNSUPPORTED unless some connection negotiated structured replies. */
static void
need_structured (struct ncs *s)
{
  for (size_t i = 0; i < s->n_conns; i++)
    if (sr (s->conns[i]))
      return;
  nc_unsupported (s->t, "the client did not negotiate structured replies");
}

/* ---- reassembly ----------------------------------------------------- */

static bool
reverse_chunks (struct ncs *s, struct ncs_conn *c,
                const struct nbdp_request *r, const uint8_t *payload)
{
  if (r->type != NBD_CMD_READ || !sr (c) || r->count < 2 ||
      r->offset > s->size || r->count > s->size - r->offset)
    return false;
  ncs_read_chunks (c, r, r->count >= 8192 ? 4096 : (r->count + 1) / 2,
                   false, 1);
  return true;
}

static void
test_reassembly_reverse (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ);

  s->on_request = reverse_chunks;
  ncs_run (s);
  ncs_need (s);
  need_structured (s);
  ncs_expect_success (s, NULL, NBDP_MUST);
  ncs_check_out (s, NULL);
}

static bool
shuffled_holes (struct ncs *s, struct ncs_conn *c,
                const struct nbdp_request *r, const uint8_t *payload)
{
  if (r->type != NBD_CMD_READ || !sr (c) || r->count < 2 ||
      r->offset > s->size || r->count > s->size - r->offset)
    return false;
  ncs_read_chunks (c, r, r->count >= 4096 ? 1024 : (r->count + 1) / 2,
                   true, 2);
  return true;
}

static void
test_reassembly_holes (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ);

  /* Zero ranges inside the first 64 KiB (what small readers read) and
   * further on; they go out as OFFSET_HOLE chunks.
   */
  ncs_zero (s, 4096, 4096);
  ncs_zero (s, 20480, 2048);
  ncs_zero (s, 40960, 8192);
  ncs_zero (s, 300 * 1024, 64 * 1024);
  s->on_request = shuffled_holes;
  ncs_run (s);
  ncs_need (s);
  need_structured (s);
  ncs_expect_success (s, NULL, NBDP_MUST);
  ncs_check_out (s, NULL);
}

/* ---- malformed replies: the client must hard-disconnect -------------- */

enum bad_kind {
  BAD_UNKNOWN_TYPE, BAD_UNKNOWN_COOKIE, BAD_DATA_OUTSIDE, BAD_NONE_NO_DONE,
  BAD_SIMPLE_TO_READ,
};

static enum bad_kind bad_kind;

static bool
misbehave (struct ncs *s, struct ncs_conn *c, const struct nbdp_request *r,
           const uint8_t *payload)
{
  bool bs_too = bad_kind != BAD_DATA_OUTSIDE && bad_kind != BAD_SIMPLE_TO_READ;
  uint8_t junk[8] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4 };

  if (!sr (c) || !ncs_first_target (c, r, bs_too))
    return false;
  switch (bad_kind) {
  case BAD_UNKNOWN_TYPE:
    ncs_chunk (c, r->cookie, 0, 0x0063, r->offset, junk, sizeof junk);
    ncs_bad (c, "chunk of unknown non-error type 0x0063 (8 bytes, no DONE) "
             "for the first %s", nbdp_name_of_cmd (r->type));
    break;
  case BAD_UNKNOWN_COOKIE:
    ncs_chunk (c, r->cookie ^ UINT64_C (0x5a5a000000000001),
               NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->offset, NULL, 0);
    ncs_bad (c, "NONE chunk with DONE for cookie 0x%" PRIx64 ", which is "
             "not in flight (the first %s has cookie 0x%" PRIx64 ")",
             r->cookie ^ UINT64_C (0x5a5a000000000001),
             nbdp_name_of_cmd (r->type), r->cookie);
    break;
  case BAD_DATA_OUTSIDE:
    ncs_chunk_data (c, r, NBD_REPLY_FLAG_DONE, r->offset + r->count,
                    r->count < 512 ? r->count : 512);
    ncs_bad (c, "OFFSET_DATA at offset %" PRIu64 " for READ offset %" PRIu64
             " length %" PRIu64 " (just past the request)",
             r->offset + r->count, r->offset, r->count);
    break;
  case BAD_NONE_NO_DONE:
    ncs_chunk (c, r->cookie, 0, NBD_REPLY_TYPE_NONE, r->offset, NULL, 0);
    ncs_bad (c, "NBD_REPLY_TYPE_NONE without NBD_REPLY_FLAG_DONE for the "
             "first %s", nbdp_name_of_cmd (r->type));
    break;
  case BAD_SIMPLE_TO_READ:
    if (r->offset > s->size || r->count > s->size - r->offset)
      return false;
    ncs_simple (c, r->cookie, 0, s->data + r->offset, r->count);
    ncs_bad (c, "simple reply (error 0, %" PRIu64 " bytes of data) to READ "
             "although structured replies were negotiated", r->count);
    break;
  }
  return true;
}

static void
run_bad (struct nc_ctx *t, enum bad_kind kind, bool bs_too)
{
  struct ncs *s = ncs_new (t, bs_too ? NCS_READ_OR_BS : NCS_READ);

  bad_kind = kind;
  s->on_request = misbehave;
  ncs_run (s);
  ncs_need (s);
  need_structured (s);
  {
    bool any = false;
    for (size_t i = 0; i < s->n_conns; i++)
      any |= s->conns[i]->bad;
    if (!any)
      nc_unsupported (t, "no request the violation could be staged on");
  }
  ncs_expect_hard_disconnect (s, NULL);
  ncs_expect_failure (s, NULL, "the server's reply to its request was "
                      "malformed");
}

static void
test_unknown_chunk_type (struct nc_ctx *t)
{
  run_bad (t, BAD_UNKNOWN_TYPE, true);
}

static void
test_unknown_cookie (struct nc_ctx *t)
{
  run_bad (t, BAD_UNKNOWN_COOKIE, true);
}

static void
test_data_outside (struct nc_ctx *t)
{
  run_bad (t, BAD_DATA_OUTSIDE, false);
}

static void
test_none_without_done (struct nc_ctx *t)
{
  run_bad (t, BAD_NONE_NO_DONE, true);
}

static void
test_simple_to_read (struct nc_ctx *t)
{
  run_bad (t, BAD_SIMPLE_TO_READ, false);
}

/* ---- errors: the client must report them ----------------------------- */

enum err_kind {
  ERR_CHUNK, ERR_OFFSET_CHUNK, ERR_UNKNOWN_TYPE, ERR_SIMPLE_UNKNOWN_VALUE,
  ERR_SHUTDOWN,
};
static enum err_kind err_kind;
static bool shutting_down;

static bool
error_reply (struct ncs *s, struct ncs_conn *c, const struct nbdp_request *r,
             const uint8_t *payload)
{
  uint64_t half = r->count / 2;

  if (shutting_down) {
    ncs_error (c, r, NBD_ESHUTDOWN);
    return true;
  }
  if (!ncs_first_target (c, r, false) || r->count < 2 ||
      r->offset > s->size || r->count > s->size - r->offset)
    return false;
  switch (err_kind) {
  case ERR_CHUNK:
    if (!sr (c))
      return false;
    ncs_chunk_data (c, r, 0, r->offset, half);
    ncs_chunk_error (c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                     NBD_EIO, "nbd-conform: scripted read error", 0);
    nc_log (s->t, "conn %u: READ offset %" PRIu64 " length %" PRIu64 ": "
            "data for the first half, then NBD_REPLY_TYPE_ERROR (EIO)",
            c->id, r->offset, r->count);
    break;
  case ERR_OFFSET_CHUNK:
    if (!sr (c))
      return false;
    ncs_chunk_data (c, r, 0, r->offset, half);
    ncs_chunk_error (c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR_OFFSET,
                     NBD_EIO, "nbd-conform: scripted read error",
                     r->offset + half);
    nc_log (s->t, "conn %u: READ offset %" PRIu64 " length %" PRIu64 ": "
            "data for the first half, then NBD_REPLY_TYPE_ERROR_OFFSET "
            "(EIO at %" PRIu64 "), the rest not covered", c->id, r->offset,
            r->count, r->offset + half);
    break;
  case ERR_UNKNOWN_TYPE:
    if (!sr (c))
      return false;
    ncs_chunk_error (c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERR (0x63),
                     NBD_EIO, "nbd-conform: unknown error type", 0);
    nc_log (s->t, "conn %u: READ answered by one chunk of unknown error "
            "type 0x8063 (a consistent error payload, EIO) with DONE",
            c->id);
    break;
  case ERR_SIMPLE_UNKNOWN_VALUE:
    if (sr (c))
      return false;
    ncs_simple (c, r->cookie, 0x1234, NULL, 0);
    nc_log (s->t, "conn %u: READ answered by a simple reply with the "
            "unknown error value 0x1234", c->id);
    break;
  case ERR_SHUTDOWN:
    ncs_error (c, r, NBD_ESHUTDOWN);
    shutting_down = true;
    nc_log (s->t, "conn %u: READ answered with NBD_ESHUTDOWN; every later "
            "request gets NBD_ESHUTDOWN too", c->id);
    break;
  }
  /* Remember which connection got it (judged afterwards). */
  s->priv = c;
  return true;
}

static struct ncs *
run_err (struct nc_ctx *t, enum err_kind kind, bool structured,
         bool need_sr)
{
  struct ncs *s = ncs_new (t, NCS_READ);

  err_kind = kind;
  s->structured = structured;
  s->on_request = error_reply;
  ncs_run (s);
  ncs_need (s);
  if (need_sr)
    need_structured (s);
  if (s->priv == NULL)
    nc_unsupported (t, "no READ the error could be staged on");
  return s;
}

/* An error reply breaks no rule: ending the session after it must be a
 * soft disconnect (TX-TERM-10).
 */
static void
expect_no_hard_disconnect (struct ncs *s, const char *after)
{
  struct ncs_conn *c = s->priv;

  if (c->eof && !c->disc)
    nc_fail (s->t, "TX-TERM-10", "conn %u: after %s (an ordinary error "
             "reply, no protocol violation) the client closed the connection "
             "without NBD_CMD_DISC (a hard disconnect)", c->id, after);
}

static void
test_error_chunk (struct nc_ctx *t)
{
  struct ncs *s = run_err (t, ERR_CHUNK, true, true);

  ncs_expect_failure (s, NULL, "its READ got NBD_REPLY_TYPE_ERROR (EIO)");
  expect_no_hard_disconnect (s, "NBD_REPLY_TYPE_ERROR");
}

static void
test_error_offset (struct nc_ctx *t)
{
  struct ncs *s = run_err (t, ERR_OFFSET_CHUNK, true, true);

  ncs_expect_failure (s, NULL, "its READ got NBD_REPLY_TYPE_ERROR_OFFSET "
                      "(EIO) and half of it was never covered");
  expect_no_hard_disconnect (s, "NBD_REPLY_TYPE_ERROR_OFFSET");
}

static void
test_unknown_error_type (struct nc_ctx *t)
{
  struct ncs *s = run_err (t, ERR_UNKNOWN_TYPE, true, true);

  ncs_expect_failure (s, NULL, "its READ got only a chunk of unknown error "
                      "type 0x8063");
}

static void
test_unknown_error_value (struct nc_ctx *t)
{
  struct ncs *s = run_err (t, ERR_SIMPLE_UNKNOWN_VALUE, false, false);
  struct ncs_conn *c = s->priv;

  ncs_expect_failure (s, "COMPAT-BASE-1", "its READ failed with error "
                      "0x1234");
  /* "stays connected": the session ends, if at all, softly. */
  if (c->eof && !c->disc)
    nc_should (t, NULL, "conn %u: after the unknown error value 0x1234 the "
               "client dropped the connection without NBD_CMD_DISC; it "
               "should treat it as NBD_EINVAL and carry on", c->id);
}

static void
test_eshutdown (struct nc_ctx *t)
{
  struct ncs *s = run_err (t, ERR_SHUTDOWN, true, false);
  struct ncs_conn *c = s->priv;

  if (!c->disc)
    nc_fail (t, NULL, "conn %u: after NBD_ESHUTDOWN the client %s without "
             "NBD_CMD_DISC; it must initiate a soft disconnect", c->id,
             c->eof ? "closed the connection" : "went on");
  ncs_expect_failure (s, "COMPAT-BASE-1", "its READ failed with "
                      "NBD_ESHUTDOWN");
}

/* ---- block status ------------------------------------------------------ */

static void
test_bs_context_id (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_BLOCK_STATUS);

  s->meta_id = 0x7a3b9c01;
  ncs_zero (s, 128 * 1024, 256 * 1024);
  ncs_run (s);
  ncs_need (s);
  ncs_expect_success (s, NULL, NBDP_MUST);
  ncs_check_out (s, NULL);
}

static void
test_bs_unknown_bits (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_BLOCK_STATUS);

  s->bs_extra = 0xff00;
  ncs_zero (s, 128 * 1024, 256 * 1024);
  ncs_run (s);
  ncs_need (s);
  ncs_expect_success (s, NULL, NBDP_MUST);
  ncs_check_out (s, NULL);
}

static void
test_bs_equal_neighbours (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_BLOCK_STATUS);

  s->bs_no_merge = true;
  ncs_zero (s, 128 * 1024, 256 * 1024);
  ncs_run (s);
  ncs_need (s);
  ncs_expect_success (s, NULL, NBDP_SHOULD);
  ncs_check_out (s, NULL);
}

static const struct nc_test tests[] = {
  { "sr-reassembly-reverse", "CMD-READ-16", NBDP_MUST,
    test_reassembly_reverse,
    "READ: structured read in 4 KiB OFFSET_DATA chunks, last first: the "
    "client's data is right" },
  { "sr-reassembly-holes", "CMD-READ-16", NBDP_MUST, test_reassembly_holes,
    "READ: structured read in shuffled 1 KiB OFFSET_DATA and OFFSET_HOLE "
    "chunks: the client's data is right" },
  { "sr-unknown-chunk-type", "SR-TYPE-1", NBDP_MUST, test_unknown_chunk_type,
    "READ/BS: a chunk of unknown non-error type: hard disconnect, no "
    "success" },
  { "sr-unknown-cookie", "SR-TYPE-5", NBDP_MUST, test_unknown_cookie,
    "READ/BS: a chunk for a cookie not in flight: hard disconnect, no "
    "success" },
  { "sr-data-outside-request", "SR-TYPE-5 CMD-READ-34", NBDP_MUST,
    test_data_outside,
    "READ: OFFSET_DATA just past the requested range: hard disconnect, no "
    "success" },
  { "sr-none-without-done", "SR-TYPE-5", NBDP_MUST, test_none_without_done,
    "READ/BS: NBD_REPLY_TYPE_NONE without DONE: hard disconnect, no "
    "success" },
  { "sr-simple-reply-to-read", "SR-TYPE-5", NBDP_MUST, test_simple_to_read,
    "READ: a simple reply with data to READ after structured replies were "
    "negotiated: hard disconnect, no success" },
  { "sr-error-chunk", "SR-ERR-2 CMD-READ-27 SR-MSG-11 TX-TERM-10", NBDP_MUST,
    test_error_chunk,
    "READ: data for half, then NBD_REPLY_TYPE_ERROR: the client reports "
    "the failure and does not hard-disconnect" },
  { "sr-error-offset", "CMD-READ-33 SR-MSG-11 TX-TERM-10", NBDP_MUST,
    test_error_offset,
    "READ: data for half, then NBD_REPLY_TYPE_ERROR_OFFSET: the client "
    "reports the failure" },
  { "sr-unknown-error-type", "SR-TYPE-3 SR-TYPE-4", NBDP_MUST,
    test_unknown_error_type,
    "READ: a chunk of unknown error type: the reply failed" },
  { "unknown-error-value", "ERR-11", NBDP_SHOULD, test_unknown_error_value,
    "READ: simple reply with error 0x1234: a failure like NBD_EINVAL, the "
    "connection kept" },
  { "eshutdown", "TX-TERM-7", NBDP_MUST, test_eshutdown,
    "READ: NBD_ESHUTDOWN: the client soft-disconnects (NBD_CMD_DISC)" },
  { "bs-context-id", "OPT-SMC-9 CMD-BS-3", NBDP_MUST, test_bs_context_id,
    "BS: a context ID of 0x7a3b9c01 is used as given; the client's data is "
    "right" },
  { "bs-unknown-state-bits", "BS-ALLOC-6", NBDP_MUST, test_bs_unknown_bits,
    "BS: undefined base:allocation bits (0xff00) are ignored" },
  { "bs-equal-neighbours", "CMD-BS-12", NBDP_SHOULD,
    test_bs_equal_neighbours,
    "BS: neighbouring extents of equal status (one per 4 KiB) are fine" },
};

NC_SUITE ("client", tests);
