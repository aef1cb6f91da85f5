#version 450
#extension GL_GOOGLE_include_directive : require
// One workgroup per row: nll = logsumexp(logits) - logits[target] (NaN for a target out of range).
#define NEED_WG_REDUCE
#include "shader_common.glsl"

layout(std430, binding = 0) readonly buffer LBuf { float logits[]; };
layout(std430, binding = 1) readonly buffer TBuf { int targets[]; };
layout(std430, binding = 2) writeonly buffer NBuf { float nll[]; };

layout(push_constant) uniform PC {
    uint V;
    uint l_off, t_off, n_off;
} pc;

void main()
{
    uint row = gl_WorkGroupID.x;
    uint lb = pc.l_off + row * pc.V;
    float mx = uintBitsToFloat(0xFF800000u);
    for (uint v = gl_LocalInvocationID.x; v < pc.V; v += WG)
        mx = max(mx, logits[lb + v]);
    mx = wg_max(mx);
    float s = 0.0;
    for (uint v = gl_LocalInvocationID.x; v < pc.V; v += WG)
        s += exp(logits[lb + v] - mx);
    s = wg_sum(s);
    if (gl_LocalInvocationID.x == 0u) {
        int t = targets[pc.t_off + row];
        float lt = t >= 0 && uint(t) < pc.V ? logits[lb + uint(t)] : nan_value();
        nll[pc.n_off + row] = mx + log(s) - lt;
    }
}
