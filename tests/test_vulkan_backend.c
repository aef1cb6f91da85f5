/*
 * The Vulkan backend beyond op parity: device discovery, the on-disk pipeline cache (written
 * atomically, corrupt files ignored), errors (no driver, out of device memory, misaligned tensor
 * offsets), buffers freed while work that uses them is still queued, and runs with the
 * validation layer requested (clean work passes; a deliberate misuse comes back as an error).
 * Exits 77 (skip) when there is no Vulkan device.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/ops.h"
#include "testutil.h"
#include "../backends/vulkan/vk_internal.h"

static uint64_t rng;

static int backend_slot(awq_context *ctx)
{
    for (int i = 0; i < awq_backend_count(ctx); i++)
        if (strcmp(awq_backend_name(ctx, i), "vulkan") == 0)
            return i;
    return -1;
}

static awq_device *open_vulkan(awq_context **ctx)
{
    ck_assert_int_eq(awq_context_create(NULL, ctx), 0);
    awq_device *dev = NULL;
    int st = awq_device_open(*ctx, "vulkan", -1, &dev);
    ck_assert_msg(st == 0, "open: %s", awq_context_last_error(*ctx));
    return dev;
}

/* out = a + b on the device for n random values; checks the result exactly. */
static void run_add(awq_device *dev, size_t n)
{
    float *a = malloc(n * 4), *b = malloc(n * 4), *o = malloc(n * 4);
    ck_assert(a && b && o);
    tu_fill_uniform(&rng, a, n, -1, 1);
    tu_fill_uniform(&rng, b, n, -1, 1);
    awq_buffer *ba, *bb, *bo;
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &ba), 0);
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bb), 0);
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bo), 0);
    ck_assert_int_eq(awq_buffer_write(ba, 0, a, n * 4), 0);
    ck_assert_int_eq(awq_buffer_write(bb, 0, b, n * 4), 0);
    struct awq_add_args args = { n, { ba, 0 }, { bb, 0 }, { bo, 0 } };
    ck_assert_msg(awq_op_add(dev, &args) == 0, "add: %s", awq_device_last_error(dev));
    ck_assert_int_eq(awq_buffer_read(bo, 0, o, n * 4), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(o[i] == a[i] + b[i], "add[%zu]: %g != %g", i, o[i], a[i] + b[i]);
    awq_buffer_destroy(ba);
    awq_buffer_destroy(bb);
    awq_buffer_destroy(bo);
    free(a);
    free(b);
    free(o);
}

START_TEST(test_devices)
{
    awq_context *ctx;
    ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
    int slot = backend_slot(ctx);
    ck_assert_int_ge(slot, 0);
    int n = awq_backend_device_count(ctx, slot);
    ck_assert_msg(n >= 1, "device count %d: %s", n, awq_context_last_error(ctx));
    int any_gpu = 0;
    for (int i = 0; i < n; i++) {
        awq_device_info in;
        ck_assert_int_eq(awq_backend_device_info(ctx, slot, i, &in), 0);
        ck_assert_str_eq(in.backend, "vulkan");
        ck_assert_int_eq(in.index, i);
        ck_assert(in.name[0] && in.vendor[0] && in.driver[0]);
        ck_assert(in.memory_bytes > 0);
        ck_assert(in.type == AWQ_DEVICE_GPU || in.type == AWQ_DEVICE_CPU || in.type == AWQ_DEVICE_OTHER);
        any_gpu |= in.type == AWQ_DEVICE_GPU;
    }
    awq_device *dev;
    ck_assert_int_eq(awq_device_open(ctx, "vulkan", -1, &dev), 0);
    awq_device_info in;
    ck_assert_int_eq(awq_device_get_info(dev, &in), 0);
    /* the preferred device is a GPU whenever there is one (lavapipe only otherwise) */
    if (any_gpu)
        ck_assert_int_eq(in.type, AWQ_DEVICE_GPU);
    awq_device_close(dev);
    ck_assert_int_eq(awq_device_open(ctx, "vulkan", n, &dev), AWQ_ERR_NO_DEVICE);
    awq_context_destroy(ctx);
}
END_TEST

