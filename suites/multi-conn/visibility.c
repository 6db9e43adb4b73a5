/* Multi-conn suite: with NBD_FLAG_CAN_MULTI_CONN, the effect of a FLUSH
 * or of a command with NBD_CMD_FLAG_FUA is visible on every connection
 * to the export once its reply is sent (MC-2).  Checked by data: one
 * connection writes, another reads.  Without the flag every test is
 * UNSUPPORTED.
 */
#include "../transmission/txlib.h"

/* A connection to a multi-conn, writable export. */
static struct nc_conn *
mc_open (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t need,
         const char *names)
{
  struct nc_conn *c = tx_open (t, o, NBD_FLAG_CAN_MULTI_CONN | need, names,
                               true, 1048576);
  return c;
}

#define MC "CAN_MULTI_CONN"

/* A writes (flags), then A flushes if flush; B reads. */
static void
write_then_read (struct nc_ctx *t, uint16_t wflags, bool flush,
                 const struct nc_open_opts *oa, const char *id)
{
  uint16_t need = (wflags & NBD_CMD_FLAG_FUA ? NBD_FLAG_SEND_FUA : 0) |
    (flush ? NBD_FLAG_SEND_FLUSH : 0);
  struct nc_conn *a = mc_open (t, oa, need, MC ", SEND_FUA/SEND_FLUSH");
  struct nc_conn *b = mc_open (t, NULL, need, MC);
  unsigned char w[65536];
  struct nc_result r;
  char what[192];

  /* B reads first, so that a server with per-connection caches has
   * something stale to serve.
   */
  tx_read (t, b, 65536, sizeof w, w, NULL);
  tx_pattern (w, sizeof w, 65536, 60);
  tx_write (t, a, 65536, sizeof w, w, wflags);
  if (flush) {
    nc_cmd (t, a, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH"))
      nc_done (t);
  }
  snprintf (what, sizeof what, "WRITE 65536+65536%s on connection A%s%s, "
            "then READ on connection B", wflags & NBD_CMD_FLAG_FUA
            ? " with FUA" : "", flush ? " and FLUSH on A" : "",
            oa && oa->extended ? " (A with extended headers)"
            : oa && oa->structured ? " (A with structured replies)" : "");
  tx_check (t, b, 65536, sizeof w, w, NBDP_MUST, id, what);
}

static void
test_mc_flush (struct nc_ctx *t)
{
  write_then_read (t, 0, true, NULL, "MC-2");
}

static void
test_mc_fua (struct nc_ctx *t)
{
  write_then_read (t, NBD_CMD_FLAG_FUA, false, NULL, "MC-2");
}

static void
test_mc_fua_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  write_then_read (t, NBD_CMD_FLAG_FUA, false, &o, "MC-2");
}

static void
test_mc_fua_extended (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true };
  write_then_read (t, NBD_CMD_FLAG_FUA, false, &o, "MC-2");
}

/* A writes (answered), B flushes: the FLUSH covers A's write, which C
 * (a third connection) then sees.
 */
static void
test_mc_flush_other (struct nc_ctx *t)
{
  struct nc_conn *a = mc_open (t, NULL, NBD_FLAG_SEND_FLUSH, MC
                               " and SEND_FLUSH");
  struct nc_conn *b = mc_open (t, NULL, 0, MC);
  struct nc_conn *c = mc_open (t, NULL, 0, MC);
  unsigned char w[32768];
  struct nc_result r;

  tx_read (t, c, 0, sizeof w, w, NULL);
  tx_pattern (w, sizeof w, 0, 61);
  tx_write (t, a, 0, sizeof w, w, 0);
  nc_cmd (t, b, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH on B"))
    return;
  tx_check (t, c, 0, sizeof w, w, NBDP_MUST, "MC-2", "WRITE 0+32768 on A "
            "(answered), FLUSH on B, READ on C");
}

/* WRITE_ZEROES with FUA on A; B sees zeroes. */
static void
test_mc_wz_fua (struct nc_ctx *t)
{
  struct nc_conn *a = mc_open (t, NULL, NBD_FLAG_SEND_FUA |
                               NBD_FLAG_SEND_WRITE_ZEROES, MC ", SEND_FUA "
                               "and SEND_WRITE_ZEROES");
  struct nc_conn *b = mc_open (t, NULL, 0, MC);
  unsigned char w[65536];
  struct nc_result r;

  tx_pattern (w, sizeof w, 0, 62);
  tx_write (t, a, 0, sizeof w, w, NBD_CMD_FLAG_FUA);
  tx_check (t, b, 0, sizeof w, w, NBDP_MUST, "MC-2", "WRITE 0+65536 with "
            "FUA on A, READ on B");
  nc_cmd (t, a, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FUA, 4096, 16384, NULL,
          NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-WZ-3", TX_VALID, "WRITE_ZEROES "
              "4096+16384 with FUA on A"))
    return;
  memset (w + 4096, 0, 16384);
  tx_check (t, b, 0, sizeof w, w, NBDP_MUST, "MC-2", "WRITE_ZEROES "
            "4096+16384 with FUA on A, READ on B");
}

