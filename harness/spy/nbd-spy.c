/* nbd-spy: a validating NBD proxy.  Listens on a Unix socket, forwards
 * each client connection byte for byte to an upstream server (Unix or
 * TCP), and decodes both directions as they pass (decode.c): a
 * transcript line per message, the rule engine on every message, a JSON
 * summary at exit.  One thread per direction of each connection; the
 * decoder of a connection is called under that connection's lock, and
 * each direction is decoded before it is forwarded, so a request is
 * always known before its reply can arrive.
 *
 * Process life as nbd-refserver: pid file once listening, --run CMD
 * (with $uri and $unixsocket of the spy; exit with its status),
 * --exit-with-parent, SIGTERM/SIGINT end it cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "sockets.h"
#include "uri.h"
#include "vector.h"
#include "spy.h"

#define SPY_VERSION "0.1"
#define MAX_RECORDED_VIOLATIONS 100000
#define PUMP_BUFSIZE (256 * 1024)
#define DRAIN_SECONDS 10

/* How long to wait for open connections at exit before cutting them. */
static int drain_seconds = DRAIN_SECONDS;

/* ---- configuration ------------------------------------------------- */

static const char *listen_path;
static bool activated;                  /* listening socket inherited */
static const char *upstream_text;       /* as given, for messages/JSON */
static char *up_unix;                   /* upstream Unix socket, or */
static char *up_host, *up_port;         /* upstream TCP */
static char *up_export;                 /* export name of the URI */
static const char *transcript_path;
static const char *json_path;
static const char *pidfile;
static const char *run_cmd;
static bool strict, quiet;
static struct spy_config spy_cfg;

/* ---- shared state (g_lock) ----------------------------------------- */

struct conn;

struct viol_rec {
  unsigned conn;
  enum spy_dir dir;
  char *id;
  bool must;
  char *msg;
};
DEFINE_VECTOR_TYPE (viol_vector, struct viol_rec);

struct conn_rec {
  unsigned id;
  double start, end;
  bool upstream_failed;
  struct spy_stats st;
};
DEFINE_VECTOR_TYPE (conn_rec_vector, struct conn_rec);
DEFINE_VECTOR_TYPE (conn_vector, struct conn *);

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static FILE *transcript;
static struct timespec t0;
static unsigned next_conn_id;
static viol_vector violations = empty_vector;
static size_t violations_dropped;
static uint64_t total_must, total_should;
static conn_rec_vector conn_recs = empty_vector;
static conn_vector active = empty_vector;

static int quit_pipe[2] = { -1, -1 };
static pid_t run_pid = -1;

/* One proxied connection. */
struct conn {
  unsigned id;
  int cfd, sfd;
  double start;
  pthread_mutex_t lock;       /* the decoder */
  struct spy_conn *dec;
  bool upstream_failed;
};

static double
elapsed (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) (ts.tv_sec - t0.tv_sec) +
    (double) (ts.tv_nsec - t0.tv_nsec) / 1e9;
}

static const char *
dir_arrow (enum spy_dir d)
{
  return d == SPY_CLIENT ? "C->S" : d == SPY_SERVER ? "S->C" : "----";
}

static const char *
dir_party (enum spy_dir d)
{
  return d == SPY_CLIENT ? "client" : "server";
}

/* Callers hold g_lock. */
static void
tline_locked (unsigned conn, const char *arrow, const char *text)
{
  if (transcript == NULL)
    return;
  if (conn)
    fprintf (transcript, "[%11.6f] #%u %s %s\n", elapsed (), conn, arrow,
             text);
  else
    fprintf (transcript, "[%11.6f] %s %s\n", elapsed (), arrow, text);
  fflush (transcript);
}

static void tnote (unsigned conn, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static void
tnote (unsigned conn, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&g_lock);
  tline_locked (conn, "----", buf);
}

static void
sink_line (void *opaque, unsigned conn, enum spy_dir dir, const char *text)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&g_lock);
  tline_locked (conn, dir_arrow (dir), text);
}

