/* nbd-refserver: the transmission phase.  A connection runs a pool of
 * config.threads workers.  Each worker in turn takes the read lock, reads
 * one request header and its payload (straight into the buffer the
 * backend will consume), releases the lock, then validates, executes and
 * replies while the next worker reads.  Replies are written under the
 * write lock (reply.c), so they may complete in any order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

static const char *
cmd_name (uint16_t type, char *buf, size_t size)
{
  return nbdp_cmd_str (buf, size, type);
}

/* Read one request.  Returns true with *req filled (its payload, if any,
 * consumed), or false when the connection is over.  Called with the read
 * lock held.
 */
static bool
recv_request (struct conn *c, struct request *req, struct worker *w)
{
  unsigned char hdr[NBDP_REQUEST_EXT_SIZE];
  const size_t hlen = c->extended ? NBDP_REQUEST_EXT_SIZE : NBDP_REQUEST_SIZE;
  const uint32_t want = c->extended ? NBD_EXTENDED_REQUEST_MAGIC
                                    : NBD_REQUEST_MAGIC;
  struct nbdp_request r;
  char b[32];

  if (c->closing || conn_is_dead (c))
    return false;
  if (conn_recv (c, hdr, hlen) == -1) {
    c->closing = true;
    if (errno == 0)
      nbdp_debug ("conn %" PRIu64 ": client closed the connection without "
                  "NBD_CMD_DISC", c->id);
    else if (errno != ESHUTDOWN)
      nbdp_debug ("conn %" PRIu64 ": reading a request: %s", c->id,
                  errno == EPIPE ? "connection closed mid-header"
                                 : strerror (errno));
    return false;
  }
  nbdp_decode_request (hdr, c->extended, &r);
  if (r.magic != want) {
    nbdp_debug ("conn %" PRIu64 ": request magic 0x%08" PRIx32 ", expected "
                "0x%08" PRIx32 ": disconnecting", c->id, r.magic, want);
    conn_hangup (c);
    return false;
  }

  memset (req, 0, sizeof *req);
  req->flags = r.flags;
  req->type = r.type;
  req->cookie = r.cookie;
  req->offset = r.offset;
  req->count = r.count;
  if (c->extended)
    req->payload_len = r.flags & NBD_CMD_FLAG_PAYLOAD_LEN ? r.count : 0;
  else
    req->payload_len = r.type == NBD_CMD_WRITE ? r.count : 0;

  if (nbdp_verbose) {
    char fl[128];
    nbdp_debug ("conn %" PRIu64 ": request %s flags %s cookie 0x%" PRIx64
                " offset %" PRIu64 " length %" PRIu64, c->id,
                cmd_name (r.type, b, sizeof b),
                nbdp_cmd_flags_str (fl, sizeof fl, r.flags), r.cookie,
                r.offset, r.count);
  }

  if (r.type == NBD_CMD_DISC) {
    /* Read nothing more; the workers finish what is in flight. */
    c->closing = true;
    c->disc_seen = true;
    return true;
  }

  if (req->payload_len == 0)
    return true;
  if (req->payload_len > c->exp->max_block) {
    /* With extended headers an oversized payload is cause to hang up;
     * compact writes are consumed and failed unless absurdly large.
     */
    if (c->extended || req->payload_len > PAYLOAD_DISCARD_LIMIT) {
      nbdp_debug ("conn %" PRIu64 ": payload of %" PRIu64 " bytes is over "
                  "the maximum of %" PRIu32 ": disconnecting", c->id,
                  req->payload_len, c->exp->max_block);
      conn_hangup (c);
      return false;
    }
    if (conn_discard (c, req->payload_len) == -1) {
      c->closing = true;
      nbdp_debug ("conn %" PRIu64 ": client went away in the middle of a "
                  "payload", c->id);
      return false;
    }
    req->early_error = NBD_EINVAL;
    req->early_msg = "payload is over the maximum payload size";
    return true;
  }
  if (worker_reserve (w, req->payload_len) == -1) {
    if (conn_discard (c, req->payload_len) == -1) {
      c->closing = true;
      return false;
    }
    req->early_error = NBD_ENOMEM;
    req->early_msg = "out of memory for the payload";
    return true;
  }
  if (conn_recv (c, w->buf, req->payload_len) == -1) {
    c->closing = true;
    nbdp_debug ("conn %" PRIu64 ": client went away in the middle of a "
                "payload", c->id);
    return false;
  }
  req->payload_read = true;
  return true;
}

