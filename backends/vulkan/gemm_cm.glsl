// Tiled matrix product on tensor cores (VK_NV_cooperative_matrix), included by
// shaders/gemm_w4_cm.comp (B = dequantized 4-bit weight) and shaders/gemm_f_cm.comp (B = W^T).
// Operands are rounded to fp16 in shared memory; products accumulate in fp32.
//
// A workgroup of WG = 32 * SGM * SGN invocations (subgroups of 32 in an SGM x SGN grid) computes a
// BM x BN block of Y; each subgroup owns FM x FN fragments of 16 x 16. K advances BK = 32 at a
// time through two shared-memory buffers (one barrier per step): while the tensor cores work on
// one, the tiles of the next DEPTH steps are fetched into registers with 16-byte loads (two steps
// ahead doubles the bytes in flight, which small-M blocks with few workgroups per SM need), then
// the next one is written to the other buffer.
//  - X: rows of 8 halves per load (fp16 X with aligned rows; otherwise element by element).
//  - 4-bit B: one load = 4 input channels x 8 columns; dequantized with packed fp16 arithmetic
//    ((1024 + q) - (1024 + z), exact, times the scale: the same rounding as float16_t((q - z) * s)),
//    two columns (c, c + 4) per 32-bit word. A tile row therefore holds each 8-column block in the
//    order 0 4 1 5 2 6 3 7, which the epilogue undoes.
//  - fp16/fp32 B (W [N, K]): k-contiguous, stored column-major, so no transposition is needed.
// Results go through a per-subgroup fp32 staging tile for bias, fp16, the permutation and edges.
// Split K (MODE 1, for blocks too few to fill the device): workgroup z of the grid covers `ksteps`
// steps and writes fp32 partial products to a scratch window; a second dispatch (MODE 2) adds them
// in a fixed order, adds the bias and stores Y.
// Tile sizes are specialization constants chosen by vk_gemm.c from the tune table (NVIDIA, large
// M: 64 x 128 with 4 subgroups; small M: 16..64 rows x 128, so the weights are read once).
#if AWQ_FAST

layout(constant_id = 1) const uint XF16 = 0;
layout(constant_id = 2) const uint WF16 = 0;
layout(constant_id = 3) const uint YF16 = 0;
layout(constant_id = 4) const uint GS = 128;
layout(constant_id = 5) const uint BM = 128;
layout(constant_id = 6) const uint BN = 128;
layout(constant_id = 7) const uint SGM = 2;            // subgroups along M
layout(constant_id = 8) const uint DEPTH = 2;          // tiles fetched ahead (1 or 2)
layout(constant_id = 9) const uint MODE = 0;           // 0: Y; 1: split-K partial sums; 2: their sum
const uint SGN = WG / 32u / SGM;                       // subgroups along N
const uint BK = 32u;
const uint FM = BM / (16u * SGM);
const uint FN = BN / (16u * SGN);
const uint AST = BK + 8u;                              // row strides in halves (16-byte rows)
const uint AU = BM * BK / 8u;                          // 8-half loads per X tile
const uint AL = (AU + WG - 1u) / WG;
#if W4
const uint BST = BN + 8u;                              // B tile row-major [BK][BST]
const uint BSZ = BK * BST;
const uint BU = BN * BK / 32u;                         // loads of 4 channels x 8 columns
#else
const uint BST = BK + 8u;                              // B tile column-major [BN][BST]
const uint BSZ = BN * BST;
const uint BU = BN * BK / 8u;
#endif
const uint BL = (BU + WG - 1u) / WG;

shared float16_t As[2u * BM * AST];
shared float16_t Bs[2u * BSZ];
shared float Cs[(WG / 32u) * 256u];

