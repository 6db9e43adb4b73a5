/* nbd-conformance: unit tests of the raw client (common/client.c) against
 * a scripted fake server on the other end of a socketpair.  Each test
 * runs a small script in a thread that plays the server side byte by
 * byte, including broken servers: oversized lengths, bad magics, chunks
 * outside the request, overlapping chunks, early DONE, silence.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "codec.h"
#include "io.h"

/* ---- The fake server side (runs in a thread; no cmocka calls) ---- */

struct peer {
  int fd;
  void (*script) (struct peer *);
  bool failed;                  /* the script saw something unexpected */
  pthread_t thread;
};

#define PEER_CHECK(p, cond) do { if (!(cond)) { (p)->failed = true; return; } } while (0)

static int
peer_write (struct peer *p, const void *b, size_t n)
{
  return nbdp_write_full (p->fd, b, n);
}

static void
peer_greet (struct peer *p, uint16_t gflags)
{
  unsigned char b[18];

  nbdp_put64 (b, NBD_MAGIC);
  nbdp_put64 (b + 8, NBD_NEW_VERSION);
  nbdp_put16 (b + 16, gflags);
  peer_write (p, b, sizeof b);
}

static uint32_t
peer_cflags (struct peer *p)
{
  unsigned char b[4];

  if (nbdp_read_full (p->fd, b, 4) == -1)
    return UINT32_MAX;
  return nbdp_get32 (b);
}

/* Read an option; returns its number (UINT32_MAX on error), data in
 * buf (up to max), *len its length.
 */
static uint32_t
peer_opt (struct peer *p, void *buf, size_t max, uint32_t *len)
{
  unsigned char b[16];
  struct nbdp_option o;

  if (nbdp_read_full (p->fd, b, 16) == -1)
    return UINT32_MAX;
  nbdp_decode_option (b, &o);
  if (o.magic != NBD_NEW_VERSION || o.length > max ||
      nbdp_read_full (p->fd, buf, o.length) == -1)
    return UINT32_MAX;
  *len = o.length;
  return o.option;
}

static void
peer_rep (struct peer *p, uint32_t opt, uint32_t rep, const void *data,
          uint32_t len)
{
  unsigned char b[20];
  struct nbdp_option_reply r = { NBD_REP_MAGIC, opt, rep, len };

  nbdp_encode_option_reply (b, &r);
  peer_write (p, b, 20);
  if (len)
    peer_write (p, data, len);
}

static void
peer_info_export (struct peer *p, uint32_t opt, uint64_t size,
                  uint16_t eflags)
{
  unsigned char b[12];

  nbdp_put16 (b, NBD_INFO_EXPORT);
  nbdp_put64 (b + 2, size);
  nbdp_put16 (b + 10, eflags);
  peer_rep (p, opt, NBD_REP_INFO, b, 12);
}

static bool
peer_req (struct peer *p, bool ext, struct nbdp_request *req)
{
  unsigned char b[32];

  if (nbdp_read_full (p->fd, b, ext ? 32 : 28) == -1)
    return false;
  nbdp_decode_request (b, ext, req);
  return true;
}

static void
peer_chunk (struct peer *p, uint64_t cookie, uint16_t flags, uint16_t type,
            const void *payload, uint32_t len)
{
  unsigned char b[20];
  struct nbdp_reply r = { .kind = NBDP_REPLY_STRUCTURED,
                          .magic = NBD_STRUCTURED_REPLY_MAGIC,
                          .flags = flags, .type = type, .cookie = cookie,
                          .length = len };

  nbdp_encode_reply (b, &r);
  peer_write (p, b, 20);
  if (len)
    peer_write (p, payload, len);
}

static void
peer_ext_chunk (struct peer *p, uint64_t cookie, uint16_t flags,
                uint16_t type, uint64_t offset, const void *payload,
                uint64_t len)
{
  unsigned char b[32];
  struct nbdp_reply r = { .kind = NBDP_REPLY_EXTENDED,
                          .magic = NBD_EXTENDED_REPLY_MAGIC,
                          .flags = flags, .type = type, .cookie = cookie,
                          .offset = offset, .length = len };

  nbdp_encode_reply (b, &r);
  peer_write (p, b, 32);
  if (len)
    peer_write (p, payload, len);
}

