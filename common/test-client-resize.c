/* nbd-conformance: unit tests of common/client-resize.c and of the
 * extension hooks it uses in client.c.  The server side of a socketpair
 * is scripted in advance: all of its bytes are written before the client
 * starts (they fit in the socket buffer), and cookies are predictable
 * (1, 2, ...), so no thread and no timing is involved.  What the client
 * sends is not read (the buffer holds it too).
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client-resize.h"
#include "codec.h"
#include "io.h"

/* ---- a scripted server --------------------------------------------- */

struct script {
  unsigned char b[32768];
  size_t n;
};

static void
put (struct script *s, const void *p, size_t len)
{
  assert_true (s->n + len <= sizeof s->b);
  memcpy (s->b + s->n, p, len);
  s->n += len;
}

static void
greeting (struct script *s)
{
  unsigned char g[18];

  memcpy (g, "NBDMAGIC", 8);
  nbdp_put64 (g + 8, NBD_NEW_VERSION);
  nbdp_put16 (g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  put (s, g, 18);
}

static void
opt_reply (struct script *s, uint32_t opt, uint32_t rep, const void *data,
           uint32_t len)
{
  unsigned char h[NBDP_OPTION_REPLY_SIZE];
  struct nbdp_option_reply r = { .magic = NBD_REP_MAGIC, .option = opt,
                                 .reply = rep, .length = len };

  nbdp_encode_option_reply (h, &r);
  put (s, h, sizeof h);
  if (len)
    put (s, data, len);
}

/* INFO_EXPORT (+ INFO_RESIZE if info) and ACK for a GO. */
static void
go_reply (struct script *s, uint64_t size, uint16_t eflags,
          const struct nbdp_rz_info *info)
{
  unsigned char b[22];

  nbdp_put16 (b, NBD_INFO_EXPORT);
  nbdp_put64 (b + 2, size);
  nbdp_put16 (b + 10, NBD_FLAG_HAS_FLAGS | eflags);
  opt_reply (s, NBD_OPT_GO, NBD_REP_INFO, b, 12);
  if (info) {
    nbdp_rz_encode_info (b, info);
    opt_reply (s, NBD_OPT_GO, NBD_REP_INFO, b, 22);
  }
  opt_reply (s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
}

static void
chunk (struct script *s, bool ext, uint16_t flags, uint16_t type,
       uint64_t cookie, uint64_t offset, const void *payload, uint32_t len)
{
  unsigned char h[NBDP_EXTENDED_REPLY_SIZE];
  struct nbdp_reply r = {
    .kind = ext ? NBDP_REPLY_EXTENDED : NBDP_REPLY_STRUCTURED,
    .magic = ext ? NBD_EXTENDED_REPLY_MAGIC : NBD_STRUCTURED_REPLY_MAGIC,
    .flags = flags, .type = type, .cookie = cookie, .offset = offset,
    .length = len,
  };

  put (s, h, nbdp_encode_reply (h, &r));
  if (len)
    put (s, payload, len);
}

static void
size_chunk (struct script *s, bool ext, uint16_t flags, uint64_t cookie,
            uint64_t size, uint32_t ev, uint32_t seq, uint32_t len)
{
  unsigned char p[20] = { 0 };
  struct nbdp_rz_chunk ch = { .size = size, .events = ev, .sequence = seq };

  nbdp_rz_encode_chunk (p, &ch);
  chunk (s, ext, flags, NBD_REPLY_TYPE_RESIZE, cookie, 0, p, len);
}

static void
simple (struct script *s, uint64_t cookie, uint32_t error)
{
  unsigned char h[NBDP_SIMPLE_REPLY_SIZE];
  struct nbdp_reply r = { .kind = NBDP_REPLY_SIMPLE,
                          .magic = NBD_SIMPLE_REPLY_MAGIC, .error = error,
                          .cookie = cookie };

  put (s, h, nbdp_encode_reply (h, &r));
}

/* A client connected to the script. */
static struct nbdp_rz_client *
client (const struct script *s)
{
  struct nbdp_rz_client *rc = nbdp_rz_client_new ();
  int sv[2];

  assert_non_null (rc);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (nbdp_write_full (sv[1], s->b, s->n), 0);
  shutdown (sv[1], SHUT_WR);
  /* The server end stays open (client writes must not fail) until the
   * test ends; it is closed with the process.
   */
  nbdp_rz_set_fd (rc, sv[0]);
  nbdp_client_set_timeout (rc->c, 5000);
  return rc;
}

static const struct nbdp_rz_info everything = {
  .present = true, .capabilities = NBD_RESIZE_MASK_FEATURES,
  .active = NBD_RESIZE_MASK_FEATURES & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW,
  .granularity = 4096,
};

static const struct nbdp_rz_opts neg_opts = {
  .encoding = NBDP_RZ_ENC_NEGOTIATED, .structured = true,
  .features = NBD_RESIZE_MASK_FEATURES & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW,
  .no_block_size = true,
};

/* Greeting, SR ack, RESIZE ack, GO with everything. */
static void
negotiated_handshake (struct script *s)
{
  greeting (s);
  opt_reply (s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  opt_reply (s, NBD_OPT_RESIZE, NBD_REP_ACK, NULL, 0);
  go_reply (s, 1 << 20, NBD_FLAG_SEND_RESIZE, &everything);
}

/* ---- tests --------------------------------------------------------- */

static void
test_negotiated_set_size (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;

  negotiated_handshake (&s);
  size_chunk (&s, false, NBD_REPLY_FLAG_DONE, 1, 3002368,
              NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED |
              NBD_RESIZE_EV_ROUNDED, 42, 16);
  rc = client (&s);
  assert_int_equal (nbdp_rz_handshake (rc, &neg_opts), 0);
  assert_int_equal (rc->st.mode, NBDP_RZ_MODE_NEGOTIATED);
  assert_int_equal (rc->st.active, everything.active);
  assert_int_equal (nbdp_rz_granularity (&rc->st), 4096);
  assert_int_equal (nbdp_rz_set_size (rc, 3000000, 0, &res), 0);
  assert_true (res.have_chunk);
  assert_true (res.size == 3002368);
  assert_true (rc->st.size == 3002368);         /* RZ-CLI-17 */
  assert_int_equal (rc->st.seq, 42);
  assert_int_equal (rc->vs.n, 0);
  nbdp_rz_client_free (rc);
}

static void
test_extended_query (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;
  struct nbdp_rz_opts o = neg_opts;

  o.extended = true;
  greeting (&s);
  opt_reply (&s, NBD_OPT_EXTENDED_HEADERS, NBD_REP_ACK, NULL, 0);
  opt_reply (&s, NBD_OPT_RESIZE, NBD_REP_ACK, NULL, 0);
  go_reply (&s, 1 << 20, NBD_FLAG_SEND_RESIZE, &everything);
  size_chunk (&s, true, NBD_REPLY_FLAG_DONE, 1, 1 << 20,
              NBD_RESIZE_EV_INITIAL, 7, 16);
  rc = client (&s);
  assert_int_equal (nbdp_rz_handshake (rc, &o), 0);
  assert_true (rc->c->extended);
  assert_int_equal (nbdp_rz_query (rc, &res), 0);
  assert_true (res.chunk.size == 1 << 20);
  assert_int_equal (res.chunk.sequence, 7);
  assert_int_equal (rc->vs.n, 0);
  nbdp_rz_client_free (rc);
}

static void
test_bad_length_disconnects (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;

  negotiated_handshake (&s);
  size_chunk (&s, false, NBD_REPLY_FLAG_DONE, 1, 2 << 20,
              NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED, 1, 20);
  rc = client (&s);
  assert_int_equal (nbdp_rz_handshake (rc, &neg_opts), 0);
  assert_int_equal (nbdp_rz_set_size (rc, 2 << 20, 0, &res), -1);
  assert_int_equal (rc->status, NBDP_RZ_VIOLATION);
  assert_true (nbdp_rz_violations_has (&rc->vs, "RZ-CHUNK-1"));
  assert_true (nbdp_rz_violations_has (&rc->vs, "RZ-CLI-27"));
  assert_int_equal (rc->c->fd, -1);             /* hard disconnect */
  nbdp_rz_client_free (rc);
}

static void
test_subscription (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;
  struct nbdp_rz_chunk ch;

  negotiated_handshake (&s);
  size_chunk (&s, false, 0, 1, 1 << 20, NBD_RESIZE_EV_INITIAL, 10, 16);
  size_chunk (&s, false, 0, 1, 2 << 20, NBD_RESIZE_EV_GREW |
              NBD_RESIZE_EV_ZEROED | NBD_RESIZE_EV_REMOTE, 11, 16);
  /* Unsubscribe (cookie 2): the subscription ends first. */
  chunk (&s, false, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 1, 0, NULL, 0);
  size_chunk (&s, false, NBD_REPLY_FLAG_DONE, 2, 2 << 20,
              NBD_RESIZE_EV_INITIAL, 11, 16);
  rc = client (&s);
  assert_int_equal (nbdp_rz_handshake (rc, &neg_opts), 0);
  assert_int_equal (nbdp_rz_subscribe (rc, false, &res), 0);
  assert_true (res.chunk.size == 1 << 20);
  assert_int_equal (nbdp_rz_next_event (rc, 2000, &ch), 1);
  assert_true (ch.size == 2 << 20);
  assert_int_equal (nbdp_rz_unsubscribe (rc, &res), 0);
  assert_true (rc->sub_ended);
  assert_int_equal (rc->vs.n, 0);
  nbdp_rz_client_free (rc);
}

static void
test_legacy (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc;
  struct nbdp_rz_result res;
  struct nbdp_rz_opts o = neg_opts;

  o.structured = false;
  greeting (&s);
  opt_reply (&s, NBD_OPT_RESIZE, NBD_REP_ERR_UNSUP, NULL, 0);
  go_reply (&s, 1 << 20, NBD_FLAG_SEND_RESIZE, NULL);
  simple (&s, 1, 0);
  rc = client (&s);
  assert_int_equal (nbdp_rz_handshake (rc, &o), 0);
  assert_int_equal (rc->st.mode, NBDP_RZ_MODE_LEGACY);
  assert_true (rc->opt_refused);
  /* Legacy mode has no query: the client will not send one. */
  assert_int_equal (nbdp_rz_query (rc, &res), -1);
  assert_int_equal (rc->status, NBDP_RZ_UNSUPPORTED);
  if (nbdp_rz_set_size (rc, 2 << 20, 0, &res) == -1)
    fail_msg ("legacy set size: %s", nbdp_rz_error (rc));
  assert_false (res.have_chunk);
  assert_true (rc->st.size == 2 << 20);         /* RZ-CLI-18 */
  assert_int_equal (rc->vs.n, 0);
  nbdp_rz_client_free (rc);
}

/* Without the hooks, client.c keeps treating an unknown chunk type as a
 * violation (the hook change must not weaken the raw client).
 */
static void
test_plain_client_unknown_chunk (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_client *c = nbdp_client_new ();
  struct nbdp_handshake_opts o = { .structured_reply = true };
  unsigned char buf[512];
  int sv[2];

  greeting (&s);
  opt_reply (&s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  {
    unsigned char b[14];
    nbdp_put16 (b, NBD_INFO_EXPORT);
    nbdp_put64 (b + 2, 1 << 20);
    nbdp_put16 (b + 10, NBD_FLAG_HAS_FLAGS);
    opt_reply (&s, NBD_OPT_GO, NBD_REP_INFO, b, 12);
    opt_reply (&s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
  }
  size_chunk (&s, false, 0, 1, 1 << 20, NBD_RESIZE_EV_INITIAL, 1, 16);
  chunk (&s, false, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 1, 0, NULL, 0);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (nbdp_write_full (sv[1], s.b, s.n), 0);
  nbdp_client_set_fd (c, sv[0]);
  assert_int_equal (nbdp_client_handshake (c, &o), 0);
  assert_int_equal (nbdp_client_pread (c, buf, sizeof buf, 0, 0), -1);
  assert_int_equal (c->failure, NBDP_FAIL_PROTOCOL);
  assert_non_null (strstr (nbdp_client_error (c), "unknown non-error chunk"));
  /* SR-TYPE-1: a hard disconnect at once, not a wait for the DONE. */
  assert_true (c->dead);
  nbdp_client_free (c);
  close (sv[1]);
}

/* Reads follow NBD_INFO_BLOCK_SIZE (SIZE-25, SIZE-31): 10000 bytes at
 * offset 100 with minimum 512 and maximum 4096 go out as [0, 512),
 * [512, 4608), [4608, 8704), [8704, 9728) and [9728, 10240), one at a
 * time (cookies 1 to 5); the replies only fit those requests, so any
 * other split shows as a violation.
 */
static void
test_read_split (void **state)
{
  static const uint64_t piece[][2] = {
    { 0, 512 }, { 512, 4096 }, { 4608, 4096 }, { 8704, 1024 }, { 9728, 512 },
  };
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc;
  struct nbdp_rz_opts o = neg_opts;
  unsigned char b[8 + 4096], out[10000];
  size_t i, j;

  o.no_block_size = false;
  greeting (&s);
  opt_reply (&s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  opt_reply (&s, NBD_OPT_RESIZE, NBD_REP_ACK, NULL, 0);
  nbdp_put16 (b, NBD_INFO_BLOCK_SIZE);
  nbdp_put32 (b + 2, 512);
  nbdp_put32 (b + 6, 4096);
  nbdp_put32 (b + 10, 4096);
  opt_reply (&s, NBD_OPT_GO, NBD_REP_INFO, b, 14);
  go_reply (&s, 1 << 20, NBD_FLAG_SEND_RESIZE, &everything);
  for (i = 0; i < 5; i++) {
    nbdp_put64 (b, piece[i][0]);
    for (j = 0; j < piece[i][1]; j++)
      b[8 + j] = (unsigned char) ((piece[i][0] + j) * 7);
    chunk (&s, false, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, i + 1,
           0, b, 8 + piece[i][1]);
  }
  rc = client (&s);
  assert_int_equal (nbdp_rz_handshake (rc, &o), 0);
  assert_true (rc->c->have_block_size);
  if (nbdp_rz_pread (rc, out, sizeof out, 100, 0) == -1)
    fail_msg ("split read: %s", nbdp_rz_error (rc));
  for (j = 0; j < sizeof out; j++)
    if (out[j] != (unsigned char) ((100 + j) * 7))
      fail_msg ("byte %zu of the read is 0x%02x", j, out[j]);
  assert_int_equal (rc->vs.n, 0);
  assert_true (rc->c->next_cookie == 6);
  nbdp_rz_client_free (rc);
}

/* After a refused NBD_OPT_GO, nbdp_rz_disc ends the handshake softly
 * with NBD_OPT_ABORT (HS-TERM-9), not NBD_CMD_DISC.
 */
static void
test_abort_after_refused_go (void **state)
{
  struct script s = { .n = 0 };
  struct nbdp_rz_client *rc = nbdp_rz_client_new ();
  unsigned char got[4096];
  ssize_t n, i;
  bool abort_seen = false;
  int sv[2];

  greeting (&s);
  opt_reply (&s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  opt_reply (&s, NBD_OPT_RESIZE, NBD_REP_ACK, NULL, 0);
  opt_reply (&s, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "gone", 4);
  opt_reply (&s, NBD_OPT_ABORT, NBD_REP_ACK, NULL, 0);
  assert_non_null (rc);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (nbdp_write_full (sv[1], s.b, s.n), 0);
  shutdown (sv[1], SHUT_WR);
  nbdp_rz_set_fd (rc, sv[0]);
  nbdp_client_set_timeout (rc->c, 5000);
  assert_int_equal (nbdp_rz_handshake (rc, &neg_opts), -1);
  assert_int_equal (rc->status, NBDP_RZ_REFUSED);
  assert_int_equal (nbdp_rz_disc (rc), 0);
  assert_int_equal (rc->c->last_rep, NBD_REP_ACK);
  nbdp_rz_client_free (rc);
  /* The client's bytes: the last option is NBD_OPT_ABORT, no request. */
  n = read (sv[1], got, sizeof got);
  assert_true (n >= 16);
  for (i = 0; i + 16 <= n; i++)
    if (nbdp_get64 (got + i) == NBD_NEW_VERSION &&
        nbdp_get32 (got + i + 8) == NBD_OPT_ABORT)
      abort_seen = true;
  assert_true (abort_seen);
  assert_int_equal (nbdp_get32 (got + n - 8), NBD_OPT_ABORT);
  close (sv[1]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_negotiated_set_size),
    cmocka_unit_test (test_extended_query),
    cmocka_unit_test (test_bad_length_disconnects),
    cmocka_unit_test (test_subscription),
    cmocka_unit_test (test_legacy),
    cmocka_unit_test (test_plain_client_unknown_chunk),
    cmocka_unit_test (test_read_split),
    cmocka_unit_test (test_abort_after_refused_go),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
