/* nbd-conform --client: the scripted NBD server of the client suites (see
 * client-script.h).  Single-threaded: one poll loop over the listening
 * socket, the client's connections and the client process (a pidfd);
 * each readable connection yields one whole message, which is judged,
 * recorded and answered as the test's script says.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client-script.h"
#include "io.h"
#include "sockets.h"
#include "uri.h"

#define MAX_OPTION_LEN   (1024 * 1024)
#define MAX_WRITE_LEN    (64 * 1024 * 1024)
#define HOLD_GRACE_MS    200

static int
pidfd_open_ (pid_t pid)
{
#ifdef SYS_pidfd_open
  return syscall (SYS_pidfd_open, pid, 0);
#else
  errno = ENOSYS;
  return -1;
#endif
}

static uint8_t
pattern_byte (uint64_t off)
{
  /* Position dependent, never a whole zero block: misplaced data shows. */
  return (uint8_t) ((off >> 9) * 37 + off * 7 + 1) | ((off & 1) ? 0 : 0x10);
}

struct ncs *
ncs_new (struct nc_ctx *t, enum ncs_action action)
{
  struct ncs *s = calloc (1, sizeof *s);

  if (s == NULL)
    nc_error (t, "out of memory");
  s->t = t;
  s->action = action;
  s->gflags = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;
  s->eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
    NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_CACHE |
    NBD_FLAG_SEND_DF | NBD_FLAG_SEND_FAST_ZERO;
  s->size = 1024 * 1024;
  s->structured = true;
  s->meta = true;
  s->meta_id = 1;
  s->lfd = -1;
  s->data = malloc (s->size);
  if (s->data == NULL)
    nc_error (t, "out of memory");
  for (uint64_t i = 0; i < s->size; i++)
    s->data[i] = pattern_byte (i);
  s->data_size = s->size;
  return s;
}

/* A test that changes s->size after ncs_new: resize the content. */
static void
content_fit (struct ncs *s)
{
  uint64_t have = s->data_size;

  if (s->size > 64 * 1024 * 1024)
    nc_error (s->t, "test bug: export size %" PRIu64 " above 64M", s->size);
  if (s->size != have) {
    uint8_t *p = realloc (s->data, s->size ? s->size : 1);
    if (p == NULL)
      nc_error (s->t, "out of memory");
    for (uint64_t i = have; i < s->size; i++)
      p[i] = pattern_byte (i);
    s->data = p;
    s->data_size = s->size;
  }
}

void
ncs_zero (struct ncs *s, uint64_t off, uint64_t len)
{
  content_fit (s);
  if (off > s->size || len > s->size - off)
    nc_error (s->t, "test bug: zero range past the export");
  memset (s->data + off, 0, len);
}

/* ---- recording ------------------------------------------------------ */

static void
record_opt (struct ncs_conn *c, uint32_t opt, uint32_t len)
{
  struct ncs *s = c->srv;

  if (s->n_opts == s->cap_opts) {
    size_t cap = s->cap_opts ? s->cap_opts * 2 : 16;
    struct ncs_opt_seen *p = realloc (s->opts, cap * sizeof *p);
    if (p == NULL)
      nc_error (s->t, "out of memory");
    s->opts = p;
    s->cap_opts = cap;
  }
  s->opts[s->n_opts++] = (struct ncs_opt_seen) { c->id, opt, len };
}

static void
record_req (struct ncs_conn *c, const struct nbdp_request *r)
{
  struct ncs *s = c->srv;

  if (s->n_reqs == s->cap_reqs) {
    size_t cap = s->cap_reqs ? s->cap_reqs * 2 : 64;
    struct ncs_req_seen *p = realloc (s->reqs, cap * sizeof *p);
    if (p == NULL)
      nc_error (s->t, "out of memory");
    s->reqs = p;
    s->cap_reqs = cap;
  }
  s->reqs[s->n_reqs++] = (struct ncs_req_seen) { c->id, *r, c->bad };
  if (r->type < 16)
    s->cmd_count[r->type]++;
}

/* ---- sending -------------------------------------------------------- */

static int
send_all (struct ncs_conn *c, const void *buf, size_t len)
{
  if (c->state == NCS_CLOSED)
    return -1;
  if (nbdp_write_full (c->fd, buf, len) == -1) {
    nc_log (c->srv->t, "conn %u: write failed: %s (the client closed?)",
            c->id, strerror (errno));
    return -1;
  }
  return 0;
}

int
ncs_opt_reply (struct ncs_conn *c, uint32_t opt, uint32_t reply,
               const void *data, uint32_t len)
{
  uint8_t hdr[NBDP_OPTION_REPLY_SIZE];
  struct nbdp_option_reply r = {
    .magic = NBD_REP_MAGIC, .option = opt, .reply = reply, .length = len,
  };

  nbdp_encode_option_reply (hdr, &r);
  if (send_all (c, hdr, sizeof hdr) == -1)
    return -1;
  return len ? send_all (c, data, len) : 0;
}

/* The request left the server: it is no longer in flight. */
static void
retire (struct ncs_conn *c, uint64_t cookie)
{
  struct nbdp_rules_req *r = nbdp_session_find (&c->s, cookie);
  size_t i;

  if (r == NULL)
    return;
  i = r - c->s.inflight;
  free (r->ranges);
  free (r->errs);
  c->s.inflight[i] = c->s.inflight[--c->s.nr_inflight];
}

int
ncs_simple (struct ncs_conn *c, uint64_t cookie, uint32_t error,
            const void *data, size_t len)
{
  uint8_t hdr[NBDP_SIMPLE_REPLY_SIZE];
  struct nbdp_reply r = {
    .kind = NBDP_REPLY_SIMPLE, .magic = NBD_SIMPLE_REPLY_MAGIC,
    .error = error, .cookie = cookie,
  };

  retire (c, cookie);
  nbdp_encode_reply (hdr, &r);
  if (send_all (c, hdr, sizeof hdr) == -1)
    return -1;
  return len ? send_all (c, data, len) : 0;
}

int
ncs_chunk (struct ncs_conn *c, uint64_t cookie, uint16_t flags,
           uint16_t type, uint64_t off, const void *payload, size_t len)
{
  uint8_t hdr[NBDP_EXTENDED_REPLY_SIZE];
  struct nbdp_reply r = {
    .kind = c->eh ? NBDP_REPLY_EXTENDED : NBDP_REPLY_STRUCTURED,
    .magic = c->eh ? NBD_EXTENDED_REPLY_MAGIC : NBD_STRUCTURED_REPLY_MAGIC,
    .flags = flags, .type = type, .cookie = cookie, .offset = off,
    .length = len,
  };
  size_t n;

  if (flags & NBD_REPLY_FLAG_DONE)
    retire (c, cookie);
  n = nbdp_encode_reply (hdr, &r);
  if (send_all (c, hdr, n) == -1)
    return -1;
  return len ? send_all (c, payload, len) : 0;
}

