/* nbd-refserver: the switches, profiles and deliberate faults of the
 * draft RESIZE extension (specs/resize.md section 15).  Switches are
 * recorded as they come; resize_config_finish applies the defaults, then
 * the profile, then the explicit switches in command-line order, so that
 * explicit switches win over the profile wherever they appear.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

struct resize_config rzc;

/* ---- Profiles (section 15.2) ---- */

struct profile {
  const char *name;
  const char *conf;         /* yes, variant, negative */
  const char *switches;     /* "@base" first to include another profile */
  const char *desc;
};

static const struct profile profiles[] = {
  { "off", "yes", "resize=off", "the extension is off (the default)" },
  { "legacy", "yes", "resize=legacy",
    "2017 semantics: NBD_FLAG_SEND_RESIZE, set size with a simple reply" },
  { "explicit-simple", "yes",
    "resize=negotiated size-reply=off query=off notify=off",
    "negotiated set size, success means exactly the requested size" },
  { "explicit-structured", "yes",
    "resize=negotiated size-reply=on granularity=64K query=on notify=off",
    "negotiated set size with size chunks (rounding to 64K), query" },
  { "quota", "yes", "@explicit-structured max-size=1G",
    "explicit-structured with a 1G maximum size: growth is capped" },
  { "auto-grow", "yes",
    "resize=negotiated auto-grow=on resize-shrink=off size-reply=on "
    "granularity=4K",
    "writes past the end grow the export after opt-in (AUTO_GROW)" },
  { "notify", "yes",
    "resize=negotiated size-reply=on query=on notify=on notify-rate=10",
    "query and subscriptions (notifications, 10 per second)" },
  { "everything", "yes",
    "resize=negotiated auto-grow=on size-reply=on query=on notify=on "
    "granularity=4K",
    "every feature: set size, automatic growth, query, notify" },
  { "unzeroed", "yes", "@everything zero-fill=unspecified fill-pattern=0xa5",
    "everything, but new bytes are unspecified (filled with 0xa5)" },
  { "refuse", "yes", "@everything visibility=refuse",
    "everything, but resizes are refused while other connections are "
    "open (exports default to multi-conn off)" },
  { "flag-only", "variant",
    "resize=negotiated resize-encoding=flag-only auto-grow=on",
    "variant B1: NBD_FLAG_AUTO_RESIZE, no option, no size chunk "
    "(writes past the end grow for every client, also qemu and nbdcopy)" },
  { "info-optin", "variant", "@everything resize-encoding=info-optin",
    "variant B2: listing NBD_INFO_RESIZE in NBD_OPT_GO is the opt-in" },
  { "boolean", "variant",
    "resize=negotiated resize-encoding=boolean auto-grow=on",
    "variant B3: negotiated, but never a size chunk" },
  { "per-connection", "negative", "@everything visibility=connection",
    "NEGATIVE: a resize changes only the asking connection's size "
    "(breaks RZ-MC-5, RZ-MC-7)" },
  { "no-optin", "negative", "@everything require-optin=off",
    "NEGATIVE: writes past the end grow without opt-in (breaks RZ-AUTO-1; "
    "clients that expect ENOSPC past the end, e.g. qemu-io, see success)" },
  { "no-coalesce", "negative", "@notify coalesce=off notify-rate=0",
    "NEGATIVE: one notification per change, unlimited rate "
    "(breaks RZ-FLOOD-2, RZ-FLOOD-3)" },
  { "replace-subscription", "negative", "@notify second-notify=replace",
    "NEGATIVE: a second subscribe replaces the first (breaks RZ-SUB-1)" },
  { "no-unsubscribe", "negative", "@notify unsubscribe=off",
    "NEGATIVE: unsubscribe fails with NBD_EINVAL (breaks RZ-SUB-10)" },
};
#define N_PROFILES (sizeof profiles / sizeof profiles[0])

/* ---- Faults (section 15.3) ---- */

