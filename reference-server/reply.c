/* nbd-refserver: writing replies.  Every reply (all of its chunks) goes
 * out in one writev under the connection's write lock, so replies of
 * different requests never interleave mid-message.  The form (simple,
 * structured, extended) follows what the handshake negotiated.
 *
 * With --reorder-replies a finished reply may be held back for a moment
 * so that the next one to finish overtakes it: clients see replies out
 * of order even when the work itself completes in order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "log.h"

#define HOLD_NSEC (2 * 1000 * 1000)   /* longest a reply is held back */

static void
log_reply (struct conn *c, const struct request *req, const char *what)
{
  char b[32];

  nbdp_debug ("conn %" PRIu64 ": reply to %s cookie 0x%" PRIx64 ": %s",
              c->id, nbdp_cmd_str (b, sizeof b, req->type),
              req->cookie, what);
}

/* Log under the write lock so that the log shows the wire order. */
static int
send_locked (struct conn *c, const struct request *req, struct iovec *iov,
             int iovcnt, const char *what)
{
  int r;

  pthread_mutex_lock (&c->write_lock);
  if (nbdp_verbose)
    log_reply (c, req, what);
  r = conn_sendv (c, iov, iovcnt);
  pthread_mutex_unlock (&c->write_lock);
  return r;
}

int
reply_send (struct conn *c, const struct request *req,
            struct iovec *iov, int iovcnt, const char *what)
{
  struct timespec deadline;
  int r;

  if (!config.reorder_replies || config.threads == 1)
    return send_locked (c, req, iov, iovcnt, what);

  pthread_mutex_lock (&c->hold_lock);
  if (c->holding) {
    /* Another reply is waiting: overtake it, then let it go. */
    r = send_locked (c, req, iov, iovcnt, what);
    c->released = true;
    pthread_cond_broadcast (&c->hold_cond);
    pthread_mutex_unlock (&c->hold_lock);
    return r;
  }
  c->holding = true;
  c->released = false;
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += HOLD_NSEC;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  while (!c->released && !conn_is_dead (c))
    if (pthread_cond_timedwait (&c->hold_cond, &c->hold_lock,
                                &deadline) == ETIMEDOUT)
      break;
  c->holding = false;
  pthread_mutex_unlock (&c->hold_lock);
  return send_locked (c, req, iov, iovcnt, what);
}

size_t
reply_chunk_header (struct conn *c, const struct request *req, void *hdr,
                    uint16_t flags, uint16_t type, uint64_t length)
{
  struct nbdp_reply r = {
    .kind = c->extended ? NBDP_REPLY_EXTENDED : NBDP_REPLY_STRUCTURED,
    .magic = c->extended ? NBD_EXTENDED_REPLY_MAGIC
                         : NBD_STRUCTURED_REPLY_MAGIC,
    .flags = flags,
    .type = type,
    .cookie = req->cookie,
    .offset = req->offset,
    .length = length,
  };

  return nbdp_encode_reply (hdr, &r);
}

static size_t
simple_header (const struct request *req, void *hdr, uint32_t error)
{
  struct nbdp_reply r = {
    .kind = NBDP_REPLY_SIMPLE,
    .magic = NBD_SIMPLE_REPLY_MAGIC,
    .error = error,
    .cookie = req->cookie,
  };

  return nbdp_encode_reply (hdr, &r);
}

size_t
reply_resize_chunk (struct conn *c, const struct request *req, void *buf,
                    uint16_t flags, uint64_t size, uint32_t events,
                    uint32_t seq)
{
  const uint64_t len = rz_fault (FAULT_CHUNK_BAD_LENGTH)
                       ? NBD_RESIZE_CHUNK_LEN + 4 : NBD_RESIZE_CHUNK_LEN;
  unsigned char *p = buf;
  size_t h = reply_chunk_header (c, req, p, flags, NBD_REPLY_TYPE_RESIZE,
                                 len);

  memset (p + h, 0, len);
  nbdp_put64 (p + h, size);
  nbdp_put32 (p + h + 8, events);
  nbdp_put32 (p + h + 12, seq);
  return h + len;
}

