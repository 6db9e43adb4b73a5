/* Resize suite: automatic growth, contents of new bytes, requests beyond
 * the end after a change, and block status (specs/resize.md sections 8,
 * 9, 11.1 and 11.2).
 */
#include "rzlib.h"

static struct rz *
open_auto (struct nc_ctx *t, bool simple)
{
  struct rz_open o = { .want = RZ_F_ALL, .simple = simple };

  return rz_open_neg (t, simple ? "simple" : "A", NBD_RESIZE_F_AUTO_GROW, &o);
}

/* Without AUTO_GROW active a write past the end does not grow. */
static void
test_auto_optin (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  struct rz_open o = { .want = RZ_F_DEFAULT };
  struct rz *z = rz_open_neg (t, "A", 0, &o);
  unsigned char buf[512];
  uint64_t s = rz_size (z), seen;
  uint32_t e;

  if (rz_active (z, NBD_RESIZE_F_AUTO_GROW))
    nc_unsupported (t, "AUTO_GROW is active whatever is requested (%s)",
                    p->desc);
  memset (buf, 0x61, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, s, 0, NULL);
  seen = rz_size_fresh (t);
  if (e == 0 || seen != s)
    nc_fail (t, "RZ-AUTO-1", "without AUTO_GROW active (active %s), a write "
             "of 512 bytes at the end (%" PRIu64 ") answered %s and the size "
             "is now %" PRIu64 "; expected the write to fail and the size "
             "unchanged", rz_feat (z->rc->st.active), s, rz_errname (e), seen);
  rz_close (t, z);
}

/* A growing write grows to roundup(offset + length); the gap and the
 * slack read as zero.
 */
static void
grow_write (struct nc_ctx *t, bool simple)
{
  struct rz *z = open_auto (t, simple);
  uint64_t s = rz_size (z), g = rz_g (z), want, seen;
  unsigned char buf[1024];
  struct nbdp_rz_result r;
  uint32_t e;

  memset (buf, 0x6b, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, s + 512, 0, &r);
  if (e)
    nc_fail (t, "RZ-AUTO-2", "with AUTO_GROW active, a write of %zu bytes at "
             "%" PRIu64 " (size %" PRIu64 ") failed with %s; expected the "
             "export to grow", sizeof buf, s + 512, s, rz_errname (e)),
      nc_done (t);
  want = rz_roundup (s + 512 + sizeof buf, g);
  seen = rz_size_fresh (t);
  if (seen != want)
    nc_fail (t, "RZ-AUTO-2", "a write of %zu bytes at %" PRIu64 " grew the "
             "export from %" PRIu64 " to %" PRIu64 "; expected roundup(%"
             PRIu64 ") = %" PRIu64 " (G = %" PRIu64 ")", sizeof buf, s + 512,
             s, seen, s + 512 + sizeof buf, want, g);
  rz_check_new_bytes (t, z, r.have_chunk &&
                      (r.chunk.events & NBD_RESIZE_EV_ZEROED), s, 512);
  if (seen > s + 512 + sizeof buf)
    rz_check_new_bytes (t, z, r.have_chunk &&
                        (r.chunk.events & NBD_RESIZE_EV_ZEROED),
                        s + 512 + sizeof buf, seen - (s + 512 + sizeof buf));
  if (rz_read_check (t, z, s + 512, sizeof buf, 0x6b, "RZ-AUTO-2",
                     "the data of the growing write") != UINT64_MAX)
    nc_fail (t, "RZ-AUTO-2", "the data of the growing write did not read "
             "back");
  /* A write inside the new size grows nothing and gets no size chunk. */
  e = rz_write (t, z, buf, 512, s, 0, &r);
  if (e == 0 && r.have_chunk)
    nc_done (t);                /* RZ-AUTO-12 reported by the rules */
  rz_close (t, z);
}

static void
test_auto_grow (struct nc_ctx *t)
{
  grow_write (t, false);
}

static void
test_auto_grow_simple (struct nc_ctx *t)
{
  grow_write (t, true);
}

