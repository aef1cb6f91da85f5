#version 450
#extension GL_GOOGLE_include_directive : require
// Device-to-device copy of n 16-byte units (buf_copy on discrete GPUs: their copy engines move far
// less than the SMs do). A grid-stride loop, so any group count covers any n.
#include "shader_common.glsl"

layout(std430, binding = 0) readonly buffer SBuf { uvec4 s[]; };
layout(std430, binding = 1) writeonly buffer DBuf { uvec4 d[]; };

layout(push_constant) uniform PC {
    uint n, s_off, d_off;
} pc;

void main()
{
    uint stride = gl_NumWorkGroups.x * WG;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride)
        d[pc.d_off + i] = s[pc.s_off + i];
}
