/* 4-bit weights on CUDA: upload + repack (w4_create), and gemm_w4.
 *
 * Repacked layout (built on the device at w4_create). The output columns are cut into tiles of
 * 16 (N padded up, and the tile count up to even) and the input channels into blocks of 64 (K
 * padded up with zero weights). One tile x block is 512 bytes: 32 lanes x one uint4, and the
 * uint4 of lane (g = lane / 4, t = lane % 4) holds the 32 codes that lane needs as A operands of
 * the block's four mma.m16n8k16 (A = 16 columns x 16 k). Inside a block the products may take
 * the k in any order, as long as X (the B operand) follows the same order: the order chosen
 * gives lane t the 16 consecutive k = 16t .. 16t + 15, so its B fragments are 32 contiguous bytes
 * of a row of X (two 16-byte loads, straight from X), and its quantization group is the same for
 * the whole block. Component c (0..3) of the uint4 feeds the c-th product:
 *     nibble j     (j = 0..3): column g + 8 (j & 1), k = 16t + 4c + 2 (j >> 1)
 *     nibble j + 4           : the same column, k + 1
 * A register 0 is `word & 0x000F000F | 0x64006400` = f16x2 (1024 + q, 1024 + q'), exact; minus
 * (1024 + zero) gives q - zero, exact. Register 1 is `word & 0x00F000F0 | 0x64006400` = 1024 +
 * 16q, and one fma (x 1/16 - (64 + zero)) gives q - zero exactly; registers 2 and 3 are the same
 * on word >> 8. Times the fp16 scale (rounded once) that is the dequantized weight in fp16.
 *     q  [NTILES/2][KB][2][32] uint4  a warp's two tiles stream through 1 KiB contiguous per block
 *     sc [NTILES][NGP][8] u32         half2(scale[col g], scale[col g + 8]) of group grp
 *     zp [NTILES][NGP][8] u8          zero[col g] | zero[col g + 8] << 4
 * NGP = KB * 64 / G groups (the padding group, if any, has scale 0).
 *
 * gemm_w4, M < w4_cublas_min_m (decode and small batches): one fused kernel, bound by the
 * weight stream. A CTA of 4 warps owns 128 output columns (a pair of tiles per warp), a k-range
 * (split K when the columns alone do not fill the resident CTA slots) and 8 * MT rows of X (MT =
 * 1 for M <= 8, else 2; larger M runs several row chunks as blockIdx.x, adjacent so that they
 * share each weight tile through L2). Each lane streams its weights, scales and zeros through a
 * private ring of D k-blocks in shared memory with cp.async (no register cost, no
 * synchronisation: every lane reads back only what it copied), so D - 1 blocks are always in
 * flight; X is loaded a block ahead into registers (it comes from L1/L2), so no load of the loop
 * is waited for early. With G >= 64 the products take A = q - zero (exact small integers in
 * fp16, 9 integer/half2 instructions per 32 codes) and each group's sums are scaled in fp32, as
 * the CPU backend does; with G = 32 A is the fp16 dequantized weight (13 instructions). The
 * products run on tensor cores (fp16 x fp16, fp32 accumulation). Split-K partials go to scratch;
 * the last CTA of each output tile (arrival counter) adds them in split order, so the result does
 * not depend on timing. X in fp32 is converted in the kernel when M <= 8; otherwise, or when
 * act_scale is given or X is not 16-byte aligned, a small kernel first writes X (x act_scale) as
 * fp16. On sm_90 the kernel is launched as a programmatic dependent: it lets the next kernel of
 * the stream launch at once, and waits for the kernels before it only after it has queued its
 * first weight copies, so back-to-back launches overlap one kernel's tail (split-K reduction,
 * drain) with the next one's start (measured on the H100: 18.3 -> 15.0 us on 4096 x 11008, 57.5 ->
 * 54.1 us on 8192 x 28672 at M = 1). AWQ_CUDA_W4_PDL=0 turns it off.
 *
 * gemm_w4, M >= w4_cublas_min_m (prefill, calibration): dequantize to an fp16 [N, K] scratch
 * (in column chunks when large; AWQ_CUDA_W4_CHUNK_MB sets their size) and call cuBLAS with fp16
 * X. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define W4_WARPS 4                          /* warps per CTA */
#define W4_NT 2                             /* 16-column tiles per warp */
#define W4_COLS (W4_WARPS * W4_NT * 16)     /* output columns per CTA */
#define W4_MAX_SPLIT 64
#define W4_MIN_KB 4                         /* k-blocks per CTA at least, when K is split */
#define W4_DEQUANT_SCRATCH ((size_t)512 << 20)
#define W4_DEPTH_1 4                        /* copy ring depth (k-blocks) of the one-m-tile kernels */

struct cu_w4 {
    int K, N, G, lgG;
    int KB;        /* 64-deep k-blocks */
    int NTILES;    /* 16-wide column tiles, even */
    int NGP;       /* groups including padding */
    uint4 *q;
    uint32_t *sc;
    uint8_t *zp;
    void *mem;     /* one allocation holding q, sc, zp */
};

/* Index of lane `lane`'s uint4 of tile nt, k-block kb. */
__host__ __device__ __forceinline__ size_t w4_qidx(int nt, int kb, int KB, int lane)
{
    return (((size_t)(nt >> 1) * KB + kb) * 2 + (nt & 1)) * 32 + lane;
}

/* Nibble of the AutoAWQ packing that holds column c of a group of 8 (order {0,2,4,6,1,3,5,7}). */
__device__ __forceinline__ int awq_slot(int c)
{
    return ((c & 1) << 2) | (c >> 1);
}

/* ---- w4_create: repack on the device -------------------------------------------------------- */

