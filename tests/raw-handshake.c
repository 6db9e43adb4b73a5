/* nbd-conformance: handshake forms of nbd-refserver with the raw client,
 * one case per binary (tests/bin/raw-handshake-CASE):
 *   oldstyle             --oldstyle: the 152-byte greeting, then simple
 *                        replies; data shared between connections
 *   export-name          NBD_OPT_EXPORT_NAME without NO_ZEROES: 124 zero
 *                        bytes follow the size and flags
 *   export-name-no-zeroes  with NBD_FLAG_C_NO_ZEROES: no padding
 *   export-name-unknown  an unknown name: the server closes
 *   not-fixed-newstyle   a client without NBD_FLAG_C_FIXED_NEWSTYLE can
 *                        still use NBD_OPT_EXPORT_NAME
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "codec.h"
#include "nbd-proto.h"
#include "testlib.h"

static const char *const two_exports[] = {
  "--export", "name=second,memory=3M", "memory", "2M", NULL
};

/* Write a pattern, read it back, on a connection in transmission. */
static void
write_read (struct nbdp_client *c, uint64_t off, unsigned char pat,
            const char *what)
{
  unsigned char buf[4096], back[4096];
  int r;

  memset (buf, pat, sizeof buf);
  r = tl_cmd (c, NBD_CMD_WRITE, 0, off, sizeof buf, NULL, buf,
              NBDP_LAYOUT_AUTO);
  if (r != 0)
    tl_fail ("%s: WRITE 4096 at %" PRIu64 ": got %s; expected success",
             what, off, tl_errname (r));
  r = tl_cmd (c, NBD_CMD_READ, 0, off, sizeof back, back, NULL,
              NBDP_LAYOUT_AUTO);
  if (r != 0 || memcmp (buf, back, sizeof buf) != 0)
    tl_fail ("%s: READ 4096 at %" PRIu64 ": got %s, byte 0x%02x; expected"
             " 0x%02x", what, off, tl_errname (r), back[0], pat);
  tl_ok ("%s: write and read back at %" PRIu64, what, off);
}

/* proto.md "Oldstyle negotiation": NBDMAGIC, cliserv magic, size, 32 bits
 * of flags (the transmission flags in the low 16), 124 zeroes; then
 * transmission with simple replies only ("Simple reply message").
 */
static void
case_oldstyle (void)
{
  struct tl_server s;
  static const char *const args[] = { "--oldstyle", "memory", "2M", NULL };
  struct nbdp_client *c, *c2;
  struct nbdp_greeting g;
  unsigned char back[4096];

  tl_start_server (&s, args);
  c = tl_connect (&s);
  if (nbdp_client_recv_greeting (c, &g) == -1)
    tl_fail ("reading the oldstyle greeting: %s", nbdp_client_error (c));
  if (!g.oldstyle || g.version != NBD_OLD_VERSION)
    tl_fail ("greeting: got version magic 0x%016" PRIx64 "; expected the"
             " oldstyle 0x%016" PRIx64, g.version, NBD_OLD_VERSION);
  if (g.size != 2 * TL_MIB)
    tl_fail ("oldstyle export size %" PRIu64 "; expected 2097152", g.size);
  if (!(g.eflags & NBD_FLAG_HAS_FLAGS))
    tl_fail ("oldstyle flags 0x%x lack NBD_FLAG_HAS_FLAGS", g.eflags);
  if (g.eflags & NBD_FLAG_SEND_DF)
    tl_fail ("oldstyle flags 0x%x have NBD_FLAG_SEND_DF without structured"
             " replies (proto.md \"Transmission flags\": MUST be clear)",
             g.eflags);
  if (g.padding_nonzero)
    tl_fail ("the 124 reserved bytes of the oldstyle greeting are not zero");
  tl_ok ("oldstyle greeting: size %" PRIu64 ", flags 0x%x", g.size, g.eflags);
  write_read (c, 8192, 0x4f, "oldstyle connection");

  c2 = tl_connect (&s);
  if (nbdp_client_recv_greeting (c2, &g) == -1 || !g.oldstyle)
    tl_fail ("second oldstyle connection: %s", nbdp_client_error (c2));
  if (tl_cmd (c2, NBD_CMD_READ, 0, 8192, sizeof back, back, NULL,
              NBDP_LAYOUT_AUTO) != 0 || back[0] != 0x4f)
    tl_fail ("second oldstyle connection: READ at 8192 got byte 0x%02x;"
             " expected 0x4f written by the first", back[0]);
  tl_ok ("second oldstyle connection sees the first one's data");
  nbdp_client_disc (c2);
  nbdp_client_free (c2);
  nbdp_client_disc (c);
  nbdp_client_free (c);
  if (!tl_server_running (&s))
    tl_fail ("oldstyle server exited after its clients disconnected");
}

static struct nbdp_client *
export_name (const struct tl_server *s, uint32_t cflags, const char *name,
             struct nbdp_export *exp)
{
  struct nbdp_client *c = tl_newstyle (s, cflags);

