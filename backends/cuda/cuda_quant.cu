/* CUDA ops of calibration and search: activation statistics, pseudo-quantization, the clip
 * search error table, the squared-error reduction and column scaling. The quantization arithmetic
 * is the CPU's (src/quant/q4.h) operation for operation, in fp32 with IEEE division and no
 * contraction into FMAs, so codes agree except on exact rounding ties. Every reduction has a
 * fixed order that depends only on the shapes: results are deterministic. */
#include "config.h"

#include <math.h>

#include "cuda_internal.h"

#define EW_THREADS 256

static unsigned ew_grid(const struct cu_dev *d, size_t n)
{
    unsigned b = cu_blocks(n, EW_THREADS), cap = (unsigned)d->sms * 16u;
    return b < cap ? (b ? b : 1) : cap;
}

/* ---- q4 arithmetic (src/quant/q4.h) ------------------------------------------------------------ */

__device__ __forceinline__ float q4_clamp15(float v)
{
    return v < 0.0f ? 0.0f : (v > 15.0f ? 15.0f : v);
}

__device__ __forceinline__ float q4_scale(float mn, float mx)
{
    const float r = __fsub_rn(mx, mn);
    return __fdiv_rn(r > 1e-5f ? r : 1e-5f, 15.0f);
}

__device__ __forceinline__ float q4_zero(float mn, float scale)
{
    return q4_clamp15(-rintf(__fdiv_rn(mn, scale)));
}

__device__ __forceinline__ float q4_code(float v, float scale, float zero)
{
    return q4_clamp15(__fadd_rn(rintf(__fdiv_rn(v, scale)), zero));
}

/* ---- act_stats ----------------------------------------------------------------------------------
 * Block (32 x 8 threads) = 32 * V columns x a range of rows; thread (tx, ty) reads V adjacent
 * columns (one 16-byte load when V > 1) of rows ty, ty + 8, ... Per column the 8 row lanes are
 * combined in order, then the row ranges ("splits") in order by the last block to finish its
 * column range; the result is added to the accumulators. */

#define AS_TX 32
#define AS_TY 8
#define AS_MIN_ROWS 512
#define AS_MAX_SPLITS 128

template <typename T, int V>
__device__ __forceinline__ void load_vec(const T *p, float (&v)[V]);

template <>
__device__ __forceinline__ void load_vec<float, 1>(const float *p, float (&v)[1])
{
    v[0] = __ldg(p);
}
template <>
__device__ __forceinline__ void load_vec<__half, 1>(const __half *p, float (&v)[1])
{
    v[0] = __half2float(p[0]);
}
template <>
__device__ __forceinline__ void load_vec<float, 4>(const float *p, float (&v)[4])
{
    const float4 f = __ldg((const float4 *)p);
    v[0] = f.x;
    v[1] = f.y;
    v[2] = f.z;
    v[3] = f.w;
}
template <>
__device__ __forceinline__ void load_vec<__half, 8>(const __half *p, float (&v)[8])
{
    const uint4 u = __ldg((const uint4 *)p);
    __half2 h[4];
    memcpy(h, &u, sizeof u);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 f = __half22float2(h[j]);
        v[2 * j] = f.x;
        v[2 * j + 1] = f.y;
    }
}

struct stats_args {
    const void *x;
    int T, C, rows_per, S;
    double *part;      /* [S][3][C]: sum |x|, sum x², max |x| */
    unsigned *cnt;     /* [gridDim.x] */
    float *sa, *ma, *sq;
};

__device__ __forceinline__ void stats_apply(const stats_args &p, int c, double s_abs, double s_sq, float mx)
{
    if (p.sa)
        p.sa[c] += (float)s_abs;
    if (p.sq)
        p.sq[c] += (float)s_sq;
    if (p.ma)
        p.ma[c] = mx > p.ma[c] ? mx : p.ma[c];
}

