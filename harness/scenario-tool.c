/* scenario-tool: the scenario parser for shell drivers and for authors.
 *
 *   scenario-tool steps FILE    normalised steps, one a line (scenario.h)
 *   scenario-tool info FILE     header: name, size, flags, caps, verify
 *   scenario-tool lint FILE...  parse and check each against its model
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

static void
usage (FILE *fp)
{
  fprintf (fp, "usage: scenario-tool steps|info FILE\n"
               "       scenario-tool lint FILE...\n");
}

static void
print_info (const struct scenario *s)
{
  printf ("name\t%s\n", s->name);
  printf ("size\t%" PRIu64 "\n", s->size);
  printf ("verify\t%s\n", s->verify ? "yes" : "no");
  printf ("max-conn\t%u\n", s->max_conn);
  printf ("requirements\t");
  for (size_t i = 0; i < s->nr_requirements; i++)
    printf ("%s%s", i ? " " : "", s->requirements[i]);
  printf ("\nserver-flags\t");
  for (unsigned b = 0, first = 1; b < 16; b++)
    if (s->server_flags & (1u << b)) {
      printf ("%s%s", first ? "" : " ", scn_flag_name (b));
      first = 0;
    }
  printf ("\nserver-caps\t");
  for (size_t i = 0; i < s->nr_server_caps; i++)
    printf ("%s%s", i ? " " : "", s->server_caps[i]);
  printf ("\n");
}

int
main (int argc, char *argv[])
{
  char err[512];
  int status = 0;

  if (argc < 3) {
    usage (stderr);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    struct scenario *s = scn_parse_file (argv[i], err, sizeof err);
    if (!s) {
      fprintf (stderr, "scenario-tool: %s\n", err);
      return 2;
    }
    if (strcmp (argv[1], "steps") == 0)
      scn_print_steps (s, stdout);
    else if (strcmp (argv[1], "info") == 0)
      print_info (s);
    else if (strcmp (argv[1], "lint") == 0) {
      if (!scn_lint (s, err, sizeof err)) {
        fprintf (stderr, "%s:%s\n", argv[i], err);
        status = 1;
      }
    }
    else {
      usage (stderr);
      scn_free (s);
      return 2;
    }
    scn_free (s);
  }
  return status;
}