int
ncs_chunk_data (struct ncs_conn *c, const struct nbdp_request *r,
                uint16_t flags, uint64_t off, uint64_t len)
{
  uint8_t *buf = malloc (8 + len);
  int ret;

  if (buf == NULL)
    nc_error (c->srv->t, "out of memory");
  nbdp_put64 (buf, off);
  if (off <= c->srv->size && len <= c->srv->size - off)
    memcpy (buf + 8, c->srv->data + off, len);
  else
    memset (buf + 8, 0xee, len);
  ret = ncs_chunk (c, r->cookie, flags, NBD_REPLY_TYPE_OFFSET_DATA,
                   r->offset, buf, 8 + len);
  free (buf);
  return ret;
}

int
ncs_chunk_hole (struct ncs_conn *c, const struct nbdp_request *r,
                uint16_t flags, uint64_t off, uint64_t len)
{
  uint8_t buf[16];
  size_t n;

  nbdp_put64 (buf, off);
  if (c->eh) {
    nbdp_put64 (buf + 8, len);
    n = 16;
  }
  else {
    nbdp_put32 (buf + 8, (uint32_t) len);
    n = 12;
  }
  return ncs_chunk (c, r->cookie, flags, NBD_REPLY_TYPE_OFFSET_HOLE,
                    r->offset, buf, n);
}

int
ncs_chunk_error (struct ncs_conn *c, const struct nbdp_request *r,
                 uint16_t flags, uint16_t type, uint32_t error,
                 const char *msg, uint64_t off)
{
  uint8_t buf[512];
  size_t mlen = msg ? strlen (msg) : 0, n;

  if (mlen > 256)
    mlen = 256;
  nbdp_put32 (buf, error);
  nbdp_put16 (buf + 4, (uint16_t) mlen);
  memcpy (buf + 6, msg ? msg : "", mlen);
  n = 6 + mlen;
  if (type == NBD_REPLY_TYPE_ERROR_OFFSET) {
    nbdp_put64 (buf + n, off);
    n += 8;
  }
  return ncs_chunk (c, r->cookie, flags, type, r->offset, buf, n);
}

int
ncs_error (struct ncs_conn *c, const struct nbdp_request *r, uint32_t error)
{
  if (c->sr || c->eh)
    return ncs_chunk_error (c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                            error, "nbd-conform scripted error", 0);
  return ncs_simple (c, r->cookie, error, NULL, 0);
}

static int
ok_reply (struct ncs_conn *c, const struct nbdp_request *r)
{
  if (c->eh)
    return ncs_chunk (c, r->cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE,
                      r->offset, NULL, 0);
  return ncs_simple (c, r->cookie, 0, NULL, 0);
}

void
ncs_read_chunks (struct ncs_conn *c, const struct nbdp_request *r,
                 uint64_t piece, bool holes, int perm)
{
  struct ncs *s = c->srv;
  size_t n = piece ? (r->count + piece - 1) / piece : 0, *order;
  unsigned seed = 12345;

  if (n == 0) {
    ncs_chunk (c, r->cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE,
               r->offset, NULL, 0);
    return;
  }
  order = malloc (n * sizeof *order);
  if (order == NULL)
    nc_error (s->t, "out of memory");
  for (size_t i = 0; i < n; i++)
    order[i] = perm == 1 ? n - 1 - i : i;
  if (perm == 2)
    for (size_t i = n - 1; i > 0; i--) {
      size_t j, tmp;
      seed = seed * 1103515245 + 12345;
      j = (seed >> 8) % (i + 1);
      tmp = order[i]; order[i] = order[j]; order[j] = tmp;
    }
  for (size_t k = 0; k < n; k++) {
    uint64_t off = r->offset + order[k] * piece;
    uint64_t len = r->count - order[k] * piece < piece
      ? r->count - order[k] * piece : piece;
    uint16_t fl = k == n - 1 ? NBD_REPLY_FLAG_DONE : 0;
    bool zero = false;

    if (holes) {
      zero = true;
      for (uint64_t i = 0; i < len && zero; i++)
        zero = s->data[off + i] == 0;
    }
    if ((zero ? ncs_chunk_hole (c, r, fl, off, len)
         : ncs_chunk_data (c, r, fl, off, len)) == -1)
      break;
  }
  free (order);
}

void
ncs_bad (struct ncs_conn *c, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->bad = true;
  nc_log (c->srv->t, "conn %u: server misbehaves on purpose: %s; from now "
          "on it stays silent", c->id, msg);
}

bool
ncs_first_target (struct ncs_conn *c, const struct nbdp_request *r, bool bs)
{
  if (r->type == NBD_CMD_READ)
    return c->n_reads == 1 && (!bs || c->n_bs == 0);
  if (bs && r->type == NBD_CMD_BLOCK_STATUS)
    return c->n_bs == 1 && c->n_reads == 0;
  return false;
}

/* base:allocation extents over [off, off+len), 4 KiB granularity. */
static void
reply_block_status (struct ncs_conn *c, const struct nbdp_request *r)
{
  struct ncs *s = c->srv;
  uint8_t buf[8 + 64 * 16];
  size_t n = 0, pos = c->eh ? 8 : 4, width = c->eh ? 16 : 8;
  uint64_t off = r->offset, end = r->offset + r->count;
  uint64_t cur_len = 0;
  uint32_t cur_flags = 0;

  nbdp_put32 (buf, s->meta_id);
  while (off < end && n < 64) {
    uint64_t blk = (off / 4096 + 1) * 4096;
    uint32_t fl;
    bool zero = true;

    if (blk > end)
      blk = end;
    for (uint64_t i = off; i < blk && zero; i++)
      zero = s->data[i] == 0;
    fl = (zero ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0) | s->bs_extra;
    if (cur_len && (fl != cur_flags || s->bs_no_merge)) {
      if (c->eh) {
        nbdp_put64 (buf + pos, cur_len);
        nbdp_put64 (buf + pos + 8, cur_flags);
      }
      else {
        nbdp_put32 (buf + pos, (uint32_t) cur_len);
        nbdp_put32 (buf + pos + 4, cur_flags);
      }
      pos += width;
      n++;
      cur_len = 0;
      if (r->flags & NBD_CMD_FLAG_REQ_ONE)
        break;
    }
    cur_flags = fl;
    cur_len += blk - off;
    off = blk;
  }
  if (cur_len && n < 64 && !(n && (r->flags & NBD_CMD_FLAG_REQ_ONE))) {
    if (c->eh) {
      nbdp_put64 (buf + pos, cur_len);
      nbdp_put64 (buf + pos + 8, cur_flags);
    }
    else {
      nbdp_put32 (buf + pos, (uint32_t) cur_len);
      nbdp_put32 (buf + pos + 4, cur_flags);
    }
    pos += width;
    n++;
  }
  if (c->eh)
    nbdp_put32 (buf + 4, (uint32_t) n);
  ncs_chunk (c, r->cookie, NBD_REPLY_FLAG_DONE,
             c->eh ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT
             : NBD_REPLY_TYPE_BLOCK_STATUS, r->offset, buf, pos);
}

