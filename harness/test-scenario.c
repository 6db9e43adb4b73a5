/* Unit tests of the scenario parser and content model (harness/scenario.c),
 * and a lint of every shipped scenario in harness/scenarios/.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nbd-proto.h"
#include "scenario.h"

static char err[512];

static struct scenario *
parse (const char *text)
{
  err[0] = '\0';
  return scn_parse_string (text, "t", err, sizeof err);
}

static void
test_sizes (void **state)
{
  uint64_t v;

  assert_true (scn_parse_size ("0", &v));
  assert_int_equal (v, 0);
  assert_true (scn_parse_size ("4096", &v));
  assert_int_equal (v, 4096);
  assert_true (scn_parse_size ("16M", &v));
  assert_int_equal (v, 16 << 20);
  assert_true (scn_parse_size ("1k", &v));
  assert_int_equal (v, 1024);
  assert_true (scn_parse_size ("0x1000", &v));
  assert_int_equal (v, 4096);
  assert_true (scn_parse_size ("8E", &v));
  assert_false (scn_parse_size ("16E", &v));     /* overflows 64 bits */
  assert_false (scn_parse_size ("", &v));
  assert_false (scn_parse_size ("-1", &v));
  assert_false (scn_parse_size ("1MB", &v));
  assert_false (scn_parse_size ("M", &v));
  assert_false (scn_parse_size ("99999999999999999999999", &v));
}

static void
test_header_and_steps (void **state)
{
  struct scenario *s = parse (
    "# scenario: demo\n"
    "# summary: a demo\n"
    "# requirements: NBD-A NBD-B, RZ-1\n"
    "# size: 1M\n"
    "# server-flags: SEND_TRIM NBD_FLAG_CAN_MULTI_CONN\n"
    "# server-caps: block-status\n"
    "# note: prose with a colon is ignored\n"
    "\n"
    "connect            # trailing comment\n"
    "expect-size 1M\n"
    "write 0 4096 pattern=0xaa fua\n"
    "read 0 4096 expect=170\n"
    "zero 4K 4K\n"
    "read 4K 4K expect=zero\n"
    "trim 8K 4K\n"
    "map 0 8K expect=data\n"
    "flush\n"
    "connect conn=2\n"
    "read 0 1 expect=0xaa conn=2\n"
    "disconnect conn=2\n"
    "disconnect\n"
    "list expect=matrix\n");

  assert_non_null (s);
  assert_string_equal (s->name, "demo");
  assert_string_equal (s->summary, "a demo");
  assert_int_equal (s->nr_requirements, 3);
  assert_string_equal (s->requirements[2], "RZ-1");
  assert_null (s->requirements[3]);
  assert_int_equal (s->size, 1 << 20);
  assert_int_equal (s->server_flags, NBD_FLAG_SEND_TRIM | NBD_FLAG_CAN_MULTI_CONN);
  assert_int_equal (s->nr_server_caps, 1);
  assert_true (s->verify);
  assert_int_equal (s->max_conn, 2);
  assert_int_equal (s->nr_steps, 14);
  assert_int_equal (s->steps[0].kind, SCN_CONNECT);
  assert_int_equal (s->steps[0].line, 9);
  assert_int_equal (s->steps[2].kind, SCN_WRITE);
  assert_int_equal (s->steps[2].byte, 0xaa);
  assert_true (s->steps[2].fua);
  assert_int_equal (s->steps[3].byte, 170);
  assert_false (s->steps[3].expect_zero);
  assert_int_equal (s->steps[4].off, 4096);
  assert_true (s->steps[5].expect_zero);
  assert_int_equal (s->steps[5].byte, 0);
  assert_int_equal (s->steps[7].map_expect, SCN_MAP_DATA);
  assert_int_equal (s->steps[10].conn, 2);
  assert_string_equal (s->steps[13].name, "matrix");
  assert_string_equal (s->steps[2].text, "write 0 4096 pattern=0xaa fua");
  assert_true (scn_lint (s, err, sizeof err));
  scn_free (s);
}

