/* nbd-spy tests: a tiny scripted NBD server that breaks the published
 * protocol in one named way (--fault NAME), so that the tests can show
 * nbd-spy reporting the right requirement ID; and two client probes
 * (--client SOCKET garbage|starttls) that send bytes the spy cannot
 * decode and check that they come back unchanged (raw pass-through).
 *
 *   fake-server -U SOCKET [--fault NAME]   serve connections one by one
 *   fake-server --list-faults
 *   fake-server --client SOCKET garbage|starttls
 *
 * The server: fixed newstyle; NBD_OPT_STRUCTURED_REPLY acked, other
 * options but INFO/GO/EXPORT_NAME/LIST/META_CONTEXT/STARTTLS refused;
 * one export of 1 MiB of zeroes; READ answered with one data chunk (or a
 * simple reply), other commands with a simple reply.  Faults that make
 * the stream undecodable switch the server to echo mode: it sends back
 * whatever it receives, so the probes can check byte-exact forwarding.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd-proto.h"
#include "codec.h"
#include "io.h"
#include "log.h"
#include "sockets.h"

#define EXPORT_SIZE (1024 * 1024)

struct fault {
  const char *name;
  const char *breaks;
};

static const struct fault faults[] = {
  { "none", "nothing" },
  { "no-has-flags", "FLAG-TX-4: NBD_INFO_EXPORT flags without HAS_FLAGS" },
  { "ack-with-data", "HS-FIX-3: NBD_REP_ACK to STRUCTURED_REPLY carries 4 bytes" },
  { "block-size-bad", "SIZE-13: minimum block size 3" },
  { "hole-zero", "SR-HOLE-5: READ answered by a hole of size 0" },
  { "data-out-of-range", "SR-DATA-2: a data chunk past the request" },
  { "simple-read-structured", "SR-MSG-3: simple reply to READ with structured replies" },
  { "unknown-cookie", "TX-GEN-4: a reply for a cookie never sent" },
  { "error-zero", "SR-ERR-5: an error chunk with error 0" },
  { "reply-flags", "FLAG-REPLY-3: chunk flags 0x0003" },
  { "bad-reply-magic", "TX-GEN-1: garbage instead of a reply, then echo" },
  { "starttls", "(none: STARTTLS acked, then echo, as TLS would be)" },
  { "echo", "(none: the greeting, then echo whatever comes)" },
  { NULL, NULL },
};

static const char *fault = "none";

static bool
is (const char *name)
{
  return strcmp (fault, name) == 0;
}

static int
send_rep (int fd, uint32_t opt, uint32_t rep, const void *data, uint32_t len)
{
  unsigned char h[20];

  nbdp_put64 (h, NBD_REP_MAGIC);
  nbdp_put32 (h + 8, opt);
  nbdp_put32 (h + 12, rep);
  nbdp_put32 (h + 16, len);
  if (nbdp_write_full (fd, h, sizeof h) == -1)
    return -1;
  return len ? nbdp_write_full (fd, data, len) : 0;
}

static int
send_simple (int fd, uint32_t err, uint64_t cookie)
{
  unsigned char h[16];

  nbdp_put32 (h, NBD_SIMPLE_REPLY_MAGIC);
  nbdp_put32 (h + 4, err);
  nbdp_put64 (h + 8, cookie);
  return nbdp_write_full (fd, h, sizeof h);
}

static int
send_chunk (int fd, uint16_t flags, uint16_t type, uint64_t cookie,
            const void *data, uint32_t len)
{
  unsigned char h[20];

  nbdp_put32 (h, NBD_STRUCTURED_REPLY_MAGIC);
  nbdp_put16 (h + 4, flags);
  nbdp_put16 (h + 6, type);
  nbdp_put64 (h + 8, cookie);
  nbdp_put32 (h + 16, len);
  if (nbdp_write_full (fd, h, sizeof h) == -1)
    return -1;
  return len ? nbdp_write_full (fd, data, len) : 0;
}

/* Send back whatever arrives, until EOF. */
static void
echo (int fd)
{
  unsigned char buf[65536];
  ssize_t n;

  while ((n = read (fd, buf, sizeof buf)) > 0)
    if (nbdp_write_full (fd, buf, n) == -1)
      return;
}

static uint16_t
eflags (void)
{
  uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH;

  if (is ("no-has-flags"))
    f &= ~NBD_FLAG_HAS_FLAGS;
  return f;
}

