/* 4-bit matrix products Y[M,N] = (X ⊙ act) · dequant(W) + bias, on weights repacked at w4_create.
 *
 * Packed layout (the host side is backends/opencl/ocl_gemm.c):
 *   codes   uint4 blocks; block ((nb*KC + kc)*PN + c) holds the 32 codes of column n = nb*PN + c
 *           for k = 32*kc .. 32*kc+31: word j, nibble e <-> k = 32*kc + 8*j + e.  KC = K/32.
 *           PN work-items reading chunk kc of PN consecutive columns read PN*16 contiguous bytes.
 *   scales  half  [K/G, Npad]
 *   zeros   uchar [K/G, Npad]      (Npad = N rounded up to PN; padding columns are 0)
 * A 32-code chunk never straddles a group (G is 32, 64 or 128).
 *
 * Dequantization without int->float conversions: as_float(0x4B000000 | q) is 2^23 + q exactly, so
 * subtracting 2^23 + zero gives q - zero exactly; the scale is applied once per chunk (GEMV) or
 * when the tile is written to local memory (tiled kernel). Accumulation is fp32.
 *
 * Compile-time parameters (-D, from the per-vendor table in ocl_params.c):
 *   PN, KS, UNR   GEMV: columns per block (work-items along N), K slices per work-group, chunks
 *                 loaded ahead per iteration
 *   XS            GEMV: floats of X staged in local memory (a multiple of 256)
 *   BM, BN, TM, TN  tiled kernel: block of BM rows x BN columns, TM x TN outputs per work-item
 */

#define MAGIC 8388608.0f
#define MAGIC_BITS 0x4B000000u

/* code e of word w minus the zero point (zf = 2^23 + zero) */
float nib(uint w, int e, float zf)
{
    return as_float(((w >> (4 * e)) & 15u) | MAGIC_BITS) - zf;
}

/* ---- GEMV (small M): each packed weight is read once; R rows of X share it ----------------
 * (Where the tensor-core kernels are enabled, gemm_mma.cl's gemv_w4_mma replaces it for G % 128
 * == 0: this one spends about 4 instructions per code and is instruction-bound on GPUs.)
 *
 * Work-group = PN columns x KS slices of K. K is walked in segments of XSEG = XS / R values: the
 * work-group first stages the segment of its R rows of X in local memory (converted to fp32, the
 * activation scale applied), then every item streams its packed chunks of the segment, reading X
 * back as aligned float4 broadcasts. The KS partial sums of a column are added in a fixed order. */

#define XSEG (XS / R)

