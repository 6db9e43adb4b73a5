/* nbd-conformance: pure checks (no I/O) of the draft RESIZE extension,
 * specs/resize.md, as far as a client can judge them from the wire: the
 * handshake (NBD_OPT_RESIZE reply, NBD_INFO_RESIZE, transmission flags),
 * requests the client is about to send (RZ-CLI-*), NBD_REPLY_TYPE_RESIZE
 * chunks, and the replies to set size, query, subscribe, unsubscribe and
 * growing writes.  common/client-resize.c feeds it; nbd-spy and the suites
 * may too.  Each violation names the requirement the server broke (id),
 * the client rule that says how a client reacts (cli_id, may be NULL),
 * the level of the broken requirement, and whether a conforming client
 * initiates a hard disconnect on it (RZ-CLI-27 to RZ-CLI-34).
 *
 * The state (struct nbdp_rz_state) is what one client connection knows:
 * the encoding in use, what was negotiated, the export size it last
 * learned, the last sequence number it saw and its subscription.  The
 * check functions never change it; the nbdp_rz_learn_* and
 * nbdp_rz_sub_* functions do, so that a caller can check first and then
 * decide what to believe.
 */
#ifndef NBDP_RULES_RESIZE_H
#define NBDP_RULES_RESIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd-proto.h"
#include "nbd-draft.h"

/* ---- violations ---------------------------------------------------- */

enum nbdp_rz_level {
  NBDP_RZ_MUST,               /* MUST / MUST NOT */
  NBDP_RZ_SHOULD,             /* SHOULD / SHOULD NOT */
};

#define NBDP_RZ_MSG 480
#define NBDP_RZ_MAX_VIOLATIONS 16

struct nbdp_rz_violation {
  const char *id;             /* the requirement broken, e.g. "RZ-CHUNK-1" */
  const char *cli_id;         /* the client rule that applies, or NULL */
  enum nbdp_rz_level level;   /* level of id */
  bool disconnect;            /* a conforming client hard-disconnects */
  unsigned repeats;           /* further occurrences of the same id (and
                                 client rule) folded into this entry */
  char msg[NBDP_RZ_MSG];      /* sent / received / expected, first seen */
};

/* A bounded list.  A violation whose id and client rule are already in
 * the list only counts as a repeat of that entry, so that one rule broken
 * a thousand times cannot crowd out another.
 */
struct nbdp_rz_violations {
  size_t n;
  size_t dropped;             /* past the capacity */
  struct nbdp_rz_violation v[NBDP_RZ_MAX_VIOLATIONS];
};

void nbdp_rz_violations_clear (struct nbdp_rz_violations *vs);
void nbdp_rz_violation_add (struct nbdp_rz_violations *vs, const char *id,
                            const char *cli_id, enum nbdp_rz_level level,
                            bool disconnect, const char *fmt, ...)
  __attribute__ ((format (printf, 6, 7)));
bool nbdp_rz_violations_has (const struct nbdp_rz_violations *vs,
                             const char *id);
/* The first violation that asks for a disconnect, or NULL. */
const struct nbdp_rz_violation *
nbdp_rz_violations_disconnect (const struct nbdp_rz_violations *vs);
/* Append all of src to dst. */
void nbdp_rz_violations_merge (struct nbdp_rz_violations *dst,
                               const struct nbdp_rz_violations *src);
const char *nbdp_rz_level_name (enum nbdp_rz_level level);

/* ---- values and helpers -------------------------------------------- */

/* The encodings of specs/resize.md section 13. */
enum nbdp_rz_encoding {
  NBDP_RZ_ENC_NEGOTIATED = 0, /* P */
  NBDP_RZ_ENC_FLAG_ONLY,      /* B1 */
  NBDP_RZ_ENC_INFO_OPTIN,     /* B2 */
  NBDP_RZ_ENC_BOOLEAN,        /* B3 */
  NBDP_RZ_ENC_LEGACY,         /* 2017 */
};
const char *nbdp_rz_encoding_name (enum nbdp_rz_encoding e);
/* Parse "negotiated", "flag-only", ...: 0, or -1 if unknown. */
int nbdp_rz_encoding_parse (const char *s, enum nbdp_rz_encoding *e);

