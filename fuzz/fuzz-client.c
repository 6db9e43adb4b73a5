/* nbd-conformance: fuzz target for the raw client (common/client.c).
 * Input: a script length byte L (at most 24), L script bytes choosing
 * what the client does (a handshake variant, then options or commands),
 * then the server's byte stream, fed over a socketpair.  Whatever the
 * server sends, the client must only report errors: no crash, no hang
 * (the stream ends in EOF), no leak, and every message NUL terminated.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fuzz.h"
#include "peer.h"

#define CHECK(cond) do { if (!(cond)) abort (); } while (0)
#define MAX_SCRIPT 24
#define MAX_IO 4096

static int
list_cb (void *opaque, const char *name, const char *desc)
{
  unsigned *n = opaque;

  (void) strlen (name);
  (void) strlen (desc);
  return ++*n > 100 ? -1 : 0;
}

static void
check_client (const struct nbdp_client *c)
{
  CHECK (memchr (c->err, '\0', sizeof c->err) != NULL);
  CHECK (c->n_contexts <= NBDP_CLIENT_MAX_CONTEXTS);
  CHECK (c->n_inflight <= c->cap_inflight);
}

static const char *const queries[] = { "base:allocation", "qemu:" };

static void
handshake_step (struct nbdp_client *c, uint8_t op, uint8_t arg)
{
  static const uint16_t infos[] = {
    NBD_INFO_EXPORT, NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE,
  };
  struct nbdp_export exp;
  struct nbdp_meta_context out[2];
  struct nbdp_opt_reply r;
  size_t n;
  unsigned count = 0;

  switch (op % 12) {
  case 0: nbdp_client_opt_list (c, list_cb, &count); break;
  case 1: nbdp_client_opt_info (c, false, "", infos, arg % 5, &exp); break;
  case 2:
    nbdp_client_opt_info (c, true, arg & 8 ? "x" : "", infos, arg % 5, &exp);
    break;
  case 3: nbdp_client_opt_structured_reply (c); break;
  case 4: nbdp_client_opt_extended_headers (c); break;
  case 5:
    nbdp_client_opt_meta_context (c, arg & 1, "", queries, 1 + (arg & 2) / 2,
                                  arg & 4 ? out : NULL, arg & 4 ? 2 : 0, &n);
    break;
  case 6: nbdp_client_opt_starttls (c); break;
  case 7: nbdp_client_opt_abort (c); break;
  case 8: nbdp_client_opt_export_name (c, "", &exp); break;
  case 9:
    nbdp_client_send_option (c, arg, NULL, 0);
    nbdp_client_recv_option_reply (c, &r, arg * 16);
    break;
  case 10: nbdp_client_expect_eof (c); break;
  default: {
    unsigned char b[8];
    nbdp_client_recv_raw (c, b, arg % sizeof b);
    break;
  }
  }
}

static void
transmission_step (struct nbdp_client *c, uint8_t op, uint8_t arg,
                   unsigned char *buf)
{
  uint64_t count = 1 + (uint64_t) arg * 16;   /* 1 .. 4081 */
  uint64_t off = (arg & 0x80) ? arg : 0;
  uint16_t flags = (op & 0x80) ? (op & 0x70) >> 4 : 0;
  struct nbdp_bs_extent *ex = NULL;
  size_t n = 0;

  switch (op % 12) {
  case 0: nbdp_client_pread (c, buf, count, off, flags); break;
  case 1: nbdp_client_pwrite (c, buf, count, off, flags); break;
  case 2: nbdp_client_flush (c, 0); break;
  case 3: nbdp_client_trim (c, count, off, flags); break;
  case 4: nbdp_client_write_zeroes (c, count, off, flags); break;
  case 5: nbdp_client_cache (c, count, off, 0); break;
  case 6:
    nbdp_client_block_status (c, count, off,
                              arg & 1 ? NBD_CMD_FLAG_REQ_ONE : 0, &ex, &n);
    free (ex);
    break;
  case 7: {                     /* several in flight, completed by poll */
    struct nbdp_cmd cmds[3];
    unsigned k = 1 + arg % 3;
    memset (cmds, 0, sizeof cmds);
    for (unsigned i = 0; i < k; i++) {
      cmds[i].type = (i + arg) % 3 == 0 ? NBD_CMD_READ
        : (i + arg) % 3 == 1 ? NBD_CMD_BLOCK_STATUS : NBD_CMD_WRITE;
      cmds[i].offset = off;
      cmds[i].count = 1 + (arg % 64) * 16;
      cmds[i].buf = buf + i * (MAX_IO / 4);
      cmds[i].payload = buf;
      if (cmds[i].count > MAX_IO / 4)
        cmds[i].count = MAX_IO / 4;
      if (nbdp_client_cmd_start (c, &cmds[i]) == -1)
        break;
    }
    for (unsigned polls = 0; polls < 16; polls++) {
      struct nbdp_cmd *which;
      bool all = true;
      for (unsigned i = 0; i < k; i++)
        all = all && cmds[i].done;
      if (all || nbdp_client_cmd_poll (c, &which) == -1)
        break;
    }
    for (unsigned i = 0; i < k; i++) {
      CHECK (memchr (cmds[i].violation_message, '\0',
                     sizeof cmds[i].violation_message) != NULL);
      CHECK (memchr (cmds[i].error_message, '\0',
                     sizeof cmds[i].error_message) != NULL);
      nbdp_client_cmd_cleanup (c, &cmds[i]);
    }
    break;
  }
  case 8: {                     /* raw request, raw reply */
    struct nbdp_request req = {
      .type = arg % 10, .cookie = arg % 4, .offset = off, .count = count,
    };
    struct nbdp_client_reply r;
    nbdp_client_send_request (c, &req, (op >> 4) % 3, NULL, 0);
    /* The caller's bound: the library's own default, or a small one (no
     * bound at all would let the server pick the allocation size, which
     * the caller asked for).
     */
    nbdp_client_recv_reply (c, &r, (op & 0x40) ? c->max_reply_payload : MAX_IO,
                            (op & 0x20) ? arg : -1);
    break;
  }
  case 9: {
    struct nbdp_client_reply r;
    nbdp_client_recv_reply (c, &r, MAX_IO, -1);
    break;
  }
  case 10: nbdp_client_disc (c); break;
  default: nbdp_client_expect_eof (c); break;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fuzz_in in = { data, size };
  size_t slen, got;
  const uint8_t *script;
  struct fuzz_peer peer;
  struct nbdp_client *c;
  unsigned char *buf;
  uint8_t hs;
  int fd;

  slen = fuzz_u8 (&in) % (MAX_SCRIPT + 1);
  script = fuzz_bytes (&in, slen, &got);
  slen = got;
  buf = calloc (1, MAX_IO);
  if (buf == NULL)
    return 0;
  c = nbdp_client_new ();
  if (c == NULL) {
    free (buf);
    return 0;
  }
  fd = fuzz_peer_start (&peer, in.p, in.left);
  if (fd == -1) {
    nbdp_client_free (c);
    free (buf);
    return 0;
  }
  nbdp_client_set_fd (c, fd);
  /* The stream always ends in EOF; the timeout only guards the fuzzer. */
  nbdp_client_set_timeout (c, 10000);

  hs = slen > 0 ? script[0] : 0;
  if (hs & 0x80) {
    /* Step by step: greeting, flags, then options. */
    struct nbdp_greeting g;
    nbdp_client_recv_greeting (c, &g);
    nbdp_client_send_cflags (c, hs & 3);
    for (size_t i = 1; i + 1 < slen; i += 2) {
      if (c->transmission)
        transmission_step (c, script[i], script[i + 1], buf);
      else
        handshake_step (c, script[i], script[i + 1]);
      check_client (c);
    }
  }
  else {
    struct nbdp_handshake_opts o = {
      .no_fixed_newstyle = hs & 1, .no_zeroes = hs & 2,
      .structured_reply = hs & 4, .extended_headers = hs & 8,
      .require = hs & 16, .use_export_name = hs & 32,
      .meta_contexts = queries, .n_meta_contexts = (hs & 64) ? 2 : 0,
    };
    nbdp_client_handshake (c, &o);
    check_client (c);
    for (size_t i = 1; i + 1 < slen; i += 2) {
      transmission_step (c, script[i], script[i + 1], buf);
      check_client (c);
    }
  }
  nbdp_client_free (c);
  fuzz_peer_finish (&peer);
  free (buf);
  return 0;
}