static void
peer_simple (struct peer *p, uint64_t cookie, uint32_t error,
             const void *data, size_t len)
{
  unsigned char b[16];
  struct nbdp_reply r = { .kind = NBDP_REPLY_SIMPLE,
                          .magic = NBD_SIMPLE_REPLY_MAGIC,
                          .error = error, .cookie = cookie };

  nbdp_encode_reply (b, &r);
  peer_write (p, b, 16);
  if (len)
    peer_write (p, data, len);
}

static void
peer_data (struct peer *p, uint64_t cookie, uint16_t flags, uint64_t off,
           const void *data, uint32_t len)
{
  unsigned char *b = malloc (8 + len);

  nbdp_put64 (b, off);
  memcpy (b + 8, data, len);
  peer_chunk (p, cookie, flags, NBD_REPLY_TYPE_OFFSET_DATA, b, 8 + len);
  free (b);
}

static void
peer_hole (struct peer *p, uint64_t cookie, uint16_t flags, uint64_t off,
           uint32_t len)
{
  unsigned char b[12];

  nbdp_put64 (b, off);
  nbdp_put32 (b + 8, len);
  peer_chunk (p, cookie, flags, NBD_REPLY_TYPE_OFFSET_HOLE, b, 12);
}

/* Wait for the client to hang up, so that the socket stays open until
 * the client side is done.
 */
static void
peer_drain (struct peer *p)
{
  char b[256];

  while (read (p->fd, b, sizeof b) > 0)
    ;
}

static void *
peer_main (void *arg)
{
  struct peer *p = arg;

  p->script (p);
  peer_drain (p);
  close (p->fd);
  return NULL;
}

/* Start the peer; return a client connected to it. */
static struct nbdp_client *
start (struct peer *p, void (*script) (struct peer *))
{
  int sv[2];
  struct nbdp_client *c;

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  p->fd = sv[1];
  p->script = script;
  p->failed = false;
  assert_int_equal (pthread_create (&p->thread, NULL, peer_main, p), 0);
  c = nbdp_client_new ();
  assert_non_null (c);
  assert_int_equal (nbdp_client_set_fd (c, sv[0]), 0);
  nbdp_client_set_timeout (c, 5000);
  return c;
}

static void
finish (struct peer *p, struct nbdp_client *c)
{
  nbdp_client_free (c);
  pthread_join (p->thread, NULL);
  assert_false (p->failed);
}

static void
assert_error_mentions (struct nbdp_client *c, const char *what)
{
  if (strstr (nbdp_client_error (c), what) == NULL)
    fail_msg ("error \"%s\" does not mention \"%s\"", nbdp_client_error (c),
              what);
}

/* Newstyle greeting, client flags, SR and GO (with block size). */
static void
peer_handshake_sr (struct peer *p)
{
  unsigned char buf[1024], bs[14];
  uint32_t len, opt;

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  PEER_CHECK (p, peer_cflags (p) ==
              (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES));
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_STRUCTURED_REPLY && len == 0);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_GO);
  /* name length 4 "disk", 1 info request: BLOCK_SIZE */
  PEER_CHECK (p, len == 4 + 4 + 2 + 2 && nbdp_get32 (buf) == 4 &&
              memcmp (buf + 4, "disk", 4) == 0 && nbdp_get16 (buf + 8) == 1 &&
              nbdp_get16 (buf + 10) == NBD_INFO_BLOCK_SIZE);
  nbdp_put16 (bs, NBD_INFO_BLOCK_SIZE);
  nbdp_put32 (bs + 2, 1);
  nbdp_put32 (bs + 6, 4096);
  nbdp_put32 (bs + 10, 1 << 20);
  peer_rep (p, opt, NBD_REP_INFO, bs, 14);
  peer_info_export (p, opt, 1 << 20, NBD_FLAG_HAS_FLAGS);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);
}

static const struct nbdp_handshake_opts sr_opts = {
  .export_name = "disk", .no_zeroes = true, .structured_reply = true,
};

/* ---- Tests ---- */

