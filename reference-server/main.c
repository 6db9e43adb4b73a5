/* nbd-refserver: command line, listening sockets, the accept loop, and
 * process life (fork when ready, pid file, --run, --exit-with-parent,
 * signals).  The contract of the command line is in HACKING.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "internal.h"
#include "io.h"
#include "log.h"
#include "sockets.h"
#include "uri.h"
#include "vector.h"

#define MAX_LISTENERS 16

struct server_config config = { .threads = DEFAULT_THREADS };

static const char *unix_path;     /* -U */
static char *private_dir;         /* -U -: temp dir holding the socket */
static char *socket_path;         /* the Unix socket we created */
static const char *pidfile;       /* -P */
static bool pidfile_written;
static int listeners[MAX_LISTENERS];
static size_t nlisteners;
static int quit_pipe[2] = { -1, -1 };
static pid_t run_pid = -1;
static bool activated;            /* listeners came from socket activation */

enum {
  OPT_EXIT_WITH_PARENT = 256, OPT_RUN, OPT_EXPORT, OPT_OLDSTYLE, OPT_THREADS,
  OPT_REORDER, OPT_HELP, OPT_VERSION, OPT_CONTROL,
  OPT_RESIZE_FIRST = 512,   /* + index into resize-config.c's switches */
};

static const struct option long_options[] = {
  { "unix", required_argument, NULL, 'U' },
  { "port", required_argument, NULL, 'p' },
  { "ipaddr", required_argument, NULL, 'i' },
  { "single", no_argument, NULL, 's' },
  { "foreground", no_argument, NULL, 'f' },
  { "pidfile", required_argument, NULL, 'P' },
  { "exportname", required_argument, NULL, 'e' },
  { "readonly", no_argument, NULL, 'r' },
  { "verbose", no_argument, NULL, 'v' },
  { "exit-with-parent", no_argument, NULL, OPT_EXIT_WITH_PARENT },
  { "run", required_argument, NULL, OPT_RUN },
  { "export", required_argument, NULL, OPT_EXPORT },
  { "oldstyle", no_argument, NULL, OPT_OLDSTYLE },
  { "threads", required_argument, NULL, OPT_THREADS },
  { "reorder-replies", no_argument, NULL, OPT_REORDER },
  { "control", required_argument, NULL, OPT_CONTROL },
  { "help", no_argument, NULL, OPT_HELP },
  { "version", no_argument, NULL, OPT_VERSION },
};
#define N_BASE_OPTIONS (sizeof long_options / sizeof long_options[0])

/* The fixed options followed by the draft RESIZE switches. */
static struct option *
all_long_options (void)
{
  size_t n = resize_switch_count ();
  struct option *o = calloc (N_BASE_OPTIONS + n + 1, sizeof *o);

  if (o == NULL)
    nbdp_fatal ("calloc");
  memcpy (o, long_options, sizeof long_options);
  for (size_t i = 0; i < n; i++) {
    int has_arg;
    o[N_BASE_OPTIONS + i].name = resize_switch_name (i, &has_arg);
    o[N_BASE_OPTIONS + i].has_arg = has_arg;
    o[N_BASE_OPTIONS + i].val = OPT_RESIZE_FIRST + i;
  }
  return o;
}

static void
usage (FILE *f)
{
  fprintf (f,
"usage: nbd-refserver [OPTIONS] [memory SIZE | file PATH]\n"
"  -U PATH | -U -        listen on a Unix socket (-: a private one)\n"
"  -p PORT               listen on TCP 127.0.0.1:PORT (0 picks one)\n"
"  -i ADDR               TCP address to listen on\n"
"  -s                    serve one client on stdin/stdout\n"
"  -f                    stay in the foreground\n"
"  -P FILE               write the pid to FILE once listening\n"
"  --exit-with-parent    exit when the parent process exits\n"
"  --run CMD             run CMD with $uri $unixsocket $port; exit with it\n"
"  -e NAME               name of the positional export (default \"\")\n"
"  --export SPEC         name=N,memory=SIZE|file=PATH[,size=SIZE][,ro]\n"
"                        [,desc=TEXT][,min-block=N,pref-block=N,max-block=N]\n"
"                        [,multi-conn=on|off]\n"
"  -r                    the positional export is read-only\n"
"  --oldstyle            oldstyle handshake (default export only)\n"
"  --threads N           workers per connection (default %d)\n"
"  --reorder-replies     deliberately reply out of order\n"
"  -v                    log every message to stderr\n"
"  --help, --version\n"
"SIZE takes suffixes K M G T P E (powers of 1024).\n", DEFAULT_THREADS);
  resize_usage (f);
}

