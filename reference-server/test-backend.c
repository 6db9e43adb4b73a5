/* Unit tests of the storage backends: the same list runs on the sparse
 * memory backend and on a file in a private temporary directory.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "nbd-proto.h"
#include "backend.h"

#define KiB (UINT64_C (1) << 10)
#define MiB (UINT64_C (1) << 20)
#define GiB (UINT64_C (1) << 30)
#define TiB (UINT64_C (1) << 40)
#define PiB (UINT64_C (1) << 50)
#define HZ (NBD_STATE_HOLE | NBD_STATE_ZERO)

/* Which backend the current group runs on. */
static bool on_file;
static bool file_has_holes;     /* the filesystem reports holes */
static char tmpdir[4096];
static char path[4096 + 32];

static struct backend *
open_backend (uint64_t size)
{
  struct backend *b;

  if (!on_file)
    b = backend_memory_new (size);
  else {
    unlink (path);
    b = backend_file_open (path, false, size);
  }
  assert_non_null (b);
  assert_int_equal (b->ops->get_size (b), size);
  return b;
}

static void
close_backend (struct backend *b)
{
  b->ops->close (b);
  if (on_file)
    unlink (path);
}

static bool
holes_reported (void)
{
  return !on_file || file_has_holes;
}

/* Extents collector. */
#define MAX_EXTENTS 1024
struct extents {
  size_t n;
  struct backend_extent e[MAX_EXTENTS];
};

static int
collect (void *opaque, const struct backend_extent *e)
{
  struct extents *x = opaque;

  if (x->n >= MAX_EXTENTS) {
    errno = ENOMEM;
    return -1;
  }
  x->e[x->n++] = *e;
  return 0;
}

static void
get_extents (struct backend *b, uint64_t count, uint64_t offset,
             uint32_t max, struct extents *x)
{
  uint64_t sum = 0;
  size_t i;

  x->n = 0;
  assert_int_equal (b->ops->extents (b, count, offset, max, collect, x), 0);
  assert_true (x->n >= 1);
  assert_true (x->n <= (max ? max : 1));
  for (i = 0; i < x->n; i++) {
    assert_true (x->e[i].length > 0);
    sum += x->e[i].length;
    if (i > 0)
      assert_int_not_equal (x->e[i].flags, x->e[i - 1].flags);
  }
  assert_true (sum <= count);
  if (x->n < max)
    assert_int_equal (sum, count);
}

/* The flags of the byte at offset, from an extents list at start. */
static uint32_t
flags_at (const struct extents *x, uint64_t start, uint64_t offset)
{
  size_t i;

  for (i = 0; i < x->n; i++) {
    if (offset < start + x->e[i].length)
      return x->e[i].flags;
    start += x->e[i].length;
  }
  fail_msg ("offset %" PRIu64 " not covered by the extents", offset);
  return 0;
}

static void
fill (char *buf, size_t len, unsigned seed)
{
  size_t i;

  for (i = 0; i < len; i++)
    buf[i] = (char) ((i * 131 + seed * 7 + 1) % 251 + 1);  /* never 0 */
}

static bool
all_zero (const char *buf, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++)
    if (buf[i])
      return false;
  return true;
}

static void
expect_zero (struct backend *b, uint64_t count, uint64_t offset)
{
  char *buf = malloc (count);

  assert_non_null (buf);
  memset (buf, 0x55, count);
  assert_int_equal (b->ops->pread (b, buf, count, offset), 0);
  if (!all_zero (buf, count))
    fail_msg ("[%" PRIu64 ", +%" PRIu64 ") does not read as zero",
              offset, count);
  free (buf);
}

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_unwritten_reads_zero (void **state)
{
  struct backend *b = open_backend (10 * MiB + 3);
  struct extents x;

  expect_zero (b, 10 * MiB + 3, 0);
  expect_zero (b, 1, 10 * MiB + 2);
  expect_zero (b, 100000, 65536 - 7);
  get_extents (b, 10 * MiB + 3, 0, 100, &x);
  if (holes_reported ()) {
    assert_int_equal (x.n, 1);
    assert_int_equal (x.e[0].flags, HZ);
  }
  close_backend (b);
}

