/* nbd-conformance: the raw NBD client (see client.h).  Each handshake step
 * is its own call; sends take any bytes; receives bound every length that
 * comes off the wire before using it and time out on a silent server.  The
 * checked command layer (nbdp_client_cmd_*) reassembles structured and
 * extended replies and reports every protocol violation it sees as a
 * message naming what was sent, what came back and what was expected.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "codec.h"
#include "io.h"
#include "sockets.h"
#include "uri.h"

/* Bound on option reply payloads read by the helpers: comfortably above
 * what any reply carries (two strings of NBD_MAX_STRING plus headers).
 */
#define OPT_REPLY_MAX (64 * 1024)
/* Default bound on one reply's payload in the command layer. */
#define DEFAULT_MAX_REPLY_PAYLOAD (UINT64_C (64) * 1024 * 1024 + 4096)

struct nbdp_inflight {
  uint64_t cookie;
  uint16_t type, flags;
  uint64_t offset, count;
  struct nbdp_cmd *cmd;         /* NULL: sent raw */
};

struct range {
  uint64_t off, len;
};

/* ---- Failure recording ---- */

static int fail (struct nbdp_client *c, enum nbdp_failure kind, int err,
                 const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

static int
fail (struct nbdp_client *c, enum nbdp_failure kind, int err,
      const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (c->err, sizeof c->err, fmt, ap);
  va_end (ap);
  c->failure = kind;
  errno = err;
  return -1;
}

/* A failure after which the byte stream cannot be trusted. */
#define fail_dead(c, kind, err, ...)                    \
  ((c)->dead = true, fail ((c), (kind), (err), __VA_ARGS__))

static void
clear_failure (struct nbdp_client *c)
{
  c->failure = NBDP_FAIL_NONE;
  c->err[0] = '\0';
}

static int
check_usable (struct nbdp_client *c)
{
  if (c->fd == -1)
    return fail (c, NBDP_FAIL_IO, ENOTCONN, "not connected");
  if (c->dead)
    return fail (c, NBDP_FAIL_IO, EPIPE,
                 "connection unusable after an earlier failure");
  return 0;
}

/* ---- Life cycle ---- */

struct nbdp_client *
nbdp_client_new (void)
{
  struct nbdp_client *c = calloc (1, sizeof *c);

  if (c == NULL)
    return NULL;
  c->fd = -1;
  c->timeout_ms = NBDP_CLIENT_TIMEOUT_MS;
  c->next_cookie = 1;
  c->max_reply_payload = DEFAULT_MAX_REPLY_PAYLOAD;
  return c;
}

void
nbdp_client_close (struct nbdp_client *c)
{
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
}

void
nbdp_client_free (struct nbdp_client *c)
{
  size_t i;

  if (c == NULL)
    return;
  nbdp_client_close (c);
  /* Commands still in flight must not point back at freed memory. */
  for (i = 0; i < c->n_inflight; i++)
    c->inflight[i].cmd = NULL;
  free (c->inflight);
  free (c->rbuf);
  free (c->uri_export);
  free (c);
}

void
nbdp_client_set_timeout (struct nbdp_client *c, int ms)
{
  c->timeout_ms = ms;
}

const char *
nbdp_client_error (const struct nbdp_client *c)
{
  return c->err;
}

int
nbdp_client_set_fd (struct nbdp_client *c, int fd)
{
  clear_failure (c);
  nbdp_client_close (c);
  c->fd = fd;
  c->dead = false;
  return 0;
}

int
nbdp_client_connect_unix (struct nbdp_client *c, const char *path)
{
  int fd;

  clear_failure (c);
  fd = nbdp_connect_unix (path);
  if (fd == -1)
    return fail (c, NBDP_FAIL_IO, errno, "connect to Unix socket %s: %s",
                 path, strerror (errno));
  return nbdp_client_set_fd (c, fd);
}

int
nbdp_client_connect_tcp (struct nbdp_client *c, const char *host,
                         const char *port)
{
  int fd;

  clear_failure (c);
  fd = nbdp_connect_tcp (host, port);
  if (fd == -1)
    return fail (c, NBDP_FAIL_IO, errno, "connect to %s port %s: %s",
                 host, port, strerror (errno));
  return nbdp_client_set_fd (c, fd);
}

int
nbdp_client_connect_uri (struct nbdp_client *c, const char *text)
{
  struct nbdp_uri uri;
  char err[256];
  int r;

  clear_failure (c);
  if (nbdp_uri_parse (text, &uri, err, sizeof err) == -1)
    return fail (c, NBDP_FAIL_IO, EINVAL, "bad NBD URI: %s", err);
  free (c->uri_export);
  c->uri_export = strdup (uri.export_name);
  c->uri_tls = uri.tls;
  if (c->uri_export == NULL) {
    nbdp_uri_free (&uri);
    return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
  }
  if (uri.is_unix)
    r = nbdp_client_connect_unix (c, uri.socket);
  else
    r = nbdp_client_connect_tcp (c, uri.host, uri.port);
  nbdp_uri_free (&uri);
  return r;
}

/* ---- Raw I/O with a timeout ---- */

static int64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly len bytes.  what names the expected message in errors.
 * *clean_eof (if not NULL) is set when the peer closed before any byte.
 */
static int
recv_full (struct nbdp_client *c, void *buf, size_t len, const char *what,
           bool *clean_eof)
{
  char *p = buf;
  size_t done = 0;
  int64_t deadline = c->timeout_ms > 0 ? now_ms () + c->timeout_ms : 0;

  if (clean_eof)
    *clean_eof = false;
  if (check_usable (c) == -1)
    return -1;
  while (done < len) {
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    int wait = -1, r;
    ssize_t n;

    if (deadline) {
      int64_t left = deadline - now_ms ();
      if (left < 0)
        left = 0;
      wait = (int) left;
    }
    r = poll (&pfd, 1, wait);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return fail_dead (c, NBDP_FAIL_IO, errno, "poll waiting for %s: %s",
                        what, strerror (errno));
    }
    if (r == 0)
      return fail_dead (c, NBDP_FAIL_IO, ETIMEDOUT,
                        "timed out after %d ms waiting for %s "
                        "(received %zu of %zu bytes)",
                        c->timeout_ms, what, done, len);
    n = read (c->fd, p + done, len - done);
    if (n == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return fail_dead (c, NBDP_FAIL_IO, errno, "reading %s: %s",
                        what, strerror (errno));
    }
    if (n == 0) {
      if (done == 0 && clean_eof)
        *clean_eof = true;
      return fail_dead (c, NBDP_FAIL_IO, EPIPE,
                        "server closed the connection while the client "
                        "waited for %s (received %zu of %zu bytes)",
                        what, done, len);
    }
    done += n;
  }
  return 0;
}

static int
send_full (struct nbdp_client *c, const void *buf, size_t len,
           const char *what)
{
  if (check_usable (c) == -1)
    return -1;
  if (nbdp_write_full (c->fd, buf, len) == -1)
    return fail_dead (c, NBDP_FAIL_IO, errno, "sending %s: %s",
                      what, strerror (errno));
  return 0;
}

static int
ensure_rbuf (struct nbdp_client *c, uint64_t len)
{
  unsigned char *p;

  if (len >= SIZE_MAX - 1)
    return fail (c, NBDP_FAIL_IO, ENOMEM, "buffer of %" PRIu64 " bytes",
                 len);
  if (c->rbuf_size >= len + 1)
    return 0;
  p = realloc (c->rbuf, len + 1);
  if (p == NULL)
    return fail_dead (c, NBDP_FAIL_IO, ENOMEM,
                      "cannot allocate %" PRIu64 " bytes", len + 1);
  c->rbuf = p;
  c->rbuf_size = len + 1;
  return 0;
}

int
nbdp_client_send_raw (struct nbdp_client *c, const void *buf, size_t len)
{
  clear_failure (c);
  return send_full (c, buf, len, "raw bytes");
}

int
nbdp_client_recv_raw (struct nbdp_client *c, void *buf, size_t len)
{
  clear_failure (c);
  return recv_full (c, buf, len, "raw bytes", NULL);
}

int
nbdp_client_expect_eof (struct nbdp_client *c)
{
  unsigned char b[16];
  bool clean;

  clear_failure (c);
  if (recv_full (c, b, 1, "the server to close the connection",
                 &clean) == 0) {
    /* Data came instead: show what, as far as it comes at once. */
    ssize_t n = recv (c->fd, b + 1, sizeof b - 1, MSG_DONTWAIT);
    char hex[3 * sizeof b + 1];
    size_t i, len = 1 + (n > 0 ? n : 0);

    for (i = 0; i < len; i++)
      snprintf (hex + 3 * i, 4, "%02x ", b[i]);
    hex[3 * len - 1] = '\0';
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                      "expected the server to close the connection, "
                      "but it sent data: %s", hex);
  }
  if (clean) {
    clear_failure (c);
    return 0;
  }
  return -1;
}