/* Signals only poke the main loop through a pipe. */
static void
on_signal (int sig)
{
  char ch = sig == SIGCHLD ? 'c' : 'q';
  int e = errno;

  if (write (quit_pipe[1], &ch, 1) == -1) {
    /* the pipe is full: the loop is already awake */
  }
  errno = e;
}

static void
cleanup (void)
{
  control_stop ();
  for (size_t i = 0; i < nlisteners; i++)
    close (listeners[i]);
  nlisteners = 0;
  if (socket_path) {
    unlink (socket_path);
    free (socket_path);
    socket_path = NULL;
  }
  if (private_dir) {
    rmdir (private_dir);
    free (private_dir);
    private_dir = NULL;
  }
  if (pidfile_written) {
    unlink (pidfile);
    pidfile_written = false;
  }
}

static int
write_pidfile (void)
{
  char buf[32];
  int fd, n;

  if (pidfile == NULL)
    return 0;
  fd = open (pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd == -1) {
    nbdp_warn ("%s", pidfile);
    return -1;
  }
  n = snprintf (buf, sizeof buf, "%d\n", (int) getpid ());
  if (nbdp_write_full (fd, buf, n) == -1 || close (fd) == -1) {
    nbdp_warn ("%s", pidfile);
    return -1;
  }
  pidfile_written = true;
  return 0;
}

/* Percent-encode an export name for the path of an nbd:// URI. */
static char *
tcp_uri (const char *host, int port, const char *name)
{
  size_t n = strlen (name);
  CLEANUP_FREE char *enc = malloc (3 * n + 1);
  char *p, *r = NULL;
  bool v6 = strchr (host, ':') != NULL;

  if (enc == NULL)
    return NULL;
  p = enc;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = name[i];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || strchr ("-._~", ch))
      *p++ = ch;
    else
      p += sprintf (p, "%%%02X", ch);
  }
  *p = '\0';
  if (asprintf (&r, "nbd://%s%s%s:%d/%s", v6 ? "[" : "", host,
                v6 ? "]" : "", port, enc) == -1)
    return NULL;
  return r;
}

/* Start --run CMD with $uri, $unixsocket and $port set. */
static int
start_run (const char *cmd, const char *tcp_host, int tcp_port)
{
  const char *name = exports_get (0)->name;
  char *uri = NULL;
  char portbuf[16];

  if (socket_path)
    uri = nbdp_uri_unix (name, socket_path);
  else if (tcp_port > 0)
    uri = tcp_uri (tcp_host, tcp_port, name);
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
    signal (SIGQUIT, SIG_DFL);
    if (uri)
      setenv ("uri", uri, 1);
    if (socket_path)
      setenv ("unixsocket", socket_path, 1);
    if (tcp_port > 0) {
      snprintf (portbuf, sizeof portbuf, "%d", tcp_port);
      setenv ("port", portbuf, 1);
    }
    execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
    nbdp_warn ("/bin/sh");
    _exit (127);
  }
  free (uri);
  return 0;
}

/* Fork into the background: the parent exits once the child is ready
 * (pid file written), so whoever started us can connect at once.
 */
static void
daemonize (void)
{
  int ready[2];
  pid_t pid;
  char ch;
  int fd;

  if (pipe2 (ready, O_CLOEXEC) == -1)
    nbdp_fatal ("pipe");
  pid = fork ();
  if (pid == -1)
    nbdp_fatal ("fork");
  if (pid > 0) {
    close (ready[1]);
    if (read (ready[0], &ch, 1) == 1 && ch == 'r')
      _exit (EXIT_SUCCESS);
    _exit (EXIT_FAILURE);
  }
  close (ready[0]);
  setsid ();
  fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    dup2 (fd, STDIN_FILENO);
    dup2 (fd, STDOUT_FILENO);
    close (fd);
  }
  if (write_pidfile () == -1) {
    cleanup ();
    exit (EXIT_FAILURE);
  }
  ch = 'r';
  if (write (ready[1], &ch, 1) != 1) {
    /* the parent is gone; carry on */
  }
  close (ready[1]);
}

