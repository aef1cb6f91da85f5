/*
 * Tensors larger than one Vulkan storage-buffer binding (maxStorageBufferRange: 128 MiB on
 * lavapipe): every op that can meet one must bind windows and split its dispatches. Each case
 * runs at the device's real limit against the CPU backend, with shapes whose arithmetic stays
 * small enough for a CPU implementation of Vulkan: weights, activations, outputs, embedding
 * tables, logits and a KV cache beyond the range. AWQ_VK_HUGE=1 adds the full-size gemm_w4 of
 * a Llama-2-70B MLP (K x N = 8192 x 28672, M = 4096: 470 MB of fp32 output; minutes on lavapipe).
 * Exits 77 (skip) when there is no Vulkan device.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

static awq_context *ctx;
static awq_device *dev[2];   /* 0 = CPU reference, 1 = Vulkan */
static uint64_t rng;

static awq_buffer *alloc_on(int s, size_t bytes)
{
    awq_buffer *b;
    int st = awq_buffer_create(dev[s], bytes, &b);
    ck_assert_msg(st == 0, "alloc %zu bytes on %s: %s", bytes, s ? "vulkan" : "cpu",
                  awq_device_last_error(dev[s]));
    return b;
}

/* The same host data on both devices. */
static void upload(awq_buffer *b[2], const void *src, size_t bytes)
{
    for (int s = 0; s < 2; s++) {
        b[s] = alloc_on(s, bytes);
        ck_assert_int_eq(awq_buffer_write(b[s], 0, src, bytes), 0);
    }
}

static void outputs(awq_buffer *b[2], size_t bytes)
{
    unsigned char *junk = malloc(bytes);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 0xFF, bytes);   /* NaN: unwritten outputs show */
    upload(b, junk, bytes);
    free(junk);
}

static float *random_f32(size_t n, float lo, float hi)
{
    float *h = malloc(n * sizeof *h);
    ck_assert_ptr_nonnull(h);
    tu_fill_uniform(&rng, h, n, lo, hi);
    return h;
}

static void release(awq_buffer *b[2])
{
    awq_buffer_destroy(b[0]);
    awq_buffer_destroy(b[1]);
}

/* Compares n fp32 values at byte offset off of both copies. */
static void expect_close(const char *what, awq_buffer *b[2], size_t off, size_t n, double max_nmse)
{
    float *v[2] = { malloc(n * 4), malloc(n * 4) };
    ck_assert(v[0] && v[1]);
    for (int s = 0; s < 2; s++)
        ck_assert_msg(awq_buffer_read(b[s], off, v[s], n * 4) == 0, "read: %s", awq_device_last_error(dev[s]));
    size_t bad = tu_count_nonfinite(v[1], n);
    double e = tu_nmse(v[1], v[0], n);
    ck_assert_msg(tu_count_nonfinite(v[0], n) == 0, "%s: reference not finite", what);
    ck_assert_msg(bad == 0 && e <= max_nmse, "%s: nmse %.3g (limit %.3g), %zu non-finite", what, e,
                  max_nmse, bad);
    free(v[0]);
    free(v[1]);
}

#define RUN(op, ...)                                                                            \
    for (int side = 0; side < 2; side++) {                                                     \
        struct awq_##op##_args args_ = { __VA_ARGS__ };                                        \
        int st_ = awq_op_##op(dev[side], &args_);                                              \
        ck_assert_msg(st_ == 0, #op " on %s: %s", side ? "vulkan" : "cpu",                      \
                      awq_device_last_error(dev[side]));                                       \
    }

#define REF(b) ((struct awq_tref){ (b)[side], 0 })

/* ---- elementwise and reductions ------------------------------------------------------------- */

