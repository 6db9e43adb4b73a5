/* Handshake suite: NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT
 * (queries, the base: namespace, malformed requests, and what is allowed
 * before structured replies or extended headers).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"

/* Connection with structured replies (or UNSUPPORTED). */
static struct nc_conn *
start_sr (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                    hs_rep (r));
  return c;
}

/* LIST/SET; UNSUPPORTED if the option itself is not implemented. */
static uint32_t
meta (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
      const char *const *q, size_t n)
{
  uint32_t r = hs_meta (t, c, opt, hs_export (t), q, n);

  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "%s answered with NBD_REP_ERR_UNSUP",
                    hs_opt_name (opt));
  return r;
}

static bool
has_context (struct nc_conn *c, const char *name)
{
  for (size_t i = 0; i < c->s.opt.nr_contexts; i++)
    if (strcmp (c->s.opt.context_names[i], name) == 0)
      return true;
  return false;
}

static void
log_contexts (struct nc_ctx *t, struct nc_conn *c, const char *what)
{
  for (size_t i = 0; i < c->s.opt.nr_contexts; i++)
    nc_log (t, "%s: context %" PRIu32 " \"%s\"", what,
            c->s.opt.context_ids[i], c->s.opt.context_names[i]);
}

/* Does the server have base:allocation on this export? (own connection) */
static bool
has_base_allocation (struct nc_ctx *t)
{
  static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 1);
  bool ok = r == NBD_REP_ACK && has_context (c, NBD_BLOCK_ALLOCATION_CTX);

  nbdp_client_close (c->c);
  return ok;
}

/* No queries: every context of the export, ending with ACK. */
static void
test_lmc_all (struct nc_ctx *t)
{
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, NULL, 0);

  log_contexts (t, c, "listed");
  if (r == NBD_REP_ERR_TOO_BIG)
    nc_should (t, "OPT-LMC-11", "NBD_OPT_LIST_META_CONTEXT without queries "
               "got NBD_REP_ERR_TOO_BIG; expected the list");
  else
    nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_LIST_META_CONTEXT without "
               "queries: final reply %s, expected NBD_REP_ACK", hs_rep (r));
  nbdp_client_close (c->c);     /* servers may serve one client at a time */
  if (r == NBD_REP_ACK && !has_context (c, NBD_BLOCK_ALLOCATION_CTX) &&
      has_base_allocation (t))
    nc_fail (t, "OPT-LMC-10", "NBD_OPT_LIST_META_CONTEXT without queries "
             "listed %zu contexts without base:allocation, which "
             "NBD_OPT_SET_META_CONTEXT selects; expected every selectable "
             "context", c->s.opt.nr_contexts);
}

/* "base:" lists every base: context. */
static void
test_lmc_base_wildcard (struct nc_ctx *t)
{
  static const char *const q[] = { "base:" };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, q, 1);
  bool listed = has_context (c, NBD_BLOCK_ALLOCATION_CTX);

  log_contexts (t, c, "listed for \"base:\"");
  if (r != NBD_REP_ACK) {
    nc_expect (t, false, "NBD_OPT_LIST_META_CONTEXT \"base:\": final reply "
               "%s, expected NBD_REP_ACK", hs_rep (r));
    return;
  }
  for (size_t i = 0; i < c->s.opt.nr_contexts; i++)
    if (strncmp (c->s.opt.context_names[i], "base:", 5) != 0)
      nc_fail (t, "OPT-LMC-12", "NBD_OPT_LIST_META_CONTEXT \"base:\" listed "
               "\"%s\"; expected only base: contexts",
               c->s.opt.context_names[i]);
  nbdp_client_close (c->c);
  if (!listed && has_base_allocation (t))
    nc_expect (t, false, "NBD_OPT_LIST_META_CONTEXT \"base:\" did not list "
               "base:allocation, which NBD_OPT_SET_META_CONTEXT selects; "
               "expected every base: context");
}

/* Queries in unknown namespaces, or unknown base: leaves, are ignored:
 * a lone NBD_REP_ACK.
 */
static void
lmc_nothing (struct nc_ctx *t, const char *query)
{
  const char *q[] = { query };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, q, 1);

  log_contexts (t, c, "listed");
  nc_expect (t, r == NBD_REP_ACK && c->s.opt.nr_contexts == 0,
             "NBD_OPT_LIST_META_CONTEXT \"%s\" (matches nothing): got %zu "
             "contexts and %s; expected a lone NBD_REP_ACK", query,
             c->s.opt.nr_contexts, hs_rep (r));
}