/* The handshake; 1: transmission, 0: session over, -1: error. */
static int
handshake (int fd, bool *structured)
{
  unsigned char g[18], h[16], cf[4];
  unsigned char *data = NULL;

  nbdp_put64 (g, NBD_MAGIC);
  nbdp_put64 (g + 8, NBD_NEW_VERSION);
  nbdp_put16 (g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  if (nbdp_write_full (fd, g, sizeof g) == -1)
    return -1;
  if (is ("echo")) {
    echo (fd);
    return 0;
  }
  if (nbdp_read_full (fd, cf, 4) == -1)
    return -1;
  for (;;) {
    uint32_t opt, len;

    free (data);
    data = NULL;
    if (nbdp_read_full (fd, h, sizeof h) == -1)
      return -1;
    opt = nbdp_get32 (h + 8);
    len = nbdp_get32 (h + 12);
    if (len > 65536)
      return -1;
    data = malloc (len + 1);
    if (data == NULL || (len && nbdp_read_full (fd, data, len) == -1)) {
      free (data);
      return -1;
    }
    switch (opt) {
    case NBD_OPT_STRUCTURED_REPLY:
      *structured = true;
      if (is ("ack-with-data")) {
        if (send_rep (fd, opt, NBD_REP_ACK, "abcd", 4) == -1)
          goto err;
      }
      else if (send_rep (fd, opt, NBD_REP_ACK, NULL, 0) == -1)
        goto err;
      break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO: {
      unsigned char ie[12], bs[14];
      nbdp_put16 (ie, NBD_INFO_EXPORT);
      nbdp_put64 (ie + 2, EXPORT_SIZE);
      nbdp_put16 (ie + 10, eflags ());
      nbdp_put16 (bs, NBD_INFO_BLOCK_SIZE);
      nbdp_put32 (bs + 2, is ("block-size-bad") ? 3 : 1);
      nbdp_put32 (bs + 6, 4096);
      nbdp_put32 (bs + 10, 1024 * 1024);
      if (send_rep (fd, opt, NBD_REP_INFO, ie, sizeof ie) == -1 ||
          send_rep (fd, opt, NBD_REP_INFO, bs, sizeof bs) == -1 ||
          send_rep (fd, opt, NBD_REP_ACK, NULL, 0) == -1)
        goto err;
      if (opt == NBD_OPT_GO) {
        free (data);
        return 1;
      }
      break;
    }
    case NBD_OPT_EXPORT_NAME: {
      unsigned char r[10];
      nbdp_put64 (r, EXPORT_SIZE);
      nbdp_put16 (r + 8, eflags ());
      free (data);
      return nbdp_write_full (fd, r, sizeof r) == -1 ? -1 : 1;
    }
    case NBD_OPT_LIST: {
      unsigned char s[4];
      nbdp_put32 (s, 0);
      if (send_rep (fd, opt, NBD_REP_SERVER, s, 4) == -1 ||
          send_rep (fd, opt, NBD_REP_ACK, NULL, 0) == -1)
        goto err;
      break;
    }
    case NBD_OPT_STARTTLS:
      if (is ("starttls")) {
        if (send_rep (fd, opt, NBD_REP_ACK, NULL, 0) == -1)
          goto err;
        free (data);
        echo (fd);
        return 0;
      }
      if (send_rep (fd, opt, NBD_REP_ERR_UNSUP, NULL, 0) == -1)
        goto err;
      break;
    case NBD_OPT_ABORT:
      send_rep (fd, opt, NBD_REP_ACK, NULL, 0);
      free (data);
      return 0;
    default:
      if (send_rep (fd, opt, NBD_REP_ERR_UNSUP, NULL, 0) == -1)
        goto err;
      break;
    }
  }
 err:
  free (data);
  return -1;
}

static int
answer_read (int fd, bool structured, uint64_t cookie, uint64_t off,
             uint32_t count)
{
  unsigned char *buf = calloc (1, 8 + (size_t) count + 16);
  int r = -1;

  if (buf == NULL)
    return -1;
  if (is ("unknown-cookie") &&
      send_simple (fd, 0, cookie + 1000) == -1)
    goto out;
  if (is ("bad-reply-magic")) {
    /* Garbage where a reply should be; then echo from here on. */
    memset (buf, 0x5a, 64);
    if (nbdp_write_full (fd, buf, 64) == -1)
      goto out;
    echo (fd);
    r = -1;
    goto out;
  }
  if (!structured || is ("simple-read-structured")) {
    r = send_simple (fd, 0, cookie) == -1 ||
      nbdp_write_full (fd, buf + 8, count) == -1 ? -1 : 0;
    goto out;
  }
  if (is ("hole-zero")) {
    /* A hole of size 0, then the real data. */
    nbdp_put64 (buf, off);
    nbdp_put32 (buf + 8, 0);
    if (send_chunk (fd, 0, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, buf, 12) == -1)
      goto out;
    memset (buf, 0, 12);
  }
  if (is ("error-zero")) {
    memset (buf, 0, 6);
    r = send_chunk (fd, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie,
                    buf, 6);
    goto out;
  }
  nbdp_put64 (buf, is ("data-out-of-range") ? off + count : off);
  r = send_chunk (fd, is ("reply-flags") ? 3 : NBD_REPLY_FLAG_DONE,
                  NBD_REPLY_TYPE_OFFSET_DATA, cookie, buf, 8 + count);
 out:
  free (buf);
  return r;
}

static void
serve (int fd)
{
  bool structured = false;
  unsigned char h[28];

  if (handshake (fd, &structured) != 1)
    return;
  for (;;) {
    uint16_t type;
    uint64_t cookie, off;
    uint32_t count;

    if (nbdp_read_full (fd, h, sizeof h) == -1)
      return;
    if (nbdp_get32 (h) != NBD_REQUEST_MAGIC)
      return;
    type = nbdp_get16 (h + 6);
    cookie = nbdp_get64 (h + 8);
    off = nbdp_get64 (h + 16);
    count = nbdp_get32 (h + 24);
    switch (type) {
    case NBD_CMD_DISC:
      return;
    case NBD_CMD_READ:
      if (count > 32 * 1024 * 1024 || answer_read (fd, structured, cookie,
                                                   off, count) == -1)
        return;
      break;
    case NBD_CMD_WRITE:
      if (nbdp_discard (fd, count) == -1 || send_simple (fd, 0, cookie) == -1)
        return;
      break;
    default:
      if (send_simple (fd, 0, cookie) == -1)
        return;
      break;
    }
  }
}

/* ---- client probes ------------------------------------------------- */

static void
fill (unsigned char *p, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245 + 12345;
    p[i] = seed >> 16;
  }
}