void
ncs_reply (struct ncs_conn *c, const struct nbdp_request *r,
           const uint8_t *payload)
{
  struct ncs *s = c->srv;
  bool in_bounds = r->offset <= s->size && r->count <= s->size - r->offset;

  switch (r->type) {
  case NBD_CMD_READ:
    if (!in_bounds || r->count > MAX_WRITE_LEN) {
      ncs_error (c, r, NBD_EINVAL);
      return;
    }
    if (c->sr || c->eh) {
      if (r->count == 0)
        ncs_chunk (c, r->cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE,
                   r->offset, NULL, 0);
      else
        ncs_chunk_data (c, r, NBD_REPLY_FLAG_DONE, r->offset, r->count);
    }
    else
      ncs_simple (c, r->cookie, 0, s->data + r->offset, r->count);
    return;
  case NBD_CMD_WRITE:
    if (!in_bounds) {
      ncs_error (c, r, NBD_ENOSPC);
      return;
    }
    if (payload)
      memcpy (s->data + r->offset, payload, r->count);
    ok_reply (c, r);
    return;
  case NBD_CMD_TRIM:
  case NBD_CMD_WRITE_ZEROES:
    if (!in_bounds) {
      ncs_error (c, r, NBD_ENOSPC);
      return;
    }
    memset (s->data + r->offset, 0, r->count);
    ok_reply (c, r);
    return;
  case NBD_CMD_FLUSH:
  case NBD_CMD_CACHE:
    ok_reply (c, r);
    return;
  case NBD_CMD_BLOCK_STATUS:
    if (!in_bounds || !c->meta_selected || r->count == 0) {
      ncs_error (c, r, NBD_EINVAL);
      return;
    }
    reply_block_status (c, r);
    return;
  default:
    ncs_error (c, r, NBD_EINVAL);
    return;
  }
}

/* ---- client-side checks --------------------------------------------- */

/* Command flags documented for each command (FLAG-CMD-1). */
static uint16_t
documented_flags (uint16_t type)
{
  switch (type) {
  case NBD_CMD_READ: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
  case NBD_CMD_WRITE: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_PAYLOAD_LEN;
  case NBD_CMD_WRITE_ZEROES:
    return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
  case NBD_CMD_BLOCK_STATUS:
    return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE |
      NBD_CMD_FLAG_PAYLOAD_LEN;
  default: return NBD_CMD_FLAG_FUA;
  }
}

static void
check_request (struct ncs_conn *c, const struct nbdp_request *r)
{
  struct nc_ctx *t = c->srv->t;
  struct nbdp_violations v;
  char fb[128];
  const char *cmd = nbdp_name_of_cmd (r->type);

  if (cmd == NULL)
    cmd = "unknown command";
  nbdp_violations_clear (&v);
  nbdp_rules_check_request (&c->s, r, &v);
  nc_violations (t, &v);
  if (r->flags & ~documented_flags (r->type))
    nc_fail (t, "FLAG-CMD-1", "conn %u: %s with command flags %s: only "
             "0x%04x are documented for it", c->id, cmd,
             nbdp_cmd_flags_str (fb, sizeof fb, r->flags),
             documented_flags (r->type));
  if ((r->flags & NBD_CMD_FLAG_FUA) && r->type != NBD_CMD_WRITE &&
      r->type != NBD_CMD_WRITE_ZEROES && r->type != NBD_CMD_TRIM)
    nc_should (t, "FLAG-CMD-3", "conn %u: %s with NBD_CMD_FLAG_FUA, a "
               "command that does not write", c->id, cmd);
  if (r->count == 0) {
    static const struct { uint16_t type; const char *id; } zl[] = {
      { NBD_CMD_READ, "CMD-READ-2" }, { NBD_CMD_WRITE, "CMD-WRITE-2" },
      { NBD_CMD_TRIM, "CMD-TRIM-2" }, { NBD_CMD_WRITE_ZEROES, "CMD-WZ-1" },
      { NBD_CMD_BLOCK_STATUS, "CMD-BS-1" },
    };
    for (size_t i = 0; i < sizeof zl / sizeof zl[0]; i++)
      if (zl[i].type == r->type)
        nc_should (t, zl[i].id, "conn %u: %s of length 0 at offset %"
                   PRIu64, c->id, cmd, r->offset);
  }
  if (r->type == NBD_CMD_DISC && c->s.nr_inflight > 0)
    nc_should (t, "TX-TERM-9", "conn %u: NBD_CMD_DISC sent with %zu "
               "request(s) still in flight", c->id, c->s.nr_inflight);
}

/* ---- the handshake -------------------------------------------------- */

static void
conn_close (struct ncs_conn *c)
{
  if (c->state != NCS_CLOSED) {
    close (c->fd);
    c->fd = -1;
    c->state = NCS_CLOSED;
  }
}

static int
send_greeting (struct ncs_conn *c)
{
  uint8_t buf[18];

  nbdp_put64 (buf, NBD_MAGIC);
  nbdp_put64 (buf + 8, NBD_NEW_VERSION);
  nbdp_put16 (buf + 16, c->srv->gflags);
  return send_all (c, buf, sizeof buf);
}

static void
read_cflags (struct ncs_conn *c)
{
  struct ncs *s = c->srv;
  uint8_t buf[4];
  char fb[128];

  if (nbdp_read_full (c->fd, buf, 4) == -1) {
    nc_log (s->t, "conn %u: closed before sending its client flags", c->id);
    c->eof = true;
    conn_close (c);
    return;
  }
  c->cflags = nbdp_get32 (buf);
  nc_log (s->t, "conn %u: client flags %s", c->id,
          nbdp_cflags_str (fb, sizeof fb, c->cflags));
  if (c->cflags & ~(uint32_t) (NBD_FLAG_C_FIXED_NEWSTYLE |
                               NBD_FLAG_C_NO_ZEROES))
    nc_fail (s->t, "FLAG-CLI-5", "conn %u: client flags 0x%08" PRIx32
             " set undefined bits", c->id, c->cflags);
  if ((c->cflags & NBD_FLAG_C_NO_ZEROES) &&
      !(s->gflags & NBD_FLAG_NO_ZEROES))
    nc_fail (s->t, "FLAG-CLI-3", "conn %u: NBD_FLAG_C_NO_ZEROES set although "
             "the server did not offer NBD_FLAG_NO_ZEROES (handshake flags "
             "0x%04x)", c->id, s->gflags);
  if ((s->gflags & NBD_FLAG_FIXED_NEWSTYLE) &&
      !(c->cflags & NBD_FLAG_C_FIXED_NEWSTYLE))
    nc_should (s->t, "FLAG-CLI-1", "conn %u: the server offered "
               "NBD_FLAG_FIXED_NEWSTYLE, the client did not set "
               "NBD_FLAG_C_FIXED_NEWSTYLE", c->id);
  c->state = NCS_OPTIONS;
}