static void
script_good_read (struct peer *p)
{
  struct nbdp_request req;

  peer_handshake_sr (p);
  if (p->failed)
    return;
  PEER_CHECK (p, peer_req (p, false, &req));
  PEER_CHECK (p, req.magic == NBD_REQUEST_MAGIC && req.type == NBD_CMD_READ &&
              req.offset == 100 && req.count == 10);
  /* Out of order: tail data, then a hole, then the head. */
  peer_data (p, req.cookie, 0, 106, "WXYZ", 4);
  peer_hole (p, req.cookie, 0, 102, 4);
  peer_data (p, req.cookie, NBD_REPLY_FLAG_DONE, 100, "AB", 2);
}

static void
test_handshake_and_read (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_good_read);
  char buf[10];

  if (nbdp_client_handshake (c, &sr_opts) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_true (c->structured);
  assert_true (c->transmission);
  assert_int_equal (c->size, 1 << 20);
  assert_true (c->have_block_size);
  assert_int_equal (c->pref_block, 4096);
  memset (buf, 'x', sizeof buf);
  if (nbdp_client_pread (c, buf, 10, 100, 0) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_memory_equal (buf, "AB\0\0\0\0WXYZ", 10);
  finish (&p, c);
}

static void
script_bad_read (struct peer *p, int how)
{
  struct nbdp_request req;

  peer_handshake_sr (p);
  if (p->failed)
    return;
  PEER_CHECK (p, peer_req (p, false, &req));
  switch (how) {
  case 0:                       /* data past the end of the request */
    peer_data (p, req.cookie, NBD_REPLY_FLAG_DONE, 108, "WXYZ", 4);
    break;
  case 1:                       /* overlapping chunks */
    peer_data (p, req.cookie, 0, 100, "ABCDEF", 6);
    peer_hole (p, req.cookie, NBD_REPLY_FLAG_DONE, 104, 6);
    break;
  case 2:                       /* DONE before everything was sent */
    peer_data (p, req.cookie, NBD_REPLY_FLAG_DONE, 100, "ABCDEF", 6);
    break;
  case 3:                       /* simple reply to READ despite SR */
    peer_simple (p, req.cookie, 0, "0123456789", 10);
    break;
  case 4:                       /* bogus reply magic */
    peer_write (p, "\x25\x60\x95\x13\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    break;
  case 5:                       /* huge chunk length */
    peer_chunk (p, req.cookie, 0, NBD_REPLY_TYPE_OFFSET_DATA, NULL, 0);
    {
      unsigned char b[20];
      struct nbdp_reply r = { .kind = NBDP_REPLY_STRUCTURED,
                              .magic = NBD_STRUCTURED_REPLY_MAGIC,
                              .type = NBD_REPLY_TYPE_OFFSET_DATA,
                              .cookie = req.cookie, .length = UINT32_MAX };
      nbdp_encode_reply (b, &r);
      peer_write (p, b, 20);
    }
    break;
  case 6:                       /* error chunk with message */
    {
      unsigned char b[6 + 4];
      nbdp_put32 (b, NBD_EIO);
      nbdp_put16 (b + 4, 4);
      memcpy (b + 6, "oops", 4);
      peer_chunk (p, req.cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                  b, sizeof b);
    }
    break;
  case 7:                       /* error chunk whose message overruns */
    {
      unsigned char b[6 + 4];
      nbdp_put32 (b, NBD_EIO);
      nbdp_put16 (b + 4, 400);
      memcpy (b + 6, "oops", 4);
      peer_chunk (p, req.cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                  b, sizeof b);
    }
    break;
  case 8:                       /* reply for a cookie never sent */
    peer_data (p, req.cookie + 1000, NBD_REPLY_FLAG_DONE, 100, "A", 1);
    break;
  case 9:                       /* unknown chunk type, no DONE, silence */
    peer_chunk (p, req.cookie, 0, 0x0063, "junk", 4);
    break;
  case 10:                      /* NONE without DONE, silence */
    peer_chunk (p, req.cookie, 0, NBD_REPLY_TYPE_NONE, NULL, 0);
    break;
  }
}

#define BAD_READ(n)                                                     \
  static void script_bad_read_##n (struct peer *p) { script_bad_read (p, n); }
BAD_READ (0) BAD_READ (1) BAD_READ (2) BAD_READ (3) BAD_READ (4)
BAD_READ (5) BAD_READ (6) BAD_READ (7) BAD_READ (8) BAD_READ (9)
BAD_READ (10)

static void
run_bad_read (void (*script) (struct peer *), enum nbdp_failure kind,
              const char *mention, int err)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script);
  char buf[10];

  if (nbdp_client_handshake (c, &sr_opts) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_int_equal (nbdp_client_pread (c, buf, 10, 100, 0), -1);
  assert_int_equal (errno, err);
  assert_int_equal (c->failure, kind);
  assert_error_mentions (c, mention);
  finish (&p, c);
}

static void
test_read_outside (void **state)
{
  run_bad_read (script_bad_read_0, NBDP_FAIL_PROTOCOL, "outside the request",
                EPROTO);
}

static void
test_read_overlap (void **state)
{
  run_bad_read (script_bad_read_1, NBDP_FAIL_PROTOCOL, "overlaps", EPROTO);
}

static void
test_read_early_done (void **state)
{
  run_bad_read (script_bad_read_2, NBDP_FAIL_PROTOCOL, "after 6 bytes",
                EPROTO);
}

static void
test_read_simple_with_sr (void **state)
{
  run_bad_read (script_bad_read_3, NBDP_FAIL_PROTOCOL, "simple reply",
                EPROTO);
}

static void
test_read_bad_magic (void **state)
{
  run_bad_read (script_bad_read_4, NBDP_FAIL_PROTOCOL, "0x25609513", EPROTO);
}

static void
test_read_huge_chunk (void **state)
{
  /* The first (empty) OFFSET_DATA chunk is itself a violation, but the
   * oversized second chunk is what ends the connection.
   */
  run_bad_read (script_bad_read_5, NBDP_FAIL_PROTOCOL, "4294967295",
                EPROTO);
}

static void
test_read_error_chunk (void **state)
{
  run_bad_read (script_bad_read_6, NBDP_FAIL_REFUSED, "NBD_EIO: oops", EIO);
}

static void
test_read_bad_error_chunk (void **state)
{
  run_bad_read (script_bad_read_7, NBDP_FAIL_PROTOCOL, "message length",
                EPROTO);
}

static void
test_read_unknown_cookie (void **state)
{
  run_bad_read (script_bad_read_8, NBDP_FAIL_PROTOCOL, "no request in flight",
                EPROTO);
}

/* Chunks that call for a hard disconnect (proto.md "Structured reply
 * types", SR-TYPE-1, SR-TYPE-5): the read fails at once and the
 * connection is dead, without waiting for a DONE the server never sends
 * (the old behaviour timed out: NBDP_FAIL_IO).
 */
static void
run_hard_disconnect (void (*script) (struct peer *), const char *mention)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script);
  char buf[10];

  if (nbdp_client_handshake (c, &sr_opts) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_int_equal (nbdp_client_pread (c, buf, 10, 100, 0), -1);
  assert_int_equal (c->failure, NBDP_FAIL_PROTOCOL);
  assert_true (c->dead);
  assert_error_mentions (c, mention);
  assert_error_mentions (c, "hard disconnect");
  /* Nothing more goes out, not even NBD_CMD_DISC. */
  assert_int_equal (nbdp_client_soft_disconnect (c), 0);
  assert_int_equal (nbdp_client_pread (c, buf, 10, 100, 0), -1);
  finish (&p, c);
}