/* Mode of a connection in transmission (section 1, "Terms"). */
enum nbdp_rz_mode {
  NBDP_RZ_MODE_NONE = 0,      /* no resize of any kind */
  NBDP_RZ_MODE_LEGACY,        /* NBD_FLAG_SEND_RESIZE, not negotiated */
  NBDP_RZ_MODE_NEGOTIATED,    /* NBD_OPT_RESIZE acked (B2: INFO listed) */
  NBDP_RZ_MODE_FLAG_ONLY,     /* B1: NBD_FLAG_AUTO_RESIZE (maybe also
                                 legacy set size) */
};
const char *nbdp_rz_mode_name (enum nbdp_rz_mode m);

/* "GROW|SHRINK|0x100" for feature bits, "GREW|ZEROED" for events. */
const char *nbdp_rz_features_str (char *buf, size_t size, uint32_t f);
const char *nbdp_rz_events_str (char *buf, size_t size, uint32_t ev);
/* Parse a comma separated list of feature names (grow, shrink,
 * auto-grow, zero-fill, size-reply, query, notify, export-wide, all) or
 * a number: 0, or -1 if a name is unknown.
 */
int nbdp_rz_features_parse (const char *s, uint32_t *f);

/* b is after a in serial number arithmetic (section 6.3). */
bool nbdp_rz_seq_after (uint32_t a, uint32_t b);
/* roundup(x) to a multiple of g (g >= 1); false if it would overflow
 * 64 bits.
 */
bool nbdp_rz_roundup (uint64_t x, uint64_t g, uint64_t *out);

/* ---- decoded wire items -------------------------------------------- */

struct nbdp_rz_info {
  bool present;
  uint32_t capabilities;
  uint32_t active;
  uint32_t granularity;
  uint64_t max_size;
};

struct nbdp_rz_chunk {
  uint64_t size;
  uint32_t events;
  uint32_t sequence;
};

/* Decode an NBD_REP_INFO payload of type NBD_INFO_RESIZE (the 2-byte type
 * included, len bytes).  False if len is not NBD_RESIZE_INFO_LEN.
 */
bool nbdp_rz_decode_info (const void *payload, uint64_t len,
                          struct nbdp_rz_info *info);
void nbdp_rz_encode_info (void *buf22, const struct nbdp_rz_info *info);
/* Decode an NBD_REPLY_TYPE_RESIZE payload: false unless len is 16. */
bool nbdp_rz_decode_chunk (const void *payload, uint64_t len,
                           struct nbdp_rz_chunk *ch);
void nbdp_rz_encode_chunk (void *buf16, const struct nbdp_rz_chunk *ch);

/* ---- connection state ---------------------------------------------- */

/* Notification timestamps kept for the flood checks (RZ-CLI-32,
 * RZ-FLOOD-3): bounded whatever the server sends (RZ-CLI-25).
 */
#define NBDP_RZ_FLOOD_RING (NBD_RESIZE_CLIENT_FLOOD_LIMIT + 1)

struct nbdp_rz_sub {
  bool active;                /* subscribe sent, not ended */
  bool started;               /* first (snapshot) chunk received */
  uint64_t cookie;
  uint64_t size;              /* size of the previous chunk */
  uint32_t sequence;          /* sequence of the previous chunk */
  bool unsubscribing;         /* unsubscribe sent, not answered */
  bool disc_sent;             /* NBD_CMD_DISC sent */
  bool own_changes;           /* this connection may change the size */
  uint64_t notifications;     /* count, for the ring */
  uint64_t ring[NBDP_RZ_FLOOD_RING]; /* arrival times in ms */
  bool flood_reported, rate_reported;
};

struct nbdp_rz_state {
  enum nbdp_rz_encoding encoding;

  /* Handshake. */
  bool structured;            /* structured replies negotiated */
  bool extended;              /* extended headers negotiated */
  bool opt_sent;              /* NBD_OPT_RESIZE sent (well formed) */
  bool opt_acked;             /* ... and acknowledged (latest request) */
  uint32_t requested;         /* features of the latest acked request */
  bool info_listed;           /* NBD_INFO_RESIZE listed in INFO/GO */
  bool used_export_name;      /* ended with NBD_OPT_EXPORT_NAME */
  struct nbdp_rz_info info;   /* NBD_INFO_RESIZE of the GO reply */
  bool have_block_size;
  uint32_t min_block;