static void
enter_transmission (struct ncs_conn *c)
{
  struct ncs *s = c->srv;

  c->state = NCS_TRANSMISSION;
  c->s.transmission = true;
  c->s.structured = c->sr;
  c->s.extended = c->eh;
  c->s.export_size = s->size;
  c->s.eflags = s->eflags;
  c->s.have_block_size = c->block_size_sent && c->block_size_asked;
  c->s.min_block = s->min_block;
  c->s.pref_block = s->pref_block;
  c->s.max_payload = s->max_block;
  if (c->meta_selected) {
    c->s.nr_contexts = 1;
    c->s.context_ids[0] = s->meta_id;
    snprintf (c->s.context_names[0], sizeof c->s.context_names[0], "%s",
              NBD_BLOCK_ALLOCATION_CTX);
  }
  nc_log (s->t, "conn %u: transmission (structured %d, extended %d, "
          "block size constraints binding %d)", c->id, c->sr, c->eh,
          c->s.have_block_size);
}

static void
opt_export_name (struct ncs_conn *c, const uint8_t *data, uint32_t len)
{
  struct ncs *s = c->srv;
  uint8_t buf[10 + NBD_NEWSTYLE_ZEROES];
  size_t n = 10;

  if (c->eh)
    nc_fail (s->t, "EH-OPT-1", "conn %u: NBD_OPT_EXPORT_NAME after extended "
             "headers were negotiated", c->id);
  if (s->go_error && s->go_error != NBD_REP_ERR_UNSUP) {
    /* The export is refused and EXPORT_NAME has no error reply. */
    nc_log (s->t, "conn %u: NBD_OPT_EXPORT_NAME for a refused export: the "
            "server closes the connection", c->id);
    conn_close (c);
    return;
  }
  if (len != strlen (NCS_EXPORT) || memcmp (data, NCS_EXPORT, len) != 0)
    nc_log (s->t, "conn %u: export name \"%.*s\" (the URI says \"%s\")",
            c->id, (int) (len > 64 ? 64 : len), data, NCS_EXPORT);
  nbdp_put64 (buf, s->size);
  nbdp_put16 (buf + 8, s->eflags);
  if (!((s->gflags & NBD_FLAG_NO_ZEROES) &&
        (c->cflags & NBD_FLAG_C_NO_ZEROES))) {
    memset (buf + 10, 0, NBD_NEWSTYLE_ZEROES);
    n += NBD_NEWSTYLE_ZEROES;
  }
  if (send_all (c, buf, n) == 0)
    enter_transmission (c);
}

static void
send_info_export (struct ncs_conn *c)
{
  uint8_t b[12];

  nbdp_put16 (b, NBD_INFO_EXPORT);
  nbdp_put64 (b + 2, c->srv->size);
  nbdp_put16 (b + 10, c->srv->eflags);
  ncs_opt_reply (c, c->last_opt, NBD_REP_INFO, b, sizeof b);
}

static void
opt_info_go (struct ncs_conn *c, uint32_t opt, const uint8_t *data,
             uint32_t len)
{
  struct ncs *s = c->srv;
  uint32_t namelen;
  uint16_t nreq;
  bool seen[4] = { false };
  const char *oname = opt == NBD_OPT_GO ? "NBD_OPT_GO" : "NBD_OPT_INFO";

  if (len < 6 || (namelen = nbdp_get32 (data)) > len - 6) {
    nc_fail (s->t, "OPT-GO-2", "conn %u: %s of length %" PRIu32 " with name "
             "length %" PRIu32 ": the name must fit in length - 6", c->id,
             oname, len, len >= 4 ? nbdp_get32 (data) : 0);
    ncs_opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    return;
  }
  nreq = nbdp_get16 (data + 4 + namelen);
  if ((uint64_t) 6 + namelen + 2 * (uint64_t) nreq != len) {
    nc_fail (s->t, "OPT-GO-2", "conn %u: %s of length %" PRIu32 ": name %"
             PRIu32 " bytes and %u information requests do not add up",
             c->id, oname, len, namelen, nreq);
    ncs_opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    return;
  }
  c->block_size_asked = false;
  for (uint16_t i = 0; i < nreq; i++) {
    uint16_t info = nbdp_get16 (data + 6 + namelen + 2 * i);
    if (info < 4) {
      if (seen[info])
        nc_fail (s->t, "OPT-GO-4", "conn %u: %s asks for %s twice", c->id,
                 oname, nbdp_name_of_info (info));
      seen[info] = true;
    }
  }
  c->block_size_asked = seen[NBD_INFO_BLOCK_SIZE];
  if (namelen != strlen (NCS_EXPORT) ||
      memcmp (data + 4, NCS_EXPORT, namelen) != 0)
    nc_log (s->t, "conn %u: %s for export \"%.*s\" (the URI says \"%s\")",
            c->id, oname, (int) (namelen > 64 ? 64 : namelen), data + 4,
            NCS_EXPORT);
  if (s->go_error) {
    const char *msg = "nbd-conform: scripted refusal";
    ncs_opt_reply (c, opt, s->go_error, s->go_error == NBD_REP_ERR_UNSUP
                   ? NULL : msg, s->go_error == NBD_REP_ERR_UNSUP ? 0
                   : (uint32_t) strlen (msg));
    return;
  }
  if (s->unknown_info) {
    uint8_t b[6];
    nbdp_put16 (b, 0x7f3c);
    nbdp_put32 (b + 2, 0xdeadbeef);
    ncs_opt_reply (c, opt, NBD_REP_INFO, b, sizeof b);
  }
  else
    send_info_export (c);
  if (seen[NBD_INFO_NAME]) {
    uint8_t b[2 + sizeof NCS_EXPORT];
    nbdp_put16 (b, NBD_INFO_NAME);
    memcpy (b + 2, NCS_EXPORT, strlen (NCS_EXPORT));
    ncs_opt_reply (c, opt, NBD_REP_INFO, b, 2 + strlen (NCS_EXPORT));
  }
  if (seen[NBD_INFO_DESCRIPTION]) {
    static const char d[] = "nbd-conform scripted server";
    uint8_t b[2 + sizeof d];
    nbdp_put16 (b, NBD_INFO_DESCRIPTION);
    memcpy (b + 2, d, strlen (d));
    ncs_opt_reply (c, opt, NBD_REP_INFO, b, 2 + strlen (d));
  }
  if (s->block_size && seen[NBD_INFO_BLOCK_SIZE]) {
    uint8_t b[14];
    nbdp_put16 (b, NBD_INFO_BLOCK_SIZE);
    nbdp_put32 (b + 2, s->min_block);
    nbdp_put32 (b + 6, s->pref_block);
    nbdp_put32 (b + 10, s->max_block);
    ncs_opt_reply (c, opt, NBD_REP_INFO, b, sizeof b);
    c->block_size_sent = true;
  }
  if (s->unknown_info)
    send_info_export (c);
  if (ncs_opt_reply (c, opt, NBD_REP_ACK, NULL, 0) == 0 &&
      opt == NBD_OPT_GO)
    enter_transmission (c);
}