/* Check a request against the command table and the negotiated state,
 * then run it.  The export's size lock is held shared from the range
 * check to the end of the command.
 */
static void
handle_request (struct conn *c, struct request *req, struct worker *w)
{
  const struct command *cmd;
  struct export *exp = c->exp;
  uint16_t allowed;
  uint64_t size;
  char b[32];

  if (req->early_error) {
    reply_error (c, req, req->early_error, "%s", req->early_msg);
    return;
  }
  cmd = command_lookup (req->type);
  if (cmd == NULL) {
    reply_error (c, req, NBD_EINVAL, "unknown command %s",
                 cmd_name (req->type, b, sizeof b));
    return;
  }
  /* Draft RESIZE: only where NBD_FLAG_SEND_RESIZE was set (RZ-FLAG-4). */
  if (req->type == NBD_CMD_RESIZE && !(c->eflags & NBD_FLAG_SEND_RESIZE)) {
    reply_error (c, req, NBD_EINVAL, "NBD_CMD_RESIZE was not advertised "
                 "(no NBD_FLAG_SEND_RESIZE)");
    return;
  }

  /* Flags: FUA on anything once advertised; DF only with structured
   * replies; FAST_ZERO only when advertised; PAYLOAD_LEN only with
   * extended headers and only where the command takes a payload.
   */
  allowed = cmd->flags;
  if (c->eflags & NBD_FLAG_SEND_FUA)
    allowed |= NBD_CMD_FLAG_FUA;
  if (!(c->eflags & NBD_FLAG_SEND_DF))
    allowed &= ~NBD_CMD_FLAG_DF;
  if (!(c->eflags & NBD_FLAG_SEND_FAST_ZERO))
    allowed &= ~NBD_CMD_FLAG_FAST_ZERO;
  if (c->extended &&
      (cmd->payload == PAYLOAD_REQUIRED ||
       (cmd->payload == PAYLOAD_OPTIONAL &&
        (c->eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD))))
    allowed |= NBD_CMD_FLAG_PAYLOAD_LEN;
  if (req->flags & ~allowed) {
    char fl[128];
    reply_error (c, req, NBD_EINVAL, "flags %s not valid for %s here",
                 nbdp_cmd_flags_str (fl, sizeof fl, req->flags & ~allowed),
                 cmd_name (req->type, b, sizeof b));
    return;
  }
  if (c->extended && cmd->payload == PAYLOAD_REQUIRED &&
      !(req->flags & NBD_CMD_FLAG_PAYLOAD_LEN)) {
    reply_error (c, req, NBD_EINVAL, "%s without NBD_CMD_FLAG_PAYLOAD_LEN "
                 "under extended headers", cmd_name (req->type, b, sizeof b));
    return;
  }
  if (cmd->writes && exp->readonly) {
    reply_error (c, req, NBD_EPERM, "the export is read-only");
    return;
  }
  /* The block status payload form carries the effect length inside. */
  if (cmd->payload == PAYLOAD_OPTIONAL && req->payload_len) {
    if (req->payload_len < 8 || (req->payload_len - 8) % 4) {
      reply_error (c, req, NBD_EINVAL, "payload of %" PRIu64 " bytes is not "
                   "8 + 4n", req->payload_len);
      return;
    }
    req->count = nbdp_get64 (w->buf);
  }

  /* NBD_CMD_RESIZE takes the size lock itself, exclusively. */
  if (req->type == NBD_CMD_RESIZE) {
    cmd->fn (c, req, w);
    return;
  }

  pthread_rwlock_rdlock (&exp->size_lock);
  if (cmd->ranged) {
    for (unsigned tries = 0;; tries++) {
      size = conn_size (c);
      if (!(req->offset > size || req->count > size - req->offset))
        break;
      /* Draft RESIZE automatic growth (section 8): grow, then check
       * again (a shrink may come in between; bounded retries).
       */
      if (c->rz_auto_grow && tries < 4 &&
          (req->type == NBD_CMD_WRITE || req->type == NBD_CMD_WRITE_ZEROES)) {
        const char *msg = NULL;
        uint32_t err;

        pthread_rwlock_unlock (&exp->size_lock);
        err = resize_grow_for_write (c, req, &msg);
        if (err) {
          reply_error (c, req, err, "growing write at offset %" PRIu64
                       " length %" PRIu64 " (size %" PRIu64 "): %s",
                       req->offset, req->count, size, msg);
          return;
        }
        pthread_rwlock_rdlock (&exp->size_lock);
        continue;
      }
      reply_error (c, req, cmd->range_error, "offset %" PRIu64 " length %"
                   PRIu64 " is beyond the export size %" PRIu64,
                   req->offset, req->count, size);
      goto unlock;
    }
    if (exp->min_block > 1 &&
        (req->offset % exp->min_block ||
         (req->count % exp->min_block && req->offset + req->count != size))) {
      reply_error (c, req, NBD_EINVAL, "offset %" PRIu64 " length %" PRIu64
                   " is not aligned to the minimum block size %" PRIu32,
                   req->offset, req->count, exp->min_block);
      goto unlock;
    }
  }
  cmd->fn (c, req, w);
 unlock:
  pthread_rwlock_unlock (&exp->size_lock);
}

