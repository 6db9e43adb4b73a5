/* nbd-refserver: the file backend, a regular file or a block device.
 *
 * Data moves with pread/pwrite; FUA and flush are fdatasync.  Trim punches
 * a hole (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE); zero punches when may_trim,
 * otherwise uses FALLOC_FL_ZERO_RANGE; both fall back to writing zeroes
 * when the filesystem or device cannot do it, and a fast zero fails with
 * ENOTSUP when only that slow fallback is left.  Extents come from
 * lseek SEEK_DATA/SEEK_HOLE (everything is data where that is not
 * supported, e.g. block devices).
 *
 * A read-only backend (opened O_RDONLY) fails every modifying operation
 * with EROFS; the server maps that to NBD_EPERM.
 *
 * Locking: a rwlock held shared by every operation and exclusively by
 * set_size, so that each operation sees one size for its whole duration;
 * the kernel orders the I/O itself.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nbd-proto.h"
#include "backend.h"

#define ZERO_BUF_SIZE (64 * 1024)
static const char zero_buf[ZERO_BUF_SIZE];

struct file_backend {
  struct backend b;             /* must be first */
  pthread_rwlock_t lock;
  int fd;
  bool readonly;
  bool is_block;
  _Atomic uint64_t size;        /* changed only with lock held exclusively */
  /* Cleared the first time the kernel says EOPNOTSUPP. */
  atomic_bool can_punch, can_zero_range, can_seek_data;
};

static inline struct file_backend *
to_file (struct backend *b)
{
  return (struct file_backend *) b;
}

static bool
in_range (struct file_backend *f, uint64_t count, uint64_t offset)
{
  uint64_t size = atomic_load_explicit (&f->size, memory_order_relaxed);

  return !(offset > size || count > size - offset);
}

/* Take the shared lock and check the range; errno = err if outside. */
static int
begin (struct file_backend *f, uint64_t count, uint64_t offset, bool write,
       int err)
{
  if (write && f->readonly) {
    errno = EROFS;
    return -1;
  }
  pthread_rwlock_rdlock (&f->lock);
  if (!in_range (f, count, offset)) {
    pthread_rwlock_unlock (&f->lock);
    errno = err;
    return -1;
  }
  return 0;
}

static int
end (struct file_backend *f, int r)
{
  int saved_errno = errno;

  pthread_rwlock_unlock (&f->lock);
  errno = saved_errno;
  return r;
}

static bool
not_supported (int err)
{
  return err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS ||
    err == EINVAL || err == ENODEV;
}

static uint64_t
file_get_size (struct backend *b)
{
  return atomic_load_explicit (&to_file (b)->size, memory_order_relaxed);
}

static int
read_full (int fd, char *p, uint64_t count, uint64_t offset)
{
  while (count > 0) {
    ssize_t r = pread (fd, p, count > SSIZE_MAX ? SSIZE_MAX : count, offset);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {               /* the file was truncated behind our back */
      errno = EIO;
      return -1;
    }
    p += r;
    offset += r;
    count -= r;
  }
  return 0;
}

static int
write_full (int fd, const char *p, uint64_t count, uint64_t offset)
{
  while (count > 0) {
    ssize_t r = pwrite (fd, p, count > SSIZE_MAX ? SSIZE_MAX : count, offset);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    offset += r;
    count -= r;
  }
  return 0;
}

static int
file_pread (struct backend *b, void *buf, uint64_t count, uint64_t offset)
{
  struct file_backend *f = to_file (b);

  if (begin (f, count, offset, false, EINVAL) == -1)
    return -1;
  return end (f, read_full (f->fd, buf, count, offset));
}

static int
sync_range (struct file_backend *f, uint64_t count, uint64_t offset)
{
  /* sync_file_range does not flush the disk cache or the metadata that
   * makes data reachable, so it is not enough for FUA.
   */
  return fdatasync (f->fd);
}

static int
file_pwrite (struct backend *b, const void *buf, uint64_t count,
             uint64_t offset, bool fua)
{
  struct file_backend *f = to_file (b);
  int r;

  if (begin (f, count, offset, true, ENOSPC) == -1)
    return -1;
  r = write_full (f->fd, buf, count, offset);
  if (r == 0 && fua)
    r = sync_range (f, count, offset);
  return end (f, r);
}

static int
file_flush (struct backend *b)
{
  struct file_backend *f = to_file (b);

  if (f->readonly)
    return 0;
  return fdatasync (f->fd);
}

