/* nbd-refserver: the storage behind an export.  A backend is a table of
 * operations over an opaque handle; both backends (memory.c, file.c) are
 * safe to call from any number of threads at once, and every operation
 * sees a size that is consistent for its whole duration.
 *
 * All operations return 0 on success or -1 with errno set (EIO, ENOSPC,
 * ENOTSUP for a fast zero that would not be fast, ...); the caller maps
 * errno to the NBD error with nbdp_errno_to_nbd().  Range checks against
 * the export size are done by the caller before the call; the backends
 * check again under their own lock (a concurrent set_size may have
 * shrunk the export in between) and fail with ENOSPC (pwrite, zero) or
 * EINVAL (the others) when the range is no longer inside the export.
 *
 * A read-only file backend fails pwrite, trim, zero and set_size with
 * EROFS; the caller should map that to NBD_EPERM.
 */
#ifndef NBDP_BACKEND_H
#define NBDP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct backend;

/* One run of the allocation map: length bytes with NBD_STATE_* flags. */
struct backend_extent {
  uint64_t length;
  uint32_t flags;            /* NBD_STATE_HOLE | NBD_STATE_ZERO */
};

/* Called for each extent in order.  Returning -1 stops the walk and
 * makes extents() return -1 with the errno the callback left (use it for
 * errors; to limit the count, pass max_extents instead).
 */
typedef int (*backend_extent_fn) (void *opaque, const struct backend_extent *e);

struct backend_ops {
  const char *name;
  uint64_t (*get_size) (struct backend *b);
  int (*pread) (struct backend *b, void *buf, uint64_t count, uint64_t offset);
  int (*pwrite) (struct backend *b, const void *buf, uint64_t count,
                 uint64_t offset, bool fua);
  int (*flush) (struct backend *b);
  /* Discard: afterwards the range reads as zero (both our backends
   * guarantee that, though NBD_CMD_TRIM does not require it).
   */
  int (*trim) (struct backend *b, uint64_t count, uint64_t offset, bool fua);
  /* Write zeroes.  may_trim: punching a hole is allowed (no NO_HOLE).
   * fast: fail with ENOTSUP unless it is faster than writing zeroes.
   */
  int (*zero) (struct backend *b, uint64_t count, uint64_t offset,
               bool may_trim, bool fast, bool fua);
  int (*cache) (struct backend *b, uint64_t count, uint64_t offset);
  /* Describe [offset, offset+count) as a sequence of extents covering at
   * least one byte and at most the range; stops after max_extents (0 is
   * taken as 1).  Adjacent extents never have equal flags (they are
   * merged).  count must be > 0.
   */
  int (*extents) (struct backend *b, uint64_t count, uint64_t offset,
                  uint32_t max_extents, backend_extent_fn fn, void *opaque);
  /* Change the size.  Bytes beyond the old size read as zero after a
   * grow (the memory backend in O(1)); data beyond a shrink is dropped.
   */
  int (*set_size) (struct backend *b, uint64_t new_size);
  /* Bytes of memory (memory backend: data pages plus page-table nodes)
   * or disk (file: st_blocks * 512) in use, for tests.
   */
  uint64_t (*usage) (struct backend *b);
  void (*close) (struct backend *b);
};

struct backend {
  const struct backend_ops *ops;
};

/* Sparse memory: any size up to INT64_MAX, memory in proportion to data. */
struct backend *backend_memory_new (uint64_t size);
/* A regular file (or block device); created with size if it does not
 * exist and size != 0.  readonly opens O_RDONLY.
 */
struct backend *backend_file_open (const char *path, bool readonly,
                                   uint64_t size);

/* Helper for backend implementations: merges adjacent runs with equal
 * flags and enforces max_extents.  backend_extents_add returns 0 to go
 * on, 1 when max_extents have been delivered (stop, not an error) or -1
 * when the callback failed; backend_extents_finish delivers the pending
 * run and returns what extents() should return.
 */
struct backend_extents_acc {
  backend_extent_fn fn;
  void *opaque;
  uint32_t max, n;
  bool have;
  struct backend_extent cur;
};

static inline void
backend_extents_init (struct backend_extents_acc *a, backend_extent_fn fn,
                      void *opaque, uint32_t max_extents)
{
  a->fn = fn;
  a->opaque = opaque;
  a->max = max_extents ? max_extents : 1;
  a->n = 0;
  a->have = false;
  a->cur.length = 0;
  a->cur.flags = 0;
}

static inline int
backend_extents_flush_ (struct backend_extents_acc *a)
{
  a->have = false;
  if (a->fn (a->opaque, &a->cur) == -1)
    return -1;
  return ++a->n >= a->max ? 1 : 0;
}

static inline int
backend_extents_add (struct backend_extents_acc *a, uint64_t length,
                     uint32_t flags)
{
  int r;

  if (length == 0)
    return 0;
  if (a->have && a->cur.flags == flags) {
    a->cur.length += length;
    return 0;
  }
  if (a->have && (r = backend_extents_flush_ (a)) != 0)
    return r;
  a->cur.length = length;
  a->cur.flags = flags;
  a->have = true;
  return 0;
}

/* r: the last value returned by backend_extents_add (or 0). */
static inline int
backend_extents_finish (struct backend_extents_acc *a, int r)
{
  if (r == 0 && a->have)
    r = backend_extents_flush_ (a);
  return r == -1 ? -1 : 0;
}

#endif /* NBDP_BACKEND_H */