static void
run_worker (struct conn *c)
{
  struct worker w;

  memset (&w, 0, sizeof w);
  for (;;) {
    struct request req;
    bool ok;

    pthread_mutex_lock (&c->read_lock);
    ok = recv_request (c, &req, &w);
    pthread_mutex_unlock (&c->read_lock);
    if (!ok)
      break;
    if (req.type == NBD_CMD_DISC) {
      nbdp_debug ("conn %" PRIu64 ": NBD_CMD_DISC: finishing requests in "
                  "flight and closing", c->id);
      break;
    }
    handle_request (c, &req, &w);
    resize_after_reply (c, &req);
  }
  worker_free (&w);
}

static void *
worker_thread (void *arg)
{
  run_worker (arg);
  return NULL;
}

void
transmission_run (struct conn *c)
{
  unsigned n = config.threads ? config.threads : 1;
  pthread_t *threads = NULL;
  unsigned started = 0;
  pthread_attr_t attr;

  nbdp_debug ("conn %" PRIu64 ": transmission phase, export \"%s\", %s "
              "replies, %u worker%s", c->id, c->exp->name,
              c->extended ? "extended" : c->structured ? "structured"
                                                       : "simple",
              n, n == 1 ? "" : "s");
  if (n > 1) {
    threads = calloc (n - 1, sizeof *threads);
    if (threads == NULL)
      n = 1;
  }
  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, 1024 * 1024);
  for (unsigned i = 0; i + 1 < n; i++) {
    int err = pthread_create (&threads[i], &attr, worker_thread, c);
    if (err) {
      errno = err;
      nbdp_warn ("starting a worker thread");
      break;
    }
    started++;
  }
  pthread_attr_destroy (&attr);

  /* This thread is a worker too. */
  resize_conn_start (c);        /* normally done by the handshake */
  run_worker (c);
  for (unsigned i = 0; i < started; i++)
    pthread_join (threads[i], NULL);
  free (threads);
}
