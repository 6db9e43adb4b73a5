/* Resize suite: NBD_CMD_RESIZE in negotiated mode (specs/resize.md
 * section 5 and 11): request validation, set size with exact and chosen
 * sizes, extended headers, read-only exports, block size constraints and
 * FUA.  The form of each reply is judged by the client layer's rules; the
 * tests add what needs another connection or a later request.
 */
#include "rzlib.h"

/* A negotiated connection with SEND_RESIZE for the validation tests. */
static struct rz *
open_resize (struct nc_ctx *t, bool simple)
{
  struct rz_open o = { .want = RZ_F_DEFAULT, .simple = simple };
  struct rz *z = rz_open_neg (t, simple ? "simple" : "sr", 0, &o);

  if (!(z->rc->st.eflags & NBD_FLAG_SEND_RESIZE))
    nc_unsupported (t, "no NBD_FLAG_SEND_RESIZE with active %s",
                    rz_feat (z->rc->st.active));
  return z;
}

static void
expect_unchanged (struct nc_ctx *t, struct rz *z, uint64_t before,
                  const char *what)
{
  uint64_t now = rz_size_fresh (t);

  if (now != before)
    nc_fail (t, "RZ-REQ-6", "%s failed, yet the size went from %" PRIu64
             " to %" PRIu64 "; expected it unchanged", what, before, now);
}

/* Unknown command flags: NBD_EINVAL, nothing changes. */
static void
test_req_bad_flag (struct nc_ctx *t)
{
  static const uint16_t flags[] = {
    NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLAG_DF, NBD_CMD_FLAG_REQ_ONE,
    NBD_CMD_FLAG_FAST_ZERO, 1 << 8, 1 << 15,
  };

  for (int simple = 0; simple <= 1; simple++) {
    struct rz *z = open_resize (t, simple);
    uint64_t s = rz_size (z);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
      uint32_t e = rz_resize_raw (t, z, flags[i], s + rz_g (z), 0, NULL);
      if (e == 0)
        nc_done (t);            /* the rules reported it */
    }
    expect_unchanged (t, z, s, "set size with unknown flags");
    rz_close (t, z);
  }
}

/* The query form without QUERY active. */
static void
test_req_query_inactive (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  uint32_t want = p->info.capabilities & RZ_F_SETSIZE;
  struct rz_open o = { .want = want };
  struct rz *z;

  if (!want)
    nc_unsupported (t, "capabilities %s have neither GROW nor SHRINK, so "
                    "NBD_FLAG_SEND_RESIZE needs QUERY or NOTIFY",
                    rz_feat (p->info.capabilities));
  z = rz_open_neg (t, "A", want, &o);
  if (rz_active (z, NBD_RESIZE_F_QUERY))
    nc_unsupported (t, "QUERY is active whatever is requested (%s)",
                    p->desc);
  rz_query (t, z, NULL);
  rz_close (t, z);
}

/* Subscribe and unsubscribe without NOTIFY active. */
static void
test_req_notify_inactive (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  uint32_t want = p->info.capabilities &
    (RZ_F_SETSIZE | NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY);
  struct rz_open o = { .want = want };
  struct rz *z;

  z = rz_open_neg (t, "A", 0, &o);
  if (rz_active (z, NBD_RESIZE_F_NOTIFY))
    nc_unsupported (t, "NOTIFY is active whatever is requested (%s)",
                    p->desc);
  if (!(z->rc->st.eflags & NBD_FLAG_SEND_RESIZE))
    nc_unsupported (t, "no NBD_FLAG_SEND_RESIZE without NOTIFY");
  if (rz_sub (t, z, true, NULL) == 0)
    nc_fail (t, NULL, "a subscribe with NOTIFY not active (active %s) "
             "succeeded; expected NBD_EINVAL", rz_feat (z->rc->st.active)),
      nc_done (t);
  rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_NOTIFY | NBD_CMD_FLAG_RESIZE_QUERY,
                 0, 0, NULL);
  rz_close (t, z);
}

