/* The CPU backend (the reference of every other backend) against naive double-precision code
 * written straight from the spec, on random shapes; plus the public device/buffer API. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "quant/q4.h"
#include "testutil.h"
#include "util/half.h"

static awq_context *ctx;
static awq_device *cpu;
static uint64_t rng;

static void setup(void)
{
    rng = tu_seed() ^ (uint64_t)rand();
    ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
    ck_assert_int_eq(awq_device_open(ctx, "cpu", 0, &cpu), 0);
}

static void teardown(void)
{
    awq_device_close(cpu);
    awq_context_destroy(ctx);
}

static awq_buffer *upload(const void *p, size_t bytes)
{
    awq_buffer *b;
    ck_assert_int_eq(awq_buffer_create(cpu, bytes, &b), 0);
    ck_assert_int_eq(awq_buffer_write(b, 0, p, bytes), 0);
    return b;
}

/* Naive reference: decode W[k][n] from the AutoAWQ tensors by the spec's bit layout. */
static double ref_weight(const int32_t *qw, const int32_t *qz, const uint16_t *sc, int K, int N, int G,
                         int k, int n)
{
    static const int order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
    int j = n / 8, slot = -1;
    for (int i = 0; i < 8; i++)
        if (order[i] == n % 8)
            slot = i;
    unsigned q = ((uint32_t)qw[(size_t)k * (N / 8) + j] >> (4 * slot)) & 15u;
    unsigned z = ((uint32_t)qz[(size_t)(k / G) * (N / 8) + j] >> (4 * slot)) & 15u;
    double s = awq_f16_to_f32(sc[(size_t)(k / G) * N + n]);
    return ((double)q - (double)z) * s;
}

static void check_w4(int M, int K, int N, int G)
{
    int32_t *qw = malloc((size_t)K * N / 2), *qz = malloc((size_t)K / G * N / 2);
    uint16_t *sc = malloc((size_t)K / G * N * 2);
    float *x = malloc((size_t)M * K * 4), *y = malloc((size_t)M * N * 4), *bias = malloc((size_t)N * 4);
    for (size_t i = 0; i < (size_t)K * N / 8; i++)
        qw[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < (size_t)K / G * N / 8; i++)
        qz[i] = (int32_t)(uint32_t)tu_next(&rng);
    for (size_t i = 0; i < (size_t)K / G * N; i++)
        sc[i] = awq_f32_to_f16(tu_uniform(&rng, 0.001f, 0.02f));
    tu_fill_uniform(&rng, x, (size_t)M * K, -1, 1);
    tu_fill_uniform(&rng, bias, (size_t)N, -1, 1);

    awq_qweight *w;
    ck_assert_int_eq(awq_qweight_create(cpu, K, N, G, qw, qz, sc, &w), 0);
    awq_buffer *bx = upload(x, (size_t)M * K * 4), *bb = upload(bias, (size_t)N * 4), *by;
    ck_assert_int_eq(awq_buffer_create(cpu, (size_t)M * N * 4, &by), 0);
    awq_gemm_w4_params p = { .M = M, .x_type = AWQ_DTYPE_F32, .x = bx, .y_type = AWQ_DTYPE_F32, .y = by,
                             .bias = bb };
    ck_assert_int_eq(awq_gemm_w4(cpu, w, &p), 0);
    ck_assert_int_eq(awq_buffer_read(by, 0, y, (size_t)M * N * 4), 0);

    /* reference on up to 64 columns spread over N (the full product is O(MKN) in double) */
    double num = 0, den = 0;
    int step = N > 64 ? N / 64 : 1;
    for (int n = 0; n < N; n += step) {
        double *wcol = malloc((size_t)K * sizeof(double));
        for (int k = 0; k < K; k++)
            wcol[k] = ref_weight(qw, qz, sc, K, N, G, k, n);
        for (int m = 0; m < M; m++) {
            double acc = bias[n];
            for (int k = 0; k < K; k++)
                acc += (double)x[(size_t)m * K + k] * wcol[k];
            double d = y[(size_t)m * N + n] - acc;
            num += d * d;
            den += acc * acc;
        }
        free(wcol);
    }
    ck_assert_msg(num / den < 1e-11, "gemm_w4 M=%d K=%d N=%d G=%d: nmse %.3g", M, K, N, G, num / den);
    awq_qweight_destroy(w);
    awq_buffer_destroy(bx);
    awq_buffer_destroy(bb);
    awq_buffer_destroy(by);
    free(qw); free(qz); free(sc); free(x); free(y); free(bias);
}

START_TEST(test_gemm_w4_vs_naive)
{
    static const int Ms[] = { 1, 3, 17, 64 }, Ks[] = { 128, 384, 4096 }, Ns[] = { 8, 24, 4096 },
                     Gs[] = { 32, 64, 128 };
    int i = 0;
    for (int m = 0; m < 4; m++)
        for (int k = 0; k < 3; k++)
            for (int n = 0; n < 3; n++, i++) {
                if (Ks[k] == 4096 && Ns[n] == 4096 && Ms[m] > 3)
                    continue;   /* keep the suite quick on two cores */
                check_w4(Ms[m], Ks[k], Ns[n], Gs[i % 3]);
            }
}
END_TEST