/* Send n bytes, read n back, compare. */
static int
roundtrip (int fd, size_t n, unsigned seed)
{
  unsigned char *out = malloc (n), *in = malloc (n);
  int r = -1;

  if (out == NULL || in == NULL)
    goto done;
  fill (out, n, seed);
  if (nbdp_write_full (fd, out, n) == -1) {
    nbdp_warn ("sending %zu bytes", n);
    goto done;
  }
  if (nbdp_read_full (fd, in, n) == -1) {
    nbdp_warn ("reading %zu bytes back", n);
    goto done;
  }
  if (memcmp (in, out, n) != 0) {
    nbdp_warnx ("sent %zu bytes; the %zu bytes echoed back differ", n, n);
    goto done;
  }
  printf ("%zu bytes echoed back unchanged\n", n);
  r = 0;
 done:
  free (out);
  free (in);
  return r;
}

static int
client (const char *path, const char *what)
{
  unsigned char g[18], b[20];
  int fd = nbdp_connect_unix (path);

  if (fd == -1) {
    nbdp_warn ("connect %s", path);
    return 1;
  }
  if (nbdp_read_full (fd, g, sizeof g) == -1) {
    nbdp_warn ("reading the greeting");
    return 1;
  }
  if (strcmp (what, "starttls") == 0) {
    nbdp_put32 (b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    nbdp_put64 (b + 4, NBD_NEW_VERSION);
    nbdp_put32 (b + 12, NBD_OPT_STARTTLS);
    nbdp_put32 (b + 16, 0);
    if (nbdp_write_full (fd, b, 20) == -1 ||
        nbdp_read_full (fd, b, 20) == -1 ||
        nbdp_get32 (b + 12) != NBD_REP_ACK) {
      nbdp_warnx ("NBD_OPT_STARTTLS: no NBD_REP_ACK");
      return 1;
    }
    /* What a TLS ClientHello would look like to the spy: noise. */
    return roundtrip (fd, 300000, 7) == 0 ? 0 : 1;
  }
  if (strcmp (what, "garbage") == 0)
    /* Instead of client flags: bytes that are no NBD message at all. */
    return roundtrip (fd, 100000, 11) == 0 ? 0 : 1;
  nbdp_warnx ("unknown probe '%s'", what);
  return 2;
}

int
main (int argc, char *argv[])
{
  const char *path = NULL;
  int lfd;

  nbdp_progname = "fake-server";
  signal (SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--list-faults") == 0) {
      for (const struct fault *f = faults; f->name; f++)
        printf ("%-24s %s\n", f->name, f->breaks);
      return 0;
    }
    else if (strcmp (argv[i], "--client") == 0 && i + 2 < argc)
      return client (argv[i + 1], argv[i + 2]);
    else if (strcmp (argv[i], "-U") == 0 && i + 1 < argc)
      path = argv[++i];
    else if (strcmp (argv[i], "--fault") == 0 && i + 1 < argc) {
      const struct fault *f;
      fault = argv[++i];
      for (f = faults; f->name; f++)
        if (strcmp (f->name, fault) == 0)
          break;
      if (f->name == NULL) {
        nbdp_warnx ("unknown fault '%s' (see --list-faults)", fault);
        return 2;
      }
    }
    else {
      fprintf (stderr, "usage: fake-server -U SOCKET [--fault NAME] | "
               "--list-faults | --client SOCKET garbage|starttls\n");
      return 2;
    }
  }
  if (path == NULL) {
    nbdp_warnx ("give -U SOCKET");
    return 2;
  }
  if (prctl (PR_SET_PDEATHSIG, SIGTERM) == -1)
    nbdp_fatal ("prctl");
  lfd = nbdp_listen_unix (path);
  if (lfd == -1)
    nbdp_fatal ("listen %s", path);
  for (;;) {
    int fd = accept (lfd, NULL, NULL);
    if (fd == -1) {
      if (errno == EINTR)
        continue;
      nbdp_fatal ("accept");
    }
    serve (fd);
    close (fd);
  }
}