static void
test_read_unknown_type (void **state)
{
  run_hard_disconnect (script_bad_read_9, "unknown non-error chunk type");
}

static void
test_read_none_without_done (void **state)
{
  run_hard_disconnect (script_bad_read_10, "without NBD_REPLY_FLAG_DONE");
}

/* Oversized option reply: a protocol failure, not a crash. */
static void
script_big_option_reply (struct peer *p)
{
  unsigned char b[20];
  struct nbdp_option_reply r = { NBD_REP_MAGIC, NBD_OPT_LIST,
                                 NBD_REP_SERVER, UINT32_MAX };

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE);
  peer_cflags (p);
  nbdp_encode_option_reply (b, &r);
  peer_write (p, b, 20);
}

static void
test_option_reply_too_big (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_big_option_reply);
  struct nbdp_opt_reply r;

  assert_int_equal (nbdp_client_recv_greeting (c, NULL), 0);
  assert_int_equal (nbdp_client_send_cflags (c, NBD_FLAG_C_FIXED_NEWSTYLE), 0);
  assert_int_equal (nbdp_client_recv_option_reply (c, &r, 1000), -1);
  assert_int_equal (c->failure, NBDP_FAIL_PROTOCOL);
  assert_true (c->dead);
  assert_error_mentions (c, "4294967295");
  assert_int_equal (r.reply, NBD_REP_SERVER);
  /* Everything after fails at once. */
  assert_int_equal (nbdp_client_opt_abort (c), -1);
  finish (&p, c);
}

