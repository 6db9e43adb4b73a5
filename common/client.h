/* nbd-conformance: the raw NBD client.  It performs each handshake step on
 * its own, can send any bytes (well formed or not), reads option replies
 * and transmission replies one at a time with every length bounded by the
 * caller, and offers convenience calls (handshake, pread, pwrite, ...) that
 * check what the server sends.  Used by the conformance suites, the
 * project's tests and nbd-refclient.
 *
 * Conventions:
 *  - Actions return 0 on success and -1 on failure.  On failure a message
 *    saying what was sent, what came back and what was expected is kept in
 *    the client (nbdp_client_error); errno is set too.
 *  - The client distinguishes three kinds of failure, see c->failure:
 *    NBDP_FAIL_REFUSED (the server answered with an error, which is
 *    legitimate protocol), NBDP_FAIL_PROTOCOL (the server broke the
 *    protocol; the message says how), NBDP_FAIL_IO (EOF, timeout, socket
 *    error, or a local error such as a bad argument).
 *  - After a failure that leaves the byte stream out of step (a bad magic,
 *    an oversized length, EOF, timeout), or a reply after which the
 *    protocol asks for a hard disconnect (a chunk of unknown non-error
 *    type, NBD_REPLY_TYPE_NONE without DONE), c->dead is set and every
 *    further call fails at once; closing the socket is the owner's.
 *  - Payload pointers handed back (option reply payloads, reply chunk
 *    payloads) point into a buffer owned by the client: they stay valid
 *    until the next receive call on that client.
 *  - A client is used by one thread at a time.
 */
#ifndef NBDP_CLIENT_H
#define NBDP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "nbd-proto.h"

#define NBDP_CLIENT_ERRMAX       2048
#define NBDP_CLIENT_TIMEOUT_MS   30000   /* default receive timeout */
#define NBDP_CLIENT_MAX_CONTEXTS 16

enum nbdp_failure {
  NBDP_FAIL_NONE = 0,
  NBDP_FAIL_REFUSED,     /* the server replied with an error */
  NBDP_FAIL_PROTOCOL,    /* the server violated the protocol */
  NBDP_FAIL_IO,          /* EOF, timeout, socket or local error */
};

/* A negotiated metadata context. */
struct nbdp_meta_context {
  uint32_t id;
  char name[NBD_MAX_STRING + 1];
};

/* Request header layout for sending. */
enum nbdp_layout {
  NBDP_LAYOUT_AUTO = 0,  /* extended if extended headers were negotiated */
  NBDP_LAYOUT_COMPACT,
  NBDP_LAYOUT_EXTENDED,
};

struct nbdp_inflight;  /* internal */
struct nbdp_client;
struct nbdp_cmd;
struct nbdp_client_reply;

/* Extension hooks of the checked command layer, for protocol extensions
 * that this file does not know (the draft RESIZE extension uses them, see
 * client-resize.h).  Both get the reply as read (payload still valid) and
 * may write a message of what was wrong into msg (msgsize bytes).
 *  - reply_hook: called by nbdp_client_cmd_poll for every reply it reads,
 *    before the reply is applied; cmd is NULL when the cookie matches no
 *    request started with nbdp_client_cmd_start.  Return 0 to go on, -1
 *    to fail the poll as a protocol violation with msg as the message
 *    (the connection is then dead: a hard disconnect).
 *  - chunk_hook: called for a non-error chunk whose type the command
 *    layer does not know.  Return 0 to accept the chunk, -1 to record it
 *    as a violation of cmd with msg as the message.  Without a hook such a
 *    chunk is a violation, as before.
 */
typedef int (*nbdp_reply_hook) (void *opaque, struct nbdp_client *c,
                                struct nbdp_cmd *cmd,
                                const struct nbdp_client_reply *r,
                                char *msg, size_t msgsize);

struct nbdp_client {
  int fd;                       /* -1 when not connected */
  int timeout_ms;               /* per receive call; <= 0: wait forever */
  bool dead;                    /* stream out of step: no further I/O */
  enum nbdp_failure failure;    /* kind of the last failure */
  char err[NBDP_CLIENT_ERRMAX]; /* message of the last failure */

