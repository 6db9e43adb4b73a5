/* nbd-conformance: the fake peer of the fuzz targets that drive a client
 * or a server over a socketpair.  The fuzz input is the peer's whole byte
 * stream: it is queued on the socket at once and the peer then shuts its
 * sending side, so whoever reads past the input sees EOF (never waits);
 * a thread drains whatever the other side sends so that it never blocks
 * writing.
 *
 * Live mode, for recording seeds (fuzz/gen-corpus.py): with
 * FUZZ_PEER_CONNECT=PATH in the environment the code under test talks to
 * the Unix socket PATH instead (a recording proxy in front of a real
 * peer), and the input is ignored.
 */
#ifndef NBDP_FUZZ_PEER_H
#define NBDP_FUZZ_PEER_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct fuzz_peer {
  int fd;                       /* our end */
  pthread_t drain;
  const uint8_t *data;          /* still to send */
  size_t left;
};

/* Send the input (as fast as the other side takes it) and read until
 * the other side closes.
 */
static void *
fuzz_peer_run (void *arg)
{
  struct fuzz_peer *p = arg;
  char buf[65536];

  for (;;) {
    struct pollfd pfd = { .fd = p->fd,
                          .events = POLLIN | (p->left ? POLLOUT : 0) };
    if (poll (&pfd, 1, -1) == -1) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p->left && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t r = send (p->fd, p->data, p->left,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r > 0) {
        p->data += r;
        p->left -= r;
      }
      else if (r == -1 && errno != EAGAIN && errno != EINTR)
        p->left = 0;
      if (p->left == 0)
        shutdown (p->fd, SHUT_WR);
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv (p->fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR)) {
        if (p->left == 0)
          break;
        /* The other side is gone: nothing more will be read. */
        p->left = 0;
        shutdown (p->fd, SHUT_WR);
        break;
      }
    }
  }
  return NULL;
}

/* Returns the other end (for the code under test), or -1. */
static inline int
fuzz_peer_start (struct fuzz_peer *p, const uint8_t *data, size_t size)
{
  const char *live = getenv ("FUZZ_PEER_CONNECT");
  int sv[2];

  if (live) {
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    p->fd = -1;
    if (fd == -1 || strlen (live) >= sizeof sun.sun_path) {
      if (fd >= 0)
        close (fd);
      return -1;
    }
    memcpy (sun.sun_path, live, strlen (live));
    if (connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
      close (fd);
      return -1;
    }
    return fd;
  }

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    return -1;
  p->fd = sv[1];
  p->data = data;
  p->left = size;
  if (size == 0)
    shutdown (p->fd, SHUT_WR);
  if (pthread_create (&p->drain, NULL, fuzz_peer_run, p) != 0) {
    close (sv[0]);
    close (sv[1]);
    return -1;
  }
  return sv[0];
}

/* Call once the code under test has closed its end. */
static inline void
fuzz_peer_finish (struct fuzz_peer *p)
{
  if (p->fd == -1)
    return;
  pthread_join (p->drain, NULL);
  close (p->fd);
}

#endif /* NBDP_FUZZ_PEER_H */
