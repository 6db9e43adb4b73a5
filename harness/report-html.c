/* nbd-matrix: index.html, one self-contained page (no scripts, no
 * external files): per scenario a grid of servers x clients coloured by
 * verdict; each cell links to its evidence (reason, reproducer, steps,
 * client, server and harness logs), shown as an overlay with :target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define HTML_LOG_MAX 8192

static void
h (FILE *fp, const char *s)
{
  for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
    switch (*p) {
    case '<': fputs ("&lt;", fp); break;
    case '>': fputs ("&gt;", fp); break;
    case '&': fputs ("&amp;", fp); break;
    case '"': fputs ("&quot;", fp); break;
    default: fputc (*p, fp);
    }
  }
}

/* The last HTML_LOG_MAX bytes of a log, escaped. */
static void
h_log (FILE *fp, const char *s)
{
  size_t n;

  if (!s || !*s) {
    fputs ("(empty)", fp);
    return;
  }
  n = strlen (s);
  if (n > HTML_LOG_MAX) {
    fprintf (fp, "[... %zu bytes cut; see the evidence directory ...]\n",
             n - HTML_LOG_MAX);
    s += n - HTML_LOG_MAX;
  }
  h (fp, s);
}

/* The spy's part of a cell's evidence: its violations and an excerpt of
 * its transcript, with a link to the whole file.
 */
static void
spy_evidence (FILE *fp, const struct cell *c)
{
  const struct cell_spy *s = c->spy;

  if (!s) {
    if (c->has_phases)
      fputs ("<h4>nbd-spy</h4><p><small>the client connected to the "
             "server directly (--no-spy)</small></p>\n", fp);
    return;
  }
  fprintf (fp, "<h4>nbd-spy: %ld violation%s (%ld MUST, %ld SHOULD), "
           "%ld connection%s</h4>\n", s->must + s->should,
           s->must + s->should == 1 ? "" : "s", s->must, s->should,
           s->connections, s->connections == 1 ? "" : "s");
  if (s->error) {
    fputs ("<p>incomplete: ", fp);
    h (fp, s->error);
    fputs ("</p>\n", fp);
  }
  if (s->nr_violations) {
    fputs ("<table class=\"sv\"><tr><th>ID</th><th>level</th><th>by</th>"
           "<th>conn</th><th>message</th></tr>\n", fp);
    for (size_t i = 0; i < s->nr_violations; i++) {
      const struct spy_violation *v = &s->violations[i];
      fputs ("<tr><td>", fp);
      h (fp, v->id);
      fputs ("</td><td>", fp);
      h (fp, v->level);
      fputs ("</td><td>", fp);
      h (fp, v->party);
      fputs (" (", fp);
      h (fp, v->direction);
      fprintf (fp, ")</td><td>#%d</td><td>", v->conn);
      h (fp, v->message);
      fputs ("</td></tr>\n", fp);
    }
    fputs ("</table>\n", fp);
    if (s->violations_omitted)
      fprintf (fp, "<p><small>%ld more not listed: see the "
               "transcript</small></p>\n", s->violations_omitted);
  }
  fputs ("<p><small>decoded transcript (first and last lines; ", fp);
  if (s->transcript) {
    fputs ("<a href=\"", fp);
    h (fp, s->transcript);
    fputs ("\">the whole transcript</a>", fp);
  }
  fputs (")</small></p><pre>", fp);
  /* Bounded already (spy-cell.c): the head matters as much as the tail. */
  h (fp, s->excerpt && *s->excerpt ? s->excerpt : "(empty)");
  fputs ("</pre>\n", fp);
}