  /* From the URI, if connected by URI. */
  char *uri_export;             /* export name in the URI (or NULL) */
  bool uri_tls;                 /* nbds scheme */

  /* Handshake state, filled in as the steps happen. */
  bool oldstyle;                /* oldstyle greeting received */
  uint16_t gflags;              /* newstyle handshake flags */
  uint32_t cflags;              /* client flags sent */
  bool cflags_sent;             /* ... and sent: option haggling began */
  uint32_t last_rep;            /* last option reply type received */
  bool structured;              /* NBD_OPT_STRUCTURED_REPLY acked */
  bool extended;                /* NBD_OPT_EXTENDED_HEADERS acked */
  bool transmission;            /* in the transmission phase */
  uint64_t size;                /* export size */
  uint16_t eflags;              /* transmission flags */
  bool have_block_size;         /* NBD_INFO_BLOCK_SIZE received */
  uint32_t min_block, pref_block, max_block;
  size_t n_contexts;            /* contexts set by SET_META_CONTEXT */
  struct nbdp_meta_context contexts[NBDP_CLIENT_MAX_CONTEXTS];

  /* Transmission. */
  uint64_t next_cookie;         /* used by nbdp_client_next_cookie */
  uint64_t max_reply_payload;   /* bound used by the convenience calls */

  /* Extension hooks (NULL: none), see nbdp_reply_hook. */
  nbdp_reply_hook reply_hook;
  nbdp_reply_hook chunk_hook;
  void *hook_opaque;

  /* Internal. */
  unsigned char *rbuf;          /* receive buffer for payloads */
  size_t rbuf_size;
  struct nbdp_inflight *inflight;
  size_t n_inflight, cap_inflight;
};

/* ---- Life cycle and connection ---- */

/* Allocate a client (not connected).  NULL with errno on failure. */
struct nbdp_client *nbdp_client_new (void);
/* Close the connection (if any) and free everything. */
void nbdp_client_free (struct nbdp_client *c);
/* Connect by NBD URI (nbd://, nbd+unix://; nbds* connect the same way and
 * set c->uri_tls: TLS itself is not done by this client).  The export
 * name of the URI is kept in c->uri_export for nbdp_client_handshake.
 */
int nbdp_client_connect_uri (struct nbdp_client *c, const char *uri);
int nbdp_client_connect_unix (struct nbdp_client *c, const char *path);
int nbdp_client_connect_tcp (struct nbdp_client *c, const char *host,
                             const char *port);
/* Use an already connected fd (socketpair, stdio server); the client
 * owns it from now on.
 */
int nbdp_client_set_fd (struct nbdp_client *c, int fd);
/* Close the socket now (without NBD_CMD_DISC). */
void nbdp_client_close (struct nbdp_client *c);
/* Receive timeout in milliseconds for every following receive call. */
void nbdp_client_set_timeout (struct nbdp_client *c, int ms);
/* The message of the last failure ("" if none). */
const char *nbdp_client_error (const struct nbdp_client *c);

/* ---- Raw bytes ---- */

int nbdp_client_send_raw (struct nbdp_client *c, const void *buf,
                          size_t len);
/* Read exactly len bytes (within the timeout). */
int nbdp_client_recv_raw (struct nbdp_client *c, void *buf, size_t len);
/* Wait (within the timeout) for the server to close the connection.
 * 0 if it did; -1 if data arrived instead (the message shows the first
 * bytes) or the timeout passed.
 */
int nbdp_client_expect_eof (struct nbdp_client *c);

/* ---- Handshake, one step at a time ---- */

struct nbdp_greeting {
  bool oldstyle;
  uint64_t magic;               /* NBD_MAGIC */
  uint64_t version;             /* NBD_NEW_VERSION or NBD_OLD_VERSION */
  uint16_t gflags;              /* newstyle: handshake flags */
  uint64_t size;                /* oldstyle only */
  uint16_t eflags;              /* oldstyle only */
  bool padding_nonzero;         /* oldstyle: the 124 bytes were not zero */
};
/* Read the server greeting: oldstyle (152 bytes, the connection is then
 * in transmission) or newstyle (18 bytes).  Any other magic is a protocol
 * failure.  g may be NULL.
 */
