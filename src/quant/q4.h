/* Asymmetric 4-bit group quantization (DESIGN.md, "Quantize") and the AutoAWQ "GEMM" packing.
 *
 * Weights are [N, K] row-major (Hugging Face [out, in]); groups are G consecutive input channels
 * of one output row. Group parameters:
 *   scale = max(max - min, 1e-5) / 15,  zero = clamp(-rint(min / scale), 0, 15)
 *   q = clamp(rint(w / scale) + zero, 0, 15),  dequant = (q - zero) * scale
 * with rint = round half to even, all in fp32. */
#ifndef AWQ_QUANT_Q4_H
#define AWQ_QUANT_Q4_H

#include <math.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nibble i of a packed int32 holds column 8j + AWQ_PACK_ORDER[i]. */
extern const int AWQ_PACK_ORDER[8];
/* Inverse: column 8j + c sits in nibble AWQ_PACK_SLOT[c]. */
extern const int AWQ_PACK_SLOT[8];

static inline float awq_q4_clamp15(float v)
{
    return v < 0.0f ? 0.0f : (v > 15.0f ? 15.0f : v);
}

static inline float awq_q4_scale(float mn, float mx)
{
    float r = mx - mn;
    return (r > 1e-5f ? r : 1e-5f) / 15.0f;
}

static inline float awq_q4_zero(float mn, float scale)
{
    return awq_q4_clamp15(-rintf(mn / scale));
}

static inline float awq_q4_code(float v, float scale, float zero)
{
    return awq_q4_clamp15(rintf(v / scale) + zero);
}

/* Pseudo-quantizes one row of K values in groups of G: out = dequant(quant(w * s)) / s
 * (s may be NULL for 1). out may equal w. */
void awq_q4_pseudo_row(const float *w, const float *s, int K, int G, float *out);

/* Quantizes w [N,K]: q [N*K] codes, scales [N*K/G], zeros [N*K/G].
 * With scale_f16 != 0 each scale is rounded to fp16 first and the codes computed with the rounded
 * scale, which is what a checkpoint stores (so the file dequantizes to exactly these numbers). */
void awq_q4_quantize(const float *w, int N, int K, int G, int scale_f16, uint8_t *q, float *scales,
                     uint8_t *zeros);
/* w [N,K] = (q - zero) * scale. */
void awq_q4_dequantize(const uint8_t *q, const float *scales, const uint8_t *zeros, int N, int K,
                       int G, float *w);

/* Packs codes into the AutoAWQ GEMM tensors: qweight int32 [K, N/8], qzeros int32 [K/G, N/8],
 * scales fp16 bits [K/G, N]. N must be a multiple of 8 and K of G. */
void awq_gemm_pack(const uint8_t *q, const float *scales, const uint8_t *zeros, int N, int K, int G,
                   int32_t *qweight, int32_t *qzeros, uint16_t *scales_f16);
/* The inverse: codes q [N*K], scales f32 [N*K/G], zeros [N*K/G]. */
void awq_gemm_unpack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales_f16, int N,
                     int K, int G, uint8_t *q, float *scales, uint8_t *zeros);

#ifdef __cplusplus
}
#endif
#endif
