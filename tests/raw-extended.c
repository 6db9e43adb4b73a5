/* nbd-conformance: extended headers (proto-extension-ext-header.md) on
 * nbd-refserver, with the raw client.  One case per binary
 * (tests/bin/raw-extended-CASE):
 *   negotiate       NBD_OPT_EXTENDED_HEADERS, 32-byte requests, every reply
 *                   an extended reply echoing the request's offset, errors
 *                   included; STRUCTURED_REPLY afterwards; data in the
 *                   option
 *   effect-64       64-bit effect lengths (write zeroes, trim, cache, block
 *                   status over more than 4 GiB) and 64-bit block status
 *                   descriptors (NBD_REPLY_TYPE_BLOCK_STATUS_EXT)
 *   payload-len     NBD_CMD_FLAG_PAYLOAD_LEN: writes carry it; a payload
 *                   on a command that takes none is consumed and refused;
 *                   a write without it is refused
 *   huge-block-status  block status over a whole 1 PiB export in one
 *                   request, timed
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "codec.h"
#include "nbd-proto.h"
#include "testlib.h"

static struct nbdp_client *
open_extended (const struct tl_server *s, const char *name)
{
  struct nbdp_client *c = tl_connect (s);
  static const char *const ctx[] = { NBD_BLOCK_ALLOCATION_CTX };
  struct nbdp_handshake_opts o = {
    .export_name = name, .extended_headers = true, .require = true,
    .meta_contexts = ctx, .n_meta_contexts = 1,
  };

  if (nbdp_client_handshake (c, &o) == -1)
    tl_fail ("handshake with NBD_OPT_EXTENDED_HEADERS and base:allocation:"
             " %s; expected success", nbdp_client_error (c));
  if (!c->extended)
    tl_fail ("NBD_OPT_EXTENDED_HEADERS: not negotiated; expected NBD_REP_ACK");
  return c;
}

/* Send one raw extended request and read its replies until the final one;
 * every reply must be an extended reply with the request's cookie and
 * offset (proto-extension-ext-header.md "Extended reply chunk message":
 * "the server MUST NOT use simple replies"; "offset ... MUST match").
 * Returns the NBD error of the first error chunk, 0 if none.
 */
static uint32_t
raw_ext (struct nbdp_client *c, uint16_t type, uint16_t flags,
         uint64_t offset, uint64_t count, const void *payload,
         size_t payload_len, const char *what)
{
  struct nbdp_request req = {
    .type = type, .flags = flags, .offset = offset, .count = count,
  };
  struct nbdp_client_reply r;
  uint32_t err = 0;
  unsigned n;

  req.cookie = nbdp_client_next_cookie (c);
  if (nbdp_client_send_request (c, &req, NBDP_LAYOUT_EXTENDED, payload,
                                payload_len) == -1)
    tl_fail ("%s: sending: %s", what, nbdp_client_error (c));
  for (n = 0; n < 100000; n++) {
    if (nbdp_client_recv_reply (c, &r, 64 * TL_MIB, -1) == -1)
      tl_fail ("%s: reading the reply: %s", what, nbdp_client_error (c));
    if (r.hdr.kind != NBDP_REPLY_EXTENDED)
      tl_fail ("%s: got a %s reply (magic 0x%08" PRIx32 "); expected an"
               " extended reply (NBD_EXTENDED_REPLY_MAGIC)", what,
               r.hdr.kind == NBDP_REPLY_SIMPLE ? "simple" : "structured",
               r.hdr.magic);
    if (r.hdr.cookie != req.cookie)
      tl_fail ("%s: reply cookie %" PRIu64 "; expected %" PRIu64, what,
               r.hdr.cookie, req.cookie);
    if (r.hdr.offset != offset)
      tl_fail ("%s: reply header offset %" PRIu64 "; expected the request's"
               " offset %" PRIu64, what, r.hdr.offset, offset);
    if ((r.hdr.type & 0x8000) && err == 0) {
      const char *msg;
      uint16_t msglen;
      uint64_t eoff;
      if (!nbdp_decode_error_chunk (r.payload, r.payload_len, r.hdr.type,
                                    &err, &msg, &msglen, &eoff))
        tl_fail ("%s: malformed error chunk (length %" PRIu64 ")", what,
                 r.payload_len);
    }
    if (r.hdr.flags & NBD_REPLY_FLAG_DONE)
      return err;
  }
  tl_fail ("%s: no final chunk after 100000 chunks", what);
}

