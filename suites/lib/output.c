/* nbd-conform: result output.  TAP version 14 on stdout (one line per
 * test, a YAML block with the findings for anything but a plain pass),
 * JUnit XML and JSON (results/schema.md) on request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runner.h"

static const char *const class_names[NC_NR_CLASSES] = {
  [NC_PASS] = "PASS", [NC_FAIL] = "FAIL", [NC_XFAIL] = "XFAIL",
  [NC_XPASS] = "XPASS", [NC_UNSUPPORTED] = "UNSUPPORTED", [NC_SKIP] = "SKIP",
  [NC_INFO] = "INFO", [NC_NONSTRICT] = "NONSTRICT", [NC_TIMEOUT] = "TIMEOUT",
  [NC_ERROR] = "ERROR",
};

const char *
nc_class_name (enum nc_class c)
{
  return c < NC_NR_CLASSES ? class_names[c] : "?";
}

bool
nc_class_fails_run (enum nc_class c)
{
  return c == NC_FAIL || c == NC_XPASS || c == NC_TIMEOUT || c == NC_ERROR;
}

char *
nc_shell_quote (const char *s)
{
  size_t n = 3;
  char *out, *p;

  if (s[0] && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789-_./:=+,@%") == strlen (s))
    return strdup (s);
  for (const char *q = s; *q; q++)
    n += *q == '\'' ? 4 : 1;
  out = p = malloc (n);
  if (out == NULL)
    return NULL;
  *p++ = '\'';
  for (; *s; s++) {
    if (*s == '\'') {
      memcpy (p, "'\\''", 4);
      p += 4;
    }
    else
      *p++ = *s;
  }
  *p++ = '\'';
  *p = '\0';
  return out;
}

/* ---- TAP 14 ---- */

static void
yaml_str (FILE *f, const char *s)
{
  fputc ('\'', f);
  for (; *s; s++) {
    if (*s == '\'')
      fputs ("''", f);
    else if ((unsigned char) *s < 0x20)
      fputc (' ', f);
    else
      fputc (*s, f);
  }
  fputc ('\'', f);
}

void
nc_tap_header (FILE *f, size_t n)
{
  fprintf (f, "TAP version 14\n1..%zu\n", n);
  fflush (f);
}

void
nc_tap_record (FILE *f, size_t index, const struct nc_record *r,
               bool verbose)
{
  const struct nc_entry *e = r->e;
  bool ok, yaml;
  char id[128];
  size_t i, from;

  switch (r->cls) {
  case NC_PASS: case NC_INFO: case NC_NONSTRICT:
  case NC_SKIP: case NC_UNSUPPORTED:
    ok = true;
    break;
  default:
    ok = false;
    break;
  }
  fprintf (f, "%s %zu - %s", ok ? "ok" : "not ok", index, e->full_name);
  switch (r->cls) {
  case NC_SKIP:
    fprintf (f, " # SKIP %s", r->reason ? r->reason : "");
    break;
  case NC_UNSUPPORTED:
    fprintf (f, " # SKIP unsupported: %s", r->reason ? r->reason : "");
    break;
  case NC_XFAIL:
    fprintf (f, " # TODO known deviation: %s",
             r->expect_reason ? r->expect_reason : "");
    break;
  default:
    break;
  }
  fprintf (f, "\n");
  yaml = r->cls != NC_PASS || verbose;
  if (r->cls == NC_SKIP || r->cls == NC_UNSUPPORTED)
    yaml = verbose;
  if (!yaml) {
    fflush (f);
    return;
  }
  fprintf (f, "  ---\n  result: %s\n", nc_class_name (r->cls));
  fprintf (f, "  requirements: [");
  for (i = 0; nc_entry_id (e, i, id, sizeof id); i++)
    fprintf (f, "%s%s", i ? ", " : "", id);
  fprintf (f, "]\n");
  if (r->reason) {
    fprintf (f, "  reason: ");
    yaml_str (f, r->reason);
    fprintf (f, "\n");
  }
  if (r->listed && r->expect_reason) {
    fprintf (f, "  expected: ");
    yaml_str (f, r->expect_reason);
    fprintf (f, "\n");
  }
  if (r->findings.len) {
    fprintf (f, "  findings:\n");
    for (i = 0; i < r->findings.len; i++) {
      const struct nc_finding *fd = &r->findings.ptr[i];
      if (fd->info) {
        fprintf (f, "    - info: ");
        yaml_str (f, fd->msg);
        fprintf (f, "\n");
        continue;
      }
      fprintf (f, "    - id: %s\n      level: %s\n      message: ", fd->id,
               nbdp_level_name (fd->level));
      yaml_str (f, fd->msg);
      fprintf (f, "\n");
    }
  }
  if (r->reproduce && r->cls != NC_PASS) {
    fprintf (f, "  reproduce: ");
    yaml_str (f, r->reproduce);
    fprintf (f, "\n");
  }
  if (r->log.len && (verbose || nc_class_fails_run (r->cls))) {
    from = !verbose && r->log.len > 40 ? r->log.len - 40 : 0;
    fprintf (f, "  log:\n");
    for (i = from; i < r->log.len; i++) {
      fprintf (f, "    - ");
      yaml_str (f, r->log.ptr[i]);
      fprintf (f, "\n");
    }
  }
  fprintf (f, "  duration_ms: %.0f\n  ...\n", r->secs * 1000);
  fflush (f);
}

