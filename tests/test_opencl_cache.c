/*
 * The OpenCL program binary cache: a second device open loads every program from the cache and
 * builds none; a corrupted, truncated or driver-refused entry is ignored, rebuilt and overwritten;
 * a cache that cannot be written costs rebuilds, not errors. Builds and loads are counted through
 * the context's log callback (debug messages "opencl: built program ..." / "opencl: loaded
 * program ..."). Kernels loaded from the cache must still compute the right thing.
 *
 * Runs without fork: PoCL hangs in a forked child once the parent has enumerated OpenCL devices.
 * Exits 77 (skip) without an OpenCL device.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ops.h"
#include "testutil.h"

#define N_FIXED_PROGRAMS 4   /* gemm_w4, gemm, nn, quant; attention builds on first use */

static char *cache_dir;
static int n_built, n_loaded, n_rebuilding;

static void count_log(void *user, awq_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    if (strncmp(msg, "opencl: built program", 21) == 0)
        n_built++;
    else if (strncmp(msg, "opencl: loaded program", 22) == 0)
        n_loaded++;
    if (strstr(msg, "rebuilding"))
        n_rebuilding++;
}

static void reset_counts(void)
{
    n_built = n_loaded = n_rebuilding = 0;
}

/* A context that logs everything to count_log; the device on it (opened inside the test). */
static awq_context *ctx;

static awq_device *open_dev(void)
{
    awq_context_options o;
    awq_context_options_init(&o);
    o.log = count_log;
    o.log_level = AWQ_LOG_DEBUG;
    ck_assert_int_eq(awq_context_create(&o, &ctx), 0);
    awq_device *d = NULL;
    int st = awq_device_open(ctx, "opencl", -1, &d);
    ck_assert_msg(st == 0, "open: %s", awq_context_last_error(ctx));
    return d;
}

static void close_dev(awq_device *d)
{
    awq_device_close(d);
    awq_context_destroy(ctx);
    ctx = NULL;
}

/* Runs add and a head_dim-16 attention on the device and checks them against host arithmetic. */
static void check_ops(awq_device *d)
{
    enum { n = 1000, T = 5, HD = 16 };
    float a[n], b[n], y[n];
    for (int i = 0; i < n; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = 3.0f - (float)i;
    }
    awq_buffer *ba, *bb, *bo;
    ck_assert_int_eq(awq_buffer_create(d, sizeof a, &ba), 0);
    ck_assert_int_eq(awq_buffer_create(d, sizeof a, &bb), 0);
    ck_assert_int_eq(awq_buffer_create(d, sizeof a, &bo), 0);
    ck_assert_int_eq(awq_buffer_write(ba, 0, a, sizeof a), 0);
    ck_assert_int_eq(awq_buffer_write(bb, 0, b, sizeof b), 0);
    struct awq_add_args aa = { n, { ba, 0 }, { bb, 0 }, { bo, 0 } };
    ck_assert_msg(awq_op_add(d, &aa) == 0, "add: %s", awq_device_last_error(d));
    ck_assert_int_eq(awq_buffer_read(bo, 0, y, sizeof y), 0);
    for (int i = 0; i < n; i++)
        ck_assert_float_eq(y[i], a[i] + b[i]);

    /* attention with all keys equal to 0: uniform weights, so out[i] = mean of v[0..i] */
    float q[T * HD], k[T * HD], v[T * HD], o[T * HD];
    for (int i = 0; i < T * HD; i++) {
        q[i] = 1.0f;
        k[i] = 0.0f;
        v[i] = (float)(i / HD);
    }
    awq_buffer *bq, *bk, *bv, *bout;
    ck_assert_int_eq(awq_buffer_create(d, sizeof q, &bq), 0);
    ck_assert_int_eq(awq_buffer_create(d, sizeof q, &bk), 0);
    ck_assert_int_eq(awq_buffer_create(d, sizeof q, &bv), 0);
    ck_assert_int_eq(awq_buffer_create(d, sizeof q, &bout), 0);
    ck_assert_int_eq(awq_buffer_write(bq, 0, q, sizeof q), 0);
    ck_assert_int_eq(awq_buffer_write(bk, 0, k, sizeof k), 0);
    ck_assert_int_eq(awq_buffer_write(bv, 0, v, sizeof v), 0);
    struct awq_attention_args at = { .n_seq = 1, .q_len = T, .kv_len = T, .n_heads = 1,
                                     .n_kv_heads = 1, .head_dim = HD, .scale = 0.25f,
                                     .q = { bq, 0 }, .k = { bk, 0 }, .v = { bv, 0 },
                                     .out = { bout, 0 } };
    ck_assert_msg(awq_op_attention(d, &at) == 0, "attention: %s", awq_device_last_error(d));
    ck_assert_int_eq(awq_buffer_read(bout, 0, o, sizeof o), 0);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < HD; i++)
            ck_assert_msg(fabsf(o[t * HD + i] - (float)t / 2.0f) < 1e-5f, "attention row %d: %g", t,
                          (double)o[t * HD + i]);
    awq_buffer *all[] = { ba, bb, bo, bq, bk, bv, bout };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        awq_buffer_destroy(all[i]);
}

