/* Transmission suite: requests the server must refuse, and the error
 * values it should use.  The session must survive each refusal (or, when
 * the request broke a client MUST, the server may hard-disconnect).
 */
#include "txlib.h"

static void
test_read_past_eof (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  uint64_t size = c->s.export_size, off = size >= 512 ? size - 512 : 0;
  struct nc_result r;
  char what[128];

  nc_cmd (t, c, NBD_CMD_READ, 0, off, 1024, NULL, NULL, &r);
  snprintf (what, sizeof what, "READ offset %" PRIu64 " length 1024 (export "
            "size %" PRIu64 ")", off, size);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-3", NBD_EINVAL, 0, "ERR-3",
              TX_BAD_MUST, what);
  tx_alive (t, c, TX_BAD_MUST, what);
}

static void
test_read_past_eof_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  struct nc_conn *c = nc_open (t, &o);
  uint64_t size = c->s.export_size;
  struct nc_result r;
  char what[128];

  nc_cmd (t, c, NBD_CMD_READ, 0, size, 512, NULL, NULL, &r);
  snprintf (what, sizeof what, "READ offset %" PRIu64 " length 512 at the "
            "end of the export, structured replies", size);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-3", NBD_EINVAL, 0, "ERR-3",
              TX_BAD_MUST, what);
  tx_alive (t, c, TX_BAD_MUST, what);
}

static void
test_write_past_eof (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 1024);
  uint64_t size = c->s.export_size, off = size - 512;
  unsigned char buf[1024] = { 0 };
  struct nc_result r;
  char what[128];

  nc_cmd (t, c, NBD_CMD_WRITE, 0, off, sizeof buf, buf, NULL, &r);
  snprintf (what, sizeof what, "WRITE offset %" PRIu64 " length 1024 "
            "(export size %" PRIu64 ")", off, size);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-1", NBD_ENOSPC, 0, "ERR-1",
              TX_BAD_MUST, what);
  tx_alive (t, c, TX_BAD_MUST, what);
}

/* An unknown request type: NBD_EINVAL, and the session goes on. */
static void
unknown_cmd (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t type)
{
  struct nc_conn *c = nc_open (t, o);
  struct nc_result r;
  char what[128];

  snprintf (what, sizeof what, "request type %u (unknown), offset 0 "
            "length 0%s", type, o && o->structured ? ", structured replies"
            : "");
  nc_cmd (t, c, type, 0, 0, 0, NULL, NULL, &r);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-7", NBD_EINVAL, 0, "ERR-7",
              TX_BAD_SHOULD, what);
  if (o && o->structured && r.complete)
    nc_info (t, "%s: refused with %s", what, r.simple ? "a simple reply"
             : "an error chunk");
  tx_alive (t, c, TX_BAD_SHOULD, what);
}

static void
test_unknown_command (struct nc_ctx *t)
{
  unknown_cmd (t, NULL, 0x1f);
}

static void
test_unknown_command_9 (struct nc_ctx *t)
{
  unknown_cmd (t, NULL, 9);
}

static void
test_unknown_command_high (struct nc_ctx *t)
{
  unknown_cmd (t, NULL, 0xffff);
}

static void
test_unknown_command_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  unknown_cmd (t, &o, 0x1f);
}

/* An unknown command between two READs in flight: both READs are
 * answered with their data.
 */
static void
test_unknown_command_pipelined (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open (t, NULL, 0, NULL, true, 8192);
  unsigned char w[8192], b[4096];
  uint64_t r1, u, r2;
  struct nc_result r;

  tx_pattern (w, sizeof w, 0, 22);
  tx_write (t, c, 0, sizeof w, w, 0);
  r1 = nc_send (t, c, NBD_CMD_READ, 0, 0, 4096, NULL, 0);
  u = nc_send (t, c, 0x1f, 0, 0, 0, NULL, 0);
  r2 = nc_send (t, c, NBD_CMD_READ, 0, 4096, 4096, NULL, 0);
  nc_wait (t, c, u, NULL, &r);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-7", NBD_EINVAL, 0, "ERR-7",
              TX_BAD_SHOULD, "request type 31 between two READs in flight");
  for (int i = 0; i < 2; i++) {
    nc_wait (t, c, i ? r2 : r1, b, &r);
    if (!tx_ok (t, &r, NBDP_MUST, "CMD-READ-4", TX_BAD_SHOULD, i
                ? "READ 4096+4096 (behind an unknown command)"
                : "READ 0+4096 (ahead of an unknown command)"))
      continue;
    nc_expect (t, memcmp (b, w + 4096 * i, 4096) == 0, "READ %d+4096 "
               "around an unknown command: wrong data", 4096 * i);
  }
}

static void
test_write_read_only (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open_ro (t, NULL);
  unsigned char buf[512] = { 0 };
  struct nc_result r;

  nc_cmd (t, c, NBD_CMD_WRITE, 0, 0, sizeof buf, buf, NULL, &r);
  tx_refused (t, &r, NBDP_MUST, "FLAG-TX-6", NBD_EPERM, 0, "ERR-4",
              TX_VALID, "WRITE 0+512 on an export with NBD_FLAG_READ_ONLY");
  tx_alive (t, c, TX_VALID, "a WRITE on a read-only export");
}

static void
test_unknown_flag (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  struct nc_result r;
  uint64_t len = c->s.export_size < 512 ? c->s.export_size : 512;

  nc_cmd (t, c, NBD_CMD_READ, 0x4000, 0, len, NULL, NULL, &r);
  tx_refused (t, &r, NBDP_SHOULD, "ERR-8", NBD_EINVAL, 0, "ERR-8",
              TX_BAD_MUST, "READ with command flag 0x4000 (undefined)");
  tx_alive (t, c, TX_BAD_MUST, "a READ with an undefined flag");
}

static const struct nc_test tests[] = {
  { "read-past-eof", "ERR-3 SIZE-34", NBDP_SHOULD, test_read_past_eof,
    "READ past the end fails with NBD_EINVAL" },
  { "read-past-eof-structured", "ERR-3 SR-MSG-3", NBDP_SHOULD,
    test_read_past_eof_structured,
    "READ past the end fails with NBD_EINVAL (structured replies)" },
  { "write-past-eof", "ERR-1", NBDP_SHOULD,
    test_write_past_eof, "WRITE past the end fails with NBD_ENOSPC" },
  { "write-read-only", "FLAG-TX-6 ERR-4", NBDP_MUST,
    test_write_read_only, "WRITE on a read-only export fails (NBD_EPERM)" },
  { "unknown-command", "ERR-7", NBDP_SHOULD,
    test_unknown_command, "unknown request type fails with NBD_EINVAL" },
  { "unknown-command-9", "ERR-7", NBDP_SHOULD, test_unknown_command_9,
    "request type 9 (unassigned) fails with NBD_EINVAL" },
  { "unknown-command-high", "ERR-7", NBDP_SHOULD, test_unknown_command_high,
    "request type 65535 fails with NBD_EINVAL" },
  { "unknown-command-structured", "ERR-7 TX-SIMPLE-2", NBDP_SHOULD,
    test_unknown_command_structured,
    "unknown request type fails with NBD_EINVAL (structured replies)" },
  { "unknown-command-pipelined", "ERR-7 CMD-READ-4", NBDP_SHOULD,
    test_unknown_command_pipelined,
    "an unknown command between READs in flight disturbs neither" },
  { "unknown-flag", "ERR-8", NBDP_SHOULD, test_unknown_flag,
    "undefined command flag fails with NBD_EINVAL" },
};
NC_SUITE ("transmission", tests);
