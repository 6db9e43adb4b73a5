/* nbd-refserver: the sparse memory backend.
 *
 * The export is a radix tree (a multi-level page table) of 64 KiB data
 * pages.  Each interior node holds 512 slots; a node at level L (L >= 1)
 * covers 2^(16 + 9 L) bytes, so a tree of height H covers 2^(16 + 9 H):
 * 32 MiB at H = 1, 16 GiB at 2, 8 TiB at 3, 4 PiB at 4, 2 EiB at 5 and
 * everything up to 2^63 at 6.  The height follows the size (grow adds a
 * root above the old one, shrink removes roots), so lookups cost as many
 * steps as the size needs, and a missing slot at any level is a hole of
 * that level's span: reads memset it, extents() skips it whole.
 *
 * Leaf slots hold a page pointer, with bit 0 (PAGE_ZERO) set when the
 * page is known to be all zero (write_zeroes without may_trim keeps the
 * page allocated, as NO_HOLE asks, and extents() then reports it as
 * NBD_STATE_ZERO).  Unwritten pages read as zero; writing zeroes into a
 * missing page allocates nothing.
 *
 * Locking: one writer-preferring rwlock per backend.
 *  - pread, pwrite and extents hold it shared.  pwrite adds missing
 *    nodes and pages with compare-and-swap on the slot (the new page is
 *    filled before it is published), and copies data with no lock held
 *    exclusively, so reads and writes of different connections and
 *    worker threads run in parallel.  Only overlapping concurrent
 *    requests race on bytes, which NBD leaves unspecified anyway.
 *  - trim, zero and set_size hold it exclusively: they free pages and
 *    nodes, or set PAGE_ZERO, which must not race with a reader.
 *
 * Invariant: every byte at or beyond the size reads as zero (writes are
 * range-checked under the lock, shrink punches everything past the new
 * size), so grow is O(height) and the new area reads as zero.
 *
 * Fast zero: write_zeroes never costs more than a memset of the pages
 * already allocated (or allocating zeroed pages when NO_HOLE asks for
 * the area to be provisioned), which is cheaper than receiving and
 * copying the same amount of data in a WRITE, so zero() succeeds with
 * fast=true rather than failing ENOTSUP.
 *
 * NO_HOLE provisioning is capped at PROVISION_MAX bytes of new pages per
 * request: beyond that zero() fails with ENOSPC and changes nothing, so
 * that one request cannot make the server allocate a huge sparse export.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nbd-proto.h"
#include "backend.h"

#define PAGE_SHIFT 16
#define PAGE_SIZE (UINT64_C (1) << PAGE_SHIFT)
#define PAGE_MASK (PAGE_SIZE - 1)
#define NODE_BITS 9
#define NODE_SLOTS (1u << NODE_BITS)
#define MAX_HEIGHT 6            /* 16 + 6 * 9 = 70 >= 63 */
#define PAGE_ZERO ((uintptr_t) 1)
#define PROVISION_MAX (UINT64_C (1) << 30)

struct node {
  _Atomic uintptr_t slot[NODE_SLOTS];
};

struct free_page {
  struct free_page *next;
};

#define SLAB_SIZE (UINT64_C (2) << 20)

struct mem_backend {
  struct backend b;             /* must be first */
  pthread_rwlock_t lock;
  _Atomic uint64_t size;        /* changed only with lock held exclusively */
  unsigned height;              /* idem */
  _Atomic uintptr_t root;       /* struct node * at level height, or 0 */
  _Atomic uint64_t npages, nnodes;

  /* Page allocator (see page_alloc). */
  pthread_mutex_t alloc_lock;
  struct free_page *free_list;  /* freed pages, linked through themselves */
  char *slab_next, *slab_end;   /* unused part of the newest slab */
  char **slabs;                 /* every slab, for close */
  size_t nslabs, slabs_cap;
};

static inline struct mem_backend *
to_mem (struct backend *b)
{
  return (struct mem_backend *) b;
}

