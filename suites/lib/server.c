/* nbd-conform: start the server under test from --server 'CMD {socket}'
 * in a private temp dir, wait until its socket accepts connections
 * (inotify on the dir and a pidfd on the server: no fixed sleeps), and
 * stop it again (its whole process group).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
pidfd_open_ (pid_t pid)
{
#ifdef SYS_pidfd_open
  return syscall (SYS_pidfd_open, pid, 0);
#else
  errno = ENOSYS;
  return -1;
#endif
}

/* Replace every {socket} and {dir} in cmd. */
static char *
substitute (const char *cmd, const char *dir, const char *sock)
{
  size_t cap = strlen (cmd) + 1, len = 0;
  char *out;

  for (const char *p = cmd; (p = strchr (p, '{')) != NULL; p++)
    cap += strlen (sock) + strlen (dir);
  out = malloc (cap);
  if (out == NULL)
    return NULL;
  while (*cmd) {
    const char *rep = NULL;
    size_t skip = 0;

    if (strncmp (cmd, "{socket}", 8) == 0)
      rep = sock, skip = 8;
    else if (strncmp (cmd, "{dir}", 5) == 0)
      rep = dir, skip = 5;
    if (rep) {
      memcpy (out + len, rep, strlen (rep));
      len += strlen (rep);
      cmd += skip;
    }
    else
      out[len++] = *cmd++;
  }
  out[len] = '\0';
  return out;
}

/* Whether a listening socket is bound to path.  Looked up in
 * /proc/net/unix (flag __SO_ACCEPTCON, 0x10000) rather than by
 * connecting: a server that serves one client and exits (nbd-server -d)
 * would take a probing connection as its client.
 */
static bool
socket_ready (const char *path)
{
  FILE *f = fopen ("/proc/net/unix", "r");
  char *line = NULL;
  size_t cap = 0, plen = strlen (path);
  bool ok = false;

  if (f == NULL) {
    /* No procfs: fall back to a probing connection. */
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;
    if (plen >= sizeof sun.sun_path)
      return false;
    strcpy (sun.sun_path, path);
    fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
      return false;
    ok = connect (fd, (struct sockaddr *) &sun, sizeof sun) == 0;
    close (fd);
    return ok;
  }
  while (!ok && getline (&line, &cap, f) != -1) {
    unsigned long flags;
    size_t len = strcspn (line, "\n");
    line[len] = '\0';
    if (len > plen && strcmp (line + len - plen, path) == 0 &&
        line[len - plen - 1] == ' ' &&
        sscanf (line, "%*s %*s %*s %lx", &flags) == 1 &&
        (flags & 0x10000))
      ok = true;
  }
  free (line);
  fclose (f);
  return ok;
}