/* proto-extension-ext-header.md "NBD_OPT_EXTENDED_HEADERS", "Request
 * message", "Extended reply chunk message", "NBD_OPT_STRUCTURED_REPLY".
 */
static void
case_negotiate (void)
{
  struct tl_server s;
  static const char *const args[] = { "memory", "4M", NULL };
  struct nbdp_client *c;
  static unsigned char buf[65536];
  uint32_t rep, err;
  struct nbdp_opt_reply r;

  tl_start_server (&s, args);

  /* Data in the option: SHOULD be NBD_REP_ERR_INVALID. */
  c = tl_newstyle (&s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  nbdp_client_send_option (c, NBD_OPT_EXTENDED_HEADERS, "xyz", 3);
  rep = tl_opt_final (c, NBD_OPT_EXTENDED_HEADERS,
                      "NBD_OPT_EXTENDED_HEADERS with 3 bytes of data");
  if (rep != NBD_REP_ERR_INVALID)
    tl_fail ("sent NBD_OPT_EXTENDED_HEADERS with 3 bytes of data; got %s;"
             " expected NBD_REP_ERR_INVALID (SHOULD)",
             rep ? tl_repname (rep) : "disconnect");
  tl_ok ("EXTENDED_HEADERS with data: NBD_REP_ERR_INVALID");
  /* Then properly, then STRUCTURED_REPLY. */
  if (nbdp_client_opt_extended_headers (c) == -1)
    tl_fail ("NBD_OPT_EXTENDED_HEADERS: %s; expected NBD_REP_ACK",
             nbdp_client_error (c));
  nbdp_client_send_option (c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  rep = tl_opt_final (c, NBD_OPT_STRUCTURED_REPLY,
                      "NBD_OPT_STRUCTURED_REPLY after EXTENDED_HEADERS");
  if (rep != NBD_REP_ERR_EXT_HEADER_REQD && rep != NBD_REP_ACK)
    tl_fail ("sent NBD_OPT_STRUCTURED_REPLY after extended headers were"
             " acked; got %s; expected NBD_REP_ERR_EXT_HEADER_REQD (or ACK,"
             " extended headers staying in force)",
             rep ? tl_repname (rep) : "disconnect");
  tl_info ("STRUCTURED_REPLY after EXTENDED_HEADERS: %s", tl_repname (rep));
  (void) r;
  {
    static const char *const q[] = { NBD_BLOCK_ALLOCATION_CTX };
    struct nbdp_export exp = { 0 };
    size_t nctx = 0;
    if (nbdp_client_opt_meta_context (c, true, "", q, 1, NULL, 0,
                                      &nctx) == -1 || nctx != 1)
      tl_fail ("NBD_OPT_SET_META_CONTEXT base:allocation after extended"
               " headers: %s (%zu contexts); expected one context",
               nbdp_client_error (c), nctx);
    if (nbdp_client_opt_info (c, true, "", NULL, 0, &exp) == -1)
      tl_fail ("NBD_OPT_GO after extended headers: %s",
               nbdp_client_error (c));
  }

  /* Every reply is extended, with the request's offset. */
  memset (buf, 0x6b, sizeof buf);
  err = raw_ext (c, NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 8192,
                 sizeof buf, buf, sizeof buf, "extended WRITE 64K at 8192");
  if (err)
    tl_fail ("extended WRITE 64K at 8192: got %s; expected success",
             tl_errname ((int) err));
  err = raw_ext (c, NBD_CMD_READ, 0, 8192 + 100, 1000, NULL, 0,
                 "extended READ 1000 at 8292");
  if (err)
    tl_fail ("extended READ: got %s", tl_errname ((int) err));
  err = raw_ext (c, NBD_CMD_FLUSH, 0, 0, 0, NULL, 0, "extended FLUSH");
  if (err)
    tl_fail ("extended FLUSH: got %s", tl_errname ((int) err));
  err = raw_ext (c, NBD_CMD_TRIM, 0, 65536, 65536, NULL, 0,
                 "extended TRIM 64K at 64K");
  if (err)
    tl_fail ("extended TRIM: got %s", tl_errname ((int) err));
  err = raw_ext (c, NBD_CMD_BLOCK_STATUS, 0, 4096, 4 * TL_MIB - 4096, NULL, 0,
                 "extended BLOCK_STATUS 4096+(4M-4096)");
  if (err)
    tl_fail ("extended BLOCK_STATUS: got %s", tl_errname ((int) err));
  err = raw_ext (c, NBD_CMD_READ, 0, 4 * TL_MIB, 512, NULL, 0,
                 "extended READ past EOF");
  if (err != NBD_EINVAL)
    tl_fail ("extended READ 512 at 4M (EOF): got %s; expected NBD_EINVAL"
             " in an extended error chunk", tl_errname ((int) err));
  err = raw_ext (c, 0x42, 0, 12345, 1, NULL, 0, "extended unknown command");
  if (err != NBD_EINVAL)
    tl_fail ("extended unknown command 0x42: got %s; expected NBD_EINVAL",
             tl_errname ((int) err));
  tl_ok ("all replies extended, cookies and offsets echoed, errors in"
         " extended error chunks");

  /* The data made it, through the checked API. */
  if (nbdp_client_pread (c, buf, 4096, 8192, 0) == -1 || buf[0] != 0x6b ||
      buf[4095] != 0x6b)
    tl_fail ("read back of the extended write: %s (byte 0x%02x)",
             nbdp_client_error (c), buf[0]);
  tl_check_conn_alive (c, "extended requests");
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "extended headers");
}

/* proto-extension-ext-header.md "Request message" (64-bit effect length)
 * and "NBD_REPLY_TYPE_BLOCK_STATUS_EXT" (64-bit descriptor lengths).
 */
static void
case_effect_64 (void)
{
  struct tl_server s;
  static const char *const args[] = { "memory", "16G", NULL };
  struct nbdp_client *c;
  static unsigned char buf[TL_MIB];
  struct nbdp_bs_extent *ext = NULL;
  size_t n = 0, i;
  int r;

  tl_start_server (&s, args);
  c = open_extended (&s, "");
  memset (buf, 0x21, sizeof buf);
  if (nbdp_client_pwrite (c, buf, TL_MIB, 0, 0) == -1 ||
      nbdp_client_pwrite (c, buf, TL_MIB, 12 * TL_GIB, 0) == -1 ||
      nbdp_client_pwrite (c, buf, TL_MIB, 15 * TL_GIB, 0) == -1)
    tl_fail ("writes: %s", nbdp_client_error (c));

  /* Block status from 1M over 15 GiB: the hole [1M, 12G) is one
   * descriptor longer than 2^32.
   */
  if (nbdp_client_block_status (c, 15 * TL_GIB, TL_MIB, 0, &ext, &n) == -1)
    tl_fail ("BLOCK_STATUS 15G at 1M: %s; expected success",
             nbdp_client_error (c));
  for (i = 0; i < n && i < 8; i++)
    tl_info ("extent %zu: offset %" PRIu64 " length %" PRIu64 " flags 0x%"
             PRIx64, i, ext[i].offset, ext[i].length, ext[i].flags);
  if (n == 0 || ext[0].offset != TL_MIB ||
      ext[0].length != 12 * TL_GIB - TL_MIB ||
      ext[0].flags != (NBD_STATE_HOLE | NBD_STATE_ZERO))
    tl_fail ("BLOCK_STATUS 15G at 1M with extended headers: first extent %"
             PRIu64 "+%" PRIu64 " flags 0x%" PRIx64 "; expected one 64-bit"
             " descriptor 1048576+12883853312 flags 0x3 (the hole up to 12G)",
             n ? ext[0].offset : 0, n ? ext[0].length : 0,
             n ? ext[0].flags : 0);
  if (n < 2 || ext[1].flags != 0)
    tl_fail ("BLOCK_STATUS: expected data at 12G after the hole");
  tl_ok ("64-bit descriptor of %" PRIu64 " bytes", ext[0].length);
  free (ext);
  ext = NULL;

  /* REQ_ONE with a 64-bit length: one descriptor, within the length. */
  if (nbdp_client_block_status (c, 6 * TL_GIB, 2 * TL_GIB,
                                NBD_CMD_FLAG_REQ_ONE, &ext, &n) == -1)
    tl_fail ("BLOCK_STATUS|REQ_ONE 6G at 2G: %s", nbdp_client_error (c));
  if (n != 1 || ext[0].length > 6 * TL_GIB || ext[0].length == 0)
    tl_fail ("BLOCK_STATUS|REQ_ONE 6G at 2G: got %zu extents (first length %"
             PRIu64 "); expected one of at most 6 GiB", n,
             n ? ext[0].length : 0);
  tl_ok ("REQ_ONE: one descriptor of %" PRIu64 " bytes", ext[0].length);
  free (ext);
  ext = NULL;

  /* Write zeroes over 12 GiB (0 .. 12G+1M): covers the first two writes. */
  r = tl_cmd (c, NBD_CMD_WRITE_ZEROES, 0, 0, 12 * TL_GIB + TL_MIB, NULL, NULL,
              NBDP_LAYOUT_EXTENDED);
  if (r != 0)
    tl_fail ("WRITE_ZEROES of 12G+1M at 0 (64-bit effect length): got %s;"
             " expected success", tl_errname (r));
  if (nbdp_client_pread (c, buf, 4096, 12 * TL_GIB, 0) == -1 || buf[0] != 0)
    tl_fail ("after the 64-bit WRITE_ZEROES, 12G reads 0x%02x; expected 0",
             buf[0]);
  if (nbdp_client_pread (c, buf, 4096, 15 * TL_GIB, 0) == -1 ||
      buf[0] != 0x21)
    tl_fail ("after the 64-bit WRITE_ZEROES, 15G (outside) reads 0x%02x;"
             " expected 0x21", buf[0]);
  tl_ok ("64-bit WRITE_ZEROES");
  r = tl_cmd (c, NBD_CMD_TRIM, 0, 2 * TL_GIB, 13 * TL_GIB, NULL, NULL,
              NBDP_LAYOUT_EXTENDED);
  if (r != 0)
    tl_fail ("TRIM of 13G at 2G: got %s; expected success", tl_errname (r));
  r = tl_cmd (c, NBD_CMD_CACHE, 0, 0, 16 * TL_GIB, NULL, NULL,
              NBDP_LAYOUT_EXTENDED);
  if (r != 0)
    tl_fail ("CACHE of 16G at 0: got %s; expected success", tl_errname (r));
  r = tl_cmd (c, NBD_CMD_WRITE_ZEROES, 0, 8 * TL_GIB, 9 * TL_GIB, NULL, NULL,
              NBDP_LAYOUT_EXTENDED);
  if (r != NBD_ENOSPC)
    tl_fail ("WRITE_ZEROES of 9G at 8G (past the 16G end): got %s;"
             " expected NBD_ENOSPC", tl_errname (r));
  tl_ok ("64-bit TRIM, CACHE; 64-bit WRITE_ZEROES past EOF is ENOSPC");
  tl_check_conn_alive (c, "64-bit requests");
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "64-bit requests");
}

