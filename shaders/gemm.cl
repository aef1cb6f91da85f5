/* Unquantized Y[M,N] = X[M,K] · W[N,K]ᵀ + bias (W in the Hugging Face [out, in] layout), with X, W
 * and Y each fp32 or fp16; fp32 accumulation.
 *
 *   gemv_f_r{1,2,4}  small M: a team of GV_TS work-items strides along one row of W (coalesced),
 *                    GV_NR rows of W per work-group, then a fixed-order tree over the team.
 *   gemm_f_tiled     local-memory tiles of X and W (BM x 32 and BN x 32), TM x TN register
 *                    blocks, the next tile's global loads issued before the current tile's math.
 */

/* ---- GEMV ----------------------------------------------------------------------------------- */

AWQ_INLINE void gemv_f_body(const int R, global const uchar *x, ulong xo, int x_f16, global const uchar *w,
                 ulong wo, int w_f16, global const float *bias, int has_bias, global uchar *y,
                 ulong yo, int y_f16, int M, int N, int K, local float *red)
{
    const int t = get_local_id(0), nr = get_local_id(1);
    const int n = get_group_id(0) * GV_NR + nr;
    const int m0 = get_group_id(1) * R;
    float acc[4];
    ulong xr[4];
    for (int r = 0; r < R; r++) {
        acc[r] = 0.0f;
        xr[r] = xo + (ulong)min(m0 + r, M - 1) * (ulong)K;
    }
    if (n < N) {
        ulong wr = wo + (ulong)n * (ulong)K;
        int k = 4 * t;
        for (; k + 3 < K; k += 4 * GV_TS) {
            float4 wv = ld4(w, wr + (ulong)k, w_f16);
            for (int r = 0; r < R; r++) {
                float4 xv = ld4(x, xr[r] + (ulong)k, x_f16);
                float p = acc[r];
                p = fma(xv.x, wv.x, p);
                p = fma(xv.y, wv.y, p);
                p = fma(xv.z, wv.z, p);
                p = fma(xv.w, wv.w, p);
                acc[r] = p;
            }
        }
        for (k = (K & ~3) + t; k < K; k += GV_TS) {     /* K % 4 tail */
            float wv = ld1(w, wr + (ulong)k, w_f16);
            for (int r = 0; r < R; r++)
                acc[r] = fma(ld1(x, xr[r] + (ulong)k, x_f16), wv, acc[r]);
        }
    }
    for (int r = 0; r < R; r++)
        red[(nr * R + r) * GV_TS + t] = acc[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = GV_TS >> 1; s > 0; s >>= 1) {
        if (t < s)
            for (int r = 0; r < R; r++)
                red[(nr * R + r) * GV_TS + t] += red[(nr * R + r) * GV_TS + t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0 && n < N) {
        float b = has_bias ? bias[n] : 0.0f;
        for (int r = 0; r < R; r++)
            if (m0 + r < M)
                st1(y, yo + (ulong)(m0 + r) * (ulong)N + (ulong)n, red[(nr * R + r) * GV_TS] + b,
                    y_f16);
    }
}

#define GEMV_F_KERNEL(R)                                                                           \
    kernel __attribute__((reqd_work_group_size(GV_TS, GV_NR, 1))) void gemv_f_r##R(              \
        global const uchar *x, ulong xo, int x_f16, global const uchar *w, ulong wo, int w_f16,    \
        global const float *bias, ulong bo, int has_bias, global uchar *y, ulong yo, int y_f16,    \
        int M, int N, int K)                                                                       \
    {                                                                                              \
        local float red[GV_NR * R * GV_TS];                                                        \
        gemv_f_body(R, x, xo, x_f16, w, wo, w_f16, bias + bo, has_bias, y, yo, y_f16, M, N, K,     \
                    red);                                                                          \
    }

GEMV_F_KERNEL(1)
GEMV_F_KERNEL(2)
GEMV_F_KERNEL(4)

/* ---- tiled ---------------------------------------------------------------------------------- */

#define BK 32
#define TX (BN / TN)
#define TY (BM / TM)
#define WGS (TX * TY)
#define XL (BM * BK / 4 / WGS)
#define WL (BN * BK / 4 / WGS)
#define RS (TY * 4)
#define CS (TX * 4)
#if (BM * BK / 4) % WGS != 0 || (BN * BK / 4) % WGS != 0 || TM % 4 != 0 || TN % 4 != 0
#error "gemm: tile parameters do not divide"
#endif