START_TEST(test_add_sq_err)
{
    size_t n = (size_t)36 << 20;   /* 144 MiB per operand */
    float *h = random_f32(n, -1, 1);
    awq_buffer *a[2], *b[2], *o[2], *e[2];
    upload(a, h, n * 4);
    tu_fill_uniform(&rng, h, n, -1, 1);
    upload(b, h, n * 4);
    free(h);
    outputs(o, n * 4);
    outputs(e, 4);
    RUN(add, .n = n, .a = REF(a), .b = REF(b), .out = REF(o));
    expect_close("add", o, 0, 1 << 20, 0.0);
    expect_close("add (tail)", o, (n - (1 << 20)) * 4, 1 << 20, 0.0);
    RUN(sq_err, .n = n, .a = REF(o), .b = REF(b), .out = REF(e));
    expect_close("sq_err", e, 0, 1, 1e-10);
    release(a);
    release(b);
    release(o);
    release(e);
}
END_TEST

START_TEST(test_act_stats_rmsnorm)
{
    int T = 33000, C = 1100;   /* 145 MB */
    size_t n = (size_t)T * C;
    float *h = random_f32(n, -3, 3);
    awq_buffer *x[2], *sa[2], *ma[2], *sq[2], *w[2], *y[2];
    upload(x, h, n * 4);
    free(h);
    float *wh = random_f32((size_t)C, 0.5f, 2);
    upload(w, wh, (size_t)C * 4);
    free(wh);
    for (int s = 0; s < 2; s++) {
        sa[s] = alloc_on(s, (size_t)C * 4);
        ma[s] = alloc_on(s, (size_t)C * 4);
        sq[s] = alloc_on(s, (size_t)C * 4);
        ck_assert_int_eq(awq_op_zero(dev[s], (struct awq_tref){ sa[s], 0 }, (size_t)C * 4), 0);
        ck_assert_int_eq(awq_op_zero(dev[s], (struct awq_tref){ ma[s], 0 }, (size_t)C * 4), 0);
        ck_assert_int_eq(awq_op_zero(dev[s], (struct awq_tref){ sq[s], 0 }, (size_t)C * 4), 0);
    }
    RUN(act_stats, .T = T, .C = C, .x_type = AWQ_DTYPE_F32, .x = REF(x), .sum_abs = REF(sa),
        .max_abs = REF(ma), .sum_sq = REF(sq));
    expect_close("act_stats sum|x|", sa, 0, (size_t)C, 1e-10);
    expect_close("act_stats max|x|", ma, 0, (size_t)C, 0.0);
    expect_close("act_stats sum x^2", sq, 0, (size_t)C, 1e-10);
    outputs(y, n * 4);
    RUN(rmsnorm, .T = T, .C = C, .eps = 1e-5f, .x = REF(x), .w = REF(w), .y = REF(y));
    expect_close("rmsnorm (tail)", y, (n - (1 << 20)) * 4, 1 << 20, 1e-10);
    release(x);
    release(sa);
    release(ma);
    release(sq);
    release(w);
    release(y);
}
END_TEST

/* ---- embedding table and logits beyond the range ------------------------------------------------ */

START_TEST(test_embed_cross_entropy)
{
    int V = 32000, C = 1100, T = 64;   /* table and logits: 141 MB */
    size_t n = (size_t)V * C;
    float *h = random_f32(n, -1, 1);
    awq_buffer *tab[2], *ids[2], *out[2], *tg[2], *nll[2];
    upload(tab, h, n * 4);
    int32_t id[64];
    for (int t = 0; t < T; t++)
        id[t] = (int32_t)(tu_next(&rng) % (uint64_t)V);
    id[0] = V - 1;   /* the last row, in the last window */
    id[1] = -5;
    upload(ids, id, sizeof id);
    outputs(out, (size_t)T * C * 4);
    RUN(embed, .T = T, .C = C, .vocab = V, .table_type = AWQ_DTYPE_F32, .table = REF(tab), .ids = REF(ids),
        .out = REF(out));
    expect_close("embed", out, 0, (size_t)T * C, 0.0);
    /* the same bytes as logits [C, V] */
    int TL = C;
    int32_t *targets = malloc((size_t)TL * 4);
    for (int t = 0; t < TL; t++)
        targets[t] = (int32_t)(tu_next(&rng) % (uint64_t)V);
    upload(tg, targets, (size_t)TL * 4);
    outputs(nll, (size_t)TL * 4);
    RUN(cross_entropy, .T = TL, .V = V, .logits = REF(tab), .targets = REF(tg), .nll = REF(nll));
    expect_close("cross_entropy", nll, 0, (size_t)TL, 1e-10);
    free(h);
    free(targets);
    release(tab);
    release(ids);
    release(out);
    release(tg);
    release(nll);
}
END_TEST

