/* nbd-matrix: content verification with libnbd, using its asynchronous
 * API so that every wait has a deadline (a hung server must not hang the
 * harness).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "proc.h"
#include "verify.h"

#define CHUNK (UINT64_C (4) << 20)

/* Poll until done() or the deadline.  Returns 0, or -1 with msg set. */
static int
wait_until (struct nbd_handle *h, long long deadline, int64_t cookie,
            char *msg, size_t msglen, const char *what)
{
  for (;;) {
    int left, r;
    if (cookie > 0) {
      r = nbd_aio_command_completed (h, (uint64_t) cookie);
      if (r == 1)
        return 0;
      if (r == -1) {
        snprintf (msg, msglen, "%s failed: %s", what, nbd_get_error ());
        return -1;
      }
    }
    else if (!nbd_aio_is_connecting (h)) {
      if (nbd_aio_is_ready (h))
        return 0;
      snprintf (msg, msglen, "%s failed: %s", what,
                nbd_get_error () ? nbd_get_error () : "not ready");
      return -1;
    }
    left = (int) (deadline - proc_now_ms ());
    if (left <= 0) {
      snprintf (msg, msglen, "%s: no answer within the deadline", what);
      return -1;
    }
    if (nbd_poll (h, left) == -1) {
      snprintf (msg, msglen, "%s: nbd_poll: %s", what, nbd_get_error ());
      return -1;
    }
  }
}

int
verify_content (const char *uri, const struct scn_model *m, int timeout_ms,
                char *msg, size_t msglen, FILE *log)
{
  long long deadline = proc_now_ms () + timeout_ms;
  struct nbd_handle *h = nbd_create ();
  unsigned char *buf = malloc (CHUNK);
  int64_t size;
  int ret = -1;

  msg[0] = '\0';
  if (!h || !buf) {
    snprintf (msg, msglen, "verify: out of memory");
    goto out;
  }
  if (nbd_aio_connect_uri (h, uri) == -1) {
    snprintf (msg, msglen, "verify: connect %s: %s", uri, nbd_get_error ());
    goto out;
  }
  if (wait_until (h, deadline, 0, msg, msglen, "verify: connect") == -1)
    goto out;
  size = nbd_get_size (h);
  if (log)
    fprintf (log, "verify: connected to %s, size %" PRId64 "\n", uri, size);
  if (size < 0) {
    snprintf (msg, msglen, "verify: nbd_get_size: %s", nbd_get_error ());
    goto out;
  }
  if ((m->size_known && (uint64_t) size != m->size) ||
      (!m->size_known && ((uint64_t) size < m->size ||
                          (uint64_t) size > m->size_max))) {
    if (m->size_known)
      snprintf (msg, msglen, "server content check: the export is %" PRId64
                " bytes after the scenario, expected %" PRIu64, size, m->size);
    else
      snprintf (msg, msglen, "server content check: the export is %" PRId64
                " bytes after the scenario, expected %" PRIu64 "..%" PRIu64,
                size, m->size, m->size_max);
    ret = 1;
    goto out;
  }
  for (size_t i = 0; i < m->nr_ext; i++) {
    const struct scn_extent *e = &m->ext[i];
    uint64_t end = e->off + e->len;

    if (e->byte == SCN_UNKNOWN || e->off >= (uint64_t) size)
      continue;
    if (end > (uint64_t) size)
      end = (uint64_t) size;
    if (log)
      fprintf (log, "verify: [%" PRIu64 ", %" PRIu64 ") must read 0x%02x\n",
               e->off, end, e->byte);
    for (uint64_t off = e->off; off < end; off += CHUNK) {
      uint64_t n = end - off < CHUNK ? end - off : CHUNK;
      int64_t cookie = nbd_aio_pread (h, buf, n, off, NBD_NULL_COMPLETION, 0);
      if (cookie == -1) {
        snprintf (msg, msglen, "verify: nbd_aio_pread: %s", nbd_get_error ());
        goto out;
      }
      if (wait_until (h, deadline, cookie, msg, msglen, "verify: read") == -1)
        goto out;
      for (uint64_t j = 0; j < n; j++)
        if (buf[j] != e->byte) {
          snprintf (msg, msglen, "server content check on a second "
                    "connection: offset %" PRIu64 " holds 0x%02x, expected "
                    "0x%02x (the client reported success)", off + j, buf[j],
                    e->byte);
          ret = 1;
          goto out;
        }
    }
  }
  ret = 0;
 out:
  if (h) {
    if (nbd_aio_is_ready (h))
      nbd_aio_disconnect (h, 0);
    nbd_close (h);
  }
  free (buf);
  return ret;
}
