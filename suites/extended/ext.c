/* Extended headers suite: negotiation of NBD_OPT_EXTENDED_HEADERS, the
 * 32-byte requests and replies that follow (every reply an extended
 * chunk echoing the request's offset, never a simple reply), and the
 * NBD_CMD_FLAG_PAYLOAD_LEN rules.  Every test is UNSUPPORTED when the
 * server answers NBD_OPT_EXTENDED_HEADERS with an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"
#include "../structured/ncx.h"

#define K 1024

static const struct nc_open_opts eh = { .extended = true,
                                         .block_size = true };

static const char *
rep_name (uint32_t rep)
{
  static char b[4][40];
  static unsigned k;
  char *s = b[k++ % 4];

  return nbdp_rep_str (s, 40, rep);
}

/* Every message of r is an extended chunk whose offset is the request's. */
static bool
check_extended (struct nc_ctx *t, const struct ncx_reply *r, const char *what)
{
  char d[512];

  if (r->io_error) {
    nc_fail (t, NULL, "%s with extended headers: %s", what, r->io_error);
    return false;
  }
  for (size_t i = 0; i < r->n_c; i++) {
    const struct ncx_chunk *ch = &r->c[i];
    if (ch->kind != NBDP_REPLY_EXTENDED) {
      nc_fail (t, ch->kind == NBDP_REPLY_SIMPLE ? "EH-SIMPLE-1" : "EH-REP-1",
               "%s (offset %" PRIu64 ") with extended headers: got [%s], "
               "expected extended reply chunks only", what, r->offset,
               ncx_describe (r, d, sizeof d));
      return false;
    }
    if (ch->hdr_offset != r->offset) {
      nc_fail (t, "EH-REP-6", "%s (offset %" PRIu64 "): extended chunk %s "
               "carries offset %" PRIu64 ", expected the request's offset",
               what, r->offset, ncx_type_name (ch->type), ch->hdr_offset);
      return false;
    }
  }
  return true;
}

static struct span { uint64_t off, len; } const mixed[] = {
  { 64 * K, 64 * K }, { 192 * K, 4 * K }, { 304 * K, 8 * K },
};

static unsigned char *
layout (struct nc_ctx *t, struct nc_conn *c)
{
  unsigned char *exp = calloc (1, 512 * K);

  if (exp == NULL)
    nc_error (t, "out of memory");
  ncx_zero (t, c, 0, 512 * K);
  for (size_t i = 0; i < 3; i++) {
    unsigned char *w = ncx_write_pattern (t, c, mixed[i].off, mixed[i].len,
                                          (unsigned) i + 20);
    memcpy (exp + mixed[i].off, w, mixed[i].len);
    free (w);
  }
  return exp;
}

/* ACK, then GO, then extended replies. */
static void
test_negotiate (struct nc_ctx *t)
{
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep = ncx_simple_option (t, c, NBD_OPT_EXTENDED_HEADERS);
  struct ncx_reply *r;

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                    rep_name (rep));
  rep = ncx_go (t, c, true);
  if (!nc_expect (t, rep == NBD_REP_ACK, "NBD_OPT_GO (with "
                  "NBD_INFO_BLOCK_SIZE) after extended headers were "
                  "acknowledged: got %s, expected NBD_REP_ACK",
                  rep_name (rep)))
    return;
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  if (check_extended (t, r, "READ 0+4096"))
    ncx_check_read (t, r, NULL, "CMD-READ-10");
}

