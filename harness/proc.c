/* nbd-matrix: starting, waiting for and stopping child processes, with
 * deadlines and without sleeps (pidfd + poll).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define CAPTURE_MAX (1 << 20)

long long
proc_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
pidfd_open_ (pid_t pid)
{
#ifdef SYS_pidfd_open
  return (int) syscall (SYS_pidfd_open, pid, 0);
#else
  errno = ENOSYS;
  return -1;
#endif
}

/* In the child after fork: the common set-up. */
static void
child_setup (const char *log_path, int out_fd, int err_fd, char *const env[])
{
  int fd;

  setpgid (0, 0);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  signal (SIGPIPE, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGINT, SIG_DFL);
  signal (SIGHUP, SIG_DFL);
  fd = open ("/dev/null", O_RDONLY);
  if (fd >= 0 && fd != 0) {
    dup2 (fd, 0);
    close (fd);
  }
  if (out_fd < 0) {
    out_fd = open (log_path ? log_path : "/dev/null",
                   O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out_fd < 0)
      _exit (127);
    err_fd = out_fd;
  }
  dup2 (out_fd, 1);
  dup2 (err_fd, 2);
  if (out_fd > 2)
    close (out_fd);
  if (err_fd > 2 && err_fd != out_fd)
    close (err_fd);
  for (size_t i = 0; env && env[i]; i++)
    putenv (env[i]);
}

pid_t
proc_start (char *const argv[], const char *log_path, char *const env[])
{
  return proc_start_activated (argv, log_path, env, -1);
}

pid_t
proc_start_activated (char *const argv[], const char *log_path,
                      char *const env[], int listen_fd)
{
  sigset_t all, old;
  pid_t pid;

  fflush (NULL);
  /* Signals wait until the child has its own dispositions: a SIGTERM
   * sent to it at once would otherwise run our handler in the child and
   * be lost there.
   */
  sigfillset (&all);
  sigprocmask (SIG_BLOCK, &all, &old);
  pid = fork ();
  if (pid == -1) {
    sigprocmask (SIG_SETMASK, &old, NULL);
    return -1;
  }
  if (pid == 0) {
    if (listen_fd >= 0) {
      /* fd 3 first, so that child_setup's descriptors land above it;
       * dup2 clears close-on-exec (fcntl when it is already 3).
       */
      char pidbuf[32];
      if (listen_fd == 3)
        fcntl (3, F_SETFD, 0);
      else if (dup2 (listen_fd, 3) == -1)
        _exit (127);
      snprintf (pidbuf, sizeof pidbuf, "%d", (int) getpid ());
      setenv ("LISTEN_PID", pidbuf, 1);
      setenv ("LISTEN_FDS", "1", 1);
    }
    child_setup (log_path, -1, -1, env);
    /* An activated child (nbd-spy) keeps its stop signals blocked until
     * its handlers are in place: then a stop that came early still makes
     * it stop cleanly (summary written), instead of killing it unready.
     */
    if (listen_fd >= 0) {
      sigaddset (&old, SIGTERM);
      sigaddset (&old, SIGINT);
      sigaddset (&old, SIGHUP);
    }
    sigprocmask (SIG_SETMASK, &old, NULL);
    execvp (argv[0], argv);
    fprintf (stderr, "nbd-matrix: exec %s: %s\n", argv[0], strerror (errno));
    _exit (127);
  }
  sigprocmask (SIG_SETMASK, &old, NULL);
  /* Also from the parent, so the group exists before we signal it. */
  setpgid (pid, pid);
  return pid;
}

int
proc_poll (pid_t pid, int *status)
{
  pid_t r;

  do
    r = waitpid (pid, status, WNOHANG);
  while (r == -1 && errno == EINTR);
  if (r == -1 && errno == ECHILD)
    return -1;
  return r == pid ? 1 : 0;
}

int
proc_wait (pid_t pid, int timeout_ms, int *status, volatile bool *stop)
{
  long long deadline = timeout_ms < 0 ? -1 : proc_now_ms () + timeout_ms;
  int pfd = pidfd_open_ (pid);

  for (;;) {
    int left, slice, r;

    r = proc_poll (pid, status);
    if (r == 1)
      goto exited;
    if (r == -1 && kill (pid, 0) == -1 && errno == ESRCH) {
      /* Not our child (a swept grandchild): gone is all we can know. */
      *status = 0;
      goto exited;
    }
    if (stop && *stop)
      break;
    left = deadline < 0 ? 1000 : (int) (deadline - proc_now_ms ());
    if (left <= 0)
      break;
    /* Wake up at least once a second to notice *stop. */
    slice = left < 1000 ? left : 1000;
    if (pfd >= 0) {
      struct pollfd p = { .fd = pfd, .events = POLLIN };
      if (poll (&p, 1, slice) == 1 && r == -1) {
        *status = 0;            /* a non-child exited */
        goto exited;
      }
    }
    else {
      /* No pidfd (old kernel): poll the status every 10 ms. */
      struct timespec ts = { 0, 10 * 1000000 };
      nanosleep (&ts, NULL);
    }
  }
  if (pfd >= 0)
    close (pfd);
  return 0;
 exited:
  if (pfd >= 0)
    close (pfd);
  return 1;
}

