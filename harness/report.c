/* nbd-matrix: TAP 14, JUnit XML and Markdown from the result model, and
 * writing every output of a run directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* matrix.md lists at most this many cells with violations. */
#define MD_VIOLATION_CELLS_MAX 200

const char *
verdict_short (enum verdict v)
{
  switch (v) {
  case V_UNSUPPORTED: return "UNSUP";
  case V_TIMEOUT: return "TIME";
  default: return verdict_name (v);
  }
}

static void
axis_add (char ***v, size_t *n, const char *s)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp ((*v)[i], s) == 0)
      return;
  *v = realloc (*v, (*n + 2) * sizeof **v);
  if (!*v)
    abort ();
  (*v)[(*n)++] = xstrdup (s);
  (*v)[*n] = NULL;
}

char **
report_axis (const struct run *run, const char *what)
{
  char **v = calloc (1, sizeof *v);
  size_t n = 0;
  bool scen = strcmp (what, "scenario") == 0;

  if (!v)
    abort ();
  /* Known order first: implementations / scenarios as listed. */
  if (scen)
    for (size_t i = 0; i < run->nr_scenarios; i++)
      axis_add (&v, &n, run->scenarios[i].name);
  else
    for (size_t i = 0; i < run->nr_impls; i++)
      if (strcmp (run->impls[i].kind, what) == 0)
        axis_add (&v, &n, run->impls[i].name);
  for (size_t i = 0; i < run->nr_cells; i++) {
    const struct cell *c = &run->cells[i];
    axis_add (&v, &n, scen ? c->scenario
                      : strcmp (what, "server") == 0 ? c->server : c->client);
  }
  return v;
}

/* ---- TAP ---- */

static void
yaml_str (FILE *fp, const char *indent, const char *key, const char *val)
{
  fprintf (fp, "%s%s: \"", indent, key);
  for (const char *p = val ? val : ""; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf (fp, "\\%c", *p);
    else if (*p == '\n')
      fputs ("\\n", fp);
    else if ((unsigned char) *p < 0x20)
      fprintf (fp, "\\x%02x", (unsigned char) *p);
    else
      fputc (*p, fp);
  }
  fputs ("\"\n", fp);
}

/* Text in a TAP directive must not contain '#' or newlines. */
static void
directive_text (FILE *fp, const char *s)
{
  for (const char *p = s ? s : ""; *p; p++)
    fputc (*p == '#' || *p == '\n' ? ' ' : *p, fp);
}

int
report_tap (const struct run *run, FILE *fp)
{
  fprintf (fp, "TAP version 14\n1..%zu\n", run->nr_cells);
  for (size_t i = 0; i < run->nr_cells; i++) {
    const struct cell *c = &run->cells[i];
    bool ok = !verdict_is_bad (c->verdict) && c->verdict != V_XFAIL;

    fprintf (fp, "%s %zu - %s/%s/%s", ok ? "ok" : "not ok", i + 1,
             c->client, c->server, c->scenario);
    switch (c->verdict) {
    case V_SKIP:
      fputs (" # SKIP ", fp);
      directive_text (fp, c->reason);
      break;
    case V_UNSUPPORTED:
      fputs (" # SKIP UNSUPPORTED: ", fp);
      directive_text (fp, c->reason);
      break;
    case V_XFAIL:
      fputs (" # TODO XFAIL: ", fp);
      directive_text (fp, c->expectation);
      break;
    default:
      break;
    }
    fputc ('\n', fp);
    if (c->verdict != V_PASS && c->verdict != V_SKIP &&
        c->verdict != V_UNSUPPORTED) {
      fputs ("  ---\n", fp);
      yaml_str (fp, "  ", "verdict", verdict_name (c->verdict));
      yaml_str (fp, "  ", "reason", c->reason);
      if (c->expectation)
        yaml_str (fp, "  ", "expectation", c->expectation);
      yaml_str (fp, "  ", "reproducer", c->reproducer);
      yaml_str (fp, "  ", "evidence", c->evidence_dir);
      if (c->spy) {
        char *sum = cell_spy_summary (c->spy);
        yaml_str (fp, "  ", "spy_violations", sum ? sum : "none");
        yaml_str (fp, "  ", "spy_transcript", c->spy->transcript);
        if (c->spy->error)
          yaml_str (fp, "  ", "spy_error", c->spy->error);
        free (sum);
      }
      fputs ("  ...\n", fp);
    }
  }
  return ferror (fp) ? -1 : 0;
}