/* Raw option with a declared length that differs from what is sent. */
static void
script_raw_option (struct peer *p)
{
  unsigned char b[16 + 3];

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE);
  peer_cflags (p);
  PEER_CHECK (p, nbdp_read_full (p->fd, b, sizeof b) == 0);
  PEER_CHECK (p, nbdp_get64 (b) == UINT64_C (0x1122334455667788) &&
              nbdp_get32 (b + 8) == 99 && nbdp_get32 (b + 12) == 1000 &&
              memcmp (b + 16, "abc", 3) == 0);
  peer_rep (p, 99, NBD_REP_ERR_UNSUP, "no", 2);
}

static void
test_raw_option (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_raw_option);
  struct nbdp_opt_reply r;

  assert_int_equal (nbdp_client_recv_greeting (c, NULL), 0);
  assert_int_equal (nbdp_client_send_cflags (c, 1), 0);
  assert_int_equal (nbdp_client_send_option_raw (c, UINT64_C (0x1122334455667788),
                                                 99, 1000, "abc", 3), 0);
  assert_int_equal (nbdp_client_recv_option_reply (c, &r, 100), 0);
  assert_int_equal (r.reply, NBD_REP_ERR_UNSUP);
  assert_int_equal (r.length, 2);
  assert_memory_equal (r.payload, "no", 3);
  finish (&p, c);
}

/* A GO refused with an error message. */
static void
script_go_refused (struct peer *p)
{
  unsigned char buf[256];
  uint32_t len, opt;

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE);
  peer_cflags (p);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_GO);
  peer_rep (p, opt, NBD_REP_ERR_UNKNOWN, "no such export", 14);
}

static void
test_go_refused (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_go_refused);

  assert_int_equal (nbdp_client_handshake (c, NULL), -1);
  assert_int_equal (c->failure, NBDP_FAIL_REFUSED);
  assert_int_equal (c->last_rep, NBD_REP_ERR_UNKNOWN);
  assert_error_mentions (c, "NBD_REP_ERR_UNKNOWN: no such export");
  finish (&p, c);
}

/* NBD_REP_ERR_SHUTDOWN to an option: the handshake stops (no GO), and
 * the soft disconnect of option haggling is NBD_OPT_ABORT (HS-TERM-14);
 * the server may close instead of acking it.
 */
static void
script_shutdown (struct peer *p)
{
  unsigned char buf[256];
  uint32_t len, opt;

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  peer_cflags (p);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_STRUCTURED_REPLY);
  peer_rep (p, opt, NBD_REP_ERR_SHUTDOWN, NULL, 0);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_ABORT && len == 0);
  shutdown (p->fd, SHUT_WR);    /* close instead of an ACK */
}

static void
test_shutdown_soft_disconnect (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_shutdown);

  assert_int_equal (nbdp_client_handshake (c, &sr_opts), -1);
  assert_int_equal (c->failure, NBDP_FAIL_REFUSED);
  assert_int_equal (c->last_rep, NBD_REP_ERR_SHUTDOWN);
  assert_false (c->transmission);
  if (nbdp_client_soft_disconnect (c) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  finish (&p, c);
}

/* After a refused GO the soft disconnect is an acked NBD_OPT_ABORT. */
static void
script_go_refused_abort (struct peer *p)
{
  unsigned char buf[256];
  uint32_t len, opt;

  script_go_refused (p);
  if (p->failed)
    return;
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_ABORT && len == 0);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);
}

