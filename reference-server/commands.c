/* nbd-refserver: the transmission commands.  transmission.c has already
 * checked what the table below declares (known command, flags, read-only,
 * range, alignment); each handler here checks what is particular to its
 * command, calls the backend and replies.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

int
worker_reserve (struct worker *w, size_t n)
{
  unsigned char *p;
  size_t cap;

  if (n <= w->cap)
    return 0;
  /* Grow in big steps so that a client ramping up its request size does
   * not cause a reallocation per request.
   */
  cap = w->cap ? w->cap : 65536;
  while (cap < n)
    cap *= 2;
  p = malloc (cap);
  if (p == NULL)
    return -1;
  free (w->buf);
  w->buf = p;
  w->cap = cap;
  return 0;
}

void
worker_free (struct worker *w)
{
  free (w->buf);
  free (w->ext);
  free (w->out);
  memset (w, 0, sizeof *w);
}

static int
reply_errno (struct conn *c, const struct request *req, int err,
             const char *what)
{
  return reply_error (c, req, nbdp_errno_to_nbd (err), "%s: %s", what,
                      strerror (err));
}

/* ---- NBD_CMD_READ ---- */

struct segment {
  uint64_t offset;
  uint64_t length;
  bool hole;
};

struct seg_list {
  struct segment s[MAX_READ_CHUNKS];
  size_t n;
  uint64_t end;             /* end of what the segments cover */
};

static void
seg_add (struct seg_list *l, uint64_t offset, uint64_t length, bool hole)
{
  if (l->n > 0 && l->s[l->n - 1].hole == hole) {
    l->s[l->n - 1].length += length;
  }
  else {
    l->s[l->n].offset = offset;
    l->s[l->n].length = length;
    l->s[l->n].hole = hole;
    l->n++;
  }
  l->end = offset + length;
}

static int
read_extent_cb (void *opaque, const struct backend_extent *e)
{
  struct seg_list *l = opaque;

  /* extents() is asked for at most MAX_READ_CHUNKS - 1 extents, which
   * keeps one slot free for a data remainder after an early stop.
   */
  if (l->n >= MAX_READ_CHUNKS) {
    errno = ENOBUFS;
    return -1;
  }
  if (e->length == 0)
    return 0;
  seg_add (l, l->end, e->length, e->flags & NBD_STATE_ZERO);
  return 0;
}

