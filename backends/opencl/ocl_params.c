/* Kernel parameters per device family.
 *
 * A small table, one row per vendor, picked by device type and vendor id (a CPU device takes the
 * "cpu" row whatever its vendor: PoCL on an AMD CPU reports Intel's vendor id). Why the values:
 *
 *  - pack_n, the columns of one packed 4-bit block, equals the number of work-items that read one
 *    chunk of a block together, so it is the SIMD width a load is coalesced over: a warp (32) on
 *    NVIDIA, a wave64 on AMD GCN/CDNA, 32 elsewhere. It fixes the weight layout made at
 *    w4_create, so it belongs to the device, not to the call.
 *  - gemv_ks splits K over the work-group so that a GEMV of a 4096-wide layer still has enough
 *    work-items in flight to saturate memory bandwidth (8 x 32 = 256 items on NVIDIA); each item
 *    keeps gemv_unroll 16-byte loads in flight. gemv_xs floats (16 KiB) of X are staged in local
 *    memory, small enough for several work-groups per compute unit. Up to gemv_max_m rows the
 *    GEMV (which reads the weights once per 8 rows) beats a 128-row tile that would be mostly
 *    empty.
 *  - bm x bn / tm x tn: the tiled GEMMs use 128 x 128 blocks with 8 x 8 outputs per item on the
 *    large GPUs (256 items, 32 KiB of local memory; about 180 registers per item on sm_90 by
 *    ptxas, no spills), 64 x 64 with 4 x 4 elsewhere, which fits every device with 256-item
 *    work-groups and 16 KiB of local memory.
 *  - gv_ts x gv_nr: the unquantized GEMV (M <= 4) gives each row of W a team of gv_ts items
 *    (a warp / wave) reading it coalesced, gv_nr rows per work-group.
 *  - red_wg: 256-item reductions (row norms, sums), 128 on CPUs where items are loop iterations.
 *  - cs_n x cs_t: clip_search output channels x token slices per work-group.
 *  - att_wg: attention work-group size (items per block of query rows).
 *  - st_c x st_s: act_stats items (4 channels each) x row slices; 16 x 16 keeps 64 channels per
 *    work-group, so even a 4096-channel activation spreads over 64 work-groups with 8 rows of
 *    loads in flight per item. On the H100 8 x 32 (twice the work-groups) measured 268 us on
 *    [16384, 8192] fp16 against 500 us for 16 x 16 and 316 us for 4 x 64.
 *  - att_wgs: attention splits the keys of a long KV cache over several work-groups (then
 *    combines them) while fewer than this many work-groups would run; 0 = twice the compute
 *    units.
 *  - mma_ks, mma_mb (with mma, pack_n 32 and G a multiple of 128): the small-M gemm_w4 runs on
 *    tensor cores (shaders/gemm_mma.cl, gemv_w4_mma*), a warp per 32-column block and K slice,
 *    mma_ks slices per work-group, up to 8 * mma_mb rows per work-group (more rows: several
 *    work-groups, adjacent so that they share the weights through L2). H100 sweep, 8192 x 28672,
 *    M = 1 / 8 / 32: mma_ks 4 gave 49.8 / 53.2 us, 8 gave 52.0 / 59.2 us, 2 gave 59.9 / 61.6 us;
 *    mma_mb 2 gave 124.8 us at M = 32 against 134.5 us for 4 (register pressure).
 *  - mma: the large-M products run on tensor cores (mma.sync TF32 through inline PTX,
 *    shaders/gemm_mma.cl) on NVIDIA; the kernels are checked against the fp32 ones at open and
 *    dropped (logged) if they fail to build or disagree. mma=1 on another device emulates the
 *    instruction, which only serves the tests.
 *
 * The NVIDIA row targets the H100 (sm_90); AMD and Intel rows are estimates from the vendors'
 * optimisation guides, not measurements. Whatever the row, it is fitted to the device's limits
 * (work-group size, local memory); a device too small for it gets the "small" row.
 *
 * For tuning, AWQ_OPENCL_PARAMS="row=amd,bm=64,gemv_ks=4" overrides the choice (row first, then
 * single fields); the values are checked and become part of the build options, hence of the
 * program cache key. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"

static const struct ocl_params table[] = {
    /* row      pack ks unr maxm  xs    bm   bn  tm tn  gvts nr  red  stc sts csn cst att wgs mma mks mmb */
    { "nvidia",  32, 8, 4, 32,  4096,  128, 128, 8, 8,  32,  8, 256,  8,32, 32, 8, 128, 0, 1,  4, 2 },
    { "amd",     64, 4, 4, 32,  4096,  128, 128, 8, 8,  64,  4, 256, 16,16, 64, 4, 256, 0, 0,  4, 2 },
    { "intel",   32, 8, 2, 32,  4096,   64,  64, 4, 4,  32,  8, 256, 16,16, 32, 8, 128, 0, 0,  4, 2 },
    { "default", 32, 8, 2, 32,  4096,   64,  64, 4, 4,  32,  8, 256, 16,16, 32, 8, 128, 0, 0,  4, 2 },
    { "cpu",     32, 4, 2, 32,  4096,   64,  64, 4, 4,  32,  4, 128, 16, 4, 32, 4,  64, 0, 0,  2, 2 },
    { "small",   16, 4, 2, 16,  1024,   32,  32, 4, 4,  16,  4,  64, 16, 4, 16, 4,  64, 0, 0,  2, 1 },
};

