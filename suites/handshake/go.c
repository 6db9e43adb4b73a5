/* Handshake suite: NBD_OPT_INFO, NBD_OPT_GO and NBD_OPT_EXPORT_NAME. */
#include <inttypes.h>
#include <string.h>

#include "conform.h"

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
export_of (struct nc_ctx *t)
{
  return t->cfg->export_name ? t->cfg->export_name : "";
}

/* Send INFO or GO for name with the given info requests. */
static void
send_info (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
           const char *name, const uint16_t *infos, size_t n)
{
  unsigned char b[4 + NBD_MAX_STRING + 2 + 2 * 8];
  size_t nl = strlen (name);

  if (nl > NBD_MAX_STRING || n > 8)
    nc_error (t, "export name or info list too long");
  nbdp_put32 (b, nl);
  memcpy (b + 4, name, nl);
  nbdp_put16 (b + 4 + nl, n);
  for (size_t i = 0; i < n; i++)
    nbdp_put16 (b + 6 + nl + 2 * i, infos[i]);
  nc_send_option (t, c, opt, b, 6 + nl + 2 * n);
}

static const char *
rep (uint32_t r, char *buf, size_t n)
{
  return nbdp_name_or (nbdp_name_of_rep (r), buf, n, r);
}

static void
test_info (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  uint32_t r;
  char rb[40];

  send_info (t, c, NBD_OPT_INFO, export_of (t), NULL, 0);
  r = nc_option_final (t, c);   /* rules: INFO_EXPORT before ACK */
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_INFO answered with NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_INFO for \"%s\": got %s, "
             "expected NBD_REP_ACK", export_of (t), rep (r, rb, sizeof rb));
  nc_expect (t, !c->s.transmission, "NBD_OPT_INFO entered transmission");
}

static void
test_go (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  uint32_t r;
  char rb[40];

  send_info (t, c, NBD_OPT_GO, export_of (t), NULL, 0);
  r = nc_option_final (t, c);
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_GO answered with NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_GO for \"%s\": got %s, "
             "expected NBD_REP_ACK", export_of (t), rep (r, rb, sizeof rb));
}

/* INFO then GO with the same parameters: the same information. */
static void
test_info_then_go (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  static const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };
  uint64_t size;
  uint16_t eflags;
  uint32_t r;
  char rb[40];

  send_info (t, c, NBD_OPT_INFO, export_of (t), infos, 1);
  r = nc_option_final (t, c);
  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_INFO answered with %s",
                    rep (r, rb, sizeof rb));
  size = c->s.opt.size;
  eflags = c->s.opt.eflags;
  send_info (t, c, NBD_OPT_GO, export_of (t), infos, 1);
  r = nc_option_final (t, c);
  nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_GO after a successful "
             "NBD_OPT_INFO: got %s, expected NBD_REP_ACK",
             rep (r, rb, sizeof rb));
  nc_expect (t, c->s.export_size == size && c->s.eflags == eflags,
             "NBD_OPT_INFO said size %" PRIu64 " flags 0x%04x, NBD_OPT_GO "
             "with the same parameters said size %" PRIu64 " flags 0x%04x; "
             "expected the same", size, eflags, c->s.export_size,
             c->s.eflags);
}

static void
test_go_unknown_export (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  const char *name = "nbd-conform-no-such-export-5b1f";
  uint32_t r;
  char rb[40];

  send_info (t, c, NBD_OPT_GO, name, NULL, 0);
  r = nc_option_final (t, c);
  if (r == NBD_REP_ACK) {
    nc_info (t, "server accepted NBD_OPT_GO for an arbitrary export name "
             "(\"%s\"): it serves every name", name);
    return;
  }
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_GO answered with NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ERR_UNKNOWN || r == NBD_REP_ERR_TLS_REQD,
             "NBD_OPT_GO for unknown export \"%s\": got %s, expected "
             "NBD_REP_ERR_UNKNOWN", name, rep (r, rb, sizeof rb));
}

static void
test_go_block_size (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .block_size = true };
  struct nc_conn *c = nc_open (t, &o);   /* rules judge the values */

  if (!c->s.have_block_size)
    nc_info (t, "no NBD_INFO_BLOCK_SIZE although requested: the server "
             "uses the default constraints");
  else
    nc_log (t, "block sizes: min %" PRIu32 " pref %" PRIu32 " max %" PRIu32,
            c->s.min_block, c->s.pref_block, c->s.max_payload);
}

static void
test_export_name (struct nc_ctx *t)
{
  struct nc_conn *c = start (t);
  struct nbdp_export exp;
  struct nbdp_violations v;

  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  if (nbdp_client_opt_export_name (c->c, export_of (t), &exp) == -1) {
    nc_expect (t, false, "NBD_OPT_EXPORT_NAME \"%s\" failed: %s",
               export_of (t), nbdp_client_error (c->c));
    return;
  }
  nc_expect (t, !exp.padding_nonzero, "NBD_OPT_EXPORT_NAME reply: the 124 "
             "reserved bytes were not all zero");
  nbdp_violations_clear (&v);
  nbdp_rules_check_eflags (&c->s, exp.eflags, &v);
  nc_violations (t, &v);
}

static const struct nc_test tests[] = {
  { "info", "OPT-GO-12 REP-INFO-1", NBDP_MUST, test_info,
    "NBD_OPT_INFO: NBD_INFO_EXPORT then NBD_REP_ACK, no transmission" },
  { "go", "OPT-GO-12 REP-INFO-1 FLAG-TX-4", NBDP_MUST,
    test_go, "NBD_OPT_GO: NBD_INFO_EXPORT then NBD_REP_ACK" },
  { "info-then-go", "OPT-GO-22", NBDP_MUST, test_info_then_go,
    "INFO then GO with the same parameters report the same export" },
  { "go-unknown-export", "OPT-GO-13 OPT-GO-19", NBDP_SHOULD, test_go_unknown_export,
    "GO for a missing export gets NBD_REP_ERR_UNKNOWN" },
  { "go-block-size", "SIZE-13 SIZE-14 SIZE-17 SIZE-21 INFO-BSIZE-2", NBDP_MUST, test_go_block_size,
    "NBD_INFO_BLOCK_SIZE values obey the size constraints" },
  { "export-name", "FLAG-TX-4 COMPAT-BASE-1", NBDP_MUST,
    test_export_name, "NBD_OPT_EXPORT_NAME: size, flags, 124 zero bytes" },
};
NC_SUITE ("handshake", tests);