/* Names of the cache entries (*.bin) in the cache directory; returns the count. */
static int list_entries(char names[][512], int max)
{
    DIR *dir = opendir(cache_dir);
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".bin") == 0 && n < max)
            snprintf(names[n++], 512, "%s/%s", cache_dir, e->d_name);
        ck_assert_msg(strncmp(e->d_name, ".tmp-", 5) != 0, "temporary file %s left behind", e->d_name);
    }
    closedir(dir);
    return n;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_gt(len, 0);
    unsigned char *p = malloc((size_t)len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- tests ------------------------------------------------------------------------------------- */

START_TEST(test_second_open_loads_from_cache)
{
    reset_counts();
    awq_device *d = open_dev();
    ck_assert_int_eq(n_built, N_FIXED_PROGRAMS);    /* fresh directory: everything compiled */
    ck_assert_int_eq(n_loaded, 0);
    check_ops(d);                                   /* + attention for head_dim 16 */
    ck_assert_int_eq(n_built, N_FIXED_PROGRAMS + 1);
    close_dev(d);
    char names[16][512];
    ck_assert_int_eq(list_entries(names, 16), N_FIXED_PROGRAMS + 1);

    reset_counts();
    d = open_dev();
    check_ops(d);
    ck_assert_msg(n_built == 0, "%d programs rebuilt although cached", n_built);
    ck_assert_int_eq(n_loaded, N_FIXED_PROGRAMS + 1);
    close_dev(d);
}
END_TEST

START_TEST(test_corrupt_entries_rebuilt)
{
    char names[16][512];
    int n = list_entries(names, 16);
    ck_assert_int_eq(n, N_FIXED_PROGRAMS + 1);     /* written by the previous test */
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *p = slurp(names[i], &len);
        switch (i % 4) {
        case 0:     /* truncated */
            ck_assert_int_eq(tu_write_file(names[i], p, len / 2), 0);
            break;
        case 1:     /* one bit of the binary flipped: the checksum catches it */
            p[len - 1] ^= 0x10;
            ck_assert_int_eq(tu_write_file(names[i], p, len), 0);
            break;
        case 2:     /* not a cache file at all */
            ck_assert_int_eq(tu_write_file(names[i], "garbage", 7), 0);
            break;
        default: {  /* a well-formed entry whose binary the driver must refuse */
            uint32_t kl = (uint32_t)p[12] | (uint32_t)p[13] << 8 | (uint32_t)p[14] << 16 |
                          (uint32_t)p[15] << 24;
            size_t off = 16 + kl;
            uint64_t bl = rd64(p + off);
            ck_assert_uint_eq(off + 16 + bl, len);
            unsigned char *bin = p + off + 16;
            uint64_t h = 0xcbf29ce484222325ULL;
            for (uint64_t j = 0; j < bl; j++) {
                bin[j] = (unsigned char)(j * 131u + 7u);
                h = (h ^ bin[j]) * 0x100000001b3ULL;
            }
            wr64(p + off + 8, h);
            ck_assert_int_eq(tu_write_file(names[i], p, len), 0);
            break;
        }
        }
        free(p);
    }
    reset_counts();
    awq_device *d = open_dev();
    check_ops(d);
    ck_assert_int_eq(n_built, n);
    ck_assert_int_eq(n_loaded, 0);
    ck_assert_int_eq(n_rebuilding, n);
    close_dev(d);

    /* the entries were overwritten with good ones */
    reset_counts();
    d = open_dev();
    check_ops(d);
    ck_assert_int_eq(n_built, 0);
    ck_assert_int_eq(n_loaded, n);
    close_dev(d);
    ck_assert_int_eq(list_entries(names, 16), n);
}
END_TEST

START_TEST(test_unwritable_cache)
{
    /* a cache directory below a regular file can never be created */
    char blocker[600], sub[700];
    snprintf(blocker, sizeof blocker, "%s/blocker", cache_dir);
    ck_assert_int_eq(tu_write_file(blocker, "x", 1), 0);
    snprintf(sub, sizeof sub, "%s/cache", blocker);
    setenv("AWQ_CACHE_DIR", sub, 1);
    reset_counts();
    awq_device *d = open_dev();
    check_ops(d);
    ck_assert_int_eq(n_built, N_FIXED_PROGRAMS + 1);
    close_dev(d);
    setenv("AWQ_CACHE_DIR", cache_dir, 1);
    unlink(blocker);
}
END_TEST

int main(void)
{
    cache_dir = tu_tmpdir("oclcache");
    if (!cache_dir)
        return 99;
    setenv("AWQ_CACHE_DIR", cache_dir, 1);
    /* skip without a device (probe in a context of its own) */
    awq_context *probe;
    awq_device *d;
    if (awq_context_create(NULL, &probe) != 0)
        return 99;
    if (awq_device_open(probe, "opencl", -1, &d) != 0) {
        printf("SKIP: no usable OpenCL device: %s\n", awq_context_last_error(probe));
        awq_context_destroy(probe);
        tu_rmtree(cache_dir);
        free(cache_dir);
        return 77;
    }
    awq_device_close(d);
    awq_context_destroy(probe);
    tu_rmtree(cache_dir);           /* the probe filled it: start the tests from an empty one */
    mkdir(cache_dir, 0700);

    Suite *s = suite_create("opencl-cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_second_open_loads_from_cache);
    tcase_add_test(tc, test_corrupt_entries_rebuilt);
    tcase_add_test(tc, test_unwritable_cache);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_rmtree(cache_dir);
    free(cache_dir);
    return failed ? 1 : 0;
}
