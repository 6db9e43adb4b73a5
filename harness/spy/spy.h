/* nbd-spy: the decoder of one proxied connection.  It is fed the bytes
 * of both directions in the order the proxy saw them (decode before
 * forwarding, so that a request is known before its reply can come),
 * splits them into NBD messages, describes each message on one
 * transcript line and runs the rule engine on it: common/rules.h for the
 * published protocol (server messages and client requests) and
 * common/rules-resize.h for the draft RESIZE extension.  No I/O: lines
 * and violations go to the sink.  Not thread safe: the proxy holds one
 * lock per connection around every call.
 *
 * Bytes the decoder cannot follow (garbage, TLS after the STARTTLS
 * acknowledgement, a length it cannot trust) switch the connection to
 * raw mode: it is still counted, never decoded again, and the reason is
 * noted.
 */
#ifndef NBD_SPY_H
#define NBD_SPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules-resize.h"

/* Who sent the bytes. */
enum spy_dir {
  SPY_CLIENT = 0,             /* client -> server */
  SPY_SERVER = 1,             /* server -> client */
  SPY_NOTE = 2,               /* the spy's own remark (lines only) */
};

struct spy_sink {
  /* One transcript line (no newline), text of a message or a note. */
  void (*line) (void *opaque, unsigned conn, enum spy_dir dir,
                const char *text);
  /* One violation: the party that broke the requirement is dir. */
  void (*violation) (void *opaque, unsigned conn, enum spy_dir dir,
                     const char *id, bool must, const char *msg);
  void *opaque;
};

struct spy_config {
  bool have_encoding;         /* --resize-encoding given */
  enum nbdp_rz_encoding encoding;
  bool hexdump;               /* payload summaries: more bytes */
};

struct spy_stats {
  uint64_t messages[2];       /* per enum spy_dir (CLIENT, SERVER) */
  uint64_t bytes[2];
  uint64_t violations_must, violations_should;
  bool raw;
  char raw_reason[160];
  bool transmission;
  bool structured, extended;
  uint64_t export_size;
  uint16_t eflags;
  const char *resize_mode;    /* nbdp_rz_mode_name */
};

struct spy_conn;

struct spy_conn *spy_conn_new (unsigned id, const struct spy_config *cfg,
                               const struct spy_sink *sink);
void spy_conn_free (struct spy_conn *c);
/* Bytes of one direction, in the order read. */
void spy_conn_feed (struct spy_conn *c, enum spy_dir from, const void *buf,
                    size_t len);
/* That direction ended (EOF or error). */
void spy_conn_eof (struct spy_conn *c, enum spy_dir from);
void spy_conn_stats (const struct spy_conn *c, struct spy_stats *st);

#endif /* NBD_SPY_H */
