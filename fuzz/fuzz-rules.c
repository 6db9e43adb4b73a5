/* nbd-conformance: fuzz target for the rule engine (common/rules.c).
 * The input is a session (what was negotiated) followed by a script of
 * events: greetings, options sent, option replies, requests sent and
 * checked, reply headers and chunks with their payloads.  The engine must
 * judge anything without reading outside the payload it is given (each
 * payload is copied into a buffer of exactly its declared length), and
 * must keep its tables bounded.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "rules.h"

#define CHECK(cond) do { if (!(cond)) abort (); } while (0)

static const char *const ctx_names[] = {
  "base:allocation", "qemu:dirty-bitmap:bitmap0", "base:", "x",
  "qemu:allocation-depth",
};

/* A payload of exactly len bytes (NULL if the input does not have them
 * or the script asks for no payload).
 */
static unsigned char *
take_payload (struct fuzz_in *in, uint64_t len, bool want)
{
  unsigned char *p;
  const uint8_t *src;
  size_t got;

  if (!want || len > in->left || len > 1024 * 1024)
    return NULL;
  p = malloc (len ? len : 1);
  if (p == NULL)
    return NULL;
  src = fuzz_bytes (in, len, &got);
  memcpy (p, src, got);
  return p;
}

static void
check_list (const struct nbdp_violations *vs)
{
  CHECK (vs->n <= NBDP_MAX_VIOLATIONS);
  for (size_t i = 0; i < vs->n; i++) {
    CHECK (vs->v[i].id != NULL);
    CHECK (memchr (vs->v[i].msg, '\0', sizeof vs->v[i].msg) != NULL);
  }
  (void) nbdp_violations_count (vs, NBDP_MUST);
  (void) nbdp_violations_count (vs, NBDP_SHOULD);
}

