/* nbd-conform: the conformance runner.  Runs the registered server tests
 * against one server, given by NBD URI or by a command that starts it on
 * {socket}, and reports TAP 14 (plus JUnit / JSON on request).
 *
 * Exit status: 0 nothing failed, 1 some FAIL, XPASS or TIMEOUT, 2 the run
 * itself broke (bad arguments, the server could not start, ERROR).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "log.h"
#include "sockets.h"
#include "uri.h"

int nc_run (const struct nc_config *cfg, struct nc_record *recs, size_t n,
            int jobs, nc_expect_vector *expects, struct nc_run *run);

static void
usage (FILE *f)
{
  fprintf (f,
"usage: nbd-conform [OPTIONS] URI\n"
"       nbd-conform [OPTIONS] --server 'COMMAND ... {socket} ...'\n"
"       nbd-conform [OPTIONS] --client 'COMMAND ... {uri} ...'\n"
"                             [--client-read CMD] [--client-write CMD]\n"
"\n"
"Runs the NBD server conformance tests against one server, or with\n"
"--client the client conformance tests (suite client/) against one client.\n"
"\n"
"  --client CMD      run the client suites: each test starts a scripted\n"
"                    server on a private Unix socket and runs CMD (sh -c,\n"
"                    in its own process group, in a private dir) with\n"
"                    {uri} replaced by nbd+unix:///conform?socket=PATH,\n"
"                    {socket} by PATH and {dir} by the private dir.  Every\n"
"                    client message is judged, and so is the exit status:\n"
"                    0 expected when the server behaved.  If the command\n"
"                    writes what it read to {dir}/out (raw bytes from\n"
"                    offset 0) the data is compared with the export.\n"
"                    Each test has an action (first word of its --list\n"
"                    summary: ANY, READ, READ/BS, BS, WRITE); a test whose\n"
"                    action the client never does on the wire is\n"
"                    UNSUPPORTED.  A client that hangs is a TIMEOUT (its\n"
"                    process group is killed)\n"
"  --client-read CMD the command for READ, READ/BS and BS tests (default\n"
"                    CMD): one whose job is to read or map the export, so\n"
"                    that exit status 0 claims its reads succeeded; after\n"
"                    an error or a malformed reply it must then be\n"
"                    nonzero (with only --client that is merely noted)\n"
"                    e.g. 'qemu-img convert -O raw {uri} {dir}/out'\n"
"  --client-write CMD  the same for WRITE tests, e.g.\n"
"                    'qemu-io -f raw -c \"write 0 64k\" {uri}'\n"
"  --server CMD      start CMD (sh -c) for every test, with {socket}\n"
"                    replaced by a private Unix socket path and {dir} by a\n"
"                    private directory; the server is killed afterwards\n"
"  --export NAME     export to use with --server (default \"\")\n"
"  --ro-export NAME  a read-only export of the same server, for the\n"
"                    read-only tests\n"
"  --list            list the tests (name, requirement IDs, level) and exit\n"
"  --only GLOB       run only tests whose name or requirement ID matches\n"
"                    (may be repeated)\n"
"  --strict          SHOULD-level findings fail (default: NONSTRICT)\n"
"  --expect FILE     known deviations: lines 'TEST-or-ID  reason'\n"
"  --timeout S       per-test time limit in seconds (default 60)\n"
"  -j N              run N tests in parallel (default 1)\n"
"  --tap             TAP version 14 on stdout (the default)\n"
"  --junit FILE      also write JUnit XML\n"
"  --json FILE       also write JSON (results/schema.md)\n"
"  --profile NAME    what the server declares for the draft RESIZE suite:\n"
"                    an encoding (negotiated, flag-only, info-optin,\n"
"                    boolean, legacy, off) or an nbd-refserver profile\n"
"                    name (mapped to its encoding).  The suite decides\n"
"                    UNSUPPORTED from the wire; the profile only selects\n"
"                    variant B3 (boolean), which the wire cannot tell from\n"
"                    P, and test resize/declared checks the wire against it\n"
"  --control-cmd CMD resize the export from outside (sh -c) for the resize\n"
"                    notification tests: {size} is the new size, {socket},\n"
"                    {dir}, {uri} as for --server; exit 0 on success.  E.g.\n"
"                    'nbd-refserver-ctl {dir}/ctl resize - {size}' with\n"
"                    --server '... --control {dir}/ctl ...'\n"
"  -v                verbose: test logs in the TAP output\n"
"  --help\n"
"\n"
"Exit: 0 nothing failed, 1 FAIL/XPASS/TIMEOUT, 2 the run broke.\n");
}

/* Try the target once before running anything, so a server that cannot
 * start is one clear error (exit 2), not a TIMEOUT per test.
 */
