/* Client suite: transmission requests.  Every request is judged by the
 * rule engine's client-side checks (nbdp_rules_check_request: magic,
 * cookies, commands and flags only when advertised, bounds, alignment,
 * payload size) and the scripted server's own (documented flags, zero
 * lengths, DISC); these tests advertise less, or constrain more, and see
 * that the client follows.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client-script.h"

static const uint16_t all_flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
  NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
  NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_DF | NBD_FLAG_SEND_FAST_ZERO;

/* Run with eflags lacking `without`; the checks run per request. */
static struct ncs *
run_without (struct nc_ctx *t, enum ncs_action action, uint16_t without)
{
  struct ncs *s = ncs_new (t, action);

  s->eflags = all_flags & ~without;
  ncs_run (s);
  ncs_need (s);
  return s;
}

static void
test_no_flush (struct nc_ctx *t)
{
  /* FUA needs FLUSH (NBD_FLAG_SEND_FUA is meaningless without it). */
  struct ncs *s = run_without (t, NCS_WRITE,
                               NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA);
  nc_log (t, "%u FLUSH, %u with FUA", ncs_count (s, NBD_CMD_FLUSH),
          ncs_count_flag (s, NBD_CMD_FLAG_FUA));
}

static void
test_no_fua (struct nc_ctx *t)
{
  struct ncs *s = run_without (t, NCS_WRITE, NBD_FLAG_SEND_FUA);
  nc_log (t, "%u with FUA", ncs_count_flag (s, NBD_CMD_FLAG_FUA));
}

static void
test_no_trim (struct nc_ctx *t)
{
  struct ncs *s = run_without (t, NCS_WRITE, NBD_FLAG_SEND_TRIM);
  nc_log (t, "%u TRIM", ncs_count (s, NBD_CMD_TRIM));
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
}

static void
test_no_write_zeroes (struct nc_ctx *t)
{
  struct ncs *s = run_without (t, NCS_WRITE, NBD_FLAG_SEND_WRITE_ZEROES |
                               NBD_FLAG_SEND_FAST_ZERO);
  nc_log (t, "%u WRITE_ZEROES", ncs_count (s, NBD_CMD_WRITE_ZEROES));
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
}

static void
test_no_fast_zero (struct nc_ctx *t)
{
  struct ncs *s = run_without (t, NCS_WRITE, NBD_FLAG_SEND_FAST_ZERO);
  nc_log (t, "%u WRITE_ZEROES", ncs_count (s, NBD_CMD_WRITE_ZEROES));
}

static void
test_no_df (struct nc_ctx *t)
{
  struct ncs *s = run_without (t, NCS_READ, NBD_FLAG_SEND_DF);
  nc_log (t, "%u with DF", ncs_count_flag (s, NBD_CMD_FLAG_DF));
}

static void
test_no_cache (struct nc_ctx *t)
{
  struct ncs *s = run_without (t, NCS_READ, NBD_FLAG_SEND_CACHE);
  nc_log (t, "%u CACHE", ncs_count (s, NBD_CMD_CACHE));
}

static void
test_minimal_flags (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  s->eflags = NBD_FLAG_HAS_FLAGS;
  ncs_run (s);
  ncs_need (s);
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
  ncs_check_out (s, "COMPAT-BASE-1");
}

static void
test_read_default (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ);

  ncs_run (s);
  ncs_need (s);
  ncs_expect_success (s, NULL, NBDP_MUST);
  ncs_check_out (s, NULL);
}

static void
test_write_default (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_WRITE);

  ncs_run (s);
  ncs_need (s);
  /* Framing (CMD-WRITE-1) and PAYLOAD_LEN (EH-REQ-1) are judged as the
   * requests arrive; a payload of the wrong length breaks the framing
   * of the next request.
   */
  ncs_expect_success (s, "COMPAT-BASE-1", NBDP_MUST);
}

static void
test_block_size_min (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ_OR_BS);
  bool asked = false;

  s->block_size = true;
  s->min_block = 65536;
  s->pref_block = 65536;
  s->max_block = 256 * 1024;
  ncs_run (s);
  ncs_need (s);
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->block_size_asked)
      asked = true;
  if (!asked)
    nc_unsupported (t, "the client did not ask for NBD_INFO_BLOCK_SIZE "
                    "(only a client that asked must obey it)");
  /* SIZE-31 is judged per request (offset and length multiples of the
   * minimum block size 65536).
   */
  ncs_expect_success (s, "SIZE-5", NBDP_MUST);
  ncs_check_out (s, "SIZE-5");
}

static void
test_block_size_max (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ);
  bool asked = false;

  /* Simple replies: the maximum payload binds READ too (SIZE-25). */
  s->structured = false;
  s->block_size = true;
  s->min_block = 1;
  s->pref_block = 4096;
  s->max_block = 16384;
  ncs_run (s);
  ncs_need (s);
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->block_size_asked)
      asked = true;
  if (!asked)
    nc_unsupported (t, "the client did not ask for NBD_INFO_BLOCK_SIZE "
                    "(only a client that asked must obey it)");
  ncs_expect_success (s, "SIZE-5", NBDP_MUST);
  ncs_check_out (s, "SIZE-5");
}

static void
test_size_bounds (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ_OR_BS);

  /* Not a multiple of 512: a client rounding up reads past the end. */
  s->size = 1024 * 1024 + 1000;
  ncs_run (s);
  ncs_need (s);
  /* SIZE-33 is judged per request. */
  ncs_check_out (s, NULL);
}

static void
test_single_connection (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);

  ncs_run (s);
  ncs_need (s);
  if (s->max_open > 1)
    nc_should (t, NULL, "%zu connections were open at once although the "
               "server did not advertise NBD_FLAG_CAN_MULTI_CONN",
               s->max_open);
}

