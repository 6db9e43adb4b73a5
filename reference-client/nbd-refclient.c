/* nbd-conformance: nbd-refclient, the reference client of the draft
 * RESIZE extension (specs/resize.md).  A command line over
 * common/client-resize.h: it negotiates the extension in the chosen
 * encoding, performs one operation (info, read, write, resize, query,
 * watch, grow-write), judges every reply against the draft with
 * common/rules-resize.h and exits with a status that says what happened.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "client-resize.h"
#include "codec.h"

#define PROG "nbd-refclient"
#define VERSION "0.1"

enum {
  EXIT_OK = 0,
  EXIT_VIOLATION = 1,
  EXIT_USAGE = 2,
  EXIT_UNSUPPORTED = 3,
  EXIT_REFUSED = 4,
};

static const char usage_text[] =
"NAME\n"
"  nbd-refclient - reference client of the NBD RESIZE draft extension\n"
"\n"
"SYNOPSIS\n"
"  nbd-refclient [OPTIONS] info URI\n"
"  nbd-refclient [OPTIONS] read URI OFFSET LENGTH [--expect BYTE|zero]\n"
"  nbd-refclient [OPTIONS] write URI OFFSET LENGTH --pattern BYTE\n"
"  nbd-refclient [OPTIONS] resize URI SIZE\n"
"  nbd-refclient [OPTIONS] query URI\n"
"  nbd-refclient [OPTIONS] watch URI [--count N] [--timeout S]\n"
"  nbd-refclient [OPTIONS] grow-write URI OFFSET LENGTH [--pattern BYTE]\n"
"\n"
"DESCRIPTION\n"
"  Speaks the project's draft RESIZE extension (specs/resize.md) in any of\n"
"  its encodings and checks every reply against it.  A server that breaks\n"
"  a requirement is reported with the requirement ID (RZ-...); after the\n"
"  violations for which the draft asks a client to drop the connection\n"
"  (RZ-CLI-27 to RZ-CLI-34) the client hard-disconnects at once.\n"
"\n"
"COMMANDS\n"
"  info        negotiate, send NBD_OPT_INFO then NBD_OPT_GO, print the\n"
"              export and what the server says about resizing\n"
"  read        read LENGTH bytes at OFFSET (in requests no longer than the\n"
"              maximum payload, aligned to the minimum block size); --expect\n"
"              checks every byte\n"
"  write       write LENGTH bytes of --pattern at OFFSET (not past the end)\n"
"  resize      set the export size to SIZE (NBD_CMD_RESIZE, set size form),\n"
"              then verify the effect (see --no-verify)\n"
"  query       ask for the current size (query form; needs QUERY)\n"
"  watch       subscribe and print each size change as it arrives, until\n"
"              --count notifications or --timeout seconds (then unsubscribe)\n"
"  grow-write  write past the end with automatic growth negotiated\n"
"              (AUTO_GROW, or NBD_FLAG_AUTO_RESIZE under flag-only)\n"
"\n"
"OPTIONS\n"
"  --encoding E      negotiated (default: NBD_OPT_RESIZE + NBD_INFO_RESIZE),\n"
"                    flag-only (B1), info-optin (B2), boolean (B3), legacy\n"
"  --features LIST   features to request with NBD_OPT_RESIZE: comma list\n"
"                    of grow shrink auto-grow zero-fill size-reply query\n"
"                    notify export-wide all none, or a number (default:\n"
"                    all but auto-grow; grow-write adds auto-grow)\n"
"  --structured      negotiate structured replies (default)\n"
"  --no-structured   do not\n"
"  --extended        negotiate extended headers\n"
"  --export-name     end the handshake with NBD_OPT_EXPORT_NAME (no\n"
"                    negotiation is possible then: legacy mode)\n"
"  --expect BYTE|zero   read: the content every byte must have\n"
"  --pattern BYTE    write, grow-write: the byte to write (default 0xab)\n"
"  --count N         watch: stop after N notifications\n"
"  --timeout S       watch: stop after S seconds; others: receive timeout\n"
"  --fua             resize, write: set NBD_CMD_FLAG_FUA\n"
"  --no-verify       resize, grow-write: skip the checks after the change\n"
"                    (read at the new end, zero fill, second connection)\n"
"  --force           send requests that the client rules (RZ-CLI-*) forbid,\n"
"                    e.g. NBD_CMD_RESIZE without NBD_FLAG_SEND_RESIZE, or\n"
"                    (resize) a read just past a shrunk end (RZ-BOUND-2)\n"
"  --strict          SHOULD-level findings fail too (exit 1)\n"
"  --json            print the result as JSON on stdout (watch: one JSON\n"
"                    object per line, the summary last)\n"
"  -v, --verbose     print every message sent and received, decoded\n"
"  -h, --help        this text\n"
"  -V, --version     print the version\n"
"\n"
"  SIZE, OFFSET and LENGTH accept the suffixes K M G T P E (powers of\n"
"  1024).  BYTE is decimal or 0x hex.\n"
"\n"
"EXIT STATUS\n"
"  0  success\n"
"  1  the server violated a requirement (the message names its ID), or\n"
"     read --expect found other content\n"
"  2  usage error, or the connection failed\n"
"  3  the server does not support the operation (no NBD_FLAG_SEND_RESIZE,\n"
"     NBD_OPT_RESIZE refused, the feature is not active, or NBD_EINVAL to\n"
"     a forced NBD_CMD_RESIZE)\n"
"  4  the server refused the request with an error the draft allows\n"
"     (e.g. NBD_ENOSPC, NBD_EPERM)\n"
"\n"
"EXAMPLES\n"
"  nbd-refclient info nbd+unix:///?socket=/tmp/sock\n"
"  nbd-refclient --json resize nbd://localhost/disk 2G\n"
"  nbd-refclient watch --count 3 --timeout 10 nbd+unix:///?socket=/tmp/s\n"
"  nbd-refclient --encoding legacy --no-structured resize URI 64M\n";

/* ---- options ------------------------------------------------------- */