static void
test_go_refused_abort (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_go_refused_abort);

  assert_int_equal (nbdp_client_handshake (c, NULL), -1);
  if (nbdp_client_soft_disconnect (c) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_int_equal (c->last_rep, NBD_REP_ACK);
  finish (&p, c);
}

/* Oldstyle greeting. */
static void
script_oldstyle (struct peer *p)
{
  unsigned char b[152] = { 0 };

  nbdp_put64 (b, NBD_MAGIC);
  nbdp_put64 (b + 8, NBD_OLD_VERSION);
  nbdp_put64 (b + 16, 12345);
  nbdp_put16 (b + 26, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
  peer_write (p, b, sizeof b);
}

static void
test_oldstyle (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_oldstyle);

  assert_int_equal (nbdp_client_handshake (c, NULL), 0);
  assert_true (c->oldstyle);
  assert_true (c->transmission);
  assert_int_equal (c->size, 12345);
  assert_int_equal (c->eflags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
  finish (&p, c);
}

/* EXPORT_NAME refused by closing; and accepted with the zero padding. */
static void
script_export_name (struct peer *p)
{
  unsigned char buf[256], b[10 + 124] = { 0 };
  uint32_t len, opt;

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  PEER_CHECK (p, peer_cflags (p) == NBD_FLAG_C_FIXED_NEWSTYLE);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_EXPORT_NAME && len == 1 && buf[0] == 'e');
  nbdp_put64 (b, 4096);
  nbdp_put16 (b + 8, 1);
  b[133] = 1;                   /* padding not zero */
  peer_write (p, b, sizeof b);
}

static void
test_export_name (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_export_name);
  struct nbdp_handshake_opts o = { .export_name = "e",
                                   .use_export_name = true };

  assert_int_equal (nbdp_client_recv_greeting (c, NULL), 0);
  assert_int_equal (nbdp_client_send_cflags (c, NBD_FLAG_C_FIXED_NEWSTYLE),
                    0);
  {
    struct nbdp_export exp;
    assert_int_equal (nbdp_client_opt_export_name (c, o.export_name, &exp),
                      0);
    assert_int_equal (exp.size, 4096);
    assert_true (exp.padding_nonzero);
  }
  assert_true (c->transmission);
  finish (&p, c);
}

static void
script_close_at_export_name (struct peer *p)
{
  unsigned char buf[256];
  uint32_t len;

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE);
  peer_cflags (p);
  peer_opt (p, buf, sizeof buf, &len);
  shutdown (p->fd, SHUT_RDWR);
}

static void
test_export_name_refused (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_close_at_export_name);
  struct nbdp_handshake_opts o = { .use_export_name = true };

  assert_int_equal (nbdp_client_handshake (c, &o), -1);
  assert_int_equal (c->failure, NBDP_FAIL_REFUSED);
  assert_error_mentions (c, "closed");
  finish (&p, c);
}

/* Silent server: the receive timeout fires. */
static void
script_silent (struct peer *p)
{
}

static void
test_timeout (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_silent);

  nbdp_client_set_timeout (c, 100);
  assert_int_equal (nbdp_client_recv_greeting (c, NULL), -1);
  assert_int_equal (errno, ETIMEDOUT);
  assert_int_equal (c->failure, NBDP_FAIL_IO);
  assert_error_mentions (c, "timed out");
  finish (&p, c);
}

/* Several requests in flight, answered out of order with simple replies
 * (no structured replies negotiated).
 */
static void
script_multi (struct peer *p)
{
  unsigned char buf[256];
  uint32_t len, opt;
  struct nbdp_request r1, r2, r3;
  unsigned char wbuf[5];

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE);
  peer_cflags (p);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_GO);
  peer_info_export (p, opt, 1 << 20, NBD_FLAG_HAS_FLAGS);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);
  PEER_CHECK (p, peer_req (p, false, &r1) && r1.type == NBD_CMD_READ);
  PEER_CHECK (p, peer_req (p, false, &r2) && r2.type == NBD_CMD_WRITE &&
              r2.count == 5);
  PEER_CHECK (p, nbdp_read_full (p->fd, wbuf, 5) == 0 &&
              memcmp (wbuf, "hello", 5) == 0);
  PEER_CHECK (p, peer_req (p, false, &r3) && r3.type == NBD_CMD_READ);
  peer_simple (p, r3.cookie, 0, "333", 3);
  peer_simple (p, r2.cookie, 0, NULL, 0);
  peer_simple (p, r1.cookie, NBD_EPERM, NULL, 0);
}

