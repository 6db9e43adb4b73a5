/* Resize suite: legacy mode (the 2017 semantics, specs/resize.md section
 * 12) and the alternative encodings B1, B2, B3 (section 13).  Legacy mode
 * is reached by a client that negotiates nothing, on any server that sets
 * NBD_FLAG_SEND_RESIZE for it (legacy, and P/B2 with the legacy fallback,
 * and B1: RZ-B1-4).
 */
#include "rzlib.h"

/* G as the server would report it (the probe), else a safe step. */
static uint64_t
legacy_step (struct nc_ctx *t, struct rz *z)
{
  const struct rz_probe *p = rz_probe (t);

  if (p->item && p->info.granularity)
    return p->info.granularity;
  if (z->rc->exp.have_block_size && z->rc->exp.min_block > 1)
    return z->rc->exp.min_block < 65536 ? 65536 : z->rc->exp.min_block;
  return 65536;
}

/* Only the set size form. */
static void
test_leg_forms (struct nc_ctx *t)
{
  struct rz *z = rz_open_legacy (t, "legacy", NULL);
  static const uint16_t flags[] = {
    NBD_CMD_FLAG_RESIZE_QUERY, NBD_CMD_FLAG_RESIZE_NOTIFY |
    NBD_CMD_FLAG_RESIZE_QUERY, NBD_CMD_FLAG_NO_HOLE, 1 << 8,
  };
  uint64_t s = rz_size (z);
  struct rz_raw *w;

  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    rz_resize_raw (t, z, flags[i], flags[i] & NBD_CMD_FLAG_RESIZE_QUERY
                   ? 0 : s + legacy_step (t, z), 0, NULL);
  /* Subscribe: no subscription may start. */
  w = rz_raw_send (t, z, NBD_CMD_RESIZE, NBD_CMD_FLAG_RESIZE_NOTIFY, 0, 0,
                   NULL, 0);
  rz_raw_wait (t, z, w, false, -1);
  if (w->n_resize || w->error != NBD_EINVAL)
    nc_fail (t, NULL, "legacy mode: a subscribe answered %s%s; expected "
             "NBD_EINVAL", w->n_resize ? "a size chunk, " : "",
             rz_errname (w->error)), nc_done (t);
  nc_expect (t, rz_size_fresh (t) == s, "refused requests changed the "
             "size from %" PRIu64, s);
  rz_close (t, z);
}

/* Exactly the requested size, no chunk, never rounded. */
static void
test_leg_exact (struct nc_ctx *t)
{
  struct rz *z = rz_open_legacy (t, "legacy", NULL);
  uint64_t s = rz_size (z), step = legacy_step (t, z), seen;
  const struct rz_probe *p = rz_probe (t);
  uint64_t g = p->item && p->info.granularity ? p->info.granularity : 1;
  uint32_t e;

  e = rz_set (t, z, s + step, 0, NULL);
  if (e) {
    nc_info (t, "legacy set size %" PRIu64 " refused with %s", s + step,
             rz_errname (e));
    rz_close (t, z);
    return;
  }
  rz_check_seen (t, z, s + step);
  if (g > 1) {
    uint64_t u = rz_size (z) + 1;      /* an unaligned growth */
    e = rz_set (t, z, u, 0, NULL);
    seen = rz_size_fresh (t);
    if (e == 0 && seen != u)
      nc_fail (t, "RZ-LEG-2", "legacy set size %" PRIu64 " (G = %" PRIu64
               ") succeeded; a new connection sees %" PRIu64 "; expected "
               "exactly the requested size or a failure", u, g, seen);
    else if (e && e != NBD_EINVAL)
      nc_should (t, "RZ-LEG-6", "legacy set size %" PRIu64 ", not a "
                 "multiple of G = %" PRIu64 ", failed with %s; expected "
                 "NBD_EINVAL", u, g, rz_errname (e));
  }
  rz_set (t, z, NBD_RESIZE_SIZE_MAX + 1, 0, NULL);
  if (rz_set (t, z, s, 0, NULL) == 0)
    rz_check_seen (t, z, s);
  rz_close (t, z);
}

/* length is ignored in legacy mode. */
static void
test_leg_length (struct nc_ctx *t)
{
  struct rz *z = rz_open_legacy (t, "legacy", NULL);
  uint64_t s = rz_size (z), step = legacy_step (t, z);
  uint32_t e, e2;

  e = rz_resize_raw (t, z, 0, s + step, 4096, NULL);
  if (e) {
    e2 = rz_set (t, z, s + step, 0, NULL);
    nc_expect (t, e2 != 0, "legacy set size %" PRIu64 " with length 4096 "
               "failed with %s, the same with length 0 succeeded; expected "
               "the length ignored", s + step, rz_errname (e));
  }
  rz_close (t, z);
}