static int
cmd_read (struct conn *c, const struct request *req, struct worker *w)
{
  struct backend *b = c->exp->backend;
  struct seg_list l;
  unsigned char meta[MAX_READ_CHUNKS + 1][NBDP_EXTENDED_REPLY_SIZE + 12];
  struct iovec iov[2 * (MAX_READ_CHUNKS + 1)];
  size_t niov = 0, order[MAX_READ_CHUNKS + 1];
  char what[64];

  if (req->count > c->exp->max_block) {
    /* Simple replies cannot be split; structured ones could be, but we
     * use the permission to refuse large reads up front.
     */
    if (c->structured)
      return reply_error (c, req, NBD_EOVERFLOW, "read of %" PRIu64 " bytes "
                          "is over the maximum payload of %" PRIu32,
                          req->count, c->exp->max_block);
    return reply_error (c, req, NBD_EINVAL, "read of %" PRIu64 " bytes is "
                        "over the maximum payload of %" PRIu32, req->count,
                        c->exp->max_block);
  }
  if (req->count == 0)
    return reply_ok (c, req);
  if (worker_reserve (w, req->count) == -1)
    return reply_errno (c, req, errno, "read buffer");

  if (!c->structured) {
    struct iovec data = { .iov_base = w->buf, .iov_len = req->count };
    if (b->ops->pread (b, w->buf, req->count, req->offset) == -1)
      return reply_errno (c, req, errno, "read");
    return reply_simple_data (c, req, &data, 1);
  }

  /* Structured: describe zero areas as holes (unless DF), data as data. */
  l.n = 0;
  l.end = req->offset;
  if (!(req->flags & NBD_CMD_FLAG_DF)) {
    if (b->ops->extents (b, req->count, req->offset, MAX_READ_CHUNKS - 1,
                         read_extent_cb, &l) == -1) {
      l.n = 0;                  /* no map: everything is data */
      l.end = req->offset;
    }
  }
  if (l.end - req->offset < req->count)
    seg_add (&l, l.end, req->offset + req->count - l.end, false);

  for (size_t i = 0; i < l.n; i++) {
    struct segment *s = &l.s[i];
    if (!s->hole &&
        b->ops->pread (b, w->buf + (s->offset - req->offset), s->length,
                       s->offset) == -1)
      return reply_errno (c, req, errno, "read");
  }

  /* --reorder-replies: split lone data and send the chunks backwards. */
  if (config.reorder_replies && !(req->flags & NBD_CMD_FLAG_DF) &&
      l.n == 1 && l.s[0].length >= 1024) {
    uint64_t half = (l.s[0].length / 2) & ~UINT64_C (511);
    l.s[1].offset = l.s[0].offset + half;
    l.s[1].length = l.s[0].length - half;
    l.s[1].hole = l.s[0].hole;
    l.s[0].length = half;
    l.n = 2;
  }
  for (size_t i = 0; i < l.n; i++)
    order[i] = config.reorder_replies ? l.n - 1 - i : i;

  for (size_t k = 0; k < l.n; k++) {
    struct segment *s = &l.s[order[k]];
    uint16_t flags = k == l.n - 1 ? NBD_REPLY_FLAG_DONE : 0;
    size_t h;

    if (s->hole) {
      h = reply_chunk_header (c, req, meta[k], flags,
                              NBD_REPLY_TYPE_OFFSET_HOLE, 12);
      nbdp_put64 (meta[k] + h, s->offset);
      nbdp_put32 (meta[k] + h + 8, s->length);
      iov[niov].iov_base = meta[k];
      iov[niov++].iov_len = h + 12;
    }
    else {
      h = reply_chunk_header (c, req, meta[k], flags,
                              NBD_REPLY_TYPE_OFFSET_DATA, 8 + s->length);
      nbdp_put64 (meta[k] + h, s->offset);
      iov[niov].iov_base = meta[k];
      iov[niov++].iov_len = h + 8;
      iov[niov].iov_base = w->buf + (s->offset - req->offset);
      iov[niov++].iov_len = s->length;
    }
  }
  snprintf (what, sizeof what, "%zu content chunk%s%s", l.n,
            l.n == 1 ? "" : "s", l.n == 1 && l.s[0].hole ? " (hole)" : "");
  return reply_send (c, req, iov, niov, what);
}

/* ---- NBD_CMD_WRITE ---- */

static int
cmd_write (struct conn *c, const struct request *req, struct worker *w)
{
  struct backend *b = c->exp->backend;

  if (req->count > 0 &&
      b->ops->pwrite (b, w->buf, req->count, req->offset,
                      req->flags & NBD_CMD_FLAG_FUA) == -1)
    return reply_errno (c, req, errno, "write");
  return reply_ok (c, req);
}

/* ---- NBD_CMD_FLUSH ---- */

static int
cmd_flush (struct conn *c, const struct request *req, struct worker *w)
{
  struct backend *b = c->exp->backend;

  if (req->offset != 0 || req->count != 0)
    return reply_error (c, req, NBD_EINVAL, "flush with offset %" PRIu64
                        " and length %" PRIu64 ", both must be zero",
                        req->offset, req->count);
  if (b->ops->flush (b) == -1)
    return reply_errno (c, req, errno, "flush");
  return reply_ok (c, req);
}

/* ---- NBD_CMD_TRIM ---- */

static int
cmd_trim (struct conn *c, const struct request *req, struct worker *w)
{
  struct backend *b = c->exp->backend;

  if (req->count > 0 &&
      b->ops->trim (b, req->count, req->offset,
                    req->flags & NBD_CMD_FLAG_FUA) == -1)
    return reply_errno (c, req, errno, "trim");
  return reply_ok (c, req);
}

/* ---- NBD_CMD_CACHE ---- */

static int
cmd_cache (struct conn *c, const struct request *req, struct worker *w)
{
  struct backend *b = c->exp->backend;

  if (req->count > 0 && b->ops->cache (b, req->count, req->offset) == -1)
    return reply_errno (c, req, errno, "cache");
  return reply_ok (c, req);
}

/* ---- NBD_CMD_WRITE_ZEROES ---- */

static int
cmd_write_zeroes (struct conn *c, const struct request *req,
                  struct worker *w)
{
  struct backend *b = c->exp->backend;
  bool fast = req->flags & NBD_CMD_FLAG_FAST_ZERO;
  int err;