static void
sink_violation (void *opaque, unsigned conn, enum spy_dir dir,
                const char *id, bool must, const char *msg)
{
  char buf[2048];
  struct viol_rec v;

  snprintf (buf, sizeof buf, "VIOLATION %s %s by the %s: %s", id,
            must ? "MUST" : "SHOULD", dir_party (dir), msg);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&g_lock);
  tline_locked (conn, "!!!!", buf);
  if (!quiet)
    fprintf (stderr, "nbd-spy: #%u %s\n", conn, buf);
  if (must)
    total_must++;
  else
    total_should++;
  if (violations.len >= MAX_RECORDED_VIOLATIONS) {
    violations_dropped++;
    return;
  }
  v.conn = conn;
  v.dir = dir;
  v.must = must;
  v.id = strdup (id);
  v.msg = strdup (msg);
  if (v.id == NULL || v.msg == NULL ||
      viol_vector_append (&violations, v) == -1) {
    free (v.id);
    free (v.msg);
    violations_dropped++;
  }
}

static const struct spy_sink sink = {
  .line = sink_line, .violation = sink_violation, .opaque = NULL,
};

/* ---- forwarding ---------------------------------------------------- */

static int
connect_upstream (void)
{
  int fd;

  if (up_unix)
    fd = nbdp_connect_unix (up_unix);
  else
    fd = nbdp_connect_tcp (up_host, up_port);
  if (fd >= 0)
    nbdp_tune_socket (fd);
  return fd;
}

struct pump_arg {
  struct conn *k;
  enum spy_dir dir;
};

/* Copy one direction until EOF; decode each block before forwarding. */
static void *
pump (void *arg)
{
  struct pump_arg *pa = arg;
  struct conn *k = pa->k;
  enum spy_dir d = pa->dir;
  int from = d == SPY_CLIENT ? k->cfd : k->sfd;
  int to = d == SPY_CLIENT ? k->sfd : k->cfd;
  bool write_failed = false;
  unsigned char *buf = malloc (PUMP_BUFSIZE);

  if (buf == NULL) {
    nbdp_warn ("malloc");
    shutdown (from, SHUT_RDWR);
    shutdown (to, SHUT_RDWR);
    return NULL;
  }
  for (;;) {
    ssize_t n = read (from, buf, PUMP_BUFSIZE);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == -1)
        tnote (k->id, "%s: read error: %s", dir_arrow (d), strerror (errno));
      break;
    }
    pthread_mutex_lock (&k->lock);
    spy_conn_feed (k->dec, d, buf, n);
    pthread_mutex_unlock (&k->lock);
    if (nbdp_write_full (to, buf, n) == -1) {
      tnote (k->id, "%s: write error: %s", dir_arrow (d), strerror (errno));
      write_failed = true;
      break;
    }
  }
  free (buf);
  pthread_mutex_lock (&k->lock);
  spy_conn_eof (k->dec, d);
  pthread_mutex_unlock (&k->lock);
  if (write_failed) {
    shutdown (from, SHUT_RDWR);
    shutdown (to, SHUT_RDWR);
  }
  else
    shutdown (to, SHUT_WR);
  return NULL;
}

static void
active_remove (struct conn *k)
{
  for (size_t i = 0; i < active.len; i++)
    if (active.ptr[i] == k) {
      active.ptr[i] = active.ptr[--active.len];
      return;
    }
}

