/* nbd-refserver: the draft RESIZE extension at run time (specs/resize.md):
 * capabilities, the active set, set size, query, subscriptions with their
 * notifier, automatic growth, the administrator's resize and shutdown.
 *
 * Locking, outermost first:
 *   sub->send_lock   order of a subscription's chunks on the wire
 *   exp->size_lock   shared by every request from range check to reply;
 *                    exclusive while the size changes (so no request sees
 *                    a half-changed size)
 *   exp->rz_lock     the export's connection list and sequence number
 *   sub->lock        a subscription's pending notification
 *   c->write_lock    (reply.c) one reply at a time on the wire
 * Nothing is sent while the size lock is held exclusively, so a client
 * that does not read cannot stall resizes on other connections.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "log.h"

/* Newly exposed bytes filled with the pattern: at most this many per
 * change (beyond it they read as zero, which a client may see too).
 */
#define FILL_LIMIT (64 * 1024 * 1024)
#define FLOOD_COUNT 5000          /* --fault notify-flood */
#define QUEUE_MAX (1024 * 1024)   /* --coalesce=off: bound of the queue */

struct rz_note {
  uint64_t size;
  uint32_t seq;
  bool remote;
};

struct rz_sub {
  struct conn *conn;              /* the connection it belongs to */
  pthread_mutex_t send_lock;
  pthread_mutex_t lock;           /* everything below */
  pthread_cond_t cond;            /* wakes the notifier */
  pthread_t thread;
  bool thread_started;
  bool stop;                      /* the connection ends */
  bool active;
  bool shutdown_end;              /* end it with NBD_ESHUTDOWN */
  struct request req;             /* the subscribe request */
  uint64_t last_size;             /* reported by the previous chunk */
  uint32_t last_seq;
  bool pending;                   /* coalescing: one pending change */
  struct rz_note pend;
  struct rz_note *queue;          /* --coalesce=off: a ring */
  size_t qhead, qlen, qcap;
  struct timespec next_ok;        /* rate limit: next notification */
};

static bool shutting_down;
static pthread_mutex_t subs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t subs_cond = PTHREAD_COND_INITIALIZER;

static bool
is_shutting_down (void)
{
  return __atomic_load_n (&shutting_down, __ATOMIC_ACQUIRE);
}

/* ---- Capabilities and negotiation ---- */

static bool
negotiated_server (void)
{
  return rzc.mode == RZ_NEGOTIATED && rzc.encoding != RZ_ENC_LEGACY;
}

int
resize_export_setup (struct export *exp)
{
  uint32_t caps = 0;
  uint64_t g;

  exp->rz_seq = rzc.sequence_start;
  if (!exp->multi_conn_explicit)
    exp->multi_conn = rzc.multi_conn_default;

  if (!exp->readonly) {
    if (rzc.grow) caps |= NBD_RESIZE_F_GROW;
    if (rzc.shrink) caps |= NBD_RESIZE_F_SHRINK;
    if (rzc.auto_grow) caps |= NBD_RESIZE_F_AUTO_GROW;
  }
  if (rzc.zero_fill || rz_fault (FAULT_DIRTY_GROW))
    caps |= NBD_RESIZE_F_ZERO_FILL;
  if (rzc.size_reply && rzc.encoding != RZ_ENC_B3) {
    caps |= NBD_RESIZE_F_SIZE_REPLY;
    if (rzc.query) caps |= NBD_RESIZE_F_QUERY;
    if (rzc.notify) caps |= NBD_RESIZE_F_NOTIFY;
  }
  if (rzc.visibility == RZ_VIS_EXPORT)
    caps |= NBD_RESIZE_F_EXPORT_WIDE;
  exp->rz_caps = caps;

  g = rzc.granularity ? rzc.granularity
      : exp->min_block > 1 ? exp->min_block : 1;
  exp->rz_gran = g;
  exp->rz_gran_field = rzc.granularity;
  exp->rz_limit = rzc.max_size ? rzc.max_size
                  : NBD_RESIZE_SIZE_MAX - NBD_RESIZE_SIZE_MAX % g;

  if (rzc.mode == RZ_OFF)
    return 0;
  if (rzc.granularity && rzc.granularity < exp->min_block) {
    nbdp_warnx ("export \"%s\": --granularity=%" PRIu64 " is below its "
                "minimum block size %" PRIu32 " (RZ-INFO-7)", exp->name,
                rzc.granularity, exp->min_block);
    return -1;
  }
  if (rzc.max_size % g) {
    nbdp_warnx ("export \"%s\": --max-size=%" PRIu64 " is not a multiple "
                "of the granularity %" PRIu64 " (RZ-INFO-9)", exp->name,
                rzc.max_size, g);
    return -1;
  }
  if (rzc.granularity && export_size (exp) % rzc.granularity) {
    nbdp_warnx ("export \"%s\": its size %" PRIu64 " is not a multiple of "
                "--granularity=%" PRIu64 " (RZ-INFO-8)", exp->name,
                export_size (exp), rzc.granularity);
    return -1;
  }
  if (negotiated_server () && rzc.visibility == RZ_VIS_REFUSE &&
      exp->multi_conn) {
    nbdp_warnx ("export \"%s\": --visibility=refuse cannot be combined "
                "with multi-conn=on (RZ-MC-1)", exp->name);
    return -1;
  }
  return 0;
}

/* Keep only the features whose prerequisites hold (section 3.2). */
static uint32_t
prerequisites (struct conn *c, uint32_t a)
{
  if (!c->structured)
    a &= ~(uint32_t) NBD_RESIZE_F_SIZE_REPLY;
  if (!(a & NBD_RESIZE_F_SIZE_REPLY))
    a &= ~(uint32_t) NBD_RESIZE_MASK_NEED_SIZE_REPLY;
  return a;
}