static struct {
  enum nbdp_rz_encoding encoding;
  bool features_set;
  uint32_t features;
  bool structured, extended, export_name;
  bool have_expect;
  int expect;                   /* byte */
  int pattern;
  long count;
  double timeout;
  bool fua, verify, force, strict, json, verbose;
} opt = {
  .structured = true, .pattern = 0xab, .count = -1, .timeout = -1,
  .verify = true,
};

static json_t *jout;            /* the result object (--json) */
static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = 1;
}

static void
trace_line (void *opaque, const char *line)
{
  fprintf (stderr, "%s\n", line);
}

static _Noreturn void
usage_error (const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "%s: ", PROG);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\nTry '%s --help'.\n", PROG);
  exit (EXIT_USAGE);
}

static int
parse_size (const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;
  int shift = 0;

  if (*s == '-' || *s == '\0')
    return -1;
  errno = 0;
  v = strtoull (s, &end, 0);
  if (errno || end == s)
    return -1;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': shift = 10; break;
  case 'm': case 'M': shift = 20; break;
  case 'g': case 'G': shift = 30; break;
  case 't': case 'T': shift = 40; break;
  case 'p': case 'P': shift = 50; break;
  case 'e': case 'E': shift = 60; break;
  default: return -1;
  }
  if (*end && end[1] != '\0')
    return -1;
  if (shift && v > (UINT64_MAX >> shift))
    return -1;
  *out = (uint64_t) v << shift;
  return 0;
}

static int
parse_byte (const char *s)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (s, &end, 0);
  if (errno || end == s || *end || v < 0 || v > 255)
    usage_error ("'%s' is not a byte value (0..255, decimal or 0x hex)", s);
  return (int) v;
}

/* ---- output -------------------------------------------------------- */

static void
jset (const char *key, json_t *v)
{
  if (jout)
    json_object_set_new (jout, key, v);
  else
    json_decref (v);
}

static json_t *
jbits (uint32_t v, const char *(*fn) (char *, size_t, uint32_t))
{
  json_t *a = json_array ();
  char buf[256], *tok, *save = NULL;

  if (v == 0)
    return a;
  fn (buf, sizeof buf, v);
  for (tok = strtok_r (buf, "|", &save); tok;
       tok = strtok_r (NULL, "|", &save))
    json_array_append_new (a, json_string (tok));
  return a;
}

static json_t *
jchunk (const struct nbdp_rz_chunk *ch)
{
  return json_pack ("{s:I, s:o, s:I}", "size", (json_int_t) ch->size,
                    "events", jbits (ch->events, nbdp_rz_events_str),
                    "sequence", (json_int_t) ch->sequence);
}

static const char *
status_word (int code)
{
  switch (code) {
  case EXIT_OK: return "ok";
  case EXIT_VIOLATION: return "violation";
  case EXIT_UNSUPPORTED: return "unsupported";
  case EXIT_REFUSED: return "refused";
  default: return "error";
  }
}

/* Print the violations and decide the exit status.  code is what the
 * operation itself came to.
 */
static int
finish (struct nbdp_rz_client *rc, int code, const char *message)
{
  json_t *arr = json_array ();
  bool fatal = false;
  size_t i;

  if (rc) {
    for (i = 0; i < rc->vs.n; i++) {
      const struct nbdp_rz_violation *v = &rc->vs.v[i];
      bool counts = v->level == NBDP_RZ_MUST || v->disconnect || opt.strict;
      if (counts)
        fatal = true;
      char rep[48] = "";
      if (v->repeats)
        snprintf (rep, sizeof rep, " (and %u more times)", v->repeats);
      fprintf (stderr, "%s: %s %s (%s)%s%s%s: %s%s\n", PROG,
               counts ? "VIOLATION" : "NONSTRICT", v->id,
               nbdp_rz_level_name (v->level),
               v->cli_id ? " [client rule " : "",
               v->cli_id ? v->cli_id : "",
               v->cli_id ? (v->disconnect ? ": hard disconnect]" : "]") : "",
               v->msg, rep);
      json_array_append_new (arr, json_pack (
        "{s:s, s:s?, s:s, s:b, s:b, s:i, s:s}", "id", v->id, "client_rule",
        v->cli_id, "level", nbdp_rz_level_name (v->level), "disconnect",
        v->disconnect, "counts", counts, "repeats", (int) v->repeats,
        "message", v->msg));
    }
    if (rc->vs.dropped)
      fprintf (stderr, "%s: ... and %zu more violations\n", PROG,
               rc->vs.dropped);
  }
  if (fatal && (code == EXIT_OK || code == EXIT_REFUSED ||
                code == EXIT_USAGE))
    code = EXIT_VIOLATION;
  if (message && message[0]) {
    switch (code) {
    case EXIT_UNSUPPORTED:
      fprintf (stderr, "%s: not supported: %s\n", PROG, message);
      break;
    case EXIT_REFUSED:
      fprintf (stderr, "%s: refused: %s\n", PROG, message);
      break;
    case EXIT_VIOLATION:
      fprintf (stderr, "%s: the server violated the protocol: %s\n", PROG,
               message);
      break;
    case EXIT_OK:
      break;
    default:
      fprintf (stderr, "%s: %s\n", PROG, message);
    }
  }
  if (opt.json) {
    jset ("status", json_string (status_word (code)));
    jset ("exit", json_integer (code));
    if (message && message[0] && code != EXIT_OK)
      jset ("message", json_string (message));
    jset ("violations", arr);
    json_dumpf (jout, stdout, JSON_COMPACT);
    fputc ('\n', stdout);
    json_decref (jout);
    jout = NULL;
  }
  else
    json_decref (arr);
  nbdp_rz_client_free (rc);
  return code;
}

