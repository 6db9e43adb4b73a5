/* Handshake suite: option haggling in general (unknown and malformed
 * options, NBD_OPT_LIST, NBD_OPT_ABORT, NBD_OPT_STRUCTURED_REPLY and
 * NBD_OPT_EXTENDED_HEADERS); INFO/GO are in go.c, meta contexts in meta.c.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"

#define UNKNOWN_OPT UINT32_C (0x4e430001)  /* not assigned by the protocol */

/* One unknown option with len bytes of data: NBD_REP_ERR_UNSUP. */
static void
unknown_option (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
                uint32_t len)
{
  unsigned char *data = calloc (1, len ? len : 1);
  uint32_t r;

  if (data == NULL)
    nc_error (t, "out of memory");
  memset (data, 'x', len);
  r = hs_opt (t, c, opt, data, len);
  free (data);
  nc_expect (t, r == NBD_REP_ERR_UNSUP, "sent option 0x%08" PRIx32
             " (not implemented by servers) with %" PRIu32 " bytes of "
             "data: got %s, expected NBD_REP_ERR_UNSUP", opt, len,
             hs_rep (r));
}

static void
test_unknown_option (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  unknown_option (t, c, UNKNOWN_OPT, 3);
  hs_expect_go_works (t, c, "an unknown option", "COMPAT-BASE-3");
}

static void
test_unknown_option_empty (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  unknown_option (t, c, UNKNOWN_OPT + 1, 0);
  hs_expect_go_works (t, c, "an unknown option without data",
                      "COMPAT-BASE-3");
}

/* The option length lets the server skip data it does not understand. */
static void
test_unknown_option_4k (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  unknown_option (t, c, UNKNOWN_OPT + 2, 4096);
  hs_expect_go_works (t, c, "an unknown option with 4096 bytes of data",
                      "COMPAT-BASE-3");
}

/* A server does not give up on a client whose options keep failing. */
static void
test_unknown_options_many (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  for (uint32_t i = 0; i < 16; i++)
    unknown_option (t, c, UNKNOWN_OPT + 16 + i, i);
  hs_expect_go_works (t, c, "16 unknown options in a row", NULL);
}

/* NBD_OPT_PEEK_EXPORT (4) was withdrawn; option 0 was never defined. */
static void
test_peek_export (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  unknown_option (t, c, NBD_OPT_PEEK_EXPORT, 0);
  hs_expect_go_works (t, c, "NBD_OPT_PEEK_EXPORT", "COMPAT-BASE-3");
}

static void
test_option_zero (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  unknown_option (t, c, 0, 0);
  hs_expect_go_works (t, c, "option 0", "COMPAT-BASE-3");
}

/* An option header with a wrong magic breaks a MUST: the server may hang
 * up, or answer; recorded.
 */
static void
test_bad_option_magic (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r;

  nbdp_rules_option_sent (&c->s, NBD_OPT_LIST, NULL, 0);
  nbdp_client_send_option_raw (c->c, UINT64_C (0x0123456789abcdef),
                               NBD_OPT_LIST, 0, NULL, 0);
  if (hs_reply_or_close (t, c, &r, "HS-TERM-6", "an NBD_OPT_LIST header "
                         "with magic 0x0123456789abcdef"))
    nc_info (t, "option header with a wrong magic: the server answered "
             "%s", hs_rep (r));
  else
    nc_info (t, "option header with a wrong magic: the server hung up");
}

static void
test_list (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nbdp_opt_reply r;
  unsigned servers = 0;

  nc_send_option (t, c, NBD_OPT_LIST, NULL, 0);
  while (nc_option_reply (t, c, &r) == NBDP_RULES_MORE)
    if (r.reply == NBD_REP_SERVER)
      servers++;
  if (r.reply == NBD_REP_ERR_POLICY)
    nc_unsupported (t, "NBD_OPT_LIST answered with %s", hs_rep (r.reply));
  nc_expect (t, r.reply == NBD_REP_ACK, "NBD_OPT_LIST: final reply %s "
             "after %u NBD_REP_SERVER, expected NBD_REP_ACK (or "
             "NBD_REP_ERR_POLICY)", hs_rep (r.reply), servers);
  nc_log (t, "%u exports listed", servers);
  hs_expect_go_works (t, c, "NBD_OPT_LIST", "COMPAT-BASE-1");
}