AWQ_INLINE void gemv_w4_body(const int R, global const uint4 *wq, global const half *sc, global const uchar *zr,
                  global const uchar *x, ulong xo, int x_f16, global const float *act, int has_act,
                  global const float *bias, int has_bias, global uchar *y, ulong yo, int y_f16,
                  int M, int K, int N, int Npad, int G, local float4 *xs4)
{
    local float *xs = (local float *)xs4;
    const int c = get_local_id(0), s = get_local_id(1), lid = s * PN + c;
    /* the row blocks of one column block are neighbours in launch order, so they run together
     * and all but the first find the block's weights in the L2 cache */
    const int n_rb = (M + R - 1) / R;
    const int nb = get_group_id(0) / n_rb, n = nb * PN + c;
    const int m0 = (get_group_id(0) % n_rb) * R;
    const int KC = K >> 5;
    /* loops over rows run to 8 and test r < R: a constant trip count unrolls before R is known */
    float acc[8];
#pragma unroll
    for (int r = 0; r < 8; r++)
        acc[r] = 0.0f;
    global const uint4 *wp = wq + (ulong)nb * (ulong)KC * PN + c;

    for (int seg0 = 0; seg0 < K; seg0 += XSEG) {
        const int seglen = min(XSEG, K - seg0);
        barrier(CLK_LOCAL_MEM_FENCE);                /* the previous segment is consumed */
        for (int idx = lid; idx < R * seglen; idx += PN * KS) {
            int r = idx / seglen, kk = idx % seglen;
            ulong row = (ulong)min(m0 + r, M - 1);   /* rows past M: read, never stored */
            float v = ld1(x, xo + row * (ulong)K + (ulong)(seg0 + kk), x_f16);
            if (has_act)
                v *= act[seg0 + kk];
            xs[r * XSEG + kk] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        const int kc_end = (seg0 + seglen) >> 5;
        for (int kb = (seg0 >> 5) + s; kb < kc_end; kb += KS * UNR) {
            uint4 w[UNR];
            float scl[UNR], zf[UNR];
            /* issue the loads of UNR chunks before using any of them */
#pragma unroll
            for (int u = 0; u < UNR; u++) {
                int kc = kb + u * KS;
                w[u] = (uint4)(0u);
                scl[u] = 0.0f;
                zf[u] = MAGIC;
                if (kc < kc_end) {
                    ulong gi = (ulong)((kc << 5) / G) * (ulong)Npad + (ulong)n;
                    w[u] = wp[(ulong)kc * PN];
                    scl[u] = vload_half(gi, sc);
                    zf[u] = MAGIC + (float)zr[gi];
                }
            }
#pragma unroll
            for (int u = 0; u < UNR; u++) {
                int kc = kb + u * KS;
                if (kc >= kc_end)           /* not `break`: the unrolled copies stay branch-free */
                    continue;
                int kx = ((kc << 5) - seg0) >> 2;    /* float4 index of the chunk in a staged row */
                float part[8];
#pragma unroll
                for (int r = 0; r < 8; r++)
                    part[r] = 0.0f;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    uint wj = j == 0 ? w[u].x : (j == 1 ? w[u].y : (j == 2 ? w[u].z : w[u].w));
                    float v0 = nib(wj, 0, zf[u]), v1 = nib(wj, 1, zf[u]), v2 = nib(wj, 2, zf[u]);
                    float v3 = nib(wj, 3, zf[u]), v4 = nib(wj, 4, zf[u]), v5 = nib(wj, 5, zf[u]);
                    float v6 = nib(wj, 6, zf[u]), v7 = nib(wj, 7, zf[u]);
#pragma unroll
                    for (int r = 0; r < 8; r++) {
                        if (r >= R)
                            continue;
                        float4 xa = xs4[r * (XSEG / 4) + kx + 2 * j];
                        float4 xb = xs4[r * (XSEG / 4) + kx + 2 * j + 1];
                        float p = part[r];
                        p = fma(xa.x, v0, p);
                        p = fma(xa.y, v1, p);
                        p = fma(xa.z, v2, p);
                        p = fma(xa.w, v3, p);
                        p = fma(xb.x, v4, p);
                        p = fma(xb.y, v5, p);
                        p = fma(xb.z, v6, p);
                        p = fma(xb.w, v7, p);
                        part[r] = p;
                    }
                }
#pragma unroll
                for (int r = 0; r < 8; r++)
                    acc[r] = fma(scl[u], part[r], acc[r]);
            }
        }
    }

    /* the staging buffer doubles as the reduction buffer (KS * R * PN <= XS, checked by the host) */
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int r = 0; r < 8; r++)
        if (r < R)
            xs[(s * R + r) * PN + c] = acc[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (s == 0 && n < N) {
        float b = has_bias ? bias[n] : 0.0f;
        for (int r = 0; r < R; r++) {
            if (m0 + r >= M)
                break;
            float t = 0.0f;
            for (int ss = 0; ss < KS; ss++)       /* fixed order: deterministic */
                t += xs[(ss * R + r) * PN + c];
            st1(y, yo + (ulong)(m0 + r) * (ulong)N + (ulong)n, t + b, y_f16);
        }
    }
}

#define GEMV_W4_KERNEL(R)                                                                          \
    kernel __attribute__((reqd_work_group_size(PN, KS, 1))) void gemv_w4_r##R(                   \
        global const uint4 *wq, global const half *sc, global const uchar *zr,                     \
        global const uchar *x, ulong xo, int x_f16, global const float *act, ulong ao,             \
        int has_act, global const float *bias, ulong bo, int has_bias, global uchar *y, ulong yo,  \
        int y_f16, int M, int K, int N, int Npad, int G)                                           \
    {                                                                                              \
        local float4 xs4[XS / 4];                                                                  \
        gemv_w4_body(R, wq, sc, zr, x, xo, x_f16, act + ao, has_act, bias + bo, has_bias, y, yo,   \
                     y_f16, M, K, N, Npad, G, xs4);                                                \
    }

