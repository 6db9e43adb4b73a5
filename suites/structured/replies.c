/* Structured replies suite: which reply form each command gets, with and
 * without NBD_OPT_STRUCTURED_REPLY, and the form of error chunks and
 * reply flags.
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

struct op {
  const char *name;
  uint16_t type, flags;
  uint64_t off, len;
  uint16_t needs;             /* transmission flag, 0: none */
  bool writes;
};

/* Without structured replies: simple replies only, for everything. */
static void
test_no_sr_simple (struct nc_ctx *t)
{
  static const struct nc_open_opts bs = { .block_size = true };
  struct nc_conn *c = nc_open (t, &bs);
  const uint64_t size = c->s.export_size;
  const struct op ops[] = {
    { "READ", NBD_CMD_READ, 0, 0, 4096, 0, false },
    { "READ past the end", NBD_CMD_READ, 0, size - 4096, 8192, 0, false },
    { "WRITE", NBD_CMD_WRITE, 0, 8192, 4096, 0, true },
    { "FLUSH", NBD_CMD_FLUSH, 0, 0, 0, NBD_FLAG_SEND_FLUSH, false },
    { "TRIM", NBD_CMD_TRIM, 0, 16 * K, 4096, NBD_FLAG_SEND_TRIM, true },
    { "WRITE_ZEROES", NBD_CMD_WRITE_ZEROES, 0, 24 * K, 4096,
      NBD_FLAG_SEND_WRITE_ZEROES, true },
    { "CACHE", NBD_CMD_CACHE, 0, 0, 4096, NBD_FLAG_SEND_CACHE, false },
    { "unknown command 99", 99, 0, 0, 4096, 0, false },
  };
  unsigned char buf[4096];
  char d[512];

  ncx_need_size (t, c, 64 * K);
  memset (buf, 0x3c, sizeof buf);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const struct op *o = &ops[i];
    struct ncx_reply *r;
    if ((o->needs && !(c->s.eflags & o->needs)) ||
        (o->writes && (c->s.eflags & NBD_FLAG_READ_ONLY)))
      continue;
    r = ncx_cmd (t, c, o->type, o->flags, o->off, o->len, buf);
    if (r->io_error) {
      nc_info (t, "%s without structured replies: connection lost (%s)",
               o->name, r->io_error);
      return;
    }
    nc_expect (t, r->chunks == 0 && r->simple == 1, "%s offset %" PRIu64
               " length %" PRIu64 " without NBD_OPT_STRUCTURED_REPLY: got "
               "[%s], expected one simple reply", o->name, o->off, o->len,
               ncx_describe (r, d, sizeof d));
    if (i == 0)
      ncx_check_read (t, r, NULL, "CMD-READ-4");
  }
}

/* Without structured replies a failed READ carries an error and no data:
 * the next reply must parse.
 */
static void
test_no_sr_read_error (struct nc_ctx *t)
{
  static const struct nc_open_opts bs = { .block_size = true };
  struct nc_conn *c = nc_open (t, &bs);
  const uint64_t size = c->s.export_size;
  struct ncx_reply *r;
  unsigned char *w = NULL;
  char d[512];

  ncx_need_size (t, c, 64 * K);
  if (!(c->s.eflags & NBD_FLAG_READ_ONLY))
    w = ncx_write_pattern (t, c, 0, 4096, 15);
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, size - 4096, 8192, NULL);
  if (r->io_error) {
    nc_info (t, "READ past the end (simple replies): the server dropped "
             "the connection (%s)", r->io_error);
    return;
  }
  if (r->error == 0) {
    nc_info (t, "READ past the end succeeded with simple replies [%s]",
             ncx_describe (r, d, sizeof d));
    return;
  }
  r = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  if (r->io_error) {
    nc_fail (t, "CMD-READ-7", "READ 0+4096 after a failed simple READ: %s; "
             "data after the failed reply would explain this", r->io_error);
    return;
  }
  ncx_check_read (t, r, w, "CMD-READ-7");
}

/* Without structured replies, a BLOCK_STATUS (which needs them) must
 * not be answered with chunks.
 */
static void
test_no_sr_block_status (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  struct ncx_reply *r;
  char d[512];

  ncx_need_size (t, c, 4096);
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 4096, NULL);
  if (r->io_error) {
    nc_info (t, "BLOCK_STATUS without structured replies: the server "
             "dropped the connection (%s)", r->io_error);
    return;
  }
  if (!nc_expect (t, r->chunks == 0, "BLOCK_STATUS 0+4096 without "
                  "structured replies: got [%s], expected a simple reply",
                  ncx_describe (r, d, sizeof d)))
    return;
  nc_expect (t, r->error != 0, "BLOCK_STATUS 0+4096 without structured "
             "replies or meta contexts: got a successful simple reply, "
             "expected an error (status can only be sent in chunks)");
  nc_info (t, "BLOCK_STATUS without structured replies: %s",
           ncx_errstr (r));
}