static const struct {
  const char *name;
  const char *desc;
} faults[N_FAULTS] = {
  [FAULT_NOTIFY_FLOOD] = { "notify-flood",
    "5000 notifications right after a subscription's first chunk "
    "(breaks RZ-FLOOD-3, RZ-SUB-6)" },
  [FAULT_NOTIFY_DUPLICATE] = { "notify-duplicate",
    "every subscription chunk is followed by one of the same size "
    "(breaks RZ-FLOOD-1)" },
  [FAULT_CHUNK_FOREIGN_COOKIE] = { "chunk-foreign-cookie",
    "a size chunk on the cookie of a finished NBD_CMD_RESIZE "
    "(breaks RZ-CHUNK-4)" },
  [FAULT_CHUNK_BAD_LENGTH] = { "chunk-bad-length",
    "size chunks with a payload length of 20 (breaks RZ-CHUNK-1)" },
  [FAULT_SIZE_UNALIGNED] = { "size-unaligned",
    "sizes set by set size or growth are one byte past a multiple of G "
    "(breaks RZ-INFO-8, RZ-SET-14)" },
  [FAULT_QUERY_NO_DONE] = { "query-no-done",
    "a query is answered by a size chunk without DONE (breaks RZ-QUERY-1)" },
  [FAULT_PRIVATE_SHRINK] = { "private-shrink",
    "a shrink applies only to the asking connection, without notifying "
    "others (breaks RZ-MC-2, RZ-MC-7)" },
  [FAULT_UNNEGOTIATED_CHUNK] = { "unnegotiated-chunk",
    "size chunks even where SIZE_REPLY is not active (breaks RZ-CHUNK-2)" },
  [FAULT_SEQUENCE_REVERSE] = { "sequence-reverse",
    "each notification's sequence number is the previous one minus 1 "
    "(breaks RZ-SEQ-3)" },
  [FAULT_DIRTY_GROW] = { "dirty-grow",
    "offers ZERO_FILL but fills new bytes with the fill pattern "
    "(breaks RZ-ZERO-1)" },
};

const char *
resize_fault_name (enum rz_fault f)
{
  return f < N_FAULTS ? faults[f].name : "?";
}

/* ---- The switch table ---- */

enum sw_kind { SW_BOOL, SW_ENUM, SW_SIZE, SW_NUM, SW_BYTE, SW_ACTION };

struct sw {
  const char *name;
  enum sw_kind kind;
  const char *choices;      /* SW_ENUM: "a|b|c" */
  const char *def;          /* default as shown by --help */
  const char *help;
};

static const struct sw switches[] = {
  { "resize", SW_ENUM, "off|legacy|negotiated", "off",
    "the extension" },
  { "resize-encoding", SW_ENUM,
    "negotiated|flag-only|info-optin|boolean|legacy", "negotiated",
    "encoding: P, B1, B2, B3, or 2017 legacy" },
  { "legacy-fallback", SW_BOOL, NULL, "on",
    "NBD_FLAG_SEND_RESIZE (legacy mode) for clients that negotiate nothing" },
  { "resize-grow", SW_BOOL, NULL, "on", "capability GROW" },
  { "resize-shrink", SW_BOOL, NULL, "on", "capability SHRINK" },
  { "auto-grow", SW_BOOL, NULL, "off",
    "capability AUTO_GROW: writes past the end grow the export" },
  { "require-optin", SW_BOOL, NULL, "on",
    "off: grow on writes past the end without AUTO_GROW active (negative)" },
  { "size-reply", SW_BOOL, NULL, "on",
    "capability SIZE_REPLY (size chunks, rounding, capping)" },
  { "granularity", SW_SIZE, NULL, "0",
    "0 or a power of 2 not below the minimum block size" },
  { "max-size", SW_SIZE, NULL, "0",
    "largest size (0: none, limit 2^63-1); a multiple of G" },
  { "query", SW_BOOL, NULL, "on", "capability QUERY" },
  { "notify", SW_BOOL, NULL, "on", "capability NOTIFY" },
  { "unsubscribe", SW_BOOL, NULL, "on",
    "off: fail unsubscribe with NBD_EINVAL (negative)" },
  { "second-notify", SW_ENUM, "reject|replace", "reject",
    "a second subscribe on a connection (replace: negative)" },
  { "notify-rate", SW_NUM, NULL, "10",
    "notifications per second per subscription, 0 = unlimited" },
  { "coalesce", SW_BOOL, NULL, "on",
    "off: queue one notification per change (negative)" },
  { "zero-fill", SW_ENUM, "guaranteed|unspecified", "guaranteed",
    "new bytes read as zero (capability ZERO_FILL) or hold the pattern" },
  { "fill-pattern", SW_BYTE, NULL, "0xa5",
    "byte new bytes hold with --zero-fill=unspecified" },
  { "visibility", SW_ENUM, "export|refuse|connection", "export",
    "export-wide (EXPORT_WIDE), refuse while others are connected, or "
    "per connection (negative)" },
  { "sequence-start", SW_NUM, NULL, "4294967280",
    "first sequence number of each export" },
  { "fault", SW_ACTION, NULL, "none",
    "NAME: break one rule on purpose (repeatable, see --list-faults)" },
  { "profile", SW_ACTION, NULL, "none",
    "NAME: a bundle of switches (see --list-profiles)" },
  { "list-profiles", SW_ACTION, NULL, NULL, "list the profiles" },
  { "list-faults", SW_ACTION, NULL, NULL, "list the faults" },
};
#define N_SWITCHES (sizeof switches / sizeof switches[0])

