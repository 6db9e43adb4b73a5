/* libnbd-driver: runs a matrix scenario with libnbd's C API.
 *
 *   libnbd-driver SCENARIO URI
 *
 *   libnbd-driver --version      one line: the libnbd version
 *   libnbd-driver --steps        the step kinds it can run, one a line
 *
 * Exit status (DESIGN.md "Adapters"): 0 every step passed, 1 a step failed,
 * 3 a step is not supported (the last line says which and by whom),
 * 2 the driver itself broke.  external-resize runs the command in
 * $NBD_MATRIX_RESIZE_CMD with the size appended (set by nbd-matrix).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <libnbd.h>

#include "harness/scenario.h"

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_BROKEN 2
#define EXIT_UNSUPPORTED 3

#define DEFAULT_MAX_PAYLOAD (32u << 20)
#define MAX_ZERO_CHUNK (UINT64_C (1) << 30)
#define MAX_HANDLES 65

static struct nbd_handle *handles[MAX_HANDLES];
static const char *uri;
static char *buf;

/* Where we are, for messages. */
static size_t step_no;
static const struct scn_step *cur;

static void
where (FILE *fp)
{
  fprintf (fp, " (step %zu, line %u: %s)\n", step_no + 1, cur->line,
           cur->text);
}

static int __attribute__ ((format (printf, 1, 2)))
fail (const char *fmt, ...)
{
  va_list ap;

  printf ("FAIL: ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  where (stdout);
  return EXIT_FAIL;
}

static int __attribute__ ((format (printf, 2, 3)))
unsupported (const char *who, const char *fmt, ...)
{
  va_list ap;

  printf ("UNSUPPORTED: %s: ", who);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  where (stdout);
  return EXIT_UNSUPPORTED;
}

static int
libnbd_fail (const char *call)
{
  return fail ("%s failed: %s (errno %d)", call, nbd_get_error (),
               nbd_get_errno ());
}

static uint64_t
max_payload (struct nbd_handle *h)
{
  int64_t m = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);

  if (m <= 0 || m > DEFAULT_MAX_PAYLOAD)
    return DEFAULT_MAX_PAYLOAD;
  return (uint64_t) m;
}

static int
do_connect (unsigned conn)
{
  struct nbd_handle *h = nbd_create ();

  if (!h)
    return libnbd_fail ("nbd_create");
  if (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_connect_uri (h, uri) == -1) {
    int r = libnbd_fail ("nbd_connect_uri");
    nbd_close (h);
    return r;
  }
  handles[conn] = h;
  printf ("connected conn=%u: size %" PRId64 ", max payload %" PRIu64
          ", flush=%d fua=%d trim=%d zero=%d multi_conn=%d "
          "base:allocation=%d\n", conn, nbd_get_size (h), max_payload (h),
          nbd_can_flush (h), nbd_can_fua (h), nbd_can_trim (h),
          nbd_can_zero (h), nbd_can_multi_conn (h),
          nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION));
  return EXIT_PASS;
}

static int
do_disconnect (unsigned conn)
{
  struct nbd_handle *h = handles[conn];
  int r = EXIT_PASS;

  handles[conn] = NULL;
  if (nbd_shutdown (h, 0) == -1)
    r = libnbd_fail ("nbd_shutdown");
  nbd_close (h);
  return r;
}

/* NBD_FLAG_AUTO_RESIZE (draft variant B1, transmission bit 13): writes
 * past the end grow the export for every client, no opt-in needed.
 */
#define FLAG_AUTO_RESIZE_B1 (1 << 13)

/* A write or zero past the end needs automatic growth, which libnbd
 * cannot negotiate.  Only when the server grows for every client (B1, as
 * nbd-matrix tells in $NBD_MATRIX_FLAGS) is the request sent, with
 * libnbd's own bounds check switched off; otherwise the step is
 * unsupported.
 */
static bool
past_end (struct nbd_handle *h, const struct scn_step *st)
{
  int64_t size = nbd_get_size (h);
  const char *env = getenv ("NBD_MATRIX_FLAGS");
  long flags = env ? strtol (env, NULL, 10) : -1;

  if (size < 0 || st->off + st->len <= (uint64_t) size)
    return false;
  if (flags >= 0 && (flags & FLAG_AUTO_RESIZE_B1)) {
    printf ("  past the end with NBD_FLAG_AUTO_RESIZE: sending it, libnbd's "
            "bounds check off\n");
    nbd_set_strict_mode (h, nbd_get_strict_mode (h) & ~LIBNBD_STRICT_BOUNDS);
    return false;
  }
  return true;
}

