/* Handshake suite: size constraints as advertised (or not) during the
 * handshake, and whether the server lives by them: the defaults when
 * nothing was advertised, clean failures for misaligned requests.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"

static const uint16_t want_bs[] = { NBD_INFO_BLOCK_SIZE };

/* Nothing advertised: the default constraints hold (1-byte granularity),
 * else the server broke INFO-BSIZE-1 by not telling.
 */
static void
test_default_constraints (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  unsigned char w[3] = { 0x11, 0x22, 0x33 }, rb[8];
  struct nc_result r;

  hs_go (t, c, want_bs, 1, "OPT-GO-12");
  if (c->s.export_size < 4096)
    nc_unsupported (t, "export of %" PRIu64 " bytes is too small",
                    c->s.export_size);
  if (c->s.have_block_size) {
    /* Advertised: an aligned request of the preferred size works. */
    uint32_t pref = c->s.pref_block;
    nc_cmd (t, c, NBD_CMD_READ, 0, pref, pref <= c->s.export_size / 2
            ? pref : c->s.min_block, NULL, NULL, &r);
    nc_expect (t, r.complete && r.error == 0, "advertised block sizes %"
               PRIu32 "/%" PRIu32 "/%" PRIu32 ": an aligned READ got %s, "
               "expected success", c->s.min_block, pref, c->s.max_payload,
               nc_errstr (&r));
    return;
  }
  nc_cmd (t, c, NBD_CMD_READ, 0, 1, 3, NULL, NULL, &r);
  nc_expect (t, r.complete && r.error == 0, "no NBD_INFO_BLOCK_SIZE "
             "although requested (default constraints: minimum block 1): "
             "READ of 3 bytes at offset 1 got %s, expected success",
             nc_errstr (&r));
  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    return;
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 4097, sizeof w, w, NULL, &r);
  if (!nc_expect (t, r.complete && r.error == 0, "no NBD_INFO_BLOCK_SIZE "
                  "although requested: WRITE of 3 bytes at offset 4097 got "
                  "%s, expected success", nc_errstr (&r)))
    return;
  nc_cmd (t, c, NBD_CMD_READ, 0, 4096, 5, NULL, rb, &r);
  nc_expect (t, r.complete && r.error == 0 && memcmp (rb + 1, w, 3) == 0,
             "WRITE of 11 22 33 at offset 4097 then READ of 5 bytes at 4096 "
             "got %s %02x %02x %02x %02x %02x; expected xx 11 22 33 xx",
             nc_errstr (&r), rb[0], rb[1], rb[2], rb[3], rb[4]);
}

/* 32 MiB payloads: the default maximum; never a reason to hang up. */
static void
test_payload_32m (struct nc_ctx *t)
{
  const uint64_t len = NBD_DEFAULT_MAX_PAYLOAD;
  struct nc_conn *c = hs_start (t);
  struct nc_result r;

  hs_go (t, c, want_bs, 1, "OPT-GO-12");
  if (c->s.export_size < len)
    nc_unsupported (t, "export of %" PRIu64 " bytes is smaller than 32 MiB",
                    c->s.export_size);
  nc_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL, NULL, &r);
  if (c->s.have_block_size && c->s.max_payload < len) {
    nc_expect (t, r.complete, "maximum payload %" PRIu32 " advertised; a "
               "READ of 32 MiB got no reply (%s); expected an error reply, "
               "not a disconnect", c->s.max_payload, nc_errstr (&r));
    if (r.complete)
      nc_info (t, "READ of 32 MiB above the advertised maximum %" PRIu32
               ": %s", c->s.max_payload, nc_errstr (&r));
  }
  else
    nc_expect (t, r.complete && r.error == 0, "maximum payload %s%" PRIu32
               ": READ of 32 MiB at 0 got %s, expected success",
               c->s.have_block_size ? "" : "not advertised, default ",
               c->s.have_block_size ? c->s.max_payload
               : NBD_DEFAULT_MAX_PAYLOAD, nc_errstr (&r));
  if (r.complete) {
    hs_read_ok (t, c, &r);
    nc_expect (t, r.complete && r.error == 0, "after the 32 MiB READ, a "
               "64 KiB READ got %s; expected the connection to go on",
               nc_errstr (&r));
  }
}

