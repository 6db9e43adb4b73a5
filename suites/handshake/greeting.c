/* Handshake suite: the server's greeting and the client flags. */
#include <string.h>

#include "conform.h"

/* The greeting is judged by the rule engine: magics, handshake flags. */
static void
test_greeting (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  uint16_t gflags;

  nc_greeting (t, c, &gflags);
  nc_log (t, "handshake flags 0x%04x", gflags);
}

static void
test_fixed_newstyle (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  uint16_t gflags;

  nc_greeting (t, c, &gflags);
  if (!(gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_info (t, "server does not offer fixed newstyle (flags 0x%04x): "
             "only NBD_OPT_EXPORT_NAME is possible", gflags);
}

/* A client flag the server did not offer: the server must drop the
 * connection.  Probed without a timeout: after the flags we send an
 * option; a server that answers it did not drop us.
 */
static void
test_unknown_cflags (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  struct nbdp_opt_reply r;
  uint32_t cflags = NBD_FLAG_C_FIXED_NEWSTYLE | (UINT32_C (1) << 30);

  nc_greeting (t, c, NULL);
  nc_send_cflags (t, c, cflags);
  nbdp_client_send_option (c->c, NBD_OPT_LIST, NULL, 0);
  if (nbdp_client_recv_option_reply (c->c, &r, 65536) == 0)
    nc_expect (t, false, "sent client flags 0x%08x (bit 30 unknown), then "
               "NBD_OPT_LIST; got an option reply (type 0x%08x); expected "
               "the server to close the connection", cflags, r.reply);
}

/* NO_ZEROES only when the server offered it. */
static void
test_no_zeroes_offer (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  struct nbdp_export exp;
  uint16_t gflags;

  nc_greeting (t, c, &gflags);
  if (!(gflags & NBD_FLAG_NO_ZEROES))
    nc_unsupported (t, "server did not offer NBD_FLAG_NO_ZEROES "
                    "(handshake flags 0x%04x)", gflags);
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_opt_export_name (c->c, t->cfg->export_name
                                   ? t->cfg->export_name : "", &exp) == -1)
    nc_error (t, "NBD_OPT_EXPORT_NAME failed: %s", nbdp_client_error (c->c));
  /* If zeroes were sent anyway, they are now read as a reply header. */
  c->s.transmission = true;
  c->s.export_size = exp.size;
  c->s.eflags = exp.eflags;
  {
    struct nc_result r;
    nc_cmd (t, c, NBD_CMD_READ, 0, 0, 512 > exp.size ? exp.size : 512,
            NULL, NULL, &r);
    nc_expect (t, r.complete && r.error == 0, "after NO_ZEROES and "
               "NBD_OPT_EXPORT_NAME, a 512-byte READ at 0 got %s; expected "
               "a clean reply (were 124 zero bytes sent anyway?)",
               nc_errstr (&r));
  }
}

static const struct nc_test tests[] = {
  { "greeting", "COMPAT-BASE-1 FLAG-HS-3", NBDP_MUST,
    test_greeting, "greeting has NBDMAGIC, IHAVEOPT and only known flags" },
  { "fixed-newstyle", "FLAG-HS-1", NBDP_SHOULD, test_fixed_newstyle,
    "server offers fixed newstyle" },
  { "unknown-client-flags", "FLAG-CLI-6 HS-NEW-8", NBDP_MUST,
    test_unknown_cflags, "unknown client flag makes the server hang up" },
  { "no-zeroes", "FLAG-HS-2 FLAG-CLI-4", NBDP_MUST, test_no_zeroes_offer,
    "with NO_ZEROES agreed, EXPORT_NAME sends no padding" },
};
NC_SUITE ("handshake", tests);