/* proto-extension-ext-header.md "Request message": WRITE MUST use
 * NBD_CMD_FLAG_PAYLOAD_LEN; "a server SHOULD gracefully consume length
 * bytes of payload (even if it then replies with an NBD_EINVAL failure
 * because the particular command was not expecting a payload)".
 */
static void
case_payload_len (void)
{
  struct tl_server s;
  static const char *const args[] = { "memory", "4M", NULL };
  struct nbdp_client *c;
  unsigned char data[300];
  uint32_t err;

  tl_start_server (&s, args);
  c = open_extended (&s, "");
  memset (data, 0x77, sizeof data);

  /* READ with a payload: consumed, refused. */
  err = raw_ext (c, NBD_CMD_READ, NBD_CMD_FLAG_PAYLOAD_LEN, 0, sizeof data,
                 data, sizeof data, "READ with PAYLOAD_LEN and 300 bytes");
  if (err != NBD_EINVAL)
    tl_fail ("sent READ|PAYLOAD_LEN with 300 bytes of payload; got %s;"
             " expected NBD_EINVAL", tl_errname ((int) err));
  tl_check_conn_alive (c, "READ with a payload (payload consumed)");
  err = raw_ext (c, NBD_CMD_FLUSH, NBD_CMD_FLAG_PAYLOAD_LEN, 0, sizeof data,
                 data, sizeof data, "FLUSH with PAYLOAD_LEN and 300 bytes");
  if (err != NBD_EINVAL)
    tl_fail ("sent FLUSH|PAYLOAD_LEN with 300 bytes; got %s; expected"
             " NBD_EINVAL", tl_errname ((int) err));
  tl_check_conn_alive (c, "FLUSH with a payload");

  /* WRITE without PAYLOAD_LEN: no payload follows; refused. */
  err = raw_ext (c, NBD_CMD_WRITE, 0, 0, 512, NULL, 0,
                 "WRITE without PAYLOAD_LEN");
  if (err == 0)
    tl_fail ("sent an extended WRITE 512 at 0 without PAYLOAD_LEN (and no"
             " payload); got success; expected an error (NBD_EINVAL)");
  tl_info ("extended WRITE without PAYLOAD_LEN: %s", tl_errname ((int) err));
  tl_check_conn_alive (c, "WRITE without PAYLOAD_LEN");

  /* WRITE with PAYLOAD_LEN works and lands. */
  err = raw_ext (c, NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 1000,
                 sizeof data, data, sizeof data, "WRITE|PAYLOAD_LEN 300");
  if (err)
    tl_fail ("WRITE|PAYLOAD_LEN 300 at 1000: got %s", tl_errname ((int) err));
  {
    unsigned char back[302];
    if (nbdp_client_pread (c, back, sizeof back, 999, 0) == -1 ||
        back[0] != 0 || back[1] != 0x77 || back[300] != 0x77 ||
        back[301] != 0)
      tl_fail ("read back [999, 1301): got %02x %02x .. %02x %02x; expected"
               " 00 77 .. 77 00", back[0], back[1], back[300], back[301]);
  }
  tl_ok ("PAYLOAD_LEN handled");
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "PAYLOAD_LEN cases");
}

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A 1 PiB memory export (DESIGN.md: sparse, any size up to 2^63-1): one
 * extended NBD_CMD_BLOCK_STATUS over the whole export describes it with a
 * handful of descriptors, quickly (bound 2 s: only catches work in
 * proportion to the export size).
 */