/* One thread per uint4 of the repacked codes, in storage order. */
__global__ void repack_codes_kernel(const uint32_t *__restrict__ qw, uint4 *__restrict__ out, int K,
                                    int N, int KB, size_t total)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= total)
        return;
    const int lane = (int)(i & 31), half = (int)((i >> 5) & 1);
    const size_t r = i >> 6;
    const int kb = (int)(r % (size_t)KB), nt = 2 * (int)(r / (size_t)KB) + half;
    const int g = lane >> 2, t = lane & 3, nw = N / 8;
    uint32_t words[4];
#pragma unroll
    for (int c = 0; c < 4; c++) {
        uint32_t v = 0;
#pragma unroll
        for (int p = 0; p < 8; p++) {
            const int j = p & 3, hi = p >> 2;
            const int col = nt * 16 + g + 8 * (j & 1);
            const int k = kb * 64 + 16 * t + 4 * c + 2 * (j >> 1) + hi;
            if (col < N && k < K) {
                uint32_t word = qw[(size_t)k * nw + col / 8];
                v |= ((word >> (4 * awq_slot(col & 7))) & 15u) << (4 * p);
            }
        }
        words[c] = v;
    }
    out[i] = make_uint4(words[0], words[1], words[2], words[3]);
}

__global__ void repack_params_kernel(const uint32_t *__restrict__ qz, const uint16_t *__restrict__ scales,
                                     uint32_t *__restrict__ sc, uint8_t *__restrict__ zp, int K, int N,
                                     int G, int NGP, size_t total)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= total)
        return;
    const int g = (int)(i & 7);
    const size_t r = i >> 3;
    const int grp = (int)(r % (size_t)NGP), nt = (int)(r / (size_t)NGP);
    const int ng = K / G, nw = N / 8;
    const int c0 = nt * 16 + g, c1 = c0 + 8;
    uint32_t s0 = 0, s1 = 0, z0 = 0, z1 = 0;
    if (grp < ng) {
        if (c0 < N) {
            s0 = scales[(size_t)grp * N + c0];
            z0 = (qz[(size_t)grp * nw + c0 / 8] >> (4 * awq_slot(c0 & 7))) & 15u;
        }
        if (c1 < N) {
            s1 = scales[(size_t)grp * N + c1];
            z1 = (qz[(size_t)grp * nw + c1 / 8] >> (4 * awq_slot(c1 & 7))) & 15u;
        }
    }
    sc[i] = s0 | (s1 << 16);
    zp[i] = (uint8_t)(z0 | (z1 << 4));
}

/* Uploads the AutoAWQ arrays into `tmp` and repacks them into w. */
static int w4_upload(struct cu_dev *d, const struct awq_w4_host *s, struct cu_w4 *w, char *tmp,
                     size_t qw_bytes, size_t qz_bytes, size_t sc_bytes)
{
    const char *op = "w4_create";
    uint32_t *qw = (uint32_t *)tmp, *qz = (uint32_t *)(tmp + qw_bytes);
    uint16_t *scales = (uint16_t *)(tmp + qw_bytes + qz_bytes);
    CU_TRY(d, op, cudaMemcpyAsync(qw, s->qweight, qw_bytes, cudaMemcpyHostToDevice, d->stream));
    CU_TRY(d, op, cudaMemcpyAsync(qz, s->qzeros, qz_bytes, cudaMemcpyHostToDevice, d->stream));
    CU_TRY(d, op, cudaMemcpyAsync(scales, s->scales, sc_bytes, cudaMemcpyHostToDevice, d->stream));
    size_t nq = (size_t)w->NTILES * w->KB * 32, np = (size_t)w->NTILES * w->NGP * 8;
    repack_codes_kernel<<<cu_blocks(nq, 256), 256, 0, d->stream>>>(qw, w->q, w->K, w->N, w->KB, nq);
    CU_LAUNCHED(d, op, "repack_codes_kernel");
    repack_params_kernel<<<cu_blocks(np, 256), 256, 0, d->stream>>>(qz, scales, w->sc, w->zp, w->K, w->N,
                                                                     w->G, w->NGP, np);
    CU_LAUNCHED(d, op, "repack_params_kernel");
    /* the host arrays may be freed when we return, and tmp is freed by the caller */
    CU_TRY(d, op, cudaStreamSynchronize(d->stream));
    return 0;
}

int cu_w4_create(void *dev, const struct awq_w4_host *s, void **out)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "w4_create";
    *out = NULL;
    CU_STATUS_TRY(cu_begin(d, op));
    struct cu_w4 *w = (struct cu_w4 *)calloc(1, sizeof *w);
    if (!w)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    w->K = s->K;
    w->N = s->N;
    w->G = s->group_size;
    w->KB = (s->K + 63) / 64;
    w->NTILES = (s->N + 31) / 32 * 2;
    w->lgG = w->G == 32 ? 5 : w->G == 64 ? 6 : 7;   /* ops.c admits 32, 64 and 128 */
    w->NGP = w->KB * 64 / w->G;
    size_t q_bytes = (size_t)w->NTILES * w->KB * 32 * sizeof(uint4);
    size_t p_bytes = (size_t)w->NTILES * w->NGP * 8;
    cudaError_t e = cudaMalloc(&w->mem, q_bytes + p_bytes * sizeof(uint32_t) + p_bytes);
    if (e != cudaSuccess) {
        free(w);
        char what[96];
        snprintf(what, sizeof what, "cudaMalloc of a %dx%d 4-bit weight", s->K, s->N);
        return cu_fail(d, e, op, what);
    }
    w->q = (uint4 *)w->mem;
    w->sc = (uint32_t *)((char *)w->mem + q_bytes);
    w->zp = (uint8_t *)((char *)w->mem + q_bytes + p_bytes * sizeof(uint32_t));

    size_t qw_bytes = (size_t)s->K * (s->N / 8) * 4, qz_bytes = (size_t)(s->K / w->G) * (s->N / 8) * 4;
    size_t sc_bytes = (size_t)(s->K / w->G) * s->N * 2;
    void *tmp = NULL;
    e = cudaMalloc(&tmp, qw_bytes + qz_bytes + sc_bytes);
    int st = e == cudaSuccess ? 0 : cu_fail(d, e, op, "cudaMalloc of the upload staging");
    if (st == 0)
        st = w4_upload(d, s, w, (char *)tmp, qw_bytes, qz_bytes, sc_bytes);
    if (tmp)
        cudaFree(tmp);
    if (st < 0) {
        cudaFree(w->mem);
        free(w);
        return st;
    }
    *out = w;
    return 0;
}