size_t
resize_switch_count (void)
{
  return N_SWITCHES;
}

const char *
resize_switch_name (size_t i, int *has_arg)
{
  const struct sw *s = &switches[i];

  if (s->kind == SW_BOOL)
    *has_arg = 2;               /* optional_argument */
  else if (strcmp (s->name, "list-profiles") == 0 ||
           strcmp (s->name, "list-faults") == 0)
    *has_arg = 0;
  else
    *has_arg = 1;
  return s->name;
}

/* Explicit switches as given, applied after the profile. */
struct given {
  size_t i;
  const char *arg;
};
static struct given *given;
static size_t ngiven;
static const char *profile_name;

static int
parse_bool (const char *name, const char *arg, bool *r)
{
  if (arg == NULL || strcmp (arg, "on") == 0 || strcmp (arg, "yes") == 0 ||
      strcmp (arg, "true") == 0 || strcmp (arg, "1") == 0)
    *r = true;
  else if (strcmp (arg, "off") == 0 || strcmp (arg, "no") == 0 ||
           strcmp (arg, "false") == 0 || strcmp (arg, "0") == 0)
    *r = false;
  else {
    nbdp_warnx ("--%s=%s: expected on or off", name, arg);
    return -1;
  }
  return 0;
}

/* Index of arg in "a|b|c", or -1. */
static int
parse_choice (const struct sw *s, const char *arg)
{
  const char *p = s->choices;
  size_t n = arg ? strlen (arg) : 0;
  int k = 0;

  if (arg == NULL)
    return -1;
  while (p && *p) {
    const char *bar = strchr (p, '|');
    size_t len = bar ? (size_t) (bar - p) : strlen (p);
    if (len == n && strncmp (p, arg, n) == 0)
      return k;
    k++;
    p = bar ? bar + 1 : NULL;
  }
  nbdp_warnx ("--%s=%s: expected one of %s", s->name, arg, s->choices);
  return -1;
}

static int find_fault (const char *name);

