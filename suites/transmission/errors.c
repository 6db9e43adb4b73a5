/* Transmission suite: requests the server must refuse, and the error
 * values it should use.  The session must survive each refusal.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

/* The connection still works: a small READ at 0 succeeds. */
static void
still_alive (struct nc_ctx *t, struct nc_conn *c, const char *after)
{
  struct nc_result r;
  uint64_t len = c->s.export_size < 512 ? c->s.export_size : 512;

  nc_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL, NULL, &r);
  if (!r.complete || r.error)
    nc_should (t, "TX-TERM-10", "after %s, a READ 0+%" PRIu64 " got %s; "
             "expected the session to continue", after, len, nc_errstr (&r));
}

/* Judge an error reply: MUST be an error; SHOULD be want. */
static bool
expect_error (struct nc_ctx *t, const struct nc_result *r, uint32_t want,
              const char *what)
{
  const char *wn = nbdp_name_of_error (want);

  if (!r->complete) {
    /* The client broke a MUST, so a hard disconnect is allowed. */
    nc_should (t, NULL, "%s: no complete reply (%s); expected %s", what,
               nc_errstr (r), wn);
    return false;
  }
  if (r->error == 0) {
    nc_expect (t, false, "%s: got success, expected %s", what, wn);
    return false;
  }
  if (r->error != want) {
    nc_should (t, NULL, "%s: got %s, expected %s", what, nc_errstr (r), wn);
    return false;
  }
  return true;
}

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
  expect_error (t, &r, NBD_EINVAL, what);
  still_alive (t, c, what);
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
  expect_error (t, &r, NBD_EINVAL, what);
  still_alive (t, c, what);
}

static void
test_write_past_eof (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  uint64_t size = c->s.export_size, off = size >= 512 ? size - 512 : 0;
  unsigned char buf[1024] = { 0 };
  struct nc_result r;
  char what[128];

  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_skip (t, "the export is read-only");
  nc_cmd (t, c, NBD_CMD_WRITE, 0, off, sizeof buf, buf, NULL, &r);
  snprintf (what, sizeof what, "WRITE offset %" PRIu64 " length 1024 "
            "(export size %" PRIu64 ")", off, size);
  expect_error (t, &r, NBD_ENOSPC, what);
  still_alive (t, c, what);
}

static void
test_write_read_only (struct nc_ctx *t)
{
  struct nc_open_opts o = { .export_name = t->cfg->ro_export };
  struct nc_conn *c = nc_open (t, &o);
  unsigned char buf[512] = { 0 };
  struct nc_result r;

  if (!(c->s.eflags & NBD_FLAG_READ_ONLY)) {
    if (t->cfg->ro_export == NULL)
      nc_skip (t, "the export is writable and no --ro-export was given");
    nc_unsupported (t, "export \"%s\" does not advertise "
                    "NBD_FLAG_READ_ONLY (flags 0x%04x)", t->cfg->ro_export,
                    c->s.eflags);
  }
  nc_cmd (t, c, NBD_CMD_WRITE, 0, 0, sizeof buf, buf, NULL, &r);
  if (r.complete && r.error == 0)
    nc_fail (t, "FLAG-TX-6", "WRITE 0+512 on an export with "
             "NBD_FLAG_READ_ONLY: got success, expected an error");
  else
    expect_error (t, &r, NBD_EPERM, "WRITE 0+512 on a read-only export");
  still_alive (t, c, "a WRITE on a read-only export");
}

static void
test_unknown_command (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  struct nc_result r;

  nc_cmd (t, c, 0x1f, 0, 0, 0, NULL, NULL, &r);
  expect_error (t, &r, NBD_EINVAL, "request type 31 (unknown), offset 0 "
                "length 0");
  still_alive (t, c, "an unknown command");
}

static void
test_unknown_flag (struct nc_ctx *t)
{
  struct nc_conn *c = nc_open (t, NULL);
  struct nc_result r;
  uint64_t len = c->s.export_size < 512 ? c->s.export_size : 512;

  nc_cmd (t, c, NBD_CMD_READ, 0x4000, 0, len, NULL, NULL, &r);
  expect_error (t, &r, NBD_EINVAL, "READ with command flag 0x4000 "
                "(undefined)");
  still_alive (t, c, "a READ with an undefined flag");
}

static const struct nc_test tests[] = {
  { "read-past-eof", "ERR-3 SIZE-34", NBDP_SHOULD, test_read_past_eof,
    "READ past the end fails with NBD_EINVAL" },
  { "read-past-eof-structured", "ERR-3 SR-MSG-3", NBDP_SHOULD,
    test_read_past_eof_structured,
    "READ past the end fails with NBD_EINVAL (structured replies)" },
  { "write-past-eof", "ERR-1", NBDP_SHOULD,
    test_write_past_eof, "WRITE past the end fails with NBD_ENOSPC" },
  { "write-read-only", "ERR-4 FLAG-TX-6", NBDP_SHOULD,
    test_write_read_only, "WRITE on a read-only export fails (NBD_EPERM)" },
  { "unknown-command", "ERR-7", NBDP_SHOULD,
    test_unknown_command, "unknown request type fails with NBD_EINVAL" },
  { "unknown-flag", "ERR-8", NBDP_SHOULD, test_unknown_flag,
    "undefined command flag fails with NBD_EINVAL" },
};
NC_SUITE ("transmission", tests);
