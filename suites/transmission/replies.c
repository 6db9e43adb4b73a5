/* Transmission suite: the form of replies.  Without structured replies
 * or extended headers every reply is a simple reply; with structured
 * replies, requests other than READ may still get simple replies; a
 * failed simple READ reply carries no data.
 */
#include "txlib.h"

/* Send cmd and check that it got exactly one simple reply. */
static void
one_simple (struct nc_ctx *t, struct nc_conn *c, uint16_t type,
            uint64_t off, uint64_t len, const void *buf)
{
  struct nc_result r;
  char what[128];

  snprintf (what, sizeof what, "%s %" PRIu64 "+%" PRIu64 " (no structured "
            "replies negotiated)", tx_cmd_name (type), off, len);
  nc_cmd (t, c, type, 0, off, len, buf, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_VALID, what);
  nc_expect (t, r.simple == 1 && r.chunks == 0, "%s: got %u simple replies "
             "and %u structured chunks, expected one simple reply", what,
             r.simple, r.chunks);
  if (r.error && type <= NBD_CMD_WRITE_ZEROES)
    nc_info (t, "%s failed with %s", what, nc_errstr (&r));
}

static void
test_simple_all (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, false, 65536);
  bool rw = !(c->s.eflags & NBD_FLAG_READ_ONLY);
  unsigned char buf[4096] = { 0 };

  one_simple (t, c, NBD_CMD_READ, 0, 4096, NULL);
  if (rw)
    one_simple (t, c, NBD_CMD_WRITE, 0, 4096, buf);
  if (c->s.eflags & NBD_FLAG_SEND_FLUSH)
    one_simple (t, c, NBD_CMD_FLUSH, 0, 0, NULL);
  if (rw && (c->s.eflags & NBD_FLAG_SEND_TRIM))
    one_simple (t, c, NBD_CMD_TRIM, 0, 4096, NULL);
  if (rw && (c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES))
    one_simple (t, c, NBD_CMD_WRITE_ZEROES, 0, 4096, NULL);
  if (c->s.eflags & NBD_FLAG_SEND_CACHE)
    one_simple (t, c, NBD_CMD_CACHE, 0, 4096, NULL);
  /* And for an error: an unknown command. */
  one_simple (t, c, 0x1f, 0, 0, NULL);
}

/* A failed READ with a simple reply has no payload: a READ behind it,
 * already in flight, must come back intact.
 */
static void
test_simple_read_error (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 65536);
  uint64_t size = c->s.export_size, bad, good;
  unsigned char w[4096], b[4096];
  struct nc_result r;
  char what[128];

  tx_pattern (w, sizeof w, 0, 11);
  tx_write (t, c, 0, sizeof w, w, 0);
  bad = nc_send (t, c, NBD_CMD_READ, 0, size - 512, 4096, NULL, 0);
  good = nc_send (t, c, NBD_CMD_READ, 0, 0, 4096, NULL, 0);
  snprintf (what, sizeof what, "READ %" PRIu64 "+4096 past the end of the "
            "export", size - 512);
  nc_wait (t, c, bad, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_BAD_MUST, what);
  if (r.error == 0)
    nc_should (t, "ERR-3", "%s: got success, expected NBD_EINVAL", what);
  else if (r.simple != 1)
    nc_expect (t, false, "%s: got %u simple replies, expected one", what,
               r.simple);
  nc_wait (t, c, good, b, &r);
  if (!r.complete)
    tx_gone (t, &r, TX_BAD_MUST, "READ 0+4096 sent right behind the "
             "failing READ");
  if (nc_expect (t, r.error == 0, "READ 0+4096 sent right behind a READ "
                 "past the end: got %s, expected success", nc_errstr (&r)))
    nc_expect (t, memcmp (w, b, sizeof b) == 0, "READ 0+4096 sent right "
               "behind a failed READ: the data is not what was written "
               "(did the error reply carry a payload?)");
}

/* With structured replies, requests other than READ may get a simple
 * reply or a chunk: record which (the rules judge the chunks).
 */
