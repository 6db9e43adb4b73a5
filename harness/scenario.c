/* nbd-matrix: parser and content model of the scenario line language.
 * The grammar is described in scenario.h.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-proto.h"
#include "scenario.h"

#define DEFAULT_SIZE (UINT64_C (16) << 20)
#define MAX_STEPS 10000
#define MAX_CONN 64
#define MAX_WORDS 16

static const char *const kind_names[] = {
  [SCN_CONNECT] = "connect",
  [SCN_DISCONNECT] = "disconnect",
  [SCN_EXPECT_SIZE] = "expect-size",
  [SCN_WRITE] = "write",
  [SCN_READ] = "read",
  [SCN_ZERO] = "zero",
  [SCN_TRIM] = "trim",
  [SCN_FLUSH] = "flush",
  [SCN_MAP] = "map",
  [SCN_RESIZE] = "resize",
  [SCN_QUERY_SIZE] = "query-size",
  [SCN_WATCH] = "watch",
  [SCN_EXTERNAL_RESIZE] = "external-resize",
  [SCN_LIST] = "list",
};
#define NR_KINDS (sizeof kind_names / sizeof kind_names[0])

static const char *const flag_names[16] = {
  "HAS_FLAGS", "READ_ONLY", "SEND_FLUSH", "SEND_FUA", "ROTATIONAL",
  "SEND_TRIM", "SEND_WRITE_ZEROES", "SEND_DF", "CAN_MULTI_CONN",
  "SEND_RESIZE", "SEND_CACHE", "SEND_FAST_ZERO", "BLOCK_STAT_PAYLOAD",
};

const char *
scn_kind_name (enum scn_kind kind)
{
  if ((size_t) kind < NR_KINDS)
    return kind_names[kind];
  return "?";
}

const char *
scn_flag_name (unsigned bit)
{
  return bit < 16 ? flag_names[bit] : NULL;
}

int
scn_flag_bit (const char *name)
{
  if (strncmp (name, "NBD_FLAG_", 9) == 0)
    name += 9;
  for (unsigned i = 0; i < 16; i++)
    if (flag_names[i] && strcasecmp (name, flag_names[i]) == 0)
      return (int) i;
  return -1;
}

bool
scn_step_writes (const struct scn_step *step)
{
  switch (step->kind) {
  case SCN_WRITE: case SCN_ZERO: case SCN_TRIM: case SCN_RESIZE:
  case SCN_EXTERNAL_RESIZE:
    return true;
  default:
    return false;
  }
}

bool
scn_parse_size (const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;
  unsigned shift = 0;

  if (!isdigit ((unsigned char) *s))
    return false;
  errno = 0;
  v = strtoull (s, &end, 0);
  if (errno != 0)
    return false;
  if (*end) {
    switch (toupper ((unsigned char) *end)) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    case 'P': shift = 50; break;
    case 'E': shift = 60; break;
    default: return false;
    }
    if (end[1] != '\0')
      return false;
  }
  if (shift && v > (UINT64_MAX >> shift))
    return false;
  *out = (uint64_t) v << shift;
  return true;
}

static bool
parse_byte (const char *s, int *out)
{
  char *end;
  long v;

  if (!isdigit ((unsigned char) *s))
    return false;
  errno = 0;
  v = strtol (s, &end, 0);
  if (errno || *end || v < 0 || v > 255)
    return false;
  *out = (int) v;
  return true;
}

static char *
trim (char *s)
{
  char *e;

  while (isspace ((unsigned char) *s))
    s++;
  e = s + strlen (s);
  while (e > s && isspace ((unsigned char) e[-1]))
    *--e = '\0';
  return s;
}

static void
seterr (char *err, size_t errlen, unsigned line, const char *fmt, ...)
{
  va_list ap;
  int n;

  n = snprintf (err, errlen, "%u: ", line);
  if (n < 0 || (size_t) n >= errlen)
    return;
  va_start (ap, fmt);
  vsnprintf (err + n, errlen - n, fmt, ap);
  va_end (ap);
}

/* Append a copy of each space-separated word of value to a NULL-terminated
 * array.
 */
static int
add_words (char ***arr, size_t *nr, const char *value)
{
  char *copy = strdup (value), *save = NULL, *w;

  if (!copy)
    return -1;
  for (w = strtok_r (copy, " \t,", &save); w; w = strtok_r (NULL, " \t,", &save)) {
    char **p = realloc (*arr, (*nr + 2) * sizeof *p);
    if (!p)
      goto err_copy;
    *arr = p;
    if ((p[*nr] = strdup (w)) == NULL)
      goto err_copy;
    p[++*nr] = NULL;
  }
  free (copy);
  return 0;
 err_copy:
  free (copy);
  return -1;
}

