/* nbd-matrix: finding the implementations.  A server adapter or client
 * driver is an executable file in its directory; asking it for its
 * version says whether the implementation is installed.
 */
#ifndef NBDM_INVENTORY_H
#define NBDM_INVENTORY_H

#include <stdbool.h>

#include "results.h"

/* Add every adapter (kind "server") or driver (kind "client") found in
 * dir whose name matches one of globs (NULL: all) to run->impls.  Servers
 * with profiles become one implementation per profile ("name:profile").
 * dir_label is how the adapter path is recorded (relative to top when
 * dir is the default).  Returns the number added.
 */
int inventory_scan (struct run *run, const char *top, const char *dir,
                    const char *dir_label, const char *kind,
                    char *const *globs);

/* Start each available server once, probe the flags it negotiates and
 * record them (probe_flags, probe_log).  A server that cannot be started
 * keeps probe_flags -1 (its cells then run and show the error).
 */
void inventory_probe_servers (struct run *run, const char *top,
                              const char *tmp_root, volatile bool *stop);

/* Does name match any of the globs (NULL or empty: yes)? */
bool globs_match (char *const *globs, const char *name);

#endif /* NBDM_INVENTORY_H */
