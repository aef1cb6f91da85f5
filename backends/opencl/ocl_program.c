/* Program building and the on-disk cache of program binaries.
 *
 * Every program is the common helpers (shaders/common.cl) plus one kernel file, compiled with the
 * device's -D parameters. Compiled binaries are cached in $AWQ_CACHE_DIR, else
 * $XDG_CACHE_HOME/libawq, else $HOME/.cache/libawq, under a name derived from a key made of the
 * platform, device name, driver version, build options and a hash of the source; the key itself
 * is stored in the file and compared on load, so a hash collision can never load the wrong binary.
 *
 * File: "AWQCLBIN", u32 format version, u32 key length, key, u64 binary length, u64 FNV-1a of the
 * binary, binary. Written to a temporary file in the same directory and renamed into place, so a
 * reader sees a whole file or none. A file that is short, fails its checksum, or that the driver
 * refuses is ignored (logged), the program is built from source and the entry overwritten.
 * A cache that cannot be written only costs a rebuild next time (logged, never an error). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ocl_internal.h"
#include "backends/opencl/ocl_kernels.h"

#define CACHE_MAGIC "AWQCLBIN"
#define CACHE_VERSION 1u
#define CACHE_MAX_BYTES ((uint64_t)1 << 30)

/* ---- hashing and the cache file ------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

void ocl_cache_dir(char *out, size_t n)
{
    const char *e = getenv("AWQ_CACHE_DIR");
    out[0] = '\0';
    if (e && *e) {
        snprintf(out, n, "%s", e);
        return;
    }
    e = getenv("XDG_CACHE_HOME");
    if (e && *e == '/') {
        snprintf(out, n, "%s/libawq", e);
        return;
    }
    e = getenv("HOME");
    if (e && *e)
        snprintf(out, n, "%s/.cache/libawq", e);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Reads the binary of entry `path` if its key matches; returns NULL (with *why) otherwise. */
static unsigned char *cache_load(const char *path, const char *key, size_t *bin_len, const char **why)
{
    *why = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = errno == ENOENT ? NULL : "cannot be opened";
        return NULL;
    }
    unsigned char *data = NULL, *bin = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 32 || (uint64_t)st.st_size > CACHE_MAX_BYTES) {
        *why = "has an impossible size";
        goto out;
    }
    size_t n = (size_t)st.st_size, kl = strlen(key);
    data = malloc(n);
    if (!data || fread(data, 1, n, f) != n) {
        *why = "cannot be read";
        goto out;
    }
    if (memcmp(data, CACHE_MAGIC, 8) != 0 || get_u32(data + 8) != CACHE_VERSION) {
        *why = "is not a libawq cache file of this version";
        goto out;
    }
    if (get_u32(data + 12) != kl || 16 + kl + 16 > n || memcmp(data + 16, key, kl) != 0) {
        *why = "was made for another device, driver, source or option set";
        goto out;
    }
    uint64_t bl = get_u64(data + 16 + kl), sum = get_u64(data + 24 + kl);
    if (bl == 0 || bl != n - (32 + kl)) {
        *why = "is truncated or has trailing bytes";
        goto out;
    }
    if (fnv1a(FNV_INIT, data + 32 + kl, (size_t)bl) != sum) {
        *why = "fails its checksum";
        goto out;
    }
    bin = malloc((size_t)bl);
    if (!bin) {
        *why = "does not fit in host memory";
        goto out;
    }
    memcpy(bin, data + 32 + kl, (size_t)bl);
    *bin_len = (size_t)bl;
out:
    free(data);
    fclose(f);
    return bin;
}

/* Writes the entry atomically; returns a reason on failure, NULL on success. */
static const char *cache_store(const char *dir, const char *path, const char *key,
                               const unsigned char *bin, size_t bin_len)
{
    if (make_dirs(dir) != 0)
        return "cannot create the cache directory";
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", dir) >= (int)sizeof tmp)
        return "cache path too long";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return "cannot create a temporary file";
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return "cannot open a temporary file";
    }
    size_t kl = strlen(key);
    unsigned char head[16], tail[16];
    memcpy(head, CACHE_MAGIC, 8);
    put_u32(head + 8, CACHE_VERSION);
    put_u32(head + 12, (uint32_t)kl);
    put_u64(tail, bin_len);
    put_u64(tail + 8, fnv1a(FNV_INIT, bin, bin_len));
    int ok = fwrite(head, 1, 16, f) == 16 && fwrite(key, 1, kl, f) == kl &&
             fwrite(tail, 1, 16, f) == 16 && fwrite(bin, 1, bin_len, f) == bin_len;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        unlink(tmp);
        return "write failed";
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return "rename failed";
    }
    return NULL;
}

