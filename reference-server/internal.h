/* nbd-refserver: declarations shared between the server's own files.
 * One section per .c file; everything else in those files is static.
 */
#ifndef NBDP_REFSERVER_INTERNAL_H
#define NBDP_REFSERVER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "backend.h"
#include "codec.h"
#include "nbd-draft.h"

#define REFSERVER_VERSION "0.1"

/* Defaults and hard bounds. */
#define DEFAULT_THREADS        16
#define MAX_THREADS            1024
#define MAX_CONNECTIONS        1024
#define DEFAULT_PREF_BLOCK     4096
#define DEFAULT_MAX_BLOCK      NBD_DEFAULT_MAX_PAYLOAD
#define MAX_MAX_BLOCK          (256 * 1024 * 1024)  /* our own buffer bound */
/* A write payload above the maximum but at most this big is consumed and
 * failed with EINVAL; anything bigger (or any oversize payload with
 * extended headers) ends the connection.
 */
#define PAYLOAD_DISCARD_LIMIT  (64 * 1024 * 1024)
/* Option payloads up to this size are buffered and parsed; bigger ones
 * up to OPTION_DISCARD_LIMIT are consumed and refused with ERR_TOO_BIG;
 * bigger still ends the connection.
 */
#define OPTION_MAX_LEN         (256 * 1024)
#define OPTION_DISCARD_LIMIT   (16 * 1024 * 1024)
#define MAX_OPTIONS            1024      /* per connection */
#define MAX_STATUS_DESCRIPTORS 65536     /* per block status chunk */
#define MAX_READ_CHUNKS        64        /* content chunks per read reply */
#define META_ALLOCATION_ID     1         /* our id for base:allocation */

/* ---- main.c ---- */

struct server_config {
  unsigned threads;         /* workers per connection */
  bool reorder_replies;
  bool oldstyle;
};
extern struct server_config config;

/* ---- resize-config.c: the knobs of the draft RESIZE extension ---- */

enum rz_mode { RZ_OFF, RZ_LEGACY, RZ_NEGOTIATED };
enum rz_encoding { RZ_ENC_P, RZ_ENC_B1, RZ_ENC_B2, RZ_ENC_B3, RZ_ENC_LEGACY };
enum rz_visibility { RZ_VIS_EXPORT, RZ_VIS_REFUSE, RZ_VIS_CONNECTION };

/* Deliberate faults (specs/resize.md section 15.3). */
enum rz_fault {
  FAULT_NOTIFY_FLOOD, FAULT_NOTIFY_DUPLICATE, FAULT_CHUNK_FOREIGN_COOKIE,
  FAULT_CHUNK_BAD_LENGTH, FAULT_SIZE_UNALIGNED, FAULT_QUERY_NO_DONE,
  FAULT_PRIVATE_SHRINK, FAULT_UNNEGOTIATED_CHUNK, FAULT_SEQUENCE_REVERSE,
  FAULT_DIRTY_GROW, N_FAULTS
};

struct resize_config {
  enum rz_mode mode;
  enum rz_encoding encoding;
  bool legacy_fallback;
  bool grow, shrink, auto_grow, require_optin;
  bool size_reply, query, notify, unsubscribe;
  bool second_replace;      /* --second-notify=replace */
  bool coalesce;
  bool zero_fill;           /* --zero-fill=guaranteed */
  uint8_t fill_pattern;
  enum rz_visibility visibility;
  uint64_t granularity;     /* --granularity, 0 = none */
  uint64_t max_size;        /* --max-size, 0 = none */
  unsigned notify_rate;     /* per second, 0 = unlimited */
  uint32_t sequence_start;
  unsigned faults;          /* 1 << enum rz_fault */
  bool multi_conn_default;  /* default multi-conn of exports */
};
extern struct resize_config rzc;

static inline bool
rz_fault (enum rz_fault f)
{
  return rzc.faults & (1u << f);
}

/* Number of switches in the table; getopt codes are base + index. */
size_t resize_switch_count (void);
/* Name and has_arg (getopt) of switch i. */
const char *resize_switch_name (size_t i, int *has_arg);
/* Record switch i with its argument (NULL for a bare switch).  Returns 0,
 * -1 on a bad value (message printed), 1 when the switch printed a list
 * and the program should exit with success.
 */
