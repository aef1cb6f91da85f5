/*
 * Shapes the parity suite does not reach, checked on the OpenCL backend against the CPU backend:
 * reduction and matrix widths that are not multiples of 4 (the vector loads' scalar tails),
 * tensors at non-zero offsets, the GEMV / tiled boundary of gemm_w4, head sizes that are odd or
 * not a power of two, prefill with a KV cache, group sizes outside 32/64/128, sq_err over many
 * partial sums. Outputs are poisoned (NaN) first.
 *
 * Runs without fork (PoCL, CI-NOTES item 9); exits 77 without an OpenCL device.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "testutil.h"
#include "util/half.h"

static awq_context *ctx;
static awq_device *dev[2];    /* 0: CPU reference, 1: OpenCL */
static uint64_t rng;

/* Both copies of a tensor; `pad` leading elements put it at a non-zero offset. */
struct t2 {
    awq_buffer *b[2];
    size_t n, pad, es;
};

static struct t2 mk(size_t n, size_t pad, awq_dtype t, float lo, float hi)
{
    struct t2 x = { { NULL, NULL }, n, pad, awq_dtype_size(t) };
    size_t bytes = (n + pad) * x.es;
    unsigned char *h = malloc(bytes);
    float *f = malloc((n + pad) * sizeof(float));
    ck_assert(h && f);
    tu_fill_uniform(&rng, f, n + pad, lo, hi);
    if (t == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(f, (uint16_t *)h, n + pad);
    else
        memcpy(h, f, bytes);
    for (int s = 0; s < 2; s++) {
        ck_assert_int_eq(awq_buffer_create(dev[s], bytes, &x.b[s]), 0);
        ck_assert_int_eq(awq_buffer_write(x.b[s], 0, h, bytes), 0);
    }
    free(h);
    free(f);
    return x;
}

static struct t2 mk_out(size_t n, size_t pad, awq_dtype t)
{
    struct t2 x = mk(n, pad, t, 0, 1);
    size_t bytes = (n + pad) * x.es;
    unsigned char *junk = malloc(bytes);
    memset(junk, 0xFF, bytes);
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(awq_buffer_write(x.b[s], 0, junk, bytes), 0);
    free(junk);
    return x;
}

static struct awq_tref at(const struct t2 *x, int s)
{
    struct awq_tref r = { x ? x->b[s] : NULL, x ? x->pad * x->es : 0 };
    return r;
}

static void drop(struct t2 *x)
{
    awq_buffer_destroy(x->b[0]);
    awq_buffer_destroy(x->b[1]);
}

static void check(const char *what, const struct t2 *x, awq_dtype t, double tol)
{
    size_t n = x->n, es = x->es;
    unsigned char *raw = malloc(n * es);
    float *v[2] = { malloc(n * 4), malloc(n * 4) };
    for (int s = 0; s < 2; s++) {
        ck_assert_int_eq(awq_buffer_read(x->b[s], x->pad * es, raw, n * es), 0);
        if (t == AWQ_DTYPE_F16)
            awq_f16_to_f32_n((uint16_t *)raw, v[s], n);
        else
            memcpy(v[s], raw, n * 4);
    }
    size_t bad = tu_count_nonfinite(v[1], n);
    double e = tu_nmse(v[1], v[0], n);
    ck_assert_msg(bad == 0 && e <= tol, "%s: nmse %.3g (limit %.3g), %zu non-finite", what, e, tol, bad);
    free(raw);
    free(v[0]);
    free(v[1]);
}

#define BOTH(op, ...)                                                                              \
    for (int s = 0; s < 2; s++) {                                                                \
        struct awq_##op##_args args_ = { __VA_ARGS__ };                                          \
        int st_ = awq_op_##op(dev[s], &args_);                                                   \
        ck_assert_msg(st_ == 0, #op " on %s: %s", s ? "opencl" : "cpu",                          \
                      awq_device_last_error(dev[s]));                                           \
    }

START_TEST(test_act_stats_tails)
{
    static const int cs[][2] = { { 37, 13 }, { 5, 1031 }, { 300, 7 }, { 1, 1 } };
    for (size_t i = 0; i < 4; i++)
        for (int f = 0; f < 2; f++) {
            awq_dtype t = f ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            int T = cs[i][0], C = cs[i][1];
            struct t2 x = mk((size_t)T * C, 3, t, -4, 4);
            struct t2 sa = mk(C, 1, AWQ_DTYPE_F32, 0, 1), ma = mk(C, 2, AWQ_DTYPE_F32, 0, 1);
            struct t2 sq = mk(C, 0, AWQ_DTYPE_F32, 0, 1);
            BOTH(act_stats, .T = T, .C = C, .x_type = t, .x = at(&x, s), .sum_abs = at(&sa, s),
                 .max_abs = at(&ma, s), .sum_sq = at(&sq, s));
            check("act_stats sum", &sa, AWQ_DTYPE_F32, 1e-10);
            check("act_stats max", &ma, AWQ_DTYPE_F32, 0);
            check("act_stats sq", &sq, AWQ_DTYPE_F32, 1e-10);
            drop(&x);
            drop(&sa);
            drop(&ma);
            drop(&sq);
        }
}
END_TEST

START_TEST(test_gemm_tails_offsets)
{
    static const int cs[][3] = { { 1, 5, 7 }, { 3, 9, 13 }, { 4, 33, 1 }, { 70, 33, 45 },
                                 { 130, 129, 35 }, { 6, 300, 2 } };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int ty = 0; ty < 8; ty++) {
            int M = cs[i][0], N = cs[i][1], K = cs[i][2];
            awq_dtype xt = ty & 1 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            awq_dtype wt = ty & 2 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            awq_dtype yt = ty & 4 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            struct t2 x = mk((size_t)M * K, 1, xt, -1, 1), w = mk((size_t)N * K, 3, wt, -0.2f, 0.2f);
            struct t2 b = mk(N, 5, AWQ_DTYPE_F32, -1, 1), y = mk_out((size_t)M * N, 7, yt);
            BOTH(gemm, .M = M, .N = N, .K = K, .x_type = xt, .w_type = wt, .y_type = yt,
                 .x = at(&x, s), .w = at(&w, s), .y = at(&y, s), .bias = at(ty % 3 ? &b : NULL, s));
            char what[64];
            snprintf(what, sizeof what, "gemm %dx%dx%d types %d", M, N, K, ty);
            check(what, &y, yt, 2e-5);
            drop(&x);
            drop(&w);
            drop(&b);
            drop(&y);
        }
}
END_TEST

