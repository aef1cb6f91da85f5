/* Tensor-core matrix products for NVIDIA GPUs: the large-M gemm_w4 and the unquantized gemm on
 * mma.sync m16n8k8 with TF32 operands and fp32 accumulation, through inline PTX (NVIDIA's OpenCL
 * compiler accepts it; nothing else does). TF32 keeps fp32's exponent range, so activations never
 * overflow as they could in fp16, and every fp16 value converts exactly; operands are rounded to
 * TF32 (10-bit mantissa) when staged in local memory.
 *
 * Built with -DAWQ_MMA_PTX on NVIDIA devices. With -DAWQ_MMA_EMULATE the mma is emulated through
 * local memory with the same fragment layout, so the data movement of these kernels is tested on
 * any device (slowly); the host also checks the real thing against the fp32 kernels at open.
 *
 * Block: 128 x 128 outputs, 256 items = 8 warps of 32 (2 along M x 4 along N), each warp 64 x 32
 * outputs = 4 x 4 tiles of m16n8. K advances 32 at a time through local tiles As[m][k], Bs[n][k]
 * (row stride 36 floats: the fragment loads of a warp hit 32 different banks). */

#define MBM 128
#define MBN 128
#define MBK 32
#define MLD (MBK + 4)
#define MWG 256

/* Round to the nearest TF32 (ties away from zero), as fp32 bits. */
float tf32(float v)
{
    return as_float((as_uint(v) + 0x1000u) & 0xFFFFE000u);
}

#ifdef AWQ_MMA_PTX
/* D = A (16x8, row) * B (8x8, col) + C: lane l holds a0..a3 = A[g][t], A[g+8][t], A[g][t+4],
 * A[g+8][t+4], b0, b1 = B[t][g], B[t+4][g], c0..c3 = C[g][2t], C[g][2t+1], C[g+8][2t],
 * C[g+8][2t+1], with g = l / 4, t = l % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k8"). */
AWQ_INLINE float4 mma_tf32(float4 c, float a0, float a1, float a2, float a3, float b0, float b1,
                           local float *scratch)
{
    float d0, d1, d2, d3;
    __asm__("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%10, %11, %12, %13};"
        : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
        : "r"(as_uint(a0)), "r"(as_uint(a1)), "r"(as_uint(a2)), "r"(as_uint(a3)),
          "r"(as_uint(b0)), "r"(as_uint(b1)), "f"(c.x), "f"(c.y), "f"(c.z), "f"(c.w));
    return (float4)(d0, d1, d2, d3);
}
#elif defined(AWQ_MMA_EMULATE)
/* The same contract, computed by each lane from the fragments the warp's lanes publish in local
 * memory (6 floats per item). Every item of the work-group calls it in the same order. */
float4 mma_tf32(float4 c, float a0, float a1, float a2, float a3, float b0, float b1,
                local float *scratch)
{
    const int lid = get_local_id(0), lane = lid % 32;
    local float *ws = scratch + (lid - lane) * 6;
    barrier(CLK_LOCAL_MEM_FENCE);
    ws[lane * 6 + 0] = a0;
    ws[lane * 6 + 1] = a1;
    ws[lane * 6 + 2] = a2;
    ws[lane * 6 + 3] = a3;
    ws[lane * 6 + 4] = b0;
    ws[lane * 6 + 5] = b1;
    barrier(CLK_LOCAL_MEM_FENCE);
    const int g = lane >> 2, t = lane & 3;
    float d[4] = { c.x, c.y, c.z, c.w };
    for (int o = 0; o < 4; o++) {
        int row = g + (o >= 2 ? 8 : 0), col = 2 * t + (o & 1);
        float s = d[o];
        for (int k = 0; k < 8; k++) {
            /* A[row][k]: lane (row % 8) * 4 + k % 4, register (row >= 8) + 2 * (k >= 4) */
            float av = ws[((row % 8) * 4 + k % 4) * 6 + (row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0)];
            /* B[k][col]: lane col * 4 + k % 4, register 4 + (k >= 4) */
            float bv = ws[(col * 4 + k % 4) * 6 + 4 + (k >= 4 ? 1 : 0)];
            s = fma(av, bv, s);
        }
        d[o] = s;
    }
    return (float4)(d[0], d[1], d[2], d[3]);
}
#else
#error "gemm_mma.cl needs AWQ_MMA_PTX or AWQ_MMA_EMULATE"
#endif