static int
preflight (const struct nc_config *cfg)
{
  char err[4096];

  if (cfg->server_cmd) {
    char *dir, *sock;
    pid_t pid;
    if (nc_server_start (cfg->server_cmd, cfg->timeout, &dir, &sock, &pid,
                         err, sizeof err) == -1) {
      nbdp_warnx ("the server could not start: %s", err);
      return -1;
    }
    nc_server_stop (pid);
    nc_rmtree (dir);
    free (dir);
    free (sock);
    return 0;
  }
  else {
    struct nbdp_uri u;
    int fd;
    if (nbdp_uri_parse (cfg->uri, &u, err, sizeof err) == -1) {
      nbdp_warnx ("%s: %s", cfg->uri, err);
      return -1;
    }
    fd = u.is_unix ? nbdp_connect_unix (u.socket)
      : nbdp_connect_tcp (u.host, u.port);
    if (fd == -1)
      nbdp_warn ("cannot connect to %s", cfg->uri);
    else
      close (fd);
    nbdp_uri_free (&u);
    return fd == -1 ? -1 : 0;
  }
}

static char *
reproducer (const struct nc_config *cfg, const char *name)
{
  char *q_name = nc_shell_quote (name), *q_target, *q_exp = NULL, *q_ro = NULL;
  char *q_prof = NULL, *q_ctl = NULL;
  char *out;

  if (cfg->client_cmd) {
    char *q_cmd = nc_shell_quote (cfg->client_cmd);
    char *q_r = cfg->client_read_cmd
      ? nc_shell_quote (cfg->client_read_cmd) : NULL;
    char *q_w = cfg->client_write_cmd
      ? nc_shell_quote (cfg->client_write_cmd) : NULL;
    if (asprintf (&out, "nbd-conform --only %s%s --client %s%s%s%s%s",
                  q_name, cfg->strict ? " --strict" : "", q_cmd,
                  q_r ? " --client-read " : "", q_r ? q_r : "",
                  q_w ? " --client-write " : "", q_w ? q_w : "") == -1)
      out = NULL;
    free (q_name);
    free (q_cmd);
    free (q_r);
    free (q_w);
    return out;
  }
  q_target = nc_shell_quote (cfg->server_cmd ? cfg->server_cmd : cfg->uri);
  if (cfg->export_name && cfg->server_cmd)
    q_exp = nc_shell_quote (cfg->export_name);
  if (cfg->ro_export)
    q_ro = nc_shell_quote (cfg->ro_export);
  if (cfg->profile)
    q_prof = nc_shell_quote (cfg->profile);
  if (cfg->control_cmd)
    q_ctl = nc_shell_quote (cfg->control_cmd);
  if (asprintf (&out, "nbd-conform --only %s%s%s%s%s%s%s%s%s%s %s%s", q_name,
                cfg->strict ? " --strict" : "",
                q_exp ? " --export " : "", q_exp ? q_exp : "",
                q_ro ? " --ro-export " : "", q_ro ? q_ro : "",
                q_prof ? " --profile " : "", q_prof ? q_prof : "",
                q_ctl ? " --control-cmd " : "", q_ctl ? q_ctl : "",
                cfg->server_cmd ? "--server " : "", q_target) == -1)
    out = NULL;
  free (q_name);
  free (q_target);
  free (q_exp);
  free (q_ro);
  free (q_prof);
  free (q_ctl);
  return out;
}

/* What main allocates lives here so that every exit path frees it (the
 * suite runs under ASan/LeakSanitizer and valgrind in make check-asan).
 */
static struct {
  nc_string_vector only;
  nc_expect_vector expects;
  struct nc_record *recs;
  size_t n;
} state;

static void
free_record (struct nc_record *r)
{
  free (r->reason);
  for (size_t i = 0; i < r->findings.len; i++) {
    free (r->findings.ptr[i].id);
    free (r->findings.ptr[i].msg);
  }
  free (r->findings.ptr);
  for (size_t i = 0; i < r->log.len; i++)
    free (r->log.ptr[i]);
  free (r->log.ptr);
  free (r->reproduce);
  free (r->dir);
  free (r->buf);
  free (r->end_class);
}