layout(std430, binding = 0) readonly buffer XF { float xf[]; };
layout(std430, binding = 0) readonly buffer XH { float16_t xh[]; };
layout(std430, binding = 0) readonly buffer XV { uvec4 xv[]; };
layout(std430, binding = 1) buffer YF { float yf[]; };
layout(std430, binding = 1) buffer YH { float16_t yh[]; };
#if W4
layout(std430, binding = 2) readonly buffer QBuf { uvec4 q4[]; };
layout(std430, binding = 3) readonly buffer SBuf { uvec4 sc4[]; };
layout(std430, binding = 4) readonly buffer ZBuf { uint zq[]; };
layout(std430, binding = 5) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 6) readonly buffer ABuf { float ascale[]; };
layout(std430, binding = 7) buffer PBuf { float part[]; };
layout(push_constant) uniform PC {
    uint K, N, M, nc, col0, flags;   // flags: 1 = bias, 2 = act_scale
    uint x_off, y_off, q_off, s_off, z_off, b_off, a_off;
    uint ksteps, splits, p_off;      // split K: steps of BK per split, splits, window offset
} pc;
#else
layout(std430, binding = 2) readonly buffer WFb { float wf[]; };
layout(std430, binding = 2) readonly buffer WHb { float16_t wh[]; };
layout(std430, binding = 2) readonly buffer WVb { uvec4 wv[]; };
layout(std430, binding = 3) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 4) buffer PBuf { float part[]; };
layout(push_constant) uniform PC {
    uint K, N, M, nc, col0, flags;   // flags: 1 = bias
    uint x_off, y_off, w_off, b_off;
    uint ksteps, splits, p_off;      // split K: steps of BK per split, splits, window offset
} pc;
#endif

// register sets of the tiles in flight (indexed by constants only: the loop below is unrolled
// by two so that they stay in registers)
uvec4 ar[2][AL];
#if W4
uvec4 bq[2][BL], bsc[2][BL];
uint bz[2][BL];
#else
uvec4 br[2][BL];
#endif

uvec4 halves8(float v[8])
{
    return uvec4(packFloat2x16(f16vec2(v[0], v[1])), packFloat2x16(f16vec2(v[2], v[3])),
                 packFloat2x16(f16vec2(v[4], v[5])), packFloat2x16(f16vec2(v[6], v[7])));
}

// 8 elements of row `row` from element k (a multiple of 8) of X, as fp16; zeros outside.
uvec4 load_x8(uint row, uint k, bool vec)
{
    if (row >= pc.M)
        return uvec4(0u);
    uint i = pc.x_off + row * pc.K + k;
#if W4
    bool scaled = (pc.flags & 2u) != 0u;
#else
    const bool scaled = false;
#endif
    if (vec && !scaled)
        return k < pc.K ? xv[i / 8u] : uvec4(0u);
    float v[8];
    [[unroll]] for (uint e = 0u; e < 8u; e++) {
        float t = 0.0;
        if (k + e < pc.K) {
            t = XF16 != 0u ? float(xh[i + e]) : xf[i + e];
#if W4
            if (scaled)
                t *= ascale[pc.a_off + k + e];
#endif
        }
        v[e] = t;
    }
    return halves8(v);
}

#if !W4
uvec4 load_w8(uint n, uint k, bool vec)
{
    if (n >= pc.nc)
        return uvec4(0u);
    uint i = pc.w_off + n * pc.K + k;
    if (vec)
        return k < pc.K ? wv[i / 8u] : uvec4(0u);
    float v[8];
    [[unroll]] for (uint e = 0u; e < 8u; e++)
        v[e] = k + e < pc.K ? (WF16 != 0u ? float(wh[i + e]) : wf[i + e]) : 0.0;
    return halves8(v);
}
#endif

void load_tiles(uint r, uint m0, uint n0, uint k0, bool xvec, bool wvec)
{
    uint tid = gl_LocalInvocationID.x;
    [[unroll]] for (uint u = 0u; u < AL; u++) {
        uint e = tid + u * WG;
        ar[r][u] = uvec4(0u);
        if (AU % WG == 0u || e < AU)
            ar[r][u] = load_x8(m0 + e / (BK / 8u), k0 + 8u * (e % (BK / 8u)), xvec);
    }
#if W4
    uint ng = pc.K / GS;
    [[unroll]] for (uint u = 0u; u < BL; u++) {
        uint e = tid + u * WG;
        uint jj = e / (BK / 4u), k = k0 + 4u * (e % (BK / 4u)), j = n0 / 8u + jj;
        bq[r][u] = uvec4(0u);
        bsc[r][u] = uvec4(0u);
        bz[r][u] = 0u;
        if ((BU % WG == 0u || e < BU) && 8u * j < pc.nc && k < pc.K) {
            uint g = k / GS;
            bq[r][u] = q4[pc.q_off + (j * pc.K + k) / 4u];
            bsc[r][u] = sc4[pc.s_off / 8u + j * ng + g];
            bz[r][u] = zq[pc.z_off + j * ng + g];
        }
    }
#else
    [[unroll]] for (uint u = 0u; u < BL; u++) {
        uint e = tid + u * WG;
        br[r][u] = uvec4(0u);
        if (BU % WG == 0u || e < BU)
            br[r][u] = load_w8(n0 + e / (BK / 8u), k0 + 8u * (e % (BK / 8u)), wvec);
    }
#endif
}

