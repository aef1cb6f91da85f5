/*
 * Backend parity: every op of the backend named by PARITY_BACKEND against the CPU backend (the
 * reference), on fresh random inputs (seed printed; AWQ_TEST_SEED replays) and odd shapes, with
 * every output poisoned (NaN bytes) before the op runs. Exits 77 (skip) when the backend has no
 * usable device. AWQ_PARITY_LARGE=1 adds the large shapes of a real GPU run (K = 11008,
 * N = 28672, M = 4096), checked on sampled rows.
 *
 * Runs without fork: PoCL hangs in a forked child once the parent has enumerated OpenCL devices.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "quant/q4.h"
#include "testutil.h"
#include "util/half.h"

#ifndef PARITY_BACKEND
#error "PARITY_BACKEND must name the backend under test"
#endif

static awq_context *ctx;
static awq_device *ref, *dut;
static uint64_t rng;
static int large;

/* A tensor that exists on both devices. side 0 = reference (CPU), side 1 = device under test. */
struct pair {
    awq_buffer *b[2];
    size_t bytes;
};

static struct pair pair_new(size_t bytes)
{
    struct pair p = { { NULL, NULL }, bytes };
    ck_assert_msg(awq_buffer_create(ref, bytes, &p.b[0]) == 0, "cpu alloc: %s", awq_device_last_error(ref));
    ck_assert_msg(awq_buffer_create(dut, bytes, &p.b[1]) == 0, "alloc %zu bytes: %s", bytes,
                  awq_device_last_error(dut));
    return p;
}

static void pair_free(struct pair *p)
{
    awq_buffer_destroy(p->b[0]);
    awq_buffer_destroy(p->b[1]);
}

static void pair_upload(struct pair *p, const void *src)
{
    for (int s = 0; s < 2; s++)
        ck_assert_msg(awq_buffer_write(p->b[s], 0, src, p->bytes) == 0, "write: %s",
                      awq_device_last_error(s ? dut : ref));
}

/* Fills both copies with 0xFF bytes: NaN as fp32/fp16, so an output left unwritten shows. */
static void pair_poison(struct pair *p)
{
    unsigned char *junk = malloc(p->bytes);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 0xFF, p->bytes);
    pair_upload(p, junk);
    free(junk);
}

static struct pair pair_random(size_t n, float lo, float hi)
{
    float *h = malloc(n * sizeof *h);
    ck_assert_ptr_nonnull(h);
    tu_fill_uniform(&rng, h, n, lo, hi);
    struct pair p = pair_new(n * sizeof *h);
    pair_upload(&p, h);
    free(h);
    return p;
}

static struct pair pair_out(size_t bytes)
{
    struct pair p = pair_new(bytes);
    pair_poison(&p);
    return p;
}

static struct awq_tref at(const struct pair *p, int side)
{
    struct awq_tref r = { p ? p->b[side] : NULL, 0 };
    return r;
}

static awq_device *devs(int side)
{
    return side ? dut : ref;
}

/* Reads both copies of n values of type t as fp32 and checks the device's against the CPU's. */
static void expect_close(const char *what, const struct pair *p, size_t n, awq_dtype t, double max_nmse)
{
    size_t es = awq_dtype_size(t);
    void *raw = malloc(n * es);
    float *v[2];
    v[0] = malloc(n * sizeof(float));
    v[1] = malloc(n * sizeof(float));
    ck_assert(raw && v[0] && v[1]);
    for (int s = 0; s < 2; s++) {
        ck_assert_msg(awq_buffer_read(p->b[s], 0, raw, n * es) == 0, "read: %s",
                      awq_device_last_error(devs(s)));
        if (t == AWQ_DTYPE_F16)
            awq_f16_to_f32_n(raw, v[s], n);
        else
            memcpy(v[s], raw, n * sizeof(float));
    }
    size_t bad_ref = tu_count_nonfinite(v[0], n), bad = tu_count_nonfinite(v[1], n);
    double e = tu_nmse(v[1], v[0], n);
    ck_assert_msg(bad_ref == 0, "%s: the CPU reference left %zu non-finite values", what, bad_ref);
    ck_assert_msg(bad == 0, "%s: %zu of %zu outputs non-finite (unwritten?)", what, bad, n);
    ck_assert_msg(e <= max_nmse, "%s: nmse %.3g > %.3g", what, e, max_nmse);
    free(raw);
    free(v[0]);
    free(v[1]);
}