static void
free_state (void)
{
  for (size_t i = 0; i < state.n; i++)
    free_record (&state.recs[i]);
  free (state.recs);
  free (state.only.ptr);
  for (size_t i = 0; i < state.expects.len; i++) {
    free (state.expects.ptr[i].pattern);
    free (state.expects.ptr[i].reason);
  }
  free (state.expects.ptr);
  for (size_t i = 0; i < nc_registry.len; i++)
    free (nc_registry.ptr[i].full_name);
  free (nc_registry.ptr);
}

int
main (int argc, char *argv[])
{
  enum {
    OPT_SERVER = 256, OPT_EXPORT, OPT_RO_EXPORT, OPT_LIST, OPT_ONLY,
    OPT_STRICT, OPT_EXPECT, OPT_TIMEOUT, OPT_TAP, OPT_JUNIT, OPT_JSON,
    OPT_PROFILE, OPT_HELP, OPT_CLIENT, OPT_CONTROL_CMD, OPT_CLIENT_WRITE,
    OPT_CLIENT_READ,
  };
  static const struct option long_opts[] = {
    { "server", required_argument, NULL, OPT_SERVER },
    { "client", required_argument, NULL, OPT_CLIENT },
    { "client-read", required_argument, NULL, OPT_CLIENT_READ },
    { "client-write", required_argument, NULL, OPT_CLIENT_WRITE },
    { "export", required_argument, NULL, OPT_EXPORT },
    { "ro-export", required_argument, NULL, OPT_RO_EXPORT },
    { "list", no_argument, NULL, OPT_LIST },
    { "only", required_argument, NULL, OPT_ONLY },
    { "strict", no_argument, NULL, OPT_STRICT },
    { "expect", required_argument, NULL, OPT_EXPECT },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "tap", no_argument, NULL, OPT_TAP },
    { "junit", required_argument, NULL, OPT_JUNIT },
    { "json", required_argument, NULL, OPT_JSON },
    { "profile", required_argument, NULL, OPT_PROFILE },
    { "control-cmd", required_argument, NULL, OPT_CONTROL_CMD },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
  };
  struct nc_config cfg = { .timeout = 60, .argv0 = argv[0] };
  const char *junit = NULL, *json = NULL, *expect_file = NULL;
  bool list = false;
  int jobs = 1, c, status;
  struct nc_record *recs;
  size_t n = 0;
  struct nc_run run = { 0 };
  char err[1024], started[64];
  time_t now;

  nbdp_progname = "nbd-conform";
  atexit (free_state);
  while ((c = getopt_long (argc, argv, "j:v", long_opts, NULL)) != -1) {
    char *end;
    switch (c) {
    case OPT_SERVER: cfg.server_cmd = optarg; break;
    case OPT_CLIENT: cfg.client_cmd = optarg; break;
    case OPT_CLIENT_READ: cfg.client_read_cmd = optarg; break;
    case OPT_CLIENT_WRITE: cfg.client_write_cmd = optarg; break;
    case OPT_EXPORT: cfg.export_name = optarg; break;
    case OPT_RO_EXPORT: cfg.ro_export = optarg; break;
    case OPT_LIST: list = true; break;
    case OPT_ONLY:
      if (nc_string_vector_append (&state.only, optarg) == -1)
        nbdp_fatal ("malloc");
      break;
    case OPT_STRICT: cfg.strict = true; break;
    case OPT_EXPECT: expect_file = optarg; break;
    case OPT_TIMEOUT:
      errno = 0;
      cfg.timeout = strtod (optarg, &end);
      if (errno || *end || end == optarg || cfg.timeout <= 0 ||
          cfg.timeout > 86400) {
        nbdp_warnx ("--timeout: expected seconds in (0, 86400], got \"%s\"",
                    optarg);
        return 2;
      }
      break;
    case 'j': {
      long v;
      errno = 0;
      v = strtol (optarg, &end, 10);
      if (errno || *end || end == optarg || v < 1 || v > 256) {
        nbdp_warnx ("-j: expected a number from 1 to 256, got \"%s\"",
                    optarg);
        return 2;
      }
      jobs = (int) v;
      break;
    }
    case OPT_TAP: break;
    case OPT_JUNIT: junit = optarg; break;
    case OPT_JSON: json = optarg; break;
    case OPT_PROFILE: cfg.profile = optarg; break;
    case OPT_CONTROL_CMD: cfg.control_cmd = optarg; break;
    case 'v': cfg.verbose = true; nbdp_verbose = true; break;
    case OPT_HELP: usage (stdout); return 0;
    default: usage (stderr); return 2;
    }
  }
  if (nc_registry_finish () == -1)
    return 2;

  recs = calloc (nc_registry.len ? nc_registry.len : 1, sizeof *recs);
  state.recs = recs;
  if (recs == NULL)
    nbdp_fatal ("calloc");
  for (size_t i = 0; i < nc_registry.len; i++) {
    const struct nc_entry *e = &nc_registry.ptr[i];
    bool want = state.only.len == 0;
    bool client_test = strcmp (e->suite, "client") == 0;

    /* --client runs the client suite only; otherwise it is left out
     * (a bare --list shows everything).
     */
    if (cfg.client_cmd ? !client_test
        : client_test && !(list && !cfg.server_cmd && optind >= argc))
      continue;
    for (size_t k = 0; k < state.only.len && !want; k++)
      want = nc_entry_matches (e, state.only.ptr[k]);
    if (want)
      recs[n++].e = e;
    state.n = n;
  }

  if (list) {
    for (size_t i = 0; i < n; i++) {
      const struct nc_test *t = recs[i].e->test;
      printf ("%-44s %-6s %-40s %s\n", recs[i].e->full_name,
              nbdp_level_name (t->level), t->ids ? t->ids : "",
              t->summary ? t->summary : "");
    }
    return 0;
  }

  if (cfg.client_cmd) {
    if (optind < argc || cfg.server_cmd) {
      nbdp_warnx ("--client: give no URI and no --server");
      return 2;
    }
    if (strstr (cfg.client_cmd, "{uri}") == NULL &&
        strstr (cfg.client_cmd, "{socket}") == NULL) {
      nbdp_warnx ("--client: the command must contain {uri} or {socket}");
      return 2;
    }
  }
  else if (cfg.client_write_cmd || cfg.client_read_cmd) {
    nbdp_warnx ("--client-read and --client-write need --client");
    return 2;
  }
  else if ((optind < argc) == (cfg.server_cmd != NULL) ||
           argc - optind > 1) {
    nbdp_warnx ("give exactly one of URI or --server 'CMD'");
    usage (stderr);
    return 2;
  }
  if (optind < argc)
    cfg.uri = argv[optind];
  if (cfg.server_cmd && strstr (cfg.server_cmd, "{socket}") == NULL) {
    nbdp_warnx ("--server: the command must contain {socket}");
    return 2;
  }
  if (cfg.uri) {
    struct nbdp_uri u;
    if (nbdp_uri_parse (cfg.uri, &u, err, sizeof err) == -1) {
      nbdp_warnx ("%s: %s", cfg.uri, err);
      return 2;
    }
    nbdp_uri_free (&u);
  }
  if (n == 0) {
    nbdp_warnx ("no test matches --only");
    return 2;
  }
  if (expect_file &&
      nc_expect_load (expect_file, &state.expects, err, sizeof err) == -1) {
    nbdp_warnx ("--expect: %s", err);
    return 2;
  }
  /* The client's receive timeout lies past the test's deadline: a silent
   * server makes the test a TIMEOUT (with its log so far), not a FAIL.
   */
  cfg.client_timeout_ms = (int) (cfg.timeout * 1000) + 1000;
  signal (SIGPIPE, SIG_IGN);

  if (!cfg.client_cmd && preflight (&cfg) == -1)
    return 2;
  for (size_t i = 0; i < n; i++)
    recs[i].reproduce = reproducer (&cfg, recs[i].e->full_name);

  now = time (NULL);
  strftime (started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
  run.started = started;
  status = nc_run (&cfg, recs, n, jobs, &state.expects, &run);
  for (size_t i = 0; i < state.expects.len; i++)
    if (!state.expects.ptr[i].used)
      nbdp_debug ("--expect entry \"%s\" matched no test that ran",
                  state.expects.ptr[i].pattern);
  if (junit && nc_write_junit (junit, &run) == -1) {
    nbdp_warn ("%s", junit);
    status = 2;
  }
  if (json && nc_write_json (json, &run) == -1) {
    nbdp_warnx ("%s: cannot write JSON", json);
    status = 2;
  }
  return status;
}