  if (req->count == 0)
    return reply_ok (c, req);
  if (b->ops->zero (b, req->count, req->offset,
                    !(req->flags & NBD_CMD_FLAG_NO_HOLE), fast,
                    req->flags & NBD_CMD_FLAG_FUA) == 0)
    return reply_ok (c, req);
  err = errno;
  /* ENOTSUP is only for a fast zero that would not be fast. */
  if (err == ENOTSUP && !fast)
    err = EIO;
  return reply_errno (c, req, err, fast ? "fast zero" : "write zeroes");
}

/* ---- NBD_CMD_BLOCK_STATUS ---- */

struct ext_collect {
  struct worker *w;
  size_t n, max;
};

static int
status_cb (void *opaque, const struct backend_extent *e)
{
  struct ext_collect *x = opaque;

  if (x->n >= x->max)
    return -1;
  if (e->length == 0)
    return 0;
  if (x->n > 0 && x->w->ext[x->n - 1].flags == e->flags) {
    x->w->ext[x->n - 1].length += e->length;
    return 0;
  }
  x->w->ext[x->n].length = e->length;
  x->w->ext[x->n].flags = e->flags & (NBD_STATE_HOLE | NBD_STATE_ZERO);
  x->n++;
  return 0;
}

static void
emit (struct backend_extent *out, size_t *n, uint64_t length, uint32_t flags)
{
  if (*n > 0 && out[*n - 1].flags == flags)
    out[*n - 1].length += length;
  else {
    out[*n].length = length;
    out[*n].flags = flags;
    (*n)++;
  }
}

/* Make every descriptor a multiple of the minimum block size (except one
 * ending at the end of the export): a block that several extents share
 * gets the flags they have in common.  raw[0..n) covers from offset
 * (which is aligned); out must have room for 2n+1 entries.  Returns the
 * number of extents written to out (at least one).
 */
static size_t
align_extents (const struct backend_extent *raw, size_t n, uint64_t offset,
               uint64_t export_size, uint32_t min, struct backend_extent *out)
{
  uint64_t end = offset, pos = offset, rs = offset;
  size_t i = 0, nout = 0;

  for (size_t k = 0; k < n; k++)
    end += raw[k].length;
  if (end != export_size && end % min) {
    uint64_t a = end - end % min;
    if (a > offset)
      end = a;
    else
      end = offset + min < export_size ? offset + min : export_size;
  }
  while (pos < end) {
    uint64_t re, ab, be;
    uint32_t flags;

    while (i < n && rs + raw[i].length <= pos) {
      rs += raw[i].length;
      i++;
    }
    if (i == n) {               /* past the map (only when end grew) */
      emit (out, &nout, end - pos, 0);
      break;
    }
    re = rs + raw[i].length;
    if (re > end)
      re = end;
    if (re == end || re % min == 0) {
      emit (out, &nout, re - pos, raw[i].flags);
      pos = re;
      continue;
    }
    ab = re - re % min;
    if (ab > pos) {
      emit (out, &nout, ab - pos, raw[i].flags);
      pos = ab;
    }
    be = pos + min < end ? pos + min : end;
    flags = NBD_STATE_HOLE | NBD_STATE_ZERO;
    for (size_t j = i, s = rs; j < n && s < be; s += raw[j].length, j++)
      flags &= raw[j].flags;
    emit (out, &nout, be - pos, flags);
    pos = be;
  }
  return nout;
}

static int
cmd_block_status (struct conn *c, const struct request *req,
                  struct worker *w)
{
  struct backend *b = c->exp->backend;
  const bool ext = c->extended;
  const uint32_t min = c->exp->min_block;
  struct ext_collect x = { .w = w, .n = 0 };
  struct backend_extent *list;
  size_t n, need, plen, dsize = ext ? 16 : 8, hsize = ext ? 8 : 4;
  unsigned char hdr[NBDP_EXTENDED_REPLY_SIZE];
  struct iovec iov[2];
  char what[64];

  if (!c->meta_allocation)
    return reply_error (c, req, NBD_EINVAL, "no metadata context was "
                        "negotiated for this export");
  if (req->payload_len) {
    /* The payload form: an effect length, then context ids. */
    size_t nids = (req->payload_len - 8) / 4;
    bool seen = false;
    for (size_t i = 0; i < nids; i++) {
      uint32_t id = nbdp_get32 (w->buf + 8 + 4 * i);
      if (id != META_ALLOCATION_ID || seen)
        return reply_error (c, req, NBD_EINVAL, "context id %" PRIu32
                            " in the payload is %s", id,
                            seen ? "repeated" : "not one we assigned");
      seen = true;
    }
    if (!seen)
      return reply_error (c, req, NBD_EINVAL, "the payload lists no "
                          "context ids");
  }
  if (req->count == 0)
    return reply_error (c, req, NBD_EINVAL, "block status of length 0");

