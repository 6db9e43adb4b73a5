/* Resize suite: size chunks, queries, subscriptions, sequence numbers and
 * flood protection (specs/resize.md sections 5.5 to 7).  Each chunk is
 * judged by the client layer's rules (events, sequence, DONE, cookie,
 * length, rate); the tests make the changes and check what needs timing
 * or another view of the export.
 */
#include <signal.h>

#include "rzlib.h"

/* A notification arrived while nobody changed the size: it must at least
 * report the size in effect (RZ-SUB-6), as a new connection sees it.
 */
static void
unexpected_notification (struct nc_ctx *t, struct rz *z,
                         const struct nbdp_rz_chunk *ch, const char *when)
{
  uint64_t seen = rz_size_fresh (t);

  if (ch->size != seen)
    nc_fail (t, "RZ-SUB-6", "%s %s, a notification reported size %" PRIu64
             " (events %s, sequence %" PRIu32 ") although no change was "
             "made; a new connection sees size %" PRIu64, z->label, when,
             ch->size, rz_ev (ch->events), ch->sequence, seen);
  else
    nc_log (t, "%s %s: a notification of size %" PRIu64 " without a change",
            z->label, when, ch->size);
}

/* Wait RZ_QUIET_MS; anything that arrives is judged. */
static void
quiet (struct nc_ctx *t, struct rz *z, const char *when)
{
  struct nbdp_rz_chunk ch;
  uint64_t end = rz_now_ms () + RZ_QUIET_MS;

  for (;;) {
    uint64_t now = rz_now_ms ();
    if (now >= end)
      return;
    if (rz_next (t, z, (int) (end - now), &ch) == 0)
      return;
    unexpected_notification (t, z, &ch, when);
  }
}

/* Wait for a notification reporting size want (after a change). */
static bool
wait_size (struct nc_ctx *t, struct rz *z, uint64_t want,
           struct nbdp_rz_chunk *out)
{
  uint64_t end = rz_now_ms () + RZ_NOTIFY_MS;
  struct nbdp_rz_chunk ch;

  if (z->rc->sub_last.size == want && !z->rc->sub_initial) {
    *out = z->rc->sub_last;
    z->rc->sub_new = false;
    return true;
  }
  for (;;) {
    uint64_t now = rz_now_ms ();
    if (now >= end)
      return false;
    if (rz_next (t, z, (int) (end - now), &ch) == 0)
      return false;
    if (ch.size == want) {
      *out = ch;
      return true;
    }
  }
}

static struct rz *
open_notify (struct nc_ctx *t, uint32_t need)
{
  struct rz_open o = { .want = RZ_F_ALL & ~(uint32_t) NBD_RESIZE_F_AUTO_GROW };

  return rz_open_neg (t, "A", need | NBD_RESIZE_F_SIZE_REPLY, &o);
}

/* ---- query --------------------------------------------------------- */

static void
test_query_basic (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, NBD_RESIZE_F_QUERY);
  struct nbdp_rz_result q, r;

  rz_query (t, z, &q);
  nc_expect (t, q.chunk.size == rz_size_fresh (t), "query reported size %"
             PRIu64 "; a new connection sees %" PRIu64, q.chunk.size,
             rz_size_fresh (t));
  if (rz_active (z, NBD_RESIZE_F_GROW)) {
    if (rz_set (t, z, rz_size (z) + rz_g (z), 0, &r))
      nc_error (t, "growth refused");
    rz_query (t, z, &q);
    if (r.have_chunk &&
        (q.chunk.size != r.chunk.size || q.chunk.sequence != r.chunk.sequence))
      nc_fail (t, "RZ-SEQ-2", "set size answered size %" PRIu64 " sequence %"
               PRIu32 "; the next query size %" PRIu64 " sequence %" PRIu32
               "; expected the same (no change in between)", r.chunk.size,
               r.chunk.sequence, q.chunk.size, q.chunk.sequence);
  }
  rz_close (t, z);
}