/* Exit status for a failed call. */
static int
code_of (const struct nbdp_rz_client *rc)
{
  switch (rc->status) {
  case NBDP_RZ_OK: return EXIT_OK;
  case NBDP_RZ_REFUSED: return EXIT_REFUSED;
  case NBDP_RZ_VIOLATION: return EXIT_VIOLATION;
  case NBDP_RZ_UNSUPPORTED: return EXIT_UNSUPPORTED;
  case NBDP_RZ_IO: return EXIT_USAGE;
  }
  return EXIT_USAGE;
}

/* After a failed operation or handshake: end the session with a soft
 * disconnect where the connection is still usable (NBD_OPT_ABORT during
 * the handshake, HS-TERM-9 and HS-TERM-14; NBD_CMD_DISC in transmission,
 * TX-TERM-7 after NBD_ESHUTDOWN and TX-TERM-10 after any other error
 * reply).  After a protocol violation the connection is dropped instead
 * (a hard disconnect, when rc is freed), as proto.md asks for malformed
 * replies (SR-TYPE-5); the raw client has already marked the connections
 * it must not use again dead, and nbdp_rz_disc sends nothing on those.
 */
static void
end_session (struct nbdp_rz_client *rc)
{
  if (rc == NULL || rc->status == NBDP_RZ_VIOLATION)
    return;
  nbdp_rz_disc (rc);
}

/* ---- connecting ---------------------------------------------------- */

static struct nbdp_rz_client *
open_client (const char *uri, uint32_t extra_features, bool probe_info,
             int *code, char *msg, size_t msgsize)
{
  struct nbdp_rz_client *rc = nbdp_rz_client_new ();
  struct nbdp_rz_opts o = {
    .encoding = opt.encoding,
    .features = opt.features_set ? opt.features
      : (NBD_RESIZE_MASK_FEATURES & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW)
        | extra_features,
    .structured = opt.structured, .extended = opt.extended,
    .probe_info = probe_info, .use_export_name = opt.export_name,
  };

  *code = EXIT_OK;
  if (rc == NULL) {
    snprintf (msg, msgsize, "out of memory");
    *code = EXIT_USAGE;
    return NULL;
  }
  rc->force = opt.force;
  if (opt.verbose)
    nbdp_rz_set_trace (rc, trace_line, NULL);
  if (opt.timeout > 0)
    nbdp_client_set_timeout (rc->c, (int) (opt.timeout * 1000) + 1000);
  if (nbdp_rz_connect_uri (rc, uri) == -1 ||
      nbdp_rz_handshake (rc, &o) == -1) {
    *code = code_of (rc);
    snprintf (msg, msgsize, "%s", nbdp_rz_error (rc));
    end_session (rc);
  }
  return rc;
}

static void
describe_export (const struct nbdp_rz_client *rc)
{
  const struct nbdp_rz_state *st = &rc->st;
  char fb[256], f2[128];
  bool have_info = rc->go_ex.info.present;

  if (!opt.json) {
    printf ("export size: %" PRIu64 "\n", st->size);
    printf ("transmission flags: %s\n",
            nbdp_flags_str (fb, sizeof fb, st->eflags));
    if (rc->exp.have_block_size)
      printf ("block size: min %" PRIu32 " preferred %" PRIu32 " max %"
              PRIu32 "\n", rc->exp.min_block, rc->exp.pref_block,
              rc->exp.max_block);
    if (rc->exp.have_description)
      printf ("description: %s\n", rc->exp.description);
    printf ("structured replies: %s\nextended headers: %s\n",
            rc->c->structured ? "yes" : "no",
            rc->c->extended ? "yes" : "no");
    printf ("resize encoding: %s\n", nbdp_rz_encoding_name (st->encoding));
    if (st->opt_sent)
      printf ("NBD_OPT_RESIZE: %s\n", st->opt_acked ? "acknowledged"
              : nbdp_rep_str (fb, sizeof fb, rc->opt_rep));
    printf ("resize mode: %s\n", nbdp_rz_mode_name (st->mode));
    if (have_info) {
      printf ("capabilities: %s\n", nbdp_rz_features_str (
                fb, sizeof fb, rc->go_ex.info.capabilities));
      printf ("active: %s\n", nbdp_rz_features_str (
                f2, sizeof f2, rc->go_ex.info.active));
      printf ("granularity: %" PRIu32 "\n", rc->go_ex.info.granularity);
      printf ("maximum size: %" PRIu64 "%s\n", rc->go_ex.info.max_size,
              rc->go_ex.info.max_size ? "" : " (not reported)");
    }
    else
      printf ("NBD_INFO_RESIZE: not received\n");
    printf ("effective granularity G: %" PRIu64 "\n",
            nbdp_rz_granularity (st));
    return;
  }
  jset ("size", json_integer ((json_int_t) st->size));
  jset ("eflags", json_integer (st->eflags));
  nbdp_flags_str (fb, sizeof fb, st->eflags);
  jset ("eflags_names", json_string (fb));
  if (rc->exp.have_block_size)
    jset ("block_size", json_pack ("{s:I, s:I, s:I}",
                                   "min", (json_int_t) rc->exp.min_block,
                                   "preferred",
                                   (json_int_t) rc->exp.pref_block,
                                   "max", (json_int_t) rc->exp.max_block));
  jset ("structured", json_boolean (rc->c->structured));
  jset ("extended", json_boolean (rc->c->extended));
  jset ("encoding", json_string (nbdp_rz_encoding_name (st->encoding)));
  jset ("opt_resize", json_string (!st->opt_sent ? "not sent"
                                   : st->opt_acked ? "ack" : "refused"));
  jset ("mode", json_string (nbdp_rz_mode_name (st->mode)));
  if (have_info)
    jset ("info_resize", json_pack (
      "{s:o, s:o, s:I, s:I}",
      "capabilities", jbits (rc->go_ex.info.capabilities,
                             nbdp_rz_features_str),
      "active", jbits (rc->go_ex.info.active, nbdp_rz_features_str),
      "granularity", (json_int_t) rc->go_ex.info.granularity,
      "max_size", (json_int_t) rc->go_ex.info.max_size));
  else
    jset ("info_resize", json_null ());
  jset ("granularity_effective",
        json_integer ((json_int_t) nbdp_rz_granularity (st)));
}

