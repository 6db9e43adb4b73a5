/* nbd-conformance: replay driver for the fuzz targets, linked instead of
 * libFuzzer so that `make check` (and check-asan, check-valgrind) runs
 * every corpus input and crash reproducer through the target built with
 * the normal compiler.  Arguments are files or directories; with none,
 * $NBDP_TOP/fuzz/corpus/FUZZ_TARGET (or fuzz/corpus/FUZZ_TARGET) is
 * replayed.  A crash is the test failing; exit 0 when every input ran.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "compile with -DFUZZ_TARGET='\"name\"'"
#endif

#define REPLAY_MAX_INPUT (16 * 1024 * 1024)

int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static unsigned long n_inputs;

static int
run_file (const char *path)
{
  FILE *f = fopen (path, "rb");
  unsigned char *buf;
  size_t len;

  if (f == NULL) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  buf = malloc (REPLAY_MAX_INPUT);
  if (buf == NULL) {
    fclose (f);
    fprintf (stderr, "replay: out of memory\n");
    return -1;
  }
  len = fread (buf, 1, REPLAY_MAX_INPUT, f);
  fclose (f);
  /* An exact-size copy, so that ASan sees reads past the end. */
  {
    unsigned char *exact = malloc (len ? len : 1);
    if (exact == NULL) {
      free (buf);
      return -1;
    }
    memcpy (exact, buf, len);
    free (buf);
    printf ("# %s: %zu bytes\n", path, len);
    fflush (stdout);
    LLVMFuzzerTestOneInput (exact, len);
    free (exact);
  }
  n_inputs++;
  return 0;
}

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
run_path (const char *path)
{
  struct stat st;
  DIR *d;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0;
  int r = 0;

  if (stat (path, &st) == -1) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  if (!S_ISDIR (st.st_mode))
    return run_file (path);
  d = opendir (path);
  if (d == NULL) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  while ((e = readdir (d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      char **p;
      cap = cap ? 2 * cap : 64;
      p = realloc (names, cap * sizeof *p);
      if (p == NULL) {
        r = -1;
        break;
      }
      names = p;
    }
    if (asprintf (&names[n], "%s/%s", path, e->d_name) == -1) {
      r = -1;
      break;
    }
    n++;
  }
  closedir (d);
  /* A stable order, so that a failure names the same file every time. */
  qsort (names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    if (r == 0 && run_file (names[i]) == -1)
      r = -1;
    free (names[i]);
  }
  free (names);
  return r;
}

int
main (int argc, char *argv[])
{
  char *def = NULL;
  int r = 0;

  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  if (argc < 2) {
    const char *top = getenv ("NBDP_TOP");
    if (asprintf (&def, "%s/fuzz/corpus/%s", top ? top : ".",
                  FUZZ_TARGET) == -1)
      return 2;
    r = run_path (def);
    free (def);
  }
  for (int i = 1; i < argc; i++)
    if (run_path (argv[i]) == -1)
      r = -1;
  printf ("# %s: replayed %lu inputs\n", FUZZ_TARGET, n_inputs);
  return r == 0 && n_inputs > 0 ? 0 : 1;
}