/* WRITE_ZEROES past the end grows too. */
static void
test_auto_write_zeroes (struct nc_ctx *t)
{
  struct rz *z = open_auto (t, false);
  uint64_t s = rz_size (z), g = rz_g (z), want, seen;
  struct rz_raw *w;

  if (!(z->rc->st.eflags & NBD_FLAG_SEND_WRITE_ZEROES))
    nc_unsupported (t, "no NBD_FLAG_SEND_WRITE_ZEROES");
  w = rz_raw_send (t, z, NBD_CMD_WRITE_ZEROES, 0, s, 4096, NULL, 0);
  rz_raw_wait (t, z, w, true, -1);
  want = rz_roundup (s + 4096, g);
  if (w->error)
    nc_fail (t, "RZ-AUTO-2", "WRITE_ZEROES of 4096 bytes at the end (%"
             PRIu64 ") with AUTO_GROW active failed with %s; expected the "
             "export to grow", s, rz_errname (w->error)), nc_done (t);
  if (w->error_offset)
    nc_fail (t, "RZ-AUTO-8", "WRITE_ZEROES growth answered with "
             "NBD_REPLY_TYPE_ERROR_OFFSET");
  if (rz_active (z, NBD_RESIZE_F_SIZE_REPLY) &&
      (w->n_resize != 1 || w->chunk.size != want || w->chunk_flags != 0))
    nc_fail (t, "RZ-AUTO-9", "WRITE_ZEROES that grew the export to %" PRIu64
             ": %u size chunks (first: size %" PRIu64 " flags 0x%x); "
             "expected one, flags 0, size %" PRIu64, want, w->n_resize,
             w->chunk.size, w->chunk_flags, want);
  seen = rz_size_fresh (t);
  nc_expect (t, seen == want, "WRITE_ZEROES of 4096 bytes at %" PRIu64
             " grew the export to %" PRIu64 "; expected %" PRIu64, s, seen,
             want);
  rz_close (t, z);
}

/* READ, TRIM, CACHE past the end do not grow. */
static void
test_auto_no_grow_other (struct nc_ctx *t)
{
  struct rz *z = open_auto (t, false);
  uint64_t s = rz_size (z);
  unsigned char buf[512];
  uint32_t e;

  e = rz_read (t, z, s, sizeof buf, buf);
  nc_expect (t, e != 0, "READ of 512 bytes at the end succeeded");
  if (z->rc->st.eflags & NBD_FLAG_SEND_TRIM) {
    e = rz_cmd (t, z, NBD_CMD_TRIM, 0, s, 4096, NULL, NULL);
    nc_expect (t, e != 0, "TRIM past the end succeeded");
  }
  if (z->rc->st.eflags & NBD_FLAG_SEND_CACHE) {
    e = rz_cmd (t, z, NBD_CMD_CACHE, 0, s, 4096, NULL, NULL);
    nc_expect (t, e != 0, "CACHE past the end succeeded");
  }
  nc_expect (t, rz_size_fresh (t) == s, "READ/TRIM/CACHE past the end "
             "changed the size from %" PRIu64, s);
  rz_close (t, z);
}

/* Pipelined growing writes: the largest rounded end wins; a smaller
 * later one does not shrink.
 */
static void
test_auto_largest (struct nc_ctx *t)
{
  struct rz *z = open_auto (t, false);
  uint64_t s = rz_size (z), g = rz_g (z), st = rz_step (z), want, seen;
  unsigned char buf[512];
  struct rz_raw *a, *b, *c;

  memset (buf, 0x2f, sizeof buf);
  a = rz_raw_send (t, z, NBD_CMD_WRITE, 0, s + 3 * st, sizeof buf, buf,
                   sizeof buf);
  b = rz_raw_send (t, z, NBD_CMD_WRITE, 0, s + st, sizeof buf, buf,
                   sizeof buf);
  rz_raw_wait (t, z, a, true, -1);
  rz_raw_wait (t, z, b, true, -1);
  if (a->error || b->error)
    nc_fail (t, "RZ-AUTO-2", "pipelined growing writes at %" PRIu64 " and %"
             PRIu64 " answered %s and %s; expected success", s + 3 * st,
             s + st, rz_errname (a->error), rz_errname (b->error)),
      nc_done (t);
  want = rz_roundup (s + 3 * st + sizeof buf, g);
  seen = rz_size_fresh (t);
  nc_expect (t, seen == want, "pipelined growing writes ending at %" PRIu64
             " and %" PRIu64 "; the size is %" PRIu64 "; expected %" PRIu64
             " (the largest rounded end)", s + 3 * st + sizeof buf,
             s + st + sizeof buf, seen, want);
  c = rz_raw_send (t, z, NBD_CMD_WRITE, 0, s, sizeof buf, buf, sizeof buf);
  rz_raw_wait (t, z, c, true, -1);
  if (c->n_resize)
    nc_fail (t, "RZ-AUTO-12", "a write inside the export got a size chunk");
  if (rz_size_fresh (t) != want)
    nc_fail (t, "RZ-AUTO-5", "a write below the end changed the size from %"
             PRIu64, want);
  rz_close (t, z);
}