  /* Transmission. */
  enum nbdp_rz_mode mode;
  uint32_t active;            /* features in effect (0 in legacy mode) */
  uint16_t eflags;
  uint64_t size;              /* the export size as last learned */
  bool have_seq;
  uint32_t seq;               /* last sequence number seen */
  struct nbdp_rz_sub sub;
  bool have_ended_cookie;     /* a subscription ended on this cookie */
  uint64_t ended_cookie;
};

void nbdp_rz_state_init (struct nbdp_rz_state *st,
                         enum nbdp_rz_encoding encoding);
/* G (section 1): granularity, else the minimum block size, else 1. */
uint64_t nbdp_rz_granularity (const struct nbdp_rz_state *st);
/* The feature set a connection would get: want & caps, keeping only the
 * features whose prerequisites hold (section 3.2, RZ-NEG-9).
 */
uint32_t nbdp_rz_grant (uint32_t want, uint32_t caps, bool chunks);
/* SIZE_REPLY is in effect (negotiated mode only). */
bool nbdp_rz_size_reply (const struct nbdp_rz_state *st);

/* ---- handshake ----------------------------------------------------- */

/* The reply to NBD_OPT_RESIZE (data length 4, reserved bits clear).
 * RZ-NEG-1, RZ-NEG-2.  Records opt_acked/requested on ACK.
 */
void nbdp_rz_check_opt_reply (const struct nbdp_rz_state *st, uint32_t rep,
                              uint32_t length,
                              struct nbdp_rz_violations *out);
void nbdp_rz_learn_opt_reply (struct nbdp_rz_state *st, uint32_t rep,
                              uint32_t requested);

/* One NBD_INFO_RESIZE item of an INFO (go=false) or GO reply, with the
 * export's NBD_INFO_EXPORT size/flags and block size as far as known.
 * RZ-INFO-3 (len), RZ-VAL-1, RZ-VAL-3, RZ-INFO-5, -6, -7, -8, -9,
 * RZ-NEG-6, -9, -10, RZ-RO-1, RZ-EH-1, RZ-B1-3, RZ-B2-1, RZ-B3-1.
 */
struct nbdp_rz_export {
  bool have_export;
  uint64_t size;
  uint16_t eflags;
  bool have_block_size;
  uint32_t min_block;
  unsigned n_info_resize;     /* NBD_INFO_RESIZE items in the reply */
  bool info_len_ok;           /* every one had length 22 */
  struct nbdp_rz_info info;   /* the first well formed one */
};
void nbdp_rz_check_export (const struct nbdp_rz_state *st, bool go,
                           const struct nbdp_rz_export *ex,
                           struct nbdp_rz_violations *out);
/* An INFO reply and the GO reply that followed with nothing in between:
 * RZ-INFO-10 (RZ-B2-2 under info-optin).
 */
void nbdp_rz_check_info_then_go (const struct nbdp_rz_state *st,
                                 const struct nbdp_rz_export *info,
                                 const struct nbdp_rz_export *go,
                                 struct nbdp_rz_violations *out);
/* Enter transmission from the GO (or EXPORT_NAME) reply: sets mode,
 * active, size, eflags.  Call after nbdp_rz_check_export.  RZ-FLAG-1,
 * RZ-FLAG-2, RZ-RO-4, RZ-B1-5 are checked here.
 */
void nbdp_rz_enter_transmission (struct nbdp_rz_state *st,
                                 const struct nbdp_rz_export *ex,
                                 struct nbdp_rz_violations *out);

/* ---- requests (client rules) --------------------------------------- */

/* A request this client is about to send: RZ-CLI-1, -8, -9, -10, -11,
 * -12, -13, -16, -23, -24.  payload_len flag: the request carries
 * NBD_CMD_FLAG_PAYLOAD_LEN.  Violations here name the RZ-CLI ID in id.
 */
void nbdp_rz_check_request (const struct nbdp_rz_state *st, uint16_t type,
                            uint16_t flags, uint64_t offset,
                            uint64_t count, uint64_t cookie,
                            struct nbdp_rz_violations *out);

/* ---- replies ------------------------------------------------------- */

