/* nbd-conform: the runner.  Forks one child per test (at most -j at a
 * time), collects each child's report lines from a pipe, enforces the
 * per-test deadline (a hang is a TIMEOUT: the child's and the server's
 * process groups are killed and the temp dir removed), decides the result
 * class, applies --expect, and prints TAP in test order as results come.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "log.h"

int nc_run (const struct nc_config *cfg, struct nc_record *recs, size_t n,
            int jobs, nc_expect_vector *expects, struct nc_run *run);

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
start_child (const struct nc_config *cfg, struct nc_record *r)
{
  int fds[2];
  pid_t pid;

  if (pipe2 (fds, O_CLOEXEC) == -1)
    return -1;
  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == -1) {
    close (fds[0]);
    close (fds[1]);
    return -1;
  }
  if (pid == 0) {
    setpgid (0, 0);
    close (fds[0]);
    nc_child_run (cfg, r->e, fds[1]);
  }
  setpgid (pid, pid);
  close (fds[1]);
  r->pid = pid;
  r->fd = fds[0];
  r->start = now_s ();
  r->deadline = r->start + cfg->timeout;
  r->started = true;
  return 0;
}

static char *
field (char **p)
{
  char *s = *p, *tab;

  if (s == NULL)
    return NULL;
  tab = strchr (s, '\t');
  if (tab) {
    *tab = '\0';
    *p = tab + 1;
  }
  else
    *p = NULL;
  return s;
}

static void
add_finding (struct nc_record *r, bool info, enum nbdp_level level,
             const char *id, const char *msg)
{
  struct nc_finding f = {
    .level = level, .info = info, .id = strdup (id ? id : ""),
    .msg = strdup (msg ? msg : ""),
  };
  if (nc_finding_vector_append (&r->findings, f) == -1) {
    free (f.id);
    free (f.msg);
  }
}

static void
handle_line (struct nc_record *r, char *line)
{
  char *p = line, *tag = field (&p);

  if (strcmp (tag, "F") == 0) {
    char *lvl = field (&p), *id = field (&p);
    add_finding (r, false, lvl && strcmp (lvl, "SHOULD") == 0
                 ? NBDP_SHOULD : NBDP_MUST, id, p);
  }
  else if (strcmp (tag, "I") == 0)
    add_finding (r, true, NBDP_SHOULD, NULL, p);
  else if (strcmp (tag, "L") == 0) {
    char *s = strdup (p ? p : "");
    if (s && nc_string_vector_append (&r->log, s) == -1)
      free (s);
  }
  else if (strcmp (tag, "P") == 0)
    r->server_pgid = atoi (field (&p) ?: "0");
  else if (strcmp (tag, "D") == 0) {
    free (r->dir);
    r->dir = strdup (field (&p) ?: "");
  }
  else if (strcmp (tag, "E") == 0) {
    char *how = field (&p);
    r->ended = true;
    free (r->end_class);
    r->end_class = strdup (how ? how : "DONE");
    free (r->reason);
    r->reason = p && *p ? strdup (p) : NULL;
  }
}

/* Read what is available; returns true at EOF. */
static bool
read_child (struct nc_record *r)
{
  char buf[8192];
  ssize_t n = read (r->fd, buf, sizeof buf);
  char *nl;

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return false;
  if (n <= 0)
    return true;
  r->buf = realloc (r->buf, r->buflen + n + 1);
  if (r->buf == NULL)
    nbdp_fatal ("realloc");
  memcpy (r->buf + r->buflen, buf, n);
  r->buflen += n;
  r->buf[r->buflen] = '\0';
  while ((nl = memchr (r->buf, '\n', r->buflen)) != NULL) {
    size_t len = nl - r->buf + 1;
    *nl = '\0';
    handle_line (r, r->buf);
    memmove (r->buf, r->buf + len, r->buflen - len + 1);
    r->buflen -= len;
  }
  return false;
}

