/* Resize suite: negotiation of the draft RESIZE extension (specs/resize.md
 * sections 3 and 4): what the server advertises, NBD_OPT_RESIZE, the
 * active set, NBD_INFO_RESIZE and NBD_FLAG_SEND_RESIZE.  The handshake
 * items themselves are judged by the client layer's rules on every
 * connection; these tests set up the handshakes that exercise them.
 */
#include "rzlib.h"

static const uint16_t infos_rz[] = { NBD_INFO_BLOCK_SIZE, NBD_INFO_RESIZE };
static const uint16_t infos_bs[] = { NBD_INFO_BLOCK_SIZE };

/* The encoding the wire shows, and what --profile declares. */
static void
test_declared (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_probe (t);
  enum rz_decl d = rz_declared (t);
  static const char *const wn[] = {
    [RZW_NONE] = "none", [RZW_LEGACY] = "legacy (2017)",
    [RZW_B1] = "flag-only (B1)", [RZW_B2] = "info-optin (B2)",
    [RZW_P] = "negotiated (P or B3)",
  };

  if (p->tls_required)
    nc_skip (t, "the server requires TLS, which nbd-conform does not speak");
  switch (d) {
  case RZ_DECL_NONE:
    if (p->wire == RZW_NONE)
      nc_unsupported (t, "the server does not advertise the RESIZE "
                      "extension: %s", p->desc);
    nc_info (t, "the wire shows encoding %s: %s (no --profile given)",
             wn[p->wire], p->desc);
    return;
  case RZ_DECL_P: case RZ_DECL_B3:
    if (p->wire != RZW_P)
      nc_fail (t, "RZ-NEG-1", "--profile declares %s; the server did not "
               "acknowledge NBD_OPT_RESIZE: %s", rz_decl_name (d), p->desc);
    break;
  case RZ_DECL_B2:
    if (p->wire != RZW_B2)
      nc_fail (t, p->wire == RZW_P ? "RZ-NEG-3" : "RZ-INFO-1",
               "--profile declares %s; the wire shows %s: %s",
               rz_decl_name (d), wn[p->wire], p->desc);
    break;
  case RZ_DECL_B1:
    if (p->wire != RZW_B1)
      nc_fail (t, p->wire == RZW_P ? "RZ-NEG-3" : "RZ-B1-1",
               "--profile declares %s; the wire shows %s: %s",
               rz_decl_name (d), wn[p->wire], p->desc);
    break;
  case RZ_DECL_LEGACY:
    if (p->wire != RZW_LEGACY)
      nc_fail (t, p->wire == RZW_P ? "RZ-NEG-3" : "RZ-FLAG-3",
               "--profile declares %s; the wire shows %s: %s",
               rz_decl_name (d), wn[p->wire], p->desc);
    break;
  case RZ_DECL_OFF:
    if (p->wire != RZW_NONE)
      nc_fail (t, p->wire == RZW_P ? "RZ-NEG-3" : "RZ-FLAG-4",
               "--profile declares no extension; the wire shows %s: %s",
               wn[p->wire], p->desc);
    else
      nc_unsupported (t, "--profile off and the server does not advertise "
                      "the extension: %s", p->desc);
    break;
  }
  nc_log (t, "declared %s, wire %s", rz_decl_name (d), wn[p->wire]);
}

/* NBD_OPT_RESIZE is acknowledged with no data (P, B3). */
static void
test_neg_ack (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z;

  if (p->wire != RZW_P)
    nc_unsupported (t, "the server does not implement NBD_OPT_RESIZE "
                    "(encoding P or B3): %s", p->desc);
  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  nc_expect (t, rz_manual_opt (t, z, RZ_F_DEFAULT) == NBD_REP_ACK,
             "sent NBD_OPT_RESIZE %s; reply %s; expected NBD_REP_ACK",
             rz_feat (RZ_F_DEFAULT), rz_rep_name (z->rc->opt_rep));
}

