/* 4-bit weights on CUDA: upload + repack (w4_create), and gemm_w4.
 *
 * Repacked layout (built on the device at w4_create). The output columns are cut into tiles of
 * 16 (N padded up) and the input channels into blocks of 64 (K padded up with zero weights).
 * One tile x block is 512 bytes: 32 lanes x one uint4, and the uint4 of lane (g = lane / 4,
 * t = lane % 4) holds, for each of the block's four 16-deep k-tiles c (component c), exactly the
 * 8 codes that lane needs as the A operand of one mma.m16n8k16 (A = 16 columns x 16 k):
 *     nibble j     (j = 0..3): column g + 8 (j & 1), k = 16c + 2t + 8 (j >> 1)
 *     nibble j + 4           : the same column, k + 1
 * so `(word >> 4j) & 0x000F000F | 0x64006400` is the f16x2 pair (1024 + q_lo, 1024 + q_hi) of
 * A register j. Subtracting (1024 + zero) is exact and multiplying by the fp16 scale rounds once,
 * i.e. the dequantized weight (q - zero) * scale correctly rounded to fp16.
 *     q  [NTILES][KB][32] uint4      (a warp reads 512 contiguous bytes per load)
 *     sc [NTILES][NGP][8] u32        half2(scale[col g], scale[col g + 8]) of group grp
 *     zp [NTILES][NGP][8] u8         zero[col g] | zero[col g + 8] << 4
 * NGP = KB * 64 / G groups (the padding group, if any, has scale 0).
 *
 * gemm_w4, M < w4_cublas_min_m (decode and small batches): one fused kernel. A CTA of 4 warps
 * owns 128 output columns (2 tiles per warp), a k-range (split K when the columns alone do not
 * fill the GPU) and 8 * MT rows of X (MT = 1, 2 or 4 m-tiles of 8 rows; larger M runs several
 * row chunks as blockIdx.x, adjacent so that they share each weight tile through L2). The weight
 * stream is prefetched 4 k-blocks deep with L1-bypassing 128-bit loads; dequantization is 14
 * integer/half2 instructions per 32 codes, the products run on tensor cores (fp16 x fp16, fp32
 * accumulation). X comes in fp16 B fragments: read straight from X when M = 1, else prepared by
 * a small kernel in fragment order so each is one coalesced 8-byte load per lane. Split-K
 * partials go to scratch; the last CTA of each output tile (arrival counter) adds them in split
 * order, so the result does not depend on timing.
 *
 * gemm_w4, M >= w4_cublas_min_m (prefill, calibration): dequantize to an fp16 [N, K] scratch
 * (in column chunks when large) and call cuBLAS with fp16 X. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define W4_WARPS 4                          /* warps per CTA */
#define W4_NT 2                             /* 16-column tiles per warp */
#define W4_U 4                              /* k-blocks of weights in flight per warp */
#define W4_COLS (W4_WARPS * W4_NT * 16)     /* output columns per CTA */
#define W4_MAX_SPLIT 64
#define W4_DEQUANT_SCRATCH ((size_t)512 << 20)

struct cu_w4 {
    int K, N, G;
    int KB;        /* 64-deep k-blocks */
    int NTILES;    /* 16-wide column tiles */
    int NGP;       /* groups including padding */
    uint4 *q;
    uint32_t *sc;
    uint8_t *zp;
    void *mem;     /* one allocation holding q, sc, zp */
};

/* Nibble of the AutoAWQ packing that holds column c of a group of 8 (order {0,2,4,6,1,3,5,7}). */
__device__ __forceinline__ int awq_slot(int c)
{
    return ((c & 1) << 2) | (c >> 1);
}

/* ---- w4_create: repack on the device -------------------------------------------------------- */

__global__ void repack_codes_kernel(const uint32_t *__restrict__ qw, uint4 *__restrict__ out, int K,
                                    int N, int KB, size_t total)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= total)
        return;
    const int lane = (int)(i & 31);
    const size_t r = i >> 5;
    const int kb = (int)(r % (size_t)KB), nt = (int)(r / (size_t)KB);
    const int g = lane >> 2, t = lane & 3, nw = N / 8;
    uint32_t words[4];