static int
parse_header (struct scenario *scn, const char *comment, unsigned line,
              bool *verify_set, char *err, size_t errlen)
{
  char buf[1024], *key, *value, *colon;

  snprintf (buf, sizeof buf, "%s", comment);
  colon = strchr (buf, ':');
  if (!colon)
    return 0;                   /* plain comment */
  *colon = '\0';
  key = trim (buf);
  value = trim (colon + 1);
  for (const char *k = key; *k; k++)
    if (!islower ((unsigned char) *k) && *k != '-')
      return 0;                 /* prose containing a colon */

  if (strcmp (key, "scenario") == 0) {
    free (scn->name);
    if ((scn->name = strdup (value)) == NULL)
      return -1;
  }
  else if (strcmp (key, "summary") == 0) {
    free (scn->summary);
    if ((scn->summary = strdup (value)) == NULL)
      return -1;
  }
  else if (strcmp (key, "requirements") == 0) {
    if (add_words (&scn->requirements, &scn->nr_requirements, value) == -1)
      return -1;
  }
  else if (strcmp (key, "size") == 0) {
    if (!scn_parse_size (value, &scn->size) || scn->size > INT64_MAX) {
      seterr (err, errlen, line, "size: bad size '%s'", value);
      return -1;
    }
  }
  else if (strcmp (key, "server-flags") == 0) {
    char copy[1024], *save = NULL, *w;
    snprintf (copy, sizeof copy, "%s", value);
    for (w = strtok_r (copy, " \t,", &save); w;
         w = strtok_r (NULL, " \t,", &save)) {
      int bit = scn_flag_bit (w);
      if (bit < 0) {
        seterr (err, errlen, line, "server-flags: unknown flag '%s'", w);
        return -1;
      }
      scn->server_flags |= 1u << bit;
    }
  }
  else if (strcmp (key, "server-caps") == 0) {
    if (add_words (&scn->server_caps, &scn->nr_server_caps, value) == -1)
      return -1;
  }
  else if (strcmp (key, "verify") == 0) {
    *verify_set = true;
    if (strcmp (value, "yes") == 0)
      scn->verify = true;
    else if (strcmp (value, "no") == 0)
      scn->verify = false;
    else {
      seterr (err, errlen, line, "verify: expected yes or no, got '%s'", value);
      return -1;
    }
  }
  /* Unknown keys are prose ("# note: ..."): ignored on purpose. */
  return 0;
}

static unsigned
positional_numbers (enum scn_kind kind)
{
  switch (kind) {
  case SCN_EXPECT_SIZE: case SCN_RESIZE: case SCN_EXTERNAL_RESIZE:
    return 1;
  case SCN_WRITE: case SCN_READ: case SCN_ZERO: case SCN_TRIM: case SCN_MAP:
    return 2;
  default:
    return 0;
  }
}

