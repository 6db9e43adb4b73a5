/* nbd-matrix: the result model and its JSON form (jansson).  The JSON
 * layout is documented in results/schema-matrix.md; keep them in step.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "results.h"

#define SCHEMA "nbd-matrix-results/1"

static const char *const verdict_names[NR_VERDICTS] = {
  [V_PASS] = "PASS", [V_FAIL] = "FAIL", [V_XFAIL] = "XFAIL",
  [V_XPASS] = "XPASS", [V_UNSUPPORTED] = "UNSUPPORTED", [V_SKIP] = "SKIP",
  [V_TIMEOUT] = "TIMEOUT", [V_ERROR] = "ERROR",
};

const char *
verdict_name (enum verdict v)
{
  return (unsigned) v < NR_VERDICTS ? verdict_names[v] : "ERROR";
}

int
verdict_parse (const char *name)
{
  for (int i = 0; i < NR_VERDICTS; i++)
    if (strcmp (name, verdict_names[i]) == 0)
      return i;
  return -1;
}

bool
verdict_is_bad (enum verdict v)
{
  return v == V_FAIL || v == V_XPASS || v == V_TIMEOUT || v == V_ERROR;
}

/* ---- string helpers ---- */

char *
xstrdup (const char *s)
{
  char *r;

  if (!s)
    return NULL;
  r = strdup (s);
  if (!r) {
    perror ("nbd-matrix: strdup");
    abort ();
  }
  return r;
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *r;

  va_start (ap, fmt);
  if (vasprintf (&r, fmt, ap) == -1) {
    perror ("nbd-matrix: vasprintf");
    abort ();
  }
  va_end (ap);
  return r;
}

size_t
strv_len (char *const *v)
{
  size_t n = 0;

  while (v && v[n])
    n++;
  return n;
}

char **
strv_copy (char *const *v)
{
  size_t n = strv_len (v);
  char **r;

  if (!v)
    return NULL;
  r = calloc (n + 1, sizeof *r);
  if (!r)
    abort ();
  for (size_t i = 0; i < n; i++)
    r[i] = xstrdup (v[i]);
  return r;
}

void
strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

bool
strv_contains (char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

char *
read_file_tail (const char *path, size_t max)
{
  FILE *fp = fopen (path, "r");
  struct stat st;
  char *buf;
  size_t skip = 0, n, hdr = 0;

  if (!fp)
    return NULL;
  if (fstat (fileno (fp), &st) == -1) {
    fclose (fp);
    return NULL;
  }
  if ((size_t) st.st_size > max)
    skip = (size_t) st.st_size - max;
  buf = malloc ((size_t) st.st_size - skip + 128);
  if (!buf) {
    fclose (fp);
    return NULL;
  }
  if (skip) {
    hdr = (size_t) snprintf (buf, 128, "[... %zu bytes cut ...]\n", skip);
    fseeko (fp, (off_t) skip, SEEK_SET);
  }
  n = fread (buf + hdr, 1, (size_t) st.st_size - skip, fp);
  buf[hdr + n] = '\0';
  fclose (fp);
  /* Keep the JSON valid UTF-8-ish: replace NULs and stray control bytes. */
  for (size_t i = 0; i < hdr + n; i++) {
    unsigned char c = (unsigned char) buf[i];
    if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x80)
      buf[i] = '?';
  }
  return buf;
}

/* ---- model ---- */

void
run_init (struct run *run)
{
  memset (run, 0, sizeof *run);
}

void
impl_free (struct impl_info *i)
{
  free (i->name);
  free (i->kind);
  free (i->adapter);
  free (i->profile);
  free (i->version);
  free (i->skip_reason);
  strv_free (i->caps);
  free (i->probe_log);
  strv_free (i->steps);
  memset (i, 0, sizeof *i);
}

void
scenario_info_free (struct scenario_info *s)
{
  free (s->name);
  free (s->summary);
  free (s->path);
  strv_free (s->requirements);
  free (s->text);
  memset (s, 0, sizeof *s);
}

void
cell_spy_free (struct cell_spy *s)
{
  if (!s)
    return;
  free (s->transcript);
  free (s->excerpt);
  free (s->error);
  for (size_t i = 0; i < s->nr_violations; i++) {
    free (s->violations[i].id);
    free (s->violations[i].level);
    free (s->violations[i].direction);
    free (s->violations[i].party);
    free (s->violations[i].message);
  }
  free (s->violations);
  free (s);
}