/* Path of the one pipeline-cache file in dir (caller frees), NULL if none; fails on leftovers. */
static char *cache_file(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char *found = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        ck_assert_msg(strncmp(e->d_name, "vulkan-", 7) == 0 && strstr(e->d_name, ".bin") &&
                      !strstr(e->d_name, ".tmp"), "unexpected file %s in the cache directory", e->d_name);
        ck_assert_msg(!found, "two cache files");
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        found = malloc(n);
        snprintf(found, n, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return found;
}

static void check_cache_header(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint32_t h[2];
    ck_assert_int_eq(fread(h, 4, 2, f), 2);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_msg(size >= 32 && h[0] >= 32 && h[1] == 1, "cache %s: %ld bytes, header %u/%u", path,
                  size, h[0], h[1]);
}

START_TEST(test_pipeline_cache)
{
    char *dir = tu_tmpdir("vkcache");
    ck_assert_ptr_nonnull(dir);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/a/b", dir);   /* created on demand */
    setenv("AWQ_CACHE_DIR", sub, 1);
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    run_add(dev, 1000);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    char *path = cache_file(sub);
    ck_assert_msg(path != NULL, "no pipeline cache written to %s", sub);
    check_cache_header(path);

    /* corrupt caches: garbage, truncated, a foreign device's header, empty */
    for (int mode = 0; mode < 4; mode++) {
        FILE *f = fopen(path, "r+b");
        ck_assert_ptr_nonnull(f);
        unsigned char buf[64];
        size_t got = fread(buf, 1, sizeof buf, f);
        fclose(f);
        ck_assert_uint_ge(got, 32);
        if (mode == 0) {
            for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (unsigned char)tu_next(&rng);
            ck_assert_int_eq(tu_write_file(path, buf, sizeof buf), 0);
        } else if (mode == 1) {
            ck_assert_int_eq(tu_write_file(path, buf, 20), 0);
        } else if (mode == 2) {
            buf[16] ^= 0xFF;   /* pipeline-cache UUID */
            ck_assert_int_eq(tu_write_file(path, buf, sizeof buf), 0);
        } else {
            ck_assert_int_eq(tu_write_file(path, buf, 0), 0);
        }
        dev = open_vulkan(&ctx);
        run_add(dev, 333);
        awq_device_close(dev);
        awq_context_destroy(ctx);
        char *again = cache_file(sub);
        ck_assert_ptr_nonnull(again);
        check_cache_header(again);
        free(again);
    }
    free(path);
    unsetenv("AWQ_CACHE_DIR");
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_errors)
{
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    awq_device_info in;
    awq_device_get_info(dev, &in);
    /* more than the device has: a device-memory error naming the cause, no crash */
    awq_buffer *b = NULL;
    size_t huge = (size_t)(in.memory_bytes > ((uint64_t)1 << 40) ? ((uint64_t)1 << 41) : in.memory_bytes * 2);
    int st = awq_buffer_create(dev, huge, &b);
    ck_assert_msg(st == AWQ_ERR_DEVICE_MEMORY, "allocating %zu bytes: %d (%s)", huge, st,
                  awq_device_last_error(dev));
    ck_assert(strstr(awq_device_last_error(dev), "Vulkan"));
    /* an fp32 tensor at an offset that is not a multiple of 4 */
    awq_buffer *x;
    ck_assert_int_eq(awq_buffer_create(dev, 4096, &x), 0);
    struct awq_add_args a = { 16, { x, 2 }, { x, 128 }, { x, 256 } };
    ck_assert_int_eq(awq_op_add(dev, &a), AWQ_ERR_INVALID_ARGUMENT);
    /* the device still works afterwards */
    run_add(dev, 77);
    awq_buffer_destroy(x);
    awq_device_close(dev);
    awq_context_destroy(ctx);
}
END_TEST

START_TEST(test_no_driver)
{
    /* a loader that finds no driver: the backend reports why, the context stays usable */
    setenv("VK_ICD_FILENAMES", "/nonexistent/awq_no_icd.json", 1);
    setenv("VK_DRIVER_FILES", "/nonexistent/awq_no_icd.json", 1);
    awq_context *ctx;
    ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
    int slot = backend_slot(ctx);
    int n = awq_backend_device_count(ctx, slot);
    ck_assert_msg(n < 0, "found %d Vulkan devices without a driver", n);
    ck_assert_msg(strstr(awq_context_last_error(ctx), "Vulkan"), "reason: %s", awq_context_last_error(ctx));
    awq_device *dev;
    ck_assert_int_lt(awq_device_open(ctx, "vulkan", -1, &dev), 0);
    ck_assert_int_eq(awq_device_open(ctx, "cpu", 0, &dev), 0);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    unsetenv("VK_ICD_FILENAMES");
    unsetenv("VK_DRIVER_FILES");
}
END_TEST

START_TEST(test_free_while_queued)
{
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    size_t n = 1 << 20;
    float *h = malloc(n * 4), *o = malloc(n * 4);
    tu_fill_uniform(&rng, h, n, -3, 3);
    awq_buffer *ba, *bo;
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &ba), 0);
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bo), 0);
    ck_assert_int_eq(awq_buffer_write(ba, 0, h, n * 4), 0);
    for (int r = 0; r < 3; r++) {
        /* inputs destroyed right after the op is queued: the backend must keep them alive */
        awq_buffer *bb;
        ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bb), 0);
        ck_assert_int_eq(awq_buffer_write(bb, 0, h, n * 4), 0);
        struct awq_add_args a = { n, { ba, 0 }, { bb, 0 }, { bo, 0 } };
        ck_assert_int_eq(awq_op_add(dev, &a), 0);
        awq_buffer_destroy(bb);
    }
    ck_assert_int_eq(awq_buffer_read(bo, 0, o, n * 4), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert(o[i] == h[i] + h[i]);
    /* closing with queued work and live buffers: waits, frees, no crash */
    struct awq_add_args a = { n, { ba, 0 }, { ba, 0 }, { bo, 0 } };
    ck_assert_int_eq(awq_op_add(dev, &a), 0);
    awq_buffer_destroy(ba);
    awq_buffer_destroy(bo);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    free(h);
    free(o);
}
END_TEST

