/* nbd-spy: unit tests of the connection decoder (decode.c).  A scripted
 * conversation is fed whole and then one byte at a time: the transcript
 * must be the same (the stream is cut at every possible place), with no
 * violation; faults in the script give the expected IDs; random bytes in
 * any state never crash and end in raw pass-through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nbd-proto.h"
#include "nbd-draft.h"
#include "codec.h"
#include "spy.h"

/* ---- a recording sink ---------------------------------------------- */

struct rec {
  char text[65536];
  size_t len;
  char ids[4096];
  unsigned nviol;
};

static void
rec_line (void *opaque, unsigned conn, enum spy_dir dir, const char *text)
{
  struct rec *r = opaque;
  int n = snprintf (r->text + r->len, sizeof r->text - r->len, "%d %s\n",
                    (int) dir, text);
  if (n > 0 && (size_t) n < sizeof r->text - r->len)
    r->len += n;
}

static void
rec_violation (void *opaque, unsigned conn, enum spy_dir dir, const char *id,
               bool must, const char *msg)
{
  struct rec *r = opaque;
  size_t l = strlen (r->ids);
  snprintf (r->ids + l, sizeof r->ids - l, "%s ", id);
  r->nviol++;
}

/* ---- a script: messages with their direction ----------------------- */

struct msg {
  enum spy_dir dir;
  unsigned char b[256];
  size_t len;
};

struct script {
  struct msg m[64];
  size_t n;
};

static unsigned char *
add (struct script *s, enum spy_dir dir, size_t len)
{
  struct msg *m = &s->m[s->n++];
  assert_true (s->n <= 64);
  assert_true (len <= sizeof m->b);
  m->dir = dir;
  m->len = len;
  memset (m->b, 0, len);
  return m->b;
}

