/* Handshake suite: the helpers of hs.h (no tests here). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hs.h"
#include "uri.h"

const char *
hs_export (struct nc_ctx *t)
{
  static char *from_uri;

  if (t->cfg->uri) {
    struct nbdp_uri u;
    char err[256];

    if (from_uri == NULL &&
        nbdp_uri_parse (t->cfg->uri, &u, err, sizeof err) == 0) {
      from_uri = strdup (u.export_name ? u.export_name : "");
      nbdp_uri_free (&u);
    }
    if (from_uri)
      return from_uri;
  }
  return t->cfg->export_name ? t->cfg->export_name : "";
}

static char names[8][48];
static unsigned next_name;

const char *
hs_rep (uint32_t rep)
{
  char *b = names[next_name++ % 8];

  return nbdp_rep_str (b, sizeof names[0], rep);
}

const char *
hs_opt_name (uint32_t opt)
{
  char *b = names[next_name++ % 8];

  return nbdp_opt_str (b, sizeof names[0], opt);
}

struct nc_conn *
hs_greet (struct nc_ctx *t, uint16_t *gflags)
{
  struct nc_conn *c = nc_connect (t);

  nc_greeting (t, c, gflags);
  return c;
}

struct nc_conn *
hs_start (struct nc_ctx *t)
{
  uint16_t gflags;
  struct nc_conn *c = hs_greet (t, &gflags);

  if (!(gflags & NBD_FLAG_FIXED_NEWSTYLE))
    nc_unsupported (t, "server does not offer fixed newstyle (handshake "
                    "flags 0x%04x)", gflags);
  nc_send_cflags (t, c, NBD_FLAG_C_FIXED_NEWSTYLE);
  c->c->cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
  return c;
}

uint32_t
hs_opt (struct nc_ctx *t, struct nc_conn *c, uint32_t opt, const void *data,
        uint32_t len)
{
  nc_send_option (t, c, opt, data, len);
  return nc_option_final (t, c);
}

void
hs_send_info (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
              const char *name, const uint16_t *infos, size_t n)
{
  size_t nl = strlen (name), len = 4 + nl + 2 + 2 * n;
  unsigned char *b;

  if (nl > 2 * NBD_MAX_STRING || n > 64)
    nc_error (t, "export name or info list too long (test bug)");
  b = malloc (len);
  if (b == NULL)
    nc_error (t, "out of memory");
  nbdp_put32 (b, nl);
  memcpy (b + 4, name, nl);
  nbdp_put16 (b + 4 + nl, n);
  for (size_t i = 0; i < n; i++)
    nbdp_put16 (b + 6 + nl + 2 * i, infos[i]);
  nc_send_option (t, c, opt, b, len);
  free (b);
}

uint32_t
hs_info (struct nc_ctx *t, struct nc_conn *c, uint32_t opt, const char *name,
         const uint16_t *infos, size_t n)
{
  hs_send_info (t, c, opt, name, infos, n);
  return nc_option_final (t, c);
}

uint32_t
hs_meta (struct nc_ctx *t, struct nc_conn *c, uint32_t opt,
         const char *export, const char *const *q, size_t n)
{
  size_t len = 4 + strlen (export) + 4, off;
  unsigned char *b;

  for (size_t i = 0; i < n; i++)
    len += 4 + strlen (q[i]);
  b = malloc (len);
  if (b == NULL)
    nc_error (t, "out of memory");
  nbdp_put32 (b, strlen (export));
  memcpy (b + 4, export, strlen (export));
  off = 4 + strlen (export);
  nbdp_put32 (b + off, n);
  off += 4;
  for (size_t i = 0; i < n; i++) {
    nbdp_put32 (b + off, strlen (q[i]));
    memcpy (b + off + 4, q[i], strlen (q[i]));
    off += 4 + strlen (q[i]);
  }
  nc_send_option (t, c, opt, b, len);
  free (b);
  return nc_option_final (t, c);
}

void
hs_enter (struct nc_ctx *t, struct nc_conn *c)
{
  if (!c->s.transmission)
    nc_error (t, "handshake did not reach transmission (test bug)");
  c->c->structured = c->s.structured;
  c->c->extended = c->s.extended;
  c->c->transmission = true;
  c->c->size = c->s.export_size;
  c->c->eflags = c->s.eflags;
  nc_log (t, "transmission: size %" PRIu64 ", flags 0x%04x%s%s",
          c->s.export_size, c->s.eflags,
          c->s.structured ? ", structured replies" : "",
          c->s.extended ? ", extended headers" : "");
}

void
hs_go (struct nc_ctx *t, struct nc_conn *c, const uint16_t *infos, size_t n,
       const char *id)
{
  uint32_t r = hs_info (t, c, NBD_OPT_GO, hs_export (t), infos, n);

  if (r != NBD_REP_ACK) {
    if (id)
      nc_fail (t, id, "sent NBD_OPT_GO for \"%s\" with %zu info requests: "
               "got %s, expected NBD_REP_ACK", hs_export (t), n, hs_rep (r));
    else
      nc_expect (t, false, "sent NBD_OPT_GO for \"%s\" with %zu info "
                 "requests: got %s, expected NBD_REP_ACK", hs_export (t), n,
                 hs_rep (r));
    nc_done (t);
  }
  hs_enter (t, c);
}

void
hs_expect_go_works (struct nc_ctx *t, struct nc_conn *c, const char *after,
                    const char *id)
{
  static const uint16_t bs[] = { NBD_INFO_BLOCK_SIZE };
  uint32_t r;

  r = hs_info (t, c, NBD_OPT_GO, hs_export (t), NULL, 0);
  if (r == NBD_REP_ERR_BLOCK_SIZE_REQD) {
    nc_log (t, "NBD_OPT_GO wants NBD_INFO_BLOCK_SIZE; asking again with it");
    r = hs_info (t, c, NBD_OPT_GO, hs_export (t), bs, 1);
  }
  if (r != NBD_REP_ACK && id)
    nc_fail (t, id, "after %s, sent NBD_OPT_GO for \"%s\": got %s, "
             "expected NBD_REP_ACK (the negotiation goes on)", after,
             hs_export (t), hs_rep (r));
  else if (r != NBD_REP_ACK)
    nc_expect (t, false, "after %s, sent NBD_OPT_GO for \"%s\": got %s, "
               "expected NBD_REP_ACK (the negotiation goes on)", after,
               hs_export (t), hs_rep (r));
  else
    hs_enter (t, c);
}

int
hs_wait_close (struct nc_ctx *t, struct nc_conn *c, int ms)
{
  struct pollfd pfd = { .fd = c->c->fd, .events = POLLIN };
  unsigned char b;
  ssize_t n;
  int r;

  if (c->c->fd == -1)
    return 1;
  do
    r = poll (&pfd, 1, ms);
  while (r == -1 && errno == EINTR);
  if (r == 0)
    return -1;
  if (r == -1)
    nc_error (t, "poll: %s", strerror (errno));
  do
    n = recv (c->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  while (n == -1 && errno == EINTR);
  if (n == 0 || (n == -1 && (errno == ECONNRESET || errno == EPIPE)))
    return 1;
  if (n == -1)
    nc_error (t, "recv: %s", strerror (errno));
  return 0;
}

bool
hs_reply_or_close (struct nc_ctx *t, struct nc_conn *c, uint32_t *rep,
                   const char *id, const char *sent)
{
  /* The server may be out of step now: do not wait long for anything. */
  nbdp_client_set_timeout (c->c, HS_CLOSE_WAIT_MS);
  switch (hs_wait_close (t, c, HS_CLOSE_WAIT_MS)) {
  case 1:
    return false;
  case 0:
    *rep = nc_option_final (t, c);
    return true;
  default:
    if (id == NULL)
      nc_expect (t, false, "sent %s: neither an option reply nor a closed "
                 "connection within %d ms; expected an error reply or a "
                 "hard disconnect", sent, HS_CLOSE_WAIT_MS);
    else
      nc_fail (t, id, "sent %s: neither an option reply nor a closed "
             "connection within %d ms; expected an error reply or a hard "
             "disconnect", sent, HS_CLOSE_WAIT_MS);
    nc_done (t);
  }
}

bool
hs_read_ok (struct nc_ctx *t, struct nc_conn *c, struct nc_result *r)
{
  uint64_t count = HS_READ_LEN;

  if (count > c->s.export_size)
    count = c->s.export_size;
  nc_cmd (t, c, NBD_CMD_READ, 0, 0, count, NULL, NULL, r);
  return r->complete && r->error == 0;
}