static void
test_roundtrip_unaligned (void **state)
{
  const uint64_t size = 4 * MiB + 513;
  struct backend *b = open_backend (size);
  char *shadow = calloc (1, size), *buf = malloc (size);
  static const struct { uint64_t off, len; } w[] = {
    { 0, 1 },
    { 65536 - 100, 200 },             /* across a page boundary */
    { 3 * 65536 + 7, 300000 },        /* several pages, both ends partial */
    { 1 * MiB, 64 * KiB },            /* exactly one page */
    { 2 * MiB - 1, 2 },
    { 4 * MiB + 512, 1 },             /* the last byte */
    { 4 * MiB - 5000, 5513 },         /* up to the end */
    { 100, 3 },                       /* overwrite inside a page */
  };
  size_t i;

  assert_non_null (shadow);
  assert_non_null (buf);
  for (i = 0; i < sizeof w / sizeof w[0]; i++) {
    fill (buf, w[i].len, i);
    memcpy (shadow + w[i].off, buf, w[i].len);
    assert_int_equal (b->ops->pwrite (b, buf, w[i].len, w[i].off, i & 1), 0);
  }
  /* Read back each write, then odd windows, then everything. */
  for (i = 0; i < sizeof w / sizeof w[0]; i++) {
    assert_int_equal (b->ops->pread (b, buf, w[i].len, w[i].off), 0);
    assert_memory_equal (buf, shadow + w[i].off, w[i].len);
  }
  assert_int_equal (b->ops->pread (b, buf, 70000, 65536 - 3000), 0);
  assert_memory_equal (buf, shadow + 65536 - 3000, 70000);
  memset (buf, 0x55, size);
  assert_int_equal (b->ops->pread (b, buf, size, 0), 0);
  assert_memory_equal (buf, shadow, size);
  assert_int_equal (b->ops->flush (b), 0);
  assert_int_equal (b->ops->cache (b, size, 0), 0);

  free (buf);
  free (shadow);
  close_backend (b);
}

static void
test_trim_and_zero (void **state)
{
  const uint64_t size = 2 * MiB;
  struct backend *b = open_backend (size);
  char *shadow = malloc (size), *buf = malloc (size);
  struct extents x;
  int r;

  assert_non_null (shadow);
  assert_non_null (buf);
  fill (shadow, size, 42);
  assert_int_equal (b->ops->pwrite (b, shadow, size, 0, false), 0);

  /* Aligned trim: zeros and a hole. */
  assert_int_equal (b->ops->trim (b, 256 * KiB, 128 * KiB, false), 0);
  memset (shadow + 128 * KiB, 0, 256 * KiB);
  /* Unaligned trim inside one page and across pages. */
  assert_int_equal (b->ops->trim (b, 4000, 1000, true), 0);
  memset (shadow + 1000, 0, 4000);
  assert_int_equal (b->ops->trim (b, 70000, 400 * KiB + 17, false), 0);
  memset (shadow + 400 * KiB + 17, 0, 70000);
  /* Zero, may trim. */
  assert_int_equal (b->ops->zero (b, 128 * KiB, 640 * KiB, true, false,
                                  false), 0);
  memset (shadow + 640 * KiB, 0, 128 * KiB);
  /* Zero, no hole, unaligned. */
  assert_int_equal (b->ops->zero (b, 200 * KiB, 900 * KiB + 1, false,
                                  false, true), 0);
  memset (shadow + 900 * KiB + 1, 0, 200 * KiB);
  /* Fast zero: succeeds (or ENOTSUP, then nothing changed). */
  r = b->ops->zero (b, 64 * KiB, 1536 * KiB, false, true, false);
  if (r == 0)
    memset (shadow + 1536 * KiB, 0, 64 * KiB);
  else
    assert_int_equal (errno, ENOTSUP);
  if (!on_file)
    assert_int_equal (r, 0);    /* documented: memory zeroing is fast */
  assert_int_equal (b->ops->zero (b, 64 * KiB, 1664 * KiB, true, true,
                                  false), 0);
  memset (shadow + 1664 * KiB, 0, 64 * KiB);

  assert_int_equal (b->ops->pread (b, buf, size, 0), 0);
  assert_memory_equal (buf, shadow, size);

  get_extents (b, size, 0, MAX_EXTENTS, &x);
  if (holes_reported ()) {
    assert_int_equal (flags_at (&x, 0, 128 * KiB), HZ);
    assert_int_equal (flags_at (&x, 0, 384 * KiB - 1), HZ);
    assert_int_equal (flags_at (&x, 0, 640 * KiB), HZ);
    assert_int_equal (flags_at (&x, 0, 1664 * KiB), HZ);
  }
  assert_int_equal (flags_at (&x, 0, 0) & NBD_STATE_HOLE, 0);
  if (!on_file) {
    /* NO_HOLE keeps the page allocated; it is known to be zero. */
    assert_int_equal (flags_at (&x, 0, 960 * KiB), NBD_STATE_ZERO);
    /* The sub-block holding 900 KiB still has data. */
    assert_int_equal (flags_at (&x, 0, 900 * KiB), 0);
  }
  /* Writing over a known-zero page makes it data again. */
  assert_int_equal (b->ops->pwrite (b, "x", 1, 960 * KiB + 5, false), 0);
  get_extents (b, 64 * KiB, 960 * KiB, 10, &x);
  if (on_file) {
    assert_int_equal (x.n, 1);
    assert_int_equal (x.e[0].flags, 0);
  }
  else {
    /* The written sub-block is data, the rest of the page still zero. */
    assert_int_equal (x.n, 2);
    assert_int_equal (x.e[0].length, 4096);
    assert_int_equal (x.e[0].flags, 0);
    assert_int_equal (x.e[1].flags, NBD_STATE_ZERO);
  }

  free (buf);
  free (shadow);
  close_backend (b);
}