/* LIST_META_CONTEXT / SET_META_CONTEXT. */
static void
opt_meta (struct ncs_conn *c, uint32_t opt, const uint8_t *data,
          uint32_t len)
{
  struct ncs *s = c->srv;
  bool set = opt == NBD_OPT_SET_META_CONTEXT;
  uint32_t namelen, nq, pos;
  bool selected = false;

  if (!c->sr && !c->eh) {
    if (set)
      nc_fail (s->t, "OPT-SMC-1", "conn %u: NBD_OPT_SET_META_CONTEXT before "
               "structured replies or extended headers were negotiated",
               c->id);
    else
      nc_should (s->t, "OPT-LMC-1", "conn %u: NBD_OPT_LIST_META_CONTEXT "
                 "before structured replies or extended headers were "
                 "negotiated", c->id);
    ncs_opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    return;
  }
  if (len < 8 || (namelen = nbdp_get32 (data)) > len - 8) {
    ncs_opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    return;
  }
  nq = nbdp_get32 (data + 4 + namelen);
  pos = 8 + namelen;
  for (uint32_t i = 0; i < nq; i++) {
    uint32_t ql;
    if (len - pos < 4 || (ql = nbdp_get32 (data + pos)) > len - pos - 4) {
      ncs_opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
      return;
    }
    if (memchr (data + pos + 4, ':', ql) == NULL)
      nc_fail (s->t, set ? "OPT-SMC-4" : "OPT-LMC-3", "conn %u: meta context "
               "query \"%.*s\" has no namespace and colon", c->id,
               (int) (ql > 64 ? 64 : ql), data + pos + 4);
    if (s->meta &&
        ((ql == strlen (NBD_BLOCK_ALLOCATION_CTX) &&
          memcmp (data + pos + 4, NBD_BLOCK_ALLOCATION_CTX, ql) == 0) ||
         (!set && ql == 5 && memcmp (data + pos + 4, "base:", 5) == 0)))
      selected = true;
    pos += 4 + ql;
  }
  if (!s->meta) {
    ncs_opt_reply (c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
    return;
  }
  if (nq == 0 && !set)
    selected = true;
  if (selected) {
    uint8_t b[4 + sizeof NBD_BLOCK_ALLOCATION_CTX];
    nbdp_put32 (b, set ? s->meta_id : 0);
    memcpy (b + 4, NBD_BLOCK_ALLOCATION_CTX,
            strlen (NBD_BLOCK_ALLOCATION_CTX));
    ncs_opt_reply (c, opt, NBD_REP_META_CONTEXT, b,
                   4 + strlen (NBD_BLOCK_ALLOCATION_CTX));
  }
  if (set)
    c->meta_selected = selected;
  ncs_opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
}

/* After NBD_OPT_ABORT or NBD_CMD_DISC nothing may come: watch for a
 * moment (the client may wait for the server to close, which it then
 * does), then close.
 */
static void
watch_then_close (struct ncs_conn *c, const char *id, const char *after)
{
  struct ncs *s = c->srv;
  struct pollfd p = { .fd = c->fd, .events = POLLIN };
  uint8_t b[512];
  ssize_t n;

  if (c->state == NCS_CLOSED)
    return;
  if (poll (&p, 1, 100) > 0) {
    n = read (c->fd, b, sizeof b);
    if (n > 0)
      nc_fail (s->t, id, "conn %u: %zd more byte(s) after %s; the client "
               "must send nothing more", c->id, n, after);
  }
  c->eof = true;
  conn_close (c);
}

static void
read_option (struct ncs_conn *c)
{
  struct ncs *s = c->srv;
  uint8_t hdr[NBDP_OPTION_SIZE];
  struct nbdp_option o;
  uint8_t *data = NULL;
  const char *name;
  char nb[64];

  if (nbdp_read_full (c->fd, hdr, sizeof hdr) == -1) {
    if (errno == 0) {
      nc_log (s->t, "conn %u: the client closed during option haggling",
              c->id);
      /* Closing without NBD_OPT_ABORT is a hard disconnect. */
      if (!c->bad)
        nc_fail (s->t, "HS-TERM-9", "conn %u: the client dropped the "
                 "connection during option haggling without NBD_OPT_ABORT "
                 "(a hard disconnect)", c->id);
    }
    else
      nc_log (s->t, "conn %u: truncated option header", c->id);
    c->eof = true;
    conn_close (c);
    return;
  }
  nbdp_decode_option (hdr, &o);
  name = nbdp_opt_str (nb, sizeof nb, o.option);
  if (o.magic != NBD_NEW_VERSION) {
    nc_fail (s->t, "COMPAT-BASE-1", "conn %u: option header with magic "
             "0x%016" PRIx64 ", expected IHAVEOPT 0x%016" PRIx64, c->id,
             o.magic, NBD_NEW_VERSION);
    conn_close (c);
    return;
  }
  if (o.length > MAX_OPTION_LEN) {
    nc_fail (s->t, "GEN-STR-3", "conn %u: %s with length %" PRIu32
             ", far beyond any sane option", c->id, name, o.length);
    conn_close (c);
    return;
  }
  data = malloc (o.length + 1);
  if (data == NULL)
    nc_error (s->t, "out of memory");
  if (o.length && nbdp_read_full (c->fd, data, o.length) == -1) {
    nc_log (s->t, "conn %u: %s: payload truncated", c->id, name);
    free (data);
    c->eof = true;
    conn_close (c);
    return;
  }
  record_opt (c, o.option, o.length);
  nc_log (s->t, "conn %u: option %s, %" PRIu32 " bytes", c->id, name,
          o.length);
  c->last_opt = o.option;

  /* HS-FIX-4: nothing may follow before the final reply. */
  {
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    if (o.option != NBD_OPT_ABORT && o.option != NBD_OPT_EXPORT_NAME &&
        poll (&p, 1, s->option_delay_ms) > 0 && (p.revents & POLLIN)) {
      char peek;
      if (recv (c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
        nc_fail (s->t, "HS-FIX-4", "conn %u: more data arrived after %s "
                 "before the server replied: the client must wait for the "
                 "final reply", c->id, name);
    }
  }

  if (s->on_option && s->on_option (s, c, o.option, data, o.length)) {
    free (data);
    return;
  }

  switch (o.option) {
  case NBD_OPT_EXPORT_NAME:
    opt_export_name (c, data, o.length);
    break;
  case NBD_OPT_ABORT:
    if (o.length)
      nc_should (s->t, "OPT-ABORT-2", "conn %u: NBD_OPT_ABORT with %" PRIu32
                 " bytes of data", c->id, o.length);
    c->aborted = true;
    if (s->abort_close)
      conn_close (c);
    else {
      ncs_opt_reply (c, o.option, NBD_REP_ACK, NULL, 0);
      watch_then_close (c, "HS-TERM-1", "NBD_OPT_ABORT");
    }
    break;
  case NBD_OPT_LIST:
    if (o.length) {
      nc_fail (s->t, "OPT-LIST-2", "conn %u: NBD_OPT_LIST with %" PRIu32
               " bytes of data", c->id, o.length);
      ncs_opt_reply (c, o.option, NBD_REP_ERR_INVALID, NULL, 0);
      break;
    }
    {
      uint8_t b[4 + sizeof NCS_EXPORT];
      nbdp_put32 (b, strlen (NCS_EXPORT));
      memcpy (b + 4, NCS_EXPORT, strlen (NCS_EXPORT));
      ncs_opt_reply (c, o.option, NBD_REP_SERVER, b, 4 + strlen (NCS_EXPORT));
      ncs_opt_reply (c, o.option, NBD_REP_ACK, NULL, 0);
    }
    break;
  case NBD_OPT_STARTTLS:
    if (o.length)
      nc_fail (s->t, "OPT-STARTTLS-1", "conn %u: NBD_OPT_STARTTLS with %"
               PRIu32 " bytes of data", c->id, o.length);
    ncs_opt_reply (c, o.option, NBD_REP_ERR_UNSUP, NULL, 0);
    break;
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
    opt_info_go (c, o.option, data, o.length);
    break;
  case NBD_OPT_STRUCTURED_REPLY:
    if (o.length) {
      nc_fail (s->t, "OPT-SR-1", "conn %u: NBD_OPT_STRUCTURED_REPLY with %"
               PRIu32 " bytes of data", c->id, o.length);
      ncs_opt_reply (c, o.option, NBD_REP_ERR_INVALID, NULL, 0);
    }
    else if (!s->structured)
      ncs_opt_reply (c, o.option, NBD_REP_ERR_UNSUP, NULL, 0);
    else {
      if (c->sr)
        nc_should (s->t, "HS-FIX-5", "conn %u: NBD_OPT_STRUCTURED_REPLY "
                   "sent again", c->id);
      c->sr = true;
      ncs_opt_reply (c, o.option, NBD_REP_ACK, NULL, 0);
    }
    break;
  case NBD_OPT_EXTENDED_HEADERS:
    if (o.length) {
      nc_fail (s->t, "EH-OPT-9", "conn %u: NBD_OPT_EXTENDED_HEADERS with %"
               PRIu32 " bytes of data", c->id, o.length);
      ncs_opt_reply (c, o.option, NBD_REP_ERR_INVALID, NULL, 0);
    }
    else if (!s->extended)
      ncs_opt_reply (c, o.option, NBD_REP_ERR_UNSUP, NULL, 0);
    else {
      if (c->eh)
        nc_should (s->t, "HS-FIX-5", "conn %u: NBD_OPT_EXTENDED_HEADERS "
                   "sent again", c->id);
      c->eh = true;
      ncs_opt_reply (c, o.option, NBD_REP_ACK, NULL, 0);
    }
    break;
  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT:
    opt_meta (c, o.option, data, o.length);
    break;
  default:
    ncs_opt_reply (c, o.option, NBD_REP_ERR_UNSUP, NULL, 0);
    break;
  }
  free (data);
}

/* ---- transmission --------------------------------------------------- */

static void
flush_held (struct ncs_conn *c)
{
  while (c->n_held > 0 && c->state != NCS_CLOSED) {
    struct nbdp_request r = c->held[--c->n_held];
    if (!c->bad)
      ncs_reply (c, &r, NULL);
  }
}

static void
read_request (struct ncs_conn *c)
{
  struct ncs *s = c->srv;
  uint8_t hdr[NBDP_REQUEST_EXT_SIZE];
  size_t hlen = c->eh ? NBDP_REQUEST_EXT_SIZE : NBDP_REQUEST_SIZE;
  struct nbdp_request r;
  uint8_t *payload = NULL;
  uint64_t plen = 0;
  char fb[128], nb[64];
  const char *cmd;

  if (nbdp_read_full (c->fd, hdr, hlen) == -1) {
    if (errno == 0)
      nc_log (s->t, "conn %u: the client closed the connection%s", c->id,
              c->bad ? " (after the server's misbehaviour)"
              : " without NBD_CMD_DISC");
    else
      nc_log (s->t, "conn %u: truncated request header", c->id);
    c->eof = true;
    conn_close (c);
    return;
  }
  nbdp_decode_request (hdr, c->eh, &r);
  cmd = nbdp_cmd_str (nb, sizeof nb, r.type);
  c->n_requests++;
  if (r.type == NBD_CMD_READ)
    c->n_reads++;
  if (r.type == NBD_CMD_BLOCK_STATUS)
    c->n_bs++;
  nc_log (s->t, "conn %u: %s flags %s offset %" PRIu64 " length %" PRIu64
          " cookie 0x%" PRIx64, c->id, cmd,
          nbdp_cmd_flags_str (fb, sizeof fb, r.flags), r.offset, r.count,
          r.cookie);
  record_req (c, &r);
  check_request (c, &r);
  if (r.magic != NBD_REQUEST_MAGIC && r.magic != NBD_EXTENDED_REQUEST_MAGIC) {
    /* Framing is lost: nothing more can be read. */
    conn_close (c);
    return;
  }
  if (r.type == NBD_CMD_DISC) {
    c->disc = true;
    if (c->bad)
      c->disc_after_bad = true;
    watch_then_close (c, "CMD-DISC-2", "NBD_CMD_DISC");
    return;
  }
  if (c->bad)
    c->reqs_after_bad++;
  if (r.type == NBD_CMD_WRITE)
    plen = r.count;
  else if (c->eh && (r.flags & NBD_CMD_FLAG_PAYLOAD_LEN))
    plen = r.count;
  if (plen > MAX_WRITE_LEN) {
    nc_fail (s->t, "SIZE-25", "conn %u: %s with a payload of %" PRIu64
             " bytes; the server gives up on the connection", c->id, cmd,
             plen);
    conn_close (c);
    return;
  }
  if (plen) {
    payload = malloc (plen);
    if (payload == NULL)
      nc_error (s->t, "out of memory");
    if (nbdp_read_full (c->fd, payload, plen) == -1) {
      nc_fail (s->t, "CMD-WRITE-1", "conn %u: %s of length %" PRIu64 ": the "
               "connection ended before the whole payload arrived", c->id,
               cmd, plen);
      free (payload);
      c->eof = true;
      conn_close (c);
      return;
    }
  }
  if (nbdp_rules_request_sent (&c->s, &r) == -1)
    nc_error (s->t, "out of memory");
  if (c->s.nr_inflight > c->inflight_max)
    c->inflight_max = c->s.nr_inflight;
  if (c->inflight_max > s->inflight_max)
    s->inflight_max = c->inflight_max;

  if (c->bad) {
    free (payload);
    return;
  }
  if (s->on_request && s->on_request (s, c, &r, payload)) {
    free (payload);
    return;
  }
  if (s->hold && (r.type == NBD_CMD_READ || r.type == NBD_CMD_BLOCK_STATUS) &&
      c->n_held < NCS_MAX_HELD) {
    c->held[c->n_held++] = r;
    if (c->n_held >= s->hold)
      flush_held (c);
  }
  else
    ncs_reply (c, &r, payload);
  free (payload);
}

/* ---- the run -------------------------------------------------------- */

static char *
substitute (const char *cmd, const char *uri, const char *sock,
            const char *dir)
{
  size_t cap = strlen (cmd) + 1, len = 0;
  char *out;

  for (const char *p = cmd; (p = strchr (p, '{')) != NULL; p++)
    cap += strlen (uri) + strlen (sock) + strlen (dir);
  out = malloc (cap);
  if (out == NULL)
    return NULL;
  while (*cmd) {
    const char *rep = NULL;
    size_t skip = 0;
    if (strncmp (cmd, "{uri}", 5) == 0)
      rep = uri, skip = 5;
    else if (strncmp (cmd, "{socket}", 8) == 0)
      rep = sock, skip = 8;
    else if (strncmp (cmd, "{dir}", 5) == 0)
      rep = dir, skip = 5;
    if (rep) {
      memcpy (out + len, rep, strlen (rep));
      len += strlen (rep);
      cmd += skip;
    }
    else
      out[len++] = *cmd++;
  }
  out[len] = '\0';
  return out;
}

static void
start_client (struct ncs *s)
{
  const struct nc_config *cfg = s->t->cfg;
  const char *cmd = cfg->client_cmd;
  char *logpath;
  pid_t pid;

  if (s->action == NCS_WRITE && cfg->client_write_cmd)
    cmd = cfg->client_write_cmd, s->judge_exit = true;
  else if (s->action != NCS_ANY && s->action != NCS_WRITE &&
           cfg->client_read_cmd)
    cmd = cfg->client_read_cmd, s->judge_exit = true;
  s->cmd = substitute (cmd, s->uri, s->sock, s->dir);
  if (s->cmd == NULL || asprintf (&logpath, "%s/client.log", s->dir) == -1)
    nc_error (s->t, "out of memory");
  nc_log (s->t, "client: %s", s->cmd);
  fflush (stderr);
  pid = fork ();
  if (pid == -1)
    nc_error (s->t, "fork: %s", strerror (errno));
  if (pid == 0) {
    int fd = open (logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);

    setpgid (0, 0);
    signal (SIGPIPE, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    if (devnull >= 0)
      dup2 (devnull, 0);
    if (fd >= 0) {
      dup2 (fd, 1);
      dup2 (fd, 2);
    }
    if (chdir (s->dir) == -1)
      _exit (126);
    execl ("/bin/sh", "sh", "-c", s->cmd, (char *) NULL);
    _exit (127);
  }
  setpgid (pid, pid);
  s->pid = pid;
  nc_own (s->t, pid, NULL);
  free (logpath);
}

static void
accept_conn (struct ncs *s)
{
  int fd = accept4 (s->lfd, NULL, NULL, SOCK_CLOEXEC);
  struct ncs_conn *c;
  size_t open_now = 0;

  if (fd == -1)
    return;
  if (s->n_conns == sizeof s->conns / sizeof s->conns[0]) {
    nc_log (s->t, "too many connections; refusing one");
    close (fd);
    return;
  }
  c = calloc (1, sizeof *c);
  if (c == NULL)
    nc_error (s->t, "out of memory");
  c->srv = s;
  c->fd = fd;
  c->id = (unsigned) s->n_conns + 1;
  nbdp_session_init (&c->s);
  s->conns[s->n_conns++] = c;
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->state != NCS_CLOSED)
      open_now++;
  if (open_now > s->max_open)
    s->max_open = open_now;
  nc_log (s->t, "conn %u: accepted (%zu open)", c->id, open_now);
  if (send_greeting (c) == -1)
    conn_close (c);
  else
    c->state = NCS_GREETING;
}

static void
serve_one (struct ncs_conn *c)
{
  switch (c->state) {
  case NCS_GREETING: read_cflags (c); break;
  case NCS_OPTIONS: read_option (c); break;
  case NCS_TRANSMISSION: read_request (c); break;
  case NCS_CLOSED: break;
  }
}

static void
read_out (struct ncs *s)
{
  char *path;
  int fd;
  struct stat st;

  if (asprintf (&path, "%s/out", s->dir) == -1)
    return;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  free (path);
  if (fd == -1)
    return;
  if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) &&
      st.st_size <= 256 * 1024 * 1024) {
    s->out = malloc (st.st_size ? st.st_size : 1);
    if (s->out && (st.st_size == 0 ||
                   nbdp_read_full (fd, s->out, st.st_size) == 0)) {
      s->out_len = st.st_size;
      s->have_out = true;
    }
  }
  close (fd);
}

void
ncs_run (struct ncs *s)
{
  struct nc_ctx *t = s->t;
  const char *tmp = getenv ("TMPDIR");
  int pidfd;

  content_fit (s);
  if (asprintf (&s->dir, "%s/nbd-conform-client.XXXXXX",
                tmp && *tmp ? tmp : "/tmp") == -1 || mkdtemp (s->dir) == NULL)
    nc_error (t, "cannot make a temporary directory: %s", strerror (errno));
  nc_own (t, 0, s->dir);
  if (asprintf (&s->sock, "%s/sock", s->dir) == -1)
    nc_error (t, "out of memory");
  s->uri = nbdp_uri_unix (NCS_EXPORT, s->sock);
  if (s->uri == NULL)
    nc_error (t, "cannot format the URI");
  s->lfd = nbdp_listen_unix (s->sock);
  if (s->lfd == -1)
    nc_error (t, "cannot listen on %s: %s", s->sock, strerror (errno));
  start_client (s);
  pidfd = pidfd_open_ (s->pid);

  for (;;) {
    struct pollfd p[2 + 32];
    struct ncs_conn *pc[2 + 32];
    size_t np = 0, open_now = 0;
    int timeout = -1, rc;
    bool held = false;

    if (!s->exited) {
      if (pidfd >= 0) {
        p[np] = (struct pollfd) { .fd = pidfd, .events = POLLIN };
        pc[np++] = NULL;
      }
      else
        timeout = 50;           /* no pidfd: poll for the exit */
      p[np] = (struct pollfd) { .fd = s->lfd, .events = POLLIN };
      pc[np++] = NULL;
    }
    for (size_t i = 0; i < s->n_conns; i++)
      if (s->conns[i]->state != NCS_CLOSED) {
        p[np] = (struct pollfd) { .fd = s->conns[i]->fd, .events = POLLIN };
        pc[np++] = s->conns[i];
        open_now++;
        if (s->conns[i]->n_held)
          held = true;
      }
    if (s->exited && open_now == 0)
      break;
    if (held)
      timeout = HOLD_GRACE_MS;
    rc = poll (p, np, timeout);
    if (rc == -1 && errno != EINTR)
      nc_error (t, "poll: %s", strerror (errno));
    if (rc == 0 && held) {
      /* The client waits for replies: answer what it has sent. */
      for (size_t i = 0; i < s->n_conns; i++)
        flush_held (s->conns[i]);
      continue;
    }
    for (size_t k = 0; rc > 0 && k < np; k++) {
      if (!p[k].revents)
        continue;
      if (pc[k])
        serve_one (pc[k]);
      else if (p[k].fd == s->lfd)
        accept_conn (s);
    }
    if (!s->exited && waitpid (s->pid, &s->status, WNOHANG) == s->pid) {
      s->exited = true;
      /* Connections the client queued but we have not accepted. */
      for (;;) {
        struct pollfd lp = { .fd = s->lfd, .events = POLLIN };
        if (poll (&lp, 1, 0) <= 0)
          break;
        accept_conn (s);
      }
      nc_log (t, "client: %s", ncs_exit_str (s));
    }
  }
  if (pidfd >= 0)
    close (pidfd);
  close (s->lfd);
  s->lfd = -1;
  /* Nothing of the client may remain. */
  if (kill (-s->pid, 0) == 0) {
    kill (-s->pid, SIGKILL);
  }
  t->server_pid = 0;
  read_out (s);
  {
    char *path, buf[2048];
    FILE *f;
    if (asprintf (&path, "%s/client.log", s->dir) != -1) {
      f = fopen (path, "r");
      free (path);
      if (f) {
        unsigned lines = 0;
        while (fgets (buf, sizeof buf, f) && lines++ < 20) {
          buf[strcspn (buf, "\n")] = '\0';
          nc_log (t, "client output: %s", buf);
        }
        fclose (f);
      }
    }
  }
}

/* ---- judging -------------------------------------------------------- */

unsigned
ncs_count (const struct ncs *s, uint16_t type)
{
  return type < 16 ? s->cmd_count[type] : 0;
}

unsigned
ncs_count_flag (const struct ncs *s, uint16_t flag)
{
  unsigned n = 0;

  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i].r.flags & flag)
      n++;
  return n;
}

