/* nbd-refserver: the oldstyle handshake (--oldstyle).  The server sends
 * one greeting describing the default export and goes straight to the
 * transmission phase; there are no options, so no structured replies.
 */
#include <inttypes.h>
#include <string.h>

#include "internal.h"
#include "log.h"

int
handshake_oldstyle (struct conn *c)
{
  unsigned char buf[8 + 8 + 8 + 4 + NBD_OLDSTYLE_ZEROES];
  struct export *exp = exports_find ("", 0);
  uint64_t size;
  char fl[256];

  if (exp == NULL)
    return -1;
  c->exp = exp;
  c->eflags = export_eflags (exp, false, false, false);
  c->eflags |= resize_eflags (exp, false, 0);   /* legacy mode, if any */
  resize_conn_setup (c, false, 0);
  size = export_size (exp);

  memset (buf, 0, sizeof buf);
  nbdp_put64 (buf, NBD_MAGIC);
  nbdp_put64 (buf + 8, NBD_OLD_VERSION);
  nbdp_put64 (buf + 16, size);
  /* 32 bits of flags: the high 16 (handshake flags) are zero in oldstyle. */
  nbdp_put32 (buf + 24, c->eflags);
  if (nbdp_verbose)
    nbdp_debug ("conn %" PRIu64 ": oldstyle greeting: export \"%s\" size "
                "%" PRIu64 " flags %s", c->id, exp->name, size,
                nbdp_flags_str (fl, sizeof fl, c->eflags));
  resize_conn_start (c);
  if (conn_send (c, buf, sizeof buf) == -1) {
    nbdp_debug ("conn %" PRIu64 ": sending the greeting failed", c->id);
    return -1;
  }
  return 0;
}