void store_tiles(uint r, uint buf)
{
    uint tid = gl_LocalInvocationID.x;
    uint ab = buf * BM * AST, bb = buf * BSZ;
    [[unroll]] for (uint u = 0u; u < AL; u++) {
        uint e = tid + u * WG;
        if (AU % WG == 0u || e < AU) {
            uint at = ab + (e / (BK / 8u)) * AST + 8u * (e % (BK / 8u));
            f16vec2 h0 = unpackFloat2x16(ar[r][u].x), h1 = unpackFloat2x16(ar[r][u].y);
            f16vec2 h2 = unpackFloat2x16(ar[r][u].z), h3 = unpackFloat2x16(ar[r][u].w);
            As[at] = h0.x; As[at + 1u] = h0.y; As[at + 2u] = h1.x; As[at + 3u] = h1.y;
            As[at + 4u] = h2.x; As[at + 5u] = h2.y; As[at + 6u] = h3.x; As[at + 7u] = h3.y;
        }
    }
#if W4
    [[unroll]] for (uint u = 0u; u < BL; u++) {
        uint e = tid + u * WG;
        if (BU % WG == 0u || e < BU) {
            uint jj = e / (BK / 4u), kk = 4u * (e % (BK / 4u));
            uvec4 sw = bsc[r][u];
            // scale and zero pairs of columns (c, c + 4), c = 0..3
            f16vec2 s[4], z[4];
            s[0] = unpackFloat2x16((sw.x & 0xFFFFu) | (sw.z << 16));
            s[1] = unpackFloat2x16((sw.x >> 16) | (sw.z & 0xFFFF0000u));
            s[2] = unpackFloat2x16((sw.y & 0xFFFFu) | (sw.w << 16));
            s[3] = unpackFloat2x16((sw.y >> 16) | (sw.w & 0xFFFF0000u));
            [[unroll]] for (uint c = 0u; c < 4u; c++)
                z[c] = unpackFloat2x16(((bz[r][u] >> (4u * c)) & 0x000F000Fu) | 0x64006400u);
            uvec4 qv = bq[r][u];
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                uint w = qv[i];
                uint at = bb + (kk + i) * BST + 8u * jj;
                [[unroll]] for (uint c = 0u; c < 4u; c++) {
                    f16vec2 h = (unpackFloat2x16(((w >> (4u * c)) & 0x000F000Fu) | 0x64006400u) - z[c]) * s[c];
                    Bs[at + 2u * c] = h.x;
                    Bs[at + 2u * c + 1u] = h.y;
                }
            }
        }
    }
#else
    [[unroll]] for (uint u = 0u; u < BL; u++) {
        uint e = tid + u * WG;
        if (BU % WG == 0u || e < BU) {
            uint at = bb + (e / (BK / 8u)) * BST + 8u * (e % (BK / 8u));
            f16vec2 h0 = unpackFloat2x16(br[r][u].x), h1 = unpackFloat2x16(br[r][u].y);
            f16vec2 h2 = unpackFloat2x16(br[r][u].z), h3 = unpackFloat2x16(br[r][u].w);
            Bs[at] = h0.x; Bs[at + 1u] = h0.y; Bs[at + 2u] = h1.x; Bs[at + 3u] = h1.y;
            Bs[at + 4u] = h2.x; Bs[at + 5u] = h2.y; Bs[at + 6u] = h3.x; Bs[at + 7u] = h3.y;
        }
    }
#endif
}

fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[FM][FN];

// acc += the tiles in shared buffer `buf`
void multiply(uint buf)
{
    uint sg = gl_SubgroupID, wm = sg / SGN, wn = sg % SGN;
    uint ab = buf * BM * AST, bb = buf * BSZ;
    [[unroll]] for (uint ks = 0u; ks < BK; ks += 16u) {
        fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[FM], b[FN];
        [[unroll]] for (uint i = 0u; i < FM; i++)
            coopMatLoadNV(a[i], As, ab + (wm * FM * 16u + 16u * i) * AST + ks, AST, false);
        [[unroll]] for (uint j = 0u; j < FN; j++)
#if W4
            coopMatLoadNV(b[j], Bs, bb + ks * BST + wn * FN * 16u + 16u * j, BST, false);
#else
            coopMatLoadNV(b[j], Bs, bb + (wn * FN * 16u + 16u * j) * BST + ks, BST, true);
#endif
        [[unroll]] for (uint i = 0u; i < FM; i++)
            [[unroll]] for (uint j = 0u; j < FN; j++)
                acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
    }
}