static void
test_query_no_change (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, NBD_RESIZE_F_QUERY);
  struct nbdp_rz_result q1, q2;

  rz_query (t, z, &q1);
  rz_query (t, z, &q2);
  nc_expect (t, q1.chunk.size == q2.chunk.size &&
             q1.chunk.sequence == q2.chunk.sequence, "two queries: size %"
             PRIu64 " sequence %" PRIu32 ", then size %" PRIu64 " sequence %"
             PRIu32 "; expected no change", q1.chunk.size, q1.chunk.sequence,
             q2.chunk.size, q2.chunk.sequence);
  if (rz_active (z, NBD_RESIZE_F_NOTIFY)) {
    if (rz_sub (t, z, true, NULL))
      nc_fail (t, "RZ-SUB-10", "subscribe refused"), nc_done (t);
    rz_query (t, z, &q2);
    quiet (t, z, "after a query with a subscription active");
    if (rz_unsub (t, z, NULL))
      nc_done (t);
  }
  nc_expect (t, rz_size_fresh (t) == q1.chunk.size, "the size changed after "
             "queries");
  rz_close (t, z);
}

/* ---- size chunks --------------------------------------------------- */

/* Requests other than NBD_CMD_RESIZE get no size chunk, and none comes
 * on a finished cookie.
 */
static void
test_chunk_where (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, 0);
  unsigned char buf[4096];
  uint32_t e;

  if (rz_active (z, NBD_RESIZE_F_QUERY))
    rz_query (t, z, NULL);
  else if (rz_active (z, NBD_RESIZE_F_GROW) ||
           rz_active (z, NBD_RESIZE_F_SHRINK))
    rz_set (t, z, rz_size (z), 0, NULL);
  else
    nc_unsupported (t, "neither QUERY, GROW nor SHRINK is active");
  memset (buf, 0x11, sizeof buf);
  e = rz_write (t, z, buf, sizeof buf < rz_size (z) ? sizeof buf
                : rz_size (z), 0, 0, NULL);
  if (e)
    nc_error (t, "write failed: %s", rz_errname (e));
  rz_read (t, z, 0, 512, buf);
  if (z->rc->st.eflags & NBD_FLAG_SEND_FLUSH)
    rz_cmd (t, z, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL);
  if (z->rc->st.eflags & NBD_FLAG_SEND_TRIM)
    rz_cmd (t, z, NBD_CMD_TRIM, 0, 0, 512, NULL, NULL);
  if (z->rc->st.eflags & NBD_FLAG_SEND_WRITE_ZEROES)
    rz_cmd (t, z, NBD_CMD_WRITE_ZEROES, 0, 0, 512, NULL, NULL);
  rz_pump (t, z, RZ_QUIET_MS);
  rz_close (t, z);
}

/* Without SIZE_REPLY no size chunk: structured without the feature, and
 * simple replies.
 */
static void
test_chunk_unnegotiated (struct nc_ctx *t)
{
  const struct rz_probe *p = rz_need_negotiated (t, 0);

  if (!(p->info.capabilities & RZ_F_SETSIZE))
    nc_unsupported (t, "neither GROW nor SHRINK");
  for (int simple = 0; simple <= 1; simple++) {
    struct rz_open o = { .want = RZ_F_SETSIZE, .simple = simple };
    struct rz *z = rz_open_neg (t, simple ? "simple" : "sr", 0, &o);
    uint64_t s = rz_size (z), g = rz_g (z);
    if (rz_active (z, NBD_RESIZE_F_SIZE_REPLY)) {
      rz_close (t, z);
      continue;
    }
    if (rz_active (z, NBD_RESIZE_F_GROW))
      rz_set (t, z, s + g, 0, NULL);
    if (rz_active (z, NBD_RESIZE_F_SHRINK))
      rz_set (t, z, s, 0, NULL);
    rz_set (t, z, rz_size (z), 0, NULL);
    rz_pump (t, z, 50);
    rz_close (t, z);
  }
}