static void
case_huge_block_status (void)
{
  struct tl_server s;
  static const char *const args[] = { "memory", "1P", NULL };
  const uint64_t P = UINT64_C (1) << 50;
  struct nbdp_client *c;
  static unsigned char buf[TL_MIB];
  uint64_t places[10], pos;
  struct nbdp_bs_extent *ext = NULL;
  size_t n, i, k, requests = 0, total = 0;
  double t0, dt;

  tl_start_server (&s, args);
  c = open_extended (&s, "");
  if (c->size != P)
    tl_fail ("export size %" PRIu64 "; expected 2^50", c->size);
  memset (buf, 0x99, sizeof buf);
  for (k = 0; k < 10; k++) {
    places[k] = k == 9 ? P - TL_MIB : (P / 10) * k;
    if (nbdp_client_pwrite (c, buf, TL_MIB, places[k], 0) == -1)
      tl_fail ("write 1M at %" PRIu64 ": %s", places[k],
               nbdp_client_error (c));
  }

  t0 = now ();
  for (pos = 0; pos < P; ) {
    if (nbdp_client_block_status (c, P - pos, pos, 0, &ext, &n) == -1)
      tl_fail ("BLOCK_STATUS %" PRIu64 " at %" PRIu64 ": %s", P - pos, pos,
               nbdp_client_error (c));
    requests++;
    for (i = 0; i < n; i++) {
      uint64_t end = ext[i].offset + ext[i].length;
      bool data = false;
      for (k = 0; k < 10; k++)
        if (places[k] < end && ext[i].offset < places[k] + TL_MIB)
          data = true;
      if (data && (ext[i].flags & NBD_STATE_HOLE))
        tl_fail ("extent %" PRIu64 "+%" PRIu64 " overlaps written data but"
                 " has flags 0x%" PRIx64, ext[i].offset, ext[i].length,
                 ext[i].flags);
      /* Never-written bytes read as zero: a hole, or (the rest of a
       * partly written page) zero without HOLE.
       */
      if (!data && !(ext[i].flags & NBD_STATE_ZERO))
        tl_fail ("extent %" PRIu64 "+%" PRIu64 " was never written but has"
                 " flags 0x%" PRIx64 "; expected NBD_STATE_ZERO set",
                 ext[i].offset,
                 ext[i].length, ext[i].flags);
      pos = end < P ? end : P;
    }
    total += n;
    free (ext);
    ext = NULL;
    if (requests > 1000)
      tl_fail ("more than 1000 block status requests to cover 1 PiB");
  }
  dt = now () - t0;
  tl_info ("1 PiB described in %zu request(s), %zu extents, %.4f s",
           requests, total, dt);
  if (total > 1000)
    tl_fail ("1 PiB with 10 written MiB described by %zu extents; expected"
             " a handful (about 20)", total);
  if (dt > 2.0)
    tl_fail ("block status over 1 PiB took %.2f s; expected < 2 s", dt);
  tl_ok ("whole-export block status in %.4f s", dt);
  nbdp_client_disc (c);
  nbdp_client_free (c);
  tl_check_alive (&s, "block status over 1 PiB");
}

static const struct tl_case cases[] = {
  { "negotiate", case_negotiate },
  { "effect-64", case_effect_64 },
  { "payload-len", case_payload_len },
  { "huge-block-status", case_huge_block_status },
};

TL_MAIN (cases)
