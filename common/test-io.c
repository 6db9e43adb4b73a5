/* nbd-conformance: unit tests of the full read/write helpers
 * (common/utils/io.c) over a socketpair: large transfers, a clean EOF
 * (errno 0), EOF part way through a read (EPIPE), a write to a closed
 * peer (EPIPE, no SIGPIPE), and discard.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "io.h"

#define BIG (8 * 1024 * 1024)

struct writer {
  int fd;
  const unsigned char *buf;
  size_t len;
  int r;
};

static void *
writer_thread (void *arg)
{
  struct writer *w = arg;

  w->r = nbdp_write_full (w->fd, w->buf, w->len);
  return NULL;
}

static void
test_big_transfer (void **state)
{
  int sv[2];
  unsigned char *src = malloc (BIG), *dst = malloc (BIG);
  struct writer w;
  pthread_t t;
  size_t i;

  assert_non_null (src);
  assert_non_null (dst);
  for (i = 0; i < BIG; i++)
    src[i] = (unsigned char) (i * 7 + (i >> 13));
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  w = (struct writer) { .fd = sv[0], .buf = src, .len = BIG };
  assert_int_equal (pthread_create (&t, NULL, writer_thread, &w), 0);
  assert_int_equal (nbdp_read_full (sv[1], dst, BIG), 0);
  pthread_join (t, NULL);
  assert_int_equal (w.r, 0);
  assert_memory_equal (src, dst, BIG);
  close (sv[0]);
  close (sv[1]);
  free (src);
  free (dst);
}

static void
test_clean_eof (void **state)
{
  int sv[2];
  char b[4];

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close (sv[0]);
  errno = 12345;
  assert_int_equal (nbdp_read_full (sv[1], b, sizeof b), -1);
  assert_int_equal (errno, 0);
  close (sv[1]);
}

static void
test_eof_mid_read (void **state)
{
  int sv[2];
  char b[8];

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (nbdp_write_full (sv[0], "abc", 3), 0);
  close (sv[0]);
  assert_int_equal (nbdp_read_full (sv[1], b, sizeof b), -1);
  assert_int_equal (errno, EPIPE);
  close (sv[1]);
}

static void
test_zero_length (void **state)
{
  int sv[2];

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (nbdp_read_full (sv[1], NULL, 0), 0);
  assert_int_equal (nbdp_write_full (sv[0], NULL, 0), 0);
  close (sv[0]);
  close (sv[1]);
}

static void
test_write_to_closed (void **state)
{
  int sv[2];
  char b[65536] = { 0 };
  int i, r = 0;

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close (sv[1]);
  /* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
  for (i = 0; i < 4 && r == 0; i++)
    r = nbdp_write_full (sv[0], b, sizeof b);
  assert_int_equal (r, -1);
  assert_int_equal (errno, EPIPE);
  close (sv[0]);
}

static void
test_pipe_and_discard (void **state)
{
  int p[2];
  char b[4];

  /* Not a socket: write_full falls back to write(2). */
  assert_int_equal (pipe (p), 0);
  assert_int_equal (nbdp_write_full (p[1], "0123456789", 10), 0);
  assert_int_equal (nbdp_discard (p[0], 6), 0);
  assert_int_equal (nbdp_read_full (p[0], b, 4), 0);
  assert_memory_equal (b, "6789", 4);
  close (p[1]);
  assert_int_equal (nbdp_discard (p[0], 1), -1);
  assert_int_equal (errno, 0);
  close (p[0]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_big_transfer),
    cmocka_unit_test (test_clean_eof),
    cmocka_unit_test (test_eof_mid_read),
    cmocka_unit_test (test_zero_length),
    cmocka_unit_test (test_write_to_closed),
    cmocka_unit_test (test_pipe_and_discard),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