START_TEST(test_validation_run)
{
    /* with the validation layer (when installed) every message would fail the calls below */
    setenv("AWQ_VK_VALIDATION", "1", 1);
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    run_add(dev, 5000);
    int K = 256, N = 64, G = 128, M = 40;
    int32_t *qw = calloc((size_t)K * N / 8, 4), *qz = calloc((size_t)K / G * N / 8, 4);
    uint16_t *sc = calloc((size_t)K / G * N, 2);
    for (size_t i = 0; i < (size_t)K / G * N; i++)
        sc[i] = 0x2000;
    awq_qweight *w;
    ck_assert_int_eq(awq_qweight_create(dev, K, N, G, qw, qz, sc, &w), 0);
    awq_buffer *x, *y;
    ck_assert_int_eq(awq_buffer_create(dev, (size_t)M * K * 4, &x), 0);
    ck_assert_int_eq(awq_buffer_create(dev, (size_t)M * N * 4, &y), 0);
    ck_assert_int_eq(awq_op_zero(dev, (struct awq_tref){ x, 0 }, (size_t)M * K * 4), 0);
    awq_gemm_w4_params p = { .M = 3, .x_type = AWQ_DTYPE_F32, .x = x, .y_type = AWQ_DTYPE_F32, .y = y };
    ck_assert_msg(awq_gemm_w4(dev, w, &p) == 0, "gemm_w4 (GEMV): %s", awq_device_last_error(dev));
    p.M = M;
    p.y_type = AWQ_DTYPE_F16;
    ck_assert_msg(awq_gemm_w4(dev, w, &p) == 0, "gemm_w4 (tiled): %s", awq_device_last_error(dev));
    ck_assert_msg(awq_device_synchronize(dev) == 0, "%s", awq_device_last_error(dev));
    awq_buffer_destroy(x);
    awq_buffer_destroy(y);
    awq_qweight_destroy(w);
    free(qw);
    free(qz);
    free(sc);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    unsetenv("AWQ_VK_VALIDATION");
}
END_TEST

START_TEST(test_validation_reports)
{
    /* a deliberate misuse must come back as an error of the next call, with the layer's text */
    setenv("AWQ_VK_VALIDATION", "1", 1);
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    struct vk_dev *vd = dev->impl;
    if (vd->st->validation) {
        struct vk_buf *b;
        ck_assert_int_eq(awq_vk_buf_create(vd, 1024, 0, &b), 0);
        struct vk_arg args[3] = { { b, 0, b->alloc + 4096 }, { b, 0, 256 }, { b, 256, 256 } };
        uint32_t spec[] = { vd->tune.wg, 1 };
        uint32_t push[6] = { 0 };   /* n = 0: the shader touches nothing */
        ck_assert_int_eq(awq_vk_op_begin(vd), 0);
        awq_vk_dispatch(vd, VKS_ELTWISE, spec, 2, args, 3, push, sizeof push, 1, 1, 1);
        int st = awq_device_synchronize(dev);
        ck_assert_msg(st == AWQ_ERR_BACKEND, "synchronize after a bad descriptor: %d", st);
        ck_assert_msg(strstr(awq_device_last_error(dev), "Vulkan validation"), "%s", awq_device_last_error(dev));
        awq_vk_buf_release(vd, b);
        ck_assert_int_eq(awq_device_synchronize(dev), 0);   /* reported once */
    } else {
        printf("note: VK_LAYER_KHRONOS_validation not installed; validation reporting not exercised\n");
    }
    awq_device_close(dev);
    awq_context_destroy(ctx);
    unsetenv("AWQ_VK_VALIDATION");
}
END_TEST

int main(void)
{
    rng = tu_seed();
    awq_context *ctx;
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    int slot = backend_slot(ctx);
    int n = slot >= 0 ? awq_backend_device_count(ctx, slot) : -1;
    if (n <= 0) {
        printf("SKIP: no usable Vulkan device: %s\n", awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    awq_context_destroy(ctx);
    Suite *s = suite_create("vulkan-backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_devices);
    tcase_add_test(tc, test_pipeline_cache);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_free_while_queued);
    tcase_add_test(tc, test_validation_run);
    tcase_add_test(tc, test_validation_reports);
    tcase_add_test(tc, test_no_driver);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
