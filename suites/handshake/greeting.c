/* Handshake suite: the server's greeting, the client flags, non-fixed
 * newstyle clients, the oldstyle handshake, and clients that leave early.
 */
#include <inttypes.h>
#include <string.h>

#include "hs.h"

/* The greeting is judged by the rule engine: magics, handshake flags. */
static void
test_greeting (struct nc_ctx *t)
{
  uint16_t gflags;

  hs_greet (t, &gflags);
  nc_log (t, "handshake flags 0x%04x", gflags);
}

/* Fixed newstyle is baseline; a server that answers options in the
 * fixed-newstyle format must say so with NBD_FLAG_FIXED_NEWSTYLE.
 */
static void
test_fixed_newstyle (struct nc_ctx *t)
{
  uint16_t gflags;
  struct nc_conn *c = hs_greet (t, &gflags);
  uint32_t r;

  if (!nc_expect (t, gflags & NBD_FLAG_FIXED_NEWSTYLE, "greeting: handshake "
                  "flags 0x%04x lack NBD_FLAG_FIXED_NEWSTYLE; expected it "
                  "(fixed newstyle is baseline)", gflags))
    return;
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE);
  r = hs_opt (t, c, NBD_OPT_LIST, NULL, 0);
  nc_log (t, "NBD_OPT_LIST answered with %s", hs_rep (r));
}

/* Send client flags the server must refuse, then an option as a probe:
 * the server must close instead of answering.
 */
static void
expect_cflags_dropped (struct nc_ctx *t, struct nc_conn *c, uint32_t cflags,
                       const char *why)
{
  int closed;

  nc_send_cflags (t, c, cflags);
  nbdp_client_send_option (c->c, NBD_OPT_LIST, NULL, 0);
  closed = hs_wait_close (t, c, HS_CLOSE_WAIT_MS);
  if (closed == 1)
    return;
  if (closed == 0) {
    struct nbdp_opt_reply r;
    if (nbdp_client_recv_option_reply (c->c, &r, 65536) == 0)
      nc_expect (t, false, "sent client flags 0x%08" PRIx32 " (%s), then "
                 "NBD_OPT_LIST; got %s; expected the server to drop the "
                 "connection", cflags, why, hs_rep (r.reply));
    else
      nc_expect (t, false, "sent client flags 0x%08" PRIx32 " (%s), then "
                 "NBD_OPT_LIST; got data (%s); expected the server to drop "
                 "the connection", cflags, why, nbdp_client_error (c->c));
  }
  else
    nc_expect (t, false, "sent client flags 0x%08" PRIx32 " (%s), then "
               "NBD_OPT_LIST; the connection was still open after %d ms; "
               "expected the server to drop it", cflags, why,
               HS_CLOSE_WAIT_MS);
}

static void
test_unknown_cflags (struct nc_ctx *t)
{
  struct nc_conn *c = hs_greet (t, NULL);

  expect_cflags_dropped (t, c, NBD_FLAG_C_FIXED_NEWSTYLE |
                         (UINT32_C (1) << 30), "bit 30 is not defined");
}

static void
test_cflag_bit2 (struct nc_ctx *t)
{
  struct nc_conn *c = hs_greet (t, NULL);

  expect_cflags_dropped (t, c, NBD_FLAG_C_FIXED_NEWSTYLE |
                         (UINT32_C (1) << 2), "bit 2 is not defined");
}

/* NBD_FLAG_C_NO_ZEROES without NBD_FLAG_NO_ZEROES offered. */
static void
test_no_zeroes_unoffered (struct nc_ctx *t)
{
  uint16_t gflags;
  struct nc_conn *c = hs_greet (t, &gflags);

  if (gflags & NBD_FLAG_NO_ZEROES)
    nc_unsupported (t, "server offers NBD_FLAG_NO_ZEROES (handshake flags "
                    "0x%04x): the flag cannot be sent unoffered", gflags);
  expect_cflags_dropped (t, c, NBD_FLAG_C_FIXED_NEWSTYLE |
                         NBD_FLAG_C_NO_ZEROES, "NO_ZEROES was not offered");
}