bool
ncs_sent_option (const struct ncs *s, uint32_t opt)
{
  for (size_t i = 0; i < s->n_opts; i++)
    if (s->opts[i].opt == opt)
      return true;
  return false;
}

static unsigned
write_count (const struct ncs *s)
{
  /* A FLUSH alone (many clients flush on close) writes nothing. */
  return ncs_count (s, NBD_CMD_WRITE) + ncs_count (s, NBD_CMD_TRIM) +
    ncs_count (s, NBD_CMD_WRITE_ZEROES);
}

void
ncs_need (struct ncs *s)
{
  bool transmission = false;

  if (s->n_conns == 0)
    nc_error (s->t, "the client never connected (%s): is the command "
              "right?  Its output is in the log", ncs_exit_str (s));

  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->s.transmission)
      transmission = true;
  switch (s->action) {
  case NCS_ANY:
    return;
  case NCS_READ:
    if (ncs_count (s, NBD_CMD_READ) == 0)
      nc_unsupported (s->t, "the client sent no NBD_CMD_READ%s (%s)",
                      transmission ? "" : " and never reached transmission",
                      ncs_exit_str (s));
    return;
  case NCS_BLOCK_STATUS:
    if (ncs_count (s, NBD_CMD_BLOCK_STATUS) == 0)
      nc_unsupported (s->t, "the client sent no NBD_CMD_BLOCK_STATUS%s (%s)",
                      transmission ? "" : " and never reached transmission",
                      ncs_exit_str (s));
    return;
  case NCS_READ_OR_BS:
    if (ncs_count (s, NBD_CMD_READ) + ncs_count (s, NBD_CMD_BLOCK_STATUS)
        == 0)
      nc_unsupported (s->t, "the client sent neither NBD_CMD_READ nor "
                      "NBD_CMD_BLOCK_STATUS%s (%s)",
                      transmission ? "" : " and never reached transmission",
                      ncs_exit_str (s));
    return;
  case NCS_WRITE:
    if (write_count (s) == 0)
      nc_unsupported (s->t, "the client sent no WRITE, TRIM or "
                      "WRITE_ZEROES%s; give a writing command "
                      "with --client-write (%s)",
                      transmission ? "" : " and never reached transmission",
                      ncs_exit_str (s));
    return;
  }
}