/* Shift of the span covered by one slot of a node at level L. */
static inline unsigned
slot_shift (unsigned level)
{
  return PAGE_SHIFT + NODE_BITS * (level - 1);
}

static inline unsigned
slot_index (unsigned level, uint64_t offset)
{
  return (offset >> slot_shift (level)) & (NODE_SLOTS - 1);
}

/* Last byte covered by the node at level L whose first byte is base. */
static inline uint64_t
node_last (unsigned level, uint64_t base)
{
  unsigned shift = slot_shift (level) + NODE_BITS;

  if (shift >= 64)
    return UINT64_MAX;
  return base + ((UINT64_C (1) << shift) - 1);
}

static unsigned
height_for (uint64_t size)
{
  unsigned h = 1;

  while (h < MAX_HEIGHT && PAGE_SHIFT + NODE_BITS * h < 64 &&
         size > (UINT64_C (1) << (PAGE_SHIFT + NODE_BITS * h)))
    h++;
  return h;
}

static bool
is_zero (const void *buf, size_t n)
{
  const unsigned char *p = buf;
  size_t i;

  for (i = 0; i < 16 && i < n; i++)
    if (p[i])
      return false;
  /* The first 16 bytes are zero, and each byte equals the one 16 before. */
  return n <= 16 || memcmp (p, p + 16, n - 16) == 0;
}

/* Pages come from 2 MiB slabs mapped with MAP_POPULATE: the kernel
 * faults a slab in with one call, several times faster than taking a
 * fault on every 4 KiB of each new page (and malloc's per-thread arenas
 * add two mprotect calls per 64 KiB on top).  Freed pages go on a free
 * list and their memory is handed back with MADV_FREE, in runs of
 * adjacent pages; a reused page is always filled entirely before use.
 * Slabs are unmapped at close.
 */