void
nc_tap_footer (FILE *f, const struct nc_run *run)
{
  fprintf (f, "# summary: %zu tests", run->n);
  for (int c = 0; c < NC_NR_CLASSES; c++)
    if (run->counts[c])
      fprintf (f, ", %zu %s", run->counts[c], nc_class_name (c));
  fprintf (f, " (%.1f s)\n", run->secs);
  for (size_t i = 0; i < run->n; i++)
    if (nc_class_fails_run (run->records[i].cls))
      fprintf (f, "# %s: %s\n", nc_class_name (run->records[i].cls),
               run->records[i].e->full_name);
  fflush (f);
}

/* ---- JUnit XML ---- */

static void
xml_str (FILE *f, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '<': fputs ("&lt;", f); break;
    case '>': fputs ("&gt;", f); break;
    case '&': fputs ("&amp;", f); break;
    case '"': fputs ("&quot;", f); break;
    case '\'': fputs ("&apos;", f); break;
    default:
      if ((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t')
        fputc (' ', f);
      else
        fputc (*s, f);
    }
  }
}

static void
junit_details (FILE *f, const struct nc_record *r)
{
  for (size_t i = 0; i < r->findings.len; i++) {
    const struct nc_finding *fd = &r->findings.ptr[i];
    if (fd->info)
      fprintf (f, "INFO: ");
    else
      fprintf (f, "%s %s: ", fd->id, nbdp_level_name (fd->level));
    xml_str (f, fd->msg);
    fputc ('\n', f);
  }
  if (r->reproduce) {
    fprintf (f, "reproduce: ");
    xml_str (f, r->reproduce);
    fputc ('\n', f);
  }
}

int
nc_write_junit (const char *path, const struct nc_run *run)
{
  FILE *f = fopen (path, "w");
  size_t failures = 0, errors = 0, skipped = 0;

  if (f == NULL)
    return -1;
  for (size_t i = 0; i < run->n; i++) {
    enum nc_class c = run->records[i].cls;
    if (c == NC_FAIL || c == NC_XPASS)
      failures++;
    else if (c == NC_ERROR || c == NC_TIMEOUT)
      errors++;
    else if (c == NC_SKIP || c == NC_UNSUPPORTED || c == NC_XFAIL)
      skipped++;
  }
  fprintf (f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<testsuites name=\"nbd-conform\" tests=\"%zu\" failures=\"%zu\" "
           "errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\">\n",
           run->n, failures, errors, skipped, run->secs);
  fprintf (f, "  <testsuite name=\"nbd-conform\" tests=\"%zu\" "
           "failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\" "
           "timestamp=\"%s\">\n", run->n, failures, errors, skipped,
           run->secs, run->started);
  for (size_t i = 0; i < run->n; i++) {
    const struct nc_record *r = &run->records[i];
    const char *cls = nc_class_name (r->cls);

    fprintf (f, "    <testcase classname=\"");
    xml_str (f, r->e->suite);
    fprintf (f, "\" name=\"");
    xml_str (f, r->e->test->name);
    fprintf (f, "\" time=\"%.3f\">\n", r->secs);
    switch (r->cls) {
    case NC_FAIL: case NC_XPASS:
      fprintf (f, "      <failure type=\"%s\" message=\"", cls);
      xml_str (f, r->cls == NC_XPASS ? "listed as a known deviation but "
               "passed" : r->findings.len ? r->findings.ptr[0].msg : "");
      fprintf (f, "\">");
      junit_details (f, r);
      fprintf (f, "</failure>\n");
      break;
    case NC_ERROR: case NC_TIMEOUT:
      fprintf (f, "      <error type=\"%s\" message=\"", cls);
      xml_str (f, r->reason);
      fprintf (f, "\">");
      junit_details (f, r);
      fprintf (f, "</error>\n");
      break;
    case NC_SKIP: case NC_UNSUPPORTED: case NC_XFAIL:
      fprintf (f, "      <skipped message=\"%s: ", cls);
      xml_str (f, r->cls == NC_XFAIL ? r->expect_reason : r->reason);
      fprintf (f, "\"/>\n");
      break;
    default:
      break;
    }
    if (r->cls == NC_INFO || r->cls == NC_NONSTRICT || r->cls == NC_XFAIL) {
      fprintf (f, "      <system-out>%s\n", cls);
      junit_details (f, r);
      fprintf (f, "</system-out>\n");
    }
    fprintf (f, "    </testcase>\n");
  }
  fprintf (f, "  </testsuite>\n</testsuites>\n");
  return fclose (f);
}

