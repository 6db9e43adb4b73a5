/* nbd-conform: what a conformance test sees.  A suite file holds a static
 * table of tests and registers it with NC_SUITE; each test gets a fresh
 * context (its own server when run with --server, its own connections)
 * in a forked child, records findings against requirement IDs, and the
 * runner turns them into a result class (DESIGN.md "Result classes").
 *
 *   static void
 *   test_flush (struct nc_ctx *t)
 *   {
 *     struct nc_conn *c = nc_open (t, NULL);         // handshake, checked
 *     if (!(c->s.eflags & NBD_FLAG_SEND_FLUSH))
 *       nc_unsupported (t, "server did not advertise SEND_FLUSH");
 *     struct nc_result r;
 *     nc_cmd (t, c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, &r);
 *     nc_expect (t, r.error == 0, "FLUSH failed: %s", nc_errstr (&r));
 *   }
 *   static const struct nc_test tests[] = {
 *     { "flush", "CMD-FLUSH-1", NBDP_MUST, test_flush, "FLUSH succeeds" },
 *   };
 *   NC_SUITE ("transmission", tests);
 *
 * Functions marked "ends the test" do not return: the child reports and
 * exits (servers and temp files are cleaned up by the runner).
 */
#ifndef NC_CONFORM_H
#define NC_CONFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd-proto.h"
#include "codec.h"
#include "client.h"
#include "rules.h"

/* ---- result classes ------------------------------------------------- */

enum nc_class {
  NC_PASS, NC_FAIL, NC_XFAIL, NC_XPASS, NC_UNSUPPORTED, NC_SKIP, NC_INFO,
  NC_NONSTRICT, NC_TIMEOUT, NC_ERROR,
  NC_NR_CLASSES,
};
const char *nc_class_name (enum nc_class c);
/* True if this class makes the run fail (exit 1). */
bool nc_class_fails_run (enum nc_class c);

/* ---- registration --------------------------------------------------- */

struct nc_ctx;
struct nc_test {
  const char *name;           /* short name, unique in the suite */
  const char *ids;            /* requirement IDs, space separated */
  enum nbdp_level level;      /* level of nc_expect findings */
  void (*fn) (struct nc_ctx *t);
  const char *summary;        /* one line: what the test checks */
};

void nc_register_suite (const char *suite, const struct nc_test *tests,
                        size_t n);
#define NC_SUITE(suite_name, table)                                     \
  static void nc_register_##table (void) __attribute__ ((constructor)); \
  static void                                                           \
  nc_register_##table (void)                                            \
  {                                                                     \
    nc_register_suite ((suite_name), (table),                           \
                       sizeof (table) / sizeof (table)[0]);             \
  }

/* ---- run configuration ---------------------------------------------- */

struct nc_config {
  const char *uri;            /* target by URI, or */
  const char *server_cmd;     /* command with {socket} / {dir} */
  const char *export_name;    /* export for --server (default "") */
  const char *ro_export;      /* a read-only export, if the server has one */
  bool strict;
  bool verbose;
  double timeout;             /* seconds per test */
  int client_timeout_ms;
  const char *argv0;
  /* The resize suite (suites/resize): --profile NAME, the draft encoding
   * or nbd-refserver profile the server declares; --control-cmd CMD, a
   * command that resizes the export from outside ({size} {socket} {dir}
   * {uri} substituted).  NULL when not given.
   */
  const char *profile;
  const char *control_cmd;
  /* The client suites (suites/client, suites/lib/client-script.h):
   * --client CMD, --client-read CMD and --client-write CMD, commands with
   * {uri} ({socket}, {dir}) that run the client under test.  NULL when
   * not given.
   */
  const char *client_cmd;
  const char *client_read_cmd;
  const char *client_write_cmd;
};

/* ---- the test context ----------------------------------------------- */

/* One connection and the rule engine's view of it. */
struct nc_pending;             /* conn.c: replies of requests in flight */
struct nc_conn {
  struct nbdp_client *c;
  struct nbdp_session s;
  char *export_name;
  struct nc_pending *pending;
  size_t n_pending, cap_pending;
};

/* What came back for one command. */
struct nc_result {
  bool complete;              /* the reply was read to its end */
  uint32_t error;             /* NBD error (simple reply or first chunk) */
  char message[256];          /* error chunk message, if any */
  unsigned chunks;            /* structured/extended chunks */
  unsigned simple;            /* simple replies */
  uint16_t last_type;         /* type of the last chunk */
  uint64_t data_bytes, hole_bytes;
  struct nbdp_bs_extent *extents; /* BLOCK_STATUS (freed with the ctx) */
  size_t n_extents;
  const char *io_error;       /* set if the connection failed */
};

