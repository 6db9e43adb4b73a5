/* nbd-matrix: nbd-spy in front of a cell's server (spy-cell.h).
 *
 * The harness makes the spy's listening socket and hands it over by
 * socket activation, so there is nothing to wait for: the driver may
 * connect before the spy has even started.  The spy runs in its own
 * process group like the server adapter, with --exit-with-parent.  At
 * the end SIGTERM makes it wait briefly for open connections
 * (--drain-timeout), write its JSON summary and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "proc.h"
#include "sockets.h"
#include "spy-cell.h"

/* Seconds the spy waits for open connections after SIGTERM: by then the
 * driver's process group is gone, so its connections are closed and only
 * a server that does not close after the client's EOF keeps one open.
 */
#define SPY_DRAIN_SECONDS "2"
#define EXCERPT_LINE_MAX 200
/* The excerpt kept in results.json and shown in index.html: about 8 KiB
 * at most, like the HTML's view of each log.
 */
#define SPY_EXCERPT_HEAD 20
#define SPY_EXCERPT_TAIL 20

static void
set_msg (char *msg, size_t msglen, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
static void
set_msg (char *msg, size_t msglen, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, msglen, fmt, ap);
  va_end (ap);
}

void
spy_free (struct spy_proc *sy)
{
  free (sy->socket);
  free (sy->uri);
  free (sy->transcript);
  free (sy->json);
  free (sy->log);
  memset (sy, 0, sizeof *sy);
}

int
spy_start (struct spy_proc *sy, const char *spy, const char *scratch,
           const char *upstream, const char *export, const char *evid,
           const char *encoding, char *msg, size_t msglen)
{
  char *argv[24];
  size_t argc = 0;
  int lfd;

  memset (sy, 0, sizeof *sy);
  sy->socket = xasprintf ("%s/y", scratch);
  sy->uri = xasprintf ("nbd+unix:///%s?socket=%s", export, sy->socket);
  sy->transcript = xasprintf ("%s/spy.transcript", evid);
  sy->json = xasprintf ("%s/spy.json", evid);
  sy->log = xasprintf ("%s/spy.log", evid);
  /* Whatever an earlier run left in the evidence directory is not ours. */
  unlink (sy->json);

  /* The socket listens before the spy runs (handed over by socket
   * activation): the driver may connect at once, no readiness to wait
   * for.  Non-blocking, as the spy polls before it accepts.
   */
  lfd = nbdp_listen_unix (sy->socket);
  if (lfd == -1) {
    set_msg (msg, msglen, "listening on %s: %s", sy->socket,
             strerror (errno));
    return -1;
  }
  fcntl (lfd, F_SETFL, fcntl (lfd, F_GETFL) | O_NONBLOCK);
  argv[argc++] = (char *) spy;
  argv[argc++] = (char *) "--exit-with-parent";
  argv[argc++] = (char *) "-q";
  argv[argc++] = (char *) "--drain-timeout";
  argv[argc++] = (char *) SPY_DRAIN_SECONDS;
  argv[argc++] = (char *) "--listen";
  argv[argc++] = sy->socket;
  argv[argc++] = (char *) "--upstream-unix";
  argv[argc++] = (char *) upstream;
  argv[argc++] = (char *) "--transcript";
  argv[argc++] = sy->transcript;
  argv[argc++] = (char *) "--json";
  argv[argc++] = sy->json;
  if (encoding) {
    argv[argc++] = (char *) "--resize-encoding";
    argv[argc++] = (char *) encoding;
  }
  argv[argc] = NULL;
  sy->pid = proc_start_activated (argv, sy->log, NULL, lfd);
  /* Ours closed: when the spy exits, so does the socket, and a client
   * that tries to connect is refused instead of waiting.
   */
  close (lfd);
  if (sy->pid == -1) {
    set_msg (msg, msglen, "cannot start %s: %s", spy, strerror (errno));
    sy->pid = 0;
    return -1;
  }
  return 0;
}

/* The last bytes of the spy's stderr, on one line. */
static char *
log_tail (const struct spy_proc *sy)
{
  char *tail = read_file_tail (sy->log, 300);

  for (char *q = tail; q && *q; q++)
    if (*q == '\n')
      *q = '|';
  if (tail && !*tail) {
    free (tail);
    tail = NULL;
  }
  return tail ? tail : xstrdup ("(no output)");
}

int
spy_stop (struct spy_proc *sy, int deadline_ms, char *msg, size_t msglen)
{
  int r = 0;
  char *tail;

  if (sy->pid <= 0)
    return 0;
  if (proc_poll (sy->pid, &sy->status) == 1) {
    /* Nobody asked it to stop. */
    sy->reaped = true;
    tail = log_tail (sy);
    set_msg (msg, msglen, "nbd-spy exited during the cell (%s %d): %s",
             WIFEXITED (sy->status) ? "exit status" : "signal",
             WIFEXITED (sy->status) ? WEXITSTATUS (sy->status)
                                    : WTERMSIG (sy->status), tail);
    free (tail);
    r = -2;
  }
  else {
    kill (sy->pid, SIGTERM);
    if (proc_wait (sy->pid, deadline_ms, &sy->status, NULL) == 1)
      sy->reaped = true;
    if (!sy->reaped) {
      set_msg (msg, msglen, "nbd-spy did not exit within %d ms of SIGTERM: "
               "killed", deadline_ms);
      r = -1;
    }
    else if (!WIFEXITED (sy->status) || WEXITSTATUS (sy->status) != 0) {
      tail = log_tail (sy);
      set_msg (msg, msglen, "nbd-spy ended with %s %d: %s",
               WIFEXITED (sy->status) ? "exit status" : "signal",
               WIFEXITED (sy->status) ? WEXITSTATUS (sy->status)
                                      : WTERMSIG (sy->status), tail);
      free (tail);
      r = -1;
    }
  }
  /* Anything left of its group (nothing, normally) goes too. */
  proc_stop_group (sy->pid, 0, sy->reaped);
  sy->pid = 0;
  return r;
}

