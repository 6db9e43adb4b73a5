/* Handshake suite: NBD_OPT_INFO and NBD_OPT_GO (information requests and
 * replies, unknown and malformed requests, what follows the final ACK).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"

static void
test_info (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r;

  r = hs_info (t, c, NBD_OPT_INFO, hs_export (t), NULL, 0);
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_INFO answered with NBD_REP_ERR_UNSUP");
  nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_INFO for \"%s\": got %s, "
             "expected NBD_REP_ACK", hs_export (t), hs_rep (r));
  /* Still haggling: another option gets an option reply. */
  r = hs_opt (t, c, NBD_OPT_LIST, NULL, 0);
  nc_log (t, "NBD_OPT_LIST after NBD_OPT_INFO: %s", hs_rep (r));
}

static void
test_go (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;
  uint32_t r;

  r = hs_info (t, c, NBD_OPT_GO, hs_export (t), NULL, 0);
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "NBD_OPT_GO answered with NBD_REP_ERR_UNSUP");
  if (r == NBD_REP_ERR_EXT_HEADER_REQD) {
    nc_should (t, "EH-COMPAT-1", "NBD_OPT_GO without extended headers got "
               "NBD_REP_ERR_EXT_HEADER_REQD; expected compact headers to be "
               "supported");
    return;
  }
  if (r == NBD_REP_ERR_BLOCK_SIZE_REQD) {
    nc_should (t, "SIZE-10", "NBD_OPT_GO without NBD_INFO_BLOCK_SIZE got "
               "NBD_REP_ERR_BLOCK_SIZE_REQD; expected the server to accept "
               "clients that do not ask for size constraints");
    return;
  }
  if (!nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_GO for \"%s\": got %s, "
                  "expected NBD_REP_ACK", hs_export (t), hs_rep (r)))
    return;
  hs_enter (t, c);
  hs_read_ok (t, c, &res);
  nc_expect (t, res.complete && res.error == 0, "after NBD_OPT_GO, READ of "
             "64 KiB at 0 got %s, expected success", nc_errstr (&res));
}

/* INFO then GO with the same parameters: the same information. */
static void
info_then_go (struct nc_ctx *t, const uint16_t *infos, size_t n)
{
  struct nc_conn *c = hs_start (t);
  uint64_t size;
  uint16_t eflags;
  bool bs;
  uint32_t r, min, pref, max;

  r = hs_info (t, c, NBD_OPT_INFO, hs_export (t), infos, n);
  if (r != NBD_REP_ACK)
    nc_unsupported (t, "NBD_OPT_INFO answered with %s", hs_rep (r));
  size = c->s.opt.size;
  eflags = c->s.opt.eflags;
  bs = c->s.opt.have_block_size;
  min = c->s.opt.min_block;
  pref = c->s.opt.pref_block;
  max = c->s.opt.max_payload;
  r = hs_info (t, c, NBD_OPT_GO, hs_export (t), infos, n);
  if (!nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_GO after a successful "
                  "NBD_OPT_INFO with the same parameters: got %s, expected "
                  "NBD_REP_ACK", hs_rep (r)))
    return;
  nc_expect (t, c->s.export_size == size && c->s.eflags == eflags,
             "NBD_OPT_INFO said size %" PRIu64 " flags 0x%04x, NBD_OPT_GO "
             "with the same parameters said size %" PRIu64 " flags 0x%04x; "
             "expected the same", size, eflags, c->s.export_size,
             c->s.eflags);
  nc_expect (t, bs == c->s.have_block_size &&
             (!bs || (min == c->s.min_block && pref == c->s.pref_block &&
                      max == c->s.max_payload)),
             "NBD_OPT_INFO said block sizes %s%" PRIu32 "/%" PRIu32 "/%"
             PRIu32 ", NBD_OPT_GO %s%" PRIu32 "/%" PRIu32 "/%" PRIu32
             "; expected the same", bs ? "" : "(none) ", min, pref, max,
             c->s.have_block_size ? "" : "(none) ", c->s.min_block,
             c->s.pref_block, c->s.max_payload);
  hs_enter (t, c);
}

static void
test_info_then_go (struct nc_ctx *t)
{
  static const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };

  info_then_go (t, infos, 1);
}

static void
test_info_then_go_plain (struct nc_ctx *t)
{
  info_then_go (t, NULL, 0);
}