#if XS % 256 != 0 || KS * 8 * PN > XS
#error "gemv_w4: XS must be a multiple of 256 and hold the KS x 8 x PN partial sums"
#endif

GEMV_W4_KERNEL(1)
GEMV_W4_KERNEL(2)
GEMV_W4_KERNEL(4)
GEMV_W4_KERNEL(8)

/* ---- tiled (large M): local-memory tiles of X and dequantized W, TM x TN register blocks ---- */

#define BK 32
#define TX (BN / TN)
#define TY (BM / TM)
#define WGS (TX * TY)
#define XL (BM * BK / 4 / WGS)     /* float4 loads of the X tile per work-item */
#define WL (BN * 4 / WGS)          /* packed words (8 codes) of the W tile per work-item */
#define RS (TY * 4)                /* row distance between a work-item's groups of 4 rows */
#define CS (TX * 4)
#if (BM * BK / 4) % WGS != 0 || (BN * 4) % WGS != 0 || TM % 4 != 0 || TN % 4 != 0
#error "gemm_w4: tile parameters do not divide"
#endif

void w4_load_x(float4 *xv, global const uchar *x, ulong xo, int x_f16, global const float *act,
               int has_act, int m0, int M, int K, int k0, int lid)
{
#pragma unroll
    for (int i = 0; i < XL; i++) {
        int idx = lid + i * WGS, r = idx % BM, q = idx / BM, m = m0 + r, k = k0 + 4 * q;
        float4 v = (float4)(0.0f);
        if (m < M) {
            v = ld4(x, xo + (ulong)m * (ulong)K + (ulong)k, x_f16);
            if (has_act)
                v *= vload4(0, act + k);
        }
        xv[i] = v;
    }
}

void w4_load_w(uint *wv, float *wsc, float *wzf, global const uint *wq, global const half *sc,
               global const uchar *zr, int n0, int Npad, int KC, int kc, int G, int lid)
{
#pragma unroll
    for (int i = 0; i < WL; i++) {
        int idx = lid + i * WGS, col = idx % BN, j = idx / BN, n = n0 + col;
        wv[i] = 0u;
        wsc[i] = 0.0f;
        wzf[i] = MAGIC;
        if (n < Npad) {
            ulong gi = (ulong)((kc << 5) / G) * (ulong)Npad + (ulong)n;
            wv[i] = wq[(((ulong)(n / PN) * (ulong)KC + (ulong)kc) * PN + (ulong)(n % PN)) * 4 + j];
            wsc[i] = vload_half(gi, sc);
            wzf[i] = MAGIC + (float)zr[gi];
        }
    }
}

kernel __attribute__((reqd_work_group_size(TX, TY, 1))) void gemm_w4_tiled(
    global const uint *wq, global const half *sc, global const uchar *zr, global const uchar *x,
    ulong xo, int x_f16, global const float *act, ulong ao, int has_act, global const float *bias,
    ulong bo, int has_bias, global uchar *y, ulong yo, int y_f16, int M, int K, int N, int Npad,
    int G)
{
    local float4 As4[BK * BM / 4];      /* [k][m] */
    local float4 Bs4[BK * BN / 4];      /* [k][n] */
    local float *As = (local float *)As4, *Bs = (local float *)Bs4;
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * TX + tx;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    const int KC = K >> 5;
    act += ao;
    bias += bo;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            acc[i][j] = 0.0f;

    float4 xv[XL];
    uint wv[WL];
    float wsc[WL], wzf[WL];
    w4_load_x(xv, x, xo, x_f16, act, has_act, m0, M, K, 0, lid);
    w4_load_w(wv, wsc, wzf, wq, sc, zr, n0, Npad, KC, 0, G, lid);

    for (int kc = 0; kc < KC; kc++) {
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
            int idx = lid + i * WGS, col = idx % BN, j = idx / BN;
#pragma unroll
            for (int e = 0; e < 8; e++)
                Bs[(8 * j + e) * BN + col] = nib(wv[i], e, wzf[i]) * wsc[i];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (kc + 1 < KC) {     /* the next tile's global loads overlap this tile's arithmetic */
            w4_load_x(xv, x, xo, x_f16, act, has_act, m0, M, K, (kc + 1) << 5, lid);
            w4_load_w(wv, wsc, wzf, wq, sc, zr, n0, Npad, KC, kc + 1, G, lid);
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