/* ---- Handshake ---- */

int
nbdp_client_recv_greeting (struct nbdp_client *c, struct nbdp_greeting *g)
{
  unsigned char b[sizeof (struct nbd_old_handshake)];
  struct nbdp_greeting tmp;
  size_t i;

  clear_failure (c);
  if (g == NULL)
    g = &tmp;
  memset (g, 0, sizeof *g);
  if (recv_full (c, b, 16, "the server greeting (NBDMAGIC and version)",
                 NULL) == -1)
    return -1;
  g->magic = nbdp_get64 (b);
  g->version = nbdp_get64 (b + 8);
  if (g->magic != NBD_MAGIC)
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                      "greeting: expected magic NBDMAGIC (0x%016" PRIx64
                      "), received 0x%016" PRIx64, NBD_MAGIC, g->magic);
  if (g->version == NBD_NEW_VERSION) {
    if (recv_full (c, b + 16, 2, "the handshake flags of the greeting",
                   NULL) == -1)
      return -1;
    g->gflags = nbdp_get16 (b + 16);
    c->oldstyle = false;
    c->gflags = g->gflags;
    return 0;
  }
  if (g->version == NBD_OLD_VERSION) {
    if (recv_full (c, b + 16, sizeof b - 16,
                   "the rest of the oldstyle greeting", NULL) == -1)
      return -1;
    g->oldstyle = true;
    g->size = nbdp_get64 (b + 16);
    g->gflags = nbdp_get16 (b + 24);
    g->eflags = nbdp_get16 (b + 26);
    for (i = 28; i < sizeof b; i++)
      if (b[i] != 0)
        g->padding_nonzero = true;
    c->oldstyle = true;
    c->size = g->size;
    c->eflags = g->eflags;
    c->transmission = true;
    return 0;
  }
  return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                    "greeting: after NBDMAGIC expected IHAVEOPT "
                    "(0x%016" PRIx64 ") or the oldstyle magic (0x%016" PRIx64
                    "), received 0x%016" PRIx64,
                    NBD_NEW_VERSION, NBD_OLD_VERSION, g->version);
}

int
nbdp_client_send_cflags (struct nbdp_client *c, uint32_t cflags)
{
  unsigned char b[4];

  clear_failure (c);
  nbdp_put32 (b, cflags);
  if (send_full (c, b, 4, "client flags") == -1)
    return -1;
  c->cflags = cflags;
  c->cflags_sent = true;
  return 0;
}

int
nbdp_client_send_option_raw (struct nbdp_client *c, uint64_t magic,
                             uint32_t option, uint32_t declared_len,
                             const void *data, size_t data_len)
{
  struct nbdp_option o = { .magic = magic, .option = option,
                           .length = declared_len };
  unsigned char *b;
  char nb[32], what[64];
  int r;

  clear_failure (c);
  if (data_len > SIZE_MAX - NBDP_OPTION_SIZE)
    return fail (c, NBDP_FAIL_IO, EINVAL, "option data too large");
  b = malloc (NBDP_OPTION_SIZE + data_len);
  if (b == NULL)
    return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
  nbdp_encode_option (b, &o);
  if (data_len)
    memcpy (b + NBDP_OPTION_SIZE, data, data_len);
  snprintf (what, sizeof what, "option %s", nbdp_opt_str (nb, sizeof nb, option));
  r = send_full (c, b, NBDP_OPTION_SIZE + data_len, what);
  free (b);
  return r;
}

int
nbdp_client_send_option (struct nbdp_client *c, uint32_t option,
                         const void *data, uint32_t len)
{
  return nbdp_client_send_option_raw (c, NBD_NEW_VERSION, option, len,
                                      data, len);
}

int
nbdp_client_recv_option_reply (struct nbdp_client *c,
                               struct nbdp_opt_reply *r, uint32_t max)
{
  unsigned char b[NBDP_OPTION_REPLY_SIZE];
  struct nbdp_option_reply h;
  char nb[32], rb[32];

  clear_failure (c);
  memset (r, 0, sizeof *r);
  if (recv_full (c, b, sizeof b, "an option reply header", NULL) == -1)
    return -1;
  nbdp_decode_option_reply (b, &h);
  r->magic = h.magic;
  r->option = h.option;
  r->reply = h.reply;
  r->length = h.length;
  c->last_rep = h.reply;
  if (h.magic != NBD_REP_MAGIC)
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                      "option reply: expected magic 0x%016" PRIx64
                      ", received 0x%016" PRIx64 " (option %s, reply %s, "
                      "length %" PRIu32 ")",
                      NBD_REP_MAGIC, h.magic,
                      nbdp_opt_str (nb, sizeof nb, h.option),
                      nbdp_rep_str (rb, sizeof rb, h.reply), h.length);
  if (h.length > max)
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                      "option reply %s to %s declares %" PRIu32
                      " bytes of payload, more than the %" PRIu32
                      " this client accepts here",
                      nbdp_rep_str (rb, sizeof rb, h.reply),
                      nbdp_opt_str (nb, sizeof nb, h.option), h.length, max);
  if (ensure_rbuf (c, h.length) == -1)
    return -1;
  if (h.length &&
      recv_full (c, c->rbuf, h.length, "an option reply payload",
                 NULL) == -1)
    return -1;
  c->rbuf[h.length] = '\0';
  r->payload = c->rbuf;
  return 0;
}

/* Read a reply to opt and check its option field.  Error replies are
 * turned into a REFUSED failure (-1 with *refused set).
 */
static int
read_reply_for (struct nbdp_client *c, uint32_t opt,
                struct nbdp_opt_reply *r, bool *refused,
                const char *context)
{
  char nb[32], ob[32], rb[32];

  *refused = false;
  if (nbdp_client_recv_option_reply (c, r, OPT_REPLY_MAX) == -1)
    return -1;
  if (r->option != opt)
    return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                 "sent %s%s; the reply %s names option %s instead of %s",
                 nbdp_opt_str (nb, sizeof nb, opt), context,
                 nbdp_rep_str (rb, sizeof rb, r->reply),
                 nbdp_opt_str (ob, sizeof ob, r->option),
                 nbdp_opt_str (nb, sizeof nb, opt));
  if (r->reply & NBD_REP_ERR (0)) {
    int err;

    *refused = true;
    switch (r->reply) {
    case NBD_REP_ERR_UNSUP:    err = ENOTSUP; break;
    case NBD_REP_ERR_POLICY:   err = EPERM; break;
    case NBD_REP_ERR_UNKNOWN:  err = ENOENT; break;
    case NBD_REP_ERR_SHUTDOWN: err = ESHUTDOWN; break;
    case NBD_REP_ERR_TOO_BIG:  err = E2BIG; break;
    default:                   err = EINVAL; break;
    }
    return fail (c, NBDP_FAIL_REFUSED, err,
                 "sent %s%s; the server refused it with %s%s%.*s",
                 nbdp_opt_str (nb, sizeof nb, opt), context,
                 nbdp_rep_str (rb, sizeof rb, r->reply),
                 r->length ? ": " : "",
                 (int) (r->length > 512 ? 512 : r->length),
                 (const char *) r->payload);
  }
  return 0;
}

static int
unexpected_reply (struct nbdp_client *c, uint32_t opt,
                  const struct nbdp_opt_reply *r, const char *context,
                  const char *expected)
{
  char nb[32], rb[32];

  return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
               "sent %s%s; expected %s, received %s with %" PRIu32
               " bytes of payload",
               nbdp_opt_str (nb, sizeof nb, opt), context, expected,
               nbdp_rep_str (rb, sizeof rb, r->reply), r->length);
}

/* Send opt with no data and expect a single ACK. */
static int
simple_option (struct nbdp_client *c, uint32_t opt)
{
  struct nbdp_opt_reply r;
  bool refused;

  clear_failure (c);
  if (nbdp_client_send_option (c, opt, NULL, 0) == -1)
    return -1;
  if (read_reply_for (c, opt, &r, &refused, "") == -1)
    return -1;
  if (r.reply != NBD_REP_ACK || r.length != 0)
    return unexpected_reply (c, opt, &r, "",
                             "NBD_REP_ACK with no payload");
  return 0;
}

int
nbdp_client_opt_structured_reply (struct nbdp_client *c)
{
  if (simple_option (c, NBD_OPT_STRUCTURED_REPLY) == -1)
    return -1;
  c->structured = true;
  return 0;
}

