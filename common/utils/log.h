/* Logging to stderr.  nbdp_warn appends strerror(errno), nbdp_warnx never
 * does (OpenBSD convention).  nbdp_debug prints only when nbdp_verbose.
 */
#ifndef NBDP_LOG_H
#define NBDP_LOG_H

#include <stdbool.h>

extern bool nbdp_verbose;
extern const char *nbdp_progname;

void nbdp_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void nbdp_warnx (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void nbdp_debug (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
_Noreturn void nbdp_fatal (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
_Noreturn void nbdp_fatalx (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

#endif /* NBDP_LOG_H */