/* Growth beyond NBD_RESIZE_SIZE_MAX (or the maximum size) fails. */
static void
test_auto_too_big (struct nc_ctx *t)
{
  struct rz *z = open_auto (t, false);
  uint64_t s = rz_size (z), max = z->rc->st.info.max_size;
  unsigned char buf[512];
  uint32_t e;

  memset (buf, 0x33, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, NBD_RESIZE_SIZE_MAX + 1 - sizeof buf,
                0, NULL);
  if (e == 0)
    nc_fail (t, "RZ-AUTO-6", "a write ending at 2^63 (past "
             "NBD_RESIZE_SIZE_MAX) succeeded; expected it to fail");
  else if (e != NBD_ENOSPC)
    nc_should (t, "RZ-AUTO-13", "a write ending at 2^63 failed with %s; "
               "expected NBD_ENOSPC", rz_errname (e));
  if (max && max < NBD_RESIZE_SIZE_MAX - 4096) {
    e = rz_write (t, z, buf, sizeof buf, max, 0, NULL);
    if (e == 0)
      nc_fail (t, "RZ-AUTO-6", "a write at the maximum size %" PRIu64
               " succeeded; expected it to fail", max);
  }
  nc_expect (t, rz_size_fresh (t) == s, "a failed growth changed the size "
             "from %" PRIu64, s);
  rz_close (t, z);
}

/* offset + length beyond 2^64, or breaking the block size constraints:
 * fails without growing.
 */
static void
test_auto_overflow (struct nc_ctx *t)
{
  struct rz *z = open_auto (t, false);
  uint64_t s = rz_size (z);
  unsigned char buf[1024];
  uint32_t e, mb = z->rc->exp.have_block_size ? z->rc->exp.min_block : 1;

  memset (buf, 0x44, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, UINT64_MAX - 511, 0, NULL);
  if (e == 0)
    nc_fail (t, "RZ-AUTO-7", "a write whose end overflows 64 bits "
             "succeeded");
  else if (e != NBD_EINVAL)
    nc_should (t, "RZ-AUTO-13", "a write whose end overflows 64 bits failed "
               "with %s; expected NBD_EINVAL", rz_errname (e));
  if (mb > 1) {
    e = rz_write (t, z, buf, mb <= sizeof buf ? mb : sizeof buf, s + 1, 0,
                  NULL);
    if (e == 0)
      nc_fail (t, "RZ-AUTO-7", "a growing write at the unaligned offset %"
               PRIu64 " (minimum block size %" PRIu32 ") succeeded", s + 1,
               mb);
  }
  nc_expect (t, rz_size_fresh (t) == s, "a refused write changed the size "
             "from %" PRIu64, s);
  rz_close (t, z);
}