int
nbdp_client_opt_extended_headers (struct nbdp_client *c)
{
  if (simple_option (c, NBD_OPT_EXTENDED_HEADERS) == -1)
    return -1;
  c->extended = true;
  return 0;
}

int
nbdp_client_opt_starttls (struct nbdp_client *c)
{
  return simple_option (c, NBD_OPT_STARTTLS);
}

int
nbdp_client_opt_abort (struct nbdp_client *c)
{
  struct nbdp_opt_reply r;
  bool clean;
  char rb[32];

  clear_failure (c);
  if (nbdp_client_send_option (c, NBD_OPT_ABORT, NULL, 0) == -1)
    return -1;
  /* The server may ack or simply close. */
  {
    unsigned char b[NBDP_OPTION_REPLY_SIZE];
    struct nbdp_option_reply h;

    if (recv_full (c, b, sizeof b, "the reply to NBD_OPT_ABORT",
                   &clean) == -1) {
      if (clean) {
        clear_failure (c);
        c->last_rep = 0;
        return 0;
      }
      return -1;
    }
    nbdp_decode_option_reply (b, &h);
    r.magic = h.magic;
    r.option = h.option;
    r.reply = h.reply;
    r.length = h.length;
    c->last_rep = h.reply;
  }
  if (r.magic != NBD_REP_MAGIC || r.option != NBD_OPT_ABORT ||
      r.reply != NBD_REP_ACK || r.length != 0)
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                      "sent NBD_OPT_ABORT; expected NBD_REP_ACK for "
                      "NBD_OPT_ABORT with no payload, or the connection "
                      "closed; received magic 0x%016" PRIx64
                      " option %" PRIu32 " reply %s length %" PRIu32,
                      r.magic, r.option, nbdp_rep_str (rb, sizeof rb, r.reply),
                      r.length);
  return 0;
}

/* Append a 32-bit length and a string to a growing buffer. */
static int
put_string (unsigned char **buf, size_t *len, const char *s)
{
  size_t n = strlen (s);
  unsigned char *p;

  if (n > UINT32_MAX || *len > SIZE_MAX - 4 - n)
    return -1;
  p = realloc (*buf, *len + 4 + n);
  if (p == NULL)
    return -1;
  nbdp_put32 (p + *len, (uint32_t) n);
  memcpy (p + *len + 4, s, n);
  *buf = p;
  *len += 4 + n;
  return 0;
}

int
nbdp_client_opt_list (struct nbdp_client *c, nbdp_list_cb cb, void *opaque)
{
  struct nbdp_opt_reply r;
  bool refused;

  clear_failure (c);
  if (nbdp_client_send_option (c, NBD_OPT_LIST, NULL, 0) == -1)
    return -1;
  for (;;) {
    uint32_t namelen;
    char *name, *desc;
    int ret;

    if (read_reply_for (c, NBD_OPT_LIST, &r, &refused, "") == -1)
      return -1;
    if (r.reply == NBD_REP_ACK) {
      if (r.length != 0)
        return unexpected_reply (c, NBD_OPT_LIST, &r, "",
                                 "NBD_REP_ACK with no payload");
      return 0;
    }
    if (r.reply != NBD_REP_SERVER)
      return unexpected_reply (c, NBD_OPT_LIST, &r, "",
                               "NBD_REP_SERVER or NBD_REP_ACK");
    if (r.length < 4)
      return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                   "sent NBD_OPT_LIST; NBD_REP_SERVER has %" PRIu32
                   " bytes of payload, expected at least 4 (name length)",
                   r.length);
    namelen = nbdp_get32 (r.payload);
    if (namelen > r.length - 4)
      return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                   "sent NBD_OPT_LIST; NBD_REP_SERVER declares a name of "
                   "%" PRIu32 " bytes in a payload of %" PRIu32
                   " bytes (expected at most %" PRIu32 ")",
                   namelen, r.length, r.length - 4);
    name = strndup ((const char *) r.payload + 4, namelen);
    desc = strndup ((const char *) r.payload + 4 + namelen,
                    r.length - 4 - namelen);
    if (name == NULL || desc == NULL) {
      free (name);
      free (desc);
      return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
    }
    ret = cb ? cb (opaque, name, desc) : 0;
    free (name);
    free (desc);
    if (ret == -1)
      return fail (c, NBDP_FAIL_IO, ECANCELED,
                   "NBD_OPT_LIST stopped by the callback");
  }
}

int
nbdp_client_opt_export_name (struct nbdp_client *c, const char *name,
                             struct nbdp_export *exp)
{
  struct nbdp_export tmp;
  unsigned char b[10 + NBD_NEWSTYLE_ZEROES];
  size_t len = 10, i;
  bool clean;

  clear_failure (c);
  if (exp == NULL)
    exp = &tmp;
  memset (exp, 0, sizeof *exp);
  if (nbdp_client_send_option (c, NBD_OPT_EXPORT_NAME, name,
                               (uint32_t) strlen (name)) == -1)
    return -1;
  if ((c->gflags & NBD_FLAG_NO_ZEROES) == 0 ||
      (c->cflags & NBD_FLAG_C_NO_ZEROES) == 0)
    len += NBD_NEWSTYLE_ZEROES;
  if (recv_full (c, b, len, "the reply to NBD_OPT_EXPORT_NAME (size, "
                 "transmission flags, padding)", &clean) == -1) {
    if (clean)
      return fail (c, NBDP_FAIL_REFUSED, ENOENT,
                   "sent NBD_OPT_EXPORT_NAME '%s'; the server closed the "
                   "connection (it refused the export)", name);
    return -1;
  }
  exp->have_export = true;
  exp->size = nbdp_get64 (b);
  exp->eflags = nbdp_get16 (b + 8);
  for (i = 10; i < len; i++)
    if (b[i] != 0)
      exp->padding_nonzero = true;
  c->size = exp->size;
  c->eflags = exp->eflags;
  c->transmission = true;
  return 0;
}

/* Decode one NBD_REP_INFO payload into exp. */
static int
take_info (struct nbdp_client *c, uint32_t opt,
           const struct nbdp_opt_reply *r, struct nbdp_export *exp)
{
  char nb[32];
  uint16_t info;
  uint32_t want = 0;

  if (r->length < 2)
    return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                 "sent %s; NBD_REP_INFO has %" PRIu32 " bytes of payload, "
                 "expected at least 2 (the information type)",
                 nbdp_opt_str (nb, sizeof nb, opt), r->length);
  info = nbdp_get16 (r->payload);
  switch (info) {
  case NBD_INFO_EXPORT:     want = 12; break;
  case NBD_INFO_BLOCK_SIZE: want = 14; break;
  case NBD_INFO_NAME:
  case NBD_INFO_DESCRIPTION:
    if (r->length - 2 > NBD_MAX_STRING)
      return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                   "sent %s; NBD_REP_INFO %s carries %" PRIu32 " bytes, "
                   "more than the %d-byte string limit",
                   nbdp_opt_str (nb, sizeof nb, opt),
                   nbdp_name_of_info (info), r->length - 2, NBD_MAX_STRING);
    break;
  default:
    return 0;                   /* unknown information: ignored */
  }
  if (want && r->length != want)
    return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                 "sent %s; NBD_REP_INFO %s has %" PRIu32 " bytes of "
                 "payload, expected exactly %" PRIu32,
                 nbdp_opt_str (nb, sizeof nb, opt), nbdp_name_of_info (info),
                 r->length, want);
  switch (info) {
  case NBD_INFO_EXPORT:
    exp->have_export = true;
    exp->size = nbdp_get64 (r->payload + 2);
    exp->eflags = nbdp_get16 (r->payload + 10);
    break;
  case NBD_INFO_BLOCK_SIZE:
    exp->have_block_size = true;
    exp->min_block = nbdp_get32 (r->payload + 2);
    exp->pref_block = nbdp_get32 (r->payload + 6);
    exp->max_block = nbdp_get32 (r->payload + 10);
    break;
  case NBD_INFO_NAME:
    exp->have_name = true;
    memcpy (exp->name, r->payload + 2, r->length - 2);
    exp->name[r->length - 2] = '\0';
    break;
  case NBD_INFO_DESCRIPTION:
    exp->have_description = true;
    memcpy (exp->description, r->payload + 2, r->length - 2);
    exp->description[r->length - 2] = '\0';
    break;
  }
  return 0;
}

int
nbdp_client_opt_info (struct nbdp_client *c, bool go, const char *name,
                      const uint16_t *infos, size_t n_infos,
                      struct nbdp_export *exp)
{
  uint32_t opt = go ? NBD_OPT_GO : NBD_OPT_INFO;
  struct nbdp_export tmp;
  struct nbdp_opt_reply r;
  unsigned char *data = NULL;
  size_t len = 0, i;
  char context[128], nb[32];
  bool refused;
  int ret;