static void
test_structured_other (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  struct nc_conn *c = tx_open (t, &o, 0, NULL, false, 65536);
  bool rw = !(c->s.eflags & NBD_FLAG_READ_ONLY);
  unsigned char buf[4096] = { 0 };
  static const struct { uint16_t type, flag; bool rw; } cmds[] = {
    { NBD_CMD_WRITE, 0, true },
    { NBD_CMD_FLUSH, NBD_FLAG_SEND_FLUSH, false },
    { NBD_CMD_TRIM, NBD_FLAG_SEND_TRIM, true },
    { NBD_CMD_WRITE_ZEROES, NBD_FLAG_SEND_WRITE_ZEROES, true },
    { NBD_CMD_CACHE, NBD_FLAG_SEND_CACHE, false },
    { 0x1f, 0, false },
  };
  char forms[512] = "";

  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    struct nc_result r;
    uint64_t len = cmds[i].type == NBD_CMD_FLUSH || cmds[i].type == 0x1f
      ? 0 : 4096;
    char what[96];
    size_t fl = strlen (forms);

    if ((cmds[i].flag && !(c->s.eflags & cmds[i].flag)) ||
        (cmds[i].rw && !rw))
      continue;
    snprintf (what, sizeof what, "%s 0+%" PRIu64 " with structured replies",
              tx_cmd_name (cmds[i].type), len);
    nc_cmd (t, c, cmds[i].type, 0, 0, len, buf, NULL, &r);
    if (!r.complete)
      tx_gone (t, &r, TX_VALID, what);
    if (cmds[i].type != 0x1f && r.error)
      nc_fail (t, "CMD-WRITE-4", "%s: got %s, expected success", what,
               nc_errstr (&r));
    if (cmds[i].type == 0x1f && r.error == 0)
      nc_should (t, "ERR-7", "%s: got success, expected NBD_EINVAL", what);
    snprintf (forms + fl, sizeof forms - fl, "%s%s: %s", fl ? ", " : "",
              tx_cmd_name (cmds[i].type),
              r.simple ? "simple reply" : "structured chunks");
  }
  nc_info (t, "reply forms with structured replies: %s", forms);
}

/* A refused request with structured replies: an error chunk (or a
 * simple error reply) with a nonzero error; the session goes on.
 */
static void
test_structured_error (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  struct nc_conn *c = tx_open (t, &o, 0, NULL, true, 65536);
  uint64_t size = c->s.export_size;
  unsigned char buf[1024] = { 0 };
  struct nc_result r;
  char what[128];

  snprintf (what, sizeof what, "WRITE %" PRIu64 "+1024 past the end, "
            "structured replies", size - 512);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, size - 512, sizeof buf, buf, NULL, &r);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-1", NBD_ENOSPC, 0, "ERR-1",
              TX_BAD_MUST, what);
  if (r.error)
    nc_info (t, "%s: error sent as %s", what, r.simple ? "a simple reply"
             : "an error chunk");
  tx_alive (t, c, TX_BAD_MUST, what);
}

static const struct nc_test tests[] = {
  { "simple-replies", "TX-SIMPLE-1 TX-GEN-1 CMD-READ-4 CMD-WRITE-6",
    NBDP_MUST, test_simple_all,
    "without structured replies every command gets one simple reply" },
  { "simple-read-error", "CMD-READ-7 CMD-READ-5 CMD-READ-6 TX-SIMPLE-3",
    NBDP_MUST, test_simple_read_error,
    "a failed simple READ reply carries no data" },
  { "structured-other", "TX-SIMPLE-2 CMD-READ-1", NBDP_MUST,
    test_structured_other,
    "with structured replies, other commands get a valid reply form" },
  { "structured-error", "ERR-1 CMD-WRITE-6", NBDP_SHOULD,
    test_structured_error, "an error with structured replies is a valid "
    "error reply and the session goes on" },
};
NC_SUITE ("transmission", tests);
