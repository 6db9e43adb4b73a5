/* Block status suite: metadata contexts as negotiated for NBD_CMD_BLOCK_
 * STATUS (the base: namespace, wildcard and unknown leaf queries, context
 * names, re-selection) and BLOCK_STATUS without a selected context.
 * UNSUPPORTED when the server refuses structured replies or the meta
 * context options, or has no base:allocation.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"
#include "../structured/ncx.h"

#define K 1024
#define MAXC 64

static char names[MAXC][NBD_MAX_STRING + 1];
static uint32_t ids[MAXC];

static const char *
rep_name (uint32_t rep)
{
  static char b[40];

  return nbdp_rep_str (b, sizeof b, rep);
}

/* Negotiate up to structured replies; UNSUPPORTED if refused. */
static struct nc_conn *
negotiate_sr (struct nc_ctx *t)
{
  struct nc_conn *c = ncx_negotiate (t);
  uint32_t rep = ncx_simple_option (t, c, NBD_OPT_STRUCTURED_REPLY);

  if (rep != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STRUCTURED_REPLY answered with %s",
                    rep_name (rep));
  return c;
}

/* A meta context option with one query; UNSUPPORTED if the option itself
 * is not supported.
 */
static uint32_t
meta1 (struct nc_ctx *t, struct nc_conn *c, uint32_t option,
       const char *const *q, size_t nq, size_t *n)
{
  uint32_t rep = ncx_meta_option (t, c, option, c->export_name, q, nq,
                                  names, ids, MAXC, n);

  if (rep == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "%s answered with NBD_REP_ERR_UNSUP",
                    option == NBD_OPT_LIST_META_CONTEXT
                    ? "NBD_OPT_LIST_META_CONTEXT"
                    : "NBD_OPT_SET_META_CONTEXT");
  return rep;
}

static bool
selects_allocation (struct nc_ctx *t)
{
  static const char *const q[] = { "base:allocation" };
  struct nc_conn *c = negotiate_sr (t);
  size_t n;

  return meta1 (t, c, NBD_OPT_SET_META_CONTEXT, q, 1, &n) == NBD_REP_ACK &&
    n == 1;
}

/* LIST "base:" lists every base: context (base:allocation if offered). */
static void
test_list_base (struct nc_ctx *t)
{
  static const char *const q[] = { "base:" };
  struct nc_conn *c = negotiate_sr (t);
  size_t n;
  uint32_t rep = meta1 (t, c, NBD_OPT_LIST_META_CONTEXT, q, 1, &n);
  bool alloc = false;

  if (rep == NBD_REP_ERR_EXT_HEADER_REQD) {
    nc_fail (t, "EH-OPT-6", "NBD_OPT_LIST_META_CONTEXT \"base:\" answered "
             "with NBD_REP_ERR_EXT_HEADER_REQD, which is never allowed for "
             "base: queries");
    return;
  }
  if (!nc_expect (t, rep == NBD_REP_ACK, "NBD_OPT_LIST_META_CONTEXT with "
                  "the query \"base:\": got %s, expected the base: contexts "
                  "then NBD_REP_ACK", rep_name (rep)))
    return;
  for (size_t i = 0; i < n && i < MAXC; i++) {
    nc_expect (t, strncmp (names[i], "base:", 5) == 0, "NBD_OPT_LIST_META_"
               "CONTEXT \"base:\": got context \"%s\", expected only base: "
               "contexts", names[i]);
    alloc |= strcmp (names[i], "base:allocation") == 0;
  }
  if (!alloc) {
    if (selects_allocation (t))
      nc_expect (t, false, "NBD_OPT_LIST_META_CONTEXT \"base:\" did not list "
                 "base:allocation, but NBD_OPT_SET_META_CONTEXT selects it");
    else
      nc_unsupported (t, "the server has no base:allocation context");
  }
}

/* SET "base:" selects nothing. */
static void
test_set_base (struct nc_ctx *t)
{
  static const char *const q[] = { "base:" };
  struct nc_conn *c = negotiate_sr (t);
  size_t n;
  uint32_t rep = meta1 (t, c, NBD_OPT_SET_META_CONTEXT, q, 1, &n);

  if (rep == NBD_REP_ERR_EXT_HEADER_REQD) {
    nc_fail (t, "EH-OPT-8", "NBD_OPT_SET_META_CONTEXT \"base:\" answered "
             "with NBD_REP_ERR_EXT_HEADER_REQD, never allowed for base:");
    return;
  }
  nc_expect (t, rep == NBD_REP_ACK && n == 0, "NBD_OPT_SET_META_CONTEXT "
             "with the query \"base:\": got %zu contexts%s%s and %s, "
             "expected the query ignored: no context, then NBD_REP_ACK", n,
             n ? ", the first " : "", n ? names[0] : "", rep_name (rep));
}

