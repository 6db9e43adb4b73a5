/* Transmission suite: command flags.  With NBD_FLAG_SEND_FUA every
 * command must accept NBD_CMD_FLAG_FUA; a flag not documented for the
 * command, or an unknown flag, should fail with NBD_EINVAL (the client
 * broke FLAG-CMD-1, so a hard disconnect is allowed too); the session
 * goes on.
 */
#include "txlib.h"

static const char *const base_alloc[] = { "base:allocation" };

/* A command of length len at 0 carrying flags, which must succeed. */
static void
fua_on (struct nc_ctx *t, uint16_t type, uint16_t need, const char *names,
        bool rw)
{
  static const struct nc_open_opts bs = {
    .structured = true, .meta = base_alloc, .n_meta = 1,
  };
  struct nc_conn *c = tx_open (t, type == NBD_CMD_BLOCK_STATUS ? &bs : NULL,
                               NBD_FLAG_SEND_FUA | need, names, rw, 65536);
  uint64_t len = type == NBD_CMD_FLUSH ? 0 : 4096;
  unsigned char w[4096];
  struct nc_result r;
  char what[128];

  if (rw) {
    tx_pattern (w, sizeof w, 0, 20);
    tx_write (t, c, 0, sizeof w, w, 0);
  }
  snprintf (what, sizeof what, "%s 0+%" PRIu64 " with NBD_CMD_FLAG_FUA "
            "(SEND_FUA advertised)", tx_cmd_name (type), len);
  nc_cmd (t, c, type, NBD_CMD_FLAG_FUA, 0, len, NULL,
          type == NBD_CMD_READ ? w : NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "FLAG-CMD-2", TX_VALID, what))
    return;
  if (type == NBD_CMD_WRITE_ZEROES)
    tx_check (t, c, 0, len, NULL, NBDP_MUST, "CMD-WZ-8", what);
  else if (type == NBD_CMD_READ || type == NBD_CMD_CACHE ||
           type == NBD_CMD_FLUSH)
    tx_check_pattern (t, c, 0, 4096, 20, NBDP_MUST, "CMD-WRITE-4", what);
}

static void
test_fua_read (struct nc_ctx *t)
{
  fua_on (t, NBD_CMD_READ, 0, "SEND_FUA", true);
}

static void
test_fua_flush (struct nc_ctx *t)
{
  fua_on (t, NBD_CMD_FLUSH, NBD_FLAG_SEND_FLUSH, "SEND_FUA and SEND_FLUSH",
          true);
}

static void
test_fua_trim (struct nc_ctx *t)
{
  fua_on (t, NBD_CMD_TRIM, NBD_FLAG_SEND_TRIM, "SEND_FUA and SEND_TRIM",
          true);
}

static void
test_fua_wz (struct nc_ctx *t)
{
  fua_on (t, NBD_CMD_WRITE_ZEROES, NBD_FLAG_SEND_WRITE_ZEROES,
          "SEND_FUA and SEND_WRITE_ZEROES", true);
}

static void
test_fua_cache (struct nc_ctx *t)
{
  fua_on (t, NBD_CMD_CACHE, NBD_FLAG_SEND_CACHE, "SEND_FUA and SEND_CACHE",
          true);
}

static void
test_fua_bs (struct nc_ctx *t)
{
  fua_on (t, NBD_CMD_BLOCK_STATUS, 0, "SEND_FUA", false);
}

/* A request carrying a flag that is wrong for it; it should fail with
 * NBD_EINVAL (want_id), at ok_level/ok_id if it succeeds.
 */
static void
flagged (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t type,
         uint16_t flags, uint16_t need, const char *names,
         enum nbdp_level ok_level, const char *ok_id, const char *want_id,
         const char *why)
{
  bool rw = type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
    type == NBD_CMD_WRITE_ZEROES;
  struct nc_conn *c = tx_open (t, o, need, names, rw, 65536);
  uint64_t len = type == NBD_CMD_FLUSH ? 0 : 4096;
  unsigned char w[4096], bad[4096];
  struct nc_result r;
  char what[192];

  if (rw) {
    tx_pattern (w, sizeof w, 0, 21);
    tx_write (t, c, 0, sizeof w, w, 0);
  }
  memset (bad, 0x99, sizeof bad);
  snprintf (what, sizeof what, "%s 0+%" PRIu64 " with command flags 0x%04x "
            "(%s)", tx_cmd_name (type), len, flags, why);
  nc_cmd (t, c, type, flags, 0, len, bad, NULL, &r);
  tx_refused (t, &r, ok_level, ok_id, NBD_EINVAL, 0, want_id, TX_BAD_MUST,
              what);
  tx_alive (t, c, TX_BAD_MUST, what);
  if (type == NBD_CMD_WRITE && r.error)
    tx_check (t, c, 0, sizeof w, w, NBDP_SHOULD, want_id, what);
}

