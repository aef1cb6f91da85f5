#version 450
#extension GL_GOOGLE_include_directive : require
// Pseudo-quantization of w [N, K] in groups of G along K (see src/backend.h): one invocation per
// group. Rounding follows the CPU reference exactly: correctly rounded divisions, round half to
// even, no fused multiply-adds in the quantization arithmetic.
#include "shader_common.glsl"

layout(std430, binding = 0) buffer WBuf { float w[]; };
layout(std430, binding = 1) readonly buffer SBuf { float s[]; };
layout(std430, binding = 2) buffer OBuf { float o[]; };

layout(push_constant) uniform PC {
    uint K, G, n_groups, has_s;
    uint w_off, s_off, o_off;
} pc;

void main()
{
    uint gi = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    if (gi >= pc.n_groups)
        return;
    uint ng = pc.K / pc.G;
    uint n = gi / ng, g = gi % ng;
    uint base = n * pc.K + g * pc.G, k0 = g * pc.G;
    float mn = uintBitsToFloat(0x7F800000u), mx = -mn;
    for (uint i = 0u; i < pc.G; i++) {
        precise float v = w[pc.w_off + base + i];
        if (pc.has_s != 0u)
            v = v * s[pc.s_off + k0 + i];
        mn = min(mn, v);
        mx = max(mx, v);
    }
    precise float range = mx - mn;
    precise float scale = div_rn(range > 1e-5 ? range : 1e-5, 15.0);
    float zero = clamp(-roundEven(div_rn(mn, scale)), 0.0, 15.0);
    for (uint i = 0u; i < pc.G; i++) {
        precise float v = w[pc.w_off + base + i];
        float sk = pc.has_s != 0u ? s[pc.s_off + k0 + i] : 1.0;
        if (pc.has_s != 0u)
            v = v * sk;
        float code = clamp(roundEven(div_rn(v, scale)) + zero, 0.0, 15.0);
        precise float dq = (code - zero) * scale;
        o[pc.o_off + base + i] = pc.has_s != 0u ? div_rn(dq, sk) : dq;
    }
}
