/* Full reads and writes on blocking file descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

int
nbdp_read_full (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t done = 0;

  while (done < len) {
    ssize_t r = read (fd, p + done, len - done);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {
      errno = done == 0 ? 0 : EPIPE;
      return -1;
    }
    done += r;
  }
  return 0;
}

int
nbdp_write_full (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  bool use_send = true;   /* MSG_NOSIGNAL: a dead peer is EPIPE, not SIGPIPE */

  while (len > 0) {
    ssize_t r = use_send ? send (fd, p, len, MSG_NOSIGNAL) : write (fd, p, len);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      if (errno == ENOTSOCK && use_send) {
        use_send = false;
        continue;
      }
      return -1;
    }
    p += r;
    len -= r;
  }
  return 0;
}

int
nbdp_discard (int fd, uint64_t len)
{
  char buf[65536];

  while (len > 0) {
    size_t n = len > sizeof buf ? sizeof buf : len;
    if (nbdp_read_full (fd, buf, n) == -1)
      return -1;
    len -= n;
  }
  return 0;
}

int
nbdp_set_cloexec (int fd, int on)
{
  int f = fcntl (fd, F_GETFD);
  if (f == -1)
    return -1;
  f = on ? f | FD_CLOEXEC : f & ~FD_CLOEXEC;
  return fcntl (fd, F_SETFD, f);
}