static const char css[] =
  "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}"
  "table{border-collapse:collapse;margin:.5em 0 1.5em}"
  "th,td{border:1px solid #bbb;padding:3px 8px;text-align:left}"
  "th{background:#f3f3f3}"
  "td.v a{display:block;color:inherit;text-decoration:none;"
  "font-weight:600;font-size:12px;text-align:center}"
  ".PASS{background:#8d8}.FAIL{background:#f66}.XFAIL{background:#fbd}"
  ".XPASS{background:#c8f}.UNSUPPORTED{background:#ddd;color:#555}"
  ".SKIP{background:#f6f6f6;color:#999}.TIMEOUT{background:#fa4}"
  ".ERROR{background:#a22;color:#fff}"
  ".legend span{display:inline-block;padding:2px 8px;margin-right:4px}"
  ".ev{display:none}"
  ".ev:target{display:block;position:fixed;top:2%;left:4%;right:4%;"
  "bottom:2%;overflow:auto;background:#fff;border:2px solid #444;"
  "padding:1em 1.5em;box-shadow:0 0 0 100vmax rgba(0,0,0,.45);z-index:9}"
  ".ev pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;"
  "overflow:auto;max-height:40vh;white-space:pre-wrap}"
  ".close{float:right;font-size:16px}"
  "small{color:#666}"
  ".viol{color:#a00;font-weight:700;margin-left:3px}"
  "table.sv td{vertical-align:top;font-size:13px}";

