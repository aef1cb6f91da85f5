/* Shared by the OpenCL backend's files: device descriptions, the per-device queue state, the
 * kernel parameter table, program building with the on-disk binary cache, and launch helpers. */
#ifndef AWQ_OCL_INTERNAL_H
#define AWQ_OCL_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* ---- discovery -------------------------------------------------------------------------------- */

/* One device of one platform; init() lists the devices of all platforms in one flat array. */
struct ocl_devdesc {
    cl_platform_id platform;
    cl_device_id id;
    cl_device_type type;
    char name[128], vendor[64], driver[64];
    char platform_name[128], platform_version[128];
    cl_uint vendor_id, compute_units;
    cl_ulong mem, max_alloc, local_mem;
    size_t max_wg;
    int fp16, fp64, cr_divide;   /* cl_khr_fp16, cl_khr_fp64, correctly rounded fp32 divide */
};

struct ocl_state {
    int n;
    struct ocl_devdesc *dev;
};

/* ---- kernel parameters (ocl_params.c) ------------------------------------------------------------- */

struct ocl_params {
    const char *row;         /* which table row was used ("nvidia", "amd", "intel", "default", "cpu") */
    int pack_n;              /* columns per packed 4-bit block = GEMV work-items along N */
    int gemv_ks;             /* K slices per 4-bit GEMV work-group */
    int gemv_unroll;         /* packed chunks each GEMV item loads ahead */
    int gemv_max_m;          /* gemm_w4 uses the GEMV kernels up to this M (in blocks of 8 rows) */
    int gemv_xs;             /* floats of X the GEMV stages in local memory (multiple of 256) */
    int bm, bn, tm, tn;      /* tiled GEMMs: block rows x columns, outputs per item */
    int gv_ts, gv_nr;        /* unquantized GEMV: items per W row (power of two), W rows per group */
    int red_wg;              /* row reductions (power of two) */
    int st_c, st_s;          /* act_stats: channels x row slices */
    int cs_n, cs_t;          /* clip_search: channels x token slices */
    int att_wg;              /* attention work-group size */
    int att_wgs;             /* split long KV caches while fewer work-groups would run (0: auto) */
    int mma;                 /* tensor-core kernels (NVIDIA inline PTX; emulated elsewhere, for tests) */
    int mma_ks;              /* tensor-core 4-bit GEMV: warps (K slices) per work-group */
    int mma_mb;              /* tensor-core 4-bit GEMV: most 8-row blocks per work-group (1, 2, 4) */
};

/* Picks the table row for a device, fits it to the device's limits and applies the overrides of
 * $AWQ_OPENCL_PARAMS; returns -1 with a reason when the overrides are invalid. */
int ocl_params_choose(const struct ocl_devdesc *d, struct ocl_params *p, char *why, size_t n);

/* ---- the device (an open queue) ------------------------------------------------------------------ */

enum ocl_prog {
    OCL_PROG_GEMM_W4,
    OCL_PROG_GEMM,
    OCL_PROG_NN,
    OCL_PROG_QUANT,
    OCL_PROG_COUNT
};

enum ocl_kern {
    K_GEMV_W4_R1, K_GEMV_W4_R2, K_GEMV_W4_R4, K_GEMV_W4_R8, K_GEMM_W4_TILED,
    K_GEMV_F_R1, K_GEMV_F_R2, K_GEMV_F_R4, K_GEMM_F_TILED,
    K_RMSNORM, K_ROPE, K_SILU_MUL, K_ADD, K_EMBED, K_CROSS_ENTROPY,
    K_ACT_STATS, K_PSEUDO_QUANT, K_CLIP_SEARCH, K_SQ_ERR_PARTIAL, K_SQ_ERR_FINAL, K_SCALE_COLS,
    K_COUNT
};

#define OCL_ATT_VARIANTS 8
#define OCL_SQ_PARTS 1024    /* partial sums of the first sq_err pass (at most) */

/* An attention program compiled for one head_dim. */
struct ocl_att {
    int hd, bq, bkv, wg;
    cl_program prog;
    cl_kernel k, combine;
};

struct ocl_dev {
    struct ocl_devdesc desc;
    struct awq_errbuf *err;
    awq_log_fn log;
    awq_log_level log_level;
    void *log_user;
    struct ocl_params p;
    char cache_dir[1024];     /* "" when no cache directory could be determined */
    char options[1024];       /* build options common to every program */
    cl_context ctx;
    cl_command_queue q;
    cl_program prog[OCL_PROG_COUNT];
    cl_kernel k[K_COUNT];
    struct ocl_att att[OCL_ATT_VARIANTS];
    int n_att;
    cl_program mma_prog;      /* tensor-core kernels, NULL when unused or unusable */
    cl_kernel k_mma_w4, k_mma_f;
    cl_kernel k_mma_gv[3];    /* tensor-core 4-bit GEMV, 8, 16, 32 rows per work-group (PN = 32) */
    char mma_status[512];     /* why the tensor-core kernels are used or not (diagnostics) */
    cl_mem dummy;             /* bound to absent optional tensors */
    cl_mem sq_part;           /* OCL_SQ_PARTS accumulators for sq_err */
    cl_mem att_part;          /* partial results of split attention (grown on demand) */
    size_t att_part_size;
    size_t acc_size;          /* sizeof the kernels' acc_t: 8 with cl_khr_fp64, else 4 */
};