/* ---- building --------------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A program from a cached binary, or NULL when the driver refuses it. */
static cl_program from_binary(struct ocl_dev *d, const unsigned char *bin, size_t len,
                              const char *options, cl_int *err)
{
    cl_int bst = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(d->ctx, 1, &d->desc.id, &len, &bin, &bst, err);
    if (!p)
        return NULL;
    if (*err == CL_SUCCESS && bst != CL_SUCCESS)
        *err = bst;
    if (*err == CL_SUCCESS)
        *err = clBuildProgram(p, 1, &d->desc.id, options, NULL, NULL);
    if (*err != CL_SUCCESS) {
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static int build_failure(struct ocl_dev *d, cl_program p, cl_int e, const char *label)
{
    size_t len = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(p, d->desc.id, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) == CL_SUCCESS &&
        len > 0 && (log = malloc(len + 1)) != NULL) {
        if (clGetProgramBuildInfo(p, d->desc.id, CL_PROGRAM_BUILD_LOG, len, log, NULL) != CL_SUCCESS)
            len = 0;
        log[len] = '\0';
    }
    ocl_log(d, AWQ_LOG_DEBUG, "build log of program '%s':\n%s", label, log ? log : "(none)");
    int st = awq_err_set(d->err, AWQ_ERR_BACKEND,
                         "OpenCL: building program '%s' for '%s' failed: %s (%d); build log:\n%s",
                         label, d->desc.name, ocl_err_name(e), (int)e,
                         log && *log ? log : "(empty)");
    free(log);
    return st;
}

int ocl_program_build(struct ocl_dev *d, const char *label, const char *src, const char *extra,
                      cl_program *out)
{
    *out = NULL;
    char options[1400];
    snprintf(options, sizeof options, "%s%s%s", d->options, *extra ? " " : "", extra);

    uint64_t sh = fnv1a(fnv1a(FNV_INIT, ocl_src_common, strlen(ocl_src_common)), src, strlen(src));
    char key[2048];
    snprintf(key, sizeof key,
             "libawq OpenCL program\nlabel=%s\nplatform=%s / %s\ndevice=%s\ndriver=%s\n"
             "options=%s\nsource=%016llx\n", label, d->desc.platform_name,
             d->desc.platform_version, d->desc.name, d->desc.driver, options,
             (unsigned long long)sh);
    char path[1200] = "";
    if (d->cache_dir[0])
        snprintf(path, sizeof path, "%s/%s-%016llx.bin", d->cache_dir, label,
                 (unsigned long long)fnv1a(FNV_INIT, key, strlen(key)));

    cl_int e;
    if (path[0]) {
        size_t len = 0;
        const char *why = NULL;
        unsigned char *bin = cache_load(path, key, &len, &why);
        if (bin) {
            cl_program p = from_binary(d, bin, len, options, &e);
            free(bin);
            if (p) {
                ocl_log(d, AWQ_LOG_DEBUG, "loaded program '%s' from cache %s", label, path);
                *out = p;
                return 0;
            }
            ocl_log(d, AWQ_LOG_INFO, "cached program %s refused by the driver (%s); rebuilding",
                    path, ocl_err_name(e));
        } else if (why) {
            ocl_log(d, AWQ_LOG_INFO, "cached program %s %s; rebuilding", path, why);
        }
    }

    double t0 = now_s();
    const char *srcs[2] = { ocl_src_common, src };
    cl_program p = clCreateProgramWithSource(d->ctx, 2, srcs, NULL, &e);
    if (!p)
        return ocl_fail(d->err, e, "clCreateProgramWithSource");
    e = clBuildProgram(p, 1, &d->desc.id, options, NULL, NULL);
    if (e != CL_SUCCESS) {
        int st = build_failure(d, p, e, label);
        clReleaseProgram(p);
        return st;
    }
    ocl_log(d, AWQ_LOG_DEBUG, "built program '%s' in %.2f s (%s)", label, now_s() - t0, options);

    if (path[0]) {
        size_t len = 0;
        unsigned char *bin = NULL;
        const char *why = "the driver returned no binary";
        if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) == CL_SUCCESS &&
            len > 0 && (bin = malloc(len)) != NULL) {
            unsigned char *bins[1] = { bin };
            if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS)
                why = cache_store(d->cache_dir, path, key, bin, len);
        }
        free(bin);
        if (why)
            ocl_log(d, AWQ_LOG_DEBUG, "program '%s' not cached in %s: %s", label, d->cache_dir, why);
    }
    *out = p;
    return 0;
}

