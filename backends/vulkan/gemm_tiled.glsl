// Tiled matrix product Y[M, N] = X[M, K] * B[K, N] (+ bias), included by shaders/gemm_w4.comp
// (B = dequantized 4-bit weight, W4 = 1) and shaders/gemm_f.comp (B = W^T of an fp32/fp16
// [N, K] weight, W4 = 0).
//
// A workgroup computes a BM x BN block; each of its (BM/TM) * (BN/TN) invocations holds a TM x TN
// register tile. K advances BK at a time through shared memory (X tile transposed, B tile k-major,
// both fp32, rows padded by one vec4); the next tile is loaded into registers while the current
// one is multiplied. fp32 accumulation.

layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
layout(constant_id = 6) const uint XF16 = 0;
layout(constant_id = 7) const uint WF16 = 0;
layout(constant_id = 8) const uint YF16 = 0;
layout(constant_id = 9) const uint GS = 128;

const uint TX = BN / TN;
const uint AS = BM / 4u + 1u;
const uint BS = BN / 4u + 1u;
const uint XL = (BM * BK + WG - 1u) / WG;

shared vec4 As[BK * AS];
shared vec4 Bs[BK * BS];

layout(std430, binding = 0) readonly buffer XF { float xf[]; };
layout(std430, binding = 0) readonly buffer XH { HALF_T xh[]; };
layout(std430, binding = 1) buffer YF { float yf[]; };
layout(std430, binding = 1) buffer YH { HALF_T yh[]; };

#if W4
const uint WL = (BK * BN / 8u + WG - 1u) / WG;
layout(std430, binding = 2) readonly buffer QBuf { uint q[]; };
layout(std430, binding = 3) readonly buffer SBuf { uvec4 sc4[]; };
layout(std430, binding = 4) readonly buffer ZBuf { uint zq[]; };
layout(std430, binding = 5) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 6) readonly buffer ABuf { float ascale[]; };
layout(push_constant) uniform PC {
    uint K, N, M, nc, col0, flags;   // flags: 1 = bias, 2 = act_scale
    uint x_off, y_off, q_off, s_off, z_off, b_off, a_off;
} pc;
#else
const uint WL = (BN * BK + WG - 1u) / WG;
layout(std430, binding = 2) readonly buffer WFb { float wf[]; };
layout(std430, binding = 2) readonly buffer WHb { HALF_T wh[]; };
layout(std430, binding = 3) readonly buffer BBuf { float bias[]; };
layout(push_constant) uniform PC {
    uint K, N, M, nc, col0, flags;   // flags: 1 = bias
    uint x_off, y_off, w_off, b_off;
} pc;
#endif

float xr[XL];
#if W4
uint wq[WL];
uvec4 wsc[WL];
uint wz[WL];
#else
float wr[WL];
#endif

void load_tiles(uint m0, uint n0, uint k0)
{
    uint tid = gl_LocalInvocationID.x;
    [[unroll]] for (uint u = 0u; u < XL; u++) {
        uint e = tid + u * WG;
        uint row = e / BK, kk = e % BK;
        uint m = m0 + row, k = k0 + kk;
        float v = 0.0;
        if (e < BM * BK && m < pc.M && k < pc.K) {
            uint i = pc.x_off + m * pc.K + k;
            v = XF16 != 0u ? H_LOAD(xh, i) : xf[i];
#if W4
            if ((pc.flags & 2u) != 0u)
                v *= ascale[pc.a_off + k];
#endif
        }
        xr[u] = v;
    }
#if W4
    uint ng = pc.K / GS;
    [[unroll]] for (uint u = 0u; u < WL; u++) {
        uint e = tid + u * WG;
        uint jj = e / BK, kk = e % BK;
        uint j = n0 / 8u + jj, k = k0 + kk;
        wq[u] = 0u;
        wsc[u] = uvec4(0u);
        wz[u] = 0u;
        if (e < BK * BN / 8u && 8u * j < pc.nc) {
            uint g = k / GS;
            wq[u] = q[pc.q_off + j * pc.K + k];
            wsc[u] = sc4[pc.s_off / 8u + j * ng + g];
            wz[u] = zq[pc.z_off + j * ng + g];
        }
    }
#else
    [[unroll]] for (uint u = 0u; u < WL; u++) {
        uint e = tid + u * WG;
        uint nn = e / BK, kk = e % BK;
        uint n = n0 + nn, k = k0 + kk;
        float v = 0.0;
        if (e < BN * BK && n < pc.nc && k < pc.K) {
            uint i = pc.w_off + n * pc.K + k;
            v = WF16 != 0u ? H_LOAD(wh, i) : wf[i];
        }
        wr[u] = v;
    }
#endif
}