void cu_w4_free(void *dev, void *vw)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    struct cu_w4 *w = (struct cu_w4 *)vw;
    if (!w)
        return;
    if (cudaSetDevice(d->index) == cudaSuccess) {
        cudaStreamSynchronize(d->stream);
        cudaFree(w->mem);
    }
    (void)cudaGetLastError();
    free(w);
}

/* ---- the fused kernel -------------------------------------------------------------------------- */

enum { XM_F32 = 0, XM_F16 = 1 };

struct w4_args {
    const uint4 *q;
    const uint32_t *sc;
    const uint8_t *zp;
    const void *x;           /* X [M, K], 16-byte aligned, fp32 (XM_F32) or fp16 (XM_F16) */
    const float *bias;
    void *y;
    float *part;             /* [S][M][N] split-K partials */
    unsigned *cnt;           /* [gridDim.y * gridDim.x] arrival counters, zero between launches */
    int M, N, K, lgG, KB, NGP, NPAIRS, kbps, S, y_f16;
};

/* cp.async (sm_80+) copies global to shared memory without passing through registers; before
 * that, a plain load + store does the same synchronously. "memory": the compiler must not move
 * shared-memory accesses across the copies and waits. */
__device__ __forceinline__ void cp_commit()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

/* Waits until at most n of this thread's committed copy groups are pending. */
template <int n>
__device__ __forceinline__ void cp_wait()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(n) : "memory");
#endif
}

__device__ __forceinline__ uint32_t pack_h2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

__device__ __forceinline__ __half2 as_h2(uint32_t u)
{
    __half2 h;
    memcpy(&h, &u, 4);
    return h;
}

__device__ __forceinline__ uint32_t as_u32(__half2 h)
{
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

/* (w & mask) | 0x64006400 as one LOP3: written as C, the compiler emits an AND and an OR (a LOP3
 * takes one immediate; here the magic constant goes to a register once). */
template <uint32_t mask>
__device__ __forceinline__ uint32_t magic_nibbles(uint32_t w)
{
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(w), "n"(mask), "n"(0x64006400u));
    return r;
}

/* Codes at bits 0-3 and 16-19 of w, dequantized: ((1024 + q) - (1024 + zero)) * scale. */
__device__ __forceinline__ uint32_t dq_lo(uint32_t w, uint32_t zz, uint32_t ss)
{
    return as_u32(__hmul2(__hsub2(as_h2(magic_nibbles<0x000F000Fu>(w)), as_h2(zz)), as_h2(ss)));
}

/* Codes at bits 4-7 and 20-23 of w: (1024 + 16q) / 16 - (64 + zero) = q - zero, exact. */
__device__ __forceinline__ uint32_t dq_hi(uint32_t w, uint32_t zn, uint32_t ss)
{
    return as_u32(__hmul2(__hfma2(as_h2(magic_nibbles<0x00F000F0u>(w)), as_h2(0x2C002C00u), as_h2(zn)), as_h2(ss)));
}

/* The same without the scale: q - zero, exact in fp16. */
__device__ __forceinline__ uint32_t dq_lo_u(uint32_t w, uint32_t zz)
{
    return as_u32(__hsub2(as_h2(magic_nibbles<0x000F000Fu>(w)), as_h2(zz)));
}

__device__ __forceinline__ uint32_t dq_hi_u(uint32_t w, uint32_t zn)
{
    return as_u32(__hfma2(as_h2(magic_nibbles<0x00F000F0u>(w)), as_h2(0x2C002C00u), as_h2(zn)));
}

/* f16x2 constants of a lane's scale word (half2 scale of columns g, g + 8) and zero byte. */
struct dq_consts {
    uint32_t zz;   /* 1024 + zero[g], twice */
    uint32_t zn;   /* -(64 + zero[g + 8]), twice */
    uint32_t s0;   /* scale[g], twice */
    uint32_t s1;   /* scale[g + 8], twice */
};

__device__ __forceinline__ dq_consts make_dq(uint32_t s, uint32_t z)
{
    dq_consts c;
    c.zz = (0x6400u | (z & 15u)) * 0x10001u;
    c.zn = (0xD400u | (z & 0xF0u)) * 0x10001u;
    c.s0 = (s & 0xffffu) * 0x10001u;
    c.s1 = (s >> 16) * 0x10001u;
    return c;
}

/* D += A (16x16, row) * B (16x8, col), fp16 in, fp32 accumulation. */
__device__ __forceinline__ void mma16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1)
{
#if __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
    /* Turing: the same product as two k8 halves */
    asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(b0));
    asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a2), "r"(a3), "r"(b1));
#endif
}

/* A lane's X for one k-block: rows row0 + 8 mt + g, k = 64 kb + 16t .. + 15 (zero outside X),
 * loaded a block ahead (raw) and turned into B fragments once they have arrived: words 2c, 2c + 1
 * of m-tile mt are the B registers of product c. `base` points at row row0 + g, k = 16t; rows holds how many of
 * the MT rows exist (m-tile mt exists when mt < rows). */
template <int MT, int XM>
struct x_block {
    uint32_t h[XM == XM_F16 ? MT : 1][8];
    float4 f[XM == XM_F32 ? 4 : 1];