/* ---- the fixed programs and their kernels ---------------------------------------------------------- */

static const struct {
    const char *label;
    const char *src;
} programs[OCL_PROG_COUNT] = {
    [OCL_PROG_GEMM_W4] = { "gemm_w4", ocl_src_gemm_w4 },
    [OCL_PROG_GEMM] = { "gemm", ocl_src_gemm },
    [OCL_PROG_NN] = { "nn", ocl_src_nn },
    [OCL_PROG_QUANT] = { "quant", ocl_src_quant },
};

static const struct {
    enum ocl_prog prog;
    const char *name;
} kernels[K_COUNT] = {
    [K_GEMV_W4_R1] = { OCL_PROG_GEMM_W4, "gemv_w4_r1" },
    [K_GEMV_W4_R2] = { OCL_PROG_GEMM_W4, "gemv_w4_r2" },
    [K_GEMV_W4_R4] = { OCL_PROG_GEMM_W4, "gemv_w4_r4" },
    [K_GEMV_W4_R8] = { OCL_PROG_GEMM_W4, "gemv_w4_r8" },
    [K_GEMM_W4_TILED] = { OCL_PROG_GEMM_W4, "gemm_w4_tiled" },
    [K_GEMV_F_R1] = { OCL_PROG_GEMM, "gemv_f_r1" },
    [K_GEMV_F_R2] = { OCL_PROG_GEMM, "gemv_f_r2" },
    [K_GEMV_F_R4] = { OCL_PROG_GEMM, "gemv_f_r4" },
    [K_GEMM_F_TILED] = { OCL_PROG_GEMM, "gemm_f_tiled" },
    [K_RMSNORM] = { OCL_PROG_NN, "rmsnorm" },
    [K_ROPE] = { OCL_PROG_NN, "rope" },
    [K_SILU_MUL] = { OCL_PROG_NN, "silu_mul" },
    [K_ADD] = { OCL_PROG_NN, "add" },
    [K_EMBED] = { OCL_PROG_NN, "embed" },
    [K_CROSS_ENTROPY] = { OCL_PROG_NN, "cross_entropy" },
    [K_ACT_STATS] = { OCL_PROG_QUANT, "act_stats" },
    [K_PSEUDO_QUANT] = { OCL_PROG_QUANT, "pseudo_quant" },
    [K_CLIP_SEARCH] = { OCL_PROG_QUANT, "clip_search" },
    [K_SQ_ERR_PARTIAL] = { OCL_PROG_QUANT, "sq_err_partial" },
    [K_SQ_ERR_FINAL] = { OCL_PROG_QUANT, "sq_err_final" },
    [K_SCALE_COLS] = { OCL_PROG_QUANT, "scale_cols" },
};

int ocl_programs_init(struct ocl_dev *d)
{
    for (int i = 0; i < OCL_PROG_COUNT; i++) {
        int st = ocl_program_build(d, programs[i].label, programs[i].src, "", &d->prog[i]);
        if (st < 0)
            return st;
    }
    for (int i = 0; i < K_COUNT; i++) {
        cl_int e;
        d->k[i] = clCreateKernel(d->prog[kernels[i].prog], kernels[i].name, &e);
        if (!d->k[i]) {
            char what[96];
            snprintf(what, sizeof what, "clCreateKernel(%s)", kernels[i].name);
            return ocl_fail(d->err, e, what);
        }
    }
    return 0;
}