static void
test_lmc_unknown_namespace (struct nc_ctx *t)
{
  lmc_nothing (t, "x-nbd-conform-none:anything");
}

static void
test_lmc_unknown_base_leaf (struct nc_ctx *t)
{
  lmc_nothing (t, "base:nbd-conform-no-such-leaf");
}

/* Queries matching: only base:allocation for "base:allocation". */
static void
test_lmc_query (struct nc_ctx *t)
{
  static const char *const q[] = {
    "x-nbd-conform-none:foo", NBD_BLOCK_ALLOCATION_CTX,
  };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, q, 2);

  log_contexts (t, c, "listed");
  if (!nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_LIST_META_CONTEXT "
                  "\"x-nbd-conform-none:foo\", \"base:allocation\": final "
                  "reply %s, expected NBD_REP_ACK", hs_rep (r)))
    return;
  for (size_t i = 0; i < c->s.opt.nr_contexts; i++)
    nc_expect (t, strcmp (c->s.opt.context_names[i],
                          NBD_BLOCK_ALLOCATION_CTX) == 0,
               "NBD_OPT_LIST_META_CONTEXT \"base:allocation\" (and an "
               "unknown namespace) listed \"%s\"; expected only contexts "
               "matching a query", c->s.opt.context_names[i]);
  nbdp_client_close (c->c);
  if (c->s.opt.nr_contexts == 0 && has_base_allocation (t))
    nc_expect (t, false, "NBD_OPT_LIST_META_CONTEXT \"base:allocation\" "
               "listed nothing, but NBD_OPT_SET_META_CONTEXT selects it; "
               "expected it listed");
}

/* Build a meta option by hand: name, count, then raw query bytes. */
static void
send_meta_raw (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
               uint32_t namelen_field, uint32_t count,
               const unsigned char *queries, size_t qlen)
{
  const char *name = hs_export (t);
  size_t nl = strlen (name), len = 4 + nl + 4 + qlen;
  unsigned char *b = malloc (len);

  if (b == NULL)
    nc_error (t, "out of memory");
  nbdp_put32 (b, namelen_field);
  memcpy (b + 4, name, nl);
  nbdp_put32 (b + 4 + nl, count);
  if (qlen > 0)            /* memcpy from NULL is undefined even for 0 */
    memcpy (b + 8 + nl, queries, qlen);
  nc_send_option (t, c, opt, b, len);
  free (b);
}

/* A syntactically invalid request: NBD_REP_ERR_INVALID. */
static void
lmc_malformed (struct nc_ctx *t, const char *what, uint32_t namelen_delta,
               uint32_t count, const unsigned char *q, size_t qlen)
{
  struct nc_conn *c = start_sr (t);
  uint32_t r;

  send_meta_raw (t, c, NBD_OPT_LIST_META_CONTEXT,
                 strlen (hs_export (t)) + namelen_delta, count, q, qlen);
  if (!hs_reply_or_close (t, c, &r, NULL, what)) {
    nc_expect (t, false, "sent %s: the server hung up; expected "
               "NBD_REP_ERR_INVALID", what);
    return;
  }
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_LIST_META_CONTEXT answered with "
                    "NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ERR_INVALID, "sent %s: got %s, expected "
             "NBD_REP_ERR_INVALID", what, hs_rep (r));
  if (r & NBD_REP_ERR (0))
    hs_expect_go_works (t, c, what, "HS-TERM-10");
}

static void
test_lmc_query_overrun (struct nc_ctx *t)
{
  unsigned char q[4 + 5];

  nbdp_put32 (q, 200);            /* but 5 bytes follow */
  memcpy (q + 4, "base:", 5);
  lmc_malformed (t, "NBD_OPT_LIST_META_CONTEXT with a query length (200) "
                 "past the end of the option", 0, 1, q, sizeof q);
}

static void
test_lmc_count_overrun (struct nc_ctx *t)
{
  unsigned char q[4 + 5];

  nbdp_put32 (q, 5);
  memcpy (q + 4, "base:", 5);
  lmc_malformed (t, "NBD_OPT_LIST_META_CONTEXT announcing 3 queries with "
                 "data for 1", 0, 3, q, sizeof q);
}