/* Without P/B3 the option is unsupported. */
static void
test_neg_unsup (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);

  if (p->wire == RZW_P)
    nc_unsupported (t, "the server implements NBD_OPT_RESIZE (P or B3)");
  if (!p->opt_sent)
    nc_unsupported (t, "oldstyle server: no options (%s)", p->desc);
  if (p->opt_rep == NBD_REP_ERR_POLICY)
    nc_info (t, "NBD_OPT_RESIZE answered NBD_REP_ERR_POLICY (RZ-NEG-4)");
  else
    nc_expect (t, p->opt_rep == NBD_REP_ERR_UNSUP,
               "server advertises the extension as %s; NBD_OPT_RESIZE was "
               "answered %s; expected NBD_REP_ERR_UNSUP", p->desc,
               rz_rep_name (p->opt_rep));
}

/* Data length other than 4: NBD_REP_ERR_INVALID, then as if not sent. */
static void
test_neg_bad_length (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  static const unsigned char data[8] = { 0, 0, 0, 0xff, 0, 0, 0, 0xff };
  static const uint32_t lens[] = { 0, 3, 5, 8 };
  struct rz *z;
  struct nbdp_opt_reply r;
  struct nbdp_rz_export ex;

  if (p->wire != RZW_P)
    nc_unsupported (t, "the server does not implement NBD_OPT_RESIZE: %s",
                    p->desc);
  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    if (nbdp_client_send_option (z->rc->c, NBD_OPT_RESIZE, data,
                                 lens[i]) == -1 ||
        nbdp_client_recv_option_reply (z->rc->c, &r, 64 * 1024) == -1)
      rz_broken (t, z, "NBD_OPT_RESIZE with a bad length");
    nc_log (t, "NBD_OPT_RESIZE with %" PRIu32 " bytes: %s", lens[i],
            rz_rep_name (r.reply));
    if (r.reply != NBD_REP_ERR_INVALID)
      nc_fail (t, "RZ-NEG-2", "sent NBD_OPT_RESIZE with %" PRIu32 " bytes "
               "of data; reply %s; expected NBD_REP_ERR_INVALID", lens[i],
               rz_rep_name (r.reply));
  }
  /* As if not sent: nothing is active. */
  if (rz_manual_info (t, z, true, infos_rz, 2, &ex))
    nc_fail (t, NULL, "NBD_OPT_GO refused: %s", rz_rep_name (z->rc->exp.rep_error));
  if (ex.info.present && ex.info.active)
    nc_fail (t, "RZ-NEG-2", "after NBD_OPT_RESIZE requests of bad length "
             "only, NBD_OPT_GO reported active %s; expected 0 (as if the "
             "option had not been sent)", rz_feat (ex.info.active));
}

/* Reserved requested bits are ignored and never granted. */
static void
test_neg_reserved (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  struct rz_open o = { .want = UINT32_MAX };
  struct rz *z;

  if (p->wire == RZW_B2)
    nc_unsupported (t, "variant B2 has no NBD_OPT_RESIZE request");
  z = rz_open_neg (t, "A", 0, &o);
  nc_expect (t, (z->rc->st.active & ~RZ_F_ALL) == 0,
             "requested 0xffffffff; active 0x%08" PRIx32 " grants reserved "
             "bits", z->rc->st.active);
  rz_close (t, z);
}