static void
test_derived_needs (void **state)
{
  struct scenario *s = parse ("connect\nresize 2M\nquery-size\n"
                              "external-resize 4M\nexpect-size 4M max=8M\n");
  assert_non_null (s);
  assert_true (s->server_flags & NBD_FLAG_SEND_RESIZE);
  assert_int_equal (s->nr_server_caps, 1);
  assert_string_equal (s->server_caps[0], "external-resize");
  assert_true (s->verify);      /* resize changes the export */
  assert_int_equal (s->steps[4].size_max, 8 << 20);
  scn_free (s);

  s = parse ("connect\nread 0 512 expect=zero\n");
  assert_non_null (s);
  assert_false (s->verify);
  assert_int_equal (s->server_flags, 0);
  scn_free (s);

  s = parse ("# verify: no\nconnect\nwrite 0 1 pattern=1\n");
  assert_non_null (s);
  assert_false (s->verify);
  scn_free (s);
}

struct bad {
  const char *text;
  const char *msg;              /* substring of the error */
};

static void
test_errors (void **state)
{
  static const struct bad cases[] = {
    { "", "no steps" },
    { "# only a comment\n", "no steps" },
    { "frobnicate\n", "1: unknown step 'frobnicate'" },
    { "connect\nwrite 0 512\n", "2: write needs pattern=BYTE" },
    { "connect\nwrite 0 512 pattern=256\n", "pattern=256" },
    { "connect\nread 0 512\n", "read needs expect" },
    { "connect\nread 0 512 expect=maybe\n", "expect=maybe" },
    { "connect\nread 0 0 expect=1\n", "length must not be 0" },
    { "connect\nread 9223372036854775807 2 expect=1\n", "overflows" },
    { "connect\nread 0 x expect=1\n", "bad number 'x'" },
    { "connect\nwrite 0\n", "needs 2 numbers" },
    { "connect\nexpect-size\n", "needs 1 number" },
    { "connect\nexpect-size 2M max=1M\n", "max=1M" },
    { "connect\nflush bogus\n", "unexpected argument 'bogus'" },
    { "connect\nread 0 1 expect=1 fua\n", "unexpected argument 'fua'" },
    { "read 0 1 expect=1\n", "connection 1 is not open" },
    { "connect\nconnect\n", "2: connection 1 is already open" },
    { "disconnect\n", "connection 1 is not open" },
    { "connect conn=0\n", "conn=0" },
    { "connect conn=65\n", "conn=65" },
    { "# size: lots\nconnect\n", "size: bad size" },
    { "# server-flags: SEND_MAGIC\nconnect\n", "unknown flag 'SEND_MAGIC'" },
    { "# verify: maybe\nconnect\n", "verify: expected yes or no" },
    { "connect\nmap 0 1 expect=holes\n", "expect=holes" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct scenario *s = parse (cases[i].text);
    if (s != NULL || strstr (err, cases[i].msg) == NULL)
      fail_msg ("case %zu (%s): expected error containing '%s', got '%s'",
                i, cases[i].text, cases[i].msg, s ? "(parsed)" : err);
  }
}

static void
check_model (const struct scn_model *m, size_t n, const struct scn_extent *want)
{
  assert_int_equal (m->nr_ext, n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal (m->ext[i].off, want[i].off);
    assert_int_equal (m->ext[i].len, want[i].len);
    assert_int_equal (m->ext[i].byte, want[i].byte);
  }
}

static void
test_model (void **state)
{
  struct scn_model m;
  struct scenario *s = parse (
    "# size: 64K\n"
    "connect\n"
    "write 4K 8K pattern=1\n"       /* [4K,12K)=1 */
    "write 8K 8K pattern=2\n"       /* [8K,16K)=2 */
    "zero 10K 1K\n"                 /* [10K,11K)=0 */
    "trim 60K 8K\n"                 /* clamped to [60K,64K) unknown */
    "write 0 4K pattern=0\n");      /* merges with leading zeroes */
  assert_non_null (s);
  assert_int_equal (scn_model_run (&m, s), 0);
  {
    const struct scn_extent want[] = {
      { 0, 4096, 0 }, { 4096, 4096, 1 }, { 8192, 2048, 2 },
      { 10240, 1024, 0 }, { 11264, 5120, 2 }, { 16384, 45056, 0 },
      { 61440, 4096, SCN_UNKNOWN },
    };
    check_model (&m, sizeof want / sizeof want[0], want);
  }
  scn_model_free (&m);
  scn_free (s);

  /* Grow, shrink and a write past the end (auto-grow). */
  s = parse ("# size: 8K\nconnect\nwrite 0 8K pattern=7\nresize 16K\n"
             "resize 4K\nwrite 8K 4K pattern=9\nresize 20K max=24K\n");
  assert_non_null (s);
  assert_int_equal (scn_model_run (&m, s), 0);
  {
    const struct scn_extent want[] = {
      { 0, 4096, 7 }, { 4096, 4096, SCN_UNKNOWN }, { 8192, 4096, 9 },
      { 12288, 8192, SCN_UNKNOWN },
    };
    check_model (&m, sizeof want / sizeof want[0], want);
  }
  assert_int_equal (m.size, 20480);
  assert_false (m.size_known);
  assert_int_equal (m.size_max, 24576);
  scn_model_free (&m);
  scn_free (s);
}

static void
test_lint (void **state)
{
  struct scenario *s;

  s = parse ("# size: 1M\nconnect\nwrite 0 512 pattern=1\nread 0 1K expect=1\n");
  assert_non_null (s);
  assert_false (scn_lint (s, err, sizeof err));
  assert_non_null (strstr (err, "4: read expects 0x01 but the model has 0x00 at 512"));
  scn_free (s);

  s = parse ("# size: 1M\nconnect\nexpect-size 2M\n");
  assert_non_null (s);
  assert_false (scn_lint (s, err, sizeof err));
  scn_free (s);

  /* Trimmed bytes may read either way. */
  s = parse ("connect\nwrite 0 1K pattern=3\ntrim 0 1K\nread 0 1K expect=zero\n");
  assert_non_null (s);
  assert_true (scn_lint (s, err, sizeof err));
  scn_free (s);
}

static void
test_print (void **state)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  struct scenario *s = parse ("# size: 4K\n"
                              "connect\nwrite 1 2 pattern=3 fua\tconn=1\n"
                              "read 1 2 expect=zero\nmap 0 4 expect=data\n"
                              "list expect=x\nwrite 4K 1 pattern=1 fua\n");

  assert_non_null (s);
  assert_non_null (fp);
  scn_print_steps (s, fp);
  fclose (fp);
  assert_string_equal (buf,
    "2\tconnect\t1\t0\t0\t0\t0\t-1\t-\t-\tconnect\n"
    "3\twrite\t1\t1\t2\t0\t0\t3\tfua\t-\twrite 1 2 pattern=3 fua conn=1\n"
    "4\tread\t1\t1\t2\t0\t0\t0\tzero\t-\tread 1 2 expect=zero\n"
    "5\tmap\t1\t0\t4\t0\t0\t-1\tdata\t-\tmap 0 4 expect=data\n"
    "6\tlist\t1\t0\t0\t0\t0\t-1\t-\tx\tlist expect=x\n"
    "7\twrite\t1\t4096\t1\t0\t0\t1\tgrow,fua\t-\twrite 4K 1 pattern=1 fua\n");
  free (buf);
  scn_free (s);
}