    __device__ __forceinline__ void load(const void *base, size_t mt_stride, int rows, bool kv, int kb)
    {
        if constexpr (XM == XM_F16) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                uint4 a = make_uint4(0, 0, 0, 0), b = a;
                if (mt < rows && kv) {
                    const uint4 *s = (const uint4 *)((const __half *)base + mt * mt_stride + (size_t)kb * 64);
                    a = __ldg(s);
                    b = __ldg(s + 1);
                }
                h[mt][0] = a.x;
                h[mt][1] = a.y;
                h[mt][2] = a.z;
                h[mt][3] = a.w;
                h[mt][4] = b.x;
                h[mt][5] = b.y;
                h[mt][6] = b.z;
                h[mt][7] = b.w;
            }
        } else {
            (void)mt_stride;
#pragma unroll
            for (int i = 0; i < 4; i++)
                f[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (rows > 0 && kv) {
                const float4 *s = (const float4 *)((const float *)base + (size_t)kb * 64);
#pragma unroll
                for (int i = 0; i < 4; i++)
                    f[i] = __ldg(s + i);
            }
        }
    }

    __device__ __forceinline__ void convert()
    {
        if constexpr (XM == XM_F32) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                h[0][2 * i] = pack_h2(f[i].x, f[i].y);
                h[0][2 * i + 1] = pack_h2(f[i].z, f[i].w);
            }
        }
    }
};

__device__ __forceinline__ void w4_store(const w4_args &p, int m, int n, float v)
{
    if (p.y_f16)
        ((__half *)p.y)[(size_t)m * p.N + n] = __float2half_rn(v);
    else
        ((float *)p.y)[(size_t)m * p.N + n] = v;
}

/* Shared memory of one CTA with a ring of D k-blocks: per warp, [D][W4_NT][32] uint4 of codes,
 * then [D][W4_NT][2][32] u32 (scale word, zero word); with X staged (XS), then [D][8 MT] rows of
 * X of W4_XROW bytes (64 fp16 + 16 bytes of padding). */
#define W4_XROW 144
__host__ __device__ static constexpr size_t w4_smem_bytes(int D)
{
    return (size_t)W4_WARPS * D * W4_NT * 32 * (sizeof(uint4) + 2 * sizeof(uint32_t));
}

__host__ __device__ static constexpr size_t w4_smem_bytes_xs(int D, int MT)
{
    return w4_smem_bytes(D) + (size_t)D * MT * 8 * W4_XROW;
}

/* Shared-memory loads at a 32-bit shared address. volatile: they must stay after the cp.async
 * wait that makes their data visible. */
__device__ __forceinline__ uint4 lds128(uint32_t a)
{
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
    return v;
}

__device__ __forceinline__ uint32_t lds32(uint32_t a)
{
    uint32_t v;
    asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(a));
    return v;
}

__device__ __forceinline__ void cp_async16_s(uint32_t dst, const void *src)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
#else
    const uint4 v = __ldg((const uint4 *)src);
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
#endif
}

/* 16 bytes, or 16 zero bytes when !ok (src is then not read). */
__device__ __forceinline__ void cp_async16_z(uint32_t dst, const void *src, bool ok)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0) : "memory");
#else
    const uint4 v = ok ? __ldg((const uint4 *)src) : make_uint4(0, 0, 0, 0);
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
#endif
}

__device__ __forceinline__ void cp_async4_s(uint32_t dst, const void *src)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
#else
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(dst), "r"(__ldg((const uint32_t *)src)) : "memory");
#endif
}

/* Programmatic dependent launch (no-ops when the kernel is launched without the attribute, and
 * before sm_90). */
__device__ __forceinline__ void pdl_launch_dependents()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_wait()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* PS (G >= 64: a k-block lies in one group): the products take A = q - zero, exact, and each
 * group's sums are scaled once into the accumulators, in fp32 (4 fewer instructions per 32
 * codes than scaling A, and the same arithmetic as the CPU backend). Else (G = 32: the two
 * halves of a block belong to different groups, and one product spans both) A is the fp16
 * dequantized weight. D: k-blocks in each lane's copy ring (even: X alternates between two
 * register buffers, the next block's loads in flight while this one is computed). */