struct ncs_conn *
ncs_main_conn (struct ncs *s)
{
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->bad)
      return s->conns[i];
  for (size_t i = 0; i < s->n_conns; i++)
    if (s->conns[i]->n_requests)
      return s->conns[i];
  return s->n_conns ? s->conns[0] : NULL;
}

bool
ncs_exit_ok (const struct ncs *s)
{
  return s->exited && WIFEXITED (s->status) && WEXITSTATUS (s->status) == 0;
}

const char *
ncs_exit_str (const struct ncs *s)
{
  static char buf[64];

  if (!s->exited)
    return "client still running";
  if (WIFEXITED (s->status))
    snprintf (buf, sizeof buf, "client exit status %d",
              WEXITSTATUS (s->status));
  else
    snprintf (buf, sizeof buf, "client killed by signal %d",
              WTERMSIG (s->status));
  return buf;
}

void
ncs_expect_success (struct ncs *s, const char *id, enum nbdp_level lvl)
{
  if (ncs_exit_ok (s))
    return;
  if (lvl == NBDP_MUST)
    nc_fail (s->t, id, "the server answered correctly, yet the client "
             "failed (%s); see its output in the log", ncs_exit_str (s));
  else
    nc_should (s->t, id, "the server answered correctly, yet the client "
               "failed (%s); see its output in the log", ncs_exit_str (s));
}