START_TEST(test_gemm_w4_boundaries)
{
    /* M around the GEMV/tiled switch, and tensors at offsets */
    static const int Ms[] = { 2, 7, 8, 9, 31, 32, 33, 129 };
    const int K = 256, N = 40, G = 64;
    int32_t *qw = malloc((size_t)K * N / 2), *qz = malloc((size_t)K / G * N / 2);
    uint16_t *sc = malloc((size_t)K / G * N * 2);
    for (size_t i = 0; i < (size_t)K * N / 8; i++)
        qw[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < (size_t)K / G * N / 8; i++)
        qz[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < (size_t)K / G * N; i++)
        sc[i] = awq_f32_to_f16(tu_uniform(&rng, 0.002f, 0.03f));
    struct awq_w4_host h = { K, N, G, qw, qz, sc };
    struct awq_qweight *w[2];
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(awq_op_w4_create(dev[s], &h, &w[s]), 0);
    for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++) {
        int M = Ms[i];
        awq_dtype xt = i % 2 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32, yt = i % 3 ? AWQ_DTYPE_F32 : AWQ_DTYPE_F16;
        struct t2 x = mk((size_t)M * K, 2, xt, -1, 1), y = mk_out((size_t)M * N, 6, yt);
        struct t2 b = mk(N, 1, AWQ_DTYPE_F32, -1, 1), as = mk(K, 3, AWQ_DTYPE_F32, 0.5f, 2);
        BOTH(gemm_w4, .w = w[s], .M = M, .x_type = xt, .y_type = yt, .x = at(&x, s), .y = at(&y, s),
             .bias = at(&b, s), .act_scale = at(&as, s));
        char what[48];
        snprintf(what, sizeof what, "gemm_w4 M=%d", M);
        check(what, &y, yt, 2e-5);
        drop(&x);
        drop(&y);
        drop(&b);
        drop(&as);
    }
    for (int s = 0; s < 2; s++)
        awq_qweight_destroy(w[s]);
    free(qw);
    free(qz);
    free(sc);
}
END_TEST

