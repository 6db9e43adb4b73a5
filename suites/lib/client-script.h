/* nbd-conform --client: the scripted server of the client suites.
 *
 * Each client test builds one scripted server (ncs_new), sets what it
 * advertises and how it misbehaves (fields and hooks below), and calls
 * ncs_run: that listens on a private Unix socket in a private dir, runs
 * the client command (--client CMD, or --client-write CMD for tests whose
 * action is a write) in its own process group with {uri}, {socket} and
 * {dir} substituted, serves every connection the client makes, judges
 * every client message (the rule engine's client-side request checks and
 * the option checks here: findings are reported at once), and returns
 * once the client has exited and closed its connections.  The test then
 * judges what was recorded: ncs_need (UNSUPPORTED if the client never did
 * the action the test needs), the exit status, disconnect behaviour and
 * the data the client wrote to {dir}/out.
 *
 * A client that hangs is a TIMEOUT: the runner kills the test and the
 * client's process group (nc_own).
 */
#ifndef NC_CLIENT_SCRIPT_H
#define NC_CLIENT_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conform.h"

/* What the test needs the client to do. */
enum ncs_action {
  NCS_ANY,                    /* just connect (handshake tests) */
  NCS_READ,                   /* NBD_CMD_READ */
  NCS_WRITE,                  /* write-type commands: runs --client-write */
  NCS_BLOCK_STATUS,           /* NBD_CMD_BLOCK_STATUS */
  NCS_READ_OR_BS,             /* either */
};

#define NCS_EXPORT "conform"  /* the export name in {uri} */
#define NCS_MAX_HELD 256

enum ncs_state { NCS_GREETING, NCS_OPTIONS, NCS_TRANSMISSION, NCS_CLOSED };

struct ncs;
struct ncs_conn {
  struct ncs *srv;
  unsigned id;                /* 1, 2, ... in order of accept */
  int fd;
  enum ncs_state state;
  struct nbdp_session s;      /* what was negotiated, requests in flight */
  uint32_t cflags;
  bool sr, eh;                /* structured replies / extended headers */
  bool meta_selected;
  bool block_size_sent;       /* NBD_INFO_BLOCK_SIZE sent */
  bool block_size_asked;      /* ... and requested by the client */
  bool aborted;               /* NBD_OPT_ABORT received */
  bool disc;                  /* NBD_CMD_DISC received */
  bool eof;                   /* the client closed */
  bool bad;                   /* we broke the protocol on purpose */
  bool disc_after_bad;        /* NBD_CMD_DISC after that */
  unsigned reqs_after_bad;    /* other requests read after that */
  unsigned n_reads, n_bs;     /* READ / BLOCK_STATUS requests */
  unsigned n_requests;
  size_t inflight_max;
  struct nbdp_request held[NCS_MAX_HELD];
  size_t n_held;
  uint32_t last_opt;
};

struct ncs_opt_seen {
  unsigned conn;
  uint32_t opt;
  uint32_t len;
};

struct ncs_req_seen {
  unsigned conn;
  struct nbdp_request r;
  bool after_bad;
};

struct ncs {
  struct nc_ctx *t;
  enum ncs_action action;

  /* ---- what the server says (set before ncs_run) ---- */
  uint16_t gflags;            /* FIXED_NEWSTYLE | NO_ZEROES */
  uint16_t eflags;            /* HAS_FLAGS | FLUSH FUA TRIM WZ CACHE DF
                                 FAST_ZERO */
  uint64_t size;              /* 1 MiB (at most 64 MiB) */
  bool structured;            /* ACK NBD_OPT_STRUCTURED_REPLY (true) */
  bool extended;              /* ACK NBD_OPT_EXTENDED_HEADERS (false) */
  bool meta;                  /* offer base:allocation (true) */
  uint32_t meta_id;           /* its context ID (1) */
  uint32_t go_error;          /* answer INFO/GO with this NBD_REP_ERR_* */
  bool block_size;            /* send NBD_INFO_BLOCK_SIZE when asked */
  uint32_t min_block, pref_block, max_block;
  bool unknown_info;          /* an unknown NBD_INFO first, INFO_EXPORT
                                 last */
  bool abort_close;           /* close on NBD_OPT_ABORT without a reply */
  uint32_t bs_extra;          /* OR'd into every base:allocation state */
  bool bs_no_merge;           /* one extent per 4 KiB, equal or not */
  unsigned hold;              /* gather up to this many READ/BS requests,
                                 reply in reverse order (0: at once) */
  int option_delay_ms;        /* wait before each option reply */
  /* Hooks: return true if they answered the message themselves. */
  bool (*on_option) (struct ncs *s, struct ncs_conn *c, uint32_t opt,
                     const uint8_t *data, uint32_t len);
  bool (*on_request) (struct ncs *s, struct ncs_conn *c,
                      const struct nbdp_request *r, const uint8_t *payload);
  void *priv;