int
nc_server_start (const char *cmd, double timeout_s, char **dirp,
                 char **sockp, pid_t *pidp, char *err, size_t errlen)
{
  const char *tmp = getenv ("TMPDIR");
  char *dir = NULL, *sock = NULL, *full = NULL, *logpath = NULL;
  int ino = -1, pidfd = -1, status;
  pid_t pid;
  double deadline = now_s () + timeout_s;
  int backoff_ms = 1;

  *dirp = *sockp = NULL;
  *pidp = 0;
  if (asprintf (&dir, "%s/nbd-conform.XXXXXX", tmp && *tmp ? tmp : "/tmp")
      == -1 || mkdtemp (dir) == NULL) {
    snprintf (err, errlen, "cannot make a temporary directory: %s",
              strerror (errno));
    free (dir);
    return -1;
  }
  if (asprintf (&sock, "%s/sock", dir) == -1 ||
      asprintf (&logpath, "%s/server.log", dir) == -1 ||
      (full = substitute (cmd, dir, sock)) == NULL) {
    snprintf (err, errlen, "out of memory");
    goto out_rmdir;
  }
  ino = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  if (ino >= 0)
    inotify_add_watch (ino, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB);

  pid = fork ();
  if (pid == -1) {
    snprintf (err, errlen, "fork: %s", strerror (errno));
    goto out_rmdir;
  }
  if (pid == 0) {
    int fd = open (logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int devnull = open ("/dev/null", O_RDONLY);

    setpgid (0, 0);
    signal (SIGPIPE, SIG_DFL);
    if (devnull >= 0)
      dup2 (devnull, 0);
    if (fd >= 0) {
      dup2 (fd, 1);
      dup2 (fd, 2);
    }
    execl ("/bin/sh", "sh", "-c", full, (char *) NULL);
    _exit (127);
  }
  setpgid (pid, pid);
  *pidp = pid;
  pidfd = pidfd_open_ (pid);

  for (;;) {
    struct pollfd pfd[2];
    int nfds = 0, wait_ms;
    double left;

    if (access (sock, F_OK) == 0 && socket_ready (sock))
      break;
    if (waitpid (pid, &status, WNOHANG) == pid) {
      char *tail = nc_server_log_tail (dir, 600);
      snprintf (err, errlen, "server exited (%s %d) before its socket %s "
                "accepted connections; command: %s; its output: %s",
                WIFEXITED (status) ? "status" : "signal",
                WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status),
                sock, full, tail ? tail : "(none)");
      free (tail);
      *pidp = 0;
      goto out_rmdir;
    }
    left = deadline - now_s ();
    if (left <= 0) {
      snprintf (err, errlen, "server did not accept connections on %s "
                "within %.0f s; command: %s", sock, timeout_s, full);
      nc_server_stop (pid);
      *pidp = 0;
      goto out_rmdir;
    }
    /* Sleep until the dir changes or the server exits.  Between bind()
     * and listen() the socket exists but refuses; that short window is
     * polled with a growing backoff.
     */
    if (ino >= 0)
      pfd[nfds++] = (struct pollfd) { .fd = ino, .events = POLLIN };
    if (pidfd >= 0)
      pfd[nfds++] = (struct pollfd) { .fd = pidfd, .events = POLLIN };
    wait_ms = access (sock, F_OK) == 0 || ino < 0 || pidfd < 0
      ? backoff_ms : (int) (left * 1000) + 1;
    if (wait_ms > left * 1000 + 1)
      wait_ms = left * 1000 + 1;
    if (poll (pfd, nfds, wait_ms) > 0 && ino >= 0) {
      char evbuf[4096];
      while (read (ino, evbuf, sizeof evbuf) > 0)
        ;
    }
    if (access (sock, F_OK) == 0 && backoff_ms < 100)
      backoff_ms *= 2;
  }
  if (ino >= 0)
    close (ino);
  if (pidfd >= 0)
    close (pidfd);
  free (full);
  free (logpath);
  *dirp = dir;
  *sockp = sock;
  return 0;

 out_rmdir:
  if (ino >= 0)
    close (ino);
  if (pidfd >= 0)
    close (pidfd);
  nc_rmtree (dir);
  free (dir);
  free (sock);
  free (full);
  free (logpath);
  return -1;
}

void
nc_server_stop (pid_t pgid)
{
  int pidfd, status;
  struct pollfd pfd;

  if (pgid <= 0)
    return;
  kill (-pgid, SIGTERM);
  pidfd = pidfd_open_ (pgid);
  if (pidfd >= 0) {
    /* The group leader is our child: wait up to 5 s for it. */
    pfd = (struct pollfd) { .fd = pidfd, .events = POLLIN };
    poll (&pfd, 1, 5000);
    close (pidfd);
  }
  /* Whatever is left of the group (workers, a forked daemon). */
  kill (-pgid, SIGKILL);
  waitpid (pgid, &status, 0);
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  if (flag == FTW_DP || flag == FTW_D)
    rmdir (path);
  else
    unlink (path);
  return 0;
}

void
nc_rmtree (const char *dir)
{
  if (dir && *dir)
    nftw (dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
nc_server_log_tail (const char *dir, size_t max)
{
  char *path, *buf;
  FILE *f;
  long size;
  size_t n;

  if (asprintf (&path, "%s/server.log", dir) == -1)
    return NULL;
  f = fopen (path, "r");
  free (path);
  if (f == NULL)
    return NULL;
  fseek (f, 0, SEEK_END);
  size = ftell (f);
  if (size > (long) max)
    fseek (f, size - max, SEEK_SET);
  else
    fseek (f, 0, SEEK_SET);
  buf = malloc (max + 1);
  if (buf == NULL) {
    fclose (f);
    return NULL;
  }
  n = fread (buf, 1, max, f);
  fclose (f);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\n' || buf[i] == '\t')
      buf[i] = ' ';
  if (n == 0) {
    free (buf);
    return NULL;
  }
  return buf;
}
