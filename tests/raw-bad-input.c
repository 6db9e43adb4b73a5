/* nbd-conformance: bad input sent to nbd-refserver with the raw client.
 * Each case is its own test binary (tests/bin/raw-bad-input-CASE, built
 * with -DTEST_CASE); each checks that the server answers as the section of
 * proto.md cited at the case says, and that afterwards the server still
 * serves a fresh connection (tl_check_alive).  Where the spec allows
 * several answers, any is accepted and the one seen is printed ("info:").
 * Where it says SHOULD, the reference server is held to it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "codec.h"
#include "nbd-proto.h"
#include "testlib.h"

static const char *const default_args[] = { "memory", "1M", NULL };
#define EXPORT_SIZE TL_MIB

/* A server with the default 1 MiB memory export. */
static void
start_default (struct tl_server *s)
{
  tl_start_server (s, default_args);
}

/* Build NBD_OPT_INFO/GO data: name_len (as given, may lie), name bytes,
 * no info requests.  Returns the length.
 */
static size_t
go_data (unsigned char *buf, uint32_t declared_name_len, const char *name,
         size_t name_len)
{
  nbdp_put32 (buf, declared_name_len);
  memcpy (buf + 4, name, name_len);
  nbdp_put16 (buf + 4 + name_len, 0);
  return 4 + name_len + 2;
}

/* Send an option and return its final reply type (0: closed). */
static uint32_t
option (struct nbdp_client *c, uint32_t opt, const void *data, uint32_t len,
        const char *sent)
{
  if (nbdp_client_send_option (c, opt, data, len) == -1) {
    if (tl_peer_state (c, 1000) == TL_PEER_CLOSED)
      return 0;
    tl_fail ("sending %s: %s", sent, nbdp_client_error (c));
  }
  return tl_opt_final (c, opt, sent);
}

/* ---- Handshake phase ---- */

/* proto.md "Newstyle negotiation": the option header starts with
 * IHAVEOPT.  A wrong magic breaks a MUST, so (proto.md "Termination of the
 * session during option haggling") the server MAY hard disconnect; it may
 * also answer with an error.  It must not go on as if the option were
 * valid.
 */
static void
case_bad_option_magic (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  uint32_t rep;

  start_default (&s);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_send_option_raw (c, UINT64_C (0x1122334455667788),
                                   NBD_OPT_LIST, 0, NULL, 0) == -1)
    tl_fail ("sending the option: %s", nbdp_client_error (c));
  rep = tl_opt_final (c, NBD_OPT_LIST,
                      "option header with magic 0x1122334455667788");
  if (rep == NBD_REP_ACK)
    tl_fail ("sent NBD_OPT_LIST with magic 0x1122334455667788; got"
             " NBD_REP_ACK; expected a disconnect or an error reply");
  tl_info ("bad option magic answered with %s",
           rep ? tl_repname (rep) : "a disconnect");
  nbdp_client_free (c);
  tl_check_alive (&s, "an option with a bad magic");
}

/* proto.md "Newstyle negotiation": "the server MUST close the TCP
 * connection if it does not recognize the client's flags".
 */
static void
case_bad_client_flags (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  uint32_t rep;

  start_default (&s);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE | UINT32_C (0x40000000));
  nbdp_client_send_option (c, NBD_OPT_LIST, NULL, 0);
  rep = tl_opt_final (c, NBD_OPT_LIST,
                      "client flags 0x40000001 then NBD_OPT_LIST");
  if (rep != 0)
    tl_fail ("sent client flags 0x40000001 (bit 30 unknown) then"
             " NBD_OPT_LIST; got %s; expected the server to close the"
             " connection", tl_repname (rep));
  tl_ok ("unknown client flags: connection closed");
  nbdp_client_free (c);
  tl_check_alive (&s, "unknown client flags");
}

/* proto.md "Newstyle negotiation": the option length says how much data
 * follows.  A client that declares more than it sends and then closes its
 * side leaves an incomplete option: the server can only close (it may
 * have sent an error reply first), and must go on serving others.
 */