/* A repeated NBD_OPT_RESIZE is acknowledged and the latest wins. */
static void
test_neg_repeat (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  static const uint32_t order[] = {
    NBD_RESIZE_F_GROW, NBD_RESIZE_F_SHRINK, NBD_RESIZE_F_ZERO_FILL,
    NBD_RESIZE_F_EXPORT_WIDE, NBD_RESIZE_F_AUTO_GROW,
  };
  uint32_t second = 0;
  struct rz *z;
  struct nbdp_rz_export ex;

  if (p->wire != RZW_P)
    nc_unsupported (t, "variant B2 has no NBD_OPT_RESIZE");
  for (size_t i = 0; i < sizeof order / sizeof order[0] && !second; i++)
    if (p->info.capabilities & order[i])
      second = order[i];
  if (!second)
    nc_unsupported (t, "capabilities %s offer nothing to narrow to",
                    rz_feat (p->info.capabilities));
  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  if (rz_manual_opt (t, z, RZ_F_ALL) != NBD_REP_ACK)
    nc_fail (t, "RZ-NEG-1", "first NBD_OPT_RESIZE answered %s",
             rz_rep_name (z->rc->opt_rep)), nc_done (t);
  if (rz_manual_opt (t, z, second) != NBD_REP_ACK)
    nc_fail (t, NULL, "sent NBD_OPT_RESIZE %s, then again requesting %s; "
             "the repeat was answered %s; expected NBD_REP_ACK",
             rz_feat (RZ_F_ALL), rz_feat (second),
             rz_rep_name (z->rc->opt_rep)), nc_done (t);
  if (rz_manual_info (t, z, true, infos_rz, 2, &ex))
    nc_error (t, "NBD_OPT_GO refused");
  nc_expect (t, ex.info.present && ex.info.active == second,
             "sent NBD_OPT_RESIZE %s then %s; NBD_OPT_GO reported active "
             "%s; expected %s (the latest request replaces the first)",
             rz_feat (RZ_F_ALL), rz_feat (second),
             ex.info.present ? rz_feat (ex.info.active) : "(no item)",
             rz_feat (second));
  rz_close (t, z);
}

/* The active set for a range of requests (the rules check each). */
static void
test_neg_grant (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  static const uint32_t wants[] = {
    0, NBD_RESIZE_F_GROW, NBD_RESIZE_F_SHRINK,
    NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY, NBD_RESIZE_F_NOTIFY,
    NBD_RESIZE_F_AUTO_GROW | NBD_RESIZE_F_ZERO_FILL, RZ_F_ALL,
  };

  if (p->wire == RZW_B2)
    nc_unsupported (t, "variant B2 grants every capability: no request");
  for (int simple = 0; simple <= 1; simple++)
    for (size_t i = 0; i < sizeof wants / sizeof wants[0]; i++) {
      struct rz_open o = { .want = wants[i], .simple = simple };
      char label[32];
      struct rz *z;
      snprintf (label, sizeof label, "%s %s", simple ? "simple" : "sr",
                rz_feat (wants[i]));
      z = rz_new (t, label);
      rz_handshake (t, z, rz_neg_encoding (t, p), &o);
      rz_close (t, z);
    }
}

/* Capabilities do not depend on what the client negotiated. */
static void
test_neg_caps_same (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  struct rz *a, *b;
  struct nbdp_rz_export ex;
  struct rz_open o = { .want = NBD_RESIZE_F_GROW, .simple = true };

  a = rz_manual_start (t, "plain", p->wire == RZW_B2
                       ? NBDP_RZ_ENC_INFO_OPTIN : NBDP_RZ_ENC_NEGOTIATED,
                       false);
  if (rz_manual_info (t, a, false, infos_rz, 2, &ex))
    nc_error (t, "NBD_OPT_INFO refused");
  if (!ex.info.present)
    nc_fail (t, "RZ-INFO-1", "NBD_OPT_INFO listing NBD_INFO_RESIZE without "
             "NBD_OPT_RESIZE: no NBD_INFO_RESIZE in the reply"), nc_done (t);
  nc_expect (t, ex.info.capabilities == p->info.capabilities,
             "capabilities %s with nothing negotiated, %s with "
             "NBD_OPT_RESIZE all and structured replies; expected the same",
             rz_feat (ex.info.capabilities), rz_feat (p->info.capabilities));
  if (p->wire == RZW_B2)
    return;
  b = rz_new (t, "simple GROW");
  rz_handshake (t, b, rz_neg_encoding (t, p), &o);
  nc_expect (t, b->rc->st.info.capabilities == p->info.capabilities,
             "capabilities %s with NBD_OPT_RESIZE GROW and simple replies, "
             "%s with NBD_OPT_RESIZE all and structured replies; expected "
             "the same", rz_feat (b->rc->st.info.capabilities),
             rz_feat (p->info.capabilities));
  rz_close (t, b);
}

