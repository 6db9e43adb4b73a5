/* Handshake suite: a server that requires TLS, seen from before the TLS
 * handshake.  The suite speaks no TLS, but what a FORCEDTLS or
 * SELECTIVETLS server does before TLS is up (and that it gives up on a
 * failed TLS handshake) is visible in plain text.  Against a server that
 * does not require TLS for the export under test these tests are
 * UNSUPPORTED (tls.c covers NOTLS mode).
 *
 * The mode is read from the wire: NBD_OPT_GO for the export answered with
 * NBD_REP_ERR_TLS_REQD means the export needs TLS; NBD_OPT_LIST answered
 * with NBD_REP_ERR_TLS_REQD too means FORCEDTLS (a SELECTIVETLS server
 * must not refuse NBD_OPT_LIST for want of TLS), otherwise SELECTIVETLS.
 * A FORCEDTLS server that wrongly serves NBD_OPT_LIST looks SELECTIVETLS
 * here; the wire cannot tell them apart.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hs.h"

enum tls_mode { TLS_NONE, TLS_FORCED, TLS_SELECTIVE };

/* Probe on a connection of its own: does the export need TLS, and is the
 * server FORCEDTLS or SELECTIVETLS?  *go gets the reply to NBD_OPT_GO.
 */
static enum tls_mode
probe (struct nc_ctx *t, uint32_t *go)
{
  struct nc_conn *c = hs_start (t);
  enum tls_mode m;
  uint32_t r = hs_info (t, c, NBD_OPT_GO, hs_export (t), NULL, 0);

  *go = r;
  if (r != NBD_REP_ERR_TLS_REQD)
    m = TLS_NONE;
  else
    m = hs_opt (t, c, NBD_OPT_LIST, NULL, 0) == NBD_REP_ERR_TLS_REQD
      ? TLS_FORCED : TLS_SELECTIVE;
  nbdp_client_close (c->c);
  nc_log (t, "probe: NBD_OPT_GO \"%s\" before TLS: %s; mode %s",
          hs_export (t), hs_rep (r),
          m == TLS_NONE ? "no TLS required" :
          m == TLS_FORCED ? "FORCEDTLS" : "SELECTIVETLS");
  return m;
}

static enum tls_mode
need_tls (struct nc_ctx *t)
{
  uint32_t go;
  enum tls_mode m = probe (t, &go);

  if (m == TLS_NONE)
    nc_unsupported (t, "the export \"%s\" does not require TLS: NBD_OPT_GO "
                    "before NBD_OPT_STARTTLS answered %s", hs_export (t),
                    hs_rep (go));
  return m;
}

/* NBD_OPT_GO (with information requests) and NBD_OPT_INFO before TLS:
 * NBD_REP_ERR_TLS_REQD, and no NBD_REP_INFO before it.
 */
static void
test_go_before_tls (struct nc_ctx *t)
{
  static const uint16_t infos[] = {
    NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE,
  };
  static const uint32_t opts[] = { NBD_OPT_GO, NBD_OPT_INFO };
  enum tls_mode m = need_tls (t);
  struct nc_conn *c = hs_start (t);

  for (size_t i = 0; i < 2; i++) {
    uint32_t r = hs_info (t, c, opts[i], hs_export (t), infos, 3);
    const char *id = opts[i] == NBD_OPT_GO
      ? (m == TLS_FORCED ? "TLS-FORCED-8" : "TLS-SEL-4")
      : (m == TLS_FORCED ? "TLS-FORCED-6" : "TLS-SEL-4");

    if (r != NBD_REP_ERR_TLS_REQD)
      nc_fail (t, id, "sent %s \"%s\" with 3 information requests before "
               "TLS: got %s, expected NBD_REP_ERR_TLS_REQD (%s mode: the "
               "export needs TLS)", hs_opt_name (opts[i]), hs_export (t),
               hs_rep (r), m == TLS_FORCED ? "FORCEDTLS" : "SELECTIVETLS");
    else if (c->s.opt.replies > 1)
      nc_fail (t, "OPT-GO-14", "sent %s \"%s\" before TLS: got %" PRIu32
               " replies before NBD_REP_ERR_TLS_REQD, expected it alone (no "
               "NBD_REP_INFO)", hs_opt_name (opts[i]), hs_export (t),
               c->s.opt.replies - 1);
    if (r == NBD_REP_ACK)
      nc_done (t);
  }
}

/* FORCEDTLS: every option but NBD_OPT_STARTTLS, known or not, is refused
 * with NBD_REP_ERR_TLS_REQD before TLS.
 */
