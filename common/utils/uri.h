/* NBD URI parsing (shared/upstream/uri.md): nbd://, nbds://, nbd+unix://,
 * nbds+unix://.  Query parameters socket= (required for +unix) and
 * tls-* are recognised; unknown parameters are ignored as uri.md allows.
 */
#ifndef NBDP_URI_H
#define NBDP_URI_H

#include <stdbool.h>
#include <stddef.h>

struct nbdp_uri {
  bool tls;            /* nbds scheme */
  bool is_unix;        /* +unix transport */
  char *host;          /* TCP: host (IPv6 without brackets); default "localhost" */
  char *port;          /* TCP: port; default "10809" */
  char *socket;        /* Unix: path from socket= */
  char *export_name;   /* path without the leading '/', percent-decoded; "" default */
};

/* Parse; returns 0 or -1 with a message in err (size errlen). */
int nbdp_uri_parse (const char *text, struct nbdp_uri *uri,
                    char *err, size_t errlen);
void nbdp_uri_free (struct nbdp_uri *uri);
/* Format nbd+unix:///EXPORT?socket=PATH (percent-encoding as needed);
 * returns malloc'd string or NULL.
 */
char *nbdp_uri_unix (const char *export_name, const char *socket_path);

#endif /* NBDP_URI_H */