template <int MT, int XM, bool PS, int D, bool XS>
__global__ void __launch_bounds__(W4_WARPS * 32, MT > 1 ? 4 : XM == XM_F16 ? 7 : 5) w4_fused_kernel(const w4_args p)
{
    static_assert(D % 2 == 0, "X is double-buffered along the unrolled ring");
    static_assert(!XS || XM == XM_F16, "X is staged in shared memory as fp16");
    /* Launched as a programmatic dependent (sm_90): the next kernel in the stream may start as
     * soon as every CTA of this one runs, and it waits (pdl_wait) before touching anything an
     * earlier kernel writes; until then it only streams the weights, which no kernel writes. */
    pdl_launch_dependents();
    extern __shared__ uint4 w4_smem[];
    __shared__ unsigned s_last;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int pair = blockIdx.y * W4_WARPS + warp, nt0 = 2 * pair;
    const bool pv = pair < p.NPAIRS;   /* warp-uniform: mma.sync needs the whole warp */
    const int kb0 = blockIdx.z * p.kbps, kb1 = min(p.KB, kb0 + p.kbps);
    const int row0 = blockIdx.x * MT * 8;

    float acc[W4_NT][MT][4];
#pragma unroll
    for (int i = 0; i < W4_NT; i++)
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[i][mt][e] = 0.0f;

    if (XS || pv) {   /* XS: every warp takes part in the X copies and the barriers */
        /* this lane's ring: codes of slot s, tile i at sq + (2s + i) * 512; scale word at
         * sp + (2s + i) * 256, zero word 128 bytes further */
        const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(w4_smem);
        const uint32_t sq = sbase + (uint32_t)(warp * D * W4_NT * 32 + lane) * 16;
        const uint32_t sp = sbase + (uint32_t)(W4_WARPS * D * W4_NT * 32) * 16 + (uint32_t)(warp * D * W4_NT * 64 + lane) * 4;
        const uint4 *gq = p.q + ((size_t)pair * p.KB + kb0) * 64 + lane;   /* next block to copy */
        const uint32_t *const gs0 = p.sc + (size_t)nt0 * p.NGP * 8 + g, *const gs1 = gs0 + (size_t)p.NGP * 8;
        const uint32_t *const gz0 = (const uint32_t *)p.zp + (size_t)nt0 * p.NGP * 2 + (g >> 2),
                       *const gz1 = gz0 + (size_t)p.NGP * 2;
        const int zshift = 8 * (g & 3);
        const int gsh = PS ? p.lgG - 6 : 0, gmask = (1 << gsh) - 1;   /* PS: k-blocks per group - 1 */
        const int rows = min(MT, (p.M - row0 - g + 7) / 8);            /* m-tiles whose row g exists */
        const size_t mt_stride = (size_t)8 * p.K;
        const void *xbase = (const char *)p.x + ((size_t)(row0 + g) * p.K + 16 * t) * (XM == XM_F16 ? 2 : 4);
        const int kx = p.K - 16 * t;                                    /* block kb has X when 64 kb < kx */

        /* copies of k-block kb's weights into ring slot s (none past the range); with PS the
         * scales and zeros only where a group starts, or the range does */
        auto issue_w = [&](int kb, int s) {
            if (kb < kb1 && (!XS || pv)) {
                cp_async16_s(sq + (2 * s) * 512, gq);
                cp_async16_s(sq + (2 * s + 1) * 512, gq + 32);
                gq += 64;
                if (!PS || kb == kb0 || (kb & gmask) == 0) {
                    const int grp = PS ? kb >> gsh : (kb * 64 + 16 * t) >> p.lgG;
                    cp_async4_s(sp + (2 * s) * 256, gs0 + (size_t)grp * 8);
                    cp_async4_s(sp + (2 * s) * 256 + 128, gz0 + (size_t)grp * 2);
                    cp_async4_s(sp + (2 * s + 1) * 256, gs1 + (size_t)grp * 8);
                    cp_async4_s(sp + (2 * s + 1) * 256 + 128, gz1 + (size_t)grp * 2);
                }
            }
        };
        auto issue = [&](int kb, int s) {
            issue_w(kb, s);
            cp_commit();
        };
        /* XS: the CTA's copy of k-block kb of its 8 MT rows of X into X slot s (rows of
         * W4_XROW bytes, padded so that the lanes' 16-byte reads do not collide on banks); rows
         * past M and k past K are zero-filled */
        constexpr uint32_t xoff = (uint32_t)w4_smem_bytes(D);
        const uint32_t xsm = sbase + xoff;
        auto issue_x = [&](int kb, int s) {
            if (kb < kb1) {
                for (int e = threadIdx.x; e < MT * 64; e += W4_WARPS * 32) {
                    const int r = e >> 3, c = e & 7, m = row0 + r, k = kb * 64 + 8 * c;
                    const bool ok = m < p.M && k < p.K;
                    const __half *src = (const __half *)p.x + (ok ? (size_t)m * p.K + k : 0);
                    cp_async16_z(xsm + (uint32_t)(s * MT * 8 * W4_XROW + r * W4_XROW + 16 * c), src, ok);
                }
            }
        };

        float part[W4_NT][MT][4];   /* PS: the current group's sums */
        dq_consts dc[W4_NT];
        float sf[W4_NT][2];         /* PS: the group's scales of columns g, g + 8 */
#pragma unroll
        for (int i = 0; i < W4_NT; i++)
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    part[i][mt][e] = 0.0f;
        x_block<MT, XM> xb[2];

        /* one k-block: consumes ring slot s and X buffer s & 1, refills the slot the previous
         * block freed, loads the next block's X into the other buffer */
        auto step = [&](int kb, int s) {
            if constexpr (XS) {
                /* block kb has landed, from every thread; every warp is done with block kb - 1,
                 * whose X slot is refilled */
                cp_wait<D - 2>();
                __syncthreads();
                issue_w(kb + D - 1, (s + D - 1) % D);
                issue_x(kb + D - 1, (s + D - 1) % D);
                cp_commit();
                if (!pv)
                    return;
                const uint32_t xr = xsm + (uint32_t)(s * MT * 8 * W4_XROW + g * W4_XROW + 32 * t);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    const uint4 a = lds128(xr + mt * 8 * W4_XROW), b = lds128(xr + mt * 8 * W4_XROW + 16);
                    xb[0].h[mt][0] = a.x;
                    xb[0].h[mt][1] = a.y;
                    xb[0].h[mt][2] = a.z;
                    xb[0].h[mt][3] = a.w;
                    xb[0].h[mt][4] = b.x;
                    xb[0].h[mt][5] = b.y;
                    xb[0].h[mt][6] = b.z;
                    xb[0].h[mt][7] = b.w;
                }
            } else {
                if (kb + 1 < kb1)
                    xb[(s + 1) & 1].load(xbase, mt_stride, rows, (kb + 1) * 64 < kx, kb + 1);
                issue(kb + D - 1, (s + D - 1) % D);
                cp_wait<D - 1>();   /* block kb has landed */
            }
            uint4 wq[W4_NT];
#pragma unroll
            for (int i = 0; i < W4_NT; i++)
                wq[i] = lds128(sq + (2 * s + i) * 512);
            const bool first = !PS || kb == kb0 || (kb & gmask) == 0;
            const bool last = PS && (kb + 1 == kb1 || ((kb + 1) & gmask) == 0);
            if (first) {
#pragma unroll
                for (int i = 0; i < W4_NT; i++) {
                    const uint32_t sv = lds32(sp + (2 * s + i) * 256);
                    dc[i] = make_dq(sv, lds32(sp + (2 * s + i) * 256 + 128) >> zshift);
                    if (PS) {
                        const float2 f = __half22float2(as_h2(sv));
                        sf[i][0] = f.x;
                        sf[i][1] = f.y;
                    }
                }
            }
            const x_block<MT, XM> &x = xb[XS ? 0 : s & 1];
#pragma unroll
            for (int c = 0; c < 4; c++) {
#pragma unroll
                for (int i = 0; i < W4_NT; i++) {
                    const uint32_t w = c == 0 ? wq[i].x : c == 1 ? wq[i].y : c == 2 ? wq[i].z : wq[i].w;
                    uint32_t a0, a1, a2, a3;
                    if (PS) {
                        a0 = dq_lo_u(w, dc[i].zz);
                        a1 = dq_hi_u(w, dc[i].zn);
                        a2 = dq_lo_u(w >> 8, dc[i].zz);
                        a3 = dq_hi_u(w >> 8, dc[i].zn);
                    } else {
                        a0 = dq_lo(w, dc[i].zz, dc[i].s0);
                        a1 = dq_hi(w, dc[i].zn, dc[i].s1);
                        a2 = dq_lo(w >> 8, dc[i].zz, dc[i].s0);
                        a3 = dq_hi(w >> 8, dc[i].zn, dc[i].s1);
                    }
#pragma unroll
                    for (int mt = 0; mt < MT; mt++)
                        mma16816(PS ? part[i][mt] : acc[i][mt], a0, a1, a2, a3, x.h[mt][2 * c], x.h[mt][2 * c + 1]);
                }
            }
            if (last) {
#pragma unroll
                for (int i = 0; i < W4_NT; i++)
#pragma unroll
                    for (int mt = 0; mt < MT; mt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            acc[i][mt][e] = fmaf(sf[i][e >> 1], part[i][mt][e], acc[i][mt][e]);
                            part[i][mt][e] = 0.0f;
                        }
            }
            if (!XS && kb + 1 < kb1)
                xb[(s + 1) & 1].convert();   /* fp32 X: the next block's loads had this block's time */
        };

        if constexpr (XS) {
            /* one group with the first D - 1 blocks' weights, then one per block's X: step kb
             * waits for all but the D - 2 newest groups, as in the steady state */
#pragma unroll
            for (int s = 0; s < D - 1; s++)
                issue_w(kb0 + s, s);
            cp_commit();
            pdl_wait();   /* X, Y, partials and counters may belong to the kernels before */
#pragma unroll
            for (int s = 0; s < D - 1; s++) {
                issue_x(kb0 + s, s);
                cp_commit();
            }
        } else {
#pragma unroll
            for (int s = 0; s < D - 1; s++)
                issue(kb0 + s, s);
            pdl_wait();   /* X, Y, partials and counters may belong to the kernels before */
            xb[0].load(xbase, mt_stride, rows, kb0 * 64 < kx, kb0);
            xb[0].convert();
        }
        for (int kb = kb0; kb < kb1; kb += D) {
#pragma unroll
            for (int u = 0; u < D; u++)
                if (kb + u < kb1)
                    step(kb + u, u);
        }
    } else {
        pdl_wait();
    }

    /* accumulator e of tile i, m-tile mt: column 16 (nt0 + i) + g (+8 for e >= 2), row 2t (+1 for odd e) */
    if (p.S == 1) {
        if (!pv)
            return;
#pragma unroll
        for (int i = 0; i < W4_NT; i++)
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int n = (nt0 + i) * 16 + g + (e & 2 ? 8 : 0);
                    const int m = row0 + mt * 8 + 2 * t + (e & 1);
                    if (n < p.N && m < p.M)
                        w4_store(p, m, n, acc[i][mt][e] + (p.bias ? __ldg(p.bias + n) : 0.0f));
                }
        return;
    }

    /* split K: store partials, then the last CTA to arrive at this output tile reduces them */
    if (pv) {
#pragma unroll
        for (int i = 0; i < W4_NT; i++)
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int n = (nt0 + i) * 16 + g + (e & 2 ? 8 : 0);
                    const int m = row0 + mt * 8 + 2 * t + (e & 1);
                    if (n < p.N && m < p.M)
                        p.part[((size_t)blockIdx.z * p.M + m) * p.N + n] = acc[i][mt][e];
                }
    }
    __threadfence();
    __syncthreads();
    const unsigned tile = blockIdx.y * gridDim.x + blockIdx.x;
    if (threadIdx.x == 0)
        s_last = atomicAdd(p.cnt + tile, 1u) == (unsigned)p.S - 1;
    __syncthreads();
    if (!s_last)
        return;
    __threadfence();
    const int n_base = blockIdx.y * W4_COLS;
    for (int e = threadIdx.x; e < MT * 8 * W4_COLS; e += blockDim.x) {
        const int m = row0 + e / W4_COLS, n = n_base + e % W4_COLS;
        if (m < p.M && n < p.N) {
            float v = 0.0f;
            for (int s = 0; s < p.S; s++)
                v += __ldcg(p.part + ((size_t)s * p.M + m) * p.N + n);
            w4_store(p, m, n, v + (p.bias ? __ldg(p.bias + n) : 0.0f));
        }
    }
    if (threadIdx.x == 0)
        p.cnt[tile] = 0;   /* ready for the next launch */
}

