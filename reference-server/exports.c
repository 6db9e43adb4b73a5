/* nbd-refserver: the export table.  Each export has a name, an optional
 * description, a backend, and the properties the handshake advertises
 * (read-only, block size constraints, multi-conn).  The table is built
 * from the command line before any connection is accepted and is not
 * changed afterwards, so lookups need no lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "internal.h"
#include "log.h"
#include "vector.h"

DEFINE_VECTOR_TYPE (export_vector, struct export *);
static export_vector exports = empty_vector;

int
parse_size (const char *s, uint64_t *r)
{
  char *end;
  unsigned long long v;
  unsigned shift = 0;

  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoull (s, &end, 0);
  if (errno)
    return -1;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  case 'p': case 'P': shift = 50; end++; break;
  case 'e': case 'E': shift = 60; end++; break;
  default: return -1;
  }
  if (*end == 'i' && shift)      /* accept "Gi" */
    end++;
  if (*end == 'B' && shift)      /* and "GB"/"GiB" */
    end++;
  if (*end != '\0')
    return -1;
  if (shift && v > (UINT64_MAX >> shift))
    return -1;
  *r = (uint64_t) v << shift;
  return 0;
}

static bool
is_power_of_2 (uint64_t v)
{
  return v != 0 && (v & (v - 1)) == 0;
}

/* Check the constraints of "Size constraints" on the block sizes. */
static int
check_block_sizes (struct export *e)
{
  if (!is_power_of_2 (e->min_block) || e->min_block > 65536) {
    nbdp_warnx ("export \"%s\": min-block %" PRIu32 " must be a power of 2 "
                "no larger than 65536", e->name, e->min_block);
    return -1;
  }
  if (!is_power_of_2 (e->pref_block) || e->pref_block < 512 ||
      e->pref_block < e->min_block) {
    nbdp_warnx ("export \"%s\": pref-block %" PRIu32 " must be a power of 2 "
                "at least max(512, min-block)", e->name, e->pref_block);
    return -1;
  }
  if (e->max_block < e->pref_block || e->max_block > MAX_MAX_BLOCK) {
    nbdp_warnx ("export \"%s\": max-block %" PRIu32 " must be between "
                "pref-block and %d", e->name, e->max_block, MAX_MAX_BLOCK);
    return -1;
  }
  return 0;
}