/* Bytes that come back after a shrink read as zero. */
static void
test_zero_regrow (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", RZ_F_SETSIZE, NULL);
  uint64_t s = rz_size (z), g = rz_g (z);
  bool zf = z->rc->st.info.capabilities & NBD_RESIZE_F_ZERO_FILL;
  unsigned char *buf;
  uint64_t len, bad;

  if (s < g)
    nc_skip (t, "the export is smaller than G");
  len = g > 65536 ? 65536 : g;
  buf = rz_alloc (t, len);
  memset (buf, 0x77, len);
  if (rz_write (t, z, buf, len, s - len, 0, NULL))
    nc_error (t, "write failed");
  free (buf);
  if (rz_set (t, z, s - g, 0, NULL) || rz_set (t, z, s, 0, NULL))
    nc_error (t, "shrink or growth refused");
  bad = rz_read_check (t, z, s - len, len, 0, "RZ-BOUND-4",
                       "bytes back after a shrink");
  if (zf && bad != UINT64_MAX)
    nc_fail (t, "RZ-ZERO-2", "wrote 0x77 at %" PRIu64 "+%" PRIu64 ", shrank "
             "to %" PRIu64 " and grew back to %" PRIu64 "; the byte at %"
             PRIu64 " is not zero (ZERO_FILL is offered)", s - len, len,
             s - g, s, bad);
  else if (!zf)
    nc_info (t, "no ZERO_FILL: bytes back after a shrink %s",
             bad == UINT64_MAX ? "read as zero" : "are not zero");
  rz_close (t, z);
}

/* A growth by the administrator: new bytes zero, the size seen. */
static void
test_zero_admin (struct nc_ctx *t)
{
  struct rz *z;
  uint64_t s, want;
  unsigned char b;

  rz_need_negotiated (t, 0);
  if (t->cfg->control_cmd == NULL)
    nc_skip (t, "needs --control-cmd to resize the export from outside");
  z = rz_open_neg (t, "A", 0, NULL);
  s = rz_size (z);
  want = s + 2 * rz_g (z);
  if (rz_admin_resize (t, want) != 0)
    nc_error (t, "--control-cmd failed");
  if (rz_read (t, z, want - 1, 1, &b))
    nc_fail (t, "RZ-MC-6", "the administrator grew the export to %" PRIu64
             "; reading its last byte on an open connection failed", want),
      nc_done (t);
  rz_check_new_bytes (t, z, false, s, want - s);
  rz_close (t, z);
}

/* Requests beyond a shrunk end fail; within a grown end succeed. */
static void
test_bound_shrink (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_DEFAULT };
  struct rz *z = rz_open_neg (t, "A", RZ_F_SETSIZE, &o);
  uint64_t s = rz_size (z), g = rz_step (z), n;
  unsigned char buf[512];
  uint32_t e;

  if (s < 2 * g)
    nc_skip (t, "the export is smaller than 2 steps of %" PRIu64, g);
  if (rz_set (t, z, s - 2 * g, 0, NULL))
    nc_error (t, "shrink refused");
  n = rz_size (z);
  if (rz_read (t, z, n - 512, 512, buf))
    nc_fail (t, "RZ-BOUND-1", "READ just below the new end %" PRIu64
             " failed", n);
  e = rz_read (t, z, n, 512, buf);
  if (e == 0)
    nc_fail (t, "RZ-BOUND-2", "READ at %" PRIu64 " after a shrink to %"
             PRIu64 " succeeded", n, n);
  else if (e != NBD_EINVAL)
    nc_should (t, "RZ-BOUND-5", "READ beyond the end after a shrink failed "
               "with %s; expected NBD_EINVAL", rz_errname (e));
  if (!rz_active (z, NBD_RESIZE_F_AUTO_GROW)) {
    memset (buf, 0x55, sizeof buf);
    e = rz_write (t, z, buf, sizeof buf, n, 0, NULL);
    if (e == 0)
      nc_fail (t, "RZ-BOUND-3", "WRITE at %" PRIu64 " after a shrink to %"
               PRIu64 " succeeded", n, n);
    else if (e != NBD_ENOSPC)
      nc_should (t, "RZ-BOUND-5", "WRITE beyond the end after a shrink "
                 "failed with %s; expected NBD_ENOSPC", rz_errname (e));
    if (z->rc->st.eflags & NBD_FLAG_SEND_WRITE_ZEROES) {
      e = rz_cmd (t, z, NBD_CMD_WRITE_ZEROES, 0, n, 512, NULL, NULL);
      if (e == 0)
        nc_fail (t, "RZ-BOUND-3", "WRITE_ZEROES beyond the end after a "
                 "shrink succeeded");
    }
  }
  if (z->rc->st.eflags & NBD_FLAG_SEND_TRIM) {
    e = rz_cmd (t, z, NBD_CMD_TRIM, 0, n, 512, NULL, NULL);
    if (e == 0)
      nc_fail (t, "RZ-BOUND-2", "TRIM beyond the end after a shrink "
               "succeeded");
  }
  if (z->rc->st.eflags & NBD_FLAG_SEND_CACHE) {
    e = rz_cmd (t, z, NBD_CMD_CACHE, 0, n, 512, NULL, NULL);
    if (e == 0)
      nc_fail (t, "RZ-BOUND-2", "CACHE beyond the end after a shrink "
               "succeeded");
  }
  rz_close (t, z);
}

