/* nbd-refserver: one connection's life (thread, handshake, transmission,
 * close) and the low-level I/O every phase uses.  A socket failure marks
 * the connection dead; the other threads of that connection notice and
 * wind down, while the rest of the server carries on.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "io.h"
#include "log.h"
#include "sockets.h"

static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned active;
static uint64_t next_id;

bool
conn_is_dead (struct conn *c)
{
  return __atomic_load_n (&c->dead, __ATOMIC_ACQUIRE);
}

void
conn_hangup (struct conn *c)
{
  __atomic_store_n (&c->dead, true, __ATOMIC_RELEASE);
  /* Wakes a thread blocked reading the socket; fails harmlessly on
   * pipes (stdio mode), where the reader waits for the client's EOF.
   */
  shutdown (c->rfd, SHUT_RDWR);
  if (c->wfd != c->rfd)
    shutdown (c->wfd, SHUT_RDWR);
}

int
conn_recv (struct conn *c, void *buf, size_t len)
{
  if (conn_is_dead (c)) {
    errno = ESHUTDOWN;
    return -1;
  }
  /* A failed read does not make the connection dead: replies to requests
   * already in flight can still go out (the client may only have shut
   * down its sending side).  The reader stops reading instead.
   */
  return nbdp_read_full (c->rfd, buf, len);
}

int
conn_discard (struct conn *c, uint64_t len)
{
  if (conn_is_dead (c)) {
    errno = ESHUTDOWN;
    return -1;
  }
  return nbdp_discard (c->rfd, len);
}

int
conn_sendv (struct conn *c, struct iovec *iov, int iovcnt)
{
  while (iovcnt > 0) {
    ssize_t r;

    if (conn_is_dead (c)) {
      errno = ESHUTDOWN;
      return -1;
    }
    r = writev (c->wfd, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      conn_hangup (c);
      return -1;
    }
    while (iovcnt > 0 && (size_t) r >= iov->iov_len) {
      r -= iov->iov_len;
      iov++;
      iovcnt--;
    }
    if (iovcnt > 0) {
      iov->iov_base = (char *) iov->iov_base + r;
      iov->iov_len -= r;
    }
  }
  return 0;
}

int
conn_send (struct conn *c, const void *buf, size_t len)
{
  struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };

  return conn_sendv (c, &iov, 1);
}

void
conn_serve (int rfd, int wfd)
{
  struct conn c;
  int r;

  memset (&c, 0, sizeof c);
  c.id = __atomic_add_fetch (&next_id, 1, __ATOMIC_RELAXED);
  c.rfd = rfd;
  c.wfd = wfd;
  pthread_mutex_init (&c.read_lock, NULL);
  pthread_mutex_init (&c.write_lock, NULL);
  pthread_mutex_init (&c.hold_lock, NULL);
  pthread_cond_init (&c.hold_cond, NULL);

  nbdp_debug ("conn %" PRIu64 ": accepted", c.id);
  if (config.oldstyle)
    r = handshake_oldstyle (&c);
  else
    r = handshake_newstyle (&c);
  if (r == 0 && c.exp && !conn_is_dead (&c))
    transmission_run (&c);
  resize_conn_end (&c);         /* if registered */
  nbdp_debug ("conn %" PRIu64 ": closed", c.id);

  close (rfd);
  if (wfd != rfd)
    close (wfd);
  pthread_cond_destroy (&c.hold_cond);
  pthread_mutex_destroy (&c.hold_lock);
  pthread_mutex_destroy (&c.write_lock);
  pthread_mutex_destroy (&c.read_lock);
}

static void *
conn_thread (void *arg)
{
  int fd = (int) (intptr_t) arg;

  conn_serve (fd, fd);
  pthread_mutex_lock (&active_lock);
  active--;
  pthread_mutex_unlock (&active_lock);
  return NULL;
}

int
conn_start_thread (int fd)
{
  pthread_attr_t attr;
  pthread_t t;
  int err;

  pthread_mutex_lock (&active_lock);
  if (active >= MAX_CONNECTIONS) {
    pthread_mutex_unlock (&active_lock);
    nbdp_warnx ("refusing a connection: %d already open", MAX_CONNECTIONS);
    close (fd);
    return -1;
  }
  active++;
  pthread_mutex_unlock (&active_lock);

  nbdp_tune_socket (fd);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, 1024 * 1024);
  err = pthread_create (&t, &attr, conn_thread, (void *) (intptr_t) fd);
  pthread_attr_destroy (&attr);
  if (err) {
    errno = err;
    nbdp_warn ("pthread_create");
    close (fd);
    pthread_mutex_lock (&active_lock);
    active--;
    pthread_mutex_unlock (&active_lock);
    return -1;
  }
  return 0;
}

unsigned
conn_active (void)
{
  unsigned n;

  pthread_mutex_lock (&active_lock);
  n = active;
  pthread_mutex_unlock (&active_lock);
  return n;
}
