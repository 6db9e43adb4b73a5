/* nbd-matrix: the result model.  One run is a list of implementations
 * (with versions), scenarios and cells; every output (results.json, TAP,
 * JUnit, Markdown, HTML) is produced from this model, and results.json
 * reads back into it (merge, diff, report).  results/schema-matrix.md
 * documents the JSON form.
 */
#ifndef NBDM_RESULTS_H
#define NBDM_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum verdict {
  V_PASS,
  V_FAIL,
  V_XFAIL,
  V_XPASS,
  V_UNSUPPORTED,
  V_SKIP,
  V_TIMEOUT,
  V_ERROR,
  NR_VERDICTS,
};

const char *verdict_name (enum verdict v);
/* -1 if unknown. */
int verdict_parse (const char *name);
/* FAIL, XPASS, TIMEOUT and ERROR make a run fail. */
bool verdict_is_bad (enum verdict v);

struct impl_info {
  char *name;                   /* "qemu-io", "nbd-refserver:legacy" */
  char *kind;                   /* "server" or "client" */
  char *adapter;                /* path of the adapter/driver, from top */
  char *profile;                /* servers: profile or NULL */
  bool available;
  char *version;                /* NULL when not available */
  char *skip_reason;            /* NULL when available */
  char **caps;                  /* servers: NULL-terminated, may be NULL */
  int probe_flags;              /* servers: transmission flags, -1 unknown */
  char *probe_log;              /* servers: what the probe saw */
  char **steps;                 /* clients: kinds declared by --steps */
};

struct scenario_info {
  char *name;
  char *summary;
  char *path;
  char **requirements;
  char *text;                   /* the scenario file, for the evidence */
};

/* One protocol violation nbd-spy saw in a cell (its --json summary). */
struct spy_violation {
  char *id;                     /* requirement ID, e.g. "RZ-CHUNK-1" */
  char *level;                  /* "MUST" or "SHOULD" */
  char *direction;              /* "S->C" (by the server) or "C->S" */
  char *party;                  /* "server" or "client" */
  char *message;
  int conn;                     /* the spy's connection number */
};

/* At most this many violations are listed per cell (the rest counted). */
#define CELL_SPY_VIOLATIONS_MAX 50

/* nbd-spy between the client driver and the server of a cell. */
struct cell_spy {
  char *transcript;             /* relative to the run directory (absolute
                                 * after a merge from elsewhere) */
  char *excerpt;                /* first and last lines of the transcript */
  char *error;                  /* why the evidence is incomplete, or NULL */
  long connections;             /* connections the client made */
  long must, should;            /* violations seen, by level */
  long server_must;             /* MUST violations by the server: they
                                 * make a passing cell FAIL (cell.c) */
  struct spy_violation *violations;     /* the first ones, in order */
  size_t nr_violations;
  long violations_omitted;      /* seen but not listed */
};

struct cell {
  char *client, *server, *scenario;
  enum verdict verdict;
  char *reason;                 /* one line; empty for a plain PASS */
  char *expectation;            /* XFAIL/XPASS: the listed reason */
  double seconds;
  /* Where a cell that ran spent its time, in seconds (has_phases false
   * for cells decided without running): the server adapter's start until
   * its socket accepted a connection, the harness's probe, the client
   * driver, the content check, and stopping the server group.
   */
  bool has_phases;
  double t_start, t_probe, t_client, t_verify, t_stop;
  int flags;                    /* transmission flags the cell saw, -1 */
  char *server_log;             /* text (tail), may be NULL */
  char *client_log;
  char *harness_log;            /* probe, verify, process notes */
  char *reproducer;             /* one command line */
  char *evidence_dir;           /* relative to the run directory */
  /* The client ran through nbd-spy (NULL: without, or not run). */
  struct cell_spy *spy;
  double t_spy;                 /* seconds starting and stopping the spy */
};

struct run {
  char *tool_version;
  char *started, *finished;     /* ISO 8601 UTC */
  char *host;
  char *command;
  char *shard;                  /* "K/N" or NULL */
  double timeout;
  struct impl_info *impls;
  size_t nr_impls;
  struct scenario_info *scenarios;
  size_t nr_scenarios;
  struct cell *cells;
  size_t nr_cells;
};

void run_init (struct run *run);
void run_free (struct run *run);
void cell_free (struct cell *c);
void cell_spy_free (struct cell_spy *s);   /* and s itself */
/* The violations as one line: "2 MUST, 1 SHOULD: RZ-CHUNK-1 MUST by the
 * server, ..." (each ID once), or NULL when there are none.
 */
char *cell_spy_summary (const struct cell_spy *s);
void impl_free (struct impl_info *i);
void scenario_info_free (struct scenario_info *s);

/* Add entries (the structs are copied: ownership moves to the run). */
int run_add_impl (struct run *run, const struct impl_info *impl);
int run_add_scenario (struct run *run, const struct scenario_info *s);
int run_add_cell (struct run *run, const struct cell *c);
struct cell *run_find_cell (const struct run *run, const char *client,
                            const char *server, const char *scenario);
const struct impl_info *run_find_impl (const struct run *run,
                                       const char *kind, const char *name);
const struct scenario_info *run_find_scenario (const struct run *run,
                                               const char *name);

/* Counts per verdict. */
void run_count (const struct run *run, size_t counts[NR_VERDICTS]);

/* JSON I/O.  Write: 0 or -1 (errno).  Read: 0, or -1 with a message. */
int results_write_json (const struct run *run, const char *path);
/* The stable form committed as results/baseline.json: verdicts, reasons
 * and versions only; no time, host, log, absolute path or timing, one
 * cell a line (results/schema-matrix.md "Baseline").  Strings that
 * contain top (the project directory) have it removed.
 */
int results_write_baseline (const struct run *run, const char *path,
                            const char *top);
int results_read_json (struct run *run, const char *path,
                       char *err, size_t errlen);
/* One cell alone, for passing results from a cell process. */
int cell_write_json (const struct cell *c, const char *path);
int cell_read_json (struct cell *c, const char *path, char *err,
                    size_t errlen);

/* Merge src into dst: implementations and scenarios by name, cells by
 * (client, server, scenario); a cell present in both takes src's.
 */
int run_merge (struct run *dst, const struct run *src);

/* Small string helpers. */
char *xstrdup (const char *s);           /* NULL stays NULL; aborts on OOM */
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
char **strv_copy (char *const *v);
void strv_free (char **v);
size_t strv_len (char *const *v);
bool strv_contains (char *const *v, const char *s);
/* Read a whole file (at most max bytes from the end if larger; with a
 * note saying how much was cut).  NULL if it cannot be read.
 */
char *read_file_tail (const char *path, size_t max);

#endif /* NBDM_RESULTS_H */