/* Why resizing is not possible on this connection, or NULL. */
static const char *
resize_unsupported (const struct nbdp_rz_client *rc, char *buf, size_t size)
{
  const struct nbdp_rz_state *st = &rc->st;
  char rb[32];

  if (st->eflags & NBD_FLAG_SEND_RESIZE)
    return NULL;
  if (st->opt_sent && !st->opt_acked)
    snprintf (buf, size, "the server answered NBD_OPT_RESIZE with %s and "
              "does not set NBD_FLAG_SEND_RESIZE: it does not implement the "
              "RESIZE extension",
              nbdp_rep_str (rb, sizeof rb, rc->opt_rep));
  else if (st->mode == NBDP_RZ_MODE_NEGOTIATED)
    snprintf (buf, size, "negotiated mode without GROW, SHRINK, QUERY or "
              "NOTIFY active: the server does not set NBD_FLAG_SEND_RESIZE");
  else
    snprintf (buf, size, "the server does not set NBD_FLAG_SEND_RESIZE "
              "(encoding %s)", nbdp_rz_encoding_name (st->encoding));
  return buf;
}

/* ---- commands ------------------------------------------------------ */

static int
cmd_info (const char *uri)
{
  char msg[NBDP_CLIENT_ERRMAX];
  int code;
  struct nbdp_rz_client *rc = open_client (uri, 0, true, &code, msg,
                                           sizeof msg);

  if (code != EXIT_OK)
    return finish (rc, code, msg);
  describe_export (rc);
  nbdp_rz_disc (rc);
  return finish (rc, EXIT_OK, NULL);
}

static int
cmd_read (const char *uri, uint64_t off, uint64_t len)
{
  char msg[NBDP_CLIENT_ERRMAX];
  int code;
  struct nbdp_rz_client *rc;
  unsigned char *buf;
  uint64_t i;

  if (len > 64 * 1024 * 1024)
    usage_error ("LENGTH above 64M");
  rc = open_client (uri, 0, false, &code, msg, sizeof msg);
  if (code != EXIT_OK)
    return finish (rc, code, msg);
  buf = malloc (len ? len : 1);
  if (buf == NULL)
    return finish (rc, EXIT_USAGE, "out of memory");
  if (nbdp_rz_pread (rc, buf, len, off, 0) == -1) {
    free (buf);
    snprintf (msg, sizeof msg, "%s", nbdp_rz_error (rc));
    code = code_of (rc);
    end_session (rc);
    return finish (rc, code, msg);
  }
  jset ("offset", json_integer ((json_int_t) off));
  jset ("length", json_integer ((json_int_t) len));
  if (opt.have_expect) {
    for (i = 0; i < len; i++)
      if (buf[i] != opt.expect)
        break;
    if (i < len) {
      snprintf (msg, sizeof msg, "read %" PRIu64 " bytes at %" PRIu64
                ": byte at offset %" PRIu64 " is 0x%02x, expected 0x%02x",
                len, off, off + i, buf[i], opt.expect);
      free (buf);
      jset ("match", json_false ());
      fprintf (stderr, "%s: content mismatch: %s\n", PROG, msg);
      nbdp_rz_disc (rc);
      code = finish (rc, EXIT_VIOLATION, NULL);
      return code;
    }
    jset ("match", json_true ());
  }
  if (!opt.json) {
    if (opt.have_expect)
      printf ("read %" PRIu64 " bytes at %" PRIu64 ": all 0x%02x as "
              "expected\n", len, off, opt.expect);
    else {
      uint64_t n = len < 16 ? len : 16;
      printf ("read %" PRIu64 " bytes at %" PRIu64 ":", len, off);
      for (i = 0; i < n; i++)
        printf (" %02x", buf[i]);
      printf ("%s\n", len > n ? " ..." : "");
    }
  }
  free (buf);
  nbdp_rz_disc (rc);
  return finish (rc, EXIT_OK, NULL);
}

/* Read [off, off+len) in pieces of at most 1M and check each byte is b
 * (for zero checks: the rules do that, with new_bytes true).
 */