static void
test_extents_merge_and_limits (void **state)
{
  const uint64_t size = 1 * MiB;
  struct backend *b = open_backend (size);
  char *buf = malloc (128 * KiB);
  struct extents x;

  assert_non_null (buf);
  fill (buf, 128 * KiB, 1);
  /* data [0,128K) as two writes, hole [128K,256K), data [256K,320K). */
  assert_int_equal (b->ops->pwrite (b, buf, 64 * KiB, 0, false), 0);
  assert_int_equal (b->ops->pwrite (b, buf, 64 * KiB, 64 * KiB, false), 0);
  assert_int_equal (b->ops->pwrite (b, buf, 64 * KiB, 256 * KiB, false), 0);

  get_extents (b, size, 0, MAX_EXTENTS, &x);
  if (holes_reported ()) {
    assert_int_equal (x.n, 4);
    assert_int_equal (x.e[0].length, 128 * KiB);
    assert_int_equal (x.e[0].flags, 0);
    assert_int_equal (x.e[1].length, 128 * KiB);
    assert_int_equal (x.e[1].flags, HZ);
    assert_int_equal (x.e[2].length, 64 * KiB);
    assert_int_equal (x.e[2].flags, 0);
    assert_int_equal (x.e[3].length, size - 320 * KiB);
    assert_int_equal (x.e[3].flags, HZ);
  }

  /* max_extents stops early; 0 counts as 1. */
  get_extents (b, size, 0, 1, &x);
  assert_int_equal (x.n, 1);
  assert_int_equal (x.e[0].length, holes_reported () ? 128 * KiB : size);
  get_extents (b, size, 0, 0, &x);
  assert_int_equal (x.n, 1);
  if (holes_reported ()) {
    get_extents (b, size, 0, 2, &x);
    assert_int_equal (x.n, 2);
    assert_int_equal (x.e[1].length, 128 * KiB);
  }

  /* Sub-ranges are covered exactly, from an unaligned start. */
  get_extents (b, 200 * KiB + 3, 100 * KiB + 1, MAX_EXTENTS, &x);
  if (holes_reported ()) {
    assert_int_equal (x.n, 3);
    assert_int_equal (x.e[0].length, 28 * KiB - 1);
    assert_int_equal (x.e[1].length, 128 * KiB);
    assert_int_equal (x.e[2].length, 200 * KiB + 3 - (156 * KiB - 1));
  }
  get_extents (b, 1, 5, MAX_EXTENTS, &x);
  assert_int_equal (x.n, 1);
  assert_int_equal (x.e[0].length, 1);
  assert_int_equal (x.e[0].flags, 0);
  get_extents (b, 1, size - 1, MAX_EXTENTS, &x);
  assert_int_equal (x.e[0].length, 1);

  free (buf);
  close_backend (b);
}

