/* Resize suite: several connections to one export (specs/resize.md
 * section 10): EXPORT_WIDE visibility, refusal without it, changes by
 * the administrator, legacy mode with and without multi-conn.
 */
#include "rzlib.h"

/* EXPORT_WIDE is offered with multi-conn and resizes. */
static void
test_mc_offered (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  uint32_t caps = p->info.capabilities;

  if (!(p->eflags & NBD_FLAG_CAN_MULTI_CONN))
    nc_unsupported (t, "no NBD_FLAG_CAN_MULTI_CONN");
  if (!(caps & (RZ_F_SETSIZE | NBD_RESIZE_F_AUTO_GROW)))
    nc_unsupported (t, "capabilities %s change no size", rz_feat (caps));
  nc_expect (t, caps & NBD_RESIZE_F_EXPORT_WIDE, "NBD_FLAG_CAN_MULTI_CONN "
             "and capabilities %s without EXPORT_WIDE", rz_feat (caps));
}

/* Is a change by A visible on B right after A's reply? */
static void
check_visible (struct nc_ctx *t, struct rz *a, struct rz *b, uint64_t n,
               bool grew, const char *id)
{
  unsigned char c;
  uint32_t e;

  if (grew) {
    e = rz_read (t, b, n - 1, 1, &c);
    if (e)
      nc_fail (t, id, "%s grew the export to %" PRIu64 "; at its reply, "
               "%s reading byte %" PRIu64 " failed with %s; expected the new "
               "size in effect on every connection", a->label, n, b->label,
               n - 1, rz_errname (e));
  }
  else {
    e = rz_read (t, b, n, 1, &c);
    if (e == 0)
      nc_fail (t, id, "%s shrank the export to %" PRIu64 "; at its reply, "
               "%s reading byte %" PRIu64 " succeeded; expected the new size "
               "in effect on every connection", a->label, n, b->label, n);
  }
  if (rz_active (b, NBD_RESIZE_F_QUERY)) {
    struct nbdp_rz_result q;
    rz_query (t, b, &q);
    if (q.chunk.size != n)
      nc_fail (t, id, "%s changed the size to %" PRIu64 "; %s's query "
               "reported %" PRIu64, a->label, n, b->label, q.chunk.size);
  }
}

/* A change is visible on every connection (or refused without
 * EXPORT_WIDE while another one is open).
 */
static void
test_mc_visible (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, NBD_RESIZE_F_GROW);
  bool wide = p->info.capabilities & NBD_RESIZE_F_EXPORT_WIDE;
  const char *id = wide ? "RZ-MC-2" : "RZ-MC-5";
  struct rz *a = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, NULL);
  struct rz *b = rz_open_neg (t, "B", 0, NULL);
  uint64_t s = rz_size (a), g = rz_g (a);
  uint32_t e;

  e = rz_set (t, a, s + 2 * g, 0, NULL);
  if (e) {
    if (wide)
      nc_fail (t, NULL, "A's growth with B open failed with %s; expected "
               "success (EXPORT_WIDE)", rz_errname (e));
    else
      nc_log (t, "A's growth with B open refused with %s (no EXPORT_WIDE)",
              rz_errname (e));
    nc_expect (t, rz_size_fresh (t) == s, "a refused growth changed the "
               "size");
    nc_done (t);
  }
  if (!wide)
    nc_fail (t, "RZ-MC-3", "without EXPORT_WIDE, A's growth to %" PRIu64
             " succeeded while B was in transmission; expected it to fail",
             rz_size (a));
  check_visible (t, a, b, rz_size (a), true, id);
  if (rz_active (a, NBD_RESIZE_F_SHRINK)) {
    if (rz_set (t, a, s, 0, NULL) == 0)
      check_visible (t, a, b, rz_size (a), false, id);
  }
  rz_close (t, b);
  rz_close (t, a);
}

/* Without EXPORT_WIDE: set size refused while another connection is
 * open.
 */
static void
test_mc_refuse_set (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, NBD_RESIZE_F_GROW);
  struct rz *a, *b;
  uint64_t s;
  uint32_t e;

  if (p->info.capabilities & NBD_RESIZE_F_EXPORT_WIDE)
    nc_unsupported (t, "EXPORT_WIDE is offered (changes are export-wide)");
  a = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, NULL);
  b = rz_open_plain (t, "B", NULL);
  s = rz_size (a);
  e = rz_set (t, a, s + rz_g (a), 0, NULL);
  if (e == 0)
    nc_fail (t, NULL, "without EXPORT_WIDE, a growth to %" PRIu64 " with "
             "another connection in transmission succeeded; expected it to "
             "fail", rz_size (a)), nc_done (t);
  if (e != NBD_EPERM)
    nc_should (t, "RZ-REQ-8", "the refused growth failed with %s; expected "
               "NBD_EPERM (another connection open)", rz_errname (e));
  nc_expect (t, rz_size_fresh (t) == s, "a refused growth changed the "
             "size");
  rz_close (t, b);
  rz_close (t, a);
}

/* Without EXPORT_WIDE: growing writes refused likewise. */
static void
test_mc_refuse_write (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, NBD_RESIZE_F_AUTO_GROW);
  struct rz_open o = { .want = RZ_F_ALL };
  struct rz *a, *b;
  unsigned char buf[512];
  uint64_t s;
  uint32_t e;

  if (p->info.capabilities & NBD_RESIZE_F_EXPORT_WIDE)
    nc_unsupported (t, "EXPORT_WIDE is offered (changes are export-wide)");
  a = rz_open_neg (t, "A", NBD_RESIZE_F_AUTO_GROW, &o);
  b = rz_open_plain (t, "B", NULL);
  s = rz_size (a);
  memset (buf, 0x12, sizeof buf);
  e = rz_write (t, a, buf, sizeof buf, s, 0, NULL);
  if (e == 0)
    nc_fail (t, NULL, "without EXPORT_WIDE, a growing write at %" PRIu64
             " with another connection in transmission succeeded; expected "
             "it to fail", s), nc_done (t);
  if (e != NBD_ENOSPC)
    nc_should (t, "RZ-AUTO-13", "the refused growing write failed with %s; "
               "expected NBD_ENOSPC", rz_errname (e));
  nc_expect (t, rz_size_fresh (t) == s, "a refused growing write changed "
             "the size");
  rz_close (t, b);
  rz_close (t, a);
}