START_TEST(test_attention_shapes)
{
    static const int cs[][6] = { /* n_seq, q_len, kv_len, heads, kv_heads, hd */
        { 1, 5, 12, 4, 1, 7 }, { 2, 3, 3, 2, 2, 1 }, { 1, 1, 300, 8, 2, 80 }, { 3, 9, 40, 6, 3, 96 },
        { 1, 70, 70, 1, 1, 256 } };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int ns = cs[i][0], ql = cs[i][1], kl = cs[i][2], H = cs[i][3], KH = cs[i][4], hd = cs[i][5];
        size_t qn = (size_t)ns * ql * H * hd, kn = (size_t)ns * kl * KH * hd;
        struct t2 q = mk(qn, 1, AWQ_DTYPE_F32, -2, 2), k = mk(kn, 2, AWQ_DTYPE_F32, -2, 2);
        struct t2 v = mk(kn, 3, AWQ_DTYPE_F32, -1, 1), o = mk_out(qn, 4, AWQ_DTYPE_F32);
        BOTH(attention, .n_seq = ns, .q_len = ql, .kv_len = kl, .n_heads = H, .n_kv_heads = KH,
             .head_dim = hd, .scale = 1.0f / sqrtf((float)hd), .q = at(&q, s), .k = at(&k, s),
             .v = at(&v, s), .out = at(&o, s));
        char what[64];
        snprintf(what, sizeof what, "attention case %zu (hd %d)", i, hd);
        check(what, &o, AWQ_DTYPE_F32, 1e-8);
        drop(&q);
        drop(&k);
        drop(&v);
        drop(&o);
    }
}
END_TEST