static void
test_lmc_name_overrun (struct nc_ctx *t)
{
  lmc_malformed (t, "NBD_OPT_LIST_META_CONTEXT with an export name length "
                 "past the end of the option", 1000, 0, NULL, 0);
}

/* A query without a namespace: ignored or NBD_REP_ERR_INVALID. */
static void
test_lmc_no_colon (struct nc_ctx *t)
{
  static const char *const q[] = { "allocation" };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, q, 1);

  log_contexts (t, c, "listed");
  if (r == NBD_REP_ERR_INVALID)
    nc_info (t, "query without a colon refused with NBD_REP_ERR_INVALID");
  else if (nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_LIST_META_CONTEXT "
                      "\"allocation\" (no namespace): got %s, expected "
                      "NBD_REP_ACK or NBD_REP_ERR_INVALID", hs_rep (r)))
    nc_info (t, "query without a colon: %zu contexts, then NBD_REP_ACK",
             c->s.opt.nr_contexts);
}

/* Before structured replies: LIST may be refused, SET should be. */
static void
test_lmc_before_sr (struct nc_ctx *t)
{
  static const char *const q[] = { "base:" };
  struct nc_conn *c = hs_start (t);
  uint32_t r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, q, 1);

  nc_info (t, "NBD_OPT_LIST_META_CONTEXT before structured replies: %zu "
           "contexts, %s", c->s.opt.nr_contexts, hs_rep (r));
  nc_expect (t, r != NBD_REP_ERR_EXT_HEADER_REQD, "NBD_OPT_LIST_META_CONTEXT "
             "\"base:\" got NBD_REP_ERR_EXT_HEADER_REQD; not allowed for "
             "base: queries");
  if (r & NBD_REP_ERR (0))
    hs_expect_go_works (t, c, "a refused NBD_OPT_LIST_META_CONTEXT",
                        "HS-TERM-10");
}

static void
test_smc_before_sr (struct nc_ctx *t)
{
  static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nc_conn *c = hs_start (t);
  uint32_t r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 1);

  nc_expect (t, r == NBD_REP_ERR_INVALID, "NBD_OPT_SET_META_CONTEXT "
             "\"base:allocation\" before structured replies: got %s (%zu "
             "contexts); expected NBD_REP_ERR_INVALID", hs_rep (r),
             c->s.opt.nr_contexts);
  if (r == NBD_REP_ERR_EXT_HEADER_REQD)
    nc_fail (t, "EH-OPT-8", "NBD_OPT_SET_META_CONTEXT \"base:allocation\" "
             "got NBD_REP_ERR_EXT_HEADER_REQD; not allowed for base: "
             "queries");
  if (r & NBD_REP_ERR (0))
    hs_expect_go_works (t, c, "a refused NBD_OPT_SET_META_CONTEXT",
                        "HS-TERM-10");
}

/* With extended headers instead of structured replies. */
static void
test_lmc_after_eh (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);

  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                    hs_rep (r));
  r = meta (t, c, NBD_OPT_LIST_META_CONTEXT, NULL, 0);
  log_contexts (t, c, "listed");
  nc_expect (t, r == NBD_REP_ACK, "extended headers, then "
             "NBD_OPT_LIST_META_CONTEXT without queries: got %s, expected "
             "NBD_REP_ACK (never NBD_REP_ERR_EXT_HEADER_REQD)", hs_rep (r));
}

static void
test_smc_after_eh (struct nc_ctx *t)
{
  static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0);

  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_EXTENDED_HEADERS answered with %s",
                    hs_rep (r));
  r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 1);
  log_contexts (t, c, "selected");
  if (!nc_expect (t, r == NBD_REP_ACK, "extended headers, then "
                  "NBD_OPT_SET_META_CONTEXT \"base:allocation\": got %s, "
                  "expected NBD_REP_ACK", hs_rep (r)))
    return;
  hs_go (t, c, NULL, 0, "EH-OPT-11");
}