/* Events of set size answers; new bytes of a growth. */
static void
test_chunk_events (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, 0);
  uint64_t s = rz_size (z), g = rz_g (z);
  struct nbdp_rz_result r;
  bool zf = z->rc->st.info.capabilities & NBD_RESIZE_F_ZERO_FILL;

  if (!rz_active (z, NBD_RESIZE_F_GROW))
    nc_unsupported (t, "GROW is not active");
  if (rz_set (t, z, s + 3 * g, 0, &r))
    nc_error (t, "growth refused");
  if (!(r.chunk.events & NBD_RESIZE_EV_ZEROED) && !zf)
    nc_log (t, "no ZEROED and no ZERO_FILL: new bytes unspecified");
  rz_check_new_bytes (t, z, r.chunk.events & NBD_RESIZE_EV_ZEROED, s,
                      rz_size (z) - s);
  if (rz_active (z, NBD_RESIZE_F_SHRINK))
    rz_set (t, z, s, 0, &r);
  rz_close (t, z);
}

/* Sequence numbers: +1 per change, none for no change, across the wrap. */
static void
test_seq_increment (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, NBD_RESIZE_F_QUERY | RZ_F_SETSIZE);
  uint64_t s = rz_size (z), g = rz_g (z);
  struct nbdp_rz_result q, r;
  uint32_t seq;

  rz_query (t, z, &q);
  seq = q.chunk.sequence;
  for (int i = 0; i < 24; i++) {
    uint64_t want = i % 2 ? s : s + g;
    if (rz_set (t, z, want, 0, &r))
      nc_error (t, "set size %" PRIu64 " refused", want);
    seq++;
    if (r.chunk.sequence != seq)
      nc_fail (t, "RZ-SEQ-1", "change %d (set size %" PRIu64 ") reported "
               "sequence %" PRIu32 "; expected %" PRIu32 " (the previous "
               "plus 1, modulo 2^32)", i + 1, want, r.chunk.sequence, seq),
        nc_done (t);
  }
  rz_set (t, z, rz_size (z), 0, &r);
  rz_query (t, z, &q);
  nc_expect (t, q.chunk.sequence == seq, "after 24 changes and a set size "
             "to the current size, the query reported sequence %" PRIu32
             "; expected %" PRIu32, q.chunk.sequence, seq);
  rz_close (t, z);
}

/* ---- subscriptions ------------------------------------------------- */

static struct rz *
subscribed (struct nc_ctx *t, uint32_t need, bool own,
            struct nbdp_rz_result *snap)
{
  struct rz *z = open_notify (t, NBD_RESIZE_F_NOTIFY | need);
  uint32_t e = rz_sub (t, z, own, snap);

  if (e)
    nc_fail (t, "RZ-SUB-10", "subscribe with NOTIFY active answered %s; "
             "expected a snapshot chunk", rz_errname (e)), nc_done (t);
  return z;
}

static void
test_sub_basic (struct nc_ctx *t)
{
  struct nbdp_rz_result snap;
  struct rz *z = subscribed (t, 0, true, &snap);
  unsigned char buf[512];
  uint64_t fresh = rz_size_fresh (t);

  nc_expect (t, snap.chunk.size == fresh, "the snapshot reported size %"
             PRIu64 "; a new connection sees %" PRIu64, snap.chunk.size,
             fresh);
  memset (buf, 0x42, sizeof buf);
  if (rz_write (t, z, buf, sizeof buf, 0, 0, NULL) ||
      rz_read (t, z, 0, sizeof buf, buf))
    nc_fail (t, "RZ-SUB-8", "a write or read failed while a subscription "
             "was active");
  if (rz_active (z, NBD_RESIZE_F_QUERY))
    rz_query (t, z, NULL);
  quiet (t, z, "after subscribing");
  if (rz_unsub (t, z, NULL))
    nc_done (t);
  rz_pump (t, z, RZ_QUIET_MS);
  rz_read (t, z, 0, sizeof buf, buf);
  rz_close (t, z);
}