static int
fail_after_two (void *opaque, const struct backend_extent *e)
{
  int *n = opaque;

  if (++*n == 2) {
    errno = EPIPE;
    return -1;
  }
  return 0;
}

static void
test_extents_callback_error (void **state)
{
  struct backend *b = open_backend (1 * MiB);
  char buf[512];
  int n = 0;

  if (!holes_reported ()) {
    close_backend (b);
    skip ();
  }
  fill (buf, sizeof buf, 3);
  assert_int_equal (b->ops->pwrite (b, buf, sizeof buf, 512 * KiB, false), 0);
  errno = 0;
  assert_int_equal (b->ops->extents (b, 1 * MiB, 0, 100, fail_after_two, &n),
                    -1);
  assert_int_equal (errno, EPIPE);
  assert_int_equal (n, 2);
  close_backend (b);
}

static void
test_huge_sparse (void **state)
{
  /* 1 PiB in memory; a file gets the largest size ext4 and friends take. */
  const uint64_t size = on_file ? 1 * TiB : 1 * PiB;
  struct backend *b = open_backend (size);
  char *buf = malloc (MiB), *rbuf = malloc (MiB);
  uint64_t off[10], usage;
  struct extents x;
  double t;
  size_t i;

  assert_non_null (buf);
  assert_non_null (rbuf);
  for (i = 0; i < 10; i++) {
    off[i] = (i * (size / 10)) / (64 * KiB) * (64 * KiB) + 64 * KiB;
    fill (buf, MiB, i);
    assert_int_equal (b->ops->pwrite (b, buf, MiB, off[i], false), 0);
  }
  usage = b->ops->usage (b);
  fprintf (stderr, "# %s: %" PRIu64 " bytes in use after ten 1 MiB writes "
           "into %" PRIu64 " bytes\n", b->ops->name, usage, size);
  assert_true (usage >= 10 * MiB);
  assert_true (usage < 16 * MiB);

  for (i = 0; i < 10; i++) {
    fill (buf, MiB, i);
    assert_int_equal (b->ops->pread (b, rbuf, MiB, off[i]), 0);
    assert_memory_equal (rbuf, buf, MiB);
    expect_zero (b, 64 * KiB, off[i] - 64 * KiB);
    expect_zero (b, 64 * KiB, off[i] + MiB);
  }

  t = now ();
  get_extents (b, size, 0, MAX_EXTENTS, &x);
  t = now () - t;
  fprintf (stderr, "# %s: extents over %" PRIu64 " bytes: %zu extents in "
           "%.3f ms\n", b->ops->name, size, x.n, t * 1e3);
  assert_true (t < 1.0);
  if (holes_reported ()) {
    uint64_t pos = 0;

    assert_int_equal (x.n, 21);
    for (i = 0; i < 10; i++) {
      assert_int_equal (x.e[2 * i].flags, HZ);
      assert_int_equal (x.e[2 * i].length, off[i] - pos);
      assert_int_equal (x.e[2 * i + 1].flags, 0);
      assert_int_equal (x.e[2 * i + 1].length, MiB);
      pos = off[i] + MiB;
    }
    assert_int_equal (x.e[20].length, size - pos);
  }

  /* Trimming everything gives all the memory back. */
  t = now ();
  assert_int_equal (b->ops->trim (b, size, 0, false), 0);
  t = now () - t;
  fprintf (stderr, "# %s: trim of the whole export: %.3f ms\n",
           b->ops->name, t * 1e3);
  if (!on_file)
    assert_int_equal (b->ops->usage (b), 0);
  expect_zero (b, MiB, off[3]);

  free (buf);
  free (rbuf);
  close_backend (b);
}