/* ---- attention over a KV cache beyond the range ---------------------------------------------- */

START_TEST(test_attention_long_kv)
{
    int ql = 2, kl = 33000, H = 16, KH = 8, hd = 128;   /* K, V: 135 MB each */
    size_t qn = (size_t)ql * H * hd, kn = (size_t)kl * KH * hd;
    float *h = random_f32(kn, -2, 2);
    awq_buffer *q[2], *k[2], *v[2], *o[2];
    upload(k, h, kn * 4);
    tu_fill_uniform(&rng, h, kn, -1, 1);
    upload(v, h, kn * 4);
    tu_fill_uniform(&rng, h, qn, -2, 2);
    upload(q, h, qn * 4);
    free(h);
    outputs(o, qn * 4);
    RUN(attention, .n_seq = 1, .q_len = ql, .kv_len = kl, .n_heads = H, .n_kv_heads = KH, .head_dim = hd,
        .scale = 1.0f / sqrtf((float)hd), .q = REF(q), .k = REF(k), .v = REF(v), .out = REF(o));
    expect_close("attention", o, 0, qn, 1e-8);
    release(q);
    release(k);
    release(v);
    release(o);
}
END_TEST

/* ---- gemm_w4 ------------------------------------------------------------------------------------------ */

static void w4_case(int M, int K, int N, int G, int bias, int rows_checked)
{
    size_t nq = (size_t)K * N / 8, nz = (size_t)K / G * N / 8, ns = (size_t)K / G * N;
    int32_t *qw = malloc(nq * 4), *qz = malloc(nz * 4);
    uint16_t *sc = malloc(ns * 2);
    ck_assert(qw && qz && sc);
    for (size_t i = 0; i < nq; i++)
        qw[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < nz; i++)
        qz[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < ns; i++)
        sc[i] = (uint16_t)(0x1C00 + tu_next(&rng) % 0x400);   /* fp16 in [0.0039, 0.0078) */
    awq_qweight *w[2];
    for (int s = 0; s < 2; s++)
        ck_assert_msg(awq_qweight_create(dev[s], K, N, G, qw, qz, sc, &w[s]) == 0, "w4: %s",
                      awq_device_last_error(dev[s]));
    free(qw);
    free(qz);
    free(sc);
    /* the device computes every row; the reference a sample of them, the last one included */
    int rows = rows_checked < M ? rows_checked : M;
    int *pick = malloc((size_t)rows * sizeof *pick);
    for (int r = 0; r < rows; r++)
        pick[r] = rows == M ? r : (int)((long long)r * (M - 1) / (rows - 1));
    size_t xn = (size_t)M * K;
    float *x = random_f32(xn, -1, 1);
    awq_buffer *xb[2], *yb[2], *bb[2] = { NULL, NULL };
    xb[1] = alloc_on(1, xn * 4);
    ck_assert_int_eq(awq_buffer_write(xb[1], 0, x, xn * 4), 0);
    xb[0] = alloc_on(0, (size_t)rows * K * 4);
    for (int r = 0; r < rows; r++)
        ck_assert_int_eq(awq_buffer_write(xb[0], (size_t)r * K * 4, x + (size_t)pick[r] * K, (size_t)K * 4), 0);
    free(x);
    yb[0] = alloc_on(0, (size_t)rows * N * 4);
    yb[1] = alloc_on(1, (size_t)M * N * 4);
    if (bias) {
        float *bh = random_f32((size_t)N, -0.5f, 0.5f);
        upload(bb, bh, (size_t)N * 4);
        free(bh);
    }
    for (int s = 0; s < 2; s++) {
        awq_gemm_w4_params p = { .M = s ? M : rows, .x_type = AWQ_DTYPE_F32, .x = xb[s],
                                 .y_type = AWQ_DTYPE_F32, .y = yb[s], .bias = bb[s] };
        int st = awq_gemm_w4(dev[s], w[s], &p);
        ck_assert_msg(st == 0, "gemm_w4 M=%d K=%d N=%d on %s: %s", M, K, N, s ? "vulkan" : "cpu",
                      awq_device_last_error(dev[s]));
    }
    float *ref = malloc((size_t)rows * N * 4), *got = malloc((size_t)rows * N * 4);
    ck_assert(ref && got);
    ck_assert_int_eq(awq_buffer_read(yb[0], 0, ref, (size_t)rows * N * 4), 0);
    for (int r = 0; r < rows; r++)
        ck_assert_int_eq(awq_buffer_read(yb[1], (size_t)pick[r] * N * 4, got + (size_t)r * N, (size_t)N * 4), 0);
    double e = tu_nmse(got, ref, (size_t)rows * N);
    size_t bad = tu_count_nonfinite(got, (size_t)rows * N);
    ck_assert_msg(bad == 0 && e <= 2e-5, "gemm_w4 M=%d K=%d N=%d: nmse %.3g, %zu non-finite", M, K, N, e, bad);
    free(ref);
    free(got);
    free(pick);
    release(xb);
    release(yb);
    if (bias)
        release(bb);
    awq_qweight_destroy(w[0]);
    awq_qweight_destroy(w[1]);
}