  /* ---- state ---- */
  char *dir, *sock, *uri, *cmd;
  int lfd;
  pid_t pid;
  uint8_t *data;              /* the export's content */
  uint64_t data_size;
  struct ncs_conn *conns[32];
  size_t n_conns, max_open;

  /* ---- what happened ---- */
  struct ncs_opt_seen *opts;
  size_t n_opts, cap_opts;
  struct ncs_req_seen *reqs;
  size_t n_reqs, cap_reqs;
  unsigned cmd_count[16];
  bool judge_exit;            /* ran --client-read/-write: exit status 0
                                 claims the I/O succeeded */
  bool exited;
  int status;                 /* waitpid status */
  uint8_t *out;               /* {dir}/out, if the client wrote it */
  size_t out_len;
  bool have_out;
  size_t inflight_max;
};

/* A scripted server with the defaults above and the content pattern. */
struct ncs *ncs_new (struct nc_ctx *t, enum ncs_action action);
/* Make [off, off+len) of the content zero. */
void ncs_zero (struct ncs *s, uint64_t off, uint64_t len);
/* Run the client against the script until it exits (see above). */
void ncs_run (struct ncs *s);

/* ---- for hooks ---- */

/* Option reply. */
int ncs_opt_reply (struct ncs_conn *c, uint32_t opt, uint32_t reply,
                   const void *data, uint32_t len);
/* Simple reply (data: READ payload, may be NULL). */
int ncs_simple (struct ncs_conn *c, uint64_t cookie, uint32_t error,
                const void *data, size_t len);
/* One structured or extended chunk (per what was negotiated); off is the
 * extended header's offset field.
 */
int ncs_chunk (struct ncs_conn *c, uint64_t cookie, uint16_t flags,
               uint16_t type, uint64_t off, const void *payload,
               size_t len);
int ncs_chunk_data (struct ncs_conn *c, const struct nbdp_request *r,
                    uint16_t flags, uint64_t off, uint64_t len);
int ncs_chunk_hole (struct ncs_conn *c, const struct nbdp_request *r,
                    uint16_t flags, uint64_t off, uint64_t len);
int ncs_chunk_error (struct ncs_conn *c, const struct nbdp_request *r,
                     uint16_t flags, uint16_t type, uint32_t error,
                     const char *msg, uint64_t off);
/* Error reply in the negotiated form (simple, or an error chunk). */
int ncs_error (struct ncs_conn *c, const struct nbdp_request *r,
               uint32_t error);
/* The default answer to a request. */
void ncs_reply (struct ncs_conn *c, const struct nbdp_request *r,
                const uint8_t *payload);
/* A structured READ reply in content chunks of piece bytes (all-zero
 * pieces as holes when holes is set), sent in the order given by perm
 * (0: forward, 1: reverse, 2: shuffled, fixed seed); DONE on the last.
 */
void ncs_read_chunks (struct ncs_conn *c, const struct nbdp_request *r,
                      uint64_t piece, bool holes, int perm);
/* The server just broke the protocol on purpose ("what" is logged): from
 * now on the connection stays silent and records what the client does.
 */
void ncs_bad (struct ncs_conn *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Is r the first READ (or, with bs, READ or BLOCK_STATUS) of c? */
bool ncs_first_target (struct ncs_conn *c, const struct nbdp_request *r,
                       bool bs);

/* ---- judging (after ncs_run) ---- */

/* UNSUPPORTED (ends the test) unless the client did the test's action. */
void ncs_need (struct ncs *s);
/* The connection that did the action (the first with READ/BS/writes), or
 * the first connection; NULL if none.
 */
struct ncs_conn *ncs_main_conn (struct ncs *s);
bool ncs_exit_ok (const struct ncs *s);
const char *ncs_exit_str (const struct ncs *s);
/* Expect exit status 0 (the client was served correctly). */
void ncs_expect_success (struct ncs *s, const char *id, enum nbdp_level lvl);
/* Expect a nonzero exit status: the client must not report success. */
void ncs_expect_failure (struct ncs *s, const char *id, const char *why);
/* On every connection where ncs_bad was called: the client must have
 * closed without NBD_CMD_DISC (a hard disconnect).
 */
void ncs_expect_hard_disconnect (struct ncs *s, const char *id);
/* If the client wrote {dir}/out: it must equal the content from 0. */
void ncs_check_out (struct ncs *s, const char *id);
/* Number of requests of a type, and of those with a command flag. */
unsigned ncs_count (const struct ncs *s, uint16_t type);
unsigned ncs_count_flag (const struct ncs *s, uint16_t flag);
/* Was the option sent (on any connection)? */
bool ncs_sent_option (const struct ncs *s, uint32_t opt);

/* ---- suites/lib/context.c ---- */

/* The test owns this process group and temp dir: the runner kills and
 * removes them if the test dies or times out, and the test's end does
 * too.
 */
void nc_own (struct nc_ctx *t, pid_t pgid, const char *dir);

#endif /* NC_CLIENT_SCRIPT_H */