/* length not 0: NBD_EINVAL. */
static void
test_req_length (struct nc_ctx *t)
{
  struct rz *z = open_resize (t, false);
  uint64_t s = rz_size (z);
  static const uint64_t counts[] = { 1, 4096, UINT32_MAX };

  for (size_t i = 0; i < 3; i++) {
    if (rz_resize_raw (t, z, 0, s + rz_g (z), counts[i], NULL) == 0)
      nc_done (t);
    if (rz_active (z, NBD_RESIZE_F_QUERY))
      rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_QUERY, 0, counts[i], NULL);
  }
  expect_unchanged (t, z, s, "set size with length not 0");
  rz_close (t, z);
}

/* offset not 0 in query, subscribe, unsubscribe: NBD_EINVAL. */
static void
test_req_offset (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_DEFAULT };
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_SIZE_REPLY, &o);
  bool any = false;

  if (rz_active (z, NBD_RESIZE_F_QUERY)) {
    rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_QUERY, 4096, 0, NULL);
    any = true;
  }
  if (rz_active (z, NBD_RESIZE_F_NOTIFY)) {
    struct rz_raw *w = rz_raw_send (t, z, NBD_CMD_RESIZE,
                                    NBD_CMD_FLAG_RESIZE_NOTIFY, 4096, 0,
                                    NULL, 0);
    if (!rz_raw_wait (t, z, w, false, -1))
      nc_error (t, "no reply to a subscribe with offset 4096");
    if (w->n_resize || !w->final || w->error != NBD_EINVAL)
      nc_fail (t, NULL, "sent a subscribe with offset 4096; got %s%s; "
               "expected NBD_EINVAL", w->n_resize ? "a size chunk (the "
               "subscription started) " : "", rz_errname (w->error)),
        nc_done (t);
    rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_NOTIFY |
                   NBD_CMD_FLAG_RESIZE_QUERY, 4096, 0, NULL);
    any = true;
  }
  if (!any)
    nc_unsupported (t, "neither QUERY nor NOTIFY is active (%s)",
                    rz_feat (z->rc->st.active));
  rz_close (t, z);
}

/* Grow and shrink: in effect for this connection at the reply, and for
 * a new one.
 */
static void
test_set_grow_shrink (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", RZ_F_SETSIZE, NULL);
  uint64_t s = rz_size (z), g = rz_g (z), n;
  struct nbdp_rz_result res;
  unsigned char b;
  uint32_t e;

  e = rz_set (t, z, s + 2 * g, 0, &res);
  if (e)
    nc_fail (t, NULL, "set size %" PRIu64 " (grow from %" PRIu64 ") failed "
             "with %s; expected success", s + 2 * g, s, rz_errname (e)),
      nc_done (t);
  n = rz_size (z);
  if (n == 0 || rz_read (t, z, n - 1, 1, &b))
    nc_fail (t, "RZ-SET-6", "after growing to %" PRIu64 ", reading its "
             "last byte failed; expected the new size in effect at the "
             "reply", n);
  rz_check_seen (t, z, s + 2 * g);
  e = rz_set (t, z, s, 0, &res);
  if (e)
    nc_fail (t, NULL, "set size %" PRIu64 " (shrink from %" PRIu64 ") "
             "failed with %s; expected success", s, n, rz_errname (e)),
      nc_done (t);
  n = rz_size (z);
  if (rz_read (t, z, n, 1, &b) == 0)
    nc_fail (t, "RZ-SET-6", "after shrinking to %" PRIu64 ", reading the "
             "byte at %" PRIu64 " succeeded; expected the new size in "
             "effect at the reply", n, n);
  rz_check_seen (t, z, s);
  rz_close (t, z);
}