/* Set one switch in rzc.  i indexes switches[]. */
static int
apply (size_t i, const char *arg)
{
  const struct sw *s = &switches[i];
  const char *n = s->name;
  bool b;
  int k;
  uint64_t v;

  switch (s->kind) {
  case SW_BOOL:
    if (parse_bool (n, arg, &b) == -1)
      return -1;
    if (strcmp (n, "legacy-fallback") == 0) rzc.legacy_fallback = b;
    else if (strcmp (n, "resize-grow") == 0) rzc.grow = b;
    else if (strcmp (n, "resize-shrink") == 0) rzc.shrink = b;
    else if (strcmp (n, "auto-grow") == 0) rzc.auto_grow = b;
    else if (strcmp (n, "require-optin") == 0) rzc.require_optin = b;
    else if (strcmp (n, "size-reply") == 0) rzc.size_reply = b;
    else if (strcmp (n, "query") == 0) rzc.query = b;
    else if (strcmp (n, "notify") == 0) rzc.notify = b;
    else if (strcmp (n, "unsubscribe") == 0) rzc.unsubscribe = b;
    else if (strcmp (n, "coalesce") == 0) rzc.coalesce = b;
    return 0;
  case SW_ENUM:
    if ((k = parse_choice (s, arg)) == -1)
      return -1;
    if (strcmp (n, "resize") == 0)
      rzc.mode = k == 0 ? RZ_OFF : k == 1 ? RZ_LEGACY : RZ_NEGOTIATED;
    else if (strcmp (n, "resize-encoding") == 0)
      rzc.encoding = (enum rz_encoding) k;
    else if (strcmp (n, "second-notify") == 0)
      rzc.second_replace = k == 1;
    else if (strcmp (n, "zero-fill") == 0)
      rzc.zero_fill = k == 0;
    else if (strcmp (n, "visibility") == 0)
      rzc.visibility = (enum rz_visibility) k;
    return 0;
  case SW_SIZE:
    if (parse_size (arg, &v) == -1 || v > NBD_RESIZE_SIZE_MAX) {
      nbdp_warnx ("--%s=%s: expected a size up to 2^63-1", n,
                  arg ? arg : "");
      return -1;
    }
    if (strcmp (n, "granularity") == 0) {
      if (v != 0 && ((v & (v - 1)) != 0 || v > UINT32_MAX)) {
        nbdp_warnx ("--granularity=%s: expected 0 or a power of 2 below "
                    "2^32", arg);
        return -1;
      }
      rzc.granularity = v;
    }
    else
      rzc.max_size = v;
    return 0;
  case SW_NUM:
  case SW_BYTE: {
    char *end;
    unsigned long long x;

    errno = 0;
    x = arg ? strtoull (arg, &end, 0) : 0;
    if (arg == NULL || *arg == '\0' || *arg == '-' || errno || *end ||
        x > (s->kind == SW_BYTE ? 255u
             : strcmp (n, "sequence-start") == 0 ? UINT32_MAX
             : 1000000000u)) {
      nbdp_warnx ("--%s=%s: expected a number%s", n, arg ? arg : "",
                  s->kind == SW_BYTE ? " from 0 to 255 (or 0x00 to 0xff)"
                  : "");
      return -1;
    }
    if (strcmp (n, "notify-rate") == 0) rzc.notify_rate = x;
    else if (strcmp (n, "sequence-start") == 0) rzc.sequence_start = x;
    else rzc.fill_pattern = x;
    return 0;
  }
  case SW_ACTION:
    if (strcmp (n, "fault") == 0) {
      if ((k = find_fault (arg)) == -1)
        return -1;
      rzc.faults |= 1u << k;
    }
    return 0;
  }
  return 0;
}

static int
find_fault (const char *name)
{
  for (int k = 0; k < N_FAULTS; k++)
    if (name && strcmp (faults[k].name, name) == 0)
      return k;
  nbdp_warnx ("--fault %s: unknown fault (see --list-faults)",
              name ? name : "");
  return -1;
}

static const struct profile *
find_profile (const char *name)
{
  for (size_t i = 0; i < N_PROFILES; i++)
    if (strcmp (profiles[i].name, name) == 0)
      return &profiles[i];
  return NULL;
}

static size_t
find_switch (const char *name, size_t len)
{
  for (size_t i = 0; i < N_SWITCHES; i++)
    if (strlen (switches[i].name) == len &&
        strncmp (switches[i].name, name, len) == 0)
      return i;
  return N_SWITCHES;
}

/* Apply a profile's switch string (depth bounds the @base chain). */
static int
apply_profile (const struct profile *p, int depth)
{
  const char *s = p->switches;

  while (*s) {
    const char *e = strchr (s, ' ');
    size_t len = e ? (size_t) (e - s) : strlen (s);
    char word[128];

    if (len >= sizeof word)
      return -1;
    memcpy (word, s, len);
    word[len] = '\0';
    if (word[0] == '@') {
      const struct profile *base = find_profile (word + 1);
      if (base == NULL || depth > 4 || apply_profile (base, depth + 1) == -1)
        return -1;
    }
    else {
      char *eq = strchr (word, '=');
      size_t i = find_switch (word, eq ? (size_t) (eq - word) : len);
      if (i == N_SWITCHES || apply (i, eq ? eq + 1 : NULL) == -1)
        return -1;
    }
    s = e ? e + 1 : s + len;
  }
  return 0;
}

static void
list_profiles (void)
{
  for (size_t i = 0; i < N_PROFILES; i++)
    printf ("%-21s %-8s %s\n", profiles[i].name, profiles[i].conf,
            profiles[i].desc);
}

static void
list_faults (void)
{
  for (int k = 0; k < N_FAULTS; k++)
    printf ("%-21s %s\n", faults[k].name, faults[k].desc);
}

