/* nbd-matrix: running one cell.
 *
 * Private scratch directory and Unix socket; server adapter in its own
 * process group; wait for the socket (connect retried against a deadline,
 * woken by inotify and the server's pidfd, no fixed sleeps); probe the
 * negotiated flags; run the client driver with a deadline; check the
 * server survived; verify the content on a second connection; stop the
 * server group and sweep anything left.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nbd-proto.h"
#include "sockets.h"
#include "cell.h"
#include "proc.h"
#include "spy-cell.h"
#include "verify.h"

#define LOG_TAIL (64 * 1024)
#define START_DEADLINE_MS 30000
#define STOP_GRACE_MS 3000
/* The spy waits 2 s for open connections (--drain-timeout), then cuts
 * them and writes its summary.
 */
#define SPY_STOP_DEADLINE_MS 10000

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st; (void) flag; (void) ftw;
  remove (path);
  return 0;
}

void
rm_rf (const char *path)
{
  if (path)
    nftw (path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
safe_name (const char *name)
{
  char *s = xstrdup (name);

  for (char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
      *p = '_';
  return s;
}

static char *
adapter_path (const char *top, const char *adapter)
{
  if (adapter[0] == '/')
    return xstrdup (adapter);
  return xasprintf ("%s/%s", top, adapter);
}

/* Last lines of a log, for a one-line reason. */
static char *
last_lines (const char *path, int nlines)
{
  char *text = read_file_tail (path, 4096), *p, *r;
  int seen = 0;

  if (!text || !*text) {
    free (text);
    return xstrdup ("(empty log)");
  }
  p = text + strlen (text);
  while (p > text && p[-1] == '\n')
    *--p = '\0';
  while (p > text) {
    if (p[-1] == '\n' && ++seen == nlines)
      break;
    p--;
  }
  r = xstrdup (p);
  for (char *q = r; *q; q++)
    if (*q == '\n')
      *q = '|';
  free (text);
  return r;
}

/* Closing an inotify descriptor that had a watch waits for an RCU grace
 * period in the kernel: 8 to 17 ms here, a third of a cell's overhead.
 * Nothing needs to wait for it, so a thread does it while the cell goes
 * on (the descriptor leaves the table at once, so no child inherits it);
 * server_stop joins the thread (long finished by then), so that the cell
 * process never exits with it running (a pidfd does not report the exit
 * of a process whose last thread was not its leader on older kernels).
 */
static void *
closer (void *arg)
{
  close ((int) (intptr_t) arg);
  return NULL;
}

static void
close_inotify (struct server_proc *sp, int fd)
{
  if (fd < 0)
    return;
  if (pthread_create (&sp->closer, NULL, closer, (void *) (intptr_t) fd)
      == 0)
    sp->has_closer = true;
  else
    close (fd);
}

/* Try to connect once; the connected fd, or -1. */
static int
socket_ready (const char *path)
{
  return nbdp_connect_unix (path);
}

int
server_start (struct server_proc *sp, const struct impl_info *server,
              const char *top, const char *tmp_root, uint64_t size,
              const char *log_path, int deadline_ms, volatile bool *stop,
              int *fd_out, char *msg, size_t msglen)
{
  char *tmpl, sizebuf[32], *adapter, *tmp_env;
  char *argv[8], *envv[2];
  size_t argc = 0;
  int ino = -1, pfd = -1;
  long long deadline = proc_now_ms () + deadline_ms;
  bool socket_seen = false;
  int ret = -1;

  memset (sp, 0, sizeof *sp);
  tmpl = xasprintf ("%s/nbdm-XXXXXX", tmp_root);
  if (!mkdtemp (tmpl)) {
    snprintf (msg, msglen, "mkdtemp %s: %s", tmpl, strerror (errno));
    free (tmpl);
    return -1;
  }
  sp->scratch = tmpl;
  sp->dir = xasprintf ("%s/d", tmpl);
  sp->socket = xasprintf ("%s/s", tmpl);
  sp->uri = xasprintf ("nbd+unix:///%s?socket=%s", MATRIX_EXPORT, sp->socket);
  if (mkdir (sp->dir, 0700) == -1) {
    snprintf (msg, msglen, "mkdir %s: %s", sp->dir, strerror (errno));
    goto err;
  }
  ino = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  if (ino >= 0)
    inotify_add_watch (ino, sp->scratch, IN_CREATE | IN_MOVED_TO);

  snprintf (sizebuf, sizeof sizebuf, "%" PRIu64, size);
  adapter = adapter_path (top, server->adapter);
  argv[argc++] = adapter;
  argv[argc++] = (char *) "start";
  argv[argc++] = sp->socket;
  argv[argc++] = sp->dir;
  argv[argc++] = sizebuf;
  if (server->profile)
    argv[argc++] = server->profile;
  argv[argc] = NULL;
  /* Whatever the server puts in TMPDIR goes with the scratch directory,
   * even when it dies without cleaning up (nbdkit's sh plugin, ...).
   */
  tmp_env = xasprintf ("TMPDIR=%s/t", sp->scratch);
  mkdir (tmp_env + 7, 0700);
  envv[0] = tmp_env;
  envv[1] = NULL;
  sp->pid = proc_start (argv, log_path, envv);
  free (tmp_env);
  free (adapter);
  if (sp->pid == -1) {
    snprintf (msg, msglen, "fork: %s", strerror (errno));
    goto err;
  }
#ifdef SYS_pidfd_open
  pfd = (int) syscall (SYS_pidfd_open, sp->pid, 0);
#endif

  for (;;) {
    struct pollfd p[2];
    int np = 0, left;
    char evbuf[4096];

    int fd = socket_ready (sp->socket);

    if (fd >= 0) {
      /* The connection that proved readiness becomes the probe's, so the
       * server never sees a connection dropped before the handshake.
       */
      if (fd_out)
        *fd_out = fd;
      else
        close (fd);
      break;
    }
    if (proc_poll (sp->pid, &sp->status) == 1) {
      char *tail;
      sp->reaped = true;
      if (WIFEXITED (sp->status) && WEXITSTATUS (sp->status) == 3) {
        /* The adapter says this configuration is not one it serves. */
        tail = last_lines (log_path, 1);
        snprintf (msg, msglen, "%s", tail);
        free (tail);
        ret = -2;
        goto err;
      }
      tail = last_lines (log_path, 3);
      snprintf (msg, msglen, "server adapter exited before its socket "
                "accepted connections (%s %d); its log ends: %s",
                WIFEXITED (sp->status) ? "exit status" : "signal",
                WIFEXITED (sp->status) ? WEXITSTATUS (sp->status)
                                       : WTERMSIG (sp->status), tail);
      free (tail);
      goto err;
    }
    left = (int) (deadline - proc_now_ms ());
    if (left <= 0 || (stop && *stop)) {
      snprintf (msg, msglen, "server socket %s did not accept connections "
                "within %d ms", sp->socket, deadline_ms);
      goto err;
    }
    if (access (sp->socket, F_OK) == 0)
      socket_seen = true;
    if (ino >= 0 && !socket_seen)
      p[np++] = (struct pollfd) { .fd = ino, .events = POLLIN };
    if (pfd >= 0)
      p[np++] = (struct pollfd) { .fd = pfd, .events = POLLIN };
    /* Once the socket file exists the server is between bind and listen:
     * retry the connect shortly (a backoff, not a guess at readiness).
     * Without inotify, the same backoff polls for the file.
     */
    if (socket_seen || ino < 0)
      left = left < 20 ? left : 20;
    else
      left = left < 1000 ? left : 1000;
    poll (p, (nfds_t) np, left);
    if (ino >= 0)
      while (read (ino, evbuf, sizeof evbuf) > 0)
        ;
  }
  close_inotify (sp, ino);
  if (pfd >= 0)
    close (pfd);
  return 0;

 err:
  if (ino >= 0)
    close (ino);
  if (pfd >= 0)
    close (pfd);
  server_stop (sp);
  return ret;
}

bool
server_alive (struct server_proc *sp)
{
  if (sp->reaped)
    return false;
  if (proc_poll (sp->pid, &sp->status) == 1) {
    sp->reaped = true;
    return false;
  }
  return true;
}

void
server_stop (struct server_proc *sp)
{
  if (sp->pid > 0)
    proc_stop_group (sp->pid, STOP_GRACE_MS, sp->reaped);
  sp->pid = 0;
  /* Daemons that left the group (nbd-server) were reparented to us. */
  proc_sweep_descendants ();
  rm_rf (sp->scratch);
  if (sp->has_closer)
    pthread_join (sp->closer, NULL);
  free (sp->scratch);
  free (sp->dir);
  free (sp->socket);
  free (sp->uri);
  memset (sp, 0, sizeof *sp);
}

/* ---- the cell ---- */

struct ctx {
  struct cell *c;
  FILE *hlog;                   /* harness log */
  char *evid;                   /* evidence directory (absolute) */
  char *server_log, *client_log, *harness_log;
  long long t_client0, t_client1, t_verify1;   /* proc_now_ms; 0 unset */
  long long ms_spy_start, ms_spy_stop;          /* time spent on the spy */
  struct spy_proc spy;
  bool spy_running;
  bool spy_died;                /* it exited before it was stopped */
  char *spy_error;              /* the spy could not start or stop */
};

static void __attribute__ ((format (printf, 3, 4)))
verdict (struct ctx *x, enum verdict v, const char *fmt, ...)
{
  va_list ap;
  char *r;

  va_start (ap, fmt);
  if (vasprintf (&r, fmt, ap) == -1)
    r = NULL;
  va_end (ap);
  x->c->verdict = v;
  free (x->c->reason);
  x->c->reason = r;
  if (x->hlog)
    fprintf (x->hlog, "verdict: %s%s%s\n", verdict_name (v), r && *r ? ": " : "",
             r ? r : "");
}

/* Map adapter cap words to the flag they promise. */
static const struct { const char *cap; int bit; } cap_flags[] = {
  { "flush", 2 }, { "fua", 3 }, { "trim", 5 }, { "zero", 6 },
  { "multi-conn", 8 }, { "resize", 9 }, { "cache", 10 }, { "fast-zero", 11 },
};

static const char *
cap_for_bit (int bit)
{
  for (size_t i = 0; i < sizeof cap_flags / sizeof cap_flags[0]; i++)
    if (cap_flags[i].bit == bit)
      return cap_flags[i].cap;
  return NULL;
}

/* Decide from negotiated flags; returns true if the cell may go on. */
static bool
check_flags (struct ctx *x, const struct cell_job *job, int flags)
{
  for (int bit = 0; bit < 16; bit++) {
    const char *cap;
    if (!(job->scn->server_flags & (1 << bit)) || (flags & (1 << bit)))
      continue;
    cap = cap_for_bit (bit);
    if (cap && strv_contains (job->server->caps, cap)) {
      verdict (x, V_FAIL, "server: adapter declares '%s' but the server did "
               "not advertise NBD_FLAG_%s", cap, scn_flag_name ((unsigned) bit));
      return false;
    }
    verdict (x, V_UNSUPPORTED, "server: no NBD_FLAG_%s",
             scn_flag_name ((unsigned) bit));
    return false;
  }
  /* Advertised but not declared: worth a note, not a verdict. */
  for (size_t i = 0; i < sizeof cap_flags / sizeof cap_flags[0]; i++)
    if ((flags & (1 << cap_flags[i].bit)) &&
        !strv_contains (job->server->caps, cap_flags[i].cap))
      fprintf (x->hlog, "note: server advertises NBD_FLAG_%s but the adapter "
               "does not declare '%s'\n",
               scn_flag_name ((unsigned) cap_flags[i].bit), cap_flags[i].cap);
  return true;
}

/* The line of the driver's output that explains an exit status. */
static char *
driver_reason (const char *log_path, const char *prefix)
{
  char *text = read_file_tail (log_path, LOG_TAIL), *line, *found = NULL;
  char *save = NULL;

  if (!text)
    return NULL;
  for (line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    if (strncmp (line, prefix, strlen (prefix)) == 0)
      found = line + strlen (prefix);
  if (found) {
    while (*found == ' ')
      found++;
    found = xstrdup (found);
  }
  free (text);
  return found;
}

/* The draft RESIZE encoding the server's profile speaks (adapter cap
 * encoding:NAME), for the spy to judge in; NULL: let it guess.
 */
static const char *
server_encoding (const struct cell_job *job)
{
  for (size_t i = 0; job->server->caps && job->server->caps[i]; i++)
    if (strncmp (job->server->caps[i], "encoding:", 9) == 0)
      return job->server->caps[i] + 9;
  return NULL;
}

/* Put nbd-spy in front of the server; the URI the driver gets.  If the
 * spy cannot start, the driver connects directly and the cell records
 * why (the spy observes: it does not decide whether the cell runs).
 */
static const char *
spy_begin (struct ctx *x, const struct cell_job *job, struct server_proc *sp)
{
  long long t0 = proc_now_ms ();
  char msg[768];

  if (!job->spy)
    return sp->uri;
  if (spy_start (&x->spy, job->spy, sp->scratch, sp->socket, MATRIX_EXPORT,
                 x->evid, server_encoding (job), msg, sizeof msg) == -1) {
    fprintf (x->hlog, "spy: %s; the client connects to the server "
             "directly\n", msg);
    x->spy_error = xstrdup (msg);
    x->ms_spy_start = proc_now_ms () - t0;
    return sp->uri;
  }
  x->spy_running = true;
  x->ms_spy_start = proc_now_ms () - t0;
  fprintf (x->hlog, "spy: listening on %s, upstream %s, transcript "
           "%s/spy.transcript (%lld ms to start)\n", x->spy.socket,
           sp->socket, x->c->evidence_dir, x->ms_spy_start);
  return x->spy.uri;
}

/* Stop the spy (the driver is gone) and read its evidence into the cell. */
static void
spy_end (struct ctx *x)
{
  long long t0 = proc_now_ms ();
  char msg[256], *rel, *sum;
  struct cell_spy *s;

  if (!x->spy_running && !x->spy_error)
    return;
  if (x->spy_running) {
    int r = spy_stop (&x->spy, SPY_STOP_DEADLINE_MS, msg, sizeof msg);
    if (r < 0) {
      fprintf (x->hlog, "spy: %s\n", msg);
      x->spy_error = xstrdup (msg);
      x->spy_died = r == -2;
    }
  }
  rel = xasprintf ("%s/spy.transcript", x->c->evidence_dir);
  s = spy_collect (&x->spy, rel, x->spy_error);
  free (rel);
  x->spy_running = false;
  free (x->spy_error);
  x->spy_error = NULL;
  spy_free (&x->spy);
  x->ms_spy_stop = proc_now_ms () - t0;
  sum = cell_spy_summary (s);
  fprintf (x->hlog, "spy: %ld connection%s, %s (%lld ms to stop)\n",
           s->connections, s->connections == 1 ? "" : "s",
           sum ? sum : "no violation", x->ms_spy_stop);
  for (size_t i = 0; i < s->nr_violations; i++)
    fprintf (x->hlog, "spy: #%d %s %s %s by the %s: %s\n",
             s->violations[i].conn, s->violations[i].direction,
             s->violations[i].id, s->violations[i].level,
             s->violations[i].party, s->violations[i].message);
  free (sum);
  x->c->spy = s;
}

/* The rule engine judges too: a MUST the server broke, seen by the spy,
 * makes a cell that passed otherwise FAIL (results/schema-matrix.md
 * "Verdicts").  SHOULD-level findings and the client's violations are
 * recorded, never a verdict.  True when it decided FAIL.
 */
static bool
spy_server_broke_must (struct ctx *x)
{
  const struct cell_spy *s = x->c->spy;
  const struct spy_violation *v = NULL;

  if (!s || s->server_must == 0)
    return false;
  for (size_t i = 0; i < s->nr_violations && !v; i++)
    if (strcmp (s->violations[i].party, "server") == 0 &&
        strcmp (s->violations[i].level, "MUST") == 0)
      v = &s->violations[i];
  if (v)
    verdict (x, V_FAIL, "server: broke %s (MUST), seen by nbd-spy: %s%s",
             v->id, v->message, s->server_must > 1
             ? " (and more MUST violations by the server: see the spy "
               "evidence)" : "");
  else
    verdict (x, V_FAIL, "server: broke %ld MUST requirement%s, seen by "
             "nbd-spy (not listed: see the transcript)", s->server_must,
             s->server_must == 1 ? "" : "s");
  return true;
}

static void
run_driver_and_verify (struct ctx *x, const struct cell_job *job,
                       struct server_proc *sp, volatile bool *stop)
{
  char *driver = adapter_path (job->top, job->client->adapter);
  char *adapter = adapter_path (job->top, job->server->adapter);
  char *resize_env = xasprintf ("NBD_MATRIX_RESIZE_CMD='%s' resize '%s'",
                                adapter, sp->dir);
  char *top_env = xasprintf ("NBD_MATRIX_TOP=%s", job->top);
  char *flags_env = xasprintf ("NBD_MATRIX_FLAGS=%d", x->c->flags);
  char *caps_env = xstrdup ("NBD_MATRIX_SERVER_CAPS=");
  /* The driver's temporary files, too, live in the scratch directory. */
  char *tmp_env = xasprintf ("TMPDIR=%s/ct", sp->scratch);
  char *envv[] = { resize_env, top_env, flags_env, caps_env, tmp_env, NULL };
  char *argv[] = { driver, job->scn->path, NULL, NULL };
  const char *uri;
  pid_t pid;
  int status = 0, w;
  char *why;

  for (size_t i = 0; job->server->caps && job->server->caps[i]; i++) {
    char *t = xasprintf ("%s%s%s", caps_env, i ? " " : "",
                         job->server->caps[i]);
    free (caps_env);
    caps_env = t;
  }
  envv[3] = caps_env;
  mkdir (tmp_env + 7, 0700);
  uri = spy_begin (x, job, sp);
  argv[2] = (char *) uri;
  fprintf (x->hlog, "client: %s %s '%s' (timeout %d ms)\n", driver,
           job->scn->path, uri, job->timeout_ms);
  x->t_client0 = proc_now_ms ();
  pid = proc_start (argv, x->client_log, envv);
  if (pid == -1) {
    verdict (x, V_ERROR, "cannot start the client driver: %s",
             strerror (errno));
    goto out;
  }
  w = proc_wait (pid, job->timeout_ms, &status, stop);
  x->t_client1 = proc_now_ms ();
  if (w != 1) {
    proc_stop_group (pid, 1000, false);
    spy_end (x);
    verdict (x, V_TIMEOUT, "client driver did not finish within %d s%s",
             job->timeout_ms / 1000, stop && *stop ? " (run interrupted)" : "");
    goto out;
  }
  /* Whatever the driver left in its group goes too; then the spy, whose
   * connections have ended with the driver's.
   */
  kill (-pid, SIGKILL);
  spy_end (x);
  fprintf (x->hlog, "client: exit %s %d\n",
           WIFEXITED (status) ? "status" : "signal",
           WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));

  /* A driver that failed may have failed because the server is dying:
   * its sockets close before its exit is visible, so give the exit a
   * moment to become visible (an event wait, not a sleep).
   */
  if (!(WIFEXITED (status) && (WEXITSTATUS (status) == 0 ||
                               WEXITSTATUS (status) == 3)) &&
      !sp->reaped && proc_wait (sp->pid, 500, &sp->status, NULL) == 1)
    sp->reaped = true;
  if (!server_alive (sp)) {
    char *tail = last_lines (x->server_log, 3);
    verdict (x, V_ERROR, "server exited during the cell (%s %d); its log "
             "ends: %s", WIFEXITED (sp->status) ? "exit status" : "signal",
             WIFEXITED (sp->status) ? WEXITSTATUS (sp->status)
                                    : WTERMSIG (sp->status), tail);
    free (tail);
    goto out;
  }
  if (x->spy_died) {
    /* The driver's connections went through it: the harness broke. */
    verdict (x, V_ERROR, "%s", x->c->spy && x->c->spy->error
             ? x->c->spy->error : "nbd-spy exited during the cell");
    goto out;
  }
  if (!WIFEXITED (status)) {
    verdict (x, V_ERROR, "client driver killed by signal %d",
             WTERMSIG (status));
    goto out;
  }
  switch (WEXITSTATUS (status)) {
  case 0:
    break;
  case 1:
    why = driver_reason (x->client_log, "FAIL:");
    if (!why)
      why = last_lines (x->client_log, 1);
    verdict (x, V_FAIL, "client: %s", why);
    free (why);
    goto out;
  case 3:
    why = driver_reason (x->client_log, "UNSUPPORTED:");
    if (why && strncmp (why, "server:", 7) != 0 &&
        strncmp (why, "client:", 7) != 0) {
      char *t = xasprintf ("client: %s", why);
      free (why);
      why = t;
    }
    verdict (x, V_UNSUPPORTED, "%s", why ? why
             : "client: the driver gave no reason (a driver bug)");
    free (why);
    goto out;
  default:
    why = last_lines (x->client_log, 2);
    verdict (x, V_ERROR, "client driver exit status %d: %s",
             WEXITSTATUS (status), why);
    free (why);
    goto out;
  }

  if (job->scn->verify) {
    struct scn_model m;
    char msg[512];
    int r;
    if (scn_model_run (&m, job->scn) == -1) {
      verdict (x, V_ERROR, "verify: out of memory");
      goto out;
    }
    r = verify_content (sp->uri, &m, 30000, msg, sizeof msg, x->hlog);
    scn_model_free (&m);
    if (r == 1) {
      verdict (x, V_FAIL, "%s", msg);
      goto out;
    }
    if (r == -1) {
      verdict (x, V_ERROR, "%s", msg);
      goto out;
    }
    fprintf (x->hlog, "verify: content matches\n");
  }
  x->t_verify1 = proc_now_ms ();
  if (spy_server_broke_must (x))
    goto out;
  verdict (x, V_PASS, "%s", "");
 out:
  spy_end (x);
  /* The verify phase: whatever came after the driver (also a failed
   * check of the server or of the content).
   */
  if (x->t_client1 && !x->t_verify1)
    x->t_verify1 = proc_now_ms ();
  free (driver);
  free (adapter);
  free (resize_env);
  free (top_env);
  free (flags_env);
  free (caps_env);
  free (tmp_env);
}

void
cell_run (const struct cell_job *job, struct cell *c, volatile bool *stop)
{
  struct ctx x = { .c = c };
  struct server_proc sp;
  struct probe_result pr;
  char msg[1024];
  int fd = -1, r;
  long long t0 = proc_now_ms (), t_ready = 0, t_probed = 0, t_stop0;
  char *scn_safe = safe_name (job->scn->name);
  char *cl_safe = safe_name (job->client->name);
  char *sv_safe = safe_name (job->server->name);

  memset (c, 0, sizeof *c);
  c->client = xstrdup (job->client->name);
  c->server = xstrdup (job->server->name);
  c->scenario = xstrdup (job->scn->name);
  c->flags = -1;
  c->reproducer = xstrdup (job->reproducer);
  c->evidence_dir = xasprintf ("cells/%s/%s--%s", scn_safe, cl_safe, sv_safe);
  x.evid = xasprintf ("%s/%s", job->run_dir, c->evidence_dir);
  {
    /* mkdir -p of the two levels under run_dir/cells. */
    char *d1 = xasprintf ("%s/cells", job->run_dir);
    char *d2 = xasprintf ("%s/cells/%s", job->run_dir, scn_safe);
    mkdir (d1, 0755);
    mkdir (d2, 0755);
    mkdir (x.evid, 0755);
    free (d1);
    free (d2);
  }
  x.server_log = xasprintf ("%s/server.log", x.evid);
  x.client_log = xasprintf ("%s/client.log", x.evid);
  x.harness_log = xasprintf ("%s/harness.log", x.evid);
  x.hlog = fopen (x.harness_log, "w");
  if (!x.hlog)
    x.hlog = fopen ("/dev/null", "w");
  setvbuf (x.hlog, NULL, _IOLBF, 0);
  fprintf (x.hlog, "cell: %s x %s %s\nreproduce: %s\n", c->client, c->server,
           c->scenario, job->reproducer);

  proc_become_subreaper ();
  r = server_start (&sp, job->server, job->top, job->tmp_root,
                    job->scn->size, x.server_log,
                    job->timeout_ms < START_DEADLINE_MS ? job->timeout_ms
                    : START_DEADLINE_MS, stop, &fd, msg, sizeof msg);
  if (r == -2) {
    verdict (&x, V_UNSUPPORTED, "server: %s", msg);
    goto done;
  }
  if (r == -1) {
    verdict (&x, V_ERROR, "server: %s", msg);
    goto done;
  }
  fprintf (x.hlog, "server: %s listening on %s\n", job->server->name,
           sp.socket);
  t_ready = proc_now_ms ();
  if (probe_fd (fd, MATRIX_EXPORT, 10000, &pr) == -1) {
    fputs (pr.log, x.hlog);
    verdict (&x, V_ERROR,
             "probe: %s%s", strtok (pr.log, "\n"),
             server_alive (&sp) ? "" : " (the server exited)");
    server_stop (&sp);
    goto done;
  }
  fprintf (x.hlog, "probe: %s", pr.log);
  t_probed = proc_now_ms ();
  c->flags = pr.flags;
  if (check_flags (&x, job, pr.flags)) {
    bool caps_ok = true;
    for (size_t i = 0; i < job->scn->nr_server_caps; i++)
      if (!strv_contains (job->server->caps, job->scn->server_caps[i])) {
        verdict (&x, V_UNSUPPORTED, "server: adapter declares no '%s'",
                 job->scn->server_caps[i]);
        caps_ok = false;
        break;
      }
    if (caps_ok)
      run_driver_and_verify (&x, job, &sp, stop);
  }
  t_stop0 = proc_now_ms ();
  server_stop (&sp);
  {
    /* Phases that did not happen take no time. */
    long long t_c1 = x.t_client1 ? x.t_client1 : t_probed;
    long long t_c0 = x.t_client0 ? x.t_client0 : t_probed;
    long long t_v1 = x.t_verify1 ? x.t_verify1 : t_c1;
    long long t_end = proc_now_ms ();
    /* The spy's start came between the probe and the driver, its stop
     * right after the driver: a phase of its own.
     */
    long long ms_probe = t_c0 - t_ready - x.ms_spy_start;
    long long ms_verify = t_v1 - t_c1 - x.ms_spy_stop;
    c->has_phases = true;
    c->t_start = (double) (t_ready - t0) / 1000.0;
    c->t_probe = (double) (ms_probe > 0 ? ms_probe : 0) / 1000.0;
    c->t_spy = (double) (x.ms_spy_start + x.ms_spy_stop) / 1000.0;
    c->t_client = (double) (t_c1 - t_c0) / 1000.0;
    c->t_verify = (double) (ms_verify > 0 ? ms_verify : 0) / 1000.0;
    c->t_stop = (double) (t_end - t_stop0) / 1000.0;
    fprintf (x.hlog, "phases: start %.3f s, probe %.3f s, spy %.3f s, "
             "client %.3f s, verify %.3f s, stop %.3f s\n", c->t_start,
             c->t_probe, c->t_spy, c->t_client, c->t_verify, c->t_stop);
  }

 done:
  c->seconds = (double) (proc_now_ms () - t0) / 1000.0;
  fprintf (x.hlog, "seconds: %.2f\n", c->seconds);
  fclose (x.hlog);
  c->server_log = read_file_tail (x.server_log, LOG_TAIL);
  c->client_log = read_file_tail (x.client_log, LOG_TAIL);
  c->harness_log = read_file_tail (x.harness_log, LOG_TAIL);
  free (x.evid);
  free (x.server_log);
  free (x.client_log);
  free (x.harness_log);
  free (scn_safe);
  free (cl_safe);
  free (sv_safe);
}