  clear_failure (c);
  if (exp == NULL)
    exp = &tmp;
  memset (exp, 0, sizeof *exp);
  if (n_infos > UINT16_MAX)
    return fail (c, NBDP_FAIL_IO, EINVAL, "too many info requests");
  if (put_string (&data, &len, name) == -1) {
    free (data);
    return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
  }
  {
    unsigned char *p = realloc (data, len + 2 + 2 * n_infos);
    if (p == NULL) {
      free (data);
      return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
    }
    data = p;
    nbdp_put16 (data + len, (uint16_t) n_infos);
    for (i = 0; i < n_infos; i++)
      nbdp_put16 (data + len + 2 + 2 * i, infos[i]);
    len += 2 + 2 * n_infos;
  }
  if (len > UINT32_MAX) {
    free (data);
    return fail (c, NBDP_FAIL_IO, EINVAL, "export name too long");
  }
  ret = nbdp_client_send_option (c, opt, data, (uint32_t) len);
  free (data);
  if (ret == -1)
    return -1;

  snprintf (context, sizeof context, " for export '%.64s'", name);
  for (;;) {
    if (read_reply_for (c, opt, &r, &refused, context) == -1) {
      if (refused) {
        size_t ml = r.length > NBD_MAX_STRING ? NBD_MAX_STRING : r.length;
        exp->rep_error = r.reply;
        memcpy (exp->rep_message, r.payload, ml);
        exp->rep_message[ml] = '\0';
      }
      return -1;
    }
    if (r.reply == NBD_REP_INFO) {
      if (take_info (c, opt, &r, exp) == -1)
        return -1;
      continue;
    }
    if (r.reply != NBD_REP_ACK)
      return unexpected_reply (c, opt, &r, context,
                               "NBD_REP_INFO or NBD_REP_ACK");
    if (r.length != 0)
      return unexpected_reply (c, opt, &r, context,
                               "NBD_REP_ACK with no payload");
    break;
  }
  if (!exp->have_export)
    return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                 "sent %s%s; the server acked without sending "
                 "NBD_INFO_EXPORT (expected before NBD_REP_ACK)",
                 nbdp_opt_str (nb, sizeof nb, opt), context);
  if (go) {
    c->size = exp->size;
    c->eflags = exp->eflags;
    c->have_block_size = exp->have_block_size;
    c->min_block = exp->min_block;
    c->pref_block = exp->pref_block;
    c->max_block = exp->max_block;
    c->transmission = true;
  }
  return 0;
}

int
nbdp_client_opt_meta_context (struct nbdp_client *c, bool set,
                              const char *export_name,
                              const char *const *queries, size_t n,
                              struct nbdp_meta_context *out, size_t max,
                              size_t *n_out)
{
  uint32_t opt = set ? NBD_OPT_SET_META_CONTEXT : NBD_OPT_LIST_META_CONTEXT;
  unsigned char *data = NULL;
  size_t len = 0, i, count = 0;
  struct nbdp_opt_reply r;
  bool refused;
  char context[128];
  int ret;

  clear_failure (c);
  if (n_out)
    *n_out = 0;
  if (n > UINT32_MAX)
    return fail (c, NBDP_FAIL_IO, EINVAL, "too many queries");
  if (put_string (&data, &len, export_name) == -1)
    goto nomem;
  {
    unsigned char *p = realloc (data, len + 4);
    if (p == NULL)
      goto nomem;
    data = p;
    nbdp_put32 (data + len, (uint32_t) n);
    len += 4;
  }
  for (i = 0; i < n; i++)
    if (put_string (&data, &len, queries[i]) == -1)
      goto nomem;
  if (len > UINT32_MAX) {
    free (data);
    return fail (c, NBDP_FAIL_IO, EINVAL, "queries too long");
  }
  ret = nbdp_client_send_option (c, opt, data, (uint32_t) len);
  free (data);
  if (ret == -1)
    return -1;
  if (set)
    c->n_contexts = 0;

  snprintf (context, sizeof context, " for export '%.64s' with %zu "
            "quer%s", export_name, n, n == 1 ? "y" : "ies");
  for (;;) {
    uint32_t id, nl;

    if (read_reply_for (c, opt, &r, &refused, context) == -1)
      return -1;
    if (r.reply == NBD_REP_ACK) {
      if (r.length != 0)
        return unexpected_reply (c, opt, &r, context,
                                 "NBD_REP_ACK with no payload");
      break;
    }
    if (r.reply != NBD_REP_META_CONTEXT)
      return unexpected_reply (c, opt, &r, context,
                               "NBD_REP_META_CONTEXT or NBD_REP_ACK");
    if (r.length < 4 || r.length - 4 > NBD_MAX_STRING)
      return unexpected_reply (c, opt, &r, context,
                               "NBD_REP_META_CONTEXT with a 4-byte id and "
                               "a name of at most 4096 bytes");
    id = nbdp_get32 (r.payload);
    nl = r.length - 4;
    if (out && count < max) {
      out[count].id = id;
      memcpy (out[count].name, r.payload + 4, nl);
      out[count].name[nl] = '\0';
    }
    if (set && c->n_contexts < NBDP_CLIENT_MAX_CONTEXTS) {
      struct nbdp_meta_context *m = &c->contexts[c->n_contexts++];
      m->id = id;
      memcpy (m->name, r.payload + 4, nl);
      m->name[nl] = '\0';
    }
    count++;
  }
  if (n_out)
    *n_out = count;
  return 0;

 nomem:
  free (data);
  return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
}

int
nbdp_client_handshake (struct nbdp_client *c,
                       const struct nbdp_handshake_opts *opts)
{
  struct nbdp_handshake_opts none = { 0 };
  struct nbdp_greeting g;
  const char *name;
  uint32_t cflags = 0;
  bool fixed;

  if (opts == NULL)
    opts = &none;
  name = opts->export_name ? opts->export_name
    : c->uri_export ? c->uri_export : "";

  if (nbdp_client_recv_greeting (c, &g) == -1)
    return -1;
  if (g.oldstyle)
    return 0;
  fixed = !opts->no_fixed_newstyle && (g.gflags & NBD_FLAG_FIXED_NEWSTYLE);
  if (fixed)
    cflags |= NBD_FLAG_C_FIXED_NEWSTYLE;
  if (opts->no_zeroes && (g.gflags & NBD_FLAG_NO_ZEROES))
    cflags |= NBD_FLAG_C_NO_ZEROES;
  if (nbdp_client_send_cflags (c, cflags) == -1)
    return -1;

  if (fixed && opts->extended_headers) {
    if (nbdp_client_opt_extended_headers (c) == -1 &&
        (c->failure != NBDP_FAIL_REFUSED || opts->require ||
         c->last_rep == NBD_REP_ERR_SHUTDOWN))
      return -1;
  }
  if (fixed && opts->structured_reply && !c->extended) {
    if (nbdp_client_opt_structured_reply (c) == -1 &&
        (c->failure != NBDP_FAIL_REFUSED || opts->require ||
         c->last_rep == NBD_REP_ERR_SHUTDOWN))
      return -1;
  }
  if (fixed && opts->n_meta_contexts > 0 && (c->structured || c->extended)) {
    size_t got;
    if (nbdp_client_opt_meta_context (c, true, name, opts->meta_contexts,
                                      opts->n_meta_contexts, NULL, 0,
                                      &got) == -1 &&
        (c->failure != NBDP_FAIL_REFUSED || opts->require ||
         c->last_rep == NBD_REP_ERR_SHUTDOWN))
      return -1;
    if (opts->require && c->n_contexts < opts->n_meta_contexts)
      return fail (c, NBDP_FAIL_REFUSED, ENOTSUP,
                   "sent NBD_OPT_SET_META_CONTEXT with %zu queries; the "
                   "server selected %zu contexts",
                   opts->n_meta_contexts, c->n_contexts);
  }
  else if (opts->n_meta_contexts > 0 && opts->require)
    return fail (c, NBDP_FAIL_REFUSED, ENOTSUP,
                 "meta contexts requested but structured replies were "
                 "not negotiated");

  if (fixed && !opts->use_export_name) {
    uint16_t infos[] = { NBD_INFO_BLOCK_SIZE };
    if (nbdp_client_opt_info (c, true, name, infos, 1, NULL) == 0)
      return 0;
    /* Servers that predate NBD_OPT_GO get EXPORT_NAME instead. */
    if (c->failure != NBDP_FAIL_REFUSED || c->last_rep != NBD_REP_ERR_UNSUP)
      return -1;
  }
  return nbdp_client_opt_export_name (c, name, NULL);
}

