/* nbd-conformance: fuzz target for common/codec.c.  The first byte picks
 * a decoder, the rest is the wire bytes.  Every decoder must stay inside
 * the bytes it is given and never trust a length field; encoders must
 * give back the bytes a header was decoded from (round trip), and the
 * name and flag formatters must always NUL terminate.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"

#define CHECK(cond) do { if (!(cond)) abort (); } while (0)

static void
check_request (const uint8_t *d, size_t n, bool ext)
{
  size_t hlen = ext ? NBDP_REQUEST_EXT_SIZE : NBDP_REQUEST_SIZE;
  unsigned char out[NBDP_REQUEST_EXT_SIZE];
  struct nbdp_request req;

  if (n < hlen)
    return;
  nbdp_decode_request (d, ext, &req);
  CHECK (nbdp_encode_request (out, &req, ext) == hlen);
  CHECK (memcmp (out, d, hlen) == 0);
}

static void
check_reply (const uint8_t *d, size_t n)
{
  unsigned char out[NBDP_EXTENDED_REPLY_SIZE];
  struct nbdp_reply r;
  size_t hlen;

  if (n < 4)
    return;
  hlen = nbdp_reply_header_size (nbdp_get32 (d));
  if (hlen == 0 || n < hlen)
    return;
  CHECK (nbdp_decode_reply (d, &r));
  CHECK (nbdp_encode_reply (out, &r) == hlen);
  /* Simple replies have no flags/type: bytes 4..7 are the error. */
  CHECK (memcmp (out, d, hlen) == 0);
}

static void
check_option (const uint8_t *d, size_t n)
{
  unsigned char out[NBDP_OPTION_REPLY_SIZE];
  struct nbdp_option o;
  struct nbdp_option_reply r;

  if (n >= NBDP_OPTION_SIZE) {
    nbdp_decode_option (d, &o);
    nbdp_encode_option (out, &o);
    CHECK (memcmp (out, d, NBDP_OPTION_SIZE) == 0);
  }
  if (n >= NBDP_OPTION_REPLY_SIZE) {
    nbdp_decode_option_reply (d, &r);
    nbdp_encode_option_reply (out, &r);
    CHECK (memcmp (out, d, NBDP_OPTION_REPLY_SIZE) == 0);
  }
}

static void
check_block_status (const uint8_t *d, size_t n, bool ext, size_t max)
{
  struct nbdp_extent *ex = max ? malloc (max * sizeof *ex) : NULL;
  uint32_t id;
  size_t count;

  if (max && ex == NULL)
    return;
  if (nbdp_decode_block_status (d, n, ext, &id, ex, max, &count)) {
    size_t hdr = ext ? 8 : 4, dsize = ext ? 16 : 8;
    CHECK (count >= 1);
    CHECK (hdr + count * dsize == n);
  }
  free (ex);
}

static void
check_error_chunk (const uint8_t *d, size_t n, uint16_t type)
{
  uint32_t err;
  const char *msg;
  uint16_t msglen;
  uint64_t off = 0;

  if (nbdp_decode_error_chunk (d, n, type, &err, &msg, &msglen, &off)) {
    CHECK (msg != NULL);
    CHECK ((const uint8_t *) msg >= d + 6);
    CHECK ((const uint8_t *) msg + msglen <= d + n);
    if (msglen) {
      /* Touch every byte the decoder claims is there. */
      volatile char sink = 0;
      for (uint16_t i = 0; i < msglen; i++)
        sink ^= msg[i];
      (void) sink;
    }
  }
}

static void
check_names (const uint8_t *d, size_t n)
{
  struct fuzz_in in = { d, n };
  uint64_t v = fuzz_u64 (&in);
  size_t size = fuzz_u8 (&in) % 48;
  char *buf = malloc (size ? size : 1);
  const char *s;

  if (buf == NULL)
    return;
  (void) nbdp_name_of_opt ((uint32_t) v);
  (void) nbdp_name_of_rep ((uint32_t) v);
  (void) nbdp_name_of_info ((uint16_t) v);
  (void) nbdp_name_of_cmd ((uint16_t) v);
  (void) nbdp_name_of_reply_type ((uint16_t) v);
  (void) nbdp_name_of_error ((uint32_t) v);
  (void) nbdp_errno_to_nbd ((int) (v & 0xfff));
  (void) nbdp_nbd_to_errno ((uint32_t) v);
  if (size == 0) {
    free (buf);
    return;
  }
#define FMT(call) do { s = (call); CHECK (memchr (s, '\0', size) != NULL); } while (0)
  FMT (nbdp_flags_str (buf, size, (uint16_t) v));
  FMT (nbdp_cmd_flags_str (buf, size, (uint16_t) v));
  FMT (nbdp_gflags_str (buf, size, (uint16_t) v));
  FMT (nbdp_cflags_str (buf, size, (uint32_t) v));
  FMT (nbdp_reply_flags_str (buf, size, (uint16_t) v));
  FMT (nbdp_state_str (buf, size, v));
  FMT (nbdp_name_or (NULL, buf, size, v));
#undef FMT
  free (buf);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t sel;
  const uint8_t *d;
  size_t n;

  if (size < 1)
    return 0;
  sel = data[0];
  d = data + 1;
  n = size - 1;
  switch (sel % 8) {
  case 0: check_request (d, n, false); break;
  case 1: check_request (d, n, true); break;
  case 2: check_reply (d, n); break;
  case 3: check_option (d, n); break;
  case 4: check_block_status (d, n, false, (sel >> 3) % 5); break;
  case 5: check_block_status (d, n, true, (sel >> 3) % 5); break;
  case 6:
    if (n >= 2)
      check_error_chunk (d + 2, n - 2, nbdp_get16 (d));
    break;
  case 7: check_names (d, n); break;
  }
  return 0;
}