static int
parse_step (struct scn_step *st, char *text, unsigned line,
            char *err, size_t errlen)
{
  char *words[MAX_WORDS], *save = NULL, *w;
  size_t nw = 0, i;
  unsigned npos;
  bool have_pattern = false, have_expect = false;
  uint64_t nums[2] = { 0, 0 };

  memset (st, 0, sizeof *st);
  st->line = line;
  st->conn = 1;
  st->byte = -1;
  if ((st->text = strdup (text)) == NULL)
    return -1;

  for (w = strtok_r (text, " \t", &save); w; w = strtok_r (NULL, " \t", &save)) {
    if (nw == MAX_WORDS) {
      seterr (err, errlen, line, "too many words");
      return -1;
    }
    words[nw++] = w;
  }
  for (i = 0; i < NR_KINDS; i++)
    if (strcmp (words[0], kind_names[i]) == 0)
      break;
  if (i == NR_KINDS) {
    seterr (err, errlen, line, "unknown step '%s'", words[0]);
    return -1;
  }
  st->kind = (enum scn_kind) i;
  npos = positional_numbers (st->kind);
  if (nw < 1 + npos) {
    seterr (err, errlen, line, "%s needs %u number%s", words[0], npos,
            npos == 1 ? "" : "s");
    return -1;
  }
  for (i = 0; i < npos; i++) {
    if (!scn_parse_size (words[1 + i], &nums[i]) || nums[i] > INT64_MAX) {
      seterr (err, errlen, line, "%s: bad number '%s'", words[0], words[1 + i]);
      return -1;
    }
  }
  if (npos == 1)
    st->size = st->size_max = nums[0];
  else if (npos == 2) {
    st->off = nums[0];
    st->len = nums[1];
    if (st->len == 0) {
      seterr (err, errlen, line, "%s: length must not be 0", words[0]);
      return -1;
    }
    if (st->off > INT64_MAX - st->len) {
      seterr (err, errlen, line, "%s: offset + length overflows", words[0]);
      return -1;
    }
  }

  for (i = 1 + npos; i < nw; i++) {
    char *arg = words[i], *eq = strchr (arg, '=');
    const char *val = eq ? eq + 1 : NULL;

    if (eq)
      *eq = '\0';
    if (strcmp (arg, "conn") == 0 && val) {
      char *end;
      unsigned long c = strtoul (val, &end, 10);
      if (*end || c < 1 || c > MAX_CONN) {
        seterr (err, errlen, line, "conn=%s: expected 1..%d", val, MAX_CONN);
        return -1;
      }
      st->conn = (unsigned) c;
    }
    else if (strcmp (arg, "pattern") == 0 && val && st->kind == SCN_WRITE) {
      if (!parse_byte (val, &st->byte)) {
        seterr (err, errlen, line, "pattern=%s: expected a byte 0..255", val);
        return -1;
      }
      have_pattern = true;
    }
    else if (strcmp (arg, "expect") == 0 && val && st->kind == SCN_READ) {
      if (strcmp (val, "zero") == 0) {
        st->byte = 0;
        st->expect_zero = true;
      }
      else if (!parse_byte (val, &st->byte)) {
        seterr (err, errlen, line, "expect=%s: expected a byte or zero", val);
        return -1;
      }
      have_expect = true;
    }
    else if (strcmp (arg, "expect") == 0 && val && st->kind == SCN_MAP) {
      if (strcmp (val, "data") == 0)
        st->map_expect = SCN_MAP_DATA;
      else if (strcmp (val, "zero") == 0)
        st->map_expect = SCN_MAP_ZERO;
      else if (strcmp (val, "any") == 0)
        st->map_expect = SCN_MAP_ANY;
      else {
        seterr (err, errlen, line, "expect=%s: expected data, zero or any", val);
        return -1;
      }
    }
    else if (strcmp (arg, "expect") == 0 && val && st->kind == SCN_LIST) {
      if ((st->name = strdup (val)) == NULL)
        return -1;
    }
    else if (strcmp (arg, "max") == 0 && val &&
             (st->kind == SCN_EXPECT_SIZE || st->kind == SCN_RESIZE)) {
      if (!scn_parse_size (val, &st->size_max) || st->size_max > INT64_MAX ||
          st->size_max < st->size) {
        seterr (err, errlen, line, "max=%s: expected a size >= %" PRIu64,
                val, st->size);
        return -1;
      }
    }
    else if (strcmp (arg, "fua") == 0 && !val &&
             (st->kind == SCN_WRITE || st->kind == SCN_ZERO))
      st->fua = true;
    else {
      seterr (err, errlen, line, "%s: unexpected argument '%s%s%s'",
              words[0], arg, val ? "=" : "", val ? val : "");
      return -1;
    }
  }
  if (st->kind == SCN_WRITE && !have_pattern) {
    seterr (err, errlen, line, "write needs pattern=BYTE");
    return -1;
  }
  if (st->kind == SCN_READ && !have_expect) {
    seterr (err, errlen, line, "read needs expect=BYTE|zero");
    return -1;
  }
  return 0;
}

/* Connection state checks: steps other than connect/list/external-resize
 * need an open connection; connect needs a closed one.
 */
static int
check_connections (struct scenario *scn, char *err, size_t errlen)
{
  bool open[MAX_CONN + 1] = { false };

  for (size_t i = 0; i < scn->nr_steps; i++) {
    const struct scn_step *st = &scn->steps[i];
    if (st->conn > scn->max_conn)
      scn->max_conn = st->conn;
    switch (st->kind) {
    case SCN_CONNECT:
      if (open[st->conn]) {
        seterr (err, errlen, st->line, "connection %u is already open",
                st->conn);
        return -1;
      }
      open[st->conn] = true;
      break;
    case SCN_LIST: case SCN_EXTERNAL_RESIZE:
      break;
    case SCN_DISCONNECT:
      if (!open[st->conn]) {
        seterr (err, errlen, st->line, "connection %u is not open", st->conn);
        return -1;
      }
      open[st->conn] = false;
      break;
    default:
      if (!open[st->conn]) {
        seterr (err, errlen, st->line, "%s: connection %u is not open "
                "(add 'connect%s' before it)", scn_kind_name (st->kind),
                st->conn, st->conn > 1 ? " conn=N" : "");
        return -1;
      }
    }
  }
  return 0;
}