/* SET base:allocation: one reply per context, unique IDs, then ACK. */
static void
test_smc_base_allocation (struct nc_ctx *t)
{
  static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 1);

  log_contexts (t, c, "selected");
  if (r == NBD_REP_ERR_EXT_HEADER_REQD)
    nc_fail (t, "EH-OPT-8", "NBD_OPT_SET_META_CONTEXT \"base:allocation\" "
             "got NBD_REP_ERR_EXT_HEADER_REQD; not allowed for base: "
             "queries");
  if (!nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_SET_META_CONTEXT "
                  "\"base:allocation\": got %s, expected NBD_REP_ACK",
                  hs_rep (r)))
    return;
  for (size_t i = 0; i < c->s.opt.nr_contexts; i++)
    nc_expect (t, strcmp (c->s.opt.context_names[i],
                          NBD_BLOCK_ALLOCATION_CTX) == 0,
               "NBD_OPT_SET_META_CONTEXT \"base:allocation\" selected "
               "\"%s\"; expected only base:allocation",
               c->s.opt.context_names[i]);
  if (c->s.opt.nr_contexts == 0)
    nc_unsupported (t, "the server has no base:allocation context");
  nc_expect (t, c->s.opt.nr_contexts == 1, "NBD_OPT_SET_META_CONTEXT "
             "\"base:allocation\" got %zu context replies, expected one",
             c->s.opt.nr_contexts);
  hs_go (t, c, NULL, 0, "OPT-GO-12");
}

/* Queries that select nothing: a lone ACK. */
static void
smc_nothing (struct nc_ctx *t, const char *const *q, size_t n,
             const char *what)
{
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, n);

  log_contexts (t, c, "selected");
  nc_expect (t, r == NBD_REP_ACK && c->s.opt.nr_contexts == 0,
             "NBD_OPT_SET_META_CONTEXT %s: got %zu contexts and %s; "
             "expected nothing selected and NBD_REP_ACK", what,
             c->s.opt.nr_contexts, hs_rep (r));
}

static void
test_smc_empty (struct nc_ctx *t)
{
  smc_nothing (t, NULL, 0, "without queries");
}

static void
test_smc_bare_base (struct nc_ctx *t)
{
  static const char *const q[] = { "base:" };

  smc_nothing (t, q, 1, "\"base:\"");
}

static void
test_smc_unknown_leaf (struct nc_ctx *t)
{
  static const char *const q[] = { "base:nbd-conform-no-such-leaf" };

  smc_nothing (t, q, 1, "\"base:nbd-conform-no-such-leaf\"");
}

/* An unknown namespace next to base:allocation: base:allocation is still
 * selected (the other query may be ignored).
 */
static void
test_smc_mixed (struct nc_ctx *t)
{
  static const char *const q[] = {
    "x-nbd-conform-none:foo", NBD_BLOCK_ALLOCATION_CTX,
  };
  struct nc_conn *c;
  uint32_t r;

  if (!has_base_allocation (t))
    nc_unsupported (t, "the server has no base:allocation context");
  c = start_sr (t);
  r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 2);
  log_contexts (t, c, "selected");
  nc_expect (t, r == NBD_REP_ACK && c->s.opt.nr_contexts == 1 &&
             has_context (c, NBD_BLOCK_ALLOCATION_CTX),
             "NBD_OPT_SET_META_CONTEXT \"x-nbd-conform-none:foo\", "
             "\"base:allocation\": got %zu contexts and %s; expected "
             "base:allocation alone, then NBD_REP_ACK",
             c->s.opt.nr_contexts, hs_rep (r));
}

/* Two SETs: the second replaces the first; IDs may change. */
static void
test_smc_twice (struct nc_ctx *t)
{
  static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nc_conn *c = start_sr (t);
  uint32_t r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 1);

  if (r != NBD_REP_ACK || c->s.opt.nr_contexts == 0)
    nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT \"base:allocation\": %s, "
                    "%zu contexts", hs_rep (r), c->s.opt.nr_contexts);
  r = meta (t, c, NBD_OPT_SET_META_CONTEXT, q, 1);
  log_contexts (t, c, "selected again");
  if (r == NBD_REP_ERR_INVALID) {
    nc_info (t, "a second NBD_OPT_SET_META_CONTEXT was refused with "
             "NBD_REP_ERR_INVALID");
    return;
  }
  nc_expect (t, r == NBD_REP_ACK && c->s.opt.nr_contexts == 1,
             "second NBD_OPT_SET_META_CONTEXT \"base:allocation\": got %zu "
             "contexts and %s; expected one context and NBD_REP_ACK (or "
             "NBD_REP_ERR_INVALID)", c->s.opt.nr_contexts, hs_rep (r));
  hs_go (t, c, NULL, 0, "OPT-GO-12");
}