  x.max = req->flags & NBD_CMD_FLAG_REQ_ONE
          ? (min == 1 ? 1 : (size_t) min + 1) : MAX_STATUS_DESCRIPTORS;
  need = 3 * x.max + 1;         /* raw, then up to 2n+1 aligned */
  if (w->ext_cap < need) {
    struct backend_extent *p = realloc (w->ext, need * sizeof *p);
    if (p == NULL)
      return reply_errno (c, req, errno, "block status");
    w->ext = p;
    w->ext_cap = need;
  }
  if (b->ops->extents (b, req->count, req->offset, x.max, status_cb,
                       &x) == -1 && x.n == 0)
    return reply_errno (c, req, errno ? errno : EIO, "block status");
  if (x.n == 0)
    return reply_error (c, req, NBD_EIO, "the backend described no extent");

  list = w->ext;
  n = x.n;
  if (min > 1) {
    list = w->ext + x.max;
    n = align_extents (w->ext, x.n, req->offset, conn_size (c), min,
                       list);
  }
  if (req->flags & NBD_CMD_FLAG_REQ_ONE)
    n = 1;

  plen = hsize + n * dsize;
  if (w->out_cap < plen) {
    unsigned char *p = realloc (w->out, plen);
    if (p == NULL)
      return reply_errno (c, req, errno, "block status");
    w->out = p;
    w->out_cap = plen;
  }
  nbdp_put32 (w->out, META_ALLOCATION_ID);
  if (ext)
    nbdp_put32 (w->out + 4, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char *d = w->out + hsize + i * dsize;
    if (ext) {
      nbdp_put64 (d, list[i].length);
      nbdp_put64 (d + 8, list[i].flags);
    }
    else {
      /* Compact requests are below 2^32, and so is every extent. */
      nbdp_put32 (d, list[i].length);
      nbdp_put32 (d + 4, list[i].flags);
    }
  }
  iov[0].iov_base = hdr;
  iov[0].iov_len = reply_chunk_header (c, req, hdr, NBD_REPLY_FLAG_DONE,
                                       ext ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT
                                           : NBD_REPLY_TYPE_BLOCK_STATUS,
                                       plen);
  iov[1].iov_base = w->out;
  iov[1].iov_len = plen;
  if (nbdp_verbose) {
    char fl[64];
    snprintf (what, sizeof what, "%zu extent%s, first %" PRIu64 " bytes %s",
              n, n == 1 ? "" : "s", list[0].length,
              nbdp_state_str (fl, sizeof fl, list[0].flags));
  }
  else
    what[0] = '\0';
  return reply_send (c, req, iov, 2, what);
}

/* The command table.  NBD_CMD_DISC is handled by the request reader; the
 * draft RESIZE extension's NBD_CMD_RESIZE is in resize.c.
 */
static const struct command commands[] = {
  { NBD_CMD_READ, NBD_CMD_FLAG_DF, false, true, NBD_EINVAL, PAYLOAD_NONE,
    cmd_read },
  { NBD_CMD_WRITE, 0, true, true, NBD_ENOSPC, PAYLOAD_REQUIRED, cmd_write },
  { NBD_CMD_FLUSH, 0, false, false, 0, PAYLOAD_NONE, cmd_flush },
  { NBD_CMD_TRIM, 0, true, true, NBD_EINVAL, PAYLOAD_NONE, cmd_trim },
  { NBD_CMD_CACHE, 0, false, true, NBD_EINVAL, PAYLOAD_NONE, cmd_cache },
  { NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO,
    true, true, NBD_ENOSPC, PAYLOAD_NONE, cmd_write_zeroes },
  { NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, false, true, NBD_EINVAL,
    PAYLOAD_OPTIONAL, cmd_block_status },
  /* Draft RESIZE (resize.c): validated there, never under the shared
   * size lock.
   */
  { NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_QUERY | NBD_CMD_FLAG_RESIZE_NOTIFY,
    false, false, 0, PAYLOAD_NONE, cmd_resize },
};

const struct command *
command_lookup (uint16_t type)
{
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (commands[i].type == type)
      return &commands[i];
  return NULL;
}
