/* nbd-matrix: child processes.  Every adapter and driver runs in its own
 * process group so that it can be stopped with everything it started; the
 * cell process is a child subreaper, so daemons that leave their group
 * (nbd-server) still come back to it and are swept at the end.
 */
#ifndef NBDM_PROC_H
#define NBDM_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Start argv[0] (searched in PATH) in a new process group, stdin from
 * /dev/null, stdout and stderr appended to log_path (or /dev/null when
 * NULL).  env: extra "NAME=VALUE" strings, NULL-terminated, or NULL.
 * The child gets SIGKILL if the calling process dies.
 * Returns the pid (= process group id) or -1.
 */
pid_t proc_start (char *const argv[], const char *log_path,
                  char *const env[]);

/* The same, passing listen_fd to the child as fd 3 by the socket
 * activation protocol (LISTEN_PID, LISTEN_FDS=1).  The child starts with
 * SIGTERM, SIGINT and SIGHUP blocked and must unblock them once it
 * handles them (nbd-spy does): a stop sent right away then waits for it
 * instead of being lost or killing it before it could write anything.
 */
pid_t proc_start_activated (char *const argv[], const char *log_path,
                            char *const env[], int listen_fd);

/* Wait up to timeout_ms (-1: forever) for pid to exit.  Returns 1 and the
 * wait status when it exited, 0 on timeout, -1 on error.  Returns early
 * with 0 if *stop becomes true (stop may be NULL).
 */
int proc_wait (pid_t pid, int timeout_ms, int *status,
               volatile bool *stop);
/* Non-blocking: 1 and status if pid has exited (reaped), 0 if running,
 * -1 if pid is not our child.
 */
int proc_poll (pid_t pid, int *status);

/* Stop a process group: SIGTERM, up to grace_ms for the leader to exit,
 * then SIGKILL to whatever is left of the group; reaps the leader if it
 * is our child and not reaped yet (reaped says whether it already was).
 */
void proc_stop_group (pid_t pgid, int grace_ms, bool reaped);

/* Kill (SIGKILL) and reap every remaining descendant of this process.
 * Returns how many processes it found.
 */
int proc_sweep_descendants (void);

/* Become a child subreaper (Linux); best effort. */
void proc_become_subreaper (void);

/* Run argv with a deadline, stdout captured into a malloc'd NUL-terminated
 * string (at most 1 MiB), stderr into *err_out when err_out is not NULL.
 * Returns the exit status (0..255), 124 on timeout, -1 if it could not run.
 */
int proc_capture (char *const argv[], int timeout_ms, char **out,
                  char **err_out);

/* Milliseconds from a monotonic clock. */
long long proc_now_ms (void);

#endif /* NBDM_PROC_H */