static void
decide (const struct nc_config *cfg, struct nc_record *r, int status,
        bool timed_out, nc_expect_vector *expects)
{
  bool must = false, should = false, info = false;
  struct nc_expectation *x;

  for (size_t i = 0; i < r->findings.len; i++) {
    if (r->findings.ptr[i].info)
      info = true;
    else if (r->findings.ptr[i].level == NBDP_MUST)
      must = true;
    else
      should = true;
  }
  if (timed_out) {
    r->cls = NC_TIMEOUT;
    free (r->reason);
    if (asprintf (&r->reason, "no result within %.0f s (--timeout); the "
                  "test and its server were killed", cfg->timeout) == -1)
      r->reason = NULL;
  }
  else if (must)
    r->cls = NC_FAIL;
  else if (!r->ended) {
    r->cls = NC_ERROR;
    free (r->reason);
    if (asprintf (&r->reason, "the test process died (%s %d) without a "
                  "result", WIFSIGNALED (status) ? "signal" : "exit status",
                  WIFSIGNALED (status) ? WTERMSIG (status)
                  : WEXITSTATUS (status)) == -1)
      r->reason = NULL;
  }
  else if (strcmp (r->end_class, "ERROR") == 0)
    r->cls = NC_ERROR;
  else if (strcmp (r->end_class, "SKIP") == 0)
    r->cls = NC_SKIP;
  else if (strcmp (r->end_class, "UNSUPPORTED") == 0)
    r->cls = NC_UNSUPPORTED;
  else if (should)
    r->cls = cfg->strict ? NC_FAIL : NC_NONSTRICT;
  else if (info)
    r->cls = NC_INFO;
  else
    r->cls = NC_PASS;

  x = nc_expect_find (expects, r->e);
  if (x) {
    r->listed = true;
    r->expect_reason = x->reason;
    if (r->cls == NC_FAIL || r->cls == NC_TIMEOUT || r->cls == NC_NONSTRICT)
      r->cls = NC_XFAIL;
    else if (r->cls == NC_PASS || r->cls == NC_INFO)
      r->cls = NC_XPASS;
  }
}

/* The test is over (EOF or deadline): reap, clean up, decide. */
static void
finish_child (const struct nc_config *cfg, struct nc_record *r,
              bool timed_out, nc_expect_vector *expects)
{
  int status = 0;

  if (timed_out) {
    kill (-r->pid, SIGKILL);
    /* Drain what the child managed to say. */
    while (!read_child (r))
      ;
  }
  close (r->fd);
  r->fd = -1;
  while (waitpid (r->pid, &status, 0) == -1 && errno == EINTR)
    ;
  /* A child that died uncleanly may leave its server and dir behind. */
  if (timed_out || !r->ended) {
    if (r->server_pgid > 0)
      nc_server_stop (r->server_pgid);
    if (r->dir)
      nc_rmtree (r->dir);
  }
  r->secs = now_s () - r->start;
  decide (cfg, r, status, timed_out, expects);
  r->finished = true;
}

int
nc_run (const struct nc_config *cfg, struct nc_record *recs, size_t n,
        int jobs, nc_expect_vector *expects, struct nc_run *run)
{
  size_t next = 0, printed = 0, running = 0;
  double t0 = now_s ();
  struct pollfd *pfd = calloc (jobs, sizeof *pfd);
  size_t *which = calloc (jobs, sizeof *which);

  if (pfd == NULL || which == NULL)
    nbdp_fatal ("calloc");
  nc_tap_header (stdout, n);
  while (printed < n) {
    size_t np = 0;
    double soonest = 0;
    int timeout_ms, rc;

    while (running < (size_t) jobs && next < n) {
      if (start_child (cfg, &recs[next]) == -1) {
        nbdp_warn ("cannot start a test process");
        recs[next].cls = NC_ERROR;
        recs[next].reason = strdup ("fork failed");
        recs[next].finished = true;
      }
      else
        running++;
      next++;
    }
    for (size_t i = 0; i < next; i++) {
      struct nc_record *r = &recs[i];
      if (!r->started || r->finished)
        continue;
      pfd[np] = (struct pollfd) { .fd = r->fd, .events = POLLIN };
      which[np++] = i;
      if (soonest == 0 || r->deadline < soonest)
        soonest = r->deadline;
    }
    if (np > 0) {
      double left = soonest - now_s ();
      timeout_ms = left <= 0 ? 0 : (int) (left * 1000) + 1;
      rc = poll (pfd, np, timeout_ms);
      if (rc == -1 && errno != EINTR)
        nbdp_fatal ("poll");
      for (size_t k = 0; k < np; k++) {
        struct nc_record *r = &recs[which[k]];
        if (rc > 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
          if (read_child (r)) {
            finish_child (cfg, r, false, expects);
            running--;
            continue;
          }
        }
        if (now_s () >= r->deadline) {
          finish_child (cfg, r, true, expects);
          running--;
        }
      }
    }
    while (printed < n && recs[printed].finished) {
      nc_tap_record (stdout, printed + 1, &recs[printed], cfg->verbose);
      printed++;
    }
  }
  free (pfd);
  free (which);

  run->cfg = cfg;
  run->records = recs;
  run->n = n;
  run->secs = now_s () - t0;
  memset (run->counts, 0, sizeof run->counts);
  run->exit_status = 0;
  for (size_t i = 0; i < n; i++) {
    run->counts[recs[i].cls]++;
    if (recs[i].cls == NC_ERROR)
      run->exit_status = 2;
    else if (nc_class_fails_run (recs[i].cls) && run->exit_status == 0)
      run->exit_status = 1;
  }
  nc_tap_footer (stdout, run);
  return run->exit_status;
}