/* Without structured replies, flags only valid with them still get a
 * simple reply.
 */
static void
test_no_sr_df (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  struct ncx_reply *r;
  char d[512];

  ncx_need_size (t, c, 4096);
  if (!nc_expect (t, !(c->s.eflags & NBD_FLAG_SEND_DF), "transmission flags "
                  "0x%04x without structured replies include SEND_DF, "
                  "expected it clear", c->s.eflags))
    return;
  r = ncx_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 4096, NULL);
  if (r->io_error) {
    nc_info (t, "READ with DF without structured replies: the server "
             "dropped the connection (%s)", r->io_error);
    return;
  }
  nc_expect (t, r->chunks == 0, "READ 0+4096 with NBD_CMD_FLAG_DF without "
             "structured replies: got [%s], expected a simple reply",
             ncx_describe (r, d, sizeof d));
  nc_info (t, "READ with DF (not advertised): %s", ncx_errstr (r));
}

/* With structured replies, other commands get either form; success. */
static void
test_sr_other_commands (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  const struct op ops[] = {
    { "WRITE", NBD_CMD_WRITE, 0, 8192, 4096, 0, true },
    { "FLUSH", NBD_CMD_FLUSH, 0, 0, 0, NBD_FLAG_SEND_FLUSH, false },
    { "TRIM", NBD_CMD_TRIM, 0, 16 * K, 4096, NBD_FLAG_SEND_TRIM, true },
    { "WRITE_ZEROES", NBD_CMD_WRITE_ZEROES, 0, 24 * K, 4096,
      NBD_FLAG_SEND_WRITE_ZEROES, true },
    { "CACHE", NBD_CMD_CACHE, 0, 0, 4096, NBD_FLAG_SEND_CACHE, false },
  };
  unsigned char buf[4096];
  char d[512], forms[512] = "";
  size_t used = 0;

  ncx_need_writable (t, c, 64 * K);
  memset (buf, 0x3c, sizeof buf);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const struct op *o = &ops[i];
    struct ncx_reply *r;
    if (o->needs && !(c->s.eflags & o->needs))
      continue;
    r = ncx_cmd (t, c, o->type, o->flags, o->off, o->len, buf);
    if (!nc_expect (t, ncx_ok (r), "%s offset %" PRIu64 " length %" PRIu64
                    " with structured replies: got %s [%s], expected success",
                    o->name, o->off, o->len, ncx_errstr (r),
                    ncx_describe (r, d, sizeof d)))
      return;
    ncx_check_done_last (t, r, "FLAG-REPLY-1");
    for (size_t k = 0; k < r->n_c; k++)
      if (r->c[k].kind != NBDP_REPLY_SIMPLE &&
          r->c[k].type != NBD_REPLY_TYPE_NONE)
        nc_expect (t, false, "%s: successful reply with a %s chunk, "
                   "expected only NBD_REPLY_TYPE_NONE (no payload) [%s]",
                   o->name, ncx_type_name (r->c[k].type),
                   ncx_describe (r, d, sizeof d));
    if (used < sizeof forms)
      used += snprintf (forms + used, sizeof forms - used, "%s%s: %s",
                        used ? "; " : "", o->name,
                        ncx_describe (r, d, sizeof d));
  }
  nc_info (t, "reply forms with structured replies: %s", forms);
}

/* SHOULD: errors go in structured replies, where a message fits. */
static void
test_sr_errors_structured (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  const uint64_t size = c->s.export_size;
  const struct op ops[] = {
    { "READ past the end", NBD_CMD_READ, 0, size - 4096, 8192, 0, false },
    { "WRITE past the end", NBD_CMD_WRITE, 0, size - 4096, 8192, 0, true },
    { "TRIM past the end", NBD_CMD_TRIM, 0, size - 4096, 8192,
      NBD_FLAG_SEND_TRIM, true },
    { "unknown command 99", 99, 0, 0, 4096, 0, false },
  };
  unsigned char buf[8192];
  char d[512], forms[1024] = "";
  size_t used = 0;

  ncx_need_size (t, c, 64 * K);
  memset (buf, 0x3c, sizeof buf);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const struct op *o = &ops[i];
    struct ncx_reply *r;
    if ((o->needs && !(c->s.eflags & o->needs)) ||
        (o->writes && (c->s.eflags & NBD_FLAG_READ_ONLY)))
      continue;
    r = ncx_cmd (t, c, o->type, o->flags, o->off, o->len, buf);
    if (r->io_error) {
      nc_info (t, "%s: the server dropped the connection (%s)", o->name,
               r->io_error);
      return;
    }
    if (r->error == 0)
      continue;             /* judged by the transmission suite */
    nc_expect (t, r->simple == 0, "%s with structured replies: error "
               "%s sent as a simple reply, preferably a structured error "
               "chunk (which can carry a message)", o->name,
               ncx_error_name (r->error));
    if (used < sizeof forms)
      used += snprintf (forms + used, sizeof forms - used, "%s%s: %s",
                        used ? "; " : "", o->name,
                        ncx_describe (r, d, sizeof d));
  }
  nc_info (t, "error replies: %s", forms);
}