/* The warp's 64 x 32 outputs over one staged K tile of 32. */
AWQ_INLINE void mma_tile(float4 acc[4][4], local const float *As, local const float *Bs, int wm,
                         int wn, int g, int t, local float *scratch)
{
#pragma unroll
    for (int kk = 0; kk < MBK; kk += 8) {
        float a[4][4], b[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            local const float *ar = As + (wm * 64 + i * 16 + g) * MLD + kk + t;
            a[i][0] = ar[0];
            a[i][1] = ar[8 * MLD];
            a[i][2] = ar[4];
            a[i][3] = ar[8 * MLD + 4];
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            local const float *br = Bs + (wn * 32 + j * 8 + g) * MLD + kk + t;
            b[j][0] = br[0];
            b[j][1] = br[4];
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                acc[i][j] = mma_tf32(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], b[j][0],
                                     b[j][1], scratch);
    }
}

AWQ_INLINE void mma_store(float4 acc[4][4], global uchar *y, ulong yo, int y_f16,
                          global const float *bias, int has_bias, int m0, int n0, int M, int N,
                          int wm, int wn, int g, int t)
{
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float v[4] = { acc[i][j].x, acc[i][j].y, acc[i][j].z, acc[i][j].w };
#pragma unroll
            for (int o = 0; o < 4; o++) {
                int m = m0 + wm * 64 + i * 16 + g + (o >= 2 ? 8 : 0);
                int n = n0 + wn * 32 + j * 8 + 2 * t + (o & 1);
                if (m < M && n < N)
                    st1(y, yo + (ulong)m * (ulong)N + (ulong)n,
                        v[o] + (has_bias ? bias[n] : 0.0f), y_f16);
            }
        }
}

/* Four consecutive elements k..k+3 of row `row` of a [rows, K] tensor; zeros outside. */
float4 mma_ld4(global const uchar *p, ulong po, int f16, int row, int rows, int K, int k)
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

/* Stages 4 float4 per item of a 128 x 32 tile: item lid + 256 i holds row idx / 8, k 4 * (idx % 8). */
AWQ_INLINE void mma_put_rows(local float *T, const float4 v[4], int lid)
{
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int idx = lid + MWG * i, r = idx / 8, q = idx % 8;
        vstore4((float4)(tf32(v[i].x), tf32(v[i].y), tf32(v[i].z), tf32(v[i].w)), 0,
                T + r * MLD + 4 * q);
    }
}

/* ---- 4-bit weights (layout: gemm_w4.cl) ---------------------------------------------------- */

AWQ_INLINE void w4_mma_load(float4 *xv, uint2 *wv, float *wsc, float *wzf, global const uint *wq,
                            global const half *sc, global const uchar *zr, global const uchar *x,
                            ulong xo, int x_f16, global const float *act, int has_act, int m0,
                            int M, int K, int n, int Npad, int KC, int kc, int G, int wj, int lid)
{
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int idx = lid + MWG * i, k = (kc << 5) + 4 * (idx % 8);
        float4 v = mma_ld4(x, xo, x_f16, m0 + idx / 8, M, K, k);
        if (has_act)
            v *= vload4(0, act + k);
        xv[i] = v;
    }
    *wv = (uint2)(0u);
    *wsc = 0.0f;
    *wzf = 8388608.0f;
    if (n < Npad) {
        ulong gi = (ulong)((kc << 5) / G) * (ulong)Npad + (ulong)n;
        *wv = vload2(0, wq + (((ulong)(n / PN) * (ulong)KC + (ulong)kc) * PN + (ulong)(n % PN)) * 4 +
                            wj);
        *wsc = vload_half(gi, sc);
        *wzf = 8388608.0f + (float)zr[gi];
    }
}