static int
do_write (struct nbd_handle *h, const struct scn_step *st)
{
  uint64_t chunk = max_payload (h), done;
  uint32_t flags = 0;

  if (past_end (h, st))
    return unsupported ("client", "libnbd %s cannot negotiate automatic "
                        "growth (NBD_OPT_RESIZE) for a write past the end "
                        "(size %" PRId64 ")", nbd_get_version (h),
                        nbd_get_size (h));

  if (st->fua) {
    if (nbd_can_fua (h) != 1)
      return unsupported ("server", "did not advertise NBD_FLAG_SEND_FUA");
    flags = LIBNBD_CMD_FLAG_FUA;
  }
  memset (buf, st->byte, chunk < st->len ? chunk : st->len);
  for (done = 0; done < st->len; done += chunk) {
    uint64_t n = st->len - done < chunk ? st->len - done : chunk;
    if (nbd_pwrite (h, buf, n, st->off + done, flags) == -1)
      return fail ("nbd_pwrite offset %" PRIu64 " count %" PRIu64
                   " failed: %s", st->off + done, n, nbd_get_error ());
  }
  return EXIT_PASS;
}

static int
do_read (struct nbd_handle *h, const struct scn_step *st)
{
  uint64_t chunk = max_payload (h), done;

  for (done = 0; done < st->len; done += chunk) {
    uint64_t n = st->len - done < chunk ? st->len - done : chunk;
    if (nbd_pread (h, buf, n, st->off + done, 0) == -1)
      return fail ("nbd_pread offset %" PRIu64 " count %" PRIu64
                   " failed: %s", st->off + done, n, nbd_get_error ());
    for (uint64_t i = 0; i < n; i++) {
      if ((unsigned char) buf[i] != st->byte) {
        uint64_t bad = 0;
        for (uint64_t j = i; j < n; j++)
          bad += (unsigned char) buf[j] != st->byte;
        return fail ("read back 0x%02x at offset %" PRIu64 ", expected "
                     "0x%02x (%" PRIu64 " of the %" PRIu64 " bytes from "
                     "there to the end of the request differ)",
                     (unsigned char) buf[i], st->off + done + i, st->byte,
                     bad, n - i);
      }
    }
  }
  return EXIT_PASS;
}

static int
do_zero_or_trim (struct nbd_handle *h, const struct scn_step *st)
{
  bool zero = st->kind == SCN_ZERO;
  uint32_t flags = 0;
  uint64_t done;

  if (zero && past_end (h, st))
    return unsupported ("client", "libnbd %s cannot negotiate automatic "
                        "growth (NBD_OPT_RESIZE) for a zero past the end "
                        "(size %" PRId64 ")", nbd_get_version (h),
                        nbd_get_size (h));
  if (zero && nbd_can_zero (h) != 1)
    return unsupported ("server", "did not advertise "
                        "NBD_FLAG_SEND_WRITE_ZEROES");
  if (!zero && nbd_can_trim (h) != 1)
    return unsupported ("server", "did not advertise NBD_FLAG_SEND_TRIM");
  if (st->fua) {
    if (nbd_can_fua (h) != 1)
      return unsupported ("server", "did not advertise NBD_FLAG_SEND_FUA");
    flags = LIBNBD_CMD_FLAG_FUA;
  }
  for (done = 0; done < st->len; done += MAX_ZERO_CHUNK) {
    uint64_t n = st->len - done < MAX_ZERO_CHUNK ? st->len - done
                 : MAX_ZERO_CHUNK;
    int r = zero ? nbd_zero (h, n, st->off + done, flags)
                 : nbd_trim (h, n, st->off + done, flags);
    if (r == -1)
      return fail ("%s offset %" PRIu64 " count %" PRIu64 " failed: %s",
                   zero ? "nbd_zero" : "nbd_trim", st->off + done, n,
                   nbd_get_error ());
  }
  return EXIT_PASS;
}

struct map_state {
  uint64_t next;                /* next offset the extents must cover */
  uint64_t end;
  uint64_t zero_at;             /* first offset reported ZERO, or UINT64_MAX */
  uint64_t data_at;             /* first offset reported non-ZERO */
  bool bad_order;
};