static struct export *
new_export (const char *name)
{
  struct export *e = calloc (1, sizeof *e);

  if (e == NULL)
    return NULL;
  e->name = strdup (name);
  e->description = strdup ("");
  if (e->name == NULL || e->description == NULL) {
    free (e->name);
    free (e->description);
    free (e);
    return NULL;
  }
  e->multi_conn = true;
  e->min_block = NBD_MIN_BLOCK_DEFAULT;
  e->pref_block = DEFAULT_PREF_BLOCK;
  e->max_block = DEFAULT_MAX_BLOCK;
  /* Writers first: a resize must not starve behind a stream of I/O. */
  {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init (&a);
    pthread_rwlockattr_setkind_np (&a,
                                   PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init (&e->size_lock, &a);
    pthread_rwlockattr_destroy (&a);
  }
  pthread_mutex_init (&e->rz_lock, NULL);
  return e;
}

static void
free_export (struct export *e)
{
  if (e == NULL)
    return;
  if (e->backend)
    e->backend->ops->close (e->backend);
  pthread_rwlock_destroy (&e->size_lock);
  pthread_mutex_destroy (&e->rz_lock);
  free (e->name);
  free (e->description);
  free (e);
}

static int
open_backend (struct export *e, const char *kind, const char *arg,
              uint64_t file_size)
{
  uint64_t size;

  if (strcmp (kind, "memory") == 0) {
    if (strncmp (arg, "size=", 5) == 0)
      arg += 5;
    if (parse_size (arg, &size) == -1 || size > INT64_MAX) {
      nbdp_warnx ("export \"%s\": invalid memory size \"%s\" "
                  "(expected a number with optional K M G T P E suffix, "
                  "at most 2^63-1)", e->name, arg);
      return -1;
    }
    e->backend = backend_memory_new (size);
    if (e->backend == NULL) {
      nbdp_warn ("export \"%s\": memory backend of %" PRIu64 " bytes",
                 e->name, size);
      return -1;
    }
  }
  else if (strcmp (kind, "file") == 0) {
    if (strncmp (arg, "file=", 5) == 0)
      arg += 5;
    e->backend = backend_file_open (arg, e->readonly, file_size);
    if (e->backend == NULL) {
      nbdp_warn ("export \"%s\": %s", e->name, arg);
      return -1;
    }
  }
  else {
    nbdp_warnx ("unknown backend \"%s\" (expected memory or file)", kind);
    return -1;
  }
  return 0;
}

static int
check_name (const char *what, const char *s)
{
  if (strlen (s) > NBD_MAX_STRING) {
    nbdp_warnx ("%s is longer than %d bytes", what, NBD_MAX_STRING);
    return -1;
  }
  return 0;
}

static int
append_export (struct export *e)
{
  for (size_t i = 0; i < exports.len; i++)
    if (strcmp (exports.ptr[i]->name, e->name) == 0) {
      nbdp_warnx ("export \"%s\" given twice", e->name);
      return -1;
    }
  if (export_vector_append (&exports, e) == -1) {
    nbdp_warn ("export table");
    return -1;
  }
  return 0;
}

int
exports_add (const char *name, const char *kind, const char *arg,
             bool readonly)
{
  struct export *e;

  if (check_name ("export name", name) == -1)
    return -1;
  e = new_export (name);
  if (e == NULL) {
    nbdp_warn ("export");
    return -1;
  }
  e->readonly = readonly;
  if (open_backend (e, kind, arg, 0) == -1 || append_export (e) == -1) {
    free_export (e);
    return -1;
  }
  return 0;
}

/* Keys of an --export spec.  A comma followed by something that is not
 * one of these continues the previous value, so "desc=a, b" works.
 */
static const char *const spec_keys[] = {
  "name", "memory", "file", "size", "ro", "rw", "desc", "min-block",
  "pref-block", "max-block", "multi-conn", NULL
};

static bool
starts_with_key (const char *s)
{
  for (size_t i = 0; spec_keys[i]; i++) {
    size_t n = strlen (spec_keys[i]);
    if (strncmp (s, spec_keys[i], n) == 0 &&
        (s[n] == '=' || s[n] == ',' || s[n] == '\0'))
      return true;
  }
  return false;
}

static int
parse_block_size (const char *key, const char *val, uint32_t *r)
{
  uint64_t v;

  if (parse_size (val, &v) == -1 || v > UINT32_MAX) {
    nbdp_warnx ("--export: %s=%s is not a 32-bit size", key, val);
    return -1;
  }
  *r = v;
  return 0;
}

int
exports_add_spec (const char *spec)
{
  CLEANUP_FREE char *copy = strdup (spec);
  struct export *e = NULL;
  const char *kind = NULL, *arg = NULL, *name = NULL, *desc = NULL;
  const char *minb = NULL, *prefb = NULL, *maxb = NULL, *mc = NULL;
  const char *fsize = NULL;
  bool ro = false;
  char *p, *next;
  uint64_t file_size = 0;

  if (copy == NULL) {
    nbdp_warn ("--export");
    return -1;
  }
  /* Split into key[=value] items at commas that start a known key. */
  for (p = copy; p; p = next) {
    char *key = p, *val, *c;

    next = NULL;
    for (c = strchr (p, ','); c; c = strchr (c + 1, ','))
      if (starts_with_key (c + 1)) {
        *c = '\0';
        next = c + 1;
        break;
      }
    val = strchr (key, '=');
    if (val)
      *val++ = '\0';
    if (strcmp (key, "ro") == 0 && val == NULL)
      ro = true;
    else if (strcmp (key, "rw") == 0 && val == NULL)
      ro = false;
    else if (val == NULL) {
      nbdp_warnx ("--export %s: \"%s\" needs a value", spec, key);
      return -1;
    }
    else if (strcmp (key, "name") == 0)
      name = val;
    else if (strcmp (key, "memory") == 0 || strcmp (key, "file") == 0) {
      if (kind) {
        nbdp_warnx ("--export %s: more than one backend", spec);
        return -1;
      }
      kind = key;
      arg = val;
    }
    else if (strcmp (key, "size") == 0)
      fsize = val;
    else if (strcmp (key, "desc") == 0)
      desc = val;
    else if (strcmp (key, "min-block") == 0)
      minb = val;
    else if (strcmp (key, "pref-block") == 0)
      prefb = val;
    else if (strcmp (key, "max-block") == 0)
      maxb = val;
    else if (strcmp (key, "multi-conn") == 0)
      mc = val;
    else {
      nbdp_warnx ("--export %s: unknown key \"%s\"", spec, key);
      return -1;
    }
  }
  if (name == NULL)
    name = "";
  if (kind == NULL) {
    nbdp_warnx ("--export %s: needs memory=SIZE or file=PATH", spec);
    return -1;
  }
  if (check_name ("export name", name) == -1 ||
      (desc && check_name ("export description", desc) == -1))
    return -1;
  if (fsize && parse_size (fsize, &file_size) == -1) {
    nbdp_warnx ("--export %s: invalid size=%s", spec, fsize);
    return -1;
  }

  e = new_export (name);
  if (e == NULL) {
    nbdp_warn ("export");
    return -1;
  }
  e->readonly = ro;
  if (desc) {
    free (e->description);
    e->description = strdup (desc);
    if (e->description == NULL) {
      nbdp_warn ("export");
      goto err_free;
    }
  }
  if ((minb && parse_block_size ("min-block", minb, &e->min_block) == -1) ||
      (prefb && parse_block_size ("pref-block", prefb, &e->pref_block) == -1) ||
      (maxb && parse_block_size ("max-block", maxb, &e->max_block) == -1))
    goto err_free;
  /* A larger minimum raises the default preferred size with it. */
  if (minb && !prefb && e->pref_block < e->min_block)
    e->pref_block = e->min_block;
  if (mc) {
    e->multi_conn_explicit = true;
    if (strcmp (mc, "on") == 0)
      e->multi_conn = true;
    else if (strcmp (mc, "off") == 0)
      e->multi_conn = false;
    else {
      nbdp_warnx ("--export %s: multi-conn must be on or off", spec);
      goto err_free;
    }
  }
  if (check_block_sizes (e) == -1)
    goto err_free;
  if (open_backend (e, kind, arg, file_size) == -1)
    goto err_free;
  if (append_export (e) == -1)
    goto err_free;
  return 0;

 err_free:
  free_export (e);
  return -1;
}

size_t
exports_count (void)
{
  return exports.len;
}

struct export *
exports_get (size_t i)
{
  return i < exports.len ? exports.ptr[i] : NULL;
}

struct export *
exports_find (const char *name, size_t len)
{
  for (size_t i = 0; i < exports.len; i++) {
    const char *n = exports.ptr[i]->name;
    if (strlen (n) == len && memcmp (n, name, len) == 0)
      return exports.ptr[i];
  }
  if (len == 0 && exports.len > 0)
    return exports.ptr[0];
  return NULL;
}

uint64_t
export_size (struct export *exp)
{
  return exp->backend->ops->get_size (exp->backend);
}

uint16_t
export_eflags (struct export *exp, bool structured, bool extended, bool meta)
{
  uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
               NBD_FLAG_SEND_CACHE;

  if (exp->readonly)
    f |= NBD_FLAG_READ_ONLY;
  else
    f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
         NBD_FLAG_SEND_FAST_ZERO;
  if (structured)
    f |= NBD_FLAG_SEND_DF;
  if (exp->multi_conn)
    f |= NBD_FLAG_CAN_MULTI_CONN;
  if (extended && meta)
    f |= NBD_FLAG_BLOCK_STAT_PAYLOAD;
  return f;
}

void
exports_close_all (void)
{
  for (size_t i = 0; i < exports.len; i++)
    free_export (exports.ptr[i]);
  export_vector_reset (&exports);
}