enum { ROW_NVIDIA, ROW_AMD, ROW_INTEL, ROW_DEFAULT, ROW_CPU, ROW_SMALL, N_ROWS };

/* Largest work-group and local memory any kernel of a row needs. */
static size_t row_wg(const struct ocl_params *p)
{
    size_t wg = (size_t)(p->bm / p->tm) * (size_t)(p->bn / p->tn);
    size_t cand[] = { (size_t)p->pack_n * (size_t)p->gemv_ks, (size_t)p->gv_ts * (size_t)p->gv_nr,
                      (size_t)p->red_wg, (size_t)p->st_c * (size_t)p->st_s,
                      (size_t)p->cs_n * (size_t)p->cs_t, (size_t)p->att_wg,
                      (size_t)32 * (size_t)p->mma_ks };
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
        wg = cand[i] > wg ? cand[i] : wg;
    return wg;
}

static size_t row_local(const struct ocl_params *p)
{
    size_t tiles = (size_t)32 * (size_t)(p->bm + p->bn) * sizeof(float);
    size_t gemv = (size_t)p->gemv_xs * sizeof(float);
    /* tensor-core GEMV (NVIDIA): partial sums of up to 4 row blocks */
    size_t mgv = p->mma ? (size_t)p->mma_ks * 32 * 8 * 4 * sizeof(float) : 0;
    size_t m = tiles > gemv ? tiles : gemv;
    return m > mgv ? m : mgv;
}

static int fits(const struct ocl_devdesc *d, const struct ocl_params *p)
{
    /* 1 KiB of headroom for the implementation's own use of local memory */
    return row_wg(p) <= d->max_wg && row_local(p) + 1024 <= d->local_mem;
}