kernel __attribute__((reqd_work_group_size(MWG, 1, 1))) void gemm_w4_mma(
    global const uint *wq, global const half *sc, global const uchar *zr, global const uchar *x,
    ulong xo, int x_f16, global const float *act, ulong ao, int has_act, global const float *bias,
    ulong bo, int has_bias, global uchar *y, ulong yo, int y_f16, int M, int K, int N, int Npad,
    int G)
{
    /* float4 arrays: 16-byte aligned, so the staging stores can be vector stores */
    local float4 As4[MBM * MLD / 4], Bs4[MBN * MLD / 4];
    local float *As = (local float *)As4, *Bs = (local float *)Bs4;
#ifdef AWQ_MMA_EMULATE
    local float scratch[MWG * 6];
#else
    local float *scratch = 0;
#endif
    const int lid = get_local_id(0), lane = lid % 32, warp = lid / 32;
    const int g = lane >> 2, t = lane & 3, wm = warp % 2, wn = warp / 2;
    const int n0 = get_group_id(0) * MBN, m0 = get_group_id(1) * MBM;
    const int KC = K >> 5;
    act += ao;
    bias += bo;

    float4 acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            acc[i][j] = (float4)(0.0f);

    /* W: item -> column lid % 128, words 2 * (lid / 128) and the next one of each chunk */
    const int col = lid % MBN, wj = 2 * (lid / MBN), n = n0 + col;
    float4 xv[4];
    uint2 wv;
    float wsc, wzf;
    w4_mma_load(xv, &wv, &wsc, &wzf, wq, sc, zr, x, xo, x_f16, act, has_act, m0, M, K, n, Npad,
                KC, 0, G, wj, lid);
    for (int kc = 0; kc < KC; kc++) {
        barrier(CLK_LOCAL_MEM_FENCE);
        mma_put_rows(As, xv, lid);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            uint w = h ? wv.y : wv.x;
            float d[8];
#pragma unroll
            for (int e = 0; e < 8; e++)
                d[e] = tf32((as_float(((w >> (4 * e)) & 15u) | 0x4B000000u) - wzf) * wsc);
            local float *dst = Bs + col * MLD + 8 * (wj + h);
            vstore4((float4)(d[0], d[1], d[2], d[3]), 0, dst);
            vstore4((float4)(d[4], d[5], d[6], d[7]), 0, dst + 4);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (kc + 1 < KC)      /* the next tile's global loads overlap this tile's arithmetic */
            w4_mma_load(xv, &wv, &wsc, &wzf, wq, sc, zr, x, xo, x_f16, act, has_act, m0, M, K, n,
                        Npad, KC, kc + 1, G, wj, lid);
        mma_tile(acc, As, Bs, wm, wn, g, t, scratch);
    }
    mma_store(acc, y, yo, y_f16, bias, has_bias, m0, n0, M, N, wm, wn, g, t);
}

/* ---- unquantized: Y = X · Wᵀ, W [N, K] ------------------------------------------------------- */

kernel __attribute__((reqd_work_group_size(MWG, 1, 1))) void gemm_f_mma(
    global const uchar *x, ulong xo, int x_f16, global const uchar *w, ulong wo, int w_f16,
    global const float *bias, ulong bo, int has_bias, global uchar *y, ulong yo, int y_f16, int M,
    int N, int K)
{
    /* float4 arrays: 16-byte aligned, so the staging stores can be vector stores */
    local float4 As4[MBM * MLD / 4], Bs4[MBN * MLD / 4];
    local float *As = (local float *)As4, *Bs = (local float *)Bs4;
#ifdef AWQ_MMA_EMULATE
    local float scratch[MWG * 6];
#else
    local float *scratch = 0;
#endif
    const int lid = get_local_id(0), lane = lid % 32, warp = lid / 32;
    const int g = lane >> 2, t = lane & 3, wm = warp % 2, wn = warp / 2;
    const int n0 = get_group_id(0) * MBN, m0 = get_group_id(1) * MBM;
    bias += bo;

    float4 acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            acc[i][j] = (float4)(0.0f);

    float4 xv[4], wv[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int idx = lid + MWG * i, k = 4 * (idx % 8);
        xv[i] = mma_ld4(x, xo, x_f16, m0 + idx / 8, M, K, k);
        wv[i] = mma_ld4(w, wo, w_f16, n0 + idx / 8, N, K, k);
    }
    for (int k0 = 0; k0 < K; k0 += MBK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        mma_put_rows(As, xv, lid);
        mma_put_rows(Bs, wv, lid);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + MBK < K) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int idx = lid + MWG * i, k = k0 + MBK + 4 * (idx % 8);
                xv[i] = mma_ld4(x, xo, x_f16, m0 + idx / 8, M, K, k);
                wv[i] = mma_ld4(w, wo, w_f16, n0 + idx / 8, N, K, k);
            }
        }
        mma_tile(acc, As, Bs, wm, wn, g, t, scratch);
    }
    mma_store(acc, y, yo, y_f16, bias, has_bias, m0, n0, M, N, wm, wn, g, t);
}

