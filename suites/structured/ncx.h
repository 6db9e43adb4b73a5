/* nbd-conform: commands whose replies are kept chunk by chunk, for the
 * structured-reply, block-status and extended-header suites (which
 * include this as "../structured/ncx.h").  Every reply is still judged
 * by the rule engine exactly as nc_wait does; in addition each chunk's
 * header and decoded payload fields are recorded so that tests can look
 * at chunk boundaries, types, header offsets and descriptors.
 *
 * Do not mix ncx_send/ncx_wait with nc_send/nc_wait on one connection
 * while requests of the other kind are in flight.
 */
#ifndef NCX_H
#define NCX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conform.h"

/* One reply message: a simple reply or one chunk. */
struct ncx_chunk {
  enum nbdp_reply_kind kind;
  uint16_t flags, type;
  uint64_t hdr_offset;        /* extended: the header's offset field */
  uint64_t length;            /* chunk payload length (simple: data) */
  uint32_t error;             /* simple error, or an error chunk's code */
  uint64_t off, len;          /* OFFSET_DATA/HOLE range; ERROR_OFFSET off */
  bool zero;                  /* OFFSET_DATA: the data is all zero */
  uint32_t context_id;        /* status chunks */
  uint64_t n_desc;            /* status chunks: descriptors */
  unsigned seq;               /* order of arrival on the connection */
};

struct ncx_req {
  uint16_t type, flags;
  uint64_t offset, count;     /* header fields */
  const void *payload;        /* bytes sent after the header */
  size_t payload_len;         /* 0 with a WRITE payload: count bytes */
  uint64_t effect;            /* effect length for the rule engine when
                                 it differs from count (payload forms) */
  bool raw_flags;             /* do not add PAYLOAD_LEN to WRITE (EH) */
  uint64_t cookie;            /* 0: the next automatic cookie */
};

struct ncx_reply {
  struct nc_conn *conn;
  uint16_t type, flags;
  uint64_t offset, count, cookie;
  bool complete;              /* the final chunk or simple reply came */
  char *io_error;             /* the connection failed (message) */
  bool disconnected;          /* ... because the server closed it */
  bool timed_out;             /* ... because nothing came in time */
  unsigned simple, chunks;
  uint32_t error;             /* first error seen, 0 if none */
  char message[NBD_MAX_STRING + 1];
  struct ncx_chunk *c;        /* every message of the reply */
  size_t n_c;
  unsigned char *data;        /* READ: count bytes, reassembled */
  uint64_t data_bytes, hole_bytes;
  struct nbdp_bs_extent *ext; /* BLOCK_STATUS: every descriptor */
  size_t n_ext;
};

/* Send one request (judged replies are collected by ncx_wait). */
struct ncx_reply *ncx_send (struct nc_ctx *t, struct nc_conn *c,
                            const struct ncx_req *q);
/* Read replies until r is complete or the connection fails.  Replies to
 * other ncx requests in flight on the connection are kept for them.
 * Returns 0 if r completed, -1 if the connection failed first.
 */
int ncx_wait (struct nc_ctx *t, struct ncx_reply *r);
/* ncx_send + ncx_wait.  A WRITE sends count bytes from payload. */
struct ncx_reply *ncx_cmd (struct nc_ctx *t, struct nc_conn *c,
                           uint16_t type, uint16_t flags, uint64_t offset,
                           uint64_t count, const void *payload);
void ncx_free (struct ncx_reply *r);

/* The reply succeeded (complete and no error). */
bool ncx_ok (const struct ncx_reply *r);
/* "success", "NBD_EINVAL", or the I/O failure.  Static buffer. */
const char *ncx_errstr (const struct ncx_reply *r);
/* "simple reply" / "3 chunks: OFFSET_DATA 0+4096, ..., NONE(done)";
 * into buf.
 */
const char *ncx_describe (const struct ncx_reply *r, char *buf, size_t n);
/* Number of content chunks, and of chunks of one type. */
size_t ncx_count_type (const struct ncx_reply *r, uint16_t type);
size_t ncx_content_chunks (const struct ncx_reply *r);

/* Judge a READ reply explicitly (findings at MUST with id, NULL: the
 * test's first ID): it completed without error, came as chunks only when
 * structured replies or extended headers were negotiated, its content
 * chunks are nonempty, lie in the request, do not overlap and cover it,
 * and its data equals expect (if not NULL).  True if all held.
 */
bool ncx_check_read (struct nc_ctx *t, const struct ncx_reply *r,
                     const unsigned char *expect, const char *id);
/* NBD_REPLY_FLAG_DONE is set on the last chunk and on no other. */
bool ncx_check_done_last (struct nc_ctx *t, const struct ncx_reply *r,
                          const char *id);