#pragma unroll
    for (int c = 0; c < 4; c++) {
        uint32_t v = 0;
#pragma unroll
        for (int p = 0; p < 8; p++) {
            const int j = p & 3, hi = p >> 2;
            const int col = nt * 16 + g + 8 * (j & 1);
            const int k = kb * 64 + c * 16 + 2 * t + hi + 8 * (j >> 1);
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
    w->NTILES = (s->N + 15) / 16;
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

enum { XM_F32 = 0, XM_F16 = 1, XM_FRAG = 2 };

struct w4_args {
    const uint4 *q;
    const uint32_t *sc;
    const uint8_t *zp;
    const void *x;           /* XM_F32 / XM_F16: X [M, K] */
    const float *as;         /* act_scale [K] or NULL (direct modes) */
    const uint2 *xf;         /* XM_FRAG: [chunks][KT][MT][32] B fragments */
    const float *bias;
    void *y;
    float *part;             /* [S][M][N] split-K partials */
    unsigned *cnt;           /* [gridDim.y * gridDim.x] arrival counters, zero between launches */
    int M, N, K, G, KB, NGP, NTILES, kbps, S, y_f16;
};

/* Streaming 128-bit load that leaves L1 to X. volatile: a plain asm counts as a pure function of
 * its operands and could be speculated out of the bounds checks that guard it. */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p)
{
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

__device__ __forceinline__ uint32_t pack_h2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

/* ((w >> shift) & 0x000F000F | 0x64006400) - zz, times ss: two dequantized fp16 weights. */
__device__ __forceinline__ uint32_t dq2(uint32_t w, int shift, uint32_t zz, uint32_t ss)
{
    uint32_t r = ((w >> shift) & 0x000F000Fu) | 0x64006400u;
    __half2 hr, hz, hs;
    memcpy(&hr, &r, 4);
    memcpy(&hz, &zz, 4);
    memcpy(&hs, &ss, 4);
    __half2 o = __hmul2(__hsub2(hr, hz), hs);
    uint32_t u;
    memcpy(&u, &o, 4);
    return u;
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

/* B fragment of k-tile kt read straight from X (M = 1..8, one m-tile): rows g, k = 16kt + 2t
 * (+1, +8, +9), times act_scale. */
template <int XM>
__device__ __forceinline__ void load_b_direct(const w4_args &p, uint32_t (&b)[2], int kt, int g, int t)
{
    b[0] = 0;
    b[1] = 0;
    if (g < p.M && kt * 16 < p.K) {
        const int k = kt * 16 + 2 * t;
        const size_t o = (size_t)g * p.K + k;
        float f0, f1, f2, f3;
        if (XM == XM_F32) {
            const float *x = (const float *)p.x;
            f0 = __ldg(x + o);
            f1 = __ldg(x + o + 1);
            f2 = __ldg(x + o + 8);
            f3 = __ldg(x + o + 9);
        } else {
            const __half *x = (const __half *)p.x;
            f0 = __half2float(x[o]);
            f1 = __half2float(x[o + 1]);
            f2 = __half2float(x[o + 8]);
            f3 = __half2float(x[o + 9]);
        }
        if (p.as) {
            f0 *= __ldg(p.as + k);
            f1 *= __ldg(p.as + k + 1);
            f2 *= __ldg(p.as + k + 8);
            f3 *= __ldg(p.as + k + 9);
        }
        b[0] = pack_h2(f0, f1);
        b[1] = pack_h2(f2, f3);
    }
}

/* One 64-deep k-block of this warp's tiles. */
template <int MT, int XM>
__device__ __forceinline__ void w4_kblock(const w4_args &p, float (&acc)[W4_NT][MT][4],
                                          const uint4 (&a)[W4_NT], const bool (&tv)[W4_NT], int nt0,
                                          int kb, int chunk, int lane, int g, int t)
{
    /* zero-point and scale f16x2 constants for the block's two 32-deep halves (a group is >= 32) */
    uint32_t zz[W4_NT][2][2], ss[W4_NT][2][2];
    const int grp0 = (kb * 64) / p.G, grp1 = (kb * 64 + 32) / p.G;
#pragma unroll
    for (int i = 0; i < W4_NT; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            uint32_t s = 0, z = 0;
            if (tv[i]) {
                const size_t o = ((size_t)(nt0 + i) * p.NGP + (h ? grp1 : grp0)) * 8 + g;
                s = __ldg(p.sc + o);
                z = __ldg(p.zp + o);
            }
            zz[i][h][0] = (0x6400u | (z & 15u)) * 0x10001u;
            zz[i][h][1] = (0x6400u | (z >> 4)) * 0x10001u;
            ss[i][h][0] = (s & 0xffffu) * 0x10001u;
            ss[i][h][1] = (s >> 16) * 0x10001u;
        }
    const int KT = p.KB * 4;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const int kt = kb * 4 + c, h = c >> 1;
        uint32_t b[MT][2];
        if (XM == XM_FRAG) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const uint2 v = __ldg(p.xf + (((size_t)chunk * KT + kt) * MT + mt) * 32 + lane);
                b[mt][0] = v.x;
                b[mt][1] = v.y;
            }
        } else {
            load_b_direct<XM>(p, b[0], kt, g, t);
        }
#pragma unroll
        for (int i = 0; i < W4_NT; i++) {
            if (!tv[i])   /* warp-uniform: mma.sync needs the whole warp */
                continue;
            const uint32_t w = c == 0 ? a[i].x : c == 1 ? a[i].y : c == 2 ? a[i].z : a[i].w;
            const uint32_t a0 = dq2(w, 0, zz[i][h][0], ss[i][h][0]);
            const uint32_t a1 = dq2(w, 4, zz[i][h][1], ss[i][h][1]);
            const uint32_t a2 = dq2(w, 8, zz[i][h][0], ss[i][h][0]);
            const uint32_t a3 = dq2(w, 12, zz[i][h][1], ss[i][h][1]);
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                mma16816(acc[i][mt], a0, a1, a2, a3, b[mt][0], b[mt][1]);
        }
    }
}