static void
test_sub_prompt (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, NBD_RESIZE_F_NOTIFY);
  struct nbdp_rz_result snap;
  uint64_t t0, t1;
  int r;

  nbdp_client_set_timeout (z->rc->c, 2000);
  t0 = rz_now_ms ();
  r = nbdp_rz_subscribe (z->rc, true, &snap);
  t1 = rz_now_ms ();
  rz_flush (t, z);
  if (r == -1 && z->rc->c->failure == NBDP_FAIL_IO && t1 - t0 >= 1900)
    nc_should (t, "RZ-SUB-3", "no snapshot chunk within 2 s of the "
               "subscribe: %s", nbdp_rz_error (z->rc)), nc_done (t);
  if (r == -1)
    rz_broken (t, z, "subscribe");
  nc_log (t, "snapshot after %" PRIu64 " ms", t1 - t0);
  nbdp_client_set_timeout (z->rc->c, t->cfg->client_timeout_ms);
  /* With a change just notified (the rate limit running), the end and a
   * new first chunk are not held back.
   */
  if (rz_active (z, NBD_RESIZE_F_GROW)) {
    struct nbdp_rz_chunk ch;
    uint64_t want;
    rz_set (t, z, rz_size (z) + rz_g (z), 0, NULL);
    want = rz_size (z);
    if (!wait_size (t, z, want, &ch))
      nc_fail (t, "RZ-SUB-5", "no notification of the growth to %" PRIu64
               " within %d ms", want, RZ_NOTIFY_MS), nc_done (t);
    rz_set (t, z, rz_size (z) + rz_g (z), 0, NULL);
  }
  t0 = rz_now_ms ();
  if (rz_unsub (t, z, NULL))
    nc_done (t);
  t1 = rz_now_ms ();
  if (t1 - t0 > 1000)
    nc_fail (t, "RZ-FLOOD-5", "the unsubscribe took %" PRIu64 " ms with a "
             "notification pending; expected the end not held back by the "
             "rate limit", t1 - t0);
  t0 = rz_now_ms ();
  if (rz_sub (t, z, true, &snap))
    nc_fail (t, "RZ-SUB-10", "a second subscribe after unsubscribing was "
             "refused"), nc_done (t);
  t1 = rz_now_ms ();
  if (t1 - t0 > 1000)
    nc_fail (t, "RZ-FLOOD-5", "the first chunk of a new subscription took %"
             PRIu64 " ms right after a notification; expected it not held "
             "back by the rate limit", t1 - t0);
  rz_unsub (t, z, NULL);
  rz_close (t, z);
}

/* A second subscribe while one is active fails; the first stays. */
static void
test_sub_second (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, 0, true, NULL);
  struct rz_raw *w = rz_raw_send (t, z, NBD_CMD_RESIZE,
                                  NBD_CMD_FLAG_RESIZE_NOTIFY, 0, 0, NULL, 0);

  if (!rz_raw_wait (t, z, w, false, -1))
    nc_error (t, "no reply to the second subscribe");
  if (w->n_resize || w->error != NBD_EINVAL || !w->final)
    nc_fail (t, NULL, "sent a second subscribe while one was active; got "
             "%s%s; expected NBD_EINVAL", w->n_resize ? "a size chunk "
             "(a second subscription) and " : "", rz_errname (w->error)),
      nc_done (t);
  if (rz_active (z, NBD_RESIZE_F_GROW)) {
    struct nbdp_rz_chunk ch;
    rz_set (t, z, rz_size (z) + rz_g (z), 0, NULL);
    if (!wait_size (t, z, rz_size (z), &ch))
      nc_fail (t, "RZ-SUB-5", "after a refused second subscribe the first "
               "subscription reported no notification of a growth");
  }
  if (rz_unsub (t, z, NULL))
    nc_done (t);
  rz_close (t, z);
}

/* Unsubscribe without a subscription: NBD_EINVAL. */
static void
test_sub_unsub_none (struct nc_ctx *t)
{
  struct rz *z = open_notify (t, NBD_RESIZE_F_NOTIFY);

  rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_NOTIFY | NBD_CMD_FLAG_RESIZE_QUERY,
                 0, 0, NULL);
  if (rz_sub (t, z, true, NULL))
    nc_fail (t, "RZ-SUB-10", "subscribe refused"), nc_done (t);
  if (rz_unsub (t, z, NULL))
    nc_done (t);
  rz_resize_raw (t, z, NBD_CMD_FLAG_RESIZE_NOTIFY | NBD_CMD_FLAG_RESIZE_QUERY,
                 0, 0, NULL);
  rz_close (t, z);
}