/* An unknown base: leaf is ignored, not an error. */
static void
test_set_unknown_leaf (struct nc_ctx *t)
{
  static const char *const q[] = { "base:nbd-conform-no-such-leaf",
                                   "base:allocation" };
  struct nc_conn *c = negotiate_sr (t);
  size_t n;
  uint32_t rep = meta1 (t, c, NBD_OPT_SET_META_CONTEXT, q, 2, &n);
  bool other = false;

  if (!nc_expect (t, rep == NBD_REP_ACK, "NBD_OPT_SET_META_CONTEXT "
                  "\"base:nbd-conform-no-such-leaf\" \"base:allocation\": "
                  "got %s, expected the unknown leaf ignored and NBD_REP_ACK",
                  rep_name (rep)))
    return;
  for (size_t i = 0; i < n && i < MAXC; i++)
    other |= strcmp (names[i], "base:allocation") != 0;
  nc_expect (t, !other, "NBD_OPT_SET_META_CONTEXT selected \"%s\" for the "
             "queries base:nbd-conform-no-such-leaf and base:allocation, "
             "expected at most base:allocation", n ? names[0] : "");
  if (n == 0)
    nc_info (t, "the server selected nothing: it has no base:allocation");
}

static bool
namespace_ok (const char *name, const char **why)
{
  const char *colon = strchr (name, ':');
  size_t nl;

  if (colon == NULL || colon == name) {
    *why = "not namespace:leaf";
    return false;
  }
  nl = colon - name;
  for (size_t i = 0; i < nl; i++)
    if ((unsigned char) name[i] <= ' ' || name[i] == 0x7f) {
      *why = "the namespace has white space or control characters";
      return false;
    }
  if ((nl == 4 && memcmp (name, "base", 4) == 0) ||
      (nl == 10 && memcmp (name, "nbd-server", 10) == 0) ||
      (nl == 4 && memcmp (name, "qemu", 4) == 0) ||
      (nl > 2 && memcmp (name, "x-", 2) == 0))
    return true;
  *why = "the namespace is not base, nbd-server, x-* or a registered one "
    "(qemu)";
  return false;
}

/* LIST without queries: every context name is well formed. */
static void
test_list_all (struct nc_ctx *t)
{
  struct nc_conn *c = negotiate_sr (t);
  size_t n;
  uint32_t rep = meta1 (t, c, NBD_OPT_LIST_META_CONTEXT, NULL, 0, &n);
  char all[1024] = "";
  size_t used = 0;

  if (!nc_expect (t, rep == NBD_REP_ACK, "NBD_OPT_LIST_META_CONTEXT with no "
                  "queries: got %s, expected the contexts then NBD_REP_ACK",
                  rep_name (rep)))
    return;
  for (size_t i = 0; i < n && i < MAXC; i++) {
    const char *why = NULL;
    if (!namespace_ok (names[i], &why))
      nc_fail (t, strchr (names[i], ':') ? "BS-META-8" : "BS-META-6",
               "NBD_OPT_LIST_META_CONTEXT listed \"%s\": %s", names[i], why);
    if (used < sizeof all)
      used += snprintf (all + used, sizeof all - used, "%s%s",
                        used ? ", " : "", names[i]);
  }
  nc_info (t, "%zu contexts listed: %s", n, all);
}

/* The IDs of the last SET_META_CONTEXT are the ones BLOCK_STATUS uses. */
static void
test_set_twice (struct nc_ctx *t)
{
  static const char *const q[] = { "base:allocation" };
  struct nc_conn *c = negotiate_sr (t);
  uint32_t first, rep;
  size_t n;
  struct ncx_reply *r;

  rep = meta1 (t, c, NBD_OPT_SET_META_CONTEXT, q, 1, &n);
  if (rep != NBD_REP_ACK || n != 1)
    nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT base:allocation: %s with "
                    "%zu contexts", rep_name (rep), n);
  first = ids[0];
  rep = meta1 (t, c, NBD_OPT_SET_META_CONTEXT, q, 1, &n);
  if (!nc_expect (t, rep == NBD_REP_ACK && n == 1, "second "
                  "NBD_OPT_SET_META_CONTEXT base:allocation: got %s with %zu "
                  "contexts, expected the same selection", rep_name (rep), n))
    return;
  if (ncx_go (t, c, false) != NBD_REP_ACK)
    nc_error (t, "NBD_OPT_GO failed");
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 64 * K, NULL);
  if (ncx_check_bs (t, r, NULL))
    nc_info (t, "context IDs: %" PRIu32 " then %" PRIu32 "; BLOCK_STATUS "
             "used %" PRIu32, first, ids[0], r->c[0].context_id);
}