static int
extent_cb (void *opaque, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct map_state *ms = opaque;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  if (offset != ms->next) {
    ms->bad_order = true;
    return 0;
  }
  for (size_t i = 0; i + 1 < nr_entries && ms->next < ms->end; i += 2) {
    uint64_t len = entries[i];
    uint32_t flags = entries[i + 1];
    printf ("  extent %" PRIu64 " +%" PRIu64 " %s%s\n", ms->next, len,
            flags & LIBNBD_STATE_HOLE ? "hole" : "data",
            flags & LIBNBD_STATE_ZERO ? ",zero" : "");
    if ((flags & LIBNBD_STATE_ZERO) && ms->zero_at == UINT64_MAX)
      ms->zero_at = ms->next;
    if (!(flags & LIBNBD_STATE_ZERO) && ms->data_at == UINT64_MAX)
      ms->data_at = ms->next;
    ms->next += len;
  }
  return 0;
}

static int
do_map (struct nbd_handle *h, const struct scn_step *st)
{
  struct map_state ms = {
    .next = st->off, .end = st->off + st->len,
    .zero_at = UINT64_MAX, .data_at = UINT64_MAX,
  };

  if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
    /* Without base:allocation every byte counts as data (proto.md). */
    printf ("  server has no base:allocation: all data\n");
    if (st->map_expect == SCN_MAP_ZERO)
      return fail ("map: server offers no base:allocation, so nothing can "
                   "be reported as zero; expected zero");
    return EXIT_PASS;
  }
  while (ms.next < ms.end) {
    uint64_t before = ms.next;
    uint64_t n = ms.end - ms.next;
    if (n > UINT32_MAX)
      n = UINT32_MAX & ~UINT64_C (0xfff);
    if (nbd_block_status (h, n, ms.next,
                          (nbd_extent_callback) { .callback = extent_cb,
                                                  .user_data = &ms }, 0) == -1)
      return fail ("nbd_block_status offset %" PRIu64 " count %" PRIu64
                   " failed: %s", ms.next, n, nbd_get_error ());
    if (ms.bad_order)
      return fail ("block status for offset %" PRIu64 " did not start at "
                   "the requested offset", before);
    if (ms.next == before)
      return fail ("block status for offset %" PRIu64 " made no progress",
                   before);
  }
  if (st->map_expect == SCN_MAP_DATA && ms.zero_at != UINT64_MAX &&
      ms.zero_at < ms.end)
    return fail ("block status reports NBD_STATE_ZERO at offset %" PRIu64
                 " inside written data; expected no zero state there",
                 ms.zero_at);
  if (st->map_expect == SCN_MAP_ZERO && ms.data_at != UINT64_MAX &&
      ms.data_at < ms.end)
    return fail ("block status reports non-zero data at offset %" PRIu64
                 "; expected NBD_STATE_ZERO", ms.data_at);
  return EXIT_PASS;
}

struct list_state {
  const char *want;             /* NULL: any list will do */
  bool found;
};

static int
list_cb (void *opaque, const char *name, const char *description)
{
  struct list_state *ls = opaque;

  printf ("  export \"%s\" (%s)\n", name, description);
  if (ls->want && strcmp (name, ls->want) == 0)
    ls->found = true;
  return 0;
}

static int
do_list (const struct scn_step *st)
{
  struct nbd_handle *h = nbd_create ();
  struct list_state ls = { .want = st->name, .found = false };
  int count, r = EXIT_PASS;

  if (!h)
    return libnbd_fail ("nbd_create");
  if (nbd_set_opt_mode (h, true) == -1 || nbd_connect_uri (h, uri) == -1) {
    r = libnbd_fail ("nbd_connect_uri (option mode)");
    goto out;
  }
  count = nbd_opt_list (h, (nbd_list_callback) { .callback = list_cb,
                                                 .user_data = &ls });
  if (count == -1) {
    if (nbd_get_errno () == ENOTSUP)
      r = unsupported ("server", "NBD_OPT_LIST refused: %s", nbd_get_error ());
    else
      r = libnbd_fail ("nbd_opt_list");
  }
  else if (ls.want && !ls.found)
    r = fail ("NBD_OPT_LIST returned %d name(s), none of them \"%s\"",
              count, ls.want);
  nbd_opt_abort (h);
 out:
  nbd_close (h);
  return r;
}