void
ncs_expect_failure (struct ncs *s, const char *id, const char *why)
{
  if (!ncs_exit_ok (s))
    return;
  if (!s->judge_exit)
    nc_info (s->t, "the client exited 0 although %s; not judged: the "
             "command was given with --client, not as a reader/writer "
             "(--client-read/--client-write) whose status claims its I/O "
             "succeeded", why);
  else
    nc_fail (s->t, id, "the client reported success (exit status 0) "
             "although %s", why);
}

void
ncs_expect_hard_disconnect (struct ncs *s, const char *id)
{
  bool any = false;

  for (size_t i = 0; i < s->n_conns; i++) {
    struct ncs_conn *c = s->conns[i];
    if (!c->bad)
      continue;
    any = true;
    if (c->disc_after_bad)
      nc_fail (s->t, id, "conn %u: after the server's violation the client "
               "sent NBD_CMD_DISC (a soft disconnect); it must initiate a "
               "hard disconnect (close the connection)", c->id);
    if (c->reqs_after_bad)
      nc_log (s->t, "conn %u: %u request(s) arrived after the violation "
              "(possibly sent before the client read it)", c->id,
              c->reqs_after_bad);
    if (!c->eof)
      nc_fail (s->t, id, "conn %u: the client did not close the connection "
               "after the server's violation", c->id);
  }
  if (!any)
    nc_error (s->t, "test bug: no violation was staged");
}

void
ncs_check_out (struct ncs *s, const char *id)
{
  uint64_t n;

  if (!s->have_out) {
    nc_log (s->t, "the client wrote no {dir}/out: its data is not checked");
    return;
  }
  n = s->out_len < s->size ? s->out_len : s->size;
  for (uint64_t i = 0; i < n; i++)
    if (s->out[i] != s->data[i]) {
      nc_fail (s->t, id, "the data the client wrote to {dir}/out differs "
               "from the export at offset %" PRIu64 ": 0x%02x, expected "
               "0x%02x (%" PRIu64 " bytes compared)", i, s->out[i],
               s->data[i], n);
      return;
    }
  nc_log (s->t, "{dir}/out: %" PRIu64 " bytes match the export", n);
}
