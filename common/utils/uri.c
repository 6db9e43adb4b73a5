/* nbd-conformance: parse and format NBD URIs (shared/upstream/uri.md).
 *
 *   nbd://[user@]host[:port][/export]      TCP
 *   nbds://...                             TCP with TLS required
 *   nbd+unix:///[export]?socket=PATH       Unix socket
 *   nbds+unix:///[export]?socket=PATH      Unix socket with TLS required
 *
 * Choices where uri.md leaves them to the client: a missing TCP authority
 * means localhost; an authority on a +unix URI is an error; userinfo is
 * accepted and ignored; unknown query parameters are ignored; abstract
 * socket names (socket=%00...) and export names containing NUL are refused
 * because they cannot be passed on as C strings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

static void set_err (char *err, size_t errlen, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static void
set_err (char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if (err == NULL || errlen == 0)
    return;
  va_start (ap, fmt);
  vsnprintf (err, errlen, fmt, ap);
  va_end (ap);
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..len) into a new string.  Returns NULL on a bad
 * escape (*what says which) or a decoded NUL, or on ENOMEM.
 */
static char *
decode (const char *s, size_t len, const char **what)
{
  char *out = malloc (len + 1);
  size_t i, j = 0;

  if (out == NULL) {
    *what = "out of memory";
    return NULL;
  }
  for (i = 0; i < len; i++) {
    if (s[i] == '%') {
      int hi, lo;
      if (len - i < 3 || (hi = hexval (s[i + 1])) < 0 ||
          (lo = hexval (s[i + 2])) < 0) {
        *what = "bad percent-encoding";
        free (out);
        return NULL;
      }
      if (hi == 0 && lo == 0) {
        *what = "encoded NUL (%00) is not supported";
        free (out);
        return NULL;
      }
      out[j++] = (char) (hi * 16 + lo);
      i += 2;
    }
    else
      out[j++] = s[i];
  }
  out[j] = '\0';
  return out;
}

