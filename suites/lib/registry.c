/* nbd-conform: the registry of tests.  Each suite file registers its
 * static table from a constructor (NC_SUITE); the runner sorts them and
 * selects with --only.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "log.h"

nc_entry_vector nc_registry = empty_vector;

void
nc_register_suite (const char *suite, const struct nc_test *tests, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct nc_entry e = { .suite = suite, .test = &tests[i] };

    if (asprintf (&e.full_name, "%s/%s", suite, tests[i].name) == -1 ||
        nc_entry_vector_append (&nc_registry, e) == -1) {
      perror ("nbd-conform: registering tests");
      exit (2);
    }
  }
}

/* Suites in a fixed order (the order of the protocol), then by name. */
static int
suite_rank (const char *s)
{
  static const char *const order[] = {
    "handshake", "transmission", "structured", "block-status", "extended",
    "resize", "client",
  };
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (strcmp (s, order[i]) == 0)
      return (int) i;
  return 100;
}

static int
compare_entries (const void *a0, const void *b0)
{
  const struct nc_entry *a = a0, *b = b0;
  int r = suite_rank (a->suite) - suite_rank (b->suite);

  if (r == 0)
    r = strcmp (a->suite, b->suite);
  if (r == 0)
    r = a->test < b->test ? -1 : a->test > b->test;
  return r;
}

int
nc_registry_finish (void)
{
  qsort (nc_registry.ptr, nc_registry.len, sizeof nc_registry.ptr[0],
         compare_entries);
  for (size_t i = 1; i < nc_registry.len; i++)
    if (strcmp (nc_registry.ptr[i].full_name,
                nc_registry.ptr[i - 1].full_name) == 0) {
      nbdp_warnx ("two tests are named %s", nc_registry.ptr[i].full_name);
      return -1;
    }
  return 0;
}

bool
nc_entry_id (const struct nc_entry *e, size_t i, char *buf, size_t n)
{
  const char *p = e->test->ids ? e->test->ids : "";

  for (;;) {
    size_t len;

    p += strspn (p, " \t,");
    if (*p == '\0')
      return false;
    len = strcspn (p, " \t,");
    if (i-- == 0) {
      if (len >= n)
        len = n - 1;
      memcpy (buf, p, len);
      buf[len] = '\0';
      return true;
    }
    p += len;
  }
}

bool
nc_entry_matches (const struct nc_entry *e, const char *glob)
{
  char id[128];

  if (fnmatch (glob, e->full_name, 0) == 0 ||
      fnmatch (glob, e->test->name, 0) == 0)
    return true;
  for (size_t i = 0; nc_entry_id (e, i, id, sizeof id); i++)
    if (fnmatch (glob, id, 0) == 0)
      return true;
  return false;
}
