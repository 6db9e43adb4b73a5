/* Transmission suite: helpers shared by the suite's files (and by the
 * multi-conn suite).  Everything is static: each file that includes this
 * gets its own copy, so nothing here is part of suites/lib.
 *
 * The helpers judge the common shapes of a test: "this request must
 * succeed", "this request must be refused (with this error, ideally)",
 * "the session must still work afterwards", "these bytes must read back".
 * A hard disconnect by the server is judged by what the request was: a
 * request that breaks a client MUST may be answered by a hard disconnect
 * (TX-TERM-3), any other may not (TX-TERM-10).
 */
#ifndef TXLIB_H
#define TXLIB_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

#define TX_UNUSED __attribute__ ((unused))

/* What kind of request a test sends, for judging a hard disconnect. */
enum tx_bad {
  TX_VALID,           /* a valid request: no disconnect (TX-TERM-10) */
  TX_BAD_SHOULD,      /* breaks only a client SHOULD: no disconnect */
  TX_BAD_MUST,        /* breaks a client MUST: hard disconnect allowed */
};

/* A finding at the given level. */
static TX_UNUSED void
tx_finding (struct nc_ctx *t, enum nbdp_level level, const char *id,
            const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));
static TX_UNUSED void
tx_finding (struct nc_ctx *t, enum nbdp_level level, const char *id,
            const char *fmt, ...)
{
  char msg[2048];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (level == NBDP_MUST)
    nc_fail (t, id, "%s", msg);
  else
    nc_should (t, id, "%s", msg);
}

static TX_UNUSED void *
tx_alloc (struct nc_ctx *t, size_t n)
{
  void *p = malloc (n ? n : 1);

  if (p == NULL)
    nc_error (t, "out of memory (%zu bytes)", n);
  return p;
}

/* A deterministic byte pattern that depends on the export offset and a
 * seed, so that misplaced data is told apart from missing data.
 */
static TX_UNUSED void
tx_pattern (unsigned char *b, size_t n, uint64_t off, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    uint64_t x = off + i;
    b[i] = (unsigned char) (x * 31 + seed * 101 + (x >> 9) + (x >> 17) + 1);
  }
}

static TX_UNUSED const char *
tx_cmd_name (uint16_t type)
{
  static char buf[4][40];
  static int i;
  const char *n = nbdp_name_of_cmd (type);

  if (n)
    return n;
  i = (i + 1) % 4;
  snprintf (buf[i], sizeof buf[i], "request type %u", type);
  return buf[i];
}

/* ---- opening ------------------------------------------------------- */

/* End the test UNSUPPORTED unless all of flags were advertised. */
static TX_UNUSED void
tx_need (struct nc_ctx *t, const struct nc_conn *c, uint16_t flags,
         const char *names)
{
  if ((c->s.eflags & flags) != flags)
    nc_unsupported (t, "the server did not advertise %s (transmission "
                    "flags 0x%04x)", names, c->s.eflags);
}

/* End the test SKIP unless the export is writable and at least size
 * bytes long.
 */
static TX_UNUSED void
tx_need_rw (struct nc_ctx *t, const struct nc_conn *c, uint64_t size)
{
  if (c->s.eflags & NBD_FLAG_READ_ONLY)
    nc_skip (t, "the export is read-only (NBD_FLAG_READ_ONLY); these "
             "tests need a writable export");
  if (c->s.export_size < size)
    nc_skip (t, "the export has %" PRIu64 " bytes, this test needs %" PRIu64,
             c->s.export_size, size);
}

/* nc_open, then tx_need (flags) and tx_need_rw (min_size) if rw. */
static TX_UNUSED struct nc_conn *
tx_open (struct nc_ctx *t, const struct nc_open_opts *o, uint16_t flags,
         const char *names, bool rw, uint64_t min_size)
{
  struct nc_conn *c = nc_open (t, o);

  if (flags)
    tx_need (t, c, flags, names);
  if (rw)
    tx_need_rw (t, c, min_size);
  else if (c->s.export_size < min_size)
    nc_skip (t, "the export has %" PRIu64 " bytes, this test needs %" PRIu64,
             c->s.export_size, min_size);
  return c;
}

/* ---- judging replies ----------------------------------------------- */

/* The request got no complete reply: judge the hard disconnect and end
 * the test.  TX_VALID: a MUST finding (TX-TERM-10).  TX_BAD_SHOULD: the
 * text says the server SHOULD NOT disconnect (zero lengths, oversized
 * effect lengths): a SHOULD finding with the test's first ID.
 * TX_BAD_MUST: allowed (TX-TERM-3), recorded as INFO.
 */