static int
verify_range (struct nbdp_rz_client *rc, uint64_t off, uint64_t len,
              int b, bool new_bytes, bool zeroed_event, char *msg,
              size_t msgsize)
{
  unsigned char *buf = malloc (1024 * 1024);
  int ret = 0;

  if (buf == NULL)
    return -1;
  while (len > 0 && ret == 0) {
    uint64_t n = len < 1024 * 1024 ? len : 1024 * 1024;
    if (nbdp_rz_pread (rc, buf, n, off, 0) == -1) {
      snprintf (msg, msgsize, "verification read at %" PRIu64 " length %"
                PRIu64 ": %s", off, n, nbdp_rz_error (rc));
      ret = -1;
      break;
    }
    if (new_bytes) {
      struct nbdp_rz_violations vs;
      nbdp_rz_violations_clear (&vs);
      nbdp_rz_check_new_bytes (&rc->st, zeroed_event, off, buf, n, &vs);
      nbdp_rz_violations_merge (&rc->vs, &vs);
    }
    else {
      uint64_t i;
      for (i = 0; i < n; i++)
        if (buf[i] != b) {
          snprintf (msg, msgsize, "read back %" PRIu64 " bytes at %" PRIu64
                    " after the write: byte at %" PRIu64 " is 0x%02x, "
                    "expected 0x%02x", n, off, off + i, buf[i], b);
          ret = -2;
          break;
        }
    }
    off += n;
    len -= n;
  }
  free (buf);
  return ret;
}

/* After a size change: a read at the new end works (RZ-SET-6,
 * RZ-BOUND-4), one past it fails (RZ-BOUND-2; only with --force, since
 * that read breaks the client rule SIZE-33); new bytes read as zero
 * where promised (RZ-ZERO-1, RZ-CHUNK-8); another connection sees the
 * same size (RZ-MC-2, RZ-SET-8, RZ-MC-7).
 */
static void
verify_change (struct nbdp_rz_client *rc, const char *uri, uint64_t old,
               uint64_t now, bool zeroed_event, uint64_t requested)
{
  uint64_t blk = rc->exp.have_block_size && rc->exp.min_block
    ? rc->exp.min_block : 1;
  unsigned char one[4096];
  char msg[NBDP_CLIENT_ERRMAX];
  struct nbdp_rz_violations vs;

  nbdp_rz_violations_clear (&vs);
  if (blk > sizeof one)
    blk = sizeof one;
  if (now >= blk && now != old) {
    if (nbdp_rz_pread (rc, one, blk, now - blk, 0) == -1) {
      if (rc->status != NBDP_RZ_REFUSED)
        return;
      nbdp_rz_violation_add (&vs, now > old ? "RZ-BOUND-4" : "RZ-SET-6",
                             NULL, NBDP_RZ_MUST, false,
                             "after the size became %" PRIu64 " (was %"
                             PRIu64 "), sent NBD_CMD_READ offset %" PRIu64
                             " length %" PRIu64 "; it failed (%s); expected "
                             "success inside the new size", now, old,
                             now - blk, blk, nbdp_rz_error (rc));
    }
  }
  if (opt.force && now < old && rc->c->fd >= 0) {
    if (nbdp_rz_pread (rc, one, blk, now, 0) == 0)
      nbdp_rz_violation_add (&vs, "RZ-BOUND-2", NULL, NBDP_RZ_MUST, false,
                             "after a shrink from %" PRIu64 " to %" PRIu64
                             ", sent NBD_CMD_READ offset %" PRIu64 " length %"
                             PRIu64 " (past the new end); it succeeded; "
                             "expected a failure", old, now, now, blk);
    else if (rc->status != NBDP_RZ_REFUSED)
      return;
  }
  nbdp_rz_violations_merge (&rc->vs, &vs);
  if (now > old && rc->c->fd >= 0) {
    uint64_t span = now - old, head = span < 65536 ? span : 65536;
    if (verify_range (rc, old, head, 0, true, zeroed_event, msg,
                      sizeof msg) == -1)
      return;
    if (span > head) {
      uint64_t tail = span - head < 65536 ? span - head : 65536;
      if (verify_range (rc, now - tail, tail, 0, true, zeroed_event, msg,
                        sizeof msg) == -1)
        return;
    }
  }
  /* A second connection. */
  if (rc->st.mode == NBDP_RZ_MODE_NEGOTIATED ||
      (rc->st.eflags & NBD_FLAG_CAN_MULTI_CONN)) {
    int code;
    bool v = opt.verbose;
    struct nbdp_rz_client *rc2;

    opt.verbose = false;
    rc2 = open_client (uri, 0, false, &code, msg, sizeof msg);
    opt.verbose = v;
    if (code == EXIT_OK) {
      nbdp_rz_violations_clear (&vs);
      nbdp_rz_check_set_effect (&rc->st, requested, now, rc2->st.size, &vs);
      nbdp_rz_violations_merge (&rc->vs, &vs);
      if (opt.verbose)
        fprintf (stderr, "-- a second connection sees size %" PRIu64 "\n",
                 rc2->st.size);
      nbdp_rz_disc (rc2);
    }
    nbdp_rz_client_free (rc2);
  }
}

