/* nbd-matrix: one cell (server x client x scenario), and starting and
 * stopping a server adapter (also used by the up-front probe of each
 * server column).
 */
#ifndef NBDM_CELL_H
#define NBDM_CELL_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "probe.h"
#include "results.h"
#include "scenario.h"

#define MATRIX_EXPORT "matrix"

struct cell_job {
  const struct impl_info *server;
  const struct impl_info *client;
  const struct scenario *scn;
  const char *top;              /* project top directory (absolute) */
  const char *run_dir;          /* --out directory (absolute) */
  const char *tmp_root;         /* where scratch directories go */
  int timeout_ms;               /* the client driver's deadline */
  const char *reproducer;
  const char *spy;              /* nbd-spy between driver and server, or
                                 * NULL (--no-spy, or not built) */
};

/* A running server adapter. */
struct server_proc {
  pid_t pid;                    /* = its process group */
  bool reaped;
  int status;
  char *scratch;                /* private directory, removed by stop */
  char *dir;                    /* scratch/d: the adapter's DIR */
  char *socket;                 /* scratch/s */
  char *uri;
  pthread_t closer;             /* closes the start's inotify descriptor */
  bool has_closer;
};

/* Start the adapter (`start SOCKET DIR SIZE [PROFILE]`) with its output
 * in log_path and wait until its socket accepts connections.  Returns 0,
 * -1 with msg set (the server is then already stopped), or -2 when the
 * adapter exited with status 3 before listening: it does not serve this
 * configuration (msg: its last log line; the cell is UNSUPPORTED).  With fd_out,
 * the connection that proved readiness is returned there (for probe_fd);
 * otherwise it is closed.
 */
int server_start (struct server_proc *sp, const struct impl_info *server,
                  const char *top, const char *tmp_root, uint64_t size,
                  const char *log_path, int deadline_ms, volatile bool *stop,
                  int *fd_out, char *msg, size_t msglen);
/* True if the server process is still running. */
bool server_alive (struct server_proc *sp);
/* Stop the whole process group, sweep stragglers, remove the scratch
 * directory.
 */
void server_stop (struct server_proc *sp);

/* Run one cell to completion in the current process and fill *result. */
void cell_run (const struct cell_job *job, struct cell *result,
               volatile bool *stop);

/* Remove a directory tree; best effort. */
void rm_rf (const char *path);
/* File-name-safe form of a name ("nbd-refserver:p" -> "nbd-refserver_p"). */
char *safe_name (const char *name);

#endif /* NBDM_CELL_H */