/* NO_ZEROES only when the server offered it. */
static void
test_no_zeroes (struct nc_ctx *t)
{
  uint16_t gflags;
  struct nc_conn *c = hs_greet (t, &gflags);
  struct nbdp_export exp;
  struct nc_result r;

  if (!(gflags & NBD_FLAG_NO_ZEROES))
    nc_unsupported (t, "server did not offer NBD_FLAG_NO_ZEROES "
                    "(handshake flags 0x%04x)", gflags);
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_opt_export_name (c->c, hs_export (t), &exp) == -1)
    nc_error (t, "NBD_OPT_EXPORT_NAME failed: %s", nbdp_client_error (c->c));
  /* If zeroes were sent anyway, they are now read as a reply header. */
  c->s.transmission = true;
  c->s.export_size = exp.size;
  c->s.eflags = exp.eflags;
  hs_enter (t, c);
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.error == 0, "after NO_ZEROES and "
             "NBD_OPT_EXPORT_NAME, a 64 KiB READ at 0 got %s; expected "
             "a clean reply (were 124 zero bytes sent anyway?)",
             nc_errstr (&r));
}

/* NO_ZEROES agreed on one connection does not leak into the next: a
 * client that did not set NBD_FLAG_C_NO_ZEROES gets the 124 zeroes.
 */
static void
test_no_zeroes_per_connection (struct nc_ctx *t)
{
  uint16_t gflags;
  struct nc_conn *c = hs_greet (t, &gflags);
  struct nbdp_export exp;
  struct nc_result r;

  if (!(gflags & NBD_FLAG_NO_ZEROES))
    nc_unsupported (t, "server did not offer NBD_FLAG_NO_ZEROES");
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_opt_export_name (c->c, hs_export (t), &exp) == -1)
    nc_error (t, "NBD_OPT_EXPORT_NAME failed: %s", nbdp_client_error (c->c));
  nbdp_client_close (c->c);

  c = hs_greet (t, &gflags);
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE);
  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  if (nbdp_client_opt_export_name (c->c, hs_export (t), &exp) == -1) {
    nc_expect (t, false, "second connection without NO_ZEROES: "
               "NBD_OPT_EXPORT_NAME failed: %s; expected size, flags and "
               "124 zero bytes", nbdp_client_error (c->c));
    return;
  }
  c->s.transmission = true;
  c->s.export_size = exp.size;
  c->s.eflags = exp.eflags;
  hs_enter (t, c);
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.error == 0, "second connection without "
             "NO_ZEROES (the first had it): READ of 64 KiB after "
             "NBD_OPT_EXPORT_NAME got %s; expected success (zeroes missing?)",
             nc_errstr (&r));
}

/* A client that does not set NBD_FLAG_C_FIXED_NEWSTYLE (old newstyle):
 * NBD_OPT_EXPORT_NAME, with the 124 zero bytes, still works.
 */
static void
test_nonfixed_export_name (struct nc_ctx *t)
{
  struct nc_conn *c = hs_greet (t, NULL);
  struct nbdp_export exp;
  struct nc_result r;

  nc_send_cflags (t, c, 0);
  c->c->cflags = 0;
  if (nbdp_client_opt_export_name (c->c, hs_export (t), &exp) == -1) {
    nc_expect (t, false, "client flags 0 (no fixed newstyle), then "
               "NBD_OPT_EXPORT_NAME \"%s\": %s; expected size, flags and "
               "124 zero bytes", hs_export (t), nbdp_client_error (c->c));
    return;
  }
  if (exp.padding_nonzero)
    nc_fail (t, "COMPAT-BASE-1", "NBD_OPT_EXPORT_NAME reply: the 124 "
             "reserved bytes were not all zero");
  c->s.transmission = true;
  c->s.export_size = exp.size;
  c->s.eflags = exp.eflags;
  {
    struct nbdp_violations v;
    nbdp_violations_clear (&v);
    nbdp_rules_check_eflags (&c->s, exp.eflags, &v);
    nc_violations (t, &v);
  }
  hs_enter (t, c);
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.error == 0, "non-fixed newstyle session: "
             "READ of 64 KiB at 0 got %s, expected success",
             nc_errstr (&r));
}