static int
do_external_resize (const struct scn_step *st)
{
  const char *cmd = getenv ("NBD_MATRIX_RESIZE_CMD");
  char line[8192];
  int status;

  if (!cmd || !*cmd)
    return unsupported ("server", "nbd-matrix gave no resize command "
                        "($NBD_MATRIX_RESIZE_CMD)");
  snprintf (line, sizeof line, "%s %" PRIu64, cmd, st->size);
  fflush (stdout);
  status = system (line);
  if (status == -1 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return fail ("external resize command '%s' failed (status %d)", line,
                 status);
  return EXIT_PASS;
}

static int
run_step (const struct scn_step *st)
{
  struct nbd_handle *h = handles[st->conn];
  int64_t size;

  switch (st->kind) {
  case SCN_CONNECT:
    return do_connect (st->conn);
  case SCN_DISCONNECT:
    return do_disconnect (st->conn);
  case SCN_EXPECT_SIZE:
    size = nbd_get_size (h);
    if (size == -1)
      return libnbd_fail ("nbd_get_size");
    if ((uint64_t) size < st->size || (uint64_t) size > st->size_max) {
      if (st->size == st->size_max)
        return fail ("export size is %" PRId64 ", expected %" PRIu64, size,
                     st->size);
      return fail ("export size is %" PRId64 ", expected %" PRIu64 "..%"
                   PRIu64, size, st->size, st->size_max);
    }
    return EXIT_PASS;
  case SCN_WRITE:
    return do_write (h, st);
  case SCN_READ:
    return do_read (h, st);
  case SCN_ZERO: case SCN_TRIM:
    return do_zero_or_trim (h, st);
  case SCN_FLUSH:
    if (nbd_can_flush (h) != 1)
      return unsupported ("server", "did not advertise NBD_FLAG_SEND_FLUSH");
    if (nbd_flush (h, 0) == -1)
      return libnbd_fail ("nbd_flush");
    return EXIT_PASS;
  case SCN_MAP:
    return do_map (h, st);
  case SCN_RESIZE: case SCN_QUERY_SIZE: case SCN_WATCH:
    return unsupported ("client", "libnbd %s has no API for NBD_CMD_RESIZE",
                        nbd_get_version (h ? h : handles[0]));
  case SCN_EXTERNAL_RESIZE:
    return do_external_resize (st);
  case SCN_LIST:
    return do_list (st);
  }
  return fail ("unknown step kind %d", (int) st->kind);
}

int
main (int argc, char *argv[])
{
  struct scenario *scn;
  char err[512];
  int r = EXIT_PASS;

  if (argc == 2 && strcmp (argv[1], "--version") == 0) {
    struct nbd_handle *h = nbd_create ();
    if (!h)
      return EXIT_BROKEN;
    printf ("libnbd %s\n", nbd_get_version (h));
    nbd_close (h);
    return EXIT_PASS;
  }
  if (argc == 2 && strcmp (argv[1], "--steps") == 0) {
    /* What this driver can run at all (resize, query-size and watch
     * need an API libnbd does not have).
     */
    printf ("connect\ndisconnect\nexpect-size\nwrite\nread\nzero\ntrim\n"
            "flush\nmap\nexternal-resize\nlist\n");
    return EXIT_PASS;
  }
  if (argc != 3) {
    fprintf (stderr, "usage: %s SCENARIO URI | --version | --steps\n",
             argv[0]);
    return EXIT_BROKEN;
  }
  setvbuf (stdout, NULL, _IOLBF, 0);
  uri = argv[2];
  scn = scn_parse_file (argv[1], err, sizeof err);
  if (!scn) {
    fprintf (stderr, "libnbd-driver: %s\n", err);
    return EXIT_BROKEN;
  }
  buf = malloc (DEFAULT_MAX_PAYLOAD);
  /* handles[0] is never a connection: it serves nbd_get_version. */
  handles[0] = nbd_create ();
  if (!buf || !handles[0]) {
    fprintf (stderr, "libnbd-driver: out of memory\n");
    return EXIT_BROKEN;
  }
  printf ("libnbd-driver: libnbd %s, scenario %s, uri %s\n",
          nbd_get_version (handles[0]), scn->name, uri);
  for (step_no = 0; step_no < scn->nr_steps && r == EXIT_PASS; step_no++) {
    cur = &scn->steps[step_no];
    printf ("step %zu (line %u): %s\n", step_no + 1, cur->line, cur->text);
    r = run_step (cur);
  }
  for (unsigned i = 0; i < MAX_HANDLES; i++)
    if (handles[i]) {
      if (i > 0)
        nbd_shutdown (handles[i], 0);
      nbd_close (handles[i]);
    }
  if (r == EXIT_PASS)
    printf ("PASS: %zu steps\n", scn->nr_steps);
  scn_free (scn);
  free (buf);
  return r;
}
