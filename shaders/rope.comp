#version 450
#extension GL_GOOGLE_include_directive : require
// In-place rotary embedding ("rotate half" pairing) of rows t0.. of x [T, heads * head_dim]:
// (x[i], x[i + half]) rotated by angle pos * inv_freq[i], pos = pos0 + (t % seq_len).
// sin and cos come from an explicit range reduction and polynomials: GPU sin/cos are only
// required to be accurate to 2^-11 and angles reach thousands of radians at long positions.
#include "shader_common.glsl"

layout(std430, binding = 0) buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer FBuf { float inv_freq[]; };

layout(push_constant) uniform PC {
    uint T, heads, half_dim, pos0, seq_len, t0;
    uint x_off, f_off;
} pc;

// sin and cos of a (|a| up to ~1e6), via a = k * pi/2 + r, |r| <= pi/4 (three-part pi/2 with fma).
void sincos_acc(float a, out float s, out float c)
{
    precise float k = roundEven(a * 0.63661974668502808);
    precise float r = fma(-k, 1.5707963705062866, a);
    r = fma(-k, -4.371138828673793e-08, r);
    r = fma(-k, -1.7151245100058819e-15, r);
    precise float z = r * r;
    precise float sp = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    precise float cp = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z
                       - 0.5 * z + 1.0;
    int q = int(k) & 3;
    if (q == 0) {
        s = sp;
        c = cp;
    } else if (q == 1) {
        s = cp;
        c = -sp;
    } else if (q == 2) {
        s = -sp;
        c = -cp;
    } else {
        s = -cp;
        c = sp;
    }
}

void main()
{
    uint total = pc.T * pc.heads * pc.half_dim;
    uint stride = gl_NumWorkGroups.x * WG;
    for (uint idx = gl_GlobalInvocationID.x; idx < total; idx += stride) {
        uint i = idx % pc.half_dim;
        uint th = idx / pc.half_dim;
        uint t = th / pc.heads;
        precise float pos = float(pc.pos0 + (pc.t0 + t) % pc.seq_len);
        precise float ang = pos * inv_freq[pc.f_off + i];
        float s, c;
        sincos_acc(ang, s, c);
        uint base = pc.x_off + th * 2u * pc.half_dim + i;
        float x0 = x[base], x1 = x[base + pc.half_dim];
        x[base] = x0 * c - x1 * s;
        x[base + pc.half_dim] = x1 * c + x0 * s;
    }
}
