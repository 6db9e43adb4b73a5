/* nbd-conformance: fuzz target for nbd-refserver's connection code: the
 * newstyle (or oldstyle) handshake and the transmission phase, exactly as
 * `nbd-refserver -s` runs them (conn_serve), fed arbitrary client bytes
 * over a socketpair.  The server objects are linked in (all but main.c);
 * this file plays main: it configures the draft RESIZE extension and a
 * few exports once, and restores the exports' size and contents after
 * every input so that runs do not depend on each other.
 *
 * Environment (read once): FUZZ_SERVER_PROFILE (default "everything"),
 * FUZZ_SERVER_THREADS (workers per connection, default 1),
 * FUZZ_SERVER_OLDSTYLE=1, FUZZ_SERVER_VERBOSE=1 (debug log to stderr).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"
#include "log.h"
#include "peer.h"

/* Defined by main.c in the real server. */
struct server_config config = { .threads = 1 };

#define N_EXPORTS 3
static uint64_t initial_size[N_EXPORTS];

static void
set_switch (const char *name, const char *arg)
{
  for (size_t i = 0; i < resize_switch_count (); i++) {
    int has_arg;
    if (strcmp (resize_switch_name (i, &has_arg), name) == 0) {
      if (resize_switch (i, arg) != 0) {
        fprintf (stderr, "fuzz-server-stdio: --%s=%s refused\n", name,
                 arg ? arg : "");
        exit (2);
      }
      return;
    }
  }
  fprintf (stderr, "fuzz-server-stdio: no switch --%s\n", name);
  exit (2);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *profile = getenv ("FUZZ_SERVER_PROFILE");
  const char *threads = getenv ("FUZZ_SERVER_THREADS");

  signal (SIGPIPE, SIG_IGN);
  nbdp_progname = "fuzz-server-stdio";
  nbdp_verbose = getenv ("FUZZ_SERVER_VERBOSE") != NULL;
  config.oldstyle = getenv ("FUZZ_SERVER_OLDSTYLE") != NULL;
  if (threads) {
    config.threads = atoi (threads);
    if (config.threads < 1 || config.threads > MAX_THREADS)
      config.threads = 1;
  }
  set_switch ("profile", profile && *profile ? profile : "everything");
  /* No timed waits: a rate limit would only slow the fuzzer down. */
  set_switch ("notify-rate", "0");
  if (resize_config_finish () == -1)
    exit (2);
  if (exports_add ("", "memory", "1M", false) == -1 ||
      exports_add_spec ("name=ro,memory=64K,ro,desc=read-only export") == -1 ||
      exports_add_spec ("name=blk,memory=1M,min-block=512,pref-block=4096,"
                        "max-block=65536,desc=\xc3\xa9t\xc3\xa9") == -1)
    exit (2);
  for (size_t i = 0; i < exports_count () && i < N_EXPORTS; i++) {
    if (resize_export_setup (exports_get (i)) == -1)
      exit (2);
    initial_size[i] = export_size (exports_get (i));
  }
  return 0;
}

/* Put every export back as it was: size, contents, sequence number. */
static void
reset_exports (void)
{
  for (size_t i = 0; i < exports_count () && i < N_EXPORTS; i++) {
    struct export *exp = exports_get (i);
    struct backend *b = exp->backend;

    if (export_size (exp) != initial_size[i] &&
        b->ops->set_size (b, initial_size[i]) == -1)
      abort ();
    if (!exp->readonly && initial_size[i] &&
        b->ops->trim (b, initial_size[i], 0, false) == -1)
      abort ();
    exp->rz_seq = rzc.sequence_start;
    if (resize_count_conns (exp) != 0 || resize_count_subs (exp) != 0)
      abort ();                 /* a connection was not unregistered */
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fuzz_peer peer;
  int fd;

  fd = fuzz_peer_start (&peer, data, size);
  if (fd == -1)
    return 0;
  conn_serve (fd, fd);          /* closes fd */
  fuzz_peer_finish (&peer);
  reset_exports ();
  return 0;
}