/* SHOULD: available without structured replies first. */
static void
test_without_sr (struct nc_ctx *t)
{
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep = ncx_simple_option (t, c, NBD_OPT_EXTENDED_HEADERS);

  if (rep == NBD_REP_ACK)
    return;
  c = ncx_negotiate (t);
  if (ncx_simple_option (t, c, NBD_OPT_STRUCTURED_REPLY) != NBD_REP_ACK ||
      ncx_simple_option (t, c, NBD_OPT_EXTENDED_HEADERS) != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s (also "
                    "after structured replies)", rep_name (rep));
  nc_expect (t, false, "NBD_OPT_EXTENDED_HEADERS as the first option: got "
             "%s, but it is acknowledged after NBD_OPT_STRUCTURED_REPLY; "
             "expected it available on its own", rep_name (rep));
}

/* MAY: structured replies first, then extended headers. */
static void
test_after_sr (struct nc_ctx *t)
{
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep;
  struct ncx_reply *r;

  if (ncx_simple_option (t, c, NBD_OPT_STRUCTURED_REPLY) != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY was refused");
  rep = ncx_simple_option (t, c, NBD_OPT_EXTENDED_HEADERS);
  if (rep != NBD_REP_ACK) {
    struct nc_conn *c2 = ncx_negotiate (t);
    if (ncx_simple_option (t, c2, NBD_OPT_EXTENDED_HEADERS) != NBD_REP_ACK)
      nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                      rep_name (rep));
    nc_info (t, "NBD_OPT_EXTENDED_HEADERS after STRUCTURED_REPLY answered "
             "with %s (it works on its own)", rep_name (rep));
    return;
  }
  if (ncx_go (t, c, true) != NBD_REP_ACK)
    nc_error (t, "NBD_OPT_GO failed");
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  if (check_extended (t, r, "READ 0+4096"))
    ncx_check_read (t, r, NULL, "CMD-READ-10");
  nc_info (t, "extended headers acknowledged after structured replies");
}

/* SHOULD: with data the option fails with NBD_REP_ERR_INVALID. */
static void
test_option_data (struct nc_ctx *t)
{
  static const unsigned char data[4] = { 0, 0, 0, 1 };
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep;

  nc_send_option (t, c, NBD_OPT_EXTENDED_HEADERS, data, sizeof data);
  rep = nc_option_final (t, c);
  if (rep == NBD_REP_ERR_INVALID)
    return;
  if (rep != NBD_REP_ACK &&
      ncx_simple_option (t, c, NBD_OPT_EXTENDED_HEADERS) != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS is not supported (%s)",
                    rep_name (rep));
  nc_expect (t, false, "NBD_OPT_EXTENDED_HEADERS with 4 bytes of data: got "
             "%s, expected NBD_REP_ERR_INVALID", rep_name (rep));
}

/* READ in extended chunks: offsets echoed, data intact. */
static void
test_read (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  unsigned char *exp;
  struct ncx_reply *r;
  const uint64_t off = 60 * K, len = 300 * K;

  ncx_need_writable (t, c, 512 * K);
  ncx_need_payload (t, c, len);
  exp = layout (t, c);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, off, len, NULL);
  if (check_extended (t, r, "READ") && ncx_check_read (t, r, exp + off,
                                                       "CMD-READ-10") &&
      ncx_check_done_last (t, r, "FLAG-REPLY-1")) {
    char d[512];
    nc_info (t, "READ %" PRIu64 "+%" PRIu64 ": %s", off, len,
             ncx_describe (r, d, sizeof d));
  }
}

struct op {
  const char *name;
  uint16_t type, flags;
  uint64_t off, len;
  uint16_t needs;
  bool writes;
  const char *err_id;         /* SHOULD-level ID of the expected error */
};

static void
run_ops (struct nc_ctx *t, struct nc_conn *c, const struct op *ops, size_t n,
         bool want_ok)
{
  unsigned char buf[8192];
  char d[512];

  memset (buf, 0x3c, sizeof buf);
  for (size_t i = 0; i < n; i++) {
    const struct op *o = &ops[i];
    struct ncx_reply *r;
    if ((o->needs && !(c->s.eflags & o->needs)) ||
        (o->writes && (c->s.eflags & NBD_FLAG_READ_ONLY)))
      continue;
    r = ncx_cmd (t, c, o->type, o->flags, o->off, o->len, buf);
    if (!check_extended (t, r, o->name))
      return;
    if (want_ok)
      nc_expect (t, ncx_ok (r), "%s offset %" PRIu64 " length %" PRIu64
                 " with extended headers: got %s [%s], expected success",
                 o->name, o->off, o->len, ncx_errstr (r),
                 ncx_describe (r, d, sizeof d));
    else if (r->error == 0)
      nc_should (t, o->err_id, "%s offset %" PRIu64 " length %" PRIu64
                 " with extended headers: got success [%s], expected an "
                 "error%s", o->name, o->off, o->len,
                 ncx_describe (r, d, sizeof d), o->len > UINT32_MAX
                 ? " (the length reaches past the end of the export; "
                 "success suggests it was truncated to 32 bits)" : "");
  }
}