int resize_switch (size_t i, const char *arg);
/* Apply defaults, the profile and the explicit switches, in that order;
 * -1 on an invalid combination.
 */
int resize_config_finish (void);
void resize_usage (FILE *f);
const char *resize_fault_name (enum rz_fault f);

/* ---- control.c: the control socket (--control PATH) ---- */

/* Create and listen on the socket (before forking). */
int control_start (const char *path);
/* Start serving it (after forking: threads do not survive fork). */
int control_run (void);
/* Stop and remove the socket; safe to call more than once. */
void control_stop (void);

/* ---- exports.c ---- */

struct export {
  char *name;
  char *description;        /* "" if none */
  struct backend *backend;
  bool readonly;
  bool multi_conn;
  uint32_t min_block, pref_block, max_block;
  /* Requests hold this shared from their range check to the end of the
   * backend call; a resize (draft extension) will take it exclusively, so
   * every request sees one size from check to completion.
   */
  pthread_rwlock_t size_lock;
  bool multi_conn_explicit;
  /* Draft RESIZE extension (resize.c). */
  uint32_t rz_caps;         /* capabilities, the same for every client */
  uint64_t rz_gran;         /* G */
  uint32_t rz_gran_field;   /* granularity reported in NBD_INFO_RESIZE */
  uint64_t rz_limit;        /* largest size allowed: a multiple of G */
  pthread_mutex_t rz_lock;  /* rz_conns, rz_nconns, rz_seq */
  struct conn *rz_conns;    /* connections in transmission */
  unsigned rz_nconns;
  uint32_t rz_seq;          /* sequence number (section 6.3) */
  unsigned rz_nsubs;        /* active subscriptions (atomic) */
};

/* Parse a size with optional K M G T P E suffix (powers of 1024). */
int parse_size (const char *s, uint64_t *r);
/* Add an export from "name=N,memory=SIZE|file=PATH[,ro][,desc=T]...". */
int exports_add_spec (const char *spec);
/* Add an export from the positional BACKEND ARG. */
int exports_add (const char *name, const char *kind, const char *arg,
                 bool readonly);
size_t exports_count (void);
struct export *exports_get (size_t i);
/* Look up by exact name (len bytes, not NUL terminated).  "" falls back
 * to the first export if no export is named "".
 */
struct export *exports_find (const char *name, size_t len);
uint64_t export_size (struct export *exp);
/* Transmission flags for exp given what the connection negotiated. */
uint16_t export_eflags (struct export *exp, bool structured, bool extended,
                        bool meta);
void exports_close_all (void);

/* ---- connections.c ---- */

struct conn {
  uint64_t id;
  int rfd, wfd;             /* the same socket, or stdin/stdout */
  /* Handshake results. */
  bool no_zeroes;
  bool structured;          /* structured replies (or extended headers) */
  bool extended;            /* extended headers */
  bool meta_selected;       /* last SET_META_CONTEXT chose base:allocation */
  struct export *meta_exp;  /* ... for this export */
  bool meta_allocation;     /* transmission: base:allocation is active */
  struct export *exp;       /* chosen export, NULL during the handshake */
  uint16_t eflags;
  /* Transmission. */
  pthread_mutex_t read_lock;
  pthread_mutex_t write_lock;
  bool dead;                /* the socket failed or we hung up: stop */
  bool closing;             /* NBD_CMD_DISC seen: read no more */
  /* --reorder-replies: one reply may be held back until the next. */
  pthread_mutex_t hold_lock;
  pthread_cond_t hold_cond;
  bool holding;
  bool released;
  /* Draft RESIZE extension (resize.c). */
  bool disc_seen;           /* NBD_CMD_DISC received */
  bool rz_acked;            /* NBD_OPT_RESIZE acknowledged */
  uint32_t rz_requested;    /* ... with these features */
  bool rz_negotiated;       /* transmission: negotiated mode */
  uint32_t rz_active;       /* transmission: active set */
  bool rz_auto_grow;        /* writes past the end grow the export */
  bool rz_size_reply;       /* size chunks are allowed */
  bool rz_private;          /* this connection has its own size ... */
  uint64_t rz_view;         /* ... which is this (negative modes) */
  bool rz_fault_done;       /* chunk-foreign-cookie fired */
  bool rz_registered;       /* in exp->rz_conns */
  struct conn *rz_next;     /* in exp->rz_conns */
  struct rz_sub *sub;       /* subscription state, NULL until used */
};

