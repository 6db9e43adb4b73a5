/* Handshake suite: the transmission flags as advertised.  The rule engine
 * judges every flags field (HAS_FLAGS, DF only with structured replies or
 * extended headers, FAST_ZERO only with WRITE_ZEROES, BLOCK_STAT_PAYLOAD
 * only with extended headers); these tests reach each negotiated state
 * and check that an advertised feature is really there.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"

static void
log_flags (struct nc_ctx *t, const char *when, uint16_t eflags)
{
  char fb[200];

  nbdp_flags_str (fb, sizeof fb, eflags);
  nc_log (t, "%s: transmission flags 0x%04x (%s)", when, eflags, fb);
}

static void
test_flags_plain (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0);
  log_flags (t, "NBD_OPT_INFO", c->s.opt.eflags);
  hs_go (t, c, NULL, 0, "OPT-GO-12");
  log_flags (t, "NBD_OPT_GO", c->s.eflags);
}

/* With structured replies: DF may appear; if it does, READ takes it. */
static void
test_flags_structured (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result r;
  uint32_t rep = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                    hs_rep (rep));
  hs_go (t, c, NULL, 0, "OPT-GO-12");
  log_flags (t, "NBD_OPT_GO after structured replies", c->s.eflags);
  if (!(c->s.eflags & NBD_FLAG_SEND_DF)) {
    nc_info (t, "structured replies without NBD_FLAG_SEND_DF");
    return;
  }
  nc_cmd (t, c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0,
          c->s.export_size < 65536 ? c->s.export_size : 65536, NULL, NULL,
          &r);
  nc_expect (t, r.complete && r.error == 0, "NBD_FLAG_SEND_DF advertised: "
             "READ of 64 KiB with NBD_CMD_FLAG_DF got %s, expected success",
             nc_errstr (&r));
}

/* With extended headers and no meta context: no BLOCK_STAT_PAYLOAD. */
static void
test_flags_extended (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t rep = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                    hs_rep (rep));
  hs_go (t, c, NULL, 0, "EH-OPT-2");
  log_flags (t, "NBD_OPT_GO after extended headers", c->s.eflags);
  nc_expect (t, !(c->s.eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD),
             "NBD_OPT_GO with extended headers but no meta context "
             "selected: flags 0x%04x include BLOCK_STAT_PAYLOAD; expected "
             "it clear", c->s.eflags);
}

/* Flags before and after structured replies, on INFO: DF only after. */
static void
test_flags_info_states (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t rep = hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0);

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_INFO answered with %s", hs_rep (rep));
  log_flags (t, "NBD_OPT_INFO before structured replies", c->s.opt.eflags);
  rep = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                    hs_rep (rep));
  hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0);
  log_flags (t, "NBD_OPT_INFO after structured replies", c->s.opt.eflags);
}

/* A writable export in transmission, or UNSUPPORTED. */
static struct nc_conn *
open_writable (struct nc_ctx *t, uint16_t need, const char *flagname)
{
  struct nc_conn *c = nc_open (t, NULL);

  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_unsupported (t, "the export is read-only (flags 0x%04x)",
                    c->s.eflags);
  if (need && !(c->s.eflags & need))
    nc_unsupported (t, "%s is not advertised (flags 0x%04x)", flagname,
                    c->s.eflags);
  return c;
}

static void
expect_ok (struct nc_ctx *t, struct nc_conn *c, const char *flagname,
           uint16_t cmd, uint16_t flags, uint64_t off, uint64_t count,
           const void *wbuf)
{
  struct nc_result r;
  char nb[40];

  nc_cmd (t, c, cmd, flags, off, count, wbuf, NULL, &r);
  nc_expect (t, r.complete && r.error == 0, "%s advertised: %s flags "
             "0x%04x offset %" PRIu64 " count %" PRIu64 " got %s, expected "
             "success", flagname,
             nbdp_cmd_str (nb, sizeof nb, cmd),
             flags, off, count, nc_errstr (&r));
}

static void
test_flag_flush (struct nc_ctx *t)
{
  struct nc_conn *c = open_writable (t, NBD_FLAG_SEND_FLUSH,
                                     "NBD_FLAG_SEND_FLUSH");

  expect_ok (t, c, "NBD_FLAG_SEND_FLUSH", NBD_CMD_FLUSH, 0, 0, 0, NULL);
}

