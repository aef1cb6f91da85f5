#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

uint64_t tu_seed(void)
{
    static uint64_t seed;   /* tests only: printed once per process */
    if (seed)
        return seed;
    const char *e = getenv("AWQ_TEST_SEED");
    if (e && *e)
        seed = strtoull(e, NULL, 0);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    if (!seed)
        seed = 1;
    fprintf(stderr, "random seed: AWQ_TEST_SEED=%llu\n", (unsigned long long)seed);
    return seed;
}

uint64_t tu_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

float tu_uniform(uint64_t *s, float lo, float hi)
{
    double u = (double)(tu_next(s) >> 11) / 9007199254740992.0;
    return (float)(lo + (hi - lo) * u);
}

float tu_normal(uint64_t *s)
{
    double u1 = ((double)(tu_next(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(tu_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void tu_fill_uniform(uint64_t *s, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tu_uniform(s, lo, hi);
}

void tu_fill_normal(uint64_t *s, float *x, size_t n, float sd)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tu_normal(s) * sd;
}

double tu_nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (isnan(num))
        return INFINITY;
    return num / (den > 1e-30 ? den : 1e-30);
}

size_t tu_count_nonfinite(const float *a, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += !isfinite(a[i]);
    return c;
}

char *tu_data_path(const char *rel)
{
    const char *root = getenv("AWQ_TEST_DATA");
    if (!root || !*root)
        return NULL;
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", root, rel);
    return p;
}

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/awq-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

void tu_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *c = malloc(n);
            if (!c)
                continue;
            snprintf(c, n, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(c, &st) == 0 && S_ISDIR(st.st_mode))
                tu_rmtree(c);
            else
                unlink(c);
            free(c);
        }
        closedir(d);
    }
    rmdir(path);
}

int tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    int rc = fclose(f);
    return (w == n && rc == 0) ? 0 : -1;
}
