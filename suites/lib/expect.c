/* nbd-conform: --expect FILE, the known deviations of an implementation.
 * One entry a line: a test name or requirement ID (glob allowed), white
 * space, the reason.  '#' starts a comment.  A listed test that fails is
 * XFAIL; one that passes is XPASS, which fails the run so that the list
 * stays true.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

int
nc_expect_load (const char *path, nc_expect_vector *v, char *err,
                size_t errlen)
{
  FILE *f = fopen (path, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  unsigned lineno = 0;

  if (f == NULL) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    return -1;
  }
  while ((n = getline (&line, &cap, f)) != -1) {
    char *p = line, *pat, *reason;
    struct nc_expectation e;

    lineno++;
    line[strcspn (line, "\r\n")] = '\0';
    p += strspn (p, " \t");
    if (*p == '\0' || *p == '#')
      continue;
    pat = p;
    p += strcspn (p, " \t");
    if (*p) {
      *p++ = '\0';
      p += strspn (p, " \t");
    }
    reason = p;
    if (*reason == '\0') {
      snprintf (err, errlen, "%s:%u: entry \"%s\" has no reason; every "
                "known deviation needs one", path, lineno, pat);
      free (line);
      fclose (f);
      return -1;
    }
    e = (struct nc_expectation) {
      .pattern = strdup (pat), .reason = strdup (reason),
    };
    if (e.pattern == NULL || e.reason == NULL ||
        nc_expect_vector_append (v, e) == -1) {
      snprintf (err, errlen, "out of memory");
      free (line);
      fclose (f);
      return -1;
    }
  }
  free (line);
  fclose (f);
  return 0;
}

struct nc_expectation *
nc_expect_find (nc_expect_vector *v, const struct nc_entry *e)
{
  for (size_t i = 0; i < v->len; i++)
    if (nc_entry_matches (e, v->ptr[i].pattern)) {
      v->ptr[i].used = true;
      return &v->ptr[i];
    }
  return NULL;
}