static void
test_list_with_data (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_LIST, "junk", 4);

  nc_expect (t, r == NBD_REP_ERR_INVALID, "sent NBD_OPT_LIST with 4 bytes "
             "of data: got %s, expected NBD_REP_ERR_INVALID", hs_rep (r));
  hs_expect_go_works (t, c, "NBD_OPT_LIST with data", "HS-TERM-10");
}

/* Every name NBD_OPT_LIST gives is one NBD_OPT_INFO accepts. */
static void
test_list_names_usable (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nbdp_opt_reply r;
  char *names[8];
  size_t n = 0, more = 0;

  nc_send_option (t, c, NBD_OPT_LIST, NULL, 0);
  while (nc_option_reply (t, c, &r) == NBDP_RULES_MORE) {
    uint32_t nl;
    if (r.reply != NBD_REP_SERVER || r.length < 4 ||
        (nl = nbdp_get32 (r.payload)) > r.length - 4 || nl > NBD_MAX_STRING)
      continue;
    if (n == 8) {
      more++;
      continue;
    }
    names[n] = strndup ((const char *) r.payload + 4, nl);
    if (names[n] == NULL)
      nc_error (t, "out of memory");
    n++;
  }
  if (r.reply != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_LIST answered with %s", hs_rep (r.reply));
  if (n == 0)
    nc_unsupported (t, "NBD_OPT_LIST listed no export");
  for (size_t i = 0; i < n; i++) {
    uint32_t ri = hs_info (t, c, NBD_OPT_INFO, names[i], NULL, 0);
    nc_expect (t, ri == NBD_REP_ACK, "NBD_OPT_LIST listed \"%s\"; "
               "NBD_OPT_INFO for that name got %s, expected NBD_REP_ACK "
               "(a listed name is one INFO/GO accept)", names[i],
               hs_rep (ri));
  }
  nc_log (t, "%zu listed names checked (%zu more not checked)", n, more);
}

static void
test_abort (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nbdp_opt_reply r;

  nc_send_option (t, c, NBD_OPT_ABORT, NULL, 0);
  if (nbdp_client_recv_option_reply (c->c, &r, 65536) == -1) {
    nc_expect (t, false, "sent NBD_OPT_ABORT: the connection ended without "
               "a reply (%s); expected NBD_REP_ACK", nbdp_client_error (c->c));
    return;
  }
  nc_expect (t, r.reply == NBD_REP_ACK && r.option == NBD_OPT_ABORT,
             "sent NBD_OPT_ABORT: got %s for option %" PRIu32 ", expected "
             "NBD_REP_ACK", hs_rep (r.reply), r.option);
}

/* Data with NBD_OPT_ABORT is to be ignored: still NBD_REP_ACK. */
static void
test_abort_with_data (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nbdp_opt_reply r;

  nc_send_option (t, c, NBD_OPT_ABORT, "junk", 4);
  if (nbdp_client_recv_option_reply (c->c, &r, 65536) == -1) {
    nc_expect (t, false, "sent NBD_OPT_ABORT with 4 bytes of data: the "
               "connection ended without a reply (%s); expected "
               "NBD_REP_ACK (data ignored)", nbdp_client_error (c->c));
    return;
  }
  nc_expect (t, r.reply == NBD_REP_ACK, "sent NBD_OPT_ABORT with 4 bytes "
             "of data: got %s, expected NBD_REP_ACK (data ignored)",
             hs_rep (r.reply));
}

/* NBD_OPT_ABORT after other options. */
static void
test_abort_after_options (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nbdp_opt_reply r;

  hs_opt (t, c, NBD_OPT_LIST, NULL, 0);
  hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0);
  hs_opt (t, c, UNKNOWN_OPT, NULL, 0);
  nc_send_option (t, c, NBD_OPT_ABORT, NULL, 0);
  if (nbdp_client_recv_option_reply (c->c, &r, 65536) == -1) {
    nc_expect (t, false, "sent LIST, INFO, an unknown option, then "
               "NBD_OPT_ABORT: the connection ended without a reply (%s); "
               "expected NBD_REP_ACK", nbdp_client_error (c->c));
    return;
  }
  nc_expect (t, r.reply == NBD_REP_ACK, "sent LIST, INFO, an unknown "
             "option, then NBD_OPT_ABORT: got %s, expected NBD_REP_ACK",
             hs_rep (r.reply));
}

