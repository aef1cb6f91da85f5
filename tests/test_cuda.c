/*
 * CUDA-specific checks beyond the shared parity suite, against the CPU backend: every gemm_w4
 * code path (X read straight in fp32 or fp16, or first copied to fp16 when misaligned or scaled;
 * 1 and 2 m-tiles, row chunks, split K inside and across groups, G = 32 and G >= 64, the
 * dequantize + cuBLAS path forced on a second device handle), bitwise determinism of the split reductions,
 * attention with head_dim 256 and long KV, clip search and pseudo-quantization with large groups,
 * unaligned tensors, overlapping copies, and error reporting (device out of memory). Exits 77
 * without a CUDA device.
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
static awq_device *cpu, *gpu, *gpu_blas, *gpu_xs;
static uint64_t rng;

static awq_buffer *upload(awq_device *d, const void *p, size_t bytes)
{
    awq_buffer *b;
    ck_assert_msg(awq_buffer_create(d, bytes, &b) == 0, "alloc: %s", awq_device_last_error(d));
    ck_assert_msg(awq_buffer_write(b, 0, p, bytes) == 0, "write: %s", awq_device_last_error(d));
    return b;
}

static awq_buffer *poisoned(awq_device *d, size_t bytes)
{
    unsigned char *junk = malloc(bytes);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 0xFF, bytes);
    awq_buffer *b = upload(d, junk, bytes);
    free(junk);
    return b;
}

/* n values of type t read back as fp32 (caller frees). */
static float *download(awq_buffer *b, size_t off, size_t n, awq_dtype t)
{
    size_t es = awq_dtype_size(t);
    void *raw = malloc(n * es);
    float *f = malloc(n * sizeof *f);
    ck_assert(raw && f);
    ck_assert_msg(awq_buffer_read(b, off, raw, n * es) == 0, "read failed");
    if (t == AWQ_DTYPE_F16)
        awq_f16_to_f32_n(raw, f, n);
    else
        memcpy(f, raw, n * sizeof *f);
    free(raw);
    return f;
}

static void expect_close(const char *what, const float *got, const float *ref, size_t n, double max_nmse)
{
    size_t bad = tu_count_nonfinite(got, n);
    double e = tu_nmse(got, ref, n);
    ck_assert_msg(tu_count_nonfinite(ref, n) == 0, "%s: reference not finite", what);
    ck_assert_msg(bad == 0, "%s: %zu of %zu values non-finite", what, bad, n);
    ck_assert_msg(e <= max_nmse, "%s: nmse %.3g > %.3g", what, e, max_nmse);
}

static float *random_floats(size_t n, float lo, float hi)
{
    float *f = malloc(n * sizeof *f);
    ck_assert_ptr_nonnull(f);
    tu_fill_uniform(&rng, f, n, lo, hi);
    return f;
}

/* ---- gemm_w4 on every path ---------------------------------------------------------------- */

struct w4c {
    int M, K, N, G;
    awq_dtype xt, yt;
    int bias, act_scale;
    int xoff;   /* X starts this many elements into its buffer (a misaligned X when odd) */
};

/* Runs one case on the CPU, the CUDA device, the cuBLAS-forced handle and the handle whose fused
 * kernel stages X in shared memory; returns the CUDA Y (fp32 copy) when `keep` so callers can
 * compare runs. */
