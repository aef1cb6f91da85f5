/* A parallel loop for host-side work of the pipeline (quantizing weights, folding scales): splits
 * [0, n) into contiguous ranges over the online cores with short-lived threads. Falls back to the
 * calling thread when threads cannot start; results never depend on the thread count. */
#ifndef AWQ_UTIL_PARALLEL_H
#define AWQ_UTIL_PARALLEL_H

#include <stddef.h>

typedef void (*awq_range_fn)(void *arg, size_t begin, size_t end);

void awq_parallel_for(size_t n, size_t min_per_thread, awq_range_fn fn, void *arg);

#endif