/* ---- Transmission: raw ---- */

uint64_t
nbdp_client_next_cookie (struct nbdp_client *c)
{
  return c->next_cookie++;
}

static struct nbdp_inflight *
find_inflight (struct nbdp_client *c, uint64_t cookie)
{
  size_t i;

  for (i = 0; i < c->n_inflight; i++)
    if (c->inflight[i].cookie == cookie)
      return &c->inflight[i];
  return NULL;
}

static void
remove_inflight (struct nbdp_client *c, struct nbdp_inflight *e)
{
  size_t i = e - c->inflight;

  memmove (&c->inflight[i], &c->inflight[i + 1],
           (c->n_inflight - i - 1) * sizeof *e);
  c->n_inflight--;
}

static int
add_inflight (struct nbdp_client *c, const struct nbdp_request *req,
              struct nbdp_cmd *cmd)
{
  if (c->n_inflight == c->cap_inflight) {
    size_t ncap = c->cap_inflight ? 2 * c->cap_inflight : 16;
    struct nbdp_inflight *p = realloc (c->inflight, ncap * sizeof *p);
    if (p == NULL)
      return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
    c->inflight = p;
    c->cap_inflight = ncap;
  }
  c->inflight[c->n_inflight++] = (struct nbdp_inflight) {
    .cookie = req->cookie, .type = req->type, .flags = req->flags,
    .offset = req->offset, .count = req->count, .cmd = cmd,
  };
  return 0;
}

static int
send_request (struct nbdp_client *c, const struct nbdp_request *req0,
              enum nbdp_layout layout, const void *payload,
              size_t payload_len, struct nbdp_cmd *cmd)
{
  struct nbdp_request req = *req0;
  unsigned char hdr[NBDP_REQUEST_EXT_SIZE];
  bool ext;
  size_t hlen;
  char what[96], nb[32];

  if (layout == NBDP_LAYOUT_AUTO)
    ext = c->extended;
  else
    ext = layout == NBDP_LAYOUT_EXTENDED;
  if (req.magic == 0)
    req.magic = ext ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
  hlen = nbdp_encode_request (hdr, &req, ext);
  snprintf (what, sizeof what, "%s request (cookie %" PRIu64 ")",
            nbdp_cmd_str (nb, sizeof nb, req.type), req.cookie);

  if (payload_len > 0 && payload_len <= 65536) {
    unsigned char *b = malloc (hlen + payload_len);
    int r;
    if (b == NULL)
      return fail (c, NBDP_FAIL_IO, ENOMEM, "%s", strerror (ENOMEM));
    memcpy (b, hdr, hlen);
    memcpy (b + hlen, payload, payload_len);
    r = send_full (c, b, hlen + payload_len, what);
    free (b);
    if (r == -1)
      return -1;
  }
  else {
    if (send_full (c, hdr, hlen, what) == -1)
      return -1;
    if (payload_len > 0 && send_full (c, payload, payload_len, what) == -1)
      return -1;
  }
  /* NBD_CMD_DISC has no reply, so nothing to wait for. */
  if (req.type == NBD_CMD_DISC)
    return 0;
  return add_inflight (c, &req, cmd);
}

int
nbdp_client_send_request (struct nbdp_client *c,
                          const struct nbdp_request *req,
                          enum nbdp_layout layout,
                          const void *payload, size_t payload_len)
{
  clear_failure (c);
  return send_request (c, req, layout, payload, payload_len, NULL);
}

/* Read one reply; *entry receives a copy of the in-flight entry it
 * answers (entry->cookie matches only if r->known_cookie).
 */
static int
recv_one (struct nbdp_client *c, struct nbdp_client_reply *r, uint64_t max,
          int64_t simple_data_len, struct nbdp_inflight *entry)
{
  unsigned char b[NBDP_EXTENDED_REPLY_SIZE];
  size_t hsize;
  struct nbdp_inflight *e;
  uint64_t plen = 0;
  char nb[32], tb[32];

  memset (r, 0, sizeof *r);
  memset (entry, 0, sizeof *entry);
  if (recv_full (c, b, 4, "a reply (magic)", NULL) == -1)
    return -1;
  hsize = nbdp_reply_header_size (nbdp_get32 (b));
  if (hsize == 0)
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                      "expected a reply magic (simple 0x%08" PRIx32
                      ", structured 0x%08" PRIx32 " or extended 0x%08"
                      PRIx32 "), received 0x%08" PRIx32,
                      NBD_SIMPLE_REPLY_MAGIC, NBD_STRUCTURED_REPLY_MAGIC,
                      NBD_EXTENDED_REPLY_MAGIC, nbdp_get32 (b));
  if (recv_full (c, b + 4, hsize - 4, "the rest of a reply header",
                 NULL) == -1)
    return -1;
  nbdp_decode_reply (b, &r->hdr);

  e = find_inflight (c, r->hdr.cookie);
  if (e) {
    r->known_cookie = true;
    r->cmd = e->type;
    *entry = *e;
  }

  if (r->hdr.kind == NBDP_REPLY_SIMPLE) {
    r->final = true;
    if (simple_data_len >= 0)
      plen = (uint64_t) simple_data_len;
    else if (e && e->type == NBD_CMD_READ && r->hdr.error == 0)
      plen = e->count;
    if (plen > max)
      return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                        "simple reply (cookie %" PRIu64 ") to %s would be "
                        "followed by %" PRIu64 " bytes of data, more than "
                        "the %" PRIu64 " this client accepts",
                        r->hdr.cookie,
                        e ? nbdp_cmd_str (nb, sizeof nb, e->type) : "?",
                        plen, max);
  }
  else {
    r->final = (r->hdr.flags & NBD_REPLY_FLAG_DONE) != 0;
    plen = r->hdr.length;
    if (plen > max)
      return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO,
                        "%s reply chunk %s (cookie %" PRIu64 ") declares "
                        "%" PRIu64 " bytes of payload, more than the %"
                        PRIu64 " this client accepts",
                        r->hdr.kind == NBDP_REPLY_EXTENDED
                        ? "extended" : "structured",
                        nbdp_reply_type_str (tb, sizeof tb, r->hdr.type),
                        r->hdr.cookie, plen, max);
  }
  if (ensure_rbuf (c, plen) == -1)
    return -1;
  if (plen && recv_full (c, c->rbuf, plen, "a reply payload", NULL) == -1)
    return -1;
  c->rbuf[plen] = '\0';
  r->payload = c->rbuf;
  r->payload_len = plen;
  if (e && r->final)
    remove_inflight (c, e);
  return 0;
}

int
nbdp_client_recv_reply (struct nbdp_client *c, struct nbdp_client_reply *r,
                        uint64_t max, int64_t simple_data_len)
{
  struct nbdp_inflight e;

  clear_failure (c);
  return recv_one (c, r, max, simple_data_len, &e);
}

/* ---- Transmission: checked commands ---- */