/* Subscribe, unsubscribe, subscribe again. */
static void
test_sub_unsub (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, 0, true, NULL);

  for (int i = 0; i < 3; i++) {
    if (rz_unsub (t, z, NULL))
      nc_done (t);
    rz_pump (t, z, 20);
    if (rz_sub (t, z, true, NULL))
      nc_fail (t, "RZ-SUB-10", "subscribe %d refused", i + 2), nc_done (t);
  }
  rz_unsub (t, z, NULL);
  rz_close (t, z);
}

/* A change by this connection is notified: promptly, without REMOTE,
 * ideally before the set size reply.
 */
static void
test_sub_own_change (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, NBD_RESIZE_F_GROW, true, NULL);
  struct nbdp_rz_result r;
  struct nbdp_rz_chunk ch;
  unsigned char b;
  bool before;

  quiet (t, z, "after subscribing");
  if (rz_set (t, z, rz_size (z) + 2 * rz_g (z), 0, &r))
    nc_error (t, "growth refused");
  before = z->rc->sub_new;
  if (!wait_size (t, z, rz_size (z), &ch))
    nc_fail (t, "RZ-SUB-5", "grew the export to %" PRIu64 " on the "
             "subscribed connection; no notification reported it within %d "
             "ms", rz_size (z), RZ_NOTIFY_MS), nc_done (t);
  if (ch.events & NBD_RESIZE_EV_REMOTE)
    nc_fail (t, "RZ-CHUNK-9", "the notification of this connection's own "
             "growth has events %s; expected no REMOTE", rz_ev (ch.events));
  if (!(ch.events & NBD_RESIZE_EV_GREW))
    nc_fail (t, "RZ-CHUNK-5", "the notification of a growth has events %s; "
             "expected GREW", rz_ev (ch.events));
  if (r.have_chunk && ch.sequence != r.chunk.sequence)
    nc_fail (t, "RZ-SEQ-2", "set size answered sequence %" PRIu32 ", its "
             "notification %" PRIu32 "; expected the same", r.chunk.sequence,
             ch.sequence);
  if (rz_read (t, z, ch.size - 1, 1, &b))
    nc_fail (t, "RZ-SUB-6", "after the notification of size %" PRIu64
             " reading its last byte failed", ch.size);
  if (!before)
    nc_should (t, "RZ-SUB-7", "the notification of this connection's "
               "growth came after the set size reply (%d ms after the "
               "previous chunk); expected it before the final chunk",
               RZ_QUIET_MS);
  rz_unsub (t, z, NULL);
  rz_close (t, z);
}

/* A change by someone else is notified with REMOTE. */
static void
test_sub_remote_change (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, 0, false, NULL);
  struct nbdp_rz_chunk ch;
  uint64_t want = rz_size (z) + 3 * rz_g (z);
  const char *how;

  quiet (t, z, "after subscribing");
  rz_remote_resize (t, &want, &how);
  if (!wait_size (t, z, want, &ch))
    nc_fail (t, t->cfg->control_cmd ? "RZ-MC-6" : "RZ-SUB-5", "%s grew the "
             "export to %" PRIu64 "; the subscription reported no such "
             "notification within %d ms (last chunk: size %" PRIu64 ")", how,
             want, RZ_NOTIFY_MS, z->rc->sub_last.size), nc_done (t);
  if (!(ch.events & NBD_RESIZE_EV_REMOTE))
    nc_fail (t, t->cfg->control_cmd ? "RZ-MC-6" : "RZ-CHUNK-9",
             "the notification of a growth by %s has events %s; expected "
             "REMOTE", how, rz_ev (ch.events));
  rz_unsub (t, z, NULL);
  rz_close (t, z);
}