#define RUN(op, ...)                                                                             \
    for (int side = 0; side < 2; side++) {                                                      \
        struct awq_##op##_args run_args_ = { __VA_ARGS__ };                                     \
        int st_ = awq_op_##op(devs(side), &run_args_);                                          \
        ck_assert_msg(st_ == 0, #op " on %s failed (%d): %s", side ? PARITY_BACKEND : "cpu", st_, \
                      awq_device_last_error(devs(side)));                                      \
    }

/* ---- buffers --------------------------------------------------------------------------------- */

START_TEST(test_buffers)
{
    size_t n = 100003;
    struct pair a = pair_random(n, -1, 1), b = pair_out(n * 4 + 64);
    for (int side = 0; side < 2; side++) {
        awq_device *d = devs(side);
        ck_assert_int_eq(awq_op_zero(d, at(&b, side), b.bytes), 0);
        struct awq_tref src = { a.b[side], 4 * 7 }, dst = { b.b[side], 4 * 16 };
        ck_assert_int_eq(awq_op_copy(d, src, dst, (n - 7) * 4), 0);
    }
    expect_close("copy/zero", &b, n + 16, AWQ_DTYPE_F32, 0.0);
    /* a read at an offset sees the bytes written at that offset */
    float probe[5] = { 1.5f, -2, 3, 4, 5 }, back[5];
    ck_assert_int_eq(awq_buffer_write(b.b[1], 12, probe, sizeof probe), 0);
    ck_assert_int_eq(awq_buffer_read(b.b[1], 12, back, sizeof back), 0);
    ck_assert_mem_eq(probe, back, sizeof probe);
    ck_assert_int_eq(awq_buffer_read(b.b[1], b.bytes - 3, back, 4), AWQ_ERR_OUT_OF_BOUNDS);
    pair_free(&a);
    pair_free(&b);
}
END_TEST

/* ---- gemm_w4 ------------------------------------------------------------------------------------ */

struct w4_case {
    int M, K, N, G;
    awq_dtype xt, yt;
    int bias, act_scale;
};

static void random_w4(int K, int N, int G, int32_t **qw, int32_t **qz, uint16_t **sc)
{
    *qw = malloc((size_t)K * N / 8 * 4);
    *qz = malloc((size_t)K / G * N / 8 * 4);
    *sc = malloc((size_t)K / G * N * 2);
    ck_assert(*qw && *qz && *sc);
    for (size_t i = 0; i < (size_t)K * N / 8; i++)
        (*qw)[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < (size_t)K / G * N / 8; i++)
        (*qz)[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < (size_t)K / G * N; i++)
        (*sc)[i] = awq_f32_to_f16(tu_uniform(&rng, 0.002f, 0.03f));
}