/* Append s (at most max bytes of it, up to its newline) and a newline. */
static void
put_line (char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
  size_t max = EXCERPT_LINE_MAX;
  bool cut = false;

  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    n--;
  if (n > max) {
    n = max;
    cut = true;
  }
  if (*len + n + 8 > *cap) {
    *cap = (*len + n + 8) * 2;
    *buf = realloc (*buf, *cap);
    if (!*buf)
      abort ();
  }
  memcpy (*buf + *len, s, n);
  *len += n;
  if (cut) {
    memcpy (*buf + *len, " [...]", 6);
    *len += 6;
  }
  (*buf)[(*len)++] = '\n';
  (*buf)[*len] = '\0';
}

char *
spy_excerpt (const char *path, size_t head, size_t tail)
{
  FILE *fp = fopen (path, "r");
  char *line = NULL, **ring, *buf = NULL, *note;
  size_t linecap = 0, nlines = 0, len = 0, cap = 0;
  ssize_t n;

  if (!fp)
    return NULL;
  ring = calloc (tail + 1, sizeof *ring);
  if (!ring)
    abort ();
  buf = xstrdup ("");
  cap = 1;
  while ((n = getline (&line, &linecap, fp)) != -1) {
    if (nlines < head)
      put_line (&buf, &len, &cap, line, (size_t) n);
    else if (tail > 0) {
      size_t k = (nlines - head) % tail;
      free (ring[k]);
      ring[k] = strndup (line, (size_t) n < EXCERPT_LINE_MAX + 2
                                ? (size_t) n : EXCERPT_LINE_MAX + 2);
    }
    nlines++;
  }
  free (line);
  fclose (fp);
  if (nlines > head) {
    size_t rest = nlines - head, shown = rest < tail ? rest : tail;
    size_t first = rest <= tail ? 0 : (nlines - head) % tail;
    if (rest > shown) {
      note = xasprintf ("[... %zu lines cut: the whole transcript has %zu "
                        "lines ...]", rest - shown, nlines);
      put_line (&buf, &len, &cap, note, strlen (note));
      free (note);
    }
    for (size_t i = 0; i < shown; i++) {
      const char *l = ring[(first + i) % tail];
      if (l)
        put_line (&buf, &len, &cap, l, strlen (l));
    }
  }
  for (size_t i = 0; i < tail; i++)
    free (ring[i]);
  free (ring);
  /* Keep results.json printable, as read_file_tail does for logs. */
  for (char *p = buf; *p; p++) {
    unsigned char c = (unsigned char) *p;
    if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x80)
      *p = '?';
  }
  return buf;
}

static char *
jdup (json_t *o, const char *key, const char *dflt)
{
  json_t *v = json_object_get (o, key);

  return xstrdup (json_is_string (v) ? json_string_value (v) : dflt);
}

static long
jlong (json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);

  return json_is_integer (v) ? (long) json_integer_value (v) : 0;
}

static void
add_error (struct cell_spy *s, const char *what)
{
  char *t;

  if (!s->error) {
    s->error = xstrdup (what);
    return;
  }
  t = xasprintf ("%s; %s", s->error, what);
  free (s->error);
  s->error = t;
}

struct cell_spy *
spy_collect (const struct spy_proc *sy, const char *transcript_rel,
             const char *error)
{
  struct cell_spy *s = calloc (1, sizeof *s);
  json_error_t je;
  json_t *o, *a, *v, *summary;
  size_t i;

  if (!s)
    abort ();
  if (error)
    add_error (s, error);
  s->transcript = xstrdup (transcript_rel);
  s->excerpt = spy_excerpt (sy->transcript, SPY_EXCERPT_HEAD,
                           SPY_EXCERPT_TAIL);
  if (!s->excerpt)
    add_error (s, "no transcript");
  o = json_load_file (sy->json, 0, &je);
  if (!o) {
    char *t = xasprintf ("no summary from nbd-spy (%s: %s)", sy->json,
                         je.text);
    add_error (s, t);
    free (t);
    return s;
  }
  summary = json_object_get (o, "summary");
  s->connections = jlong (summary, "connections");
  s->must = jlong (summary, "must");
  s->should = jlong (summary, "should");
  a = json_object_get (o, "violations");
  s->violations = calloc (CELL_SPY_VIOLATIONS_MAX + 1,
                          sizeof *s->violations);
  if (!s->violations)
    abort ();
  json_array_foreach (a, i, v) {
    struct spy_violation *sv;
    const char *party = json_string_value (json_object_get (v, "party"));
    const char *level = json_string_value (json_object_get (v, "level"));
    if (party && level && strcmp (party, "server") == 0 &&
        strcmp (level, "MUST") == 0)
      s->server_must++;
    if (s->nr_violations >= CELL_SPY_VIOLATIONS_MAX)
      continue;
    sv = &s->violations[s->nr_violations++];
    sv->id = jdup (v, "id", "?");
    sv->level = jdup (v, "level", "?");
    sv->direction = jdup (v, "direction", "?");
    sv->party = jdup (v, "party", "?");
    sv->message = jdup (v, "message", "");
    sv->conn = (int) jlong (v, "conn");
  }
  s->violations_omitted = s->must + s->should - (long) s->nr_violations;
  if (s->violations_omitted < 0)
    s->violations_omitted = 0;
  json_decref (o);
  return s;
}
