/* nbd-conformance: unit tests of the NBD URI parser and formatter
 * (common/utils/uri.c): the examples of uri.md, IPv6, percent-decoding,
 * defaults, and URIs that must be refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uri.h"

static void
check_tcp (const char *text, bool tls, const char *host, const char *port,
           const char *export_name)
{
  struct nbdp_uri u;
  char err[256];

  if (nbdp_uri_parse (text, &u, err, sizeof err) == -1)
    fail_msg ("%s: %s", text, err);
  assert_int_equal (u.tls, tls);
  assert_false (u.is_unix);
  assert_string_equal (u.host, host);
  assert_string_equal (u.port, port);
  assert_string_equal (u.export_name, export_name);
  assert_null (u.socket);
  nbdp_uri_free (&u);
}

static void
check_unix (const char *text, bool tls, const char *socket,
            const char *export_name)
{
  struct nbdp_uri u;
  char err[256];

  if (nbdp_uri_parse (text, &u, err, sizeof err) == -1)
    fail_msg ("%s: %s", text, err);
  assert_int_equal (u.tls, tls);
  assert_true (u.is_unix);
  assert_string_equal (u.socket, socket);
  assert_string_equal (u.export_name, export_name);
  nbdp_uri_free (&u);
}

static void
check_bad (const char *text, const char *fragment)
{
  struct nbdp_uri u;
  char err[256];

  if (nbdp_uri_parse (text, &u, err, sizeof err) == 0) {
    nbdp_uri_free (&u);
    fail_msg ("%s: parsed, expected an error", text);
  }
  if (strstr (err, fragment) == NULL)
    fail_msg ("%s: error \"%s\" does not mention \"%s\"", text, err,
              fragment);
  assert_null (u.host);
  assert_null (u.export_name);
}

static void
test_spec_examples (void **state)
{
  check_tcp ("nbd://example.com/disk", false, "example.com", "10809", "disk");
  check_unix ("nbd+unix:///disk?socket=sock", false, "sock", "disk");
  check_tcp ("nbd://example.com/", false, "example.com", "10809", "");
  check_tcp ("nbd://example.com", false, "example.com", "10809", "");
  check_tcp ("nbd://example.com//disk", false, "example.com", "10809",
             "/disk");
  check_tcp ("nbd://example.com/hello%20world", false, "example.com",
             "10809", "hello world");
  check_tcp ("nbd://example.com:10809/export", false, "example.com",
             "10809", "export");
}

static void
test_tcp (void **state)
{
  check_tcp ("nbds://h:1234/e", true, "h", "1234", "e");
  check_tcp ("nbd://[::1]:99/x", false, "::1", "99", "x");
  check_tcp ("nbd://[fe80::1%25eth0]/", false, "fe80::1%eth0", "10809",
             "");
  check_tcp ("nbd://[::1]", false, "::1", "10809", "");
  check_tcp ("nbd://127.0.0.1:0", false, "127.0.0.1", "0", "");
  check_tcp ("nbd://user@host:5/e", false, "host", "5", "e");
  check_tcp ("nbd:///e", false, "localhost", "10809", "e");
  check_tcp ("nbd://host:/e", false, "host", "10809", "e");
  check_tcp ("NBD://host/e", false, "host", "10809", "e");
  check_tcp ("nbd://h/e?tls-type=x509&other=1", false, "h", "10809", "e");
  check_tcp ("nbd://h/a%2Fb%c3%a9#frag", false, "h", "10809", "a/b\xc3\xa9");
}

static void
test_unix (void **state)
{
  check_unix ("nbd+unix:///?socket=/tmp/s", false, "/tmp/s", "");
  check_unix ("nbd+unix://?socket=/tmp/s", false, "/tmp/s", "");
  check_unix ("nbds+unix:///e?socket=/tmp/s", true, "/tmp/s", "e");
  check_unix ("nbd+unix:///e?tls-type=psk&socket=%2Ftmp%2Fa%20b", false,
              "/tmp/a b", "e");
  check_unix ("nbd+unix:///e?socket=/a&socket=/b", false, "/b", "e");
  check_unix ("nbd+unix:///e?socket=/a+b", false, "/a+b", "e");
}

static void
test_bad (void **state)
{
  check_bad ("http://example.com/", "scheme");
  check_bad ("nbd+vsock://1:2/", "scheme");
  check_bad ("example.com", "not an NBD URI");
  check_bad ("", "not an NBD URI");
  check_bad ("nbd+unix:///e", "socket");
  check_bad ("nbd+unix:///e?sock=/x", "socket");
  check_bad ("nbd+unix:///e?socket=", "empty");
  check_bad ("nbd+unix://host/e?socket=/x", "authority");
  check_bad ("nbd://h/%zz", "percent");
  check_bad ("nbd://h/%4", "percent");
  check_bad ("nbd://h/a%00b", "NUL");
  check_bad ("nbd+unix:///?socket=%00/abstract", "NUL");
  check_bad ("nbd://[::1/e", "IPv6");
  check_bad ("nbd://[::1]x/e", "IPv6");
  check_bad ("nbd://h:port/e", "port");
  check_bad ("nbd://h:123456/e", "port");
  check_bad ("nbd://h:70000/e", "port");
}

static void
test_format (void **state)
{
  char *s = nbdp_uri_unix ("my disk", "/tmp/x y/sock");
  struct nbdp_uri u;
  char err[256];

  assert_non_null (s);
  assert_string_equal (s, "nbd+unix:///my%20disk?socket=/tmp/x%20y/sock");
  assert_int_equal (nbdp_uri_parse (s, &u, err, sizeof err), 0);
  assert_string_equal (u.export_name, "my disk");
  assert_string_equal (u.socket, "/tmp/x y/sock");
  nbdp_uri_free (&u);
  free (s);

  s = nbdp_uri_unix (NULL, "/s?&=#+%");
  assert_non_null (s);
  assert_int_equal (nbdp_uri_parse (s, &u, err, sizeof err), 0);
  assert_string_equal (u.export_name, "");
  assert_string_equal (u.socket, "/s?&=#+%");
  nbdp_uri_free (&u);
  free (s);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_spec_examples),
    cmocka_unit_test (test_tcp),
    cmocka_unit_test (test_unix),
    cmocka_unit_test (test_bad),
    cmocka_unit_test (test_format),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