START_TEST(test_w4_big_weight)
{
    w4_case(2, 16384, 17408, 128, 1, 2);   /* packed weight 142 MB: GEMV over column chunks */
}
END_TEST

START_TEST(test_w4_big_x)
{
    w4_case(4160, 8192, 16, 128, 0, 17);   /* X 136 MB: tiled kernel over row chunks */
}
END_TEST

START_TEST(test_w4_big_y)
{
    w4_case(4160, 32, 8192, 32, 1, 17);    /* Y 136 MB */
}
END_TEST

START_TEST(test_w4_huge)
{
    const char *e = getenv("AWQ_VK_HUGE");
    if (!e || !*e || strcmp(e, "0") == 0)
        return;
    w4_case(4096, 8192, 28672, 128, 1, 9);
}
END_TEST

int main(void)
{
    rng = tu_seed();
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    if (awq_device_open(ctx, "vulkan", -1, &dev[1]) != 0) {
        printf("SKIP: no usable Vulkan device: %s\n", awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    if (awq_device_open(ctx, "cpu", 0, &dev[0]) != 0)
        return 99;
    Suite *s = suite_create("vulkan-large");
    TCase *tc = tcase_create("beyond-one-binding");
    tcase_set_timeout(tc, 3600);
    tcase_add_test(tc, test_add_sq_err);
    tcase_add_test(tc, test_act_stats_rmsnorm);
    tcase_add_test(tc, test_embed_cross_entropy);
    tcase_add_test(tc, test_attention_long_kv);
    tcase_add_test(tc, test_w4_big_weight);
    tcase_add_test(tc, test_w4_big_x);
    tcase_add_test(tc, test_w4_big_y);
    tcase_add_test(tc, test_w4_huge);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    awq_device_close(dev[1]);
    awq_device_close(dev[0]);
    awq_context_destroy(ctx);
    return failed ? 1 : 0;
}
