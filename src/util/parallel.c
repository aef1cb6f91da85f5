#include "config.h"

#include <pthread.h>
#include <unistd.h>

#include "util/parallel.h"

#define MAX_THREADS 64

struct range_job {
    awq_range_fn fn;
    void *arg;
    size_t begin, end;
};

static void *run_range(void *p)
{
    struct range_job *j = p;
    j->fn(j->arg, j->begin, j->end);
    return NULL;
}

void awq_parallel_for(size_t n, size_t min_per_thread, awq_range_fn fn, void *arg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = cores > 0 ? (size_t)cores : 1;
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    if (min_per_thread == 0)
        min_per_thread = 1;
    if (t > n / min_per_thread)
        t = n / min_per_thread;
    if (t <= 1) {
        if (n)
            fn(arg, 0, n);
        return;
    }
    struct range_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = { 0 };
    for (size_t i = 0; i < t; i++) {
        jobs[i] = (struct range_job){ fn, arg, n * i / t, n * (i + 1) / t };
        if (i > 0)
            started[i] = pthread_create(&tid[i], NULL, run_range, &jobs[i]) == 0;
    }
    run_range(&jobs[0]);
    for (size_t i = 1; i < t; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            run_range(&jobs[i]);   /* a thread that did not start: do its share here */
    }
}