/* Serve one connection to completion (handshake and transmission), then
 * close its fds.  Takes ownership of the fds.
 */
void conn_serve (int rfd, int wfd);
/* Start a detached thread that runs conn_serve on a socket. */
int conn_start_thread (int fd);
/* Number of connections being served. */
unsigned conn_active (void);
/* Full I/O on the connection; -1 on error or EOF (errno 0 for clean EOF
 * before the first byte).  Write failures mark the connection dead.
 */
int conn_recv (struct conn *c, void *buf, size_t len);
int conn_discard (struct conn *c, uint64_t len);
int conn_send (struct conn *c, const void *buf, size_t len);
int conn_sendv (struct conn *c, struct iovec *iov, int iovcnt);
/* Hard disconnect: stop reading and writing, wake any blocked reader. */
void conn_hangup (struct conn *c);
bool conn_is_dead (struct conn *c);

/* ---- handshake-oldstyle.c ---- */

/* Returns 0 with c->exp set (go to transmission) or -1 (close). */
int handshake_oldstyle (struct conn *c);

/* ---- handshake-newstyle.c ---- */

int handshake_newstyle (struct conn *c);

/* ---- commands.c ---- */

/* Per-worker scratch space, reused from request to request so that the
 * data path does not allocate.
 */
struct worker {
  unsigned char *buf;       /* write payload / read data */
  size_t cap;
  struct backend_extent *ext;   /* block status: raw and aligned extents */
  size_t ext_cap;
  unsigned char *out;       /* block status reply payload */
  size_t out_cap;
};
struct request;

enum payload_kind {
  PAYLOAD_NONE,             /* never carries a payload */
  PAYLOAD_REQUIRED,         /* NBD_CMD_WRITE */
  PAYLOAD_OPTIONAL,         /* NBD_CMD_BLOCK_STATUS with extended headers */
};

/* One entry of the command table. */
struct command {
  uint16_t type;
  uint16_t flags;           /* command flags accepted (FUA always is) */
  bool writes;              /* EPERM on a read-only export */
  bool ranged;              /* offset and count are a range of the export */
  uint32_t range_error;     /* NBD error for a range beyond the end */
  enum payload_kind payload;
  int (*fn) (struct conn *c, const struct request *req, struct worker *w);
};

const struct command *command_lookup (uint16_t type);
int worker_reserve (struct worker *w, size_t n);
void worker_free (struct worker *w);

/* ---- transmission.c ---- */

/* Run the request loop with config.threads workers until the client
 * disconnects.
 */
void transmission_run (struct conn *c);

/* ---- reply.c ---- */

/* A request as it reached a worker. */
struct request {
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint64_t count;           /* effect length (or payload length) */
  uint64_t payload_len;     /* bytes that followed the header */
  bool payload_read;        /* payload is in the worker buffer */
  uint32_t early_error;     /* NBD error decided while reading, or 0 */
  const char *early_msg;
  /* A growth this write caused (draft RESIZE): its size chunk goes out
   * before the final chunk of the reply.
   */
  bool rz_grew;
  uint64_t rz_size;
  uint32_t rz_events, rz_seq;
};

/* Reply with success and no payload. */
int reply_ok (struct conn *c, const struct request *req);
/* Reply with an NBD error (printf-style message for structured replies
 * and the debug log).
 */
int reply_error (struct conn *c, const struct request *req, uint32_t err,
                 const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));
/* Write a simple reply header followed by the iovecs (READ data). */
int reply_simple_data (struct conn *c, const struct request *req,
                       struct iovec *data, int ndata);