static int
cmd_resize (const char *uri, uint64_t size)
{
  char msg[NBDP_CLIENT_ERRMAX], why[512];
  int code;
  struct nbdp_rz_client *rc = open_client (uri, 0, false, &code, msg,
                                           sizeof msg);
  struct nbdp_rz_result res;
  uint16_t flags = opt.fua ? NBD_CMD_FLAG_FUA : 0;

  if (code != EXIT_OK)
    return finish (rc, code, msg);
  jset ("requested", json_integer ((json_int_t) size));
  jset ("old_size", json_integer ((json_int_t) rc->st.size));
  jset ("mode", json_string (nbdp_rz_mode_name (rc->st.mode)));
  if (!opt.force && resize_unsupported (rc, why, sizeof why)) {
    nbdp_rz_disc (rc);
    return finish (rc, EXIT_UNSUPPORTED, why);
  }
  if (nbdp_rz_set_size (rc, size, flags, &res) == -1) {
    bool sent_anyway = !(rc->st.eflags & NBD_FLAG_SEND_RESIZE);
    code = code_of (rc);
    snprintf (msg, sizeof msg, "%s", nbdp_rz_error (rc));
    if (sent_anyway && code == EXIT_REFUSED) {
      snprintf (msg, sizeof msg, "NBD_CMD_RESIZE sent without "
                "NBD_FLAG_SEND_RESIZE (--force) was refused: %s",
                nbdp_rz_error (rc));
      code = EXIT_UNSUPPORTED;
    }
    else if (sent_anyway && code == EXIT_USAGE) {
      snprintf (msg, sizeof msg, "NBD_CMD_RESIZE sent without "
                "NBD_FLAG_SEND_RESIZE (--force): the connection broke: %s",
                nbdp_rz_error (rc));
      code = EXIT_UNSUPPORTED;
    }
    if (res.error)
      jset ("error", json_string (nbdp_name_of_error (res.error)
                                  ? nbdp_name_of_error (res.error) : "?"));
    nbdp_rz_disc (rc);
    return finish (rc, code, msg);
  }
  if (res.have_chunk)
    jset ("chunk", jchunk (&res.chunk));
  jset ("size", json_integer ((json_int_t) res.size));
  if (!opt.json) {
    char eb[128];
    if (res.have_chunk)
      printf ("resized: requested %" PRIu64 ", size %" PRIu64 " -> %" PRIu64
              " (events %s, sequence %" PRIu32 ")\n", size, res.old_size,
              res.chunk.size,
              nbdp_rz_events_str (eb, sizeof eb, res.chunk.events),
              res.chunk.sequence);
    else
      printf ("resized: size %" PRIu64 " -> %" PRIu64 " (%s mode, no size "
              "reply: exactly the requested size)\n", res.old_size, res.size,
              nbdp_rz_mode_name (rc->st.mode));
  }
  if (opt.verify && rc->c->fd >= 0)
    verify_change (rc, uri, res.old_size, res.size,
                   res.have_chunk &&
                   (res.chunk.events & NBD_RESIZE_EV_ZEROED), size);
  nbdp_rz_disc (rc);
  return finish (rc, EXIT_OK, NULL);
}

static int
cmd_query (const char *uri)
{
  char msg[NBDP_CLIENT_ERRMAX], why[512];
  int code;
  struct nbdp_rz_client *rc = open_client (uri, 0, false, &code, msg,
                                           sizeof msg);
  struct nbdp_rz_result res;

  if (code != EXIT_OK)
    return finish (rc, code, msg);
  if (!opt.force && resize_unsupported (rc, why, sizeof why)) {
    nbdp_rz_disc (rc);
    return finish (rc, EXIT_UNSUPPORTED, why);
  }
  if (nbdp_rz_query (rc, &res) == -1) {
    snprintf (msg, sizeof msg, "%s", nbdp_rz_error (rc));
    nbdp_rz_disc (rc);
    return finish (rc, code_of (rc), msg);
  }
  jset ("chunk", jchunk (&res.chunk));
  jset ("size", json_integer ((json_int_t) res.chunk.size));
  if (!opt.json) {
    char eb[128];
    printf ("size %" PRIu64 " (events %s, sequence %" PRIu32 ")\n",
            res.chunk.size,
            nbdp_rz_events_str (eb, sizeof eb, res.chunk.events),
            res.chunk.sequence);
  }
  nbdp_rz_disc (rc);
  return finish (rc, EXIT_OK, NULL);
}

static void
print_event (const char *kind, const struct nbdp_rz_chunk *ch)
{
  char eb[128];

  if (opt.json) {
    json_t *o = jchunk (ch);
    json_object_set_new (o, "event", json_string (kind));
    json_dumpf (o, stdout, JSON_COMPACT);
    fputc ('\n', stdout);
    json_decref (o);
  }
  else
    printf ("%s: size %" PRIu64 " events %s sequence %" PRIu32 "\n", kind,
            ch->size, nbdp_rz_events_str (eb, sizeof eb, ch->events),
            ch->sequence);
  fflush (stdout);
}

static uint64_t
mono_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int
cmd_watch (const char *uri)
{
  char msg[NBDP_CLIENT_ERRMAX], why[512];
  int code;
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;
  struct nbdp_rz_chunk ch;
  uint64_t deadline = 0;
  long seen = 0;

  /* The receive timeout must not end a quiet subscription. */
  {
    double t = opt.timeout;
    opt.timeout = -1;
    rc = open_client (uri, 0, false, &code, msg, sizeof msg);
    opt.timeout = t;
  }
  if (code != EXIT_OK)
    return finish (rc, code, msg);
  if (!opt.force && resize_unsupported (rc, why, sizeof why)) {
    nbdp_rz_disc (rc);
    return finish (rc, EXIT_UNSUPPORTED, why);
  }
  if (!opt.force && !(rc->st.mode == NBDP_RZ_MODE_NEGOTIATED &&
                      (rc->st.active & NBD_RESIZE_F_NOTIFY))) {
    snprintf (why, sizeof why, "NOTIFY is not active (mode %s): the server "
              "offers no size notifications", nbdp_rz_mode_name (rc->st.mode));
    nbdp_rz_disc (rc);
    return finish (rc, EXIT_UNSUPPORTED, why);
  }
  if (opt.timeout >= 0)
    deadline = mono_ms () + (uint64_t) (opt.timeout * 1000);
  if (nbdp_rz_subscribe (rc, false, &res) == -1) {
    snprintf (msg, sizeof msg, "%s", nbdp_rz_error (rc));
    nbdp_rz_disc (rc);
    return finish (rc, code_of (rc), msg);
  }
  print_event ("initial", &res.chunk);
  while (opt.count < 0 || seen < opt.count) {
    int wait = 200, r;
    if (interrupted)
      break;
    if (deadline) {
      uint64_t now = mono_ms ();
      if (now >= deadline)
        break;
      if (deadline - now < (uint64_t) wait)
        wait = (int) (deadline - now);
    }
    r = nbdp_rz_next_event (rc, wait, &ch);
    if (r == -1) {
      snprintf (msg, sizeof msg, "%s", nbdp_rz_error (rc));
      jset ("notifications", json_integer (seen));
      if (rc->sub_ended && rc->status == NBDP_RZ_IO)
        return finish (rc, rc->vs.n ? EXIT_VIOLATION : EXIT_USAGE,
                       "the subscription ended");
      return finish (rc, code_of (rc), msg);
    }
    if (r == 1) {
      seen++;
      print_event ("notification", &ch);
    }
  }
  jset ("notifications", json_integer (seen));
  if (nbdp_rz_unsubscribe (rc, &res) == -1) {
    snprintf (msg, sizeof msg, "unsubscribe: %s", nbdp_rz_error (rc));
    nbdp_rz_disc (rc);
    return finish (rc, code_of (rc), msg);
  }
  print_event ("final", &res.chunk);
  nbdp_rz_disc (rc);
  if (opt.count >= 0 && seen < opt.count)
    return finish (rc, EXIT_USAGE, "timed out before --count notifications "
                   "arrived");
  return finish (rc, EXIT_OK, NULL);
}