static void violation (struct nbdp_cmd *cmd, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* Record the first protocol violation seen in a command's replies. */
static void
violation (struct nbdp_cmd *cmd, const char *fmt, ...)
{
  va_list ap;

  if (cmd->violation)
    return;
  cmd->violation = true;
  va_start (ap, fmt);
  vsnprintf (cmd->violation_message, sizeof cmd->violation_message, fmt, ap);
  va_end (ap);
}

static void
note_error (struct nbdp_cmd *cmd, uint32_t error)
{
  if (cmd->error == 0)
    cmd->error = error;
}

int
nbdp_client_cmd_start (struct nbdp_client *c, struct nbdp_cmd *cmd)
{
  struct nbdp_request req = { 0 };
  const void *payload = NULL;
  size_t plen = 0;
  bool ext;

  clear_failure (c);
  cmd->done = false;
  cmd->error = 0;
  cmd->error_message[0] = '\0';
  cmd->have_error_offset = false;
  cmd->violation = false;
  cmd->violation_message[0] = '\0';
  cmd->n_chunks = 0;
  cmd->data_bytes = cmd->hole_bytes = 0;
  cmd->n_covered = 0;
  cmd->ctx_seen = 0;
  if (cmd->cookie == 0)
    cmd->cookie = nbdp_client_next_cookie (c);

  ext = cmd->layout == NBDP_LAYOUT_AUTO ? c->extended
    : cmd->layout == NBDP_LAYOUT_EXTENDED;
  req.flags = cmd->flags;
  req.type = cmd->type;
  req.cookie = cmd->cookie;
  req.offset = cmd->offset;
  req.count = cmd->count;
  if (cmd->type == NBD_CMD_WRITE) {
    if (cmd->count > SIZE_MAX)
      return fail (c, NBDP_FAIL_IO, EINVAL, "write too large");
    payload = cmd->payload;
    plen = (size_t) cmd->count;
    if (ext)
      req.flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  }
  else if (cmd->payload) {
    payload = cmd->payload;
    plen = cmd->payload_len;
  }
  if (cmd->type == NBD_CMD_READ && cmd->buf == NULL)
    return fail (c, NBDP_FAIL_IO, EINVAL, "READ command without a buffer");
  return send_request (c, &req, cmd->layout, payload, plen, cmd);
}

/* Insert [off, off+len) into the sorted ranges of a READ; false if it
 * overlaps a range already there.
 */
static bool
cover (struct nbdp_cmd *cmd, uint64_t off, uint64_t len, bool *nomem)
{
  struct range *v = cmd->covered;
  size_t lo = 0, hi = cmd->n_covered;

  *nomem = false;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].off < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  /* lo: first range starting at or after off. */
  if (lo > 0 && v[lo - 1].off + v[lo - 1].len > off)
    return false;
  if (lo < cmd->n_covered && off + len > v[lo].off)
    return false;
  if (cmd->n_covered == cmd->cap_covered) {
    size_t ncap = cmd->cap_covered ? 2 * cmd->cap_covered : 16;
    struct range *p = realloc (v, ncap * sizeof *p);
    if (p == NULL) {
      *nomem = true;
      return true;
    }
    cmd->covered = v = p;
    cmd->cap_covered = ncap;
  }
  memmove (&v[lo + 1], &v[lo], (cmd->n_covered - lo) * sizeof *v);
  v[lo].off = off;
  v[lo].len = len;
  cmd->n_covered++;
  return true;
}

/* Check that a READ chunk's range lies in the request and does not
 * overlap earlier chunks.  Returns false (with a violation) if not.
 */
static bool
read_range_ok (struct nbdp_cmd *cmd, const char *what, uint64_t off,
               uint64_t len)
{
  bool nomem;

  if (off < cmd->offset || off - cmd->offset > cmd->count ||
      len > cmd->count - (off - cmd->offset)) {
    violation (cmd, "NBD_CMD_READ offset %" PRIu64 " count %" PRIu64
               " (cookie %" PRIu64 "): %s chunk covers offset %" PRIu64
               " length %" PRIu64 ", outside the request",
               cmd->offset, cmd->count, cmd->cookie, what, off, len);
    return false;
  }
  if (!cover (cmd, off, len, &nomem)) {
    violation (cmd, "NBD_CMD_READ offset %" PRIu64 " count %" PRIu64
               " (cookie %" PRIu64 "): %s chunk at offset %" PRIu64
               " length %" PRIu64 " overlaps an earlier chunk",
               cmd->offset, cmd->count, cmd->cookie, what, off, len);
    return false;
  }
  if (nomem) {
    violation (cmd, "out of memory tracking READ chunks");
    return false;
  }
  return true;
}

static bool
context_known (struct nbdp_client *c, uint32_t id, size_t *idx)
{
  size_t i;

  for (i = 0; i < c->n_contexts; i++)
    if (c->contexts[i].id == id) {
      *idx = i;
      return true;
    }
  return false;
}

static void
apply_block_status (struct nbdp_client *c, struct nbdp_cmd *cmd,
                    const struct nbdp_client_reply *r)
{
  bool ext = r->hdr.type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
  uint32_t ctx_id;
  size_t n, i, idx;
  struct nbdp_extent *ex;
  struct nbdp_bs_extent *all;
  uint64_t off, sum = 0;
  char tb[32];
  const char *tn = nbdp_reply_type_str (tb, sizeof tb, r->hdr.type);

  if (cmd->type != NBD_CMD_BLOCK_STATUS) {
    violation (cmd, "%s chunk in reply to %s (cookie %" PRIu64 "): only "
               "valid for NBD_CMD_BLOCK_STATUS", tn,
               nbdp_name_of_cmd (cmd->type) ? nbdp_name_of_cmd (cmd->type)
               : "?", cmd->cookie);
    return;
  }
  if (ext != c->extended) {
    violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): received "
               "%s although extended headers were %snegotiated (expected "
               "%s)", cmd->cookie, tn, c->extended ? "" : "not ",
               c->extended ? "NBD_REPLY_TYPE_BLOCK_STATUS_EXT"
               : "NBD_REPLY_TYPE_BLOCK_STATUS");
    /* Decode it anyway: the layout is known from the type. */
  }
  if (!nbdp_decode_block_status (r->payload, r->payload_len, ext, &ctx_id,
                                 NULL, 0, &n)) {
    violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): %s chunk "
               "has a payload of %" PRIu64 " bytes, expected %s", cmd->cookie,
               tn, r->payload_len,
               ext ? "8 + 16*N (N >= 1) with N equal to the descriptor count"
               : "4 + 8*N (N >= 1)");
    return;
  }
  if (!context_known (c, ctx_id, &idx)) {
    violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): %s chunk "
               "for context id %" PRIu32 ", which was not negotiated with "
               "NBD_OPT_SET_META_CONTEXT", cmd->cookie, tn, ctx_id);
    return;
  }
  if (idx < 32 && (cmd->ctx_seen & (UINT32_C (1) << idx))) {
    violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): second "
               "status chunk for context id %" PRIu32 " (%s); expected "
               "exactly one per context", cmd->cookie, ctx_id,
               c->contexts[idx].name);
    return;
  }
  if (idx < 32)
    cmd->ctx_seen |= UINT32_C (1) << idx;

  ex = malloc (n * sizeof *ex);
  all = realloc (cmd->extents, (cmd->n_extents + n) * sizeof *all);
  if (ex == NULL || all == NULL) {
    free (ex);
    if (all)
      cmd->extents = all;
    violation (cmd, "out of memory decoding %zu extents", n);
    return;
  }
  cmd->extents = all;
  nbdp_decode_block_status (r->payload, r->payload_len, ext, &ctx_id,
                            ex, n, &n);
  if ((cmd->flags & NBD_CMD_FLAG_REQ_ONE) && n != 1)
    violation (cmd, "NBD_CMD_BLOCK_STATUS with REQ_ONE (cookie %" PRIu64
               "): context %" PRIu32 " has %zu extents, expected exactly 1",
               cmd->cookie, ctx_id, n);
  off = cmd->offset;
  for (i = 0; i < n; i++) {
    if (ex[i].length == 0)
      violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): extent %zu "
                 "of context %" PRIu32 " has length 0 (must be nonzero)",
                 cmd->cookie, i, ctx_id);
    if (i + 1 < n) {
      /* The extents before the last must end inside the request. */
      if (ex[i].length >= cmd->count - sum) {
        violation (cmd, "NBD_CMD_BLOCK_STATUS offset %" PRIu64 " count %"
                   PRIu64 " (cookie %" PRIu64 "): context %" PRIu32
                   " extents 0..%zu already reach the end of the request "
                   "but more follow", cmd->offset, cmd->count, cmd->cookie,
                   ctx_id, i);
        sum = cmd->count;
      }
      else
        sum += ex[i].length;
    }
    if ((cmd->flags & NBD_CMD_FLAG_REQ_ONE) && ex[i].length > cmd->count)
      violation (cmd, "NBD_CMD_BLOCK_STATUS with REQ_ONE count %" PRIu64
                 " (cookie %" PRIu64 "): the extent has length %" PRIu64
                 ", longer than the request", cmd->count, cmd->cookie,
                 ex[i].length);
    if (ext && strncmp (c->contexts[idx].name, "base:", 5) == 0 &&
        (ex[i].flags >> 32) != 0)
      violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): context "
                 "%s extent %zu has status 0x%" PRIx64 "; the upper 32 bits "
                 "must be zero for base: contexts", cmd->cookie,
                 c->contexts[idx].name, i, ex[i].flags);
    cmd->extents[cmd->n_extents++] = (struct nbdp_bs_extent) {
      .context_id = ctx_id, .offset = off, .length = ex[i].length,
      .flags = ex[i].flags,
    };
    off = ex[i].length > UINT64_MAX - off ? UINT64_MAX : off + ex[i].length;
  }
  free (ex);
}

