/* nbd-conformance: helpers for the C integration tests in tests/ (raw
 * client tests against nbd-refserver).  A test program runs one case,
 * chosen at build time (-DTEST_CASE="name") or by argv[1]; the case starts
 * its own server with tl_start_server, talks to it with common/client.h,
 * and ends with tl_check_alive (a fresh connection still gets a read
 * served).  Output: "ok:", "info:" lines, and on failure one "FAIL:" line
 * saying what was sent, what came back and what was expected, then exit 1.
 * Exit 77 with a "SKIP:" line when the environment lacks something.
 */
#ifndef NBDP_TESTLIB_H
#define NBDP_TESTLIB_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"

struct tl_server {
  pid_t pid;
  char sock[256];
};

/* A test case: name and function. */
struct tl_case {
  const char *name;
  void (*fn) (void);
};

/* Runs the case named by argv[1], else default_case, from cases[0..n). */
int tl_main (int argc, char **argv, const struct tl_case *cases, size_t n,
             const char *default_case);

/* A test file ends with TL_MAIN (cases); building it with
 * -DTEST_CASE='"name"' makes a binary that runs that case.
 */
#ifdef TEST_CASE
#define TL_DEFAULT_CASE TEST_CASE
#else
#define TL_DEFAULT_CASE NULL
#endif
#define TL_MAIN(cases)                                                  \
  int                                                                   \
  main (int argc, char **argv)                                          \
  {                                                                     \
    return tl_main (argc, argv, cases, sizeof cases / sizeof cases[0],  \
                    TL_DEFAULT_CASE);                                   \
  }

/* Start nbd-refserver with the given options (NULL-terminated) on a
 * private socket; waits (bounded) until its pid file exists.  Killed at
 * exit.
 */
void tl_start_server (struct tl_server *s, const char *const *args);
/* The server process still exists (not a zombie). */
bool tl_server_running (const struct tl_server *s);
/* Resident memory of the server in KiB (VmRSS), -1 if unknown. */
long tl_server_rss_kib (const struct tl_server *s);

/* A new client connected to s (fails the test if it cannot connect). */
struct nbdp_client *tl_connect (const struct tl_server *s);
/* Connect and do the usual handshake (GO to export name, structured
 * replies and base:allocation if asked).
 */
struct nbdp_client *tl_open (const struct tl_server *s, const char *name,
                             bool structured);

/* After a bad-input case: the server process runs and a fresh connection
 * gets NBD_CMD_READ served.  what names the case for the message.
 */
void tl_check_alive (const struct tl_server *s, const char *what);
/* The same connection still serves a read (stream in step). */
void tl_check_conn_alive (struct nbdp_client *c, const char *what);

/* Run one command: 0 = success; > 0 = the NBD error the server replied;
 * -1 = the connection broke (EOF / I/O) or the server broke the protocol
 * (a protocol violation fails the test at once, with the client's
 * message).  buf: READ destination (count bytes); payload: WRITE data.
 */
int tl_cmd (struct nbdp_client *c, uint16_t type, uint16_t flags,
            uint64_t offset, uint64_t count, void *buf, const void *payload,
            enum nbdp_layout layout);

/* Wait for the server to close the connection: true if it did. */
bool tl_server_closed (struct nbdp_client *c);

/* What the server does next, waiting at most ms: close the connection,
 * send data, or nothing.
 */
enum tl_peer { TL_PEER_CLOSED, TL_PEER_DATA, TL_PEER_TIMEOUT };
enum tl_peer tl_peer_state (struct nbdp_client *c, int ms);

/* Connect, read the newstyle greeting (failing unless it is fixed
 * newstyle) and send cflags.
 */
struct nbdp_client *tl_newstyle (const struct tl_server *s, uint32_t cflags);
/* Read option replies to opt until a final one.  Returns its reply type
 * (NBD_REP_ACK or an NBD_REP_ERR_*), or 0 if the server closed the
 * connection first.  Fails the test on a timeout or a malformed reply.
 */
uint32_t tl_opt_final (struct nbdp_client *c, uint32_t opt, const char *sent);
/* Name of an option reply type. */
const char *tl_repname (uint32_t rep);

_Noreturn void tl_fail (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
_Noreturn void tl_skip (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
void tl_ok (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void tl_info (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Name of an NBD error value ("NBD_EINVAL") or of a failure. */
const char *tl_errname (int nbd_err);

#define TL_KIB 1024ULL
#define TL_MIB (1024ULL * 1024)
#define TL_GIB (1024ULL * 1024 * 1024)

#endif /* NBDP_TESTLIB_H */