static int
cmd_write (const char *uri, uint64_t off, uint64_t len, bool grow)
{
  char msg[NBDP_CLIENT_ERRMAX];
  int code;
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;
  unsigned char *buf;
  uint16_t flags = opt.fua ? NBD_CMD_FLAG_FUA : 0;

  if (len > 32 * 1024 * 1024)
    usage_error ("LENGTH above 32M");
  rc = open_client (uri, grow ? NBD_RESIZE_F_AUTO_GROW : 0, false, &code,
                    msg, sizeof msg);
  if (code != EXIT_OK)
    return finish (rc, code, msg);
  if (grow && !opt.force &&
      !((rc->st.mode == NBDP_RZ_MODE_NEGOTIATED &&
         (rc->st.active & NBD_RESIZE_F_AUTO_GROW)) ||
        rc->st.mode == NBDP_RZ_MODE_FLAG_ONLY)) {
    char why[512];
    snprintf (why, sizeof why, "automatic growth is not active (mode %s%s): "
              "a write past the end would fail (RZ-CLI-16)",
              nbdp_rz_mode_name (rc->st.mode),
              rc->st.opt_sent && !rc->st.opt_acked
              ? ", NBD_OPT_RESIZE refused" : "");
    nbdp_rz_disc (rc);
    return finish (rc, EXIT_UNSUPPORTED, why);
  }
  buf = malloc (len ? len : 1);
  if (buf == NULL)
    return finish (rc, EXIT_USAGE, "out of memory");
  memset (buf, opt.pattern, len);
  jset ("offset", json_integer ((json_int_t) off));
  jset ("length", json_integer ((json_int_t) len));
  jset ("old_size", json_integer ((json_int_t) rc->st.size));
  if (nbdp_rz_pwrite (rc, buf, len, off, flags, &res) == -1) {
    free (buf);
    snprintf (msg, sizeof msg, "%s", nbdp_rz_error (rc));
    code = code_of (rc);
    if (code == EXIT_USAGE && strncmp (msg, "not sent", 8) == 0)
      code = EXIT_UNSUPPORTED;
    nbdp_rz_disc (rc);
    return finish (rc, code, msg);
  }
  free (buf);
  if (res.have_chunk)
    jset ("chunk", jchunk (&res.chunk));
  jset ("size", json_integer ((json_int_t) res.size));
  if (!opt.json) {
    char eb[128];
    printf ("wrote %" PRIu64 " bytes of 0x%02x at %" PRIu64, len,
            opt.pattern, off);
    if (res.have_chunk)
      printf ("; size %" PRIu64 " -> %" PRIu64 " (events %s, sequence %"
              PRIu32 ")", res.old_size, res.chunk.size,
              nbdp_rz_events_str (eb, sizeof eb, res.chunk.events),
              res.chunk.sequence);
    else if (res.size != res.old_size)
      printf ("; size %" PRIu64 " -> at least %" PRIu64, res.old_size,
              res.size);
    printf ("\n");
  }
  if (grow && opt.verify && rc->c->fd >= 0) {
    int r = verify_range (rc, off, len, opt.pattern, false, false, msg,
                          sizeof msg);
    if (r == 0 && off > res.old_size && rc->c->fd >= 0)
      /* The gap between the old end and the write is newly exposed. */
      r = verify_range (rc, res.old_size,
                        off - res.old_size < 65536 ? off - res.old_size
                        : 65536, 0, true,
                        res.have_chunk &&
                        (res.chunk.events & NBD_RESIZE_EV_ZEROED), msg,
                        sizeof msg);
    if (r == -2) {
      fprintf (stderr, "%s: %s\n", PROG, msg);
      nbdp_rz_disc (rc);
      return finish (rc, EXIT_VIOLATION, NULL);
    }
  }
  nbdp_rz_disc (rc);
  return finish (rc, EXIT_OK, NULL);
}

/* ---- main ---------------------------------------------------------- */

enum {
  OPT_ENCODING = 256, OPT_FEATURES, OPT_STRUCTURED, OPT_NO_STRUCTURED,
  OPT_EXTENDED, OPT_EXPORT_NAME, OPT_EXPECT, OPT_PATTERN, OPT_COUNT,
  OPT_TIMEOUT, OPT_FUA, OPT_NO_VERIFY, OPT_FORCE, OPT_STRICT, OPT_JSON,
};