/* INFO or GO for an export that does not exist. */
static void
unknown_export (struct nc_ctx *t, uint32_t opt)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_info (t, c, opt, HS_NO_SUCH_EXPORT, NULL, 0);

  if (r == NBD_REP_ACK) {
    nc_info (t, "server accepted %s for an arbitrary export name "
             "(\"%s\"): it serves every name", hs_opt_name (opt),
             HS_NO_SUCH_EXPORT);
    return;
  }
  if (r == NBD_REP_ERR_UNSUP)
    nc_unsupported (t, "%s answered with NBD_REP_ERR_UNSUP",
                    hs_opt_name (opt));
  if (r == NBD_REP_ERR_TLS_REQD)
    nc_info (t, "unknown export refused with NBD_REP_ERR_TLS_REQD");
  else
    nc_expect (t, r == NBD_REP_ERR_UNKNOWN, "%s for unknown export \"%s\": "
               "got %s, expected NBD_REP_ERR_UNKNOWN", hs_opt_name (opt),
               HS_NO_SUCH_EXPORT, hs_rep (r));
  hs_expect_go_works (t, c, "an unknown export was refused", "HS-TERM-10");
}

static void
test_go_unknown_export (struct nc_ctx *t)
{
  unknown_export (t, NBD_OPT_GO);
}

static void
test_info_unknown_export (struct nc_ctx *t)
{
  unknown_export (t, NBD_OPT_INFO);
}

static void
test_go_block_size (struct nc_ctx *t)
{
  static const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };
  struct nc_conn *c = hs_start (t);

  hs_go (t, c, infos, 1, NULL);   /* rules judge the values, OPT-GO-16 */
  if (!c->s.have_block_size)
    nc_info (t, "no NBD_INFO_BLOCK_SIZE although requested: the server "
             "uses the default constraints");
  else
    nc_log (t, "block sizes: min %" PRIu32 " pref %" PRIu32 " max %" PRIu32,
            c->s.min_block, c->s.pref_block, c->s.max_payload);
}

static void
test_info_block_size (struct nc_ctx *t)
{
  static const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_info (t, c, NBD_OPT_INFO, hs_export (t), infos, 1);

  nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_INFO with NBD_INFO_BLOCK_SIZE "
             "requested: got %s, expected NBD_REP_ACK", hs_rep (r));
  if (c->s.opt.have_block_size)
    nc_log (t, "block sizes: min %" PRIu32 " pref %" PRIu32 " max %" PRIu32,
            c->s.opt.min_block, c->s.opt.pref_block, c->s.opt.max_payload);
}

/* GO without asking for block sizes. */
static void
test_go_without_block_size (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_info (t, c, NBD_OPT_GO, hs_export (t), NULL, 0);

  if (r == NBD_REP_ACK) {
    hs_enter (t, c);
    return;
  }
  if (r != NBD_REP_ERR_BLOCK_SIZE_REQD)
    nc_unsupported (t, "NBD_OPT_GO answered with %s", hs_rep (r));
  nc_expect (t, false, "NBD_OPT_GO without NBD_INFO_BLOCK_SIZE got "
             "NBD_REP_ERR_BLOCK_SIZE_REQD; expected the server not to "
             "insist on size negotiation");
  if (!(c->s.opt.info_seen & (1u << NBD_INFO_BLOCK_SIZE)))
    nc_should (t, "OPT-GO-18", "NBD_REP_ERR_BLOCK_SIZE_REQD came without an "
               "NBD_INFO_BLOCK_SIZE reply before it; expected the sizes");
}

/* Information requests the server does not know are ignored. */
static void
test_go_unknown_info (struct nc_ctx *t)
{
  static const uint16_t infos[] = { 0x7ffe, 0xbeef };
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_info (t, c, NBD_OPT_GO, hs_export (t), infos, 2);

  if (nc_expect (t, r == NBD_REP_ACK, "NBD_OPT_GO with unknown information "
                 "requests 0x7ffe and 0xbeef: got %s, expected NBD_REP_ACK "
                 "(unknown requests ignored)", hs_rep (r)))
    hs_enter (t, c);
}

/* Request one item; it may be supplied (judged by the rules) or not. */
static void
go_with_info (struct nc_ctx *t, uint16_t info)
{
  uint16_t infos[] = { info };
  struct nc_conn *c = hs_start (t);
  const char *name = nbdp_name_of_info (info);

  hs_go (t, c, infos, 1, "OPT-GO-12");
  if (info < 32 && (c->s.opt.info_seen & (UINT32_C (1) << info)))
    nc_info (t, "%s requested and supplied", name);
  else
    nc_info (t, "%s requested, not supplied", name);
}

