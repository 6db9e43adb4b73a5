/* nbd-matrix: read the server's content back on the harness's own
 * connection and compare it with the scenario's content model.
 */
#ifndef NBDM_VERIFY_H
#define NBDM_VERIFY_H

#include <stddef.h>

#include "scenario.h"

/* Returns 0 if size and every known byte match, 1 on a mismatch, -1 if
 * the check itself could not be done (cannot connect, timeout).  msg gets
 * one line saying what was expected and what came back; log (may be NULL)
 * gets a line per range checked.
 */
int verify_content (const char *uri, const struct scn_model *m,
                    int timeout_ms, char *msg, size_t msglen, FILE *log);

#endif /* NBDM_VERIFY_H */