static int pow2(int v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

/* The shape rules the kernels' #error checks and index arithmetic rely on. */
static const char *invalid(const struct ocl_params *p)
{
    int tx = p->tn > 0 ? p->bn / p->tn : 0, ty = p->tm > 0 ? p->bm / p->tm : 0, wgs = tx * ty;
    if (p->pack_n <= 0 || p->gemv_ks <= 0 || p->gemv_unroll <= 0 || p->gemv_max_m < 0)
        return "pack_n, gemv_ks, gemv_unroll must be positive";
    if (p->gemv_xs <= 0 || p->gemv_xs % 256 || p->gemv_ks * 8 * p->pack_n > p->gemv_xs)
        return "gemv_xs must be a multiple of 256 holding gemv_ks * 8 * pack_n floats";
    if (p->tm <= 0 || p->tn <= 0 || p->tm % 4 || p->tn % 4 || p->bm % p->tm || p->bn % p->tn)
        return "tm, tn must be multiples of 4 dividing bm, bn";
    if ((p->bm * 8) % wgs || (p->bn * 8) % wgs || (p->bn * 4) % wgs)
        return "bm * 8 and bn * 4 must be multiples of the tile work-group (bm/tm) * (bn/tn)";
    if (!pow2(p->gv_ts) || p->gv_nr <= 0 || !pow2(p->red_wg))
        return "gv_ts and red_wg must be powers of two, gv_nr positive";
    if (p->st_c <= 0 || p->st_s <= 0 || p->cs_n <= 0 || p->cs_t <= 0 || p->att_wg <= 0 ||
        p->att_wgs < 0 || p->mma < 0 || p->mma > 1)
        return "st_c, st_s, cs_n, cs_t, att_wg must be positive, att_wgs >= 0, mma 0 or 1";
    if (p->mma_ks <= 0 || (p->mma_mb != 1 && p->mma_mb != 2 && p->mma_mb != 4))
        return "mma_ks must be positive, mma_mb 1, 2 or 4";
    return NULL;
}

/* Applies "key=value,..." to p; returns 0, or -1 with a reason in why. */
static int apply_overrides(struct ocl_params *p, const char *spec, char *why, size_t n)
{
    static const struct {
        const char *key;
        size_t off;
    } fields[] = {
#define F(x) { #x, offsetof(struct ocl_params, x) }
        F(pack_n), F(gemv_ks), F(gemv_unroll), F(gemv_max_m), F(gemv_xs), F(bm), F(bn), F(tm),
        F(tn), F(gv_ts), F(gv_nr), F(red_wg), F(st_c), F(st_s), F(cs_n), F(cs_t), F(att_wg),
        F(att_wgs), F(mma), F(mma_ks), F(mma_mb),
#undef F
    };
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) {
        snprintf(why, n, "AWQ_OPENCL_PARAMS is too long");
        return -1;
    }
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(why, n, "AWQ_OPENCL_PARAMS: '%s' is not key=value", tok);
            return -1;
        }
        *eq = '\0';
        const char *val = eq + 1;
        if (strcmp(tok, "row") == 0) {
            int r = 0;
            while (r < N_ROWS && strcmp(table[r].row, val) != 0)
                r++;
            if (r == N_ROWS) {
                snprintf(why, n, "AWQ_OPENCL_PARAMS: no parameter row '%s'", val);
                return -1;
            }
            *p = table[r];
            continue;
        }
        size_t f = 0;
        while (f < sizeof fields / sizeof fields[0] && strcmp(fields[f].key, tok) != 0)
            f++;
        char *end;
        long v = strtol(val, &end, 10);
        if (f == sizeof fields / sizeof fields[0] || *end || end == val || v < 0 || v > 1 << 20) {
            snprintf(why, n, "AWQ_OPENCL_PARAMS: bad entry %s=%s", tok, val);
            return -1;
        }
        *(int *)((char *)p + fields[f].off) = (int)v;
    }
    const char *bad = invalid(p);
    if (bad) {
        snprintf(why, n, "AWQ_OPENCL_PARAMS: %s", bad);
        return -1;
    }
    return 0;
}

int ocl_params_choose(const struct ocl_devdesc *d, struct ocl_params *p, char *why, size_t n)
{
    int row = ROW_DEFAULT;
    if (d->type & CL_DEVICE_TYPE_CPU)
        row = ROW_CPU;
    else if (d->vendor_id == 0x10DE)
        row = ROW_NVIDIA;
    else if (d->vendor_id == 0x1002)
        row = ROW_AMD;
    else if (d->vendor_id == 0x8086)
        row = ROW_INTEL;
    if (!fits(d, &table[row]))
        row = fits(d, &table[ROW_DEFAULT]) ? ROW_DEFAULT : ROW_SMALL;
    *p = table[row];
    const char *spec = getenv("AWQ_OPENCL_PARAMS");
    if (spec && *spec) {
        if (apply_overrides(p, spec, why, n) < 0)
            return -1;
        if (!fits(d, p)) {
            snprintf(why, n, "AWQ_OPENCL_PARAMS: work-groups of %zu items or %zu bytes of local "
                     "memory exceed what device '%s' offers (%zu items, %llu bytes)", row_wg(p),
                     row_local(p), d->name, d->max_wg, (unsigned long long)d->local_mem);
            return -1;
        }
    }
    if (p->att_wgs == 0)
        p->att_wgs = 2 * (int)(d->compute_units ? d->compute_units : 1);
    return 0;
}