static void
test_bound_grow (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, NULL);
  uint64_t s = rz_size (z), g = rz_step (z), n;
  unsigned char buf[512];
  uint32_t e;

  if (rz_set (t, z, s + 2 * g, 0, NULL))
    nc_error (t, "growth refused");
  n = rz_size (z);
  memset (buf, 0x66, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, n - sizeof buf, 0, NULL);
  nc_expect (t, e == 0, "WRITE of the last 512 bytes after a growth to %"
             PRIu64 " failed with %s", n, rz_errname (e));
  e = rz_read (t, z, s, sizeof buf, buf);
  nc_expect (t, e == 0, "READ at the old end %" PRIu64 " after a growth "
             "failed with %s", s, rz_errname (e));
  if (z->rc->st.eflags & NBD_FLAG_SEND_TRIM) {
    e = rz_cmd (t, z, NBD_CMD_TRIM, 0, s, 512, NULL, NULL);
    nc_expect (t, e == 0, "TRIM at the old end after a growth failed with "
               "%s", rz_errname (e));
  }
  if (z->rc->st.eflags & NBD_FLAG_SEND_WRITE_ZEROES) {
    e = rz_cmd (t, z, NBD_CMD_WRITE_ZEROES, 0, s, 512, NULL, NULL);
    nc_expect (t, e == 0, "WRITE_ZEROES at the old end after a growth "
               "failed with %s", rz_errname (e));
  }
  rz_close (t, z);
}

/* Block status after a shrink and on new bytes. */
static void
test_bs (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, RZ_F_SETSIZE);
  static const char *const q[] = { "base:allocation" };
  static const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE, NBD_INFO_RESIZE };
  struct rz *z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  struct nbdp_bs_extent *ext = NULL;
  size_t n_ext = 0, n_ctx = 0;
  uint64_t s, g, n, end;
  bool zf;
  unsigned char *buf;

  if (p->wire == RZW_P)
    rz_manual_opt (t, z, RZ_F_DEFAULT);
  if (nbdp_client_opt_meta_context (z->rc->c, true, rz_export_name (t, z),
                                    q, 1, NULL, 0, &n_ctx) == -1 ||
      n_ctx == 0)
    nc_unsupported (t, "base:allocation is not offered");
  if (rz_manual_info (t, z, true, infos, 2, NULL))
    nc_error (t, "NBD_OPT_GO refused");
  s = rz_size (z);
  g = rz_step (z);
  zf = z->rc->st.info.capabilities & NBD_RESIZE_F_ZERO_FILL;
  if (s < 2 * g || !rz_active (z, RZ_F_SETSIZE))
    nc_skip (t, "export too small or GROW/SHRINK not active");
  /* Data in the part that is cut, so that the later growth brings
   * back bytes that held data (newly exposed too, section 1).
   */
  buf = rz_alloc (t, g);
  memset (buf, 0x5a, g);
  if (rz_write (t, z, buf, g, s - g, 0, NULL))
    nc_error (t, "write failed");
  free (buf);
  if (rz_set (t, z, s - g, 0, NULL))
    nc_error (t, "shrink refused");
  n = rz_size (z);
  if (nbdp_client_block_status (z->rc->c, n, 0, 0, &ext, &n_ext) == -1)
    rz_broken (t, z, "BLOCK_STATUS after a shrink");
  end = 0;
  for (size_t i = 0; i < n_ext; i++)
    if (ext[i].offset + ext[i].length > end)
      end = ext[i].offset + ext[i].length;
  free (ext);
  if (end > n)
    nc_fail (t, "RZ-BS-1", "BLOCK_STATUS 0+%" PRIu64 " after a shrink to %"
             PRIu64 " described bytes up to %" PRIu64, n, n, end);
  if (rz_set (t, z, n + 2 * g, 0, NULL))
    nc_error (t, "growth refused");
  if (nbdp_client_block_status (z->rc->c, 2 * g, n, 0, &ext, &n_ext) == -1)
    rz_broken (t, z, "BLOCK_STATUS of new bytes");
  buf = rz_alloc (t, 2 * g);
  if (rz_read (t, z, n, 2 * g, buf))
    nc_error (t, "reading the new bytes failed");
  for (size_t i = 0; i < n_ext; i++) {
    uint64_t lo = ext[i].offset, hi = ext[i].offset + ext[i].length;
    if (hi > n + 2 * g)
      hi = n + 2 * g;
    if (ext[i].flags & NBD_STATE_ZERO) {
      for (uint64_t o = lo; o < hi; o++)
        if (buf[o - n]) {
          nc_fail (t, "RZ-BS-3", "BLOCK_STATUS reports NBD_STATE_ZERO for "
                   "new bytes %" PRIu64 "+%" PRIu64 ", but the byte at %"
                   PRIu64 " reads 0x%02x", lo, hi - lo, o, buf[o - n]);
          break;
        }
    }
    else if (zf)
      nc_should (t, "RZ-BS-2", "BLOCK_STATUS reports flags 0x%" PRIx64
                 " for new bytes %" PRIu64 "+%" PRIu64 " (not written since the growth) with "
                 "ZERO_FILL offered; expected NBD_STATE_ZERO", ext[i].flags,
                 lo, hi - lo);
  }
  free (buf);
  free (ext);
  rz_close (t, z);
}