#define WRONG(fn, type, flag, need, names, why)                         \
  static void                                                           \
  fn (struct nc_ctx *t)                                                 \
  {                                                                     \
    flagged (t, NULL, (type), (flag), (need), (names), NBDP_SHOULD,     \
             "ERR-9", "ERR-9", (why));                                  \
  }

WRONG (test_no_hole_read, NBD_CMD_READ, NBD_CMD_FLAG_NO_HOLE, 0, NULL,
       "NO_HOLE is only for WRITE_ZEROES")
WRONG (test_no_hole_write, NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, NULL,
       "NO_HOLE is only for WRITE_ZEROES")
WRONG (test_no_hole_trim, NBD_CMD_TRIM, NBD_CMD_FLAG_NO_HOLE,
       NBD_FLAG_SEND_TRIM, "SEND_TRIM", "NO_HOLE is only for WRITE_ZEROES")
WRONG (test_df_write, NBD_CMD_WRITE, NBD_CMD_FLAG_DF, 0, NULL,
       "DF is only for READ")
WRONG (test_req_one_read, NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE, 0, NULL,
       "REQ_ONE is only for BLOCK_STATUS")
WRONG (test_req_one_write, NBD_CMD_WRITE, NBD_CMD_FLAG_REQ_ONE, 0, NULL,
       "REQ_ONE is only for BLOCK_STATUS")
WRONG (test_fast_zero_write, NBD_CMD_WRITE, NBD_CMD_FLAG_FAST_ZERO, 0, NULL,
       "FAST_ZERO is only for WRITE_ZEROES")
WRONG (test_fast_zero_trim, NBD_CMD_TRIM, NBD_CMD_FLAG_FAST_ZERO,
       NBD_FLAG_SEND_TRIM, "SEND_TRIM", "FAST_ZERO is only for WRITE_ZEROES")
WRONG (test_payload_len_compact, NBD_CMD_READ, NBD_CMD_FLAG_PAYLOAD_LEN, 0,
       NULL, "PAYLOAD_LEN without extended headers")

/* DF without structured replies: SEND_DF cannot be advertised
 * (FLAG-TX-9, judged by the rules), so DF is not valid.
 */
static void
test_df_simple_read (struct nc_ctx *t)
{
  flagged (t, NULL, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, NULL, NBDP_SHOULD,
           "ERR-9", "ERR-9", "DF without structured replies");
}

/* FUA without SEND_FUA. */
static void
test_fua_unadvertised (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);

  if (c->s.eflags & NBD_FLAG_SEND_FUA)
    nc_unsupported (t, "the server advertises SEND_FUA (flags 0x%04x): FUA "
                    "is valid", c->s.eflags);
  flagged (t, NULL, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, NULL, NBDP_SHOULD,
           "ERR-9", "ERR-9", "FUA without SEND_FUA");
}

/* Unknown flags. */
#define UNKNOWN(fn, type, flag, need, names, lvl, id)                   \
  static void                                                           \
  fn (struct nc_ctx *t)                                                 \
  {                                                                     \
    flagged (t, NULL, (type), (flag), (need), (names), (lvl), (id),     \
             "ERR-8", "an undefined flag");                             \
  }

UNKNOWN (test_unknown_write, NBD_CMD_WRITE, 0x0040, 0, NULL, NBDP_SHOULD,
         "ERR-8")
UNKNOWN (test_unknown_flush, NBD_CMD_FLUSH, 0x8000, NBD_FLAG_SEND_FLUSH,
         "SEND_FLUSH", NBDP_SHOULD, "ERR-8")
UNKNOWN (test_unknown_trim, NBD_CMD_TRIM, 0x0100, NBD_FLAG_SEND_TRIM,
         "SEND_TRIM", NBDP_SHOULD, "ERR-8")
UNKNOWN (test_unknown_wz, NBD_CMD_WRITE_ZEROES, 0x0200,
         NBD_FLAG_SEND_WRITE_ZEROES, "SEND_WRITE_ZEROES", NBDP_SHOULD,
         "ERR-8")
UNKNOWN (test_unknown_cache, NBD_CMD_CACHE, 0x0400, NBD_FLAG_SEND_CACHE,
         "SEND_CACHE", NBDP_MUST, "CMD-CACHE-6")

/* Every undefined flag bit on READ, one at a time. */
static void
test_unknown_bits (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  uint64_t len = c->s.export_size < 512 ? c->s.export_size : 512;
  unsigned refused = 0;

  for (int bit = 6; bit < 16; bit++) {
    struct nc_result r;
    char what[96];
    snprintf (what, sizeof what, "READ 0+%" PRIu64 " with undefined command "
              "flag bit %d (0x%04x)", len, bit, 1u << bit);
    nc_cmd (t, c, NBD_CMD_READ, 1u << bit, 0, len, NULL, NULL, &r);
    if (tx_refused (t, &r, NBDP_SHOULD, "ERR-8", NBD_EINVAL, 0, "ERR-8",
                    TX_BAD_MUST, what))
      refused++;
  }
  tx_alive (t, c, TX_BAD_MUST, "READs with undefined flags");
}