/* No automatic growth in legacy mode. */
static void
test_leg_no_grow (struct nc_ctx *t)
{
  struct rz *z = rz_open_legacy (t, "legacy", NULL);
  unsigned char buf[512];
  uint64_t s = rz_size (z);
  uint32_t e;

  if (z->rc->st.eflags & NBD_FLAG_AUTO_RESIZE)
    nc_unsupported (t, "variant B1: NBD_FLAG_AUTO_RESIZE is set");
  memset (buf, 0x71, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, s, 0, NULL);
  nc_expect (t, e != 0 && rz_size_fresh (t) == s, "legacy mode: a write at "
             "the end (%" PRIu64 ") answered %s; the size is now %" PRIu64
             "; expected failure and no growth", s, rz_errname (e),
             rz_size_fresh (t));
  rz_close (t, z);
}

/* ---- B1 ------------------------------------------------------------ */

static struct rz *
open_b1 (struct nc_ctx *t, const struct rz_open *o)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z;

  if (p->wire != RZW_B1)
    nc_unsupported (t, "not variant B1 (no NBD_FLAG_AUTO_RESIZE): %s",
                    p->desc);
  z = rz_open_plain (t, "B1", o);
  return z;
}

/* NBD_FLAG_AUTO_RESIZE: writes past the end grow, without chunks. */
static void
test_b1_grow (struct nc_ctx *t)
{
  struct rz *z = open_b1 (t, NULL);
  uint64_t s = rz_size (z), seen, end;
  unsigned char buf[1024], c;
  uint32_t e, mb = z->rc->exp.have_block_size ? z->rc->exp.min_block : 1;

  if (!(z->rc->st.eflags & NBD_FLAG_AUTO_RESIZE))
    nc_fail (t, "RZ-B1-1", "the probe saw NBD_FLAG_AUTO_RESIZE, this "
             "connection does not"), nc_done (t);
  memset (buf, 0x4e, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf, s + 512, 0, NULL);
  end = s + 512 + sizeof buf;
  if (e)
    nc_fail (t, "RZ-B1-1", "NBD_FLAG_AUTO_RESIZE set; a write at %" PRIu64
             " (size %" PRIu64 ") failed with %s; expected the export to "
             "grow", s + 512, s, rz_errname (e)), nc_done (t);
  seen = rz_size_fresh (t);
  if (seen < end || (mb > 1 && seen % mb))
    nc_fail (t, "RZ-B1-2", "a write ending at %" PRIu64 " grew the export "
             "to %" PRIu64 "; expected at least the end, a multiple of the "
             "minimum block size %" PRIu32, end, seen, mb);
  if (rz_read (t, z, s, 512, buf))
    nc_fail (t, "RZ-B1-2", "the gap before the growing write cannot be "
             "read");
  if (rz_read (t, z, seen, 1, &c) == 0)
    nc_fail (t, "RZ-AUTO-3", "a READ past the new end %" PRIu64
             " succeeded", seen);
  if (rz_size_fresh (t) != seen)
    nc_fail (t, "RZ-AUTO-3", "a READ past the end changed the size");
  rz_close (t, z);
}

static void
test_b1_limits (struct nc_ctx *t)
{
  struct rz *z = open_b1 (t, NULL);
  uint64_t s = rz_size (z);
  unsigned char buf[1024];

  memset (buf, 0x4f, sizeof buf);
  if (rz_write (t, z, buf, 512, NBD_RESIZE_SIZE_MAX + 1 - 512, 0, NULL) == 0)
    nc_fail (t, "RZ-AUTO-6", "B1: a write ending at 2^63 succeeded");
  if (rz_write (t, z, buf, sizeof buf, UINT64_MAX - 511, 0, NULL) == 0)
    nc_fail (t, "RZ-AUTO-7", "B1: a write overflowing 64 bits succeeded");
  nc_expect (t, rz_size_fresh (t) == s, "refused writes changed the size "
             "from %" PRIu64, s);
  rz_close (t, z);
}

/* B1: never NBD_INFO_RESIZE, not even when listed; no flag read-only. */
static void
test_b1_no_info (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);

  if (p->wire != RZW_B1)
    nc_unsupported (t, "not variant B1: %s", p->desc);
  nc_expect (t, !p->item, "B1 server sent NBD_INFO_RESIZE when listed");
  if (t->cfg->ro_export) {
    struct rz_open o = { .export = t->cfg->ro_export };
    struct rz *z = rz_open_plain (t, "ro", &o);
    nc_expect (t, !(z->rc->st.eflags & NBD_FLAG_AUTO_RESIZE),
               "NBD_FLAG_AUTO_RESIZE on the read-only export");
    rz_close (t, z);
  }
  else
    nc_log (t, "no --ro-export: RZ-B1-5 not checked");
}

/* ---- B2 ------------------------------------------------------------ */

static void
test_b2_optin (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz_open o = { .probe_info = true };
  struct rz *z;

  if (p->wire != RZW_B2)
    nc_unsupported (t, "not variant B2: %s", p->desc);
  z = rz_open_neg (t, "A", 0, &o);
  rz_close (t, z);
  o.simple = true;
  z = rz_open_neg (t, "simple", 0, &o);
  rz_close (t, z);
}

