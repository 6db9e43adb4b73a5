/* nbd-conformance: encode and decode NBD wire headers and chunk payloads
 * between network byte order buffers and host-order structs.  Nothing here
 * does I/O or allocates; every multi-byte field goes through memcpy so that
 * buffers need not be aligned.  The name tables of codec.h live in names.c.
 */
#include <endian.h>
#include <inttypes.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "names.h"

uint16_t
nbdp_get16 (const void *p)
{
  uint16_t v;

  memcpy (&v, p, sizeof v);
  return be16toh (v);
}

uint32_t
nbdp_get32 (const void *p)
{
  uint32_t v;

  memcpy (&v, p, sizeof v);
  return be32toh (v);
}

uint64_t
nbdp_get64 (const void *p)
{
  uint64_t v;

  memcpy (&v, p, sizeof v);
  return be64toh (v);
}

void
nbdp_put16 (void *p, uint16_t v)
{
  v = htobe16 (v);
  memcpy (p, &v, sizeof v);
}

void
nbdp_put32 (void *p, uint32_t v)
{
  v = htobe32 (v);
  memcpy (p, &v, sizeof v);
}

void
nbdp_put64 (void *p, uint64_t v)
{
  v = htobe64 (v);
  memcpy (p, &v, sizeof v);
}

/* Requests.  Both layouts share the first 24 bytes: magic, flags, type,
 * cookie, offset; then count is 4 (compact) or 8 (extended) bytes.
 */
size_t
nbdp_encode_request (void *buf, const struct nbdp_request *req,
                     bool extended)
{
  unsigned char *b = buf;

  nbdp_put32 (b + 0, req->magic);
  nbdp_put16 (b + 4, req->flags);
  nbdp_put16 (b + 6, req->type);
  nbdp_put64 (b + 8, req->cookie);
  nbdp_put64 (b + 16, req->offset);
  if (extended) {
    nbdp_put64 (b + 24, req->count);
    return NBDP_REQUEST_EXT_SIZE;
  }
  nbdp_put32 (b + 24, (uint32_t) req->count);
  return NBDP_REQUEST_SIZE;
}

void
nbdp_decode_request (const void *buf, bool extended,
                     struct nbdp_request *req)
{
  const unsigned char *b = buf;

  req->magic = nbdp_get32 (b + 0);
  req->flags = nbdp_get16 (b + 4);
  req->type = nbdp_get16 (b + 6);
  req->cookie = nbdp_get64 (b + 8);
  req->offset = nbdp_get64 (b + 16);
  req->count = extended ? nbdp_get64 (b + 24) : nbdp_get32 (b + 24);
}

/* Replies. */
size_t
nbdp_reply_header_size (uint32_t magic)
{
  switch (magic) {
  case NBD_SIMPLE_REPLY_MAGIC:     return NBDP_SIMPLE_REPLY_SIZE;
  case NBD_STRUCTURED_REPLY_MAGIC: return NBDP_STRUCTURED_REPLY_SIZE;
  case NBD_EXTENDED_REPLY_MAGIC:   return NBDP_EXTENDED_REPLY_SIZE;
  default:                         return 0;
  }
}

bool
nbdp_decode_reply (const void *buf, struct nbdp_reply *reply)
{
  const unsigned char *b = buf;
  uint32_t magic = nbdp_get32 (b);

  memset (reply, 0, sizeof *reply);
  reply->magic = magic;
  switch (magic) {
  case NBD_SIMPLE_REPLY_MAGIC:
    reply->kind = NBDP_REPLY_SIMPLE;
    reply->error = nbdp_get32 (b + 4);
    reply->cookie = nbdp_get64 (b + 8);
    return true;
  case NBD_STRUCTURED_REPLY_MAGIC:
    reply->kind = NBDP_REPLY_STRUCTURED;
    reply->flags = nbdp_get16 (b + 4);
    reply->type = nbdp_get16 (b + 6);
    reply->cookie = nbdp_get64 (b + 8);
    reply->length = nbdp_get32 (b + 16);
    return true;
  case NBD_EXTENDED_REPLY_MAGIC:
    reply->kind = NBDP_REPLY_EXTENDED;
    reply->flags = nbdp_get16 (b + 4);
    reply->type = nbdp_get16 (b + 6);
    reply->cookie = nbdp_get64 (b + 8);
    reply->offset = nbdp_get64 (b + 16);
    reply->length = nbdp_get64 (b + 24);
    return true;
  default:
    return false;
  }
}

size_t
nbdp_encode_reply (void *buf, const struct nbdp_reply *reply)
{
  unsigned char *b = buf;

  nbdp_put32 (b, reply->magic);
  switch (reply->kind) {
  case NBDP_REPLY_SIMPLE:
    nbdp_put32 (b + 4, reply->error);
    nbdp_put64 (b + 8, reply->cookie);
    return NBDP_SIMPLE_REPLY_SIZE;
  case NBDP_REPLY_STRUCTURED:
    nbdp_put16 (b + 4, reply->flags);
    nbdp_put16 (b + 6, reply->type);
    nbdp_put64 (b + 8, reply->cookie);
    nbdp_put32 (b + 16, (uint32_t) reply->length);
    return NBDP_STRUCTURED_REPLY_SIZE;
  case NBDP_REPLY_EXTENDED:
    nbdp_put16 (b + 4, reply->flags);
    nbdp_put16 (b + 6, reply->type);
    nbdp_put64 (b + 8, reply->cookie);
    nbdp_put64 (b + 16, reply->offset);
    nbdp_put64 (b + 24, reply->length);
    return NBDP_EXTENDED_REPLY_SIZE;
  }
  return 0;
}

