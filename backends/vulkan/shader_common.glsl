// Included by every shader in shaders/*.comp, right after #version and the include extension.
//
// Two SPIR-V variants are built from each shader: AWQ_FAST=0 ("base": Vulkan 1.1 core only) and
// AWQ_FAST=1 (16-bit storage, fp16 arithmetic types, subgroup arithmetic). The backend picks the
// fast one when the device reports all of those features.
//
// Specialization constant 0 is the workgroup size (1-D). Tensor bindings are windows of a buffer;
// the push constants carry each window's element offset (`*_off`).

#extension GL_EXT_control_flow_attributes : require

#if AWQ_FAST
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

// fp16 tensors. Fast: float16_t elements. Base: uint words holding two halves each (element i is
// the low half of word i/2 when i is even); stores then go through atomics so that neighbouring
// halves written by other invocations survive.
#if AWQ_FAST
#define HALF_T float16_t
#define H_LOAD(arr, i) float(arr[i])
#define H_STORE(arr, i, v) arr[i] = float16_t(v)
#else
#define HALF_T uint
#define H_LOAD(arr, i) h_get(arr[(i) >> 1u], (i))
#define H_STORE(arr, i, v)                                                    \
    {                                                                         \
        uint hi_ = (i);                                                       \
        uint sh_ = (hi_ & 1u) * 16u;                                          \
        uint bits_ = packHalf2x16(vec2((v), 0.0)) & 0xFFFFu;                  \
        atomicAnd(arr[hi_ >> 1u], ~(0xFFFFu << sh_));                         \
        atomicOr(arr[hi_ >> 1u], bits_ << sh_);                               \
    }
float h_get(uint w, uint i)
{
    vec2 v = unpackHalf2x16(w);
    return (i & 1u) != 0u ? v.y : v.x;
}
#endif

// Correctly rounded a / b, as the CPU reference computes it. Vulkan allows 2.5 ulp for '/', and
// fma() need not be fused (lavapipe splits it), so the usual fma-based correction is not enough:
// the quotient is corrected with exact residuals (Dekker's product, plain multiplies and adds kept
// separate by `precise`) and the nearest of three neighbouring floats is chosen. An exact tie
// cannot occur in a float division unless the quotient is itself a float.
float prod_err(float a, float b, float p)
{
    precise float t = 4097.0 * a;
    precise float ah = t - (t - a);
    precise float al = a - ah;
    precise float u = 4097.0 * b;
    precise float bh = u - (u - b);
    precise float bl = b - bh;
    precise float e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    return e;
}

// a - q * b (exact product; q close to a / b keeps a - p exact)
float div_resid(float a, float b, float q)
{
    precise float p = q * b;
    precise float r = (a - p) - prod_err(q, b, p);
    return r;
}

float div_rn(float a, float b)
{
    precise float q = a / b;
    if (q == 0.0 || isinf(q) || isnan(q) || isinf(b))
        return q;
    precise float q1 = q + div_resid(a, b, q) / b;
    uint bits = floatBitsToUint(q1);
    float lo = uintBitsToFloat(bits - 1u), hi = uintBitsToFloat(bits + 1u);
    float best = q1, rb = abs(div_resid(a, b, q1));
    float rl = abs(div_resid(a, b, lo)), rh = abs(div_resid(a, b, hi));
    if (rl < rb) {
        best = lo;
        rb = rl;
    }
    if (rh < rb)
        best = hi;
    return best;
}

float nan_value()
{
    return uintBitsToFloat(0x7FC00000u);
}

#ifdef NEED_WG_REDUCE
// Workgroup-wide reductions in a fixed order (deterministic for a given device). Every invocation
// must call them; every invocation gets the result. WG must be a power of two.
shared float red_s[WG];

float wg_sum(float v)
{
#if AWQ_FAST
    float s = subgroupAdd(v);
    if (subgroupElect())
        red_s[gl_SubgroupID] = s;
    barrier();
    float t = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++)
        t += red_s[i];
    barrier();
    return t;
#else
    uint t = gl_LocalInvocationID.x;
    red_s[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s)
            red_s[t] += red_s[t + s];
        barrier();
    }
    float r = red_s[0];
    barrier();
    return r;
#endif
}

float wg_max(float v)
{
#if AWQ_FAST
    float s = subgroupMax(v);
    if (subgroupElect())
        red_s[gl_SubgroupID] = s;
    barrier();
    float t = red_s[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++)
        t = max(t, red_s[i]);
    barrier();
    return t;
#else
    uint t = gl_LocalInvocationID.x;
    red_s[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s)
            red_s[t] = max(red_s[t], red_s[t + s]);
        barrier();
    }
    float r = red_s[0];
    barrier();
    return r;
#endif
}

float wg_min(float v)
{
    return -wg_max(-v);
}
#endif
