/* nbd-conformance: helpers for the C integration tests (see testlib.h). */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "codec.h"
#include "testlib.h"

#define MAX_SERVERS 8
#define MAX_ARGS 64

static pid_t servers[MAX_SERVERS];
static char server_logs[MAX_SERVERS][300];
static size_t n_servers;
static const char *case_name = "?";

static void
print_server_logs (void)
{
  size_t i;

  for (i = 0; i < n_servers; i++) {
    FILE *f = fopen (server_logs[i], "r");
    char line[1024];
    long size;

    if (f == NULL)
      continue;
    /* The last 4 KiB is enough context. */
    fseek (f, 0, SEEK_END);
    size = ftell (f);
    if (size > 4096)
      fseek (f, size - 4096, SEEK_SET);
    else
      fseek (f, 0, SEEK_SET);
    printf ("--- end of %s\n", server_logs[i]);
    while (fgets (line, sizeof line, f))
      fputs (line, stdout);
    fclose (f);
  }
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

  nanosleep (&ts, NULL);
}

static void
kill_servers (void)
{
  size_t i;

  for (i = 0; i < n_servers; i++) {
    int ms;

    if (servers[i] <= 0)
      continue;
    kill (servers[i], SIGTERM);
    /* Bounded wait, then force: a server still serving an open
     * connection of ours may take its time.
     */
    for (ms = 0; ms < 2000; ms += 10) {
      if (waitpid (servers[i], NULL, WNOHANG) == servers[i])
        break;
      sleep_ms (10);
    }
    if (ms >= 2000) {
      kill (servers[i], SIGKILL);
      waitpid (servers[i], NULL, 0);
    }
    servers[i] = 0;
  }
}

void
tl_fail (const char *fmt, ...)
{
  va_list ap;

  printf ("FAIL: [%s] ", case_name);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  print_server_logs ();
  fflush (stdout);
  exit (1);
}

