/* Transmission suite: FLUSH, TRIM, WRITE_ZEROES, FUA, CACHE and DISC.
 * Optional commands are UNSUPPORTED unless the transmission flags the
 * server sent advertise them.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

static struct nc_conn *
open_needing (struct nc_ctx *t, uint16_t flag, const char *name,
              bool writable)
{
  struct nc_conn *c = nc_open (t, NULL);

  if (flag && !(c->s.eflags & flag))
    nc_unsupported (t, "server did not advertise %s (transmission flags "
                    "0x%04x)", name, c->s.eflags);
  if (writable && (c->s.eflags & NBD_FLAG_READ_ONLY))
    nc_skip (t, "the export is read-only");
  if (c->s.export_size < 65536)
    nc_skip (t, "the export is smaller than 64 KiB");
  return c;
}

static void
test_flush (struct nc_ctx *t)
{
  struct nc_conn *c = open_needing (t, NBD_FLAG_SEND_FLUSH, "SEND_FLUSH",
                                    false);
  struct nc_result r;

  nc_cmd (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
  nc_expect (t, r.complete && r.error == 0, "FLUSH: got %s, expected "
             "success", nc_errstr (&r));
}

static void
test_fua (struct nc_ctx *t)
{
  struct nc_conn *c = open_needing (t, NBD_FLAG_SEND_FUA, "SEND_FUA", true);
  unsigned char buf[4096];
  struct nc_result r;

  memset (buf, 0x5a, sizeof buf);
  nc_cmd (t, c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, sizeof buf, buf, NULL,
          &r);
  nc_expect (t, r.complete && r.error == 0, "WRITE 0+4096 with FUA: got "
             "%s, expected success", nc_errstr (&r));
}

static void
test_trim (struct nc_ctx *t)
{
  struct nc_conn *c = open_needing (t, NBD_FLAG_SEND_TRIM, "SEND_TRIM", true);
  struct nc_result r;

  nc_cmd (t, c, NBD_CMD_TRIM, 0, 0, 65536, NULL, NULL, &r);
  nc_expect (t, r.complete && r.error == 0, "TRIM 0+65536: got %s, "
             "expected success", nc_errstr (&r));
}

static void
test_write_zeroes (struct nc_ctx *t)
{
  struct nc_conn *c = open_needing (t, NBD_FLAG_SEND_WRITE_ZEROES,
                                    "SEND_WRITE_ZEROES", true);
  unsigned char *buf = malloc (65536);
  struct nc_result r;

  if (buf == NULL)
    nc_error (t, "out of memory");
  memset (buf, 0xa5, 65536);
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 0, 65536, buf, NULL, &r);
  if (!r.complete || r.error)
    nc_error (t, "setup: WRITE 0+65536 got %s", nc_errstr (&r));
  nc_cmd (t, c, NBD_CMD_WRITE_ZEROES, 0, 4096, 8192, NULL, NULL, &r);
  if (!nc_expect (t, r.complete && r.error == 0, "WRITE_ZEROES 4096+8192: "
                  "got %s, expected success", nc_errstr (&r)))
    return;
  nc_cmd (t, c, NBD_CMD_READ, 0, 0, 65536, NULL, buf, &r);
  if (!r.complete || r.error)
    nc_error (t, "READ 0+65536 after WRITE_ZEROES got %s", nc_errstr (&r));
  for (size_t i = 0; i < 65536; i++) {
    unsigned char want = i >= 4096 && i < 4096 + 8192 ? 0 : 0xa5;
    if (buf[i] != want) {
      nc_expect (t, false, "after WRITE 0+65536 of 0xa5 and WRITE_ZEROES "
                 "4096+8192, byte %zu reads 0x%02x, expected 0x%02x", i,
                 buf[i], want);
      break;
    }
  }
}

static void
test_cache (struct nc_ctx *t)
{
  struct nc_conn *c = open_needing (t, NBD_FLAG_SEND_CACHE, "SEND_CACHE",
                                    false);
  struct nc_result r;

  nc_cmd (t, c, NBD_CMD_CACHE, 0, 0, 65536, NULL, NULL, &r);
  nc_expect (t, r.complete, "CACHE 0+65536: no reply (%s)", nc_errstr (&r));
  if (r.error)
    nc_info (t, "CACHE 0+65536 failed with %s (allowed)", nc_errstr (&r));
}

static const struct nc_test tests[] = {
  { "flush", "FLAG-TX-2 CMD-FLUSH-1", NBDP_MUST, test_flush,
    "FLUSH succeeds when SEND_FLUSH is advertised" },
  { "write-fua", "FLAG-CMD-2 TX-ORD-3", NBDP_MUST, test_fua,
    "WRITE with FUA succeeds when SEND_FUA is advertised" },
  { "trim", "FLAG-TX-2 CMD-TRIM-1", NBDP_MUST, test_trim,
    "TRIM succeeds when SEND_TRIM is advertised" },
  { "write-zeroes", "CMD-WZ-8 CMD-WZ-3", NBDP_MUST, test_write_zeroes,
    "WRITE_ZEROES makes the range read back as zero" },
  { "cache", "CMD-CACHE-2 FLAG-TX-2", NBDP_MUST, test_cache,
    "CACHE is answered when SEND_CACHE is advertised" },
};
NC_SUITE ("transmission", tests);