static void
test_resize (void **state)
{
  uint64_t size = 1 * MiB + 1000;
  struct backend *b = open_backend (size);
  char *buf = malloc (size), *rbuf = malloc (2 * MiB);
  const uint64_t big = on_file ? 1 * TiB : INT64_MAX;
  struct extents x;

  assert_non_null (buf);
  assert_non_null (rbuf);
  fill (buf, size, 9);
  assert_int_equal (b->ops->pwrite (b, buf, size, 0, false), 0);

  /* Shrink to an unaligned size, then grow: the cut part reads zero. */
  assert_int_equal (b->ops->set_size (b, 100000), 0);
  assert_int_equal (b->ops->get_size (b), 100000);
  assert_int_equal (b->ops->set_size (b, 2 * MiB), 0);
  assert_int_equal (b->ops->get_size (b), 2 * MiB);
  assert_int_equal (b->ops->pread (b, rbuf, 2 * MiB, 0), 0);
  assert_memory_equal (rbuf, buf, 100000);
  assert_true (all_zero (rbuf + 100000, 2 * MiB - 100000));

  /* Out of range after a shrink: the backend checks under its lock. */
  assert_int_equal (b->ops->set_size (b, 1 * MiB), 0);
  assert_int_equal (b->ops->pwrite (b, buf, 2, 1 * MiB - 1, false), -1);
  assert_int_equal (errno, ENOSPC);
  assert_int_equal (b->ops->pread (b, rbuf, 1, 1 * MiB), -1);
  assert_int_equal (errno, EINVAL);

  /* Grow very large (tree height changes), write at the far end, shrink
   * back, grow again: the far end reads zero.
   */
  assert_int_equal (b->ops->set_size (b, big), 0);
  assert_int_equal (b->ops->pwrite (b, buf, 4096, big - 4096, false), 0);
  assert_int_equal (b->ops->pread (b, rbuf, 4096, big - 4096), 0);
  assert_memory_equal (rbuf, buf, 4096);
  get_extents (b, big, 0, MAX_EXTENTS, &x);
  if (holes_reported ()) {
    assert_int_equal (flags_at (&x, 0, big - 1), 0);
    assert_int_equal (flags_at (&x, 0, big / 2), HZ);
  }
  assert_int_equal (b->ops->set_size (b, 1 * MiB), 0);
  assert_int_equal (b->ops->pread (b, rbuf, 100000, 0), 0);
  assert_memory_equal (rbuf, buf, 100000);
  assert_int_equal (b->ops->set_size (b, big), 0);
  expect_zero (b, 4096, big - 4096);
  expect_zero (b, 1 * MiB, 1 * MiB);
  assert_int_equal (b->ops->pread (b, rbuf, 100000, 0), 0);
  assert_memory_equal (rbuf, buf, 100000);
  if (!on_file)
    assert_true (b->ops->usage (b) < 1 * MiB);

  /* Shrink to zero and back. */
  assert_int_equal (b->ops->set_size (b, 0), 0);
  assert_int_equal (b->ops->set_size (b, 4096), 0);
  expect_zero (b, 4096, 0);
  if (!on_file)
    assert_int_equal (b->ops->usage (b), 0);

  free (buf);
  free (rbuf);
  close_backend (b);
}

static void
test_bounds (void **state)
{
  struct backend *b = open_backend (1 * MiB);
  char buf[16] = { 0 };

  assert_int_equal (b->ops->pread (b, buf, 16, 1 * MiB - 8), -1);
  assert_int_equal (errno, EINVAL);
  assert_int_equal (b->ops->pwrite (b, buf, 16, UINT64_MAX - 4, false), -1);
  assert_int_equal (errno, ENOSPC);
  assert_int_equal (b->ops->zero (b, 2, 1 * MiB - 1, true, false, false), -1);
  assert_int_equal (errno, ENOSPC);
  assert_int_equal (b->ops->trim (b, 1, 1 * MiB, false), -1);
  assert_int_equal (errno, EINVAL);
  assert_int_equal (b->ops->pwrite (b, buf, 16, 1 * MiB - 16, false), 0);
  close_backend (b);
}

