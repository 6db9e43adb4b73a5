/* nbd-conformance: fuzz target for the draft RESIZE client layer
 * (common/client-resize.c, judged by common/rules-resize.c).  Input: a
 * script length byte L (at most 24), L script bytes (handshake options,
 * then commands: set size, query, subscribe, events, unsubscribe, reads,
 * writes, disconnect), then the server's byte stream over a socketpair.
 * Whatever the server sends, the layer must only report errors and
 * violations: no crash, no hang, no leak.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client-resize.h"
#include "fuzz.h"
#include "peer.h"

#define CHECK(cond) do { if (!(cond)) abort (); } while (0)
#define MAX_SCRIPT 24
#define MAX_IO 4096

static void
check_rc (const struct nbdp_rz_client *rc)
{
  CHECK (memchr (rc->err, '\0', sizeof rc->err) != NULL);
  CHECK (rc->vs.n <= NBDP_RZ_MAX_VIOLATIONS);
  for (size_t i = 0; i < rc->vs.n; i++) {
    CHECK (rc->vs.v[i].id != NULL);
    CHECK (memchr (rc->vs.v[i].msg, '\0', sizeof rc->vs.v[i].msg) != NULL);
  }
  (void) nbdp_rz_worst (rc);
}

static void
step (struct nbdp_rz_client *rc, uint8_t op, uint8_t arg, unsigned char *buf)
{
  struct nbdp_rz_result res;
  struct nbdp_rz_chunk ch;
  uint64_t count = 1 + (uint64_t) arg * 16;
  uint64_t off = (arg & 0x80) ? (uint64_t) arg << (arg & 7) : 0;

  rc->force = op & 0x80;
  switch (op % 10) {
  case 0: nbdp_rz_set_size (rc, (uint64_t) arg << 12, op & 0x40 ? NBD_CMD_FLAG_FUA : 0, &res); break;
  case 1: nbdp_rz_query (rc, &res); break;
  case 2: nbdp_rz_subscribe (rc, arg & 1, &res); break;
  case 3: nbdp_rz_next_event (rc, 0, &ch); break;
  case 4: nbdp_rz_next_event (rc, 50, &ch); break;
  case 5: nbdp_rz_unsubscribe (rc, &res); break;
  case 6:
    nbdp_rz_resize_raw (rc, (op >> 4) & 7, arg & 1 ? off : 0,
                        arg & 2 ? arg : 0, &res);
    break;
  case 7: nbdp_rz_pread (rc, buf, count, off, 0); break;
  case 8: nbdp_rz_pwrite (rc, buf, count, off, 0, arg & 1 ? &res : NULL); break;
  default: nbdp_rz_disc (rc); break;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fuzz_in in = { data, size };
  size_t slen, got;
  const uint8_t *script;
  struct fuzz_peer peer;
  struct nbdp_rz_client *rc;
  struct nbdp_rz_opts o;
  unsigned char *buf;
  int fd;

  slen = fuzz_u8 (&in) % (MAX_SCRIPT + 1);
  script = fuzz_bytes (&in, slen, &got);
  slen = got;
  buf = calloc (1, MAX_IO);
  if (buf == NULL)
    return 0;
  rc = nbdp_rz_client_new ();
  if (rc == NULL) {
    free (buf);
    return 0;
  }
  fd = fuzz_peer_start (&peer, in.p, in.left);
  if (fd == -1) {
    nbdp_rz_client_free (rc);
    free (buf);
    return 0;
  }
  nbdp_rz_set_fd (rc, fd);
  nbdp_client_set_timeout (rc->c, 10000);

  memset (&o, 0, sizeof o);
  if (slen >= 2) {
    o.encoding = (enum nbdp_rz_encoding) (script[0] % 5);
    o.structured = script[0] & 0x08;
    o.extended = script[0] & 0x10;
    o.probe_info = script[0] & 0x20;
    o.use_export_name = script[0] & 0x40;
    o.no_block_size = script[0] & 0x80;
    o.features = script[1] & 0x80 ? 0xffffffff : script[1];
  }
  nbdp_rz_handshake (rc, &o);
  check_rc (rc);
  for (size_t i = 2; i + 1 < slen; i += 2) {
    step (rc, script[i], script[i + 1], buf);
    check_rc (rc);
  }
  nbdp_rz_client_free (rc);
  fuzz_peer_finish (&peer);
  free (buf);
  return 0;
}