template <typename T, int V>
__global__ void __launch_bounds__(AS_TX * AS_TY) act_stats_kernel(const stats_args p)
{
    __shared__ float red[3][AS_TY][AS_TX * V];
    __shared__ unsigned s_last;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * AS_TX + tx;
    const int ncol = AS_TX * V, cb = blockIdx.x * ncol;
    const int c0 = cb + tx * V;
    const int r0 = blockIdx.y * p.rows_per, r1 = min(p.T, r0 + p.rows_per);
    const T *x = (const T *)p.x;
    float s_abs[V], s_sq[V], mx[V];
#pragma unroll
    for (int j = 0; j < V; j++)
        s_abs[j] = s_sq[j] = mx[j] = 0.0f;
    if (c0 < p.C) {
#pragma unroll 4
        for (int r = r0 + ty; r < r1; r += AS_TY) {
            float v[V];
            load_vec<T, V>(x + (size_t)r * p.C + c0, v);
#pragma unroll
            for (int j = 0; j < V; j++) {
                const float a = fabsf(v[j]);
                s_abs[j] += a;
                s_sq[j] += a * a;
                mx[j] = a > mx[j] ? a : mx[j];
            }
        }
    }
#pragma unroll
    for (int j = 0; j < V; j++) {
        red[0][ty][tx * V + j] = s_abs[j];
        red[1][ty][tx * V + j] = s_sq[j];
        red[2][ty][tx * V + j] = mx[j];
    }
    __syncthreads();
    for (int cc = tid; cc < ncol; cc += AS_TX * AS_TY) {
        const int c = cb + cc;
        if (c >= p.C)
            continue;
        double sa = 0.0, sq = 0.0;
        float m = 0.0f;
        for (int y = 0; y < AS_TY; y++) {
            sa += red[0][y][cc];
            sq += red[1][y][cc];
            m = red[2][y][cc] > m ? red[2][y][cc] : m;
        }
        if (p.S == 1) {
            stats_apply(p, c, sa, sq, m);
        } else {
            double *pp = p.part + (size_t)blockIdx.y * 3 * p.C;
            pp[c] = sa;
            pp[(size_t)p.C + c] = sq;
            pp[2 * (size_t)p.C + c] = m;
        }
    }
    if (p.S == 1)
        return;
    __threadfence();
    __syncthreads();
    if (tid == 0)
        s_last = atomicAdd(p.cnt + blockIdx.x, 1u) == (unsigned)p.S - 1;
    __syncthreads();
    if (!s_last)
        return;
    __threadfence();
    for (int cc = tid; cc < ncol; cc += AS_TX * AS_TY) {
        const int c = cb + cc;
        if (c >= p.C)
            continue;
        double sa = 0.0, sq = 0.0;
        float m = 0.0f;
        for (int s = 0; s < p.S; s++) {
            const double *pp = p.part + (size_t)s * 3 * p.C;
            sa += __ldcg(pp + c);
            sq += __ldcg(pp + (size_t)p.C + c);
            const float ms = (float)__ldcg(pp + 2 * (size_t)p.C + c);
            m = ms > m ? ms : m;
        }
        stats_apply(p, c, sa, sq, m);
    }
    if (tid == 0)
        p.cnt[blockIdx.x] = 0;
}

int cu_act_stats(void *dev, const struct awq_act_stats_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "act_stats";
    CU_STATUS_TRY(cu_begin(d, op));
    const size_t es = awq_dtype_size(a->x_type);
    CU_STATUS_TRY(cu_check_align(d, op, "X", a->x, es));
    CU_STATUS_TRY(cu_check_align(d, op, "sum_abs", a->sum_abs, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "max_abs", a->max_abs, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "sum_sq", a->sum_sq, 4));
    if (!a->sum_abs.buf && !a->max_abs.buf && !a->sum_sq.buf)
        return 0;
    stats_args p;
    p.x = cu_ptr(a->x);
    p.T = a->T;
    p.C = a->C;
    p.sa = (float *)cu_ptr(a->sum_abs);
    p.ma = (float *)cu_ptr(a->max_abs);
    p.sq = (float *)cu_ptr(a->sum_sq);
    /* rows per block: a function of T only, so the summation order is too */
    int rows = (a->T + AS_MAX_SPLITS - 1) / AS_MAX_SPLITS;
    rows = rows < AS_MIN_ROWS ? AS_MIN_ROWS : (rows + AS_TY - 1) / AS_TY * AS_TY;
    p.rows_per = rows;
    p.S = (a->T + rows - 1) / rows;
    /* 16-byte loads when every row starts 16-byte aligned */
    const int V = (int)(16 / es);
    const int vec = ((uintptr_t)p.x % 16 == 0) && a->C % V == 0;
    const int ncol = AS_TX * (vec ? V : 1);
    const unsigned col_blocks = (unsigned)((a->C + ncol - 1) / ncol);
    p.part = NULL;
    p.cnt = NULL;
    if (p.S > 1) {
        void *part, *cnt;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_PART, (size_t)p.S * 3 * a->C * sizeof(double), op, &part));
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_COUNTERS, (size_t)col_blocks * sizeof(unsigned), op, &cnt));
        p.part = (double *)part;
        p.cnt = (unsigned *)cnt;
    }
    const dim3 grid(col_blocks, (unsigned)p.S), block(AS_TX, AS_TY);
    if (a->x_type == AWQ_DTYPE_F16) {
        if (vec)
            act_stats_kernel<__half, 8><<<grid, block, 0, d->stream>>>(p);
        else
            act_stats_kernel<__half, 1><<<grid, block, 0, d->stream>>>(p);
    } else {
        if (vec)
            act_stats_kernel<float, 4><<<grid, block, 0, d->stream>>>(p);
        else
            act_stats_kernel<float, 1><<<grid, block, 0, d->stream>>>(p);
    }
    CU_LAUNCHED(d, op, "act_stats_kernel");
    return 0;
}