/* Fill hdr (NBDP_EXTENDED_REPLY_SIZE bytes) with a structured or extended
 * chunk header for req; returns its size.
 */
size_t reply_chunk_header (struct conn *c, const struct request *req,
                           void *hdr, uint16_t flags, uint16_t type,
                           uint64_t length);
/* Write already-built chunks (headers and payloads in iov) as one unit,
 * honouring --reorder-replies.  what is logged with -v.
 */
int reply_send (struct conn *c, const struct request *req,
                struct iovec *iov, int iovcnt, const char *what);
/* Size of the buffer reply_resize_chunk needs. */
#define RESIZE_CHUNK_BUF (NBDP_EXTENDED_REPLY_SIZE + NBD_RESIZE_CHUNK_LEN + 4)
/* Build an NBD_REPLY_TYPE_RESIZE chunk (header and payload) for req into
 * buf; returns its length.  Honours --fault chunk-bad-length.
 */
size_t reply_resize_chunk (struct conn *c, const struct request *req,
                           void *buf, uint16_t flags, uint64_t size,
                           uint32_t events, uint32_t seq);

/* ---- resize.c: the draft RESIZE extension at run time ---- */

/* Compute capabilities and G of an export; -1 if the configuration is
 * invalid for it (message printed).
 */
int resize_export_setup (struct export *exp);
/* The active set NBD_OPT_INFO/GO would produce for exp; *negotiated is
 * set when the connection would be in negotiated mode.  listed: the
 * client listed NBD_INFO_RESIZE.
 */
uint32_t resize_active_for (struct conn *c, struct export *exp, bool listed,
                            bool *negotiated);
/* Whether NBD_INFO_RESIZE goes into this INFO/GO reply. */
bool resize_send_info (struct conn *c, bool listed);
/* Fill the 22-byte NBD_INFO_RESIZE item. */
void resize_info_item (struct export *exp, uint32_t active,
                       unsigned char *buf);
/* Transmission flags of the extension for this connection. */
uint16_t resize_eflags (struct export *exp, bool negotiated,
                        uint32_t active);
/* Record the outcome of the handshake in c (c->exp, c->eflags set). */
void resize_conn_setup (struct conn *c, bool negotiated, uint32_t active);
/* Forget NBD_OPT_RESIZE (after a successful NBD_OPT_STARTTLS). */
void resize_reset_negotiation (struct conn *c);
/* Enter the transmission phase: register with c->exp.  Called by the
 * handshakes just before their final reply, so that a client that has
 * the reply is counted.  resize_conn_end (called by conn_serve for any
 * registered connection) ends a subscription after NBD_CMD_DISC, stops
 * the notifier and unregisters.
 */
void resize_conn_start (struct conn *c);
void resize_conn_end (struct conn *c);
/* The size this connection sees (call with the size lock held). */
uint64_t conn_size (struct conn *c);
/* A write or write zeroes past the end on a connection with automatic
 * growth: grow (size lock not held).  Returns 0 (grown, or no longer
 * needed) or an NBD error with *msg set.
 */
uint32_t resize_grow_for_write (struct conn *c, struct request *req,
                                const char **msg);
/* NBD_CMD_RESIZE in all forms (called without the size lock). */
int cmd_resize (struct conn *c, const struct request *req, struct worker *w);
/* After a reply went out: --fault chunk-foreign-cookie. */
void resize_after_reply (struct conn *c, const struct request *req);
/* Administrator's resize (control socket).  0, or -1 with msg set. */
int resize_admin (struct export *exp, uint64_t size, uint64_t *result,
                  char *msg, size_t msglen);
/* Number of connections in transmission / active subscriptions. */
unsigned resize_count_conns (struct export *exp);
unsigned resize_count_subs (struct export *exp);
/* Wait at most secs seconds until the count is n; 0, or -1 on timeout. */
int resize_wait_count (struct export *exp, bool subs, unsigned n, int secs);
/* Server shutdown: end every subscription with NBD_ESHUTDOWN (bounded
 * wait) and fail later resizes with it.
 */
void resize_shutdown (void);

#endif /* NBDP_REFSERVER_INTERNAL_H */
