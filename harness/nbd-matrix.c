/* nbd-matrix: the interoperability matrix runner (DESIGN.md "Runners and
 * their contracts").
 *
 *   nbd-matrix [run] [OPTIONS]     run scenarios over servers x clients
 *   nbd-matrix merge --out DIR RESULTS...
 *   nbd-matrix diff OLD NEW        exit 1 only if a cell's verdict changed
 *   nbd-matrix report DIR          rewrite the reports from DIR/results.json
 *   nbd-matrix baseline --out FILE RUN   the stable form of a run
 *
 * Each cell runs in its own process (a child subreaper), -j of them at a
 * time; results come back as JSON and are merged into one model, from
 * which every output is written.  Exit status of a run: 0 when no cell is
 * FAIL, XPASS, TIMEOUT or ERROR (with --baseline: when no verdict
 * regressed against the baseline, see compare_baseline), 1 otherwise, 2
 * when the run itself broke.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "nbd-proto.h"
#include "cell.h"
#include "inventory.h"
#include "proc.h"
#include "report.h"
#include "results.h"
#include "scenario.h"

#define TOOL_VERSION "nbd-matrix 0.1"
#define EXIT_BROKEN 2
#define DEFAULT_TIMEOUT 60
/* A cell process gets this long beyond the driver's timeout (server
 * start, probe, verify, stop) before the runner kills it.
 */
#define CELL_SLACK_MS 120000

static volatile bool stop_flag;

static void
on_signal (int sig)
{
  (void) sig;
  stop_flag = true;
}

static void
install_handlers (void)
{
  struct sigaction sa = { .sa_handler = on_signal };

  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
}

/* ---- options ---- */

struct options {
  char **servers, **clients, **scenarios;       /* globs */
  char *servers_dir, *clients_dir, *scenarios_dir;
  char **expect_files;
  int jobs;
  int shard_k, shard_n;
  int timeout;
  char *out;
  char *baseline;
  bool list;
  bool no_probe;
  bool no_spy;
  bool jobs_set;
};

/* nbd-spy between each cell's driver and server (NULL: --no-spy). */
static char *spy_path;

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbd-matrix [run] [OPTIONS]\n"
"       nbd-matrix merge --out DIR [--baseline FILE] RESULTS.json|DIR ...\n"
"       nbd-matrix diff OLD NEW        (results.json files or run directories)\n"
"       nbd-matrix report DIR\n"
"       nbd-matrix baseline --out FILE RUN  (the stable form committed as\n"
"                                            results/baseline.json)\n"
"\n"
"  --servers GLOB[,GLOB]     server adapters (harness/servers), e.g. 'nbdkit-*'\n"
"  --clients GLOB[,GLOB]     client drivers (harness/clients)\n"
"  --scenarios GLOB[,GLOB]   scenarios (harness/scenarios/NAME.scn)\n"
"  -j, --jobs N              cells run in parallel (default: online CPUs)\n"
"  --shard K/N               run only the K-th of N shares of the cells\n"
"  --timeout S               per-cell deadline of the client driver (default %d)\n"
"  --out DIR                 run directory (default results/runs/matrix-TIME)\n"
"  --baseline FILE           compare verdicts with an earlier results.json or\n"
"                            results/baseline.json; print what changed; the\n"
"                            run fails only on regressions (a new FAIL, XPASS,\n"
"                            TIMEOUT or ERROR, or a PASS lost)\n"
"  --expect FILE             known deviations (default results/expectations/\n"
"                            matrix.txt)\n"
"  --servers-dir, --clients-dir, --scenarios-dir DIR   other adapter dirs\n"
"  --list                    print the implementations and cells, run nothing\n"
"  --no-probe                do not probe servers up front\n"
"  --no-spy                  connect client drivers to the server directly,\n"
"                            without nbd-spy (no transcript, no violations)\n"
"  --help, --version\n", DEFAULT_TIMEOUT);
}

static void
add_globs (char ***v, const char *arg)
{
  char *copy = xstrdup (arg), *save = NULL, *g;
  size_t n = strv_len (*v);

  for (g = strtok_r (copy, ",", &save); g; g = strtok_r (NULL, ",", &save)) {
    *v = realloc (*v, (n + 2) * sizeof **v);
    if (!*v)
      abort ();
    (*v)[n++] = xstrdup (g);
    (*v)[n] = NULL;
  }
  free (copy);
}

static bool
parse_int (const char *s, int min, int max, int *out)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return false;
  *out = (int) v;
  return true;
}

/* ---- helpers ---- */

