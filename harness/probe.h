/* nbd-matrix: the wire probe (see probe.c). */
#ifndef NBDM_PROBE_H
#define NBDM_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct probe_result {
  int flags;                    /* transmission flags, -1 if not reached */
  uint64_t size;
  bool oldstyle, used_go, no_zeroes;
  char log[2048];               /* what was seen, one line per event */
};

/* Returns 0 when the export was negotiated, -1 otherwise (r->log says
 * why).  Every read and write is bounded by timeout_ms.
 */
int probe_server (const char *socket_path, const char *export,
                  int timeout_ms, struct probe_result *r);
/* The same on a connected socket (closed on return). */
int probe_fd (int fd, const char *export, int timeout_ms,
              struct probe_result *r);
/* "SEND_FLUSH SEND_FUA ..." for a flags word. */
void probe_flags_string (int flags, char *buf, size_t len);

#endif /* NBDM_PROBE_H */