static void
test_memory_zero_allocation (void **state)
{
  struct backend *b;
  char *buf;
  struct extents x;

  if (on_file)
    skip ();                    /* a file allocates what is written */
  b = open_backend (1 * GiB);
  buf = calloc (1, 4 * MiB);
  assert_non_null (buf);
  assert_int_equal (b->ops->pwrite (b, buf, 4 * MiB, 7, false), 0);
  assert_int_equal (b->ops->usage (b), 0);
  get_extents (b, 1 * GiB, 0, 10, &x);
  assert_int_equal (x.n, 1);
  assert_int_equal (x.e[0].flags, HZ);
  free (buf);
  close_backend (b);

  /* NO_HOLE provisioning is capped (1 GiB of new pages per request):
   * beyond, ENOSPC and nothing changes; below, the pages are allocated.
   */
  b = open_backend (1 * PiB);
  assert_int_equal (b->ops->zero (b, 2 * GiB, 5 * TiB, false, false, false),
                    -1);
  assert_int_equal (errno, ENOSPC);
  assert_int_equal (b->ops->usage (b), 0);
  assert_int_equal (b->ops->zero (b, 1 * MiB, 5 * TiB, false, true, false),
                    0);
  assert_true (b->ops->usage (b) >= 1 * MiB);
  get_extents (b, 3 * MiB, 5 * TiB - 1 * MiB, 10, &x);
  assert_int_equal (x.n, 3);
  assert_int_equal (x.e[1].length, 1 * MiB);
  assert_int_equal (x.e[1].flags, NBD_STATE_ZERO);
  close_backend (b);
}

static void
test_readonly (void **state)
{
  struct backend *b;
  char buf[4096];

  if (!on_file)
    skip ();                    /* read-only is the file backend's */
  b = open_backend (1 * MiB);
  fill (buf, sizeof buf, 5);
  assert_int_equal (b->ops->pwrite (b, buf, sizeof buf, 8192, false), 0);
  b->ops->close (b);

  b = backend_file_open (path, true, 0);
  assert_non_null (b);
  assert_int_equal (b->ops->get_size (b), 1 * MiB);
  assert_int_equal (b->ops->pwrite (b, buf, 1, 0, false), -1);
  assert_int_equal (errno, EROFS);
  assert_int_equal (b->ops->trim (b, 1, 0, false), -1);
  assert_int_equal (errno, EROFS);
  assert_int_equal (b->ops->zero (b, 1, 0, false, false, false), -1);
  assert_int_equal (errno, EROFS);
  assert_int_equal (b->ops->set_size (b, 2 * MiB), -1);
  assert_int_equal (errno, EROFS);
  memset (buf, 0, sizeof buf);
  assert_int_equal (b->ops->pread (b, buf, sizeof buf, 8192), 0);
  assert_int_equal (buf[0], (char) ((0 * 131 + 5 * 7 + 1) % 251 + 1));
  assert_int_equal (b->ops->flush (b), 0);
  close_backend (b);

  /* A missing file is not created read-only, nor without a size. */
  assert_null (backend_file_open (path, true, 1 * MiB));
  assert_int_equal (errno, ENOENT);
  assert_null (backend_file_open (path, false, 0));
  assert_int_equal (errno, ENOENT);
}

/* Concurrency: each thread owns a range whose ends are not page aligned,
 * so neighbours share pages; it writes, trims, zeroes and reads at random
 * inside its range, checking against its own shadow copy.
 */
#define NTHREADS 6
#define RANGE (1 * MiB + 777)
#define ITERS 300

struct worker {
  pthread_t tid;
  struct backend *b;
  unsigned idx;
  uint64_t base;
  char *shadow;
  int errors;
};

static void *
worker_run (void *opaque)
{
  struct worker *w = opaque;
  unsigned seed = w->idx * 7919 + 1;
  char *buf = malloc (RANGE);
  int i;

  if (buf == NULL) {
    w->errors++;
    return NULL;
  }
  for (i = 0; i < ITERS; i++) {
    uint64_t off = rand_r (&seed) % RANGE;
    uint64_t len = 1 + rand_r (&seed) % (RANGE - off < 200000
                                         ? RANGE - off : 200000);
    unsigned op = rand_r (&seed) % 10;

    if (op < 6) {
      fill (buf, len, w->idx * 1000 + i);
      if (w->b->ops->pwrite (w->b, buf, len, w->base + off, false) == -1)
        w->errors++;
      memcpy (w->shadow + off, buf, len);
    }
    else if (op == 6) {
      if (w->b->ops->trim (w->b, len, w->base + off, false) == -1)
        w->errors++;
      memset (w->shadow + off, 0, len);
    }
    else if (op == 7) {
      if (w->b->ops->zero (w->b, len, w->base + off, i & 1, false,
                           false) == -1)
        w->errors++;
      memset (w->shadow + off, 0, len);
    }
    else {
      if (w->b->ops->pread (w->b, buf, len, w->base + off) == -1 ||
          memcmp (buf, w->shadow + off, len) != 0)
        w->errors++;
    }
  }
  free (buf);
  return NULL;
}