/* ---- JSON ---- */

static json_t *
record_json (const struct nc_record *r)
{
  json_t *o = json_object (), *ids = json_array (), *fs = json_array ();
  json_t *log = json_array ();
  char id[128];

  for (size_t i = 0; nc_entry_id (r->e, i, id, sizeof id); i++)
    json_array_append_new (ids, json_string (id));
  for (size_t i = 0; i < r->findings.len; i++) {
    const struct nc_finding *fd = &r->findings.ptr[i];
    json_t *jf = json_object ();
    if (fd->info)
      json_object_set_new (jf, "kind", json_string ("info"));
    else {
      json_object_set_new (jf, "kind", json_string ("violation"));
      json_object_set_new (jf, "id", json_string (fd->id));
      json_object_set_new (jf, "level",
                           json_string (nbdp_level_name (fd->level)));
    }
    json_object_set_new (jf, "message", json_string (fd->msg));
    json_array_append_new (fs, jf);
  }
  for (size_t i = 0; i < r->log.len; i++)
    json_array_append_new (log, json_string (r->log.ptr[i]));
  json_object_set_new (o, "name", json_string (r->e->full_name));
  json_object_set_new (o, "suite", json_string (r->e->suite));
  json_object_set_new (o, "test", json_string (r->e->test->name));
  json_object_set_new (o, "summary",
                       json_string (r->e->test->summary
                                    ? r->e->test->summary : ""));
  json_object_set_new (o, "requirements", ids);
  json_object_set_new (o, "level",
                       json_string (nbdp_level_name (r->e->test->level)));
  json_object_set_new (o, "result", json_string (nc_class_name (r->cls)));
  json_object_set_new (o, "reason",
                       r->reason ? json_string (r->reason) : json_null ());
  json_object_set_new (o, "expected",
                       r->listed ? json_string (r->expect_reason)
                       : json_null ());
  json_object_set_new (o, "duration_ms",
                       json_integer ((json_int_t) (r->secs * 1000)));
  json_object_set_new (o, "findings", fs);
  json_object_set_new (o, "log", log);
  json_object_set_new (o, "reproduce",
                       r->reproduce ? json_string (r->reproduce)
                       : json_null ());
  return o;
}

int
nc_write_json (const char *path, const struct nc_run *run)
{
  json_t *root = json_object (), *target = json_object ();
  json_t *summary = json_object (), *tests = json_array ();
  int r;

  for (int c = 0; c < NC_NR_CLASSES; c++)
    json_object_set_new (summary, nc_class_name (c),
                         json_integer (run->counts[c]));
  if (run->cfg->uri)
    json_object_set_new (target, "uri", json_string (run->cfg->uri));
  if (run->cfg->server_cmd)
    json_object_set_new (target, "server", json_string (run->cfg->server_cmd));
  if (run->cfg->client_cmd)
    json_object_set_new (target, "client", json_string (run->cfg->client_cmd));
  if (run->cfg->client_read_cmd)
    json_object_set_new (target, "client_read",
                         json_string (run->cfg->client_read_cmd));
  if (run->cfg->client_write_cmd)
    json_object_set_new (target, "client_write",
                         json_string (run->cfg->client_write_cmd));
  for (size_t i = 0; i < run->n; i++)
    json_array_append_new (tests, record_json (&run->records[i]));
  json_object_set_new (root, "schema", json_string ("nbd-conform-results/1"));
  json_object_set_new (root, "tool", json_string ("nbd-conform"));
  json_object_set_new (root, "started", json_string (run->started));
  json_object_set_new (root, "duration_ms",
                       json_integer ((json_int_t) (run->secs * 1000)));
  json_object_set_new (root, "target", target);
  json_object_set_new (root, "strict", json_boolean (run->cfg->strict));
  json_object_set_new (root, "exit_status", json_integer (run->exit_status));
  json_object_set_new (root, "summary", summary);
  json_object_set_new (root, "tests", tests);
  r = json_dump_file (root, path, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (root);
  return r;
}
