/* nbd-conformance: wire constants and structures of the published NBD
 * protocol (shared/upstream/proto.md, master 89ba7b5) including the
 * extended-headers extension (proto-extension-ext-header.md, e6f3b94).
 *
 * This header holds nothing but the protocol.  Every family of constants is
 * one block separated by blank lines, so that tools (common/gen-names.sh) can
 * find each block by its prefix.  All fields travel in network byte order:
 * never read a host value out of these structs directly; decode with
 * common/codec.h.  Draft RESIZE values live apart in nbd-draft.h.
 */
#ifndef NBDP_NBD_PROTO_H
#define NBDP_NBD_PROTO_H

#include <stdint.h>

#define NBDP_PACKED __attribute__ ((__packed__))

/* Handshake magics ("Handshake", "Oldstyle negotiation", "Newstyle
 * negotiation").
 */
#define NBD_MAGIC                  UINT64_C (0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_OLD_VERSION            UINT64_C (0x0000420281861253)
#define NBD_NEW_VERSION            UINT64_C (0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC              UINT64_C (0x0003e889045565a9)

/* Transmission magics ("Request message", "Simple reply message",
 * "Structured reply chunk message", "Extended reply chunk message").
 */
#define NBD_REQUEST_MAGIC          UINT32_C (0x25609513)
#define NBD_EXTENDED_REQUEST_MAGIC UINT32_C (0x21e41c71)
#define NBD_SIMPLE_REPLY_MAGIC     UINT32_C (0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C (0x668e33ef)
#define NBD_EXTENDED_REPLY_MAGIC   UINT32_C (0x6e8a278c)

/* Handshake flags, 16 bits, server -> client ("Handshake flags"). */
#define NBD_FLAG_FIXED_NEWSTYLE    (1 << 0)
#define NBD_FLAG_NO_ZEROES         (1 << 1)

/* Client flags, 32 bits, client -> server ("Client flags"). */
#define NBD_FLAG_C_FIXED_NEWSTYLE  (1 << 0)
#define NBD_FLAG_C_NO_ZEROES       (1 << 1)

/* Transmission flags, 16 bits ("Transmission flags"). */
#define NBD_FLAG_HAS_FLAGS         (1 << 0)
#define NBD_FLAG_READ_ONLY         (1 << 1)
#define NBD_FLAG_SEND_FLUSH        (1 << 2)
#define NBD_FLAG_SEND_FUA          (1 << 3)
#define NBD_FLAG_ROTATIONAL        (1 << 4)
#define NBD_FLAG_SEND_TRIM         (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#define NBD_FLAG_SEND_DF           (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1 << 8)
#define NBD_FLAG_SEND_RESIZE       (1 << 9)
#define NBD_FLAG_SEND_CACHE        (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1 << 11)
#define NBD_FLAG_BLOCK_STAT_PAYLOAD (1 << 12)

/* Option types ("Option types"). */
#define NBD_OPT_EXPORT_NAME        1
#define NBD_OPT_ABORT              2
#define NBD_OPT_LIST               3
#define NBD_OPT_PEEK_EXPORT        4
#define NBD_OPT_STARTTLS           5
#define NBD_OPT_INFO               6
#define NBD_OPT_GO                 7
#define NBD_OPT_STRUCTURED_REPLY   8
#define NBD_OPT_LIST_META_CONTEXT  9
#define NBD_OPT_SET_META_CONTEXT   10
#define NBD_OPT_EXTENDED_HEADERS   11

/* Option reply types ("Option reply types"). */
#define NBD_REP_ERR(n)             (UINT32_C (1) << 31 | (n))
#define NBD_REP_ACK                1
#define NBD_REP_SERVER             2
#define NBD_REP_INFO               3
#define NBD_REP_META_CONTEXT       4
#define NBD_REP_ERR_UNSUP          NBD_REP_ERR (1)
#define NBD_REP_ERR_POLICY         NBD_REP_ERR (2)
#define NBD_REP_ERR_INVALID        NBD_REP_ERR (3)
#define NBD_REP_ERR_PLATFORM       NBD_REP_ERR (4)
#define NBD_REP_ERR_TLS_REQD       NBD_REP_ERR (5)
#define NBD_REP_ERR_UNKNOWN        NBD_REP_ERR (6)
#define NBD_REP_ERR_SHUTDOWN       NBD_REP_ERR (7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR (8)
#define NBD_REP_ERR_TOO_BIG        NBD_REP_ERR (9)
#define NBD_REP_ERR_EXT_HEADER_REQD NBD_REP_ERR (10)

/* Information types in NBD_REP_INFO ("NBD_REP_INFO"). */
#define NBD_INFO_EXPORT            0
#define NBD_INFO_NAME              1
#define NBD_INFO_DESCRIPTION       2
#define NBD_INFO_BLOCK_SIZE        3

/* Request types ("Request types"). */
#define NBD_CMD_READ               0
#define NBD_CMD_WRITE              1
#define NBD_CMD_DISC               2
#define NBD_CMD_FLUSH              3
#define NBD_CMD_TRIM               4
#define NBD_CMD_CACHE              5
#define NBD_CMD_WRITE_ZEROES       6
#define NBD_CMD_BLOCK_STATUS       7
#define NBD_CMD_RESIZE             8

/* Command flags ("Command flags"). */
#define NBD_CMD_FLAG_FUA           (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE       (1 << 1)
#define NBD_CMD_FLAG_DF            (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE       (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO     (1 << 4)
#define NBD_CMD_FLAG_PAYLOAD_LEN   (1 << 5)

/* Structured and extended reply flags. */
#define NBD_REPLY_FLAG_DONE        (1 << 0)