/* ---- pseudo_quant: one warp per (row, group) --------------------------------------------------- */

__global__ void pseudo_quant_kernel(const float *w, const float *__restrict__ s, float *out, int N, int K, int G)
{
    const size_t wid = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31, ng = K / G;
    if (wid >= (size_t)N * ng)   /* whole warps leave together */
        return;
    const size_t base = (wid / ng) * (size_t)K + (size_t)(wid % ng) * G;
    const float *wr = w + base, *sr = s ? s + (wid % ng) * (size_t)G : NULL;
    float mn = INFINITY, mx = -INFINITY;
    for (int i = lane; i < G; i += 32) {
        const float v = sr ? __fmul_rn(wr[i], sr[i]) : wr[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    mn = cu_warp_min(mn);
    mx = cu_warp_max(mx);
    const float scale = q4_scale(mn, mx), zero = q4_zero(mn, scale);
    float *orow = out + base;
    /* in place (out == w) is safe: each lane rewrites only the elements it read, after the
     * warp-wide min/max (whose shuffles order all reads before any write) */
    for (int i = lane; i < G; i += 32) {
        const float v = sr ? __fmul_rn(wr[i], sr[i]) : wr[i];
        const float dq = __fmul_rn(__fsub_rn(q4_code(v, scale, zero), zero), scale);
        orow[i] = sr ? __fdiv_rn(dq, sr[i]) : dq;
    }
}

int cu_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "pseudo_quant";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "w", a->w, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "in_scale", a->in_scale, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "out", a->out, 4));
    const size_t warps = (size_t)a->N * (a->K / a->G);
    pseudo_quant_kernel<<<cu_blocks(warps * 32, 256), 256, 0, d->stream>>>(
        (const float *)cu_ptr(a->w), (const float *)cu_ptr(a->in_scale), (float *)cu_ptr(a->out), a->N, a->K, a->G);
    CU_LAUNCHED(d, op, "pseudo_quant_kernel");
    return 0;
}

/* ---- clip_search ---------------------------------------------------------------------------------
 * Block = one group g x up to 64 (shrink, row) pairs ("rows" r: shrink sb * SPB + r / NB, output
 * channel n0 + r % NB). Phase 1 builds D[r][k] = clipped-and-quantized w - w in shared memory (a
 * warp per row). Phase 2 streams the sampled tokens in tiles of 16: thread (tt, rg) computes the
 * partial products of token tt with rows 4 rg .. 4 rg + 3 and accumulates their squares in double.
 * Phase 3 adds the 16 token lanes of each row in order. */

#define CS_TT 16
#define CS_ROWS 64
#define CS_SMEM (48 * 1024)

struct clip_args {
    const float *w, *x;
    float *err;
    int N, K, G, T, ns, R, NB, SPB;
    float shrink[AWQ_MAX_SHRINK];
};

