#version 450
#extension GL_GOOGLE_include_directive : require
// Per-channel statistics of X [T, C], added to fp32 accumulators in two passes with fixed order.
// Channels are processed in chunks [c0, c0 + Cc) (so the partials of a long X fit one binding).
// PASS 0: workgroup (cx, ty) covers channels c0 + [cx*CB, cx*CB + CB) and rows [ty*TR, ty*TR + TR)
// of this dispatch; WG/CB row lanes each walk every (WG/CB)-th row, then combine in lane order and
// write part[((p_base + ty) * 3 + s) * Cc + c] for s = sum|x|, max|x|, sum x^2.
// PASS 1: one invocation per channel adds the n_part partials in order to the accumulators.
#include "shader_common.glsl"

layout(constant_id = 1) const uint PASS = 0;
layout(constant_id = 2) const uint XF16 = 0;
layout(constant_id = 3) const uint CB = 64;    // channels per workgroup (WG is a multiple)
const uint RL = WG / CB;

layout(std430, binding = 0) readonly buffer XF { float xf[]; };
layout(std430, binding = 0) readonly buffer XH { HALF_T xh[]; };
layout(std430, binding = 1) buffer PBuf { float part[]; };
layout(std430, binding = 2) buffer SABuf { float sum_abs[]; };
layout(std430, binding = 3) buffer MABuf { float max_abs[]; };
layout(std430, binding = 4) buffer SQBuf { float sum_sq[]; };

layout(push_constant) uniform PC {
    uint T, C, TR, p_base, n_part, flags;
    uint c0, Cc;                      // channels [c0, c0 + Cc) in this chunk
    uint x_off, p_off, sa_off, ma_off, sq_off;
} pc;

shared float st_s[3 * WG];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    if (PASS == 0u) {
        uint c = gl_WorkGroupID.x * CB + tid % CB;   // within the chunk
        uint lane = tid / CB;
        uint t0 = gl_WorkGroupID.y * pc.TR, t1 = min(t0 + pc.TR, pc.T);
        float sa = 0.0, sq = 0.0, mx = 0.0;
        if (c < pc.Cc) {
            for (uint t = t0 + lane; t < t1; t += RL) {
                uint i = pc.x_off + t * pc.C + pc.c0 + c;
                float v = abs(XF16 != 0u ? H_LOAD(xh, i) : xf[i]);
                sa += v;
                sq += v * v;
                mx = max(mx, v);
            }
        }
        st_s[tid] = sa;
        st_s[WG + tid] = mx;
        st_s[2u * WG + tid] = sq;
        barrier();
        if (lane == 0u && c < pc.Cc) {
            for (uint l = 1u; l < RL; l++) {
                sa += st_s[l * CB + tid];
                mx = max(mx, st_s[WG + l * CB + tid]);
                sq += st_s[2u * WG + l * CB + tid];
            }
            uint p = (pc.p_base + gl_WorkGroupID.y) * 3u;
            part[pc.p_off + p * pc.Cc + c] = sa;
            part[pc.p_off + (p + 1u) * pc.Cc + c] = mx;
            part[pc.p_off + (p + 2u) * pc.Cc + c] = sq;
        }
    } else {
        uint c = gl_GlobalInvocationID.x;
        if (c >= pc.Cc)
            return;
        float sa = 0.0, sq = 0.0, mx = 0.0;
        for (uint p = 0u; p < pc.n_part; p++) {
            sa += part[pc.p_off + (3u * p) * pc.Cc + c];
            mx = max(mx, part[pc.p_off + (3u * p + 1u) * pc.Cc + c]);
            sq += part[pc.p_off + (3u * p + 2u) * pc.Cc + c];
        }
        uint cg = pc.c0 + c;
        if ((pc.flags & 1u) != 0u)
            sum_abs[pc.sa_off + cg] += sa;
        if ((pc.flags & 2u) != 0u)
            max_abs[pc.ma_off + cg] = max(max_abs[pc.ma_off + cg], mx);
        if ((pc.flags & 4u) != 0u)
            sum_sq[pc.sq_off + cg] += sq;
    }
}