static void
test_multiple_in_flight (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_multi);
  char b1[4], b3[3];
  struct nbdp_cmd r1 = { .type = NBD_CMD_READ, .count = 4, .buf = b1 };
  struct nbdp_cmd w = { .type = NBD_CMD_WRITE, .count = 5,
                        .payload = "hello", .offset = 10 };
  struct nbdp_cmd r3 = { .type = NBD_CMD_READ, .count = 3, .buf = b3,
                         .offset = 512 };
  struct nbdp_cmd *which;

  assert_int_equal (nbdp_client_handshake (c, NULL), 0);
  assert_int_equal (nbdp_client_cmd_start (c, &r1), 0);
  assert_int_equal (nbdp_client_cmd_start (c, &w), 0);
  assert_int_equal (nbdp_client_cmd_start (c, &r3), 0);
  assert_true (r1.cookie != w.cookie && w.cookie != r3.cookie);
  assert_int_equal (nbdp_client_cmd_poll (c, &which), 0);
  assert_ptr_equal (which, &r3);
  assert_true (r3.done);
  assert_memory_equal (b3, "333", 3);
  /* Waiting for r1 also consumes w's reply. */
  assert_int_equal (nbdp_client_cmd_wait (c, &r1), -1);
  assert_int_equal (c->failure, NBDP_FAIL_REFUSED);
  assert_int_equal (errno, EPERM);
  assert_true (w.done);
  assert_int_equal (w.error, 0);
  assert_int_equal (r1.error, NBD_EPERM);
  nbdp_client_cmd_cleanup (c, &r1);
  nbdp_client_cmd_cleanup (c, &w);
  nbdp_client_cmd_cleanup (c, &r3);
  finish (&p, c);
}

/* Extended headers with a meta context; block status replies. */
static void
script_block_status (struct peer *p)
{
  unsigned char buf[256], bs[8 + 2 * 16], ctx[4 + 15];
  uint32_t len, opt;
  struct nbdp_request req;

  peer_greet (p, NBD_FLAG_FIXED_NEWSTYLE);
  peer_cflags (p);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_EXTENDED_HEADERS);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_SET_META_CONTEXT);
  nbdp_put32 (ctx, 7);
  memcpy (ctx + 4, "base:allocation", 15);
  peer_rep (p, opt, NBD_REP_META_CONTEXT, ctx, sizeof ctx);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);
  opt = peer_opt (p, buf, sizeof buf, &len);
  PEER_CHECK (p, opt == NBD_OPT_GO);
  peer_info_export (p, opt, UINT64_C (1) << 40, NBD_FLAG_HAS_FLAGS);
  peer_rep (p, opt, NBD_REP_ACK, NULL, 0);

  /* Good reply. */
  PEER_CHECK (p, peer_req (p, true, &req));
  PEER_CHECK (p, req.magic == NBD_EXTENDED_REQUEST_MAGIC &&
              req.type == NBD_CMD_BLOCK_STATUS &&
              req.count == UINT64_C (1) << 33);
  nbdp_put32 (bs, 7);
  nbdp_put32 (bs + 4, 2);
  nbdp_put64 (bs + 8, UINT64_C (1) << 32);
  nbdp_put64 (bs + 16, 0);
  nbdp_put64 (bs + 24, UINT64_C (1) << 32);
  nbdp_put64 (bs + 32, NBD_STATE_HOLE | NBD_STATE_ZERO);
  peer_ext_chunk (p, req.cookie, NBD_REPLY_FLAG_DONE,
                  NBD_REPLY_TYPE_BLOCK_STATUS_EXT, req.offset, bs, sizeof bs);

  /* Bad: descriptor count disagrees with the length. */
  PEER_CHECK (p, peer_req (p, true, &req));
  nbdp_put32 (bs + 4, 5);
  peer_ext_chunk (p, req.cookie, NBD_REPLY_FLAG_DONE,
                  NBD_REPLY_TYPE_BLOCK_STATUS_EXT, req.offset, bs, sizeof bs);

  /* Bad: compact chunk type after extended headers. */
  PEER_CHECK (p, peer_req (p, true, &req));
  nbdp_put32 (bs + 4, 0);
  nbdp_put32 (bs + 8, 0);
  peer_ext_chunk (p, req.cookie, NBD_REPLY_FLAG_DONE,
                  NBD_REPLY_TYPE_BLOCK_STATUS, req.offset, bs, 12);

  /* Bad: unknown context id, and then a chunk-free DONE. */
  PEER_CHECK (p, peer_req (p, true, &req));
  nbdp_put32 (bs, 8);
  nbdp_put32 (bs + 4, 1);
  nbdp_put64 (bs + 8, 512);
  nbdp_put64 (bs + 16, 0);
  peer_ext_chunk (p, req.cookie, NBD_REPLY_FLAG_DONE,
                  NBD_REPLY_TYPE_BLOCK_STATUS_EXT, req.offset, bs, 24);
}

