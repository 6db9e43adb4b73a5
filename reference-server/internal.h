/* nbd-refserver: declarations shared between the server's own files.
 * One section per .c file; everything else in those files is static.
 */
#ifndef NBDP_REFSERVER_INTERNAL_H
#define NBDP_REFSERVER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backend.h"
#include "codec.h"

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

#endif /* NBDP_REFSERVER_INTERNAL_H */
