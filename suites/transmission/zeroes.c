/* Transmission suite: NBD_CMD_WRITE_ZEROES and its flags NO_HOLE and
 * FAST_ZERO (the basic case is in commands.c).
 */
#include "txlib.h"

#define WZ_FLAGS (NBD_FLAG_SEND_WRITE_ZEROES)
#define WZ_NAME "SEND_WRITE_ZEROES"

/* ENOTSUP without FAST_ZERO: MUST NOT with SEND_FAST_ZERO advertised,
 * SHOULD NOT without.
 */
static void
no_enotsup (struct nc_ctx *t, const struct nc_conn *c,
            const struct nc_result *r, const char *what)
{
  if (r->complete && r->error == NBD_ENOTSUP) {
    if (c->s.eflags & NBD_FLAG_SEND_FAST_ZERO)
      nc_fail (t, "CMD-WZ-11", "%s (no FAST_ZERO flag): got NBD_ENOTSUP, "
               "which is only for fast-zero requests", what);
    else
      nc_should (t, "CMD-WZ-15", "%s: got NBD_ENOTSUP although "
                 "SEND_FAST_ZERO is not advertised", what);
  }
}

/* Pattern over 0+16384, WRITE_ZEROES (flags) over off+len, check. */
static void
zero_range (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t flags,
            uint64_t off, uint64_t len, const char *id)
{
  struct nc_conn *c = tx_open (t, o, WZ_FLAGS, WZ_NAME, true, 65536);
  unsigned char w[16384];
  struct nc_result r;
  char what[160];

  tx_pattern (w, sizeof w, 0, 30);
  tx_write (t, c, 0, sizeof w, w, 0);
  snprintf (what, sizeof what, "WRITE 0+16384 (pattern), then WRITE_ZEROES "
            "%" PRIu64 "+%" PRIu64 " flags 0x%x%s", off, len, flags,
            c->s.structured ? " (structured replies)" : "");
  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, flags, off, len, NULL, NULL, &r);
  no_enotsup (t, c, &r, what);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, what);
  if (r.error && (off % 512 || len % 512)) {
    tx_unaligned_refused (t, c, &r, off, len, what);
    tx_check (t, c, 0, sizeof w, w, NBDP_MUST, "SIZE-11", what);
    return;
  }
  if (!tx_ok (t, &r, NBDP_MUST, id, TX_VALID, what))
    return;
  memset (w + off, 0, len);
  tx_check (t, c, 0, sizeof w, w, NBDP_MUST, "CMD-WZ-8", what);
}

static void
test_wz_unaligned (struct nc_ctx *t)
{
  zero_range (t, NULL, 0, 1001, 5000, "CMD-WZ-3");
}

static void
test_wz_no_hole (struct nc_ctx *t)
{
  zero_range (t, NULL, NBD_CMD_FLAG_NO_HOLE, 4096, 8192, "FLAG-CMD-9");
}

static void
test_wz_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  zero_range (t, &o, 0, 4096, 8192, "CMD-WZ-3");
}

static void
test_wz_extended (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true };
  zero_range (t, &o, 0, 4096, 8192, "CMD-WZ-3");
}

/* WRITE_ZEROES with NO_HOLE: base:allocation should not report a hole.
 * A SHOULD-level finding: NBD_STATE_HOLE set means "future writes may
 * fail or fragment" (the opposite of fully provisioned), but servers
 * that learn allocation from the file system (SEEK_DATA) may see an
 * fallocated, unwritten range as a hole although it is provisioned.
 */
static void
test_wz_no_hole_allocated (struct nc_ctx *t)
{
  static const char *const q[] = { "base:allocation" };
  static const struct nc_open_opts o = {
    .structured = true, .meta = q, .n_meta = 1,
  };
  struct nc_conn *c = tx_open (t, &o, WZ_FLAGS, WZ_NAME, true, 1048576);
  const uint64_t off = 524288, len = 262144;
  struct nc_result r;
  bool hole = false;
  uint64_t hole_at = 0;

  tx_write_pattern (t, c, off, len, 31);
  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, off, len, NULL,
          NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "FLAG-CMD-9", TX_VALID, "WRITE_ZEROES "
              "524288+262144 with NO_HOLE"))
    return;
  nc_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, off, len, NULL, NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-WZ-10", TX_VALID, "BLOCK_STATUS "
              "524288+262144 after WRITE_ZEROES with NO_HOLE"))
    return;
  for (size_t i = 0; i < r.n_extents; i++)
    if (r.extents[i].offset < off + len && (r.extents[i].flags & 1)) {
      hole = true;
      hole_at = r.extents[i].offset;
      break;
    }
  nc_expect (t, !hole, "WRITE 524288+262144, WRITE_ZEROES 524288+262144 "
             "with NBD_CMD_FLAG_NO_HOLE, then BLOCK_STATUS: base:allocation "
             "reports a hole (NBD_STATE_HOLE) at offset %" PRIu64 "; "
             "expected the range to stay allocated", hole_at);
  tx_check (t, c, off, len, NULL, NBDP_MUST, "CMD-WZ-8",
            "WRITE_ZEROES with NO_HOLE");
}