/* ---- dequantize to fp16 [N, K] (large M) -------------------------------------------------------- */

/* Columns 32 pair0 .. 32 (pair0 + gridDim.y) - 1 into out[(n - 32 pair0) * K + k]: one thread per
 * uint4 of the repacked codes, read in storage order (a warp reads 512 contiguous bytes), which
 * holds 16 consecutive k of the two columns g and g + 8 of a tile; the four lanes t of one g
 * write 128 contiguous bytes of each column's row. */
__global__ void __launch_bounds__(256) w4_dequant_kernel(const uint4 *__restrict__ q, const uint32_t *__restrict__ sc,
                                                         const uint8_t *__restrict__ zp, __half *__restrict__ out,
                                                         int K, int N, int KB, int NGP, int lgG, int pair0)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;   /* (kb, tile of the pair, lane) */
    if (i >= KB * 64)
        return;
    const int lane = i & 31, half = (i >> 5) & 1, kb = i >> 6, g = lane >> 2, t = lane & 3;
    const int pair = pair0 + (int)blockIdx.y, nt = 2 * pair + half, k = kb * 64 + 16 * t;
    if (k >= K)   /* K is a multiple of 32: a lane's 16 k lie all inside X or all in the padding */
        return;
    const uint4 w = __ldg(q + ((size_t)pair * KB + kb) * 64 + (i & 63));
    const size_t po = ((size_t)nt * NGP + (k >> lgG)) * 8 + g;
    const dq_consts dc = make_dq(__ldg(sc + po), __ldg(zp + po));
    const uint32_t ws[4] = { w.x, w.y, w.z, w.w };
    uint32_t lo[8], hi[8];
