/* nbd-refserver: the control socket (--control PATH), through which the
 * administrator (a test, the harness, nbd-refserver-ctl) changes export
 * sizes from outside, so that queries and notifications can be tested
 * against changes no client made.  A one-line text protocol, one reply
 * line per request line:
 *
 *   resize EXPORT SIZE      -> ok SIZE | error MESSAGE
 *   size EXPORT             -> ok SIZE
 *   conns EXPORT            -> ok N   (connections in transmission)
 *   subs EXPORT             -> ok N   (active subscriptions)
 *   wait-conns EXPORT N     -> ok N   once there are exactly N (30 s max)
 *   wait-subs EXPORT N      -> ok N   likewise for subscriptions
 *   help                    -> the commands, then ok
 *
 * EXPORT is the export name, or "-" (or "") for the default export; SIZE
 * takes the suffixes K M G T P E.  Each client gets its own thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "io.h"
#include "log.h"
#include "sockets.h"

#define LINE_MAX_LEN 4096

static int listen_fd = -1;
static char *control_path;
static int stop_pipe[2] = { -1, -1 };
static pthread_t accept_thread;
static bool running;

static const char help_text[] =
  "commands:\n"
  "  resize EXPORT SIZE    change the size (as the administrator)\n"
  "  size EXPORT           current size\n"
  "  conns EXPORT          connections in the transmission phase\n"
  "  subs EXPORT           active subscriptions\n"
  "  wait-conns EXPORT N   wait until there are N connections\n"
  "  wait-subs EXPORT N    wait until there are N subscriptions\n"
  "  help                  this text\n"
  "EXPORT: a name, or - for the default export\n";

static struct export *
find_export (const char *name)
{
  if (strcmp (name, "-") == 0 || strcmp (name, "\"\"") == 0)
    return exports_find ("", 0);
  return exports_find (name, strlen (name));
}

/* Handle one line; write the answer into out. */
static void
handle_line (char *line, char *out, size_t outlen)
{
  char *argv[4];
  int argc = 0;
  char *save = NULL, *tok;
  struct export *exp = NULL;
  uint64_t v, r;
  char msg[256];

  for (tok = strtok_r (line, " \t\r", &save); tok && argc < 4;
       tok = strtok_r (NULL, " \t\r", &save))
    argv[argc++] = tok;
  if (argc == 0) {
    snprintf (out, outlen, "error empty command (try help)\n");
    return;
  }
  if (strcmp (argv[0], "help") == 0) {
    snprintf (out, outlen, "%sok\n", help_text);
    return;
  }
  if (argc >= 2) {
    exp = find_export (argv[1]);
    if (exp == NULL) {
      snprintf (out, outlen, "error no export named \"%s\"\n", argv[1]);
      return;
    }
  }
  if (strcmp (argv[0], "resize") == 0 && argc == 3) {
    if (parse_size (argv[2], &v) == -1) {
      snprintf (out, outlen, "error invalid size \"%s\"\n", argv[2]);
      return;
    }
    if (resize_admin (exp, v, &r, msg, sizeof msg) == -1)
      snprintf (out, outlen, "error %s\n", msg);
    else
      snprintf (out, outlen, "ok %" PRIu64 "\n", r);
  }
  else if (strcmp (argv[0], "size") == 0 && argc == 2) {
    pthread_rwlock_rdlock (&exp->size_lock);
    v = export_size (exp);
    pthread_rwlock_unlock (&exp->size_lock);
    snprintf (out, outlen, "ok %" PRIu64 "\n", v);
  }
  else if (strcmp (argv[0], "conns") == 0 && argc == 2)
    snprintf (out, outlen, "ok %u\n", resize_count_conns (exp));
  else if (strcmp (argv[0], "subs") == 0 && argc == 2)
    snprintf (out, outlen, "ok %u\n", resize_count_subs (exp));
  else if ((strcmp (argv[0], "wait-conns") == 0 ||
            strcmp (argv[0], "wait-subs") == 0) && argc == 3) {
    bool subs = argv[0][5] == 's';
    if (parse_size (argv[2], &v) == -1 || v > 100000) {
      snprintf (out, outlen, "error invalid count \"%s\"\n", argv[2]);
      return;
    }
    if (resize_wait_count (exp, subs, v, 30) == -1)
      snprintf (out, outlen, "error timed out after 30 s: %u %s, "
                "waiting for %" PRIu64 "\n",
                subs ? resize_count_subs (exp) : resize_count_conns (exp),
                subs ? "subscriptions" : "connections", v);
    else
      snprintf (out, outlen, "ok %" PRIu64 "\n", v);
  }
  else
    snprintf (out, outlen, "error unknown command or wrong arguments: "
              "\"%s\" with %d argument%s (try help)\n", argv[0], argc - 1,
              argc == 2 ? "" : "s");
}