static void *
conn_thread (void *arg)
{
  struct conn *k = arg;
  struct pump_arg c2s = { k, SPY_CLIENT }, s2c = { k, SPY_SERVER };
  struct conn_rec rec;
  pthread_t t;
  int err;

  k->sfd = connect_upstream ();
  if (k->sfd == -1) {
    tnote (k->id, "cannot connect to the upstream server %s: %s",
           upstream_text, strerror (errno));
    nbdp_warn ("#%u: cannot connect to %s", k->id, upstream_text);
    k->upstream_failed = true;
  }
  else {
    tnote (k->id, "connection accepted, upstream %s connected",
           upstream_text);
    err = pthread_create (&t, NULL, pump, &s2c);
    if (err) {
      errno = err;
      nbdp_warn ("pthread_create");
      k->upstream_failed = true;
    }
    else {
      pump (&c2s);
      pthread_join (t, NULL);
    }
  }

  memset (&rec, 0, sizeof rec);
  rec.id = k->id;
  rec.start = k->start;
  rec.upstream_failed = k->upstream_failed;
  pthread_mutex_lock (&k->lock);
  spy_conn_stats (k->dec, &rec.st);
  pthread_mutex_unlock (&k->lock);
  tnote (k->id, "connection closed: %" PRIu64 " client messages (%" PRIu64
         " bytes), %" PRIu64 " server messages (%" PRIu64 " bytes), %"
         PRIu64 " MUST and %" PRIu64 " SHOULD violations%s%s",
         rec.st.messages[SPY_CLIENT], rec.st.bytes[SPY_CLIENT],
         rec.st.messages[SPY_SERVER], rec.st.bytes[SPY_SERVER],
         rec.st.violations_must, rec.st.violations_should,
         rec.st.raw ? "; raw pass-through: " : "",
         rec.st.raw ? rec.st.raw_reason : "");

  pthread_mutex_lock (&g_lock);
  rec.end = elapsed ();
  if (conn_rec_vector_append (&conn_recs, rec) == -1)
    nbdp_warn ("recording connection %u", k->id);
  active_remove (k);
  close (k->cfd);
  if (k->sfd >= 0)
    close (k->sfd);
  pthread_cond_broadcast (&g_cond);
  pthread_mutex_unlock (&g_lock);

  spy_conn_free (k->dec);
  pthread_mutex_destroy (&k->lock);
  free (k);
  return NULL;
}

static void
start_conn (int cfd)
{
  struct conn *k = calloc (1, sizeof *k);
  pthread_attr_t attr;
  pthread_t t;
  int err;

  if (k == NULL) {
    nbdp_warn ("calloc");
    close (cfd);
    return;
  }
  nbdp_tune_socket (cfd);
  k->cfd = cfd;
  k->sfd = -1;
  pthread_mutex_init (&k->lock, NULL);
  pthread_mutex_lock (&g_lock);
  k->id = ++next_conn_id;
  k->start = elapsed ();
  pthread_mutex_unlock (&g_lock);
  k->dec = spy_conn_new (k->id, &spy_cfg, &sink);
  if (k->dec == NULL) {
    nbdp_warn ("spy_conn_new");
    goto err_free;
  }
  pthread_mutex_lock (&g_lock);
  if (conn_vector_append (&active, k) == -1) {
    pthread_mutex_unlock (&g_lock);
    nbdp_warn ("recording connection");
    goto err_free;
  }
  pthread_mutex_unlock (&g_lock);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  err = pthread_create (&t, &attr, conn_thread, k);
  pthread_attr_destroy (&attr);
  if (err) {
    errno = err;
    nbdp_warn ("pthread_create");
    pthread_mutex_lock (&g_lock);
    active_remove (k);
    pthread_mutex_unlock (&g_lock);
    goto err_free;
  }
  return;

 err_free:
  spy_conn_free (k->dec);
  pthread_mutex_destroy (&k->lock);
  free (k);
  close (cfd);
}