#pragma unroll
    for (int c = 0; c < 4; c++) {
        lo[2 * c] = dq_lo(ws[c], dc.zz, dc.s0);
        lo[2 * c + 1] = dq_lo(ws[c] >> 8, dc.zz, dc.s0);
        hi[2 * c] = dq_hi(ws[c], dc.zn, dc.s1);
        hi[2 * c + 1] = dq_hi(ws[c] >> 8, dc.zn, dc.s1);
    }
    const int n = nt * 16 + g, nl = n - 32 * pair0;
    if (n < N) {
        uint4 *dst = (uint4 *)(out + (size_t)nl * K + k);
        dst[0] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
        dst[1] = make_uint4(lo[4], lo[5], lo[6], lo[7]);
    }
    if (n + 8 < N) {
        uint4 *dst = (uint4 *)(out + (size_t)(nl + 8) * K + k);
        dst[0] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
        dst[1] = make_uint4(hi[4], hi[5], hi[6], hi[7]);
    }
}

/* The fused kernel instances: kind 0 = fp32 X, one m-tile; kinds 1, 2 = fp16 X, 1 or 2 m-tiles;
 * each with the scale applied to A (G = 32) or to the group sums (ps), and a ring of 4, 6 or 8
 * k-blocks (depth index di = 0, 1, 2). */
template <int MT, int XM, bool PS, bool XS = false>
static void (*kernel_d(int di))(w4_args)
{
    return di == 2 ? w4_fused_kernel<MT, XM, PS, 8, XS> : di == 1 ? w4_fused_kernel<MT, XM, PS, 6, XS>
                                                                   : w4_fused_kernel<MT, XM, PS, 4, XS>;
}

/* kind 3: kind 2 with X staged in shared memory */
static void (*kernel_of(int kind, int ps, int di))(w4_args)
{
    switch (kind * 2 + ps) {
    case 0:
        return kernel_d<1, XM_F32, false>(di);
    case 1:
        return kernel_d<1, XM_F32, true>(di);
    case 2:
        return kernel_d<1, XM_F16, false>(di);
    case 3:
        return kernel_d<1, XM_F16, true>(di);
    case 4:
        return kernel_d<2, XM_F16, false>(di);
    case 5:
        return kernel_d<2, XM_F16, true>(di);
    case 6:
        return kernel_d<2, XM_F16, false, true>(di);
    default:
        return kernel_d<2, XM_F16, true, true>(di);
    }
}

/* X (x act_scale) as fp16 [M, K] in scratch, for the paths that need it so. */
static int w4_x16(struct cu_dev *d, const struct awq_gemm_w4_args *a, int K, const __half **out)
{
    const char *op = "gemm_w4";
    void *p;
    CU_STATUS_TRY(cu_scratch(d, CU_SCR_X16, (size_t)a->M * K * sizeof(__half), op, &p));
    CU_STATUS_TRY(cu_to_f16(d, op, a->x_type, cu_ptr(a->x), (const float *)cu_ptr(a->act_scale), (__half *)p,
                            (size_t)a->M, (size_t)K));
    *out = (const __half *)p;
    return 0;
}

/* One column chunk of the dequantize + cuBLAS path, on d->stream: columns 32 pair0 .. + ncur - 1
 * dequantized into w16, then their product. */
static int w4_chunk(struct cu_dev *d, const struct awq_gemm_w4_args *a, const struct cu_w4 *w, const __half *x16,
                    __half *w16, int pair0, int ncur)
{
    const char *op = "gemm_w4";
    const int n0 = 32 * pair0;
    const dim3 grid((unsigned)(w->KB * 64 + 255) / 256, (unsigned)(ncur + 31) / 32);
    w4_dequant_kernel<<<grid, 256, 0, d->stream>>>(w->q, w->sc, w->zp, w16, w->K, w->N, w->KB, w->NGP, w->lgG, pair0);
    CU_LAUNCHED(d, op, "w4_dequant_kernel");
    const float *bias = (const float *)cu_ptr(a->bias);
    return cu_gemm_f16(d, op, a->M, ncur, w->K, w16, x16, (char *)cu_ptr(a->y) + (size_t)n0 * awq_dtype_size(a->y_type),
                       w->N, a->y_type, bias ? bias + n0 : NULL);
}

static int w4_cublas(struct cu_dev *d, const struct awq_gemm_w4_args *a, const struct cu_w4 *w)
{
    const char *op = "gemm_w4";
    const int N = w->N, K = w->K;
    const __half *x16 = (const __half *)cu_ptr(a->x);
    if (a->x_type != AWQ_DTYPE_F16 || a->act_scale.buf)
        CU_STATUS_TRY(w4_x16(d, a, K, &x16));
    /* columns per dequantized chunk (a multiple of 128; all of them when the fp16 copy fits the
     * cap). Smaller chunks, so that cuBLAS would read them from L2, measured slower on the H100
     * (more, smaller products), also with two streams overlapping dequantization and product. */
    const size_t chunk_bytes = d->w4_chunk_mb ? (size_t)d->w4_chunk_mb << 20 : W4_DEQUANT_SCRATCH;
    const size_t cap_cols = chunk_bytes / ((size_t)K * sizeof(__half));
    int nc = (N + 31) / 32 * 32;
    if (cap_cols < (size_t)nc)
        nc = cap_cols < 128 ? 128 : (int)(cap_cols / 128 * 128);
    void *wp;
    CU_STATUS_TRY(cu_scratch(d, CU_SCR_W16, (size_t)nc * K * sizeof(__half), op, &wp));
    for (int n0 = 0; n0 < N; n0 += nc)
        CU_STATUS_TRY(w4_chunk(d, a, w, x16, (__half *)wp, n0 / 32, N - n0 < nc ? N - n0 : nc));
    return 0;
}

