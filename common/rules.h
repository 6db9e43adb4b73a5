/* nbd-conformance: the rule engine.  Judges one server message at a time
 * (greeting, option reply, transmission reply header or chunk) against
 * what the session has negotiated so far and what requests are in flight,
 * and returns the requirements it saw broken.  No I/O: the caller reads
 * the bytes (common/client.c, nbd-spy) and feeds them here.
 *
 * Typical use, transmission phase:
 *
 *   struct nbdp_session s;
 *   nbdp_session_init (&s);
 *   ... s.structured / s.extended / s.export_size / s.eflags set by
 *       nbdp_rules_check_option_reply on GO, or by hand ...
 *   nbdp_rules_request_sent (&s, &req);              (before sending)
 *   nbdp_violations_clear (&v);
 *   r = nbdp_rules_check_reply (&s, &hdr, payload, len, &v);
 *   (r == NBDP_RULES_FINAL: that request's reply is complete)
 *   nbdp_session_free (&s);
 *
 * Each violation names a requirement ID of specs/requirements.tsv.
 */
#ifndef NBDP_RULES_H
#define NBDP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

enum nbdp_level {
  NBDP_MUST,          /* MUST / MUST NOT: a failure */
  NBDP_SHOULD,        /* SHOULD / SHOULD NOT: NONSTRICT unless --strict */
};

#define NBDP_VIOLATION_MSG 320
#define NBDP_MAX_VIOLATIONS 16

struct nbdp_violation {
  const char *id;                    /* requirement ID, static string */
  enum nbdp_level level;
  char msg[NBDP_VIOLATION_MSG];      /* what came, what was expected */
};

/* A bounded list; violations past the capacity are counted in dropped. */
struct nbdp_violations {
  size_t n;
  size_t dropped;
  struct nbdp_violation v[NBDP_MAX_VIOLATIONS];
};

void nbdp_violations_clear (struct nbdp_violations *vs);
/* Number of violations at the given level (MUST counts only MUST). */
size_t nbdp_violations_count (const struct nbdp_violations *vs,
                              enum nbdp_level level);
/* Append one (used by the engine, and by suites for their own checks). */
void nbdp_violation_add (struct nbdp_violations *vs, const char *id,
                         enum nbdp_level level, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));
/* True if a violation with this ID is in the list. */
bool nbdp_violations_has (const struct nbdp_violations *vs, const char *id);
const char *nbdp_level_name (enum nbdp_level level);

/* ---- session state -------------------------------------------------- */

#define NBDP_MAX_CONTEXTS 16
#define NBDP_RECENT_DONE  8

/* Most ranges of each kind kept per request (bounded memory, about
 * 1.5 MiB a list).  Adjacent content ranges merge, so a reply in order
 * (or in reverse order) keeps one whatever its number of chunks; past
 * the bound further ranges go unrecorded, and a chunk overlapping one of
 * them still shows when the DONE finds more bytes covered than asked.
 */
#define NBDP_MAX_RANGES 65536

struct nbdp_range {
  uint64_t off;
  uint64_t len;
  unsigned seq;               /* chunk number that recorded it (earliest) */
  bool error;                 /* an error offset (len 1), not content */
};

/* A request in flight and what its reply has shown so far. */
struct nbdp_rules_req {
  uint64_t cookie;
  uint16_t type;
  uint16_t flags;
  uint64_t offset;
  uint64_t count;             /* effect length; payload length for WRITE */
  /* Progress of a structured/extended reply. */
  unsigned chunks;
  unsigned content_chunks;
  unsigned error_chunks;
  bool generic_error;         /* an NBD_REPLY_TYPE_ERROR was seen */
  bool offset_error;          /* an NBD_REPLY_TYPE_ERROR_OFFSET was seen */
  uint64_t covered;           /* bytes described by content chunks */
  /* Content ranges seen: sorted by offset, disjoint, adjacent ones
   * merged while no error offset was seen.  Error offsets seen: sorted,
   * each once (with the chunk that first reported it).  Looked up by
   * binary search.
   */
  struct nbdp_range *ranges;
  size_t nr_ranges, cap_ranges;
  struct nbdp_range *errs;
  size_t nr_errs, cap_errs;
  unsigned status_chunks[NBDP_MAX_CONTEXTS]; /* per session context */
  unsigned status_unknown;    /* status chunks for unknown context IDs */
};

/* Handshake-phase bookkeeping for the option being answered. */
struct nbdp_opt_state {
  bool pending;               /* an option was sent, final reply not yet */
  uint32_t option;
  uint32_t replies;
  bool info_export_seen;
  bool info_block_size_requested;
  uint32_t info_seen;         /* bitmap of NBD_INFO_* < 32 seen */
  /* Values from NBD_INFO_EXPORT / BLOCK_SIZE of this reply. */
  uint64_t size;
  uint16_t eflags;
  bool have_block_size;
  uint32_t min_block, pref_block, max_payload;
  /* NBD_REP_META_CONTEXT replies of this option. */
  size_t nr_contexts;
  uint32_t context_ids[NBDP_MAX_CONTEXTS];
  char context_names[NBDP_MAX_CONTEXTS][64];
};

