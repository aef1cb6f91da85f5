#version 450
#extension GL_GOOGLE_include_directive : require
// Clip search error table (see src/backend.h): one workgroup per (group g, output channel n), for
// up to 16 shrink factors per dispatch. The group's clamp and quantization parameters for each
// shrink factor come first (the min/max of a clamped group is the clamp of its min/max); then
// err[i] = sum_t (x_t . dw_i)^2 over tiles of TT tokens, with dw_i = dequant(quant(clamp(w))) - w
// for a segment of up to GC channels held in shared memory. Fixed summation order throughout.
#define NEED_WG_REDUCE
#include "shader_common.glsl"

layout(constant_id = 1) const uint GC = 128;
layout(constant_id = 2) const uint TT = 16;
const uint NSMAX = 16u;
const uint PPT = (NSMAX * TT + WG - 1u) / WG;

layout(std430, binding = 0) readonly buffer WBuf { float w[]; };
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 2) buffer EBuf { float err[]; };

layout(push_constant) uniform PC {
    uint N, K, G, T, ns, accumulate;
    uint w_off, x_off, e_off;
    float shrink[NSMAX];
} pc;

shared float dw_s[NSMAX * GC];
shared float x_s[TT * GC];
shared float prm_s[NSMAX * 3u];   // clip bound m, scale, zero per shrink factor
shared float e_s[NSMAX * TT];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint g = gl_WorkGroupID.x, n = gl_WorkGroupID.y;
    uint ng = pc.K / pc.G;
    uint wb = pc.w_off + n * pc.K + g * pc.G;
    float amax = 0.0, mn = uintBitsToFloat(0x7F800000u), mx = -mn;
    for (uint i = tid; i < pc.G; i += WG) {
        float v = w[wb + i];
        amax = max(amax, abs(v));
        mn = min(mn, v);
        mx = max(mx, v);
    }
    amax = wg_max(amax);
    mn = wg_min(mn);
    mx = wg_max(mx);
    if (tid < pc.ns) {
        precise float m = amax * pc.shrink[tid];
        float cmn = clamp(mn, -m, m), cmx = clamp(mx, -m, m);
        precise float range = cmx - cmn;
        precise float scale = div_rn(range > 1e-5 ? range : 1e-5, 15.0);
        prm_s[tid * 3u] = m;
        prm_s[tid * 3u + 1u] = scale;
        prm_s[tid * 3u + 2u] = clamp(-roundEven(div_rn(cmn, scale)), 0.0, 15.0);
    }
    barrier();

    float e[PPT];
    for (uint u = 0u; u < PPT; u++)
        e[u] = 0.0;
    uint nseg = (pc.G + GC - 1u) / GC;
    for (uint t0 = 0u; t0 < pc.T; t0 += TT) {
        float p[PPT];
        for (uint u = 0u; u < PPT; u++)
            p[u] = 0.0;
        for (uint sg = 0u; sg < nseg; sg++) {
            uint k0 = sg * GC, kn = min(GC, pc.G - k0);
            if (t0 == 0u || nseg > 1u) {
                // dw for every shrink factor over this segment (kept across token tiles when the
                // whole group fits one segment)
                for (uint e2 = tid; e2 < pc.ns * GC; e2 += WG) {
                    uint i = e2 / GC, kk = e2 % GC;
                    float dwv = 0.0;
                    if (kk < kn) {
                        float wv = w[wb + k0 + kk];
                        float m = prm_s[i * 3u], scale = prm_s[i * 3u + 1u], zero = prm_s[i * 3u + 2u];
                        float c = clamp(wv, -m, m);
                        float code = clamp(roundEven(div_rn(c, scale)) + zero, 0.0, 15.0);
                        precise float dq = (code - zero) * scale;
                        precise float diff = dq - wv;
                        dwv = diff;
                    }
                    dw_s[e2] = dwv;
                }
            }
            for (uint e2 = tid; e2 < TT * GC; e2 += WG) {
                uint tt = e2 / GC, kk = e2 % GC, t = t0 + tt;
                x_s[e2] = t < pc.T && kk < kn ? x[pc.x_off + t * pc.K + g * pc.G + k0 + kk] : 0.0;
            }
            barrier();
            for (uint u = 0u; u < PPT; u++) {
                uint pr = tid + u * WG;
                uint i = pr / TT, tt = pr % TT;
                if (i < pc.ns) {
                    float s = p[u];
                    for (uint kk = 0u; kk < kn; kk++)
                        s += x_s[tt * GC + kk] * dw_s[i * GC + kk];
                    p[u] = s;
                }
            }
            barrier();
        }
        for (uint u = 0u; u < PPT; u++)
            e[u] += p[u] * p[u];
    }
    for (uint u = 0u; u < PPT; u++) {
        uint pr = tid + u * WG;
        if (pr < NSMAX * TT)
            e_s[pr] = e[u];
    }
    barrier();
    if (tid < pc.ns) {
        float s = 0.0;
        for (uint tt = 0u; tt < TT; tt++)
            s += e_s[tid * TT + tt];
        uint ei = pc.e_off + (tid * pc.N + n) * ng + g;
        err[ei] = pc.accumulate != 0u ? err[ei] + s : s;
    }
}