/* ---- 4-bit GEMV on tensor cores (small M, G a multiple of 128; layout: gemm_w4.cl, PN = 32) ----
 *
 * A warp owns one packed block of 32 columns and a share of its K (steps of 128 k, interleaved
 * over the MKS warps of the work-group); every item of the warp streams four uint4 per step: lane
 * (g = lane / 4, t = lane % 4) reads chunk 4 * step + t of columns g, g + 8, g + 16, g + 24, so
 * each load instruction of the warp covers four fully used 128-byte lines. The products are
 * mma.m16n8k16 (fp16 x fp16, fp32 accumulation) with A = the weights (16 columns x 16 k) and B =
 * X^T (16 k x 8 rows): inside one mma the k may come in any order as long as A and B agree, so
 * lane t feeds its own chunk, and the nibble pairs (e, e + 4) of a word, which
 * `w & 0x000F000F | 0x64006400` turns into the f16x2 (1024 + q_e, 1024 + q_e+4) without a
 * conversion, are matched by X pairs (x_e, x_e+4). Minus (1024 + zero) gives q - zero exactly; the
 * group scale multiplies each step's fp32 sums (a step lies in one group as G % 128 == 0), as the
 * CPU backend does. X is read as fp16 (converted in the kernel when fp32 or act-scaled). The MKS
 * partial sums of an output are added in a fixed order through local memory.
 *
 * NVIDIA only: no emulation (one made PoCL spend minutes compiling it, CI time); at open the host
 * checks it against the fp32 GEMV on odd shapes, and the parity suite covers it on NVIDIA. */

#if PN == 32 && defined(MKS) && defined(AWQ_MMA_PTX)