/* B2: NBD_OPT_GO without NBD_INFO_RESIZE is not negotiated. */
static void
test_b2_unlisted (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  static const uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };
  struct rz *z;
  struct nbdp_rz_export ex;
  uint32_t e;

  if (p->wire != RZW_B2)
    nc_unsupported (t, "not variant B2: %s", p->desc);
  z = rz_manual_start (t, "A", NBDP_RZ_ENC_INFO_OPTIN, true);
  if (rz_manual_info (t, z, true, infos, 1, &ex))
    nc_error (t, "NBD_OPT_GO refused");
  nc_expect (t, ex.n_info_resize == 0 ||
             (ex.info.present && ex.info.active == 0), "B2: NBD_OPT_GO "
             "without NBD_INFO_RESIZE; the reply has the item with active "
             "%s; expected no negotiation", rz_feat (ex.info.active));
  if (z->rc->st.eflags & NBD_FLAG_SEND_RESIZE) {
    e = rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, NULL);
    nc_expect (t, e == NBD_EINVAL, "B2 without the opt-in: a query answered "
               "%s; expected NBD_EINVAL (legacy mode)", rz_errname (e));
    rz_set (t, z, rz_size (z), 0, NULL);
  }
  rz_close (t, z);
}

/* ---- B3 ------------------------------------------------------------ */

static void
need_b3 (struct nc_ctx *t)
{
  rz_need_extension (t);
  if (rz_declared (t) != RZ_DECL_B3)
    nc_unsupported (t, "variant B3 is not declared (nbd-conform --profile "
                    "boolean); on the wire it looks like P without "
                    "SIZE_REPLY");
}

static void
test_b3_caps (struct nc_ctx *t)
{
  const struct rz_probe *p;

  need_b3 (t);
  p = rz_need_negotiated (t, 0);
  nc_expect (t, !(p->info.capabilities &
                  (NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY |
                   NBD_RESIZE_F_NOTIFY)), "B3: capabilities %s offer "
             "SIZE_REPLY, QUERY or NOTIFY", rz_feat (p->info.capabilities));
}

static void
test_b3_set (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_ALL & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW };
  struct rz *z;
  uint64_t s, g;

  need_b3 (t);
  z = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, &o);
  s = rz_size (z);
  g = rz_g (z);
  if (rz_set (t, z, s + g, 0, NULL))
    nc_fail (t, NULL, "B3: aligned growth refused"), nc_done (t);
  rz_check_seen (t, z, s + g);
  if (g > 1 && rz_set (t, z, rz_size (z) + 1, 0, NULL) == 0)
    nc_done (t);
  rz_close (t, z);
}

static const struct nc_test tests[] = {
  { "leg-forms", "RZ-LEG-1 RZ-B1-4", NBDP_MUST, test_leg_forms,
    "legacy mode: only the set size form" },
  { "leg-exact", "RZ-LEG-2 RZ-LEG-3 RZ-LEG-6 RZ-B1-4", NBDP_MUST,
    test_leg_exact, "legacy mode: exactly the requested size, no chunk" },
  { "leg-length", "RZ-LEG-5", NBDP_MUST, test_leg_length,
    "legacy mode: length is ignored" },
  { "leg-no-grow", "RZ-LEG-4", NBDP_MUST, test_leg_no_grow,
    "legacy mode: writes past the end do not grow" },
  { "b1-grow", "RZ-B1-1 RZ-B1-2 RZ-B1-3 RZ-AUTO-3", NBDP_MUST, test_b1_grow,
    "B1: with NBD_FLAG_AUTO_RESIZE writes past the end grow" },
  { "b1-limits", "RZ-B1-2 RZ-AUTO-6 RZ-AUTO-7 RZ-AUTO-8", NBDP_MUST,
    test_b1_limits, "B1: impossible growths fail" },
  { "b1-no-info", "RZ-B1-3 RZ-B1-5", NBDP_MUST, test_b1_no_info,
    "B1: no NBD_INFO_RESIZE; no flag on a read-only export" },
  { "b2-optin", "RZ-B2-1 RZ-B2-2", NBDP_MUST, test_b2_optin,
    "B2: listing NBD_INFO_RESIZE in NBD_OPT_GO is the opt-in" },
  { "b2-unlisted", "RZ-B2-3", NBDP_MUST, test_b2_unlisted,
    "B2: NBD_OPT_GO without NBD_INFO_RESIZE is not negotiated" },
  { "b3-caps", "RZ-B3-1", NBDP_MUST, test_b3_caps,
    "B3: no SIZE_REPLY, QUERY, NOTIFY" },
  { "b3-set", "RZ-B3-2", NBDP_MUST, test_b3_set,
    "B3: set size exact or failed" },
};

NC_SUITE ("resize", tests);