static void
test_go_info_name (struct nc_ctx *t)
{
  go_with_info (t, NBD_INFO_NAME);
}

static void
test_go_info_description (struct nc_ctx *t)
{
  go_with_info (t, NBD_INFO_DESCRIPTION);
}

/* All items at once, NBD_INFO_EXPORT requested explicitly: each at most
 * once (rules: REP-INFO-2).
 */
static void
test_go_all_infos (struct nc_ctx *t)
{
  static const uint16_t infos[] = {
    NBD_INFO_EXPORT, NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE,
  };
  struct nc_conn *c = hs_start (t);

  hs_go (t, c, infos, 4, "OPT-GO-12");
  nc_log (t, "information types seen: 0x%08" PRIx32, c->s.opt.info_seen);
}

/* The name length reaches past the option's data: malformed.  An error
 * reply or a hard disconnect; not two replies, not a hang.
 */
static void
test_go_name_overrun (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  unsigned char b[4 + 4 + 2];
  uint32_t r;

  nbdp_put32 (b, 100);            /* but only 4 name bytes follow */
  memcpy (b + 4, "abcd", 4);
  nbdp_put16 (b + 8, 0);
  nc_send_option (t, c, NBD_OPT_GO, b, sizeof b);
  if (!hs_reply_or_close (t, c, &r, NULL, "NBD_OPT_GO whose name length "
                          "(100) exceeds the option length (10) - 6")) {
    nc_info (t, "malformed NBD_OPT_GO: the server hung up");
    return;
  }
  nc_expect (t, r != NBD_REP_ACK, "NBD_OPT_GO whose name length (100) "
             "exceeds the option length - 6: got NBD_REP_ACK; expected an "
             "error (NBD_REP_ERR_INVALID) or a hard disconnect");
  if (r == NBD_REP_ACK)
    return;
  nc_info (t, "malformed NBD_OPT_GO refused with %s", hs_rep (r));
  /* The stream must still be in step: one reply only. */
  hs_expect_go_works (t, c, "a malformed NBD_OPT_GO", NULL);
}

/* GO with fewer than 6 bytes of data. */
static void
test_go_short (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  unsigned char b[2] = { 0, 0 };
  uint32_t r;

  nc_send_option (t, c, NBD_OPT_GO, b, sizeof b);
  if (!hs_reply_or_close (t, c, &r, NULL, "NBD_OPT_GO with 2 bytes of "
                          "data")) {
    nc_info (t, "NBD_OPT_GO with 2 bytes of data: the server hung up");
    return;
  }
  nc_expect (t, r != NBD_REP_ACK, "NBD_OPT_GO with 2 bytes of data: got "
             "NBD_REP_ACK; expected an error or a hard disconnect");
  if (r == NBD_REP_ACK)
    return;
  nc_info (t, "short NBD_OPT_GO refused with %s", hs_rep (r));
  hs_expect_go_works (t, c, "a short NBD_OPT_GO", NULL);
}

/* The info request count says more than the data holds. */
static void
test_go_info_overrun (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  const char *name = hs_export (t);
  size_t nl = strlen (name);
  unsigned char *b = malloc (4 + nl + 2 + 2);
  uint32_t r;

  if (b == NULL)
    nc_error (t, "out of memory");
  nbdp_put32 (b, nl);
  memcpy (b + 4, name, nl);
  nbdp_put16 (b + 4 + nl, 5);     /* but only one request follows */
  nbdp_put16 (b + 6 + nl, NBD_INFO_BLOCK_SIZE);
  nc_send_option (t, c, NBD_OPT_GO, b, 4 + nl + 4);
  free (b);
  if (!hs_reply_or_close (t, c, &r, NULL, "NBD_OPT_GO announcing 5 info "
                          "requests with room for 1")) {
    nc_info (t, "NBD_OPT_GO with an overrunning request list: the server "
             "hung up");
    return;
  }
  if (r == NBD_REP_ACK) {
    nc_info (t, "NBD_OPT_GO with an overrunning request list was acked");
    return;
  }
  nc_info (t, "NBD_OPT_GO with an overrunning request list refused with "
           "%s", hs_rep (r));
  hs_expect_go_works (t, c, "an NBD_OPT_GO with an overrunning request "
                      "list", NULL);
}

