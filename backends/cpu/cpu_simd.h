/* Portable SIMD for the CPU backend: GCC/Clang vector extensions (8 x fp32), helpers that are
 * always inlined, and CPU_MULTIVERSION, which also builds a function for x86-64-v3 (AVX2 + FMA)
 * and picks it at load time when the processor has it. */
#ifndef AWQ_CPU_SIMD_H
#define AWQ_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CPU_MULTIVERSION
#endif

/* The vector helpers are always inlined, so the ABI of passing 32-byte vectors never matters. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));

#define AI static inline __attribute__((always_inline))

AI v8f v8f_load(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

AI void v8f_store(float *p, v8f v)
{
    memcpy(p, &v, sizeof v);
}

AI v8f v8f_splat(float x)
{
    return (v8f){ x, x, x, x, x, x, x, x };
}


AI float hsum(v8f v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

#endif