__device__ __forceinline__ void w4_store(const w4_args &p, int m, int n, float v)
{
    if (p.y_f16)
        ((__half *)p.y)[(size_t)m * p.N + n] = __float2half_rn(v);
    else
        ((float *)p.y)[(size_t)m * p.N + n] = v;
}

template <int MT, int XM>
__global__ void __launch_bounds__(W4_WARPS * 32, 4) w4_fused_kernel(const w4_args p)
{
    __shared__ unsigned s_last;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int chunk = blockIdx.x;
    const int nt0 = (blockIdx.y * W4_WARPS + warp) * W4_NT;
    const int kb0 = blockIdx.z * p.kbps, kb1 = min(p.KB, kb0 + p.kbps);

    float acc[W4_NT][MT][4];
#pragma unroll
    for (int i = 0; i < W4_NT; i++)
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[i][mt][e] = 0.0f;

    bool tv[W4_NT];
    const uint4 *qp[W4_NT];
#pragma unroll
    for (int i = 0; i < W4_NT; i++) {
        tv[i] = nt0 + i < p.NTILES;
        qp[i] = p.q + (size_t)(tv[i] ? nt0 + i : 0) * p.KB * 32 + lane;
    }

    /* ring of W4_U k-blocks in flight: slot u holds block kb + u */
    uint4 ring[W4_U][W4_NT];
#pragma unroll
    for (int u = 0; u < W4_U; u++)
#pragma unroll
        for (int i = 0; i < W4_NT; i++)
            ring[u][i] = tv[i] && kb0 + u < kb1 ? ld_stream(qp[i] + (size_t)(kb0 + u) * 32) : make_uint4(0, 0, 0, 0);

    for (int kb = kb0; kb < kb1; kb += W4_U) {
#pragma unroll
        for (int u = 0; u < W4_U; u++) {
            const int k = kb + u;
            if (k < kb1) {
                uint4 cur[W4_NT];
#pragma unroll
                for (int i = 0; i < W4_NT; i++) {
                    cur[i] = ring[u][i];
                    if (tv[i] && k + W4_U < kb1)
                        ring[u][i] = ld_stream(qp[i] + (size_t)(k + W4_U) * 32);
                }
                w4_kblock<MT, XM>(p, acc, cur, tv, nt0, k, chunk, lane, g, t);
            }
        }
    }

    /* accumulator e of tile i, m-tile mt: column 16 (nt0 + i) + g (+8 for e >= 2), row 2t (+1 for odd e) */
    const int m_base = chunk * MT * 8;
    if (p.S == 1) {
#pragma unroll
        for (int i = 0; i < W4_NT; i++)
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int n = (nt0 + i) * 16 + g + (e & 2 ? 8 : 0);
                    const int m = m_base + mt * 8 + 2 * t + (e & 1);
                    if (tv[i] && n < p.N && m < p.M)
                        w4_store(p, m, n, acc[i][mt][e] + (p.bias ? __ldg(p.bias + n) : 0.0f));
                }
        return;
    }

    /* split K: store partials, then the last CTA to arrive at this output tile reduces them */
