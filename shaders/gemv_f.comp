#version 450
#extension GL_GOOGLE_include_directive : require
// Unquantized gemm for small M (decode, e.g. the output head): Y[M, N] = X[M, K] * W[N, K]^T.
// A team of KT invocations reads one row of W once, coalesced along K, for up to MR rows of X;
// the team then reduces (subgroup adds in the fast variant, a shared tree in the base one).
#include "shader_common.glsl"

layout(constant_id = 1) const uint KT = 32;
layout(constant_id = 2) const uint MR = 1;
layout(constant_id = 3) const uint XF16 = 0;
layout(constant_id = 4) const uint WF16 = 0;
layout(constant_id = 5) const uint YF16 = 0;
const uint NB = WG / KT;

layout(std430, binding = 0) readonly buffer XF { float xf[]; };
layout(std430, binding = 0) readonly buffer XH { HALF_T xh[]; };
layout(std430, binding = 1) readonly buffer WFb { float wf[]; };
layout(std430, binding = 1) readonly buffer WHb { HALF_T wh[]; };
layout(std430, binding = 2) buffer YF { float yf[]; };
layout(std430, binding = 2) buffer YH { HALF_T yh[]; };
layout(std430, binding = 3) readonly buffer BBuf { float bias[]; };

layout(push_constant) uniform PC {
    uint K, N, nc, col0, M, flags;   // flags: 1 = bias
    uint x_off, w_off, y_off, b_off;
} pc;

shared float red[WG];

float acc[MR];

float wval(uint i)
{
    return WF16 != 0u ? H_LOAD(wh, i) : wf[i];
}

void fold(float wv, uint k)
{
    for (uint r = 0u; r < MR; r++) {
        if (r >= pc.M)
            break;
        uint i = pc.x_off + r * pc.K + k;
        acc[r] += (XF16 != 0u ? H_LOAD(xh, i) : xf[i]) * wv;
    }
}

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint team = tid / KT, lane = tid % KT;
    uint n = gl_WorkGroupID.x * NB + team;
    bool live = n < pc.nc;
    for (uint r = 0u; r < MR; r++)
        acc[r] = 0.0;
    if (live) {
        uint wb = pc.w_off + n * pc.K;
        uint k = lane;
        for (; k + 3u * KT < pc.K; k += 4u * KT) {
            float w0 = wval(wb + k), w1 = wval(wb + k + KT);
            float w2 = wval(wb + k + 2u * KT), w3 = wval(wb + k + 3u * KT);
            fold(w0, k);
            fold(w1, k + KT);
            fold(w2, k + 2u * KT);
            fold(w3, k + 3u * KT);
        }
        for (; k < pc.K; k += KT)
            fold(wval(wb + k), k);
    }
    for (uint r = 0u; r < MR; r++) {
        if (r >= pc.M)
            break;
        float v = 0.0;
#if AWQ_FAST
        float t = subgroupAdd(acc[r]);
        if (subgroupElect())
            red[gl_SubgroupID] = t;
        barrier();
        if (lane == 0u) {
            uint per = KT / gl_SubgroupSize, sg0 = team * per;
            for (uint i = 0u; i < per; i++)
                v += red[sg0 + i];
        }
#else
        red[tid] = acc[r];
        barrier();
        for (uint s = KT / 2u; s > 0u; s >>= 1u) {
            if (lane < s)
                red[tid] += red[tid + s];
            barrier();
        }
        v = red[tid];
#endif
        if (live && lane == 0u) {
            uint col = pc.col0 + n;
            if ((pc.flags & 1u) != 0u)
                v += bias[pc.b_off + col];
            uint yi = pc.y_off + r * pc.N + col;
            if (YF16 != 0u) {
                H_STORE(yh, yi, v);
            } else {
                yf[yi] = v;
            }
        }
        barrier();
    }
}
