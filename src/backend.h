/*
 * The backend interface: one table of function pointers per backend (CPU, CUDA, OpenCL, Vulkan).
 *
 * Rules every backend follows:
 * - Ops enqueue work on the device's queue and return; data crosses to the host only through
 *   buf_read. A backend may run ops synchronously (the CPU backend does).
 * - Every tensor argument is a struct awq_tref: a buffer plus a byte offset. The core has already
 *   checked that every range an op touches lies inside its buffer, that dtypes are among those the
 *   op accepts, and that shapes are positive; a backend need not check them again.
 * - Row-major and contiguous everywhere. Activations are fp32 unless an op says otherwise.
 * - Errors: return a negative awq_status and describe it with awq_err_set(err, ...), where `err`
 *   is the errbuf the backend was given at init/open. Never print, never exit.
 * - No global mutable state: everything lives in the state returned by init() or open().
 * - The CPU backend is the reference: every op of every other backend is tested against it
 *   (tests/parity.c) with normalised-MSE thresholds.
 */
#ifndef AWQ_BACKEND_H
#define AWQ_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "awq.h"
#include "util/error.h"

/* ---- objects shared by the core and the backends ---------------------------------------- */

struct awq_backend_ops;

/* A device as the core sees it; `impl` is the backend's own state from open(). */
struct awq_device {
    struct awq_context *ctx;
    const struct awq_backend_ops *ops;
    int backend_slot;             /* index into the context's backend list */
    void *impl;
    struct awq_device_info info;
    struct awq_errbuf err;
    uint64_t mem_in_use, mem_peak;  /* bytes of buffers (4-bit weights: their packed size) */
};

struct awq_buffer {
    struct awq_device *dev;
    void *impl;                   /* backend handle */
    size_t size;                  /* bytes */
};

struct awq_qweight {
    struct awq_device *dev;
    void *impl;                   /* backend handle from w4_create */
    int K, N, group_size;
    size_t bytes;                 /* packed size, for memory accounting */
};

/* A tensor argument: buffer + byte offset. `buf == NULL` marks an absent optional tensor. */
struct awq_tref {
    struct awq_buffer *buf;
    size_t off;
};

/* ---- op arguments -------------------------------------------------------------------------- */

/* Host-side 4-bit weight in the AutoAWQ GEMM layout (see include/awq.h, awq_qweight_create). */
struct awq_w4_host {
    int K, N, group_size;
    const int32_t *qweight;       /* [K, N/8] */
    const int32_t *qzeros;        /* [K/G, N/8] */
    const uint16_t *scales;       /* fp16 bits [K/G, N] */
};

/* Y[M,N] = (X ⊙ act_scale) · dequant(W) + bias.  x_type, y_type ∈ {F32, F16}. */
struct awq_gemm_w4_args {
    const struct awq_qweight *w;
    int M;
    awq_dtype x_type, y_type;
    struct awq_tref x;            /* [M, K] */
    struct awq_tref y;            /* [M, N] */
    struct awq_tref bias;         /* optional f32 [N] */
    struct awq_tref act_scale;    /* optional f32 [K] */
};

/* Unquantized Y[M,N] = X[M,K] · W[N,K]ᵀ + bias (W in the Hugging Face [out, in] layout).
 * x_type, w_type, y_type ∈ {F32, F16}; accumulation in fp32 at least. */
struct awq_gemm_args {
    int M, N, K;
    awq_dtype x_type, w_type, y_type;
    struct awq_tref x, w, y;
    struct awq_tref bias;         /* optional f32 [N] */
};

/* Per input channel c of X[T,C], ADDED to the f32 [C] accumulators:
 * sum_abs[c] += Σ_t |x|, max_abs[c] = max(max_abs[c], max_t |x|), sum_sq[c] += Σ_t x².
 * x_type ∈ {F32, F16}. Any accumulator may be absent (buf == NULL). */
struct awq_act_stats_args {
    int T, C;
    awq_dtype x_type;
    struct awq_tref x;
    struct awq_tref sum_abs, max_abs, sum_sq;
};