int
resize_switch (size_t i, const char *arg)
{
  const char *n = switches[i].name;
  struct given *g;

  if (strcmp (n, "list-profiles") == 0) {
    list_profiles ();
    return 1;
  }
  if (strcmp (n, "list-faults") == 0) {
    list_faults ();
    return 1;
  }
  if (strcmp (n, "profile") == 0) {
    if (find_profile (arg) == NULL) {
      nbdp_warnx ("--profile %s: unknown profile (see --list-profiles)", arg);
      return -1;
    }
    profile_name = arg;
    return 0;
  }
  /* Check the value now, so that errors name the switch as given. */
  {
    struct resize_config save = rzc;
    int r = apply (i, arg);
    rzc = save;
    if (r == -1)
      return -1;
  }
  g = realloc (given, (ngiven + 1) * sizeof *given);
  if (g == NULL) {
    nbdp_warn ("realloc");
    return -1;
  }
  given = g;
  given[ngiven].i = i;
  given[ngiven].arg = arg;
  ngiven++;
  return 0;
}

static void
defaults (void)
{
  memset (&rzc, 0, sizeof rzc);
  rzc.mode = RZ_OFF;
  rzc.encoding = RZ_ENC_P;
  rzc.legacy_fallback = true;
  rzc.grow = true;
  rzc.shrink = true;
  rzc.auto_grow = false;
  rzc.require_optin = true;
  rzc.size_reply = true;
  rzc.query = true;
  rzc.notify = true;
  rzc.unsubscribe = true;
  rzc.coalesce = true;
  rzc.zero_fill = true;
  rzc.fill_pattern = 0xa5;
  rzc.visibility = RZ_VIS_EXPORT;
  rzc.notify_rate = NBD_RESIZE_NOTIFY_RATE_DEFAULT;
  rzc.sequence_start = UINT32_C (0xfffffff0);
}

int
resize_config_finish (void)
{
  defaults ();
  if (profile_name && apply_profile (find_profile (profile_name), 0) == -1) {
    nbdp_warnx ("--profile %s: internal error in its definition",
                profile_name);
    return -1;
  }
  for (size_t k = 0; k < ngiven; k++)
    if (apply (given[k].i, given[k].arg) == -1)
      return -1;
  free (given);
  given = NULL;
  ngiven = 0;

  /* --resize-encoding=legacy is --resize=legacy. */
  if (rzc.encoding == RZ_ENC_LEGACY && rzc.mode != RZ_OFF)
    rzc.mode = RZ_LEGACY;
  /* B3 never offers size chunks (RZ-B3-1). */
  if (rzc.mode == RZ_NEGOTIATED && rzc.encoding == RZ_ENC_B3)
    rzc.size_reply = false;
  /* Refusing resizes while others are connected does not go with
   * multi-conn (RZ-MC-1): exports default to multi-conn off then.
   */
  rzc.multi_conn_default = !(rzc.mode == RZ_NEGOTIATED &&
                             rzc.visibility == RZ_VIS_REFUSE);
  if (rzc.faults & (1u << FAULT_SIZE_UNALIGNED) && rzc.granularity < 2)
    rzc.granularity = 4096;
  return 0;
}

void
resize_usage (FILE *f)
{
  fprintf (f, "Draft RESIZE extension (specs/resize.md section 15; "
           "bare boolean switch = on):\n");
  for (size_t i = 0; i < N_SWITCHES; i++) {
    const struct sw *s = &switches[i];
    char left[64];

    if (s->kind == SW_BOOL)
      snprintf (left, sizeof left, "--%s[=on|off]", s->name);
    else if (s->kind == SW_ENUM)
      snprintf (left, sizeof left, "--%s=", s->name);
    else if (s->kind == SW_ACTION && s->def)
      snprintf (left, sizeof left, "--%s NAME", s->name);
    else if (s->kind == SW_ACTION)
      snprintf (left, sizeof left, "--%s", s->name);
    else
      snprintf (left, sizeof left, "--%s=N", s->name);
    fprintf (f, "  %-26s %s", left, s->help);
    if (s->kind == SW_ENUM)
      fprintf (f, "\n  %-26s %s", "", s->choices);
    if (s->def)
      fprintf (f, " (default %s)", s->def);
    fputc ('\n', f);
  }
  fprintf (f, "  %-26s %s\n", "--control PATH",
           "control socket: resize EXPORT SIZE, size EXPORT, help");
}