__global__ void __launch_bounds__(256) clip_search_kernel(const clip_args p)
{
    extern __shared__ float sm[];
    const int G = p.G, ld = G + 1, grp = blockIdx.x, ng = p.K / G;
    const int n0 = blockIdx.y * p.NB, s0 = blockIdx.z * p.SPB;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *D = sm;                              /* [R][G + 1] */
    float *Xs = sm + (size_t)p.R * ld;          /* [CS_TT][G + 1] */

    for (int r = warp; r < p.R; r += 8) {
        const int si = s0 + r / p.NB, n = n0 + r % p.NB;
        float *dr = D + (size_t)r * ld;
        if (si >= p.ns || n >= p.N || r >= p.SPB * p.NB) {
            for (int i = lane; i < G; i += 32)
                dr[i] = 0.0f;
            continue;
        }
        const float *wg = p.w + (size_t)n * p.K + (size_t)grp * G;
        float amax = 0.0f;
        for (int i = lane; i < G; i += 32)
            amax = fabsf(wg[i]) > amax ? fabsf(wg[i]) : amax;
        amax = cu_warp_max(amax);
        const float m = __fmul_rn(amax, p.shrink[si]);
        float mn = INFINITY, mx = -INFINITY;
        for (int i = lane; i < G; i += 32) {
            const float c = wg[i] < -m ? -m : (wg[i] > m ? m : wg[i]);
            mn = c < mn ? c : mn;
            mx = c > mx ? c : mx;
        }
        mn = cu_warp_min(mn);
        mx = cu_warp_max(mx);
        const float scale = q4_scale(mn, mx), zero = q4_zero(mn, scale);
        for (int i = lane; i < G; i += 32) {
            const float c = wg[i] < -m ? -m : (wg[i] > m ? m : wg[i]);
            dr[i] = __fsub_rn(__fmul_rn(__fsub_rn(q4_code(c, scale, zero), zero), scale), wg[i]);
        }
    }

    const int tt = threadIdx.x % CS_TT, rg = threadIdx.x / CS_TT;   /* rows 4 rg .. 4 rg + 3 */
    double e[4] = { 0.0, 0.0, 0.0, 0.0 };
    for (int t0 = 0; t0 < p.T; t0 += CS_TT) {
        __syncthreads();   /* D is complete / the previous tile is consumed */
        for (int idx = threadIdx.x; idx < CS_TT * G; idx += blockDim.x) {
            const int r = idx / G, k = idx % G;
            Xs[r * ld + k] = t0 + r < p.T ? p.x[(size_t)(t0 + r) * p.K + (size_t)grp * G + k] : 0.0f;
        }
        __syncthreads();
        float acc[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
        const float *xr = Xs + tt * ld;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = rg * 4 + i;
            if (r < p.R) {
                const float *dr = D + (size_t)r * ld;
                float a = 0.0f;
                for (int k = 0; k < G; k++)
                    a += xr[k] * dr[k];
                acc[i] = a;
            }
        }
        if (t0 + tt < p.T)
#pragma unroll
            for (int i = 0; i < 4; i++)
                e[i] += (double)acc[i] * acc[i];
    }
    __syncthreads();
    /* D is no longer needed: reuse its space (R * (G + 1) floats >= 64 * 16 doubles? see host) */
    double *red = (double *)sm;   /* [CS_ROWS][CS_TT] */
#pragma unroll
    for (int i = 0; i < 4; i++)
        red[(rg * 4 + i) * CS_TT + tt] = e[i];
    __syncthreads();
    for (int r = threadIdx.x; r < p.R && r < p.SPB * p.NB; r += blockDim.x) {
        const int si = s0 + r / p.NB, n = n0 + r % p.NB;
        if (si >= p.ns || n >= p.N)
            continue;
        double s = 0.0;
        for (int j = 0; j < CS_TT; j++)
            s += red[r * CS_TT + j];
        p.err[((size_t)si * p.N + n) * ng + grp] = (float)s;
    }
}