/* The active set of NBD_OPT_GO stays for the whole connection. */
static void
test_neg_active_stable (struct nc_ctx *t)
{
  struct rz_open og = { .want = NBD_RESIZE_F_GROW | NBD_RESIZE_F_SIZE_REPLY };
  const struct rz_probe *p = rz_need_negotiated (t, NBD_RESIZE_F_GROW |
                                                 NBD_RESIZE_F_SHRINK);
  struct rz *a, *b;
  uint64_t s;
  uint32_t e;

  if (p->wire == RZW_B2)
    nc_unsupported (t, "variant B2 grants every capability: no narrower "
                    "request to keep");
  a = rz_open_neg (t, "A", NBD_RESIZE_F_GROW, &og);
  b = rz_open_other (t, "B");
  rz_close (t, b);
  s = rz_size (a);
  if (s == 0)
    nc_skip (t, "the export is empty: nothing to shrink");
  e = rz_set (t, a, s - (rz_g (a) < s ? rz_g (a) : s), 0, NULL);
  nc_expect (t, e != 0, "A negotiated GROW only; after B negotiated "
             "GROW|SHRINK, A's shrink from %" PRIu64 " succeeded; expected "
             "it to fail (A's active set is still GROW)", s);
  e = rz_set (t, a, s + rz_g (a), 0, NULL);
  nc_expect (t, e == 0, "A negotiated GROW; its grow from %" PRIu64
             " failed with %s; expected success", s, rz_errname (e));
  rz_close (t, a);
}

/* NBD_OPT_EXPORT_NAME after an acknowledged NBD_OPT_RESIZE: legacy. */
static void
test_neg_export_name (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z;
  struct nbdp_rz_export ex;
  uint32_t e;

  if (p->wire != RZW_P)
    nc_unsupported (t, "the server does not implement NBD_OPT_RESIZE: %s",
                    p->desc);
  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  if (rz_manual_opt (t, z, RZ_F_ALL) != NBD_REP_ACK)
    nc_fail (t, "RZ-NEG-1", "NBD_OPT_RESIZE answered %s",
             rz_rep_name (z->rc->opt_rep)), nc_done (t);
  if (nbdp_client_opt_export_name (z->rc->c, rz_export_name (t, z),
                                   &z->rc->exp) == -1)
    rz_broken (t, z, "NBD_OPT_EXPORT_NAME");
  memset (&ex, 0, sizeof ex);
  ex.have_export = true;
  ex.size = z->rc->exp.size;
  ex.eflags = z->rc->exp.eflags;
  ex.info_len_ok = true;
  z->rc->st.used_export_name = true;
  {
    struct nbdp_rz_violations vs;
    nbdp_rz_violations_clear (&vs);
    nbdp_rz_enter_transmission (&z->rc->st, &ex, &vs);
    rz_merge (t, z, &vs);
  }
  if (z->rc->st.mode == NBDP_RZ_MODE_NEGOTIATED)
    nc_fail (t, NULL, "the client layer put an EXPORT_NAME connection "
             "in negotiated mode"), nc_done (t);
  /* The query form is not there; a set size gets no size chunk (the
   * rules check RZ-LEG-1, RZ-LEG-3, RZ-FLAG-4).
   */
  e = rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_QUERY, 0, 0, NULL);
  nc_expect (t, e == NBD_EINVAL, "NBD_OPT_RESIZE acknowledged, then "
             "NBD_OPT_EXPORT_NAME; a query answered %s; expected NBD_EINVAL "
             "(legacy mode has no query form)", rz_errname (e));
  if (z->rc->st.eflags & NBD_FLAG_SEND_RESIZE)
    rz_set (t, z, rz_size (z), 0, NULL);
  rz_close (t, z);
}