/* Where a reply chunk arrived. */
struct nbdp_rz_where {
  bool known;                 /* the cookie is in flight */
  uint16_t cmd;               /* its NBD_CMD_* */
  uint16_t cmd_flags;
  uint64_t offset;            /* its offset */
  uint64_t count;
  uint64_t cookie;
  bool extended_hdr;          /* the chunk came with an extended header */
  uint64_t hdr_offset;        /* its offset field */
  uint16_t chunk_flags;       /* NBD_REPLY_FLAG_* */
};

/* Generic checks of one NBD_REPLY_TYPE_RESIZE chunk, whatever it answers:
 * RZ-CHUNK-1/RZ-CLI-27 (length), RZ-CHUNK-2/RZ-CLI-28 (SIZE_REPLY not
 * active; RZ-LEG-3 in legacy mode, RZ-B1-3 under flag-only),
 * RZ-CHUNK-3/RZ-CLI-29 (request that may not carry it), RZ-CHUNK-4/
 * RZ-CLI-29 (cookie not in flight), RZ-VAL-2, RZ-VAL-3, RZ-INFO-8/
 * RZ-CLI-33 (size not a multiple of the granularity), RZ-EH-3.
 * payload may be NULL if not read.  Returns true if the payload decoded.
 */
bool nbdp_rz_check_chunk (const struct nbdp_rz_state *st,
                          const struct nbdp_rz_where *w,
                          const void *payload, uint64_t len,
                          struct nbdp_rz_chunk *ch,
                          struct nbdp_rz_violations *out);

/* What the reply of one request showed, gathered by the caller. */
struct nbdp_rz_reply {
  bool simple;                /* a simple reply */
  uint32_t error;             /* first NBD error (0: success) */
  unsigned n_resize;          /* NBD_REPLY_TYPE_RESIZE chunks */
  bool resize_done;           /* the (last) size chunk had DONE */
  bool resize_before_final;   /* a size chunk came before the final one */
  unsigned n_none;            /* NBD_REPLY_TYPE_NONE chunks */
  unsigned n_other;           /* other chunks (not errors) */
  bool error_offset;          /* an NBD_REPLY_TYPE_ERROR_OFFSET came */
  struct nbdp_rz_chunk chunk; /* the (first) size chunk, if any */
};

/* Set size (offset = requested size), old = size before: RZ-SET-4, -5,
 * -11, -12, -13, -14, -15, -16, RZ-CLI-34, RZ-REQ-7, RZ-CHUNK-5, -6, -7,
 * -9, -10, -11, -12, RZ-SEQ-1, RZ-LEG-3.
 */
void nbdp_rz_check_set_reply (const struct nbdp_rz_state *st,
                              uint64_t requested, uint64_t old,
                              const struct nbdp_rz_reply *rep,
                              struct nbdp_rz_violations *out);
/* After a successful set size: the new size (chunk, or the requested
 * size without SIZE_REPLY: RZ-CLI-17, RZ-CLI-18) and sequence.
 */
void nbdp_rz_learn_set_reply (struct nbdp_rz_state *st, uint64_t requested,
                              const struct nbdp_rz_reply *rep);
/* The size another connection (or a reconnection) saw after a successful
 * set size: RZ-SET-8 (RZ-LEG-2 in legacy mode), RZ-MC-2, RZ-MC-7.
 */
void nbdp_rz_check_set_effect (const struct nbdp_rz_state *st,
                               uint64_t requested, uint64_t learned,
                               uint64_t observed,
                               struct nbdp_rz_violations *out);

/* Query: RZ-QUERY-1, RZ-QUERY-2, RZ-CLI-34, RZ-REQ-7, RZ-SEQ-1 (a query
 * reporting the known size must not move the sequence... only checked
 * as "not before").
 */
void nbdp_rz_check_query_reply (const struct nbdp_rz_state *st,
                                const struct nbdp_rz_reply *rep,
                                struct nbdp_rz_violations *out);
/* Learn the size and sequence of a snapshot or notification chunk. */
void nbdp_rz_learn_chunk (struct nbdp_rz_state *st,
                          const struct nbdp_rz_chunk *ch);