/* A 4-bit weight repacked for the kernels (layout: shaders/gemm_w4.cl). */
struct ocl_w4 {
    int K, N, G, Npad;
    cl_mem q, scales, zeros;
};

/* ---- errors and logging (ocl_backend.c) ----------------------------------------------------------- */

/* "CL_OUT_OF_RESOURCES" etc. */
const char *ocl_err_name(cl_int e);
/* Records a failed CL call `what` with its error name; maps allocation failures to
 * AWQ_ERR_DEVICE_MEMORY, the rest to AWQ_ERR_BACKEND. Returns the awq status. */
int ocl_fail(struct awq_errbuf *err, cl_int e, const char *what);
void ocl_log(const struct ocl_dev *d, awq_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- programs (ocl_program.c) ------------------------------------------------------------------------ */

/* Builds the program `label` from the common helpers plus `src` with the device's options plus
 * `extra` (may be ""), through the on-disk binary cache. On a build failure the error carries the
 * compiler's log. */
int ocl_program_build(struct ocl_dev *d, const char *label, const char *src, const char *extra,
                      cl_program *out);
/* Builds every fixed program and creates its kernels (called from open). */
int ocl_programs_init(struct ocl_dev *d);
void ocl_programs_release(struct ocl_dev *d);
/* The tensor-core program (shaders/gemm_mma.cl), with real or emulated mma instructions. */
int ocl_mma_program(struct ocl_dev *d, int emulate, cl_program *out);
/* The attention kernel for head_dim hd (built on first use, then kept). */
int ocl_attention_kernel(struct ocl_dev *d, int hd, const struct ocl_att **out);

/* The cache directory: $AWQ_CACHE_DIR, else $XDG_CACHE_HOME/libawq, else $HOME/.cache/libawq. */
void ocl_cache_dir(char *out, size_t n);

/* ---- launches ----------------------------------------------------------------------------------------- */

struct ocl_arg {
    size_t size;
    const void *ptr;         /* NULL with size > 0: a local-memory argument of that many bytes */
};

#define OA_MEM(m) ((struct ocl_arg){ sizeof(cl_mem), &(cl_mem){ (m) } })
#define OA_INT(v) ((struct ocl_arg){ sizeof(cl_int), &(cl_int){ (cl_int)(v) } })
#define OA_ULONG(v) ((struct ocl_arg){ sizeof(cl_ulong), &(cl_ulong){ (cl_ulong)(v) } })
#define OA_FLOAT(v) ((struct ocl_arg){ sizeof(cl_float), &(cl_float){ (cl_float)(v) } })
#define OA_LOCAL(bytes) ((struct ocl_arg){ (bytes), NULL })

/* Sets the arguments and enqueues kernel k (name for errors); lws may be NULL. */
int ocl_launch(struct ocl_dev *d, cl_kernel k, const char *name, cl_uint dims, const size_t *gws,
               const size_t *lws, const struct ocl_arg *args, size_t n_args);
#define OCL_LAUNCH(d, k, name, dims, gws, lws, ...)                                               \
    ocl_launch((d), (k), (name), (dims), (gws), (lws), (const struct ocl_arg[]){ __VA_ARGS__ },   \
               sizeof((const struct ocl_arg[]){ __VA_ARGS__ }) / sizeof(struct ocl_arg))

/* Buffer and element offset of a tensor reference; fails when the byte offset is not a multiple
 * of the element size. An absent tensor gives the dummy buffer and offset 0. */
int ocl_ref(struct ocl_dev *d, struct awq_tref r, size_t elem, const char *what, cl_mem *mem,
            cl_ulong *off);

static inline size_t ocl_round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

/* ---- ops (ocl_gemm.c, ocl_ops.c) ------------------------------------------------------------------ */

int ocl_w4_create(void *dev, const struct awq_w4_host *src, void **w);
void ocl_w4_free(void *dev, void *w);
int ocl_gemm_w4(void *dev, const struct awq_gemm_w4_args *a);
int ocl_gemm(void *dev, const struct awq_gemm_args *a);
/* Builds the tensor-core kernels when the parameters ask for them and checks them against the
 * fp32 kernels; on NVIDIA a build failure or a mismatch only disables them (logged). */
int ocl_mma_init(struct ocl_dev *d);

int ocl_act_stats(void *dev, const struct awq_act_stats_args *a);
int ocl_rmsnorm(void *dev, const struct awq_rmsnorm_args *a);
int ocl_rope(void *dev, const struct awq_rope_args *a);
int ocl_attention(void *dev, const struct awq_attention_args *a);
int ocl_silu_mul(void *dev, const struct awq_silu_mul_args *a);
int ocl_add(void *dev, const struct awq_add_args *a);
int ocl_embed(void *dev, const struct awq_embed_args *a);
int ocl_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a);
int ocl_clip_search(void *dev, const struct awq_clip_search_args *a);
int ocl_sq_err(void *dev, const struct awq_sq_err_args *a);
int ocl_scale_cols(void *dev, const struct awq_scale_cols_args *a);
int ocl_cross_entropy(void *dev, const struct awq_cross_entropy_args *a);

#endif