/* Options. */
void
nbdp_encode_option (void *buf, const struct nbdp_option *opt)
{
  unsigned char *b = buf;

  nbdp_put64 (b, opt->magic);
  nbdp_put32 (b + 8, opt->option);
  nbdp_put32 (b + 12, opt->length);
}

void
nbdp_decode_option (const void *buf, struct nbdp_option *opt)
{
  const unsigned char *b = buf;

  opt->magic = nbdp_get64 (b);
  opt->option = nbdp_get32 (b + 8);
  opt->length = nbdp_get32 (b + 12);
}

void
nbdp_encode_option_reply (void *buf, const struct nbdp_option_reply *r)
{
  unsigned char *b = buf;

  nbdp_put64 (b, r->magic);
  nbdp_put32 (b + 8, r->option);
  nbdp_put32 (b + 12, r->reply);
  nbdp_put32 (b + 16, r->length);
}

void
nbdp_decode_option_reply (const void *buf, struct nbdp_option_reply *r)
{
  const unsigned char *b = buf;

  r->magic = nbdp_get64 (b);
  r->option = nbdp_get32 (b + 8);
  r->reply = nbdp_get32 (b + 12);
  r->length = nbdp_get32 (b + 16);
}

/* Block status payloads.
 *   compact:  context id (4), then N >= 1 descriptors of 8 bytes
 *   extended: context id (4), count (4), then count >= 1 descriptors of
 *             16 bytes, and count must agree with the length
 */
bool
nbdp_decode_block_status (const void *payload, uint64_t len, bool ext,
                          uint32_t *ctx_id, struct nbdp_extent *out,
                          size_t max, size_t *n)
{
  const unsigned char *b = payload;
  uint64_t hdr = ext ? 8 : 4;
  uint64_t dsize = ext ? 16 : 8;
  uint64_t count, i;

  *n = 0;
  *ctx_id = 0;
  if (len < hdr)
    return false;
  *ctx_id = nbdp_get32 (b);
  if ((len - hdr) % dsize != 0)
    return false;
  count = (len - hdr) / dsize;
  if (count == 0)
    return false;
  if (count > SIZE_MAX)
    return false;
  if (ext && nbdp_get32 (b + 4) != count)
    return false;

  *n = (size_t) count;
  for (i = 0; i < count && i < max; i++) {
    const unsigned char *d = b + hdr + i * dsize;
    if (ext) {
      out[i].length = nbdp_get64 (d);
      out[i].flags = nbdp_get64 (d + 8);
    }
    else {
      out[i].length = nbdp_get32 (d);
      out[i].flags = nbdp_get32 (d + 4);
    }
  }
  return true;
}

/* Error chunks: error (4), message length (2), message, and for
 * ERROR_OFFSET an offset (8).  Other error types (bit 15 set) may carry
 * further fields we do not know, so only the minimum is checked for them.
 */
bool
nbdp_decode_error_chunk (const void *payload, uint64_t len,
                         uint16_t type, uint32_t *error,
                         const char **msg, uint16_t *msglen,
                         uint64_t *offset)
{
  const unsigned char *b = payload;
  uint16_t ml;

  *error = 0;
  *msg = NULL;
  *msglen = 0;
  if (len < 6)
    return false;
  *error = nbdp_get32 (b);
  ml = nbdp_get16 (b + 4);
  if (ml > len - 6)
    return false;
  *msg = (const char *) b + 6;
  *msglen = ml;

  switch (type) {
  case NBD_REPLY_TYPE_ERROR:
    return len - 6 == ml;
  case NBD_REPLY_TYPE_ERROR_OFFSET:
    if (len - 6 - ml != 8)
      return false;
    if (offset)
      *offset = nbdp_get64 (b + 6 + ml);
    return true;
  default:
    return (type & NBD_REPLY_TYPE_ERR (0)) != 0;
  }
}

/* errno <-> NBD error numbers.  The NBD numbers equal the Linux ones, but
 * the mapping is spelled out so that it stays right on any host.
 */
uint32_t
nbdp_errno_to_nbd (int err)
{
  switch (err) {
  case 0:          return NBD_SUCCESS;
  case EPERM:
  case EROFS:      return NBD_EPERM;
  case EIO:        return NBD_EIO;
  case ENOMEM:     return NBD_ENOMEM;
#ifdef EDQUOT
  case EDQUOT:
#endif
  case EFBIG:
  case ENOSPC:     return NBD_ENOSPC;
  case EOVERFLOW:  return NBD_EOVERFLOW;
  case ENOTSUP:    return NBD_ENOTSUP;
#if defined (EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
  case EOPNOTSUPP: return NBD_ENOTSUP;
#endif
  case ESHUTDOWN:  return NBD_ESHUTDOWN;
  case EINVAL:
  default:         return NBD_EINVAL;
  }
}