/* Every command gets extended replies, never simple ones. */
static void
test_commands (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  const struct op ops[] = {
    { "WRITE", NBD_CMD_WRITE, 0, 8192, 4096, 0, true, NULL },
    { "READ", NBD_CMD_READ, 0, 8192, 4096, 0, false, NULL },
    { "FLUSH", NBD_CMD_FLUSH, 0, 0, 0, NBD_FLAG_SEND_FLUSH, false, NULL },
    { "TRIM", NBD_CMD_TRIM, 0, 16 * K, 4096, NBD_FLAG_SEND_TRIM, true, NULL },
    { "WRITE_ZEROES", NBD_CMD_WRITE_ZEROES, 0, 24 * K, 4096,
      NBD_FLAG_SEND_WRITE_ZEROES, true, NULL },
    { "WRITE_ZEROES NO_HOLE", NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE,
      28 * K, 4096, NBD_FLAG_SEND_WRITE_ZEROES, true, NULL },
    { "CACHE", NBD_CMD_CACHE, 0, 4096, 4096, NBD_FLAG_SEND_CACHE, false, NULL },
    { "WRITE with FUA", NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 40 * K, 4096,
      NBD_FLAG_SEND_FUA, true, NULL },
  };

  ncx_need_size (t, c, 64 * K);
  run_ops (t, c, ops, sizeof ops / sizeof ops[0], true);
}

/* Errors too come as extended chunks. */
static void
test_errors (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  const uint64_t size = c->s.export_size;
  const struct op ops[] = {
    { "READ past the end", NBD_CMD_READ, 0, size - 4096, 8192, 0, false,
      "ERR-3" },
    { "WRITE past the end", NBD_CMD_WRITE, 0, size - 4096, 8192, 0, true,
      "ERR-1" },
    { "unknown command 99", 99, 0, 4096, 4096, 0, false, "ERR-7" },
    { "READ with flag 0x8000", NBD_CMD_READ, 0x8000, 4096, 4096, 0, false,
      "ERR-8" },
    { "TRIM past the end", NBD_CMD_TRIM, 0, size, 4096, NBD_FLAG_SEND_TRIM,
      true, "ERR-3" },
  };

  ncx_need_size (t, c, 64 * K);
  run_ops (t, c, ops, sizeof ops / sizeof ops[0], false);
}

/* WRITE with PAYLOAD_LEN round trip. */
static void
test_write (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  unsigned char *w;
  struct ncx_reply *r;

  ncx_need_writable (t, c, 256 * K);
  w = ncx_write_pattern (t, c, 12 * K, 100 * K, 30);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 12 * K, 100 * K, NULL);
  if (check_extended (t, r, "READ"))
    ncx_check_read (t, r, w, NULL);
}