/* Set size to the current size: success, no change. */
static void
test_set_same (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  struct rz *z;
  struct nbdp_rz_result q1, r, q2;

  if (!(p->info.capabilities & RZ_F_SETSIZE))
    nc_unsupported (t, "capabilities %s have neither GROW nor SHRINK",
                    rz_feat (p->info.capabilities));
  z = rz_open_neg (t, "A", 0, NULL);
  if (rz_active (z, NBD_RESIZE_F_QUERY))
    rz_query (t, z, &q1);
  if (rz_set (t, z, rz_size (z), 0, &r))
    nc_done (t);                /* the rules reported RZ-SET-4 */
  if (rz_active (z, NBD_RESIZE_F_QUERY)) {
    rz_query (t, z, &q2);
    nc_expect (t, q1.chunk.sequence == q2.chunk.sequence &&
               q1.chunk.size == q2.chunk.size, "query: size %" PRIu64
               " sequence %" PRIu32 "; set size to that size; query: size %"
               PRIu64 " sequence %" PRIu32 "; expected no change (RZ-SEQ-1)",
               q1.chunk.size, q1.chunk.sequence, q2.chunk.size,
               q2.chunk.sequence);
    if (r.have_chunk)
      nc_expect (t, r.chunk.sequence == q1.chunk.sequence,
                 "set size to the current size reported sequence %" PRIu32
                 "; the query before it %" PRIu32 "; expected the same "
                 "(no size change)", r.chunk.sequence, q1.chunk.sequence);
  }
  rz_close (t, z);
}

/* Direction not active: the set size fails. */
static void
one_direction (struct nc_ctx *t, uint32_t have, bool grow)
{
  const struct rz_probe *p = rz_need_negotiated (t, have);
  struct rz_open o = { .want = have | NBD_RESIZE_F_SIZE_REPLY };
  struct rz *z = rz_open_neg (t, "A", have, &o);
  uint64_t s = rz_size (z), g = rz_g (z);

  if (rz_active (z, grow ? NBD_RESIZE_F_GROW : NBD_RESIZE_F_SHRINK))
    nc_unsupported (t, "%s is active whatever is requested (%s)",
                    grow ? "GROW" : "SHRINK", p->desc);
  if (!grow && s < g)
    nc_skip (t, "the export (%" PRIu64 " bytes) is smaller than G", s);
  if (rz_set (t, z, grow ? s + g : s - g, 0, NULL) == 0)
    nc_done (t);
  expect_unchanged (t, z, s, grow ? "a growth" : "a shrink");
  rz_close (t, z);
}

static void
test_set_grow_inactive (struct nc_ctx *t)
{
  one_direction (t, NBD_RESIZE_F_SHRINK, true);
}

static void
test_set_shrink_inactive (struct nc_ctx *t)
{
  one_direction (t, NBD_RESIZE_F_GROW, false);
}

/* Neither GROW nor SHRINK active (QUERY or NOTIFY sets the flag). */
static void
test_set_neither (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, NBD_RESIZE_F_SIZE_REPLY);
  uint32_t want = p->info.capabilities & (NBD_RESIZE_F_SIZE_REPLY |
                                          NBD_RESIZE_F_QUERY |
                                          NBD_RESIZE_F_NOTIFY);
  struct rz_open o = { .want = want };
  struct rz *z;
  uint64_t s;

  if (!(want & (NBD_RESIZE_F_QUERY | NBD_RESIZE_F_NOTIFY)))
    nc_unsupported (t, "capabilities %s have neither QUERY nor NOTIFY",
                    rz_feat (p->info.capabilities));
  z = rz_open_neg (t, "A", 0, &o);
  if (z->rc->st.active & RZ_F_SETSIZE)
    nc_unsupported (t, "GROW or SHRINK is active whatever is requested");
  s = rz_size (z);
  rz_set (t, z, s + rz_g (z), 0, NULL);
  rz_set (t, z, s, 0, NULL);
  expect_unchanged (t, z, s, "set size without GROW or SHRINK");
  rz_close (t, z);
}

/* Above NBD_RESIZE_SIZE_MAX: fails (NBD_EINVAL recommended). */
static void
test_set_too_big (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, NULL);
  uint64_t s = rz_size (z);

  rz_set (t, z, NBD_RESIZE_SIZE_MAX + 1, 0, NULL);
  rz_set (t, z, UINT64_MAX, 0, NULL);
  expect_unchanged (t, z, s, "set size above 2^63-1");
  rz_close (t, z);
}

/* Without SIZE_REPLY: exactly the requested size (simple replies and
 * structured replies without the feature).
 */
