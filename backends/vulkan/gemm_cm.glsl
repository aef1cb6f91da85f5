// Tiled matrix product on tensor cores (VK_NV_cooperative_matrix), included by
// shaders/gemm_w4_cm.comp (B = dequantized 4-bit weight) and shaders/gemm_f_cm.comp (B = W^T).
// Operands are rounded to fp16 in shared memory; products accumulate in fp32.
//
// A workgroup of WG = 256 invocations, 8 subgroups of 32, computes a BM x BN block of Y; the subgroups form a 2 x 4
// grid, each owning (BM/2) x (BN/4) = FM x FN fragments of 16 x 16. K advances BK = 32 at a time
// (two 16-deep fragment steps); the next tile is loaded into registers while the current one is
// multiplied. Results go through a per-subgroup fp32 staging tile for bias, fp16 and edges.
#if AWQ_FAST

layout(constant_id = 1) const uint XF16 = 0;
layout(constant_id = 2) const uint WF16 = 0;
layout(constant_id = 3) const uint YF16 = 0;
layout(constant_id = 4) const uint GS = 128;
const uint BM = 128u;                  // plain constants: the fragment arrays get fixed sizes
const uint BN = 128u;
const uint BK = 32u;
const uint FM = BM / 32u;              // fragments per subgroup along M (2 subgroups)
const uint FN = BN / 64u;              // fragments per subgroup along N (4 subgroups)
const uint AST = BK + 8u;              // row strides in halves (multiples of 8: 16-byte rows)
const uint BST = BN + 8u;
const uint XL = BM * BK / WG;
#if W4
const uint WL = (BK * BN / 8u + WG - 1u) / WG;
#else
const uint WL = BN * BK / WG;
#endif

shared float16_t As[BM * AST];
shared float16_t Bs[BK * BST];
shared float Cs[(WG / 32u) * 256u];

layout(std430, binding = 0) readonly buffer XF { float xf[]; };
layout(std430, binding = 0) readonly buffer XH { float16_t xh[]; };
layout(std430, binding = 1) buffer YF { float yf[]; };
layout(std430, binding = 1) buffer YH { float16_t yh[]; };
#if W4
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
layout(std430, binding = 2) readonly buffer WFb { float wf[]; };
layout(std430, binding = 2) readonly buffer WHb { float16_t wh[]; };
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
        uint row = e / BK, kk = e % BK, m = m0 + row, k = k0 + kk;
        float v = 0.0;
        if (m < pc.M && k < pc.K) {
            uint i = pc.x_off + m * pc.K + k;
            v = XF16 != 0u ? float(xh[i]) : xf[i];
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
        uint jj = e / BK, kk = e % BK, j = n0 / 8u + jj, k = k0 + kk;
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
        uint nn = e / BK, kk = e % BK, n = n0 + nn, k = k0 + kk;
        float v = 0.0;
        if (n < pc.nc && k < pc.K) {
            uint i = pc.w_off + n * pc.K + k;
            v = WF16 != 0u ? float(wh[i]) : wf[i];
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
        As[(e / BK) * AST + e % BK] = float16_t(xr[u]);
    }
#if W4
    [[unroll]] for (uint u = 0u; u < WL; u++) {
        uint e = tid + u * WG;
        if (e < BK * BN / 8u) {
            uint jj = e / BK, kk = e % BK;
            uvec4 sw = wsc[u];
            vec2 s01 = unpackHalf2x16(sw.x), s23 = unpackHalf2x16(sw.y);
            vec2 s45 = unpackHalf2x16(sw.z), s67 = unpackHalf2x16(sw.w);
            float s[8] = float[8](s01.x, s01.y, s23.x, s23.y, s45.x, s45.y, s67.x, s67.y);
            [[unroll]] for (uint c = 0u; c < 8u; c++) {
                float qv = float((wq[u] >> (4u * c)) & 15u), z = float((wz[u] >> (4u * c)) & 15u);
                Bs[kk * BST + 8u * jj + c] = float16_t((qv - z) * s[c]);
            }
        }
    }
#else
    [[unroll]] for (uint u = 0u; u < WL; u++) {
        uint e = tid + u * WG;
        Bs[(e % BK) * BST + e / BK] = float16_t(wr[u]);
    }
#endif
}

void main()
{
    uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    uint wm = sg / 4u, wn = sg % 4u;
    uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[FM][FN];
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++)
            acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
    uint nk = (pc.K + BK - 1u) / BK;
    load_tiles(m0, n0, 0u);
    store_tiles();
    barrier();
    for (uint kt = 0u; kt < nk; kt++) {
        if (kt + 1u < nk)
            load_tiles(m0, n0, (kt + 1u) * BK);
        [[unroll]] for (uint ks = 0u; ks < BK; ks += 16u) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[FM], b[FN];
            [[unroll]] for (uint i = 0u; i < FM; i++)
                coopMatLoadNV(a[i], As, (wm * (BM / 2u) + 16u * i) * AST + ks, AST, false);
            [[unroll]] for (uint j = 0u; j < FN; j++)
                coopMatLoadNV(b[j], Bs, ks * BST + wn * (BN / 4u) + 16u * j, BST, false);
            [[unroll]] for (uint i = 0u; i < FM; i++)
                [[unroll]] for (uint j = 0u; j < FN; j++)
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
        }
        barrier();
        if (kt + 1u < nk) {
            store_tiles();
            barrier();
        }
    }
    uint cs = sg * 256u;
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            coopMatStoreNV(acc[i][j], Cs, cs, 16u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < 256u; e += gl_SubgroupSize) {
                uint m = m0 + wm * (BM / 2u) + 16u * i + e / 16u;
                uint n = n0 + wn * (BN / 4u) + 16u * j + e % 16u;
                if (m < pc.M && n < pc.nc) {
                    float v = Cs[cs + e];
                    if ((pc.flags & 1u) != 0u)
                        v += bias[pc.b_off + pc.col0 + n];
                    uint yi = pc.y_off + m * pc.N + pc.col0 + n;
                    if (YF16 != 0u)
                        yh[yi] = float16_t(v);
                    else
                        yf[yi] = v;
                }
            }
            subgroupBarrier();
        }
}

#else
// The base variant is never used (the device has no fp16 arithmetic, so no cooperative matrix).
layout(push_constant) uniform PC { uint unused; } pc;
void main()
{
}
#endif
