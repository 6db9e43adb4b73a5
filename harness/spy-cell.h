/* nbd-matrix: nbd-spy (harness/spy) between a cell's client driver and
 * its server.  The spy listens on a socket of the cell's scratch
 * directory and forwards to the server's; its decoded transcript, JSON
 * summary and stderr go into the cell's evidence directory; after the
 * driver it is stopped and its summary read into the cell (struct
 * cell_spy).  The harness's own connections (probe, content check,
 * control socket) stay on the server's socket.
 */
#ifndef NBDM_SPY_CELL_H
#define NBDM_SPY_CELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "results.h"

struct spy_proc {
  pid_t pid;                    /* = its process group; 0 not running */
  bool reaped;
  int status;
  char *socket;                 /* scratch/y: where the driver connects */
  char *uri;                    /* nbd+unix:///EXPORT?socket=scratch/y */
  char *transcript, *json, *log;        /* in the evidence directory */
};

/* Make the listening socket scratch/y and start SPY on it (socket
 * activation) with --upstream-unix UPSTREAM, its output in evid
 * (spy.transcript, spy.json, spy.log).  encoding: the draft RESIZE
 * encoding to judge, or NULL.  Returns 0 (the socket accepts clients at
 * once), or -1 with msg set.
 */
int spy_start (struct spy_proc *sy, const char *spy, const char *scratch,
               const char *upstream, const char *export, const char *evid,
               const char *encoding, char *msg, size_t msglen);

/* Stop the spy (SIGTERM: it waits briefly for open connections, writes
 * its summary and exits; SIGKILL after deadline_ms).  Returns 0 when it
 * stopped as asked, -1 (msg set) when it had to be killed or failed, -2
 * (msg set) when it had exited before it was asked to: the driver's
 * connections may have been cut (the harness broke).
 */
int spy_stop (struct spy_proc *sy, int deadline_ms, char *msg,
              size_t msglen);

/* The cell's evidence from the spy's files: counts and violations from
 * spy.json, an excerpt of the transcript.  transcript_rel: the
 * transcript's path relative to the run directory.  error: a problem to
 * record (the spy could not start or stop), or NULL.
 */
struct cell_spy *spy_collect (const struct spy_proc *sy,
                              const char *transcript_rel, const char *error);

/* Release what spy_start allocated (the spy must be stopped). */
void spy_free (struct spy_proc *sy);

/* An excerpt of a transcript file: its first head and last tail lines
 * (each cut at 200 bytes), with a line saying how many were left out.
 * NULL if the file cannot be read.
 */
char *spy_excerpt (const char *path, size_t head, size_t tail);

#endif /* NBDM_SPY_CELL_H */
