/* nbd-matrix: detection of installed implementations through their
 * adapters (`version`, `caps`, `profiles`) and drivers (`--version`,
 * `--steps`), and the up-front wire probe of each server column.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cell.h"
#include "inventory.h"
#include "probe.h"
#include "proc.h"

#define QUERY_TIMEOUT_MS 15000
#define PROBE_SIZE (UINT64_C (16) << 20)

bool
globs_match (char *const *globs, const char *name)
{
  if (!globs || !globs[0])
    return true;
  for (size_t i = 0; globs[i]; i++)
    if (fnmatch (globs[i], name, 0) == 0)
      return true;
  return false;
}

/* Lines of text as a NULL-terminated vector (empty lines dropped). */
static char **
split_lines (const char *text)
{
  char *copy = xstrdup (text), *save = NULL, *line;
  char **v = calloc (1, sizeof *v);
  size_t n = 0;

  if (!v)
    abort ();
  for (line = strtok_r (copy, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    while (*line == ' ' || *line == '\t')
      line++;
    if (!*line)
      continue;
    v = realloc (v, (n + 2) * sizeof *v);
    if (!v)
      abort ();
    v[n++] = xstrdup (line);
    v[n] = NULL;
  }
  free (copy);
  return v;
}

static char *
first_line (const char *text)
{
  size_t n = strcspn (text, "\n");
  char *r = malloc (n + 1);

  if (!r)
    abort ();
  memcpy (r, text, n);
  r[n] = '\0';
  return r;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The display name of a driver: file name without "-driver". */
static char *
client_name (const char *file)
{
  size_t n = strlen (file);

  if (n > 7 && strcmp (file + n - 7, "-driver") == 0)
    n -= 7;
  return strndup (file, n);
}

static void
add_unavailable (struct run *run, const char *kind, const char *name,
                 const char *adapter, const char *profile, const char *why)
{
  struct impl_info impl = {
    .name = xstrdup (name), .kind = xstrdup (kind),
    .adapter = xstrdup (adapter), .profile = xstrdup (profile),
    .available = false, .skip_reason = xstrdup (why), .probe_flags = -1,
  };
  run_add_impl (run, &impl);
}

static int
scan_server (struct run *run, const char *path, const char *label,
             const char *name, char *const *globs)
{
  char *out = NULL, *err = NULL, *version;
  char *argv[4] = { (char *) path, (char *) "version", NULL, NULL };
  int rc, added = 0;
  char **profiles = NULL;

  rc = proc_capture (argv, QUERY_TIMEOUT_MS, &out, &err);
  if (rc != 0 || !*out) {
    char *why;
    if (!globs_match (globs, name))
      goto out;
    why = *err ? first_line (err)
          : xasprintf ("adapter 'version' failed (exit status %d)", rc);
    add_unavailable (run, "server", name, label, NULL, why);
    free (why);
    added = 1;
    goto out;
  }
  version = first_line (out);
  free (out);
  free (err);
  out = err = NULL;

  argv[1] = (char *) "profiles";
  if (proc_capture (argv, QUERY_TIMEOUT_MS, &out, &err) == 0 && *out)
    profiles = split_lines (out);
  free (out);
  free (err);
  out = err = NULL;

  for (size_t i = 0; i < (profiles ? strv_len (profiles) : 1); i++) {
    const char *profile = profiles ? profiles[i] : NULL;
    char *iname = profile ? xasprintf ("%s:%s", name, profile)
                          : xstrdup (name);
    struct impl_info impl = { .probe_flags = -1 };

    if (!globs_match (globs, iname) && !globs_match (globs, name)) {
      free (iname);
      continue;
    }
    argv[1] = (char *) "caps";
    argv[2] = (char *) profile;
    if (proc_capture (argv, QUERY_TIMEOUT_MS, &out, &err) != 0) {
      free (out);
      out = xstrdup ("");
    }
    impl.name = iname;
    impl.kind = xstrdup ("server");
    impl.adapter = xstrdup (label);
    impl.profile = xstrdup (profile);
    impl.available = true;
    impl.version = xstrdup (version);
    impl.caps = split_lines (out);
    free (out);
    free (err);
    out = err = NULL;
    run_add_impl (run, &impl);
    added++;
  }
  free (version);
  strv_free (profiles);
 out:
  free (out);
  free (err);
  return added;
}

static int
scan_client (struct run *run, const char *path, const char *label,
             const char *file, char *const *globs)
{
  char *out = NULL, *err = NULL, *name = client_name (file);
  char *argv[3] = { (char *) path, (char *) "--version", NULL };
  struct impl_info impl = { .probe_flags = -1 };
  int rc;

  if (!globs_match (globs, name) && !globs_match (globs, file)) {
    free (name);
    return 0;
  }
  rc = proc_capture (argv, QUERY_TIMEOUT_MS, &out, &err);
  if (rc != 0 || !*out) {
    char *why = *err ? first_line (err)
                : xasprintf ("driver --version failed (exit status %d)", rc);
    add_unavailable (run, "client", name, label, NULL, why);
    free (why);
    free (name);
    free (out);
    free (err);
    return 1;
  }
  impl.name = name;
  impl.kind = xstrdup ("client");
  impl.adapter = xstrdup (label);
  impl.available = true;
  impl.version = first_line (out);
  free (out);
  free (err);
  argv[1] = (char *) "--steps";
  if (proc_capture (argv, QUERY_TIMEOUT_MS, &out, &err) == 0 && *out)
    impl.steps = split_lines (out);
  free (out);
  free (err);
  run_add_impl (run, &impl);
  return 1;
}

int
inventory_scan (struct run *run, const char *top, const char *dir,
                const char *dir_label, const char *kind, char *const *globs)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  char **names = NULL;
  size_t n = 0;
  int added = 0;

  if (!d) {
    fprintf (stderr, "nbd-matrix: %s: %s\n", dir, strerror (errno));
    return 0;
  }
  while ((de = readdir (d)) != NULL) {
    char *path;
    struct stat st;
    const char *dot = strrchr (de->d_name, '.');
    if (de->d_name[0] == '.' ||
        (dot && (strcmp (dot, ".c") == 0 || strcmp (dot, ".o") == 0 ||
                 strcmp (dot, ".d") == 0 || strcmp (dot, ".h") == 0 ||
                 strcmp (dot, ".md") == 0)))
      continue;
    path = xasprintf ("%s/%s", dir, de->d_name);
    if (stat (path, &st) == 0 && S_ISREG (st.st_mode) &&
        access (path, X_OK) == 0) {
      names = realloc (names, (n + 1) * sizeof *names);
      if (!names)
        abort ();
      names[n++] = xstrdup (de->d_name);
    }
    free (path);
  }
  closedir (d);
  if (n)
    qsort (names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char *path = xasprintf ("%s/%s", dir, names[i]);
    char *label = xasprintf ("%s/%s", dir_label, names[i]);
    if (strcmp (kind, "server") == 0)
      added += scan_server (run, path, label, names[i], globs);
    else
      added += scan_client (run, path, label, names[i], globs);
    free (path);
    free (label);
    free (names[i]);
  }
  free (names);
  (void) top;
  return added;
}

void
inventory_probe_servers (struct run *run, const char *top,
                         const char *tmp_root, volatile bool *stop)
{
  for (size_t i = 0; i < run->nr_impls && !(stop && *stop); i++) {
    struct impl_info *impl = &run->impls[i];
    struct server_proc sp;
    struct probe_result pr;
    char msg[1024], *logpath, *tmp;
    int fd, cfd = -1;

    if (strcmp (impl->kind, "server") != 0 || !impl->available)
      continue;
    tmp = xasprintf ("%s/nbdm-probe-XXXXXX", tmp_root);
    fd = mkstemp (tmp);
    if (fd == -1) {
      free (tmp);
      continue;
    }
    close (fd);
    logpath = tmp;
    if (server_start (&sp, impl, top, tmp_root, PROBE_SIZE, logpath, 30000,
                      stop, &cfd, msg, sizeof msg) == -1) {
      impl->probe_log = xasprintf ("probe: could not start the server: %s",
                                   msg);
    }
    else {
      if (probe_fd (cfd, MATRIX_EXPORT, 10000, &pr) == 0)
        impl->probe_flags = pr.flags;
      impl->probe_log = xstrdup (pr.log);
      server_stop (&sp);
    }
    unlink (logpath);
    free (logpath);
  }
}