static char *
now_iso (void)
{
  char buf[64];
  time_t t = time (NULL);
  struct tm tm;

  gmtime_r (&t, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup (buf);
}

static char *
find_top (void)
{
  char exe[PATH_MAX], *slash;
  const char *env = getenv ("NBDP_TOP");
  ssize_t n;

  if (env && *env)
    return realpath (env, NULL);
  n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return realpath (".", NULL);
  exe[n] = '\0';
  /* TOP/harness/nbd-matrix */
  for (int i = 0; i < 2; i++) {
    slash = strrchr (exe, '/');
    if (!slash)
      return realpath (".", NULL);
    *slash = '\0';
  }
  return xstrdup (exe);
}

static int
mkdir_p (const char *path)
{
  char *copy = xstrdup (path);

  for (char *p = copy + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir (copy, 0755);
      *p = '/';
    }
  free (copy);
  if (mkdir (path, 0755) == -1 && errno != EEXIST)
    return -1;
  return 0;
}

static char *
shell_quote (const char *s)
{
  size_t n = 2;
  char *r, *p;

  if (*s && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_./:=,+-") == strlen (s))
    return xstrdup (s);

  for (const char *q = s; *q; q++)
    n += *q == '\'' ? 4 : 1;
  r = p = malloc (n + 1);
  if (!r)
    abort ();
  *p++ = '\'';
  for (const char *q = s; *q; q++) {
    if (*q == '\'') {
      memcpy (p, "'\\''", 4);
      p += 4;
    }
    else
      *p++ = *q;
  }
  *p++ = '\'';
  *p = '\0';
  return r;
}

static char *
read_whole (const char *path)
{
  return read_file_tail (path, 1 << 20);
}

/* ---- expectations ---- */

struct expectation {
  char *client, *server, *scenario, *reason;
};

static struct expectation *expectations;
static size_t nr_expectations;

static int
load_expectations (const char *path, bool required, const char *top)
{
  FILE *fp = fopen (path, "r");
  char line[2048];
  unsigned lineno = 0;
  size_t tl = strlen (top);
  /* Entries cite FILE:LINE relative to the project when inside it. */
  const char *shown = strncmp (path, top, tl) == 0 && path[tl] == '/'
                      ? path + tl + 1 : path;

  if (!fp) {
    if (!required)
      return 0;
    fprintf (stderr, "nbd-matrix: %s: %s\n", path, strerror (errno));
    return -1;
  }
  while (fgets (line, sizeof line, fp)) {
    char *save = NULL, *w[3], *rest;
    int i;
    lineno++;
    line[strcspn (line, "\n")] = '\0';
    rest = line + strspn (line, " \t");
    if (*rest == '#' || *rest == '\0')
      continue;
    for (i = 0; i < 3; i++) {
      w[i] = strtok_r (i == 0 ? rest : NULL, " \t", &save);
      if (!w[i])
        break;
    }
    rest = strtok_r (NULL, "", &save);
    if (i < 3 || !rest) {
      fprintf (stderr, "nbd-matrix: %s:%u: expected CLIENT SERVER SCENARIO "
               "REASON (globs, then the reason)\n", path, lineno);
      fclose (fp);
      return -1;
    }
    expectations = realloc (expectations,
                            (nr_expectations + 1) * sizeof *expectations);
    if (!expectations)
      abort ();
    rest += strspn (rest, " \t");
    expectations[nr_expectations++] = (struct expectation) {
      xstrdup (w[0]), xstrdup (w[1]), xstrdup (w[2]),
      xasprintf ("%s (%s:%u)", rest, shown, lineno),
    };
  }
  fclose (fp);
  return 0;
}

static void
apply_expectations (struct cell *c)
{
  for (size_t i = 0; i < nr_expectations; i++) {
    const struct expectation *e = &expectations[i];
    if (fnmatch (e->client, c->client, 0) || fnmatch (e->server, c->server, 0) ||
        fnmatch (e->scenario, c->scenario, 0))
      continue;
    if (c->verdict == V_FAIL) {
      c->verdict = V_XFAIL;
      c->expectation = xstrdup (e->reason);
    }
    else if (c->verdict == V_PASS) {
      c->verdict = V_XPASS;
      c->expectation = xstrdup (e->reason);
      free (c->reason);
      c->reason = xstrdup ("listed as a known deviation but passed: update "
                           "the expectations");
    }
    return;
  }
}

/* ---- planning ---- */

struct planned {
  const struct scenario *scn;
  const struct impl_info *server, *client;
  struct cell pre;              /* decided without running */
  bool decided;
  char *reproducer;
};

static char *
reproducer (const struct options *o, const char *top, const char *server,
            const char *client, const char *scenario)
{
  char *qs = shell_quote (server), *qc = shell_quote (client);
  char *qx = shell_quote (scenario), *qt = shell_quote (top);
  char *extra = xstrdup ("");
  char *r;

  if (o->servers_dir) {
    char *q = shell_quote (o->servers_dir), *t = xasprintf ("%s --servers-dir %s", extra, q);
    free (q); free (extra); extra = t;
  }
  if (o->clients_dir) {
    char *q = shell_quote (o->clients_dir), *t = xasprintf ("%s --clients-dir %s", extra, q);
    free (q); free (extra); extra = t;
  }
  if (o->scenarios_dir) {
    char *q = shell_quote (o->scenarios_dir), *t = xasprintf ("%s --scenarios-dir %s", extra, q);
    free (q); free (extra); extra = t;
  }
  if (o->no_spy) {
    char *t = xasprintf ("%s --no-spy", extra);
    free (extra);
    extra = t;
  }
  r = xasprintf ("cd %s && harness/nbd-matrix --servers %s --clients %s "
                 "--scenarios %s --timeout %d%s --out /tmp/nbd-matrix-repro",
                 qt, qs, qc, qx, o->timeout, extra);
  free (qs); free (qc); free (qx); free (qt); free (extra);
  return r;
}

static const char *
cap_for_flag (int bit)
{
  switch (bit) {
  case 2: return "flush";
  case 3: return "fua";
  case 5: return "trim";
  case 6: return "zero";
  case 8: return "multi-conn";
  case 9: return "resize";
  default: return NULL;
  }
}

/* Decide a cell without running it when that is certain. */
static void
pre_decide (struct planned *p)
{
  struct cell *c = &p->pre;
  const struct scenario *scn = p->scn;

  memset (c, 0, sizeof *c);
  c->flags = -1;
  if (!p->server->available) {
    c->verdict = V_SKIP;
    c->reason = xasprintf ("server %s not available: %s", p->server->name,
                           p->server->skip_reason);
    goto decided;
  }
  if (!p->client->available) {
    c->verdict = V_SKIP;
    c->reason = xasprintf ("client %s not available: %s", p->client->name,
                           p->client->skip_reason);
    goto decided;
  }
  if (p->server->probe_flags >= 0) {
    for (int bit = 0; bit < 16; bit++) {
      const char *cap = cap_for_flag (bit);
      if (!(scn->server_flags & (1 << bit)) ||
          (p->server->probe_flags & (1 << bit)))
        continue;
      c->flags = p->server->probe_flags;
      if (cap && strv_contains (p->server->caps, cap)) {
        c->verdict = V_FAIL;
        c->reason = xasprintf ("server: adapter declares '%s' but the server "
                               "did not advertise NBD_FLAG_%s", cap,
                               scn_flag_name ((unsigned) bit));
      }
      else {
        c->verdict = V_UNSUPPORTED;
        c->reason = xasprintf ("server: no NBD_FLAG_%s",
                               scn_flag_name ((unsigned) bit));
      }
      c->harness_log = xasprintf ("decided from the up-front probe of %s:\n%s",
                                  p->server->name, p->server->probe_log);
      goto decided;
    }
  }
  for (size_t i = 0; i < scn->nr_server_caps; i++)
    if (!strv_contains (p->server->caps, scn->server_caps[i])) {
      c->verdict = V_UNSUPPORTED;
      if (strcmp (scn->server_caps[i], "external-resize") == 0)
        c->reason = xstrdup ("server: the adapter cannot resize the export "
                             "from outside (no 'external-resize')");
      else
        c->reason = xasprintf ("server: adapter declares no '%s'",
                               scn->server_caps[i]);
      goto decided;
    }
  if (p->client->steps) {
    for (size_t i = 0; i < scn->nr_steps; i++) {
      const char *kind = scn_kind_name (scn->steps[i].kind);
      if (!strv_contains (p->client->steps, kind)) {
        c->verdict = V_UNSUPPORTED;
        c->reason = xasprintf ("client: %s cannot do '%s' (step %zu, line "
                               "%u: %s)", p->client->name, kind, i + 1,
                               scn->steps[i].line, scn->steps[i].text);
        goto decided;
      }
    }
  }
  return;
 decided:
  p->decided = true;
  c->client = xstrdup (p->client->name);
  c->server = xstrdup (p->server->name);
  c->scenario = xstrdup (scn->name);
  c->reproducer = xstrdup (p->reproducer);
}

/* ---- running ---- */

struct slot {
  pid_t pid;
  int pidfd;
  size_t index;                 /* into the plan */
  long long started;
  char *result_path;
  bool killed;
};

static size_t done_count, total_count;

static void
progress (const struct cell *c)
{
  done_count++;
  printf ("[%zu/%zu] %s x %s %s ... %s", done_count, total_count, c->client,
          c->server, c->scenario, verdict_name (c->verdict));
  if (c->reason && *c->reason)
    printf (" (%s)", c->reason);
  if (c->expectation)
    printf (" [known: %s]", c->expectation);
  printf ("\n");
  fflush (stdout);
}

static void
cell_child (const struct planned *p, const struct options *o, const char *top,
            const char *run_dir, const char *tmp_root, const char *result_path)
{
  struct cell_job job = {
    .server = p->server, .client = p->client, .scn = p->scn, .top = top,
    .run_dir = run_dir, .tmp_root = tmp_root,
    .timeout_ms = o->timeout * 1000, .reproducer = p->reproducer,
    .spy = spy_path,
  };
  struct cell c;

  prctl (PR_SET_PDEATHSIG, SIGTERM);
  if (getppid () == 1)
    _exit (1);
  install_handlers ();
  cell_run (&job, &c, &stop_flag);
  if (cell_write_json (&c, result_path) == -1)
    _exit (3);
  cell_free (&c);
  proc_sweep_descendants ();
  _exit (0);
}

static void
collect (struct run *run, struct planned *plan, struct slot *s, int status)
{
  struct planned *p = &plan[s->index];
  struct cell c;
  char err[512];

  if (WIFEXITED (status) && WEXITSTATUS (status) == 0 &&
      cell_read_json (&c, s->result_path, err, sizeof err) == 0) {
    /* ok */
  }
  else {
    memset (&c, 0, sizeof c);
    c.client = xstrdup (p->client->name);
    c.server = xstrdup (p->server->name);
    c.scenario = xstrdup (p->scn->name);
    c.flags = -1;
    c.verdict = s->killed ? V_TIMEOUT : V_ERROR;
    c.reason = s->killed
      ? xstrdup ("the cell process overran its deadline and was killed")
      : xasprintf ("the cell process died (%s %d)",
                   WIFEXITED (status) ? "exit status" : "signal",
                   WIFEXITED (status) ? WEXITSTATUS (status)
                                      : WTERMSIG (status));
    c.reproducer = xstrdup (p->reproducer);
  }
  unlink (s->result_path);
  apply_expectations (&c);
  progress (&c);
  run_add_cell (run, &c);
}

static int
run_cells (struct run *run, struct planned *plan, size_t nplan,
           const struct options *o, const char *top, const char *run_dir,
           const char *tmp_root)
{
  struct slot *slots = calloc ((size_t) o->jobs, sizeof *slots);
  size_t next = 0;
  int running = 0;
  char *work = xasprintf ("%s/.work", run_dir);

  if (!slots)
    abort ();
  mkdir (work, 0755);
  for (;;) {
    struct pollfd pfds[64];
    int np = 0;

    /* Start cells. */
    while (!stop_flag && running < o->jobs && next < nplan) {
      struct planned *p = &plan[next];
      struct slot *s = NULL;
      if (p->decided) {
        struct cell c = p->pre;
        memset (&p->pre, 0, sizeof p->pre);
        apply_expectations (&c);
        progress (&c);
        run_add_cell (run, &c);
        next++;
        continue;
      }
      for (int i = 0; i < o->jobs; i++)
        if (slots[i].pid == 0) {
          s = &slots[i];
          break;
        }
      s->index = next;
      s->result_path = xasprintf ("%s/cell-%zu.json", work, next);
      s->started = proc_now_ms ();
      s->killed = false;
      fflush (NULL);
      s->pid = fork ();
      if (s->pid == -1) {
        perror ("nbd-matrix: fork");
        s->pid = 0;
        free (s->result_path);
        free (slots);
        free (work);
        return -1;
      }
      if (s->pid == 0)
        cell_child (p, o, top, run_dir, tmp_root, s->result_path);
#ifdef SYS_pidfd_open
      s->pidfd = (int) syscall (SYS_pidfd_open, s->pid, 0);
#else
      s->pidfd = -1;
#endif
      running++;
      next++;
    }
    if (running == 0 && (next >= nplan || stop_flag))
      break;

    for (int i = 0; i < o->jobs && np < 64; i++)
      if (slots[i].pid > 0 && slots[i].pidfd >= 0)
        pfds[np++] = (struct pollfd) { .fd = slots[i].pidfd, .events = POLLIN };
    poll (pfds, (nfds_t) np, 500);

    for (int i = 0; i < o->jobs; i++) {
      struct slot *s = &slots[i];
      int status;
      if (s->pid <= 0)
        continue;
      if (proc_poll (s->pid, &status) == 1) {
        collect (run, plan, s, status);
        if (s->pidfd >= 0)
          close (s->pidfd);
        free (s->result_path);
        s->pid = 0;
        running--;
        continue;
      }
      if (stop_flag)
        kill (s->pid, SIGTERM);
      if (!s->killed &&
          proc_now_ms () - s->started > o->timeout * 1000LL + CELL_SLACK_MS) {
        /* The cell process cleans up on SIGTERM; SIGKILL if it cannot. */
        kill (s->pid, SIGTERM);
        if (proc_wait (s->pid, 10000, &status, NULL) != 1)
          kill (s->pid, SIGKILL);
        s->killed = true;
      }
    }
  }
  free (slots);
  rmdir (work);
  free (work);
  return 0;
}

/* Cells finish in any order; the outputs list them in plan order
 * (scenario, server, client) so that runs compare line by line.
 */
static void
sort_cells (struct run *run, const struct planned *plan, size_t nplan)
{
  struct cell *sorted = calloc (run->nr_cells + 1, sizeof *sorted);
  bool *taken = calloc (run->nr_cells + 1, sizeof *taken);
  size_t n = 0;

  if (!sorted || !taken)
    abort ();
  for (size_t i = 0; i < nplan; i++)
    for (size_t j = 0; j < run->nr_cells; j++)
      if (!taken[j] && strcmp (run->cells[j].client, plan[i].client->name) == 0 &&
          strcmp (run->cells[j].server, plan[i].server->name) == 0 &&
          strcmp (run->cells[j].scenario, plan[i].scn->name) == 0) {
        sorted[n++] = run->cells[j];
        taken[j] = true;
        break;
      }
  for (size_t j = 0; j < run->nr_cells; j++)
    if (!taken[j])
      sorted[n++] = run->cells[j];
  free (run->cells);
  free (taken);
  run->cells = sorted;
}

/* One line on what nbd-spy saw over the run (nothing without the spy). */
static void
print_spy_summary (const struct run *run)
{
  size_t spied = 0, any = 0, server_must = 0, client_must = 0;

  for (size_t i = 0; i < run->nr_cells; i++) {
    const struct cell_spy *s = run->cells[i].spy;
    if (!s)
      continue;
    spied++;
    if (s->must + s->should == 0)
      continue;
    any++;
    server_must += s->server_must > 0;
    client_must += s->must > s->server_must;
  }
  if (spied)
    printf ("spy: %zu of %zu cells through nbd-spy had violations (a MUST "
            "by the server in %zu, by the client in %zu)%s\n", any, spied,
            server_must, client_must, any ? ": matrix.md lists them" : "");
}

/* ---- subcommands ---- */

static char *
results_path (const char *arg)
{
  struct stat st;

  if (stat (arg, &st) == 0 && S_ISDIR (st.st_mode))
    return xasprintf ("%s/results.json", arg);
  return xstrdup (arg);
}

static int
cmd_report (int argc, char **argv)
{
  struct run run;
  char err[512], *path;
  int r;

  if (argc != 2) {
    fprintf (stderr, "usage: nbd-matrix report DIR\n");
    return EXIT_BROKEN;
  }
  path = results_path (argv[1]);
  if (results_read_json (&run, path, err, sizeof err) == -1) {
    fprintf (stderr, "nbd-matrix: %s\n", err);
    free (path);
    return EXIT_BROKEN;
  }
  free (path);
  r = report_all (&run, argv[1]);
  run_free (&run);
  return r == 0 ? 0 : EXIT_BROKEN;
}

static int
cmd_diff (int argc, char **argv)
{
  struct run a, b;
  char err[512], *pa, *pb;
  size_t changed = 0, added = 0, removed = 0;

  if (argc != 3) {
    fprintf (stderr, "usage: nbd-matrix diff OLD NEW\n");
    return EXIT_BROKEN;
  }
  pa = results_path (argv[1]);
  pb = results_path (argv[2]);
  if (results_read_json (&a, pa, err, sizeof err) == -1) {
    fprintf (stderr, "nbd-matrix: %s\n", err);
    return EXIT_BROKEN;
  }
  if (results_read_json (&b, pb, err, sizeof err) == -1) {
    fprintf (stderr, "nbd-matrix: %s\n", err);
    run_free (&a);
    return EXIT_BROKEN;
  }
  for (size_t i = 0; i < b.nr_cells; i++) {
    const struct cell *nc = &b.cells[i];
    const struct cell *oc = run_find_cell (&a, nc->client, nc->server,
                                           nc->scenario);
    if (!oc) {
      printf ("added   %s/%s/%s: %s\n", nc->client, nc->server, nc->scenario,
              verdict_name (nc->verdict));
      added++;
    }
    else if (oc->verdict != nc->verdict) {
      printf ("changed %s/%s/%s: %s -> %s%s%s\n", nc->client, nc->server,
              nc->scenario, verdict_name (oc->verdict),
              verdict_name (nc->verdict), nc->reason && *nc->reason ? ": " : "",
              nc->reason ? nc->reason : "");
      changed++;
    }
  }
  for (size_t i = 0; i < a.nr_cells; i++) {
    const struct cell *oc = &a.cells[i];
    if (!run_find_cell (&b, oc->client, oc->server, oc->scenario)) {
      printf ("removed %s/%s/%s: was %s\n", oc->client, oc->server,
              oc->scenario, verdict_name (oc->verdict));
      removed++;
    }
  }
  /* Versions that changed explain verdicts that changed. */
  for (size_t i = 0; i < b.nr_impls; i++) {
    const struct impl_info *ni = &b.impls[i];
    const struct impl_info *oi = run_find_impl (&a, ni->kind, ni->name);
    if (oi && (oi->version || ni->version) &&
        (!oi->version || !ni->version || strcmp (oi->version, ni->version)))
      printf ("version %s: %s -> %s\n", ni->name,
              oi->version ? oi->version : "(none)",
              ni->version ? ni->version : "(none)");
  }
  printf ("diff: %zu changed, %zu added, %zu removed\n", changed, added,
          removed);
  run_free (&a);
  run_free (&b);
  free (pa);
  free (pb);
  return changed ? 1 : 0;
}

/* Plan order of a cell (scenario, server, client: their indices in the
 * run's lists), so that a merged run writes the same baseline as an
 * unsharded one.
 */
static const struct run *sort_run;

static size_t
impl_index (const struct run *run, const char *kind, const char *name)
{
  for (size_t i = 0; i < run->nr_impls; i++)
    if (strcmp (run->impls[i].kind, kind) == 0 &&
        strcmp (run->impls[i].name, name) == 0)
      return i;
  return SIZE_MAX;
}

static size_t
scenario_index (const struct run *run, const char *name)
{
  for (size_t i = 0; i < run->nr_scenarios; i++)
    if (strcmp (run->scenarios[i].name, name) == 0)
      return i;
  return SIZE_MAX;
}

static int
cmp_plan_order (const void *pa, const void *pb)
{
  const struct cell *a = pa, *b = pb;
  size_t ka[3] = {
    scenario_index (sort_run, a->scenario),
    impl_index (sort_run, "server", a->server),
    impl_index (sort_run, "client", a->client),
  };
  size_t kb[3] = {
    scenario_index (sort_run, b->scenario),
    impl_index (sort_run, "server", b->server),
    impl_index (sort_run, "client", b->client),
  };
  int r;

  for (int i = 0; i < 3; i++)
    if (ka[i] != kb[i])
      return ka[i] < kb[i] ? -1 : 1;
  if ((r = strcmp (a->scenario, b->scenario)) != 0 ||
      (r = strcmp (a->server, b->server)) != 0)
    return r;
  return strcmp (a->client, b->client);
}

static int
cmd_baseline (int argc, char **argv)
{
  struct run run;
  const char *out = NULL;
  char err[512], *path, *top;
  int i, r;

  for (i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--out") == 0 && i + 1 < argc)
      out = argv[++i];
    else if (strncmp (argv[i], "--out=", 6) == 0)
      out = argv[i] + 6;
    else
      break;
  }
  if (!out || i + 1 != argc) {
    fprintf (stderr, "usage: nbd-matrix baseline --out FILE RUN\n");
    return EXIT_BROKEN;
  }
  path = results_path (argv[i]);
  if (results_read_json (&run, path, err, sizeof err) == -1) {
    fprintf (stderr, "nbd-matrix: %s\n", err);
    free (path);
    return EXIT_BROKEN;
  }
  free (path);
  if (run.shard) {
    fprintf (stderr, "nbd-matrix: %s is one shard (%s): merge the shards "
             "first\n", argv[i], run.shard);
    run_free (&run);
    return EXIT_BROKEN;
  }
  sort_run = &run;
  if (run.nr_cells)
    qsort (run.cells, run.nr_cells, sizeof *run.cells, cmp_plan_order);
  top = find_top ();
  r = results_write_baseline (&run, out, top);
  if (r == -1)
    fprintf (stderr, "nbd-matrix: %s: %s\n", out, strerror (errno));
  else {
    size_t counts[NR_VERDICTS];
    run_count (&run, counts);
    printf ("baseline: %zu cells into %s:", run.nr_cells, out);
    for (int v = 0; v < NR_VERDICTS; v++)
      printf (" %s %zu", verdict_name (v), counts[v]);
    printf ("\n");
  }
  free (top);
  run_free (&run);
  return r == 0 ? 0 : EXIT_BROKEN;
}

static int compare_baseline (const char *path, const struct run *run,
                             bool selection);

static int
cmd_merge (int argc, char **argv)
{
  struct run out;
  const char *dir = NULL, *baseline = NULL;
  char err[512];
  int i, r, status, shard_n = 0;
  bool *shard_seen = NULL;
  size_t counts[NR_VERDICTS];

  run_init (&out);
  for (i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--out") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strncmp (argv[i], "--out=", 6) == 0)
      dir = argv[i] + 6;
    else if (strcmp (argv[i], "--baseline") == 0 && i + 1 < argc)
      baseline = argv[++i];
    else if (strncmp (argv[i], "--baseline=", 11) == 0)
      baseline = argv[i] + 11;
    else
      break;
  }
  if (!dir || i >= argc) {
    fprintf (stderr, "usage: nbd-matrix merge --out DIR [--baseline FILE] "
             "RESULTS...\n");
    return EXIT_BROKEN;
  }
  if (mkdir_p (dir) == -1) {
    fprintf (stderr, "nbd-matrix: %s: %s\n", dir, strerror (errno));
    return EXIT_BROKEN;
  }
  for (; i < argc; i++) {
    struct run in;
    char *path = results_path (argv[i]);
    char *base = realpath (path, NULL), *outabs = realpath (dir, NULL);
    if (results_read_json (&in, path, err, sizeof err) == -1) {
      fprintf (stderr, "nbd-matrix: %s\n", err);
      free (path); free (base); free (outabs); free (shard_seen);
      run_free (&out);
      return EXIT_BROKEN;
    }
    /* Shards K/N: all of one N, each K once (checked below). */
    if (in.shard) {
      int k, n;
      if (sscanf (in.shard, "%d/%d", &k, &n) != 2 || k < 1 || k > n ||
          (shard_n && n != shard_n) || (shard_seen && shard_seen[k - 1])) {
        fprintf (stderr, "nbd-matrix: merge: %s is shard %s, which does not "
                 "fit the other inputs\n", argv[i], in.shard);
        free (path); free (base); free (outabs); free (shard_seen);
        run_free (&in);
        run_free (&out);
        return EXIT_BROKEN;
      }
      if (!shard_seen) {
        shard_n = n;
        shard_seen = calloc ((size_t) n, sizeof *shard_seen);
        if (!shard_seen)
          abort ();
      }
      shard_seen[k - 1] = true;
    }
    /* Evidence paths are relative to the input's directory: make them
     * absolute unless the input lives in the output directory.
     */
    if (base) {
      char *slash = strrchr (base, '/');
      if (slash)
        *slash = '\0';
      if (!outabs || strcmp (base, outabs) != 0)
        for (size_t c = 0; c < in.nr_cells; c++) {
          struct cell_spy *sy = in.cells[c].spy;
          if (in.cells[c].evidence_dir && in.cells[c].evidence_dir[0] != '/') {
            char *t = xasprintf ("%s/%s", base, in.cells[c].evidence_dir);
            free (in.cells[c].evidence_dir);
            in.cells[c].evidence_dir = t;
          }
          if (sy && sy->transcript && sy->transcript[0] != '/') {
            char *t = xasprintf ("%s/%s", base, sy->transcript);
            free (sy->transcript);
            sy->transcript = t;
          }
        }
    }
    if (run_merge (&out, &in) == -1) {
      fprintf (stderr, "nbd-matrix: merge: out of memory\n");
      run_free (&in);
      run_free (&out);
      return EXIT_BROKEN;
    }
    run_free (&in);
    free (path);
    free (base);
    free (outabs);
  }
  for (int k = 0; k < shard_n; k++)
    if (!shard_seen[k]) {
      fprintf (stderr, "nbd-matrix: merge: shard %d/%d is missing: its cells "
               "would be missing from the matrix\n", k + 1, shard_n);
      free (shard_seen);
      run_free (&out);
      return EXIT_BROKEN;
    }
  free (shard_seen);
  free (out.shard);
  out.shard = NULL;
  free (out.command);
  out.command = xstrdup ("nbd-matrix merge");
  r = report_all (&out, dir);
  run_count (&out, counts);
  status = r == 0 ? 0 : EXIT_BROKEN;
  if (status == 0 && baseline) {
    int c = compare_baseline (baseline, &out, false);
    status = c < 0 ? EXIT_BROKEN : c > 0 ? 1 : 0;
  }
  else if (status == 0)
    status = counts[V_FAIL] + counts[V_XPASS] + counts[V_TIMEOUT] +
             counts[V_ERROR] ? 1 : 0;
  printf ("merged %zu cells into %s:", out.nr_cells, dir);
  for (int v = 0; v < NR_VERDICTS; v++)
    if (counts[v])
      printf (" %s %zu", verdict_name (v), counts[v]);
  printf ("\n");
  print_spy_summary (&out);
  printf ("summary:");
  for (int v = 0; v < NR_VERDICTS; v++)
    printf (" %s %zu", verdict_name (v), counts[v]);
  printf (" (%zu cells)\nresults: %s/index.html\n", out.nr_cells, dir);
  run_free (&out);
  return status;
}

/* ---- comparing with a baseline ---- */

/* What a verdict change means for `make matrix`:
 *   regressed  the new verdict is FAIL, XPASS, TIMEOUT or ERROR and was
 *              not that before (also a new cell with such a verdict), or
 *              a PASS became anything else (XFAIL, UNSUPPORTED, SKIP:
 *              coverage lost);
 *   improved   a bad verdict became a good one, or anything became PASS;
 *   changed    the rest (UNSUPPORTED <-> SKIP, UNSUPPORTED -> XFAIL ...).
 * Only regressions fail the run.
 */
enum change { CH_SAME, CH_REGRESSED, CH_IMPROVED, CH_CHANGED };

static enum change
classify_change (int old, enum verdict nv)
{
  if (old == (int) nv)
    return CH_SAME;
  if (verdict_is_bad (nv))
    return CH_REGRESSED;
  if (old == V_PASS)
    return CH_REGRESSED;
  if (old >= 0 && (verdict_is_bad ((enum verdict) old) || nv == V_PASS))
    return CH_IMPROVED;
  return CH_CHANGED;
}

/* Print every verdict that differs from the baseline, one line each, and
 * a count line.  Returns the number of regressions, or -1 if the baseline
 * cannot be read.  With selection (globs or --shard), baseline cells the
 * run did not plan are only counted, not listed.
 */
static int
compare_baseline (const char *path, const struct run *run, bool selection)
{
  struct run base;
  char err[512];
  size_t n[4] = { 0 }, added = 0, not_run = 0;
  static const char *const label[4] = {
    [CH_REGRESSED] = "regressed", [CH_IMPROVED] = "improved ",
    [CH_CHANGED] = "changed  ",
  };

  if (results_read_json (&base, path, err, sizeof err) == -1) {
    fprintf (stderr, "nbd-matrix: baseline: %s\n", err);
    return -1;
  }
  printf ("baseline: comparing verdicts with %s (%zu cells)\n", path,
          base.nr_cells);
  for (size_t i = 0; i < run->nr_cells; i++) {
    const struct cell *nc = &run->cells[i];
    const struct cell *oc = run_find_cell (&base, nc->client, nc->server,
                                           nc->scenario);
    enum change ch = classify_change (oc ? (int) oc->verdict : -1,
                                      nc->verdict);
    const char *why = nc->reason && *nc->reason ? nc->reason : NULL;
    if (ch == CH_SAME)
      continue;
    if (!oc && ch != CH_REGRESSED) {
      printf ("added     %s/%s/%s: %s (not in the baseline)\n", nc->client,
              nc->server, nc->scenario, verdict_name (nc->verdict));
      added++;
      continue;
    }
    printf ("%s %s/%s/%s: %s -> %s%s%s\n", label[ch], nc->client,
            nc->server, nc->scenario,
            oc ? verdict_name (oc->verdict) : "(new)",
            verdict_name (nc->verdict), why ? ": " : "", why ? why : "");
    n[ch]++;
  }
  for (size_t i = 0; i < base.nr_cells; i++) {
    const struct cell *oc = &base.cells[i];
    if (run_find_cell (run, oc->client, oc->server, oc->scenario))
      continue;
    if (!selection)
      printf ("not run   %s/%s/%s: was %s\n", oc->client, oc->server,
              oc->scenario, verdict_name (oc->verdict));
    not_run++;
  }
  /* Versions explain changes. */
  for (size_t i = 0; i < run->nr_impls; i++) {
    const struct impl_info *ni = &run->impls[i];
    const struct impl_info *oi = run_find_impl (&base, ni->kind, ni->name);
    if (oi && (oi->version || ni->version) &&
        (!oi->version || !ni->version || strcmp (oi->version, ni->version)))
      printf ("version   %s: %s -> %s\n", ni->name,
              oi->version ? oi->version : "(none)",
              ni->version ? ni->version : "(none)");
  }
  printf ("baseline: %zu regressed, %zu improved, %zu changed, %zu added, "
          "%zu not run%s\n", n[CH_REGRESSED], n[CH_IMPROVED], n[CH_CHANGED],
          added, not_run,
          n[CH_REGRESSED] + n[CH_IMPROVED] + n[CH_CHANGED] + added
          ? "" : " (no verdict changed)");
  if (n[CH_IMPROVED] + n[CH_CHANGED] + added)
    printf ("baseline: update it with `make matrix-baseline` when the "
            "changes are intended\n");
  run_free (&base);
  return (int) (n[CH_REGRESSED] > 1000000 ? 1000000 : n[CH_REGRESSED]);
}

/* ---- run ---- */

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
load_scenarios (const char *dir, char *const *globs, struct scenario ***out,
                size_t *n)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  char **names = NULL;
  size_t nn = 0;

  *out = NULL;
  *n = 0;
  if (!d) {
    fprintf (stderr, "nbd-matrix: %s: %s\n", dir, strerror (errno));
    return -1;
  }
  while ((de = readdir (d)) != NULL) {
    size_t l = strlen (de->d_name);
    if (l > 4 && strcmp (de->d_name + l - 4, ".scn") == 0) {
      names = realloc (names, (nn + 1) * sizeof *names);
      if (!names)
        abort ();
      names[nn++] = xstrdup (de->d_name);
    }
  }
  closedir (d);
  if (nn)
    qsort (names, nn, sizeof *names, cmp_str);
  for (size_t i = 0; i < nn; i++) {
    char *path = xasprintf ("%s/%s", dir, names[i]);
    char err[512];
    struct scenario *s = scn_parse_file (path, err, sizeof err);
    free (path);
    if (!s) {
      fprintf (stderr, "nbd-matrix: %s\n", err);
      for (; i < nn; i++)
        free (names[i]);
      free (names);
      return -1;
    }
    if (!globs_match (globs, s->name)) {
      scn_free (s);
      free (names[i]);
      continue;
    }
    *out = realloc (*out, (*n + 1) * sizeof **out);
    if (!*out)
      abort ();
    (*out)[(*n)++] = s;
    free (names[i]);
  }
  free (names);
  return 0;
}

static int
cmd_run (int argc, char **argv)
{
  static const struct option long_opts[] = {
    { "servers", required_argument, NULL, 'S' },
    { "clients", required_argument, NULL, 'C' },
    { "scenarios", required_argument, NULL, 'X' },
    { "jobs", required_argument, NULL, 'j' },
    { "shard", required_argument, NULL, 'k' },
    { "timeout", required_argument, NULL, 't' },
    { "out", required_argument, NULL, 'o' },
    { "baseline", required_argument, NULL, 'b' },
    { "expect", required_argument, NULL, 'e' },
    { "servers-dir", required_argument, NULL, 1 },
    { "clients-dir", required_argument, NULL, 2 },
    { "scenarios-dir", required_argument, NULL, 3 },
    { "list", no_argument, NULL, 'l' },
    { "no-probe", no_argument, NULL, 4 },
    { "no-spy", no_argument, NULL, 5 },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  struct options o = { .jobs = 1, .timeout = DEFAULT_TIMEOUT };
  struct run run;
  struct scenario **scns = NULL;
  size_t nscn = 0, nplan = 0, counts[NR_VERDICTS];
  struct planned *plan = NULL;
  char *top, *run_dir, *sdir, *cdir, *xdir, *tmp_root, *cmdline;
  const char *tmpenv = getenv ("TMPDIR");
  int c, status = 0;
  long long t_run0;

  while ((c = getopt_long (argc, argv, "j:hV", long_opts, NULL)) != -1) {
    switch (c) {
    case 'S': add_globs (&o.servers, optarg); break;
    case 'C': add_globs (&o.clients, optarg); break;
    case 'X': add_globs (&o.scenarios, optarg); break;
    case 'j':
      if (!parse_int (optarg, 1, 64, &o.jobs)) {
        fprintf (stderr, "nbd-matrix: -j %s: expected 1..64\n", optarg);
        return EXIT_BROKEN;
      }
      o.jobs_set = true;
      break;
    case 'k': {
      char *slash = strchr (optarg, '/');
      if (!slash) goto bad_shard;
      *slash = '\0';
      if (!parse_int (optarg, 1, 1000, &o.shard_k) ||
          !parse_int (slash + 1, 1, 1000, &o.shard_n) || o.shard_k > o.shard_n) {
        *slash = '/';
      bad_shard:
        fprintf (stderr, "nbd-matrix: --shard %s: expected K/N with "
                 "1 <= K <= N\n", optarg);
        return EXIT_BROKEN;
      }
      *slash = '/';
      break;
    }
    case 't':
      if (!parse_int (optarg, 1, 86400, &o.timeout)) {
        fprintf (stderr, "nbd-matrix: --timeout %s: expected seconds\n",
                 optarg);
        return EXIT_BROKEN;
      }
      break;
    case 'o': o.out = optarg; break;
    case 'b': o.baseline = optarg; break;
    case 'e': add_globs (&o.expect_files, optarg); break;
    case 1: o.servers_dir = optarg; break;
    case 2: o.clients_dir = optarg; break;
    case 3: o.scenarios_dir = optarg; break;
    case 'l': o.list = true; break;
    case 4: o.no_probe = true; break;
    case 5: o.no_spy = true; break;
    case 'h': usage (stdout); return 0;
    case 'V': printf ("%s\n", TOOL_VERSION); return 0;
    default: usage (stderr); return EXIT_BROKEN;
    }
  }
  if (optind != argc) {
    fprintf (stderr, "nbd-matrix: unexpected argument '%s'\n", argv[optind]);
    usage (stderr);
    return EXIT_BROKEN;
  }
  if (!o.jobs_set) {
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    o.jobs = n < 1 ? 1 : n > 64 ? 64 : (int) n;
  }

  top = find_top ();
  if (!top) {
    fprintf (stderr, "nbd-matrix: cannot find the project directory\n");
    return EXIT_BROKEN;
  }
  sdir = o.servers_dir ? realpath (o.servers_dir, NULL)
                       : xasprintf ("%s/harness/servers", top);
  cdir = o.clients_dir ? realpath (o.clients_dir, NULL)
                       : xasprintf ("%s/harness/clients", top);
  xdir = o.scenarios_dir ? realpath (o.scenarios_dir, NULL)
                         : xasprintf ("%s/harness/scenarios", top);
  if (!sdir || !cdir || !xdir) {
    fprintf (stderr, "nbd-matrix: an adapter directory does not exist\n");
    return EXIT_BROKEN;
  }
  tmp_root = realpath (tmpenv && *tmpenv ? tmpenv : "/tmp", NULL);
  if (!tmp_root) {
    fprintf (stderr, "nbd-matrix: TMPDIR %s: %s\n", tmpenv, strerror (errno));
    return EXIT_BROKEN;
  }

  /* Expectations. */
  if (o.expect_files) {
    for (size_t i = 0; o.expect_files[i]; i++)
      if (load_expectations (o.expect_files[i], true, top) == -1)
        return EXIT_BROKEN;
  }
  else {
    char *p1 = xasprintf ("%s/results/expectations/matrix.txt", top);
    if (load_expectations (p1, false, top) == -1)
      return EXIT_BROKEN;
    free (p1);
  }

  if (load_scenarios (xdir, o.scenarios, &scns, &nscn) == -1)
    return EXIT_BROKEN;
  if (nscn == 0) {
    fprintf (stderr, "nbd-matrix: no scenario in %s matches\n", xdir);
    return EXIT_BROKEN;
  }

  install_handlers ();
  /* Orphans of cell processes that die abruptly come back to us. */
  proc_become_subreaper ();

  run_init (&run);
  run.tool_version = xstrdup (TOOL_VERSION);
  run.started = now_iso ();
  {
    char host[256] = "";
    gethostname (host, sizeof host - 1);
    run.host = xstrdup (host);
  }
  cmdline = xstrdup ("nbd-matrix");
  for (int i = 1; i < argc; i++) {
    char *q = shell_quote (argv[i]), *t = xasprintf ("%s %s", cmdline, q);
    free (q);
    free (cmdline);
    cmdline = t;
  }
  run.command = cmdline;
  run.timeout = o.timeout;
  if (o.shard_n)
    run.shard = xasprintf ("%d/%d", o.shard_k, o.shard_n);

  inventory_scan (&run, top, sdir, o.servers_dir ? sdir : "harness/servers",
                  "server", o.servers);
  inventory_scan (&run, top, cdir, o.clients_dir ? cdir : "harness/clients",
                  "client", o.clients);
  for (size_t i = 0; i < nscn; i++) {
    struct scenario_info si = {
      .name = xstrdup (scns[i]->name), .summary = xstrdup (scns[i]->summary),
      .path = xstrdup (scns[i]->path),
      .requirements = strv_copy (scns[i]->requirements),
      .text = read_whole (scns[i]->path),
    };
    run_add_scenario (&run, &si);
  }

  for (size_t i = 0; i < run.nr_impls; i++) {
    const struct impl_info *im = &run.impls[i];
    printf ("%-7s %-24s %s\n", im->kind, im->name,
            im->available ? im->version : im->skip_reason);
  }
  if (!o.no_spy) {
    spy_path = xasprintf ("%s/harness/spy/nbd-spy", top);
    if (access (spy_path, X_OK) == -1) {
      printf ("spy     nbd-spy is not built (%s): clients connect to "
              "servers directly, cells record no transcript\n", spy_path);
      free (spy_path);
      spy_path = NULL;
    }
    else
      printf ("spy     %s between each client and server\n", spy_path);
  }
  if (!o.list && !o.no_probe) {
    inventory_probe_servers (&run, top, tmp_root, &stop_flag);
    for (size_t i = 0; i < run.nr_impls; i++) {
      const struct impl_info *im = &run.impls[i];
      if (strcmp (im->kind, "server") == 0 && im->available) {
        const char *last = im->probe_log ? im->probe_log : "", *p;
        for (p = last; *p; p++)
          if (p[0] == '\n' && p[1])
            last = p + 1;
        printf ("probe   %-24s %s", im->name, last);
        if (!*last || last[strlen (last) - 1] != '\n')
          printf ("\n");
      }
    }
  }

  /* Plan: scenario x server x client, in this order. */
  {
    size_t idx = 0;
    for (size_t s = 0; s < nscn; s++)
      for (size_t v = 0; v < run.nr_impls; v++) {
        if (strcmp (run.impls[v].kind, "server") != 0)
          continue;
        for (size_t k = 0; k < run.nr_impls; k++) {
          struct planned *p;
          if (strcmp (run.impls[k].kind, "client") != 0)
            continue;
          if (o.shard_n && (int) (idx++ % (size_t) o.shard_n) != o.shard_k - 1)
            continue;
          plan = realloc (plan, (nplan + 1) * sizeof *plan);
          if (!plan)
            abort ();
          p = &plan[nplan++];
          memset (p, 0, sizeof *p);
          p->scn = scns[s];
          p->server = &run.impls[v];
          p->client = &run.impls[k];
          p->reproducer = reproducer (&o, top, p->server->name,
                                      p->client->name, p->scn->name);
          pre_decide (p);
        }
      }
  }
  total_count = nplan;
  if (o.list) {
    for (size_t i = 0; i < nplan; i++)
      printf ("cell %s x %s %s%s%s\n", plan[i].client->name,
              plan[i].server->name, plan[i].scn->name,
              plan[i].decided ? " => " : "",
              plan[i].decided ? verdict_name (plan[i].pre.verdict) : "");
    return 0;
  }

  run_dir = o.out ? realpath (o.out, NULL) : NULL;
  if (!run_dir) {
    char *want;
    if (o.out)
      want = xstrdup (o.out);
    else {
      char stamp[32];
      time_t t = time (NULL);
      struct tm tm;
      localtime_r (&t, &tm);
      strftime (stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
      want = xasprintf ("%s/results/runs/matrix-%s", top, stamp);
    }
    if (mkdir_p (want) == -1) {
      fprintf (stderr, "nbd-matrix: %s: %s\n", want, strerror (errno));
      return EXIT_BROKEN;
    }
    run_dir = realpath (want, NULL);
    free (want);
  }
  printf ("running %zu cells, -j %d, timeout %d s, into %s\n", nplan, o.jobs,
          o.timeout, run_dir);
  fflush (stdout);

  t_run0 = proc_now_ms ();
  if (run_cells (&run, plan, nplan, &o, top, run_dir, tmp_root) == -1)
    status = EXIT_BROKEN;
  proc_sweep_descendants ();
  sort_cells (&run, plan, nplan);
  run.finished = now_iso ();

  if (report_all (&run, run_dir) == -1)
    status = EXIT_BROKEN;
  run_count (&run, counts);
  if (status == 0 && o.baseline) {
    bool selection = o.servers || o.clients || o.scenarios || o.shard_n;
    int r = compare_baseline (o.baseline, &run, selection);
    status = r < 0 ? EXIT_BROKEN : r > 0 ? 1 : 0;
  }
  else if (status == 0)
    status = counts[V_FAIL] + counts[V_XPASS] + counts[V_TIMEOUT] +
             counts[V_ERROR] ? 1 : 0;
  /* The summary and the report come last, where a reader looks. */
  print_spy_summary (&run);
  printf ("summary:");
  for (int v = 0; v < NR_VERDICTS; v++)
    printf (" %s %zu", verdict_name (v), counts[v]);
  {
    long long ms = proc_now_ms () - t_run0;
    printf (" (%zu cells, %lld.%lld s, -j %d)\nresults: %s/index.html\n",
            run.nr_cells, ms / 1000, ms % 1000 / 100, o.jobs, run_dir);
  }
  if (!o.out) {
    /* results/runs/latest: the newest run of the default place. */
    char *link = xasprintf ("%s/results/runs/latest", top);
    char *target = strrchr (run_dir, '/');
    unlink (link);
    if (target && symlink (target + 1, link) == -1)
      fprintf (stderr, "nbd-matrix: symlink %s: %s\n", link,
               strerror (errno));
    free (link);
  }
  if (stop_flag) {
    fprintf (stderr, "nbd-matrix: interrupted; partial results written\n");
    status = EXIT_BROKEN;
  }

  for (size_t i = 0; i < nplan; i++) {
    free (plan[i].reproducer);
    cell_free (&plan[i].pre);
  }
  free (plan);
  for (size_t i = 0; i < nscn; i++)
    scn_free (scns[i]);
  free (scns);
  run_free (&run);
  free (run_dir);
  free (top);
  free (sdir);
  free (cdir);
  free (xdir);
  free (tmp_root);
  free (spy_path);
  spy_path = NULL;
  strv_free (o.servers);
  strv_free (o.clients);
  strv_free (o.scenarios);
  strv_free (o.expect_files);
  for (size_t i = 0; i < nr_expectations; i++) {
    free (expectations[i].client);
    free (expectations[i].server);
    free (expectations[i].scenario);
    free (expectations[i].reason);
  }
  free (expectations);
  return status;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp (argv[1], "merge") == 0)
    return cmd_merge (argc - 1, argv + 1);
  if (argc > 1 && strcmp (argv[1], "diff") == 0)
    return cmd_diff (argc - 1, argv + 1);
  if (argc > 1 && strcmp (argv[1], "baseline") == 0)
    return cmd_baseline (argc - 1, argv + 1);
  if (argc > 1 && strcmp (argv[1], "report") == 0)
    return cmd_report (argc - 1, argv + 1);
  if (argc > 1 && strcmp (argv[1], "run") == 0)
    return cmd_run (argc - 1, argv + 1);
  return cmd_run (argc, argv);
}