/* SHOULD: an unexpected payload is consumed and the command failed. */
static void
test_payload_unexpected (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  unsigned char junk[512];
  struct ncx_req q = {
    .type = NBD_CMD_READ, .flags = NBD_CMD_FLAG_PAYLOAD_LEN, .offset = 0,
    .count = sizeof junk, .payload = junk, .payload_len = sizeof junk,
  };
  struct ncx_reply *r;
  unsigned char *w;
  char d[512];

  ncx_need_writable (t, c, 64 * K);
  w = ncx_write_pattern (t, c, 0, 4096, 31);
  /* The junk looks like a request header: a server that does not
   * consume it would see a READ with cookie 0xbad0bad0bad0bad0.
   */
  memset (junk, 0, sizeof junk);
  nbdp_put32 (junk, NBD_EXTENDED_REQUEST_MAGIC);
  nbdp_put16 (junk + 6, NBD_CMD_READ);
  nbdp_put64 (junk + 8, UINT64_C (0xbad0bad0bad0bad0));
  nbdp_put64 (junk + 24, 512);
  r = ncx_send (t, c, &q);
  ncx_wait (t, r);
  if (r->io_error) {
    nc_expect (t, false, "READ with NBD_CMD_FLAG_PAYLOAD_LEN and a 512-byte "
               "payload: the server dropped the connection (%s), expected "
               "it to consume the payload, fail the command and go on",
               r->io_error);
    return;
  }
  check_extended (t, r, "READ with PAYLOAD_LEN");
  nc_expect (t, r->error == NBD_EINVAL, "READ with NBD_CMD_FLAG_PAYLOAD_LEN "
             "and a 512-byte payload: got %s [%s], expected NBD_EINVAL",
             ncx_errstr (r), ncx_describe (r, d, sizeof d));
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  nc_expect (t, ncx_ok (r), "READ 0+4096 after the request with an "
             "unexpected payload: got %s, expected success (the payload "
             "consumed)", ncx_errstr (r));
  if (ncx_ok (r))
    ncx_check_read (t, r, w, "CMD-READ-10");
}

/* SHOULD: a payload over the maximum leads to a hard disconnect. */
static void
test_payload_oversized (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true,
                                         .block_size = true };
  struct nc_conn *c = nc_open (t, &o);
  uint32_t max = nbdp_session_max_payload (&c->s);
  uint64_t len = (uint64_t) max + 4096;
  struct nbdp_request req = {
    .magic = NBD_EXTENDED_REQUEST_MAGIC,
    .flags = NBD_CMD_FLAG_PAYLOAD_LEN, .type = NBD_CMD_WRITE,
    .cookie = 1, .offset = 0, .count = len,
  };
  unsigned char hdr[NBDP_REQUEST_EXT_SIZE];

  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_skip (t, "the export is read-only");
  nbdp_encode_request (hdr, &req, true);
  nc_log (t, "send WRITE with PAYLOAD_LEN length %" PRIu64 " (maximum "
          "payload %" PRIu32 "), header only", len, max);
  if (nbdp_client_send_raw (c->c, hdr, sizeof hdr) == -1)
    nc_error (t, "sending: %s", nbdp_client_error (c->c));
  nbdp_client_set_timeout (c->c, 2000);
  if (nbdp_client_expect_eof (c->c) == 0)
    return;
  nc_expect (t, false, "WRITE with NBD_CMD_FLAG_PAYLOAD_LEN and length %"
             PRIu64 " (over the maximum payload %" PRIu32 "): %s; expected "
             "a hard disconnect", len, max, nbdp_client_error (c->c));
}

/* Requests in flight with large cookies: each chunk's cookie and offset
 * are its request's.
 */
static void
test_cookies (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  struct ncx_reply *r[8];
  unsigned char *exp;

  ncx_need_writable (t, c, 512 * K);
  exp = layout (t, c);
  for (int i = 0; i < 8; i++) {
    struct ncx_req q = {
      .type = NBD_CMD_READ, .offset = (uint64_t) i * 60 * K,
      .count = 40 * K,
      .cookie = UINT64_C (0xffffffff00000000) + (uint64_t) i * 0x1000001,
    };
    r[i] = ncx_send (t, c, &q);
  }
  for (int i = 7; i >= 0; i--) {
    ncx_wait (t, r[i]);
    if (!check_extended (t, r[i], "READ") ||
        !ncx_check_read (t, r[i], exp + r[i]->offset, "EH-REP-5"))
      return;
  }
}

/* DF under extended headers. */
static void
test_df (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  unsigned char *exp;
  struct ncx_reply *r;
  char d[512];

  if (!(c->s.eflags & NBD_FLAG_SEND_DF))
    nc_unsupported (t, "the server did not advertise NBD_FLAG_SEND_DF");
  ncx_need_writable (t, c, 512 * K);
  exp = layout (t, c);
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 100 * K, 64 * K, NULL);
  if (check_extended (t, r, "READ with DF") &&
      ncx_check_read (t, r, exp + 100 * K, "CMD-READ-41"))
    nc_expect (t, ncx_content_chunks (r) == 1 &&
               ncx_count_type (r, NBD_REPLY_TYPE_OFFSET_DATA) == 1,
               "READ 102400+65536 (data and hole) with DF: got [%s], "
               "expected exactly one OFFSET_DATA chunk",
               ncx_describe (r, d, sizeof d));
}