/* A request past the end fails with NBD_EINVAL. */
static void
test_past_end (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result r;
  uint32_t blk;

  hs_go (t, c, want_bs, 1, "OPT-GO-12");
  blk = c->s.have_block_size && c->s.min_block > 512 ? c->s.min_block : 512;
  if (c->s.export_size < 2 * blk)
    nc_unsupported (t, "export too small");
  nc_cmd (t, c, NBD_CMD_READ, 0, c->s.export_size - blk, 2 * blk, NULL,
          NULL, &r);
  nc_expect (t, r.complete && r.error == NBD_EINVAL, "READ of %" PRIu32
             " bytes at %" PRIu64 " (export size %" PRIu64 ", reaching past "
             "the end): got %s, expected NBD_EINVAL", 2 * blk,
             c->s.export_size - blk, c->s.export_size, nc_errstr (&r));
  if (r.complete) {
    hs_read_ok (t, c, &r);
    nc_expect (t, r.complete && r.error == 0, "after a READ past the end, "
               "a 64 KiB READ got %s; expected the connection to go on",
               nc_errstr (&r));
  }
}

/* Misaligned to an advertised minimum block size: NBD_EINVAL. */
static void
test_misaligned (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result r;
  uint32_t min;

  hs_go (t, c, want_bs, 1, "OPT-GO-12");
  if (!c->s.have_block_size || c->s.min_block <= 1)
    nc_unsupported (t, "no minimum block size above 1 advertised");
  min = c->s.min_block;
  if (c->s.export_size < 2 * (uint64_t) min)
    nc_unsupported (t, "export too small");
  nc_cmd (t, c, NBD_CMD_READ, 0, 1, min, NULL, NULL, &r);
  nc_expect (t, r.complete && r.error == NBD_EINVAL, "minimum block size %"
             PRIu32 " advertised: READ of %" PRIu32 " bytes at offset 1 got "
             "%s, expected NBD_EINVAL", min, min, nc_errstr (&r));
}

/* Constraints the client did not agree to (GO without the request): a
 * misaligned write either fails cleanly or works without damage.
 */
static void
test_unnegotiated (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  unsigned char *before, *after, w = 0xc3;
  struct nc_result r;
  uint32_t min, rep;

  rep = hs_info (t, c, NBD_OPT_INFO, hs_export (t), want_bs, 1);
  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_INFO answered with %s", hs_rep (rep));
  if (!c->s.opt.have_block_size || c->s.opt.min_block <= 1)
    nc_unsupported (t, "no minimum block size above 1 advertised");
  min = c->s.opt.min_block;
  rep = hs_info (t, c, NBD_OPT_GO, hs_export (t), NULL, 0);
  if (rep == NBD_REP_ERR_BLOCK_SIZE_REQD)
    nc_unsupported (t, "NBD_OPT_GO without NBD_INFO_BLOCK_SIZE is refused "
                    "(allowed with non-default constraints)");
  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_GO answered with %s", hs_rep (rep));
  hs_enter (t, c);
  if ((c->s.eflags & NBD_FLAG_READ_ONLY) || c->s.export_size < 2 * min)
    nc_unsupported (t, "export read-only or too small");
  before = malloc (min);
  after = malloc (min);
  if (before == NULL || after == NULL)
    nc_error (t, "out of memory");
  nc_cmd (t, c, NBD_CMD_READ, 0, min, min, NULL, before, &r);
  if (!r.complete || r.error)
    nc_error (t, "aligned READ failed: %s", nc_errstr (&r));
  nc_cmd (t, c, NBD_CMD_WRITE, 0, min + 1, 1, &w, NULL, &r);
  if (!r.complete) {
    nc_expect (t, false, "unnegotiated minimum block size %" PRIu32 ": "
               "a 1-byte WRITE at %" PRIu32 " got no reply (%s); expected a "
               "clean error or success", min, min + 1, nc_errstr (&r));
    nc_done (t);
  }
  if (r.error) {
    nc_info (t, "misaligned 1-byte WRITE refused with %s", nc_errstr (&r));
    free (before);
    free (after);
    return;
  }
  nc_cmd (t, c, NBD_CMD_READ, 0, min, min, NULL, after, &r);
  before[1] = w;
  nc_expect (t, r.complete && r.error == 0 &&
             memcmp (before, after, min) == 0, "unnegotiated minimum block "
             "size %" PRIu32 ": a 1-byte WRITE at %" PRIu32 " succeeded, but "
             "the block read back differs from the expected content (%s); "
             "expected no corruption", min, min + 1, nc_errstr (&r));
  free (before);
  free (after);
}

