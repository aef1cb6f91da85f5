/* Shared by the CUDA backend's files (CUDA C++, compiled by nvcc): the device state, error
 * helpers, scratch memory and the entry points each file provides to the ops table. */
#ifndef AWQ_CUDA_INTERNAL_H
#define AWQ_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}

/* Device-owned scratch buffers, grown on demand. Ops on one device run in stream order, so one op
 * may reuse what the previous one left; within one op each slot has one use. */
enum cu_scratch_slot {
    CU_SCR_W16,       /* fp16 weights: converted W of gemm, dequantized W of gemm_w4 (large M) */
    CU_SCR_X16,       /* fp16 activations / gemm_w4 fragment-ordered X */
    CU_SCR_F32,       /* fp32 product before conversion to fp16 (TF32 gemm with fp16 Y) */
    CU_SCR_PART,      /* split reductions: gemm_w4 split-K partials, act_stats and sq_err partials */
    CU_SCR_COUNTERS,  /* zero-initialised arrival counters of "last block reduces" kernels */
    CU_SCR_COPY,      /* bounce buffer of an overlapping buf_copy */
    CU_SCR_COUNT
};

struct cu_scratch {
    void *p;
    size_t size;
};

struct cu_dev {
    int index;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;
    struct awq_errbuf *err;
    int sms;                      /* streaming multiprocessors (grid sizing) */
    int cc;                       /* compute capability, 10 * major + minor */
    int w4_cublas_min_m;          /* gemm_w4 rows from which dequantize + cuBLAS is used */
    int w4_depth;                 /* fused gemm_w4 copy ring, 4, 6 or 8 k-blocks (0: by m-tiles) */
    int w4_pdl;                   /* fused gemm_w4: programmatic dependent launch (sm_90+) */
    int w4_chunk_mb;              /* dequantize + cuBLAS: MiB of fp16 weights per column chunk (0: cap) */
    int w4_xsmem;                 /* fused gemm_w4, two m-tiles: X staged in shared memory */
    int w4_occupancy[24];         /* resident CTAs per SM of each fused gemm_w4 kernel (0: unknown) */
    int sync_debug;               /* AWQ_CUDA_SYNC=1: wait after every kernel, name the one that fails */
    struct cu_scratch scr[CU_SCR_COUNT];
};

/* Records a CUDA runtime failure of `what` inside op `op` (clears the runtime's non-sticky error
 * state) and returns the matching awq status: device memory, no device, or backend error. */
int cu_fail(struct cu_dev *d, cudaError_t e, const char *op, const char *what);
/* The same for a cuBLAS status. */
int cu_blas_fail(struct cu_dev *d, cublasStatus_t s, const char *op, const char *what);

#define CU_TRY(d, op, call)                                  \
    do {                                                     \
        cudaError_t e_ = (call);                             \
        if (e_ != cudaSuccess)                               \
            return cu_fail((d), e_, (op), #call);            \
    } while (0)

/* After a kernel launch: reports a bad launch configuration (or an earlier asynchronous fault);
 * in sync-debug mode also waits for the kernel, so a fault is pinned on the kernel that made it. */
#define CU_LAUNCHED(d, op, kernel)                                            \
    do {                                                                      \
        cudaError_t e_ = cudaGetLastError();                                  \
        if (e_ != cudaSuccess)                                                \
            return cu_fail((d), e_, (op), "launch of " kernel);               \
        if ((d)->sync_debug && (e_ = cudaStreamSynchronize((d)->stream)) != cudaSuccess) \
            return cu_fail((d), e_, (op), "kernel " kernel);                  \
    } while (0)

#define CU_BLAS_TRY(d, op, call)                             \
    do {                                                     \
        cublasStatus_t s_ = (call);                          \
        if (s_ != CUBLAS_STATUS_SUCCESS)                     \
            return cu_blas_fail((d), s_, (op), #call);       \
    } while (0)

#define CU_STATUS_TRY(x)   \
    do {                   \
        int st_ = (x);     \
        if (st_ < 0)       \
            return st_;    \
    } while (0)

/* Makes the device current for the calling thread (every op starts with it). */
int cu_begin(struct cu_dev *d, const char *op);
/* Scratch slot of at least `bytes` bytes; *out receives its address. A slot that grows waits for
 * the queued work first. The counters slot comes back zeroed when it grows. */
int cu_scratch(struct cu_dev *d, enum cu_scratch_slot slot, size_t bytes, const char *op, void **out);

/* Kernels load elements at their natural alignment: a tensor whose byte offset breaks it is
 * rejected (AWQ_ERR_INVALID_ARGUMENT) instead of faulting on the device. Absent tensors pass. */
int cu_check_align(struct cu_dev *d, const char *op, const char *name, struct awq_tref r, size_t align);

/* Device address of a tensor reference (NULL for an absent optional tensor). */
static inline void *cu_ptr(struct awq_tref r)
{
    return r.buf ? (char *)r.buf->impl + r.off : NULL;
}

static inline unsigned cu_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 0x7fffffffu ? 0x7fffffffu : b);
}

