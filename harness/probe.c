/* nbd-matrix: the wire probe.  Connects to a server on its Unix socket,
 * negotiates the export with NBD_OPT_GO (falling back to
 * NBD_OPT_EXPORT_NAME) and reports the transmission flags and size the
 * server announced, then sends NBD_CMD_DISC.  This is how the harness
 * decides UNSUPPORTED from what was offered on the wire rather than from
 * what an adapter claims.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "nbd-proto.h"
#include "io.h"
#include "sockets.h"
#include "probe.h"

#define MAX_REPLY_LEN 65536
#define MAX_REPLIES 64

static uint16_t
get16 (const unsigned char *p)
{
  uint16_t v;
  memcpy (&v, p, 2);
  return be16toh (v);
}

static uint32_t
get32 (const unsigned char *p)
{
  uint32_t v;
  memcpy (&v, p, 4);
  return be32toh (v);
}

static uint64_t
get64 (const unsigned char *p)
{
  uint64_t v;
  memcpy (&v, p, 8);
  return be64toh (v);
}

static void
put16 (unsigned char *p, uint16_t v)
{
  v = htobe16 (v);
  memcpy (p, &v, 2);
}

static void
put32 (unsigned char *p, uint32_t v)
{
  v = htobe32 (v);
  memcpy (p, &v, 4);
}

static void
put64 (unsigned char *p, uint64_t v)
{
  v = htobe64 (v);
  memcpy (p, &v, 8);
}

static int __attribute__ ((format (printf, 2, 3)))
note (struct probe_result *r, const char *fmt, ...)
{
  va_list ap;
  size_t len = strlen (r->log);

  va_start (ap, fmt);
  vsnprintf (r->log + len, sizeof r->log - len, fmt, ap);
  va_end (ap);
  len = strlen (r->log);
  if (len + 1 < sizeof r->log) {
    r->log[len] = '\n';
    r->log[len + 1] = '\0';
  }
  return -1;
}

static int
send_option (int fd, uint32_t opt, const void *data, uint32_t len)
{
  unsigned char hdr[16];

  put64 (hdr, NBD_NEW_VERSION);
  put32 (hdr + 8, opt);
  put32 (hdr + 12, len);
  if (nbdp_write_full (fd, hdr, sizeof hdr) == -1)
    return -1;
  if (len && nbdp_write_full (fd, data, len) == -1)
    return -1;
  return 0;
}

void
probe_flags_string (int flags, char *buf, size_t len)
{
  static const char *const names[] = {
    "HAS_FLAGS", "READ_ONLY", "SEND_FLUSH", "SEND_FUA", "ROTATIONAL",
    "SEND_TRIM", "SEND_WRITE_ZEROES", "SEND_DF", "CAN_MULTI_CONN",
    "SEND_RESIZE", "SEND_CACHE", "SEND_FAST_ZERO", "BLOCK_STAT_PAYLOAD",
  };
  size_t n = 0;

  buf[0] = '\0';
  for (unsigned b = 0; b < 16; b++) {
    if (!(flags & (1 << b)))
      continue;
    if (b < sizeof names / sizeof names[0])
      n += (size_t) snprintf (buf + n, n < len ? len - n : 0, "%s%s",
                              n ? " " : "", names[b]);
    else
      n += (size_t) snprintf (buf + n, n < len ? len - n : 0, "%sbit%u",
                              n ? " " : "", b);
  }
}

/* NBD_OPT_GO.  Returns 0 with flags/size, 1 if the server does not know
 * NBD_OPT_GO, -1 on error.
 */
static int
opt_go (int fd, const char *export, struct probe_result *r)
{
  size_t nlen = strlen (export);
  unsigned char data[4 + 4096 + 2];
  bool got_export = false;

  if (nlen > 4096)
    return note (r, "export name too long");
  put32 (data, (uint32_t) nlen);
  memcpy (data + 4, export, nlen);
  put16 (data + 4 + nlen, 0);   /* no info requests */
  if (send_option (fd, NBD_OPT_GO, data, (uint32_t) (4 + nlen + 2)) == -1)
    return note (r, "sending NBD_OPT_GO: %s", strerror (errno));

  for (int i = 0; i < MAX_REPLIES; i++) {
    unsigned char hdr[20], *payload;
    uint64_t magic;
    uint32_t opt, type, len;

    if (nbdp_read_full (fd, hdr, sizeof hdr) == -1)
      return note (r, "reading the reply to NBD_OPT_GO: %s",
                   errno ? strerror (errno) : "server closed the connection");
    magic = get64 (hdr);
    opt = get32 (hdr + 8);
    type = get32 (hdr + 12);
    len = get32 (hdr + 16);
    if (magic != NBD_REP_MAGIC)
      return note (r, "option reply magic 0x%016" PRIx64 ", expected "
                   "0x%016" PRIx64, magic, NBD_REP_MAGIC);
    if (opt != NBD_OPT_GO)
      return note (r, "option reply for option %" PRIu32 ", expected "
                   "NBD_OPT_GO (7)", opt);
    if (len > MAX_REPLY_LEN)
      return note (r, "option reply length %" PRIu32 " exceeds %d", len,
                   MAX_REPLY_LEN);
    payload = malloc (len + 1);
    if (!payload)
      return note (r, "out of memory");
    if (len && nbdp_read_full (fd, payload, len) == -1) {
      free (payload);
      return note (r, "reading a reply payload: %s", strerror (errno));
    }
    payload[len] = '\0';
    if (type == NBD_REP_INFO && len >= 2 && get16 (payload) == NBD_INFO_EXPORT) {
      if (len != 12) {
        free (payload);
        return note (r, "NBD_INFO_EXPORT of length %" PRIu32 ", expected 12",
                     len);
      }
      r->size = get64 (payload + 2);
      r->flags = get16 (payload + 10);
      got_export = true;
    }
    else if (type == NBD_REP_ACK) {
      free (payload);
      if (!got_export)
        return note (r, "NBD_REP_ACK to NBD_OPT_GO without NBD_INFO_EXPORT");
      return 0;
    }
    else if (type == NBD_REP_ERR_UNSUP) {
      free (payload);
      return 1;
    }
    else if (type & (UINT32_C (1) << 31)) {
      note (r, "NBD_OPT_GO refused: reply type 0x%08" PRIx32 " %s", type,
            (char *) payload);
      free (payload);
      return -1;
    }
    free (payload);
  }
  return note (r, "more than %d replies to NBD_OPT_GO", MAX_REPLIES);
}