static void *
client_thread (void *arg)
{
  int fd = (int) (intptr_t) arg;
  char buf[LINE_MAX_LEN + 1];
  size_t have = 0;

  for (;;) {
    char *nl;
    ssize_t n;

    while ((nl = memchr (buf, '\n', have)) != NULL) {
      char out[2048];
      size_t len = nl - buf;
      *nl = '\0';
      handle_line (buf, out, sizeof out);
      if (nbdp_write_full (fd, out, strlen (out)) == -1)
        goto out;
      memmove (buf, nl + 1, have - len - 1);
      have -= len + 1;
    }
    if (have == LINE_MAX_LEN) {
      static const char e[] = "error line too long\n";
      if (nbdp_write_full (fd, e, sizeof e - 1) == -1) { /* gone */ }
      goto out;
    }
    n = read (fd, buf + have, LINE_MAX_LEN - have);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    have += n;
  }
 out:
  close (fd);
  return NULL;
}

static void *
accept_loop (void *arg)
{
  struct pollfd pfd[2];

  for (;;) {
    pfd[0].fd = stop_pipe[0];
    pfd[0].events = POLLIN;
    pfd[1].fd = listen_fd;
    pfd[1].events = POLLIN;
    if (poll (pfd, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pfd[0].revents)
      break;
    if (pfd[1].revents & POLLIN) {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
      pthread_attr_t attr;
      pthread_t t;

      if (fd == -1)
        continue;
      pthread_attr_init (&attr);
      pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create (&t, &attr, client_thread,
                          (void *) (intptr_t) fd) != 0)
        close (fd);
      pthread_attr_destroy (&attr);
    }
  }
  return NULL;
}

int
control_start (const char *path)
{
  control_path = strdup (path);
  if (control_path == NULL)
    return -1;
  listen_fd = nbdp_listen_unix (path);
  if (listen_fd == -1) {
    nbdp_warn ("--control %s", path);
    free (control_path);
    control_path = NULL;
    return -1;
  }
  return 0;
}

int
control_run (void)
{
  if (listen_fd == -1)
    return 0;
  if (pipe2 (stop_pipe, O_CLOEXEC) == -1) {
    nbdp_warn ("pipe");
    return -1;
  }
  if (pthread_create (&accept_thread, NULL, accept_loop, NULL) != 0) {
    nbdp_warnx ("--control: cannot start its thread");
    return -1;
  }
  running = true;
  return 0;
}

void
control_stop (void)
{
  if (running) {
    char ch = 'q';
    if (write (stop_pipe[1], &ch, 1) == 1)
      pthread_join (accept_thread, NULL);
    running = false;
  }
  for (int i = 0; i < 2; i++)
    if (stop_pipe[i] >= 0) {
      close (stop_pipe[i]);
      stop_pipe[i] = -1;
    }
  if (listen_fd >= 0) {
    close (listen_fd);
    listen_fd = -1;
  }
  if (control_path) {
    unlink (control_path);
    free (control_path);
    control_path = NULL;
  }
}
