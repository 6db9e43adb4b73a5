/* nbd-conformance: the draft RESIZE extension (specs/resize.md) on top of
 * the raw client (client.h).  It performs the handshake itself so that it
 * can send NBD_OPT_RESIZE and read NBD_INFO_RESIZE, in each encoding of
 * section 13 (negotiated, flag-only, info-optin, boolean, legacy); it
 * sends every form of NBD_CMD_RESIZE (set size, query, subscribe,
 * unsubscribe) with compact or extended headers; it decodes
 * NBD_REPLY_TYPE_RESIZE chunks through the extension hooks of the command
 * layer; and it judges everything with rules-resize.h, collecting the
 * violations in rc->vs.  A violation after which a conforming client
 * hard-disconnects (RZ-CLI-27 to RZ-CLI-34) closes the socket.
 *
 * Use: nbdp_rz_client_new, nbdp_rz_connect_uri, nbdp_rz_handshake, then
 * the transmission calls; nbdp_rz_client_free.  Calls return 0 or -1;
 * on -1 rc->status says why and nbdp_rz_error gives the message.
 */
#ifndef NBDP_CLIENT_RESIZE_H
#define NBDP_CLIENT_RESIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "rules-resize.h"

enum nbdp_rz_status {
  NBDP_RZ_OK = 0,
  NBDP_RZ_REFUSED,            /* the server answered with an error */
  NBDP_RZ_VIOLATION,          /* the server broke a requirement */
  NBDP_RZ_UNSUPPORTED,        /* not negotiated: the client will not send */
  NBDP_RZ_IO,                 /* connection or local error */
};

struct nbdp_rz_opts {
  enum nbdp_rz_encoding encoding;
  uint32_t features;          /* NBD_OPT_RESIZE request (P and B3) */
  bool structured;            /* negotiate structured replies */
  bool extended;              /* negotiate extended headers */
  bool probe_info;            /* NBD_OPT_INFO before NBD_OPT_GO */
  bool use_export_name;       /* end with NBD_OPT_EXPORT_NAME */
  bool no_block_size;         /* do not list NBD_INFO_BLOCK_SIZE */
  const char *export_name;    /* NULL: the URI's */
};

/* A decoded line of the conversation, for -v. */
typedef void (*nbdp_rz_trace_fn) (void *opaque, const char *line);

struct nbdp_rz_cmd;           /* internal */

struct nbdp_rz_client {
  struct nbdp_client *c;
  struct nbdp_rz_state st;
  struct nbdp_rz_violations vs;   /* every violation seen */
  enum nbdp_rz_status status;
  char err[NBDP_CLIENT_ERRMAX];
  bool force;                 /* send requests the client rules forbid */

  /* Handshake results. */
  bool oldstyle;
  bool opt_refused;           /* NBD_OPT_RESIZE got an error reply */
  uint32_t opt_rep;           /* its reply type */
  bool go_refused_unsup;      /* GO unsupported, EXPORT_NAME used */
  struct nbdp_export exp;     /* export information of the GO */
  struct nbdp_rz_export go_ex;
  bool have_info_ex;
  struct nbdp_rz_export info_ex;   /* of the NBD_OPT_INFO probe */

  /* Subscription. */
  struct nbdp_rz_cmd *sub;    /* the subscribe command, while active */
  bool sub_new;               /* a subscription chunk arrived */
  struct nbdp_rz_chunk sub_last;
  bool sub_initial;           /* sub_last was the snapshot */
  bool sub_ended;             /* the subscription ended */

  /* Internal. */
  nbdp_rz_trace_fn trace;
  void *trace_opaque;
  struct nbdp_rz_cmd *cmds;   /* commands in flight started here */
};

/* What one NBD_CMD_RESIZE or growing write came back with. */
struct nbdp_rz_result {
  uint32_t error;             /* NBD error replied, 0 on success */
  bool have_chunk;            /* an NBD_REPLY_TYPE_RESIZE came */
  struct nbdp_rz_chunk chunk;
  uint64_t old_size;          /* the size believed before */
  uint64_t size;              /* the size believed now */
};

struct nbdp_rz_client *nbdp_rz_client_new (void);
void nbdp_rz_client_free (struct nbdp_rz_client *rc);
void nbdp_rz_set_trace (struct nbdp_rz_client *rc, nbdp_rz_trace_fn fn,
                        void *opaque);