/* FORCEDTLS: NBD_REP_ERR_TLS_REQD before TLS. */
static void
test_neg_tls (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_probe (t);
  struct rz *z;
  uint32_t rep;

  if (!p->tls_required)
    nc_unsupported (t, "the server does not require TLS (FORCEDTLS mode)");
  z = rz_new (t, "A");
  {
    struct nbdp_greeting g;
    if (nbdp_client_recv_greeting (z->rc->c, &g) == -1 ||
        nbdp_client_send_cflags (z->rc->c, NBD_FLAG_C_FIXED_NEWSTYLE) == -1)
      rz_broken (t, z, "handshake");
  }
  rep = rz_manual_opt (t, z, RZ_F_DEFAULT);
  nc_expect (t, rep == NBD_REP_ERR_TLS_REQD, "FORCEDTLS server: "
             "NBD_OPT_RESIZE before STARTTLS answered %s; expected "
             "NBD_REP_ERR_TLS_REQD", rz_rep_name (rep));
}

/* After STARTTLS the request is forgotten: needs TLS. */
static void
test_neg_starttls (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z;

  if (p->wire != RZW_P)
    nc_unsupported (t, "the server does not implement NBD_OPT_RESIZE");
  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), false);
  rz_manual_opt (t, z, RZ_F_DEFAULT);
  if (nbdp_client_opt_starttls (z->rc->c) == -1) {
    if (z->rc->c->failure == NBDP_FAIL_REFUSED)
      nc_unsupported (t, "the server does not offer TLS (NBD_OPT_STARTTLS "
                      "refused)");
    rz_broken (t, z, "NBD_OPT_STARTTLS");
  }
  nc_skip (t, "the server acknowledged NBD_OPT_STARTTLS; nbd-conform does "
           "not speak TLS, so RZ-NEG-8 cannot be checked");
}

/* NBD_INFO_RESIZE when listed, also without NBD_OPT_RESIZE (then active
 * 0 under P).
 */
static void
test_info_listed (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z;
  struct nbdp_rz_export ex;

  if (p->wire != RZW_P && p->wire != RZW_B2)
    nc_unsupported (t, "the server implements neither P, B2 nor B3: %s",
                    p->desc);
  z = rz_manual_start (t, "A", p->wire == RZW_B2 ? NBDP_RZ_ENC_INFO_OPTIN
                       : rz_neg_encoding (t, p), true);
  if (rz_manual_info (t, z, false, infos_rz, 2, &ex))
    nc_error (t, "NBD_OPT_INFO refused");
  nc_expect (t, ex.n_info_resize == 1, "sent NBD_OPT_INFO listing "
             "NBD_INFO_RESIZE (no NBD_OPT_RESIZE); the reply had %u "
             "NBD_INFO_RESIZE items; expected one", ex.n_info_resize);
  if (rz_manual_info (t, z, true, infos_rz, 2, &ex))
    nc_error (t, "NBD_OPT_GO refused");
  nc_expect (t, ex.n_info_resize == 1, "sent NBD_OPT_GO listing "
             "NBD_INFO_RESIZE (no NBD_OPT_RESIZE); the reply had %u "
             "NBD_INFO_RESIZE items; expected one", ex.n_info_resize);
  rz_close (t, z);
}

/* After an acknowledged NBD_OPT_RESIZE the item comes unasked. */
static void
test_info_unlisted (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  struct rz *z;
  struct nbdp_rz_export ex;

  if (p->wire != RZW_P)
    nc_unsupported (t, "variant B2 has no NBD_OPT_RESIZE");
  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  rz_manual_opt (t, z, RZ_F_DEFAULT);
  if (rz_manual_info (t, z, false, infos_bs, 1, &ex))
    nc_error (t, "NBD_OPT_INFO refused");
  if (rz_manual_info (t, z, true, infos_bs, 1, &ex))
    nc_error (t, "NBD_OPT_GO refused");
  rz_close (t, z);
}