void store_y(uint m, uint n, float v)
{
    if ((pc.flags & 1u) != 0u)
        v += bias[pc.b_off + pc.col0 + n];
    uint yi = pc.y_off + m * pc.N + pc.col0 + n;
    if (YF16 != 0u)
        yh[yi] = float16_t(v);
    else
        yf[yi] = v;
}

// MODE 2: Y = the sum of the splits' partial products (fixed order), one element per invocation
void reduce()
{
    uint i = gl_GlobalInvocationID.x, total = pc.M * pc.nc;
    if (i >= total)
        return;
    float v = 0.0;
    for (uint z = 0u; z < pc.splits; z++)
        v += part[pc.p_off + z * total + i];
    store_y(i / pc.nc, i % pc.nc, v);
}

void main()
{
    if (MODE == 2u) {
        reduce();
        return;
    }
    uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    uint wm = sg / SGN, wn = sg % SGN;
    uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
    // 16-byte loads where the element offsets allow them (fp16, rows of a multiple of 8)
    bool xvec = XF16 != 0u && pc.K % 8u == 0u && pc.x_off % 8u == 0u;
#if W4
    bool wvec = false;
#else
    bool wvec = WF16 != 0u && pc.K % 8u == 0u && pc.w_off % 8u == 0u;
#endif
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++)
            acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
    // this workgroup's steps of BK: all of K, or split z's share (MODE 1)
    uint nk = (pc.K + BK - 1u) / BK, kb = 0u;
    if (MODE == 1u) {
        kb = gl_WorkGroupID.z * pc.ksteps;
        nk = min(nk - kb, pc.ksteps);
    }
    uint k0 = kb * BK;
    load_tiles(0u, m0, n0, k0, xvec, wvec);
    store_tiles(0u, 0u);
    if (DEPTH > 1u && nk > 1u)
        load_tiles(1u, m0, n0, k0 + BK, xvec, wvec);
    barrier();
    // two steps per iteration: step kt reads shared buffer 0, step kt + 1 buffer 1; register
    // set 0 carries the even tiles, set 1 the odd ones. With DEPTH 2 the fetch of tile kt + 2 is
    // issued while tile kt + 1 is still in flight.
    for (uint kt = 0u; kt < nk; kt += 2u) {
        if (DEPTH > 1u) {
            if (kt + 2u < nk)
                load_tiles(0u, m0, n0, k0 + (kt + 2u) * BK, xvec, wvec);
        } else if (kt + 1u < nk) {
            load_tiles(1u, m0, n0, k0 + (kt + 1u) * BK, xvec, wvec);
        }
        multiply(0u);
        // buffer 1 was last read before the previous barrier
        if (kt + 1u < nk)
            store_tiles(1u, 1u);
        barrier();
        if (kt + 1u >= nk)
            break;
        if (DEPTH > 1u) {
            if (kt + 3u < nk)
                load_tiles(1u, m0, n0, k0 + (kt + 3u) * BK, xvec, wvec);
        } else if (kt + 2u < nk) {
            load_tiles(0u, m0, n0, k0 + (kt + 2u) * BK, xvec, wvec);
        }
        multiply(1u);
        if (kt + 2u < nk)
            store_tiles(0u, 0u);
        barrier();
    }
    uint cs = sg * 256u;
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            coopMatStoreNV(acc[i][j], Cs, cs, 16u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            uint mb = m0 + (wm * FM + i) * 16u, nb = n0 + (wn * FN + j) * 16u;
            for (uint e = lane; e < 256u; e += gl_SubgroupSize) {
                uint m = mb + e / 16u, nl = e % 16u;
#if W4
                // tile position 2c -> column c, 2c + 1 -> column c + 4 within each 8-column block
                nl = (nl & 8u) | ((nl & 1u) * 4u) | ((nl >> 1u) & 3u);
#endif
                uint n = nb + nl;
                if (m < pc.M && n < pc.nc) {
                    if (MODE == 1u)
                        part[pc.p_off + (gl_WorkGroupID.z * pc.M + m) * pc.nc + n] = Cs[cs + e];
                    else
                        store_y(m, n, Cs[cs + e]);
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