/* Every shipped scenario parses and agrees with its own model. */
static void
test_shipped (void **state)
{
  const char *top = getenv ("NBDP_TOP");
  char dir[4096];
  DIR *d;
  struct dirent *de;
  unsigned n = 0;

  snprintf (dir, sizeof dir, "%s/harness/scenarios", top ? top : ".");
  d = opendir (dir);
  if (!d)
    skip ();
  while ((de = readdir (d)) != NULL) {
    char path[8192];
    struct scenario *s;
    size_t l = strlen (de->d_name);
    if (l < 5 || strcmp (de->d_name + l - 4, ".scn") != 0)
      continue;
    snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
    s = scn_parse_file (path, err, sizeof err);
    if (!s)
      fail_msg ("%s", err);
    if (s->nr_requirements == 0)
      fail_msg ("%s: no '# requirements:' header", path);
    if (!scn_lint (s, err, sizeof err))
      fail_msg ("%s:%s", path, err);
    scn_free (s);
    n++;
  }
  closedir (d);
  assert_true (n > 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sizes),
    cmocka_unit_test (test_header_and_steps),
    cmocka_unit_test (test_derived_needs),
    cmocka_unit_test (test_errors),
    cmocka_unit_test (test_model),
    cmocka_unit_test (test_lint),
    cmocka_unit_test (test_print),
    cmocka_unit_test (test_shipped),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