static int
open_listeners (const char *port, const char *addr)
{
  int n = nbdp_socket_activation ();

  if (n > 0) {
    if (n > MAX_LISTENERS)
      n = MAX_LISTENERS;
    for (int i = 0; i < n; i++)
      listeners[nlisteners++] = 3 + i;
    activated = true;
    return 0;
  }
  if (unix_path) {
    int fd;
    if (strcmp (unix_path, "-") == 0) {
      char tmpl[] = "/tmp/nbd-refserver-XXXXXX";
      const char *tmpdir = getenv ("TMPDIR");
      if (tmpdir && *tmpdir) {
        if (asprintf (&private_dir, "%s/nbd-refserver-XXXXXX", tmpdir) == -1)
          nbdp_fatal ("asprintf");
      }
      else if ((private_dir = strdup (tmpl)) == NULL)
        nbdp_fatal ("strdup");
      if (mkdtemp (private_dir) == NULL) {
        nbdp_warn ("mkdtemp %s", private_dir);
        free (private_dir);
        private_dir = NULL;
        return -1;
      }
      if (asprintf (&socket_path, "%s/sock", private_dir) == -1)
        nbdp_fatal ("asprintf");
    }
    else if ((socket_path = strdup (unix_path)) == NULL)
      nbdp_fatal ("strdup");
    fd = nbdp_listen_unix (socket_path);
    if (fd == -1) {
      nbdp_warn ("listening on %s", socket_path);
      free (socket_path);
      socket_path = NULL;
      return -1;
    }
    listeners[nlisteners++] = fd;
  }
  if (port) {
    int bound = 0;
    int r = nbdp_listen_tcp (addr, port, listeners + nlisteners,
                             MAX_LISTENERS - nlisteners, &bound);
    if (r == -1) {
      nbdp_warn ("listening on %s port %s", addr ? addr : "127.0.0.1", port);
      return -1;
    }
    nlisteners += r;
    return bound;
  }
  return 0;
}

/* Accept connections until a signal, our parent's death or the end of
 * the --run command.  Returns the exit status.
 */
static int
accept_loop (void)
{
  struct pollfd pfd[MAX_LISTENERS + 1];

  for (;;) {
    pfd[0].fd = quit_pipe[0];
    pfd[0].events = POLLIN;
    for (size_t i = 0; i < nlisteners; i++) {
      pfd[i + 1].fd = listeners[i];
      pfd[i + 1].events = POLLIN;
    }
    if (poll (pfd, nlisteners + 1, -1) == -1) {
      if (errno == EINTR)
        continue;
      nbdp_warn ("poll");
      return EXIT_FAILURE;
    }
    if (pfd[0].revents & POLLIN) {
      char ch;
      while (read (quit_pipe[0], &ch, 1) == 1) {
        if (ch == 'q')
          return EXIT_SUCCESS;
        if (ch == 'c' && run_pid > 0) {
          int status;
          if (waitpid (run_pid, &status, WNOHANG) == run_pid) {
            if (WIFEXITED (status))
              return WEXITSTATUS (status);
            if (WIFSIGNALED (status))
              return 128 + WTERMSIG (status);
            return EXIT_FAILURE;
          }
        }
      }
    }
    for (size_t i = 0; i < nlisteners; i++) {
      int fd;
      if (!(pfd[i + 1].revents & POLLIN))
        continue;
      fd = accept4 (listeners[i], NULL, NULL, SOCK_CLOEXEC);
      if (fd == -1) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
          nbdp_warn ("accept");
        continue;
      }
      conn_start_thread (fd);
    }
  }
}

static void
install_signals (bool single)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction (SIGPIPE, &sa, NULL);
  /* With -s nothing polls the pipe: termination signals keep their
   * default action.
   */
  if (single)
    return;
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  sigaction (SIGQUIT, &sa, NULL);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction (SIGCHLD, &sa, NULL);
}