static TX_UNUSED _Noreturn void
tx_gone (struct nc_ctx *t, const struct nc_result *r, enum tx_bad bad,
         const char *what)
{
  switch (bad) {
  case TX_BAD_MUST:
    nc_info (t, "%s: the server closed the connection without a reply "
             "(%s); allowed, as the request breaks a client MUST "
             "(TX-TERM-3)", what, nc_errstr (r));
    break;
  case TX_BAD_SHOULD:
    nc_should (t, NULL, "%s: no reply, the server closed the connection "
               "(%s); it should not disconnect on this request", what,
               nc_errstr (r));
    break;
  default:
    nc_fail (t, "TX-TERM-10", "%s: no reply, the server closed the "
             "connection (%s); expected a reply and the session to go on "
             "(the request breaks no client MUST)", what, nc_errstr (r));
    break;
  }
  nc_done (t);
}

/* Errors the protocol restricts (ERR-5, ERR-6, ERR-10), judged for any
 * error reply the test did not ask for explicitly.
 */
static TX_UNUSED void
tx_restricted_errors (struct nc_ctx *t, const struct nc_result *r,
                      bool overflow_ok, bool notsup_ok, const char *what)
{
  if (r->error == NBD_EOVERFLOW && !overflow_ok)
    nc_should (t, "ERR-5", "%s: got NBD_EOVERFLOW, which is meant only "
               "for DF reads and oversized payload-free requests", what);
  if (r->error == NBD_ENOTSUP && !notsup_ok)
    nc_should (t, "ERR-6", "%s: got NBD_ENOTSUP, which is meant only for "
               "WRITE_ZEROES with NBD_CMD_FLAG_FAST_ZERO", what);
  if (r->error == NBD_ENOMEM)
    nc_should (t, "ERR-10", "%s: got NBD_ENOMEM, which servers should "
               "avoid", what);
}

/* The request must succeed.  A missing reply ends the test (judged with
 * bad), an error is a finding at level with id.  Returns true on success.
 */
static TX_UNUSED bool
tx_ok (struct nc_ctx *t, const struct nc_result *r, enum nbdp_level level,
       const char *id, enum tx_bad bad, const char *what)
{
  if (!r->complete)
    tx_gone (t, r, bad, what);
  if (r->error) {
    tx_finding (t, level, id, "%s: got %s%s%s%s, expected success", what,
                nc_errstr (r), r->message[0] ? " (\"" : "", r->message,
                r->message[0] ? "\")" : "");
    tx_restricted_errors (t, r, false, false, what);
    return false;
  }
  return true;
}

/* The request must fail: success is a finding at ok_level with ok_id;
 * an error other than want (or alt, if nonzero) is a SHOULD finding with
 * want_id.  No reply is judged with bad and ends the test.  Returns true
 * if the request failed with want (or alt).
 */
static TX_UNUSED bool
tx_refused (struct nc_ctx *t, const struct nc_result *r,
            enum nbdp_level ok_level, const char *ok_id,
            uint32_t want, uint32_t alt, const char *want_id,
            enum tx_bad bad, const char *what)
{
  const char *wn = nbdp_name_of_error (want);
  const char *an = alt ? nbdp_name_of_error (alt) : NULL;

  if (!r->complete)
    tx_gone (t, r, bad, what);
  if (r->error == 0) {
    tx_finding (t, ok_level, ok_id, "%s: got success, expected an error "
                "(%s%s%s)", what, wn, an ? " or " : "", an ? an : "");
    return false;
  }
  if (r->error != want && (alt == 0 || r->error != alt)) {
    nc_should (t, want_id, "%s: got %s, expected %s%s%s", what,
               nc_errstr (r), wn, an ? " or " : "", an ? an : "");
    tx_restricted_errors (t, r, want == NBD_EOVERFLOW || alt == NBD_EOVERFLOW,
                          want == NBD_ENOTSUP || alt == NBD_ENOTSUP, what);
    return false;
  }
  return true;
}

/* After a request (described by after), the session must go on: a READ
 * of the first bytes succeeds.  A server may hard-disconnect after a
 * request that broke a client MUST (TX-TERM-3; INFO, ends the test).
 */
static TX_UNUSED void
tx_alive (struct nc_ctx *t, struct nc_conn *c, enum tx_bad bad,
          const char *after)
{
  struct nc_result r;
  uint64_t len = c->s.export_size < 512 ? c->s.export_size : 512;
  char what[512];

  snprintf (what, sizeof what, "READ 0+%" PRIu64 " sent after %s", len,
            after);
  nc_cmd (t, c, NBD_CMD_READ, 0, 0, len, NULL, NULL, &r);
  if (!r.complete)
    tx_gone (t, &r, bad, what);
  if (r.error)
    nc_fail (t, "TX-TERM-10", "%s: got %s, expected the session to go on "
             "and the READ to succeed", what, nc_errstr (&r));
}

/* True if the server advertised a minimum block size (whether asked or
 * not) that off/len break.
 */
static TX_UNUSED bool
tx_misaligned (const struct nc_conn *c, uint64_t off, uint64_t len)
{
  return c->s.have_block_size && c->s.min_block > 1 &&
    ((off | len) % c->s.min_block) != 0;
}

/* An unaligned request (off/len) failed: allowed (INFO, SIZE-11) if the
 * server advertised a minimum block size it breaks, else a SHOULD finding
 * (SIZE-7: 1-byte granularity by default).
 */