/* The client sends NBD_OPT_ABORT and leaves without the reply; the
 * server copes and goes on serving.
 */
static void
test_abort_close (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);

  nbdp_client_send_option (c->c, NBD_OPT_ABORT, NULL, 0);
  nbdp_client_close (c->c);
  c = hs_start (t);
  hs_expect_go_works (t, c, "a client sent NBD_OPT_ABORT and closed "
                      "without reading the reply", NULL);
}

static void
test_structured_reply_option (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;
  uint32_t r = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with "
                    "NBD_REP_ERR_UNSUP");
  if (!nc_expect (t, r == NBD_REP_ACK, "sent NBD_OPT_STRUCTURED_REPLY: got "
                  "%s, expected NBD_REP_ACK or NBD_REP_ERR_UNSUP",
                  hs_rep (r)))
    return;
  hs_expect_go_works (t, c, "NBD_OPT_STRUCTURED_REPLY", "COMPAT-BASE-3");
  if (!c->s.transmission)
    return;
  hs_read_ok (t, c, &res);
  nc_expect (t, res.complete && res.simple == 0 && res.chunks > 0,
             "structured replies acked: READ of 64 KiB got %u simple "
             "replies and %u chunks (%s); expected structured chunks only",
             res.simple, res.chunks, nc_errstr (&res));
}

static void
test_structured_reply_data (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, "x", 1);

  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with "
                    "NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ERR_INVALID, "sent NBD_OPT_STRUCTURED_REPLY "
             "with 1 byte of data: got %s, expected NBD_REP_ERR_INVALID",
             hs_rep (r));
}

/* A state-changing option sent twice: ACK again or NBD_REP_ERR_INVALID;
 * the state stays.
 */
static void
repeated (struct nc_ctx *t, uint32_t opt)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;
  uint32_t r1, r2;

  r1 = hs_opt (t, c, opt, NULL, 0);
  if (r1 != NBD_REP_ACK)
    nc_unsupported (t, "%s answered with %s", hs_opt_name (opt),
                    hs_rep (r1));
  r2 = hs_opt (t, c, opt, NULL, 0);
  if (r2 == NBD_REP_ACK || r2 == NBD_REP_ERR_INVALID)
    nc_info (t, "%s sent twice: the second got %s", hs_opt_name (opt),
             hs_rep (r2));
  else
    nc_expect (t, false, "%s sent twice: the second got %s, expected "
               "NBD_REP_ACK or NBD_REP_ERR_INVALID", hs_opt_name (opt),
               hs_rep (r2));
  hs_expect_go_works (t, c, "the repeated option", "COMPAT-BASE-3");
  if (c->s.transmission)
    hs_read_ok (t, c, &res);   /* rules: the reply form agreed */
}

static void
test_structured_reply_twice (struct nc_ctx *t)
{
  repeated (t, NBD_OPT_STRUCTURED_REPLY);
}

static void
test_extended_headers_twice (struct nc_ctx *t)
{
  repeated (t, NBD_OPT_EXTENDED_HEADERS);
}