int cu_gemm_w4(void *dev, const struct awq_gemm_w4_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "gemm_w4";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "X", a->x, awq_dtype_size(a->x_type)));
    CU_STATUS_TRY(cu_check_align(d, op, "Y", a->y, awq_dtype_size(a->y_type)));
    CU_STATUS_TRY(cu_check_align(d, op, "bias", a->bias, sizeof(float)));
    CU_STATUS_TRY(cu_check_align(d, op, "act_scale", a->act_scale, sizeof(float)));
    const struct cu_w4 *w = (const struct cu_w4 *)a->w->impl;
    const int M = a->M;
    if (M >= d->w4_cublas_min_m)
        return w4_cublas(d, a, w);

    const int MT = M <= 8 ? 1 : 2;
    const size_t chunks = ((size_t)M + MT * 8 - 1) / (MT * 8);
    const size_t col_groups = ((size_t)w->NTILES / W4_NT + W4_WARPS - 1) / W4_WARPS;
    if (col_groups > 65535 || chunks > 0x7fffffffu)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cuda gemm_w4: N = %d or M = %d too large for one launch",
                           w->N, M);
    /* X straight from its buffer when 16-byte aligned (fp32 only for one m-tile: its conversion
     * costs registers); else, or with act_scale, an fp16 copy first */
    const void *x = cu_ptr(a->x);
    int xm = a->x_type == AWQ_DTYPE_F16 ? XM_F16 : XM_F32;
    if (((uintptr_t)x & 15) || a->act_scale.buf || (xm == XM_F32 && MT > 1)) {
        const __half *x16;
        CU_STATUS_TRY(w4_x16(d, a, w->K, &x16));
        x = x16;
        xm = XM_F16;
    }
    /* Ring depth: one m-tile keeps W4_DEPTH_1 blocks per warp in flight with more CTAs per SM;
     * two m-tiles use more registers, so fewer warps, each with 8 blocks in flight. */
    /* With X staged in shared memory (AWQ_CUDA_W4_XSMEM=1, two m-tiles), the CTA's four warps
     * share one copy of X instead of each loading its own; 6 blocks keep 4 CTAs per SM. */
    const int xs = d->w4_xsmem && MT == 2;
    const int kind = xm == XM_F32 ? 0 : MT == 1 ? 1 : xs ? 3 : 2, ps = w->G >= 64;
    const int depth = d->w4_depth ? d->w4_depth : MT == 1 ? W4_DEPTH_1 : xs ? 6 : 8;
    const int di = depth >= 8 ? 2 : depth >= 6 ? 1 : 0;
    const size_t smem = xs ? w4_smem_bytes_xs(4 + 2 * di, MT) : w4_smem_bytes(4 + 2 * di);
    void (*kernel)(w4_args) = kernel_of(kind, ps, di);
    int *occ = &d->w4_occupancy[(kind * 2 + ps) * 3 + di];
    if (*occ <= 0) {
        CU_TRY(d, op, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CU_TRY(d, op, cudaOccupancyMaxActiveBlocksPerMultiprocessor(occ, kernel, W4_WARPS * 32, smem));
        if (*occ <= 0)
            *occ = 1;
    }
    /* Split K so that the grid fills the resident CTA slots once: a partial second wave would
     * double the time of the CTAs in it. Every warp keeps D - 1 k-blocks (1 KiB each) in flight,
     * so a full wave saturates memory bandwidth even when the SMs hold unequal numbers of CTAs. */
    const size_t base = chunks * col_groups, slots = (size_t)d->sms * (size_t)*occ;
    int S = 1;
    if (base < slots) {
        size_t want = slots / base;
        size_t most = w->KB / W4_MIN_KB > 1 ? (size_t)(w->KB / W4_MIN_KB) : 1;
        if (most > W4_MAX_SPLIT)
            most = W4_MAX_SPLIT;
        S = (int)(want < most ? want : most);
    }
    const int kbps = (w->KB + S - 1) / S;
    S = (w->KB + kbps - 1) / kbps;

    w4_args p;
    memset(&p, 0, sizeof p);
    p.q = w->q;
    p.sc = w->sc;
    p.zp = w->zp;
    p.x = x;
    p.bias = (const float *)cu_ptr(a->bias);
    p.y = cu_ptr(a->y);
    p.M = M;
    p.N = w->N;
    p.K = w->K;
    p.lgG = w->lgG;
    p.KB = w->KB;
    p.NGP = w->NGP;
    p.NPAIRS = w->NTILES / W4_NT;
    p.kbps = kbps;
    p.S = S;
    p.y_f16 = a->y_type == AWQ_DTYPE_F16;
    if (S > 1) {
        void *part, *cnt;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_PART, (size_t)S * M * w->N * sizeof(float), op, &part));
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_COUNTERS, base * sizeof(unsigned), op, &cnt));
        p.part = (float *)part;
        p.cnt = (unsigned *)cnt;
    }
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)chunks, (unsigned)col_groups, (unsigned)S);
    cfg.blockDim = dim3(W4_WARPS * 32);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = d->stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = d->w4_pdl ? 1 : 0;
    CU_TRY(d, op, cudaLaunchKernelEx(&cfg, kernel, p));
    CU_LAUNCHED(d, op, "w4_fused_kernel");
    return 0;
}