static const struct nc_test tests[] = {
  { "lmc-all", "OPT-LMC-8 OPT-LMC-10 OPT-LMC-11 OPT-LMC-16 OPT-LMC-17 "
    "REP-META-1", NBDP_MUST, test_lmc_all,
    "LIST_META_CONTEXT without queries lists every context, then ACK" },
  { "lmc-base-wildcard", "BS-BASE-1 OPT-LMC-12 EH-OPT-6", NBDP_MUST,
    test_lmc_base_wildcard, "LIST_META_CONTEXT \"base:\" lists the base: "
    "contexts" },
  { "lmc-unknown-namespace", "OPT-LMC-6 OPT-LMC-7", NBDP_MUST,
    test_lmc_unknown_namespace,
    "a query in an unknown namespace is ignored: lone ACK" },
  { "lmc-unknown-base-leaf", "BS-BASE-2 OPT-LMC-7", NBDP_MUST,
    test_lmc_unknown_base_leaf,
    "an unknown base: leaf is ignored: lone ACK" },
  { "lmc-query", "OPT-LMC-12 OPT-LMC-6", NBDP_MUST, test_lmc_query,
    "LIST_META_CONTEXT lists only what matches the queries" },
  { "lmc-query-overrun", "OPT-LMC-4", NBDP_MUST, test_lmc_query_overrun,
    "a query length past the option's end gets NBD_REP_ERR_INVALID" },
  { "lmc-count-overrun", "OPT-LMC-4", NBDP_MUST, test_lmc_count_overrun,
    "a query count past the option's end gets NBD_REP_ERR_INVALID" },
  { "lmc-name-overrun", "OPT-LMC-4", NBDP_MUST, test_lmc_name_overrun,
    "a name length past the option's end gets NBD_REP_ERR_INVALID" },
  { "lmc-no-colon", "OPT-LMC-5", NBDP_MUST, test_lmc_no_colon,
    "a query without a namespace: ignored or refused (recorded)" },
  { "lmc-before-sr", "OPT-LMC-2 EH-OPT-6", NBDP_MUST, test_lmc_before_sr,
    "LIST_META_CONTEXT before structured replies (recorded)" },
  { "smc-before-sr", "OPT-SMC-2 EH-OPT-8", NBDP_SHOULD, test_smc_before_sr,
    "SET_META_CONTEXT before structured replies gets NBD_REP_ERR_INVALID" },
  { "lmc-after-eh", "EH-OPT-6 OPT-LMC-8", NBDP_MUST, test_lmc_after_eh,
    "LIST_META_CONTEXT after extended headers ends with ACK" },
  { "smc-after-eh", "EH-OPT-8 OPT-SMC-7", NBDP_MUST, test_smc_after_eh,
    "SET_META_CONTEXT base:allocation after extended headers" },
  { "smc-base-allocation", "OPT-SMC-7 EH-OPT-8 REP-META-1 OPT-LMC-16",
    NBDP_MUST, test_smc_base_allocation,
    "SET_META_CONTEXT base:allocation: one context, then ACK" },
  { "smc-empty", "OPT-SMC-5", NBDP_MUST, test_smc_empty,
    "SET_META_CONTEXT without queries selects nothing" },
  { "smc-bare-base", "BS-BASE-1 BS-META-11", NBDP_MUST, test_smc_bare_base,
    "SET_META_CONTEXT \"base:\" selects nothing" },
  { "smc-unknown-leaf", "BS-BASE-2", NBDP_MUST, test_smc_unknown_leaf,
    "SET_META_CONTEXT of an unknown base: leaf selects nothing" },
  { "smc-mixed", "OPT-SMC-7 OPT-SMC-8", NBDP_MUST, test_smc_mixed,
    "an unknown namespace next to base:allocation: only it is selected" },
  { "smc-twice", "OPT-SMC-7 HS-FIX-6", NBDP_MUST, test_smc_twice,
    "a second SET_META_CONTEXT replaces the first" },
};
NC_SUITE ("handshake", tests);
