/* The library's internal entry points to the device ops: each checks its arguments (shapes,
 * dtypes, that every range lies inside its buffer) and then calls the device's backend. Code in
 * src/ (the pipeline, the model runner, the benchmark) calls these, never a backend directly. */
#ifndef AWQ_CORE_OPS_H
#define AWQ_CORE_OPS_H

#include "backend.h"

/* A tensor reference from a buffer and an element offset of the given dtype. */
static inline struct awq_tref awq_ref(struct awq_buffer *b, size_t elem_off, awq_dtype t)
{
    struct awq_tref r = { b, elem_off * awq_dtype_size(t) };
    return r;
}

/* The whole of a buffer, from offset 0. */
static inline struct awq_tref awq_at(struct awq_buffer *b)
{
    struct awq_tref r = { b, 0 };
    return r;
}

int awq_op_copy(struct awq_device *dev, struct awq_tref src, struct awq_tref dst, size_t bytes);
int awq_op_zero(struct awq_device *dev, struct awq_tref dst, size_t bytes);
int awq_op_write(struct awq_device *dev, struct awq_tref dst, const void *src, size_t bytes);
int awq_op_read(struct awq_device *dev, struct awq_tref src, void *dst, size_t bytes);

int awq_op_gemm_w4(struct awq_device *dev, const struct awq_gemm_w4_args *a);
int awq_op_gemm(struct awq_device *dev, const struct awq_gemm_args *a);
int awq_op_act_stats(struct awq_device *dev, const struct awq_act_stats_args *a);
int awq_op_rmsnorm(struct awq_device *dev, const struct awq_rmsnorm_args *a);
int awq_op_rope(struct awq_device *dev, const struct awq_rope_args *a);
int awq_op_attention(struct awq_device *dev, const struct awq_attention_args *a);
int awq_op_silu_mul(struct awq_device *dev, const struct awq_silu_mul_args *a);
int awq_op_add(struct awq_device *dev, const struct awq_add_args *a);
int awq_op_embed(struct awq_device *dev, const struct awq_embed_args *a);
int awq_op_pseudo_quant(struct awq_device *dev, const struct awq_pseudo_quant_args *a);
int awq_op_clip_search(struct awq_device *dev, const struct awq_clip_search_args *a);
int awq_op_sq_err(struct awq_device *dev, const struct awq_sq_err_args *a);
int awq_op_scale_cols(struct awq_device *dev, const struct awq_scale_cols_args *a);
int awq_op_cross_entropy(struct awq_device *dev, const struct awq_cross_entropy_args *a);

/* Upload a host 4-bit weight (validated: shapes, group size, zero points < 16). */
int awq_op_w4_create(struct awq_device *dev, const struct awq_w4_host *src, struct awq_qweight **out);

#endif