/* Many changes quickly: coalesced, rate limited, the last size comes. */
static void
test_sub_coalesce (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, RZ_F_SETSIZE, true, NULL);
  uint64_t s = rz_size (z), g = rz_g (z), t0, t1, n0;
  struct nbdp_rz_chunk ch;
  struct nbdp_rz_result r;
  uint32_t seq0 = z->rc->sub_last.sequence;
  const int changes = 20;
  double secs;
  uint64_t n;

  quiet (t, z, "after subscribing");
  n0 = z->rc->st.sub.notifications;
  t0 = rz_now_ms ();
  for (int i = 0; i < changes; i++)
    if (rz_set (t, z, i % 2 ? s : s + g * (uint64_t) (i + 1), 0, &r))
      nc_error (t, "change %d refused", i + 1);
  if (!wait_size (t, z, rz_size (z), &ch)) {
    /* The last change may have restored a size already reported. */
    if (z->rc->sub_last.size != rz_size (z))
      nc_fail (t, "RZ-FLOOD-4", "after %d changes ending at size %" PRIu64
               ", no notification reported it within %d ms (last: %" PRIu64
               ")", changes, rz_size (z), RZ_NOTIFY_MS,
               z->rc->sub_last.size), nc_done (t);
    ch = z->rc->sub_last;
  }
  t1 = rz_now_ms ();
  rz_pump (t, z, RZ_QUIET_MS);
  n = z->rc->st.sub.notifications - n0;
  secs = (t1 - t0) / 1000.0;
  nc_log (t, "%d changes, %" PRIu64 " notifications in %.3f s", changes, n,
          secs);
  if (ch.sequence != seq0 + (uint32_t) changes)
    nc_fail (t, "RZ-SEQ-2", "the notification of the final size after %d "
             "changes carries sequence %" PRIu32 "; expected %" PRIu32,
             changes, ch.sequence, seq0 + (uint32_t) changes);
  if ((double) n > 2 + secs * NBD_RESIZE_NOTIFY_RATE_DEFAULT)
    nc_should (t, "RZ-FLOOD-3", "%d changes in %.3f s gave %" PRIu64
               " notifications; expected at most %.0f (%d per second, "
               "coalesced)", changes, secs, n,
               2 + secs * NBD_RESIZE_NOTIFY_RATE_DEFAULT,
               NBD_RESIZE_NOTIFY_RATE_DEFAULT);
  rz_unsub (t, z, NULL);
  rz_close (t, z);
}

/* No notification for a set size to the current size. */
static void
test_sub_no_change (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, RZ_F_SETSIZE, true, NULL);

  quiet (t, z, "after subscribing");
  rz_set (t, z, rz_size (z), 0, NULL);
  quiet (t, z, "after a set size to the current size");
  rz_unsub (t, z, NULL);
  rz_close (t, z);
}

/* NBD_CMD_DISC ends the subscription with NONE+DONE first. */
static void
test_sub_disc (struct nc_ctx *t)
{
  struct rz *z = subscribed (t, 0, true, NULL);

  if (nbdp_rz_disc (z->rc) == -1)
    rz_broken (t, z, "NBD_CMD_DISC with a subscription");
  rz_flush (t, z);
}

/* The server shuts down: NBD_ESHUTDOWN on the subscription (SHOULD). */
static void
test_sub_shutdown (struct nc_ctx *t)
{
  struct rz *z;
  struct nbdp_rz_chunk ch;
  int r;

  if (t->server_pid <= 0)
    nc_skip (t, "needs --server (the suite stops the server itself)");
  z = subscribed (t, 0, true, NULL);
  quiet (t, z, "after subscribing");
  kill (-t->server_pid, SIGTERM);
  for (int i = 0; i < 8; i++) {
    r = nbdp_rz_next_event (z->rc, RZ_NOTIFY_MS, &ch);
    rz_flush (t, z);
    if (r != 1)
      break;
    nc_log (t, "a notification (size %" PRIu64 ") during the shutdown",
            ch.size);
  }
  if (r == 1)
    nc_should (t, "RZ-SUB-14", "SIGTERM to the server; notifications kept "
               "coming instead of the end of the subscription");
  else if (r == 0)
    nc_should (t, "RZ-SUB-14", "SIGTERM to the server; the subscription "
               "did not end within %d ms", RZ_NOTIFY_MS);
  else if (!z->rc->sub_ended)
    nc_should (t, "RZ-SUB-14", "SIGTERM to the server; the connection "
               "ended (%s) without NBD_ESHUTDOWN on the subscription",
               nbdp_rz_error (z->rc));
}