int nbdp_client_recv_greeting (struct nbdp_client *c,
                               struct nbdp_greeting *g);
/* Send the 32-bit client flags (any value). */
int nbdp_client_send_cflags (struct nbdp_client *c, uint32_t cflags);

/* Send an option: IHAVEOPT, option, length, data. */
int nbdp_client_send_option (struct nbdp_client *c, uint32_t option,
                             const void *data, uint32_t len);
/* Send an option header with any magic and declared length, followed by
 * exactly data_len bytes of data (which may differ from declared_len).
 */
int nbdp_client_send_option_raw (struct nbdp_client *c, uint64_t magic,
                                 uint32_t option, uint32_t declared_len,
                                 const void *data, size_t data_len);

struct nbdp_opt_reply {
  uint64_t magic;
  uint32_t option;
  uint32_t reply;               /* NBD_REP_* */
  uint32_t length;
  const unsigned char *payload; /* length bytes (+ a NUL), client owned */
};
/* Read one option reply.  A bad magic, or a length above max, is a
 * protocol failure (the payload is not read).  Sets c->last_rep.
 */
int nbdp_client_recv_option_reply (struct nbdp_client *c,
                                   struct nbdp_opt_reply *r, uint32_t max);

/* What INFO/GO/EXPORT_NAME told about an export. */
struct nbdp_export {
  bool have_export;             /* NBD_INFO_EXPORT (or EXPORT_NAME reply) */
  uint64_t size;
  uint16_t eflags;
  bool have_block_size;
  uint32_t min_block, pref_block, max_block;
  bool have_name;
  char name[NBD_MAX_STRING + 1];
  bool have_description;
  char description[NBD_MAX_STRING + 1];
  uint32_t rep_error;           /* the NBD_REP_ERR_* if refused, else 0 */
  char rep_message[NBD_MAX_STRING + 1]; /* its message, if any */
  bool padding_nonzero;         /* EXPORT_NAME: 124 bytes not all zero */
};

/* NBD_OPT_EXPORT_NAME: on success the client is in transmission and
 * c->size/c->eflags are set.  The 124 zero bytes are expected unless both
 * sides agreed NO_ZEROES (c->gflags and c->cflags).  A server that closes
 * the connection instead (its way to refuse) is NBDP_FAIL_REFUSED.  exp
 * may be NULL.
 */
int nbdp_client_opt_export_name (struct nbdp_client *c, const char *name,
                                 struct nbdp_export *exp);
/* NBD_OPT_ABORT: 0 if the server acked or closed the connection. */
int nbdp_client_opt_abort (struct nbdp_client *c);
/* NBD_OPT_LIST: calls cb once per NBD_REP_SERVER (name, description may
 * be ""), then returns 0 at NBD_REP_ACK.  cb returning -1 stops (-1).
 */
typedef int (*nbdp_list_cb) (void *opaque, const char *name,
                             const char *description);
int nbdp_client_opt_list (struct nbdp_client *c, nbdp_list_cb cb,
                          void *opaque);
/* NBD_OPT_INFO (go=false) or NBD_OPT_GO (go=true) for export name with
 * the info requests infos[0..n_infos).  Collects every NBD_REP_INFO into
 * exp (exp may be NULL); checks each reply's length and option field.
 * GO success moves to transmission and sets c->size, c->eflags and the
 * block sizes.  An NBD_REP_ERR_* reply is NBDP_FAIL_REFUSED, with the
 * code in exp->rep_error and c->last_rep.
 */
int nbdp_client_opt_info (struct nbdp_client *c, bool go, const char *name,
                          const uint16_t *infos, size_t n_infos,
                          struct nbdp_export *exp);
/* NBD_OPT_STRUCTURED_REPLY / NBD_OPT_EXTENDED_HEADERS: 0 and c->structured
 * / c->extended set on ACK; an error reply is NBDP_FAIL_REFUSED.
 */
int nbdp_client_opt_structured_reply (struct nbdp_client *c);
int nbdp_client_opt_extended_headers (struct nbdp_client *c);
/* NBD_OPT_LIST_META_CONTEXT (set=false) or NBD_OPT_SET_META_CONTEXT
 * (set=true) for export with queries[0..n).  Fills out[0..max) with the
 * contexts replied, *n_out = how many were replied (may exceed max).  SET
 * also records them in c->contexts.  out may be NULL.
 */
