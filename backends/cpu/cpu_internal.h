/* Shared by the CPU backend's files: the device state and helpers to reach buffer memory. */
#ifndef AWQ_CPU_INTERNAL_H
#define AWQ_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cpu_pool.h"

struct cpu_dev {
    struct cpu_pool *pool;
    struct awq_errbuf *err;
};

/* A 4-bit weight repacked for the CPU kernels (layout in cpu_gemm.c), N padded to Np, a multiple
 * of 64; per group and column the fp32 scale and scale * zero, so that w = q * scale - scale_zero. */
struct cpu_w4 {
    int K, N, Np, G;
    uint32_t *q;          /* [Np/64, K, 8] */
    float *scale;         /* [K/G, Np] */
    float *scale_zero;    /* [K/G, Np] */
};

/* Host pointer of a tensor reference (NULL when absent). */
static inline void *cpu_ptr(struct awq_tref r)
{
    return r.buf ? (char *)r.buf->impl + r.off : NULL;
}

/* Converts n values of type t (F32 or F16) to fp32. */
void cpu_to_f32(awq_dtype t, const void *src, float *dst, size_t n);
/* Stores n fp32 values as type t (F32 or F16). */
void cpu_from_f32(awq_dtype t, const float *src, void *dst, size_t n);

int cpu_gemm_w4(void *dev, const struct awq_gemm_w4_args *a);
int cpu_gemm(void *dev, const struct awq_gemm_args *a);
int cpu_w4_create(void *dev, const struct awq_w4_host *src, void **w);
void cpu_w4_free(void *dev, void *w);

int cpu_rmsnorm(void *dev, const struct awq_rmsnorm_args *a);
int cpu_rope(void *dev, const struct awq_rope_args *a);
int cpu_attention(void *dev, const struct awq_attention_args *a);
int cpu_silu_mul(void *dev, const struct awq_silu_mul_args *a);
int cpu_add(void *dev, const struct awq_add_args *a);
int cpu_embed(void *dev, const struct awq_embed_args *a);
int cpu_cross_entropy(void *dev, const struct awq_cross_entropy_args *a);

int cpu_act_stats(void *dev, const struct awq_act_stats_args *a);
int cpu_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a);
int cpu_clip_search(void *dev, const struct awq_clip_search_args *a);
int cpu_sq_err(void *dev, const struct awq_sq_err_args *a);
int cpu_scale_cols(void *dev, const struct awq_scale_cols_args *a);

/* Splits [0, n) into about `per_thread` chunks per worker; returns the chunk count and size. */
size_t cpu_chunks(const struct cpu_dev *d, size_t n, size_t min_chunk, size_t *chunk);

#endif
