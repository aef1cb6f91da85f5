/*
 * The parity suite (tests/parity.c) once more on the Vulkan backend's fallback paths, which a
 * capable device like lavapipe would otherwise never take:
 *   - the base SPIR-V variant (no 16-bit storage, fp16 arithmetic or subgroups: fp16 tensors go
 *     through packed words and atomics, reductions through shared memory);
 *   - staging buffers for every transfer (the discrete-GPU path) with a small staging ring, so
 *     uploads and downloads wrap and wait;
 *   - a storage-buffer range of 256 KiB instead of 128 MiB, so every op splits its work into
 *     windows and chunks (bound offsets, element offsets, key pieces merged by attention's
 *     combine pass, partial sums across dispatches).
 * Exits 77 when there is no Vulkan device.
 */
#include "config.h"

#include <stdlib.h>

int awq_parity_main(void);

#define main awq_parity_main
#include "parity.c"
#undef main

int main(void)
{
    setenv("AWQ_VK_DISABLE", "fast,uma", 1);
    setenv("AWQ_VK_MAX_RANGE", "262144", 1);
    setenv("AWQ_VK_STAGING", "100000", 1);
    setenv("AWQ_PARITY_QUICK", "1", 0);   /* every op, a third of the shapes (parity_vulkan ran them all) */
    /* One process for all tests, so each pipeline is compiled once: NVIDIA's driver (580) needs
     * ~29 s for the base variant of gemm_f, which forked tests would each pay again. */
    setenv("CK_FORK", "no", 0);
    return awq_parity_main();
}