/* Wait (bounded) for the connections to end; then cut what is left. */
static void
drain (int seconds)
{
  struct timespec dl;

  clock_gettime (CLOCK_REALTIME, &dl);
  dl.tv_sec += seconds;
  pthread_mutex_lock (&g_lock);
  while (active.len > 0)
    if (pthread_cond_timedwait (&g_cond, &g_lock, &dl) == ETIMEDOUT)
      break;
  if (active.len > 0) {
    tline_locked (0, "----", "connections still open at exit: cut");
    for (size_t i = 0; i < active.len; i++) {
      shutdown (active.ptr[i]->cfd, SHUT_RDWR);
      if (active.ptr[i]->sfd >= 0)
        shutdown (active.ptr[i]->sfd, SHUT_RDWR);
    }
    clock_gettime (CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    while (active.len > 0)
      if (pthread_cond_timedwait (&g_cond, &g_lock, &dl) == ETIMEDOUT)
        break;
  }
  pthread_mutex_unlock (&g_lock);
}

/* ---- JSON ---------------------------------------------------------- */

static int
cmp_conn_rec (const void *a, const void *b)
{
  const struct conn_rec *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

static int
write_json (void)
{
  json_t *root, *conns, *viols, *msgs;
  uint64_t mc = 0, ms = 0;
  int r;

  qsort (conn_recs.ptr, conn_recs.len, sizeof conn_recs.ptr[0],
         cmp_conn_rec);
  root = json_object ();
  conns = json_array ();
  viols = json_array ();
  for (size_t i = 0; i < conn_recs.len; i++) {
    const struct conn_rec *c = &conn_recs.ptr[i];
    json_t *o = json_pack ("{s:I, s:f, s:f, s:{s:I, s:I}, s:{s:I, s:I}, "
                           "s:b, s:b, s:b, s:b, s:I, s:i, s:s, "
                           "s:{s:I, s:I}}",
                           "conn", (json_int_t) c->id,
                           "start", c->start, "end", c->end,
                           "messages",
                           "client", (json_int_t) c->st.messages[SPY_CLIENT],
                           "server", (json_int_t) c->st.messages[SPY_SERVER],
                           "bytes",
                           "client", (json_int_t) c->st.bytes[SPY_CLIENT],
                           "server", (json_int_t) c->st.bytes[SPY_SERVER],
                           "upstream_failed", c->upstream_failed,
                           "transmission", c->st.transmission,
                           "structured", c->st.structured,
                           "extended", c->st.extended,
                           "export_size", (json_int_t) c->st.export_size,
                           "eflags", (int) c->st.eflags,
                           "resize_mode", c->st.resize_mode,
                           "violations",
                           "must", (json_int_t) c->st.violations_must,
                           "should", (json_int_t) c->st.violations_should);
    if (o == NULL)
      goto err;
    json_object_set_new (o, "raw", json_boolean (c->st.raw));
    json_object_set_new (o, "raw_reason", c->st.raw
                         ? json_string (c->st.raw_reason) : json_null ());
    json_array_append_new (conns, o);
    mc += c->st.messages[SPY_CLIENT];
    ms += c->st.messages[SPY_SERVER];
  }
  for (size_t i = 0; i < violations.len; i++) {
    const struct viol_rec *v = &violations.ptr[i];
    json_t *o = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:s}",
                           "conn", (json_int_t) v->conn,
                           "direction", dir_arrow (v->dir),
                           "party", dir_party (v->dir),
                           "id", v->id,
                           "level", v->must ? "MUST" : "SHOULD",
                           "message", v->msg);
    if (o == NULL)
      goto err;
    json_array_append_new (viols, o);
  }
  msgs = json_pack ("{s:I, s:I}", "client", (json_int_t) mc,
                    "server", (json_int_t) ms);
  json_object_set_new (root, "program", json_string ("nbd-spy"));
  json_object_set_new (root, "version", json_string (SPY_VERSION));
  json_object_set_new (root, "listen", json_string (listen_path));
  json_object_set_new (root, "upstream", json_string (upstream_text));
  json_object_set_new (root, "connections", conns);
  json_object_set_new (root, "messages", msgs);
  json_object_set_new (root, "violations", viols);
  json_object_set_new (root, "violations_dropped",
                       json_integer ((json_int_t) violations_dropped));
  json_object_set_new (root, "summary",
                       json_pack ("{s:I, s:I, s:I}",
                                  "connections", (json_int_t) conn_recs.len,
                                  "must", (json_int_t) total_must,
                                  "should", (json_int_t) total_should));
  r = json_dump_file (root, json_path, JSON_INDENT (2) | JSON_SORT_KEYS);
  json_decref (root);
  if (r == -1)
    nbdp_warnx ("cannot write %s", json_path);
  return r;

 err:
  json_decref (root);
  json_decref (conns);
  json_decref (viols);
  nbdp_warnx ("building the JSON summary failed");
  return -1;
}

static void
free_records (void)
{
  for (size_t i = 0; i < violations.len; i++) {
    free (violations.ptr[i].id);
    free (violations.ptr[i].msg);
  }
  free (violations.ptr);
  free (conn_recs.ptr);
  free (active.ptr);
  violations = (viol_vector) empty_vector;
  conn_recs = (conn_rec_vector) empty_vector;
  active = (conn_vector) empty_vector;
}

/* ---- process life -------------------------------------------------- */

static void
on_signal (int sig)
{
  int saved = errno;
  char c = (char) sig;

  if (write (quit_pipe[1], &c, 1) == -1) {
    /* Nothing to do: the pipe is full, a wakeup is pending already. */
  }
  errno = saved;
}