/* SHOULD NOT disconnect on a zero-length read; extended reply. */
static void
test_read_zero_length (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  struct ncx_reply *r = ncx_cmd (t, c, NBD_CMD_READ, 0, 4096, 0, NULL);
  char d[512];

  if (r->io_error) {
    nc_should (t, "CMD-READ-3", "READ length 0: %s, expected a reply",
               r->io_error);
    return;
  }
  if (!check_extended (t, r, "READ length 0"))
    return;
  nc_info (t, "READ length 0: %s [%s]", ncx_errstr (r),
           ncx_describe (r, d, sizeof d));
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  if (!ncx_ok (r))
    nc_should (t, "CMD-READ-3", "READ 0+4096 after a zero-length read: %s",
               ncx_errstr (r));
}

/* A large hole: hole chunks keep their 32-bit size (length 12). */
static void
test_hole (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  unsigned char *z = calloc (1, 4096 * K);
  struct ncx_reply *r;
  char d[512];

  if (z == NULL)
    nc_error (t, "out of memory");
  ncx_need_writable (t, c, 8192 * K);
  ncx_need_payload (t, c, 4096 * K);
  ncx_zero (t, c, 4096 * K, 4096 * K);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 4096 * K, 4096 * K, NULL);
  if (!check_extended (t, r, "READ of a hole") ||
      !ncx_check_read (t, r, z, NULL))
    return;
  for (size_t i = 0; i < r->n_c; i++)
    if (r->c[i].type == NBD_REPLY_TYPE_OFFSET_HOLE)
      nc_expect (t, r->c[i].length == 12, "OFFSET_HOLE with extended "
                 "headers has length %" PRIu64 ", expected 12",
                 r->c[i].length);
  nc_info (t, "READ of 4 MiB of hole: %s", ncx_describe (r, d, sizeof d));
}

/* GO without NBD_INFO_BLOCK_SIZE: the server may require it. */
static void
test_go_no_block_size (struct nc_ctx *t)
{
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep = ncx_simple_option (t, c, NBD_OPT_EXTENDED_HEADERS);

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                    rep_name (rep));
  rep = ncx_go (t, c, false);
  nc_expect (t, rep == NBD_REP_ACK || rep == NBD_REP_ERR_BLOCK_SIZE_REQD,
             "NBD_OPT_GO without NBD_INFO_BLOCK_SIZE after extended "
             "headers: got %s, expected NBD_REP_ACK or "
             "NBD_REP_ERR_BLOCK_SIZE_REQD", rep_name (rep));
  nc_info (t, "NBD_OPT_GO without NBD_INFO_BLOCK_SIZE: %s", rep_name (rep));
}

/* 64-bit effect lengths are not truncated: with 2^32 added to a small
 * length every request reaches past the end of the export and should
 * fail; a server keeping only the low 32 bits would succeed.
 */
static void
test_64bit_lengths (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &eh);
  const uint64_t len = (UINT64_C (1) << 32) + 4096;
  const struct op ops[] = {
    { "READ", NBD_CMD_READ, 0, 0, len, 0, false, "ERR-3" },
    { "TRIM", NBD_CMD_TRIM, 0, 0, len, NBD_FLAG_SEND_TRIM, true, "ERR-3" },
    { "WRITE_ZEROES", NBD_CMD_WRITE_ZEROES, 0, 0, len,
      NBD_FLAG_SEND_WRITE_ZEROES, true, "CMD-WZ-20" },
    { "CACHE", NBD_CMD_CACHE, 0, 0, len, NBD_FLAG_SEND_CACHE, false,
      "SIZE-34" },
  };

  if (c->s.export_size >= len)
    nc_skip (t, "the export is 4 GiB or larger");
  run_ops (t, c, ops, sizeof ops / sizeof ops[0], false);
}

