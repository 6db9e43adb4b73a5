/* nbd-refserver-ctl: talk to nbd-refserver's control socket (--control).
 *
 *   nbd-refserver-ctl PATH resize EXPORT SIZE
 *   nbd-refserver-ctl PATH size EXPORT
 *   nbd-refserver-ctl PATH COMMAND ARGS...   (any line of the protocol)
 *   nbd-refserver-ctl PATH -                 (one command per stdin line)
 *
 * Prints each answer without its "ok " prefix; exits 0 if every answer
 * was ok, 1 if one was an error (printed on stderr), 2 on a usage or
 * connection problem.  EXPORT "-" is the default export.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "sockets.h"

static int
read_line (FILE *f, char *buf, size_t size)
{
  if (fgets (buf, size, f) == NULL)
    return -1;
  buf[strcspn (buf, "\n")] = '\0';
  return 0;
}

/* Send one command line, print the answer; 0 ok, 1 error, 2 broken. */
static int
one (int fd, FILE *in, const char *line)
{
  char ans[4096];
  size_t n = strlen (line);

  if (nbdp_write_full (fd, line, n) == -1 ||
      nbdp_write_full (fd, "\n", 1) == -1) {
    fprintf (stderr, "nbd-refserver-ctl: sending \"%s\": %s\n", line,
             strerror (errno));
    return 2;
  }
  for (;;) {
    if (read_line (in, ans, sizeof ans) == -1) {
      fprintf (stderr, "nbd-refserver-ctl: \"%s\": the server closed the "
               "control connection without an answer\n", line);
      return 2;
    }
    if (strncmp (ans, "ok", 2) == 0 && (ans[2] == '\0' || ans[2] == ' ')) {
      if (ans[2])
        printf ("%s\n", ans + 3);
      return 0;
    }
    if (strncmp (ans, "error", 5) == 0) {
      fprintf (stderr, "nbd-refserver-ctl: %s: %s\n", line,
               ans[5] ? ans + 6 : "error");
      return 1;
    }
    printf ("%s\n", ans);       /* help text lines */
  }
}

int
main (int argc, char *argv[])
{
  FILE *in;
  int fd, rc = 0;

  if (argc < 3 || strcmp (argv[1], "--help") == 0) {
    fprintf (argc < 3 ? stderr : stdout,
             "usage: nbd-refserver-ctl PATH resize EXPORT SIZE\n"
             "       nbd-refserver-ctl PATH size EXPORT\n"
             "       nbd-refserver-ctl PATH COMMAND ARGS... | -\n"
             "EXPORT - is the default export; PATH is nbd-refserver's "
             "--control socket.\n");
    return argc < 3 ? 2 : 0;
  }
  fd = nbdp_connect_unix (argv[1]);
  if (fd == -1) {
    fprintf (stderr, "nbd-refserver-ctl: connecting to %s: %s\n", argv[1],
             strerror (errno));
    return 2;
  }
  in = fdopen (dup (fd), "r");
  if (in == NULL) {
    perror ("nbd-refserver-ctl: fdopen");
    return 2;
  }
  if (argc == 3 && strcmp (argv[2], "-") == 0) {
    char line[4096];
    while (read_line (stdin, line, sizeof line) == 0) {
      int r;
      if (line[0] == '\0')
        continue;
      r = one (fd, in, line);
      if (r > rc)
        rc = r;
      if (r == 2)
        break;
    }
  }
  else {
    char line[4096] = "";
    for (int i = 2; i < argc; i++) {
      if (strlen (line) + strlen (argv[i]) + 2 > sizeof line) {
        fprintf (stderr, "nbd-refserver-ctl: command too long\n");
        return 2;
      }
      if (i > 2)
        strcat (line, " ");
      strcat (line, argv[i][0] ? argv[i] : "-");
    }
    rc = one (fd, in, line);
  }
  fclose (in);
  close (fd);
  return rc;
}