struct scenario *
scn_parse_string (const char *text, const char *name, char *err, size_t errlen)
{
  struct scenario *scn;
  char *copy, *line;
  unsigned lineno = 0;
  bool verify_set = false, any_writes = false;

  snprintf (err, errlen, "out of memory");
  scn = calloc (1, sizeof *scn);
  if (!scn)
    return NULL;
  scn->size = DEFAULT_SIZE;
  scn->verify = true;
  if ((scn->name = strdup (name)) == NULL)
    goto err_scn;

  /* strtok_r would skip empty lines and lose the numbering: split by hand. */
  copy = strdup (text);
  if (!copy)
    goto err_scn;
  line = copy;
  while (line) {
    char *nl = strchr (line, '\n'), *hash, *s;
    if (nl)
      *nl = '\0';
    lineno++;
    hash = strchr (line, '#');
    if (hash) {
      if (scn->nr_steps == 0 &&
          parse_header (scn, hash + 1, lineno, &verify_set, err, errlen) == -1)
        goto err_copy;
      *hash = '\0';
    }
    s = trim (line);
    if (*s) {
      struct scn_step *steps;
      if (scn->nr_steps == MAX_STEPS) {
        seterr (err, errlen, lineno, "more than %d steps", MAX_STEPS);
        goto err_copy;
      }
      steps = realloc (scn->steps, (scn->nr_steps + 1) * sizeof *steps);
      if (!steps)
        goto err_copy;
      scn->steps = steps;
      if (parse_step (&steps[scn->nr_steps], s, lineno, err, errlen) == -1) {
        scn->nr_steps++;        /* so that scn_free frees its strings */
        goto err_copy;
      }
      if (scn_step_writes (&steps[scn->nr_steps]))
        any_writes = true;
      switch (steps[scn->nr_steps].kind) {
      case SCN_RESIZE: case SCN_QUERY_SIZE: case SCN_WATCH:
        scn->server_flags |= NBD_FLAG_SEND_RESIZE;
        break;
      case SCN_EXTERNAL_RESIZE:
        if (add_words (&scn->server_caps, &scn->nr_server_caps,
                       "external-resize") == -1)
          goto err_copy;
        break;
      default:
        break;
      }
      scn->nr_steps++;
    }
    line = nl ? nl + 1 : NULL;
  }
  free (copy);

  if (scn->nr_steps == 0) {
    seterr (err, errlen, lineno, "no steps");
    goto err_scn;
  }
  if (!verify_set)
    scn->verify = any_writes;
  if (check_connections (scn, err, errlen) == -1)
    goto err_scn;
  return scn;

 err_copy:
  free (copy);
 err_scn:
  scn_free (scn);
  return NULL;
}

struct scenario *
scn_parse_file (const char *path, char *err, size_t errlen)
{
  FILE *fp;
  char *text = NULL, name[256];
  size_t len = 0;
  const char *base, *dot;
  struct scenario *scn;
  int c;
  size_t cap = 0;

  fp = fopen (path, "r");
  if (!fp) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    return NULL;
  }
  while ((c = getc (fp)) != EOF) {
    if (len + 2 > cap) {
      char *t;
      if (cap >= 1 << 20) {
        snprintf (err, errlen, "%s: file too large", path);
        goto err_fp;
      }
      cap = cap ? cap * 2 : 4096;
      t = realloc (text, cap);
      if (!t)
        goto err_fp;
      text = t;
    }
    text[len++] = (char) c;
  }
  fclose (fp);
  fp = NULL;
  if (!text && (text = strdup ("")) == NULL)
    return NULL;
  text[len] = '\0';

  base = strrchr (path, '/');
  base = base ? base + 1 : path;
  dot = strrchr (base, '.');
  snprintf (name, sizeof name, "%.*s",
            (int) (dot && strcmp (dot, ".scn") == 0 ? dot - base
                   : (ptrdiff_t) strlen (base)), base);
  scn = scn_parse_string (text, name, err, errlen);
  free (text);
  if (!scn) {
    /* Prefix the file name: "path:LINE: what". */
    char tmp[512];
    snprintf (tmp, sizeof tmp, "%s", err);
    snprintf (err, errlen, "%s:%s", path, tmp);
    return NULL;
  }
  if ((scn->path = strdup (path)) == NULL) {
    scn_free (scn);
    return NULL;
  }
  return scn;

 err_fp:
  if (fp)
    fclose (fp);
  free (text);
  return NULL;
}