static void
test_extended_headers_option (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;
  uint32_t r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);

  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with "
                    "NBD_REP_ERR_UNSUP");
  if (!nc_expect (t, r == NBD_REP_ACK, "sent NBD_OPT_EXTENDED_HEADERS: got "
                  "%s, expected NBD_REP_ACK or NBD_REP_ERR_UNSUP",
                  hs_rep (r)))
    return;
  /* After EH the server must support GO (rules: EH-OPT-2). */
  hs_expect_go_works (t, c, "NBD_OPT_EXTENDED_HEADERS", "EH-OPT-11");
  if (c->s.transmission)
    hs_read_ok (t, c, &res);   /* rules: extended replies only */
}

static void
test_extended_headers_data (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, "x", 1);

  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with "
                    "NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ERR_INVALID, "sent NBD_OPT_EXTENDED_HEADERS "
             "with 1 byte of data: got %s, expected NBD_REP_ERR_INVALID",
             hs_rep (r));
}

/* Extended headers without structured replies first. */
static void
test_extended_headers_without_sr (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);

  if (r == NBD_REP_ACK)
    return;
  /* Maybe only after structured replies? */
  nbdp_client_close (c->c);
  c = hs_start (t);
  if (hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0) != NBD_REP_ACK ||
      hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0) != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s, also "
                    "after structured replies", hs_rep (r));
  nc_expect (t, false, "NBD_OPT_EXTENDED_HEADERS as the first option got "
             "%s, but was acked after NBD_OPT_STRUCTURED_REPLY; expected "
             "it without structured replies too", hs_rep (r));
}

/* Structured replies requested after extended headers: the server may
 * refuse (NBD_REP_ERR_EXT_HEADER_REQD) or ack; extended headers stay.
 */
static void
test_sr_after_eh (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;
  uint32_t r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);

  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                    hs_rep (r));
  r = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  nc_info (t, "NBD_OPT_STRUCTURED_REPLY after extended headers: %s",
           hs_rep (r));
  hs_expect_go_works (t, c, "extended headers then structured replies",
                      "EH-OPT-11");
  if (c->s.transmission)
    hs_read_ok (t, c, &res);   /* rules: still extended replies */
}

static void
test_eh_after_sr (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;
  uint32_t r = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                    hs_rep (r));
  r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);
  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS after structured replies "
                    "answered with %s", hs_rep (r));
  hs_expect_go_works (t, c, "structured replies then extended headers",
                      "EH-OPT-11");
  if (c->s.transmission)
    hs_read_ok (t, c, &res);   /* rules: extended replies only */
}

/* An error reply may carry a message: a valid string (rules). */
static void
test_error_message (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nbdp_opt_reply r;

  nc_send_option (t, c, UNKNOWN_OPT, NULL, 0);
  while (nc_option_reply (t, c, &r) == NBDP_RULES_MORE)
    ;
  if (r.length)
    nc_info (t, "error reply %s carries a message: \"%.*s\"",
             hs_rep (r.reply), (int) (r.length > 200 ? 200 : r.length),
             (const char *) r.payload);
  else
    nc_log (t, "error reply %s without a message", hs_rep (r.reply));
}

