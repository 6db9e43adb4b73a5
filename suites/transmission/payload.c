/* Transmission suite: the maximum payload size.  With NBD_INFO_BLOCK_SIZE
 * requested, a WRITE larger than the advertised maximum breaks a client
 * MUST (SIZE-25): the server may refuse it or hard-disconnect, but must
 * not lose its place in the stream.  A payload of the maximum size is
 * taken.
 */
#include "txlib.h"

static struct nc_conn *
open_max (struct nc_ctx *t, bool rw, uint64_t *maxp)
{
  static const struct nc_open_opts o = { .block_size = true };
  struct nc_conn *c = tx_open (t, &o, 0, NULL, rw, 65536);

  if (!c->s.have_block_size)
    nc_unsupported (t, "the server sent no NBD_INFO_BLOCK_SIZE");
  *maxp = c->s.max_payload;
  return c;
}

/* A WRITE of exactly the advertised maximum payload. */
static void
test_write_max (struct nc_ctx *t)
{
  uint64_t max;
  struct nc_conn *c = open_max (t, true, &max);
  unsigned char *w;
  struct nc_result r;
  char what[128];

  if (max > 64 * 1024 * 1024 || max > c->s.export_size)
    nc_skip (t, "maximum payload %" PRIu64 " too large for this test "
             "(export size %" PRIu64 ")", max, c->s.export_size);
  w = tx_alloc (t, max);
  tx_pattern (w, max, 0, 50);
  snprintf (what, sizeof what, "WRITE 0+%" PRIu64 " (the advertised "
            "maximum payload)", max);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 0, max, w, NULL, &r);
  if (tx_ok (t, &r, NBDP_SHOULD, "SIZE-24", TX_VALID, what))
    tx_check (t, c, 0, max, w, NBDP_MUST, "CMD-WRITE-4", what);
  free (w);
}

/* A WRITE (or READ with simple replies) one block over the maximum. */
static void
over_max (struct nc_ctx *t, uint16_t type)
{
  uint64_t max;
  struct nc_conn *c = open_max (t, type == NBD_CMD_WRITE, &max);
  uint64_t mb = c->s.min_block ? c->s.min_block : 1;
  uint64_t len = (max + mb - 1) / mb * mb + mb;
  unsigned char *w = NULL;
  struct nc_result r;
  char what[160];

  if (len > c->s.export_size || len > 64 * 1024 * 1024)
    nc_skip (t, "maximum payload %" PRIu64 ": one block more does not fit "
             "in the export (%" PRIu64 " bytes) or this test", max,
             c->s.export_size);
  if (type == NBD_CMD_WRITE) {
    w = tx_alloc (t, len);
    memset (w, 0x3c, len);
  }
  snprintf (what, sizeof what, "%s 0+%" PRIu64 " (advertised maximum "
            "payload %" PRIu64 ")", tx_cmd_name (type), len, max);
  nc_cmd (t, c, type, 0, 0, len, w, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_BAD_MUST, what);
  if (r.error == 0)
    nc_info (t, "%s: accepted", what);
  else {
    nc_info (t, "%s: refused with %s", what, nc_errstr (&r));
    if (type == NBD_CMD_WRITE)
      tx_restricted_errors (t, &r, false, false, what);
  }
  tx_alive (t, c, TX_BAD_MUST, what);
  free (w);
}

static void
test_write_over_max (struct nc_ctx *t)
{
  over_max (t, NBD_CMD_WRITE);
}

static void
test_read_over_max (struct nc_ctx *t)
{
  over_max (t, NBD_CMD_READ);
}

/* Size constraints the server enforces must be advertised (SIZE-4):
 * asked for NBD_INFO_BLOCK_SIZE, a server that sends none must take
 * 1-byte granularity; one that sends values must take requests that
 * keep to them.
 */
static void
test_constraints_advertised (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .block_size = true };
  struct nc_conn *c = tx_open (t, &o, 0, NULL, true, 65536);
  uint64_t mb = c->s.have_block_size && c->s.min_block ? c->s.min_block : 1;
  uint64_t pb = c->s.have_block_size && c->s.pref_block ? c->s.pref_block
    : 4096;
  unsigned char w[65536];
  struct nc_result r;
  char what[160];

  if (pb > sizeof w / 2 || mb > pb)
    nc_skip (t, "block sizes %" PRIu64 "/%" PRIu64 " too large for this "
             "test", mb, pb);
  /* One minimum block at an odd multiple of it, then a preferred block. */
  tx_pattern (w, mb, mb, 51);
  snprintf (what, sizeof what, "WRITE %" PRIu64 "+%" PRIu64 " (%s)", mb, mb,
            c->s.have_block_size ? "aligned to the advertised minimum "
            "block size" : "no NBD_INFO_BLOCK_SIZE sent, so 1-byte "
            "granularity");
  nc_cmd (t, c, NBD_CMD_WRITE, 0, mb, mb, w, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, what);
  if (r.error)
    nc_should (t, "SIZE-4", "%s: got %s; a server enforcing size "
               "constraints must advertise them (unless agreed out of band)",
               what, nc_errstr (&r));
  else
    tx_check (t, c, mb, mb, w, NBDP_MUST, "CMD-WRITE-4", what);
  snprintf (what, sizeof what, "READ %" PRIu64 "+%" PRIu64 " (one "
            "preferred block)", pb, pb);
  nc_cmd (t, c, NBD_CMD_READ, 0, pb, pb, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, what);
  if (r.error)
    nc_should (t, "SIZE-4", "%s: got %s, expected success", what,
               nc_errstr (&r));
  if (!c->s.have_block_size)
    nc_info (t, "NBD_INFO_BLOCK_SIZE was requested but not sent: the "
             "defaults apply");
}

static const struct nc_test tests[] = {
  { "constraints-advertised", "SIZE-4 SIZE-3 SIZE-10 SIZE-13 SIZE-17 "
    "SIZE-21", NBDP_SHOULD, test_constraints_advertised,
    "requests within the advertised (or default) constraints succeed" },
  { "write-max-payload", "SIZE-24 CMD-WRITE-4 SIZE-21 SIZE-22", NBDP_SHOULD,
    test_write_max,
    "a WRITE of exactly the advertised maximum payload succeeds" },
  { "write-over-max-payload", "SIZE-23 SIZE-25 ERR-5 TX-TERM-3", NBDP_MUST,
    test_write_over_max, "a WRITE over the maximum payload is refused "
    "cleanly or ends the session, never desynchronises it" },
  { "read-over-max-payload", "SIZE-23 SIZE-25 CMD-READ-4", NBDP_MUST,
    test_read_over_max, "a simple READ over the maximum payload is refused "
    "cleanly or ends the session" },
};
NC_SUITE ("transmission", tests);
