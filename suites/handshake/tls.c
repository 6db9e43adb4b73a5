/* Handshake suite: NBD_OPT_STARTTLS and the TLS mode, as far as they can
 * be tested without TLS: a server that refuses NBD_OPT_STARTTLS is in
 * NOTLS mode and must never answer NBD_REP_ERR_TLS_REQD.
 */
#include <inttypes.h>
#include <string.h>

#include "hs.h"

/* Send NBD_OPT_STARTTLS (with len bytes of data); a server that acks is
 * not NOTLS, and the test cannot go on without TLS.
 */
static uint32_t
starttls (struct nc_ctx *t, struct nc_conn *c, const void *data,
          uint32_t len)
{
  uint32_t r = hs_opt (t, c, NBD_OPT_STARTTLS, data, len);

  if (r == NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STARTTLS%s was acked: the server offers "
                    "TLS (not NOTLS mode), and this suite does not speak "
                    "TLS", len ? " with data" : "");
  return r;
}

static void
test_starttls_notls (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = starttls (t, c, NULL, 0);

  nc_expect (t, r & NBD_REP_ERR (0), "sent NBD_OPT_STARTTLS: got %s, "
             "expected NBD_REP_ACK or an error", hs_rep (r));
  nc_expect (t, r != NBD_REP_ERR_TLS_REQD, "sent NBD_OPT_STARTTLS: got "
             "NBD_REP_ERR_TLS_REQD; a server without TLS must not send it");
  nc_info (t, "NBD_OPT_STARTTLS refused with %s (NOTLS mode)", hs_rep (r));
  hs_expect_go_works (t, c, "a refused NBD_OPT_STARTTLS", "COMPAT-BASE-1");
}

static void
test_starttls_data (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = starttls (t, c, "junk", 4);

  nc_expect (t, (r & NBD_REP_ERR (0)) && r != NBD_REP_ERR_TLS_REQD,
             "sent NBD_OPT_STARTTLS with 4 bytes of data: got %s, "
             "expected an error such as NBD_REP_ERR_INVALID", hs_rep (r));
  nc_log (t, "NBD_OPT_STARTTLS with data: %s", hs_rep (r));
  hs_expect_go_works (t, c, "NBD_OPT_STARTTLS with data", "HS-TERM-10");
}

/* After a refused STARTTLS (NOTLS), nothing may be refused for want of
 * TLS: not an unknown export, not a second STARTTLS, not GO.
 */
static void
test_notls_no_tls_reqd (struct nc_ctx *t)
{
  static const char *const base[] = { "base:" };
  struct nc_conn *c = hs_start (t);
  struct {
    const char *what;
    uint32_t rep;
  } seen[12];
  size_t n = 0;

  starttls (t, c, NULL, 0);
#define TRY(w, expr) \
  do { seen[n].what = (w); seen[n].rep = (expr); n++; } while (0)
  TRY ("NBD_OPT_LIST", hs_opt (t, c, NBD_OPT_LIST, NULL, 0));
  TRY ("NBD_OPT_INFO for the export",
       hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0));
  TRY ("NBD_OPT_INFO for an unknown export",
       hs_info (t, c, NBD_OPT_INFO, HS_NO_SUCH_EXPORT, NULL, 0));
  TRY ("NBD_OPT_GO for an unknown export",
       hs_info (t, c, NBD_OPT_GO, HS_NO_SUCH_EXPORT, NULL, 0));
  if (c->s.transmission) {
    nc_info (t, "the server serves every export name; stopped there");
    return;
  }
  TRY ("an unknown option", hs_opt (t, c, 0x4e430001, NULL, 0));
  TRY ("NBD_OPT_STARTTLS again", hs_opt (t, c, NBD_OPT_STARTTLS, NULL, 0));
  TRY ("NBD_OPT_STRUCTURED_REPLY",
       hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0));
  TRY ("NBD_OPT_LIST_META_CONTEXT",
       hs_meta (t, c, NBD_OPT_LIST_META_CONTEXT, hs_export (t), base, 1));
  TRY ("NBD_OPT_GO for the export",
       hs_info (t, c, NBD_OPT_GO, hs_export (t), NULL, 0));
#undef TRY
  for (size_t i = 0; i < n; i++) {
    nc_log (t, "%s: %s", seen[i].what, hs_rep (seen[i].rep));
    nc_expect (t, seen[i].rep != NBD_REP_ERR_TLS_REQD, "after "
               "NBD_OPT_STARTTLS was refused (NOTLS mode), %s got "
               "NBD_REP_ERR_TLS_REQD; expected no TLS requirement",
               seen[i].what);
  }
  if (seen[n - 1].rep == NBD_REP_ACK)
    hs_enter (t, c);
}

static const struct nc_test tests[] = {
  { "starttls-notls", "TLS-NOTLS-1 OPT-STARTTLS-2 TLS-MODE-1", NBDP_MUST,
    test_starttls_notls, "STARTTLS in NOTLS mode: an error, not TLS_REQD; "
    "GO still works" },
  { "starttls-with-data", "OPT-STARTTLS-2 TLS-NOTLS-1", NBDP_MUST,
    test_starttls_data, "STARTTLS with data gets an error reply" },
  { "notls-no-tls-reqd", "TLS-NOTLS-2 TLS-MODE-4", NBDP_MUST,
    test_notls_no_tls_reqd,
    "after STARTTLS is refused, no option gets NBD_REP_ERR_TLS_REQD" },
};
NC_SUITE ("handshake", tests);
