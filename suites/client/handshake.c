/* Client suite: the handshake.  The scripted server (client-script.h)
 * checks every client flag and option as it arrives (client flags,
 * option magic and lengths, GO/INFO layout, meta context queries, what
 * follows NBD_OPT_ABORT, hard disconnects during haggling); these tests
 * set the scene for one requirement each and judge the outcome.
 */
#include <stdio.h>
#include <string.h>

#include "client-script.h"

/* Did any connection reach transmission? */
static bool
reached_transmission (const struct ncs *s)
{
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->s.transmission)
      return true;
  return false;
}

static void
need_connection (struct ncs *s)
{
  ncs_need (s);
}

static void
test_cflags (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  ncs_run (s);
  need_connection (s);
  /* The flag checks run on every connection (FLAG-CLI-5/-1). */
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
}

static void
test_no_zeroes_not_offered (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->gflags = NBD_FLAG_FIXED_NEWSTYLE;
  ncs_run (s);
  need_connection (s);
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
}

static void
test_option_format (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  ncs_run (s);
  need_connection (s);
  nc_expect (t, reached_transmission (s), "the client never entered "
             "transmission (%s)", ncs_exit_str (s));
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
}

static void
test_options_wait (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  /* Each option reply comes 50 ms late: pipelined options show. */
  s->option_delay_ms = 50;
  ncs_run (s);
  need_connection (s);
}

static void
test_go_preferred (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  ncs_run (s);
  need_connection (s);
  if (ncs_sent_option (s, NBD_OPT_EXPORT_NAME) &&
      !ncs_sent_option (s, NBD_OPT_GO))
    nc_should (t, NULL, "the client ended the handshake with "
               "NBD_OPT_EXPORT_NAME although the server is fixed newstyle "
               "and supports NBD_OPT_GO (never tried)");
  else if (!ncs_sent_option (s, NBD_OPT_GO))
    nc_unsupported (t, "the client entered no export (%s)", ncs_exit_str (s));
}

static void
test_go_unsup_fallback (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  /* An old server: no NBD_OPT_INFO/GO, no NO_ZEROES (124 zero bytes
   * follow the NBD_OPT_EXPORT_NAME reply).
   */
  s->go_error = NBD_REP_ERR_UNSUP;
  s->gflags = NBD_FLAG_FIXED_NEWSTYLE;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_GO) && !ncs_sent_option (s, NBD_OPT_INFO))
    nc_unsupported (t, "the client does not use NBD_OPT_GO/INFO (%s)",
                    ncs_exit_str (s));
  if (!ncs_sent_option (s, NBD_OPT_EXPORT_NAME))
    nc_should (t, NULL, "NBD_OPT_GO got NBD_REP_ERR_UNSUP and the client "
               "did not fall back to NBD_OPT_EXPORT_NAME (%s)",
               ncs_exit_str (s));
  else
    ncs_expect_success (s, "OPT-GO-21", NBDP_SHOULD);
}

/* After a refusal, the client's next option on that connection. */
static bool
next_option_after (const struct ncs *s, unsigned conn, uint32_t *next)
{
  bool refused = false;

  for (size_t i = 0; i < s->n_opts; i++) {
    if (s->opts[i].conn != conn)
      continue;
    if (refused) {
      *next = s->opts[i].opt;
      return true;
    }
    if (s->opts[i].opt == NBD_OPT_GO || s->opts[i].opt == NBD_OPT_INFO)
      refused = true;
  }
  return false;
}

static void
test_go_unknown_export (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->go_error = NBD_REP_ERR_UNKNOWN;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_GO) && !ncs_sent_option (s, NBD_OPT_INFO))
    nc_unsupported (t, "the client does not use NBD_OPT_GO/INFO (%s)",
                    ncs_exit_str (s));
  /* Dropping the connection instead of NBD_OPT_ABORT is reported by the
   * server as it happens (HS-TERM-9).
   */
  if (ncs_exit_ok (s))
    nc_info (t, "the client exited 0 although the export does not exist");
  for (size_t i = 0; i < s->n_conns; i++) {
    uint32_t next;
    if (next_option_after (s, s->conns[i]->id, &next))
      nc_log (t, "conn %u: after the refusal the client sent %s",
              s->conns[i]->id, nbdp_name_of_opt (next) ?: "(unknown)");
  }
}

