#version 450
#extension GL_GOOGLE_include_directive : require
// Y[M, N] = X[M, K] * dequant(W) (+ bias) for small M (decode): a bandwidth-bound pass that reads
// the packed weights once. A team of KT invocations owns one 8-column block and splits K among
// its members (consecutive members read consecutive 16-byte vectors: 4 input channels x 8
// columns; with one row, pairs of them); WG / KT teams per workgroup. Each member keeps per-column partial sums for up to MR
// rows, then the team reduces them (subgroup adds in the fast variant, a shared-memory tree in
// the base one). fp32 accumulation throughout.
//
// Weight layout (see vk_internal.h, struct vk_w4): q [N/8][K] words with nibble c = column 8j+c;
// s [N/8][K/G][8] fp16 scales (one uvec4 per block and group); z [N/8][K/G] packed zero points.
#include "shader_common.glsl"

layout(constant_id = 1) const uint KT = 32;
layout(constant_id = 2) const uint MR = 1;
layout(constant_id = 3) const uint XF16 = 0;
layout(constant_id = 4) const uint YF16 = 0;
layout(constant_id = 5) const uint GS = 128;
const uint NB = WG / KT;

layout(std430, binding = 0) readonly buffer XF { float xf[]; };
layout(std430, binding = 0) readonly buffer XH { HALF_T xh[]; };
layout(std430, binding = 0) readonly buffer XV { uvec4 xv[]; };
layout(std430, binding = 1) buffer YF { float yf[]; };
layout(std430, binding = 1) buffer YH { HALF_T yh[]; };
layout(std430, binding = 2) readonly buffer QBuf { uvec4 q4[]; };
layout(std430, binding = 3) readonly buffer SBuf { uvec4 sc4[]; };
layout(std430, binding = 4) readonly buffer ZBuf { uint zq[]; };
layout(std430, binding = 5) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 6) readonly buffer ABuf { float ascale[]; };

layout(push_constant) uniform PC {
    uint K, N, ncb, col0, M, flags;   // flags: 1 = bias, 2 = act_scale
    uint x_off, y_off, q_off, s_off, z_off, b_off, a_off;
} pc;

shared float red[WG * 8u];

float xval(uint r, uint k)
{
    uint i = pc.x_off + r * pc.K + k;
    float v = XF16 != 0u ? H_LOAD(xh, i) : xf[i];
    if ((pc.flags & 2u) != 0u)
        v *= ascale[pc.a_off + k];
    return v;
}

// 1 + q/16 for nibble c of w: the nibble moved into the top mantissa bits of 1.0f, which avoids an
// int-to-float conversion per weight. sum x * (1 + q/16) = sum x + (sum x q) / 16.
float nib(uint w, uint c)
{
    uint m = c <= 4u ? (w << (19u - 4u * c)) : (w >> (4u * c - 19u));
    return uintBitsToFloat((m & 0x00780000u) | 0x3F800000u);
}

float acc[MR][8];
bool xvec;   // one row: its 8 channels in one 16-byte load (fp16, aligned, no act_scale)

void process(uvec4 w, uint k4, uint sb, uint zb)
{
    uint g = (k4 * 4u) / GS;
    uvec4 sw = sc4[sb + g];
    uint zw = zq[zb + g];
    float s[8];
    vec2 t;
    t = unpackHalf2x16(sw.x); s[0] = t.x; s[1] = t.y;
    t = unpackHalf2x16(sw.y); s[2] = t.x; s[3] = t.y;
    t = unpackHalf2x16(sw.z); s[4] = t.x; s[5] = t.y;
    t = unpackHalf2x16(sw.w); s[6] = t.x; s[7] = t.y;
    float f[4][8];
    for (uint c = 0u; c < 8u; c++) {
        f[0][c] = nib(w.x, c);
        f[1][c] = nib(w.y, c);
        f[2][c] = nib(w.z, c);
        f[3][c] = nib(w.w, c);
    }
    for (uint r = 0u; r < MR; r++) {
        if (r >= pc.M)
            break;
        float x0 = xval(r, 4u * k4), x1 = xval(r, 4u * k4 + 1u);
        float x2 = xval(r, 4u * k4 + 2u), x3 = xval(r, 4u * k4 + 3u);
        float xs = (x0 + x1) + (x2 + x3);
        for (uint c = 0u; c < 8u; c++) {
            float dq = x0 * f[0][c] + x1 * f[1][c] + x2 * f[2][c] + x3 * f[3][c];
            float z = float((zw >> (4u * c)) & 15u);
            acc[r][c] += s[c] * (16.0 * dq - (16.0 + z) * xs);
        }
    }
}

