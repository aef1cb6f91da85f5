#version 450
#extension GL_GOOGLE_include_directive : require
// Merges the key splits of attention.comp: out = sum_s o_s e^(m_s - m) / sum_s l_s e^(m_s - m),
// m = max_s m_s, for every (row, head, d) of the job. A split that saw no visible key has
// m_s = -inf and contributes nothing.
#include "shader_common.glsl"

layout(std430, binding = 0) readonly buffer PBuf { float part[]; };
layout(std430, binding = 1) writeonly buffer OBuf { float ov[]; };

layout(push_constant) uniform PC {
    uint rows, heads, hd, n_splits, q_len, nq;
    uint h0, hn;                     // heads [h0, h0 + hn) in the partials
    uint po_off, pml_off, o_off;
} pc;

void main()
{
    uint total = pc.rows * pc.hn * pc.hd;
    uint stride = gl_NumWorkGroups.x * WG;
    for (uint idx = gl_GlobalInvocationID.x; idx < total; idx += stride) {
        uint d = idx % pc.hd, rh = idx / pc.hd;
        uint hr = rh % pc.hn, rp = rh / pc.hn, h = pc.h0 + hr;
        float m = uintBitsToFloat(0xFF800000u);
        for (uint s = 0u; s < pc.n_splits; s++)
            m = max(m, part[pc.pml_off + ((s * pc.rows + rp) * pc.hn + hr) * 2u]);
        float l = 0.0, acc = 0.0;
        for (uint s = 0u; s < pc.n_splits; s++) {
            uint mi = pc.pml_off + ((s * pc.rows + rp) * pc.hn + hr) * 2u;
            float ms = part[mi];
            if (isinf(ms))
                continue;
            float wgt = exp(ms - m);
            l += part[mi + 1u] * wgt;
            acc += part[pc.po_off + ((s * pc.rows + rp) * pc.hn + hr) * pc.hd + d] * wgt;
        }
        uint srel = rp / pc.nq, i = rp % pc.nq;
        ov[pc.o_off + (srel * pc.q_len + i) * pc.heads * pc.hd + h * pc.hd + d] = acc / l;
    }
}
