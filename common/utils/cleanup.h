/* Scope-bound cleanup (GCC/Clang cleanup attribute). */
#ifndef NBDP_CLEANUP_H
#define NBDP_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#if !defined (__GNUC__)
#error "cleanup.h needs the GCC/Clang cleanup attribute"
#endif

static inline void
nbdp_cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (nbdp_cleanup_free)))

static inline void
nbdp_cleanup_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define CLEANUP_CLOSE __attribute__ ((cleanup (nbdp_cleanup_close)))

static inline void
nbdp_cleanup_unlock (pthread_mutex_t **m)
{
  pthread_mutex_unlock (*m);
}
#define NBDP_CAT2(a, b) a##b
#define NBDP_CAT(a, b) NBDP_CAT2 (a, b)
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                           \
  __attribute__ ((cleanup (nbdp_cleanup_unlock)))                       \
  pthread_mutex_t *NBDP_CAT (nbdp_lock_, __LINE__) = (mutex);           \
  pthread_mutex_lock (NBDP_CAT (nbdp_lock_, __LINE__))

#endif /* NBDP_CLEANUP_H */