START_TEST(test_act_stats_exact)
{
    int T = 333, C = 130;
    float *x = malloc((size_t)T * C * 4), zero[130] = { 0 }, out[3][130];
    tu_fill_normal(&rng, x, (size_t)T * C, 2.0f);
    x[5 * C + 7] = -1234.5f;   /* a planted outlier channel */
    awq_buffer *bx = upload(x, (size_t)T * C * 4), *acc[3];
    for (int i = 0; i < 3; i++)
        acc[i] = upload(zero, sizeof zero);
    struct awq_act_stats_args a = { T, C, AWQ_DTYPE_F32, { bx, 0 }, { acc[0], 0 }, { acc[1], 0 }, { acc[2], 0 } };
    ck_assert_int_eq(awq_op_act_stats(cpu, &a), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(awq_buffer_read(acc[i], 0, out[i], sizeof out[i]), 0);
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        float m = 0;
        for (int t = 0; t < T; t++) {
            float v = fabsf(x[(size_t)t * C + c]);
            s += v;
            q += (double)v * v;
            m = v > m ? v : m;
        }
        ck_assert(out[1][c] == m);   /* the max is exact */
        ck_assert_double_eq_tol(out[0][c], s, 1e-5 * s);
        ck_assert_double_eq_tol(out[2][c], q, 1e-5 * q);
    }
    ck_assert(out[1][7] == 1234.5f);
    awq_buffer_destroy(bx);
    for (int i = 0; i < 3; i++)
        awq_buffer_destroy(acc[i]);
    free(x);
}
END_TEST

START_TEST(test_attention_vs_naive)
{
    int ns = 2, L = 19, H = 4, KH = 2, hd = 8;
    size_t qn = (size_t)ns * L * H * hd, kn = (size_t)ns * L * KH * hd;
    float *q = malloc(qn * 4), *k = malloc(kn * 4), *v = malloc(kn * 4), *o = malloc(qn * 4);
    tu_fill_normal(&rng, q, qn, 1);
    tu_fill_normal(&rng, k, kn, 1);
    tu_fill_normal(&rng, v, kn, 1);
    awq_buffer *bq = upload(q, qn * 4), *bk = upload(k, kn * 4), *bv = upload(v, kn * 4), *bo = upload(q, qn * 4);
    struct awq_attention_args a = { ns, L, L, H, KH, hd, 0.35f, { bq, 0 }, { bk, 0 }, { bv, 0 }, { bo, 0 } };
    ck_assert_int_eq(awq_op_attention(cpu, &a), 0);
    ck_assert_int_eq(awq_buffer_read(bo, 0, o, qn * 4), 0);
    for (int s = 0; s < ns; s++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < L; i++) {
                const float *qi = q + (((size_t)s * L + i) * H + h) * hd;
                double p[19], mx = -1e300, sum = 0;
                for (int j = 0; j <= i; j++) {
                    const float *kj = k + (((size_t)s * L + j) * KH + h / 2) * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++)
                        d += (double)qi[e] * kj[e];
                    p[j] = d * 0.35;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j <= i; j++)
                    sum += (p[j] = exp(p[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double r = 0;
                    for (int j = 0; j <= i; j++)
                        r += p[j] / sum * v[(((size_t)s * L + j) * KH + h / 2) * hd + e];
                    ck_assert_double_eq_tol(o[(((size_t)s * L + i) * H + h) * hd + e], r, 1e-5);
                }
            }
    awq_buffer_destroy(bq);
    awq_buffer_destroy(bk);
    awq_buffer_destroy(bv);
    awq_buffer_destroy(bo);
    free(q); free(k); free(v); free(o);
}
END_TEST

START_TEST(test_api_errors)
{
    awq_buffer *b;
    ck_assert_int_eq(awq_buffer_create(cpu, 0, &b), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(awq_buffer_create(cpu, 16, &b), 0);
    char tmp[32];
    ck_assert_int_eq(awq_buffer_read(b, 8, tmp, 9), AWQ_ERR_OUT_OF_BOUNDS);
    ck_assert_ptr_nonnull(strstr(awq_device_last_error(cpu), "past the end"));
    ck_assert_int_eq(awq_buffer_write(b, SIZE_MAX, tmp, 2), AWQ_ERR_OUT_OF_BOUNDS);
    awq_buffer_destroy(b);
    awq_buffer_destroy(NULL);
    awq_qweight *w;
    int32_t z[64] = { 0 };
    uint16_t s[64] = { 0 };
    ck_assert_int_eq(awq_qweight_create(cpu, 100, 8, 32, z, z, s, &w), AWQ_ERR_BAD_SHAPE);
    ck_assert_int_eq(awq_qweight_create(cpu, 96, 8, 48, z, z, s, &w), AWQ_ERR_UNSUPPORTED);
    awq_device *d;
    ck_assert_int_eq(awq_device_open(ctx, "no-such-backend", 0, &d), AWQ_ERR_NO_DEVICE);
    ck_assert_int_eq(awq_device_open(ctx, "cpu", 3, &d), AWQ_ERR_NO_DEVICE);
    ck_assert_str_eq(awq_strerror(AWQ_ERR_TRUNCATED), "file truncated");
    ck_assert_str_eq(awq_version(), AWQ_VERSION_STRING);
    ck_assert_str_eq(awq_version(), PACKAGE_VERSION);
    ck_assert_ptr_nonnull(strstr(awq_build_info(), "cpu"));
}
END_TEST

static Suite *cpu_suite(void)
{
    Suite *s = suite_create("cpu-ops");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gemm_w4_vs_naive);
    tcase_add_test(tc, test_act_stats_exact);
    tcase_add_test(tc, test_attention_vs_naive);
    tcase_add_test(tc, test_api_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cpu_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