/* ---- JUnit ---- */

static void
xml_text (FILE *fp, const char *s)
{
  for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
    switch (*p) {
    case '<': fputs ("&lt;", fp); break;
    case '>': fputs ("&gt;", fp); break;
    case '&': fputs ("&amp;", fp); break;
    case '"': fputs ("&quot;", fp); break;
    case '\'': fputs ("&apos;", fp); break;
    default:
      if (*p < 0x20 && *p != '\n' && *p != '\t')
        fputc ('?', fp);        /* not representable in XML 1.0 */
      else
        fputc (*p, fp);
    }
  }
}

int
report_junit (const struct run *run, FILE *fp)
{
  char **scen = report_axis (run, "scenario");
  size_t counts[NR_VERDICTS];
  double total = 0;

  run_count (run, counts);
  for (size_t i = 0; i < run->nr_cells; i++)
    total += run->cells[i].seconds;
  fprintf (fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<testsuites name=\"nbd-matrix\" tests=\"%zu\" failures=\"%zu\" "
           "errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\">\n",
           run->nr_cells, counts[V_FAIL] + counts[V_XPASS],
           counts[V_ERROR] + counts[V_TIMEOUT],
           counts[V_SKIP] + counts[V_UNSUPPORTED] + counts[V_XFAIL], total);
  for (size_t s = 0; scen[s]; s++) {
    size_t n = 0, f = 0, e = 0, sk = 0;
    double t = 0;
    for (size_t i = 0; i < run->nr_cells; i++) {
      const struct cell *c = &run->cells[i];
      if (strcmp (c->scenario, scen[s]) != 0)
        continue;
      n++;
      t += c->seconds;
      f += c->verdict == V_FAIL || c->verdict == V_XPASS;
      e += c->verdict == V_ERROR || c->verdict == V_TIMEOUT;
      sk += c->verdict == V_SKIP || c->verdict == V_UNSUPPORTED ||
            c->verdict == V_XFAIL;
    }
    fputs (" <testsuite name=\"", fp);
    xml_text (fp, scen[s]);
    fprintf (fp, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
             "skipped=\"%zu\" time=\"%.3f\">\n", n, f, e, sk, t);
    fputs ("  <properties>\n", fp);
    for (size_t i = 0; i < run->nr_impls; i++) {
      fputs ("   <property name=\"version.", fp);
      xml_text (fp, run->impls[i].name);
      fputs ("\" value=\"", fp);
      xml_text (fp, run->impls[i].version ? run->impls[i].version
                : "(not available)");
      fputs ("\"/>\n", fp);
    }
    fputs ("  </properties>\n", fp);
    for (size_t i = 0; i < run->nr_cells; i++) {
      const struct cell *c = &run->cells[i];
      const char *tag = NULL;
      if (strcmp (c->scenario, scen[s]) != 0)
        continue;
      fputs ("  <testcase classname=\"nbd-matrix.", fp);
      xml_text (fp, c->scenario);
      fputs ("\" name=\"", fp);
      xml_text (fp, c->client);
      fputc ('/', fp);
      xml_text (fp, c->server);
      fputc ('/', fp);
      xml_text (fp, c->scenario);
      fprintf (fp, "\" time=\"%.3f\">\n", c->seconds);
      switch (c->verdict) {
      case V_FAIL: case V_XPASS: tag = "failure"; break;
      case V_ERROR: case V_TIMEOUT: tag = "error"; break;
      case V_SKIP: case V_UNSUPPORTED: case V_XFAIL: tag = "skipped"; break;
      default: break;
      }
      if (tag) {
        fprintf (fp, "   <%s type=\"%s\" message=\"", tag,
                 verdict_name (c->verdict));
        xml_text (fp, c->verdict == V_XFAIL || c->verdict == V_XPASS
                  ? c->expectation : c->reason);
        fputs ("\">", fp);
        xml_text (fp, c->reason);
        if (c->spy) {
          char *sum = cell_spy_summary (c->spy);
          fputs ("\nnbd-spy: ", fp);
          xml_text (fp, sum ? sum : "no violation");
          fputs ("; transcript ", fp);
          xml_text (fp, c->spy->transcript);
          free (sum);
        }
        fputs ("\nreproduce: ", fp);
        xml_text (fp, c->reproducer);
        fprintf (fp, "</%s>\n", tag);
      }
      if (c->client_log && *c->client_log) {
        fputs ("   <system-out>", fp);
        xml_text (fp, c->client_log);
        fputs ("</system-out>\n", fp);
      }
      if (c->server_log && *c->server_log) {
        fputs ("   <system-err>", fp);
        xml_text (fp, c->server_log);
        fputs ("</system-err>\n", fp);
      }
      fputs ("  </testcase>\n", fp);
    }
    fputs (" </testsuite>\n", fp);
  }
  fputs ("</testsuites>\n", fp);
  strv_free (scen);
  return ferror (fp) ? -1 : 0;
}