/* SHOULD: BLOCK_STATUS without a selected context fails with EINVAL. */
static void
bs_without_context (struct nc_ctx *t, struct nc_conn *c, const char *how)
{
  struct ncx_reply *r;
  char d[512];

  if (ncx_go (t, c, false) != NBD_REP_ACK)
    nc_error (t, "NBD_OPT_GO failed");
  r = ncx_cmd (t, c, NBD_CMD_BLOCK_STATUS, 0, 0, 4096, NULL);
  if (r->io_error) {
    nc_expect (t, false, "BLOCK_STATUS %s: the server dropped the "
               "connection (%s), expected NBD_EINVAL", how, r->io_error);
    return;
  }
  nc_expect (t, r->error == NBD_EINVAL, "BLOCK_STATUS 0+4096 %s: got %s "
             "[%s], expected NBD_EINVAL", how, ncx_errstr (r),
             ncx_describe (r, d, sizeof d));
  if (r->error && r->simple)
    nc_should (t, "CMD-BS-17", "BLOCK_STATUS %s: the error came as a simple "
               "reply, expected an error chunk", how);
}

static void
test_bs_no_context (struct nc_ctx *t)
{
  struct nc_conn *c = negotiate_sr (t);

  bs_without_context (t, c, "without NBD_OPT_SET_META_CONTEXT");
}

/* A later SET_META_CONTEXT selecting nothing replaces the selection. */
static void
test_bs_context_cleared (struct nc_ctx *t)
{
  static const char *const q[] = { "base:allocation" };
  static const char *const none[] = { "base:" };
  struct nc_conn *c = negotiate_sr (t);
  size_t n;
  uint32_t rep = meta1 (t, c, NBD_OPT_SET_META_CONTEXT, q, 1, &n);

  if (rep != NBD_REP_ACK || n != 1)
    nc_unsupported (t, "NBD_OPT_SET_META_CONTEXT base:allocation: %s with "
                    "%zu contexts", rep_name (rep), n);
  rep = meta1 (t, c, NBD_OPT_SET_META_CONTEXT, none, 1, &n);
  if (rep != NBD_REP_ACK || n != 0)
    nc_skip (t, "NBD_OPT_SET_META_CONTEXT \"base:\" did not select nothing "
             "(%s, %zu contexts)", rep_name (rep), n);
  bs_without_context (t, c, "after a last NBD_OPT_SET_META_CONTEXT that "
                      "selected nothing");
}

static const struct nc_test tests[] = {
  { "list-base", "BS-BASE-1 OPT-LMC-12 BS-META-6 EH-OPT-6", NBDP_MUST,
    test_list_base, "LIST_META_CONTEXT \"base:\" lists base:allocation" },
  { "set-base", "BS-BASE-1 BS-META-11 EH-OPT-8", NBDP_MUST, test_set_base,
    "SET_META_CONTEXT \"base:\" selects nothing" },
  { "set-unknown-leaf", "BS-BASE-2 OPT-SMC-8", NBDP_MUST,
    test_set_unknown_leaf, "an unknown base: leaf is ignored, not an error" },
  { "list-all", "BS-META-6 BS-META-7 BS-META-8 OPT-LMC-10", NBDP_MUST,
    test_list_all, "every listed context is namespace:leaf, known namespace" },
  { "set-twice", "BS-CHUNK-2 CMD-BS-4 OPT-SMC-7", NBDP_MUST, test_set_twice,
    "after two SET_META_CONTEXT, status chunks use the last IDs" },
  { "bs-no-context", "BS-META-4 CMD-BS-17", NBDP_SHOULD, test_bs_no_context,
    "BLOCK_STATUS without a selected context fails with NBD_EINVAL" },
  { "bs-context-cleared", "BS-META-4", NBDP_SHOULD, test_bs_context_cleared,
    "BLOCK_STATUS after a SET_META_CONTEXT selecting nothing: NBD_EINVAL" },
};
NC_SUITE ("block-status", tests);