/* WRITE_ZEROES then FLUSH on A; B sees zeroes. */
static void
test_mc_wz_flush (struct nc_ctx *t)
{
  struct nc_conn *a = mc_open (t, NULL, NBD_FLAG_SEND_FLUSH |
                               NBD_FLAG_SEND_WRITE_ZEROES, MC ", SEND_FLUSH "
                               "and SEND_WRITE_ZEROES");
  struct nc_conn *b = mc_open (t, NULL, 0, MC);
  unsigned char w[65536];
  struct nc_result r;

  tx_pattern (w, sizeof w, 0, 63);
  tx_write (t, a, 0, sizeof w, w, 0);
  nc_cmd (t, a, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH on A");
  tx_check (t, b, 0, sizeof w, w, NBDP_MUST, "MC-2", "WRITE and FLUSH on "
            "A, READ on B");
  nc_cmd (t, a, NBD_CMD_WRITE_ZEROES, 0, 0, 32768, NULL, NULL, &r);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-WZ-3", TX_VALID, "WRITE_ZEROES "
              "0+32768 on A"))
    return;
  nc_cmd (t, a, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH on A");
  memset (w, 0, 32768);
  tx_check (t, b, 0, sizeof w, w, NBDP_MUST, "MC-2", "WRITE_ZEROES 0+32768 "
            "and FLUSH on A, READ on B");
}

/* TRIM with FUA on A: B sees the bytes outside the range unchanged (the
 * trimmed bytes are unspecified).
 */
static void
test_mc_trim_fua (struct nc_ctx *t)
{
  struct nc_conn *a = mc_open (t, NULL, NBD_FLAG_SEND_FUA |
                               NBD_FLAG_SEND_TRIM, MC ", SEND_FUA and "
                               "SEND_TRIM");
  struct nc_conn *b = mc_open (t, NULL, 0, MC);
  unsigned char w[65536], rd[65536];
  struct nc_result r;

  tx_pattern (w, sizeof w, 0, 64);
  tx_write (t, a, 0, sizeof w, w, NBD_CMD_FLAG_FUA);
  nc_cmd (t, a, NBD_CMD_TRIM, NBD_CMD_FLAG_FUA, 16384, 16384, NULL, NULL,
          &r);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-TRIM-1", TX_VALID, "TRIM 16384+16384 "
              "with FUA on A"))
    return;
  tx_read (t, b, 0, sizeof rd, rd, NULL);
  for (size_t i = 0; i < sizeof w; i++)
    if ((i < 16384 || i >= 32768) && rd[i] != w[i]) {
      nc_fail (t, "MC-2", "WRITE 0+65536 with FUA and TRIM 16384+16384 "
               "with FUA on A, READ on B: byte %zu (outside the trim) "
               "reads 0x%02x, written 0x%02x", i, rd[i], w[i]);
      break;
    }
}

/* A and B overwrite each other; each sees the other's last write. */
static void
test_mc_overwrite (struct nc_ctx *t)
{
  struct nc_conn *a = mc_open (t, NULL, NBD_FLAG_SEND_FUA, MC
                               " and SEND_FUA");
  struct nc_conn *b = mc_open (t, NULL, 0, MC);

  for (unsigned round = 0; round < 4; round++) {
    struct nc_conn *w = round % 2 ? b : a, *rd = round % 2 ? a : b;
    char what[128];
    unsigned char buf[16384];
    snprintf (what, sizeof what, "round %u: WRITE 0+16384 with FUA on %s, "
              "READ on %s", round, round % 2 ? "B" : "A",
              round % 2 ? "A" : "B");
    tx_pattern (buf, sizeof buf, 0, 70 + round);
    tx_write (t, w, 0, sizeof buf, buf, NBD_CMD_FLAG_FUA);
    if (!tx_check (t, rd, 0, sizeof buf, buf, NBDP_MUST, "MC-2", what))
      return;
  }
}

/* Four connections write their own regions and flush; each sees all. */
static void
test_mc_four (struct nc_ctx *t)
{
  enum { N = 4, SZ = 32768 };
  struct nc_conn *c[N];
  struct nc_result r;

  for (int i = 0; i < N; i++)
    c[i] = mc_open (t, NULL, NBD_FLAG_SEND_FLUSH, MC " and SEND_FLUSH");
  for (int i = 0; i < N; i++) {
    tx_write_pattern (t, c[i], (uint64_t) i * SZ, SZ, 80 + i);
    nc_cmd (t, c[i], NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
    tx_ok (t, &r, NBDP_MUST, "CMD-FLUSH-1", TX_VALID, "FLUSH");
  }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      char what[128];
      snprintf (what, sizeof what, "WRITE %d+%d and FLUSH on connection "
                "%d, READ on connection %d", j * SZ, SZ, j, i);
      if (!tx_check_pattern (t, c[i], (uint64_t) j * SZ, SZ, 80 + j,
                             NBDP_MUST, "MC-2", what))
        return;
    }
}

