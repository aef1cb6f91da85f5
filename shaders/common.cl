/* Helpers shared by every libawq OpenCL program; the host prepends this file to each program.
 *
 * Tensors reach kernels as a buffer plus an element offset (ulong), because a byte offset into a
 * cl_mem cannot be expressed as a sub-buffer without alignment rules that vary by device.
 * Half-precision tensors are read with vload_half and written with vstore_half_rte, and all
 * arithmetic is fp32: neither PoCL nor NVIDIA exposes cl_khr_fp16. Reductions that the CPU
 * reference does in double use double here too when the device has cl_khr_fp64. */

/* Bodies shared by several kernels take their shape parameters as constants only once inlined;
 * without inlining their private arrays would live in (slow) stack memory. */
#define AWQ_INLINE __attribute__((always_inline))

#if defined(cl_khr_fp64) && !defined(AWQ_NO_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif

/* Element i of a tensor stored as fp16 (f16 != 0) or fp32. */
float ld1(global const uchar *base, ulong i, int f16)
{
    if (f16)
        return vload_half(0, (global const half *)base + i);
    return ((global const float *)base)[i];
}

/* Elements i..i+3 (only element alignment is required). */
float4 ld4(global const uchar *base, ulong i, int f16)
{
    if (f16)
        return vload_half4(0, (global const half *)base + i);
    return vload4(0, (global const float *)base + i);
}

void st1(global uchar *base, ulong i, float v, int f16)
{
    if (f16)
        vstore_half_rte(v, 0, (global half *)base + i);
    else
        ((global float *)base)[i] = v;
}

/* Fixed-order tree reduction of red[0..n) (n a power of two) by a work-group of n or more items;
 * returns the total to every item. Deterministic: the order depends only on n. */
acc_t wg_sum(local acc_t *red, acc_t v, int lid, int n)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < n)
        red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = n >> 1; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return red[0];
}

float wg_max(local float *red, float v, int lid, int n)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < n)
        red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = n >> 1; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return red[0];
}