AWQ_INLINE float4 mma_f16(float4 c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
{
    float d0, d1, d2, d3;
    __asm__("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%10, %11, %12, %13};"
        : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(c.x), "f"(c.y), "f"(c.z),
          "f"(c.w));
    return (float4)(d0, d1, d2, d3);
}

AWQ_INLINE uint h2sub(uint a, uint b)
{
    uint d;
    __asm__("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}

AWQ_INLINE uint h2fma(uint a, uint b, uint c)
{
    uint d;
    __asm__("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

/* the halves (lo of a, lo of b) and (hi of a, hi of b) */
#define H2_LOLO(a, b) (((a) & 0xFFFFu) | ((b) << 16))
#define H2_HIHI(a, b) (((a) >> 16) | ((b) & 0xFFFF0000u))

/* 8 values of X (row m, k..k+7) as fp16 pairs (x0 x1, x2 x3, x4 x5, x6 x7); zeros past M */
AWQ_INLINE uint4 gv_x8(global const uchar *x, ulong xo, int fast, int x_f16, global const float *act,
                       int has_act, int m, int M, int K, int k)
{
    if (m >= M)
        return (uint4)(0u);
    ulong i = xo + (ulong)m * (ulong)K + (ulong)k;
    if (fast)
        return *(global const uint4 *)((global const half *)x + i);
    float4 a = ld4(x, i, x_f16), b = ld4(x, i + 4, x_f16);
    if (has_act) {
        a *= vload4(0, act + k);
        b *= vload4(0, act + k + 4);
    }
    ushort h[8];
    vstore_half4_rte(a, 0, (private half *)h);
    vstore_half4_rte(b, 1, (private half *)h);
    return (uint4)((uint)h[0] | ((uint)h[1] << 16), (uint)h[2] | ((uint)h[3] << 16),
                   (uint)h[4] | ((uint)h[5] << 16), (uint)h[6] | ((uint)h[7] << 16));
}

AWQ_INLINE void gemv_w4_mma_body(const int MB, global const uint4 *wq, global const half *sc,
                                 global const uchar *zr, global const uchar *x, ulong xo, int x_f16,
                                 global const float *act, int has_act, global const float *bias,
                                 int has_bias, global uchar *y, ulong yo, int y_f16, int M, int K,
                                 int N, int Npad, int G, local float *red)
{
    const int lane = get_local_id(0), s = get_local_id(1), g = lane >> 2, t = lane & 3;
    const int n_rb = (M + 8 * MB - 1) / (8 * MB);
    const int nb = get_group_id(0) / n_rb, m0 = (get_group_id(0) % n_rb) * 8 * MB;
    const int KC = K >> 5, NS = K >> 7, iters = (NS + MKS - 1) / MKS;
    /* fp16 X read as 16-byte vectors when its offset allows */
    const int fast = x_f16 && !has_act && (xo & 7) == 0;
    global const uint4 *wp = wq + (ulong)nb * (ulong)KC * 32 + g;
    const int n = nb * 32 + g;

    float4 acc[2][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int mb = 0; mb < 4; mb++)
            acc[i][mb] = (float4)(0.0f);

    for (int it = 0; it < iters; it++) {
        const int step = s + it * MKS;
        const int valid = step < NS, kc = 4 * step + t;
        uint4 w[4];
        float scl[4];
        uint z1024[4], z64[4];
        uint4 xv[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            w[i] = (uint4)(0u);
            scl[i] = 0.0f;
            z1024[i] = z64[i] = 0u;
        }
        if (valid) {
            ulong gi = (ulong)((step << 7) / G) * (ulong)Npad + (ulong)n;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                w[i] = wp[(ulong)kc * 32 + 8 * i];
                scl[i] = vload_half(gi + 8 * i, sc);
                uint z = zr[gi + 8 * i];
                /* f16 1024 + z and -(64 + z): exact (z < 16) */
                uint h1 = 0x6400u | z, h2 = 0xD400u | (z << 4);
                z1024[i] = h1 | (h1 << 16);
                z64[i] = h2 | (h2 << 16);
            }
        }
#pragma unroll
        for (int mb = 0; mb < 4; mb++) {
            if (mb >= MB)
                continue;
#pragma unroll
            for (int j = 0; j < 4; j++)
                xv[mb][j] = valid ? gv_x8(x, xo, fast, x_f16, act, has_act, m0 + 8 * mb + g, M, K,
                                          (kc << 5) + 8 * j)
                                  : (uint4)(0u);
        }
        float4 part[2][4];
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int mb = 0; mb < 4; mb++)
                part[i][mb] = (float4)(0.0f);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            uint a[4][4];   /* column i: (q0 q4), (q1 q5), (q2 q6), (q3 q7) of word j, minus zero */
#pragma unroll
            for (int i = 0; i < 4; i++) {
                uint wj = j == 0 ? w[i].x : (j == 1 ? w[i].y : (j == 2 ? w[i].z : w[i].w));
                uint w8 = wj >> 8;
                a[i][0] = h2sub((wj & 0x000F000Fu) | 0x64006400u, z1024[i]);
                a[i][1] = h2fma((wj & 0x00F000F0u) | 0x64006400u, 0x2C002C00u, z64[i]);
                a[i][2] = h2sub((w8 & 0x000F000Fu) | 0x64006400u, z1024[i]);
                a[i][3] = h2fma((w8 & 0x00F000F0u) | 0x64006400u, 0x2C002C00u, z64[i]);
            }
#pragma unroll
            for (int mb = 0; mb < 4; mb++) {
                if (mb >= MB)
                    continue;
                uint4 xw = xv[mb][j];
                uint b04 = H2_LOLO(xw.x, xw.z), b15 = H2_HIHI(xw.x, xw.z);
                uint b26 = H2_LOLO(xw.y, xw.w), b37 = H2_HIHI(xw.y, xw.w);
#pragma unroll
                for (int ti = 0; ti < 2; ti++) {
                    part[ti][mb] = mma_f16(part[ti][mb], a[2 * ti][0], a[2 * ti + 1][0],
                                           a[2 * ti][1], a[2 * ti + 1][1], b04, b15);
                    part[ti][mb] = mma_f16(part[ti][mb], a[2 * ti][2], a[2 * ti + 1][2],
                                           a[2 * ti][3], a[2 * ti + 1][3], b26, b37);
                }
            }
        }
        /* accumulator (ti, e): column 16 ti + g + 8 (e >= 2), row 2t + (e & 1) */
#pragma unroll
        for (int ti = 0; ti < 2; ti++)
#pragma unroll
            for (int mb = 0; mb < 4; mb++) {
                if (mb >= MB)
                    continue;
                float4 p = part[ti][mb], c = acc[ti][mb];
                float s0 = scl[2 * ti], s1 = scl[2 * ti + 1];
                acc[ti][mb] = (float4)(fma(s0, p.x, c.x), fma(s0, p.y, c.y), fma(s1, p.z, c.z),
                                       fma(s1, p.w, c.w));
            }
    }

    /* red[(s * 8 MB + (ti * MB + mb) * 4 + e) * 32 + lane] */
#pragma unroll
    for (int ti = 0; ti < 2; ti++)
#pragma unroll
        for (int mb = 0; mb < 4; mb++) {
            if (mb >= MB)
                continue;
            local float *r = red + (s * 8 * MB + (ti * MB + mb) * 4) * 32 + lane;
            r[0] = acc[ti][mb].x;
            r[32] = acc[ti][mb].y;
            r[64] = acc[ti][mb].z;
            r[96] = acc[ti][mb].w;
        }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int idx = s * 32 + lane; idx < 32 * 8 * MB; idx += 32 * MKS) {
        int c = idx % 32, rr = idx / 32, m = m0 + rr, nn = nb * 32 + c;
        if (m >= M || nn >= N)
            continue;
        int ti = c / 16, cg = c % 8, e = ((c % 16) / 8) * 2 + (rr % 8) % 2;
        int ln = cg * 4 + (rr % 8) / 2, reg = (ti * MB + rr / 8) * 4 + e;
        float v = 0.0f;
        for (int ss = 0; ss < MKS; ss++)    /* fixed order: deterministic */
            v += red[(ss * 8 * MB + reg) * 32 + ln];
        st1(y, yo + (ulong)m * (ulong)N + (ulong)nn, v + (has_bias ? bias[nn] : 0.0f), y_f16);
    }
}

#define GEMV_W4_MMA_KERNEL(MB)                                                                     \
    kernel __attribute__((reqd_work_group_size(32, MKS, 1))) void gemv_w4_mma##MB(               \
        global const uint4 *wq, global const half *sc, global const uchar *zr,                     \
        global const uchar *x, ulong xo, int x_f16, global const float *act, ulong ao,             \
        int has_act, global const float *bias, ulong bo, int has_bias, global uchar *y, ulong yo,  \
        int y_f16, int M, int K, int N, int Npad, int G)                                           \
    {                                                                                              \
        local float red[MKS * 8 * MB * 32];                                                        \
        gemv_w4_mma_body(MB, wq, sc, zr, x, xo, x_f16, act + ao, has_act, bias + bo, has_bias, y,  \
                         yo, y_f16, M, K, N, Npad, G, red);                                        \
    }

GEMV_W4_MMA_KERNEL(1)
GEMV_W4_MMA_KERNEL(2)
GEMV_W4_MMA_KERNEL(4)

#endif
