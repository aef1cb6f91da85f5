#version 450
#extension GL_GOOGLE_include_directive : require
// Elementwise ops over n values: OP 0 out = silu(a) * b; 1 out = a + b; 2 out = a * b[c]; 3 out =
// a / b[c], with c = (c0 + i) % C (column scaling of a row-major [T, C] tensor). out may alias a.
#include "shader_common.glsl"

layout(constant_id = 1) const uint OP = 0;

layout(std430, binding = 0) buffer ABuf { float a[]; };
layout(std430, binding = 1) buffer BBuf { float b[]; };
layout(std430, binding = 2) buffer OBuf { float o[]; };

layout(push_constant) uniform PC {
    uint n, C, c0;
    uint a_off, b_off, o_off;
} pc;

void main()
{
    uint stride = gl_NumWorkGroups.x * WG;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float x = a[pc.a_off + i];
        float r;
        if (OP == 0u) {
            r = x / (1.0 + exp(-x)) * b[pc.b_off + i];
        } else if (OP == 1u) {
            r = x + b[pc.b_off + i];
        } else {
            float s = b[pc.b_off + (pc.c0 + i) % pc.C];
            r = OP == 2u ? x * s : div_rn(x, s);
        }
        o[pc.o_off + i] = r;
    }
}
