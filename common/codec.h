/* nbd-conformance: pure encode/decode between wire bytes and host-order
 * structs.  No I/O, no allocation.  Decoders take a buffer of exactly the
 * fixed header size and never trust a length field: callers bound every
 * length (see nbdp_*_bounded helpers) before reading a payload.
 */
#ifndef NBDP_CODEC_H
#define NBDP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd-proto.h"

/* Byte-order helpers reading/writing possibly unaligned buffers. */
uint16_t nbdp_get16 (const void *p);
uint32_t nbdp_get32 (const void *p);
uint64_t nbdp_get64 (const void *p);
void nbdp_put16 (void *p, uint16_t v);
void nbdp_put32 (void *p, uint32_t v);
void nbdp_put64 (void *p, uint64_t v);

/* A request in host order.  count is 64 bits so that it holds both the
 * compact (32-bit) and extended (64-bit) forms.
 */
struct nbdp_request {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint64_t count;
};

/* Request header sizes. */
#define NBDP_REQUEST_SIZE      28
#define NBDP_REQUEST_EXT_SIZE  32

/* Encode into buf (NBDP_REQUEST_SIZE or NBDP_REQUEST_EXT_SIZE bytes, per
 * extended).  Returns the number of bytes written.  Compact form truncates
 * count to 32 bits (raw client may want to do that on purpose); magic is
 * taken from req->magic so tests can send bad magic.
 */
size_t nbdp_encode_request (void *buf, const struct nbdp_request *req,
                            bool extended);
/* Decode a header; extended selects the layout.  Does not judge magic. */
void nbdp_decode_request (const void *buf, bool extended,
                          struct nbdp_request *req);

/* A reply header in host order: simple, structured or extended.  For a
 * simple reply, flags = type = 0, error set, length = offset = 0.
 */
enum nbdp_reply_kind {
  NBDP_REPLY_SIMPLE,
  NBDP_REPLY_STRUCTURED,
  NBDP_REPLY_EXTENDED,
};
struct nbdp_reply {
  enum nbdp_reply_kind kind;
  uint32_t magic;
  uint32_t error;      /* simple only */
  uint16_t flags;      /* structured/extended */
  uint16_t type;       /* structured/extended */
  uint64_t cookie;
  uint64_t offset;     /* extended only */
  uint64_t length;     /* structured/extended: payload length */
};

#define NBDP_SIMPLE_REPLY_SIZE     16
#define NBDP_STRUCTURED_REPLY_SIZE 20
#define NBDP_EXTENDED_REPLY_SIZE   32

/* Size of the reply header whose first 4 bytes (the magic) are given;
 * 0 if the magic is unknown.
 */
size_t nbdp_reply_header_size (uint32_t magic);
/* Decode a reply header; the kind is chosen from the magic.  Returns false
 * if the magic is unknown (then only reply->magic is set).
 */
bool nbdp_decode_reply (const void *buf, struct nbdp_reply *reply);
/* Encode a reply header per reply->kind; returns bytes written. */
size_t nbdp_encode_reply (void *buf, const struct nbdp_reply *reply);

/* Option request header (16 bytes) and option reply header (20 bytes). */
#define NBDP_OPTION_SIZE       16
#define NBDP_OPTION_REPLY_SIZE 20
struct nbdp_option {
  uint64_t magic;      /* NBD_NEW_VERSION */
  uint32_t option;
  uint32_t length;
};
struct nbdp_option_reply {
  uint64_t magic;      /* NBD_REP_MAGIC */
  uint32_t option;
  uint32_t reply;
  uint32_t length;
};
void nbdp_encode_option (void *buf, const struct nbdp_option *opt);
void nbdp_decode_option (const void *buf, struct nbdp_option *opt);
void nbdp_encode_option_reply (void *buf, const struct nbdp_option_reply *r);
void nbdp_decode_option_reply (const void *buf, struct nbdp_option_reply *r);

/* Block status descriptor, host order, covering both widths. */
struct nbdp_extent {
  uint64_t length;
  uint64_t flags;
};

/* Decode the payload of an NBD_REPLY_TYPE_BLOCK_STATUS (ext=false) or
 * _EXT (ext=true) chunk of len bytes.  Writes at most max extents to
 * out, sets *n to the number of descriptors in the payload and *ctx_id.
 * Returns false if len is not a valid size for the type (the caller
 * reports a protocol violation).
 */
bool nbdp_decode_block_status (const void *payload, uint64_t len, bool ext,
                               uint32_t *ctx_id, struct nbdp_extent *out,
                               size_t max, size_t *n);

/* Decode an error chunk payload (NBD_REPLY_TYPE_ERROR or _ERROR_OFFSET):
 * returns false if len is inconsistent with the message length.  msg points
 * into payload (not NUL terminated), *offset set only for ERROR_OFFSET.
 */
bool nbdp_decode_error_chunk (const void *payload, uint64_t len,
                              uint16_t type, uint32_t *error,
                              const char **msg, uint16_t *msglen,
                              uint64_t *offset);

/* Name tables: every constant of nbd-proto.h (and nbd-draft.h) to its
 * symbolic name.  Unknown values return NULL; use nbdp_name_or() to get
 * a formatted fallback in a caller buffer (thread safe).
 */
const char *nbdp_name_of_opt (uint32_t opt);
const char *nbdp_name_of_rep (uint32_t rep);
const char *nbdp_name_of_info (uint16_t info);
const char *nbdp_name_of_cmd (uint16_t cmd);
const char *nbdp_name_of_reply_type (uint16_t type);
const char *nbdp_name_of_error (uint32_t err);
/* Flag sets: writes e.g. "HAS_FLAGS|SEND_FLUSH|0x8000" into buf. */
const char *nbdp_flags_str (char *buf, size_t size, uint16_t eflags);
const char *nbdp_cmd_flags_str (char *buf, size_t size, uint16_t flags);
const char *nbdp_name_or (const char *name, char *buf, size_t size,
                          uint64_t value);
/* The name of a value, or its number in hex when it has none, formatted
 * into the caller's buffer (thread safe): what messages and logs use.
 */
const char *nbdp_opt_str (char *buf, size_t size, uint32_t opt);
const char *nbdp_rep_str (char *buf, size_t size, uint32_t rep);
const char *nbdp_info_str (char *buf, size_t size, uint16_t info);
const char *nbdp_cmd_str (char *buf, size_t size, uint16_t cmd);
const char *nbdp_reply_type_str (char *buf, size_t size, uint16_t type);
const char *nbdp_error_str (char *buf, size_t size, uint32_t err);
/* More flag sets: handshake flags (server, 16 bits), client flags (32
 * bits), structured/extended reply chunk flags, base:allocation states.
 * Flag sets with no bit set format as "0".
 */
const char *nbdp_gflags_str (char *buf, size_t size, uint16_t gflags);
const char *nbdp_cflags_str (char *buf, size_t size, uint32_t cflags);
const char *nbdp_reply_flags_str (char *buf, size_t size, uint16_t flags);
const char *nbdp_state_str (char *buf, size_t size, uint64_t state);

/* errno <-> NBD error mapping (unknown errno -> NBD_EINVAL per spec
 * advice; unknown NBD error -> EINVAL).
 */
uint32_t nbdp_errno_to_nbd (int err);
int nbdp_nbd_to_errno (uint32_t err);

#endif /* NBDP_CODEC_H */