static bool
all_digits (const char *s, size_t len)
{
  size_t i;

  if (len == 0)
    return false;
  for (i = 0; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

/* Parse the authority [user@]host[:port] of a TCP URI. */
static int
parse_authority (const char *a, size_t len, struct nbdp_uri *uri,
                 char *err, size_t errlen)
{
  const char *at, *host, *end = a + len;
  const char *port = NULL;
  size_t hostlen;
  const char *what = NULL;

  at = memrchr (a, '@', len);
  host = at ? at + 1 : a;

  if (host < end && *host == '[') {
    const char *close = memchr (host, ']', end - host);
    if (close == NULL) {
      if (err && errlen > 0)
        snprintf (err, errlen, "unterminated IPv6 literal in '%.*s'",
                  (int) len, a);
      return -1;
    }
    hostlen = close - (host + 1);
    if (hostlen == 0) {
      set_err (err, errlen, "empty IPv6 literal%s", "");
      return -1;
    }
    /* A zone identifier arrives as %25 (RFC 6874). */
    uri->host = decode (host + 1, hostlen, &what);
    if (uri->host == NULL) {
      set_err (err, errlen, "IPv6 address: %s", what);
      return -1;
    }
    if (close + 1 < end) {
      if (close[1] != ':') {
        if (err && errlen > 0)
          snprintf (err, errlen, "unexpected text after IPv6 literal in '%.*s'",
                    (int) len, a);
        return -1;
      }
      port = close + 2;
    }
  }
  else {
    const char *colon = memchr (host, ':', end - host);
    const char *hend = colon ? colon : end;
    if (colon)
      port = colon + 1;
    hostlen = hend - host;
    if (hostlen == 0)
      uri->host = strdup ("localhost");
    else {
      uri->host = decode (host, hostlen, &what);
      if (uri->host == NULL) {
        set_err (err, errlen, "host name: %s", what);
        return -1;
      }
    }
  }
  if (uri->host == NULL) {
    set_err (err, errlen, "%s", strerror (ENOMEM));
    return -1;
  }

  if (port == NULL || port == end)
    uri->port = strdup ("10809");
  else {
    if (!all_digits (port, end - port) || end - port > 5 ||
        atoi (port) > 65535) {
      if (err && errlen > 0)
        snprintf (err, errlen, "bad port '%.*s' (expected a number 0-65535)",
                  (int) (end - port), port);
      return -1;
    }
    uri->port = strndup (port, end - port);
  }
  if (uri->port == NULL) {
    set_err (err, errlen, "%s", strerror (ENOMEM));
    return -1;
  }
  return 0;
}

/* Walk the query string; returns 0 or -1. */
static int
parse_query (const char *q, size_t len, struct nbdp_uri *uri,
             char *err, size_t errlen)
{
  const char *p = q, *end = q + len;

  while (p < end) {
    const char *amp = memchr (p, '&', end - p);
    const char *pend = amp ? amp : end;
    const char *eq = memchr (p, '=', pend - p);
    const char *what = NULL;

    if (eq && eq - p == 6 && strncmp (p, "socket", 6) == 0) {
      char *s = decode (eq + 1, pend - (eq + 1), &what);
      if (s == NULL) {
        set_err (err, errlen, "socket parameter: %s", what);
        return -1;
      }
      if (s[0] == '\0') {
        free (s);
        set_err (err, errlen, "socket parameter is empty%s", "");
        return -1;
      }
      free (uri->socket);
      uri->socket = s;
    }
    /* tls-type, tls-hostname, tls-verify-peer and anything else: the
     * raw client does not do TLS, and uri.md lets unknown ones pass.
     */
    p = pend + (amp ? 1 : 0);
  }
  return 0;
}

int
nbdp_uri_parse (const char *text, struct nbdp_uri *uri, char *err,
                size_t errlen)
{
  const char *p, *auth, *auth_end, *path, *path_end, *query = NULL;
  const char *end;
  const char *what = NULL;
  size_t slen;

  memset (uri, 0, sizeof *uri);
  if (err && errlen > 0)
    err[0] = '\0';

  p = strstr (text, "://");
  if (p == NULL) {
    set_err (err, errlen, "'%s' is not an NBD URI (expected scheme://...)",
             text);
    return -1;
  }
  slen = p - text;
  if (slen == 3 && strncasecmp (text, "nbd", 3) == 0)
    ;
  else if (slen == 4 && strncasecmp (text, "nbds", 4) == 0)
    uri->tls = true;
  else if (slen == 8 && strncasecmp (text, "nbd+unix", 8) == 0)
    uri->is_unix = true;
  else if (slen == 9 && strncasecmp (text, "nbds+unix", 9) == 0)
    uri->tls = uri->is_unix = true;
  else {
    if (err && errlen > 0)
      snprintf (err, errlen,
                "unsupported URI scheme '%.*s' (expected nbd, nbds, "
                "nbd+unix or nbds+unix)", (int) slen, text);
    return -1;
  }

  /* Drop a fragment: it has no meaning for NBD. */
  end = strchr (text, '#');
  if (end == NULL)
    end = text + strlen (text);

  auth = p + 3;
  auth_end = auth;
  while (auth_end < end && *auth_end != '/' && *auth_end != '?')
    auth_end++;
  path = auth_end;
  path_end = path;
  while (path_end < end && *path_end != '?')
    path_end++;
  if (path_end < end)
    query = path_end + 1;

  if (uri->is_unix) {
    if (auth_end != auth) {
      if (err && errlen > 0)
        snprintf (err, errlen,
                  "a +unix URI must not have an authority (found '%.*s'; "
                  "expected nbd+unix:///EXPORT?socket=PATH)",
                  (int) (auth_end - auth), auth);
      goto fail;
    }
  }
  else if (parse_authority (auth, auth_end - auth, uri, err, errlen) == -1)
    goto fail;

  /* Export name: the path minus its leading '/'. */
  if (path < path_end)
    path++;
  uri->export_name = decode (path, path_end - path, &what);
  if (uri->export_name == NULL) {
    set_err (err, errlen, "export name: %s", what);
    goto fail;
  }

  if (query && parse_query (query, end - query, uri, err, errlen) == -1)
    goto fail;

  if (uri->is_unix && uri->socket == NULL) {
    set_err (err, errlen, "%s: a +unix URI needs a socket=PATH parameter",
             text);
    goto fail;
  }
  return 0;

 fail:
  nbdp_uri_free (uri);
  return -1;
}

void
nbdp_uri_free (struct nbdp_uri *uri)
{
  free (uri->host);
  free (uri->port);
  free (uri->socket);
  free (uri->export_name);
  uri->host = uri->port = uri->socket = uri->export_name = NULL;
}

/* Append s percent-encoded; keep unreserved characters and those in keep. */
static void
encode_into (FILE *f, const char *s, const char *keep)
{
  for (; *s; s++) {
    unsigned char ch = *s;
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
        (ch >= '0' && ch <= '9') || strchr ("-._~", ch) ||
        (ch && strchr (keep, ch)))
      fputc (ch, f);
    else
      fprintf (f, "%%%02X", ch);
  }
}

char *
nbdp_uri_unix (const char *export_name, const char *socket_path)
{
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&out, &len);

  if (f == NULL)
    return NULL;
  fputs ("nbd+unix:///", f);
  encode_into (f, export_name ? export_name : "", "/:@!$'()*,;");
  fputs ("?socket=", f);
  encode_into (f, socket_path, "/:@!$'()*,;");
  if (fclose (f) == EOF) {
    free (out);
    return NULL;
  }
  return out;
}