static void
test_set_exact (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, RZ_F_SETSIZE);

  for (int simple = 1; simple >= 0; simple--) {
    struct rz_open o = { .want = RZ_F_SETSIZE, .simple = simple };
    struct rz *z;
    uint64_t s, g;
    uint32_t e;
    z = rz_open_neg (t, simple ? "simple" : "sr, no SIZE_REPLY",
                     RZ_F_SETSIZE, &o);
    if (rz_active (z, NBD_RESIZE_F_SIZE_REPLY)) {
      nc_log (t, "SIZE_REPLY active whatever is requested (%s)", p->desc);
      rz_close (t, z);
      continue;
    }
    s = rz_size (z);
    g = rz_g (z);
    e = rz_set (t, z, s + 2 * g, 0, NULL);
    if (e)
      nc_fail (t, NULL, "set size %" PRIu64 " (aligned growth) failed "
               "with %s; expected success", s + 2 * g, rz_errname (e)),
        nc_done (t);
    rz_check_seen (t, z, s + 2 * g);
    e = rz_set (t, z, s, 0, NULL);
    if (e)
      nc_fail (t, NULL, "set size %" PRIu64 " (aligned shrink) failed "
               "with %s; expected success", s, rz_errname (e)), nc_done (t);
    rz_check_seen (t, z, s);
    rz_close (t, z);
  }
}

/* Without SIZE_REPLY, a size that is not a multiple of G fails. */
static void
test_set_unaligned_exact (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_SETSIZE };
  struct rz *z = rz_open_neg (t, "A", RZ_F_SETSIZE, &o);
  uint64_t s = rz_size (z);

  if (rz_active (z, NBD_RESIZE_F_SIZE_REPLY))
    nc_unsupported (t, "SIZE_REPLY is active whatever is requested");
  if (rz_g (z) < 2)
    nc_unsupported (t, "G is 1: every size is a multiple of it");
  rz_set (t, z, s + 1, 0, NULL);
  if (s > rz_g (z))
    rz_set (t, z, s - 1, 0, NULL);
  expect_unchanged (t, z, s, "an unaligned set size");
  rz_close (t, z);
}

/* Without SIZE_REPLY, a growth beyond the maximum size fails. */
static void
test_set_over_max_exact (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_SETSIZE };
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, &o);
  uint64_t s = rz_size (z), max = z->rc->st.info.max_size;
  uint32_t e;

  if (rz_active (z, NBD_RESIZE_F_SIZE_REPLY))
    nc_unsupported (t, "SIZE_REPLY is active whatever is requested");
  if (max == 0 || max > NBD_RESIZE_SIZE_MAX - rz_g (z))
    nc_unsupported (t, "no maximum size reported");
  e = rz_set (t, z, max + rz_g (z), 0, NULL);
  if (e == 0)
    nc_fail (t, "RZ-SET-10", "set size %" PRIu64 " above the maximum size %"
             PRIu64 " without SIZE_REPLY succeeded (size now %" PRIu64 "); "
             "expected it to fail", max + rz_g (z), max, rz_size (z)),
      nc_done (t);
  if (e != NBD_ENOSPC)
    nc_should (t, "RZ-REQ-8", "set size %" PRIu64 " above the maximum size "
               "%" PRIu64 " failed with %s; expected NBD_ENOSPC",
               max + rz_g (z), max, rz_errname (e));
  expect_unchanged (t, z, s, "a growth beyond the maximum size");
  rz_close (t, z);
}

