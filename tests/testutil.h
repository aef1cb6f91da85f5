/* Helpers shared by the test suites: seeded random data, error measures, test data paths. */
#ifndef AWQ_TESTUTIL_H
#define AWQ_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Seed from AWQ_TEST_SEED, else from the clock; printed once so a failure can be replayed. */
uint64_t tu_seed(void);
/* xorshift64* generator state (never 0). */
uint64_t tu_next(uint64_t *s);
float tu_uniform(uint64_t *s, float lo, float hi);
float tu_normal(uint64_t *s);
void tu_fill_uniform(uint64_t *s, float *x, size_t n, float lo, float hi);
void tu_fill_normal(uint64_t *s, float *x, size_t n, float sd);
/* Σ(a-b)² / max(Σb², tiny): normalised mean squared error of a against the reference b. */
double tu_nmse(const float *a, const float *b, size_t n);
/* Number of non-finite values. */
size_t tu_count_nonfinite(const float *a, size_t n);
/* $AWQ_TEST_DATA/rel, or NULL when AWQ_TEST_DATA is unset (caller frees). */
char *tu_data_path(const char *rel);
/* Fresh empty directory under the build tree / TMPDIR; caller frees; removed by tu_rmtree. */
char *tu_tmpdir(const char *tag);
void tu_rmtree(const char *path);
/* Writes a whole file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);

#endif
