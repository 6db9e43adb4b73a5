/* Handshake suite: helpers shared by the files of suites/handshake/ (raw
 * option building, judged option exchanges, "did the server hang up").
 * Everything here goes through the test context API of conform.h, so the
 * rule engine judges every reply.
 */
#ifndef HS_H
#define HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conform.h"

/* How long to wait for a server that is expected to hang up (or to answer
 * right away after a malformed message).
 */
#define HS_CLOSE_WAIT_MS 2000

/* An export name no server is expected to have. */
#define HS_NO_SUCH_EXPORT "nbd-conform-no-such-export-5b1f"

/* The export the run was told to use (from --export or the URI). */
const char *hs_export (struct nc_ctx *t);

/* Names of reply types and options; rotating static buffers, so a few
 * may be used in one message.
 */
const char *hs_rep (uint32_t rep);
const char *hs_opt_name (uint32_t opt);

/* Connect and read the greeting (judged).  With hs_start the server must
 * offer fixed newstyle (else UNSUPPORTED) and the client answers with
 * NBD_FLAG_C_FIXED_NEWSTYLE.
 */
struct nc_conn *hs_start (struct nc_ctx *t);
struct nc_conn *hs_greet (struct nc_ctx *t, uint16_t *gflags);

/* Send an option and read replies up to the final one (judged); returns
 * the final reply type.
 */
uint32_t hs_opt (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
                 const void *data, uint32_t len);

/* NBD_OPT_INFO / NBD_OPT_GO for name with the info requests. */
void hs_send_info (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
                   const char *name, const uint16_t *infos, size_t n);
uint32_t hs_info (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
                  const char *name, const uint16_t *infos, size_t n);

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT.  The contexts
 * replied are in c->s.opt.context_names / nr_contexts afterwards.
 */
uint32_t hs_meta (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
                  const char *export, const char *const *queries, size_t n);

/* After a GO that was acked: tell the raw client what was agreed so that
 * nc_cmd works (as nc_open does).
 */
void hs_enter (struct nc_ctx *t, struct nc_conn *c);

/* GO for the configured export with the info requests; ACK expected (a
 * finding with id otherwise, and the test ends).  Enters transmission.
 */
void hs_go (struct nc_ctx *t, struct nc_conn *c, const uint16_t *infos,
            size_t n, const char *id);

/* GO for the configured export must still work after 'after' (the
 * negotiation goes on after an error).  A finding with id if not.
 */
void hs_expect_go_works (struct nc_ctx *t, struct nc_conn *c,
                         const char *after, const char *id);

/* Wait up to ms for the server to close the connection.  1: it closed
 * (EOF or reset), 0: data arrived instead (not consumed), -1: neither.
 */
int hs_wait_close (struct nc_ctx *t, struct nc_conn *c, int ms);

/* After sending something the server may refuse with an error reply or
 * with a hard disconnect: true and *rep set if a final option reply came,
 * false if the server closed.  A server that does neither within
 * HS_CLOSE_WAIT_MS is a finding with id, and the test ends.  Every later
 * receive on c waits at most HS_CLOSE_WAIT_MS too.
 */
bool hs_reply_or_close (struct nc_ctx *t, struct nc_conn *c, uint32_t *rep,
                        const char *id, const char *sent);

/* A READ of HS_READ_LEN bytes at 0 (or the whole export if smaller) in
 * transmission; true if it succeeded.  64 KiB is a multiple of every
 * minimum block size a server may advertise.
 */
#define HS_READ_LEN 65536
bool hs_read_ok (struct nc_ctx *t, struct nc_conn *c, struct nc_result *r);

/* Where a helper takes "id": NULL means a finding at the test's level
 * with its first requirement ID (nc_expect), else a MUST finding with id.
 */

#endif /* HS_H */