static void
test_rep_err_shutdown (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->go_error = NBD_REP_ERR_SHUTDOWN;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_GO) && !ncs_sent_option (s, NBD_OPT_INFO))
    nc_unsupported (t, "the client does not use NBD_OPT_GO/INFO (%s)",
                    ncs_exit_str (s));
  for (size_t i = 0; i < s->n_conns; i++) {
    uint32_t next;
    struct ncs_conn *c = s->conns[i];
    bool got = next_option_after (s, c->id, &next);

    if (got && next != NBD_OPT_ABORT)
      nc_fail (t, NULL, "conn %u: after NBD_REP_ERR_SHUTDOWN the client sent "
               "%s; it must soft-disconnect (NBD_OPT_ABORT)", c->id,
               nbdp_name_of_opt (next) ?: "an unknown option");
    /* !got: it closed without ABORT, reported as HS-TERM-9. */
  }
}

static void
test_abort_no_reply (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->go_error = NBD_REP_ERR_UNKNOWN;
  s->abort_close = true;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_ABORT))
    nc_unsupported (t, "the client never sent NBD_OPT_ABORT (%s)",
                    ncs_exit_str (s));
  /* It coped: it exited (a hang is a TIMEOUT). */
  nc_log (t, "the client coped with a close instead of the ACK (%s)",
          ncs_exit_str (s));
}

static void
test_structured_refused (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->structured = false;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_STRUCTURED_REPLY))
    nc_unsupported (t, "the client never asks for structured replies (%s)",
                    ncs_exit_str (s));
  if (!ncs_exit_ok (s) && s->n_reqs == 0)
    nc_info (t, "without structured replies the client gave up before any "
             "request (%s): its job may need block status", ncs_exit_str (s));
  else
    ncs_expect_success (s, "OPT-SR-4", NBDP_SHOULD);
  ncs_check_out (s, "OPT-SR-4");
}

static void
test_extended_refused (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_EXTENDED_HEADERS))
    nc_unsupported (t, "the client never asks for extended headers (%s)",
                    ncs_exit_str (s));
  ncs_expect_success (s, "EH-OPT-19", NBDP_SHOULD);
  ncs_check_out (s, "EH-OPT-19");
}

static void
test_extended_accepted (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->extended = true;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_EXTENDED_HEADERS))
    nc_unsupported (t, "the client never asks for extended headers (%s)",
                    ncs_exit_str (s));
  /* Request magic and PAYLOAD_LEN are judged per request (EH-OPT-17,
   * EH-REQ-1/2); here: it works end to end.
   */
  ncs_expect_success (s, "EH-OPT-17", NBDP_MUST);
  ncs_check_out (s, "EH-OPT-17");
}

static void
test_unknown_gflags (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->gflags |= 0x8000;
  ncs_run (s);
  need_connection (s);
  if (!reached_transmission (s))
    nc_should (t, NULL, "with handshake flags 0x%04x (bit 15 unknown) the "
               "client never entered transmission (%s)", s->gflags,
               ncs_exit_str (s));
  else
    ncs_expect_success (s, "HS-NEW-7", NBDP_SHOULD);
}

static void
test_unknown_eflags (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->eflags |= 0x8000;
  ncs_run (s);
  need_connection (s);
  nc_expect (t, reached_transmission (s), "the client never entered "
             "transmission (%s)", ncs_exit_str (s));
  ncs_expect_success (s, "FLAG-TX-14", NBDP_SHOULD);
}

static void
test_unknown_info (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  /* An NBD_INFO type nobody knows first, NBD_INFO_EXPORT last. */
  s->unknown_info = true;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_GO) && !ncs_sent_option (s, NBD_OPT_INFO))
    nc_unsupported (t, "the client does not use NBD_OPT_GO/INFO (%s)",
                    ncs_exit_str (s));
  nc_expect (t, reached_transmission (s), "NBD_OPT_GO got an unknown "
             "NBD_INFO type 0x7f3c, then NBD_INFO_EXPORT last: the client "
             "never entered transmission (%s)", ncs_exit_str (s));
  ncs_expect_success (s, "OPT-GO-11", NBDP_MUST);
}

static void
test_block_size_asked (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);
  bool asked = false;

  s->block_size = true;
  s->min_block = 512;
  s->pref_block = 4096;
  s->max_block = 32 * 1024 * 1024;
  ncs_run (s);
  need_connection (s);
  if (!ncs_sent_option (s, NBD_OPT_GO))
    nc_unsupported (t, "the client does not use NBD_OPT_GO (%s)",
                    ncs_exit_str (s));
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->block_size_asked)
      asked = true;
  if (!asked)
    nc_should (t, NULL, "NBD_OPT_GO without a request for "
               "NBD_INFO_BLOCK_SIZE: the client does not learn the size "
               "constraints");
}