uint32_t
resize_active_for (struct conn *c, struct export *exp, bool listed,
                   bool *negotiated)
{
  *negotiated = false;
  if (!negotiated_server ())
    return 0;
  switch (rzc.encoding) {
  case RZ_ENC_P:
  case RZ_ENC_B3:
    if (!c->rz_acked)
      return 0;                               /* RZ-NEG-10 */
    *negotiated = true;
    return prerequisites (c, c->rz_requested & exp->rz_caps); /* RZ-NEG-9 */
  case RZ_ENC_B2:
    if (!listed)
      return 0;                               /* RZ-B2-3 */
    *negotiated = true;
    return prerequisites (c, exp->rz_caps);   /* RZ-B2-1 */
  default:
    return 0;
  }
}

bool
resize_send_info (struct conn *c, bool listed)
{
  if (!negotiated_server ())
    return false;
  switch (rzc.encoding) {
  case RZ_ENC_P:
  case RZ_ENC_B3:
    return listed || c->rz_acked;             /* RZ-INFO-1, RZ-INFO-2 */
  case RZ_ENC_B2:
    return listed;
  default:
    return false;                             /* RZ-B1-3 */
  }
}

void
resize_info_item (struct export *exp, uint32_t active, unsigned char *buf)
{
  nbdp_put16 (buf, NBD_INFO_RESIZE);
  nbdp_put32 (buf + 2, exp->rz_caps);
  nbdp_put32 (buf + 6, active);
  nbdp_put32 (buf + 10, exp->rz_gran_field ? exp->rz_gran_field
              : rz_fault (FAULT_SIZE_UNALIGNED) ? (uint32_t) exp->rz_gran : 0);
  nbdp_put64 (buf + 14, rzc.max_size);
}

/* Legacy mode for this (non-negotiated) connection? */
static bool
legacy_for (struct export *exp)
{
  if (exp->readonly)
    return false;                             /* RZ-RO-4 */
  if (rzc.mode == RZ_LEGACY)
    return true;
  return negotiated_server () && rzc.legacy_fallback;  /* RZ-FLAG-3 */
}

uint16_t
resize_eflags (struct export *exp, bool negotiated, uint32_t active)
{
  uint16_t f = 0;

  if (rzc.mode == RZ_OFF)
    return 0;
  if (negotiated) {
    if (active & NBD_RESIZE_MASK_SEND_RESIZE) /* RZ-FLAG-1, RZ-FLAG-2 */
      f |= NBD_FLAG_SEND_RESIZE;
    return f;
  }
  if (legacy_for (exp))
    f |= NBD_FLAG_SEND_RESIZE;
  if (negotiated_server () && rzc.encoding == RZ_ENC_B1 &&
      (exp->rz_caps & NBD_RESIZE_F_AUTO_GROW))  /* RZ-B1-1, RZ-B1-5 */
    f |= NBD_FLAG_AUTO_RESIZE;
  return f;
}

void
resize_conn_setup (struct conn *c, bool negotiated, uint32_t active)
{
  struct export *exp = c->exp;
  bool caps_auto = exp->rz_caps & NBD_RESIZE_F_AUTO_GROW;

  c->rz_negotiated = negotiated;
  c->rz_active = negotiated ? active : 0;
  c->rz_size_reply = negotiated && (active & NBD_RESIZE_F_SIZE_REPLY);
  c->rz_auto_grow = false;
  if (negotiated_server () && caps_auto) {
    if (negotiated && (active & NBD_RESIZE_F_AUTO_GROW))
      c->rz_auto_grow = true;
    else if (c->eflags & NBD_FLAG_AUTO_RESIZE)
      c->rz_auto_grow = true;                 /* B1 */
    else if (!rzc.require_optin)
      c->rz_auto_grow = true;                 /* negative: no opt-in */
  }
}

void
resize_reset_negotiation (struct conn *c)
{
  c->rz_acked = false;                        /* RZ-NEG-8 */
  c->rz_requested = 0;
}

/* ---- Connections of an export ---- */

/* Wake whoever waits for the number of connections or subscriptions. */
static void
counts_changed (void)
{
  pthread_mutex_lock (&subs_lock);
  pthread_cond_broadcast (&subs_cond);
  pthread_mutex_unlock (&subs_lock);
}

int
resize_wait_count (struct export *exp, bool subs, unsigned n, int secs)
{
  struct timespec deadline;
  int r = 0;

  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += secs;
  pthread_mutex_lock (&subs_lock);
  while ((subs ? resize_count_subs (exp) : resize_count_conns (exp)) != n)
    if (pthread_cond_timedwait (&subs_cond, &subs_lock, &deadline) ==
        ETIMEDOUT) {
      r = -1;
      break;
    }
  pthread_mutex_unlock (&subs_lock);
  return r;
}

void
resize_conn_start (struct conn *c)
{
  struct export *exp = c->exp;

  if (c->rz_registered)
    return;
  c->rz_registered = true;
  pthread_mutex_lock (&exp->rz_lock);
  c->rz_next = exp->rz_conns;
  exp->rz_conns = c;
  exp->rz_nconns++;
  pthread_mutex_unlock (&exp->rz_lock);
  counts_changed ();
}

static void sub_end (struct conn *c, struct rz_sub *s, uint32_t err);

void
resize_conn_end (struct conn *c)
{
  struct export *exp = c->exp;
  struct rz_sub *s;

  if (!c->rz_registered)
    return;
  c->rz_registered = false;
  pthread_mutex_lock (&exp->rz_lock);
  for (struct conn **p = &exp->rz_conns; *p; p = &(*p)->rz_next)
    if (*p == c) {
      *p = c->rz_next;
      exp->rz_nconns--;
      break;
    }
  s = c->sub;
  c->sub = NULL;
  pthread_mutex_unlock (&exp->rz_lock);
  counts_changed ();
  if (s == NULL)
    return;

  /* RZ-SUB-13: NBD_CMD_DISC ends the subscription with NONE + DONE.  A
   * hard disconnect sends nothing.
   */
  pthread_mutex_lock (&s->send_lock);
  if (c->disc_seen && !conn_is_dead (c))
    sub_end (c, s, 0);
  else {
    pthread_mutex_lock (&s->lock);
    if (s->active) {
      s->active = false;
      __atomic_sub_fetch (&exp->rz_nsubs, 1, __ATOMIC_ACQ_REL);
      counts_changed ();
    }
    pthread_mutex_unlock (&s->lock);
  }
  pthread_mutex_unlock (&s->send_lock);

  pthread_mutex_lock (&s->lock);
  s->stop = true;
  pthread_cond_broadcast (&s->cond);
  pthread_mutex_unlock (&s->lock);
  if (s->thread_started)
    pthread_join (s->thread, NULL);
  pthread_cond_destroy (&s->cond);
  pthread_mutex_destroy (&s->lock);
  pthread_mutex_destroy (&s->send_lock);
  free (s->queue);
  free (s);
}

