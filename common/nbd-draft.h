/* nbd-conformance: wire constants and structures of the project's draft
 * RESIZE extension (specs/resize.md, section 3), kept apart from the
 * published protocol in nbd-proto.h on purpose: none of this is upstream.
 *
 * Same layout rules as nbd-proto.h: one family of constants per block,
 * blocks separated by blank lines, so that common/gen-names.sh files each
 * name by its prefix.  Values are restated as literals in
 * common/test-draft.c; change both and specs/resize.md together.  All
 * fields travel in network byte order: decode with common/codec.h, never
 * by reading these structs.  NBD_FLAG_SEND_RESIZE (bit 9) and
 * NBD_CMD_RESIZE (8) are reserved upstream and live in nbd-proto.h.
 */
#ifndef NBDP_NBD_DRAFT_H
#define NBDP_NBD_DRAFT_H

#include <stdint.h>

#include "nbd-proto.h"

/* Transmission flag of alternative encoding B1 only ("13.2 B1"). */
#define NBD_FLAG_AUTO_RESIZE       (1 << 13)

/* Option type ("4.1 The option NBD_OPT_RESIZE"). */
#define NBD_OPT_RESIZE             12

/* Information type in NBD_REP_INFO ("4.3 The information item"). */
#define NBD_INFO_RESIZE            4

/* Command flags, valid only with NBD_CMD_RESIZE ("5.1 Request forms").
 * Both set: unsubscribe.
 */
#define NBD_CMD_FLAG_RESIZE_NOTIFY (1 << 6)
#define NBD_CMD_FLAG_RESIZE_QUERY  (1 << 7)

/* Structured reply type ("6. The size chunk"). */
#define NBD_REPLY_TYPE_RESIZE      7

/* Feature bits of NBD_OPT_RESIZE data and of the capabilities and active
 * fields of NBD_INFO_RESIZE ("3.2 Feature bits").
 */
#define NBD_RESIZE_F_GROW          (1 << 0)
#define NBD_RESIZE_F_SHRINK        (1 << 1)
#define NBD_RESIZE_F_AUTO_GROW     (1 << 2)
#define NBD_RESIZE_F_ZERO_FILL     (1 << 3)
#define NBD_RESIZE_F_SIZE_REPLY    (1 << 4)
#define NBD_RESIZE_F_QUERY         (1 << 5)
#define NBD_RESIZE_F_NOTIFY        (1 << 6)
#define NBD_RESIZE_F_EXPORT_WIDE   (1 << 7)

/* Event bits of the NBD_REPLY_TYPE_RESIZE chunk ("3.3 Event bits"). */
#define NBD_RESIZE_EV_GREW         (1 << 0)
#define NBD_RESIZE_EV_SHRANK       (1 << 1)
#define NBD_RESIZE_EV_ZEROED       (1 << 2)
#define NBD_RESIZE_EV_REMOTE       (1 << 3)
#define NBD_RESIZE_EV_INITIAL      (1 << 4)
#define NBD_RESIZE_EV_CAPPED       (1 << 5)
#define NBD_RESIZE_EV_ROUNDED      (1 << 6)

/* Masks of the defined bits; everything else is reserved ("3.5"). */
#define NBD_RESIZE_MASK_FEATURES   UINT32_C (0x000000ff)
#define NBD_RESIZE_MASK_EVENTS     UINT32_C (0x0000007f)
#define NBD_RESIZE_MASK_CMD_FLAGS  \
  (NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_RESIZE_NOTIFY | NBD_CMD_FLAG_RESIZE_QUERY)
/* Feature bits that only become active with SIZE_REPLY active, and
 * SIZE_REPLY itself needs structured replies or extended headers.
 */
#define NBD_RESIZE_MASK_NEED_SIZE_REPLY \
  (NBD_RESIZE_F_QUERY | NBD_RESIZE_F_NOTIFY)
/* Features whose activity sets NBD_FLAG_SEND_RESIZE ([RZ-FLAG-1]). */
#define NBD_RESIZE_MASK_SEND_RESIZE \
  (NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK | NBD_RESIZE_F_QUERY | \
   NBD_RESIZE_F_NOTIFY)

/* Lengths and limits ("3.1 Constants"). */
#define NBD_RESIZE_OPT_LEN         4  /* NBD_OPT_RESIZE data */
#define NBD_RESIZE_INFO_LEN        22 /* NBD_INFO_RESIZE, type included */
#define NBD_RESIZE_CHUNK_LEN       16 /* NBD_REPLY_TYPE_RESIZE payload */
#define NBD_RESIZE_SIZE_MAX        UINT64_C (0x7fffffffffffffff) /* 2^63-1 */
#define NBD_RESIZE_SEQ_WINDOW      UINT32_C (0x80000000)         /* 2^31 */
#define NBD_RESIZE_NOTIFY_RATE_DEFAULT 10   /* per second, server */
#define NBD_RESIZE_CLIENT_FLOOD_LIMIT  1000 /* per second, client */

/* Wire structures.  Sizes are checked in common/test-draft.c. */

/* NBD_OPT_RESIZE option data (4 bytes). */
struct nbd_opt_resize {
  uint32_t features;            /* requested NBD_RESIZE_F_* */
} NBDP_PACKED;

/* NBD_INFO_RESIZE item of NBD_REP_INFO (22 bytes). */
struct nbd_info_resize {
  uint16_t info;                /* NBD_INFO_RESIZE */
  uint32_t capabilities;        /* NBD_RESIZE_F_* the export offers */
  uint32_t active;              /* NBD_RESIZE_F_* in effect here */
  uint32_t granularity;         /* 0 or a power of 2 */
  uint64_t max_size;            /* 0 = not reported */
} NBDP_PACKED;

/* NBD_REPLY_TYPE_RESIZE chunk payload (16 bytes), the same under
 * structured replies and extended headers.
 */
struct nbd_chunk_resize {
  uint64_t size;
  uint32_t events;              /* NBD_RESIZE_EV_* */
  uint32_t sequence;            /* per-export change counter, mod 2^32 */
} NBDP_PACKED;

#endif /* NBDP_NBD_DRAFT_H */