static void
test_forced_options (struct nc_ctx *t)
{
  static const char *const base[] = { "base:allocation" };
  struct nc_conn *c;
  struct {
    const char *what;
    uint32_t rep;
  } seen[8];
  size_t n = 0;

  if (need_tls (t) != TLS_FORCED)
    nc_unsupported (t, "the server is not in FORCEDTLS mode (NBD_OPT_LIST "
                    "is served before TLS)");
  c = hs_start (t);
#define TRY(w, expr) \
  do { seen[n].what = (w); seen[n].rep = (expr); n++; } while (0)
  TRY ("NBD_OPT_LIST", hs_opt (t, c, NBD_OPT_LIST, NULL, 0));
  TRY ("NBD_OPT_INFO for an unknown export",
       hs_info (t, c, NBD_OPT_INFO, HS_NO_SUCH_EXPORT, NULL, 0));
  TRY ("NBD_OPT_STRUCTURED_REPLY",
       hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0));
  TRY ("NBD_OPT_EXTENDED_HEADERS",
       hs_opt (t, c, NBD_OPT_EXTENDED_HEADERS, NULL, 0));
  TRY ("NBD_OPT_LIST_META_CONTEXT",
       hs_meta (t, c, NBD_OPT_LIST_META_CONTEXT, hs_export (t), base, 1));
  TRY ("NBD_OPT_SET_META_CONTEXT",
       hs_meta (t, c, NBD_OPT_SET_META_CONTEXT, hs_export (t), base, 1));
  TRY ("an unknown option (0x4e430001)", hs_opt (t, c, 0x4e430001, NULL, 0));
#undef TRY
  for (size_t i = 0; i < n; i++) {
    nc_log (t, "%s before TLS: %s", seen[i].what, hs_rep (seen[i].rep));
    nc_expect (t, seen[i].rep == NBD_REP_ERR_TLS_REQD, "FORCEDTLS server: "
               "%s before TLS got %s, expected NBD_REP_ERR_TLS_REQD",
               seen[i].what, hs_rep (seen[i].rep));
  }
}

/* SELECTIVETLS: before TLS, NBD_REP_ERR_TLS_REQD answers only INFO, GO
 * and EXPORT_NAME about a TLS-only or unknown export.
 */
static void
test_selective_options (struct nc_ctx *t)
{
  static const char *const base[] = { "base:allocation" };
  struct nc_conn *c;
  struct {
    const char *what;
    uint32_t rep;
  } seen[8];
  size_t n = 0;

  if (need_tls (t) != TLS_SELECTIVE)
    nc_unsupported (t, "the server is not in SELECTIVETLS mode "
                    "(NBD_OPT_LIST is refused with NBD_REP_ERR_TLS_REQD "
                    "before TLS: FORCEDTLS)");
  c = hs_start (t);
#define TRY(w, expr) \
  do { seen[n].what = (w); seen[n].rep = (expr); n++; } while (0)
  TRY ("NBD_OPT_LIST", hs_opt (t, c, NBD_OPT_LIST, NULL, 0));
  TRY ("NBD_OPT_STRUCTURED_REPLY",
       hs_opt (t, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0));
  TRY ("NBD_OPT_LIST_META_CONTEXT for the TLS-only export",
       hs_meta (t, c, NBD_OPT_LIST_META_CONTEXT, hs_export (t), base, 1));
  TRY ("an unknown option (0x4e430001)", hs_opt (t, c, 0x4e430001, NULL, 0));
#undef TRY
  for (size_t i = 0; i < n; i++) {
    nc_log (t, "%s before TLS: %s", seen[i].what, hs_rep (seen[i].rep));
    nc_expect (t, seen[i].rep != NBD_REP_ERR_TLS_REQD, "SELECTIVETLS "
               "server: %s before TLS got NBD_REP_ERR_TLS_REQD; expected "
               "it only for NBD_OPT_INFO, NBD_OPT_GO or NBD_OPT_EXPORT_NAME",
               seen[i].what);
  }
}

/* NBD_OPT_EXPORT_NAME of an export that needs TLS, before TLS: it cannot
 * fail with an error reply, so the server ends the session.
 */
static void
test_export_name_before_tls (struct nc_ctx *t)
{
  enum tls_mode m = need_tls (t);
  struct nc_conn *c = hs_start (t);
  const char *id = m == TLS_FORCED ? "TLS-FORCED-7" : "TLS-SEL-5";

  nc_send_option (t, c, NBD_OPT_EXPORT_NAME, hs_export (t),
                  strlen (hs_export (t)));
  switch (hs_wait_close (t, c, HS_CLOSE_WAIT_MS)) {
  case 1:
    return;
  case 0:
    nc_fail (t, id, "sent NBD_OPT_EXPORT_NAME \"%s\" before TLS (the export "
             "needs TLS): the server sent data; expected it to end the "
             "session", hs_export (t));
    break;
  default:
    nc_fail (t, id, "sent NBD_OPT_EXPORT_NAME \"%s\" before TLS (the export "
             "needs TLS): the connection is still open after %d ms; "
             "expected the server to end the session", hs_export (t),
             HS_CLOSE_WAIT_MS);
  }
}