static void
free_words (char **w)
{
  if (w)
    for (size_t i = 0; w[i]; i++)
      free (w[i]);
  free (w);
}

void
scn_free (struct scenario *scn)
{
  if (!scn)
    return;
  for (size_t i = 0; i < scn->nr_steps; i++) {
    free (scn->steps[i].text);
    free (scn->steps[i].name);
  }
  free (scn->steps);
  free_words (scn->requirements);
  free_words (scn->server_caps);
  free (scn->name);
  free (scn->path);
  free (scn->summary);
  free (scn);
}

void
scn_print_steps (const struct scenario *scn, FILE *fp)
{
  struct scn_model m;
  bool have_model = scn_model_init (&m, scn->size) == 0;

  for (size_t i = 0; i < scn->nr_steps; i++) {
    const struct scn_step *st = &scn->steps[i];
    char flags[40] = "";

    /* A write that ends past the modelled size needs automatic growth. */
    if (have_model && (st->kind == SCN_WRITE || st->kind == SCN_ZERO) &&
        st->off + st->len > m.size)
      strcat (flags, "grow,");
    if (have_model && scn_model_apply (&m, st) == -1) {
      scn_model_free (&m);
      have_model = false;
    }
    if (st->fua)
      strcat (flags, "fua,");
    if (st->expect_zero)
      strcat (flags, "zero,");
    if (st->kind == SCN_MAP && st->map_expect == SCN_MAP_DATA)
      strcat (flags, "data,");
    if (st->kind == SCN_MAP && st->map_expect == SCN_MAP_ZERO)
      strcat (flags, "mapzero,");
    if (*flags)
      flags[strlen (flags) - 1] = '\0';
    else
      strcpy (flags, "-");
    fprintf (fp, "%u\t%s\t%u\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
             "\t%d\t%s\t%s\t",
             st->line, scn_kind_name (st->kind), st->conn, st->off, st->len,
             st->size, st->size_max, st->byte, flags,
             st->name ? st->name : "-");
    for (const char *p = st->text; *p; p++)
      fputc (*p == '\t' ? ' ' : *p, fp);
    fputc ('\n', fp);
  }
  if (have_model)
    scn_model_free (&m);
}

/* ---- content model ---- */

int
scn_model_init (struct scn_model *m, uint64_t size)
{
  memset (m, 0, sizeof *m);
  m->size = m->size_max = size;
  m->size_known = true;
  if (size == 0)
    return 0;
  m->ext = malloc (sizeof *m->ext);
  if (!m->ext)
    return -1;
  m->ext[0] = (struct scn_extent) { .off = 0, .len = size, .byte = 0 };
  m->nr_ext = 1;
  return 0;
}

void
scn_model_free (struct scn_model *m)
{
  free (m->ext);
  m->ext = NULL;
  m->nr_ext = 0;
}

/* Set [off, off+len) to byte, growing the map if the range ends past the
 * modelled size (a gap in between becomes unknown).
 */
static int
model_set (struct scn_model *m, uint64_t off, uint64_t len, int byte)
{
  uint64_t end = off + len;
  struct scn_extent *out;
  size_t n = 0, cap = m->nr_ext + 3;

  if (end > m->size) {
    /* Extend first with unknown bytes; the range is then set below. */
    struct scn_extent *e = realloc (m->ext, (m->nr_ext + 1) * sizeof *e);
    if (!e)
      return -1;
    m->ext = e;
    m->ext[m->nr_ext++] = (struct scn_extent) {
      .off = m->size, .len = end - m->size, .byte = SCN_UNKNOWN };
    m->size = end;
    if (m->size_max < end)
      m->size_max = end;
    cap++;
  }
  out = malloc (cap * sizeof *out);
  if (!out)
    return -1;
  for (size_t i = 0; i < m->nr_ext; i++) {
    struct scn_extent e = m->ext[i];
    uint64_t eend = e.off + e.len;
    if (eend <= off || e.off >= end) {
      out[n++] = e;
      continue;
    }
    if (e.off < off)
      out[n++] = (struct scn_extent) { e.off, off - e.off, e.byte };
    if (e.off <= off)           /* the one extent that holds off */
      out[n++] = (struct scn_extent) { off, len, byte };
    if (eend > end)
      out[n++] = (struct scn_extent) { end, eend - end, e.byte };
  }
  free (m->ext);
  m->ext = out;
  m->nr_ext = n;
  /* Merge neighbours with the same byte. */
  n = 0;
  for (size_t i = 0; i < m->nr_ext; i++) {
    if (n > 0 && m->ext[n - 1].byte == m->ext[i].byte)
      m->ext[n - 1].len += m->ext[i].len;
    else
      m->ext[n++] = m->ext[i];
  }
  m->nr_ext = n;
  return 0;
}