static void
test_flag_fua (struct nc_ctx *t)
{
  struct nc_conn *c = open_writable (t, NBD_FLAG_SEND_FUA,
                                     "NBD_FLAG_SEND_FUA");
  static unsigned char buf[65536];   /* aligned to any minimum block */

  memset (buf, 0xa5, sizeof buf);
  expect_ok (t, c, "NBD_FLAG_SEND_FUA", NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0,
             sizeof buf, buf);
}

static void
test_flag_trim (struct nc_ctx *t)
{
  struct nc_conn *c = open_writable (t, NBD_FLAG_SEND_TRIM,
                                     "NBD_FLAG_SEND_TRIM");

  expect_ok (t, c, "NBD_FLAG_SEND_TRIM", NBD_CMD_TRIM, 0, 0, 65536, NULL);
}

static void
test_flag_write_zeroes (struct nc_ctx *t)
{
  struct nc_conn *c = open_writable (t, NBD_FLAG_SEND_WRITE_ZEROES,
                                     "NBD_FLAG_SEND_WRITE_ZEROES");

  expect_ok (t, c, "NBD_FLAG_SEND_WRITE_ZEROES", NBD_CMD_WRITE_ZEROES, 0, 0,
             65536, NULL);
  expect_ok (t, c, "NBD_FLAG_SEND_WRITE_ZEROES", NBD_CMD_WRITE_ZEROES,
             NBD_CMD_FLAG_NO_HOLE, 65536, 65536, NULL);
}

/* FAST_ZERO: success, or NBD_ENOTSUP (allowed even when advertised). */
static void
test_flag_fast_zero (struct nc_ctx *t)
{
  struct nc_conn *c = open_writable (t, NBD_FLAG_SEND_FAST_ZERO,
                                     "NBD_FLAG_SEND_FAST_ZERO");
  struct nc_result r;

  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 65536,
          NULL, NULL, &r);
  if (r.complete && r.error == NBD_ENOTSUP) {
    nc_info (t, "NBD_CMD_FLAG_FAST_ZERO advertised, request failed with "
             "NBD_ENOTSUP (allowed)");
    return;
  }
  nc_expect (t, r.complete && r.error == 0, "NBD_FLAG_SEND_FAST_ZERO "
             "advertised: WRITE_ZEROES with FAST_ZERO got %s, expected "
             "success or NBD_ENOTSUP", nc_errstr (&r));
}

/* SEND_CACHE does not promise success: a failure is recorded. */
static void
test_flag_cache (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  struct nc_result r;

  if (!(c->s.eflags & NBD_FLAG_SEND_CACHE))
    nc_unsupported (t, "NBD_FLAG_SEND_CACHE is not advertised (flags "
                    "0x%04x)", c->s.eflags);
  nc_cmd (t, c, NBD_CMD_CACHE, 0, 0, 65536, NULL, NULL, &r);
  if (!r.complete)
    nc_expect (t, false, "NBD_FLAG_SEND_CACHE advertised: CACHE of 64 KiB "
               "got no reply (%s)", nc_errstr (&r));
  else if (r.error)
    nc_info (t, "NBD_FLAG_SEND_CACHE advertised: CACHE failed with %s "
             "(allowed: the flag does not promise success)",
             nc_errstr (&r));
}

/* READ_ONLY: writes fail.  The configured export or --ro-export. */
static void
test_flag_read_only (struct nc_ctx *t)
{
  struct nc_open_opts o = { .export_name = NULL };
  struct nc_conn *c = nc_open (t, &o);
  static unsigned char buf[65536];   /* aligned to any minimum block */
  struct nc_result r;

  if (!(c->s.eflags & NBD_FLAG_READ_ONLY)) {
    if (t->cfg->ro_export == NULL)
      nc_unsupported (t, "the export is writable and no --ro-export was "
                      "given");
    nbdp_client_close (c->c);
    o.export_name = t->cfg->ro_export;
    c = nc_open (t, &o);
    if (!(c->s.eflags & NBD_FLAG_READ_ONLY))
      nc_unsupported (t, "--ro-export \"%s\" is not marked read-only (flags "
                      "0x%04x)", t->cfg->ro_export, c->s.eflags);
  }
  memset (buf, 0x5a, sizeof buf);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 0, sizeof buf, buf, NULL, &r);
  nc_expect (t, r.complete && r.error != 0, "NBD_FLAG_READ_ONLY set: WRITE "
             "of 64 KiB at 0 got %s, expected an error", nc_errstr (&r));
  if (c->s.eflags & NBD_FLAG_SEND_TRIM) {
    nc_cmd (t, c, NBD_CMD_TRIM, 0, 0, sizeof buf, NULL, NULL, &r);
    nc_expect (t, r.complete && r.error != 0, "NBD_FLAG_READ_ONLY set: TRIM "
               "of 64 KiB at 0 got %s, expected an error",
               nc_errstr (&r));
  }
  if (c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES) {
    nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, 0, 0, sizeof buf, NULL, NULL, &r);
    nc_expect (t, r.complete && r.error != 0, "NBD_FLAG_READ_ONLY set: "
               "WRITE_ZEROES of 64 KiB at 0 got %s, expected an error",
               nc_errstr (&r));
  }
}