/* Judge a BLOCK_STATUS reply explicitly: success; exactly one status
 * chunk per selected context and none for others; the chunk type of the
 * negotiated headers; at least one descriptor, none empty; REQ_ONE: one
 * descriptor no longer than the request; otherwise all but the last end
 * inside the request; base: contexts without upper status bits.  Uses
 * the catalogue IDs of each rule (id for "expected success").
 */
bool ncx_check_bs (struct nc_ctx *t, const struct ncx_reply *r,
                   const char *id);
/* OR and AND of the flags of the extents of context cid overlapping
 * [off, off+len); false if none overlaps.
 */
bool ncx_flags_over (const struct ncx_reply *r, uint32_t cid, uint64_t off,
                     uint64_t len, uint64_t *or_flags, uint64_t *and_flags);
/* Every extent of cid reported NBD_STATE_ZERO reads as zeroes (within
 * the request's range).  Findings at MUST with id.
 */
bool ncx_check_zero_extents (struct nc_ctx *t, const struct ncx_reply *r,
                             uint32_t cid, const char *id);

/* Helpers. */
void ncx_pattern (unsigned char *b, size_t n, uint64_t off, unsigned seed);
bool ncx_all_zero (const unsigned char *b, size_t n);
/* Index of the first difference, or n. */
size_t ncx_first_diff (const unsigned char *a, const unsigned char *b,
                       size_t n);
/* Write count bytes of pattern seed at off, ending the test (ERROR) if
 * that fails.  Returns the pattern in a malloc'd buffer (caller frees).
 */
unsigned char *ncx_write_pattern (struct nc_ctx *t, struct nc_conn *c,
                                  uint64_t off, uint64_t count,
                                  unsigned seed);
/* Make [off, off+len) read as zeroes (WRITE_ZEROES if advertised, else
 * writes of zeroes), so that a test knows the content even when the
 * server is shared with earlier tests (a URI target).  Ends the test
 * (ERROR) if that fails.
 */
void ncx_zero (struct nc_ctx *t, struct nc_conn *c, uint64_t off,
               uint64_t len);
/* Set up: a command that must succeed, else the test ends (ERROR). */
void ncx_setup (struct nc_ctx *t, struct nc_conn *c, uint16_t type,
                uint16_t flags, uint64_t off, uint64_t count);
/* Ends the test SKIP unless the export is writable and at least min
 * bytes long.  Both also need the minimum block size to be at most 4096
 * (every test's requests are 4 KiB aligned at least).
 */
void ncx_need_writable (struct nc_ctx *t, struct nc_conn *c, uint64_t min);
void ncx_need_size (struct nc_ctx *t, struct nc_conn *c, uint64_t min);
/* Ends the test SKIP if the advertised minimum block size is larger than
 * unit (the alignment of the requests the test sends).
 */
void ncx_need_align (struct nc_ctx *t, struct nc_conn *c, uint32_t unit);
/* Ends the test SKIP if len is over the advertised maximum payload. */
void ncx_need_payload (struct nc_ctx *t, struct nc_conn *c, uint64_t len);
/* The largest single READ/WRITE the helpers send (max payload, <= 4M). */
uint64_t ncx_max_io (const struct nc_conn *c);

/* The payload of NBD_OPT_{LIST,SET}_META_CONTEXT; malloc'd. */
unsigned char *ncx_meta_payload (const char *export, const char *const *q,
                                 size_t n, uint32_t *lenp);

/* A meta context option on a connection still in negotiation: sends it
 * and reads every reply (judged).  names[0..max) get the context names
 * replied, ids their IDs; *n_out how many came.  Returns the final reply
 * type (NBD_REP_ACK or an error).
 */
uint32_t ncx_meta_option (struct nc_ctx *t, struct nc_conn *c,
                          uint32_t option, const char *export,
                          const char *const *q, size_t n,
                          char (*names)[NBD_MAX_STRING + 1], uint32_t *ids,
                          size_t max, size_t *n_out);
/* Connect, greet, send the client flags (fixed newstyle), nothing else. */
struct nc_conn *ncx_negotiate (struct nc_ctx *t);
/* Send a no-data option and read its final reply type. */
uint32_t ncx_simple_option (struct nc_ctx *t, struct nc_conn *c,
                            uint32_t option);
/* NBD_OPT_GO for c->export_name (with NBD_INFO_BLOCK_SIZE if asked);
 * returns the final reply; on ACK the raw client is told what was
 * agreed, as nc_open does.
 */
uint32_t ncx_go (struct nc_ctx *t, struct nc_conn *c, bool block_size);

/* Which context ID the session selected for name, -1 if none. */
int64_t ncx_context_id (const struct nc_conn *c, const char *name);

/* Extents of one context, in order. */
size_t ncx_extents_of (const struct ncx_reply *r, uint32_t id,
                       const struct nbdp_bs_extent **first);

/* Name of a reply type / NBD error (static buffer per call site is
 * not needed: small rotating buffers).
 */
const char *ncx_type_name (uint16_t type);
const char *ncx_error_name (uint32_t err);

#endif /* NCX_H */
