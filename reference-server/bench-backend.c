/* Micro benchmark of the memory backend: GiB/s of 256 KiB writes (into
 * fresh pages, then over existing ones) and reads, with 1 and 4 threads
 * each working on its own part of the export.  Not part of make check:
 *   make reference-server/bench-backend && reference-server/bench-backend [GiB]
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

#define BLOCK (256 * 1024)

enum op { OP_WRITE, OP_READ };

struct job {
  pthread_t tid;
  struct backend *b;
  enum op op;
  uint64_t base, len;
  int err;
};

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
run (void *opaque)
{
  struct job *j = opaque;
  char *buf = malloc (BLOCK);
  uint64_t off;

  if (buf == NULL) {
    j->err = 1;
    return NULL;
  }
  memset (buf, 0xa5, BLOCK);
  for (off = 0; off < j->len; off += BLOCK) {
    int r = j->op == OP_WRITE
      ? j->b->ops->pwrite (j->b, buf, BLOCK, j->base + off, false)
      : j->b->ops->pread (j->b, buf, BLOCK, j->base + off);
    if (r == -1) {
      j->err = 1;
      break;
    }
  }
  free (buf);
  return NULL;
}

static double
pass (struct backend *b, enum op op, unsigned nthreads, uint64_t size)
{
  struct job j[16];
  double t;
  unsigned i;

  t = now ();
  for (i = 0; i < nthreads; i++) {
    j[i].b = b;
    j[i].op = op;
    j[i].len = size / nthreads / BLOCK * BLOCK;
    j[i].base = i * j[i].len;
    j[i].err = 0;
    pthread_create (&j[i].tid, NULL, run, &j[i]);
  }
  for (i = 0; i < nthreads; i++) {
    pthread_join (j[i].tid, NULL);
    if (j[i].err) {
      perror ("bench-backend: I/O");
      exit (EXIT_FAILURE);
    }
  }
  t = now () - t;
  return (double) size / t / (1024.0 * 1024 * 1024);
}

int
main (int argc, char *argv[])
{
  uint64_t size = (uint64_t) (argc > 1 ? atoi (argv[1]) : 2) << 30;
  static const unsigned threads[] = { 1, 4 };
  unsigned k;

  for (k = 0; k < 2; k++) {
    struct backend *b = backend_memory_new (size);
    double fresh, over, rd;

    if (b == NULL) {
      perror ("backend_memory_new");
      return EXIT_FAILURE;
    }
    fresh = pass (b, OP_WRITE, threads[k], size);
    over = pass (b, OP_WRITE, threads[k], size);
    rd = pass (b, OP_READ, threads[k], size);
    printf ("memory, %u thread%s, %" PRIu64 " GiB in 256 KiB requests: "
            "write (fresh) %.2f GiB/s, overwrite %.2f GiB/s, "
            "read %.2f GiB/s\n", threads[k], threads[k] > 1 ? "s" : "",
            size >> 30, fresh, over, rd);
    b->ops->close (b);
  }
  return EXIT_SUCCESS;
}