/* ---- device helpers ------------------------------------------------------------------------ */

__device__ __forceinline__ float cu_load_f(const float *p, size_t i)
{
    return p[i];
}
__device__ __forceinline__ float cu_load_f(const __half *p, size_t i)
{
    return __half2float(p[i]);
}
__device__ __forceinline__ void cu_store_f(float *p, size_t i, float v)
{
    p[i] = v;
}
__device__ __forceinline__ void cu_store_f(__half *p, size_t i, float v)
{
    p[i] = __float2half_rn(v);
}

/* Fixed-order warp reductions (butterfly): every lane gets the result. */
__device__ __forceinline__ float cu_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double cu_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float cu_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float cu_warp_min(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Fixed-order block reductions for 1-D blocks of a multiple of 32 threads (every thread gets the
 * result). `sh` is shared memory for 32 values; consecutive calls may reuse it. */
__device__ __forceinline__ double cu_block_sum(double v, double *sh)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_sum(v);
    __syncthreads();
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    return cu_warp_sum(lane < nw ? sh[lane] : 0.0);
}
__device__ __forceinline__ float cu_block_max(float v, float *sh)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_max(v);
    __syncthreads();
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    return cu_warp_max(lane < nw ? sh[lane] : -INFINITY);
}

/* ---- helpers shared between files (cuda_gemm.cu) ------------------------------------------ */

/* dst fp16 [rows, cols] = src (F32 or F16) [rows, cols] ⊙ col_scale (optional fp32 [cols]). */
int cu_to_f16(struct cu_dev *d, const char *op, awq_dtype src_type, const void *src,
              const float *col_scale, __half *dst, size_t rows, size_t cols);
/* y[m * ldy + n] (type y_type, m < M, n < N) = Σ_k x16[m, k] · w16[n, k] + bias[n] on cuBLAS:
 * fp16 operands, fp32 accumulation; bias optional (fp32 [N]). */
int cu_gemm_f16(struct cu_dev *d, const char *op, int M, int N, int K, const __half *w16,
                const __half *x16, void *y, int ldy, awq_dtype y_type, const float *bias);

/* ---- ops, one file each area ------------------------------------------------------------- */

extern "C" {
int cu_w4_create(void *dev, const struct awq_w4_host *src, void **w);
void cu_w4_free(void *dev, void *w);
int cu_gemm_w4(void *dev, const struct awq_gemm_w4_args *a);
int cu_gemm(void *dev, const struct awq_gemm_args *a);

int cu_rmsnorm(void *dev, const struct awq_rmsnorm_args *a);
int cu_rope(void *dev, const struct awq_rope_args *a);
int cu_attention(void *dev, const struct awq_attention_args *a);
int cu_silu_mul(void *dev, const struct awq_silu_mul_args *a);
int cu_add(void *dev, const struct awq_add_args *a);
int cu_embed(void *dev, const struct awq_embed_args *a);
int cu_cross_entropy(void *dev, const struct awq_cross_entropy_args *a);

int cu_act_stats(void *dev, const struct awq_act_stats_args *a);
int cu_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a);
int cu_clip_search(void *dev, const struct awq_clip_search_args *a);
int cu_sq_err(void *dev, const struct awq_sq_err_args *a);
int cu_scale_cols(void *dev, const struct awq_scale_cols_args *a);
}

#endif