/* With SIZE_REPLY, a growth to an unaligned size rounds up to G. */
static void
test_set_rounded (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW |
                              NBD_RESIZE_F_SIZE_REPLY, NULL);
  uint64_t s = rz_size (z), g = rz_g (z), seen, mb;
  struct nbdp_rz_result r;
  uint32_t e;

  if (g < 2)
    nc_unsupported (t, "G is 1: nothing to round");
  e = rz_set (t, z, s + 1, 0, &r);
  if (e)
    nc_fail (t, "RZ-SET-17", "set size %" PRIu64 " (unaligned, G = %"
             PRIu64 ", SIZE_REPLY active) failed with %s; expected the size "
             "rounded up", s + 1, g, rz_errname (e)), nc_done (t);
  seen = rz_size_fresh (t);
  mb = z->rc->exp.have_block_size ? z->rc->exp.min_block : 1;
  if (seen % g)
    nc_fail (t, "RZ-INFO-8", "after set size %" PRIu64 " a new connection "
             "sees size %" PRIu64 ", not a multiple of G = %" PRIu64, s + 1,
             seen, g);
  if (mb > 1 && seen % mb)
    nc_fail (t, "RZ-BLK-2", "after set size %" PRIu64 " a new connection "
             "sees size %" PRIu64 ", not a multiple of the minimum block "
             "size %" PRIu64, s + 1, seen, mb);
  rz_check_seen (t, z, s + 1);
  rz_close (t, z);
}

/* With SIZE_REPLY, shrinks round up too (and may not change). */
static void
test_set_shrink_rounded (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", RZ_F_SETSIZE |
                              NBD_RESIZE_F_SIZE_REPLY, NULL);
  uint64_t s = rz_size (z), g = rz_g (z);
  uint32_t e;

  if (g < 2)
    nc_unsupported (t, "G is 1: nothing to round");
  if (s < 3 * g) {
    if (rz_set (t, z, 3 * g, 0, NULL))
      nc_error (t, "could not grow the export to %" PRIu64, 3 * g);
    s = rz_size (z);
  }
  e = rz_set (t, z, s - 1, 0, NULL);   /* rounds back to s: no change */
  if (e)
    nc_fail (t, "RZ-SET-16", "set size %" PRIu64 " (old size %" PRIu64
             ", G = %" PRIu64 ") failed with %s; expected success with the "
             "old size kept", s - 1, s, g, rz_errname (e)), nc_done (t);
  e = rz_set (t, z, s - g - 1, 0, NULL);
  if (e)
    nc_fail (t, "RZ-SET-16", "set size %" PRIu64 " (old size %" PRIu64
             ", G = %" PRIu64 ") failed with %s; expected size %" PRIu64,
             s - g - 1, s, g, rz_errname (e), s - g), nc_done (t);
  rz_check_seen (t, z, s - g - 1);
  rz_close (t, z);
}

/* With SIZE_REPLY and a maximum size: capped, then refused. */
static void
test_set_capped (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW |
                              NBD_RESIZE_F_SIZE_REPLY, NULL);
  uint64_t max = z->rc->st.info.max_size, g = rz_g (z), s = rz_size (z);
  struct nbdp_rz_result r;
  uint32_t e;

  if (max == 0 || max > NBD_RESIZE_SIZE_MAX - 3 * g)
    nc_unsupported (t, "no maximum size reported");
  if (s >= max)
    nc_skip (t, "the export is already at its maximum size %" PRIu64, max);
  e = rz_set (t, z, max + 3 * g, 0, &r);
  if (e)
    nc_fail (t, "RZ-SET-15", "set size %" PRIu64 " (maximum %" PRIu64
             ", old %" PRIu64 ") failed with %s; expected it capped to %"
             PRIu64, max + 3 * g, max, s, rz_errname (e), max), nc_done (t);
  rz_check_seen (t, z, max + 3 * g);
  e = rz_set (t, z, rz_size (z) + g, 0, &r);
  nc_expect (t, e != 0, "at the maximum size %" PRIu64 ", set size %"
             PRIu64 " succeeded (size %" PRIu64 "); expected it to fail "
             "(the cap would not grow the export)", max, max + g,
             rz_size (z));
  rz_close (t, z);
}

/* FUA on set size and FLUSH after changes are accepted (durability
 * itself cannot be seen on the wire).
 */
