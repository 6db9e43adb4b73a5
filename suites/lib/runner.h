/* nbd-conform internals shared by the runner's parts: the registry of
 * tests, the record of one test's outcome, expectations, server control
 * and the output writers.  Tests include conform.h only.
 */
#ifndef NC_RUNNER_H
#define NC_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "conform.h"
#include "vector.h"

/* ---- registry.c ---- */

struct nc_entry {
  const char *suite;
  const struct nc_test *test;
  char *full_name;            /* "suite/name" */
};
DEFINE_VECTOR_TYPE (nc_entry_vector, struct nc_entry);
extern nc_entry_vector nc_registry;
/* Sort by suite then table order; returns -1 on duplicate names. */
int nc_registry_finish (void);
/* True if glob matches the test's full name, short name or one of its
 * requirement IDs.
 */
bool nc_entry_matches (const struct nc_entry *e, const char *glob);
/* Copy the i-th requirement ID of the entry into buf; false past the end. */
bool nc_entry_id (const struct nc_entry *e, size_t i, char *buf, size_t n);

/* ---- the outcome of one test (parent side) ---- */

struct nc_finding {
  enum nbdp_level level;
  bool info;                  /* INFO note rather than a finding */
  char *id;
  char *msg;
};
DEFINE_VECTOR_TYPE (nc_finding_vector, struct nc_finding);
DEFINE_VECTOR_TYPE (nc_string_vector, char *);

struct nc_record {
  const struct nc_entry *e;
  enum nc_class cls;
  char *reason;               /* SKIP/UNSUPPORTED/ERROR/TIMEOUT/X* text */
  nc_finding_vector findings;
  nc_string_vector log;
  double secs;
  bool listed;                /* matched by --expect */
  char *expect_reason;
  char *reproduce;
  /* While running. */
  pid_t pid;
  pid_t server_pgid;
  char *dir;
  int fd;                     /* read end of the child's pipe */
  char *buf;                  /* partial line */
  size_t buflen;
  bool ended;                 /* the child sent its end line */
  char *end_class;
  double start, deadline;
  bool started, finished;
};

/* ---- context.c (child side) ---- */

/* Run one test in the current (forked) process and exit. */
_Noreturn void nc_child_run (const struct nc_config *cfg,
                             const struct nc_entry *e, int fd);

/* ---- conn.c ---- */

/* Close every connection the test opened. */
void nc_conns_close (void);

/* ---- server.c ---- */

/* Make a private dir, substitute {socket} and {dir} in cmd, start it in
 * its own process group with output to DIR/server.log, and wait until the
 * socket accepts connections (or the server exits, or timeout_s).
 * Returns 0, or -1 with a message in err.
 */
int nc_server_start (const char *cmd, double timeout_s, char **dir,
                     char **socket, pid_t *pid, char *err, size_t errlen);
/* Kill a process group politely, then firmly; reap pid if ours. */
void nc_server_stop (pid_t pgid);
/* Remove a directory tree (our temp dir). */
void nc_rmtree (const char *dir);
/* The last lines of DIR/server.log, for diagnostics (malloc'd). */
char *nc_server_log_tail (const char *dir, size_t max);

/* ---- expect.c ---- */

struct nc_expectation {
  char *pattern;
  char *reason;
  bool used;
};
DEFINE_VECTOR_TYPE (nc_expect_vector, struct nc_expectation);
int nc_expect_load (const char *path, nc_expect_vector *v, char *err,
                    size_t errlen);
/* The expectation matching this test, or NULL. */
struct nc_expectation *nc_expect_find (nc_expect_vector *v,
                                       const struct nc_entry *e);

/* ---- output.c ---- */

struct nc_run {
  const struct nc_config *cfg;
  struct nc_record *records;
  size_t n;
  double secs;
  const char *started;        /* ISO 8601 */
  int exit_status;
  size_t counts[NC_NR_CLASSES];
};
void nc_tap_header (FILE *f, size_t n);
void nc_tap_record (FILE *f, size_t index, const struct nc_record *r,
                    bool verbose);
void nc_tap_footer (FILE *f, const struct nc_run *run);
int nc_write_junit (const char *path, const struct nc_run *run);
int nc_write_json (const char *path, const struct nc_run *run);

/* Shell-quote s for reproducer lines (malloc'd). */
char *nc_shell_quote (const char *s);

#endif /* NC_RUNNER_H */
