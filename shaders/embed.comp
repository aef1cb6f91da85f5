#version 450
#extension GL_GOOGLE_include_directive : require
// out[t, :] = table[ids[t], :] for the ids that fall in this dispatch's window of table rows
// [v0, v0 + nv); the dispatch with `first` set also writes zero rows for ids outside [0, vocab).
// A table larger than one binding is covered by several dispatches, one per window.
#include "shader_common.glsl"

layout(constant_id = 1) const uint TF16 = 0;

layout(std430, binding = 0) readonly buffer TabF { float tab_f[]; };
layout(std430, binding = 0) readonly buffer TabH { HALF_T tab_h[]; };
layout(std430, binding = 1) readonly buffer IBuf { int ids[]; };
layout(std430, binding = 2) writeonly buffer OBuf { float o[]; };

layout(push_constant) uniform PC {
    uint T, C, v0, nv, vocab, first;
    uint tab_off, i_off, o_off;
} pc;

void main()
{
    uint total = pc.T * pc.C;
    uint stride = gl_NumWorkGroups.x * WG;
    for (uint idx = gl_GlobalInvocationID.x; idx < total; idx += stride) {
        uint t = idx / pc.C, c = idx % pc.C;
        int id = ids[pc.i_off + t];
        if (id >= int(pc.v0) && uint(id) < pc.v0 + pc.nv) {
            uint src = pc.tab_off + (uint(id) - pc.v0) * pc.C + c;
            o[pc.o_off + idx] = TF16 != 0u ? H_LOAD(tab_h, src) : tab_f[src];
        } else if (pc.first != 0u && (id < 0 || uint(id) >= pc.vocab)) {
            o[pc.o_off + idx] = 0.0;
        }
    }
}