static void
case_option_short_data (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  unsigned char data[10] = { 0 };
  uint32_t rep;

  start_default (&s);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_send_option_raw (c, NBD_NEW_VERSION, NBD_OPT_GO, 100,
                                   data, sizeof data) == -1)
    tl_fail ("sending the option: %s", nbdp_client_error (c));
  shutdown (c->fd, SHUT_WR);
  rep = tl_opt_final (c, NBD_OPT_GO, "NBD_OPT_GO declaring 100 bytes,"
                      " sending 10, then shutdown(SHUT_WR)");
  if (rep == NBD_REP_ACK)
    tl_fail ("sent NBD_OPT_GO declaring 100 bytes and sending 10; got"
             " NBD_REP_ACK; expected a disconnect");
  if (rep != 0 && !tl_server_closed (c))
    tl_fail ("sent NBD_OPT_GO declaring 100 bytes and sending 10, then EOF;"
             " got %s and the connection stayed open; expected it closed",
             tl_repname (rep));
  tl_info ("short option answered with %s",
           rep ? tl_repname (rep) : "a disconnect");
  nbdp_client_free (c);
  tl_check_alive (&s, "an option shorter than its declared length");
}

/* proto.md "Termination of the session during option haggling": a server
 * MAY hard disconnect a client whose behaviour it deems a denial of
 * service; otherwise it must read the data and fail the option (0xff
 * bytes are not a valid NBD_OPT_GO: the name length would be 4 GiB).
 * Either way it must not buffer it all: the server's memory may not grow
 * by anything near the option's size.  Tried with 10 MiB and 100 MiB.
 */
static void
option_big (const struct tl_server *s, uint32_t len)
{
  struct nbdp_client *c;
  static unsigned char junk[1024 * 1024];
  long rss0, rss, max_growth = 0;
  uint32_t sent, rep;
  bool closed = false;

  rss0 = tl_server_rss_kib (s);
  c = tl_newstyle (s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_send_option_raw (c, NBD_NEW_VERSION, NBD_OPT_GO, len,
                                   NULL, 0) == -1)
    tl_fail ("sending the option header: %s", nbdp_client_error (c));
  memset (junk, 0xff, sizeof junk);
  for (sent = 0; sent < len; sent += sizeof junk) {
    if (nbdp_client_send_raw (c, junk, sizeof junk) == -1) {
      closed = true;
      break;
    }
    rss = tl_server_rss_kib (s);
    if (rss - rss0 > max_growth)
      max_growth = rss - rss0;
  }
  tl_info ("%" PRIu32 " MiB option: server VmRSS grew by at most %ld KiB"
           " while %" PRIu32 " bytes were sent", len >> 20, max_growth, sent);
  if (max_growth > (long) (len >> 10) / 2)
    tl_fail ("sent NBD_OPT_GO declaring %" PRIu32 " bytes; the server's"
             " VmRSS grew by %ld KiB; expected it not to buffer the option",
             len, max_growth);
  rep = closed ? 0 : tl_opt_final (c, NBD_OPT_GO, "NBD_OPT_GO with a big"
                                   " payload of 0xff");
  if (rep == NBD_REP_ACK)
    tl_fail ("sent NBD_OPT_GO with %" PRIu32 " bytes of 0xff; got"
             " NBD_REP_ACK; expected an error reply or a disconnect", len);
  tl_info ("%" PRIu32 " MiB option answered with %s after %" PRIu32
           " bytes", len >> 20, rep ? tl_repname (rep) : "a disconnect",
           sent);
  nbdp_client_free (c);
}

static void
case_option_big (void)
{
  struct tl_server s;

  start_default (&s);
  option_big (&s, 10 * 1024 * 1024);
  tl_check_alive (&s, "an option of 10 MiB");
  option_big (&s, 100 * 1024 * 1024);
  tl_check_alive (&s, "an option of 100 MiB");
}

static char *
name_of (size_t n, char fill)
{
  char *p = malloc (n + 1);

  if (p == NULL)
    tl_fail ("malloc: %m");
  memset (p, fill, n);
  p[n] = '\0';
  return p;
}

/* proto.md "Conventions": a string MUST be no longer than 4096 bytes.  An
 * export named with exactly 4096 bytes is valid and is served.
 */
