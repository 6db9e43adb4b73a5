/* nbd-matrix: the scenario line language (harness/scenarios, files ending .scn).
 *
 * One step a line, `#` starts a comment.  Header comments of the form
 * `# key: value` before the first step describe the scenario:
 *
 *   # scenario: NAME            defaults to the file name without .scn
 *   # summary: TEXT             one line for reports
 *   # requirements: ID ...      requirement IDs (specs/requirements.tsv)
 *   # size: N                   export size the server is started with
 *   # server-flags: NAME ...    transmission flags the server must offer
 *                               (NBD_FLAG_ prefix optional), else the cell
 *                               is UNSUPPORTED on the server side
 *   # server-caps: WORD ...     words the adapter's `caps` must list
 *   # verify: yes|no            harness reads the content back (default:
 *                               yes when a step changes content)
 *
 * Steps (numbers take K M G T suffixes, powers of 1024; BYTE is 0..255 in
 * decimal or 0x hex; every step takes an optional conn=N, default 1):
 *
 *   connect                       disconnect
 *   expect-size N [max=M]         size is N (or within N..M)
 *   write OFF LEN pattern=BYTE [fua]
 *   read OFF LEN expect=BYTE|zero
 *   zero OFF LEN [fua]            trim OFF LEN          flush
 *   map OFF LEN [expect=data|zero|any]
 *   resize N [max=M]              query-size            watch
 *   external-resize N             list [expect=NAME]
 *
 * Derived needs: resize, query-size and watch need NBD_FLAG_SEND_RESIZE;
 * external-resize needs the adapter cap `external-resize`.
 *
 * The content model (scn_model_*) replays the steps on an extent map, so
 * the harness knows what the server must hold afterwards.
 */
#ifndef NBDM_SCENARIO_H
#define NBDM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum scn_kind {
  SCN_CONNECT,
  SCN_DISCONNECT,
  SCN_EXPECT_SIZE,
  SCN_WRITE,
  SCN_READ,
  SCN_ZERO,
  SCN_TRIM,
  SCN_FLUSH,
  SCN_MAP,
  SCN_RESIZE,
  SCN_QUERY_SIZE,
  SCN_WATCH,
  SCN_EXTERNAL_RESIZE,
  SCN_LIST,
};

enum scn_map_expect {
  SCN_MAP_ANY,
  SCN_MAP_DATA,                 /* no part may be reported as reading zero */
  SCN_MAP_ZERO,                 /* every part reported as reading zero */
};

struct scn_step {
  enum scn_kind kind;
  unsigned line;                /* 1-based line in the file */
  unsigned conn;                /* connection number, >= 1 */
  uint64_t off, len;            /* write read zero trim map */
  uint64_t size, size_max;      /* expect-size resize external-resize */
  int byte;                     /* write pattern / read expectation */
  bool expect_zero;             /* read expect=zero (byte is 0) */
  bool fua;                     /* write zero */
  enum scn_map_expect map_expect;
  char *name;                   /* list expect=NAME, or NULL */
  char *text;                   /* the step as written, trimmed */
};

struct scenario {
  char *name;
  char *path;
  char *summary;
  char **requirements;          /* NULL-terminated */
  size_t nr_requirements;
  uint64_t size;                /* default 16 MiB */
  uint16_t server_flags;        /* NBD_FLAG_* bits required */
  char **server_caps;           /* NULL-terminated adapter caps required */
  size_t nr_server_caps;
  bool verify;
  unsigned max_conn;            /* highest conn=N used */
  struct scn_step *steps;
  size_t nr_steps;
};

/* Parse from a string (name is used when no `# scenario:` header is
 * given).  Returns NULL with a message "LINE: what" in err.
 */
struct scenario *scn_parse_string (const char *text, const char *name,
                                   char *err, size_t errlen);
/* Parse a file; the default name is the basename without ".scn". */
struct scenario *scn_parse_file (const char *path, char *err, size_t errlen);
void scn_free (struct scenario *scn);

const char *scn_kind_name (enum scn_kind kind);
/* True if the step changes the export's content or size. */
bool scn_step_writes (const struct scn_step *step);
/* Parse a size with K M G T P E suffixes; false if malformed/overflow. */
bool scn_parse_size (const char *s, uint64_t *out);
/* Name of a transmission flag bit ("SEND_RESIZE"), or NULL. */
const char *scn_flag_name (unsigned bit);
/* Bit for a flag name, with or without NBD_FLAG_; -1 if unknown. */
int scn_flag_bit (const char *name);

/* Print the normalised steps, one a line, tab-separated, for the shell
 * drivers:  LINE KIND CONN OFF LEN SIZE SIZE_MAX BYTE FLAGS NAME
 * (FLAGS is a comma list of fua,zero or "-"; NAME "-" if none).
 */
void scn_print_steps (const struct scenario *scn, FILE *fp);

/* Content model: extents of known bytes, unknown bytes, and the size. */
#define SCN_UNKNOWN (-1)
struct scn_extent {
  uint64_t off, len;
  int byte;                     /* 0..255 or SCN_UNKNOWN */
};
struct scn_model {
  uint64_t size;
  bool size_known;              /* false after a resize with a range */
  uint64_t size_max;            /* when !size_known: upper bound */
  struct scn_extent *ext;       /* sorted, contiguous, cover [0, size) */
  size_t nr_ext;
};

/* Start from a zeroed export of the given size. */
int scn_model_init (struct scn_model *m, uint64_t size);
void scn_model_free (struct scn_model *m);
/* Apply one step (write, zero, trim, resize ...); steps that do not
 * change content are ignored.  Returns 0 or -1 (ENOMEM).
 */
int scn_model_apply (struct scn_model *m, const struct scn_step *step);
/* Replay a whole scenario. */
int scn_model_run (struct scn_model *m, const struct scenario *scn);
/* Check the scenario against its own model: every `read ... expect=`
 * must agree with what earlier steps wrote, every exact expect-size with
 * the modelled size.  Returns true if consistent; otherwise a message.
 */
bool scn_lint (const struct scenario *scn, char *err, size_t errlen);

#endif /* NBDM_SCENARIO_H */
