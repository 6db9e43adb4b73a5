/* nbd-refserver: the storage behind an export.  A backend is a table of
 * operations over an opaque handle; both backends (memory.c, file.c) are
 * safe to call from any number of threads at once, and every operation
 * sees a size that is consistent for its whole duration.
 *
 * All operations return 0 on success or -1 with errno set (EIO, ENOSPC,
 * ENOTSUP for a fast zero that would not be fast, ...); the caller maps
 * errno to the NBD error with nbdp_errno_to_nbd().  Range checks against
 * the export size are done by the caller before the call.
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

/* Called for each extent in order; return -1 to stop early. */
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
   * least one byte and at most the range; stops after max_extents.
   */
  int (*extents) (struct backend *b, uint64_t count, uint64_t offset,
                  uint32_t max_extents, backend_extent_fn fn, void *opaque);
  /* Change the size.  Bytes beyond the old size read as zero after a
   * grow (the memory backend in O(1)); data beyond a shrink is dropped.
   */
  int (*set_size) (struct backend *b, uint64_t new_size);
  /* Bytes of memory (memory backend) or disk (file) in use, for tests. */
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

#endif /* NBDP_BACKEND_H */
