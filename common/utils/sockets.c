/* Socket helpers: Unix and TCP, listening and connecting, and systemd
 * socket activation.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "io.h"
#include "sockets.h"

static int
make_unix_addr (const char *path, struct sockaddr_un *addr)
{
  size_t len = strlen (path);

  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (len >= sizeof addr->sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy (addr->sun_path, path, len + 1);
  return 0;
}

int
nbdp_listen_unix (const char *path)
{
  struct sockaddr_un addr;
  int fd;

  if (make_unix_addr (path, &addr) == -1)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  unlink (path);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == -1 ||
      listen (fd, SOMAXCONN) == -1) {
    int e = errno;
    close (fd);
    errno = e;
    return -1;
  }
  return fd;
}

int
nbdp_connect_unix (const char *path)
{
  struct sockaddr_un addr;
  int fd;

  if (make_unix_addr (path, &addr) == -1)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == -1) {
    int e = errno;
    close (fd);
    errno = e;
    return -1;
  }
  nbdp_tune_socket (fd);
  return fd;
}

int
nbdp_listen_tcp (const char *host, const char *port, int *fds, size_t max,
                 int *bound_port)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
  struct addrinfo *res, *ai;
  size_t n = 0;
  int r, saved = 0;

  if (host == NULL)
    host = "127.0.0.1";
  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0) {
    errno = r == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
    return -1;
  }
  for (ai = res; ai && n < max; ai = ai->ai_next) {
    int one = 1;
    int fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                     ai->ai_protocol);
    if (fd == -1) {
      saved = errno;
      continue;
    }
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind (fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
        listen (fd, SOMAXCONN) == -1) {
      saved = errno;
      close (fd);
      continue;
    }
    if (bound_port) {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0)
        *bound_port = ntohs (ss.ss_family == AF_INET6
                             ? ((struct sockaddr_in6 *) &ss)->sin6_port
                             : ((struct sockaddr_in *) &ss)->sin_port);
      /* With port 0 bind every further address to the same port. */
      if (strcmp (port, "0") == 0 && ai->ai_next) {
        freeaddrinfo (res);
        fds[n++] = fd;
        return (int) n;
      }
    }
    fds[n++] = fd;
  }
  freeaddrinfo (res);
  if (n == 0) {
    errno = saved ? saved : EADDRNOTAVAIL;
    return -1;
  }
  return (int) n;
}

int
nbdp_connect_tcp (const char *host, const char *port)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICSERV };
  struct addrinfo *res, *ai;
  int r, fd = -1, saved = ECONNREFUSED;

  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0) {
    errno = r == EAI_SYSTEM ? errno : EHOSTUNREACH;
    return -1;
  }
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd == -1) {
      saved = errno;
      continue;
    }
    if (connect (fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    saved = errno;
    close (fd);
    fd = -1;
  }
  freeaddrinfo (res);
  if (fd == -1) {
    errno = saved;
    return -1;
  }
  nbdp_tune_socket (fd);
  return fd;
}

int
nbdp_socket_activation (void)
{
  const char *s = getenv ("LISTEN_PID");
  char *end;
  long pid, nfds;
  int i;

  if (s == NULL)
    return 0;
  errno = 0;
  pid = strtol (s, &end, 10);
  if (errno || *end || pid != (long) getpid ())
    return 0;
  s = getenv ("LISTEN_FDS");
  if (s == NULL)
    return 0;
  errno = 0;
  nfds = strtol (s, &end, 10);
  if (errno || *end || nfds <= 0 || nfds > 64)
    return 0;
  unsetenv ("LISTEN_PID");
  unsetenv ("LISTEN_FDS");
  unsetenv ("LISTEN_FDNAMES");
  for (i = 0; i < nfds; i++)
    nbdp_set_cloexec (3 + i, 1);
  return (int) nfds;
}

void
nbdp_tune_socket (int fd)
{
  int one = 1;
  int size = 4 * 1024 * 1024;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;

  setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0 &&
      (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