static int
write_zeroes (struct file_backend *f, uint64_t count, uint64_t offset)
{
  while (count > 0) {
    uint64_t n = count < ZERO_BUF_SIZE ? count : ZERO_BUF_SIZE;

    if (write_full (f->fd, zero_buf, n, offset) == -1)
      return -1;
    offset += n;
    count -= n;
  }
  return 0;
}

/* Try fallocate with mode; 1 if done, 0 if not supported, -1 on error. */
static int
try_fallocate (struct file_backend *f, atomic_bool *can, int mode,
               uint64_t count, uint64_t offset)
{
  if (!atomic_load_explicit (can, memory_order_relaxed))
    return 0;
  for (;;) {
    if (fallocate (f->fd, mode, offset, count) == 0)
      return 1;
    if (errno == EINTR)
      continue;
    if (not_supported (errno)) {
      atomic_store_explicit (can, false, memory_order_relaxed);
      return 0;
    }
    return -1;
  }
}

/* Make the range read as zero.  Shared lock held. */
static int
do_zero (struct file_backend *f, uint64_t count, uint64_t offset,
         bool may_trim, bool fast)
{
  int r;

  if (count == 0)
    return 0;
  if (may_trim) {
    r = try_fallocate (f, &f->can_punch,
                       FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       count, offset);
    if (r != 0)
      return r == 1 ? 0 : -1;
  }
  /* KEEP_SIZE: block devices insist on it; files are not extended. */
  r = try_fallocate (f, &f->can_zero_range,
                     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                     count, offset);
  if (r != 0)
    return r == 1 ? 0 : -1;
  if (fast) {
    errno = ENOTSUP;
    return -1;
  }
  return write_zeroes (f, count, offset);
}

static int
file_trim (struct backend *b, uint64_t count, uint64_t offset, bool fua)
{
  struct file_backend *f = to_file (b);
  int r;

  if (begin (f, count, offset, true, EINVAL) == -1)
    return -1;
  /* Our backends promise that trimmed data reads as zero. */
  r = do_zero (f, count, offset, true, false);
  if (r == 0 && fua)
    r = sync_range (f, count, offset);
  return end (f, r);
}

static int
file_zero (struct backend *b, uint64_t count, uint64_t offset,
           bool may_trim, bool fast, bool fua)
{
  struct file_backend *f = to_file (b);
  int r;

  if (begin (f, count, offset, true, ENOSPC) == -1)
    return -1;
  r = do_zero (f, count, offset, may_trim, fast);
  if (r == 0 && fua)
    r = sync_range (f, count, offset);
  return end (f, r);
}