/* ---- Markdown ---- */

static void
md_text (FILE *fp, const char *s)
{
  for (const char *p = s ? s : ""; *p; p++) {
    if (*p == '|')
      fputs ("\\|", fp);
    else if (*p == '\n')
      fputc (' ', fp);
    else
      fputc (*p, fp);
  }
}

int
report_markdown (const struct run *run, FILE *fp)
{
  char **servers = report_axis (run, "server");
  char **clients = report_axis (run, "client");
  char **scen = report_axis (run, "scenario");
  size_t counts[NR_VERDICTS];

  run_count (run, counts);
  fprintf (fp, "# nbd-matrix results\n\n");
  fprintf (fp, "Run %s to %s on %s%s%s.  Command: `%s`.\n\n",
           run->started ? run->started : "?",
           run->finished ? run->finished : "?", run->host ? run->host : "?",
           run->shard ? ", shard " : "", run->shard ? run->shard : "",
           run->command ? run->command : "?");
  fputs ("| verdict | cells |\n|---|---:|\n", fp);
  for (int v = 0; v < NR_VERDICTS; v++)
    fprintf (fp, "| %s | %zu |\n", verdict_name (v), counts[v]);
  fprintf (fp, "| total | %zu |\n\n", run->nr_cells);

  fputs ("## Implementations\n\n| name | kind | version | flags "
         "(probe) | note |\n|---|---|---|---|---|\n", fp);
  for (size_t i = 0; i < run->nr_impls; i++) {
    const struct impl_info *im = &run->impls[i];
    fputs ("| ", fp);
    md_text (fp, im->name);
    fprintf (fp, " | %s | ", im->kind);
    md_text (fp, im->version ? im->version : "not available");
    fputs (" | ", fp);
    if (im->probe_flags >= 0)
      fprintf (fp, "0x%04x", (unsigned) im->probe_flags);
    fputs (" | ", fp);
    md_text (fp, im->skip_reason ? im->skip_reason : "");
    fputs (" |\n", fp);
  }

  for (size_t s = 0; scen[s]; s++) {
    const struct scenario_info *si = run_find_scenario (run, scen[s]);
    bool any = false;
    for (size_t i = 0; i < run->nr_cells && !any; i++)
      any = strcmp (run->cells[i].scenario, scen[s]) == 0;
    if (!any)
      continue;
    fprintf (fp, "\n## %s\n\n", scen[s]);
    if (si && si->summary)
      fprintf (fp, "%s\n\n", si->summary);
    if (si && si->requirements && si->requirements[0]) {
      fputs ("Requirements:", fp);
      for (size_t r = 0; si->requirements[r]; r++)
        fprintf (fp, " %s", si->requirements[r]);
      fputs ("\n\n", fp);
    }
    fputs ("| server \\ client |", fp);
    for (size_t c = 0; clients[c]; c++)
      fprintf (fp, " %s |", clients[c]);
    fputs ("\n|---|", fp);
    for (size_t c = 0; clients[c]; c++)
      fputs ("---|", fp);
    fputc ('\n', fp);
    for (size_t v = 0; servers[v]; v++) {
      fprintf (fp, "| %s |", servers[v]);
      for (size_t c = 0; clients[c]; c++) {
        const struct cell *cell = run_find_cell (run, clients[c], servers[v],
                                                 scen[s]);
        fprintf (fp, " %s |", cell ? verdict_short (cell->verdict) : "");
      }
      fputc ('\n', fp);
    }
  }

  fputs ("\n## Cells that did not pass\n\n", fp);
  for (size_t i = 0; i < run->nr_cells; i++) {
    const struct cell *c = &run->cells[i];
    if (c->verdict == V_PASS || c->verdict == V_SKIP)
      continue;
    fprintf (fp, "- **%s** %s x %s %s: ", verdict_name (c->verdict),
             c->client, c->server, c->scenario);
    md_text (fp, c->reason);
    if (c->expectation) {
      fputs (" (known: ", fp);
      md_text (fp, c->expectation);
      fputs (")", fp);
    }
    if (c->spy) {
      char *sum = cell_spy_summary (c->spy);
      if (sum || c->spy->error) {
        fputs (". nbd-spy: ", fp);
        md_text (fp, sum ? sum : "no violation");
        if (c->spy->error) {
          fputs (" (", fp);
          md_text (fp, c->spy->error);
          fputs (")", fp);
        }
        fputs (", transcript `", fp);
        md_text (fp, c->spy->transcript);
        fputs ("`", fp);
      }
      free (sum);
    }
    fputc ('\n', fp);
  }

  /* Violations do not decide a verdict by themselves (results/
   * schema-matrix.md): every cell where the spy saw one is listed.
   */
  {
    size_t n = 0, shown = 0;
    for (size_t i = 0; i < run->nr_cells; i++)
      n += run->cells[i].spy &&
           run->cells[i].spy->must + run->cells[i].spy->should > 0;
    fprintf (fp, "\n## Protocol violations seen by nbd-spy\n\n");
    if (n == 0)
      fputs ("None.\n", fp);
    for (size_t i = 0; i < run->nr_cells && n; i++) {
      const struct cell *c = &run->cells[i];
      char *sum;
      if (!c->spy || c->spy->must + c->spy->should == 0)
        continue;
      if (shown++ == MD_VIOLATION_CELLS_MAX) {
        fprintf (fp, "- ... and %zu more cells (results.json has them "
                 "all)\n", n - MD_VIOLATION_CELLS_MAX);
        break;
      }
      sum = cell_spy_summary (c->spy);
      fprintf (fp, "- %s %s x %s %s: ", verdict_name (c->verdict),
               c->client, c->server, c->scenario);
      md_text (fp, sum);
      fputc ('\n', fp);
      free (sum);
    }
  }
  strv_free (servers);
  strv_free (clients);
  strv_free (scen);
  return ferror (fp) ? -1 : 0;
}

/* ---- all of them ---- */

static int
write_one (const struct run *run, const char *dir, const char *name,
           int (*fn) (const struct run *, FILE *))
{
  char *path = xasprintf ("%s/%s", dir, name);
  FILE *fp = fopen (path, "w");
  int r;

  if (!fp) {
    fprintf (stderr, "nbd-matrix: %s: %s\n", path, strerror (errno));
    free (path);
    return -1;
  }
  r = fn (run, fp);
  if (fclose (fp) == EOF)
    r = -1;
  if (r == -1)
    fprintf (stderr, "nbd-matrix: writing %s failed\n", path);
  free (path);
  return r;
}

int
report_all (const struct run *run, const char *dir)
{
  char *path = xasprintf ("%s/results.json", dir);
  int r = 0;

  if (results_write_json (run, path) == -1) {
    fprintf (stderr, "nbd-matrix: %s: %s\n", path, strerror (errno));
    r = -1;
  }
  free (path);
  r |= write_one (run, dir, "results.tap", report_tap);
  r |= write_one (run, dir, "junit.xml", report_junit);
  r |= write_one (run, dir, "matrix.md", report_markdown);
  r |= write_one (run, dir, "index.html", report_html);
  return r;
}