START_TEST(test_search_ops_odd)
{
    /* pseudo_quant with group sizes outside 32/64/128, at offsets */
    static const int pq[][3] = { { 3, 48, 16 }, { 5, 100, 100 }, { 2, 24, 3 } };
    for (size_t i = 0; i < 3; i++) {
        int N = pq[i][0], K = pq[i][1], G = pq[i][2];
        struct t2 w = mk((size_t)N * K, 1, AWQ_DTYPE_F32, -0.3f, 0.3f), sc = mk(K, 2, AWQ_DTYPE_F32, 0.2f, 4);
        struct t2 o = mk_out((size_t)N * K, 3, AWQ_DTYPE_F32);
        BOTH(pseudo_quant, .N = N, .K = K, .G = G, .w = at(&w, s), .in_scale = at(&sc, s), .out = at(&o, s));
        check("pseudo_quant", &o, AWQ_DTYPE_F32, 1e-7);
        drop(&w);
        drop(&sc);
        drop(&o);
    }
    /* clip_search with one token and an odd channel count */
    {
        int N = 37, K = 96, G = 32, T = 1, ns = 3;
        struct t2 w = mk((size_t)N * K, 0, AWQ_DTYPE_F32, -0.2f, 0.2f), x = mk((size_t)T * K, 1, AWQ_DTYPE_F32, -2, 2);
        struct t2 e = mk_out((size_t)ns * N * (K / G), 2, AWQ_DTYPE_F32);
        for (int s = 0; s < 2; s++) {
            struct awq_clip_search_args a = { .N = N, .K = K, .G = G, .T = T, .n_shrink = ns,
                                              .w = at(&w, s), .x = at(&x, s), .err = at(&e, s),
                                              .shrink = { 1.0f, 0.8f, 0.55f } };
            ck_assert_int_eq(awq_op_clip_search(dev[s], &a), 0);
        }
        check("clip_search", &e, AWQ_DTYPE_F32, 1e-6);
        drop(&w);
        drop(&x);
        drop(&e);
    }
    /* sq_err over many partial sums, at offsets */
    static const size_t ns[] = { 3000007, 65537, 2 };
    for (size_t i = 0; i < 3; i++) {
        struct t2 a = mk(ns[i], 1, AWQ_DTYPE_F32, -1, 1), b = mk(ns[i], 2, AWQ_DTYPE_F32, -1, 1);
        struct t2 o = mk_out(1, 3, AWQ_DTYPE_F32);
        BOTH(sq_err, .n = ns[i], .a = at(&a, s), .b = at(&b, s), .out = at(&o, s));
        check("sq_err", &o, AWQ_DTYPE_F32, 1e-10);
        drop(&a);
        drop(&b);
        drop(&o);
    }
    /* embed (fp16 table at an offset), rmsnorm and cross_entropy with odd widths */
    {
        int T = 6, C = 13, V = 11;
        struct t2 tab = mk((size_t)V * C, 5, AWQ_DTYPE_F16, -1, 1), out = mk_out((size_t)T * C, 1, AWQ_DTYPE_F32);
        int32_t ids[6] = { 0, 10, 3, -5, 11, 7 };
        awq_buffer *ib[2];
        for (int s = 0; s < 2; s++) {
            ck_assert_int_eq(awq_buffer_create(dev[s], sizeof ids + 4, &ib[s]), 0);
            ck_assert_int_eq(awq_buffer_write(ib[s], 4, ids, sizeof ids), 0);
        }
        for (int s = 0; s < 2; s++) {
            struct awq_embed_args a = { T, C, V, AWQ_DTYPE_F16, at(&tab, s), { ib[s], 4 }, at(&out, s) };
            ck_assert_int_eq(awq_op_embed(dev[s], &a), 0);
        }
        check("embed", &out, AWQ_DTYPE_F32, 0);
        struct t2 wn = mk(C, 2, AWQ_DTYPE_F32, 0.5f, 2), y = mk_out((size_t)T * C, 3, AWQ_DTYPE_F32);
        BOTH(rmsnorm, .T = T, .C = C, .eps = 1e-5f, .x = at(&out, s), .w = at(&wn, s), .y = at(&y, s));
        check("rmsnorm", &y, AWQ_DTYPE_F32, 1e-10);
        struct t2 nll = mk_out(T, 1, AWQ_DTYPE_F32);
        for (int s = 0; s < 2; s++) {
            int32_t tg[6] = { 0, 12, 3, 5, 1, 7 };
            ck_assert_int_eq(awq_buffer_write(ib[s], 4, tg, sizeof tg), 0);
            struct awq_cross_entropy_args a = { T, C, at(&y, s), { ib[s], 4 }, at(&nll, s) };
            ck_assert_int_eq(awq_op_cross_entropy(dev[s], &a), 0);
        }
        check("cross_entropy", &nll, AWQ_DTYPE_F32, 1e-10);
        drop(&tab);
        drop(&out);
        drop(&wn);
        drop(&y);
        drop(&nll);
        awq_buffer_destroy(ib[0]);
        awq_buffer_destroy(ib[1]);
    }
}
END_TEST

int main(void)
{
    rng = tu_seed();
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    if (awq_device_open(ctx, "opencl", -1, &dev[1]) != 0) {
        printf("SKIP: no usable OpenCL device: %s\n", awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    if (awq_device_open(ctx, "cpu", 0, &dev[0]) != 0)
        return 99;
    Suite *s = suite_create("opencl-ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_act_stats_tails);
    tcase_add_test(tc, test_gemm_tails_offsets);
    tcase_add_test(tc, test_gemm_w4_boundaries);
    tcase_add_test(tc, test_attention_shapes);
    tcase_add_test(tc, test_search_ops_odd);
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