static uint64_t
small_cookie (struct fuzz_in *in)
{
  uint8_t b = fuzz_u8 (in);
  /* Mostly a handful of cookies, so that replies meet their requests. */
  return b < 240 ? b % 8 : fuzz_u64 (in);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fuzz_in in = { data, size };
  struct nbdp_session s;
  struct nbdp_violations vs;
  uint8_t f;
  unsigned steps = 0;

  nbdp_session_init (&s);
  f = fuzz_u8 (&in);
  s.fixed_newstyle = f & 1;
  s.no_zeroes = f & 2;
  s.structured = f & 4;
  s.extended = f & 8;
  s.transmission = f & 16;
  s.have_block_size = f & 32;
  s.export_size = fuzz_u64 (&in);
  s.eflags = fuzz_u16 (&in);
  if (s.have_block_size) {
    s.min_block = fuzz_u32 (&in);
    s.pref_block = fuzz_u32 (&in);
    s.max_payload = fuzz_u32 (&in);
  }
  s.nr_contexts = fuzz_u8 (&in) % 4;
  for (size_t i = 0; i < s.nr_contexts; i++) {
    s.context_ids[i] = fuzz_u8 (&in) % 4;
    strcpy (s.context_names[i],
            ctx_names[fuzz_u8 (&in) % (sizeof ctx_names / sizeof ctx_names[0])]);
  }

  while (in.left > 0 && steps++ < 4096) {
    uint8_t op = fuzz_u8 (&in);

    nbdp_violations_clear (&vs);
    switch (op % 8) {
    case 0: {                   /* greeting */
      unsigned char g[18] = { 0 };
      size_t got;
      const uint8_t *p = fuzz_bytes (&in, 18, &got);
      bool old;
      memcpy (g, p, got);
      nbdp_rules_check_greeting (&s, g, &old, &vs);
      break;
    }
    case 1: {                   /* option sent */
      uint32_t opt = fuzz_u8 (&in) < 200 ? fuzz_u8 (&in) % 16 : fuzz_u32 (&in);
      uint32_t len = fuzz_u16 (&in) % 4096;
      unsigned char *p = take_payload (&in, len, true);
      nbdp_rules_option_sent (&s, opt, p, p ? len : 0);
      free (p);
      break;
    }
    case 2: {                   /* option reply */
      unsigned char h[NBDP_OPTION_REPLY_SIZE] = { 0 };
      struct nbdp_option_reply r;
      unsigned char *p;
      uint8_t how = fuzz_u8 (&in);
      size_t got;
      const uint8_t *src = fuzz_bytes (&in, sizeof h, &got);
      memcpy (h, src, got);
      nbdp_decode_option_reply (h, &r);
      if (how & 1)
        r.magic = NBD_REP_MAGIC;
      if (how & 2)
        r.option = s.opt.option;
      if (how & 4)
        r.length %= 64;
      p = take_payload (&in, r.length, !(how & 8));
      (void) nbdp_rules_check_option_reply (&s, &r, p, &vs);
      free (p);
      break;
    }
    case 3: {                   /* a request sent (and checked) */
      struct nbdp_request req;
      uint8_t how = fuzz_u8 (&in);
      req.magic = how & 1 ? fuzz_u32 (&in)
        : s.extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
      req.flags = fuzz_u16 (&in);
      req.type = how & 2 ? fuzz_u16 (&in) : fuzz_u8 (&in) % 10;
      req.cookie = small_cookie (&in);
      req.offset = how & 4 ? fuzz_u64 (&in) : fuzz_u16 (&in);
      req.count = how & 8 ? fuzz_u64 (&in) : fuzz_u16 (&in);
      nbdp_rules_check_request (&s, &req, &vs);
      if (!(how & 16))
        nbdp_rules_request_sent (&s, &req);
      break;
    }
    case 4: case 5: case 6: {   /* a reply or a chunk */
      struct nbdp_reply h;
      uint8_t how = fuzz_u8 (&in);
      unsigned char *p;
      enum nbdp_rules_progress pr;

      memset (&h, 0, sizeof h);
      switch (how % 4) {
      case 0:
        h.kind = NBDP_REPLY_SIMPLE;
        h.magic = NBD_SIMPLE_REPLY_MAGIC;
        h.error = fuzz_u8 (&in) < 128 ? 0 : fuzz_u32 (&in);
        break;
      case 1:
        h.kind = NBDP_REPLY_STRUCTURED;
        h.magic = NBD_STRUCTURED_REPLY_MAGIC;
        break;
      case 2:
        h.kind = NBDP_REPLY_EXTENDED;
        h.magic = NBD_EXTENDED_REPLY_MAGIC;
        break;
      default:
        h.kind = (enum nbdp_reply_kind) 3;   /* an unknown magic */
        h.magic = fuzz_u32 (&in);
        break;
      }
      h.cookie = small_cookie (&in);
      if (h.kind != NBDP_REPLY_SIMPLE) {
        uint8_t t = fuzz_u8 (&in);
        h.flags = t & 0x80 ? fuzz_u16 (&in) : (t & 1);
        /* Mostly known chunk types. */
        switch ((t >> 1) % 10) {
        case 0: h.type = NBD_REPLY_TYPE_NONE; break;
        case 1: h.type = NBD_REPLY_TYPE_OFFSET_DATA; break;
        case 2: h.type = NBD_REPLY_TYPE_OFFSET_HOLE; break;
        case 3: h.type = NBD_REPLY_TYPE_BLOCK_STATUS; break;
        case 4: h.type = NBD_REPLY_TYPE_BLOCK_STATUS_EXT; break;
        case 5: h.type = NBD_REPLY_TYPE_ERROR; break;
        case 6: h.type = NBD_REPLY_TYPE_ERROR_OFFSET; break;
        case 7: h.type = NBD_REPLY_TYPE_ERR (fuzz_u8 (&in)); break;
        default: h.type = fuzz_u16 (&in); break;
        }
        if (h.kind == NBDP_REPLY_EXTENDED) {
          h.offset = how & 0x10 ? fuzz_u64 (&in) : fuzz_u16 (&in);
          h.length = how & 0x20 ? fuzz_u64 (&in) : fuzz_u16 (&in) % 512;
        }
        else
          h.length = how & 0x20 ? fuzz_u32 (&in) : fuzz_u16 (&in) % 512;
      }
      if (h.kind == NBDP_REPLY_SIMPLE) {
        /* Data of a simple reply is not judged: no payload. */
        p = NULL;
      }
      else
        p = take_payload (&in, h.length, !(how & 0x40));
      pr = nbdp_rules_check_reply (&s, &h, p, &vs);
      CHECK (pr == NBDP_RULES_MORE || pr == NBDP_RULES_FINAL);
      free (p);
      break;
    }
    case 7: {                   /* flag and block size judgements */
      uint16_t ef = fuzz_u16 (&in);
      uint32_t mn = fuzz_u32 (&in), pf = fuzz_u32 (&in), mx = fuzz_u32 (&in);
      nbdp_rules_check_eflags (&s, ef, &vs);
      nbdp_rules_check_block_size (mn, pf, mx, s.export_size, &vs);
      (void) nbdp_session_max_payload (&s);
      (void) nbdp_is_power_of_2 (fuzz_u64 (&in));
      break;
    }
    }
    check_list (&vs);
    CHECK (s.nr_contexts <= NBDP_MAX_CONTEXTS);
    CHECK (s.nr_inflight <= s.cap_inflight);
    CHECK (s.nr_recent <= NBDP_RECENT_DONE);
  }
  nbdp_session_free (&s);
  return 0;
}