/* Structured reply types ("Structured reply types"). */
#define NBD_REPLY_TYPE_ERR(n)      ((1 << 15) | (n))
#define NBD_REPLY_TYPE_NONE        0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6
#define NBD_REPLY_TYPE_ERROR       NBD_REPLY_TYPE_ERR (1)
#define NBD_REPLY_TYPE_ERROR_OFFSET NBD_REPLY_TYPE_ERR (2)

/* Error values ("Error values"). */
#define NBD_SUCCESS                0
#define NBD_EPERM                  1
#define NBD_EIO                    5
#define NBD_ENOMEM                 12
#define NBD_EINVAL                 22
#define NBD_ENOSPC                 28
#define NBD_EOVERFLOW              75
#define NBD_ENOTSUP                95
#define NBD_ESHUTDOWN              108

/* base:allocation states ("base:allocation metadata context"). */
#define NBD_STATE_HOLE             (1 << 0)
#define NBD_STATE_ZERO             (1 << 1)

/* Limits that the protocol itself states. */
#define NBD_MAX_STRING             4096 /* names, descriptions, contexts */
#define NBD_OLDSTYLE_ZEROES        124
#define NBD_NEWSTYLE_ZEROES        124
#define NBD_DEFAULT_MAX_PAYLOAD    (32 * 1024 * 1024) /* "Size constraints" */
#define NBD_MIN_BLOCK_DEFAULT      1
#define NBD_BLOCK_ALLOCATION_CTX   "base:allocation"

/* Wire structures.  Sizes are checked in common/test-proto.c. */

/* Oldstyle server greeting (152 bytes). */
struct nbd_old_handshake {
  uint64_t nbdmagic;            /* NBD_MAGIC */
  uint64_t version;             /* NBD_OLD_VERSION */
  uint64_t exportsize;
  uint16_t gflags;              /* unused: zero */
  uint16_t eflags;              /* transmission flags */
  char zeroes[NBD_OLDSTYLE_ZEROES];
} NBDP_PACKED;

/* Newstyle server greeting (18 bytes). */
struct nbd_new_handshake {
  uint64_t nbdmagic;            /* NBD_MAGIC */
  uint64_t version;             /* NBD_NEW_VERSION */
  uint16_t gflags;              /* handshake flags */
} NBDP_PACKED;

/* Client option header (16 bytes), followed by optlen bytes. */
struct nbd_new_option {
  uint64_t version;             /* NBD_NEW_VERSION */
  uint32_t option;              /* NBD_OPT_* */
  uint32_t optlen;
} NBDP_PACKED;

/* Server reply to NBD_OPT_EXPORT_NAME (10 bytes, plus 124 zeroes unless
 * NO_ZEROES was agreed).
 */
struct nbd_export_name_reply {
  uint64_t exportsize;
  uint16_t eflags;
} NBDP_PACKED;

/* Server option reply header (20 bytes), followed by replylen bytes. */
struct nbd_fixed_new_option_reply {
  uint64_t magic;               /* NBD_REP_MAGIC */
  uint32_t option;
  uint32_t reply;               /* NBD_REP_* */
  uint32_t replylen;
} NBDP_PACKED;

/* NBD_REP_INFO payloads. */
struct nbd_info_export {
  uint16_t info;                /* NBD_INFO_EXPORT */
  uint64_t exportsize;
  uint16_t eflags;
} NBDP_PACKED;

struct nbd_info_block_size {
  uint16_t info;                /* NBD_INFO_BLOCK_SIZE */
  uint32_t minimum;
  uint32_t preferred;
  uint32_t maximum;
} NBDP_PACKED;

/* Compact request (28 bytes). */
struct nbd_request {
  uint32_t magic;               /* NBD_REQUEST_MAGIC */
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint32_t count;
} NBDP_PACKED;

/* Extended request (32 bytes). */
struct nbd_request_ext {
  uint32_t magic;               /* NBD_EXTENDED_REQUEST_MAGIC */
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint64_t count;
} NBDP_PACKED;

/* Simple reply (16 bytes). */
struct nbd_simple_reply {
  uint32_t magic;               /* NBD_SIMPLE_REPLY_MAGIC */
  uint32_t error;
  uint64_t cookie;
} NBDP_PACKED;

/* Structured reply chunk header (20 bytes). */
struct nbd_structured_reply {
  uint32_t magic;               /* NBD_STRUCTURED_REPLY_MAGIC */
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint32_t length;
} NBDP_PACKED;

/* Extended reply chunk header (32 bytes). */
struct nbd_extended_reply {
  uint32_t magic;               /* NBD_EXTENDED_REPLY_MAGIC */
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint64_t length;
} NBDP_PACKED;

/* Chunk payloads. */
struct nbd_chunk_offset_data {  /* followed by the data */
  uint64_t offset;
} NBDP_PACKED;

struct nbd_chunk_offset_hole {
  uint64_t offset;
  uint32_t length;
} NBDP_PACKED;

struct nbd_chunk_error {        /* followed by message, then maybe offset */
  uint32_t error;
  uint16_t len;
} NBDP_PACKED;

struct nbd_block_descriptor {   /* NBD_REPLY_TYPE_BLOCK_STATUS */
  uint32_t length;
  uint32_t status_flags;
} NBDP_PACKED;

struct nbd_block_descriptor_ext { /* NBD_REPLY_TYPE_BLOCK_STATUS_EXT */
  uint64_t length;
  uint64_t status_flags;
} NBDP_PACKED;

struct nbd_chunk_block_status { /* followed by descriptors */
  uint32_t context_id;
} NBDP_PACKED;

struct nbd_chunk_block_status_ext { /* followed by extended descriptors */
  uint32_t context_id;
  uint32_t count;
} NBDP_PACKED;

#endif /* NBDP_NBD_PROTO_H */
