#version 450
#extension GL_GOOGLE_include_directive : require
// sum (a - b)^2 in a fixed order. PASS 0: workgroup w sums elements [w*WG*PER, (w+1)*WG*PER) of
// this dispatch (each invocation PER strided values, then a workgroup reduction) into
// part[p_base + w]. PASS 1: one workgroup sums part[0..n_part) into out[0].
#define NEED_WG_REDUCE
#include "shader_common.glsl"

layout(constant_id = 1) const uint PASS = 0;
const uint PER = 16u;

layout(std430, binding = 0) readonly buffer ABuf { float a[]; };
layout(std430, binding = 1) readonly buffer BBuf { float b[]; };
layout(std430, binding = 2) buffer PBuf { float part[]; };
layout(std430, binding = 3) writeonly buffer OBuf { float o[]; };

layout(push_constant) uniform PC {
    uint n, p_base, n_part;
    uint a_off, b_off, p_off, o_off;
} pc;

void main()
{
    uint tid = gl_LocalInvocationID.x;
    float s = 0.0;
    if (PASS == 0u) {
        uint base = gl_WorkGroupID.x * WG * PER + tid;
        for (uint j = 0u; j < PER; j++) {
            uint i = base + j * WG;
            if (i < pc.n) {
                float dlt = a[pc.a_off + i] - b[pc.b_off + i];
                s += dlt * dlt;
            }
        }
        s = wg_sum(s);
        if (tid == 0u)
            part[pc.p_off + pc.p_base + gl_WorkGroupID.x] = s;
    } else {
        for (uint i = tid; i < pc.n_part; i += WG)
            s += part[pc.p_off + i];
        s = wg_sum(s);
        if (tid == 0u)
            o[pc.o_off] = s;
    }
}