unsigned
resize_count_conns (struct export *exp)
{
  unsigned n;

  pthread_mutex_lock (&exp->rz_lock);
  n = exp->rz_nconns;
  pthread_mutex_unlock (&exp->rz_lock);
  return n;
}

unsigned
resize_count_subs (struct export *exp)
{
  return __atomic_load_n (&exp->rz_nsubs, __ATOMIC_ACQUIRE);
}

uint64_t
conn_size (struct conn *c)
{
  if (c->rz_private)
    return c->rz_view;
  return export_size (c->exp);
}

/* ---- Time ---- */

static void
now_mono (struct timespec *t)
{
  clock_gettime (CLOCK_MONOTONIC, t);
}

static bool
before (const struct timespec *a, const struct timespec *b)
{
  return a->tv_sec < b->tv_sec ||
         (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void
set_next_ok (struct rz_sub *s)
{
  struct timespec t;
  long ns;

  now_mono (&t);
  if (rzc.notify_rate == 0) {
    s->next_ok = t;
    return;
  }
  ns = 1000000000L / rzc.notify_rate;
  t.tv_sec += ns / 1000000000L;
  t.tv_nsec += ns % 1000000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  s->next_ok = t;
}

/* ---- Notifications ---- */

static bool
sub_has_pending (struct rz_sub *s)
{
  return s->pending || s->qlen > 0;
}

/* Record a change for one subscription (exp->rz_lock held). */
static void
sub_note (struct conn *c, uint64_t size, uint32_t seq, bool remote)
{
  struct rz_sub *s = c->sub;

  if (s == NULL)
    return;
  pthread_mutex_lock (&s->lock);
  if (s->active) {
    if (rzc.coalesce) {                       /* RZ-FLOOD-2 */
      if (!s->pending)
        s->pend.remote = false;
      s->pending = true;
      s->pend.size = size;
      s->pend.seq = seq;
      s->pend.remote |= remote;
    }
    else if (s->qlen < QUEUE_MAX) {
      if (s->qlen == s->qcap) {
        size_t ncap = s->qcap ? 2 * s->qcap : 64;
        struct rz_note *q = malloc (ncap * sizeof *q);
        if (q == NULL)
          goto out;
        for (size_t i = 0; i < s->qlen; i++)
          q[i] = s->queue[(s->qhead + i) % s->qcap];
        free (s->queue);
        s->queue = q;
        s->qcap = ncap;
        s->qhead = 0;
      }
      s->queue[(s->qhead + s->qlen) % s->qcap] =
        (struct rz_note) { size, seq, remote };
      s->qlen++;
    }
    pthread_cond_broadcast (&s->cond);
  }
 out:
  pthread_mutex_unlock (&s->lock);
}

/* Send chunks built from n notes of (size, events, seq) on the
 * subscription cookie.  send_lock held.
 */
static int
sub_send_chunks (struct conn *c, const struct request *req,
                 const uint64_t *sizes, const uint32_t *events,
                 const uint32_t *seqs, size_t n, const char *what)
{
  unsigned char (*bufs)[RESIZE_CHUNK_BUF];
  struct iovec *iov;
  int r;

  bufs = malloc (n * sizeof *bufs);
  iov = malloc (n * sizeof *iov);
  if (bufs == NULL || iov == NULL) {
    free (bufs);
    free (iov);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = reply_resize_chunk (c, req, bufs[i], 0, sizes[i],
                                         events[i], seqs[i]);
  }
  r = reply_send (c, req, iov, n, what);
  free (bufs);
  free (iov);
  return r;
}

/* Events of a chunk reporting size after prev (section 6.2). */
static uint32_t
change_events (struct export *exp, uint64_t prev, uint64_t size)
{
  uint32_t ev = 0;

  if (size > prev) {
    ev |= NBD_RESIZE_EV_GREW;
    if (exp->rz_caps & NBD_RESIZE_F_ZERO_FILL) /* RZ-CHUNK-7 */
      ev |= NBD_RESIZE_EV_ZEROED;
  }
  else if (size < prev)
    ev |= NBD_RESIZE_EV_SHRANK;
  return ev;
}

/* Send the next pending notification, if any, ignoring the rate limit
 * (callers check it).  send_lock held, s->lock not.
 */
static void
sub_send_one (struct conn *c, struct rz_sub *s)
{
  struct rz_note n;
  struct request req;
  uint64_t sizes[2];
  uint32_t events[2], seqs[2];
  size_t k = 0;
  char what[96];

  pthread_mutex_lock (&s->lock);
  if (!s->active || !sub_has_pending (s)) {
    pthread_mutex_unlock (&s->lock);
    return;
  }
  if (s->pending) {
    n = s->pend;
    s->pending = false;
  }
  else {
    n = s->queue[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
  }
  if (n.size == s->last_size) {               /* RZ-FLOOD-1 */
    pthread_mutex_unlock (&s->lock);
    return;
  }
  req = s->req;
  sizes[k] = n.size;
  events[k] = change_events (c->exp, s->last_size, n.size) |
              (n.remote ? NBD_RESIZE_EV_REMOTE : 0);
  seqs[k] = rz_fault (FAULT_SEQUENCE_REVERSE) ? s->last_seq - 1 : n.seq;
  s->last_size = n.size;
  s->last_seq = seqs[k];
  k++;
  if (rz_fault (FAULT_NOTIFY_DUPLICATE)) {
    sizes[k] = n.size;
    events[k] = 0;
    seqs[k] = s->last_seq + 1;
    s->last_seq = seqs[k];
    k++;
  }
  set_next_ok (s);
  pthread_mutex_unlock (&s->lock);
  snprintf (what, sizeof what, "notification: size %" PRIu64 " sequence %"
            PRIu32 "%s", n.size, seqs[0], k > 1 ? " (+ duplicate)" : "");
  if (sub_send_chunks (c, &req, sizes, events, seqs, k, what) == -1) {
    pthread_mutex_lock (&s->lock);
    s->pending = false;
    s->qlen = 0;
    pthread_mutex_unlock (&s->lock);
  }
}

/* End the subscription of c: NONE + DONE (err 0) or an error chunk.
 * send_lock held.
 */
static void
sub_end (struct conn *c, struct rz_sub *s, uint32_t err)
{
  struct request req;

  pthread_mutex_lock (&s->lock);
  if (!s->active) {
    pthread_mutex_unlock (&s->lock);
    return;
  }
  s->active = false;
  s->pending = false;
  s->qlen = 0;
  req = s->req;
  pthread_mutex_unlock (&s->lock);

  if (err)                                    /* RZ-SUB-14 */
    reply_error (c, &req, err, "the server is shutting down: subscription "
                 "ended");
  else {                                      /* RZ-SUB-12, RZ-SUB-13 */
    unsigned char hdr[NBDP_EXTENDED_REPLY_SIZE];
    struct iovec iov = { hdr, 0 };
    iov.iov_len = reply_chunk_header (c, &req, hdr, NBD_REPLY_FLAG_DONE,
                                      NBD_REPLY_TYPE_NONE, 0);
    reply_send (c, &req, &iov, 1, "NBD_REPLY_TYPE_NONE (DONE): "
                "subscription ended");
  }
  /* Counted down only now: shutdown waits for the chunk to be out. */
  __atomic_sub_fetch (&c->exp->rz_nsubs, 1, __ATOMIC_ACQ_REL);
  counts_changed ();
}

/* The notifier: one thread per connection that ever subscribed.  It
 * sleeps on a condition variable; with a pending notification and the
 * rate limit in the way, until the limit allows the next one.
 */
static void *
notifier (void *arg)
{
  /* The subscription, not c->sub: resize_conn_end may have detached it
   * from the connection before this thread first runs.
   */
  struct rz_sub *s = arg;
  struct conn *c = s->conn;

  pthread_mutex_lock (&s->lock);
  for (;;) {
    if (s->stop)
      break;
    if (s->active && s->shutdown_end) {
      pthread_mutex_unlock (&s->lock);
      pthread_mutex_lock (&s->send_lock);
      sub_end (c, s, NBD_ESHUTDOWN);
      pthread_mutex_unlock (&s->send_lock);
      pthread_mutex_lock (&s->lock);
      continue;
    }
    if (s->active && sub_has_pending (s)) {
      struct timespec t;
      now_mono (&t);
      if (rzc.notify_rate && before (&t, &s->next_ok)) {  /* RZ-FLOOD-3 */
        pthread_cond_timedwait (&s->cond, &s->lock, &s->next_ok);
        continue;
      }
      pthread_mutex_unlock (&s->lock);
      pthread_mutex_lock (&s->send_lock);
      sub_send_one (c, s);
      pthread_mutex_unlock (&s->send_lock);
      pthread_mutex_lock (&s->lock);
      continue;
    }
    pthread_cond_wait (&s->cond, &s->lock);
  }
  pthread_mutex_unlock (&s->lock);
  return NULL;
}

/* Make sure c has a subscription structure and a notifier. */
static struct rz_sub *
sub_get (struct conn *c)
{
  struct rz_sub *s;
  pthread_condattr_t ca;

  /* Several workers of one connection may get here at once: the
   * structure and its notifier are created under the export's rz_lock,
   * so that there is exactly one of each (a second one would be a leaked
   * thread that outlives the connection).
   */
  pthread_mutex_lock (&c->exp->rz_lock);
  if (c->sub) {
    s = c->sub;
    pthread_mutex_unlock (&c->exp->rz_lock);
    return s;
  }
  s = calloc (1, sizeof *s);
  if (s == NULL) {
    pthread_mutex_unlock (&c->exp->rz_lock);
    return NULL;
  }
  s->conn = c;
  pthread_mutex_init (&s->send_lock, NULL);
  pthread_mutex_init (&s->lock, NULL);
  pthread_condattr_init (&ca);
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  pthread_cond_init (&s->cond, &ca);
  pthread_condattr_destroy (&ca);
  if (pthread_create (&s->thread, NULL, notifier, s) == 0)
    s->thread_started = true;
  else
    nbdp_warnx ("conn %" PRIu64 ": cannot start the notifier", c->id);
  __atomic_store_n (&c->sub, s, __ATOMIC_RELEASE);
  pthread_mutex_unlock (&c->exp->rz_lock);
  return s;
}

/* After a change made by c itself: send its notification before the
 * reply when the rate limit allows (RZ-SUB-7).
 */
static void
sub_flush_own (struct conn *c)
{
  /* Another worker may be creating it (sub_get, under rz_lock). */
  struct rz_sub *s = __atomic_load_n (&c->sub, __ATOMIC_ACQUIRE);
  struct timespec t;
  bool go;

  if (s == NULL)
    return;
  pthread_mutex_lock (&s->send_lock);
  pthread_mutex_lock (&s->lock);
  now_mono (&t);
  go = s->active && sub_has_pending (s) &&
       (rzc.notify_rate == 0 || !before (&t, &s->next_ok));
  pthread_mutex_unlock (&s->lock);
  if (go)
    sub_send_one (c, s);
  pthread_mutex_unlock (&s->send_lock);
}

/* ---- Changing the size ---- */

/* Fill [from, to) with the fill pattern (bounded by FILL_LIMIT). */
static void
fill_pattern (struct export *exp, uint64_t from, uint64_t to)
{
  struct backend *b = exp->backend;
  unsigned char buf[65536];
  uint64_t end = to - from > FILL_LIMIT ? from + FILL_LIMIT : to;

  memset (buf, rzc.fill_pattern, sizeof buf);
  while (from < end) {
    uint64_t n = end - from < sizeof buf ? end - from : sizeof buf;
    if (b->ops->pwrite (b, buf, n, from, false) == -1)
      return;
    from += n;
  }
}

static bool
needs_pattern (void)
{
  return !rzc.zero_fill || rz_fault (FAULT_DIRTY_GROW);
}

static uint32_t
errno_to_resize_error (int err)
{
  switch (err) {
  case ENOSPC: case ENOMEM: case EFBIG: return NBD_ENOSPC;
  case EROFS: case EPERM: case ENOTSUP: return NBD_EPERM;
  case EINVAL: return NBD_EINVAL;
  default: return NBD_EIO;
  }
}

/* Change the size seen by origin (NULL: the administrator) to new_size.
 * Called with exp->size_lock held exclusively.  private: only origin's
 * size changes (negative modes).  On success the change is published to
 * the subscriptions and *seq is the change's sequence number.  Returns
 * 0 or an NBD error.
 */
static uint32_t
apply_change (struct export *exp, struct conn *origin, uint64_t new_size,
              bool private, bool fua, uint32_t *seq)
{
  struct backend *b = exp->backend;
  uint64_t bsize = export_size (exp);
  uint64_t old = origin ? conn_size (origin) : bsize;

  if (private) {
    /* Pin every other connection at its current size first. */
    pthread_mutex_lock (&exp->rz_lock);
    for (struct conn *o = exp->rz_conns; o; o = o->rz_next)
      if (o != origin && !o->rz_private) {
        o->rz_view = bsize;
        o->rz_private = true;
      }
    pthread_mutex_unlock (&exp->rz_lock);
    if (new_size > bsize) {
      if (b->ops->set_size (b, new_size) == -1)
        return errno_to_resize_error (errno);
      if (old < bsize)
        b->ops->zero (b, bsize - old, old, true, false, false);
      if (needs_pattern ())
        fill_pattern (exp, old, new_size);
    }
    else if (new_size > old) {
      b->ops->zero (b, new_size - old, old, true, false, false);
      if (needs_pattern ())
        fill_pattern (exp, old, new_size);
    }
    origin->rz_view = new_size;
    origin->rz_private = true;
  }
  else {
    if (b->ops->set_size (b, new_size) == -1)
      return errno_to_resize_error (errno);
    if (new_size > bsize && needs_pattern ())
      fill_pattern (exp, bsize, new_size);
  }
  if (fua && b->ops->flush (b) == -1)           /* RZ-DUR-1 */
    return NBD_EIO;

  pthread_mutex_lock (&exp->rz_lock);
  exp->rz_seq++;                                /* RZ-SEQ-1 */
  *seq = exp->rz_seq;
  if (private)
    sub_note (origin, new_size, *seq, false);
  else
    for (struct conn *o = exp->rz_conns; o; o = o->rz_next) {
      o->rz_private = false;
      sub_note (o, new_size, *seq, o != origin); /* RZ-SUB-5, RZ-MC-6 */
    }
  pthread_mutex_unlock (&exp->rz_lock);
  nbdp_debug ("export \"%s\": size %" PRIu64 " -> %" PRIu64 " (sequence %"
              PRIu32 ")%s%s", exp->name, old, new_size, *seq,
              origin ? "" : " by the administrator",
              private ? " for one connection only" : "");
  return 0;
}

static uint64_t
round_up (uint64_t x, uint64_t g)
{
  uint64_t r = x % g;

  if (r == 0)
    return x;
  if (x > UINT64_MAX - (g - r))
    return UINT64_MAX;
  return x + (g - r);
}

/* Another connection in the transmission phase? */
static bool
others_connected (struct conn *c)
{
  bool r;

  pthread_mutex_lock (&c->exp->rz_lock);
  r = c->exp->rz_nconns > 1;
  pthread_mutex_unlock (&c->exp->rz_lock);
  return r;
}

static bool
current_seq (struct export *exp, uint32_t *seq)
{
  pthread_mutex_lock (&exp->rz_lock);
  *seq = exp->rz_seq;
  pthread_mutex_unlock (&exp->rz_lock);
  return true;
}

/* ---- NBD_CMD_RESIZE ---- */

/* Reply to a set size, query or unsubscribe with a size chunk + DONE. */
static int
reply_size (struct conn *c, const struct request *req, uint16_t flags,
            uint64_t size, uint32_t events, uint32_t seq, const char *what)
{
  unsigned char buf[RESIZE_CHUNK_BUF];
  struct iovec iov = { buf, 0 };
  char w[128];

  iov.iov_len = reply_resize_chunk (c, req, buf, flags, size, events, seq);
  snprintf (w, sizeof w, "NBD_REPLY_TYPE_RESIZE%s (%s): size %" PRIu64
            " events 0x%" PRIx32 " sequence %" PRIu32,
            flags & NBD_REPLY_FLAG_DONE ? " DONE" : "", what, size, events,
            seq);
  return reply_send (c, req, &iov, 1, w);
}

static int
cmd_set_size (struct conn *c, const struct request *req)
{
  struct export *exp = c->exp;
  const bool neg = c->rz_negotiated;
  const bool sr = c->rz_size_reply;
  const bool chunk = sr || rz_fault (FAULT_UNNEGOTIATED_CHUNK);
  const uint64_t G = exp->rz_gran;
  const uint64_t want = req->offset;
  uint64_t old, target;
  uint32_t events = 0, seq, err = 0;
  bool private = false;
  const char *msg = NULL;
  char mbuf[160];

  pthread_rwlock_wrlock (&exp->size_lock);
  old = conn_size (c);

  /* RZ-REQ-8 / RZ-LEG-6: the first condition that holds decides. */
  if (is_shutting_down ()) {
    err = NBD_ESHUTDOWN;
    msg = "the server is shutting down";
  }
  else if (exp->readonly) {
    err = NBD_EPERM;                            /* RZ-RO-2 */
    msg = "the export is read-only";
  }
  else if (neg && !(c->rz_active & (NBD_RESIZE_F_GROW |
                                     NBD_RESIZE_F_SHRINK))) {
    err = NBD_EPERM;                            /* RZ-SET-18 */
    msg = "neither GROW nor SHRINK is active";
  }
  else if (want > old &&
           (neg ? !(c->rz_active & NBD_RESIZE_F_GROW) : !rzc.grow)) {
    err = NBD_EPERM;                            /* RZ-SET-1 */
    msg = "growing is not allowed (GROW is not active)";
  }
  else if (want < old &&
           (neg ? !(c->rz_active & NBD_RESIZE_F_SHRINK) : !rzc.shrink)) {
    err = NBD_EPERM;                            /* RZ-SET-2 */
    msg = "shrinking is not allowed (SHRINK is not active)";
  }
  else if (want > NBD_RESIZE_SIZE_MAX) {
    err = NBD_EINVAL;                           /* RZ-SET-3 */
    msg = "the size is above 2^63-1";
  }
  else if (want != old && want % G && !sr) {
    err = NBD_EINVAL;                           /* RZ-SET-9, RZ-LEG-2 */
    snprintf (mbuf, sizeof mbuf, "size %" PRIu64 " is not a multiple of "
              "the granularity %" PRIu64, want, G);
    msg = mbuf;
  }
  if (err)
    goto out;

  /* The new size. */
  target = want;
  if (want > old) {
    uint64_t r = sr ? round_up (want, G) : want;
    if (r > exp->rz_limit) {
      uint64_t cap = exp->rz_limit;             /* a multiple of G */
      if (!sr || cap <= old) {
        err = NBD_ENOSPC;                       /* RZ-SET-10, RZ-SET-15 */
        snprintf (mbuf, sizeof mbuf, "size %" PRIu64 " is above the maximum "
                  "size %" PRIu64, want, exp->rz_limit);
        msg = mbuf;
        goto out;
      }
      target = cap;                             /* RZ-SET-15 */
      events |= NBD_RESIZE_EV_CAPPED;
    }
    else
      target = r;                               /* RZ-SET-14 */
  }
  else if (want < old && sr) {
    uint64_t r = round_up (want, G);
    target = r >= old ? old : r;                /* RZ-SET-16 */
  }
  if (target > want && sr)
    events |= NBD_RESIZE_EV_ROUNDED;
  if (target != old && rz_fault (FAULT_SIZE_UNALIGNED))
    target++;

  if (target != old) {
    if (rzc.visibility == RZ_VIS_REFUSE && others_connected (c)) {
      err = NBD_EPERM;                          /* RZ-MC-3, RZ-LEG-8 */
      msg = "other connections to this export are open";
      goto out;
    }
    private = rzc.visibility == RZ_VIS_CONNECTION ||
              (rz_fault (FAULT_PRIVATE_SHRINK) && target < old);
    err = apply_change (exp, c, target, private,
                        req->flags & NBD_CMD_FLAG_FUA, &seq);
    if (err) {
      msg = "the backend failed to change the size";
      goto out;
    }
    events |= change_events (exp, old, target);
  }
  else {
    current_seq (exp, &seq);                    /* RZ-SET-4 */
    if (req->flags & NBD_CMD_FLAG_FUA)
      exp->backend->ops->flush (exp->backend);
  }
 out:
  pthread_rwlock_unlock (&exp->size_lock);
  if (err)
    return reply_error (c, req, err, "set size %" PRIu64 " (current size %"
                        PRIu64 "): %s", want, old, msg);
  sub_flush_own (c);                            /* RZ-SUB-7 */
  if (chunk)                                    /* RZ-SET-12, RZ-SET-13 */
    return reply_size (c, req, NBD_REPLY_FLAG_DONE, target, events, seq,
                       "set size");
  return reply_ok (c, req);                     /* RZ-SET-11 */
}

/* Size and sequence number as one snapshot. */
static void
snapshot (struct conn *c, uint64_t *size, uint32_t *seq)
{
  pthread_rwlock_rdlock (&c->exp->size_lock);
  *size = conn_size (c);
  current_seq (c->exp, seq);
  pthread_rwlock_unlock (&c->exp->size_lock);
}

static int
cmd_query (struct conn *c, const struct request *req)
{
  uint64_t size;
  uint32_t seq;

  snapshot (c, &size, &seq);                    /* RZ-QUERY-2 */
  return reply_size (c, req, rz_fault (FAULT_QUERY_NO_DONE)
                     ? 0 : NBD_REPLY_FLAG_DONE,
                     size, NBD_RESIZE_EV_INITIAL, seq, "query");
}

static int
cmd_subscribe (struct conn *c, const struct request *req)
{
  struct export *exp = c->exp;
  struct rz_sub *s = sub_get (c);
  uint64_t size;
  uint32_t seq;
  int r;

  if (s == NULL)
    return reply_error (c, req, NBD_ENOMEM, "out of memory for the "
                        "subscription");
  if (is_shutting_down ())
    return reply_error (c, req, NBD_ESHUTDOWN, "the server is shutting "
                        "down");
  pthread_mutex_lock (&s->send_lock);
  pthread_mutex_lock (&s->lock);
  if (s->active) {
    pthread_mutex_unlock (&s->lock);
    if (!rzc.second_replace) {
      pthread_mutex_unlock (&s->send_lock);
      return reply_error (c, req, NBD_EINVAL, "this connection already "
                          "has a subscription (cookie 0x%" PRIx64 ")",
                          s->req.cookie);     /* RZ-SUB-1 */
    }
    sub_end (c, s, 0);                        /* negative: replace */
    pthread_mutex_lock (&s->lock);
  }
  pthread_mutex_unlock (&s->lock);

  /* Register and take the snapshot with no change in between. */
  pthread_rwlock_rdlock (&exp->size_lock);
  pthread_mutex_lock (&exp->rz_lock);
  size = conn_size (c);
  seq = exp->rz_seq;
  pthread_mutex_lock (&s->lock);
  s->active = true;
  s->shutdown_end = false;
  s->req = *req;
  s->req.rz_grew = false;
  s->last_size = size;
  s->last_seq = seq;
  s->pending = false;
  s->qlen = 0;
  set_next_ok (s);
  pthread_mutex_unlock (&s->lock);
  pthread_mutex_unlock (&exp->rz_lock);
  pthread_rwlock_unlock (&exp->size_lock);
  __atomic_add_fetch (&exp->rz_nsubs, 1, __ATOMIC_ACQ_REL);
  counts_changed ();

  /* RZ-SUB-2, RZ-SUB-3, RZ-FLOOD-5: the first chunk at once. */
  r = reply_size (c, req, 0, size, NBD_RESIZE_EV_INITIAL, seq,
                  "subscription start");
  if (r == 0 && rz_fault (FAULT_NOTIFY_FLOOD)) {
    uint64_t *sizes = malloc (FLOOD_COUNT * sizeof *sizes);
    uint32_t *ev = malloc (FLOOD_COUNT * sizeof *ev);
    uint32_t *seqs = malloc (FLOOD_COUNT * sizeof *seqs);
    if (sizes && ev && seqs) {
      for (size_t i = 0; i < FLOOD_COUNT; i++) {
        sizes[i] = i % 2 == 0 ? size + exp->rz_gran : size;
        ev[i] = i % 2 == 0 ? NBD_RESIZE_EV_GREW : NBD_RESIZE_EV_SHRANK;
        seqs[i] = seq + 1 + i;
      }
      r = sub_send_chunks (c, req, sizes, ev, seqs, FLOOD_COUNT,
                           "fault notify-flood: 5000 notifications");
      pthread_mutex_lock (&s->lock);
      s->last_seq = seq + FLOOD_COUNT;
      pthread_mutex_unlock (&s->lock);
    }
    free (sizes);
    free (ev);
    free (seqs);
  }
  if (r == 0 && rz_fault (FAULT_NOTIFY_DUPLICATE)) {
    uint64_t sz = size;
    uint32_t e = 0, sq = seq + 1;
    r = sub_send_chunks (c, req, &sz, &e, &sq, 1,
                         "fault notify-duplicate");
    pthread_mutex_lock (&s->lock);
    s->last_seq = sq;
    pthread_mutex_unlock (&s->lock);
  }
  pthread_mutex_unlock (&s->send_lock);
  /* A change may have been noted while the first chunk went out. */
  pthread_mutex_lock (&s->lock);
  pthread_cond_broadcast (&s->cond);
  pthread_mutex_unlock (&s->lock);
  return r;
}

static int
cmd_unsubscribe (struct conn *c, const struct request *req)
{
  struct rz_sub *s = __atomic_load_n (&c->sub, __ATOMIC_ACQUIRE);
  uint64_t size;
  uint32_t seq;
  bool active;
  int r;

  if (!rzc.unsubscribe)                         /* negative */
    return reply_error (c, req, NBD_EINVAL, "unsubscribe is switched off "
                        "(--unsubscribe=off)");
  if (s == NULL)
    return reply_error (c, req, NBD_EINVAL, "no active subscription on "
                        "this connection");      /* RZ-SUB-9 */
  pthread_mutex_lock (&s->send_lock);
  pthread_mutex_lock (&s->lock);
  active = s->active;
  pthread_mutex_unlock (&s->lock);
  if (!active) {
    pthread_mutex_unlock (&s->send_lock);
    return reply_error (c, req, NBD_EINVAL, "no active subscription on "
                        "this connection");
  }
  sub_end (c, s, 0);                            /* RZ-SUB-12 */
  snapshot (c, &size, &seq);
  r = reply_size (c, req, NBD_REPLY_FLAG_DONE, size, NBD_RESIZE_EV_INITIAL,
                  seq, "unsubscribe");          /* RZ-SUB-11 */
  pthread_mutex_unlock (&s->send_lock);
  return r;
}

int
cmd_resize (struct conn *c, const struct request *req, struct worker *w)
{
  const uint16_t form = req->flags & (NBD_CMD_FLAG_RESIZE_QUERY |
                                      NBD_CMD_FLAG_RESIZE_NOTIFY);
  int r;

  if (!c->rz_negotiated) {
    /* Legacy mode (section 12). */
    if (form)
      r = reply_error (c, req, NBD_EINVAL, "only the set size form exists "
                       "in legacy mode");        /* RZ-LEG-1 */
    else
      r = cmd_set_size (c, req);                /* RZ-LEG-5: any length */
    goto done;
  }
  if (form == NBD_CMD_FLAG_RESIZE_QUERY &&
      !(c->rz_active & NBD_RESIZE_F_QUERY)) {
    r = reply_error (c, req, NBD_EINVAL, "query: QUERY is not active");
    goto done;                                  /* RZ-REQ-2 */
  }
  if ((form & NBD_CMD_FLAG_RESIZE_NOTIFY) &&
      !(c->rz_active & NBD_RESIZE_F_NOTIFY)) {
    r = reply_error (c, req, NBD_EINVAL, "%s: NOTIFY is not active",
                     form == NBD_CMD_FLAG_RESIZE_NOTIFY ? "subscribe"
                     : "unsubscribe");
    goto done;                                  /* RZ-REQ-3 */
  }
  if (req->count != 0) {
    r = reply_error (c, req, NBD_EINVAL, "length %" PRIu64 " must be 0",
                     req->count);
    goto done;                                  /* RZ-REQ-4 */
  }
  if (form && req->offset != 0) {
    r = reply_error (c, req, NBD_EINVAL, "offset %" PRIu64 " must be 0 in "
                     "a query, subscribe or unsubscribe", req->offset);
    goto done;                                  /* RZ-REQ-5 */
  }
  switch (form) {
  case 0: r = cmd_set_size (c, req); break;
  case NBD_CMD_FLAG_RESIZE_QUERY: r = cmd_query (c, req); break;
  case NBD_CMD_FLAG_RESIZE_NOTIFY: r = cmd_subscribe (c, req); break;
  default: r = cmd_unsubscribe (c, req); break;
  }
 done:
  return r;
}

void
resize_after_reply (struct conn *c, const struct request *req)
{
  bool trigger;

  if (!rz_fault (FAULT_CHUNK_FOREIGN_COOKIE) || c->rz_fault_done)
    return;
  /* After the first NBD_CMD_RESIZE; where the client cannot send one,
   * after the first request.
   */
  trigger = req->type == NBD_CMD_RESIZE ||
            !(c->eflags & NBD_FLAG_SEND_RESIZE);
  if (!trigger || __atomic_exchange_n (&c->rz_fault_done, true,
                                       __ATOMIC_ACQ_REL))
    return;
  {
    uint64_t size;
    uint32_t seq;
    snapshot (c, &size, &seq);
    reply_size (c, req, 0, size, NBD_RESIZE_EV_INITIAL, seq,
                "fault chunk-foreign-cookie: cookie no longer in flight");
  }
}

/* ---- Automatic growth (section 8) ---- */

uint32_t
resize_grow_for_write (struct conn *c, struct request *req,
                       const char **msg)
{
  struct export *exp = c->exp;
  const uint64_t G = exp->rz_gran;
  uint64_t end, target, old;
  uint32_t seq, err;

  if (req->offset > UINT64_MAX - req->count) {  /* RZ-AUTO-7 */
    *msg = "offset plus length does not fit in 64 bits";
    return NBD_EINVAL;
  }
  if (exp->min_block > 1 &&
      (req->offset % exp->min_block || req->count % exp->min_block)) {
    *msg = "a growing write must be aligned to the minimum block size";
    return NBD_EINVAL;
  }
  end = req->offset + req->count;
  target = round_up (end, G);                   /* RZ-AUTO-2 */
  if (target > exp->rz_limit || end > NBD_RESIZE_SIZE_MAX) {
    *msg = "the growth would exceed the maximum size";
    return NBD_ENOSPC;                          /* RZ-AUTO-6 */
  }
  if (rz_fault (FAULT_SIZE_UNALIGNED))
    target++;

  pthread_rwlock_wrlock (&exp->size_lock);
  old = conn_size (c);
  if (old >= end) {                             /* RZ-AUTO-5 */
    pthread_rwlock_unlock (&exp->size_lock);
    return 0;
  }
  if (is_shutting_down ()) {
    pthread_rwlock_unlock (&exp->size_lock);
    *msg = "the server is shutting down";
    return NBD_ESHUTDOWN;
  }
  if (rzc.visibility == RZ_VIS_REFUSE && others_connected (c)) {
    pthread_rwlock_unlock (&exp->size_lock);
    *msg = "other connections to this export are open";
    return NBD_ENOSPC;                          /* RZ-MC-4, RZ-AUTO-13 */
  }
  err = apply_change (exp, c, target, rzc.visibility == RZ_VIS_CONNECTION,
                      false, &seq);
  pthread_rwlock_unlock (&exp->size_lock);
  if (err) {
    *msg = "the backend failed to grow";
    return err;
  }
  sub_flush_own (c);
  if ((c->rz_size_reply && (c->rz_active & NBD_RESIZE_F_AUTO_GROW)) ||
      rz_fault (FAULT_UNNEGOTIATED_CHUNK)) {    /* RZ-AUTO-9, RZ-CHUNK-3 */
    req->rz_grew = true;
    req->rz_size = target;
    req->rz_events = change_events (exp, old, target) |
                     (target > end ? NBD_RESIZE_EV_ROUNDED : 0);
    req->rz_seq = seq;
  }
  return 0;
}

/* ---- The administrator ---- */

int
resize_admin (struct export *exp, uint64_t size, uint64_t *result,
              char *msg, size_t msglen)
{
  uint64_t old;
  uint32_t seq, err;

  if (size > NBD_RESIZE_SIZE_MAX || size % exp->rz_gran) {
    snprintf (msg, msglen, "size %" PRIu64 " is above 2^63-1 or not a "
              "multiple of the granularity %" PRIu64, size, exp->rz_gran);
    return -1;
  }
  if (size > exp->rz_limit) {
    snprintf (msg, msglen, "size %" PRIu64 " is above the maximum size %"
              PRIu64, size, exp->rz_limit);
    return -1;
  }
  pthread_rwlock_wrlock (&exp->size_lock);
  old = export_size (exp);
  err = 0;
  if (size != old) {
    /* Every connection sees it (RZ-MC-6), even private views. */
    err = apply_change (exp, NULL, size, false, false, &seq);
  }
  pthread_rwlock_unlock (&exp->size_lock);
  if (err) {
    snprintf (msg, msglen, "the backend failed to change the size (%s)",
              nbdp_name_of_error (err) ? nbdp_name_of_error (err) : "?");
    return -1;
  }
  *result = size;
  return 0;
}

/* ---- Shutdown ---- */

void
resize_shutdown (void)
{
  struct timespec deadline;
  bool any = false;

  __atomic_store_n (&shutting_down, true, __ATOMIC_RELEASE);
  for (size_t i = 0; i < exports_count (); i++) {
    struct export *exp = exports_get (i);
    if (rzc.mode == RZ_OFF)
      break;
    pthread_mutex_lock (&exp->rz_lock);
    for (struct conn *o = exp->rz_conns; o; o = o->rz_next)
      if (o->sub) {
        pthread_mutex_lock (&o->sub->lock);
        if (o->sub->active) {
          o->sub->shutdown_end = true;
          pthread_cond_broadcast (&o->sub->cond);
          any = true;
        }
        pthread_mutex_unlock (&o->sub->lock);
      }
    pthread_mutex_unlock (&exp->rz_lock);
  }
  if (!any)
    return;
  /* Wait (bounded) until the notifiers sent the error chunks. */
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  pthread_mutex_lock (&subs_lock);
  for (;;) {
    unsigned n = 0;
    for (size_t i = 0; i < exports_count (); i++)
      n += resize_count_subs (exports_get (i));
    if (n == 0)
      break;
    if (pthread_cond_timedwait (&subs_cond, &subs_lock, &deadline) ==
        ETIMEDOUT)
      break;
  }
  pthread_mutex_unlock (&subs_lock);
}