  if (nbdp_client_opt_export_name (c, name, exp) == -1)
    tl_fail ("NBD_OPT_EXPORT_NAME \"%s\" (client flags 0x%" PRIx32 "): %s",
             name, cflags, nbdp_client_error (c));
  return c;
}

/* proto.md "Newstyle negotiation": the reply to NBD_OPT_EXPORT_NAME is
 * size, flags and 124 zero bytes "unless NBD_FLAG_C_NO_ZEROES was
 * negotiated".  The client reads exactly that; the first transmission
 * reply only parses if the padding was right.
 */
static void
case_export_name (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  struct nbdp_export exp = { 0 };

  tl_start_server (&s, two_exports);
  c = export_name (&s, NBD_FLAG_C_FIXED_NEWSTYLE, "", &exp);
  if (c->size != 2 * TL_MIB)
    tl_fail ("EXPORT_NAME \"\": size %" PRIu64 "; expected 2097152", c->size);
  if (exp.padding_nonzero)
    tl_fail ("EXPORT_NAME without NO_ZEROES: the 124 padding bytes are not"
             " all zero");
  tl_ok ("EXPORT_NAME \"\": size, flags 0x%x, 124 zero bytes", c->eflags);
  write_read (c, 0, 0x12, "EXPORT_NAME connection");
  nbdp_client_disc (c);
  nbdp_client_free (c);

  c = export_name (&s, NBD_FLAG_C_FIXED_NEWSTYLE, "second", &exp);
  if (c->size != 3 * TL_MIB)
    tl_fail ("EXPORT_NAME \"second\": size %" PRIu64 "; expected 3145728",
             c->size);
  write_read (c, 4096, 0x13, "EXPORT_NAME \"second\"");
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "EXPORT_NAME sessions");
}

static void
case_export_name_no_zeroes (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  struct nbdp_export exp = { 0 };

  tl_start_server (&s, two_exports);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  if (!(c->gflags & NBD_FLAG_NO_ZEROES))
    tl_fail ("handshake flags 0x%x: NBD_FLAG_NO_ZEROES not offered", c->gflags);
  if (nbdp_client_opt_export_name (c, "second", &exp) == -1)
    tl_fail ("NBD_OPT_EXPORT_NAME with NO_ZEROES: %s", nbdp_client_error (c));
  if (c->size != 3 * TL_MIB)
    tl_fail ("EXPORT_NAME \"second\" (NO_ZEROES): size %" PRIu64
             "; expected 3145728", c->size);
  /* Had the server sent the 124 zeroes, this reply would not parse. */
  write_read (c, 0, 0x31, "EXPORT_NAME with NO_ZEROES");
  tl_ok ("no padding after NBD_OPT_EXPORT_NAME with NO_ZEROES");
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "EXPORT_NAME with NO_ZEROES");
}

/* proto.md "NBD_OPT_EXPORT_NAME": "If the chosen export does not exist
 * ... the server MUST terminate the session."
 */
static void
case_export_name_unknown (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  struct nbdp_export exp = { 0 };

  tl_start_server (&s, two_exports);
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE);
  if (nbdp_client_opt_export_name (c, "no-such-export", &exp) == 0)
    tl_fail ("sent NBD_OPT_EXPORT_NAME \"no-such-export\"; got an export of"
             " size %" PRIu64 "; expected the server to close", c->size);
  if (c->failure != NBDP_FAIL_REFUSED)
    tl_fail ("sent NBD_OPT_EXPORT_NAME \"no-such-export\"; got %s; expected"
             " the server to close the connection", nbdp_client_error (c));
  tl_ok ("unknown export with EXPORT_NAME: connection closed");
  nbdp_client_free (c);
  tl_check_alive (&s, "EXPORT_NAME of an unknown export");
}

/* proto.md "Newstyle negotiation": a client that does not set
 * NBD_FLAG_C_FIXED_NEWSTYLE speaks plain newstyle, where
 * NBD_OPT_EXPORT_NAME is the one option; the server must serve it.
 */
static void
case_not_fixed_newstyle (void)
{
  struct tl_server s;
  struct nbdp_client *c;
  struct nbdp_export exp = { 0 };

  tl_start_server (&s, two_exports);
  c = export_name (&s, 0, "second", &exp);
  if (c->size != 3 * TL_MIB)
    tl_fail ("EXPORT_NAME (client flags 0): size %" PRIu64
             "; expected 3145728", c->size);
  write_read (c, 0, 0x77, "non-fixed newstyle client");
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "a non-fixed newstyle client");
}

static const struct tl_case cases[] = {
  { "oldstyle", case_oldstyle },
  { "export-name", case_export_name },
  { "export-name-no-zeroes", case_export_name_no_zeroes },
  { "export-name-unknown", case_export_name_unknown },
  { "not-fixed-newstyle", case_not_fixed_newstyle },
};

TL_MAIN (cases)