/* A change by the administrator reaches every connection. */
static void
test_mc_admin (struct nc_ctx *t)
{
  struct rz *a, *b;
  uint64_t s, want;
  unsigned char c;
  struct nbdp_rz_chunk ch;
  bool sub = false;

  rz_need_negotiated (t, 0);
  if (t->cfg->control_cmd == NULL)
    nc_skip (t, "needs --control-cmd to resize the export from outside");
  a = rz_open_neg (t, "A", 0, NULL);
  b = rz_open_plain (t, "B", NULL);
  if (rz_active (a, NBD_RESIZE_F_NOTIFY))
    sub = rz_sub (t, a, false, NULL) == 0;
  s = rz_size (a);
  want = s + 2 * rz_g (a);
  if (rz_admin_resize (t, want) != 0)
    nc_error (t, "--control-cmd failed");
  if (rz_read (t, a, want - 1, 1, &c))
    nc_fail (t, NULL, "after the administrator grew the export to %" PRIu64
             ", %s could not read its last byte", want, a->label);
  if (rz_read (t, b, want - 1, 1, &c))
    nc_fail (t, NULL, "after the administrator grew the export to %" PRIu64
             ", %s could not read its last byte", want, b->label);
  if (sub) {
    uint64_t end = rz_now_ms () + RZ_NOTIFY_MS;
    bool got = false;
    while (!got && rz_now_ms () < end &&
           rz_next (t, a, (int) (end - rz_now_ms ()), &ch) == 1)
      got = ch.size == want;
    if (!got)
      nc_fail (t, NULL, "no notification of the administrator's growth "
               "to %" PRIu64 " within %d ms", want, RZ_NOTIFY_MS);
    else if (!(ch.events & NBD_RESIZE_EV_REMOTE))
      nc_fail (t, NULL, "the notification of the administrator's growth "
               "has events %s; expected REMOTE", rz_ev (ch.events));
    rz_unsub (t, a, NULL);
  }
  rz_close (t, b);
  rz_close (t, a);
}

/* Legacy mode: with multi-conn changes are visible everywhere; without
 * it the server may keep them per connection or refuse (recorded).
 */
static void
test_mc_legacy (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_probe (t);
  struct rz *a = rz_open_legacy (t, "A", NULL), *b;
  uint64_t s = rz_size (a), step, want, seen;
  bool mc = a->rc->st.eflags & NBD_FLAG_CAN_MULTI_CONN;
  unsigned char c;
  uint32_t e;

  step = p->item && p->info.granularity ? p->info.granularity : 65536;
  want = s + step;
  b = rz_open_plain (t, "B", NULL);
  e = rz_set (t, a, want, 0, NULL);
  if (e) {
    if (mc && e != NBD_EPERM)
      nc_log (t, "legacy growth refused with %s", rz_errname (e));
    nc_info (t, "legacy set size %" PRIu64 " with another connection open "
             "refused with %s (RZ-LEG-8 allows NBD_EPERM)", want,
             rz_errname (e));
    rz_close (t, b);
    rz_close (t, a);
    return;
  }
  e = rz_read (t, b, want - 1, 1, &c);
  if (mc && e)
    nc_fail (t, "RZ-MC-7", "with NBD_FLAG_CAN_MULTI_CONN, legacy set size "
             "%" PRIu64 " on A; B reading byte %" PRIu64 " failed with %s",
             want, want - 1, rz_errname (e));
  else if (!mc)
    nc_info (t, "without multi-conn, a legacy growth by A is %s on B "
             "(RZ-LEG-7 allows either)", e ? "not visible" : "visible");
  seen = rz_size_fresh (t);
  if (mc && seen != want)
    nc_fail (t, "RZ-MC-7", "legacy set size %" PRIu64 "; a new connection "
             "sees %" PRIu64, want, seen);
  rz_close (t, b);
  rz_close (t, a);
}

static const struct nc_test tests[] = {
  { "mc-export-wide", "RZ-MC-1", NBDP_MUST, test_mc_offered,
    "EXPORT_WIDE with NBD_FLAG_CAN_MULTI_CONN and resizes" },
  { "mc-visible", "RZ-MC-2 RZ-MC-5 RZ-MC-3", NBDP_MUST, test_mc_visible,
    "a change is in effect on every connection at the reply" },
  { "mc-refuse-set", "RZ-MC-3 RZ-REQ-8", NBDP_MUST, test_mc_refuse_set,
    "without EXPORT_WIDE a set size fails while others are open" },
  { "mc-refuse-write", "RZ-MC-4 RZ-AUTO-13", NBDP_MUST,
    test_mc_refuse_write, "without EXPORT_WIDE a growing write fails while "
    "others are open" },
  { "mc-admin", "RZ-MC-6", NBDP_MUST, test_mc_admin,
    "the administrator's change reaches every connection, with REMOTE" },
  { "mc-legacy", "RZ-MC-7 RZ-LEG-7 RZ-LEG-8", NBDP_MUST, test_mc_legacy,
    "legacy mode with multi-conn: changes visible on every connection" },
};

NC_SUITE ("resize", tests);