// One row (decode): 8 consecutive input channels (two vectors, always in one group) per call, so
// the group's scales and zero points are applied once per 8 channels.
void process8(uvec4 wa, uvec4 wb, uint k8, uint sb, uint zb)
{
    uint g = (k8 * 8u) / GS;
    uvec4 sw = sc4[sb + g];
    uint zw = zq[zb + g];
    vec2 s01 = unpackHalf2x16(sw.x), s23 = unpackHalf2x16(sw.y);
    vec2 s45 = unpackHalf2x16(sw.z), s67 = unpackHalf2x16(sw.w);
    float s[8] = float[8](s01.x, s01.y, s23.x, s23.y, s45.x, s45.y, s67.x, s67.y);
    uint w[8] = uint[8](wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w);
    float x[8];
    if (xvec) {
        uvec4 xw = xv[(pc.x_off + 8u * k8) / 8u];
        vec2 t;
        t = unpackHalf2x16(xw.x); x[0] = t.x; x[1] = t.y;
        t = unpackHalf2x16(xw.y); x[2] = t.x; x[3] = t.y;
        t = unpackHalf2x16(xw.z); x[4] = t.x; x[5] = t.y;
        t = unpackHalf2x16(xw.w); x[6] = t.x; x[7] = t.y;
    } else {
        for (uint i = 0u; i < 8u; i++)
            x[i] = xval(0u, 8u * k8 + i);
    }
    float xs = ((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7]));
    for (uint c = 0u; c < 8u; c++) {
        float dq = 0.0;
        for (uint i = 0u; i < 8u; i++)
            dq = fma(x[i], nib(w[i], c), dq);
        float z = float((zw >> (4u * c)) & 15u);
        acc[0][c] += s[c] * (16.0 * dq - (16.0 + z) * xs);
    }
}

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint team = tid / KT, lane = tid % KT;
    uint jb = gl_WorkGroupID.x * NB + team;
    bool live = jb < pc.ncb;
    uint K4 = pc.K / 4u, ng = pc.K / GS;
    xvec = XF16 != 0u && (pc.flags & 2u) == 0u && pc.K % 8u == 0u && pc.x_off % 8u == 0u;
    for (uint r = 0u; r < MR; r++)
        for (uint c = 0u; c < 8u; c++)
            acc[r][c] = 0.0;
    if (live) {
        uint qb = pc.q_off + jb * K4;
        uint sb = pc.s_off / 8u + jb * ng;
        uint zb = pc.z_off + jb * ng;
        if (MR == 1u) {
            // pairs of vectors (8 channels); two pairs, four 16-byte loads in flight
            uint K8 = pc.K / 8u, k8 = lane;
            for (; k8 + KT < K8; k8 += 2u * KT) {
                uvec4 a0 = q4[qb + 2u * k8], a1 = q4[qb + 2u * k8 + 1u];
                uvec4 b0 = q4[qb + 2u * (k8 + KT)], b1 = q4[qb + 2u * (k8 + KT) + 1u];
                process8(a0, a1, k8, sb, zb);
                process8(b0, b1, k8 + KT, sb, zb);
            }
            for (; k8 < K8; k8 += KT)
                process8(q4[qb + 2u * k8], q4[qb + 2u * k8 + 1u], k8, sb, zb);
        }
        uint k4 = MR == 1u ? K4 : lane;
        // several rows: four independent 16-byte loads in flight per invocation
        for (; k4 + 3u * KT < K4; k4 += 4u * KT) {
            uvec4 w0 = q4[qb + k4], w1 = q4[qb + k4 + KT];
            uvec4 w2 = q4[qb + k4 + 2u * KT], w3 = q4[qb + k4 + 3u * KT];
            process(w0, k4, sb, zb);
            process(w1, k4 + KT, sb, zb);
            process(w2, k4 + 2u * KT, sb, zb);
            process(w3, k4 + 3u * KT, sb, zb);
        }
        for (; k4 < K4; k4 += KT)
            process(q4[qb + k4], k4, sb, zb);
    }

    for (uint r = 0u; r < MR; r++) {
        if (r >= pc.M)
            break;
        float v = 0.0;
#if AWQ_FAST
        for (uint c = 0u; c < 8u; c++) {
            float t = subgroupAdd(acc[r][c]);
            if (subgroupElect())
                red[gl_SubgroupID * 8u + c] = t;
        }
        barrier();
        if (lane < 8u) {
            uint per = KT / gl_SubgroupSize, sg0 = team * per;
            for (uint i = 0u; i < per; i++)
                v += red[(sg0 + i) * 8u + lane];
        }
#else
        for (uint c = 0u; c < 8u; c++)
            red[tid * 8u + c] = acc[r][c];
        barrier();
        for (uint s = KT / 2u; s > 0u; s >>= 1u) {
            if (lane < s)
                for (uint c = 0u; c < 8u; c++)
                    red[tid * 8u + c] += red[(tid + s) * 8u + c];
            barrier();
        }
        if (lane < 8u)
            v = red[team * KT * 8u + lane];
#endif
        if (live && lane < 8u) {
            uint n = pc.col0 + 8u * jb + lane;
            if ((pc.flags & 1u) != 0u)
                v += bias[pc.b_off + n];
            uint yi = pc.y_off + r * pc.N + n;
            if (YF16 != 0u) {
                H_STORE(yh, yi, v);
            } else {
                yf[yi] = v;
            }
        }
        barrier();
    }
}