static void
test_dur_fua (struct nc_ctx *t)
{
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, NULL);
  uint64_t s = rz_size (z);
  uint32_t e;

  if (!(z->rc->st.eflags & NBD_FLAG_SEND_FUA))
    nc_unsupported (t, "no NBD_FLAG_SEND_FUA");
  e = rz_set (t, z, s + rz_g (z), NBD_CMD_FLAG_FUA, NULL);
  nc_expect (t, e == 0, "set size %" PRIu64 " with FUA failed with %s; "
             "expected success", s + rz_g (z), rz_errname (e));
  if (z->rc->st.eflags & NBD_FLAG_SEND_FLUSH) {
    e = rz_cmd (t, z, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL);
    nc_expect (t, e == 0, "FLUSH after a set size failed with %s", rz_errname (e));
  }
  if (rz_active (z, NBD_RESIZE_F_AUTO_GROW)) {
    unsigned char buf[512] = { 0x5a };
    e = rz_write (t, z, buf, sizeof buf, rz_size (z), NBD_CMD_FLAG_FUA, NULL);
    nc_expect (t, e == 0, "growing write with FUA failed with %s",
               rz_errname (e));
  }
  nc_info (t, "FUA and FLUSH accepted; whether the size reached stable "
           "storage cannot be observed on the wire");
  rz_close (t, z);
}

/* Extended headers: NBD_CMD_FLAG_PAYLOAD_LEN is refused after the
 * payload is discarded.
 */
static void
test_eh_payload_len (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_DEFAULT, .extended = true };
  struct rz *z = rz_open_neg (t, "A", 0, &o);
  unsigned char payload[16] = { 0 }, b;
  struct rz_raw *w;

  if (!(z->rc->st.eflags & NBD_FLAG_SEND_RESIZE))
    nc_unsupported (t, "no NBD_FLAG_SEND_RESIZE");
  nbdp_put64 (payload, rz_size (z) + rz_g (z));
  w = rz_raw_send (t, z, NBD_CMD_RESIZE, NBD_CMD_FLAG_PAYLOAD_LEN, 0,
                   sizeof payload, payload, sizeof payload);
  rz_raw_wait (t, z, w, true, -1);
  nc_expect (t, w->error == NBD_EINVAL, "NBD_CMD_RESIZE with "
             "NBD_CMD_FLAG_PAYLOAD_LEN and 16 bytes of payload answered %s; "
             "expected NBD_EINVAL", rz_errname (w->error));
  if (rz_read (t, z, 0, 1, &b))
    nc_fail (t, NULL, "a READ after the refused request failed: the "
             "payload was not discarded?");
  rz_close (t, z);
}

/* Extended headers: every form with the request's offset in the reply
 * headers (judged by the rules).
 */
static void
test_eh_forms (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_ALL, .extended = true };
  struct rz *z = rz_open_neg (t, "A", NBD_RESIZE_F_SIZE_REPLY, &o);
  uint64_t s = rz_size (z), g = rz_g (z);
  struct nbdp_rz_chunk ch;

  if (rz_active (z, NBD_RESIZE_F_GROW))
    rz_set (t, z, s + g + 1, 0, NULL);
  if (rz_active (z, NBD_RESIZE_F_SHRINK))
    rz_set (t, z, s, 0, NULL);
  if (rz_active (z, NBD_RESIZE_F_QUERY))
    rz_query (t, z, NULL);
  if (rz_active (z, NBD_RESIZE_F_NOTIFY) && rz_sub (t, z, true, NULL) == 0) {
    if (rz_active (z, NBD_RESIZE_F_GROW)) {
      rz_set (t, z, rz_size (z) + g, 0, NULL);
      rz_next (t, z, RZ_NOTIFY_MS, &ch);
    }
    rz_unsub (t, z, NULL);
  }
  if (rz_active (z, NBD_RESIZE_F_AUTO_GROW)) {
    unsigned char buf[512];
    memset (buf, 0x3c, sizeof buf);
    rz_write (t, z, buf, sizeof buf, rz_size (z) + 512, 0, NULL);
  }
  rz_close (t, z);
}

/* Read-only export: no GROW, SHRINK, AUTO_GROW; set size fails. */
static struct rz *
open_ro (struct nc_ctx *t, bool negotiated)
{
  struct rz_open o = { .want = RZ_F_ALL, .export = t->cfg->ro_export };
  struct rz *z;

  if (negotiated)
    rz_need_negotiated (t, 0);
  else
    rz_need_extension (t);
  if (t->cfg->ro_export == NULL)
    nc_skip (t, "needs a read-only export (--ro-export NAME)");
  z = negotiated ? rz_open_neg (t, "ro", 0, &o) : rz_open_plain (t, "ro", &o);
  if (!(z->rc->st.eflags & NBD_FLAG_READ_ONLY))
    nc_error (t, "--ro-export %s is not read-only (no NBD_FLAG_READ_ONLY)",
              t->cfg->ro_export);
  return z;
}