/* Maximum interoperability: a writable export offers FLUSH and FUA. */
static void
test_interop_flush_fua (struct nc_ctx *t)
{
  struct nc_conn *c = open_writable (t, 0, NULL);

  nc_expect (t, (c->s.eflags & NBD_FLAG_SEND_FLUSH) &&
             (c->s.eflags & NBD_FLAG_SEND_FUA), "writable export: flags "
             "0x%04x lack %s%s; expected both for data safety",
             c->s.eflags,
             c->s.eflags & NBD_FLAG_SEND_FLUSH ? "" : "SEND_FLUSH ",
             c->s.eflags & NBD_FLAG_SEND_FUA ? "" : "SEND_FUA");
}

static const struct nc_test tests[] = {
  { "flags-plain", "FLAG-TX-4 FLAG-TX-9 FLAG-TX-11 EH-FLAG-1 OPT-SR-5 "
    "EH-OPT-15",
    NBDP_MUST, test_flags_plain,
    "flags without structured replies: HAS_FLAGS, no DF, no BS payload" },
  { "flags-structured", "FLAG-TX-9 FLAG-TX-2 FLAG-TX-11 EH-FLAG-1 "
    "EH-OPT-15",
    NBDP_MUST, test_flags_structured,
    "flags with structured replies; an advertised DF works" },
  { "flags-extended", "EH-FLAG-2 EH-FLAG-1 FLAG-TX-9", NBDP_SHOULD,
    test_flags_extended,
    "flags with extended headers and no context: no BLOCK_STAT_PAYLOAD" },
  { "flags-info-states", "FLAG-TX-9 FLAG-TX-4", NBDP_MUST,
    test_flags_info_states,
    "INFO before and after structured replies: DF only after" },
  { "flag-flush", "FLAG-TX-2", NBDP_MUST, test_flag_flush,
    "advertised SEND_FLUSH: FLUSH succeeds" },
  { "flag-fua", "FLAG-TX-2", NBDP_MUST, test_flag_fua,
    "advertised SEND_FUA: WRITE with FUA succeeds" },
  { "flag-trim", "FLAG-TX-2", NBDP_MUST, test_flag_trim,
    "advertised SEND_TRIM: TRIM succeeds" },
  { "flag-write-zeroes", "FLAG-TX-2", NBDP_MUST, test_flag_write_zeroes,
    "advertised SEND_WRITE_ZEROES: WRITE_ZEROES (and NO_HOLE) succeed" },
  { "flag-fast-zero", "FLAG-TX-2 FLAG-TX-11 FLAG-TX-12", NBDP_MUST,
    test_flag_fast_zero,
    "advertised SEND_FAST_ZERO: success or NBD_ENOTSUP" },
  { "flag-cache", "FLAG-TX-2", NBDP_MUST, test_flag_cache,
    "advertised SEND_CACHE: CACHE answered (failure recorded)" },
  { "interop-flush-fua", "COMPAT-MAX-1", NBDP_SHOULD,
    test_interop_flush_fua, "a writable export advertises FLUSH and FUA" },
  { "flag-read-only", "FLAG-TX-6 FLAG-TX-5", NBDP_MUST, test_flag_read_only,
    "READ_ONLY export: WRITE, TRIM, WRITE_ZEROES fail" },
};
NC_SUITE ("handshake", tests);