/* Several forms without FAST_ZERO: none may fail with NBD_ENOTSUP. */
static void
test_wz_not_enotsup (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, WZ_FLAGS, WZ_NAME, true, 1048576);
  static const struct { uint16_t flags; uint64_t off, len; } v[] = {
    { 0, 0, 65536 }, { NBD_CMD_FLAG_NO_HOLE, 0, 65536 },
    { 0, 511, 1025 }, { NBD_CMD_FLAG_NO_HOLE, 511, 1025 },
    { 0, 65536, 983040 },
  };

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    struct nc_result r;
    char what[128];
    snprintf (what, sizeof what, "WRITE_ZEROES %" PRIu64 "+%" PRIu64
              " flags 0x%x", v[i].off, v[i].len, v[i].flags);
    nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, v[i].flags, v[i].off, v[i].len,
            NULL, NULL, &r);
    if (!r.complete)
      tx_gone (t, &r, TX_VALID, what);
    no_enotsup (t, c, &r, what);
    if (r.error && r.error != NBD_ENOTSUP)
      nc_info (t, "%s failed with %s", what, nc_errstr (&r));
  }
}

/* FAST_ZERO: success (then zeroes) or a fast NBD_ENOTSUP (then, ideally,
 * nothing changed).
 */
static void
fast_zero (struct nc_ctx *t, uint16_t flags, uint64_t len)
{
  struct nc_conn *c = tx_open (t, NULL, WZ_FLAGS | NBD_FLAG_SEND_FAST_ZERO,
                               "SEND_WRITE_ZEROES and SEND_FAST_ZERO", true,
                               65536);
  unsigned char w[65536];
  struct nc_result r;
  char what[160];

  if (len == 0)
    len = c->s.export_size;
  tx_pattern (w, sizeof w, 0, 32);
  tx_write (t, c, 0, sizeof w, w, 0);
  snprintf (what, sizeof what, "WRITE 0+65536, then WRITE_ZEROES 0+%" PRIu64
            " flags 0x%x (FAST_ZERO)", len, flags);
  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, flags, 0, len, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, what);
  if (r.error == 0) {
    nc_info (t, "%s succeeded", what);
    tx_check (t, c, 0, sizeof w, NULL, NBDP_MUST, "CMD-WZ-8", what);
  }
  else if (r.error == NBD_ENOTSUP) {
    nc_info (t, "%s failed with NBD_ENOTSUP (allowed)", what);
    tx_check (t, c, 0, sizeof w, w, NBDP_SHOULD, "CMD-WZ-12", what);
  }
  else if (r.error == NBD_EOVERFLOW)
    nc_should (t, "CMD-WZ-12", "%s: got NBD_EOVERFLOW, which a fast zero "
               "should not use whatever the length", what);
  else
    nc_fail (t, "FLAG-CMD-14", "%s: got %s, expected success or "
             "NBD_ENOTSUP", what, nc_errstr (&r));
  tx_alive (t, c, TX_VALID, what);
}

static void
test_fast_zero (struct nc_ctx *t)
{
  fast_zero (t, NBD_CMD_FLAG_FAST_ZERO, 65536);
}

static void
test_fast_zero_no_hole (struct nc_ctx *t)
{
  fast_zero (t, NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_NO_HOLE, 65536);
}

static void
test_fast_zero_whole (struct nc_ctx *t)
{
  fast_zero (t, NBD_CMD_FLAG_FAST_ZERO, 0);
}

/* FAST_ZERO without SEND_FAST_ZERO: NBD_EINVAL, not NBD_ENOTSUP. */
static void
test_fast_zero_unadvertised (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, WZ_FLAGS, WZ_NAME, true, 65536);
  unsigned char w[8192];
  struct nc_result r;
  const char *what = "WRITE_ZEROES 0+8192 with NBD_CMD_FLAG_FAST_ZERO "
    "(SEND_FAST_ZERO not advertised)";

  if (c->s.eflags & NBD_FLAG_SEND_FAST_ZERO)
    nc_unsupported (t, "the server advertises SEND_FAST_ZERO (flags "
                    "0x%04x)", c->s.eflags);
  tx_pattern (w, sizeof w, 0, 33);
  tx_write (t, c, 0, sizeof w, w, 0);
  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, sizeof w,
          NULL, NULL, &r);
  if (r.complete && r.error == NBD_ENOTSUP)
    nc_should (t, "CMD-WZ-15", "%s: got NBD_ENOTSUP, expected NBD_EINVAL",
               what);
  else
    tx_refused (t, &r, NBDP_SHOULD, "CMD-WZ-16", NBD_EINVAL, 0, "CMD-WZ-16",
                TX_BAD_MUST, what);
  tx_alive (t, c, TX_BAD_MUST, what);
}