struct nc_ctx {
  const struct nc_config *cfg;
  const struct nc_test *test;
  const char *suite;
  char *dir;                  /* private temp dir (--server) */
  char *socket;               /* its socket path (--server) */
  char *uri;                  /* what connections use */
  int server_pid;             /* 0 if none */
};

/* Findings.  id NULL means the test's first requirement ID. */
void nc_fail (struct nc_ctx *t, const char *id, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
void nc_should (struct nc_ctx *t, const char *id, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* A finding at the test's registered level with its first ID, unless
 * cond holds.  Returns cond.
 */
bool nc_expect (struct nc_ctx *t, bool cond, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Record behaviour that the spec leaves open (result INFO if nothing
 * failed).
 */
void nc_info (struct nc_ctx *t, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Debug log line, kept with the result, printed with -v. */
void nc_log (struct nc_ctx *t, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Turn rule engine violations into findings. */
void nc_violations (struct nc_ctx *t, const struct nbdp_violations *v);

/* These end the test. */
_Noreturn void nc_unsupported (struct nc_ctx *t, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
_Noreturn void nc_skip (struct nc_ctx *t, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
_Noreturn void nc_error (struct nc_ctx *t, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* End now with whatever has been found (e.g. after a fatal FAIL). */
_Noreturn void nc_done (struct nc_ctx *t);

/* ---- connections (suites/lib/conn.c) -------------------------------- */

/* A new connection to the test's server, nothing sent yet.  Ends the test
 * (ERROR) if it cannot connect.
 */
struct nc_conn *nc_connect (struct nc_ctx *t);

/* Handshake options for nc_open. */
struct nc_open_opts {
  const char *export_name;    /* NULL: the configured export */
  bool structured;            /* negotiate structured replies */
  bool extended;              /* negotiate extended headers */
  const char *const *meta;    /* SET_META_CONTEXT queries */
  size_t n_meta;
  bool block_size;            /* request NBD_INFO_BLOCK_SIZE in GO */
  bool no_zeroes;
};
/* Connect and do the whole handshake (greeting, flags, options, GO), every
 * message judged by the rule engine.  Ends the test if it cannot reach
 * transmission: UNSUPPORTED when an option asked for was refused with an
 * error reply, FAIL for violations, ERROR otherwise.
 */
struct nc_conn *nc_open (struct nc_ctx *t, const struct nc_open_opts *o);
/* The handshake steps, each judged (for handshake tests). */
void nc_greeting (struct nc_ctx *t, struct nc_conn *c, uint16_t *gflags);
void nc_send_cflags (struct nc_ctx *t, struct nc_conn *c, uint32_t cflags);
void nc_send_option (struct nc_ctx *t, struct nc_conn *c, uint32_t option,
                     const void *data, uint32_t len);
/* Read one option reply and judge it; returns NBDP_RULES_FINAL on the
 * final reply.  Payload valid until the next receive.  Ends the test on
 * EOF/timeout (FAIL with id, or ERROR if id is NULL).
 */
enum nbdp_rules_progress nc_option_reply (struct nc_ctx *t, struct nc_conn *c,
                                          struct nbdp_opt_reply *r);
/* Read option replies until the final one; returns its reply type. */
uint32_t nc_option_final (struct nc_ctx *t, struct nc_conn *c);

/* Send one request (registered with the rule engine; cookie 0 picks the
 * next).  Returns the cookie.
 */
uint64_t nc_send (struct nc_ctx *t, struct nc_conn *c, uint16_t type,
                  uint16_t flags, uint64_t offset, uint64_t count,
                  const void *payload, size_t payload_len);
/* Read replies until the one for cookie is complete, judging every chunk;
 * READ data lands in rbuf (count bytes, may be NULL).  Replies to other
 * requests in flight are judged and kept for their own nc_wait, so
 * several requests may be waited for in any order.  On EOF/timeout sets
 * r->io_error and returns -1.
 */
int nc_wait (struct nc_ctx *t, struct nc_conn *c, uint64_t cookie,
             void *rbuf, struct nc_result *r);
/* nc_send + nc_wait. */
int nc_cmd (struct nc_ctx *t, struct nc_conn *c, uint16_t type,
            uint16_t flags, uint64_t offset, uint64_t count,
            const void *wbuf, void *rbuf, struct nc_result *r);
/* "NBD_EINVAL" etc., "success", or the I/O error. */
const char *nc_errstr (const struct nc_result *r);
/* Send NBD_CMD_DISC. */
void nc_disc (struct nc_ctx *t, struct nc_conn *c);

#endif /* NC_CONFORM_H */
