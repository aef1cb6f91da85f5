/* Quantization core: the formulas of DESIGN.md on hand-computed vectors, AutoAWQ packing against
 * hand-packed words, round trips, and the fp16/bf16 conversions. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/q4.h"
#include "testutil.h"
#include "util/half.h"

START_TEST(test_half_known_values)
{
    ck_assert_uint_eq(awq_f32_to_f16(1.0f), 0x3C00);
    ck_assert_uint_eq(awq_f32_to_f16(-2.0f), 0xC000);
    ck_assert_uint_eq(awq_f32_to_f16(0.1f), 0x2E66);
    ck_assert_uint_eq(awq_f32_to_f16(65504.0f), 0x7BFF);
    ck_assert_uint_eq(awq_f32_to_f16(65520.0f), 0x7C00);        /* rounds up to infinity */
    ck_assert_uint_eq(awq_f32_to_f16(5.9604645e-8f), 0x0001);   /* smallest subnormal */
    ck_assert_uint_eq(awq_f32_to_f16(2.9802322e-8f), 0x0000);   /* exactly half of it: ties to even */
    ck_assert_uint_eq(awq_f32_to_f16(1.0f + 1.0f / 2048), 0x3C00); /* tie between 0x3C00 and 0x3C01 */
    ck_assert_uint_eq(awq_f32_to_f16(1.0f + 3.0f / 2048), 0x3C02); /* tie rounds to the even 0x3C02 */
    ck_assert(isnan(awq_f16_to_f32(awq_f32_to_f16(NAN))));
    ck_assert(awq_f16_to_f32(0x0001) == 5.9604645e-8f);
    ck_assert(awq_f16_to_f32(0x7BFF) == 65504.0f);
    ck_assert(awq_f16_to_f32(0x3555) == 0.33325195f);
    ck_assert_uint_eq(awq_f32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(awq_f32_to_bf16(0.1f), 0x3DCD);
    ck_assert(awq_bf16_to_f32(0x3DCD) == 0.10009765625f);
    /* every fp16 value survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF))
            continue;
        ck_assert_uint_eq(awq_f32_to_f16(awq_f16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

START_TEST(test_group_formula_hand_vectors)
{
    /* w[i] = (i - 10) / 10: min -1.0, max 2.1, scale 3.1/15, zero = -rint(-1/0.20667) = 5 */
    float w[32], out[32];
    for (int i = 0; i < 32; i++)
        w[i] = (float)(i - 10) / 10.0f;
    uint8_t q[32], z;
    float s;
    awq_q4_quantize(w, 1, 32, 32, 0, q, &s, &z);
    ck_assert_float_eq_tol(s, 3.1f / 15.0f, 1e-7f);
    ck_assert_uint_eq(z, 5);
    ck_assert_uint_eq(q[0], 0);    /* -1.0 / 0.2067 = -4.84 -> -5, + 5 */
    ck_assert_uint_eq(q[10], 5);   /* 0 */
    ck_assert_uint_eq(q[15], 7);   /* 0.5 / 0.2067 = 2.42 -> 2 */
    ck_assert_uint_eq(q[31], 15);  /* 2.1 / 0.2067 = 10.16 -> 10, + 5 */
    ck_assert_uint_eq(q[13], 6);   /* 0.3 / 0.2067 = 1.45 -> 1 */
    awq_q4_pseudo_row(w, NULL, 32, 32, out);
    ck_assert_float_eq_tol(out[15], 2.0f * 3.1f / 15.0f, 1e-6f);
    ck_assert_float_eq_tol(out[0], -5.0f * 3.1f / 15.0f, 1e-6f);

    /* round half to even: min 0, max 15 -> scale 1, zero 0; 2.5 -> 2, 3.5 -> 4, 4.5 -> 4 */
    float h[32] = { 0, 15, 2.5f, 3.5f, 4.5f, 5.5f, 0.5f, 14.5f };
    awq_q4_quantize(h, 1, 32, 32, 0, q, &s, &z);
    ck_assert(s == 1.0f);
    ck_assert_uint_eq(z, 0);
    ck_assert_uint_eq(q[2], 2);
    ck_assert_uint_eq(q[3], 4);
    ck_assert_uint_eq(q[4], 4);
    ck_assert_uint_eq(q[5], 6);
    ck_assert_uint_eq(q[6], 0);
    ck_assert_uint_eq(q[7], 14);

    /* a constant group: range floors at 1e-5, zero clamps to 0, codes clamp to 15 */
    float c[32];
    for (int i = 0; i < 32; i++)
        c[i] = 0.3f;
    awq_q4_quantize(c, 1, 32, 32, 0, q, &s, &z);
    ck_assert_float_eq_tol(s, 1e-5f / 15.0f, 1e-12f);
    ck_assert_uint_eq(z, 0);
    ck_assert_uint_eq(q[0], 15);

    /* all negative: zero clamps at 15 */
    float n[32];
    for (int i = 0; i < 32; i++)
        n[i] = -1.0f - (float)i / 31.0f;   /* min -2, max -1: zero = -rint(-2 / (1/15)) = 30 -> 15 */
    awq_q4_quantize(n, 1, 32, 32, 0, q, &s, &z);
    ck_assert_uint_eq(z, 15);
    ck_assert_uint_eq(q[0], 0);            /* rint(-15) + 15 = 0 */
}
END_TEST