static void
test_concurrent (void **state)
{
  struct backend *b = open_backend (NTHREADS * RANGE + 12345);
  struct worker w[NTHREADS];
  char *buf = malloc (RANGE);
  unsigned i;

  assert_non_null (buf);
  for (i = 0; i < NTHREADS; i++) {
    w[i].b = b;
    w[i].idx = i;
    w[i].base = 12345 + i * RANGE;
    w[i].shadow = calloc (1, RANGE);
    w[i].errors = 0;
    assert_non_null (w[i].shadow);
    assert_int_equal (pthread_create (&w[i].tid, NULL, worker_run, &w[i]), 0);
  }
  for (i = 0; i < NTHREADS; i++)
    assert_int_equal (pthread_join (w[i].tid, NULL), 0);
  for (i = 0; i < NTHREADS; i++) {
    if (w[i].errors)
      fail_msg ("thread %u saw %d errors or mismatches", i, w[i].errors);
    assert_int_equal (b->ops->pread (b, buf, RANGE, w[i].base), 0);
    assert_memory_equal (buf, w[i].shadow, RANGE);
    free (w[i].shadow);
  }
  expect_zero (b, 12345, 0);
  free (buf);
  close_backend (b);
}

/* ---- groups ----------------------------------------------------------- */

static int
setup_memory (void **state)
{
  on_file = false;
  return 0;
}

static int
setup_file (void **state)
{
  const char *t = getenv ("NBDP_TEST_DIR");
  struct backend *b;

  if (t == NULL || *t == '\0')
    t = getenv ("TMPDIR");
  if (t == NULL || *t == '\0')
    t = "/tmp";
  snprintf (tmpdir, sizeof tmpdir, "%s/test-backend.XXXXXX", t);
  if (mkdtemp (tmpdir) == NULL) {
    perror (tmpdir);
    return -1;
  }
  snprintf (path, sizeof path, "%s/disk", tmpdir);
  on_file = true;

  /* Does this filesystem report holes?  (tmpfs, ext4, xfs, btrfs do.) */
  b = backend_file_open (path, false, 1 * MiB);
  if (b == NULL) {
    perror (path);
    return -1;
  }
  {
    struct extents x;

    x.n = 0;
    file_has_holes =
      b->ops->extents (b, 1 * MiB, 0, 10, collect, &x) == 0 &&
      x.n == 1 && x.e[0].flags == HZ;
  }
  close_backend (b);
  if (!file_has_holes)
    fprintf (stderr, "# %s does not report holes: extents checks "
             "limited\n", tmpdir);
  return 0;
}

static int
teardown_file (void **state)
{
  unlink (path);
  return rmdir (tmpdir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_unwritten_reads_zero),
    cmocka_unit_test (test_roundtrip_unaligned),
    cmocka_unit_test (test_trim_and_zero),
    cmocka_unit_test (test_extents_merge_and_limits),
    cmocka_unit_test (test_extents_callback_error),
    cmocka_unit_test (test_huge_sparse),
    cmocka_unit_test (test_resize),
    cmocka_unit_test (test_bounds),
    cmocka_unit_test (test_memory_zero_allocation),
    cmocka_unit_test (test_readonly),
    cmocka_unit_test (test_concurrent),
  };
  int r = 0;

  r |= cmocka_run_group_tests_name ("memory", tests, setup_memory, NULL);
  r |= cmocka_run_group_tests_name ("file", tests, setup_file, teardown_file);
  return r ? 1 : 0;
}