/* The empty name is the default export, if any. */
static void
test_go_default_export (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  uint32_t r = hs_info (t, c, NBD_OPT_INFO, "", NULL, 0);

  if (r == NBD_REP_ACK)
    nc_info (t, "the default export (\"\") exists: size %" PRIu64,
             c->s.opt.size);
  else
    nc_info (t, "the default export (\"\"): %s", hs_rep (r));
}

/* After the ACK of GO no zero padding follows, whatever NO_ZEROES says:
 * the first bytes after it are the reply to our first request.
 */
static void
test_go_no_padding (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  struct nc_result res;

  hs_go (t, c, NULL, 0, "OPT-GO-12");
  hs_read_ok (t, c, &res);
  nc_expect (t, res.complete && res.error == 0, "after NBD_OPT_GO (client "
             "flags without NO_ZEROES), READ of 64 KiB got %s; expected "
             "a clean reply (zero padding after the ACK?)", nc_errstr (&res));
}

/* A legal name of 4096 bytes (unknown): a reply, not a hang-up. */
static void
test_go_long_name (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  char *name = malloc (NBD_MAX_STRING + 1);
  uint32_t r;

  if (name == NULL)
    nc_error (t, "out of memory");
  memset (name, 'n', NBD_MAX_STRING);
  name[NBD_MAX_STRING] = '\0';
  hs_send_info (t, c, NBD_OPT_INFO, name, NULL, 0);
  free (name);
  if (!hs_reply_or_close (t, c, &r, NULL, "NBD_OPT_INFO with a 4096-byte "
                          "export name")) {
    nc_expect (t, false, "NBD_OPT_INFO with a 4096-byte export name (legal "
               "length): the server hung up; expected a reply");
    return;
  }
  nc_info (t, "NBD_OPT_INFO with a 4096-byte name: %s", hs_rep (r));
  hs_expect_go_works (t, c, "NBD_OPT_INFO with a 4096-byte name", NULL);
}

/* A long unknown name of multi-byte characters: whatever the server
 * quotes of it in an error message is still valid UTF-8 (rules).
 */
static void
test_go_utf8_name (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  char *name = malloc (NBD_MAX_STRING + 1);
  size_t i;
  uint32_t r;

  if (name == NULL)
    nc_error (t, "out of memory");
  for (i = 0; i + 3 <= NBD_MAX_STRING; i += 3)
    memcpy (name + i, "\xe2\x82\xac", 3);        /* U+20AC EURO SIGN */
  name[i] = '\0';
  hs_send_info (t, c, NBD_OPT_INFO, name, NULL, 0);
  free (name);
  if (!hs_reply_or_close (t, c, &r, NULL, "NBD_OPT_INFO with a 4095-byte "
                          "UTF-8 export name")) {
    nc_expect (t, false, "NBD_OPT_INFO with a 4095-byte UTF-8 export name "
               "(legal): the server hung up; expected a reply");
    return;
  }
  nc_log (t, "NBD_OPT_INFO with a 4095-byte UTF-8 name: %s", hs_rep (r));
}

/* A name of 5000 bytes breaks GEN-STR-3: error reply or hang-up. */
static void
test_go_overlong_name (struct nc_ctx *t)
{
  struct nc_conn *c = hs_start (t);
  char *name = malloc (5001);
  uint32_t r;

  if (name == NULL)
    nc_error (t, "out of memory");
  memset (name, 'n', 5000);
  name[5000] = '\0';
  hs_send_info (t, c, NBD_OPT_INFO, name, NULL, 0);
  free (name);
  if (!hs_reply_or_close (t, c, &r, NULL, "NBD_OPT_INFO with a 5000-byte "
                          "export name")) {
    nc_info (t, "NBD_OPT_INFO with a 5000-byte name: the server hung up");
    return;
  }
  nc_info (t, "NBD_OPT_INFO with a 5000-byte name: %s", hs_rep (r));
  if (r != NBD_REP_ACK)
    hs_expect_go_works (t, c, "NBD_OPT_INFO with a 5000-byte name", NULL);
}