static void *
page_alloc (struct mem_backend *m)
{
  void *p;

  pthread_mutex_lock (&m->alloc_lock);
  if (m->free_list) {
    p = m->free_list;
    m->free_list = m->free_list->next;
  }
  else {
    if (m->slab_next == m->slab_end) {
      char *slab;

      if (m->nslabs == m->slabs_cap) {
        size_t cap = m->slabs_cap ? 2 * m->slabs_cap : 64;
        char **v = realloc (m->slabs, cap * sizeof *v);

        if (v == NULL)
          goto out_of_memory;
        m->slabs = v;
        m->slabs_cap = cap;
      }
      slab = mmap (NULL, SLAB_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (slab == MAP_FAILED)
        goto out_of_memory;
      m->slabs[m->nslabs++] = slab;
      m->slab_next = slab;
      m->slab_end = slab + SLAB_SIZE;
    }
    p = m->slab_next;
    m->slab_next += PAGE_SIZE;
  }
  pthread_mutex_unlock (&m->alloc_lock);
  atomic_fetch_add_explicit (&m->npages, 1, memory_order_relaxed);
  return p;

 out_of_memory:
  pthread_mutex_unlock (&m->alloc_lock);
  errno = ENOMEM;
  return NULL;
}

/* A run of adjacent freed pages whose memory is not yet given back. */
struct release {
  char *start;
  uint64_t len;
};

static void
release_flush (struct release *r)
{
  if (r->len) {
    if (madvise (r->start, r->len, MADV_FREE) == -1)
      madvise (r->start, r->len, MADV_DONTNEED);  /* kernels before 4.5 */
    r->len = 0;
  }
}

/* Put a page on the free list.  With r, its memory goes back to the
 * kernel at the next release_flush (r); without, it stays (a page that
 * was never published).
 */
static void
page_free (struct mem_backend *m, void *p, struct release *r)
{
  struct free_page *f = p;

  if (r == NULL)
    ;
  else if (r->len && r->start + r->len == (char *) p)
    r->len += PAGE_SIZE;
  else {
    release_flush (r);
    r->start = p;
    r->len = PAGE_SIZE;
  }
  pthread_mutex_lock (&m->alloc_lock);
  f->next = m->free_list;
  m->free_list = f;
  pthread_mutex_unlock (&m->alloc_lock);
  atomic_fetch_sub_explicit (&m->npages, 1, memory_order_relaxed);
}

static inline uintptr_t
load (_Atomic uintptr_t *slot)
{
  return atomic_load_explicit (slot, memory_order_acquire);
}

static inline void
store (_Atomic uintptr_t *slot, uintptr_t v)
{
  atomic_store_explicit (slot, v, memory_order_release);
}

/* Find the leaf slot value for offset without allocating.  On a hole
 * returns 0 and sets *hole_len to the bytes from offset to the end of
 * the missing subtree (UINT64_MAX for an empty tree).
 */
static uintptr_t
lookup (struct mem_backend *m, uint64_t offset, uint64_t *hole_len)
{
  uintptr_t v = load (&m->root);
  unsigned level;

  if (v == 0) {
    *hole_len = UINT64_MAX;
    return 0;
  }
  for (level = m->height; level >= 1; level--) {
    _Atomic uintptr_t *slot =
      &((struct node *) v)->slot[slot_index (level, offset)];

    v = load (slot);
    if (v == 0) {
      uint64_t span = UINT64_C (1) << slot_shift (level);
      *hole_len = span - (offset & (span - 1));
      return 0;
    }
  }
  return v;
}

/* Find the leaf slot for offset, adding missing nodes.  NULL on ENOMEM. */
static _Atomic uintptr_t *
leaf_slot (struct mem_backend *m, uint64_t offset)
{
  _Atomic uintptr_t *slot = &m->root;
  unsigned level;

  for (level = m->height; level >= 1; level--) {
    uintptr_t v = load (slot);

    if (v == 0) {
      struct node *n = calloc (1, sizeof *n);
      uintptr_t expected = 0;

      if (n == NULL)
        return NULL;
      if (atomic_compare_exchange_strong_explicit (slot, &expected,
                                                   (uintptr_t) n,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire)) {
        atomic_fetch_add_explicit (&m->nnodes, 1, memory_order_relaxed);
        v = (uintptr_t) n;
      }
      else {
        free (n);               /* another thread added it first */
        v = expected;
      }
    }
    slot = &((struct node *) v)->slot[slot_index (level, offset)];
  }
  return slot;
}

static void
free_subtree (struct mem_backend *m, uintptr_t v, unsigned level,
              struct release *r)
{
  struct node *n;
  unsigned i;

  if (v == 0)
    return;
  if (level == 0) {
    page_free (m, (void *) (v & ~PAGE_ZERO), r);
    return;
  }
  n = (struct node *) v;
  for (i = 0; i < NODE_SLOTS; i++)
    free_subtree (m, load (&n->slot[i]), level - 1, r);
  free (n);
  atomic_fetch_sub_explicit (&m->nnodes, 1, memory_order_relaxed);
}

/* Free the nodes of a subtree; its pages go with their slabs. */
static void
free_nodes (uintptr_t v, unsigned level)
{
  struct node *n = (struct node *) v;
  unsigned i;

  if (v == 0 || level == 0)
    return;
  if (level > 1)
    for (i = 0; i < NODE_SLOTS; i++)
      free_nodes (load (&n->slot[i]), level - 1);
  free (n);
}

static bool
node_is_empty (struct node *n)
{
  unsigned i;

  for (i = 0; i < NODE_SLOTS; i++)
    if (load (&n->slot[i]))
      return false;
  return true;
}

/* Make [first, last] read as zero in the subtree held in *slot, a node
 * at level (or a page when level is 0) starting at base: free what is
 * wholly inside, memset the partial pages at the edges, and free nodes
 * that become empty.  Exclusive lock held.  Cost: the allocated nodes
 * and pages in the range, plus two 512-slot scans per level.
 */
static void
punch (struct mem_backend *m, _Atomic uintptr_t *slot, unsigned level,
       uint64_t base, uint64_t first, uint64_t last, struct release *r)
{
  uintptr_t v = load (slot);
  uint64_t lo, hi;
  unsigned i, i0, i1, shift;
  struct node *n;

  if (v == 0)
    return;
  if (level == 0) {
    if (first <= base && last >= base + PAGE_MASK) {
      store (slot, 0);
      free_subtree (m, v, 0, r);
    }
    else if (!(v & PAGE_ZERO)) {
      lo = first > base ? first : base;
      hi = last < base + PAGE_MASK ? last : base + PAGE_MASK;
      memset ((char *) v + (lo - base), 0, hi - lo + 1);
    }
    return;
  }

  n = (struct node *) v;
  shift = slot_shift (level);
  lo = first > base ? first : base;
  hi = node_last (level, base);
  if (last < hi)
    hi = last;
  i0 = (lo - base) >> shift;
  i1 = (hi - base) >> shift;
  for (i = i0; i <= i1; i++) {
    uint64_t cbase = base + ((uint64_t) i << shift);
    uint64_t clast = cbase + ((UINT64_C (1) << shift) - 1);

    if (first <= cbase && last >= clast) {
      free_subtree (m, load (&n->slot[i]), level - 1, r);
      store (&n->slot[i], 0);
    }
    else
      punch (m, &n->slot[i], level - 1, cbase, first, last, r);
  }
  if (node_is_empty (n)) {
    free (n);
    atomic_fetch_sub_explicit (&m->nnodes, 1, memory_order_relaxed);
    store (slot, 0);
  }
}

static bool
in_range (struct mem_backend *m, uint64_t count, uint64_t offset)
{
  uint64_t size = atomic_load_explicit (&m->size, memory_order_relaxed);

  return !(offset > size || count > size - offset);
}

static uint64_t
mem_get_size (struct backend *b)
{
  return atomic_load_explicit (&to_mem (b)->size, memory_order_relaxed);
}

static int
mem_pread (struct backend *b, void *buf, uint64_t count, uint64_t offset)
{
  struct mem_backend *m = to_mem (b);
  char *p = buf;

  pthread_rwlock_rdlock (&m->lock);
  if (!in_range (m, count, offset)) {
    pthread_rwlock_unlock (&m->lock);
    errno = EINVAL;
    return -1;
  }
  while (count > 0) {
    uint64_t hole_len, n;
    uintptr_t v = lookup (m, offset, &hole_len);

    if (v == 0) {
      n = hole_len < count ? hole_len : count;
      memset (p, 0, n);
    }
    else {
      uint64_t in = offset & PAGE_MASK;

      n = PAGE_SIZE - in < count ? PAGE_SIZE - in : count;
      memcpy (p, (char *) (v & ~PAGE_ZERO) + in, n);
    }
    p += n;
    offset += n;
    count -= n;
  }
  pthread_rwlock_unlock (&m->lock);
  return 0;
}

/* Copy one page's worth of a write.  Shared lock held. */
static int
write_page (struct mem_backend *m, const char *src, uint64_t n,
            uint64_t offset)
{
  uint64_t in = offset & PAGE_MASK, hole_len;
  _Atomic uintptr_t *slot;
  uintptr_t v, expected = 0;
  char *page;

  if (is_zero (src, n)) {
    /* Zeroes into a hole: nothing to store. */
    v = lookup (m, offset, &hole_len);
    if (v == 0)
      return 0;
    memcpy ((char *) (v & ~PAGE_ZERO) + in, src, n);
    return 0;
  }

  slot = leaf_slot (m, offset);
  if (slot == NULL)
    return -1;
  v = load (slot);
  if (v == 0) {
    page = page_alloc (m);
    if (page == NULL)
      return -1;
    memset (page, 0, in);
    memcpy (page + in, src, n);
    memset (page + in + n, 0, PAGE_SIZE - in - n);
    if (atomic_compare_exchange_strong_explicit (slot, &expected,
                                                 (uintptr_t) page,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire))
      return 0;
    page_free (m, page, NULL);  /* another writer added this page first */
    v = expected;
  }
  if (v & PAGE_ZERO)
    atomic_fetch_and_explicit (slot, ~PAGE_ZERO, memory_order_acq_rel);
  memcpy ((char *) (v & ~PAGE_ZERO) + in, src, n);
  return 0;
}

static int
mem_pwrite (struct backend *b, const void *buf, uint64_t count,
            uint64_t offset, bool fua)
{
  struct mem_backend *m = to_mem (b);
  const char *p = buf;
  int r = 0;

  pthread_rwlock_rdlock (&m->lock);
  if (!in_range (m, count, offset)) {
    pthread_rwlock_unlock (&m->lock);
    errno = ENOSPC;
    return -1;
  }
  while (count > 0) {
    uint64_t in = offset & PAGE_MASK;
    uint64_t n = PAGE_SIZE - in < count ? PAGE_SIZE - in : count;

    if (write_page (m, p, n, offset) == -1) {
      r = -1;
      break;
    }
    p += n;
    offset += n;
    count -= n;
  }
  pthread_rwlock_unlock (&m->lock);
  if (r == -1)
    errno = ENOMEM;
  return r;
}

static int
mem_flush (struct backend *b)
{
  return 0;
}

/* Punch [offset, offset+count) with the lock held exclusively. */
static int
trim_range (struct mem_backend *m, uint64_t count, uint64_t offset, int err)
{
  pthread_rwlock_wrlock (&m->lock);
  if (!in_range (m, count, offset)) {
    pthread_rwlock_unlock (&m->lock);
    errno = err;
    return -1;
  }
  if (count > 0) {
    uint64_t last = offset + count - 1;
    struct release r = { NULL, 0 };

    /* Bytes past the size are zero already: a range that reaches the end
     * may free the last page even when the size is not page aligned.
     */
    if (offset + count == atomic_load_explicit (&m->size,
                                                memory_order_relaxed))
      last = UINT64_MAX;
    punch (m, &m->root, m->height, 0, offset, last, &r);
    release_flush (&r);
  }
  pthread_rwlock_unlock (&m->lock);
  return 0;
}

static int
mem_trim (struct backend *b, uint64_t count, uint64_t offset, bool fua)
{
  return trim_range (to_mem (b), count, offset, EINVAL);
}

static int walk (struct backend_extents_acc *acc, uintptr_t v, unsigned level,
                 uint64_t base, uint64_t first, uint64_t last);

static int
add_hole_bytes (void *opaque, const struct backend_extent *e)
{
  if (e->flags & NBD_STATE_HOLE)
    *(uint64_t *) opaque += e->length;
  return 0;
}

/* Zero [offset, offset+count) keeping (or creating) the pages: NO_HOLE
 * asks for the area to be provisioned.  Exclusive lock held.
 */
static int
zero_provision (struct mem_backend *m, uint64_t count, uint64_t offset)
{
  struct backend_extents_acc acc;
  uint64_t holes = 0;

  /* Refuse before changing anything if too much would be allocated. */
  backend_extents_init (&acc, add_hole_bytes, &holes, UINT32_MAX);
  backend_extents_finish (&acc, walk (&acc, load (&m->root), m->height, 0,
                                      offset, offset + count - 1));
  if (holes > PROVISION_MAX) {
    errno = ENOSPC;
    return -1;
  }

  while (count > 0) {
    uint64_t in = offset & PAGE_MASK;
    uint64_t n = PAGE_SIZE - in < count ? PAGE_SIZE - in : count;
    _Atomic uintptr_t *slot = leaf_slot (m, offset);
    uintptr_t v;

    if (slot == NULL)
      return -1;
    v = load (slot);
    if (v == 0) {
      void *page = page_alloc (m);

      if (page == NULL)
        return -1;
      memset (page, 0, PAGE_SIZE);
      store (slot, (uintptr_t) page | PAGE_ZERO);
    }
    else if (!(v & PAGE_ZERO)) {
      memset ((char *) v + in, 0, n);
      if (n == PAGE_SIZE)
        store (slot, v | PAGE_ZERO);
    }
    offset += n;
    count -= n;
  }
  return 0;
}

static int
mem_zero (struct backend *b, uint64_t count, uint64_t offset,
          bool may_trim, bool fast, bool fua)
{
  struct mem_backend *m = to_mem (b);
  int r = 0;

  if (may_trim)
    return trim_range (m, count, offset, ENOSPC);

  pthread_rwlock_wrlock (&m->lock);
  if (!in_range (m, count, offset)) {
    pthread_rwlock_unlock (&m->lock);
    errno = ENOSPC;
    return -1;
  }
  if (count > 0)
    r = zero_provision (m, count, offset);
  pthread_rwlock_unlock (&m->lock);
  return r;
}

static int
mem_cache (struct backend *b, uint64_t count, uint64_t offset)
{
  return 0;
}

/* Extents inside a data page are reported per 4 KiB sub-block, all-zero
 * sub-blocks as NBD_STATE_ZERO: data that was overwritten with zeroes, or
 * the zeroed tail of a page cut by a shrink and exposed again by a grow
 * (RZ-BS-2), then reads as zero in block status too.  The scan costs one
 * pass over the allocated memory of the range asked about.
 */
#define SUBBLOCK 4096

static int
walk_page (struct backend_extents_acc *acc, const char *page, uint64_t base,
           uint64_t lo, uint64_t hi)
{
  while (lo <= hi) {
    uint64_t end = lo | (SUBBLOCK - 1);
    int r;

    if (end > hi)
      end = hi;
    r = backend_extents_add (acc, end - lo + 1,
                             is_zero (page + (lo - base), end - lo + 1)
                             ? NBD_STATE_ZERO : 0);
    if (r != 0)
      return r;
    lo = end + 1;
  }
  return 0;
}

/* Report [first, last] of the subtree v (level, base) in order. */
static int
walk (struct backend_extents_acc *acc, uintptr_t v, unsigned level,
      uint64_t base, uint64_t first, uint64_t last)
{
  uint64_t lo = first > base ? first : base;
  uint64_t hi = level == 0 ? base + PAGE_MASK : node_last (level, base);
  unsigned i, i0, i1, shift;
  struct node *n;
  int r;

  if (last < hi)
    hi = last;
  if (v == 0)
    return backend_extents_add (acc, hi - lo + 1,
                                NBD_STATE_HOLE | NBD_STATE_ZERO);
  if (level == 0 && (v & PAGE_ZERO))
    return backend_extents_add (acc, hi - lo + 1, NBD_STATE_ZERO);
  if (level == 0)
    return walk_page (acc, (const char *) v, base, lo, hi);

  n = (struct node *) v;
  shift = slot_shift (level);
  i0 = (lo - base) >> shift;
  i1 = (hi - base) >> shift;
  for (i = i0; i <= i1; i++) {
    r = walk (acc, load (&n->slot[i]), level - 1,
              base + ((uint64_t) i << shift), lo, hi);
    if (r != 0)
      return r;
  }
  return 0;
}

static int
mem_extents (struct backend *b, uint64_t count, uint64_t offset,
             uint32_t max_extents, backend_extent_fn fn, void *opaque)
{
  struct mem_backend *m = to_mem (b);
  struct backend_extents_acc acc;
  int r = 0;

  backend_extents_init (&acc, fn, opaque, max_extents);
  pthread_rwlock_rdlock (&m->lock);
  if (!in_range (m, count, offset) || count == 0) {
    pthread_rwlock_unlock (&m->lock);
    errno = EINVAL;
    return -1;
  }
  r = walk (&acc, load (&m->root), m->height, 0, offset, offset + count - 1);
  r = backend_extents_finish (&acc, r);
  pthread_rwlock_unlock (&m->lock);
  return r;
}

static int
mem_set_size (struct backend *b, uint64_t new_size)
{
  struct mem_backend *m = to_mem (b);
  uint64_t old_size;
  unsigned h;

  if (new_size > INT64_MAX) {
    errno = EINVAL;
    return -1;
  }
  h = height_for (new_size);

  pthread_rwlock_wrlock (&m->lock);
  old_size = atomic_load_explicit (&m->size, memory_order_relaxed);
  if (new_size < old_size) {
    /* Drop everything past the new end so that it reads as zero after a
     * later grow; cost follows what is allocated there, not the size.
     */
    struct release r = { NULL, 0 };

    punch (m, &m->root, m->height, 0, new_size, UINT64_MAX, &r);
    release_flush (&r);
    for (; m->height > h; m->height--) {
      uintptr_t v = load (&m->root);

      if (v) {                  /* only slot 0 can be left */
        store (&m->root, load (&((struct node *) v)->slot[0]));
        free ((void *) v);
        atomic_fetch_sub_explicit (&m->nnodes, 1, memory_order_relaxed);
      }
    }
  }
  else {
    for (; m->height < h; m->height++) {
      uintptr_t v = load (&m->root);
      struct node *n;

      if (v == 0)
        continue;
      n = calloc (1, sizeof *n);
      if (n == NULL) {
        pthread_rwlock_unlock (&m->lock);
        errno = ENOMEM;
        return -1;
      }
      store (&n->slot[0], v);
      store (&m->root, (uintptr_t) n);
      atomic_fetch_add_explicit (&m->nnodes, 1, memory_order_relaxed);
    }
  }
  atomic_store_explicit (&m->size, new_size, memory_order_relaxed);
  pthread_rwlock_unlock (&m->lock);
  return 0;
}

static uint64_t
mem_usage (struct backend *b)
{
  struct mem_backend *m = to_mem (b);

  return atomic_load_explicit (&m->npages, memory_order_relaxed) * PAGE_SIZE +
    atomic_load_explicit (&m->nnodes, memory_order_relaxed) *
    sizeof (struct node);
}

static void
mem_close (struct backend *b)
{
  struct mem_backend *m = to_mem (b);
  size_t i;

  if (m == NULL)
    return;
  free_nodes (load (&m->root), m->height);
  for (i = 0; i < m->nslabs; i++)
    munmap (m->slabs[i], SLAB_SIZE);
  free (m->slabs);
  pthread_mutex_destroy (&m->alloc_lock);
  pthread_rwlock_destroy (&m->lock);
  free (m);
}

static const struct backend_ops mem_ops = {
  .name = "memory",
  .get_size = mem_get_size,
  .pread = mem_pread,
  .pwrite = mem_pwrite,
  .flush = mem_flush,
  .trim = mem_trim,
  .zero = mem_zero,
  .cache = mem_cache,
  .extents = mem_extents,
  .set_size = mem_set_size,
  .usage = mem_usage,
  .close = mem_close,
};

struct backend *
backend_memory_new (uint64_t size)
{
  struct mem_backend *m;
  pthread_rwlockattr_t attr;
  int err;

  if (size > INT64_MAX) {
    errno = EINVAL;
    return NULL;
  }
  m = calloc (1, sizeof *m);
  if (m == NULL)
    return NULL;
  m->b.ops = &mem_ops;
  m->height = height_for (size);
  atomic_init (&m->size, size);
  atomic_init (&m->root, 0);
  atomic_init (&m->npages, 0);
  atomic_init (&m->nnodes, 0);

  /* Writer preference: a steady stream of reads must not starve trim,
   * zero and resize.  (None of our paths takes the lock recursively.)
   */
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  err = pthread_rwlock_init (&m->lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  if (err) {
    free (m);
    errno = err;
    return NULL;
  }
  pthread_mutex_init (&m->alloc_lock, NULL);
  return &m->b;
}