/* Listed twice: sent once. */
static void
test_info_twice (struct nc_ctx *t)
{
  static const uint16_t twice[] = { NBD_INFO_RESIZE, NBD_INFO_BLOCK_SIZE,
                                    NBD_INFO_RESIZE };
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  struct rz *z;
  struct nbdp_rz_export ex;

  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  if (p->wire == RZW_P)
    rz_manual_opt (t, z, RZ_F_DEFAULT);
  if (rz_manual_info (t, z, true, twice, 3, &ex))
    nc_error (t, "NBD_OPT_GO refused");
  nc_expect (t, ex.n_info_resize == 1, "NBD_OPT_GO listing NBD_INFO_RESIZE "
             "twice; %u items in the reply; expected exactly one",
             ex.n_info_resize);
  rz_close (t, z);
}

/* NBD_OPT_INFO predicts NBD_OPT_GO. */
static void
test_info_then_go (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_DEFAULT, .probe_info = true };
  struct rz_open o2 = { .want = NBD_RESIZE_F_GROW | NBD_RESIZE_F_QUERY,
                        .probe_info = true, .simple = true };
  struct rz *z = rz_open_neg (t, "A", 0, &o);

  rz_close (t, z);
  z = rz_open_neg (t, "B", 0, &o2);
  rz_close (t, z);
}

/* A size change between NBD_OPT_INFO and NBD_OPT_GO (a MAY: recorded). */
static void
test_info_size_change (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, NBD_RESIZE_F_GROW);
  struct rz *z;
  struct nbdp_rz_export ex1, ex2;
  uint64_t want;
  const char *how;

  z = rz_manual_start (t, "A", rz_neg_encoding (t, p), true);
  if (p->wire == RZW_P)
    rz_manual_opt (t, z, RZ_F_DEFAULT);
  if (rz_manual_info (t, z, false, infos_rz, 2, &ex1))
    nc_error (t, "NBD_OPT_INFO refused");
  want = ex1.size + (ex1.info.granularity ? ex1.info.granularity : 4096);
  rz_remote_resize (t, &want, &how);
  if (rz_manual_info (t, z, true, infos_rz, 2, &ex2))
    nc_error (t, "NBD_OPT_GO refused");
  if (ex2.size == ex1.size)
    nc_info (t, "NBD_OPT_INFO reported size %" PRIu64 "; after %s grew the "
             "export to %" PRIu64 ", NBD_OPT_GO still reported %" PRIu64,
             ex1.size, how, want, ex2.size);
  else
    nc_info (t, "NBD_OPT_INFO reported size %" PRIu64 ", NBD_OPT_GO %"
             PRIu64 " after %s grew the export (RZ-INFO-11 allows it)",
             ex1.size, ex2.size, how);
  nc_expect (t, ex2.size == ex1.size || ex2.size == want,
             "NBD_OPT_GO reported size %" PRIu64 "; expected the old %"
             PRIu64 " or the new %" PRIu64, ex2.size, ex1.size, want);
  rz_close (t, z);
}

/* No feature that sets the flag is active: no NBD_FLAG_SEND_RESIZE. */
static void
test_flag_none_active (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  static const uint32_t wants[] = {
    0, NBD_RESIZE_F_AUTO_GROW | NBD_RESIZE_F_ZERO_FILL |
    NBD_RESIZE_F_EXPORT_WIDE | NBD_RESIZE_F_SIZE_REPLY,
  };

  if (p->wire == RZW_B2)
    nc_unsupported (t, "variant B2 grants every capability");
  for (size_t i = 0; i < 2; i++) {
    struct rz_open o = { .want = wants[i] };
    struct rz *z = rz_new (t, rz_feat (wants[i]));
    rz_handshake (t, z, rz_neg_encoding (t, p), &o);
    nc_expect (t, !(z->rc->st.eflags & NBD_FLAG_SEND_RESIZE),
               "requested %s, active %s; NBD_FLAG_SEND_RESIZE is set; "
               "expected it clear", rz_feat (wants[i]),
               rz_feat (z->rc->st.active));
    rz_close (t, z);
  }
}