#pragma unroll
    for (int i = 0; i < W4_NT; i++)
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int n = (nt0 + i) * 16 + g + (e & 2 ? 8 : 0);
                const int m = m_base + mt * 8 + 2 * t + (e & 1);
                if (tv[i] && n < p.N && m < p.M)
                    p.part[((size_t)blockIdx.z * p.M + m) * p.N + n] = acc[i][mt][e];
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
        const int m = m_base + e / W4_COLS, n = n_base + e % W4_COLS;
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

/* X (x act_scale) to fp16 B fragments: xf[((chunk * KT + kt) * MT + mt) * 32 + lane] holds, for
 * row r = 8 (chunk * MT + mt) + lane / 4 and k = 16 kt + 2 (lane % 4), the pairs (k, k+1) and
 * (k+8, k+9); rows >= M and k >= K are zero. */
template <typename T>
__global__ void w4_frag_kernel(const T *__restrict__ x, const float *__restrict__ as, uint2 *__restrict__ xf,
                               int M, int K, int KT, int MT, size_t total)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int lane = (int)(i & 31);
        size_t r = i >> 5;
        const int mt = (int)(r % (size_t)MT);
        r /= (size_t)MT;
        const int kt = (int)(r % (size_t)KT), chunk = (int)(r / (size_t)KT);
        const int row = (chunk * MT + mt) * 8 + (lane >> 2), k = kt * 16 + 2 * (lane & 3);
        float f0 = 0.0f, f1 = 0.0f, f2 = 0.0f, f3 = 0.0f;
        if (row < M && kt * 16 < K) {
            const size_t o = (size_t)row * K + k;
            f0 = cu_load_f(x, o);
            f1 = cu_load_f(x, o + 1);
            f2 = cu_load_f(x, o + 8);
            f3 = cu_load_f(x, o + 9);
            if (as) {
                f0 *= as[k];
                f1 *= as[k + 1];
                f2 *= as[k + 8];
                f3 *= as[k + 9];
            }
        }
        xf[i] = make_uint2(pack_h2(f0, f1), pack_h2(f2, f3));
    }
}

/* ---- dequantize to fp16 [N, K] (large M) -------------------------------------------------------- */

/* out[(n - n0) * K + k] for columns n0..n0+ncols-1: each thread writes 8 consecutive k, which
 * come from the same nibble j of 4 consecutive lanes' words. */