static void
test_ro_caps (struct nc_ctx *t)
{
  struct rz *z = open_ro (t, true);
  char fb[256];

  nc_info (t, "read-only export: capabilities %s, transmission flags %s",
           rz_feat (z->rc->st.info.capabilities),
           nbdp_flags_str (fb, sizeof fb, z->rc->st.eflags));
  rz_close (t, z);
}

static void
ro_set (struct nc_ctx *t, struct rz *z)
{
  uint64_t s = rz_size (z);
  uint32_t e;

  e = rz_set (t, z, s + 4096, 0, NULL);
  if (e == 0)
    nc_done (t);
  if (s >= 4096)
    rz_set (t, z, s - 4096, 0, NULL);
  if (rz_size_fresh_of (t, t->cfg->ro_export) != s)
    nc_fail (t, "RZ-REQ-6", "the read-only export's size changed after "
             "refused set size requests");
}

static void
test_ro_set_size (struct nc_ctx *t)
{
  struct rz *z = open_ro (t, true);

  if (!(z->rc->st.eflags & NBD_FLAG_SEND_RESIZE))
    nc_unsupported (t, "no NBD_FLAG_SEND_RESIZE on the read-only export");
  ro_set (t, z);
  rz_close (t, z);
}

static void
test_ro_legacy (struct nc_ctx *t)
{
  struct rz *z;

  rz_need_extension (t);
  z = open_ro (t, false);
  if (z->rc->st.eflags & NBD_FLAG_SEND_RESIZE)
    ro_set (t, z);
  rz_close (t, z);
}

/* Block size constraints do not change with the size. */
static void
test_blk_unchanged (struct nc_ctx *t)
{
  struct rz *a = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, NULL), *b;
  struct nbdp_export e1 = a->rc->exp;
  uint64_t s = rz_size (a);

  if (!e1.have_block_size)
    nc_unsupported (t, "no NBD_INFO_BLOCK_SIZE");
  if (rz_set (t, a, s + rz_g (a), 0, NULL))
    nc_error (t, "growth refused");
  rz_close (t, a);
  b = rz_open_neg (t, "B", 0, NULL);
  nc_expect (t, b->rc->exp.have_block_size &&
             b->rc->exp.min_block == e1.min_block &&
             b->rc->exp.pref_block == e1.pref_block &&
             b->rc->exp.max_block == e1.max_block,
             "block sizes %" PRIu32 "/%" PRIu32 "/%" PRIu32 " before the "
             "growth, %" PRIu32 "/%" PRIu32 "/%" PRIu32 " after; expected "
             "them unchanged", e1.min_block, e1.pref_block, e1.max_block,
             b->rc->exp.min_block, b->rc->exp.pref_block,
             b->rc->exp.max_block);
  if (e1.min_block > 1 && rz_size (b) % e1.min_block)
    nc_fail (t, "RZ-BLK-2", "size %" PRIu64 " after a growth is not a "
             "multiple of the minimum block size %" PRIu32, rz_size (b),
             e1.min_block);
  rz_close (t, b);
}

