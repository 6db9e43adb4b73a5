/* Socket helpers: Unix and TCP, listening and connecting, and systemd
 * socket activation.  All returned fds are close-on-exec.
 */
#ifndef NBDP_SOCKETS_H
#define NBDP_SOCKETS_H

#include <stddef.h>

/* Listen on a Unix socket at path (an existing socket file is replaced).
 * Returns the fd or -1 with errno set.
 */
int nbdp_listen_unix (const char *path);
/* Listen on TCP host:port (host NULL means 127.0.0.1; port "0" picks a
 * free port).  Fills fds (up to max) with one fd per address; returns
 * the count or -1.  If bound_port is not NULL it receives the port
 * actually bound (useful with "0").
 */
int nbdp_listen_tcp (const char *host, const char *port, int *fds,
                     size_t max, int *bound_port);
int nbdp_connect_unix (const char *path);
int nbdp_connect_tcp (const char *host, const char *port);
/* Socket activation (sd_listen_fds protocol): if LISTEN_PID is our pid
 * and LISTEN_FDS > 0, returns the number of fds (starting at fd 3) and
 * unsets the variables; otherwise 0.
 */
int nbdp_socket_activation (void);
/* Large socket buffers and TCP_NODELAY where it applies; best effort. */
void nbdp_tune_socket (int fd);

#endif /* NBDP_SOCKETS_H */