static void
case_export_name_4096 (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  char *name = name_of (4096, 'n');
  char *spec = malloc (4200);
  const char *args[6];
  struct nbdp_export exp = { 0 };
  char buf[512];

  snprintf (spec, 4200, "name=%s,memory=3M", name);
  args[0] = "--export"; args[1] = spec;
  args[2] = "memory"; args[3] = "1M"; args[4] = NULL;
  tl_start_server (&s, args);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_opt_info (c, true, name, NULL, 0, &exp) == -1)
    tl_fail ("sent NBD_OPT_GO for the 4096-byte export name; got %s;"
             " expected NBD_REP_ACK", nbdp_client_error (c));
  if (c->size != 3 * TL_MIB)
    tl_fail ("sent NBD_OPT_GO for the 4096-byte name; got export size %"
             PRIu64 "; expected 3145728 (that export's size)", c->size);
  tl_ok ("4096-byte export name served (size %" PRIu64 ")", c->size);
  if (tl_cmd (c, NBD_CMD_READ, 0, 0, sizeof buf, buf, NULL,
              NBDP_LAYOUT_AUTO) != 0)
    tl_fail ("read from the 4096-byte export failed");
  nbdp_client_free (c);

  /* The same with NBD_OPT_EXPORT_NAME. */
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_opt_export_name (c, name, &exp) == -1)
    tl_fail ("sent NBD_OPT_EXPORT_NAME with the 4096-byte name; got %s;"
             " expected the export", nbdp_client_error (c));
  if (c->size != 3 * TL_MIB)
    tl_fail ("NBD_OPT_EXPORT_NAME (4096-byte name): got size %" PRIu64
             "; expected 3145728", c->size);
  tl_ok ("4096-byte export name served by NBD_OPT_EXPORT_NAME");
  nbdp_client_free (c);
  free (name);
  free (spec);
  tl_check_alive (&s, "a 4096-byte export name");
}

/* proto.md "Conventions": a 4097-byte name breaks a MUST.  NBD_OPT_GO must
 * not succeed: an error reply or a disconnect ("Termination of the session
 * during option haggling").  NBD_OPT_EXPORT_NAME cannot return an error,
 * so the server must close ("NBD_OPT_EXPORT_NAME").
 */
static void
case_export_name_4097 (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  char *name = name_of (4097, 'n');
  unsigned char *data = malloc (4200);
  struct nbdp_export exp = { 0 };
  size_t len;
  uint32_t rep;

  start_default (&s);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  len = go_data (data, 4097, name, 4097);
  rep = option (c, NBD_OPT_GO, data, len, "NBD_OPT_GO, 4097-byte name");
  if (rep == NBD_REP_ACK)
    tl_fail ("sent NBD_OPT_GO with a 4097-byte name; got NBD_REP_ACK;"
             " expected an error reply or a disconnect");
  tl_info ("NBD_OPT_GO with a 4097-byte name: %s",
           rep ? tl_repname (rep) : "disconnect");
  nbdp_client_free (c);

  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_opt_export_name (c, name, &exp) == 0)
    tl_fail ("sent NBD_OPT_EXPORT_NAME with a 4097-byte name; got an export"
             " (size %" PRIu64 "); expected the server to close", c->size);
  if (c->failure != NBDP_FAIL_REFUSED)
    tl_fail ("sent NBD_OPT_EXPORT_NAME with a 4097-byte name; got %s;"
             " expected the server to close", nbdp_client_error (c));
  tl_ok ("NBD_OPT_EXPORT_NAME with a 4097-byte name: connection closed");
  nbdp_client_free (c);
  free (name);
  free (data);
  tl_check_alive (&s, "a 4097-byte export name");
}

/* proto.md "Conventions": a string MUST NOT contain NUL.  With an export
 * "a" present, the name "a\0b" must not select it (a server comparing C
 * strings would).  GO: error reply or disconnect; EXPORT_NAME: close.
 */
