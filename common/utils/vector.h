/* A typed growable array:
 *   DEFINE_VECTOR_TYPE (string_vector, char *);
 *   string_vector v = empty_vector;
 *   if (string_vector_append (&v, s) == -1) ...;
 *   for (size_t i = 0; i < v.len; i++) ... v.ptr[i] ...;
 *   free (v.ptr);
 */
#ifndef NBDP_VECTOR_H
#define NBDP_VECTOR_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define empty_vector { .ptr = NULL, .len = 0, .cap = 0 }

#define DEFINE_VECTOR_TYPE(name, type)                                  \
  typedef struct {                                                      \
    type *ptr;                                                          \
    size_t len;                                                         \
    size_t cap;                                                         \
  } name;                                                               \
                                                                        \
  static inline __attribute__ ((__unused__)) int                        \
  name##_reserve (name *v, size_t n)                                    \
  {                                                                     \
    size_t newcap;                                                      \
    type *p;                                                            \
    if (v->cap - v->len >= n)                                           \
      return 0;                                                         \
    if (__builtin_add_overflow (v->len, n, &newcap) ||                  \
        newcap > SIZE_MAX / 2 / sizeof (type)) {                        \
      errno = ENOMEM;                                                   \
      return -1;                                                        \
    }                                                                   \
    if (newcap < v->cap * 2)                                            \
      newcap = v->cap * 2;                                              \
    p = realloc (v->ptr, newcap * sizeof (type));                       \
    if (p == NULL)                                                      \
      return -1;                                                        \
    v->ptr = p;                                                         \
    v->cap = newcap;                                                    \
    return 0;                                                           \
  }                                                                     \
                                                                        \
  static inline __attribute__ ((__unused__)) int                        \
  name##_append (name *v, type elem)                                    \
  {                                                                     \
    if (name##_reserve (v, 1) == -1)                                    \
      return -1;                                                        \
    v->ptr[v->len++] = elem;                                            \
    return 0;                                                           \
  }                                                                     \
                                                                        \
  static inline __attribute__ ((__unused__)) void                       \
  name##_reset (name *v)                                                \
  {                                                                     \
    free (v->ptr);                                                      \
    v->ptr = NULL;                                                      \
    v->len = v->cap = 0;                                                \
  }

#endif /* NBDP_VECTOR_H */
