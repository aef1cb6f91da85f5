/* Kernel parameters per device family.
 *
 * A small table, one row per vendor, picked by device type and vendor id. The values follow the
 * hardware each row targets; only the NVIDIA and CPU (PoCL) rows have been measured, the AMD and
 * Intel rows are conservative estimates from their architecture guides:
 *
 *  - pack_n, the columns of one packed 4-bit block, equals the number of work-items that read one
 *    chunk of a block together, so it is the SIMD width a load is coalesced over: a warp (32) on
 *    NVIDIA, a wave64 on AMD GCN/CDNA, 32 elsewhere. It fixes the weight layout made at
 *    w4_create, so it belongs to the device, not to the call.
 *  - gemv_ks splits K over the work-group so that a GEMV of a 4096-wide layer still has enough
 *    work-items in flight to saturate memory bandwidth (8 x 32 = 256 items on NVIDIA); each item
 *    keeps gemv_unroll 16-byte loads in flight. gemv_xs floats (16 KiB) of X are staged in local
 *    memory, small enough for several work-groups per compute unit.
 *  - bm x bn / tm x tn: the tiled GEMMs use 128 x 128 blocks with 8 x 8 outputs per item on the
 *    large GPUs (256 items, 32 KiB of local memory), 64 x 64 with 4 x 4 elsewhere, which fits
 *    every device with 256-item work-groups and 16 KiB of local memory.
 *  - red_wg: 256-item reductions (row norms, sums), 128 on CPUs where items are loop iterations.
 *
 * Whatever the row, the values are then fitted to the device's limits (work-group size, local
 * memory); a device too small for them gets the "small" row. */
#include "config.h"

#include <stddef.h>

#include "ocl_internal.h"

static const struct ocl_params table[] = {
    /* row       pack ks unr maxm  xs    bm   bn  tm tn  gvts nr  red  stc sts csn cst att */
    { "nvidia",   32, 8, 4, 32,  4096,  128, 128, 8, 8,  32,  8, 256, 32, 8, 32, 8, 128 },
    { "amd",      64, 4, 4, 32,  4096,  128, 128, 8, 8,  64,  4, 256, 64, 4, 64, 4, 256 },
    { "intel",    32, 8, 2, 32,  4096,   64,  64, 4, 4,  32,  8, 256, 32, 8, 32, 8, 128 },
    { "default",  32, 8, 2, 32,  4096,   64,  64, 4, 4,  32,  8, 256, 32, 8, 32, 8, 128 },
    { "cpu",      32, 4, 2, 32,  4096,   64,  64, 4, 4,  32,  4, 128, 32, 4, 32, 4, 64 },
    { "small",    16, 4, 2, 16,  1024,   32,  32, 4, 4,  16,  4,  64, 16, 4, 16, 4, 64 },
};

enum { ROW_NVIDIA, ROW_AMD, ROW_INTEL, ROW_DEFAULT, ROW_CPU, ROW_SMALL };

/* Largest work-group and local memory any kernel of a row needs. */
static size_t row_wg(const struct ocl_params *p)
{
    size_t wg = (size_t)(p->bm / p->tm) * (size_t)(p->bn / p->tn);
    size_t cand[] = { (size_t)p->pack_n * (size_t)p->gemv_ks, (size_t)p->gv_ts * (size_t)p->gv_nr,
                      (size_t)p->red_wg, (size_t)p->st_c * (size_t)p->st_s,
                      (size_t)p->cs_n * (size_t)p->cs_t, (size_t)p->att_wg };
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
        wg = cand[i] > wg ? cand[i] : wg;
    return wg;
}

static size_t row_local(const struct ocl_params *p)
{
    size_t tiles = (size_t)32 * (size_t)(p->bm + p->bn) * sizeof(float);
    size_t gemv = (size_t)p->gemv_xs * sizeof(float);
    return tiles > gemv ? tiles : gemv;
}

static int fits(const struct ocl_devdesc *d, const struct ocl_params *p)
{
    /* 1 KiB of headroom for the implementation's own use of local memory */
    return row_wg(p) <= d->max_wg && row_local(p) + 1024 <= d->local_mem;
}

void ocl_params_choose(const struct ocl_devdesc *d, struct ocl_params *p)
{
    int row = ROW_DEFAULT;
    if (d->type & CL_DEVICE_TYPE_CPU)
        row = ROW_CPU;          /* before the vendor: PoCL on AMD CPUs reports Intel's vendor id */
    else if (d->vendor_id == 0x10DE)
        row = ROW_NVIDIA;
    else if (d->vendor_id == 0x1002)
        row = ROW_AMD;
    else if (d->vendor_id == 0x8086)
        row = ROW_INTEL;
    if (!fits(d, &table[row]))
        row = fits(d, &table[ROW_DEFAULT]) ? ROW_DEFAULT : ROW_SMALL;
    *p = table[row];
}