static void
case_export_name_nul (void)
{
  struct tl_server s;
  static const char *const args[] = {
    "--export", "name=a,memory=2M", "memory", "1M", NULL
  };
  struct nbdp_client *c;
  unsigned char data[32];
  size_t len;
  uint32_t rep;
  struct nbdp_export exp = { 0 };

  tl_start_server (&s, args);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  len = go_data (data, 3, "a\0b", 3);
  rep = option (c, NBD_OPT_GO, data, len, "NBD_OPT_GO, name \"a\\0b\"");
  if (rep == NBD_REP_ACK)
    tl_fail ("sent NBD_OPT_GO for name \"a\\0b\" (export \"a\" exists); got"
             " NBD_REP_ACK; expected an error reply or a disconnect");
  tl_info ("NBD_OPT_GO with a NUL in the name: %s",
           rep ? tl_repname (rep) : "disconnect");
  nbdp_client_free (c);

  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_send_option (c, NBD_OPT_EXPORT_NAME, "a\0b", 3) == -1)
    tl_fail ("sending NBD_OPT_EXPORT_NAME: %s", nbdp_client_error (c));
  switch (tl_peer_state (c, 10000)) {
  case TL_PEER_CLOSED:
    tl_ok ("NBD_OPT_EXPORT_NAME \"a\\0b\": connection closed");
    break;
  case TL_PEER_DATA:
    tl_fail ("sent NBD_OPT_EXPORT_NAME \"a\\0b\" (export \"a\" exists); got"
             " data (an export?); expected the server to close");
  case TL_PEER_TIMEOUT:
    tl_fail ("sent NBD_OPT_EXPORT_NAME \"a\\0b\"; got nothing in 10 s;"
             " expected the server to close");
  }
  (void) exp;
  nbdp_client_free (c);
  tl_check_alive (&s, "an export name with a NUL");
}

/* proto.md "NBD_OPT_INFO and NBD_OPT_GO": the name length "MUST be no
 * larger than the option data length - 6".  A larger one is syntactically
 * invalid: NBD_REP_ERR_INVALID ("Option reply types") or a hard disconnect
 * ("Termination of the session during option haggling").  After an error
 * reply the negotiation goes on: NBD_OPT_GO then succeeds.
 */
static void
case_info_name_too_long (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  unsigned char data[16];
  size_t len;
  uint32_t rep, opt;

  start_default (&s);
  for (opt = NBD_OPT_INFO; opt <= NBD_OPT_GO; opt++) {
    c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
    len = go_data (data, 1000, "abc", 3);
    rep = option (c, opt, data, len, "INFO/GO with name length 1000 in 9"
                  " bytes of data");
    if (rep != 0 && rep != NBD_REP_ERR_INVALID)
      tl_fail ("sent %s with name length 1000 in 9 bytes of option data;"
               " got %s; expected NBD_REP_ERR_INVALID or a disconnect",
               nbdp_name_of_opt (opt), tl_repname (rep));
    tl_info ("%s with name length > option length: %s",
             nbdp_name_of_opt (opt), rep ? tl_repname (rep) : "disconnect");
    if (rep) {
      struct nbdp_export exp = { 0 };
      if (nbdp_client_opt_info (c, true, "", NULL, 0, &exp) == -1)
        tl_fail ("after NBD_REP_ERR_INVALID, sent NBD_OPT_GO \"\"; got %s;"
                 " expected success", nbdp_client_error (c));
      tl_check_conn_alive (c, "the invalid option");
    }
    nbdp_client_free (c);
  }
  tl_check_alive (&s, "INFO/GO with a name length past the option");
}

/* proto.md "Fixed newstyle negotiation" and "Option reply types": an
 * option the server does not know gets NBD_REP_ERR_UNSUP, and the
 * negotiation continues.
 */
static void
case_unknown_option (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  struct nbdp_export exp = { 0 };
  uint32_t rep;

  start_default (&s);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  rep = option (c, 0x4242, "hello", 5, "option 0x4242 with 5 bytes");
  if (rep != NBD_REP_ERR_UNSUP)
    tl_fail ("sent option 0x4242 with 5 bytes; got %s; expected"
             " NBD_REP_ERR_UNSUP", rep ? tl_repname (rep) : "disconnect");
  tl_ok ("unknown option: NBD_REP_ERR_UNSUP");
  rep = option (c, 0x7fffffff, NULL, 0, "option 0x7fffffff");
  if (rep != NBD_REP_ERR_UNSUP)
    tl_fail ("sent option 0x7fffffff; got %s; expected NBD_REP_ERR_UNSUP",
             rep ? tl_repname (rep) : "disconnect");
  if (nbdp_client_opt_info (c, true, "", NULL, 0, &exp) == -1)
    tl_fail ("after unknown options, NBD_OPT_GO failed: %s",
             nbdp_client_error (c));
  tl_check_conn_alive (c, "unknown options");
  nbdp_client_free (c);
  tl_check_alive (&s, "unknown options");
}