static void
test_block_status_extended (void **state)
{
  struct peer p;
  struct nbdp_client *c = start (&p, script_block_status);
  const char *const q[] = { "base:allocation" };
  struct nbdp_handshake_opts o = { .extended_headers = true,
                                   .meta_contexts = q, .n_meta_contexts = 1,
                                   .require = true };
  struct nbdp_bs_extent *e;
  size_t n;

  if (nbdp_client_handshake (c, &o) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_true (c->extended);
  assert_int_equal (c->n_contexts, 1);
  assert_int_equal (c->contexts[0].id, 7);
  assert_string_equal (c->contexts[0].name, "base:allocation");

  if (nbdp_client_block_status (c, UINT64_C (1) << 33, 0, 0, &e, &n) == -1)
    fail_msg ("%s", nbdp_client_error (c));
  assert_int_equal (n, 2);
  assert_int_equal (e[0].context_id, 7);
  assert_true (e[1].offset == UINT64_C (1) << 32);
  assert_int_equal (e[1].flags, NBD_STATE_HOLE | NBD_STATE_ZERO);
  free (e);

  assert_int_equal (nbdp_client_block_status (c, 4096, 0, 0, &e, &n), -1);
  assert_int_equal (c->failure, NBDP_FAIL_PROTOCOL);
  assert_error_mentions (c, "descriptor count");
  assert_null (e);

  assert_int_equal (nbdp_client_block_status (c, 4096, 0, 0, &e, &n), -1);
  assert_error_mentions (c, "NBD_REPLY_TYPE_BLOCK_STATUS although extended");

  assert_int_equal (nbdp_client_block_status (c, 4096, 0, 0, &e, &n), -1);
  assert_error_mentions (c, "context id 8");
  finish (&p, c);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_handshake_and_read),
    cmocka_unit_test (test_read_outside),
    cmocka_unit_test (test_read_overlap),
    cmocka_unit_test (test_read_early_done),
    cmocka_unit_test (test_read_simple_with_sr),
    cmocka_unit_test (test_read_bad_magic),
    cmocka_unit_test (test_read_huge_chunk),
    cmocka_unit_test (test_read_error_chunk),
    cmocka_unit_test (test_read_bad_error_chunk),
    cmocka_unit_test (test_read_unknown_cookie),
    cmocka_unit_test (test_read_unknown_type),
    cmocka_unit_test (test_read_none_without_done),
    cmocka_unit_test (test_option_reply_too_big),
    cmocka_unit_test (test_raw_option),
    cmocka_unit_test (test_go_refused),
    cmocka_unit_test (test_go_refused_abort),
    cmocka_unit_test (test_shutdown_soft_disconnect),
    cmocka_unit_test (test_oldstyle),
    cmocka_unit_test (test_export_name),
    cmocka_unit_test (test_export_name_refused),
    cmocka_unit_test (test_timeout),
    cmocka_unit_test (test_multiple_in_flight),
    cmocka_unit_test (test_block_status_extended),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