static TX_UNUSED void
tx_unaligned_refused (struct nc_ctx *t, const struct nc_conn *c,
                      const struct nc_result *r, uint64_t off, uint64_t len,
                      const char *what)
{
  if (tx_misaligned (c, off, len))
    nc_info (t, "%s failed with %s; the server advertised a minimum block "
             "size of %" PRIu32 " (allowed: SIZE-11)", what, nc_errstr (r),
             c->s.min_block);
  else
    nc_should (t, "SIZE-7", "%s without size constraints: got %s, expected "
               "success (1-byte granularity)", what, nc_errstr (r));
}

/* ---- data ---------------------------------------------------------- */

/* WRITE buf (len bytes at off, with flags): a failure is a MUST finding
 * (CMD-WRITE-4) and ends the test.
 */
static TX_UNUSED void
tx_write (struct nc_ctx *t, struct nc_conn *c, uint64_t off, uint64_t len,
          const void *buf, uint16_t flags)
{
  struct nc_result r;
  char what[128];

  nc_cmd (t, c, NBD_CMD_WRITE, flags, off, len, buf, NULL, &r);
  snprintf (what, sizeof what, "WRITE %" PRIu64 "+%" PRIu64 " flags 0x%x",
            off, len, flags);
  if (!tx_ok (t, &r, NBDP_MUST, "CMD-WRITE-4", TX_VALID, what))
    nc_done (t);
}

/* WRITE the pattern of seed over off+len. */
static TX_UNUSED void
tx_write_pattern (struct nc_ctx *t, struct nc_conn *c, uint64_t off,
                  uint64_t len, unsigned seed)
{
  unsigned char *b = tx_alloc (t, len);

  tx_pattern (b, len, off, seed);
  tx_write (t, c, off, len, b, 0);
  free (b);
}

/* READ off+len into buf: a failure is a MUST finding (id) and ends the
 * test.
 */
static TX_UNUSED void
tx_read (struct nc_ctx *t, struct nc_conn *c, uint64_t off, uint64_t len,
         void *buf, const char *id)
{
  struct nc_result r;
  char what[128];

  nc_cmd (t, c, NBD_CMD_READ, 0, off, len, NULL, buf, &r);
  snprintf (what, sizeof what, "READ %" PRIu64 "+%" PRIu64, off, len);
  if (!tx_ok (t, &r, NBDP_MUST, id ? id : "CMD-READ-4", TX_VALID, what))
    nc_done (t);
}

/* READ off+len and compare with want (NULL: zeroes).  A difference is a
 * finding at level with id, naming the first differing byte; context
 * says what was done before.  Returns true if all bytes matched.
 */
static TX_UNUSED bool
tx_check (struct nc_ctx *t, struct nc_conn *c, uint64_t off, uint64_t len,
          const unsigned char *want, enum nbdp_level level, const char *id,
          const char *context)
{
  unsigned char *b = tx_alloc (t, len);
  bool ok = true;

  memset (b, 0xee, len);
  tx_read (t, c, off, len, b, NULL);
  for (uint64_t i = 0; i < len; i++) {
    unsigned char w = want ? want[i] : 0;
    if (b[i] != w) {
      uint64_t n = 1;
      while (i + n < len && b[i + n] != (want ? want[i + n] : 0))
        n++;
      tx_finding (t, level, id, "after %s: READ %" PRIu64 "+%" PRIu64
                  " differs at offset %" PRIu64 " (%" PRIu64 " bytes in a "
                  "row): reads 0x%02x, expected 0x%02x", context, off, len,
                  off + i, n, b[i], w);
      ok = false;
      break;
    }
  }
  free (b);
  return ok;
}

/* Compare off+len with the pattern of seed. */
static TX_UNUSED bool
tx_check_pattern (struct nc_ctx *t, struct nc_conn *c, uint64_t off,
                  uint64_t len, unsigned seed, enum nbdp_level level,
                  const char *id, const char *context)
{
  unsigned char *w = tx_alloc (t, len);
  bool ok;

  tx_pattern (w, len, off, seed);
  ok = tx_check (t, c, off, len, w, level, id, context);
  free (w);
  return ok;
}

/* The read-only export (--ro-export), or SKIP/UNSUPPORTED. */
static TX_UNUSED struct nc_conn *
tx_open_ro (struct nc_ctx *t, const struct nc_open_opts *base)
{
  struct nc_open_opts o = base ? *base : (struct nc_open_opts) { 0 };
  struct nc_conn *c;

  o.export_name = t->cfg->ro_export;
  c = nc_open (t, &o);
  if (!(c->s.eflags & NBD_FLAG_READ_ONLY)) {
    if (t->cfg->ro_export == NULL)
      nc_skip (t, "the export is writable and no --ro-export was given");
    nc_unsupported (t, "export \"%s\" does not advertise NBD_FLAG_READ_ONLY "
                    "(flags 0x%04x)", t->cfg->ro_export, c->s.eflags);
  }
  return c;
}

#endif /* TXLIB_H */