struct nbdp_session {
  /* Negotiated (set by option replies, or by the caller). */
  bool fixed_newstyle;
  bool no_zeroes;
  bool structured;            /* NBD_OPT_STRUCTURED_REPLY acked */
  bool extended;              /* NBD_OPT_EXTENDED_HEADERS acked */
  bool transmission;          /* transmission phase entered */
  uint64_t export_size;
  uint16_t eflags;
  bool have_block_size;       /* NBD_INFO_BLOCK_SIZE was received */
  uint32_t min_block, pref_block, max_payload;
  size_t nr_contexts;         /* contexts selected by SET_META_CONTEXT */
  uint32_t context_ids[NBDP_MAX_CONTEXTS];
  char context_names[NBDP_MAX_CONTEXTS][64];

  struct nbdp_opt_state opt;

  /* Transmission. */
  struct nbdp_rules_req *inflight;
  size_t nr_inflight, cap_inflight;
  uint64_t recent_done[NBDP_RECENT_DONE]; /* cookies completed lately */
  size_t nr_recent;

  /* A chunk type of an extension that the caller judges itself (e.g.
   * NBD_REPLY_TYPE_RESIZE of nbd-draft.h, by nbd-spy with
   * rules-resize.h): such chunks skip the type and payload checks here
   * but still count for the request (DONE, flags, offset).  0: none.
   */
  uint16_t ext_chunk_type;
};

void nbdp_session_init (struct nbdp_session *s);
void nbdp_session_free (struct nbdp_session *s);
/* Max payload in effect: advertised, else the protocol default. */
uint32_t nbdp_session_max_payload (const struct nbdp_session *s);
struct nbdp_rules_req *nbdp_session_find (struct nbdp_session *s,
                                         uint64_t cookie);

/* ---- handshake ------------------------------------------------------ */

/* Newstyle greeting: 18 bytes (NBDMAGIC, IHAVEOPT, handshake flags), or
 * the first 18 bytes of an oldstyle greeting (then *oldstyle is set and
 * only magics are judged).  Sets s->fixed_newstyle.
 */
void nbdp_rules_check_greeting (struct nbdp_session *s, const void *buf18,
                                bool *oldstyle, struct nbdp_violations *out);

/* Record an option the client is about to send (data is its payload, used
 * to learn which NBD_INFO items a GO/INFO requested).
 */
void nbdp_rules_option_sent (struct nbdp_session *s, uint32_t option,
                             const void *data, uint32_t len);

/* Check one option reply (header decoded, payload of hdr->length bytes,
 * or NULL if the caller did not read it).  Returns NBDP_RULES_FINAL when
 * this was the option's final reply (ACK or an error), else
 * NBDP_RULES_MORE.  A final ACK updates the session: STRUCTURED_REPLY,
 * EXTENDED_HEADERS, SET_META_CONTEXT (selected contexts), GO (export
 * size, flags, block sizes; transmission = true).
 */
enum nbdp_rules_progress {
  NBDP_RULES_MORE = 0,
  NBDP_RULES_FINAL = 1,
};
enum nbdp_rules_progress
nbdp_rules_check_option_reply (struct nbdp_session *s,
                               const struct nbdp_option_reply *hdr,
                               const void *payload,
                               struct nbdp_violations *out);

/* Judge the transmission flags of an NBD_INFO_EXPORT or of the
 * NBD_OPT_EXPORT_NAME reply against what was negotiated.
 */
void nbdp_rules_check_eflags (const struct nbdp_session *s, uint16_t eflags,
                              struct nbdp_violations *out);
/* Judge NBD_INFO_BLOCK_SIZE values. */
void nbdp_rules_check_block_size (uint32_t min, uint32_t pref, uint32_t max,
                                  uint64_t export_size,
                                  struct nbdp_violations *out);

/* ---- transmission --------------------------------------------------- */

/* Register a request as in flight (call before sending it).  Returns 0,
 * or -1 with errno (ENOMEM).  NBD_CMD_DISC is not registered (no reply).
 * A cookie already in flight is replaced (and reported by
 * nbdp_rules_check_request).
 */
int nbdp_rules_request_sent (struct nbdp_session *s,
                             const struct nbdp_request *req);

/* Client-side rules for a request about to be sent: cookies unique, flags
 * and commands only when advertised, bounds, alignment, payload size.
 * Suites that send bad requests on purpose simply do not call this;
 * nbd-spy and the client suites do.
 */
void nbdp_rules_check_request (const struct nbdp_session *s,
                               const struct nbdp_request *req,
                               struct nbdp_violations *out);

/* Check one reply: a simple reply (hdr->kind NBDP_REPLY_SIMPLE; payload
 * is the read data if the caller read it, may be NULL) or one
 * structured/extended chunk (payload of hdr->length bytes, or NULL when
 * the caller did not read it: payload checks are then skipped).
 * Returns NBDP_RULES_FINAL if the request's reply is now complete (simple
 * reply, or DONE flag; also for an unknown cookie); the request then
 * leaves the in-flight table.
 */
enum nbdp_rules_progress
nbdp_rules_check_reply (struct nbdp_session *s, const struct nbdp_reply *hdr,
                        const void *payload, struct nbdp_violations *out);

/* Helpers for suites: the reply error of a finished request as seen in
 * its chunks is the caller's business; these expose small predicates.
 */
bool nbdp_is_power_of_2 (uint64_t v);

#endif /* NBDP_RULES_H */