int
nbdp_nbd_to_errno (uint32_t err)
{
  switch (err) {
  case NBD_SUCCESS:   return 0;
  case NBD_EPERM:     return EPERM;
  case NBD_EIO:       return EIO;
  case NBD_ENOMEM:    return ENOMEM;
  case NBD_EINVAL:    return EINVAL;
  case NBD_ENOSPC:    return ENOSPC;
  case NBD_EOVERFLOW: return EOVERFLOW;
  case NBD_ENOTSUP:   return ENOTSUP;
  case NBD_ESHUTDOWN: return ESHUTDOWN;
  default:            return EINVAL;
  }
}

/* Name lookups over the generated tables of names.c. */
static const char *
lookup (const struct nbdp_name *t, uint64_t value)
{
  for (; t->name; t++)
    if (t->value == value)
      return t->name;
  return NULL;
}

const char *
nbdp_name_of_opt (uint32_t opt)
{
  return lookup (nbdp_names_opt, opt);
}

const char *
nbdp_name_of_rep (uint32_t rep)
{
  return lookup (nbdp_names_rep, rep);
}

const char *
nbdp_name_of_info (uint16_t info)
{
  return lookup (nbdp_names_info, info);
}

const char *
nbdp_name_of_cmd (uint16_t cmd)
{
  return lookup (nbdp_names_cmd, cmd);
}

const char *
nbdp_name_of_reply_type (uint16_t type)
{
  return lookup (nbdp_names_reply_type, type);
}

const char *
nbdp_name_of_error (uint32_t err)
{
  return lookup (nbdp_names_error, err);
}

const char *
nbdp_name_or (const char *name, char *buf, size_t size, uint64_t value)
{
  if (name)
    return name;
  if (size > 0)
    snprintf (buf, size, "0x%" PRIx64, value);
  return buf;
}

const char *
nbdp_opt_str (char *buf, size_t size, uint32_t v)
{
  return nbdp_name_or (nbdp_name_of_opt (v), buf, size, v);
}

const char *
nbdp_rep_str (char *buf, size_t size, uint32_t v)
{
  return nbdp_name_or (nbdp_name_of_rep (v), buf, size, v);
}

const char *
nbdp_info_str (char *buf, size_t size, uint16_t v)
{
  return nbdp_name_or (nbdp_name_of_info (v), buf, size, v);
}

const char *
nbdp_cmd_str (char *buf, size_t size, uint16_t v)
{
  return nbdp_name_or (nbdp_name_of_cmd (v), buf, size, v);
}

const char *
nbdp_reply_type_str (char *buf, size_t size, uint16_t v)
{
  return nbdp_name_or (nbdp_name_of_reply_type (v), buf, size, v);
}

const char *
nbdp_error_str (char *buf, size_t size, uint32_t v)
{
  return nbdp_name_or (nbdp_name_of_error (v), buf, size, v);
}

/* Format a set of flags as NAME|NAME|0xREST; "0" for the empty set.  The
 * output is truncated (always NUL terminated) if buf is too small.
 */
static const char *
format_flags (char *buf, size_t size, const struct nbdp_name *t,
              uint64_t flags)
{
  size_t used = 0;
  uint64_t rest = flags;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (flags == 0) {
    snprintf (buf, size, "0");
    return buf;
  }
  for (; t->name; t++) {
    int r;

    if (t->value == 0 || (flags & t->value) != t->value ||
        (rest & t->value) == 0)
      continue;
    rest &= ~t->value;
    r = snprintf (buf + used, size - used, "%s%s", used ? "|" : "", t->name);
    if (r < 0 || (size_t) r >= size - used)
      return buf;
    used += r;
  }
  if (rest)
    snprintf (buf + used, size - used, "%s0x%" PRIx64, used ? "|" : "", rest);
  return buf;
}

const char *
nbdp_flags_str (char *buf, size_t size, uint16_t eflags)
{
  return format_flags (buf, size, nbdp_names_eflag, eflags);
}

const char *
nbdp_cmd_flags_str (char *buf, size_t size, uint16_t flags)
{
  return format_flags (buf, size, nbdp_names_cmd_flag, flags);
}

const char *
nbdp_gflags_str (char *buf, size_t size, uint16_t gflags)
{
  return format_flags (buf, size, nbdp_names_gflag, gflags);
}

const char *
nbdp_cflags_str (char *buf, size_t size, uint32_t cflags)
{
  return format_flags (buf, size, nbdp_names_cflag, cflags);
}

const char *
nbdp_reply_flags_str (char *buf, size_t size, uint16_t flags)
{
  return format_flags (buf, size, nbdp_names_reply_flag, flags);
}

const char *
nbdp_state_str (char *buf, size_t size, uint64_t state)
{
  return format_flags (buf, size, nbdp_names_state, state);
}