static const struct nc_test tests[] = {
  { "auto-optin", "RZ-AUTO-1", NBDP_MUST, test_auto_optin,
    "without AUTO_GROW active a write past the end does not grow" },
  { "auto-grow", "RZ-AUTO-2 RZ-AUTO-9 RZ-AUTO-10 RZ-AUTO-12 RZ-ZERO-1",
    NBDP_MUST, test_auto_grow, "a growing write grows to roundup(end); gap "
    "and slack read as zero" },
  { "auto-grow-simple", "RZ-AUTO-2 RZ-ZERO-1", NBDP_MUST,
    test_auto_grow_simple, "the same with simple replies" },
  { "auto-write-zeroes", "RZ-AUTO-2 RZ-AUTO-9", NBDP_MUST,
    test_auto_write_zeroes, "WRITE_ZEROES past the end grows" },
  { "auto-no-grow-other", "RZ-AUTO-3", NBDP_MUST, test_auto_no_grow_other,
    "READ, TRIM, CACHE past the end fail and do not grow" },
  { "auto-largest", "RZ-AUTO-4 RZ-AUTO-5", NBDP_MUST, test_auto_largest,
    "pipelined growing writes: the largest end wins" },
  { "auto-too-big", "RZ-AUTO-6 RZ-AUTO-8 RZ-AUTO-13", NBDP_MUST,
    test_auto_too_big, "a growth beyond 2^63-1 or the maximum fails" },
  { "auto-overflow", "RZ-AUTO-7 RZ-AUTO-13", NBDP_MUST, test_auto_overflow,
    "a write overflowing 64 bits fails without growing" },
  { "zero-regrow", "RZ-ZERO-2 RZ-ZERO-3", NBDP_MUST, test_zero_regrow,
    "bytes back after a shrink read as zero with ZERO_FILL" },
  { "zero-admin", "RZ-ZERO-1 RZ-MC-6", NBDP_MUST, test_zero_admin,
    "an administrator's growth: seen by open connections, zero bytes" },
  { "bound-shrink", "RZ-BOUND-1 RZ-BOUND-2 RZ-BOUND-3 RZ-BOUND-5",
    NBDP_MUST, test_bound_shrink, "requests beyond a shrunk end fail" },
  { "bound-grow", "RZ-BOUND-4", NBDP_MUST, test_bound_grow,
    "requests up to a grown end succeed" },
  { "bs-resize", "RZ-BS-1 RZ-BS-2 RZ-BS-3", NBDP_MUST, test_bs,
    "block status within the new size; NBD_STATE_ZERO only for zeros" },
};

NC_SUITE ("resize", tests);
