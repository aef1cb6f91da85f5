/* A small fixed pool of worker threads for the CPU backend: run(n, fn) calls fn(arg, i) for
 * i in [0, n) spread over the workers (the calling thread works too) and returns when all are done. */
#ifndef AWQ_CPU_POOL_H
#define AWQ_CPU_POOL_H

#include <stddef.h>

struct cpu_pool;

typedef void (*cpu_task_fn)(void *arg, size_t task);

/* n_threads <= 0: one per online core. Returns NULL when threads cannot be created. */
struct cpu_pool *cpu_pool_create(int n_threads);
void cpu_pool_destroy(struct cpu_pool *p);
int cpu_pool_threads(const struct cpu_pool *p);
void cpu_pool_run(struct cpu_pool *p, size_t n_tasks, cpu_task_fn fn, void *arg);

#endif
