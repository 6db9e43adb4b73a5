/* Full reads and writes on blocking file descriptors. */
#ifndef NBDP_IO_H
#define NBDP_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read exactly len bytes.  Returns 0 on success and -1 on failure with
 * errno set: the read error, 0 for a clean EOF before any byte, or EPIPE
 * for EOF part way through.  EINTR is retried.
 */
int nbdp_read_full (int fd, void *buf, size_t len);
/* Write exactly len bytes (MSG_NOSIGNAL when fd is a socket). */
int nbdp_write_full (int fd, const void *buf, size_t len);
/* Discard len bytes from fd (reads into a bounce buffer). */
int nbdp_discard (int fd, uint64_t len);
/* Make the fd close-on-exec (helper for inherited listening fds). */
int nbdp_set_cloexec (int fd, int on);

#endif /* NBDP_IO_H */