static void
install_signals (void)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  sigaction (SIGCHLD, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction (SIGPIPE, &sa, NULL);
  /* A parent may start us with these blocked (nbd-matrix does), so that a
   * stop sent before this point is not lost: now they are handled.
   */
  {
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGTERM);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGHUP);
    sigaddset (&set, SIGCHLD);
    sigprocmask (SIG_UNBLOCK, &set, NULL);
  }
}

static int
start_run (void)
{
  char *uri = nbdp_uri_unix (up_export ? up_export : "", listen_path);

  if (uri == NULL) {
    nbdp_warn ("making the URI");
    return -1;
  }
  run_pid = fork ();
  if (run_pid == -1) {
    nbdp_warn ("fork");
    free (uri);
    return -1;
  }
  if (run_pid == 0) {
    signal (SIGPIPE, SIG_DFL);
    signal (SIGCHLD, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    setenv ("uri", uri, 1);
    setenv ("unixsocket", listen_path, 1);
    setenv ("upstream", upstream_text, 1);
    execl ("/bin/sh", "sh", "-c", run_cmd, (char *) NULL);
    nbdp_warn ("/bin/sh");
    _exit (127);
  }
  free (uri);
  return 0;
}

static int
write_pidfile (void)
{
  FILE *f;
  char *tmp;

  if (pidfile == NULL)
    return 0;
  if (asprintf (&tmp, "%s.tmp", pidfile) == -1)
    return -1;
  f = fopen (tmp, "w");
  if (f == NULL || fprintf (f, "%d\n", (int) getpid ()) < 0 ||
      fclose (f) != 0 || rename (tmp, pidfile) == -1) {
    nbdp_warn ("writing %s", pidfile);
    free (tmp);
    return -1;
  }
  free (tmp);
  return 0;
}

/* Accept until a signal, or until --run's command exits.  Returns the
 * command's exit status (or 0).
 */
static int
accept_loop (int lfd)
{
  struct pollfd pfd[2] = {
    { .fd = lfd, .events = POLLIN },
    { .fd = quit_pipe[0], .events = POLLIN },
  };

  for (;;) {
    if (poll (pfd, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      nbdp_warn ("poll");
      return 1;
    }
    if (pfd[1].revents) {
      char sigs[64];
      ssize_t n = read (quit_pipe[0], sigs, sizeof sigs);
      for (ssize_t i = 0; i < n; i++) {
        if (sigs[i] == SIGCHLD) {
          int status;
          if (run_pid > 0 && waitpid (run_pid, &status, WNOHANG) == run_pid) {
            run_pid = -1;
            if (WIFEXITED (status))
              return WEXITSTATUS (status);
            return 128 + WTERMSIG (status);
          }
        }
        else {
          tnote (0, "signal %d: stopping", sigs[i]);
          return 0;
        }
      }
    }
    if (pfd[0].revents & POLLIN) {
      int cfd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
      if (cfd == -1) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
          nbdp_warn ("accept");
        continue;
      }
      start_conn (cfd);
    }
  }
}

/* ---- command line -------------------------------------------------- */

static void
usage (FILE *f)
{
  fprintf (f,
"nbd-spy: a validating NBD proxy.  Forwards each connection on --listen\n"
"byte for byte to the upstream server, decodes both directions, runs the\n"
"rule engine on every message and reports violations with their\n"
"requirement IDs.\n"
"\n"
"usage: nbd-spy [OPTIONS] --listen UNIX_PATH --upstream URI\n"
"       nbd-spy [OPTIONS] --listen UNIX_PATH --upstream-unix PATH\n"
"\n"
"  --listen PATH         listen on this Unix socket (replaced if it exists);\n"
"                        with socket activation (LISTEN_PID, LISTEN_FDS),\n"
"                        the inherited socket (fd 3) is used instead\n"
"  --upstream URI        nbd://HOST[:PORT][/EXPORT] or\n"
"                        nbd+unix:///[EXPORT]?socket=PATH (nbds: forwarded\n"
"                        encrypted, decoded up to STARTTLS)\n"
"  --upstream-unix PATH  the upstream server's Unix socket\n"
"  --transcript FILE     one line per message (- for stdout)\n"
"  --json FILE           summary at exit: connections, message counts,\n"
"                        violations [{conn, direction, party, id, level,\n"
"                        message}]\n"
"  --strict              exit 1 if any MUST violation was seen\n"
"  --resize-encoding E   judge the draft RESIZE extension in encoding E\n"
"                        (negotiated, flag-only, info-optin, boolean,\n"
"                        legacy); default: guessed per connection\n"
"  --run CMD             once listening, run CMD (sh -c) with $uri and\n"
"                        $unixsocket of the spy ($upstream too); stop when\n"
"                        it exits and exit with its status\n"
"  --exit-with-parent    exit when the parent process exits\n"
"  --drain-timeout S     at exit, wait S seconds (default %d) for open\n"
"                        connections to end before cutting them\n"
"  -P, --pidfile FILE    write the pid to FILE once listening\n"
"  -q, --quiet           do not print violations on stderr\n"
"  -v, --verbose         debug messages\n"
"  -h, --help            this text\n"
"  -V, --version         print the version\n"
"\n"
"Exit status: with --run, the command's status if not 0; otherwise 1 with\n"
"--strict if a MUST violation was seen, 0 if not; 2 on usage or setup\n"
"errors.\n", DRAIN_SECONDS);
}

enum {
  OPT_LISTEN = 256, OPT_UPSTREAM, OPT_UPSTREAM_UNIX, OPT_TRANSCRIPT,
  OPT_JSON, OPT_STRICT, OPT_RUN, OPT_EXIT_WITH_PARENT, OPT_ENCODING,
  OPT_DRAIN_TIMEOUT,
};

static const struct option long_options[] = {
  { "listen", required_argument, NULL, OPT_LISTEN },
  { "upstream", required_argument, NULL, OPT_UPSTREAM },
  { "upstream-unix", required_argument, NULL, OPT_UPSTREAM_UNIX },
  { "transcript", required_argument, NULL, OPT_TRANSCRIPT },
  { "json", required_argument, NULL, OPT_JSON },
  { "strict", no_argument, NULL, OPT_STRICT },
  { "run", required_argument, NULL, OPT_RUN },
  { "exit-with-parent", no_argument, NULL, OPT_EXIT_WITH_PARENT },
  { "resize-encoding", required_argument, NULL, OPT_ENCODING },
  { "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
  { "pidfile", required_argument, NULL, 'P' },
  { "quiet", no_argument, NULL, 'q' },
  { "verbose", no_argument, NULL, 'v' },
  { "help", no_argument, NULL, 'h' },
  { "version", no_argument, NULL, 'V' },
  { NULL, 0, NULL, 0 },
};

int
main (int argc, char *argv[])
{
  const char *upstream_uri = NULL, *upstream_unix = NULL;
  bool exit_with_parent = false;
  pid_t parent = getppid ();
  int c, lfd, status;
  static char activated_path[sizeof ((struct sockaddr_un *) 0)->sun_path + 1];

  nbdp_progname = "nbd-spy";
  clock_gettime (CLOCK_MONOTONIC, &t0);
  /* Socket activation: the caller made the listening socket (fd 3), so
   * that clients may connect before the spy runs.
   */
  activated = nbdp_socket_activation () > 0;
  while ((c = getopt_long (argc, argv, "P:qvhV", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_LISTEN: listen_path = optarg; break;
    case OPT_UPSTREAM: upstream_uri = optarg; break;
    case OPT_UPSTREAM_UNIX: upstream_unix = optarg; break;
    case OPT_TRANSCRIPT: transcript_path = optarg; break;
    case OPT_JSON: json_path = optarg; break;
    case OPT_STRICT: strict = true; break;
    case OPT_RUN: run_cmd = optarg; break;
    case OPT_EXIT_WITH_PARENT: exit_with_parent = true; break;
    case OPT_ENCODING:
      if (nbdp_rz_encoding_parse (optarg, &spy_cfg.encoding) == -1) {
        nbdp_warnx ("--resize-encoding: unknown encoding '%s'", optarg);
        exit (2);
      }
      spy_cfg.have_encoding = true;
      break;
    case OPT_DRAIN_TIMEOUT: {
      char *end;
      long v;
      errno = 0;
      v = strtol (optarg, &end, 10);
      if (errno || end == optarg || *end || v < 0 || v > 3600) {
        nbdp_warnx ("--drain-timeout %s: expected seconds (0..3600)", optarg);
        exit (2);
      }
      drain_seconds = (int) v;
      break;
    }
    case 'P': pidfile = optarg; break;
    case 'q': quiet = true; break;
    case 'v': nbdp_verbose = true; break;
    case 'h': usage (stdout); exit (0);
    case 'V': printf ("nbd-spy %s\n", SPY_VERSION); exit (0);
    default: usage (stderr); exit (2);
    }
  }
  if (activated && listen_path == NULL) {
    struct sockaddr_un sun;
    socklen_t len = sizeof sun;
    memset (&sun, 0, sizeof sun);
    if (getsockname (3, (struct sockaddr *) &sun, &len) == 0 &&
        sun.sun_family == AF_UNIX && sun.sun_path[0]) {
      memcpy (activated_path, sun.sun_path, sizeof sun.sun_path);
      listen_path = activated_path;
    }
  }
  if (optind != argc || listen_path == NULL ||
      (upstream_uri == NULL) == (upstream_unix == NULL)) {
    nbdp_warnx ("give --listen (or a Unix socket by socket activation) "
                "and exactly one of --upstream and --upstream-unix");
    usage (stderr);
    exit (2);
  }
  if (upstream_uri) {
    struct nbdp_uri u;
    char err[256];
    if (nbdp_uri_parse (upstream_uri, &u, err, sizeof err) == -1) {
      nbdp_warnx ("--upstream %s: %s", upstream_uri, err);
      exit (2);
    }
    if (u.is_unix)
      up_unix = strdup (u.socket);
    else {
      up_host = strdup (u.host);
      up_port = strdup (u.port);
    }
    up_export = strdup (u.export_name ? u.export_name : "");
    nbdp_uri_free (&u);
    upstream_text = upstream_uri;
  }
  else {
    up_unix = strdup (upstream_unix);
    up_export = strdup ("");
    upstream_text = upstream_unix;
  }

  if (exit_with_parent) {
    if (prctl (PR_SET_PDEATHSIG, SIGTERM) == -1)
      nbdp_fatal ("prctl PR_SET_PDEATHSIG");
    if (getppid () != parent)
      exit (0);
  }
  if (transcript_path) {
    if (strcmp (transcript_path, "-") == 0)
      transcript = stdout;
    else if ((transcript = fopen (transcript_path, "we")) == NULL)
      nbdp_fatal ("%s", transcript_path);
  }
  if (pipe2 (quit_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
    nbdp_fatal ("pipe");
  install_signals ();

  if (activated)
    lfd = 3;
  else {
    lfd = nbdp_listen_unix (listen_path);
    if (lfd == -1)
      nbdp_fatal ("listening on %s", listen_path);
  }
  tnote (0, "nbd-spy %s listening on %s, upstream %s", SPY_VERSION,
         listen_path, upstream_text);
  if (write_pidfile () == -1) {
    if (!activated)
      unlink (listen_path);
    exit (2);
  }
  if (run_cmd && start_run () == -1) {
    if (!activated)
      unlink (listen_path);
    exit (2);
  }
  status = accept_loop (lfd);
  close (lfd);
  if (!activated)
    unlink (listen_path);
  if (run_pid > 0) {
    kill (run_pid, SIGTERM);
    waitpid (run_pid, NULL, 0);
  }
  drain (drain_seconds);

  pthread_mutex_lock (&g_lock);
  tline_locked (0, "----", "exit");
  if (json_path && write_json () == -1 && status == 0)
    status = 2;
  if (!quiet && (total_must || total_should))
    fprintf (stderr, "nbd-spy: %" PRIu64 " MUST and %" PRIu64 " SHOULD "
             "violations in %zu connections\n", total_must, total_should,
             conn_recs.len);
  if (status == 0 && strict && total_must > 0)
    status = 1;
  free_records ();
  if (transcript && transcript != stdout)
    fclose (transcript);
  pthread_mutex_unlock (&g_lock);
  if (pidfile)
    unlink (pidfile);
  free (up_unix);
  free (up_host);
  free (up_port);
  free (up_export);
  exit (status);
}
