/*
 * Timing of the OpenCL backend's main kernels on the preferred OpenCL device (a diagnostic, not a
 * test: built by make check, never run by it). Reports the device's copy bandwidth, gemm_w4 at
 * M = 1 (effective bandwidth of the packed weights against the copy bandwidth) and at large M
 * (TFLOP/s, with and without the tensor-core kernels), the unquantized gemm, and decode
 * attention. Weights larger than the last-level cache are used as is; small ones are rotated
 * over several copies. Each figure is the median of 7 timings of back-to-back launches.
 *
 *   tests/test_opencl_timing [quick|smoke]     (smoke: tiny shapes, to check the program runs)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/opencl/ocl_internal.h"
#include "core/ops.h"
#include "util/half.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef int (*op_fn)(void *ctx, int i);

static int smoke;      /* tiny shapes */

/* Median seconds per call of fn over 7 rounds of `reps` calls (after one warm-up round). */
static double timeit(awq_device *dev, op_fn fn, void *ctx, int reps)
{
    double t[7];
    for (int r = -1; r < 7; r++) {
        awq_device_synchronize(dev);
        double t0 = now();
        for (int i = 0; i < reps; i++)
            if (fn(ctx, i) != 0) {
                fprintf(stderr, "op failed: %s\n", awq_device_last_error(dev));
                exit(1);
            }
        awq_device_synchronize(dev);
        if (r >= 0)
            t[r] = (now() - t0) / reps;
    }
    qsort(t, 7, sizeof t[0], cmp);
    return t[3];
}

static awq_buffer *buf(awq_device *d, size_t bytes)
{
    awq_buffer *b;
    if (awq_buffer_create(d, bytes, &b) != 0) {
        fprintf(stderr, "alloc %zu: %s\n", bytes, awq_device_last_error(d));
        exit(1);
    }
    void *junk = calloc(1, bytes);
    for (size_t i = 0; i < bytes / 2; i++)
        ((uint16_t *)junk)[i] = awq_f32_to_f16(((float)(i % 97) - 48.0f) / 97.0f);
    awq_buffer_write(b, 0, junk, bytes);
    free(junk);
    return b;
}

/* ---- ops under test ----------------------------------------------------------------------------- */

struct copy_ctx {
    awq_device *d;
    awq_buffer *a, *b;
    size_t n;
};

static int do_copy(void *p, int i)
{
    struct copy_ctx *c = p;
    struct awq_tref s = { c->a, 0 }, t = { c->b, 0 };
    return awq_op_copy(c->d, s, t, c->n);
}

#define COPIES 8
struct w4_ctx {
    awq_device *d;
    struct awq_qweight *w[COPIES];
    int n_w, M;
    awq_buffer *x, *y;
};

static int do_w4(void *p, int i)
{
    struct w4_ctx *c = p;
    struct awq_gemm_w4_args a = { .w = c->w[i % c->n_w], .M = c->M, .x_type = AWQ_DTYPE_F16,
                                  .y_type = AWQ_DTYPE_F16, .x = { c->x, 0 }, .y = { c->y, 0 } };
    return awq_op_gemm_w4(c->d, &a);
}

struct f_ctx {
    awq_device *d;
    awq_buffer *w[COPIES];
    int n_w, M, N, K;
    awq_buffer *x, *y;
};

static int do_f(void *p, int i)
{
    struct f_ctx *c = p;
    struct awq_gemm_args a = { .M = c->M, .N = c->N, .K = c->K, .x_type = AWQ_DTYPE_F16,
                               .w_type = AWQ_DTYPE_F16, .y_type = AWQ_DTYPE_F16,
                               .x = { c->x, 0 }, .w = { c->w[i % c->n_w], 0 }, .y = { c->y, 0 } };
    return awq_op_gemm(c->d, &a);
}

struct att_ctx {
    awq_device *d;
    struct awq_attention_args a;
};

static int do_att(void *p, int i)
{
    struct att_ctx *c = p;
    return awq_op_attention(c->d, &c->a);
}

/* ---- benchmarks ---------------------------------------------------------------------------------- */

static double copy_bw(awq_device *d)
{
    struct copy_ctx c = { d, NULL, NULL, (size_t)(smoke ? 16 : 256) << 20 };
    c.a = buf(d, c.n);
    c.b = buf(d, c.n);
    double t = timeit(d, do_copy, &c, 10);
    awq_buffer_destroy(c.a);
    awq_buffer_destroy(c.b);
    return 2.0 * (double)c.n / t;       /* read + write */
}

static void bench_w4(awq_device *d, int M, int K, int N, double copy)
{
    int G = 128, nw = (K * (N / 2) > (64 << 20)) ? 1 : COPIES;
    struct w4_ctx c = { d, { NULL }, nw, M, NULL, NULL };
    int32_t *qw = malloc((size_t)K * N / 2), *qz = malloc((size_t)K / G * N / 2);
    uint16_t *sc = malloc((size_t)K / G * N * 2);
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)K * N / 8; i++)
        qw[i] = (int32_t)(s = s * 1664525u + 1013904223u);
    for (size_t i = 0; i < (size_t)K / G * N / 8; i++)
        qz[i] = (int32_t)(s = s * 1664525u + 1013904223u);
    for (size_t i = 0; i < (size_t)K / G * N; i++)
        sc[i] = awq_f32_to_f16(0.01f);
    struct awq_w4_host h = { K, N, G, qw, qz, sc };
    for (int i = 0; i < nw; i++)
        if (awq_op_w4_create(d, &h, &c.w[i]) != 0) {
            fprintf(stderr, "w4_create: %s\n", awq_device_last_error(d));
            exit(1);
        }
    free(qw);
    free(qz);
    free(sc);
    c.x = buf(d, (size_t)M * K * 2);
    c.y = buf(d, (size_t)M * N * 2);
    double t = timeit(d, do_w4, &c, M == 1 ? 50 : 5);
    double bytes = (double)K * N / 2 + (double)K / G * N * 2.5;   /* AWQ format: codes, scales, zeros */
    printf("gemm_w4 M=%-5d K=%-5d N=%-5d : %9.1f us  %7.1f GB/s (%4.1f%% of copy)  %7.2f TFLOP/s\n", M,
           K, N, t * 1e6, bytes / t / 1e9, 100.0 * bytes / t / copy, 2.0 * M * K * N / t / 1e12);
    for (int i = 0; i < nw; i++)
        awq_qweight_destroy(c.w[i]);
    awq_buffer_destroy(c.x);
    awq_buffer_destroy(c.y);
}