static const struct nc_test tests[] = {
  { "cflags", "FLAG-CLI-5 FLAG-CLI-1 HS-FIX-1", NBDP_MUST, test_cflags,
    "ANY: client flags: no undefined bits, C_FIXED_NEWSTYLE answers "
    "FIXED_NEWSTYLE" },
  { "no-zeroes-not-offered", "FLAG-CLI-3 COMPAT-BASE-1", NBDP_MUST,
    test_no_zeroes_not_offered,
    "ANY: without NBD_FLAG_NO_ZEROES the client does not set "
    "C_NO_ZEROES and copes with the 124 zero bytes" },
  { "option-format", "COMPAT-BASE-1 OPT-GO-2 OPT-GO-4 OPT-SR-1 EH-OPT-9 "
    "OPT-LIST-2 OPT-SMC-4 OPT-LMC-3", NBDP_MUST, test_option_format,
    "ANY: options carry IHAVEOPT, correct lengths and layouts; the client "
    "reaches transmission" },
  { "options-wait", "HS-FIX-4", NBDP_MUST, test_options_wait,
    "ANY: the client waits for the final reply before the next option "
    "(replies delayed 50 ms)" },
  { "go-preferred", "OPT-EXPORT-3", NBDP_SHOULD, test_go_preferred,
    "ANY: the client uses NBD_OPT_GO rather than NBD_OPT_EXPORT_NAME" },
  { "go-unsup-fallback", "OPT-GO-21 HS-TERM-9", NBDP_SHOULD,
    test_go_unsup_fallback,
    "ANY: NBD_OPT_GO refused with NBD_REP_ERR_UNSUP: the client falls back "
    "to NBD_OPT_EXPORT_NAME" },
  { "go-unknown-export", "HS-TERM-9 HS-TERM-7 HS-TERM-1", NBDP_MUST,
    test_go_unknown_export,
    "ANY: NBD_OPT_GO refused with NBD_REP_ERR_UNKNOWN: the client ends the "
    "session with a soft disconnect (NBD_OPT_ABORT)" },
  { "rep-err-shutdown", "HS-TERM-14", NBDP_MUST, test_rep_err_shutdown,
    "ANY: NBD_REP_ERR_SHUTDOWN to NBD_OPT_GO: the client soft-disconnects" },
  { "abort-no-reply", "OPT-ABORT-4 HS-TERM-1", NBDP_SHOULD,
    test_abort_no_reply,
    "ANY: the server closes on NBD_OPT_ABORT without replying: the client "
    "copes (exits, no hang)" },
  { "structured-refused", "OPT-SR-4 OPT-SMC-1 OPT-LMC-1", NBDP_SHOULD,
    test_structured_refused,
    "ANY: NBD_OPT_STRUCTURED_REPLY refused: the client works with simple "
    "replies and selects no meta context" },
  { "extended-refused", "EH-OPT-19", NBDP_SHOULD, test_extended_refused,
    "ANY: NBD_OPT_EXTENDED_HEADERS refused: the client works with compact "
    "headers" },
  { "extended-accepted", "EH-OPT-17 EH-REQ-2 EH-FLAG-4 EH-OPT-1", NBDP_MUST,
    test_extended_accepted,
    "ANY: extended headers acknowledged: 32-byte requests, PAYLOAD_LEN on "
    "WRITE, no NBD_OPT_EXPORT_NAME" },
  { "unknown-handshake-flags", "HS-NEW-7 FLAG-CLI-5", NBDP_SHOULD,
    test_unknown_gflags,
    "ANY: an unknown handshake flag (bit 15) is ignored" },
  { "unknown-transmission-flags", "FLAG-TX-14", NBDP_SHOULD,
    test_unknown_eflags,
    "ANY: an unknown transmission flag (bit 15) is ignored" },
  { "unknown-info", "OPT-GO-11 REP-INFO-4 REP-INFO-3", NBDP_MUST,
    test_unknown_info,
    "ANY: an unknown NBD_INFO reply is ignored; NBD_INFO_EXPORT may come "
    "last" },
  { "block-size-asked", "SIZE-1 COMPAT-MAX-3", NBDP_SHOULD,
    test_block_size_asked,
    "ANY: NBD_OPT_GO asks for NBD_INFO_BLOCK_SIZE" },
};

NC_SUITE ("client", tests);