static const struct nc_test tests[] = {
  { "unknown-option", "COMPAT-BASE-2 COMPAT-BASE-3 HS-TERM-10", NBDP_MUST,
    test_unknown_option, "unknown option gets NBD_REP_ERR_UNSUP, "
    "negotiation goes on" },
  { "unknown-option-empty", "COMPAT-BASE-2 COMPAT-BASE-3", NBDP_MUST,
    test_unknown_option_empty,
    "unknown option without data gets NBD_REP_ERR_UNSUP" },
  { "unknown-option-4k", "COMPAT-BASE-2 COMPAT-BASE-3", NBDP_MUST,
    test_unknown_option_4k,
    "unknown option with 4 KiB of data is skipped and refused" },
  { "unknown-options-many", "HS-TERM-10 HS-TERM-6 COMPAT-BASE-2",
    NBDP_MUST, test_unknown_options_many,
    "16 failing options in a row: the server keeps negotiating" },
  { "peek-export", "COMPAT-BASE-2 COMPAT-BASE-3", NBDP_MUST,
    test_peek_export, "withdrawn NBD_OPT_PEEK_EXPORT gets NBD_REP_ERR_UNSUP" },
  { "option-zero", "COMPAT-BASE-2 COMPAT-BASE-3", NBDP_MUST,
    test_option_zero, "option 0 gets NBD_REP_ERR_UNSUP" },
  { "bad-option-magic", "HS-TERM-3", NBDP_MUST, test_bad_option_magic,
    "option with a wrong magic: hang-up or reply (recorded)" },
  { "list", "COMPAT-BASE-1 REP-SERVER-1 GEN-STR-1 GEN-STR-3", NBDP_MUST,
    test_list, "NBD_OPT_LIST: NBD_REP_SERVER replies then NBD_REP_ACK" },
  { "list-with-data", "OPT-LIST-3", NBDP_SHOULD, test_list_with_data,
    "NBD_OPT_LIST with data is rejected with NBD_REP_ERR_INVALID" },
  { "list-names-usable", "REP-SERVER-1 OPT-GO-12", NBDP_MUST,
    test_list_names_usable, "every listed export name is accepted by INFO" },
  { "abort", "OPT-ABORT-1 COMPAT-BASE-1", NBDP_MUST, test_abort,
    "NBD_OPT_ABORT is answered with NBD_REP_ACK" },
  { "abort-with-data", "OPT-ABORT-3", NBDP_SHOULD, test_abort_with_data,
    "NBD_OPT_ABORT with data: data ignored, NBD_REP_ACK" },
  { "abort-after-options", "OPT-ABORT-1", NBDP_MUST,
    test_abort_after_options, "NBD_OPT_ABORT after other options is acked" },
  { "abort-close", "OPT-ABORT-5", NBDP_SHOULD, test_abort_close,
    "client closing right after NBD_OPT_ABORT does not upset the server" },
  { "structured-reply", "OPT-SR-3 COMPAT-BASE-2", NBDP_MUST,
    test_structured_reply_option,
    "NBD_OPT_STRUCTURED_REPLY acked: READ gets structured replies" },
  { "structured-reply-data", "OPT-SR-2", NBDP_SHOULD,
    test_structured_reply_data,
    "NBD_OPT_STRUCTURED_REPLY with data gets NBD_REP_ERR_INVALID" },
  { "structured-reply-twice", "HS-FIX-6 OPT-SR-3", NBDP_MUST,
    test_structured_reply_twice,
    "STRUCTURED_REPLY twice: ACK or ERR_INVALID, the state stays" },
  { "extended-headers", "EH-OPT-2 EH-OPT-11 EH-OPT-18", NBDP_MUST,
    test_extended_headers_option,
    "NBD_OPT_EXTENDED_HEADERS acked: GO works, replies are extended" },
  { "extended-headers-data", "EH-OPT-10", NBDP_SHOULD,
    test_extended_headers_data,
    "NBD_OPT_EXTENDED_HEADERS with data gets NBD_REP_ERR_INVALID" },
  { "extended-headers-twice", "HS-FIX-6 EH-OPT-18", NBDP_MUST,
    test_extended_headers_twice,
    "EXTENDED_HEADERS twice: ACK or ERR_INVALID, the state stays" },
  { "extended-headers-without-sr", "EH-OPT-13", NBDP_SHOULD,
    test_extended_headers_without_sr,
    "extended headers are offered without structured replies first" },
  { "sr-after-eh", "EH-OPT-18 EH-OPT-11", NBDP_MUST, test_sr_after_eh,
    "STRUCTURED_REPLY after EXTENDED_HEADERS: replies stay extended" },
  { "eh-after-sr", "EH-OPT-18 EH-OPT-12", NBDP_MUST, test_eh_after_sr,
    "EXTENDED_HEADERS after STRUCTURED_REPLY: replies are extended" },
  { "error-message", "REP-ERR-1 GEN-STR-1 GEN-STR-2 GEN-STR-3", NBDP_MUST,
    test_error_message, "an error reply's message is a valid string" },
};
NC_SUITE ("handshake", tests);