/* One of GROW, SHRINK, QUERY, NOTIFY active: NBD_FLAG_SEND_RESIZE. */
static void
test_flag_set_active (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);
  static const uint32_t wants[] = {
    NBD_RESIZE_F_GROW, NBD_RESIZE_F_SHRINK,
    NBD_RESIZE_F_QUERY | NBD_RESIZE_F_SIZE_REPLY,
    NBD_RESIZE_F_NOTIFY | NBD_RESIZE_F_SIZE_REPLY,
  };
  unsigned tried = 0;

  for (size_t i = 0; i < 4; i++) {
    struct rz_open o = { .want = wants[i] };
    struct rz *z;
    if ((p->info.capabilities & wants[i]) != wants[i])
      continue;
    if (p->wire == RZW_B2 && tried)
      break;
    z = rz_new (t, rz_feat (wants[i]));
    rz_handshake (t, z, rz_neg_encoding (t, p), &o);
    nc_expect (t, z->rc->st.eflags & NBD_FLAG_SEND_RESIZE,
               "requested %s, active %s; NBD_FLAG_SEND_RESIZE is clear; "
               "expected it set", rz_feat (wants[i]),
               rz_feat (z->rc->st.active));
    rz_close (t, z);
    tried++;
  }
  if (!tried)
    nc_unsupported (t, "capabilities %s offer none of GROW, SHRINK, QUERY, "
                    "NOTIFY", rz_feat (p->info.capabilities));
}

/* Legacy mode for clients that negotiate nothing (a MAY: recorded). */
static void
test_flag_legacy_fallback (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z = rz_open_plain (t, "plain", NULL);
  char fb[256];

  nc_info (t, "a client that negotiates nothing gets transmission flags "
           "%s: %s (server: %s)",
           nbdp_flags_str (fb, sizeof fb, z->rc->st.eflags),
           z->rc->st.eflags & NBD_FLAG_SEND_RESIZE ? "legacy mode"
           : "no resize", p->desc);
  rz_close (t, z);
}

/* NBD_CMD_RESIZE without NBD_FLAG_SEND_RESIZE: NBD_EINVAL. */
static void
test_flag_unadvertised (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_extension (t);
  struct rz *z;
  uint32_t e;

  if (p->wire == RZW_P) {
    struct rz_open o = { .want = 0 };
    z = rz_new (t, "A");
    rz_handshake (t, z, rz_neg_encoding (t, p), &o);
  }
  else
    z = rz_open_plain (t, "A", NULL);
  if (z->rc->st.eflags & NBD_FLAG_SEND_RESIZE)
    nc_unsupported (t, "every connection this suite can open gets "
                    "NBD_FLAG_SEND_RESIZE (%s)", p->desc);
  e = rz_set (t, z, rz_size (z), 0, NULL);
  nc_expect (t, e == NBD_EINVAL, "NBD_CMD_RESIZE (set size to the current "
             "size) without NBD_FLAG_SEND_RESIZE answered %s; expected "
             "NBD_EINVAL", rz_errname (e));
  nc_expect (t, rz_size_fresh (t) == p->size, "the size changed after a "
             "refused NBD_CMD_RESIZE");
  rz_close (t, z);
}

/* Extended headers: SIZE_REPLY offered (SHOULD). */
static void
test_eh_size_reply (struct nc_ctx *t)
{
  struct rz_open o = { .want = RZ_F_DEFAULT, .extended = true };
  struct rz *z = rz_open_neg (t, "A", 0, &o);

  rz_close (t, z);
}