int
probe_server (const char *socket_path, const char *export,
              int timeout_ms, struct probe_result *r)
{
  int fd = nbdp_connect_unix (socket_path);

  if (fd == -1) {
    memset (r, 0, sizeof *r);
    r->flags = -1;
    return note (r, "connect %s: %s", socket_path, strerror (errno));
  }
  return probe_fd (fd, export, timeout_ms, r);
}

int
probe_fd (int fd, const char *export, int timeout_ms, struct probe_result *r)
{
  unsigned char greet[18], cflags[4];
  uint64_t magic, version;
  uint16_t gflags;
  struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
  int ret = -1;

  memset (r, 0, sizeof *r);
  r->flags = -1;
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  if (nbdp_read_full (fd, greet, 16) == -1) {
    note (r, "reading the greeting: %s",
          errno ? strerror (errno) : "server closed the connection");
    goto out;
  }
  magic = get64 (greet);
  version = get64 (greet + 8);
  if (magic != NBD_MAGIC) {
    note (r, "greeting magic 0x%016" PRIx64 ", expected NBDMAGIC", magic);
    goto out;
  }
  if (version == NBD_OLD_VERSION) {
    unsigned char rest[136];
    if (nbdp_read_full (fd, rest, sizeof rest) == -1) {
      note (r, "reading the oldstyle greeting: %s", strerror (errno));
      goto out;
    }
    r->size = get64 (rest);
    r->flags = get16 (rest + 10);
    r->oldstyle = true;
    note (r, "oldstyle handshake");
    ret = 0;
    goto out;
  }
  if (version != NBD_NEW_VERSION) {
    note (r, "greeting version 0x%016" PRIx64 ", expected IHAVEOPT", version);
    goto out;
  }
  if (nbdp_read_full (fd, greet + 16, 2) == -1) {
    note (r, "reading handshake flags: %s", strerror (errno));
    goto out;
  }
  gflags = get16 (greet + 16);
  r->no_zeroes = gflags & NBD_FLAG_NO_ZEROES;
  put32 (cflags, (gflags & NBD_FLAG_FIXED_NEWSTYLE ? NBD_FLAG_C_FIXED_NEWSTYLE
                  : 0) | (r->no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
  if (nbdp_write_full (fd, cflags, 4) == -1) {
    note (r, "sending client flags: %s", strerror (errno));
    goto out;
  }
  if (gflags & NBD_FLAG_FIXED_NEWSTYLE) {
    int g = opt_go (fd, export, r);
    if (g == -1)
      goto out;
    if (g == 0) {
      r->used_go = true;
      ret = 0;
      goto disc;
    }
    note (r, "NBD_OPT_GO unsupported; using NBD_OPT_EXPORT_NAME");
  }
  {
    unsigned char reply[10 + 124];
    size_t want = r->no_zeroes ? 10 : 134;
    if (send_option (fd, NBD_OPT_EXPORT_NAME, export,
                     (uint32_t) strlen (export)) == -1 ||
        nbdp_read_full (fd, reply, want) == -1) {
      note (r, "NBD_OPT_EXPORT_NAME: %s",
            errno ? strerror (errno) : "server closed the connection");
      goto out;
    }
    r->size = get64 (reply);
    r->flags = get16 (reply + 8);
    ret = 0;
  }
 disc:
  {
    unsigned char req[28] = { 0 };
    put32 (req, NBD_REQUEST_MAGIC);
    put16 (req + 6, NBD_CMD_DISC);
    put64 (req + 8, 1);
    nbdp_write_full (fd, req, sizeof req);
  }
 out:
  close (fd);
  if (ret == 0) {
    char names[256];
    probe_flags_string (r->flags, names, sizeof names);
    note (r, "%s: size %" PRIu64 ", transmission flags 0x%04x: %s",
          r->oldstyle ? "oldstyle" : r->used_go ? "NBD_OPT_GO"
          : "NBD_OPT_EXPORT_NAME", r->size, (unsigned) r->flags, names);
  }
  return ret;
}