/* y[t,c] = x[t,c] / sqrt(mean_c(x[t,:]²) + eps) * w[c].  y may equal x. */
struct awq_rmsnorm_args {
    int T, C;
    float eps;
    struct awq_tref x, w, y;
};

/* In-place rotary embedding of x [T, n_heads*head_dim], Hugging Face "rotate half" pairing:
 * (x[i], x[i + head_dim/2]) for i < head_dim/2 is rotated by angle pos * inv_freq[i].
 * Position of row t: pos0 + (t % seq_len). inv_freq: f32 [head_dim/2] (computed by the core,
 * so rope scaling variants need no backend change). */
struct awq_rope_args {
    int T, n_heads, head_dim;
    int pos0, seq_len;
    struct awq_tref x;
    struct awq_tref inv_freq;
};

/* Causal attention with grouped KV heads, for n_seq independent sequences packed one after another.
 * q, out: [n_seq*q_len, n_heads*head_dim]; k, v: [n_seq*kv_len, n_kv_heads*head_dim].
 * Query i (0-based within its sequence) attends keys j <= kv_len - q_len + i of its sequence;
 * query head h uses KV head h / (n_heads / n_kv_heads). Softmax in fp32; scores scaled by `scale`.
 * Prefill: q_len == kv_len. Decode with a KV cache: n_seq = 1, q_len = 1, kv_len = position + 1.
 * Implementations tile over keys (online softmax): never a T×T matrix per sequence in memory. */
struct awq_attention_args {
    int n_seq, q_len, kv_len;
    int n_heads, n_kv_heads, head_dim;
    float scale;
    struct awq_tref q, k, v, out;
};

/* out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).  out may equal gate or up. */
struct awq_silu_mul_args {
    size_t n;
    struct awq_tref gate, up, out;
};

/* out[i] = a[i] + b[i].  out may equal a or b. */
struct awq_add_args {
    size_t n;
    struct awq_tref a, b, out;
};

/* out[t,:] = table[ids[t],:] as f32; ids int32 [T]; table [vocab, C] of table_type ∈ {F32, F16}.
 * An id outside [0, vocab) yields a row of zeros (the core rejects such ids before upload). */
struct awq_embed_args {
    int T, C, vocab;
    awq_dtype table_type;
    struct awq_tref table, ids, out;
};

/* Pseudo-quantization of w f32 [N,K] in groups of G along K (DESIGN.md, asymmetric 4-bit):
 *   v = w[n,k] * s[k]  (s = in_scale, or 1 when absent)
 *   per group: mx = max v, mn = min v, scale = max(mx - mn, 1e-5) / 15,
 *              zero = clamp(-rint(mn / scale), 0, 15), q = clamp(rint(v / scale) + zero, 0, 15)
 *   out[n,k] = (q - zero) * scale / s[k]
 * rint = round half to even, in fp32. out may equal w. */
struct awq_pseudo_quant_args {
    int N, K, G;
    struct awq_tref w, in_scale, out;
};

#define AWQ_MAX_SHRINK 32

/* Clip search error table. For each shrink factor f = shrink[i], output channel n and group g:
 *   m = f * max_{k∈g} |w[n,k]|;  c[k] = clamp(w[n,k], -m, m);  ĉ = pseudo-quant of c (as above, s = 1)
 *   err[i, n, g] = Σ_t ( Σ_{k∈g} x[t,k] * (ĉ[k] - w[n,k]) )²
 * w f32 [N,K], x f32 [T,K] (sampled calibration tokens), err f32 [n_shrink, N, K/G]. */
struct awq_clip_search_args {
    int N, K, G, T;
    int n_shrink;
    float shrink[AWQ_MAX_SHRINK];
    struct awq_tref w, x, err;
};

/* out[0] (f32) = Σ_i (a[i] - b[i])², accumulated in at least fp32 with a fixed order. */
struct awq_sq_err_args {
    size_t n;
    struct awq_tref a, b, out;
};