__global__ void w4_dequant_kernel(const uint4 *__restrict__ q, const uint32_t *__restrict__ sc,
                                  const uint8_t *__restrict__ zp, __half *__restrict__ out, int K, int KB,
                                  int NGP, int G, int n0, int ncols)
{
    const size_t per_row = (size_t)K / 8, total = (size_t)ncols * per_row;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int nl = (int)(i / per_row), k = (int)(i % per_row) * 8, n = n0 + nl;
        const int nt = n >> 4, r = n & 15, g = r & 7, colhi = r >> 3;
        const int kb = k >> 6, c = (k >> 4) & 3, khalf = (k >> 3) & 1, j = colhi + 2 * khalf;
        const uint32_t *words = (const uint32_t *)(q + ((size_t)nt * KB + kb) * 32 + g * 4);
        const size_t po = ((size_t)nt * NGP + k / G) * 8 + g;
        const uint32_t s = __ldg(sc + po);
        const __half_raw sr = { (unsigned short)(colhi ? s >> 16 : s & 0xffffu) };
        const float scale = __half2float(__half(sr));
        const int zero = (__ldg(zp + po) >> (4 * colhi)) & 15;
        __half h[8];
#pragma unroll
        for (int tt = 0; tt < 4; tt++) {
            const uint32_t w = __ldg(words + tt * 4 + c);
            h[2 * tt] = __float2half_rn((float)((int)((w >> (4 * j)) & 15u) - zero) * scale);
            h[2 * tt + 1] = __float2half_rn((float)((int)((w >> (4 * (j + 4))) & 15u) - zero) * scale);
        }
        uint4 v;
        memcpy(&v, h, sizeof v);
        *(uint4 *)(out + (size_t)nl * K + k) = v;
    }
}

/* The fused kernel instances: direct f32 X, direct f16 X, fragments with MT = 1, 2, 4. */
static void (*kernel_of(int kind))(w4_args)
{
    switch (kind) {
    case XM_F32:
        return w4_fused_kernel<1, XM_F32>;
    case XM_F16:
        return w4_fused_kernel<1, XM_F16>;
    case 2:
        return w4_fused_kernel<1, XM_FRAG>;
    case 3:
        return w4_fused_kernel<2, XM_FRAG>;
    default:
        return w4_fused_kernel<4, XM_FRAG>;
    }
}

static unsigned grid_for(const struct cu_dev *d, size_t n, unsigned threads)
{
    unsigned b = cu_blocks(n, threads), cap = (unsigned)d->sms * 32u;
    return b < cap ? (b ? b : 1) : cap;
}