/* Commands without payload may have an effect length above the maximum
 * payload: the server answers (success, NBD_EOVERFLOW or NBD_EINVAL) and
 * does not hang up.
 */
static void
test_oversized_effect (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result r;
  uint64_t max, len;
  uint16_t cmd;

  hs_go (t, c, want_bs, 1, "OPT-GO-12");
  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_unsupported (t, "the export is read-only");
  if (c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES)
    cmd = NBD_CMD_WRITE_ZEROES;
  else if (c->s.eflags & NBD_FLAG_SEND_TRIM)
    cmd = NBD_CMD_TRIM;
  else
    nc_unsupported (t, "neither WRITE_ZEROES nor TRIM is advertised");
  max = nbdp_session_max_payload (&c->s);
  len = c->s.export_size & ~(uint64_t) 65535;   /* aligned to any minimum */
  if (len <= max)
    nc_unsupported (t, "export of %" PRIu64 " bytes is not larger than the "
                    "maximum payload %" PRIu64, c->s.export_size, max);
  nc_cmd (t, c, cmd, 0, 0, len, NULL, NULL, &r);
  if (!nc_expect (t, r.complete, "%s of %" PRIu64 " bytes (above the "
                  "maximum payload %" PRIu64 "): no reply (%s); expected a "
                  "reply, not a disconnect",
                  cmd == NBD_CMD_TRIM ? "TRIM" : "WRITE_ZEROES", len, max,
                  nc_errstr (&r)))
    return;
  if (r.error)
    nc_info (t, "%s of %" PRIu64 " bytes (maximum payload %" PRIu64 "): "
             "%s", cmd == NBD_CMD_TRIM ? "TRIM" : "WRITE_ZEROES", len, max,
             nc_errstr (&r));
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.error == 0, "after the oversized request, "
             "a 64 KiB READ got %s; expected the connection to go on",
             nc_errstr (&r));
}

static const struct nc_test tests[] = {
  { "default-constraints", "INFO-BSIZE-1 SIZE-4 SIZE-3 SIZE-7", NBDP_MUST,
    test_default_constraints,
    "no block sizes advertised: 1-byte granularity works" },
  { "payload-32m", "SIZE-7 SIZE-24", NBDP_SHOULD, test_payload_32m,
    "32 MiB READ works (or fails cleanly above an advertised maximum)" },
  { "oversized-effect-length", "SIZE-29 SIZE-30", NBDP_SHOULD,
    test_oversized_effect,
    "WRITE_ZEROES/TRIM above the maximum payload: a reply, no hang-up" },
  { "past-end", "SIZE-34", NBDP_SHOULD, test_past_end,
    "READ past the end of the export fails with NBD_EINVAL" },
  { "misaligned", "SIZE-34", NBDP_SHOULD, test_misaligned,
    "READ misaligned to the advertised minimum fails with NBD_EINVAL" },
  { "unnegotiated-constraints", "SIZE-11 OPT-GO-10", NBDP_MUST,
    test_unnegotiated,
    "unagreed constraints: misaligned WRITE fails cleanly or is exact" },
};
NC_SUITE ("handshake", tests);