static int
file_cache (struct backend *b, uint64_t count, uint64_t offset)
{
  struct file_backend *f = to_file (b);
  int err;

  if (begin (f, count, offset, false, EINVAL) == -1)
    return -1;
  err = posix_fadvise (f->fd, offset, count, POSIX_FADV_WILLNEED);
  pthread_rwlock_unlock (&f->lock);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* Next data and hole boundaries.  Returns 0 with *is_data and *next (the
 * end of the run that starts at pos, unclipped), or -1 on error.
 */
static int
probe (struct file_backend *f, uint64_t pos, bool *is_data, uint64_t *next)
{
  off_t r;

  if (!atomic_load_explicit (&f->can_seek_data, memory_order_relaxed))
    goto all_data;

  r = lseek (f->fd, pos, SEEK_DATA);
  if (r == -1) {
    if (errno == ENXIO) {       /* no data from pos to the end */
      *is_data = false;
      *next = UINT64_MAX;
      return 0;
    }
    if (not_supported (errno)) {
      atomic_store_explicit (&f->can_seek_data, false, memory_order_relaxed);
      goto all_data;
    }
    return -1;
  }
  if ((uint64_t) r > pos) {
    *is_data = false;
    *next = r;
    return 0;
  }
  r = lseek (f->fd, pos, SEEK_HOLE);
  if (r == -1) {
    if (errno == ENXIO)         /* truncated meanwhile: treat as data */
      goto all_data;
    return -1;
  }
  *is_data = true;
  *next = (uint64_t) r > pos ? (uint64_t) r : UINT64_MAX;
  return 0;

 all_data:
  *is_data = true;
  *next = UINT64_MAX;
  return 0;
}

static int
file_extents (struct backend *b, uint64_t count, uint64_t offset,
              uint32_t max_extents, backend_extent_fn fn, void *opaque)
{
  struct file_backend *f = to_file (b);
  struct backend_extents_acc acc;
  uint64_t pos = offset, last;
  int r = 0;

  if (count == 0) {
    errno = EINVAL;
    return -1;
  }
  if (begin (f, count, offset, false, EINVAL) == -1)
    return -1;
  backend_extents_init (&acc, fn, opaque, max_extents);
  last = offset + count - 1;
  while (r == 0 && pos <= last) {
    bool is_data;
    uint64_t next, n;

    if (probe (f, pos, &is_data, &next) == -1)
      return end (f, -1);
    n = next - 1 >= last ? last - pos + 1 : next - pos;
    r = backend_extents_add (&acc, n,
                             is_data ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO);
    pos += n;
  }
  r = backend_extents_finish (&acc, r);
  return end (f, r);
}

static int
file_set_size (struct backend *b, uint64_t new_size)
{
  struct file_backend *f = to_file (b);
  int r;

  if (f->readonly) {
    errno = EROFS;
    return -1;
  }
  if (f->is_block) {
    errno = ENOTSUP;
    return -1;
  }
  if (new_size > INT64_MAX) {
    errno = EINVAL;
    return -1;
  }
  pthread_rwlock_wrlock (&f->lock);
  r = ftruncate (f->fd, new_size);
  if (r == 0)
    atomic_store_explicit (&f->size, new_size, memory_order_relaxed);
  return end (f, r);
}

static uint64_t
file_usage (struct backend *b)
{
  struct stat st;

  if (fstat (to_file (b)->fd, &st) == -1)
    return 0;
  return (uint64_t) st.st_blocks * 512;
}

static void
file_close (struct backend *b)
{
  struct file_backend *f = to_file (b);

  if (f == NULL)
    return;
  close (f->fd);
  pthread_rwlock_destroy (&f->lock);
  free (f);
}

static const struct backend_ops file_ops = {
  .name = "file",
  .get_size = file_get_size,
  .pread = file_pread,
  .pwrite = file_pwrite,
  .flush = file_flush,
  .trim = file_trim,
  .zero = file_zero,
  .cache = file_cache,
  .extents = file_extents,
  .set_size = file_set_size,
  .usage = file_usage,
  .close = file_close,
};

/* Open path, creating it with size bytes if missing (and size != 0); an
 * existing file keeps its own size.  Returns the fd or -1.
 */
static int
open_file (const char *path, bool readonly, uint64_t size)
{
  int fd;

  fd = open (path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT || readonly || size == 0)
    return fd;
  if (size > INT64_MAX) {
    errno = EINVAL;
    return -1;
  }
  fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd == -1) {
    if (errno == EEXIST)        /* created by someone else meanwhile */
      return open (path, O_RDWR | O_CLOEXEC);
    return -1;
  }
  if (ftruncate (fd, size) == -1) {
    int saved_errno = errno;

    close (fd);
    unlink (path);
    errno = saved_errno;
    return -1;
  }
  return fd;
}

struct backend *
backend_file_open (const char *path, bool readonly, uint64_t size)
{
  struct file_backend *f;
  pthread_rwlockattr_t attr;
  struct stat st;
  uint64_t file_size;
  int fd, err;

  fd = open_file (path, readonly, size);
  if (fd == -1)
    return NULL;
  if (fstat (fd, &st) == -1)
    goto err_close;
  if (S_ISBLK (st.st_mode)) {
    if (ioctl (fd, BLKGETSIZE64, &file_size) == -1)
      goto err_close;
  }
  else if (S_ISREG (st.st_mode))
    file_size = st.st_size;
  else {
    errno = EINVAL;             /* a directory, FIFO, character device... */
    goto err_close;
  }
  if (file_size > INT64_MAX) {
    errno = EFBIG;
    goto err_close;
  }

  f = calloc (1, sizeof *f);
  if (f == NULL)
    goto err_close;
  f->b.ops = &file_ops;
  f->fd = fd;
  f->readonly = readonly;
  f->is_block = S_ISBLK (st.st_mode);
  atomic_init (&f->size, file_size);
  atomic_init (&f->can_punch, true);
  atomic_init (&f->can_zero_range, true);
  atomic_init (&f->can_seek_data, true);

  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  err = pthread_rwlock_init (&f->lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  if (err) {
    free (f);
    errno = err;
    goto err_close;
  }
  return &f->b;

 err_close:
  err = errno;
  close (fd);
  errno = err;
  return NULL;
}