static void
test_disc (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_ANY);
  bool any = false;

  ncs_run (s);
  ncs_need (s);
  for (size_t i = 0; i < s->n_conns; i++) {
    struct ncs_conn *c = s->conns[i];
    if (!c->s.transmission)
      continue;
    any = true;
    if (!c->disc)
      nc_fail (t, NULL, "conn %u: the client closed the connection without "
               "NBD_CMD_DISC although the server broke no rule (a hard "
               "disconnect; %s)", c->id, ncs_exit_str (s));
  }
  if (!any)
    nc_unsupported (t, "the client never entered transmission (%s)",
                    ncs_exit_str (s));
}

/* Gather requests, answer them in reverse order. */
static void
test_out_of_order (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ_OR_BS);

  /* Large enough for readers that split their reads. */
  s->size = 8 * 1024 * 1024;
  s->hold = 16;
  ncs_run (s);
  ncs_need (s);
  if (s->inflight_max < 2)
    nc_unsupported (t, "the client never had two requests in flight, so "
                    "replies could not be reordered");
  nc_log (t, "up to %zu requests in flight", s->inflight_max);
  ncs_expect_success (s, NULL, NBDP_MUST);
  ncs_check_out (s, NULL);
}

static void
test_cookies (struct nc_ctx *t)
{
  struct ncs *s = ncs_new (t, NCS_READ_OR_BS);

  /* Large enough for readers that split their reads. */
  s->size = 8 * 1024 * 1024;
  s->hold = 64;
  ncs_run (s);
  ncs_need (s);
  if (s->inflight_max < 2)
    nc_unsupported (t, "the client never had two requests in flight");
  /* TX-GEN-2 is judged per request. */
  nc_log (t, "up to %zu requests in flight", s->inflight_max);
}

static const struct nc_test tests[] = {
  { "read", "COMPAT-BASE-1 CMD-READ-2", NBDP_MUST, test_read_default,
    "READ: a plain session: correct requests, the client succeeds and its "
    "data matches" },
  { "write", "CMD-WRITE-1 EH-REQ-1 CMD-WRITE-2 COMPAT-BASE-1", NBDP_MUST,
    test_write_default,
    "WRITE: writes carry exactly their payload; the client succeeds" },
  { "no-flush-unadvertised", "CMD-FLUSH-2 FLAG-TX-3", NBDP_MUST,
    test_no_flush, "WRITE: no FLUSH (or FUA) without NBD_FLAG_SEND_FLUSH" },
  { "no-fua-unadvertised", "FLAG-TX-3", NBDP_MUST, test_no_fua,
    "WRITE: no NBD_CMD_FLAG_FUA without NBD_FLAG_SEND_FUA" },
  { "no-trim-unadvertised", "CMD-TRIM-5 FLAG-TX-3", NBDP_MUST, test_no_trim,
    "WRITE: no TRIM without NBD_FLAG_SEND_TRIM" },
  { "no-write-zeroes-unadvertised", "CMD-WZ-5 FLAG-TX-3", NBDP_MUST,
    test_no_write_zeroes,
    "WRITE: no WRITE_ZEROES without NBD_FLAG_SEND_WRITE_ZEROES" },
  { "no-fast-zero-unadvertised", "FLAG-TX-13 CMD-WZ-6 FLAG-CMD-15",
    NBDP_MUST, test_no_fast_zero,
    "WRITE: no NBD_CMD_FLAG_FAST_ZERO without NBD_FLAG_SEND_FAST_ZERO" },
  { "no-df-unadvertised", "FLAG-TX-10 FLAG-CMD-11", NBDP_MUST, test_no_df,
    "READ: no NBD_CMD_FLAG_DF without NBD_FLAG_SEND_DF" },
  { "no-cache-unadvertised", "FLAG-TX-3", NBDP_MUST, test_no_cache,
    "READ: no CACHE without NBD_FLAG_SEND_CACHE" },
  { "minimal-flags", "COMPAT-BASE-1 FLAG-TX-3 FLAG-CMD-1", NBDP_MUST,
    test_minimal_flags,
    "ANY: only NBD_FLAG_HAS_FLAGS: the client uses baseline commands only "
    "and succeeds" },
  { "block-size-min", "SIZE-5 SIZE-31", NBDP_MUST, test_block_size_min,
    "READ/BS: minimum block size 64 KiB: every offset and length aligned" },
  { "block-size-max", "SIZE-5 SIZE-25", NBDP_MUST, test_block_size_max,
    "READ: maximum payload 16 KiB with simple replies: no longer reads" },
  { "size-bounds", "SIZE-33", NBDP_MUST, test_size_bounds,
    "READ/BS: export size 1 MiB + 1000: no request reaches past the end" },
  { "single-connection", "MC-3", NBDP_SHOULD, test_single_connection,
    "ANY: without NBD_FLAG_CAN_MULTI_CONN one connection at a time" },
  { "disc", "TX-TERM-10 CMD-DISC-3 CMD-DISC-2 TX-TERM-9", NBDP_MUST,
    test_disc,
    "ANY: the client ends transmission with NBD_CMD_DISC (offset and "
    "length 0, nothing after, nothing in flight)" },
  { "out-of-order", "TX-GEN-2 CMD-READ-16", NBDP_MUST, test_out_of_order,
    "READ/BS: replies come in reverse order: the client matches them by "
    "cookie and its data is right" },
  { "cookies-unique", "TX-GEN-2", NBDP_SHOULD, test_cookies,
    "READ/BS: the cookies of requests in flight differ" },
};

NC_SUITE ("client", tests);