static void
apply_error_chunk (struct nbdp_cmd *cmd, const struct nbdp_client_reply *r)
{
  uint32_t error;
  const char *msg;
  uint16_t msglen;
  uint64_t off = 0;
  char tb[32];
  const char *tn = nbdp_reply_type_str (tb, sizeof tb, r->hdr.type);

  if (!nbdp_decode_error_chunk (r->payload, r->payload_len, r->hdr.type,
                                &error, &msg, &msglen, &off)) {
    violation (cmd, "reply to cookie %" PRIu64 ": %s chunk of %" PRIu64
               " bytes is inconsistent with its message length (expected "
               "6 + message length%s)", cmd->cookie, tn, r->payload_len,
               r->hdr.type == NBD_REPLY_TYPE_ERROR_OFFSET ? " + 8" : "");
    note_error (cmd, NBD_EINVAL);
    return;
  }
  if (error == 0)
    violation (cmd, "reply to cookie %" PRIu64 ": %s chunk with error 0 "
               "(must be nonzero)", cmd->cookie, tn);
  note_error (cmd, error ? error : NBD_EINVAL);
  if (cmd->error_message[0] == '\0' && msglen) {
    size_t ml = msglen > NBD_MAX_STRING ? NBD_MAX_STRING : msglen;
    memcpy (cmd->error_message, msg, ml);
    cmd->error_message[ml] = '\0';
  }
  if (msglen > NBD_MAX_STRING)
    violation (cmd, "reply to cookie %" PRIu64 ": %s message of %u bytes "
               "exceeds the 4096-byte limit", cmd->cookie, tn, msglen);
  if (r->hdr.type == NBD_REPLY_TYPE_ERROR_OFFSET) {
    switch (cmd->type) {
    case NBD_CMD_READ: case NBD_CMD_WRITE: case NBD_CMD_TRIM:
    case NBD_CMD_CACHE: case NBD_CMD_WRITE_ZEROES: case NBD_CMD_BLOCK_STATUS:
      break;
    default:
      violation (cmd, "reply to cookie %" PRIu64 ": NBD_REPLY_TYPE_ERROR_"
                 "OFFSET is not valid for %s", cmd->cookie,
                 nbdp_name_of_cmd (cmd->type) ? nbdp_name_of_cmd (cmd->type)
                 : "this command");
    }
    if (off < cmd->offset || off - cmd->offset >= cmd->count)
      violation (cmd, "request offset %" PRIu64 " count %" PRIu64
                 " (cookie %" PRIu64 "): NBD_REPLY_TYPE_ERROR_OFFSET names "
                 "offset %" PRIu64 ", outside the request",
                 cmd->offset, cmd->count, cmd->cookie, off);
    if (!cmd->have_error_offset) {
      cmd->have_error_offset = true;
      cmd->error_offset = off;
    }
  }
}

/* Apply one received reply to its command.  Returns true if the reply
 * requires a hard disconnect at once (proto.md "Structured reply types":
 * for a chunk of unknown non-error type, or NBD_REPLY_TYPE_NONE without
 * NBD_REPLY_FLAG_DONE, "the client MUST initiate a hard disconnect"):
 * waiting on for a DONE that may never come is not an option.  Other
 * violations are recorded in cmd and the reply is read to its end.
 */
static bool
apply (struct nbdp_client *c, struct nbdp_cmd *cmd,
       const struct nbdp_client_reply *r)
{
  char cb[32], tb[32];
  const char *cn = nbdp_cmd_str (cb, sizeof cb, cmd->type);
  const char *tn = nbdp_reply_type_str (tb, sizeof tb, r->hdr.type);
  bool hard = false;

  cmd->n_chunks++;

  /* Is this kind of reply allowed in this mode? */
  if (c->extended && r->hdr.kind != NBDP_REPLY_EXTENDED)
    violation (cmd, "%s (cookie %" PRIu64 "): received a %s reply although "
               "extended headers were negotiated (expected magic 0x%08"
               PRIx32 ")", cn, cmd->cookie,
               r->hdr.kind == NBDP_REPLY_SIMPLE ? "simple" : "structured",
               NBD_EXTENDED_REPLY_MAGIC);
  else if (!c->extended && r->hdr.kind == NBDP_REPLY_EXTENDED)
    violation (cmd, "%s (cookie %" PRIu64 "): received an extended reply "
               "although extended headers were not negotiated", cn,
               cmd->cookie);
  else if (!c->structured && !c->extended &&
           r->hdr.kind == NBDP_REPLY_STRUCTURED)
    violation (cmd, "%s (cookie %" PRIu64 "): received a structured reply "
               "chunk although structured replies were not negotiated",
               cn, cmd->cookie);
  else if ((c->structured || c->extended) &&
           r->hdr.kind == NBDP_REPLY_SIMPLE && cmd->type == NBD_CMD_READ)
    violation (cmd, "NBD_CMD_READ (cookie %" PRIu64 "): received a simple "
               "reply although structured replies were negotiated "
               "(expected structured reply chunks)", cmd->cookie);
  if (r->hdr.kind == NBDP_REPLY_EXTENDED && r->hdr.offset != cmd->offset)
    violation (cmd, "%s offset %" PRIu64 " (cookie %" PRIu64 "): extended "
               "reply chunk %s carries offset %" PRIu64 ", expected the "
               "request's offset", cn, cmd->offset, cmd->cookie, tn,
               r->hdr.offset);

  if (r->hdr.kind == NBDP_REPLY_SIMPLE) {
    if (r->hdr.error)
      note_error (cmd, r->hdr.error);
    else if (cmd->type == NBD_CMD_READ) {
      memcpy (cmd->buf, r->payload, r->payload_len);
      cmd->data_bytes += r->payload_len;
    }
  }
  else {
    uint16_t type = r->hdr.type;

    if (type == NBD_REPLY_TYPE_NONE) {
      if (r->payload_len != 0)
        violation (cmd, "%s (cookie %" PRIu64 "): NBD_REPLY_TYPE_NONE with "
                   "%" PRIu64 " bytes of payload (expected 0)", cn,
                   cmd->cookie, r->payload_len);
      if (!r->final) {
        violation (cmd, "%s (cookie %" PRIu64 "): NBD_REPLY_TYPE_NONE "
                   "without NBD_REPLY_FLAG_DONE", cn, cmd->cookie);
        hard = true;
      }
    }
    else if (type == NBD_REPLY_TYPE_OFFSET_DATA) {
      if (cmd->type != NBD_CMD_READ)
        violation (cmd, "%s (cookie %" PRIu64 "): NBD_REPLY_TYPE_OFFSET_DATA "
                   "is only valid for NBD_CMD_READ", cn, cmd->cookie);
      else if (r->payload_len < 9)
        violation (cmd, "NBD_CMD_READ (cookie %" PRIu64 "): "
                   "NBD_REPLY_TYPE_OFFSET_DATA with %" PRIu64 " bytes of "
                   "payload, expected an 8-byte offset and at least 1 "
                   "byte of data", cmd->cookie, r->payload_len);
      else {
        uint64_t off = nbdp_get64 (r->payload);
        uint64_t len = r->payload_len - 8;
        if (read_range_ok (cmd, "NBD_REPLY_TYPE_OFFSET_DATA", off, len)) {
          memcpy ((char *) cmd->buf + (off - cmd->offset), r->payload + 8,
                  len);
          cmd->data_bytes += len;
        }
      }
    }
    else if (type == NBD_REPLY_TYPE_OFFSET_HOLE) {
      if (cmd->type != NBD_CMD_READ)
        violation (cmd, "%s (cookie %" PRIu64 "): NBD_REPLY_TYPE_OFFSET_HOLE "
                   "is only valid for NBD_CMD_READ", cn, cmd->cookie);
      else if (r->payload_len != 12)
        violation (cmd, "NBD_CMD_READ (cookie %" PRIu64 "): "
                   "NBD_REPLY_TYPE_OFFSET_HOLE with %" PRIu64 " bytes of "
                   "payload, expected 12", cmd->cookie, r->payload_len);
      else {
        uint64_t off = nbdp_get64 (r->payload);
        uint64_t len = nbdp_get32 (r->payload + 8);
        if (len == 0)
          violation (cmd, "NBD_CMD_READ (cookie %" PRIu64 "): "
                     "NBD_REPLY_TYPE_OFFSET_HOLE of length 0 (must be "
                     "nonzero)", cmd->cookie);
        else if (read_range_ok (cmd, "NBD_REPLY_TYPE_OFFSET_HOLE", off,
                                len)) {
          memset ((char *) cmd->buf + (off - cmd->offset), 0, len);
          cmd->hole_bytes += len;
        }
      }
    }
    else if (type == NBD_REPLY_TYPE_BLOCK_STATUS ||
             type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT)
      apply_block_status (c, cmd, r);
    else if (type & NBD_REPLY_TYPE_ERR (0))
      apply_error_chunk (cmd, r);
    else if (c->chunk_hook) {
      char msg[NBDP_CLIENT_ERRMAX] = "";

      /* A refusal is an unknown type to the extension, or one of its
       * violations that end the connection.
       */
      if (c->chunk_hook (c->hook_opaque, c, cmd, r, msg, sizeof msg) == -1) {
        violation (cmd, "%s", msg[0] ? msg : "chunk refused by the hook");
        hard = true;
      }
    }
    else {
      violation (cmd, "%s (cookie %" PRIu64 "): unknown non-error chunk "
                 "type %s", cn, cmd->cookie, tn);
      hard = true;
    }
  }

  if (r->final)
    cmd->done = true;
  if (hard || !r->final)
    return hard;
  if (cmd->error || cmd->violation)
    return false;
  if (cmd->type == NBD_CMD_READ &&
      cmd->data_bytes + cmd->hole_bytes != cmd->count)
    violation (cmd, "NBD_CMD_READ offset %" PRIu64 " count %" PRIu64
               " (cookie %" PRIu64 "): the reply ended (DONE) after %"
               PRIu64 " bytes of data and %" PRIu64 " bytes of holes, "
               "expected the whole request covered or an error",
               cmd->offset, cmd->count, cmd->cookie, cmd->data_bytes,
               cmd->hole_bytes);
  if (cmd->type == NBD_CMD_BLOCK_STATUS) {
    size_t i;
    for (i = 0; i < c->n_contexts && i < 32; i++)
      if ((cmd->ctx_seen & (UINT32_C (1) << i)) == 0)
        violation (cmd, "NBD_CMD_BLOCK_STATUS (cookie %" PRIu64 "): the "
                   "reply ended (DONE) without a status chunk for context "
                   "%s (id %" PRIu32 "); expected one per negotiated "
                   "context", cmd->cookie, c->contexts[i].name,
                   c->contexts[i].id);
  }
  return false;
}

