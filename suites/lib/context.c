/* nbd-conform: the child side of one test.  The runner forks; the child
 * starts the server (with --server), calls the test function with a fresh
 * context, and reports every finding as one line on a pipe to the runner:
 *
 *   P <pgid>        the server's process group (killed on timeout)
 *   D <dir>         the private temp dir (removed on timeout)
 *   F <level> <id> <message>    a finding (level MUST or SHOULD)
 *   I <message>     an INFO note
 *   L <message>     a log line
 *   E <how> <reason>            the end: DONE, SKIP, UNSUPPORTED, ERROR
 *
 * Fields are tab separated; tabs and newlines in messages become spaces.
 * A child that dies without an E line is an ERROR, one that outlives its
 * deadline a TIMEOUT (both decided by the runner).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "runner.h"
#include "client-script.h"
#include "io.h"
#include "uri.h"

static int report_fd = -1;
static struct nc_ctx *current;
static bool ending;

static void
report (const char *tag, const char *a, const char *b, const char *msg)
{
  char line[4096];
  int n;

  n = snprintf (line, sizeof line, "%s\t%s%s%s%s%s\n", tag, a ? a : "",
                a ? "\t" : "", b ? b : "", b ? "\t" : "", msg ? msg : "");
  if (n < 0)
    return;
  if ((size_t) n >= sizeof line)
    n = sizeof line - 1, line[n - 1] = '\n';
  /* Flatten the message part (everything after the tag and fields). */
  for (int i = (int) strlen (tag) + 1 + (a ? (int) strlen (a) + 1 : 0) +
         (b ? (int) strlen (b) + 1 : 0); i < n - 1; i++)
    if (line[i] == '\n' || line[i] == '\t' || line[i] == '\r')
      line[i] = ' ';
  if (report_fd >= 0 && nbdp_write_full (report_fd, line, n) == -1)
    _exit (3);
}

static void
vreport (const char *tag, const char *a, const char *b, const char *fmt,
         va_list ap)
{
  char msg[3000];

  vsnprintf (msg, sizeof msg, fmt, ap);
  report (tag, a, b, msg);
}

/* The test's first requirement ID, into buf. */
static const char *
first_id (struct nc_ctx *t, char *buf, size_t n)
{
  const char *ids = t->test->ids ? t->test->ids : "";
  size_t len;

  ids += strspn (ids, " \t,");
  len = strcspn (ids, " \t,");
  if (len == 0)
    return "UNKNOWN";
  if (len >= n)
    len = n - 1;
  memcpy (buf, ids, len);
  buf[len] = '\0';
  return buf;
}

void
nc_fail (struct nc_ctx *t, const char *id, const char *fmt, ...)
{
  char b[128];
  va_list ap;

  va_start (ap, fmt);
  vreport ("F", "MUST", id ? id : first_id (t, b, sizeof b), fmt, ap);
  va_end (ap);
}

void
nc_should (struct nc_ctx *t, const char *id, const char *fmt, ...)
{
  char b[128];
  va_list ap;

  va_start (ap, fmt);
  vreport ("F", "SHOULD", id ? id : first_id (t, b, sizeof b), fmt, ap);
  va_end (ap);
}

bool
nc_expect (struct nc_ctx *t, bool cond, const char *fmt, ...)
{
  char b[128];
  va_list ap;

  if (cond)
    return true;
  va_start (ap, fmt);
  vreport ("F", t->test->level == NBDP_MUST ? "MUST" : "SHOULD",
           first_id (t, b, sizeof b), fmt, ap);
  va_end (ap);
  return false;
}

void
nc_info (struct nc_ctx *t, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vreport ("I", NULL, NULL, fmt, ap);
  va_end (ap);
}

void
nc_log (struct nc_ctx *t, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vreport ("L", NULL, NULL, fmt, ap);
  va_end (ap);
}

void
nc_violations (struct nc_ctx *t, const struct nbdp_violations *v)
{
  for (size_t i = 0; i < v->n; i++)
    report ("F", nbdp_level_name (v->v[i].level), v->v[i].id, v->v[i].msg);
  if (v->dropped)
    report ("L", NULL, NULL, "further rule violations were dropped");
}

/* Stop the server, remove the temp dir, report the end and exit. */
static _Noreturn void
finish (struct nc_ctx *t, const char *how, const char *reason)
{
  if (ending)
    _exit (3);
  ending = true;
  nc_conns_close ();
  if (t && t->server_pid > 0) {
    nc_server_stop (t->server_pid);
    t->server_pid = 0;
  }
  if (t && t->dir)
    nc_rmtree (t->dir);
  report ("E", how, NULL, reason ? reason : "");
  close (report_fd);
  _exit (0);
}

static _Noreturn void
vfinish (struct nc_ctx *t, const char *how, const char *fmt, va_list ap)
{
  char msg[2048];

  vsnprintf (msg, sizeof msg, fmt, ap);
  finish (t, how, msg);
}

void
nc_unsupported (struct nc_ctx *t, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vfinish (t, "UNSUPPORTED", fmt, ap);
}

void
nc_skip (struct nc_ctx *t, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vfinish (t, "SKIP", fmt, ap);
}

void
nc_error (struct nc_ctx *t, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vfinish (t, "ERROR", fmt, ap);
}

void
nc_done (struct nc_ctx *t)
{
  finish (t, "DONE", NULL);
}

/* For the client suites (suites/lib/client-script.h): the test's own
 * process group (the client under test) and temp dir, cleaned up by
 * finish () or, if the test dies, by the runner.
 */
void
nc_own (struct nc_ctx *t, pid_t pgid, const char *dir)
{
  char line[64];

  if (dir) {
    free (t->dir);
    t->dir = strdup (dir);
    report ("D", dir, NULL, "");
  }
  if (pgid > 0) {
    t->server_pid = pgid;
    snprintf (line, sizeof line, "%d", (int) pgid);
    report ("P", line, NULL, "");
  }
}

static void
on_term (int sig)
{
  /* The runner gave up on us: take the server down with us. */
  if (current && current->server_pid > 0)
    kill (-current->server_pid, SIGKILL);
  _exit (4);
}

void
nc_child_run (const struct nc_config *cfg, const struct nc_entry *e, int fd)
{
  static struct nc_ctx t;
  char err[2048], line[64];
  int devnull;

  report_fd = fd;
  memset (&t, 0, sizeof t);
  t.cfg = cfg;
  t.test = e->test;
  t.suite = e->suite;
  current = &t;
  signal (SIGTERM, on_term);
  signal (SIGPIPE, SIG_IGN);
  /* stdout belongs to the TAP stream. */
  devnull = open ("/dev/null", O_WRONLY);
  if (devnull >= 0) {
    dup2 (devnull, STDOUT_FILENO);
    close (devnull);
  }

  if (cfg->server_cmd) {
    pid_t pid;
    if (nc_server_start (cfg->server_cmd, cfg->timeout > 1 ? cfg->timeout / 2
                         : 1, &t.dir, &t.socket, &pid, err,
                         sizeof err) == -1)
      nc_error (&t, "%s", err);
    t.server_pid = pid;
    snprintf (line, sizeof line, "%d", (int) pid);
    report ("P", line, NULL, "");
    report ("D", t.dir, NULL, "");
    t.uri = nbdp_uri_unix (cfg->export_name ? cfg->export_name : "",
                           t.socket);
    if (t.uri == NULL)
      nc_error (&t, "cannot format the URI: %s", strerror (errno));
  }
  else if (cfg->uri)
    t.uri = strdup (cfg->uri);
  e->test->fn (&t);
  nc_done (&t);
}
