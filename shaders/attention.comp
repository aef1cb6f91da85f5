#version 450
#extension GL_GOOGLE_include_directive : require
// Causal attention with grouped KV heads, tiled with an online softmax: a workgroup owns BQ
// queries of one (sequence, head) and a DV-wide slice of the head dimension, and walks the keys
// of its split BKV at a time. Scores are accumulated over head-dim chunks of DC through shared
// memory, so any head_dim works; no score matrix larger than BQ x BKV ever exists.
//
// A job covers sequences [0, gl_NumWorkGroups.z) of the bound windows, queries [i0, i0 + nq),
// keys [j0, j0 + nk) and heads [h0, h0 + hn) of each; the keys are divided into S splits (grid
// y = ((head - h0) * S + split) * n_dsl + slice). With one split overall (partial == 0) the result is final; otherwise each split
// writes its unnormalized output, running max and sum to the scratch for attn_combine.comp.
#include "shader_common.glsl"

layout(constant_id = 1) const uint BQ = 16;
layout(constant_id = 2) const uint BKV = 32;
layout(constant_id = 3) const uint DC = 64;
layout(constant_id = 4) const uint DV = 128;
const uint SPT = (BQ * BKV + WG - 1u) / WG;
const uint OPT = (BQ * DV + WG - 1u) / WG;

layout(std430, binding = 0) readonly buffer QBuf { float qv[]; };
layout(std430, binding = 1) readonly buffer KBuf { float kv[]; };
layout(std430, binding = 2) readonly buffer VBuf { float vv[]; };
layout(std430, binding = 3) writeonly buffer OBuf { float ov[]; };
layout(std430, binding = 4) writeonly buffer PBuf { float part[]; };

layout(push_constant) uniform PC {
    uint q_len, kv_len, heads, kv_heads, hd;
    float scale;
    uint i0, nq, j0, nk;
    uint S, split_base, partial, n_dsl;
    uint h0, hn;                     // heads [h0, h0 + hn) in this job
    uint q_off, k_off, v_off, o_off, po_off, pml_off;
} pc;