static float *run_w4(const struct w4c *c, int keep)
{
    size_t nq = (size_t)c->K * c->N / 8, nz = (size_t)c->K / c->G * c->N / 8, ns = (size_t)c->K / c->G * c->N;
    int32_t *qw = malloc(nq * 4), *qz = malloc(nz * 4);
    uint16_t *sc = malloc(ns * 2);
    ck_assert(qw && qz && sc);
    for (size_t i = 0; i < nq; i++)
        qw[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < nz; i++)
        qz[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < ns; i++)
        sc[i] = awq_f32_to_f16(tu_uniform(&rng, 0.002f, 0.03f));
    struct awq_w4_host h = { c->K, c->N, c->G, qw, qz, sc };
    size_t xn = (size_t)c->M * c->K, yn = (size_t)c->M * c->N;
    float *xf = random_floats(xn, -1, 1), *bias = random_floats((size_t)c->N, -0.5f, 0.5f);
    float *as = random_floats((size_t)c->K, 0.25f, 4.0f);
    const size_t xes = awq_dtype_size(c->xt), xoff = (size_t)c->xoff * xes;
    char *xh = calloc(1, xoff + xn * xes);
    ck_assert_ptr_nonnull(xh);
    if (c->xt == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(xf, (uint16_t *)(xh + xoff), xn);
    else
        memcpy(xh + xoff, xf, xn * 4);
    awq_device *devs[4] = { cpu, gpu, gpu_blas, gpu_xs };
    float *y[4];
    for (int d = 0; d < 4; d++) {
        struct awq_qweight *w;
        ck_assert_msg(awq_op_w4_create(devs[d], &h, &w) == 0, "w4_create: %s", awq_device_last_error(devs[d]));
        awq_buffer *xb = upload(devs[d], xh, xoff + xn * xes);
        awq_buffer *yb = poisoned(devs[d], yn * awq_dtype_size(c->yt));
        awq_buffer *bb = c->bias ? upload(devs[d], bias, (size_t)c->N * 4) : NULL;
        awq_buffer *ab = c->act_scale ? upload(devs[d], as, (size_t)c->K * 4) : NULL;
        struct awq_gemm_w4_args a = { .w = w, .M = c->M, .x_type = c->xt, .y_type = c->yt, .x = { xb, xoff },
                                      .y = { yb, 0 }, .bias = { bb, 0 }, .act_scale = { ab, 0 } };
        int st = awq_op_gemm_w4(devs[d], &a);
        ck_assert_msg(st == 0, "gemm_w4 M=%d K=%d N=%d on device %d: %s", c->M, c->K, c->N, d,
                      awq_device_last_error(devs[d]));
        y[d] = download(yb, 0, yn, c->yt);
        awq_buffer_destroy(xb);
        awq_buffer_destroy(yb);
        awq_buffer_destroy(bb);
        awq_buffer_destroy(ab);
        awq_qweight_destroy(w);
    }
    char what[160];
    snprintf(what, sizeof what, "gemm_w4 M=%d K=%d N=%d G=%d x=%s y=%s bias=%d as=%d", c->M, c->K, c->N, c->G,
             awq_dtype_name(c->xt), awq_dtype_name(c->yt), c->bias, c->act_scale);
    expect_close(what, y[1], y[0], yn, 2e-5);
    strncat(what, " (cuBLAS path)", sizeof what - strlen(what) - 1);
    expect_close(what, y[2], y[0], yn, 2e-5);
    what[strlen(what) - strlen(" (cuBLAS path)")] = 0;
    strncat(what, " (X in shared memory)", sizeof what - strlen(what) - 1);
    expect_close(what, y[3], y[0], yn, 2e-5);
    free(y[0]);
    free(y[2]);
    free(y[3]);
    free(qw);
    free(qz);
    free(sc);
    free(xf);
    free(xh);
    free(bias);
    free(as);
    if (keep)
        return y[1];
    free(y[1]);
    return NULL;
}

START_TEST(test_w4_paths)
{
    static const struct w4c cs[] = {
        { 1, 96, 24, 32, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 1, 0 },      /* act_scale: fp16 copy; K padded to 64 */
        { 1, 2048, 264, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 1, 1, 0 },  /* fp16 copy, split K */
        { 1, 8192, 1000, 128, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 0, 0 }, /* direct fp32, odd tile count */
        { 1, 4096, 528, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 0, 0, 1 },  /* misaligned X: fp16 copy */
        { 2, 160, 40, 32, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 1, 0, 0 },     /* direct fp16, K padded to 192 */
        { 4, 2048, 96, 64, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 0, 3 },    /* misaligned fp32 X */
        { 5, 4160, 72, 64, AWQ_DTYPE_F32, AWQ_DTYPE_F16, 0, 0, 0 },    /* direct fp32, 65 k-blocks */
        { 3, 2080, 56, 32, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 0, 0, 0 },    /* direct fp32, G = 32, K padded */
        { 3, 1920, 48, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 1, 0, 0 },   /* splits start inside groups */
        { 2, 512, 40, 64, AWQ_DTYPE_F32, AWQ_DTYPE_F16, 0, 1, 0 },     /* 1 m-tile */
        { 8, 1024, 136, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 1, 0, 0 },
        { 9, 384, 200, 32, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 1, 0 },    /* 2 m-tiles, G = 32 */
        { 16, 1024, 8, 64, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 0, 0, 0 },
        { 25, 160, 72, 32, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 0, 0 },    /* 2 row chunks, 7 rows unused */
        { 33, 768, 96, 128, AWQ_DTYPE_F32, AWQ_DTYPE_F16, 1, 1, 0 },   /* 3 row chunks */
        { 130, 256, 2056, 64, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 0, 1, 0 }, /* 9 row chunks, 17 column groups */
        { 300, 4096, 8, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 1, 0, 0 },  /* many chunks, split K */
        { 520, 384, 136, 32, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 1, 0 },  /* 33 row chunks */
        { 600, 256, 24, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 1, 0, 0 },  /* fp16 Y + bias */
        { 32, 1024, 264, 32, AWQ_DTYPE_F16, AWQ_DTYPE_F16, 0, 0, 0 },  /* 2 row chunks, G = 32 */
        { 45, 4160, 200, 64, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 1, 0, 0 },  /* 3 row chunks, 65 k-blocks */
        /* the cuBLAS handle dequantizes in 1 MiB column chunks: 3 and 8 of them */
        { 20, 2048, 704, 64, AWQ_DTYPE_F32, AWQ_DTYPE_F16, 1, 1, 0 },
        { 3, 4096, 1000, 128, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 1, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        run_w4(&cs[i], 0);
}
END_TEST

/* Split-K sums (last CTA reduces) do not depend on timing: two runs agree bit for bit. */
START_TEST(test_w4_deterministic)
{
    static const struct w4c cs[] = {
        { 1, 8192, 512, 128, AWQ_DTYPE_F32, AWQ_DTYPE_F32, 1, 0, 0 },
        { 40, 4096, 64, 64, AWQ_DTYPE_F16, AWQ_DTYPE_F32, 0, 1, 0 },
    };
    for (size_t i = 0; i < 2; i++) {
        uint64_t saved = rng;
        float *a = run_w4(&cs[i], 1);
        rng = saved;
        float *b = run_w4(&cs[i], 1);
        ck_assert_msg(memcmp(a, b, (size_t)cs[i].M * cs[i].N * 4) == 0, "gemm_w4 case %zu differs between runs", i);
        free(a);
        free(b);
    }
}
END_TEST

/* ---- reductions: deterministic and right ---------------------------------------------------- */

START_TEST(test_reductions_deterministic)
{
    size_t n = (size_t)3 << 20;
    float *a = random_floats(n, -1, 1), *b = random_floats(n, -1, 1);
    awq_buffer *ab = upload(gpu, a, n * 4), *bb = upload(gpu, b, n * 4), *o = poisoned(gpu, 8);
    float r[2];
    for (int k = 0; k < 2; k++) {
        struct awq_sq_err_args s = { .n = n, .a = { ab, 0 }, .b = { bb, 0 }, .out = { o, 4 * (size_t)k } };
        ck_assert_int_eq(awq_op_sq_err(gpu, &s), 0);
    }
    ck_assert_int_eq(awq_buffer_read(o, 0, r, 8), 0);
    ck_assert_msg(memcmp(&r[0], &r[1], 4) == 0, "sq_err differs between runs");
    double ref = 0;
    for (size_t i = 0; i < n; i++)
        ref += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    ck_assert_msg(fabs(r[0] - ref) <= 1e-5 * ref, "sq_err %g vs %g", r[0], ref);
    /* act_stats with many row splits, twice from zero: identical accumulators */
    int T = 3000, C = 1024;   /* T * C <= n: x reuses a */
    awq_buffer *x = upload(gpu, a, (size_t)T * C * 4), *acc[2];
    for (int k = 0; k < 2; k++) {
        acc[k] = poisoned(gpu, (size_t)C * 12);
        ck_assert_int_eq(awq_op_zero(gpu, (struct awq_tref){ acc[k], 0 }, (size_t)C * 12), 0);
        struct awq_act_stats_args s = { .T = T, .C = C, .x_type = AWQ_DTYPE_F32, .x = { x, 0 },
                                        .sum_abs = { acc[k], 0 }, .max_abs = { acc[k], (size_t)C * 4 },
                                        .sum_sq = { acc[k], (size_t)C * 8 } };
        ck_assert_int_eq(awq_op_act_stats(gpu, &s), 0);
    }
    float *s0 = download(acc[0], 0, (size_t)C * 3, AWQ_DTYPE_F32), *s1 = download(acc[1], 0, (size_t)C * 3, AWQ_DTYPE_F32);
    ck_assert_msg(memcmp(s0, s1, (size_t)C * 12) == 0, "act_stats differs between runs");
    free(s0);
    free(s1);
    awq_buffer_destroy(acc[0]);
    awq_buffer_destroy(acc[1]);
    awq_buffer_destroy(x);
    awq_buffer_destroy(ab);
    awq_buffer_destroy(bb);
    awq_buffer_destroy(o);
    free(a);
    free(b);
}
END_TEST

/* ---- ops at shapes the parity suite does not reach ------------------------------------------ */

START_TEST(test_attention_wide)
{
    static const int cs[][6] = { /* n_seq, q_len, kv_len, heads, kv_heads, hd */
        { 1, 1, 2000, 8, 2, 256 }, { 1, 150, 150, 4, 2, 256 }, { 2, 40, 90, 6, 3, 80 }, { 1, 3, 700, 4, 1, 200 },
        { 3, 9, 9, 2, 2, 2 } };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int ns = cs[i][0], ql = cs[i][1], kl = cs[i][2], H = cs[i][3], KH = cs[i][4], hd = cs[i][5];
        size_t qn = (size_t)ns * ql * H * hd, kn = (size_t)ns * kl * KH * hd;
        float *q = random_floats(qn, -2, 2), *k = random_floats(kn, -2, 2), *v = random_floats(kn, -1, 1);
        float *out[2];
        awq_device *devs[2] = { cpu, gpu };
        for (int d = 0; d < 2; d++) {
            awq_buffer *qb = upload(devs[d], q, qn * 4), *kb = upload(devs[d], k, kn * 4);
            awq_buffer *vb = upload(devs[d], v, kn * 4), *ob = poisoned(devs[d], qn * 4);
            struct awq_attention_args a = { .n_seq = ns, .q_len = ql, .kv_len = kl, .n_heads = H, .n_kv_heads = KH,
                                            .head_dim = hd, .scale = 1.0f / sqrtf((float)hd), .q = { qb, 0 },
                                            .k = { kb, 0 }, .v = { vb, 0 }, .out = { ob, 0 } };
            ck_assert_msg(awq_op_attention(devs[d], &a) == 0, "attention: %s", awq_device_last_error(devs[d]));
            out[d] = download(ob, 0, qn, AWQ_DTYPE_F32);
            awq_buffer_destroy(qb);
            awq_buffer_destroy(kb);
            awq_buffer_destroy(vb);
            awq_buffer_destroy(ob);
        }
        char what[96];
        snprintf(what, sizeof what, "attention seq=%d q=%d kv=%d h=%d kvh=%d hd=%d", ns, ql, kl, H, KH, hd);
        expect_close(what, out[1], out[0], qn, 1e-8);
        free(out[0]);
        free(out[1]);
        free(q);
        free(k);
        free(v);
    }
}
END_TEST

START_TEST(test_quant_large_groups)
{
    /* clip search with G = 512: 7 rows per block, shrinks split over blocks */
    int N = 12, K = 1024, G = 512, T = 40, ns = 10;
    float *w = random_floats((size_t)N * K, -0.2f, 0.2f), *x = random_floats((size_t)T * K, -2, 2);
    float *e[2];
    awq_device *devs[2] = { cpu, gpu };
    for (int d = 0; d < 2; d++) {
        awq_buffer *wb = upload(devs[d], w, (size_t)N * K * 4), *xb = upload(devs[d], x, (size_t)T * K * 4);
        awq_buffer *eb = poisoned(devs[d], (size_t)ns * N * (K / G) * 4);
        struct awq_clip_search_args a = { .N = N, .K = K, .G = G, .T = T, .n_shrink = ns, .w = { wb, 0 },
                                          .x = { xb, 0 }, .err = { eb, 0 } };
        for (int s = 0; s < ns; s++)
            a.shrink[s] = 1.0f - 0.05f * (float)s;
        ck_assert_msg(awq_op_clip_search(devs[d], &a) == 0, "clip_search: %s", awq_device_last_error(devs[d]));
        e[d] = download(eb, 0, (size_t)ns * N * (K / G), AWQ_DTYPE_F32);
        awq_buffer_destroy(wb);
        awq_buffer_destroy(xb);
        awq_buffer_destroy(eb);
    }
    expect_close("clip_search G=512", e[1], e[0], (size_t)ns * N * (K / G), 1e-6);
    free(e[0]);
    free(e[1]);
    /* pseudo-quantization with G = 256 and an input scale, in place */
    float *s = random_floats((size_t)K, 0.1f, 10);
    float *o[2];
    for (int d = 0; d < 2; d++) {
        awq_buffer *wb = upload(devs[d], w, (size_t)N * K * 4), *sb = upload(devs[d], s, (size_t)K * 4);
        struct awq_pseudo_quant_args a = { .N = N, .K = K, .G = 256, .w = { wb, 0 }, .in_scale = { sb, 0 },
                                           .out = { wb, 0 } };
        ck_assert_msg(awq_op_pseudo_quant(devs[d], &a) == 0, "pseudo_quant: %s", awq_device_last_error(devs[d]));
        o[d] = download(wb, 0, (size_t)N * K, AWQ_DTYPE_F32);
        awq_buffer_destroy(wb);
        awq_buffer_destroy(sb);
    }
    expect_close("pseudo_quant G=256 in place", o[1], o[0], (size_t)N * K, 1e-6);
    free(o[0]);
    free(o[1]);
    free(s);
    free(w);
    free(x);
}
END_TEST

/* act_stats on X at an offset that rules out 16-byte loads, and an odd fp16 width */
START_TEST(test_act_stats_unaligned)
{
    static const int cs[][3] = { { 700, 4096, 0 }, { 33, 301, 1 } };   /* T, C, fp16 */
    for (int i = 0; i < 2; i++) {
        int T = cs[i][0], C = cs[i][1];
        awq_dtype t = cs[i][2] ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
        size_t n = (size_t)T * C, es = awq_dtype_size(t);
        float *xf = random_floats(n, -3, 3);
        unsigned char *xh = calloc(n * es + 16, 1);
        if (t == AWQ_DTYPE_F16)
            awq_f32_to_f16_n(xf, (uint16_t *)(xh + es), n);
        else
            memcpy(xh + es, xf, n * 4);
        float *r[2];
        awq_device *devs[2] = { cpu, gpu };
        for (int d = 0; d < 2; d++) {
            awq_buffer *xb = upload(devs[d], xh, n * es + 16), *acc = poisoned(devs[d], (size_t)C * 12);
            ck_assert_int_eq(awq_op_zero(devs[d], (struct awq_tref){ acc, 0 }, (size_t)C * 12), 0);
            struct awq_act_stats_args a = { .T = T, .C = C, .x_type = t, .x = { xb, es }, .sum_abs = { acc, 0 },
                                            .max_abs = { acc, (size_t)C * 4 }, .sum_sq = { acc, (size_t)C * 8 } };
            ck_assert_msg(awq_op_act_stats(devs[d], &a) == 0, "act_stats: %s", awq_device_last_error(devs[d]));
            r[d] = download(acc, 0, (size_t)C * 3, AWQ_DTYPE_F32);
            awq_buffer_destroy(xb);
            awq_buffer_destroy(acc);
        }
        expect_close("act_stats unaligned", r[1], r[0], (size_t)C * 3, 1e-10);
        free(r[0]);
        free(r[1]);
        free(xf);
        free(xh);
    }
}
END_TEST

/* ---- memory and errors ------------------------------------------------------------------------ */

START_TEST(test_copy_overlap)
{
    size_t n = 300007;
    float *a = random_floats(n, -1, 1);
    float *r[2];
    awq_device *devs[2] = { cpu, gpu };
    for (int d = 0; d < 2; d++) {
        awq_buffer *b = upload(devs[d], a, n * 4);
        ck_assert_int_eq(awq_op_copy(devs[d], (struct awq_tref){ b, 0 }, (struct awq_tref){ b, 20 }, (n - 10) * 4), 0);
        ck_assert_int_eq(awq_op_copy(devs[d], (struct awq_tref){ b, 40 }, (struct awq_tref){ b, 4 }, (n - 20) * 4), 0);
        r[d] = download(b, 0, n, AWQ_DTYPE_F32);
        awq_buffer_destroy(b);
    }
    ck_assert_msg(memcmp(r[0], r[1], n * 4) == 0, "overlapping copies differ from memmove");
    free(r[0]);
    free(r[1]);
    free(a);
}
END_TEST

START_TEST(test_errors)
{
    awq_buffer *b = NULL;
    int st = awq_buffer_create(gpu, (size_t)1 << 52, &b);
    ck_assert_int_eq(st, AWQ_ERR_DEVICE_MEMORY);
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(awq_device_last_error(gpu), "cudaMalloc") != NULL, "message: %s",
                  awq_device_last_error(gpu));
    printf("out-of-memory message: %s\n", awq_device_last_error(gpu));
    /* the failure leaves the device usable */
    float v[4] = { 1, 2, 3, 4 }, back[4];
    b = upload(gpu, v, sizeof v);
    struct awq_add_args a = { .n = 4, .a = { b, 0 }, .b = { b, 0 }, .out = { b, 0 } };
    ck_assert_int_eq(awq_op_add(gpu, &a), 0);
    ck_assert_int_eq(awq_buffer_read(b, 0, back, sizeof back), 0);
    ck_assert(back[3] == 8.0f);
    /* a tensor off its element alignment is refused, not a device fault */
    awq_buffer *x = poisoned(gpu, 4096), *y = poisoned(gpu, 4096);
    struct awq_gemm_args g = { .M = 2, .N = 4, .K = 8, .x_type = AWQ_DTYPE_F32, .w_type = AWQ_DTYPE_F32,
                               .y_type = AWQ_DTYPE_F32, .x = { x, 2 }, .w = { x, 256 }, .y = { y, 0 } };
    ck_assert_int_eq(awq_op_gemm(gpu, &g), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(awq_device_synchronize(gpu), 0);
    awq_buffer_destroy(x);
    awq_buffer_destroy(y);
    awq_buffer_destroy(b);
}
END_TEST

int main(void)
{
    rng = tu_seed();
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    /* the main handle sends every gemm_w4 through the fused kernel, whatever the default cut-over */
    setenv("AWQ_CUDA_W4_CUBLAS_MIN_M", "1000000", 1);
    int opened = awq_device_open(ctx, "cuda", -1, &gpu);
    unsetenv("AWQ_CUDA_W4_CUBLAS_MIN_M");
    if (opened != 0) {
        printf("SKIP: no usable cuda device: %s\n", awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    /* a second handle on the same GPU that sends every gemm_w4 through dequantize + cuBLAS, in
     * column chunks of 1 MiB of fp16 weights (several chunks for the wider cases) */
    setenv("AWQ_CUDA_W4_CUBLAS_MIN_M", "1", 1);
    setenv("AWQ_CUDA_W4_CHUNK_MB", "1", 1);
    int st = awq_device_open(ctx, "cuda", -1, &gpu_blas);
    unsetenv("AWQ_CUDA_W4_CUBLAS_MIN_M");
    unsetenv("AWQ_CUDA_W4_CHUNK_MB");
    /* a third: fused kernel always, X staged in shared memory when M > 8 */
    setenv("AWQ_CUDA_W4_CUBLAS_MIN_M", "1000000", 1);
    setenv("AWQ_CUDA_W4_XSMEM", "1", 1);
    if (st == 0)
        st = awq_device_open(ctx, "cuda", -1, &gpu_xs);
    unsetenv("AWQ_CUDA_W4_CUBLAS_MIN_M");
    unsetenv("AWQ_CUDA_W4_XSMEM");
    if (st != 0 || awq_device_open(ctx, "cpu", 0, &cpu) != 0)
        return 99;
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("cuda");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_w4_paths);
    tcase_add_test(tc, test_w4_deterministic);
    tcase_add_test(tc, test_reductions_deterministic);
    tcase_add_test(tc, test_attention_wide);
    tcase_add_test(tc, test_quant_large_groups);
    tcase_add_test(tc, test_act_stats_unaligned);
    tcase_add_test(tc, test_copy_overlap);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    awq_device_close(gpu_xs);
    awq_device_close(gpu_blas);
    awq_device_close(gpu);
    awq_device_close(cpu);
    awq_context_destroy(ctx);
    return failed ? 1 : 0;
}