const char *nbdp_rz_error (const struct nbdp_rz_client *rc);
/* Connect by NBD URI, or use a connected fd. */
int nbdp_rz_connect_uri (struct nbdp_rz_client *rc, const char *uri);
int nbdp_rz_set_fd (struct nbdp_rz_client *rc, int fd);

/* The whole handshake in the chosen encoding. */
int nbdp_rz_handshake (struct nbdp_rz_client *rc,
                       const struct nbdp_rz_opts *opts);
/* Single steps, for tests and suites (after the greeting and flags). */
int nbdp_rz_opt_resize (struct nbdp_rz_client *rc, uint32_t features);
int nbdp_rz_opt_info (struct nbdp_rz_client *rc, bool go, const char *name,
                      const uint16_t *infos, size_t n_infos,
                      struct nbdp_export *exp, struct nbdp_rz_export *ex);

/* Transmission.  Each checks the request against the client rules first
 * (unless rc->force: status UNSUPPORTED when the mode does not allow it,
 * IO for other client-side refusals), then the reply against the server
 * rules.
 */
int nbdp_rz_set_size (struct nbdp_rz_client *rc, uint64_t size,
                      uint16_t flags, struct nbdp_rz_result *res);
int nbdp_rz_query (struct nbdp_rz_client *rc, struct nbdp_rz_result *res);
/* Send a subscribe and wait for its first (snapshot) chunk, returned in
 * res->chunk.  own_changes: this connection will change the size too
 * (otherwise every notification must carry REMOTE).
 */
int nbdp_rz_subscribe (struct nbdp_rz_client *rc, bool own_changes,
                       struct nbdp_rz_result *res);
/* Wait at most timeout_ms (< 0: forever) for the next notification.
 * Returns 1 with *ch filled, 0 on timeout, -1 on failure (also when the
 * subscription ended: rc->sub_ended).
 */
int nbdp_rz_next_event (struct nbdp_rz_client *rc, int timeout_ms,
                        struct nbdp_rz_chunk *ch);
int nbdp_rz_unsubscribe (struct nbdp_rz_client *rc,
                         struct nbdp_rz_result *res);
/* Send any NBD_CMD_RESIZE (flags, offset, count as given); for probing
 * servers.  Judged like the matching form.
 */
int nbdp_rz_resize_raw (struct nbdp_rz_client *rc, uint16_t flags,
                        uint64_t offset, uint64_t count,
                        struct nbdp_rz_result *res);

/* Default bound on one read without NBD_INFO_BLOCK_SIZE (2^25). */
#define NBDP_RZ_DEFAULT_MAX_PAYLOAD (UINT64_C (32) * 1024 * 1024)

/* A read of count bytes at offset, as several NBD_CMD_READ requests if
 * the size constraints ask for it: none longer than the maximum payload
 * (or 32 MiB without NBD_INFO_BLOCK_SIZE), offsets and lengths multiples
 * of the minimum block size (a partial block at either end is read whole
 * and only the asked bytes are kept).  Pieces go one at a time; the
 * first failure ends the read (buf partly filled).
 */
int nbdp_rz_pread (struct nbdp_rz_client *rc, void *buf, uint64_t count,
                   uint64_t offset, uint16_t flags);
/* A write; past the end it is a growing write (needs AUTO_GROW, see
 * RZ-CLI-16).  res may be NULL.
 */
int nbdp_rz_pwrite (struct nbdp_rz_client *rc, const void *buf,
                    uint64_t count, uint64_t offset, uint16_t flags,
                    struct nbdp_rz_result *res);
/* NBD_CMD_DISC; with a subscription active, waits (within the client
 * timeout) for the chunk that ends it (RZ-SUB-13) and for EOF.  Before
 * transmission (the handshake failed, e.g. NBD_OPT_GO refused) the soft
 * disconnect is NBD_OPT_ABORT instead.  Nothing is sent on a connection
 * that is closed or dead.
 */
int nbdp_rz_disc (struct nbdp_rz_client *rc);

/* The first violation to report (disconnect ones first, then MUST, then
 * SHOULD), or NULL.
 */
const struct nbdp_rz_violation *
nbdp_rz_worst (const struct nbdp_rz_client *rc);

#endif /* NBDP_CLIENT_RESIZE_H */
