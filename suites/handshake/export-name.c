/* Handshake suite: NBD_OPT_EXPORT_NAME (the reply without an option reply
 * header, the hang-up for an export that cannot be served, and the state
 * negotiated before it).
 */
#include <inttypes.h>
#include <string.h>

#include "hs.h"

/* EXPORT_NAME for name; on success the connection is in transmission. */
static int
export_name (struct nc_ctx *t, struct nc_conn *c, const char *name)
{
  struct nbdp_export exp;
  struct nbdp_violations v;

  if (nbdp_client_opt_export_name (c->c, name, &exp) == -1)
    return -1;
  if (exp.padding_nonzero)
    nc_fail (t, "COMPAT-BASE-1", "NBD_OPT_EXPORT_NAME reply: the 124 "
             "reserved bytes were not all zero");
  c->s.transmission = true;
  c->s.export_size = exp.size;
  c->s.eflags = exp.eflags;
  nbdp_violations_clear (&v);
  nbdp_rules_check_eflags (&c->s, exp.eflags, &v);
  nc_violations (t, &v);
  hs_enter (t, c);
  return 0;
}

/* Handshake flags offered but not answered by the client change nothing:
 * with NO_ZEROES offered and not requested, the 124 zeroes come.
 */
static void
test_export_name (struct nc_ctx *t)
{
  uint16_t gflags;
  struct nc_conn *c = hs_greet (t, &gflags);
  struct nc_result r;

  if (!(gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_unsupported (t, "server does not offer fixed newstyle");
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE);
  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  if (export_name (t, c, hs_export (t)) == -1) {
    nc_expect (t, false, "NBD_OPT_EXPORT_NAME \"%s\" failed: %s; expected "
               "size, flags and 124 zero bytes", hs_export (t),
               nbdp_client_error (c->c));
    return;
  }
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.error == 0, "after NBD_OPT_EXPORT_NAME "
             "(NO_ZEROES %s, not requested), READ of 64 KiB got %s; "
             "expected success", gflags & NBD_FLAG_NO_ZEROES ? "offered"
             : "not offered", nc_errstr (&r));
}

/* An export the server does not have: it must end the session (there is
 * no error reply to EXPORT_NAME).
 */
static void
test_export_name_unknown (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  unsigned char b[8 + 2];
  uint32_t r;
  int closed;

  /* Does the export exist for GO?  Servers may serve any name. */
  r = hs_info (t, c, NBD_OPT_INFO, HS_NO_SUCH_EXPORT, NULL, 0);
  if (r == NBD_REP_ACK)
    nc_unsupported (t, "the server accepts every export name (NBD_OPT_INFO "
                    "\"%s\" was acked)", HS_NO_SUCH_EXPORT);
  nc_log (t, "NBD_OPT_INFO \"%s\": %s", HS_NO_SUCH_EXPORT, hs_rep (r));
  nc_send_option (t, c, NBD_OPT_EXPORT_NAME, HS_NO_SUCH_EXPORT,
                  strlen (HS_NO_SUCH_EXPORT));
  c->s.opt.pending = false;       /* no option reply is due */
  closed = hs_wait_close (t, c, HS_CLOSE_WAIT_MS);
  if (closed == 1)
    return;
  if (closed == 0 && nbdp_client_recv_raw (c->c, b, sizeof b) == 0)
    nc_expect (t, false, "NBD_OPT_EXPORT_NAME \"%s\" (refused by "
               "NBD_OPT_INFO with %s): got size %" PRIu64 " flags 0x%04x; "
               "expected the server to end the session", HS_NO_SUCH_EXPORT,
               hs_rep (r), nbdp_get64 (b), nbdp_get16 (b + 8));
  else if (closed == 0)
    nc_expect (t, false, "NBD_OPT_EXPORT_NAME \"%s\": got a partial reply "
               "(%s); expected the server to end the session",
               HS_NO_SUCH_EXPORT, nbdp_client_error (c->c));
  else
    nc_expect (t, false, "NBD_OPT_EXPORT_NAME \"%s\": the connection was "
               "still open after %d ms; expected the server to end the "
               "session", HS_NO_SUCH_EXPORT, HS_CLOSE_WAIT_MS);
}

/* Structured replies negotiated before EXPORT_NAME apply to it. */
static void
test_export_name_after_sr (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result r;
  uint32_t rep = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                    hs_rep (rep));
  if (export_name (t, c, hs_export (t)) == -1)
    nc_unsupported (t, "NBD_OPT_EXPORT_NAME \"%s\" failed: %s",
                    hs_export (t), nbdp_client_error (c->c));
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.simple == 0 && r.chunks > 0,
             "structured replies acked, then NBD_OPT_EXPORT_NAME: READ of "
             "64 KiB got %u simple replies and %u chunks (%s); expected "
             "structured chunks", r.simple, r.chunks, nc_errstr (&r));
}

/* EXPORT_NAME after INFO: the same export. */
static void
test_export_name_after_info (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t rep = hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0);
  uint64_t size = c->s.opt.size;

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_INFO answered with %s", hs_rep (rep));
  if (export_name (t, c, hs_export (t)) == -1)
    nc_unsupported (t, "NBD_OPT_EXPORT_NAME \"%s\" failed: %s",
                    hs_export (t), nbdp_client_error (c->c));
  if (c->s.export_size != size)
    nc_info (t, "NBD_OPT_INFO said size %" PRIu64 ", NBD_OPT_EXPORT_NAME "
             "%" PRIu64, size, c->s.export_size);
}

static const struct nc_test tests[] = {
  { "export-name", "COMPAT-MAX-6 FLAG-TX-4 FLAG-HS-4", NBDP_SHOULD,
    test_export_name,
    "NBD_OPT_EXPORT_NAME: size, flags, 124 zero bytes; READ works" },
  { "export-name-unknown", "OPT-EXPORT-1 HS-NEW-9 HS-TERM-5", NBDP_MUST,
    test_export_name_unknown,
    "NBD_OPT_EXPORT_NAME of a missing export ends the session" },
  { "export-name-after-sr", "OPT-SR-3 FLAG-TX-9", NBDP_MUST,
    test_export_name_after_sr,
    "structured replies agreed before EXPORT_NAME are used" },
  { "export-name-after-info", "COMPAT-MAX-6", NBDP_SHOULD,
    test_export_name_after_info,
    "EXPORT_NAME after INFO enters transmission" },
};
NC_SUITE ("handshake", tests);