static const struct nc_test tests[] = {
  { "query-basic", "RZ-QUERY-1 RZ-QUERY-2 RZ-SEQ-2 RZ-CHUNK-6", NBDP_MUST,
    test_query_basic, "a query answers the current size and sequence" },
  { "query-no-change", "RZ-QUERY-3", NBDP_MUST, test_query_no_change,
    "queries change neither the size nor a subscription" },
  { "chunk-where", "RZ-CHUNK-3 RZ-CHUNK-4 RZ-AUTO-12", NBDP_MUST,
    test_chunk_where, "no size chunk for other requests nor on finished "
    "cookies" },
  { "chunk-unnegotiated", "RZ-CHUNK-2 RZ-SET-11", NBDP_MUST,
    test_chunk_unnegotiated, "no size chunk without SIZE_REPLY" },
  { "chunk-events", "RZ-CHUNK-1 RZ-CHUNK-5 RZ-CHUNK-7 RZ-CHUNK-8 "
    "RZ-CHUNK-12 RZ-VAL-2 RZ-ZERO-1", NBDP_MUST, test_chunk_events,
    "events of growth and shrink; new bytes read as zero" },
  { "seq-increment", "RZ-SEQ-1 RZ-SEQ-2", NBDP_MUST, test_seq_increment,
    "sequence +1 per change (across the 2^32 wrap), none for no change" },
  { "sub-basic", "RZ-SUB-2 RZ-SUB-4 RZ-SUB-8 RZ-SUB-11 RZ-SUB-12 RZ-SUB-16 "
    "RZ-CHUNK-6",
    NBDP_MUST, test_sub_basic, "subscribe, work meanwhile, unsubscribe" },
  { "sub-prompt", "RZ-SUB-3 RZ-FLOOD-5", NBDP_MUST, test_sub_prompt,
    "the first and the last chunk are not held back" },
  { "sub-second", "RZ-SUB-1", NBDP_MUST, test_sub_second,
    "a second subscribe fails with NBD_EINVAL; the first stays" },
  { "sub-unsub-none", "RZ-SUB-9", NBDP_MUST, test_sub_unsub_none,
    "unsubscribe without a subscription fails with NBD_EINVAL" },
  { "sub-unsub", "RZ-SUB-10 RZ-SUB-11 RZ-SUB-12 RZ-SUB-15", NBDP_MUST,
    test_sub_unsub, "subscribe and unsubscribe, three times" },
  { "sub-own-change", "RZ-SUB-5 RZ-SUB-6 RZ-SUB-7 RZ-CHUNK-9 RZ-SEQ-3",
    NBDP_MUST, test_sub_own_change, "this connection's growth is notified "
    "without REMOTE" },
  { "sub-remote-change", "RZ-SUB-5 RZ-CHUNK-9 RZ-MC-6 RZ-SET-7", NBDP_MUST,
    test_sub_remote_change, "a growth by someone else is notified with "
    "REMOTE" },
  { "sub-coalesce", "RZ-FLOOD-2 RZ-FLOOD-3 RZ-FLOOD-4 RZ-SEQ-2 RZ-SEQ-3",
    NBDP_MUST, test_sub_coalesce, "20 quick changes: coalesced, rate "
    "limited, the final size reported with the latest sequence" },
  { "sub-no-change", "RZ-FLOOD-1", NBDP_MUST, test_sub_no_change,
    "no notification without a change" },
  { "sub-disc", "RZ-SUB-13", NBDP_MUST, test_sub_disc,
    "NBD_CMD_DISC ends the subscription with NONE and DONE" },
  { "sub-shutdown", "RZ-SUB-14", NBDP_SHOULD, test_sub_shutdown,
    "a shutdown ends the subscription with NBD_ESHUTDOWN" },
};

NC_SUITE ("resize", tests);
