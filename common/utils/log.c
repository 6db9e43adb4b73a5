/* Logging to stderr, one line per call, written in one write so that lines
 * from several threads do not interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

bool nbdp_verbose;
const char *nbdp_progname = "nbdp";

static void
vlog (int err, const char *prefix, const char *fmt, va_list ap)
{
  char line[2048];
  int n;

  n = snprintf (line, sizeof line, "%s: %s", nbdp_progname, prefix);
  if (n < 0 || (size_t) n >= sizeof line)
    n = 0;
  n += vsnprintf (line + n, sizeof line - n, fmt, ap);
  if ((size_t) n >= sizeof line - 1)
    n = sizeof line - 2;
  if (err)
    n += snprintf (line + n, sizeof line - n, ": %s", strerror (err));
  if ((size_t) n >= sizeof line - 1)
    n = sizeof line - 2;
  line[n++] = '\n';
  if (write (STDERR_FILENO, line, n) == -1) {
    /* nothing useful to do */
  }
}

#define DEFINE_LOG(name, prefix, with_errno)                    \
  void                                                          \
  name (const char *fmt, ...)                                   \
  {                                                             \
    int err = with_errno ? errno : 0;                           \
    va_list ap;                                                 \
    va_start (ap, fmt);                                         \
    vlog (err, prefix, fmt, ap);                                \
    va_end (ap);                                                \
    errno = err;                                                \
  }

DEFINE_LOG (nbdp_warn, "", 1)
DEFINE_LOG (nbdp_warnx, "", 0)

void
nbdp_debug (const char *fmt, ...)
{
  va_list ap;

  if (!nbdp_verbose)
    return;
  va_start (ap, fmt);
  vlog (0, "debug: ", fmt, ap);
  va_end (ap);
}

void
nbdp_fatal (const char *fmt, ...)
{
  int err = errno;
  va_list ap;

  va_start (ap, fmt);
  vlog (err, "", fmt, ap);
  va_end (ap);
  exit (EXIT_FAILURE);
}

void
nbdp_fatalx (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog (0, "", fmt, ap);
  va_end (ap);
  exit (EXIT_FAILURE);
}