char *
cell_spy_summary (const struct cell_spy *s)
{
  char *r;

  if (!s || s->must + s->should == 0)
    return NULL;
  r = xasprintf ("%ld MUST, %ld SHOULD:", s->must, s->should);
  for (size_t i = 0; i < s->nr_violations; i++) {
    const struct spy_violation *v = &s->violations[i], *w = NULL;
    char *t;
    /* Each (ID, level, party) once. */
    for (size_t j = 0; j < i && !w; j++)
      if (strcmp (s->violations[j].id, v->id) == 0 &&
          strcmp (s->violations[j].level, v->level) == 0 &&
          strcmp (s->violations[j].party, v->party) == 0)
        w = &s->violations[j];
    if (w)
      continue;
    t = xasprintf ("%s%s %s %s by the %s", r, i ? "," : "", v->id, v->level,
                   v->party);
    free (r);
    r = t;
  }
  if (s->violations_omitted) {
    char *t = xasprintf ("%s (%ld more not listed)", r, s->violations_omitted);
    free (r);
    r = t;
  }
  return r;
}

void
cell_free (struct cell *c)
{
  free (c->client);
  free (c->server);
  free (c->scenario);
  free (c->reason);
  free (c->expectation);
  free (c->server_log);
  free (c->client_log);
  free (c->harness_log);
  free (c->reproducer);
  free (c->evidence_dir);
  cell_spy_free (c->spy);
  memset (c, 0, sizeof *c);
}

void
run_free (struct run *run)
{
  for (size_t i = 0; i < run->nr_impls; i++)
    impl_free (&run->impls[i]);
  for (size_t i = 0; i < run->nr_scenarios; i++)
    scenario_info_free (&run->scenarios[i]);
  for (size_t i = 0; i < run->nr_cells; i++)
    cell_free (&run->cells[i]);
  free (run->impls);
  free (run->scenarios);
  free (run->cells);
  free (run->tool_version);
  free (run->started);
  free (run->finished);
  free (run->host);
  free (run->command);
  free (run->shard);
  run_init (run);
}

#define APPEND(arr, nr, elem)                                           \
  do {                                                                  \
    void *p_ = realloc ((arr), ((nr) + 1) * sizeof *(arr));             \
    if (!p_)                                                            \
      return -1;                                                        \
    (arr) = p_;                                                         \
    (arr)[(nr)++] = *(elem);                                            \
  } while (0)

int
run_add_impl (struct run *run, const struct impl_info *impl)
{
  APPEND (run->impls, run->nr_impls, impl);
  return 0;
}

int
run_add_scenario (struct run *run, const struct scenario_info *s)
{
  APPEND (run->scenarios, run->nr_scenarios, s);
  return 0;
}

int
run_add_cell (struct run *run, const struct cell *c)
{
  APPEND (run->cells, run->nr_cells, c);
  return 0;
}

struct cell *
run_find_cell (const struct run *run, const char *client, const char *server,
               const char *scenario)
{
  for (size_t i = 0; i < run->nr_cells; i++) {
    struct cell *c = &run->cells[i];
    if (strcmp (c->client, client) == 0 && strcmp (c->server, server) == 0 &&
        strcmp (c->scenario, scenario) == 0)
      return c;
  }
  return NULL;
}

const struct impl_info *
run_find_impl (const struct run *run, const char *kind, const char *name)
{
  for (size_t i = 0; i < run->nr_impls; i++)
    if (strcmp (run->impls[i].kind, kind) == 0 &&
        strcmp (run->impls[i].name, name) == 0)
      return &run->impls[i];
  return NULL;
}

const struct scenario_info *
run_find_scenario (const struct run *run, const char *name)
{
  for (size_t i = 0; i < run->nr_scenarios; i++)
    if (strcmp (run->scenarios[i].name, name) == 0)
      return &run->scenarios[i];
  return NULL;
}

void
run_count (const struct run *run, size_t counts[NR_VERDICTS])
{
  memset (counts, 0, NR_VERDICTS * sizeof counts[0]);
  for (size_t i = 0; i < run->nr_cells; i++)
    counts[run->cells[i].verdict]++;
}