static const struct option long_options[] = {
  { "encoding", required_argument, NULL, OPT_ENCODING },
  { "features", required_argument, NULL, OPT_FEATURES },
  { "structured", no_argument, NULL, OPT_STRUCTURED },
  { "no-structured", no_argument, NULL, OPT_NO_STRUCTURED },
  { "extended", no_argument, NULL, OPT_EXTENDED },
  { "export-name", no_argument, NULL, OPT_EXPORT_NAME },
  { "expect", required_argument, NULL, OPT_EXPECT },
  { "pattern", required_argument, NULL, OPT_PATTERN },
  { "count", required_argument, NULL, OPT_COUNT },
  { "timeout", required_argument, NULL, OPT_TIMEOUT },
  { "fua", no_argument, NULL, OPT_FUA },
  { "no-verify", no_argument, NULL, OPT_NO_VERIFY },
  { "force", no_argument, NULL, OPT_FORCE },
  { "strict", no_argument, NULL, OPT_STRICT },
  { "json", no_argument, NULL, OPT_JSON },
  { "verbose", no_argument, NULL, 'v' },
  { "help", no_argument, NULL, 'h' },
  { "version", no_argument, NULL, 'V' },
  { NULL, 0, NULL, 0 },
};

static void
need_args (int have, int want, const char *cmd)
{
  if (have != want)
    usage_error ("'%s' takes %d argument%s after the command, got %d", cmd,
                 want, want == 1 ? "" : "s", have);
}

static uint64_t
size_arg (const char *s, const char *what)
{
  uint64_t v;

  if (parse_size (s, &v) == -1)
    usage_error ("%s '%s' is not a number (suffixes K M G T P E allowed)",
                 what, s);
  return v;
}

int
main (int argc, char **argv)
{
  const char *cmd, *uri;
  char **args;
  int nargs, c;
  struct sigaction sa = { .sa_handler = on_signal };

  while ((c = getopt_long (argc, argv, "vhV", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_ENCODING:
      if (nbdp_rz_encoding_parse (optarg, &opt.encoding) == -1)
        usage_error ("unknown encoding '%s' (negotiated, flag-only, "
                     "info-optin, boolean, legacy)", optarg);
      break;
    case OPT_FEATURES:
      if (nbdp_rz_features_parse (optarg, &opt.features) == -1)
        usage_error ("bad feature list '%s'", optarg);
      opt.features_set = true;
      break;
    case OPT_STRUCTURED: opt.structured = true; break;
    case OPT_NO_STRUCTURED: opt.structured = false; break;
    case OPT_EXTENDED: opt.extended = true; break;
    case OPT_EXPORT_NAME: opt.export_name = true; break;
    case OPT_EXPECT:
      opt.have_expect = true;
      opt.expect = strcmp (optarg, "zero") == 0 ? 0 : parse_byte (optarg);
      break;
    case OPT_PATTERN: opt.pattern = parse_byte (optarg); break;
    case OPT_COUNT: {
      char *end;
      opt.count = strtol (optarg, &end, 10);
      if (*end || opt.count < 0)
        usage_error ("--count needs a number >= 0");
      break;
    }
    case OPT_TIMEOUT: {
      char *end;
      opt.timeout = strtod (optarg, &end);
      if (*end || opt.timeout < 0)
        usage_error ("--timeout needs seconds >= 0");
      break;
    }
    case OPT_FUA: opt.fua = true; break;
    case OPT_NO_VERIFY: opt.verify = false; break;
    case OPT_FORCE: opt.force = true; break;
    case OPT_STRICT: opt.strict = true; break;
    case OPT_JSON: opt.json = true; break;
    case 'v': opt.verbose = true; break;
    case 'h': fputs (usage_text, stdout); return EXIT_OK;
    case 'V': printf ("%s %s\n", PROG, VERSION); return EXIT_OK;
    default:
      fprintf (stderr, "Try '%s --help'.\n", PROG);
      return EXIT_USAGE;
    }
  }
  if (argc - optind < 2)
    usage_error ("expected a command and a URI");
  cmd = argv[optind];
  uri = argv[optind + 1];
  args = argv + optind + 2;
  nargs = argc - optind - 2;

  signal (SIGPIPE, SIG_IGN);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  if (opt.json) {
    jout = json_object ();
    json_object_set_new (jout, "command", json_string (cmd));
    json_object_set_new (jout, "uri", json_string (uri));
    json_object_set_new (jout, "encoding",
                         json_string (nbdp_rz_encoding_name (opt.encoding)));
  }

  if (strcmp (cmd, "info") == 0) {
    need_args (nargs, 0, cmd);
    return cmd_info (uri);
  }
  if (strcmp (cmd, "read") == 0) {
    need_args (nargs, 2, cmd);
    return cmd_read (uri, size_arg (args[0], "OFFSET"),
                     size_arg (args[1], "LENGTH"));
  }
  if (strcmp (cmd, "write") == 0 || strcmp (cmd, "grow-write") == 0) {
    need_args (nargs, 2, cmd);
    return cmd_write (uri, size_arg (args[0], "OFFSET"),
                      size_arg (args[1], "LENGTH"),
                      strcmp (cmd, "grow-write") == 0);
  }
  if (strcmp (cmd, "resize") == 0) {
    need_args (nargs, 1, cmd);
    return cmd_resize (uri, size_arg (args[0], "SIZE"));
  }
  if (strcmp (cmd, "query") == 0) {
    need_args (nargs, 0, cmd);
    return cmd_query (uri);
  }
  if (strcmp (cmd, "watch") == 0) {
    need_args (nargs, 0, cmd);
    return cmd_watch (uri);
  }
  usage_error ("unknown command '%s'", cmd);
}