shared float Qs[BQ * (DC + 1u)];
shared float Ks[BKV * (DC + 1u)];
shared float Vs[BKV * DV];
shared float Ps[BQ * (BKV + 1u)];
shared float m_s[BQ], l_s[BQ], a_s[BQ];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint ds = gl_WorkGroupID.y % pc.n_dsl, hs = gl_WorkGroupID.y / pc.n_dsl;
    uint sidx = hs % pc.S, hr = hs / pc.S, h = pc.h0 + hr;
    uint kvh = h / (pc.heads / pc.kv_heads);
    uint srel = gl_WorkGroupID.z;
    uint qrow = pc.heads * pc.hd, krow = pc.kv_heads * pc.hd;
    uint qb0 = pc.i0 + gl_WorkGroupID.x * BQ;
    uint qend = pc.i0 + pc.nq;
    uint qlast = min(qb0 + BQ, qend) - 1u;
    uint shift = pc.kv_len - pc.q_len;                 // query i sees keys j <= shift + i
    uint tiles = (pc.nk + BKV - 1u) / BKV;
    uint per = (tiles + pc.S - 1u) / pc.S;
    uint js = pc.j0 + sidx * per * BKV;
    uint je = min(js + per * BKV, pc.j0 + pc.nk);
    uint jend = min(je, shift + qlast + 1u);
    uint d0v = ds * DV;
    uint dvn = min(DV, pc.hd - d0v);
    // window-relative element bases
    uint qbase = pc.q_off + (srel * pc.q_len - pc.i0) * qrow + h * pc.hd;   // + i * qrow + d
    uint kbase = pc.k_off + (srel * pc.kv_len - pc.j0) * krow + kvh * pc.hd; // + j * krow + d

    float o[OPT];
    for (uint u = 0u; u < OPT; u++)
        o[u] = 0.0;
    if (tid < BQ) {
        m_s[tid] = uintBitsToFloat(0xFF800000u);
        l_s[tid] = 0.0;
    }
    barrier();
    for (uint jt = js; jt < jend; jt += BKV) {
        float sacc[SPT];
        for (uint u = 0u; u < SPT; u++)
            sacc[u] = 0.0;
        for (uint dc0 = 0u; dc0 < pc.hd; dc0 += DC) {
            for (uint e = tid; e < BQ * DC; e += WG) {
                uint qi = e / DC, dd = e % DC, i = qb0 + qi, d = dc0 + dd;
                Qs[qi * (DC + 1u) + dd] = i < qend && d < pc.hd ? qv[qbase + i * qrow + d] : 0.0;
            }
            for (uint e = tid; e < BKV * DC; e += WG) {
                uint kj = e / DC, dd = e % DC, j = jt + kj, d = dc0 + dd;
                Ks[kj * (DC + 1u) + dd] = j < jend && d < pc.hd ? kv[kbase + j * krow + d] : 0.0;
            }
            barrier();
            for (uint u = 0u; u < SPT; u++) {
                uint p = tid + u * WG;
                if (p < BQ * BKV) {
                    uint qi = p / BKV, kj = p % BKV;
                    float s = 0.0;
                    for (uint dd = 0u; dd < DC; dd++)
                        s += Qs[qi * (DC + 1u) + dd] * Ks[kj * (DC + 1u) + dd];
                    sacc[u] += s;
                }
            }
            barrier();
        }
        for (uint u = 0u; u < SPT; u++) {
            uint p = tid + u * WG;
            if (p < BQ * BKV) {
                uint qi = p / BKV, kj = p % BKV, i = qb0 + qi, j = jt + kj;
                bool ok = i < qend && j < jend && j <= shift + i;
                Ps[qi * (BKV + 1u) + kj] = ok ? sacc[u] * pc.scale : uintBitsToFloat(0xFF800000u);
            }
        }
        for (uint e = tid; e < BKV * DV; e += WG) {
            uint kj = e / DV, dd = e % DV, j = jt + kj;
            Vs[e] = j < jend && dd < dvn ? vv[kbase + j * krow + d0v + dd] : 0.0;
        }
        barrier();
        if (tid < BQ) {
            float mo = m_s[tid], mx = mo;
            for (uint kj = 0u; kj < BKV; kj++)
                mx = max(mx, Ps[tid * (BKV + 1u) + kj]);
            float a = 1.0;
            if (isinf(mx)) {
                for (uint kj = 0u; kj < BKV; kj++)
                    Ps[tid * (BKV + 1u) + kj] = 0.0;
            } else {
                a = exp(mo - mx);
                float sum = 0.0;
                for (uint kj = 0u; kj < BKV; kj++) {
                    float pj = exp(Ps[tid * (BKV + 1u) + kj] - mx);
                    Ps[tid * (BKV + 1u) + kj] = pj;
                    sum += pj;
                }
                l_s[tid] = l_s[tid] * a + sum;
                m_s[tid] = mx;
            }
            a_s[tid] = a;
        }
        barrier();
        for (uint u = 0u; u < OPT; u++) {
            uint e = tid + u * WG;
            if (e < BQ * DV) {
                uint qi = e / DV, dd = e % DV;
                float acc = o[u] * a_s[qi];
                for (uint kj = 0u; kj < BKV; kj++)
                    acc += Ps[qi * (BKV + 1u) + kj] * Vs[kj * DV + dd];
                o[u] = acc;
            }
        }
        barrier();
    }
    uint rows = gl_NumWorkGroups.z * pc.nq;
    for (uint u = 0u; u < OPT; u++) {
        uint e = tid + u * WG;
        uint qi = e / DV, dd = e % DV, i = qb0 + qi;
        if (e >= BQ * DV || i >= qend || dd >= dvn)
            continue;
        uint d = d0v + dd;
        if (pc.partial == 0u) {
            ov[pc.o_off + (srel * pc.q_len + i - pc.i0) * qrow + h * pc.hd + d] = o[u] / l_s[qi];
        } else {
            uint rp = srel * pc.nq + (i - pc.i0);
            uint sp = pc.split_base + sidx;
            part[pc.po_off + ((sp * rows + rp) * pc.hn + hr) * pc.hd + d] = o[u];
            if (ds == 0u && dd == 0u) {
                uint mi = pc.pml_off + ((sp * rows + rp) * pc.hn + hr) * 2u;
                part[mi] = m_s[qi];
                part[mi + 1u] = l_s[qi];
            }
        }
    }
}