void
tl_skip (const char *fmt, ...)
{
  va_list ap;

  printf ("SKIP: ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
  exit (77);
}

void
tl_ok (const char *fmt, ...)
{
  va_list ap;

  printf ("ok: ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
}

void
tl_info (const char *fmt, ...)
{
  va_list ap;

  printf ("info: ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
}

const char *
tl_errname (int nbd_err)
{
  static char buf[32];
  const char *n;

  if (nbd_err == 0)
    return "success";
  if (nbd_err < 0)
    return "connection closed";
  n = nbdp_name_of_error ((uint32_t) nbd_err);
  if (n)
    return n;
  snprintf (buf, sizeof buf, "NBD error %d", nbd_err);
  return buf;
}

static const char *
server_path (void)
{
  const char *p = getenv ("NBD_REFSERVER");
  static char buf[4096];
  const char *top;

  if (p && *p)
    return p;
  top = getenv ("NBDP_TOP");
  snprintf (buf, sizeof buf, "%s/reference-server/nbd-refserver",
            top ? top : ".");
  return buf;
}

static const char *
test_dir (void)
{
  const char *d = getenv ("NBDP_TEST_DIR");

  if (d == NULL || *d == '\0')
    tl_fail ("NBDP_TEST_DIR is not set: run through scripts/run-tests.sh");
  return d;
}

void
tl_start_server (struct tl_server *s, const char *const *args)
{
  const char *path = server_path ();
  char pidfile[300];
  const char *argv[MAX_ARGS];
  size_t argc = 0, i;
  pid_t pid;
  int ms;

  if (access (path, X_OK) == -1)
    tl_fail ("%s is not built (run: make reference-server/nbd-refserver)",
             path);
  if (n_servers >= MAX_SERVERS)
    tl_fail ("too many servers in one test");

  snprintf (s->sock, sizeof s->sock, "%s/sock%zu", test_dir (), n_servers);
  snprintf (pidfile, sizeof pidfile, "%s/pid%zu", test_dir (), n_servers);
  snprintf (server_logs[n_servers], sizeof server_logs[0], "%s/server%zu.log",
            test_dir (), n_servers);
  unlink (pidfile);

  argv[argc++] = path;
  argv[argc++] = "-f";
  argv[argc++] = "--exit-with-parent";
  argv[argc++] = "-U";
  argv[argc++] = s->sock;
  argv[argc++] = "-P";
  argv[argc++] = pidfile;
  for (i = 0; args[i] != NULL && argc < MAX_ARGS - 1; i++)
    argv[argc++] = args[i];
  argv[argc] = NULL;

  printf ("start:");
  for (i = 0; argv[i] != NULL; i++)
    printf (" %.200s%s", argv[i], strlen (argv[i]) > 200 ? "..." : "");
  printf ("\n");
  fflush (stdout);

  pid = fork ();
  if (pid == -1)
    tl_fail ("fork: %m");
  if (pid == 0) {
    int fd = open (server_logs[n_servers], O_WRONLY|O_CREAT|O_TRUNC, 0644);
    if (fd >= 0) {
      dup2 (fd, 2);
      close (fd);
    }
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    execv (path, (char **) argv);
    perror (path);
    _exit (126);
  }
  servers[n_servers++] = pid;
  s->pid = pid;

  /* The pid file appears once the server listens. */
  for (ms = 0; ms < 10000; ms += 10) {
    struct stat st;
    int status;

    if (stat (pidfile, &st) == 0 && st.st_size > 0)
      break;
    if (waitpid (pid, &status, WNOHANG) == pid) {
      servers[n_servers - 1] = 0;
      tl_fail ("nbd-refserver exited (status 0x%x) before listening",
               (unsigned) status);
    }
    sleep_ms (10);
  }
  if (ms >= 10000)
    tl_fail ("nbd-refserver wrote no pid file %s within 10 s", pidfile);
}

bool
tl_server_running (const struct tl_server *s)
{
  int status;

  return waitpid (s->pid, &status, WNOHANG) == 0;
}

long
tl_server_rss_kib (const struct tl_server *s)
{
  char path[64], line[256];
  FILE *f;
  long kib = -1;

  snprintf (path, sizeof path, "/proc/%d/status", (int) s->pid);
  f = fopen (path, "r");
  if (f == NULL)
    return -1;
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose (f);
  return kib;
}

struct nbdp_client *
tl_connect (const struct tl_server *s)
{
  struct nbdp_client *c = nbdp_client_new ();

  if (c == NULL)
    tl_fail ("nbdp_client_new: %m");
  if (nbdp_client_connect_unix (c, s->sock) == -1)
    tl_fail ("connect to %s: %s", s->sock, nbdp_client_error (c));
  nbdp_client_set_timeout (c, 10000);
  return c;
}

struct nbdp_client *
tl_open (const struct tl_server *s, const char *name, bool structured)
{
  struct nbdp_client *c = tl_connect (s);
  static const char *const ctx[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nbdp_handshake_opts o = {
    .export_name = name,
    .structured_reply = structured,
    .require = true,
    .meta_contexts = structured ? ctx : NULL,
    .n_meta_contexts = structured ? 1 : 0,
  };

  if (nbdp_client_handshake (c, &o) == -1)
    tl_fail ("handshake (GO \"%s\"%s): %s", name,
             structured ? ", structured replies, base:allocation" : "",
             nbdp_client_error (c));
  return c;
}

int
tl_cmd (struct nbdp_client *c, uint16_t type, uint16_t flags,
        uint64_t offset, uint64_t count, void *buf, const void *payload,
        enum nbdp_layout layout)
{
  struct nbdp_cmd cmd = {
    .type = type, .flags = flags, .offset = offset, .count = count,
    .buf = buf, .payload = payload, .layout = layout,
  };
  int r, ret;

  r = nbdp_client_cmd_start (c, &cmd);
  if (r == 0)
    r = nbdp_client_cmd_wait (c, &cmd);
  if (r == 0)
    ret = 0;
  else if (c->failure == NBDP_FAIL_REFUSED && cmd.error != 0)
    ret = (int) cmd.error;
  else if (c->failure == NBDP_FAIL_PROTOCOL || cmd.violation)
    tl_fail ("protocol violation in the reply to %s offset %" PRIu64
             " count %" PRIu64 " flags 0x%x: %s",
             nbdp_name_of_cmd (type) ? nbdp_name_of_cmd (type) : "command",
             offset, count, flags,
             cmd.violation ? cmd.violation_message : nbdp_client_error (c));
  else
    ret = -1;
  nbdp_client_cmd_cleanup (c, &cmd);
  return ret;
}

bool
tl_server_closed (struct nbdp_client *c)
{
  return nbdp_client_expect_eof (c) == 0;
}

enum tl_peer
tl_peer_state (struct nbdp_client *c, int ms)
{
  struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
  unsigned char b;
  ssize_t r;

  if (c->fd < 0)
    return TL_PEER_CLOSED;
  r = poll (&pfd, 1, ms);
  if (r == 0)
    return TL_PEER_TIMEOUT;
  if (r < 0)
    tl_fail ("poll: %m");
  r = recv (c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (r > 0)
    return TL_PEER_DATA;
  if (r == 0 || errno == ECONNRESET || errno == EPIPE)
    return TL_PEER_CLOSED;
  if (errno == EAGAIN)
    return TL_PEER_TIMEOUT;
  tl_fail ("recv: %m");
}

struct nbdp_client *
tl_newstyle (const struct tl_server *s, uint32_t cflags)
{
  struct nbdp_client *c = tl_connect (s);
  struct nbdp_greeting g;

  if (nbdp_client_recv_greeting (c, &g) == -1)
    tl_fail ("reading the greeting: %s", nbdp_client_error (c));
  if (g.oldstyle || !(g.gflags & NBD_FLAG_FIXED_NEWSTYLE))
    tl_fail ("greeting: got %s with handshake flags 0x%x; expected fixed"
             " newstyle", g.oldstyle ? "oldstyle" : "newstyle", g.gflags);
  if (nbdp_client_send_cflags (c, cflags) == -1)
    tl_fail ("sending client flags 0x%x: %s", cflags, nbdp_client_error (c));
  return c;
}

const char *
tl_repname (uint32_t rep)
{
  static char buf[32];
  const char *n = nbdp_name_of_rep (rep);

  if (n)
    return n;
  snprintf (buf, sizeof buf, "reply type 0x%" PRIx32, rep);
  return buf;
}

uint32_t
tl_opt_final (struct nbdp_client *c, uint32_t opt, const char *sent)
{
  struct nbdp_opt_reply r;
  unsigned n;

  for (n = 0; n < 10000; n++) {
    switch (tl_peer_state (c, 10000)) {
    case TL_PEER_CLOSED:
      return 0;
    case TL_PEER_TIMEOUT:
      tl_fail ("sent %s; got nothing within 10 s; expected an option reply"
               " or a disconnect", sent);
    case TL_PEER_DATA:
      break;
    }
    if (nbdp_client_recv_option_reply (c, &r, 65536) == -1) {
      if (tl_peer_state (c, 0) == TL_PEER_CLOSED && c->failure == NBDP_FAIL_IO)
        return 0;
      tl_fail ("sent %s; reading the option reply: %s", sent,
               nbdp_client_error (c));
    }
    if (r.option != opt)
      tl_fail ("sent %s; got a reply for option %" PRIu32 "; expected %"
               PRIu32 " (option replies echo the option)", sent, r.option,
               opt);
    if (r.reply == NBD_REP_ACK || (r.reply & NBD_REP_ERR (0)))
      return r.reply;
  }
  tl_fail ("sent %s; got 10000 non-final replies", sent);
}

void
tl_check_conn_alive (struct nbdp_client *c, const char *what)
{
  char buf[512];
  int r = tl_cmd (c, NBD_CMD_READ, 0, 0, sizeof buf, buf, NULL,
                  NBDP_LAYOUT_AUTO);

  if (r != 0)
    tl_fail ("after %s: sent NBD_CMD_READ 512 at 0 on the same connection;"
             " got %s (%s); expected success", what, tl_errname (r),
             nbdp_client_error (c));
  tl_ok ("same connection still serves a read after %s", what);
}

void
tl_check_alive (const struct tl_server *s, const char *what)
{
  struct nbdp_client *c;

  if (!tl_server_running (s))
    tl_fail ("after %s: the server process is gone; expected it to keep"
             " serving other connections", what);
  c = tl_open (s, "", true);
  tl_check_conn_alive (c, what);
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_ok ("server still serves a fresh connection after %s", what);
}

int
tl_main (int argc, char **argv, const struct tl_case *cases, size_t n,
         const char *default_case)
{
  const char *want = default_case;
  size_t i;

  if (argc > 1)
    want = argv[1];
  signal (SIGPIPE, SIG_IGN);
  setvbuf (stdout, NULL, _IOLBF, 0);
  atexit (kill_servers);
  if (want == NULL) {
    printf ("usage: %s CASE\ncases:", argv[0]);
    for (i = 0; i < n; i++)
      printf (" %s", cases[i].name);
    printf ("\n");
    return 2;
  }
  for (i = 0; i < n; i++) {
    if (strcmp (cases[i].name, want) == 0) {
      case_name = cases[i].name;
      printf ("case: %s\n", case_name);
      cases[i].fn ();
      printf ("pass: %s\n", case_name);
      return 0;
    }
  }
  printf ("unknown case %s\n", want);
  return 2;
}