void
proc_stop_group (pid_t pgid, int grace_ms, bool reaped)
{
  int status;

  if (pgid <= 0)
    return;
  kill (-pgid, SIGTERM);
  if (!reaped && proc_wait (pgid, grace_ms, &status, NULL) == 1)
    reaped = true;
  /* Whatever is left of the group (the leader's children) goes now. */
  kill (-pgid, SIGKILL);
  if (!reaped)
    proc_wait (pgid, 5000, &status, NULL);
}

void
proc_become_subreaper (void)
{
  prctl (PR_SET_CHILD_SUBREAPER, 1);
}

/* Children of pid, from /proc/PID/task/TID/children. */
static size_t
children_of (pid_t pid, pid_t *out, size_t max)
{
  char path[64];
  DIR *d;
  struct dirent *de;
  size_t n = 0;

  snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
  d = opendir (path);
  if (!d)
    return 0;
  while ((de = readdir (d)) != NULL && n < max) {
    char cpath[600];
    FILE *fp;
    int c;
    if (de->d_name[0] == '.')
      continue;
    snprintf (cpath, sizeof cpath, "%s/%s/children", path, de->d_name);
    fp = fopen (cpath, "r");
    if (!fp)
      continue;
    while (n < max && fscanf (fp, "%d", &c) == 1)
      out[n++] = c;
    fclose (fp);
  }
  closedir (d);
  return n;
}

int
proc_sweep_descendants (void)
{
  pid_t list[1024];
  size_t n, i, total = 0;
  int status;

  /* Collect the whole tree, kill it at once, and repeat until nothing is
   * left (killed parents hand their children to us, the subreaper).
   */
  for (int round = 0; round < 20; round++) {
    n = children_of (getpid (), list, 1024);
    for (i = 0; i < n && n < 1024; i++)
      n += children_of (list[i], list + n, 1024 - n);
    if (n == 0)
      break;
    for (i = 0; i < n; i++)
      kill (list[i], SIGKILL);
    while (waitpid (-1, &status, WNOHANG) > 0)
      ;
    total += n;
    /* Reap the ones that were our children, with a bounded wait. */
    for (i = 0; i < n; i++)
      proc_wait (list[i], 1000, &status, NULL);
  }
  /* Anything already dead but unreaped. */
  while (waitpid (-1, &status, WNOHANG) > 0)
    ;
  return (int) total;
}

static void
append (char **buf, size_t *len, const char *data, size_t n)
{
  char *p;

  if (*len + n > CAPTURE_MAX)
    n = CAPTURE_MAX - *len;
  if (n == 0)
    return;
  p = realloc (*buf, *len + n + 1);
  if (!p)
    return;
  memcpy (p + *len, data, n);
  *len += n;
  p[*len] = '\0';
  *buf = p;
}

int
proc_capture (char *const argv[], int timeout_ms, char **out, char **err_out)
{
  int opipe[2], epipe[2], status = 0;
  pid_t pid;
  char *obuf = NULL, *ebuf = NULL;
  size_t olen = 0, elen = 0;
  long long deadline = proc_now_ms () + timeout_ms;
  bool timed_out = false;
  struct pollfd p[2];
  int open_fds = 2;

  if (pipe2 (opipe, O_CLOEXEC) == -1)
    return -1;
  if (pipe2 (epipe, O_CLOEXEC) == -1) {
    close (opipe[0]);
    close (opipe[1]);
    return -1;
  }
  fflush (NULL);
  pid = fork ();
  if (pid == -1) {
    close (opipe[0]); close (opipe[1]); close (epipe[0]); close (epipe[1]);
    return -1;
  }
  if (pid == 0) {
    child_setup (NULL, opipe[1], epipe[1], NULL);
    execvp (argv[0], argv);
    fprintf (stderr, "exec %s: %s\n", argv[0], strerror (errno));
    _exit (127);
  }
  setpgid (pid, pid);
  close (opipe[1]);
  close (epipe[1]);
  p[0] = (struct pollfd) { .fd = opipe[0], .events = POLLIN };
  p[1] = (struct pollfd) { .fd = epipe[0], .events = POLLIN };
  while (open_fds > 0) {
    int left = (int) (deadline - proc_now_ms ());
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (poll (p, 2, left) <= 0)
      continue;
    for (int i = 0; i < 2; i++) {
      char tmp[4096];
      ssize_t r;
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      r = read (p[i].fd, tmp, sizeof tmp);
      if (r <= 0) {
        close (p[i].fd);
        p[i].fd = -1;
        open_fds--;
        continue;
      }
      if (i == 0)
        append (&obuf, &olen, tmp, (size_t) r);
      else
        append (&ebuf, &elen, tmp, (size_t) r);
    }
  }
  for (int i = 0; i < 2; i++)
    if (p[i].fd >= 0)
      close (p[i].fd);
  if (timed_out || proc_wait (pid, (int) (deadline - proc_now_ms ()) > 0 ?
                              (int) (deadline - proc_now_ms ()) : 0,
                              &status, NULL) != 1) {
    proc_stop_group (pid, 1000, false);
    timed_out = true;
  }
  else
    kill (-pid, SIGKILL);       /* leftovers of the group */
  if (!obuf)
    obuf = strdup ("");
  if (!ebuf)
    ebuf = strdup ("");
  *out = obuf;
  if (err_out)
    *err_out = ebuf;
  else
    free (ebuf);
  if (timed_out)
    return 124;
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
}