/* In place: x[t,c] *= s[c]   (or x[t,c] /= s[c] when divide != 0).  x f32 [T,C], s f32 [C]. */
struct awq_scale_cols_args {
    int T, C, divide;
    struct awq_tref x, s;
};

/* nll[t] = logsumexp(logits[t,:]) - logits[t, targets[t]];  logits f32 [T,V], targets int32 [T]. */
struct awq_cross_entropy_args {
    int T, V;
    struct awq_tref logits, targets, nll;
};

/* ---- the table ---------------------------------------------------------------------------- */

struct awq_backend_ops {
    const char *name;                                     /* "cpu", "cuda", "opencl", "vulkan" */

    /* Discovery. init loads the runtime and enumerates devices into *state (one per context);
     * on failure it returns a negative status and says why in err (e.g. "no OpenCL platform"). */
    int  (*init)(void **state, struct awq_errbuf *err);
    void (*fini)(void *state);
    int  (*device_count)(void *state);
    int  (*device_info)(void *state, int index, struct awq_device_info *out);
    /* Index of the device to use when the caller names none (a GPU before a CPU). */
    int  (*preferred_device)(void *state);

    /* A device queue. `err` belongs to the core's awq_device and outlives the queue. */
    int  (*open)(void *state, int index, const awq_context_options *opt, struct awq_errbuf *err,
                 void **dev);
    void (*close)(void *dev);
    int  (*synchronize)(void *dev);

    /* Memory. buf_read waits for queued work; buf_write may return before the copy lands only if
     * it has copied `src` already. */
    int  (*buf_alloc)(void *dev, size_t bytes, void **buf);
    void (*buf_free)(void *dev, void *buf);
    int  (*buf_write)(void *dev, void *buf, size_t off, const void *src, size_t n);
    int  (*buf_read)(void *dev, void *buf, size_t off, void *dst, size_t n);
    int  (*buf_copy)(void *dev, void *src, size_t src_off, void *dst, size_t dst_off, size_t n);
    int  (*buf_zero)(void *dev, void *buf, size_t off, size_t n);

    /* 4-bit weights: upload (and repack) / free. */
    int  (*w4_create)(void *dev, const struct awq_w4_host *src, void **w);
    void (*w4_free)(void *dev, void *w);

    /* Compute. */
    int (*gemm_w4)(void *dev, const struct awq_gemm_w4_args *a);
    int (*gemm)(void *dev, const struct awq_gemm_args *a);
    int (*act_stats)(void *dev, const struct awq_act_stats_args *a);
    int (*rmsnorm)(void *dev, const struct awq_rmsnorm_args *a);
    int (*rope)(void *dev, const struct awq_rope_args *a);
    int (*attention)(void *dev, const struct awq_attention_args *a);
    int (*silu_mul)(void *dev, const struct awq_silu_mul_args *a);
    int (*add)(void *dev, const struct awq_add_args *a);
    int (*embed)(void *dev, const struct awq_embed_args *a);
    int (*pseudo_quant)(void *dev, const struct awq_pseudo_quant_args *a);
    int (*clip_search)(void *dev, const struct awq_clip_search_args *a);
    int (*sq_err)(void *dev, const struct awq_sq_err_args *a);
    int (*scale_cols)(void *dev, const struct awq_scale_cols_args *a);
    int (*cross_entropy)(void *dev, const struct awq_cross_entropy_args *a);
};

/* Backend handle of a tensor reference (NULL for an absent optional tensor). */
static inline void *awq_tref_impl(struct awq_tref r) { return r.buf ? r.buf->impl : NULL; }

/* The tables compiled in (backends/<name>/…); the registry lists them in preference order. */
extern const struct awq_backend_ops awq_backend_cpu;
#ifdef AWQ_HAVE_CUDA
extern const struct awq_backend_ops awq_backend_cuda;
#endif
#ifdef AWQ_HAVE_OPENCL
extern const struct awq_backend_ops awq_backend_opencl;
#endif
#ifdef AWQ_HAVE_VULKAN
extern const struct awq_backend_ops awq_backend_vulkan;
#endif

#endif /* AWQ_BACKEND_H */
