/* nbd-conformance: the value -> name tables generated into common/names.c
 * by common/gen-names.sh.  Internal to libnbdp: use the nbdp_name_of_*
 * and nbdp_*_str lookups of codec.h instead.
 *
 * Each table ends with an entry whose name is NULL.  Value tables (opt,
 * rep, ...) hold full names ("NBD_OPT_GO"); flag tables hold the short
 * bit names without the family prefix ("SEND_FLUSH").
 */
#ifndef NBDP_NAMES_H
#define NBDP_NAMES_H

#include <stdint.h>

struct nbdp_name {
  uint64_t value;
  const char *name;
};

extern const struct nbdp_name nbdp_names_opt[];
extern const struct nbdp_name nbdp_names_rep[];
extern const struct nbdp_name nbdp_names_info[];
extern const struct nbdp_name nbdp_names_cmd[];
extern const struct nbdp_name nbdp_names_reply_type[];
extern const struct nbdp_name nbdp_names_error[];
extern const struct nbdp_name nbdp_names_eflag[];      /* transmission flags */
extern const struct nbdp_name nbdp_names_gflag[];      /* handshake flags */
extern const struct nbdp_name nbdp_names_cflag[];      /* client flags */
extern const struct nbdp_name nbdp_names_cmd_flag[];
extern const struct nbdp_name nbdp_names_reply_flag[];
extern const struct nbdp_name nbdp_names_state[];      /* base:allocation */

#endif /* NBDP_NAMES_H */