static int w4_cublas(struct cu_dev *d, const struct awq_gemm_w4_args *a, const struct cu_w4 *w)
{
    const char *op = "gemm_w4";
    const int M = a->M, N = w->N, K = w->K;
    const float *as = (const float *)cu_ptr(a->act_scale);
    const __half *x16 = (const __half *)cu_ptr(a->x);
    if (a->x_type != AWQ_DTYPE_F16 || as) {
        void *p;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_X16, (size_t)M * K * sizeof(__half), op, &p));
        CU_STATUS_TRY(cu_to_f16(d, op, a->x_type, cu_ptr(a->x), as, (__half *)p, (size_t)M, (size_t)K));
        x16 = (const __half *)p;
    }
    /* columns per dequantized chunk: all of them unless the fp16 copy would exceed the cap */
    size_t cap_cols = W4_DEQUANT_SCRATCH / ((size_t)K * sizeof(__half));
    int nc = N;
    if (cap_cols < (size_t)N)
        nc = cap_cols < 128 ? 128 : (int)(cap_cols / 128 * 128);
    void *wp;
    CU_STATUS_TRY(cu_scratch(d, CU_SCR_W16, (size_t)nc * K * sizeof(__half), op, &wp));
    const size_t es = awq_dtype_size(a->y_type);
    const float *bias = (const float *)cu_ptr(a->bias);
    for (int n0 = 0; n0 < N; n0 += nc) {
        const int ncur = N - n0 < nc ? N - n0 : nc;
        const size_t work = (size_t)ncur * (K / 8);
        w4_dequant_kernel<<<grid_for(d, work, 256), 256, 0, d->stream>>>(w->q, w->sc, w->zp, (__half *)wp, K,
                                                                         w->KB, w->NGP, w->G, n0, ncur);
        CU_LAUNCHED(d, op, "w4_dequant_kernel");
        CU_STATUS_TRY(cu_gemm_f16(d, op, M, ncur, K, (const __half *)wp, x16, (char *)cu_ptr(a->y) + (size_t)n0 * es,
                                  N, a->y_type, bias ? bias + n0 : NULL));
    }
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

    const int MT = M <= 8 ? 1 : M <= 16 ? 2 : 4;
    const int xm = M > 1 ? XM_FRAG : a->x_type == AWQ_DTYPE_F16 ? XM_F16 : XM_F32;
    const size_t chunks = ((size_t)M + MT * 8 - 1) / (MT * 8);
    const size_t col_groups = ((size_t)w->NTILES + W4_WARPS * W4_NT - 1) / (W4_WARPS * W4_NT);
    if (col_groups > 65535 || chunks > 0x7fffffffu)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cuda gemm_w4: N = %d or M = %d too large for one launch",
                           w->N, M);
    const int kind = xm == XM_FRAG ? (MT == 1 ? 2 : MT == 2 ? 3 : 4) : xm;
    void (*kernel)(w4_args) = kernel_of(kind);
    int *occ = &d->w4_occupancy[kind];
    if (*occ <= 0) {
        CU_TRY(d, op, cudaOccupancyMaxActiveBlocksPerMultiprocessor(occ, kernel, W4_WARPS * 32, 0));
        if (*occ <= 0)
            *occ = 1;
    }
    /* Split K so that the grid fills the resident CTA slots once: a partial second wave would
     * double the time of the CTAs in it (each warp keeps 4 KiB of weights in flight, so a full
     * wave saturates memory bandwidth even when the SMs hold unequal numbers of CTAs). */
    const size_t base = chunks * col_groups, slots = (size_t)d->sms * (size_t)*occ;
    int S = 1;
    if (base < slots) {
        size_t want = slots / base;
        size_t most = w->KB / 2 > 1 ? (size_t)(w->KB / 2) : 1;
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
    p.x = cu_ptr(a->x);
    p.as = (const float *)cu_ptr(a->act_scale);
    p.bias = (const float *)cu_ptr(a->bias);
    p.y = cu_ptr(a->y);
    p.M = M;
    p.N = w->N;
    p.K = w->K;
    p.G = w->G;
    p.KB = w->KB;
    p.NGP = w->NGP;
    p.NTILES = w->NTILES;
    p.kbps = kbps;
    p.S = S;
    p.y_f16 = a->y_type == AWQ_DTYPE_F16;

    if (xm == XM_FRAG) {
        const int KT = w->KB * 4;
        const size_t total = chunks * KT * MT * 32;
        void *xf;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_X16, total * sizeof(uint2), op, &xf));
        if (a->x_type == AWQ_DTYPE_F16)
            w4_frag_kernel<__half><<<grid_for(d, total, 256), 256, 0, d->stream>>>(
                (const __half *)p.x, p.as, (uint2 *)xf, M, w->K, KT, MT, total);
        else
            w4_frag_kernel<float><<<grid_for(d, total, 256), 256, 0, d->stream>>>(
                (const float *)p.x, p.as, (uint2 *)xf, M, w->K, KT, MT, total);
        CU_LAUNCHED(d, op, "w4_frag_kernel");
        p.xf = (const uint2 *)xf;
    }
    if (S > 1) {
        void *part, *cnt;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_PART, (size_t)S * M * w->N * sizeof(float), op, &part));
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_COUNTERS, base * sizeof(unsigned), op, &cnt));
        p.part = (float *)part;
        p.cnt = (unsigned *)cnt;
    }
    const dim3 grid((unsigned)chunks, (unsigned)col_groups, (unsigned)S), block(W4_WARPS * 32);
    kernel<<<grid, block, 0, d->stream>>>(p);
    CU_LAUNCHED(d, op, "w4_fused_kernel");
    return 0;
}