int nbdp_client_opt_meta_context (struct nbdp_client *c, bool set,
                                  const char *export_name,
                                  const char *const *queries, size_t n,
                                  struct nbdp_meta_context *out, size_t max,
                                  size_t *n_out);
/* NBD_OPT_STARTTLS: sends it and reads one reply; 0 on ACK (TLS itself is
 * not started), REFUSED on an error reply.
 */
int nbdp_client_opt_starttls (struct nbdp_client *c);

/* The whole handshake in one call.  Zero-initialised options give the
 * usual: fixed newstyle, NBD_OPT_GO for the URI's export (or ""), no
 * structured replies, no meta contexts, zeroes expected.
 */
struct nbdp_handshake_opts {
  const char *export_name;      /* NULL: c->uri_export or "" */
  bool no_fixed_newstyle;       /* do not send NBD_FLAG_C_FIXED_NEWSTYLE */
  bool no_zeroes;               /* send NBD_FLAG_C_NO_ZEROES if offered */
  bool structured_reply;        /* negotiate structured replies */
  bool extended_headers;        /* negotiate extended headers */
  bool require;                 /* fail if SR/EH/contexts are refused */
  const char *const *meta_contexts; /* SET_META_CONTEXT queries */
  size_t n_meta_contexts;
  bool use_export_name;         /* finish with EXPORT_NAME instead of GO */
};
/* Greeting, flags, options, and GO/EXPORT_NAME (oldstyle servers are
 * accepted as they are).  opts may be NULL.
 */
int nbdp_client_handshake (struct nbdp_client *c,
                           const struct nbdp_handshake_opts *opts);

/* ---- Transmission: raw requests and replies ---- */

/* The next automatic cookie (1, 2, 3, ...). */
uint64_t nbdp_client_next_cookie (struct nbdp_client *c);
/* Send a request header (layout chosen by layout; req->magic 0 means the
 * right magic for the layout) followed by payload_len bytes of payload.
 * The request is remembered as in flight by its cookie, so that the
 * data of a simple reply to a READ can be read and chunks can be judged.
 */
int nbdp_client_send_request (struct nbdp_client *c,
                              const struct nbdp_request *req,
                              enum nbdp_layout layout,
                              const void *payload, size_t payload_len);

/* One reply (simple) or one chunk (structured/extended). */
struct nbdp_client_reply {
  struct nbdp_reply hdr;
  const unsigned char *payload; /* client owned, see above */
  uint64_t payload_len;         /* chunk payload, or simple READ data */
  bool known_cookie;            /* cookie of a request in flight */
  uint16_t cmd;                 /* if known: its NBD_CMD_* */
  bool final;                   /* simple reply, or chunk with DONE */
};
/* Read one reply header (kind chosen by the magic) and its payload: the
 * chunk payload (at most max bytes, else a protocol failure), or for a
 * simple reply to a READ in flight with error 0 the request's count bytes
 * of data (also bounded by max).  simple_data_len >= 0 overrides how many
 * data bytes follow a simple reply.  A final reply ends the request's
 * in-flight entry.  Does not judge whether the kind of reply was allowed:
 * see nbdp_client_cmd_* for that.
 */
int nbdp_client_recv_reply (struct nbdp_client *c,
                            struct nbdp_client_reply *r, uint64_t max,
                            int64_t simple_data_len);

/* ---- Transmission: checked commands, several may be in flight ---- */

/* One extent of a block status reply. */
struct nbdp_bs_extent {
  uint32_t context_id;
  uint64_t offset;              /* computed: request offset + preceding */
  uint64_t length;
  uint64_t flags;
};

/* A command and what came back, owned by the caller.  Set type, flags,
 * offset, count (and buf for READ: count bytes; payload for WRITE), call
 * nbdp_client_cmd_start, then nbdp_client_cmd_wait (or poll).  Release
 * with nbdp_client_cmd_cleanup.
 */