static void check_gemm_w4(const struct w4_case *c)
{
    int32_t *qw, *qz;
    uint16_t *sc;
    random_w4(c->K, c->N, c->G, &qw, &qz, &sc);
    struct awq_qweight *w[2];
    struct awq_w4_host h = { c->K, c->N, c->G, qw, qz, sc };
    for (int s = 0; s < 2; s++)
        ck_assert_msg(awq_op_w4_create(devs(s), &h, &w[s]) == 0, "w4_create: %s",
                      awq_device_last_error(devs(s)));
    free(qw);
    free(qz);
    free(sc);

    /* Large M: the reference computes a sample of rows; the device computes all of them. */
    int rows_ref = c->M > 64 ? 17 : c->M;
    size_t xn = (size_t)c->M * c->K;
    float *xf = malloc(xn * sizeof(float));
    ck_assert_ptr_nonnull(xf);
    tu_fill_uniform(&rng, xf, xn, -1, 1);
    size_t xes = awq_dtype_size(c->xt), yes = awq_dtype_size(c->yt);
    void *xh = malloc(xn * xes);
    ck_assert_ptr_nonnull(xh);
    if (c->xt == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(xf, xh, xn);
    else
        memcpy(xh, xf, xn * 4);
    awq_buffer *x[2], *y[2];
    for (int s = 0; s < 2; s++) {
        size_t rows = s ? (size_t)c->M : (size_t)rows_ref;
        ck_assert_int_eq(awq_buffer_create(devs(s), rows * c->K * xes, &x[s]), 0);
        ck_assert_int_eq(awq_buffer_create(devs(s), rows * c->N * yes, &y[s]), 0);
        unsigned char *junk = malloc(rows * c->N * yes);
        memset(junk, 0xFF, rows * c->N * yes);
        ck_assert_int_eq(awq_buffer_write(y[s], 0, junk, rows * c->N * yes), 0);
        free(junk);
    }
    /* sampled rows: spread over M, the last row included */
    int *pick = malloc((size_t)rows_ref * sizeof(int));
    for (int r = 0; r < rows_ref; r++)
        pick[r] = rows_ref == c->M ? r : (int)((long long)r * (c->M - 1) / (rows_ref - 1));
    ck_assert_int_eq(awq_buffer_write(x[1], 0, xh, xn * xes), 0);
    for (int r = 0; r < rows_ref; r++)
        ck_assert_int_eq(awq_buffer_write(x[0], (size_t)r * c->K * xes,
                                          (char *)xh + (size_t)pick[r] * c->K * xes, c->K * xes), 0);
    struct pair bias = { { NULL, NULL }, 0 }, as = { { NULL, NULL }, 0 };
    if (c->bias)
        bias = pair_random((size_t)c->N, -0.5f, 0.5f);
    if (c->act_scale)
        as = pair_random((size_t)c->K, 0.25f, 4.0f);
    for (int s = 0; s < 2; s++) {
        struct awq_gemm_w4_args a = {
            .w = w[s], .M = s ? c->M : rows_ref, .x_type = c->xt, .y_type = c->yt,
            .x = { x[s], 0 }, .y = { y[s], 0 },
            .bias = at(c->bias ? &bias : NULL, s), .act_scale = at(c->act_scale ? &as : NULL, s),
        };
        int st = awq_op_gemm_w4(devs(s), &a);
        ck_assert_msg(st == 0, "gemm_w4 M=%d K=%d N=%d G=%d on %s: %s", c->M, c->K, c->N, c->G,
                      s ? PARITY_BACKEND : "cpu", awq_device_last_error(devs(s)));
    }
    size_t yn = (size_t)rows_ref * c->N;
    void *yr = malloc(yn * yes), *row = malloc((size_t)c->N * yes);
    float *f[2] = { malloc(yn * 4), malloc(yn * 4) };
    ck_assert_int_eq(awq_buffer_read(y[0], 0, yr, yn * yes), 0);
    for (int r = 0; r < rows_ref; r++) {
        ck_assert_int_eq(awq_buffer_read(y[1], (size_t)pick[r] * c->N * yes, row, (size_t)c->N * yes), 0);
        if (c->yt == AWQ_DTYPE_F16) {
            awq_f16_to_f32_n((uint16_t *)row, f[1] + (size_t)r * c->N, (size_t)c->N);
            awq_f16_to_f32_n((uint16_t *)yr + (size_t)r * c->N, f[0] + (size_t)r * c->N, (size_t)c->N);
        } else {
            memcpy(f[1] + (size_t)r * c->N, row, (size_t)c->N * 4);
            memcpy(f[0] + (size_t)r * c->N, (float *)yr + (size_t)r * c->N, (size_t)c->N * 4);
        }
    }
    double e = tu_nmse(f[1], f[0], yn);
    size_t bad = tu_count_nonfinite(f[1], yn);
    ck_assert_msg(bad == 0 && e <= 2e-5,
                  "gemm_w4 M=%d K=%d N=%d G=%d x=%s y=%s bias=%d act_scale=%d: nmse %.3g, %zu non-finite",
                  c->M, c->K, c->N, c->G, awq_dtype_name(c->xt), awq_dtype_name(c->yt), c->bias,
                  c->act_scale, e, bad);
    for (int s = 0; s < 2; s++) {
        awq_buffer_destroy(x[s]);
        awq_buffer_destroy(y[s]);
        awq_qweight_destroy(w[s]);
    }
    if (c->bias)
        pair_free(&bias);
    if (c->act_scale)
        pair_free(&as);
    free(pick);
    free(xf);
    free(xh);
    free(yr);
    free(row);
    free(f[0]);
    free(f[1]);
}

START_TEST(test_gemm_w4)
{
    static const int Ms[] = { 1, 3, 17, 64 };
    static const int KNs[][2] = { { 128, 8 }, { 384, 24 }, { 4096, 4096 }, { 384, 4096 }, { 4096, 24 } };
    static const int Gs[] = { 32, 64, 128 };
    int i = 0;
    for (size_t m = 0; m < 4; m++)
        for (size_t kn = 0; kn < 5; kn++) {
            struct w4_case c = { Ms[m], KNs[kn][0], KNs[kn][1], Gs[i % 3],
                                 i % 2 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32,
                                 i % 4 >= 2 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32, i % 3 == 1, i % 5 == 2 };
            check_gemm_w4(&c);
            i++;
        }
    /* every group size and dtype on one shape */
    for (int g = 0; g < 3; g++)
        for (int t = 0; t < 4; t++) {
            struct w4_case c = { 5, 768, 136, Gs[g], t & 1 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32,
                                 t & 2 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32, 1, 1 };
            check_gemm_w4(&c);
        }
}
END_TEST

START_TEST(test_gemm_w4_large)
{
    if (!large)
        return;
    static const struct w4_case cs[] = {
        { 1, 11008, 28672, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 0, 0 },
        { 1, 8192, 28672, 128, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 0 },
        { 32, 4096, 11008, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 0, 1 },
        { 4096, 11008, 4096, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 0, 0 },
        { 4096, 4096, 28672, 64, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 0 },
        { 4096, 384, 24, 32, AWQ_DTYPE_F32, AWQ_DTYPE_F16, 0, 0 },
        { 300, 11008, 8, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_gemm_w4(&cs[i]);
}
END_TEST

/* ---- unquantized gemm ----------------------------------------------------------------------- */

static void to_type(awq_dtype t, const float *f, void *out, size_t n)
{
    if (t == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(f, out, n);
    else
        memcpy(out, f, n * 4);
}

static struct pair pair_typed(awq_dtype t, size_t n, float lo, float hi)
{
    float *f = malloc(n * 4);
    void *h = malloc(n * awq_dtype_size(t));
    ck_assert(f && h);
    tu_fill_uniform(&rng, f, n, lo, hi);
    to_type(t, f, h, n);
    struct pair p = pair_new(n * awq_dtype_size(t));
    pair_upload(&p, h);
    free(f);
    free(h);
    return p;
}

START_TEST(test_gemm)
{
    static const int shapes[][3] = { { 1, 8, 64 }, { 3, 24, 100 }, { 17, 1000, 384 }, { 64, 172, 64 },
                                     { 130, 64, 172 }, { 1, 4096, 4096 }, { 512, 512, 64 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
            awq_dtype xt = t & 1 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            awq_dtype wt = t & 2 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            awq_dtype yt = t == 3 ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            struct pair x = pair_typed(xt, (size_t)M * K, -1, 1), w = pair_typed(wt, (size_t)N * K, -0.1f, 0.1f);
            struct pair b = pair_random((size_t)N, -1, 1), y = pair_out((size_t)M * N * awq_dtype_size(yt));
            RUN(gemm, .M = M, .N = N, .K = K, .x_type = xt, .w_type = wt, .y_type = yt,
                .x = at(&x, side), .w = at(&w, side), .y = at(&y, side), .bias = at(i % 2 ? &b : NULL, side));
            char what[96];
            snprintf(what, sizeof what, "gemm M=%d N=%d K=%d types %d", M, N, K, t);
            expect_close(what, &y, (size_t)M * N, yt, 2e-5);
            pair_free(&x);
            pair_free(&w);
            pair_free(&b);
            pair_free(&y);
        }
}
END_TEST

/* ---- activation statistics -------------------------------------------------------------------- */

START_TEST(test_act_stats)
{
    static const int shapes[][2] = { { 1, 64 }, { 17, 300 }, { 1000, 4096 }, { 2049, 172 } };
    for (size_t i = 0; i < 4; i++)
        for (int t = 0; t < 2; t++) {
            int T = shapes[i][0], C = shapes[i][1];
            awq_dtype xt = t ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            struct pair x = pair_typed(xt, (size_t)T * C, -3, 3), x2 = pair_typed(xt, (size_t)T * C, -5, 2);
            struct pair sa = pair_new((size_t)C * 4), ma = pair_new((size_t)C * 4), sq = pair_new((size_t)C * 4);
            for (int s = 0; s < 2; s++) {
                ck_assert_int_eq(awq_op_zero(devs(s), at(&sa, s), sa.bytes), 0);
                ck_assert_int_eq(awq_op_zero(devs(s), at(&ma, s), ma.bytes), 0);
                ck_assert_int_eq(awq_op_zero(devs(s), at(&sq, s), sq.bytes), 0);
            }
            /* two calls: the statistics accumulate */
            RUN(act_stats, .T = T, .C = C, .x_type = xt, .x = at(&x, side), .sum_abs = at(&sa, side),
                .max_abs = at(&ma, side), .sum_sq = at(&sq, side));
            RUN(act_stats, .T = T, .C = C, .x_type = xt, .x = at(&x2, side), .sum_abs = at(&sa, side),
                .max_abs = at(&ma, side), .sum_sq = at(&sq, side));
            expect_close("act_stats sum|x|", &sa, (size_t)C, AWQ_DTYPE_F32, 1e-10);
            expect_close("act_stats max|x| (exact)", &ma, (size_t)C, AWQ_DTYPE_F32, 0.0);
            expect_close("act_stats sum x^2", &sq, (size_t)C, AWQ_DTYPE_F32, 1e-10);
            pair_free(&x);
            pair_free(&x2);
            pair_free(&sa);
            pair_free(&ma);
            pair_free(&sq);
        }
}
END_TEST

/* ---- Llama block ops ---------------------------------------------------------------------------- */

START_TEST(test_rmsnorm)
{
    static const int shapes[][2] = { { 1, 64 }, { 3, 100 }, { 17, 4096 }, { 130, 172 } };
    for (size_t i = 0; i < 4; i++) {
        int T = shapes[i][0], C = shapes[i][1];
        struct pair x = pair_random((size_t)T * C, -4, 4), w = pair_random((size_t)C, 0.5f, 2);
        struct pair y = pair_out((size_t)T * C * 4);
        RUN(rmsnorm, .T = T, .C = C, .eps = 1e-5f, .x = at(&x, side), .w = at(&w, side), .y = at(&y, side));
        expect_close("rmsnorm", &y, (size_t)T * C, AWQ_DTYPE_F32, 1e-10);
        /* in place */
        RUN(rmsnorm, .T = T, .C = C, .eps = 1e-6f, .x = at(&x, side), .w = at(&w, side), .y = at(&x, side));
        expect_close("rmsnorm in place", &x, (size_t)T * C, AWQ_DTYPE_F32, 1e-10);
        pair_free(&x);
        pair_free(&w);
        pair_free(&y);
    }
}
END_TEST

static struct pair inv_freq_pair(int hd, float theta)
{
    float *f = malloc((size_t)hd / 2 * 4);
    for (int i = 0; i < hd / 2; i++)
        f[i] = powf(theta, -2.0f * i / hd);
    struct pair p = pair_new((size_t)hd / 2 * 4);
    pair_upload(&p, f);
    free(f);
    return p;
}

START_TEST(test_rope)
{
    static const int cs[][5] = { /* T, heads, hd, pos0, seq_len */
        { 1, 1, 8, 0, 1 }, { 17, 3, 64, 5, 17 }, { 64, 8, 128, 0, 16 }, { 1, 32, 128, 1000, 1 }, { 40, 4, 8, 3, 7 } };
    for (size_t i = 0; i < 5; i++) {
        int T = cs[i][0], H = cs[i][1], hd = cs[i][2];
        struct pair x = pair_random((size_t)T * H * hd, -2, 2), f = inv_freq_pair(hd, 10000.0f);
        RUN(rope, .T = T, .n_heads = H, .head_dim = hd, .pos0 = cs[i][3], .seq_len = cs[i][4],
            .x = at(&x, side), .inv_freq = at(&f, side));
        expect_close("rope", &x, (size_t)T * H * hd, AWQ_DTYPE_F32, 1e-9);
        pair_free(&x);
        pair_free(&f);
    }
}
END_TEST

START_TEST(test_attention)
{
    static const int cs[][6] = { /* n_seq, q_len, kv_len, heads, kv_heads, hd */
        { 1, 1, 1, 1, 1, 8 },    { 1, 1, 37, 8, 4, 64 },   { 2, 17, 17, 8, 2, 64 },
        { 1, 5, 33, 4, 4, 128 }, { 3, 64, 64, 8, 8, 8 },  { 1, 513, 513, 2, 1, 64 },
        { 2, 100, 100, 8, 4, 8 }, { 1, 1, 1000, 32, 8, 128 } };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int ns = cs[i][0], ql = cs[i][1], kl = cs[i][2], H = cs[i][3], KH = cs[i][4], hd = cs[i][5];
        size_t qn = (size_t)ns * ql * H * hd, kn = (size_t)ns * kl * KH * hd;
        struct pair q = pair_random(qn, -2, 2), k = pair_random(kn, -2, 2), v = pair_random(kn, -1, 1);
        struct pair o = pair_out(qn * 4);
        RUN(attention, .n_seq = ns, .q_len = ql, .kv_len = kl, .n_heads = H, .n_kv_heads = KH,
            .head_dim = hd, .scale = 1.0f / sqrtf((float)hd), .q = at(&q, side), .k = at(&k, side),
            .v = at(&v, side), .out = at(&o, side));
        char what[96];
        snprintf(what, sizeof what, "attention seq=%d q=%d kv=%d h=%d kvh=%d hd=%d", ns, ql, kl, H, KH, hd);
        expect_close(what, &o, qn, AWQ_DTYPE_F32, 1e-8);
        pair_free(&q);
        pair_free(&k);
        pair_free(&v);
        pair_free(&o);
    }
}
END_TEST

START_TEST(test_elementwise)
{
    static const size_t ns[] = { 1, 7, 1000, 100003 };
    for (size_t i = 0; i < 4; i++) {
        size_t n = ns[i];
        struct pair g = pair_random(n, -8, 8), u = pair_random(n, -2, 2), o = pair_out(n * 4);
        RUN(silu_mul, .n = n, .gate = at(&g, side), .up = at(&u, side), .out = at(&o, side));
        expect_close("silu_mul", &o, n, AWQ_DTYPE_F32, 1e-10);
        RUN(add, .n = n, .a = at(&g, side), .b = at(&u, side), .out = at(&o, side));
        expect_close("add", &o, n, AWQ_DTYPE_F32, 0.0);
        RUN(add, .n = n, .a = at(&g, side), .b = at(&u, side), .out = at(&g, side));
        expect_close("add in place", &g, n, AWQ_DTYPE_F32, 0.0);
        pair_free(&g);
        pair_free(&u);
        pair_free(&o);
    }
}
END_TEST

START_TEST(test_embed)
{
    static const int cs[][3] = { { 1, 64, 512 }, { 17, 4096, 300 }, { 100, 172, 32000 } };
    for (size_t i = 0; i < 3; i++)
        for (int t = 0; t < 2; t++) {
            int T = cs[i][0], C = cs[i][1], V = cs[i][2];
            awq_dtype tt = t ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
            struct pair tab = pair_typed(tt, (size_t)V * C, -1, 1), out = pair_out((size_t)T * C * 4);
            int32_t *ids = malloc((size_t)T * 4);
            for (int j = 0; j < T; j++)
                ids[j] = (int32_t)(tu_next(&rng) % (uint64_t)V);
            if (T > 2) {
                ids[1] = -1;      /* out of range: a zero row */
                ids[2] = V;
            }
            struct pair idp = pair_new((size_t)T * 4);
            pair_upload(&idp, ids);
            RUN(embed, .T = T, .C = C, .vocab = V, .table_type = tt, .table = at(&tab, side),
                .ids = at(&idp, side), .out = at(&out, side));
            expect_close("embed", &out, (size_t)T * C, AWQ_DTYPE_F32, 0.0);
            free(ids);
            pair_free(&tab);
            pair_free(&out);
            pair_free(&idp);
        }
}
END_TEST

START_TEST(test_cross_entropy)
{
    static const int cs[][2] = { { 1, 512 }, { 17, 32000 }, { 130, 1000 } };
    for (size_t i = 0; i < 3; i++) {
        int T = cs[i][0], V = cs[i][1];
        struct pair l = pair_random((size_t)T * V, -10, 10), nll = pair_out((size_t)T * 4);
        int32_t *tg = malloc((size_t)T * 4);
        for (int j = 0; j < T; j++)
            tg[j] = (int32_t)(tu_next(&rng) % (uint64_t)V);
        struct pair tp = pair_new((size_t)T * 4);
        pair_upload(&tp, tg);
        RUN(cross_entropy, .T = T, .V = V, .logits = at(&l, side), .targets = at(&tp, side), .nll = at(&nll, side));
        expect_close("cross_entropy", &nll, (size_t)T, AWQ_DTYPE_F32, 1e-10);
        free(tg);
        pair_free(&l);
        pair_free(&nll);
        pair_free(&tp);
    }
}
END_TEST

/* ---- search ops ----------------------------------------------------------------------------------- */

START_TEST(test_pseudo_quant)
{
    static const int cs[][3] = { { 8, 128, 32 }, { 24, 384, 64 }, { 100, 384, 128 }, { 1, 4096, 128 } };
    for (size_t i = 0; i < 4; i++)
        for (int sc = 0; sc < 2; sc++) {
            int N = cs[i][0], K = cs[i][1], G = cs[i][2];
            struct pair w = pair_random((size_t)N * K, -0.2f, 0.2f), s = pair_random((size_t)K, 0.1f, 10);
            struct pair o = pair_out((size_t)N * K * 4);
            RUN(pseudo_quant, .N = N, .K = K, .G = G, .w = at(&w, side), .in_scale = at(sc ? &s : NULL, side),
                .out = at(&o, side));
            /* a code may flip on a rounding tie: allow a few single-step differences */
            expect_close("pseudo_quant", &o, (size_t)N * K, AWQ_DTYPE_F32, 1e-7);
            pair_free(&w);
            pair_free(&s);
            pair_free(&o);
        }
}
END_TEST

START_TEST(test_clip_search)
{
    static const int cs[][4] = { { 8, 128, 32, 1 }, { 24, 384, 64, 17 }, { 16, 256, 128, 128 }, { 40, 192, 64, 512 } };
    for (size_t i = 0; i < 4; i++) {
        int N = cs[i][0], K = cs[i][1], G = cs[i][2], T = cs[i][3];
        struct pair w = pair_random((size_t)N * K, -0.2f, 0.2f), x = pair_random((size_t)T * K, -2, 2);
        int ns = 10;
        struct pair e = pair_out((size_t)ns * N * (K / G) * 4);
        for (int side = 0; side < 2; side++) {
            struct awq_clip_search_args a = { .N = N, .K = K, .G = G, .T = T, .n_shrink = ns,
                                              .w = at(&w, side), .x = at(&x, side), .err = at(&e, side) };
            for (int s = 0; s < ns; s++)
                a.shrink[s] = 1.0f - 0.05f * (float)s;
            ck_assert_msg(awq_op_clip_search(devs(side), &a) == 0, "clip_search: %s",
                          awq_device_last_error(devs(side)));
        }
        expect_close("clip_search", &e, (size_t)ns * N * (K / G), AWQ_DTYPE_F32, 1e-6);
        pair_free(&w);
        pair_free(&x);
        pair_free(&e);
    }
}
END_TEST

START_TEST(test_sq_err_scale_cols)
{
    static const size_t ns[] = { 1, 1000, (1u << 20) + 3 };
    for (size_t i = 0; i < 3; i++) {
        /* not named a/b: RUN declares the argument struct `a` */
        struct pair pa = pair_random(ns[i], -1, 1), pb = pair_random(ns[i], -1, 1), o = pair_out(4);
        RUN(sq_err, .n = ns[i], .a = at(&pa, side), .b = at(&pb, side), .out = at(&o, side));
        expect_close("sq_err", &o, 1, AWQ_DTYPE_F32, 1e-10);
        pair_free(&pa);
        pair_free(&pb);
        pair_free(&o);
    }
    static const int cs[][2] = { { 1, 64 }, { 17, 300 }, { 513, 4096 } };
    for (size_t i = 0; i < 3; i++)
        for (int div = 0; div < 2; div++) {
            int T = cs[i][0], C = cs[i][1];
            struct pair x = pair_random((size_t)T * C, -3, 3), s = pair_random((size_t)C, 0.1f, 5);
            RUN(scale_cols, .T = T, .C = C, .divide = div, .x = at(&x, side), .s = at(&s, side));
            expect_close("scale_cols", &x, (size_t)T * C, AWQ_DTYPE_F32, 1e-12);
            pair_free(&x);
            pair_free(&s);
        }
}
END_TEST

static Suite *parity_suite(void)
{
    Suite *s = suite_create("parity-" PARITY_BACKEND);
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_buffers);
    tcase_add_test(tc, test_gemm_w4);
    tcase_add_test(tc, test_gemm_w4_large);
    tcase_add_test(tc, test_gemm);
    tcase_add_test(tc, test_act_stats);
    tcase_add_test(tc, test_rmsnorm);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_elementwise);
    tcase_add_test(tc, test_embed);
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_pseudo_quant);
    tcase_add_test(tc, test_clip_search);
    tcase_add_test(tc, test_sq_err_scale_cols);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    rng = tu_seed();
    const char *l = getenv("AWQ_PARITY_LARGE");
    large = l && *l && strcmp(l, "0") != 0;
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    if (awq_device_open(ctx, PARITY_BACKEND, -1, &dut) != 0) {
        printf("SKIP: no usable %s device: %s\n", PARITY_BACKEND, awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    if (awq_device_open(ctx, "cpu", 0, &ref) != 0)
        return 99;
    awq_device_info info;
    awq_device_get_info(dut, &info);
    printf("device under test: %s #%d %s (%s)\n", info.backend, info.index, info.name, info.driver);
    SRunner *sr = srunner_create(parity_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    awq_device_close(dut);
    awq_device_close(ref);
    awq_context_destroy(ctx);
    return failed ? 1 : 0;
}