static const struct nc_test tests[] = {
  { "fua-read", "FLAG-CMD-2 FLAG-CMD-6 FLAG-CMD-4", NBDP_MUST, test_fua_read,
    "READ with FUA is accepted when SEND_FUA is advertised" },
  { "fua-flush", "FLAG-CMD-2 FLAG-CMD-6", NBDP_MUST, test_fua_flush,
    "FLUSH with FUA is accepted when SEND_FUA is advertised" },
  { "fua-trim", "FLAG-CMD-2 FLAG-CMD-5 TX-ORD-3", NBDP_MUST, test_fua_trim,
    "TRIM with FUA is accepted when SEND_FUA is advertised" },
  { "fua-write-zeroes", "FLAG-CMD-2 FLAG-CMD-5 TX-ORD-3 CMD-WZ-8",
    NBDP_MUST, test_fua_wz, "WRITE_ZEROES with FUA is accepted and zeroes" },
  { "fua-cache", "FLAG-CMD-2 FLAG-CMD-6 CMD-CACHE-3", NBDP_MUST,
    test_fua_cache, "CACHE with FUA is accepted when SEND_FUA is advertised" },
  { "fua-block-status", "FLAG-CMD-2 FLAG-CMD-6", NBDP_MUST, test_fua_bs,
    "BLOCK_STATUS with FUA is accepted when SEND_FUA is advertised" },
  { "fua-unadvertised", "ERR-9 FLAG-TX-3", NBDP_SHOULD,
    test_fua_unadvertised, "FUA without SEND_FUA fails with NBD_EINVAL" },
  { "flag-no-hole-read", "ERR-9 FLAG-CMD-1", NBDP_SHOULD, test_no_hole_read,
    "NO_HOLE on READ fails with NBD_EINVAL" },
  { "flag-no-hole-write", "ERR-9 FLAG-CMD-1", NBDP_SHOULD,
    test_no_hole_write, "NO_HOLE on WRITE fails with NBD_EINVAL" },
  { "flag-no-hole-trim", "ERR-9 FLAG-CMD-1", NBDP_SHOULD, test_no_hole_trim,
    "NO_HOLE on TRIM fails with NBD_EINVAL" },
  { "flag-df-write", "ERR-9 FLAG-CMD-1", NBDP_SHOULD, test_df_write,
    "DF on WRITE fails with NBD_EINVAL" },
  { "flag-df-simple", "ERR-9 FLAG-CMD-11 FLAG-TX-9", NBDP_SHOULD,
    test_df_simple_read,
    "DF on READ without structured replies fails with NBD_EINVAL" },
  { "flag-req-one-read", "ERR-9 FLAG-CMD-1", NBDP_SHOULD, test_req_one_read,
    "REQ_ONE on READ fails with NBD_EINVAL" },
  { "flag-req-one-write", "ERR-9 FLAG-CMD-1", NBDP_SHOULD,
    test_req_one_write, "REQ_ONE on WRITE fails with NBD_EINVAL" },
  { "flag-fast-zero-write", "ERR-9 FLAG-CMD-1", NBDP_SHOULD,
    test_fast_zero_write, "FAST_ZERO on WRITE fails with NBD_EINVAL" },
  { "flag-fast-zero-trim", "ERR-9 FLAG-CMD-1", NBDP_SHOULD,
    test_fast_zero_trim, "FAST_ZERO on TRIM fails with NBD_EINVAL" },
  { "flag-payload-len-compact", "ERR-9 FLAG-CMD-1", NBDP_SHOULD,
    test_payload_len_compact,
    "PAYLOAD_LEN on a compact READ fails with NBD_EINVAL" },
  { "unknown-flag-write", "ERR-8", NBDP_SHOULD, test_unknown_write,
    "WRITE with an undefined flag fails, its payload is consumed" },
  { "unknown-flag-flush", "ERR-8", NBDP_SHOULD, test_unknown_flush,
    "FLUSH with an undefined flag fails with NBD_EINVAL" },
  { "unknown-flag-trim", "ERR-8", NBDP_SHOULD, test_unknown_trim,
    "TRIM with an undefined flag fails with NBD_EINVAL" },
  { "unknown-flag-write-zeroes", "ERR-8", NBDP_SHOULD, test_unknown_wz,
    "WRITE_ZEROES with an undefined flag fails with NBD_EINVAL" },
  { "unknown-flag-cache", "CMD-CACHE-6 ERR-8", NBDP_MUST, test_unknown_cache,
    "CACHE with an undefined flag is rejected" },
  { "unknown-flag-bits", "ERR-8", NBDP_SHOULD, test_unknown_bits,
    "each undefined flag bit on READ fails with NBD_EINVAL" },
};
NC_SUITE ("transmission", tests);