/* NBD_OPT_STARTTLS as the first option, to a server that requires TLS:
 * NBD_REP_ACK.
 */
static void
test_starttls_ack (struct nc_ctx *t)
{
  enum tls_mode m = need_tls (t);
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_STARTTLS, NULL, 0);

  if (r != NBD_REP_ACK)
    nc_fail (t, m == TLS_FORCED ? "TLS-FORCED-1" : "TLS-SEL-1",
             "sent NBD_OPT_STARTTLS first, to a server that requires TLS "
             "for \"%s\": got %s, expected NBD_REP_ACK", hs_export (t),
             hs_rep (r));
}

/* After NBD_REP_ACK to NBD_OPT_STARTTLS, bytes that are no TLS handshake
 * (an NBD option): the handshake fails and the server ends the session.
 * It may send a TLS alert first; anything it sends is read and dropped.
 */
static void
test_failed_handshake (struct nc_ctx *t)
{
  static const char junk[] =
    "IHAVEOPT\0\0\0\7\0\0\0\6\0\0\0\0\0\0 this is not a TLS ClientHello";
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_opt (t, c, NBD_OPT_STARTTLS, NULL, 0);
  struct timespec t0, t1;
  size_t got = 0;

  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_STARTTLS answered with %s: the server does "
                    "not offer TLS", hs_rep (r));
  if (nbdp_client_send_raw (c->c, junk, sizeof junk - 1) == -1) {
    nc_log (t, "sending the junk: %s (the server closed already)",
            nbdp_client_error (c->c));
    return;
  }
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (;;) {
    unsigned char buf[4096];
    struct pollfd pfd = { .fd = c->c->fd, .events = POLLIN };
    long left;
    ssize_t n;
    int p;

    clock_gettime (CLOCK_MONOTONIC, &t1);
    left = HS_CLOSE_WAIT_MS - ((t1.tv_sec - t0.tv_sec) * 1000 +
                               (t1.tv_nsec - t0.tv_nsec) / 1000000);
    if (left <= 0 ||
        (p = poll (&pfd, 1, (int) left)) == 0) {
      nc_fail (t, "TLS-FORCED-5", "sent NBD_OPT_STARTTLS (acked), then %zu "
               "bytes that are not a TLS handshake: the connection is still "
               "open after %d ms (%zu bytes received); expected the server "
               "to end the session", sizeof junk - 1, HS_CLOSE_WAIT_MS, got);
      return;
    }
    if (p == -1) {
      if (errno == EINTR)
        continue;
      nc_error (t, "poll: %s", strerror (errno));
    }
    n = recv (c->c->fd, buf, sizeof buf, 0);
    if (n == 0 || (n == -1 && (errno == ECONNRESET || errno == EPIPE))) {
      nc_log (t, "the server ended the session after %zu bytes (a TLS "
              "alert, if any)", got);
      return;
    }
    if (n == -1) {
      if (errno == EINTR)
        continue;
      nc_error (t, "recv: %s", strerror (errno));
    }
    got += n;
  }
}

static const struct nc_test tests[] = {
  { "tls-go-before-tls", "TLS-FORCED-8 TLS-FORCED-6 TLS-SEL-4 OPT-GO-14",
    NBDP_MUST, test_go_before_tls,
    "TLS required: GO and INFO before TLS get TLS_REQD, no INFO replies" },
  { "tls-forced-options", "TLS-FORCED-6", NBDP_MUST, test_forced_options,
    "FORCEDTLS: every option before TLS gets NBD_REP_ERR_TLS_REQD" },
  { "tls-selective-options", "TLS-SEL-7", NBDP_MUST, test_selective_options,
    "SELECTIVETLS: only INFO/GO/EXPORT_NAME may get NBD_REP_ERR_TLS_REQD" },
  { "tls-export-name-before-tls", "TLS-FORCED-7 TLS-SEL-5", NBDP_MUST,
    test_export_name_before_tls,
    "TLS required: EXPORT_NAME before TLS ends the session" },
  { "tls-starttls-ack", "TLS-FORCED-1 TLS-SEL-1", NBDP_MUST,
    test_starttls_ack, "TLS required: a first STARTTLS gets NBD_REP_ACK" },
  { "tls-failed-handshake", "TLS-FORCED-5", NBDP_MUST, test_failed_handshake,
    "STARTTLS acked, then no TLS: the server ends the session" },
};
NC_SUITE ("handshake", tests);