/* A non-fixed client sending another option: the server may honour fixed
 * newstyle anyway (an option reply) or, as old servers did, hang up.
 */
static void
test_nonfixed_option (struct nc_ctx *t)
{
  struct nc_conn *c = hs_greet (t, NULL);
  uint32_t r;

  nc_send_cflags (t, c, 0);
  nc_send_option (t, c, NBD_OPT_LIST, NULL, 0);
  if (hs_reply_or_close (t, c, &r, "HS-TERM-6", "client flags 0 then "
                         "NBD_OPT_LIST"))
    nc_info (t, "client flags 0 (no fixed newstyle), NBD_OPT_LIST: the "
             "server answered %s (it honours fixed newstyle anyway)",
             hs_rep (r));
  else
    nc_info (t, "client flags 0 (no fixed newstyle), NBD_OPT_LIST: the "
             "server closed the connection");
}

/* Without both fixed-newstyle flags the server is in NOTLS mode: no ACK
 * to NBD_OPT_STARTTLS.
 */
static void
test_nonfixed_starttls (struct nc_ctx *t)
{
  struct nc_conn *c = hs_greet (t, NULL);
  uint32_t r;

  nc_send_cflags (t, c, 0);
  nc_send_option (t, c, NBD_OPT_STARTTLS, NULL, 0);
  if (!hs_reply_or_close (t, c, &r, NULL, "client flags 0 then "
                          "NBD_OPT_STARTTLS")) {
    nc_log (t, "the server closed the connection");
    return;
  }
  nc_expect (t, r != NBD_REP_ACK, "client flags 0 (no fixed newstyle), "
             "then NBD_OPT_STARTTLS: got NBD_REP_ACK; expected an error "
             "or a closed connection (the server must be in NOTLS mode)");
  nc_expect (t, r != NBD_REP_ERR_TLS_REQD, "client flags 0 (no fixed "
             "newstyle), then NBD_OPT_STARTTLS: got NBD_REP_ERR_TLS_REQD; "
             "expected another error (NOTLS mode)");
}

/* The oldstyle handshake: no handshake flags, HAS_FLAGS, zeroes. */
static void
test_oldstyle (struct nc_ctx *t)
{
  struct nc_conn *c = nc_connect (t);
  unsigned char b[8 + 8 + 8 + 4 + 124];
  struct nbdp_violations v;
  struct nc_result r;
  bool oldstyle;
  uint32_t flags;
  size_t i;

  if (nbdp_client_recv_raw (c->c, b, 18) == -1)
    nc_fail (t, "COMPAT-BASE-1", "reading the greeting: %s",
             nbdp_client_error (c->c)), nc_done (t);
  nbdp_violations_clear (&v);
  nbdp_rules_check_greeting (&c->s, b, &oldstyle, &v);
  nc_violations (t, &v);
  if (!oldstyle)
    nc_unsupported (t, "the server uses the newstyle handshake");
  if (nbdp_client_recv_raw (c->c, b + 18, sizeof b - 18) == -1)
    nc_fail (t, "COMPAT-BASE-1", "reading the oldstyle greeting (152 "
             "bytes): %s", nbdp_client_error (c->c)), nc_done (t);
  flags = nbdp_get32 (b + 24);
  nc_expect (t, (flags >> 16) == 0, "oldstyle greeting: got flags 0x%08"
             PRIx32 "; expected the upper 16 bits (handshake flags) clear",
             flags);
  for (i = 28; i < sizeof b && b[i] == 0; i++)
    ;
  if (i < sizeof b)
    nc_fail (t, "COMPAT-BASE-1", "oldstyle greeting: reserved byte %zu of "
             "124 is 0x%02x, expected zero", i - 28, b[i]);
  c->s.transmission = true;
  c->s.export_size = nbdp_get64 (b + 16);
  c->s.eflags = flags & 0xffff;
  nbdp_violations_clear (&v);
  nbdp_rules_check_eflags (&c->s, c->s.eflags, &v);
  nc_violations (t, &v);
  c->c->oldstyle = true;
  hs_enter (t, c);
  hs_read_ok (t, c, &r);
  nc_expect (t, r.complete && r.error == 0, "oldstyle session: READ of "
             "64 KiB at 0 got %s, expected success", nc_errstr (&r));
}