/* The whole export in one request: more than the maximum payload.  The
 * server should not disconnect; it may refuse with EOVERFLOW or EINVAL.
 */
static void
test_wz_large (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, WZ_FLAGS, WZ_NAME, true, 65536);
  uint64_t size = c->s.export_size, max = nbdp_session_max_payload (&c->s);
  struct nc_result r;
  char what[160];

  if (size <= max)
    nc_skip (t, "the export (%" PRIu64 " bytes) is not larger than the "
             "maximum payload (%" PRIu64 ")", size, max);
  tx_write_pattern (t, c, 0, 4096, 34);
  tx_write_pattern (t, c, size - 4096, 4096, 34);
  snprintf (what, sizeof what, "WRITE_ZEROES 0+%" PRIu64 " (the whole "
            "export, more than the maximum payload %" PRIu64 ")", size, max);
  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, 0, 0, size, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_BAD_SHOULD, what);
  no_enotsup (t, c, &r, what);
  if (r.error == NBD_EOVERFLOW || r.error == NBD_EINVAL)
    nc_info (t, "%s: refused with %s (allowed)", what, nc_errstr (&r));
  else if (r.error)
    nc_should (t, "SIZE-30", "%s: got %s, expected success, NBD_EOVERFLOW "
               "or NBD_EINVAL", what, nc_errstr (&r));
  else {
    tx_check (t, c, 0, 4096, NULL, NBDP_MUST, "CMD-WZ-8", what);
    tx_check (t, c, size - 4096, 4096, NULL, NBDP_MUST, "CMD-WZ-8", what);
  }
  tx_alive (t, c, TX_BAD_SHOULD, what);
}

static const struct nc_test tests[] = {
  { "write-zeroes-unaligned", "CMD-WZ-8 CMD-WZ-3 SIZE-7 CMD-WZ-7",
    NBDP_MUST,
    test_wz_unaligned, "WRITE_ZEROES at odd offsets zeroes exactly its "
    "range" },
  { "write-zeroes-no-hole", "FLAG-CMD-9 CMD-WZ-8 CMD-WZ-9", NBDP_MUST,
    test_wz_no_hole, "WRITE_ZEROES with NO_HOLE succeeds and zeroes" },
  { "write-zeroes-no-hole-allocated", "CMD-WZ-10 FLAG-CMD-9", NBDP_SHOULD,
    test_wz_no_hole_allocated,
    "after WRITE_ZEROES with NO_HOLE, base:allocation shows no hole" },
  { "write-zeroes-structured", "CMD-WZ-3 CMD-WZ-8 TX-SIMPLE-2", NBDP_MUST,
    test_wz_structured, "WRITE_ZEROES with structured replies" },
  { "write-zeroes-extended", "CMD-WZ-3 CMD-WZ-8", NBDP_MUST,
    test_wz_extended, "WRITE_ZEROES with extended headers" },
  { "write-zeroes-not-enotsup", "CMD-WZ-11 CMD-WZ-15 ERR-6", NBDP_MUST,
    test_wz_not_enotsup,
    "WRITE_ZEROES without FAST_ZERO never fails with NBD_ENOTSUP" },
  { "fast-zero", "FLAG-CMD-14 CMD-WZ-13 CMD-WZ-12 CMD-WZ-17 FLAG-TX-12",
    NBDP_MUST, test_fast_zero,
    "FAST_ZERO: success and zeroes, or NBD_ENOTSUP and no change" },
  { "fast-zero-no-hole", "FLAG-CMD-14 CMD-WZ-14 CMD-WZ-12", NBDP_MUST,
    test_fast_zero_no_hole, "FAST_ZERO with NO_HOLE: success or "
    "NBD_ENOTSUP" },
  { "fast-zero-whole", "FLAG-CMD-14 CMD-WZ-12 CMD-WZ-18", NBDP_MUST,
    test_fast_zero_whole,
    "FAST_ZERO over the whole export: no NBD_EOVERFLOW" },
  { "fast-zero-unadvertised", "CMD-WZ-16 CMD-WZ-15 FLAG-TX-11",
    NBDP_SHOULD,
    test_fast_zero_unadvertised,
    "FAST_ZERO without SEND_FAST_ZERO fails with NBD_EINVAL" },
  { "write-zeroes-large", "SIZE-29 SIZE-30 SIZE-28 CMD-WZ-8", NBDP_SHOULD,
    test_wz_large, "WRITE_ZEROES beyond the maximum payload: success, "
    "EOVERFLOW or EINVAL, no disconnect" },
};
NC_SUITE ("transmission", tests);