int
main (int argc, char *argv[])
{
  const char *port = NULL, *addr = NULL, *run_cmd = NULL;
  const char *export_name = "";
  bool single = false, foreground = false, exit_with_parent = false;
  bool readonly = false;
  const char **specs = NULL;
  size_t nspecs = 0;
  pid_t parent = getppid ();
  int c, tcp_port, status;
  uint64_t n;
  struct option *longopts = all_long_options ();
  const char *control_path = NULL;

  nbdp_progname = "nbd-refserver";
  specs = calloc (argc, sizeof *specs);
  if (specs == NULL)
    nbdp_fatal ("calloc");

  while ((c = getopt_long (argc, argv, "U:p:i:sfP:e:rv", longopts,
                           NULL)) != -1) {
    if (c >= OPT_RESIZE_FIRST &&
        (size_t) (c - OPT_RESIZE_FIRST) < resize_switch_count ()) {
      int r = resize_switch (c - OPT_RESIZE_FIRST, optarg);
      if (r == -1)
        exit (2);
      if (r == 1)
        exit (EXIT_SUCCESS);
      continue;
    }
    switch (c) {
    case 'U': unix_path = optarg; break;
    case 'p':
      /* A number 0-65535 (0: the kernel picks one); service names are
       * not looked up, so a typo gets a clear message here.
       */
      if (optarg[strspn (optarg, "0123456789")] != '\0' || !*optarg ||
          strlen (optarg) > 5 || atoi (optarg) > 65535)
        nbdp_fatalx ("-p %s: expected a TCP port number from 0 to 65535",
                     optarg);
      port = optarg;
      break;
    case 'i': addr = optarg; break;
    case 's': single = true; break;
    case 'f': foreground = true; break;
    case 'P': pidfile = optarg; break;
    case 'e': export_name = optarg; break;
    case 'r': readonly = true; break;
    case 'v': nbdp_verbose = true; break;
    case OPT_EXIT_WITH_PARENT: exit_with_parent = true; break;
    case OPT_RUN: run_cmd = optarg; break;
    case OPT_EXPORT: specs[nspecs++] = optarg; break;
    case OPT_OLDSTYLE: config.oldstyle = true; break;
    case OPT_THREADS:
      if (parse_size (optarg, &n) == -1 || n < 1 || n > MAX_THREADS)
        nbdp_fatalx ("--threads %s: expected 1 to %d", optarg, MAX_THREADS);
      config.threads = n;
      break;
    case OPT_REORDER: config.reorder_replies = true; break;
    case OPT_CONTROL: control_path = optarg; break;
    case OPT_HELP: usage (stdout); exit (EXIT_SUCCESS);
    case OPT_VERSION:
      printf ("nbd-refserver %s\n", REFSERVER_VERSION);
      exit (EXIT_SUCCESS);
    default:
      usage (stderr);
      exit (2);
    }
  }

  free (longopts);
  if (resize_config_finish () == -1)
    exit (2);

  /* The positional export comes first: it is the default one. */
  if (argc - optind == 2) {
    if (exports_add (export_name, argv[optind], argv[optind + 1],
                     readonly) == -1)
      exit (EXIT_FAILURE);
  }
  else if (argc - optind != 0) {
    nbdp_warnx ("expected BACKEND ARG (memory SIZE or file PATH)");
    usage (stderr);
    exit (2);
  }
  for (size_t i = 0; i < nspecs; i++)
    if (exports_add_spec (specs[i]) == -1)
      exit (EXIT_FAILURE);
  free (specs);
  if (exports_count () == 0) {
    nbdp_warnx ("no export: give BACKEND ARG or --export");
    usage (stderr);
    exit (2);
  }
  for (size_t i = 0; i < exports_count (); i++)
    if (resize_export_setup (exports_get (i)) == -1)
      exit (EXIT_FAILURE);
  if (single && (unix_path || port || run_cmd)) {
    nbdp_warnx ("-s cannot be combined with -U, -p or --run");
    exit (2);
  }

  if (exit_with_parent) {
    foreground = true;
    if (prctl (PR_SET_PDEATHSIG, SIGTERM) == -1)
      nbdp_fatal ("prctl PR_SET_PDEATHSIG");
    /* The parent may have died before the prctl took effect. */
    if (getppid () != parent)
      exit (EXIT_SUCCESS);
  }
  if (single || run_cmd)
    foreground = true;

  if (pipe2 (quit_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
    nbdp_fatal ("pipe");
  install_signals (single);

  if (control_path && control_start (control_path) == -1)
    exit (EXIT_FAILURE);

  if (single) {
    if (write_pidfile () == -1)
      exit (EXIT_FAILURE);
    if (control_run () == -1)
      exit (EXIT_FAILURE);
    conn_serve (STDIN_FILENO, STDOUT_FILENO);
    cleanup ();
    exports_close_all ();
    exit (EXIT_SUCCESS);
  }

  if (!unix_path && !port && getenv ("LISTEN_FDS") == NULL)
    port = "10809";
  tcp_port = open_listeners (port, addr);
  if (tcp_port == -1) {
    cleanup ();
    exit (EXIT_FAILURE);
  }
  if (nlisteners == 0) {
    nbdp_warnx ("nothing to listen on");
    cleanup ();
    exit (EXIT_FAILURE);
  }
  /* Socket activation means a supervisor runs us: no fork. */
  if (activated)
    foreground = true;

  if (!foreground)
    daemonize ();
  else if (write_pidfile () == -1) {
    cleanup ();
    exit (EXIT_FAILURE);
  }
  if (nbdp_verbose) {
    if (socket_path)
      nbdp_debug ("listening on %s", socket_path);
    if (tcp_port > 0)
      nbdp_debug ("listening on %s port %d", addr ? addr : "127.0.0.1",
                  tcp_port);
  }

  if (control_run () == -1) {
    cleanup ();
    exit (EXIT_FAILURE);
  }
  if (run_cmd &&
      start_run (run_cmd, addr ? addr : "127.0.0.1", tcp_port) == -1) {
    cleanup ();
    exit (EXIT_FAILURE);
  }
  status = accept_loop ();
  /* Subscriptions hear of the shutdown (RZ-SUB-14). */
  resize_shutdown ();
  cleanup ();
  /* Backends are closed only when nothing can still be using them. */
  if (conn_active () == 0)
    exports_close_all ();
  exit (status);
}