/* Clients that leave early do not take the server down. */
static void
test_close_after_greeting (struct nc_ctx *t)
{
  struct nc_conn *c = hs_greet (t, NULL);

  nbdp_client_close (c->c);
  c = hs_start (t);
  hs_expect_go_works (t, c, "an earlier client closed right after the "
                      "greeting", NULL);
}

static void
test_close_mid_option (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  unsigned char half[10];

  nbdp_put64 (half, NBD_NEW_VERSION);
  nbdp_put16 (half + 8, 0);
  nbdp_client_send_raw (c->c, half, sizeof half);
  nbdp_client_close (c->c);
  c = hs_start (t);
  hs_expect_go_works (t, c, "an earlier client closed in the middle of an "
                      "option header", NULL);
}

static const struct nc_test tests[] = {
  { "greeting", "COMPAT-BASE-1 FLAG-HS-3", NBDP_MUST,
    test_greeting, "greeting has NBDMAGIC, IHAVEOPT and only known flags" },
  { "fixed-newstyle", "COMPAT-BASE-1 FLAG-HS-1 OPT-EXPORT-2", NBDP_MUST,
    test_fixed_newstyle, "server offers fixed newstyle and answers options" },
  { "unknown-client-flags", "FLAG-CLI-6 HS-NEW-8", NBDP_MUST,
    test_unknown_cflags, "unknown client flag (bit 30): server hangs up" },
  { "client-flag-bit2", "FLAG-CLI-6 HS-NEW-8", NBDP_MUST,
    test_cflag_bit2, "unknown client flag (bit 2): server hangs up" },
  { "no-zeroes-unoffered", "FLAG-CLI-6", NBDP_MUST,
    test_no_zeroes_unoffered,
    "C_NO_ZEROES without NO_ZEROES offered: server hangs up" },
  { "no-zeroes", "FLAG-HS-2 FLAG-CLI-4", NBDP_MUST, test_no_zeroes,
    "with NO_ZEROES agreed, EXPORT_NAME sends no padding" },
  { "no-zeroes-per-connection", "FLAG-HS-4", NBDP_SHOULD,
    test_no_zeroes_per_connection,
    "NO_ZEROES of one connection does not change the next" },
  { "nonfixed-export-name", "COMPAT-MAX-6 FLAG-CLI-2", NBDP_SHOULD,
    test_nonfixed_export_name,
    "a non-fixed newstyle client gets in with EXPORT_NAME" },
  { "nonfixed-option", "FLAG-CLI-2 HS-TERM-3", NBDP_MUST,
    test_nonfixed_option,
    "a non-fixed client's option: reply or hang-up (recorded)" },
  { "nonfixed-starttls", "TLS-MODE-6", NBDP_MUST, test_nonfixed_starttls,
    "without fixed newstyle the server is NOTLS: STARTTLS not acked" },
  { "oldstyle", "FLAG-HS-5 FLAG-TX-4", NBDP_MUST, test_oldstyle,
    "oldstyle greeting: no handshake flags, HAS_FLAGS, zeroes" },
  { "close-after-greeting", "HS-TERM-8", NBDP_SHOULD,
    test_close_after_greeting,
    "a client leaving after the greeting does not disturb the next" },
  { "close-mid-option", "HS-TERM-8", NBDP_SHOULD, test_close_mid_option,
    "a client leaving inside an option does not disturb the next" },
};
NC_SUITE ("handshake", tests);