/* SHOULD NOT: GO without extended headers answered EXT_HEADER_REQD. */
static void
test_compat_go (struct nc_ctx *t)
{
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep = ncx_go (t, c, false);

  nc_expect (t, rep != NBD_REP_ERR_EXT_HEADER_REQD, "NBD_OPT_GO without "
             "NBD_OPT_EXTENDED_HEADERS: got NBD_REP_ERR_EXT_HEADER_REQD, "
             "which locks out clients without extended headers");
  if (rep == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_GO is not supported");
}

static const struct nc_test tests[] = {
  { "eh-negotiate", "EH-OPT-18 EH-OPT-2 EH-OPT-11 EH-REP-1", NBDP_MUST,
    test_negotiate, "EXTENDED_HEADERS acked, GO works, replies extended" },
  { "eh-without-sr", "EH-OPT-13", NBDP_SHOULD, test_without_sr,
    "extended headers without structured replies first" },
  { "eh-after-sr", "EH-OPT-12 EH-REP-1", NBDP_MUST, test_after_sr,
    "extended headers after structured replies" },
  { "eh-option-data", "EH-OPT-10", NBDP_SHOULD, test_option_data,
    "EXTENDED_HEADERS with data gets NBD_REP_ERR_INVALID" },
  { "eh-read", "EH-REP-1 EH-REP-3 EH-REP-6 EH-SIMPLE-1 CMD-READ-10 "
    "CMD-READ-19", NBDP_MUST, test_read,
    "READ: extended chunks echoing the offset, data intact" },
  { "eh-commands", "EH-REP-2 EH-SIMPLE-1 EH-OPT-18 EH-REP-3 EH-FLAG-4",
    NBDP_MUST, test_commands,
    "every command gets extended replies, never simple" },
  { "eh-errors", "EH-REP-2 EH-SIMPLE-1 EH-REP-6 ERR-3", NBDP_MUST,
    test_errors,
    "errors come as extended chunks with the offset echoed" },
  { "eh-write", "EH-REQ-2 EH-FLAG-4 CMD-WRITE-4", NBDP_MUST, test_write,
    "WRITE with PAYLOAD_LEN reads back" },
  { "eh-payload-unexpected", "EH-REQ-4", NBDP_SHOULD,
    test_payload_unexpected,
    "unexpected payload is consumed, NBD_EINVAL, connection goes on" },
  { "eh-payload-oversized", "EH-REQ-3", NBDP_SHOULD, test_payload_oversized,
    "payload over the maximum leads to a hard disconnect" },
  { "eh-cookies", "EH-REP-5 EH-REP-6 TX-GEN-4", NBDP_MUST, test_cookies,
    "requests in flight: cookie and offset echoed per chunk" },
  { "eh-df", "CMD-READ-36 CMD-READ-38 EH-REP-3", NBDP_MUST, test_df,
    "DF read with extended headers: one OFFSET_DATA chunk" },
  { "eh-read-zero-length", "EH-SIMPLE-1 CMD-READ-3", NBDP_MUST,
    test_read_zero_length, "zero-length READ: extended reply" },
  { "eh-hole", "SR-HOLE-1 EH-REP-3 CMD-READ-19", NBDP_MUST, test_hole,
    "hole chunks keep length 12 with extended headers" },
  { "eh-64bit-lengths", "SIZE-34 ERR-3 CMD-WZ-20 EH-REP-6", NBDP_SHOULD,
    test_64bit_lengths,
    "effect lengths over 2^32 are not truncated (requests past the end)" },
  { "eh-compat-go", "EH-COMPAT-1", NBDP_SHOULD, test_compat_go,
    "GO without extended headers is not refused for lack of them" },
  { "eh-go-block-size", "EH-OPT-20 EH-OPT-2", NBDP_MUST,
    test_go_no_block_size,
    "GO without NBD_INFO_BLOCK_SIZE: ACK or BLOCK_SIZE_REQD" },
};
NC_SUITE ("extended", tests);