static int
model_resize (struct scn_model *m, uint64_t size, uint64_t size_max)
{
  if (size < m->size) {
    size_t n = 0;
    for (size_t i = 0; i < m->nr_ext; i++) {
      if (m->ext[i].off >= size)
        break;
      if (m->ext[i].off + m->ext[i].len > size)
        m->ext[i].len = size - m->ext[i].off;
      n++;
    }
    m->nr_ext = n;
    m->size = size;
  }
  else if (size > m->size) {
    /* Bytes a resize exposes are unspecified unless the server promises
     * zeroes; the model does not assume that promise.
     */
    if (model_set (m, m->size, size - m->size, SCN_UNKNOWN) == -1)
      return -1;
  }
  m->size_known = size_max == size;
  m->size_max = size_max;
  return 0;
}

int
scn_model_apply (struct scn_model *m, const struct scn_step *st)
{
  switch (st->kind) {
  case SCN_WRITE:
    return model_set (m, st->off, st->len, st->byte);
  case SCN_ZERO:
    return model_set (m, st->off, st->len, 0);
  case SCN_TRIM:
    /* Trimmed bytes read as the old data or as zero: unknown. */
    if (st->off >= m->size)
      return 0;
    return model_set (m, st->off,
                      st->len < m->size - st->off ? st->len
                      : m->size - st->off, SCN_UNKNOWN);
  case SCN_RESIZE:
  case SCN_EXTERNAL_RESIZE:
    return model_resize (m, st->size, st->size_max);
  default:
    return 0;
  }
}

int
scn_model_run (struct scn_model *m, const struct scenario *scn)
{
  if (scn_model_init (m, scn->size) == -1)
    return -1;
  for (size_t i = 0; i < scn->nr_steps; i++)
    if (scn_model_apply (m, &scn->steps[i]) == -1) {
      scn_model_free (m);
      return -1;
    }
  return 0;
}

bool
scn_lint (const struct scenario *scn, char *err, size_t errlen)
{
  struct scn_model m;
  bool ok = true;

  if (scn_model_init (&m, scn->size) == -1) {
    snprintf (err, errlen, "out of memory");
    return false;
  }
  for (size_t i = 0; ok && i < scn->nr_steps; i++) {
    const struct scn_step *st = &scn->steps[i];
    if (st->kind == SCN_READ) {
      uint64_t end = st->off + st->len;
      if (m.size_known && end > m.size) {
        seterr (err, errlen, st->line, "read past the modelled size %" PRIu64,
                m.size);
        ok = false;
      }
      for (size_t j = 0; ok && j < m.nr_ext; j++) {
        const struct scn_extent *e = &m.ext[j];
        if (e->off + e->len <= st->off || e->off >= end)
          continue;
        if (e->byte != SCN_UNKNOWN && e->byte != st->byte) {
          uint64_t at = e->off > st->off ? e->off : st->off;
          seterr (err, errlen, st->line,
                  "read expects 0x%02x but the model has 0x%02x at %" PRIu64,
                  st->byte, e->byte, at);
          ok = false;
        }
      }
    }
    else if (st->kind == SCN_EXPECT_SIZE && m.size_known &&
             st->size == st->size_max && st->size != m.size) {
      seterr (err, errlen, st->line,
              "expect-size %" PRIu64 " but the model has %" PRIu64,
              st->size, m.size);
      ok = false;
    }
    if (scn_model_apply (&m, st) == -1) {
      snprintf (err, errlen, "out of memory");
      ok = false;
    }
  }
  scn_model_free (&m);
  return ok;
}