/* ---- JSON ---- */

static json_t *
jstr (const char *s)
{
  return s ? json_string (s) : json_null ();
}

static json_t *
jstrv (char *const *v)
{
  json_t *a = json_array ();

  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static json_t *
spy_to_json (const struct cell_spy *s)
{
  json_t *o, *a;

  if (!s)
    return json_null ();
  o = json_object ();
  a = json_array ();
  for (size_t i = 0; i < s->nr_violations; i++) {
    const struct spy_violation *v = &s->violations[i];
    json_array_append_new (a, json_pack ("{s:o,s:o,s:o,s:o,s:o,s:i}",
                                         "id", jstr (v->id),
                                         "level", jstr (v->level),
                                         "direction", jstr (v->direction),
                                         "party", jstr (v->party),
                                         "message", jstr (v->message),
                                         "conn", v->conn));
  }
  json_object_set_new (o, "transcript", jstr (s->transcript));
  json_object_set_new (o, "excerpt", jstr (s->excerpt));
  json_object_set_new (o, "error", jstr (s->error));
  json_object_set_new (o, "connections", json_integer (s->connections));
  json_object_set_new (o, "violation_count",
                       json_integer (s->must + s->should));
  json_object_set_new (o, "must", json_integer (s->must));
  json_object_set_new (o, "should", json_integer (s->should));
  json_object_set_new (o, "server_must", json_integer (s->server_must));
  json_object_set_new (o, "violations", a);
  json_object_set_new (o, "violations_omitted",
                       json_integer (s->violations_omitted));
  return o;
}

static json_t *
cell_to_json (const struct cell *c)
{
  json_t *o = json_object ();

  json_object_set_new (o, "id", json_sprintf ("%s/%s/%s", c->client,
                                              c->server, c->scenario));
  json_object_set_new (o, "client", jstr (c->client));
  json_object_set_new (o, "server", jstr (c->server));
  json_object_set_new (o, "scenario", jstr (c->scenario));
  json_object_set_new (o, "verdict", json_string (verdict_name (c->verdict)));
  json_object_set_new (o, "reason", jstr (c->reason ? c->reason : ""));
  json_object_set_new (o, "expectation", jstr (c->expectation));
  json_object_set_new (o, "seconds", json_real (c->seconds));
  json_object_set_new (o, "phases", c->has_phases
                       ? json_pack ("{s:f,s:f,s:f,s:f,s:f,s:f}",
                                    "start", c->t_start, "probe", c->t_probe,
                                    "spy", c->t_spy, "client", c->t_client,
                                    "verify", c->t_verify, "stop", c->t_stop)
                       : json_null ());
  json_object_set_new (o, "flags", c->flags >= 0 ? json_integer (c->flags)
                                                 : json_null ());
  json_object_set_new (o, "reproducer", jstr (c->reproducer));
  json_object_set_new (o, "evidence_dir", jstr (c->evidence_dir));
  json_object_set_new (o, "logs", json_pack ("{s:o,s:o,s:o}",
                                             "server", jstr (c->server_log),
                                             "client", jstr (c->client_log),
                                             "harness", jstr (c->harness_log)));
  json_object_set_new (o, "spy", spy_to_json (c->spy));
  return o;
}

static json_t *
impl_to_json (const struct impl_info *i)
{
  json_t *o = json_object ();

  json_object_set_new (o, "name", jstr (i->name));
  json_object_set_new (o, "kind", jstr (i->kind));
  json_object_set_new (o, "adapter", jstr (i->adapter));
  json_object_set_new (o, "profile", jstr (i->profile));
  json_object_set_new (o, "available", json_boolean (i->available));
  json_object_set_new (o, "version", jstr (i->version));
  json_object_set_new (o, "skip_reason", jstr (i->skip_reason));
  if (strcmp (i->kind, "server") == 0) {
    json_object_set_new (o, "caps", jstrv (i->caps));
    json_object_set_new (o, "probe_flags", i->probe_flags >= 0 ?
                         json_integer (i->probe_flags) : json_null ());
    json_object_set_new (o, "probe_log", jstr (i->probe_log));
  }
  else
    json_object_set_new (o, "steps", i->steps ? jstrv (i->steps)
                                              : json_null ());
  return o;
}

static int
dump (json_t *o, const char *path)
{
  int r = json_dump_file (o, path, JSON_INDENT (1) | JSON_SORT_KEYS);

  json_decref (o);
  if (r == -1 && errno == 0)
    errno = EIO;
  return r;
}

int
results_write_json (const struct run *run, const char *path)
{
  json_t *o = json_object (), *a;
  size_t counts[NR_VERDICTS];

  json_object_set_new (o, "schema", json_string (SCHEMA));
  json_object_set_new (o, "tool_version", jstr (run->tool_version));
  json_object_set_new (o, "started", jstr (run->started));
  json_object_set_new (o, "finished", jstr (run->finished));
  json_object_set_new (o, "host", jstr (run->host));
  json_object_set_new (o, "command", jstr (run->command));
  json_object_set_new (o, "shard", jstr (run->shard));
  json_object_set_new (o, "timeout", json_real (run->timeout));

  a = json_array ();
  for (size_t i = 0; i < run->nr_impls; i++)
    json_array_append_new (a, impl_to_json (&run->impls[i]));
  json_object_set_new (o, "implementations", a);

  a = json_array ();
  for (size_t i = 0; i < run->nr_scenarios; i++) {
    const struct scenario_info *s = &run->scenarios[i];
    json_array_append_new (a, json_pack ("{s:o,s:o,s:o,s:o,s:o}",
                                         "name", jstr (s->name),
                                         "summary", jstr (s->summary),
                                         "path", jstr (s->path),
                                         "requirements",
                                         jstrv (s->requirements),
                                         "text", jstr (s->text)));
  }
  json_object_set_new (o, "scenarios", a);

  a = json_array ();
  for (size_t i = 0; i < run->nr_cells; i++)
    json_array_append_new (a, cell_to_json (&run->cells[i]));
  json_object_set_new (o, "cells", a);

  run_count (run, counts);
  a = json_object ();
  for (int v = 0; v < NR_VERDICTS; v++)
    json_object_set_new (a, verdict_name (v), json_integer ((json_int_t) counts[v]));
  json_object_set_new (o, "counts", a);
  return dump (o, path);
}

/* ---- the baseline: a stable subset, one element a line ---- */

/* s with every "TOP/" made relative and a lone TOP made "."; NULL stays
 * NULL.
 */
static char *
strip_top (const char *s, const char *top)
{
  size_t tl = top ? strlen (top) : 0;
  char *r, *w;

  if (!s)
    return NULL;
  r = xstrdup (s);
  if (tl == 0)
    return r;
  w = r;
  while (*s) {
    if (strncmp (s, top, tl) == 0 && (s[tl] == '/' || s[tl] == '\0' ||
                                      s[tl] == '\'' || s[tl] == ' ')) {
      s += tl;
      if (*s == '/')
        s++;
      else
        *w++ = '.';
      continue;
    }
    *w++ = *s++;
  }
  *w = '\0';
  return r;
}

static json_t *
jstrip (const char *s, const char *top)
{
  char *t = strip_top (s, top);
  json_t *j = jstr (t);

  free (t);
  return j;
}

/* One compact line; false on error. */
static bool
put_line (FILE *fp, json_t *o, bool last)
{
  char *t = json_dumps (o, JSON_COMPACT | JSON_SORT_KEYS);
  bool ok = t != NULL;

  json_decref (o);
  if (ok)
    fprintf (fp, "  %s%s\n", t, last ? "" : ",");
  free (t);
  return ok;
}

int
results_write_baseline (const struct run *run, const char *path,
                        const char *top)
{
  char *tmp = xasprintf ("%s.tmp", path);
  FILE *fp = fopen (tmp, "w");
  size_t counts[NR_VERDICTS];
  bool ok = true;
  json_t *o;
  char *t;

  if (!fp) {
    free (tmp);
    return -1;
  }
  /* Top-level keys in sorted order, as results_write_json writes them. */
  fprintf (fp, "{\n \"baseline\": true,\n \"cells\": [\n");
  for (size_t i = 0; ok && i < run->nr_cells; i++) {
    const struct cell *c = &run->cells[i];
    o = json_object ();
    json_object_set_new (o, "id", json_sprintf ("%s/%s/%s", c->client,
                                                c->server, c->scenario));
    json_object_set_new (o, "client", jstr (c->client));
    json_object_set_new (o, "server", jstr (c->server));
    json_object_set_new (o, "scenario", jstr (c->scenario));
    json_object_set_new (o, "verdict",
                         json_string (verdict_name (c->verdict)));
    json_object_set_new (o, "reason", jstrip (c->reason ? c->reason : "", top));
    json_object_set_new (o, "expectation", jstrip (c->expectation, top));
    json_object_set_new (o, "flags", c->flags >= 0 ? json_integer (c->flags)
                                                   : json_null ());
    ok = put_line (fp, o, i + 1 == run->nr_cells);
  }
  run_count (run, counts);
  o = json_object ();
  for (int v = 0; v < NR_VERDICTS; v++)
    json_object_set_new (o, verdict_name (v),
                         json_integer ((json_int_t) counts[v]));
  t = json_dumps (o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref (o);
  ok = ok && t;
  fprintf (fp, " ],\n \"counts\": %s,\n \"implementations\": [\n",
           t ? t : "{}");
  free (t);
  for (size_t i = 0; ok && i < run->nr_impls; i++) {
    const struct impl_info *im = &run->impls[i];
    o = json_object ();
    json_object_set_new (o, "name", jstr (im->name));
    json_object_set_new (o, "kind", jstr (im->kind));
    json_object_set_new (o, "adapter", jstrip (im->adapter, top));
    json_object_set_new (o, "profile", jstr (im->profile));
    json_object_set_new (o, "available", json_boolean (im->available));
    json_object_set_new (o, "version", jstr (im->version));
    json_object_set_new (o, "skip_reason", jstrip (im->skip_reason, top));
    if (strcmp (im->kind, "server") == 0) {
      json_object_set_new (o, "caps", jstrv (im->caps));
      json_object_set_new (o, "probe_flags", im->probe_flags >= 0 ?
                           json_integer (im->probe_flags) : json_null ());
    }
    else
      json_object_set_new (o, "steps", im->steps ? jstrv (im->steps)
                                                 : json_null ());
    ok = put_line (fp, o, i + 1 == run->nr_impls);
  }
  fprintf (fp, " ],\n \"scenarios\": [\n");
  for (size_t i = 0; ok && i < run->nr_scenarios; i++) {
    const struct scenario_info *sc = &run->scenarios[i];
    o = json_pack ("{s:o,s:o,s:o,s:o}", "name", jstr (sc->name),
                   "summary", jstr (sc->summary),
                   "path", jstrip (sc->path, top),
                   "requirements", jstrv (sc->requirements));
    ok = put_line (fp, o, i + 1 == run->nr_scenarios);
  }
  fprintf (fp, " ],\n \"schema\": \"%s\",\n \"timeout\": %g,\n"
           " \"tool_version\": ", SCHEMA, run->timeout);
  o = jstr (run->tool_version);
  t = json_dumps (o, JSON_ENCODE_ANY);
  json_decref (o);
  fprintf (fp, "%s\n}\n", t ? t : "null");
  free (t);
  if (fclose (fp) == EOF)
    ok = false;
  if (ok && rename (tmp, path) == -1)
    ok = false;
  if (!ok) {
    int e = errno ? errno : EIO;
    unlink (tmp);
    errno = e;
  }
  free (tmp);
  return ok ? 0 : -1;
}

int
cell_write_json (const struct cell *c, const char *path)
{
  return dump (cell_to_json (c), path);
}

/* Reading: strings are optional unless noted; a wrong type is an error. */
static int
get_str (json_t *o, const char *key, char **out, bool required,
         char *err, size_t errlen)
{
  json_t *v = json_object_get (o, key);

  if (!v || json_is_null (v)) {
    if (required) {
      snprintf (err, errlen, "missing \"%s\"", key);
      return -1;
    }
    *out = NULL;
    return 0;
  }
  if (!json_is_string (v)) {
    snprintf (err, errlen, "\"%s\" is not a string", key);
    return -1;
  }
  *out = xstrdup (json_string_value (v));
  return 0;
}

static char **
get_strv (json_t *o, const char *key)
{
  json_t *a = json_object_get (o, key), *v;
  size_t i;
  char **r;

  if (!json_is_array (a))
    return NULL;
  r = calloc (json_array_size (a) + 1, sizeof *r);
  if (!r)
    abort ();
  json_array_foreach (a, i, v)
    r[i] = xstrdup (json_is_string (v) ? json_string_value (v) : "");
  return r;
}

static long
get_long (json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);

  return json_is_integer (v) ? (long) json_integer_value (v) : 0;
}

static int
spy_from_json (json_t *o, struct cell *c, char *err, size_t errlen)
{
  struct cell_spy *s = calloc (1, sizeof *s);
  json_t *a = json_object_get (o, "violations"), *v;
  size_t i;

  if (!s)
    abort ();
  c->spy = s;
  if (get_str (o, "transcript", &s->transcript, false, err, errlen) == -1 ||
      get_str (o, "excerpt", &s->excerpt, false, err, errlen) == -1 ||
      get_str (o, "error", &s->error, false, err, errlen) == -1)
    return -1;
  s->connections = get_long (o, "connections");
  s->must = get_long (o, "must");
  s->should = get_long (o, "should");
  s->server_must = get_long (o, "server_must");
  s->violations_omitted = get_long (o, "violations_omitted");
  if (!json_is_array (a))
    return 0;
  s->violations = calloc (json_array_size (a) + 1, sizeof *s->violations);
  if (!s->violations)
    abort ();
  json_array_foreach (a, i, v) {
    struct spy_violation *sv = &s->violations[s->nr_violations++];
    if (get_str (v, "id", &sv->id, true, err, errlen) == -1 ||
        get_str (v, "level", &sv->level, true, err, errlen) == -1 ||
        get_str (v, "direction", &sv->direction, false, err, errlen) == -1 ||
        get_str (v, "party", &sv->party, false, err, errlen) == -1 ||
        get_str (v, "message", &sv->message, false, err, errlen) == -1)
      return -1;
    if (!sv->direction)
      sv->direction = xstrdup ("?");
    if (!sv->party)
      sv->party = xstrdup (strcmp (sv->direction, "S->C") == 0 ? "server"
                           : "client");
    if (!sv->message)
      sv->message = xstrdup ("");
    sv->conn = (int) get_long (v, "conn");
  }
  return 0;
}

static int
cell_from_json (json_t *o, struct cell *c, char *err, size_t errlen)
{
  json_t *v, *logs;
  char *verdict = NULL;
  int vv;

  memset (c, 0, sizeof *c);
  c->flags = -1;
  if (!json_is_object (o)) {
    snprintf (err, errlen, "a cell is not an object");
    return -1;
  }
  if (get_str (o, "client", &c->client, true, err, errlen) == -1 ||
      get_str (o, "server", &c->server, true, err, errlen) == -1 ||
      get_str (o, "scenario", &c->scenario, true, err, errlen) == -1 ||
      get_str (o, "verdict", &verdict, true, err, errlen) == -1 ||
      get_str (o, "reason", &c->reason, false, err, errlen) == -1 ||
      get_str (o, "expectation", &c->expectation, false, err, errlen) == -1 ||
      get_str (o, "reproducer", &c->reproducer, false, err, errlen) == -1 ||
      get_str (o, "evidence_dir", &c->evidence_dir, false, err, errlen) == -1)
    goto err_cell;
  vv = verdict_parse (verdict);
  if (vv < 0) {
    snprintf (err, errlen, "unknown verdict \"%s\"", verdict);
    goto err_cell;
  }
  c->verdict = (enum verdict) vv;
  free (verdict);
  verdict = NULL;
  v = json_object_get (o, "seconds");
  c->seconds = json_is_number (v) ? json_number_value (v) : 0;
  v = json_object_get (o, "flags");
  c->flags = json_is_integer (v) ? (int) json_integer_value (v) : -1;
  v = json_object_get (o, "phases");
  if (json_is_object (v)) {
    c->has_phases = true;
    c->t_start = json_number_value (json_object_get (v, "start"));
    c->t_probe = json_number_value (json_object_get (v, "probe"));
    c->t_client = json_number_value (json_object_get (v, "client"));
    c->t_verify = json_number_value (json_object_get (v, "verify"));
    c->t_stop = json_number_value (json_object_get (v, "stop"));
    c->t_spy = json_number_value (json_object_get (v, "spy"));
  }
  v = json_object_get (o, "spy");
  if (json_is_object (v) && spy_from_json (v, c, err, errlen) == -1)
    goto err_cell;
  logs = json_object_get (o, "logs");
  if (json_is_object (logs) &&
      (get_str (logs, "server", &c->server_log, false, err, errlen) == -1 ||
       get_str (logs, "client", &c->client_log, false, err, errlen) == -1 ||
       get_str (logs, "harness", &c->harness_log, false, err, errlen) == -1))
    goto err_cell;
  return 0;
 err_cell:
  free (verdict);
  cell_free (c);
  return -1;
}

int
cell_read_json (struct cell *c, const char *path, char *err, size_t errlen)
{
  json_error_t je;
  json_t *o = json_load_file (path, 0, &je);
  int r;

  if (!o) {
    snprintf (err, errlen, "%s:%d: %s", path, je.line, je.text);
    return -1;
  }
  r = cell_from_json (o, c, err, errlen);
  json_decref (o);
  return r;
}

int
results_read_json (struct run *run, const char *path, char *err,
                   size_t errlen)
{
  json_error_t je;
  json_t *o = json_load_file (path, 0, &je), *a, *v, *x;
  size_t i;
  char *schema = NULL;

  run_init (run);
  if (!o) {
    snprintf (err, errlen, "%s:%d: %s", path, je.line, je.text);
    return -1;
  }
  if (get_str (o, "schema", &schema, true, err, errlen) == -1)
    goto err_o;
  if (strcmp (schema, SCHEMA) != 0) {
    snprintf (err, errlen, "%s: schema is \"%s\", expected \"%s\"", path,
              schema, SCHEMA);
    goto err_o;
  }
  if (get_str (o, "tool_version", &run->tool_version, false, err, errlen) ||
      get_str (o, "started", &run->started, false, err, errlen) ||
      get_str (o, "finished", &run->finished, false, err, errlen) ||
      get_str (o, "host", &run->host, false, err, errlen) ||
      get_str (o, "command", &run->command, false, err, errlen) ||
      get_str (o, "shard", &run->shard, false, err, errlen))
    goto err_o;
  v = json_object_get (o, "timeout");
  run->timeout = json_is_number (v) ? json_number_value (v) : 0;

  a = json_object_get (o, "implementations");
  json_array_foreach (a, i, v) {
    struct impl_info impl = { .probe_flags = -1 };
    if (get_str (v, "name", &impl.name, true, err, errlen) ||
        get_str (v, "kind", &impl.kind, true, err, errlen) ||
        get_str (v, "adapter", &impl.adapter, false, err, errlen) ||
        get_str (v, "profile", &impl.profile, false, err, errlen) ||
        get_str (v, "version", &impl.version, false, err, errlen) ||
        get_str (v, "skip_reason", &impl.skip_reason, false, err, errlen) ||
        get_str (v, "probe_log", &impl.probe_log, false, err, errlen)) {
      impl_free (&impl);
      goto err_o;
    }
    impl.available = json_is_true (json_object_get (v, "available"));
    impl.caps = get_strv (v, "caps");
    impl.steps = get_strv (v, "steps");
    x = json_object_get (v, "probe_flags");
    impl.probe_flags = json_is_integer (x) ? (int) json_integer_value (x) : -1;
    if (run_add_impl (run, &impl) == -1)
      goto err_o;
  }
  a = json_object_get (o, "scenarios");
  json_array_foreach (a, i, v) {
    struct scenario_info s = { 0 };
    if (get_str (v, "name", &s.name, true, err, errlen) ||
        get_str (v, "summary", &s.summary, false, err, errlen) ||
        get_str (v, "path", &s.path, false, err, errlen) ||
        get_str (v, "text", &s.text, false, err, errlen)) {
      scenario_info_free (&s);
      goto err_o;
    }
    s.requirements = get_strv (v, "requirements");
    if (run_add_scenario (run, &s) == -1)
      goto err_o;
  }
  a = json_object_get (o, "cells");
  if (!json_is_array (a)) {
    snprintf (err, errlen, "%s: no \"cells\" array", path);
    goto err_o;
  }
  json_array_foreach (a, i, v) {
    struct cell c;
    char cerr[256];
    if (cell_from_json (v, &c, cerr, sizeof cerr) == -1) {
      snprintf (err, errlen, "%s: cell %zu: %s", path, i, cerr);
      goto err_o;
    }
    if (run_add_cell (run, &c) == -1)
      goto err_o;
  }
  free (schema);
  json_decref (o);
  return 0;
 err_o:
  free (schema);
  json_decref (o);
  run_free (run);
  return -1;
}

static void
copy_impl (struct impl_info *d, const struct impl_info *s)
{
  *d = *s;
  d->name = xstrdup (s->name);
  d->kind = xstrdup (s->kind);
  d->adapter = xstrdup (s->adapter);
  d->profile = xstrdup (s->profile);
  d->version = xstrdup (s->version);
  d->skip_reason = xstrdup (s->skip_reason);
  d->caps = strv_copy (s->caps);
  d->probe_log = xstrdup (s->probe_log);
  d->steps = strv_copy (s->steps);
}

static void
copy_cell (struct cell *d, const struct cell *s)
{
  *d = *s;
  d->client = xstrdup (s->client);
  d->server = xstrdup (s->server);
  d->scenario = xstrdup (s->scenario);
  d->reason = xstrdup (s->reason);
  d->expectation = xstrdup (s->expectation);
  d->server_log = xstrdup (s->server_log);
  d->client_log = xstrdup (s->client_log);
  d->harness_log = xstrdup (s->harness_log);
  d->reproducer = xstrdup (s->reproducer);
  d->evidence_dir = xstrdup (s->evidence_dir);
  d->spy = NULL;
  if (s->spy) {
    const struct cell_spy *ss = s->spy;
    struct cell_spy *ds = calloc (1, sizeof *ds);
    if (!ds)
      abort ();
    *ds = *ss;
    ds->transcript = xstrdup (ss->transcript);
    ds->excerpt = xstrdup (ss->excerpt);
    ds->error = xstrdup (ss->error);
    ds->violations = calloc (ss->nr_violations + 1, sizeof *ds->violations);
    if (!ds->violations)
      abort ();
    for (size_t i = 0; i < ss->nr_violations; i++) {
      const struct spy_violation *sv = &ss->violations[i];
      ds->violations[i] = (struct spy_violation) {
        .id = xstrdup (sv->id), .level = xstrdup (sv->level),
        .direction = xstrdup (sv->direction), .party = xstrdup (sv->party),
        .message = xstrdup (sv->message), .conn = sv->conn,
      };
    }
    d->spy = ds;
  }
}

int
run_merge (struct run *dst, const struct run *src)
{
  for (size_t i = 0; i < src->nr_impls; i++) {
    const struct impl_info *si = &src->impls[i];
    if (!run_find_impl (dst, si->kind, si->name)) {
      struct impl_info c;
      copy_impl (&c, si);
      if (run_add_impl (dst, &c) == -1)
        return -1;
    }
  }
  for (size_t i = 0; i < src->nr_scenarios; i++) {
    const struct scenario_info *ss = &src->scenarios[i];
    if (!run_find_scenario (dst, ss->name)) {
      struct scenario_info c = {
        .name = xstrdup (ss->name), .summary = xstrdup (ss->summary),
        .path = xstrdup (ss->path), .text = xstrdup (ss->text),
        .requirements = strv_copy (ss->requirements),
      };
      if (run_add_scenario (dst, &c) == -1)
        return -1;
    }
  }
  for (size_t i = 0; i < src->nr_cells; i++) {
    const struct cell *sc = &src->cells[i];
    struct cell *dc = run_find_cell (dst, sc->client, sc->server,
                                     sc->scenario);
    struct cell c;
    copy_cell (&c, sc);
    if (dc) {
      cell_free (dc);
      *dc = c;
    }
    else if (run_add_cell (dst, &c) == -1)
      return -1;
  }
  if (!dst->started || (src->started && strcmp (src->started, dst->started) < 0)) {
    free (dst->started);
    dst->started = xstrdup (src->started);
  }
  if (!dst->finished ||
      (src->finished && strcmp (src->finished, dst->finished) > 0)) {
    free (dst->finished);
    dst->finished = xstrdup (src->finished);
  }
  if (!dst->tool_version)
    dst->tool_version = xstrdup (src->tool_version);
  if (!dst->host)
    dst->host = xstrdup (src->host);
  if (dst->timeout < src->timeout)
    dst->timeout = src->timeout;
  return 0;
}