/* ---- Transmission phase ---- */

/* proto.md "Request message" / "Terminating the transmission phase": a
 * request with a wrong magic breaks a MUST; the server MAY hard
 * disconnect (it cannot know where the next request starts).  An error
 * reply is also accepted.
 */
static void
case_bad_request_magic (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  struct nbdp_request req = {
    .magic = 0x12345678, .type = NBD_CMD_READ, .cookie = 77,
    .offset = 0, .count = 512,
  };
  enum tl_peer p;

  start_default (&s);
  c = tl_open (&s, "", true);
  if (nbdp_client_send_request (c, &req, NBDP_LAYOUT_COMPACT, NULL, 0) == -1)
    tl_fail ("sending the request: %s", nbdp_client_error (c));
  p = tl_peer_state (c, 10000);
  if (p == TL_PEER_TIMEOUT)
    tl_fail ("sent a READ request with magic 0x12345678; got nothing in"
             " 10 s; expected a disconnect (or an error reply)");
  if (p == TL_PEER_DATA) {
    struct nbdp_client_reply r;
    if (nbdp_client_recv_reply (c, &r, 65536, -1) == -1)
      tl_fail ("sent a READ with magic 0x12345678; the reply: %s",
               nbdp_client_error (c));
    tl_info ("bad request magic answered with a reply (magic 0x%" PRIx32
             ", error %" PRIu32 ")", r.hdr.magic, r.hdr.error);
  }
  else
    tl_info ("bad request magic answered with a disconnect");
  nbdp_client_free (c);
  tl_check_alive (&s, "a request with a bad magic");
}

/* Send one command on a fresh structured (then simple) connection and
 * compare the error with the expected ones; the connection must stay in
 * step.  what: description for messages.
 */
static void
expect_cmd_error (const struct tl_server *s, bool structured, uint16_t type,
                  uint16_t flags, uint64_t offset, uint64_t count,
                  const int *allowed, size_t n_allowed, const char *what)
{
  struct nbdp_client *c = tl_open (s, "", structured);
  void *buf = NULL;
  const void *payload = NULL;
  int r;
  size_t i;
  char sent[256];

  if (type == NBD_CMD_READ || type == NBD_CMD_WRITE) {
    buf = calloc (1, count ? count : 1);
    if (buf == NULL)
      tl_fail ("calloc: %m");
    if (type == NBD_CMD_WRITE)
      payload = buf;
  }
  snprintf (sent, sizeof sent, "%s (%s flags 0x%x offset %" PRIu64
            " count %" PRIu64 ", %s replies)", what,
            nbdp_name_of_cmd (type) ? nbdp_name_of_cmd (type) : "unknown",
            flags, offset, count, structured ? "structured" : "simple");
  r = tl_cmd (c, type, flags, offset, count, type == NBD_CMD_READ ? buf : NULL,
              payload, NBDP_LAYOUT_AUTO);
  for (i = 0; i < n_allowed; i++)
    if (r == allowed[i])
      break;
  if (i == n_allowed)
    tl_fail ("sent %s; got %s; expected %s%s%s", sent, tl_errname (r),
             tl_errname (allowed[0]), n_allowed > 1 ? " or " : "",
             n_allowed > 1 ? tl_errname (allowed[1]) : "");
  tl_ok ("%s: %s", sent, tl_errname (r));
  tl_check_conn_alive (c, sent);
  nbdp_client_disc (c);
  nbdp_client_free (c);
  free (buf);
}

/* proto.md "Error values": "The server SHOULD return NBD_EINVAL if it
 * receives an unknown command."
 */
static void
case_unknown_command (void)
{
  struct tl_server s;
  static const int einval[] = { NBD_EINVAL };
  int sr;

  start_default (&s);
  for (sr = 1; sr >= 0; sr--) {
    expect_cmd_error (&s, sr, 0x42, 0, 0, 512, einval, 1, "unknown command");
    expect_cmd_error (&s, sr, 0xffff, 0, 0, 0, einval, 1, "unknown command");
    /* 8 is NBD_CMD_RESIZE, not offered by this export. */
    expect_cmd_error (&s, sr, NBD_CMD_RESIZE, 0, 2 * TL_MIB, 0, einval, 1,
                      "resize not advertised");
  }
  tl_check_alive (&s, "unknown commands");
}