/* The size chunk of a write that grew the export (draft RESIZE,
 * RZ-AUTO-9): it goes first, flags 0.  Returns its length or 0.
 */
static size_t
growth_chunk (struct conn *c, const struct request *req, void *buf)
{
  if (!req->rz_grew)
    return 0;
  return reply_resize_chunk (c, req, buf, 0, req->rz_size, req->rz_events,
                             req->rz_seq);
}

int
reply_ok (struct conn *c, const struct request *req)
{
  unsigned char hdr[NBDP_EXTENDED_REPLY_SIZE];
  unsigned char grow[RESIZE_CHUNK_BUF];
  struct iovec iov, iov2[2];
  size_t glen = growth_chunk (c, req, grow);

  if (glen) {
    iov2[0].iov_base = grow;
    iov2[0].iov_len = glen;
    iov2[1].iov_base = hdr;
    iov2[1].iov_len = reply_chunk_header (c, req, hdr, NBD_REPLY_FLAG_DONE,
                                          NBD_REPLY_TYPE_NONE, 0);
    return reply_send (c, req, iov2, 2, "NBD_REPLY_TYPE_RESIZE (growth), "
                       "NBD_REPLY_TYPE_NONE (DONE)");
  }

  /* Simple replies are allowed with structured replies except for READ;
   * extended headers forbid them.
   */
  if (c->extended || (c->structured && req->type == NBD_CMD_READ)) {
    iov.iov_len = reply_chunk_header (c, req, hdr, NBD_REPLY_FLAG_DONE,
                                      NBD_REPLY_TYPE_NONE, 0);
    iov.iov_base = hdr;
    return reply_send (c, req, &iov, 1, "NBD_REPLY_TYPE_NONE (DONE)");
  }
  iov.iov_len = simple_header (req, hdr, 0);
  iov.iov_base = hdr;
  return reply_send (c, req, &iov, 1, "simple, success");
}

int
reply_error (struct conn *c, const struct request *req, uint32_t err,
             const char *fmt, ...)
{
  unsigned char hdr[NBDP_EXTENDED_REPLY_SIZE];
  unsigned char payload[4 + 2];
  unsigned char grow[RESIZE_CHUNK_BUF];
  char msg[256], what[320], b[32];
  struct iovec iov[4];
  size_t glen = growth_chunk (c, req, grow);
  int k = 0;
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (n < 0)
    n = 0;
  if ((size_t) n >= sizeof msg)
    n = sizeof msg - 1;
  snprintf (what, sizeof what, "%s%s: %s",
            c->structured ? "NBD_REPLY_TYPE_ERROR (DONE) " : "simple, ",
            nbdp_error_str (b, sizeof b, err), msg);

  if (!c->structured && !glen) {
    iov[0].iov_len = simple_header (req, hdr, err);
    iov[0].iov_base = hdr;
    return reply_send (c, req, iov, 1, what);
  }
  /* RZ-AUTO-11: a growth is reported before the error. */
  if (glen) {
    iov[k].iov_base = grow;
    iov[k++].iov_len = glen;
  }
  nbdp_put32 (payload, err);
  nbdp_put16 (payload + 4, n);
  iov[k].iov_len = reply_chunk_header (c, req, hdr, NBD_REPLY_FLAG_DONE,
                                       NBD_REPLY_TYPE_ERROR, 6 + n);
  iov[k++].iov_base = hdr;
  iov[k].iov_base = payload;
  iov[k++].iov_len = 6;
  if (n) {
    iov[k].iov_base = msg;
    iov[k++].iov_len = n;
  }
  return reply_send (c, req, iov, k, what);
}

int
reply_simple_data (struct conn *c, const struct request *req,
                   struct iovec *data, int ndata)
{
  unsigned char hdr[NBDP_SIMPLE_REPLY_SIZE];
  struct iovec iov[1 + MAX_READ_CHUNKS];

  if (ndata > MAX_READ_CHUNKS) {
    errno = EINVAL;
    return -1;
  }
  iov[0].iov_len = simple_header (req, hdr, 0);
  iov[0].iov_base = hdr;
  memcpy (&iov[1], data, ndata * sizeof *data);
  return reply_send (c, req, iov, 1 + ndata, "simple, success, with data");
}
