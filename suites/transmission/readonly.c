/* Transmission suite: read-only exports (--ro-export).  Every write
 * operation fails (FLAG-TX-6), ideally with NBD_EPERM, and the content
 * does not change.
 */
#include "txlib.h"

/* The request (a write operation) on the read-only export must fail
 * and change nothing; flags/need as for the command.
 */
static void
ro_refused (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t type,
            uint16_t flags, uint16_t need, const char *names,
            const char *want_id)
{
  struct nc_conn *c = tx_open_ro (t, o);
  uint64_t len = c->s.export_size < 4096 ? c->s.export_size : 4096;
  unsigned char *before = tx_alloc (t, len), *w = tx_alloc (t, len);
  struct nc_result r;
  char what[160];

  if (need)
    tx_need (t, c, need, names);
  if (flags & NBD_CMD_FLAG_FUA)
    tx_need (t, c, NBD_FLAG_SEND_FUA, "SEND_FUA");
  tx_read (t, c, 0, len, before, NULL);
  memset (w, 0xa7, len);
  snprintf (what, sizeof what, "%s 0+%" PRIu64 " flags 0x%x on the "
            "read-only export \"%s\"%s", tx_cmd_name (type), len, flags,
            t->cfg->ro_export, o && o->structured ? " (structured replies)"
            : "");
  nc_cmd (t, c, type, flags, 0, len, w, NULL, &r);
  tx_refused (t, &r, NBDP_MUST, "FLAG-TX-6", NBD_EPERM, 0, want_id,
              TX_VALID, what);
  tx_check (t, c, 0, len, before, NBDP_MUST, "FLAG-TX-6", what);
  free (before);
  free (w);
}

static void
test_ro_write_unchanged (struct nc_ctx *t)
{
  ro_refused (t, NULL, NBD_CMD_WRITE, 0, 0, NULL, "ERR-4");
}

static void
test_ro_write_fua (struct nc_ctx *t)
{
  ro_refused (t, NULL, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, NULL, "ERR-4");
}

static void
test_ro_write_structured (struct nc_ctx *t)
{
  static const struct nc_open_opts o = { .structured = true };
  ro_refused (t, &o, NBD_CMD_WRITE, 0, 0, NULL, "ERR-4");
}

static void
test_ro_trim (struct nc_ctx *t)
{
  ro_refused (t, NULL, NBD_CMD_TRIM, 0, NBD_FLAG_SEND_TRIM, "SEND_TRIM",
              "ERR-4");
}

static void
test_ro_wz (struct nc_ctx *t)
{
  ro_refused (t, NULL, NBD_CMD_WRITE_ZEROES, 0, NBD_FLAG_SEND_WRITE_ZEROES,
              "SEND_WRITE_ZEROES", "CMD-WZ-21");
}

/* Commands that do not write work on a read-only export. */
static void
test_ro_nonwrite (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open_ro (t, NULL);
  uint64_t len = c->s.export_size < 4096 ? c->s.export_size : 4096;
  struct nc_result r;

  nc_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL, NULL, &r);
  tx_ok (t, &r, NBDP_MUST, "CMD-READ-4", TX_VALID, "READ on a read-only "
         "export");
  if (c->s.eflags & NBD_FLAG_SEND_FLUSH) {
    nc_cmd (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
    if (!r.complete)
      tx_gone (t, &r, TX_VALID, "FLUSH on a read-only export");
    nc_info (t, "FLUSH on a read-only export: %s", nc_errstr (&r));
  }
  if (c->s.eflags & NBD_FLAG_SEND_CACHE) {
    nc_cmd (t, c, NBD_CMD_CACHE, 0, 0, len, NULL, NULL, &r);
    if (!r.complete)
      tx_gone (t, &r, TX_VALID, "CACHE on a read-only export");
    nc_info (t, "CACHE on a read-only export: %s", nc_errstr (&r));
  }
}

/* A read-only export advertises no command that only writes?  The
 * text allows advertising them (they then fail): record what it does.
 */
static void
test_ro_flags (struct nc_ctx *t)
{
  struct nc_conn *c = tx_open_ro (t, NULL);

  nc_info (t, "read-only export \"%s\": transmission flags 0x%04x%s%s%s",
           t->cfg->ro_export, c->s.eflags,
           c->s.eflags & NBD_FLAG_SEND_TRIM ? ", SEND_TRIM" : "",
           c->s.eflags & NBD_FLAG_SEND_WRITE_ZEROES ? ", SEND_WRITE_ZEROES"
           : "", c->s.eflags & NBD_FLAG_SEND_FUA ? ", SEND_FUA" : "");
}

static const struct nc_test tests[] = {
  { "read-only-write-unchanged", "FLAG-TX-6 ERR-4", NBDP_MUST,
    test_ro_write_unchanged,
    "a WRITE on a read-only export fails and changes nothing" },
  { "read-only-write-fua", "FLAG-TX-6 ERR-4", NBDP_MUST, test_ro_write_fua,
    "a WRITE with FUA on a read-only export fails" },
  { "read-only-write-structured", "FLAG-TX-6 ERR-4", NBDP_MUST,
    test_ro_write_structured,
    "a WRITE on a read-only export fails (structured replies)" },
  { "read-only-trim", "FLAG-TX-6 ERR-4", NBDP_MUST, test_ro_trim,
    "a TRIM on a read-only export fails (NBD_EPERM)" },
  { "read-only-write-zeroes", "FLAG-TX-6 CMD-WZ-21", NBDP_MUST, test_ro_wz,
    "a WRITE_ZEROES on a read-only export fails (NBD_EPERM)" },
  { "read-only-nonwrite", "CMD-READ-4 FLAG-TX-5", NBDP_MUST,
    test_ro_nonwrite, "READ, FLUSH, CACHE on a read-only export" },
  { "read-only-flags", "FLAG-TX-5 FLAG-TX-1", NBDP_MUST, test_ro_flags,
    "which write commands a read-only export advertises" },
};
NC_SUITE ("transmission", tests);