/* proto.md "Error values": "The server SHOULD return NBD_EINVAL if it
 * receives an unknown command flag", and for a flag not documented as
 * applicable to the command.
 */
static void
case_unknown_flag (void)
{
  struct tl_server s;
  static const int einval[] = { NBD_EINVAL };
  int sr;

  start_default (&s);
  for (sr = 1; sr >= 0; sr--) {
    expect_cmd_error (&s, sr, NBD_CMD_READ, 1 << 9, 0, 512, einval, 1,
                      "unknown flag bit 9");
    expect_cmd_error (&s, sr, NBD_CMD_WRITE, 1 << 14, 0, 4096, einval, 1,
                      "unknown flag bit 14 on a write (payload consumed)");
    expect_cmd_error (&s, sr, NBD_CMD_FLUSH, 1 << 15, 0, 0, einval, 1,
                      "unknown flag bit 15");
    expect_cmd_error (&s, sr, NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 0, 512,
                      einval, 1, "PAYLOAD_LEN without extended headers");
    expect_cmd_error (&s, sr, NBD_CMD_TRIM, NBD_CMD_FLAG_FAST_ZERO, 0, 512,
                      einval, 1, "FAST_ZERO on trim");
  }
  tl_check_alive (&s, "unknown flags");
}

/* proto.md "Error values" and "Size constraints": beyond the export size
 * a read, trim or block status SHOULD fail with NBD_EINVAL, a write or
 * write zeroes with NBD_ENOSPC ("NBD_CMD_WRITE_ZEROES"); cache is a
 * request with offset and length ("Size constraints": EINVAL).
 */
static void
case_past_eof (void)
{
  struct tl_server s;
  static const int einval[] = { NBD_EINVAL }, enospc[] = { NBD_ENOSPC };
  int sr;

  start_default (&s);
  for (sr = 1; sr >= 0; sr--) {
    expect_cmd_error (&s, sr, NBD_CMD_READ, 0, EXPORT_SIZE, 512, einval, 1,
                      "read at EOF");
    expect_cmd_error (&s, sr, NBD_CMD_READ, 0, EXPORT_SIZE - 512, 1024,
                      einval, 1, "read across EOF");
    expect_cmd_error (&s, sr, NBD_CMD_WRITE, 0, EXPORT_SIZE - 512, 1024,
                      enospc, 1, "write across EOF");
    expect_cmd_error (&s, sr, NBD_CMD_WRITE_ZEROES, 0, EXPORT_SIZE, 4096,
                      enospc, 1, "write zeroes at EOF");
    expect_cmd_error (&s, sr, NBD_CMD_TRIM, 0, EXPORT_SIZE - 512, 4096,
                      einval, 1, "trim across EOF");
    expect_cmd_error (&s, sr, NBD_CMD_CACHE, 0, EXPORT_SIZE, 512, einval, 1,
                      "cache at EOF");
    if (sr)
      expect_cmd_error (&s, sr, NBD_CMD_BLOCK_STATUS, 0, EXPORT_SIZE, 512,
                        einval, 1, "block status at EOF");
  }
  tl_check_alive (&s, "requests past EOF");
}

/* proto.md "Size constraints": offset + length must not exceed the export
 * size; a server checking "offset + length > size" with wrapping
 * arithmetic would accept these.  Any error is accepted (EINVAL for reads,
 * ENOSPC or EINVAL for writes).
 */
static void
case_offset_wrap (void)
{
  struct tl_server s;
  static const int einval[] = { NBD_EINVAL },
    wr[] = { NBD_ENOSPC, NBD_EINVAL };
  const uint64_t off = UINT64_MAX - 511;
  int sr;

  start_default (&s);
  for (sr = 1; sr >= 0; sr--) {
    expect_cmd_error (&s, sr, NBD_CMD_READ, 0, off, 1024, einval, 1,
                      "read wrapping 2^64");
    expect_cmd_error (&s, sr, NBD_CMD_READ, 0, UINT64_MAX, 1, einval, 1,
                      "read at 2^64-1");
    expect_cmd_error (&s, sr, NBD_CMD_WRITE, 0, off, 1024, wr, 2,
                      "write wrapping 2^64");
    expect_cmd_error (&s, sr, NBD_CMD_WRITE_ZEROES, 0, off, 1024, wr, 2,
                      "write zeroes wrapping 2^64");
    expect_cmd_error (&s, sr, NBD_CMD_TRIM, 0, off, 1024, einval, 1,
                      "trim wrapping 2^64");
    expect_cmd_error (&s, sr, NBD_CMD_CACHE, 0, off, 1024, einval, 1,
                      "cache wrapping 2^64");
    if (sr)
      expect_cmd_error (&s, sr, NBD_CMD_BLOCK_STATUS, 0, off, 1024,
                        einval, 1, "block status wrapping 2^64");
  }
  tl_check_alive (&s, "offsets wrapping 2^64");
}