static const struct nc_test tests[] = {
  { "declared", "RZ-NEG-1 RZ-NEG-3", NBDP_MUST, test_declared,
    "the encoding the wire shows matches what --profile declares" },
  { "neg-ack", "RZ-NEG-1", NBDP_MUST, test_neg_ack,
    "NBD_OPT_RESIZE is acknowledged with no data (P, B3)" },
  { "neg-unsup", "RZ-NEG-3 RZ-NEG-4", NBDP_MUST, test_neg_unsup,
    "NBD_OPT_RESIZE is unsupported under legacy, B1 and B2" },
  { "neg-bad-length", "RZ-NEG-2 RZ-NEG-10", NBDP_MUST, test_neg_bad_length,
    "NBD_OPT_RESIZE of length 0, 3, 5, 8: NBD_REP_ERR_INVALID, then as if "
    "not sent" },
  { "neg-reserved-bits", "RZ-NEG-6 RZ-VAL-1", NBDP_MUST, test_neg_reserved,
    "reserved requested bits are never granted" },
  { "neg-repeat", "RZ-NEG-7", NBDP_MUST, test_neg_repeat,
    "a repeated NBD_OPT_RESIZE is acknowledged and replaces the first" },
  { "neg-grant", "RZ-NEG-9 RZ-INFO-5 RZ-FLAG-1 RZ-FLAG-2", NBDP_MUST,
    test_neg_grant, "the active set is request & capabilities with "
    "prerequisites, for 7 requests x simple/structured" },
  { "neg-caps-same", "RZ-NEG-12 RZ-INFO-1", NBDP_MUST, test_neg_caps_same,
    "the capabilities do not depend on what the client negotiated" },
  { "neg-active-stable", "RZ-NEG-11 RZ-SET-2", NBDP_MUST,
    test_neg_active_stable, "the active set of NBD_OPT_GO holds for the "
    "whole connection" },
  { "neg-export-name", "RZ-NEG-13 RZ-LEG-1 RZ-LEG-3", NBDP_MUST,
    test_neg_export_name, "NBD_OPT_EXPORT_NAME after an acknowledged "
    "NBD_OPT_RESIZE gives legacy mode" },
  { "neg-tls-required", "RZ-NEG-5", NBDP_MUST, test_neg_tls,
    "FORCEDTLS: NBD_OPT_RESIZE before TLS gets NBD_REP_ERR_TLS_REQD" },
  { "neg-starttls", "RZ-NEG-8", NBDP_MUST, test_neg_starttls,
    "NBD_OPT_STARTTLS forgets NBD_OPT_RESIZE (needs TLS)" },
  { "info-listed", "RZ-INFO-1 RZ-INFO-3 RZ-INFO-6 RZ-INFO-7 RZ-INFO-9 "
    "RZ-NEG-10 RZ-VAL-3", NBDP_MUST, test_info_listed,
    "NBD_INFO_RESIZE is sent when listed, active 0 without NBD_OPT_RESIZE" },
  { "info-unlisted", "RZ-INFO-2", NBDP_MUST, test_info_unlisted,
    "after NBD_OPT_RESIZE the item comes in INFO and GO unasked" },
  { "info-twice", "RZ-INFO-4", NBDP_MUST, test_info_twice,
    "NBD_INFO_RESIZE listed twice is sent once" },
  { "info-then-go", "RZ-INFO-10 RZ-B2-2", NBDP_MUST, test_info_then_go,
    "NBD_OPT_INFO reports the active set NBD_OPT_GO then gives" },
  { "info-size-change", "RZ-INFO-11", NBDP_MUST, test_info_size_change,
    "a size change between NBD_OPT_INFO and NBD_OPT_GO (recorded)" },
  { "flag-none-active", "RZ-FLAG-2", NBDP_MUST, test_flag_none_active,
    "no NBD_FLAG_SEND_RESIZE when none of GROW SHRINK QUERY NOTIFY is "
    "active" },
  { "flag-set-active", "RZ-FLAG-1", NBDP_MUST, test_flag_set_active,
    "NBD_FLAG_SEND_RESIZE when GROW, SHRINK, QUERY or NOTIFY is active" },
  { "flag-legacy-fallback", "RZ-FLAG-3", NBDP_MUST,
    test_flag_legacy_fallback, "legacy mode for clients that negotiate "
    "nothing (recorded)" },
  { "flag-unadvertised", "RZ-FLAG-4 RZ-REQ-6", NBDP_MUST,
    test_flag_unadvertised, "NBD_CMD_RESIZE without NBD_FLAG_SEND_RESIZE "
    "fails with NBD_EINVAL" },
  { "eh-size-reply", "RZ-EH-1", NBDP_SHOULD, test_eh_size_reply,
    "with extended headers SIZE_REPLY is offered" },
};

NC_SUITE ("resize", tests);