int
nbdp_client_cmd_poll (struct nbdp_client *c, struct nbdp_cmd **which)
{
  struct nbdp_client_reply r;
  struct nbdp_inflight e;
  char nb[32];

  clear_failure (c);
  if (which)
    *which = NULL;
  if (recv_one (c, &r, c->max_reply_payload, -1, &e) == -1)
    return -1;
  if (c->reply_hook) {
    char msg[NBDP_CLIENT_ERRMAX] = "";

    if (c->reply_hook (c->hook_opaque, c, r.known_cookie ? e.cmd : NULL, &r,
                       msg, sizeof msg) == -1)
      return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO, "%s",
                        msg[0] ? msg : "reply refused by the hook");
  }
  if (!r.known_cookie)
    return fail (c, NBDP_FAIL_PROTOCOL, EPROTO,
                 "received a %s reply (type %s) with cookie %" PRIu64
                 ", which matches no request in flight",
                 r.hdr.kind == NBDP_REPLY_SIMPLE ? "simple"
                 : r.hdr.kind == NBDP_REPLY_STRUCTURED ? "structured"
                 : "extended",
                 r.hdr.kind == NBDP_REPLY_SIMPLE ? "-"
                 : nbdp_reply_type_str (nb, sizeof nb, r.hdr.type), r.hdr.cookie);
  if (e.cmd == NULL)
    return 0;                   /* a raw request: nothing to apply */
  if (which)
    *which = e.cmd;
  if (apply (c, e.cmd, &r))
    return fail_dead (c, NBDP_FAIL_PROTOCOL, EPROTO, "%s (hard disconnect)",
                      e.cmd->violation_message);
  return 0;
}

/* Turn a finished command into the return value and message. */
static int
cmd_result (struct nbdp_client *c, struct nbdp_cmd *cmd)
{
  char cb[32], eb[32];

  if (cmd->violation)
    return fail (c, NBDP_FAIL_PROTOCOL, EPROTO, "%s",
                 cmd->violation_message);
  if (cmd->error)
    return fail (c, NBDP_FAIL_REFUSED, nbdp_nbd_to_errno (cmd->error),
                 "%s offset %" PRIu64 " count %" PRIu64 " flags 0x%x: "
                 "the server replied %s%s%s",
                 nbdp_cmd_str (cb, sizeof cb, cmd->type), cmd->offset,
                 cmd->count, cmd->flags,
                 nbdp_error_str (eb, sizeof eb, cmd->error),
                 cmd->error_message[0] ? ": " : "", cmd->error_message);
  return 0;
}

int
nbdp_client_cmd_wait (struct nbdp_client *c, struct nbdp_cmd *cmd)
{
  while (!cmd->done) {
    if (find_inflight (c, cmd->cookie) == NULL)
      return fail (c, NBDP_FAIL_IO, EINVAL,
                   "command (cookie %" PRIu64 ") is not in flight",
                   cmd->cookie);
    if (nbdp_client_cmd_poll (c, NULL) == -1)
      return -1;
  }
  return cmd_result (c, cmd);
}

void
nbdp_client_cmd_cleanup (struct nbdp_client *c, struct nbdp_cmd *cmd)
{
  size_t i;

  if (c)
    for (i = 0; i < c->n_inflight; i++)
      if (c->inflight[i].cmd == cmd)
        c->inflight[i].cmd = NULL;
  free (cmd->covered);
  cmd->covered = NULL;
  cmd->n_covered = cmd->cap_covered = 0;
  free (cmd->extents);
  cmd->extents = NULL;
  cmd->n_extents = 0;
}

static int
run_cmd (struct nbdp_client *c, struct nbdp_cmd *cmd)
{
  int r;

  if (nbdp_client_cmd_start (c, cmd) == -1)
    r = -1;
  else
    r = nbdp_client_cmd_wait (c, cmd);
  nbdp_client_cmd_cleanup (c, cmd);
  return r;
}

int
nbdp_client_pread (struct nbdp_client *c, void *buf, uint64_t count,
                   uint64_t offset, uint16_t flags)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_READ, .flags = flags,
                          .offset = offset, .count = count, .buf = buf };
  return run_cmd (c, &cmd);
}

int
nbdp_client_pwrite (struct nbdp_client *c, const void *buf, uint64_t count,
                    uint64_t offset, uint16_t flags)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_WRITE, .flags = flags,
                          .offset = offset, .count = count, .payload = buf };
  return run_cmd (c, &cmd);
}

int
nbdp_client_flush (struct nbdp_client *c, uint16_t flags)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_FLUSH, .flags = flags };
  return run_cmd (c, &cmd);
}

int
nbdp_client_trim (struct nbdp_client *c, uint64_t count, uint64_t offset,
                  uint16_t flags)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_TRIM, .flags = flags,
                          .offset = offset, .count = count };
  return run_cmd (c, &cmd);
}

int
nbdp_client_write_zeroes (struct nbdp_client *c, uint64_t count,
                          uint64_t offset, uint16_t flags)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_WRITE_ZEROES, .flags = flags,
                          .offset = offset, .count = count };
  return run_cmd (c, &cmd);
}

int
nbdp_client_cache (struct nbdp_client *c, uint64_t count, uint64_t offset,
                   uint16_t flags)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_CACHE, .flags = flags,
                          .offset = offset, .count = count };
  return run_cmd (c, &cmd);
}

int
nbdp_client_block_status (struct nbdp_client *c, uint64_t count,
                          uint64_t offset, uint16_t flags,
                          struct nbdp_bs_extent **extents,
                          size_t *n_extents)
{
  struct nbdp_cmd cmd = { .type = NBD_CMD_BLOCK_STATUS, .flags = flags,
                          .offset = offset, .count = count };
  int r;

  *extents = NULL;
  *n_extents = 0;
  if (nbdp_client_cmd_start (c, &cmd) == -1)
    r = -1;
  else
    r = nbdp_client_cmd_wait (c, &cmd);
  if (r == 0) {
    *extents = cmd.extents;
    *n_extents = cmd.n_extents;
    cmd.extents = NULL;
  }
  nbdp_client_cmd_cleanup (c, &cmd);
  return r;
}

int
nbdp_client_disc (struct nbdp_client *c)
{
  struct nbdp_request req = { .type = NBD_CMD_DISC,
                              .cookie = nbdp_client_next_cookie (c) };

  clear_failure (c);
  if (send_request (c, &req, NBDP_LAYOUT_AUTO, NULL, 0, NULL) == -1)
    return -1;
  shutdown (c->fd, SHUT_WR);
  return 0;
}

int
nbdp_client_soft_disconnect (struct nbdp_client *c)
{
  clear_failure (c);
  if (c->fd == -1 || c->dead)
    return 0;
  if (c->transmission)
    return nbdp_client_disc (c);
  if (!c->cflags_sent)
    return 0;
  return nbdp_client_opt_abort (c);
}
