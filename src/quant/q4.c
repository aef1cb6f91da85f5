#include "config.h"

#include "quant/q4.h"
#include "util/half.h"
#include "util/parallel.h"

const int AWQ_PACK_ORDER[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
const int AWQ_PACK_SLOT[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };

static void group_minmax(const float *w, const float *s, int n, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        float v = s ? w[i] * s[i] : w[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *mn = lo;
    *mx = hi;
}

void awq_q4_pseudo_row(const float *w, const float *s, int K, int G, float *out)
{
    for (int g0 = 0; g0 < K; g0 += G) {
        const float *sg = s ? s + g0 : NULL;
        float mn, mx;
        group_minmax(w + g0, sg, G, &mn, &mx);
        float scale = awq_q4_scale(mn, mx), zero = awq_q4_zero(mn, scale);
        for (int i = 0; i < G; i++) {
            float v = sg ? w[g0 + i] * sg[i] : w[g0 + i];
            float d = (awq_q4_code(v, scale, zero) - zero) * scale;
            out[g0 + i] = sg ? d / sg[i] : d;
        }
    }
}

struct quant_job {
    const float *w;
    int K, G, scale_f16;
    uint8_t *q, *zeros;
    float *scales;
};

static void quantize_rows(void *arg, size_t n0, size_t n1)
{
    const struct quant_job *j = arg;
    int K = j->K, G = j->G, ng = K / G;
    for (size_t n = n0; n < n1; n++) {
        for (int g = 0; g < ng; g++) {
            const float *wg = j->w + n * (size_t)K + (size_t)g * G;
            float mn, mx;
            group_minmax(wg, NULL, G, &mn, &mx);
            float scale = awq_q4_scale(mn, mx);
            if (j->scale_f16)
                scale = awq_f16_to_f32(awq_f32_to_f16(scale));
            float zero = awq_q4_zero(mn, scale);
            j->scales[n * (size_t)ng + (size_t)g] = scale;
            j->zeros[n * (size_t)ng + (size_t)g] = (uint8_t)zero;
            uint8_t *qg = j->q + n * (size_t)K + (size_t)g * G;
            for (int i = 0; i < G; i++)
                qg[i] = (uint8_t)awq_q4_code(wg[i], scale, zero);
        }
    }
}

void awq_q4_quantize(const float *w, int N, int K, int G, int scale_f16, uint8_t *q, float *scales,
                     uint8_t *zeros)
{
    struct quant_job j = { w, K, G, scale_f16, q, zeros, scales };
    awq_parallel_for((size_t)N, 64, quantize_rows, &j);
}

void awq_q4_dequantize(const uint8_t *q, const float *scales, const uint8_t *zeros, int N, int K,
                       int G, float *w)
{
    int ng = K / G;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            size_t gi = (size_t)n * ng + (size_t)(k / G);
            w[(size_t)n * K + k] = ((float)q[(size_t)n * K + k] - (float)zeros[gi]) * scales[gi];
        }
}

/* Packs 8 codes for columns 8j..8j+7 (given in column order) into one AutoAWQ word. */
static int32_t pack8(const uint8_t c[8])
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint32_t)(c[AWQ_PACK_ORDER[i]] & 15u) << (4 * i);
    return (int32_t)v;
}

static void unpack8(int32_t word, uint8_t c[8])
{
    uint32_t v = (uint32_t)word;
    for (int i = 0; i < 8; i++)
        c[AWQ_PACK_ORDER[i]] = (uint8_t)((v >> (4 * i)) & 15u);
}

void awq_gemm_pack(const uint8_t *q, const float *scales, const uint8_t *zeros, int N, int K, int G,
                   int32_t *qweight, int32_t *qzeros, uint16_t *scales_f16)
{
    int ng = K / G, nw = N / 8;
    uint8_t c[8];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < nw; j++) {
            for (int i = 0; i < 8; i++)
                c[i] = q[(size_t)(8 * j + i) * K + k];
            qweight[(size_t)k * nw + j] = pack8(c);
        }
    for (int g = 0; g < ng; g++) {
        for (int j = 0; j < nw; j++) {
            for (int i = 0; i < 8; i++)
                c[i] = zeros[(size_t)(8 * j + i) * ng + g];
            qzeros[(size_t)g * nw + j] = pack8(c);
        }
        for (int n = 0; n < N; n++)
            scales_f16[(size_t)g * N + n] = awq_f32_to_f16(scales[(size_t)n * ng + g]);
    }
}

void awq_gemm_unpack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales_f16, int N,
                     int K, int G, uint8_t *q, float *scales, uint8_t *zeros)
{
    int ng = K / G, nw = N / 8;
    uint8_t c[8];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < nw; j++) {
            unpack8(qweight[(size_t)k * nw + j], c);
            for (int i = 0; i < 8; i++)
                q[(size_t)(8 * j + i) * K + k] = c[i];
        }
    for (int g = 0; g < ng; g++) {
        for (int j = 0; j < nw; j++) {
            unpack8(qzeros[(size_t)g * nw + j], c);
            for (int i = 0; i < 8; i++)
                zeros[(size_t)(8 * j + i) * ng + g] = c[i];
        }
        for (int n = 0; n < N; n++)
            scales[(size_t)n * ng + g] = awq_f16_to_f32(scales_f16[(size_t)g * N + n]);
    }
}