void store_tiles()
{
    uint tid = gl_LocalInvocationID.x;
    [[unroll]] for (uint u = 0u; u < XL; u++) {
        uint e = tid + u * WG;
        if (e < BM * BK) {
            uint row = e / BK, kk = e % BK;
            As[kk * AS + row / 4u][row & 3u] = xr[u];
        }
    }
#if W4
    [[unroll]] for (uint u = 0u; u < WL; u++) {
        uint e = tid + u * WG;
        if (e < BK * BN / 8u) {
            uint jj = e / BK, kk = e % BK;
            float w[8];
            uvec4 sw = wsc[u];
            vec2 s01 = unpackHalf2x16(sw.x), s23 = unpackHalf2x16(sw.y);
            vec2 s45 = unpackHalf2x16(sw.z), s67 = unpackHalf2x16(sw.w);
            float s[8] = float[8](s01.x, s01.y, s23.x, s23.y, s45.x, s45.y, s67.x, s67.y);
            [[unroll]] for (uint c = 0u; c < 8u; c++) {
                float qv = float((wq[u] >> (4u * c)) & 15u);
                float z = float((wz[u] >> (4u * c)) & 15u);
                w[c] = qv * s[c] - s[c] * z;
            }
            Bs[kk * BS + 2u * jj] = vec4(w[0], w[1], w[2], w[3]);
            Bs[kk * BS + 2u * jj + 1u] = vec4(w[4], w[5], w[6], w[7]);
        }
    }
#else
    [[unroll]] for (uint u = 0u; u < WL; u++) {
        uint e = tid + u * WG;
        if (e < BN * BK) {
            uint nn = e / BK, kk = e % BK;
            Bs[kk * BS + nn / 4u][nn & 3u] = wr[u];
        }
    }
#endif
}

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint tx = tid % TX, ty = tid / TX;
    uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++)
            acc[i][j] = 0.0;
    uint nk = (pc.K + BK - 1u) / BK;
    load_tiles(m0, n0, 0u);
    store_tiles();
    barrier();
    for (uint kt = 0u; kt < nk; kt++) {
        if (kt + 1u < nk)
            load_tiles(m0, n0, (kt + 1u) * BK);
        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            vec4 a[TM / 4u], b[TN / 4u];
            [[unroll]] for (uint i = 0u; i < TM / 4u; i++)
                a[i] = As[kk * AS + ty * (TM / 4u) + i];
            [[unroll]] for (uint j = 0u; j < TN / 4u; j++)
                b[j] = Bs[kk * BS + tx * (TN / 4u) + j];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++)
                    acc[i][j] = fma(a[i / 4u][i & 3u], b[j / 4u][j & 3u], acc[i][j]);
        }
        barrier();
        if (kt + 1u < nk) {
            store_tiles();
            barrier();
        }
    }
    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint m = m0 + ty * TM + i;
        if (m >= pc.M)
            continue;
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            uint n = n0 + tx * TN + j;
            if (n >= pc.nc)
                continue;
            float v = acc[i][j];
            if ((pc.flags & 1u) != 0u)
                v += bias[pc.b_off + pc.col0 + n];
            uint yi = pc.y_off + m * pc.N + pc.col0 + n;
            if (YF16 != 0u) {
                H_STORE(yh, yi, v);
            } else {
                yf[yi] = v;
            }
        }
    }
}