/* Eight FUA writes in flight on A; as each reply arrives, B reads that
 * region at once: the effect is visible when the reply is sent.
 */
static void
test_mc_fua_inflight (struct nc_ctx *t)
{
  enum { N = 8, SZ = 16384 };
  struct nc_conn *a = mc_open (t, NULL, NBD_FLAG_SEND_FUA, MC
                               " and SEND_FUA");
  struct nc_conn *b = mc_open (t, NULL, 0, MC);
  unsigned char *w = tx_alloc (t, N * SZ);
  uint64_t ck[N];
  struct nc_result r;

  tx_pattern (w, N * SZ, 0, 90);
  for (int i = 0; i < N; i++)
    ck[i] = nc_send (t, a, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA,
                     (uint64_t) i * SZ, SZ, w + i * SZ, SZ);
  for (int i = 0; i < N; i++) {
    char what[128];
    nc_wait (t, a, ck[i], NULL, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "CMD-WRITE-4", TX_VALID, "WRITE with FUA "
                "(one of 8 in flight on A)"))
      nc_done (t);
    snprintf (what, sizeof what, "the reply to WRITE %d+%d with FUA on A "
              "(8 in flight), READ on B", i * SZ, SZ);
    if (!tx_check (t, b, (uint64_t) i * SZ, SZ, w + i * SZ, NBDP_MUST,
                   "MC-2", what))
      break;
  }
  free (w);
}

/* Both connections see the same export: size and flags. */
static void
test_mc_same_export (struct nc_ctx *t)
{
  struct nc_conn *a = mc_open (t, NULL, 0, MC);
  struct nc_conn *b = mc_open (t, NULL, 0, MC);

  if (a->s.export_size != b->s.export_size ||
      a->s.eflags != b->s.eflags)
    nc_info (t, "two connections to the export saw size %" PRIu64 "/%"
             PRIu64 " and flags 0x%04x/0x%04x", a->s.export_size,
             b->s.export_size, a->s.eflags, b->s.eflags);
  nc_expect (t, b->s.eflags & NBD_FLAG_CAN_MULTI_CONN, "the second "
             "connection lost NBD_FLAG_CAN_MULTI_CONN");
}

static const struct nc_test tests[] = {
  { "flush", "MC-2 TX-ORD-2 CMD-FLUSH-1", NBDP_MUST, test_mc_flush,
    "WRITE and FLUSH on one connection, visible on another" },
  { "fua", "MC-2 TX-ORD-3 FLAG-CMD-5", NBDP_MUST, test_mc_fua,
    "WRITE with FUA on one connection, visible on another" },
  { "fua-structured", "MC-2 TX-ORD-3", NBDP_MUST, test_mc_fua_structured,
    "FUA visibility with structured replies on the writer" },
  { "fua-extended", "MC-2 TX-ORD-3", NBDP_MUST, test_mc_fua_extended,
    "FUA visibility with extended headers on the writer" },
  { "flush-other", "MC-2 TX-ORD-2 CMD-FLUSH-1 MC-1", NBDP_MUST,
    test_mc_flush_other, "a FLUSH on B covers a write answered on A" },
  { "write-zeroes-fua", "MC-2 TX-ORD-3 CMD-WZ-8", NBDP_MUST, test_mc_wz_fua,
    "WRITE_ZEROES with FUA on one connection, zeroes on another" },
  { "write-zeroes-flush", "MC-2 TX-ORD-2 CMD-WZ-8", NBDP_MUST,
    test_mc_wz_flush, "WRITE_ZEROES and FLUSH, zeroes on another" },
  { "trim-fua", "MC-2 CMD-TRIM-1", NBDP_MUST, test_mc_trim_fua,
    "TRIM with FUA: the rest of the data is intact on another connection" },
  { "overwrite", "MC-2 FLAG-CMD-5", NBDP_MUST, test_mc_overwrite,
    "two connections overwrite each other with FUA" },
  { "four", "MC-2 TX-ORD-2", NBDP_MUST, test_mc_four,
    "four connections write and flush; each sees all" },
  { "fua-inflight", "MC-2 TX-ORD-3 TX-ORD-1", NBDP_MUST,
    test_mc_fua_inflight, "each FUA write is visible elsewhere when its "
    "reply arrives, with 8 in flight" },
  { "same-export", "MC-2 MC-3", NBDP_MUST, test_mc_same_export,
    "every connection sees CAN_MULTI_CONN" },
};
NC_SUITE ("multi-conn", tests);