/* Four consecutive elements k..k+3 of row `row` of a [rows, K] tensor; zeros outside. */
float4 ld4_guard(global const uchar *p, ulong po, int f16, int row, int rows, int K, int k)
{
    if (row >= rows)
        return (float4)(0.0f);
    ulong base = po + (ulong)row * (ulong)K;
    if (k + 3 < K)
        return ld4(p, base + (ulong)k, f16);
    float4 v = (float4)(0.0f);
    if (k < K)
        v.x = ld1(p, base + (ulong)k, f16);
    if (k + 1 < K)
        v.y = ld1(p, base + (ulong)k + 1, f16);
    if (k + 2 < K)
        v.z = ld1(p, base + (ulong)k + 2, f16);
    return v;
}

kernel __attribute__((reqd_work_group_size(TX, TY, 1))) void gemm_f_tiled(
    global const uchar *x, ulong xo, int x_f16, global const uchar *w, ulong wo, int w_f16,
    global const float *bias, ulong bo, int has_bias, global uchar *y, ulong yo, int y_f16, int M,
    int N, int K)
{
    local float4 As4[BK * BM / 4];      /* [k][m] */
    local float4 Bs4[BK * BN / 4];      /* [k][n] */
    local float *As = (local float *)As4, *Bs = (local float *)Bs4;
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * TX + tx;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    bias += bo;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            acc[i][j] = 0.0f;

    float4 xv[XL], wv[WL];
#pragma unroll
    for (int i = 0; i < XL; i++) {
        int idx = lid + i * WGS;
        xv[i] = ld4_guard(x, xo, x_f16, m0 + idx % BM, M, K, 4 * (idx / BM));
    }
#pragma unroll
    for (int i = 0; i < WL; i++) {
        int idx = lid + i * WGS;
        wv[i] = ld4_guard(w, wo, w_f16, n0 + idx % BN, N, K, 4 * (idx / BN));
    }

    for (int k0 = 0; k0 < K; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int i = 0; i < XL; i++) {
            int idx = lid + i * WGS, r = idx % BM, q = idx / BM;
            As[(4 * q + 0) * BM + r] = xv[i].x;
            As[(4 * q + 1) * BM + r] = xv[i].y;
            As[(4 * q + 2) * BM + r] = xv[i].z;
            As[(4 * q + 3) * BM + r] = xv[i].w;
        }
#pragma unroll
        for (int i = 0; i < WL; i++) {
            int idx = lid + i * WGS, r = idx % BN, q = idx / BN;
            Bs[(4 * q + 0) * BN + r] = wv[i].x;
            Bs[(4 * q + 1) * BN + r] = wv[i].y;
            Bs[(4 * q + 2) * BN + r] = wv[i].z;
            Bs[(4 * q + 3) * BN + r] = wv[i].w;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + BK < K) {
            int k1 = k0 + BK;
#pragma unroll
            for (int i = 0; i < XL; i++) {
                int idx = lid + i * WGS;
                xv[i] = ld4_guard(x, xo, x_f16, m0 + idx % BM, M, K, k1 + 4 * (idx / BM));
            }
#pragma unroll
            for (int i = 0; i < WL; i++) {
                int idx = lid + i * WGS;
                wv[i] = ld4_guard(w, wo, w_f16, n0 + idx % BN, N, K, k1 + 4 * (idx / BN));
            }
        }
#pragma unroll 4
        for (int kk = 0; kk < BK; kk++) {
            float a[TM], b[TN];
#pragma unroll
            for (int ig = 0; ig < TM / 4; ig++) {
                float4 t = As4[(kk * BM + ig * RS + ty * 4) / 4];
                a[4 * ig] = t.x;
                a[4 * ig + 1] = t.y;
                a[4 * ig + 2] = t.z;
                a[4 * ig + 3] = t.w;
            }
#pragma unroll
            for (int jg = 0; jg < TN / 4; jg++) {
                float4 t = Bs4[(kk * BN + jg * CS + tx * 4) / 4];
                b[4 * jg] = t.x;
                b[4 * jg + 1] = t.y;
                b[4 * jg + 2] = t.z;
                b[4 * jg + 3] = t.w;
            }
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        int m = m0 + (i / 4) * RS + ty * 4 + (i % 4);
        if (m >= M)
            continue;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int n = n0 + (j / 4) * CS + tx * 4 + (j % 4);
            if (n < N)
                st1(y, yo + (ulong)m * (ulong)N + (ulong)n, acc[i][j] + (has_bias ? bias[n] : 0.0f),
                    y_f16);
        }
    }
}