/* Error chunks: length, nonzero code, message within bounds. */
static void
test_error_chunks (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  const uint64_t size = c->s.export_size;
  struct ncx_reply *r[3];
  char d[512];
  unsigned seen = 0;

  ncx_need_size (t, c, 64 * K);
  r[0] = ncx_cmd (t, c, NBD_CMD_READ, 0, size - 4096, 8192, NULL);
  r[1] = ncx_cmd (t, c, NBD_CMD_READ, 0, size + 4096, 4096, NULL);
  r[2] = ncx_cmd (t, c, 99, 0, 0, 512, NULL);
  for (int i = 0; i < 3; i++) {
    if (r[i]->io_error)
      break;
    size_t generic = ncx_count_type (r[i], NBD_REPLY_TYPE_ERROR), errs = 0;
    for (size_t k = 0; k < r[i]->n_c; k++) {
      const struct ncx_chunk *ch = &r[i]->c[k];
      if (ch->kind == NBDP_REPLY_SIMPLE || !(ch->type & 0x8000))
        continue;
      seen++;
      errs++;
      nc_expect (t, ch->error != 0, "error chunk %s with error 0, expected "
                 "nonzero [%s]", ncx_type_name (ch->type),
                 ncx_describe (r[i], d, sizeof d));
    }
    if (generic && errs > 1)
      nc_should (t, "CMD-READ-28", "a reply with NBD_REPLY_TYPE_ERROR has "
                 "%zu error chunks, expected it to be the only one [%s]",
                 errs, ncx_describe (r[i], d, sizeof d));
    if (r[i]->error && r[i]->message[0])
      nc_info (t, "error message: \"%.200s\"", r[i]->message);
  }
  if (seen == 0)
    nc_info (t, "the server sent no error chunks (errors, if any, came as "
             "simple replies)");
}

/* Reply flags: only DONE, and only on the last chunk. */
static void
test_reply_flags (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  const uint64_t size = c->s.export_size;
  struct ncx_reply *r[6];
  unsigned char *w;
  char d[512];

  ncx_need_writable (t, c, 512 * K);
  w = ncx_write_pattern (t, c, 64 * K, 64 * K, 9);
  free (w);
  r[0] = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 256 * K, NULL);
  r[1] = ncx_cmd (t, c, NBD_CMD_READ, 0, size - 4096, 8192, NULL);
  r[2] = ncx_cmd (t, c, NBD_CMD_READ, 0, 64 * K + 1, 3, NULL);
  r[3] = ncx_cmd (t, c, 99, 0, 0, 512, NULL);
  r[4] = ncx_cmd (t, c, NBD_CMD_READ, 0, 192 * K, 64 * K, NULL);
  r[5] = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  for (int i = 0; i < 6; i++) {
    if (r[i]->io_error)
      break;
    for (size_t k = 0; k < r[i]->n_c; k++)
      nc_expect (t, r[i]->c[k].kind == NBDP_REPLY_SIMPLE ||
                 (r[i]->c[k].flags & ~NBD_REPLY_FLAG_DONE) == 0,
                 "chunk %s has reply flags 0x%04x, expected only DONE "
                 "[%s]", ncx_type_name (r[i]->c[k].type), r[i]->c[k].flags,
                 ncx_describe (r[i], d, sizeof d));
    ncx_check_done_last (t, r[i], "FLAG-REPLY-1");
  }
}

/* Nothing for a cookie after its DONE chunk: replies to a series of
 * requests sent one after the other arrive each complete before the
 * next request's.
 */