START_TEST(test_scale_f16_rounding)
{
    uint64_t rng = tu_seed();
    float w[4 * 64];
    tu_fill_normal(&rng, w, 4 * 64, 0.05f);
    uint8_t q[4 * 64], z[8];
    float s[8];
    awq_q4_quantize(w, 4, 64, 32, 1, q, s, z);
    for (int i = 0; i < 8; i++)
        ck_assert(awq_f16_to_f32(awq_f32_to_f16(s[i])) == s[i]);
}
END_TEST

START_TEST(test_pack_hand_vector)
{
    /* N = 8 columns, K = 32, G = 32: q[n][k] = (n + k) % 16, zeros[n] = 15 - n */
    uint8_t q[8 * 32], z[8];
    float s[8];
    for (int n = 0; n < 8; n++) {
        for (int k = 0; k < 32; k++)
            q[n * 32 + k] = (uint8_t)((n + k) % 16);
        z[n] = (uint8_t)(15 - n);
        s[n] = 0.5f + (float)n;
    }
    int32_t qw[32], qz[1];
    uint16_t sc[8];
    awq_gemm_pack(q, s, z, 8, 32, 32, qw, qz, sc);
    /* nibble i holds column order[i] = {0,2,4,6,1,3,5,7}: for k = 0 the codes are the columns */
    ck_assert_uint_eq((uint32_t)qw[0], 0x75316420u);
    ck_assert_uint_eq((uint32_t)qw[1], 0x86427531u);   /* k = 1: codes n + 1 */
    ck_assert_uint_eq((uint32_t)qw[15], 0x6420531Fu);  /* k = 15: codes (n + 15) % 16 */
    ck_assert_uint_eq((uint32_t)qz[0], 0x8ACE9BDFu);   /* zeros 15 - order[i] */
    ck_assert_uint_eq(sc[0], 0x3800);                  /* 0.5 */
    ck_assert_uint_eq(sc[7], awq_f32_to_f16(7.5f));

    uint8_t q2[8 * 32], z2[8];
    float s2[8];
    awq_gemm_unpack(qw, qz, sc, 8, 32, 32, q2, s2, z2);
    ck_assert_mem_eq(q, q2, sizeof q);
    ck_assert_mem_eq(z, z2, sizeof z);
    for (int n = 0; n < 8; n++)
        ck_assert(s2[n] == s[n]);
}
END_TEST

START_TEST(test_quantize_pack_roundtrip)
{
    uint64_t rng = tu_seed();
    static const int shapes[][3] = { { 8, 128, 32 }, { 24, 384, 64 }, { 40, 256, 128 } };
    for (int c = 0; c < 3; c++) {
        int N = shapes[c][0], K = shapes[c][1], G = shapes[c][2], ng = K / G;
        float *w = malloc((size_t)N * K * 4), *d = malloc((size_t)N * K * 4), *s = malloc((size_t)N * ng * 4),
              *s2 = malloc((size_t)N * ng * 4);
        uint8_t *q = malloc((size_t)N * K), *q2 = malloc((size_t)N * K), *z = malloc((size_t)N * ng),
                *z2 = malloc((size_t)N * ng);
        int32_t *qw = malloc((size_t)K * N / 2), *qz = malloc((size_t)ng * N / 2);
        uint16_t *sc = malloc((size_t)ng * N * 2);
        tu_fill_normal(&rng, w, (size_t)N * K, 0.02f);
        awq_q4_quantize(w, N, K, G, 1, q, s, z);
        awq_gemm_pack(q, s, z, N, K, G, qw, qz, sc);
        awq_gemm_unpack(qw, qz, sc, N, K, G, q2, s2, z2);
        ck_assert_mem_eq(q, q2, (size_t)N * K);
        ck_assert_mem_eq(z, z2, (size_t)N * ng);
        ck_assert_mem_eq(s, s2, (size_t)N * ng * 4);
        /* dequantized error is at most half a step per element */
        awq_q4_dequantize(q, s, z, N, K, G, d);
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                float step = s[n * ng + k / G];
                ck_assert_float_le(fabsf(d[(size_t)n * K + k] - w[(size_t)n * K + k]), 0.5f * step * 1.01f);
            }
        free(w); free(d); free(s); free(s2); free(q); free(q2); free(z); free(z2);
        free(qw); free(qz); free(sc);
    }
}
END_TEST

START_TEST(test_pseudo_row_with_scale)
{
    /* with an input scale s, pseudo-quant is quant(w * s) / s */
    uint64_t rng = tu_seed();
    float w[64], s[64], ws[64], a[64], b[64];
    tu_fill_normal(&rng, w, 64, 0.1f);
    tu_fill_uniform(&rng, s, 64, 0.5f, 4.0f);
    for (int i = 0; i < 64; i++)
        ws[i] = w[i] * s[i];
    awq_q4_pseudo_row(w, s, 64, 32, a);
    awq_q4_pseudo_row(ws, NULL, 64, 32, b);
    for (int i = 0; i < 64; i++)
        ck_assert_float_eq_tol(a[i], b[i] / s[i], 1e-6f);
}
END_TEST

static Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_half_known_values);
    tcase_add_test(tc, test_group_formula_hand_vectors);
    tcase_add_test(tc, test_scale_f16_rounding);
    tcase_add_test(tc, test_pack_hand_vector);
    tcase_add_test(tc, test_quantize_pack_roundtrip);
    tcase_add_test(tc, test_pseudo_row_with_scale);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(quant_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
