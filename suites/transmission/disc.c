/* Transmission suite: terminating the transmission phase.  On
 * NBD_CMD_DISC the server answers every request still outstanding, sends
 * nothing for the DISC itself, and closes the connection.
 */
#include "txlib.h"

/* After NBD_CMD_DISC: the server closes the connection without sending
 * anything more.
 */
static void
expect_close (struct nc_ctx *t, struct nc_conn *c, const char *ids,
              const char *after)
{
  if (nbdp_client_expect_eof (c->c) == -1)
    nc_fail (t, ids, "%s: expected the server to close the connection "
             "without a reply to NBD_CMD_DISC, got: %s", after,
             nbdp_client_error (c->c));
}

static void
test_disc (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);

  nc_disc (t, c);
  expect_close (t, c, "TX-TERM-1", "NBD_CMD_DISC right after the "
                "handshake");
}

/* DISC once every reply is in: deterministic, the basic case. */
static void
test_disc_after_reply (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 65536);
  struct nc_result r;

  tx_write_pattern (t, c, 0, 4096, 12);
  nc_cmd (t, c, NBD_CMD_READ, 0, 0, 4096, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-READ-4", TX_VALID, "READ 0+4096");
  nc_disc (t, c);
  expect_close (t, c, "TX-TERM-1", "WRITE and READ answered, then "
                "NBD_CMD_DISC");
}

/* DISC while requests are outstanding: every request sent before the
 * DISC is answered, then the connection closes.  The requests are sent
 * back to back with the DISC, and include a FLUSH, so that a server that
 * closes on reading the DISC has requests still being processed.
 */
static void
disc_inflight (struct nc_ctx *t, const struct nc_open_opts *o,
               const char *how)
{
  enum { NW = 4, NR = 3, SZ = 65536 };
  struct nc_conn *c = tx_open (t, o, 0, NULL, true, NW * SZ);
  unsigned char *w = tx_alloc (t, NW * SZ), *b = tx_alloc (t, SZ);
  uint64_t wc[NW], rc[NR], fc = 0;
  bool flush = c->s.eflags & NBD_FLAG_SEND_FLUSH;
  unsigned answered = 0, sent = 0;
  struct nc_result r;

  /* Known content for the READs, written before the test proper. */
  tx_write_pattern (t, c, 0, SZ, 13);
  tx_pattern (w, NW * SZ, 0, 14);
  for (int i = 0; i < NW; i++, sent++)
    wc[i] = nc_send (t, c, NBD_CMD_WRITE, 0, (uint64_t) i * SZ, SZ,
                     w + i * SZ, SZ);
  if (flush)
    fc = nc_send (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, 0), sent++;
  for (int i = 0; i < NR; i++, sent++)
    rc[i] = nc_send (t, c, NBD_CMD_READ, 0, (uint64_t) i * SZ, SZ, NULL, 0);
  nc_disc (t, c);

  for (int i = 0; i < NW + 1 + NR; i++) {
    uint64_t cookie;
    char what[160];
    if (i < NW)
      cookie = wc[i], snprintf (what, sizeof what, "WRITE %d+%d", i * SZ,
                                SZ);
    else if (i == NW) {
      if (!flush)
        continue;
      cookie = fc, snprintf (what, sizeof what, "FLUSH");
    }
    else
      cookie = rc[i - NW - 1], snprintf (what, sizeof what, "READ %d+%d",
                                         (i - NW - 1) * SZ, SZ);
    nc_wait (t, c, cookie, b, &r);
    if (!r.complete) {
      nc_fail (t, "CMD-DISC-1", "%s, one of %u requests sent back to back "
               "with NBD_CMD_DISC (%s): no reply (%s); %u of them were "
               "answered before the close, expected every outstanding "
               "request to be answered first", what, sent, how,
               nc_errstr (&r), answered);
      nc_done (t);
    }
    answered++;
    if (r.error == NBD_ESHUTDOWN)
      nc_info (t, "%s, in flight when NBD_CMD_DISC was sent (%s): failed "
               "with NBD_ESHUTDOWN (the server handled it by refusing it, "
               "as for a shutdown: TX-TERM-5, TX-TERM-6)", what, how);
    else if (r.error)
      nc_should (t, "CMD-DISC-1", "%s, in flight when NBD_CMD_DISC was "
                 "sent (%s): got %s, expected it to be handled normally",
                 what, how, nc_errstr (&r));
  }
  expect_close (t, c, "TX-TERM-1 CMD-DISC-1", "every outstanding request "
                "answered after NBD_CMD_DISC");
  free (w);
  free (b);
}

static void
test_disc_inflight (struct nc_ctx *t)
{
  disc_inflight (t, NULL, "simple replies");
}

static void
test_disc_inflight_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  disc_inflight (t, &o, "structured replies");
}

static void
test_disc_inflight_extended (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .extended = true };
  disc_inflight (t, &o, "extended headers");
}

/* The DISC of one connection leaves another connection to the same
 * export working.  Two connections at once only if the server advertises
 * NBD_FLAG_CAN_MULTI_CONN (some servers serve one client at a time);
 * otherwise the second connection is made after the first closed.
 */
static void
test_disc_other_conn (struct nc_ctx *t)
{
  struct nc_conn *a = nc_open (t, NULL), *b = NULL;
  bool multi = a->s.eflags & NBD_FLAG_CAN_MULTI_CONN;

  if (multi)
    b = nc_open (t, NULL);
  nc_disc (t, a);
  expect_close (t, a, "TX-TERM-1", "NBD_CMD_DISC on the first of two "
                "connections");
  if (!multi)
    b = nc_open (t, NULL);
  tx_alive (t, b, TX_VALID, multi ? "NBD_CMD_DISC on another connection"
            : "NBD_CMD_DISC on an earlier connection");
}

static const struct nc_test tests[] = {
  { "disc", "TX-TERM-1 CMD-DISC-1", NBDP_MUST, test_disc,
    "NBD_CMD_DISC: the server closes the connection" },
  { "disc-after-reply", "TX-TERM-1 CMD-DISC-1", NBDP_MUST,
    test_disc_after_reply, "NBD_CMD_DISC once all replies are in: the "
    "server closes without a reply" },
  { "disc-inflight", "CMD-DISC-1 TX-TERM-1", NBDP_MUST,
    test_disc_inflight, "NBD_CMD_DISC: outstanding requests are answered" },
  { "disc-inflight-structured", "CMD-DISC-1 TX-TERM-1", NBDP_MUST,
    test_disc_inflight_structured,
    "NBD_CMD_DISC: outstanding requests are answered (structured)" },
  { "disc-inflight-extended", "CMD-DISC-1 TX-TERM-1", NBDP_MUST,
    test_disc_inflight_extended,
    "NBD_CMD_DISC: outstanding requests are answered (extended headers)" },
  { "disc-other-conn", "TX-TERM-1 TX-TERM-10", NBDP_MUST,
    test_disc_other_conn,
    "NBD_CMD_DISC on one connection leaves another one working" },
};
NC_SUITE ("transmission", tests);