struct nbdp_cmd {
  /* In. */
  uint16_t type, flags;
  uint64_t offset, count;
  void *buf;                    /* READ destination */
  const void *payload;          /* WRITE data (count bytes) or other */
  size_t payload_len;           /* if payload is set for non-WRITE */
  uint64_t cookie;              /* 0: automatic */
  enum nbdp_layout layout;

  /* Out. */
  bool done;                    /* final reply received */
  uint32_t error;               /* first NBD error reported, 0 if none */
  char error_message[NBD_MAX_STRING + 1]; /* from an error chunk */
  bool have_error_offset;
  uint64_t error_offset;
  bool violation;               /* the server broke the protocol */
  char violation_message[NBDP_CLIENT_ERRMAX];
  unsigned n_chunks;
  /* READ: how many bytes came as data and as holes. */
  uint64_t data_bytes, hole_bytes;
  /* BLOCK_STATUS: extents of every context (malloc'd). */
  struct nbdp_bs_extent *extents;
  size_t n_extents;
  /* Internal. */
  void *covered;                /* READ: ranges seen, for overlap checks */
  size_t n_covered, cap_covered;
  uint32_t ctx_seen;            /* BLOCK_STATUS: bitmap of contexts seen */
};

/* Send cmd's request; cmd must stay alive until done (or cleanup). */
int nbdp_client_cmd_start (struct nbdp_client *c, struct nbdp_cmd *cmd);
/* Receive replies (applying each to its command, whichever it is) until
 * cmd is done.  0 if the command succeeded; -1 if it failed: the server
 * replied an error (NBDP_FAIL_REFUSED, errno from the NBD error),
 * violated the protocol (NBDP_FAIL_PROTOCOL, cmd->violation) or the
 * connection broke (NBDP_FAIL_IO).
 */
int nbdp_client_cmd_wait (struct nbdp_client *c, struct nbdp_cmd *cmd);
/* Receive one reply and apply it.  *which is set to the command it
 * belonged to (NULL for a reply to a request not started by cmd_start:
 * an unknown cookie is a protocol failure).
 */
int nbdp_client_cmd_poll (struct nbdp_client *c, struct nbdp_cmd **which);
/* Forget the command (also if still in flight) and free its memory. */
void nbdp_client_cmd_cleanup (struct nbdp_client *c, struct nbdp_cmd *cmd);

/* Convenience: one command, waited for.  flags are NBD_CMD_FLAG_*. */
int nbdp_client_pread (struct nbdp_client *c, void *buf, uint64_t count,
                       uint64_t offset, uint16_t flags);
int nbdp_client_pwrite (struct nbdp_client *c, const void *buf,
                        uint64_t count, uint64_t offset, uint16_t flags);
int nbdp_client_flush (struct nbdp_client *c, uint16_t flags);
int nbdp_client_trim (struct nbdp_client *c, uint64_t count,
                      uint64_t offset, uint16_t flags);
int nbdp_client_write_zeroes (struct nbdp_client *c, uint64_t count,
                              uint64_t offset, uint16_t flags);
int nbdp_client_cache (struct nbdp_client *c, uint64_t count,
                       uint64_t offset, uint16_t flags);
/* Block status: the extents of every negotiated context are returned in
 * a malloc'd array (*extents, *n_extents; free it).  The chunk type must
 * match the negotiated headers (32-bit compact, 64-bit extended).
 */
int nbdp_client_block_status (struct nbdp_client *c, uint64_t count,
                              uint64_t offset, uint16_t flags,
                              struct nbdp_bs_extent **extents,
                              size_t *n_extents);
/* NBD_CMD_DISC (no reply), then shut down the write side. */
int nbdp_client_disc (struct nbdp_client *c);
/* End the session with the soft disconnect of the current phase: during
 * option haggling (client flags sent, not in transmission)
 * NBD_OPT_ABORT, waiting for its ACK or the close
 * (nbdp_client_opt_abort); in transmission NBD_CMD_DISC
 * (nbdp_client_disc).  Returns 0 without sending anything when the
 * connection is closed or dead (after a failure that calls for a hard
 * disconnect) or before the client flags (no soft disconnect exists
 * there).  Either way no further request may follow on the connection.
 */
int nbdp_client_soft_disconnect (struct nbdp_client *c);

#endif /* NBDP_CLIENT_H */