int cu_clip_search(void *dev, const struct awq_clip_search_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "clip_search";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "w", a->w, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "x", a->x, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "err", a->err, 4));
    const int G = a->G;
    /* rows of D that fit next to the token tile in 48 KiB; the space must also hold the phase 3
     * table of CS_ROWS x CS_TT doubles */
    size_t fit = CS_SMEM / ((size_t)(G + 1) * sizeof(float));
    int R = fit > CS_TT ? (int)(fit - CS_TT) : 0;
    if (R > CS_ROWS)
        R = CS_ROWS;
    if (R < 1)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cuda clip_search: group size %d too large (max %d)",
                           G, (int)(CS_SMEM / sizeof(float) / (CS_TT + 1)) - 1);
    size_t smem = (size_t)(R + CS_TT) * (G + 1) * sizeof(float);
    const size_t red_bytes = (size_t)CS_ROWS * CS_TT * sizeof(double);
    if (smem < red_bytes)
        smem = red_bytes;
    clip_args p;
    p.w = (const float *)cu_ptr(a->w);
    p.x = (const float *)cu_ptr(a->x);
    p.err = (float *)cu_ptr(a->err);
    p.N = a->N;
    p.K = a->K;
    p.G = G;
    p.T = a->T;
    p.ns = a->n_shrink;
    p.R = R;
    p.SPB = a->n_shrink < R ? a->n_shrink : R;   /* shrinks per block */
    p.NB = R / p.SPB;                            /* output channels per block */
    for (int i = 0; i < AWQ_MAX_SHRINK; i++)
        p.shrink[i] = i < a->n_shrink ? a->shrink[i] : 0.0f;
    const size_t nblk = ((size_t)a->N + p.NB - 1) / p.NB;
    const unsigned sblk = (unsigned)((a->n_shrink + p.SPB - 1) / p.SPB);
    if (nblk > 65535)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cuda clip_search: N = %d too large", a->N);
    const dim3 grid((unsigned)(a->K / G), (unsigned)nblk, sblk);
    clip_search_kernel<<<grid, 256, smem, d->stream>>>(p);
    CU_LAUNCHED(d, op, "clip_search_kernel");
    return 0;
}

/* ---- sq_err: block partials in double, then one block adds them in order ------------------------ */

#define SQ_THREADS 256
#define SQ_MAX_BLOCKS 1024

__global__ void __launch_bounds__(SQ_THREADS) sq_err_partial_kernel(const float *__restrict__ a,
                                                                     const float *__restrict__ b, size_t n,
                                                                     double *__restrict__ part)
{
    __shared__ double sh[32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)SQ_THREADS + threadIdx.x; i < n; i += (size_t)gridDim.x * SQ_THREADS) {
        const double dd = (double)a[i] - (double)b[i];
        s += dd * dd;
    }
    s = cu_block_sum(s, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

__global__ void __launch_bounds__(SQ_THREADS) sq_err_final_kernel(const double *__restrict__ part, int nb,
                                                                   float *__restrict__ out)
{
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += SQ_THREADS)
        s += part[i];
    s = cu_block_sum(s, sh);
    if (threadIdx.x == 0)
        out[0] = (float)s;
}

int cu_sq_err(void *dev, const struct awq_sq_err_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "sq_err";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "a", a->a, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "b", a->b, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "out", a->out, 4));
    /* the block count depends on n only: a fixed summation order */
    size_t nb = (a->n + SQ_THREADS * 8 - 1) / (SQ_THREADS * 8);
    nb = nb < 1 ? 1 : (nb > SQ_MAX_BLOCKS ? SQ_MAX_BLOCKS : nb);
    void *part;
    CU_STATUS_TRY(cu_scratch(d, CU_SCR_PART, nb * sizeof(double), op, &part));
    sq_err_partial_kernel<<<(unsigned)nb, SQ_THREADS, 0, d->stream>>>(
        (const float *)cu_ptr(a->a), (const float *)cu_ptr(a->b), a->n, (double *)part);
    CU_LAUNCHED(d, op, "sq_err_partial_kernel");
    sq_err_final_kernel<<<1, SQ_THREADS, 0, d->stream>>>((const double *)part, (int)nb, (float *)cu_ptr(a->out));
    CU_LAUNCHED(d, op, "sq_err_final_kernel");
    return 0;
}

/* ---- scale_cols ------------------------------------------------------------------------------------ */

__global__ void scale_cols_kernel(float *__restrict__ x, const float *__restrict__ s, size_t n, int C, int divide)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float sc = s[i % (size_t)C];
        x[i] = divide ? __fdiv_rn(x[i], sc) : __fmul_rn(x[i], sc);
    }
}

int cu_scale_cols(void *dev, const struct awq_scale_cols_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "scale_cols";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "x", a->x, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "s", a->s, 4));
    const size_t n = (size_t)a->T * a->C;
    scale_cols_kernel<<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>((float *)cu_ptr(a->x),
                                                                    (const float *)cu_ptr(a->s), n, a->C,
                                                                    a->divide);
    CU_LAUNCHED(d, op, "scale_cols_kernel");
    return 0;
}