static const struct nc_test tests[] = {
  { "req-bad-flag", "RZ-REQ-1 RZ-REQ-6 RZ-REQ-7", NBDP_MUST,
    test_req_bad_flag, "unknown command flags: NBD_EINVAL, size unchanged" },
  { "req-query-inactive", "RZ-REQ-2", NBDP_MUST, test_req_query_inactive,
    "a query without QUERY active: NBD_EINVAL" },
  { "req-notify-inactive", "RZ-REQ-3", NBDP_MUST, test_req_notify_inactive,
    "subscribe and unsubscribe without NOTIFY active: NBD_EINVAL" },
  { "req-length", "RZ-REQ-4 RZ-REQ-6", NBDP_MUST, test_req_length,
    "length not 0: NBD_EINVAL, size unchanged" },
  { "req-offset", "RZ-REQ-5", NBDP_MUST, test_req_offset,
    "offset not 0 in query, subscribe, unsubscribe: NBD_EINVAL" },
  { "set-grow-shrink", "RZ-SET-6 RZ-SET-5 RZ-SET-12 RZ-SET-13 RZ-MC-2",
    NBDP_MUST, test_set_grow_shrink,
    "a growth and a shrink take effect at the reply, here and elsewhere" },
  { "set-same-size", "RZ-SET-4 RZ-SEQ-1", NBDP_MUST, test_set_same,
    "set size to the current size succeeds without a change" },
  { "set-grow-inactive", "RZ-SET-1 RZ-REQ-8", NBDP_MUST,
    test_set_grow_inactive, "a growth without GROW active fails" },
  { "set-shrink-inactive", "RZ-SET-2 RZ-REQ-8", NBDP_MUST,
    test_set_shrink_inactive, "a shrink without SHRINK active fails" },
  { "set-neither-active", "RZ-SET-18", NBDP_MUST, test_set_neither,
    "set size without GROW or SHRINK active fails" },
  { "set-too-big", "RZ-SET-3 RZ-REQ-8 RZ-REQ-6", NBDP_MUST,
    test_set_too_big, "a size above 2^63-1 fails" },
  { "set-exact", "RZ-SET-8 RZ-SET-11 RZ-B3-2", NBDP_MUST, test_set_exact,
    "without SIZE_REPLY the size becomes exactly the requested one" },
  { "set-unaligned-exact", "RZ-SET-9 RZ-REQ-8", NBDP_MUST,
    test_set_unaligned_exact, "without SIZE_REPLY an unaligned size fails" },
  { "set-over-max-exact", "RZ-SET-10 RZ-REQ-8", NBDP_MUST,
    test_set_over_max_exact, "without SIZE_REPLY a growth beyond the "
    "maximum fails" },
  { "set-rounded", "RZ-SET-14 RZ-SET-17 RZ-CHUNK-11 RZ-INFO-8 RZ-BLK-2",
    NBDP_MUST, test_set_rounded, "with SIZE_REPLY an unaligned growth rounds "
    "up to G" },
  { "set-shrink-rounded", "RZ-SET-16 RZ-SET-5 RZ-CHUNK-11", NBDP_MUST,
    test_set_shrink_rounded, "with SIZE_REPLY shrinks round up to G" },
  { "set-capped", "RZ-SET-15 RZ-CHUNK-10", NBDP_MUST, test_set_capped,
    "with SIZE_REPLY a growth beyond the maximum is capped, then refused" },
  { "dur-fua", "RZ-DUR-1 RZ-DUR-2 RZ-DUR-3", NBDP_MUST, test_dur_fua,
    "FUA on set size and growing writes, FLUSH after changes (recorded)" },
  { "eh-payload-len", "RZ-EH-2", NBDP_MUST, test_eh_payload_len,
    "NBD_CMD_RESIZE with NBD_CMD_FLAG_PAYLOAD_LEN: NBD_EINVAL" },
  { "eh-forms", "RZ-EH-3", NBDP_MUST, test_eh_forms,
    "extended headers: every form carries the request's offset" },
  { "ro-caps", "RZ-RO-1 RZ-RO-3", NBDP_MUST, test_ro_caps,
    "a read-only export offers no GROW, SHRINK, AUTO_GROW" },
  { "ro-set-size", "RZ-RO-2 RZ-REQ-8", NBDP_MUST, test_ro_set_size,
    "set size on a read-only export fails" },
  { "ro-legacy", "RZ-RO-4 RZ-RO-2", NBDP_SHOULD, test_ro_legacy,
    "no NBD_FLAG_SEND_RESIZE on a read-only export in legacy mode" },
  { "blk-unchanged", "RZ-BLK-1 RZ-BLK-2", NBDP_MUST, test_blk_unchanged,
    "block size constraints do not change with the size" },
};

NC_SUITE ("resize", tests);