int
report_html (const struct run *run, FILE *fp)
{
  char **servers = report_axis (run, "server");
  char **clients = report_axis (run, "client");
  char **scen = report_axis (run, "scenario");
  size_t counts[NR_VERDICTS];

  run_count (run, counts);
  fprintf (fp, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
           "charset=\"utf-8\"><title>nbd-matrix results</title>\n"
           "<style>%s</style></head><body>\n", css);
  fputs ("<h1>nbd-matrix results</h1>\n<p>", fp);
  h (fp, run->started);
  fputs (" &ndash; ", fp);
  h (fp, run->finished);
  fputs (" on ", fp);
  h (fp, run->host);
  if (run->shard) {
    fputs (", shard ", fp);
    h (fp, run->shard);
  }
  fputs ("<br><small>", fp);
  h (fp, run->command);
  fputs ("</small></p>\n<p class=\"legend\">", fp);
  for (int v = 0; v < NR_VERDICTS; v++)
    fprintf (fp, "<span class=\"%s\">%s %zu</span>", verdict_name (v),
             verdict_name (v), counts[v]);
  fprintf (fp, " <b>%zu cells</b></p>\n", run->nr_cells);

  fputs ("<h2>Implementations</h2>\n<table><tr><th>name</th><th>kind</th>"
         "<th>version</th><th>probe</th><th>note</th></tr>\n", fp);
  for (size_t i = 0; i < run->nr_impls; i++) {
    const struct impl_info *im = &run->impls[i];
    fputs ("<tr><td>", fp);
    h (fp, im->name);
    fputs ("</td><td>", fp);
    h (fp, im->kind);
    fputs ("</td><td>", fp);
    h (fp, im->version ? im->version : "not available");
    fputs ("</td><td><small>", fp);
    if (im->probe_log) {
      const char *last = im->probe_log, *p;
      /* the summary is the last non-empty line */
      for (p = im->probe_log; *p; p++)
        if (p[0] == '\n' && p[1])
          last = p + 1;
      h (fp, last);
    }
    fputs ("</small></td><td>", fp);
    h (fp, im->skip_reason);
    fputs ("</td></tr>\n", fp);
  }
  fputs ("</table>\n", fp);

  fputs ("<p>Scenarios:", fp);
  for (size_t s = 0; scen[s]; s++) {
    fputs (" <a href=\"#s-", fp);
    h (fp, scen[s]);
    fputs ("\">", fp);
    h (fp, scen[s]);
    fputs ("</a>", fp);
  }
  fputs ("</p>\n", fp);

  for (size_t s = 0; scen[s]; s++) {
    const struct scenario_info *si = run_find_scenario (run, scen[s]);
    bool any = false;

    for (size_t i = 0; i < run->nr_cells && !any; i++)
      any = strcmp (run->cells[i].scenario, scen[s]) == 0;
    if (!any)
      continue;
    fputs ("<h2 id=\"s-", fp);
    h (fp, scen[s]);
    fputs ("\">", fp);
    h (fp, scen[s]);
    fputs ("</h2>\n<p>", fp);
    if (si) {
      h (fp, si->summary);
      if (si->requirements && si->requirements[0]) {
        fputs ("<br><small>requirements:", fp);
        for (size_t r = 0; si->requirements[r]; r++) {
          fputc (' ', fp);
          h (fp, si->requirements[r]);
        }
        fputs ("</small>", fp);
      }
    }
    fputs ("</p>\n<table><tr><th>server \\ client</th>", fp);
    for (size_t c = 0; clients[c]; c++) {
      fputs ("<th>", fp);
      h (fp, clients[c]);
      fputs ("</th>", fp);
    }
    fputs ("</tr>\n", fp);
    for (size_t v = 0; servers[v]; v++) {
      fputs ("<tr><th>", fp);
      h (fp, servers[v]);
      fputs ("</th>", fp);
      for (size_t c = 0; clients[c]; c++) {
        const struct cell *cell = run_find_cell (run, clients[c], servers[v],
                                                 scen[s]);
        if (!cell) {
          fputs ("<td></td>", fp);
          continue;
        }
        char *sum = cell_spy_summary (cell->spy);
        fprintf (fp, "<td class=\"v %s\" title=\"", verdict_name (cell->verdict));
        h (fp, cell->reason);
        if (sum) {
          fputs (cell->reason && *cell->reason ? "&#10;" : "", fp);
          fputs ("nbd-spy: ", fp);
          h (fp, sum);
        }
        fprintf (fp, "\"><a href=\"#c%zu\">%s%s</a></td>",
                 (size_t) (cell - run->cells), verdict_short (cell->verdict),
                 sum ? "<span class=\"viol\">!</span>" : "");
        free (sum);
      }
      fputs ("</tr>\n", fp);
    }
    fputs ("</table>\n", fp);
  }

  /* The evidence overlays. */
  for (size_t i = 0; i < run->nr_cells; i++) {
    const struct cell *c = &run->cells[i];
    const struct scenario_info *si = run_find_scenario (run, c->scenario);

    fprintf (fp, "<section class=\"ev\" id=\"c%zu\"><a class=\"close\" "
             "href=\"#s-", i);
    h (fp, c->scenario);
    fputs ("\">close &#x2715;</a>\n<h3>", fp);
    h (fp, c->client);
    fputs (" &times; ", fp);
    h (fp, c->server);
    fputs (" &mdash; ", fp);
    h (fp, c->scenario);
    fprintf (fp, ": <span class=\"%s\">&nbsp;%s&nbsp;</span></h3>\n<p>",
             verdict_name (c->verdict), verdict_name (c->verdict));
    h (fp, c->reason && *c->reason ? c->reason : "(no reason: passed)");
    if (c->expectation) {
      fputs ("<br>known deviation: ", fp);
      h (fp, c->expectation);
    }
    fprintf (fp, "<br><small>%.2f s", c->seconds);
    if (c->flags >= 0)
      fprintf (fp, ", transmission flags 0x%04x", (unsigned) c->flags);
    if (c->evidence_dir) {
      fputs (", evidence: <a href=\"", fp);
      h (fp, c->evidence_dir);
      fputs ("/\">", fp);
      h (fp, c->evidence_dir);
      fputs ("</a>", fp);
    }
    fputs ("</small></p>\n<h4>Reproduce</h4><pre>", fp);
    h (fp, c->reproducer);
    fputs ("</pre>\n<h4>Steps</h4><pre>", fp);
    h (fp, si && si->text ? si->text : "(scenario text not recorded)");
    fputs ("</pre>\n", fp);
    spy_evidence (fp, c);
    fputs ("<h4>Client log</h4><pre>", fp);
    h_log (fp, c->client_log);
    fputs ("</pre>\n<h4>Server log</h4><pre>", fp);
    h_log (fp, c->server_log);
    fputs ("</pre>\n<h4>Harness log</h4><pre>", fp);
    h_log (fp, c->harness_log);
    fputs ("</pre></section>\n", fp);
  }
  fputs ("</body></html>\n", fp);
  strv_free (servers);
  strv_free (clients);
  strv_free (scen);
  return ferror (fp) ? -1 : 0;
}