static void
test_done_last (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  struct ncx_reply *r[4];
  unsigned char *w;

  ncx_need_writable (t, c, 512 * K);
  w = ncx_write_pattern (t, c, 100 * K, 8 * K, 10);
  free (w);
  for (int i = 0; i < 4; i++) {
    struct ncx_req q = {
      .type = NBD_CMD_READ, .offset = 96 * K, .count = 64 * K,
      .cookie = 77,       /* reused once each reply is complete */
    };
    r[i] = ncx_send (t, c, &q);
    ncx_wait (t, r[i]);
    if (!ncx_check_read (t, r[i], NULL, NULL) ||
        !ncx_check_done_last (t, r[i], NULL))
      return;
  }
  ncx_setup (t, c, NBD_CMD_READ, 0, 0, 4096);
}

/* NONE chunks, where used, are empty and final. */
static void
test_none_chunk (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, &sr);
  unsigned char buf[4096];
  struct ncx_reply *r[4];
  size_t none = 0;
  char d[512];

  ncx_need_writable (t, c, 64 * K);
  memset (buf, 0x11, sizeof buf);
  r[0] = ncx_cmd (t, c, NBD_CMD_WRITE, 0, 0, 4096, buf);
  r[1] = ncx_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL);
  r[2] = ncx_cmd (t, c, NBD_CMD_READ, 0, 32 * K, 4096, NULL);
  r[3] = (c->s.eflags & NBD_FLAG_SEND_FLUSH)
    ? ncx_cmd (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL) : NULL;
  for (int i = 0; i < 4; i++) {
    if (r[i] == NULL)
      continue;
    for (size_t k = 0; k < r[i]->n_c; k++) {
      const struct ncx_chunk *ch = &r[i]->c[k];
      if (ch->kind == NBDP_REPLY_SIMPLE || ch->type != NBD_REPLY_TYPE_NONE)
        continue;
      none++;
      nc_expect (t, ch->length == 0 && (ch->flags & NBD_REPLY_FLAG_DONE) &&
                 k + 1 == r[i]->n_c, "NBD_REPLY_TYPE_NONE chunk with length "
                 "%" PRIu64 " and flags 0x%04x at position %zu of %zu, "
                 "expected length 0, DONE, last [%s]", ch->length, ch->flags,
                 k + 1, r[i]->n_c, ncx_describe (r[i], d, sizeof d));
    }
  }
  nc_info (t, "%zu NBD_REPLY_TYPE_NONE chunks in 4 replies", none);
}

static const struct nc_test tests[] = {
  { "no-sr-simple", "SR-MSG-1 CMD-READ-4 CMD-READ-1 TX-SIMPLE-1 EH-SIMPLE-2",
    NBDP_MUST, test_no_sr_simple,
    "without STRUCTURED_REPLY every command gets a simple reply" },
  { "no-sr-read-error", "CMD-READ-7 CMD-READ-5 CMD-READ-6 CMD-READ-4",
    NBDP_MUST, test_no_sr_read_error,
    "failed simple READ: error code, no data, connection usable" },
  { "no-sr-block-status", "SR-MSG-1 BS-META-5", NBDP_MUST,
    test_no_sr_block_status,
    "BLOCK_STATUS without structured replies: no chunks, not success" },
  { "no-sr-df", "FLAG-TX-9 SR-MSG-1 OPT-SR-5", NBDP_MUST, test_no_sr_df,
    "without structured replies: no SEND_DF, DF read gets a simple reply" },
  { "sr-other-commands", "SR-MSG-4 TX-SIMPLE-2 SR-MSG-2 SR-NONE-1 "
    "FLAG-REPLY-1", NBDP_MUST, test_sr_other_commands,
    "with structured replies other commands succeed, in either form" },
  { "sr-errors-structured", "SR-MSG-5", NBDP_SHOULD,
    test_sr_errors_structured,
    "errors are sent as structured error chunks" },
  { "error-chunks", "SR-ERR-1 SR-ERR-5 SR-ERR-4 SR-ERR-3 CMD-READ-28 "
    "CMD-READ-31 CMD-READ-32 SR-ERROFF-1 SR-ERROFF-2 SR-ERROFF-4 "
    "SR-ERROFF-6 SR-TYPE-5", NBDP_MUST, test_error_chunks,
    "error chunks: length, nonzero code, message bounds" },
  { "reply-flags", "FLAG-REPLY-3 FLAG-REPLY-1", NBDP_MUST, test_reply_flags,
    "only NBD_REPLY_FLAG_DONE is set, on the last chunk" },
  { "done-last", "SR-MSG-8 FLAG-REPLY-1 SR-MSG-6", NBDP_MUST,
    test_done_last, "nothing follows the DONE chunk of a reply" },
  { "none-chunk", "SR-NONE-1 SR-NONE-2 FLAG-REPLY-2", NBDP_MUST,
    test_none_chunk, "NBD_REPLY_TYPE_NONE: empty, DONE, last" },
};
NC_SUITE ("structured", tests);