static const struct nc_test tests[] = {
  { "info", "OPT-GO-12 REP-INFO-1 INFO-EXPORT-1 COMPAT-BASE-1", NBDP_MUST,
    test_info, "NBD_OPT_INFO: NBD_INFO_EXPORT then NBD_REP_ACK, haggling "
    "goes on" },
  { "go", "OPT-GO-12 REP-INFO-1 FLAG-TX-4 COMPAT-BASE-1 EH-COMPAT-1",
    NBDP_MUST, test_go, "NBD_OPT_GO: NBD_INFO_EXPORT, NBD_REP_ACK, READ "
    "works" },
  { "info-then-go", "OPT-GO-22", NBDP_MUST, test_info_then_go,
    "INFO then GO (block sizes requested) report the same export" },
  { "info-then-go-plain", "OPT-GO-22", NBDP_MUST, test_info_then_go_plain,
    "INFO then GO (no requests) report the same export" },
  { "go-unknown-export", "OPT-GO-13 OPT-GO-19 HS-TERM-10", NBDP_SHOULD,
    test_go_unknown_export,
    "GO for a missing export gets NBD_REP_ERR_UNKNOWN, no INFO" },
  { "info-unknown-export", "OPT-GO-13 OPT-GO-19 HS-TERM-10", NBDP_SHOULD,
    test_info_unknown_export,
    "INFO for a missing export gets NBD_REP_ERR_UNKNOWN, no INFO" },
  { "go-block-size", "SIZE-13 SIZE-14 SIZE-16 SIZE-17 SIZE-21 SIZE-22 "
    "INFO-BSIZE-2 OPT-GO-16", NBDP_MUST, test_go_block_size,
    "NBD_INFO_BLOCK_SIZE values obey the size constraints" },
  { "info-block-size", "SIZE-13 SIZE-14 SIZE-17 SIZE-21 INFO-BSIZE-2 "
    "OPT-GO-16", NBDP_MUST, test_info_block_size,
    "NBD_OPT_INFO with NBD_INFO_BLOCK_SIZE: valid sizes, no refusal" },
  { "go-without-block-size", "SIZE-10 COMPAT-MAX-2 OPT-GO-17 OPT-GO-18",
    NBDP_SHOULD, test_go_without_block_size,
    "GO without a block size request is not refused" },
  { "go-unknown-info", "OPT-GO-5", NBDP_MUST, test_go_unknown_info,
    "unknown information requests are ignored" },
  { "go-info-name", "INFO-NAME-2 INFO-NAME-1 GEN-STR-1 GEN-STR-3", NBDP_MUST,
    test_go_info_name, "NBD_INFO_NAME, if sent, is well formed" },
  { "go-info-description", "INFO-DESC-1 GEN-STR-1 GEN-STR-3", NBDP_MUST,
    test_go_info_description, "NBD_INFO_DESCRIPTION, if sent, is well "
    "formed" },
  { "go-all-infos", "REP-INFO-2 REP-INFO-1 OPT-GO-6", NBDP_SHOULD,
    test_go_all_infos, "every information type at most once" },
  { "go-name-overrun", "COMPAT-BASE-3 HS-TERM-3", NBDP_MUST, test_go_name_overrun,
    "GO with a name length past the data: one error reply or hang-up" },
  { "go-short", "COMPAT-BASE-3 HS-TERM-3", NBDP_MUST, test_go_short,
    "GO with 2 bytes of data: one error reply or hang-up" },
  { "go-info-overrun", "COMPAT-BASE-3 HS-TERM-3", NBDP_MUST, test_go_info_overrun,
    "GO with a request count past the data: recorded" },
  { "go-default-export", "OPT-GO-12", NBDP_MUST, test_go_default_export,
    "INFO for the default export \"\" (recorded)" },
  { "go-no-padding", "OPT-GO-25", NBDP_MUST, test_go_no_padding,
    "no zero padding after the ACK of NBD_OPT_GO" },
  { "go-long-name", "GEN-STR-3 HS-TERM-10", NBDP_MUST, test_go_long_name,
    "INFO with a 4096-byte name gets a reply" },
  { "go-utf8-name", "GEN-STR-1 GEN-STR-2 HS-TERM-10", NBDP_MUST,
    test_go_utf8_name, "a long UTF-8 name: any message quoting it is "
    "valid UTF-8" },
  { "go-overlong-name", "COMPAT-BASE-3 GEN-STR-3 HS-TERM-3", NBDP_MUST,
    test_go_overlong_name,
    "INFO with a 5000-byte name: error reply or hang-up" },
};
NC_SUITE ("handshake", tests);
