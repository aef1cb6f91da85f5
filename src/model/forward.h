/* The Llama block on a device, built only from backend ops (src/core/ops.h): linears (unquantized or
 * 4-bit), the attention and MLP sub-blocks, whole blocks with optional recording of every linear's
 * input (what calibration needs) and an optional KV cache (what generation needs). */
#ifndef AWQ_MODEL_FORWARD_H
#define AWQ_MODEL_FORWARD_H

#include "core/ops.h"
#include "model/hmodel.h"

struct awq_dlinear {
    int in, out;
    awq_buffer *w;           /* unquantized [out, in] of type wt, or NULL */
    awq_dtype wt;
    awq_qweight *q;          /* 4-bit, or NULL */
    awq_buffer *bias;        /* f32 [out] or NULL */
};

struct awq_dlayer {
    awq_buffer *ln1, *ln2;   /* f32 [hidden] */
    struct awq_dlinear lin[AWQ_LIN_COUNT];
};

/* Scratch for up to cap_T tokens. */
struct awq_fwd {
    struct awq_device *dev;
    const struct awq_model_config *cfg;
    awq_buffer *inv_freq;
    int cap_T;
    awq_buffer *xn, *q, *k, *v, *att, *g, *u, *o;
    size_t bytes;            /* device memory held by the scratch */
};

/* A KV cache of one layer: rows [cap, n_kv_heads * head_dim] each for K and V. */
struct awq_kv {
    awq_buffer *k, *v;
    int cap;
};

/* Optional recordings of a block forward (any tref may be absent). */
struct awq_block_rec {
    struct awq_tref x1;      /* input of q/k/v: input_layernorm(h)       [T, hidden] */
    struct awq_tref att;     /* input of o_proj                          [T, heads*head_dim] */
    struct awq_tref x2;      /* input of gate/up                         [T, hidden] */
    struct awq_tref act;     /* input of down_proj                       [T, intermediate] */
    struct awq_tref attn_out;/* attention sub-block output               [T, hidden] */
    struct awq_tref mlp_out; /* MLP sub-block output                     [T, hidden] */
};

int awq_fwd_init(struct awq_fwd *f, struct awq_device *dev, const struct awq_model_config *cfg, int cap_T);
void awq_fwd_free(struct awq_fwd *f);

/* Uploads a linear from fp32 host memory (stored on the device as `wt`: F32 or F16). */
int awq_dlinear_upload(struct awq_device *dev, struct awq_dlinear *l, int in, int out, const float *w,
                       const float *bias, awq_dtype wt);
/* Replaces the weight of an uploaded unquantized linear (same shape and type). */
int awq_dlinear_update(struct awq_device *dev, struct awq_dlinear *l, const float *w, const float *bias);
/* Uploads a linear from the host model: 4-bit when it is AWQ (unless dequantize), else as `wt`. */
int awq_dlinear_from_host(struct awq_device *dev, struct awq_dlinear *l, const struct awq_hlinear *h,
                          int group_size, int dequantize, awq_dtype wt);
void awq_dlinear_free(struct awq_dlinear *l);
int awq_dlayer_from_host(struct awq_device *dev, struct awq_dlayer *L, const struct awq_hmodel *m, int layer,
                         int dequantize, awq_dtype wt);
void awq_dlayer_free(struct awq_dlayer *L);
/* Uploads an fp32 vector (norm weights). */
int awq_upload_f32(struct awq_device *dev, const float *src, size_t n, awq_buffer **out);

/* y[T, out] = x[T, in] · Wᵀ + b */
int awq_linear(struct awq_fwd *f, const struct awq_dlinear *l, int T, struct awq_tref x, struct awq_tref y);
/* Attention sub-block from its normed input x: q/k/v, RoPE, attention, o_proj → out [T, hidden].
 * Without a cache: n_seq sequences of seq_len tokens, positions from 0. With a cache: one sequence
 * of seq_len new tokens at positions pos0.., its K/V appended to the cache. */
int awq_attn_sub(struct awq_fwd *f, const struct awq_dlayer *L, int n_seq, int seq_len, struct awq_tref x,
                 struct awq_tref out, const struct awq_kv *kv, int pos0, struct awq_tref rec_att);
/* MLP sub-block: down(silu(gate(x)) * up(x)) → out [T, hidden]. */
int awq_mlp_sub(struct awq_fwd *f, const struct awq_dlayer *L, int T, struct awq_tref x, struct awq_tref out,
                struct awq_tref rec_act);
/* h ← h + attn(norm1(h)); h ← h + mlp(norm2(h)), in place on h [n_seq*seq_len, hidden]. */
int awq_block_forward(struct awq_fwd *f, const struct awq_dlayer *L, int n_seq, int seq_len, struct awq_tref h,
                      const struct awq_kv *kv, int pos0, const struct awq_block_rec *rec);

#endif
