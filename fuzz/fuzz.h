/* nbd-conformance: the entry points every fuzz target defines (the
 * libFuzzer interface), so that the targets build with -Wmissing-
 * prototypes and link either with libFuzzer (make fuzz) or with
 * replay.c (make check: replays the corpus and crash reproducers).
 */
#ifndef NBDP_FUZZ_H
#define NBDP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
/* Optional: targets that need one-time setup define it; replay.c calls
 * it when present (weak).
 */
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* A cursor over the fuzz input, for targets that read it as a script. */
struct fuzz_in {
  const uint8_t *p;
  size_t left;
};

static inline uint8_t
fuzz_u8 (struct fuzz_in *in)
{
  uint8_t v;

  if (in->left == 0)
    return 0;
  v = *in->p++;
  in->left--;
  return v;
}

static inline uint16_t
fuzz_u16 (struct fuzz_in *in)
{
  uint16_t hi = fuzz_u8 (in);
  return (uint16_t) (hi << 8 | fuzz_u8 (in));
}

static inline uint32_t
fuzz_u32 (struct fuzz_in *in)
{
  uint32_t hi = fuzz_u16 (in);
  return hi << 16 | fuzz_u16 (in);
}

static inline uint64_t
fuzz_u64 (struct fuzz_in *in)
{
  uint64_t hi = fuzz_u32 (in);
  return hi << 32 | fuzz_u32 (in);
}

/* Up to n bytes (fewer at the end of the input); *got says how many. */
static inline const uint8_t *
fuzz_bytes (struct fuzz_in *in, size_t n, size_t *got)
{
  const uint8_t *p = in->p;

  if (n > in->left)
    n = in->left;
  in->p += n;
  in->left -= n;
  *got = n;
  return p;
}

#endif /* NBDP_FUZZ_H */
