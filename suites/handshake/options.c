/* Handshake suite: option haggling other than INFO/GO (see go.c). */
#include <inttypes.h>
#include <string.h>

#include "conform.h"

/* Greeting and fixed-newstyle flags: ready for options. */
static struct nc_conn *
start (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  uint16_t gflags;

  nc_greeting (t, c, &gflags);
  if (!(gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_unsupported (t, "server does not offer fixed newstyle");
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE);
  return c;
}

static const char *
rep (uint32_t r, char *buf, size_t n)
{
  return nbdp_name_or (nbdp_name_of_rep (r), buf, n, r);
}

/* The negotiation must go on after an error reply: GO still works. */
static void
expect_go_works (struct nc_ctx *t, struct nc_conn *c, const char *after)
{
  unsigned char go[4 + NBD_MAX_STRING + 2];
  const char *name = c->export_name ? c->export_name
    : t->cfg->export_name ? t->cfg->export_name : "";
  size_t nl = strlen (name);
  uint32_t r;
  char rb[40];

  nbdp_put32 (go, nl);
  memcpy (go + 4, name, nl);
  nbdp_put16 (go + 4 + nl, 0);
  nc_send_option (t, c, NBD_OPT_GO, go, 6 + nl);
  r = nc_option_final (t, c);
  nc_expect (t, r == NBD_REP_ACK, "after %s, sent NBD_OPT_GO for \"%s\": "
             "got %s, expected NBD_REP_ACK (negotiation continues)", after,
             name, rep (r, rb, sizeof rb));
}

static void
test_unknown_option (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  const uint32_t opt = 0x4e430001;  /* not assigned by the protocol */
  uint32_t r;
  char rb[40];

  nc_send_option (t, c, opt, "xyz", 3);
  r = nc_option_final (t, c);
  nc_expect (t, r == NBD_REP_ERR_UNSUP, "sent option 0x%08" PRIx32
             " (unknown) with 3 bytes of data: got %s, expected "
             "NBD_REP_ERR_UNSUP", opt, rep (r, rb, sizeof rb));
  expect_go_works (t, c, "an unknown option");
}

static void
test_list (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  struct nbdp_opt_reply r;
  unsigned servers = 0;
  char rb[40];

  nc_send_option (t, c, NBD_OPT_LIST, NULL, 0);
  while (nc_option_reply (t, c, &r) == NBDP_RULES_MORE)
    if (r.reply == NBD_REP_SERVER)
      servers++;
  if (r.reply == NBD_REP_ERR_UNSUP || r.reply == NBD_REP_ERR_POLICY)
    nc_unsupported (t, "NBD_OPT_LIST answered with %s",
                    rep (r.reply, rb, sizeof rb));
  nc_expect (t, r.reply == NBD_REP_ACK, "NBD_OPT_LIST: final reply %s "
             "after %u NBD_REP_SERVER, expected NBD_REP_ACK",
             rep (r.reply, rb, sizeof rb), servers);
  nc_log (t, "%u exports listed", servers);
  expect_go_works (t, c, "NBD_OPT_LIST");
}

static void
test_list_with_data (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  uint32_t r;
  char rb[40];

  nc_send_option (t, c, NBD_OPT_LIST, "junk", 4);
  r = nc_option_final (t, c);
  nc_expect (t, r == NBD_REP_ERR_INVALID, "sent NBD_OPT_LIST with 4 bytes "
             "of data: got %s, expected NBD_REP_ERR_INVALID",
             rep (r, rb, sizeof rb));
}

static void
test_abort (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  struct nbdp_opt_reply r;
  char rb[40];

  nc_send_option (t, c, NBD_OPT_ABORT, NULL, 0);
  if (nbdp_client_recv_option_reply (c->c, &r, 65536) == -1) {
    nc_expect (t, false, "sent NBD_OPT_ABORT: the connection ended without "
               "a reply (%s); expected NBD_REP_ACK", nbdp_client_error (c->c));
    return;
  }
  nc_expect (t, r.reply == NBD_REP_ACK && r.option == NBD_OPT_ABORT,
             "sent NBD_OPT_ABORT: got %s for option %" PRIu32 ", expected "
             "NBD_REP_ACK", rep (r.reply, rb, sizeof rb), r.option);
}

static void
test_structured_reply_option (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  uint32_t r;
  char rb[40];

  nc_send_option (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  r = nc_option_final (t, c);
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with "
                    "NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ACK, "sent NBD_OPT_STRUCTURED_REPLY: got %s, "
             "expected NBD_REP_ACK or NBD_REP_ERR_UNSUP",
             rep (r, rb, sizeof rb));
  expect_go_works (t, c, "NBD_OPT_STRUCTURED_REPLY");
}

static void
test_structured_reply_data (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  uint32_t r;
  char rb[40];

  nc_send_option (t, c, NBD_OPT_STRUCTURED_REPLY, "x", 1);
  r = nc_option_final (t, c);
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with "
                    "NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ERR_INVALID, "sent NBD_OPT_STRUCTURED_REPLY "
             "with 1 byte of data: got %s, expected NBD_REP_ERR_INVALID",
             rep (r, rb, sizeof rb));
}

static void
test_extended_headers_option (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  uint32_t r;
  char rb[40];

  nc_send_option (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);
  r = nc_option_final (t, c);
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with "
                    "NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ACK, "sent NBD_OPT_EXTENDED_HEADERS: got %s, "
             "expected NBD_REP_ACK or NBD_REP_ERR_UNSUP",
             rep (r, rb, sizeof rb));
  /* After EH the server must support GO (rules: EH-OPT-2). */
  expect_go_works (t, c, "NBD_OPT_EXTENDED_HEADERS");
}

static const struct nc_test tests[] = {
  { "unknown-option", "COMPAT-BASE-2 HS-TERM-10", NBDP_MUST,
    test_unknown_option, "unknown option gets NBD_REP_ERR_UNSUP, "
    "negotiation goes on" },
  { "list", "REP-SERVER-1 COMPAT-BASE-1", NBDP_MUST, test_list,
    "NBD_OPT_LIST: NBD_REP_SERVER replies then NBD_REP_ACK" },
  { "list-with-data", "OPT-LIST-3", NBDP_SHOULD, test_list_with_data,
    "NBD_OPT_LIST with data is rejected with NBD_REP_ERR_INVALID" },
  { "abort", "OPT-ABORT-1", NBDP_MUST, test_abort,
    "NBD_OPT_ABORT is answered with NBD_REP_ACK" },
  { "structured-reply", "COMPAT-BASE-2 OPT-SR-3", NBDP_MUST,
    test_structured_reply_option,
    "NBD_OPT_STRUCTURED_REPLY is acked or unsupported" },
  { "structured-reply-data", "OPT-SR-2", NBDP_SHOULD,
    test_structured_reply_data,
    "NBD_OPT_STRUCTURED_REPLY with data gets NBD_REP_ERR_INVALID" },
  { "extended-headers", "EH-OPT-2 EH-OPT-11", NBDP_MUST,
    test_extended_headers_option,
    "NBD_OPT_EXTENDED_HEADERS is acked or unsupported; GO works after" },
};
NC_SUITE ("handshake", tests);
