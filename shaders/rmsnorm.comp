#version 450
#extension GL_GOOGLE_include_directive : require
// One workgroup per row: y = x / sqrt(mean(x^2) + eps) * w. y may alias x (each invocation
// rewrites only the elements it read).
#define NEED_WG_REDUCE
#include "shader_common.glsl"

layout(std430, binding = 0) buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float w[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };

layout(push_constant) uniform PC {
    uint C;
    float eps;
    uint x_off, w_off, y_off;
} pc;

void main()
{
    uint row = gl_WorkGroupID.x;
    uint xb = pc.x_off + row * pc.C, yb = pc.y_off + row * pc.C;
    float ss = 0.0;
    for (uint c = gl_LocalInvocationID.x; c < pc.C; c += WG) {
        float v = x[xb + c];
        ss += v * v;
    }
    float total = wg_sum(ss);
    float r = 1.0 / sqrt(total / float(pc.C) + pc.eps);
    for (uint c = gl_LocalInvocationID.x; c < pc.C; c += WG)
        y[yb + c] = x[xb + c] * r * w[pc.w_off + c];
}