static void
greeting (struct script *s)
{
  unsigned char *p = add (s, SPY_SERVER, 18);
  nbdp_put64 (p, NBD_MAGIC);
  nbdp_put64 (p + 8, NBD_NEW_VERSION);
  nbdp_put16 (p + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  p = add (s, SPY_CLIENT, 4);
  nbdp_put32 (p, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
}

static void
option (struct script *s, uint32_t opt, const void *data, uint32_t len)
{
  unsigned char *p = add (s, SPY_CLIENT, 16 + len);
  nbdp_put64 (p, NBD_NEW_VERSION);
  nbdp_put32 (p + 8, opt);
  nbdp_put32 (p + 12, len);
  if (len)
    memcpy (p + 16, data, len);
}

static void
rep (struct script *s, uint32_t opt, uint32_t type, const void *data,
     uint32_t len)
{
  unsigned char *p = add (s, SPY_SERVER, 20 + len);
  nbdp_put64 (p, NBD_REP_MAGIC);
  nbdp_put32 (p + 8, opt);
  nbdp_put32 (p + 12, type);
  nbdp_put32 (p + 16, len);
  if (len)
    memcpy (p + 20, data, len);
}

static void
go (struct script *s, uint16_t eflags)
{
  unsigned char d[6] = { 0 }, ie[12];

  option (s, NBD_OPT_GO, d, 6);
  nbdp_put16 (ie, NBD_INFO_EXPORT);
  nbdp_put64 (ie + 2, 1 << 20);
  nbdp_put16 (ie + 10, eflags);
  rep (s, NBD_OPT_GO, NBD_REP_INFO, ie, 12);
  rep (s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
}

static void
request (struct script *s, uint16_t type, uint64_t cookie, uint64_t off,
         uint32_t count, size_t payload)
{
  unsigned char *p = add (s, SPY_CLIENT, 28 + payload);
  nbdp_put32 (p, NBD_REQUEST_MAGIC);
  nbdp_put16 (p + 6, type);
  nbdp_put64 (p + 8, cookie);
  nbdp_put64 (p + 16, off);
  nbdp_put32 (p + 24, count);
  memset (p + 28, 0xab, payload);
}

static void
simple (struct script *s, uint64_t cookie, size_t data)
{
  unsigned char *p = add (s, SPY_SERVER, 16 + data);
  nbdp_put32 (p, NBD_SIMPLE_REPLY_MAGIC);
  nbdp_put64 (p + 8, cookie);
}

static void
chunk (struct script *s, uint16_t flags, uint16_t type, uint64_t cookie,
       const void *data, uint32_t len)
{
  unsigned char *p = add (s, SPY_SERVER, 20 + len);
  nbdp_put32 (p, NBD_STRUCTURED_REPLY_MAGIC);
  nbdp_put16 (p + 4, flags);
  nbdp_put16 (p + 6, type);
  nbdp_put64 (p + 8, cookie);
  nbdp_put32 (p + 16, len);
  if (len)
    memcpy (p + 20, data, len);
}

/* Feed the script whole (step 0) or step bytes at a time. */
static void
run (const struct script *s, size_t step, struct rec *r)
{
  struct spy_config cfg = { 0 };
  struct spy_sink sink = { rec_line, rec_violation, r };
  struct spy_conn *c;

  memset (r, 0, sizeof *r);
  c = spy_conn_new (1, &cfg, &sink);
  assert_non_null (c);
  for (size_t i = 0; i < s->n; i++) {
    const struct msg *m = &s->m[i];
    size_t k = step ? step : m->len;
    for (size_t o = 0; o < m->len; o += k)
      spy_conn_feed (c, m->dir, m->b + o, m->len - o < k ? m->len - o : k);
  }
  spy_conn_eof (c, SPY_CLIENT);
  spy_conn_eof (c, SPY_SERVER);
  spy_conn_free (c);
}

/* ---- tests ---------------------------------------------------------- */

static void
clean_script (struct script *s)
{
  unsigned char d[8 + 512];

  memset (s, 0, sizeof *s);
  greeting (s);
  option (s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  rep (s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  go (s, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
  request (s, NBD_CMD_WRITE, 1, 0, 100, 100);
  simple (s, 1, 0);
  request (s, NBD_CMD_READ, 2, 0, 200, 0);
  memset (d, 0, sizeof d);
  chunk (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, 2, d, 208);
  request (s, NBD_CMD_FLUSH, 3, 0, 0, 0);
  chunk (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 3, NULL, 0);
  request (s, NBD_CMD_DISC, 4, 0, 0, 0);
}

static void
test_clean_any_split (void **state)
{
  static struct script s;
  static struct rec whole, bytewise, sevens;

  clean_script (&s);
  run (&s, 0, &whole);
  assert_int_equal (whole.nviol, 0);
  assert_non_null (strstr (whole.text, "2 transmission: export size 1048576"));
  assert_non_null (strstr (whole.text, "0 request NBD_CMD_WRITE flags 0 "
                           "cookie 1 offset 0 length 100 (compact) payload "
                           "100 bytes: ab ab"));
  assert_non_null (strstr (whole.text, "1 structured chunk "
                           "NBD_REPLY_TYPE_OFFSET_DATA flags DONE cookie 2 "
                           "length 208 to NBD_CMD_READ: offset 0 data 200 "
                           "bytes"));
  assert_non_null (strstr (whole.text, "0 request NBD_CMD_DISC"));
  assert_null (strstr (whole.text, "raw pass-through"));
  run (&s, 1, &bytewise);
  assert_string_equal (whole.text, bytewise.text);
  run (&s, 7, &sevens);
  assert_string_equal (whole.text, sevens.text);
}

static void
test_simple_read_data (void **state)
{
  static struct script s;
  static struct rec r;

  memset (&s, 0, sizeof s);
  greeting (&s);
  go (&s, NBD_FLAG_HAS_FLAGS);
  request (&s, NBD_CMD_READ, 9, 512, 64, 0);
  simple (&s, 9, 64);           /* 64 bytes of data follow */
  request (&s, NBD_CMD_DISC, 10, 0, 0, 0);
  run (&s, 3, &r);
  assert_int_equal (r.nviol, 0);
  assert_non_null (strstr (r.text, "1 simple reply cookie 9 error "
                           "NBD_SUCCESS to NBD_CMD_READ data 64 bytes"));
  assert_non_null (strstr (r.text, "0 request NBD_CMD_DISC"));
}

static void
test_faults (void **state)
{
  static struct script s;
  static struct rec r;
  unsigned char h[12];

  /* A hole of size 0 and a chunk flag that is not DONE. */
  memset (&s, 0, sizeof s);
  greeting (&s);
  option (&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  rep (&s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  go (&s, NBD_FLAG_HAS_FLAGS);
  request (&s, NBD_CMD_READ, 1, 0, 4096, 0);
  nbdp_put64 (h, 0);
  nbdp_put32 (h + 8, 0);
  chunk (&s, 0, NBD_REPLY_TYPE_OFFSET_HOLE, 1, h, 12);
  nbdp_put32 (h + 8, 4096);
  chunk (&s, 3, NBD_REPLY_TYPE_OFFSET_HOLE, 1, h, 12);
  run (&s, 0, &r);
  assert_non_null (strstr (r.ids, "SR-HOLE-5"));
  assert_non_null (strstr (r.ids, "FLAG-REPLY-3"));

  /* Client side: a command the server did not advertise, past the end. */
  memset (&s, 0, sizeof s);
  greeting (&s);
  go (&s, NBD_FLAG_HAS_FLAGS);
  request (&s, NBD_CMD_TRIM, 1, 0, 4096, 0);
  request (&s, NBD_CMD_READ, 2, 1 << 20, 1, 0);
  run (&s, 0, &r);
  assert_non_null (strstr (r.ids, "CMD-TRIM-5"));
  assert_non_null (strstr (r.ids, "SIZE-33"));

  /* A size chunk with a bad length where RESIZE was never negotiated. */
  memset (&s, 0, sizeof s);
  greeting (&s);
  option (&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
  rep (&s, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
  go (&s, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
  request (&s, NBD_CMD_FLUSH, 5, 0, 0, 0);
  {
    unsigned char z[20] = { 0 };
    chunk (&s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_RESIZE, 5, z, 20);
  }
  run (&s, 0, &r);
  assert_non_null (strstr (r.ids, "RZ-CHUNK-1"));
  assert_null (strstr (r.ids, "SR-TYPE-5"));
  assert_null (strstr (r.text, "raw pass-through"));
}

static void
test_random_bytes (void **state)
{
  struct spy_config cfg = { 0 };
  static struct rec r;
  struct spy_sink sink = { rec_line, rec_violation, &r };
  static struct script s;
  unsigned seed = 1;

  /* Noise after every prefix of a clean conversation. */
  clean_script (&s);
  for (size_t cut = 0; cut <= s.n; cut++) {
    for (int round = 0; round < 4; round++) {
      struct spy_conn *c;
      unsigned char noise[300];

      memset (&r, 0, sizeof r);
      c = spy_conn_new (1, &cfg, &sink);
      assert_non_null (c);
      for (size_t i = 0; i < cut; i++)
        spy_conn_feed (c, s.m[i].dir, s.m[i].b, s.m[i].len);
      for (size_t k = 0; k < sizeof noise; k++) {
        seed = seed * 1103515245 + 12345;
        noise[k] = seed >> 16;
      }
      spy_conn_feed (c, round & 1 ? SPY_SERVER : SPY_CLIENT, noise,
                     sizeof noise);
      spy_conn_feed (c, round & 1 ? SPY_CLIENT : SPY_SERVER, noise,
                     sizeof noise);
      spy_conn_eof (c, SPY_CLIENT);
      spy_conn_eof (c, SPY_SERVER);
      {
        struct spy_stats st;
        spy_conn_stats (c, &st);
        assert_int_equal (st.bytes[SPY_CLIENT] + st.bytes[SPY_SERVER] >=
                          2 * sizeof noise, true);
      }
      spy_conn_free (c);
    }
  }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_clean_any_split),
    cmocka_unit_test (test_simple_read_data),
    cmocka_unit_test (test_faults),
    cmocka_unit_test (test_random_bytes),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