/* Subscriptions.  nbdp_rz_sub_start when the subscribe is sent; each
 * NBD_REPLY_TYPE_RESIZE chunk on its cookie goes to
 * nbdp_rz_check_sub_chunk (now_ms: arrival time, monotonic) and then
 * nbdp_rz_sub_chunk; the chunk that ends it (NONE, ERROR) to
 * nbdp_rz_check_sub_end and nbdp_rz_sub_end.
 * Checks: RZ-SUB-2, RZ-SUB-4, RZ-SUB-15, RZ-SUB-14, RZ-FLOOD-1/RZ-CLI-30,
 * RZ-SEQ-3/RZ-CLI-31, RZ-FLOOD-3 and RZ-CLI-32, RZ-CHUNK-5, -6, -7, -9,
 * -10, -11, -12.
 */
void nbdp_rz_sub_start (struct nbdp_rz_state *st, uint64_t cookie,
                        bool own_changes);
void nbdp_rz_check_sub_chunk (const struct nbdp_rz_state *st,
                              const struct nbdp_rz_chunk *ch, bool done,
                              uint64_t now_ms,
                              struct nbdp_rz_violations *out);
void nbdp_rz_sub_chunk (struct nbdp_rz_state *st,
                        const struct nbdp_rz_chunk *ch, uint64_t now_ms);
/* type: NBD_REPLY_TYPE_NONE or an error type (error: its value). */
void nbdp_rz_check_sub_end (const struct nbdp_rz_state *st, uint16_t type,
                            uint32_t error, bool done,
                            struct nbdp_rz_violations *out);
void nbdp_rz_sub_end (struct nbdp_rz_state *st);
/* Unsubscribe answered: RZ-SUB-10, RZ-SUB-11, RZ-SUB-12, RZ-CLI-34.
 * sub_still_active: the subscription had not ended when the answer came.
 */
void nbdp_rz_check_unsub_reply (const struct nbdp_rz_state *st,
                                const struct nbdp_rz_reply *rep,
                                bool sub_still_active,
                                struct nbdp_rz_violations *out);
/* Anything received on the cookie of a subscription that ended:
 * RZ-SUB-16.
 */
void nbdp_rz_check_after_end (const struct nbdp_rz_state *st,
                              uint64_t cookie, uint16_t type,
                              struct nbdp_rz_violations *out);

/* A write (or write zeroes) of [off, off+len) with the size old before:
 * RZ-AUTO-1 (RZ-LEG-4), RZ-AUTO-2, -8, -9, -10, -12, RZ-CHUNK-5, -7,
 * -10, -11, -12.
 */
void nbdp_rz_check_write_reply (const struct nbdp_rz_state *st,
                                uint64_t off, uint64_t len, uint64_t old,
                                const struct nbdp_rz_reply *rep,
                                struct nbdp_rz_violations *out);
void nbdp_rz_learn_write_reply (struct nbdp_rz_state *st, uint64_t off,
                                uint64_t len,
                                const struct nbdp_rz_reply *rep);

/* Contents of newly exposed bytes [off, off+len) read back after a
 * growth: RZ-ZERO-1 (ZERO_FILL in the capabilities) or RZ-CHUNK-8 (the
 * chunk said ZEROED).  zeroed_event: the growth's chunk had ZEROED.
 */
void nbdp_rz_check_new_bytes (const struct nbdp_rz_state *st,
                              bool zeroed_event, uint64_t off,
                              const void *buf, size_t len,
                              struct nbdp_rz_violations *out);

/* The outcome of an NBD_CMD_RESIZE (flags, offset, count as sent; error
 * 0 for success), judged against the mode: a request that the server
 * must refuse (RZ-FLAG-4, RZ-REQ-1 to RZ-REQ-5, RZ-SET-1, -2, -3, -9, -18,
 * RZ-RO-2, RZ-SUB-1, RZ-SUB-9, RZ-LEG-1) and its code (NBD_EINVAL where
 * required; RZ-REQ-8 and RZ-LEG-6 where recommended), and a refusal of
 * what must succeed (RZ-SET-4, RZ-SUB-10).  Only what a client can judge
 * from its own connection.
 */
void nbdp_rz_check_resize_outcome (const struct nbdp_rz_state *st,
                                   uint16_t flags, uint64_t offset,
                                   uint64_t count, uint32_t error,
                                   struct nbdp_rz_violations *out);

#endif /* NBDP_RULES_RESIZE_H */