/* proto.md "NBD_CMD_READ", "NBD_CMD_WRITE", "NBD_CMD_TRIM",
 * "NBD_CMD_WRITE_ZEROES", "NBD_CMD_BLOCK_STATUS": a length of 0 is
 * unspecified behaviour, but the server SHOULD NOT disconnect.  Any reply
 * is accepted (printed); the connection must stay usable.
 */
static void
case_zero_length (void)
{
  struct tl_server s;
  static const uint16_t cmds[] = {
    NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES,
    NBD_CMD_CACHE, NBD_CMD_BLOCK_STATUS,
  };
  static const uint64_t offs[] = { 0, 4096, EXPORT_SIZE };
  size_t i, j;
  int sr;
  char buf[1];

  start_default (&s);
  for (sr = 1; sr >= 0; sr--) {
    struct nbdp_client *c = tl_open (&s, "", sr);
    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
      if (cmds[i] == NBD_CMD_BLOCK_STATUS && !sr)
        continue;
      for (j = 0; j < sizeof offs / sizeof offs[0]; j++) {
        int r = tl_cmd (c, cmds[i], 0, offs[j], 0,
                        cmds[i] == NBD_CMD_READ ? buf : NULL,
                        cmds[i] == NBD_CMD_WRITE ? buf : NULL,
                        NBDP_LAYOUT_AUTO);
        char what[128];
        snprintf (what, sizeof what, "%s of length 0 at %" PRIu64
                  " (%s replies)", nbdp_name_of_cmd (cmds[i]), offs[j],
                  sr ? "structured" : "simple");
        if (r < 0)
          tl_fail ("sent %s; got a disconnect (%s); expected any reply, the"
                   " server SHOULD NOT disconnect", what,
                   nbdp_client_error (c));
        tl_info ("%s: %s", what, tl_errname (r));
        tl_check_conn_alive (c, what);
      }
    }
    nbdp_client_disc (c);
    nbdp_client_free (c);
  }
  tl_check_alive (&s, "zero-length requests");
}

/* proto.md "Size constraints": a write payload above the maximum payload
 * but not above 2^25 SHOULD NOT be treated as a denial of service, so the
 * server consumes it and (cleanly) fails it, or serves it; the connection
 * stays in step.  Above 2^25 the server MAY hard disconnect instead.
 */