static void bench_f(awq_device *d, int M, int K, int N, double copy)
{
    int nw = ((size_t)K * N * 2 > ((size_t)64 << 20)) ? 1 : COPIES;
    struct f_ctx c = { d, { NULL }, nw, M, N, K, NULL, NULL };
    for (int i = 0; i < nw; i++)
        c.w[i] = buf(d, (size_t)N * K * 2);
    c.x = buf(d, (size_t)M * K * 2);
    c.y = buf(d, (size_t)M * N * 2);
    double t = timeit(d, do_f, &c, M == 1 ? 50 : 5);
    double bytes = (double)K * N * 2;
    printf("gemm f16 M=%-5d K=%-5d N=%-5d: %9.1f us  %7.1f GB/s (%4.1f%% of copy)  %7.2f TFLOP/s\n", M,
           K, N, t * 1e6, bytes / t / 1e9, 100.0 * bytes / t / copy, 2.0 * M * K * N / t / 1e12);
    for (int i = 0; i < nw; i++)
        awq_buffer_destroy(c.w[i]);
    awq_buffer_destroy(c.x);
    awq_buffer_destroy(c.y);
}

static void bench_att(awq_device *d, int n_seq, int q_len, int kv_len, int H, int KH, int hd)
{
    size_t qn = (size_t)n_seq * q_len * H * hd, kn = (size_t)n_seq * kv_len * KH * hd;
    struct att_ctx c = { d, { n_seq, q_len, kv_len, H, KH, hd, 0.088f, { NULL, 0 }, { NULL, 0 },
                              { NULL, 0 }, { NULL, 0 } } };
    c.a.q.buf = buf(d, qn * 4);
    c.a.k.buf = buf(d, kn * 4);
    c.a.v.buf = buf(d, kn * 4);
    c.a.out.buf = buf(d, qn * 4);
    double t = timeit(d, do_att, &c, q_len == 1 ? 50 : 3);
    double kv_bytes = 2.0 * (double)kn * 4;
    printf("attention seq=%d q=%d kv=%d heads=%d/%d hd=%d: %9.1f us  (K/V read %7.1f GB/s)\n", n_seq,
           q_len, kv_len, H, KH, hd, t * 1e6, kv_bytes / t / 1e9);
    awq_buffer_destroy(c.a.q.buf);
    awq_buffer_destroy(c.a.k.buf);
    awq_buffer_destroy(c.a.v.buf);
    awq_buffer_destroy(c.a.out.buf);
}

static void run(const char *params, int quick)
{
    if (params)
        setenv("AWQ_OPENCL_PARAMS", params, 1);
    else
        unsetenv("AWQ_OPENCL_PARAMS");
    awq_context *ctx;
    awq_device *d;
    if (awq_context_create(NULL, &ctx) != 0 || awq_device_open(ctx, "opencl", -1, &d) != 0) {
        printf("no OpenCL device: %s\n", awq_context_last_error(ctx));
        exit(77);
    }
    const struct ocl_dev *o = d->impl;
    printf("== %s: row %s%s%s; tensor cores: %s\n", o->desc.name, o->p.row, params ? ", " : "",
           params ? params : "", o->mma_status);
    double copy = copy_bw(d);
    printf("copy bandwidth (read + write): %.1f GB/s\n", copy / 1e9);
    static const int big[][2] = { { 4096, 4096 }, { 4096, 11008 }, { 11008, 4096 }, { 8192, 28672 } };
    static const int small[][2] = { { 256, 512 }, { 512, 256 }, { 256, 256 }, { 128, 384 } };
    const int(*shapes)[2] = smoke ? small : big;
    static const int Ms[] = { 1, 8, 32, 256, 4096 };
    if (smoke)
        quick = 1;
    for (size_t s = 0; s < 4; s++)
        for (size_t m = 0; m < 5; m++) {
            if (quick && Ms[m] > 256)
                continue;
            bench_w4(d, Ms[m], shapes[s][0], shapes[s][1], copy);
        }
    for (size_t s = 0; s < 4; s++) {
        bench_f(d, 1, shapes[s][0], shapes[s][1], copy);
        if (!quick)
            bench_f(d, 4096, shapes[s][0], shapes[s][1], copy);
    }
    bench_att(d, 1, 1, smoke ? 256 : 4096, 32, 32, 128);
    bench_att(d, 1, 1, smoke ? 256 : 4096, 64, 8, 128);
    if (!quick)
        bench_att(d, 16, 512, 512, 32, 32, 128);
    awq_device_close(d);
    awq_context_destroy(ctx);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    smoke = argc > 1 && strcmp(argv[1], "smoke") == 0;
    run(NULL, quick);
    run("mma=0", quick);    /* the fp32 tile kernels, for comparison */
    return 0;
}