void ocl_programs_release(struct ocl_dev *d)
{
    for (int i = 0; i < K_COUNT; i++)
        if (d->k[i]) {
            clReleaseKernel(d->k[i]);
            d->k[i] = NULL;
        }
    for (int i = 0; i < OCL_PROG_COUNT; i++)
        if (d->prog[i]) {
            clReleaseProgram(d->prog[i]);
            d->prog[i] = NULL;
        }
    if (d->k_mma_w4)
        clReleaseKernel(d->k_mma_w4);
    if (d->k_mma_f)
        clReleaseKernel(d->k_mma_f);
    for (int i = 0; i < 3; i++)
        if (d->k_mma_gv[i])
            clReleaseKernel(d->k_mma_gv[i]);
    memset(d->k_mma_gv, 0, sizeof d->k_mma_gv);
    if (d->mma_prog)
        clReleaseProgram(d->mma_prog);
    d->k_mma_w4 = d->k_mma_f = NULL;
    d->mma_prog = NULL;
    for (int i = 0; i < d->n_att; i++) {
        clReleaseKernel(d->att[i].k);
        clReleaseKernel(d->att[i].combine);
        clReleaseProgram(d->att[i].prog);
    }
    d->n_att = 0;
}

int ocl_mma_program(struct ocl_dev *d, int emulate, cl_program *out)
{
    return ocl_program_build(d, emulate ? "gemm_mma_emulated" : "gemm_mma", ocl_src_gemm_mma,
                             emulate ? "-DAWQ_MMA_EMULATE" : "-DAWQ_MMA_PTX", out);
}

/* ---- attention, one program per head_dim ------------------------------------------------------------ */

static size_t att_local(int hd, int bq, int bkv)
{
    return ((size_t)bq * hd + (size_t)bkv * (hd + 1) + (size_t)bq * (bkv + 1) + 3 * (size_t)bq) *
           sizeof(float);
}

int ocl_attention_kernel(struct ocl_dev *d, int hd, const struct ocl_att **out)
{
    for (int i = 0; i < d->n_att; i++)
        if (d->att[i].hd == hd) {
            *out = &d->att[i];
            return 0;
        }
    /* Rows per block and keys per tile: larger for small heads, then shrunk to fit local memory. */
    int bq = hd <= 64 ? 32 : 16, bkv = hd <= 64 ? 64 : 32;
    while (att_local(hd, bq, bkv) + 1024 > d->desc.local_mem && (bkv > 8 || bq > 4)) {
        if (bkv > 8)
            bkv /= 2;
        else
            bq /= 2;
    }
    if (att_local(hd, bq, bkv) + 1024 > d->desc.local_mem)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED,
                           "OpenCL attention: head_dim %d needs %zu bytes of local memory; device "
                           "'%s' has %llu", hd, att_local(hd, bq, bkv) + 1024, d->desc.name,
                           (unsigned long long)d->desc.local_mem);
    size_t wg = (size_t)d->p.att_wg, rows = ocl_round_up((size_t)bq * (size_t)hd, 32);
    if (wg > rows)
        wg = rows;
    if (wg > d->desc.max_wg)
        wg = d->desc.max_wg;
    if (wg < (size_t)bq)
        wg = (size_t)bq;     /* the row owners are items 0..bq-1 */

    struct ocl_att a = { hd, bq, bkv, (int)wg, NULL, NULL, NULL };
    char extra[128], label[48];
    snprintf(extra, sizeof extra, "-DHD=%d -DBQ=%d -DBKV=%d -DAWG=%d", hd, bq, bkv, a.wg);
    snprintf(label, sizeof label, "attention_hd%d", hd);
    int st = ocl_program_build(d, label, ocl_src_attention, extra, &a.prog);
    if (st < 0)
        return st;
    cl_int e;
    a.k = clCreateKernel(a.prog, "attention", &e);
    if (a.k)
        a.combine = clCreateKernel(a.prog, "attention_combine", &e);
    if (!a.k || !a.combine) {
        if (a.k)
            clReleaseKernel(a.k);
        clReleaseProgram(a.prog);
        return ocl_fail(d->err, e, "clCreateKernel(attention)");
    }
    if (d->n_att == OCL_ATT_VARIANTS) {
        /* keep the table bounded: drop the oldest variant (queued launches keep their kernel) */
        clReleaseKernel(d->att[0].k);
        clReleaseKernel(d->att[0].combine);
        clReleaseProgram(d->att[0].prog);
        memmove(&d->att[0], &d->att[1], (OCL_ATT_VARIANTS - 1) * sizeof d->att[0]);
        d->n_att--;
    }
    d->att[d->n_att] = a;
    *out = &d->att[d->n_att++];
    return 0;
}