static void
case_write_too_large (void)
{
  struct tl_server s;
  static const char *const args[] = {
    "--export", "name=small,memory=8M,min-block=1,pref-block=4096,"
    "max-block=1048576", "memory", "64M", NULL
  };
  struct nbdp_client *c;
  size_t big = 2 * TL_MIB, huge = 48 * TL_MIB;
  unsigned char *buf = malloc (huge), *back = malloc (big);
  int r;

  if (buf == NULL || back == NULL)
    tl_fail ("malloc: %m");
  tl_start_server (&s, args);

  /* 2 MiB against a maximum payload of 1 MiB. */
  c = tl_open (&s, "small", true);
  if (!c->have_block_size || c->max_block != TL_MIB)
    tl_info ("export small: block size info %s, max %" PRIu32,
             c->have_block_size ? "present" : "absent", c->max_block);
  memset (buf, 0xa5, big);
  r = tl_cmd (c, NBD_CMD_WRITE, 0, 0, big, NULL, buf, NBDP_LAYOUT_AUTO);
  if (r < 0)
    tl_fail ("sent a 2 MiB write (maximum payload 1 MiB); got a disconnect;"
             " expected the payload consumed and an error or success (a"
             " payload <= 2^25 SHOULD NOT be treated as denial of service)");
  tl_info ("2 MiB write over a 1 MiB maximum payload: %s", tl_errname (r));
  if (tl_cmd (c, NBD_CMD_READ, 0, 0, TL_MIB, back, NULL,
              NBDP_LAYOUT_AUTO) != 0)
    tl_fail ("read after the oversize write failed: stream out of step?");
  if (r == 0 ? back[0] != 0xa5 : back[0] != 0)
    tl_fail ("after the 2 MiB write answered %s, byte 0 reads 0x%02x;"
             " expected 0x%02x", tl_errname (r), back[0], r == 0 ? 0xa5 : 0);
  tl_ok ("connection in step after the oversize write");
  nbdp_client_disc (c);
  nbdp_client_free (c);

  /* 48 MiB against the default 32 MiB maximum. */
  c = tl_open (&s, "", true);
  memset (buf, 0x5a, huge);
  r = tl_cmd (c, NBD_CMD_WRITE, 0, 0, huge, NULL, buf, NBDP_LAYOUT_AUTO);
  tl_info ("48 MiB write (maximum payload %" PRIu32 "): %s",
           c->have_block_size ? c->max_block : NBD_DEFAULT_MAX_PAYLOAD,
           r < 0 ? "disconnect (allowed above 2^25)" : tl_errname (r));
  if (r >= 0)
    tl_check_conn_alive (c, "a 48 MiB write");
  nbdp_client_free (c);
  free (buf);
  free (back);
  tl_check_alive (&s, "oversize writes");
}

/* proto.md "NBD_CMD_WRITE": the client sends the payload after the
 * header.  A client that disconnects half way through must not take the
 * server down or disturb other connections; repeated ten times.
 */
static void
case_disconnect_mid_write (void)
{
  struct tl_server s;
  static unsigned char part[100 * 1024];
  struct nbdp_client *other, *c;
  unsigned char back[4096];
  int i;

  start_default (&s);
  other = tl_open (&s, "", true);
  memset (back, 0x3c, sizeof back);
  if (tl_cmd (other, NBD_CMD_WRITE, 0, 768 * 1024, sizeof back, NULL, back,
              NBDP_LAYOUT_AUTO) != 0)
    tl_fail ("setup write failed");
  memset (part, 0xee, sizeof part);
  for (i = 0; i < 10; i++) {
    struct nbdp_request req = {
      .type = NBD_CMD_WRITE, .cookie = 1, .offset = 0, .count = 512 * 1024,
    };
    c = tl_open (&s, "", i % 2 == 0);
    if (nbdp_client_send_request (c, &req, NBDP_LAYOUT_AUTO, part,
                                  sizeof part) == -1)
      tl_fail ("sending a partial write: %s", nbdp_client_error (c));
    nbdp_client_free (c);       /* closes the socket mid-payload */
  }
  tl_ok ("10 clients closed in the middle of a 512 KiB write payload");
  tl_check_conn_alive (other, "clients closing mid-write");
  if (tl_cmd (other, NBD_CMD_READ, 0, 768 * 1024, sizeof back, back, NULL,
              NBDP_LAYOUT_AUTO) != 0 || back[0] != 0x3c)
    tl_fail ("data at 768K (outside the aborted writes) changed (byte"
             " 0x%02x, expected 0x3c)", back[0]);
  nbdp_client_disc (other);
  nbdp_client_free (other);
  tl_check_alive (&s, "clients closing mid-write");
}

static const struct tl_case cases[] = {
  { "bad-option-magic", case_bad_option_magic },
  { "bad-client-flags", case_bad_client_flags },
  { "option-short-data", case_option_short_data },
  { "option-big", case_option_big },
  { "export-name-4096", case_export_name_4096 },
  { "export-name-4097", case_export_name_4097 },
  { "export-name-nul", case_export_name_nul },
  { "info-name-too-long", case_info_name_too_long },
  { "unknown-option", case_unknown_option },
  { "bad-request-magic", case_bad_request_magic },
  { "unknown-command", case_unknown_command },
  { "unknown-flag", case_unknown_flag },
  { "past-eof", case_past_eof },
  { "offset-wrap", case_offset_wrap },
  { "zero-length", case_zero_length },
  { "write-too-large", case_write_too_large },
  { "disconnect-mid-write", case_disconnect_mid_write },
};

TL_MAIN (cases)
