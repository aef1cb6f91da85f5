/* Growing arrays: the one place that doubles a capacity. */
#ifndef AWQ_UTIL_ARRAY_H
#define AWQ_UTIL_ARRAY_H

#include <stdint.h>
#include <stdlib.h>

/* Room for element n of an array of `elem`-byte elements at `base` holding *cap: returns `base`
 * when there is room, else the reallocated array (capacity doubled, at least `first`, *cap
 * updated), or NULL when memory runs out (the old array and *cap untouched). */
static inline void *awq_array_reserve(void *base, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap)
        return base;
    size_t c = *cap ? *cap * 2 : first;
    if (c <= n || c > SIZE_MAX / elem)
        return NULL;
    void *v = realloc(base, c * elem);
    if (v)
        *cap = c;
    return v;
}

#endif /* AWQ_UTIL_ARRAY_H */
